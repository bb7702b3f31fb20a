//! `mailout unsubscribes`: mail sent to the `List-Unsubscribe` mailto address, read from
//! files or standard input. A verified token unsubscribes its member; forged tokens, bounces
//! quoting a token and copies of our own bulletins change nothing. (Through Postfix and
//! Dovecot over IMAP: `e2e.rs`.)

use crate::harness::Test;
use crate::on_both;

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

/// The token in a copy's `List-Unsubscribe` mailto.
fn mailto_token(copy: &str) -> String {
    let unfolded = copy.replace("\r\n ", " ").replace("\n ", " ");
    let start = unfolded
        .find("?subject=unsubscribe-")
        .expect("a mailto link")
        + 21;
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn request(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: unsubscribe@pfcu.example.org\r\nSubject: {subject}\r\nMessage-ID: <{}@example.net>\r\n\r\n{body}\r\n",
        subject.len() * 7 + body.len()
    )
}

on_both! {
    fn verified_requests_unsubscribe_and_nothing_else_does(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"]).success();
        // The file transport: each member's copy as they receive it.
        t.run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes", "-q"]).success();
        let jo = t.read("outbox/237/sent/jo.bloggs@example.net.eml");
        let jo_token = mailto_token(&jo);
        assert_eq!(jo_token.len(), mailout::token::TOKEN_LEN);
        let other = std::fs::read_dir(t.file("outbox/237/sent"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| !p.to_string_lossy().contains("jo.bloggs"))
            .unwrap();
        let other_copy = std::fs::read_to_string(&other).unwrap();
        let other_token = mailto_token(&other_copy);
        let other_address = other
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".eml")
            .to_string();

        let mut forged: Vec<char> = jo_token.chars().collect();
        forged[30] = if forged[30] == 'A' { 'B' } else { 'A' };
        let forged: String = forged.into_iter().collect();
        let bounce = format!(
            "From: MAILER-DAEMON@example.net\r\nTo: info@pfcu.example.org\r\nSubject: unsubscribe-{jo_token}\r\nMessage-ID: <b1@example.net>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--b--\r\n"
        );
        let t = t
            .write("mail/1.eml", &request("jo.bloggs@example.net", &format!("unsubscribe-{jo_token}"), ""))
            // The body, as some clients put it, from a forwarding address.
            .write("mail/2.eml", &request("someone@elsewhere.example", "Unsubscribe", &format!("unsubscribe-{other_token}")))
            .write("mail/3.eml", &request("mallory@example.com", &format!("unsubscribe-{forged}"), ""))
            .write("mail/4.eml", &bounce)
            .write("mail/5.eml", &request("jo.bloggs@example.net", "Re: AGM motions", &format!("see unsubscribe-{jo_token}")))
            .write("mail/6.eml", &jo)
            .write("mail/7.eml", &request("ann@example.org", "unsubscribe", "please take me off"));
        let run = t.run(&["unsubscribes", "mail"]).success();
        assert!(
            run.stdout
                .ends_with("unsubscribed: 2  invalid: 2  not unsubscribes: 3\n"),
            "{}",
            run.stdout
        );
        let suppressed = t.run(&["suppressed"]).success().stdout;
        assert_eq!(suppressed.lines().count(), 3, "{suppressed}");
        for address in ["jo.bloggs@example.net", other_address.as_str()] {
            assert!(
                suppressed.lines().any(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    words.first() == Some(&address)
                        && words.get(1) == Some(&"unsubscribed")
                        && l.ends_with("mailto")
                }),
                "{address}: {suppressed}"
            );
        }
        // Twice is harmless; JSON adds up too.
        let again = t.run(&["unsubscribes", "mail", "--json"]).success();
        assert_eq!(
            again.stdout.trim(),
            r#"{"messages":7,"unsubscribed":2,"invalid":2,"not_unsubscribes":3}"#
        );
        assert_eq!(t.run(&["suppressed"]).success().stdout.lines().count(), 3);
        t.assert_store_on(backend);
    }
}

#[test]
fn one_request_on_standard_input() {
    use std::io::Write;
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t.run(&["send", ROUNDUP, "--to", "employer:CRC", "--yes", "-q"])
        .success();
    let token = mailto_token(&t.read("outbox/237/sent/jo.bloggs@example.net.eml"));
    let mut child = t
        .command()
        .args(["unsubscribes", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request("jo@example.net", &format!("unsubscribe-{token}"), "").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "unsubscribed  jo.bloggs@example.net  (stdin)\nunsubscribed: 1  invalid: 0  not unsubscribes: 0\n"
    );
    assert!(
        t.run(&["suppressed"])
            .success()
            .stdout
            .contains("jo.bloggs@example.net  unsubscribed")
    );
}
