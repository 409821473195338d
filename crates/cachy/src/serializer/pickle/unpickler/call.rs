//! The builtin calls a pickle may make (`set`, `list`, `bytearray`, `_codecs.encode`...),
//! resolved before they are made so that what each copies is charged first.

use std::borrow::Cow;

use crate::serializer::pickle::objects::{Global, Id, Object, Outcome};
use crate::serializer::pickle::scalars::latin1;

/// A call to one of the allowed builtins, resolved to the objects it reads but not yet made,
/// so what it will allocate is known (and charged) first.
pub(super) enum Call<'o, 'a> {
    /// `set`, `frozenset` or `list` (the container to make) of a sequence's items (none for
    /// a call without arguments).
    Items(fn(Vec<Id>) -> Object<'a>, &'o [Id]),
    /// `bytearray()` and `bytearray(b)`.
    Bytes(&'o Cow<'a, [u8]>),
    /// `bytearray(s, 'latin1')` and `_codecs.encode(s, 'latin1')`.
    Latin1(&'o str),
}

impl<'o, 'a> Call<'o, 'a> {
    pub(super) fn resolve(objects: &'o [Object<'a>], callable: Id, arguments: Id) -> Outcome<Self> {
        const EMPTY: &Cow<'_, [u8]> = &Cow::Borrowed(&[]);
        let Object::Global(global) = objects[callable] else {
            return Err("REDUCE calls something that is not a known builtin".to_owned());
        };
        let Object::Tuple(arguments) = &objects[arguments] else {
            return Err("REDUCE needs a tuple of arguments".to_owned());
        };
        let items = |argument: Option<&Id>| -> Outcome<&'o [Id]> {
            match argument.map(|&id| &objects[id]) {
                None => Ok(&[]),
                Some(
                    Object::List(items)
                    | Object::Tuple(items)
                    | Object::Set(items)
                    | Object::FrozenSet(items),
                ) => Ok(items),
                Some(_) => Err("a builtin is called with something that is not a sequence".into()),
            }
        };
        Ok(match (global, arguments.as_slice()) {
            (Global::Set, [] | [_]) => Call::Items(Object::Set, items(arguments.first())?),
            (Global::FrozenSet, [] | [_]) => {
                Call::Items(Object::FrozenSet, items(arguments.first())?)
            }
            (Global::List, [] | [_]) => Call::Items(Object::List, items(arguments.first())?),
            (Global::ByteArray, []) => Call::Bytes(EMPTY),
            (Global::ByteArray, [bytes]) => match &objects[*bytes] {
                Object::Bytes(bytes) => Call::Bytes(bytes),
                _ => return Err("bytearray() of something that is not bytes".to_owned()),
            },
            (Global::ByteArray | Global::CodecsEncode, [text, encoding]) => {
                match (&objects[*text], &objects[*encoding]) {
                    (Object::Str(text), Object::Str(encoding))
                        if encoding == "latin1" || encoding == "latin-1" =>
                    {
                        Call::Latin1(text)
                    }
                    _ => return Err("only latin-1 text can be encoded to bytes".to_owned()),
                }
            }
            _ => return Err("a builtin is called with unexpected arguments".to_owned()),
        })
    }

    /// The bytes the call will allocate (and, as it copies them one by one, a bound on its
    /// work).
    pub(super) fn cost(&self) -> usize {
        match self {
            Call::Items(_, items) => size_of_val(*items),
            // Bytes lent from the pickle are shared by the new object, not copied.
            Call::Bytes(Cow::Borrowed(_)) => 0,
            Call::Bytes(Cow::Owned(bytes)) => bytes.len(),
            // At most one byte per character, and characters take a byte or more.
            Call::Latin1(text) => text.len(),
        }
    }

    pub(super) fn make(self) -> Outcome<Object<'a>> {
        Ok(match self {
            Call::Items(container, items) => container(items.to_vec()),
            Call::Bytes(bytes) => Object::Bytes(bytes.clone()),
            Call::Latin1(text) => Object::Bytes(latin1(text)?.into()),
        })
    }
}
