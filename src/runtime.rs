//! The process's one tokio runtime, built here and nowhere else, on first use. It is a
//! current-thread runtime: the send path calls the store from the runtime's thread and
//! writes the journal from the workers' thread (a remote store bridges to a thread of its
//! own), and `serve` and `preview` do their blocking work on `spawn_blocking` or threads of
//! their own, so one thread serves every command.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long [`Runtime::shutdown`] waits for blocking tasks still running (a commit of the
/// journal off the runtime's thread) before the process goes on without them.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The runtime a command's async work runs on: made once by the caller (the command line
/// makes it in `main`) and lent to every library function that needs async.
#[derive(Debug, Default)]
pub struct Runtime {
    built: OnceLock<tokio::runtime::Runtime>,
}

impl Runtime {
    /// A runtime that is built the first time it is used; a command that never needs async
    /// never builds it.
    pub fn new() -> Runtime {
        Runtime::default()
    }

    /// The tokio runtime, built on the first call.
    pub fn get(&self) -> Result<&tokio::runtime::Runtime> {
        if let Some(runtime) = self.built.get() {
            return Ok(runtime);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                context: "could not start the async runtime".into(),
                path: None,
                source,
            })?;
        Ok(self.built.get_or_init(|| runtime))
    }

    /// Runs `future` to its end on the runtime.
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output> {
        Ok(self.get()?.block_on(future))
    }

    /// Ends the runtime, waiting a few seconds for blocking tasks still running.
    pub fn shutdown(self) {
        if let Some(runtime) = self.built.into_inner() {
            runtime.shutdown_timeout(SHUTDOWN_WAIT);
        }
    }
}
