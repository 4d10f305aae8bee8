//! The store's SQL, once for every backend: the queries and writes behind [`Store`], written
//! against [`Conn`], a connection that runs SQL with [`Value`] arguments and returns [`Row`]s of
//! values. A backend (SQLite, PostgreSQL) supplies connections, transactions and its schema; the
//! statements here use the SQL both accept (`?N` placeholders, which the PostgreSQL connection
//! renumbers as `$N`; `ON CONFLICT`; `RETURNING`; `CAST(... AS BIGINT)` for sums).
//!
//! [`Store`]: crate::store::Store

pub(super) mod alerts;
mod backend;
pub(super) mod placement;
pub(super) mod read;
pub(super) mod rollouts;
pub(super) mod rows;
pub(super) mod write;

pub(crate) use backend::Backend;

use crate::store::StoreError;

/// A value passed to or read from the database: the store only keeps integers, text and nulls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(rows::to_i64(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Arguments of a statement: `args![a, b, c]`, each converted with `Into<Value>`.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($arg)),*][..]
    };
}
pub(crate) use args;

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    fn value(&self, index: usize) -> Result<&Value, StoreError> {
        self.0.get(index).ok_or_else(|| {
            StoreError::Database(format!("column {index} is missing from a result row"))
        })
    }

    fn mismatch(&self, index: usize, wanted: &str) -> StoreError {
        StoreError::Database(format!(
            "column {index}: expected {wanted}, found {:?}",
            self.0.get(index)
        ))
    }

    pub(crate) fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        match self.value(index)? {
            Value::Null => Ok(None),
            Value::Int(n) => Ok(Some(*n)),
            Value::Text(_) => Err(self.mismatch(index, "an integer")),
        }
    }

    pub(crate) fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.opt_int(index)?
            .ok_or_else(|| self.mismatch(index, "an integer"))
    }

    /// A count or other non-negative number (a negative one reads as 0).
    pub(crate) fn u64(&self, index: usize) -> Result<u64, StoreError> {
        self.int(index).map(rows::to_u64)
    }

    pub(crate) fn opt_u64(&self, index: usize) -> Result<Option<u64>, StoreError> {
        Ok(self.opt_int(index)?.map(rows::to_u64))
    }

    pub(crate) fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.value(index)? {
            Value::Null => Ok(None),
            Value::Text(t) => Ok(Some(t.clone())),
            Value::Int(_) => Err(self.mismatch(index, "text")),
        }
    }

    pub(crate) fn text(&self, index: usize) -> Result<String, StoreError> {
        self.opt_text(index)?
            .ok_or_else(|| self.mismatch(index, "text"))
    }

    /// Text, or an integer written as text (a group's name: a site or a ring).
    pub(crate) fn name(&self, index: usize) -> Result<String, StoreError> {
        match self.value(index)? {
            Value::Int(n) => Ok(n.to_string()),
            _ => self.text(index),
        }
    }
}

/// Which SQL a backend speaks where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection (or a transaction on one) that runs the store's statements.
pub(crate) trait Conn {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; how many rows it changed.
    fn exec(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError>;
    /// Runs a query; every row it returns.
    fn rows(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError>;

    /// The first row of a query, if any.
    fn row(&mut self, sql: &str, args: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// A query's one integer (a count): 0 when it returns no row or null.
    fn count(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        match self.row(sql, args)? {
            Some(row) => Ok(row.opt_int(0)?.map_or(0, rows::to_u64)),
            None => Ok(0),
        }
    }

    /// Runs an `INSERT … RETURNING id`; the id.
    fn insert(&mut self, sql: &str, args: &[Value]) -> Result<i64, StoreError> {
        self.row(sql, args)?
            .ok_or_else(|| StoreError::Database(format!("no id returned by {sql}")))?
            .int(0)
    }
}

/// `sql` with SQLite's `?N` and `?` placeholders written as PostgreSQL's `$N` (a bare `?`
/// takes the next number); quoted text is left alone.
pub(crate) fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1u32;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        out.push(d);
                    }
                } else {
                    out.push_str(&next.to_string());
                    next += 1;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_outside_quotes() {
        assert_eq!(
            postgres_placeholders(
                "SELECT ?1, ?12 WHERE a = '?' AND b LIKE ? ESCAPE '\\' AND c = ?"
            ),
            "SELECT $1, $12 WHERE a = '?' AND b LIKE $1 ESCAPE '\\' AND c = $2"
        );
    }

    #[test]
    fn rows_read_what_they_hold_and_name_what_they_do_not() {
        let row = Row(vec![Value::Int(-3), Value::Text("a".into()), Value::Null]);
        assert_eq!(row.int(0).expect("int"), -3);
        assert_eq!(row.u64(0).expect("u64"), 0);
        assert_eq!(row.text(1).expect("text"), "a");
        assert_eq!(row.opt_text(2).expect("null"), None);
        assert_eq!(row.name(0).expect("name"), "-3");
        let err = row.int(1).expect_err("text is not an integer").to_string();
        assert!(err.contains("column 1"), "{err}");
        assert!(row.text(3).is_err());
    }
}
