//! A member's record and their rights over it (PRODUCT.md §6d): `mailout members history`
//! (every change of their mail status with its source and evidence), `mailout members
//! export` (what is held about them, as JSON) and `mailout members erase` (everything
//! personal removed; a later import does not bring the address back).

use crate::harness::Test;
use crate::on_both;

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";
const AISHA: &str = "aisha.khan@members.test";

fn history(t: &Test, address: &str) -> Vec<Vec<String>> {
    t.run(&["members", "history", address])
        .success()
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

on_both! {
    fn every_change_of_a_members_status_is_kept_with_its_source(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"]).success();
        t.run(&["unsubscribe", AISHA, "--reason", "phoned the office"]).success();
        t.run(&["unsuppress", AISHA, "--reason", "rang back: a mistake"]).success();
        t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"]).success();
        // Their own unsubscribe, by the link in the copy: an officer cannot undo it.
        let copy = t.read(&format!("outbox/237/sent/{AISHA}.eml"));
        let unfolded = copy.replace("\r\n ", " ").replace("\n ", " ");
        let start = unfolded.find("?subject=unsubscribe-").unwrap() + 21;
        let token: String = unfolded[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let t = t.write(
            "leave.eml",
            &format!("From: {AISHA}\r\nTo: unsubscribe@pfcu.example.org\r\nSubject: unsubscribe-{token}\r\nMessage-ID: <leave@example.net>\r\n\r\nplease\r\n"),
        );
        t.run(&["unsubscribes", "leave.eml"]).success();
        let refused = t.run(&["unsuppress", AISHA, "--reason", "the branch asked"]).code(1);
        assert!(refused.stderr.contains("only they can undo that"), "{}", refused.stderr);

        let rows = history(&t, AISHA);
        let shown: Vec<(&str, &str)> = rows.iter().map(|r| (r[1].as_str(), r[2].as_str())).collect();
        assert_eq!(
            shown,
            [("added", "import"), ("suppressed", "officer"), ("unsuppressed", "officer"), ("unsubscribed", "mailto")],
            "{rows:?}"
        );
        assert_eq!(rows[0][3], "examples/members.csv");
        assert_eq!(rows[1][3], "manual: phoned the office");
        assert_eq!(rows[2][3], "rang back: a mistake");

        let json: serde_json::Value = serde_json::from_str(
            &t.run(&["members", "export", "Aisha.Khan@Members.test"]).success().stdout,
        )
        .unwrap();
        assert_eq!(json["member"]["name"], "Aisha Khan");
        assert_eq!(json["suppression"]["reason"], "unsubscribed");
        assert_eq!(json["history"].as_array().unwrap().len(), 4);
        assert_eq!(json["bulletins"][0]["bulletin"], 237);
        assert_eq!(json["bulletins"][0]["state"], "sent");
        assert_eq!(json["erased"], false);
        let bad = t.run(&["members", "history", "not an address"]).code(1);
        assert!(bad.stderr.contains("`not an address` is not an email address"), "{}", bad.stderr);
        t.assert_store_on(backend);
    }

    fn an_erased_member_is_gone_and_a_later_import_does_not_bring_them_back(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"]).success();
        t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"]).success();
        // Their copy came back into the archive, as a member's copy.
        t.run(&["import", &format!("outbox/237/sent/{AISHA}.eml")]).success();
        let before = t.run(&["archive", "list"]).success().stdout;
        assert!(before.contains("(2 copies: #1 for everyone; #2 member's)"), "{before}");
        let found = t.run(&["archive", "search", "Aisha"]).success().stdout;
        assert!(found.contains("237"), "her copy greets her by name: {found}");

        let erased = t.run(&["members", "erase", AISHA, "--yes"]).success();
        assert!(
            erased.stdout.starts_with(&format!("erased {AISHA}: 1 roster entry, 1 journal row blanked, 0 left-out rows blanked, 1 archived personal copy deleted")),
            "{}",
            erased.stdout
        );
        let members = t.run(&["members", "list"]).success().stdout;
        assert!(!members.contains("aisha"), "{members}");
        let after = t.run(&["archive", "list"]).success().stdout;
        assert!(after.contains("(1 copy: #1 for everyone)"), "{after}");
        let search = t.run(&["archive", "search", "Aisha"]).success().stdout;
        assert!(!search.contains("237"), "her copy's greeting is no longer searchable: {search}");
        let nothing = t.run(&["members", "history", AISHA]).success();
        assert!(nothing.stderr.contains("no history"), "{}", nothing.stderr);
        let json: serde_json::Value =
            serde_json::from_str(&t.run(&["members", "export", AISHA]).success().stdout).unwrap();
        assert_eq!((json["member"].is_null(), json["erased"].as_bool()), (true, Some(true)), "{json}");
        assert!(json["bulletins"].as_array().unwrap().is_empty(), "{json}");
        // The job still adds up; its row no longer says who.
        let job = t.run(&["job", "1"]).success().stdout;
        assert!(job.contains("account:    25 selected = 25 sent"), "{job}");
        assert!(!job.contains("aisha"), "{job}");

        // The roster comes back from the office with her in it (twice): she is not added.
        let again = t.run(&["members", "import", "examples/members.csv"]).success();
        assert!(
            again.stderr.contains(&format!("examples/members.csv:2: warning: `{AISHA}` was erased (`mailout members erase`) and is not added again; row skipped")),
            "{}",
            again.stderr
        );
        assert!(!t.run(&["members", "list"]).success().stdout.contains("aisha"));
        t.run(&["send", "examples/bulletins/238-operational-plan.toml", "--to", "all", "--yes", "-q"]).success();
        assert!(!t.file(&format!("outbox/238/sent/{AISHA}.eml")).exists(), "nothing goes to an erased address");
        let twice = t.run(&["members", "erase", AISHA, "--yes"]).code(1);
        assert!(twice.stderr.contains("was erased already"), "{}", twice.stderr);
        let stranger = t.run(&["members", "erase", "nobody@example.net", "--yes"]).code(1);
        assert!(stranger.stderr.contains("mailout holds nothing about nobody@example.net"), "{}", stranger.stderr);
        t.assert_store_on(backend);
    }

    fn members_at_employer_domains_are_counted_listed_and_can_be_left_out(backend) {
        let csv = "email,name,branch,employer\n\
            jo@justice.gov.uk,Jo,London,NPS\n\
            sam@probation.justice.gov.uk,Sam,Wales,NPS\n\
            kim@cafcass.gov.uk,Kim,Wales,Cafcass\n\
            lee@home.example,Lee,London,NPS\n\
            ann@justice.gov.uk.home.example,Ann,London,NPS\n";
        // The sample config names justice.gov.uk and cafcass.gov.uk.
        let t = Test::with_examples().on(backend).write("members.csv", csv);
        t.run(&["members", "import", "members.csv"]).success();
        let listed = t.run(&["members", "list", "--at-employer-domain"]).success().stdout;
        let emails: Vec<&str> = listed.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(emails, ["jo@justice.gov.uk", "kim@cafcass.gov.uk", "sam@probation.justice.gov.uk"], "{listed}");

        let dry = t.run(&["send", ROUNDUP, "--to", "all", "--dry-run"]).success();
        assert!(
            dry.stderr.contains("warning: 3 members would receive this at their employer's mail domain (cafcass.gov.uk 1, justice.gov.uk 2)"),
            "{}",
            dry.stderr
        );
        let strict = t.run(&["send", ROUNDUP, "--to", "all", "--strict", "--yes", "-q"]).code(1);
        assert!(strict.stderr.contains("error: 3 members would receive this at their employer's mail domain"), "{}", strict.stderr);
        assert_eq!(t.run(&["jobs"]).success().stdout.lines().count(), 1, "no job");

        let config = t.read("config/mailout.toml");
        let t = t.write(
            "config/mailout.toml",
            &config.replace("skip_employer_domains = false", "skip_employer_domains = true"),
        );
        let sent = t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"]).success();
        assert!(
            sent.stderr.contains("3 members at employer domains (cafcass.gov.uk 1, justice.gov.uk 2) are left out of this send"),
            "{}",
            sent.stderr
        );
        let mut got: Vec<String> = std::fs::read_dir(t.file("outbox/237/sent"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, ["ann@justice.gov.uk.home.example.eml", "lee@home.example.eml"]);
        let job = t.run(&["job", "1"]).success().stdout;
        assert!(job.contains("account:    5 selected = 2 sent + 0 failed + 0 uncertain + 3 suppressed before the send"), "{job}");
        assert!(job.contains("suppressed before the send:  employer-domain 3"), "{job}");
        t.assert_store_on(backend);
    }
}
