//! MessagePack, laid out as Python's `msgpack.packb(data, use_bin_type=True)`.
//!
//! Python cachy's own msgpack serializer calls `unpackb(encoding=...)`, which msgpack 1.0
//! removed; it only works with `msgpack<1.0`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DecodeLimits;
use crate::error::BoxError;

pub(super) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError> {
    Ok(rmp_serde::to_vec_named(value)?)
}

pub(super) fn deserialize<T: DeserializeOwned>(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<T, BoxError> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    // rmp-serde counts the level it stops at: this allows exactly `max_depth` levels.
    de.set_max_depth(limits.max_depth().saturating_add(1));
    let value = T::deserialize(&mut de)?;
    let rest = bytes.len() as u64 - de.position();
    if rest > 0 {
        return Err(format!("{rest} bytes left over after the msgpack value").into());
    }
    Ok(value)
}
