//! The plain-struct reader against the machine: Python's and serde_pickle's pickles, what it
//! declines, and every one-byte change of them.

use serde::Deserialize;
use serde_pickle::Value;

use super::*;
use crate::serializer::pickle::{direct, unpickler};

/// `{'name': 'Anne', 'id': 42, 'active': True, 'score': -1.5, 'big': 2**64 - 1,
/// 'neg': -300, 'blob': b'\x00\xff', 'none': None, 'w': 70000}` as Python 3.11 pickles it
/// with protocol 3 (memo entries after every str) and 4 (a frame, MEMOIZE).
const PROTOCOL_3: &[u8] = b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x04\x00\x00\x00Anneq\x02X\x02\x00\x00\x00idq\x03K*X\x06\x00\x00\x00activeq\x04\x88X\x05\x00\x00\x00scoreq\x05G\xbf\xf8\x00\x00\x00\x00\x00\x00X\x03\x00\x00\x00bigq\x06\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00X\x03\x00\x00\x00negq\x07J\xd4\xfe\xff\xffX\x04\x00\x00\x00blobq\x08C\x02\x00\xffq\x09X\x04\x00\x00\x00noneq\x0aNX\x01\x00\x00\x00wq\x0bJp\x11\x01\x00u.";
/// `{'a': [1, 2.5, 'x'], 'b': [7], 'c': []}`, pickled by Python 3.11 with protocols 3
/// and 4: a batch of items, one appended alone, none.
const LISTS_3: &[u8] = b"\x80\x03}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xq\x03eX\x01\x00\x00\x00bq\x04]q\x05K\x07aX\x01\x00\x00\x00cq\x06]q\x07u.";
const LISTS_4: &[u8] = b"\x80\x04\x95+\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01G@\x04\x00\x00\x00\x00\x00\x00\x8c\x01x\x94e\x8c\x01b\x94]\x94K\x07a\x8c\x01c\x94]\x94u.";
const PROTOCOL_4: &[u8] = b"\x80\x04\x95n\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04name\x94\x8c\x04Anne\x94\x8c\x02id\x94K*\x8c\x06active\x94\x88\x8c\x05score\x94G\xbf\xf8\x00\x00\x00\x00\x00\x00\x8c\x03big\x94\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00\x8c\x03neg\x94J\xd4\xfe\xff\xff\x8c\x04blob\x94C\x02\x00\xff\x94\x8c\x04none\x94N\x8c\x01w\x94Jp\x11\x01\x00u.";

/// What the flat path reads from `bytes` (`None`: declined), and what the machine gives
/// (read directly from its arena, else through the tree).
fn both<T: de::DeserializeOwned>(bytes: &[u8]) -> (Option<T>, Option<T>) {
    let limits = DecodeLimits::default();
    let flat = read(bytes, &limits).ok();
    let machine = unpickler::run(bytes, &limits).ok().and_then(|arena| {
        let mut direct = direct::Reader {
            objects: &arena.objects,
            budget: arena.budget,
            max_depth: limits.max_depth(),
        };
        direct.read(arena.root).ok().or_else(|| {
            let tree = arena.tree(&limits).ok()?;
            serde_pickle::from_value(tree).ok()
        })
    });
    (flat, machine)
}

/// The keys of a map in the order they are visited.
#[derive(Debug, PartialEq)]
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: de::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((key, de::IgnoredAny)) = map.next_entry()? {
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct Fields {
    name: String,
    id: u8,
    active: bool,
    score: f32,
    big: u64,
    neg: i16,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    none: Option<String>,
    w: Option<u32>,
}

#[test]
fn reads_what_python_writes_as_the_machine_does_in_the_trees_order() {
    for bytes in [PROTOCOL_3, PROTOCOL_4] {
        let (flat, tree) = both::<Value>(bytes);
        assert!(flat.is_some());
        assert_eq!(flat, tree);
        let (flat, tree) = both::<Keys>(bytes);
        assert_eq!(flat, tree);
        let keys = flat.unwrap().0;
        assert!(keys.is_sorted() && keys.len() == 9, "{keys:?}");
        let (flat, tree) = both::<Fields>(bytes);
        assert_eq!(flat, tree);
        let fields = flat.unwrap();
        assert_eq!(
            (fields.big, fields.neg, fields.w),
            (u64::MAX, -300, Some(70000))
        );
    }
}

#[test]
fn reads_lists_of_plain_values_as_the_machine_does() {
    for bytes in [LISTS_3, LISTS_4] {
        let (flat, machine) = both::<Value>(bytes);
        assert!(flat.is_some());
        assert_eq!(flat, machine);
        assert_eq!(both::<Keys>(bytes).0, both::<Keys>(bytes).1);
    }
    #[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
    struct Profile {
        id: u64,
        tags: Vec<String>,
        scores: Vec<f64>,
        empty: Vec<u8>,
        maybe: Option<Vec<i32>>,
    }
    let profile = Profile {
        id: 7,
        tags: vec!["a".into(), "b".into()],
        scores: vec![0.5],
        empty: vec![],
        maybe: Some(vec![-1, 2]),
    };
    let bytes = serde_pickle::to_vec(&profile, Default::default()).unwrap();
    let (flat, machine) = both::<Profile>(&bytes);
    assert_eq!(flat.as_ref(), Some(&profile));
    assert_eq!(flat, machine);
    // Too shallow a depth limit for a list's items: the machine answers (an error).
    let shallow = DecodeLimits::default().with_max_depth(1);
    assert!(read::<Value>(LISTS_3, &shallow).is_err());
    assert!(super::super::deserialize::<Value>(LISTS_3, &shallow).is_err());
}

#[test]
fn declines_what_it_does_not_take_on_so_the_machine_answers() {
    let declined: &[&[u8]] = &[
        // A repeated key (the tree keeps the last value), int keys, a memo lookup.
        b"\x80\x03}(X\x01\x00\x00\x00bK\x01X\x01\x00\x00\x00bK\x02u.",
        b"\x80\x03}(K\x01K\x02K\x03K\x04u.",
        b"\x80\x03}(X\x01\x00\x00\x00aq\x01h\x01u.",
        // A list in a list, one pair set with SETITEM, a tuple at the top.
        b"\x80\x03}(X\x01\x00\x00\x00a](]K\x01aeu.",
        b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.",
        b"\x80\x03K\x01K\x02\x86.",
    ];
    for &bytes in declined {
        let (flat, tree) = both::<Value>(bytes);
        assert_eq!(flat, None, "{bytes:?}");
        assert!(tree.is_some(), "{bytes:?}");
    }
    let many: std::collections::BTreeMap<String, u8> =
        (0..=MAX_PAIRS).map(|i| (format!("k{i:02}"), 1)).collect();
    let bytes = serde_pickle::to_vec(&many, Default::default()).unwrap();
    assert_eq!(both::<Value>(&bytes).0, None);
    // {'k' * 9,000,000: 2**64 - 1} with a budget the tree is within and the direct path
    // is not, because it charges each key twice: the tree's answer (an error, as it takes
    // no integer above `i64::MAX`) is the one given.
    let mut bytes = b"\x80\x04}\x94(\x8d".to_vec();
    bytes.extend(9_000_000u64.to_le_bytes());
    bytes.extend(std::iter::repeat_n(b'k', 9_000_000));
    bytes.extend(b"\x94\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00u.");
    let limits = DecodeLimits::default().with_max_expansion(2);
    assert!(read::<Value>(&bytes, &limits).is_err());
    assert!(super::super::deserialize::<Value>(&bytes, &limits).is_err());
    // Bytes after the end, and a pickle cut short.
    assert_eq!(both::<Value>(&[PROTOCOL_3, b"."].concat()), (None, None));
    assert_eq!(
        both::<Value>(&PROTOCOL_4[..PROTOCOL_4.len() - 1]),
        (None, None)
    );
}

#[test]
fn a_visitor_that_fails_or_stops_early_is_left_to_the_machine() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
    }
    assert!(read::<Strict>(PROTOCOL_4, &DecodeLimits::default()).is_err());
    /// Reads one entry of the map and stops.
    #[derive(Debug)]
    struct First;
    impl<'de> Deserialize<'de> for First {
        fn deserialize<D: de::Deserializer<'de>>(
            deserializer: D,
        ) -> std::result::Result<Self, D::Error> {
            struct One;
            impl<'de> Visitor<'de> for One {
                type Value = First;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a map")
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> std::result::Result<First, A::Error> {
                    map.next_entry::<String, de::IgnoredAny>()?;
                    Ok(First)
                }
            }
            deserializer.deserialize_map(One)
        }
    }
    assert!(read::<First>(PROTOCOL_4, &DecodeLimits::default()).is_err());
}

#[test]
fn any_change_to_the_bytes_reads_as_the_machine_reads_or_is_declined() {
    let bytes_of_interest = [
        0x00, 0x01, 0x02, 0x09, 0x7f, 0x80, 0xff, b'(', b'.', b'}', b']', b'u', b's', b'q', b'e',
        b'a', b't', b'h', b'N', b'K', b'X', b'C', b'G', b'J', 0x88, 0x8a, 0x8c, 0x94, 0x95,
    ];
    let mut read_directly = 0;
    for original in [PROTOCOL_3, PROTOCOL_4, LISTS_3, LISTS_4] {
        for at in 0..original.len() {
            for &byte in &bytes_of_interest {
                let mut bytes = original.to_vec();
                bytes[at] = byte;
                let (flat, tree) = both::<Value>(&bytes);
                if flat.is_some() {
                    read_directly += 1;
                    // Compared as text: a float changed to NaN equals no NaN.
                    assert_eq!(format!("{flat:?}"), format!("{tree:?}"), "{bytes:?}");
                    assert_eq!(both::<Keys>(&bytes).0, both::<Keys>(&bytes).1);
                }
            }
            let (flat, tree) = both::<Value>(&original[..at]);
            assert!(flat.is_none() || flat == tree);
        }
    }
    assert!(read_directly > 100, "{read_directly}");
}
