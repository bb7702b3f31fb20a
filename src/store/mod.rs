//! The store: numbering, and (as the product grows) members, suppression, send journals,
//! approvals and the archive. One interface, [`Store`]; every SQL statement lives in a
//! backend module behind it (today [`sqlite`]), so a second backend is an addition, not a
//! rewrite.

pub mod sqlite;

use crate::error::Result;
use crate::members::{Member, Selection};

/// What the store knows about one bulletin number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditionRecord {
    /// The number.
    pub number: u32,
    /// SHA-256 of the content built or sent under this number.
    pub content_hash: String,
    /// Its subject.
    pub subject: String,
    /// The bulletin file it was built from.
    pub source: String,
    /// When it was last built (RFC 3339), if it was.
    pub built_at: Option<String>,
    /// When it was first sent (RFC 3339), if it was.
    pub sent_at: Option<String>,
}

impl EditionRecord {
    /// Whether this number has gone out to members.
    pub fn is_sent(&self) -> bool {
        self.sent_at.is_some()
    }
}

/// What a member import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Addresses new to the store.
    pub added: u64,
    /// Addresses already there, updated.
    pub updated: u64,
}

/// An address that is never sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The address.
    pub email: String,
    /// `unsubscribed`, `hard-bounce` or `manual`.
    pub reason: String,
    /// More about it (the bounce, who unsubscribed it).
    pub detail: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// Member counts for `mailout lists`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Members that can be sent to (not suppressed).
    pub all: u64,
    /// Suppressed members.
    pub suppressed: u64,
    /// Per branch, as written, sendable members.
    pub branches: Vec<(String, u64)>,
    /// Per employer, as written, sendable members.
    pub employers: Vec<(String, u64)>,
}

/// A send job being created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The bulletin number.
    pub number: u32,
    /// The canonical selectors (the job's key with the number).
    pub selectors: String,
    /// The content hash of what is sent.
    pub content_hash: String,
    /// Its subject.
    pub subject: String,
    /// The bulletin file.
    pub source: String,
    /// The transport named when it started (`smtp`, `file`, `sendmail`).
    pub transport: String,
    /// When (RFC 3339).
    pub created_at: String,
}

/// A send job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: i64,
    /// What was asked for.
    pub spec: NewJob,
    /// Whether it is still running.
    pub finished_at: Option<String>,
    /// Recipients in the journal.
    pub total: u64,
    /// Per state.
    pub progress: Progress,
}

/// How far a job has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Still to send.
    pub pending: u64,
    /// Accepted by the server.
    pub sent: u64,
    /// Failed for good (5xx, or 4xx after every attempt).
    pub failed: u64,
    /// Left out because the address was suppressed after the job started.
    pub skipped: u64,
}

/// The state of one journal row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Not yet delivered.
    Pending,
    /// Accepted by the server.
    Sent,
    /// Failed for good.
    Failed,
    /// Not sent: the address was suppressed.
    Skipped,
}

impl EntryState {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Sent => "sent",
            EntryState::Failed => "failed",
            EntryState::Skipped => "skipped",
        }
    }

    /// The state named `word`.
    pub fn parse(word: &str) -> Option<EntryState> {
        Some(match word {
            "pending" => EntryState::Pending,
            "sent" => EntryState::Sent,
            "failed" => EntryState::Failed,
            "skipped" => EntryState::Skipped,
            _ => return None,
        })
    }
}

/// One recipient of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The job.
    pub job: i64,
    /// Its place in the job.
    pub seq: i64,
    /// The member as they were when the job started.
    pub member: Member,
    /// Where it stands.
    pub state: EntryState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The Message-ID of the copy, once one was tried.
    pub message_id: Option<String>,
    /// The server's last reply (or the error).
    pub reply: Option<String>,
}

/// A change to one journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The job.
    pub job: i64,
    /// The row.
    pub seq: i64,
    /// Its new state.
    pub state: EntryState,
    /// Attempts so far.
    pub attempts: u32,
    /// The copy's Message-ID.
    pub message_id: String,
    /// The server's reply, or the error.
    pub reply: String,
    /// When (RFC 3339).
    pub at: String,
}

/// The operations mailout needs from a store, whatever the backend.
pub trait Store: Send {
    /// Where the store is, for messages (never includes a password).
    fn location(&self) -> &str;

    /// The highest number built, sent or archived.
    fn highest_number(&self) -> Result<Option<u32>>;

    /// The record of `number`, if it has been built or sent.
    fn edition(&self, number: u32) -> Result<Option<EditionRecord>>;

    /// Every number built or sent from the bulletin file `source`, highest first, so that
    /// rebuilding a file without a `number` keeps the number it was given.
    fn editions_from(&self, source: &str) -> Result<Vec<EditionRecord>>;

    /// Records a build of `record.number` (replacing an unsent record; a sent record keeps
    /// its content and gets a new build time).
    fn record_build(&self, record: &EditionRecord) -> Result<()>;

    /// Records that `record.number` went out with `record.content_hash` at `sent_at`.
    fn record_sent(&self, record: &EditionRecord, sent_at: &str) -> Result<()>;

    /// The named secret, created from the system's random source on first use.
    fn secret(&self, name: &str) -> Result<Vec<u8>>;

    /// Adds or updates every member from `members`, in one transaction.
    fn import_members(&self, members: &mut dyn Iterator<Item = Member>) -> Result<ImportCounts>;

    /// Members selected by `selection` (all members, suppressed or not, when `None`), by
    /// address.
    fn members(&self, selection: Option<&Selection>) -> Result<Vec<Member>>;

    /// The members whose token key (see [`crate::token::address_key`]) is `key`.
    fn members_by_token_key(&self, key: &[u8]) -> Result<Vec<Member>>;

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

    /// The job for `number` and `selectors`, if one was started.
    fn find_job(&self, number: u32, selectors: &str) -> Result<Option<Job>>;

    /// Starts a job: the job and one pending journal row per sendable selected member,
    /// deduplicated by address, in one transaction.
    fn create_job(&self, job: &NewJob, selection: &Selection) -> Result<Job>;

    /// The job with `id`.
    fn job(&self, id: i64) -> Result<Option<Job>>;

    /// Every job, newest first.
    fn jobs(&self) -> Result<Vec<Job>>;

    /// Marks pending rows of suppressed addresses skipped; returns how many.
    fn skip_suppressed(&self, job: i64, at: &str) -> Result<u64>;

    /// Up to `limit` pending rows of `job` after `after_seq`, in order. A row whose address
    /// has been suppressed since the job started comes back in state `Skipped`.
    fn pending(&self, job: i64, after_seq: i64, limit: usize) -> Result<Vec<Entry>>;

    /// Applies `marks`, in one transaction.
    fn mark(&self, marks: &[Mark]) -> Result<()>;

    /// Records that `job` has nothing left to do.
    fn finish_job(&self, job: i64, at: &str) -> Result<()>;

    /// The rows of `job` in `state`, in order.
    fn entries(&self, job: i64, state: EntryState) -> Result<Vec<Entry>>;
}

/// Opens the store at `location` (a SQLite path; `postgres://` URLs are for a later backend),
/// creating and migrating it as needed.
pub fn open(location: &str) -> Result<Box<dyn Store>> {
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        return Err(crate::error::Error::Usage(format!(
            "store `{}`: PostgreSQL stores are not supported by this build yet; use a SQLite path",
            redact(location)
        )));
    }
    Ok(Box::new(sqlite::SqliteStore::open(std::path::Path::new(
        location,
    ))?))
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
