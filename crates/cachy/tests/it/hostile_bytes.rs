//! Whatever bytes a store holds, reading them gives a value or a `Deserialize` error, in
//! bounded time and memory, on a thread with a small stack: deep nesting, expansion bombs,
//! long integer text, class instances and random bytes, for every built-in serializer.

use std::time::{Duration, Instant};

use cachy::serializer::{DecodeLimits, Serializer};
use serde::de::IgnoredAny;

/// A tokio worker's stack: where a cache read normally runs.
const WORKER_STACK: usize = 2 << 20;

/// Run `check` on a thread with a worker-sized stack, so a stack overflow fails the test
/// (by aborting it) instead of passing on the main thread's larger stack.
fn on_worker_stack(check: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(check)
        .unwrap()
        .join()
        .unwrap();
}

/// Read `bytes` as a few different types; every read must be an error, quickly.
fn every_read_fails(serializer: &Serializer, bytes: &[u8], why: &str) {
    let started = Instant::now();
    let errors = [
        serializer.deserialize::<IgnoredAny>(bytes).err(),
        serializer.deserialize::<serde_json::Value>(bytes).err(),
        serializer.deserialize::<String>(bytes).err(),
        serializer
            .deserialize::<Vec<serde_json::Value>>(bytes)
            .err(),
    ];
    for error in errors {
        let error = error.unwrap_or_else(|| panic!("{why}: a read succeeded"));
        assert!(!error.to_string().is_empty());
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{why}: reading took {:?}",
        started.elapsed()
    );
}

fn nested_pickle_lists(levels: usize) -> Vec<u8> {
    // EMPTY_LIST n times, then APPEND n-1 times: each list inside the one below it.
    let mut pickle = b"\x80\x04".to_vec();
    pickle.extend(std::iter::repeat_n(b']', levels));
    pickle.extend(std::iter::repeat_n(b'a', levels - 1));
    pickle.push(b'.');
    pickle
}

#[test]
fn a_pickle_nested_fifty_thousand_deep_is_an_error_not_an_abort() {
    on_worker_stack(|| {
        every_read_fails(
            &Serializer::pickle(),
            &nested_pickle_lists(50_000),
            "deep pickle",
        )
    });
}

#[test]
fn pickle_nesting_up_to_the_limit_reads_and_the_limit_is_configurable() {
    on_worker_stack(|| {
        let pickle = Serializer::pickle();
        let within = nested_pickle_lists(128);
        pickle.deserialize::<serde_json::Value>(&within).unwrap();
        let beyond = nested_pickle_lists(129);
        let error = pickle.deserialize::<IgnoredAny>(&beyond).unwrap_err();
        assert!(error.to_string().contains("128 levels"), "{error}");
        let deeper = pickle.with_limits(DecodeLimits::default().with_max_depth(200));
        deeper.deserialize::<serde_json::Value>(&beyond).unwrap();
    });
}

/// A list whose two items are the list before it, `levels` times: 2^levels leaves from
/// about ten bytes a level.
fn memo_fan_out(levels: usize) -> Vec<u8> {
    let mut pickle = b"\x80\x02]q\x00".to_vec();
    for level in 0..levels {
        let previous = level as u8;
        pickle.extend([
            b'(',
            b'h',
            previous,
            b'h',
            previous,
            b'l',
            b'q',
            previous + 1,
        ]);
    }
    pickle.push(b'.');
    pickle
}

#[test]
fn a_pickle_expansion_bomb_is_refused_within_the_budget() {
    on_worker_stack(|| {
        let pickle = Serializer::pickle();
        // 2^10 lists: fine.
        pickle
            .deserialize::<serde_json::Value>(&memo_fan_out(10))
            .unwrap();
        // 2^40 lists from 320 bytes.
        every_read_fails(&pickle, &memo_fan_out(40), "memo fan-out");
        // DUP/APPEND pairs on a list make it contain itself: recursive, so refused.
        let mut dup_append = b"\x80\x02]".to_vec();
        for _ in 0..500 {
            dup_append.extend(b"2a");
        }
        dup_append.push(b'.');
        every_read_fails(&pickle, &dup_append, "dup/append");
    });
}

#[test]
fn a_string_referenced_many_times_is_charged_for_every_copy() {
    // One 1 MiB string, then a list referencing it 2,000 times (2 GiB if copied).
    let mut pickle = b"\x80\x04\x8d".to_vec();
    pickle.extend((1u64 << 20).to_le_bytes());
    pickle.extend(std::iter::repeat_n(b'x', 1 << 20));
    pickle.extend(b"\x94]\x94(");
    for _ in 0..2_000 {
        pickle.extend(b"h\x00");
    }
    pickle.extend(b"e.");
    on_worker_stack(move || {
        let error = Serializer::pickle()
            .deserialize::<Vec<String>>(&pickle)
            .unwrap_err();
        assert!(error.to_string().contains("decode limit"), "{error}");
    });
}

#[test]
fn megabytes_of_integer_text_are_refused_at_once() {
    let digits = "9".repeat(5_000_000);
    for opcode in ["I", "L"] {
        let pickle = format!("{opcode}{digits}\n.");
        every_read_fails(&Serializer::pickle(), pickle.as_bytes(), opcode);
    }
    let mut long4 = b"\x80\x02\x8b".to_vec();
    long4.extend(5_000_000u32.to_le_bytes());
    long4.extend(std::iter::repeat_n(0x7f, 5_000_000));
    long4.push(b'.');
    every_read_fails(&Serializer::pickle(), &long4, "LONG4");
}

#[test]
fn pickled_integers_at_the_64_bit_edges_read_exactly() {
    // pickle.dumps(n, protocol=p) for the edges, protocols 0 and 2.
    let cases: [(&[u8], i64); 4] = [
        (b"I9223372036854775807\n.", i64::MAX),
        (b"L-9223372036854775808L\n.", i64::MIN),
        (
            b"\x80\x02\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f.",
            i64::MAX,
        ),
        (
            b"\x80\x02\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.",
            i64::MIN,
        ),
    ];
    for (pickle, expected) in cases {
        assert_eq!(
            Serializer::pickle().deserialize::<i64>(pickle).unwrap(),
            expected
        );
    }
    // 2**63 in nine bytes does not fit.
    let too_big = b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.";
    assert!(Serializer::pickle().deserialize::<i64>(too_big).is_err());
}

#[test]
fn a_pickled_class_instance_is_an_error_naming_the_class() {
    // pickle.dumps(datetime.date(2024, 1, 2), protocol=2)
    let date = b"\x80\x02cdatetime\ndate\nq\x00c_codecs\nencode\nq\x01X\x05\x00\x00\x00\x07\xc3\xa8\x01\x02q\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05\x85q\x06Rq\x07.";
    let error = Serializer::pickle()
        .deserialize::<serde_json::Value>(date)
        .unwrap_err();
    assert!(error.to_string().contains("datetime.date"), "{error}");
    // An object rebuilt with BUILD (its attribute dict) is refused too, not read as a dict.
    // pickle.dumps(Point(), protocol=4) for a `class Point` in `__main__` with x = 1
    let instance = b"\x80\x04\x95\x24\x00\x00\x00\x00\x00\x00\x00\x8c\x08__main__\x94\x8c\x05Point\x94\x93\x94)\x81\x94}\x94\x8c\x01x\x94K\x01sb.";
    every_read_fails(&Serializer::pickle(), instance, "instance");
}

#[test]
fn protocol_2_spellings_of_bytes_and_sets_still_read() {
    // pickle.dumps(b'\x00\xff', protocol=2) and pickle.dumps({1, 2}, protocol=2)
    let bytes = b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.";
    let read: serde_bytes::ByteBuf = Serializer::pickle().deserialize(bytes).unwrap();
    assert_eq!(read.as_ref(), b"\x00\xff");
    let set = b"\x80\x02c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.";
    let read: Vec<i64> = Serializer::pickle().deserialize(set).unwrap();
    assert_eq!(read, [1, 2]);
}

#[test]
fn msgpack_nested_seven_hundred_deep_is_an_error_not_an_abort() {
    on_worker_stack(|| {
        let mut deep = vec![0x91u8; 700];
        deep.push(0xc0);
        every_read_fails(&Serializer::msgpack(), &deep, "deep msgpack");
        let mut within = vec![0x91u8; 128];
        within.push(0xc0);
        Serializer::msgpack()
            .deserialize::<serde_json::Value>(&within)
            .unwrap();
    });
}

#[test]
fn msgpack_lengths_past_the_input_are_errors_without_allocating_them() {
    // An array announcing 2^32 - 1 items, a str announcing 4 GiB.
    for bytes in [&b"\xdd\xff\xff\xff\xff\xc0"[..], b"\xdb\xff\xff\xff\xffabc"] {
        every_read_fails(&Serializer::msgpack(), bytes, "msgpack length");
    }
}

#[test]
fn json_nested_deeply_is_an_error_not_an_abort() {
    on_worker_stack(|| {
        let deep = "[".repeat(100_000);
        every_read_fails(&Serializer::json(), deep.as_bytes(), "deep json");
    });
}

/// A small deterministic generator, so a failure can be replayed from its case number.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Valid values in each format, to mutate: random bytes alone rarely get past the first
/// opcode.
fn seeds(serializer: &Serializer) -> Vec<Vec<u8>> {
    let value = serde_json::json!({
        "name": "ada", "tags": ["a", "b", ["c", {"d": 1.5}]], "n": -7, "ok": true, "none": null
    });
    let mut seeds = vec![
        serializer.serialize(&value).unwrap(),
        serializer.serialize(&vec![vec![1u8, 2], vec![3]]).unwrap(),
        serializer.serialize(&("x", 1i64, u64::MAX)).unwrap(),
    ];
    seeds.push(nested_pickle_lists(40));
    seeds.push(memo_fan_out(12));
    seeds
}

fn mutate(rng: &mut XorShift, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(4) {
            0 if at < bytes.len() => bytes[at] = rng.next() as u8,
            1 => bytes.insert(at, rng.next() as u8),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {
                let chunk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, chunk);
            }
        }
    }
    bytes
}

#[test]
fn every_decoder_survives_a_hundred_thousand_hostile_inputs() {
    on_worker_stack(|| {
        let started = Instant::now();
        for (name, serializer) in [
            ("pickle", Serializer::pickle()),
            ("msgpack", Serializer::msgpack()),
            ("json", Serializer::json()),
        ] {
            let seeds = seeds(&serializer);
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            for case in 0..100_000 {
                let bytes = if case % 4 == 0 {
                    (0..rng.below(64)).map(|_| rng.next() as u8).collect()
                } else {
                    mutate(&mut rng, &seeds)
                };
                let one = Instant::now();
                let _ = serializer.deserialize::<serde_json::Value>(&bytes);
                let _ = serializer.deserialize::<IgnoredAny>(&bytes);
                assert!(
                    one.elapsed() < Duration::from_secs(1),
                    "{name} case {case} took {:?}: {bytes:?}",
                    one.elapsed()
                );
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60));
    });
}

/// A protocol 2 pickle calling the builtin `callable` (`module\nname\n`) `calls` times on
/// one memoized argument tuple (pushed by the opcodes `arguments`), and returning the list
/// of results: Python copies the argument at every call, and so must a reader.
fn repeated_calls(callable: &[u8], arguments: &[u8], calls: usize) -> Vec<u8> {
    let mut pickle = b"\x80\x02c".to_vec();
    pickle.extend(callable);
    pickle.extend(b"q\x00");
    pickle.extend(arguments);
    pickle.extend(b"q\x01](");
    for _ in 0..calls {
        pickle.extend(b"h\x00h\x01R");
    }
    pickle.extend(b"e.");
    pickle
}

/// The arguments `(text, 'latin1')`.
fn latin1_text(text: &str) -> Vec<u8> {
    let mut arguments = b"X".to_vec();
    arguments.extend(u32::try_from(text.len()).unwrap().to_le_bytes());
    arguments.extend(text.as_bytes());
    arguments.extend(b"X\x06\x00\x00\x00latin1\x86");
    arguments
}

/// The arguments `(list,)`, the list holding `items` small integers.
fn list_of(items: usize) -> Vec<u8> {
    let mut arguments = b"](".to_vec();
    arguments.extend(std::iter::repeat_n(&b"K\x00"[..], items).flatten());
    arguments.extend(b"e\x85");
    arguments
}

/// The arguments `(bytes,)`, the bytes made by `_codecs.encode(text, 'latin1')` (so held by
/// the reader, not lent from the pickle).
fn encoded_bytes(text: &str) -> Vec<u8> {
    let mut arguments = b"c_codecs\nencode\n".to_vec();
    arguments.extend(latin1_text(text));
    arguments.extend(b"R\x85");
    arguments
}

/// Every way a pickle can make the reader copy a memoized value: each case below is 100 to
/// 150 KB and would copy 600 MiB or more, far beyond its 16 MiB budget.
fn copy_bombs() -> Vec<(&'static str, Vec<u8>)> {
    let ascii = "x".repeat(32 << 10);
    let accented = "\u{e9}".repeat(16 << 10);
    let bytearray = b"__builtin__\nbytearray\n";
    vec![
        (
            "bytearray(text, 'latin1')",
            repeated_calls(bytearray, &latin1_text(&ascii), 20_000),
        ),
        (
            "bytearray(accented text, 'latin1')",
            repeated_calls(bytearray, &latin1_text(&accented), 20_000),
        ),
        (
            "_codecs.encode(text, 'latin1')",
            repeated_calls(b"_codecs\nencode\n", &latin1_text(&ascii), 20_000),
        ),
        (
            "bytearray(bytes)",
            repeated_calls(bytearray, &encoded_bytes(&ascii), 20_000),
        ),
        (
            "list(list)",
            repeated_calls(b"__builtin__\nlist\n", &list_of(20_000), 12_000),
        ),
        (
            "set(list)",
            repeated_calls(b"builtins\nset\n", &list_of(20_000), 12_000),
        ),
        (
            "frozenset(list)",
            repeated_calls(b"builtins\nfrozenset\n", &list_of(20_000), 12_000),
        ),
    ]
}

#[test]
fn a_pickle_copying_a_memoized_value_many_times_is_refused_within_the_budget() {
    on_worker_stack(|| {
        for (why, pickle) in copy_bombs() {
            assert!(pickle.len() < 150_000, "{why}: {} bytes", pickle.len());
            let started = Instant::now();
            let error = Serializer::pickle()
                .deserialize::<IgnoredAny>(&pickle)
                .unwrap_err();
            assert!(error.to_string().contains("decode limit"), "{why}: {error}");
            every_read_fails(&Serializer::pickle(), &pickle, why);
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{why}: refusing took {:?}",
                started.elapsed()
            );
        }
    });
}

#[tokio::test]
async fn a_copy_bomb_in_a_store_is_a_deserialize_error() {
    let repo = cachy::CacheManager::from_value(serde_json::json!({
        "stores": { "dict": { "driver": "dict", "serializer": "pickle" } }
    }))
    .unwrap()
    .store(None)
    .unwrap();
    for (why, pickle) in copy_bombs() {
        repo.store().put("k", &pickle, None).await.unwrap();
        let started = Instant::now();
        let error = repo.get::<Vec<Vec<u8>>>("k").await.unwrap_err();
        assert_eq!(
            error.kind(),
            cachy::ErrorKind::Deserialize,
            "{why}: {error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{why}: reading took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn copies_within_the_budget_still_read() {
    // pickle.dumps([bytearray(b'\x00\x7f\x80\xe9\xff'), b'caf\xe9', [1, 2], frozenset([3])],
    // protocol=2): every builtin call Python writes, latin-1 beyond ASCII included.
    let python = b"\x80\x02]q\x00(c__builtin__\nbytearray\nq\x01c_codecs\nencode\nq\x02X\x08\x00\x00\x00\x00\x7f\xc2\x80\xc3\xa9\xc3\xbfq\x03X\x06\x00\x00\x00latin1q\x04\x86q\x05Rq\x06\x85q\x07Rq\x08h\x02X\x05\x00\x00\x00caf\xc3\xa9q\th\x04\x86q\nRq\x0b]q\x0c(K\x01K\x02ec__builtin__\nfrozenset\nq\r]q\x0eK\x03a\x85q\x0fRq\x10e.";
    let read: (
        serde_bytes::ByteBuf,
        serde_bytes::ByteBuf,
        Vec<i64>,
        Vec<i64>,
    ) = Serializer::pickle().deserialize(python).unwrap();
    assert_eq!(read.0.as_ref(), b"\x00\x7f\x80\xe9\xff");
    assert_eq!(read.1.as_ref(), b"caf\xe9");
    assert_eq!((read.2, read.3), (vec![1, 2], vec![3]));
    // A thousand copies of 1 KiB: 1 MiB in all.
    let kib = "x".repeat(1 << 10);
    let bytearray = b"__builtin__\nbytearray\n";
    for arguments in [latin1_text(&kib), encoded_bytes(&kib)] {
        let pickle = repeated_calls(bytearray, &arguments, 1_000);
        let read: Vec<serde_bytes::ByteBuf> = Serializer::pickle().deserialize(&pickle).unwrap();
        assert_eq!(read.len(), 1_000);
        assert!(read.iter().all(|bytes| bytes.as_ref() == kib.as_bytes()));
    }
    let pickle = repeated_calls(b"__builtin__\nlist\n", &list_of(100), 1_000);
    let read: Vec<Vec<i64>> = Serializer::pickle().deserialize(&pickle).unwrap();
    assert_eq!(read, vec![vec![0; 100]; 1_000]);
    // One copy of a large value reads too, though charged twice: copied, then read.
    let large = "x".repeat(8 << 20);
    let pickle = repeated_calls(b"_codecs\nencode\n", &latin1_text(&large), 1);
    let read: Vec<serde_bytes::ByteBuf> = Serializer::pickle().deserialize(&pickle).unwrap();
    assert_eq!(read[0].as_ref(), large.as_bytes());
}
