//! What the pickle reader makes: the objects of one pickle, by id.

use std::borrow::Cow;

/// An object's index in the arena of one pickle.
pub(super) type Id = usize;

/// A step of reading a pickle: what it made, or why the bytes are refused.
pub(super) type Outcome<T> = Result<T, String>;

/// One object the pickle made; strings and bytes are lent from the pickle where it holds
/// them as they are.
pub(super) enum Object<'a> {
    None,
    Bool(bool),
    /// From `i64::MIN` to `u64::MAX`: what Rust's integer types hold.
    Int(i128),
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
