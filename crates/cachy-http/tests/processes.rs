//! Two OS processes serving the same route through one hybrid store (an in-process level
//! over Redis, started here): a response one made is the other's hit, a tag flushed in one
//! drops the route's responses in both, `curl` sees what any client does, and with
//! `distributed` concurrent requests to both processes run the handler once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use cachy::CacheManager;
use cachy_http::ResponseCache;
use cachy_testkit::servers::{RedisServer, TestServer};

/// The config of the shared store, handed to the serving processes.
const CONFIG: &str = "CACHY_HTTP_TEST_CONFIG";

fn manager(redis_url: &str) -> CacheManager {
    CacheManager::from_value(serde_json::json!({
        "default": "shared",
        "stores": {
            "redis": { "driver": "redis", "url": redis_url, "prefix": "http-test:" },
            "shared": { "driver": "hybrid", "l2": "redis", "l1_ttl": 60 },
        }
    }))
    .unwrap()
}

/// Not a test of its own: the server each process runs, when started by the test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve() {
    let Ok(redis_url) = std::env::var(CONFIG) else {
        return;
    };
    let cache = manager(&redis_url);
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let products = get(move || {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        async move { format!("products from {} run {n}", std::process::id()) }
    })
    .layer(
        ResponseCache::new(cache.store(None).unwrap())
            .ttl(Duration::from_secs(60))
            .tags(["products"]),
    );
    let flush = {
        let cache = cache.clone();
        axum::routing::post(move || async move {
            cache.tags("products").unwrap().flush().await.unwrap();
            "flushed"
        })
    };
    // A slow report, made once for every process: the runs are counted in Redis.
    let counts = cache.store(Some("redis")).unwrap();
    let report = get(move || {
        let counts = counts.clone();
        async move {
            counts.increment("report-runs").await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            format!("report from {}", std::process::id())
        }
    })
    .layer(
        ResponseCache::new(cache.store(None).unwrap())
            .ttl(Duration::from_secs(60))
            .distributed(Duration::from_secs(10), Duration::from_secs(10)),
    );
    let app = Router::new()
        .route("/products", products)
        .route("/products/flush", flush)
        .route("/report", report);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("LISTENING http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

/// A serving process and its address; killed when dropped.
struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(redis_url: &str) -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "serve", "--nocapture", "--test-threads", "1"])
        .env(CONFIG, redis_url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test binary runs");
    let stdout = child.stdout.take().unwrap();
    let address = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split_once("LISTENING ")
                .map(|(_, address)| address.trim().to_owned())
        })
        .expect("the server started");
    Server(child, address)
}

async fn get_products(client: &reqwest::Client, server: &Server) -> (String, String) {
    // Both behind one public name, as behind a load balancer.
    let response = client
        .get(format!("{}/products", server.1))
        .header("host", "shop.example")
        .send()
        .await
        .unwrap();
    let source = response.headers()["x-cache"].to_str().unwrap().to_owned();
    (source, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_responses_and_tag_flushes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (start(&redis.url()), start(&redis.url()));
    let client = reqwest::Client::new();
    let (source, made_by_a) = get_products(&client, &a).await;
    assert_eq!(source, "miss");
    assert!(
        made_by_a.contains(&format!("from {}", a.0.id())),
        "{made_by_a}"
    );
    assert_eq!(
        get_products(&client, &b).await,
        ("hit".to_owned(), made_by_a.clone())
    );

    // curl, as any client: the same response, from the cache, with its age.
    let curl = Command::new("curl")
        .args([
            "-s",
            "-i",
            "-H",
            "Host: shop.example",
            &format!("{}/products", a.1),
        ])
        .output()
        .expect("curl is installed (./scripts/test installs it)");
    let shown = String::from_utf8_lossy(&curl.stdout).to_ascii_lowercase();
    assert!(shown.starts_with("http/1.1 200"), "{shown}");
    assert!(
        shown.contains("x-cache: hit") && shown.contains("age: "),
        "{shown}"
    );
    assert!(shown.ends_with(&made_by_a.to_ascii_lowercase()), "{shown}");

    let flushed = client
        .post(format!("{}/products/flush", a.1))
        .send()
        .await
        .unwrap();
    assert_eq!(flushed.text().await.unwrap(), "flushed");
    // The flush reaches the other process's first level through the backplane.
    let mut made_by_b = String::new();
    for _ in 0..50 {
        let (source, body) = get_products(&client, &b).await;
        if source == "miss" {
            made_by_b = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        made_by_b.contains(&format!("from {}", b.0.id())),
        "{made_by_b}"
    );
    assert_eq!(
        get_products(&client, &a).await,
        ("hit".to_owned(), made_by_b)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_to_two_processes_run_a_distributed_handler_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (start(&redis.url()), start(&redis.url()));
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let url = format!("{}/report", if i % 2 == 0 { &a.1 } else { &b.1 });
            let client = client.clone();
            // Both behind one public name, as behind a load balancer.
            let request = client.get(url).header("host", "reports.example");
            tokio::spawn(async move { request.send().await.unwrap().text().await.unwrap() })
        })
        .collect();
    let mut bodies = Vec::new();
    for request in requests {
        bodies.push(request.await.unwrap());
    }
    assert!(bodies.iter().all(|body| body == &bodies[0]), "{bodies:?}");
    let runs: Option<i64> = manager(&redis.url())
        .store(Some("redis"))
        .unwrap()
        .get("report-runs")
        .await
        .unwrap();
    assert_eq!(runs, Some(1), "the handler ran once across both processes");
}
