//! Numbering on PostgreSQL: editions built and sent, and approvals.

use postgres::Row;

use crate::error::Result;
use crate::store::schema::EDITION_COLUMNS;
use crate::store::{Approval, EditionRecord, Editions};

use super::bridge::Step;
use super::{PgStore, narrow};

fn edition_row(row: &Row) -> Step<EditionRecord> {
    Ok(EditionRecord {
        number: narrow(row.try_get(0)?)?,
        content_hash: row.try_get(1)?,
        subject: row.try_get(2)?,
        source: row.try_get(3)?,
        built_at: row.try_get(4)?,
        sent_at: row.try_get(5)?,
    })
}

impl Editions for PgStore {
    fn highest_number(&self) -> Result<Option<u32>> {
        self.call("could not read the highest number", |db| {
            db.query_one(
                "SELECT max(n) FROM (SELECT max(number) AS n FROM editions
                                     UNION ALL SELECT max(bulletin) FROM messages) AS x",
                &[],
            )?
            .try_get::<_, Option<i64>>(0)?
            .map(narrow)
            .transpose()
        })
    }

    fn edition(&self, number: u32) -> Result<Option<EditionRecord>> {
        let number = i64::from(number);
        self.call("could not read an edition", move |db| {
            db.query_opt(
                &format!("SELECT {EDITION_COLUMNS} FROM editions WHERE number = $1"),
                &[&number],
            )?
            .map(|r| edition_row(&r))
            .transpose()
        })
    }

    fn editions_from(&self, source: &str) -> Result<Vec<EditionRecord>> {
        let source = source.to_string();
        self.call("could not look up editions by file", move |db| {
            db.query(
                &format!(
                    "SELECT {EDITION_COLUMNS} FROM editions WHERE source = $1 ORDER BY number DESC"
                ),
                &[&source],
            )?
            .iter()
            .map(edition_row)
            .collect()
        })
    }

    fn sent_editions(&self) -> Result<Vec<EditionRecord>> {
        self.call("could not list sent editions", move |db| {
            db.query(
                &format!(
                    "SELECT {EDITION_COLUMNS} FROM editions WHERE sent_at IS NOT NULL ORDER BY number"
                ),
                &[],
            )?
            .iter()
            .map(edition_row)
            .collect()
        })
    }

    fn record_build(&self, r: &EditionRecord) -> Result<()> {
        let r = r.clone();
        self.call("could not record a build", move |db| {
            db.execute(
                "INSERT INTO editions (number, content_hash, subject, source, built_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (number) DO UPDATE SET
                   content_hash = CASE WHEN editions.sent_at IS NULL THEN excluded.content_hash ELSE editions.content_hash END,
                   subject      = CASE WHEN editions.sent_at IS NULL THEN excluded.subject ELSE editions.subject END,
                   source       = CASE WHEN editions.sent_at IS NULL THEN excluded.source ELSE editions.source END,
                   built_at     = excluded.built_at",
                &[&i64::from(r.number), &r.content_hash, &r.subject, &r.source, &r.built_at],
            )?;
            Ok(())
        })
    }

    fn record_sent(&self, r: &EditionRecord, sent_at: &str) -> Result<()> {
        let r = r.clone();
        let sent_at = sent_at.to_string();
        self.call("could not record a send", move |db| {
            db.execute(
                "INSERT INTO editions (number, content_hash, subject, source, built_at, sent_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (number) DO UPDATE SET
                   content_hash = CASE WHEN editions.sent_at IS NULL THEN excluded.content_hash ELSE editions.content_hash END,
                   subject      = CASE WHEN editions.sent_at IS NULL THEN excluded.subject ELSE editions.subject END,
                   source       = CASE WHEN editions.sent_at IS NULL THEN excluded.source ELSE editions.source END,
                   sent_at      = COALESCE(editions.sent_at, excluded.sent_at)",
                &[
                    &i64::from(r.number),
                    &r.content_hash,
                    &r.subject,
                    &r.source,
                    &r.built_at,
                    &sent_at,
                ],
            )?;
            Ok(())
        })
    }

    fn approve(&self, a: &Approval) -> Result<()> {
        let a = a.clone();
        self.call("could not record the approval", move |db| {
            db.execute(
                "INSERT INTO approvals (source, name, content_hash, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (source, name) DO UPDATE SET content_hash = excluded.content_hash, at = excluded.at",
                &[&a.source, &a.name, &a.content_hash, &a.at],
            )?;
            Ok(())
        })
    }

    fn approvals(&self, source: &str) -> Result<Vec<Approval>> {
        let source = source.to_string();
        self.call("could not read approvals", move |db| {
            db.query(
                "SELECT source, name, content_hash, at FROM approvals WHERE source = $1
                 ORDER BY at COLLATE \"C\", name COLLATE \"C\"",
                &[&source],
            )?
            .iter()
            .map(|r| {
                Ok(Approval {
                    source: r.try_get(0)?,
                    name: r.try_get(1)?,
                    content_hash: r.try_get(2)?,
                    at: r.try_get(3)?,
                })
            })
            .collect()
        })
    }
}
