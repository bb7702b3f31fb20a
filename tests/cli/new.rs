//! `mailout new` and numbering: the next free number, and a sent number never reused.

use mailout::store::{self, EditionRecord};

use crate::harness::{Backend, Test, examples};
use crate::on_both;

#[test]
fn new_in_an_empty_folder_uses_the_defaults() {
    let t = Test::new();
    assert_eq!(t.run(&["new"]).success().stdout, "bulletins/1.toml\n");
    let text = t.read("bulletins/1.toml");
    assert!(text.contains("number = 1\n"));
    assert!(
        text.contains("date = 2026-11-18\n"),
        "SOURCE_DATE_EPOCH pins today: {text}"
    );
}

/// Where a test process opens the test's store itself (runs use it relative to the folder).
fn location(t: &Test, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => t.file("mailout.sqlite").to_str().unwrap().to_string(),
        Backend::Postgres => t.store_location(),
    }
}

on_both! {
    fn new_starts_at_numbering_start_and_follows_builds(backend) {
        let t = Test::with_examples().on(backend);
        let run = t.run(&["new"]).success();
        assert_eq!(run.stdout, "bulletins/236.toml\n");
        // The new file is a valid bulletin, whose placeholder text `check` will not let go
        // out: each is an error at its place, and a send is refused; a build still works.
        let check = t.run(&["check", "bulletins/236.toml"]).code(1);
        let errors: Vec<&str> = check.stderr.lines().filter(|l| l.contains(": error: ")).collect();
        assert_eq!(
            errors,
            [
                "bulletins/236.toml:5:13: error: `The lead story of this bulletin` is placeholder text from `mailout new`; write the bulletin's own words before sending",
                "bulletins/236.toml:10:1: error: `Write the introduction here` is placeholder text from `mailout new`; write the bulletin's own words before sending",
                "bulletins/236.toml:19:1: error: `The first news item` is placeholder text from `mailout new`; write the bulletin's own words before sending",
                "bulletins/236.toml:24:9: error: `Your Name` is placeholder text from `mailout new`; write the bulletin's own words before sending",
            ],
            "{}",
            check.stderr
        );
        t.run(&["members", "import", "examples/members.csv"]).success();
        let send = t.run(&["send", "bulletins/236.toml", "--to", "all", "--yes", "-q"]).code(1);
        assert!(
            send.stderr.ends_with(
                "error: not sending: these 4 problems must be fixed first (`mailout check bulletins/236.toml` lists them)\n"
            ),
            "{}",
            send.stderr
        );
        assert!(!t.file("outbox/236").exists());
        assert!(t.run(&["jobs"]).success().stdout.lines().count() <= 1);
        // Written over, it passes.
        let done = t
            .read("bulletins/236.toml")
            .replace("The lead story of this bulletin", "Pay offer accepted")
            .replace("Write the introduction here", "Members voted to accept the offer")
            .replace("The first news item", "The ballot closed on Friday")
            .replace("Your Name", "Sam Okafor");
        let t = t.write("bulletins/236.toml", &done);
        t.run(&["check", "bulletins/236.toml"]).success();
        // Asking again offers the same number, whose file now exists.
        let again = t.run(&["new"]).code(1);
        assert!(
            again.stderr.starts_with(
                "error: `bulletins/236.toml` already exists; edit it, or build it first"
            ),
            "{}",
            again.stderr
        );

        let mut args = vec!["build".to_string()];
        args.extend(examples().iter().map(|e| format!("examples/bulletins/{e}")));
        t.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .success();
        assert_eq!(t.run(&["new"]).success().stdout, "bulletins/240.toml\n");
        assert_eq!(
            t.run(&["new", "--dir", "drafts", "--number", "300"])
                .success()
                .stdout,
            "drafts/300.toml\n"
        );
        t.assert_store_on(backend);
    }

    fn a_file_without_a_number_keeps_the_number_it_was_built_with(backend) {
        let t = Test::with_examples().on(backend).write(
            "bulletins/draft.toml",
            "date = 2026-05-01\n[[section]]\nheading = \"A\"\nbody = \"first\"\n",
        );
        let first = t.run(&["build", "bulletins/draft.toml"]).success().stdout;
        assert!(first.starts_with("outbox/236/"), "{first}");
        let edited = t.read("bulletins/draft.toml").replace("first", "second");
        let t = t.write("bulletins/draft.toml", &edited);
        let second = t.run(&["build", "bulletins/draft.toml"]).success().stdout;
        assert_eq!(first, second);
        t.assert_store_on(backend);
    }

    fn a_sent_number_is_not_reused_for_other_content(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["build", "examples/bulletins/237-branch-news.toml"])
            .success();
        // Mark 237 as sent, as `mailout send` does.
        {
            let store = store::open(&location(&t, backend)).unwrap();
            let record: EditionRecord = store.edition(237).unwrap().unwrap();
            store.record_sent(&record, "2026-04-17T10:00:00Z").unwrap();
        }
        // The same content builds again.
        t.run(&["build", "examples/bulletins/237-branch-news.toml"])
            .success();
        // Different content under 237 is refused, naming the earlier bulletin.
        let t = t.write(
            "bulletins/other.toml",
            "number = 237\n[[section]]\nheading = \"Other\"\nbody = \"Other news.\"\n",
        );
        let run = t.run(&["build", "bulletins/other.toml"]).code(1);
        assert!(
            run.stderr.starts_with(
                "bulletins/other.toml:1:10: error: number 237 was already sent on 2026-04-17 as `Latest From PFCU 237: court-hours dispute, NI pay and AGM motions` (from `examples/bulletins/237-branch-news.toml`)"
            ),
            "{}",
            run.stderr
        );
        let check = t.run(&["check", "bulletins/other.toml"]).code(1);
        assert!(check.stderr.contains("number 237 was already sent"));
        t.assert_store_on(backend);
    }
}
