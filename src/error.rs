//! The library's one error type. Each variant carries the context a user needs to act on it:
//! the path, the number, the template.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

/// A boxed error from a lower layer (a database driver, a parser).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in mailout.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("could not read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A file or folder could not be written.
    #[error("could not write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A file has problems; each diagnostic names its place.
    #[error("{}", summary(.0))]
    Invalid(Vec<Diagnostic>),

    /// The store could not do what was asked.
    #[error("store `{location}`: {context}")]
    Store {
        /// Where the store is (a path or URL without password).
        location: String,
        /// What was being done.
        context: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// The store's server cannot be reached (PostgreSQL stopped, restarting, or the network
    /// lost): worth trying again later, unlike [`Error::Store`].
    #[error("store `{location}`: cannot reach the database: {source}")]
    StoreUnreachable {
        /// The URL, without password.
        location: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// A send worker's lease on its journal rows ran out before it could renew it (the
    /// store was out of reach too long): other workers may have its rows now.
    #[error("this worker's claim on its recipients ran out; they are free for other workers")]
    LeaseLost,

    /// A template could not be parsed or rendered (strict mode: a missing field is an error),
    /// at its place in the template file when the template engine knows it.
    #[error("{}: {message}", template_place(name, *line, *column))]
    Template {
        /// The template's file, under `templates/`.
        name: String,
        /// 1-based line in that file.
        line: Option<usize>,
        /// 1-based column.
        column: Option<usize>,
        /// What is wrong, as a sentence.
        message: String,
    },

    /// CSS could not be inlined into the HTML.
    #[error("could not inline the CSS of `{name}`")]
    CssInline {
        /// The template's file name.
        name: String,
        /// The inliner's error.
        #[source]
        source: css_inline::InlineError,
    },

    /// A message could not be built.
    #[error("could not build the message for `{recipient}`")]
    Message {
        /// Who it was for.
        recipient: String,
        /// The builder's error.
        #[source]
        source: BoxError,
    },

    /// A file that must not be overwritten already exists.
    #[error("`{}` already exists{}", path.display(), hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Exists {
        /// The file.
        path: PathBuf,
        /// What to do instead.
        hint: Option<String>,
    },

    /// The command cannot run as asked.
    #[error("{0}")]
    Usage(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn summary(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let first = diagnostics.first().map(|d| d.path.display().to_string());
    let noun = if errors == 1 { "error" } else { "errors" };
    match first {
        Some(path) => format!("`{path}` has {errors} {noun}"),
        None => format!("{errors} {noun}"),
    }
}

impl Error {
    /// The diagnostics this error carries, if it is about a file's contents.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Invalid(d) => d,
            _ => &[],
        }
    }
}

/// `FILE:LINE:COL`, or as much of it as is known.
fn template_place(name: &str, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{name}:{l}:{c}"),
        (Some(l), None) => format!("{name}:{l}"),
        _ => name.to_string(),
    }
}
