//! The job's journal as one worker sees it: pending rows claimed in batches under the
//! worker's lease, and delivery results written with group commit. A result is held in
//! memory until the next flush; every worker flushes before it sends a message's data, and
//! checks that its lease is still live, so at any moment at most one accepted copy per
//! connection is unrecorded, and after a crash (or a lost database) at most that many go out
//! twice, with the same Message-ID.
//!
//! The store is called synchronously from the send runtime's one thread: a commit of a
//! batch takes tens of microseconds on SQLite, far less than the thread switches a separate
//! journal thread would cost for every message.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::store::{Entry, Mark, Store};

/// A job's journal, worked by one worker.
pub struct Journal {
    store: Box<dyn Store>,
    job: i64,
    worker: i64,
    lease: Duration,
    /// When the last renewal that succeeded was asked for: the lease runs from then.
    renewed: Instant,
    unflushed: Vec<Mark>,
    claimed: u64,
    sent: u64,
}

impl Journal {
    /// The journal of `job` in `store` (a connection of its own), worked by `worker`, whose
    /// lease (`lease`) was last renewed at `renewed`.
    pub fn new(
        store: Box<dyn Store>,
        job: i64,
        worker: i64,
        lease: Duration,
        renewed: Instant,
    ) -> Journal {
        Journal {
            store,
            job,
            worker,
            lease,
            renewed,
            unflushed: Vec::new(),
            claimed: 0,
            sent: 0,
        }
    }

    /// The job this journal belongs to.
    pub fn job(&self) -> i64 {
        self.job
    }

    /// The store behind it.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Claims up to `limit` pending rows for this worker, in order.
    pub fn fetch(&mut self, limit: usize) -> Result<Vec<Entry>> {
        let rows = self.store.claim(self.job, self.worker, limit)?;
        self.claimed += rows.len() as u64;
        Ok(rows)
    }

    /// Rows claimed through this journal.
    pub fn claimed(&self) -> u64 {
        self.claimed
    }

    /// When the lease was last renewed.
    pub fn renewed(&self) -> Instant {
        self.renewed
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
        self.sent += self
            .unflushed
            .iter()
            .filter(|m| m.state == crate::store::EntryState::Sent)
            .count() as u64;
        self.unflushed.clear();
        Ok(())
    }

    /// Whether results are waiting to be committed.
    pub fn has_unflushed(&self) -> bool {
        !self.unflushed.is_empty()
    }

    /// Commits held results and makes sure the lease will outlive the next delivery:
    /// called before a message's data is sent. An error means the message must not go.
    pub fn before_data(&mut self) -> Result<()> {
        self.flush()?;
        if self.renewed.elapsed() > self.lease / 2 {
            self.renew()?;
        }
        Ok(())
    }

    /// Renews the lease (the heartbeat). A lease that had already run out is an error: other
    /// workers may have taken this worker's rows, so it must let them go.
    pub fn renew(&mut self) -> Result<()> {
        let asked = Instant::now();
        let secs = u32::try_from(self.lease.as_secs()).unwrap_or(u32::MAX);
        if self
            .store
            .heartbeat(self.worker, self.claimed, self.sent, secs)?
        {
            self.renewed = asked;
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    /// Shares a domain's slow-down with every worker of the job.
    pub fn pause_domain(&self, domain: &str, pause: Duration) -> Result<()> {
        self.store.pause_domain(self.job, domain, pause)
    }

    /// The job's paused domains, with the time left.
    pub fn paused_domains(&self) -> Result<Vec<(String, Duration)>> {
        self.store.paused_domains(self.job)
    }

    /// Reserves `count` send slots of the job's overall rate; how long until the first.
    pub fn reserve_sends(&self, rate: u32, count: u32) -> Result<Duration> {
        self.store.reserve_sends(self.job, rate, count)
    }
}
