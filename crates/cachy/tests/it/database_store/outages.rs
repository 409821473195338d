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
