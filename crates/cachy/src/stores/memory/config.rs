//! The `dict` driver's config.

use serde::Deserialize;

use super::MemoryStore;
use super::map::Bound;
use crate::config::options::fields;
use crate::error::{Error, Result};

/// How a [`MemoryStore`] is built: the options of the `dict` driver (alias `memory`), as
/// read from a config file or written in code.
///
/// ```
/// use cachy::stores::{MemoryConfig, MemoryStore};
///
/// let mut config = MemoryConfig::default();
/// config.max_entries = Some(10_000);
/// let store = MemoryStore::with_config(config)?;
/// # Ok::<(), cachy::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// The most entries the store holds (default: unbounded).
    #[serde(default, deserialize_with = "fields::count")]
    pub max_entries: Option<u64>,
    /// The most memory its entries take, in bytes (default: unbounded): keys, values and
    /// about 200 bytes of bookkeeping per entry, so that a store filled past its bound grows
    /// the process by about the bound. One bound or the other, not both.
    #[serde(default, deserialize_with = "fields::count")]
    pub max_bytes: Option<u64>,
}

impl MemoryStore {
    /// A memory store as `config` describes it; an error names the field that is wrong.
    pub fn with_config(config: MemoryConfig) -> Result<Self> {
        let bound = match (config.max_entries, config.max_bytes) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "max_bytes",
                    "give `max_entries` or `max_bytes`, not both: the store is bounded by one",
                ));
            }
            (Some(0), None) => return Err(at_least_one("max_entries")),
            (None, Some(0)) => return Err(at_least_one("max_bytes")),
            (Some(entries), None) => Some(Bound::Entries(entries)),
            (None, Some(bytes)) => Some(Bound::Bytes(bytes)),
            (None, None) => None,
        };
        Ok(Self::build(bound))
    }
}

/// A bound of zero would keep nothing: an error, not a store that silently never hits.
fn at_least_one(field: &str) -> Error {
    Error::config(
        field,
        format!("`{field}` must be at least 1 (a store bounded at 0 keeps nothing)"),
    )
}
