//! `memcached`.

use super::{ServerProcess, TestServer, exchange, free_port, require, wait_for_server};

/// A `memcached` on a free loopback port, with 2 MiB items (so a 1 MiB value with its
/// serialization overhead fits, as on the other stores).
#[derive(Debug)]
pub struct MemcachedServer {
    port: u16,
    dir: tempfile::TempDir,
    megabytes: u32,
    process: Option<ServerProcess>,
}

impl MemcachedServer {
    /// Start a server that keeps up to `megabytes` of items (the default is 64); `None` if
    /// `memcached` is missing outside CI.
    pub fn start_with_memory(megabytes: u32) -> Option<Self> {
        require("memcached")?;
        let mut server = MemcachedServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary folder"),
            megabytes,
            process: None,
        };
        server.restart();
        Some(server)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the running server (from its pid file), e.g. to pause it with
    /// `kill -STOP` as a hung server would, and resume it with `kill -CONT`; `None` after
    /// [`kill`](TestServer::kill).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref()?;
        std::fs::read_to_string(self.dir.path().join("memcached.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl TestServer for MemcachedServer {
    /// Start a server; `None` if `memcached` is missing outside CI.
    fn start() -> Option<Self> {
        Self::start_with_memory(64)
    }

    /// Kill the server, as a crash would.
    fn kill(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
    }

    /// Start the server again on the same port, and wait until it answers.
    fn restart(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
        let pid_file = self.dir.path().join("memcached.pid");
        let args: Vec<String> = [
            "-P",
            &pid_file.to_string_lossy(),
            "-l",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "0",
            "-I",
            "2m",
            "-m",
            &self.megabytes.to_string(),
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

    /// `127.0.0.1:<port>`, for the `servers` config field.
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
