//! `mailout send`: jobs, journals, personal copies, transports, resume after SIGKILL.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use mailout::token::{Purpose, TokenKey};

use crate::harness::{Backend, TOKEN_SECRET, Test};
use crate::on_both;
use crate::servers::SmtpSink;

const CRISIS: &str = "examples/bulletins/236-pandemic-measures.toml";
const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";
/// The token in a List-Unsubscribe header value.
fn token_in(list_unsubscribe: &str) -> String {
    list_unsubscribe
        .split("/u/")
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap_or("")
        .to_string()
}

/// Kills a send with SIGKILL once `after` copies are journaled as sent, runs it again to
/// the end, and checks that everyone got the bulletin, duplicates are at most the
/// concurrency (with the same Message-ID), and the journal says sent for all. `durability`
/// is `[store] durability`.
fn killed_and_rerun(backend: Backend, after: usize, durability: &str) {
    const MEMBERS: usize = 2_000;
    const CONCURRENCY: usize = 4;
    let sink = SmtpSink::start();
    let t = Test::with_examples()
        .on(backend)
        .with_members(MEMBERS)
        .with_smtp(sink.port, &format!("concurrency = {CONCURRENCY}"));
    let config = t.file("config/mailout.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\ndurability = \"process\"\n"), "{text}");
    std::fs::write(
        &config,
        text.replace(
            "\ndurability = \"process\"\n",
            &format!("\ndurability = \"{durability}\"\n"),
        ),
    )
    .unwrap();
    let mut child = t
        .command()
        .args(["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .env("MAILOUT_LOG", "mailout=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sent = 0;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("DEBUG") && line.contains(" sent ") {
            sent += 1;
            if sent == after {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the send finished before it could be killed"
    );
    let before = sink.messages().len();
    assert!(
        before >= after && before < MEMBERS,
        "{before} delivered at the kill"
    );

    let run = t
        .run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    assert!(
        run.stdout.starts_with(&format!(
            "job 1 (resumed): {MEMBERS} sent, 0 failed, 0 uncertain, 0 skipped, 0 pending"
        )),
        "{}",
        run.stdout
    );

    let messages = sink.messages();
    let mut by_rcpt: HashMap<String, Vec<String>> = HashMap::new();
    for m in &messages {
        by_rcpt
            .entry(m.rcpt.clone())
            .or_default()
            .push(m.header("Message-ID").unwrap());
    }
    assert_eq!(by_rcpt.len(), MEMBERS, "everyone received it");
    let duplicates = messages.len() - MEMBERS;
    assert!(
        duplicates <= CONCURRENCY,
        "{duplicates} duplicates after a kill at {after}"
    );
    for (rcpt, ids) in &by_rcpt {
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "{rcpt} got different Message-IDs: {ids:?}"
        );
    }
    let job = t.run(&["job", "1"]).success().stdout;
    assert!(
        job.contains(&format!(
            "recipients: {MEMBERS} ({MEMBERS} sent, 0 failed, 0 uncertain, 0 skipped, 0 pending)"
        )),
        "{job}"
    );
    t.assert_store_on(backend);
}

on_both! {
    fn ten_thousand_members_get_one_personal_copy_each_over_smtp(backend) {
        let sink = SmtpSink::start();
        let t = Test::with_examples()
            .on(backend)
            .with_members(10_000)
            .with_smtp(sink.port, "concurrency = 4");
        let run = t
            .run(&["send", CRISIS, "--to", "all", "--yes", "-q"])
            .success();
        assert!(
            run.stdout.starts_with(
                "job 1 (started): 10000 sent, 0 failed, 0 uncertain, 0 skipped, 0 pending of 10000;"
            ),
            "{}",
            run.stdout
        );

        let messages = sink.messages();
        assert_eq!(messages.len(), 10_000);
        let keys = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec());
        let mut ids = HashSet::new();
        let mut tokens = HashSet::new();
        let mut rcpts = HashSet::new();
        for m in &messages {
            let to = m.header("To").unwrap();
            assert!(
                to.ends_with(&format!("<{}>", m.rcpt)),
                "To {to} for {}",
                m.rcpt
            );
            let token = token_in(&m.header("List-Unsubscribe").unwrap());
            assert!(
                keys.verify(&token, &m.rcpt, Purpose::Unsubscribe, "2026-11-30"),
                "token of {}",
                m.rcpt
            );
            ids.insert(m.header("Message-ID").unwrap());
            tokens.insert(token);
            rcpts.insert(m.rcpt.clone());
        }
        assert_eq!(
            (ids.len(), tokens.len(), rcpts.len()),
            (10_000, 10_000, 10_000)
        );
        // The greeting uses each member's first name.
        let one = messages
            .iter()
            .find(|m| m.rcpt == "member00042@members.test")
            .unwrap();
        assert!(one.text.contains("Dear Member42"), "greeting");

        // Running the same command again sends nothing new.
        let again = t
            .run(&["send", CRISIS, "--to", "all", "--yes", "-q"])
            .success();
        assert!(
            again.stdout.starts_with(
                "job 1 (resumed): 10000 sent, 0 failed, 0 uncertain, 0 skipped, 0 pending of 10000; this run: 0 sent"
            ),
            "{}",
            again.stdout
        );
        assert_eq!(sink.messages().len(), 10_000);
        let jobs = t.run(&["jobs"]).success().stdout;
        assert!(
            jobs.lines()
                .nth(1)
                .unwrap()
                .starts_with("1    236     all  finished  10000"),
            "{jobs}"
        );
        t.assert_store_on(backend);
    }

    fn a_send_killed_early_resumes_with_nobody_skipped_or_mailed_twice(backend) {
        killed_and_rerun(backend, 7, "process");
    }

    fn a_send_killed_midway_resumes_with_nobody_skipped_or_mailed_twice(backend) {
        killed_and_rerun(backend, 911, "process");
    }

    fn a_send_killed_near_the_end_resumes_with_nobody_skipped_or_mailed_twice(backend) {
        killed_and_rerun(backend, 1_876, "process");
    }

    fn killed_under_full_durability_nobody_is_skipped_or_mailed_twice(backend) {
        killed_and_rerun(backend, 7, "full");
        killed_and_rerun(backend, 911, "full");
    }

    fn without_smtp_copies_go_to_files_and_sections_follow_the_audience(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"])
            .success();
        let run = t
            .run(&[
                "send",
                ROUNDUP,
                "--to",
                "employer:CRC,branch:Wales",
                "--yes",
            ])
            .success();
        // Five CRC members and five in Wales, one of them both.
        assert!(
            run.stdout.starts_with("job 1 (started): 9 sent, 0 failed"),
            "{}",
            run.stdout
        );
        let files: Vec<String> = std::fs::read_dir(t.file("outbox/237/sent"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 9);
        // A CRC member gets the CRC item but not the Cafcass one; a Cafcass member in Wales
        // gets the Cafcass item.
        let crc = t.read("outbox/237/sent/jo.bloggs@example.net.eml");
        assert!(crc.contains("CRC contracts: what the transfer means for you"));
        assert!(!crc.contains("court-hours dispute: indicative ballot"));
        let job = t.run(&["jobs"]).success().stdout;
        assert!(job.contains("branch:wales,employer:crc"), "{job}");
        t.assert_store_on(backend);
    }

    fn dry_run_shows_who_and_changes_nothing(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"])
            .success();
        let run = t
            .run(&["send", ROUNDUP, "--to", "employer:PbNI", "--dry-run"])
            .success();
        assert!(
            run.stdout.starts_with("would send `Latest From PFCU 237: court-hours dispute, NI pay and AGM motions` (bulletin 237) to 4 members (--to employer:pbni)\n"),
            "{}",
            run.stdout
        );
        assert_eq!(run.stdout.lines().count(), 5);
        assert!(t.run(&["jobs"]).success().stdout.lines().count() == 1);
        assert!(!t.file("outbox/237/sent").exists());
        // The number is not used up by a dry run.
        assert_eq!(t.run(&["new"]).success().stdout, "bulletins/236.toml\n");
        t.assert_store_on(backend);
    }

    fn suppressed_members_are_never_sent_to(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"])
            .success();
        t.run(&["unsubscribe", "jo.bloggs@example.net"]).success();
        let run = t
            .run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes"])
            .success();
        assert!(
            run.stdout.starts_with("job 1 (started): 4 sent, 0 failed"),
            "{}",
            run.stdout
        );
        assert!(!t.file("outbox/237/sent/jo.bloggs@example.net.eml").exists());
        t.assert_store_on(backend);
    }

    fn selectors_must_be_known_and_select_someone(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"])
            .success();
        let run = t
            .run(&["send", ROUNDUP, "--to", "employr:NPS", "--yes"])
            .code(1);
        assert!(
            run.stderr.contains("unknown selector `employr:NPS`"),
            "{}",
            run.stderr
        );
        let run = t
            .run(&["send", ROUNDUP, "--to", "branch:Atlantis", "--yes"])
            .code(1);
        assert!(
            run.stderr.contains("`--to branch:atlantis` selects nobody"),
            "{}",
            run.stderr
        );
        let run = t.run(&["send", ROUNDUP, "--yes"]).code(1);
        assert!(run.stderr.contains("say who receives it"), "{}", run.stderr);
        t.assert_store_on(backend);
    }

    fn resume_by_job_number(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"])
            .success();
        t.run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes", "-q"])
            .success();
        let run = t.run(&["send", ROUNDUP, "--resume", "1", "-q"]).success();
        assert!(
            run.stdout.starts_with("job 1 (resumed): 5 sent"),
            "{}",
            run.stdout
        );
        let run = t.run(&["send", ROUNDUP, "--resume", "9", "-q"]).code(1);
        assert!(run.stderr.contains("there is no job 9"), "{}", run.stderr);
        let run = t.run(&["send", CRISIS, "--resume", "1", "-q"]).code(1);
        assert!(
            run.stderr.contains("job 1 sends bulletin 237, not 236"),
            "{}",
            run.stderr
        );
        t.assert_store_on(backend);
    }
}
#[test]
fn a_number_being_sent_cannot_change_content() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t.run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes"])
        .success();
    let edited = t
        .read(ROUNDUP)
        .replace("Branch news", "Branch news (corrected)");
    let t = t.write(ROUNDUP, &edited);
    let run = t
        .run(&["send", ROUNDUP, "--to", "employer:NPS", "--yes"])
        .code(1);
    assert!(
        run.stderr.contains("number 237 was already sent"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_sendmail_transport_pipes_each_copy_to_sendmail() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    // A local MTA's `sendmail` interface: `sendmail -i -f FROM -- TO` with the message on
    // standard input. This one files what it is given.
    let bin = t.file("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("sendmail");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> {0}/args\ncat >> {0}/mail\n",
            t.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = t
        .command()
        .env("PATH", path)
        .args([
            "send",
            ROUNDUP,
            "--to",
            "employer:PbNI",
            "--transport",
            "sendmail",
            "--yes",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = t.read("args");
    assert_eq!(args.lines().count(), 4, "{args}");
    assert!(
        args.lines()
            .all(|l| l.contains("-f info@pfcu.example.org") && l.contains("@")),
        "{args}"
    );
    assert_eq!(
        t.read("mail")
            .matches("\nList-Unsubscribe-Post: List-Unsubscribe=One-Click")
            .count(),
        4
    );
}

#[test]
fn implicit_tls_is_verified_against_the_configured_ca() {
    use crate::servers::TlsFront;
    let sink = SmtpSink::start();
    let front = TlsFront::start(sink.port);
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();

    // A certificate from an unknown CA stops the send before anything is written.
    let t = t.append(
        "config/mailout.toml",
        &format!("\n[smtp]\nurl = \"smtps://127.0.0.1:{}\"\n", front.port),
    );
    let run = t
        .run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes", "-q"])
        .code(1);
    assert!(
        run.stderr.contains("TLS with 127.0.0.1:")
            && run.stderr.contains("certificate")
            && run.stderr.contains("nothing was sent"),
        "{}",
        run.stderr
    );
    assert_eq!(
        t.run(&["jobs"]).success().stdout.lines().count(),
        1,
        "no job was started"
    );

    // Trusting the relay's CA, the job starts over TLS.
    let config = t.read("config/mailout.toml").replace(
        &format!("smtps://127.0.0.1:{}\"", front.port),
        &format!(
            "smtps://127.0.0.1:{}?ca={}\"",
            front.port,
            front.ca.display()
        ),
    );
    let t = t.write("config/mailout.toml", &config);
    let run = t
        .run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes", "-q"])
        .success();
    assert!(
        run.stdout.starts_with("job 1 (started): 5 sent"),
        "{}",
        run.stdout
    );
    assert_eq!(sink.messages().len(), 5);
}

#[test]
fn starttls_is_required_and_verified_when_asked() {
    use crate::servers::Aiosmtpd;
    let server = Aiosmtpd::start();
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let t = t.append(
        "config/mailout.toml",
        &format!(
            "\n[smtp]\nurl = \"smtp://127.0.0.1:{}?tls=required&ca={}\"\n",
            server.port,
            server.ca.display()
        ),
    );
    let run = t
        .run(&["send", ROUNDUP, "--to", "employer:PbNI", "--yes", "-q"])
        .success();
    assert!(
        run.stdout.starts_with("job 1 (started): 4 sent"),
        "{}",
        run.stdout
    );
    let received = server.received(4);
    assert!(
        received.iter().all(|l| l.contains("\"tls\": true")),
        "{received:?}"
    );
}

#[test]
fn opportunistic_starttls_encrypts_without_verifying() {
    use crate::servers::Aiosmtpd;
    let server = Aiosmtpd::start();
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let t = t.with_smtp_url(&format!("smtp://127.0.0.1:{}", server.port));
    t.run(&["send", ROUNDUP, "--to", "employer:PbNI", "--yes", "-q"])
        .success();
    let received = server.received(4);
    assert!(
        received.iter().all(|l| l.contains("\"tls\": true")),
        "{received:?}"
    );
}

#[test]
fn required_starttls_refuses_an_unknown_certificate() {
    use crate::servers::Aiosmtpd;
    let server = Aiosmtpd::start();
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let t = t.with_smtp_url(&format!("smtp://127.0.0.1:{}?tls=required", server.port));
    let run = t
        .run(&["send", ROUNDUP, "--to", "employer:PbNI", "--yes", "-q"])
        .code(1);
    assert!(
        run.stderr.contains("STARTTLS with 127.0.0.1:") && run.stderr.contains("certificate"),
        "{}",
        run.stderr
    );
    assert_eq!(
        t.run(&["jobs"]).success().stdout.lines().count(),
        1,
        "no job was started"
    );
}
