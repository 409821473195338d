//! PostgreSQL: a fresh cluster made by `initdb`, run as `postgres` when the tests run as root.

use std::path::PathBuf;
use std::process::Command;

use super::{ServerProcess, TestServer, free_port, is_ci, require, run, wait_for_server};

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
    /// The folder holding the server's data, e.g. to measure what a table costs on disk.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl TestServer for PostgresServer {
    /// Create a cluster and start a server on it; `None` if PostgreSQL is missing outside CI.
    fn start() -> Option<Self> {
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

    /// Kill the server, as a crash would.
    fn kill(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
    }

    /// Start the server again on the same port, and wait until it accepts connections.
    fn restart(&mut self) {
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

    /// [`url`](PostgresServer::url).
    fn address(&self) -> String {
        self.url()
    }
}
