//! Rows copied by `mailout store migrate`, on SQLite.

use crate::error::{Error, Result};
use crate::store::schema::table_columns;
use crate::store::{RowCopy, Value};

use super::archive::{SECTION_SPAN, search_rowid};
use super::{SqliteStore, count};

impl RowCopy for SqliteStore {
    fn count_rows(&self, table: &str) -> Result<u64> {
        table_columns(table).ok_or_else(|| Error::Usage(format!("no table `{table}`")))?;
        count(&self.conn, &format!("SELECT COUNT(*) FROM {table}"))
            .map_err(|e| self.fail("could not count rows", e))
    }

    fn export_rows(
        &self,
        table: &str,
        each: &mut dyn FnMut(Vec<Value>) -> Result<()>,
    ) -> Result<()> {
        let columns =
            table_columns(table).ok_or_else(|| Error::Usage(format!("no table `{table}`")))?;
        let fail = |e| self.fail(&format!("could not read table {table}"), e);
        let order = if table == "archive_search" {
            "rowid"
        } else {
            "1, 2"
        };
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM {table} ORDER BY {order}",
                columns.join(", ")
            ))
            .map_err(fail)?;
        let mut rows = statement.query([]).map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                use rusqlite::types::ValueRef;
                values.push(match row.get_ref(i).map_err(fail)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Integer(n),
                    ValueRef::Real(x) => Value::Real(x),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            each(values)?;
        }
        Ok(())
    }

    fn import_rows(&self, table: &str, rows: &[Vec<Value>]) -> Result<()> {
        let columns =
            table_columns(table).ok_or_else(|| Error::Usage(format!("no table `{table}`")))?;
        let fail = |e| self.fail(&format!("could not write table {table}"), e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        {
            // The search index's rows are numbered by what they are (`search_rowid`).
            let search = table == "archive_search";
            let mut names: Vec<&str> = columns.to_vec();
            if search {
                names.push("rowid");
            }
            let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    names.join(", "),
                    marks.join(", ")
                ))
                .map_err(fail)?;
            let position = |name: &str| columns.iter().position(|c| *c == name);
            let (message_at, section_at) = (position("message"), position("section"));
            for row in rows {
                let mut row = row.clone();
                if search {
                    let number = |at: Option<usize>| match at.and_then(|i| row.get(i)) {
                        Some(Value::Integer(n)) => Some(*n),
                        _ => None,
                    };
                    let message = number(message_at).unwrap_or(0);
                    match number(section_at) {
                        Some(p) if p >= SECTION_SPAN => continue,
                        section => row.push(Value::Integer(search_rowid(message, section))),
                    }
                }
                let values = row.iter().map(|v| match v {
                    Value::Null => rusqlite::types::Value::Null,
                    Value::Integer(n) => rusqlite::types::Value::Integer(*n),
                    Value::Real(x) => rusqlite::types::Value::Real(*x),
                    Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
                    Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
                });
                insert
                    .execute(rusqlite::params_from_iter(values))
                    .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)
    }

    fn finish_import(&self) -> Result<()> {
        Ok(())
    }
}
