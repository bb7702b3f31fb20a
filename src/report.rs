//! Words for the person running a command, from inside the library (pre-send warnings, a
//! worker waiting for its store, a send's progress). The library never prints: it tells the
//! [`Report`] its caller gave it (in [`crate::workspace::Options`]), and the caller decides
//! where the words go. The command line writes them to stderr without ever failing on a
//! closed pipe; a caller that gives none hears nothing ([`Silent`]).

use std::sync::Arc;

/// Where the library's lines and a send's progress go.
pub trait Report: Send + Sync {
    /// One line to show as it is: a warning, a problem with its place, a note that the work
    /// waits.
    fn line(&self, line: &str);

    /// How a send is going, a few times a second while it runs (only when progress was
    /// asked for).
    fn progress(&self, progress: &Progress) {
        let _ = progress;
    }

    /// The send whose progress was reported has stopped.
    fn progress_done(&self) {}
}

/// How a send is going.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Recipients done in this run (sent, failed or uncertain).
    pub done: u64,
    /// Recipients this run started with.
    pub total: u64,
    /// Accepted in this run.
    pub sent: u64,
    /// Failed for good in this run.
    pub failed: u64,
    /// Sent in full without a reply in this run.
    pub uncertain: u64,
    /// Messages accepted per second so far.
    pub rate: f64,
    /// The trouble recipients wait on, if any waits now: how many, and the last error.
    pub waiting: Option<(usize, String)>,
}

/// Says nothing: for a caller with nobody to tell.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Report for Silent {
    fn line(&self, _line: &str) {}
}

/// A [`Report`] to share: what [`crate::workspace::Options`] and the send path hold.
#[derive(Clone)]
pub struct Reporter(Arc<dyn Report>);

impl Reporter {
    /// A reporter that tells `report`.
    pub fn new(report: impl Report + 'static) -> Reporter {
        Reporter(Arc::new(report))
    }
}

impl Default for Reporter {
    fn default() -> Reporter {
        Reporter::new(Silent)
    }
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reporter")
    }
}

impl std::ops::Deref for Reporter {
    type Target = dyn Report;

    fn deref(&self) -> &(dyn Report + 'static) {
        &*self.0
    }
}
