//! Bulletin numbers (PRODUCT.md §2): the next free number is one more than the highest built,
//! sent or archived, or `numbering.start`; a number that has been sent is never reused for
//! other content.

use crate::config::Config;
use crate::error::Result;
use crate::store::{EditionRecord, Editions};

/// The number `mailout new` offers.
pub fn next_free(store: &dyn Editions, config: &Config) -> Result<u32> {
    let start = config.numbering.start;
    Ok(match store.highest_number()? {
        Some(highest) => highest.saturating_add(1).max(start),
        None => start,
    })
}

/// Why a number cannot be used for some content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reused {
    /// The earlier edition that went out under the number.
    pub earlier: EditionRecord,
}

impl std::fmt::Display for Reused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.earlier;
        write!(
            f,
            "number {} was already sent{} as `{}` (from `{}`) with other content; a sent number is never reused",
            e.number,
            e.sent_at
                .as_deref()
                .map(|at| format!(" on {}", at.get(..10).unwrap_or(at)))
                .unwrap_or_default(),
            e.subject,
            e.source
        )
    }
}

/// Checks that content with `content_hash` may go out under `number`.
pub fn check_reuse(
    store: &dyn Editions,
    number: u32,
    content_hash: &str,
) -> Result<Result<(), Reused>> {
    Ok(match store.edition(number)? {
        Some(earlier) if earlier.is_sent() && earlier.content_hash != content_hash => {
            Err(Reused { earlier })
        }
        _ => Ok(()),
    })
}

/// The number for a bulletin file that sets none: the number this file's content already
/// has, else the number its last unsent build got, else the next free number.
pub fn assign(
    store: &dyn Editions,
    config: &Config,
    source: &str,
    content_hash: &str,
) -> Result<u32> {
    let earlier = store.editions_from(source)?;
    if let Some(same) = earlier.iter().find(|e| e.content_hash == content_hash) {
        return Ok(same.number);
    }
    if let Some(draft) = earlier.iter().find(|e| !e.is_sent()) {
        return Ok(draft.number);
    }
    next_free(store, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn record(number: u32, hash: &str, source: &str) -> EditionRecord {
        EditionRecord {
            number,
            content_hash: hash.into(),
            subject: format!("Latest From Example Union {number}"),
            source: source.into(),
            built_at: Some("2026-01-01T00:00:00Z".into()),
            sent_at: None,
        }
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        (dir, store)
    }

    #[test]
    fn next_number_starts_at_start_then_follows_the_highest() {
        let (_dir, store) = store();
        let mut config = Config::builtin();
        config.numbering.start = 236;
        assert_eq!(next_free(&store, &config).unwrap(), 236);
        store.record_build(&record(240, "h", "b/240.toml")).unwrap();
        assert_eq!(next_free(&store, &config).unwrap(), 241);
        // `start` wins over a lower history.
        config.numbering.start = 300;
        assert_eq!(next_free(&store, &config).unwrap(), 300);
    }

    #[test]
    fn reuse_of_a_sent_number_is_refused_naming_the_earlier_one() {
        let (_dir, store) = store();
        let sent = record(240, "old", "bulletins/240.toml");
        store.record_sent(&sent, "2026-10-30T09:00:00Z").unwrap();
        assert!(check_reuse(&store, 240, "old").unwrap().is_ok());
        let refused = check_reuse(&store, 240, "new").unwrap().unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains("number 240 was already sent on 2026-10-30"),
            "{message}"
        );
        assert!(
            message.contains("`Latest From Example Union 240`"),
            "{message}"
        );
        assert!(message.contains("`bulletins/240.toml`"), "{message}");
        // An unsent build may be replaced freely.
        store.record_build(&record(241, "a", "b.toml")).unwrap();
        assert!(check_reuse(&store, 241, "b").unwrap().is_ok());
    }

    #[test]
    fn a_file_without_a_number_keeps_its_number() {
        let (_dir, store) = store();
        let config = Config::builtin();
        assert_eq!(assign(&store, &config, "draft.toml", "h1").unwrap(), 1);
        store.record_build(&record(1, "h1", "draft.toml")).unwrap();
        // Rebuilt after an edit: same number.
        assert_eq!(assign(&store, &config, "draft.toml", "h2").unwrap(), 1);
        // Once sent, the same content keeps it; new content gets the next number.
        store
            .record_sent(&record(1, "h1", "draft.toml"), "2026-01-02T00:00:00Z")
            .unwrap();
        assert_eq!(assign(&store, &config, "draft.toml", "h1").unwrap(), 1);
        assert_eq!(assign(&store, &config, "draft.toml", "h3").unwrap(), 2);
    }
}
