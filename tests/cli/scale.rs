//! Scale-out (PRODUCT.md §8): several `mailout worker` processes sharing one job, a worker
//! killed mid-run, the overall rate held across workers, and `mailout store migrate`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::harness::{Backend, Test};
use crate::servers::{Rule, Scripted, SmtpSink};

const CRISIS: &str = "examples/bulletins/236-pandemic-measures.toml";
const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

/// Shortens the workers' lease so a killed worker's rows come back quickly.
fn with_lease(t: Test, secs: u32) -> Test {
    let config = t.read("config/mailout.toml");
    assert!(
        config.contains("lease_secs = 60"),
        "the sample config sets the lease"
    );
    t.write(
        "config/mailout.toml",
        &config.replace("lease_secs = 60", &format!("lease_secs = {secs}")),
    )
}

fn spawn_worker(t: &Test, concurrency: u32, debug: bool) -> Child {
    let mut command = t.command();
    command.args([
        "worker",
        "--exit-when-idle",
        "-q",
        "--concurrency",
        &concurrency.to_string(),
    ]);
    if debug {
        command.env("MAILOUT_LOG", "mailout=debug");
    }
    command
        .stdout(Stdio::piped())
        .stderr(if debug { Stdio::piped() } else { Stdio::null() })
        .spawn()
        .expect("start a worker")
}

/// Who received how many copies, and whether each recipient's copies share a Message-ID.
fn tally(messages: &[crate::servers::Dumped]) -> HashMap<String, Vec<String>> {
    let mut by_rcpt: HashMap<String, Vec<String>> = HashMap::new();
    for m in messages {
        by_rcpt
            .entry(m.rcpt.clone())
            .or_default()
            .push(m.header("Message-ID").unwrap_or_default());
    }
    by_rcpt
}

fn enqueue(t: &Test, file: &str) -> String {
    let run = t
        .run(&["send", file, "--to", "all", "--enqueue", "--yes"])
        .success();
    let id = run
        .stdout
        .strip_prefix("job: ")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("`send --enqueue` printed {:?}", run.stdout));
    let jobs = t.run(&["jobs"]).success().stdout;
    assert!(
        jobs.lines().nth(1).is_some_and(|l| l.contains(" running ")),
        "the job waits for workers: {jobs}"
    );
    id
}

crate::on_both! {
    fn three_workers_share_a_job_and_finish_the_rows_of_one_killed_midway(backend) {
        const MEMBERS: usize = 20_000;
        const CONCURRENCY: u32 = 4;
        let sink = SmtpSink::start();
        let t = with_lease(Test::with_examples().on(backend), 3)
            .with_members(MEMBERS)
            .with_smtp(sink.port, "concurrency = 4");
        let job = enqueue(&t, CRISIS);
        assert!(sink.messages().is_empty(), "--enqueue delivers nothing");

        let mut doomed = spawn_worker(&t, CONCURRENCY, true);
        let others = [spawn_worker(&t, CONCURRENCY, false), spawn_worker(&t, CONCURRENCY, false)];
        // Kill one worker with SIGKILL once it has had 1,500 copies accepted: it holds
        // claimed rows it has not sent.
        let mut sent = 0;
        for line in BufReader::new(doomed.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            if line.contains("DEBUG") && line.contains(" sent ") {
                sent += 1;
                if sent == 1_500 {
                    doomed.kill().unwrap();
                    break;
                }
            }
        }
        assert_eq!(sent, 1_500, "the worker finished before it could be killed");
        doomed.wait().unwrap();
        let workers = t.run(&["workers"]).success().stdout;
        assert!(workers.starts_with("WORKER"), "{workers}");
        for other in others {
            let out = other.wait_with_output().unwrap();
            assert!(out.status.success(), "a worker failed");
            assert!(
                String::from_utf8_lossy(&out.stdout).starts_with("worker: "),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }

        let messages = sink.messages();
        let by_rcpt = tally(&messages);
        assert_eq!(by_rcpt.len(), MEMBERS, "every member received it");
        let duplicates = messages.len() - MEMBERS;
        assert!(
            duplicates <= CONCURRENCY as usize,
            "{duplicates} duplicates; at most the killed worker's concurrency"
        );
        for (rcpt, ids) in &by_rcpt {
            assert!(ids.iter().all(|id| id == &ids[0]), "{rcpt}: {ids:?}");
        }
        let shown = t.run(&["job", &job]).success().stdout;
        assert!(
            shown.contains(&format!("recipients: {MEMBERS} ({MEMBERS} sent, 0 failed, 0 uncertain, 0 skipped, 0 pending)")),
            "{shown}"
        );
        // The account of a job three workers shared, one killed, adds up.
        assert!(
            shown.contains(&format!("account:    {MEMBERS} selected = {MEMBERS} sent + 0 failed + 0 uncertain + 0 suppressed before the send + 0 left out during it + 0 cancelled + 0 pending")),
            "{shown}"
        );
        // Workers that exit retire: none is left live.
        assert_eq!(t.run(&["workers"]).success().stdout.lines().count(), 1);
    }

    fn the_rate_is_the_jobs_total_across_workers(backend) {
        const MEMBERS: usize = 1_500;
        const RATE: usize = 300;
        let server = Scripted::start(|_| Rule::Accept, true);
        let t = Test::with_examples()
            .on(backend)
            .with_members(MEMBERS)
            .with_smtp(server.port, &format!("concurrency = 4\nrate = {RATE}"));
        enqueue(&t, ROUNDUP);
        let workers: Vec<Child> = (0..3).map(|_| spawn_worker(&t, 4, false)).collect();
        for w in workers {
            assert!(w.wait_with_output().unwrap().status.success());
        }
        let mut times: Vec<_> = server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, code)| *code == 250)
            .map(|(at, _, _)| *at)
            .collect();
        times.sort();
        assert_eq!(times.len(), MEMBERS);
        // No one-second window holds more than the rate and a tenth.
        let mut busiest = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
                start += 1;
            }
            busiest = busiest.max(end - start + 1);
        }
        assert!(busiest <= RATE * 11 / 10, "{busiest} messages in one second");
        let elapsed = times[times.len() - 1].duration_since(times[0]).as_secs_f64();
        let overall = MEMBERS as f64 / elapsed;
        // At most the rate; and not stalled (the lower bound is loose: the suite's other
        // tests share the two CPUs).
        assert!(
            overall <= RATE as f64 * 1.1 && overall >= RATE as f64 / 10.0,
            "{overall:.0} messages/s overall"
        );
    }
}

#[test]
fn a_sqlite_store_with_a_half_sent_job_moves_to_postgresql_and_finishes_there() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    const MEMBERS: usize = 2_000;
    let sink = SmtpSink::start();
    // Runs use PostgreSQL unless they say `--store mailout.sqlite`.
    let t = Test::with_examples()
        .on(backend)
        .with_smtp(sink.port, "concurrency = 4");
    let sqlite = ["--store", "mailout.sqlite"];
    let mut csv = String::from("email,name,branch,employer\n");
    for i in 0..MEMBERS {
        csv.push_str(&format!(
            "member{i:05}@members.test,Member{i} Surname,London,NPS\n"
        ));
    }
    let t = t.write("members.csv", &csv);
    t.run(&[sqlite[0], sqlite[1], "members", "import", "members.csv"])
        .success();
    t.run(&[
        sqlite[0],
        sqlite[1],
        "unsubscribe",
        "member00007@members.test",
    ])
    .success();
    // An archive: the example bulletins as built, and a message of someone else's.
    for b in ["236-pandemic-measures", "239-escaping"] {
        t.run(&[
            sqlite[0],
            sqlite[1],
            "build",
            &format!("examples/bulletins/{b}.toml"),
        ])
        .success();
    }
    let t = t.write("other.eml", "Message-ID: <lunch@x.example>\nFrom: Jo <jo@x.example>\nSubject: Lunch on Friday\nDate: Mon, 2 Mar 2026 10:00:00 +0000\n\nShall we meet for lunch on Friday? The pay award talk is at two.\n");
    t.run(&[sqlite[0], sqlite[1], "import", "outbox", "other.eml"])
        .success();

    // Half a job on SQLite: the send is killed after 600 copies.
    let mut child = t
        .command()
        .args([
            sqlite[0], sqlite[1], "send", ROUNDUP, "--to", "all", "--yes", "-q",
        ])
        .env("MAILOUT_LOG", "mailout=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sent = 0;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        if line.unwrap().contains(" sent ") {
            sent += 1;
            if sent == 600 {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    let before = t.run(&[sqlite[0], sqlite[1], "jobs"]).success().stdout;
    assert!(before.contains("running"), "{before}");

    let search = |store: &[&str]| {
        let mut args = store.to_vec();
        args.extend(["archive", "search", "ballot OR lunch"]);
        t.run(&args).success().stdout
    };
    let found_before = search(&sqlite);

    let url = t.store_location();
    let migrated = t
        .run(&[sqlite[0], sqlite[1], "store", "migrate", "--to", &url])
        .success()
        .stdout;
    let mut tables = 0;
    for line in migrated
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("migrated"))
    {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 3, "{line}");
        assert_eq!(cells[1], cells[2], "counts differ: {line}");
        tables += 1;
    }
    assert!(tables >= 10, "{migrated}");
    for table in ["members ", "journal ", "messages ", "suppressions "] {
        let line = migrated.lines().find(|l| l.starts_with(table)).unwrap();
        assert_ne!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
    // Into a database that is not empty: refused.
    t.run(&[sqlite[0], sqlite[1], "store", "migrate", "--to", &url])
        .code(1);

    // The same commands on PostgreSQL: the job resumes where it stopped.
    let lists = t.run(&["lists"]).success().stdout;
    assert_eq!(
        lists,
        t.run(&[sqlite[0], sqlite[1], "lists"]).success().stdout
    );
    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    assert!(
        run.stdout.starts_with(&format!(
            "job 1 (resumed): {} sent, 0 failed, 0 uncertain, 0 skipped, 0 pending",
            MEMBERS - 1
        )),
        "{}",
        run.stdout
    );
    let messages = sink.messages();
    let by_rcpt = tally(&messages);
    assert_eq!(by_rcpt.len(), MEMBERS - 1, "everyone but the unsubscribed");
    assert!(!by_rcpt.contains_key("member00007@members.test"));
    assert!(messages.len() - (MEMBERS - 1) <= 4, "duplicates");
    assert_eq!(search(&[]), found_before, "the same hits on both stores");
    assert!(found_before.contains("Lunch on Friday"), "{found_before}");
    // Numbering carried over: the next number follows the highest built or sent.
    assert_eq!(
        t.run(&["new"]).success().stdout,
        t.run(&[sqlite[0], sqlite[1], "new", "--dir", "elsewhere"])
            .success()
            .stdout
            .replace("elsewhere", "bulletins")
    );
}
