//! A send's account as an HTML page (PRODUCT.md §6c, issue 15): `mailout job N --report DIR`
//! writes DIR/job-N.html, whose figures are `--json`'s and add up, with a bar per branch and
//! every failure with the server's reply; hostile names, branches and replies show as text
//! and run nothing; and in headless Chromium the bars are drawn.
//!
//! `MAILOUT_KEEP_REPORT_SHOT=docs/job-report.png cargo test --test cli report::` keeps the
//! screenshot (the README shows it).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, NodeData, RcDom};

use crate::harness::{Backend, Test};
use crate::on_both;
use crate::servers::{Rule, Scripted};

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";

/// Members of the example job: a realistic roster over five branches.
const FIRST: &[&str] = &[
    "Aisha", "Gareth", "Siobhan", "Daniel", "Hywel", "Margaret", "Tom", "Priya", "Rhian", "Kwame",
    "Niamh", "Owen", "Fatima", "Callum", "Bethan", "Joseph", "Sam", "Eleri",
];
const LAST: &[&str] = &[
    "Khan", "Pugh", "Kelly", "Okafor", "Rhys", "Hughes", "Wright", "Patel", "Jones", "Mensah",
    "Byrne", "Davies", "Ali", "Stewart", "Evans", "Murphy", "Taylor", "Lloyd",
];
const BRANCHES: &[&str] = &["North East", "London", "Wales", "Cymru", "Yorkshire"];
const EMPLOYERS: &[&str] = &["Probation Service", "Cafcass", "Cafcass Cymru"];
const DOMAINS: &[&str] = &["example.org", "example.net", "example.com"];

/// What the example job's server says to some members, by address.
const REFUSED: &[(&str, &str)] = &[
    (
        "gareth.pugh1@example.net",
        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
    ),
    (
        "siobhan.kelly2@example.com",
        "552 5.2.2 <{rcpt}>: Mailbox full: quota exceeded (102%)",
    ),
    (
        "hywel.rhys4@example.net",
        "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces.",
    ),
    (
        "kwame.mensah9@example.org",
        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in local recipient table",
    ),
    (
        "eleri.lloyd17@example.com",
        "554 5.7.1 <{rcpt}>: Relay access denied",
    ),
    (
        "owen.ali29@example.com",
        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
    ),
];

/// Copies sent in full that get no reply (uncertain).
const DROPPED: &[&str] = &["margaret.hughes5@example.com"];

/// Suppressed before the job starts, and during it.
const BEFORE: &[&str] = &["tom.wright6@example.org", "sam.lloyd34@example.net"];
const DURING: &str = "fatima.ali12@example.org";

/// Bounced after it was accepted.
const BOUNCED: &str = "niamh.byrne10@example.net";

fn realistic_rule(address: &str) -> Rule {
    if let Some((_, reply)) = REFUSED.iter().find(|(a, _)| *a == address) {
        Rule::RejectWith(reply)
    } else if DROPPED.contains(&address) {
        Rule::DropAfterData
    } else {
        Rule::Accept
    }
}

/// 90 members, each branch with its own share.
fn realistic_roster() -> String {
    let mut csv = String::from("email,name,branch,employer\n");
    for i in 0..90 {
        // Each first name meets another surname the second time round.
        let (first, last) = (
            FIRST[i % FIRST.len()],
            LAST[(i + i / FIRST.len()) % LAST.len()],
        );
        // London is the biggest branch, Cymru the smallest.
        let branch = BRANCHES[[0, 1, 1, 2, 3, 4, 1, 0, 2][i % 9]];
        let employer = if branch == "Cymru" {
            EMPLOYERS[2]
        } else {
            EMPLOYERS[usize::from(i % 4 == 1)]
        };
        let email = format!(
            "{}.{}{i}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            DOMAINS[i % 3]
        );
        csv.push_str(&format!("{email},{first} {last},{branch},{employer}\n"));
    }
    csv
}

/// The example job (job 1): some refused, one uncertain, two suppressed before it and one
/// during it, one bounced later.
fn realistic(backend: Backend) -> (Test, Scripted) {
    let server = Scripted::start(realistic_rule, true);
    let t = Test::with_examples()
        .on(backend)
        .write("members.csv", &realistic_roster())
        .with_smtp(
            server.port,
            "concurrency = 2\ntimeout_secs = 1\ndata_timeout_secs = 1\nmax_attempts = 3",
        );
    t.run(&["members", "import", "members.csv"]).success();
    for address in BEFORE {
        t.run(&["unsubscribe", address]).success();
    }
    t.run(&["send", ROUNDUP, "--to", "all", "--enqueue", "--yes"])
        .success();
    t.run(&["unsubscribe", DURING]).success();
    t.run(&["worker", "--exit-when-idle", "-q"]);
    let copy = server
        .accepted()
        .into_iter()
        .find(|m| m.rcpt == BOUNCED)
        .expect("a copy to bounce");
    let t = t.write(
        "dsn.eml",
        &format!(
            "From: MAILER-DAEMON@mx.example.net\r\nTo: info@pfcu.example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {id}\r\nFrom: PFCU <info@pfcu.example.org>\r\nTo: {to}\r\n--b--\r\n",
            to = copy.rcpt,
            id = copy.header("Message-ID").unwrap(),
        ),
    );
    t.run(&["bounces", "dsn.eml"]).success();
    (t, server)
}

/// Writes job 1's report into `reports/` and parses it.
fn report(t: &Test) -> (String, RcDom) {
    let run = t.run(&["job", "1", "--report", "reports"]).success();
    assert!(
        run.stderr.contains("report: reports/job-1.html"),
        "{}",
        run.stderr
    );
    let html = t.read("reports/job-1.html");
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).one(html.as_str());
    (html, dom)
}

/// `node` and everything under it, depth first.
fn under(node: &Handle) -> Vec<Handle> {
    let mut out = Vec::new();
    let mut stack = vec![node.clone()];
    while let Some(n) = stack.pop() {
        stack.extend(n.children.borrow().iter().rev().cloned());
        out.push(n);
    }
    out
}

fn tag(node: &Handle) -> Option<String> {
    match &node.data {
        NodeData::Element { name, .. } => Some(name.local.to_string()),
        _ => None,
    }
}

fn attr(node: &Handle, wanted: &str) -> Option<String> {
    match &node.data {
        NodeData::Element { attrs, .. } => attrs
            .borrow()
            .iter()
            .find(|a| &*a.name.local == wanted)
            .map(|a| a.value.to_string()),
        _ => None,
    }
}

fn has_class(node: &Handle, class: &str) -> bool {
    attr(node, "class").is_some_and(|c| c.split(' ').any(|c| c == class))
}

/// The text under `node`.
fn text(node: &Handle) -> String {
    under(node)
        .iter()
        .filter_map(|n| match &n.data {
            NodeData::Text { contents } => Some(contents.borrow().to_string()),
            _ => None,
        })
        .collect()
}

/// The elements `name` under `node`.
fn elements(node: &Handle, name: &str) -> Vec<Handle> {
    under(node)
        .into_iter()
        .filter(|n| tag(n).as_deref() == Some(name))
        .collect()
}

/// Each body row of the tables with class `class`, as its cells' text.
fn rows(dom: &RcDom, class: &str) -> Vec<Vec<Handle>> {
    elements(&dom.document, "table")
        .iter()
        .filter(|t| has_class(t, class))
        .flat_map(|t| elements(t, "tbody"))
        .flat_map(|b| elements(&b, "tr"))
        .map(|r| {
            r.children
                .borrow()
                .iter()
                .filter(|c| matches!(tag(c).as_deref(), Some("td" | "th")))
                .cloned()
                .collect()
        })
        .collect()
}

/// `1,234` as a number.
fn number(text: &str) -> u64 {
    let digits: String = text
        .chars()
        .take_while(|c| *c != ' ')
        .filter(|c| *c != ',')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("not a figure: {text:?}"))
}

const OUTCOMES: [&str; 7] = [
    "sent",
    "failed",
    "uncertain",
    "suppressed_before",
    "left_out_during",
    "cancelled",
    "pending",
];

on_both! {
    fn the_report_adds_up_to_the_json_account_with_a_bar_per_branch_and_each_failure(backend) {
        let (t, _server) = realistic(backend);
        let json: serde_json::Value =
            serde_json::from_str(&t.run(&["job", "1", "--json"]).success().stdout).unwrap();
        let f = &json["figures"];
        let (html, dom) = report(&t);
        assert!(html.contains("237 — Latest From PFCU 237"), "the headline names the bulletin");

        // The account: each row's figure is the JSON's, and they add up to the selected.
        let account: BTreeMap<String, u64> = elements(&dom.document, "table")
            .iter()
            .filter(|t| attr(t, "id").as_deref() == Some("account"))
            .flat_map(|t| elements(t, "tr"))
            .map(|r| {
                let label = text(&elements(&r, "th")[0]);
                let figure = elements(&r, "td").into_iter().find(|c| has_class(c, "n")).unwrap();
                (label, number(&text(&figure)))
            })
            .collect();
        let key = |label: &str| match label {
            "Suppressed before the send" => "suppressed_before".to_string(),
            "Left out during it" => "left_out_during".to_string(),
            other => other.to_lowercase(),
        };
        assert_eq!(account.len(), 9, "{account:?}");
        for (label, n) in &account {
            let wanted = if label == "Total" { &f["selected"] } else { &f[key(label)] };
            assert_eq!(Some(*n), wanted.as_u64(), "{label} in {account:?} against {f}");
        }
        let sum: u64 = OUTCOMES.iter().map(|k| f[k].as_u64().unwrap()).sum();
        assert_eq!(sum, f["selected"].as_u64().unwrap());
        // 90 = 80 sent + 6 failed + 1 uncertain + 2 suppressed before + 1 left out during.
        assert_eq!(
            OUTCOMES.map(|k| f[k].as_u64().unwrap()),
            [80, 6, 1, 2, 1, 0, 0],
            "{f}"
        );
        assert_eq!(f["bounced"], 1);
        assert!(text(&dom.document).contains("everyone is accounted for"));

        // A row per branch: the JSON's, with a bar whose parts add up to the selected.
        let branches = &json["by_branch"].as_array().unwrap();
        let groups = rows(&dom, "groups");
        assert_eq!(groups.len(), branches.len() + json["by_employer"].as_array().unwrap().len());
        for (row, branch) in groups.iter().zip(branches.iter()) {
            let cells: Vec<String> = row.iter().map(text).collect();
            assert_eq!(cells[0], branch["name"].as_str().unwrap(), "{cells:?}");
            let selected = branch["selected"].as_u64().unwrap();
            assert_eq!(number(&cells[2]), selected, "{cells:?}");
            let parts: Vec<u64> = cells[3..8].iter().map(|c| number(c)).collect();
            assert_eq!(parts.iter().sum::<u64>(), selected, "{cells:?}");
            assert_eq!(parts[1], branch["failed"].as_u64().unwrap(), "{cells:?}");
            assert_eq!(parts[0] + parts[2], branch["sent"].as_u64().unwrap(), "sent = sent + bounced: {cells:?}");
            let widths: f64 = under(&row[1])
                .iter()
                .filter_map(|n| attr(n, "style"))
                .map(|s| s.trim_start_matches("width: ").trim_end_matches('%').parse::<f64>().unwrap())
                .sum();
            assert!((widths - 100.0).abs() < 0.1, "{cells:?}: the bar is {widths}% wide");
        }
        for name in ["North East", "London", "Wales", "Cymru"] {
            assert!(groups.iter().any(|r| text(&r[0]) == name), "no row for {name}");
        }

        // Every failure, with its reply as the server gave it.
        let failures = rows(&dom, "failures");
        let listed = json["failures"].as_array().unwrap();
        assert_eq!(failures.len(), listed.len());
        assert_eq!(failures.len(), 7);
        for failure in listed {
            let email = failure["email"].as_str().unwrap();
            let row = failures
                .iter()
                .find(|r| text(&r[0]) == email)
                .unwrap_or_else(|| panic!("{email} is not listed"));
            assert_eq!(text(&row[1]), failure["name"].as_str().unwrap());
            assert_eq!(text(&row[2]), failure["branch"].as_str().unwrap());
            assert_eq!(text(&row[4]), failure["reply"].as_str().unwrap());
        }
        let gareth = failures.iter().find(|r| text(&r[0]) == "gareth.pugh1@example.net").unwrap();
        assert_eq!(
            text(&gareth[4]),
            "550 5.1.1 <gareth.pugh1@example.net>: Recipient address rejected: User unknown in virtual mailbox table"
        );
        assert_eq!(text(&gareth[3]), "user-unknown");

        // Again: the file is written over. Asked with another output, or into a file: refused.
        t.run(&["job", "1", "--report", "reports"]).success();
        let both = t.run(&["job", "1", "--report", "reports", "--json"]).code(2);
        assert!(both.stderr.contains("cannot be used with"), "{}", both.stderr);
        let t = t.write("a-file", "x");
        let file = t.run(&["job", "1", "--report", "a-file"]).code(1);
        assert!(
            file.stderr.contains("`a-file` is a file, not a folder"),
            "{}",
            file.stderr
        );
        let missing = t.run(&["job", "9", "--report", "reports"]).code(1);
        assert!(missing.stderr.contains("there is no job 9"), "{}", missing.stderr);
        t.assert_store_on(backend);
    }
}

/// A server reply far longer than the page shows.
static LONG_REPLY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "550 5.1.1 <script>alert(2)</script> \"quoted\" 'single' & <b>bold</b> {}end",
        "x".repeat(3_000)
    )
});

fn hostile_rule(address: &str) -> Rule {
    if address.starts_with("evil") {
        Rule::RejectWith(LONG_REPLY.as_str())
    } else {
        Rule::Accept
    }
}

const SCRIPT_NAME: &str = "<script>alert(1)</script>";
const IMG_BRANCH: &str = "\"><img src=x onerror=alert(1)>";

/// Elements the report is made of; anything else came from a value.
const OWN_ELEMENTS: &[&str] = &[
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "main",
    "div", "section", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "span", "strong",
    "bdi", "footer", "dl", "dt", "dd",
];

#[test]
fn hostile_names_branches_and_replies_show_as_text_and_run_nothing() {
    let server = Scripted::start(hostile_rule, true);
    let long_name = "N".repeat(100_000);
    let roster = format!(
        "email,name,branch,employer\nevil@example.net,{SCRIPT_NAME},\"{}\",\"<iframe src=//x>\"\nevil2@example.net,{long_name},\u{202e}London,NPS\nfine@example.net,Fine,London,NPS\n",
        IMG_BRANCH.replace('"', "\"\"")
    );
    let t = Test::with_examples()
        .write("members.csv", &roster)
        .with_smtp(server.port, "concurrency = 1");
    t.run(&["members", "import", "members.csv"]).success();
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"]);
    let (html, dom) = report(&t);

    let mut styles = 0;
    for node in under(&dom.document) {
        let Some(name) = tag(&node) else { continue };
        assert!(
            OWN_ELEMENTS.contains(&name.as_str()),
            "a <{name}> element in the report"
        );
        if name == "style" {
            styles += 1;
            let css = text(&node).to_lowercase();
            assert!(
                !css.contains("url(") && !css.contains("@import"),
                "the style loads something"
            );
        }
        if name == "meta" && attr(&node, "http-equiv").is_some() {
            assert_eq!(
                attr(&node, "content").as_deref(),
                Some("default-src 'none'; style-src 'unsafe-inline'")
            );
        }
        let NodeData::Element { attrs, .. } = &node.data else {
            continue;
        };
        for a in attrs.borrow().iter() {
            let key = a.name.local.to_string().to_ascii_lowercase();
            let value = a.value.to_string();
            assert!(
                !key.starts_with("on"),
                "an event handler: <{name} {key}={value:?}>"
            );
            assert!(
                ![
                    "src",
                    "srcset",
                    "href",
                    "action",
                    "formaction",
                    "poster",
                    "background",
                    "data",
                    "srcdoc"
                ]
                .contains(&key.as_str()),
                "<{name} {key}={value:?}> would load something"
            );
            if key == "style" {
                let width = value
                    .strip_prefix("width: ")
                    .and_then(|w| w.strip_suffix('%'));
                assert!(
                    width.is_some_and(|w| w.parse::<f64>().is_ok()),
                    "a style of a value: {value:?}"
                );
            }
        }
    }
    assert_eq!(styles, 1);
    assert!(html.contains("http-equiv=\"Content-Security-Policy\""));

    // Shown literally, as the member's records and the server wrote them.
    let failures = rows(&dom, "failures");
    assert_eq!(failures.len(), 2, "{html}");
    let evil = failures
        .iter()
        .find(|r| text(&r[0]) == "evil@example.net")
        .unwrap();
    assert_eq!(text(&evil[1]), SCRIPT_NAME);
    assert_eq!(text(&evil[2]), IMG_BRANCH);
    let reply = text(&evil[4]);
    assert!(
        reply.starts_with(
            "550 5.1.1 <script>alert(2)</script> \"quoted\" 'single' & <b>bold</b> xxx"
        ),
        "{reply}"
    );
    assert_eq!(
        reply.chars().count(),
        501,
        "500 characters and `…`: {reply}"
    );
    assert!(reply.ends_with("x…"), "{reply}");
    let groups = rows(&dom, "groups");
    assert!(groups.iter().any(|r| text(&r[0]) == IMG_BRANCH));
    assert!(groups.iter().any(|r| text(&r[0]) == "<iframe src=//x>"));
    // A very long name is cut; a direction mark is shown, not obeyed.
    let long = failures
        .iter()
        .find(|r| text(&r[0]) == "evil2@example.net")
        .unwrap();
    assert_eq!(text(&long[1]), format!("{}…", "N".repeat(200)));
    assert_eq!(text(&long[2]), "<U+202E>London");
    assert!(html.len() < 100_000, "the report is {} bytes", html.len());
}

/// The browser the screenshot test drives.
use crate::browser::{CHROMIUM, Shot};

#[test]
fn the_report_in_headless_chromium_draws_a_bar_per_branch() {
    if !Path::new(CHROMIUM).exists() {
        crate::harness::skip(&format!(
            "{CHROMIUM} is not installed (apt-get install chromium)"
        ));
        return;
    }
    let (t, _server) = realistic(Backend::Sqlite);
    report(&t);
    let page = t.file("reports/job-1.html");
    let shot = t.file("report.png");
    let profile = t.file("chromium-profile");
    let picture = Shot::take(
        &format!("file://{}", page.display()),
        "1000,1400",
        &shot,
        &profile,
    );
    if let Some(keep) = std::env::var_os("MAILOUT_KEEP_REPORT_SHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let total = picture.total();
    let count = |wanted: [u8; 3]| picture.count(wanted);
    let sent = count([0x1a, 0x7f, 0x37]);
    let failed = count([0xb4, 0x23, 0x18]) + count([0x8f, 0x1c, 0x13]);
    let bounced = count([0x6e, 0x40, 0xc9]);
    let masthead = count([0x1f, 0x3a, 0x5f]);
    // Five branch bars of about 330 by 22 pixels, mostly sent.
    assert!(
        sent > 20_000,
        "only {sent} of {total} pixels are the sent colour: the bars are not drawn"
    );
    assert!(failed > 300, "only {failed} pixels are the failed colours");
    assert!(bounced > 50, "only {bounced} pixels are the bounced colour");
    assert!(
        masthead > total / 50,
        "only {masthead} of {total} pixels are the masthead's colour"
    );
}
