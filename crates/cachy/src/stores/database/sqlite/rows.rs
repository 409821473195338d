//! What SQLite answers, in the database store's terms: its errors, the values bound to a
//! statement, and the columns of a row.

use rusqlite::ErrorCode;
use rusqlite::types::{ToSql, ToSqlOutput, Value, ValueRef};

use super::{DbError, Param, RowRead};
use crate::ErrorKind;

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

pub(in crate::stores::database) fn kind_of(e: &rusqlite::Error) -> ErrorKind {
    match e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => ErrorKind::Timeout,
            ErrorCode::CannotOpen => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        },
        _ => ErrorKind::Backend,
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            Param::Int(n) => ToSqlOutput::Owned(Value::Integer(*n)),
        })
    }
}

/// Rows as this store writes them: bytes in `BLOB` columns (`TEXT` is taken as its bytes:
/// another program may have written keys as text) and integers. Anything else is an error
/// naming what the column held, never a guess.
impl RowRead for rusqlite::Row<'_> {
    fn bytes(&self, column: usize) -> Result<Vec<u8>, DbError> {
        match self.get_ref(column)? {
            ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Ok(bytes.to_vec()),
            other => Err(DbError::Column(format!(
                "column {column} holds {}, not bytes",
                other.data_type()
            ))),
        }
    }

    fn int(&self, column: usize) -> Result<i64, DbError> {
        match self.get_ref(column)? {
            ValueRef::Integer(n) => Ok(n),
            other => Err(DbError::Column(format!(
                "column {column} holds {}, not an integer",
                other.data_type()
            ))),
        }
    }
}
