//! Real servers for tests, started on free loopback ports with temporary data folders.
//!
//! Each kind of server ([`RedisServer`], [`MemcachedServer`], [`PostgresServer`],
//! [`MariaDbServer`]) implements [`TestServer`]: start it, kill it as a crash would, restart
//! it on the same port, and the address a store's config names it by. [`RedisCluster`] is
//! three [`RedisServer`] nodes joined together, started with its own `start`.
//!
//! A server binary that is missing is a test failure under `CI=true`, and a skip (with a
//! message saying how to install it) otherwise. Every server runs under a small supervisor
//! that kills it when the test process exits, so servers shared by a whole test binary (held
//! in statics, never dropped) do not outlive it.

mod mariadb;
mod memcached;
mod postgres;
mod redis;

pub use mariadb::MariaDbServer;
pub use memcached::MemcachedServer;
pub use postgres::PostgresServer;
pub use redis::{RedisCluster, RedisServer};

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real server a test starts, crashes and brings back.
///
/// ```ignore
/// use cachy_testkit::servers::{MemcachedServer, TestServer};
///
/// let Some(mut server) = MemcachedServer::start() else { return }; // not installed: skip
/// let servers = [server.address()];
/// server.kill();
/// server.restart();
/// ```
pub trait TestServer {
    /// Start a server on a free loopback port and wait until it answers; `None` if its
    /// binaries are missing outside CI (see [`require`]).
    fn start() -> Option<Self>
    where
        Self: Sized;

    /// Kill the server at once, as a crash would. Killing a killed server does nothing.
    fn kill(&mut self);

    /// Start the server again on the same port with the same data folder (after
    /// [`kill`](Self::kill), or killing it first), and wait until it answers.
    fn restart(&mut self);

    /// Where a store reaches it, as its config names it: the `url` field of the Redis and
    /// database stores (`redis://127.0.0.1:<port>`, `postgres://…`, `mysql://…`), or one
    /// entry of the memcached store's `servers` (`127.0.0.1:<port>`).
    fn address(&self) -> String;
}

/// Whether this run is CI, where a missing server fails instead of skipping.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The path of `binary` on `PATH`; `None` (with a note on stderr) when it is missing outside
/// CI; a panic when it is missing under CI.
pub fn require(binary: &str) -> Option<PathBuf> {
    // Daemons live in sbin, which a non-root PATH may leave out.
    let mut folders: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    folders.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    let found = folders
        .into_iter()
        .map(|dir| dir.join(binary))
        .find(|path| path.is_file());
    if found.is_none() {
        let message = format!(
            "`{binary}` is not installed; ./scripts/test installs it (apt-get install {})",
            debian_package(binary)
        );
        assert!(!is_ci(), "{message}");
        eprintln!("skipping: {message}");
    }
    found
}

fn debian_package(binary: &str) -> &str {
    match binary {
        "redis-server" | "redis-cli" => "redis-server redis-tools",
        "memcached" => "memcached",
        "postgres" | "initdb" | "pg_isready" => "postgresql",
        "mariadbd" | "mariadb-install-db" | "mariadb" => "mariadb-server",
        other => other,
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS gives out an ephemeral port")
}

/// A free port whose `port + 10000` is free too (Redis Cluster's bus port).
pub fn free_port_with_bus() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A server process, killed (with its whole process group) when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Start `program args...` under a supervisor that kills it once this test process is
    /// gone and then removes `dir` (its data folder; servers kept in statics are never
    /// dropped, so nothing else would). Its output goes to `dir/server.log`.
    pub fn spawn(program: &str, args: &[String], dir: &std::path::Path) -> Self {
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        // The server may make itself a process-group leader (PostgreSQL does), so the
        // supervisor kills its group as well as the process.
        let script = r#"parent=$1; dir=$2; shift 2; "$@" & server=$!
stop() { /bin/kill -9 -- "-$server" 2>/dev/null; kill -9 "$server" 2>/dev/null; wait "$server" 2>/dev/null; }
trap 'stop; exit 0' TERM
while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.1; done
stop
kill -0 "$parent" 2>/dev/null || rm -rf "$dir""#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("supervisor")
            .arg(std::process::id().to_string())
            .arg(dir)
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        ServerProcess { child }
    }

    /// Kill the server in `slot`, if there is one.
    fn kill_slot(slot: &mut Option<ServerProcess>) {
        if let Some(mut process) = slot.take() {
            process.kill();
        }
    }

    /// Kill the server at once (SIGKILL, by its supervisor), as a crash would.
    pub fn kill(&mut self) {
        let supervisor = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &supervisor])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        let group = format!("-{supervisor}");
        let _ = Command::new("kill")
            .args(["-9", "--", &group])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Send `request` to `port` and return what comes back first, if anything.
fn exchange(port: u16, request: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    )
    .ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(request).ok()?;
    let mut buffer = [0u8; 4096];
    let read = stream.read(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer[..read]).into_owned())
}

/// Poll until `ready` holds, or panic naming `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < limit,
            "{what} was not ready within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Wait up to 10 s for a server to be ready; on failure, panic with the tail of its log.
fn wait_for_server(what: &str, log: &std::path::Path, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > Duration::from_secs(10) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{what} was not ready within 10s; its log ends:\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Run `program args` to completion, panicking with its output on failure.
fn run(program: &std::path::Path, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
