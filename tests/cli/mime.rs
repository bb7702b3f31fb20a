//! The built message read back by independent parsers: Python's `email` package and
//! mail-parser. Also: header injection is impossible.

use std::process::Command;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::harness::{Test, examples, number_of};

fn built() -> Test {
    let t = Test::with_examples();
    let mut args = vec!["build".to_string()];
    args.extend(examples().iter().map(|e| format!("examples/bulletins/{e}")));
    t.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .success();
    t
}

const PYTHON_CHECK: &str = r#"
import email, sys
from email import policy
m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=policy.default)
defects = [str(d) for p in m.walk() for d in p.defects]
alt = next(p for p in m.walk() if p.get_content_type() == 'multipart/alternative')
kids = [(k.get_content_type(), k.get_content_charset()) for k in alt.iter_parts()]
text = m.get_body(('plain',)).get_content()
html = m.get_body(('html',)).get_content()
print(repr((defects, kids, m['Subject'] is not None, len(text) > 100, '<html' in html)))
"#;

#[test]
fn python_email_parses_every_message_without_defects() {
    let t = built();
    for e in examples() {
        let n = number_of(&e);
        let path = t.file(&format!("outbox/{n}/bulletin.eml"));
        let out = Command::new("/usr/bin/python3")
            .args(["-c", PYTHON_CHECK])
            .arg(&path)
            .output()
            .expect("python3 is needed for this test (apt-get install python3)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "([], [('text/plain', 'utf-8'), ('text/html', 'utf-8')], True, True, True)",
            "{n}"
        );
    }
}

#[test]
fn mail_parser_reads_text_then_html_both_utf8() {
    let t = built();
    for e in examples() {
        let n = number_of(&e);
        let bytes = t.bytes(&format!("outbox/{n}/bulletin.eml"));
        let message = MessageParser::default().parse(&bytes).expect("parses");
        let alternative = message
            .parts
            .iter()
            .find(|p| {
                p.content_type()
                    .is_some_and(|c| c.c_type == "multipart" && c.subtype() == Some("alternative"))
            })
            .expect("a multipart/alternative part");
        let PartType::Multipart(children) = &alternative.body else {
            panic!("not multipart")
        };
        let kinds: Vec<(String, String)> = children
            .iter()
            .map(|&i| {
                let ct = message.parts[i as usize].content_type().unwrap();
                (
                    format!("{}/{}", ct.c_type, ct.subtype().unwrap_or("")),
                    ct.attribute("charset").unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("text/plain".into(), "utf-8".into()),
                ("text/html".into(), "utf-8".into())
            ],
            "{n}"
        );
        let text = message.body_text(0).expect("a text body");
        assert_eq!(
            text.lines().next(),
            Some(format!("Latest From PFCU {n}").as_str())
        );
        if n == "239" {
            assert_eq!(
                message.subject(),
                Some("Latest From PFCU 239: Café workers’ pay – update")
            );
        }
    }
}

#[test]
fn headers_are_the_ones_the_spec_names() {
    let t = built();
    let eml = t.read("outbox/238/bulletin.eml");
    let head = &eml[..eml.find("\r\n\r\n").unwrap()];
    for line in [
        "From: PFCU <info@pfcu.example.org>",
        "Reply-To: info@pfcu.example.org",
        "To: members@lists.pfcu.example.org",
        "Subject: Latest From PFCU 238: PFCU Operational Plan 2027",
        "Date: Fri, 27 Nov 2026 00:00:00 +0000",
        "MIME-Version: 1.0",
        "List-Id: Latest From PFCU <latest-from-pfcu.lists.pfcu.example.org>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "Content-Type: multipart/mixed;",
    ] {
        assert!(head.contains(line), "missing {line:?} in\n{head}");
    }
    assert!(head.contains("Message-ID: <238."), "{head}");
    // Every line ends in CRLF and none is over 998 octets.
    assert!(!eml.replace("\r\n", "").contains('\n'));
    assert!(eml.split("\r\n").all(|l| l.len() <= 998));
    // The attachment rides in the mixed part, after the alternative.
    assert!(
        eml.contains("Content-Disposition: attachment; filename=\"operational-plan-2027.pdf\"")
    );
}

#[test]
fn a_line_break_in_a_config_name_cannot_add_a_header() {
    let t = Test::new()
        .write(
            "config/mailout.toml",
            "[sender]\nfrom = \"Union\\r\\nBcc: all@example.org <info@union.example.org>\"\n",
        )
        .write("b.toml", "[[section]]\nheading = \"A\"\nbody = \"b\"\n");
    let run = t.run(&["build", "b.toml"]).code(1);
    assert!(
        run.stderr
            .starts_with("config/mailout.toml:2:8: error: `sender.from` becomes a mail header"),
        "{}",
        run.stderr
    );
    assert!(!t.file("outbox").exists());
}
