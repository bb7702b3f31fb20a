//! Bulk-mail headers on personal copies, header injection from member data, and DKIM
//! signatures checked by an independent verifier (Debian's python3-dkim).

use std::process::Command;

use mail_parser::{HeaderName, MessageParser};
use mailout::token::TokenKey;

use crate::harness::{TOKEN_SECRET, Test};

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

fn header_names(raw: &[u8]) -> Vec<String> {
    let message = MessageParser::default().parse(raw).unwrap();
    message
        .headers()
        .iter()
        .map(|h| h.name().to_string())
        .collect()
}

#[test]
fn list_headers_are_present_and_correct() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t.run(&["send", ROUNDUP, "--to", "north-and-cafcass", "--yes", "-q"])
        .success();
    let raw = t.bytes("outbox/237/sent/owen.turner@example.net.eml");
    let message = MessageParser::default().parse(&raw).unwrap();
    let get = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().replace("\r\n ", " "))
            .unwrap_or_default()
    };
    assert_eq!(
        get("List-Id"),
        "Latest From PFCU <north-and-cafcass.latest-from-pfcu.lists.pfcu.example.org>"
    );
    assert_eq!(get("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    let unsubscribe = get("List-Unsubscribe");
    let token = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec()).token("owen.turner@example.net");
    assert_eq!(
        unsubscribe,
        format!(
            "<https://pfcu.example.org/u/{token}>, <mailto:unsubscribe@pfcu.example.org?subject=unsubscribe-{token}>"
        )
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("owen.turner@example.net")
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().name(),
        Some("Owen Turner")
    );
    assert!(
        get("Message-ID").starts_with("<237."),
        "{}",
        get("Message-ID")
    );
    // The footer link is the same personal URL; no tracking, no rewritten links.
    let text = message.body_text(0).unwrap();
    assert!(text.contains(&format!("https://pfcu.example.org/u/{token}")));
    let html = message.body_html(0).unwrap();
    assert!(
        html.contains("https://pfcu.example.org/agm/2026"),
        "links stay as written"
    );
    assert!(!html.contains("<img"), "no tracking pixel");
}

#[test]
fn line_breaks_and_quotes_in_csv_names_cannot_add_or_break_headers() {
    let t = Test::with_examples().write(
        "members.csv",
        "email,name,branch,employer\n\
         evil@members.test,\"Mallory\r\nBcc: everyone@example.org\",London,NPS\n\
         quote@members.test,\"Pat \"\"The Rep\"\" O'Hara <x@y.example>\",London,NPS\n\
         plain@members.test,Plain Member,London,NPS\n",
    );
    t.run(&["members", "import", "members.csv"]).success();
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    let plain = header_names(&t.bytes("outbox/237/sent/plain@members.test.eml"));
    for who in ["evil", "quote"] {
        let raw = t.bytes(&format!("outbox/237/sent/{who}@members.test.eml"));
        assert_eq!(
            header_names(&raw),
            plain,
            "{who}: the same headers as anyone else"
        );
        let message = MessageParser::default().parse(&raw).unwrap();
        assert!(message.header(HeaderName::Bcc).is_none());
        let to = message.to().unwrap().first().unwrap();
        assert_eq!(to.address(), Some(format!("{who}@members.test").as_str()));
        let expected = match who {
            "evil" => "Mallory Bcc: everyone@example.org",
            _ => "Pat \"The Rep\" O'Hara <x@y.example>",
        };
        assert_eq!(to.name(), Some(expected));
    }
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is needed for the DKIM tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const VERIFY: &str = r#"
import sys, dkim
record = open(sys.argv[1], 'rb').read().strip()
def dns(name, timeout=5):
    assert name == b'mailout._domainkey.pfcu.example.org.', name
    return record
results = [dkim.verify(open(f, 'rb').read(), dnsfunc=dns) for f in sys.argv[2:]]
print(len(results), all(results))
"#;

fn dkim_round_trip(algorithm: &str) {
    let t = Test::with_examples();
    let key = t.file("config/dkim.key");
    let key = key.to_str().unwrap();
    let public = match algorithm {
        "ed25519" => {
            openssl(&["genpkey", "-algorithm", "ed25519", "-out", key]);
            let der = openssl(&["pkey", "-in", key, "-pubout", "-outform", "DER"]);
            format!("v=DKIM1; k=ed25519; p={}", base64(&der[der.len() - 32..]))
        }
        _ => {
            openssl(&["genrsa", "-traditional", "-out", key, "2048"]);
            let der = openssl(&["rsa", "-in", key, "-pubout", "-outform", "DER"]);
            format!("v=DKIM1; k=rsa; p={}", base64(&der))
        }
    };
    let t = t
        .write("dns.txt", &public)
        .append(
            "config/mailout.toml",
            &format!("\n[dkim]\ndomain = \"pfcu.example.org\"\nselector = \"mailout\"\nkey_file = \"config/dkim.key\"\nalgorithm = \"{algorithm}\"\n"),
        );
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    // Everyone: more copies than an ed25519 key signs before it starts the thread that
    // makes its nonces ahead (whatever that thread has ready by then is used).
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    let mut files: Vec<String> = std::fs::read_dir(t.file("outbox/237/sent"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    assert!(files.len() > 20, "{} copies", files.len());
    let first = t.read(&files[0][t.path().display().to_string().len() + 1..]);
    let signature = first.split("\r\n").next().unwrap();
    let algo = if algorithm == "ed25519" {
        "a=ed25519-sha256"
    } else {
        "a=rsa-sha256"
    };
    assert!(
        signature.starts_with("DKIM-Signature:") && first.contains(algo),
        "{signature}"
    );
    assert!(first.contains("c=relaxed/relaxed"));
    let signed = first
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .replace([' ', '\r', '\n', '\t'], "")
        .to_lowercase();
    for h in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            signed.split(':').any(|s| s == h),
            "{h} not signed: {signed}"
        );
    }
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(VERIFY)
        .arg(t.file("dns.txt"))
        .args(&files)
        .output()
        .expect("python3 with python3-dkim is needed for the DKIM tests");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{} True", files.len())
    );
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn ed25519_signatures_verify_independently() {
    dkim_round_trip("ed25519");
}

#[test]
fn rsa_signatures_verify_independently() {
    dkim_round_trip("rsa-sha256");
}

#[test]
fn a_tampered_message_fails_verification() {
    // The verifier is not simply saying yes: change one signed header and it must fail.
    let t = Test::with_examples();
    let key = t.file("config/dkim.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        key.to_str().unwrap(),
    ]);
    let der = openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let t = t
        .write("dns.txt", &format!("v=DKIM1; k=ed25519; p={}", base64(&der[der.len() - 32..])))
        .append("config/mailout.toml", "\n[dkim]\ndomain = \"pfcu.example.org\"\nselector = \"mailout\"\nkey_file = \"config/dkim.key\"\nalgorithm = \"ed25519\"\n");
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t.run(&["send", ROUNDUP, "--to", "employer:PbNI", "--yes", "-q"])
        .success();
    let path = "outbox/237/sent/kieran.mcbride@example.net.eml";
    let original = t.read(path);
    let t = t.write(
        "tampered.eml",
        &original.replace(
            "Subject: Latest From PFCU 237",
            "Subject: Latest From PFCU 999",
        ),
    );
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(VERIFY)
        .arg(t.file("dns.txt"))
        .arg(t.file(path))
        .arg(t.file("tampered.eml"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2 False");
}
