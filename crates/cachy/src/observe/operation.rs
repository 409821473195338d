//! What an observation names: the operation and how it went.

use std::fmt;

use crate::error::ErrorKind;

/// A repository operation, as spans, metrics and hooks name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `get` and its `get_or*` variants.
    Get,
    /// `many` (one event per key).
    Many,
    /// `has`.
    Has,
    /// `pull`.
    Pull,
    /// `put` and `forever`.
    Put,
    /// `put_many` (one event per key).
    PutMany,
    /// `add`.
    Add,
    /// `forget`.
    Forget,
    /// `touch`.
    Touch,
    /// `increment*` and `decrement*`.
    Increment,
    /// `flush`.
    Flush,
    /// `remember` and its variants.
    Remember,
    /// A lock's `try_acquire` and `acquire`: `written` when taken, `unchanged` when held by
    /// another, an error of kind `timeout` when `acquire` waited in vain.
    Lock,
    /// A lock's `release` and `force_release`: `removed` when released, `unchanged` when it
    /// was not held.
    Unlock,
    /// An in-process store (the memory store, a hybrid store's first level) dropped an
    /// entry, for the [`EvictionCause`] in [`Outcome::Evicted`]. Its key is the store key
    /// (under tags, the tags' namespace and the key). Not a request: counted in
    /// [`Stats::evictions`](super::Stats::evictions) and the `cachy.evictions` metric, not in
    /// `cachy.requests`.
    Evict,
}

impl Operation {
    /// Its name in spans and metric labels: `get`, `put_many`, ...
    pub fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Many => "many",
            Operation::Has => "has",
            Operation::Pull => "pull",
            Operation::Put => "put",
            Operation::PutMany => "put_many",
            Operation::Add => "add",
            Operation::Forget => "forget",
            Operation::Touch => "touch",
            Operation::Increment => "increment",
            Operation::Flush => "flush",
            Operation::Remember => "remember",
            Operation::Lock => "lock",
            Operation::Unlock => "unlock",
            Operation::Evict => "evict",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// A read found a fresh value.
    Hit,
    /// A read found nothing. For `remember`: the value was computed and not stored (the
    /// factory asked for it not to be, or the store failed: that failure is an event of its
    /// own, see [`Outcome::Failed`]).
    Miss,
    /// `remember` found nothing, computed the value and stored it: counted as a miss and as
    /// a write.
    Computed,
    /// `remember` served a fail-safe fallback: an expired value, because the factory failed
    /// or was too slow.
    Stale,
    /// A value was stored.
    Written,
    /// A value was removed.
    Removed,
    /// Nothing changed: an `add` that found a value, a `forget` or `touch` of a missing key.
    Unchanged,
    /// Done, neither a read nor a write of one value: a counter changed, a store flushed.
    Done,
    /// The cache failed with an error of this kind. Inside a `remember` that still returned
    /// its value (the resilient variants and `#[cached]` compute around a failing cache),
    /// the failure is an event of its own, with the operation that failed: `get` for a read
    /// (or a value that did not decode), `put` for a write (or a value that did not encode).
    Failed(ErrorKind),
    /// `remember`'s factory failed and there was no fallback to serve: the caller got the
    /// factory's error. Not a cache error.
    FactoryFailed,
    /// An in-process store dropped an entry ([`Operation::Evict`]), for this cause.
    Evicted(EvictionCause),
}

impl Outcome {
    /// Its name in spans and metric labels: `hit`, `miss`, `computed`, `stale`, `written`,
    /// `removed`, `unchanged`, `done`, `error`, `factory_error`, `evicted`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Computed => "computed",
            Outcome::Stale => "stale",
            Outcome::Written => "written",
            Outcome::Removed => "removed",
            Outcome::Unchanged => "unchanged",
            Outcome::Done => "done",
            Outcome::Failed(_) => "error",
            Outcome::FactoryFailed => "factory_error",
            Outcome::Evicted(_) => "evicted",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an in-process store dropped an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionCause {
    /// The store was beyond its `max_entries` or `max_bytes`, and its policy chose the entry;
    /// or a value too large for the whole bound was written over it.
    Size,
    /// Its lifetime was over.
    Expired,
    /// A write stored another value under its key (a `touch`, which keeps the value, is
    /// not one).
    Replaced,
    /// It was removed: `forget`, `pull`, a compare-and-delete; on a hybrid store, any change
    /// to the key, here or in another process, which drops the first level's copy. (A
    /// `flush` drops every entry without an event each: the `flush` operation is the
    /// event, in the process that called it.)
    Removed,
}

impl EvictionCause {
    /// Its name in metric labels: `size`, `expired`, `replaced`, `removed`.
    pub fn name(self) -> &'static str {
        match self {
            EvictionCause::Size => "size",
            EvictionCause::Expired => "expired",
            EvictionCause::Replaced => "replaced",
            EvictionCause::Removed => "removed",
        }
    }

    /// Whether the store chose to drop the entry (for room, or because it expired), rather
    /// than a caller's write or removal: what [`Stats::evictions`](super::Stats::evictions)
    /// counts.
    pub fn is_eviction(self) -> bool {
        matches!(self, EvictionCause::Size | EvictionCause::Expired)
    }
}

impl fmt::Display for EvictionCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
