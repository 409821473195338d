//! Looking into the table from outside the application: how many rows, how large, and which
//! keys, as [`Inspect`] offers them (what `cachy stats` and `cachy keys` show).

use super::glob::{Glob, LIKE_ESCAPE, push_like_literal};
use super::statements::KeyRange;
use super::*;
use crate::inspect::{Census, Inspect, Location, OnProgress, Pruned, RowCounts};

impl DatabaseStore {
    /// The prefix put in front of every key (empty by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Count the rows under the store's prefix (the whole table without one), live and
    /// expired, with the bytes of their values (`SUM(LENGTH(value))`): one query, which
    /// reads every row of the prefix's key range.
    pub async fn count_rows(&self) -> Result<RowCounts> {
        let prefix = self.prefix.as_bytes();
        let end = prefix_successor(prefix);
        let range = match (prefix.is_empty(), &end) {
            (true, _) => KeyRange::All,
            (false, Some(_)) => KeyRange::Between,
            (false, None) => KeyRange::From,
        };
        let now = now();
        let mut params = vec![Param::Int(now), Param::Int(now)];
        if range != KeyRange::All {
            params.push(Param::bytes(prefix));
        }
        if let (KeyRange::Between, Some(end)) = (range, &end) {
            params.push(Param::bytes(end));
        }
        let sql = self.statements.count_rows(range);
        let counts = self
            .fetch("count", &sql, &params, |row| {
                Ok([row.int(0)?, row.int(1)?, row.int(2)?, row.int(3)?])
            })
            .await?;
        let counts = counts.first().copied().unwrap_or_default();
        let [rows, bytes, expired, expired_bytes] = counts.map(|n| u64::try_from(n).unwrap_or(0));
        Ok(RowCounts {
            live: rows.saturating_sub(expired),
            live_bytes: bytes.saturating_sub(expired_bytes),
            expired,
            expired_bytes,
        })
    }

    /// The live keys under the store's prefix that match the glob `pattern`, without the
    /// prefix, in byte order. Patterns are Redis's (`*`, `?` for one byte, `[abc]`,
    /// `[^a-z]`, `\` to take the next character as itself), matched byte for byte and case
    /// sensitively on every database; a malformed one (an unclosed `[`, a trailing `\`) is an
    /// [`ErrorKind::InvalidInput`] error.
    ///
    /// Keys are listed as stored: a key over 250 bytes (with the prefix), or starting with
    /// `cachy:sha1:`, shows as `cachy:sha1:` and the hex SHA-1 of the key, which is all the
    /// table holds of it; bytes that are not UTF-8 (rows written by another program) are
    /// replaced with U+FFFD.
    ///
    /// The database selects the rows with a `LIKE` made from the pattern and this method
    /// keeps those that match it exactly, so every key of the result was in the table.
    pub async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let glob = Glob::parse(pattern).map_err(|message| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("bad key pattern: {message}"),
            )
        })?;
        let mut like = Vec::new();
        for byte in self.prefix.bytes() {
            push_like_literal(&mut like, byte);
        }
        like.extend(glob.like_pattern());
        let sql = self.statements.select_keys_like(char::from(LIKE_ESCAPE));
        let params = [Param::bytes(&like), Param::Int(now())];
        let keys = self
            .fetch("key listing", &sql, &params, |row| row.bytes(0))
            .await?;
        let prefix = self.prefix.as_bytes();
        Ok(keys
            .iter()
            .filter_map(|key| key.strip_prefix(prefix))
            .filter(|key| glob.matches(key))
            .map(|key| String::from_utf8_lossy(key).into_owned())
            .collect())
    }
}

#[async_trait]
impl Inspect for DatabaseStore {
    fn driver(&self) -> &'static str {
        "database"
    }

    fn location(&self) -> Location {
        Location::Prefix(self.prefix.clone())
    }

    async fn census(&self, _: OnProgress) -> Result<Census> {
        Ok(Census::Rows(self.count_rows().await?))
    }

    async fn list_keys(&self, pattern: &str, _: OnProgress) -> Result<Vec<String>> {
        self.keys(pattern).await
    }

    async fn prune(&self, _: OnProgress) -> Result<Pruned> {
        let rows = DatabaseStore::prune(self).await?;
        Ok(Pruned {
            items: rows,
            bytes: None,
        })
    }

    async fn flush_with_progress(&self, _: OnProgress) -> Result<()> {
        Store::flush(self).await
    }

    async fn create_schema(&self) -> Result<()> {
        self.create_table().await
    }
}
