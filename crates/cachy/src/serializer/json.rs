use super::{Serializer, Visit};
use crate::error::BoxError;

/// JSON, as Python's `json.dumps` writes it: UTF-8 text.
///
/// Structs become objects; byte strings become arrays of numbers unless marked with
/// `serde_bytes` (JSON has no bytes type, so Python cachy cannot share them either).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Serializer for Json {
    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value)?)
    }

    fn deserialize(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), BoxError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
        Ok(de.end()?)
    }
}
