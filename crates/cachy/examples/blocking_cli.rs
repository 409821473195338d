//! A synchronous command-line program on `cachy::blocking::CacheManager` and the file store:
//! no async runtime of its own, no server. Each run is a new process, so running it twice
//! shows the cache crossing processes: `put` in one run, `get` in the next. It also shows
//! `remember` (the `report` command) and a sync `#[cached]` function (`square`).
//!
//! ```sh
//! cargo run --example blocking_cli -- put greeting hello
//! cargo run --example blocking_cli -- get greeting          # "hello" (exit status 1 on a miss)
//! cargo run --example blocking_cli -- incr visits           # 1, then 2, ...
//! cargo run --example blocking_cli -- report                # computed once, then cached
//! cargo run --example blocking_cli -- square 12             # computed once, then cached
//! cargo run --example blocking_cli -- --dir /tmp/my-cache get greeting
//! ```
//!
//! The cache folder is `--dir DIR`, or `$TMPDIR/cachy-blocking-cli`. Values are JSON on the
//! command line (`put n 42`, `put tags '["a","b"]'`); anything that is not JSON is a string.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cachy::blocking::CacheManager;
use cachy::cached;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const USAGE: &str = "usage: blocking_cli [--dir DIR] COMMAND
commands:
  get KEY                   print the value under KEY as JSON (exit status 1 on a miss)
  put KEY VALUE [MINUTES]   store VALUE (JSON, else a string) for MINUTES (default 10)
  incr KEY [BY]             add BY (default 1) to the counter under KEY and print it
  forget KEY                remove KEY
  report                    a slow report, through `remember` (cached for a minute)
  square N                  N * N, through a sync #[cached] function (cached for 5 minutes)";

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    files: usize,
    generated_by: u32,
}

/// A slow sync function, memoized in the global manager's default store. It says on stderr
/// when it really runs.
#[cached(minutes = 5)]
fn square(n: i64) -> i64 {
    eprintln!("(computing square({n}))");
    std::thread::sleep(Duration::from_millis(200));
    n.saturating_mul(n)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let folder = match args.iter().position(|arg| arg == "--dir") {
        Some(at) if at + 1 < args.len() => {
            let folder = PathBuf::from(args.remove(at + 1));
            args.remove(at);
            folder
        }
        Some(_) => return usage("--dir needs a folder"),
        None => std::env::temp_dir().join("cachy-blocking-cli"),
    };
    let cache = match CacheManager::from_value(serde_json::json!({
        "stores": { "file": { "driver": "file", "path": folder } }
    })) {
        Ok(cache) => cache,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // The sync #[cached] function uses the global manager: the async manager behind ours.
    if let Err(error) = cachy::set_global(cache.as_async().clone()) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&cache, &args) {
        Ok(code) => code,
        Err(error) => {
            // Every cachy error has a kind to match on; here, report it and fail.
            eprintln!("error ({}): {error}", error.kind());
            ExitCode::from(2)
        }
    }
}

fn run(cache: &CacheManager, args: &[&str]) -> cachy::Result<ExitCode> {
    match args {
        ["get", key] => match cache.get::<Value>(key)? {
            Some(value) => println!("{value}"),
            None => {
                eprintln!("{key}: not in the cache");
                return Ok(ExitCode::from(1));
            }
        },
        ["put", key, value, minutes @ ..] if minutes.len() <= 1 => {
            let minutes: i64 = match minutes.first().map(|m| m.parse()) {
                None => 10,
                Some(Ok(minutes)) => minutes,
                Some(Err(_)) => return Ok(usage("MINUTES must be a whole number")),
            };
            let value: Value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String((*value).into()));
            cache.put(key, &value, minutes)?;
            println!("stored {key} = {value} for {minutes} minutes");
        }
        ["incr", key, by @ ..] if by.len() <= 1 => {
            let by: i64 = match by.first().map(|by| by.parse()) {
                None => 1,
                Some(Ok(by)) => by,
                Some(Err(_)) => return Ok(usage("BY must be a whole number")),
            };
            println!("{}", cache.increment_by(key, by)?);
        }
        ["forget", key] => println!("{}", cache.forget(key)?),
        ["report"] => {
            let report: Report = cache.remember("report", Duration::from_secs(60), || {
                eprintln!("(computing the report)");
                std::thread::sleep(Duration::from_millis(200));
                Ok::<_, cachy::Error>(Report {
                    files: 3,
                    generated_by: std::process::id(),
                })
            })?;
            println!(
                "report: {} files, generated by process {}{}",
                report.files,
                report.generated_by,
                if report.generated_by == std::process::id() {
                    " (this one)"
                } else {
                    " (an earlier run: from the cache)"
                }
            );
        }
        ["square", n] => match n.parse::<i64>() {
            Ok(n) => println!("{}", square(n)),
            Err(_) => return Ok(usage("N must be a whole number")),
        },
        [] => return Ok(usage("no command")),
        _ => return Ok(usage("unknown command or wrong arguments")),
    }
    Ok(ExitCode::SUCCESS)
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("error: {problem}\n{USAGE}");
    ExitCode::from(2)
}
