//! The metric names a service sees through `metrics-exporter-prometheus`, the exporter most
//! services use, with its default settings: the names the README's queries use.

#![cfg(all(feature = "metrics", feature = "memory"))]

use cachy::CacheManager;
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::test]
async fn the_prometheus_exporter_shows_the_names_the_readme_queries() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    cachy::observe::enable_metrics();

    let cache = CacheManager::from_value(serde_json::json!({
        "default": "dict",
        "stores": {
            "dict": { "driver": "dict" },
            "small": { "driver": "dict", "max_entries": 2 },
        }
    }))
    .unwrap();
    let small = cache.store("small").unwrap();
    for key in ["x", "y", "z"] {
        small.put(key, &1, 10).await.unwrap();
    }
    cache.put("a", &1, 10).await.unwrap();
    let _: Option<i64> = cache.get("a").await.unwrap();
    let _: Option<i64> = cache.get("b").await.unwrap();
    cache.put("s", &"text", 10).await.unwrap();
    cache.increment("s").await.unwrap_err();

    let shown = handle.render();
    for line in [
        r#"cachy_requests{store="dict",operation="get",outcome="hit"} 1"#,
        r#"cachy_requests{store="dict",operation="get",outcome="miss"} 1"#,
        r#"cachy_errors{store="dict",operation="increment",error_type="not_an_integer"} 1"#,
        r#"cachy_operation_duration_count{store="dict",operation="get"} 2"#,
        "# TYPE cachy_operation_duration summary",
        r#"cachy_evictions{store="small",cause="size"} 1"#,
    ] {
        assert!(
            shown.lines().any(|shown| shown == line),
            "no line {line:?} in:\n{shown}"
        );
    }
}

/// With buckets set (`set_buckets`), durations are a Prometheus histogram, which
/// `histogram_quantile` reads.
#[test]
fn with_buckets_durations_are_a_histogram() {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[0.0001, 0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    cachy::observe::enable_metrics();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let cache = CacheManager::from_value(serde_json::json!({
                "stores": { "buckets": { "driver": "dict" } }
            }))
            .unwrap();
            let _: Option<i64> = cache.get("a").await.unwrap();
        })
    });
    let shown = handle.render();
    let line = r#"cachy_operation_duration_bucket{store="buckets",operation="get",le="+Inf"} 1"#;
    assert!(
        shown.lines().any(|shown| shown == line),
        "no line {line:?} in:\n{shown}"
    );
}
