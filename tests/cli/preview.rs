//! `mailout preview`: the page shows the bulletin with a switch per audience variant and a
//! copy without a name; an open event stream is told to reload when the bulletin changes,
//! and a broken file shows its errors as `mailout check` prints them. Every wait blocks on a
//! read with a timeout; nothing sleeps.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::harness::Test;

/// Longest wait for the server (a rebuild after a save takes well under a second).
const TIMEOUT: Duration = Duration::from_secs(30);

const FILE: &str = "examples/bulletins/237-branch-news.toml";

/// A running `mailout preview`, killed when dropped.
struct Preview {
    child: Child,
    address: String,
}

impl Drop for Preview {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn preview(t: &Test, file: &str) -> Preview {
    let mut child = t
        .command()
        .args(["preview", file, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("preview: http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Preview { child, address }
}

fn connect(preview: &Preview) -> TcpStream {
    let stream = TcpStream::connect(&preview.address).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// GET `path`; the status code and the body.
fn get(preview: &Preview, path: &str) -> (u16, String) {
    let mut stream = connect(preview);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        preview.address
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

fn page(preview: &Preview, path: &str) -> String {
    let (status, body) = get(preview, path);
    assert_eq!(status, 200, "{body}");
    unescape(&body)
}

/// The page's plain-text pane.
fn text_pane(page: &str) -> &str {
    let start = page.find("<pre class=\"text\">").expect("a text pane");
    let rest = &page[start..];
    &rest[..rest.find("</pre>").unwrap()]
}

/// Undoes the page's HTML escaping, enough to compare text.
fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x60;", "`")
        .replace("&#x3D;", "=")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// An open event stream (its response headers read, so the server is listening for it).
struct Events(BufReader<TcpStream>);

impl Events {
    fn open(preview: &Preview) -> Events {
        let mut stream = connect(preview);
        write!(
            stream,
            "GET /events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            preview.address
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let mut headers = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            headers.push_str(&line);
        }
        assert!(
            headers
                .to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{headers}"
        );
        Events(reader)
    }

    /// Blocks (up to the read timeout) until the next `reload` event.
    #[track_caller]
    fn reload(&mut self) {
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            match self.0.read_line(&mut line) {
                Ok(0) => panic!("the event stream ended; it said:\n{seen}"),
                Ok(_) if line.trim() == "event: reload" => return,
                Ok(_) => seen.push_str(&line),
                Err(e) => panic!("no reload event ({e}); the stream said:\n{seen}"),
            }
        }
    }
}

#[test]
fn the_page_shows_each_audience_and_follows_edits_and_errors() {
    let t = Test::with_examples();
    let server = preview(&t, FILE);

    let everyone = page(&server, "/");
    assert!(
        everyone.contains("Branch news: court hours, NI pay, AGM motions"),
        "the headline"
    );
    assert!(everyone.contains("<iframe"), "the HTML part in a frame");
    assert!(everyone.contains(" sandbox="), "a sandboxed frame");
    for (view, label) in [
        ("to-cafcass", ">Cafcass</a>"),
        ("to-pbni", ">PbNI</a>"),
        ("to-nps", ">NPS</a>"),
        ("to-crc", ">CRC</a>"),
        ("others", ">Other members</a>"),
    ] {
        assert!(everyone.contains(&format!("?view={view}&")), "{view}");
        assert!(everyone.contains(label), "{label}");
    }
    assert!(
        everyone.contains("member=nameless"),
        "a switch to the copy without a name"
    );
    assert!(text_pane(&everyone).contains("Northern Ireland pay update"));

    // A Cafcass member's copy leaves out the PbNI and CRC items.
    let cafcass = page(&server, "/?view=to-cafcass&member=named");
    let text = text_pane(&cafcass);
    assert!(text.contains("Cafcass court-hours dispute"), "{text}");
    assert!(text.contains("AGM 2026: motions now invited"), "{text}");
    assert!(!text.contains("Northern Ireland pay update"), "{text}");
    assert!(!text.contains("CRC contracts"), "{text}");

    // An edit reaches the open stream, and the page then shows it.
    let mut events = Events::open(&server);
    let source = t.read(FILE);
    let edited = source.replace(
        "heading = \"Northern Ireland pay update\"",
        "heading = \"Northern Ireland pay: back pay in June\"",
    );
    assert_ne!(edited, source);
    std::fs::write(t.file(FILE), &edited).unwrap();
    events.reload();
    let after = page(&server, "/");
    assert!(
        text_pane(&after).contains("Northern Ireland pay: back pay in June"),
        "{}",
        text_pane(&after)
    );
    assert!(!after.contains("Northern Ireland pay update"));

    // A TOML mistake: the page shows it where it is, as `mailout check` says it.
    std::fs::write(t.file(FILE), format!("{edited}\n[[section]\n")).unwrap();
    events.reload();
    let broken = page(&server, "/");
    let check = t.run(&["check", FILE]).code(1);
    let first = check.stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("{FILE}:")) && first.contains(": error: "),
        "{first}"
    );
    let place = first.split(": error: ").next().unwrap();
    let mut parts = place.rsplitn(3, ':');
    let (column, line) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(
        column.parse::<u32>().is_ok() && line.parse::<u32>().is_ok(),
        "{place}"
    );
    assert!(
        broken.contains(first),
        "the page shows `{first}`:\n{broken}"
    );
    assert!(
        !broken.contains("<iframe"),
        "no stale render beside the errors"
    );

    // Fixed again: the render is back.
    std::fs::write(t.file(FILE), &source).unwrap();
    events.reload();
    let fixed = page(&server, "/");
    assert!(text_pane(&fixed).contains("Northern Ireland pay update"));
}

#[test]
fn the_copy_without_a_name_falls_back_and_nothing_is_recorded() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let server = preview(&t, "examples/bulletins/236-pandemic-measures.toml");

    let named = page(&server, "/?view=to-nps&member=named");
    assert!(
        text_pane(&named).contains("Dear Jo"),
        "{}",
        text_pane(&named)
    );
    let nameless = page(&server, "/?view=to-nps&member=nameless");
    let text = text_pane(&nameless);
    assert!(text.contains("Dear Member"), "{text}");
    assert!(!text.contains("Dear Jo"), "{text}");
    drop(server);

    // Previewing took no number and recorded no build: the next free number is still the
    // configured start.
    let new = t.run(&["new", "--dir", "drafts"]).success();
    assert!(new.stdout.contains("236.toml"), "{}", new.stdout);
}

#[test]
fn requests_for_other_host_names_are_refused() {
    let t = Test::with_examples();
    let server = preview(&t, FILE);
    let mut stream = connect(&server);
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: attacker.example:{}\r\nConnection: close\r\n\r\n",
        server.address.rsplit(':').next().unwrap()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
}
