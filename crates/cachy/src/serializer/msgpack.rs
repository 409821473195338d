//! MessagePack, laid out as Python's `msgpack.packb(data, use_bin_type=True)`.
//!
//! Integers are stored as decimal text like every integer (see the crate docs), so a single
//! stored byte `'0'`..`'9'` reads as the integer 0..9, never as the msgpack fixints 48..57.
//! Python cachy's own msgpack serializer calls `unpackb(encoding=...)`, which msgpack 1.0
//! removed; it only works with `msgpack<1.0`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::BoxError;

pub(super) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError> {
    Ok(rmp_serde::to_vec_named(value)?)
}

pub(super) fn deserialize<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let value = T::deserialize(&mut de)?;
    let rest = bytes.len() as u64 - de.position();
    if rest > 0 {
        return Err(format!("{rest} bytes left over after the msgpack value").into());
    }
    Ok(value)
}
