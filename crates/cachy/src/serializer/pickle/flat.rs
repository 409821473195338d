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

use super::direct::{Declined, read_as_the_tree_does};
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

    read_as_the_tree_does!();
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

    read_as_the_tree_does!();
}

#[cfg(test)]
mod tests;
