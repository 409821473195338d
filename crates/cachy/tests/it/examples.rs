//! The examples, built and run as programs of their own against real servers: `service` on a
//! Redis the test starts (and without one: it must say how to start one and fail cleanly),
//! `blocking_cli` as several processes sharing one cache folder, and `interop` with the real
//! Python cachy 0.3.0 from the virtualenv `scripts/python-env` makes.
//!
//! Cargo builds examples for `cargo test --all-targets` but not for `--test examples`, and
//! offers no `CARGO_BIN_EXE_` for them: the tests take them from `target/<profile>/examples/`,
//! and when one is missing or older than the sources, first run `cargo build --example ...`
//! with this test's profile and features and take the binaries from cargo's own report. Missing servers or Python skip the tests outside CI and fail
//! them under `CI=true`, as everywhere in the suite.

#![cfg(all(
    feature = "file",
    feature = "redis",
    feature = "database-sqlite",
    feature = "macros"
))]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use cachy_testkit::servers::{RedisServer, TestServer, free_port, is_ci};

/// The examples this file runs.
const EXAMPLES: [&str; 4] = ["service", "outage", "blocking_cli", "interop"];

/// The package's features this test was built with, so that the examples are built with the
/// same ones (and the library is not rebuilt with others).
fn features() -> String {
    [
        ("memory", cfg!(feature = "memory")),
        ("file", cfg!(feature = "file")),
        ("chrono", cfg!(feature = "chrono")),
        ("redis", cfg!(feature = "redis")),
        ("redis-tls", cfg!(feature = "redis-tls")),
        ("hybrid", cfg!(feature = "hybrid")),
        ("memcached", cfg!(feature = "memcached")),
        ("database", cfg!(feature = "database")),
        ("database-sqlite", cfg!(feature = "database-sqlite")),
        ("database-postgres", cfg!(feature = "database-postgres")),
        ("database-mysql", cfg!(feature = "database-mysql")),
        ("macros", cfg!(feature = "macros")),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

/// Where cargo put this test binary: `target/<profile folder>`.
fn profile_folder() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/examples-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf()
}

/// The newest modification time of the sources an example is built from: this crate's
/// manifest, `src/` and `examples/`, and the attribute crate's `src/`.
fn newest_source() -> SystemTime {
    fn newest(path: &Path) -> SystemTime {
        let Ok(meta) = std::fs::metadata(path) else {
            return SystemTime::UNIX_EPOCH;
        };
        let own = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if !meta.is_dir() {
            return own;
        }
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| newest(&entry.path()))
            .fold(own, SystemTime::max)
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        crate_dir.join("Cargo.toml"),
        crate_dir.join("src"),
        crate_dir.join("examples"),
        crate_dir.join("../cachy-macros/src"),
    ]
    .iter()
    .map(|path| newest(path))
    .fold(SystemTime::UNIX_EPOCH, SystemTime::max)
}

/// The path of example `name`. `cargo test --all-targets` (as `./scripts/test` runs it) has
/// just built the examples; otherwise (`--test examples`, or sources changed since), they
/// are built first, once per test binary, all together.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let profile = profile_folder();
        let existing: HashMap<String, PathBuf> = EXAMPLES
            .iter()
            .map(|name| (name.to_string(), profile.join("examples").join(name)))
            .collect();
        let sources = newest_source();
        let fresh = existing.values().all(|path| {
            std::fs::metadata(path)
                .and_then(|meta| meta.modified())
                .is_ok_and(|built| built >= sources)
        });
        let Some(cargo) = std::env::var_os("CARGO").filter(|_| !fresh) else {
            return existing; // fresh, or run outside cargo: use what is there
        };
        let mut command = Command::new(cargo);
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "--message-format=json-render-diagnostics",
            ])
            .args(["-p", env!("CARGO_PKG_NAME"), "--no-default-features"])
            .args(["--features", &features()]);
        match profile.file_name().and_then(|name| name.to_str()) {
            Some("debug") => {}
            Some("release") => {
                command.arg("--release");
            }
            Some(other) => {
                command.args(["--profile", other]);
            }
            None => panic!("no profile folder in {}", profile.display()),
        }
        for name in EXAMPLES {
            command.args(["--example", name]);
        }
        let started = Instant::now();
        let output = command.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "building the examples failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "built the examples in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // One JSON message a line; the artifacts name their executables.
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact")
            .filter_map(|message| {
                let name = message["target"]["name"].as_str()?.to_owned();
                let executable = message["executable"].as_str()?;
                Some((name, PathBuf::from(executable)))
            })
            .collect()
    });
    let path = built
        .get(name)
        .unwrap_or_else(|| panic!("cargo did not report the example `{name}`"));
    assert!(path.is_file(), "{} is missing", path.display());
    path.clone()
}

/// Run `program args` with `envs` set, and report how long it took.
fn run(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let started = Instant::now();
    let output = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    eprintln!(
        "{name} {args:?}: {} in {:.0} ms",
        output.status,
        started.elapsed().as_secs_f64() * 1000.0
    );
    output
}

/// Its stdout, after checking that it succeeded.
fn succeeded(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_lines(output: &str, what: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            output.lines().any(|l| l.trim_end() == line.trim_end()),
            "{what}: no line {line:?} in:\n{output}"
        );
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn service_runs_against_redis_and_sqlite() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = redis.address();
    let envs = [
        ("REDIS_URL", url.as_str()),
        ("TMPDIR", path_str(tmp.path())),
    ];
    let service = example("service");

    let first = succeeded(&run(&service, &[], &envs), "service");
    assert_lines(
        &first,
        "service",
        &[
            "  user:1 -> Ann (database)",
            "  user:1 -> Ann (cache)",
            "  user:99 -> not found (user 99); errors are not cached",
            "  cached under its tags -> true",
            "  after flushing tag team:7 -> gone",
            "  report for month 11 -> 51 signups (computed)",
            "  report for month 11 -> 51 signups (from SQLite)",
            "  request 3: count 3 in this window -> allowed",
            "  request 4: count 4 in this window -> rejected (429)",
            "  request 5: count 5 in this window -> rejected (429)",
            "  rate:client-7 held a string (not an integer): reset it",
            "  rate:client-7 -> 1",
            "  cache unavailable (server unavailable): computing user:1 without it",
        ],
    );
    assert!(
        tmp.path()
            .join("cachy-example-service")
            .join("cache.db")
            .is_file(),
        "the SQLite file is under TMPDIR"
    );

    // A second process: Redis keys are flushed at start, but the report is still in SQLite.
    let second = succeeded(&run(&service, &[], &envs), "service, second run");
    assert_lines(
        &second,
        "service, second run",
        &[
            "  user:1 -> Ann (database)",
            "  request 1: count 1 in this window -> allowed",
        ],
    );
    assert!(
        !second.contains("(computed)"),
        "the report came from SQLite in the second run:\n{second}"
    );
}

#[test]
fn service_without_redis_says_how_to_start_one() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{}", free_port());
    let output = run(
        &example("service"),
        &[],
        &[("REDIS_URL", &url), ("TMPDIR", path_str(tmp.path()))],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for text in [
        &format!("error: Redis is not reachable at {url}"),
        "redis-server --port 6379",
        "docker run --rm -p 6379:6379 redis:7",
        "REDIS_URL=",
    ] {
        assert!(stderr.contains(text), "no {text:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `outage` keeps answering every request while Redis is killed under it: from its L1 for
/// the products it held, from its database (once each) for the others.
#[test]
fn outage_answers_every_request_while_redis_is_killed() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let mut child = Command::new(example("outage"))
        .env("REDIS_URL", redis.address())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut output = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the example ended before asking for Redis to stop:\n{output}"
        );
        output.push_str(&line);
        if line.starts_with("stop Redis now") {
            break;
        }
    }
    redis.kill();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    std::io::Read::read_to_string(&mut stdout, &mut output).unwrap();
    let rest = child.wait_with_output().expect("the example ends");
    let stderr = String::from_utf8_lossy(&rest.stderr);
    assert!(rest.status.success(), "{output}\n{stderr}");
    eprintln!("{output}");
    assert_lines(
        &output,
        "outage",
        &["before the outage: 20 requests, 0 failed, 10 database queries"],
    );
    let during = output
        .lines()
        .find(|line| line.starts_with("during the outage:"))
        .unwrap_or_else(|| panic!("no outage line in:\n{output}"));
    assert!(
        during.ends_with(", 0 failed, 10 database queries"),
        "every request answered, each new product asked of the database once: {during}"
    );
    assert!(!output.contains("cache errors observed: 0 "), "{output}");
}

#[test]
fn blocking_cli_shares_a_file_cache_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let cli = example("blocking_cli");
    let run_cli = |args: &[&str]| {
        let mut all = vec!["--dir", path_str(dir.path())];
        all.extend_from_slice(args);
        run(&cli, &all, &[])
    };
    let stdout = |args: &[&str]| succeeded(&run_cli(args), &format!("blocking_cli {args:?}"));

    assert_eq!(
        stdout(&["put", "greeting", "hello"]).trim(),
        r#"stored greeting = "hello" for 10 minutes"#
    );
    assert_eq!(stdout(&["get", "greeting"]).trim(), r#""hello""#);
    stdout(&["put", "tags", r#"["a","b"]"#]);
    assert_eq!(stdout(&["get", "tags"]).trim(), r#"["a","b"]"#);
    stdout(&["put", "n", "42"]);
    assert_eq!(stdout(&["incr", "n", "3"]).trim(), "45");
    assert_eq!(stdout(&["incr", "visits"]).trim(), "1");
    assert_eq!(stdout(&["incr", "visits"]).trim(), "2");

    let first = run_cli(&["square", "12"]);
    assert_eq!(succeeded(&first, "square 12").trim(), "144");
    assert!(String::from_utf8_lossy(&first.stderr).contains("(computing square(12))"));
    let second = run_cli(&["square", "12"]);
    assert_eq!(succeeded(&second, "square 12, again").trim(), "144");
    assert!(
        second.stderr.is_empty(),
        "the second process got square(12) from the cache: {}",
        String::from_utf8_lossy(&second.stderr)
    );

    assert!(stdout(&["report"]).contains("(this one)"));
    assert!(stdout(&["report"]).contains("(an earlier run: from the cache)"));

    assert_eq!(stdout(&["forget", "greeting"]).trim(), "true");
    let miss = run_cli(&["get", "greeting"]);
    assert_eq!(miss.status.code(), Some(1), "a miss");
    assert_eq!(run_cli(&["frobnicate"]).status.code(), Some(2), "usage");
}

/// The python of the Python cachy virtualenv; `None` (a skip) outside CI when it cannot be
/// made, a failure under CI (the rule of `tests/it/interop_python.rs`).
fn python() -> Option<String> {
    let python = cachy_testkit::bench::python_cachy();
    if python.is_none() {
        let message = "cannot make the Python cachy virtualenv (./scripts/python-env)";
        assert!(!is_ci(), "{message}");
        eprintln!("skipping: {message}");
    }
    python
}

#[test]
fn interop_shares_a_file_store_and_redis_with_python_cachy() {
    let Some(python) = python() else { return };
    // Without redis-server (outside CI), the file store alone.
    let redis = RedisServer::start();
    let url = redis.as_ref().map(RedisServer::address).unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let dir = path_str(dir.path()).to_owned();
    let interop = example("interop");

    let wrote = succeeded(
        &run(&interop, &["write", &dir], &[("REDIS_URL", &url)]),
        "interop write",
    );
    assert!(wrote.contains("rust wrote greeting"), "{wrote}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop.py");
    let python_side = succeeded(&run(Path::new(&python), &[script, &dir], &[]), "interop.py");
    assert_lines(
        &python_side,
        "interop.py",
        &[
            "python dropped Rust-only fields of stores.file: integers",
            "python read file greeting = 'hello from Rust' (str)",
            "python read file answer = 42 (int)",
            "python read file primes = [2, 3, 5, 7] (list)",
            "python read file point = (1.5, -2.0) (tuple)",
            "python read file pair = ('a', 1) (tuple)",
            "python read file user = {'name': 'Ann', 'roles': ['admin'], 'active': True} (dict)",
            "python read file visits = 5 (int)",
            "python incremented file visits to 6",
            "python incremented file py:counter to 11",
        ],
    );

    let read = succeeded(&run(&interop, &["read", &dir], &[]), "interop read");
    assert_lines(
        &read,
        "interop read",
        &[
            r#"rust read py:greeting = Some("hello from Python")"#,
            "rust read py:answer = Some(7)",
            "rust read py:list = Some([1, 2, 3])",
            r#"rust read py:tuple = Some(("b", 2))"#,
            r#"rust read py:dict = Some(PythonInfo { language: "python", version: (3, 11) })"#,
            "rust read visits = Some(6), incremented to 7",
            "rust read py:counter = Some(11), incremented to 12",
        ],
    );

    if redis.is_some() {
        assert_lines(
            &python_side,
            "interop.py on Redis",
            &[
                "python dropped Rust-only fields of stores.redis: connect_timeout",
                "python read redis greeting = 'hello from Rust' (str)",
                "python read redis user = {'name': 'Ann', 'roles': ['admin'], 'active': True} (dict)",
                "python get redis hits -> UnpicklingError: invalid load key, '5'.",
                "python incremented redis hits to 7",
            ],
        );
        assert_lines(
            &read,
            "interop read on Redis",
            &[
                r#"rust read redis py:greeting = Some("hello from Python")"#,
                "rust read redis hits = Some(7), incremented to 8",
            ],
        );
    }
}
