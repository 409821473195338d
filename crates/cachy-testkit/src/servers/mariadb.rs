//! MariaDB: a fresh data folder made by `mariadb-install-db`, with a `cachy` database.

use std::process::{Command, Stdio};

use super::{ServerProcess, TestServer, free_port, require, run, wait_for_server};

/// A MariaDB server on a free loopback port, with a fresh data folder and a `cachy`
/// database (grant tables skipped: any user may connect).
#[derive(Debug)]
pub struct MariaDbServer {
    port: u16,
    dir: tempfile::TempDir,
    process: Option<ServerProcess>,
}

impl MariaDbServer {
    /// The folder holding the server's data, e.g. to measure what a table costs on disk.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `mysql://root@127.0.0.1:<port>/cachy`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/cachy", self.port)
    }
}

impl TestServer for MariaDbServer {
    /// Create a data folder and start a server on it; `None` if MariaDB is missing outside CI.
    fn start() -> Option<Self> {
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

    /// Kill the server, as a crash would.
    fn kill(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
    }

    /// Start the server again on the same port, and wait until the `cachy` database exists.
    fn restart(&mut self) {
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

    /// [`url`](MariaDbServer::url).
    fn address(&self) -> String {
        self.url()
    }
}
