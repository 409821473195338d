//! Tracing spans, keys in them, and manager-wide hooks, on the memory store. (The behaviour
//! suite checks counters, hooks and metrics on every store.)

#![cfg(all(feature = "tracing", feature = "memory"))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cachy::observe::{KeyRecording, Operation, Outcome, record_keys};
use cachy::{CacheManager, ErrorKind};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One span as the subscriber saw it: its name and every field recorded on it.
#[derive(Debug, Default, Clone)]
struct SeenSpan {
    name: String,
    fields: Vec<(String, String)>,
}

impl SeenSpan {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

/// A subscriber that keeps every span up to `level`.
struct Spans {
    level: Level,
    next: AtomicU64,
    spans: Mutex<Vec<SeenSpan>>,
}

impl Spans {
    fn new(level: Level) -> Arc<Self> {
        Arc::new(Spans {
            level,
            next: AtomicU64::new(1),
            spans: Mutex::default(),
        })
    }

    fn seen(&self) -> Vec<SeenSpan> {
        self.spans.lock().unwrap().clone()
    }
}

impl Subscriber for Spans {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.level
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut span = SeenSpan {
            name: attributes.metadata().name().to_owned(),
            fields: Vec::new(),
        };
        attributes.record(&mut Fields(&mut span.fields));
        self.spans.lock().unwrap().push(span);
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, id: &Id, values: &Record<'_>) {
        let index = (id.into_u64() - 1) as usize;
        let mut spans = self.spans.lock().unwrap();
        values.record(&mut Fields(&mut spans[index].fields));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn manager() -> CacheManager {
    CacheManager::from_value(serde_json::json!({ "stores": { "dict": { "driver": "dict" } } }))
        .unwrap()
}

/// Run `work` on a current-thread runtime with `subscriber` as this thread's subscriber.
fn traced<F: std::future::Future>(subscriber: Arc<Spans>, work: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(work))
}

#[test]
fn one_debug_span_per_operation_with_its_outcome_and_keys_only_when_asked() {
    let spans = Spans::new(Level::DEBUG);
    let cache = manager();
    traced(spans.clone(), async {
        let repo = cache.store(None).unwrap();
        assert_eq!(repo.get::<i32>("a").await.unwrap(), None);
        repo.put("a", &1, 10).await.unwrap();
        assert_eq!(repo.get::<i32>("a").await.unwrap(), Some(1));
        repo.put("text", "x", 10).await.unwrap();
        repo.increment("text").await.unwrap_err();
        record_keys(KeyRecording::Plain);
        repo.get::<i32>("plain key").await.unwrap();
        record_keys(KeyRecording::Hashed);
        repo.get::<i32>("hashed key").await.unwrap();
        record_keys(KeyRecording::Off);
    });
    let seen: Vec<SeenSpan> = spans
        .seen()
        .into_iter()
        .filter(|s| s.name == "cache")
        .collect();
    let summary: Vec<(Option<&str>, Option<&str>)> = seen
        .iter()
        .map(|s| (s.field("operation"), s.field("outcome")))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("get"), Some("miss")),
            (Some("put"), Some("written")),
            (Some("get"), Some("hit")),
            (Some("put"), Some("written")),
            (Some("increment"), Some("error")),
            (Some("get"), Some("miss")),
            (Some("get"), Some("miss")),
        ]
    );
    assert!(seen.iter().all(|s| s.field("store") == Some("dict")));
    assert!(
        seen[..5].iter().all(|s| s.field("key").is_none()),
        "keys are off by default"
    );
    assert_eq!(seen[5].field("key"), Some("plain key"));
    let hashed = seen[6].field("key").unwrap();
    assert_eq!(hashed.len(), 16);
    assert!(hashed.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn a_service_logging_at_info_gets_no_per_operation_span() {
    let spans = Spans::new(Level::INFO);
    let cache = manager();
    traced(spans.clone(), async {
        let repo = cache.store(None).unwrap();
        repo.put("a", &1, 10).await.unwrap();
        repo.get::<i32>("a").await.unwrap();
    });
    assert!(spans.seen().is_empty(), "{:?}", spans.seen());
}

#[tokio::test]
async fn manager_hooks_see_the_stores_built_before_and_after() {
    let cache = CacheManager::from_value(serde_json::json!({
        "default": "a",
        "stores": { "a": { "driver": "dict" }, "b": { "driver": "dict" } }
    }))
    .unwrap();
    let before = cache.store("a").unwrap();
    let events: Arc<Mutex<Vec<(String, Operation, Outcome)>>> = Arc::default();
    let seen = Arc::clone(&events);
    cache.on_event(move |event| {
        seen.lock()
            .unwrap()
            .push((event.store.to_owned(), event.operation, event.outcome));
    });
    before.get::<i32>("x").await.unwrap();
    let after = cache.store("b").unwrap();
    after.put("x", &1, 10).await.unwrap();
    after.put("t", "text", 10).await.unwrap();
    after.decrement("t").await.unwrap_err();
    assert_eq!(
        *events.lock().unwrap(),
        [
            ("a".to_owned(), Operation::Get, Outcome::Miss),
            ("b".to_owned(), Operation::Put, Outcome::Written),
            ("b".to_owned(), Operation::Put, Outcome::Written),
            (
                "b".to_owned(),
                Operation::Increment,
                Outcome::Failed(ErrorKind::NotAnInteger)
            ),
        ]
    );
}
