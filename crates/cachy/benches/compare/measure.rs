//! Measuring one store: cachy (async and blocking) and each of its peers, for every operation
//! with one caller and with 64, in interleaved rounds.
//!
//! A cell (store, operation, callers) is measured in `rounds` rounds; in each round every
//! subject of the cell runs one window in turn (cachy, peer, cachy blocking, …), the order
//! rotated by one each round, so that a slow spell of the machine falls on several subjects
//! instead of on one. A subject's result is the median of its rounds with their min–max;
//! a ratio is the median of the per-round ratios (cachy over the subject, same round).

use std::time::Duration;

use cachy::{CacheManager, Repository};
use cachy_testkit::bench::{User, thread_throughput, throughput, user};

use crate::peers;

const CONCURRENCY: usize = 64;
const MODES: [(&str, usize); 2] = [("1 caller", 1), ("64 callers", CONCURRENCY)];
const OPS: [&str; 2] = ["get", "put"];
/// Above this spread ((max - min) / median, of ops/s or of the ratio) a line is marked noisy.
pub const NOISY: f64 = 0.15;

/// The median, lowest and highest of some measurements.
#[derive(Clone, Copy)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// `None` if there are no values.
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// (max - min) / median.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// One subject of a cell: its ops/s over the rounds, and cachy's ratio to it over the rounds
/// (`None` for cachy itself).
pub struct Measured {
    pub name: String,
    pub ops: Stats,
    pub ratio: Option<Stats>,
}

impl Measured {
    /// Whether the ops/s or the ratio spread more than [`NOISY`] over the rounds.
    pub fn noisy(&self) -> bool {
        self.ops.spread() > NOISY || self.ratio.is_some_and(|r| r.spread() > NOISY)
    }
}

/// One measured cell: a store, an operation, a number of callers, and each subject's result.
pub struct Row {
    pub store: &'static str,
    pub op: &'static str,
    pub mode: &'static str,
    pub results: Vec<Measured>,
}

/// A peer's measurement: ops/s for (op, callers, window); `None` if it could not run.
pub type Raw<'a> = Box<dyn Fn(&str, usize, Duration) -> Option<f64> + 'a>;

/// Something cachy is compared with.
pub struct Peer<'a> {
    pub name: String,
    /// The operations it runs (a peer may exist for `put` only).
    pub ops: &'static [&'static str],
    /// Whether it gets a short unrecorded window before a cell's rounds (not for peers that
    /// start a fresh process each window: they have nothing to warm).
    pub warm_up: bool,
    pub run: Raw<'a>,
}

impl<'a> Peer<'a> {
    /// A peer of every operation.
    pub fn new(name: impl Into<String>, run: Raw<'a>) -> Self {
        Peer {
            name: name.into(),
            ops: &OPS,
            warm_up: true,
            run,
        }
    }

    /// A peer of `ops` only.
    pub fn only(mut self, ops: &'static [&'static str]) -> Self {
        self.ops = ops;
        self
    }

    /// A peer that is not warmed up (an external process).
    pub fn cold(mut self) -> Self {
        self.warm_up = false;
        self
    }
}

/// What every cell runs on: the runtime, the window and number of rounds, and the Python with
/// cachy 0.3.0 (if this run compares with it).
pub struct Bench {
    pub runtime: tokio::runtime::Runtime,
    /// How long one subject runs in one round.
    pub duration: Duration,
    pub rounds: usize,
    /// The unrecorded window each subject gets before a cell's rounds (zero: none).
    pub warm_up: Duration,
    pub python: Option<String>,
}

impl Bench {
    fn cachy_async(&self, repo: &Repository, op: &str, tasks: usize, duration: Duration) -> f64 {
        let repo = repo.clone();
        let get = op == "get";
        throughput(&self.runtime, tasks, duration, move || {
            let repo = repo.clone();
            async move {
                if get {
                    repo.get::<User>("hit").await.unwrap().unwrap();
                } else {
                    repo.put("put", &user(), 60).await.unwrap();
                }
            }
        })
    }

    fn cachy_blocking(
        &self,
        blocking: &cachy::blocking::CacheManager,
        op: &str,
        threads: usize,
        duration: Duration,
    ) -> f64 {
        let blocking = blocking.clone();
        let get = op == "get";
        thread_throughput(
            threads,
            duration,
            move || blocking.clone(),
            move |cache| {
                if get {
                    cache.get::<User>("hit").unwrap().unwrap();
                } else {
                    cache.put("put", &user(), 60).unwrap();
                }
            },
        )
    }

    /// Every cell of `store`: cachy, cachy blocking, then the `peers`, Python cachy (on
    /// `python_store`) and the `tools`, each measured in interleaved rounds; one printed line
    /// per cell.
    pub fn measure(
        &self,
        store: &'static str,
        manager: &CacheManager,
        peers: Vec<Peer<'_>>,
        python_store: Option<serde_json::Value>,
        tools: Vec<Peer<'_>>,
    ) -> Vec<Row> {
        let mut rows = Vec::new();
        let repo = manager.store(None).unwrap();
        self.runtime.block_on(repo.put("hit", &user(), 60)).unwrap();
        if let Some(store) = &python_store {
            peers::seed_python(self, store);
        }
        let blocking = cachy::blocking::CacheManager::from_async(manager.clone()).unwrap();
        let mut subjects: Vec<Peer<'_>> = vec![
            Peer::new(
                "cachy",
                Box::new(|op, callers, duration| {
                    Some(self.cachy_async(&repo, op, callers, duration))
                }),
            ),
            Peer::new(
                "cachy blocking",
                Box::new(|op, callers, duration| {
                    Some(self.cachy_blocking(&blocking, op, callers, duration))
                }),
            ),
        ];
        subjects.extend(peers);
        if let Some(store) = python_store {
            subjects.push(
                Peer::new(
                    "Python cachy 0.3.0",
                    Box::new(move |op, callers, duration| {
                        peers::python(self, &store, op, callers, duration)
                    }),
                )
                .cold(),
            );
        }
        subjects.extend(tools);
        for op in OPS {
            for (mode, callers) in MODES {
                let cell: Vec<&Peer<'_>> =
                    subjects.iter().filter(|s| s.ops.contains(&op)).collect();
                let results = self.rounds(&cell, op, callers);
                println!("{store:10} {op:4} {mode:11} {}", describe(&results));
                rows.push(Row {
                    store,
                    op,
                    mode,
                    results,
                });
            }
        }
        rows
    }

    /// One cell: a warm-up window per subject, then `rounds` rounds of every subject in turn,
    /// starting one further each round.
    fn rounds(&self, cell: &[&Peer<'_>], op: &str, callers: usize) -> Vec<Measured> {
        if !self.warm_up.is_zero() {
            for subject in cell.iter().filter(|s| s.warm_up) {
                (subject.run)(op, callers, self.warm_up);
            }
        }
        // measured[subject][round]: ops/s, `None` if it could not run that round.
        let mut measured = vec![Vec::with_capacity(self.rounds); cell.len()];
        for round in 0..self.rounds {
            for turn in 0..cell.len() {
                let index = (round + turn) % cell.len();
                measured[index].push((cell[index].run)(op, callers, self.duration));
            }
        }
        let ours = &measured[0];
        cell.iter()
            .zip(&measured)
            .enumerate()
            .filter_map(|(index, (subject, rounds))| {
                let ops = Stats::of(&rounds.iter().flatten().copied().collect::<Vec<_>>())?;
                let ratio = (index > 0)
                    .then(|| {
                        let ratios: Vec<f64> = ours
                            .iter()
                            .zip(rounds)
                            .filter_map(|(ours, theirs)| Some(ours.as_ref()? / theirs.as_ref()?))
                            .collect();
                        Stats::of(&ratios)
                    })
                    .flatten();
                Some(Measured {
                    name: subject.name.clone(),
                    ops,
                    ratio,
                })
            })
            .collect()
    }
}

fn describe(results: &[Measured]) -> String {
    results
        .iter()
        .map(|m| {
            format!(
                "{}: {:.0}/s ({:.0}% spread){}",
                m.name,
                m.ops.median,
                m.ops.spread() * 100.0,
                if m.noisy() { " ~" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
