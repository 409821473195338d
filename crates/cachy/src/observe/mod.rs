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

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

#[cfg(feature = "metrics")]
mod metrics;
mod operation;
mod report;

pub use operation::{EvictionCause, Operation, Outcome};
#[cfg(feature = "tracing")]
pub(crate) use report::span;
pub(crate) use report::{Record, error_outcome, found, removed, reporting, written};

impl Outcome {
    /// The indexes of the counters in [`Observer`]'s counts it adds one to.
    fn counters(self) -> &'static [usize] {
        match self {
            Outcome::Hit => &[HITS],
            Outcome::Miss => &[MISSES],
            Outcome::Computed => &[MISSES, WRITES],
            Outcome::Stale => &[STALE_HITS],
            Outcome::Written => &[WRITES],
            Outcome::Removed => &[REMOVALS],
            Outcome::Failed(_) => &[ERRORS],
            Outcome::FactoryFailed => &[FACTORY_ERRORS],
            Outcome::Evicted(cause) if cause.is_eviction() => &[EVICTIONS],
            Outcome::Unchanged | Outcome::Done | Outcome::Evicted(_) => &[],
        }
    }
}

const HITS: usize = 0;
const MISSES: usize = 1;
const STALE_HITS: usize = 2;
const WRITES: usize = 3;
const REMOVALS: usize = 4;
const ERRORS: usize = 5;
const FACTORY_ERRORS: usize = 6;
const EVICTIONS: usize = 7;
const COUNTERS: usize = 8;

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
    /// Values stored (by `remember` too).
    pub writes: u64,
    /// Values removed.
    pub removals: u64,
    /// Cache failures: operations that failed with a cache error, and the failures a
    /// resilient `remember` computed around.
    pub errors: u64,
    /// `remember` calls whose factory failed without a fallback to serve.
    pub factory_errors: u64,
    /// Entries an in-process store dropped for room or because they expired (see
    /// [`EvictionCause::is_eviction`]); every drop is also an event
    /// ([`Operation::Evict`]).
    pub evictions: u64,
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
pub(crate) fn shown_key(key: &str) -> Option<String> {
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
/// | `cachy.requests` | counter | `store`, `operation`, `outcome` (`hit`, `miss`, `computed`, `stale`, `written`, `removed`, `unchanged`, `done`, `error`, `factory_error`) |
/// | `cachy.errors` | counter | `store`, `operation`, `error.type` (the [`ErrorKind`](crate::ErrorKind), e.g. `unavailable`) |
/// | `cachy.operation.duration` | histogram, seconds | `store`, `operation` |
/// | `cachy.single_flights` | gauge | `store`: computations in progress that other callers wait for |
/// | `cachy.evictions` | counter | `store`, `cause` (`size`, `expired`, `replaced`, `removed`): entries an in-process store dropped |
#[cfg(feature = "metrics")]
pub fn enable_metrics() {
    METRICS.store(true, Ordering::Release);
}

/// Whether metrics are recorded: the feature `metrics` is on and
/// [`enable_metrics`] was called. Crates that record metrics of their own beside cachy's
/// (`cachy-http`) follow the same switch.
pub fn metrics_enabled() -> bool {
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

/// How often a repository logs the cache failures it computed around, at most.
#[cfg(feature = "tracing")]
const WARNING_INTERVAL_MS: u64 = 10_000;

/// When the last warning about a failure computed around was logged (ms since the Unix
/// epoch), and how many were not logged since.
#[cfg(feature = "tracing")]
#[derive(Default)]
struct Warnings {
    last: AtomicU64,
    unlogged: AtomicU64,
}

/// One repository's counters, hooks and metric handles.
pub(crate) struct Observer {
    counts: [AtomicU64; COUNTERS],
    #[cfg(feature = "tracing")]
    warnings: Warnings,
    since: SystemTime,
    hooks: Hooks,
    /// The manager's hooks, shared by all its repositories.
    manager_hooks: OnceLock<Arc<Hooks>>,
    #[cfg(feature = "metrics")]
    metrics: metrics::Handles,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            counts: Default::default(),
            #[cfg(feature = "tracing")]
            warnings: Warnings::default(),
            since: SystemTime::now(),
            hooks: Hooks::default(),
            manager_hooks: OnceLock::new(),
            #[cfg(feature = "metrics")]
            metrics: metrics::Handles::default(),
        }
    }
}

impl Observer {
    pub(crate) fn stats(&self) -> Stats {
        let count = |i: usize| self.counts[i].load(Ordering::Relaxed);
        Stats {
            hits: count(HITS),
            misses: count(MISSES),
            stale_hits: count(STALE_HITS),
            writes: count(WRITES),
            removals: count(REMOVALS),
            errors: count(ERRORS),
            factory_errors: count(FACTORY_ERRORS),
            evictions: count(EVICTIONS),
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
        self.count_and_fire(&Event {
            store,
            operation,
            key,
            outcome,
        });
        #[cfg(feature = "metrics")]
        if metrics_enabled() {
            self.metrics.count(store, operation, outcome);
        }
    }

    /// Count, hand to the hooks and to metrics an entry the store dropped.
    pub(crate) fn record_eviction(&self, store: &str, key: &str, cause: EvictionCause) {
        self.count_and_fire(&Event {
            store,
            operation: Operation::Evict,
            key: Some(key),
            outcome: Outcome::Evicted(cause),
        });
        #[cfg(feature = "metrics")]
        if metrics_enabled() {
            self.metrics.evicted(store, cause);
        }
    }

    /// Add `event`'s outcome to the counters and hand it to this repository's hooks and the
    /// manager's.
    fn count_and_fire(&self, event: &Event<'_>) {
        for &counter in event.outcome.counters() {
            self.counts[counter].fetch_add(1, Ordering::Relaxed);
        }
        self.hooks.fire(event);
        if let Some(hooks) = self.manager_hooks.get() {
            hooks.fire(event);
        }
    }

    /// Whether to log a cache failure computed around now: at most one a repository every
    /// ten seconds, with how many were not logged before it (`None`: not this one).
    #[cfg(feature = "tracing")]
    pub(crate) fn warning_due(&self) -> Option<u64> {
        let warnings = &self.warnings;
        let now = crate::envelope::now();
        let last = warnings.last.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= WARNING_INTERVAL_MS
            && warnings
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if due {
            Some(warnings.unlogged.swap(0, Ordering::Relaxed))
        } else {
            warnings.unlogged.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Record how long `operation` took, for metrics.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn timed(&self, store: &str, operation: Operation, seconds: f64) {
        #[cfg(feature = "metrics")]
        self.metrics.duration(store, operation).record(seconds);
    }
}
