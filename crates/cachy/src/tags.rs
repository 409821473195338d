//! Cache tags: a [`Repository`](crate::Repository) over a set of tags (what
//! [`Repository::tags`](crate::Repository::tags) returns), and flushing everything stored
//! under any of them.
//!
//! The scheme is Python cachy's (and Laravel's), so both sides share tagged items: each tag
//! has a random id stored forever under `tag:{name}:key`; a tagged item's key is
//! `sha1(ids joined by '|') + ":" + key`. Flushing a tag gives it a new id, so every item
//! stored under it becomes unreachable at once; the old items then expire by their own TTL.
//! Items stored *forever* under tags are listed, on stores that can keep such lists (Redis:
//! `{prefix}{tag id}:forever`), and deleted by the flush; elsewhere they stay until the store
//! evicts them (memory with `max_entries`, memcached) or the cache is flushed.
//!
//! A tagged read costs one `get_many` for all the tag ids (one `MGET` on Redis) and one `get`
//! for the item: two round trips, whatever the number of tags.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};

use crate::codec::{decode, encode};
use crate::error::{Error, ErrorKind, Result};
use crate::serializer::Serializer;
use crate::store::Store;

/// Tag names, given as one name, an array, a `Vec`, a slice, or a tuple of names (Python cachy's
/// `tags('people', 'artists')` is `tags(("people", "artists"))`).
pub trait TagNames {
    /// The names, in order (order matters: it is part of the namespace).
    fn into_names(self) -> Vec<String>;
}

impl TagNames for &str {
    fn into_names(self) -> Vec<String> {
        vec![self.to_owned()]
    }
}

impl TagNames for String {
    fn into_names(self) -> Vec<String> {
        vec![self]
    }
}

impl<S: AsRef<str>, const N: usize> TagNames for [S; N] {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}

impl<S: AsRef<str>> TagNames for Vec<S> {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}

impl<S: AsRef<str>> TagNames for &[S] {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}

macro_rules! tuple_tag_names {
    ($($name:ident),+) => {
        impl<$($name: AsRef<str>),+> TagNames for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_names(self) -> Vec<String> {
                let ($($name,)+) = self;
                vec![$($name.as_ref().to_owned()),+]
            }
        }
    };
}

tuple_tag_names!(A);
tuple_tag_names!(A, B);
tuple_tag_names!(A, B, C);
tuple_tag_names!(A, B, C, D);
tuple_tag_names!(A, B, C, D, E);
tuple_tag_names!(A, B, C, D, E, G);

/// The key that holds a tag's id.
fn tag_key(name: &str) -> String {
    format!("tag:{name}:key")
}

/// A fresh tag id: 32 hex digits, unique across processes (time, process, counter and the
/// std hasher's random keys, through SHA-1), like Python cachy's `uuid4().hex`.
fn new_tag_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha1::new();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let random =
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), nanos);
    hasher.update(random.to_le_bytes());
    hex::encode(hasher.finalize())[..32].to_owned()
}

/// The current id of every tag in `names`, creating the missing ones: one `get_many`, plus
/// one atomic `add` per tag that has no id yet.
pub(crate) async fn ids(
    names: &[String],
    store: &dyn Store,
    serializer: &Serializer,
) -> Result<Vec<String>> {
    let keys: Vec<String> = names.iter().map(|n| tag_key(n)).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let stored = store.get_many(&key_refs).await?;
    let mut ids = Vec::with_capacity(stored.len());
    for (key, id) in keys.iter().zip(stored) {
        ids.push(match id {
            Some(bytes) => decode(serializer, &bytes).map_err(|e| e.with_key(key))?,
            None => create_id(key, store, serializer)
                .await
                .map_err(|e| e.with_key(key))?,
        });
    }
    Ok(ids)
}

/// Give the tag stored under `key` an id, unless another caller just did.
async fn create_id(key: &str, store: &dyn Store, serializer: &Serializer) -> Result<String> {
    let id = new_tag_id();
    if store.add(key, &encode(serializer, &id)?, None).await? {
        return Ok(id);
    }
    match store.get(key).await? {
        Some(bytes) => decode(serializer, &bytes),
        None => Err(Error::new(
            ErrorKind::Backend,
            "the tag id vanished while it was being created",
        )),
    }
}

/// The length of a [`namespace_prefix`]: a SHA-1 in hex and a colon.
pub(crate) const NAMESPACE_PREFIX_LEN: usize = 41;

/// The prefix of every item key under the tag ids `ids`: `sha1(namespace) + ":"`.
pub(crate) fn namespace_prefix(ids: &[String]) -> String {
    format!("{}:", hex::encode(Sha1::digest(ids.join("|"))))
}

/// `key` less a [`namespace_prefix`] before it, if it has one.
pub(crate) fn without_namespace(key: &str) -> &str {
    match key.split_at_checked(NAMESPACE_PREFIX_LEN - 1) {
        Some((hash, rest))
            if rest.starts_with(':') && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            &rest[1..]
        }
        _ => key,
    }
}

/// List `key`, stored forever under the tag ids `ids`, for the tags' flush, on stores that
/// keep such lists.
pub(crate) async fn track_forever(store: &dyn Store, ids: &[String], key: &str) -> Result<()> {
    match store.forever_tracker() {
        Some(tracker) => tracker.track(ids, key).await,
        None => Ok(()),
    }
}

/// Invalidate every item stored under any of the tags `names`: each tag gets a new id (and
/// on stores that list items stored forever, those are deleted).
pub(crate) async fn flush(
    names: &[String],
    store: &dyn Store,
    serializer: &Serializer,
) -> Result<()> {
    let tracker = store.forever_tracker();
    let old_ids = match tracker {
        Some(_) => Some(ids(names, store, serializer).await?),
        None => None,
    };
    // New ids first: a `forever` racing the flush then lists its key under the new ids
    // (reachable) rather than under old ids whose lists were already deleted.
    for name in names {
        let key = tag_key(name);
        let id = encode(serializer, &new_tag_id()).map_err(|e| e.with_key(&key))?;
        store
            .put(&key, &id, None)
            .await
            .map_err(|e| e.with_key(&key))?;
    }
    if let (Some(tracker), Some(old_ids)) = (tracker, old_ids) {
        tracker.delete_tracked(&old_ids).await?;
    }
    Ok(())
}
