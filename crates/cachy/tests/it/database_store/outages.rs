//! PostgreSQL and MariaDB killed and restarted under load: errors while they are down, and
//! recovery without rebuilding the manager.

use super::*;

async fn restart_under_load(url: String, restart: impl FnOnce()) {
    let cache = manager(&url, json!({ "timeout": 1 }));
    cache.put("before", "v", 10).await.unwrap();
    let load =
        cachy_testkit::spawn_increment_load(cache.store(None).unwrap(), Duration::from_secs(6));
    tokio::time::sleep(Duration::from_millis(300)).await;
    restart();
    let (ok, failed) = load.await.unwrap();
    assert!(ok > 0, "{url}: {ok} ok, {failed} failed");
    let recovered = Instant::now();
    loop {
        match cache.put("after", "v", 10).await {
            Ok(()) => break,
            Err(e) => assert!(
                recovered.elapsed() < Duration::from_secs(15),
                "{url}: no recovery: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        cache.get::<String>("after").await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_recovers_without_a_rebuild() {
    let Some(mut server) = PostgresServer::start() else {
        return;
    };
    let url = server.url();
    restart_under_load(url, move || {
        server.kill();
        std::thread::sleep(Duration::from_millis(500));
        server.restart();
        std::mem::forget(server);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restarted_under_load_recovers_without_a_rebuild() {
    let Some(mut server) = MariaDbServer::start() else {
        return;
    };
    let url = server.url();
    restart_under_load(url, move || {
        server.kill();
        std::thread::sleep(Duration::from_millis(500));
        server.restart();
        std::mem::forget(server);
    })
    .await;
}

/// A PostgreSQL server started and killed, kept so that its port stays its own, and its URL.
fn killed_postgres() -> Option<(PostgresServer, String)> {
    let mut server = PostgresServer::start()?;
    let url = server.url();
    server.kill();
    Some((server, url))
}

/// sqlx tries a refused connection again until its pool's timeout, then says only that the
/// pool timed out: the store says why no connection was opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_is_named_as_refused_and_temporary() {
    let Some((_server, url)) = killed_postgres() else {
        return;
    };
    let cache = manager(&url, json!({ "timeout": 1, "create_table": false }));
    let e = cache.get::<String>("k").await.unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{shown}");
    assert!(
        shown.contains("no connection to the database server could be opened")
            && shown.to_lowercase().contains("refused"),
        "{shown}"
    );
}

/// A role at its connection limit: the server's "too many connections" reaches the caller,
/// as a temporary failure, instead of "pool timed out".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_at_its_connection_limit_is_named() {
    use sqlx::Connection as _;
    let Some(server) = POSTGRES.get_or_init(PostgresServer::start).as_ref() else {
        return;
    };
    let role = format!("limited_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&server.url()).await.unwrap();
    for statement in [
        format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 1"),
        format!("GRANT ALL ON SCHEMA public TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let url = server.url().replace("postgres@", &format!("{role}@"));
    let _held = sqlx::PgConnection::connect(&url).await.unwrap();
    let cache = manager(&url, json!({ "timeout": 1 }));
    let e = cache.put("k", "v", 10).await.unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{shown}");
    assert!(shown.contains("too many connections"), "{shown}");
}

/// A pool whose connections are all busy past the timeout says so, with its numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_every_connection_busy_says_so() {
    use sqlx::Connection as _;
    let Some(server) = POSTGRES.get_or_init(PostgresServer::start).as_ref() else {
        return;
    };
    let table = unique_table();
    let store = json!({ "driver": "database", "url": server.url(), "table": table,
        "create_table": true, "timeout": 1, "max_connections": 1 });
    let cache = CacheManager::from_value(json!({ "stores": { "database": store } })).unwrap();
    cache.put("k", "v", 10).await.unwrap();
    // Another connection locks the table: the store's one connection waits on the lock.
    let mut locker = sqlx::PgConnection::connect(&server.url()).await.unwrap();
    let mut transaction = locker.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
    )))
    .execute(&mut *transaction)
    .await
    .unwrap();
    let waiting = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get::<String>("k").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = cache.get::<String>("k").await.unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{shown}");
    assert!(shown.contains("pool: 1 of at most 1, all busy"), "{shown}");
    transaction.rollback().await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().as_deref(), Some("v"));
}

/// Calls waiting for their runtime's first connections share the outcome of the attempt
/// they waited for: with the server down, 20 of them fail within about one `timeout`, not
/// one `timeout` each, in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_before_the_first_call_fails_the_waiting_calls_together() {
    let Some((_server, url)) = killed_postgres() else {
        return;
    };
    let cache = manager(&url, json!({ "timeout": 1 }));
    let started = Instant::now();
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get::<String>(&format!("k{i}")).await })
        })
        .collect();
    for call in calls {
        let e = call.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "20 waiting calls took {took:?}"
    );
}
