//! The memcached client against a misbehaving server: a tiny fake server in each test sends
//! scripted bytes (huge lengths, endless lines, extra or stale replies, dropped connections),
//! and the client must answer with an error, never with another key's value, a panic, an
//! unbounded allocation or an increment applied twice.

#![cfg(feature = "memcached")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachy::stores::MemcachedStore;
use cachy::{ErrorKind, Store, StoreConfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request as the fake server read it.
#[derive(Debug, Clone)]
struct Request {
    /// The words of the command line (`["mg", "t:a", "v", "f", "O1"]`).
    words: Vec<String>,
    /// Which connection it came on: 0 for the first one accepted.
    connection: usize,
    /// How many requests came before it on its connection.
    index: usize,
}

impl Request {
    fn command(&self) -> &str {
        &self.words[0]
    }

    /// The opaque-token flag to echo (` O7`), or nothing when the request has none.
    fn opaque(&self) -> String {
        self.words
            .iter()
            .find(|w| w.starts_with('O'))
            .map(|w| format!(" {w}"))
            .unwrap_or_default()
    }

    /// The key a meta command is about.
    fn key(&self) -> &str {
        self.words.get(1).map_or("", String::as_str)
    }
}

/// What the fake server does with a request.
enum Action {
    Send(Vec<u8>),
    /// Close the connection without answering (the request was read, maybe applied).
    Close,
    /// Send these bytes over and over until the client goes away.
    Flood(Vec<u8>),
}

/// `VA` with `value` for a request, echoing its token.
fn value_reply(request: &Request, value: &str) -> Vec<u8> {
    format!("VA {} f0{}\r\n{value}\r\n", value.len(), request.opaque()).into_bytes()
}

/// A fake memcached on a free loopback port: `script` answers each request (`mn` included).
/// Returns its address and the log of every request it read.
async fn fake_server(
    script: impl FnMut(&Request) -> Action + Send + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let script = Arc::new(Mutex::new(script));
    let log = Arc::new(Mutex::new(Vec::new()));
    let requests = log.clone();
    tokio::spawn(async move {
        for connection in 0.. {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (script, log) = (script.clone(), log.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                for index in 0.. {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
                    if words.is_empty() {
                        continue;
                    }
                    // A set's data block follows its line: read it past.
                    if words[0] == "ms" {
                        let size: usize = words[2].parse().unwrap();
                        let mut data = vec![0; size + 2];
                        if read.read_exact(&mut data).await.is_err() {
                            return;
                        }
                    }
                    let request = Request {
                        words,
                        connection,
                        index,
                    };
                    log.lock().unwrap().push(request.clone());
                    let action = (script.lock().unwrap())(&request);
                    match action {
                        Action::Send(bytes) => {
                            if write.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                        Action::Close => return,
                        Action::Flood(bytes) => {
                            while write.write_all(&bytes).await.is_ok() {}
                            return;
                        }
                    }
                }
            });
        }
    });
    (address, requests)
}

fn store(address: &str, timeout: f64) -> MemcachedStore {
    MemcachedStore::from_config(
        &StoreConfig::new("memcached")
            .with("servers", json!([address]))
            .with("prefix", "t:")
            .with("timeout", timeout)
            .with("retry_after", 0.2)
            // json, so that values are the bytes the server sent (pickle wraps flag-0 bytes).
            .serializer("json"),
    )
    .unwrap()
}

#[tokio::test]
async fn a_huge_announced_value_length_is_a_protocol_error_not_an_allocation() {
    let (address, _) = fake_server(|request| match request.command() {
        "mn" => Action::Send(b"MN\r\n".to_vec()),
        _ if request.key() == "t:max" => {
            Action::Send(format!("VA 18446744073709551615 f0{}\r\n", request.opaque()).into_bytes())
        }
        _ if request.key() == "t:beyond" => Action::Send(
            format!("VA 99999999999999999999999 f0{}\r\n", request.opaque()).into_bytes(),
        ),
        // Just over the default limit of 1 MiB: refused from its header, the data never read.
        _ => Action::Send(format!("VA 1048577 f0{}\r\n", request.opaque()).into_bytes()),
    })
    .await;
    let store = store(&address, 2.0);
    for key in ["max", "beyond", "over"] {
        let started = Instant::now();
        let err = store.get(key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend, "{key}: {err}");
        assert!(err.to_string().contains("max_value_size"), "{key}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{key}: refused at once, not after the timeout"
        );
    }
}

#[tokio::test]
async fn max_value_size_admits_values_up_to_it() {
    let big = "x".repeat(2 * 1024 * 1024);
    let reply = big.clone();
    let (address, _) = fake_server(move |request| match request.command() {
        "mn" => Action::Send(b"MN\r\n".to_vec()),
        _ => Action::Send(value_reply(request, &reply)),
    })
    .await;
    let store = MemcachedStore::from_config(
        &StoreConfig::new("memcached")
            .with("servers", json!([address]))
            .with("max_value_size", 4 * 1024 * 1024)
            .serializer("json"),
    )
    .unwrap();
    let value = store.get("k").await.unwrap();
    assert!(
        value == Some(big.into_bytes()),
        "the 2 MiB value is read whole"
    );
}

#[tokio::test]
async fn a_reply_line_without_an_end_is_cut_off_after_a_few_kib() {
    let (address, _) = fake_server(|_| Action::Flood(vec![b'x'; 64 * 1024])).await;
    let store = store(&address, 5.0);
    let started = Instant::now();
    let err = store.get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("longer than"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cut off at once, not buffered until the timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_extra_reply_is_never_taken_as_the_next_keys_value() {
    let (address, _) = fake_server(|request| match request.command() {
        "mn" => Action::Send(b"MN\r\n".to_vec()),
        _ => {
            let mut reply = value_reply(request, &format!("value of {}", request.key()));
            if request.connection == 0 && request.index == 0 {
                // One reply too many, as a confused server or proxy might send.
                reply.extend_from_slice(b"VA 5 f0\r\nstale\r\n");
            }
            Action::Send(reply)
        }
    })
    .await;
    let store = store(&address, 2.0);
    match store.get("a").await {
        Ok(value) => assert_eq!(value.as_deref(), Some(&b"value of t:a"[..])),
        Err(err) => assert_eq!(err.kind(), ErrorKind::Backend, "{err}"),
    }
    assert_eq!(
        store.get("b").await.unwrap().as_deref(),
        Some(&b"value of t:b"[..]),
        "the extra reply is not b's value, and the server is still used"
    );
}

#[tokio::test]
async fn a_stale_reply_arriving_late_is_a_protocol_error() {
    let previous = Arc::new(Mutex::new(Vec::new()));
    let (address, _) = fake_server(move |request| match request.command() {
        "mn" => Action::Send(b"MN\r\n".to_vec()),
        _ => {
            let reply = value_reply(request, &format!("value of {}", request.key()));
            let mut sent = Vec::new();
            if request.connection == 0 && request.index > 0 {
                // The previous request's reply once more, before this request's own.
                sent.extend_from_slice(&previous.lock().unwrap());
            }
            sent.extend_from_slice(&reply);
            *previous.lock().unwrap() = reply;
            Action::Send(sent)
        }
    })
    .await;
    let store = store(&address, 2.0);
    assert_eq!(
        store.get("a").await.unwrap().as_deref(),
        Some(&b"value of t:a"[..])
    );
    let err = store
        .get("b")
        .await
        .expect_err("a's reply is not b's value");
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("protocol error"), "{err}");
    assert_eq!(
        store.get("c").await.unwrap().as_deref(),
        Some(&b"value of t:c"[..]),
        "a fresh connection is used next"
    );
}

/// A server that answers the first request on its first connection, then reads the next
/// write (`ms`, `ma`) there and closes the connection without answering; later connections
/// answer everything. Returns its address and how many writes it received.
async fn server_dropping_the_second_request() -> (String, Arc<Mutex<Vec<Request>>>) {
    fake_server(|request| {
        let opaque = request.opaque();
        match request.command() {
            "mn" => Action::Send(b"MN\r\n".to_vec()),
            "ms" | "ma" | "md" if request.connection == 0 => Action::Close,
            "mg" if request.key() == "t:n" => {
                Action::Send(format!("VA 1 c7 t-1 f2{opaque}\r\n5\r\n").into_bytes())
            }
            "mg" => Action::Send(format!("EN{opaque}\r\n").into_bytes()),
            "ma" => Action::Send(format!("VA 1{opaque}\r\n6\r\n").into_bytes()),
            _ => Action::Send(format!("HD{opaque}\r\n").into_bytes()),
        }
    })
    .await
}

fn writes(log: &Mutex<Vec<Request>>) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| ["ms", "ma", "md"].contains(&r.command()))
        .count()
}

#[tokio::test]
async fn a_dropped_connection_never_applies_an_increment_or_an_add_twice() {
    for operation in ["increment", "add", "forget"] {
        let (address, log) = server_dropping_the_second_request().await;
        let store = store(&address, 2.0);
        // One call first, so that the connection is pooled and reused.
        assert_eq!(store.get("warm").await.unwrap(), None);
        let result = match operation {
            "increment" => store.increment("n", 1).await.map(|_| ()),
            "add" => store.add("n", b"1", None).await.map(|_| ()),
            _ => store.forget("n").await.map(|_| ()),
        };
        let err = result.expect_err("the connection dropped before the answer");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{operation}: {err}");
        assert!(err.is_temporary(), "{operation}: {err}");
        assert_eq!(writes(&log), 1, "{operation} was sent once");
    }
}

#[tokio::test]
async fn a_read_on_a_stale_pooled_connection_is_retried_on_a_fresh_one() {
    let (address, log) = fake_server(|request| match request.command() {
        "mn" => Action::Send(b"MN\r\n".to_vec()),
        // The server (or a firewall) dropped the pooled connection while it was idle.
        _ if request.connection == 0 && request.index > 0 => Action::Close,
        _ => Action::Send(value_reply(request, "fresh")),
    })
    .await;
    let store = store(&address, 2.0);
    assert_eq!(
        store.get("a").await.unwrap().as_deref(),
        Some(&b"fresh"[..])
    );
    assert_eq!(
        store.get("b").await.unwrap().as_deref(),
        Some(&b"fresh"[..])
    );
    let connections = log.lock().unwrap().iter().map(|r| r.connection).max();
    assert_eq!(connections, Some(1), "retried once on a second connection");
}
