//! How an operation's result reads as outcomes: the helpers every observed operation
//! reports with, and its span.

use super::operation::Outcome;
use crate::error::Error;
use crate::store::Ttl;

/// What a report calls with each key's outcome.
pub(crate) type Record<'a> = dyn FnMut(Option<&str>, Outcome) + 'a;

/// The report of an operation on one `key`: its outcome on success, its error's otherwise.
pub(crate) fn reporting<T, E: 'static>(
    key: Option<&str>,
    outcome: impl FnOnce(&T) -> Outcome,
) -> impl FnOnce(std::result::Result<&T, &E>, &mut Record<'_>) {
    move |result, record| record(key, result.map_or_else(error_outcome, outcome))
}

/// A read's outcome: whether it found a value.
pub(crate) fn found<T>(value: &Option<T>) -> Outcome {
    if value.is_some() {
        Outcome::Hit
    } else {
        Outcome::Miss
    }
}

/// A removal's outcome.
pub(crate) fn removed(removed: &bool) -> Outcome {
    if *removed {
        Outcome::Removed
    } else {
        Outcome::Unchanged
    }
}

/// A write's outcome: a lifetime of zero or less removes instead.
pub(crate) fn written(ttl: Option<Ttl>) -> Outcome {
    if ttl.is_some() {
        Outcome::Written
    } else {
        Outcome::Removed
    }
}

/// The outcome of an operation that failed with `error`: a cache error's kind, or, for a
/// `remember` factory's own error, [`Outcome::FactoryFailed`].
pub(crate) fn error_outcome<E: 'static>(error: &E) -> Outcome {
    match (error as &dyn std::any::Any).downcast_ref::<Error>() {
        Some(error) => Outcome::Failed(error.kind()),
        None => Outcome::FactoryFailed,
    }
}

/// The span of one operation (feature `tracing`).
#[cfg(feature = "tracing")]
pub(crate) fn span(store: &str, operation: super::Operation, key: Option<&str>) -> tracing::Span {
    let span = tracing::debug_span!(
        "cache",
        store,
        operation = operation.name(),
        key = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    if !span.is_disabled()
        && let Some(shown) = key.and_then(super::shown_key)
    {
        span.record("key", shown);
    }
    span
}
