//! The store: numbering, and (as the product grows) members, suppression, send journals,
//! approvals and the archive. One interface, [`Store`]; every SQL statement lives in a
//! backend module behind it (today [`sqlite`]), so a second backend is an addition, not a
//! rewrite.

pub mod sqlite;

use crate::error::Result;

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
