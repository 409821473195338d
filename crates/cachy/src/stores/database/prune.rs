//! Removing expired rows: [`DatabaseStore::prune`], and the lottery that starts a prune in
//! the background on some writes.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::statements::PRUNE_BATCH;
use super::{DatabaseStore, Param, now};
use crate::error::Result;

/// How long one batch of a background prune should hold the write lock at most: a writer
/// that arrives meanwhile waits for it.
pub(super) const PRUNE_BATCH_TIME: Duration = Duration::from_millis(2);
/// A background prune silent this long is taken over by the lottery's next winner. A batch
/// takes milliseconds; a runtime that stopped running its tasks (idle, shut down in the
/// background) would otherwise stop every prune of the store for as long as it lives.
pub(super) const PRUNE_STALLED: Duration = Duration::from_secs(10);
/// The rows a background prune deletes in its first batch.
const PRUNE_FIRST_BATCH: u64 = 100;
/// The rows a background prune deletes at least in each batch, however slow they are.
pub(super) const PRUNE_SMALLEST_BATCH: u64 = 10;

impl DatabaseStore {
    /// Delete every expired row, a batch of at most 1,000 at a time (each its own short
    /// transaction, so writers get in between); the number deleted.
    pub async fn prune(&self) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let batch = self
                .execute(
                    "prune",
                    &self.statements.prune,
                    &[Param::Int(now()), Param::Int(PRUNE_BATCH as i64)],
                )
                .await?;
            deleted += batch;
            if batch < PRUNE_BATCH {
                return Ok(deleted);
            }
        }
    }

    /// Run the prune lottery: with the configured odds, start pruning expired rows in a
    /// background task, unless one is running; the write that won never waits for it,
    /// whatever the backlog. Best effort: a failed batch (a lock wait, a deadlock with
    /// writers) ends that prune quietly, and a later draw starts another.
    ///
    /// Writers still meet the prune: SQLite takes one writer at a time, and a server
    /// database locks the rows and index pages a batch deletes. So the batches are sized by
    /// time, to hold the lock about [`PRUNE_BATCH_TIME`] whatever a row costs to delete in
    /// this table ([`next_prune_batch`]), and after each the prune waits as long as the
    /// batch took: a writer waits at most about one batch, and the prune takes at most
    /// half of the database's writing time. Expired rows are never read meanwhile, so
    /// nothing is lost by pruning slowly. (A thousand rows at a time, back to back, held
    /// the lock for up to 16 ms each with half of a million-row table expired, and every
    /// put waited a millisecond on average.)
    pub(super) async fn maybe_prune(&self) {
        let (chances, out_of) = self.lottery;
        if lottery_draw() % out_of >= chances {
            return;
        }
        let (started, last) = (unix_millis(), self.pruning.load(Ordering::Acquire));
        let stalled = started.saturating_sub(last) >= PRUNE_STALLED.as_millis() as u64;
        if (last != 0 && !stalled)
            || self
                .pruning
                .compare_exchange(last, started, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        // Lets the next winner prune once this prune ends, or is dropped (this call or the
        // task, by its runtime), run or not.
        let pruning = Pruning(Arc::clone(&self.pruning));
        let (Ok(pool), Ok(runtime)) = (
            self.pool().await.map(Cow::into_owned),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let sql = self.statements.prune.clone();
        runtime.spawn(async move {
            let mut batch = PRUNE_FIRST_BATCH;
            loop {
                let started = std::time::Instant::now();
                let params = [Param::Int(now()), Param::Int(batch as i64)];
                match pool.execute(&sql, &params).await {
                    Ok(deleted) if deleted == batch => {}
                    _ => break,
                }
                let took = started.elapsed();
                pruning.0.store(unix_millis(), Ordering::Release);
                batch = next_prune_batch(batch, took);
                // Paused on the blocking pool: a runtime built without timers runs this store.
                if tokio::task::spawn_blocking(move || std::thread::sleep(took))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
}

/// A background prune running: ends it when dropped.
struct Pruning(Arc<AtomicU64>);

impl Drop for Pruning {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A draw of the prune lottery: xorshift on a seed per thread, cheap, and no line of memory
/// that every put on every thread writes (only the odds matter).
fn lottery_draw() -> u64 {
    thread_local! {
        static SEED: std::cell::Cell<u64> = std::cell::Cell::new(
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8) | 1,
        );
    }
    SEED.with(|seed| {
        let mut x = seed.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seed.set(x);
        x
    })
}

/// The size of a background prune's next batch, after one of `batch` rows took `took`:
/// halved when it held the lock longer than [`PRUNE_BATCH_TIME`], doubled when it took less
/// than half of it, within [`PRUNE_SMALLEST_BATCH`] and [`PRUNE_BATCH`].
pub(super) fn next_prune_batch(batch: u64, took: Duration) -> u64 {
    if took > PRUNE_BATCH_TIME {
        (batch / 2).max(PRUNE_SMALLEST_BATCH)
    } else if took < PRUNE_BATCH_TIME / 2 {
        (batch * 2).min(PRUNE_BATCH)
    } else {
        batch
    }
}
