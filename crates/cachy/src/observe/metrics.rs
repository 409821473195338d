//! Metric handles, registered on first use of each series (feature `metrics`).

use std::sync::OnceLock;

use super::operation::{EvictionCause, Operation, Outcome};
use crate::error::ErrorKind;

const OUTCOMES: usize = 11;
const OPERATIONS: usize = Operation::Evict as usize + 1;
const CAUSES: usize = 4;

#[derive(Default)]
pub(super) struct Handles {
    requests: [[OnceLock<metrics::Counter>; OUTCOMES]; OPERATIONS],
    errors: std::sync::Mutex<Vec<((Operation, ErrorKind), metrics::Counter)>>,
    durations: [OnceLock<metrics::Histogram>; OPERATIONS],
    evictions: [OnceLock<metrics::Counter>; CAUSES],
}

fn index(operation: Operation) -> usize {
    operation as usize
}

fn outcome_index(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Hit => 0,
        Outcome::Miss => 1,
        Outcome::Stale => 2,
        Outcome::Written => 3,
        Outcome::Removed => 4,
        Outcome::Unchanged => 5,
        Outcome::Done => 6,
        Outcome::Failed(_) => 7,
        Outcome::Computed => 8,
        Outcome::FactoryFailed => 9,
        Outcome::Evicted(_) => 10,
    }
}

impl Handles {
    pub(super) fn count(&self, store: &str, operation: Operation, outcome: Outcome) {
        self.requests[index(operation)][outcome_index(outcome)]
            .get_or_init(|| {
                metrics::counter!(
                    "cachy.requests",
                    "store" => store.to_owned(),
                    "operation" => operation.name(),
                    "outcome" => outcome.name(),
                )
            })
            .increment(1);
        if let Outcome::Failed(kind) = outcome {
            let mut errors = self
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let counter = match errors.iter().find(|(k, _)| *k == (operation, kind)) {
                Some((_, counter)) => counter.clone(),
                None => {
                    let counter = metrics::counter!(
                        "cachy.errors",
                        "store" => store.to_owned(),
                        "operation" => operation.name(),
                        "error.type" => kind.name(),
                    );
                    errors.push(((operation, kind), counter.clone()));
                    counter
                }
            };
            counter.increment(1);
        }
    }

    pub(super) fn evicted(&self, store: &str, cause: EvictionCause) {
        let index = match cause {
            EvictionCause::Size => 0,
            EvictionCause::Expired => 1,
            EvictionCause::Replaced => 2,
            EvictionCause::Removed => 3,
        };
        self.evictions[index]
            .get_or_init(|| {
                metrics::counter!(
                    "cachy.evictions",
                    "store" => store.to_owned(),
                    "cause" => cause.name(),
                )
            })
            .increment(1);
    }

    pub(super) fn duration(&self, store: &str, operation: Operation) -> &metrics::Histogram {
        self.durations[index(operation)].get_or_init(|| {
            metrics::histogram!(
                "cachy.operation.duration",
                "store" => store.to_owned(),
                "operation" => operation.name(),
            )
        })
    }
}
