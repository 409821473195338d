//! Counters on memcached: the integer flag, overflow, values beyond the signed range and
//! memcached's own padded decrements, seen through the raw protocol.

use super::*;

#[tokio::test]
async fn counters_created_here_have_the_integer_flag() {
    let Some(server) = server() else { return };
    let store = MemcachedStore::from_config(
        &StoreConfig::new("memcached").with("servers", json!([server.address()])),
    )
    .unwrap();
    let key = unique("counter");
    assert_eq!(store.increment(&key, 5).await.unwrap(), 5);
    assert_eq!(store.increment(&key, -7).await.unwrap(), -2);
    assert_eq!(store.increment(&key, 3).await.unwrap(), 1);
    assert_eq!(store.get(&key).await.unwrap().unwrap(), b"1");
}

/// Send `request` to memcached as it is, followed by `mn`, and return what it answered
/// before the `MN`.
fn raw(server: &MemcachedServer, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(server.address()).unwrap();
    std::io::Write::write_all(&mut stream, format!("{request}mn\r\n").as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 256];
    while !answer.ends_with(b"MN\r\n") {
        let n = std::io::Read::read(&mut stream, &mut buffer).unwrap();
        assert!(n > 0, "memcached closed the connection");
        answer.extend_from_slice(&buffer[..n]);
    }
    answer.truncate(answer.len() - 4);
    String::from_utf8(answer).unwrap()
}

#[tokio::test]
async fn an_overflowing_increment_leaves_the_counter_readable() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("overflow-wide");
    cache.forever(&key, &(i64::MAX - 1)).await.unwrap();
    // The sum has one digit more than the counter: an increment applied and then taken back
    // would leave the counter padded with a space.
    let overflow = cache.increment_by(&key, i64::MAX).await.unwrap_err();
    assert_eq!(overflow.kind(), ErrorKind::Overflow, "{overflow}");
    assert!(!overflow.is_temporary());
    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(i64::MAX - 1));
    assert_eq!(
        raw(server, &format!("mg {key} v\r\n")),
        format!("VA 19\r\n{}\r\n", i64::MAX - 1),
        "stored exactly as it was"
    );
    assert_eq!(cache.decrement(&key).await.unwrap(), i64::MAX - 2);
}

#[tokio::test]
async fn a_counter_beyond_the_signed_range_is_not_an_integer_and_stays() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("u64-max");
    // Another client's counter at memcached's largest: its own incr would wrap it to 0.
    assert_eq!(
        raw(server, &format!("ms {key} 20 F2\r\n{}\r\n", u64::MAX)),
        "HD\r\n"
    );
    for by in [1, -1] {
        let err = cache.increment_by(&key, by).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAnInteger, "{by}: {err}");
    }
    assert_eq!(
        raw(server, &format!("mg {key} v\r\n")),
        format!("VA 20\r\n{}\r\n", u64::MAX)
    );
}

#[tokio::test]
async fn counters_padded_by_memcacheds_own_decrement_read_as_integers() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("padded");
    assert_eq!(raw(server, &format!("ms {key} 2 F2\r\n10\r\n")), "HD\r\n");
    // memcached rewrites a shorter number in place, padded with spaces (as python-memcached's
    // decr or any other client's would leave it).
    assert_eq!(raw(server, &format!("decr {key} 1\r\n")), "9\r\n");
    assert_eq!(raw(server, &format!("mg {key} v\r\n")), "VA 2\r\n9 \r\n");
    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(9));
    assert_eq!(
        cache.many::<i64>(&[key.as_str()]).await.unwrap(),
        vec![Some(9)]
    );
    assert_eq!(cache.increment(&key).await.unwrap(), 10);
    assert_eq!(cache.decrement_by(&key, 20).await.unwrap(), -10);

    let leading = unique("leading");
    assert_eq!(
        raw(server, &format!("ms {leading} 4 F2\r\n  7 \r\n")),
        "HD\r\n"
    );
    assert_eq!(cache.get::<i64>(&leading).await.unwrap(), Some(7));
    assert_eq!(cache.increment(&leading).await.unwrap(), 8);
}
