//! When a stored item expires, as callers say it.

use std::time::{Duration, SystemTime};

use crate::store::Ttl;

/// The longest lifetime passed to a store: 100 years. Longer ones are kept that long, which
/// every backend can express (an unbounded `Duration` would overflow some of them).
pub const MAX_TTL_SECONDS: u64 = 100 * 365 * 24 * 60 * 60;

/// How long to keep an item: a [`Duration`], an absolute time, or whole minutes as in Python cachy.
///
/// Everything that takes an `impl Into<Expiry>` accepts:
/// - a [`Duration`] (rounded up to whole seconds),
/// - a [`SystemTime`] or a `chrono::DateTime` (with the `chrono` feature): an absolute time,
/// - a plain integer: whole minutes, as Python cachy's `put('key', 'value', 10)`.
///
/// A lifetime of zero or less, or an absolute time already past, stores nothing and removes
/// any value under that key; one over [`MAX_TTL_SECONDS`] (100 years) is kept 100 years.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use cachy::Expiry;
///
/// assert_eq!(Expiry::from(10), Expiry::Minutes(10));
/// assert_eq!(Expiry::from(Duration::from_millis(1500)).ttl(), Some(Some(2)));
/// assert_eq!(Expiry::Minutes(0).ttl(), None);
/// assert_eq!(Expiry::from(SystemTime::UNIX_EPOCH).ttl(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Keep the item for this long.
    After(Duration),
    /// Keep the item until this time.
    At(SystemTime),
    /// Keep the item for this many minutes; zero or negative means do not keep it.
    Minutes(i64),
    /// Keep the item for this many seconds; zero or negative means do not keep it.
    Seconds(i64),
}

impl Expiry {
    /// The store TTL this expiry means now: `Some(Some(seconds))`, with seconds ≥ 1, or
    /// `None` when the item must not be kept at all. (`Some(None)`, forever, is only ever
    /// produced by `forever`, never by an `Expiry`.)
    pub fn ttl(&self) -> Option<Ttl> {
        let seconds = match *self {
            Expiry::After(duration) => ceil_seconds(duration),
            Expiry::At(at) => ceil_seconds(at.duration_since(SystemTime::now()).ok()?),
            Expiry::Minutes(minutes) => u64::try_from(minutes).ok()?.saturating_mul(60),
            Expiry::Seconds(seconds) => u64::try_from(seconds).ok()?,
        };
        (seconds > 0).then_some(Some(seconds.min(MAX_TTL_SECONDS)))
    }
}

fn ceil_seconds(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
}

impl From<Duration> for Expiry {
    fn from(duration: Duration) -> Self {
        Expiry::After(duration)
    }
}

impl From<SystemTime> for Expiry {
    fn from(at: SystemTime) -> Self {
        Expiry::At(at)
    }
}

#[cfg(feature = "chrono")]
impl<Tz: chrono::TimeZone> From<chrono::DateTime<Tz>> for Expiry {
    fn from(at: chrono::DateTime<Tz>) -> Self {
        Expiry::At(SystemTime::from(at))
    }
}

macro_rules! minutes_from {
    ($($ty:ty),*) => {
        $(impl From<$ty> for Expiry {
            /// Whole minutes, as in Python cachy.
            fn from(minutes: $ty) -> Self {
                Expiry::Minutes(i64::try_from(minutes).unwrap_or(i64::MAX))
            }
        })*
    };
}

minutes_from!(i32, i64, u32, u64);
