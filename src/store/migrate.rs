//! `mailout store migrate`: copies a store into an empty one (in practice SQLite into
//! PostgreSQL), table by table through the [`RowCopy`](super::RowCopy) role's export and
//! import, and checks that every table holds as many rows on both sides.

use super::{Store, TABLES, Value, open_with, redact};
use crate::error::{Error, Result};

/// Rows written per transaction.
const BATCH: usize = 2000;

/// What a migration copied: per table, the rows in the source and in the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// (table, rows in the source, rows in the target).
    pub tables: Vec<(&'static str, u64, u64)>,
}

/// Copies `source` into the empty store at `to` (password from `password_env` when the URL
/// has none); `progress` hears of each table copied.
pub fn migrate(
    source: &dyn Store,
    to: &str,
    password_env: &str,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<Report> {
    if to == source.location() {
        return Err(Error::Usage(
            "the store to migrate to is the one in use".into(),
        ));
    }
    let live = source.workers()?;
    if !live.is_empty() {
        return Err(Error::Usage(format!(
            "{} send worker(s) are still working on `{}`; stop them (or wait for their lease to run out) and migrate again",
            live.len(),
            source.location()
        )));
    }
    let target = open_with(to, password_env)?;
    for (table, _) in TABLES {
        let n = target.count_rows(table)?;
        if n > 0 {
            return Err(Error::Usage(format!(
                "`{}` is not empty (table {table} has {}); migrate into an empty database",
                redact(to),
                crate::text::count(n, "row", "rows")
            )));
        }
    }
    copy(source, target.as_ref(), progress)
}

/// Copies every table of `source` into `target` and compares the counts.
pub fn copy(
    source: &dyn Store,
    target: &dyn Store,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<Report> {
    let mut report = Report::default();
    for (table, _) in TABLES {
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
        let mut copied = 0u64;
        source.export_rows(table, &mut |row| {
            batch.push(row);
            if batch.len() == BATCH {
                target.import_rows(table, &batch)?;
                copied += batch.len() as u64;
                batch.clear();
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            target.import_rows(table, &batch)?;
            copied += batch.len() as u64;
        }
        progress(table, copied);
        let (from, to) = (source.count_rows(table)?, target.count_rows(table)?);
        report.tables.push((table, from, to));
    }
    target.finish_import()?;
    if let Some((table, from, to)) = report.tables.iter().find(|(_, a, b)| a != b) {
        return Err(Error::Usage(format!(
            "table {table}: {from} rows in `{}` but {to} in `{}` after copying",
            source.location(),
            target.location()
        )));
    }
    Ok(report)
}
