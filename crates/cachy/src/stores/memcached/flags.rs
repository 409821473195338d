//! python-memcached's flags: how a value's bytes and flags are laid out so that Python
//! cachy (through python-memcached) and this store read each other's values.

use std::borrow::Cow;

use crate::codec::parse_integer;
use crate::error::{Error, ErrorKind, Result};

/// python-memcached's flags (version 1.62).
const FLAG_PICKLE: u32 = 1;
pub(super) const FLAG_INTEGER: u32 = 1 << 1;
const FLAG_LONG: u32 = 1 << 2;
const FLAG_COMPRESSED: u32 = 1 << 3;
const FLAG_TEXT: u32 = 1 << 4;

/// Flags and bytes for a value, in python-memcached's layout under pickle.
pub(super) fn encode_wire(python_flags: bool, value: &[u8]) -> (u32, Cow<'_, [u8]>) {
    if parse_integer(value).is_some() {
        return (FLAG_INTEGER, Cow::Borrowed(value));
    }
    if !python_flags {
        return (0, Cow::Borrowed(value));
    }
    if starts_a_container(value) {
        return (FLAG_PICKLE, Cow::Borrowed(value));
    }
    match serde_pickle::value_from_slice(value, serde_pickle::DeOptions::new()) {
        Ok(serde_pickle::Value::String(text)) => (FLAG_TEXT, Cow::Owned(text.into_bytes())),
        Ok(serde_pickle::Value::Bytes(bytes)) => (0, Cow::Owned(bytes)),
        Ok(serde_pickle::Value::I64(integer)) => {
            (FLAG_INTEGER, Cow::Owned(integer.to_string().into_bytes()))
        }
        _ => (FLAG_PICKLE, Cow::Borrowed(value)),
    }
}

/// Whether the pickle `value` builds a dict, list, tuple, set or object first (after its
/// protocol and frame headers), so that it is stored as a pickle without being decoded:
/// only a string, bytes or an integer take python-memcached's other layouts, and decoding a
/// struct's whole pickle on every write only to find that out cost a put three 4 KiB
/// allocations. Flagging any pickle as one is always read back right.
fn starts_a_container(value: &[u8]) -> bool {
    const PROTO: u8 = 0x80;
    const FRAME: u8 = 0x95;
    const CONTAINERS: &[u8] = &[b'}', b']', b')', b'(', 0x8f];
    let mut rest = value;
    if let [PROTO, _, after @ ..] = rest {
        rest = after;
    }
    if let [FRAME, _, _, _, _, _, _, _, _, after @ ..] = rest {
        rest = after;
    }
    rest.first()
        .is_some_and(|opcode| CONTAINERS.contains(opcode))
}

/// The value python-memcached or pylibmc compressed with zlib (`min_compress_len`), within
/// the limits every store reads compressed values with.
fn inflate(compressed: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let most = crate::stores::layer::compress::Limits::default().most_from(compressed.len());
    let mut value = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(u64::try_from(most).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut value)
        .map_err(|e| {
            Error::new(
                ErrorKind::Deserialize,
                "the value is flagged as zlib-compressed (python-memcached's min_compress_len) \
                 and does not decompress",
            )
            .with_source(e)
        })?;
    if value.len() > most {
        return Err(Error::new(
            ErrorKind::Deserialize,
            format!(
                "the zlib-compressed value expands past {most} bytes (a ratio over 1000, or \
                 over 64 MiB): refused"
            ),
        ));
    }
    Ok(value)
}

/// The bytes the serializer reads, from flags and stored bytes.
pub(super) fn decode_wire(python_flags: bool, flags: u32, data: Vec<u8>) -> Result<Vec<u8>> {
    let data = if flags & FLAG_COMPRESSED != 0 {
        inflate(&data)?
    } else {
        data
    };
    if flags & (FLAG_INTEGER | FLAG_LONG) != 0 {
        // A counter that memcached's own incr or decr rewrote in place is padded with
        // spaces: the number is what is read.
        let digits = data.trim_ascii();
        if parse_integer(digits).is_some() {
            return Ok(digits.to_vec());
        }
        return Ok(data);
    }
    if !python_flags || flags & FLAG_PICKLE != 0 {
        return Ok(data);
    }
    let value = if flags & FLAG_TEXT != 0 {
        let text = String::from_utf8(data).map_err(|e| {
            Error::new(ErrorKind::Deserialize, "a text value is not UTF-8").with_source(e)
        })?;
        serde_pickle::Value::String(text)
    } else {
        serde_pickle::Value::Bytes(data)
    };
    serde_pickle::value_to_vec(&value, serde_pickle::SerOptions::new()).map_err(|e| {
        Error::new(
            ErrorKind::Deserialize,
            "cannot re-encode a python-memcached value",
        )
        .with_source(e)
    })
}
