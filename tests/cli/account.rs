//! A send's account (PRODUCT.md §6c): `mailout job N` (and `--json`, `--csv`) says what
//! became of everyone the job selected, adding up to the selected count whatever happened,
//! with reasons, what came back later, and the same by branch and employer; `--cancel`
//! stops a job, its pending rows counted as cancelled.

use crate::harness::Test;
use crate::on_both;
use crate::servers::{Rule, Scripted};

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

fn rule(address: &str) -> Rule {
    match address
        .split('@')
        .next()
        .unwrap_or("")
        .trim_end_matches(char::is_numeric)
    {
        "bad" => Rule::Reject,
        "drop" => Rule::DropAfterData,
        _ => Rule::Accept,
    }
}

/// Members `names`, alternately in London and Wales, every third at Cafcass.
fn roster(names: &[String]) -> String {
    let mut csv = String::from("email,name,branch,employer\n");
    for (i, n) in names.iter().enumerate() {
        let branch = if i % 2 == 0 { "London" } else { "Wales" };
        let employer = if i % 3 == 0 { "Cafcass" } else { "NPS" };
        csv.push_str(&format!("{n}@d{}.test,{n},{branch},{employer}\n", i % 3));
    }
    csv
}

fn address(names: &[String], name: &str) -> String {
    let i = names.iter().position(|n| n == name).unwrap();
    format!("{name}@d{}.test", i % 3)
}

/// The figures of the line `account: N selected = …` in the order printed.
fn account_line(text: &str) -> Vec<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("account:"))
        .unwrap_or_else(|| panic!("no account line in\n{text}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

on_both! {
    fn every_selected_member_is_accounted_for_in_text_json_and_csv(backend) {
        let server = Scripted::start(rule, true);
        let mut names: Vec<String> = (0..993).map(|i| format!("ok{i}")).collect();
        names.extend(["bad1", "bad2", "drop1", "pre1", "pre2", "pre3", "mid1"].map(String::from));
        let t = Test::with_examples()
            .on(backend)
            .write("members.csv", &roster(&names))
            .with_smtp(
                server.port,
                "concurrency = 2\ntimeout_secs = 1\ndata_timeout_secs = 1\nmax_attempts = 3",
            );
        t.run(&["members", "import", "members.csv"]).success();
        for pre in ["pre1", "pre2", "pre3"] {
            t.run(&["unsubscribe", &address(&names, pre)]).success();
        }
        t.run(&["send", ROUNDUP, "--to", "all", "--enqueue", "--yes"]).success();
        // Suppressed after the job started, before its turn.
        t.run(&["unsubscribe", &address(&names, "mid1")]).success();
        t.run(&["worker", "--exit-when-idle", "-q"]);

        // Later: a hard bounce of one copy, and a member's own unsubscribe by mail.
        let sent = server.accepted();
        let copy_of = |name: &str| {
            let to = address(&names, name);
            sent.iter().find(|m| m.rcpt == to).unwrap_or_else(|| panic!("no copy for {to}")).clone()
        };
        let bounced = copy_of("ok0");
        let t = t.write(
            "dsn.eml",
            &format!(
                "From: MAILER-DAEMON@mx.example.net\r\nTo: info@pfcu.example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {id}\r\nFrom: PFCU <info@pfcu.example.org>\r\nTo: {to}\r\n--b--\r\n",
                to = bounced.rcpt,
                id = bounced.header("Message-ID").unwrap(),
            ),
        );
        t.run(&["bounces", "dsn.eml"]).success();
        let leaver = copy_of("ok1");
        let unfolded = leaver.data.replace("\r\n ", " ").replace("\n ", " ");
        let start = unfolded.find("?subject=unsubscribe-").expect("a mailto link") + 21;
        let token: String = unfolded[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let t = t.write(
            "leave.eml",
            &format!(
                "From: {}\r\nTo: unsubscribe@pfcu.example.org\r\nSubject: unsubscribe-{token}\r\nMessage-ID: <leave@example.net>\r\n\r\nplease\r\n",
                leaver.rcpt
            ),
        );
        t.run(&["unsubscribes", "leave.eml"]).success();

        // 1,000 selected = 993 sent + 2 failed + 1 uncertain + 3 suppressed before + 1 left
        // out during + 0 cancelled + 0 pending; later 1 bounced, 1 unsubscribed.
        let text = t.run(&["job", "1"]).success().stdout;
        assert_eq!(account_line(&text), [1000, 993, 2, 1, 3, 1, 0, 0], "{text}");
        assert!(text.contains("failed by reason:            user-unknown 2"), "{text}");
        assert!(text.contains("suppressed before the send:  manual 3"), "{text}");
        assert!(text.contains("left out during it:          manual 1"), "{text}");
        assert!(text.contains("came back later:             1 bounced (hard 1), 1 unsubscribed"), "{text}");

        let json: serde_json::Value =
            serde_json::from_str(&t.run(&["job", "1", "--json"]).success().stdout).unwrap();
        let f = &json["figures"];
        let outcomes = ["sent", "failed", "uncertain", "suppressed_before", "left_out_during", "cancelled", "pending"];
        let sum = |f: &serde_json::Value| outcomes.iter().map(|k| f[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(f["selected"], 1000);
        assert_eq!(sum(f), 1000);
        assert_eq!((f["bounced"].as_u64(), f["unsubscribed"].as_u64()), (Some(1), Some(1)));
        assert_eq!(json["failures"].as_array().unwrap().len(), 3);
        for groups in ["by_branch", "by_employer"] {
            let groups = json[groups].as_array().unwrap();
            for g in groups {
                assert_eq!(sum(g), g["selected"].as_u64().unwrap(), "{g}");
            }
            let selected: u64 = groups.iter().map(|g| g["selected"].as_u64().unwrap()).sum();
            assert_eq!(selected, 1000, "{groups:?}");
        }

        let csv = t.run(&["job", "1", "--csv"]).success().stdout;
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("group,name,selected,sent,failed,uncertain,suppressed_before,left_out_during,cancelled,pending,bounced,unsubscribed")
        );
        assert_eq!(lines.next(), Some("all,,1000,993,2,1,3,1,0,0,1,1"));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 4, "two branches and two employers: {csv}");
        for row in &rows {
            let n: Vec<u64> = row[2..].iter().map(|v| v.parse().unwrap()).collect();
            assert_eq!(n[1..8].iter().sum::<u64>(), n[0], "{row:?}");
        }

        // The report says the same and adds up.
        let written = t.run(&["job", "1", "--report", "report"]).success();
        assert!(written.stderr.contains("report: report/job-1.html"), "{}", written.stderr);
        let html = t.read("report/job-1.html");
        assert!(html.contains("1,000 selected; 993 sent, 2 failed, 1 uncertain"), "{html}");
        assert!(html.contains("everyone is accounted for"), "{html}");
        t.assert_store_on(backend);
    }

    fn a_cancelled_job_sends_nothing_more_and_counts_its_rows(backend) {
        let t = Test::with_examples().on(backend).with_members(30);
        t.run(&["send", ROUNDUP, "--to", "all", "--enqueue", "--yes"]).success();
        let run = t.run(&["job", "1", "--cancel"]).success();
        assert!(run.stderr.contains("job 1 cancelled: 30 pending copies will not be sent"), "{}", run.stderr);
        t.run(&["worker", "--exit-when-idle", "-q"]).success();
        assert!(!t.file("outbox/237/sent").exists(), "nothing was sent after the cancel");
        let text = t.run(&["job", "1"]).success().stdout;
        assert_eq!(account_line(&text), [30, 0, 0, 0, 0, 0, 30, 0], "{text}");
        assert!(text.contains("state:      cancelled"), "{text}");
        let again = t.run(&["job", "1", "--cancel"]).success();
        assert!(again.stderr.contains("already finished; nothing to cancel"), "{}", again.stderr);
        let missing = t.run(&["job", "9", "--cancel"]).code(1);
        assert!(missing.stderr.contains("there is no job 9"), "{}", missing.stderr);
        t.assert_store_on(backend);
    }

    fn a_top_up_sends_only_to_members_not_yet_in_the_job(backend) {
        let server = Scripted::start(rule, true);
        let mut names: Vec<String> = (0..100).map(|i| format!("ok{i}")).collect();
        let t = Test::with_examples()
            .on(backend)
            .write("members.csv", &roster(&names))
            .with_smtp(server.port, "concurrency = 2");
        let refused = t.run(&["send", ROUNDUP, "--to", "all", "--top-up", "--yes"]).code(1);
        assert!(refused.stderr.contains("there is no job sending bulletin 237 to `all` to top up"), "{}", refused.stderr);
        t.run(&["members", "import", "members.csv"]).success();
        t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"]).success();
        assert_eq!(server.accepted().len(), 100);

        // 50 join, one of whom is suppressed before the top-up; one old member leaves.
        names.extend((0..51).map(|i| format!("new{i}")));
        let t = t.write("members.csv", &roster(&names));
        t.run(&["members", "import", "members.csv"]).success();
        t.run(&["unsubscribe", &address(&names, "new50")]).success();
        t.run(&["unsubscribe", &address(&names, "ok7")]).success();
        let run = t.run(&["send", ROUNDUP, "--to", "all", "--top-up", "--yes"]).success();
        assert!(run.stderr.contains("top-up: wave 2 of job 1 adds 50 members not in it yet"), "{}", run.stderr);

        let received = server.received_by();
        assert_eq!(received.len(), 150, "the 100 and the 50 new ones, nobody else");
        for (to, copies) in &received {
            assert_eq!(copies.len(), 1, "{to} got {} copies", copies.len());
        }
        for i in 0..50 {
            assert!(received.contains_key(&address(&names, &format!("new{i}"))), "new{i}");
        }
        assert!(!received.contains_key(&address(&names, "new50")), "a suppressed newcomer gets nothing");
        let ids: std::collections::HashSet<_> = server.accepted().iter().map(|m| m.header("Message-ID")).collect();
        assert_eq!(ids.len(), 150, "every copy has a Message-ID of its own");

        // 151 selected = 150 sent + 1 suppressed before its wave; waves 100 and 51.
        let text = t.run(&["job", "1"]).success().stdout;
        assert_eq!(account_line(&text), [151, 150, 0, 0, 1, 0, 0, 0], "{text}");
        assert!(text.contains("wave 1 (start):"), "{text}");
        assert!(text.contains("wave 2 (top-up):"), "{text}");
        let csv = t.run(&["job", "1", "--csv"]).success().stdout;
        assert!(csv.contains("\nwave,1,100,100,0,0,0,0,0,0,"), "{csv}");
        assert!(csv.contains("\nwave,2,51,50,0,0,1,0,0,0,"), "{csv}");
        let json: serde_json::Value =
            serde_json::from_str(&t.run(&["job", "1", "--json"]).success().stdout).unwrap();
        assert_eq!(json["waves"][1]["selected"], 51, "{json}");

        // Nobody new: nothing added, nothing sent.
        let again = t.run(&["send", ROUNDUP, "--to", "all", "--top-up", "--yes"]).success();
        assert!(again.stderr.contains("everyone `all` selects is already in job 1; nobody added"), "{}", again.stderr);
        assert_eq!(server.accepted().len(), 150);
        t.assert_store_on(backend);
    }
}
