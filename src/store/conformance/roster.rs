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
                all: false,
                branches: vec!["WALES".into(), "île".into()],
                employers: vec![],
            },
            Selection {
                all: false,
                branches: vec!["leeds".into()],
                employers: vec!["nps".into()],
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
