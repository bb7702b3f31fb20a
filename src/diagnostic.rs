//! Problems found in a file, located by line and column and printed the way compilers print
//! them: `FILE:LINE:COL: error: message`, then the offending line with a caret under it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Stops `build` and `send`; `check` exits 1.
    Error,
    /// Reported, but the command goes on (`--strict` turns warnings into errors).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem in one file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, as the user named it.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong, lowercase, user values in backticks.
    pub message: String,
    /// The text of the offending line (without its line ending), empty when there is none.
    pub source_line: String,
    /// How many characters of `source_line` the caret underlines (at least 1).
    pub width: usize,
    /// Byte offset of the problem in the file, for ordering.
    offset: usize,
}

impl Diagnostic {
    /// A problem at byte range `span` of `source`, the contents of `path`.
    pub fn at(
        severity: Severity,
        path: &Path,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let source_line = source[line_start..line_end].trim_end_matches('\r');
        let width = source[start..end.min(line_end)].chars().count().max(1);
        Diagnostic {
            severity,
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            source_line: source_line.to_string(),
            width,
            offset: start,
        }
    }

    /// A problem at `span`, severity error.
    pub fn error(path: &Path, source: &str, span: Range<usize>, msg: impl Into<String>) -> Self {
        Self::at(Severity::Error, path, source, span, msg)
    }

    /// A problem at `span`, severity warning.
    pub fn warning(path: &Path, source: &str, span: Range<usize>, msg: impl Into<String>) -> Self {
        Self::at(Severity::Warning, path, source, span, msg)
    }

    /// Whether this stops a build.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.severity,
            self.message
        )?;
        if self.source_line.is_empty() {
            return Ok(());
        }
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        // Keep tabs in the caret's indentation so it lines up under the same text.
        let indent: String = self
            .source_line
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(
            f,
            "\n{gutter} |\n{number} | {}\n{gutter} | {indent}{}",
            self.source_line,
            "^".repeat(self.width)
        )
    }
}

/// Sorts diagnostics by file and place, so they read top to bottom.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics
        .sort_by(|a, b| (&a.path, a.offset, a.severity).cmp(&(&b.path, b.offset, b.severity)));
}

/// The largest char boundary at or below `index`.
fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column_in_characters() {
        let source = "a = 1\nbé = \"x\"\n";
        let at = source.find("\"x\"").unwrap();
        let d = Diagnostic::error(Path::new("f.toml"), source, at..at + 3, "bad");
        assert_eq!((d.line, d.column, d.width), (2, 6, 3));
        assert_eq!(
            d.to_string(),
            "f.toml:2:6: error: bad\n  |\n2 | bé = \"x\"\n  |      ^^^"
        );
    }

    #[test]
    fn span_past_the_end_is_clamped() {
        let d = Diagnostic::error(Path::new("f"), "ab", 10..20, "m");
        assert_eq!((d.line, d.column, d.width), (1, 3, 1));
    }

    #[test]
    fn caret_keeps_tabs() {
        let d = Diagnostic::error(Path::new("f"), "\tx = 1", 1..2, "m");
        assert!(d.to_string().ends_with("| \t^"), "{d}");
    }
}
