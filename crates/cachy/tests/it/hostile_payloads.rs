//! Compressed and encrypted values written by someone else: bombs, cut and forged headers,
//! tampered ciphertext, python-memcached's zlib flag over a bomb. On real stores, each is a
//! typed error in bounded time and memory, and `remember_with` computes around it.

#![cfg(all(
    feature = "file",
    feature = "memcached",
    feature = "compress-zstd",
    feature = "compress-gzip",
    feature = "encrypt"
))]

use std::io::Write;
use std::time::{Duration, Instant};

use cachy::{CacheManager, ErrorKind, RememberOptions, Repository};
use cachy_testkit::servers::{MemcachedServer, TestServer};
use serde_json::json;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn file_store(dir: &std::path::Path) -> Repository {
    CacheManager::from_value(json!({ "stores": { "file": {
        "driver": "file", "path": dir,
        "compress": { "algorithm": "zstd" },
        "encrypt": { "keys": [{ "id": "k1", "key": KEY }], "allow_plaintext": true },
    } } }))
    .unwrap()
    .store(None)
    .unwrap()
}

/// A compressed value's header: algorithm `algorithm`, declaring `declared` bytes.
fn frame(algorithm: u8, declared: u32, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0xC1, b'c', b'z', algorithm];
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(data);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn bombs_and_forged_headers_are_typed_errors_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let repo = file_store(dir.path());
    let zeros = vec![0u8; 20 << 20];
    let zstd_bomb = zstd::bulk::compress(&zeros, 3).unwrap();
    let gzip_bomb = gzip(&zeros);
    let mut hostile: Vec<(&str, Vec<u8>)> = vec![
        ("declares 4 GiB", frame(1, u32::MAX, &[0; 32])),
        ("zstd ratio bomb", frame(1, 60 << 20, &zstd_bomb)),
        ("gzip ratio bomb", frame(3, 60 << 20, &gzip_bomb)),
        ("zstd under-declared", frame(1, 1000, &zstd_bomb)),
        ("gzip under-declared", frame(3, 1000, &gzip_bomb)),
        ("lz4 garbage", frame(2, 5000, &[0xff; 64])),
        ("unknown algorithm", frame(9, 10, &[0; 10])),
        ("cut header", vec![0xC1, b'c', b'z', 1, 0]),
        ("encrypted, cut", vec![0xC1, b'c', b'e', 1, 200, b'k']),
        ("encrypted, unknown key id", {
            let mut forged = vec![0xC1, b'c', b'e', 1, 2, b'k', b'9'];
            forged.extend_from_slice(&[7; 24 + 40]);
            forged
        }),
        ("encrypted, forged ciphertext", {
            let mut forged = vec![0xC1, b'c', b'e', 1, 2, b'k', b'1'];
            forged.extend_from_slice(&[7; 24 + 40]);
            forged
        }),
    ];
    // A compressed value inside a compressed one.
    hostile.push((
        "nested frames",
        frame(
            1,
            12,
            &zstd::bulk::compress(&frame(1, 4, b"abcd"), 3).unwrap(),
        ),
    ));
    for (what, bytes) in hostile {
        repo.backend().put(what, &bytes, Some(600)).await.unwrap();
        let started = Instant::now();
        let error = repo.get::<String>(what).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Deserialize, "{what}: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            started.elapsed()
        );
        let options = RememberOptions::new(Duration::from_secs(60));
        let errors = repo.stats().errors;
        let value: String = repo
            .remember_with(what, &options, || async {
                Ok::<_, cachy::Error>("fresh".to_owned())
            })
            .await
            .unwrap();
        assert_eq!(value, "fresh", "{what}");
        assert_eq!(
            repo.stats().errors,
            errors + 1,
            "{what}: the failure is observed"
        );
        assert_eq!(
            repo.get::<String>(what).await.unwrap().as_deref(),
            Some("fresh")
        );
    }
}

/// A value flagged as zlib-compressed (python-memcached's bit 8) expanding past the limits
/// is refused after at most the limit, never decompressed whole.
#[tokio::test]
async fn a_zlib_bomb_under_the_python_memcached_flag_is_refused() {
    let Some(server) = MemcachedServer::start() else {
        return;
    };
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&vec![0u8; 200 << 20]).unwrap();
    let bomb = zlib.finish().unwrap();
    set_raw(&server.address(), "t:bomb", 8, &bomb);
    set_raw(&server.address(), "t:broken", 8 | 16, b"not zlib at all");
    let cache = CacheManager::from_value(json!({ "stores": { "memcached": {
        "driver": "memcached", "servers": [server.address()], "prefix": "t:"
    } } }))
    .unwrap();
    let repo = cache.store(None).unwrap();
    for key in ["bomb", "broken"] {
        let started = Instant::now();
        let error = repo.get::<String>(key).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Deserialize, "{key}: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{key}: {:?}",
            started.elapsed()
        );
    }
}

fn set_raw(address: &str, key: &str, flags: u32, value: &[u8]) {
    use std::io::{BufRead, BufReader};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "set {key} {flags} 600 {}\r\n", value.len()).unwrap();
    stream.write_all(value).unwrap();
    stream.write_all(b"\r\n").unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    assert_eq!(reply.trim(), "STORED");
}
