//! Delivery faults from a scripted SMTP server (PRODUCT.md §6): every recipient ends `sent`,
//! `failed` (with the reply) or `uncertain` (with what happened); a copy whose data went out
//! without a reply is never sent again on its own; a recipient's 4xx holds back that
//! recipient alone, a domain-level signal pauses the domain; a broken or vanished server
//! ends the run in bounded time; an unreachable server stops a send before anything is
//! written.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::{Backend, Test};
use crate::on_both;
use crate::servers::{Options, Rule, Scripted};

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

fn rule(address: &str) -> Rule {
    let local = address.split('@').next().unwrap_or("");
    match local.trim_end_matches(char::is_numeric) {
        "temp" => Rule::TempFail(1),
        "full" => Rule::Full(2),
        "fullforever" => Rule::Full(u32::MAX),
        "rate" => Rule::Rate(1),
        "closing" => Rule::Closing(1),
        "bad" => Rule::Reject,
        "refused" => Rule::RejectData,
        "drop" => Rule::DropAfterData,
        "stall" => Rule::StallAfterData,
        "garbled" => Rule::GarbageAfterData,
        "stallbefore" => Rule::StallBeforeData,
        "garbage" => Rule::GarbageRcpt,
        "hopeless" => Rule::TempFail(99),
        _ => Rule::Accept,
    }
}

fn members(names: &[&str]) -> String {
    let mut csv = String::from("email,name,branch,employer\n");
    for (i, n) in names.iter().enumerate() {
        // Several domains, so one domain's slow-down does not hold up the others.
        csv.push_str(&format!("{n}@d{}.test,{n},London,NPS\n", i % 3));
    }
    csv
}

fn address(names: &[&str], name: &str) -> String {
    let i = names.iter().position(|n| *n == name).unwrap();
    format!("{name}@d{}.test", i % 3)
}

/// The rows `mailout job 1` lists in `state`, as `address: reply`.
fn rows(job: &str, state: &str) -> HashMap<String, String> {
    job.lines()
        .filter_map(|l| l.strip_prefix(&format!("{state}:")))
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect()
}

on_both! {
    fn every_fault_ends_sent_failed_or_uncertain(backend) {
        every_fault_ends_in_a_state(backend, false);
    }

    fn every_fault_ends_sent_failed_or_uncertain_when_pipelining(backend) {
        every_fault_ends_in_a_state(backend, true);
    }
}

fn every_fault_ends_in_a_state(backend: Backend, pipelining: bool) {
    let server = Scripted::start(rule, pipelining);
    let names = [
        "ok1",
        "temp1",
        "full1",
        "bad1",
        "refused1",
        "drop1",
        "stall1",
        "garbled1",
        "stallbefore1",
        "garbage1",
        "rate1",
        "closing1",
        "ok2",
        "ok3",
    ];
    let t = Test::with_examples()
        .on(backend)
        .write("members.csv", &members(&names))
        .with_smtp(
            server.port,
            "concurrency = 3\ntimeout_secs = 1\ndata_timeout_secs = 1\nmax_attempts = 3",
        );
    t.run(&["members", "import", "members.csv"]).success();

    let start = Instant::now();
    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(2);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "every fault was settled in {took:?}, over the 60 s bound"
    );
    assert!(
        run.stdout.starts_with(
            "job 1 (started): 8 sent, 3 failed, 3 uncertain, 0 skipped, 0 pending of 14"
        ),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains("--resume 1 --retry-uncertain"),
        "{}",
        run.stderr
    );

    let job = t.run(&["job", "1"]).success().stdout;
    let failed = rows(&job, "failed");
    let uncertain = rows(&job, "uncertain");
    let a = |n: &str| address(&names, n);
    assert_eq!(failed.len(), 3, "{job}");
    assert!(
        failed[&a("bad1")].starts_with("550 5.1.1 no such user here"),
        "{job}"
    );
    assert!(
        failed[&a("refused1")].starts_with("554 5.7.1 message refused"),
        "{job}"
    );
    assert!(
        failed[&a("garbage1")].starts_with("gave up after 3 attempts")
            && failed[&a("garbage1")].contains("could not be read"),
        "{job}"
    );
    assert_eq!(uncertain.len(), 3, "{job}");
    for (name, what) in [
        (
            "drop1",
            "the connection closed after the whole message was sent",
        ),
        (
            "stall1",
            "no reply within 1 s after the whole message was sent",
        ),
        ("garbled1", "after the whole message was sent"),
    ] {
        assert!(
            uncertain[&a(name)].contains(what)
                && uncertain[&a(name)].contains("may have been delivered"),
            "{name}: {job}"
        );
    }

    // No copy was received twice; the uncertain ones went once and were not retried.
    let received = server.received_by();
    for (rcpt, copies) in &received {
        assert_eq!(copies.len(), 1, "{rcpt} received {} copies", copies.len());
        assert!(
            copies[0].data.contains(&format!("<{rcpt}>\r\n")),
            "{rcpt} got someone else's copy"
        );
    }
    for name in ["drop1", "stall1", "garbled1"] {
        assert_eq!(server.attempts_of(&a(name)), 1, "{name} was tried again");
        assert!(received.contains_key(&a(name)));
    }
    assert_eq!(server.attempts_of(&a("bad1")), 1, "a 5xx is never retried");
    assert_eq!(server.attempts_of(&a("garbage1")), 3);
    assert_eq!(server.attempts_of(&a("temp1")), 2);
    assert_eq!(server.attempts_of(&a("full1")), 3);
    assert_eq!(server.attempts_of(&a("stallbefore1")), 2);
    let mut delivered: Vec<String> = server.accepted().into_iter().map(|m| m.rcpt).collect();
    delivered.sort();
    let mut expected: Vec<String> = [
        "ok1",
        "temp1",
        "full1",
        "stallbefore1",
        "rate1",
        "closing1",
        "ok2",
        "ok3",
    ]
    .iter()
    .map(|n| a(n))
    .collect();
    expected.sort();
    assert_eq!(delivered, expected);
    // One EHLO per session.
    assert!(
        server.ehlos.lock().unwrap().iter().all(|n| *n == 1),
        "{:?}",
        server.ehlos.lock().unwrap()
    );

    // A rerun sends nothing.
    let again = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(2);
    assert!(
        again.stdout.contains("this run: 0 sent, 0 failed"),
        "{}",
        again.stdout
    );
    assert_eq!(server.received.lock().unwrap().len(), 12);

    // Resent on purpose: the three uncertain copies go again, with the same Message-ID.
    let retry = t
        .run(&[
            "send",
            ROUNDUP,
            "--resume",
            "1",
            "--retry-uncertain",
            "--yes",
            "-q",
        ])
        .code(2);
    assert!(
        retry
            .stdout
            .starts_with("job 1 (resumed): 11 sent, 3 failed, 0 uncertain"),
        "{}",
        retry.stdout
    );
    let received = server.received_by();
    for name in ["drop1", "stall1", "garbled1"] {
        let copies = &received[&a(name)];
        assert_eq!(copies.len(), 2, "{name}");
        assert_eq!(
            copies[0].header("Message-ID"),
            copies[1].header("Message-ID"),
            "{name}'s resend has another Message-ID"
        );
    }
    t.assert_store_on(backend);
}

#[test]
fn a_recipient_level_4xx_holds_back_that_recipient_alone() {
    // 1,000 members at one domain, 1% of whom answer 452 4.2.2 for ever.
    let server = Scripted::start(rule, true);
    let mut csv = String::from("email,name,branch,employer\n");
    for i in 0..1000 {
        let local = if i % 100 == 0 { "fullforever" } else { "ok" };
        csv.push_str(&format!("{local}{i}@one.test,M{i},London,NPS\n"));
    }
    let t = Test::with_examples()
        .write("members.csv", &csv)
        .with_smtp(server.port, "concurrency = 4\nmax_attempts = 3");
    t.run(&["members", "import", "members.csv"]).success();
    let start = Instant::now();
    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(2);
    let took = start.elapsed();
    assert!(
        run.stdout
            .starts_with("job 1 (started): 990 sent, 10 failed, 0 uncertain"),
        "{}",
        run.stdout
    );
    // Had the domain been paused for each 4xx (as before), this took minutes.
    assert!(
        took < Duration::from_secs(30),
        "{took:?}: the 4xx of ten recipients held up the domain"
    );
    assert_eq!(server.accepted().len(), 990);
    let job = t.run(&["job", "1"]).success().stdout;
    let failed = rows(&job, "failed");
    assert_eq!(failed.len(), 10);
    assert!(
        failed
            .values()
            .all(|r| { r.starts_with("gave up after 3 attempts: 452 4.2.2 mailbox full") })
    );
    for i in (0..1000).step_by(100) {
        assert_eq!(server.attempts_of(&format!("fullforever{i}@one.test")), 3);
    }
}

fn closing_domain(address: &str) -> Rule {
    if address == "slow1@slow.test" {
        Rule::Closing(1)
    } else {
        Rule::Accept
    }
}

#[test]
fn a_domain_level_signal_pauses_the_domain_while_others_go_on() {
    let server = Scripted::start(closing_domain, true);
    let mut csv = String::from("email,name,branch,employer\nslow1@slow.test,S,London,NPS\n");
    for i in 0..20 {
        csv.push_str(&format!("fast{i}@fast.test,F,London,NPS\n"));
    }
    csv.push_str("slow2@slow.test,S,London,NPS\nslow3@slow.test,S,London,NPS\n");
    let t = Test::with_examples()
        .write("members.csv", &csv)
        .with_smtp(server.port, "concurrency = 1");
    t.run(&["members", "import", "members.csv"]).success();
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    let log = server.log.lock().unwrap().clone();
    let (deferred_at, _, code) = log[0].clone();
    assert_eq!((log[0].1.as_str(), code), ("slow1@slow.test", 421));
    let next_slow = log[1..]
        .iter()
        .find(|(_, a, _)| a.ends_with("@slow.test"))
        .unwrap();
    // The first pause is half to all of a second (the jitter is inside the cap).
    let pause = next_slow.0.duration_since(deferred_at).as_secs_f64();
    assert!(
        pause >= 0.45,
        "slow.test was tried again after {pause:.2} s"
    );
    let fast_during = log
        .iter()
        .filter(|(t, a, _)| a.ends_with("@fast.test") && *t < next_slow.0)
        .count();
    // How many fit in the pause depends on the machine's load; that any do is the point.
    assert!(fast_during >= 1, "the other domain did not go on meanwhile");
    assert_eq!(server.accepted().len(), 23);
}

#[test]
fn a_server_that_answers_garbage_fails_everyone_in_bounded_time() {
    let server = Scripted::start(rule, true);
    let names: Vec<String> = (0..20).map(|i| format!("garbage{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = Test::with_examples()
        .write("members.csv", &members(&names))
        .with_smtp(server.port, "concurrency = 4\nmax_attempts = 3");
    t.run(&["members", "import", "members.csv"]).success();
    let start = Instant::now();
    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(2);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        run.stdout
            .starts_with("job 1 (started): 0 sent, 20 failed, 0 uncertain, 0 skipped, 0 pending"),
        "{}",
        run.stdout
    );
    let failed = rows(&t.run(&["job", "1"]).success().stdout, "failed");
    assert_eq!(failed.len(), 20);
    assert!(failed.values().all(|r| {
        r.contains("the server's reply could not be read: `hello there, this is not SMTP`")
    }));
}

#[test]
fn a_send_or_proof_to_a_closed_port_stops_at_once_and_writes_nothing() {
    let port = crate::servers::free_port();
    let t = Test::with_examples()
        .write("members.csv", &members(&["ok1", "ok2"]))
        .with_smtp(port, "timeout_secs = 5");
    t.run(&["members", "import", "members.csv"]).success();
    for args in [
        vec!["send", ROUNDUP, "--to", "all", "--yes", "-q"],
        vec!["send", ROUNDUP, "--proof", "editor@pfcu.example.org"],
    ] {
        let start = Instant::now();
        let run = t.run(&args).code(1);
        assert!(start.elapsed() < Duration::from_secs(10), "{args:?}");
        assert!(
            run.stderr.contains(&format!(
                "error: the SMTP server cannot be used; nothing was sent\ncaused by: could not connect to 127.0.0.1:{port}: "
            )) && run.stderr.contains("refused"),
            "{}",
            run.stderr
        );
        for internal in ["Temporary(", "Some(", "Err("] {
            assert!(!run.stderr.contains(internal), "{}", run.stderr);
        }
    }
    assert_eq!(
        t.run(&["jobs"]).success().stdout.lines().count(),
        1,
        "no job was started"
    );
}

fn hang_up(_: &str) -> Rule {
    Rule::Accept
}

#[test]
fn a_server_that_goes_away_mid_job_stops_the_run_with_the_rest_pending() {
    let server = Scripted::with(
        hang_up,
        Options {
            pipelining: true,
            hang_up_after: Some(5),
            ..Options::default()
        },
    );
    let names: Vec<String> = (0..30).map(|i| format!("ok{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = Test::with_examples()
        .write("members.csv", &members(&names))
        .with_smtp(server.port, "concurrency = 2\nmax_attempts = 2");
    t.run(&["members", "import", "members.csv"]).success();
    let start = Instant::now();
    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(1);
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(
        run.stderr.contains(
            "error: the send stopped\ncaused by: no connection could be opened 4 times in a row"
        ) && run.stderr.contains("run the same command again to resume"),
        "{}",
        run.stderr
    );
    // Sessions in the middle of a message when it went away may finish it.
    let sent = server.accepted().len();
    assert!((5..=6).contains(&sent), "{sent}");
    let job = t.run(&["job", "1"]).success().stdout;
    assert!(
        job.contains(&format!(
            "({sent} sent, 0 failed, 0 uncertain, 0 skipped, {} pending)",
            30 - sent
        )),
        "{job}"
    );
}

#[test]
fn a_recipient_that_never_stops_deferring_fails_after_max_attempts() {
    let server = Scripted::start(rule, true);
    let t = Test::with_examples()
        .write("members.csv", &members(&["hopeless1", "ok1"]))
        .with_smtp(server.port, "max_attempts = 3");
    t.run(&["members", "import", "members.csv"]).success();
    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(2);
    assert!(
        run.stderr
            .contains("failed: hopeless1@d0.test: gave up after 3 attempts: 451 4.7.1 greylisted"),
        "{}",
        run.stderr
    );
    assert_eq!(server.attempts_of("hopeless1@d0.test"), 3);
}

#[test]
fn authentication_with_the_password_from_the_environment() {
    let server = Scripted::with(
        rule,
        Options {
            pipelining: true,
            auth: Some(("mailer", "s3cret")),
            ..Options::default()
        },
    );
    let t = Test::with_examples()
        .write("members.csv", &members(&["ok1", "ok2"]))
        .append(
            "config/mailout.toml",
            &format!(
                "\n[smtp]\nurl = \"smtp://127.0.0.1:{}?tls=none\"\nusername = \"mailer\"\n",
                server.port
            ),
        );
    t.run(&["members", "import", "members.csv"]).success();

    // No password in the environment: a clear error before any job starts.
    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(1);
    assert!(
        run.stderr
            .contains("needs a password in the environment variable `MAILOUT_SMTP_PASSWORD`"),
        "{}",
        run.stderr
    );

    // A wrong password is found before the job starts.
    let out = t
        .command()
        .env("MAILOUT_SMTP_PASSWORD", "wrong")
        .args(["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authentication refused by 127.0.0.1:")
            && stderr.contains("535 5.7.8 authentication failed"),
        "{stderr}"
    );
    assert_eq!(
        t.run(&["jobs"]).success().stdout.lines().count(),
        1,
        "no job was started"
    );

    // The right one delivers.
    let out = t
        .command()
        .env("MAILOUT_SMTP_PASSWORD", "s3cret")
        .args(["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.accepted().len(), 2);
}

#[test]
fn the_overall_rate_is_held() {
    let server = Scripted::start(rule, true);
    let names: Vec<String> = (0..50).map(|i| format!("ok{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = Test::with_examples()
        .write("members.csv", &members(&names))
        .with_smtp(server.port, "concurrency = 4");
    t.run(&["members", "import", "members.csv"]).success();
    t.run(&[
        "send", ROUNDUP, "--to", "all", "--yes", "-q", "--rate", "20",
    ])
    .success();
    let times: Vec<Instant> = server
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(times.len(), 50);
    // At 20 a second, no one-second window holds more than 20 (and the first).
    for (i, start) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start).as_secs_f64() < 1.0)
            .count();
        assert!(
            within <= 21,
            "{within} messages within a second of message {i}"
        );
    }
    let span = times.last().unwrap().duration_since(times[0]).as_secs_f64();
    assert!(
        span >= 49.0 / 20.0 * 0.95,
        "50 messages in {span:.2} s at 20/s"
    );
}

#[test]
fn the_progress_line_says_what_recipients_wait_on() {
    let server = Scripted::start(rule, true);
    let t = Test::with_examples()
        .write("members.csv", &members(&["hopeless1", "ok1"]))
        .with_smtp(server.port, "max_attempts = 5");
    t.run(&["members", "import", "members.csv"]).success();
    // Not quiet, and stderr is not a terminal: a progress line every five seconds; the
    // retries (at least 0.5 + 1 + 2 + 4 s) outlast the first.
    let run = t.run(&["send", ROUNDUP, "--to", "all", "--yes"]).code(2);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("progress: "))
        .unwrap_or_else(|| panic!("no progress line:\n{}", run.stderr));
    assert!(
        line.contains("1 waiting, last error: 451 4.7.1 greylisted"),
        "{line}"
    );
}

/// An error with a cause says what failed on its `error:` line and why on `caused by:`
/// lines: an IMAP server that is not there, a series pattern that is not a regular
/// expression, an SMTP URL that is not a URL.
#[test]
fn errors_say_what_failed_then_why() {
    let port = crate::servers::free_port();
    let t = Test::with_examples();
    let imap = format!("imap://someone@127.0.0.1:{port}/INBOX");
    let run = t
        .run_command(
            t.command()
                .env("MAILOUT_IMAP_PASSWORD", "not-used")
                .args(["import", "--imap", &imap]),
        )
        .code(1);
    assert!(
        run.stderr.starts_with(&format!(
            "error: could not connect to the IMAP server 127.0.0.1:{port}\ncaused by: "
        )) && run.stderr.contains("refused"),
        "{}",
        run.stderr
    );

    let config = t
        .read("config/mailout.toml")
        .replace("(\\\\d+)\"", "((\\\\d+)\"");
    let t = t
        .write("config/mailout.toml", &config)
        .write("one.eml", "Subject: hello\r\n\r\nHello.\r\n");
    let run = t.run(&["import", "one.eml"]).code(1);
    assert!(
        run.stderr.starts_with(
            "error: `archive.series_pattern` `Latest From PFCU ((\\d+)` is not a regular expression\ncaused by: "
        ),
        "{}",
        run.stderr
    );

    let t = Test::with_examples();
    let run = t
        .run(&["worker", "--smtp", "smtp://[nowhere", "--exit-when-idle"])
        .code(1);
    assert_eq!(
        run.stderr.lines().take(2).collect::<Vec<_>>(),
        [
            "error: SMTP URL `smtp://[nowhere` is not a URL",
            "caused by: invalid IPv6 address"
        ],
        "{}",
        run.stderr
    );
}
