//! Compressed values: `C1 63 7A`, the algorithm's byte, the value's length (`u32`,
//! big-endian), then the compressed bytes. Decompression is bounded: a declared length over
//! the reader's limits is refused before anything is allocated, and no algorithm is let
//! write past the declared length.

use crate::error::{Error, ErrorKind, Result};

/// The first bytes of a compressed value.
pub(super) const MAGIC: [u8; 3] = [crate::envelope::MARK, b'c', b'z'];
const HEADER_LEN: usize = MAGIC.len() + 1 + 4;

/// A compression algorithm, as `compress.algorithm` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Zstandard (cargo feature `compress-zstd`): the best ratio for its speed.
    Zstd,
    /// LZ4 (cargo feature `compress-lz4`): the fastest, a lower ratio.
    Lz4,
    /// gzip (cargo feature `compress-gzip`): what every tool reads.
    Gzip,
}

impl Algorithm {
    /// The name a config gives it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Zstd => "zstd",
            Algorithm::Lz4 => "lz4",
            Algorithm::Gzip => "gzip",
        }
    }

    fn feature(self) -> &'static str {
        match self {
            Algorithm::Zstd => "compress-zstd",
            Algorithm::Lz4 => "compress-lz4",
            Algorithm::Gzip => "compress-gzip",
        }
    }

    fn byte(self) -> u8 {
        match self {
            Algorithm::Zstd => 1,
            Algorithm::Lz4 => 2,
            Algorithm::Gzip => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Algorithm::Zstd),
            2 => Some(Algorithm::Lz4),
            3 => Some(Algorithm::Gzip),
            _ => None,
        }
    }

    /// Whether this build can compress and decompress with it.
    pub(super) fn compiled_in(self) -> bool {
        match self {
            Algorithm::Zstd => cfg!(feature = "compress-zstd"),
            Algorithm::Lz4 => cfg!(feature = "compress-lz4"),
            Algorithm::Gzip => cfg!(feature = "compress-gzip"),
        }
    }

    /// Its levels, if it has any: the range and the default.
    pub(super) fn levels(self) -> Option<(std::ops::RangeInclusive<i32>, i32)> {
        match self {
            Algorithm::Zstd => Some((1..=22, 3)),
            Algorithm::Lz4 => None,
            Algorithm::Gzip => Some((0..=9, 6)),
        }
    }

    /// The error for a value needing this algorithm in a build without it.
    pub(super) fn missing(self) -> Error {
        Error::new(
            ErrorKind::Deserialize,
            format!(
                "the value is compressed with {} and this build cannot decompress it: enable \
                 cachy's cargo feature `{}`",
                self.name(),
                self.feature()
            ),
        )
    }
}

/// How values are compressed before they are stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Compression {
    pub(super) algorithm: Algorithm,
    #[cfg_attr(
        not(any(feature = "compress-zstd", feature = "compress-gzip")),
        allow(dead_code)
    )]
    pub(super) level: i32,
    /// Values shorter than this are stored as they are.
    pub(super) min_bytes: usize,
}

/// How far a stored value may expand: what keeps a small hostile value from taking the
/// process's memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The longest value decompressed.
    pub(super) max_bytes: usize,
    /// The largest ratio of a value's length to its compressed length, above
    /// [`RATIO_FLOOR`] bytes.
    pub(super) max_ratio: usize,
}

/// Values up to this long may expand by any ratio: they cost nothing whatever their ratio.
const RATIO_FLOOR: usize = 64 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_ratio: 1000,
        }
    }
}

impl Limits {
    /// The most bytes `compressed` bytes may expand to, for formats that do not declare
    /// their length.
    #[cfg(feature = "memcached")]
    pub(crate) fn most_from(&self, compressed: usize) -> usize {
        compressed
            .saturating_mul(self.max_ratio)
            .max(RATIO_FLOOR)
            .min(self.max_bytes)
    }

    fn allow(&self, declared: usize, compressed: usize) -> Result<()> {
        if declared > self.max_bytes {
            return Err(Error::new(
                ErrorKind::Deserialize,
                format!(
                    "the compressed value says it holds {declared} bytes, over the limit of {} \
                     (`compress.max_bytes`)",
                    self.max_bytes
                ),
            ));
        }
        if declared > RATIO_FLOOR && declared / self.max_ratio > compressed {
            return Err(Error::new(
                ErrorKind::Deserialize,
                format!(
                    "the compressed value says it holds {declared} bytes in {compressed}, over \
                     the ratio limit of {} (`compress.max_ratio`)",
                    self.max_ratio
                ),
            ));
        }
        Ok(())
    }
}

impl Compression {
    /// `value` compressed, if it is long enough and compressing it gains something within
    /// `limits` (so that every value written reads back); `None` to store it as it is. Short
    /// values (counters, lock tokens) are therefore never compressed.
    pub(super) fn compress(&self, value: &[u8], limits: &Limits) -> Result<Option<Vec<u8>>> {
        if value.len() < self.min_bytes.max(HEADER_LEN + 1) {
            return Ok(None);
        }
        let Ok(declared) = u32::try_from(value.len()) else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(HEADER_LEN + value.len() / 2);
        out.extend_from_slice(&MAGIC);
        out.push(self.algorithm.byte());
        out.extend_from_slice(&declared.to_be_bytes());
        self.write(value, &mut out)?;
        let compressed = out.len() - HEADER_LEN;
        let fits = out.len() < value.len() && limits.allow(value.len(), compressed).is_ok();
        Ok(fits.then_some(out))
    }

    fn write(&self, value: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let failed = |e: std::io::Error| {
            Error::new(ErrorKind::Serialize, "the value could not be compressed").with_source(e)
        };
        match self.algorithm {
            #[cfg(feature = "compress-zstd")]
            Algorithm::Zstd => {
                let compressed = zstd::bulk::compress(value, self.level).map_err(failed)?;
                out.extend_from_slice(&compressed);
                Ok(())
            }
            #[cfg(feature = "compress-lz4")]
            Algorithm::Lz4 => {
                out.extend_from_slice(&lz4_flex::block::compress(value));
                Ok(())
            }
            #[cfg(feature = "compress-gzip")]
            Algorithm::Gzip => {
                use std::io::Write;
                let level = flate2::Compression::new(self.level.unsigned_abs());
                let mut encoder = flate2::write::GzEncoder::new(out, level);
                encoder.write_all(value).map_err(failed)?;
                encoder.finish().map_err(failed)?;
                Ok(())
            }
            #[allow(unreachable_patterns)]
            other => {
                let _ = (value, out, failed);
                Err(other.missing())
            }
        }
    }
}

/// The value in the compressed value `stored` (which starts with [`MAGIC`]), within
/// `limits`.
pub(super) fn decompress(stored: &[u8], limits: &Limits) -> Result<Vec<u8>> {
    let corrupt = |why: &str| {
        Error::new(
            ErrorKind::Deserialize,
            format!("the stored value is not a valid compressed value: {why}"),
        )
    };
    let Some((header, data)) = stored.split_at_checked(HEADER_LEN) else {
        return Err(corrupt("its header is cut short"));
    };
    let algorithm =
        Algorithm::from_byte(header[MAGIC.len()]).ok_or_else(|| corrupt("unknown algorithm"))?;
    let declared = u32::from_be_bytes(header[MAGIC.len() + 1..].try_into().expect("4 bytes"));
    let declared = usize::try_from(declared).map_err(|_| corrupt("too long"))?;
    limits.allow(declared, data.len())?;
    let value = read(algorithm, data, declared)?
        .ok_or_else(|| corrupt("its data does not decompress to its declared length"))?;
    if value.first() == Some(&crate::envelope::MARK) && super::is_frame(&value) {
        return Err(corrupt("it holds another compressed or encrypted value"));
    }
    Ok(value)
}

/// `data` decompressed with `algorithm`, if it gives exactly `declared` bytes.
#[cfg_attr(
    not(any(
        feature = "compress-zstd",
        feature = "compress-lz4",
        feature = "compress-gzip"
    )),
    allow(unused_variables)
)]
fn read(algorithm: Algorithm, data: &[u8], declared: usize) -> Result<Option<Vec<u8>>> {
    match algorithm {
        #[cfg(feature = "compress-zstd")]
        Algorithm::Zstd => {
            // The capacity bounds the output: a frame saying (or giving) more is an error.
            Ok(zstd::bulk::decompress(data, declared)
                .ok()
                .filter(|value| value.len() == declared))
        }
        #[cfg(feature = "compress-lz4")]
        Algorithm::Lz4 => {
            let mut value = vec![0; declared];
            Ok(lz4_flex::block::decompress_into(data, &mut value)
                .ok()
                .filter(|written| *written == declared)
                .map(|_| value))
        }
        #[cfg(feature = "compress-gzip")]
        Algorithm::Gzip => {
            use std::io::Read;
            let mut value = Vec::with_capacity(declared);
            let limit = u64::try_from(declared)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            let read = flate2::read::GzDecoder::new(data)
                .take(limit)
                .read_to_end(&mut value);
            Ok(read.ok().filter(|_| value.len() == declared).map(|_| value))
        }
        #[allow(unreachable_patterns)]
        other => Err(other.missing()),
    }
}
