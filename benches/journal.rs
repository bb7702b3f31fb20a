//! The send journal alone, without SMTP: claims and marks per second on SQLite and (when
//! `MAILOUT_BENCH_PG` holds a URL) PostgreSQL, the way a worker uses it: claim 1,000 rows,
//! mark them in groups of 16 (one group commit per message's data, at 16 connections),
//! under each `[store] durability`. On SQLite each claim comes in turn, in place, and each
//! group is committed in turn; on PostgreSQL the next batch is claimed on a connection of
//! its own while the last one is marked, and groups are committed on as many connections
//! side by side as a worker has committers (`Backend::committers`: two), each taking the
//! next group as soon as its last one is in, as a worker does.
//!
//! `cargo bench --bench journal` (`MAILOUT_BENCH_PG=$(scripts/pg-setup)` for
//! PostgreSQL; ROWS=N to change the 100,000 rows).

use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use mailout::store::{self, Durability, Entry, EntryState, Mark, Member, NewJob, Selection, Store};

fn members(n: usize) -> impl Iterator<Item = Member> {
    (0..n).map(|i| Member {
        email: format!("member{i:07}@members.test"),
        name: Some(format!("Member{i} Surname")),
        branch: Some("London".into()),
        employer: Some("NPS".into()),
        attributes: Default::default(),
    })
}

fn bench(
    name: &str,
    store: &dyn Store,
    claimer: Option<Box<dyn Store>>,
    committers: Vec<Box<dyn Store>>,
    rows: usize,
) {
    let key = mailout::token::TokenKey::new(b"bench".to_vec());
    store
        .import_members(&mut members(rows).map(|m| key.keyed(m)))
        .expect("import members");
    let job = store
        .create_job(
            &NewJob {
                number: 1,
                selectors: "all".into(),
                content_hash: "bench".into(),
                subject: "Benchmark".into(),
                source: "bench.toml".into(),
                transport: "smtp".into(),
                created_at: "2026-11-23T00:00:00Z".into(),
                message_ids: Some(mailout::store::MessageIds {
                    series: "bench".into(),
                    domain: "lists.example.org".into(),
                }),
            },
            &Selection {
                all: true,
                ..Selection::default()
            },
        )
        .expect("create job");
    let worker = store
        .register_worker("bench", std::process::id(), 60)
        .expect("register");
    let start = Instant::now();
    let mut done = 0;
    let mut waiting = 0.0;
    std::thread::scope(|scope| {
        // The next batch comes from the claimer's connection while this one is marked, as
        // a worker on a remote store claims ahead; in place (SQLite), each claim in turn.
        let (ahead, batches) = std::sync::mpsc::sync_channel::<Vec<Entry>>(1);
        let claiming = claimer.map(|claimer| {
            scope.spawn(move || {
                let mut after = 0;
                loop {
                    let claimed = claimer.claim(job.id, worker, after, 1000).expect("claim");
                    after = claimed.last().map_or(after, |e| e.seq);
                    let last = claimed.is_empty();
                    if ahead.send(claimed).is_err() || last {
                        break;
                    }
                }
            })
        });
        // Groups go to the committers side by side: each takes the next as soon as its last
        // one is in. Without committers (SQLite), each group is committed here, in turn.
        let (groups, next_group) = mpsc::sync_channel::<Vec<Mark>>(0);
        let next_group = Arc::new(Mutex::new(next_group));
        let marking: Vec<_> = committers
            .into_iter()
            .map(|committer| {
                let next_group = Arc::clone(&next_group);
                scope.spawn(move || {
                    loop {
                        let group = next_group.lock().expect("groups").recv();
                        match group {
                            Ok(marks) => committer.mark(&marks).expect("mark"),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        let mut after = 0;
        loop {
            let asked = Instant::now();
            let claimed = match &claiming {
                Some(_) => batches.recv().expect("claimer"),
                None => store.claim(job.id, worker, after, 1000).expect("claim"),
            };
            waiting += asked.elapsed().as_secs_f64();
            after = claimed.last().map_or(after, |e| e.seq);
            if claimed.is_empty() {
                break;
            }
            for group in claimed.chunks(16) {
                let marks: Vec<Mark> = group
                    .iter()
                    .map(|e| Mark {
                        job: e.job,
                        seq: e.seq,
                        state: EntryState::Sent,
                        attempts: 1,
                        message_id: e.message_id.clone().unwrap_or_default(),
                        reply: "250 2.0.0 Ok: queued".into(),
                        at: "2026-11-23T00:00:01Z".into(),
                    })
                    .collect();
                if marking.is_empty() {
                    store.mark(&marks).expect("mark");
                } else {
                    groups.send(marks).expect("committers");
                }
            }
            done += claimed.len();
        }
        drop(groups);
        for committer in marking {
            committer.join().expect("committer");
        }
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(done, rows);
    let after = store.job(job.id).expect("job").expect("job");
    assert_eq!(after.progress.sent, rows as u64);
    println!(
        "{name:<22} {rows} rows claimed and marked in {secs:.2} s ({waiting:.2} s waiting for claims): {:.0} claims+marks/s",
        rows as f64 / secs
    );
}

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    for durability in [Durability::Process, Durability::Full] {
        let label = match durability {
            Durability::Process => "process",
            Durability::Full => "full",
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bench.sqlite");
        let sqlite = store::open(&path.to_string_lossy()).expect("open SQLite");
        sqlite.set_durability(durability).expect("durability");
        bench(
            &format!("SQLite, {label}"),
            sqlite.as_ref(),
            None,
            Vec::new(),
            rows,
        );
        match std::env::var("MAILOUT_BENCH_PG") {
            Ok(url) if !url.is_empty() => {
                let schema = format!("bench_{}_{label}", std::process::id());
                let join = if url.contains('?') { '&' } else { '?' };
                let place = format!("{url}{join}schema={schema}");
                let pg = store::open(&place).expect("open PostgreSQL");
                pg.set_durability(durability).expect("durability");
                let claimer = store::open(&place).expect("open PostgreSQL");
                let committers = (0..pg.committers())
                    .map(|_| {
                        let committer = store::open(&place).expect("open PostgreSQL");
                        committer.set_durability(durability).expect("durability");
                        committer
                    })
                    .collect();
                bench(
                    &format!("PostgreSQL, {label}"),
                    pg.as_ref(),
                    Some(claimer),
                    committers,
                    rows,
                );
                drop(pg);
                if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
                    let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
                }
            }
            _ => println!("PostgreSQL  skipped (MAILOUT_BENCH_PG is not set)"),
        }
    }
}
