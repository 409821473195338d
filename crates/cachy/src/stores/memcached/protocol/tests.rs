//! Unit tests of the meta protocol: keys, batches, reply lines, how replies are tied to
//! commands, and exchanges with a scripted server.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::replies::{Head, Incoming, Matcher, parse_head};
use super::*;

fn prefix(text: &str) -> Prefix {
    Prefix::new(text).unwrap()
}

#[test]
fn the_marker_is_how_hashed_keys_start() {
    let hashed = backend_key("", "x", |_| false);
    assert!(hashed.starts_with(DIGEST_MARKER));
    assert_eq!(hashed.len(), DIGEST_MARKER.len() + 40);
}

#[test]
fn prefixes_that_could_end_a_key_are_refused() {
    for bad in ["a b", "a\r\nflush_all", "\t", "\u{7f}", "\0"] {
        assert!(Prefix::new(bad).is_err(), "{bad:?}");
    }
    assert!(Prefix::new(&"p".repeat(MAX_PREFIX + 1)).is_err());
    let longest = prefix(&"p".repeat(MAX_PREFIX));
    assert_eq!(WireKey::new(&longest, &"k".repeat(300)).as_str().len(), 250);
}

#[test]
fn keys_on_the_wire_are_plain_or_hashed_never_both() {
    let p = prefix("p:");
    assert_eq!(WireKey::new(&p, "plain").as_str(), "p:plain");
    let long = "x".repeat(300);
    let hashed = WireKey::new(&p, &long);
    assert!(hashed.as_str().starts_with("p:cachy:sha1:"));
    let look_alike = &hashed.as_str()["p:".len()..];
    let mapped = WireKey::new(&p, look_alike);
    assert!(mapped.as_str().starts_with("p:cachy:sha1:"));
    assert_ne!(mapped, hashed);
    for odd in ["", "a b", "line\r\nflush_all", "tab\t"] {
        let key = WireKey::new(&prefix(""), odd);
        assert!(
            key.as_str().bytes().all(is_key_byte) && !key.as_str().is_empty(),
            "{odd:?} -> {key:?}"
        );
    }
}

#[test]
fn batches_tag_commands_and_end_with_a_no_op() {
    let key = WireKey::new(&prefix("p:"), "k");
    let batch = Batch::new(
        vec![
            Command::get(&key, "v f"),
            Command::set(&key, 2, b"42", 0, SetMode::CompareAndSwap(9)),
            Command::flush_all(),
        ],
        u64::MAX,
    );
    assert_eq!(
        String::from_utf8(batch.bytes.clone()).unwrap(),
        "mg p:k v f O18446744073709551615\r\nms p:k 2 T0 F2 C9 O0\r\n42\r\nflush_all\r\nmn\r\n"
    );
    assert!(!batch.may_repeat(), "a compare-and-swap is sent once");
}

#[test]
fn reply_lines_are_parsed_within_bounds() {
    assert!(matches!(
        parse_head("VA 2 f0 O1", 10),
        Ok(Head::Value { size: 2, .. })
    ));
    for line in [
        "VA 11 f0",
        "VA 18446744073709551615",
        "VA 99999999999999999999999",
        "VA -1",
        "VA +2",
        "VA",
        "XX",
        "HD  O1",
        "",
    ] {
        assert!(parse_head(line, 10).is_err(), "{line:?}");
    }
    assert!(matches!(parse_head("MN", 10), Ok(Head::End)));
    assert!(matches!(
        parse_head("SERVER_ERROR object too large for cache", 10),
        Ok(Head::Refused(e)) if e.kind() == ErrorKind::InvalidInput
    ));
    assert!(matches!(
        parse_head("SERVER_ERROR out of memory", 10),
        Ok(Head::Refused(e)) if e.kind() == ErrorKind::Backend
    ));
}

fn value(token: &str) -> Incoming {
    Incoming::Reply(Reply::Value {
        flags: vec![format!("O{token}")],
        data: Vec::new(),
    })
}

#[test]
fn replies_must_answer_the_commands_in_order() {
    let key = WireKey::new(&prefix(""), "k");
    let one = Batch::new(vec![Command::get(&key, "v")], 7);
    // Its own reply, then the end.
    let mut matcher = Matcher::new(&one);
    assert_eq!(matcher.accept(value("7")), Ok(false));
    assert_eq!(matcher.accept(Incoming::End), Ok(true));
    // A stale reply, a reply too many, a missing reply.
    assert!(Matcher::new(&one).accept(value("6")).is_err());
    let mut matcher = Matcher::new(&one);
    assert_eq!(matcher.accept(value("7")), Ok(false));
    assert!(matcher.accept(value("7")).is_err());
    assert!(Matcher::new(&one).accept(Incoming::End).is_err());
    // A reply without a token, or with a code a get cannot get.
    let bare = Incoming::Reply(Reply::Status {
        code: "EN",
        flags: Vec::new(),
    });
    assert!(Matcher::new(&one).accept(bare).is_err());
    let stored = Incoming::Reply(Reply::Status {
        code: "HD",
        flags: vec!["O7".to_owned()],
    });
    assert!(Matcher::new(&one).accept(stored).is_err());

    // Quiet gets may skip replies, in order only.
    let quiet = Batch::new(
        vec![
            Command::quiet_get(&key, "v"),
            Command::quiet_get(&key, "v"),
            Command::quiet_get(&key, "v"),
        ],
        0,
    );
    let mut matcher = Matcher::new(&quiet);
    assert_eq!(matcher.accept(value("1")), Ok(false));
    assert!(matcher.accept(value("0")).is_err());
    let mut matcher = Matcher::new(&quiet);
    assert_eq!(matcher.accept(value("2")), Ok(false));
    assert_eq!(matcher.accept(Incoming::End), Ok(true));
    let replies = matcher.finish().unwrap();
    assert!(replies[0].is_none() && replies[1].is_none() && replies[2].is_some());
}

#[tokio::test]
async fn stats_are_read_to_their_end() {
    let batch = Batch::new(vec![Command::stats()], 3);
    assert_eq!(batch.bytes, b"stats\r\nmn\r\n");
    let mut connection =
        connection_to(b"STAT pid 42\r\nSTAT libevent 2.1.12-stable\r\nEND\r\nMN\r\n".to_vec())
            .await;
    let replies = connection.exchange(&batch, 10).await.unwrap().unwrap();
    let Some(Reply::Stats(stats)) = &replies[0] else {
        panic!("{replies:?}");
    };
    assert_eq!(
        stats,
        &[
            ("pid".to_owned(), "42".to_owned()),
            ("libevent".to_owned(), "2.1.12-stable".to_owned())
        ]
    );

    let endless = b"STAT a 1\r\n".repeat(MAX_STATS + 1);
    let mut connection = connection_to(endless).await;
    assert!(matches!(
        connection.exchange(&batch, 10).await,
        Err(Failure::Garbled(reason)) if reason.contains("more than")
    ));
    // A stats line where a get's reply belongs.
    let key = WireKey::new(&prefix(""), "k");
    let get = Batch::new(vec![Command::get(&key, "v")], 1);
    let mut connection = connection_to(b"STAT pid 1\r\nEND\r\nMN\r\n".to_vec()).await;
    assert!(matches!(
        connection.exchange(&get, 10).await,
        Err(Failure::Garbled(_))
    ));
}

/// A connection whose server sends `reply` once it has read anything.
async fn connection_to(reply: Vec<u8>) -> Connection {
    let (client, mut server) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let mut request = [0u8; 256];
        if server.read(&mut request).await.is_ok() {
            let _ = server.write_all(&reply).await;
        }
    });
    Connection::new(Box::new(client))
}

#[tokio::test]
async fn an_exchange_refuses_what_does_not_fit() {
    let key = WireKey::new(&prefix(""), "k");
    let batch = Batch::new(vec![Command::get(&key, "v")], 1);
    let mut connection = connection_to(b"VA 2 O1\r\nok\r\nMN\r\n".to_vec()).await;
    let replies = connection.exchange(&batch, 10).await.unwrap().unwrap();
    assert!(matches!(&replies[0], Some(Reply::Value { data, .. }) if data == b"ok"));

    for (reply, expected) in [
        (vec![b'x'; MAX_LINE + 1], "longer than"),
        (b"VA 1000 O1\r\n".to_vec(), "max_value_size"),
        (
            b"VA 2 O1\r\nokay\r\nMN\r\n".to_vec(),
            "not followed by a line end",
        ),
        (b"VA 2 O1\n".to_vec(), "\\r\\n"),
    ] {
        let mut connection = connection_to(reply).await;
        match connection.exchange(&batch, 10).await {
            Err(Failure::Garbled(reason)) => assert!(reason.contains(expected), "{reason}"),
            other => panic!("{expected}: {other:?}"),
        }
    }

    let mut closed = connection_to(Vec::new()).await;
    assert!(matches!(
        closed.exchange(&batch, 10).await,
        Err(Failure::Io {
            answered: false,
            ..
        })
    ));
}
