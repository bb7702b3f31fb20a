//! The job's journal as one worker sees it: pending rows claimed in batches under the
//! worker's lease, and delivery results written with group commit. A result is held in
//! memory until the next flush; before a connection sends a message's data, its own last
//! result is committed (with whatever else is held, if it was not yet) and the lease is
//! checked, so at any moment at most one accepted copy per connection is unrecorded, and
//! after a crash (or a lost database) at most that many go out twice, with the same
//! Message-ID.
//!
//! A worker's journal has its own connection to the store, called from the send runtime's
//! one thread (the lease, the rate, domain pauses); one or more committers, which commit
//! results while the connections go on, on the store's own thread (PostgreSQL), on a
//! blocking thread, or in place when a commit waits for nothing (a commit takes everything
//! held and in no commit yet, but for results whose row has a result in a commit under
//! way; on a server, a second commit may run beside the first, each connection waiting only
//! for the one that holds its own result); and a claimer, which claims the next batch while
//! the last one is sent. A journal without them does each in place.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::store::{Entry, Mark, Store};

/// A job's journal, worked by one worker.
pub struct Journal {
    store: Box<dyn Store>,
    /// Connections of their own, which commit results while the worker sends
    /// ([`Journal::take_unflushed`]), one commit each at a time.
    committers: Vec<Arc<Mutex<Box<dyn Store>>>>,
    /// Which of them are in no commit.
    idle: Vec<usize>,
    /// The rows whose results are in a commit under way: a result for one of them waits
    /// for that commit to end, so two results for one row are written in order.
    in_commit: BTreeSet<i64>,
    /// Whether the committers' commits are quick enough to run on the runtime's thread
    /// ([`crate::store::Backend::commits_quickly`]).
    commits_quickly: bool,
    /// A third connection, which claims the next rows while the worker
    /// sends ([`Journal::fetch_apart`]).
    claimer: Option<Arc<Mutex<Box<dyn Store>>>>,
    /// Results recorded so far (each is numbered by this count when recorded), and
    /// committed so far: every result up to `committed` is in, and so are those numbered in
    /// `committed_beyond` (commits apart may end out of order).
    recorded: u64,
    committed: u64,
    committed_beyond: BTreeSet<u64>,
    job: i64,
    worker: i64,
    lease: Duration,
    /// When the last renewal that succeeded was asked for: the lease runs from then.
    renewed: Instant,
    /// Results held, in no commit yet, and their numbers.
    unflushed: Vec<Mark>,
    unflushed_numbers: Vec<u64>,
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
            committers: Vec::new(),
            idle: Vec::new(),
            in_commit: BTreeSet::new(),
            commits_quickly: false,
            claimer: None,
            recorded: 0,
            committed: 0,
            committed_beyond: BTreeSet::new(),
            job,
            worker,
            lease,
            renewed,
            unflushed: Vec::new(),
            unflushed_numbers: Vec::new(),
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

    /// Commits results through `committer` (a connection of its own) as well: on a
    /// blocking thread, or on the runtime's own when its commits are quick. See
    /// [`Journal::take_unflushed`].
    pub fn with_committer(mut self, committer: Box<dyn Store>) -> Journal {
        self.commits_quickly = committer.commits_quickly();
        self.idle.push(self.committers.len());
        self.committers.push(Arc::new(Mutex::new(committer)));
        self
    }

    /// Holds `mark` until the next [`Journal::flush`].
    /// Returns how many results are recorded with it, the number to ask
    /// [`Journal::is_committed`] about.
    pub fn record(&mut self, mark: Mark) -> u64 {
        self.unflushed.push(mark);
        self.recorded += 1;
        self.unflushed_numbers.push(self.recorded);
        self.recorded
    }

    /// Commits every held result in one transaction, in place, but for results whose row
    /// has a result in a commit under way: those stay held, so that a row's results are
    /// written in the order they came.
    pub fn flush(&mut self) -> Result<()> {
        let (marks, numbers) = self.take_free();
        if marks.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.mark(&marks) {
            self.restore(marks, numbers);
            return Err(e);
        }
        self.now_committed(&numbers, &marks);
        Ok(())
    }

    /// The held results whose row has no result in a commit under way, with their
    /// numbers, taken out of the held ones (the rest stay, in order).
    fn take_free(&mut self) -> (Vec<Mark>, Vec<u64>) {
        if self.in_commit.is_empty() {
            return (
                std::mem::take(&mut self.unflushed),
                std::mem::take(&mut self.unflushed_numbers),
            );
        }
        let mut free = (Vec::new(), Vec::new());
        let mut kept = (Vec::new(), Vec::new());
        for (mark, number) in std::mem::take(&mut self.unflushed)
            .into_iter()
            .zip(std::mem::take(&mut self.unflushed_numbers))
        {
            let to = if self.in_commit.contains(&mark.seq) {
                &mut kept
            } else {
                &mut free
            };
            to.0.push(mark);
            to.1.push(number);
        }
        (self.unflushed, self.unflushed_numbers) = kept;
        free
    }

    /// How many results have been recorded so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// How many of them are committed, every one up to that count.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Whether the result recorded as the `number`th is committed.
    pub fn is_committed(&self, number: u64) -> bool {
        number <= self.committed || self.committed_beyond.contains(&number)
    }

    /// Whether the result recorded as the `number`th is committed or in a commit under
    /// way.
    pub fn is_taken(&self, number: u64) -> bool {
        number <= self.recorded && !self.unflushed_numbers.contains(&number)
    }

    /// How many results are held, in no commit yet.
    pub fn held(&self) -> usize {
        self.unflushed.len()
    }

    /// For committing off the runtime's thread: the held results, with a committer that
    /// is in no commit; hand it back with [`Journal::commit_ended`]. A result for a row
    /// whose earlier result is in a commit under way stays held (it goes once that commit
    /// ends, so a row's results are written in the order they came). `None` when the
    /// store commits in place (no committer), every committer is in a commit, or nothing
    /// is held that may go.
    pub fn take_unflushed(&mut self) -> Option<Commit> {
        let committer = *self.idle.last()?;
        let (marks, numbers) = self.take_free();
        if marks.is_empty() {
            return None;
        }
        self.idle.pop();
        self.in_commit.extend(marks.iter().map(|m| m.seq));
        Some(Commit {
            marks,
            numbers,
            committer,
            store: Arc::clone(&self.committers[committer]),
        })
    }

    /// `commit`, from [`Journal::take_unflushed`], has ended: its results are committed
    /// when `done`, or are held again, in the order they were recorded, when not.
    pub fn commit_ended(&mut self, commit: Commit, done: bool) {
        let Commit {
            marks,
            numbers,
            committer,
            ..
        } = commit;
        self.idle.push(committer);
        for mark in &marks {
            self.in_commit.remove(&mark.seq);
        }
        if done {
            self.now_committed(&numbers, &marks);
        } else {
            self.restore(marks, numbers);
        }
    }

    /// The results numbered `numbers`, `marks`, are in.
    fn now_committed(&mut self, numbers: &[u64], marks: &[Mark]) {
        self.committed_beyond.extend(numbers.iter().copied());
        while self.committed_beyond.remove(&(self.committed + 1)) {
            self.committed += 1;
        }
        self.count_sent(marks);
    }

    fn count_sent(&mut self, marks: &[Mark]) {
        self.sent += marks
            .iter()
            .filter(|m| m.state == crate::store::EntryState::Sent)
            .count() as u64;
    }

    /// `marks`, numbered `numbers`, could not be committed: they are held again, in the
    /// order they were recorded.
    fn restore(&mut self, marks: Vec<Mark>, numbers: Vec<u64>) {
        let mut held: Vec<(u64, Mark)> = numbers.into_iter().zip(marks).collect();
        held.extend(
            std::mem::take(&mut self.unflushed_numbers)
                .into_iter()
                .zip(std::mem::take(&mut self.unflushed)),
        );
        held.sort_by_key(|(number, _)| *number);
        (self.unflushed_numbers, self.unflushed) = held.into_iter().unzip();
    }

    /// Whether claims go through a claimer of their own.
    pub fn claims_apart(&self) -> bool {
        self.claimer.is_some()
    }

    /// Whether commits go through committers of their own.
    pub fn commits_apart(&self) -> bool {
        !self.committers.is_empty()
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

/// Results taken for a commit by a committer: see [`Journal::take_unflushed`].
pub struct Commit {
    marks: Vec<Mark>,
    numbers: Vec<u64>,
    committer: usize,
    store: Arc<Mutex<Box<dyn Store>>>,
}

impl Commit {
    /// Hands the results to the committer's own thread, when it has one: the future
    /// completes once they are committed. `None`: commit with [`Commit::run`].
    pub fn start(&self) -> Option<crate::store::Pending> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.mark_soon(&self.marks)
    }

    /// Commits the results on the committer's connection, in place.
    pub fn run(&self) -> Result<()> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.mark(&self.marks)
    }

    /// [`Commit::run`] for a blocking thread.
    pub fn apart(&self) -> impl FnOnce() -> Result<()> + Send + 'static {
        let (store, marks) = (Arc::clone(&self.store), self.marks.clone());
        move || {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            store.mark(&marks)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EntryState;
    use crate::store::sqlite::SqliteStore;

    /// A journal over a job of six rows, with `committers` committers, and its rows.
    fn journal_with(committers: usize) -> (tempfile::TempDir, Journal, Vec<Entry>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let job = crate::store::conformance::job_for_all(&store, 6);
        let worker = crate::store::Journal::register_worker(&store, "h", 1, 60).unwrap();
        let mut journal = Journal::new(
            Box::new(store),
            job.id,
            worker,
            Duration::from_secs(60),
            Instant::now(),
        );
        for _ in 0..committers {
            journal = journal.with_committer(Box::new(SqliteStore::open(&path).unwrap()));
        }
        let rows = journal.fetch(10).unwrap();
        (dir, journal, rows)
    }

    fn result(row: &Entry, state: EntryState) -> Mark {
        Mark {
            job: row.job,
            seq: row.seq,
            state,
            attempts: 1,
            message_id: format!("<{}@x>", row.seq),
            reply: "250 ok".into(),
            at: "2026-01-01T00:00:01Z".into(),
        }
    }

    fn sent_in_store(journal: &Journal) -> u64 {
        journal
            .store
            .job(journal.job)
            .unwrap()
            .unwrap()
            .progress
            .sent
    }

    #[test]
    fn commits_side_by_side_may_end_in_any_order_and_each_counts_its_own_results() {
        let (_dir, mut journal, rows) = journal_with(2);
        let first = journal.record(result(&rows[0], EntryState::Sent));
        let second = journal.record(result(&rows[1], EntryState::Sent));
        let a = journal.take_unflushed().expect("a committer is free");
        let third = journal.record(result(&rows[2], EntryState::Sent));
        let b = journal
            .take_unflushed()
            .expect("the second committer is free");
        assert!(journal.is_taken(first) && journal.is_taken(third));
        let fourth = journal.record(result(&rows[3], EntryState::Sent));
        assert!(
            journal.take_unflushed().is_none(),
            "both committers are in a commit"
        );
        assert!(!journal.is_taken(fourth));

        // The later commit ends first: its result is in, the earlier ones are not.
        b.run().unwrap();
        journal.commit_ended(b, true);
        assert!(journal.is_committed(third));
        assert!(!journal.is_committed(first) && !journal.is_committed(second));
        assert_eq!(journal.committed(), 0, "nothing up to the third is in yet");

        a.run().unwrap();
        journal.commit_ended(a, true);
        assert_eq!(journal.committed(), third);
        assert!(!journal.is_committed(fourth));
        assert_eq!(sent_in_store(&journal), 3);
        assert_eq!(journal.sent, 3);
    }

    #[test]
    fn a_result_for_a_row_whose_last_result_is_being_committed_waits_for_that_commit() {
        let (_dir, mut journal, rows) = journal_with(2);
        journal.record(result(&rows[0], EntryState::Pending));
        let deferred = journal.take_unflushed().unwrap();
        // A retry of the same row, accepted while the deferral's commit is under way.
        let retried = journal.record(result(&rows[0], EntryState::Sent));
        assert!(
            journal.take_unflushed().is_none(),
            "a free committer, but the row's first result is not in yet"
        );
        // Another row's result goes on the free committer; the retry's stays held, and
        // so it does when results are written in place.
        let other = journal.record(result(&rows[1], EntryState::Sent));
        let apart = journal.take_unflushed().expect("the other row is free");
        assert!(journal.is_taken(other) && !journal.is_taken(retried));
        apart.run().unwrap();
        journal.commit_ended(apart, true);
        journal.flush().unwrap();
        assert!(!journal.is_taken(retried));
        assert_eq!(sent_in_store(&journal), 1);

        deferred.run().unwrap();
        journal.commit_ended(deferred, true);
        assert_eq!(journal.committed(), 1);
        let commit = journal.take_unflushed().expect("the row is free again");
        commit.run().unwrap();
        journal.commit_ended(commit, true);
        assert!(journal.is_committed(retried));
        assert_eq!(journal.committed(), other);
        assert_eq!(sent_in_store(&journal), 2);
    }

    #[test]
    fn results_whose_commits_failed_are_held_again_in_the_order_they_came() {
        let (_dir, mut journal, rows) = journal_with(2);
        let first = journal.record(result(&rows[0], EntryState::Sent));
        let a = journal.take_unflushed().unwrap();
        journal.record(result(&rows[1], EntryState::Sent));
        let b = journal.take_unflushed().unwrap();
        let third = journal.record(result(&rows[2], EntryState::Sent));
        // The first commit fails, then the second: each is held again, oldest first.
        journal.commit_ended(a, false);
        assert!(!journal.is_taken(first));
        journal.commit_ended(b, false);
        let held: Vec<i64> = journal.unflushed.iter().map(|m| m.seq).collect();
        assert_eq!(held, [rows[0].seq, rows[1].seq, rows[2].seq]);
        assert_eq!(journal.unflushed_numbers, [1, 2, 3]);
        // Written in place, every one is in.
        journal.flush().unwrap();
        assert_eq!(journal.committed(), third);
        assert_eq!(sent_in_store(&journal), 3);
    }
}
