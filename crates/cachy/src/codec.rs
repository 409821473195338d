//! From typed values to stored bytes and back.
//!
//! Integers bypass the serializer and are stored as canonical decimal text (`42`, `-7`), so a
//! server's own atomic increment (Redis `INCRBY`, memcached `incr`, an SQL `UPDATE`) works on
//! any integer this crate wrote, unless the serializer keeps integers in its own format
//! ([`IntegerFormat::Serializer`], always so for msgpack). Every other value goes through the
//! store's [`Serializer`].
//! On the way back, canonical decimal text is read as an integer, first for formats in which
//! it is never a value, last for msgpack (where a lone digit is a msgpack integer).

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Impossible, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::serializer::{IntegerFormat, Serializer};

/// The longest decimal text read as an integer: the digits of `i128::MIN`.
const MAX_INTEGER_TEXT: usize = 40;

/// Serialize `value` for storage.
pub(crate) fn encode<T: Serialize + ?Sized>(serializer: &Serializer, value: &T) -> Result<Vec<u8>> {
    if serializer.integer_format() == IntegerFormat::Decimal
        && let Ok(Some(integer)) = value.serialize(IntegerProbe)
    {
        return Ok(integer.to_string().into_bytes());
    }
    let bytes = serializer.serialize(value).map_err(|e| {
        Error::new(ErrorKind::Serialize, "the value cannot be serialized").with_source(e)
    })?;
    if bytes.first() == Some(&crate::envelope::MARK) {
        // No built-in format starts a value with it; a custom one must not either, or its
        // values could read as cachy's envelope.
        return Err(Error::new(
            ErrorKind::Serialize,
            format!(
                "the serializer wrote a value starting with byte {:#04x}, which marks cachy's \
                 envelope; a custom serializer must not start its output with it",
                crate::envelope::MARK
            ),
        ));
    }
    Ok(bytes)
}

/// Read stored bytes as a `T`.
pub(crate) fn decode<T: DeserializeOwned>(serializer: &Serializer, bytes: &[u8]) -> Result<T> {
    if bytes.first() == Some(&crate::envelope::MARK)
        && let Some(error) = crate::stores::layer::unopened(bytes)
    {
        return Err(error);
    }
    let wrong_type = |e: crate::error::BoxError| {
        Error::new(
            ErrorKind::Deserialize,
            format!(
                "the stored value cannot be read as `{}` (another type, or corrupted data)",
                std::any::type_name::<T>()
            ),
        )
        .with_source(e)
    };
    let as_integer = |integer| T::deserialize(IntegerDeserializer(integer));
    if serializer.decimal_is_ambiguous() {
        // The format's own reading comes first; decimal text that is not a value of the
        // format (counters another client made with the server's own increment) still reads.
        return serializer
            .deserialize(bytes)
            .or_else(|e| match parse_integer(bytes) {
                Some(integer) => as_integer(integer).map_err(|e| wrong_type(e.into())),
                None => Err(wrong_type(e)),
            });
    }
    if let Some(integer) = parse_integer(bytes) {
        return as_integer(integer).map_err(|e| wrong_type(e.into()));
    }
    serializer.deserialize(bytes).map_err(wrong_type)
}

/// Add `by` to the counter `current` holds in `serializer`'s format (missing counts as 0),
/// for stores that keep counters in the serializer's format.
pub(crate) fn incremented_in_format(
    serializer: &Serializer,
    current: Option<&[u8]>,
    by: i64,
) -> Result<i64> {
    add_to_counter(current, by, |bytes| decode::<i64>(serializer, bytes).ok())
}

/// Parse canonical decimal integer text: an optional `-`, then `0` or digits without a leading
/// zero. Anything else (spaces, `+`, `-0`, leading zeros) is not an integer.
pub(crate) fn parse_integer(bytes: &[u8]) -> Option<i128> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == bytes.len(),
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    if !canonical || bytes.len() > MAX_INTEGER_TEXT {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Add `by` to the stored counter `current` (missing counts as 0), as every store must.
pub(crate) fn incremented(current: Option<&[u8]>, by: i64) -> Result<i64> {
    add_to_counter(current, by, |bytes| {
        parse_integer(bytes).and_then(|v| i64::try_from(v).ok())
    })
}

/// The counter in `current` plus `by`: missing counts as 0, and `read` gives `None` for
/// bytes that hold no counter.
fn add_to_counter(
    current: Option<&[u8]>,
    by: i64,
    read: impl FnOnce(&[u8]) -> Option<i64>,
) -> Result<i64> {
    let value = match current {
        None => 0,
        Some(bytes) => read(bytes).ok_or_else(|| {
            Error::new(
                ErrorKind::NotAnInteger,
                "the stored value is not an integer, so it cannot be incremented or decremented",
            )
        })?,
    };
    value.checked_add(by).ok_or_else(|| {
        Error::new(
            ErrorKind::Overflow,
            format!("incrementing {value} by {by} overflows a 64-bit counter"),
        )
    })
}

/// A `serde::Serializer` that answers "is this value an integer, and which?" without
/// allocating: integers give `Ok(Some(n))`, everything else fails at once.
struct IntegerProbe;

#[derive(Debug)]
struct NotAnInteger;

impl std::fmt::Display for NotAnInteger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an integer")
    }
}

impl std::error::Error for NotAnInteger {}

impl ser::Error for NotAnInteger {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotAnInteger
    }
}

macro_rules! probe_integers {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method(self, v: $ty) -> Result<Option<i128>, NotAnInteger> {
            Ok(i128::try_from(v).ok())
        })*
    };
}

macro_rules! probe_rejects {
    ($($method:ident($($arg:ty),*)),*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Option<i128>, NotAnInteger> {
            Err(NotAnInteger)
        })*
    };
}

impl ser::Serializer for IntegerProbe {
    type Ok = Option<i128>;
    type Error = NotAnInteger;
    type SerializeSeq = Impossible<Option<i128>, NotAnInteger>;
    type SerializeTuple = Impossible<Option<i128>, NotAnInteger>;
    type SerializeTupleStruct = Impossible<Option<i128>, NotAnInteger>;
    type SerializeTupleVariant = Impossible<Option<i128>, NotAnInteger>;
    type SerializeMap = Impossible<Option<i128>, NotAnInteger>;
    type SerializeStruct = Impossible<Option<i128>, NotAnInteger>;
    type SerializeStructVariant = Impossible<Option<i128>, NotAnInteger>;

    probe_integers!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128
    );

    probe_rejects!(
        serialize_bool(bool),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str)
    );

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Self::Ok, Self::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Self::Ok, Self::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, Self::Error> {
        Err(NotAnInteger)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(NotAnInteger)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(NotAnInteger)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(NotAnInteger)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(NotAnInteger)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Err(NotAnInteger)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Err(NotAnInteger)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(NotAnInteger)
    }
}

/// Presents a stored integer to `Deserialize`: as itself, inside `Some`, or inside a newtype.
struct IntegerDeserializer(i128);

impl<'de> de::Deserializer<'de> for IntegerDeserializer {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if let Ok(v) = i64::try_from(self.0) {
            visitor.visit_i64(v)
        } else if let Ok(v) = u64::try_from(self.0) {
            visitor.visit_u64(v)
        } else {
            self.0.into_deserializer().deserialize_any(visitor)
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_decimal_text_is_an_integer() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"42"), Some(42));
        assert_eq!(parse_integer(b"-42"), Some(-42));
        assert_eq!(
            parse_integer(b"-9223372036854775808"),
            Some(i64::MIN as i128)
        );
        for not_integer in [
            &b""[..],
            b"-",
            b"-0",
            b"007",
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"x",
        ] {
            assert_eq!(parse_integer(not_integer), None, "{not_integer:?}");
        }
    }

    #[test]
    fn increments_start_at_zero_and_refuse_text_and_overflow() {
        assert_eq!(incremented(None, 3).unwrap(), 3);
        assert_eq!(incremented(Some(b"-2"), 1).unwrap(), -1);
        let text = incremented(Some(b"abc"), 1).unwrap_err();
        assert_eq!(text.kind(), ErrorKind::NotAnInteger);
        let overflow = incremented(Some(i64::MAX.to_string().as_bytes()), 1).unwrap_err();
        assert_eq!(overflow.kind(), ErrorKind::Overflow);
    }
}
