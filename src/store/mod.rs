//! The store: numbering, members, suppression, send jobs and their journals, workers, and
//! the archive. One interface, [`Store`]; every SQL statement lives in a backend module
//! behind it: [`sqlite`] (the embedded default) and [`pg`] (PostgreSQL, for several workers on several
//! machines). Nothing outside this folder knows which one it talks to.

pub mod migrate;
pub mod pg;
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

/// A failure reported for an address, kept to count soft bounces and as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceEvent {
    /// The address.
    pub email: String,
    /// When it was read (RFC 3339).
    pub at: String,
    /// The reason (`mailbox-full`, `authentication`…).
    pub reason: String,
    /// Its consequence (`hard`, `soft`, `sender-side`, `complaint`).
    pub consequence: String,
    /// The send job it came from, if known.
    pub job: Option<i64>,
    /// The status, the server's words and the file it came from.
    pub evidence: String,
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
    /// Sent in full without a reply: may have been delivered; not retried on its own.
    pub uncertain: u64,
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
    /// Sent in full, and no reply came: it may have been delivered.
    Uncertain,
}

impl EntryState {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Sent => "sent",
            EntryState::Failed => "failed",
            EntryState::Skipped => "skipped",
            EntryState::Uncertain => "uncertain",
        }
    }

    /// The state named `word`.
    pub fn parse(word: &str) -> Option<EntryState> {
        Some(match word {
            "pending" => EntryState::Pending,
            "sent" => EntryState::Sent,
            "failed" => EntryState::Failed,
            "skipped" => EntryState::Skipped,
            "uncertain" => EntryState::Uncertain,
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

/// A received message ready to be archived (parsing and compression happen before the
/// store sees it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMessage {
    /// Message-ID without angle brackets, if it has one.
    pub message_id: Option<String>,
    /// SHA-256 of the raw bytes.
    pub content_hash: String,
    /// Date (RFC 3339, UTC), if it has a readable one.
    pub date: Option<String>,
    /// From, as `Name <address>`.
    pub sender: Option<String>,
    /// To and Cc addresses.
    pub recipients: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// The bulletin number, when the message is one of our series.
    pub bulletin: Option<u32>,
    /// Why it could not be parsed, when it could not (it is kept raw).
    pub flagged: Option<String>,
    /// Size of the raw bytes.
    pub size: u64,
    /// The raw bytes, zstd-compressed.
    pub raw_zstd: Vec<u8>,
    /// The text body (converted from HTML when there is no text part).
    pub text: Option<String>,
    /// Sections of a bulletin (heading, text), in order; empty for other mail.
    pub sections: Vec<(Option<String>, String)>,
    /// Attachments.
    pub attachments: Vec<NewAttachment>,
    /// Where it was imported from.
    pub source: String,
    /// The mail folder it was in (`Lists/Union`, a Maildir++ or IMAP folder), if not the top.
    pub folder: Option<String>,
    /// For a copy of our own bulletin: which ([`CopyKind`]).
    pub copy: Option<CopyKind>,
}

/// Which copy of one of our own bulletins a message is, told by its Message-ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    /// The copy for everyone (`mailout build`'s, to the list address): every section, no
    /// member's name. The one a public page shows.
    Everyone,
    /// A proof (`send --proof`): never published.
    Proof,
    /// A member's personal copy: evidence of delivery, never published.
    Member,
}

impl CopyKind {
    /// `everyone`, `proof`, `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyKind::Everyone => "everyone",
            CopyKind::Proof => "proof",
            CopyKind::Member => "member",
        }
    }

    /// The kind named `word`.
    pub fn parse(word: &str) -> Option<CopyKind> {
        Some(match word {
            "everyone" => CopyKind::Everyone,
            "proof" => CopyKind::Proof,
            "member" => CopyKind::Member,
            _ => return None,
        })
    }
}

/// An attachment of a received message, stored once per content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAttachment {
    /// SHA-256 of the decoded contents.
    pub hash: String,
    /// Its file name, if it has one.
    pub filename: Option<String>,
    /// Its Content-ID (for `cid:` links), if it has one.
    pub content_id: Option<String>,
    /// MIME type.
    pub content_type: String,
    /// Size of the decoded contents.
    pub size: u64,
    /// The contents, zstd-compressed.
    pub data_zstd: Vec<u8>,
}

/// What happened to a message given to the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archived {
    /// Stored under this id.
    Added(i64),
    /// Already there (same Message-ID, or same content), under this id.
    Duplicate(i64),
}

/// An archived message, without its bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Archive id.
    pub id: i64,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// Date, RFC 3339.
    pub date: Option<String>,
    /// From.
    pub sender: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Bulletin number, if it is one.
    pub bulletin: Option<u32>,
    /// Why it could not be parsed, if it could not.
    pub flagged: Option<String>,
    /// Size of the raw message.
    pub size: u64,
    /// The mail folder it came from, if not the top.
    pub folder: Option<String>,
    /// For a copy of our own bulletin: which.
    pub copy: Option<CopyKind>,
}

/// An archived message with its bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchivedMessage {
    /// Its listing.
    pub entry: ArchiveEntry,
    /// To and Cc.
    pub recipients: Option<String>,
    /// The raw message, zstd-compressed (bodies are read from it when shown).
    pub raw_zstd: Vec<u8>,
    /// Headings of the bulletin's sections, in order.
    pub sections: Vec<Option<String>>,
    /// Attachments.
    pub attachments: Vec<AttachmentInfo>,
}

/// An archived message's attachment, without its contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// SHA-256 of the contents (the key to [`Store::archive_attachment`]).
    pub hash: String,
    /// File name.
    pub filename: Option<String>,
    /// Content-ID.
    pub content_id: Option<String>,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// A row of the search index as [`Store::archive_search_rows`] gives it: the section's
/// position (none for the whole message), its heading, and its text in the index's form.
pub type SearchRow = (Option<u32>, Option<String>, String);

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The message.
    pub entry: ArchiveEntry,
    /// The section it is in (1-based position and heading), for a bulletin.
    pub section: Option<(u32, Option<String>)>,
    /// Words around the match; matches in `[brackets]`.
    pub snippet: String,
    /// Relevance (lower is better, as FTS5's bm25).
    pub rank: f64,
}

/// A send worker (`mailout worker`, or `mailout send` working its own job) as the store
/// knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its id.
    pub id: i64,
    /// The machine it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339).
    pub heartbeat_at: String,
    /// Journal rows it has claimed so far.
    pub claimed: u64,
    /// Copies it has had accepted so far.
    pub sent: u64,
}

/// A sign-off of a bulletin's exact content (PRODUCT.md §6a).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The bulletin file, as the store names it.
    pub source: String,
    /// Who approved.
    pub name: String,
    /// SHA-256 of everything that shapes what members receive, when approved.
    pub content_hash: String,
    /// When (RFC 3339).
    pub at: String,
}

/// One value of a row copied between stores by `mailout store migrate`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// The tables `mailout store migrate` copies, in an order that keeps references valid, with
/// the columns copied. Both backends have these tables with these columns (PostgreSQL's
/// `archive_search` is a plain table with a generated `tsvector`; columns a backend adds for
/// its own use, such as journal claims, are not copied).
pub const TABLES: &[(&str, &[&str])] = &[
    (
        "editions",
        &[
            "number",
            "content_hash",
            "subject",
            "source",
            "built_at",
            "sent_at",
        ],
    ),
    ("secrets", &["name", "value"]),
    (
        "members",
        &[
            "id",
            "email",
            "name",
            "branch",
            "employer",
            "attributes",
            "token_key",
            "lookup_key",
            "created_at",
            "updated_at",
        ],
    ),
    ("suppressions", &["email", "reason", "detail", "at"]),
    (
        "jobs",
        &[
            "id",
            "number",
            "selectors",
            "content_hash",
            "subject",
            "source",
            "transport",
            "total",
            "created_at",
            "finished_at",
        ],
    ),
    (
        "journal",
        &[
            "job",
            "seq",
            "email",
            "name",
            "branch",
            "employer",
            "attributes",
            "state",
            "attempts",
            "message_id",
            "reply",
            "updated_at",
        ],
    ),
    (
        "messages",
        &[
            "id",
            "message_id",
            "content_hash",
            "date",
            "sender",
            "recipients",
            "subject",
            "bulletin",
            "flagged",
            "size",
            "raw_zstd",
            "source",
            "imported_at",
            "folder",
            "copy_kind",
        ],
    ),
    ("message_sections", &["message", "position", "heading"]),
    (
        "attachments",
        &["hash", "content_type", "size", "data_zstd"],
    ),
    (
        "message_attachments",
        &["message", "position", "hash", "filename", "content_id"],
    ),
    (
        "archive_search",
        &["subject", "sender", "heading", "body", "message", "section"],
    ),
    ("imap_state", &["mailbox", "uidvalidity", "last_uid"]),
    ("approvals", &["source", "name", "content_hash", "at"]),
    (
        "bounces",
        &[
            "id",
            "email",
            "at",
            "reason",
            "consequence",
            "job",
            "evidence",
        ],
    ),
];

/// The operations mailout needs from a store, whatever the backend.
pub trait Store: Send {
    /// Where the store is, for messages (never includes a password).
    fn location(&self) -> &str;

    /// Whether each call is a round trip to a server (PostgreSQL) rather than a local file:
    /// the sender then commits results on a thread of its own while it goes on sending,
    /// instead of waiting for each commit.
    fn is_remote(&self) -> bool {
        false
    }

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

    /// The named secret, created from the system's random source on first use.
    fn secret(&self, name: &str) -> Result<Vec<u8>>;

    /// Adds or updates every member from `members`, in one transaction; `lookup` gives the
    /// token lookup key of an address (see [`crate::token::TokenKey::lookup_key`]).
    fn import_members(
        &self,
        members: &mut dyn Iterator<Item = Member>,
        lookup: &dyn Fn(&str) -> Vec<u8>,
    ) -> Result<ImportCounts>;

    /// Members selected by `selection` (all members, suppressed or not, when `None`), by
    /// address.
    fn members(&self, selection: Option<&Selection>) -> Result<Vec<Member>>;

    /// The member with address `email` (normalised), if there is one.
    fn member(&self, email: &str) -> Result<Option<Member>>;

    /// Records that `approval.name` approved `approval.source` with `approval.content_hash`
    /// (replacing that person's earlier approval of the file).
    fn approve(&self, approval: &Approval) -> Result<()>;

    /// The approvals of `source`, oldest first.
    fn approvals(&self, source: &str) -> Result<Vec<Approval>>;

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

    /// Lifts the suppression of `email`; returns it, or `None` if there was none.
    fn unsuppress(&self, email: &str) -> Result<Option<Suppression>>;

    /// Keeps a bounce.
    fn add_bounce(&self, event: &BounceEvent) -> Result<()>;

    /// The bounces kept for `email`, oldest first.
    fn bounces_for(&self, email: &str) -> Result<Vec<BounceEvent>>;

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

    /// Records that `job` has nothing left to do.
    fn finish_job(&self, job: i64, at: &str) -> Result<()>;

    /// Makes `job`'s uncertain rows pending again (their attempts kept) and the job
    /// unfinished, so that they are sent once more, on purpose; returns how many.
    fn retry_uncertain(&self, job: i64, at: &str) -> Result<u64>;

    /// The rows of `job` in `state`, in order.
    fn entries(&self, job: i64, state: EntryState) -> Result<Vec<Entry>>;

    /// Journal rows for `email`, newest job first (for matching bounces).
    fn entries_for(&self, email: &str) -> Result<Vec<Entry>>;

    /// The journal row whose copy had Message-ID `message_id` (with angle brackets).
    fn entry_by_message_id(&self, message_id: &str) -> Result<Option<Entry>>;

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
        query: &crate::archive::query::Query,
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

    /// After an import: ids handed out from now on follow the highest imported.
    fn finish_import(&self) -> Result<()>;
}

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
