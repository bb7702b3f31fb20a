//! Templates: embedded, overridable file by file, exported, strict.

use crate::harness::Test;

const BULLETIN: &str =
    "number = 5\ndate = 2026-05-01\n[[section]]\nheading = \"Hello\"\nbody = \"News.\"\n";

#[test]
fn export_writes_every_template_and_refuses_to_overwrite() {
    let t = Test::new();
    let run = t.run(&["templates", "export"]).success();
    let written: Vec<&str> = run.stdout.lines().collect();
    assert!(written.contains(&"templates/bulletin.html.hbs"));
    assert!(written.contains(&"templates/partials/footer.txt.hbs"));
    assert_eq!(
        t.read("templates/style.css"),
        include_str!("../../templates/style.css")
    );
    let again = t.run(&["templates", "export"]).code(1);
    assert!(
        again.stderr.contains("pass `--force` to replace them"),
        "{}",
        again.stderr
    );
    t.run(&["templates", "export", "--force"]).success();
}

#[test]
fn exported_templates_build_the_same_bytes() {
    let plain = Test::new().write("b.toml", BULLETIN);
    plain.run(&["build", "b.toml"]).success();
    let exported = Test::new().write("b.toml", BULLETIN);
    exported.run(&["templates", "export"]).success();
    exported.run(&["build", "b.toml"]).success();
    assert_eq!(
        plain.bytes("outbox/5/bulletin.eml"),
        exported.bytes("outbox/5/bulletin.eml")
    );
}

#[test]
fn one_overridden_file_changes_only_its_part() {
    let t = Test::new().write("b.toml", BULLETIN).write(
        "templates/partials/footer.txt.hbs",
        "-- \nSent by {{organisation.name}}.\n",
    );
    t.run(&["build", "b.toml"]).success();
    assert!(
        t.read("outbox/5/bulletin.txt")
            .ends_with("-- \nSent by Example Union.\n")
    );
    // The HTML footer is still the built-in one.
    assert!(
        t.read("outbox/5/bulletin.html")
            .contains("Read this bulletin on the web")
    );
}

#[test]
fn a_misspelt_field_is_an_error_not_a_blank() {
    let t = Test::new().write("b.toml", BULLETIN).write(
        "templates/partials/footer.html.hbs",
        "<p>{{organisation.adress}}</p>\n",
    );
    // `check` finds it, in the partial's own file, at its line, with the field meant.
    let check = t.run(&["check", "b.toml"]).code(1).after_demo_notice();
    assert!(
        check.stderr.starts_with(
            "templates/partials/footer.html.hbs:1:4: error: `organisation.adress` is not a field templates can use; did you mean `organisation.address`?\n  |\n1 | <p>{{organisation.adress}}</p>\n  |    ^"
        ),
        "{}",
        check.stderr
    );
    // `build` says the same, once.
    let run = t.run(&["build", "b.toml"]).code(1).after_demo_notice();
    assert_eq!(
        run.stderr,
        "error: templates/partials/footer.html.hbs:1:4: `organisation.adress` is not a field templates can use; did you mean `organisation.address`?\n"
    );
    assert!(!t.file("outbox/5").exists());
}

#[test]
fn a_template_syntax_error_names_the_file() {
    let t = Test::new().write("b.toml", BULLETIN).write(
        "templates/partials/section.txt.hbs",
        "{{#if heading}}unclosed\n",
    );
    let run = t.run(&["build", "b.toml"]).code(1).after_demo_notice();
    assert!(
        run.stderr.starts_with(
            "error: templates/partials/section.txt.hbs:2:1: the handlebars here cannot be read"
        ),
        "{}",
        run.stderr
    );
    let check = t.run(&["check", "b.toml"]).code(1).after_demo_notice();
    assert!(
        check.stderr.starts_with(
            "templates/partials/section.txt.hbs:2:1: error: the handlebars here cannot be read"
        ),
        "{}",
        check.stderr
    );
}
