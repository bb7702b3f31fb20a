//! The pre-send checks (PRODUCT.md §6a): not mistakes in the file, but things that hurt a
//! mailout once it has gone out (a clipped message, an image nobody can read, a link that
//! says nothing, a section that reaches nobody). Each is a warning at its place in the
//! bulletin; `--strict` makes them errors. `mailout check` and every send run them, through
//! [`Workspace::check`](crate::workspace::Workspace::check).

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::bulletin::{self, Bulletin, Section};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Severity};
use crate::edition::Edition;
use crate::error::{Error, Result};
use crate::members::Selection;
use crate::message::Mailing;
use crate::recipient::Recipient;
use crate::render::Renderer;
use crate::render::markdown::{self, Link};
use crate::render::templates::Templates;
use crate::token::TokenKey;
use crate::toml_file::{self, Span};

/// Gmail shows only this much of a message's HTML, then "[Message clipped] View entire
/// message" (hiding the rest, the footer and its unsubscribe link with it).
pub const GMAIL_CLIP_BYTES: usize = 102 * 1024;

/// A subject longer than this is cut short in most inboxes (and is RFC 5322's line length).
pub const MAX_SUBJECT_CHARS: usize = 78;

/// Link texts that say nothing about where a link leads (compared in lowercase, after
/// trimming punctuation and spaces).
const VAGUE_LINK_TEXTS: &[&str] = &[
    "click",
    "click here",
    "click this link",
    "details",
    "find out more",
    "follow this link",
    "go",
    "here",
    "learn more",
    "link",
    "more",
    "more info",
    "more information",
    "read more",
    "see here",
    "see more",
    "this",
    "this link",
    "this page",
];

/// The placeholder text `mailout new` writes into a bulletin's skeleton: none of it may go
/// out to members.
pub const SKELETON_TEXTS: &[&str] = &[
    "The lead story of this bulletin",
    "Write the introduction here",
    "The first news item",
    "Your Name",
];

/// Warnings about what the bulletin says (its images, links and subject), and the errors of
/// text left unfinished: the checks that need neither the store nor a render. `number` is
/// the number the bulletin will get.
pub fn content(bulletin: &Bulletin, config: &Config, number: u32) -> Vec<Diagnostic> {
    let mut found = unfinished_text(bulletin);
    found.extend(images_without_alt(bulletin));
    found.extend(remote_images(bulletin, &own_hosts(config)));
    found.extend(vague_link_texts(bulletin));
    found.extend(plain_http_links(bulletin));
    found.extend(subject(bulletin, config, number));
    found
}

/// The HTML part over Gmail's 102 KB: `html_bytes` is the size of the full copy's HTML part,
/// decoded, as `build` writes it. Placed at the longest body, the likeliest thing to cut.
pub fn html_size(bulletin: &Bulletin, html_bytes: usize) -> Option<Diagnostic> {
    if html_bytes <= GMAIL_CLIP_BYTES {
        return None;
    }
    let span = bodies(bulletin)
        .max_by_key(|b| b.get_ref().len())
        .map_or(0..0, |b| b.span());
    Some(warning(
        bulletin,
        span,
        format!(
            "the HTML part is {} KB; Gmail clips messages over {} KB, hiding the rest (and the unsubscribe link) behind \"View entire message\"",
            html_bytes.div_ceil(1024),
            GMAIL_CLIP_BYTES / 1024
        ),
    ))
}

/// What rendering every audience variant of an edition found: the size of the full copy's
/// HTML part, and the template problems.
#[derive(Debug, Default)]
pub struct Rendering {
    /// The size in bytes of the full copy's HTML part, decoded, as `build` writes it (none
    /// when it could not be rendered).
    pub html_bytes: Option<usize>,
    /// The full copy's HTML part, decoded (none when it could not be rendered).
    pub html: Option<String>,
    /// Each template problem once, as an error at its place in the template file.
    pub problems: Vec<Diagnostic>,
}

/// Renders `edition` as a send would, for every audience variant its sections make (the
/// full copy, a member of each audience named, a member of none of them), so that a
/// template problem shows in `check` rather than halfway through a send. `base` is the
/// folder the templates' overrides are in. The unsubscribe tokens have a fixed length, so
/// any key measures the copy.
pub fn render_variants(edition: Edition, templates: &Templates, base: &Path) -> Rendering {
    let mut out = Rendering::default();
    let bulletin_path = edition.bulletin.path.clone();
    let bulletin_source = edition.bulletin.source.clone();
    let problem = |e: Error, out: &mut Rendering| {
        let d = match &e {
            Error::Template {
                name, line, column, ..
            } => {
                let source = templates
                    .get(
                        name.strip_prefix(&format!("{}/", crate::render::templates::DIR))
                            .unwrap_or(name),
                    )
                    .unwrap_or("");
                let span = line_column_span(source, *line, *column);
                let path = if base == Path::new(".") {
                    std::path::PathBuf::from(name)
                } else {
                    base.join(name)
                };
                let message = e.to_string();
                let message = message
                    .split_once(": ")
                    .map_or(message.as_str(), |(_, m)| m);
                Diagnostic::error(&path, source, span, message)
            }
            _ => Diagnostic::error(&bulletin_path, &bulletin_source, 0..0, e.to_string()),
        };
        if !out.problems.contains(&d) {
            out.problems.push(d);
        }
    };
    let renderer = match Renderer::new(templates) {
        Ok(r) => r,
        Err(e) => {
            problem(e, &mut out);
            return out;
        }
    };
    let mut members: Vec<Recipient> = Vec::new();
    for i in 0..edition.bulletin.sections.len() {
        for name in edition.audience(i) {
            if !members.iter().any(|m| m.employer.as_deref() == Some(name)) {
                members.push(Recipient {
                    email: "member@example.org".into(),
                    name: Some("Sample Member".into()),
                    employer: Some(name.to_string()),
                    ..Recipient::default()
                });
            }
        }
    }
    members.push(Recipient::address_only("member@example.org"));
    let list = Recipient::address_only(&edition.config.sender.list_address);
    let mailing = match Mailing::new(edition, renderer, TokenKey::new(*b"pre-send check"), None) {
        Ok(m) => m,
        Err(e) => {
            problem(e, &mut out);
            return out;
        }
    };
    match mailing.parts_for(&list, true) {
        Ok(parts) => {
            out.html_bytes = Some(parts.html.len());
            out.html = Some(parts.html);
        }
        Err(e) => problem(e, &mut out),
    }
    for member in &members {
        if let Err(e) = mailing.parts_for(member, false) {
            problem(e, &mut out);
        }
    }
    out
}

/// What a screen reader or a reader with poor sight meets in the full copy's `html` (styles
/// inlined): layout tables read as data tables, text under 4.5:1 contrast or 14 px, headings
/// that skip a level, the divider read aloud. Each finding once, placed at the template
/// (or style rule) it comes from when one names it, else at the top of `bulletin`.
pub fn accessibility(
    bulletin: &Bulletin,
    html: &str,
    templates: &crate::render::templates::Templates,
    base: &Path,
) -> Vec<Diagnostic> {
    use html5ever::tendril::TendrilSink;
    let dom = html5ever::parse_document(markup5ever_rcdom::RcDom::default(), Default::default())
        .one(html);
    let mut walk = Walk::default();
    walk.node(&dom.document, &Style::default(), false);
    let mut found: Vec<Diagnostic> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (needle, message) in walk.findings {
        if !seen.insert(message.clone()) {
            continue;
        }
        let placed = templates.iter().find_map(|(name, source)| {
            let at = needle.as_deref().and_then(|n| source.find(n))?;
            let path = if base == Path::new(".") {
                Path::new(crate::render::templates::DIR).join(name)
            } else {
                base.join(crate::render::templates::DIR).join(name)
            };
            let end = source[at..].find('\n').map_or(source.len(), |e| at + e);
            Some(Diagnostic::warning(&path, source, at..end, message.clone()))
        });
        found.push(placed.unwrap_or_else(|| warning(bulletin, 0..0, message)));
    }
    found
}

/// The inherited style of an element: what decides its contrast and size.
#[derive(Debug, Clone)]
struct Style {
    color: (u8, u8, u8),
    background: (u8, u8, u8),
    size_px: f64,
    bold: bool,
    hidden: bool,
    /// The class of the nearest element that has one: where the rule is.
    class: String,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            color: (0, 0, 0),
            background: (255, 255, 255),
            size_px: 16.0,
            bold: false,
            hidden: false,
            class: String::new(),
        }
    }
}

#[derive(Default)]
struct Walk {
    /// (what to look for in the templates, the message).
    findings: Vec<(Option<String>, String)>,
    last_heading: Option<u8>,
}

impl Walk {
    fn node(&mut self, node: &markup5ever_rcdom::Handle, parent: &Style, in_hidden: bool) {
        use markup5ever_rcdom::NodeData;
        match &node.data {
            NodeData::Element { name, attrs, .. } => {
                let tag = name.local.to_string();
                let attrs = attrs.borrow();
                let attr = |n: &str| {
                    attrs
                        .iter()
                        .find(|a| &*a.name.local == n)
                        .map(|a| a.value.to_string())
                };
                let class = attr("class").unwrap_or_default();
                let own_class = class.split_whitespace().next().unwrap_or("").to_string();
                let hidden_here = attr("aria-hidden").as_deref() == Some("true")
                    || matches!(attr("role").as_deref(), Some("presentation" | "none"))
                        && tag != "table";
                let mut style = parent.clone();
                if !own_class.is_empty() {
                    style.class = own_class.clone();
                }
                let first_class = style.class.clone();
                apply(
                    &mut style,
                    attr("style").as_deref().unwrap_or(""),
                    attr("bgcolor").as_deref(),
                );
                if matches!(tag.as_str(), "b" | "strong" | "th")
                    || (tag.len() == 2 && tag.starts_with('h'))
                {
                    style.bold = true;
                }
                let hidden = in_hidden || hidden_here || style.hidden;
                if tag == "table"
                    && !matches!(attr("role").as_deref(), Some("presentation" | "none"))
                    && !has_descendant(node, "th")
                {
                    self.findings.push((
                        Some(if own_class.is_empty() { "<table".into() } else { format!("class=\"{own_class}\"") }),
                        format!(
                            "a table{} has no header cells and no `role=\"presentation\"`: a screen reader reads a layout table as data, cell by cell (give layout tables `role=\"presentation\"`)",
                            shown_class(&own_class)
                        ),
                    ));
                }
                if let Some(level) = tag
                    .strip_prefix('h')
                    .and_then(|l| l.parse::<u8>().ok())
                    .filter(|l| (1..=6).contains(l))
                {
                    if let Some(last) = self.last_heading
                        && level > last + 1
                    {
                        self.findings.push((
                            None,
                            format!("a heading `{}` (h{level}) follows an h{last}: a screen reader's list of headings skips a level (use h{})", text_of(node).trim(), last + 1),
                        ));
                    }
                    self.last_heading = Some(level);
                }
                let own_text = direct_text(node);
                if !own_text.trim().is_empty() {
                    if own_text.contains(crate::render::DIVIDER) && !hidden {
                        self.findings.push((
                            Some(format!("class=\"{first_class}\"")).filter(|_| !first_class.is_empty()),
                            format!(
                                "the divider `{}` is read aloud by screen readers, character by character; give it `aria-hidden=\"true\"`",
                                crate::render::DIVIDER
                            ),
                        ));
                    }
                    if !hidden && style.size_px > 2.0 {
                        let rule =
                            Some(format!(".{first_class} ")).filter(|_| !first_class.is_empty());
                        if style.size_px < 14.0 {
                            self.findings.push((
                                rule.clone(),
                                format!(
                                    "text{} is {}px: under 14 px is hard to read on a phone and for weak eyes (make it 14px or more)",
                                    shown_class(&first_class),
                                    style.size_px
                                ),
                            ));
                        }
                        let ratio = contrast(style.color, style.background);
                        let large = style.size_px >= 24.0 || (style.bold && style.size_px >= 18.66);
                        let least = if large { 3.0 } else { 4.5 };
                        if ratio < least {
                            self.findings.push((
                                rule,
                                format!(
                                    "text{} is {} on {}, a contrast of {ratio:.1}:1 (under {least}:1): readers with weak sight lose it",
                                    shown_class(&first_class),
                                    hex_colour(style.color),
                                    hex_colour(style.background)
                                ),
                            ));
                        }
                    }
                }
                if matches!(tag.as_str(), "head" | "script" | "style" | "title") {
                    return;
                }
                for child in node.children.borrow().iter() {
                    self.node(child, &style, hidden);
                }
            }
            _ => {
                for child in node.children.borrow().iter() {
                    self.node(child, parent, in_hidden);
                }
            }
        }
    }
}

fn shown_class(class: &str) -> String {
    if class.is_empty() {
        String::new()
    } else {
        format!(" in `.{class}`")
    }
}

fn hex_colour((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn has_descendant(node: &markup5ever_rcdom::Handle, wanted: &str) -> bool {
    node.children.borrow().iter().any(|c| {
        matches!(&c.data, markup5ever_rcdom::NodeData::Element { name, .. } if &*name.local == wanted)
            || has_descendant(c, wanted)
    })
}

/// The text directly inside `node` (not in its child elements).
fn direct_text(node: &markup5ever_rcdom::Handle) -> String {
    node.children
        .borrow()
        .iter()
        .filter_map(|c| match &c.data {
            markup5ever_rcdom::NodeData::Text { contents } => Some(contents.borrow().to_string()),
            _ => None,
        })
        .collect()
}

/// All the text inside `node`.
fn text_of(node: &markup5ever_rcdom::Handle) -> String {
    let mut out = direct_text(node);
    for c in node.children.borrow().iter() {
        if matches!(c.data, markup5ever_rcdom::NodeData::Element { .. }) {
            out.push_str(&text_of(c));
        }
    }
    out
}

/// `style` (an inline style attribute) and `bgcolor` applied over the inherited `s`.
fn apply(s: &mut Style, style: &str, bgcolor: Option<&str>) {
    if let Some(c) = bgcolor.and_then(parse_colour) {
        s.background = c;
    }
    for declaration in style.split(';') {
        let Some((property, value)) = declaration.split_once(':') else {
            continue;
        };
        let value = value.trim().trim_end_matches("!important").trim();
        match property.trim().to_ascii_lowercase().as_str() {
            "color" => {
                if let Some(c) = parse_colour(value) {
                    s.color = c;
                }
            }
            "background-color" | "background" => {
                if let Some(c) = value.split_whitespace().find_map(parse_colour) {
                    s.background = c;
                }
            }
            "font-size" => {
                if let Some(px) = value
                    .strip_suffix("px")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                {
                    s.size_px = px;
                } else if let Some(em) = value
                    .strip_suffix("em")
                    .or_else(|| value.strip_suffix("rem"))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                {
                    s.size_px *= em;
                } else if let Some(pc) = value
                    .strip_suffix('%')
                    .and_then(|v| v.trim().parse::<f64>().ok())
                {
                    s.size_px *= pc / 100.0;
                }
            }
            "font-weight" => {
                s.bold = matches!(value, "bold" | "bolder" | "600" | "700" | "800" | "900")
            }
            "display" if value == "none" => s.hidden = true,
            "visibility" if value == "hidden" => s.hidden = true,
            "opacity" if value == "0" => s.hidden = true,
            "max-height" if value == "0" || value == "0px" => s.hidden = true,
            _ => {}
        }
    }
}

/// `#rgb`, `#rrggbb`, `rgb(r, g, b)` or a few names.
fn parse_colour(value: &str) -> Option<(u8, u8, u8)> {
    let v = value.trim().to_ascii_lowercase();
    if let Some(hex) = v.strip_prefix('#') {
        let digits: Vec<u8> = hex
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()?;
        return match digits.as_slice() {
            [r, g, b] => Some((r * 17, g * 17, b * 17)),
            [r1, r2, g1, g2, b1, b2] => Some((r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2)),
            _ => None,
        };
    }
    if let Some(inner) = v.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) {
        let n: Vec<u8> = inner
            .split(',')
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()?;
        return (n.len() == 3).then(|| (n[0], n[1], n[2]));
    }
    match v.as_str() {
        "white" => Some((255, 255, 255)),
        "black" => Some((0, 0, 0)),
        _ => None,
    }
}

/// WCAG 2 contrast ratio of two colours.
fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    let lum = |(r, g, b): (u8, u8, u8)| {
        let c = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.03928 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b)
    };
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The byte range of the character at `line`:`column` (1-based) of `source`.
fn line_column_span(source: &str, line: Option<usize>, column: Option<usize>) -> Span {
    let Some(line) = line else {
        return 0..0;
    };
    let start = source
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        .min(source.len());
    let rest = &source[start..];
    let rest = &rest[..rest.find('\n').unwrap_or(rest.len())];
    let offset = rest
        .char_indices()
        .nth(column.unwrap_or(1).saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    let at = start + offset;
    let width = rest[offset..].chars().next().map_or(0, char::len_utf8);
    at..at + width
}

/// Text nobody should receive: the skeleton's placeholders, and the marks writers leave
/// for themselves (`TODO`, `FIXME`, `TK`, lorem ipsum). Each is an error at its place, so
/// `check` fails and a send is refused; a proof and a preview still show the draft.
pub fn unfinished_text(bulletin: &Bulletin) -> Vec<Diagnostic> {
    static MARKS: std::sync::LazyLock<regex_lite::Regex> = std::sync::LazyLock::new(|| {
        regex_lite::Regex::new(r"\b(?:TODO|FIXME|TK)\b|(?i:\blorem\b)").expect("a valid pattern")
    });
    let mut fields: Vec<&Spanned<String>> = Vec::new();
    fields.extend(&bulletin.subject);
    fields.extend(&bulletin.headline);
    fields.extend(&bulletin.greeting);
    fields.extend(&bulletin.to);
    fields.extend(&bulletin.intro);
    for s in &bulletin.sections {
        fields.push(&s.heading);
        fields.push(&s.body);
        fields.extend(&s.signed);
    }
    for s in &bulletin.signatories {
        fields.push(&s.name);
        fields.extend(&s.role);
        fields.extend(&s.on_behalf_of);
    }
    let mut found = Vec::new();
    for field in fields {
        let text = field.get_ref();
        for skeleton in SKELETON_TEXTS {
            if let Some(at) = text.find(skeleton) {
                found.push(Diagnostic::error(
                    &bulletin.path,
                    &bulletin.source,
                    place(bulletin, field, &(at..at + skeleton.len())),
                    format!(
                        "`{skeleton}` is placeholder text from `mailout new`; write the bulletin's own words before sending"
                    ),
                ));
            }
        }
        for mark in MARKS.find_iter(text) {
            found.push(Diagnostic::error(
                &bulletin.path,
                &bulletin.source,
                place(bulletin, field, &mark.range()),
                format!(
                    "`{}` marks unfinished text; finish it before sending",
                    mark.as_str()
                ),
            ));
        }
    }
    found
}

/// Images without alt text: readers with images off, and screen readers, get nothing.
pub fn images_without_alt(bulletin: &Bulletin) -> Vec<Diagnostic> {
    links(bulletin)
        .filter(|(_, link)| link.image && link.text.trim().is_empty())
        .map(|(body, link)| {
            let url = link.url.trim();
            warning(
                bulletin,
                place(bulletin, body, &link.range),
                format!(
                    "image `{url}` has no alt text; with images off or a screen reader it is lost (write `![what it shows]({url})`)"
                ),
            )
        })
        .collect()
}

/// The organisation's own hosts: its sender, list and unsubscribe domains and `[serve]
/// public_url` (an image there tells no third party anything).
pub fn own_hosts(config: &Config) -> Vec<String> {
    let mut hosts: Vec<String> = [&config.sender.from, &config.sender.list_address]
        .iter()
        .filter_map(|a| {
            a.rsplit_once('@')
                .map(|(_, d)| d.trim_end_matches('>').to_string())
        })
        .chain(std::iter::once(config.sender.list_domain.clone()))
        .chain(
            [
                Some(&config.sender.unsubscribe_url),
                config.serve.public_url.as_ref(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|u| url::Url::parse(u).ok()?.host_str().map(str::to_string)),
        )
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Images loaded from another party's server when the bulletin is opened: the mail
/// client's request tells that server who opened it, when and from where (a tracking pixel
/// in all but name). Images on the organisation's own hosts (`own`, or below them) pass.
pub fn remote_images(bulletin: &Bulletin, own: &[String]) -> Vec<Diagnostic> {
    links(bulletin)
        .filter_map(|(body, link)| {
            let url = link.url.trim();
            let lower = url.to_ascii_lowercase();
            if !link.image || !(lower.starts_with("https://") || lower.starts_with("http://")) {
                return None;
            }
            let host = url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                .unwrap_or_else(|| url.to_string());
            let ours = own
                .iter()
                .any(|o| host == *o || host.ends_with(&format!(".{o}")));
            (!ours).then_some((body, link, host))
        })
        .map(|(body, link, host)| {
            let url = link.url.trim();
            warning(
                bulletin,
                place(bulletin, body, &link.range),
                format!(
                    "image `{url}` is loaded from {host} when the bulletin is opened: the request tells {host} who opened it, when and from where; leave it out, or link to it instead"
                ),
            )
        })
        .collect()
}

/// Links whose text says nothing about where they lead ("click here", "read more"), or
/// that have no text at all.
pub fn vague_link_texts(bulletin: &Bulletin) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for (body, all) in bodies(bulletin).map(|b| (b, markdown::links(b.get_ref()))) {
        for link in all.iter().filter(|l| !l.image) {
            let text = normalise_link_text(&link.text);
            // An image as the link's text: its own alt text is checked above.
            let holds_image = all.iter().any(|i| {
                i.image && i.range.start >= link.range.start && i.range.end <= link.range.end
            });
            let message = if text.is_empty() && !holds_image {
                format!(
                    "the link to `{}` has no text; say where it leads",
                    link.url.trim()
                )
            } else if VAGUE_LINK_TEXTS.contains(&text.as_str()) {
                format!(
                    "link text `{}` says nothing about where it leads; let the text name it instead",
                    link.text.trim()
                )
            } else {
                continue;
            };
            found.push(warning(
                bulletin,
                place(bulletin, body, &link.range),
                message,
            ));
        }
    }
    found
}

/// Lowercase, with spaces collapsed and punctuation trimmed from both ends.
fn normalise_link_text(text: &str) -> String {
    text.trim_matches(|c: char| !c.is_alphanumeric())
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Links and images over plain `http://`: readable and changeable on the way.
pub fn plain_http_links(bulletin: &Bulletin) -> Vec<Diagnostic> {
    links(bulletin)
        .filter(|(_, link)| link.url.trim().to_ascii_lowercase().starts_with("http://"))
        .map(|(body, link)| {
            let what = if link.image {
                "image is loaded"
            } else {
                "link goes"
            };
            warning(
                bulletin,
                place(bulletin, body, &link.range),
                format!(
                    "{what} over plain `http://` (`{}`); use `https://`",
                    link.url.trim()
                ),
            )
        })
        .collect()
}

/// A subject over [`MAX_SUBJECT_CHARS`], or in capitals. Placed at `subject`, else at
/// `headline` (which the default subject is made from).
pub fn subject(bulletin: &Bulletin, config: &Config, number: u32) -> Vec<Diagnostic> {
    let subject = bulletin.subject_for(config, number);
    let span = bulletin
        .subject
        .as_ref()
        .or(bulletin.headline.as_ref())
        .map_or(0..0, |s| s.span());
    let mut found = Vec::new();
    let length = subject.chars().count();
    if length > MAX_SUBJECT_CHARS {
        found.push(warning(
            bulletin,
            span.clone(),
            format!(
                "the subject is {length} characters (`{subject}`); over {MAX_SUBJECT_CHARS} it is cut short in most inboxes"
            ),
        ));
    }
    // The series title is the organisation's; judge what this bulletin adds to it.
    let own = strip_series(&subject, &config.organisation.series);
    if in_capitals(own) {
        found.push(warning(
            bulletin,
            span,
            format!("the subject is in capitals (`{subject}`); it reads as shouting, and spam filters count it against the mail"),
        ));
    }
    found
}

/// `subject` without a leading `{series} {number}: `.
fn strip_series<'s>(subject: &'s str, series: &str) -> &'s str {
    let Some(rest) = subject.strip_prefix(series) else {
        return subject;
    };
    rest.trim_start()
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start_matches(':')
        .trim_start()
}

/// Whether most of the letters of `text` are in words written wholly in capitals. Short
/// texts and the odd acronym (`NPS, CRC and PbNI`) are not capitals.
fn in_capitals(text: &str) -> bool {
    let mut letters = 0;
    let mut shouted = 0;
    for word in text.split(|c: char| !c.is_alphabetic()) {
        let n = word.chars().count();
        letters += n;
        if n >= 2 && !word.chars().any(char::is_lowercase) {
            shouted += word.chars().filter(|c| c.is_uppercase()).count();
        }
    }
    letters >= 6 && shouted * 2 > letters
}

/// What the store knows about the members, for the audience checks.
pub struct Roster<'a> {
    /// Every branch and employer name sendable members have, as written.
    pub names: Vec<String>,
    /// How many sendable members `selection` reaches.
    pub count: &'a dyn Fn(&Selection) -> Result<u64>,
}

/// Whether any section has an audience (its own or its kind's), so that the store need be
/// asked only then.
pub fn has_audiences(bulletin: &Bulletin, config: &Config) -> bool {
    bulletin.sections.iter().any(|s| {
        !s.audience.is_empty()
            || s.kind
                .as_ref()
                .and_then(|k| config.section_kind(k.get_ref()))
                .is_some_and(|k| !k.audience.is_empty())
    })
}

/// Sections whose audience reaches no member (placed at `audience`, or at `kind` when the
/// kind gives the audience), and audience names that are no member's branch or employer
/// (placed at the name). A name is reported once: in a section that reaches nobody, the
/// unknown names are named in that section's warning.
pub fn audiences(bulletin: &Bulletin, config: &Config, roster: &Roster) -> Result<Vec<Diagnostic>> {
    let known: Vec<&str> = roster.names.iter().map(String::as_str).collect();
    let is_known = |name: &str| {
        known
            .iter()
            .any(|k| k.trim().eq_ignore_ascii_case(name.trim()))
    };
    let mut found = Vec::new();
    for section in &bulletin.sections {
        let heading = section.heading.get_ref().trim();
        let (names, span, from_kind): (Vec<&str>, Span, Option<&str>) =
            if let Some(first) = section.audience.first() {
                let names = section.audience.iter().map(|a| a.get_ref().as_str());
                (
                    names.collect(),
                    audience_key(bulletin, section, first),
                    None,
                )
            } else if let Some(kind) = &section.kind
                && let Some(k) = config.section_kind(kind.get_ref())
                && !k.audience.is_empty()
            {
                let names = k.audience.iter().map(String::as_str).collect();
                (names, kind.span(), Some(kind.get_ref().as_str()))
            } else {
                continue;
            };
        let names: Vec<&str> = names.into_iter().filter(|n| !n.trim().is_empty()).collect();
        if names.is_empty() {
            continue;
        }
        let wanted: Vec<String> = names.iter().map(|n| n.trim().to_lowercase()).collect();
        let selection = Selection {
            branches: wanted.clone(),
            employers: wanted,
            ..Selection::default()
        };
        if (roster.count)(&selection)? == 0 {
            let unknown: Vec<&str> = names.iter().copied().filter(|n| !is_known(n)).collect();
            let whom = match from_kind {
                Some(kind) => format!("kind `{kind}` goes to {}, which", toml_file::list(&names)),
                None => format!("its audience {}", toml_file::list(&names)),
            };
            let hint = unknown_hint(&unknown, &known);
            found.push(warning(
                bulletin,
                span,
                format!("section `{heading}`: {whom} matches no member in the store, so nobody will receive it{hint}"),
            ));
            continue;
        }
        for name in &section.audience {
            let text = name.get_ref().trim();
            if text.is_empty() || is_known(text) {
                continue;
            }
            let hint = match toml_file::suggest(text, &known) {
                Some(k) => format!("; did you mean `{k}`?"),
                None => String::new(),
            };
            found.push(warning(
                bulletin,
                name.span(),
                format!("`{text}` is not the branch or employer of any member{hint}"),
            ));
        }
    }
    Ok(found)
}

fn unknown_hint(unknown: &[&str], known: &[&str]) -> String {
    let Some(first) = unknown.first() else {
        return String::new();
    };
    let not = if unknown.len() == 1 {
        format!("`{first}` is not a known branch or employer")
    } else {
        format!(
            "{} are not known branches or employers",
            toml_file::list(unknown)
        )
    };
    match unknown
        .iter()
        .find_map(|u| toml_file::suggest(u, known).map(|k| (u, k)))
    {
        Some((u, k)) => format!(" ({not}; did you mean `{k}` for `{u}`?)"),
        None => format!(" ({not})"),
    }
}

/// The `audience` key of `section`, found before its first name; the name itself if the
/// key cannot be found.
fn audience_key(bulletin: &Bulletin, section: &Section, first: &Spanned<String>) -> Span {
    let from = section.span.start.min(first.span().start);
    bulletin
        .source
        .get(from..first.span().start)
        .and_then(|before| before.rfind("audience"))
        .map_or(first.span(), |i| from + i..from + i + "audience".len())
}

/// No unsubscribe secret for a send over SMTP: `found` says whether the environment or the
/// folder's `.mailout.env` sets the variable `[sender] token_secret_env` names. Without one
/// the tokens are signed with a secret that lives only in the store.
pub fn unsubscribe_secret(config: &Config, found: bool) -> Option<String> {
    let name = &config.sender.token_secret_env;
    let file = crate::env_file::FILE;
    (!found).then(|| format!(
        "no unsubscribe secret: neither the environment nor `{file}` sets `{name}`, so unsubscribe links are signed with a secret kept only in the store; add a line `{name}=<a long random value>` to `{file}` (`mailout init` writes one in a new folder), or set `{name}` where mailout sends and serves"
    ))
}

/// `--strict`: every warning becomes an error.
pub fn make_errors(diagnostics: &mut [Diagnostic]) {
    for d in diagnostics {
        d.severity = Severity::Error;
    }
}

/// The intro and every section's body: the Markdown in the file.
fn bodies(bulletin: &Bulletin) -> impl Iterator<Item = &Spanned<String>> {
    bulletin
        .intro
        .iter()
        .chain(bulletin.sections.iter().map(|s| &s.body))
}

/// Every link and image in the bulletin's Markdown, with the body it is in.
fn links(bulletin: &Bulletin) -> impl Iterator<Item = (&Spanned<String>, Link)> {
    bodies(bulletin).flat_map(|b| {
        markdown::links(b.get_ref())
            .into_iter()
            .map(move |l| (b, l))
    })
}

fn warning(bulletin: &Bulletin, span: Span, message: String) -> Diagnostic {
    Diagnostic::warning(&bulletin.path, &bulletin.source, span, message)
}

/// The place in the file of `range`, a byte range of the decoded string `body`.
fn place(bulletin: &Bulletin, body: &Spanned<String>, range: &Range<usize>) -> Span {
    let span = body.span();
    if span.is_empty() {
        return span;
    }
    match StringMap::new(&bulletin.source, &span, body.get_ref()) {
        Some(map) => map.span(range),
        None => bulletin::string_span(&bulletin.source, &span, body.get_ref(), range.clone()),
    }
}

/// Where each byte of a TOML string's value is in the file: the string's quotes and the
/// first newline of a `"""`/`'''` string are skipped, escapes (`\n`, `\"`, `\u00e9`) and
/// line-ending backslashes in basic strings decoded.
#[derive(Debug)]
struct StringMap {
    /// For each byte of the value (and one past its end), where its character starts.
    starts: Vec<usize>,
    /// For each byte offset of the value (and its end), where the character before it ends.
    ends: Vec<usize>,
}

impl StringMap {
    /// The map of the string literal at `span` in `source`, if it decodes to `value`.
    fn new(source: &str, span: &Span, value: &str) -> Option<StringMap> {
        // The toml parser may or may not turn CRLF into LF inside multi-line strings.
        [false, true].into_iter().find_map(|crlf_as_lf| {
            let map = Self::decode(source, span, crlf_as_lf)?;
            (map.0 == value).then_some(map.1)
        })
    }

    fn decode(source: &str, span: &Span, crlf_as_lf: bool) -> Option<(String, StringMap)> {
        let raw = source.get(span.clone())?;
        let (quote, basic) = [("\"\"\"", true), ("'''", false), ("\"", true), ("'", false)]
            .into_iter()
            .find(|(q, _)| raw.len() >= 2 * q.len() && raw.starts_with(q) && raw.ends_with(q))?;
        let multiline = quote.len() == 3;
        let mut at = span.start + quote.len();
        let end = span.end - quote.len();
        if multiline {
            for newline in ["\r\n", "\n"] {
                if source[at..end].starts_with(newline) {
                    at += newline.len();
                    break;
                }
            }
        }
        let mut value = String::new();
        let mut starts = Vec::new();
        let mut ends = vec![at];
        let push = |value: &mut String,
                    starts: &mut Vec<usize>,
                    ends: &mut Vec<usize>,
                    c: char,
                    from: usize,
                    to: usize| {
            value.push(c);
            starts.extend(std::iter::repeat_n(from, c.len_utf8()));
            ends.extend(std::iter::repeat_n(to, c.len_utf8()));
        };
        while at < end {
            let rest = &source[at..end];
            if crlf_as_lf && rest.starts_with("\r\n") {
                push(&mut value, &mut starts, &mut ends, '\n', at, at + 2);
                at += 2;
                continue;
            }
            let c = rest.chars().next()?;
            if !(basic && c == '\\') {
                push(&mut value, &mut starts, &mut ends, c, at, at + c.len_utf8());
                at += c.len_utf8();
                continue;
            }
            let next = rest[1..].chars().next()?;
            let simple = match next {
                'b' => Some('\u{8}'),
                't' => Some('\t'),
                'n' => Some('\n'),
                'f' => Some('\u{c}'),
                'r' => Some('\r'),
                'e' => Some('\u{1b}'),
                '"' => Some('"'),
                '\\' => Some('\\'),
                _ => None,
            };
            if let Some(decoded) = simple {
                push(&mut value, &mut starts, &mut ends, decoded, at, at + 2);
                at += 2;
                continue;
            }
            let digits = match next {
                'x' => 2,
                'u' => 4,
                'U' => 8,
                _ => 0,
            };
            if digits > 0 {
                let hex = rest.get(2..2 + digits)?;
                let decoded = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                push(
                    &mut value,
                    &mut starts,
                    &mut ends,
                    decoded,
                    at,
                    at + 2 + digits,
                );
                at += 2 + digits;
                continue;
            }
            // A line-ending backslash: it, the line break and the whitespace after vanish.
            if !multiline {
                return None;
            }
            let after = rest[1..].trim_start_matches([' ', '\t']);
            if !(after.starts_with('\n') || after.starts_with("\r\n")) {
                return None;
            }
            let skipped = after.trim_start_matches([' ', '\t', '\r', '\n']);
            at = end - skipped.len();
        }
        starts.push(at);
        Some((value, StringMap { starts, ends }))
    }

    /// The file span of `range` of the value.
    fn span(&self, range: &Range<usize>) -> Span {
        let last = self.starts.len() - 1;
        let start = self.starts[range.start.min(last)];
        let end = self.ends[range.end.min(last)].max(start);
        start..end
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(src: &str) -> Bulletin {
        let (b, problems) = Bulletin::parse(Path::new("b.toml"), src);
        assert!(problems.is_empty(), "{problems:?}");
        b.unwrap()
    }

    fn places(found: &[Diagnostic]) -> Vec<String> {
        found
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn unfinished_text_is_an_error_at_its_place() {
        let src = "headline = \"Pay TK\"\n[[section]]\nheading = \"Ballot\"\nbody = \"\"\"\nLorem ipsum dolor.\nTODO: the date. FIXME\nA to-do list, TKO and todos are words.\n\"\"\"\n[[signatory]]\nname = \"Your Name\"\n";
        let found = unfinished_text(&parse(src));
        assert!(found.iter().all(|d| d.is_error()));
        assert_eq!(
            places(&found),
            [
                "1:17: `TK` marks unfinished text; finish it before sending",
                "5:1: `Lorem` marks unfinished text; finish it before sending",
                "6:1: `TODO` marks unfinished text; finish it before sending",
                "6:17: `FIXME` marks unfinished text; finish it before sending",
                "10:9: `Your Name` is placeholder text from `mailout new`; write the bulletin's own words before sending",
            ]
        );
    }

    fn section(body: &str) -> String {
        format!("[[section]]\nheading = \"H\"\nbody = {body}\n")
    }

    #[test]
    fn an_image_without_alt_text_is_placed_at_the_image() {
        let b = parse(&section(
            "\"\"\"\nA photo:\n\n  ![](https://x.example/a.png) and ![a picket line](https://x.example/b.png)\n\"\"\"",
        ));
        let found = places(&images_without_alt(&b));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("6:3: image `https://x.example/a.png` has no alt text"),
            "{found:?}"
        );
        assert_eq!(images_without_alt(&b)[0].severity, Severity::Warning);
    }

    #[test]
    fn vague_link_texts_are_found_whatever_their_case_and_punctuation() {
        let b = parse(&section(
            "'''\n[Click here!](https://a.example) [read more…](https://b.example)\n[HERE](https://c.example), [the pay offer](https://d.example), [](https://e.example)\n'''",
        ));
        let found = places(&vague_link_texts(&b));
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            found[0].starts_with("4:1: link text `Click here!` says nothing"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("4:34: link text `read more…` says nothing"),
            "{found:?}"
        );
        assert!(
            found[2].starts_with("5:1: link text `HERE` says nothing"),
            "{found:?}"
        );
        assert!(
            found[3].starts_with("5:64: the link to `https://e.example` has no text"),
            "{found:?}"
        );
    }

    #[test]
    fn a_linked_image_is_not_a_link_without_text() {
        let b = parse(&section(
            "\"[![](https://x.example/a.png)](https://x.example)\"",
        ));
        assert!(vague_link_texts(&b).is_empty());
        assert_eq!(images_without_alt(&b).len(), 1);
    }

    #[test]
    fn plain_http_links_and_images() {
        let b = parse(&section(
            "\"\"\"\nSee [the plan](HTTP://x.example/plan), [safe](https://x.example) and ![logo](http://x.example/l.png).\n\"\"\"",
        ));
        let found = places(&plain_http_links(&b));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("4:5: link goes over plain `http://` (`HTTP://x.example/plan`)"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("4:70: image is loaded over plain `http://`"),
            "{found:?}"
        );
    }

    #[test]
    fn places_are_exact_after_escapes_in_basic_strings() {
        // `\"` and `\u00e9` are two and six characters in the file but one in the value,
        // and a line-ending backslash joins two lines.
        let src = section(
            "\"\"\"\nSay \\\"hi\\\" caf\\u00e9 \\\n    then [here](https://x.example)\n\"\"\"",
        );
        let b = parse(&src);
        let found = vague_link_texts(&b);
        assert_eq!(found.len(), 1);
        let at = src.find("[here]").unwrap();
        let line = src[..at].matches('\n').count() + 1;
        let column = at - src[..at].rfind('\n').unwrap();
        assert_eq!((found[0].line, found[0].column), (line, column));
        assert_eq!((line, column), (5, 10));
        assert_eq!(found[0].width, "[here](https://x.example)".len());

        // In `body = "a\t\"q\" [x](…)"` the link is at column 18, not 14.
        let one_line = section("\"a\\t\\\"q\\\" [x](http://x.example)\"");
        let found = plain_http_links(&parse(&one_line));
        assert_eq!((found[0].line, found[0].column), (3, 18), "{found:?}");

        // Literal strings have no escapes: a backslash is itself.
        let literal = section("'''\nC:\\new \\u00e9 \\\n[x](http://x.example)\n'''");
        let found = plain_http_links(&parse(&literal));
        assert_eq!((found[0].line, found[0].column), (5, 1), "{found:?}");
    }

    #[test]
    fn places_are_exact_in_crlf_files() {
        let src = "[[section]]\r\nheading = \"H\"\r\nbody = \"\"\"\r\nline\r\n  ![](https://x.example/a.png)\r\n\"\"\"\r\n";
        let b = parse(src);
        let found = places(&images_without_alt(&b));
        assert!(found[0].starts_with("5:3: image"), "{found:?}");
    }

    #[test]
    fn the_html_size_is_placed_at_the_longest_body() {
        let src = format!(
            "{}{}",
            section("\"short\""),
            section(&format!("\"\"\"\n{}\n\"\"\"", "word ".repeat(100)))
        );
        let b = parse(&src);
        assert!(html_size(&b, GMAIL_CLIP_BYTES).is_none());
        let d = html_size(&b, 150 * 1024 + 1).unwrap();
        assert_eq!((d.line, d.column), (6, 8));
        assert!(
            d.message
                .starts_with("the HTML part is 151 KB; Gmail clips messages over 102 KB"),
            "{}",
            d.message
        );
    }

    #[test]
    fn long_subjects_and_subjects_in_capitals() {
        let config = Config::builtin();
        let long = format!("subject = \"{}\"\n{}", "a".repeat(79), section("\"b\""));
        let found = places(&subject(&parse(&long), &config, 1));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("1:11: the subject is 79 characters"),
            "{found:?}"
        );

        let shouting = format!("headline = \"PAY OFFER: VOTE NOW\"\n{}", section("\"b\""));
        let found = places(&subject(&parse(&shouting), &config, 1));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("1:12: the subject is in capitals"),
            "{found:?}"
        );

        for fine in [
            "NPS, CRC and PbNI: pay",
            "Pay",
            "NPS",
            "Flu pandemic: what we are doing",
        ] {
            let src = format!("headline = \"{fine}\"\n{}", section("\"b\""));
            assert!(subject(&parse(&src), &config, 1).is_empty(), "{fine}");
        }
        // Exactly 78 characters is fine.
        let src = format!("subject = \"{}\"\n{}", "a".repeat(78), section("\"b\""));
        assert!(subject(&parse(&src), &config, 1).is_empty());
    }

    fn roster<'a>(names: &[&str], count: &'a dyn Fn(&Selection) -> Result<u64>) -> Roster<'a> {
        Roster {
            names: names.iter().map(|s| s.to_string()).collect(),
            count,
        }
    }

    #[test]
    fn an_audience_that_reaches_nobody_is_one_warning_at_its_key() {
        let src = "[[section]]\nheading = \"Ballot\"\naudience = [\"Nobody\", \"Cafcas\"]\nbody = \"b\"\n\n[[section]]\nheading = \"Pay\"\naudience = [\"nps\", \"Londn\"]\nbody = \"b\"\n";
        let b = parse(src);
        let count = |s: &Selection| -> Result<u64> {
            Ok(if s.employers.iter().any(|e| e == "nps") {
                3
            } else {
                0
            })
        };
        let found = places(
            &audiences(
                &b,
                &Config::builtin(),
                &roster(&["NPS", "Cafcass", "London"], &count),
            )
            .unwrap(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with("3:1: section `Ballot`: its audience `Nobody`, `Cafcas` matches no member in the store, so nobody will receive it (`Nobody`, `Cafcas` are not known branches or employers; did you mean `Cafcass` for `Cafcas`?)"),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with(
                "8:20: `Londn` is not the branch or employer of any member; did you mean `London`?"
            ),
            "{found:#?}"
        );
    }

    #[test]
    fn a_kind_audience_that_reaches_nobody_is_placed_at_the_kind() {
        let mut config = Config::builtin();
        config.sections.get_mut("crc").unwrap().audience = vec!["CRC".into()];
        let b = parse("[[section]]\nheading = \"Contracts\"\nkind = \"crc\"\nbody = \"b\"\n");
        let nobody = |_: &Selection| -> Result<u64> { Ok(0) };
        let found = places(&audiences(&b, &config, &roster(&["NPS"], &nobody)).unwrap());
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with(
                "3:8: section `Contracts`: kind `crc` goes to `CRC`, which matches no member"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn the_unsubscribe_secret() {
        let config = Config::builtin();
        assert_eq!(unsubscribe_secret(&config, true), None);
        let message = unsubscribe_secret(&config, false).unwrap();
        assert!(
            message.starts_with(
                "no unsubscribe secret: neither the environment nor `.mailout.env` sets `MAILOUT_TOKEN_SECRET`"
            ),
            "{message}"
        );
        assert!(message.contains("mailout init"), "{message}");
    }

    #[test]
    fn strict_turns_warnings_into_errors() {
        let b = parse(&section("\"![](https://x.example/a.png)\""));
        let mut found = images_without_alt(&b);
        make_errors(&mut found);
        assert!(found[0].is_error());
        assert!(found[0].to_string().starts_with("b.toml:3:9: error: image"));
    }

    #[test]
    fn a_clean_bulletin_has_no_content_warnings() {
        let src = format!(
            "headline = \"Pay talks resume\"\nintro = \"See [the offer](https://x.example/offer).\"\n{}",
            section(
                "\"\"\"\nA picket line.\nWrite to [the office](mailto:office@x.example).\n\"\"\""
            )
        );
        assert!(content(&parse(&src), &Config::builtin(), 240).is_empty());
    }

    #[test]
    fn a_remote_image_is_named_with_the_server_it_tells() {
        let b = parse(&section(
            "\"Look: ![A picket line](https://pics.example.net/p.png)\"",
        ));
        let own = vec!["pfcu.example.org".to_string()];
        let found = places(&remote_images(&b, &own));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("3:15: image `https://pics.example.net/p.png` is loaded from pics.example.net when the bulletin is opened"),
            "{found:?}"
        );
        let linked = parse(&section(
            "\"See [the photo](https://pics.example.net/p.png)\"",
        ));
        assert!(
            remote_images(&linked, &own).is_empty(),
            "a link loads nothing until followed"
        );
        let ours = parse(&section(
            "\"![A chart](https://www.pfcu.example.org/c.png)\"",
        ));
        assert!(
            remote_images(&ours, &own).is_empty(),
            "the union's own server is no third party"
        );
    }

    #[test]
    fn what_a_screen_reader_or_weak_eyes_meet_is_found_once_each() {
        let b = parse(&section("\"x\""));
        let html = r##"<html><body style="color: #222222; background-color: #ffffff; font-size: 17px">
<table class="grid"><tr><td>layout</td></tr></table>
<table class="data"><tr><th>Branch</th></tr><tr><td>London</td></tr></table>
<table role="presentation" class="outer"><tr><td>fine</td></tr></table>
<div style="font-size: 1px; color: #ffffff">hidden preheader</div>
<h1>Title</h1><h3>Skipped a level</h3><h2>Back</h2>
<p class="small" style="font-size: 12px">small</p><p class="small" style="font-size: 12px">small again</p>
<p class="pale" style="color: #aaaaaa">pale</p>
<p class="big" style="color: #888888; font-size: 26px">large text needs only 3:1</p>
<p class="divider">--oo00oo--</p>
<p class="divider" aria-hidden="true">--oo00oo--</p>
</body></html>"##;
        let found: Vec<String> = accessibility(
            &b,
            html,
            &crate::render::templates::Templates::builtin(),
            Path::new("."),
        )
        .iter()
        .map(|d| d.message.clone())
        .collect();
        let has = |words: &str| found.iter().filter(|m| m.contains(words)).count();
        assert_eq!(
            has("a table in `.grid` has no header cells"),
            1,
            "{found:#?}"
        );
        assert_eq!(
            has("a table in `.data`"),
            0,
            "a data table has header cells"
        );
        assert_eq!(has("`.outer`"), 0, "{found:#?}");
        assert_eq!(has("preheader") + has("1px"), 0, "hidden text is not read");
        assert_eq!(
            has("a heading `Skipped a level` (h3) follows an h1"),
            1,
            "{found:#?}"
        );
        assert_eq!(has("text in `.small` is 12px"), 1, "once: {found:#?}");
        assert_eq!(
            has("text in `.pale` is #aaaaaa on #ffffff, a contrast of 2.3:1"),
            1,
            "{found:#?}"
        );
        assert_eq!(has("`.big`"), 0, "{found:#?}");
        assert_eq!(
            has("the divider `--oo00oo--` is read aloud"),
            1,
            "{found:#?}"
        );
        assert_eq!(found.len(), 5, "{found:#?}");
        // The built-in divider rule is found in its template, at its line.
        let divider = accessibility(
            &b,
            html,
            &crate::render::templates::Templates::builtin(),
            Path::new("."),
        )
        .into_iter()
        .find(|d| d.message.contains("divider"))
        .unwrap();
        assert_eq!(
            divider.path,
            Path::new("templates/partials/section.html.hbs")
        );
    }
}
