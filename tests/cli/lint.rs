//! The pre-send checks (PRODUCT.md §6a): warnings from `mailout check` and before every send,
//! each once and at its place; `--strict` makes them errors.

use crate::harness::{Run, Test, examples};

fn warning_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(": warning: "))
        .collect()
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(": error: ")).collect()
}

/// A paragraph repeated to about `kb` kilobytes of Markdown.
fn long_body(kb: usize) -> String {
    let paragraph = "Members in every branch have written to us about the pay offer; their reports follow, branch by branch, in full.\n\n";
    paragraph.repeat(kb * 1024 / paragraph.len() + 1)
}

/// A bulletin that trips five checks: a 150 KB body, an image without alt text, "click
/// here", a plain `http://` link, and an audience nobody is in.
fn troubled() -> String {
    format!(
        r#"number = 250
date = 2026-12-11
headline = "Pay offer: the ballot opens"

[[section]]
heading = "Pay offer"
kind = "general"
body = """
The offer is in. ![](https://pfcu.example.org/chart.png)

To vote, [click here](https://pfcu.example.org/ballot). The old plan is
at [the old site](http://old.pfcu.example.org/plan).
"""

[[section]]
heading = "News for nobody"
audience = ["Nobody"]
body = "A section for a group no member is in."

[[section]]
heading = "Branch reports"
kind = "general"
body = """
{}"""
"#,
        long_body(150)
    )
}

fn with_members() -> Test {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t
}

#[track_caller]
fn assert_once(lines: &[&str], prefix: &str, run: &Run) {
    let n = lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(n, 1, "{prefix:?} {n} times in\n{}", run.stderr);
}

#[test]
fn check_warns_once_per_problem_at_its_place_and_strict_fails() {
    let t = with_members().write("bulletins/250.toml", &troubled());
    let run = t.run(&["check", "bulletins/250.toml"]).success();
    let warnings = warning_lines(&run.stderr);
    assert_eq!(warnings.len(), 5, "{}", run.stderr);
    for prefix in [
        "bulletins/250.toml:9:18: warning: image `https://pfcu.example.org/chart.png` has no alt text",
        "bulletins/250.toml:11:10: warning: link text `click here` says nothing",
        "bulletins/250.toml:12:4: warning: link goes over plain `http://` (`http://old.pfcu.example.org/plan`)",
        "bulletins/250.toml:17:1: warning: section `News for nobody`: its audience `Nobody` matches no member in the store",
        "bulletins/250.toml:23:8: warning: the HTML part is ",
    ] {
        assert_once(&warnings, prefix, &run);
    }
    assert!(
        run.stderr.contains("Gmail clips messages over 102 KB"),
        "{}",
        run.stderr
    );
    // The caret is under the link, on the link's own line of the multi-line string.
    assert!(
        run.stderr.contains(
            "11 | To vote, [click here](https://pfcu.example.org/ballot). The old plan is\n   |          ^^^^^^^^^^^^"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(error_lines(&run.stderr), Vec::<&str>::new());
    assert_eq!(
        run.stdout,
        "bulletins/250.toml: ok (3 sections, number 250, 5 warnings)\n"
    );

    let strict = t.run(&["check", "--strict", "bulletins/250.toml"]).code(1);
    let errors = error_lines(&strict.stderr);
    assert_eq!(errors.len(), 5, "{}", strict.stderr);
    assert!(errors[0].starts_with("bulletins/250.toml:9:18: error: image"));
    assert_eq!(warning_lines(&strict.stderr), Vec::<&str>::new());
    assert_eq!(strict.stdout, "");
}

#[test]
fn the_examples_give_no_warnings() {
    let t = with_members();
    for e in examples() {
        let path = format!("examples/bulletins/{e}");
        let run = t.run(&["check", "--strict", &path]).success();
        assert_eq!(run.stderr, "", "{path}");
        assert!(!run.stdout.contains("warning"), "{}", run.stdout);
    }
}

#[test]
fn an_unknown_name_beside_a_known_one_is_placed_at_the_name() {
    let t = with_members().write(
        "b.toml",
        "[[section]]\nheading = \"Pay\"\naudience = [\"NPS\", \"Cafcas\"]\nbody = \"b\"\n",
    );
    let run = t.run(&["check", "b.toml"]).success();
    assert_eq!(
        warning_lines(&run.stderr),
        [
            "b.toml:3:20: warning: `Cafcas` is not the branch or employer of any member; did you mean `Cafcass`?"
        ],
        "{}",
        run.stderr
    );
}

#[test]
fn audiences_are_not_checked_without_a_store_and_check_creates_none() {
    let t = Test::with_examples().write("bulletins/250.toml", &troubled());
    let run = t.run(&["check", "bulletins/250.toml"]).success();
    assert_eq!(warning_lines(&run.stderr).len(), 4, "{}", run.stderr);
    assert!(!run.stderr.contains("audience"), "{}", run.stderr);
    assert!(!t.file("mailout.sqlite").exists());
}

#[test]
fn a_long_subject_and_one_in_capitals() {
    let t = Test::new()
        .write(
            "long.toml",
            &format!(
                "subject = \"{}\"\n[[section]]\nheading = \"A\"\nbody = \"b\"\n",
                "Pay offer ".repeat(8).trim()
            ),
        )
        .write(
            "loud.toml",
            "headline = \"STRIKE BALLOT RESULT\"\n[[section]]\nheading = \"A\"\nbody = \"b\"\n",
        );
    let run = t.run(&["check", "long.toml"]).success().after_demo_notice();
    assert_eq!(warning_lines(&run.stderr).len(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("long.toml:1:11: warning: the subject is 79 characters"),
        "{}",
        run.stderr
    );
    let run = t.run(&["check", "loud.toml"]).success().after_demo_notice();
    assert_eq!(warning_lines(&run.stderr).len(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("loud.toml:1:12: warning: the subject is in capitals"),
        "{}",
        run.stderr
    );
}

#[test]
fn smtp_without_an_unsubscribe_secret_is_a_warning_without_a_place() {
    let t = Test::with_examples().with_smtp_url("smtp://127.0.0.1:2525");
    let file = "examples/bulletins/237-branch-news.toml";
    let run = |args: &[&str]| {
        let out = t
            .command()
            .env_remove("MAILOUT_TOKEN_SECRET")
            .args(args)
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    };
    let warned = run(&["check", file]).success();
    assert_eq!(
        warned.stderr.lines().collect::<Vec<_>>(),
        [
            "warning: no unsubscribe secret: neither the environment nor `.mailout.env` sets `MAILOUT_TOKEN_SECRET`, so unsubscribe links are signed with a secret kept only in the store; add a line `MAILOUT_TOKEN_SECRET=<a long random value>` to `.mailout.env` (`mailout init` writes one in a new folder), or set `MAILOUT_TOKEN_SECRET` where mailout sends and serves"
        ]
    );
    run(&["check", "--strict", file]).code(1);
    // With the secret set (as the harness sets it), nothing to say.
    let run = t.run(&["check", "--strict", file]).success();
    assert_eq!(run.stderr, "");
}

#[test]
fn a_send_prints_the_warnings_and_strict_refuses_to_start() {
    let t = with_members().write("bulletins/250.toml", &troubled());
    // --dry-run changes nothing, and says what the send would say.
    let dry = t
        .run(&["send", "bulletins/250.toml", "--to", "all", "--dry-run"])
        .success();
    assert_eq!(warning_lines(&dry.stderr).len(), 5, "{}", dry.stderr);
    assert!(dry.stdout.starts_with("would send "), "{}", dry.stdout);

    let refused = t
        .run(&[
            "send",
            "bulletins/250.toml",
            "--to",
            "all",
            "--yes",
            "--strict",
        ])
        .code(1);
    assert_eq!(error_lines(&refused.stderr).len(), 5, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "error: not sending: the pre-send checks gave 5 warnings and `--strict` makes them errors"
        ),
        "{}",
        refused.stderr
    );
    assert!(!t.file("outbox/250/sent").exists());
    let jobs = t.run(&["jobs"]).success();
    assert!(!jobs.stdout.contains("250"), "{}", jobs.stdout);

    let sent = t
        .run(&[
            "send",
            "bulletins/250.toml",
            "--to",
            "all",
            "--yes",
            "--quiet",
        ])
        .success();
    let warnings = warning_lines(&sent.stderr);
    assert_eq!(warnings.len(), 5, "{}", sent.stderr);
    assert!(warnings[0].starts_with("bulletins/250.toml:9:18: warning: image"));
    assert!(t.file("outbox/250/sent").is_dir());
}

#[test]
fn accessibility_problems_in_templates_are_warned_at_their_place() {
    let t = Test::with_examples();
    t.run(&["templates", "export"]).success();
    let html = t.read("templates/bulletin.html.hbs");
    let t = t.write(
        "templates/bulletin.html.hbs",
        &html.replacen(
            "<table role=\"presentation\" class=\"outer\"",
            "<table class=\"outer\"",
            1,
        ),
    );
    let section = t.read("templates/partials/section.html.hbs");
    let t = t.write(
        "templates/partials/section.html.hbs",
        &section.replace(" aria-hidden=\"true\"", ""),
    );
    let css = t.read("templates/style.css");
    let t = t.write(
        "templates/style.css",
        &css.replace("color: #55595f; }", "color: #b0b4ba; }"),
    );
    let run = t
        .run(&["check", "examples/bulletins/237-branch-news.toml"])
        .success();
    for expected in [
        "templates/bulletin.html.hbs:16:8: warning: a table in `.outer` has no header cells and no `role=\"presentation\"`",
        "templates/partials/section.html.hbs:1:21: warning: the divider `--oo00oo--` is read aloud by screen readers",
        "templates/style.css:26:1: warning: text in `.contents-title` is #b0b4ba on #f4f6f9, a contrast of 1.9:1 (under 4.5:1)",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected}\nin\n{}",
            run.stderr
        );
    }
    let strict = t
        .run(&[
            "check",
            "--strict",
            "examples/bulletins/237-branch-news.toml",
        ])
        .code(1);
    assert!(
        strict.stderr.contains("error: a table in `.outer`"),
        "{}",
        strict.stderr
    );
}
