//! Hostile values and hostile readers: a store holding 1 MB names, NUL, right-to-left
//! overrides, emoji and line breaks, listed by every listing command, whole and through a
//! pipe closed after the first line; a 1 MB name never makes a header line over 998 octets;
//! CSV line numbers right with CRLF; a store file the user may not write, read anyway.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::harness::Test;
use crate::servers::running_as_root;

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

fn csv_field(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// A store with hostile members, a suppression, a job and archived mail, and enough rows
/// that every listing overflows a pipe's buffer.
fn hostile() -> Test {
    let huge = "N".repeat(1 << 20);
    let hostile_values = [
        huge.clone(),
        "nul\0inside".to_string(),
        "right\u{202E}to-left".to_string(),
        "emoji 🗳️✊".to_string(),
        "line\r\nbreak\rand\nmore".to_string(),
        "\"quoted\" <angle@brackets>".to_string(),
        "b".repeat(70_000),
    ];
    let mut csv = String::from("email,name,branch,employer,grade\n");
    for (i, v) in hostile_values.iter().enumerate() {
        csv.push_str(&format!(
            "hostile{i}@members.test,{},{},{},{}\n",
            csv_field(v),
            csv_field(v),
            csv_field(v),
            csv_field(v)
        ));
    }
    for i in 0..2000 {
        csv.push_str(&format!(
            "member{i:04}@members.test,Member {i},Branch {i},Employer {i},\n"
        ));
    }
    let t = Test::with_examples().write("members.csv", &csv);
    t.run(&["members", "import", "members.csv"]).success();
    let mut unsubscribe = vec!["unsubscribe".to_string()];
    unsubscribe.extend((0..2000).map(|i| format!("member{i:04}@members.test")));
    unsubscribe.push("--reason".into());
    // One argument may be at most 128 KB (the kernel's limit).
    unsubscribe.push(format!("why \u{202E}\r\n{}", "w".repeat(100_000)));
    let args: Vec<&str> = unsubscribe.iter().map(String::as_str).collect();
    t.run(&args).success();
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    let mut mbox = String::new();
    for i in 0..1500 {
        mbox.push_str(&format!(
            "From x@y Thu Jan  1 00:00:00 2026\nFrom: {v} <x{i}@example.net>\nSubject: {v} {i}\nMessage-ID: <m{i}@example.net>\n\nbody {i}\n\n",
            v = if i == 0 { huge.as_str() } else { "Hi\u{202E} there" }
        ));
    }
    let t = t.write("mail.mbox", &mbox);
    t.run(&["import", "mail.mbox"]).success();
    t
}

const LISTINGS: &[&[&str]] = &[
    &["members", "list"],
    &["lists"],
    &["suppressed"],
    &["jobs"],
    &["job", "1"],
    &["workers"],
    &["archive", "list"],
];

#[test]
fn every_listing_survives_hostile_values_and_a_closed_pipe() {
    let t = hostile();
    for args in LISTINGS {
        let run = t.run(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        for line in run.stdout.lines() {
            assert!(
                line.chars().count() <= 2000,
                "{args:?}: a line of {} characters",
                line.chars().count()
            );
            assert!(
                !line.contains('\0') && !line.contains('\r') && !line.contains('\u{202E}'),
                "{args:?}: {line:?}"
            );
        }
        // A reader that goes away after the first line (`| head -1`).
        let mut child = t
            .command()
            .args(*args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} after its reader went away: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!first.is_empty(), "{args:?}");
    }
}

#[test]
fn a_huge_name_never_makes_a_header_line_over_998_octets() {
    let huge = "Ñame ".repeat(200_000);
    let csv = format!(
        "email,name,branch,employer\nlong@members.test,{},London,NPS\n\"quote\"\"d\"@members.test,\"A \"\"B\"\" <c>\",London,NPS\n",
        csv_field(&huge)
    );
    let t = Test::with_examples().write("members.csv", &csv);
    t.run(&["members", "import", "members.csv"]).success();
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    let copy = t.bytes("outbox/237/sent/long@members.test.eml");
    for line in copy.split(|b| *b == b'\n') {
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    let text = String::from_utf8_lossy(&copy).replace("\r\n ", " ");
    let to = text.lines().find(|l| l.starts_with("To: ")).unwrap();
    assert!(to.ends_with("<long@members.test>"), "{to}");
}

#[test]
fn csv_warnings_name_the_right_line_with_crlf_and_name_both_lines_of_a_duplicate() {
    let csv = "email,name\r\nann@members.test,Ann\r\nnot-an-address,Bad\r\n\"bob@members.test\",\"Bob\r\nSmith\"\r\nANN@Members.Test,Ann Again\r\nann@MEMBERS.test,Ann Thrice\r\n";
    let t = Test::new().write("members.csv", csv);
    let run = t
        .run(&["members", "import", "members.csv"])
        .success()
        .after_demo_notice();
    assert_eq!(
        run.stderr,
        "members.csv:3: warning: `not-an-address` is not a valid email address; row skipped\n\
         members.csv:6: warning: `ann@members.test` is also on line 2; this row replaces that one\n\
         members.csv:7: warning: `ann@members.test` is also on line 2; this row replaces that one\n"
    );
}

#[test]
fn listing_commands_work_on_a_store_file_the_user_cannot_write() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t.run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes", "-q"])
        .success();
    let store = t.file("mailout.sqlite");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Root may write anything: read as `nobody`, who can read the folder but not the file.
    let as_root = running_as_root();
    if as_root {
        for dir in [t.path().to_path_buf(), t.file("config"), t.file("examples")] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
    }
    for args in [
        &["members", "list"][..],
        &["lists"],
        &["suppressed"],
        &["jobs"],
        &["job", "1"],
        &["archive", "list"],
    ] {
        let mut command = t.command();
        if as_root {
            command.uid(65534).gid(65534);
        }
        let out = command.args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Writing is refused with the reason, not a panic.
    let mut command = t.command();
    if as_root {
        command.uid(65534).gid(65534);
    }
    let out = command
        .args(["unsubscribe", "jo.bloggs@example.net"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readonly"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
