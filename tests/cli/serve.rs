//! `mailout serve`: RFC 8058 one-click unsubscribe, a confirmation page on GET, forged or
//! padded tokens refused with nothing changed, and the limits of a server that faces the
//! internet: other hosts, slow clients, oversized requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use mailout::token::TokenKey;

use crate::harness::{TOKEN_SECRET, Test};

pub struct Server {
    child: Child,
    pub address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(t: &Test) -> Server {
    serve_with(t.command())
}

fn serve_with(mut command: std::process::Command) -> Server {
    let mut child = command
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
    let (status, _, body) = http(server, method, path, body, "");
    (status, body)
}

/// A plain HTTP/1.1 request with `extra` header lines (each ending in CRLF); the status,
/// the head and the body.
pub fn http(
    server: &Server,
    method: &str,
    path: &str,
    body: &str,
    extra: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        server.address,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_string(), body.to_string())
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

/// Sends `raw` as it is and returns what came back before the server closed (or `timeout`).
fn exchange(server: &Server, raw: &[u8], timeout: std::time::Duration) -> String {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    let _ = stream.write_all(raw);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn requests_for_another_host_get_421_and_change_nothing() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let server = serve(&t);
    let token = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec()).token("jo.bloggs@example.net");
    for host in ["evil.example", "pfcu.example.org.evil.example", ""] {
        let response = exchange(
            &server,
            format!(
                "POST /u/{token} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 26\r\n\r\nList-Unsubscribe=One-Click"
            )
            .as_bytes(),
            std::time::Duration::from_secs(10),
        );
        assert!(
            response.starts_with("HTTP/1.1 421") || response.starts_with("HTTP/1.1 400"),
            "{host}: {response}"
        );
    }
    assert_eq!(suppressed(&t).lines().count(), 1, "nobody was unsubscribed");
    // The public host of the sample config ([serve] public_url) is answered.
    let response = exchange(
        &server,
        format!("GET /u/{token} HTTP/1.1\r\nHost: PFCU.example.org\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        std::time::Duration::from_secs(10),
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let t = Test::with_examples().append("config/mailout.toml", "");
    let config = t
        .read("config/mailout.toml")
        .replace("header_timeout_secs = 10", "header_timeout_secs = 1");
    let t = t.write("config/mailout.toml", &config);
    let server = serve(&t);
    let start = std::time::Instant::now();
    let response = exchange(
        &server,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        std::time::Duration::from_secs(30),
    );
    let waited = start.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(10),
        "the connection was kept {waited:?}"
    );
    assert!(!response.contains("200 OK"), "{response}");
}

#[test]
fn oversized_requests_are_refused() {
    let t = Test::with_examples();
    let server = serve(&t);
    let long = "a".repeat(64 * 1024);
    let response = exchange(
        &server,
        format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: {long}\r\n\r\n").as_bytes(),
        std::time::Duration::from_secs(10),
    );
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 431"),
        "{}",
        &response[..response.len().min(200)]
    );
    let token = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec()).token("jo.bloggs@example.net");
    let body = "x".repeat(64 * 1024);
    let response = exchange(
        &server,
        format!(
            "POST /u/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
        std::time::Duration::from_secs(10),
    );
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 413"),
        "{}",
        &response[..response.len().min(200)]
    );
}

#[test]
fn padded_tokens_are_refused_and_first_form_tokens_work_until_the_transition_ends() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let key = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec());
    let server = serve(&t);
    let token = key.token("jo.bloggs@example.net");
    for padded in [
        format!("%20{token}%20"),
        format!("{token}%20"),
        format!("{token}="),
    ] {
        assert_eq!(
            request(&server, "POST", &format!("/u/{padded}"), "").0,
            404,
            "{padded}"
        );
    }
    assert_eq!(suppressed(&t).lines().count(), 1);

    // A token of the first form, as copies sent before this version carry it: honoured
    // until the end of the transition...
    let old = mailout::token::legacy_token(&key, "jo.bloggs@example.net");
    assert_eq!(old.len(), mailout::token::LEGACY_TOKEN_LEN);
    drop(server);
    let mut later = t.command();
    later.env("SOURCE_DATE_EPOCH", "1814400000"); // 2027-07-01
    let after = serve_with(later);
    assert_eq!(request(&after, "POST", &format!("/u/{old}"), "").0, 404);
    assert_eq!(suppressed(&t).lines().count(), 1);
    drop(after);
    let server = serve(&t);
    assert_eq!(request(&server, "POST", &format!("/u/{old}"), "").0, 200);
    assert!(suppressed(&t).contains("jo.bloggs@example.net  unsubscribed"));
}
