//! A value read for a resilient `remember`: the decoded value with its envelope's header, as
//! the reader's options bound it, and the fallback it can give.

use super::options::{Entry, RememberOptions, Source};
use crate::envelope::{self, Header, Millis};

/// A value read from the cache, with its envelope's header if it has one.
pub(super) struct Cached<T> {
    pub(super) value: T,
    /// `None` for a value without an envelope: fresh until the store drops it.
    pub(super) header: Option<Header>,
    /// The stored bytes; the payload is their tail.
    pub(super) bytes: Vec<u8>,
    pub(super) payload_start: usize,
}

impl<T> Cached<T> {
    /// Whether the value is served without calling the factory: fresh, or a fallback the
    /// fail-safe throttle keeps (for a reader that asked for fail-safe, within its window).
    pub(super) fn is_fresh(&self, now: Millis) -> bool {
        self.header
            .is_none_or(|h| now < h.expires_at && (!h.stale || now < h.fail_safe_until))
    }

    /// The value as a reader with `options` may use it: its fail-safe window ends no later
    /// than the reader's own ([`RememberOptions::fail_safe`] past the end of the value's own
    /// lifetime, which a fallback keeps beside the throttle's end), and is closed for a
    /// reader that did not ask for fail-safe. A window the stored envelope claims (written by
    /// another version, or by anyone) never outlives the reader's.
    pub(super) fn bounded_by(mut self, options: &RememberOptions) -> Self {
        if let Some(header) = &mut self.header {
            // Written in the future (a clock ahead, or crafted bytes): nothing in it can be
            // trusted to bound how long it serves, so it is not served at all.
            if header.written_at > envelope::now() {
                header.expires_at = 0;
                header.fail_safe_until = 0;
                return self;
            }
            header.fail_safe_until = match options.fail_safe_max {
                Some(window) => header
                    .fail_safe_until
                    .min(envelope::after(header.expired_at, window)),
                None => 0,
            };
        }
        self
    }

    pub(super) fn can_fall_back(&self, now: Millis) -> bool {
        self.header.is_some_and(|h| now < h.fail_safe_until)
    }

    pub(super) fn into_value(self) -> T {
        self.value
    }

    pub(super) fn fallback(&self) -> Option<Fallback> {
        self.header.map(|header| Fallback {
            header,
            payload: self.bytes[self.payload_start..].to_vec(),
        })
    }

    /// A fresh value's source: the cache, or a fallback kept by the fail-safe throttle.
    pub(super) fn fresh_source(&self) -> Source {
        if self.header.is_some_and(|h| h.stale) {
            Source::Stale
        } else {
            Source::Cache
        }
    }

    pub(super) fn entry(self, source: Source, now: Millis) -> Entry<T> {
        Entry {
            value: self.value,
            source,
            age: self.header.map(|h| envelope::between(h.written_at, now)),
            expires_in: self.header.map(|h| envelope::between(now, h.expires_at)),
        }
    }
}

/// An expired value the task computing its key falls back to if the factory fails.
pub(super) struct Fallback {
    pub(super) header: Header,
    pub(super) payload: Vec<u8>,
}
