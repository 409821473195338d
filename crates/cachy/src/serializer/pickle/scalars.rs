//! The scalar arguments of pickle opcodes: integer text, two's complement integers and
//! protocol 0's escaped strings, each checked before any costly work.

use super::objects::Outcome;

/// Longer integer text is outside 64 bits whatever it says, so it is refused unparsed.
const MAX_INTEGER_TEXT: usize = 24;

const OUT_OF_RANGE: &str = "a pickled integer does not fit in 64 bits";

/// `value` if a Rust integer type holds it: from `i64::MIN` to `u64::MAX`.
fn in_range(value: i128) -> Outcome<i128> {
    if (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&value) {
        Ok(value)
    } else {
        Err(OUT_OF_RANGE.to_owned())
    }
}

pub(super) fn integer_text(text: &[u8]) -> Outcome<i128> {
    if text.len() > MAX_INTEGER_TEXT {
        return Err(OUT_OF_RANGE.to_owned());
    }
    let text = std::str::from_utf8(text).map_err(|_| "a pickled integer is not text")?;
    let value =
        text.trim()
            .parse()
            .map_err(|_| match text.trim().trim_start_matches(['-', '+']) {
                digits if digits.bytes().all(|b| b.is_ascii_digit()) && !digits.is_empty() => {
                    OUT_OF_RANGE.to_owned()
                }
                _ => format!("{text:?} is not a pickled integer"),
            })?;
    in_range(value)
}

/// A little-endian two's complement integer, as LONG1 and LONG4 hold it (a `u64` above
/// `i64::MAX` takes nine bytes, the last zero).
pub(super) fn twos_complement(bytes: &[u8]) -> Outcome<i128> {
    let negative = bytes.last().is_some_and(|&last| last & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    let (low, high) = bytes.split_at(bytes.len().min(16));
    if high.iter().any(|&b| b != fill) {
        return Err(OUT_OF_RANGE.to_owned());
    }
    let mut word = [fill; 16];
    word[..low.len()].copy_from_slice(low);
    let value = i128::from_le_bytes(word);
    if (value < 0) != negative {
        return Err(OUT_OF_RANGE.to_owned());
    }
    in_range(value)
}

pub(super) fn utf8(bytes: &[u8]) -> Outcome<&str> {
    std::str::from_utf8(bytes).map_err(|_| "a pickled str is not valid UTF-8".to_owned())
}

pub(super) fn latin1(text: &str) -> Outcome<Vec<u8>> {
    // Bytes pickled as text are mostly ASCII, whose UTF-8 is already latin-1: one copy
    // instead of decoding every character.
    if text.is_ascii() {
        return Ok(text.as_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        out.push(match byte {
            0x00..=0x7f => byte,
            // U+0080 to U+00FF: the lead byte holds the top two bits, and valid UTF-8 (a
            // `str`) always has the continuation byte after it.
            0xc2 | 0xc3 => (byte << 6) | (bytes.next().unwrap_or(0) & 0x3f),
            _ => return Err("text outside latin-1".to_owned()),
        });
    }
    Ok(out)
}

/// Protocol 0's `repr`-quoted byte strings.
pub(super) fn escaped_string(line: &[u8]) -> Outcome<Vec<u8>> {
    let body = match line {
        [quote @ (b'"' | b'\''), body @ .., end] if end == quote => body,
        _ => return Err("a protocol 0 string is not quoted".to_owned()),
    };
    let mut out = Vec::with_capacity(body.len());
    let mut bytes = body.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let escaped = match bytes.next() {
            Some(b'\\') => b'\\',
            Some(b'\'') => b'\'',
            Some(b'"') => b'"',
            Some(b'a') => 0x07,
            Some(b'b') => 0x08,
            Some(b't') => b'\t',
            Some(b'n') => b'\n',
            Some(b'v') => 0x0b,
            Some(b'f') => 0x0c,
            Some(b'r') => b'\r',
            Some(b'x') => {
                let high = bytes.next().and_then(|b| (b as char).to_digit(16));
                let low = bytes.next().and_then(|b| (b as char).to_digit(16));
                match (high, low) {
                    (Some(high), Some(low)) => (high * 16 + low) as u8,
                    _ => return Err("a bad \\x escape in a protocol 0 string".to_owned()),
                }
            }
            _ => return Err("an unknown escape in a protocol 0 string".to_owned()),
        };
        out.push(escaped);
    }
    Ok(out)
}

/// Protocol 0's `raw-unicode-escape` text: latin-1 bytes with `\uXXXX` and `\UXXXXXXXX`.
pub(super) fn raw_unicode_escape(line: &[u8]) -> Outcome<String> {
    let mut out = String::with_capacity(line.len());
    let mut bytes = line.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(char::from(byte));
            continue;
        }
        let digits = match bytes.next() {
            Some(b'u') => 4,
            Some(b'U') => 8,
            _ => return Err("an unknown escape in a protocol 0 str".to_owned()),
        };
        let mut code = 0u32;
        for _ in 0..digits {
            let digit = bytes
                .next()
                .and_then(|b| (b as char).to_digit(16))
                .ok_or("a bad \\u escape in a protocol 0 str")?;
            code = code * 16 + digit;
        }
        out.push(char::from_u32(code).ok_or("a \\U escape outside Unicode")?);
    }
    Ok(out)
}
