//! Numbering on SQLite: editions built and sent, and approvals.

use rusqlite::{OptionalExtension, params};

use crate::error::Result;
use crate::store::schema::EDITION_COLUMNS;
use crate::store::{Approval, EditionRecord, Editions};

use super::SqliteStore;

fn edition_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EditionRecord> {
    Ok(EditionRecord {
        number: row.get(0)?,
        content_hash: row.get(1)?,
        subject: row.get(2)?,
        source: row.get(3)?,
        built_at: row.get(4)?,
        sent_at: row.get(5)?,
    })
}

impl Editions for SqliteStore {
    fn highest_number(&self) -> Result<Option<u32>> {
        self.conn
            .query_row(
                "SELECT MAX(n) FROM (SELECT MAX(number) AS n FROM editions
                                     UNION ALL SELECT MAX(bulletin) FROM messages)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.fail("could not read the highest number", e))
    }

    fn edition(&self, number: u32) -> Result<Option<EditionRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {EDITION_COLUMNS} FROM editions WHERE number = ?1"),
                [number],
                edition_row,
            )
            .optional()
            .map_err(|e| self.fail("could not read an edition", e))
    }

    fn editions_from(&self, source: &str) -> Result<Vec<EditionRecord>> {
        let fail = |e| self.fail("could not look up editions by file", e);
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EDITION_COLUMNS} FROM editions WHERE source = ?1 ORDER BY number DESC"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([source], edition_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn sent_editions(&self) -> Result<Vec<EditionRecord>> {
        let fail = |e| self.fail("could not list sent editions", e);
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EDITION_COLUMNS} FROM editions WHERE sent_at IS NOT NULL ORDER BY number"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([], edition_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn record_build(&self, r: &EditionRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO editions (number, content_hash, subject, source, built_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(number) DO UPDATE SET
                   content_hash = CASE WHEN sent_at IS NULL THEN excluded.content_hash ELSE content_hash END,
                   subject      = CASE WHEN sent_at IS NULL THEN excluded.subject ELSE subject END,
                   source       = CASE WHEN sent_at IS NULL THEN excluded.source ELSE source END,
                   built_at     = excluded.built_at",
                params![r.number, r.content_hash, r.subject, r.source, r.built_at],
            )
            .map(drop)
            .map_err(|e| self.fail("could not record a build", e))
    }

    fn record_sent(&self, r: &EditionRecord, sent_at: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO editions (number, content_hash, subject, source, built_at, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(number) DO UPDATE SET
                   content_hash = CASE WHEN sent_at IS NULL THEN excluded.content_hash ELSE content_hash END,
                   subject      = CASE WHEN sent_at IS NULL THEN excluded.subject ELSE subject END,
                   source       = CASE WHEN sent_at IS NULL THEN excluded.source ELSE source END,
                   sent_at      = COALESCE(sent_at, excluded.sent_at)",
                params![r.number, r.content_hash, r.subject, r.source, r.built_at, sent_at],
            )
            .map(drop)
            .map_err(|e| self.fail("could not record a send", e))
    }

    fn approve(&self, a: &Approval) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO approvals (source, name, content_hash, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source, name) DO UPDATE SET content_hash = excluded.content_hash, at = excluded.at",
                params![a.source, a.name, a.content_hash, a.at],
            )
            .map(drop)
            .map_err(|e| self.fail("could not record the approval", e))
    }

    fn approvals(&self, source: &str) -> Result<Vec<Approval>> {
        let fail = |e| self.fail("could not read approvals", e);
        let mut statement = self
            .conn
            .prepare(
                "SELECT source, name, content_hash, at FROM approvals WHERE source = ?1 ORDER BY at, name",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([source], |r| {
                Ok(Approval {
                    source: r.get(0)?,
                    name: r.get(1)?,
                    content_hash: r.get(2)?,
                    at: r.get(3)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }
}
