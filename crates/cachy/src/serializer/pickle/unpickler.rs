//! A pickle reader for untrusted bytes.
//!
//! It runs the pickle machine (protocols 0 to 5) over an arena of objects, sharing them as
//! Python does (`DUP` and memo references point at one object, so they copy nothing), then
//! builds the value tree once, charging every node to a budget and refusing nesting beyond
//! the depth limit. The only copies the machine makes are the builtin calls that build a new
//! object from an existing one (`list(L)`, `bytearray(b)`, `_codecs.encode(s, 'latin1')`...):
//! a pickle can repeat such a call on one memoized argument, so each is charged to the same
//! budget before it is made (`Machine::reduce`), and the tree gets what is left. Work and
//! memory are proportional to the input plus the budget, and recursion is bounded by the
//! depth limit, whatever the bytes.
//!
//! Only plain data is read: None, bool, int (64 bits), float, str, bytes, list, tuple, dict,
//! set and frozenset, plus the few builtins older protocols use to spell them (`set`,
//! `frozenset`, `bytearray`, `list`, `_codecs.encode`). Anything that names another Python
//! object (class instances, functions, extensions, persistent ids, out-of-band buffers) is
//! an error: nothing in a pickle is ever run.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_pickle::Value;

use super::scalars::{
    escaped_string, integer_text, latin1, raw_unicode_escape, twos_complement, utf8,
};
use super::tree::Builder;
use crate::serializer::DecodeLimits;

pub(super) type Id = usize;
mod call;

use call::Call;

pub(super) type Outcome<T> = Result<T, String>;

/// The objects one pickle made, and which of them it returned.
pub(super) struct Arena<'a> {
    pub(super) objects: Vec<Object<'a>>,
    pub(super) root: Id,
    /// What is left of the decode budget after the copies the machine made: reading the
    /// value may spend this much more, so copies and value together stay within the limit.
    pub(super) budget: usize,
}

/// Run the pickle machine over `bytes`, charging its copies to the budget `limits` give a
/// pickle of this size.
pub(super) fn run<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Outcome<Arena<'a>> {
    let mut machine = Machine {
        input: bytes,
        pos: 0,
        // A pickle makes at most one object per opcode, and an opcode takes a byte or more.
        objects: Vec::with_capacity(bytes.len().min(64)),
        stack: Vec::with_capacity(16),
        marks: Vec::new(),
        memo: HashMap::new(),
        budget: limits.budget(bytes.len()),
    };
    let root = machine.run()?;
    Ok(Arena {
        objects: machine.objects,
        root,
        budget: machine.budget,
    })
}

impl Arena<'_> {
    /// The value tree, within what is left of the budget and `limits`' depth.
    pub(super) fn tree(&self, limits: &DecodeLimits) -> Outcome<Value> {
        Builder {
            objects: &self.objects,
            budget: self.budget,
            max_depth: limits.max_depth(),
        }
        .value(self.root, 0)
    }
}

/// One object the pickle made; strings and bytes are lent from the pickle where it holds
/// them as they are.
pub(super) enum Object<'a> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Cow<'a, [u8]>),
    Str(Cow<'a, str>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Set(Vec<Id>),
    FrozenSet(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global(Global),
}

/// The builtins older protocols call to make plain values.
#[derive(Clone, Copy)]
pub(super) enum Global {
    Set,
    FrozenSet,
    ByteArray,
    List,
    CodecsEncode,
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    objects: Vec<Object<'a>>,
    stack: Vec<Id>,
    /// Stack heights at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    /// What is left of the decode budget, in bytes the machine's copies may still allocate.
    budget: usize,
}

impl<'a> Machine<'a> {
    fn run(&mut self) -> Outcome<Id> {
        loop {
            let opcode = self.byte()?;
            match opcode {
                0x80 => {
                    let protocol = self.byte()?;
                    if protocol > 5 {
                        return Err(format!("pickle protocol {protocol} is not supported"));
                    }
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => {
                    let root = self.pop()?;
                    if self.pos != self.input.len() {
                        return Err(format!(
                            "{} bytes left over after the pickle",
                            self.input.len() - self.pos
                        ));
                    }
                    return Ok(root);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.stack.len() == self.floor() && !self.marks.is_empty() {
                        self.pop_mark()?;
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                b'p' => {
                    let id = self.decimal_line()?;
                    self.memoize(id)?;
                }
                b'q' => {
                    let id = self.byte()?;
                    self.memoize(id.into())?;
                }
                b'r' => {
                    let id = self.u32_le()?;
                    self.memoize(id)?;
                }
                0x94 => {
                    let id = u32::try_from(self.memo.len())
                        .map_err(|_| "too many memo entries".to_owned())?;
                    self.memoize(id)?;
                }
                b'g' => {
                    let id = self.decimal_line()?;
                    self.recall(id)?;
                }
                b'h' => {
                    let id = self.byte()?;
                    self.recall(id.into())?;
                }
                b'j' => {
                    let id = self.u32_le()?;
                    self.recall(id)?;
                }
                b'N' => self.push(Object::None),
                0x88 => self.push(Object::Bool(true)),
                0x89 => self.push(Object::Bool(false)),
                b'I' => {
                    let line = self.line()?;
                    let object = match line {
                        b"00" => Object::Bool(false),
                        b"01" => Object::Bool(true),
                        _ => Object::Int(integer_text(line)?),
                    };
                    self.push(object);
                }
                b'L' => {
                    let line = self.line()?;
                    let digits = line.strip_suffix(b"L").unwrap_or(line);
                    self.push(Object::Int(integer_text(digits)?));
                }
                b'F' => {
                    let line = self.line()?;
                    let float = std::str::from_utf8(line)
                        .ok()
                        .and_then(|text| text.trim().parse().ok())
                        .ok_or("a FLOAT opcode holds no number")?;
                    self.push(Object::Float(float));
                }
                b'G' => {
                    let bytes = self.array::<8>()?;
                    self.push(Object::Float(f64::from_be_bytes(bytes)));
                }
                b'J' => {
                    let bytes = self.array::<4>()?;
                    self.push(Object::Int(i32::from_le_bytes(bytes).into()));
                }
                b'K' => {
                    let byte = self.byte()?;
                    self.push(Object::Int(byte.into()));
                }
                b'M' => {
                    let bytes = self.array::<2>()?;
                    self.push(Object::Int(u16::from_le_bytes(bytes).into()));
                }
                0x8a => {
                    let length = self.byte()?;
                    let bytes = self.take(length.into())?;
                    self.push(Object::Int(twos_complement(bytes)?));
                }
                0x8b => {
                    let length = self.i32_length()?;
                    let bytes = self.take(length)?;
                    self.push(Object::Int(twos_complement(bytes)?));
                }
                b'S' => {
                    let line = self.line()?;
                    self.push(Object::Bytes(escaped_string(line)?.into()));
                }
                b'V' => {
                    let line = self.line()?;
                    self.push(Object::Str(raw_unicode_escape(line)?.into()));
                }
                b'C' | b'U' => {
                    let length = self.byte()?;
                    let bytes = self.take(length.into())?;
                    self.push(Object::Bytes(bytes.into()));
                }
                b'B' => {
                    let length = self.u32_le()?;
                    let bytes = self.take(length as usize)?;
                    self.push(Object::Bytes(bytes.into()));
                }
                b'T' => {
                    let length = self.i32_length()?;
                    let bytes = self.take(length)?;
                    self.push(Object::Bytes(bytes.into()));
                }
                0x8e | 0x96 => {
                    let length = self.u64_length()?;
                    let bytes = self.take(length)?;
                    self.push(Object::Bytes(bytes.into()));
                }
                0x8c => {
                    let length = self.byte()?;
                    let bytes = self.take(length.into())?;
                    self.push(Object::Str(utf8(bytes)?.into()));
                }
                b'X' => {
                    let length = self.u32_le()?;
                    let bytes = self.take(length as usize)?;
                    self.push(Object::Str(utf8(bytes)?.into()));
                }
                0x8d => {
                    let length = self.u64_length()?;
                    let bytes = self.take(length)?;
                    self.push(Object::Str(utf8(bytes)?.into()));
                }
                b')' => self.push(Object::Tuple(Vec::new())),
                0x85..=0x87 => {
                    let count = usize::from(opcode - 0x84);
                    let floor = self.floor();
                    if self.stack.len() < floor + count {
                        return Err("the pickle stack underflowed".to_owned());
                    }
                    let items = self.stack.split_off(self.stack.len() - count);
                    self.push(Object::Tuple(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Object::Tuple(items));
                }
                b']' => self.push(Object::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Object::List(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.extend_list(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.extend_list(list, items)?;
                }
                b'}' => self.push(Object::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items)?;
                    self.push(Object::Dict(pairs));
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.extend_dict(dict, vec![(key, value)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.extend_dict(dict, pairs(items)?)?;
                }
                0x8f => self.push(Object::Set(Vec::new())),
                0x90 => {
                    let items = self.pop_mark()?;
                    let set = self.top()?;
                    match &mut self.objects[set] {
                        Object::Set(members) => members.extend(items),
                        _ => return Err("ADDITEMS on something that is not a set".to_owned()),
                    }
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Object::FrozenSet(items));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Object::Global(global(module, name)?));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Object::Str(module), Object::Str(name)) =
                        (&self.objects[module], &self.objects[name])
                    else {
                        return Err("STACK_GLOBAL needs two strings".to_owned());
                    };
                    let found = global(module.as_bytes(), name.as_bytes())?;
                    self.push(Object::Global(found));
                }
                b'R' => {
                    let arguments = self.pop()?;
                    let callable = self.pop()?;
                    let object = self.reduce(callable, arguments)?;
                    self.push(object);
                }
                b'i' | b'o' | 0x81 | 0x92 | b'b' => {
                    return Err(
                        "the pickle holds an instance of a Python class, which cannot be read \
                         (only None, bool, int, float, str, bytes, list, tuple, dict, set and \
                         frozenset can)"
                            .to_owned(),
                    );
                }
                b'P' | b'Q' => return Err("pickle persistent ids are not supported".to_owned()),
                0x82..=0x84 => {
                    return Err("the pickle uses the copyreg extension registry".to_owned());
                }
                0x97 | 0x98 => {
                    return Err("the pickle uses out-of-band buffers".to_owned());
                }
                other => {
                    return Err(format!(
                        "byte {other:#04x} at offset {} is not a pickle opcode",
                        self.pos - 1
                    ));
                }
            }
        }
    }

    fn push(&mut self, object: Object<'a>) {
        self.objects.push(object);
        self.stack.push(self.objects.len() - 1);
    }

    /// The lowest stack height the innermost MARK lets an opcode pop to.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Outcome<Id> {
        if self.stack.len() <= self.floor() {
            return Err("the pickle stack underflowed".to_owned());
        }
        self.stack
            .pop()
            .ok_or_else(|| "the pickle stack underflowed".to_owned())
    }

    fn top(&self) -> Outcome<Id> {
        match self.stack.last() {
            Some(&top) if self.stack.len() > self.floor() => Ok(top),
            _ => Err("the pickle stack underflowed".to_owned()),
        }
    }

    fn pop_mark(&mut self) -> Outcome<Vec<Id>> {
        let height = self.marks.pop().ok_or("the pickle has no MARK to pop to")?;
        Ok(self.stack.split_off(height))
    }

    fn memoize(&mut self, id: u32) -> Outcome<()> {
        let top = self.top()?;
        self.memo.insert(id, top);
        Ok(())
    }

    fn recall(&mut self, id: u32) -> Outcome<()> {
        let object = *self
            .memo
            .get(&id)
            .ok_or_else(|| format!("the pickle refers to memo entry {id}, which was never set"))?;
        self.stack.push(object);
        Ok(())
    }

    fn extend_list(&mut self, list: Id, items: Vec<Id>) -> Outcome<()> {
        match &mut self.objects[list] {
            Object::List(existing) => {
                existing.extend(items);
                Ok(())
            }
            _ => Err("APPEND on something that is not a list".to_owned()),
        }
    }

    fn extend_dict(&mut self, dict: Id, items: Vec<(Id, Id)>) -> Outcome<()> {
        match &mut self.objects[dict] {
            Object::Dict(existing) => {
                existing.extend(items);
                Ok(())
            }
            _ => Err("SETITEM on something that is not a dict".to_owned()),
        }
    }

    /// Call one of the allowed builtins. Every call that copies goes through here, and the
    /// copy is charged before it is made: the argument may be one memoized object that the
    /// pickle passes again and again, so a few bytes per call could otherwise ask for
    /// gigabytes (and seconds of copying) before the tree's budget is ever consulted.
    fn reduce(&mut self, callable: Id, arguments: Id) -> Outcome<Object<'a>> {
        let call = Call::resolve(&self.objects, callable, arguments)?;
        self.budget = self.budget.checked_sub(call.cost()).ok_or(
            "the pickle expands beyond the decode limit (it copies the same objects too many \
             times)",
        )?;
        call.make()
    }

    fn byte(&mut self) -> Outcome<u8> {
        let byte = *self.input.get(self.pos).ok_or("the pickle ends early")?;
        self.pos += 1;
        Ok(byte)
    }

    fn take(&mut self, length: usize) -> Outcome<&'a [u8]> {
        let end = self
            .pos
            .checked_add(length)
            .filter(|&end| end <= self.input.len())
            .ok_or("the pickle ends early")?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Outcome<[u8; N]> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().unwrap_or([0; N]))
    }

    fn u32_le(&mut self) -> Outcome<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32_length(&mut self) -> Outcome<usize> {
        usize::try_from(i32::from_le_bytes(self.array()?))
            .map_err(|_| "the pickle gives a negative length".to_owned())
    }

    fn u64_length(&mut self) -> Outcome<usize> {
        // A length past the end fails in `take`; no allocation is sized by it.
        Ok(usize::try_from(u64::from_le_bytes(self.array()?)).unwrap_or(usize::MAX))
    }

    /// One text argument, up to a newline (which protocol 0 always writes).
    fn line(&mut self) -> Outcome<&'a [u8]> {
        let rest = &self.input[self.pos..];
        let length = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a pickle text argument has no end of line")?;
        self.pos += length + 1;
        let line = &rest[..length];
        Ok(line.strip_suffix(b"\r").unwrap_or(line))
    }

    fn decimal_line(&mut self) -> Outcome<u32> {
        let line = self.line()?;
        std::str::from_utf8(line)
            .ok()
            .filter(|text| text.len() <= 10)
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| "a pickle memo id is not a number".to_owned())
    }
}

fn global(module: &[u8], name: &[u8]) -> Outcome<Global> {
    Ok(match (module, name) {
        (b"builtins" | b"__builtin__", b"set") => Global::Set,
        (b"builtins" | b"__builtin__", b"frozenset") => Global::FrozenSet,
        (b"builtins" | b"__builtin__", b"bytearray") => Global::ByteArray,
        (b"builtins" | b"__builtin__", b"list") => Global::List,
        (b"_codecs", b"encode") => Global::CodecsEncode,
        _ => {
            return Err(format!(
                "the pickle refers to the Python object `{}.{}` (a class, a function or an \
                 instance of one), which cannot be read: only None, bool, int, float, str, \
                 bytes, list, tuple, dict, set and frozenset can",
                String::from_utf8_lossy(&module[..module.len().min(100)]),
                String::from_utf8_lossy(&name[..name.len().min(100)]),
            ));
        }
    })
}

fn pairs(items: Vec<Id>) -> Outcome<Vec<(Id, Id)>> {
    if !items.len().is_multiple_of(2) {
        return Err("a pickled dict has a key without a value".to_owned());
    }
    Ok(items
        .chunks_exact(2)
        .map(|pair| (pair[0], pair[1]))
        .collect())
}

#[cfg(test)]
mod tests;
