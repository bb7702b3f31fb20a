//! The SQLite backend (bundled SQLite, WAL): the embedded default store. Schema changes are
//! migrations, applied in order on open.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{EditionRecord, Store};
use crate::error::{Error, Result};

const MIGRATIONS: &[M<'static>] = &[M::up(
    "CREATE TABLE editions (
        number       INTEGER PRIMARY KEY,
        content_hash TEXT NOT NULL,
        subject      TEXT NOT NULL,
        source       TEXT NOT NULL,
        built_at     TEXT,
        sent_at      TEXT
    );
    CREATE INDEX editions_source ON editions(source);
    CREATE TABLE secrets (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );",
)];

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    location: String,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let location = path.display().to_string();
        let fail = |context: &str, e: Box<dyn std::error::Error + Send + Sync>| Error::Store {
            location: location.clone(),
            context: context.to_string(),
            source: e,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail("could not create its folder", e.into()))?;
        }
        let mut conn = Connection::open(path).map_err(|e| fail("could not open", e.into()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
            .map_err(|e| fail("could not configure", e.into()))?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|e| fail("could not migrate the schema", e.into()))?;
        Ok(SqliteStore { conn, location })
    }

    fn fail(&self, context: &str, e: rusqlite::Error) -> Error {
        Error::Store {
            location: self.location.clone(),
            context: context.to_string(),
            source: Box::new(e),
        }
    }
}

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

const EDITION_COLUMNS: &str = "number, content_hash, subject, source, built_at, sent_at";

impl Store for SqliteStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn highest_number(&self) -> Result<Option<u32>> {
        self.conn
            .query_row("SELECT MAX(number) FROM editions", [], |r| r.get(0))
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

    fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let existing: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.fail("could not read a secret", e))?;
        if let Some(value) = existing {
            return Ok(value);
        }
        let fresh = crate::clock::random_bytes::<32>().map_err(|e| Error::Store {
            location: self.location.clone(),
            context: "could not make a secret".into(),
            source: Box::new(e),
        })?;
        self.conn
            .execute(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                params![name, fresh.to_vec()],
            )
            .map_err(|e| self.fail("could not store a secret", e))?;
        self.conn
            .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .map_err(|e| self.fail("could not read a secret", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(number: u32, hash: &str, source: &str) -> EditionRecord {
        EditionRecord {
            number,
            content_hash: hash.into(),
            subject: format!("S {number}"),
            source: source.into(),
            built_at: Some(format!("2026-01-0{number}T00:00:00Z")),
            sent_at: None,
        }
    }

    #[test]
    fn builds_and_sends_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        assert_eq!(store.highest_number().unwrap(), None);
        store.record_build(&record(3, "a", "b/3.toml")).unwrap();
        store.record_build(&record(4, "b", "b/4.toml")).unwrap();
        assert_eq!(store.highest_number().unwrap(), Some(4));
        assert_eq!(store.editions_from("b/3.toml").unwrap()[0].number, 3);

        store
            .record_sent(&record(3, "a", "b/3.toml"), "2026-02-01T00:00:00Z")
            .unwrap();
        assert!(store.editions_from("b/3.toml").unwrap()[0].is_sent());
        // A later build of other content under a sent number does not overwrite it.
        store.record_build(&record(3, "zzz", "other.toml")).unwrap();
        let sent = store.edition(3).unwrap().unwrap();
        assert_eq!(
            (sent.content_hash.as_str(), sent.source.as_str()),
            ("a", "b/3.toml")
        );
        assert!(sent.is_sent());
    }

    #[test]
    fn secrets_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let first = SqliteStore::open(&path).unwrap().secret("tokens").unwrap();
        assert_eq!(first.len(), 32);
        let again = SqliteStore::open(&path).unwrap().secret("tokens").unwrap();
        assert_eq!(first, again);
    }
}
