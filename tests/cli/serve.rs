//! `mailout serve`: RFC 8058 one-click unsubscribe, a confirmation page on GET, and forged
//! tokens refused with nothing changed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use mailout::token::TokenKey;

use crate::harness::{TOKEN_SECRET, Test};

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(t: &Test) -> Server {
    let mut child = t
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Server { child, address }
}

/// A plain HTTP/1.1 request; returns the status code and the body.
fn request(server: &Server, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        server.address,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn suppressed(t: &Test) -> String {
    t.run(&["suppressed"]).success().stdout
}

#[test]
fn one_click_post_unsubscribes_and_get_only_asks() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let server = serve(&t);
    let token = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec()).token("jo.bloggs@example.net");

    let (status, page) = request(&server, "GET", &format!("/u/{token}"), "");
    assert_eq!(status, 200);
    assert!(
        page.contains("<form method=\"post\" action=\"/u/"),
        "{page}"
    );
    assert!(page.contains("jo.bloggs@example.net"));
    assert_eq!(suppressed(&t).lines().count(), 1, "a GET changes nothing");

    let (status, page) = request(
        &server,
        "POST",
        &format!("/u/{token}"),
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(status, 200);
    assert!(
        page.contains("will not receive any more bulletins"),
        "{page}"
    );
    let list = suppressed(&t);
    assert!(
        list.lines()
            .nth(1)
            .unwrap()
            .starts_with("jo.bloggs@example.net  unsubscribed"),
        "{list}"
    );

    // Doing it twice is harmless.
    assert_eq!(
        request(
            &server,
            "POST",
            &format!("/u/{token}"),
            "List-Unsubscribe=One-Click"
        )
        .0,
        200
    );
    assert_eq!(suppressed(&t).lines().count(), 2);
    // And the next send leaves them out.
    let run = t
        .run(&[
            "send",
            "examples/bulletins/237-branch-news.toml",
            "--to",
            "employer:CRC",
            "--yes",
            "-q",
        ])
        .success();
    assert!(
        run.stdout.starts_with("job 1 (started): 4 sent"),
        "{}",
        run.stdout
    );
}

#[test]
fn forged_or_altered_tokens_get_a_404_and_change_nothing() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let server = serve(&t);
    let good = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec()).token("jo.bloggs@example.net");
    let mut altered: Vec<char> = good.chars().collect();
    altered[25] = if altered[25] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let other_secret =
        TokenKey::new(b"someone else's secret".to_vec()).token("jo.bloggs@example.net");
    let not_a_member =
        TokenKey::new(TOKEN_SECRET.as_bytes().to_vec()).token("stranger@example.org");
    for token in [
        altered.as_str(),
        other_secret.as_str(),
        not_a_member.as_str(),
        "short",
        "%3Cscript%3E",
    ] {
        let (status, body) = request(
            &server,
            "POST",
            &format!("/u/{token}"),
            "List-Unsubscribe=One-Click",
        );
        assert_eq!(status, 404, "{token}");
        assert!(!body.contains("<script>"));
        assert_eq!(request(&server, "GET", &format!("/u/{token}"), "").0, 404);
    }
    assert_eq!(suppressed(&t).lines().count(), 1, "nobody was unsubscribed");
}
