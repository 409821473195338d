//! The envelope around values written by [`Repository::remember_with`] with fail-safe or eager
//! refresh: their logical expiry, when they were written and how long they may serve as a
//! fallback, in front of the serializer's bytes. Every other value is stored as the
//! serializer's bytes alone, as Python cachy stores them.
//!
//! Layout: `C1 63 79 01` (the first byte is never the first byte of a pickle, JSON, msgpack
//! or decimal value, and custom serializers are refused output starting with it), then three
//! big-endian `u64`s of milliseconds since the Unix epoch (logical expiry, written at, end of
//! the fail-safe window; `u64::MAX` for never), one flags byte, then the payload.
//!
//! [`Repository::remember_with`]: crate::Repository::remember_with

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first byte of every envelope: no built-in format starts a value with it.
pub(crate) const MARK: u8 = 0xC1;
const MAGIC: [u8; 4] = [MARK, b'c', b'y', 1];
const HEADER_LEN: usize = MAGIC.len() + 3 * 8 + 1;
/// Flag: the value is a fail-safe fallback kept after its factory failed.
const STALE: u8 = 1;

/// What an envelope says about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// When the value stops being fresh.
    pub(crate) expires_at: Millis,
    /// When the value was computed.
    pub(crate) written_at: Millis,
    /// Until when the value may serve as a fallback.
    pub(crate) fail_safe_until: Millis,
    /// Whether the value is a fallback re-stored after its factory failed.
    pub(crate) stale: bool,
}

/// Milliseconds since the Unix epoch.
pub(crate) type Millis = u64;

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .saturating_add(crate::clock::advanced_millis())
}

/// `at` plus `duration`, saturating.
pub(crate) fn after(at: Millis, duration: Duration) -> Millis {
    at.saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// The duration from `from` to `to`, zero if `to` is not later.
pub(crate) fn between(from: Millis, to: Millis) -> Duration {
    Duration::from_millis(to.saturating_sub(from))
}

/// Stored bytes, opened.
pub(crate) enum Opened<'a> {
    /// A value without an envelope.
    Plain(&'a [u8]),
    /// A value in an envelope.
    Enveloped(Header, &'a [u8]),
}

/// Open stored bytes. Bytes that start with the mark but are not a whole envelope are plain
/// (no format reads them, so they are a `Deserialize` error, never a wrong value).
pub(crate) fn open(bytes: &[u8]) -> Opened<'_> {
    if bytes.len() < HEADER_LEN || bytes[..MAGIC.len()] != MAGIC {
        return Opened::Plain(bytes);
    }
    let field = |i: usize| {
        let start = MAGIC.len() + 8 * i;
        u64::from_be_bytes(bytes[start..start + 8].try_into().unwrap_or([0; 8]))
    };
    let header = Header {
        expires_at: field(0),
        written_at: field(1),
        fail_safe_until: field(2),
        stale: bytes[HEADER_LEN - 1] & STALE != 0,
    };
    Opened::Enveloped(header, &bytes[HEADER_LEN..])
}

/// The payload of `bytes` if the value is fresh now: the bytes themselves without an
/// envelope, `None` for an enveloped value past its logical expiry and for a fail-safe
/// fallback (which only a `remember` that asked for fail-safe serves, as stale). (The clock
/// is read only for an envelope: plain hits pay one byte comparison.)
pub(crate) fn fresh_payload(bytes: &[u8]) -> Option<&[u8]> {
    fresh_payload_until(bytes).map(|(payload, _)| payload)
}

/// [`fresh_payload`], with when it stops being fresh (`None`: while it is stored).
pub(crate) fn fresh_payload_until(bytes: &[u8]) -> Option<(&[u8], Option<Millis>)> {
    match open(bytes) {
        Opened::Plain(payload) => Some((payload, None)),
        Opened::Enveloped(header, payload) => (!header.stale && now() < header.expires_at)
            .then_some((payload, Some(header.expires_at))),
    }
}

/// `payload` in an envelope saying `header`.
pub(crate) fn wrap(header: &Header, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(&MAGIC);
    for field in [header.expires_at, header.written_at, header.fail_safe_until] {
        bytes.extend_from_slice(&field.to_be_bytes());
    }
    bytes.push(if header.stale { STALE } else { 0 });
    bytes.extend_from_slice(payload);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_opens_to_what_was_wrapped() {
        let header = Header {
            expires_at: 10,
            written_at: 5,
            fail_safe_until: u64::MAX,
            stale: true,
        };
        let bytes = wrap(&header, b"payload");
        match open(&bytes) {
            Opened::Enveloped(opened, payload) => {
                assert_eq!(opened, header);
                assert_eq!(payload, b"payload");
            }
            Opened::Plain(_) => panic!("not opened"),
        }
        assert_eq!(fresh_payload(&bytes), None, "expired in 1970");
        let fresh = wrap(
            &Header {
                expires_at: u64::MAX,
                ..header
            },
            b"payload",
        );
        assert_eq!(fresh_payload(&fresh), None, "a fallback is never fresh");
        let fresh = wrap(
            &Header {
                expires_at: u64::MAX,
                stale: false,
                ..header
            },
            b"payload",
        );
        assert_eq!(fresh_payload(&fresh), Some(&b"payload"[..]));
    }

    #[test]
    fn short_or_foreign_bytes_are_plain() {
        for bytes in [
            &b""[..],
            b"42",
            &[MARK, b'c', b'y'],
            &[MARK, b'c', b'y', 1, 0],
        ] {
            assert!(matches!(open(bytes), Opened::Plain(b) if b == bytes));
        }
    }
}
