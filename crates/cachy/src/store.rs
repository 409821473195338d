//! The [`Store`] trait: the one small contract every backend implements.

use async_trait::async_trait;

use crate::decoded::Decoded;
use crate::error::{Error, ErrorKind, Result};
use crate::inspect::Inspect;

/// How long a stored item lives: `None` is forever, `Some(seconds)` is at least one second.
///
/// The [`Repository`](crate::Repository) applies the TTL rules (rounding up to whole seconds;
/// a zero, negative or past expiry stores nothing and removes the key) before a store sees a
/// TTL, so a store never receives `Some(0)`.
pub type Ttl = Option<u64>;

/// What [`Store::listen_evictions`] calls with the key of an entry the store dropped, and
/// why; kept weakly.
pub type EvictionListener = std::sync::Weak<EvictionCallback>;

/// The function behind an [`EvictionListener`].
pub type EvictionCallback = dyn Fn(&str, crate::observe::EvictionCause) + Send + Sync;

/// A cache backend over bytes: keys in, `Option<Vec<u8>>` out.
///
/// Object safe, so stores live behind `Arc<dyn Store>` and custom drivers can be registered
/// with [`CacheManager::extend`](crate::CacheManager::extend). Keys are any UTF-8 string,
/// including the empty string; a backend that cannot take some keys maps them itself.
///
/// Every store must pass the behaviour suite in `cachy-testkit`, which pins down the
/// contract below.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::{Duration, Instant};
///
/// use cachy::{Result, Store, Ttl, increment_counter};
///
/// /// A toy store: one map behind one lock.
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<String, (Vec<u8>, Option<Instant>)>>);
///
/// impl MapStore {
///     fn live(&self, key: &str) -> Option<(Vec<u8>, Option<Instant>)> {
///         let map = self.0.lock().unwrap();
///         map.get(key)
///             .filter(|(_, deadline)| deadline.is_none_or(|d| d > Instant::now()))
///             .cloned()
///     }
/// }
///
/// #[cachy::async_trait]
/// impl Store for MapStore {
///     async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
///         Ok(self.live(key).map(|(value, _)| value))
///     }
///     async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
///         let deadline = ttl.map(|s| Instant::now() + Duration::from_secs(s));
///         self.0.lock().unwrap().insert(key.to_owned(), (value.to_vec(), deadline));
///         Ok(())
///     }
///     async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
///         let mut map = self.0.lock().unwrap();
///         if map.get(key).is_some_and(|(_, d)| d.is_none_or(|d| d > Instant::now())) {
///             return Ok(false);
///         }
///         let deadline = ttl.map(|s| Instant::now() + Duration::from_secs(s));
///         map.insert(key.to_owned(), (value.to_vec(), deadline));
///         Ok(true)
///     }
///     async fn increment(&self, key: &str, by: i64) -> Result<i64> {
///         let mut map = self.0.lock().unwrap();
///         let live = map.get(key).filter(|(_, d)| d.is_none_or(|d| d > Instant::now()));
///         let next = increment_counter(live.map(|(bytes, _)| bytes.as_slice()), by)?;
///         let deadline = live.and_then(|(_, d)| *d);
///         map.insert(key.to_owned(), (next.to_string().into_bytes(), deadline));
///         Ok(next)
///     }
///     async fn compare_and_swap(&self, key: &str, current: Option<&[u8]>, new: &[u8]) -> Result<bool> {
///         let mut map = self.0.lock().unwrap();
///         let live = map.get(key).filter(|(_, d)| d.is_none_or(|d| d > Instant::now()));
///         if live.map(|(bytes, _)| bytes.as_slice()) != current {
///             return Ok(false);
///         }
///         let deadline = live.and_then(|(_, d)| *d);
///         map.insert(key.to_owned(), (new.to_vec(), deadline));
///         Ok(true)
///     }
///     async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
///         let mut map = self.0.lock().unwrap();
///         let live = map.get(key).filter(|(_, d)| d.is_none_or(|d| d > Instant::now()));
///         if live.map(|(bytes, _)| bytes.as_slice()) != Some(expected) {
///             return Ok(false);
///         }
///         map.remove(key);
///         Ok(true)
///     }
///     async fn forget(&self, key: &str) -> Result<bool> {
///         Ok(self.0.lock().unwrap().remove(key).is_some())
///     }
///     async fn flush(&self) -> Result<()> {
///         self.0.lock().unwrap().clear();
///         Ok(())
///     }
/// }
/// ```
///
/// `Store` has `Any` as a supertrait, so a concrete store can be recovered from a repository
/// (`(&**repo.backend() as &dyn std::any::Any).downcast_ref::<DatabaseStore>()`), for
/// operations only that backend has.
#[async_trait]
pub trait Store: std::any::Any + Send + Sync + 'static {
    /// The bytes stored under `key`, or `None` if there are none or they have expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// The bytes under each of `keys`, in the same order. The default asks one key at a time;
    /// backends override it with one round trip where the server allows.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

    /// Store `value` under `key`, replacing what was there, for `ttl`.
    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()>;

    /// Store several items with the same `ttl`. The default puts one at a time.
    async fn put_many(&self, items: &[(&str, Vec<u8>)], ttl: Ttl) -> Result<()> {
        for (key, value) in items {
            self.put(key, value, ttl).await?;
        }
        Ok(())
    }

    /// Store `value` only if `key` holds no live item; `true` if it was stored. Must be
    /// atomic: of many concurrent `add`s on one key, exactly one returns `true`.
    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool>;

    /// Add `by` (possibly negative) to the integer stored as decimal text under `key`, and
    /// return the new value. Atomic. A missing key starts at 0 and is kept without expiry; an
    /// existing item keeps its TTL; a value that is not an integer is an
    /// [`ErrorKind::NotAnInteger`](crate::ErrorKind::NotAnInteger) error and stays as it was.
    ///
    /// The default reads, adds with [`increment_counter`] and stores the sum with
    /// [`compare_and_swap`](Self::compare_and_swap), again while other writers change the
    /// counter in between; stores with a native atomic increment override it.
    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        increment_by_swapping(self, key, by, None, increment_counter, |next| {
            Ok(next.to_string().into_bytes())
        })
        .await
    }

    /// Like [`increment`](Self::increment), but a missing counter is created (holding `by`)
    /// with the lifetime `ttl`, atomically: the counter of a rate window. An existing counter
    /// keeps its TTL.
    ///
    /// The default creates a missing counter with [`add`](Self::add) and increments an
    /// existing one with [`compare_and_swap`](Self::compare_and_swap), again while other
    /// writers change it in between; stores with a native way override it.
    async fn increment_expiring(&self, key: &str, by: i64, ttl: Ttl) -> Result<i64> {
        increment_by_swapping(self, key, by, ttl, increment_counter, |next| {
            Ok(next.to_string().into_bytes())
        })
        .await
    }

    /// Replace the bytes under `key` with `new` only if they still are `current` (`None`:
    /// only if `key` holds no live item), and say whether it did. Atomic. A replaced item
    /// keeps its TTL; a new one is kept forever, as counters are.
    ///
    /// Counters kept in the serializer's format
    /// ([`IntegerFormat::Serializer`](crate::serializer::IntegerFormat::Serializer), always
    /// so with msgpack) are incremented with it. The default refuses with an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error; every built-in
    /// store implements it.
    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let _ = (key, current, new);
        Err(Error::new(
            ErrorKind::InvalidInput,
            "this store cannot compare and swap, so it cannot keep counters in the \
             serializer's format (msgpack, or `integers = \"serializer\"`)",
        ))
    }

    /// Remove `key` only if it holds exactly `expected`, and say whether it did. Atomic: what
    /// a lock's owner uses to release it, so that a lock taken over by another owner after
    /// its TTL is never released by the first. The default refuses with an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error; every built-in
    /// store implements it.
    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let _ = (key, expected);
        Err(Error::new(
            ErrorKind::InvalidInput,
            "this store cannot compare and delete, so it cannot release locks",
        ))
    }

    /// The bytes stored under `key` with how long they have left, for a cache in front of
    /// this store (the hybrid store's in-process level), which must not keep a copy longer.
    ///
    /// The default answers [`Lifetime::Unknown`]; the Redis, SQL, memcached, file and memory
    /// stores tell.
    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        Ok(self.get(key).await?.map(|value| (value, Lifetime::Unknown)))
    }

    /// Give the live item under `key` the lifetime `ttl` from now (`None`: forever) without
    /// rewriting its value; `true` if there was one.
    ///
    /// The default reads the value and stores it again, which a concurrent write may race;
    /// stores with a native way (Redis `EXPIRE`, memcached `touch`, an SQL `UPDATE`, the
    /// memory store) override it.
    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        match self.get(key).await? {
            Some(value) => self.put(key, &value, ttl).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Remove `key`; `true` if a live item was removed.
    async fn forget(&self, key: &str) -> Result<bool>;

    /// Remove every item of this store.
    async fn flush(&self) -> Result<()>;

    /// The live bytes under `key` if this store can tell at once, without I/O and without
    /// copying them (`Some(None)`: nothing there); `None` when it must be asked through
    /// [`get`](Self::get). Reads try this first: the memory store answers here, and the hybrid
    /// store when its first level holds the key. The default answers `None`.
    fn get_in_process(&self, key: &str) -> Option<Option<std::sync::Arc<[u8]>>> {
        let _ = key;
        None
    }

    /// The value decoded from the live bytes under `key` as a `type_id` by a serializer
    /// reading like `serializer`, if this store keeps one beside them
    /// ([`keep_decoded`](Self::keep_decoded)) and it is fresh: see [`Decoded::value_for`].
    /// Read by [`Repository::get_shared`](crate::Repository::get_shared) before the bytes.
    /// The default keeps none.
    fn get_decoded_in_process(
        &self,
        key: &str,
        type_id: std::any::TypeId,
        serializer: &crate::serializer::Serializer,
    ) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        let _ = (key, type_id, serializer);
        None
    }

    /// Keep `decoded`, a value decoded from `bytes` (as [`get_in_process`](Self::get_in_process)
    /// gave them), beside them, if `key` still holds those very bytes (the same allocation):
    /// the memory and hybrid stores keep the first one decoded per stored value (none when
    /// bounded by `max_bytes`: a decoded value's memory cannot be known from outside it).
    /// The default keeps nothing.
    fn keep_decoded(&self, key: &str, bytes: &std::sync::Arc<[u8]>, decoded: Decoded) {
        let _ = (key, bytes, decoded);
    }

    /// Tell `listener` of every entry this store drops, with its key and why, for as long as
    /// the listener lives (the store keeps it weakly). An in-process store (the memory store,
    /// a hybrid store's first level) calls it after the drop, outside its locks; a
    /// [`Repository`](crate::Repository) registers one to count evictions in its
    /// [`Stats`](crate::observe::Stats) and report them as events. The default drops nothing
    /// itself (a server's own evictions are not seen from here).
    fn listen_evictions(&self, listener: EvictionListener) {
        let _ = listener;
    }

    /// Make every change this process made through this store known to the other processes
    /// sharing it before returning: called before a [`Lock`](crate::Lock) in this store is
    /// released, so that the next holder, in any process, reads what this one wrote. A store
    /// whose processes keep copies of its items (the hybrid store) sends its pending
    /// invalidations; the default has nothing to send.
    async fn publish_changes(&self) -> Result<()> {
        Ok(())
    }

    /// Hear of every change another process made known (with
    /// [`publish_changes`](Self::publish_changes)) before this call, before returning: called
    /// after a [`Lock`](crate::Lock) in this store is taken, so that the holder never reads a
    /// copy older than what the previous holder wrote. The hybrid store waits for a marker it
    /// sends on its backplane to come back (the changes sent before it arrive first), or, if it
    /// does not come back in time, drops its whole first level. The default has nothing to do.
    async fn catch_up(&self) -> Result<()> {
        Ok(())
    }

    /// Keep `value` under `key` in this process only, for at most `ttl` (`None`: as long as
    /// the store keeps in-process copies), after a write of it to this store failed. A
    /// resilient `remember` calls this, so that a store with an in-process level (the hybrid
    /// store, whose L1 keeps it up to its `l1_ttl`) goes on serving what this process
    /// computed while the shared level is down. The default keeps nothing.
    fn keep_after_failed_write(&self, key: &str, value: &[u8], ttl: Option<std::time::Duration>) {
        let _ = (key, value, ttl);
    }

    /// Whether the stored bytes never leave this process (the memory store). The manager then
    /// ignores the global `serializer` and uses msgpack, as no other program reads the bytes
    /// (Python cachy's dict store does not serialize at all); a store's own `serializer`
    /// still wins.
    fn is_process_local(&self) -> bool {
        false
    }

    /// The store's bookkeeping for items stored forever under tags, if it keeps any (Redis
    /// does, in lists, as Python cachy does); `None` leaves such items to the store's own
    /// eviction after their tags are flushed.
    fn forever_tracker(&self) -> Option<&dyn ForeverTracker> {
        None
    }

    /// The store as an operator's tools look into it (counting, listing keys, pruning), or
    /// why it cannot be looked into from another process. The default says its driver
    /// offers no inspection.
    fn inspector(&self) -> std::result::Result<&dyn Inspect, &'static str> {
        Err("its driver offers no way to look into it from another process")
    }

    /// The store as a channel between processes, for a hybrid store's backplane, or why it
    /// cannot be one. The default cannot.
    #[cfg(feature = "hybrid")]
    fn pubsub(
        self: std::sync::Arc<Self>,
    ) -> std::result::Result<std::sync::Arc<dyn PubSub>, &'static str> {
        Err("it cannot carry messages between processes")
    }
}

/// Messages between processes through a store's server: what a hybrid store's backplane
/// needs, offered by [`Store::pubsub`] (the Redis store, on one server or a cluster).
#[cfg(feature = "hybrid")]
#[async_trait]
pub trait PubSub: Send + Sync {
    /// The prefix of the store's keys, which a hybrid store puts in front of its default
    /// channel name so that two applications sharing a server do not hear each other.
    fn prefix(&self) -> &str;

    /// Send `payload` to every subscriber of `channel`.
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<()>;

    /// A connection of its own subscribed to `channel`, as a stream of the payloads sent to
    /// it; the stream ends when the connection drops.
    async fn subscribe(&self, channel: &str) -> Result<Subscription>;
}

/// The messages of a [`PubSub::subscribe`].
#[cfg(feature = "hybrid")]
pub type Subscription =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Vec<u8>> + Send + 'static>>;

/// How long a stored item has left, as [`Store::get_with_lifetime`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Stored forever.
    Forever,
    /// Expires after this long.
    Remaining(std::time::Duration),
    /// The store cannot tell.
    Unknown,
}

impl Lifetime {
    /// The lifetime of an item that expires at the unix time `expiry` (seconds), where
    /// `forever` (Python cachy's `9999999999`) and beyond mean never: the SQL stores'
    /// layout.
    #[cfg(feature = "database")]
    pub(crate) fn until_unix(expiry: u64, forever: u64) -> Lifetime {
        if expiry >= forever {
            return Lifetime::Forever;
        }
        let expires = std::time::UNIX_EPOCH + std::time::Duration::from_secs(expiry);
        Lifetime::Remaining(
            expires
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default(),
        )
    }
}

/// Add `by` to a counter stored as decimal text, as [`Store::increment`] must: a missing
/// counter (`None`) starts at 0; bytes that are not canonical decimal text (`+1`, `007`,
/// ` 1`, `1.0`) are an [`ErrorKind::NotAnInteger`] error, and a sum outside `i64` an
/// [`ErrorKind::Overflow`] error. Custom stores use it so that their counters behave exactly
/// as the built-in ones (see the example on [`Store`]).
pub fn increment_counter(current: Option<&[u8]>, by: i64) -> Result<i64> {
    crate::codec::incremented(current, by)
}

/// How often an increment by compare and swap tries again while other writers keep changing
/// the counter between its read and its swap.
const SWAP_ATTEMPTS: usize = 1000;

/// Increment the counter under `key` by compare and swap: read it, add `by` with `add`, write
/// the sum encoded by `encode` only if the counter is still what was read (a missing counter
/// is created forever, or with `Store::add` for a `ttl`), and try again otherwise. Every counter not
/// incremented natively by its server goes through here.
pub(crate) async fn increment_by_swapping<S: Store + ?Sized>(
    store: &S,
    key: &str,
    by: i64,
    ttl: Ttl,
    add: impl Fn(Option<&[u8]>, i64) -> Result<i64>,
    encode: impl Fn(i64) -> Result<Vec<u8>>,
) -> Result<i64> {
    for _ in 0..SWAP_ATTEMPTS {
        let current = store.get(key).await?;
        let next = add(current.as_deref(), by)?;
        let encoded = encode(next)?;
        let written = match (current.as_deref(), ttl) {
            (None, Some(_)) => store.add(key, &encoded, ttl).await?,
            (current, _) => store.compare_and_swap(key, current, &encoded).await?,
        };
        if written {
            return Ok(next);
        }
        tokio::task::yield_now().await;
    }
    Err(Error::new(
        ErrorKind::Backend,
        format!("the counter kept changing under {SWAP_ATTEMPTS} attempts to increment it"),
    ))
}

/// Lists of the keys stored forever under each tag id, so that flushing the tags can delete
/// them (see [`crate::tags`]).
#[async_trait]
pub trait ForeverTracker: Send + Sync {
    /// Remember that `key` (a store key, without the store's own prefix) was stored forever
    /// under each of `tag_ids`.
    async fn track(&self, tag_ids: &[String], key: &str) -> Result<()>;

    /// Delete every key listed under each of `tag_ids`, and the lists.
    async fn delete_tracked(&self, tag_ids: &[String]) -> Result<()>;
}
