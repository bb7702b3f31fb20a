//! The bulletin file (PRODUCT.md §1): parsed from TOML with the place of every value, then
//! validated, with every problem reported rather than just the first.

use std::ops::Range;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde::Serialize;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::DeTable;

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use crate::recipient::Greeting;
use crate::render::markdown;
use crate::text::hex;
use crate::toml_file::{self, Span, TomlFile};

const TOP_KEYS: &[&str] = &[
    "number",
    "date",
    "subject",
    "headline",
    "to",
    "greeting",
    "intro",
    "section",
    "signatory",
    "attachment",
];
const SECTION_KEYS: &[&str] = &["heading", "kind", "audience", "body", "signed"];
const SIGNATORY_KEYS: &[&str] = &["name", "role", "on_behalf_of"];
const ATTACHMENT_KEYS: &[&str] = &["path"];

/// A bulletin as written, with the place of each value for error messages.
#[derive(Debug, Clone)]
pub struct Bulletin {
    /// The file as the user named it.
    pub path: PathBuf,
    /// Its text.
    pub source: String,
    /// The number, if the file sets one.
    pub number: Option<Spanned<u32>>,
    /// The date, if the file sets one.
    pub date: Option<Spanned<Date>>,
    /// The subject, if the file sets one.
    pub subject: Option<Spanned<String>>,
    /// The lead title under the masthead.
    pub headline: Option<Spanned<String>>,
    /// Who it is addressed to, for the "To:" line.
    pub to: Vec<Spanned<String>>,
    /// The greeting template, if the file sets one.
    pub greeting: Option<Spanned<String>>,
    /// Markdown before the first section.
    pub intro: Option<Spanned<String>>,
    /// The sections, in order.
    pub sections: Vec<Section>,
    /// The closing sign-off.
    pub signatories: Vec<Signatory>,
    /// Files attached to every copy.
    pub attachments: Vec<Attachment>,
    /// The span of the whole document (for problems with no better place).
    whole: Span,
}

/// One `[[section]]`.
#[derive(Debug, Clone)]
pub struct Section {
    /// Where the section's table is.
    pub span: Span,
    /// Its heading.
    pub heading: Spanned<String>,
    /// Its kind (a key of `[sections]` in the config).
    pub kind: Option<Spanned<String>>,
    /// Branches or employers that receive it; empty: the kind's audience, or everyone.
    pub audience: Vec<Spanned<String>>,
    /// Markdown.
    pub body: Spanned<String>,
    /// Names signing this section.
    pub signed: Vec<Spanned<String>>,
}

/// One `[[signatory]]`.
#[derive(Debug, Clone)]
pub struct Signatory {
    /// Their name.
    pub name: Spanned<String>,
    /// Their role.
    pub role: Option<Spanned<String>>,
    /// Whom they sign for.
    pub on_behalf_of: Option<Spanned<String>>,
}

/// One `[[attachment]]`.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The file, relative to the folder mailout runs in.
    pub path: Spanned<String>,
}

impl Bulletin {
    /// Reads and parses the bulletin at `path`. Every structural problem (syntax, unknown
    /// keys, wrong types, missing fields) is reported at once.
    pub fn load(path: &Path) -> Result<Bulletin> {
        let source = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let (bulletin, diagnostics) = Bulletin::parse(path, &source);
        match bulletin {
            Some(b) if diagnostics.is_empty() => Ok(b),
            _ => Err(Error::Invalid(diagnostics)),
        }
    }

    /// Parses `source`; returns what could be read and every problem found. The bulletin is
    /// `None` only when the TOML itself is broken.
    pub fn parse(path: &Path, source: &str) -> (Option<Bulletin>, Vec<Diagnostic>) {
        let mut file = TomlFile::new(path, source);
        // After a syntax error only the syntax errors are reported: what a parser recovers
        // from a broken file would give misleading errors of its own.
        let Some(doc) = file.parse() else {
            return (None, file.diagnostics);
        };
        let whole = doc.span();
        let top = doc.get_ref();
        file.allow_keys(top, TOP_KEYS, "the bulletin");

        let number = file.number(top, "number");
        let date = file.date(top, "date");
        let subject = file.string(top, "subject");
        let headline = file.string(top, "headline");
        let to = file.strings(top, "to").unwrap_or_default();
        let greeting = file.string(top, "greeting");
        let intro = file.string(top, "intro");

        let mut sections = Vec::new();
        let section_tables = file.tables(top, "section");
        if section_tables.is_empty() && top.get("section").is_none() {
            file.error(
                0..0,
                "a bulletin needs at least one `[[section]]` with a `heading` and a `body`",
            );
        }
        for (span, table) in section_tables {
            sections.push(parse_section(&mut file, span, table));
        }
        let mut signatories = Vec::new();
        for (span, table) in file.tables(top, "signatory") {
            file.allow_keys(table, SIGNATORY_KEYS, "`[[signatory]]`");
            let name = required(&mut file, table, "name", &span, "`[[signatory]]`");
            let role = file.string(table, "role");
            let on_behalf_of = file.string(table, "on_behalf_of");
            if let Some(name) = name {
                signatories.push(Signatory {
                    name,
                    role,
                    on_behalf_of,
                });
            }
        }
        let mut attachments = Vec::new();
        for (span, table) in file.tables(top, "attachment") {
            file.allow_keys(table, ATTACHMENT_KEYS, "`[[attachment]]`");
            if let Some(path) = required(&mut file, table, "path", &span, "`[[attachment]]`") {
                attachments.push(Attachment { path });
            }
        }

        let bulletin = Bulletin {
            path: path.to_path_buf(),
            source: source.to_string(),
            number,
            date,
            subject,
            headline,
            to,
            greeting,
            intro,
            sections,
            signatories,
            attachments,
            whole,
        };
        (Some(bulletin), file.diagnostics)
    }

    /// Checks what the structure cannot show: section kinds, empty sections, links, the
    /// greeting's fields, values that become headers, attachments. `known_field` says which
    /// member fields exist; attachment paths are resolved against `base`.
    pub fn validate(
        &self,
        config: &Config,
        known_field: &dyn Fn(&str) -> bool,
        base: &Path,
    ) -> Vec<Diagnostic> {
        let mut file = TomlFile::new(&self.path, &self.source);
        for s in &self.sections {
            let present = |v: &Spanned<String>| !v.span().is_empty();
            if present(&s.heading) && s.heading.get_ref().trim().is_empty() {
                file.error(s.heading.span(), "the section heading is empty");
            }
            if s.heading.get_ref().contains(['\n', '\r']) {
                file.error(s.heading.span(), "a heading must be on one line");
            }
            if present(&s.body) && s.body.get_ref().trim().is_empty() {
                file.error(
                    s.body.span(),
                    format!("section `{}` is empty", s.heading.get_ref().trim()),
                );
            }
            if let Some(kind) = &s.kind
                && config.section_kind(kind.get_ref()).is_none()
            {
                let kinds: Vec<&str> = config.sections.keys().map(String::as_str).collect();
                let hint = toml_file::suggest(kind.get_ref(), &kinds)
                    .map(|k| format!("did you mean `{k}`?"))
                    .unwrap_or_else(|| format!("expected one of {}", toml_file::list(&kinds)));
                file.error(
                    kind.span(),
                    format!("unknown section kind `{}`; {hint}", kind.get_ref()),
                );
            }
            for name in s.audience.iter().chain(&s.signed) {
                if name.get_ref().trim().is_empty() {
                    file.error(name.span(), "an empty name");
                }
            }
            self.check_links(&mut file, &s.body);
        }
        if let Some(intro) = &self.intro {
            self.check_links(&mut file, intro);
        }
        if let Some(greeting) = &self.greeting
            && let Err(errors) = Greeting::parse(greeting.get_ref(), known_field)
        {
            for e in errors {
                let span = string_span(&self.source, &greeting.span(), greeting.get_ref(), e.range);
                file.error(span, e.message);
            }
        }
        let subject = self.subject(config);
        if subject.chars().any(char::is_control) {
            let span = self
                .subject
                .as_ref()
                .or(self.headline.as_ref())
                .map(|s| s.span())
                .unwrap_or(self.whole.clone());
            file.error(
                span,
                "the subject becomes a mail header and must be one line without control characters",
            );
        }
        if subject.trim().is_empty()
            && let Some(s) = &self.subject
        {
            file.error(s.span(), "the subject is empty");
        }
        for a in &self.attachments {
            let path = base.join(a.path.get_ref());
            if a.path.get_ref().trim().is_empty() {
                file.error(a.path.span(), "the attachment path is empty");
            } else if !path.is_file() {
                file.error(
                    a.path.span(),
                    format!("attachment `{}` does not exist", a.path.get_ref()),
                );
            }
        }
        for s in &self.signatories {
            if s.name.get_ref().trim().is_empty() {
                file.error(s.name.span(), "the signatory's name is empty");
            }
        }
        file.diagnostics
    }

    fn check_links(&self, file: &mut TomlFile<'_>, body: &Spanned<String>) {
        for link in markdown::links(body.get_ref()) {
            if !markdown::allowed_scheme(&link.url) {
                let span = string_span(&self.source, &body.span(), body.get_ref(), link.range);
                let what = if link.image { "image" } else { "link" };
                file.error(
                    span,
                    format!(
                        "{what} `{}` is not an http(s) or mailto address; mail cannot follow it",
                        link.url
                    ),
                );
            }
        }
    }

    /// The subject: as written, or `{series} {number}: {headline}`, or `{series} {number}`.
    pub fn subject_for(&self, config: &Config, number: u32) -> String {
        if let Some(s) = &self.subject {
            return s.get_ref().trim().to_string();
        }
        let series = &config.organisation.series;
        match &self.headline {
            Some(h) if !h.get_ref().trim().is_empty() => {
                format!("{series} {number}: {}", h.get_ref().trim())
            }
            _ => format!("{series} {number}"),
        }
    }

    fn subject(&self, config: &Config) -> String {
        self.subject_for(config, self.number.as_ref().map_or(0, |n| *n.get_ref()))
    }

    /// The span of the `number` value, or the file's start.
    pub fn number_span(&self) -> Span {
        self.number.as_ref().map_or(0..0, |n| n.span())
    }

    /// A SHA-256 of everything in the bulletin that shapes what members receive, except its
    /// number: a sent number can only be built again with the same content.
    pub fn content_hash(&self, inputs: &crate::inputs::Inputs) -> Result<String> {
        #[derive(Serialize)]
        struct Canonical<'a> {
            date: Option<String>,
            subject: Option<&'a str>,
            headline: Option<&'a str>,
            to: Vec<&'a str>,
            greeting: Option<&'a str>,
            intro: Option<&'a str>,
            sections: Vec<[String; 5]>,
            signatories: Vec<[Option<&'a str>; 3]>,
            attachments: Vec<(&'a str, String)>,
        }
        let join = |v: &[Spanned<String>]| {
            v.iter()
                .map(|s| s.get_ref().as_str())
                .collect::<Vec<_>>()
                .join("\u{1f}")
        };
        let mut attachments = Vec::new();
        for a in &self.attachments {
            let (_, file) = inputs.attachment(a.path.get_ref());
            attachments.push((text(&a.path), file?.sha256().to_string()));
        }
        let canonical = Canonical {
            date: self.date.as_ref().map(|d| d.get_ref().to_string()),
            subject: self.subject.as_ref().map(text),
            headline: self.headline.as_ref().map(text),
            to: self.to.iter().map(text).collect(),
            greeting: self.greeting.as_ref().map(text),
            intro: self.intro.as_ref().map(text),
            sections: self
                .sections
                .iter()
                .map(|s| {
                    [
                        s.heading.get_ref().clone(),
                        s.kind
                            .as_ref()
                            .map(|k| k.get_ref().clone())
                            .unwrap_or_default(),
                        join(&s.audience),
                        s.body.get_ref().clone(),
                        join(&s.signed),
                    ]
                })
                .collect(),
            signatories: self
                .signatories
                .iter()
                .map(|s| {
                    [
                        Some(text(&s.name)),
                        s.role.as_ref().map(text),
                        s.on_behalf_of.as_ref().map(text),
                    ]
                })
                .collect(),
            attachments,
        };
        let json = serde_json::to_vec(&canonical).map_err(|e| Error::Failed {
            context: "could not encode the bulletin to hash its content".into(),
            source: Box::new(e),
        })?;
        Ok(hex(&Sha256::digest(&json)))
    }
}

fn parse_section(file: &mut TomlFile<'_>, span: Span, table: &DeTable<'_>) -> Section {
    file.allow_keys(table, SECTION_KEYS, "`[[section]]`");
    let heading = required(file, table, "heading", &span, "`[[section]]`");
    let kind = file.string(table, "kind");
    let audience = file.strings(table, "audience").unwrap_or_default();
    let body = required(file, table, "body", &span, "`[[section]]`");
    let signed = file.strings(table, "signed").unwrap_or_default();
    // A missing heading or body has been reported; keep the section (with an empty,
    // zero-width value) so the rest of it is still checked.
    let missing = || Spanned::new(span.start..span.start, String::new());
    Section {
        span: span.clone(),
        heading: heading.unwrap_or_else(missing),
        kind,
        audience,
        body: body.unwrap_or_else(missing),
        signed,
    }
}

fn required(
    file: &mut TomlFile<'_>,
    table: &DeTable<'_>,
    key: &str,
    span: &Span,
    within: &str,
) -> Option<Spanned<String>> {
    if table.get(key).is_none() {
        let head = toml_file::table_head(file.source, span);
        file.error(head, format!("{within} is missing `{key}`"));
        return None;
    }
    file.string(table, key)
}

/// Maps `range`, a byte range within the decoded string `value`, to a range in `source`,
/// where the string literal is at `span`. Exact for strings without escapes; otherwise
/// finds the text, or falls back to the whole literal.
pub fn string_span(source: &str, span: &Span, value: &str, range: Range<usize>) -> Span {
    let Some(raw) = source.get(span.clone()) else {
        return span.clone();
    };
    let delimiter = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|d| raw.starts_with(d) && raw.ends_with(d) && raw.len() >= 2 * d.len());
    let Some(d) = delimiter else {
        return span.clone();
    };
    let mut start = span.start + d.len();
    let mut inner = &raw[d.len()..raw.len() - d.len()];
    if d.len() == 3 {
        for newline in ["\r\n", "\n"] {
            if let Some(rest) = inner.strip_prefix(newline) {
                start += newline.len();
                inner = rest;
                break;
            }
        }
    }
    if inner == value && range.end <= inner.len() {
        return start + range.start..start + range.end;
    }
    if let Some(needle) = value.get(range)
        && !needle.is_empty()
        && let Some(i) = inner.find(needle)
    {
        return start + i..start + i + needle.len();
    }
    span.clone()
}

fn text(s: &Spanned<String>) -> &str {
    s.get_ref().as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipient::MEMBER_FIELDS;

    fn parse(src: &str) -> (Option<Bulletin>, Vec<Diagnostic>) {
        Bulletin::parse(Path::new("b.toml"), src)
    }

    fn validate(src: &str) -> Vec<String> {
        let (b, mut d) = parse(src);
        if let Some(b) = b {
            d.extend(b.validate(
                &Config::builtin(),
                &|f| MEMBER_FIELDS.contains(&f),
                Path::new("."),
            ));
        }
        crate::diagnostic::sort(&mut d);
        d.iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn a_good_bulletin_has_no_problems() {
        let src = r#"
number = 240
date = 2026-10-30
headline = "Pay"
[[section]]
heading = "Pay talks"
kind = "nps"
body = """Talks [resume](https://x.example/pay) on *Monday*."""
"#;
        assert_eq!(validate(src), Vec::<String>::new());
    }

    #[test]
    fn three_mistakes_give_three_errors() {
        let src = r#"number = "240"
[[section]]
hedaing = "Pay"
body = """
See [the plan](ftp://files.example/plan).
"""
"#;
        let problems = validate(src);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("1:10: `number` must be a whole number"));
        assert!(problems[1].starts_with("2:1: `[[section]]` is missing `heading`"));
        assert!(problems[2].starts_with("3:1: unknown key `hedaing`"));
        assert!(problems[3].starts_with("5:5: link `ftp://files.example/plan`"));
    }

    #[test]
    fn link_place_is_exact_inside_multiline_strings() {
        let src = "[[section]]\nheading = \"H\"\nbody = \"\"\"\nline one\nsee [x](javascript:alert(1))\n\"\"\"\n";
        let problems = validate(src);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("5:5: link `javascript:alert(1)`"),
            "{problems:?}"
        );
    }

    #[test]
    fn empty_sections_unknown_kinds_and_greeting_fields() {
        let src = r#"greeting = "Dear {{nickname}}"
[[section]]
heading = "A"
kind = "npss"
body = "  "
"#;
        let problems = validate(src);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("1:18: the greeting names `nickname`"));
        assert!(problems[1].contains("unknown section kind `npss`; did you mean `nps`?"));
        assert!(problems[2].contains("section `A` is empty"));
    }

    #[test]
    fn subject_with_a_line_break_is_refused() {
        let src = "subject = \"Hello\\r\\nBcc: all@example.org\"\n[[section]]\nheading = \"A\"\nbody = \"b\"\n";
        let problems = validate(src);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("1:11: the subject becomes a mail header"));
    }

    #[test]
    fn no_sections_is_an_error() {
        assert!(validate("number = 1\n")[0].contains("at least one `[[section]]`"));
    }

    #[test]
    fn content_hash_ignores_the_number_and_formatting() {
        let a = parse("number = 1\n[[section]]\nheading = \"A\"\nbody = \"b\"\n")
            .0
            .unwrap();
        let b = parse("number = 2\n\n[[section]]\nheading = 'A'\nbody = \"\"\"b\"\"\"\n")
            .0
            .unwrap();
        let c = parse("number = 1\n[[section]]\nheading = \"A\"\nbody = \"c\"\n")
            .0
            .unwrap();
        let base = crate::inputs::Inputs::new(".");
        assert_eq!(
            a.content_hash(&base).unwrap(),
            b.content_hash(&base).unwrap()
        );
        assert_ne!(
            a.content_hash(&base).unwrap(),
            c.content_hash(&base).unwrap()
        );
    }

    #[test]
    fn subjects() {
        let config = Config::builtin();
        let (b, _) = parse("headline = \"Pay\"\n[[section]]\nheading = \"A\"\nbody = \"b\"\n");
        assert_eq!(
            b.unwrap().subject_for(&config, 7),
            "Latest From Example Union 7: Pay"
        );
        let (b, _) = parse("[[section]]\nheading = \"A\"\nbody = \"b\"\n");
        assert_eq!(
            b.unwrap().subject_for(&config, 7),
            "Latest From Example Union 7"
        );
    }
}
