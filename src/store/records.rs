//! What the store holds and hands back: the records of editions, members, jobs and their
//! journals, workers and the archive, the same for every backend.

use std::collections::BTreeMap;

/// One member, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// Normalised address (trimmed, lowercase).
    pub email: String,
    /// Full name, if known.
    pub name: Option<String>,
    /// Branch, if known.
    pub branch: Option<String>,
    /// Employer, if known.
    pub employer: Option<String>,
    /// Other CSV columns.
    pub attributes: BTreeMap<String, String>,
}

/// A member to add or update, with the keys their unsubscribe tokens are found by. The
/// caller computes them ([`crate::token::TokenKey::keyed`]): the store keeps keys, never the
/// secret they are made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedMember {
    /// The member.
    pub member: Member,
    /// The keyed lookup key of the address (HMAC under the token secret).
    pub lookup_key: Vec<u8>,
    /// The unkeyed address hash that tokens of the first form carry, kept for their
    /// transition.
    pub legacy_key: Vec<u8>,
    /// Where the member came from (the file imported), for their history.
    pub origin: Option<String>,
}

/// Who a send goes to, reduced to what the store can query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Every member.
    pub all: bool,
    /// Members of these branches (compared without case).
    pub branches: Vec<String>,
    /// Members of these employers (compared without case).
    pub employers: Vec<String>,
    /// Mail domains (lowercase) whose members a send leaves out, as left out with reason
    /// `employer-domain` (`[privacy] skip_employer_domains`); subdomains count.
    pub skip_domains: Vec<String>,
    /// An optional list the send goes to: members who opted out of it are left out, with
    /// reason `opted-out`.
    pub optional_list: Option<String>,
}

impl Selection {
    /// Whether `member` is selected.
    pub fn matches(&self, member: &Member) -> bool {
        let any = |wanted: &[String], have: &Option<String>| {
            have.as_deref()
                .is_some_and(|h| wanted.iter().any(|w| w.eq_ignore_ascii_case(h.trim())))
        };
        self.all || any(&self.branches, &member.branch) || any(&self.employers, &member.employer)
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    /// How its copies' Message-IDs are made, so that each journal row holds its copy's
    /// Message-ID from the start and a result need not write it; `None` for a job from
    /// before mailout kept it.
    pub message_ids: Option<MessageIds>,
}

/// How a job's copies' Message-IDs are made: `<NUMBER.HASH@DOMAIN>`, HASH from the series,
/// the number and the address ([`crate::address::message_id_hash`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIds {
    /// The series' slug.
    pub series: String,
    /// The list's domain.
    pub domain: String,
}

impl MessageIds {
    /// The Message-ID of `address`'s copy of bulletin `number`.
    pub fn message_id(&self, number: u32, address: &str) -> String {
        let hash = crate::address::message_id_hash(&self.series, number, address);
        format!("<{number}.{hash}@{}>", self.domain)
    }
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
    /// When a scheduled job is due (UTC, RFC 3339); `None` for a job sent at once.
    pub scheduled_for: Option<String>,
    /// Where a scheduled job stands; `None` for a job sent at once.
    pub schedule: Option<Schedule>,
    /// Why a scheduled job was not started when it came due.
    pub held_because: Option<String>,
}

impl Job {
    /// Whether the job has its recipients and may be worked (a scheduled job only once it
    /// has started).
    pub fn is_started(&self) -> bool {
        matches!(self.schedule, None | Some(Schedule::Started))
    }
}

/// Where a scheduled job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Not yet due.
    Waiting,
    /// Came due later than the late limit with nothing running: waits for a release.
    Late,
    /// Released after being late: starts at the next look.
    Released,
    /// Came due but was not started (the bulletin changed, or its sign-off no longer
    /// holds): `held_because` says why.
    Held,
    /// Started: its recipients are in the journal.
    Started,
    /// Cancelled before it started.
    Cancelled,
}

impl Schedule {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Waiting => "waiting",
            Schedule::Late => "late",
            Schedule::Released => "released",
            Schedule::Held => "held",
            Schedule::Started => "started",
            Schedule::Cancelled => "cancelled",
        }
    }

    /// The state named `word`.
    pub fn parse(word: &str) -> Option<Schedule> {
        Some(match word {
            "waiting" => Schedule::Waiting,
            "late" => Schedule::Late,
            "released" => Schedule::Released,
            "held" => Schedule::Held,
            "started" => Schedule::Started,
            "cancelled" => Schedule::Cancelled,
            _ => return None,
        })
    }
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
    /// Not sent because the job was cancelled.
    pub cancelled: u64,
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
    /// Not sent: the job was cancelled first.
    Cancelled,
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
            EntryState::Cancelled => "cancelled",
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
            "cancelled" => EntryState::Cancelled,
            _ => return None,
        })
    }
}

/// A selected member left out of a job when it started (their address was suppressed),
/// with why: the account's "suppressed before the send".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The address.
    pub email: String,
    /// Their branch, if known.
    pub branch: Option<String>,
    /// Their employer, if known.
    pub employer: Option<String>,
    /// The suppression's reason (`unsubscribed`, `hard-bounce`, `manual`…).
    pub reason: String,
    /// The wave of the job they were left out of (1 when it started, then one per top-up).
    pub wave: u32,
}

/// One wave of a job: the rows it started with (wave 1) or a top-up added, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wave {
    /// 1 when the job started, then one more per top-up.
    pub number: u32,
    /// Its rows by state.
    pub progress: Progress,
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
    /// SHA-256 of the contents (the key to
    /// [`archive_attachment`](super::Archive::archive_attachment)).
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

/// A row of the search index as [`archive_search_rows`](super::Archive::archive_search_rows)
/// gives it: the section's position (none for the whole message), its heading, and its text
/// in the index's form.
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

/// A value as a message names it: its kind and, when short, itself.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("an empty value (NULL)"),
            Value::Integer(n) => write!(f, "the number {n}"),
            Value::Real(x) => write!(f, "the number {x}"),
            Value::Text(t) if t.chars().count() <= 40 => write!(f, "the text `{t}`"),
            Value::Text(t) => write!(f, "a text of {} characters", t.chars().count()),
            Value::Blob(b) => write!(f, "{} bytes of binary data", b.len()),
        }
    }
}

/// The copy for everyone sent to a seed mailbox for a job, and what a check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeedCopy {
    /// The job.
    pub job: i64,
    /// The seed's address.
    pub address: String,
    /// The copy's Message-ID, with angle brackets.
    pub message_id: String,
    /// `sending`, `sent`, `failed` or `uncertain`.
    pub state: String,
    /// The server's reply, or what happened.
    pub reply: Option<String>,
    /// When it was handed over (UTC, RFC 3339; real time).
    pub sent_at: Option<String>,
    /// Where the last check found it: `inbox`, `junk`, or `not arrived`.
    pub found: Option<String>,
    /// The folder it was found in.
    pub folder: Option<String>,
    /// When the mailbox's server stored it (UTC, RFC 3339).
    pub arrived_at: Option<String>,
    /// When it was last checked (UTC, RFC 3339).
    pub checked_at: Option<String>,
}

/// A change of a member's mail status, kept as the record of their consent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberEvent {
    /// The member's address.
    pub email: String,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// What changed: `added`, `unsubscribed`, `suppressed`, `unsuppressed`, `resubscribed`.
    pub change: String,
    /// Who or what made it: `import`, `link`, `mailto`, `officer`, `bounce`, `complaint`,
    /// `member`.
    pub source: String,
    /// What shows it: the file imported, the reply of a bounce, the officer's reason.
    pub evidence: Option<String>,
}

/// What erasing a member removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    /// The roster entry (0 or 1).
    pub member: u64,
    /// Journal rows whose personal fields were blanked.
    pub journal_rows: u64,
    /// Rows of who jobs left out, blanked.
    pub left_out_rows: u64,
    /// Archived personal copies deleted.
    pub archived_copies: u64,
    /// Bounces, suppressions and history entries deleted.
    pub records: u64,
}
