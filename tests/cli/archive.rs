//! `mailout import`, `mailout archive …`, `mailout bounces`: received mail in, searched,
//! exported byte for byte, published safely.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use mailout::archive::mbox::MboxReader;
use sha2::{Digest, Sha256};

use crate::harness::{Backend, Test, repo, skip};
use crate::on_both;

/// The committed real mail: bounce reports and torture tests, with their sources and
/// licences in `tests/fixtures/mail/README.md`.
pub fn fixture_mail() -> PathBuf {
    repo().join("tests/fixtures/mail/eml")
}

/// The real mail `scripts/test-data` fetches from package registries: under
/// `MAILOUT_TEST_DATA`, else `target/test-data`.
fn fetched_mail() -> PathBuf {
    std::env::var_os("MAILOUT_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-data"))
        .join("mail")
}

/// The folders of real mail the corpus tests read: the committed ones and the fetched ones,
/// or instead the one folder `MAILOUT_CORPUS` names. `None` (a reported skip) when the
/// fetched mail is not there.
pub fn corpus() -> Option<Vec<PathBuf>> {
    if let Some(path) = std::env::var_os("MAILOUT_CORPUS") {
        let path = PathBuf::from(path);
        if path.is_dir() {
            return Some(vec![path]);
        }
        skip(&format!(
            "MAILOUT_CORPUS names no folder: {}",
            path.display()
        ));
        return None;
    }
    let fetched = fetched_mail();
    if fetched.is_dir() {
        Some(vec![fixture_mail(), fetched])
    } else {
        skip(&format!(
            "no mail at {} (scripts/test-data fetches it)",
            fetched.display()
        ));
        None
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn counts(stdout: &str) -> (u64, u64, u64) {
    let line = stdout.lines().last().unwrap();
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(line.starts_with("imported: "), "{line}");
    (n[0], n[1], n[2])
}

/// `archive export --mbox` gives back `stored` messages, each byte for byte one of
/// `inputs`, no two alike.
fn exports_byte_for_byte(t: &Test, inputs: &[PathBuf], stored: u64) {
    let run = t
        .run(&["archive", "export", "--mbox", "export.mbox"])
        .success();
    assert_eq!(
        run.stdout,
        format!("exported {stored} messages to `export.mbox`\n")
    );
    let exported: Vec<Vec<u8>> = MboxReader::new(std::io::BufReader::new(
        std::fs::File::open(t.file("export.mbox")).unwrap(),
    ))
    .map(|m| m.unwrap().raw)
    .collect();
    assert_eq!(exported.len() as u64, stored);
    let originals: HashSet<String> = inputs
        .iter()
        .map(|p| sha(&std::fs::read(p).unwrap()))
        .collect();
    for raw in &exported {
        assert!(
            originals.contains(&sha(raw)),
            "an exported message differs from every input file"
        );
    }
    let distinct: HashSet<String> = exported.iter().map(|r| sha(r)).collect();
    assert_eq!(distinct.len(), exported.len());
}

fn sha(bytes: &[u8]) -> String {
    mailout::text::hex(&Sha256::digest(bytes))
}

const BUILD_MBOX_AND_MAILDIR: &str = r#"
import mailbox, sys, os
out = sys.argv[1]
box = mailbox.mbox(os.path.join(out, "all.mbox"), create=True)
md = mailbox.Maildir(os.path.join(out, "Maildir"), create=True)
box.lock()
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    box.add(data)
    md.add(data)
box.flush(); box.unlock()
"#;

#[test]
fn the_whole_corpus_in_each_form_is_accounted_for_and_reimports_add_nothing() {
    let Some(corpus) = corpus() else { return };
    let inputs: Vec<PathBuf> = corpus.iter().flat_map(|c| files(c)).collect();
    let n = inputs.len() as u64;

    // The eml folders.
    let t = Test::new();
    let mut import = vec!["import"];
    import.extend(corpus.iter().map(|c| c.to_str().unwrap()));
    let corpus_arg = &import[1..];
    let (imported, duplicates, flagged) = counts(&t.run(&import).success().stdout);
    assert_eq!(imported + duplicates + flagged, n);
    assert!(
        flagged > 0 && imported > n * 9 / 10,
        "{imported} {duplicates} {flagged}"
    );
    assert_eq!(counts(&t.run(&import).success().stdout), (0, n, 0));
    let json = t
        .run(&[&["import", "--json"], corpus_arg].concat())
        .success()
        .stdout;
    assert_eq!(
        json.trim(),
        format!("{{\"imported\":0,\"duplicates\":{n},\"flagged\":0}}")
    );

    // One mbox and one Maildir built from them by Python's mailbox module.
    let build = Test::new();
    let mut python = Command::new("/usr/bin/python3");
    python
        .arg("-c")
        .arg(BUILD_MBOX_AND_MAILDIR)
        .arg(build.path())
        .args(&inputs);
    assert!(python.status().unwrap().success());
    for form in ["all.mbox", "Maildir"] {
        let t = Test::new();
        let path = build.file(form);
        let path = path.to_str().unwrap();
        let first = counts(&t.run(&["import", path]).success().stdout);
        assert_eq!(first.0 + first.1 + first.2, n, "{form}: {first:?}");
        assert_eq!(
            counts(&t.run(&["import", path]).success().stdout),
            (0, n, 0),
            "{form}"
        );
    }

    exports_byte_for_byte(&t, &inputs, imported + flagged);
}

/// Sends the example bulletins with the file transport and imports the copies.
fn archive_of_examples(backend: Backend) -> Test {
    let t = Test::with_examples().on(backend);
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    for b in ["236-pandemic-measures", "237-branch-news", "239-escaping"] {
        t.run(&[
            "send",
            &format!("examples/bulletins/{b}.toml"),
            "--to",
            "employer:NPS",
            "--yes",
            "-q",
        ])
        .success();
    }
    let t = t.write("other.eml", "Message-ID: <lunch@x.example>\nFrom: Jo <jo@x.example>\nSubject: Lunch on Friday\nDate: Mon, 2 Mar 2026 10:00:00 +0000\n\nShall we meet for lunch on Friday? The pay award talk is at two.\n");
    let (imported, ..) = counts(&t.run(&["import", "outbox", "other.eml"]).success().stdout);
    assert!(imported > 10);
    t
}

#[test]
fn the_static_site_has_no_scripts_handlers_or_remote_loads_from_mail() {
    let t = archive_of_examples(Backend::Sqlite).write(
        "hostile.eml",
        "Message-ID: <hostile@x.example>\nFrom: x@x.example\nSubject: Hostile\nContent-Type: text/html\n\n<html><head><script>alert(1)</script><link rel=stylesheet href=\"https://evil.example/a.css\"></head><body onload=\"steal()\"><img src=\"https://tracker.example/p.gif\" onerror=\"x()\"><p style=\"background:url(https://tracker.example/bg)\">Hello</p><a href=\"javascript:alert(2)\">js</a><iframe src=\"https://evil.example\"></iframe></body></html>\n",
    );
    t.run(&["import", "hostile.eml"]).success();
    let run = t.run(&["archive", "site", "public"]).success();
    assert!(
        run.stdout.starts_with("public: 3 bulletins, "),
        "{}",
        run.stdout
    );
    let mut pages = 0;
    for path in files(&t.file("public")) {
        if path.extension().is_some_and(|e| e == "html") {
            pages += 1;
            let html = std::fs::read_to_string(&path).unwrap();
            let lower = html.to_lowercase();
            let own_script = path.ends_with("search.html")
                && lower.matches("<script").count() == 1
                && lower.contains("<script src=\"search.js\">");
            assert!(
                !lower.contains("<script") || own_script,
                "{}",
                path.display()
            );
            let handler = regex_lite::Regex::new(r#"\son[a-z]+\s*="#).unwrap();
            assert!(
                !handler.is_match(&lower),
                "event handler in {}",
                path.display()
            );
            for load in [
                "src=\"http",
                "src='http",
                "url(",
                "evil.example",
                "tracker.example",
                "javascript:",
            ] {
                assert!(!lower.contains(load), "{load} in {}", path.display());
            }
        }
    }
    // The index, search, three bulletins and two other messages: members' own copies
    // have no pages.
    assert!(pages >= 7, "{pages} pages");
    // Every bulletin has its page where its "read on the web" link points, with neighbours.
    let page = t.read("public/237/index.html");
    assert!(page.contains("href=\"../236/\"") && page.contains("href=\"../239/\""));
    assert!(
        t.read("public/feed.xml")
            .contains("<id>https://pfcu.example.org/archive/237/</id>")
    );
    assert!(
        t.read("public/search-index.json")
            .contains("\"u\":\"237/\"")
    );
    assert!(t.read("public/index.html").contains("missing: 238"));
    // Published copies do not show whom they were sent to, nor their unsubscribe links.
    for path in files(&t.file("public")) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains("/u/") && !text.contains("unsubscribe-"),
            "a personal link in {}",
            path.display()
        );
        assert!(
            !text.contains("@members.test") && !text.contains("@example.net"),
            "an address in {}",
            path.display()
        );
    }
}

/// Files read from each source of the corpus, at most.
const SLICE_PER_SOURCE: usize = 50;

/// A modest slice of the corpus: the first files (in name order) of each of its folders
/// (and of the files beside them), so that every source's oddities are in it.
pub fn corpus_slice(corpus: &[PathBuf]) -> Vec<PathBuf> {
    let mut slice = Vec::new();
    for root in corpus {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        let (folders, loose): (Vec<PathBuf>, Vec<PathBuf>) =
            entries.into_iter().partition(|e| e.is_dir());
        slice.extend(loose.into_iter().take(SLICE_PER_SOURCE));
        for folder in folders {
            slice.extend(files(&folder).into_iter().take(SLICE_PER_SOURCE));
        }
    }
    slice
}

/// One hit of `archive search`: the message's id, its date, subject and place (bulletin and
/// section), and the snippet under it.
#[derive(Debug)]
struct Hit {
    id: u64,
    place: String,
    snippet: String,
}

/// Where `workload` is found: the section of 237 that names it.
const WORKLOAD_HIT: &str = "2026-11-18  Latest From PFCU 237: court-hours dispute, NI pay and AGM motions  [bulletin 237, section 4: NPS workload tool: reps’ feedback wanted]";
/// The message that is not a bulletin (so no section).
const LUNCH_HIT: &str = "2026-03-02  Lunch on Friday";

/// Runs `archive search query` and reads its hits, in the order given.
fn search(t: &Test, query: &str) -> Vec<Hit> {
    let stdout = t.run(&["archive", "search", query]).success().stdout;
    let mut hits = Vec::new();
    let mut lines = stdout.lines();
    while let Some(line) = lines.next() {
        let (id, place) = line
            .strip_prefix('#')
            .and_then(|l| l.split_once("  "))
            .unwrap_or_else(|| panic!("not a hit: {line:?} in\n{stdout}"));
        let snippet = lines
            .next()
            .and_then(|l| l.strip_prefix("    "))
            .unwrap_or_else(|| panic!("no snippet under {line:?} in\n{stdout}"));
        hits.push(Hit {
            id: id.parse().unwrap(),
            place: place.to_string(),
            snippet: snippet.to_string(),
        });
    }
    hits
}

on_both! {
    fn our_bulletins_are_recognised_with_their_sections(backend) {
        let t = archive_of_examples(backend);
        let list = t.run(&["archive", "list"]).success().stdout;
        let lines: Vec<&str> = list.lines().collect();
        // Dated when they were sent (SOURCE_DATE_EPOCH in the tests).
        assert!(
            lines[1].starts_with("236           2026-11-18  Latest From PFCU 236: Flu pandemic"),
            "{list}"
        );
        assert!(
            lines[1].contains(" copies: "),
            "every member's copy of 236 is there: {list}"
        );
        assert!(lines[3].starts_with("missing: 238"), "{list}");
        assert!(list.contains("Lunch on Friday"));
        let show = t.run(&["archive", "show", "237"]).success().stdout;
        // The copy for everyone, kept when the send started: every section.
        assert!(show.contains("to:         members@lists.pfcu.example.org"), "{show}");
        for heading in [
            "Cafcass court-hours dispute: indicative ballot opens",
            "NPS workload tool: reps’ feedback wanted",
            "AGM 2026: motions now invited",
            "Training survey: over 1,100 replies so far",
        ] {
            assert!(
                show.lines()
                    .any(|l| l.starts_with("section ") && l.ends_with(heading)),
                "section {heading} in\n{show}"
            );
        }
        assert!(show.starts_with("id:         #"), "{show}");
        assert_eq!(
            show.lines().filter(|l| l.starts_with("section ")).count(),
            7,
            "{show}"
        );
        let by_id = t
            .run(&["archive", "show", "<lunch@x.example>"])
            .success()
            .stdout;
        assert!(by_id.contains("Shall we meet for lunch"));
        let raw = t
            .run(&[
                "archive",
                "show",
                "--raw",
                &format!(
                    "#{}",
                    by_id
                        .lines()
                        .next()
                        .unwrap()
                        .trim_start_matches("id:         #")
                ),
            ])
            .success()
            .stdout;
        assert!(raw.starts_with("Message-ID: <lunch@x.example>\n"));
        t.assert_store_on(backend);
    }

    fn search_finds_words_phrases_and_not_with_snippets_and_sections(backend) {
        let t = archive_of_examples(backend);
        // Every NPS member's copy of 237 was imported beside the copy for everyone: the
        // bulletin is one hit, the copy for everyone.
        let copies = std::fs::read_dir(t.file("outbox/237/sent"))
            .unwrap()
            .count();
        assert!(copies > 1, "{copies} copies of 237");

        let hits = search(&t, "workload");
        assert_eq!(hits.len(), 1, "{hits:#?}");
        assert_eq!(hits[0].place, WORKLOAD_HIT, "{hits:#?}");
        assert!(
            hits[0].snippet.contains("[workload]"),
            "snippet marks the match: {hits:#?}"
        );
        let show = t.run(&["archive", "show", &format!("#{}", hits[0].id)]).success().stdout;
        assert!(show.contains("to:         members@lists.pfcu.example.org"), "the copy for everyone: {show}");

        let phrase = search(&t, "\"pay award\"");
        assert_eq!(phrase.len(), 1, "{phrase:#?}");
        assert_eq!(phrase[0].place, LUNCH_HIT, "{phrase:#?}");
        assert!(
            phrase[0].snippet.contains("The [pay award] talk"),
            "snippet marks the phrase: {phrase:#?}"
        );

        let not = t
            .run(&["archive", "search", "lunch NOT award"])
            .success()
            .stdout;
        assert_eq!(not, "nothing found for `lunch NOT award`\n");

        let both = search(&t, "lunch OR workload");
        assert_eq!(both.len(), 2, "{both:#?}");
        let lunch: Vec<&Hit> = both.iter().filter(|h| h.place == LUNCH_HIT).collect();
        assert_eq!(lunch.len(), 1, "{both:#?}");
        assert!(
            lunch[0].snippet.contains("meet for [lunch] on Friday"),
            "{both:#?}"
        );
        assert_eq!(
            both.iter().filter(|h| h.place == WORKLOAD_HIT).count(),
            1,
            "{both:#?}"
        );

        let bad = t.run(&["archive", "search", "\"unbalanced"]).code(1);
        assert!(bad.stderr.contains("cannot search for"), "{}", bad.stderr);
        t.assert_store_on(backend);
    }

    fn a_malformed_message_is_kept_raw_and_flagged(backend) {
        let t = Test::new()
            .on(backend)
            .write("junk.eml", "\u{0}\u{1}\u{2} this is not mail\n")
            .write("empty.eml", "");
        let (imported, duplicates, flagged) =
            counts(&t.run(&["import", "junk.eml", "empty.eml"]).success().stdout);
        assert_eq!((imported, duplicates, flagged), (0, 0, 2));
        let list = t.run(&["archive", "list"]).success().stdout;
        assert!(list.contains("(flagged: "), "{list}");
        let raw = t.run(&["archive", "show", "--raw", "#1"]).success().stdout;
        assert_eq!(raw, "\u{0}\u{1}\u{2} this is not mail\n");
        t.assert_store_on(backend);
    }

    fn a_slice_of_the_corpus_is_accounted_for_and_exported_byte_for_byte(backend) {
        let Some(corpus) = corpus() else { return };
        let inputs = corpus_slice(&corpus);
        let n = inputs.len() as u64;
        assert!(n > 100, "{n} files in the slice of {corpus:?}");
        let mut args = vec!["import".to_string()];
        args.extend(inputs.iter().map(|p| p.to_str().unwrap().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();

        let t = Test::new().on(backend);
        let (imported, duplicates, flagged) = counts(&t.run(&args).success().stdout);
        assert_eq!(imported + duplicates + flagged, n);
        assert!(imported > n / 2, "{imported} {duplicates} {flagged}");
        assert_eq!(counts(&t.run(&args).success().stdout), (0, n, 0));

        exports_byte_for_byte(&t, &inputs, imported + flagged);
        t.assert_store_on(backend);
    }
}
