//! The PostgreSQL backend's own tests: opening, connections, and the marks it applies at
//! once. What the store does on both backends is tested once, in `store/conformance/`.

use postgres::{Client, NoTls};

use crate::error::Error;
use crate::store::conformance::{NO_PG, Scratch};
use crate::store::{EntryState, Mark};

use super::journal::effective_marks;
use super::{open, split_schema};

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
