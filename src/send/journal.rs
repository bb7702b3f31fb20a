//! The job's journal as the workers see it: pending rows read in batches, and delivery
//! results written with group commit. A result is held in memory until the next flush; every
//! worker flushes before it sends a message's data, so at any moment at most one accepted
//! copy per worker is unrecorded, and after a crash at most that many go out twice (with
//! the same Message-ID).
//!
//! The store is called synchronously from the send runtime's one thread: a SQLite commit
//! of a batch takes tens of microseconds, far less than the thread switches a separate
//! journal thread costs for every message.

use crate::error::Result;
use crate::store::{Entry, Mark, Store};

/// A job's journal.
pub struct Journal {
    store: Box<dyn Store>,
    job: i64,
    unflushed: Vec<Mark>,
}

impl Journal {
    /// The journal of `job` in `store` (a connection of its own).
    pub fn new(store: Box<dyn Store>, job: i64) -> Journal {
        Journal {
            store,
            job,
            unflushed: Vec::new(),
        }
    }

    /// The job this journal belongs to.
    pub fn job(&self) -> i64 {
        self.job
    }

    /// Up to `limit` pending rows after `after`, in order.
    pub fn fetch(&self, after: i64, limit: usize) -> Result<Vec<Entry>> {
        self.store.pending(self.job, after, limit)
    }

    /// Holds `mark` until the next [`Journal::flush`].
    pub fn record(&mut self, mark: Mark) {
        self.unflushed.push(mark);
    }

    /// Commits every held result in one transaction.
    pub fn flush(&mut self) -> Result<()> {
        if self.unflushed.is_empty() {
            return Ok(());
        }
        self.store.mark(&self.unflushed)?;
        self.unflushed.clear();
        Ok(())
    }
}
