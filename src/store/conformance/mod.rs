//! The store's tests, written once against the role traits and run on every backend: SQLite
//! always, PostgreSQL when `MAILOUT_TEST_PG` names a test database (when it does not, the
//! test says that it skipped PostgreSQL, through [`crate::testing::skip`]). Where both
//! backends answer the same question, PostgreSQL's answer must be SQLite's.
//!
//! Each file tests one role: `editions.rs`, `roster.rs`, `journal.rs`, `archive.rs` and
//! `rows.rs`; this file holds the stores they run on.

mod archive;
mod editions;
mod journal;
mod roster;
mod rows;

use std::path::PathBuf;

use super::{Entry, EntryState, Mark, NewJob, Store};
use crate::store::Member;

/// Where a test's store is, so that it can be opened again (by another connection, on
/// another thread).
#[derive(Debug, Clone)]
enum Place {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, with the schema of its own.
    Pg(String),
}

impl Place {
    /// A new connection to the store.
    fn open(&self) -> Box<dyn Store> {
        match self {
            Place::Sqlite(path) => Box::new(super::sqlite::SqliteStore::open(path).unwrap()),
            Place::Pg(url) => super::pg::open(url, "MAILOUT_TEST_PG_PASSWORD").unwrap(),
        }
    }

    /// The backend's name, for messages.
    fn backend(&self) -> &'static str {
        match self {
            Place::Sqlite(_) => "SQLite",
            Place::Pg(_) => "PostgreSQL",
        }
    }
}

/// A schema of its own in the PostgreSQL test database, dropped at the end.
pub(super) struct Scratch {
    /// The test database's URL.
    pub(super) base: String,
    /// The schema's name.
    pub(super) schema: String,
}

impl Scratch {
    /// A new schema's name in the database `MAILOUT_TEST_PG` names, if it names one.
    pub(super) fn new() -> Option<Scratch> {
        let base = std::env::var("MAILOUT_TEST_PG").ok()?;
        let random = crate::clock::random_bytes::<6>().unwrap();
        let schema = format!(
            "t_{}",
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Some(Scratch { base, schema })
    }

    /// The URL of the store in the schema.
    pub(super) fn url(&self) -> String {
        let join = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{join}schema={}", self.base, self.schema)
    }

    /// A new connection to the store in the schema.
    pub(super) fn open(&self) -> Box<dyn Store> {
        Place::Pg(self.url()).open()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema.replace('"', "\"\"")
            ));
        }
    }
}

/// What `skip` says when there is no PostgreSQL to test.
pub(super) const NO_PG: &str =
    "MAILOUT_TEST_PG is not set (scripts/test starts PostgreSQL and sets it)";

/// A new, empty store on one backend, and what keeps it (a folder, a schema) until the
/// test ends.
struct Fixture {
    place: Place,
    _dir: Option<tempfile::TempDir>,
    _scratch: Option<Scratch>,
}

impl Fixture {
    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            place: Place::Sqlite(dir.path().join("s.sqlite")),
            _dir: Some(dir),
            _scratch: None,
        }
    }

    fn open(&self) -> Box<dyn Store> {
        self.place.open()
    }
}

/// A store on every backend there is: SQLite, then PostgreSQL when `MAILOUT_TEST_PG` is set
/// (otherwise the test reports that it skipped it).
fn backends() -> Vec<Fixture> {
    let mut all = vec![Fixture::sqlite()];
    match Scratch::new() {
        Some(scratch) => all.push(Fixture {
            place: Place::Pg(scratch.url()),
            _dir: None,
            _scratch: Some(scratch),
        }),
        // SQLite still runs: only PostgreSQL is skipped.
        None => crate::testing::skip(&format!("PostgreSQL not tested (SQLite was): {NO_PG}")),
    }
    all
}

/// Runs `test` on a new store on every backend, and checks that every backend saw what
/// SQLite saw.
fn on_each_backend<T: PartialEq + std::fmt::Debug>(test: impl Fn(&Fixture) -> T) {
    let mut seen: Vec<(&'static str, T)> = Vec::new();
    for fixture in backends() {
        seen.push((fixture.place.backend(), test(&fixture)));
    }
    if let Some(((_, first), rest)) = seen.split_first() {
        for (backend, other) in rest {
            assert_eq!(other, first, "{backend} answers differ from SQLite's");
        }
    }
}

/// A lookup key for tests: the address's own bytes, hashed.
fn test_key(email: &str) -> Vec<u8> {
    crate::token::TokenKey::new(b"test".to_vec())
        .lookup_key(email)
        .to_vec()
}

/// `members` with their token keys under a test secret.
pub(crate) fn keyed(members: Vec<Member>) -> impl Iterator<Item = crate::store::KeyedMember> {
    let key = crate::token::TokenKey::new(b"test".to_vec());
    members.into_iter().map(move |m| key.keyed(m))
}

pub(crate) fn member(
    email: &str,
    branch: Option<&str>,
    employer: Option<&str>,
    attrs: &[(&str, &str)],
) -> Member {
    Member {
        email: email.into(),
        name: Some(format!("Name of {email}")),
        branch: branch.map(str::to_string),
        employer: employer.map(str::to_string),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Job 1 on `store`, started for every one of `members` new members (`m00000@x.example`,
/// `m00001@x.example`…).
pub(crate) fn job_for_all(store: &dyn Store, members: usize) -> super::Job {
    let members = (0..members)
        .map(|i| member(&format!("m{i:05}@x.example"), None, None, &[]))
        .collect();
    store.import_members(&mut keyed(members)).unwrap();
    let all = super::Selection {
        all: true,
        ..super::Selection::default()
    };
    store.create_job(&job_spec(1), &all).unwrap()
}

pub(crate) fn job_spec(number: u32) -> NewJob {
    NewJob {
        number,
        selectors: "all".into(),
        content_hash: "h".into(),
        subject: "S".into(),
        source: "b.toml".into(),
        transport: "file".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        message_ids: Some(crate::store::MessageIds {
            series: "latest-from-napo".into(),
            domain: "lists.example.org".into(),
        }),
    }
}

fn sent(e: &Entry) -> Mark {
    Mark {
        job: e.job,
        seq: e.seq,
        state: EntryState::Sent,
        attempts: 1,
        message_id: format!("<{}@x>", e.seq),
        reply: "250 ok".into(),
        at: "2026-01-01T00:00:01Z".into(),
    }
}
