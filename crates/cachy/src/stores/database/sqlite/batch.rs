//! Calls of one kind that arrive while others of their kind run wait for them, and the next
//! caller to run takes all of them at once: reads in one read transaction, writes in one
//! transaction.
//!
//! With many callers on a few threads, a read on its own spends most of its time taking
//! and releasing the lock on the write-ahead log's read mark: a `fcntl` on the shared-memory
//! file under a process-wide mutex, which the runtime's threads wait on for each other (over
//! half of a read's time with 64 callers on two threads). A write on its own commits, and
//! writers take turns. A batch pays for the lock and the commit once.
//!
//! Nothing read or written differs from the calls run one by one:
//! - a batch's reads share one snapshot, taken after every one of them was asked for, so
//!   each sees every write that had ended when it was asked for;
//! - a batch's writes commit together, and each caller hears back only once the commit is
//!   done;
//! - if anything in a batch fails but a read's own error (the database locked by another
//!   process, a write refused, the commit), the batch is rolled back and each of its calls
//!   runs again on its own, so no call's failure becomes another's.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use rusqlite::Connection;
use tokio::sync::{Semaphore, SemaphorePermit, oneshot};

use super::{DbError, Param, Work, is_busy};

/// The most calls one batch takes: it runs on a caller's thread, which it must not hold for
/// long (the others wait for the next batch).
const MAX_BATCH: usize = 64;

/// What a statement of a store's, run on a connection, does: one of `Connections`' jobs.
pub(super) trait Job<T>:
    Fn(&mut Connection, &str, &[Param<'_>]) -> Result<T, DbError> + Clone + Send + Sync + 'static
{
}

impl<T, J> Job<T> for J where
    J: Fn(&mut Connection, &str, &[Param<'_>]) -> Result<T, DbError>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// How a call in a batch went.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ran {
    Done,
    Failed,
    /// The database was locked by another connection: the call did nothing.
    Busy,
}

/// A call in a batch: run once, its result kept until the batch is done.
pub(super) trait Call: Send {
    fn run(&mut self, connection: &mut Connection) -> Ran;
}

/// A call asked for while another of its kind ran: its caller waits for its answer.
pub(super) trait Queued: Call {
    /// Which of the store's queued calls it is.
    fn id(&self) -> u64;
    /// Its caller stopped waiting: it must not run. (Once a batch took it, a later call of
    /// the caller's waits for that batch: a write it gave up on never lands after it.)
    fn abandoned(&self) -> bool;
    /// Give the caller the result it ran to.
    fn answer(self: Box<Self>);
    /// Tell the caller to run the call on its own: its batch was rolled back, or never ran.
    fn run_alone(self: Box<Self>);
}

/// The calls of one kind waiting for a batch, and the turns to run one.
pub(super) struct Batches {
    waiting: Mutex<Vec<Box<dyn Queued>>>,
    /// How many calls `waiting` holds, read without its lock: most batches find none.
    waiting_count: AtomicUsize,
    turns: Arc<Semaphore>,
    queued: AtomicU64,
}

impl Batches {
    /// Batches of which at most `at_once` run at the same time.
    pub(super) fn new(at_once: usize) -> Self {
        Batches {
            waiting: Mutex::default(),
            waiting_count: AtomicUsize::new(0),
            turns: Arc::new(Semaphore::new(at_once)),
            queued: AtomicU64::new(0),
        }
    }

    /// The turns, for work that must not run while a batch does.
    pub(super) fn turns(&self) -> &Arc<Semaphore> {
        &self.turns
    }

    /// A turn to run a batch, if one is free now.
    pub(super) fn try_turn(&self) -> Option<SemaphorePermit<'_>> {
        self.turns.try_acquire().ok()
    }

    /// Queue `call` for the next batch.
    fn queue(&self, call: Box<dyn Queued>) {
        let mut waiting = self.lock();
        waiting.push(call);
        self.waiting_count.store(waiting.len(), Ordering::Release);
    }

    /// The calls waiting, oldest first, at most a batch of them, and the call `own` (the
    /// leader's, if it is queued) wherever it is; the calls whose callers stopped waiting
    /// are dropped.
    pub(super) fn take(&self, own: Option<u64>) -> Vec<Box<dyn Queued>> {
        // A call queued after this look waits for the turn the caller holds, and takes it.
        if !self.any_waiting() {
            return Vec::new();
        }
        let mut waiting = self.lock();
        waiting.retain(|call| !call.abandoned());
        let taken = waiting.len().min(MAX_BATCH);
        let mut batch: Vec<_> = waiting.drain(..taken).collect();
        if let Some(at) = own.and_then(|own| waiting.iter().position(|call| call.id() == own)) {
            batch.push(waiting.remove(at));
        }
        self.waiting_count.store(waiting.len(), Ordering::Release);
        batch
    }

    pub(super) fn any_waiting(&self) -> bool {
        self.waiting_count.load(Ordering::Acquire) != 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn Queued>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue the call and wait: for its answer, or for a turn to run the waiting calls
    /// (then `lead` runs them, this call among them, given its id; the wait goes on for the
    /// answer). `None` when the call must run on its own.
    pub(super) async fn wait<'a, T, J, L, F>(
        &'a self,
        sql: &str,
        params: &[Param<'_>],
        job: &J,
        mut lead: L,
    ) -> Option<Result<T, DbError>>
    where
        T: Send + 'static,
        J: Job<T>,
        L: FnMut(SemaphorePermit<'a>, u64) -> F,
        F: Future<Output = ()>,
    {
        let (answer, mut answered) = oneshot::channel();
        let id = self.queued.fetch_add(1, Ordering::Relaxed);
        self.queue(Box::new(Waiting {
            id,
            job: job.clone(),
            sql: sql.to_owned(),
            params: params.iter().cloned().map(Param::into_owned).collect(),
            done: None,
            answer,
        }));
        let mut turn = Some(std::pin::pin!(self.turns.acquire()));
        loop {
            // The turn first: a call answered while a turn came to it still runs the calls
            // waiting behind it, rather than pass the turn on to one that may be answered too.
            let next = std::future::poll_fn(|cx: &mut Context<'_>| {
                if let Some(waiting) = turn.as_mut()
                    && let Poll::Ready(permit) = waiting.as_mut().poll(cx)
                {
                    turn = None;
                    return Poll::Ready(Err(permit.ok()));
                }
                Pin::new(&mut answered).poll(cx).map(Ok)
            })
            .await;
            match next {
                Err(Some(permit)) => lead(permit, id).await,
                // The semaphore is never closed.
                Err(None) => {}
                Ok(Ok(answer)) => return answer,
                // The batch that took the call was dropped before answering (a panic).
                Ok(Err(_)) => return None,
            }
        }
    }
}

/// Run `calls` as one batch on `connection`, in order, each keeping its result: true if
/// those results stand, false if the batch was rolled back and every call must run on its
/// own. A single call runs as it would alone.
pub(super) fn run(connection: &mut Connection, work: Work, calls: &mut [&mut dyn Call]) -> bool {
    if let [call] = calls {
        return call.run(connection) != Ran::Busy;
    }
    let begin = match work {
        // Deferred: the snapshot is taken by the first read, after every call was asked for.
        Work::Reads => "BEGIN",
        // Immediate: the write lock now, or the whole batch runs alone.
        Work::Writes => "BEGIN IMMEDIATE",
    };
    if statement(connection, begin).is_err() {
        return false;
    }
    let ran_all = calls.iter_mut().all(|call| match call.run(connection) {
        Ran::Done => true,
        // A read's error is its own; a failed write leaves the transaction in doubt.
        Ran::Failed => work == Work::Reads,
        Ran::Busy => false,
    });
    if ran_all && statement(connection, "COMMIT").is_ok() {
        return true;
    }
    // If this fails too, the connection is left in a transaction: the caller closes it.
    let _ = statement(connection, "ROLLBACK");
    false
}

fn statement(connection: &Connection, sql: &str) -> rusqlite::Result<usize> {
    connection.prepare_cached(sql)?.execute([])
}

/// The call of the caller that runs the batch, on its borrowed statement and parameters.
pub(super) struct Asked<'a, T, J> {
    job: &'a J,
    sql: &'a str,
    params: &'a [Param<'a>],
    pub(super) done: Option<Result<T, DbError>>,
}

impl<'a, T, J> Asked<'a, T, J> {
    pub(super) fn new(job: &'a J, sql: &'a str, params: &'a [Param<'a>]) -> Self {
        Asked {
            job,
            sql,
            params,
            done: None,
        }
    }
}

impl<T: Send, J: Job<T>> Call for Asked<'_, T, J> {
    fn run(&mut self, connection: &mut Connection) -> Ran {
        keep(
            &mut self.done,
            (self.job)(connection, self.sql, self.params),
        )
    }
}

/// A queued call, owning its statement and parameters.
struct Waiting<T, J> {
    id: u64,
    job: J,
    sql: String,
    params: Vec<Param<'static>>,
    done: Option<Result<T, DbError>>,
    answer: oneshot::Sender<Option<Result<T, DbError>>>,
}

impl<T: Send, J: Job<T>> Call for Waiting<T, J> {
    fn run(&mut self, connection: &mut Connection) -> Ran {
        keep(
            &mut self.done,
            (self.job)(connection, &self.sql, &self.params),
        )
    }
}

impl<T: Send + 'static, J: Job<T>> Queued for Waiting<T, J> {
    fn id(&self) -> u64 {
        self.id
    }

    fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }

    fn answer(self: Box<Self>) {
        // A caller that stopped waiting no longer hears.
        let _ = self.answer.send(self.done);
    }

    fn run_alone(self: Box<Self>) {
        let _ = self.answer.send(None);
    }
}

/// Keep a call's result in `done`; how it went.
fn keep<T>(done: &mut Option<Result<T, DbError>>, result: Result<T, DbError>) -> Ran {
    let ran = match &result {
        Ok(_) => Ran::Done,
        Err(e) if is_busy(e) => Ran::Busy,
        Err(_) => Ran::Failed,
    };
    *done = Some(result);
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(
        connection: &mut Connection,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<u64, DbError> {
        use rusqlite::params_from_iter;
        Ok(connection
            .prepare_cached(sql)?
            .execute(params_from_iter(params))? as u64)
    }

    fn count(connection: &mut Connection, sql: &str, _: &[Param<'_>]) -> Result<i64, DbError> {
        Ok(connection.query_row(sql, [], |row| row.get(0))?)
    }

    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let connection = Connection::open(dir.path().join("batch.db")).unwrap();
        // As the store's: a statement that finds the database locked fails at once.
        connection.busy_timeout(std::time::Duration::ZERO).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .unwrap();
        (dir, connection)
    }

    fn rows(connection: &mut Connection) -> i64 {
        count(connection, "SELECT count(*) FROM t", &[]).unwrap()
    }

    const INSERT: &str = "INSERT INTO t (k) VALUES (?)";

    #[test]
    fn a_batch_of_writes_commits_together_and_each_keeps_its_result() {
        let (_dir, mut connection) = database();
        let params: Vec<[Param<'_>; 1]> = (0..3).map(|k| [Param::Int(k)]).collect();
        let mut calls: Vec<Asked<'_, u64, _>> = params
            .iter()
            .map(|params| Asked::new(&insert, INSERT, params))
            .collect();
        let mut batch: Vec<&mut dyn Call> =
            calls.iter_mut().map(|call| call as &mut dyn Call).collect();
        assert!(run(&mut connection, Work::Writes, &mut batch));
        assert!(
            calls
                .iter_mut()
                .all(|call| matches!(call.done, Some(Ok(1))))
        );
        assert_eq!(rows(&mut connection), 3);
        assert!(connection.is_autocommit());
    }

    #[test]
    fn a_refused_write_rolls_the_batch_back_for_each_call_to_run_alone() {
        let (_dir, mut connection) = database();
        let (one, same) = ([Param::Int(1)], [Param::Int(1)]);
        let mut first = Asked::new(&insert, INSERT, &one);
        // The same key again: refused by the primary key.
        let mut refused = Asked::new(&insert, INSERT, &same);
        assert!(!run(
            &mut connection,
            Work::Writes,
            &mut [&mut first, &mut refused]
        ));
        assert_eq!(rows(&mut connection), 0, "the first write was rolled back");
        assert!(connection.is_autocommit());
    }

    #[test]
    fn a_read_s_error_is_its_own() {
        let (_dir, mut connection) = database();
        let mut good = Asked::new(&count, "SELECT count(*) FROM t", &[]);
        let mut bad = Asked::new(&count, "SELECT count(*) FROM missing", &[]);
        assert!(run(
            &mut connection,
            Work::Reads,
            &mut [&mut bad, &mut good]
        ));
        assert!(matches!(bad.done, Some(Err(_))));
        assert!(matches!(good.done, Some(Ok(0))));
        assert!(connection.is_autocommit());
    }

    #[test]
    fn a_batch_that_finds_the_database_locked_writes_nothing() {
        let (dir, mut connection) = database();
        let holder = Connection::open(dir.path().join("batch.db")).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (one, two) = ([Param::Int(1)], [Param::Int(2)]);
        let mut first = Asked::new(&insert, INSERT, &one);
        let mut second = Asked::new(&insert, INSERT, &two);
        assert!(!run(
            &mut connection,
            Work::Writes,
            &mut [&mut first, &mut second]
        ));
        holder.execute_batch("COMMIT").unwrap();
        assert_eq!(rows(&mut connection), 0);
        assert!(connection.is_autocommit());
    }

    #[test]
    fn a_single_call_runs_as_it_would_alone() {
        let (dir, mut connection) = database();
        let one = [Param::Int(1)];
        let mut write = Asked::new(&insert, INSERT, &one);
        assert!(run(&mut connection, Work::Writes, &mut [&mut write]));
        assert_eq!(rows(&mut connection), 1);
        let holder = Connection::open(dir.path().join("batch.db")).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let two = [Param::Int(2)];
        let mut locked_out = Asked::new(&insert, INSERT, &two);
        assert!(
            !run(&mut connection, Work::Writes, &mut [&mut locked_out]),
            "a write that finds the lock taken runs alone, where it can wait for it"
        );
    }
}
