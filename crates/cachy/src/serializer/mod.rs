//! Serializers turn values into the bytes a store keeps: pickle (the default, as in Python
//! cachy), json and msgpack, plus any registered with
//! [`CacheManager::register_serializer`](crate::CacheManager::register_serializer).
//!
//! Integers never reach a serializer: they are stored as decimal text (see the crate docs).

mod json;
mod msgpack;
mod pickle;

pub use json::Json;
pub use msgpack::MsgPack;
pub use pickle::Pickle;

/// Re-exported: implementing [`Serializer`] takes its types, and this keeps versions in step.
pub use erased_serde;
use serde::de::DeserializeOwned;

use crate::error::BoxError;

/// The callback a [`Serializer`] hands its deserializer to.
pub type Visit<'a> =
    dyn for<'de> FnMut(&mut dyn erased_serde::Deserializer<'de>) -> Result<(), erased_serde::Error>
        + 'a;

/// A format for stored values, usable behind `Arc<dyn Serializer>`.
///
/// Implement it for a format of your own with `erased_serde`, as the built-in ones do:
///
/// ```
/// use cachy::serializer::{Serializer, Visit, erased_serde};
/// use cachy::BoxError;
///
/// /// JSON with a version byte in front.
/// struct VersionedJson;
///
/// impl Serializer for VersionedJson {
///     fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
///         let mut out = vec![1u8];
///         serde_json::to_writer(&mut out, value)?;
///         Ok(out)
///     }
///
///     fn deserialize(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), BoxError> {
///         let body = bytes.strip_prefix(&[1u8]).ok_or("unknown version")?;
///         let mut de = serde_json::Deserializer::from_slice(body);
///         visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
///         Ok(de.end()?)
///     }
/// }
/// ```
pub trait Serializer: Send + Sync + 'static {
    /// Write `value` in this format.
    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError>;

    /// Read `bytes` in this format: build a deserializer over them, pass it to `visit`, and
    /// fail if `visit` fails or bytes are left over.
    fn deserialize(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), BoxError>;
}

/// Deserialize `bytes` into a `T` through a type-erased serializer.
pub(crate) fn decode_with<T: DeserializeOwned>(
    serializer: &dyn Serializer,
    bytes: &[u8],
) -> Result<T, BoxError> {
    let mut out = None;
    serializer.deserialize(bytes, &mut |de| {
        out = Some(erased_serde::deserialize::<T>(de)?);
        Ok(())
    })?;
    out.ok_or_else(|| "the serializer did not produce a value".into())
}

/// The serializers every manager knows by name.
pub(crate) fn builtin() -> Vec<(&'static str, std::sync::Arc<dyn Serializer>)> {
    vec![
        ("pickle", std::sync::Arc::new(Pickle)),
        ("json", std::sync::Arc::new(Json)),
        ("msgpack", std::sync::Arc::new(MsgPack)),
    ]
}
