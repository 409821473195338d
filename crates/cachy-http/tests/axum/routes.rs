use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cachy::{CacheManager, Repository};
use cachy_http::ResponseCache;

use super::*;

/// Counts of handler runs, by route.
#[derive(Default)]
struct Runs {
    hello: AtomicUsize,
    lang: AtomicUsize,
    private: AtomicUsize,
    etag: AtomicUsize,
    flaky: AtomicUsize,
    slow: AtomicUsize,
    products: AtomicUsize,
    big: AtomicUsize,
    cookie: AtomicUsize,
    revalidated: AtomicUsize,
    failing: AtomicBool,
}

/// A server with every route, each behind its own layer, and its address.
async fn serve(cache: &Repository, runs: Arc<Runs>) -> String {
    let layer = || ResponseCache::new(cache.clone()).ttl(Duration::from_secs(60));
    let r = runs.clone();
    let hello = get(move || {
        let n = r.hello.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            (
                [(header::CACHE_CONTROL, "max-age=60")],
                format!("hello {n}"),
            )
        }
    });
    let r = runs.clone();
    let lang = get(move |headers: HeaderMap| {
        r.lang.fetch_add(1, Ordering::SeqCst);
        let lang = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        async move { ([(header::VARY, "Accept-Language")], format!("lang {lang}")) }
    });
    let r = runs.clone();
    let private = get(move || {
        r.private.fetch_add(1, Ordering::SeqCst);
        async { ([(header::CACHE_CONTROL, "private, max-age=60")], "yours") }
    });
    let r = runs.clone();
    let etag = get(move || {
        r.etag.fetch_add(1, Ordering::SeqCst);
        async { ([(header::ETAG, "\"v1\"")], "tagged") }
    });
    let r = runs.clone();
    let flaky = get(move || {
        let run = r.flaky.fetch_add(1, Ordering::SeqCst);
        let failing = r.failing.load(Ordering::SeqCst);
        async move {
            if failing {
                (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response()
            } else {
                (
                    [(header::CACHE_CONTROL, "max-age=1")],
                    format!("fresh {run}"),
                )
                    .into_response()
            }
        }
    });
    let r = runs.clone();
    let slow = get(move || {
        r.slow.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "slow"
        }
    });
    let r = runs.clone();
    let products = get(move || {
        let n = r.products.fetch_add(1, Ordering::SeqCst) + 1;
        async move { format!("products {n}") }
    });
    let r = runs.clone();
    let big = get(move || {
        r.big.fetch_add(1, Ordering::SeqCst);
        async { "x".repeat(2 << 20) }
    });
    let r = runs.clone();
    let cookie = get(move || {
        r.cookie.fetch_add(1, Ordering::SeqCst);
        async { ([(header::SET_COOKIE, "session=abc")], "cookie") }
    });
    let r = runs.clone();
    let revalidated = get(move || {
        let run = r.revalidated.fetch_add(1, Ordering::SeqCst);
        async move {
            if run > 0 {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            (
                [(header::CACHE_CONTROL, "max-age=1")],
                format!("version {run}"),
            )
        }
    });
    let app = Router::new()
        .route("/hello", hello.layer(layer()))
        .route("/lang", lang.layer(layer()))
        .route("/private", private.layer(layer()))
        .route("/etag", etag.layer(layer()))
        .route(
            "/flaky",
            flaky.layer(layer().stale_if_error(Duration::from_secs(600))),
        )
        .route("/slow", slow.layer(layer()))
        .route("/products", products.layer(layer().tags(["products"])))
        .route("/big", big.layer(layer()))
        .route("/cookie", cookie.layer(layer()))
        .route(
            "/revalidated",
            revalidated.layer(layer().stale_while_revalidate(Duration::from_secs(10))),
        );
    listen(app).await
}

async fn fixture() -> (CacheManager, String, Arc<Runs>, reqwest::Client) {
    let (manager, repository) = cache();
    let runs = Arc::new(Runs::default());
    let address = serve(&repository, runs.clone()).await;
    (manager, address, runs, reqwest::Client::new())
}

#[tokio::test]
async fn a_response_is_made_once_then_answered_from_the_cache_with_its_age() {
    let (_, address, runs, client) = fixture().await;
    let first = client.get(format!("{address}/hello")).send().await.unwrap();
    assert_eq!(x_cache(&first), "miss");
    assert_eq!(first.text().await.unwrap(), "hello 1");
    let second = client.get(format!("{address}/hello")).send().await.unwrap();
    assert_eq!(x_cache(&second), "hit");
    assert!(second.headers().contains_key("age"));
    assert_eq!(second.headers()["cache-control"], "max-age=60");
    assert_eq!(second.text().await.unwrap(), "hello 1");
    let other_query = client
        .get(format!("{address}/hello?page=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_query.text().await.unwrap(),
        "hello 2",
        "the query is in the key"
    );
    assert_eq!(runs.hello.load(Ordering::SeqCst), 2);
    let head = client
        .head(format!("{address}/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn responses_varying_on_a_header_are_kept_per_value() {
    let (_, address, runs, client) = fixture().await;
    let ask = |lang: &'static str| {
        let client = client.clone();
        let url = format!("{address}/lang");
        async move {
            client
                .get(url)
                .header("accept-language", lang)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    for lang in ["en", "fr", "en", "en", "fr", "de"] {
        assert_eq!(ask(lang).await, format!("lang {lang}"));
    }
    // The first response taught the cache the URL varies; then one run per language.
    assert_eq!(runs.lang.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn private_no_store_cookies_and_credentials_are_not_shared() {
    let (_, address, runs, client) = fixture().await;
    for _ in 0..2 {
        let response = client
            .get(format!("{address}/private"))
            .send()
            .await
            .unwrap();
        assert!(["miss", "pass"].contains(&x_cache(&response).as_str()));
        client
            .get(format!("{address}/cookie"))
            .send()
            .await
            .unwrap();
        client
            .get(format!("{address}/hello"))
            .header("authorization", "Bearer x")
            .send()
            .await
            .unwrap();
        let no_store = client
            .get(format!("{address}/hello"))
            .header("cache-control", "no-store")
            .send()
            .await
            .unwrap();
        assert_eq!(x_cache(&no_store), "pass");
    }
    assert_eq!(runs.private.load(Ordering::SeqCst), 2);
    assert_eq!(runs.cookie.load(Ordering::SeqCst), 2);
    assert_eq!(
        runs.hello.load(Ordering::SeqCst),
        4,
        "credentials and no-store pass through"
    );
}

#[tokio::test]
async fn a_matching_if_none_match_is_answered_304_from_the_cache() {
    let (_, address, runs, client) = fixture().await;
    client.get(format!("{address}/etag")).send().await.unwrap();
    let revalidated = client
        .get(format!("{address}/etag"))
        .header("if-none-match", "\"v0\", \"v1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], "\"v1\"");
    assert_eq!(revalidated.text().await.unwrap(), "");
    let other = client
        .get(format!("{address}/etag"))
        .header("if-none-match", "\"v0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(runs.etag.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_handler_is_answered_with_the_last_response() {
    let (_, address, runs, client) = fixture().await;
    let fresh = client.get(format!("{address}/flaky")).send().await.unwrap();
    assert_eq!(fresh.text().await.unwrap(), "fresh 0");
    runs.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale = client.get(format!("{address}/flaky")).send().await.unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(x_cache(&stale), "stale");
    assert_eq!(stale.text().await.unwrap(), "fresh 0");
    assert_eq!(
        runs.flaky.load(Ordering::SeqCst),
        2,
        "the handler was asked"
    );
}

#[tokio::test]
async fn fifty_identical_requests_run_the_handler_once() {
    let (_, address, runs, client) = fixture().await;
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{address}/slow"));
            tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), "slow");
    }
    assert_eq!(runs.slow.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn flushing_a_routes_tag_drops_its_responses() {
    let (manager, address, runs, client) = fixture().await;
    let get = |client: &reqwest::Client| client.get(format!("{address}/products")).send();
    assert_eq!(
        get(&client).await.unwrap().text().await.unwrap(),
        "products 1"
    );
    assert_eq!(
        get(&client).await.unwrap().text().await.unwrap(),
        "products 1"
    );
    manager.tags("products").unwrap().flush().await.unwrap();
    assert_eq!(
        get(&client).await.unwrap().text().await.unwrap(),
        "products 2"
    );
    assert_eq!(runs.products.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_over_the_limit_streams_through_uncached() {
    let (_, address, runs, client) = fixture().await;
    for _ in 0..2 {
        let response = client.get(format!("{address}/big")).send().await.unwrap();
        assert_eq!(response.bytes().await.unwrap().len(), 2 << 20);
    }
    assert_eq!(runs.big.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_expired_response_is_answered_while_a_slow_handler_revalidates_it() {
    let (_, address, runs, client) = fixture().await;
    let url = format!("{address}/revalidated");
    assert_eq!(
        client.get(&url).send().await.unwrap().text().await.unwrap(),
        "version 0"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = std::time::Instant::now();
    let stale = client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&stale), "stale");
    assert_eq!(stale.text().await.unwrap(), "version 0");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    // The handler finishes in the background, and its response is the next hit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&fresh), "hit");
    assert_eq!(fresh.text().await.unwrap(), "version 1");
    assert_eq!(runs.revalidated.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn hosts_are_apart_and_a_response_that_says_nothing_is_kept_only_when_asked() {
    let (_, address, runs, client) = fixture().await;
    for host in ["a.example", "b.example", "a.example"] {
        client
            .get(format!("{address}/products"))
            .header("host", host)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(runs.products.load(Ordering::SeqCst), 2, "one run per host");

    let (_, repository) = cache();
    let (runs, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { "says nothing" }
        })
        .layer(ResponseCache::new(repository)),
    );
    let url = format!("{}/", listen(app).await);
    for _ in 0..2 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(
            x_cache(&response),
            "pass",
            "answered by the handler, not kept"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_kept_404_is_never_answered_304() {
    let (repository, (runs, counted)) = (repository(), counter());
    let app = Router::new().route(
        "/gone",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::NOT_FOUND, [(header::ETAG, "\"x\"")], "gone") }
        })
        .layer(ResponseCache::new(repository).ttl(Duration::from_secs(60))),
    );
    let url = format!("{}/gone", listen(app).await);
    let client = reqwest::Client::new();
    client.get(&url).send().await.unwrap();
    let conditional = client
        .get(&url)
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(conditional.status(), 404);
    assert_eq!(x_cache(&conditional), "hit");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A cache that fails never fails a request: while the store is down every request is
/// answered by the handler, and once it is back responses are kept again.
#[tokio::test]
async fn a_store_that_is_down_never_fails_a_request() {
    let (cache, faults) = cachy::testing::faulty(&cache().1);
    let (_, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move { ([(header::CACHE_CONTROL, "max-age=60")], format!("run {n}")) }
        })
        .layer(ResponseCache::new(cache.clone())),
    );
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    faults.down();
    for n in 1..=2 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), format!("run {n}"));
    }
    assert!(cache.stats().errors >= 2, "the failures were seen");
    faults.up();
    let made = client.get(&url).send().await.unwrap().text().await.unwrap();
    let kept = client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&kept), "hit");
    assert_eq!(kept.text().await.unwrap(), made);
}

#[tokio::test]
async fn a_request_asking_for_a_newer_response_gets_one_and_the_kept_one_stays() {
    let (_, address, runs, client) = fixture().await;
    let url = format!("{address}/hello");
    assert_eq!(
        client.get(&url).send().await.unwrap().text().await.unwrap(),
        "hello 1"
    );
    // Older than one second: ages are whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (name, value) in [
        ("cache-control", "no-cache"),
        ("cache-control", "max-age=0"),
        ("pragma", "no-cache"),
        ("cache-control", "max-age=1"),
    ] {
        let response = client.get(&url).header(name, value).send().await.unwrap();
        assert_eq!(x_cache(&response), "pass", "{name}: {value}");
        assert_ne!(response.text().await.unwrap(), "hello 1", "{name}: {value}");
    }
    let kept = client
        .get(&url)
        .header("cache-control", "max-age=30")
        .send()
        .await
        .unwrap();
    assert_eq!(x_cache(&kept), "hit");
    assert_eq!(kept.text().await.unwrap(), "hello 1");
    assert_eq!(runs.hello.load(Ordering::SeqCst), 5);
}
