//! `cachy`: read, write, inspect and maintain the stores of a cachy configuration from the
//! shell.
//!
//! ```text
//! cachy --config cache.toml get user:1
//! cachy --config cache.toml --store redis put greeting '"hello"' --minutes 10
//! cachy --config cache.toml --store sql create-table
//! cachy --config cache.toml --store redis stats --json
//! cachy --config cache.toml --store sql keys 'user:*'
//! cachy --config cache.toml ttl session:42
//! CACHY_CONFIG=cache.toml cachy flush --yes
//! cachy simulate keys.log --capacities 1000,10000,100000
//! ```
//!
//! Values are JSON on the command line and on output (a `put` value that is not valid JSON is
//! stored as a string). With `--json` every command prints one JSON document on stdout, and
//! an error is one JSON document on stderr. Progress bars go to stderr only, and only when
//! it is a terminal unless `--progress always`. Exit codes: 0 done, 1 a miss (`get`, `has`,
//! `ttl`, which also says so on stderr in text mode), 2 an error, which is printed with what
//! was wrong. `flush` asks first when its input is a terminal, unless `--yes`.

#![warn(missing_docs)]

mod inspect;
mod output;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cachy::{CacheManager, Expiry, Lifetime};
use clap::{Parser, Subcommand};
use serde_json::json;

use output::{Failure, Output, ProgressMode};

/// Read, write, inspect and maintain the stores of a cachy configuration.
#[derive(Parser)]
#[command(name = "cachy", version)]
struct Cli {
    /// The configuration file (TOML, JSON or YAML, by its extension).
    #[arg(short, long, env = "CACHY_CONFIG", default_value = "cache.toml")]
    config: PathBuf,
    /// The store to use (default: the configuration's default store).
    #[arg(short, long)]
    store: Option<String>,
    /// Print one JSON document on stdout instead of text (and errors as JSON on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// When to draw progress on stderr: `auto` draws only when stderr is a terminal.
    #[arg(long, value_enum, default_value_t, global = true)]
    progress: ProgressMode,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the value under KEY as JSON (exit code 1 on a miss).
    Get {
        /// The key, as the application uses it.
        key: String,
    },
    /// Whether KEY holds a value (exit code 1 if not).
    Has {
        /// The key, as the application uses it.
        key: String,
    },
    /// Store VALUE (JSON, else taken as a string) under KEY.
    Put {
        /// The key, as the application uses it.
        key: String,
        /// The value: JSON (`42`, `"text"`, `{"a": 1}`), else taken as a string.
        value: String,
        /// Keep it this many minutes, at least 1 (the default: the store's default cache
        /// time).
        #[arg(long, conflicts_with_all = ["seconds", "forever"])]
        minutes: Option<i64>,
        /// Keep it this many seconds, at least 1.
        #[arg(long, conflicts_with = "forever")]
        seconds: Option<i64>,
        /// Keep it until it is forgotten or flushed.
        #[arg(long)]
        forever: bool,
    },
    /// Remove KEY (prints whether something was removed).
    Forget {
        /// The key, as the application uses it.
        key: String,
    },
    /// Add BY (default 1) to the counter under KEY and print the result.
    Increment {
        /// The counter's key.
        key: String,
        /// What to add (negative to subtract).
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        by: i64,
    },
    /// Print how long KEY has left: seconds (`42.5`), `forever`, or `unknown` where the
    /// store cannot tell (exit code 1 on a miss).
    Ttl {
        /// The key, as the application uses it.
        key: String,
    },
    /// Print what the store holds: keys (Redis), live and expired rows (database) or files
    /// (file), with their bytes; memcached's counters per server.
    Stats,
    /// List the keys that match the glob PATTERN (`*`, `?` for one byte, `[abc]`, `[^a-z]`,
    /// `\` before a character taken as itself), as they are found: Redis (in SCAN's order,
    /// a key possibly twice while Redis resizes; pipe through `sort -u`) and database
    /// stores (sorted). Keys over 250 bytes show as the database stores them, `cachy:sha1:`
    /// and a digest.
    Keys {
        /// The glob the keys must match (default: every key).
        #[arg(default_value = "*")]
        pattern: String,
    },
    /// Remove every item of the store. On a terminal it asks first, unless `--yes`.
    Flush {
        /// Flush without asking.
        #[arg(long, short)]
        yes: bool,
    },
    /// Create the cache table of a `database` store.
    CreateTable,
    /// Delete the expired rows of a `database` store, or the expired values and the
    /// temporary files that writes killed mid-way left over a minute ago in a `file` store
    /// (prints how many).
    Prune,
    /// Replay TRACE (one key per line, as your application reads them; `-` for standard
    /// input) through the memory store's eviction policy at several capacities and print
    /// the hit ratio of each, to size a cache from your own logs. Needs no configuration.
    Simulate {
        /// The trace: one key per line (`-`: standard input).
        trace: PathBuf,
        /// The capacities to try, in entries, comma-separated (default: 1%, 2%, 5%, 10%,
        /// 20% and 50% of the trace's distinct keys).
        #[arg(long, value_delimiter = ',')]
        capacities: Vec<u64>,
    },
}

/// Whether the person at the terminal answers yes to `question`; `true` without one (a
/// script, a pipe), where there is nobody to ask.
fn confirmed(question: &str) -> Result<bool, Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    let mut stderr = std::io::stderr();
    let mut answer = String::new();
    write!(stderr, "{question} [y/N] ")
        .and_then(|()| stderr.flush())
        .and_then(|()| std::io::stdin().lock().read_line(&mut answer))
        .map_err(|e| Failure(cachy::Error::backend("cannot ask at the terminal", e)))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

/// Seconds with millisecond precision, as printed (`42.5`).
fn seconds(duration: Duration) -> f64 {
    duration.as_millis() as f64 / 1000.0
}

async fn run(cli: Cli, out: &Output) -> Result<ExitCode, Failure> {
    if let Command::Simulate { trace, capacities } = &cli.command {
        simulate::simulate(trace, capacities, out).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let manager = CacheManager::from_file(&cli.config)?;
    let repository = manager.store(cli.store.as_deref())?;
    let name = repository.name();
    let miss = |found: bool| {
        if found {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    };
    match cli.command {
        Command::Get { key } => {
            let value = repository.get::<serde_json::Value>(&key).await?;
            let text = value.as_ref().map(ToString::to_string).unwrap_or_default();
            let document = match &value {
                Some(value) => json!({ "store": name, "key": key, "found": true, "value": value }),
                None => json!({ "store": name, "key": key, "found": false }),
            };
            out.print(&text, document)?;
            if value.is_none() {
                out.note(&format!("no value under `{key}` in store `{name}`"));
            }
            return Ok(miss(value.is_some()));
        }
        Command::Has { key } => {
            let found = repository.has(&key).await?;
            out.print("", json!({ "store": name, "key": key, "found": found }))?;
            return Ok(miss(found));
        }
        Command::Put {
            key,
            value,
            minutes,
            seconds,
            forever,
        } => {
            if let Some((flag, amount)) = [("--minutes", minutes), ("--seconds", seconds)]
                .into_iter()
                .find_map(|(flag, amount)| amount.filter(|n| *n <= 0).map(|n| (flag, n)))
            {
                return Err(Failure(
                    cachy::Error::new(
                        cachy::ErrorKind::InvalidInput,
                        format!(
                            "`{flag} {amount}` would remove `{key}` instead of storing it; \
                             give a lifetime of at least 1, or use `cachy forget {key}`"
                        ),
                    )
                    .with_store(name),
                ));
            }
            let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
            let stored = if forever {
                repository.forever(&key, &value).await?;
                true
            } else {
                let expiry = match seconds {
                    Some(seconds) => Expiry::Seconds(seconds),
                    None => {
                        Expiry::Minutes(minutes.unwrap_or_else(|| repository.default_cache_time()))
                    }
                };
                repository.put(&key, &value, expiry).await?;
                // A lifetime of zero or less removes the key instead.
                expiry.ttl().is_some()
            };
            out.print("", json!({ "store": name, "key": key, "stored": stored }))?;
        }
        Command::Forget { key } => {
            let removed = repository.forget(&key).await?;
            out.print(
                &removed.to_string(),
                json!({ "store": name, "key": key, "removed": removed }),
            )?;
        }
        Command::Increment { key, by } => {
            let value = repository.increment_by(&key, by).await?;
            out.print(
                &value.to_string(),
                json!({ "store": name, "key": key, "value": value }),
            )?;
        }
        Command::Ttl { key } => {
            let stored = repository.tagged_key(&key).await?;
            let found = repository
                .store()
                .get_with_lifetime(&stored)
                .await
                .map_err(|e| e.with_store(name).with_key(&key))?;
            let Some((_, lifetime)) = found else {
                out.print("", json!({ "store": name, "key": key, "found": false }))?;
                out.note(&format!("no value under `{key}` in store `{name}`"));
                return Ok(miss(false));
            };
            let (text, kind, left) = match lifetime {
                Lifetime::Forever => ("forever".to_owned(), "forever", None),
                Lifetime::Remaining(left) => {
                    let left = seconds(left);
                    (left.to_string(), "remaining", Some(left))
                }
                Lifetime::Unknown => ("unknown".to_owned(), "unknown", None),
            };
            out.print(
                &text,
                json!({
                    "store": name, "key": key, "found": true, "lifetime": kind, "seconds": left,
                }),
            )?;
        }
        Command::Stats => inspect::stats(&repository, out).await?,
        Command::Keys { pattern } => inspect::keys(&repository, &pattern, out).await?,
        Command::Flush { yes } => {
            if !yes && !confirmed(&format!("remove every item of store `{name}`?"))? {
                return Err(Failure(
                    cachy::Error::new(
                        cachy::ErrorKind::InvalidInput,
                        "not flushed: the answer was not yes (`--yes` flushes without asking)",
                    )
                    .with_store(name),
                ));
            }
            inspect::flush(&repository, out).await?;
        }
        Command::CreateTable => inspect::create_table(&repository, out).await?,
        Command::Prune => inspect::prune(&repository, out).await?,
        Command::Simulate { .. } => unreachable!("answered before the configuration is read"),
    }
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.json, cli.progress);
    match run(cli, &out).await {
        Ok(code) => code,
        Err(Failure(error)) => {
            out.error(&error);
            ExitCode::from(2)
        }
    }
}
