//! The clock of the in-process stores and of `remember_with`'s recorded lifetimes: the
//! system's, or, with the `test-clock` feature, tokio's, which a test on a paused runtime
//! moves with `tokio::time::advance`.

/// An instant of the in-process stores' clock: tokio's, which is the system's own unless
/// tokio's `test-util` (the `test-clock` feature) lets a paused runtime move it.
#[cfg(feature = "memory")]
pub(crate) type Instant = tokio::time::Instant;

/// How far a paused tokio clock has been moved past the system's, in milliseconds (0
/// without the `test-clock` feature, or outside a runtime).
pub(crate) fn advanced_millis() -> u64 {
    #[cfg(feature = "test-clock")]
    {
        // A running clock reads the system's time; a paused one, moved forward, reads ahead
        // of it.
        use tokio::time::Instant;
        let system = Instant::from_std(std::time::Instant::now());
        let ahead = Instant::now().saturating_duration_since(system);
        u64::try_from(ahead.as_millis()).unwrap_or(u64::MAX)
    }
    #[cfg(not(feature = "test-clock"))]
    0
}
