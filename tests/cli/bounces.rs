//! `mailout bounces` and `mailout unsuppress`: each failure classified by reason; the
//! member's address suppressed only for a problem of the member's own (and after too many
//! soft failures), never for the union's own sending (DMARC, blocklists, spam filters),
//! which is reported by receiving domain with exit code 2.

use std::collections::HashSet;

use crate::harness::Test;
use crate::on_both;

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

/// A delivery status notification for `recipient` of the copy with `message_id`.
fn dsn(recipient: &str, status: &str, diagnostic: &str, message_id: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: info@pfcu.example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\nFrom: PFCU <info@pfcu.example.org>\r\nTo: {recipient}\r\n--b--\r\n"
    )
}

fn message_id(t: &Test, address: &str) -> String {
    t.read(&format!("outbox/237/sent/{address}.eml"))
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap()
        .to_string()
}

fn sent_to_crc(backend: crate::harness::Backend) -> (Test, Vec<String>) {
    let t = Test::with_examples().on(backend);
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t.run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes", "-q"])
        .success();
    let mut members: Vec<String> = std::fs::read_dir(t.file("outbox/237/sent"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".eml")
                .to_string()
        })
        .collect();
    members.sort();
    (t, members)
}

on_both! {
    fn the_unions_own_sending_problems_never_suppress_members(backend) {
        let (t, members) = sent_to_crc(backend);
        assert!(members.len() >= 3);
        let ids: Vec<String> = members.iter().map(|m| message_id(&t, m)).collect();
        let t = t
            .write("dmarc.eml", &dsn(&members[0], "5.7.26", "550 5.7.26 Unauthenticated email from pfcu.example.org is not accepted due to domain's DMARC policy", &ids[0]))
            .write("blocklist.eml", &dsn(&members[1], "5.7.1", "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org", &ids[1]))
            .write("spam.eml", &dsn(&members[2], "5.7.1", "550 5.7.1 Our system has detected that this message is likely unsolicited mail (spam)", &ids[2]));
        let run = t.run(&["bounces", "dmarc.eml", "blocklist.eml", "spam.eml"]).code(2);
        assert!(
            run.stdout.ends_with("bounces: 3  hard: 0  soft: 0  sender-side: 3  not bounces: 0\n"),
            "{}",
            run.stdout
        );
        for (member, reason) in [
            (&members[0], "authentication"),
            (&members[1], "blocked"),
            (&members[2], "spam-content"),
        ] {
            assert!(
                run.stdout.lines().any(|l| l.starts_with("sender-side") && l.contains(reason) && l.contains(member.as_str()) && l.contains("job 1")),
                "{member} {reason}:\n{}",
                run.stdout
            );
        }
        // Named by receiving domain, as a problem with our sending.
        assert!(
            run.stderr.contains("problem with our sending: ") && run.stderr.contains("our mail failed authentication (SPF, DKIM or DMARC)"),
            "{}",
            run.stderr
        );
        assert_eq!(t.run(&["suppressed"]).success().stdout.lines().count(), 1, "nobody suppressed");
        let json = t.run(&["bounces", "dmarc.eml", "--json"]).code(2);
        assert!(json.stdout.contains("\"sender_side\":1"), "{}", json.stdout);
        t.assert_store_on(backend);
    }

    fn a_hard_bounce_suppresses_at_once_and_soft_ones_at_the_limit(backend) {
        let (t, members) = sent_to_crc(backend);
        let ids: Vec<String> = members.iter().map(|m| message_id(&t, m)).collect();
        let config = t.read("config/mailout.toml").replace("soft_limit = 5", "soft_limit = 2");
        let t = t
            .write("config/mailout.toml", &config)
            .write("hard.eml", &dsn(&members[0], "5.1.1", "550 5.1.1 user unknown", &ids[0]))
            .write("full1.eml", &dsn(&members[1], "4.2.2", "452 4.2.2 mailbox full", &ids[1]))
            // A forwarding alias in Final-Recipient: the copy's Message-ID names the member.
            .write("full2.eml", &dsn("forwarded.target@elsewhere.example", "5.2.2", "552 5.2.2 Mailbox full", &ids[1]))
            .write("lunch.eml", "From: jo@example.org\r\nSubject: lunch\r\n\r\nNoon?\r\n");
        let run = t.run(&["bounces", "hard.eml", "full1.eml", "full2.eml", "lunch.eml"]).success();
        assert!(
            run.stdout.ends_with("bounces: 3  hard: 1  soft: 2  sender-side: 0  not bounces: 1\n"),
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("forwarded.target"), "{}", run.stdout);
        let suppressed = t.run(&["suppressed"]).success().stdout;
        let reasons: HashSet<(String, String)> = suppressed
            .lines()
            .skip(1)
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w[0].to_string(), w[1].to_string())
            })
            .collect();
        assert!(reasons.contains(&(members[0].clone(), "hard-bounce".into())), "{suppressed}");
        assert!(reasons.contains(&(members[1].clone(), "soft-bounces".into())), "{suppressed}");
        // The evidence is shown.
        assert!(suppressed.contains("user-unknown: 5.1.1 550 5.1.1 user unknown"), "{suppressed}");
        t.assert_store_on(backend);
    }
}

#[test]
fn unsuppress_lifts_a_bounce_but_not_a_members_own_unsubscribe() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t.run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes", "-q"])
        .success();
    let bounced = "jo.bloggs@example.net";
    let id = message_id(&t, bounced);
    let t = t.write(
        "hard.eml",
        &dsn(bounced, "5.1.1", "550 5.1.1 user unknown", &id),
    );
    t.run(&["bounces", "hard.eml"]).success();
    // An unsubscribe of the member's own, by link.
    let token = mailout::token::TokenKey::new(crate::harness::TOKEN_SECRET.as_bytes().to_vec())
        .token("dafydd.morgan@example.org");
    let t = t.write(
        "request.eml",
        &format!("From: dafydd.morgan@example.org\r\nTo: unsubscribe@pfcu.example.org\r\nSubject: unsubscribe-{token}\r\n\r\n"),
    );
    t.run(&["unsubscribes", "request.eml"]).success();

    let refused = t
        .run(&[
            "unsuppress",
            "dafydd.morgan@example.org",
            "--reason",
            "asked by the branch",
        ])
        .code(1);
    assert!(
        refused.stderr.contains("only they can undo that"),
        "{}",
        refused.stderr
    );
    let lifted = t
        .run(&["unsuppress", bounced, "--reason", "the mailbox works again"])
        .success();
    assert!(
        lifted
            .stdout
            .starts_with(&format!("{bounced}: no longer suppressed (was hard-bounce")),
        "{}",
        lifted.stdout
    );
    let list = t.run(&["suppressed"]).success().stdout;
    assert!(
        !list.contains(bounced) && list.contains("dafydd.morgan@example.org"),
        "{list}"
    );
    // Their own unsubscribe is theirs to undo, on their preferences page; not the office's.
    let refused = t
        .run(&[
            "unsuppress",
            "dafydd.morgan@example.org",
            "--reason",
            "they wrote to ask",
        ])
        .code(1);
    assert!(
        refused.stderr.contains("only they can undo that"),
        "{}",
        refused.stderr
    );
    assert_eq!(t.run(&["suppressed"]).success().stdout.lines().count(), 2);
}

#[test]
fn the_sisimai_reports_add_up_and_no_sender_side_reason_suppresses() {
    let dir = crate::archive::fixture_mail().join("sisimai-set-of-emails");
    let messages = std::fs::read_dir(&dir).unwrap().count() as u64;
    let t = Test::new();
    let run = t.run(&["bounces", dir.to_str().unwrap()]);
    assert_eq!(
        run.code, 2,
        "sender-side failures are in the set: {}",
        run.stderr
    );
    let summary = run.stdout.lines().last().unwrap();
    let n: Vec<u64> = summary
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (bounces, hard, soft, sender_side, not_bounces) = (n[0], n[1], n[2], n[3], n[4]);
    assert_eq!(bounces + not_bounces, messages, "{summary}");
    assert_eq!(hard + soft + sender_side, bounces, "{summary}");
    assert!(bounces > 280 && hard > 100 && sender_side > 50, "{summary}");
    for line in run.stdout.lines().filter(|l| l.starts_with("sender-side")) {
        assert!(
            line.contains("not suppressed: a problem with our sending"),
            "{line}"
        );
    }
    // Everyone suppressed was suppressed for a reason of their own.
    let suppressed = t.run(&["suppressed"]).success().stdout;
    for line in suppressed.lines().skip(1) {
        let reason = line.split_whitespace().nth(1).unwrap();
        assert!(
            ["hard-bounce", "soft-bounces", "complaint"].contains(&reason),
            "{line}"
        );
    }
}
