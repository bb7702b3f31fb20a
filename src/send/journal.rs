//! The job's journal as one worker sees it: pending rows claimed in batches under the
//! worker's lease, and delivery results written with group commit. A result is held in
//! memory until the next flush; before a connection sends a message's data, its own last
//! result is committed (with whatever else is held, if it was not yet) and the lease is
//! checked, so at any moment at most one accepted copy per connection is unrecorded, and after a crash (or a lost database) at most that many go out
//! twice, with the same Message-ID.
//!
//! A worker's journal has three connections to the store: its own, called from the send
//! runtime's one thread (the lease, the rate, domain pauses); a committer, which commits
//! results on a blocking thread while the connections go on (a commit waited for takes
//! everything recorded meanwhile); and a claimer, which claims the next batch while the
//! last one is sent. A journal without them does each in place.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::store::{Entry, Mark, Store};

/// A job's journal, worked by one worker.
pub struct Journal {
    store: Box<dyn Store>,
    /// A second connection, which commits results while the worker sends
    /// ([`Journal::take_unflushed`]).
    committer: Option<Arc<Mutex<Box<dyn Store>>>>,
    /// Whether the committer's commits are quick enough to run on the runtime's thread
    /// ([`crate::store::Backend::commits_quickly`]).
    commits_quickly: bool,
    /// A third connection, which claims the next rows while the worker
    /// sends ([`Journal::fetch_apart`]).
    claimer: Option<Arc<Mutex<Box<dyn Store>>>>,
    /// Results recorded so far, and committed so far (counts): every result up to
    /// `committed` is in.
    recorded: u64,
    committed: u64,
    /// Every result up to this count is committed or in a commit under way.
    started: u64,
    /// Whether results are taken for a commit apart that has not ended.
    taken: bool,
    /// The most results a commit in place covered while one apart was under way: counted
    /// as committed once that one is.
    later: u64,
    job: i64,
    worker: i64,
    lease: Duration,
    /// When the last renewal that succeeded was asked for: the lease runs from then.
    renewed: Instant,
    unflushed: Vec<Mark>,
    /// The last row claimed onwards.
    cursor: i64,
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
            committer: None,
            commits_quickly: false,
            claimer: None,
            recorded: 0,
            committed: 0,
            started: 0,
            taken: false,
            later: 0,
            job,
            worker,
            lease,
            renewed,
            unflushed: Vec::new(),
            cursor: 0,
            claimed: 0,
            sent: 0,
        }
    }

    /// The job this journal belongs to.
    pub fn job(&self) -> i64 {
        self.job
    }

    /// Claims up to `limit` pending rows for this worker: onwards from the last row it
    /// claimed, then (when those run short) any left behind earlier in the job, such as
    /// the rows of a worker whose lease ran out.
    pub fn fetch(&mut self, limit: usize) -> Result<Vec<Entry>> {
        let rows = claim_batch(&*self.store, self.job, self.worker, self.cursor, limit)?;
        self.fetched(&rows);
        Ok(rows)
    }

    /// For claiming off the runtime's thread, while the rows claimed before are sent: the
    /// claim [`Journal::fetch`] would make, on a connection of its own. `None` when the
    /// journal has no claimer (it claims in place). One at a time; hand its rows to
    /// [`Journal::fetched`].
    pub fn fetch_apart(&self, limit: usize) -> Option<Claim> {
        Some(Claim {
            claimer: self.claimer.clone()?,
            job: self.job,
            worker: self.worker,
            cursor: self.cursor,
            limit,
        })
    }

    /// `rows` were claimed for this journal.
    pub fn fetched(&mut self, rows: &[Entry]) {
        if let Some(last) = rows.iter().map(|e| e.seq).max() {
            self.cursor = self.cursor.max(last);
        }
        self.claimed += rows.len() as u64;
    }

    /// Claims through `claimer` (a connection of its own), off the runtime's thread: see
    /// [`Journal::fetch_apart`].
    pub fn with_claimer(mut self, claimer: Box<dyn Store>) -> Journal {
        self.claimer = Some(Arc::new(Mutex::new(claimer)));
        self
    }

    /// Rows claimed through this journal.
    pub fn claimed(&self) -> u64 {
        self.claimed
    }

    /// When the lease was last renewed.
    pub fn renewed(&self) -> Instant {
        self.renewed
    }

    /// Commits results through `committer` (a connection of its own): on a blocking
    /// thread, or on the runtime's own when its commits are quick. See
    /// [`Journal::take_unflushed`].
    pub fn with_committer(mut self, committer: Box<dyn Store>) -> Journal {
        self.commits_quickly = committer.commits_quickly();
        self.committer = Some(Arc::new(Mutex::new(committer)));
        self
    }

    /// Holds `mark` until the next [`Journal::flush`].
    /// Returns how many results are recorded with it: once [`Journal::committed`] reaches
    /// that, it is committed.
    pub fn record(&mut self, mark: Mark) -> u64 {
        self.unflushed.push(mark);
        self.recorded += 1;
        self.recorded
    }

    /// Commits every held result in one transaction.
    pub fn flush(&mut self) -> Result<()> {
        if self.unflushed.is_empty() {
            return Ok(());
        }
        self.store.mark(&self.unflushed)?;
        let marks = std::mem::take(&mut self.unflushed);
        let upto = self.recorded;
        self.started = upto;
        if self.taken {
            // Results taken for a commit apart are older and not in yet: count these only
            // once that one is.
            self.count_sent(&marks);
            self.later = self.later.max(upto);
        } else {
            self.committed_up_to(upto, &marks);
        }
        Ok(())
    }

    /// How many results have been recorded so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// How many of them are committed.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// How many of them are committed or in a commit under way.
    pub fn started(&self) -> u64 {
        self.started.max(self.committed)
    }

    /// How many results are held, in no commit yet.
    pub fn held(&self) -> usize {
        self.unflushed.len()
    }

    /// For committing off the runtime's thread: the held results, how many results will be
    /// committed once they are, and the connection to commit them on. `None` when the store
    /// commits in place (no committer), or nothing is held.
    #[allow(clippy::type_complexity)]
    pub fn take_unflushed(&mut self) -> Option<(Vec<Mark>, u64, Arc<Mutex<Box<dyn Store>>>)> {
        let committer = self.committer.clone()?;
        if self.unflushed.is_empty() {
            return None;
        }
        self.taken = true;
        self.started = self.recorded;
        Some((
            std::mem::take(&mut self.unflushed),
            self.recorded,
            committer,
        ))
    }

    /// `marks`, taken by [`Journal::take_unflushed`], are committed, and with them every
    /// result up to `upto`.
    pub fn committed_up_to(&mut self, upto: u64, marks: &[Mark]) {
        self.taken = false;
        self.committed = self.committed.max(upto).max(self.later);
        self.count_sent(marks);
    }

    fn count_sent(&mut self, marks: &[Mark]) {
        self.sent += marks
            .iter()
            .filter(|m| m.state == crate::store::EntryState::Sent)
            .count() as u64;
    }

    /// `marks`, taken by [`Journal::take_unflushed`], could not be committed: they are held
    /// again, ahead of anything recorded since.
    pub fn restore(&mut self, mut marks: Vec<Mark>) {
        self.taken = false;
        self.started = self.committed;
        marks.append(&mut self.unflushed);
        self.unflushed = marks;
    }

    /// Whether claims go through a claimer of their own.
    pub fn claims_apart(&self) -> bool {
        self.claimer.is_some()
    }

    /// Whether commits go through a committer of their own.
    pub fn commits_apart(&self) -> bool {
        self.committer.is_some()
    }

    /// Whether the committer's commits are quick enough to make on the runtime's thread,
    /// rather than on a blocking thread while the other connections go on.
    pub fn commits_quickly(&self) -> bool {
        self.commits_quickly
    }

    /// Commits held results and makes sure the lease will outlive the next delivery:
    /// called before a message's data is sent. An error means the message must not go.
    pub fn before_data(&mut self) -> Result<()> {
        self.flush()?;
        self.check_lease()
    }

    /// Whether the job has finished or was cancelled (by `mailout job N --cancel`).
    pub fn job_finished(&self) -> Result<bool> {
        self.store.is_finished(self.job)
    }

    /// Renews the lease if half of it has gone.
    pub fn check_lease(&mut self) -> Result<()> {
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

/// A claim to run on a blocking thread: see [`Journal::fetch_apart`].
pub struct Claim {
    claimer: Arc<Mutex<Box<dyn Store>>>,
    job: i64,
    worker: i64,
    cursor: i64,
    limit: usize,
}

impl Claim {
    /// Claims the rows.
    pub fn run(self) -> Result<Vec<Entry>> {
        let store = self.claimer.lock().unwrap_or_else(|e| e.into_inner());
        claim_batch(&**store, self.job, self.worker, self.cursor, self.limit)
    }
}

/// Up to `limit` of `job`'s pending rows for `worker`: onwards from `cursor` (the last row
/// it claimed), then, when those run short, any left behind earlier in the job.
fn claim_batch(
    store: &dyn Store,
    job: i64,
    worker: i64,
    cursor: i64,
    limit: usize,
) -> Result<Vec<Entry>> {
    let mut rows = store.claim(job, worker, cursor, limit)?;
    let cursor = rows.last().map_or(cursor, |e| e.seq);
    if rows.len() < limit && cursor > 0 {
        rows.extend(store.claim(job, worker, 0, limit - rows.len())?);
        rows.sort_by_key(|e| e.seq);
        rows.dedup_by_key(|e| e.seq);
    }
    Ok(rows)
}
