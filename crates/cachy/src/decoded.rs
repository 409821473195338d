//! Values decoded from an in-process store's bytes, kept beside them so that a value read
//! again as the same type is not decoded again
//! ([`Repository::get_shared`](crate::Repository::get_shared)).
//!
//! The bytes stay the truth: a copy answers only a read of the type it was decoded as, with
//! the serializer it was decoded with, while the value it came from is fresh. A read of
//! another type decodes the bytes (and fails on a mismatch) as every read does.

use std::any::{Any, TypeId};
use std::sync::Arc;

use crate::envelope::{self, Millis};
use crate::serializer::Serializer;

/// A value decoded from the bytes an in-process store holds under a key, with what it
/// answers: a type, a serializer, a freshness.
///
/// Made by the repository and handed to [`Store::keep_decoded`](crate::Store::keep_decoded);
/// a store that keeps it answers [`Store::get_decoded_in_process`](crate::Store::get_decoded_in_process)
/// with [`value_for`](Self::value_for).
pub struct Decoded {
    value: Arc<dyn Any + Send + Sync>,
    type_id: TypeId,
    serializer: Serializer,
    /// `None`: as long as the bytes are stored (they carry no logical expiry).
    fresh_until: Option<Millis>,
}

impl Decoded {
    /// `value`, decoded with `serializer` from a payload that stays fresh until
    /// `fresh_until` (milliseconds since the Unix epoch; `None`: while stored).
    pub(crate) fn new<T: Send + Sync + 'static>(
        value: Arc<T>,
        serializer: &Serializer,
        fresh_until: Option<Millis>,
    ) -> Self {
        Decoded {
            value,
            type_id: TypeId::of::<T>(),
            serializer: serializer.clone(),
            fresh_until,
        }
    }

    /// The value, if it is a `type_id` decoded by a serializer reading like `serializer` and
    /// still fresh.
    pub fn value_for(
        &self,
        type_id: TypeId,
        serializer: &Serializer,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let fresh = self.fresh_until.is_none_or(|until| envelope::now() < until);
        (self.type_id == type_id && fresh && self.serializer.reads_like(serializer))
            .then(|| Arc::clone(&self.value))
    }
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("serializer", &self.serializer)
            .field("fresh_until", &self.fresh_until)
            .finish_non_exhaustive()
    }
}
