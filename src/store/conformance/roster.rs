//! Members, selections, counts and suppressions: text ordered and compared alike on every
//! backend.

use super::{keyed, member, on_each_backend, test_key};
use crate::store::{ImportCounts, Roster};
use crate::store::{Member, Selection};

/// Members whose addresses, branches and employers differ in case, accents and
/// punctuation, so that ordering and comparing text show.
fn roster() -> Vec<Member> {
    vec![
        member(
            "zed@x.example",
            Some("Wales"),
            Some("NPS"),
            &[("grade", "PO")],
        ),
        member(
            "amy@x.example",
            Some("wales"),
            Some("CRC"),
            &[("Zeta", "1")],
        ),
        member("Bob@x.example", Some("WALES"), None, &[("alpha", "a")]),
        member("bob@x.example", Some("London"), Some("nps"), &[]),
        member(
            "eve@x.example",
            Some("Île"),
            Some("Cafcass"),
            &[("ärea", "n")],
        ),
        member(
            "ève@x.example",
            Some("île"),
            Some("cafcass"),
            &[("grade", "SPO")],
        ),
        member("_x@x.example", Some("london"), Some("NPS"), &[]),
        member("~y@x.example", None, None, &[]),
        // Repeated in the same file: the last wins.
        member(
            "amy@x.example",
            Some("Leeds"),
            Some("CRC"),
            &[("Zeta", "2")],
        ),
    ]
}

pub(super) fn fill(store: &dyn Roster) -> Vec<ImportCounts> {
    let first = store.import_members(&mut keyed(roster())).unwrap();
    store
        .suppress(
            "eve@x.example",
            "manual",
            Some("asked"),
            "2026-01-02T00:00:00Z",
        )
        .unwrap();
    store
        .suppress(
            "nobody@x.example",
            "hard-bounce",
            None,
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
    let again = vec![
        member(
            "zed@x.example",
            Some("Wales"),
            Some("NPS"),
            &[("grade", "SPO")],
        ),
        member(
            "zed@x.example",
            Some("Wales"),
            Some("NPS"),
            &[("grade", "PSO")],
        ),
        member("new@x.example", Some("Leeds"), Some("NPS"), &[]),
        member("new@x.example", Some("LEEDS"), Some("NPS"), &[]),
    ];
    let second = store.import_members(&mut keyed(again)).unwrap();
    vec![first, second]
}

#[test]
fn members_and_counts_order_and_compare_text_alike() {
    on_each_backend(|f| {
        let store = f.open();
        let store: &dyn Roster = store.as_ref();
        let imports = fill(store);
        let mut seen = vec![
            format!("{imports:?}"),
            format!("{:?}", store.members(None).unwrap()),
            format!("{:?}", store.counts().unwrap()),
            format!("{:?}", store.attribute_names().unwrap()),
            format!("{:?}", store.suppressions().unwrap()),
        ];
        for selection in [
            Selection {
                all: true,
                ..Selection::default()
            },
            Selection::default(),
            Selection {
                branches: vec!["WALES".into(), "île".into()],
                ..Selection::default()
            },
            Selection {
                branches: vec!["leeds".into()],
                employers: vec!["nps".into()],
                ..Selection::default()
            },
        ] {
            seen.push(format!("{:?}", store.members(Some(&selection)).unwrap()));
            seen.push(format!("{:?}", store.count_selected(&selection).unwrap()));
        }
        let key = crate::token::legacy_key("bob@x.example");
        seen.push(format!("{:?}", store.members_by_legacy_key(&key).unwrap()));
        let key = test_key("bob@x.example");
        let by_lookup = store.members_by_lookup_key(&key).unwrap();
        assert_eq!(by_lookup.len(), 2);
        seen.push(format!("{by_lookup:?}"));
        assert!(
            !store
                .suppress("eve@x.example", "manual", None, "x")
                .unwrap()
        );
        seen
    });
}

#[test]
fn every_status_change_is_history_and_erasure_leaves_only_a_hash() {
    on_each_backend(|f| {
        let store = f.open();
        let mut two = keyed(vec![
            member("ann@x.example", Some("London"), Some("NPS"), &[]),
            member("bob@x.example", Some("Wales"), Some("CRC"), &[]),
        ])
        .map(|mut k| {
            k.origin = Some("members.csv".into());
            k
        });
        store.import_members(&mut two).unwrap();
        // Importing again adds no history: nothing changed in their mail status.
        store
            .import_members(&mut keyed(vec![member(
                "ann@x.example",
                Some("London"),
                Some("NPS"),
                &[],
            )]))
            .unwrap();
        assert!(
            store
                .suppress(
                    "ann@x.example",
                    "unsubscribed",
                    Some("mailto"),
                    "2026-02-01T00:00:00Z"
                )
                .unwrap()
        );
        assert!(
            !store
                .suppress("ann@x.example", "manual", None, "2026-02-02T00:00:00Z")
                .unwrap()
        );
        let lifted = crate::store::MemberEvent {
            email: "ann@x.example".into(),
            at: "2026-02-03T00:00:00Z".into(),
            change: "resubscribed".into(),
            source: "officer, on the member's word".into(),
            evidence: Some("letter of 2 Feb".into()),
        };
        assert!(
            store
                .unsuppress("ann@x.example", &lifted)
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .unsuppress("ann@x.example", &lifted)
                .unwrap()
                .is_none()
        );
        let history: Vec<(String, String, Option<String>)> = store
            .member_events("ann@x.example")
            .unwrap()
            .into_iter()
            .map(|e| (e.change, e.source, e.evidence))
            .collect();
        assert_eq!(
            history,
            [
                ("added".into(), "import".into(), Some("members.csv".into())),
                (
                    "unsubscribed".into(),
                    "mailto".into(),
                    Some("unsubscribed: mailto".into())
                ),
                (
                    "resubscribed".into(),
                    "officer, on the member's word".into(),
                    Some("letter of 2 Feb".into())
                ),
            ]
        );

        // Bob was sent a job, bounced, and asks to be erased.
        let job = store
            .create_job(
                &super::job_spec(4),
                &Selection {
                    all: true,
                    ..Selection::default()
                },
            )
            .unwrap();
        store
            .add_bounce(&crate::store::BounceEvent {
                email: "bob@x.example".into(),
                at: "2026-02-04T00:00:00Z".into(),
                reason: "mailbox-full".into(),
                consequence: "soft".into(),
                job: Some(job.id),
                evidence: "452 bob@x.example full".into(),
            })
            .unwrap();
        let erased = store
            .erase_member(
                "bob@x.example",
                "ab12cd34ef56ab12cd34",
                "2026-02-05T00:00:00Z",
            )
            .unwrap();
        assert_eq!(
            (erased.member, erased.journal_rows, erased.records),
            (1, 1, 2),
            "{erased:?}"
        );
        assert!(store.member("bob@x.example").unwrap().is_none());
        assert!(store.member_events("bob@x.example").unwrap().is_empty());
        assert!(store.bounces_for("bob@x.example").unwrap().is_empty());
        assert!(store.entries_for("bob@x.example").unwrap().is_empty());
        let rows = store.pending(job.id, 0, 10).unwrap();
        assert_eq!(rows.len(), 2, "the job still counts them");
        let gone = rows
            .iter()
            .find(|e| e.member.email.starts_with("erased:"))
            .unwrap();
        assert_eq!(
            (gone.member.name.as_deref(), gone.member.branch.as_deref()),
            (None, None)
        );
        assert_eq!(store.erased().unwrap(), ["ab12cd34ef56ab12cd34"]);
    });
}
