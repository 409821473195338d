use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cachy_http::ResponseCache;

use super::*;

#[tokio::test]
async fn a_response_that_must_be_revalidated_is_never_served_stale() {
    let (runs, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    (
                        [(header::CACHE_CONTROL, "max-age=1, must-revalidate")],
                        "fresh",
                    )
                        .into_response()
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
                }
            }
        })
        .layer(
            ResponseCache::new(cache().1)
                .stale_if_error(Duration::from_secs(600))
                .stale_while_revalidate(Duration::from_secs(600)),
        ),
    );
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(&url).send().await.unwrap().text().await.unwrap(),
        "fresh"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let failed = client.get(&url).send().await.unwrap();
    assert_eq!(
        failed.status(),
        503,
        "the handler's own answer, not the stale one"
    );
    assert_eq!(failed.text().await.unwrap(), "down");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_write_to_a_url_drops_its_kept_responses() {
    let (runs, counted) = counter();
    let read = move |headers: HeaderMap| {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        let lang = headers
            .get(header::ACCEPT_LANGUAGE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        async move {
            (
                [
                    (header::CACHE_CONTROL, "max-age=60"),
                    (header::VARY, "accept-language"),
                ],
                format!("{lang} {n}"),
            )
        }
    };
    let failing_write = || async { StatusCode::CONFLICT };
    let app = Router::new()
        .route("/items", get(read).post(|| async { StatusCode::CREATED }))
        .route("/items/conflict", get(|| async { "x" }).put(failing_write))
        .layer(ResponseCache::new(cache().1));
    let address = listen(app).await;
    let client = reqwest::Client::new();
    let ask = |lang: &'static str| {
        let request = client
            .get(format!("{address}/items"))
            .header("accept-language", lang);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    // The first response teaches the cache the URL varies; then one run per language.
    ask("en").await;
    let (en, fr) = (ask("en").await, ask("fr").await);
    assert_eq!((ask("en").await, ask("fr").await), (en.clone(), fr.clone()));
    let written = client
        .post(format!("{address}/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 201);
    let (en_after, fr_after) = (ask("en").await, ask("fr").await);
    assert_ne!(en_after, en);
    assert_ne!(fr_after, fr);
    assert_eq!((ask("en").await, ask("fr").await), (en_after, fr_after));
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_url_whose_responses_cannot_be_kept_is_not_waited_for() {
    let (runs, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 1 {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                ([(header::CACHE_CONTROL, "no-store")], format!("run {run}"))
            }
        })
        .layer(ResponseCache::new(cache().1)),
    );
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(&url).send().await.unwrap().text().await.unwrap(),
        "run 0"
    );
    let slow = tokio::spawn(client.get(&url).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let quick = client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&quick), "pass");
    assert_eq!(quick.text().await.unwrap(), "run 2");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?} for another request's handler",
        started.elapsed()
    );
    assert_eq!(slow.await.unwrap().unwrap().text().await.unwrap(), "run 1");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_age_a_response_came_with_counts_against_its_lifetime() {
    let (runs, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    [(header::CACHE_CONTROL, "max-age=61"), (header::AGE, "60")],
                    "aged",
                )
            }
        })
        .layer(ResponseCache::new(cache().1)),
    );
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    client.get(&url).send().await.unwrap();
    let hit = client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&hit), "hit");
    let age: u64 = hit.headers()["age"].to_str().unwrap().parse().unwrap();
    assert!((60..=61).contains(&age), "age {age}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = client.get(&url).send().await.unwrap();
    assert_eq!(
        x_cache(&expired),
        "miss",
        "kept one second, what was left of it"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_absent_header_and_an_empty_one_are_different_keys() {
    let (runs, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move |headers: HeaderMap| {
            counted.fetch_add(1, Ordering::SeqCst);
            let flag = format!("{:?}", headers.get("x-flag"));
            async move {
                (
                    [
                        (header::CACHE_CONTROL, "max-age=60"),
                        (header::VARY, "x-flag"),
                    ],
                    flag,
                )
            }
        })
        .layer(ResponseCache::new(cache().1).vary(["x-mode"])),
    );
    let url = format!("{}/", listen(app).await);
    let client = reqwest::Client::new();
    client.get(&url).send().await.unwrap();
    let absent = client.get(&url).send().await.unwrap().text().await.unwrap();
    let empty = client
        .get(&url)
        .header("x-flag", "")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!((absent.as_str(), empty.as_str()), ("None", "Some(\"\")"));
    let mode = client.get(&url).header("x-mode", "").send().await.unwrap();
    assert_eq!(
        x_cache(&mode),
        "miss",
        "a configured header, empty, is a key of its own"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn nested_routers_sharing_a_layer_keep_their_responses_apart() {
    let cache = ResponseCache::new(cache().1);
    let nest = |name: &'static str| {
        Router::new().route(
            "/list",
            get(move || async move { ([(header::CACHE_CONTROL, "max-age=60")], name) }),
        )
    };
    let app = Router::new()
        .nest("/a", nest("a").layer(cache.clone()))
        .nest("/b", nest("b").layer(cache));
    let address = listen(app).await;
    let client = reqwest::Client::new();
    for name in ["a", "b", "a", "b"] {
        let body = client
            .get(format!("{address}/{name}/list"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, name);
    }
}

#[tokio::test]
async fn a_panicking_handler_runs_once_per_request() {
    let (runs, counted) = counter();
    let app = Router::new().route(
        "/",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                panic!("the handler's bug");
                #[allow(unreachable_code)]
                "never"
            }
        })
        .layer(ResponseCache::new(cache().1).ttl(Duration::from_secs(60))),
    );
    let url = format!("{}/", listen(app).await);
    let answer = reqwest::Client::new().get(&url).send().await;
    assert!(
        answer.is_err(),
        "the connection is dropped, as without the cache"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
