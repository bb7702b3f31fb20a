//! End to end through a real Postfix and Dovecot on loopback (`scripts/mta-setup`):
//! `mailout send` delivers a bulletin to several members through Postfix, `mailout import
//! --imap` fetches it from Dovecot, and the archive lists that bulletin's number with all its
//! sections; a member answers the copy's List-Unsubscribe mailto through Postfix, and
//! `mailout unsubscribes --imap` reads it from Dovecot and unsubscribes them. Runs when `MAILOUT_TEST_MTA` is set (`scripts/test` sets it after starting them).

use std::time::{Duration, Instant};

use crate::harness::{Test, skip};

#[test]
fn a_bulletin_sent_through_postfix_comes_back_over_imap_into_the_archive() {
    if std::env::var_os("MAILOUT_TEST_MTA").is_none() {
        skip("MAILOUT_TEST_MTA is not set (scripts/test starts Postfix and Dovecot and sets it)");
        return;
    }
    // The test mailbox keeps every earlier run's mail: this run's bulletin has its own number.
    let random = u32::from_le_bytes(mailout::clock::random_bytes::<4>().unwrap());
    let number = 100_000 + u64::from(random % 800_000_000);
    let tag = format!("e2e{number}");
    let bulletin = format!(
        r#"number = {number}
date = 2026-11-23
headline = "End to end"
greeting = "Dear {{{{first_name}}}}"

[[section]]
heading = "First item {tag}"
kind = "general"
body = "Delivered through Postfix."

[[section]]
heading = "Second item"
kind = "nps"
body = "Fetched from Dovecot."

[[section]]
heading = "Third item"
kind = "general"
body = "Archived with its sections."
"#
    );
    let mut csv = String::from("email,name,branch,employer\n");
    for i in 1..=3 {
        csv.push_str(&format!("{tag}-{i}@members.test,Member {i},London,NPS\n"));
    }
    let t = Test::with_examples()
        .write("e2e.toml", &bulletin)
        .write("members.csv", &csv)
        .with_smtp_url("smtp://127.0.0.1:25");
    // Requests to unsubscribe by mail come back to the same test mailbox.
    let config = t.read("config/mailout.toml").replace(
        "unsubscribe_mailto = \"unsubscribe@pfcu.example.org\"",
        &format!("unsubscribe_mailto = \"unsubscribe-{tag}@members.test\""),
    );
    let t = t.write("config/mailout.toml", &config);
    t.run(&["members", "import", "members.csv"]).success();
    let sent = t
        .run(&["send", "e2e.toml", "--to", "all", "--yes", "-q"])
        .success();
    assert!(
        sent.stdout.starts_with("job 1 (started): 3 sent, 0 failed"),
        "{}",
        sent.stdout
    );

    // Postfix delivers on its own schedule: fetch until the three members' copies are in,
    // beside the copy for everyone the send kept.
    let deadline = Instant::now() + Duration::from_secs(90);
    let member_copy = loop {
        over_imap(&t, "import");
        let list = t.run(&["archive", "list"]).success().stdout;
        if let Some(line) = list.lines().find(|l| {
            l.starts_with(&number.to_string())
                && l.contains("(4 copies: #")
                && l.contains(" for everyone; ")
                && l.contains(" members')")
        }) {
            // `(4 copies: #1 for everyone; #2 #3 #4 members')`: one member's copy.
            let members = line.split(" for everyone; ").nth(1).unwrap();
            break members.split_whitespace().next().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the bulletin did not arrive over IMAP:\n{list}"
        );
    };
    let show = t
        .run(&["archive", "show", &number.to_string()])
        .success()
        .stdout;
    for heading in [
        format!("First item {tag}"),
        "Second item".into(),
        "Third item".into(),
    ] {
        assert!(
            show.lines()
                .any(|l| l.starts_with("section ") && l.ends_with(heading.as_str())),
            "{heading} in\n{show}"
        );
    }
    // A rerun fetches only new mail: none of this run's copies again.
    let again = over_imap(&t, "import");
    assert!(again.contains("duplicates: 0"), "{again}");
    let search = t.run(&["archive", "search", &tag]).success().stdout;
    assert!(
        search.contains(&format!("[bulletin {number}, section 2: First item {tag}]")),
        "{search}"
    );

    // The member answers the List-Unsubscribe mailto of the copy they received, through
    // Postfix; `mailout unsubscribes` reads it from Dovecot and unsubscribes them.
    let raw = t
        .run(&["archive", "show", &member_copy, "--raw"])
        .success()
        .stdout;
    let unfolded = raw.replace("\r\n ", " ").replace("\n ", " ");
    let header = unfolded
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe:"))
        .expect("List-Unsubscribe");
    let mailto = header
        .split("<mailto:")
        .nth(1)
        .and_then(|m| m.split('>').next())
        .expect("a mailto link");
    let (to, query) = mailto.split_once('?').unwrap();
    assert_eq!(to, format!("unsubscribe-{tag}@members.test"));
    let subject = query.strip_prefix("subject=").unwrap();
    let member = raw
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .and_then(|v| v.rsplit('<').next())
        .map(|v| v.trim_end_matches('>').trim().to_string())
        .unwrap();
    smtp_send(
        &member,
        to,
        &format!(
            "From: {member}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <reply-{tag}@members.test>\r\n\r\n\r\n"
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        over_imap(&t, "unsubscribes");
        let suppressed = t.run(&["suppressed"]).success().stdout;
        if suppressed
            .lines()
            .any(|l| l.starts_with(&format!("{member}  unsubscribed")) && l.ends_with("mailto"))
        {
            assert_eq!(
                suppressed.lines().count(),
                2,
                "only that member: {suppressed}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the unsubscribe request did not arrive over IMAP:\n{suppressed}"
        );
    }
}

/// Runs `mailout COMMAND --imap` on the test mailbox in Dovecot; its stdout.
fn over_imap(t: &Test, command: &str) -> String {
    let out = t
        .command()
        .env("MAILOUT_IMAP_PASSWORD", "mailtest-pass")
        .args([command, "--imap", "imap://mailtest@127.0.0.1/INBOX"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Hands one message to Postfix on 127.0.0.1:25.
fn smtp_send(from: &str, to: &str, message: &str) {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect("127.0.0.1:25").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let mut reply = |expect: &str| {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with(expect), "expected {expect}: {line}");
            if line.as_bytes().get(3) == Some(&b' ') {
                break;
            }
        }
    };
    reply("220");
    for (command, expect) in [
        ("EHLO e2e.test\r\n".to_string(), "250"),
        (format!("MAIL FROM:<{from}>\r\n"), "250"),
        (format!("RCPT TO:<{to}>\r\n"), "250"),
        ("DATA\r\n".to_string(), "354"),
        (format!("{message}.\r\n"), "250"),
        ("QUIT\r\n".to_string(), "221"),
    ] {
        out.write_all(command.as_bytes()).unwrap();
        reply(expect);
    }
}
