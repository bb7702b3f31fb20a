//! The store: numbering, members, suppression, send jobs and their journals, workers, and
//! the archive. The interface is split by role, each trait small enough to read at once:
//! [`Editions`] (numbering, builds, approvals), [`Roster`] (members, lists, suppression,
//! bounces, token lookup keys), [`Journal`] (jobs, claims, workers, leases, the send rate,
//! domain pauses), [`Archive`] (messages, search, attachments, IMAP state), [`RowCopy`] (the
//! row export and import behind [`migrate`]) and [`Backend`] (where the store is, its
//! secrets). [`Store`] is their sum: a caller that needs one role takes that role.
//!
//! Every SQL statement lives in a backend module, split by the same roles: [`sqlite`] (the
//! embedded default) and [`pg`] (PostgreSQL, for several workers on several machines). The
//! records they hand back are in `records.rs`, the tables and columns they share in
//! `schema.rs`. Nothing outside this folder knows which backend it talks to.

pub mod migrate;
pub mod pg;
mod records;
mod schema;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use records::{
    Approval, ArchiveEntry, Archived, ArchivedMessage, AttachmentInfo, BounceEvent, CopyKind,
    Counts, EditionRecord, Entry, EntryState, Erasure, ImportCounts, Job, KeyedMember, LeftOut,
    Mark, Member, MemberEvent, MessageIds, NewAttachment, NewJob, NewMessage, Progress, Schedule,
    SearchHit, SearchRow, SeedCopy, Selection, Suppression, Value, Wave, WorkerInfo,
};
pub use schema::TABLES;

use crate::error::Result;

/// A write handed to the store's own thread ([`Journal::mark_soon`]): completes once it is
/// committed, or with the error that stopped it.
pub type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

/// Where a store is and how it is reached, and the secrets it keeps.
pub trait Backend {
    /// Where the store is, for messages (never includes a password).
    fn location(&self) -> &str;

    /// The named secret, created from the system's random source on first use.
    fn secret(&self, name: &str) -> Result<Vec<u8>>;

    /// How durable commits are from now on ([`Durability`]).
    fn set_durability(&self, durability: Durability) -> Result<()>;

    /// Whether a commit returns as soon as the system holds its bytes, with no round trip
    /// to a server and no wait for the disk (SQLite at durability `process`). A send then
    /// commits its results on its own thread: handing so short a commit to another thread
    /// costs more than the commit.
    fn commits_quickly(&self) -> bool;

    /// How many connections a send commits its results on side by side, each commit
    /// waiting only for itself: one where writers take turns (SQLite), more on a server,
    /// where a commit's round trip and log flush can overlap another's.
    fn committers(&self) -> usize;
}

/// What a commit survives: `[store] durability`. The same promise on both backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// A crash of mailout loses nothing; a crash of the database server or the machine can
    /// lose the last fraction of a second of send results, whose recipients then receive a
    /// second copy with the same Message-ID (never none). SQLite: `synchronous=NORMAL`
    /// under WAL; PostgreSQL: `synchronous_commit=off` for the journal's results only.
    #[default]
    Process,
    /// Every commit is on disk before mailout goes on: SQLite `synchronous=FULL`,
    /// PostgreSQL's durable commits throughout.
    Full,
}

/// The series' numbers: what was built and sent under each, and the sign-offs of a
/// bulletin's content.
pub trait Editions {
    /// The highest number built, sent, or archived (a received bulletin of our series).
    fn highest_number(&self) -> Result<Option<u32>>;

    /// The record of `number`, if it has been built or sent.
    fn edition(&self, number: u32) -> Result<Option<EditionRecord>>;

    /// Every number built or sent from the bulletin file `source`, highest first, so that
    /// rebuilding a file without a `number` keeps the number it was given.
    fn editions_from(&self, source: &str) -> Result<Vec<EditionRecord>>;

    /// Every number that has been sent, lowest first.
    fn sent_editions(&self) -> Result<Vec<EditionRecord>>;

    /// Records a build of `record.number` (replacing an unsent record; a sent record keeps
    /// its content and gets a new build time).
    fn record_build(&self, record: &EditionRecord) -> Result<()>;

    /// Records that `record.number` went out with `record.content_hash` at `sent_at`.
    fn record_sent(&self, record: &EditionRecord, sent_at: &str) -> Result<()>;

    /// Records that `approval.name` approved `approval.source` with `approval.content_hash`
    /// (replacing that person's earlier approval of the file).
    fn approve(&self, approval: &Approval) -> Result<()>;

    /// The approvals of `source`, oldest first.
    fn approvals(&self, source: &str) -> Result<Vec<Approval>>;
}

/// The members: imports, selections and counts, suppressed addresses, bounces kept for soft
/// scores, and the token lookup keys.
pub trait Roster {
    /// Adds or updates every member from `members`, with their token keys, in one
    /// transaction.
    fn import_members(
        &self,
        members: &mut dyn Iterator<Item = KeyedMember>,
    ) -> Result<ImportCounts>;

    /// Members selected by `selection` (all members, suppressed or not, when `None`), by
    /// address.
    fn members(&self, selection: Option<&Selection>) -> Result<Vec<Member>>;

    /// The member with address `email` (normalised), if there is one.
    fn member(&self, email: &str) -> Result<Option<Member>>;

    /// The members whose token lookup key is `key`.
    fn members_by_lookup_key(&self, key: &[u8]) -> Result<Vec<Member>>;

    /// The members whose address hash (a token of the first form: see
    /// [`crate::token::legacy_key`]) is `key`.
    fn members_by_legacy_key(&self, key: &[u8]) -> Result<Vec<Member>>;

    /// The fingerprint of the secret the lookup keys were made with (none yet), and how
    /// many members have no lookup key.
    fn lookup_keys_state(&self) -> Result<(Option<Vec<u8>>, u64)>;

    /// Sets the lookup keys of these members and records `fingerprint` as the secret they
    /// were made with, in one transaction.
    fn set_lookup_keys(&self, keys: &[(String, Vec<u8>)], fingerprint: &[u8]) -> Result<()>;

    /// The attribute names members have, besides the known fields.
    fn attribute_names(&self) -> Result<Vec<String>>;

    /// Every branch and employer with its member count.
    fn counts(&self) -> Result<Counts>;

    /// How many sendable (not suppressed) members `selection` selects.
    fn count_selected(&self, selection: &Selection) -> Result<u64>;

    /// Suppresses `email`; returns false if it already was.
    fn suppress(&self, email: &str, reason: &str, detail: Option<&str>, at: &str) -> Result<bool>;

    /// Every suppressed address.
    fn suppressions(&self) -> Result<Vec<Suppression>>;

    /// Lifts the suppression of `email`, recording `event` in their history; returns it,
    /// or `None` if there was none.
    fn unsuppress(&self, email: &str, event: &MemberEvent) -> Result<Option<Suppression>>;

    /// The history of `email`'s mail status, oldest first: every import that added them,
    /// suppression (with its source) and lifted suppression.
    fn member_events(&self, email: &str) -> Result<Vec<MemberEvent>>;

    /// Erases `email` in one transaction: the roster entry, their suppression, bounces and
    /// history, the personal fields of their journal and left-out rows (the address becomes
    /// `erased`), their archived personal copies; keeps `hash` (a keyed hash of the
    /// address) so the address is never added again.
    fn erase_member(&self, email: &str, hash: &str, at: &str) -> Result<Erasure>;

    /// The keyed hashes of every erased address.
    fn erased(&self) -> Result<Vec<String>>;

    /// Records `email`'s choice to receive optional list `list` or not, with `event` in
    /// their history; false if it was their choice already.
    fn set_list_choice(
        &self,
        email: &str,
        list: &str,
        receive: bool,
        event: &MemberEvent,
    ) -> Result<bool>;

    /// The optional lists `email` opted out of.
    fn list_optouts(&self, email: &str) -> Result<Vec<String>>;

    /// Keeps a bounce.
    fn add_bounce(&self, event: &BounceEvent) -> Result<()>;

    /// The bounces kept for `email`, oldest first.
    fn bounces_for(&self, email: &str) -> Result<Vec<BounceEvent>>;

    /// The bounces matched to send job `job`, oldest first.
    fn bounces_of_job(&self, job: i64) -> Result<Vec<BounceEvent>>;
}

/// Send jobs and their journals: one row per recipient, claimed by workers under leases,
/// with the shared send rate and the domains paused.
pub trait Journal {
    /// The job for `number` and `selectors`, if one was started.
    fn find_job(&self, number: u32, selectors: &str) -> Result<Option<Job>>;

    /// Starts a job: the job and one pending journal row per sendable selected member,
    /// deduplicated by address, and the selected members whose address is suppressed
    /// recorded as left out with the suppression's reason, in one transaction.
    fn create_job(&self, job: &NewJob, selection: &Selection) -> Result<Job>;

    /// The job with `id`.
    fn job(&self, id: i64) -> Result<Option<Job>>;

    /// The selected members left out of `job` when it started (or when a top-up added to
    /// it), by address.
    fn left_out(&self, job: i64) -> Result<Vec<LeftOut>>;

    /// Adds to `job`, as its next wave and in one transaction, the sendable members
    /// `selection` selects who are not in it yet (joined or re-subscribed since), and
    /// records the selected suppressed ones not in it as left out; a job that had finished
    /// runs again. Returns the wave's number and how many rows it added.
    fn top_up(&self, job: i64, selection: &Selection) -> Result<(u32, u64)>;

    /// Records `job` to start at `due` (UTC, RFC 3339), waiting, with nobody in it yet:
    /// its recipients are chosen when it starts.
    fn schedule_job(&self, job: &NewJob, due: &str) -> Result<Job>;

    /// Moves scheduled `job` from one of `from` to `to` (with `because` as its reason, for
    /// `Held`); false if it was in none of `from` (another process moved it first).
    fn set_schedule(
        &self,
        job: i64,
        from: &[Schedule],
        to: Schedule,
        because: Option<&str>,
    ) -> Result<bool>;

    /// The scheduled jobs waiting or released whose time (`scheduled_for`) is at or before
    /// `at`, oldest first: what a worker's look for due jobs reads, and no more.
    fn due_jobs(&self, at: &str) -> Result<Vec<Job>>;

    /// Starts scheduled `job` if it is waiting or released: in one transaction, marks it
    /// started and adds the members `selection` selects now, as [`Journal::top_up`] does.
    /// `None` if another process started (or someone cancelled) it first.
    fn start_scheduled(&self, job: i64, selection: &Selection) -> Result<Option<u64>>;

    /// Takes the sending of `job`'s copy to seed `address` (Message-ID `message_id`):
    /// true for the one process that records it first, false for any other.
    fn claim_seed(&self, job: i64, address: &str, message_id: &str) -> Result<bool>;

    /// What became of `job`'s copy to seed `address`: `state` (`sent`, `failed`,
    /// `uncertain`), the reply, when.
    fn record_seed(
        &self,
        job: i64,
        address: &str,
        state: &str,
        reply: &str,
        at: &str,
    ) -> Result<()>;

    /// What a check of seed `address`'s mailbox found of `job`'s copy: `found` (`inbox`,
    /// `junk`, `not arrived`), the folder and the arrival time, checked `at`.
    fn record_seed_check(
        &self,
        job: i64,
        address: &str,
        found: &str,
        folder: Option<&str>,
        arrived_at: Option<&str>,
        at: &str,
    ) -> Result<()>;

    /// `job`'s seed copies, by address.
    fn seed_copies(&self, job: i64) -> Result<Vec<SeedCopy>>;

    /// `job`'s rows by wave and state.
    fn waves(&self, job: i64) -> Result<Vec<Wave>>;

    /// Cancels `job`: its pending rows become cancelled and it is finished (if it was
    /// not). Returns how many rows were cancelled. A copy already handed to a connection
    /// may still go out: its result replaces `cancelled`.
    fn cancel_job(&self, job: i64, at: &str) -> Result<u64>;

    /// Every job, newest first.
    fn jobs(&self) -> Result<Vec<Job>>;

    /// Marks pending rows of suppressed addresses skipped; returns how many.
    fn skip_suppressed(&self, job: i64, at: &str) -> Result<u64>;

    /// Up to `limit` pending rows of `job` after `after_seq`, in order. A row whose address
    /// has been suppressed since the job started comes back in state `Skipped`.
    fn pending(&self, job: i64, after_seq: i64, limit: usize) -> Result<Vec<Entry>>;

    /// Claims for `worker` up to `limit` pending rows of `job` after `after_seq`, in order,
    /// that no live worker holds (unclaimed, or claimed by a worker whose lease has run out),
    /// and returns them. (A worker claims onwards from its last row, so a claim does not
    /// wade through the rows already sent; it starts again from 0 for rows left behind.) Workers never wait on each other's claims (`FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL). A row whose address has been suppressed since the job started comes
    /// back in state `Skipped`.
    fn claim(&self, job: i64, worker: i64, after_seq: i64, limit: usize) -> Result<Vec<Entry>>;

    /// Jobs that are not finished, oldest first.
    fn running_jobs(&self) -> Result<Vec<Job>>;

    /// Registers a worker on `host` with process id `pid`, holding a lease of `lease_secs`.
    fn register_worker(&self, host: &str, pid: u32, lease_secs: u32) -> Result<i64>;

    /// Renews `worker`'s lease for `lease_secs` and records its counts. Returns false, and
    /// renews nothing, when the lease had already run out: its claims may have been taken by
    /// other workers, so it must drop them.
    fn heartbeat(&self, worker: i64, claimed: u64, sent: u64, lease_secs: u32) -> Result<bool>;

    /// A worker leaves: its pending claims are released at once and it is forgotten.
    fn retire_worker(&self, worker: i64) -> Result<()>;

    /// Workers whose lease is live, oldest first.
    fn workers(&self) -> Result<Vec<WorkerInfo>>;

    /// Reserves `count` consecutive send slots of `job` under an overall limit of `rate`
    /// messages per second, shared by every worker of the job; returns how long to wait
    /// before the first slot (the others follow `1/rate` apart).
    fn reserve_sends(&self, job: i64, rate: u32, count: u32) -> Result<std::time::Duration>;

    /// Slows every worker's sends to `domain` in `job` for `pause` (the domain answered
    /// 4xx); a longer pause already there stays.
    fn pause_domain(&self, job: i64, domain: &str, pause: std::time::Duration) -> Result<()>;

    /// The domains of `job` that are paused now, with the time left.
    fn paused_domains(&self, job: i64) -> Result<Vec<(String, std::time::Duration)>>;

    /// Applies `marks`, in one transaction.
    fn mark(&self, marks: &[Mark]) -> Result<()>;

    /// [`Journal::mark`] without blocking the caller: the write is handed to the store's
    /// own thread and the returned future completes when it is committed. `None` when the
    /// store has no thread of its own to hand it to (SQLite): call [`Journal::mark`] where
    /// blocking is allowed.
    fn mark_soon(&self, marks: &[Mark]) -> Option<Pending> {
        let _ = marks;
        None
    }

    /// Records that `job` has nothing left to do.
    fn finish_job(&self, job: i64, at: &str) -> Result<()>;

    /// Whether `job` has finished (or was cancelled): a cheap look for a running worker.
    fn is_finished(&self, job: i64) -> Result<bool>;

    /// Makes `job`'s uncertain rows pending again (their attempts kept) and the job
    /// unfinished, so that they are sent once more, on purpose; returns how many.
    fn retry_uncertain(&self, job: i64, at: &str) -> Result<u64>;

    /// The rows of `job` in `state`, in order.
    fn entries(&self, job: i64, state: EntryState) -> Result<Vec<Entry>>;

    /// Journal rows for `email`, newest job first (for matching bounces).
    fn entries_for(&self, email: &str) -> Result<Vec<Entry>>;

    /// The journal row whose copy had Message-ID `message_id` (with angle brackets).
    fn entry_by_message_id(&self, message_id: &str) -> Result<Option<Entry>>;
}

/// Received mail: messages, their attachments, the search index, and what was fetched from
/// IMAP.
pub trait Archive {
    /// Adds `messages` to the archive in one transaction, skipping those already there
    /// (same Message-ID, or same content).
    fn archive_add(&self, messages: &[NewMessage]) -> Result<Vec<Archived>>;

    /// Every archived message, bulletins by number then the rest by date.
    fn archive_list(&self) -> Result<Vec<ArchiveEntry>>;

    /// One archived message with its bodies.
    fn archive_message(&self, id: i64) -> Result<Option<ArchivedMessage>>;

    /// Archived messages with bulletin number `number`.
    fn archive_bulletin(&self, number: u32) -> Result<Vec<ArchiveEntry>>;

    /// The archived message with this Message-ID (without angle brackets).
    fn archive_by_message_id(&self, message_id: &str) -> Result<Option<ArchiveEntry>>;

    /// Calls `each` with every archived message's id and zstd-compressed raw bytes, in
    /// archive order.
    fn archive_raw(&self, each: &mut dyn FnMut(i64, &[u8]) -> Result<()>) -> Result<()>;

    /// An attachment's type and zstd-compressed contents.
    fn archive_attachment(&self, hash: &str) -> Result<Option<(String, Vec<u8>)>>;

    /// The archived messages whose whole text matches `query`, best first, at most `limit`,
    /// with their rank (lower is better). A search that runs past `budget` stops with an
    /// error that says so.
    fn archive_search(
        &self,
        query: &crate::search::query::Query,
        limit: usize,
        budget: std::time::Duration,
    ) -> Result<Vec<(ArchiveEntry, f64)>>;

    /// The search rows of message `id`, in the index's form of the text: its whole text
    /// first (no section), then each section's (position, heading, text).
    fn archive_search_rows(&self, id: i64) -> Result<Vec<SearchRow>>;

    /// What was last fetched from IMAP mailbox `mailbox`: (UIDVALIDITY, highest UID).
    fn imap_state(&self, mailbox: &str) -> Result<Option<(u32, u32)>>;

    /// Remembers what was fetched from `mailbox`.
    fn set_imap_state(&self, mailbox: &str, uidvalidity: u32, last_uid: u32) -> Result<()>;
}

/// Rows as they are, for `mailout store migrate` (see [`migrate`]): counted, exported and
/// imported table by table.
pub trait RowCopy {
    /// How many rows `table` (one of [`TABLES`]) holds.
    fn count_rows(&self, table: &str) -> Result<u64>;

    /// Calls `each` with every row of `table` (one of [`TABLES`]), its columns in the order
    /// [`TABLES`] gives, in primary-key order.
    fn export_rows(
        &self,
        table: &str,
        each: &mut dyn FnMut(Vec<Value>) -> Result<()>,
    ) -> Result<()>;

    /// Inserts `rows` into `table` (one of [`TABLES`]; columns as there), in one transaction.
    fn import_rows(&self, table: &str, rows: &[Vec<Value>]) -> Result<()>;

    /// After an import: ids handed out from now on follow the highest imported, and the
    /// backend's planner knows how many rows there now are.
    fn finish_import(&self) -> Result<()>;
}

/// The operations mailout needs from a store, whatever the backend: every role. A caller
/// that needs only one takes that role instead (`&dyn Roster`, `&dyn Archive`…).
pub trait Store: Backend + Editions + Roster + Journal + Archive + RowCopy + Send {}

impl<T> Store for T where T: Backend + Editions + Roster + Journal + Archive + RowCopy + Send {}

/// The environment variable with the PostgreSQL password when the config names none.
pub const DEFAULT_PASSWORD_ENV: &str = "MAILOUT_PG_PASSWORD";

/// Whether `location` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Opens the store at `location` (a SQLite path or a `postgres://` URL), creating and
/// migrating it as needed; a PostgreSQL password missing from the URL is read from
/// [`DEFAULT_PASSWORD_ENV`].
pub fn open(location: &str) -> Result<Box<dyn Store>> {
    open_with(location, DEFAULT_PASSWORD_ENV)
}

/// [`open`], with the PostgreSQL password (when the URL has none) in `password_env`.
pub fn open_with(location: &str, password_env: &str) -> Result<Box<dyn Store>> {
    if is_postgres(location) {
        return pg::open(location, password_env);
    }
    Ok(Box::new(sqlite::SqliteStore::open(std::path::Path::new(
        location,
    ))?))
}

/// Opens the store at `location` for reading only: an existing SQLite file is opened
/// read-only (it may be a file the user cannot write), and must already have the current
/// schema; a missing file is read as an empty store and not created; a PostgreSQL URL
/// opens as [`open_with`] does.
pub fn open_read_only(location: &str, password_env: &str) -> Result<Box<dyn Store>> {
    if is_postgres(location) {
        return open_with(location, password_env);
    }
    let path = std::path::Path::new(location);
    if !path.exists() {
        return open_empty(location);
    }
    Ok(Box::new(sqlite::SqliteStore::open_read_only(path)?))
}

/// An empty SQLite store in memory standing in for the file at `location`, which is not
/// created (see [`sqlite::SqliteStore::open_in_memory`]).
pub fn open_empty(location: &str) -> Result<Box<dyn Store>> {
    Ok(Box::new(sqlite::SqliteStore::open_in_memory(
        std::path::Path::new(location),
    )?))
}

/// `location` with any password removed, for messages.
pub fn redact(location: &str) -> String {
    match (location.find("://"), location.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &location[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:***{}", &location[..scheme + 3], &location[at..])
                }
                None => location.to_string(),
            }
        }
        _ => location.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("mailout.sqlite"), "mailout.sqlite");
    }
}
