//! What a cache is doing: per-repository counters ([`Repository::stats`]), event hooks
//! ([`Repository::on_event`], [`CacheManager::on_event`]), `tracing` spans (feature `tracing`,
//! on by default) and `metrics` (feature `metrics`, once [`enable_metrics`] is called).
//!
//! Every repository operation is observed in one place: one span per operation, at `DEBUG`
//! (a service logging at `INFO` sees none), named `cache` with the fields `store`,
//! `operation`, `outcome` and, only when asked for with [`record_keys`] (keys can be personal
//! data), `key`. State changes of the stores themselves (a server marked down and back, a
//! resubscription) are events at `WARN` and `INFO`.
//!
//! [`Repository::stats`]: crate::Repository::stats
//! [`Repository::on_event`]: crate::Repository::on_event
//! [`CacheManager::on_event`]: crate::CacheManager::on_event

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

use std::future::Future;

use crate::error::{Error, ErrorKind};
use crate::store::Ttl;

/// A repository operation, as spans, metrics and hooks name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `get` and its `get_or*` variants.
    Get,
    /// `many` (one event per key).
    Many,
    /// `has`.
    Has,
    /// `pull`.
    Pull,
    /// `put` and `forever`.
    Put,
    /// `put_many` (one event per key).
    PutMany,
    /// `add`.
    Add,
    /// `forget`.
    Forget,
    /// `touch`.
    Touch,
    /// `increment*` and `decrement*`.
    Increment,
    /// `flush`.
    Flush,
    /// `remember` and its variants.
    Remember,
}

impl Operation {
    /// Its name in spans and metric labels: `get`, `put_many`, ...
    pub fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Many => "many",
            Operation::Has => "has",
            Operation::Pull => "pull",
            Operation::Put => "put",
            Operation::PutMany => "put_many",
            Operation::Add => "add",
            Operation::Forget => "forget",
            Operation::Touch => "touch",
            Operation::Increment => "increment",
            Operation::Flush => "flush",
            Operation::Remember => "remember",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// A read found a fresh value.
    Hit,
    /// A read found nothing (for `remember`: the value was computed).
    Miss,
    /// `remember` served a fail-safe fallback: an expired value, because the factory failed
    /// or was too slow.
    Stale,
    /// A value was stored.
    Written,
    /// A value was removed.
    Removed,
    /// Nothing changed: an `add` that found a value, a `forget` or `touch` of a missing key.
    Unchanged,
    /// Done, neither a read nor a write of one value: a counter changed, a store flushed.
    Done,
    /// The cache failed with an error of this kind.
    Failed(ErrorKind),
}

impl Outcome {
    /// Its name in spans and metric labels: `hit`, `miss`, `stale`, `written`, `removed`,
    /// `unchanged`, `done`, `error`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Stale => "stale",
            Outcome::Written => "written",
            Outcome::Removed => "removed",
            Outcome::Unchanged => "unchanged",
            Outcome::Done => "done",
            Outcome::Failed(_) => "error",
        }
    }

    /// The index of its counter in [`Observer`]'s counts, if it has one.
    fn counter(self) -> Option<usize> {
        match self {
            Outcome::Hit => Some(0),
            Outcome::Miss => Some(1),
            Outcome::Stale => Some(2),
            Outcome::Written => Some(3),
            Outcome::Removed => Some(4),
            Outcome::Failed(_) => Some(5),
            Outcome::Unchanged | Outcome::Done => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One observed operation, as event hooks receive it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Event<'a> {
    /// The store's name, as configured.
    pub store: &'a str,
    /// The operation.
    pub operation: Operation,
    /// The key as the caller gave it (`None` for `flush`).
    pub key: Option<&'a str>,
    /// How it ended.
    pub outcome: Outcome,
}

/// A repository's counters since it was built, from [`Repository::stats`](crate::Repository::stats).
/// Shared by every clone of the repository and by its tagged views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Reads that found a fresh value (`many` counts each key).
    pub hits: u64,
    /// Reads that found nothing (`remember`: values computed).
    pub misses: u64,
    /// Fail-safe fallbacks served by `remember`.
    pub stale_hits: u64,
    /// Values stored.
    pub writes: u64,
    /// Values removed.
    pub removals: u64,
    /// Operations that failed with a cache error.
    pub errors: u64,
    /// When counting started (when the repository was built).
    pub since: SystemTime,
}

impl Stats {
    /// Hits (stale ones included) over all reads, or `None` before the first read.
    pub fn hit_ratio(&self) -> Option<f64> {
        let hits = self.hits + self.stale_hits;
        let reads = hits + self.misses;
        (reads > 0).then(|| hits as f64 / reads as f64)
    }
}

/// What [`record_keys`] puts in spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRecording {
    /// No key (the default: keys can be personal data).
    Off,
    /// The key as given.
    Plain,
    /// The first 16 hex digits of the key's SHA-1, enough to tell keys apart in a trace
    /// without showing them.
    Hashed,
}

static KEY_RECORDING: AtomicU8 = AtomicU8::new(0);
static METRICS: AtomicBool = AtomicBool::new(false);

/// Choose what spans record of each key, for the whole process (default: nothing).
pub fn record_keys(recording: KeyRecording) {
    let value = match recording {
        KeyRecording::Off => 0,
        KeyRecording::Plain => 1,
        KeyRecording::Hashed => 2,
    };
    KEY_RECORDING.store(value, Ordering::Relaxed);
}

/// The key as spans show it, or `None`.
#[cfg(feature = "tracing")]
fn shown_key(key: &str) -> Option<String> {
    match KEY_RECORDING.load(Ordering::Relaxed) {
        1 => Some(key.to_owned()),
        2 => {
            use sha1::Digest;
            Some(hex::encode(&sha1::Sha1::digest(key.as_bytes())[..8]))
        }
        _ => None,
    }
}

/// Record metrics (feature `metrics`) through the `metrics` facade from now on, for the whole
/// process: call it once the recorder (exporter) is installed. Metrics are off until then,
/// so that a program without a recorder does not pay for timing every operation.
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `cachy.requests` | counter | `store`, `operation`, `outcome` (`hit`, `miss`, `stale`, `written`, `removed`, `unchanged`, `done`, `error`) |
/// | `cachy.errors` | counter | `store`, `operation`, `error.type` (the [`ErrorKind`], e.g. `unavailable`) |
/// | `cachy.operation.duration` | histogram, seconds | `store`, `operation` |
/// | `cachy.single_flights` | gauge | `store`: computations in progress that other callers wait for |
#[cfg(feature = "metrics")]
pub fn enable_metrics() {
    METRICS.store(true, Ordering::Release);
}

/// Whether operations are timed for metrics.
pub(crate) fn metrics_enabled() -> bool {
    cfg!(feature = "metrics") && METRICS.load(Ordering::Relaxed)
}

/// A callback for [`Event`]s.
pub(crate) type Hook = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// Event hooks, cheap to check when there are none.
#[derive(Default)]
pub(crate) struct Hooks {
    any: AtomicBool,
    hooks: RwLock<Vec<Hook>>,
}

impl Hooks {
    pub(crate) fn add(&self, hook: Hook) {
        self.hooks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(hook);
        self.any.store(true, Ordering::Release);
    }

    fn fire(&self, event: &Event<'_>) {
        if self.any.load(Ordering::Acquire) {
            for hook in self
                .hooks
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                hook(event);
            }
        }
    }
}

/// One repository's counters, hooks and metric handles.
pub(crate) struct Observer {
    counts: [AtomicU64; 6],
    since: SystemTime,
    hooks: Hooks,
    /// The manager's hooks, shared by all its repositories.
    manager_hooks: OnceLock<Arc<Hooks>>,
    #[cfg(feature = "metrics")]
    metrics: metrics_handles::Handles,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            counts: Default::default(),
            since: SystemTime::now(),
            hooks: Hooks::default(),
            manager_hooks: OnceLock::new(),
            #[cfg(feature = "metrics")]
            metrics: metrics_handles::Handles::default(),
        }
    }
}

impl Observer {
    pub(crate) fn stats(&self) -> Stats {
        let count = |i: usize| self.counts[i].load(Ordering::Relaxed);
        Stats {
            hits: count(0),
            misses: count(1),
            stale_hits: count(2),
            writes: count(3),
            removals: count(4),
            errors: count(5),
            since: self.since,
        }
    }

    pub(crate) fn add_hook(&self, hook: Hook) {
        self.hooks.add(hook);
    }

    /// Share the manager's hooks (once: a repository belongs to one manager).
    pub(crate) fn attach(&self, manager_hooks: &Arc<Hooks>) {
        let _ = self.manager_hooks.set(Arc::clone(manager_hooks));
    }

    /// Count, hand to the hooks and to metrics one outcome of `operation` on `key`.
    pub(crate) fn record(
        &self,
        store: &str,
        operation: Operation,
        key: Option<&str>,
        outcome: Outcome,
    ) {
        if let Some(counter) = outcome.counter() {
            self.counts[counter].fetch_add(1, Ordering::Relaxed);
        }
        let event = Event {
            store,
            operation,
            key,
            outcome,
        };
        self.hooks.fire(&event);
        if let Some(hooks) = self.manager_hooks.get() {
            hooks.fire(&event);
        }
        #[cfg(feature = "metrics")]
        if metrics_enabled() {
            self.metrics.count(store, operation, outcome);
        }
    }

    /// Record how long `operation` took, for metrics.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn timed(&self, store: &str, operation: Operation, seconds: f64) {
        #[cfg(feature = "metrics")]
        self.metrics.duration(store, operation).record(seconds);
    }
}

impl crate::Repository {
    /// Run `work`, the operation `operation` on `key`, observed: in a span, counted, handed
    /// to the hooks and, with metrics on, timed. `outcome` tells how a success ended; an
    /// error that is a cache [`Error`] is a failure of its kind, any other (a `remember`
    /// factory's own) a miss.
    pub(crate) async fn observed<T, E: 'static>(
        &self,
        operation: Operation,
        key: Option<&str>,
        outcome: impl FnOnce(&T) -> Outcome,
        work: impl Future<Output = std::result::Result<T, E>>,
    ) -> std::result::Result<T, E> {
        self.observed_each(operation, key, work, reporting(key, outcome))
            .await
    }

    /// [`observed`](Self::observed) for an operation on several keys: `report` records one
    /// outcome per key (or one for the whole call).
    pub(crate) async fn observed_each<T, E: 'static>(
        &self,
        operation: Operation,
        key: Option<&str>,
        work: impl Future<Output = std::result::Result<T, E>>,
        report: impl FnOnce(std::result::Result<&T, &E>, &mut Record<'_>),
    ) -> std::result::Result<T, E> {
        let observation = self.start_observation(operation, key);
        self.observe_until(observation, work, report).await
    }

    /// The rest of an observation begun with [`start_observation`](Self::start_observation):
    /// `work`, in its span, then its outcome.
    pub(crate) async fn observe_until<T, E>(
        &self,
        observation: Observation,
        work: impl Future<Output = std::result::Result<T, E>>,
        report: impl FnOnce(std::result::Result<&T, &E>, &mut Record<'_>),
    ) -> std::result::Result<T, E> {
        #[cfg(feature = "tracing")]
        let result = match &observation.span {
            Some(span) => tracing::Instrument::instrument(work, span.clone()).await,
            None => work.await,
        };
        #[cfg(not(feature = "tracing"))]
        let result = work.await;
        self.finish_observation(observation, result, report)
    }

    /// Begin observing `operation` on `key`: its span (if a subscriber wants one) and, with
    /// metrics on, its start time.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn start_observation(&self, operation: Operation, key: Option<&str>) -> Observation {
        Observation {
            operation,
            started: metrics_enabled().then(std::time::Instant::now),
            // Without a subscriber that wants `DEBUG` (one atomic load), no span is made at all.
            #[cfg(feature = "tracing")]
            span: tracing::level_enabled!(tracing::Level::DEBUG)
                .then(|| span(self.name(), operation, key)),
        }
    }

    /// Record the outcome of an observed operation, as `report` reads it from `result`.
    pub(crate) fn finish_observation<T, E>(
        &self,
        observation: Observation,
        result: std::result::Result<T, E>,
        report: impl FnOnce(std::result::Result<&T, &E>, &mut Record<'_>),
    ) -> std::result::Result<T, E> {
        let (name, operation) = (self.name(), observation.operation);
        #[cfg(feature = "tracing")]
        let mut last = None;
        report(result.as_ref(), &mut |key, outcome| {
            self.observer().record(name, operation, key, outcome);
            #[cfg(feature = "tracing")]
            {
                last = Some(outcome);
            }
        });
        #[cfg(feature = "tracing")]
        if let (Some(span), Some(outcome)) = (&observation.span, last) {
            span.record("outcome", outcome.name());
        }
        if let Some(started) = observation.started {
            let seconds = started.elapsed().as_secs_f64();
            self.observer().timed(name, operation, seconds);
        }
        result
    }
}

/// One operation being observed, between its start and its outcome.
pub(crate) struct Observation {
    operation: Operation,
    /// When it started, if metrics are on.
    started: Option<std::time::Instant>,
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
}

/// What a report calls with each key's outcome.
pub(crate) type Record<'a> = dyn FnMut(Option<&str>, Outcome) + 'a;

/// The report of an operation on one `key`: its outcome on success, its error's otherwise.
pub(crate) fn reporting<T, E: 'static>(
    key: Option<&str>,
    outcome: impl FnOnce(&T) -> Outcome,
) -> impl FnOnce(std::result::Result<&T, &E>, &mut Record<'_>) {
    move |result, record| record(key, result.map_or_else(error_outcome, outcome))
}

impl Observation {
    /// Run `work` inside this observation's span, if it has one.
    pub(crate) fn in_scope<R>(&self, work: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            return span.in_scope(work);
        }
        work()
    }
}

/// A read's outcome: whether it found a value.
pub(crate) fn found<T>(value: &Option<T>) -> Outcome {
    if value.is_some() {
        Outcome::Hit
    } else {
        Outcome::Miss
    }
}

/// A removal's outcome.
pub(crate) fn removed(removed: &bool) -> Outcome {
    if *removed {
        Outcome::Removed
    } else {
        Outcome::Unchanged
    }
}

/// A write's outcome: a lifetime of zero or less removes instead.
pub(crate) fn written(ttl: Option<Ttl>) -> Outcome {
    if ttl.is_some() {
        Outcome::Written
    } else {
        Outcome::Removed
    }
}

/// The outcome of an operation that failed with `error`: a cache error's kind, or, for a
/// `remember` factory's own error, a miss (the value was not there; the cache did not fail).
pub(crate) fn error_outcome<E: 'static>(error: &E) -> Outcome {
    match (error as &dyn std::any::Any).downcast_ref::<Error>() {
        Some(error) => Outcome::Failed(error.kind()),
        None => Outcome::Miss,
    }
}

/// The span of one operation (feature `tracing`).
#[cfg(feature = "tracing")]
pub(crate) fn span(store: &str, operation: Operation, key: Option<&str>) -> tracing::Span {
    let span = tracing::debug_span!(
        "cache",
        store,
        operation = operation.name(),
        key = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    if !span.is_disabled()
        && let Some(shown) = key.and_then(shown_key)
    {
        span.record("key", shown);
    }
    span
}

/// Metric handles, registered on first use of each series.
#[cfg(feature = "metrics")]
mod metrics_handles {
    use std::sync::OnceLock;

    use super::{Operation, Outcome};
    use crate::error::ErrorKind;

    const OUTCOMES: usize = 8;
    const OPERATIONS: usize = Operation::Remember as usize + 1;

    #[derive(Default)]
    pub(super) struct Handles {
        requests: [[OnceLock<metrics::Counter>; OUTCOMES]; OPERATIONS],
        errors: std::sync::Mutex<Vec<((Operation, ErrorKind), metrics::Counter)>>,
        durations: [OnceLock<metrics::Histogram>; OPERATIONS],
    }

    fn index(operation: Operation) -> usize {
        operation as usize
    }

    fn outcome_index(outcome: Outcome) -> usize {
        match outcome {
            Outcome::Hit => 0,
            Outcome::Miss => 1,
            Outcome::Stale => 2,
            Outcome::Written => 3,
            Outcome::Removed => 4,
            Outcome::Unchanged => 5,
            Outcome::Done => 6,
            Outcome::Failed(_) => 7,
        }
    }

    impl Handles {
        pub(super) fn count(&self, store: &str, operation: Operation, outcome: Outcome) {
            self.requests[index(operation)][outcome_index(outcome)]
                .get_or_init(|| {
                    metrics::counter!(
                        "cachy.requests",
                        "store" => store.to_owned(),
                        "operation" => operation.name(),
                        "outcome" => outcome.name(),
                    )
                })
                .increment(1);
            if let Outcome::Failed(kind) = outcome {
                let mut errors = self
                    .errors
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let counter = match errors.iter().find(|(k, _)| *k == (operation, kind)) {
                    Some((_, counter)) => counter.clone(),
                    None => {
                        let counter = metrics::counter!(
                            "cachy.errors",
                            "store" => store.to_owned(),
                            "operation" => operation.name(),
                            "error.type" => kind.name(),
                        );
                        errors.push(((operation, kind), counter.clone()));
                        counter
                    }
                };
                counter.increment(1);
            }
        }

        pub(super) fn duration(&self, store: &str, operation: Operation) -> &metrics::Histogram {
            self.durations[index(operation)].get_or_init(|| {
                metrics::histogram!(
                    "cachy.operation.duration",
                    "store" => store.to_owned(),
                    "operation" => operation.name(),
                )
            })
        }
    }
}
