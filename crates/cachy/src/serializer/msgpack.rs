use super::{Serializer, Visit};
use crate::error::BoxError;

/// MessagePack, laid out as Python's `msgpack.packb(data, use_bin_type=True)`: structs as maps
/// with field names, strings as `str`, `serde_bytes` values as `bin`.
///
/// Integers are stored as decimal text like every integer (see the crate docs), so a single
/// stored byte `'0'`..`'9'` reads as the integer 0..9, never as the msgpack fixints 48..57.
/// Python cachy's own msgpack serializer calls `unpackb(encoding=...)`, which msgpack 1.0
/// removed; it only works with `msgpack<1.0`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPack;

impl Serializer for MsgPack {
    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
        Ok(rmp_serde::to_vec_named(value)?)
    }

    fn deserialize(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), BoxError> {
        let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
        visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
        let rest = bytes.len() as u64 - de.position();
        if rest > 0 {
            return Err(format!("{rest} bytes left over after the msgpack value").into());
        }
        Ok(())
    }
}
