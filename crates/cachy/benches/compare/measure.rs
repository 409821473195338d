//! Measuring one store: cachy (async and blocking) and each of its peers, for every operation
//! with one caller and with 64.

use std::time::Duration;

use cachy::{CacheManager, Repository};
use cachy_testkit::bench::{User, thread_throughput, throughput, user};

use crate::peers;

const CONCURRENCY: usize = 64;
const MODES: [(&str, usize); 2] = [("1 caller", 1), ("64 callers", CONCURRENCY)];
const OPS: [&str; 2] = ["get", "put"];

/// One measured line: a store, an operation, a number of callers, and each subject's ops/s.
pub struct Row {
    pub store: &'static str,
    pub op: &'static str,
    pub mode: &'static str,
    pub results: Vec<(String, f64)>,
}

/// A raw peer: ops/s for (op, callers).
pub type Raw<'a> = Box<dyn Fn(&str, usize) -> f64 + 'a>;

/// What every cell runs on: the runtime, how long a cell runs, and the Python with cachy
/// 0.3.0 (if this run compares with it).
pub struct Bench {
    pub runtime: tokio::runtime::Runtime,
    pub duration: Duration,
    pub python: Option<String>,
}

impl Bench {
    fn cachy_async(&self, repo: &Repository, op: &str, tasks: usize) -> f64 {
        let repo = repo.clone();
        let get = op == "get";
        throughput(&self.runtime, tasks, self.duration, move || {
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

    fn cachy_blocking(&self, manager: &CacheManager, op: &str, threads: usize) -> f64 {
        let blocking = cachy::blocking::CacheManager::from_async(manager.clone()).unwrap();
        let get = op == "get";
        thread_throughput(
            threads,
            self.duration,
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

    /// Every cell of `store`: cachy, cachy blocking, then the raw peer, Python cachy (on
    /// `python_store`) and the tool, each when given; one printed line per cell.
    pub fn measure(
        &self,
        store: &'static str,
        manager: &CacheManager,
        raw: Option<(&str, Raw<'_>)>,
        python_store: Option<serde_json::Value>,
        tool: Option<(&str, Raw<'_>)>,
    ) -> Vec<Row> {
        let mut rows = Vec::new();
        let repo = manager.store(None).unwrap();
        self.runtime.block_on(repo.put("hit", &user(), 60)).unwrap();
        if let Some(store) = &python_store {
            peers::seed_python(self, store);
        }
        for op in OPS {
            for (mode, callers) in MODES {
                let mut results = vec![
                    ("cachy".to_owned(), self.cachy_async(&repo, op, callers)),
                    (
                        "cachy blocking".to_owned(),
                        self.cachy_blocking(manager, op, callers),
                    ),
                ];
                if let Some((name, raw)) = &raw {
                    results.push(((*name).to_owned(), raw(op, callers)));
                }
                if let Some(store) = &python_store
                    && let Some(ops) = peers::python(self, store, op, callers)
                {
                    results.push(("Python cachy 0.3.0".to_owned(), ops));
                }
                if let Some((name, tool)) = &tool {
                    results.push(((*name).to_owned(), tool(op, callers)));
                }
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
}

fn describe(results: &[(String, f64)]) -> String {
    results
        .iter()
        .map(|(name, ops)| format!("{name}: {ops:.0}/s"))
        .collect::<Vec<_>>()
        .join(", ")
}
