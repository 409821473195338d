//! Reading a `T` straight from the pickle machine's arena, without building the value tree.
//!
//! It gives exactly what reading through the tree ([`super::tree`], then
//! `serde_pickle::from_value`) gives, for the values it takes on: plain values, lists,
//! tuples, and dicts whose keys are all `str` or all `int`. Their entries are visited in the
//! tree's order (sorted by key, a repeated key's last value kept), strings and bytes are lent
//! from the arena, and every node visited is charged to the same budget and depth limit.
//! Anything else (sets, other dict keys, enums) and every error hands the decode back to
//! the tree, whose answer (value or error) is then the one given: this path only ever
//! shortens a success.

use serde::de::{self, DeserializeSeed, Visitor};

use super::tree::NODE_COST;
use super::unpickler::{Id, Object};

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
                visitor.visit_i64(*i)
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
                visitor.visit_seq(&mut seq)
            }
            Object::Dict(pairs) => {
                self.reader.charge(0)?;
                let depth = self.enter()?;
                let pairs = in_tree_order(self.reader.objects, pairs)?;
                let mut map = Entries {
                    reader: self.reader,
                    pairs: pairs.into_iter(),
                    value: None,
                    depth,
                };
                visitor.visit_map(&mut map)
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
        bool u8 u16 u32 u64 i8 i16 i32 i64 i128 u128 f32 f64 char str string unit seq
        bytes byte_buf map unit_struct tuple_struct struct identifier tuple ignored_any
    }
}

/// The pairs of a dict in the order the tree's `BTreeMap` holds them: sorted by key, and of
/// a repeated key only the last pair (the tree inserts in order, and a later value replaces
/// an earlier one). Declined unless the keys are all `str` or all `int`, whose order is
/// their own.
fn in_tree_order(objects: &[Object<'_>], pairs: &[(Id, Id)]) -> Result<Vec<(Id, Id)>> {
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

/// `pairs` sorted by `key_of` their key, the last of each repeated key kept; declined if a
/// key has none.
fn sorted_by_key<K: Ord>(
    pairs: &[(Id, Id)],
    key_of: impl Fn(Id) -> Option<K>,
) -> Result<Vec<(Id, Id)>> {
    let mut keyed = pairs
        .iter()
        .map(|&(key, value)| Some((key_of(key)?, key, value)))
        .collect::<Option<Vec<_>>>()
        .ok_or(Declined)?;
    // Stable, so repeated keys stay in the pickle's order; reversed, `dedup_by` keeps the
    // first of each run, which is the pickle's last.
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.reverse();
    keyed.dedup_by(|later, earlier| later.0 == earlier.0);
    keyed.reverse();
    Ok(keyed
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .collect())
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
        let arena = unpickler::run(bytes).unwrap();
        let direct = Reader {
            objects: &arena.objects,
            budget: limits.budget(bytes.len()),
            max_depth: limits.max_depth(),
        }
        .read(arena.root)
        .ok();
        let tree = arena
            .tree(&limits, bytes.len())
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
    fn visits_dict_entries_in_the_trees_order_keeping_a_repeated_keys_last_value() {
        // {'b': 1, 'a': 2, 'b': 3}, as SETITEMS can spell it.
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00bK\x01X\x01\x00\x00\x00aK\x02X\x01\x00\x00\x00bK\x03u.";
        let (direct, tree) = both::<Visited>(bytes);
        assert_eq!(
            direct,
            Some(Visited(vec![("a".into(), 2), ("b".into(), 3)]))
        );
        assert_eq!(direct, tree);
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
