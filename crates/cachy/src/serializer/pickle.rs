use super::{Serializer, Visit};
use crate::error::BoxError;

/// Python's pickle, the default serializer (as in Python cachy).
///
/// Reads protocols 0 to 5, so whatever Python writes loads here; writes protocol 3, which every
/// Python 3 reads. Structs become dicts keyed by field name, tuples become tuples, and
/// `serde_bytes` values become `bytes`. Pickled instances of Python classes cannot be read:
/// they give a [`Deserialize`](crate::ErrorKind::Deserialize) error, and no code from a pickle is
/// ever run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pickle;

impl Serializer for Pickle {
    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
        Ok(serde_pickle::to_vec(&value, serde_pickle::SerOptions::new())?)
    }

    fn deserialize(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), BoxError> {
        let mut de = serde_pickle::Deserializer::new(bytes, serde_pickle::DeOptions::new());
        visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
        Ok(de.end()?)
    }
}
