//! `redis-server`: one node ([`RedisServer`], plain, with options, or TLS) and a 3-primary
//! [`RedisCluster`].

use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{
    ServerProcess, TestServer, exchange, free_port, free_port_with_bus, require, wait_for,
    wait_for_server,
};

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
            "--pidfile",
            &self.pid_file().display().to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(self.extra.iter().cloned());
        args
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("redis.pid")
    }

    /// The process id of the running server (from its pid file), e.g. to pause it with
    /// `kill -STOP` as a hung server would, and resume it with `kill -CONT`; `None` after
    /// [`kill`](TestServer::kill).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref()?;
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
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
}

impl TestServer for RedisServer {
    /// Start a server; `None` if `redis-server` is missing outside CI.
    fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Kill the server, as a crash would.
    fn kill(&mut self) {
        ServerProcess::kill_slot(&mut self.process);
    }

    /// Start the server again on the same port (after [`kill`](Self::kill)), and wait until
    /// it answers.
    fn restart(&mut self) {
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

    /// [`url`](RedisServer::url).
    fn address(&self) -> String {
        self.url()
    }
}

/// A 3-primary Redis Cluster on free loopback ports, created with `redis-cli --cluster create`.
///
/// Not a [`TestServer`]: it has no single address; [`kill`](Self::kill) and
/// [`restart`](Self::restart) take the node.
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
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        Some(cluster)
    }

    /// The nodes, e.g. to pause one (see [`RedisServer::pid`]).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Kill node `index`, as a crash would: its slots go unserved until it is back.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Start node `index` again on its port (it rejoins with its saved cluster config and
    /// slots, its data lost), and wait until every node reports the cluster ok.
    pub fn restart(&mut self, index: usize) {
        self.nodes[index].restart();
        self.wait_ok();
    }

    /// The index of the node serving `key`: the one that does not redirect a `GET` of it.
    pub fn node_of(&self, key: &str) -> usize {
        let request = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
        self.nodes
            .iter()
            .position(|node| {
                exchange(node.port, request.as_bytes())
                    .is_some_and(|reply| !reply.starts_with("-MOVED"))
            })
            .expect("a node serves every key")
    }

    fn wait_ok(&self) {
        for node in &self.nodes {
            let port = node.port;
            wait_for("the Redis Cluster", Duration::from_secs(20), || {
                exchange(port, b"CLUSTER INFO\r\n")
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            });
        }
    }

    /// The node URLs, for the `cluster` config field.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}
