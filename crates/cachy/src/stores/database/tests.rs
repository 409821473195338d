use super::prune::{PRUNE_BATCH_TIME, PRUNE_SMALLEST_BATCH, next_prune_batch};
use super::statements::PRUNE_BATCH;
use super::*;

/// The `PRAGMA synchronous` a SQLite store's connections run with.
async fn synchronous_of(extra: Option<&str>) -> i64 {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new("database").with(
        "url",
        format!("sqlite://{}", dir.path().join("c.db").display()),
    );
    if let Some(level) = extra {
        config = config.with("synchronous", level);
    }
    let store = DatabaseStore::from_config(&config).unwrap();
    let pool = store.pool().await.unwrap();
    pool.fetch("PRAGMA synchronous", &[], |row| row.int(0))
        .await
        .unwrap()[0]
}

#[tokio::test]
async fn sqlite_commits_without_waiting_for_the_disk_unless_asked() {
    assert_eq!(synchronous_of(None).await, 1, "NORMAL by default");
    assert_eq!(synchronous_of(Some("full")).await, 2);
    assert_eq!(synchronous_of(Some("off")).await, 0);
}

#[test]
fn a_synchronous_level_that_does_not_exist_or_is_not_for_sqlite_is_an_error() {
    let config = StoreConfig::new("database")
        .with("url", "sqlite::memory:")
        .with("synchronous", "sometimes");
    let error = DatabaseStore::from_config(&config).unwrap_err();
    assert!(error.field().unwrap().ends_with(".synchronous"), "{error}");
    let config = StoreConfig::new("database")
        .with("url", "postgres://localhost/cache")
        .with("synchronous", "full");
    let error = DatabaseStore::from_config(&config).unwrap_err();
    assert!(error.to_string().contains("SQLite"), "{error}");
}

#[test]
fn a_background_prune_sizes_its_batches_to_hold_the_lock_about_two_milliseconds() {
    let slow = PRUNE_BATCH_TIME * 3;
    let fast = PRUNE_BATCH_TIME / 4;
    assert_eq!(next_prune_batch(100, slow), 50);
    assert_eq!(next_prune_batch(100, fast), 200);
    assert_eq!(next_prune_batch(100, PRUNE_BATCH_TIME), 100, "on target");
    assert_eq!(
        next_prune_batch(PRUNE_SMALLEST_BATCH, slow),
        PRUNE_SMALLEST_BATCH
    );
    assert_eq!(next_prune_batch(PRUNE_BATCH, fast), PRUNE_BATCH);
}
