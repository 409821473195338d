//! Python's pickle: reads protocols 0 to 5, so whatever Python writes loads here; writes
//! protocol 3, which every Python 3 reads. Structs become dicts keyed by field name, tuples
//! become tuples, and `serde_bytes` values become `bytes`. Pickled instances of Python classes
//! cannot be read (a `Deserialize` error), and no code from a pickle is ever run.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::BoxError;

pub(super) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError> {
    Ok(serde_pickle::to_vec(
        &value,
        serde_pickle::SerOptions::new(),
    )?)
}

pub(super) fn deserialize<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
    Ok(serde_pickle::from_slice(
        bytes,
        serde_pickle::DeOptions::new(),
    )?)
}
