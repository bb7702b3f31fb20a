//! Drafting (PRODUCT.md §6a): proof sends and sign-off bound to the exact content.

use crate::harness::Test;
use crate::servers::SmtpSink;

const CRISIS: &str = "examples/bulletins/236-pandemic-measures.toml";

/// The Subject of a dumped message, decoded when it is RFC 2047 encoded.
fn subject(text: &str) -> String {
    let raw = crate::servers::Dumped {
        rcpt: String::new(),
        text: text.to_string(),
    }
    .header("Subject")
    .unwrap_or_default();
    let parsed = mail_parser::MessageParser::default()
        .parse(format!("Subject: {raw}\r\n\r\n").as_bytes())
        .and_then(|m| m.subject().map(str::to_string));
    parsed.unwrap_or(raw)
}

crate::on_both! {
    fn a_proof_goes_to_exactly_those_addresses_and_uses_up_nothing(backend) {
        let sink = SmtpSink::start();
        let t = Test::with_examples()
            .on(backend)
            .with_smtp(sink.port, "");
        t.run(&["members", "import", "examples/members.csv"]).success();
        let next = t.run(&["new", "--dir", "drafts"]).success().stdout;
        std::fs::remove_dir_all(t.file("drafts")).unwrap();
        let run = t
            .run(&[
                "send",
                CRISIS,
                "--proof",
                "editor@office.example, Gen.Sec@office.example",
                "--as-member",
                "jo.bloggs@example.net",
            ])
            .success();
        assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
        let messages = sink.messages();
        assert_eq!(messages.len(), 2);
        let mut rcpts: Vec<&str> = messages.iter().map(|m| m.rcpt.as_str()).collect();
        rcpts.sort();
        assert_eq!(rcpts, ["editor@office.example", "gen.sec@office.example"]);
        for m in &messages {
            let subject = subject(&m.text);
            assert!(subject.starts_with("[PROOF] Latest From PFCU 236"), "{subject}");
            // Rendered as Jo receives it, addressed to the proof reader.
            assert!(m.text.contains("Dear Jo"), "greeting of the member");
            let id = m.header("Message-ID").unwrap();
            assert!(id.contains(".proof."), "{id}");
            // Dated when it is sent (the harness pins the clock at 2026-11-18 11:06:40).
            let date = m.header("Date").unwrap();
            assert!(date.contains("18 Nov 2026 11:06:40"), "{date}");
        }
        assert_eq!(t.run(&["jobs"]).success().stdout.lines().count(), 1, "no job");
        assert_eq!(t.run(&["new", "--dir", "drafts"]).success().stdout, next, "the number is not used");
        // Not a member: refused before anything is sent.
        let stranger = t
            .run(&["send", CRISIS, "--proof", "a@office.example", "--as-member", "nobody@example.net"])
            .code(1);
        assert!(stranger.stderr.contains("no such member"), "{}", stranger.stderr);
        assert_eq!(sink.messages().len(), 2);
    }

    fn a_send_waits_for_two_different_approvals_of_the_content_as_it_is(backend) {
        let t = Test::with_examples().on(backend);
        let config = t.read("config/mailout.toml");
        assert!(config.contains("required = 0"));
        let t = t.write("config/mailout.toml", &config.replace("required = 0", "required = 2"));
        t.run(&["members", "import", "examples/members.csv"]).success();
        let send = |t: &Test| t.run(&["send", CRISIS, "--to", "employer:PbNI", "--yes", "-q"]);

        let refused = send(&t).code(1);
        assert!(refused.stderr.contains("needs 2 approvals"), "{}", refused.stderr);
        assert_eq!(t.run(&["jobs"]).success().stdout.lines().count(), 1, "no job");

        t.run(&["approve", CRISIS, "--as", "Ian Lawrence"]).success();
        t.run(&["approve", CRISIS, "--as", "Ian Lawrence"]).success();
        let once = send(&t).code(1);
        assert!(once.stderr.contains("and has 1"), "the same person counts once: {}", once.stderr);

        // Katie approves, then the bulletin changes: both approvals are void.
        t.run(&["approve", CRISIS, "--as", "Katie Lomas"]).success();
        let original = t.read(CRISIS);
        let edited = original.replacen("headline = \"", "headline = \"Updated: ", 1);
        assert_ne!(edited, original);
        let t = t.write(CRISIS, &edited);
        let void = send(&t).code(1);
        assert!(void.stderr.contains("and has 0"), "{}", void.stderr);
        assert!(void.stderr.contains("Ian Lawrence") && void.stderr.contains("changed since"), "{}", void.stderr);
        let listed = t.run(&["approvals", CRISIS]).success().stdout;
        assert_eq!(listed.matches("void").count(), 2, "{listed}");

        // Back to the approved text: the approvals hold again, and it sends.
        let t = t.write(CRISIS, &original);
        let sent = send(&t).success();
        assert!(sent.stdout.starts_with("job 1 (started): 4 sent"), "{}", sent.stdout);
    }

    fn an_edited_template_voids_the_approvals(backend) {
        let t = Test::with_examples().on(backend);
        let config = t.read("config/mailout.toml");
        let t = t.write("config/mailout.toml", &config.replace("required = 0", "required = 1"));
        t.run(&["members", "import", "examples/members.csv"]).success();
        t.run(&["approve", CRISIS, "--as", "Ian Lawrence"]).success();
        t.run(&["templates", "export"]).success();
        // An exported, unchanged template shapes nothing new.
        t.run(&["send", CRISIS, "--to", "employer:PbNI", "--dry-run"]).success();
        let html = t.read("templates/bulletin.html.hbs");
        let t = t.write("templates/bulletin.html.hbs", &format!("{html}\n<!-- edited -->\n"));
        let refused = t.run(&["send", CRISIS, "--to", "employer:PbNI", "--yes", "-q"]).code(1);
        assert!(refused.stderr.contains("changed since"), "{}", refused.stderr);
    }
}
