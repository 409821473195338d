//! `Store` for the memcached store.

use std::time::Duration;

use async_trait::async_trait;

use super::flags::{FLAG_INTEGER, decode_wire, encode_wire};
use super::protocol::{Command, Reply, SetMode};
use super::*;

use crate::error::{Error, ErrorKind, Result};
use crate::store::{Lifetime, Store, Ttl};

#[async_trait]
impl Store for MemcachedStore {
    fn inspector(&self) -> std::result::Result<&dyn crate::inspect::Inspect, &'static str> {
        Ok(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = self.wire_key(key);
        match stored_value(self.one(&key, Command::get(&key, "v f")).await?)? {
            Some((flags, data)) => decode_wire(self.python_flags, flags, data).map(Some),
            None => Ok(None),
        }
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        let key = self.wire_key(key);
        let reply = self.one(&key, Command::get(&key, "v f t")).await?;
        if reply.code() != "VA" {
            return Ok(None);
        }
        // `t` is the whole seconds left, -1 for none.
        let lifetime = match reply.number_flag::<i64>('t')? {
            -1 => Lifetime::Forever,
            seconds => Lifetime::Remaining(Duration::from_secs(seconds.max(0).unsigned_abs())),
        };
        match stored_value(reply)? {
            Some((flags, data)) => Ok(Some((
                decode_wire(self.python_flags, flags, data)?,
                lifetime,
            ))),
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut by_server: BTreeMap<usize, Vec<(usize, WireKey)>> = BTreeMap::new();
        for (position, key) in keys.iter().enumerate() {
            let key = self.wire_key(key);
            by_server
                .entry(self.server_of(&key))
                .or_default()
                .push((position, key));
        }
        let requests = by_server.into_iter().map(|(server, keys)| async move {
            let commands = keys
                .iter()
                .map(|(_, key)| Command::quiet_get(key, "v f"))
                .collect();
            let replies = self.exchange(server, commands).await?;
            Ok::<_, Error>(keys.into_iter().map(|(position, _)| position).zip(replies))
        });
        let mut values = vec![None; keys.len()];
        for replies in futures_util::future::try_join_all(requests).await? {
            for (position, reply) in replies {
                if let Some((flags, data)) = reply.map(stored_value).transpose()?.flatten() {
                    values[position] = Some(decode_wire(self.python_flags, flags, data)?);
                }
            }
        }
        Ok(values)
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        let key = self.wire_key(key);
        let (flags, data) = encode_wire(self.python_flags, value);
        self.check_size(&data)?;
        let set = Command::set(&key, flags, &data, ttl_argument(ttl), SetMode::Plain);
        match self.one(&key, set).await?.code() {
            "HD" => Ok(()),
            other => Err(protocol_error(format!(
                "memcached did not store the value: {other}"
            ))),
        }
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let key = self.wire_key(key);
        let (flags, data) = encode_wire(self.python_flags, value);
        self.check_size(&data)?;
        let add = Command::set(&key, flags, &data, ttl_argument(ttl), SetMode::Add);
        Ok(self.one(&key, add).await?.code() == "HD")
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        // Read, then write the sum back with compare-and-swap, retried while the counter
        // changes in between. memcached's own arithmetic would not do: it wraps at 2^64,
        // takes negative numbers for text, and an overflow taken back with a decrement
        // leaves the number padded with a space.
        let key = self.wire_key(key);
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let reply = self.one(&key, Command::get(&key, "v c t f")).await?;
            let (next, written) = match &reply {
                Reply::Value { data, .. } => {
                    let next = incremented_counter(data, by)?;
                    let cas = reply.number_flag('c')?;
                    let flags = reply.number_flag('f')?;
                    // `t` is the seconds left, -1 for none; one in its last second still expires.
                    let ttl = u64::try_from(reply.number_flag::<i64>('t')?)
                        .ok()
                        .map(|seconds| seconds.max(1));
                    let text = next.to_string();
                    let swap = Command::set(
                        &key,
                        flags,
                        text.as_bytes(),
                        ttl_argument(ttl),
                        SetMode::CompareAndSwap(cas),
                    );
                    (next, self.one(&key, swap).await?)
                }
                Reply::Status { .. } | Reply::Stats(_) => {
                    // Missing: create it, unless another caller does first.
                    let text = by.to_string();
                    let create = Command::set(&key, FLAG_INTEGER, text.as_bytes(), 0, SetMode::Add);
                    (by, self.one(&key, create).await?)
                }
            };
            if written.code() == "HD" {
                return Ok(next);
            }
            if started.elapsed() >= self.timeout {
                return Err(Error::new(
                    ErrorKind::Backend,
                    format!(
                        "the counter kept changing: {attempts} compare-and-swap attempts failed within {:?}",
                        self.timeout
                    ),
                ));
            }
        }
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let key = self.wire_key(key);
        let (flags, data) = encode_wire(self.python_flags, new);
        self.check_size(&data)?;
        let Some(current) = current else {
            let create = Command::set(&key, flags, &data, 0, SetMode::Add);
            return Ok(self.one(&key, create).await?.code() == "HD");
        };
        let reply = self.one(&key, Command::get(&key, "v c t f")).await?;
        let Reply::Value { data: stored, .. } = &reply else {
            return Ok(false);
        };
        if decode_wire(self.python_flags, reply.number_flag('f')?, stored.clone())? != current {
            return Ok(false);
        }
        let cas = reply.number_flag('c')?;
        // `t` is the seconds left, -1 for none; one in its last second still expires.
        let ttl = u64::try_from(reply.number_flag::<i64>('t')?)
            .ok()
            .map(|seconds| seconds.max(1));
        let swap = Command::set(
            &key,
            flags,
            &data,
            ttl_argument(ttl),
            SetMode::CompareAndSwap(cas),
        );
        Ok(self.one(&key, swap).await?.code() == "HD")
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let key = self.wire_key(key);
        let reply = self.one(&key, Command::get(&key, "v c f")).await?;
        let Reply::Value { data: stored, .. } = &reply else {
            return Ok(false);
        };
        if decode_wire(self.python_flags, reply.number_flag('f')?, stored.clone())? != expected {
            return Ok(false);
        }
        let cas = reply.number_flag('c')?;
        Ok(self.one(&key, Command::delete_if(&key, cas)).await?.code() == "HD")
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        let key = self.wire_key(key);
        let touch = Command::touch(&key, ttl_argument(ttl));
        Ok(self.one(&key, touch).await?.code() == "HD")
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        let key = self.wire_key(key);
        Ok(self.one(&key, Command::delete(&key)).await?.code() == "HD")
    }

    async fn flush(&self) -> Result<()> {
        // Every server is flushed, even when one fails: stopping at the first failure would
        // leave the others' items in place behind the error.
        let flushes =
            (0..self.servers.len()).map(|index| self.exchange(index, vec![Command::flush_all()]));
        let outcomes = futures_util::future::join_all(flushes).await;
        outcomes
            .into_iter()
            .find(Result::is_err)
            .unwrap_or(Ok(Vec::new()))?;
        Ok(())
    }
}
