//! Reading a `T` straight from the pickle machine's arena, without building the value tree.
//!
//! It gives exactly what reading through the tree ([`super::tree`], then
//! `serde_pickle::from_value`) gives, for the values it takes on: plain values, lists,
//! tuples, and dicts whose keys are all `str` or all `int`, each once. Dict entries are
//! visited in the tree's order (sorted by key), strings and bytes are lent from the arena,
//! and every node is charged to the same budget and depth limit before any work on it (a
//! dict's keys before they are sorted). Every container must be read to its end, so nothing
//! the tree would have checked goes unchecked. Anything else (sets, other or repeated dict
//! keys, enums, 128-bit integers, a visitor that stops early) and every error hands the
//! decode back to the tree, whose answer (value or error) is then the one given: this path
//! only ever shortens a success.

use serde::de::{self, DeserializeSeed, Visitor};

use super::objects::{Id, Object};
use super::tree::NODE_COST;

/// Why the direct path stopped; the tree path then decides.
#[derive(Debug)]
pub(super) struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("read through the value tree instead")
    }
}

impl std::error::Error for Declined {}

impl de::Error for Declined {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Declined
    }
}

type Result<T> = std::result::Result<T, Declined>;

/// The methods every deserializer of a read without the tree shares: a newtype struct is its
/// inner value, an enum is declined (the tree reads enums), and every other type is asked
/// for as `deserialize_any` asks, as serde_pickle's value deserializer does.
macro_rules! read_as_the_tree_does {
    () => {
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
    };
}

pub(super) use read_as_the_tree_does;

/// The arena and what is left of the budget.
pub(super) struct Reader<'a> {
    pub(super) objects: &'a [Object<'a>],
    pub(super) budget: usize,
    pub(super) max_depth: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn read<T: de::Deserialize<'a>>(&mut self, root: Id) -> Result<T> {
        T::deserialize(Node {
            reader: self,
            id: root,
            depth: 0,
        })
    }

    fn charge(&mut self, payload: usize) -> Result<()> {
        let cost = NODE_COST.saturating_add(payload);
        self.budget = self.budget.checked_sub(cost).ok_or(Declined)?;
        Ok(())
    }
}

/// One object of the arena, at a depth.
struct Node<'r, 'a> {
    reader: &'r mut Reader<'a>,
    id: Id,
    depth: usize,
}

impl<'r, 'a> Node<'r, 'a> {
    fn object(&self) -> &'a Object<'a> {
        &self.reader.objects[self.id]
    }

    /// The depth of this container's children.
    fn enter(&self) -> Result<usize> {
        if self.depth >= self.reader.max_depth {
            return Err(Declined);
        }
        Ok(self.depth + 1)
    }
}

impl<'de> de::Deserializer<'de> for Node<'_, 'de> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let object = self.object();
        match object {
            Object::None => {
                self.reader.charge(0)?;
                visitor.visit_unit()
            }
            Object::Bool(b) => {
                self.reader.charge(0)?;
                visitor.visit_bool(*b)
            }
            Object::Int(i) => {
                self.reader.charge(0)?;
                match i64::try_from(*i) {
                    Ok(i) => visitor.visit_i64(i),
                    // Above `i64::MAX`: within `u64` (see `Object::Int`).
                    Err(_) => visitor.visit_u64(*i as u64),
                }
            }
            Object::Float(f) => {
                self.reader.charge(0)?;
                visitor.visit_f64(*f)
            }
            Object::Bytes(bytes) => {
                self.reader.charge(bytes.len())?;
                visitor.visit_borrowed_bytes(bytes)
            }
            Object::Str(text) => {
                self.reader.charge(text.len())?;
                visitor.visit_borrowed_str(text)
            }
            Object::List(items) | Object::Tuple(items) => {
                self.reader.charge(0)?;
                let depth = self.enter()?;
                let mut seq = Items {
                    reader: self.reader,
                    items: items.iter(),
                    depth,
                };
                let value = visitor.visit_seq(&mut seq)?;
                read_to_the_end(seq.items.len(), value)
            }
            Object::Dict(pairs) => {
                self.reader.charge(0)?;
                let depth = self.enter()?;
                let pairs = in_tree_order(self.reader, pairs)?;
                let mut map = Entries {
                    reader: self.reader,
                    pairs: pairs.into_iter(),
                    value: None,
                    depth,
                };
                let value = visitor.visit_map(&mut map)?;
                read_to_the_end(map.pairs.len(), value)
            }
            Object::Set(_) | Object::FrozenSet(_) | Object::Global(_) => Err(Declined),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.object() {
            Object::None => {
                self.reader.charge(0)?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    read_as_the_tree_does!();
}

/// `value`, if its container was read to the end (`left` items unread). serde_pickle lets a
/// visitor stop early, but the tree has then checked the rest, which this path has not.
fn read_to_the_end<T>(left: usize, value: T) -> Result<T> {
    if left == 0 { Ok(value) } else { Err(Declined) }
}

/// The pairs of a dict in the order the tree's `BTreeMap` holds them: sorted by key. Each
/// key is charged first, as the tree charges it, so sorting costs no more than the budget
/// allows. Declined unless the keys are all `str` or all `int` (whose order is their own)
/// and none repeats (the tree keeps the last value of a repeated key, and checks the others).
fn in_tree_order(reader: &mut Reader<'_>, pairs: &[(Id, Id)]) -> Result<Vec<(Id, Id)>> {
    let objects = reader.objects;
    for &(key, _) in pairs {
        match &objects[key] {
            Object::Str(text) => reader.charge(text.len())?,
            _ => reader.charge(0)?,
        }
    }
    match pairs.first().map(|&(key, _)| &objects[key]) {
        None => Ok(Vec::new()),
        Some(Object::Str(_)) => sorted_by_key(pairs, |id| match &objects[id] {
            Object::Str(text) => Some(&**text),
            _ => None,
        }),
        Some(Object::Int(_)) => sorted_by_key(pairs, |id| match objects[id] {
            Object::Int(i) => Some(i),
            _ => None,
        }),
        Some(_) => Err(Declined),
    }
}

/// `pairs` sorted by `key_of` their key; declined if a key has none or two are equal. The
/// keys are looked up again at each comparison rather than copied beside the pairs: one
/// allocation per dict instead of two.
fn sorted_by_key<K: Ord>(
    pairs: &[(Id, Id)],
    key_of: impl Fn(Id) -> Option<K>,
) -> Result<Vec<(Id, Id)>> {
    if pairs.iter().any(|&(key, _)| key_of(key).is_none()) {
        return Err(Declined);
    }
    let mut sorted = pairs.to_vec();
    sorted.sort_unstable_by_key(|&(key, _)| key_of(key));
    if sorted
        .windows(2)
        .any(|pair| key_of(pair[0].0) == key_of(pair[1].0))
    {
        return Err(Declined);
    }
    Ok(sorted)
}

struct Items<'r, 'a> {
    reader: &'r mut Reader<'a>,
    items: std::slice::Iter<'a, Id>,
    depth: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.items.next() {
            Some(&id) => seed
                .deserialize(Node {
                    reader: self.reader,
                    id,
                    depth: self.depth,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Entries<'r, 'a> {
    reader: &'r mut Reader<'a>,
    pairs: std::vec::IntoIter<(Id, Id)>,
    value: Option<Id>,
    depth: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some((key, value)) = self.pairs.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Node {
            reader: self.reader,
            id: key,
            depth: self.depth,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let id = self.value.take().ok_or(Declined)?;
        seed.deserialize(Node {
            reader: self.reader,
            id,
            depth: self.depth,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::serializer::DecodeLimits;
    use crate::serializer::pickle::unpickler;

    /// What the direct path reads from `bytes` (`None`: declined), and what the tree gives.
    fn both<T: de::DeserializeOwned>(bytes: &[u8]) -> (Option<T>, Option<T>) {
        let limits = DecodeLimits::default();
        let arena = unpickler::run(bytes, &limits).unwrap();
        let direct = Reader {
            objects: &arena.objects,
            budget: arena.budget,
            max_depth: limits.max_depth(),
        }
        .read(arena.root)
        .ok();
        let tree = arena
            .tree(&limits)
            .ok()
            .and_then(|value| serde_pickle::from_value(value).ok());
        (direct, tree)
    }

    /// The entries of a map in the order they are visited.
    #[derive(Debug, PartialEq)]
    struct Visited(Vec<(String, i64)>);

    impl<'de> Deserialize<'de> for Visited {
        fn deserialize<D: de::Deserializer<'de>>(
            deserializer: D,
        ) -> std::result::Result<Self, D::Error> {
            struct Entries;
            impl<'de> Visitor<'de> for Entries {
                type Value = Visited;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a map")
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> std::result::Result<Visited, A::Error> {
                    let mut entries = Vec::new();
                    while let Some(entry) = map.next_entry()? {
                        entries.push(entry);
                    }
                    Ok(Visited(entries))
                }
            }
            deserializer.deserialize_map(Entries)
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        id: u64,
        name: String,
        active: bool,
        scores: Vec<f64>,
        nickname: Option<String>,
        #[serde(with = "serde_bytes")]
        avatar: Vec<u8>,
        pair: (i32, String),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Circle(f64),
        Square { side: u32 },
        Empty,
    }

    #[test]
    fn reads_what_the_tree_reads() {
        let user = User {
            id: 42,
            name: "Anne".into(),
            active: true,
            scores: vec![1.5, -2.0],
            nickname: None,
            avatar: vec![0, 255],
            pair: (-7, "x".into()),
        };
        let bytes = serde_pickle::to_vec(&vec![Some(&user), None], Default::default()).unwrap();
        let (direct, tree) = both::<Vec<Option<User>>>(&bytes);
        assert_eq!(direct, tree);
        assert_eq!(direct.unwrap()[0].as_ref(), Some(&user));

        let numbers: HashMap<i64, String> = (0..50).map(|i| (i * 7 % 13, i.to_string())).collect();
        let bytes = serde_pickle::to_vec(&numbers, Default::default()).unwrap();
        let (direct, tree) = both::<BTreeMap<i64, String>>(&bytes);
        assert!(direct.is_some());
        assert_eq!(direct, tree);
    }

    #[test]
    fn visits_dict_entries_in_the_trees_order_and_leaves_repeated_keys_to_the_tree() {
        // {'b': 1, 'c': 2, 'a': 3}
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00bK\x01X\x01\x00\x00\x00cK\x02X\x01\x00\x00\x00aK\x03u.";
        let (direct, tree) = both::<Visited>(bytes);
        let sorted = vec![("a".into(), 3), ("b".into(), 1), ("c".into(), 2)];
        assert_eq!(direct, Some(Visited(sorted)));
        assert_eq!(direct, tree);
        // {'b': 1, 'a': 2, 'b': 3}, as SETITEMS can spell it: the tree keeps the last 'b'.
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00bK\x01X\x01\x00\x00\x00aK\x02X\x01\x00\x00\x00bK\x03u.";
        let (direct, tree) = both::<Visited>(bytes);
        assert_eq!(direct, None);
        assert_eq!(tree, Some(Visited(vec![("a".into(), 2), ("b".into(), 3)])));
    }

    #[test]
    fn a_visitor_that_stops_early_or_a_128_bit_integer_is_left_to_the_tree() {
        // (1, 2, [[[...]]]) nested deeper than the tree allows: a 2-tuple reads only the
        // first two, the tree refuses the whole.
        let mut bytes = b"\x80\x02(K\x01K\x02".to_vec();
        bytes.extend(std::iter::repeat_n(b']', 200));
        bytes.extend(std::iter::repeat_n(b'a', 199));
        bytes.extend_from_slice(b"t.");
        assert_eq!(both::<(i64, i64)>(&bytes), (None, None));
        let bytes = serde_pickle::to_vec(&5i64, Default::default()).unwrap();
        assert_eq!(both::<i128>(&bytes), (None, None));
    }

    #[test]
    fn a_dict_shared_many_times_is_charged_for_every_key_before_it_is_sorted() {
        // A list of 20,000 references to one dict of 2,000 int keys: 40 million keys to
        // visit from 26 KB, far beyond the budget.
        let mut bytes = b"\x80\x02](}q\x01(".to_vec();
        for i in 0..2000u16 {
            bytes.push(b'M');
            bytes.extend_from_slice(&i.to_le_bytes());
            bytes.extend_from_slice(b"K\x00");
        }
        bytes.push(b'u');
        bytes.extend(std::iter::repeat_n(&b"h\x01"[..], 19_999).flatten());
        bytes.extend_from_slice(b"e.");
        let started = std::time::Instant::now();
        assert_eq!(both::<Vec<BTreeMap<i64, i64>>>(&bytes), (None, None));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn declines_what_it_does_not_take_on_so_the_tree_answers() {
        for shape in [Shape::Circle(1.5), Shape::Square { side: 3 }, Shape::Empty] {
            let bytes = serde_pickle::to_vec(&shape, Default::default()).unwrap();
            let (direct, tree) = both::<Shape>(&bytes);
            assert_eq!((direct, tree), (None, Some(shape)));
        }
        // {1, 2}: a set.
        let (direct, tree) =
            both::<Vec<i64>>(b"\x80\x04\x95\x07\x00\x00\x00\x00\x00\x00\x00\x8f(K\x01K\x02\x90.");
        assert_eq!((direct, tree), (None, Some(vec![1, 2])));
        // {1: 'a', 'b': 'c'}: keys of two types.
        let bytes = b"\x80\x02}(K\x01X\x01\x00\x00\x00aX\x01\x00\x00\x00bX\x01\x00\x00\x00cu.";
        let (direct, _) = both::<BTreeMap<String, String>>(bytes);
        assert_eq!(direct, None);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_declined() {
        let bytes = serde_pickle::to_vec(&"text", Default::default()).unwrap();
        assert_eq!(both::<u32>(&bytes), (None, None));
    }
}
