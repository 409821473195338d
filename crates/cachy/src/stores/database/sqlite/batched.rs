//! Running a call in a batch with the calls of its kind that arrive meanwhile, on the
//! caller's thread (see [`batch`](super::batch) for what a batch promises).

use std::time::Instant;

use tokio::sync::SemaphorePermit;

use super::batch::{self, Asked, Job};
use super::{Connections, DbError, Param, Work};

/// Who runs a batch: a caller with its own call, or a queued caller (its call is among the
/// queued ones, by id) whose turn came.
enum Leader<'a> {
    Caller(&'a mut dyn batch::Call),
    Queued(u64),
}

impl Connections {
    /// Run `job` on the caller's thread in a batch with the calls of its kind that arrive
    /// meanwhile; `None` if it must run on its own.
    pub(super) async fn run_batched<T: Send + 'static, J: Job<T>>(
        &self,
        work: Work,
        sql: &str,
        params: &[Param<'_>],
        job: &J,
    ) -> Result<Option<Result<T, DbError>>, DbError> {
        let batches = self.batches(work);
        Ok(match batches.try_turn() {
            // No one waiting: the call runs as it would alone, holding the turn so that
            // calls arriving meanwhile wait for the next batch.
            Some(turn) if !batches.any_waiting() => {
                let done = self.try_here(work, sql, params, job).await?;
                drop(turn);
                done
            }
            Some(turn) => {
                let mut asked = Asked::new(job, sql, params);
                if self.lead(work, turn, Leader::Caller(&mut asked)).await? {
                    asked.done
                } else {
                    None
                }
            }
            // Boxed, as the path in `run`: each would add its state to every call's future,
            // taking it past the allocator's small sizes (over 1 KiB), though only calls
            // that wait, or that run alone, need it.
            None => {
                Box::pin(batches.wait(sql, params, job, |turn, queued| async move {
                    // An error here is the batch's: its calls were told to run alone.
                    let _ = self.lead(work, turn, Leader::Queued(queued)).await;
                }))
                .await
            }
        })
    }

    /// Holding `turn`, run the calls waiting, oldest first, then the `leader`'s, as one
    /// batch on the caller's thread. Whether the caller's own call ran (its result is in
    /// it); false if it must run on its own.
    async fn lead(
        &self,
        work: Work,
        turn: SemaphorePermit<'_>,
        leader: Leader<'_>,
    ) -> Result<bool, DbError> {
        let batches = self.batches(work);
        let (own, queued) = match leader {
            Leader::Caller(own) => (Some(own), None),
            Leader::Queued(id) => (None, Some(id)),
        };
        if own.is_none() && !batches.any_waiting() {
            return Ok(false);
        }
        let mut lease = match self.lease().await {
            Ok(lease) => lease,
            Err(e) => {
                drop(turn);
                for call in batches.take(queued) {
                    call.run_alone();
                }
                return Err(e);
            }
        };
        let mut waiting = batches.take(queued);
        let started = Instant::now();
        let ran = {
            let mut calls: Vec<&mut dyn batch::Call> = Vec::with_capacity(waiting.len() + 1);
            for call in &mut waiting {
                calls.push(&mut **call);
            }
            if let Some(own) = own {
                calls.push(own);
            }
            batch::run(&mut lease.connection, work, &mut calls)
        };
        let took = started.elapsed();
        // A connection a failed rollback left in a transaction is closed, never reused.
        if lease.connection.is_autocommit() {
            self.idle.give_back(lease);
        }
        drop(turn);
        for call in waiting {
            if ran {
                call.answer();
            } else {
                call.run_alone();
            }
        }
        self.record(work, took);
        Ok(ran)
    }
}
