//! The commonest pickle, a struct of plain fields, read without the pickle machine.
//!
//! A struct is pickled as a dict of field names to values. When every value is a plain one (None, a
//! bool, an int, a float, a str or bytes) or a list of plain ones, and the dict has at most
//! [`MAX_PAIRS`] fields, its pairs are read into an array on the stack, sorted by key, and handed
//! to the visitor: no arena, no allocation but the value's own (a list's items are read again from
//! its opcodes as they are visited). It reads exactly what the direct path ([`super::direct`])
//! reads from the same bytes, visiting the same entries in the same (sorted) order, charging the
//! same budget, and it declines everything else (any other opcode, a memo lookup, a tuple, a
//! container in a list, keys that are not all `str` or that repeat, a visitor that fails or stops
//! early): the machine then answers, so this path only ever shortens a success.

use serde::de::{self, DeserializeSeed, Visitor};

use super::direct::Declined;
use super::scalars::twos_complement;
use super::tree::NODE_COST;
use crate::serializer::DecodeLimits;

/// The most fields read this way: enough for most structs, and a small array to sort.
const MAX_PAIRS: usize = 16;

type Result<T> = std::result::Result<T, Declined>;

/// A plain value, lent from the pickle.
#[derive(Clone, Copy)]
enum Plain<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// Above `i64::MAX`.
    Large(u64),
    Float(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
    /// A list of plain values, as the pickle spells it (read again when visited).
    List(List<'a>),
}

/// A list's opcodes after `EMPTY_LIST`, how many items they append, and what the items cost.
#[derive(Clone, Copy)]
struct List<'a> {
    opcodes: &'a [u8],
    items: usize,
    cost: usize,
}

impl Plain<'_> {
    /// What the direct path charges for this value's node.
    fn cost(&self) -> usize {
        NODE_COST
            + match self {
                Plain::Str(text) => text.len(),
                Plain::Bytes(bytes) => bytes.len(),
                Plain::List(list) => list.cost,
                _ => 0,
            }
    }
}

/// `bytes` read as a `T` if they are a flat dict this path takes on, else `Err(Declined)`.
pub(super) fn read<'a, T: de::Deserialize<'a>>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<T> {
    let mut pairs = [("", Plain::None); MAX_PAIRS];
    let count = Reader { input: bytes }.dict(&mut pairs)?;
    let pairs = &mut pairs[..count];
    pairs.sort_unstable_by_key(|&(key, _)| key);
    if pairs.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(Declined);
    }
    // The dict's node, then each key twice (before the pairs are ordered, and when it is
    // visited) and each value, as the direct path charges them.
    let charged = pairs.iter().fold(NODE_COST, |sum, (key, value)| {
        sum + 2 * (NODE_COST + key.len()) + value.cost()
    });
    if charged > limits.budget(bytes.len()) {
        return Err(Declined);
    }
    // A list's items sit two levels down.
    let lists = pairs
        .iter()
        .any(|(_, value)| matches!(value, Plain::List(_)));
    if lists && limits.max_depth() < 2 {
        return Err(Declined);
    }
    T::deserialize(Dict { pairs })
}

/// The pickle's bytes still to read.
struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Read the whole pickle as one flat dict into `pairs`, and how many it holds.
    fn dict(&mut self, pairs: &mut [(&'a str, Plain<'a>); MAX_PAIRS]) -> Result<usize> {
        if self.peek() == Some(0x80) {
            self.take(1)?;
            if self.byte()? > 5 {
                return Err(Declined);
            }
        }
        self.skip_frame()?;
        if self.byte()? != b'}' {
            return Err(Declined);
        }
        self.skip_memo_put()?;
        match self.byte()? {
            // MARK, then the pairs, then SETITEMS.
            b'(' => {}
            // No pairs at all.
            b'.' => return self.end(0),
            // Anything else, such as the one pair and SETITEM Python writes for a dict of
            // one item.
            _ => return Err(Declined),
        }
        let mut count = 0;
        while self.peek() != Some(b'u') {
            let slot = pairs.get_mut(count).ok_or(Declined)?;
            *slot = (self.key()?, self.value()?);
            count += 1;
        }
        self.take(1)?;
        if self.byte()? != b'.' {
            return Err(Declined);
        }
        self.end(count)
    }

    /// `count`, if nothing follows the end of the pickle.
    fn end(&self, count: usize) -> Result<usize> {
        if self.input.is_empty() {
            Ok(count)
        } else {
            Err(Declined)
        }
    }

    /// A dict's value: a plain one, or a list of them.
    fn value(&mut self) -> Result<Plain<'a>> {
        if self.peek() == Some(b']') {
            self.take(1)?;
            self.skip_memo_put()?;
            return self.list();
        }
        self.plain()
    }

    /// The items appended to the list just made: batches of `MARK` items `APPENDS`, and
    /// single items each followed by `APPEND`, as Python and serde_pickle write them.
    fn list(&mut self) -> Result<Plain<'a>> {
        let start = self.input;
        let (mut items, mut cost) = (0, 0);
        loop {
            if self.peek() == Some(b'(') {
                self.take(1)?;
                while self.peek() != Some(b'e') {
                    cost += self.plain()?.cost();
                    items += 1;
                }
                self.take(1)?;
                continue;
            }
            // One item and APPEND; else what follows is the dict's next key, read again.
            let before = self.input;
            match self.plain() {
                Ok(item) if self.peek() == Some(b'a') => {
                    self.take(1)?;
                    cost += item.cost();
                    items += 1;
                }
                _ => {
                    self.input = before;
                    break;
                }
            }
        }
        let opcodes = &start[..start.len() - self.input.len()];
        Ok(Plain::List(List {
            opcodes,
            items,
            cost,
        }))
    }

    /// The next item of a list's opcodes, which [`list`](Self::list) read once already.
    fn item(&mut self) -> Result<Plain<'a>> {
        while let Some(b'(' | b'e' | b'a') = self.peek() {
            self.take(1)?;
        }
        self.plain()
    }

    fn key(&mut self) -> Result<&'a str> {
        match self.plain()? {
            Plain::Str(text) => Ok(text),
            _ => Err(Declined),
        }
    }

    /// One plain value, and the memo entry the pickle may make of it.
    fn plain(&mut self) -> Result<Plain<'a>> {
        let value = match self.byte()? {
            b'N' => Plain::None,
            0x88 => Plain::Bool(true),
            0x89 => Plain::Bool(false),
            b'K' => Plain::Int(self.byte()?.into()),
            b'M' => Plain::Int(u16::from_le_bytes(self.array()?).into()),
            b'J' => Plain::Int(i32::from_le_bytes(self.array()?).into()),
            0x8a => {
                let length = self.byte()?;
                let value = twos_complement(self.take(length.into())?).map_err(|_| Declined)?;
                // `twos_complement` keeps to what `i64` and `u64` hold.
                match i64::try_from(value) {
                    Ok(value) => Plain::Int(value),
                    Err(_) => Plain::Large(u64::try_from(value).map_err(|_| Declined)?),
                }
            }
            b'G' => Plain::Float(f64::from_be_bytes(self.array()?)),
            0x8c => {
                let length = self.byte()?;
                Plain::Str(self.text(length.into())?)
            }
            b'X' => {
                let length = u32::from_le_bytes(self.array()?);
                Plain::Str(self.text(length as usize)?)
            }
            0x8d => {
                let length = u64::from_le_bytes(self.array()?);
                Plain::Str(self.text(usize::try_from(length).map_err(|_| Declined)?)?)
            }
            b'C' => {
                let length = self.byte()?;
                Plain::Bytes(self.take(length.into())?)
            }
            b'B' => {
                let length = u32::from_le_bytes(self.array()?);
                Plain::Bytes(self.take(length as usize)?)
            }
            0x8e => {
                let length = u64::from_le_bytes(self.array()?);
                Plain::Bytes(self.take(usize::try_from(length).map_err(|_| Declined)?)?)
            }
            _ => return Err(Declined),
        };
        self.skip_memo_put()?;
        Ok(value)
    }

    fn text(&mut self, length: usize) -> Result<&'a str> {
        std::str::from_utf8(self.take(length)?).map_err(|_| Declined)
    }

    /// A memo entry for the object just made. Only a lookup could tell it was made, and a
    /// lookup is declined.
    fn skip_memo_put(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'q') => self.take(2).map(drop),
            Some(b'r') => self.take(5).map(drop),
            Some(0x94) => self.take(1).map(drop),
            _ => Ok(()),
        }
    }

    /// A protocol 4 frame's header: the frame itself is read as the rest of the pickle.
    fn skip_frame(&mut self) -> Result<()> {
        if self.peek() == Some(0x95) {
            self.take(9)?;
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.input.first().copied()
    }

    fn byte(&mut self) -> Result<u8> {
        let (&byte, rest) = self.input.split_first().ok_or(Declined)?;
        self.input = rest;
        Ok(byte)
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8]> {
        if length > self.input.len() {
            return Err(Declined);
        }
        let (taken, rest) = self.input.split_at(length);
        self.input = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| Declined)
    }
}

/// The dict, as the direct path's node of a dict behaves.
struct Dict<'p, 'a> {
    pairs: &'p [(&'a str, Plain<'a>)],
}

impl<'de> de::Deserializer<'de> for Dict<'_, 'de> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let mut entries = Entries {
            pairs: self.pairs.iter(),
            value: None,
        };
        let value = visitor.visit_map(&mut entries)?;
        if entries.pairs.len() == 0 {
            Ok(value)
        } else {
            Err(Declined)
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(Declined)
    }

    serde::forward_to_deserialize_any! {
        bool u8 u16 u32 u64 i8 i16 i32 i64 f32 f64 char str string unit seq
        bytes byte_buf map unit_struct tuple_struct struct identifier tuple ignored_any
    }
}

struct Entries<'p, 'a> {
    pairs: std::slice::Iter<'p, (&'a str, Plain<'a>)>,
    value: Option<Plain<'a>>,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some(&(key, value)) = self.pairs.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Plain::Str(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(self.value.take().ok_or(Declined)?)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
}

/// A list's items, read again from its opcodes as they are visited.
struct Items<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'de> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(self.reader.item()?).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// A plain value, as the direct path's node of one behaves.
impl<'de> de::Deserializer<'de> for Plain<'de> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Plain::None => visitor.visit_unit(),
            Plain::Bool(b) => visitor.visit_bool(b),
            Plain::Int(i) => visitor.visit_i64(i),
            Plain::Large(u) => visitor.visit_u64(u),
            Plain::Float(f) => visitor.visit_f64(f),
            Plain::Str(text) => visitor.visit_borrowed_str(text),
            Plain::Bytes(bytes) => visitor.visit_borrowed_bytes(bytes),
            Plain::List(list) => {
                let mut items = Items {
                    reader: Reader {
                        input: list.opcodes,
                    },
                    left: list.items,
                };
                let value = visitor.visit_seq(&mut items)?;
                if items.left == 0 {
                    Ok(value)
                } else {
                    Err(Declined)
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Plain::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(Declined)
    }

    serde::forward_to_deserialize_any! {
        bool u8 u16 u32 u64 i8 i16 i32 i64 f32 f64 char str string unit seq
        bytes byte_buf map unit_struct tuple_struct struct identifier tuple ignored_any
    }
}

#[cfg(test)]
mod tests {
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
            0x00, 0x01, 0x02, 0x09, 0x7f, 0x80, 0xff, b'(', b'.', b'}', b']', b'u', b's', b'q',
            b'e', b'a', b't', b'h', b'N', b'K', b'X', b'C', b'G', b'J', 0x88, 0x8a, 0x8c, 0x94,
            0x95,
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
}
