//! The SQL of the database store: one dialect abstraction for SQLite, PostgreSQL and
//! MySQL/MariaDB (quoting, placeholders, upserts), and every statement for one table.

/// The most expired rows one prune statement deletes (its second parameter says how many).
pub(super) const PRUNE_BATCH: u64 = 1000;

/// The SQL of every operation, for one database and table.
pub(super) struct Statements {
    pub(super) dialect: Dialect,
    pub(super) select: String,
    pub(super) upsert: String,
    pub(super) delete_expired_key: String,
    pub(super) insert_if_absent: String,
    pub(super) swap_value: String,
    pub(super) touch: String,
    pub(super) delete_if: String,
    pub(super) forget: String,
    pub(super) flush_all: String,
    pub(super) flush_range: String,
    pub(super) flush_from: String,
    pub(super) prune: String,
    pub(super) create: Vec<String>,
    pub(super) table: String,
}

/// The keys a statement covers, as `flush` picks them: every key, those from the prefix on
/// (a prefix of only `0xFF` bytes has no end), or those between the prefix and its end.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyRange {
    All,
    From,
    Between,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    #[cfg(feature = "database-sqlite")]
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// The `key` column, quoted: it is a reserved word.
    pub(super) fn key_column(self) -> &'static str {
        if self == Dialect::MySql {
            "`key`"
        } else {
            "\"key\""
        }
    }

    /// The `n`th bind parameter (from 1).
    pub(super) fn placeholder(self, n: usize) -> String {
        if self == Dialect::Postgres {
            format!("${n}")
        } else {
            "?".to_owned()
        }
    }
}

impl Statements {
    pub(super) fn new(dialect: Dialect, table: &str) -> Self {
        let t = table;
        let key = dialect.key_column();
        let p = |n: usize| dialect.placeholder(n);
        let (p1, p2, p3, p4) = (p(1), p(2), p(3), p(4));
        let upsert = match dialect {
            Dialect::MySql => format!(
                "INSERT INTO {t} ({key}, value, expiration) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE value = VALUES(value), expiration = VALUES(expiration)"
            ),
            _ => format!(
                "INSERT INTO {t} ({key}, value, expiration) VALUES ({p1}, {p2}, {p3}) \
                 ON CONFLICT ({key}) DO UPDATE SET value = excluded.value, expiration = excluded.expiration"
            ),
        };
        let insert_if_absent = match dialect {
            #[cfg(feature = "database-sqlite")]
            Dialect::Sqlite => {
                format!("INSERT OR IGNORE INTO {t} ({key}, value, expiration) VALUES (?, ?, ?)")
            }
            Dialect::Postgres => format!(
                "INSERT INTO {t} ({key}, value, expiration) VALUES ($1, $2, $3) ON CONFLICT ({key}) DO NOTHING"
            ),
            Dialect::MySql => {
                format!("INSERT IGNORE INTO {t} ({key}, value, expiration) VALUES (?, ?, ?)")
            }
        };
        let create = match dialect {
            #[cfg(feature = "database-sqlite")]
            Dialect::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} ({key} BLOB PRIMARY KEY, value BLOB NOT NULL, expiration INTEGER NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {t}_expiration ON {t} (expiration)"),
            ],
            Dialect::Postgres => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} ({key} BYTEA PRIMARY KEY, value BYTEA NOT NULL, expiration BIGINT NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {t}_expiration ON {t} (expiration)"),
            ],
            Dialect::MySql => vec![format!(
                "CREATE TABLE IF NOT EXISTS {t} ({key} VARBINARY(255) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, \
                 expiration BIGINT NOT NULL, INDEX {t}_expiration (expiration)) ENGINE=InnoDB"
            )],
        };
        Statements {
            dialect,
            select: format!("SELECT value, expiration FROM {t} WHERE {key} = {p1}"),
            upsert,
            delete_expired_key: format!(
                "DELETE FROM {t} WHERE {key} = {p1} AND expiration <= {p2}"
            ),
            insert_if_absent,
            swap_value: format!(
                "UPDATE {t} SET value = {p1} WHERE {key} = {p2} AND value = {p3} AND expiration > {p4}"
            ),
            touch: format!(
                "UPDATE {t} SET expiration = {p1} WHERE {key} = {p2} AND expiration > {p3}"
            ),
            delete_if: format!(
                "DELETE FROM {t} WHERE {key} = {p1} AND value = {p2} AND expiration > {p3}"
            ),
            forget: format!("DELETE FROM {t} WHERE {key} = {p1} AND expiration > {p2}"),
            flush_all: format!("DELETE FROM {t}"),
            flush_range: format!("DELETE FROM {t} WHERE {key} >= {p1} AND {key} < {p2}"),
            flush_from: format!("DELETE FROM {t} WHERE {key} >= {p1}"),
            // A batch at a time (at most `PRUNE_BATCH` rows): each a short transaction, so
            // that writers (SQLite's one writer above all) get in between, whatever the
            // backlog.
            prune: if dialect == Dialect::MySql {
                format!("DELETE FROM {t} WHERE expiration <= {p1} LIMIT {p2}")
            } else {
                format!(
                    "DELETE FROM {t} WHERE {key} IN \
                     (SELECT {key} FROM {t} WHERE expiration <= {p1} LIMIT {p2})"
                )
            },
            create,
            table: t.to_owned(),
        }
    }

    /// The rows with keys in `range`: none, one or two bind parameters, numbered from
    /// `first`.
    fn where_key_in(&self, range: KeyRange, first: usize) -> String {
        let key = self.dialect.key_column();
        let p = |n: usize| self.dialect.placeholder(n);
        match range {
            KeyRange::All => String::new(),
            KeyRange::From => format!(" WHERE {key} >= {}", p(first)),
            KeyRange::Between => {
                format!(" WHERE {key} >= {} AND {key} < {}", p(first), p(first + 1))
            }
        }
    }

    /// Four integers about the rows of `range`: all rows, their values' bytes, the rows
    /// expired at the time bound twice first, and their values' bytes.
    pub(super) fn count_rows(&self, range: KeyRange) -> String {
        // Sums are NUMERIC on PostgreSQL and DECIMAL on MySQL: cast back to a 64-bit integer.
        let int = |expression: String| match self.dialect {
            #[cfg(feature = "database-sqlite")]
            Dialect::Sqlite => expression,
            Dialect::Postgres => format!("CAST({expression} AS BIGINT)"),
            Dialect::MySql => format!("CAST({expression} AS SIGNED)"),
        };
        let p = |n: usize| self.dialect.placeholder(n);
        format!(
            "SELECT {}, {}, {}, {} FROM {}{}",
            int("COUNT(*)".to_owned()),
            int("COALESCE(SUM(LENGTH(value)), 0)".to_owned()),
            int(format!(
                "COALESCE(SUM(CASE WHEN expiration <= {} THEN 1 ELSE 0 END), 0)",
                p(1)
            )),
            int(format!(
                "COALESCE(SUM(CASE WHEN expiration <= {} THEN LENGTH(value) ELSE 0 END), 0)",
                p(2)
            )),
            self.table,
            self.where_key_in(range, 3)
        )
    }

    /// The live keys that match a `LIKE` pattern escaped with `escape`, in order: the
    /// pattern, then the time.
    pub(super) fn select_keys_like(&self, escape: char) -> String {
        let key = self.dialect.key_column();
        let p = |n: usize| self.dialect.placeholder(n);
        format!(
            "SELECT {key} FROM {} WHERE {key} LIKE {} ESCAPE '{escape}' AND expiration > {} ORDER BY {key}",
            self.table,
            p(1),
            p(2)
        )
    }

    /// `SELECT .. WHERE key IN (..)` for `n` keys.
    pub(super) fn select_many(&self, n: usize) -> String {
        let key = self.dialect.key_column();
        let placeholders: Vec<String> = (1..=n).map(|i| self.dialect.placeholder(i)).collect();
        format!(
            "SELECT {key}, value, expiration FROM {} WHERE {key} IN ({})",
            self.table,
            placeholders.join(", ")
        )
    }
}
