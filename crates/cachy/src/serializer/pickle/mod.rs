//! Python's pickle: reads protocols 0 to 5, so whatever Python writes loads here; writes
//! protocol 3, which every Python 3 reads. Structs become dicts keyed by field name, tuples
//! become tuples, and `serde_bytes` values become `bytes`.
//!
//! Reading is done by this crate's own bounded reader ([`unpickler`]), straight into the value's
//! type where it can ([`direct`]; a struct of plain fields and lists of them without the reader at
//! all, [`flat`]), never by running anything the pickle names: pickled instances of Python classes
//! (and any other Python object than plain data) are a `Deserialize` error naming the class.

mod direct;
mod flat;
mod objects;
mod scalars;
mod tree;
mod unpickler;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DecodeLimits;
use crate::error::BoxError;

pub(super) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError> {
    serde_pickle::to_vec(&value, serde_pickle::SerOptions::new()).map_err(|e| {
        // serde_pickle words a value it cannot write as a "decoding error": say what it is.
        let message = e.to_string();
        let reason = message.strip_prefix("decoding error: ").unwrap_or(&message);
        format!("pickle cannot write this value: {reason}").into()
    })
}

pub(super) fn deserialize<T: DeserializeOwned>(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<T, BoxError> {
    if let Ok(value) = flat::read(bytes, limits) {
        return Ok(value);
    }
    let arena = unpickler::run(bytes, limits)?;
    let mut direct = direct::Reader {
        objects: &arena.objects,
        budget: arena.budget,
        max_depth: limits.max_depth(),
    };
    if let Ok(value) = direct.read(arena.root) {
        return Ok(value);
    }
    Ok(serde_pickle::from_value(arena.tree(limits)?)?)
}
