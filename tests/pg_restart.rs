//! PostgreSQL stopped and started again in the middle of a send: the worker pauses, waits
//! for the store, reconnects and finishes, with nobody skipped.
//!
//! A test binary of its own: it stops the test cluster that `MAILOUT_TEST_PG` points at,
//! which would break any PostgreSQL test running beside it (cargo runs test binaries one
//! after another). It needs root (to run `pg_ctlcluster`) and reports a skip when it cannot run.

#[path = "cli/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "cli/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use harness::{Backend, Test};
use servers::SmtpSink;

/// The cluster `pg_lsclusters` shows on the port of the database `MAILOUT_TEST_PG` names:
/// (version, name).
fn cluster() -> Option<(String, String)> {
    let config: postgres::Config = harness::pg_url()?.parse().ok()?;
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let out = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(2) == Some(&port.as_str()))
            .then(|| (fields[0].to_string(), fields[1].to_string()))
    })
}

fn pg_ctl(action: &str, (version, name): &(String, String)) {
    let status = Command::new("pg_ctlcluster")
        .args([version.as_str(), name.as_str(), action, "-m", "fast"])
        .stdout(Stdio::null())
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

#[test]
fn a_postgresql_restart_mid_send_pauses_the_worker_which_then_finishes() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    if !servers::running_as_root() {
        harness::skip("restarting PostgreSQL needs root (pg_ctlcluster)");
        return;
    }
    let Some(cluster) = cluster() else {
        harness::skip("no local cluster (pg_lsclusters) serves MAILOUT_TEST_PG's port");
        return;
    };
    const MEMBERS: usize = 6_000;
    const CONCURRENCY: usize = 4;
    let sink = SmtpSink::start();
    // A rate keeps the send going long enough to stop the database under it.
    let t = Test::with_examples()
        .on(backend)
        .with_members(MEMBERS)
        .with_smtp(sink.port, "concurrency = 4\nrate = 1500");
    let mut child = t
        .command()
        .args([
            "send",
            "examples/bulletins/236-pandemic-measures.toml",
            "--to",
            "all",
            "--yes",
            "-q",
        ])
        .env("MAILOUT_LOG", "mailout=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut sent = 0;
    for line in lines.by_ref() {
        if line.unwrap().contains(" sent ") {
            sent += 1;
            if sent == 1_000 {
                break;
            }
        }
    }
    assert_eq!(sent, 1_000, "the send ended before the restart");
    pg_ctl("stop", &cluster);
    let at_stop = sink.messages().len();
    // The worker notices, and waits.
    let waiting = lines
        .by_ref()
        .any(|line| line.unwrap().contains("waiting for the store"));
    let at_wait = sink.messages().len();
    pg_ctl("start", &cluster);
    assert!(
        waiting,
        "the worker never said it was waiting for the store"
    );
    // What was in flight when the database went may finish; nothing more.
    assert!(
        at_wait - at_stop <= CONCURRENCY,
        "{} delivered with the store down",
        at_wait - at_stop
    );
    // Drain stderr so the child never blocks on a full pipe.
    let drain = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        lines
            .map_while(Result::ok)
            .filter(|l| !l.contains(" sent "))
            .inspect(|l| eprintln!("{:.1}s {l}", start.elapsed().as_secs_f64()))
            .count()
    });
    let out = child.wait_with_output().unwrap();
    drain.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "job 1 (started): {MEMBERS} sent, 0 failed, 0 uncertain, 0 skipped, 0 pending"
        )),
        "{stdout}"
    );
    let messages = sink.messages();
    let mut by_rcpt: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        *by_rcpt.entry(m.rcpt.clone()).or_default() += 1;
    }
    assert_eq!(by_rcpt.len(), MEMBERS, "nobody skipped");
    assert!(
        messages.len() - MEMBERS <= CONCURRENCY,
        "{} duplicates",
        messages.len() - MEMBERS
    );
}
