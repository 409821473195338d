//! `cachy`: read, write and maintain the stores of a cachy configuration from the shell.
//!
//! ```text
//! cachy --config cache.toml get user:1
//! cachy --config cache.toml --store redis put greeting '"hello"' --minutes 10
//! cachy --config cache.toml --store sql create-table
//! ```
//!
//! Values are JSON on the command line and on output (a `put` value that is not valid JSON is
//! stored as a string). Exit codes: 0 done, 1 a miss (`get`, `has`), 2 an error, which is
//! printed with what was wrong.

#![warn(missing_docs)]

use std::any::Any;
use std::path::PathBuf;
use std::process::ExitCode;

use cachy::stores::DatabaseStore;
use cachy::{CacheManager, Expiry, Repository};
use clap::{Parser, Subcommand};

/// Read, write and maintain the stores of a cachy configuration.
#[derive(Parser)]
#[command(name = "cachy", version)]
struct Cli {
    /// The configuration file (TOML, JSON or YAML, by its extension).
    #[arg(short, long, default_value = "cache.toml")]
    config: PathBuf,
    /// The store to use (default: the configuration's default store).
    #[arg(short, long)]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the value under KEY as JSON (exit code 1 on a miss).
    Get { key: String },
    /// Whether KEY holds a value (exit code 1 if not).
    Has { key: String },
    /// Store VALUE (JSON, else taken as a string) under KEY.
    Put {
        key: String,
        value: String,
        /// Keep it this many minutes (the default: the store's default cache time).
        #[arg(long, conflicts_with_all = ["seconds", "forever"])]
        minutes: Option<i64>,
        /// Keep it this many seconds.
        #[arg(long, conflicts_with = "forever")]
        seconds: Option<i64>,
        /// Keep it until it is forgotten or flushed.
        #[arg(long)]
        forever: bool,
    },
    /// Remove KEY (prints whether something was removed).
    Forget { key: String },
    /// Add BY (default 1) to the counter under KEY and print the result.
    Increment {
        key: String,
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        by: i64,
    },
    /// Remove every item of the store.
    Flush,
    /// Create the cache table of a `database` store.
    CreateTable,
    /// Delete the expired rows of a `database` store (prints how many).
    Prune,
}

/// A failure, printed on stderr with exit code 2.
struct Failure(String);

impl From<cachy::Error> for Failure {
    fn from(e: cachy::Error) -> Self {
        Failure(e.to_string())
    }
}

/// The database store under the manager's own repository of a store (no second store, nor
/// connection pool, is built for a command); an error if the store has another driver.
fn database(repository: &Repository) -> Result<&DatabaseStore, Failure> {
    let backend: &dyn Any = &**repository.store();
    backend.downcast_ref().ok_or_else(|| {
        Failure(format!(
            "store `{}` is not a `database` store; this command needs one",
            repository.name()
        ))
    })
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let manager = CacheManager::from_file(&cli.config)?;
    let store = cli.store.as_deref();
    let repository = || -> Result<Repository, Failure> { Ok(manager.store(store)?) };
    match cli.command {
        Command::Get { key } => match repository()?.get::<serde_json::Value>(&key).await? {
            Some(value) => println!("{value}"),
            None => return Ok(ExitCode::from(1)),
        },
        Command::Has { key } => {
            if !repository()?.has(&key).await? {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Put {
            key,
            value,
            minutes,
            seconds,
            forever,
        } => {
            let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
            let repository = repository()?;
            if forever {
                repository.forever(&key, &value).await?;
            } else {
                let expiry = match seconds {
                    Some(seconds) => Expiry::Seconds(seconds),
                    None => {
                        Expiry::Minutes(minutes.unwrap_or_else(|| repository.default_cache_time()))
                    }
                };
                repository.put(&key, &value, expiry).await?;
            }
        }
        Command::Forget { key } => println!("{}", repository()?.forget(&key).await?),
        Command::Increment { key, by } => {
            println!("{}", repository()?.increment_by(&key, by).await?)
        }
        Command::Flush => repository()?.flush().await?,
        Command::CreateTable => {
            let repository = manager.store(store)?;
            database(&repository)?.create_table().await?;
        }
        Command::Prune => {
            let repository = manager.store(store)?;
            println!("{}", database(&repository)?.prune().await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("cachy: {message}");
            ExitCode::from(2)
        }
    }
}
