//! Reads a TOML file keeping the place of every key and value, so that every problem in it,
//! not just the first, can be reported as `FILE:LINE:COL`.
//!
//! serde stops at the first error; a bulletin with three mistakes should show three. This
//! module walks toml's spanned document instead and collects diagnostics as it goes.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::Diagnostic;

/// A byte range in the file.
pub type Span = Range<usize>;

/// A TOML file being read: its path and text, and the problems found so far.
pub struct TomlFile<'a> {
    /// The file as the user named it.
    pub path: &'a Path,
    /// Its contents.
    pub source: &'a str,
    /// Problems found so far.
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> TomlFile<'a> {
    /// Starts reading `source`, the contents of `path`.
    pub fn new(path: &'a Path, source: &'a str) -> Self {
        TomlFile {
            path,
            source,
            diagnostics: Vec::new(),
        }
    }

    /// Parses the document; syntax errors (all of them) are recorded and give `None`.
    pub fn parse(&mut self) -> Option<Spanned<DeTable<'a>>> {
        let (table, errors) = DeTable::parse_recoverable(self.source);
        if errors.is_empty() {
            return Some(table);
        }
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            self.error(span, syntax_message(e.message()));
        }
        None
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(self.path, self.source, span, message));
    }

    /// Records a warning at `span`.
    pub fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::warning(self.path, self.source, span, message));
    }

    /// Reports every key of `table` that is not in `allowed`; `within` names the table
    /// (`the bulletin`, `[[section]]`).
    pub fn allow_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], within: &str) {
        for key in table.keys() {
            let name: &str = key.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let hint = suggest(name, allowed)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!("; expected one of {}", list(allowed)));
            self.error(
                key.span(),
                format!("unknown key `{name}` in {within}{hint}"),
            );
        }
    }

    /// A string value, if present and of the right type.
    pub fn string(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<String>> {
        let value = table.get(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
            other => {
                self.wrong_type(key, value.span(), "a string", other);
                None
            }
        }
    }

    /// A non-negative integer that fits in `u32`, if present and of the right type.
    pub fn number(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<u32>> {
        let value = table.get(key)?;
        match value.get_ref() {
            DeValue::Integer(i) => {
                let parsed = i64::from_str_radix(i.as_str().replace('_', "").as_str(), i.radix())
                    .ok()
                    .and_then(|n| u32::try_from(n).ok());
                match parsed {
                    Some(n) => Some(Spanned::new(value.span(), n)),
                    None => {
                        self.error(
                            value.span(),
                            format!("`{key}` must be a whole number from 0 to {}", u32::MAX),
                        );
                        None
                    }
                }
            }
            other => {
                self.wrong_type(key, value.span(), "a whole number", other);
                None
            }
        }
    }

    /// A calendar date, written as a TOML date (`2026-03-20`) or a string of that form.
    pub fn date(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<jiff::civil::Date>> {
        let value = table.get(key)?;
        let text = match value.get_ref() {
            DeValue::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.to_string(),
            DeValue::String(s) => s.to_string(),
            other => {
                self.wrong_type(key, value.span(), "a date like 2026-03-20", other);
                return None;
            }
        };
        match text.parse::<jiff::civil::Date>() {
            Ok(date) => Some(Spanned::new(value.span(), date)),
            Err(_) => {
                self.error(
                    value.span(),
                    format!("`{key}` must be a date like 2026-03-20, not `{text}`"),
                );
                None
            }
        }
    }

    /// An array of strings, if present and of the right type. Elements of the wrong type are
    /// reported and left out.
    pub fn strings(&mut self, table: &DeTable<'_>, key: &str) -> Option<Vec<Spanned<String>>> {
        let value = table.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, value.span(), "an array of strings", value.get_ref());
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                other => self.error(
                    item.span(),
                    format!("items of `{key}` must be strings, not {}", describe(other)),
                ),
            }
        }
        Some(out)
    }

    /// An array of tables (`[[key]]`), each with its span. A single table is accepted too.
    pub fn tables<'t>(
        &mut self,
        table: &'t DeTable<'a>,
        key: &str,
    ) -> Vec<(Span, &'t DeTable<'a>)> {
        let Some(value) = table.get(key) else {
            return Vec::new();
        };
        match value.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::Table(t) => out.push((item.span(), t)),
                        other => self.wrong_type(key, item.span(), "a table", other),
                    }
                }
                out
            }
            DeValue::Table(t) => vec![(value.span(), t)],
            other => {
                self.wrong_type(key, value.span(), &format!("`[[{key}]]` tables"), other);
                Vec::new()
            }
        }
    }

    fn wrong_type(&mut self, key: &str, span: Span, expected: &str, found: &DeValue<'_>) {
        self.error(
            span,
            format!("`{key}` must be {expected}, not {}", describe(found)),
        );
    }
}

/// The span of the value at `path` (a key path like `["sender", "from"]`) in a parsed document.
pub fn locate(table: &DeTable<'_>, path: &[&str]) -> Option<Span> {
    let (first, rest) = path.split_first()?;
    let value = table.get(*first)?;
    if rest.is_empty() {
        return Some(value.span());
    }
    match value.get_ref() {
        DeValue::Table(t) => locate(t, rest),
        _ => None,
    }
}

/// The span of the header line of the table at `span`: where `[[section]]` is written, or
/// the start of the table's first key. Used for "missing key" errors.
pub fn table_head(source: &str, span: &Span) -> Span {
    let before = &source[..span.start.min(source.len())];
    // An array-of-tables element's span starts at its first key; point at the header above.
    if let Some(open) = before.rfind("[[") {
        let line_end = source[open..].find('\n').map_or(source.len(), |i| open + i);
        if source[line_end..span.start.min(source.len()).max(line_end)]
            .trim()
            .is_empty()
        {
            return open..line_end;
        }
    }
    span.start..span.start
}

fn describe(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn syntax_message(message: &str) -> String {
    let m = message.trim().trim_end_matches('.');
    format!("invalid TOML: {m}")
}

/// The closest allowed name, when it is close enough to be a likely typo.
pub fn suggest<'s>(name: &str, allowed: &[&'s str]) -> Option<&'s str> {
    crate::suggest::closest(name, allowed.iter().copied())
}

/// `` `a`, `b`, `c` ``
pub fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_unknown_key_and_type_error() {
        let src = "titel = 1\nnumber = \"x\"\nto = [1, \"a\"]\n";
        let mut file = TomlFile::new(Path::new("b.toml"), src);
        let doc = file.parse().unwrap();
        file.allow_keys(doc.get_ref(), &["title", "number", "to"], "the bulletin");
        assert!(file.number(doc.get_ref(), "number").is_none());
        let to = file.strings(doc.get_ref(), "to").unwrap();
        assert_eq!(to.len(), 1);
        let lines: Vec<String> = file.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(file.diagnostics.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("b.toml:1:1: error: unknown key `titel`"));
        assert!(lines[0].contains("did you mean `title`?"));
        assert!(lines[1].starts_with("b.toml:2:10: error: `number` must be a whole number"));
        assert!(lines[2].starts_with("b.toml:3:7: error: items of `to` must be strings"));
    }

    #[test]
    fn syntax_errors_have_places() {
        let mut file = TomlFile::new(Path::new("b.toml"), "a = 1\nb = \n");
        assert!(file.parse().is_none());
        assert_eq!(file.diagnostics[0].line, 2);
        assert!(file.diagnostics[0].message.starts_with("invalid TOML"));
    }

    #[test]
    fn locates_nested_values() {
        let src = "[sender]\nfrom = \"x\"\n";
        let mut file = TomlFile::new(Path::new("c.toml"), src);
        let doc = file.parse().unwrap();
        let span = locate(doc.get_ref(), &["sender", "from"]).unwrap();
        assert_eq!(&src[span], "\"x\"");
    }
}
