//! The SQLite backend (bundled SQLite, WAL): the embedded default store. Schema changes are
//! migrations, applied in order on open.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{
    Approval, ArchiveEntry, Archived, ArchivedMessage, AttachmentInfo, CopyKind, Counts,
    EditionRecord, Entry, EntryState, ImportCounts, Job, Mark, NewJob, NewMessage, Progress, Store,
    Suppression, TABLES, Value, WorkerInfo,
};
use crate::archive::query::{Field, Node, Query};
use crate::archive::words::index_form;
use crate::error::{Error, Result};
use crate::members::{Member, Selection};

const MIGRATIONS: &[M<'static>] = &[
    M::up(
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
    ),
    M::up(
        "CREATE TABLE members (
            id         INTEGER PRIMARY KEY,
            email      TEXT NOT NULL UNIQUE,
            name       TEXT,
            branch     TEXT,
            employer   TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            token_key  BLOB NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX members_branch ON members(branch COLLATE NOCASE);
        CREATE INDEX members_employer ON members(employer COLLATE NOCASE);
        CREATE INDEX members_token_key ON members(token_key);
        CREATE TABLE suppressions (
            email  TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            detail TEXT,
            at     TEXT NOT NULL
        );
        CREATE TABLE jobs (
            id           INTEGER PRIMARY KEY,
            number       INTEGER NOT NULL,
            selectors    TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            subject      TEXT NOT NULL,
            source       TEXT NOT NULL,
            transport    TEXT NOT NULL,
            total        INTEGER NOT NULL,
            created_at   TEXT NOT NULL,
            finished_at  TEXT,
            UNIQUE (number, selectors)
        );
        CREATE TABLE journal (
            job        INTEGER NOT NULL REFERENCES jobs(id),
            seq        INTEGER NOT NULL,
            email      TEXT NOT NULL,
            name       TEXT,
            branch     TEXT,
            employer   TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            state      TEXT NOT NULL DEFAULT 'pending',
            attempts   INTEGER NOT NULL DEFAULT 0,
            message_id TEXT,
            reply      TEXT,
            updated_at TEXT,
            PRIMARY KEY (job, seq)
        ) WITHOUT ROWID;
        CREATE INDEX journal_pending ON journal(job, seq) WHERE state = 'pending';",
    ),
    M::up(
        "CREATE TABLE messages (
            id           INTEGER PRIMARY KEY,
            message_id   TEXT,
            content_hash TEXT NOT NULL UNIQUE,
            date         TEXT,
            sender       TEXT,
            recipients   TEXT,
            subject      TEXT,
            bulletin     INTEGER,
            flagged      TEXT,
            size         INTEGER NOT NULL,
            raw_zstd     BLOB NOT NULL,
            source       TEXT NOT NULL,
            imported_at  TEXT NOT NULL
        );
        CREATE UNIQUE INDEX messages_message_id ON messages(message_id) WHERE message_id IS NOT NULL;
        CREATE INDEX messages_bulletin ON messages(bulletin) WHERE bulletin IS NOT NULL;
        CREATE TABLE message_sections (
            message  INTEGER NOT NULL REFERENCES messages(id),
            position INTEGER NOT NULL,
            heading  TEXT,
            PRIMARY KEY (message, position)
        ) WITHOUT ROWID;
        CREATE TABLE attachments (
            hash         TEXT PRIMARY KEY,
            content_type TEXT NOT NULL,
            size         INTEGER NOT NULL,
            data_zstd    BLOB NOT NULL
        );
        CREATE TABLE message_attachments (
            message  INTEGER NOT NULL REFERENCES messages(id),
            position INTEGER NOT NULL,
            hash     TEXT NOT NULL REFERENCES attachments(hash),
            filename TEXT,
            content_id TEXT,
            PRIMARY KEY (message, position)
        ) WITHOUT ROWID;
        CREATE VIRTUAL TABLE archive_search USING fts5(
            subject, sender, heading, body,
            message UNINDEXED, section UNINDEXED,
            tokenize = 'unicode61 remove_diacritics 2'
        );
        -- Fewer, larger merges while importing: the index is written in big batches.
        INSERT INTO archive_search (archive_search, rank) VALUES ('automerge', 16);
        CREATE TABLE imap_state (
            mailbox     TEXT PRIMARY KEY,
            uidvalidity INTEGER NOT NULL,
            last_uid    INTEGER NOT NULL
        );
        CREATE INDEX journal_email ON journal(email);",
    ),
    M::up(
        "ALTER TABLE journal ADD COLUMN claimed_by INTEGER;
        -- Times here are Unix seconds: every process sharing a SQLite file shares a clock.
        ALTER TABLE jobs ADD COLUMN rate_next REAL;
        CREATE TABLE workers (
            id           INTEGER PRIMARY KEY,
            host         TEXT NOT NULL,
            pid          INTEGER NOT NULL,
            started_at   TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL,
            expires      REAL NOT NULL,
            claimed      INTEGER NOT NULL DEFAULT 0,
            sent         INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE domain_pauses (
            job    INTEGER NOT NULL,
            domain TEXT NOT NULL,
            until  REAL NOT NULL,
            PRIMARY KEY (job, domain)
        ) WITHOUT ROWID;",
    ),
    M::up(
        "CREATE TABLE approvals (
            source       TEXT NOT NULL,
            name         TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            at           TEXT NOT NULL,
            PRIMARY KEY (source, name)
        ) WITHOUT ROWID;",
    ),
    M::up(
        "-- Keyed token lookup (HMAC of the address under the token secret); token_key keeps
        -- the unkeyed hash of tokens of the first form, honoured for a transition.
        ALTER TABLE members ADD COLUMN lookup_key BLOB;
        CREATE INDEX members_lookup_key ON members(lookup_key);",
    ),
    M::up(
        "ALTER TABLE messages ADD COLUMN folder TEXT;
        ALTER TABLE messages ADD COLUMN copy_kind TEXT;
        -- A search matches the whole message: bulletins, indexed by section until now, get
        -- a row for the whole text (their sections' text, joined). Rows are numbered so that
        -- a row's number says what it is without reading it (see `search_rowid`): the whole
        -- message's row is the message's id, a section's is negative.
        CREATE VIRTUAL TABLE search_new USING fts5(
            subject, sender, heading, body,
            message UNINDEXED, section UNINDEXED,
            tokenize = 'unicode61 remove_diacritics 2'
        );
        INSERT INTO search_new (rowid, subject, sender, heading, body, message, section)
            SELECT message, max(subject), max(sender), NULL,
                   group_concat(body, char(10) || char(10)), message, NULL
            FROM (SELECT subject, sender, body, message FROM archive_search
                  WHERE section IS NOT NULL ORDER BY message, section)
            GROUP BY message;
        INSERT INTO search_new (rowid, subject, sender, heading, body, message, section)
            SELECT -(message * 1048576 + section), subject, sender, heading, body, message, section
            FROM archive_search WHERE section IS NOT NULL AND section < 1048576;
        DROP TABLE archive_search;
        ALTER TABLE search_new RENAME TO archive_search;
        INSERT INTO archive_search (archive_search, rank) VALUES ('automerge', 16);",
    ),
    M::up(
        "CREATE TABLE bounces (
            id          INTEGER PRIMARY KEY,
            email       TEXT NOT NULL,
            at          TEXT NOT NULL,
            reason      TEXT NOT NULL,
            consequence TEXT NOT NULL,
            job         INTEGER,
            evidence    TEXT NOT NULL
        );
        CREATE INDEX bounces_email ON bounces(email);
        CREATE INDEX journal_message_id ON journal(message_id);",
    ),
];

/// Now, in Unix seconds (real time, even when tests pin the clock).
fn unix_now() -> f64 {
    crate::clock::real_unix_seconds()
}

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
        let conn = Connection::open(path).map_err(|e| fail("could not open", e.into()))?;
        SqliteStore::prepare(conn, location)
    }

    /// An empty store in memory, standing in for the one at `path`, which does not exist:
    /// a command that only reads, or a demo run that only composes, sees an empty store
    /// and leaves no file behind. Its messages name `path`.
    pub fn open_in_memory(path: &Path) -> Result<SqliteStore> {
        let location = path.display().to_string();
        let conn = Connection::open_in_memory().map_err(|e| Error::Store {
            location: location.clone(),
            context: "could not open an empty store in memory".into(),
            source: e.into(),
        })?;
        SqliteStore::prepare(conn, location)
    }

    /// Configures and migrates a new connection.
    fn prepare(mut conn: Connection, location: String) -> Result<SqliteStore> {
        let fail = |context: &str, e: Box<dyn std::error::Error + Send + Sync>| Error::Store {
            location: location.clone(),
            context: context.to_string(),
            source: e,
        };
        conn.busy_timeout(std::time::Duration::from_secs(30))
            // 16 KB pages (set before the first table; no effect on an existing file):
            // archived messages and the search index are written in big pieces.
            .and_then(|()| conn.pragma_update(None, "page_size", 16384))
            .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
            // 16 MB of page cache: archive imports and searches touch many pages.
            .and_then(|()| conn.pragma_update(None, "cache_size", -16_000))
            .map_err(|e| fail("could not configure", e.into()))?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|e| fail("could not migrate the schema", e.into()))?;
        Ok(SqliteStore { conn, location })
    }

    /// Opens the existing store at `path` read-only: nothing is created, configured or
    /// migrated. A store written by an older mailout must be opened for writing once first.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore> {
        let location = path.display().to_string();
        let fail = |context: &str, e: Box<dyn std::error::Error + Send + Sync>| Error::Store {
            location: location.clone(),
            context: context.to_string(),
            source: e,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail("could not open", e.into()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .and_then(|()| conn.pragma_update(None, "cache_size", -16_000))
            .map_err(|e| fail("could not configure", e.into()))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| fail("could not read the schema version", e.into()))?;
        if usize::try_from(version).unwrap_or(0) < MIGRATIONS.len() {
            return Err(fail(
                "the store was written by an older mailout",
                "run a command that changes it (such as `mailout members import`) once with write access, to upgrade it"
                    .into(),
            ));
        }
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

    fn import_members(
        &self,
        members: &mut dyn Iterator<Item = Member>,
        lookup: &dyn Fn(&str) -> Vec<u8>,
    ) -> Result<ImportCounts> {
        let fail = |e| self.fail("could not import members", e);
        let now = crate::clock::stamp();
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let before = count(&tx, "SELECT COUNT(*) FROM members").map_err(fail)?;
        let newest: i64 = tx
            .query_row("SELECT COALESCE(MAX(id), 0) FROM members", [], |r| r.get(0))
            .map_err(fail)?;
        let mut updated = 0;
        {
            // A returned id at or below the highest before this import is a member who was
            // already there: an update, not a new member (nor a repeat within the file).
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO members (email, name, branch, employer, attributes, token_key, lookup_key, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?7, ?7)
                     ON CONFLICT(email) DO UPDATE SET
                       name = excluded.name, branch = excluded.branch, employer = excluded.employer,
                       attributes = excluded.attributes, lookup_key = excluded.lookup_key,
                       updated_at = excluded.updated_at
                     RETURNING id",
                )
                .map_err(fail)?;
            for m in members {
                let attributes =
                    serde_json::to_string(&m.attributes).unwrap_or_else(|_| "{}".into());
                let key = crate::token::legacy_key(&m.email);
                let lookup_key = lookup(&m.email);
                let id: i64 = upsert
                    .query_row(
                        params![
                            m.email,
                            m.name,
                            m.branch,
                            m.employer,
                            attributes,
                            &key[..],
                            now,
                            lookup_key
                        ],
                        |r| r.get(0),
                    )
                    .map_err(fail)?;
                updated += u64::from(id <= newest);
            }
        }
        let after = count(&tx, "SELECT COUNT(*) FROM members").map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(ImportCounts {
            added: after - before,
            updated,
        })
    }

    fn members(&self, selection: Option<&Selection>) -> Result<Vec<Member>> {
        let fail = |e| self.fail("could not list members", e);
        let (filter, args) = match selection {
            Some(s) => where_selected(s, 1),
            None => ("1".to_string(), Vec::new()),
        };
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT email, name, branch, employer, attributes FROM members m WHERE {filter} ORDER BY email"
            ))
            .map_err(fail)?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(args.iter()), member_row)
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn member(&self, email: &str) -> Result<Option<Member>> {
        self.conn
            .query_row(
                "SELECT email, name, branch, employer, attributes FROM members WHERE email = ?1",
                [email],
                member_row,
            )
            .optional()
            .map_err(|e| self.fail("could not read a member", e))
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

    fn members_by_lookup_key(&self, key: &[u8]) -> Result<Vec<Member>> {
        let fail = |e| self.fail("could not look up a token", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, name, branch, employer, attributes FROM members WHERE lookup_key = ?1 ORDER BY id",
            )
            .map_err(fail)?;
        let rows = statement.query_map([key], member_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn members_by_legacy_key(&self, key: &[u8]) -> Result<Vec<Member>> {
        let fail = |e| self.fail("could not look up a token", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, name, branch, employer, attributes FROM members WHERE token_key = ?1 ORDER BY id",
            )
            .map_err(fail)?;
        let rows = statement.query_map([key], member_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn lookup_keys_state(&self) -> Result<(Option<Vec<u8>>, u64)> {
        let fail = |e| self.fail("could not read the token keys' state", e);
        let fingerprint: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM secrets WHERE name = 'token-fingerprint'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?;
        let missing = count(
            &self.conn,
            "SELECT COUNT(*) FROM members WHERE lookup_key IS NULL",
        )
        .map_err(fail)?;
        Ok((fingerprint, missing))
    }

    fn set_lookup_keys(&self, keys: &[(String, Vec<u8>)], fingerprint: &[u8]) -> Result<()> {
        let fail = |e| self.fail("could not write the token keys", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        {
            let mut update = tx
                .prepare_cached("UPDATE members SET lookup_key = ?2 WHERE email = ?1")
                .map_err(fail)?;
            for (email, key) in keys {
                update.execute(params![email, key]).map_err(fail)?;
            }
        }
        tx.execute(
            "INSERT INTO secrets (name, value) VALUES ('token-fingerprint', ?1)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [fingerprint],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    fn attribute_names(&self) -> Result<Vec<String>> {
        let fail = |e| self.fail("could not read attribute names", e);
        let mut statement = self
            .conn
            .prepare(
                "SELECT DISTINCT j.key FROM members, json_each(members.attributes) AS j ORDER BY j.key",
            )
            .map_err(fail)?;
        let rows = statement.query_map([], |r| r.get(0)).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(fail)
    }

    fn counts(&self) -> Result<Counts> {
        let fail = |e| self.fail("could not count members", e);
        let sendable = "NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)";
        let all = count(
            &self.conn,
            &format!("SELECT COUNT(*) FROM members m WHERE {sendable}"),
        )
        .map_err(fail)?;
        let suppressed = count(
            &self.conn,
            "SELECT COUNT(*) FROM members m WHERE EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)",
        )
        .map_err(fail)?;
        let group = |column: &str| -> rusqlite::Result<Vec<(String, u64)>> {
            let mut statement = self.conn.prepare(&format!(
                "SELECT MIN({column}), COUNT(*) FROM members m
                 WHERE {column} IS NOT NULL AND {sendable}
                 GROUP BY {column} COLLATE NOCASE ORDER BY {column} COLLATE NOCASE"
            ))?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            rows.collect()
        };
        let branches = group("branch").map_err(fail)?;
        let employers = group("employer").map_err(fail)?;
        Ok(Counts {
            all,
            suppressed,
            branches,
            employers,
        })
    }

    fn count_selected(&self, selection: &Selection) -> Result<u64> {
        let (filter, args) = where_selected(selection, 1);
        self.conn
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM members m WHERE {filter}
                     AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)"
                ),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.fail("could not count recipients", e))
    }

    fn suppress(&self, email: &str, reason: &str, detail: Option<&str>, at: &str) -> Result<bool> {
        self.conn
            .execute(
                "INSERT INTO suppressions (email, reason, detail, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(email) DO NOTHING",
                params![email, reason, detail, at],
            )
            .map(|n| n > 0)
            .map_err(|e| self.fail("could not suppress an address", e))
    }

    fn suppressions(&self) -> Result<Vec<Suppression>> {
        let fail = |e| self.fail("could not list suppressions", e);
        let mut statement = self
            .conn
            .prepare("SELECT email, reason, detail, at FROM suppressions ORDER BY at, email")
            .map_err(fail)?;
        let rows = statement
            .query_map([], |r| {
                Ok(Suppression {
                    email: r.get(0)?,
                    reason: r.get(1)?,
                    detail: r.get(2)?,
                    at: r.get(3)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn find_job(&self, number: u32, selectors: &str) -> Result<Option<Job>> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM jobs WHERE number = ?1 AND selectors = ?2",
                params![number, selectors],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.fail("could not look up a job", e))?;
        match id {
            Some(id) => self.job(id),
            None => Ok(None),
        }
    }

    fn create_job(&self, job: &NewJob, selection: &Selection) -> Result<Job> {
        let fail = |e| self.fail("could not start the job", e);
        let (filter, mut args) = where_selected(selection, 2);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        tx.execute(
            "INSERT INTO jobs (number, selectors, content_hash, subject, source, transport, total, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
            params![job.number, job.selectors, job.content_hash, job.subject, job.source, job.transport, job.created_at],
        )
        .map_err(fail)?;
        let id = tx.last_insert_rowid();
        args.insert(0, id.to_string());
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO journal (job, seq, email, name, branch, employer, attributes)
                     SELECT CAST(?1 AS INTEGER), ROW_NUMBER() OVER (ORDER BY m.id), m.email, m.name, m.branch, m.employer, m.attributes
                     FROM members m
                     WHERE ({filter})
                       AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)"
                ),
                rusqlite::params_from_iter(args.iter()),
            )
            .map_err(fail)?;
        tx.execute(
            "UPDATE jobs SET total = ?1 WHERE id = ?2",
            params![inserted as i64, id],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        self.job(id)?.ok_or_else(|| Error::Store {
            location: self.location.clone(),
            context: "the new job vanished".into(),
            source: "no row".into(),
        })
    }

    fn job(&self, id: i64) -> Result<Option<Job>> {
        let fail = |e| self.fail("could not read a job", e);
        let job = self
            .conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_row,
            )
            .optional()
            .map_err(fail)?;
        match job {
            Some(mut job) => {
                job.progress = self.progress(id).map_err(fail)?;
                Ok(Some(job))
            }
            None => Ok(None),
        }
    }

    fn jobs(&self) -> Result<Vec<Job>> {
        let fail = |e| self.fail("could not list jobs", e);
        let mut statement = self
            .conn
            .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC"))
            .map_err(fail)?;
        let rows = statement.query_map([], job_row).map_err(fail)?;
        let mut jobs = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)?;
        for job in &mut jobs {
            job.progress = self.progress(job.id).map_err(fail)?;
        }
        Ok(jobs)
    }

    fn skip_suppressed(&self, job: i64, at: &str) -> Result<u64> {
        self.conn
            .execute(
                "UPDATE journal SET state = 'skipped', reply = 'suppressed: ' || (SELECT reason FROM suppressions s WHERE s.email = journal.email), updated_at = ?2
                 WHERE job = ?1 AND state = 'pending'
                   AND EXISTS (SELECT 1 FROM suppressions s WHERE s.email = journal.email)",
                params![job, at],
            )
            .map(|n| n as u64)
            .map_err(|e| self.fail("could not skip suppressed addresses", e))
    }

    fn pending(&self, job: i64, after_seq: i64, limit: usize) -> Result<Vec<Entry>> {
        let fail = |e| self.fail("could not read the journal", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT job, seq, email, name, branch, employer, attributes,
                        CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email = journal.email)
                             THEN 'skipped' ELSE state END,
                        attempts, message_id, reply
                 FROM journal
                 WHERE job = ?1 AND state = 'pending' AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map(params![job, after_seq, limit as i64], entry_row)
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn claim(&self, job: i64, worker: i64, after: i64, limit: usize) -> Result<Vec<Entry>> {
        let fail = |e| self.fail("could not claim journal rows", e);
        // BEGIN IMMEDIATE: claims by processes sharing the file are serialised.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(fail)?;
        let mut rows = {
            let mut statement = tx
                .prepare_cached(
                    "UPDATE journal SET claimed_by = ?2
                     WHERE job = ?1 AND seq IN (
                        SELECT seq FROM journal
                        WHERE job = ?1 AND state = 'pending' AND seq > ?5
                          AND (claimed_by IS NULL
                               OR claimed_by NOT IN (SELECT id FROM workers WHERE expires > ?4))
                        ORDER BY seq LIMIT ?3)
                     RETURNING job, seq, email, name, branch, employer, attributes,
                        CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email = journal.email)
                             THEN 'skipped' ELSE state END,
                        attempts, message_id, reply",
                )
                .map_err(fail)?;
            statement
                .query_map(
                    params![job, worker, limit as i64, unix_now(), after],
                    entry_row,
                )
                .map_err(fail)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(fail)?
        };
        tx.commit().map_err(fail)?;
        rows.sort_by_key(|e| e.seq);
        Ok(rows)
    }

    fn running_jobs(&self) -> Result<Vec<Job>> {
        let mut jobs = self.jobs()?;
        jobs.retain(|j| j.finished_at.is_none());
        jobs.reverse();
        Ok(jobs)
    }

    fn register_worker(&self, host: &str, pid: u32, lease_secs: u32) -> Result<i64> {
        let now = crate::clock::stamp();
        self.conn
            .execute(
                "INSERT INTO workers (host, pid, started_at, heartbeat_at, expires)
                 VALUES (?1, ?2, ?3, ?3, ?4)",
                params![host, pid, now, unix_now() + f64::from(lease_secs)],
            )
            .map(|_| self.conn.last_insert_rowid())
            .map_err(|e| self.fail("could not register the worker", e))
    }

    fn heartbeat(&self, worker: i64, claimed: u64, sent: u64, lease_secs: u32) -> Result<bool> {
        let now = unix_now();
        self.conn
            .execute(
                "UPDATE workers SET expires = ?2, heartbeat_at = ?3, claimed = ?4, sent = ?5
                 WHERE id = ?1 AND expires > ?6",
                params![
                    worker,
                    now + f64::from(lease_secs),
                    crate::clock::stamp(),
                    claimed as i64,
                    sent as i64,
                    now
                ],
            )
            .map(|n| n == 1)
            .map_err(|e| self.fail("could not renew the worker's lease", e))
    }

    fn retire_worker(&self, worker: i64) -> Result<()> {
        let fail = |e| self.fail("could not retire the worker", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        tx.execute(
            "UPDATE journal SET claimed_by = NULL WHERE claimed_by = ?1 AND state = 'pending'",
            [worker],
        )
        .map_err(fail)?;
        tx.execute("DELETE FROM workers WHERE id = ?1", [worker])
            .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let fail = |e| self.fail("could not list workers", e);
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, host, pid, started_at, heartbeat_at, claimed, sent
                 FROM workers WHERE expires > ?1 ORDER BY id",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([unix_now()], |r| {
                Ok(WorkerInfo {
                    id: r.get(0)?,
                    host: r.get(1)?,
                    pid: r.get(2)?,
                    started_at: r.get(3)?,
                    heartbeat_at: r.get(4)?,
                    claimed: r.get::<_, i64>(5)? as u64,
                    sent: r.get::<_, i64>(6)? as u64,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn reserve_sends(&self, job: i64, rate: u32, count: u32) -> Result<std::time::Duration> {
        let now = unix_now();
        let span = f64::from(count) / f64::from(rate.max(1));
        let start: f64 = self
            .conn
            .query_row(
                "UPDATE jobs SET rate_next = MAX(COALESCE(rate_next, 0), ?2) + ?3 WHERE id = ?1
                 RETURNING rate_next - ?3",
                params![job, now, span],
                |r| r.get(0),
            )
            .map_err(|e| self.fail("could not reserve send slots", e))?;
        Ok(std::time::Duration::from_secs_f64((start - now).max(0.0)))
    }

    fn pause_domain(&self, job: i64, domain: &str, pause: std::time::Duration) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO domain_pauses (job, domain, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (job, domain) DO UPDATE SET until = MAX(until, excluded.until)",
                params![job, domain, unix_now() + pause.as_secs_f64()],
            )
            .map(drop)
            .map_err(|e| self.fail("could not pause a domain", e))
    }

    fn paused_domains(&self, job: i64) -> Result<Vec<(String, std::time::Duration)>> {
        let fail = |e| self.fail("could not read paused domains", e);
        let now = unix_now();
        let mut statement = self
            .conn
            .prepare_cached("SELECT domain, until FROM domain_pauses WHERE job = ?1 AND until > ?2")
            .map_err(fail)?;
        let rows = statement
            .query_map(params![job, now], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    std::time::Duration::from_secs_f64((r.get::<_, f64>(1)? - now).max(0.0)),
                ))
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn mark(&self, marks: &[Mark]) -> Result<()> {
        let fail = |e| self.fail("could not write the journal", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE journal SET state = ?3, attempts = ?4, message_id = ?5, reply = ?6, updated_at = ?7,
                            claimed_by = CASE WHEN ?3 = 'pending' THEN claimed_by END
                     WHERE job = ?1 AND seq = ?2 AND state = 'pending'",
                )
                .map_err(fail)?;
            for m in marks {
                update
                    .execute(params![
                        m.job,
                        m.seq,
                        m.state.as_str(),
                        m.attempts,
                        m.message_id,
                        m.reply,
                        m.at
                    ])
                    .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)
    }

    fn finish_job(&self, job: i64, at: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE jobs SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL",
                params![job, at],
            )
            .map(drop)
            .map_err(|e| self.fail("could not finish the job", e))
    }

    fn retry_uncertain(&self, job: i64, at: &str) -> Result<u64> {
        let fail = |e| self.fail("could not reopen the uncertain rows", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let n = tx
            .execute(
                "UPDATE journal SET state = 'pending', claimed_by = NULL, updated_at = ?2,
                        reply = 'resent on purpose after: ' || COALESCE(reply, '')
                 WHERE job = ?1 AND state = 'uncertain'",
                params![job, at],
            )
            .map_err(fail)?;
        if n > 0 {
            tx.execute("UPDATE jobs SET finished_at = NULL WHERE id = ?1", [job])
                .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(n as u64)
    }

    fn entry_by_message_id(&self, message_id: &str) -> Result<Option<Entry>> {
        self.conn
            .query_row(
                &format!("SELECT {ENTRY_COLUMNS} FROM journal WHERE message_id = ?1 LIMIT 1"),
                [message_id],
                entry_row,
            )
            .optional()
            .map_err(|e| self.fail("could not read the journal", e))
    }

    fn unsuppress(&self, email: &str) -> Result<Option<Suppression>> {
        self.conn
            .query_row(
                "DELETE FROM suppressions WHERE email = ?1 RETURNING email, reason, detail, at",
                [email],
                |r| {
                    Ok(Suppression {
                        email: r.get(0)?,
                        reason: r.get(1)?,
                        detail: r.get(2)?,
                        at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.fail("could not lift a suppression", e))
    }

    fn add_bounce(&self, e: &super::BounceEvent) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO bounces (email, at, reason, consequence, job, evidence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![e.email, e.at, e.reason, e.consequence, e.job, e.evidence],
            )
            .map(drop)
            .map_err(|err| self.fail("could not keep a bounce", err))
    }

    fn bounces_for(&self, email: &str) -> Result<Vec<super::BounceEvent>> {
        let fail = |e| self.fail("could not read bounces", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, at, reason, consequence, job, evidence FROM bounces
                 WHERE email = ?1 ORDER BY at, id",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([email], |r| {
                Ok(super::BounceEvent {
                    email: r.get(0)?,
                    at: r.get(1)?,
                    reason: r.get(2)?,
                    consequence: r.get(3)?,
                    job: r.get(4)?,
                    evidence: r.get(5)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn entries(&self, job: i64, state: EntryState) -> Result<Vec<Entry>> {
        let fail = |e| self.fail("could not read the journal", e);
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM journal WHERE job = ?1 AND state = ?2 ORDER BY seq"
            ))
            .map_err(fail)?;
        let rows = statement
            .query_map(params![job, state.as_str()], entry_row)
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn entries_for(&self, email: &str) -> Result<Vec<Entry>> {
        let fail = |e| self.fail("could not read the journal", e);
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM journal WHERE email = ?1 ORDER BY job DESC"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([email], entry_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn archive_add(&self, messages: &[NewMessage]) -> Result<Vec<Archived>> {
        let fail = |e| self.fail("could not archive messages", e);
        let now = crate::clock::stamp();
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let mut out = Vec::with_capacity(messages.len());
        {
            let mut by_id = tx
                .prepare_cached("SELECT id FROM messages WHERE message_id = ?1")
                .map_err(fail)?;
            let mut by_hash = tx
                .prepare_cached("SELECT id FROM messages WHERE content_hash = ?1")
                .map_err(fail)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO messages (message_id, content_hash, date, sender, recipients, subject,
                       bulletin, flagged, size, raw_zstd, source, imported_at, folder, copy_kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(fail)?;
            let mut section = tx
                .prepare_cached(
                    "INSERT INTO message_sections (message, position, heading)
                     VALUES (?1, ?2, ?3)",
                )
                .map_err(fail)?;
            let mut search = tx
                .prepare_cached(
                    "INSERT INTO archive_search (rowid, subject, sender, heading, body, message, section)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(fail)?;
            let mut blob = tx
                .prepare_cached(
                    "INSERT INTO attachments (hash, content_type, size, data_zstd) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(hash) DO NOTHING",
                )
                .map_err(fail)?;
            let mut link = tx
                .prepare_cached(
                    "INSERT INTO message_attachments (message, position, hash, filename, content_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(fail)?;
            for m in messages {
                let existing: Option<i64> = match &m.message_id {
                    Some(mid) => by_id
                        .query_row([mid], |r| r.get(0))
                        .optional()
                        .map_err(fail)?,
                    None => None,
                };
                let existing = match existing {
                    Some(id) => Some(id),
                    None => by_hash
                        .query_row([&m.content_hash], |r| r.get(0))
                        .optional()
                        .map_err(fail)?,
                };
                if let Some(id) = existing {
                    out.push(Archived::Duplicate(id));
                    continue;
                }
                insert
                    .execute(params![
                        m.message_id,
                        m.content_hash,
                        m.date,
                        m.sender,
                        m.recipients,
                        m.subject,
                        m.bulletin,
                        m.flagged,
                        m.size as i64,
                        m.raw_zstd,
                        m.source,
                        now,
                        m.folder,
                        m.copy.map(CopyKind::as_str)
                    ])
                    .map_err(fail)?;
                let id = tx.last_insert_rowid();
                // The whole message (what a search matches), then each section (where a
                // hit is shown), in the index's form of the text.
                if m.flagged.is_none() {
                    search
                        .execute(params![
                            search_rowid(id, None),
                            m.subject.as_deref().map(index_form),
                            m.sender,
                            None::<String>,
                            index_form(m.text.as_deref().unwrap_or("")),
                            id,
                            None::<i64>
                        ])
                        .map_err(fail)?;
                }
                for (i, (heading, body)) in m.sections.iter().enumerate() {
                    let position = i as i64 + 1;
                    section
                        .execute(params![id, position, heading])
                        .map_err(fail)?;
                    if position >= SECTION_SPAN {
                        // The whole message's row still finds it.
                        continue;
                    }
                    search
                        .execute(params![
                            search_rowid(id, Some(position)),
                            m.subject.as_deref().map(index_form),
                            m.sender,
                            heading.as_deref().map(index_form),
                            index_form(body),
                            id,
                            position
                        ])
                        .map_err(fail)?;
                }
                for (i, a) in m.attachments.iter().enumerate() {
                    blob.execute(params![a.hash, a.content_type, a.size as i64, a.data_zstd])
                        .map_err(fail)?;
                    link.execute(params![id, i as i64, a.hash, a.filename, a.content_id])
                        .map_err(fail)?;
                }
                out.push(Archived::Added(id));
            }
        }
        tx.commit().map_err(fail)?;
        Ok(out)
    }

    fn archive_list(&self) -> Result<Vec<ArchiveEntry>> {
        let fail = |e| self.fail("could not list the archive", e);
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM messages
                 ORDER BY bulletin IS NULL, bulletin, date, id"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([], archive_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn archive_message(&self, id: i64) -> Result<Option<ArchivedMessage>> {
        let fail = |e| self.fail("could not read an archived message", e);
        let found = self
            .conn
            .query_row(
                &format!(
                    "SELECT {ARCHIVE_COLUMNS}, recipients, raw_zstd FROM messages WHERE id = ?1"
                ),
                [id],
                |r| {
                    Ok(ArchivedMessage {
                        entry: archive_row(r)?,
                        recipients: r.get(10)?,
                        raw_zstd: r.get(11)?,
                        ..ArchivedMessage::default()
                    })
                },
            )
            .optional()
            .map_err(fail)?;
        let Some(mut message) = found else {
            return Ok(None);
        };
        let mut sections = self
            .conn
            .prepare_cached(
                "SELECT heading FROM message_sections WHERE message = ?1 ORDER BY position",
            )
            .map_err(fail)?;
        message.sections = sections
            .query_map([id], |r| r.get(0))
            .map_err(fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(fail)?;
        let mut attachments = self
            .conn
            .prepare_cached(
                "SELECT a.hash, l.filename, l.content_id, a.content_type, a.size
                 FROM message_attachments l JOIN attachments a ON a.hash = l.hash
                 WHERE l.message = ?1 ORDER BY l.position",
            )
            .map_err(fail)?;
        message.attachments = attachments
            .query_map([id], |r| {
                Ok(AttachmentInfo {
                    hash: r.get(0)?,
                    filename: r.get(1)?,
                    content_id: r.get(2)?,
                    content_type: r.get(3)?,
                    size: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(fail)?;
        Ok(Some(message))
    }

    fn archive_bulletin(&self, number: u32) -> Result<Vec<ArchiveEntry>> {
        let fail = |e| self.fail("could not read the archive", e);
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM messages WHERE bulletin = ?1 ORDER BY date, id"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([number], archive_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn archive_by_message_id(&self, message_id: &str) -> Result<Option<ArchiveEntry>> {
        self.conn
            .query_row(
                &format!("SELECT {ARCHIVE_COLUMNS} FROM messages WHERE message_id = ?1"),
                [message_id],
                archive_row,
            )
            .optional()
            .map_err(|e| self.fail("could not read the archive", e))
    }

    fn archive_raw(&self, each: &mut dyn FnMut(i64, &[u8]) -> Result<()>) -> Result<()> {
        let fail = |e| self.fail("could not read the archive", e);
        let mut statement = self
            .conn
            .prepare("SELECT id, raw_zstd FROM messages ORDER BY id")
            .map_err(fail)?;
        let mut rows = statement.query([]).map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let id: i64 = row.get(0).map_err(fail)?;
            let raw = row
                .get_ref(1)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(fail)?;
            each(id, raw)?;
        }
        Ok(())
    }

    fn archive_attachment(&self, hash: &str) -> Result<Option<(String, Vec<u8>)>> {
        self.conn
            .query_row(
                "SELECT content_type, data_zstd FROM attachments WHERE hash = ?1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.fail("could not read an attachment", e))
    }

    fn archive_search(
        &self,
        query: &Query,
        limit: usize,
        budget: std::time::Duration,
    ) -> Result<Vec<(ArchiveEntry, f64)>> {
        let text = fts5(query);
        // The time budget: past it, the search is interrupted.
        let interrupt = self.conn.get_interrupt_handle();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if wait.recv_timeout(budget) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                interrupt.interrupt();
            }
        });
        // Rank by the index alone (a row's number says whether it is a whole message and
        // which), then read the few messages kept: reading every match's columns would cost
        // far more than the search.
        let found: rusqlite::Result<Vec<(i64, f64)>> = self
            .conn
            .prepare_cached(
                "SELECT rowid, bm25(archive_search, 6.0, 2.0, 4.0, 1.0) AS rank
                 FROM archive_search WHERE archive_search MATCH ?1 AND rowid > 0
                 ORDER BY rank, rowid LIMIT ?2",
            )
            .and_then(|mut st| {
                st.query_map(params![text, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            });
        let _ = done.send(());
        let _ = watchdog.join();
        let ranked = match found {
            Ok(rows) => rows,
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                return Err(query.cut_short(budget));
            }
            Err(e) => return Err(self.fail("could not search the archive", e)),
        };
        let fail = |e| self.fail("could not search the archive", e);
        let mut entry = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM messages WHERE id = ?1"
            ))
            .map_err(fail)?;
        let mut out = Vec::with_capacity(ranked.len());
        for (id, rank) in ranked {
            if let Some(e) = entry
                .query_row([id], archive_row)
                .optional()
                .map_err(fail)?
            {
                out.push((e, rank));
            }
        }
        Ok(out)
    }

    fn archive_search_rows(&self, message: i64) -> Result<Vec<super::SearchRow>> {
        let fail = |e| self.fail("could not read the archive's search rows", e);
        let mut rows = Vec::new();
        let whole: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM archive_search WHERE rowid = ?1",
                [search_rowid(message, None)],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?
            .flatten();
        rows.push((None, None, whole.unwrap_or_default()));
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT ms.position, ms.heading, s.body FROM message_sections ms
                 JOIN archive_search s ON s.rowid = -(ms.message * ?2 + ms.position)
                 WHERE ms.message = ?1 ORDER BY ms.position",
            )
            .map_err(fail)?;
        let sections = statement
            .query_map(params![message, SECTION_SPAN], |r| {
                Ok((
                    Some(r.get::<_, i64>(0)? as u32),
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                ))
            })
            .map_err(fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(fail)?;
        rows.extend(sections);
        Ok(rows)
    }

    fn imap_state(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        self.conn
            .query_row(
                "SELECT uidvalidity, last_uid FROM imap_state WHERE mailbox = ?1",
                [mailbox],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.fail("could not read the IMAP state", e))
    }

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

    fn set_imap_state(&self, mailbox: &str, uidvalidity: u32, last_uid: u32) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO imap_state (mailbox, uidvalidity, last_uid) VALUES (?1, ?2, ?3)
                 ON CONFLICT(mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
                params![mailbox, uidvalidity, last_uid],
            )
            .map(drop)
            .map_err(|e| self.fail("could not save the IMAP state", e))
    }
}

/// How many section rows each message's numbers leave room for in the search index.
const SECTION_SPAN: i64 = 1 << 20;

/// A search-index row's number: the message's id for its whole text, and a negative number
/// for each section, so a search can keep whole messages and know which without reading
/// the rows.
fn search_rowid(message: i64, section: Option<i64>) -> i64 {
    match section {
        None => message,
        Some(position) => -(message * SECTION_SPAN + position),
    }
}

/// The columns of `table` in [`TABLES`].
fn table_columns(table: &str) -> Option<&'static [&'static str]> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, c)| *c)
}

const JOB_COLUMNS: &str = "id, number, selectors, content_hash, subject, source, transport, created_at, finished_at, total";
const ARCHIVE_COLUMNS: &str =
    "id, message_id, date, sender, subject, bulletin, flagged, size, folder, copy_kind";
const ENTRY_COLUMNS: &str =
    "job, seq, email, name, branch, employer, attributes, state, attempts, message_id, reply";

impl SqliteStore {
    fn progress(&self, job: i64) -> rusqlite::Result<Progress> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM journal WHERE job = ?1 GROUP BY state")?;
        let mut progress = Progress::default();
        let rows =
            statement.query_map([job], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = n as u64;
            match EntryState::parse(&state) {
                Some(EntryState::Pending) => progress.pending = n,
                Some(EntryState::Sent) => progress.sent = n,
                Some(EntryState::Failed) => progress.failed = n,
                Some(EntryState::Skipped) => progress.skipped = n,
                Some(EntryState::Uncertain) => progress.uncertain = n,
                None => {}
            }
        }
        Ok(progress)
    }
}

fn count(conn: &Connection, sql: &str) -> rusqlite::Result<u64> {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// The SQL condition (on members `m`) for `selection`, and its parameters, numbered from
/// `?first`.
fn where_selected(selection: &Selection, first: usize) -> (String, Vec<String>) {
    if selection.all {
        return ("1".into(), Vec::new());
    }
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    for (column, values) in [
        ("branch", &selection.branches),
        ("employer", &selection.employers),
    ] {
        if values.is_empty() {
            continue;
        }
        let marks: Vec<String> = values
            .iter()
            .map(|v| {
                args.push(v.clone());
                format!("?{}", first + args.len() - 1)
            })
            .collect();
        conditions.push(format!(
            "m.{column} COLLATE NOCASE IN ({})",
            marks.join(", ")
        ));
    }
    if conditions.is_empty() {
        return ("0".into(), args);
    }
    (conditions.join(" OR "), args)
}

fn attributes(json: &str) -> std::collections::BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

fn member_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        email: row.get(0)?,
        name: row.get(1)?,
        branch: row.get(2)?,
        employer: row.get(3)?,
        attributes: attributes(&row.get::<_, String>(4)?),
    })
}

fn archive_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ArchiveEntry> {
    Ok(ArchiveEntry {
        id: row.get(0)?,
        message_id: row.get(1)?,
        date: row.get(2)?,
        sender: row.get(3)?,
        subject: row.get(4)?,
        bulletin: row.get(5)?,
        flagged: row.get(6)?,
        size: row.get::<_, i64>(7)? as u64,
        folder: row.get(8)?,
        copy: row
            .get::<_, Option<String>>(9)?
            .as_deref()
            .and_then(CopyKind::parse),
    })
}

fn job_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: row.get(0)?,
        spec: NewJob {
            number: row.get(1)?,
            selectors: row.get(2)?,
            content_hash: row.get(3)?,
            subject: row.get(4)?,
            source: row.get(5)?,
            transport: row.get(6)?,
            created_at: row.get(7)?,
        },
        finished_at: row.get(8)?,
        total: row.get::<_, i64>(9)? as u64,
        progress: Progress::default(),
    })
}

fn entry_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        job: row.get(0)?,
        seq: row.get(1)?,
        member: Member {
            email: row.get(2)?,
            name: row.get(3)?,
            branch: row.get(4)?,
            employer: row.get(5)?,
            attributes: attributes(&row.get::<_, String>(6)?),
        },
        state: EntryState::parse(&row.get::<_, String>(7)?).unwrap_or(EntryState::Pending),
        attempts: row.get(8)?,
        message_id: row.get(9)?,
        reply: row.get(10)?,
    })
}

/// `query` as an FTS5 `MATCH` expression. Every term is a quoted string (FTS5 reads nothing
/// in it as syntax): `"w1 w2" *` for a phrase ending in a prefix, `subject : "w"` for a
/// field; `AND`, `OR` and `NOT` as the tree says.
fn fts5(query: &Query) -> String {
    fn term(t: &crate::archive::query::Term) -> String {
        let mut out = String::new();
        match t.field {
            Some(Field::Subject) => out.push_str("subject : "),
            Some(Field::From) => out.push_str("sender : "),
            None => {}
        }
        out.push('"');
        out.push_str(&t.words.join(" "));
        out.push('"');
        if t.prefix {
            out.push_str(" *");
        }
        out
    }
    fn node(n: &Node) -> String {
        match n {
            Node::Term(t) => term(t),
            Node::Or(parts) => format!(
                "({})",
                parts.iter().map(node).collect::<Vec<_>>().join(" OR ")
            ),
            Node::And(parts) => {
                let positive: Vec<String> = parts
                    .iter()
                    .filter(|p| !matches!(p, Node::Not(_)))
                    .map(node)
                    .collect();
                let mut out = format!("({})", positive.join(" AND "));
                for p in parts {
                    if let Node::Not(inner) = p {
                        out = format!("({out} NOT {})", node(inner));
                    }
                }
                out
            }
            // A lone NOT never reaches here: the parser refuses it.
            Node::Not(inner) => node(inner),
        }
    }
    node(&query.root)
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

    fn member(email: &str, branch: &str, employer: &str) -> Member {
        Member {
            email: email.into(),
            name: Some("N".into()),
            branch: Some(branch.into()),
            employer: Some(employer.into()),
            attributes: [("grade".to_string(), "PO".to_string())].into(),
        }
    }

    #[test]
    fn jobs_snapshot_selected_members_and_track_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let members = vec![
            member("a@x.example", "London", "NPS"),
            member("b@x.example", "Wales", "NPS"),
            member("c@x.example", "Wales", "CRC"),
            member("d@x.example", "Leeds", "Cafcass"),
        ];
        let counts = store
            .import_members(&mut members.into_iter(), &|e| e.as_bytes().to_vec())
            .unwrap();
        assert_eq!((counts.added, counts.updated), (4, 0));
        assert_eq!(store.attribute_names().unwrap(), ["grade"]);
        store
            .suppress("d@x.example", "manual", None, "2026-01-01T00:00:00Z")
            .unwrap();
        let selection = Selection {
            all: false,
            branches: vec!["wales".into()],
            employers: vec!["cafcass".into(), "nps".into()],
        };
        assert_eq!(store.count_selected(&selection).unwrap(), 3);
        let spec = NewJob {
            number: 7,
            selectors: "branch:wales,employer:cafcass,employer:nps".into(),
            content_hash: "h".into(),
            subject: "S".into(),
            source: "b.toml".into(),
            transport: "file".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        let job = store.create_job(&spec, &selection).unwrap();
        assert_eq!((job.total, job.progress.pending), (3, 3));
        assert_eq!(
            store.find_job(7, &spec.selectors).unwrap().unwrap().id,
            job.id
        );

        // Suppressed after the job started: its row comes back skipped.
        store
            .suppress("b@x.example", "unsubscribed", None, "2026-01-02T00:00:00Z")
            .unwrap();
        let rows = store.pending(job.id, 0, 10).unwrap();
        let states: Vec<(&str, EntryState)> = rows
            .iter()
            .map(|e| (e.member.email.as_str(), e.state))
            .collect();
        assert_eq!(
            states,
            [
                ("a@x.example", EntryState::Pending),
                ("b@x.example", EntryState::Skipped),
                ("c@x.example", EntryState::Pending)
            ]
        );
        assert_eq!(
            rows[0].member.attributes.get("grade").map(String::as_str),
            Some("PO")
        );
        store
            .mark(&[Mark {
                job: job.id,
                seq: rows[0].seq,
                state: EntryState::Sent,
                attempts: 1,
                message_id: "<7.x@l>".into(),
                reply: "250 ok".into(),
                at: "2026-01-02T00:00:01Z".into(),
            }])
            .unwrap();
        assert_eq!(
            store
                .skip_suppressed(job.id, "2026-01-02T00:00:02Z")
                .unwrap(),
            1
        );
        let progress = store.job(job.id).unwrap().unwrap().progress;
        assert_eq!(
            (progress.sent, progress.skipped, progress.pending),
            (1, 1, 1)
        );
        assert_eq!(store.pending(job.id, rows[0].seq, 10).unwrap().len(), 1);
        let sent = store.entries(job.id, EntryState::Sent).unwrap();
        assert_eq!(sent[0].reply.as_deref(), Some("250 ok"));
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
