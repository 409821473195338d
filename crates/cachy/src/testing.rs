//! Testing your own code against the cache (cargo feature `testing`): a store that fails on
//! demand, a store that records what was read and written, and the in-process stores on
//! tokio's clock, so that a test moves time instead of sleeping.
//!
//! [`faulty`] and [`recording`] wrap a repository's store: the repository they return is
//! the one to hand to the code under test.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cachy::Result<()> {
//! use std::time::Duration;
//! use cachy::{ErrorKind, RememberOptions, Repository};
//!
//! /// The handler under test: its price comes from the cache, else from the database.
//! async fn price(cache: &Repository, sku: u32) -> Result<u32, cachy::Error> {
//!     let options = RememberOptions::new(Duration::from_secs(60));
//!     cache.remember_with(&format!("price:{sku}"), &options, move || async move {
//!         Ok::<_, cachy::Error>(sku * 100) // the database
//!     }).await
//! }
//!
//! let cache = cachy::CacheManager::from_value(serde_json::json!({
//!     "stores": { "dict": { "driver": "dict" } }
//! }))?;
//! let (cache, faults) = cachy::testing::faulty(&cache.store(None)?);
//! faults.down(); // the cache fails every call, as Redis going away does
//! assert_eq!(price(&cache, 7).await?, 700, "the handler still answers");
//! assert_eq!(cache.stats().errors, 2, "the failed read and write were seen");
//!
//! faults.up();
//! faults.fail_next(1, ErrorKind::Timeout); // one slow call
//! assert_eq!(price(&cache, 7).await?, 700);
//! # Ok(())
//! # }
//! ```
//!
//! **Time.** With the feature `test-clock` as well, the memory store, a hybrid store's first
//! level and the lifetimes `remember_with` records read tokio's clock: in a test on a paused
//! runtime (`#[tokio::test(start_paused = true)]`), `tokio::time::advance` expires their
//! items without waiting. Without it the clock is the system's, at no cost.
//!
//! ```
//! # #[cfg(feature = "test-clock")]
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> cachy::Result<()> {
//! use std::time::Duration;
//!
//! let cache = cachy::CacheManager::from_value(serde_json::json!({
//!     "stores": { "dict": { "driver": "dict" } }
//! }))?;
//! cache.put("session", &"ann", Duration::from_secs(600)).await?;
//! tokio::time::advance(Duration::from_secs(601)).await;
//! assert_eq!(cache.get::<String>("session").await?, None);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "test-clock"))]
//! # fn main() {}
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::decoded::Decoded;
use crate::error::{Error, ErrorKind, Result};
use crate::repository::Repository;
use crate::store::{EvictionListener, ForeverTracker, Lifetime, Store, Ttl};

/// `repository`'s store behind one that fails on demand, as a repository with the same
/// name and serializer, and the switches that fail it.
pub fn faulty(repository: &Repository) -> (Repository, Faults) {
    let (repository, state) = wrapped(repository);
    (repository, Faults(state))
}

/// `repository`'s store behind one that records every call, as a repository with the same
/// name and serializer, and the record.
pub fn recording(repository: &Repository) -> (Repository, Recording) {
    let (repository, state) = wrapped(repository);
    state.recording.store(true, Ordering::SeqCst);
    (repository, Recording(state))
}

fn wrapped(repository: &Repository) -> (Repository, Arc<State>) {
    let state = Arc::new(State::default());
    let store = Instrumented {
        inner: Arc::clone(repository.store()),
        state: Arc::clone(&state),
    };
    let wrapped = Repository::new(
        repository.name(),
        Arc::new(store),
        repository.serializer().clone(),
    );
    wrapped.set_default_cache_time(repository.default_expiry());
    (wrapped, state)
}

/// What the wrapper does to each call.
#[derive(Default)]
struct State {
    reads_down: AtomicBool,
    writes_down: AtomicBool,
    /// The error of calls failing while down (default `Unavailable`).
    down_kind: Mutex<Option<ErrorKind>>,
    /// How many of the next calls fail, and with what.
    failing_next: AtomicUsize,
    next_kind: Mutex<Option<ErrorKind>>,
    latency: Mutex<Option<Duration>>,
    recording: AtomicBool,
    calls: Mutex<Vec<Call>>,
}

/// Switches that fail a [`faulty`] store's calls. Clones share the switches.
#[derive(Clone)]
pub struct Faults(Arc<State>);

impl Faults {
    /// Fail every call from now on (with [`ErrorKind::Unavailable`] unless
    /// [`fail_with`](Self::fail_with) says otherwise).
    pub fn down(&self) {
        self.reads(false);
        self.writes(false);
    }

    /// Answer every call again (what [`fail_next`](Self::fail_next) still has to fail
    /// fails).
    pub fn up(&self) {
        self.reads(true);
        self.writes(true);
    }

    /// Answer reads (`true`) or fail them.
    pub fn reads(&self, working: bool) {
        self.0.reads_down.store(!working, Ordering::SeqCst);
    }

    /// Answer writes (`true`) or fail them.
    pub fn writes(&self, working: bool) {
        self.0.writes_down.store(!working, Ordering::SeqCst);
    }

    /// Fail the next `calls` calls, reads and writes alike, with `kind`.
    pub fn fail_next(&self, calls: usize, kind: ErrorKind) {
        *lock(&self.0.next_kind) = Some(kind);
        self.0.failing_next.store(calls, Ordering::SeqCst);
    }

    /// The kind of error calls return while down (default [`ErrorKind::Unavailable`]).
    pub fn fail_with(&self, kind: ErrorKind) {
        *lock(&self.0.down_kind) = Some(kind);
    }

    /// Wait `latency` before each call (`Duration::ZERO` for none): a slow server, for
    /// timeouts. Reads that an in-process store would answer at once go through the
    /// store's `get` while a latency is set.
    pub fn latency(&self, latency: Duration) {
        *lock(&self.0.latency) = Some(latency).filter(|l| !l.is_zero());
    }
}

/// One call a [`recording`] store received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Call {
    /// The store method: `get`, `get_many`, `put`, `put_many`, `add`, `increment`,
    /// `increment_expiring`, `compare_and_swap`, `compare_and_delete`,
    /// `get_with_lifetime`, `touch`, `forget`, `flush`, or `get_in_process` for a read an
    /// in-process store answered at once.
    pub method: &'static str,
    /// The keys it was given, as the store got them (with a tag namespace, say).
    pub keys: Vec<String>,
    /// Whether it writes.
    pub writes: bool,
}

/// What a [`recording`] store received. Clones share the record.
#[derive(Clone)]
pub struct Recording(Arc<State>);

impl Recording {
    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.0.calls).clone()
    }

    /// The keys read so far, in order.
    pub fn reads(&self) -> Vec<String> {
        self.keys(false)
    }

    /// The keys written (or removed) so far, in order.
    pub fn writes(&self) -> Vec<String> {
        self.keys(true)
    }

    /// Forget the calls so far.
    pub fn clear(&self) {
        lock(&self.0.calls).clear();
    }

    fn keys(&self, writes: bool) -> Vec<String> {
        lock(&self.0.calls)
            .iter()
            .filter(|call| call.writes == writes)
            .flat_map(|call| call.keys.iter().cloned())
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A store in front of another, failing, delaying and recording as its [`State`] says.
struct Instrumented {
    inner: Arc<dyn Store>,
    state: Arc<State>,
}

impl Instrumented {
    /// Record the call, then fail it if the switches say so.
    fn check(&self, method: &'static str, keys: &[&str], writes: bool) -> Result<()> {
        let state = &self.state;
        if state.recording.load(Ordering::SeqCst) {
            lock(&state.calls).push(Call {
                method,
                keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                writes,
            });
        }
        let down = if writes {
            &state.writes_down
        } else {
            &state.reads_down
        };
        let next = state
            .failing_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if next || down.load(Ordering::SeqCst) {
            let kind = if next {
                &state.next_kind
            } else {
                &state.down_kind
            };
            let kind = lock(kind).unwrap_or(ErrorKind::Unavailable);
            return Err(Error::new(
                kind,
                format!("`{method}` failed on purpose (cachy::testing::faulty)"),
            ));
        }
        Ok(())
    }

    async fn call(&self, method: &'static str, keys: &[&str], writes: bool) -> Result<()> {
        let latency = *lock(&self.state.latency);
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        self.check(method, keys, writes)
    }

    /// Whether a read may be answered in process now, without the async path.
    fn answers_in_process(&self) -> bool {
        let state = &self.state;
        !state.reads_down.load(Ordering::SeqCst)
            && state.failing_next.load(Ordering::SeqCst) == 0
            && lock(&state.latency).is_none()
    }
}

#[async_trait]
impl Store for Instrumented {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.call("get", &[key], false).await?;
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        self.call("get_many", keys, false).await?;
        self.inner.get_many(keys).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.call("put", &[key], true).await?;
        self.inner.put(key, value, ttl).await
    }

    async fn put_many(&self, items: &[(&str, Vec<u8>)], ttl: Ttl) -> Result<()> {
        let keys: Vec<&str> = items.iter().map(|(key, _)| *key).collect();
        self.call("put_many", &keys, true).await?;
        self.inner.put_many(items, ttl).await
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        self.call("add", &[key], true).await?;
        self.inner.add(key, value, ttl).await
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        self.call("increment", &[key], true).await?;
        self.inner.increment(key, by).await
    }

    async fn increment_expiring(&self, key: &str, by: i64, ttl: Ttl) -> Result<i64> {
        self.call("increment_expiring", &[key], true).await?;
        self.inner.increment_expiring(key, by, ttl).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        self.call("compare_and_swap", &[key], true).await?;
        self.inner.compare_and_swap(key, current, new).await
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.call("compare_and_delete", &[key], true).await?;
        self.inner.compare_and_delete(key, expected).await
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        self.call("get_with_lifetime", &[key], false).await?;
        self.inner.get_with_lifetime(key).await
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        self.call("touch", &[key], true).await?;
        self.inner.touch(key, ttl).await
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        self.call("forget", &[key], true).await?;
        self.inner.forget(key).await
    }

    async fn flush(&self) -> Result<()> {
        self.call("flush", &[], true).await?;
        self.inner.flush().await
    }

    fn get_in_process(&self, key: &str) -> Option<Option<Arc<[u8]>>> {
        // While reads fail or wait, every read goes through `get`.
        if !self.answers_in_process() {
            return None;
        }
        let answer = self.inner.get_in_process(key)?;
        self.check("get_in_process", &[key], false).ok()?;
        Some(answer)
    }

    fn get_decoded_in_process(
        &self,
        key: &str,
        type_id: std::any::TypeId,
        serializer: &crate::serializer::Serializer,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        if !self.answers_in_process() {
            return None;
        }
        let answer = self
            .inner
            .get_decoded_in_process(key, type_id, serializer)?;
        self.check("get_in_process", &[key], false).ok()?;
        Some(answer)
    }

    fn keep_decoded(&self, key: &str, bytes: &Arc<[u8]>, decoded: Decoded) {
        self.inner.keep_decoded(key, bytes, decoded);
    }

    fn listen_evictions(&self, listener: EvictionListener) {
        self.inner.listen_evictions(listener);
    }

    async fn publish_changes(&self) -> Result<()> {
        self.inner.publish_changes().await
    }

    async fn catch_up(&self) -> Result<()> {
        self.inner.catch_up().await
    }

    fn keep_after_failed_write(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        self.inner.keep_after_failed_write(key, value, ttl);
    }

    fn is_process_local(&self) -> bool {
        self.inner.is_process_local()
    }

    fn forever_tracker(&self) -> Option<&dyn ForeverTracker> {
        self.inner.forever_tracker()
    }

    fn inspector(&self) -> std::result::Result<&dyn crate::inspect::Inspect, &'static str> {
        self.inner.inspector()
    }

    #[cfg(feature = "hybrid")]
    fn pubsub(self: Arc<Self>) -> std::result::Result<Arc<dyn crate::store::PubSub>, &'static str> {
        Arc::clone(&self.inner).pubsub()
    }
}
