//! Rows copied by `mailout store migrate`, on PostgreSQL.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use crate::error::{Error, Result};
use crate::store::{RowCopy, Value};

use super::bridge::{Step, bad};
use super::convert::{PgValue, integer_of, key_params, paging, text_of, to_pg, value_of};
use super::search::{SearchRow, insert_search_rows};
use super::{PgStore, count_of};

/// The columns of `table` in [`TABLES`](crate::store::TABLES).
fn table_columns(table: &str) -> Result<&'static [&'static str]> {
    crate::store::schema::table_columns(table)
        .ok_or_else(|| Error::Usage(format!("no table `{table}`")))
}

impl RowCopy for PgStore {
    fn count_rows(&self, table: &str) -> Result<u64> {
        table_columns(table)?;
        let sql = format!("SELECT count(*) FROM {table}");
        self.call("could not count rows", move |db| {
            Ok(count_of(db.query_one(&sql, &[])?.try_get(0)?))
        })
    }

    fn export_rows(
        &self,
        table: &str,
        each: &mut dyn FnMut(Vec<Value>) -> Result<()>,
    ) -> Result<()> {
        let columns = table_columns(table)?;
        let (order, after, page) = paging(table);
        // `archive_search` pages by its own id, which is not copied.
        let hidden_id = table == "archive_search";
        let list = columns.join(", ") + if hidden_id { ", id" } else { "" };
        let first = format!("SELECT {list} FROM {table} ORDER BY {order} LIMIT {page}");
        let next =
            format!("SELECT {list} FROM {table} WHERE {after} ORDER BY {order} LIMIT {page}");
        let keys = order.split(',').count();
        let mut last: Option<Vec<Value>> = None;
        loop {
            let sql = if last.is_some() {
                next.clone()
            } else {
                first.clone()
            };
            let key = last.take().unwrap_or_default();
            let rows = self.call(format!("could not read table {table}"), move |db| {
                let params = key_params(&key)?;
                let params: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                db.query(&sql, &params)?
                    .iter()
                    .map(|row| (0..row.len()).map(|i| value_of(row, i)).collect())
                    .collect::<Step<Vec<Vec<Value>>>>()
            })?;
            let full = rows.len() as i64 == page;
            for mut row in rows {
                last = Some(if hidden_id {
                    row.pop().into_iter().collect()
                } else {
                    row.iter().take(keys).cloned().collect()
                });
                each(row)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn import_rows(&self, table: &str, rows: &[Vec<Value>]) -> Result<()> {
        let columns = table_columns(table)?;
        if let Some(row) = rows.iter().find(|r| r.len() != columns.len()) {
            return Err(Error::Usage(format!(
                "a row for table {table} has {} values; it has {} columns",
                row.len(),
                columns.len()
            )));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        let table = table.to_string();
        let context = format!("could not write table {table}");
        if table == "archive_search" {
            return self.call(context, move |db| {
                let search = rows
                    .iter()
                    .map(|r| {
                        let text = |i: usize| text_of(&r[i]).map_err(bad);
                        let int = |i: usize| integer_of(&r[i]).map_err(bad);
                        Ok(SearchRow {
                            subject: text(0)?,
                            sender: text(1)?,
                            heading: text(2)?,
                            body: text(3)?,
                            message: int(4)?,
                            section: int(5)?,
                        })
                    })
                    .collect::<Step<Vec<_>>>()?;
                db.transaction(|tx| insert_search_rows(tx, &search))
            });
        }
        let list = columns.join(", ");
        self.call(context, move |db| {
            db.transaction(|tx| {
                let probe = tx.statement(&format!("SELECT {list} FROM {table} LIMIT 0"))?;
                let types: Vec<Type> = probe.columns().iter().map(|c| c.type_().clone()).collect();
                let converted = rows
                    .iter()
                    .enumerate()
                    .map(|(n, row)| {
                        row.iter()
                            .zip(&types)
                            .zip(columns)
                            .map(|((v, ty), column)| {
                                to_pg(v, ty).map_err(|why| {
                                    bad(format!("row {}, column {column}: {why}", n + 1))
                                })
                            })
                            .collect::<Step<Vec<PgValue>>>()
                    })
                    .collect::<Step<Vec<_>>>()?;
                let copy =
                    tx.c.copy_in(&format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)"))?;
                let mut writer = BinaryCopyInWriter::new(copy, &types);
                for row in &converted {
                    let values: Vec<&(dyn ToSql + Sync)> =
                        row.iter().map(PgValue::as_sql).collect();
                    writer.write(&values)?;
                }
                writer.finish()?;
                Ok(())
            })
        })
    }

    fn finish_import(&self) -> Result<()> {
        self.call("could not finish the import", |db| {
            for table in [
                "members",
                "jobs",
                "messages",
                "archive_search",
                "workers",
                "bounces",
                "member_events",
            ] {
                db.query_one(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                       greatest(coalesce(max(id), 0), 1), max(id) IS NOT NULL)
                         FROM {table}"
                    ),
                    &[],
                )?;
            }
            // Planned on counts from before the import, a resumed job's claims would read
            // and sort all its rows for each batch: see `journal::count_again`.
            db.c.batch_execute("ANALYZE (SKIP_LOCKED) journal, members, messages, archive_search")?;
            Ok(())
        })
    }
}
