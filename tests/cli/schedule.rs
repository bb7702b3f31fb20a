//! Scheduled sends (PRODUCT.md §6c): `mailout send FILE --to SELECTORS --at TIME` starts the
//! job when it is due (chosen then, published then), not before; a job found due beyond
//! `[schedule] late_limit_mins` waits as `late` until `mailout job N --release`; one whose
//! bulletin changed or whose sign-off lapsed is held; a cancelled one sends nothing.
//!
//! The harness pins the clock with `SOURCE_DATE_EPOCH` (2026-11-18T11:06:40Z, GMT in
//! London); each step here pins it where the story needs it, so no test waits.

use std::path::Path;

use crate::harness::Test;
use crate::on_both;

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";
/// 2026-11-18T12:00:00Z.
const NOON: u64 = 1_795_003_200;

/// Runs `args` with the clock at `epoch`.
fn at(t: &Test, epoch: u64, args: &[&str]) -> crate::harness::Run {
    t.run_command(
        t.command()
            .args(args)
            .env("SOURCE_DATE_EPOCH", epoch.to_string()),
    )
}

/// The members who have a copy in the file transport's outbox.
fn sent(t: &Test) -> Vec<String> {
    let dir = t.file("outbox/237/sent");
    if !Path::new(&dir).exists() {
        return Vec::new();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn state(t: &Test, job: &str) -> String {
    let text = t.run(&["job", job]).success().stdout;
    text.lines()
        .find_map(|l| l.strip_prefix("state:"))
        .unwrap_or_else(|| panic!("no state in\n{text}"))
        .trim()
        .to_string()
}

on_both! {
    fn a_scheduled_job_starts_when_due_with_the_members_of_that_moment(backend) {
        let t = Test::with_examples().on(backend).with_members(20);
        let run = t.run(&["send", ROUNDUP, "--to", "all", "--at", "2026-11-18T12:00", "--enqueue", "--yes"]).success();
        assert_eq!(run.stdout.trim(), "job: 1");
        assert!(run.stderr.contains("scheduled for 2026-11-18 12:00 GMT"), "{}", run.stderr);
        assert_eq!(state(&t, "1"), "scheduled");
        let text = t.run(&["job", "1"]).success().stdout;
        assert!(text.contains("scheduled:  2026-11-18 12:00 GMT"), "{text}");

        // Before it is due a worker sends nothing, and nothing of it is public yet.
        t.run(&["worker", "--exit-when-idle", "-q"]).success();
        assert!(sent(&t).is_empty(), "{:?}", sent(&t));
        assert_eq!(state(&t, "1"), "scheduled");
        let archive = t.run(&["archive", "list"]).success().stdout;
        assert!(!archive.contains("237"), "published before it was sent:\n{archive}");
        let again = t.run(&["send", ROUNDUP, "--to", "all", "--at", "2026-11-18T13:00", "--yes"]).code(1);
        assert!(again.stderr.contains("already has job 1"), "{}", again.stderr);

        // Meanwhile one member joins and one leaves: the job goes to those of its hour.
        let t = t.write("late.csv", "email,name,branch,employer\njoiner@members.test,Joiner,London,NPS\n");
        t.run(&["members", "import", "late.csv"]).success();
        t.run(&["unsubscribe", "member00003@members.test"]).success();

        let worker = at(&t, NOON + 600, &["worker", "--exit-when-idle", "-q"]).success();
        assert!(
            worker.stderr.contains("job 1: scheduled for 2026-11-18 12:00 GMT, started: 20 members to send"),
            "{}",
            worker.stderr
        );
        let got = sent(&t);
        assert_eq!(got.len(), 20, "{got:?}");
        assert!(got.contains(&"joiner@members.test.eml".to_string()));
        assert!(!got.contains(&"member00003@members.test.eml".to_string()));
        let text = t.run(&["job", "1"]).success().stdout;
        assert!(text.contains("account:    21 selected = 20 sent + 0 failed + 0 uncertain + 1 suppressed before the send"), "{text}");
        assert_eq!(state(&t, "1"), "finished");
        let archive = t.run(&["archive", "list"]).success().stdout;
        assert!(archive.contains("237"), "the copy for everyone is archived once it starts:\n{archive}");
        t.assert_store_on(backend);
    }

    fn a_job_found_due_past_the_late_limit_waits_until_released_or_cancelled(backend) {
        let t = Test::with_examples().on(backend).with_members(20);
        // 10:00 is 66 minutes ago: beyond the 30 minutes the example config allows.
        let late = t.run(&["send", ROUNDUP, "--to", "branch:London", "--at", "2026-11-18T10:00", "--yes", "-q"]).code(1);
        assert!(
            late.stderr.contains("job 1 was due at 2026-11-18 10:00 GMT and nothing sent it for 66 minutes, past the late limit"),
            "{}",
            late.stderr
        );
        assert!(late.stderr.contains("`mailout job 1 --release`"), "{}", late.stderr);
        assert!(sent(&t).is_empty());
        assert_eq!(state(&t, "1"), "late");
        let jobs = t.run(&["jobs"]).success().stdout;
        assert!(jobs.contains(" late "), "{jobs}");
        t.run(&["worker", "--exit-when-idle", "-q"]).success();
        assert!(sent(&t).is_empty(), "a late job does not go out on its own");
        let resumed = t.run(&["send", ROUNDUP, "--to", "branch:London", "--yes", "-q"]).code(1);
        assert!(resumed.stderr.contains("waits as `late`"), "{}", resumed.stderr);

        let released = t.run(&["job", "1", "--release"]).success();
        assert!(released.stderr.contains("job 1 released"), "{}", released.stderr);
        t.run(&["worker", "--exit-when-idle", "-q"]).success();
        assert_eq!(sent(&t).len(), 5, "the five London members: {:?}", sent(&t));
        assert_eq!(state(&t, "1"), "finished");
        let twice = t.run(&["job", "1", "--release"]).code(1);
        assert!(twice.stderr.contains("only a scheduled job that waits as `late` or `held` is released"), "{}", twice.stderr);

        // Another late job, cancelled: nothing more goes out, and it says so.
        t.run(&["send", ROUNDUP, "--to", "branch:Wales", "--at", "2026-11-18T09:00", "--yes", "-q"]).code(1);
        let cancelled = t.run(&["job", "2", "--cancel"]).success();
        assert!(cancelled.stderr.contains("job 2 cancelled before it started"), "{}", cancelled.stderr);
        t.run(&["worker", "--exit-when-idle", "-q"]).success();
        assert_eq!(sent(&t).len(), 5, "nobody in Wales: {:?}", sent(&t));
        assert_eq!(state(&t, "2"), "cancelled");
        let dead = t.run(&["job", "2", "--release"]).code(1);
        assert!(dead.stderr.contains("job 2 is cancelled"), "{}", dead.stderr);
        t.assert_store_on(backend);
    }

    fn a_bulletin_changed_after_scheduling_is_held_not_sent(backend) {
        let t = Test::with_examples().on(backend).with_members(8);
        let config = t.read("config/mailout.toml");
        let t = t.write("config/mailout.toml", &config.replace("required = 0", "required = 1"));
        let unsigned = t.run(&["send", ROUNDUP, "--to", "all", "--at", "2026-11-18T12:00", "--enqueue", "--yes"]).code(1);
        assert!(unsigned.stderr.contains("needs 1 approval"), "sign-off holds when scheduling: {}", unsigned.stderr);
        t.run(&["approve", ROUNDUP, "--as", "Ian Lawrence"]).success();
        t.run(&["send", ROUNDUP, "--to", "all", "--at", "2026-11-18T12:00", "--enqueue", "--yes"]).success();

        let original = t.read(ROUNDUP);
        let edited = original.replacen("headline = \"", "headline = \"Changed: ", 1);
        assert_ne!(edited, original);
        let t = t.write(ROUNDUP, &edited);
        let worker = at(&t, NOON + 60, &["worker", "--exit-when-idle", "-q"]).success();
        assert!(worker.stderr.contains("job 1 was due at 2026-11-18 12:00 GMT and was not started"), "{}", worker.stderr);
        assert!(worker.stderr.contains("changed after it was scheduled"), "{}", worker.stderr);
        assert!(sent(&t).is_empty());
        assert_eq!(state(&t, "1"), "held");

        // Put back as signed off, released: it goes.
        let t = t.write(ROUNDUP, &original);
        t.run(&["job", "1", "--release"]).success();
        at(&t, NOON + 120, &["worker", "--exit-when-idle", "-q"]).success();
        assert_eq!(sent(&t).len(), 8);
        t.assert_store_on(backend);
    }
}

#[test]
fn a_time_just_past_sends_at_once_and_bad_times_are_refused_in_words() {
    let t = Test::with_examples().with_members(4);
    // 10:50 is 16 minutes ago, within the late limit: it goes now.
    let run = t
        .run(&[
            "send",
            ROUNDUP,
            "--to",
            "all",
            "--at",
            "2026-11-18T10:50",
            "--yes",
            "-q",
        ])
        .success();
    assert!(
        run.stdout.starts_with("job 1 (started): 4 sent"),
        "{}",
        run.stdout
    );
    assert_eq!(sent(&t).len(), 4);

    for (at, says) in [
        (
            "2026-13-45T99:00",
            "is not a time: write it as YYYY-MM-DDTHH:MM",
        ),
        (
            "2027-03-28T01:30",
            "does not exist there: the clocks go forward over it",
        ),
        ("2027-10-31T01:30", "happens twice there"),
        ("next tuesday", "is not a time"),
    ] {
        let bad = t
            .run(&["send", ROUNDUP, "--to", "branch:Wales", "--at", at, "--yes"])
            .code(1);
        assert!(bad.stderr.contains(says), "{at}: {}", bad.stderr);
    }
    let long = "9".repeat(100_000);
    let bad = t
        .run(&[
            "send",
            ROUNDUP,
            "--to",
            "branch:Wales",
            "--at",
            &long,
            "--yes",
        ])
        .code(1);
    assert!(
        bad.stderr.len() < 1_000,
        "the error does not echo 100 kB: {} bytes",
        bad.stderr.len()
    );

    let config = t.read("config/mailout.toml");
    let t = t.write(
        "config/mailout.toml",
        &config.replace(
            "timezone = \"Europe/London\"",
            "timezone = \"Europe/Atlantis\"",
        ),
    );
    let zone = t
        .run(&[
            "send",
            ROUNDUP,
            "--to",
            "branch:Wales",
            "--at",
            "2026-11-18T12:00",
            "--yes",
        ])
        .code(1);
    assert!(
        zone.stderr
            .contains("`[schedule] timezone = \"Europe/Atlantis\"` is not a time zone"),
        "{}",
        zone.stderr
    );
    let jobs = t.run(&["jobs"]).success().stdout;
    assert_eq!(
        jobs.lines().count(),
        2,
        "only the job that was sent: {jobs}"
    );
}
