//! The hit ratio: traces replayed through the memory store and, in the same run, through an
//! exact LRU, moka and quick_cache at the same capacities (key = the request's number, insert
//! on a miss). A cache is judged first by how often it hits.
//!
//! `./scripts/bench-hitratio` decompresses the ARC traces of `bench/traces/` and runs this
//! in release, writing `bench/results/hitratio.md`. Without `--bench` (`cargo test --bench
//! hitratio`) each trace is cut to its first 100,000 requests, to check that it runs.
//! `CACHY_HITRATIO_ONLY=<parts of a trace's name, separated by |>` replays only the matching
//! traces and prints their table without writing it (a part would replace the whole set's
//! file); `CACHY_HITRATIO_UNSEEN=1` replays the second set instead (the ARC traces reversed
//! and cut in half, and other synthetic shapes), writing `bench/results/hitratio-unseen.md`;
//! `CACHY_HITRATIO_THIRD=1` a third (synthetic shapes neither has: two tenants, temporal
//! locality, a drifting ranking, short runs, one-hit wonders), `bench/results/hitratio-third.md`;
//! `CACHY_HITRATIO_FOURTH=1` a fourth, written by a review before any result was seen (a
//! changing Zipf exponent, daily cycles, mixed loops, an LRU stack model, a crossfading hot
//! set, bursts, tenants of different churn, a web service's sessions),
//! `bench/results/hitratio-fourth.md`.

mod policies;
mod traces;

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Instant;

use traces::Trace;

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let folder = std::env::var_os("CACHY_TRACES").map(PathBuf::from);
    let mut all: Vec<Trace> = Vec::new();
    match &folder {
        Some(folder) => {
            for (file, name, capacities) in [
                (
                    "OLTP.lis",
                    "ARC OLTP",
                    &[1_000u64, 2_000, 5_000, 10_000][..],
                ),
                ("P12.lis", "ARC P12", &[32_768, 131_072][..]),
            ] {
                match traces::arc(&folder.join(file), name, capacities) {
                    Some(trace) => all.push(trace),
                    None => eprintln!("{} is missing: skipped", folder.join(file).display()),
                }
            }
        }
        None => eprintln!("CACHY_TRACES is not set: the ARC traces are skipped"),
    }
    // `CACHY_HITRATIO_UNSEEN=1`: a second set, to check that the policy holds on traces
    // it was not designed against (the first set's are the ARC traces reversed and cut in
    // half, and synthetic ones of other shapes), instead of the first.
    let unseen = std::env::var_os("CACHY_HITRATIO_UNSEEN").is_some();
    // `CACHY_HITRATIO_THIRD=1`: a third set, of shapes neither of the others has, written
    // before the policy was measured on it and not tuned against (synthetic only).
    let third = std::env::var_os("CACHY_HITRATIO_THIRD").is_some();
    // `CACHY_HITRATIO_FOURTH=1`: a fourth set, written by a review before any result was
    // seen and not tuned against (synthetic only).
    let fourth = std::env::var_os("CACHY_HITRATIO_FOURTH").is_some();
    if fourth {
        all = traces::fourth();
    } else if third {
        all = traces::third();
    } else if unseen {
        let mut derived = Vec::new();
        for trace in &all {
            let mut reversed = trace.keys.clone();
            reversed.reverse();
            derived.push(Trace {
                name: format!("U {} reversed", trace.name),
                keys: reversed,
                capacities: trace.capacities.clone(),
            });
            derived.push(Trace {
                name: format!("U {} second half", trace.name),
                keys: trace.keys[trace.keys.len() / 2..].to_vec(),
                capacities: trace.capacities.clone(),
            });
        }
        all = derived;
        all.extend(traces::unseen());
    } else {
        all.extend(traces::synthetic());
    }
    // `CACHY_HITRATIO_ONLY='loop|Zipf 1'` replays only the traces whose name holds one of
    // the `|`-separated words, and only prints their table.
    let only = std::env::var("CACHY_HITRATIO_ONLY").ok();
    if let Some(only) = &only {
        all.retain(|trace| only.split('|').any(|word| trace.name.contains(word)));
    }
    if !measuring {
        for trace in &mut all {
            trace.keys.truncate(100_000);
        }
    }

    let policies = policies::all();
    let mut table = String::from("| trace | requests | capacity |");
    for (name, _) in &policies {
        write!(table, " {name} |").unwrap();
    }
    table.push_str(" cachy − best peer |\n|---|---:|---:|");
    for _ in 0..=policies.len() {
        table.push_str("---:|");
    }
    table.push('\n');
    for trace in &all {
        for &capacity in &trace.capacities {
            let ratios: Vec<f64> = policies
                .iter()
                .map(|(name, make)| {
                    let started = Instant::now();
                    let mut policy = make(capacity);
                    let hits = trace.keys.iter().filter(|&&key| policy.access(key)).count();
                    let ratio = 100.0 * hits as f64 / trace.keys.len() as f64;
                    eprintln!(
                        "{} at {capacity}, {name}: {ratio:.2}% ({:.1} s)",
                        trace.name,
                        started.elapsed().as_secs_f64()
                    );
                    ratio
                })
                .collect();
            let best_peer = ratios[1..].iter().copied().fold(f64::MIN, f64::max);
            write!(
                table,
                "| {} | {} | {capacity} |",
                trace.name,
                trace.keys.len()
            )
            .unwrap();
            for ratio in &ratios {
                write!(table, " {ratio:.2}% |").unwrap();
            }
            writeln!(table, " {:+.2} |", ratios[0] - best_peer).unwrap();
        }
    }
    println!("{table}");
    if measuring && only.is_none() {
        let results = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
        std::fs::create_dir_all(&results).unwrap();
        let document = format!(
            "# Hit ratio\n\nHits per request, replaying each trace once (insert on a miss). \
             The ARC traces are from Megiddo and Modha, \"ARC: A Self-Tuning, Low Overhead \
             Replacement Cache\", USENIX FAST 03.\n\n{table}"
        );
        let file = if fourth {
            "hitratio-fourth.md"
        } else if third {
            "hitratio-third.md"
        } else if unseen {
            "hitratio-unseen.md"
        } else {
            "hitratio.md"
        };
        std::fs::write(results.join(file), document).unwrap();
    }
}
