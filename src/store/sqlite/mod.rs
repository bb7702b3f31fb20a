//! The SQLite backend (bundled SQLite, WAL): the embedded default store. Schema changes are
//! migrations, applied in order on open. The roles' SQL is in `editions.rs`, `roster.rs`,
//! `journal.rs`, `archive.rs` and `rows.rs`; this file opens the store and keeps its secrets.

mod archive;
mod claims;
mod editions;
mod journal;
mod roster;
mod rows;
mod waves;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use crate::error::{Error, Result};
use crate::store::schema::attributes;
use crate::store::{Backend, Durability};
use crate::store::{Member, MessageIds, Selection};

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
    M::up(
        "-- The selected members a job left out when it started, and why (the account).
        CREATE TABLE left_out (
            job      INTEGER NOT NULL,
            email    TEXT NOT NULL,
            branch   TEXT,
            employer TEXT,
            reason   TEXT NOT NULL,
            PRIMARY KEY (job, email)
        ) WITHOUT ROWID;
        CREATE INDEX bounces_job ON bounces(job);",
    ),
    M::up(
        "-- Which wave of a job a row came in: 1 when it started, then one per top-up.
        ALTER TABLE journal ADD COLUMN wave INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE left_out ADD COLUMN wave INTEGER NOT NULL DEFAULT 1;
        -- A scheduled job: when it is due (UTC), where it stands before it starts
        -- (waiting, late, released, held, started, cancelled) and why it is held.
        ALTER TABLE jobs ADD COLUMN scheduled_for TEXT;
        ALTER TABLE jobs ADD COLUMN schedule TEXT;
        ALTER TABLE jobs ADD COLUMN held_because TEXT;
        -- The copy for everyone each seed mailbox was sent for a job, and what a check found.
        CREATE TABLE seed_copies (
            job        INTEGER NOT NULL,
            address    TEXT NOT NULL,
            message_id TEXT NOT NULL,
            state      TEXT NOT NULL,
            reply      TEXT,
            sent_at    TEXT,
            found      TEXT,
            folder     TEXT,
            arrived_at TEXT,
            checked_at TEXT,
            PRIMARY KEY (job, address)
        ) WITHOUT ROWID;
        -- Every change of a member's mail status: the record of their consent.
        CREATE TABLE member_events (
            id       INTEGER PRIMARY KEY,
            email    TEXT NOT NULL,
            at       TEXT NOT NULL,
            change   TEXT NOT NULL,
            source   TEXT NOT NULL,
            evidence TEXT
        );
        CREATE INDEX member_events_email ON member_events(email);
        -- Members who opted out of an optional list on their preferences page.
        CREATE TABLE list_optouts (
            email TEXT NOT NULL,
            list  TEXT NOT NULL,
            at    TEXT NOT NULL,
            PRIMARY KEY (email, list)
        ) WITHOUT ROWID;
        -- Keyed hashes of erased addresses: never added again.
        CREATE TABLE erased (
            hash TEXT PRIMARY KEY,
            at   TEXT NOT NULL
        ) WITHOUT ROWID;",
    ),
    M::up(
        "-- How a job's Message-IDs are made (the series and the list's domain), so each
        -- journal row holds its copy's Message-ID from the start.
        ALTER TABLE jobs ADD COLUMN id_series TEXT;
        ALTER TABLE jobs ADD COLUMN id_domain TEXT;",
    ),
    M::up(
        "-- A result then rewrites one page instead of two: a claim walks the job's rows in
        -- order from its cursor by the primary key, and counts read the whole job anyway.
        DROP INDEX IF EXISTS journal_pending;",
    ),
    M::up(
        "-- Where a claim from the start of a job begins: see claims::RAISE_FLOOR.
        ALTER TABLE jobs ADD COLUMN claim_floor INTEGER NOT NULL DEFAULT 0;",
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

    /// Configures and migrates a new connection, with the SQL function that makes a copy's
    /// Message-ID.
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
        conn.create_scalar_function(
            "mailout_message_id",
            4,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
            message_id_function,
        )
        .map_err(|e| fail("could not configure", e.into()))?;
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

impl Backend for SqliteStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn set_durability(&self, durability: Durability) -> Result<()> {
        let level = match durability {
            Durability::Process => "NORMAL",
            Durability::Full => "FULL",
        };
        self.conn
            .pragma_update(None, "synchronous", level)
            .map_err(|e| self.fail("could not set how durable commits are", e))
    }

    fn commits_quickly(&self) -> bool {
        // 0 is OFF, 1 NORMAL (under WAL, a commit writes the log and syncs nothing).
        self.conn
            .pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))
            .is_ok_and(|level| level <= 1)
    }

    fn committers(&self) -> usize {
        1 // one writer at a time
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

/// The condition that `selection` leaves a member out (at a skipped domain, or opted out of
/// the optional list it goes to; `(0 OR 0)` when none), the reason it gives (`opted-out` or
/// `employer-domain`), and their arguments, placeholders numbered from `first`.
fn where_skipped(selection: &Selection, first: usize) -> (String, String, Vec<String>) {
    let mut args = crate::store::schema::domain_patterns(&selection.skip_domains);
    let domain = if args.is_empty() {
        "0".to_string()
    } else {
        let marks: Vec<String> = (0..args.len())
            .map(|i| format!("m.email LIKE ?{} ESCAPE '\\'", first + i))
            .collect();
        format!("({})", marks.join(" OR "))
    };
    let opted_out = match &selection.optional_list {
        Some(list) => {
            args.push(list.clone());
            format!(
                "EXISTS (SELECT 1 FROM list_optouts o WHERE o.email = m.email AND o.list = ?{})",
                first + args.len() - 1
            )
        }
        None => "0".to_string(),
    };
    (
        format!("({domain} OR {opted_out})"),
        format!("CASE WHEN {opted_out} THEN 'opted-out' ELSE 'employer-domain' END"),
        args,
    )
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

/// `mailout_message_id(series, number, domain, address)`: the Message-ID of `address`'s
/// copy of bulletin `number` ([`MessageIds::message_id`]), NULL without a series.
fn message_id_function(ctx: &rusqlite::functions::Context<'_>) -> rusqlite::Result<Option<String>> {
    let series: Option<String> = ctx.get(0)?;
    let number: i64 = ctx.get(1)?;
    let domain: Option<String> = ctx.get(2)?;
    let address: String = ctx.get(3)?;
    Ok(match (series, domain, u32::try_from(number)) {
        (Some(series), Some(domain), Ok(number)) => {
            Some(MessageIds { series, domain }.message_id(number, &address))
        }
        _ => None,
    })
}
