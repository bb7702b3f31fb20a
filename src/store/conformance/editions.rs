//! Numbering and secrets, on every backend.

use super::on_each_backend;
use crate::store::{EditionRecord, Editions};

fn record(number: u32, hash: &str, source: &str) -> EditionRecord {
    EditionRecord {
        number,
        content_hash: hash.into(),
        subject: format!("S {number}"),
        source: source.into(),
        built_at: Some(format!("2026-01-0{number}T00:00:00Z")),
        sent_at: None,
    }
}

fn builds_and_sends(store: &dyn Editions) {
    assert_eq!(store.highest_number().unwrap(), None);
    store.record_build(&record(3, "a", "b/3.toml")).unwrap();
    store.record_build(&record(4, "b", "b/4.toml")).unwrap();
    assert_eq!(store.highest_number().unwrap(), Some(4));
    assert_eq!(store.editions_from("b/3.toml").unwrap()[0].number, 3);

    store
        .record_sent(&record(3, "a", "b/3.toml"), "2026-02-01T00:00:00Z")
        .unwrap();
    assert!(store.editions_from("b/3.toml").unwrap()[0].is_sent());
    // A later build of other content under a sent number does not overwrite it.
    store.record_build(&record(3, "zzz", "other.toml")).unwrap();
    let sent = store.edition(3).unwrap().unwrap();
    assert_eq!(
        (sent.content_hash.as_str(), sent.source.as_str()),
        ("a", "b/3.toml")
    );
    assert!(sent.is_sent());
}

#[test]
fn builds_and_sends_are_recorded() {
    on_each_backend(|f| builds_and_sends(f.open().as_ref()));
}

#[test]
fn secrets_are_made_once_and_kept() {
    on_each_backend(|f| {
        let first = f.open().secret("tokens").unwrap();
        assert_eq!(first.len(), 32);
        // Made once, the same through another connection.
        let again = f.open().secret("tokens").unwrap();
        assert_eq!(first, again);
    });
}
