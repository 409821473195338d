//! A store that fails on demand in front of a real one: what the behaviour suite uses to
//! check what callers get while a store is down, on every store's own bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cachy::{Error, ErrorKind, Lifetime, Repository, Result, Store, Ttl};

/// Which calls a [`Faulty`] store fails while it is down.
#[derive(Default)]
struct Switches {
    reads: AtomicBool,
    writes: AtomicBool,
}

/// A store in front of `inner` whose reads, writes or both fail with
/// [`ErrorKind::Unavailable`] while switched off, as a server that went away does.
pub struct Faulty {
    inner: Arc<dyn Store>,
    down: Arc<Switches>,
}

/// Switches a [`Faulty`] store's calls off and on.
#[derive(Clone)]
pub struct FaultSwitch(Arc<Switches>);

impl FaultSwitch {
    /// Fail every call from now on.
    pub fn down(&self) {
        self.reads(false);
        self.writes(false);
    }

    /// Answer every call again.
    pub fn up(&self) {
        self.reads(true);
        self.writes(true);
    }

    /// Answer reads (`true`) or fail them.
    pub fn reads(&self, working: bool) {
        self.0.reads.store(!working, Ordering::SeqCst);
    }

    /// Answer writes (`true`) or fail them.
    pub fn writes(&self, working: bool) {
        self.0.writes.store(!working, Ordering::SeqCst);
    }
}

/// `repository`'s store behind a [`Faulty`] one, as a repository with the same name and
/// serializer, and the switch that fails it.
pub fn faulty(repository: &Repository) -> (Repository, FaultSwitch) {
    let down = Arc::new(Switches::default());
    let store = Faulty {
        inner: Arc::clone(repository.store()),
        down: Arc::clone(&down),
    };
    let faulty = Repository::new(
        repository.name(),
        Arc::new(store),
        repository.serializer().clone(),
    );
    (faulty, FaultSwitch(down))
}

impl Faulty {
    fn read(&self) -> Result<()> {
        self.check(&self.down.reads)
    }

    fn write(&self) -> Result<()> {
        self.check(&self.down.writes)
    }

    fn check(&self, down: &AtomicBool) -> Result<()> {
        if down.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the store is down (switched off by the test)",
            ));
        }
        Ok(())
    }
}

#[cachy::async_trait]
impl Store for Faulty {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.read()?;
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        self.read()?;
        self.inner.get_many(keys).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.write()?;
        self.inner.put(key, value, ttl).await
    }

    async fn put_many(&self, items: &[(&str, Vec<u8>)], ttl: Ttl) -> Result<()> {
        self.write()?;
        self.inner.put_many(items, ttl).await
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        self.write()?;
        self.inner.add(key, value, ttl).await
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        self.write()?;
        self.inner.increment(key, by).await
    }

    async fn increment_expiring(&self, key: &str, by: i64, ttl: Ttl) -> Result<i64> {
        self.write()?;
        self.inner.increment_expiring(key, by, ttl).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        self.write()?;
        self.inner.compare_and_swap(key, current, new).await
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.write()?;
        self.inner.compare_and_delete(key, expected).await
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        self.read()?;
        self.inner.get_with_lifetime(key).await
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        self.write()?;
        self.inner.touch(key, ttl).await
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        self.write()?;
        self.inner.forget(key).await
    }

    async fn flush(&self) -> Result<()> {
        self.write()?;
        self.inner.flush().await
    }

    fn get_in_process(&self, key: &str) -> Option<Option<Arc<[u8]>>> {
        // While reads fail, every read goes through `get`, which fails.
        self.read().ok()?;
        self.inner.get_in_process(key)
    }

    fn keep_after_failed_write(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        self.inner.keep_after_failed_write(key, value, ttl);
    }

    fn is_process_local(&self) -> bool {
        self.inner.is_process_local()
    }

    fn forever_tracker(&self) -> Option<&dyn cachy::ForeverTracker> {
        self.inner.forever_tracker()
    }
}
