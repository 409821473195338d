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
//! | `hybrid` | [`HybridStore`] (an in-process level over any other store) | `hybrid` |

// One block per backend: its module, what it exports, and its line in `builtin()` below.

#[cfg(feature = "database")]
mod database;
#[cfg(feature = "database")]
pub use crate::inspect::RowCounts;
#[cfg(feature = "database")]
pub use database::DatabaseStore;
#[cfg(feature = "database")]
pub use database::config::{DatabaseConfig, Synchronous};

#[cfg(feature = "file")]
mod file;
#[cfg(feature = "file")]
pub use crate::inspect::{Inventory, Tally};
#[cfg(feature = "file")]
pub use file::config::FileConfig;
#[cfg(feature = "file")]
pub use file::{FileStore, HashType, InventoryProgress, OnInventoryProgress};

#[cfg(feature = "hybrid")]
mod hybrid;
#[cfg(feature = "hybrid")]
pub use hybrid::HybridStore;
#[cfg(feature = "hybrid")]
pub use hybrid::config::{HybridConfig, L1Config};

#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "memcached")]
pub use crate::inspect::ServerStats;
#[cfg(feature = "memcached")]
pub use memcached::MemcachedStore;
#[cfg(feature = "memcached")]
pub use memcached::config::{MemcachedConfig, MemcachedServer};

#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
#[cfg(feature = "memory")]
pub use memory::config::MemoryConfig;

mod null;
pub use null::NullStore;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
#[cfg(feature = "redis")]
pub use redis::config::RedisConfig;

// What several backends share.

#[cfg(any(feature = "memcached", feature = "database"))]
mod backend_key;
#[cfg(any(feature = "redis", feature = "memcached"))]
mod breaker;
#[cfg(any(feature = "file", feature = "database-sqlite"))]
mod inline;
pub(crate) mod layer;

use crate::driver::{CompositeFactory, DriverFactory, factory};

/// Every driver compiled in, by name: one line per backend.
pub(crate) fn builtin() -> Vec<(&'static str, DriverFactory)> {
    vec![
        #[cfg(feature = "database")]
        ("database", factory(DatabaseStore::from_config)),
        #[cfg(feature = "file")]
        ("file", factory(FileStore::from_config)),
        #[cfg(feature = "memcached")]
        ("memcached", factory(MemcachedStore::from_config)),
        #[cfg(feature = "memory")]
        ("dict", factory(MemoryStore::from_config)),
        #[cfg(feature = "memory")]
        ("memory", factory(MemoryStore::from_config)),
        ("null", factory(NullStore::from_config)),
        #[cfg(feature = "redis")]
        ("redis", factory(RedisStore::from_config)),
    ]
}

/// Every driver compiled in that builds on other stores of its configuration, by name.
pub(crate) fn composite() -> Vec<(&'static str, CompositeFactory)> {
    vec![
        #[cfg(feature = "hybrid")]
        ("hybrid", HybridStore::build),
    ]
}
