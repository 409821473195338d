//! The pickle machine's opcodes: what each one reads and does to the stack, the memo and the
//! objects, with the builtins a pickle may name and the pairs of a pickled dict.

use super::*;
use crate::serializer::pickle::objects::Global;

impl<'a> Machine<'a> {
    pub(super) fn run(&mut self) -> Outcome<Id> {
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
                        self.close_mark_with(|_| Ok(()))?;
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.close_mark_with(|_| Ok(()))?;
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
                    extend_list(&mut self.objects[list], &[item])?;
                }
                b'e' => self.extend_below_mark(extend_list)?,
                b'}' => self.push(Object::Dict(Vec::new())),
                b'd' => {
                    let mut dict = Object::Dict(Vec::new());
                    self.close_mark_with(|items| extend_dict(&mut dict, items))?;
                    self.push(dict);
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    extend_dict(&mut self.objects[dict], &[key, value])?;
                }
                b'u' => self.extend_below_mark(extend_dict)?,
                0x8f => self.push(Object::Set(Vec::new())),
                0x90 => self.extend_below_mark(|set, items| match set {
                    Object::Set(members) => {
                        members.extend_from_slice(items);
                        Ok(())
                    }
                    _ => Err("ADDITEMS on something that is not a set".to_owned()),
                })?,
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

/// `APPEND`(S): `items` at the end of `list`.
fn extend_list(list: &mut Object<'_>, items: &[Id]) -> Outcome<()> {
    match list {
        Object::List(existing) => {
            existing.extend_from_slice(items);
            Ok(())
        }
        _ => Err("APPEND on something that is not a list".to_owned()),
    }
}

/// `SETITEM`(S) and `DICT`: `items`, keys and values in turn, at the end of `dict`.
fn extend_dict(dict: &mut Object<'_>, items: &[Id]) -> Outcome<()> {
    if !items.len().is_multiple_of(2) {
        return Err("a pickled dict has a key without a value".to_owned());
    }
    match dict {
        Object::Dict(existing) => {
            existing.extend(items.chunks_exact(2).map(|pair| (pair[0], pair[1])));
            Ok(())
        }
        _ => Err("SETITEM on something that is not a dict".to_owned()),
    }
}
