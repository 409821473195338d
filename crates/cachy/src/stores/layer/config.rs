//! The options every store takes for its keys and stored values, read from its config.

use serde::Deserialize;
use serde_json::Value;

use super::compress::{Algorithm, Compression, Limits};
#[cfg(feature = "encrypt")]
use super::encrypt::{Encryption, Key};
use super::{Keys, Layer, Values};
use crate::config::StoreConfig;
use crate::config::options::Count;
use crate::error::Result;

/// The names of the options, which every driver accepts.
pub(crate) const FIELDS: &[&str] = &[
    "namespace",
    "version",
    "max_key_bytes",
    "max_value_bytes",
    "compress",
    "encrypt",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompressOptions {
    algorithm: String,
    min_bytes: Option<Count>,
    level: Option<i32>,
    max_bytes: Option<Count>,
    max_ratio: Option<Count>,
}

#[cfg_attr(not(feature = "encrypt"), allow(dead_code))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptOptions {
    keys: Vec<KeyOptions>,
    #[serde(default)]
    allow_plaintext: bool,
}

#[cfg_attr(not(feature = "encrypt"), allow(dead_code))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyOptions {
    id: String,
    key: Option<String>,
    env: Option<String>,
}

/// The layer `options` ask for over the store `name`, which may set only [`FIELDS`].
pub(crate) fn reconfigured(name: &str, options: &Value) -> Result<Layer> {
    let Value::Object(options) = options else {
        return Err(crate::error::Error::config(
            format!("stores.{name}"),
            "the options must be a map",
        ));
    };
    let mut config = StoreConfig::new("").named(name);
    for (field, value) in options {
        if !FIELDS.contains(&field.as_str()) {
            let hint = crate::config::nearest(field, FIELDS.iter().copied())
                .map(|candidate| format!("; did you mean `{candidate}`?"))
                .unwrap_or_default();
            return Err(config.error(
                field,
                format!(
                    "`{field}` is not an option of keys or values ({}){hint}",
                    FIELDS.join(", ")
                ),
            ));
        }
        config = config.with(field.clone(), value.clone());
    }
    layer(&config)
}

/// The layer `config` asks for: the default one (which reads compressed and encrypted
/// values, and writes values as they are) when it sets none of [`FIELDS`].
pub(crate) fn layer(config: &StoreConfig) -> Result<Layer> {
    let namespace: Option<String> = option(config, "namespace")?;
    let version: Option<Count> = option(config, "version")?;
    let keys = Keys::new(
        namespace.as_deref(),
        version.map(|v| v.0),
        limit(config, "max_key_bytes")?,
    )
    .map_err(|message| config.error("namespace", message))?;
    let mut values = Values {
        max_value_bytes: limit(config, "max_value_bytes")?,
        ..Values::default()
    };
    if let Some(compress) = option::<CompressOptions>(config, "compress")? {
        let (compression, limits) =
            compression(&compress).map_err(|message| config.error("compress", message))?;
        values.compression = compression;
        values.limits = limits;
    }
    if let Some(encrypt) = option::<EncryptOptions>(config, "encrypt")? {
        #[cfg(feature = "encrypt")]
        {
            values.encryption =
                Some(encryption(encrypt).map_err(|message| config.error("encrypt", message))?);
        }
        #[cfg(not(feature = "encrypt"))]
        {
            let EncryptOptions { .. } = encrypt;
            return Err(config.error("encrypt", "`encrypt` needs cachy's cargo feature `encrypt`"));
        }
    }
    Ok(Layer { keys, values })
}

/// The option `field` of `config` as a `T`, if set; an error naming it if it is not one.
fn option<T: for<'de> Deserialize<'de>>(config: &StoreConfig, field: &str) -> Result<Option<T>> {
    match config.options().get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value)
            .map(Some)
            .map_err(|e| config.error(field, format!("`{field}`: {}", unquoted(&e.to_string())))),
    }
}

/// `message` with what it quotes (serde quotes the value it could not read, which may be
/// a key) hidden.
fn unquoted(message: &str) -> String {
    let mut parts = message.split('"');
    let mut out = parts.next().unwrap_or_default().to_owned();
    for (i, part) in parts.enumerate() {
        out.push_str(if i % 2 == 0 { "<redacted>" } else { part });
    }
    out
}

fn limit(config: &StoreConfig, field: &str) -> Result<Option<usize>> {
    match option::<Count>(config, field)? {
        Some(Count(0)) => Err(config.error(
            field,
            format!("`{field}` must be at least 1 (0 would refuse every write)"),
        )),
        count => Ok(count.map(|c| usize::try_from(c.0).unwrap_or(usize::MAX))),
    }
}

fn compression(
    options: &CompressOptions,
) -> std::result::Result<(Option<Compression>, Limits), String> {
    let mut limits = Limits::default();
    if let Some(max_bytes) = options.max_bytes {
        limits.max_bytes = usize::try_from(max_bytes.0).unwrap_or(usize::MAX);
    }
    if let Some(ratio) = options.max_ratio {
        if ratio.0 == 0 {
            return Err("`compress.max_ratio` must be at least 1".to_owned());
        }
        limits.max_ratio = usize::try_from(ratio.0).unwrap_or(usize::MAX);
    }
    let algorithm = match options.algorithm.as_str() {
        "none" => {
            if options.level.is_some() || options.min_bytes.is_some() {
                return Err(
                    "`compress.level` and `compress.min_bytes` need an `algorithm` other than \
                     \"none\""
                        .to_owned(),
                );
            }
            return Ok((None, limits));
        }
        "zstd" => Algorithm::Zstd,
        "lz4" => Algorithm::Lz4,
        "gzip" => Algorithm::Gzip,
        other => {
            return Err(format!(
                "`compress.algorithm` must be \"zstd\", \"lz4\", \"gzip\" or \"none\", not \
                 {other:?}"
            ));
        }
    };
    if !algorithm.compiled_in() {
        return Err(format!(
            "`compress.algorithm = \"{}\"` needs cachy's cargo feature `compress-{}`",
            algorithm.name(),
            algorithm.name()
        ));
    }
    let level = match (algorithm.levels(), options.level) {
        (None, None) => 0,
        (None, Some(_)) => {
            return Err(format!(
                "{} has no levels: remove `compress.level`",
                algorithm.name()
            ));
        }
        (Some((_, default)), None) => default,
        (Some((range, _)), Some(level)) if range.contains(&level) => level,
        (Some((range, _)), Some(level)) => {
            return Err(format!(
                "`compress.level` for {} must be from {} to {}, not {level}",
                algorithm.name(),
                range.start(),
                range.end()
            ));
        }
    };
    let min_bytes = options.min_bytes.map_or(1024, |m| m.0);
    let compression = Compression {
        algorithm,
        level,
        min_bytes: usize::try_from(min_bytes).unwrap_or(usize::MAX),
    };
    Ok((Some(compression), limits))
}

#[cfg(feature = "encrypt")]
fn encryption(options: EncryptOptions) -> std::result::Result<Encryption, String> {
    if options.keys.is_empty() {
        return Err("`encrypt.keys` must list at least one key (the first encrypts)".to_owned());
    }
    let mut keys: Vec<Key> = Vec::with_capacity(options.keys.len());
    for key in options.keys {
        let hex_digits = match (key.key, key.env) {
            (Some(hex_digits), None) => zeroize::Zeroizing::new(hex_digits),
            (None, Some(variable)) => {
                zeroize::Zeroizing::new(std::env::var(&variable).map_err(|_| {
                    format!(
                        "key {:?} is read from the environment variable `{variable}`, which is \
                         not set (or not valid UTF-8)",
                        key.id
                    )
                })?)
            }
            _ => {
                return Err(format!(
                    "key {:?} needs exactly one of `key` (64 hexadecimal digits) and `env` (the \
                     environment variable holding them)",
                    key.id
                ));
            }
        };
        let parsed = Key::from_hex(&key.id, &hex_digits)?;
        if keys.iter().any(|k| k.id() == key.id) {
            return Err(format!("key id {:?} is listed twice", key.id));
        }
        keys.push(parsed);
    }
    Ok(Encryption {
        keys,
        allow_plaintext: options.allow_plaintext,
    })
}
