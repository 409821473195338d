//! One function per behaviour of the store/repository contract. Each takes a repository over
//! an empty store and panics (with a message naming the behaviour) if the store breaks it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use cachy::{ErrorKind, Expiry, Repository};
use serde::{Deserialize, Serialize};

/// A small struct, as users cache them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// A number.
    pub id: u64,
    /// Some text.
    pub name: String,
    /// A list.
    pub tags: Vec<String>,
    /// An optional float.
    pub score: Option<f64>,
}

pub(crate) fn ann() -> User {
    User {
        id: 7,
        name: "Ann Émile 🦀".to_owned(),
        tags: vec!["people".to_owned(), "authors".to_owned()],
        score: Some(1.5),
    }
}

pub(crate) const TEN_MINUTES: i64 = 10;

/// Wait, polling, until `key` is gone; panics after `limit`.
pub(crate) async fn wait_until_missing(repo: &Repository, key: &str, limit: Duration) {
    let start = Instant::now();
    while repo.has(key).await.unwrap() {
        assert!(
            start.elapsed() < limit,
            "{key:?} was still stored {limit:?} after it should have expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

mod counters;
mod failures;
mod layer;
mod locks;
mod observe;
mod remember;
mod resilient;
mod tags;
mod values;

pub use counters::*;
pub use failures::*;
pub use layer::*;
pub use locks::*;
pub use observe::*;
pub use remember::*;
pub use resilient::*;
pub use tags::*;
pub use values::*;
