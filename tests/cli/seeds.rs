//! Seed mailboxes (PRODUCT.md §6c): every job sends the copy for everyone to each `[seeds]
//! addresses`, once however it is run; `mailout seeds check [JOB]` reads each seed's mailbox
//! over IMAP (inbox and junk) and says inbox / junk / not arrived with the delay.
//!
//! End to end through the real Postfix and Dovecot of `scripts/mta-setup` (when
//! `MAILOUT_TEST_MTA` is set): three seeds, one copy moved to Junk as a provider's filter
//! would, one at a domain the MTA will not deliver to.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Test, skip};
use crate::on_both;

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

fn seeds_config(addresses: &[&str], imap: &[&str]) -> String {
    let list = |v: &[&str]| {
        v.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "\n[seeds]\naddresses = [{}]\nimap = [{}]\n",
        list(addresses),
        list(imap)
    )
}

on_both! {
    fn each_job_sends_every_seed_the_copy_for_everyone_once(backend) {
        let t = Test::with_examples()
            .on(backend)
            .with_members(6)
            .append("config/mailout.toml", &seeds_config(
                &["seed-one@seeds.test", "seed-two@seeds.test"],
                &["imap://seed@127.0.0.1:9/INBOX?tls=none", "imap://seed@127.0.0.1:9/INBOX?tls=none"],
            ));
        t.run(&["send", ROUNDUP, "--to", "branch:London", "--enqueue", "--yes"]).success();
        t.run(&["worker", "--exit-when-idle", "-q"]).success();
        // Run again, and a top-up: still one copy each.
        t.run(&["send", ROUNDUP, "--to", "branch:London", "--yes", "-q"]).success();
        let t = t.write("more.csv", "email,name,branch,employer\nnew@members.test,New,London,NPS\n");
        t.run(&["members", "import", "more.csv"]).success();
        t.run(&["send", ROUNDUP, "--to", "branch:London", "--top-up", "--yes", "-q"]).success();
        let listed = |dir: &str| {
            let mut seeds: Vec<String> = std::fs::read_dir(t.file(dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            seeds.sort();
            seeds
        };
        assert_eq!(listed("outbox/237/seeds"), ["1"], "one job");
        assert_eq!(listed("outbox/237/seeds/1"), ["seed-one@seeds.test.eml", "seed-two@seeds.test.eml"]);
        // The copy for everyone: every section, no member's name.
        let copy = t.read("outbox/237/seeds/1/seed-one@seeds.test.eml");
        assert!(copy.contains("To: seed-one@seeds.test"), "{copy}");
        for kind in ["NPS", "Cafcass", "PbNI"] {
            assert!(copy.contains(kind), "the copy for everyone has the {kind} section");
        }
        assert!(!t.file("outbox/237/sent/seed-one@seeds.test.eml").exists());
        // Another job of the same bulletin: each seed again, under a Message-ID of its own.
        t.run(&["send", ROUNDUP, "--to", "branch:Wales", "--yes", "-q"]).success();
        let id_of = |path: &str| {
            t.read(path)
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_string))
                .unwrap()
        };
        assert_ne!(
            id_of("outbox/237/seeds/1/seed-one@seeds.test.eml"),
            id_of("outbox/237/seeds/2/seed-one@seeds.test.eml")
        );

        // Seeds are not members: the account's figures are the members'.
        let json: serde_json::Value =
            serde_json::from_str(&t.run(&["job", "1", "--json"]).success().stdout).unwrap();
        assert_eq!(json["figures"]["selected"], 3, "{json}");
        assert_eq!(json["seeds"].as_array().unwrap().len(), 2, "{json}");
        assert_eq!(json["seeds"][0]["state"], "sent", "{json}");
        let text = t.run(&["job", "1"]).success().stdout;
        assert!(text.contains("seed-one@seeds.test: sent, not checked yet"), "{text}");

        // Its mailbox unreachable: not checked, with the reason, and exit 2.
        let check = t
            .run_command(t.command().env("MAILOUT_SEEDS_PASSWORD", "x").args(["seeds", "check"]))
            .code(2);
        assert!(check.stdout.contains("seeds: 2 not checked"), "{}", check.stdout);
        assert!(check.stderr.contains("seed-one@seeds.test: not checked: could not connect to the IMAP server 127.0.0.1:9"), "{}", check.stderr);
        t.assert_store_on(backend);
    }
}

#[test]
fn seeds_check_says_what_is_missing_in_words() {
    let t = Test::with_examples().with_members(2);
    let none = t.run(&["seeds", "check"]).code(1);
    assert!(
        none.stderr.contains("there are no seed mailboxes"),
        "{}",
        none.stderr
    );
    let t = t.append(
        "config/mailout.toml",
        &seeds_config(
            &["a@seeds.test", "b@seeds.test"],
            &["imap://seed@127.0.0.1/INBOX"],
        ),
    );
    let uneven = t.run(&["seeds", "check"]).code(1);
    assert!(
        uneven
            .stderr
            .contains("`[seeds] imap` has 1 URL for 2 addresses"),
        "{}",
        uneven.stderr
    );
    let config = t.read("config/mailout.toml").replace(
        "imap = [\"imap://seed@127.0.0.1/INBOX\"]",
        "imap = [\"imap://seed@127.0.0.1/INBOX\", \"pop3://b@host/\"]",
    );
    let t = t.write("config/mailout.toml", &config);
    let bad = t.run(&["seeds", "check"]).code(1);
    assert!(
        bad.stderr.contains("`[seeds] imap` for `b@seeds.test`"),
        "{}",
        bad.stderr
    );
    let config = t
        .read("config/mailout.toml")
        .replace("pop3://b@host/", "imap://seed@127.0.0.1/INBOX");
    let t = t.write("config/mailout.toml", &config);
    let nojob = t.run(&["seeds", "check"]).code(1);
    assert!(
        nojob.stderr.contains("there are no jobs yet"),
        "{}",
        nojob.stderr
    );
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    let nopass = t.run(&["seeds", "check", "1"]).code(1);
    assert!(
        nopass
            .stderr
            .contains("MAILOUT_SEEDS_PASSWORD, which is not set"),
        "{}",
        nopass.stderr
    );
    let missing = t.run(&["seeds", "check", "7"]).code(1);
    assert!(
        missing.stderr.contains("there is no job 7"),
        "{}",
        missing.stderr
    );
}

#[test]
fn seed_mailboxes_on_dovecot_say_inbox_junk_and_not_arrived() {
    if std::env::var_os("MAILOUT_TEST_MTA").is_none() {
        skip("MAILOUT_TEST_MTA is not set (scripts/test starts Postfix and Dovecot and sets it)");
        return;
    }
    // The test mailbox keeps every earlier run's mail: this run's seeds have their own names.
    let random = u32::from_le_bytes(mailout::clock::random_bytes::<4>().unwrap());
    let tag = format!("seed{}", random % 1_000_000_000);
    let inbox = format!("{tag}-inbox@members.test");
    let junk = format!("{tag}-junk@members.test");
    // members.test is delivered to Dovecot; any other domain the loopback MTA only bounces.
    let lost = format!("{tag}-lost@nowhere.test");
    let url = "imap://mailtest@127.0.0.1/INBOX";
    let t = Test::with_examples()
        .write(
            "members.csv",
            &format!("email,name,branch,employer\n{tag}-m1@members.test,Member One,London,NPS\n"),
        )
        .with_smtp_url("smtp://127.0.0.1:25")
        .append(
            "config/mailout.toml",
            &seeds_config(&[&inbox, &junk, &lost], &[url, url, url]),
        );
    t.run(&["members", "import", "members.csv"]).success();
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    let check = |t: &Test| {
        let run = t
            .command()
            .env("MAILOUT_SEEDS_PASSWORD", "mailtest-pass")
            .args(["seeds", "check", "1", "--json"])
            .output()
            .unwrap();
        assert_eq!(
            run.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        json["seeds"].as_array().unwrap().clone()
    };

    // Postfix delivers on its own schedule: look until both members.test seeds are in.
    let deadline = Instant::now() + Duration::from_secs(90);
    let seeds = loop {
        let seeds = check(&t);
        if seeds[0]["found"] == "inbox" && seeds[1]["found"] == "inbox" {
            break seeds;
        }
        assert!(
            Instant::now() < deadline,
            "the seed copies did not arrive: {seeds:?}"
        );
    };
    assert_eq!(seeds[2]["found"], "not-arrived", "{seeds:?}");

    // The junk seed's provider files it as spam.
    let id = seeds[1]["message_id"].as_str().unwrap().to_string();
    let moved = Command::new("python3")
        .args(["-c", MOVE_TO_JUNK, &id])
        .output()
        .expect("python3 (installed by scripts/mta-setup)");
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );

    let text = t
        .run_command(
            t.command()
                .env("MAILOUT_SEEDS_PASSWORD", "mailtest-pass")
                .args(["seeds", "check"]),
        )
        .code(2);
    let line = |address: &str| {
        text.stdout
            .lines()
            .find(|l| l.starts_with(address))
            .unwrap_or_else(|| panic!("no line for {address}:\n{}", text.stdout))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(line(&inbox).starts_with("inbox INBOX "), "{}", text.stdout);
    assert!(line(&inbox).ends_with(" s"), "a delay: {}", text.stdout);
    assert!(line(&junk).starts_with("junk Junk "), "{}", text.stdout);
    assert_eq!(line(&lost), "not arrived - -", "{}", text.stdout);
    assert!(
        text.stderr
            .contains(&format!("{lost}: not arrived: 550 5.1.1")),
        "the refusal: {}",
        text.stderr
    );
    assert!(
        text.stdout
            .contains("seeds: 1 in the inbox, 1 in junk, 1 not arrived"),
        "{}",
        text.stdout
    );

    // The account keeps what the check found.
    let job = t.run(&["job", "1"]).success().stdout;
    assert!(job.contains(&format!("{junk}: sent, junk (Junk)")), "{job}");
    assert!(job.contains(&format!("{lost}: failed (550 5.1.1")), "{job}");
    assert!(job.contains("no outside delivery), not arrived"), "{job}");
}

/// Moves the message whose Message-ID is argv[1] from the test mailbox's INBOX to Junk, as
/// a provider's spam filter would.
const MOVE_TO_JUNK: &str = r#"
import imaplib, sys
imap = imaplib.IMAP4("127.0.0.1", 143)
imap.login("mailtest", "mailtest-pass")
imap.create("Junk")
imap.select("INBOX")
_, hits = imap.uid("SEARCH", None, "HEADER", "Message-ID", '"%s"' % sys.argv[1])
uids = hits[0].split()
assert uids, "no such message in INBOX"
for uid in uids:
    status, _ = imap.uid("COPY", uid, "Junk")
    assert status == "OK", status
    imap.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
imap.expunge()
imap.logout()
"#;
