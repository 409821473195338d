//! The built-in stores, one module and one cargo feature each.
//!
//! | driver | store | feature |
//! |---|---|---|
//! | `dict` (alias `memory`) | [`MemoryStore`] | `memory` |
//! | `file` | [`FileStore`] | `file` |
//! | `null` | [`NullStore`] | always |
//! | `redis` | [`RedisStore`] (single node or cluster) | `redis` |
//! | `memcached` | [`MemcachedStore`] (server pools) | `memcached` |
//! | `database` | `DatabaseStore` (SQLite, PostgreSQL, MySQL/MariaDB) | `database-sqlite`, `database-postgres`, `database-mysql` |

#[cfg(any(feature = "redis", feature = "memcached"))]
mod breaker;
#[cfg(feature = "database")]
mod database;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "hybrid")]
mod hybrid;
#[cfg(any(feature = "file", feature = "database-sqlite"))]
mod inline;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "memory")]
mod memory;
mod null;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "database")]
pub use crate::inspect::RowCounts;
#[cfg(feature = "memcached")]
pub use crate::inspect::ServerStats;
#[cfg(feature = "file")]
pub use crate::inspect::{Inventory, Tally};
#[cfg(feature = "database")]
pub use database::DatabaseStore;
#[cfg(feature = "database")]
pub use database::config::{DatabaseConfig, Synchronous};
#[cfg(feature = "file")]
pub use file::config::FileConfig;
#[cfg(feature = "file")]
pub use file::{FileStore, HashType, InventoryProgress, OnInventoryProgress};
#[cfg(feature = "hybrid")]
pub use hybrid::HybridStore;
#[cfg(feature = "hybrid")]
pub use hybrid::config::{HybridConfig, L1Config};
#[cfg(feature = "memcached")]
pub use memcached::MemcachedStore;
#[cfg(feature = "memcached")]
pub use memcached::config::{MemcachedConfig, MemcachedServer};
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
#[cfg(feature = "memory")]
pub use memory::config::MemoryConfig;
pub use null::NullStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
#[cfg(feature = "redis")]
pub use redis::config::RedisConfig;

/// The longest key (with its prefix) that memcached and the database store keep as it is;
/// longer keys are stored as their digest (see [`backend_key`]).
#[cfg(any(feature = "memcached", feature = "database"))]
const MAX_PLAIN_KEY: usize = 250;

/// The key a backend that cannot take every key stores `key` under: `prefix` + `key` when
/// `fits` accepts it, else `prefix` + `cachy:sha1:` + the key's SHA-1. A key that itself
/// starts with the marker is always hashed, so no plain key can equal another key's
/// stand-in: two distinct keys never share an item.
#[cfg(any(feature = "memcached", feature = "database"))]
fn backend_key(prefix: &str, key: &str, fits: impl Fn(&str) -> bool) -> String {
    use sha1::Digest;
    const MARKER: &str = "cachy:sha1:";
    let full = format!("{prefix}{key}");
    if fits(&full) && !key.starts_with(MARKER) {
        full
    } else {
        format!("{prefix}{MARKER}{}", hex::encode(sha1::Sha1::digest(key)))
    }
}
