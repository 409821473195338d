//! # cachy
//!
//! One cache API, many backends chosen by configuration: a Rust take on Python's
//! [cachy](https://github.com/sdispater/cachy) (and Laravel's `Cache` before it).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cachy::Result<()> {
//! use cachy::CacheManager;
//!
//! let cache = CacheManager::from_value(serde_json::json!({
//!     "stores": { "dict": { "driver": "dict" } }
//! }))?;
//!
//! cache.put("foo", &"bar", 10).await?; // ten minutes
//! assert_eq!(cache.get::<String>("foo").await?.as_deref(), Some("bar"));
//! assert_eq!(cache.get_or("missing", 7).await?, 7);
//! # Ok(())
//! # }
//! ```
//!
//! ## Layers
//!
//! - [`CacheManager`]: named stores built from a config ([`CacheConfig`]); custom drivers with
//!   [`extend`](CacheManager::extend); named serializers.
//! - [`Repository`]: the typed API over one store.
//! - [`Store`]: one small object-safe async trait over bytes, implemented by each backend in
//!   [`stores`].
//! - [`Serializer`](serializer::Serializer): pickle (the default), json, msgpack.
//! - [`blocking`]: the same API for plain threads, driving the async core.
//!
//! ## How values are stored
//!
//! With pickle and json, integers are stored as decimal text (`42`), so that every store can
//! increment them atomically and natively; every other value goes through the store's
//! serializer. Reading decimal text gives back the integer. This is a deliberate difference
//! from Python cachy, which pickles integers (and whose Redis `increment` then fails on
//! values it stored itself). With msgpack (or `integers = "serializer"`), integers and
//! counters are in the serializer's format and `increment` compare-and-swaps: a lone digit
//! byte is a msgpack integer (`b"4"` is 52), so decimal text there would be read back as
//! another number (see [`serializer::IntegerFormat`]).
//!
//! ## Expiry rules (every store)
//!
//! TTLs are whole seconds, rounded up. A zero or negative lifetime, or an absolute time
//! already past, stores nothing and removes any value under the key. Counters: a missing key
//! starts at 0 and is kept forever; an existing TTL is kept; values may go below zero.

#![warn(missing_docs)]

pub mod blocking;
mod clock;
mod codec;
mod config;
mod decoded;
mod driver;
mod envelope;
mod error;
mod expiry;
mod facade;
mod flight;
pub mod inspect;
mod manager;
pub mod memoize;
pub mod observe;
mod repository;
mod runtime;
pub mod serializer;
mod store;
pub mod stores;
pub mod tags;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{CacheConfig, Count, Seconds, StoreConfig};
pub use decoded::Decoded;
pub use driver::{Created, DriverFactory};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use expiry::{Expiry, MAX_TTL_SECONDS};
pub use manager::CacheManager;
pub use memoize::{Memoizer, global, set_global};
pub use repository::lock::Lock;

/// Memoize a function's results in a cache store: Python cachy's decorator, done right.
///
/// ```
/// use cachy::{CacheManager, cached};
///
/// #[cached]                                         // default store, 60 minutes
/// async fn user_count(team: u32) -> u64 { 42 + u64::from(team) }
///
/// #[cached(store = "dict", key = "users", minutes = 30)]
/// async fn users(team: u32, active: bool) -> Result<Vec<String>, cachy::Error> {
///     Ok(vec![format!("member of {team}")])           // only Ok values are cached
/// }
///
/// #[cached(minutes = 5)]
/// fn square(x: i64) -> i64 { x * x }                 // sync functions too
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cachy::Result<()> {
/// cachy::set_global(CacheManager::from_value(serde_json::json!({
///     "stores": { "dict": { "driver": "dict" } }
/// }))?)?;
/// assert_eq!(user_count(1).await, 43);
/// assert_eq!(users(1, true).await?, ["member of 1"]);
/// # Ok(())
/// # }
/// ```
///
/// Options, all optional: `store = "name"` (default: the default store), `key = "prefix"`
/// (only a prefix, as in Python cachy: the key always depends on the arguments), `minutes = N`
/// (default: the store's default cache time, 60) or `ttl = duration` (a `Duration`, e.g.
/// `ttl = Duration::from_secs(30)`), `manager = expr` (an expression giving a
/// `CacheManager` or a reference to one; default: the one installed with [`set_global`]),
/// `skip(argument, ...)` (arguments left out of the key, such as a connection pool or a
/// client), and `include_self` (methods leave `self` out of the key unless this is given;
/// `self` must then be `Serialize`).
///
/// The resilience options of [`RememberOptions`] are options here too, with the same
/// names: `fail_safe = duration`, `fail_safe_throttle = duration`, `soft_timeout = duration`,
/// `hard_timeout = duration` (for functions returning `Result`), `eager_refresh = fraction`,
/// `jitter = share` and `distributed = (lock_ttl, wait)` (single flight across processes).
/// With any of them, calls go through
/// [`Repository::remember_with`], so the function's arguments must be owned (`'static`).
///
/// The `manager` expression is evaluated **once**, on the first call, in an item of its own:
/// it cannot use the function's arguments, and a function that builds a new manager is not
/// called again (so its memory store keeps what it cached). An expression that uses `self`
/// (`manager = &self.cache`) is the exception: it is evaluated on every call, so that each
/// instance uses its own manager.
///
/// The key is made from the function's full path and **all** its arguments but the skipped
/// ones, serialized as JSON (they must be `Serialize`: an argument that is not is a compile
/// error pointing at it; the return type must be `Serialize + DeserializeOwned`). Python
/// cachy's decorator drops the first positional argument, so its `f(3)` returns the cached
/// `f(2)`; here different arguments always give different keys.
///
/// A function returning `Result<T, E>` caches only `Ok` values (`E: From<cachy::Error> +
/// Display`). Concurrent calls with the same arguments in one process run the body once
/// (see [`Repository::remember`]); when the body fails, the calls that waited for it get
/// a copy of its error if `E` is `Clone + Send + Sync` (and the function is not generic),
/// else an [`ErrorKind::Remember`] error with its message. If the cache fails or no manager is installed, the
/// function runs uncached: memoization never breaks it. A sync function is memoized from
/// plain threads, `spawn_blocking` and multi-thread runtimes (see [`blocking`]); on a
/// current-thread runtime, whose only thread it must not block, it runs uncached.
///
/// ```compile_fail
/// struct Pool;
///
/// #[cachy::cached] // error: `&Pool` is not `Serialize`: add `skip(pool)`
/// async fn user_name(pool: &Pool, id: u32) -> String { format!("user {id}") }
/// ```
#[cfg(feature = "macros")]
pub use cachy_macros::cached;
pub use repository::remember::options::{Computed, Entry, RememberOptions, Source};
pub use repository::{DEFAULT_CACHE_MINUTES, Repository, TaggedCache};
pub use store::{
    EvictionCallback, EvictionListener, ForeverTracker, Lifetime, Store, Ttl, increment_counter,
};
#[cfg(feature = "hybrid")]
pub use store::{PubSub, Subscription};
pub use tags::TagNames;

/// The attribute for implementing [`Store`], re-exported so its version always matches.
pub use async_trait::async_trait;

// The user-facing Markdown, included only for doctests, so that its examples are compiled and run.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}
#[cfg(doctest)]
#[doc = include_str!("../../../ARCHITECTURE.md")]
mod architecture {}
#[cfg(doctest)]
#[doc = include_str!("../../../CONTRIBUTING.md")]
mod contributing {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/cli.md")]
mod docs_cli {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/configuration.md")]
mod docs_configuration {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/observability.md")]
mod docs_observability {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/performance.md")]
mod docs_performance {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/payloads.md")]
mod docs_payloads {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/python.md")]
mod docs_python {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/resilience.md")]
mod docs_resilience {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/security.md")]
mod docs_security {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/stores.md")]
mod docs_stores {}
#[cfg(all(
    doctest,
    feature = "testing",
    feature = "test-clock",
    feature = "memory"
))]
#[doc = include_str!("../../../docs/testing.md")]
mod docs_testing {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/usage.md")]
mod docs_usage {}
