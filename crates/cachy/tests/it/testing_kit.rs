//! `cachy::testing`, as a user's tests use it: a store failing on demand (down, the next N
//! calls, a chosen error, latency), a store recording its calls, and time moved on a paused
//! runtime instead of slept.

#![cfg(all(feature = "testing", feature = "memory", feature = "file"))]

use std::time::{Duration, Instant};

use cachy::testing::{faulty, recording};
use cachy::{CacheManager, ErrorKind, RememberOptions, Repository};
use serde_json::json;

fn dict() -> Repository {
    CacheManager::from_value(json!({ "stores": { "dict": { "driver": "dict" } } }))
        .unwrap()
        .store(None)
        .unwrap()
}

/// A handler of the user's: a price from the cache, else from its source.
async fn price(cache: &Repository, sku: u32) -> Result<u32, cachy::Error> {
    let options = RememberOptions::new(Duration::from_secs(60));
    cache
        .remember_with(&format!("price:{sku}"), &options, move || async move {
            Ok::<_, cachy::Error>(sku * 100)
        })
        .await
}

#[tokio::test]
async fn a_store_that_is_down_fails_every_call_and_comes_back() {
    let (cache, faults) = faulty(&dict());
    cache.put("kept", &1, 10).await.unwrap();
    faults.down();
    assert_eq!(price(&cache, 7).await.unwrap(), 700, "the handler stays up");
    assert_eq!(cache.stats().errors, 2);
    for error in [
        cache.get::<i32>("kept").await.unwrap_err(),
        cache.put("kept", &2, 10).await.unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Unavailable);
    }
    faults.fail_with(ErrorKind::Timeout);
    assert_eq!(
        cache.get::<i32>("kept").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    faults.up();
    assert_eq!(
        cache.get::<i32>("kept").await.unwrap(),
        Some(1),
        "nothing was lost"
    );
    faults.reads(false);
    assert!(cache.get::<i32>("kept").await.is_err());
    cache.put("written", &3, 10).await.unwrap();
    faults.reads(true);
    faults.writes(false);
    assert_eq!(cache.get::<i32>("written").await.unwrap(), Some(3));
    assert!(cache.forget("written").await.is_err());
}

#[tokio::test]
async fn the_next_calls_fail_exactly_as_many_times_as_asked() {
    let (cache, faults) = faulty(&dict());
    cache.put("k", &1, 10).await.unwrap();
    faults.fail_next(3, ErrorKind::Backend);
    for _ in 0..3 {
        assert_eq!(
            cache.get::<i32>("k").await.unwrap_err().kind(),
            ErrorKind::Backend
        );
    }
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
}

#[tokio::test]
async fn latency_is_added_to_each_call() {
    let (cache, faults) = faulty(&dict());
    cache.put("k", &1, 10).await.unwrap();
    faults.latency(Duration::from_millis(100));
    let started = Instant::now();
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    faults.latency(Duration::ZERO);
    let started = Instant::now();
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn a_recording_store_tells_what_was_read_and_written() {
    let (cache, record) = recording(&dict());
    assert_eq!(price(&cache, 7).await.unwrap(), 700);
    assert_eq!(price(&cache, 7).await.unwrap(), 700);
    assert_eq!(record.writes(), ["price:7"], "computed once, stored once");
    let reads = record.reads();
    assert!(
        reads.len() >= 2 && reads.iter().all(|key| key == "price:7"),
        "{reads:?}"
    );
    record.clear();
    cache.tags("people").put("ann", &1, 10).await.unwrap();
    let calls = record.calls();
    let put = calls.iter().find(|call| call.method == "put").unwrap();
    assert!(
        put.keys[0].ends_with(":ann") && put.keys[0] != "ann",
        "{calls:?}"
    );
    // The two compose: a recording of a faulty store records the calls that failed too.
    let (faulty_cache, faults) = faulty(&dict());
    let (cache, record) = recording(&faulty_cache);
    faults.down();
    assert!(cache.get::<i32>("x").await.is_err());
    assert_eq!(record.reads(), ["x"]);
}

/// In-process lifetimes and `remember_with`'s fail-safe windows follow a paused clock.
#[cfg(feature = "test-clock")]
#[tokio::test(start_paused = true)]
async fn time_moves_without_sleeping_on_a_paused_runtime() {
    let cache = dict();
    cache
        .put("session", &"ann", Duration::from_secs(600))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(599)).await;
    assert!(cache.has("session").await.unwrap());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(
        !cache.has("session").await.unwrap(),
        "expired after ten minutes"
    );

    let options =
        RememberOptions::new(Duration::from_secs(60)).fail_safe(Duration::from_secs(3600));
    let first = cache
        .remember_entry("rate", &options, || async {
            Ok::<_, cachy::Error>(cachy::Computed::new(1.5f64))
        })
        .await
        .unwrap();
    assert_eq!(first.source, cachy::Source::Computed);
    tokio::time::advance(Duration::from_secs(61)).await;
    let stale = cache
        .remember_entry("rate", &options, || async {
            Err::<cachy::Computed<f64>, _>(cachy::Error::new(ErrorKind::Backend, "source down"))
        })
        .await
        .unwrap();
    assert_eq!(
        (stale.value, stale.source),
        (1.5, cachy::Source::Stale),
        "a minute later it is stale"
    );
}
