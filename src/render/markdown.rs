//! Markdown bodies (intro and sections) into email-safe HTML and into plain text wrapped at
//! 72 columns, with links as numbered references. Raw HTML in a body is never passed through:
//! it comes out as visible text in both forms.

use std::ops::Range;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Column at which plain text wraps.
pub const TEXT_WIDTH: usize = 72;
/// No plain-text line is ever longer than this.
pub const MAX_LINE: usize = 78;

fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH
}

/// Markdown into HTML; raw HTML in the source is escaped, not rendered.
pub fn to_html(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, options()).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::HtmlBlock) => Event::Start(Tag::Paragraph),
        Event::End(TagEnd::HtmlBlock) => Event::End(TagEnd::Paragraph),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// A link or image in a Markdown body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Byte range of the whole link in the Markdown.
    pub range: Range<usize>,
    /// The destination as written.
    pub url: String,
    /// The visible text (an image's alt text).
    pub text: String,
    /// Whether this is an image.
    pub image: bool,
}

/// Every link and image in `markdown`, with its place.
pub fn links(markdown: &str) -> Vec<Link> {
    let mut done = Vec::new();
    let mut open: Vec<Link> = Vec::new();
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Link { ref dest_url, .. })
            | Event::Start(Tag::Image { ref dest_url, .. }) => {
                let image = matches!(event, Event::Start(Tag::Image { .. }));
                open.push(Link {
                    range,
                    url: dest_url.to_string(),
                    text: String::new(),
                    image,
                });
            }
            Event::End(TagEnd::Link | TagEnd::Image) => done.extend(open.pop()),
            Event::Text(t) | Event::Code(t) => {
                for link in open.iter_mut() {
                    link.text.push_str(&t);
                }
            }
            _ => {}
        }
    }
    done.sort_by_key(|l| l.range.start);
    done
}

/// Whether `url` is a link mail may carry: `https:`, `http:` or `mailto:`.
pub fn allowed_scheme(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["https://", "http://", "mailto:"]
        .iter()
        .any(|p| lower.starts_with(p) && lower.len() > p.len())
}

/// A Markdown body as plain text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    /// The body, wrapped, without a trailing newline.
    pub body: String,
    /// Reference lines (`[1] https://…`) for the links in the body, in order.
    pub references: Vec<String>,
}

/// Markdown into plain text wrapped at [`TEXT_WIDTH`]; links become `text [n]` with their URL
/// listed in [`Text::references`], numbered from `first_reference`.
pub fn to_text(markdown: &str, first_reference: usize) -> Text {
    let mut r = TextRenderer {
        lines: Vec::new(),
        references: Vec::new(),
        next_reference: first_reference,
        containers: Vec::new(),
        inline: String::new(),
        links: Vec::new(),
        code: None,
    };
    for event in Parser::new_ext(markdown, options()) {
        r.event(event);
    }
    r.flush();
    while r
        .lines
        .last()
        .is_some_and(|l| l.trim().is_empty() || l.trim() == ">")
    {
        r.lines.pop();
    }
    Text {
        body: r.lines.join("\n"),
        references: r.references,
    }
}

/// Wraps `text` to [`TEXT_WIDTH`] with the given indents, never leaving a line over
/// [`MAX_LINE`]: a word too long to fit (a long URL) stays whole when it fits in
/// [`MAX_LINE`], and is broken only when it cannot.
pub fn wrap(text: &str, first_indent: &str, rest_indent: &str) -> Vec<String> {
    let options = textwrap::Options::new(TEXT_WIDTH)
        .initial_indent(first_indent)
        .subsequent_indent(rest_indent)
        .break_words(false);
    let mut out = Vec::new();
    for line in textwrap::wrap(text, options) {
        if textwrap::core::display_width(&line) <= MAX_LINE {
            out.push(line.into_owned());
        } else {
            let indent = if out.is_empty() {
                first_indent
            } else {
                rest_indent
            };
            let hard = textwrap::Options::new(MAX_LINE)
                .initial_indent(indent)
                .subsequent_indent(rest_indent)
                .break_words(true);
            out.extend(
                textwrap::wrap(line.trim_start(), hard)
                    .into_iter()
                    .map(|l| l.into_owned()),
            );
        }
    }
    if out.is_empty() {
        out.push(first_indent.trim_end().to_string());
    }
    out
}

/// A reference line, `[n] URL`, broken over lines only if it cannot fit in [`MAX_LINE`].
pub fn reference(n: usize, url: &str) -> String {
    let head = format!("[{n}] ");
    let line = format!("{head}{url}");
    if line.chars().count() <= MAX_LINE {
        return line;
    }
    let indent = " ".repeat(head.len());
    let chars: Vec<char> = url.chars().collect();
    let mut out = Vec::new();
    let mut rest = &chars[..];
    let mut prefix = head;
    while !rest.is_empty() {
        let take = (MAX_LINE - prefix.chars().count()).min(rest.len());
        out.push(format!(
            "{prefix}{}",
            rest[..take].iter().collect::<String>()
        ));
        rest = &rest[take..];
        prefix.clone_from(&indent);
    }
    out.join("\n")
}

#[derive(Debug)]
enum Container {
    Quote,
    List { next: Option<u64>, tight: bool },
    Item { marker: String, first_line: bool },
}

struct TextRenderer {
    lines: Vec<String>,
    references: Vec<String>,
    next_reference: usize,
    containers: Vec<Container>,
    inline: String,
    links: Vec<(String, usize)>,
    code: Option<String>,
}

impl TextRenderer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => {
                if let Some(code) = &mut self.code {
                    code.push_str(&t);
                } else {
                    self.inline.push_str(&t);
                }
            }
            Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                self.inline.push_str(&t);
            }
            Event::SoftBreak => self.inline.push(' '),
            Event::HardBreak => self.inline.push('\n'),
            Event::Rule => {
                self.flush();
                self.blank();
                let prefix = self.prefix();
                self.lines.push(format!("{prefix}- - -"));
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => {
                self.flush();
                // A paragraph directly in an item means the list is loose: its items are
                // separated by blank lines.
                let len = self.containers.len();
                if let [
                    ..,
                    Container::List { tight, .. },
                    Container::Item { first_line, .. },
                ] = &mut self.containers[..len]
                {
                    *tight = false;
                    if !*first_line {
                        self.blank();
                    }
                } else {
                    self.blank();
                }
            }
            Tag::Heading { .. } => {
                self.flush();
                self.blank();
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.blank();
                self.containers.push(Container::Quote);
            }
            Tag::CodeBlock(_) => {
                self.flush();
                self.blank();
                self.code = Some(String::new());
            }
            Tag::List(start) => {
                self.flush();
                if !self.in_tight_item() {
                    self.blank();
                }
                self.containers.push(Container::List {
                    next: start,
                    tight: true,
                });
            }
            Tag::Item => {
                self.flush();
                let marker = match self.containers.last_mut() {
                    Some(Container::List {
                        next: Some(n),
                        tight,
                    }) => {
                        let m = format!("  {n}. ");
                        *n += 1;
                        if !*tight {
                            self.blank();
                        }
                        m
                    }
                    Some(Container::List { tight, .. }) => {
                        if !*tight {
                            self.blank();
                        }
                        "  * ".to_string()
                    }
                    _ => "  * ".to_string(),
                };
                self.containers.push(Container::Item {
                    marker,
                    first_line: true,
                });
            }
            Tag::Link { dest_url, .. } => {
                self.links.push((dest_url.to_string(), self.inline.len()));
            }
            Tag::Image { .. } => {
                self.inline.push_str("[image: ");
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => self.flush(),
            TagEnd::Heading(level) => {
                let text = std::mem::take(&mut self.inline);
                let prefix = self.prefix();
                let lines = wrap(text.trim(), &prefix, &prefix);
                let width = lines
                    .iter()
                    .map(|l| textwrap::core::display_width(l) - prefix.chars().count())
                    .max()
                    .unwrap_or(0);
                let rule = if level <= HeadingLevel::H2 { '=' } else { '-' };
                self.lines.extend(lines);
                self.lines
                    .push(format!("{prefix}{}", rule.to_string().repeat(width)));
                self.mark_first_line_done();
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.containers.pop();
            }
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                let prefix = format!("{}    ", self.prefix());
                for line in code.trim_end_matches('\n').lines() {
                    self.lines
                        .push(format!("{prefix}{line}").trim_end().to_string());
                }
                self.mark_first_line_done();
            }
            TagEnd::List(_) => {
                self.flush();
                self.containers.pop();
            }
            TagEnd::Item => {
                self.flush();
                self.containers.pop();
            }
            TagEnd::Link => {
                let Some((url, start)) = self.links.pop() else {
                    return;
                };
                let text = self.inline[start..].trim().to_string();
                let bare = text == url
                    || url
                        .strip_prefix("mailto:")
                        .is_some_and(|address| address == text);
                if bare && text.chars().count() <= TEXT_WIDTH {
                    return;
                }
                let n = self.next_reference;
                self.next_reference += 1;
                self.references.push(reference(n, &url));
                self.inline.push_str(&format!("\u{a0}[{n}]"));
            }
            TagEnd::Image => {
                self.inline.push(']');
            }
            _ => {}
        }
    }

    fn in_tight_item(&self) -> bool {
        let mut saw_item = false;
        for c in self.containers.iter().rev() {
            match c {
                Container::Item { .. } => saw_item = true,
                Container::List { tight, .. } => return saw_item && *tight,
                Container::Quote => return false,
            }
        }
        false
    }

    /// Marks the current list (and the item being filled) loose when a paragraph appears in
    /// an item after its first line.
    fn prefix_for(&mut self, first: bool) -> String {
        let mut out = String::new();
        for c in self.containers.iter_mut() {
            match c {
                Container::Quote => out.push_str("> "),
                Container::Item { marker, first_line } => {
                    if *first_line && first {
                        out.push_str(marker);
                    } else {
                        out.push_str(&" ".repeat(marker.chars().count()));
                    }
                }
                Container::List { .. } => {}
            }
        }
        out
    }

    fn prefix(&mut self) -> String {
        self.prefix_for(false)
    }

    fn mark_first_line_done(&mut self) {
        for c in self.containers.iter_mut() {
            if let Container::Item { first_line, .. } = c {
                *first_line = false;
            }
        }
    }

    fn flush(&mut self) {
        let text = std::mem::take(&mut self.inline);
        if text.trim().is_empty() {
            return;
        }
        for (i, piece) in text.split('\n').enumerate() {
            let first = self.prefix_for(i == 0);
            let rest = self.prefix_for(false);
            let piece = piece.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            let lines = wrap(&piece, &first, &rest);
            self.lines
                .extend(lines.into_iter().map(|l| l.replace('\u{a0}', " ")));
            self.mark_first_line_done();
        }
    }

    fn blank(&mut self) {
        if self.lines.is_empty() || self.lines.last().is_some_and(|l| l.trim().is_empty()) {
            return;
        }
        let prefix = self.prefix_for(false);
        let quote_only: String = prefix.trim_end().to_string();
        if quote_only.chars().all(|c| c == '>' || c == ' ') {
            self.lines.push(quote_only);
        } else {
            self.lines.push(String::new());
        }
        // A blank line inside an item makes its list loose.
        if self
            .containers
            .iter()
            .any(|c| matches!(c, Container::Item { .. }))
        {
            for c in self.containers.iter_mut().rev() {
                if let Container::List { tight, .. } = c {
                    *tight = false;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(md: &str) -> String {
        let t = to_text(md, 1);
        let mut out = t.body;
        for r in t.references {
            out.push('\n');
            out.push_str(&r);
        }
        out
    }

    #[test]
    fn raw_html_is_escaped_in_html() {
        let html =
            to_html("Hi <script>alert(1)</script> and <b>x</b>\n\n<div onclick=\"x\">y</div>");
        assert!(!html.contains("<script") && !html.contains("<b>") && !html.contains("<div"));
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<p>&lt;div onclick=\"x\"&gt;y&lt;/div&gt;</p>"),
            "{html}"
        );
    }

    #[test]
    fn paragraphs_wrap_at_72_and_links_become_references() {
        let md = "A long sentence about pay that goes on and on, well past the seventy-two column mark, with [a link](https://example.org/pay) and [another](mailto:pay@example.org) at the end.";
        let out = text(md);
        assert!(out.lines().all(|l| l.chars().count() <= 72), "{out}");
        assert!(
            out.replace('\n', " ")
                .contains("a link [1] and another [2] at"),
            "{out}"
        );
        assert!(
            out.ends_with("\n[1] https://example.org/pay\n[2] mailto:pay@example.org"),
            "{out}"
        );
    }

    #[test]
    fn a_reference_stays_with_its_word() {
        let md = format!(
            "{} [vote online](https://example.org/v).",
            "word ".repeat(12)
        );
        let out = text(&md);
        assert!(out.contains("online [1]"), "{out}");
    }

    #[test]
    fn bare_links_stay_inline_and_are_not_repeated() {
        let out = text("Mail <info@example.org> or see <https://example.org/x>.");
        assert_eq!(out, "Mail info@example.org or see https://example.org/x.");
    }

    #[test]
    fn lists_quotes_and_headings() {
        let md = "### Plan\n\n- one\n- two that is long enough to need wrapping because it keeps going and going\n  - nested\n\n1. first\n2. second\n\n> quoted text\n> more\n\nAfter.";
        let out = text(md);
        let expected = "Plan\n----\n\n  * one\n  * two that is long enough to need wrapping because it keeps going and\n    going\n      * nested\n\n  1. first\n  2. second\n\n> quoted text more\n\nAfter.";
        assert_eq!(out, expected);
    }

    #[test]
    fn loose_lists_keep_blank_lines_between_items() {
        let out = text("- one\n\n- two\n");
        assert_eq!(out, "  * one\n\n  * two");
    }

    #[test]
    fn code_blocks_are_indented_not_wrapped() {
        let out = text("Run:\n\n```\nmailout build bulletins/241.toml\n```\n");
        assert_eq!(out, "Run:\n\n    mailout build bulletins/241.toml");
    }

    #[test]
    fn images_show_their_alt_text() {
        assert_eq!(
            text("![Members at the rally](https://example.org/r.jpg)"),
            "[image: Members at the rally]"
        );
    }

    #[test]
    fn hard_breaks_are_kept() {
        assert_eq!(
            text("Helen Banner  \nNational Official"),
            "Helen Banner\nNational Official"
        );
    }

    #[test]
    fn no_line_is_ever_over_78() {
        let url = format!("https://example.org/{}", "a".repeat(120));
        let md = format!(
            "See {url} and [this]({url}) and averyveryverylongwordwithoutanyspaces{}",
            "x".repeat(90)
        );
        let out = text(&md);
        assert!(out.lines().all(|l| l.chars().count() <= MAX_LINE), "{out}");
        let joined: String = out
            .lines()
            .filter(|l| l.starts_with("[1]") || l.starts_with("    "))
            .collect();
        assert!(
            joined.replace(' ', "").contains(&url["https://".len()..]),
            "{out}"
        );
    }

    #[test]
    fn links_are_found_with_places_and_text() {
        let md = "a [x](https://e.example) b ![alt](ftp://i.example/p.png)";
        let links = links(md);
        assert_eq!(links.len(), 2);
        assert_eq!(
            (&md[links[0].range.clone()], links[0].text.as_str()),
            ("[x](https://e.example)", "x")
        );
        assert!(links[1].image && links[1].text == "alt" && !allowed_scheme(&links[1].url));
        assert!(
            allowed_scheme("MAILTO:a@b.example")
                && !allowed_scheme("javascript:x")
                && !allowed_scheme("https://")
        );
    }
}
