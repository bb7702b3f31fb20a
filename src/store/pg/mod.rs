//! The PostgreSQL backend, for several workers on several machines sharing one store.
//!
//! `postgres::Client` drives its own Tokio runtime and panics inside another one, and the
//! store is called from async tasks: so the client lives on a thread of its own, and every
//! call is a closure sent to that thread, which answers over a channel. The thread keeps its
//! prepared statements (by SQL text) for as long as its connection lasts. A lost connection
//! is reported as [`Error::StoreUnreachable`]; the next call connects again (once: the caller
//! decides when to retry).
//!
//! Output matches the SQLite backend: text is ordered and compared bytewise (`COLLATE "C"`),
//! and branch and employer names are compared with ASCII case folded, as SQLite's `NOCASE`
//! does. Search keeps a `tsvector` per row of `archive_search`, built from text folded in
//! Rust the way FTS5's `unicode61 remove_diacritics 2` tokenizer folds it (lowercase,
//! diacritics removed, split at anything but letters and digits); a parsed query
//! ([`crate::search::query::Query`]) becomes a `tsquery`.
//!
//! The thread and its connection are in `bridge.rs`, the schema in `schema.rs`, the search
//! index in `search.rs`, values converted for `mailout store migrate` in `convert.rs`; the
//! roles' SQL is in `editions.rs`, `roster.rs`, `journal.rs`, `archive.rs` and `rows.rs`.

mod archive;
mod bridge;
mod claims;
mod convert;
mod editions;
mod journal;
mod roster;
mod rows;
mod schema;
mod search;
#[cfg(test)]
mod tests;
mod waves;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use postgres::Row;

use crate::error::{Error, Result};
use crate::store::schema::attributes;
use crate::store::{Backend, Durability, Store, redact};
use crate::store::{Member, Selection};

use self::bridge::{Conn, Fail, Step, Task, bad, serve};
use self::schema::migrate;

/// `column` with ASCII letters lowercased: SQLite's `NOCASE`, and the expression the
/// `members_branch` and `members_employer` indexes are built on.
fn fold(column: &str) -> String {
    format!("translate({column}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')")
}

/// `name` as an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connects to `url` (`postgres://user[:password]@host:port/db[?schema=NAME]`), creating and
/// migrating the schema as needed. A password missing from the URL is read from the
/// environment variable `password_env`, when it is set.
pub fn open(url: &str, password_env: &str) -> Result<Box<dyn Store>> {
    Ok(Box::new(PgStore::open(url, password_env)?))
}

/// A store in a PostgreSQL database, reached through a thread of its own.
pub struct PgStore {
    location: String,
    /// Whether the journal's results are committed without waiting for the disk
    /// ([`Durability::Process`]).
    quick_marks: std::sync::atomic::AtomicBool,
    tasks: Option<mpsc::Sender<Task>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Splits mailout's own `schema` parameter off `url`: the URL for the driver, and the schema.
fn split_schema(url: &str) -> std::result::Result<(String, Option<String>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut schema = None;
    let mut rest = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        match url::form_urlencoded::parse(part.as_bytes()).next() {
            Some((key, value)) if key == "schema" => {
                if value.is_empty() {
                    return Err("`schema=` needs a name".into());
                }
                schema = Some(value.into_owned());
            }
            _ => rest.push(part),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, schema))
}

impl PgStore {
    /// Connects to `url` (see [`open`]), creating the schema named by its `schema`
    /// parameter if needed, and creating or migrating the tables.
    pub fn open(url: &str, password_env: &str) -> Result<PgStore> {
        let location = redact(url);
        let usage = |why: String| Error::Usage(format!("store `{location}`: {why}"));
        let (driver_url, schema) = split_schema(url).map_err(usage)?;
        let mut config: postgres::Config = driver_url
            .parse()
            .map_err(|e| usage(format!("not a PostgreSQL URL: {e}")))?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var(password_env)
        {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("mailout");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let conn = Conn {
            config,
            schema: schema.clone(),
            location: location.clone(),
            client: None,
            statements: HashMap::new(),
            commits: bridge::Commits::Server,
        };
        let (tasks, inbox) = mpsc::channel::<Task>();
        let thread = std::thread::Builder::new()
            .name("mailout-postgres".into())
            .spawn(move || serve(conn, inbox))
            .map_err(|e| Error::Store {
                location: location.clone(),
                context: "could not start the database thread".into(),
                source: Box::new(e),
            })?;
        let store = PgStore {
            location,
            quick_marks: std::sync::atomic::AtomicBool::new(true),
            tasks: Some(tasks),
            thread: Some(thread),
        };
        store.call("could not migrate the schema", move |db| {
            migrate(db, schema.as_deref())
        })?;
        Ok(store)
    }
}

/// `value` narrowed to `T` (a number the store holds as `bigint`).
fn narrow<T: TryFrom<i64>>(value: i64) -> Step<T> {
    T::try_from(value).map_err(|_| bad(format!("the stored number {value} is out of range")))
}

fn count_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn wide(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or_default()
}

/// Sendable: not suppressed (on members `m`).
const SENDABLE: &str = "NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)";
/// The state shown for a journal row `j`: skipped once its address is suppressed.
const SHOWN_STATE: &str = "CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email = j.email)
                               THEN 'skipped' ELSE j.state END";

fn member_row(row: &Row) -> Step<Member> {
    Ok(Member {
        email: row.try_get(0)?,
        name: row.try_get(1)?,
        branch: row.try_get(2)?,
        employer: row.try_get(3)?,
        attributes: attributes(row.try_get(4)?),
    })
}

/// The SQL condition (on members `m`) for `selection`, and its parameters (arrays of
/// ASCII-lowercased names), numbered from `$first`.
fn selected(selection: &Selection, first: usize) -> (String, Vec<Vec<String>>) {
    if selection.all {
        return ("TRUE".into(), Vec::new());
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
        args.push(values.iter().map(|v| v.to_ascii_lowercase()).collect());
        conditions.push(format!(
            "{} = ANY(${}::text[])",
            fold(&format!("m.{column}")),
            first + args.len() - 1
        ));
    }
    if conditions.is_empty() {
        return ("FALSE".into(), args);
    }
    (conditions.join(" OR "), args)
}

/// The condition that `selection` leaves a member out (at a skipped domain, or opted out of
/// the optional list it goes to), the reason it gives (`opted-out` or `employer-domain`),
/// and their arguments, placeholders numbered from `first`.
fn skipped(selection: &Selection, first: usize) -> (String, String, Vec<Vec<String>>) {
    let patterns = crate::store::schema::domain_patterns(&selection.skip_domains);
    let mut args = Vec::new();
    let domain = if patterns.is_empty() {
        "FALSE".to_string()
    } else {
        args.push(patterns);
        format!("(m.email LIKE ANY(${first}::text[]))")
    };
    let opted_out = match &selection.optional_list {
        Some(list) => {
            args.push(vec![list.clone()]);
            format!(
                "EXISTS (SELECT 1 FROM list_optouts o WHERE o.email = m.email AND o.list = ANY(${}::text[]))",
                first + args.len() - 1
            )
        }
        None => "FALSE".to_string(),
    };
    (
        format!("({domain} OR {opted_out})"),
        format!("CASE WHEN {opted_out} THEN 'opted-out' ELSE 'employer-domain' END"),
        args,
    )
}

impl Backend for PgStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn set_durability(&self, durability: Durability) -> Result<()> {
        self.quick_marks.store(
            durability == Durability::Process,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    fn commits_quickly(&self) -> bool {
        false // a round trip to the server, at the least
    }

    fn committers(&self) -> usize {
        2
    }

    fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let name = name.to_string();
        self.call("could not keep a secret", move |db| {
            let read = "SELECT value FROM secrets WHERE name = $1";
            if let Some(row) = db.query_opt(read, &[&name])? {
                return Ok(row.try_get(0)?);
            }
            let fresh = crate::clock::random_bytes::<32>().map_err(|e| Fail::Bad(Box::new(e)))?;
            let fresh: &[u8] = &fresh;
            // Two processes making it at once agree on whichever was stored first.
            db.execute(
                "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &fresh],
            )?;
            Ok(db.query_one(read, &[&name])?.try_get(0)?)
        })
    }
}
