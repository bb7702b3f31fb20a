//! The folder's `.mailout.env`: `NAME=value` lines for secrets that must not be in the
//! config or in git. `mailout init` writes the token secret there; every command that needs
//! the secret reads the environment variable first and this file second, so a shell that
//! has not exported anything still signs tokens with the organisation's own secret.

use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};

/// The file's name, in the folder mailout runs in.
pub const FILE: &str = ".mailout.env";

/// Where the file is for the folder `base` (`.mailout.env` itself for `.`).
pub fn path(base: &Path) -> PathBuf {
    if base == Path::new(".") {
        PathBuf::from(FILE)
    } else {
        base.join(FILE)
    }
}

/// Where a secret was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The environment variable.
    Environment,
    /// The folder's `.mailout.env`.
    File,
}

/// The value of the variable `name`: the environment's when it is set and not empty (it
/// wins), else the last `name=…` line of `base/.mailout.env`; `None` when neither has one.
/// A file that cannot be read (other than a missing one) or has a line that is not
/// `NAME=value` is an error naming the place.
pub fn lookup(base: &Path, name: &str) -> Result<Option<(String, Source)>> {
    if let Ok(value) = std::env::var(name)
        && !value.is_empty()
    {
        return Ok(Some((value, Source::Environment)));
    }
    let file = path(base);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Read { path: file, source }),
    };
    let value = get(&parse(&file, &text)?, name).map(|v| (v.to_string(), Source::File));
    Ok(value)
}

/// The value of `name` among `pairs` (the last one wins, as in a shell), when not empty.
pub fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The `NAME=value` pairs of `text` (read from `file`), in order. Blank lines and lines
/// starting with `#` are skipped, a leading `export ` is allowed, and a value in matching
/// single or double quotes loses them (nothing inside is unescaped).
pub fn parse(file: &Path, text: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut problems = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = content.len() - trimmed.len();
        let statement = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let at = start + indent + (trimmed.len() - statement.len());
        let Some((name, value)) = statement.split_once('=') else {
            problems.push(Diagnostic::error(
                file,
                text,
                at..start + content.len(),
                "expected `NAME=value`",
            ));
            continue;
        };
        let name = name.trim_end();
        if !is_name(name) {
            problems.push(Diagnostic::error(
                file,
                text,
                at..at + name.len(),
                format!(
                    "`{name}` is not a variable name (letters, digits and `_`, not starting with a digit)"
                ),
            ));
            continue;
        }
        pairs.push((name.to_string(), unquote(value.trim()).to_string()));
    }
    if problems.is_empty() {
        Ok(pairs)
    } else {
        Err(Error::Invalid(problems))
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(Path::new(".mailout.env"), text).unwrap()
    }

    #[test]
    fn reads_names_and_values() {
        let text = "# a comment\n\nMAILOUT_TOKEN_SECRET=abc=def\r\nexport OTHER = \"quoted value\"\n  LAST='x'\nMAILOUT_TOKEN_SECRET=later\n";
        let found = pairs(text);
        assert_eq!(get(&found, "MAILOUT_TOKEN_SECRET"), Some("later"));
        assert_eq!(get(&found, "OTHER"), Some("quoted value"));
        assert_eq!(get(&found, "LAST"), Some("x"));
        assert_eq!(get(&found, "MISSING"), None);
        assert_eq!(get(&pairs("EMPTY=\n"), "EMPTY"), None);
        assert_eq!(get(&pairs("\u{feff}BOM=1\n"), "BOM"), Some("1"));
    }

    #[test]
    fn a_bad_line_is_an_error_with_its_place() {
        let text = "GOOD=1\njust words\n9X=2\n";
        let Err(Error::Invalid(problems)) = parse(Path::new(".mailout.env"), text) else {
            panic!("expected problems");
        };
        let shown: Vec<String> = problems.iter().map(|d| d.to_string()).collect();
        assert!(
            shown[0].starts_with(".mailout.env:2:1: error: expected `NAME=value`"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with(".mailout.env:3:1: error: `9X` is not a variable name"),
            "{shown:?}"
        );
    }

    #[test]
    fn odd_bytes_never_panic() {
        for text in [
            "=",
            "\u{feff}A=1",
            "é=1",
            "A=\"",
            "export ",
            "export =x",
            "\r\n\r",
        ] {
            let _ = parse(Path::new("f"), text);
        }
    }
}
