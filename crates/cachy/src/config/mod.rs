//! Configuration: the shape of Python cachy's config dict, loaded from a file, a
//! `serde_json::Value`, or built in code.
//!
//! ```toml
//! default = "redis"          # optional when there is only one store
//! serializer = "pickle"      # pickle (default), json, msgpack, or a registered name
//!
//! [stores.redis]
//! driver = "redis"
//! serializer = "json"        # overrides the global serializer for this store
//! host = "localhost"
//! port = 6379
//!
//! [stores.file]
//! driver = "file"
//! path = "/var/cache/myapp"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};

pub(crate) mod options;
pub(crate) mod redact;

use redact::redacted;

pub use options::{Count, Seconds};

/// The whole cache configuration: named stores, the default store and the serializer.
///
/// ```
/// use cachy::{CacheConfig, CacheManager, StoreConfig};
///
/// let config = CacheConfig::new()
///     .store("memory", StoreConfig::new("dict"))
///     .store("disk", StoreConfig::new("file").with("path", "/tmp/cachy-doc"))
///     .default_store("memory")
///     .serializer("json");
/// let cache = CacheManager::new(config)?;
/// assert_eq!(cache.default_store_name()?, "memory");
/// # Ok::<(), cachy::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheConfig {
    default: Option<String>,
    serializer: Option<String>,
    stores: BTreeMap<String, StoreConfig>,
}

impl CacheConfig {
    /// An empty configuration; add stores with [`store`](Self::store).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) the store `name`.
    pub fn store(mut self, name: impl Into<String>, mut store: StoreConfig) -> Self {
        let name = name.into();
        store.name.clone_from(&name);
        self.stores.insert(name, store);
        self
    }

    /// Name the default store.
    pub fn default_store(mut self, name: impl Into<String>) -> Self {
        self.default = Some(name.into());
        self
    }

    /// Set the serializer of every store that does not name its own.
    pub fn serializer(mut self, name: impl Into<String>) -> Self {
        self.serializer = Some(name.into());
        self
    }

    /// The explicit default store, if the configuration names one.
    pub fn default_name(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// The global serializer name (`pickle` unless set).
    pub fn serializer_name(&self) -> &str {
        self.serializer.as_deref().unwrap_or("pickle")
    }

    /// The store configurations by name.
    pub fn stores(&self) -> &BTreeMap<String, StoreConfig> {
        &self.stores
    }

    /// Read a configuration shaped like Python cachy's dict:
    /// `{"default": ..., "serializer": ..., "stores": {name: {"driver": ..., ...}}}`.
    pub fn from_value(value: Value) -> Result<Self> {
        let Value::Object(mut top) = value else {
            return Err(Error::config(
                "(root)",
                format!("the configuration must be a map, not {}", type_name(&value)),
            ));
        };
        let default = optional_string(&mut top, "default", "default")?;
        let serializer = optional_string(&mut top, "serializer", "serializer")?;
        let stores = match top.remove("stores") {
            Some(Value::Object(stores)) => stores,
            Some(other) => {
                return Err(Error::config(
                    "stores",
                    format!(
                        "`stores` must be a map of store names, not {}",
                        type_name(&other)
                    ),
                ));
            }
            None => {
                return Err(Error::config(
                    "stores",
                    "the configuration has no `stores` map",
                ));
            }
        };
        if let Some(unknown) = top.keys().next() {
            return Err(Error::config(
                unknown.clone(),
                format!(
                    "unknown top-level field `{unknown}` (expected `default`, `serializer`, `stores`)"
                ),
            ));
        }
        let mut config = CacheConfig {
            default,
            serializer,
            stores: BTreeMap::new(),
        };
        for (name, store) in stores {
            let store = StoreConfig::from_value(&name, store)?;
            config.stores.insert(name, store);
        }
        config.validate()?;
        Ok(config)
    }

    /// Read a configuration file, in TOML, JSON or YAML by its extension (`.toml`, `.json`,
    /// `.yaml`, `.yml`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read the config file {shown}"),
            )
            .with_source(e)
        })?;
        // Where and what only: the parsers' own errors quote the file's lines (TOML's keeps
        // the whole file), which may hold passwords and keys.
        let parse_error = |format: &str, detail: String| {
            Error::new(
                ErrorKind::Config,
                format!("{shown} is not valid {format}: {detail}"),
            )
        };
        let value = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => toml::from_str(&text).map_err(|e| {
                let at = e.span().map_or_else(String::new, |span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(" at line {line}, column {column}")
                });
                parse_error("TOML", format!("{}{at}", e.message().trim_end()))
            })?,
            Some("json") => {
                serde_json::from_str(&text).map_err(|e| parse_error("JSON", e.to_string()))?
            }
            Some("yaml" | "yml") => serde_norway::from_str(&text).map_err(|e| {
                let at = e.location().map_or_else(String::new, |l| {
                    format!(" at line {}, column {}", l.line(), l.column())
                });
                parse_error("YAML", format!("the file does not parse{at}"))
            })?,
            _ => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{shown}: the config file must end in .toml, .json, .yaml or .yml"),
                ));
            }
        };
        Self::from_value(value)
    }

    fn validate(&self) -> Result<()> {
        if let Some(default) = &self.default
            && !self.stores.contains_key(default)
        {
            return Err(Error::config(
                "default",
                format!("the default store `{default}` is not defined in `stores`"),
            ));
        }
        Ok(())
    }
}

/// The configuration of one store: its driver, serializer and driver-specific options.
///
/// Custom drivers read their options with the typed accessors, whose errors name the field.
///
/// Its `Debug` output hides secrets: options named like a password, secret or token, and
/// the password of any `scheme://user:password@host` URL, show as `<redacted>`.
#[derive(Clone, PartialEq)]
pub struct StoreConfig {
    name: String,
    driver: String,
    serializer: Option<String>,
    global_serializer: Option<String>,
    options: Map<String, Value>,
}

impl StoreConfig {
    /// A store using `driver` (`dict`, `file`, `null`, or a name registered with `extend`).
    pub fn new(driver: impl Into<String>) -> Self {
        StoreConfig {
            name: String::new(),
            driver: driver.into(),
            serializer: None,
            global_serializer: None,
            options: Map::new(),
        }
    }

    /// Set a driver option.
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.insert(field.into(), value.into());
        self
    }

    /// This config as the store `name`'s, as its errors name it.
    pub(crate) fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// Use the serializer `name` for this store.
    pub fn serializer(mut self, name: impl Into<String>) -> Self {
        self.serializer = Some(name.into());
        self
    }

    fn from_value(name: &str, value: Value) -> Result<Self> {
        let Value::Object(mut options) = value else {
            return Err(Error::config(
                format!("stores.{name}"),
                format!("store `{name}` must be a map, not {}", type_name(&value)),
            ));
        };
        let driver = optional_string(&mut options, "driver", &format!("stores.{name}.driver"))?
            .ok_or_else(|| {
                Error::config(
                    format!("stores.{name}.driver"),
                    format!("store `{name}` has no `driver`"),
                )
            })?;
        let serializer = optional_string(
            &mut options,
            "serializer",
            &format!("stores.{name}.serializer"),
        )?;
        Ok(StoreConfig {
            name: name.to_owned(),
            driver,
            serializer,
            global_serializer: None,
            options,
        })
    }

    /// The store's name in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The driver name.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The store's own serializer, if it names one.
    pub fn serializer_name(&self) -> Option<&str> {
        self.serializer.as_deref()
    }

    /// The serializer this store's values are written with: its own, else the global one,
    /// else `pickle`. (The memory store, being process-local, is the one exception: see
    /// [`Store::is_process_local`](crate::Store::is_process_local).)
    pub fn effective_serializer(&self) -> &str {
        self.serializer
            .as_deref()
            .or(self.global_serializer.as_deref())
            .unwrap_or("pickle")
    }

    pub(crate) fn with_global_serializer(&self, global: &str) -> Self {
        let mut config = self.clone();
        config.global_serializer = Some(global.to_owned());
        config
    }

    /// Every driver option, as given.
    pub fn options(&self) -> &Map<String, Value> {
        &self.options
    }

    /// The full path of a field, for error messages: `stores.<name>.<field>`.
    pub fn field_path(&self, field: &str) -> String {
        format!("stores.{}.{field}", self.name)
    }

    /// A config error about `field` of this store.
    pub fn error(&self, field: &str, message: impl Into<String>) -> Error {
        Error::config(self.field_path(field), message).with_store(&self.name)
    }

    /// The string option `field`, if set; an error if it is set to something else.
    pub fn str(&self, field: &str) -> Result<Option<&str>> {
        match self.options.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.error(
                field,
                format!("`{field}` must be a string, not {}", type_name(other)),
            )),
        }
    }

    /// The string option `field`; an error naming it if it is missing.
    pub fn required_str(&self, field: &str) -> Result<&str> {
        self.str(field)?.ok_or_else(|| {
            self.error(
                field,
                format!("the `{}` driver needs `{field}`", self.driver),
            )
        })
    }

    /// Fail if an option is neither one of `known` (the driver's own fields) nor one the
    /// manager reads for every store (`integers`, `decode_max_depth`,
    /// `decode_max_expansion`): the error names `stores.<name>.<field>` and the nearest
    /// valid name, so a typo such as `max_conections` never passes silently. Every built-in
    /// driver calls it; custom drivers may too.
    ///
    /// ```
    /// use cachy::StoreConfig;
    ///
    /// let config = StoreConfig::new("mine").with("max_conections", 5);
    /// let error = config.check_fields(&["max_connections"]).unwrap_err();
    /// assert!(error.to_string().contains("did you mean `max_connections`"));
    /// ```
    pub fn check_fields(&self, known: &[&str]) -> Result<()> {
        let valid = || known.iter().copied().chain(common_fields());
        let Some(unknown) = self
            .options
            .keys()
            .find(|field| valid().all(|v| v != *field))
        else {
            return Ok(());
        };
        let hint = match nearest(unknown, valid()) {
            Some(candidate) => format!("; did you mean `{candidate}`?"),
            None => {
                let mut names: Vec<&str> = valid().collect();
                names.sort_unstable();
                format!(" (its fields: {})", names.join(", "))
            }
        };
        Err(self.error(
            unknown,
            format!(
                "the `{}` driver has no option `{unknown}`{hint}",
                self.driver
            ),
        ))
    }

    /// The boolean option `field`, if set.
    pub fn bool(&self, field: &str) -> Result<Option<bool>> {
        match self.options.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(
                field,
                format!("`{field}` must be true or false, not {other}"),
            )),
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: Map<String, Value> = self
            .options
            .iter()
            .map(|(field, value)| (field.clone(), redacted(field, value)))
            .collect();
        f.debug_struct("StoreConfig")
            .field("name", &self.name)
            .field("driver", &self.driver)
            .field("serializer", &self.serializer)
            .field("options", &options)
            .finish()
    }
}

/// Store options the manager reads for every driver: how its values decode, and the options
/// of the layer every store is built in.
pub(crate) fn common_fields<'a>() -> impl Iterator<Item = &'a str> + Clone {
    ["integers", "decode_max_depth", "decode_max_expansion"]
        .into_iter()
        .chain(crate::stores::layer::config::FIELDS.iter().copied())
        .map(|field| -> &'a str { field })
}

/// Of `candidates`, the one `name` is most likely a typo of, if any is close enough: for
/// "did you mean" hints.
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= candidate.len().max(3) / 3 + 1)
        .min()
        .map(|(_, candidate)| candidate)
}

/// The Levenshtein distance between two names, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The longest duration a config field may give: a year, far beyond any sensible timeout,
/// and small enough that sums of such fields never overflow.
pub const MAX_CONFIG_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

fn optional_string(map: &mut Map<String, Value>, key: &str, field: &str) -> Result<Option<String>> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::config(
            field,
            format!("`{field}` must be a string, not {}", type_name(&other)),
        )),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests;
