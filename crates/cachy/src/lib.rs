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
//! Integers are stored as decimal text (`42`) whatever the serializer, so that every store
//! can increment them atomically and natively; every other value goes through the store's
//! serializer. Reading decimal text gives back the integer. This is a deliberate difference
//! from Python cachy, which pickles integers (and whose Redis `increment` then fails on
//! values it stored itself).
//!
//! ## Expiry rules (every store)
//!
//! TTLs are whole seconds, rounded up. A zero or negative lifetime, or an absolute time
//! already past, stores nothing and removes any value under the key. Counters: a missing key
//! starts at 0 and is kept forever; an existing TTL is kept; values may go below zero.

#![warn(missing_docs)]

pub mod blocking;
mod codec;
mod config;
mod error;
mod expiry;
mod flight;
mod manager;
mod repository;
pub mod serializer;
mod store;
pub mod stores;
pub mod tags;

pub use config::{CacheConfig, StoreConfig};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use expiry::Expiry;
pub use manager::{CacheManager, Created, DriverFactory};
pub use repository::{DEFAULT_CACHE_MINUTES, Repository};
pub use store::{ForeverTracker, Store, Ttl};
pub use tags::{TagNames, TaggedCache};

/// The attribute for implementing [`Store`], re-exported so its version always matches.
pub use async_trait::async_trait;
