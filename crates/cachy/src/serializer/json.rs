//! JSON: UTF-8 text, as Python's `json.dumps` writes it. Byte strings become arrays of numbers
//! (JSON has no bytes type, so Python cachy cannot share them either).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::BoxError;

pub(super) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError> {
    Ok(serde_json::to_vec(value)?)
}

pub(super) fn deserialize<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
    Ok(serde_json::from_slice(bytes)?)
}
