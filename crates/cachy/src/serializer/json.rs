//! JSON: UTF-8 text, as Python's `json.dumps` writes it. Byte strings become arrays of numbers
//! (JSON has no bytes type, so Python cachy cannot share them either).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser;

use crate::error::BoxError;

pub(super) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError> {
    let bytes = serde_json::to_vec(value)?;
    // serde_json writes NaN and the infinities as `null`, which reads back as another value
    // (`None`) or not at all: such a value is refused. Only output holding a `null` can
    // hide one, so the common value is not walked twice.
    if bytes.windows(4).any(|window| window == b"null") {
        value.serialize(&mut FiniteProbe)?;
    }
    Ok(bytes)
}

pub(super) fn deserialize<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Walks a value, failing at the first float JSON cannot hold.
struct FiniteProbe;

/// A float JSON cannot hold, or a value that failed to serialize itself.
#[derive(Debug)]
struct NotFinite(String);

impl std::fmt::Display for NotFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFinite {}

impl ser::Error for NotFinite {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        NotFinite(message.to_string())
    }
}

fn finite(value: f64) -> Result<(), NotFinite> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(NotFinite(format!(
            "JSON cannot hold the float {value} (it would be written as null)"
        )))
    }
}

/// `fn $name(self, _: $type) -> Result<(), NotFinite> { Ok(()) }` for each scalar.
macro_rules! accept {
    ($($name:ident: $type:ty),* $(,)?) => {
        $(fn $name(self, _: $type) -> Result<(), NotFinite> { Ok(()) })*
    };
}

impl ser::Serializer for &mut FiniteProbe {
    type Ok = ();
    type Error = NotFinite;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    accept!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8], serialize_unit_struct: &'static str,
    );

    fn serialize_f32(self, value: f32) -> Result<(), NotFinite> {
        finite(f64::from(value))
    }

    fn serialize_f64(self, value: f64) -> Result<(), NotFinite> {
        finite(value)
    }

    fn serialize_none(self) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), NotFinite> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotFinite> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotFinite> {
        value.serialize(self)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self, NotFinite> {
        Ok(self)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self, NotFinite> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, NotFinite> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, NotFinite> {
        Ok(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, NotFinite> {
        Ok(self)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, NotFinite> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, NotFinite> {
        Ok(self)
    }
}

/// The compound parts of [`FiniteProbe`]: each element, key and field is probed in turn.
macro_rules! compound {
    ($($trait:ident :: $method:ident ($($name:ident: $type:ty),*)),* $(,)?) => {
        $(impl ser::$trait for &mut FiniteProbe {
            type Ok = ();
            type Error = NotFinite;

            fn $method<T: Serialize + ?Sized>(&mut self, $($name: $type,)* value: &T) -> Result<(), NotFinite> {
                $(let _ = $name;)*
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), NotFinite> {
                Ok(())
            }
        })*
    };
}

compound!(
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(key: &'static str),
    SerializeStructVariant::serialize_field(key: &'static str),
);

impl ser::SerializeMap for &mut FiniteProbe {
    type Ok = ();
    type Error = NotFinite;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), NotFinite> {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), NotFinite> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn floats_json_cannot_hold_are_refused_wherever_they_are() {
        assert!(serialize(&f64::NAN).is_err());
        assert!(serialize(&Some(f32::INFINITY)).is_err());
        assert!(serialize(&vec![1.0, f64::NEG_INFINITY]).is_err());
        let map = BTreeMap::from([("a", (1, f64::NAN))]);
        let error = serialize(&map).unwrap_err();
        assert!(error.to_string().contains("NaN"), "{error}");
        assert_eq!(serialize(&None::<f64>).unwrap(), b"null");
        assert_eq!(serialize(&vec![Some(1.5), None]).unwrap(), b"[1.5,null]");
    }
}
