//! Real servers for tests, started on free loopback ports with temporary data folders.
//!
//! A server binary that is missing is a test failure under `CI=true`, and a skip (with a
//! message saying how to install it) otherwise. Every server runs under a small supervisor
//! that kills it when the test process exits, so servers shared by a whole test binary (held
//! in statics, never dropped) do not outlive it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

use std::os::unix::process::CommandExt;

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

/// A `redis-server` on a free loopback port with a temporary folder and no persistence.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    tls: bool,
    process: Option<ServerProcess>,
}

impl RedisServer {
    /// Start a server; `None` if `redis-server` is missing outside CI.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Start a server with extra command-line options (e.g. `["--requirepass", "s3cret"]`).
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        require("redis-server")?;
        let mut server = RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary folder"),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls: false,
            process: None,
        };
        server.restart();
        Some(server)
    }

    /// Start a server that only speaks TLS, with a certificate for `127.0.0.1` signed by a
    /// fresh CA; [`ca_file`](Self::ca_file) is that CA. `None` if `redis-server` or `openssl`
    /// is missing outside CI.
    pub fn start_tls() -> Option<Self> {
        require("redis-server")?;
        require("openssl")?;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let openssl = |args: &str| {
            let status = Command::new("sh")
                .arg("-c")
                .arg(format!("openssl {args}"))
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(status.success(), "openssl {args} failed");
        };
        openssl(
            "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cachy-test-ca -keyout ca.key -out ca.crt",
        );
        openssl(
            "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr",
        );
        std::fs::write(dir.path().join("san.ext"), "subjectAltName=IP:127.0.0.1\n")
            .expect("write san.ext");
        openssl(
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
             -extfile san.ext -out server.crt",
        );
        let port = free_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let extra = vec![
            "--tls-port".to_owned(),
            port.to_string(),
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-cert-file".to_owned(),
            path("server.crt"),
            "--tls-key-file".to_owned(),
            path("server.key"),
            "--tls-ca-cert-file".to_owned(),
            path("ca.crt"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let mut server = RedisServer {
            port,
            dir,
            extra,
            tls: true,
            process: None,
        };
        server.restart();
        Some(server)
    }

    /// The CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &self.dir.path().display().to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(self.extra.iter().cloned());
        args
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Kill the server, as a crash would.
    pub fn kill(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
    }

    /// Start the server again on the same port (after [`kill`](Self::kill)), and wait until
    /// it answers.
    pub fn restart(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
        let log = self.dir.path().join("server.log");
        self.process = Some(ServerProcess::spawn(
            "redis-server",
            &self.args(),
            self.dir.path(),
        ));
        let (port, tls) = (self.port, self.tls);
        wait_for_server("redis-server", &log, || {
            if tls {
                return TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok();
            }
            exchange(port, b"PING\r\n")
                .is_some_and(|reply| reply.starts_with('+') || reply.starts_with("-NOAUTH"))
        });
    }
}

/// A 3-primary Redis Cluster on free loopback ports, created with `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start and join three nodes; `None` if `redis-server` or `redis-cli` is missing outside
    /// CI.
    pub fn start() -> Option<Self> {
        require("redis-server")?;
        require("redis-cli")?;
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let mut node = RedisServer {
                    port: free_port_with_bus(),
                    dir: tempfile::tempdir().expect("a temporary folder"),
                    extra: [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                    ]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                    tls: false,
                    process: None,
                };
                node.restart();
                node
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        for node in &nodes {
            let port = node.port;
            wait_for("the Redis Cluster", Duration::from_secs(20), || {
                exchange(port, b"CLUSTER INFO\r\n")
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            });
        }
        Some(RedisCluster { nodes })
    }

    /// The node URLs, for the `cluster` config field.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// A `memcached` on a free loopback port, with 2 MiB items (so a 1 MiB value with its
/// serialization overhead fits, as on the other stores).
#[derive(Debug)]
pub struct MemcachedServer {
    port: u16,
    dir: tempfile::TempDir,
    process: Option<ServerProcess>,
}

impl MemcachedServer {
    /// Start a server; `None` if `memcached` is missing outside CI.
    pub fn start() -> Option<Self> {
        require("memcached")?;
        let mut server = MemcachedServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary folder"),
            process: None,
        };
        server.restart();
        Some(server)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for the `servers` config field.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kill the server, as a crash would.
    pub fn kill(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
    }

    /// Start the server again on the same port, and wait until it answers.
    pub fn restart(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
        let args: Vec<String> = [
            "-l",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "0",
            "-I",
            "2m",
            "-m",
            "64",
            "-u",
            "root",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        self.process = Some(ServerProcess::spawn("memcached", &args, self.dir.path()));
        let port = self.port;
        wait_for_server("memcached", &self.dir.path().join("server.log"), || {
            exchange(port, b"version\r\n").is_some_and(|reply| reply.starts_with("VERSION"))
        });
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

/// A PostgreSQL binary: on `PATH`, or in Debian's `/usr/lib/postgresql/<version>/bin`.
fn postgres_binary(name: &str) -> Option<PathBuf> {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin").join(name))
        .find(|path| path.is_file());
    debian.or_else(|| require(name))
}

/// `setpriv` options that run a command as the `postgres` user. `setpriv` execs in place (no
/// child process, unlike `runuser`), so killing the process group kills PostgreSQL.
const AS_POSTGRES: [&str; 4] = [
    "--reuid=postgres",
    "--regid=postgres",
    "--init-groups",
    "--",
];

/// Whether this process runs as root (PostgreSQL refuses to; it then runs as `postgres`).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL server on a free loopback port, with a fresh cluster in a temporary folder
/// (trust authentication, user `postgres`).
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: tempfile::TempDir,
    postgres: PathBuf,
    process: Option<ServerProcess>,
}

impl PostgresServer {
    /// Create a cluster and start a server on it; `None` if PostgreSQL is missing outside CI.
    pub fn start() -> Option<Self> {
        let (Some(initdb), Some(postgres)) =
            (postgres_binary("initdb"), postgres_binary("postgres"))
        else {
            let message = "PostgreSQL is not installed; ./scripts/test installs it (apt-get install postgresql)";
            assert!(!is_ci(), "{message}");
            eprintln!("skipping: {message}");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary folder");
        let data = dir.path().join("data");
        let data = data.display().to_string();
        if is_root() {
            run(
                std::path::Path::new("chown"),
                &["-R", "postgres", &dir.path().display().to_string()],
            );
            run(
                std::path::Path::new("setpriv"),
                &[
                    AS_POSTGRES[0],
                    AS_POSTGRES[1],
                    AS_POSTGRES[2],
                    AS_POSTGRES[3],
                    &initdb.display().to_string(),
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            );
        } else {
            run(
                &initdb,
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            );
        }
        let mut server = PostgresServer {
            port: free_port(),
            dir,
            postgres,
            process: None,
        };
        server.restart();
        Some(server)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Kill the server, as a crash would.
    pub fn kill(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
    }

    /// Start the server again on the same port, and wait until it accepts connections.
    pub fn restart(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
        let folder = self.dir.path().display().to_string();
        let mut args = vec![
            self.postgres.display().to_string(),
            "-D".to_owned(),
            format!("{folder}/data"),
            "-p".to_owned(),
            self.port.to_string(),
            "-k".to_owned(),
            folder.clone(),
            "-c".to_owned(),
            "listen_addresses=127.0.0.1".to_owned(),
            "-c".to_owned(),
            "fsync=off".to_owned(),
            "-c".to_owned(),
            "max_connections=200".to_owned(),
        ];
        let program = if is_root() {
            args.splice(0..0, AS_POSTGRES.iter().map(|s| (*s).to_owned()));
            "setpriv".to_owned()
        } else {
            args.remove(0)
        };
        self.process = Some(ServerProcess::spawn(&program, &args, self.dir.path()));
        let ready = self.postgres.with_file_name("pg_isready");
        let port = self.port.to_string();
        wait_for_server("postgres", &self.dir.path().join("server.log"), || {
            Command::new(&ready)
                .args(["-h", "127.0.0.1", "-p", &port, "-q"])
                .status()
                .is_ok_and(|s| s.success())
        });
    }
}

/// A MariaDB server on a free loopback port, with a fresh data folder and a `cachy`
/// database (grant tables skipped: any user may connect).
#[derive(Debug)]
pub struct MariaDbServer {
    port: u16,
    dir: tempfile::TempDir,
    process: Option<ServerProcess>,
}

impl MariaDbServer {
    /// Create a data folder and start a server on it; `None` if MariaDB is missing outside CI.
    pub fn start() -> Option<Self> {
        let install = require("mariadb-install-db")?;
        require("mariadbd").or_else(|| require("mysqld"))?;
        require("mariadb")?;
        let dir = tempfile::tempdir().expect("a temporary folder");
        run(
            &install,
            &[
                &format!("--datadir={}/data", dir.path().display()),
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        );
        let mut server = MariaDbServer {
            port: free_port(),
            dir,
            process: None,
        };
        server.restart();
        Some(server)
    }

    /// `mysql://root@127.0.0.1:<port>/cachy`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/cachy", self.port)
    }

    /// Kill the server, as a crash would.
    pub fn kill(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
    }

    /// Start the server again on the same port, and wait until the `cachy` database exists.
    pub fn restart(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
        let folder = self.dir.path().display().to_string();
        let server = require("mariadbd")
            .or_else(|| require("mysqld"))
            .map_or_else(|| "mariadbd".to_owned(), |path| path.display().to_string());
        let args: Vec<String> = vec![
            format!("--datadir={folder}/data"),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--socket={folder}/mysqld.sock"),
            format!("--pid-file={folder}/mysqld.pid"),
            "--user=root".to_owned(),
            "--skip-grant-tables".to_owned(),
            "--innodb-buffer-pool-size=64M".to_owned(),
            "--innodb-flush-log-at-trx-commit=0".to_owned(),
            "--max-connections=500".to_owned(),
        ];
        self.process = Some(ServerProcess::spawn(&server, &args, self.dir.path()));
        let port = self.port.to_string();
        wait_for_server("mariadbd", &self.dir.path().join("server.log"), || {
            Command::new("mariadb")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-P",
                    &port,
                    "-u",
                    "root",
                    "-e",
                    "CREATE DATABASE IF NOT EXISTS cachy",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    }
}
