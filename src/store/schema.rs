//! The tables and columns both backends share: [`TABLES`], the rows `mailout store migrate`
//! copies, and the column lists each backend's row mapping reads in order.

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
            "scheduled_for",
            "schedule",
            "held_because",
            "id_series",
            "id_domain",
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
            "wave",
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
        "member_events",
        &["id", "email", "at", "change", "source", "evidence"],
    ),
    ("erased", &["hash", "at"]),
    ("list_optouts", &["email", "list", "at"]),
    (
        "seed_copies",
        &[
            "job",
            "address",
            "message_id",
            "state",
            "reply",
            "sent_at",
            "found",
            "folder",
            "arrived_at",
            "checked_at",
        ],
    ),
    (
        "left_out",
        &["job", "email", "branch", "employer", "reason", "wave"],
    ),
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

/// The columns of `table` in [`TABLES`], if it is one.
pub(crate) fn table_columns(table: &str) -> Option<&'static [&'static str]> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, c)| *c)
}

/// An edition's columns, in the order its row mapping reads them.
pub(crate) const EDITION_COLUMNS: &str = "number, content_hash, subject, source, built_at, sent_at";
/// A job's columns, in the order its row mapping reads them.
pub(crate) const JOB_COLUMNS: &str = "id, number, selectors, content_hash, subject, source, transport, created_at, finished_at, total, scheduled_for, schedule, held_because, id_series, id_domain";
/// An archived message's listing columns, in the order its row mapping reads them.
pub(crate) const ARCHIVE_COLUMNS: &str =
    "id, message_id, date, sender, subject, bulletin, flagged, size, folder, copy_kind";
/// A journal row's columns, in the order its row mapping reads them.
pub(crate) const ENTRY_COLUMNS: &str =
    "job, seq, email, name, branch, employer, attributes, state, attempts, message_id, reply";

/// A member's or journal row's attributes, read from their stored JSON (none when it cannot
/// be read).
pub(crate) fn attributes(json: &str) -> std::collections::BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// Adds to `progress` that `n` journal rows are in the state stored as `state` (a state this
/// mailout does not know is left out), as each backend reads its per-state counts.
pub(crate) fn count_state(progress: &mut super::Progress, state: &str, n: u64) {
    use super::EntryState;
    match EntryState::parse(state) {
        Some(EntryState::Pending) => progress.pending = n,
        Some(EntryState::Sent) => progress.sent = n,
        Some(EntryState::Failed) => progress.failed = n,
        Some(EntryState::Skipped) => progress.skipped = n,
        Some(EntryState::Uncertain) => progress.uncertain = n,
        Some(EntryState::Cancelled) => progress.cancelled = n,
        None => {}
    }
}

/// The history entry of suppressing `email` for `reason` (with `detail`) at `at`: what
/// changed and who made it (both backends write the same).
pub(crate) fn suppression_event(
    email: &str,
    reason: &str,
    detail: Option<&str>,
    at: &str,
) -> super::MemberEvent {
    let (change, source) = match (reason, detail) {
        ("unsubscribed", Some("mailto")) => ("unsubscribed", "mailto"),
        ("unsubscribed", Some(d)) if d.contains("preferences") => {
            ("unsubscribed", "preferences page")
        }
        ("unsubscribed", Some(d)) if d.contains("link") => ("unsubscribed", "link"),
        ("unsubscribed", _) => ("unsubscribed", "member"),
        ("complaint", _) => ("suppressed", "complaint"),
        ("hard-bounce" | "soft-bounces", _) => ("suppressed", "bounce"),
        _ => ("suppressed", "officer"),
    };
    super::MemberEvent {
        email: email.to_string(),
        at: at.to_string(),
        change: change.into(),
        source: source.into(),
        evidence: Some(match detail {
            Some(d) => format!("{reason}: {d}"),
            None => reason.to_string(),
        }),
    }
}

/// LIKE patterns (with a backslash as the escape) matching an address at `domains` or below.
pub(crate) fn domain_patterns(domains: &[String]) -> Vec<String> {
    domains
        .iter()
        .flat_map(|d| {
            let d = d
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            [format!("%@{d}"), format!("%.{d}")]
        })
        .collect()
}
