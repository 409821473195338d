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

use std::collections::HashMap;

use serde_pickle::Value;

use super::objects::{Id, Object, Outcome};
use super::scalars::{escaped_string, integer_text, raw_unicode_escape, twos_complement, utf8};
use super::tree::Builder;
use crate::serializer::DecodeLimits;

mod call;
mod opcodes;

use call::Call;

/// The objects one pickle made, and which of them it returned.
pub(super) struct Arena<'a> {
    pub(super) objects: Vec<Object<'a>>,
    pub(super) root: Id,
    /// What is left of the decode budget after the copies the machine made: reading the
    /// value may spend this much more, so copies and value together stay within the limit.
    pub(super) budget: usize,
}

/// The machine's working stacks and memo, kept between pickles on a thread: a cache hit
/// decodes a small value, and allocating these again for each was a measurable part of it.
#[derive(Default)]
struct Scratch {
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

/// Entries a thread's [`Scratch`] keeps room for at most between pickles, so that one large
/// (or hostile) pickle does not leave its memory behind.
const SCRATCH_KEPT: usize = 1024;

/// The arena's first capacity at most. 24 objects take 768 bytes, which the allocator
/// serves from its small, per-thread bins; 64 took 2 KiB, a large request, for which glibc
/// first consolidates its fast bins: on a runtime whose threads free each other's buffers,
/// that was a tenth of a Redis hit's decoding.
const OBJECTS_AT_FIRST: usize = 24;

thread_local! {
    // An `Option`, so that taking it leaves `None` behind rather than a new `Scratch`, whose
    // `HashMap` would draw a new random state on every pickle.
    static SCRATCH: std::cell::Cell<Option<Scratch>> = const { std::cell::Cell::new(None) };
}

/// Run the pickle machine over `bytes`, charging its copies to the budget `limits` give a
/// pickle of this size.
pub(super) fn run<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Outcome<Arena<'a>> {
    let scratch = SCRATCH.take().unwrap_or_default();
    let mut machine = Machine {
        input: bytes,
        pos: 0,
        // A pickle makes at most one object per opcode, and an opcode takes a byte or more.
        objects: Vec::with_capacity(bytes.len().min(OBJECTS_AT_FIRST)),
        stack: scratch.stack,
        marks: scratch.marks,
        memo: scratch.memo,
        budget: limits.budget(bytes.len()),
    };
    let root = machine.run();
    let Machine {
        objects,
        mut stack,
        mut marks,
        mut memo,
        budget,
        ..
    } = machine;
    if stack.capacity() <= SCRATCH_KEPT
        && marks.capacity() <= SCRATCH_KEPT
        && memo.capacity() <= SCRATCH_KEPT
    {
        stack.clear();
        marks.clear();
        memo.clear();
        SCRATCH.set(Some(Scratch { stack, marks, memo }));
    }
    Ok(Arena {
        objects,
        root: root?,
        budget,
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

    /// Close the innermost MARK: the items pushed since, taken off the stack.
    fn pop_mark(&mut self) -> Outcome<Vec<Id>> {
        self.close_mark_with(|items| Ok(items.to_vec()))
    }

    /// Close the innermost MARK: `take` reads the items pushed since, which then leave the
    /// stack.
    fn close_mark_with<T>(&mut self, take: impl FnOnce(&[Id]) -> Outcome<T>) -> Outcome<T> {
        let height = self.marks.pop().ok_or("the pickle has no MARK to pop to")?;
        let taken = take(&self.stack[height..])?;
        self.stack.truncate(height);
        Ok(taken)
    }

    /// Close the innermost MARK and hand the items pushed since to the object under them
    /// (`APPENDS`, `SETITEMS`, `ADDITEMS`), straight from the stack.
    fn extend_below_mark(
        &mut self,
        extend: impl FnOnce(&mut Object<'a>, &[Id]) -> Outcome<()>,
    ) -> Outcome<()> {
        let height = self.marks.pop().ok_or("the pickle has no MARK to pop to")?;
        let target = match height.checked_sub(1) {
            Some(below) if below >= self.floor() => self.stack[below],
            _ => return Err("the pickle stack underflowed".to_owned()),
        };
        extend(&mut self.objects[target], &self.stack[height..])?;
        self.stack.truncate(height);
        Ok(())
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

#[cfg(test)]
mod tests;
