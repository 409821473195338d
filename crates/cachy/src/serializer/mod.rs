//! Serializers turn values into the bytes a store keeps: pickle (the default, as in Python
//! cachy), json and msgpack, plus any [`CustomSerializer`] registered with
//! [`CacheManager::register_serializer`](crate::CacheManager::register_serializer).
//!
//! Integers are stored as decimal text by default, except with msgpack (see
//! [`IntegerFormat`] and the crate docs).

mod json;
mod limits;
mod msgpack;
mod pickle;

use std::sync::Arc;

/// Re-exported: implementing [`CustomSerializer`] takes its types, and this keeps versions in
/// step.
pub use erased_serde;
pub use limits::DecodeLimits;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::BoxError;

/// The callback a [`CustomSerializer`] hands its deserializer to.
pub type Visit<'a> = dyn for<'de> FnMut(&mut dyn erased_serde::Deserializer<'de>) -> Result<(), erased_serde::Error>
    + 'a;

/// A format of your own for stored values, usable by name in the configuration once
/// registered.
///
/// Values reach it type-erased through `erased_serde`:
///
/// ```
/// use cachy::serializer::{CustomSerializer, Visit, erased_serde};
/// use cachy::BoxError;
///
/// /// JSON with a version byte in front.
/// struct VersionedJson;
///
/// impl CustomSerializer for VersionedJson {
///     fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
///         let mut out = vec![1u8];
///         serde_json::to_writer(&mut out, value)?;
///         Ok(out)
///     }
///
///     fn deserialize(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), BoxError> {
///         let body = bytes.strip_prefix(&[1u8]).ok_or("unknown version")?;
///         let mut de = serde_json::Deserializer::from_slice(body);
///         visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
///         Ok(de.end()?)
///     }
/// }
/// ```
pub trait CustomSerializer: Send + Sync + 'static {
    /// Write `value` in this format.
    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError>;

    /// Read `bytes` in this format: build a deserializer over them, pass it to `visit`, and
    /// fail if `visit` fails or bytes are left over.
    fn deserialize(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), BoxError>;
}

/// The serializer of a store: one of the built-in formats, or a custom one.
///
/// The built-in formats are called directly (no type erasure on the hot path); custom ones
/// go through [`CustomSerializer`].
#[derive(Clone)]
pub struct Serializer {
    kind: Kind,
    integers: IntegerFormat,
    limits: DecodeLimits,
}

/// How integers are written (config field `integers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntegerFormat {
    /// As decimal text (`42`), so servers increment them natively (Redis `INCRBY`,
    /// memcached, SQL). The default for pickle, json and custom serializers, whose stored
    /// values are never decimal text themselves.
    #[default]
    Decimal,
    /// Through the serializer, like every other value: what Python cachy writes, so Python
    /// reads integers written here. Counters too are kept in the serializer's format, and
    /// `increment` reads, adds and compare-and-swaps (see
    /// [`Store::compare_and_swap`](crate::Store::compare_and_swap)) instead of asking the
    /// server to add. Always the format of msgpack: a single decimal digit (`b"4"`) is also
    /// the msgpack integer 52, so decimal text would read back as another number.
    Serializer,
}

#[derive(Clone)]
enum Kind {
    Pickle,
    Json,
    MsgPack,
    Custom(Arc<dyn CustomSerializer>),
}

impl std::fmt::Debug for Serializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match &self.kind {
            Kind::Pickle => "Serializer(pickle)",
            Kind::Json => "Serializer(json)",
            Kind::MsgPack => "Serializer(msgpack)",
            Kind::Custom(_) => "Serializer(custom)",
        })
    }
}

impl Serializer {
    /// Python's pickle, the default (see `docs/python.md` and `docs/security.md`): reads
    /// protocols 0 to 5, writes protocol 3. Only plain data is read (None, bool, int, float,
    /// str, bytes, list, tuple, dict, set, frozenset): a pickled instance of a Python class
    /// is a `Deserialize` error naming the class, and nothing from a pickle is ever run.
    pub fn pickle() -> Self {
        Serializer {
            kind: Kind::Pickle,
            integers: IntegerFormat::Decimal,
            limits: DecodeLimits::default(),
        }
    }

    /// JSON, as Python's `json.dumps` writes it.
    pub fn json() -> Self {
        Serializer {
            kind: Kind::Json,
            integers: IntegerFormat::Decimal,
            limits: DecodeLimits::default(),
        }
    }

    /// MessagePack as Python's `msgpack.packb(data, use_bin_type=True)` writes it: structs as
    /// maps with field names, strings as `str`, `serde_bytes` values as `bin`, and integers
    /// as msgpack integers (always [`IntegerFormat::Serializer`]).
    pub fn msgpack() -> Self {
        Serializer {
            kind: Kind::MsgPack,
            integers: IntegerFormat::Serializer,
            limits: DecodeLimits::default(),
        }
    }

    /// A format of your own.
    pub fn custom(format: impl CustomSerializer) -> Self {
        Serializer {
            kind: Kind::Custom(Arc::new(format)),
            integers: IntegerFormat::Decimal,
            limits: DecodeLimits::default(),
        }
    }

    /// This serializer, writing integers as `integers` says. Msgpack ignores
    /// [`IntegerFormat::Decimal`]: see [`IntegerFormat::Serializer`].
    pub fn with_integer_format(mut self, integers: IntegerFormat) -> Self {
        if !self.decimal_is_ambiguous() {
            self.integers = integers;
        }
        self
    }

    /// Whether decimal text can also be a value of this format (a lone digit is a msgpack
    /// integer), so that integers must never be written as decimal text.
    pub(crate) fn decimal_is_ambiguous(&self) -> bool {
        matches!(self.kind, Kind::MsgPack)
    }

    /// This serializer, reading within `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether `other` reads every stored value as this one does: the same format (the same
    /// custom one), integers and limits.
    pub(crate) fn reads_like(&self, other: &Serializer) -> bool {
        let same_format = match (&self.kind, &other.kind) {
            (Kind::Pickle, Kind::Pickle)
            | (Kind::Json, Kind::Json)
            | (Kind::MsgPack, Kind::MsgPack) => true,
            (Kind::Custom(one), Kind::Custom(other)) => Arc::ptr_eq(one, other),
            _ => false,
        };
        same_format && self.integers == other.integers && self.limits == other.limits
    }

    /// The bounds on reading one value.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// How this serializer's stores write integers.
    pub fn integer_format(&self) -> IntegerFormat {
        self.integers
    }

    /// Write `value` in this format.
    pub fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        match &self.kind {
            Kind::Pickle => pickle::serialize(value),
            Kind::Json => json::serialize(value),
            Kind::MsgPack => msgpack::serialize(value),
            Kind::Custom(format) => format.serialize(&value as &dyn erased_serde::Serialize),
        }
    }

    /// Read `bytes` in this format as a `T`, within [`limits`](Self::limits) for the
    /// built-in formats.
    pub fn deserialize<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        match &self.kind {
            Kind::Pickle => pickle::deserialize(bytes, &self.limits),
            Kind::Json => json::deserialize(bytes),
            Kind::MsgPack => msgpack::deserialize(bytes, &self.limits),
            Kind::Custom(format) => {
                let mut out = None;
                format.deserialize(bytes, &mut |de| {
                    out = Some(erased_serde::deserialize::<T>(de)?);
                    Ok(())
                })?;
                out.ok_or_else(|| "the custom serializer did not produce a value".into())
            }
        }
    }
}

/// The serializers every manager knows by name.
pub(crate) fn builtin() -> [(&'static str, Serializer); 3] {
    [
        ("pickle", Serializer::pickle()),
        ("json", Serializer::json()),
        ("msgpack", Serializer::msgpack()),
    ]
}
