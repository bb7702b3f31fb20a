//! The archive and its search (what a query finds, the section a hit names, its snippet), on
//! every backend.

use std::time::Duration;

use super::on_each_backend;
use crate::error::Error;
use crate::store::{Archive, Archived, NewAttachment, NewMessage};

pub(super) fn message(n: u32, subject: &str, sections: &[(&str, &str)], text: &str) -> NewMessage {
    NewMessage {
        message_id: Some(format!("m{n}@x.example")),
        content_hash: format!("hash{n}"),
        date: Some(format!("2026-01-{:02}T00:00:00Z", n % 28 + 1)),
        sender: Some("Branch Secretary <sec@x.example>".into()),
        recipients: Some("all@x.example".into()),
        subject: Some(subject.into()),
        bulletin: (!sections.is_empty()).then_some(n),
        flagged: None,
        size: 100,
        raw_zstd: vec![n as u8; 10],
        folder: None,
        copy: None,
        text: Some(text.into()),
        sections: sections
            .iter()
            .map(|(h, b)| (Some(h.to_string()), b.to_string()))
            .collect(),
        attachments: vec![NewAttachment {
            hash: format!("att{}", n % 2),
            filename: Some("a.pdf".into()),
            content_id: None,
            content_type: "application/pdf".into(),
            size: 3,
            data_zstd: vec![1, 2, 3],
        }],
        source: "test".into(),
    }
}

pub(super) fn archive() -> Vec<NewMessage> {
    let mut duplicate = message(1, "again", &[], "x");
    duplicate.content_hash = "other".into();
    let mut same_bytes = message(99, "again", &[], "x");
    same_bytes.message_id = None;
    same_bytes.content_hash = "hash2".into();
    vec![
        message(
            1,
            "Pay rise agreed",
            &[
                ("Pay", "The pay rise was agreed after long negotiations."),
                ("Ballot", "A strike ballot opens on Monday."),
            ],
            "",
        ),
        message(
            2,
            "Strike ballot",
            &[
                ("Ballot", "Vote yes in the strike ballot."),
                ("Café", "Meet at the café near the office."),
            ],
            "",
        ),
        message(
            3,
            "Newsletter",
            &[],
            "Pay talks continue; no rise yet. Negotiators meet in the cafe.",
        ),
        message(
            4,
            "Holiday rota",
            &[],
            "The rota for the holiday is attached.",
        ),
        duplicate,
        same_bytes,
    ]
}

fn hit_ids(store: &dyn Archive, query: &str) -> Vec<i64> {
    let query = crate::search::query::parse(query).unwrap();
    let mut ids: Vec<i64> = store
        .archive_search(&query, 10, Duration::from_secs(5))
        .unwrap()
        .iter()
        .map(|(e, _)| e.id)
        .collect();
    ids.sort();
    ids
}

const QUERIES: &[&str] = &[
    "pay",
    "\"pay rise\"",
    "pay NOT rise",
    "pay -rise",
    "strike OR holiday",
    "negotiat*",
    "cafe",
    "CAFÉ",
    "subject:ballot",
    "from:branch",
    "(strike OR rota) AND ballot",
    "sec",
    // Words in two sections of one bulletin.
    "vote office",
    "\"pay rise\"*",
];

/// Queries whose hits rank in the same order on both backends: a word in a subject weighs
/// more than the same word in a body. (Hits on different words, as for `strike OR holiday`,
/// do not: FTS5's bm25 and PostgreSQL's `ts_rank` weigh a word found twice differently.)
const RANKED: &[&str] = &["pay", "rise"];

/// The ids `query` finds, best first.
fn ranked_ids(store: &dyn Archive, query: &str) -> Vec<i64> {
    let query = crate::search::query::parse(query).unwrap();
    let found = store
        .archive_search(&query, 10, Duration::from_secs(5))
        .unwrap();
    assert!(
        found.windows(2).all(|w| w[0].1 <= w[1].1),
        "hits come best (lowest rank) first: {found:?}"
    );
    found.iter().map(|(e, _)| e.id).collect()
}

/// What every query finds, for comparing backends.
pub(super) fn all_hits(store: &dyn Archive) -> Vec<(&'static str, Vec<i64>)> {
    QUERIES.iter().map(|q| (*q, hit_ids(store, q))).collect()
}

#[test]
fn archive_and_search_find_the_same_with_the_same_snippets() {
    on_each_backend(|f| {
        let store = f.open();
        let added = store.archive_add(&archive()).unwrap();
        assert_eq!(added[4], Archived::Duplicate(1));
        assert_eq!(added[5], Archived::Duplicate(2));
        assert!(
            store
                .archive_add(&archive())
                .unwrap()
                .iter()
                .all(|a| matches!(a, Archived::Duplicate(_)))
        );
        assert_eq!(store.highest_number().unwrap(), Some(2));
        // The hit names its section, and the snippet is the same from either store.
        let hits =
            crate::archive::search::search(store.as_ref(), "\"pay rise\"", 10, &Default::default())
                .unwrap();
        assert_eq!(hits[0].section, Some((1, Some("Pay".into()))));
        assert_eq!(
            hits[0].snippet,
            "The [pay rise] was agreed after long negotiations."
        );
        assert!(hits[0].rank < 0.0);
        assert_eq!(
            crate::archive::search::search(store.as_ref(), "pay", 1, &Default::default())
                .unwrap()
                .len(),
            1
        );
        let mut raw = Vec::new();
        store
            .archive_raw(&mut |id, bytes| {
                raw.push((id, bytes.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(raw.len(), 4);
        // The callback may use the store.
        let mut subjects = Vec::new();
        store
            .archive_raw(&mut |id, _| {
                subjects.push(store.archive_message(id)?.and_then(|m| m.entry.subject));
                Ok(())
            })
            .unwrap();
        assert_eq!(subjects.len(), 4);
        // A failing callback stops the reading, and the store goes on.
        let stop = store.archive_raw(&mut |_, _| Err(Error::Usage("stop".into())));
        assert!(matches!(stop, Err(Error::Usage(_))));
        store.set_imap_state("INBOX", 7, 42).unwrap();
        assert_eq!(store.imap_state("INBOX").unwrap(), Some((7, 42)));
        (
            added,
            store.archive_list().unwrap(),
            store.archive_message(1).unwrap(),
            store.archive_bulletin(2).unwrap(),
            store.archive_by_message_id("m3@x.example").unwrap(),
            store.archive_attachment("att1").unwrap(),
            all_hits(store.as_ref()),
            hits.iter().map(|h| h.snippet.clone()).collect::<Vec<_>>(),
            raw,
            RANKED
                .iter()
                .map(|q| (*q, ranked_ids(store.as_ref(), q)))
                .collect::<Vec<_>>(),
        )
    });
}
