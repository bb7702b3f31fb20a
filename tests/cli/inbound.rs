//! Inbound mail that no one here wrote: CR-only line ends, nested Maildirs, copies of our
//! own bulletins (the copy for everyone, proofs, members' own copies), and the search
//! language with its limits.

use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::on_both;

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

fn write_maildir_message(t: &Test, path: &str, subject: &str) {
    std::fs::create_dir_all(t.file(path).parent().unwrap()).unwrap();
    std::fs::write(
        t.file(path),
        format!(
            "Message-ID: <{}@maildir.example>\r\nFrom: Jo <jo@maildir.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nSubject: {subject}\r\n\r\nAbout {subject}.\r\n",
            subject.replace(' ', "-")
        ),
    )
    .unwrap();
}

#[test]
fn mail_with_cr_only_line_ends_is_archived_with_its_fields() {
    let t = Test::new().write(
        "old-mac.eml",
        "Message-ID: <cr-only@x.example>\rFrom: Old Mac <mac@x.example>\rDate: Mon, 2 Mar 2026 09:30:00 +0000\rSubject: Minutes of the branch meeting\r\rThe branch agreed the new rota.\rNext meeting in April.\r",
    );
    let run = t.run(&["import", "old-mac.eml"]).success();
    assert!(
        run.stdout
            .contains("imported: 1  duplicates: 0  flagged: 0"),
        "{}",
        run.stdout
    );
    let show = t
        .run(&["archive", "show", "<cr-only@x.example>"])
        .success()
        .stdout;
    for expected in [
        "subject:    Minutes of the branch meeting",
        "from:       Old Mac <mac@x.example>",
        "date:       2026-03-02T09:30:00Z",
        "Next meeting in April.",
    ] {
        assert!(show.contains(expected), "{expected} in\n{show}");
    }
    // Kept as it came.
    let raw = t
        .run(&["archive", "show", "--raw", "<cr-only@x.example>"])
        .success()
        .stdout;
    assert!(raw.contains("\rNext meeting in April.\r") && !raw.contains('\n'));
    assert!(!search_out(&t, "rota").contains("nothing found"));
}

fn search_out(t: &Test, query: &str) -> String {
    t.run(&["archive", "search", query]).success().stdout
}

on_both! {
    fn nested_maildirs_import_every_message_with_their_folders(backend) {
        let t = Test::new().on(backend);
        // Maildir++: a root with dot folders, nested by dots.
        write_maildir_message(&t, "plusplus/cur/1:2,S", "Inbox note");
        write_maildir_message(&t, "plusplus/.Lists/cur/2:2,S", "Lists note");
        write_maildir_message(&t, "plusplus/.Lists.Union/new/3", "Union note");
        std::fs::write(t.file("plusplus/subscriptions"), "Lists\nLists.Union\n").unwrap();
        std::fs::write(t.file("plusplus/dovecot-uidlist"), "3 V1 N4\n").unwrap();
        // The fs layout: folders in folders, and loose files beside them.
        write_maildir_message(&t, "fs/Work/cur/4", "Work note");
        write_maildir_message(&t, "fs/Work/Branch/new/5", "Branch note");
        write_maildir_message(&t, "fs/Work/loose.eml", "Loose note");
        let run = t.run(&["import", "plusplus", "fs"]).success();
        assert!(run.stdout.contains("imported: 6  duplicates: 0  flagged: 0"), "{}", run.stdout);
        for (folder, subject) in [
            ("Lists", "Lists note"),
            ("Lists/Union", "Union note"),
            ("Work", "Work note"),
            ("Work/Branch", "Branch note"),
            ("Work", "Loose note"),
        ] {
            let list = t.run(&["archive", "list", "--folder", folder]).success().stdout;
            assert!(list.contains(subject), "{subject} in {folder}:\n{list}");
        }
        let top = t.run(&["archive", "list", "--folder", "INBOX"]).success().stdout;
        assert!(top.contains("Inbox note") && !top.contains("Lists note"), "{top}");
        t.assert_store_on(backend);
    }
}

#[test]
fn a_path_with_nothing_to_import_is_an_error() {
    let t = Test::new();
    std::fs::create_dir_all(t.file("empty/sub")).unwrap();
    let run = t.run(&["import", "empty"]).code(1);
    assert!(
        run.stderr.contains("`empty` holds no mail"),
        "{}",
        run.stderr
    );
}

on_both! {
    fn a_proof_and_members_copies_are_one_bulletin_and_never_published(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"]).success();
        t.run(&["send", ROUNDUP, "--proof", "editor@pfcu.example.org"]).success();
        // The file transport: each member's own copy, as they received it.
        t.run(&["send", ROUNDUP, "--to", "employer:PbNI", "--yes", "-q"]).success();
        let members = std::fs::read_dir(t.file("outbox/237/sent")).unwrap().count();
        assert!(members >= 3, "{members}");
        // The organisation imports the copies it received.
        let run = t.run(&["import", "outbox/237/proof", "outbox/237/sent"]).success();
        assert!(run.stdout.contains(&format!("imported: {}", members + 1)), "{}", run.stdout);

        let list = t.run(&["archive", "list"]).success().stdout;
        let rows: Vec<&str> = list.lines().filter(|l| l.starts_with("237 ")).collect();
        assert_eq!(rows.len(), 1, "one bulletin:\n{list}");
        assert!(
            rows[0].contains(&format!("({} copies: #1 for everyone; ", members + 2))
                && rows[0].contains(" proof; ")
                && rows[0].contains(" members')"),
            "{list}"
        );
        // Search finds it once.
        let hits = search_out(&t, "\"Northern Ireland pay\"");
        assert_eq!(hits.lines().filter(|l| l.starts_with('#')).count(), 1, "{hits}");

        // The public page: every section, no member's name or address, no proof.
        t.run(&["archive", "site", "public"]).success();
        let page = t.read("public/237/index.html");
        for heading in [
            "Cafcass court-hours dispute",
            "Northern Ireland pay update",
            "NPS workload tool",
            "CRC contracts",
            "AGM 2026",
        ] {
            assert!(page.contains(heading), "{heading} on the page");
        }
        let roster = t.read("examples/members.csv");
        for line in roster.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let (email, name) = (fields[0], fields.get(1).copied().unwrap_or(""));
            let Some(first) = name.trim_matches('"').split_whitespace().next() else {
                continue;
            };
            for path in files(&t.file("public")) {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                assert!(!text.contains(email), "{email} in {}", path.display());
                assert!(!text.contains(&format!("Dear {first}")), "{first} in {}", path.display());
            }
        }
        assert!(!page.contains("[PROOF]"));
        t.assert_store_on(backend);
    }

    fn search_means_what_it_says(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"]).success();
        t.run(&["send", ROUNDUP, "--to", "employer:NPS", "--yes", "-q"]).success();
        t.run(&["import", "outbox/237/sent"]).success();
        let t = t.write(
            "japanese.eml",
            "Message-ID: <ja@x.example>\nFrom: =?utf-8?b?5pys6YOo?= <hq@x.example>\nSubject: =?utf-8?b?57eP5Lya44Gu44GK55+l44KJ44Gb?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n本日の組合総会は午後二時から本部で開きます。賃金交渉の報告があります。\n",
        );
        t.run(&["import", "japanese.eml"]).success();

        // Words from two sections of one bulletin ("court-hours" and "workload").
        let hits = search_out(&t, "court workload");
        assert_eq!(hits.lines().filter(|l| l.starts_with('#')).count(), 1, "{hits}");
        assert!(hits.contains("[bulletin 237, section "), "{hits}");

        // A word inside a run of Japanese text.
        let hits = search_out(&t, "賃金");
        assert!(hits.contains("[賃金]"), "{hits}");
        assert!(search_out(&t, "総会 報告").lines().any(|l| l.starts_with('#')));

        // Hostile queries get mailout's own errors, never the database's.
        for query in ["NOT pay", "-pay", "\"pay", "pay)", "(pay", "*", "a*", "pay OR", "AND", "subject:"] {
            let run = t.run(&["archive", "search", query]).code(1);
            assert!(
                run.stderr.starts_with("error: cannot search for `")
                    || run.stderr.starts_with("error: say what to look for"),
                "{query}: {}",
                run.stderr
            );
            for leak in ["fts5", "syntax error", "SQLite", "tsquery", "sqlite"] {
                assert!(!run.stderr.contains(leak), "{query}: {}", run.stderr);
            }
        }
        let column = t.run(&["archive", "search", "pay \"rise"]).code(1);
        assert!(column.stderr.contains("the quote at column 5 is never closed"), "{}", column.stderr);

        // A thousand prefixes answer (here: are refused) within a second.
        let many = vec!["a*"; 500].join(" ") + " " + &vec!["ab*"; 500].join(" ");
        let start = Instant::now();
        let run = t.run(&["archive", "search", &many]).code(1);
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
        assert!(run.stderr.contains("cannot search for"), "{}", run.stderr);
        let many = vec!["ab*"; 1000].join(" ");
        let start = Instant::now();
        let run = t.run(&["archive", "search", &many]).code(1);
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
        assert!(run.stderr.contains("more than 32 words"), "{}", run.stderr);
        t.assert_store_on(backend);
    }
}

on_both! {
    fn a_search_past_its_time_budget_says_it_was_cut_short(backend) {
        let t = Test::with_examples().on(backend);
        // 1,500 messages of made-up words, so that hundreds of prefixes have much to expand.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut mbox = String::new();
        for i in 0..1500 {
            mbox.push_str(&format!(
                "From x@x.example Mon Nov 30 10:00:00 2026\nMessage-ID: <w{i}@x.example>\nFrom: x@x.example\nSubject: words {i}\n\n"
            ));
            for _ in 0..150 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let len = 3 + (state % 6) as usize;
                let word: String = (0..len)
                    .map(|k| (b'a' + ((state >> (8 + 5 * k)) % 26) as u8) as char)
                    .collect();
                mbox.push_str(&word);
                mbox.push(' ');
            }
            mbox.push_str("\n\n");
        }
        let config = t.read("config/mailout.toml").replacen(
            "[archive]\n",
            "[archive]\nsearch_max_terms = 1024\nsearch_timeout_secs = 0.001\n",
            1,
        );
        let t = t.write("words.mbox", &mbox).write("config/mailout.toml", &config);
        t.run(&["import", "words.mbox"]).success();
        // Every two-letter prefix, any of them: 676 terms, each matching thousands of words.
        let prefixes: Vec<String> = (b'a'..=b'z')
            .flat_map(|a| (b'a'..=b'z').map(move |b| format!("{}{}*", a as char, b as char)))
            .collect();
        let run = t.run(&["archive", "search", &prefixes.join(" OR ")]).code(1);
        assert!(
            run.stderr.contains("was cut short after 1 ms; narrow it down"),
            "{}",
            run.stderr
        );
        t.assert_store_on(backend);
    }
}

on_both! {
    fn a_members_reply_is_published_without_their_name_or_address(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"]).success();
        let t = t.write(
            "reply.eml",
            "Message-ID: <reply@example.net>\nDate: Mon, 30 Nov 2026 09:00:00 +0000\nFrom: \"Jo Bloggs\" <Jo.Bloggs@example.net>\nTo: news@pfcu.example.org\nSubject: Re: branch meeting\n\nThanks, I will be there. Jo Bloggs, jo.bloggs@example.net\n",
        );
        t.run(&["import", "reply.eml"]).success();
        t.run(&["archive", "site", "public"]).success();
        let mut pages = 0;
        for path in files(&t.file("public")) {
            let text = std::fs::read_to_string(&path).unwrap_or_default().to_lowercase();
            pages += usize::from(text.contains("branch meeting"));
            for secret in ["jo.bloggs@example.net", "jo bloggs", "bloggs"] {
                assert!(!text.contains(secret), "{secret} in {}", path.display());
            }
        }
        assert!(pages >= 2, "the reply's page and the index");
        t.assert_store_on(backend);
    }
}

/// Every file under `dir`.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
