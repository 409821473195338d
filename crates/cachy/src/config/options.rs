//! Typed store options: a driver declares its options as a struct deriving `Deserialize`
//! and reads them with [`StoreConfig::parse`]. The struct is the one list of the driver's
//! options: a name that is not one of its fields is an error naming the nearest field, and
//! a value of the wrong type is an error naming its field.

use std::time::Duration;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{MAX_CONFIG_SECONDS, StoreConfig, common_fields};
use crate::error::{Error, Result};

/// A duration option, in seconds: a positive, finite number of at most a year (fractions
/// allowed), or a string of one.
///
/// ```
/// use std::time::Duration;
/// use cachy::{Seconds, StoreConfig};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Options {
///     timeout: Option<Seconds>,
/// }
///
/// let config = StoreConfig::new("mine").with("timeout", 1.5);
/// let options: Options = config.parse()?;
/// assert_eq!(options.timeout.map(Seconds::duration), Some(Duration::from_millis(1500)));
///
/// let error = StoreConfig::new("mine").with("timeout", -1).parse::<Options>().unwrap_err();
/// assert!(error.to_string().contains("timeout"));
/// # Ok::<(), cachy::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(Duration);

impl Seconds {
    /// The duration.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// `seconds` as a duration, if it is a valid option value.
    pub(crate) fn from_f64(seconds: f64) -> Option<Self> {
        Some(seconds)
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_CONFIG_SECONDS)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map(Seconds)
    }

    pub(crate) fn rule() -> String {
        format!("a number of seconds above 0 and at most {MAX_CONFIG_SECONDS} (a year)")
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let seconds = match &value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        seconds
            .and_then(Seconds::from_f64)
            .ok_or_else(|| de::Error::custom(format!("must be {}, not {value}", Seconds::rule())))
    }
}

/// A non-negative integer option: a number, or a string of digits (config files often quote
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Count::from_value(&value).ok_or_else(|| {
            de::Error::custom(format!("must be a non-negative integer, not {value}"))
        })
    }
}

impl Count {
    pub(crate) fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_u64().map(Count),
            Value::String(s) => s.trim().parse().ok().map(Count),
            _ => None,
        }
    }
}

impl StoreConfig {
    /// The non-negative integer option `field`, if set (integers written as strings are
    /// accepted, as config files often quote them).
    pub fn u64(&self, field: &str) -> Result<Option<u64>> {
        match self.options.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => Count::from_value(value).map(|c| Some(c.0)).ok_or_else(|| {
                self.error(
                    field,
                    format!("`{field}` must be a non-negative integer, not {value}"),
                )
            }),
        }
    }

    /// The option `field` as a duration in seconds, if set: a positive, finite number of at
    /// most a year (fractions allowed, strings of a number accepted); see [`Seconds`].
    pub fn seconds(&self, field: &str) -> Result<Option<Duration>> {
        match self.options.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => Seconds::deserialize(value)
                .map(|s| Some(s.duration()))
                .map_err(|e| self.error(field, format!("`{field}` {e}"))),
        }
    }

    /// The driver's options as `T`, a struct deriving `Deserialize` (make optional fields
    /// `Option`s; use [`Seconds`] and [`Count`] for durations and counts). An option that
    /// is not a field of `T` (nor one the manager reads for every store) is an error naming
    /// `stores.<name>.<field>` and the nearest field; so is a value of the wrong type, or a
    /// missing required field.
    ///
    /// ```
    /// use cachy::{Count, StoreConfig};
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Options {
    ///     url: String,
    ///     max_connections: Option<Count>,
    /// }
    ///
    /// let config = StoreConfig::new("mine").with("url", "x://y").with("max_conections", 5);
    /// let error = config.parse::<Options>().unwrap_err();
    /// assert!(error.to_string().contains("did you mean `max_connections`"));
    /// ```
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        self.check_fields(fields_of::<T>())?;
        T::deserialize(OwnOptions(self)).map_err(|e| match e {
            OptionError::Missing(field) => self.error(
                field,
                format!("the `{}` driver needs `{field}`", self.driver()),
            ),
            OptionError::At(field, message) => {
                self.error(&field, format!("`{field}` {}", with_verb(&message)))
            }
            OptionError::Other(message) => {
                Error::config(format!("stores.{}", self.name()), message).with_store(self.name())
            }
        })
    }
}

impl StoreConfig {
    /// Parse the driver's typed config `T` (as [`parse`](Self::parse) does) and build a
    /// store from it with `new`, the store's constructor for code, which names a bad field
    /// by its own name (`Error::config("path", …)`): the error then names it as
    /// `stores.<name>.<field>`, for this store. This is how every built-in driver's
    /// `from_config` works, so that a store built from a config file and one built in code
    /// check the same things; a custom driver can do the same.
    ///
    /// ```
    /// use cachy::{Error, Result, StoreConfig, stores::NullStore};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct MongoConfig {
    ///     collection: String,
    /// }
    ///
    /// fn mongo(config: MongoConfig) -> Result<NullStore> {
    ///     if config.collection.is_empty() {
    ///         return Err(Error::config("collection", "`collection` must not be empty"));
    ///     }
    ///     Ok(NullStore) // a real driver would keep the config and connect on first use
    /// }
    ///
    /// let config = StoreConfig::new("mongo").with("collection", "");
    /// let error = config.build(mongo).unwrap_err();
    /// assert!(error.field().is_some_and(|field| field.ends_with(".collection")));
    /// ```
    pub fn build<T: DeserializeOwned, S>(&self, new: impl FnOnce(T) -> Result<S>) -> Result<S> {
        new(self.parse()?).map_err(|e| match e.field() {
            Some(field) if !field.starts_with("stores.") => {
                let path = self.field_path(field);
                e.relocated(path).with_store(self.name())
            }
            _ => e.with_store(self.name()),
        })
    }
}

/// serde helpers for the typed configs' fields: durations written as seconds, counts that
/// may be quoted.
pub(crate) mod fields {
    #[cfg(any(
        feature = "redis",
        feature = "memcached",
        feature = "database",
        feature = "hybrid"
    ))]
    pub(crate) use durations::{checked, seconds};

    /// An optional count written as a [`Count`](super::Count).
    #[cfg(any(
        feature = "memory",
        feature = "redis",
        feature = "memcached",
        feature = "database"
    ))]
    pub(crate) fn count<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Option<u64>, D::Error> {
        use serde::Deserialize;
        Ok(Option::<super::Count>::deserialize(deserializer)?.map(|count| count.0))
    }

    #[cfg(any(
        feature = "redis",
        feature = "memcached",
        feature = "database",
        feature = "hybrid"
    ))]
    mod durations {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer};

        use super::super::Seconds;
        use crate::error::{Error, Result};

        /// An optional duration written as [`Seconds`].
        pub(crate) fn seconds<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> std::result::Result<Option<Duration>, D::Error> {
            Ok(Option::<Seconds>::deserialize(deserializer)?.map(Seconds::duration))
        }

        /// `duration` if it is one a config could give (above zero, at most a year), else
        /// an error naming `field`: a config built in code is checked as a file's is.
        pub(crate) fn checked(field: &str, duration: Option<Duration>) -> Result<Option<Duration>> {
            match duration {
                Some(d) if Seconds::from_f64(d.as_secs_f64()).is_none() => Err(Error::config(
                    field,
                    format!("`{field}` must be {}, not {d:?}", Seconds::rule()),
                )),
                other => Ok(other),
            }
        }
    }
}

/// serde's own messages (`invalid type: ...`) read after a field name with "is"; ours start
/// with "must".
fn with_verb(message: &str) -> String {
    if message.starts_with("must") {
        message.to_owned()
    } else {
        format!("is wrong: {message}")
    }
}

/// The field names of the struct `T`, asked of its `Deserialize` implementation.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(
            self,
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields taken"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Why the options did not deserialize.
#[derive(Debug)]
enum OptionError {
    Missing(&'static str),
    At(String, String),
    Other(String),
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionError::Missing(field) => write!(f, "missing `{field}`"),
            OptionError::At(field, message) => write!(f, "`{field}`: {message}"),
            OptionError::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for OptionError {}

impl de::Error for OptionError {
    fn custom<M: std::fmt::Display>(message: M) -> Self {
        OptionError::Other(message.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        OptionError::Missing(field)
    }
}

/// A store's options without the fields the manager reads for every store, as a map to
/// deserialize a driver's struct from.
struct OwnOptions<'a>(&'a StoreConfig);

impl<'de> Deserializer<'de> for OwnOptions<'_> {
    type Error = OptionError;

    fn deserialize_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, OptionError> {
        visitor.visit_map(Entries {
            entries: self
                .0
                .options()
                .iter()
                .filter(|(field, _)| common_fields().all(|common| common != field.as_str()))
                .collect::<Vec<_>>()
                .into_iter(),
            value: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
}

struct Entries<'a> {
    entries: std::vec::IntoIter<(&'a String, &'a Value)>,
    value: Option<(&'a String, &'a Value)>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = OptionError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> std::result::Result<Option<K::Value>, OptionError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        seed.deserialize(entry.0.as_str().into_deserializer())
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> std::result::Result<V::Value, OptionError> {
        let (field, value) = self
            .value
            .take()
            .ok_or_else(|| OptionError::Other("a value without its option name".to_owned()))?;
        seed.deserialize(value.clone())
            .map_err(|e| OptionError::At(field.clone(), e.to_string()))
    }
}
