//! `cachy.http.responses`, as a service's Prometheus exporter shows it: one count per
//! response, by store, route pattern (or the configured name) and where it came from.

use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use cachy::CacheManager;
use cachy_http::ResponseCache;
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::test]
async fn responses_are_counted_by_route_and_source() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    cachy::observe::enable_metrics();

    let cache = CacheManager::from_value(serde_json::json!({
        "stores": { "pages": { "driver": "dict" } }
    }))
    .unwrap();
    let layer = ResponseCache::new(cache.store(None).unwrap()).ttl(Duration::from_secs(60));
    let app = Router::new()
        .route(
            "/products/{id}",
            get(|| async { ([(header::CACHE_CONTROL, "max-age=60")], "product") })
                .layer(layer.clone()),
        )
        .route(
            "/private",
            get(|| async { ([(header::CACHE_CONTROL, "private")], "yours") })
                .layer(layer.route("private page")),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    for path in [
        "/products/1",
        "/products/1",
        "/products/2",
        "/private",
        "/private",
    ] {
        client.get(format!("{address}{path}")).send().await.unwrap();
    }

    let shown = handle.render();
    for line in [
        r#"cachy_http_responses{store="pages",route="/products/{id}",cache="miss"} 2"#,
        r#"cachy_http_responses{store="pages",route="/products/{id}",cache="hit"} 1"#,
        r#"cachy_http_responses{store="pages",route="private page",cache="pass"} 2"#,
    ] {
        assert!(shown.contains(line), "{line} not in:\n{shown}");
    }
}
