//! `Store` for the database store.

use super::*;

#[async_trait]
impl Store for DatabaseStore {
    fn inspector(&self) -> std::result::Result<&dyn crate::inspect::Inspect, &'static str> {
        Ok(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.live_row(key).await?.map(|(value, _)| value))
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        Ok(self.live_row(key).await?.map(|(value, expiration)| {
            let expiration = u64::try_from(expiration).unwrap_or(0);
            (
                value,
                Lifetime::until_unix(expiration, FOREVER.unsigned_abs()),
            )
        }))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<Vec<u8>> = keys.iter().map(|k| self.stored_key(k)).collect();
        let params: Vec<Param<'_>> = stored.iter().map(|key| Param::bytes(key)).collect();
        let sql = self.statements.select_many(stored.len());
        let rows = self
            .fetch("read", &sql, &params, |row| {
                Ok((row.bytes(0)?, row.bytes(1)?, row.int(2)?))
            })
            .await?;
        let now = now();
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows
            .into_iter()
            .filter(|(_, _, expiration)| *expiration > now)
            .map(|(key, value, _)| (key, value))
            .collect();
        Ok(stored.iter().map(|key| found.get(key).cloned()).collect())
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        let key = self.stored_key(key);
        let params = [
            Param::bytes(&key),
            Param::bytes(value),
            Param::Int(expiration(ttl)),
        ];
        self.execute("write", &self.statements.upsert, &params)
            .await?;
        self.maybe_prune().await;
        Ok(())
    }

    async fn put_many(&self, items: &[(&str, Vec<u8>)], ttl: Ttl) -> Result<()> {
        let pool = self.pool().await?;
        let expiration = expiration(ttl);
        let keys: Vec<Vec<u8>> = items.iter().map(|(key, _)| self.stored_key(key)).collect();
        let params: Vec<Param<'_>> = keys
            .iter()
            .zip(items)
            .flat_map(|(key, (_, value))| {
                [
                    Param::bytes(key),
                    Param::bytes(value),
                    Param::Int(expiration),
                ]
            })
            .collect();
        pool.execute_each(&self.statements.upsert, &params, 3)
            .await
            .map_err(|e| self.error("write", e))?;
        self.maybe_prune().await;
        Ok(())
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let key = self.stored_key(key);
        let s = &self.statements;
        self.execute(
            "add",
            &s.delete_expired_key,
            &[Param::bytes(&key), Param::Int(now())],
        )
        .await?;
        let params = [
            Param::bytes(&key),
            Param::bytes(value),
            Param::Int(expiration(ttl)),
        ];
        let added = self.execute("add", &s.insert_if_absent, &params).await? == 1;
        self.maybe_prune().await;
        Ok(added)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let Some(current) = current else {
            return self.add(key, new, None).await;
        };
        let key = self.stored_key(key);
        // One conditional UPDATE: atomic on every database, and the expiration is untouched.
        let params = [
            Param::bytes(new),
            Param::bytes(&key),
            Param::bytes(current),
            Param::Int(now()),
        ];
        let swapped = self
            .execute("compare and swap", &self.statements.swap_value, &params)
            .await?;
        Ok(swapped == 1)
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let key = self.stored_key(key);
        let params = [
            Param::bytes(&key),
            Param::bytes(expected),
            Param::Int(now()),
        ];
        let deleted = self
            .execute("compare and delete", &self.statements.delete_if, &params)
            .await?;
        Ok(deleted == 1)
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        let key = self.stored_key(key);
        let params = [
            Param::Int(expiration(ttl)),
            Param::bytes(&key),
            Param::Int(now()),
        ];
        let touched = self
            .execute("touch", &self.statements.touch, &params)
            .await?;
        Ok(touched == 1)
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        let key = self.stored_key(key);
        let params = [Param::bytes(&key), Param::Int(now())];
        let removed = self
            .execute("delete", &self.statements.forget, &params)
            .await?;
        Ok(removed > 0)
    }

    async fn flush(&self) -> Result<()> {
        let s = &self.statements;
        let prefix = self.prefix.as_bytes();
        if prefix.is_empty() {
            self.execute("flush", &s.flush_all, &[]).await
        } else if let Some(end) = prefix_successor(prefix) {
            let params = [Param::bytes(prefix), Param::bytes(&end)];
            self.execute("flush", &s.flush_range, &params).await
        } else {
            self.execute("flush", &s.flush_from, &[Param::bytes(prefix)])
                .await
        }
        .map(drop)
    }
}
