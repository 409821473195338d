//! SQLite, on rusqlite: the database is in the process, so a statement takes microseconds
//! (a point lookup about 2 µs, a commit in WAL mode about 20 µs) and handing it to another
//! thread would cost more than running it. Statements run on the caller's thread, with
//! cached prepared statements, and move to tokio's blocking pool only when they would wait:
//! when another connection holds the write lock (SQLite's busy handler then waits for it up
//! to the store's `timeout`), and while calls prove slow (see [`InlineWhileFast`]). Reads of a file in WAL
//! mode run under a read lock the store holds (see [`anchor`]); other calls that arrive
//! while others of their kind run wait for them and run as one batch (see [`batch`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, TransactionBehavior, params_from_iter};
use tokio::sync::Semaphore;

use super::query::{DbError, Param, ReadRow, RowRead};
use crate::stores::inline::InlineWhileFast;

mod anchor;
mod batch;
mod batched;
mod checkpoints;
mod leases;
mod rows;
mod target;
use anchor::Anchor;
use batch::{Batches, Job};
use checkpoints::Checkpoints;
use leases::{Idle, Lease};
pub(super) use rows::kind_of;
pub(super) use target::Target;

/// How long opening a connection waits for another connection's write lock (to switch the
/// database to WAL), on the blocking pool. A statement waits up to the store's `timeout`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The runtime whose blocking pool the store waits on.
fn on_blocking_pool() -> Result<tokio::runtime::Handle, DbError> {
    crate::runtime::blocking_pool("SQLite store").map_err(DbError::NoRuntime)
}

/// A store's connections to one SQLite database, opened as needed up to a maximum.
pub(super) struct Connections {
    target: Target,
    /// `PRAGMA synchronous`: `NORMAL`, `FULL`, `EXTRA` or `OFF`.
    synchronous: &'static str,
    idle: Arc<Idle>,
    /// One permit per connection that may be open, held by the connection while it is.
    permits: Arc<Semaphore>,
    /// How long a call waits for a free connection.
    timeout: Duration,
    /// Reads and writes prove slow apart: with `synchronous = FULL` every commit waits for
    /// the disk, while reads still come from memory.
    inline_reads: InlineWhileFast,
    inline_writes: InlineWhileFast,
    /// Reads and writes on the caller's thread run in batches (see [`batch`]): reads a few
    /// at once, writes one batch at a time (SQLite takes one writer at a time: a writer
    /// waiting for its batch costs far less than one finding the database locked and moving
    /// to the blocking pool).
    read_batches: Batches,
    write_batches: Batches,
    /// Held by the one write of this store waiting on the blocking pool for the database's
    /// lock; the others wait for it without a connection.
    waiting_writer: Arc<tokio::sync::Mutex<()>>,
    /// Writes sent to the blocking pool and not yet done there (their callers may have
    /// stopped waiting: the pool runs them anyway). While there are any, later writes join
    /// them there, behind them, rather than run on a caller's thread: a write never lands
    /// after a later write of the same caller.
    writes_on_pool: Arc<AtomicUsize>,
    checkpoints: Arc<Checkpoints>,
    /// The read lock held for the store's reads, for a file (see [`anchor`]).
    anchor: Option<Arc<Anchor>>,
}

/// A write counted in `Connections::writes_on_pool` until it is done, or dropped unrun.
struct OnPool(Arc<AtomicUsize>);

impl OnPool {
    fn count(writes_on_pool: &Arc<AtomicUsize>) -> Self {
        writes_on_pool.fetch_add(1, Ordering::SeqCst);
        OnPool(Arc::clone(writes_on_pool))
    }
}

impl Drop for OnPool {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a call run on the caller's thread came to.
enum Here<T> {
    /// Its result; the connection was given back.
    Done(Result<T, DbError>),
    /// It found the database locked by another connection and did nothing: the
    /// connection, for the call to wait for the lock with.
    Locked(Lease),
}

/// How many batches of reads may run on callers' threads at once: half the threads, so
/// that reads arriving meanwhile wait for the next batch rather than each take the log's
/// read lock on its own, yet many cores still read in parallel.
fn read_batches_at_once() -> usize {
    std::thread::available_parallelism().map_or(1, |threads| (threads.get() / 2).max(1))
}

/// What a statement does, which decides where it runs: reads and writes prove slow apart,
/// and writes take turns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    Reads,
    Writes,
}

impl Connections {
    /// Connections to `target`, at most `max` (always one in memory: each connection to
    /// `:memory:` is its own database).
    pub(super) fn new(
        target: Target,
        synchronous: &'static str,
        max: u32,
        timeout: Duration,
    ) -> Self {
        let max = if target == Target::Memory { 1 } else { max };
        let anchor = match target {
            Target::File { .. } => Some(Anchor::new(target.clone(), synchronous)),
            Target::Memory => None,
        };
        Connections {
            anchor,
            target,
            synchronous,
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(max as usize)),
            timeout,
            inline_reads: InlineWhileFast::default(),
            inline_writes: InlineWhileFast::default(),
            read_batches: Batches::new(read_batches_at_once()),
            write_batches: Batches::new(1),
            waiting_writer: Arc::default(),
            writes_on_pool: Arc::default(),
            checkpoints: Arc::default(),
        }
    }

    /// After a write: a checkpoint of the log when one is due (a file's; one in memory has
    /// none).
    fn wrote(&self) {
        if matches!(
            self.target,
            Target::File {
                read_only: false,
                ..
            }
        ) {
            self.checkpoints
                .wrote(&self.target, self.synchronous, self.write_batches.turns());
        }
    }

    pub(super) async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let done = self
            .run(
                Work::Writes,
                sql,
                params,
                |connection: &mut Connection, sql: &str, params: &[Param<'_>]| {
                    let mut statement = connection.prepare_cached(sql)?;
                    Ok(statement.execute(params_from_iter(params))? as u64)
                },
            )
            .await;
        self.wrote();
        done
    }

    pub(super) async fn fetch<T: Send + 'static>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        read: ReadRow<T>,
    ) -> Result<Vec<T>, DbError> {
        self.run(
            Work::Reads,
            sql,
            params,
            move |connection: &mut Connection, sql: &str, params: &[Param<'_>]| {
                let mut statement = connection.prepare_cached(sql)?;
                let mut rows = statement.query(params_from_iter(params))?;
                let mut read_rows = Vec::new();
                while let Some(row) = rows.next()? {
                    read_rows.push(read(row)?);
                }
                Ok(read_rows)
            },
        )
        .await
    }

    pub(super) async fn execute_each(
        &self,
        sql: &str,
        params: &[Param<'_>],
        width: usize,
    ) -> Result<(), DbError> {
        // On its own: it is a transaction, which a batch's cannot hold.
        let done = self
            .run_alone(
                Work::Writes,
                sql,
                params,
                move |connection: &mut Connection, sql: &str, params: &[Param<'_>]| {
                    // IMMEDIATE: take the write lock at the start, so the busy handler can wait for
                    // it, rather than fail on upgrading a read lock mid-transaction.
                    let transaction =
                        connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    {
                        let mut statement = transaction.prepare_cached(sql)?;
                        for row in params.chunks(width) {
                            statement.execute(params_from_iter(row))?;
                        }
                    }
                    Ok(transaction.commit()?)
                },
            )
            .await;
        self.wrote();
        done
    }

    fn inline(&self, work: Work) -> &InlineWhileFast {
        match work {
            Work::Reads => &self.inline_reads,
            Work::Writes => &self.inline_writes,
        }
    }

    fn batches(&self, work: Work) -> &Batches {
        match work {
            Work::Reads => &self.read_batches,
            Work::Writes => &self.write_batches,
        }
    }

    /// Run `job` on a connection: on the caller's thread while that is fast, in a batch
    /// with the calls of its kind that arrive meanwhile (see [`batch`]), or, for reads under
    /// the [`anchor`]'s lock, at once; else on its own.
    async fn run<T: Send + 'static, J: Job<T>>(
        &self,
        work: Work,
        sql: &str,
        params: &[Param<'_>],
        job: J,
    ) -> Result<T, DbError> {
        // A batch of reads shares the log's read lock; with the anchor every read does.
        let anchored = work == Work::Reads
            && self.anchor.as_ref().is_some_and(|anchor| {
                anchor.before_read();
                anchor.usable()
            });
        if self.may_run_here(work).await {
            let done = if anchored {
                self.try_here(work, sql, params, &job).await?
            } else {
                self.run_batched(work, sql, params, &job).await?
            };
            if let Some(done) = done {
                return done;
            }
        }
        Box::pin(self.run_alone(work, sql, params, job)).await
    }

    /// Run `job` on the caller's thread, on a free connection; `None` if the database was
    /// locked by another connection (it did nothing).
    async fn try_here<T, J: Job<T>>(
        &self,
        work: Work,
        sql: &str,
        params: &[Param<'_>],
        job: &J,
    ) -> Result<Option<Result<T, DbError>>, DbError> {
        let lease = self.lease().await?;
        Ok(match self.run_here(work, lease, sql, params, job) {
            Here::Done(done) => Some(done),
            Here::Locked(lease) => {
                self.idle.give_back(lease);
                None
            }
        })
    }

    /// Run `job` on the caller's thread, on `lease`'s connection.
    fn run_here<T, J: Job<T>>(
        &self,
        work: Work,
        mut lease: Lease,
        sql: &str,
        params: &[Param<'_>],
        job: &J,
    ) -> Here<T> {
        let started = Instant::now();
        match job(&mut lease.connection, sql, params) {
            Err(e) if is_busy(&e) => Here::Locked(lease),
            done => {
                self.idle.give_back(lease);
                self.record(work, started.elapsed());
                Here::Done(done)
            }
        }
    }

    /// Note how long work on the caller's thread took (see [`InlineWhileFast`]).
    fn record(&self, work: Work, took: Duration) {
        if self.inline(work).record(took) {
            #[cfg(feature = "tracing")]
            tracing::info!(
                database = ?self.target,
                reads = (work == Work::Reads),
                "SQLite store: statements take over 1 ms; running them on tokio's blocking pool (trying the caller's thread now and then)"
            );
        }
    }

    /// Run `job` on a connection of its own: on the caller's thread while that is fast and
    /// the database is not locked by another connection, else on tokio's blocking pool,
    /// where SQLite's busy handler may wait for the lock.
    async fn run_alone<T: Send + 'static, J: Job<T>>(
        &self,
        work: Work,
        sql: &str,
        params: &[Param<'_>],
        job: J,
    ) -> Result<T, DbError> {
        let mut lease = self.lease().await?;
        if self.may_run_here(work).await {
            lease = match self.run_here(work, lease, sql, params, &job) {
                Here::Done(done) => return done,
                // It waits for the lock below.
                Here::Locked(lease) => lease,
            };
        }
        // A write that must wait for the lock waits for its turn without a connection: SQLite
        // lets one writer in at a time, and writes holding connections while they waited left
        // none for reads, which WAL lets through.
        let turn = match work {
            Work::Reads => None,
            Work::Writes => {
                self.idle.give_back(lease);
                let turn = tokio::time::timeout(
                    self.timeout,
                    Arc::clone(&self.waiting_writer).lock_owned(),
                )
                .await
                .map_err(|_| DbError::NoWriteTurn(self.timeout))?;
                lease = self.lease().await?;
                // Counted from here on: nothing stops it from running now.
                Some((turn, OnPool::count(&self.writes_on_pool)))
            }
        };
        let sql = sql.to_owned();
        let params: Vec<Param<'static>> = params.iter().cloned().map(Param::into_owned).collect();
        let idle = Arc::clone(&self.idle);
        let busy_timeout = self.timeout;
        // The lease ends on the worker thread, so a caller that stops waiting neither loses
        // the connection nor lets another be opened while it is in use.
        on_blocking_pool()?
            .spawn_blocking(move || {
                let _turn = turn;
                let mut lease = lease;
                let done = lease
                    .connection
                    .busy_timeout(busy_timeout)
                    .map_err(DbError::Sqlite)
                    .and_then(|()| job(&mut lease.connection, &sql, &params));
                // A connection that would keep waiting for locks must not serve the caller's
                // thread again: it is closed instead.
                if lease.connection.busy_timeout(Duration::ZERO).is_ok() {
                    idle.give_back(lease);
                }
                done
            })
            .await
            .map_err(|e| DbError::Worker(format!("the SQLite worker thread failed: {e}")))?
    }

    /// Whether a call of `work` may run on the caller's thread: while such calls are fast
    /// (spending the task's cooperative budget, see [`InlineWhileFast`]), unless it is a
    /// write and writes wait on the blocking pool, which it must not overtake.
    async fn may_run_here(&self, work: Work) -> bool {
        self.inline(work).allowed_cooperatively().await
            && !(work == Work::Writes && self.writes_on_pool.load(Ordering::SeqCst) != 0)
    }
}

/// Whether the statement failed because another connection holds the lock it needs.
fn is_busy(e: &DbError) -> bool {
    matches!(
        e,
        DbError::Sqlite(rusqlite::Error::SqliteFailure(failure, _))
            if matches!(failure.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
