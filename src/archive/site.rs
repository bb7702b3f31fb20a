//! `mailout archive site DIR`: the archive as a static website. An index by number and
//! date, one page per bulletin at `DIR/<number>/` (the address the bulletins' "read on the
//! web" link points to) with previous/next links, a page per other message, a client-side
//! search (our own small script and a JSON index), and an Atom feed. HTML from received mail
//! is sanitised and what names a recipient taken out ([`super::sanitise`]); attachments a
//! browser would run are published as text; every page carries a strict
//! Content-Security-Policy, also written as HTTP headers for static hosts (`_headers`,
//! `.htaccess`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use handlebars::html_escape as esc;
use serde::Serialize;

use super::parse::decompress;
use super::sanitise::{Redactions, publish_html, visible_text};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{ArchiveEntry, ArchivedMessage, Store};

/// Characters of each message's text kept in the search index.
const INDEXED_TEXT: usize = 2_000;

/// What the site holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiteSummary {
    /// Bulletin pages.
    pub bulletins: usize,
    /// Pages of other messages.
    pub messages: usize,
    /// Attachment files.
    pub attachments: usize,
}

#[derive(Serialize)]
struct IndexEntry<'a> {
    u: String,
    t: String,
    d: &'a str,
    x: String,
}

/// Writes the site for everything in `store` into `dir`.
pub fn write_site(store: &dyn Store, config: &Config, dir: &Path) -> Result<SiteSummary> {
    let entries = store.archive_list()?;
    let mut bulletins: BTreeMap<u32, Vec<&ArchiveEntry>> = BTreeMap::new();
    let mut others = Vec::new();
    for e in &entries {
        match e.bulletin {
            Some(n) => bulletins.entry(n).or_default().push(e),
            None => others.push(e),
        }
    }
    others.sort_by(|a, b| b.date.cmp(&a.date).then(b.id.cmp(&a.id)));
    let org = &config.organisation;
    let mut summary = SiteSummary::default();
    let mut index = Vec::new();
    let mut attachments_written = std::collections::HashSet::new();
    write(dir, "style.css", STYLE.as_bytes())?;
    write(dir, "search.js", SEARCH_JS.as_bytes())?;
    write(dir, "_headers", NETLIFY_HEADERS.as_bytes())?;
    write(dir, ".htaccess", HTACCESS.as_bytes())?;
    // Subjects as published, by message id.
    let mut subjects: HashMap<i64, String> = HashMap::new();
    // Senders as published (a member's address and name taken out), by message id.
    let mut senders: HashMap<i64, String> = HashMap::new();

    // A bulletin's page shows its copy for everyone (or one mailout did not make); one of
    // which only proofs and members' own copies are archived has no page.
    let published: BTreeMap<u32, &ArchiveEntry> = bulletins
        .iter()
        .filter_map(|(n, copies)| {
            super::best_copy(copies)
                .filter(|c| super::publishable(c))
                .map(|c| (*n, c))
        })
        .collect();
    let numbers: Vec<u32> = published.keys().copied().collect();
    for (i, number) in numbers.iter().enumerate() {
        let copies = &bulletins[number];
        let Some(message) = store.archive_message(published[number].id)? else {
            continue;
        };
        let mut nav = String::new();
        if let Some(prev) = i.checked_sub(1).map(|p| numbers[p]) {
            let _ = write!(nav, "<a rel=\"prev\" href=\"../{prev}/\">← {prev}</a> ");
        }
        nav.push_str("<a href=\"../\">All bulletins</a>");
        if let Some(next) = numbers.get(i + 1) {
            let _ = write!(nav, " <a rel=\"next\" href=\"../{next}/\">{next} →</a>");
        }
        let mut extra = String::new();
        let others: Vec<&&ArchiveEntry> = copies
            .iter()
            .filter(|c| c.id != published[number].id && c.copy.is_none())
            .collect();
        if !others.is_empty() {
            let _ = write!(
                extra,
                "<p class=\"note\">Other copies of this number were received:"
            );
            for c in others {
                let _ = write!(extra, " <a href=\"../m/{}/\">#{}</a>", c.id, c.id);
            }
            extra.push_str("</p>");
        }
        let redactions = redactions(store, &message, config)?;
        let body = message_body(
            store,
            &message,
            &redactions,
            "..",
            &mut attachments_written,
            dir,
        )?;
        let subject = public_subject(&message, &redactions);
        if let Some(subject) = &subject {
            subjects.insert(published[number].id, subject.clone());
        }
        let title = subject
            .clone()
            .unwrap_or_else(|| format!("{} {number}", org.series));
        let page = page(
            &org.name,
            &title,
            "..",
            &format!(
                "<nav>{nav}</nav>{header}{extra}{sections}{body}<nav>{nav}</nav>",
                header = header(&message, &redactions),
                sections = sections_nav(&message, &redactions),
            ),
        );
        write(dir, &format!("{number}/index.html"), page.as_bytes())?;
        index.push(IndexEntry {
            u: format!("{number}/"),
            t: subject.clone().unwrap_or_default(),
            d: published[number].date.as_deref().unwrap_or(""),
            x: indexed_text(&message, &redactions),
        });
        summary.bulletins += 1;
    }

    // Every message has a page of its own at m/ID/ (copies of bulletins mailout did not
    // make too); copies mailout made are never published this way: the copy for everyone
    // is the bulletin's page, and proofs and members' own copies stay private.
    let all: Vec<&ArchiveEntry> = others
        .iter()
        .copied()
        .chain(
            bulletins
                .values()
                .flatten()
                .copied()
                .filter(|c| c.copy.is_none()),
        )
        .collect();
    for (i, entry) in all.iter().enumerate() {
        let Some(message) = store.archive_message(entry.id)? else {
            continue;
        };
        let mut nav = String::from("<a href=\"../../\">Archive</a>");
        if entry.bulletin.is_none() {
            if let Some(newer) = i.checked_sub(1).and_then(|p| others.get(p)) {
                let _ = write!(
                    nav,
                    " <a rel=\"prev\" href=\"../{}/\">← newer</a>",
                    newer.id
                );
            }
            if let Some(older) = others.get(i + 1) {
                let _ = write!(
                    nav,
                    " <a rel=\"next\" href=\"../{}/\">older →</a>",
                    older.id
                );
            }
        }
        let redactions = redactions(store, &message, config)?;
        let body = message_body(
            store,
            &message,
            &redactions,
            "../..",
            &mut attachments_written,
            dir,
        )?;
        let subject = public_subject(&message, &redactions);
        if let Some(subject) = &subject {
            subjects.insert(entry.id, subject.clone());
        }
        if let Some(sender) = &entry.sender {
            senders.insert(entry.id, redactions.text(sender).into_owned());
        }
        let title = subject.clone().unwrap_or_else(|| "(no subject)".into());
        let page = page(
            &org.name,
            &title,
            "../..",
            &format!("<nav>{nav}</nav>{}{body}", header(&message, &redactions)),
        );
        write(dir, &format!("m/{}/index.html", entry.id), page.as_bytes())?;
        if entry.bulletin.is_none() {
            index.push(IndexEntry {
                u: format!("m/{}/", entry.id),
                t: subject.unwrap_or_default(),
                d: entry.date.as_deref().unwrap_or(""),
                x: indexed_text(&message, &redactions),
            });
            summary.messages += 1;
        }
    }
    summary.attachments = attachments_written.len();

    // The index page.
    let mut html = String::new();
    let _ = write!(
        html,
        "<p><a href=\"search.html\">Search the archive</a> · <a href=\"feed.xml\">Atom feed</a></p>"
    );
    let _ = write!(html, "<h2>{}</h2>", esc(&org.series));
    let all_numbers: Vec<u32> = bulletins.keys().copied().collect();
    if all_numbers.is_empty() {
        html.push_str("<p>No bulletins yet.</p>");
    } else {
        html.push_str("<table class=\"list\"><tr><th>No.</th><th>Date</th><th>Subject</th></tr>");
        let mut expected = all_numbers.last().copied();
        for number in all_numbers.iter().rev() {
            if let Some(e) = expected
                && e > *number + 1
            {
                let missing = if e - 1 == number + 1 {
                    format!("{}", number + 1)
                } else {
                    format!("{}–{}", number + 1, e - 1)
                };
                let _ = write!(
                    html,
                    "<tr class=\"gap\"><td colspan=\"3\">missing: {missing}</td></tr>"
                );
            }
            expected = Some(*number);
            match published.get(number) {
                Some(first) => {
                    let _ = write!(
                        html,
                        "<tr><td><a href=\"{number}/\">{number}</a></td><td>{}</td><td><a href=\"{number}/\">{}</a></td></tr>",
                        esc(day(first.date.as_deref())),
                        esc(subjects.get(&first.id).map_or("", String::as_str)),
                    );
                }
                None => {
                    let _ = write!(
                        html,
                        "<tr class=\"gap\"><td>{number}</td><td></td><td>not published: only proofs and members' own copies of it are in the archive</td></tr>"
                    );
                }
            }
        }
        html.push_str("</table>");
    }
    if !others.is_empty() {
        let _ = write!(
            html,
            "<h2>Other mail</h2><table class=\"list\"><tr><th>Date</th><th>From</th><th>Subject</th></tr>"
        );
        for e in &others {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td><a href=\"m/{}/\">{}</a>{}</td></tr>",
                esc(day(e.date.as_deref())),
                esc(senders.get(&e.id).map_or("", String::as_str)),
                e.id,
                esc(subjects.get(&e.id).map_or("(no subject)", String::as_str)),
                if e.flagged.is_some() {
                    " <span class=\"note\">(unreadable, kept raw)</span>"
                } else {
                    ""
                },
            );
        }
        html.push_str("</table>");
    }
    write(
        dir,
        "index.html",
        page(&org.name, &format!("{} archive", org.name), ".", &html).as_bytes(),
    )?;

    let search = "<p><input id=\"q\" type=\"search\" placeholder=\"Search words\" autofocus></p><ol id=\"results\"></ol><script src=\"search.js\"></script>";
    write(
        dir,
        "search.html",
        page(&org.name, "Search", ".", search).as_bytes(),
    )?;
    let json = serde_json::to_vec(&index).map_err(|e| Error::Failed {
        context: "could not encode the search index".into(),
        source: Box::new(e),
    })?;
    write(dir, "search-index.json", &json)?;
    write(
        dir,
        "feed.xml",
        atom(config, &numbers, &published, &subjects).as_bytes(),
    )?;
    Ok(summary)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path: PathBuf = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(&path, bytes).map_err(|source| Error::Write { path, source })
}

fn day(date: Option<&str>) -> &str {
    date.map_or("", |d| d.get(..10).unwrap_or(d))
}

fn header(m: &ArchivedMessage, redactions: &Redactions) -> String {
    let e = &m.entry;
    format!(
        "<h1>{}</h1><p class=\"meta\">From {} · {}</p>",
        esc(public_subject(m, redactions)
            .as_deref()
            .unwrap_or("(no subject)")),
        esc(&redactions.text(e.sender.as_deref().unwrap_or("unknown sender"))),
        esc(e.date.as_deref().unwrap_or("no date")),
    )
}

fn sections_nav(m: &ArchivedMessage, redactions: &Redactions) -> String {
    if m.sections.len() < 2 {
        return String::new();
    }
    let mut out = String::from("<details class=\"sections\"><summary>Sections</summary><ol>");
    for heading in &m.sections {
        let _ = write!(
            out,
            "<li>{}</li>",
            esc(&redactions.text(heading.as_deref().unwrap_or("(untitled)")))
        );
    }
    out.push_str("</ol></details>");
    out
}

/// The message's body for a page, `redactions` applied: its HTML sanitised, else its text;
/// attachments listed and written under `attachments/HASH/NAME` (those a browser would run
/// under a name ending `.txt`).
fn message_body(
    store: &dyn Store,
    m: &ArchivedMessage,
    redactions: &Redactions,
    root: &str,
    written: &mut std::collections::HashSet<String>,
    dir: &Path,
) -> Result<String> {
    let mut cid = HashMap::new();
    let mut list = String::new();
    for a in &m.attachments {
        let (hash, filename, content_id, content_type, size) =
            (&a.hash, &a.filename, &a.content_id, &a.content_type, a.size);
        let (name, active) = published_name(
            &safe_name(&redactions.text(filename.as_deref().unwrap_or("attachment"))),
            content_type,
        );
        let url = format!("{root}/attachments/{hash}/{name}");
        if written.insert(format!("{hash}/{name}"))
            && let Some((_, data)) = store.archive_attachment(hash)?
        {
            let bytes = decompress(&data).unwrap_or_default();
            write(dir, &format!("attachments/{hash}/{name}"), &bytes)?;
        }
        // An active image (SVG) is never shown in the page.
        if let Some(id) = content_id
            && !active
        {
            cid.insert(id.clone(), url.clone());
        }
        if filename.is_some() {
            let _ = write!(
                list,
                "<li><a href=\"{}\">{}</a> ({}, {}){}</li>",
                esc(&url),
                esc(&name),
                esc(content_type),
                crate::text::count(size, "byte", "bytes"),
                if active {
                    " <span class=\"note\">published as text so that it cannot run in your browser</span>"
                } else {
                    ""
                },
            );
        }
    }
    let (text, html) = super::parse::bodies(&decompress(&m.raw_zstd).unwrap_or_default());
    let body = match (&html, &text) {
        (Some(html), _) => format!(
            "<div class=\"mail\">{}</div>",
            publish_html(html, &cid, redactions)
        ),
        (None, Some(text)) => format!("<pre class=\"mail\">{}</pre>", esc(&redactions.text(text))),
        (None, None) => match &m.entry.flagged {
            Some(why) => format!(
                "<p class=\"note\">This message could not be read ({}); it is kept as received.</p>",
                esc(why)
            ),
            None => "<p class=\"note\">(no text)</p>".into(),
        },
    };
    if list.is_empty() {
        Ok(body)
    } else {
        Ok(format!("{body}<h2>Attachments</h2><ul>{list}</ul>"))
    }
}

fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "attachment".into()
    } else {
        cleaned
    }
}

/// A page is public: what it must not show of this copy (whom it was sent to, and the
/// member's token in its personal unsubscribe links).
fn redactions(store: &dyn Store, m: &ArchivedMessage, config: &Config) -> Result<Redactions> {
    let raw = decompress(&m.raw_zstd).unwrap_or_default();
    let mut addressees = super::parse::addressees(&raw);
    // A member who wrote to us (a reply, a question) is as private as one we wrote to.
    if let Some(sender) = m.entry.sender.as_deref() {
        let (name, address) = match sender.rsplit_once('<') {
            Some((name, rest)) => (
                Some(name.trim().trim_matches('"').to_string()).filter(|n| !n.is_empty()),
                rest.trim_end_matches('>').trim().to_string(),
            ),
            None => (None, sender.trim().to_string()),
        };
        if address.contains('@') && store.member(&address.to_lowercase())?.is_some() {
            addressees.people.push((name, Some(address)));
        }
    }
    // The stored recipients too, should the raw bytes read differently now.
    addressees.people.extend(
        m.recipients
            .as_deref()
            .unwrap_or("")
            .split(", ")
            .filter(|a| a.contains('@'))
            .map(|a| (None, Some(a.to_string()))),
    );
    Ok(Redactions::new(
        &addressees.people,
        &addressees.unsubscribe,
        config,
    ))
}

/// The message's subject as a public page shows it.
fn public_subject(m: &ArchivedMessage, redactions: &Redactions) -> Option<String> {
    m.entry
        .subject
        .as_deref()
        .map(|s| redactions.text(s).into_owned())
}

/// File name extensions a browser (or a web server) would run or render as a document
/// rather than download: HTML, XHTML, SVG, XML and XSLT, scripts, web archives, and
/// server-side pages some hosts execute.
const ACTIVE_EXTENSIONS: &[&str] = &[
    "html", "htm", "xhtml", "xht", "shtml", "shtm", "stm", "svg", "svgz", "xml", "xsl", "xslt",
    "xsd", "rss", "atom", "js", "mjs", "cjs", "mht", "mhtml", "hta", "php", "php3", "php4", "php5",
    "php7", "phtml", "phar", "pl", "py", "cgi", "asp", "aspx", "jsp",
];

/// The name an attachment of `content_type` named `name` is published under, and whether
/// it was made text so that it cannot run. Every name ends in an extension static hosts
/// know, so none is served without a type for a browser to guess: one a browser would run
/// or render as a document gets `.txt` after it; a name without a known extension gets one
/// for its type (`.bin` if the type says nothing safe either).
fn published_name(name: &str, content_type: &str) -> (String, bool) {
    let ty = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".txt") {
        return (name.to_string(), false);
    }
    let active_type = matches!(
        ty.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "application/xslt+xml"
            | "application/javascript"
            | "application/x-javascript"
            | "application/ecmascript"
            | "text/javascript"
            | "text/ecmascript"
            | "multipart/related"
            | "application/x-mimearchive"
            | "message/rfc822"
    ) || ty.ends_with("+xml")
        || ty.ends_with("/xml");
    // Some servers go by every extension in a name, not only the last.
    let active_name = lower
        .split('.')
        .skip(1)
        .any(|ext| ACTIVE_EXTENSIONS.contains(&ext));
    if active_type || active_name {
        return (format!("{name}.txt"), true);
    }
    let known = lower
        .rsplit_once('.')
        .is_some_and(|(_, ext)| mime_guess::from_ext(ext).first().is_some());
    if known {
        return (name.to_string(), false);
    }
    let ext = SAFE_EXTENSIONS
        .iter()
        .find(|(t, _)| *t == ty)
        .map_or("bin", |(_, ext)| ext);
    (format!("{name}.{ext}"), false)
}

/// Extensions for attachments whose name has none a static host knows, by content type.
const SAFE_EXTENSIONS: &[(&str, &str)] = &[
    ("text/plain", "txt"),
    ("text/csv", "csv"),
    ("text/calendar", "ics"),
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("application/pdf", "pdf"),
    ("application/zip", "zip"),
    ("application/msword", "doc"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("application/vnd.ms-excel", "xls"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    ("application/vnd.oasis.opendocument.text", "odt"),
];

/// The words of a message for the search index: of its HTML as published, else of its
/// text, `redactions` applied.
fn indexed_text(m: &ArchivedMessage, redactions: &Redactions) -> String {
    let (text, html) = super::parse::bodies(&decompress(&m.raw_zstd).unwrap_or_default());
    let text = match html {
        Some(html) => visible_text(&publish_html(&html, &HashMap::new(), redactions)),
        None => redactions.text(&text.unwrap_or_default()).into_owned(),
    };
    let mut out: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > INDEXED_TEXT {
        let mut end = INDEXED_TEXT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

fn page(organisation: &str, title: &str, root: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title} – {org}</title><link rel=\"stylesheet\" href=\"{root}/style.css\">\
<link rel=\"alternate\" type=\"application/atom+xml\" href=\"{root}/feed.xml\"></head>\
<body><header><a href=\"{root}/\">{org} archive</a></header><main>{body}</main></body></html>\n",
        title = esc(title),
        org = esc(organisation),
    )
}

fn atom(
    config: &Config,
    numbers: &[u32],
    published: &BTreeMap<u32, &ArchiveEntry>,
    subjects: &HashMap<i64, String>,
) -> String {
    let base = config.archive.site_url.trim_end_matches('/');
    let updated = numbers
        .iter()
        .filter_map(|n| published[n].date.clone())
        .max()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
<title>{}</title>\n<id>{base}/</id>\n<link href=\"{base}/\"/>\n<link rel=\"self\" href=\"{base}/feed.xml\"/>\n<updated>{}</updated>\n",
        esc(&config.organisation.series),
        esc(&updated),
    );
    for n in numbers.iter().rev().take(50) {
        let e = published[n];
        let _ = writeln!(
            out,
            "<entry><title>{}</title><id>{base}/{n}/</id><link href=\"{base}/{n}/\"/><updated>{}</updated><author><name>{}</name></author></entry>",
            esc(subjects.get(&e.id).map_or("", String::as_str)),
            esc(e.date.as_deref().unwrap_or(&updated)),
            esc(&config.organisation.name),
        );
    }
    out.push_str("</feed>\n");
    out
}

/// The text of [`CSP`], for the header files made with `concat!`.
macro_rules! csp {
    () => {
        "default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    };
}

/// The Content-Security-Policy of every page: nothing loads but the site's own images,
/// stylesheet, script and search index; inline styles (a newsletter's layout) are allowed,
/// inline scripts are not; no `<base>`, no form posts, no framing by other sites (the last
/// works only as an HTTP header).
const CSP: &str = csp!();

/// `_headers` (Netlify, Cloudflare Pages): the policy as HTTP headers for every file.
const NETLIFY_HEADERS: &str = concat!(
    "# Written by `mailout archive site`: the pages' Content-Security-Policy as HTTP headers.\n",
    "/*\n",
    "  Content-Security-Policy: ",
    csp!(),
    "\n",
    "  X-Content-Type-Options: nosniff\n",
    "  Referrer-Policy: no-referrer\n",
);

/// `.htaccess` (Apache): the same headers, `.txt` served as plain text, and no handler that
/// would run an attachment. It needs mod_headers and `AllowOverride FileInfo`; without
/// them Apache refuses to serve the site rather than serve it without its headers.
const HTACCESS: &str = concat!(
    "# Written by `mailout archive site`: the pages' Content-Security-Policy as HTTP headers.\n",
    "Header set Content-Security-Policy \"",
    csp!(),
    "\"\n",
    "Header set X-Content-Type-Options \"nosniff\"\n",
    "Header set Referrer-Policy \"no-referrer\"\n",
    "AddType text/plain .txt\n",
    "RemoveHandler .php .php3 .php4 .php5 .php7 .phtml .phar .pl .py .cgi .shtml .asp\n",
);

const STYLE: &str = "body{margin:0;font-family:Georgia,serif;color:#1d1d1f;background:#f4f6f9}\
header{background:#1f3a5f;padding:12px 20px}header a{color:#fff;font-family:Arial,sans-serif;font-weight:bold;text-decoration:none}\
main{max-width:860px;margin:0 auto;padding:16px 20px;background:#fff;min-height:80vh}\
nav{font-family:Arial,sans-serif;font-size:14px;margin:8px 0}nav a{margin-right:12px}\
h1{font-family:Arial,sans-serif;color:#1f3a5f;font-size:26px}.meta,.note{color:#55595f;font-size:14px;font-family:Arial,sans-serif}\
table.list{border-collapse:collapse;width:100%;font-family:Arial,sans-serif;font-size:14px}\
table.list td,table.list th{border-bottom:1px solid #d9dde3;padding:6px;text-align:left;vertical-align:top}\
tr.gap td{color:#a01f3a;font-style:italic}table.list td:first-child{white-space:nowrap}pre.mail{white-space:pre-wrap;font-size:15px}\
div.mail{overflow-x:auto;position:relative;contain:paint}#q{font-size:18px;padding:6px;width:100%;max-width:500px}\n";

const SEARCH_JS: &str = r#"// Client-side search over search-index.json: every word must appear.
(function () {
  var box = document.getElementById('q'), out = document.getElementById('results'), index = null;
  function show(q) {
    out.textContent = '';
    var words = q.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length || !index) return;
    var shown = 0;
    for (var i = 0; i < index.length && shown < 100; i++) {
      var e = index[i], hay = (e.t + ' ' + e.x).toLowerCase();
      if (!words.every(function (w) { return hay.indexOf(w) >= 0; })) continue;
      var li = document.createElement('li'), a = document.createElement('a');
      a.href = e.u; a.textContent = e.t || '(no subject)';
      li.appendChild(a); li.appendChild(document.createTextNode(' ' + e.d.slice(0, 10)));
      out.appendChild(li); shown++;
    }
    if (!shown) { var li = document.createElement('li'); li.textContent = 'Nothing found.'; out.appendChild(li); }
  }
  fetch('search-index.json').then(function (r) { return r.json(); }).then(function (j) { index = j; show(box.value); });
  box.addEventListener('input', function () { show(box.value); });
})();
"#;
