//! Guarding the calls to a server: the circuit breaker and the time bound shared by the
//! Redis store (one breaker per store) and the memcached store (one per server).
//!
//! A call that fails with a temporary error (connection refused or dropped, timeout) opens
//! the breaker: for `retry_after`, calls fail at once with an [`ErrorKind::Unavailable`]
//! error, without touching the network, instead of each waiting for the timeout. Then one
//! call at a time is let through as a probe (the others keep failing at once): if the server
//! answers, even with an error of its own, the breaker closes; if it fails again, the
//! breaker opens for another `retry_after`. Errors that are not temporary (a wrong type, a
//! script error, a value that is not an integer) come from a server that answers, and never
//! open it.
//!
//! A closed breaker costs one atomic load per call: no lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// Await `work`, or fail with an [`ErrorKind::Timeout`] error after `limit`, saying that
/// `what()` (formatted only then) did not answer.
///
/// A combinator, not an `async` function or block: those keep `work` as their argument and
/// again where they await it, twice its size in every caller's future (a memcached call's
/// grew past 2 KiB, a large allocation on every call).
pub(super) fn bounded<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    work: impl std::future::Future<Output = T>,
) -> impl std::future::Future<Output = Result<T>> {
    futures_util::FutureExt::map(tokio::time::timeout(limit, work), move |answer| {
        answer.map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} did not answer within {limit:?} (is the server down or unreachable?)",
                    what()
                ),
            )
        })
    })
}

/// The state, in the two low bits of [`Breaker::word`].
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const PROBING: u64 = 2;
const STATE: u64 = 0b11;
/// One more close, in the bits above the state.
const NEXT_EPOCH: u64 = STATE + 1;

pub(super) struct Breaker {
    /// How long the server stays marked down; `None` when the breaker is turned off (it then
    /// never opens).
    retry_after: Option<Duration>,
    /// The state in the two low bits, and above them the epoch: how many times the breaker
    /// closed after a probe. A call admitted in an earlier epoch that fails late cannot open
    /// the breaker again after a probe found the server back. Written only with `down`
    /// locked; read without the lock on the hot path.
    word: AtomicU64,
    /// Since when and why the server is marked down, while the breaker is not closed.
    down: Mutex<Down>,
    /// What is marked down, for messages: "the Redis server host:port", "the memcached
    /// server host:port".
    what: String,
}

struct Down {
    until: Instant,
    cause: String,
}

/// Leave to make one call, from [`Breaker::admit`]; report its outcome with
/// [`finish`](Pass::finish).
pub(super) enum Pass<'a> {
    /// The breaker was closed; `ticket` is the word it was admitted under.
    Closed { breaker: &'a Breaker, ticket: u64 },
    /// The one call trying the server after `retry_after`.
    Probe(Probe<'a>),
}

/// The probe's pass. Dropped unfinished (the call was cancelled), it hands the probe to the
/// next caller, so a cancelled probe never leaves the breaker stuck.
pub(super) struct Probe<'a> {
    breaker: &'a Breaker,
    finished: bool,
}

impl Breaker {
    /// A closed breaker that opens for `retry_after` after a temporary failure, or never
    /// with `None`. `what` names what is marked down in its errors.
    pub(super) fn new(retry_after: Option<Duration>, what: String) -> Self {
        Breaker {
            retry_after,
            word: AtomicU64::new(CLOSED),
            down: Mutex::new(Down {
                until: Instant::now(),
                cause: String::new(),
            }),
            what,
        }
    }

    /// Whether the breaker can open (it was not turned off).
    #[cfg(feature = "redis")]
    pub(super) fn is_enabled(&self) -> bool {
        self.retry_after.is_some()
    }

    /// Leave to make a call, or the error to fail it with at once while the server is
    /// marked down.
    pub(super) fn admit(&self) -> Result<Pass<'_>> {
        let word = self.word.load(Ordering::Acquire);
        if word & STATE == CLOSED {
            return Ok(Pass::Closed {
                breaker: self,
                ticket: word,
            });
        }
        self.admit_while_down()
    }

    #[cold]
    fn admit_while_down(&self) -> Result<Pass<'_>> {
        let mut down = self.lock();
        let word = self.word.load(Ordering::Acquire);
        let now = Instant::now();
        match word & STATE {
            CLOSED => Ok(Pass::Closed {
                breaker: self,
                ticket: word,
            }),
            // A probe out for `retry_after` is taken over: the runtime running it may have
            // stopped running its tasks, and nobody else would try the server.
            OPEN | PROBING if now >= down.until => {
                down.until = now + self.retry_after.unwrap_or_default();
                self.word
                    .store((word & !STATE) | PROBING, Ordering::Release);
                Ok(Pass::Probe(Probe {
                    breaker: self,
                    finished: false,
                }))
            }
            state => {
                let when = if state == PROBING {
                    "while another call retries it".to_owned()
                } else {
                    // Whole milliseconds, rounded up: never "retried in 0ns".
                    let millis = (down.until - now).as_nanos().div_ceil(1_000_000);
                    let left = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
                    format!("until it is retried in {left:?}")
                };
                Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{} was marked down after a failure ({}); calls fail at once {when}",
                        self.what, down.cause
                    ),
                ))
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Down> {
        self.down.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Mark the server down for `retry_after` because of `cause`, if the word is still
    /// `expected` (for a probe: whatever it is).
    fn open(&self, expected: Option<u64>, cause: &Error) {
        let Some(retry_after) = self.retry_after else {
            return;
        };
        let cause = cause.to_string();
        let mut down = self.lock();
        let word = self.word.load(Ordering::Acquire);
        if expected.is_some_and(|expected| expected != word) {
            // Opened already by another call, or closed since by a probe that found the
            // server back: this failure is older news.
            return;
        }
        #[cfg(feature = "tracing")]
        if word & STATE == CLOSED {
            tracing::warn!(server = %self.what, %cause, ?retry_after, "marked down after a failure");
        }
        down.until = Instant::now() + retry_after;
        down.cause = cause;
        self.word.store((word & !STATE) | OPEN, Ordering::Release);
    }

    /// The server answered on a connection of its own (a subscription): close if open.
    #[cfg(feature = "hybrid")]
    pub(super) fn answered(&self) {
        if self.word.load(Ordering::Acquire) & STATE != CLOSED {
            self.close();
        }
    }

    /// The server answered a probe: close, in a new epoch.
    fn close(&self) {
        let _down = self.lock();
        let word = self.word.load(Ordering::Acquire);
        #[cfg(feature = "tracing")]
        if word & STATE != CLOSED {
            tracing::info!(server = %self.what, "answers again");
        }
        self.word
            .store((word & !STATE).wrapping_add(NEXT_EPOCH), Ordering::Release);
    }
}

impl Pass<'_> {
    /// Report how the call went: a temporary error opens the breaker (or opens it again,
    /// after a probe); any answer from the server closes it after a probe.
    pub(super) fn finish<T>(self, outcome: &Result<T>) {
        let failure = outcome.as_ref().err().filter(|e| e.is_temporary());
        if failure.is_some() && crate::runtime::shutting_down() {
            // The connections of a runtime go down with it: that says nothing of the
            // server. (A probe's pass dropped unfinished hands the probe over.)
            return;
        }
        match self {
            Pass::Closed { breaker, ticket } => {
                if let Some(failure) = failure {
                    breaker.open(Some(ticket), failure);
                }
            }
            Pass::Probe(mut probe) => {
                probe.finished = true;
                match failure {
                    Some(failure) => probe.breaker.open(None, failure),
                    None => probe.breaker.close(),
                }
            }
        }
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut down = self.breaker.lock();
        let word = self.breaker.word.load(Ordering::Acquire);
        if word & STATE == PROBING {
            // The next caller probes.
            down.until = Instant::now();
            self.breaker
                .word
                .store((word & !STATE) | OPEN, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout() -> Error {
        Error::new(ErrorKind::Timeout, "Redis did not answer within 300ms")
    }

    fn refused(breaker: &Breaker) -> Error {
        match breaker.admit() {
            Ok(_) => panic!("admitted while down"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_temporary_failure_opens_it_and_a_probe_closes_it() {
        let breaker = Breaker::new(
            Some(Duration::from_millis(50)),
            "the Redis server".to_owned(),
        );
        breaker.admit().unwrap().finish::<()>(&Err(timeout()));
        let err = refused(&breaker);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(
            err.message().contains("did not answer within 300ms"),
            "{err}"
        );
        assert!(err.message().contains("until it is retried in"), "{err}");

        std::thread::sleep(Duration::from_millis(60));
        let probe = breaker.admit().unwrap();
        assert!(matches!(probe, Pass::Probe(_)));
        let err = refused(&breaker);
        assert!(
            err.message().contains("while another call retries it"),
            "{err}"
        );
        probe.finish(&Ok(()));
        assert!(matches!(breaker.admit().unwrap(), Pass::Closed { .. }));
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_a_cancelled_one_hands_over() {
        let breaker = Breaker::new(
            Some(Duration::from_millis(20)),
            "the Redis server".to_owned(),
        );
        breaker.admit().unwrap().finish::<()>(&Err(timeout()));
        std::thread::sleep(Duration::from_millis(25));
        breaker.admit().unwrap().finish::<()>(&Err(timeout()));
        refused(&breaker);
        std::thread::sleep(Duration::from_millis(25));
        drop(breaker.admit().unwrap());
        let probe = breaker.admit().unwrap();
        assert!(matches!(probe, Pass::Probe(_)), "the next caller probes");
        // An answer that is an error still shows the server is up.
        probe.finish::<()>(&Err(Error::new(ErrorKind::Backend, "WRONGTYPE")));
        assert!(matches!(breaker.admit().unwrap(), Pass::Closed { .. }));
    }

    #[test]
    fn a_probe_out_for_retry_after_is_taken_over() {
        let breaker = Breaker::new(
            Some(Duration::from_millis(20)),
            "the Redis server".to_owned(),
        );
        breaker.admit().unwrap().finish::<()>(&Err(timeout()));
        std::thread::sleep(Duration::from_millis(25));
        // Held by a call whose runtime no longer runs it: never finished, never dropped.
        let stuck = breaker.admit().unwrap();
        assert!(matches!(stuck, Pass::Probe(_)));
        refused(&breaker);
        std::thread::sleep(Duration::from_millis(25));
        let probe = breaker.admit().unwrap();
        assert!(matches!(probe, Pass::Probe(_)));
        probe.finish(&Ok(()));
        assert!(matches!(breaker.admit().unwrap(), Pass::Closed { .. }));
        drop(stuck);
    }

    #[test]
    fn errors_that_are_not_temporary_and_late_failures_do_not_open_it() {
        let breaker = Breaker::new(
            Some(Duration::from_millis(20)),
            "the Redis server".to_owned(),
        );
        breaker
            .admit()
            .unwrap()
            .finish::<()>(&Err(Error::new(ErrorKind::NotAnInteger, "not an integer")));
        let late = breaker.admit().unwrap();
        breaker.admit().unwrap().finish::<()>(&Err(timeout()));
        std::thread::sleep(Duration::from_millis(25));
        breaker.admit().unwrap().finish(&Ok(()));
        // Admitted before the breaker opened, failing after the probe closed it.
        late.finish::<()>(&Err(timeout()));
        assert!(matches!(breaker.admit().unwrap(), Pass::Closed { .. }));
    }

    #[test]
    fn turned_off_it_never_opens() {
        let breaker = Breaker::new(None, "the Redis server".to_owned());
        for _ in 0..3 {
            breaker.admit().unwrap().finish::<()>(&Err(timeout()));
        }
        assert!(matches!(breaker.admit().unwrap(), Pass::Closed { .. }));
    }
}
