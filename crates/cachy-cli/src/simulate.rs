//! `cachy simulate`: replay a trace of keys through the memory store's eviction policy at
//! several capacities, so a team can size its cache from its own logs.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use cachy::Store;
use cachy::stores::MemoryStore;
use serde_json::json;

use crate::output::{Failure, Output};

/// The shares of the distinct keys tried when no capacity is given.
const DEFAULT_SHARES: [f64; 6] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5];

/// Read the keys of `trace` (one per line, blank lines skipped; `-`: standard input).
fn read_trace(trace: &Path) -> Result<Vec<String>, Failure> {
    let failed = |e: std::io::Error| {
        Failure(cachy::Error::new(
            cachy::ErrorKind::InvalidInput,
            format!("cannot read the trace {}: {e}", trace.display()),
        ))
    };
    let reader: Box<dyn BufRead> = if trace == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(trace).map_err(failed)?,
        ))
    };
    let mut keys = Vec::new();
    for line in reader.lines() {
        let line = line.map_err(failed)?;
        let key = line.trim_end_matches('\r');
        if !key.is_empty() {
            keys.push(key.to_owned());
        }
    }
    Ok(keys)
}

/// The share of `keys` a store bounded at `capacity` entries answers, each key read and
/// written on a miss, as an application's `remember` would.
async fn hit_ratio(keys: &[String], capacity: u64) -> Result<f64, Failure> {
    let store = MemoryStore::with_max_entries(capacity);
    let mut hits = 0u64;
    for key in keys {
        if store.get(key).await?.is_some() {
            hits += 1;
        } else {
            store.put(key, b"", None).await?;
        }
    }
    Ok(hits as f64 / keys.len() as f64)
}

/// Replay `trace` at `capacities` (default: shares of its distinct keys) and print each hit
/// ratio, with the ceiling no capacity passes (every key's first request misses).
pub(crate) async fn simulate(
    trace: &Path,
    capacities: &[u64],
    out: &Output,
) -> Result<(), Failure> {
    let keys = read_trace(trace)?;
    if keys.is_empty() {
        return Err(Failure(cachy::Error::new(
            cachy::ErrorKind::InvalidInput,
            format!(
                "the trace {} holds no key (one key per line)",
                trace.display()
            ),
        )));
    }
    if let Some(zero) = capacities.iter().find(|&&capacity| capacity == 0) {
        return Err(Failure(cachy::Error::new(
            cachy::ErrorKind::InvalidInput,
            format!("a capacity of {zero} entries holds nothing; give at least 1"),
        )));
    }
    let distinct = keys.iter().collect::<HashSet<_>>().len() as u64;
    let mut capacities = if capacities.is_empty() {
        DEFAULT_SHARES
            .iter()
            .map(|share| ((distinct as f64 * share).round() as u64).max(1))
            .collect()
    } else {
        capacities.to_vec()
    };
    capacities.sort_unstable();
    capacities.dedup();
    let ceiling = 1.0 - distinct as f64 / keys.len() as f64;
    let mut rows = Vec::new();
    let mut text = format!(
        "{} requests, {distinct} distinct keys; no capacity hits more than {:.2}%\n\
         entries  hit ratio",
        keys.len(),
        100.0 * ceiling
    );
    for capacity in capacities {
        let ratio = hit_ratio(&keys, capacity).await?;
        text.push_str(&format!("\n{capacity:>7}  {:>8.2}%", 100.0 * ratio));
        rows.push(json!({ "entries": capacity, "hit_ratio": ratio }));
    }
    out.print(
        &text,
        json!({
            "requests": keys.len(),
            "distinct_keys": distinct,
            "ceiling": ceiling,
            "capacities": rows,
        }),
    )
}
