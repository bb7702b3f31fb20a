//! `mailout check`: every mistake, each as FILE:LINE:COL, and the exit code.

use crate::harness::{Test, examples};

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(": error: ")).collect()
}

#[test]
fn three_different_mistakes_give_three_located_errors() {
    let t = Test::with_examples().write(
        "bulletins/bad.toml",
        r#"number = 250
headlin = "Pay"

[[section]]
heading = "Pay talks"
kind = "npss"
body = """
Read [the offer](ftp://files.example/offer.pdf) before Friday.
"""
"#,
    );
    let run = t.run(&["check", "bulletins/bad.toml"]).code(1);
    let errors = error_lines(&run.stderr);
    assert_eq!(
        errors,
        [
            "bulletins/bad.toml:2:1: error: unknown key `headlin` in the bulletin; did you mean `headline`?",
            "bulletins/bad.toml:6:8: error: unknown section kind `npss`; did you mean `nps`?",
            "bulletins/bad.toml:8:6: error: link `ftp://files.example/offer.pdf` is not an http(s) or mailto address; mail cannot follow it",
        ],
        "{}",
        run.stderr
    );
    // Each error shows its line with a caret under the place.
    assert!(
        run.stderr
            .contains("6 | kind = \"npss\"\n  |        ^^^^^^\n"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn a_toml_syntax_error_is_reported_the_same_way() {
    let t = Test::new().write("b.toml", "number = 1\n[[section]\nheading = \"x\"\n");
    let run = t.run(&["check", "b.toml"]).code(1);
    let errors = error_lines(&run.stderr);
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].starts_with("b.toml:2:11: error: invalid TOML: unclosed array table"));
}

#[test]
fn good_files_exit_zero() {
    let t = Test::with_examples();
    for e in examples() {
        let path = format!("examples/bulletins/{e}");
        let run = t.run(&["check", &path]).success();
        assert!(
            run.stdout.starts_with(&format!("{path}: ok (")),
            "{}",
            run.stdout
        );
        assert_eq!(run.stderr, "");
    }
}

#[test]
fn check_does_not_create_a_store() {
    let t = Test::with_examples();
    t.run(&["check", "examples/bulletins/236-pandemic-measures.toml"])
        .success();
    assert!(!t.file("mailout.sqlite").exists());
}

#[test]
fn wrong_types_missing_fields_and_bad_greeting_fields_are_all_reported() {
    let t = Test::new().write(
        "b.toml",
        r#"number = "twelve"
date = "30 October"
greeting = "Dear {{nickname}}"
to = ["NPS", 3]

[[section]]
body = "No heading here."

[[section]]
heading = "Empty"
body = "   "

[[signatory]]
role = "General Secretary"

[[attachment]]
path = "docs/missing.pdf"
"#,
    );
    let run = t.run(&["check", "b.toml"]).code(1);
    let errors = error_lines(&run.stderr);
    let places: Vec<&str> = errors
        .iter()
        .map(|l| l.split(": error: ").next().unwrap())
        .collect();
    assert_eq!(
        places,
        [
            "b.toml:1:10",
            "b.toml:2:8",
            "b.toml:3:18",
            "b.toml:4:14",
            "b.toml:6:1",
            "b.toml:11:8",
            "b.toml:13:1",
            "b.toml:17:8"
        ],
        "{}",
        run.stderr
    );
    for needle in [
        "`number` must be a whole number",
        "`date` must be a date like 2026-03-20, not `30 October`",
        "the greeting names `nickname`, a field no member has",
        "items of `to` must be strings, not an integer",
        "`[[section]]` is missing `heading`",
        "section `Empty` is empty",
        "`[[signatory]]` is missing `name`",
        "attachment `docs/missing.pdf` does not exist",
    ] {
        assert!(
            run.stderr.contains(needle),
            "missing {needle:?} in\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_line_break_in_the_subject_is_refused_by_check() {
    let t = Test::new().write(
        "b.toml",
        "subject = \"Pay\\r\\nBcc: everyone@example.org\"\n[[section]]\nheading = \"A\"\nbody = \"b\"\n",
    );
    let run = t.run(&["check", "b.toml"]).code(1).after_demo_notice();
    assert!(
        run.stderr
            .starts_with("b.toml:1:11: error: the subject becomes a mail header"),
        "{}",
        run.stderr
    );
    t.run(&["build", "b.toml"]).code(1);
    assert!(!t.file("outbox").exists());
}

#[test]
fn config_mistakes_are_located_too() {
    let t = Test::new()
        .write(
            "config/mailout.toml",
            "[sender]\nfrom = \"Union <info@union.example.org>\"\nreply_to = \"not an address\"\n",
        )
        .write("b.toml", "[[section]]\nheading = \"A\"\nbody = \"b\"\n");
    let run = t.run(&["check", "b.toml"]).code(1);
    assert!(
        run.stderr.starts_with(
            "config/mailout.toml:3:12: error: `sender.reply_to` `not an address` is not a mailbox"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_config_key_is_an_error() {
    let t = Test::new()
        .write(
            "config/mailout.toml",
            "[organisation]\nname = \"U\"\ncolour = \"red\"\n",
        )
        .write("b.toml", "[[section]]\nheading = \"A\"\nbody = \"b\"\n");
    let run = t.run(&["check", "b.toml"]).code(1);
    assert!(
        run.stderr
            .starts_with("config/mailout.toml:3:1: error: unknown field `colour`"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_explicit_config_that_does_not_exist_is_an_error() {
    let t = Test::new().write("b.toml", "[[section]]\nheading = \"A\"\nbody = \"b\"\n");
    let run = t.run(&["--config", "nope.toml", "check", "b.toml"]).code(1);
    assert!(
        run.stderr
            .starts_with("error: could not read `nope.toml`\ncaused by: "),
        "{}",
        run.stderr
    );
}
