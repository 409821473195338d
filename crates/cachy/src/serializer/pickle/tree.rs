//! The value tree of a pickle: built once from the machine's arena, charging every node
//! (and every copy of a shared one) to the decode budget and refusing nesting beyond the
//! depth limit.

use std::collections::{BTreeMap, BTreeSet};

use serde_pickle::{HashableValue, Value};

use super::objects::{Id, Object, Outcome};

/// What one node of the decoded value costs against the budget, besides its payload.
pub(super) const NODE_COST: usize = 32;

/// Builds the value tree from the arena, within the budget and the depth limit.
pub(super) struct Builder<'m> {
    pub(super) objects: &'m [Object<'m>],
    pub(super) budget: usize,
    pub(super) max_depth: usize,
}

impl Builder<'_> {
    fn charge(&mut self, payload: usize) -> Outcome<()> {
        let cost = NODE_COST.saturating_add(payload);
        self.budget = self.budget.checked_sub(cost).ok_or(
            "the pickle expands beyond the decode limit (it references the same objects too \
             many times)",
        )?;
        Ok(())
    }

    /// Children of a container at `depth` sit one level deeper.
    fn enter(&self, depth: usize) -> Outcome<usize> {
        if depth >= self.max_depth {
            return Err(format!(
                "the pickle nests containers deeper than {} levels (or contains itself)",
                self.max_depth
            ));
        }
        Ok(depth + 1)
    }

    pub(super) fn value(&mut self, id: Id, depth: usize) -> Outcome<Value> {
        Ok(match &self.objects[id] {
            Object::List(items) => {
                self.charge(0)?;
                let depth = self.enter(depth)?;
                Value::List(self.values(items, depth)?)
            }
            Object::Tuple(items) => {
                self.charge(0)?;
                let depth = self.enter(depth)?;
                Value::Tuple(self.values(items, depth)?)
            }
            Object::Set(items) => {
                self.charge(0)?;
                let depth = self.enter(depth)?;
                Value::Set(self.set(items, depth)?)
            }
            Object::Dict(pairs) => {
                self.charge(0)?;
                let depth = self.enter(depth)?;
                let mut dict = BTreeMap::new();
                for &(key, value) in pairs {
                    let key = self.hashable(key, depth)?;
                    let value = self.value(value, depth)?;
                    dict.insert(key, value);
                }
                Value::Dict(dict)
            }
            _ => self.hashable(id, depth)?.into_value(),
        })
    }

    fn values(&mut self, items: &[Id], depth: usize) -> Outcome<Vec<Value>> {
        items.iter().map(|&item| self.value(item, depth)).collect()
    }

    fn set(&mut self, items: &[Id], depth: usize) -> Outcome<BTreeSet<HashableValue>> {
        items
            .iter()
            .map(|&item| self.hashable(item, depth))
            .collect()
    }

    fn hashable(&mut self, id: Id, depth: usize) -> Outcome<HashableValue> {
        Ok(match &self.objects[id] {
            Object::None => {
                self.charge(0)?;
                HashableValue::None
            }
            Object::Bool(b) => {
                self.charge(0)?;
                HashableValue::Bool(*b)
            }
            Object::Int(i) => {
                self.charge(0)?;
                match i64::try_from(*i) {
                    Ok(i) => HashableValue::I64(i),
                    Err(_) => HashableValue::Int(num_bigint::BigInt::from(*i)),
                }
            }
            Object::Float(f) => {
                self.charge(0)?;
                HashableValue::F64(*f)
            }
            Object::Bytes(bytes) => {
                self.charge(bytes.len())?;
                HashableValue::Bytes(bytes.to_vec())
            }
            Object::Str(text) => {
                self.charge(text.len())?;
                HashableValue::String(text.to_string())
            }
            Object::Tuple(items) => {
                self.charge(0)?;
                let depth = self.enter(depth)?;
                HashableValue::Tuple(
                    items
                        .iter()
                        .map(|&item| self.hashable(item, depth))
                        .collect::<Outcome<_>>()?,
                )
            }
            Object::FrozenSet(items) => {
                self.charge(0)?;
                let depth = self.enter(depth)?;
                HashableValue::FrozenSet(self.set(items, depth)?)
            }
            Object::List(_) | Object::Set(_) | Object::Dict(_) => {
                return Err("a pickled dict key or set member is not hashable".to_owned());
            }
            Object::Global(_) => {
                return Err("the pickle holds a Python builtin instead of a value".to_owned());
            }
        })
    }
}
