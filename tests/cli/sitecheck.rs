//! The public archive read as a browser reads it: every page of a generated site parsed
//! with html5ever and held to the rules of issue 12 (no event handlers, no script but the
//! site's own, nothing loaded from another origin, active attachments only as text, nothing
//! fixed over the page, no recipient and no token), on a site made from hostile mail of our
//! own (`tests/fixtures/hostile/`), on one made from the example bulletins and on one made
//! from a slice of the real mail corpus (when it is here); and a hostile page screenshotted
//! in headless Chromium, which must show no overlay.
//!
//! `MAILOUT_KEEP_SCREENSHOT=docs/hostile-page.png cargo test --test cli sitecheck` keeps
//! the screenshot (the README shows it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, NodeData, RcDom};

use crate::browser::{CHROMIUM, Shot};
use crate::harness::{Test, examples, number_of, repo};

/// Extensions a browser (or a server) would run or render as a document.
const ACTIVE: &[&str] = &[
    "html", "htm", "xhtml", "xht", "shtml", "svg", "svgz", "xml", "xsl", "xslt", "js", "mjs",
    "mht", "mhtml", "php", "phtml", "cgi",
];

/// Elements no page may hold (the site's own `<link>`s are checked on their own).
const FORBIDDEN: &[&str] = &[
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "base",
    "form",
    "portal",
    "fencedframe",
    "style",
];

/// Attributes that make a browser load what they name.
const LOADING: &[&str] = &[
    "src",
    "srcset",
    "href",
    "poster",
    "background",
    "action",
    "formaction",
    "data",
    "ping",
    "xlink:href",
    "lowsrc",
    "dynsrc",
    "codebase",
    "archive",
    "manifest",
    "icon",
    "srcdoc",
];

/// The directives every page's policy must have, exactly.
const CSP: &[(&str, &str)] = &[
    ("default-src", "'none'"),
    ("img-src", "'self'"),
    ("style-src", "'self' 'unsafe-inline'"),
    ("script-src", "'self'"),
    ("connect-src", "'self'"),
    ("base-uri", "'none'"),
    ("form-action", "'none'"),
    ("frame-ancestors", "'none'"),
];

/// Every file under `dir`, in order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A URL as a browser reads it: tabs and line breaks out, leading and trailing controls and
/// spaces trimmed, backslashes as slashes, lowercase.
fn normalise(url: &str) -> String {
    url.trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The scheme of a normalised URL, if it has one.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)))
    .then_some(scheme)
}

/// Whether a normalised URL reaches another origin (or is code or data of its own).
fn elsewhere(url: &str) -> bool {
    url.starts_with("//") || scheme(url).is_some()
}

/// Whether a file name has an active extension anywhere after its first dot.
fn active_name(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split('.')
        .skip(1)
        .any(|ext| ACTIVE.contains(&ext))
}

/// What is wrong with a style attribute's value.
fn style_problems(style: &str) -> Vec<String> {
    let lower = style.to_ascii_lowercase();
    let mut out = Vec::new();
    for banned in [
        "url(",
        "image-set(",
        "image(",
        "element(",
        "src(",
        "expression(",
        "@import",
        "behavior",
        "-moz-binding",
        "\\",
        "/*",
    ] {
        if lower.contains(banned) {
            out.push(format!("`{banned}` in a style: {style}"));
        }
    }
    let position = regex_lite::Regex::new(r"position\s*:\s*(-webkit-)?(fixed|sticky)").unwrap();
    if position.is_match(&lower) {
        out.push(format!("a fixed or sticky position in a style: {style}"));
    }
    out
}

/// A parsed page's elements, text and attribute values, depth first.
fn nodes(dom: &RcDom) -> Vec<Handle> {
    let mut out = Vec::new();
    let mut stack = vec![dom.document.clone()];
    while let Some(node) = stack.pop() {
        stack.extend(node.children.borrow().iter().rev().cloned());
        if let NodeData::Element {
            template_contents, ..
        } = &node.data
            && let Some(contents) = template_contents.borrow().as_ref()
        {
            stack.push(contents.clone());
        }
        out.push(node);
    }
    out
}

/// What is wrong with one page (`html`), as found by parsing it.
fn page_problems(html: &str, secrets: &[String]) -> Vec<String> {
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).one(html);
    let mut out = Vec::new();
    let mut csp = false;
    for node in nodes(&dom) {
        let (name, attrs) = match &node.data {
            NodeData::Text { contents } => {
                let text = contents.borrow().to_lowercase();
                for secret in secrets {
                    if text.contains(secret.as_str()) {
                        out.push(format!("`{secret}` in the text: {text}"));
                    }
                }
                continue;
            }
            NodeData::Element { name, attrs, .. } => (name.local.to_string(), attrs.borrow()),
            _ => continue,
        };
        let attr = |wanted: &str| {
            attrs
                .iter()
                .find(|a| (*a.name.local).eq_ignore_ascii_case(wanted))
                .map(|a| a.value.to_string())
        };
        if FORBIDDEN.contains(&name.as_str()) {
            out.push(format!("a <{name}> element"));
        }
        match name.as_str() {
            "script" => {
                let src = attr("src").map(|s| normalise(&s)).unwrap_or_default();
                let inline = node
                    .children
                    .borrow()
                    .iter()
                    .any(|c| matches!(&c.data, NodeData::Text { contents } if !contents.borrow().trim().is_empty()));
                if src != "search.js" || inline {
                    out.push(format!("a script other than the site's own (src `{src}`)"));
                }
            }
            "link" => {
                let rel = attr("rel").unwrap_or_default().to_ascii_lowercase();
                let href = normalise(&attr("href").unwrap_or_default());
                let own = !elsewhere(&href)
                    && ((rel == "stylesheet" && href.ends_with("/style.css"))
                        || (rel == "alternate"
                            && attr("type").as_deref() == Some("application/atom+xml")
                            && href.ends_with("/feed.xml")));
                if !own {
                    out.push(format!("a <link rel={rel:?} href={href:?}>"));
                }
            }
            "meta" => {
                let equiv = attr("http-equiv").map(|e| e.to_ascii_lowercase());
                match equiv.as_deref() {
                    None => {}
                    Some("content-security-policy") => {
                        let policy = attr("content").unwrap_or_default();
                        let directives: Vec<(String, String)> = policy
                            .split(';')
                            .filter_map(|d| {
                                let d = d.trim();
                                let (n, v) = d.split_once(' ').unwrap_or((d, ""));
                                (!n.is_empty()).then(|| (n.to_string(), v.trim().to_string()))
                            })
                            .collect();
                        for (directive, value) in CSP {
                            let found = directives.iter().find(|(n, _)| n == directive);
                            if found.map(|(_, v)| v.as_str()) != Some(value) {
                                out.push(format!(
                                    "the policy `{policy}` does not say `{directive} {value}`"
                                ));
                            }
                        }
                        csp = true;
                    }
                    Some(other) => out.push(format!("a <meta http-equiv={other:?}>")),
                }
            }
            _ => {}
        }
        for a in attrs.iter() {
            let attribute = match &a.name.prefix {
                Some(prefix) => format!("{prefix}:{}", a.name.local),
                None => a.name.local.to_string(),
            }
            .to_ascii_lowercase();
            let value = a.value.to_string();
            let lower = value.to_lowercase();
            for secret in secrets {
                if lower.contains(secret.as_str()) {
                    out.push(format!("`{secret}` in <{name} {attribute}={value:?}>"));
                }
            }
            if attribute.starts_with("on") {
                out.push(format!("an event handler: <{name} {attribute}={value:?}>"));
            }
            if attribute == "style" {
                out.extend(style_problems(&value));
            }
            if !LOADING.contains(&attribute.as_str()) {
                continue;
            }
            let urls: Vec<String> = if attribute == "srcset" || attribute == "ping" {
                value
                    .split([',', ' '])
                    .filter(|u| !u.is_empty())
                    .map(normalise)
                    .collect()
            } else {
                vec![normalise(&value)]
            };
            for url in urls {
                if name == "a" && attribute == "href" {
                    // A link the reader clicks loads nothing by itself.
                    let fine = match scheme(&url) {
                        Some(s) => ["http", "https", "mailto"].contains(&s),
                        None => !url.starts_with("//"),
                    };
                    if !fine {
                        out.push(format!("a link to {url:?}"));
                    }
                    if url.contains("attachments/") {
                        let file = url.rsplit('/').next().unwrap_or("");
                        if active_name(file) && !file.ends_with(".txt") {
                            out.push(format!("an active attachment published as it is: {url}"));
                        }
                    }
                } else if attribute == "srcdoc" || elsewhere(&url) {
                    out.push(format!(
                        "<{name} {attribute}={value:?}> loads from elsewhere"
                    ));
                } else if url.contains("attachments/")
                    && active_name(url.rsplit('/').next().unwrap_or(""))
                {
                    out.push(format!(
                        "an active attachment shown in the page: <{name} {attribute}={value:?}>"
                    ));
                }
            }
        }
    }
    if !csp {
        out.push("no Content-Security-Policy".into());
    }
    out
}

/// Everything wrong with the site in `dir`: each page parsed and checked; no file but the
/// attachments (published as received) may contain any of `secrets` (lowercase); the header
/// files for static hosts say what the pages say.
pub fn site_problems(dir: &Path, secrets: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pages = 0;
    for path in files(dir) {
        let relative = path.strip_prefix(dir).unwrap().display().to_string();
        let mut problems = Vec::new();
        if relative.starts_with("attachments/") {
            let file = path.file_name().unwrap().to_string_lossy();
            if active_name(&file) && !file.ends_with(".txt") {
                problems.push("an active attachment published as it is".into());
            }
        } else {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes).to_lowercase();
            for secret in secrets {
                if text.contains(secret.as_str()) {
                    problems.push(format!("`{secret}` in the file"));
                }
            }
            if relative.ends_with(".html") {
                pages += 1;
                problems.extend(page_problems(&String::from_utf8_lossy(&bytes), secrets));
            }
        }
        out.extend(problems.into_iter().map(|p| format!("{relative}: {p}")));
    }
    if pages == 0 {
        out.push("no pages".into());
    }
    let headers = std::fs::read_to_string(dir.join("_headers")).unwrap_or_default();
    let htaccess = std::fs::read_to_string(dir.join(".htaccess")).unwrap_or_default();
    let policy: Vec<String> = CSP.iter().map(|(d, v)| format!("{d} {v}")).collect();
    let policy = policy.join("; ");
    for (file, wanted) in [
        ("_headers", "/*\n".to_string()),
        ("_headers", format!("  Content-Security-Policy: {policy}\n")),
        (
            "_headers",
            "  X-Content-Type-Options: nosniff\n".to_string(),
        ),
        ("_headers", "  Referrer-Policy: no-referrer\n".to_string()),
        (
            ".htaccess",
            format!("Header set Content-Security-Policy \"{policy}\"\n"),
        ),
        (
            ".htaccess",
            "Header set X-Content-Type-Options \"nosniff\"\n".to_string(),
        ),
        (
            ".htaccess",
            "Header set Referrer-Policy \"no-referrer\"\n".to_string(),
        ),
        (".htaccess", "AddType text/plain .txt\n".to_string()),
    ] {
        let text = if file == "_headers" {
            &headers
        } else {
            &htaccess
        };
        if !text.contains(&wanted) {
            out.push(format!("{file} lacks {wanted:?}"));
        }
    }
    out
}

#[track_caller]
fn assert_safe(dir: &Path, secrets: &[String]) {
    let problems = site_problems(dir, secrets);
    assert!(
        problems.is_empty(),
        "{} problems with the site at {}:\n{}",
        problems.len(),
        dir.display(),
        problems.join("\n")
    );
}

/// The hostile recipient's address as it is written in mail and as it reads unquoted.
const HOSTILE_ADDRESS: &str = "\"zq\\\" onmouseover=\\\"alert(1)\\\" <b>\"@recipient.example";
/// The hostile recipient's tokens (current and first form).
const HOSTILE_TOKENS: &[&str] = &[
    "HoSt1LeT0kEn-fOr_ZeLdA-0123456789aBcDeFgHiJ",
    "LeGaCy-T0kEn_FoR-ZeLdA-012345678",
];

/// What no page of a site with the hostile fixtures may contain.
fn hostile_secrets() -> Vec<String> {
    let mut secrets: Vec<String> = vec![
        HOSTILE_ADDRESS.to_lowercase(),
        "zq\" onmouseover".into(),
        "onmouseover".into(),
        "recipient.example".into(),
        "zelda".into(),
        "quigley".into(),
        "tracker.example".into(),
        "second person".into(),
    ];
    secrets.extend(HOSTILE_TOKENS.iter().map(|t| t.to_lowercase()));
    secrets
}

/// Copies the hostile fixtures into `t` under `hostile/`.
fn with_hostile_mail(t: Test) -> Test {
    let mut t = t;
    for path in files(&repo().join("tests/fixtures/hostile")) {
        if path.extension().is_some_and(|e| e == "eml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            t = t.write(
                &format!("hostile/{name}"),
                &std::fs::read_to_string(&path).unwrap(),
            );
        }
    }
    t
}

/// Names and addresses of the example members, by address.
fn members() -> Vec<(String, String)> {
    let csv = std::fs::read_to_string(repo().join("examples/members.csv")).unwrap();
    csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_lowercase(), r[1].to_string())
        })
        .collect()
}

/// The page of the archived message whose heading is `subject`.
fn page_of(site: &Path, subject: &str) -> PathBuf {
    files(&site.join("m"))
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains(&format!("<h1>{subject}</h1>"))
        })
        .unwrap_or_else(|| panic!("no page for `{subject}` in {}", site.display()))
}

#[test]
fn hostile_mail_and_members_copies_make_a_site_where_nothing_runs_loads_or_leaks() {
    let t = with_hostile_mail(Test::with_examples());
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    // Members' own copies: their names in the greeting, their tokens in the links.
    for b in ["236-pandemic-measures", "239-escaping"] {
        t.run(&[
            "send",
            &format!("examples/bulletins/{b}.toml"),
            "--to",
            "all",
            "--yes",
            "-q",
        ])
        .success();
    }
    let mut secrets = hostile_secrets();
    let token = regex_lite::Regex::new(r"(?:/u/|unsubscribe-)([A-Za-z0-9_-]{43})").unwrap();
    let members = members();
    let mut copies = 0;
    for number in ["236", "239"] {
        for copy in files(&t.file(&format!("outbox/{number}/sent"))) {
            copies += 1;
            let raw = std::fs::read_to_string(&copy).unwrap();
            for found in token.captures_iter(&raw) {
                secrets.push(found[1].to_lowercase());
            }
            let address = copy.file_stem().unwrap().to_string_lossy().to_lowercase();
            let name = &members.iter().find(|(a, _)| *a == address).unwrap().1;
            secrets.push(address.clone());
            if let Some(first) = name.split_whitespace().next() {
                // "Clarke, Naomi" is greeted by the name as written.
                secrets.push(format!(
                    "dear {}",
                    first.trim_end_matches(',').to_lowercase()
                ));
                secrets.push(name.to_lowercase());
            }
        }
    }
    assert!(copies > 20, "{copies} copies");
    let secrets: Vec<String> = secrets
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut imports = vec!["import", "hostile"];
    let sent: Vec<String> = ["236", "239"]
        .iter()
        .map(|n| format!("outbox/{n}/sent"))
        .collect();
    imports.extend(sent.iter().map(String::as_str));
    t.run(&imports).success();
    let run = t.run(&["archive", "site", "public"]).success();
    // Members' own copies are kept but never published: each bulletin's page is its copy
    // for everyone, and the only other pages are the six hostile messages.
    assert!(
        run.stdout
            .starts_with("public: 2 bulletins, 6 other messages, "),
        "{}",
        run.stdout
    );
    let site = t.file("public");
    assert_safe(&site, &secrets);

    // What was taken out was replaced, and the rest of each message is still there.
    let breakout =
        std::fs::read_to_string(page_of(&site, "Member, your copy of the branch news")).unwrap();
    for kept in [
        "Dear Member,",
        "This copy was sent to a member, that is to\nMember (Ms Member).",
        "<a href=\"https://pfcu.example.org\" rel=\"noopener noreferrer nofollow\">Unsubscribe</a>",
    ] {
        assert!(breakout.contains(kept), "{kept:?} not in\n{breakout}");
    }
    let remote = std::fs::read_to_string(page_of(&site, "Remote loads")).unwrap();
    assert!(
        remote.contains("<a href=\"https://news.example/story\" rel=\"noopener noreferrer nofollow\">read the story</a>"),
        "{remote}"
    );
    let plain = std::fs::read_to_string(page_of(&site, "Plain text for Member")).unwrap();
    assert!(
        plain.contains(
            "Dear Member,\n\nThis copy was sent to a member\nand to Member &lt;a member&gt;."
        ),
        "{plain}"
    );
    assert!(
        plain.contains("&lt;script&gt;alert(&#x27;plain&#x27;)&lt;/script&gt; is just text here."),
        "{plain}"
    );
    // Active attachments: text, said so, and the SVG not shown as an image.
    let attachments = std::fs::read_to_string(page_of(&site, "Minutes and a logo")).unwrap();
    for (published, active) in [
        ("minutes.html.txt", true),
        ("logo.svg.txt", true),
        ("data.xml.txt", true),
        ("NOTES.HTM.txt", true),
        ("report.html.zzz.txt", true),
        ("plain-name.txt", true),
        ("agenda.pdf", false),
    ] {
        let item = attachments
            .split("<li>")
            .find(|li| li.contains(&format!("/{published}\"")))
            .unwrap_or_else(|| panic!("no link to {published} in\n{attachments}"));
        assert_eq!(
            item.contains("published as text so that it cannot run in your browser"),
            active,
            "{item}"
        );
        let file = files(&site.join("attachments"))
            .into_iter()
            .find(|p| p.ends_with(published))
            .unwrap_or_else(|| panic!("{published} not written"));
        assert!(file.is_file());
    }
    assert!(!attachments.contains("<img src"), "{attachments}");
    // Every member's greeting was taken out where one was published: the hostile copies
    // addressed to a member; the bulletins' pages greet no one by name.
    let greeted = files(&site)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .contains("Dear Member")
        })
        .count();
    assert!(greeted >= 2, "{greeted} pages greet a member");
}

#[test]
fn the_example_bulletins_make_a_site_that_passes_the_check() {
    let t = Test::with_examples();
    let mut build = vec!["build".to_string()];
    build.extend(examples().iter().map(|e| format!("examples/bulletins/{e}")));
    let build: Vec<&str> = build.iter().map(String::as_str).collect();
    t.run(&build).success();
    let mut import = vec!["import".to_string()];
    import.extend(
        examples()
            .iter()
            .map(|e| format!("outbox/{}/bulletin.eml", number_of(e))),
    );
    let import: Vec<&str> = import.iter().map(String::as_str).collect();
    t.run(&import).success();
    let run = t.run(&["archive", "site", "public"]).success();
    assert!(
        run.stdout
            .starts_with(&format!("public: {} bulletins, ", examples().len())),
        "{}",
        run.stdout
    );
    let site = t.file("public");
    assert_safe(&site, &[]);
    // The bulletins are there, with their attachments as they were.
    for e in examples() {
        assert!(site.join(format!("{}/index.html", number_of(&e))).is_file());
    }
    assert!(
        files(&site.join("attachments"))
            .iter()
            .any(|p| p.ends_with("operational-plan-2027.pdf")),
        "the example's PDF is published under its own name"
    );
}

#[test]
fn the_check_finds_what_it_looks_for() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        ("handler.html", "<p onclick=\"x()\">x</p>"),
        ("script.html", "<script>alert(1)</script>"),
        (
            "remote-script.html",
            "<script src=\"https://evil.example/search.js\"></script>",
        ),
        ("iframe.html", "<iframe src=\"x.html\"></iframe>"),
        ("base.html", "<base href=\"/\">"),
        (
            "link.html",
            "<link rel=\"stylesheet\" href=\"https://evil.example/style.css\">",
        ),
        ("img.html", "<img src=\"https://evil.example/p.gif\">"),
        (
            "srcset.html",
            "<img srcset=\"a.png 1x, //evil.example/b.png 2x\">",
        ),
        ("data-img.html", "<img src=\"data:image/png;base64,AAAA\">"),
        (
            "poster.html",
            "<video poster=\"http://evil.example/p.png\"></video>",
        ),
        (
            "background.html",
            "<table background=\"https://evil.example/b.png\"></table>",
        ),
        ("js-link.html", "<a href=\" java\tscript:alert(1)\">x</a>"),
        ("relative-link.html", "<a href=\"//evil.example/\">x</a>"),
        ("style-url.html", "<p style=\"background:URL(x.png)\">x</p>"),
        ("fixed.html", "<p style=\"position : FIXED\">x</p>"),
        ("sticky.html", "<p style=\"position:-webkit-sticky\">x</p>"),
        (
            "attachment.html",
            "<a href=\"../attachments/ab/minutes.html\">minutes</a>",
        ),
        ("svg.html", "<img src=\"../attachments/ab/logo.svg.txt\">"),
        (
            "refresh.html",
            "<meta http-equiv=\"refresh\" content=\"0;url=/\">",
        ),
        ("secret.html", "<p title=\"&quot;zq\">Sent to ZELDA</p>"),
    ];
    for (name, body) in bad {
        let page = format!(
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"{}\"></head><body>{body}</body></html>",
            CSP.iter()
                .map(|(d, v)| format!("{d} {v}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        std::fs::write(dir.path().join(name), page).unwrap();
    }
    std::fs::write(
        dir.path().join("weak-policy.html"),
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'\">",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("attachments/ab")).unwrap();
    std::fs::write(
        dir.path().join("attachments/ab/minutes.html"),
        "<script></script>",
    )
    .unwrap();
    std::fs::write(dir.path().join("fine.html"), "x").unwrap();
    let problems = site_problems(dir.path(), &["zelda".into(), "\"zq".into()]);
    let mut missed: Vec<&str> = bad
        .iter()
        .map(|(name, _)| *name)
        .chain([
            "weak-policy.html",
            "attachments/ab/minutes.html",
            "_headers",
            ".htaccess",
        ])
        .filter(|name| !problems.iter().any(|p| p.starts_with(name)))
        .collect();
    // A page with no policy at all is found too.
    if !problems
        .iter()
        .any(|p| p == "fine.html: no Content-Security-Policy")
    {
        missed.push("fine.html");
    }
    assert!(
        missed.is_empty(),
        "missed {missed:?} in\n{}",
        problems.join("\n")
    );
}

/// Share of the screenshot's pixels that may be the overlay's colour.
const MOST_OVERLAY: f64 = 0.01;

#[test]
fn a_hostile_page_in_headless_chromium_shows_no_overlay() {
    if !Path::new(CHROMIUM).exists() {
        crate::harness::skip(&format!(
            "{CHROMIUM} is not installed (apt-get install chromium)"
        ));
        return;
    }
    let t = with_hostile_mail(Test::with_examples());
    t.run(&["import", "hostile"]).success();
    t.run(&["archive", "site", "public"]).success();
    let page = page_of(&t.file("public"), "Overlay");
    let shot = t.file("overlay.png");
    let profile = t.file("chromium-profile");
    let picture = Shot::take(
        &format!("file://{}", page.display()),
        "1000,800",
        &shot,
        &profile,
    );
    if let Some(keep) = std::env::var_os("MAILOUT_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let total = picture.total();
    let count = |wanted: [u8; 3]| picture.count(wanted);
    let magenta = count([0xff, 0x00, 0xff]);
    assert!(
        (magenta as f64) < MOST_OVERLAY * total as f64,
        "{magenta} of {total} pixels are the overlay's #ff00ff: the message covers the page"
    );
    // The archive's own page is what shows: its header bar and its text.
    let header = count([0x1f, 0x3a, 0x5f]);
    assert!(
        header > total / 50,
        "only {header} of {total} pixels are the archive's header colour"
    );
}

#[test]
fn a_slice_of_the_real_mail_corpus_makes_a_site_that_passes_the_check() {
    let Some(corpus) = crate::archive::corpus() else {
        return;
    };
    let inputs = crate::archive::corpus_slice(&corpus);
    let mut args = vec!["import".to_string()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = Test::new();
    t.run(&args).success();
    t.run(&["archive", "site", "public"]).success();
    assert_safe(&t.file("public"), &[]);
}
