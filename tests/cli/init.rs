//! `mailout init`: from an empty folder to a sent bulletin; refusing to overwrite a config;
//! the token secret it writes (mode 0600, ignored by git, read by every command, the
//! environment winning); the demo notice where there is no config; hostile folder names.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use mailout::token::{Purpose, TokenKey};

use crate::harness::{DEMO_NOTICE, Test};
use crate::servers::SmtpSink;

/// A first bulletin as an officer would write it over the skeleton `mailout new` starts.
const FIRST: &str = r#"number = 1
date = 2026-11-18
headline = "Pay talks: the employers' offer"
to = ["NPS", "Cafcass"]
greeting = "Dear {{first_name}}"
intro = """
Talks with the employers resumed on Monday. Here is where things stand.
"""

[[section]]
heading = "The offer on the table"
kind = "general"
body = """
The employers have offered 3% from April. The Executive meets on Thursday to consider it,
and every branch will be consulted before any answer is given.
"""

[[signatory]]
name = "Alex Morgan"
role = "General Secretary"
"#;

/// The token in a List-Unsubscribe header value.
fn token_in(list_unsubscribe: &str) -> String {
    list_unsubscribe
        .split("/u/")
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap_or("")
        .to_string()
}

/// The secret `init` wrote into `.mailout.env`.
fn written_secret(t: &Test) -> String {
    let text = t.read(".mailout.env");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("MAILOUT_TOKEN_SECRET="))
        .unwrap_or_else(|| panic!("no secret in .mailout.env:\n{text}"));
    line.to_string()
}

#[test]
fn init_then_new_check_build_import_and_send_to_smtp_sink() {
    let t = Test::new();
    let run = t.run_without_secret(&["init"]).success();
    assert!(!run.stderr.contains("demo"), "{}", run.stderr);
    for wrote in [
        "config/mailout.toml",
        "bulletins/.gitkeep",
        "members.csv",
        ".mailout.env",
        ".gitignore",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("wrote ") && l.contains(&format!(" {wrote} "))),
            "{wrote} not reported:\n{}",
            run.stdout
        );
        assert!(t.file(wrote).exists(), "{wrote}");
    }
    assert!(
        !t.file("templates").exists(),
        "the built-in templates are used"
    );
    for step in [
        "mailout new",
        "mailout check bulletins/1.toml",
        "mailout members import members.csv",
        "mailout send bulletins/1.toml --to all --dry-run",
    ] {
        assert!(
            run.stdout.lines().any(|l| l.trim_start().starts_with(step)),
            "next step `{step}` missing:\n{}",
            run.stdout
        );
    }

    // The config loads as written: `new` and `check` work at once, with no demo notice.
    let new = t.run_without_secret(&["new"]).success();
    assert_eq!(new.stdout, "bulletins/1.toml\n");
    assert_eq!(new.stderr, "");
    assert!(
        t.read("bulletins/1.toml")
            .contains("Latest From Your Union 1")
    );

    // The officer writes the bulletin; it checks, builds and sends.
    let t = t.write("bulletins/1.toml", FIRST);
    let check = t
        .run_without_secret(&["check", "bulletins/1.toml"])
        .success();
    assert_eq!(check.stdout, "bulletins/1.toml: ok (1 section, number 1)\n");
    let build = t
        .run_without_secret(&["build", "bulletins/1.toml"])
        .success();
    assert!(
        build.stdout.contains("outbox/1/bulletin.eml"),
        "{}",
        build.stdout
    );
    let import = t
        .run_without_secret(&["members", "import", "members.csv"])
        .success();
    assert!(import.stdout.contains("5 new"), "{}", import.stdout);

    // Sending over SMTP needs the secret: `.mailout.env` has it, so no warning.
    let sink = SmtpSink::start();
    let config = t
        .read("config/mailout.toml")
        .replace("# [smtp]\n", "[smtp]\n")
        .replace(
            "# url = \"smtp://127.0.0.1:2525\"",
            &format!("url = \"smtp://127.0.0.1:{}\"", sink.port),
        );
    let t = t.write("config/mailout.toml", &config);
    let dry = t
        .run_without_secret(&["send", "bulletins/1.toml", "--to", "all", "--dry-run"])
        .success();
    assert!(
        dry.stdout.starts_with(
            "would send `Latest From Your Union 1: Pay talks: the employers' offer` (bulletin 1) to 5 members (--to all)"
        ),
        "{}",
        dry.stdout
    );
    let sent = t
        .run_without_secret(&["send", "bulletins/1.toml", "--to", "all", "--yes", "-q"])
        .success();
    assert!(
        sent.stdout
            .starts_with("job 1 (started): 5 sent, 0 failed, 0 uncertain"),
        "{}",
        sent.stdout
    );
    assert!(!sent.stderr.contains("secret"), "{}", sent.stderr);
    let messages = sink.messages();
    assert_eq!(messages.len(), 5);
    let keys = TokenKey::new(written_secret(&t).into_bytes());
    for m in &messages {
        let token = token_in(&m.header("List-Unsubscribe").unwrap());
        assert!(
            keys.verify(&token, &m.rcpt, Purpose::Unsubscribe, "2026-11-30"),
            "{} carries a token not made with the secret in .mailout.env",
            m.rcpt
        );
        assert!(
            m.rcpt.ends_with("@example.org") || m.rcpt.ends_with("@example.net"),
            "{}",
            m.rcpt
        );
    }
}

#[test]
fn init_twice_refuses_without_force_and_names_the_file() {
    let t = Test::new();
    t.run(&["init"]).success();
    let secret = written_secret(&t);
    let t = t
        .append("config/mailout.toml", "\n# my own edit\n")
        .write("members.csv", "email\nreal.member@example.org\n");

    let again = t.run(&["init"]).code(1);
    assert!(
        again
            .stderr
            .starts_with("error: `config/mailout.toml` already exists; add `--force`"),
        "{}",
        again.stderr
    );
    assert_eq!(again.stdout, "");
    assert!(t.read("config/mailout.toml").ends_with("# my own edit\n"));

    let forced = t.run(&["init", "--force"]).success();
    assert_eq!(t.read("config/mailout.toml"), mailout::init::CONFIG);
    assert!(
        forced
            .stdout
            .lines()
            .any(|l| l.starts_with("replaced") && l.contains("config/mailout.toml")),
        "{}",
        forced.stdout
    );
    // The roster and the secret are never replaced: links already sent keep working.
    assert_eq!(t.read("members.csv"), "email\nreal.member@example.org\n");
    assert_eq!(written_secret(&t), secret);
    assert!(
        forced
            .stdout
            .lines()
            .any(|l| l.starts_with("kept") && l.contains(".mailout.env")),
        "{}",
        forced.stdout
    );
    // The .gitignore is not given the same lines twice.
    assert_eq!(t.read(".gitignore").matches(".mailout.env").count(), 1);

    // Into another folder, named as given.
    let other = t.run(&["init", "elsewhere"]).success();
    assert!(
        other.stdout.contains("elsewhere/config/mailout.toml"),
        "{}",
        other.stdout
    );
    let refused = t.run(&["init", "elsewhere"]).code(1);
    assert!(
        refused
            .stderr
            .starts_with("error: `elsewhere/config/mailout.toml` already exists"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_secret_file_is_private_and_ignored_by_git() {
    let t = Test::new()
        .write(".gitignore", "target/\n")
        .write(".mailout.env", "OTHER=1");
    let run = t.run(&["init"]).success();
    // An existing secrets file without the token secret gets it; an existing .gitignore
    // gets the lines it lacks, after its own.
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("added to") && l.contains(".mailout.env")),
        "{}",
        run.stdout
    );
    assert!(
        t.read(".mailout.env")
            .starts_with("OTHER=1\nMAILOUT_TOKEN_SECRET=")
    );
    assert!(t.read(".gitignore").starts_with("target/\n"));
    let mode = std::fs::metadata(t.file(".mailout.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);

    let fresh = Test::new();
    fresh.run(&["init"]).success();
    let mode = std::fs::metadata(fresh.file(".mailout.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);
    assert_eq!(written_secret(&fresh).len(), 43);
    assert_ne!(
        written_secret(&fresh),
        written_secret(&t),
        "secrets are random"
    );

    // git itself agrees: the secret, the store and the outbox are ignored; the config,
    // the roster and the bulletins are not.
    fresh.run(&["members", "import", "members.csv"]).success();
    fresh.run(&["new"]).success();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(fresh.path())
            .output()
            .expect("git is needed for this test")
    };
    assert!(git(&["init", "-q"]).status.success());
    for ignored in [
        ".mailout.env",
        "mailout.sqlite",
        "mailout.sqlite-wal",
        "outbox/1/bulletin.eml",
    ] {
        assert!(
            git(&["check-ignore", "-q", ignored]).status.success(),
            "{ignored} is not ignored"
        );
    }
    for kept in ["config/mailout.toml", "members.csv", "bulletins/1.toml"] {
        assert!(
            !git(&["check-ignore", "-q", kept]).status.success(),
            "{kept} is ignored"
        );
    }
    let status = git(&["status", "--porcelain", "--untracked-files=all"]);
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(!status.contains(".mailout.env"), "{status}");
    assert!(!status.contains("mailout.sqlite"), "{status}");
    assert!(status.contains("config/mailout.toml"), "{status}");
}

#[test]
fn the_environment_wins_over_the_secret_file() {
    let t = Test::new();
    t.run(&["init"]).success();
    let t = t.write("bulletins/1.toml", FIRST);
    let secret = written_secret(&t);
    let eml = |t: &Test| t.read("outbox/1/bulletin.eml");

    t.run_without_secret(&["build", "bulletins/1.toml"])
        .success();
    let from_file = eml(&t);
    let token = token_in(
        from_file
            .lines()
            .find(|l| l.starts_with("List-Unsubscribe: "))
            .unwrap(),
    );
    assert!(TokenKey::new(secret.clone().into_bytes()).verify(
        &token,
        "members@your-union.example.org",
        Purpose::Unsubscribe,
        "2026-11-30"
    ));

    // The same secret in the environment: the same bytes.
    t.run_command(
        t.command()
            .env("MAILOUT_TOKEN_SECRET", &secret)
            .args(["build", "bulletins/1.toml"]),
    )
    .success();
    assert_eq!(eml(&t), from_file);

    // Another secret in the environment wins over the file's.
    t.run_command(
        t.command()
            .env("MAILOUT_TOKEN_SECRET", "the-environment-wins")
            .args(["build", "bulletins/1.toml"]),
    )
    .success();
    let from_env = eml(&t);
    assert_ne!(from_env, from_file);
    let token = token_in(
        from_env
            .lines()
            .find(|l| l.starts_with("List-Unsubscribe: "))
            .unwrap(),
    );
    assert!(TokenKey::new(b"the-environment-wins".to_vec()).verify(
        &token,
        "members@your-union.example.org",
        Purpose::Unsubscribe,
        "2026-11-30"
    ));

    // An empty variable is no secret: the file's is used.
    t.run_command(
        t.command()
            .env("MAILOUT_TOKEN_SECRET", "")
            .args(["build", "bulletins/1.toml"]),
    )
    .success();
    assert_eq!(eml(&t), from_file);
}

#[test]
fn a_broken_secret_file_is_an_error_with_its_place() {
    let t = Test::with_examples().write(".mailout.env", "# secrets\nMAILOUT_TOKEN_SECRET abc\n");
    let run = t
        .run_without_secret(&["build", "examples/bulletins/237-branch-news.toml"])
        .code(1);
    assert!(
        run.stderr
            .starts_with(".mailout.env:2:1: error: expected `NAME=value`"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_secret_anywhere_is_one_warning_that_says_how_to_fix_it() {
    let t = Test::with_examples().with_smtp_url("smtp://127.0.0.1:2525");
    let run = t
        .run_without_secret(&[
            "check",
            "examples/bulletins/236-pandemic-measures.toml",
            "examples/bulletins/237-branch-news.toml",
        ])
        .success();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("no unsubscribe secret"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].contains("`.mailout.env`"), "{}", warnings[0]);
    assert!(warnings[0].contains("`mailout init`"), "{}", warnings[0]);
    // The secret in the file silences it.
    let t = t.write(".mailout.env", "MAILOUT_TOKEN_SECRET=from-the-file\n");
    let run = t
        .run_without_secret(&["check", "examples/bulletins/236-pandemic-measures.toml"])
        .success();
    assert_eq!(run.stderr, "");
}

#[test]
fn without_a_config_each_command_says_once_that_it_uses_the_demo() {
    let t = Test::new()
        .write("b.toml", "[[section]]\nheading = \"A\"\nbody = \"b\"\n")
        .write(
            "c.toml",
            "number = 7\n[[section]]\nheading = \"C\"\nbody = \"c\"\n",
        );
    for args in [
        &["new"][..],
        &["check", "b.toml", "c.toml"],
        &["build", "b.toml", "c.toml"],
        &["members", "list"],
        &["lists"],
        &["jobs"],
        &["suppressed"],
        &["archive", "list"],
        &["approvals", "b.toml"],
    ] {
        let run = t.run(args).success();
        assert_eq!(run.stderr, DEMO_NOTICE, "{args:?}");
        // Trying mailout out leaves no store behind.
        assert!(
            !t.file("mailout.sqlite").exists(),
            "{args:?} left a mailout.sqlite"
        );
    }
    // A dry run with nobody to send to says so (after the notice, once) and leaves no store.
    let run = t
        .run(&["send", "b.toml", "--to", "all", "--dry-run"])
        .code(1)
        .after_demo_notice();
    assert!(
        run.stderr.starts_with("error: `--to all` selects nobody"),
        "{}",
        run.stderr
    );
    assert!(!t.file("mailout.sqlite").exists());
    assert!(t.file("bulletins/1.toml").exists());
    assert!(t.file("outbox/1/bulletin.html").exists());
    assert!(t.file("outbox/7/bulletin.html").exists());
    // Commands that record something create the store, as the demo promises.
    let t = t.write("members.csv", "email,name\njo@example.org,Jo\n");
    let run = t.run(&["members", "import", "members.csv"]).success();
    assert_eq!(run.stderr.matches("demo organisation").count(), 1);
    assert!(t.file("mailout.sqlite").exists());

    // `init` and `templates export` read no config, so they say nothing of a demo.
    for args in [&["templates", "export"][..], &["init"]] {
        let run = t.run(args).success();
        assert!(!run.stderr.contains("demo"), "{args:?}: {}", run.stderr);
    }
    // With a config, no notice.
    let run = t.run(&["check", "b.toml"]).success();
    assert_eq!(run.stderr, "");
}

#[test]
fn a_closed_stdout_never_panics() {
    let t = Test::new();
    let mut child = t
        .command()
        .args(["init", "here"])
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
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(first.starts_with("wrote"), "{first}");
    assert!(t.file("here/.gitignore").exists());
}

#[test]
fn hostile_folder_names_work_or_fail_with_a_sentence() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let t = Test::new();
    let fine: [&OsStr; 5] = [
        OsStr::new("my union"),
        OsStr::new("Jo's \"union\" $HOME `x`"),
        OsStr::new("line\nbreak"),
        OsStr::from_bytes(b"not-utf8-\xff"),
        OsStr::new("-"),
    ];
    for name in fine {
        let out = t.command().arg("init").arg(name).output().unwrap();
        let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(t.path().join(name).join("config/mailout.toml").exists());
        // The `cd` it suggests takes a shell there.
        let cd = stdout
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("cd "))
            .unwrap_or_else(|| panic!("{name:?}: no cd line:\n{stdout}"));
        // A name shown with `?` or U+FFFD (control characters, bytes that are not UTF-8)
        // cannot be typed back as shown.
        if !cd.contains(['?', '\u{FFFD}']) {
            // `cd -` would go to OLDPWD: one without a config shows it.
            let ok = Command::new("sh")
                .arg("-c")
                .arg(format!("cd {cd} && test -f config/mailout.toml"))
                .current_dir(t.path())
                .env("OLDPWD", "/")
                .status()
                .unwrap();
            assert!(ok.success(), "{name:?}: `cd {cd}` does not get there");
        }
    }

    // Too long for the file system, or not a folder: an error that names it.
    let long = "a".repeat(300);
    let deep = vec!["b".repeat(250); 20].join("/");
    let t = t.write("a-file", "x");
    for name in [long.as_str(), deep.as_str(), "a-file", "a-file/below"] {
        let run = t.run(&["init", name]);
        assert_eq!(run.code, 1, "{name:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("error: "),
            "{name:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("Some("), "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    // An empty name is a usage error.
    let run = t.run(&["init", ""]).code(2);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
}
