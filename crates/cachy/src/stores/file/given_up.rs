//! Changes on the blocking pool whose caller may stop waiting.
//!
//! A job handed to tokio's blocking pool runs to its end even when the future awaiting it is
//! dropped (a request's timeout, an aborted task). A write its caller gave up on must not
//! land afterwards: the caller's next write of the key would return first and then be
//! overwritten by the older value, which would stay until it expired. So a job's changes to
//! the cache's files (a rename into place, an unlink, a folder moved aside by a flush) are
//! each made only while its caller still waits, and a caller that stops waiting while one
//! is being made waits for that one change (a single system call) to end: once the dropped
//! future is gone, its job changes nothing more.

use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// The caller awaits the job.
const WAITING: u8 = 0;
/// The job is making a change, which the caller waits for if it stops waiting now.
const CHANGING: u8 = 1;
/// The caller stopped waiting (or has its answer): the job changes nothing more.
const GONE: u8 = 2;

/// Held by the future awaiting a job on the blocking pool; dropping it (the answer came, or
/// the caller gave up) stops the job's further changes.
pub(super) struct Caller(Arc<AtomicU8>);

/// The job's side of its [`Caller`].
pub(super) struct Job(Arc<AtomicU8>);

pub(super) fn caller_and_job() -> (Caller, Job) {
    let state = Arc::new(AtomicU8::new(WAITING));
    (Caller(Arc::clone(&state)), Job(state))
}

impl Drop for Caller {
    fn drop(&mut self) {
        loop {
            match self
                .0
                .compare_exchange(WAITING, GONE, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) | Err(GONE) => return,
                // A rename or an unlink under way: it lands before the caller goes on.
                Err(_) => std::thread::yield_now(),
            }
        }
    }
}

thread_local! {
    /// The job this blocking thread runs for a caller, if any.
    static RUNNING: RefCell<Option<Arc<AtomicU8>>> = const { RefCell::new(None) };
}

impl Job {
    /// Run `work` on this thread as this job: its [`change`]s are made only while the caller
    /// waits (a job given up on before it started runs, but changes nothing).
    pub(super) fn run<T>(self, work: impl FnOnce() -> T) -> T {
        /// Clears the thread's job, even if `work` panics.
        struct Running;
        impl Drop for Running {
            fn drop(&mut self) {
                RUNNING.with_borrow_mut(|running| *running = None);
            }
        }
        RUNNING.with_borrow_mut(|running| *running = Some(self.0));
        let _running = Running;
        work()
    }
}

/// Make `change` to the cache's files, unless this thread runs a job whose caller stopped
/// waiting for it (then an `Interrupted` error, and nothing changed). Outside a job (a call
/// on the caller's own thread), `change` is made.
pub(super) fn change<T>(change: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let Some(state) = RUNNING.with_borrow(Option::clone) else {
        return change();
    };
    if state
        .compare_exchange(WAITING, CHANGING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "the caller stopped waiting: the change was not made",
        ));
    }
    /// Back to waiting once the change is made, even if it panicked: the caller must not
    /// wait for it forever.
    struct Changing(Arc<AtomicU8>);
    impl Drop for Changing {
        fn drop(&mut self) {
            self.0.store(WAITING, Ordering::Release);
        }
    }
    let _changing = Changing(state);
    change()
}
