//! The PostgreSQL backend's own tests: opening, connections, and the marks it applies at
//! once. What the store does on both backends is tested once, in `store/conformance/`.

use postgres::{Client, NoTls};

use crate::error::Error;
use crate::store::conformance::{NO_PG, Scratch, job_for_all};
use crate::store::{EntryState, Mark};

use super::bridge::Commits;
use super::claims::{MARK, claimable, effective_marks};
use super::{open, quote_ident, split_schema};

macro_rules! scratch {
    () => {
        match Scratch::new() {
            Some(scratch) => scratch,
            None => {
                crate::testing::skip(NO_PG);
                return;
            }
        }
    };
}

#[test]
fn opening_the_same_new_schema_twice_at_once_works() {
    let scratch = scratch!();
    let url = scratch.url();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                open(&url, "MAILOUT_TEST_PG_PASSWORD").map(|s| s.highest_number().unwrap())
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), None);
    }
    // Secrets made once agree across connections: see `conformance`.
    assert!(scratch.open().location().contains(&scratch.schema));
}

#[test]
fn a_lost_connection_is_reported_and_the_next_call_reconnects() {
    let scratch = scratch!();
    let app = scratch.schema.clone();
    let store = open(
        &format!("{}&application_name={app}", scratch.url()),
        "MAILOUT_TEST_PG_PASSWORD",
    )
    .unwrap();
    store.highest_number().unwrap();
    let mut admin = Client::connect(&scratch.base, NoTls).unwrap();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap();
    assert_eq!(killed.len(), 1);
    let error = store.highest_number().unwrap_err();
    assert!(matches!(error, Error::StoreUnreachable { .. }), "{error:?}");
    assert_eq!(store.highest_number().unwrap(), None);
}

#[test]
fn an_unreachable_server_is_reported_as_such() {
    let error = open(
        "postgres://nobody:secret@127.0.0.1:1/none",
        "MAILOUT_TEST_PG_PASSWORD",
    )
    .err()
    .unwrap();
    assert!(matches!(error, Error::StoreUnreachable { .. }), "{error:?}");
    assert!(!error.to_string().contains("secret"));
    let error = open("postgres://u@h/db?schema=", "X").err().unwrap();
    assert!(matches!(error, Error::Usage(_)), "{error:?}");
    assert_eq!(
        split_schema("postgres://u@h/db?sslmode=disable&schema=a%20b&x=1").unwrap(),
        (
            "postgres://u@h/db?sslmode=disable&x=1".to_string(),
            Some("a b".to_string())
        )
    );
}

#[test]
fn marks_apply_as_one_by_one_updates_would() {
    let m = |seq, state| Mark {
        job: 1,
        seq,
        state,
        attempts: 0,
        message_id: String::new(),
        reply: format!("{seq} {state:?}"),
        at: String::new(),
    };
    let marks = [
        m(1, EntryState::Pending),
        m(2, EntryState::Sent),
        m(1, EntryState::Failed),
        m(2, EntryState::Failed),
        m(1, EntryState::Sent),
    ];
    let effective: Vec<&str> = effective_marks(&marks)
        .iter()
        .map(|m| m.reply.as_str())
        .collect();
    assert_eq!(effective, ["1 Failed", "2 Sent"]);
}

#[test]
fn a_new_jobs_claims_read_its_rows_in_key_order_and_its_results_touch_no_index() {
    let scratch = scratch!();
    let store = scratch.open();
    let job = job_for_all(store.as_ref(), 2000);
    let mut admin = Client::connect(&scratch.base, NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "SET search_path TO {};
             SET plan_cache_mode = force_generic_plan;
             PREPARE claim (bigint, bigint, bigint) AS {}",
            quote_ident(&scratch.schema),
            claimable()
        ))
        .unwrap();

    // The plan a claim gets for any job and cursor once its statement is cached: in key
    // order from the cursor, never every row after it read and sorted.
    let plan: Vec<String> = admin
        .query(&format!("EXPLAIN EXECUTE claim({}, 0, 1000)", job.id), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("journal_pkey"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");

    // A result, as the store writes it: a heap-only update, so no index gains an entry (as
    // long as the row's page has room for its new version, as these first few have).
    let rows = store.pending(job.id, 0, 8).unwrap();
    let jobs: Vec<i64> = rows.iter().map(|e| e.job).collect();
    let seqs: Vec<i64> = rows.iter().map(|e| e.seq).collect();
    let states = vec!["sent"; rows.len()];
    let attempts = vec![1i64; rows.len()];
    let ids: Vec<String> = rows
        .iter()
        .map(|e| e.message_id.clone().unwrap_or_default())
        .collect();
    let replies = vec!["250 2.0.0 Ok: queued"; rows.len()];
    let ats = vec!["2026-12-01T00:00:00Z"; rows.len()];
    let mut tx = admin.transaction().unwrap();
    let marked = tx
        .execute(
            MARK,
            &[&jobs, &seqs, &states, &attempts, &ids, &replies, &ats],
        )
        .unwrap();
    let counts = tx
        .query_one(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables
             WHERE relid = 'journal'::regclass",
            &[],
        )
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(marked, 8);
    assert_eq!((counts.get::<_, i64>(0), counts.get::<_, i64>(1)), (8, 8));
    assert_eq!(store.job(job.id).unwrap().unwrap().progress.sent, 8);
}

#[test]
fn a_claim_never_waits_on_its_jobs_row() {
    // A top-up, the shared rate and finishing a job lock the job's row; a claim that also
    // took it deadlocked with them (found with two workers in `benches/scale`).
    let scratch = scratch!();
    let store = scratch.open();
    let job = job_for_all(store.as_ref(), 10);
    let worker = store.register_worker("w", 1, 60).unwrap();
    let mut admin = Client::connect(&scratch.base, NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "SET search_path TO {}",
            quote_ident(&scratch.schema)
        ))
        .unwrap();
    let mut holding = admin.transaction().unwrap();
    holding
        .execute("SELECT id FROM jobs WHERE id = $1 FOR UPDATE", &[&job.id])
        .unwrap();

    let (done, claimed) = std::sync::mpsc::channel();
    let claimer = scratch.open();
    let id = job.id;
    std::thread::spawn(move || {
        let _ = done.send(claimer.claim(id, worker, 0, 4).map(|rows| rows.len()));
    });
    // A deadline for the failure, not a wait for success: the claim answers at once.
    let answer = claimed.recv_timeout(std::time::Duration::from_secs(60));
    holding.commit().unwrap();
    assert_eq!(
        answer.expect("the claim waited on the job's row").unwrap(),
        4
    );
}

/// The `synchronous_commit` a call made as `commits` says runs under, on `store`.
fn commit_setting(store: &super::PgStore, commits: Commits) -> String {
    setting_of(store, commits, "synchronous_commit")
}

/// The setting `name` a call made as `commits` says runs under, on `store`.
fn setting_of(store: &super::PgStore, commits: Commits, name: &'static str) -> String {
    store
        .call_with("could not read the setting", commits, move |db| {
            Ok(db
                .query_one("SELECT current_setting($1)", &[&name])?
                .try_get(0)?)
        })
        .unwrap()
}

#[test]
fn results_commit_as_the_durability_says_and_nothing_else_changes_how_commits_wait() {
    let scratch = scratch!();
    let store = super::PgStore::open(&scratch.url(), "MAILOUT_TEST_PG_PASSWORD").unwrap();
    let setting = |commits| commit_setting(&store, commits);
    // Every other call finds the server's setting, whatever ran on the connection before
    // it; the scratch server's is "on".
    assert_eq!(setting(Commits::Server), "on");
    assert_eq!(setting(Commits::Quick), "off");
    assert_eq!(setting(Commits::Quick), "off");
    assert_eq!(setting(Commits::Server), "on");
    assert_eq!(setting(Commits::Quick), "off");
    assert_eq!(setting(Commits::Durable), "on");
    // Under "full", results are durable even where the connection's own default is not.
    let lax = super::PgStore::open(
        &format!("{}&options=-c%20synchronous_commit%3Doff", scratch.url()),
        "MAILOUT_TEST_PG_PASSWORD",
    )
    .unwrap();
    let lax_setting = |commits| commit_setting(&lax, commits);
    assert_eq!(lax_setting(Commits::Server), "off");
    assert_eq!(lax_setting(Commits::Durable), "on");
    assert_eq!(lax_setting(Commits::Server), "off");
}

#[test]
fn results_are_written_by_a_plan_made_once_and_nothing_else_changes_how_statements_are_planned() {
    let scratch = scratch!();
    let store = super::PgStore::open(&scratch.url(), "MAILOUT_TEST_PG_PASSWORD").unwrap();
    let planning = |commits| setting_of(&store, commits, "plan_cache_mode");
    assert_eq!(planning(Commits::Server), "auto");
    assert_eq!(planning(Commits::Quick), "force_generic_plan");
    assert_eq!(planning(Commits::Server), "auto");
    assert_eq!(planning(Commits::Durable), "force_generic_plan");
    assert_eq!(planning(Commits::Server), "auto");
    // The plan it then uses for a small group of a big job's results finds each row by
    // the primary key (a job's rows are counted once they are in: `count_again`).
    job_for_all(&store, 20_000);
    let plan = store
        .call_with("could not explain", Commits::Quick, |db| {
            db.c.batch_execute(&format!(
                "PREPARE results (bigint[], bigint[], text[], bigint[], text[], text[], text[]) AS {MARK}"
            ))?;
            let rows = db.query(
                "EXPLAIN EXECUTE results('{1,1}', '{1,2}', '{sent,sent}', '{1,1}', '{a,b}', '{x,y}', '{t,t}')",
                &[],
            )?;
            db.c.batch_execute("DEALLOCATE results")?;
            rows.iter()
                .map(|r| r.try_get::<_, String>(0).map_err(Into::into))
                .collect::<super::bridge::Step<Vec<String>>>()
        })
        .unwrap()
        .join("\n");
    assert!(plan.contains("journal_pkey"), "{plan}");
}
