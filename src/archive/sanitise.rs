//! Mail made safe to publish. First what would identify a member (the addresses and names a
//! copy was sent to, the tokens in personal unsubscribe links) is taken out of the parsed
//! content: text nodes and attribute values of the HTML, or the plain text, never the
//! finished markup. Then ammonia, configured to keep a newsletter's layout (tables, `style`,
//! widths, colours) while removing scripts, event handlers and anything that would load
//! from elsewhere or escape the page (remote images, stylesheets, `url()` and fixed
//! positions in styles). `cid:` images point at the archive's own copies of the attachments.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::{QualName, local_name, ns};
use markup5ever_rcdom::{Handle, NodeData, RcDom, SerializableHandle};

use crate::config::Config;
use crate::token::{LEGACY_TOKEN_LEN, TOKEN_LEN};

/// Attributes a newsletter's layout needs, allowed on any element.
const LAYOUT: &[&str] = &[
    "style",
    "class",
    "width",
    "height",
    "align",
    "valign",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "dir",
    "lang",
    "title",
    "role",
    "color",
    "face",
    "size",
    "colspan",
    "rowspan",
];

/// Words that name a group, not a person: a display name with one of them ("All NPS
/// Staff", "The Python Mailing List") is redacted only whole, not word by word.
const GROUP_WORDS: &[&str] = &[
    "a",
    "all",
    "an",
    "and",
    "admin",
    "announce",
    "board",
    "branch",
    "committee",
    "contact",
    "council",
    "department",
    "desk",
    "digest",
    "enquiries",
    "everyone",
    "for",
    "general",
    "group",
    "head",
    "help",
    "hq",
    "info",
    "information",
    "list",
    "lists",
    "mailing",
    "member",
    "members",
    "national",
    "news",
    "newsletter",
    "of",
    "office",
    "recipients",
    "regional",
    "service",
    "services",
    "staff",
    "support",
    "team",
    "the",
    "to",
    "undisclosed",
    "union",
    "users",
];

/// What stands in for a recipient's address on a public page.
const ADDRESS: &str = "a member";
/// What stands in for a recipient's name.
const NAME: &str = "Member";
/// Parts of a display name that are titles, not names, and are left alone.
const TITLES: &[&str] = &["mr", "mrs", "ms", "mx", "miss", "dr", "prof", "rev", "sir"];

/// Sanitises `html`; `cid` maps a Content-ID to the URL of the archived attachment.
pub fn sanitise(html: &str, cid: HashMap<String, String>) -> String {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags([
            "font", "center", "u", "s", "small", "big", "hr", "caption", "col", "colgroup",
        ])
        .add_generic_attributes(LAYOUT.iter().copied())
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            match (element, attribute) {
                (_, "style") => {
                    let style = clean_style(value);
                    (!style.is_empty()).then(|| style.into())
                }
                ("img", "src") => {
                    let lower = value.trim().to_ascii_lowercase();
                    if let Some(id) = lower.strip_prefix("cid:") {
                        let original = &value.trim()[4..];
                        cid.get(original)
                            .or_else(|| cid.get(id))
                            .map(|url| url.clone().into())
                    } else if cid.values().any(|url| url == value) {
                        // Ours, from an earlier pass.
                        Some(value.into())
                    } else {
                        // A remote image would tell the sender who reads the archive.
                        None
                    }
                }
                (_, "background") => None,
                (_, "href") => {
                    // What a browser makes of it: tabs and line breaks taken out, a
                    // backslash read as a slash.
                    let url: String = value
                        .trim_matches(|c: char| c <= ' ')
                        .chars()
                        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                        .map(|c| if c == '\\' { '/' } else { c })
                        .collect();
                    let lower = url.to_ascii_lowercase();
                    // `//host/…` is another site under a relative-looking address.
                    (!(lower.starts_with("cid:") || lower.starts_with("//"))).then(|| value.into())
                }
                _ => Some(value.into()),
            }
        });
    builder.clean(html).to_string()
}

/// HTML from a message made ready for a public page: `redactions` applied to its parsed
/// content, then [`sanitise`]d. Sanitising can bring text together that markup kept apart
/// (`jo<b></b>@example.org`), so the result is read again and the two steps repeated until
/// nothing is left to redact; HTML that does not settle is not published.
pub fn publish_html(html: &str, cid: &HashMap<String, String>, redactions: &Redactions) -> String {
    let mut dom = parse_fragment(html);
    redactions.redact_dom(&dom);
    for _ in 0..4 {
        let clean = sanitise(&serialise(&dom), cid.clone());
        dom = parse_fragment(&clean);
        if !redactions.redact_dom(&dom) {
            return clean;
        }
    }
    "<p class=\"note\">(this message could not be published safely)</p>".into()
}

/// The text a reader sees of published HTML (what [`publish_html`] made), with a space
/// where one block ends and the next begins.
pub fn visible_text(html: &str) -> String {
    let dom = parse_fragment(html);
    let mut out = String::new();
    let mut stack = vec![dom.document.clone()];
    while let Some(node) = stack.pop() {
        match &node.data {
            NodeData::Text { contents } => out.push_str(&contents.borrow()),
            NodeData::Element { name, .. } if !INLINE.contains(&&*name.local) => out.push(' '),
            _ => {}
        }
        stack.extend(node.children.borrow().iter().rev().cloned());
    }
    out
}

/// HTML as ammonia parses it: a fragment in a `<div>`, scripting off.
fn parse_fragment(html: &str) -> RcDom {
    html5ever::driver::parse_fragment(
        RcDom::default(),
        html5ever::driver::ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    )
    .one(html)
}

/// The fragment [`parse_fragment`] read, as HTML again.
fn serialise(dom: &RcDom) -> String {
    let Some(root) = dom.document.children.borrow().first().cloned() else {
        return String::new();
    };
    let mut out = Vec::new();
    let handle: SerializableHandle = root.into();
    // Writing into memory does not fail.
    let _ = html5ever::serialize::serialize(&mut out, &handle, Default::default());
    String::from_utf8_lossy(&out).into_owned()
}

/// What must not appear on a public page: the addresses and names a copy was sent to (not
/// the organisation's own), and members' unsubscribe tokens, with what stands in for them.
#[derive(Debug, Clone, Default)]
pub struct Redactions {
    /// Recipients' addresses, lowercase, as read and as written in a message (quoted).
    addresses: Vec<String>,
    /// Recipients' display names, whole, as lowercase words.
    names: Vec<Vec<String>>,
    /// The words of those names, as written and in capitals.
    name_words: Vec<String>,
    /// Tokens found in the message's List-Unsubscribe fields.
    tokens: Vec<String>,
    /// The configured personal links, up to where the token goes (lowercase).
    prefixes: Vec<String>,
    /// What a personal link becomes: the organisation's website.
    website: String,
}

impl Redactions {
    /// Redactions for a copy addressed to `people` (display name, address) whose
    /// List-Unsubscribe fields were `unsubscribe`; the organisation's own addresses in
    /// `config` are not redacted.
    pub fn new(
        people: &[(Option<String>, Option<String>)],
        unsubscribe: &[String],
        config: &Config,
    ) -> Redactions {
        let sender = &config.sender;
        let ours: Vec<String> = [
            Some(sender.from.as_str()),
            sender.reply_to.as_deref(),
            Some(sender.list_address.as_str()),
            Some(sender.unsubscribe_mailto.as_str()),
        ]
        .into_iter()
        .flatten()
        .map(|a| bare_address(a).to_ascii_lowercase())
        .collect();
        // The organisation's own domain (its website's, and those under it): its staff and
        // inboxes are not members.
        let home = url::Url::parse(&config.organisation.website)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| h.trim_start_matches("www.").to_string())
            })
            .filter(|h| h.contains('.'));
        let ours = |local: &str, domain: &str| {
            ours.contains(&format!("{local}@{domain}"))
                || home
                    .as_deref()
                    .is_some_and(|h| domain == h || domain.ends_with(&format!(".{h}")))
        };
        let mut r = Redactions {
            website: config.organisation.website.clone(),
            ..Redactions::default()
        };
        let web = sender.unsubscribe_url.split("{token}").next().unwrap_or("");
        let mail = format!("mailto:{}?subject=unsubscribe-", sender.unsubscribe_mailto);
        let preferences = sender.preferences_url();
        let preferences = preferences.split("{token}").next().unwrap_or("");
        for prefix in [web, mail.as_str(), preferences] {
            if prefix.len() >= 8 {
                r.prefixes.push(prefix.to_ascii_lowercase());
            }
        }
        for (name, address) in people {
            let address = address.as_deref().map(str::trim).unwrap_or("");
            if let Some((local, domain)) = address.to_ascii_lowercase().rsplit_once('@') {
                // The local part read (quotes and escapes taken off), and as it may be
                // written: bare, quoted, quoted with escapes.
                let local = match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
                    Some(quoted) => {
                        let mut unquoted = String::new();
                        let mut chars = quoted.chars();
                        while let Some(c) = chars.next() {
                            unquoted.extend(if c == '\\' { chars.next() } else { Some(c) });
                        }
                        unquoted
                    }
                    None => local.to_string(),
                };
                if ours(&local, domain) {
                    continue;
                }
                let escaped = local.replace('\\', "\\\\").replace('"', "\\\"");
                r.addresses.push(format!("{local}@{domain}"));
                r.addresses.push(format!("\"{local}\"@{domain}"));
                r.addresses.push(format!("\"{escaped}\"@{domain}"));
            }
            if let Some(name) = name {
                let words: Vec<&str> = name
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                    .filter(|w| !w.is_empty())
                    .collect();
                let title = |w: &&str| TITLES.contains(&w.to_lowercase().as_str());
                let given: Vec<&str> = words.iter().copied().filter(|w| !title(w)).collect();
                // A person's name, not a list's or an office's: two to four words, each
                // capitalised, none of them a word groups are named with.
                let personal = (2..=4).contains(&given.len())
                    && given.iter().all(|w| {
                        w.chars().next().is_some_and(char::is_uppercase)
                            && !GROUP_WORDS.contains(&w.to_lowercase().as_str())
                    });
                if given.len() == 1 || personal {
                    // Each word of the name ("Dear Jo"), and each part of a double-barrelled
                    // one, as written or in capitals (a lowercase "may" or "rose" is not the
                    // name).
                    for word in given.iter().flat_map(|w| {
                        std::iter::once(*w).chain(w.split('-').filter(move |p| p != w))
                    }) {
                        if word.chars().count() >= 2 && !word.contains('@') {
                            r.name_words.push(word.to_string());
                            r.name_words.push(word.to_uppercase());
                        }
                    }
                }
                if words.len() > 1 {
                    r.names
                        .push(words.iter().map(|w| w.to_lowercase()).collect());
                }
            }
        }
        for field in unsubscribe {
            for (start, end) in personal_tokens(field, &[]) {
                r.tokens.push(field[start..end].to_string());
            }
        }
        // Longest first, so that an address is not half-replaced by a shorter one in it.
        r.addresses.sort_by_key(|a| std::cmp::Reverse(a.len()));
        r.addresses.dedup();
        r.name_words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        r.name_words.dedup();
        r.tokens.sort();
        r.tokens.dedup();
        r
    }

    /// `text` with personal links replaced by the website, recipients' addresses by "a
    /// member" and their names by "Member".
    pub fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for (start, end, with) in spans {
            out.push_str(&text[done..start]);
            out.push_str(with);
            done = end;
        }
        out.push_str(&text[done..]);
        // What stands in may be what was there ("Member" greeted as "Member").
        if out == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(out)
        }
    }

    /// What [`Redactions::text`] replaces in `text`: byte spans in order, none overlapping,
    /// each with what stands in for it.
    fn spans<'s>(&'s self, text: &str) -> Vec<(usize, usize, &'s str)> {
        let mut spans: Vec<(usize, usize, &str)> = Vec::new();
        // Personal links: the whole link goes, so nothing of the token is left.
        let mut tokens = personal_tokens(text, &self.prefixes);
        for token in &self.tokens {
            tokens.extend(
                find_all(text, token, false)
                    .into_iter()
                    .filter(|&(s, e)| !is_token_char_at(text, s, e)),
            );
        }
        for (s, e) in tokens {
            let (s, e) = link_around(text, s, e);
            spans.push((s, e, self.website.as_str()));
        }
        for address in &self.addresses {
            spans.extend(
                find_all(text, address, true)
                    .into_iter()
                    .map(|(s, e)| (s, e, ADDRESS)),
            );
        }
        for words in &self.names {
            spans.extend(
                find_words(text, words, true)
                    .into_iter()
                    .map(|(s, e)| (s, e, NAME)),
            );
        }
        for word in &self.name_words {
            spans.extend(
                find_words(text, std::slice::from_ref(word), false)
                    .into_iter()
                    .map(|(s, e)| (s, e, NAME)),
            );
        }
        // Overlapping spans become one, standing for what the first of them stood for
        // (links before addresses before names, at the same place).
        spans.sort_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
        let mut merged: Vec<(usize, usize, &str)> = Vec::with_capacity(spans.len());
        for (s, e, with) in spans {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e, with)),
            }
        }
        merged
    }

    /// Applies [`Redactions::text`] to the text under `dom`, read as a reader sees it (an
    /// address split by inline markup, `jo<span>@</span>example.org`, is found across the
    /// text nodes), and to every attribute value (also as it reads with its `%XX` escapes
    /// decoded); says whether anything changed.
    fn redact_dom(&self, dom: &RcDom) -> bool {
        enum Step {
            Enter(Handle),
            Leave,
        }
        let mut changed = false;
        let mut run: Vec<Handle> = Vec::new();
        let mut steps = vec![Step::Enter(dom.document.clone())];
        while let Some(step) = steps.pop() {
            let node = match step {
                Step::Enter(node) => node,
                Step::Leave => {
                    changed |= self.redact_run(&std::mem::take(&mut run));
                    continue;
                }
            };
            match &node.data {
                NodeData::Text { .. } => run.push(node.clone()),
                NodeData::Element {
                    name,
                    attrs,
                    template_contents,
                    ..
                } => {
                    for attr in attrs.borrow_mut().iter_mut() {
                        let redacted = match self.text(&attr.value) {
                            Cow::Owned(value) => Some(value),
                            Cow::Borrowed(value) => {
                                let decoded = percent_decode(value);
                                match self.text(&decoded) {
                                    Cow::Owned(value) => Some(value),
                                    Cow::Borrowed(_) => None,
                                }
                            }
                        };
                        if let Some(value) = redacted {
                            attr.value = StrTendril::from(value);
                            changed = true;
                        }
                    }
                    let inline = INLINE.contains(&&*name.local);
                    if !inline {
                        changed |= self.redact_run(&std::mem::take(&mut run));
                        steps.push(Step::Leave);
                    }
                    if let Some(contents) = template_contents.borrow().as_ref() {
                        steps.push(Step::Enter(contents.clone()));
                    }
                }
                _ => {}
            }
            steps.extend(
                node.children
                    .borrow()
                    .iter()
                    .rev()
                    .cloned()
                    .map(Step::Enter),
            );
        }
        changed |= self.redact_run(&run);
        changed
    }

    /// Redacts text nodes read one after the other as one text; says whether anything
    /// changed.
    fn redact_run(&self, nodes: &[Handle]) -> bool {
        let texts: Vec<String> = nodes
            .iter()
            .map(|n| match &n.data {
                NodeData::Text { contents } => contents.borrow().to_string(),
                _ => String::new(),
            })
            .collect();
        let whole = texts.concat();
        let spans = self.spans(&whole);
        if spans.is_empty() {
            return false;
        }
        let mut offset = 0;
        let mut changed = false;
        for (node, text) in nodes.iter().zip(&texts) {
            let (from, to) = (offset, offset + text.len());
            offset = to;
            let mut new = String::new();
            let mut at = from;
            for &(s, e, with) in &spans {
                if e <= from || s >= to {
                    // What stands in goes where the span starts.
                    continue;
                }
                if s >= from {
                    new.push_str(&whole[at..s]);
                    new.push_str(with);
                }
                at = e.min(to);
            }
            new.push_str(&whole[at.max(from)..to]);
            if new != *text
                && let NodeData::Text { contents } = &node.data
            {
                *contents.borrow_mut() = StrTendril::from(new);
                changed = true;
            }
        }
        changed
    }
}

/// Elements read as part of the text around them: an address or a name may run through
/// them. Any other element ends a run of text.
const INLINE: &[&str] = &[
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em",
    "font", "i", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike",
    "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
];

/// The address in `From`-style text (`Name <a@b>` or `a@b`).
fn bare_address(text: &str) -> &str {
    match (text.find('<'), text.rfind('>')) {
        (Some(start), Some(end)) if start < end => text[start + 1..end].trim(),
        _ => text.trim(),
    }
}

/// A character a token is made of (URL-safe base64).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Whether the span `start..end` of `text` touches more token characters on either side.
fn is_token_char_at(text: &str, start: usize, end: usize) -> bool {
    text[..start].chars().next_back().is_some_and(is_token_char)
        || text[end..].chars().next().is_some_and(is_token_char)
}

/// Where tokens of personal links are in `text`: after `/u/` or `unsubscribe-`, 43 or 32
/// token characters; after one of `prefixes` (lowercase), any.
fn personal_tokens(text: &str, prefixes: &[String]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let lower = text.to_ascii_lowercase();
    let run = |from: usize| {
        from + text[from..]
            .find(|c: char| !is_token_char(c))
            .unwrap_or(text.len() - from)
    };
    for marker in ["/u/", "unsubscribe-"] {
        for (at, _) in lower.match_indices(marker) {
            let start = at + marker.len();
            let end = run(start);
            if [TOKEN_LEN, LEGACY_TOKEN_LEN].contains(&(end - start)) {
                spans.push((start, end));
            }
        }
    }
    for prefix in prefixes {
        for (at, _) in lower.match_indices(prefix.as_str()) {
            let start = at + prefix.len();
            let end = run(start);
            if end > start {
                spans.push((start, end));
            }
        }
    }
    spans
}

/// The link around `start..end` in `text`: as far as characters a link is written with go,
/// without punctuation that ends a sentence.
fn link_around(text: &str, start: usize, end: usize) -> (usize, usize) {
    let stops = |c: char| c.is_whitespace() || "<>\"'()[]{}".contains(c);
    let from = text[..start]
        .char_indices()
        .rev()
        .find(|&(_, c)| stops(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let to = text[end..].find(stops).map_or(text.len(), |i| end + i);
    let to = from.max(end).max(
        from + text[from..to]
            .trim_end_matches(|c: char| ".,;:!?".contains(c))
            .len(),
    );
    (from, to)
}

/// Byte spans of `needle` in `text`, ASCII letters compared without case if `fold`.
fn find_all(text: &str, needle: &str, fold: bool) -> Vec<(usize, usize)> {
    if needle.is_empty() {
        return Vec::new();
    }
    let spans = |hay: &str| {
        hay.match_indices(needle)
            .map(|(i, m)| (i, i + m.len()))
            .collect::<Vec<_>>()
    };
    if fold {
        // ASCII lowercasing keeps every byte where it was.
        spans(&text.to_ascii_lowercase())
    } else {
        spans(text)
    }
}

/// Byte spans in `text` where `words` follow each other (any white space between them) as
/// whole words; compared in lowercase (the words given in lowercase) if `fold`.
fn find_words(text: &str, words: &[String], fold: bool) -> Vec<(usize, usize)> {
    let lower: Vec<(usize, char)> = if fold {
        text.char_indices()
            .flat_map(|(i, c)| {
                // Lowercasing may make more characters of one: each keeps its place.
                c.to_lowercase().map(move |l| (i, l))
            })
            .collect()
    } else {
        text.char_indices().collect()
    };
    let at = |k: usize| lower.get(k).map(|&(_, c)| c);
    let word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut spans = Vec::new();
    let mut k = 0;
    'start: while k < lower.len() {
        if k > 0 && word_char(at(k - 1)) {
            k += 1;
            continue;
        }
        let mut j = k;
        for (n, word) in words.iter().enumerate() {
            if n > 0 {
                let gap = j;
                while at(j).is_some_and(char::is_whitespace) {
                    j += 1;
                }
                if j == gap {
                    k += 1;
                    continue 'start;
                }
            }
            for wc in word.chars() {
                if at(j) != Some(wc) {
                    k += 1;
                    continue 'start;
                }
                j += 1;
            }
        }
        if word_char(at(j)) {
            k += 1;
            continue;
        }
        let start = lower[k].0;
        let end = lower.get(j).map_or(text.len(), |&(i, _)| i);
        spans.push((start, end));
        k = j.max(k + 1);
    }
    spans
}

/// `%XX` escapes decoded (invalid UTF-8 replaced); other text as it is.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Functions a published style may use: colours, arithmetic, gradients, transforms and
/// filters. Anything else (`url()`, `image-set()`, `image()`, `element()`, `src()`,
/// `expression()`, `paint()`, …) could load from elsewhere or run code.
const STYLE_FUNCTIONS: &[&str] = &[
    "rgb",
    "rgba",
    "hsl",
    "hsla",
    "hwb",
    "lab",
    "lch",
    "oklab",
    "oklch",
    "color",
    "color-mix",
    "calc",
    "min",
    "max",
    "clamp",
    "var",
    "linear-gradient",
    "radial-gradient",
    "conic-gradient",
    "repeating-linear-gradient",
    "repeating-radial-gradient",
    "repeating-conic-gradient",
    "translate",
    "translatex",
    "translatey",
    "translatez",
    "translate3d",
    "rotate",
    "rotatex",
    "rotatey",
    "rotatez",
    "rotate3d",
    "scale",
    "scalex",
    "scaley",
    "scalez",
    "scale3d",
    "skew",
    "skewx",
    "skewy",
    "matrix",
    "matrix3d",
    "perspective",
    "cubic-bezier",
    "steps",
    "blur",
    "brightness",
    "contrast",
    "drop-shadow",
    "grayscale",
    "hue-rotate",
    "invert",
    "opacity",
    "saturate",
    "sepia",
    "rect",
    "inset",
    "circle",
    "ellipse",
    "polygon",
    "minmax",
    "repeat",
    "fit-content",
];

/// Properties dropped whatever their value: old ways to run code or load from elsewhere.
const STYLE_PROPERTIES: &[&str] = &["behavior", "-moz-binding", "src"];

/// A `style` attribute without anything that loads from elsewhere, runs code or escapes the
/// page: declarations are read one by one and only safe ones kept.
fn clean_style(style: &str) -> String {
    declarations(style)
        .into_iter()
        .filter(|&(declaration, whole)| whole && safe_declaration(declaration))
        .map(|(declaration, _)| declaration.trim())
        .filter(|d| !d.is_empty())
        .collect::<Vec<_>>()
        .join(";")
}

/// A style attribute cut at the semicolons a browser ends declarations at (not those in
/// strings or brackets), each with whether it stands on its own: its strings and brackets
/// closed, no comment and no escape in it, so that a browser reads it the same way again
/// whatever is dropped around it.
fn declarations(style: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut whole = true;
    let mut closers: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut chars = style.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                whole = false;
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\n' | '\r' | '\x0c') => {
                quote = None;
                whole = false;
            }
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '/') if chars.peek().is_some_and(|&(_, n)| n == '*') => {
                whole = false;
                // A comment runs to `*/` or the end.
                chars.next();
                let mut star = false;
                for (_, n) in chars.by_ref() {
                    if star && n == '/' {
                        break;
                    }
                    star = n == '*';
                }
            }
            (None, '(') => closers.push(')'),
            (None, '[') => closers.push(']'),
            (None, '{') => closers.push('}'),
            (None, ')' | ']' | '}') => {
                if closers.last() == Some(&c) {
                    closers.pop();
                } else {
                    whole = false;
                }
            }
            (None, ';') if closers.is_empty() => {
                out.push((&style[start..i], whole));
                start = i + 1;
                whole = true;
            }
            _ => {}
        }
    }
    let closed = quote.is_none() && closers.is_empty();
    out.push((&style[start..], whole && closed));
    out
}

/// Whether one declaration (already standing on its own) may be published.
fn safe_declaration(declaration: &str) -> bool {
    let Some((property, value)) = declaration.split_once(':') else {
        return declaration.trim().is_empty();
    };
    let property = property.trim().to_ascii_lowercase();
    if property.is_empty()
        || !property
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || STYLE_PROPERTIES.contains(&property.as_str())
    {
        return false;
    }
    let value = value.to_ascii_lowercase();
    // `position: fixed` or `sticky` lays the mail over the archive's own page.
    if property == "position" && (value.contains("fixed") || value.contains("sticky")) {
        return false;
    }
    if value.contains('@') || value.contains("javascript:") || value.contains("expression") {
        return false;
    }
    // A string is a font's name or a little text: one with the stuff of declarations or
    // calls in it is up to no good (and would read as one to a careless eye).
    let mut quote = None;
    for c in value.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) if ";:(){}<>".contains(c) => return false,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    // Every function it calls must be a harmless one (a name and a bracket with space
    // between them are not a call, but are judged as one all the same).
    let mut name = String::new();
    let mut gap = false;
    for c in value.chars() {
        if c == '(' {
            let bare = ["-webkit-", "-moz-", "-ms-", "-o-"]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .unwrap_or(&name);
            if !name.is_empty() && !STYLE_FUNCTIONS.contains(&bare) {
                return false;
            }
            name.clear();
            gap = false;
        } else if c.is_alphanumeric() || c == '-' || c == '_' || !c.is_ascii() {
            if gap {
                name.clear();
                gap = false;
            }
            name.push(c);
        } else if c.is_whitespace() {
            gap = true;
        } else {
            name.clear();
            gap = false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_scripts_handlers_and_remote_loads_and_keeps_layout() {
        let html = r##"<html><head><link rel="stylesheet" href="https://evil.example/x.css"><style>body{background:url(https://t.example/p)}</style><script>alert(1)</script></head>
<body onload="x()"><table width="600" bgcolor="#fff" style="color:red;background-image:url('https://t.example/p.gif')"><tr><td align="center" onclick="y()">
<img src="https://t.example/pixel.gif" alt="pixel"><img src="cid:logo@x" alt="logo">
<a href="https://union.example.org/news" onmouseover="z()">news</a> <a href="javascript:alert(1)">js</a>
<iframe src="https://evil.example"></iframe><form action="https://evil.example"><input></form>
</td></tr></table></body></html>"##;
        let cid = HashMap::from([(
            "logo@x".to_string(),
            "../attachments/abc/logo.png".to_string(),
        )]);
        let clean = sanitise(html, cid);
        let lower = clean.to_lowercase();
        for banned in [
            "<script",
            "onload",
            "onclick",
            "onmouseover",
            "<link",
            "<style",
            "url(",
            "https://t.example",
            "evil.example",
            "javascript:",
            "<iframe",
            "<form",
        ] {
            assert!(!lower.contains(banned), "{banned} in {clean}");
        }
        assert!(
            clean.contains(r##"<table width="600" bgcolor="#fff" style="color:red">"##),
            "{clean}"
        );
        assert!(
            clean.contains(r#"src="../attachments/abc/logo.png""#),
            "{clean}"
        );
        assert!(clean.contains(r#"<a href="https://union.example.org/news" rel="noopener noreferrer nofollow">news</a>"#), "{clean}");
        assert!(
            clean.contains(r#"alt="pixel""#),
            "the remote image keeps its alt text: {clean}"
        );
    }

    #[test]
    fn styles_lose_what_loads_runs_or_escapes_the_page_and_keep_the_rest() {
        for bad in [
            "position:fixed",
            "POSITION : Fixed !important",
            "position:-webkit-sticky",
            "position: sticky",
            "background:url(https://t.example/p)",
            "background:URL ( x )",
            "background-image:image-set(\"https://t.example/a.png\" 1x)",
            "background-image:-webkit-image-set(url(a.png) 1x)",
            "border-image:url(https://t.example/b.png) 30",
            "border-image-source:url(https://t.example/b.png)",
            "mask-image:image(https://t.example/m.png)",
            "background:src(\"https://t.example/p\")",
            "width:expression(alert(1))",
            "behavior:x.htc",
            "-moz-binding:x.xml#a",
            "src:local(x)",
            "background:u\\rl(https://t.example/p)",
            "background:\\75 rl(https://t.example/p)",
            "color:red/**/;position:fixed",
            "list-style:@import",
            "cursor:-webkit-image-set(a 1x)",
            "content:\"a",
            "width:calc(1px",
            "}color:red",
        ] {
            let clean = clean_style(bad);
            let lower = clean.to_ascii_lowercase();
            assert!(
                !(lower.contains("url")
                    || lower.contains("fixed")
                    || lower.contains("sticky")
                    || lower.contains("image")
                    || lower.contains("expression")
                    || lower.contains("behavior")
                    || lower.contains("binding")
                    || lower.contains("src")
                    || lower.contains('\\')
                    || lower.contains('"')
                    || lower.contains('(')
                    || lower.contains('}')),
                "{bad:?} became {clean:?}"
            );
        }
        // A semicolon in a string does not end a declaration, so what follows it is
        // judged with it; such a string is dropped.
        assert_eq!(clean_style("font-family:\"a;position:fixed\""), "");
        assert_eq!(
            clean_style("font-family:'a;b';position:fixed;color:red"),
            "color:red"
        );
        assert_eq!(
            clean_style(
                "color: red; background:url(x); font-family:'A B', serif;position:absolute;width:calc(100% - 2px);background:linear-gradient(#fff, rgb(0,0,0))"
            ),
            "color: red;font-family:'A B', serif;position:absolute;width:calc(100% - 2px);background:linear-gradient(#fff, rgb(0,0,0))"
        );
    }

    #[test]
    fn protocol_relative_and_obfuscated_links_are_dropped() {
        let clean = sanitise(
            "<a href=\"//evil.example/x\">a</a><a href=\"/\\evil.example\">b</a><a href=\"\t/\n/evil.example\">c</a><a href=\"java&#x09;script&#58;alert(1)\">d</a><a href=\"#top\">e</a>",
            HashMap::new(),
        );
        assert!(
            !clean.contains("evil") && !clean.contains("script"),
            "{clean}"
        );
        assert!(clean.contains("href=\"#top\""), "{clean}");
    }

    fn config() -> Config {
        let mut config = Config::builtin();
        config.organisation.website = "https://union.example.org".into();
        config.sender.unsubscribe_url = "https://union.example.org/u/{token}".into();
        config.sender.unsubscribe_mailto = "unsubscribe@union.example.org".into();
        config.sender.list_address = "members@lists.union.example.org".into();
        config
    }

    const TOKEN: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";

    fn redactions() -> Redactions {
        Redactions::new(
            &[
                (
                    Some("Zelda Quigley-Marsh".into()),
                    Some("x\" onmouseover=\"alert(1)\" <b>@recipient.example".into()),
                ),
                (
                    Some("Members".into()),
                    Some("members@lists.union.example.org".into()),
                ),
                (None, Some("Jo.Bloggs@Example.net".into())),
            ],
            &[format!(
                " <mailto:unsubscribe@union.example.org?subject=unsubscribe-{TOKEN}>, <https://union.example.org/u/{TOKEN}>"
            )],
            &config(),
        )
    }

    #[test]
    fn recipients_names_and_tokens_are_taken_out_of_text() {
        let r = redactions();
        assert_eq!(TOKEN.len(), TOKEN_LEN);
        let text = format!(
            "Dear Zelda,\nsent to \"x\\\" onmouseover=\\\"alert(1)\\\" <b>\"@recipient.example and JO.BLOGGS@example.NET (Ms Quigley-Marsh).\nUnsubscribe: https://union.example.org/u/{TOKEN}.\nOr mail mailto:unsubscribe@union.example.org?subject=unsubscribe-{TOKEN}\nOld link: https://old.example/u/{} and bare {TOKEN}.\nZeldas and Zeldaville stay; so do the members of PFCU.",
            &TOKEN[..32]
        );
        let out = r.text(&text);
        assert_eq!(
            out,
            "Dear Member,\nsent to a member and a member (Ms Member).\nUnsubscribe: https://union.example.org.\nOr mail https://union.example.org\nOld link: https://union.example.org and bare https://union.example.org.\nZeldas and Zeldaville stay; so do the members of PFCU."
        );
        // A name over a line break is still the name.
        assert_eq!(r.text("Zelda\n  Quigley-Marsh!"), "Member!");
        assert!(matches!(r.text("Nothing personal."), Cow::Borrowed(_)));
    }

    #[test]
    fn redaction_happens_in_the_parsed_html_so_nothing_breaks_out_of_an_attribute() {
        let r = redactions();
        let html = format!(
            "<p title='sent to \"x\\\" onmouseover=\\\"alert(1)\\\" <b>\"@recipient.example'>Hello <b>Zelda</b></p>\
             <a href=\"mailto:&quot;x\\&quot; onmouseover=\\&quot;alert(1)\\&quot; &lt;b&gt;&quot;@recipient.example\">write</a>\
             <a href=\"https://t.example/c?to=jo.bloggs%40example.net\">tracked</a>\
             <p>jo.bloggs<span></span>@example.net, jo.bloggs&#64;example.net, jo<script>x</script>.bloggs@example.net</p>\
             <a href=\"https://union.example.org/u/{TOKEN}\">unsubscribe</a>"
        );
        let out = publish_html(&html, &HashMap::new(), &r);
        let lower = out.to_lowercase();
        for leak in [
            "onmouseover",
            "recipient.example",
            "zelda",
            "bloggs",
            "example.net",
            &TOKEN.to_lowercase(),
            "<b>\"",
        ] {
            assert!(!lower.contains(leak), "{leak} in {out}");
        }
        assert!(out.contains("title=\"sent to a member\""), "{out}");
        assert!(
            out.contains("<a href=\"https://union.example.org\" rel=\"noopener noreferrer nofollow\">unsubscribe</a>"),
            "{out}"
        );
        assert!(out.contains("Hello <b>Member</b>"), "{out}");
    }

    #[test]
    fn a_member_called_member_is_published() {
        let r = Redactions::new(
            &[(Some("Member".into()), Some("member@example.net".into()))],
            &[],
            &config(),
        );
        let out = publish_html("<p>Dear Member, <b>Member</b></p>", &HashMap::new(), &r);
        assert_eq!(out, "<p>Dear Member, <b>Member</b></p>");
    }

    #[test]
    fn the_organisations_own_addresses_and_names_stay() {
        let r = redactions();
        assert_eq!(
            r.text("Write to members@lists.union.example.org, Members."),
            "Write to members@lists.union.example.org, Members."
        );
        let r = Redactions::new(
            &[
                (
                    Some("Head Office".into()),
                    Some("hq@union.example.org".into()),
                ),
                (
                    Some("Wales Branch".into()),
                    Some("wales@branches.union.example.org".into()),
                ),
                (
                    Some("All NPS Staff".into()),
                    Some("nps-staff@justice.example".into()),
                ),
                (Some("Dr Jo Bloggs".into()), Some("jo@example.net".into())),
            ],
            &[],
            &config(),
        );
        assert_eq!(
            r.text("Head Office (hq@union.example.org) and Wales Branch write to All NPS Staff at nps-staff@justice.example: NPS staff, all of you, and Dr Bloggs, Jo and DR JO BLOGGS."),
            "Head Office (hq@union.example.org) and Wales Branch write to Member at a member: NPS staff, all of you, and Dr Member, Member and Member."
        );
    }
}
