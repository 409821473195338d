use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cachy_http::ResponseCache;

use super::*;

/// A route whose body names its version, bumped by a `POST` to it.
fn versioned(layer: ResponseCache) -> (Router, Arc<AtomicUsize>) {
    let version = Arc::new(AtomicUsize::new(0));
    let (read, write) = (version.clone(), version.clone());
    let app = Router::new()
        .route(
            "/items",
            get(move || {
                let v = read.load(Ordering::SeqCst);
                async move { ([(header::CACHE_CONTROL, "max-age=300")], format!("v{v}")) }
            })
            .post(move || {
                write.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::NO_CONTENT }
            }),
        )
        .layer(layer);
    (app, version)
}

#[tokio::test]
async fn a_host_with_a_path_never_makes_another_urls_key() {
    let route = |name: &'static str| {
        get(move || async move { ([(header::CACHE_CONTROL, "max-age=60")], name) })
    };
    let app = Router::new()
        .route("/b", route("I am /b"))
        .route("/a/b", route("I am /a/b"))
        .layer(ResponseCache::new(repository()));
    let address = listen(app).await;
    let host = address.trim_start_matches("http://").to_owned();
    let client = reqwest::Client::new();
    let crafted = client
        .get(format!("{address}/b"))
        .header("host", format!("{host}/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(x_cache(&crafted), "pass");
    assert_eq!(text(&client, &format!("{address}/a/b")).await, "I am /a/b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_to_a_panicking_handler_do_not_wait_in_turn() {
    let (runs, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                panic!("the handler's bug");
                #[allow(unreachable_code)]
                "never"
            }
        })
        .layer(ResponseCache::new(repository()).ttl(Duration::from_secs(60))),
    );
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let requests: Vec<_> = (0..6)
        .map(|_| tokio::spawn(client.get(&url).send()))
        .collect();
    for request in requests {
        assert!(
            request.await.unwrap().is_err(),
            "each connection is dropped"
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "in turn would take 1.8 s: {:?}",
        started.elapsed()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 6, "each request ran it once");
}

#[tokio::test]
async fn a_write_while_the_store_is_down_never_brings_back_what_was_kept_before() {
    let (store, faults) = cachy::testing::faulty(&repository());
    let (app, _) = versioned(ResponseCache::new(store));
    let url = format!("{}/items", listen(app).await);
    let client = reqwest::Client::new();
    assert_eq!(text(&client, &url).await, "v0");
    assert_eq!(text(&client, &url).await, "v0", "kept");
    faults.down();
    let written = client.post(&url).send().await.unwrap();
    assert_eq!(written.status(), 204, "a cache failure never fails a write");
    assert_eq!(text(&client, &url).await, "v1");
    faults.up();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let response = client.get(&url).send().await.unwrap();
        let source = x_cache(&response);
        let body = response.text().await.unwrap();
        assert_eq!(body, "v1", "never the response from before ({source})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kept = client.get(&url).send().await.unwrap();
    assert_eq!(
        x_cache(&kept),
        "hit",
        "cached again once the write's drop succeeded"
    );
}

#[tokio::test]
async fn a_lost_index_never_brings_back_what_was_kept_before_a_write() {
    let (store, recorded) = cachy::testing::recording(&repository());
    let (app, _) = versioned(ResponseCache::new(store.clone()).vary(["accept"]));
    let url = format!("{}/items", listen(app).await);
    let client = reqwest::Client::new();
    assert_eq!(text(&client, &url).await, "v0");
    client.post(&url).send().await.unwrap();
    assert_eq!(text(&client, &url).await, "v1");
    // The index, evicted or expired.
    let index = recorded
        .writes()
        .into_iter()
        .find(|key| key.starts_with("http:GET ") && key.ends_with("\nindex"))
        .expect("the URL's index was written");
    assert!(store.forget(&index).await.unwrap());
    let after = client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&after), "miss");
    assert_eq!(after.text().await.unwrap(), "v1");
}

#[tokio::test]
async fn a_slow_store_costs_a_request_at_most_a_few_store_timeouts() {
    let (store, faults) = cachy::testing::faulty(&repository());
    let layer = ResponseCache::new(store).store_timeout(Duration::from_millis(100));
    let (app, _) = versioned(layer);
    let url = format!("{}/items", listen(app).await);
    let client = reqwest::Client::new();
    faults.latency(Duration::from_secs(10));
    for _ in 0..2 {
        let started = Instant::now();
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(x_cache(&response), "pass");
        let posted = client.post(&url).send().await.unwrap();
        assert_eq!(posted.status(), 204);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_head_answered_from_the_cache_says_the_length_of_the_get() {
    let app = Router::new()
        .route(
            "/",
            get(|| async { ([(header::CACHE_CONTROL, "max-age=60")], "hello") }),
        )
        .layer(ResponseCache::new(repository()));
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    for expected in ["miss", "hit"] {
        let head = client.head(&url).send().await.unwrap();
        assert_eq!(x_cache(&head), expected);
        assert_eq!(head.headers()["content-length"], "5");
    }
}

#[tokio::test]
async fn a_conditional_request_does_not_turn_caching_off_for_others() {
    let (runs, counted) = counter();
    // A handler that answers conditions itself, as file servers do.
    let app = Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| {
                counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    if headers
                        .get(header::IF_NONE_MATCH)
                        .is_some_and(|v| v == "\"v1\"")
                    {
                        return StatusCode::NOT_MODIFIED.into_response();
                    }
                    (
                        [
                            (header::CACHE_CONTROL, "max-age=60"),
                            (header::ETAG, "\"v1\""),
                        ],
                        "body",
                    )
                        .into_response()
                }
            }),
        )
        .layer(ResponseCache::new(repository()));
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    let conditional = client
        .get(&url)
        .header("if-none-match", "\"v1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        conditional.status(),
        304,
        "answered by the layer from what it kept"
    );
    for _ in 0..3 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(x_cache(&response), "hit");
        assert_eq!(response.text().await.unwrap(), "body");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_event_stream_is_answered_as_it_comes() {
    let app = Router::new()
        .route(
            "/events",
            get(|| async {
                let first = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(bytes::Bytes::from("data: first\n\n"))
                });
                let never = futures_util::stream::pending();
                (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    Body::from_stream(futures_util::StreamExt::chain(first, never)),
                )
            }),
        )
        .layer(ResponseCache::new(repository()).ttl(Duration::from_secs(30)));
    let url = format!("{}/events", listen(app).await);
    let mut response = reqwest::Client::new().get(&url).send().await.unwrap();
    let chunk = tokio::time::timeout(Duration::from_secs(2), response.chunk())
        .await
        .expect("the first event arrives at once")
        .unwrap();
    assert_eq!(chunk.unwrap(), "data: first\n\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_first_requests_to_a_url_that_varies_run_the_handler_once() {
    let (runs, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                (
                    [
                        (header::CACHE_CONTROL, "max-age=60"),
                        (header::VARY, "accept-encoding"),
                    ],
                    "body",
                )
            }
        })
        .layer(ResponseCache::new(repository())),
    );
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let request = client.get(&url).header("accept-encoding", "gzip");
            tokio::spawn(async move { request.send().await.unwrap().text().await.unwrap() })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), "body");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_failed_drops_than_remembered_never_stop_caching_nor_bring_back_old_responses() {
    let (store, faults) = cachy::testing::faulty(&repository());
    let (app, _) = versioned(ResponseCache::new(store));
    let address = listen(app).await;
    let client = reqwest::Client::new();
    let url = format!("{address}/items");
    assert_eq!(text(&client, &url).await, "v0");
    faults.down();
    // The one write to /items, then more distinct ones than the layer remembers.
    client.post(&url).send().await.unwrap();
    let writes: Vec<_> = (0..10_001)
        .map(|i| client.post(format!("{address}/items?i={i}")).send())
        .collect();
    for write in writes {
        assert_eq!(write.await.unwrap().status(), 204);
    }
    faults.up();
    let first = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(first, "v10002", "never a response from before");
    let kept = client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&kept), "hit", "caching goes on");
    assert_eq!(kept.text().await.unwrap(), first);
}
