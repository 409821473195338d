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

/// Flags and bytes for a value, in python-memcached's layout under pickle: a pickle of a lone
/// string, bytes or integer is stored as python-memcached stores those (text, raw bytes,
/// digits), anything else as a pickle.
pub(super) fn encode_wire(python_flags: bool, value: &[u8]) -> (u32, Cow<'_, [u8]>) {
    if parse_integer(value).is_some() {
        return (FLAG_INTEGER, Cow::Borrowed(value));
    }
    if !python_flags {
        return (0, Cow::Borrowed(value));
    }
    match lone_scalar(value) {
        Some(Scalar::Text(text)) => (FLAG_TEXT, Cow::Borrowed(text)),
        Some(Scalar::Bytes(bytes)) => (0, Cow::Borrowed(bytes)),
        Some(Scalar::Integer(integer)) => {
            (FLAG_INTEGER, Cow::Owned(integer.to_string().into_bytes()))
        }
        None => (FLAG_PICKLE, Cow::Borrowed(value)),
    }
}

/// What a pickle of one string, bytes or integer holds.
enum Scalar<'a> {
    Text(&'a [u8]),
    Bytes(&'a [u8]),
    Integer(i64),
}

/// The string, bytes or integer that `pickle` is exactly (protocol and frame headers, one
/// such opcode with its argument, at most one memo store, then `STOP`), read without
/// decoding the pickle: any other pickle, however deep, is `None` in one look at its
/// opcodes, and stored as a pickle (which python-memcached reads back just the same).
fn lone_scalar(pickle: &[u8]) -> Option<Scalar<'_>> {
    let mut rest = pickle;
    if let [0x80, _, after @ ..] = rest {
        rest = after; // PROTO
    }
    if let [0x95, _, _, _, _, _, _, _, _, after @ ..] = rest {
        rest = after; // FRAME
    }
    let (&opcode, after) = rest.split_first()?;
    let (scalar, after) = match opcode {
        0x8c => counted(after, 1).map(|(s, a)| (Scalar::Text(s), a))?, // SHORT_BINUNICODE
        b'X' => counted(after, 4).map(|(s, a)| (Scalar::Text(s), a))?, // BINUNICODE
        0x8d => counted(after, 8).map(|(s, a)| (Scalar::Text(s), a))?, // BINUNICODE8
        b'C' => counted(after, 1).map(|(s, a)| (Scalar::Bytes(s), a))?, // SHORT_BINBYTES
        b'B' => counted(after, 4).map(|(s, a)| (Scalar::Bytes(s), a))?, // BINBYTES
        0x8e => counted(after, 8).map(|(s, a)| (Scalar::Bytes(s), a))?, // BINBYTES8
        b'K' => fixed(after, 1).map(|(n, a)| (Scalar::Integer(unsigned(n)), a))?, // BININT1
        b'M' => fixed(after, 2).map(|(n, a)| (Scalar::Integer(unsigned(n)), a))?, // BININT2
        b'J' => fixed(after, 4).map(|(n, a)| (Scalar::Integer(signed(n)), a))?, // BININT
        0x8a => {
            // LONG1: a length byte, then that many bytes of two's complement.
            let (digits, a) = counted(after, 1)?;
            (Scalar::Integer(fitting_i64(digits)?), a)
        }
        _ => return None,
    };
    let after = match after {
        [0x94, a @ ..] => a,             // MEMOIZE
        [b'q', _, a @ ..] => a,          // BINPUT
        [b'r', _, _, _, _, a @ ..] => a, // LONG_BINPUT
        a => a,
    };
    if after != b"." {
        return None;
    }
    match scalar {
        Scalar::Text(text) if std::str::from_utf8(text).is_err() => None,
        scalar => Some(scalar),
    }
}

/// The `width` bytes at the start of `bytes`, and what follows.
fn fixed(bytes: &[u8], width: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= width).then(|| bytes.split_at(width))
}

/// The bytes counted by the little-endian length of `width` bytes at the start of `bytes`,
/// and what follows them.
fn counted(bytes: &[u8], width: usize) -> Option<(&[u8], &[u8])> {
    let (length, rest) = fixed(bytes, width)?;
    let length = usize::try_from(unsigned(length)).ok()?;
    fixed(rest, length)
}

/// Little-endian bytes (at most 8) as an unsigned number.
fn unsigned(bytes: &[u8]) -> i64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    // Callers read at most 4 bytes, or lengths whose top bit no slice could have.
    i64::from_le_bytes(word)
}

/// Little-endian two's complement bytes of any length as an `i64`, if the number fits one
/// (the crate's pickler writes a `u64` in 9 bytes, its sign byte among them).
fn fitting_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.len() <= 8 {
        return Some(signed(bytes));
    }
    let (low, high) = bytes.split_at(8);
    let negative = high.last().is_some_and(|byte| byte & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    (high.iter().all(|byte| *byte == fill) && (low[7] & 0x80 != 0) == negative).then(|| signed(low))
}

/// Little-endian two's complement bytes (at most 8) as a signed number.
fn signed(bytes: &[u8]) -> i64 {
    let negative = bytes.last().is_some_and(|byte| byte & 0x80 != 0);
    let mut word = [if negative { 0xff } else { 0 }; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    i64::from_le_bytes(word)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(pickle: &[u8]) -> (u32, Vec<u8>) {
        let (flags, bytes) = encode_wire(true, pickle);
        (flags, bytes.into_owned())
    }

    #[test]
    fn lone_strings_bytes_and_integers_take_python_memcacheds_layouts() {
        // Python's own pickles (protocols 2 and 4).
        let text = "héllo".as_bytes().to_vec();
        assert_eq!(
            layout(b"\x80\x02X\x06\x00\x00\x00h\xc3\xa9lloq\x00."),
            (FLAG_TEXT, text.clone())
        );
        assert_eq!(
            layout(b"\x80\x04\x95\n\x00\x00\x00\x00\x00\x00\x00\x8c\x06h\xc3\xa9llo\x94."),
            (FLAG_TEXT, text)
        );
        assert_eq!(
            layout(b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00C\x02\x00\xff\x94."),
            (0, vec![0, 255])
        );
        assert_eq!(layout(b"\x80\x02K\x05."), (FLAG_INTEGER, b"5".to_vec()));
        assert_eq!(layout(b"\x80\x02M,\x01."), (FLAG_INTEGER, b"300".to_vec()));
        assert_eq!(
            layout(b"\x80\x02J\xd6\xff\xff\xff."),
            (FLAG_INTEGER, b"-42".to_vec())
        );
        assert_eq!(
            layout(b"\x80\x02\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80."),
            (FLAG_INTEGER, i64::MIN.to_string().into_bytes())
        );
        // And the crate's own.
        let own = |value: &dyn erased::Value| layout(&value.pickle());
        assert_eq!(own(&"text"), (FLAG_TEXT, b"text".to_vec()));
        assert_eq!(own(&-7i64), (FLAG_INTEGER, b"-7".to_vec()));
        assert_eq!(
            own(&u64::from(u32::MAX)),
            (FLAG_INTEGER, b"4294967295".to_vec())
        );
        assert_eq!(own(&u64::MAX).0, FLAG_PICKLE, "past an i64");
    }

    #[test]
    fn anything_else_is_stored_as_the_pickle_it_is() {
        for pickle in [
            // 2**63, past an i64; True; None; a list.
            &b"\x80\x02\x8a\t\x00\x00\x00\x00\x00\x00\x00\x80\x00."[..],
            b"\x80\x02\x88.",
            b"\x80\x02N.",
            b"\x80\x02]q\x00K\x01a.",
            // Bytes as protocol 2 writes them, through `_codecs.encode`.
            b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.",
            // A string that is not UTF-8, one cut short, one with more after it.
            b"\x80\x02X\x01\x00\x00\x00\xff.",
            b"\x80\x02X\x09\x00\x00\x00ab.",
            b"\x80\x02K\x05K\x06.",
            // A length past the end, and past any slice.
            b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff.",
            b"",
        ] {
            assert_eq!(layout(pickle), (FLAG_PICKLE, pickle.to_vec()), "{pickle:?}");
        }
    }

    #[test]
    fn a_deep_pickle_is_not_decoded_to_be_flagged() {
        // NONE, POP, then a list nested a million deep: once decoded at put time, it
        // overflowed the stack.
        let mut pickle = b"\x80\x02N0".to_vec();
        pickle.extend(std::iter::repeat_n(b']', 1_000_000));
        pickle.push(b'.');
        assert_eq!(layout(&pickle).0, FLAG_PICKLE);
    }

    /// Values pickled by the crate's serializer.
    mod erased {
        pub(super) trait Value {
            fn pickle(&self) -> Vec<u8>;
        }
        impl<T: serde::Serialize> Value for T {
            fn pickle(&self) -> Vec<u8> {
                crate::serializer::Serializer::pickle()
                    .serialize(self)
                    .unwrap()
            }
        }
    }
}
