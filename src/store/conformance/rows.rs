//! Rows copied between stores, from SQLite to every backend and back.

use super::archive::{all_hits, archive, message};
use super::roster::fill;
use super::{Fixture, job_spec, keyed, member, on_each_backend, sent};
use crate::store::{Approval, Archived, BounceEvent, EditionRecord, RowCopy, Store, TABLES, Value};
use crate::store::{Member, Selection};

fn copy(from: &dyn RowCopy, to: &dyn RowCopy) {
    for (table, _) in TABLES {
        let mut rows = Vec::new();
        from.export_rows(table, &mut |row| {
            rows.push(row);
            Ok(())
        })
        .unwrap();
        for batch in rows.chunks(50) {
            to.import_rows(table, batch).unwrap();
        }
    }
    to.finish_import().unwrap();
}

fn counts(store: &dyn RowCopy) -> Vec<u64> {
    TABLES
        .iter()
        .map(|(t, _)| store.count_rows(t).unwrap())
        .collect()
}

#[test]
fn rows_copy_from_sqlite_and_back() {
    on_each_backend(|f| {
        let store = f.open();
        let to: &dyn Store = store.as_ref();
        let source = Fixture::sqlite();
        let lite = source.open();
        let lite: &dyn Store = lite.as_ref();
        fill(lite);
        // More than a page of members and of journal rows.
        let many: Vec<Member> = (0..2100)
            .map(|i| member(&format!("p{i:04}@x.example"), Some("B"), None, &[]))
            .collect();
        lite.import_members(&mut keyed(many)).unwrap();
        lite.secret("tokens").unwrap();
        lite.record_build(&EditionRecord {
            number: 2,
            content_hash: "c".into(),
            subject: "S".into(),
            source: "b/2.toml".into(),
            built_at: Some("2026-01-01T00:00:00Z".into()),
            sent_at: None,
        })
        .unwrap();
        let job = lite
            .create_job(
                &job_spec(2),
                &Selection {
                    all: true,
                    ..Selection::default()
                },
            )
            .unwrap();
        assert!(
            lite.claim_seed(job.id, "seed@x.example", "<2.s@x>")
                .unwrap()
        );
        lite.record_seed(
            job.id,
            "seed@x.example",
            "sent",
            "250 ok",
            "2026-01-01T00:00:01Z",
        )
        .unwrap();
        let first = lite.pending(job.id, 0, 1).unwrap();
        lite.mark(&[sent(&first[0])]).unwrap();
        lite.archive_add(&archive()).unwrap();
        lite.set_imap_state("INBOX", 1, 2).unwrap();
        lite.approve(&Approval {
            source: "b.toml".into(),
            name: "Ian Lawrence".into(),
            content_hash: "c0ffee".into(),
            at: "2026-11-23T10:00:00Z".into(),
        })
        .unwrap();
        let bounce = BounceEvent {
            email: "p0001@x.example".into(),
            at: "2026-11-24T10:00:00Z".into(),
            reason: "mailbox-full".into(),
            consequence: "soft".into(),
            job: Some(job.id),
            evidence: "452 4.2.2 full (bounce.eml)".into(),
        };
        lite.add_bounce(&bounce).unwrap();
        lite.erase_member("p0005@x.example", "e1e1", "2026-11-25T10:00:00Z")
            .unwrap();
        let out = crate::store::MemberEvent {
            email: "p0006@x.example".into(),
            at: "2026-11-25T11:00:00Z".into(),
            change: "list-opt-out".into(),
            source: "preferences page".into(),
            evidence: None,
        };
        lite.set_list_choice("p0006@x.example", "reps", false, &out)
            .unwrap();

        copy(lite, to);
        assert_eq!(counts(to), counts(lite));
        assert_eq!(to.bounces_for("p0001@x.example").unwrap(), vec![bounce]);
        assert!(counts(lite).iter().all(|&n| n > 0));
        assert_eq!(to.members(None).unwrap(), lite.members(None).unwrap());
        assert_eq!(to.jobs().unwrap(), lite.jobs().unwrap());
        assert_eq!(to.secret("tokens").unwrap(), lite.secret("tokens").unwrap());
        assert_eq!(
            to.editions_from("b/2.toml").unwrap(),
            lite.editions_from("b/2.toml").unwrap()
        );
        assert_eq!(all_hits(to), all_hits(lite));
        // New ids follow the imported ones.
        let added = to
            .archive_add(&[message(50, "Later", &[], "later")])
            .unwrap();
        assert_eq!(added, [Archived::Added(5)]);
        to.import_members(&mut keyed(vec![member("late@x.example", None, None, &[])]))
            .unwrap();
        let mut ids = Vec::new();
        to.export_rows("members", &mut |row| {
            ids.push(row[0].clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(ids.last(), Some(&Value::Integer(2110)));

        let back = Fixture::sqlite();
        let back = back.open();
        copy(to, back.as_ref());
        assert_eq!(counts(back.as_ref()), counts(to));
        assert_eq!(back.members(None).unwrap(), to.members(None).unwrap());
        assert!(to.count_rows("nope").is_err());
        counts(to)
    });
}
