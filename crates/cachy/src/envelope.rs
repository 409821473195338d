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
//! A fail-safe fallback re-stored after its factory failed is fresh only until the throttle
//! ends, which takes the logical expiry's place; it is written as version `02`, with a fourth
//! `u64` after the flags byte: when its own lifetime ended, from which a reader's fail-safe
//! window counts. (Readers of version `01` alone see a `02` fallback as plain bytes no format
//! reads: a `Deserialize` error they compute around, never a wrong value.)
//!
//! [`Repository::remember_with`]: crate::Repository::remember_with

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first byte of every envelope: no built-in format starts a value with it.
pub(crate) const MARK: u8 = 0xC1;
const MAGIC: [u8; 3] = [MARK, b'c', b'y'];
/// The version of a value that is not a fallback.
const VALUE: u8 = 1;
/// The version of a fallback: [`VALUE`]'s header and when its lifetime ended.
const FALLBACK: u8 = 2;
const HEADER_LEN: usize = MAGIC.len() + 1 + 3 * 8 + 1;
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
    /// When the value's own lifetime ended: `expires_at` for a value that is not a
    /// fallback; for a fallback, whose `expires_at` is the throttle's end, the logical
    /// expiry of the value it was.
    pub(crate) expired_at: Millis,
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
    let header_len = match bytes.get(MAGIC.len()) {
        Some(&VALUE) => HEADER_LEN,
        Some(&FALLBACK) => HEADER_LEN + 8,
        _ => return Opened::Plain(bytes),
    };
    if bytes.len() < header_len || bytes[..MAGIC.len()] != MAGIC {
        return Opened::Plain(bytes);
    }
    let field =
        |start: usize| u64::from_be_bytes(bytes[start..start + 8].try_into().unwrap_or([0; 8]));
    let fields = MAGIC.len() + 1;
    let stale = bytes[HEADER_LEN - 1] & STALE != 0;
    let expires_at = field(fields);
    let header = Header {
        expires_at,
        written_at: field(fields + 8),
        fail_safe_until: field(fields + 16),
        stale,
        expired_at: match (header_len > HEADER_LEN, stale) {
            (true, _) => field(HEADER_LEN),
            (false, false) => expires_at,
            // A version-01 fallback, from before its lifetime's end was kept: counted from
            // when it was computed, which ends no later than the window it had.
            (false, true) => field(fields + 8),
        },
    };
    Opened::Enveloped(header, &bytes[header_len..])
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
    let mut bytes = Vec::with_capacity(HEADER_LEN + 8 + payload.len());
    bytes.extend_from_slice(&MAGIC);
    bytes.push(if header.stale { FALLBACK } else { VALUE });
    for field in [header.expires_at, header.written_at, header.fail_safe_until] {
        bytes.extend_from_slice(&field.to_be_bytes());
    }
    bytes.push(if header.stale { STALE } else { 0 });
    if header.stale {
        bytes.extend_from_slice(&header.expired_at.to_be_bytes());
    }
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
            expired_at: 7,
        };
        let bytes = wrap(&header, b"payload");
        assert_eq!(
            bytes[3], FALLBACK,
            "a fallback keeps when its lifetime ended"
        );
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
        let fresh = Header {
            expires_at: u64::MAX,
            stale: false,
            expired_at: u64::MAX,
            ..header
        };
        let bytes = wrap(&fresh, b"payload");
        assert_eq!(bytes[3], VALUE);
        assert!(matches!(open(&bytes), Opened::Enveloped(h, _) if h == fresh));
        assert_eq!(fresh_payload(&bytes), Some(&b"payload"[..]));
    }

    #[test]
    fn a_version_01_fallback_counts_its_window_from_when_it_was_computed() {
        let fallback = Header {
            expires_at: 10,
            written_at: 5,
            fail_safe_until: 90,
            stale: true,
            expired_at: 8,
        };
        let mut bytes = wrap(&fallback, b"payload");
        bytes[3] = VALUE;
        bytes.drain(HEADER_LEN..HEADER_LEN + 8);
        match open(&bytes) {
            Opened::Enveloped(opened, payload) => {
                assert_eq!(opened.expired_at, 5);
                assert_eq!(payload, b"payload");
            }
            Opened::Plain(_) => panic!("not opened"),
        }
    }

    #[test]
    fn short_or_foreign_bytes_are_plain() {
        for bytes in [
            &b""[..],
            b"42",
            &[MARK, b'c', b'y'],
            &[MARK, b'c', b'y', 1, 0],
            &[
                MARK, b'c', b'y', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            &[[MARK, b'c', b'y', 2].as_slice(), &[0; 26]].concat(),
        ] {
            assert!(matches!(open(bytes), Opened::Plain(b) if b == bytes));
        }
    }
}
