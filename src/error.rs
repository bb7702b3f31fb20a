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
    #[error("store `{location}`: cannot reach the database")]
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

    /// A file, folder, socket, thread or the async runtime could not be used, for a reason
    /// the operating system gave.
    #[error("{context}{}", path.as_deref().map(|p| format!(" `{}`", p.display())).unwrap_or_default())]
    Io {
        /// What was being done, as the start of a sentence (`could not watch`).
        context: String,
        /// The file or folder concerned, if one is.
        path: Option<PathBuf>,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// An SMTP server could not be used, or a send stopped because its transport (SMTP,
    /// sendmail, files) broke.
    #[error("{context}")]
    Smtp {
        /// What failed, as a sentence.
        context: String,
        /// The server's reply or the connection's fault.
        #[source]
        source: BoxError,
    },

    /// An IMAP mailbox could not be read.
    #[error("{context}")]
    Imap {
        /// What failed, as a sentence.
        context: String,
        /// The IMAP client's or the TLS library's error.
        #[source]
        source: BoxError,
    },

    /// A web server (`serve`, `preview`) could not start or stopped.
    #[error("{context}")]
    Serve {
        /// What failed, as a sentence.
        context: String,
        /// The server's error.
        #[source]
        source: BoxError,
    },

    /// A value given in the config, on the command line or in the environment (a URL, an
    /// address, a pattern, a key) could not be read; the parser says why.
    #[error("{context}")]
    Setting {
        /// Which value, and that it could not be used.
        context: String,
        /// The parser's error.
        #[source]
        source: BoxError,
    },

    /// Another step failed because of an error from a lower layer (an encoder, a signer, a
    /// worker task).
    #[error("{context}")]
    Failed {
        /// What failed, as a sentence.
        context: String,
        /// The lower layer's error.
        #[source]
        source: BoxError,
    },

    /// A step failed because of an earlier mailout error, which is its cause.
    #[error("{context}")]
    Context {
        /// What could not be done, as a sentence.
        context: String,
        /// The error that stopped it.
        #[source]
        source: Box<Error>,
    },

    /// The worker is stopping (for the error given to its queue, which is reported); the
    /// step that got this sends nothing more.
    #[error("this worker is stopping")]
    Stopping,

    /// Mailout broke one of its own rules (a lost marker, a panicked thread): a bug.
    #[error("a bug in mailout: {0}")]
    Internal(String),

    /// The command cannot run as asked. Only for mistakes in what was asked, never for an
    /// error that has a cause of its own.
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
            Error::Context { source, .. } => source.diagnostics(),
            _ => &[],
        }
    }

    /// `context`, caused by `self`.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The error and its causes on one line (`what failed: why: why`), for a message that
    /// must fit in one line, like a note that a worker waits.
    pub fn one_line(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            line.push_str(": ");
            line.push_str(&cause.to_string());
            source = cause.source();
        }
        line
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_cause_is_kept_as_the_source_and_said_once() {
        let error = Error::Io {
            context: "could not watch".into(),
            path: Some("bulletins".into()),
            source: std::io::Error::other("too many open files"),
        }
        .context("the preview cannot start");
        assert_eq!(error.to_string(), "the preview cannot start");
        let cause = std::error::Error::source(&error).unwrap();
        assert_eq!(cause.to_string(), "could not watch `bulletins`");
        assert_eq!(
            error.one_line(),
            "the preview cannot start: could not watch `bulletins`: too many open files"
        );
        let unreachable = Error::StoreUnreachable {
            location: "postgres://h/db".into(),
            source: "connection refused".into(),
        };
        assert_eq!(
            unreachable.one_line(),
            "store `postgres://h/db`: cannot reach the database: connection refused"
        );
    }

    #[test]
    fn a_wrapped_error_keeps_its_diagnostics() {
        let d = Diagnostic::error(Path::new("b.toml"), "x = 1\n", 0..1, "unknown key `x`");
        let error =
            Error::Invalid(vec![d]).context("job 3 sends `b.toml`, which this worker cannot read");
        assert_eq!(error.diagnostics().len(), 1);
    }
}
