//! Jobs, claims, leases, the send rate and domain pauses, on every backend.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{job_for_all, job_spec, keyed, member, on_each_backend, sent};
use crate::store::{Durability, Entry, EntryState, Journal, Mark, NewJob, Schedule};
use crate::store::{Member, Selection};

fn snapshot_member(email: &str, branch: &str, employer: &str) -> Member {
    Member {
        email: email.into(),
        name: Some("N".into()),
        branch: Some(branch.into()),
        employer: Some(employer.into()),
        attributes: [("grade".to_string(), "PO".to_string())].into(),
    }
}

#[test]
fn jobs_snapshot_selected_members_and_track_their_rows() {
    on_each_backend(|f| {
        let store = f.open();
        let members = vec![
            snapshot_member("a@x.example", "London", "NPS"),
            snapshot_member("b@x.example", "Wales", "NPS"),
            snapshot_member("c@x.example", "Wales", "CRC"),
            snapshot_member("d@x.example", "Leeds", "Cafcass"),
        ];
        let counts = store.import_members(&mut keyed(members)).unwrap();
        assert_eq!((counts.added, counts.updated), (4, 0));
        assert_eq!(store.attribute_names().unwrap(), ["grade"]);
        store
            .suppress("d@x.example", "manual", None, "2026-01-01T00:00:00Z")
            .unwrap();
        let selection = Selection {
            branches: vec!["wales".into()],
            employers: vec!["cafcass".into(), "nps".into()],
            ..Selection::default()
        };
        assert_eq!(store.count_selected(&selection).unwrap(), 3);
        let spec = NewJob {
            number: 7,
            selectors: "branch:wales,employer:cafcass,employer:nps".into(),
            content_hash: "h".into(),
            subject: "S".into(),
            source: "b.toml".into(),
            transport: "file".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            message_ids: None,
        };
        let job = store.create_job(&spec, &selection).unwrap();
        assert_eq!((job.total, job.progress.pending), (3, 3));
        assert_eq!(
            store.find_job(7, &spec.selectors).unwrap().unwrap().id,
            job.id
        );

        // Suppressed after the job started: its row comes back skipped.
        store
            .suppress("b@x.example", "unsubscribed", None, "2026-01-02T00:00:00Z")
            .unwrap();
        let rows = store.pending(job.id, 0, 10).unwrap();
        let states: Vec<(&str, EntryState)> = rows
            .iter()
            .map(|e| (e.member.email.as_str(), e.state))
            .collect();
        assert_eq!(
            states,
            [
                ("a@x.example", EntryState::Pending),
                ("b@x.example", EntryState::Skipped),
                ("c@x.example", EntryState::Pending)
            ]
        );
        assert_eq!(
            rows[0].member.attributes.get("grade").map(String::as_str),
            Some("PO")
        );
        store
            .mark(&[Mark {
                job: job.id,
                seq: rows[0].seq,
                state: EntryState::Sent,
                attempts: 1,
                message_id: "<7.x@l>".into(),
                reply: "250 ok".into(),
                at: "2026-01-02T00:00:01Z".into(),
            }])
            .unwrap();
        assert_eq!(
            store
                .skip_suppressed(job.id, "2026-01-02T00:00:02Z")
                .unwrap(),
            1
        );
        let progress = store.job(job.id).unwrap().unwrap().progress;
        assert_eq!(
            (progress.sent, progress.skipped, progress.pending),
            (1, 1, 1)
        );
        assert_eq!(store.pending(job.id, rows[0].seq, 10).unwrap().len(), 1);
        let sent = store.entries(job.id, EntryState::Sent).unwrap();
        assert_eq!(sent[0].reply.as_deref(), Some("250 ok"));
        (rows, store.jobs().unwrap())
    });
}

#[test]
fn scheduled_jobs_start_once_and_top_ups_add_only_newcomers_as_a_wave() {
    on_each_backend(|f| {
        let store = f.open();
        let everyone = Selection {
            all: true,
            ..Selection::default()
        };
        let two = vec![
            snapshot_member("a@x.example", "London", "NPS"),
            snapshot_member("b@x.example", "Wales", "NPS"),
        ];
        store.import_members(&mut keyed(two)).unwrap();
        let job = store
            .schedule_job(&job_spec(9), "2026-12-01T08:00:00Z")
            .unwrap();
        assert_eq!(job.schedule, Some(Schedule::Waiting));
        assert_eq!(job.scheduled_for.as_deref(), Some("2026-12-01T08:00:00Z"));
        assert_eq!((job.total, job.is_started()), (0, false));
        assert!(
            store.running_jobs().unwrap().is_empty(),
            "not running before it starts"
        );
        // Late, then released: only the first move of each kind wins.
        assert!(
            store
                .set_schedule(job.id, &[Schedule::Waiting], Schedule::Late, None)
                .unwrap()
        );
        assert!(
            !store
                .set_schedule(job.id, &[Schedule::Waiting], Schedule::Late, None)
                .unwrap()
        );
        assert_eq!(
            store.start_scheduled(job.id, &everyone).unwrap(),
            None,
            "late does not start"
        );
        assert!(
            store
                .set_schedule(job.id, &[Schedule::Late], Schedule::Released, None)
                .unwrap()
        );
        store
            .suppress("b@x.example", "manual", None, "2026-01-01T00:00:00Z")
            .unwrap();
        assert_eq!(store.start_scheduled(job.id, &everyone).unwrap(), Some(1));
        assert_eq!(
            store.start_scheduled(job.id, &everyone).unwrap(),
            None,
            "started once"
        );
        let job = store.job(job.id).unwrap().unwrap();
        assert_eq!((job.total, job.schedule), (1, Some(Schedule::Started)));
        assert_eq!(store.running_jobs().unwrap().len(), 1);
        let left: Vec<_> = store
            .left_out(job.id)
            .unwrap()
            .into_iter()
            .map(|l| (l.email, l.wave))
            .collect();
        assert_eq!(left, [("b@x.example".to_string(), 1)]);

        // b re-subscribed and c joined: a top-up adds both as wave 2, a second adds nobody.
        let back = crate::store::MemberEvent {
            email: "b@x.example".into(),
            at: "2026-01-03T00:00:00Z".into(),
            change: "unsuppressed".into(),
            source: "officer".into(),
            evidence: Some("test".into()),
        };
        store.unsuppress("b@x.example", &back).unwrap();
        let c = vec![snapshot_member("c@x.example", "Leeds", "CRC")];
        store.import_members(&mut keyed(c)).unwrap();
        assert_eq!(store.top_up(job.id, &everyone).unwrap(), (2, 2));
        assert_eq!(store.top_up(job.id, &everyone).unwrap(), (3, 0));
        assert!(
            store.left_out(job.id).unwrap().is_empty(),
            "b is in the job now"
        );
        let waves: Vec<(u32, u64)> = store
            .waves(job.id)
            .unwrap()
            .iter()
            .map(|w| (w.number, w.progress.pending))
            .collect();
        assert_eq!(waves, [(1, 1), (2, 2)]);
        let seqs: HashSet<i64> = store
            .pending(job.id, 0, 10)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs.len(), 3, "every row its own number");

        // A seed copy is claimed once.
        assert!(
            store
                .claim_seed(job.id, "seed@x.example", "<9.a@x>")
                .unwrap()
        );
        assert!(
            !store
                .claim_seed(job.id, "seed@x.example", "<9.a@x>")
                .unwrap()
        );
        store
            .record_seed(
                job.id,
                "seed@x.example",
                "sent",
                "250 ok",
                "2026-12-01T08:00:01Z",
            )
            .unwrap();
        store
            .record_seed_check(
                job.id,
                "seed@x.example",
                "junk",
                Some("Junk"),
                Some("2026-12-01T08:00:03Z"),
                "2026-12-01T09:00:00Z",
            )
            .unwrap();
        let seeds = store.seed_copies(job.id).unwrap();
        assert_eq!(seeds.len(), 1);
        assert_eq!(
            (
                seeds[0].state.as_str(),
                seeds[0].found.as_deref(),
                seeds[0].folder.as_deref()
            ),
            ("sent", Some("junk"), Some("Junk"))
        );

        // Cancelled before it started: finished, and never started after.
        let other = store
            .schedule_job(&job_spec(10), "2026-12-02T08:00:00Z")
            .unwrap();
        store.cancel_job(other.id, "2026-12-01T00:00:00Z").unwrap();
        let other = store.job(other.id).unwrap().unwrap();
        assert_eq!(other.schedule, Some(Schedule::Cancelled));
        assert!(other.finished_at.is_some());
        assert_eq!(store.start_scheduled(other.id, &everyone).unwrap(), None);
    });
}

#[test]
fn workers_claim_disjoint_rows_and_take_over_expired_leases() {
    on_each_backend(|f| {
        let store = f.open();
        let members: Vec<Member> = (0..300)
            .map(|i| member(&format!("m{i:03}@x.example"), Some("B"), None, &[]))
            .collect();
        store.import_members(&mut keyed(members)).unwrap();
        store
            .suppress(
                "m005@x.example",
                "unsubscribed",
                None,
                "2026-01-01T00:00:00Z",
            )
            .unwrap();
        let all = Selection {
            all: true,
            ..Selection::default()
        };
        let job = store.create_job(&job_spec(1), &all).unwrap();
        assert_eq!((job.total, job.progress.pending), (299, 299));
        assert_eq!(store.find_job(1, "all").unwrap().unwrap().id, job.id);
        assert_eq!(store.running_jobs().unwrap().len(), 1);
        store
            .suppress(
                "m010@x.example",
                "unsubscribed",
                None,
                "2026-01-01T00:00:00Z",
            )
            .unwrap();

        // Two workers in two processes claim at once: different rows.
        let w1 = store.register_worker("h1", 1, 60).unwrap();
        let w2 = store.register_worker("h2", 2, 60).unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let claims: Vec<Vec<Entry>> = [w1, w2]
            .into_iter()
            .map(|w| {
                let (place, barrier) = (f.place.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let store = place.open();
                    barrier.wait();
                    store.claim(job.id, w, 0, 100).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let seqs = |rows: &[Entry]| rows.iter().map(|e| e.seq).collect::<HashSet<i64>>();
        assert_eq!(claims[0].len() + claims[1].len(), 200);
        assert!(seqs(&claims[0]).is_disjoint(&seqs(&claims[1])));
        assert!(claims[0].windows(2).all(|w| w[0].seq < w[1].seq));
        let skipped = claims
            .iter()
            .flatten()
            .find(|e| e.member.email == "m010@x.example")
            .unwrap();
        assert_eq!(skipped.state, EntryState::Skipped);

        // A worker with a one-second lease claims the rest, then stops renewing it.
        let brief = store.register_worker("h3", 3, 1).unwrap();
        let held = store.claim(job.id, brief, 0, 1000).unwrap();
        assert_eq!(held.len(), 99);
        assert_eq!(store.workers().unwrap().len(), 3);
        assert!(store.claim(job.id, w1, 0, 100).unwrap().is_empty());
        let started = Instant::now();
        let taken = loop {
            let rows = store.claim(job.id, w1, 0, 1000).unwrap();
            if !rows.is_empty() || started.elapsed() > Duration::from_secs(5) {
                break rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(seqs(&taken), seqs(&held));
        assert!(!store.heartbeat(brief, 99, 0, 60).unwrap());
        assert!(store.heartbeat(w1, 199, 0, 60).unwrap());
        assert_eq!(store.workers().unwrap().len(), 2);

        // Marks: sent; a retry stays pending and claimed; a later mark of a sent row is ignored.
        let mut marks: Vec<Mark> = claims[0].iter().map(sent).collect();
        let retry = Mark {
            state: EntryState::Pending,
            attempts: 1,
            reply: "451 later".into(),
            ..sent(&claims[1][0])
        };
        marks.push(retry.clone());
        marks.push(Mark {
            state: EntryState::Failed,
            ..sent(&claims[0][0])
        });
        for batch in marks.chunks(16) {
            store.mark(batch).unwrap();
        }
        let progress = store.job(job.id).unwrap().unwrap().progress;
        assert_eq!((progress.sent, progress.pending), (100, 199));
        let sent_rows = store.entries(job.id, EntryState::Sent).unwrap();
        assert_eq!(sent_rows[0].reply.as_deref(), Some("250 ok"));
        let pending = store.pending(job.id, retry.seq - 1, 1).unwrap();
        assert_eq!(
            (pending[0].attempts, pending[0].reply.as_deref()),
            (1, Some("451 later"))
        );
        assert_eq!(
            store.entries_for(&claims[0][0].member.email).unwrap().len(),
            1
        );
        // m010 is still pending unless the first worker, whose rows were all marked, had it.
        store
            .suppress("m299@x.example", "manual", None, "2026-01-01T00:00:02Z")
            .unwrap();
        let m010_marked = claims[0].iter().any(|e| e.member.email == "m010@x.example");
        assert_eq!(
            store
                .skip_suppressed(job.id, "2026-01-01T00:00:02Z")
                .unwrap(),
            if m010_marked { 1 } else { 2 }
        );

        // Retiring releases claims at once.
        store.retire_worker(w2).unwrap();
        let released = store.claim(job.id, w1, 0, 1000).unwrap();
        assert_eq!(released.len(), if m010_marked { 100 } else { 99 });
        store.finish_job(job.id, "2026-01-01T00:00:03Z").unwrap();
        assert!(store.running_jobs().unwrap().is_empty());
        assert_eq!(store.jobs().unwrap().len(), 1);
    });
}

#[test]
fn a_reopened_row_is_anyones_while_the_rest_stay_with_their_worker() {
    on_each_backend(|f| {
        let store = f.open();
        let job = job_for_all(store.as_ref(), 10);
        let a = store.register_worker("a", 1, 60).unwrap();
        let b = store.register_worker("b", 2, 60).unwrap();
        let rows = store.claim(job.id, a, 0, 100).unwrap();
        assert_eq!(rows.len(), 10);
        assert!(store.claim(job.id, b, 0, 100).unwrap().is_empty());
        // Each row holds its copy's Message-ID from the start, made as the sender makes it.
        let ids = job_spec(1).message_ids.unwrap();
        for row in &rows {
            assert_eq!(
                row.message_id.as_deref(),
                Some(ids.message_id(1, &row.member.email).as_str())
            );
        }

        // Seven sent, two uncertain, one deferred (still the first worker's).
        let uncertain = |e: &Entry| Mark {
            state: EntryState::Uncertain,
            reply: "no reply after the data".into(),
            ..sent(e)
        };
        let mut marks: Vec<Mark> = rows[..8].iter().map(sent).collect();
        marks[2] = uncertain(&rows[2]);
        marks.push(uncertain(&rows[8]));
        marks.push(Mark {
            state: EntryState::Pending,
            attempts: 1,
            reply: "451 later".into(),
            ..sent(&rows[9])
        });
        store.mark(&marks).unwrap();
        assert_eq!(
            store
                .retry_uncertain(job.id, "2026-01-01T00:00:01Z")
                .unwrap(),
            2
        );

        // Only the reopened rows are free; the deferred one stays with its worker.
        let free = store.claim(job.id, b, 0, 100).unwrap();
        assert_eq!(
            free.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![rows[2].seq, rows[8].seq]
        );
        assert!(store.claim(job.id, a, 0, 100).unwrap().is_empty());
        store.retire_worker(a).unwrap();
        let left = store.claim(job.id, b, 0, 100).unwrap();
        assert_eq!(
            left.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![rows[9].seq]
        );
    });
}

/// The rows' sequence numbers, in order.
fn seqs(rows: &[Entry]) -> Vec<i64> {
    rows.iter().map(|e| e.seq).collect()
}

#[test]
fn a_claim_from_the_start_finds_what_is_left_and_rows_reopened_behind_it() {
    on_each_backend(|f| {
        let store = f.open();
        let job = job_for_all(store.as_ref(), 6);
        let a = store.register_worker("a", 1, 60).unwrap();

        let first = store.claim(job.id, a, 0, 3).unwrap();
        assert_eq!(seqs(&first), [1, 2, 3]);
        let mut marks: Vec<Mark> = first.iter().map(sent).collect();
        marks[1].state = EntryState::Uncertain;
        store.mark(&marks).unwrap();
        // From the start again (a worker's look back): what is left, after the finished
        // rows (the job's claim floor rises past them).
        let rest = store.claim(job.id, a, 0, 10).unwrap();
        assert_eq!(seqs(&rest), [4, 5, 6]);
        store
            .mark(&rest.iter().map(sent).collect::<Vec<_>>())
            .unwrap();
        assert!(store.claim(job.id, a, 0, 10).unwrap().is_empty());
        assert!(store.claim(job.id, a, 6, 10).unwrap().is_empty());

        // A row reopened behind every claim so far is found from the start.
        assert_eq!(
            store
                .retry_uncertain(job.id, "2026-01-01T00:00:02Z")
                .unwrap(),
            1
        );
        assert_eq!(seqs(&store.claim(job.id, a, 0, 10).unwrap()), [2]);
        (seqs(&first), seqs(&rest))
    });
}

#[test]
fn a_claim_from_the_start_stays_below_a_row_another_worker_holds() {
    on_each_backend(|f| {
        let store = f.open();
        let job = job_for_all(store.as_ref(), 6);
        let a = store.register_worker("a", 1, 60).unwrap();
        let b = store.register_worker("b", 2, 60).unwrap();

        assert_eq!(seqs(&store.claim(job.id, b, 0, 1).unwrap()), [1]);
        let rest = store.claim(job.id, a, 0, 10).unwrap();
        assert_eq!(seqs(&rest), [2, 3, 4, 5, 6]);
        store
            .mark(&rest.iter().map(sent).collect::<Vec<_>>())
            .unwrap();
        // Everything after the held row is done; the held row is still pending.
        assert!(store.claim(job.id, a, 0, 10).unwrap().is_empty());
        store.retire_worker(b).unwrap();
        let left = store.claim(job.id, a, 0, 10).unwrap();
        assert_eq!(seqs(&left), [1]);
        seqs(&left)
    });
}

#[test]
fn send_slots_are_spaced_and_domain_pauses_keep_the_longest() {
    on_each_backend(|f| {
        let store = f.open();
        let store: &dyn Journal = store.as_ref();
        let job = store
            .create_job(&job_spec(2), &Selection::default())
            .unwrap();
        let first = store.reserve_sends(job.id, 10, 5).unwrap();
        let second = store.reserve_sends(job.id, 10, 5).unwrap();
        let third = store.reserve_sends(job.id, 10, 10).unwrap();
        assert!(first < Duration::from_millis(50), "{first:?}");
        assert!(
            second > Duration::from_millis(400) && second <= Duration::from_millis(500),
            "{second:?}"
        );
        assert!(
            third > Duration::from_millis(900) && third <= Duration::from_millis(1000),
            "{third:?}"
        );
        assert!(store.reserve_sends(job.id + 1000, 10, 1).is_err());
        store
            .pause_domain(job.id, "b.example", Duration::from_secs(60))
            .unwrap();
        store
            .pause_domain(job.id, "b.example", Duration::from_secs(5))
            .unwrap();
        store
            .pause_domain(job.id, "a.example", Duration::MAX)
            .unwrap();
        let paused = store.paused_domains(job.id).unwrap();
        assert_eq!(paused[0].0, "a.example");
        assert_eq!(paused[1].0, "b.example");
        assert!(paused[1].1 > Duration::from_secs(58), "{paused:?}");
    });
}

#[test]
fn results_are_kept_under_either_durability() {
    on_each_backend(|f| {
        let store = f.open();
        let job = job_for_all(store.as_ref(), 4);
        let rows = store.pending(job.id, 0, 10).unwrap();
        // Results marked under each durability in turn, then read back.
        for (durability, row) in [Durability::Full, Durability::Process, Durability::Full]
            .into_iter()
            .zip(&rows)
        {
            store.set_durability(durability).unwrap();
            store.mark(&[sent(row)]).unwrap();
        }
        let progress = store.job(job.id).unwrap().unwrap().progress;
        assert_eq!((progress.sent, progress.pending), (3, 1));
        (progress.sent, progress.pending)
    });
}

#[test]
fn only_a_commit_that_waits_for_nothing_is_quick() {
    // A send commits on its own thread only where a commit neither syncs the disk nor
    // crosses the network: SQLite at `process`.
    for fixture in super::backends() {
        let store = fixture.open();
        let quick = [Durability::Process, Durability::Full].map(|durability| {
            store.set_durability(durability).unwrap();
            store.commits_quickly()
        });
        let expected = match fixture.place.backend() {
            "SQLite" => [true, false],
            _ => [false, false],
        };
        assert_eq!(quick, expected, "{}", fixture.place.backend());
    }
}

#[test]
fn members_at_skipped_domains_are_left_out_with_their_reason() {
    on_each_backend(|f| {
        let store = f.open();
        let people = [
            "a@justice.gov.uk",
            "b@probation.justice.gov.uk",
            "c@home.example",
            "d@justice.gov.uk.evil.example",
            "e@notjustice.gov.uk",
        ]
        .map(|e| snapshot_member(e, "London", "NPS"))
        .to_vec();
        store.import_members(&mut keyed(people)).unwrap();
        store
            .suppress("a@justice.gov.uk", "manual", None, "2026-01-01T00:00:00Z")
            .unwrap();
        let selection = Selection {
            all: true,
            skip_domains: vec!["justice.gov.uk".into()],
            ..Selection::default()
        };
        assert_eq!(store.count_selected(&selection).unwrap(), 3);
        let job = store.create_job(&job_spec(11), &selection).unwrap();
        let mut sent: Vec<String> = store
            .pending(job.id, 0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.member.email)
            .collect();
        sent.sort();
        assert_eq!(
            sent,
            [
                "c@home.example",
                "d@justice.gov.uk.evil.example",
                "e@notjustice.gov.uk"
            ]
        );
        let left: Vec<(String, String)> = store
            .left_out(job.id)
            .unwrap()
            .into_iter()
            .map(|l| (l.email, l.reason))
            .collect();
        assert_eq!(
            left,
            [
                ("a@justice.gov.uk".to_string(), "manual".to_string()),
                (
                    "b@probation.justice.gov.uk".to_string(),
                    "employer-domain".to_string()
                ),
            ]
        );
        // An optional list: who opted out is left out of a send to it, and only of that.
        let opt_out = crate::store::MemberEvent {
            email: "c@home.example".into(),
            at: "2026-01-02T00:00:00Z".into(),
            change: "list-opt-out".into(),
            source: "preferences page".into(),
            evidence: Some("list `reps`".into()),
        };
        assert!(
            store
                .set_list_choice("c@home.example", "reps", false, &opt_out)
                .unwrap()
        );
        assert!(
            !store
                .set_list_choice("c@home.example", "reps", false, &opt_out)
                .unwrap()
        );
        assert_eq!(store.list_optouts("c@home.example").unwrap(), ["reps"]);
        let to_reps = Selection {
            all: true,
            optional_list: Some("reps".into()),
            ..Selection::default()
        };
        assert_eq!(store.count_selected(&to_reps).unwrap(), 3);
        let reps = store.create_job(&job_spec(12), &to_reps).unwrap();
        let reasons: Vec<(String, String)> = store
            .left_out(reps.id)
            .unwrap()
            .into_iter()
            .map(|l| (l.email, l.reason))
            .collect();
        assert!(
            reasons.contains(&("c@home.example".to_string(), "opted-out".to_string())),
            "{reasons:?}"
        );
        let back = crate::store::MemberEvent {
            change: "list-opt-in".into(),
            ..opt_out.clone()
        };
        assert!(
            store
                .set_list_choice("c@home.example", "reps", true, &back)
                .unwrap()
        );
        assert!(store.list_optouts("c@home.example").unwrap().is_empty());
        assert_eq!(
            store.member_events("c@home.example").unwrap().len(),
            3,
            "added, out, in"
        );

        // A newcomer at the domain, topped up: left out too.
        store
            .import_members(&mut keyed(vec![snapshot_member(
                "f@justice.gov.uk",
                "Wales",
                "NPS",
            )]))
            .unwrap();
        assert_eq!(store.top_up(job.id, &selection).unwrap(), (2, 0));
        assert_eq!(store.left_out(job.id).unwrap().len(), 3);
    });
}

#[test]
fn results_handed_to_the_stores_thread_are_in_once_the_handover_completes() {
    // A server commits a send's results on two connections side by side, each handed
    // over without blocking the send's thread; SQLite commits them one at a time, in the
    // caller's thread.
    on_each_backend(|f| {
        let store = f.open();
        let job = job_for_all(store.as_ref(), 4);
        let rows = store.pending(job.id, 0, 10).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut handed = Vec::new();
        for (durability, row) in [Durability::Process, Durability::Full]
            .into_iter()
            .zip(&rows)
        {
            store.set_durability(durability).unwrap();
            match store.mark_soon(&[sent(row)]) {
                Some(pending) => {
                    runtime.block_on(pending).unwrap();
                    handed.push(true);
                }
                None => {
                    store.mark(&[sent(row)]).unwrap();
                    handed.push(false);
                }
            }
        }
        let expected = match f.place.backend() {
            "SQLite" => (vec![false, false], 1),
            _ => (vec![true, true], 2),
        };
        assert_eq!((handed, store.committers()), expected);
        let progress = store.job(job.id).unwrap().unwrap().progress;
        (progress.sent, progress.pending)
    });
}
