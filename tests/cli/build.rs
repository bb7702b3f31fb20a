//! `mailout build`: three files per example, deterministic, golden, readable as mail.

use crate::harness::{Test, examples, number_of};

fn build_all(t: &Test) -> String {
    let mut args = vec!["build".to_string()];
    args.extend(examples().iter().map(|e| format!("examples/bulletins/{e}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    t.run(&args).success().stdout
}

#[test]
fn every_example_builds_and_prints_its_three_paths() {
    let t = Test::with_examples();
    let stdout = build_all(&t);
    let mut expected = String::new();
    for e in examples() {
        let n = number_of(&e);
        for f in ["html", "txt", "eml"] {
            expected.push_str(&format!("outbox/{n}/bulletin.{f}\n"));
            assert!(t.file(&format!("outbox/{n}/bulletin.{f}")).is_file());
        }
    }
    assert_eq!(stdout, expected);
}

#[test]
fn building_twice_gives_byte_identical_files() {
    let t = Test::with_examples();
    build_all(&t);
    let first: Vec<Vec<u8>> = outputs(&t);
    build_all(&t);
    assert_eq!(first, outputs(&t));
    // A fresh folder with the same inputs gives the same bytes too.
    let other = Test::with_examples();
    build_all(&other);
    assert_eq!(first, outputs(&other));
}

fn outputs(t: &Test) -> Vec<Vec<u8>> {
    examples()
        .iter()
        .flat_map(|e| {
            let n = number_of(e);
            ["html", "txt", "eml"].map(|f| t.bytes(&format!("outbox/{n}/bulletin.{f}")))
        })
        .collect()
}

#[test]
fn golden_outputs() {
    let t = Test::with_examples();
    build_all(&t);
    for e in examples() {
        let n = number_of(&e);
        insta::assert_snapshot!(
            format!("{n}.html"),
            t.read(&format!("outbox/{n}/bulletin.html"))
        );
        insta::assert_snapshot!(
            format!("{n}.txt"),
            t.read(&format!("outbox/{n}/bulletin.txt"))
        );
        let eml = t.read(&format!("outbox/{n}/bulletin.eml"));
        insta::assert_snapshot!(format!("{n}.eml"), eml.replace("\r\n", "\n"));
    }
}

#[test]
fn text_lines_fit_in_78_columns_and_links_are_numbered_references() {
    let t = Test::with_examples();
    build_all(&t);
    for e in examples() {
        let n = number_of(&e);
        let text = t.read(&format!("outbox/{n}/bulletin.txt"));
        for (i, line) in text.lines().enumerate() {
            assert!(
                line.chars().count() <= 78,
                "{n}.txt line {}: {line:?}",
                i + 1
            );
        }
        assert!(
            !text.contains("](http"),
            "{n}.txt has a Markdown link left in it"
        );
    }
    // 237 has three https links: each is `text [n]` in the body and `[n] URL` in a list.
    let text = t.read("outbox/237/bulletin.txt");
    for n in 1..=3 {
        assert!(
            text.contains(&format!(" [{n}]")),
            "reference [{n}] in the body"
        );
        assert!(
            text.contains(&format!("\n[{n}] https://")),
            "reference [{n}] listed"
        );
    }
    assert!(!text.contains("[4]"));
}

#[test]
fn html_is_self_contained_with_inline_styles() {
    let t = Test::with_examples();
    build_all(&t);
    for e in examples() {
        let n = number_of(&e);
        let html = t.read(&format!("outbox/{n}/bulletin.html"));
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "{n}: script element");
        assert!(!lower.contains("<link"), "{n}: external stylesheet");
        assert!(
            !lower.contains("@import") && !lower.contains("@font-face"),
            "{n}: external font"
        );
        assert!(!lower.contains("src=\"http"), "{n}: remote image");
        assert!(
            html.contains("<td class=\"masthead\" style=\""),
            "{n}: masthead not styled inline"
        );
        assert!(
            html.contains("<h2 class=\"heading\" style=\""),
            "{n}: headings not styled inline"
        );
        assert!(
            html.contains("max-width: 640px"),
            "{n}: column wider than 640 px"
        );
    }
}

#[test]
fn names_and_headings_are_escaped_and_scripts_shown_as_text() {
    let t = Test::with_examples();
    build_all(&t);
    let html = t.read("outbox/239/bulletin.html");
    // Quotes need no escaping in HTML text; `<`, `>` and `&` always do.
    assert!(
        html.contains(">Pay &amp; conditions: \"Tom's\" &lt;update&gt;</h2>"),
        "heading"
    );
    assert!(html.contains(">Siobhan O'Neill</p>"), "signatory");
    assert!(
        html.contains("&lt;script&gt;alert(\"x\")&lt;/script&gt;"),
        "script as text"
    );
    assert!(
        html.contains("&lt;b&gt;raw html&lt;/b&gt;"),
        "raw html as text"
    );
    assert!(!html.contains("<script") && !html.contains("<b>raw"));
    let text = t.read("outbox/239/bulletin.txt");
    assert!(
        text.contains("<script>alert(\"x\")</script>"),
        "text shows it as typed"
    );
}

#[test]
fn a_different_outbox_folder() {
    let t = Test::with_examples();
    let out = t
        .run(&[
            "build",
            "--outbox",
            "public/out",
            "examples/bulletins/236-pandemic-measures.toml",
        ])
        .success();
    assert!(out.stdout.starts_with("public/out/236/bulletin.html\n"));
    assert!(t.file("public/out/236/bulletin.eml").is_file());
}

#[test]
fn an_invalid_bulletin_builds_nothing() {
    let t = Test::new().write(
        "b.toml",
        "[[section]]\nheading = \"A\"\nbody = \"[x](ftp://a.example)\"\n",
    );
    let run = t.run(&["build", "b.toml"]).code(1).after_demo_notice();
    assert!(
        run.stderr
            .starts_with("b.toml:3:9: error: link `ftp://a.example`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("error: `b.toml` has 1 error"));
    assert!(!t.file("outbox/1").exists());
}

#[test]
fn a_folder_without_config_builds_with_the_demo_defaults() {
    let t = Test::new().write(
        "bulletins/1.toml",
        "date = 2026-05-01\n[[section]]\nheading = \"Hello\"\nbody = \"First news.\"\n",
    );
    let run = t
        .run(&["build", "bulletins/1.toml"])
        .success()
        .after_demo_notice();
    assert_eq!(run.stderr, "");
    // Trying mailout out leaves no store behind (the numbers of a demo are not kept).
    assert!(!t.file("mailout.sqlite").exists());
    let eml = t.read("outbox/1/bulletin.eml");
    assert!(eml.contains("From: \"Example Union\" <info@union.example.org>\r\n"));
    assert!(eml.contains("Subject: Latest From Example Union 1\r\n"));
    assert!(eml.contains("To: members@lists.union.example.org\r\n"));
}
