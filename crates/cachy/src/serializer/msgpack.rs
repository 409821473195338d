//! MessagePack, laid out as Python's `msgpack.packb(data, use_bin_type=True)`.
//!
//! Python cachy's own msgpack serializer calls `unpackb(encoding=...)`, which msgpack 1.0
//! removed; it only works with `msgpack<1.0`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DecodeLimits;
use crate::error::BoxError;

pub(super) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError> {
    // Room for a small value at once: `to_vec_named` starts empty and grows the buffer
    // several times over for a struct of a few fields (62 ns to encode one, against 24 ns
    // for pickle's writer, which starts with room).
    let mut bytes = Vec::with_capacity(STARTING_ROOM);
    rmp_serde::encode::write_named(&mut bytes, value)?;
    Ok(bytes)
}

/// The encoder's first buffer, in bytes.
const STARTING_ROOM: usize = 128;

pub(super) fn deserialize<T: DeserializeOwned>(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<T, BoxError> {
    // The slice reader lends strings and bytes straight from `bytes` (the reader over `io::Read`
    // copies each into a buffer first) but cannot tell where it stopped, so the value's extent
    // is measured first. rmp-serde fails a sequence or map its visitor leaves unfinished, so
    // a `T` that decodes consumed exactly this one value.
    let length = value_length(bytes)?;
    if length < bytes.len() {
        return Err(format!(
            "{} bytes left over after the msgpack value",
            bytes.len() - length
        )
        .into());
    }
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    // rmp-serde counts the level it stops at: this allows exactly `max_depth` levels.
    de.set_max_depth(limits.max_depth().saturating_add(1));
    Ok(T::deserialize(&mut de)?)
}

/// The length of the msgpack value at the start of `bytes`, in one pass with no recursion
/// and no allocation (values still to skip are counted, not stacked).
fn value_length(bytes: &[u8]) -> Result<usize, String> {
    let ends_early = || "the msgpack value ends early".to_owned();
    let mut position = 0usize;
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(position).ok_or_else(ends_early)?;
        position += 1;
        let mut length = |size: usize| -> Result<u64, String> {
            let field = bytes
                .get(position..position + size)
                .ok_or_else(ends_early)?;
            position += size;
            Ok(field.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))
        };
        let payload: u64 = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0x80..=0x8f => {
                pending += 2 * u64::from(marker & 0x0f);
                0
            }
            0x90..=0x9f => {
                pending += u64::from(marker & 0x0f);
                0
            }
            0xa0..=0xbf => u64::from(marker & 0x1f),
            0xc1 => return Err("byte 0xc1 is never used in msgpack".to_owned()),
            0xc4 | 0xd9 => length(1)?,
            0xc5 | 0xda => length(2)?,
            0xc6 | 0xdb => length(4)?,
            0xc7 => length(1)? + 1,
            0xc8 => length(2)? + 1,
            0xc9 => length(4)? + 1,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xca | 0xce | 0xd2 => 4,
            0xcb | 0xcf | 0xd3 => 8,
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xdc => {
                pending += length(2)?;
                0
            }
            0xdd => {
                pending += length(4)?;
                0
            }
            0xde => {
                pending += 2 * length(2)?;
                0
            }
            0xdf => {
                pending += 2 * length(4)?;
                0
            }
        };
        position = usize::try_from(payload)
            .ok()
            .and_then(|payload| position.checked_add(payload))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(ends_early)?;
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::value_length;

    #[test]
    fn measures_every_kind_of_value() {
        let values: Vec<Vec<u8>> = vec![
            rmp_serde::to_vec(&7u8).unwrap(),
            rmp_serde::to_vec(&-3i8).unwrap(),
            rmp_serde::to_vec(&u64::MAX).unwrap(),
            rmp_serde::to_vec(&i64::MIN).unwrap(),
            rmp_serde::to_vec(&1.5f32).unwrap(),
            rmp_serde::to_vec(&2.5f64).unwrap(),
            rmp_serde::to_vec(&Option::<u8>::None).unwrap(),
            rmp_serde::to_vec(&true).unwrap(),
            rmp_serde::to_vec(&"x".repeat(40)).unwrap(),
            rmp_serde::to_vec(&"y".repeat(300)).unwrap(),
            rmp_serde::to_vec(&"z".repeat(70_000)).unwrap(),
            rmp_serde::to_vec(&serde_bytes::ByteBuf::from(vec![1u8; 300])).unwrap(),
            rmp_serde::to_vec(&vec![vec![1u32, 70_000], vec![]]).unwrap(),
            rmp_serde::to_vec(&vec![0u8; 20]).unwrap(),
            rmp_serde::to_vec(&vec![0u8; 70_000]).unwrap(),
            rmp_serde::to_vec_named(&std::collections::BTreeMap::from([("a", vec![1, 2])]))
                .unwrap(),
            rmp_serde::to_vec_named(
                &(0..20)
                    .map(|i| (i, i.to_string()))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .unwrap(),
            // fixext 1, 2, 4, 8, 16; ext 8.
            vec![0xd4, 1, 0],
            vec![0xd5, 1, 0, 0],
            vec![0xd6, 1, 0, 0, 0, 0],
            vec![0xd7, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            [&[0xd8, 1][..], &[0; 16]].concat(),
            vec![0xc7, 2, 1, 0, 0],
        ];
        for value in values {
            assert_eq!(value_length(&value), Ok(value.len()), "{value:02x?}");
            let mut longer = value.clone();
            longer.push(0);
            assert_eq!(value_length(&longer), Ok(value.len()), "{value:02x?}");
            assert!(
                value_length(&value[..value.len() - 1]).is_err(),
                "{value:02x?}"
            );
        }
    }

    #[test]
    fn huge_declared_lengths_fail_without_work() {
        for bytes in [
            &[0xdd, 0xff, 0xff, 0xff, 0xff][..],
            &[0xdf, 0xff, 0xff, 0xff, 0xff],
            &[0xc6, 0xff, 0xff, 0xff, 0xff],
            &[0xc1],
            &[],
        ] {
            assert!(value_length(bytes).is_err(), "{bytes:02x?}");
        }
    }
}
