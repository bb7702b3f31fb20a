//! Delivery faults from a scripted SMTP server: 4xx retried, 5xx failed with the reply,
//! dropped connections and stalls retried, and the exit code.

use crate::harness::{Backend, Test};
use crate::on_both;
use crate::servers::{Rule, Scripted};

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

fn rule(address: &str) -> Rule {
    let local = address.split('@').next().unwrap_or("");
    match local.trim_end_matches(char::is_numeric) {
        "temp" => Rule::TempFail(1),
        "full" => Rule::Full(2),
        "bad" => Rule::Reject,
        "refused" => Rule::RejectData,
        "drop" => Rule::DropAfterData,
        "stall" => Rule::Stall,
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

on_both! {
    fn temporary_failures_are_retried_and_permanent_ones_recorded(backend) {
        faults_are_handled(backend, false);
    }

    fn temporary_failures_are_retried_and_permanent_ones_recorded_when_pipelining(backend) {
        faults_are_handled(backend, true);
    }
}

fn faults_are_handled(backend: Backend, pipelining: bool) {
    let server = Scripted::start(rule, pipelining);
    let names = [
        "ok1", "temp1", "ok2", "bad1", "full1", "ok3", "refused1", "drop1", "stall1", "temp2",
        "bad2", "ok4",
    ];
    let t = Test::with_examples()
        .on(backend)
        .write("members.csv", &members(&names))
        .with_smtp(
            server.port,
            "concurrency = 3\ntimeout_secs = 2\nmax_attempts = 4",
        );
    t.run(&["members", "import", "members.csv"]).success();

    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(2);
    assert!(
        run.stdout
            .starts_with("job 1 (started): 9 sent, 3 failed, 0 skipped, 0 pending of 12"),
        "{}",
        run.stdout
    );
    let mut failures: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("failed: "))
        .collect();
    failures.sort();
    assert_eq!(failures.len(), 3, "{}", run.stderr);
    assert!(
        failures[0]
            .starts_with("failed: bad1@d0.test: permanent error (550): 5.1.1 no such user here"),
        "{failures:?}"
    );
    assert!(
        failures[1].starts_with("failed: bad2@d1.test: permanent error (550)"),
        "{failures:?}"
    );
    assert!(
        failures[2]
            .starts_with("failed: refused1@d0.test: permanent error (554): 5.7.1 message refused"),
        "{failures:?}"
    );

    // Every other recipient was delivered exactly once, after its retries, with its own copy.
    for a in server.accepted() {
        assert!(
            a.data.contains(&format!("<{}>\r\n", a.rcpt)),
            "{} got someone else's copy",
            a.rcpt
        );
    }
    let mut delivered: Vec<String> = server.accepted().into_iter().map(|a| a.rcpt).collect();
    delivered.sort();
    let mut expected: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.starts_with("bad") && !n.starts_with("refused"))
        .map(|(i, n)| format!("{n}@d{}.test", i % 3))
        .collect();
    expected.sort();
    assert_eq!(delivered, expected);
    let attempts = server.attempts.lock().unwrap().clone();
    assert_eq!(attempts["temp1@d1.test"], 2);
    assert_eq!(attempts["full1@d1.test"], 3);
    assert_eq!(attempts["stall1@d2.test"], 2);
    assert_eq!(attempts["drop1@d1.test"], 2);
    assert_eq!(attempts["bad1@d0.test"], 1, "a 5xx is never retried");

    // The journal keeps the replies; a rerun sends nothing new.
    let job = t.run(&["job", "1"]).success().stdout;
    assert!(job.contains("state:      finished with failures"), "{job}");
    assert!(
        job.contains("failed:     bad1@d0.test: permanent error (550): 5.1.1 no such user here"),
        "{job}"
    );
    let again = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(2);
    assert!(
        again.stdout.contains("this run: 0 sent, 0 failed"),
        "{}",
        again.stdout
    );
    assert_eq!(server.accepted().len(), expected.len());
    assert_eq!(
        server.attempts.lock().unwrap().clone(),
        attempts,
        "nobody was tried again"
    );
    t.assert_store_on(backend);
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
        run.stderr.contains("failed: hopeless1@d0.test: gave up after 3 attempts: transient error (451): 4.7.1 greylisted"),
        "{}",
        run.stderr
    );
    assert_eq!(server.attempts.lock().unwrap()["hopeless1@d0.test"], 3);
}

#[test]
fn a_server_that_is_not_there_stops_nothing_but_fails_temporarily() {
    let port = crate::servers::free_port();
    let t = Test::with_examples()
        .write("members.csv", &members(&["ok1"]))
        .with_smtp(port, "max_attempts = 2\ntimeout_secs = 1");
    t.run(&["members", "import", "members.csv"]).success();
    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .code(2);
    assert!(
        run.stderr.contains(
            "failed: ok1@d0.test: gave up after 2 attempts: could not connect to 127.0.0.1:"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn authentication_with_the_password_from_the_environment() {
    use crate::servers::Options;
    let server = Scripted::with(
        rule,
        Options {
            pipelining: true,
            auth: Some(("mailer", "s3cret")),
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
    assert_eq!(
        t.run(&["jobs"]).success().stdout.lines().count(),
        1,
        "no job was started"
    );

    // A wrong password stops the send; nobody's row changes.
    let out = t
        .command()
        .env("MAILOUT_SMTP_PASSWORD", "wrong")
        .args(["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.run(&["job", "1"])
            .success()
            .stdout
            .contains("(0 sent, 0 failed, 0 skipped, 2 pending)")
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
    let times: Vec<std::time::Instant> = server
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

fn slow_domain(address: &str) -> Rule {
    if address == "slow1@slow.test" {
        Rule::TempFail(1)
    } else {
        Rule::Accept
    }
}

#[test]
fn a_domain_that_answers_4xx_is_slowed_down_while_others_go_on() {
    let server = Scripted::start(slow_domain, true);
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
    assert_eq!((log[0].1.as_str(), code), ("slow1@slow.test", 451));
    let next_slow = log[1..]
        .iter()
        .find(|(_, a, _)| a.ends_with("@slow.test"))
        .unwrap();
    let pause = next_slow.0.duration_since(deferred_at).as_secs_f64();
    assert!(pause >= 0.9, "slow.test was tried again after {pause:.2} s");
    let fast_during = log
        .iter()
        .filter(|(t, a, _)| a.ends_with("@fast.test") && *t < next_slow.0)
        .count();
    assert_eq!(fast_during, 20, "the other domain went on meanwhile");
    assert_eq!(server.accepted().len(), 23);
}
