//! Observability: the counters, the hooks and (with the `metrics` feature) the metrics of a
//! known sequence of operations are exact.

use std::sync::{Arc, Mutex};

use cachy::observe::{Operation, Outcome};

use super::*;

/// A repository of its own over the same store, under a name no other test uses, so that its
/// metric series are its own.
fn observed(repo: &Repository) -> Repository {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "observed-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Repository::new(name, repo.store().clone(), repo.serializer().clone())
}

/// An event as a hook saw it.
type Seen = (Operation, Option<String>, Outcome);

/// Counters, hooks and metrics count a known sequence exactly: 4 hits (`many` counts each
/// key), 3 misses, 4 writes (a `remember` that computed and stored counts as a miss and a
/// write), 1 removal, 1 error.
pub async fn observability_counts_a_known_sequence_exactly(repo: &Repository) {
    #[cfg(feature = "metrics")]
    let metrics = metrics::Recorded::install();
    let repo = observed(repo);
    let events: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let seen = Arc::clone(&events);
    repo.on_event(move |event| {
        // Only the operations: which entries an in-process store drops is its own
        // business, checked by its own tests.
        if event.operation == Operation::Evict {
            return;
        }
        seen.lock()
            .unwrap()
            .push((event.operation, event.key.map(str::to_owned), event.outcome));
    });

    assert_eq!(repo.get::<String>("a").await.unwrap(), None); // miss
    repo.put("a", "x", TEN_MINUTES).await.unwrap(); // write
    assert!(repo.get::<String>("a").await.unwrap().is_some()); // hit
    let both: Vec<Option<String>> = repo.many(&["a", "b"]).await.unwrap(); // hit, miss
    assert_eq!(both.len(), 2);
    assert!(repo.has("a").await.unwrap()); // hit
    repo.put("n", "not a number", TEN_MINUTES).await.unwrap(); // write
    let error = repo.increment("n").await.unwrap_err(); // error
    assert_eq!(error.kind(), ErrorKind::NotAnInteger);
    let value: String = repo
        .remember("r", TEN_MINUTES, || async {
            Ok::<_, cachy::Error>("r".to_owned())
        })
        .await
        .unwrap(); // computed: a miss, and the computed value written
    assert_eq!(value, "r");
    let value: String = repo
        .remember("r", TEN_MINUTES, || async {
            Ok::<_, cachy::Error>("other".to_owned())
        })
        .await
        .unwrap(); // hit
    assert_eq!(value, "r");
    repo.put("c", "y", TEN_MINUTES).await.unwrap(); // write
    assert!(repo.forget("c").await.unwrap()); // removal

    let stats = repo.stats();
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.stale_hits,
            stats.writes,
            stats.removals,
            stats.errors
        ),
        (4, 3, 0, 4, 1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.hit_ratio(), Some(4.0 / 7.0));

    let events = events.lock().unwrap();
    let key = |k: &str| Some(k.to_owned());
    assert_eq!(
        *events,
        [
            (Operation::Get, key("a"), Outcome::Miss),
            (Operation::Put, key("a"), Outcome::Written),
            (Operation::Get, key("a"), Outcome::Hit),
            (Operation::Many, key("a"), Outcome::Hit),
            (Operation::Many, key("b"), Outcome::Miss),
            (Operation::Has, key("a"), Outcome::Hit),
            (Operation::Put, key("n"), Outcome::Written),
            (
                Operation::Increment,
                key("n"),
                Outcome::Failed(ErrorKind::NotAnInteger)
            ),
            (Operation::Remember, key("r"), Outcome::Computed),
            (Operation::Remember, key("r"), Outcome::Hit),
            (Operation::Put, key("c"), Outcome::Written),
            (Operation::Forget, key("c"), Outcome::Removed),
        ]
    );

    #[cfg(feature = "metrics")]
    {
        let store = repo.name();
        for (operation, outcome, count) in [
            ("get", "hit", 1),
            ("get", "miss", 1),
            ("many", "hit", 1),
            ("many", "miss", 1),
            ("has", "hit", 1),
            ("put", "written", 3),
            ("increment", "error", 1),
            ("remember", "computed", 1),
            ("remember", "hit", 1),
            ("forget", "removed", 1),
        ] {
            assert_eq!(
                metrics.counter(
                    "cachy.requests",
                    store,
                    operation,
                    Some(("outcome", outcome))
                ),
                count,
                "{operation} {outcome}"
            );
        }
        assert_eq!(
            metrics.counter(
                "cachy.errors",
                store,
                "increment",
                Some(("error.type", "not_an_integer"))
            ),
            1
        );
        assert_eq!(metrics.histogram_count(store, "get"), 2);
    }
}

/// The process's metrics recorder, for the behaviour suite.
#[cfg(feature = "metrics")]
mod metrics {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use metrics_util::CompositeKey;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    /// What the recorder saw. A snapshot drains every series, and the tests of a binary run
    /// at once, so every snapshot is added to running totals that all of them read.
    pub(super) struct Recorded {
        snapshotter: &'static Snapshotter,
        totals: &'static Mutex<HashMap<CompositeKey, u64>>,
    }

    impl Recorded {
        /// The process's recorder, installed on first use, with cachy's metrics turned on.
        pub(super) fn install() -> Self {
            static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
            static TOTALS: OnceLock<Mutex<HashMap<CompositeKey, u64>>> = OnceLock::new();
            let snapshotter = SNAPSHOTTER.get_or_init(|| {
                let recorder = DebuggingRecorder::new();
                let snapshotter = recorder.snapshotter();
                recorder
                    .install()
                    .expect("no other metrics recorder in the test process");
                cachy::observe::enable_metrics();
                snapshotter
            });
            Recorded {
                snapshotter,
                totals: TOTALS.get_or_init(Mutex::default),
            }
        }

        /// The total of every series whose name is `name` and whose labels include `store`,
        /// `operation` and `extra`: a counter's count (0 if never registered), or how many
        /// values a histogram got.
        pub(super) fn counter(
            &self,
            name: &str,
            store: &str,
            operation: &str,
            extra: Option<(&str, &str)>,
        ) -> u64 {
            let mut totals = self.totals.lock().unwrap();
            for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
                let drained = match value {
                    DebugValue::Counter(count) => count,
                    DebugValue::Histogram(values) => values.len() as u64,
                    DebugValue::Gauge(_) => continue,
                };
                *totals.entry(key).or_default() += drained;
            }
            totals
                .iter()
                .filter(|(key, _)| {
                    let has = |label: &str, value: &str| {
                        key.key()
                            .labels()
                            .any(|l| l.key() == label && l.value() == value)
                    };
                    key.key().name() == name
                        && has("store", store)
                        && has("operation", operation)
                        && extra.is_none_or(|(label, value)| has(label, value))
                })
                .map(|(_, total)| *total)
                .sum()
        }

        /// How many durations were recorded for `operation` on `store`.
        pub(super) fn histogram_count(&self, store: &str, operation: &str) -> u64 {
            self.counter("cachy.operation.duration", store, operation, None)
        }
    }
}
