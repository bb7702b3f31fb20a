//! The send queue: which recipient a worker takes next. Fresh rows come from the journal in
//! order; a temporary failure comes back after an exponential backoff with jitter. What
//! waits depends on the failure's scope ([`Scope`]): a recipient-level 4xx holds back that
//! recipient alone; a domain-level signal (421, rate, reputation) pauses the domain for
//! every worker of the job, and when the pause ends one recipient goes first as a probe; a
//! server that cannot be reached at all costs nobody an attempt, and stops the run when it
//! stays out of reach.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::journal::{Commit, Journal};
use super::transport::{Delivery, Scope};
use crate::error::{Error, Result};
use crate::store::{Entry, EntryState, Mark};

/// Rows fetched from the journal at a time.
const BATCH: usize = 1000;
/// With a claimer, the next batch is claimed once fewer rows than this are fresh: a whole
/// batch ahead, as a claim can take a checkpoint of SQLite's log, and its sync (tens of
/// milliseconds on some disks), with it.
const CLAIM_AHEAD_BELOW: usize = BATCH;
/// The longest a connection with nothing else to wait for waits for other connections'
/// results to share its commit ([`Queue::group_filled_soon`]).
const GROUP_WAIT: Duration = Duration::from_millis(2);
/// Most recipients held back in memory for a retry or a paused domain; past this the queue
/// waits rather than reading further, so memory stays flat whatever the list's size.
const PARKED: usize = 10_000;

/// How retries and slow-downs are timed.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first delay.
    pub first: Duration,
    /// The longest delay.
    pub longest: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            longest: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n + 1` after `n` failures (n ≥ 1): `first` doubled each
    /// time up to `longest`, then jittered down by up to half, so it never exceeds the cap.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let full = self
            .first
            .saturating_mul(1u32 << doublings)
            .min(self.longest)
            .max(self.first.min(self.longest));
        let random = crate::clock::random_bytes::<4>()
            .map(u32::from_le_bytes)
            .unwrap_or(u32::MAX / 2);
        let fraction = f64::from(random) / f64::from(u32::MAX);
        full.mul_f64(0.5 + 0.5 * fraction)
    }
}

/// Live counts for the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    /// Accepted in this run.
    pub sent: AtomicU64,
    /// Failed for good in this run.
    pub failed: AtomicU64,
    /// Temporary failures that will be retried.
    pub retried: AtomicU64,
    /// Sent in full without a reply: may have been delivered.
    pub uncertain: AtomicU64,
}

struct Retry {
    due: Instant,
    entry: Entry,
}

impl PartialEq for Retry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due && self.entry.seq == other.entry.seq
    }
}
impl Eq for Retry {}
impl PartialOrd for Retry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Retry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.entry.seq).cmp(&(other.due, other.entry.seq))
    }
}

#[derive(Default)]
struct Domain {
    strikes: u32,
    paused_until: Option<Instant>,
    /// A recipient is out as the probe after a pause: the others wait for its outcome.
    probing: bool,
}

/// The last temporary trouble, for the progress line.
#[derive(Debug, Clone)]
pub struct Trouble {
    /// What happened.
    pub reply: String,
    /// When.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    fresh: VecDeque<Entry>,
    exhausted: bool,
    fetching: bool,
    retries: BinaryHeap<Reverse<Retry>>,
    domains: HashMap<String, Domain>,
    in_flight: usize,
    stopping: bool,
    error: Option<String>,
    failure: Option<Error>,
    slots: VecDeque<Instant>,
    /// Opens that failed in a row, with no session opened since.
    unreachable: u32,
    last_trouble: Option<Trouble>,
    /// Failures or uncertain outcomes recorded and not yet committed.
    urgent: bool,
}

/// The queue shared by a job's workers.
pub struct Queue {
    state: Mutex<State>,
    /// Told when a commit through a committer ends (see [`Queue::before_data_shared`]).
    commit_ended: Notify,
    notify: Notify,
    /// Told when as many results are held as a commit started early should take in.
    filled: Notify,
    /// That many: half the connections, rounded up (see [`Queue::group_filled`]).
    group: usize,
    /// Connections whose message has gone in full and whose reply is awaited: results
    /// that may come soon ([`Queue::reply_due`]).
    replies_due: AtomicUsize,
    journal: Mutex<Journal>,
    /// Whether the journal claims on a connection of its own ([`Queue::claim_ahead`]).
    claims_apart: bool,
    job: i64,
    max_attempts: u32,
    /// Unreachable outcomes in a row after which the run stops.
    unreachable_limit: u32,
    backoff: Backoff,
    /// Live counts.
    pub counters: Counters,
}

impl Queue {
    /// A queue over `journal`'s pending rows, for `connections` connections.
    pub fn new(journal: Journal, max_attempts: u32, backoff: Backoff, connections: usize) -> Queue {
        let max_attempts = max_attempts.max(1);
        let group = connections.max(1).div_ceil(2);
        let connections = u32::try_from(connections.max(1)).unwrap_or(u32::MAX);
        Queue {
            state: Mutex::new(State::default()),
            commit_ended: Notify::new(),
            notify: Notify::new(),
            filled: Notify::new(),
            group,
            replies_due: AtomicUsize::new(0),
            job: journal.job(),
            claims_apart: journal.claims_apart(),
            journal: Mutex::new(journal),
            max_attempts,
            unreachable_limit: max_attempts.saturating_mul(connections),
            backoff,
            counters: Counters::default(),
        }
    }

    /// Whether the next batch is to be claimed ahead now (with a claimer, while the rows
    /// claimed before are sent); if so, it counts as under way.
    fn claim_due(&self, s: &mut State) -> bool {
        let due = self.claims_apart
            && s.fresh.len() < CLAIM_AHEAD_BELOW
            && s.retries.len() < PARKED
            && !s.exhausted
            && !s.fetching
            && !s.stopping
            && s.error.is_none();
        if due {
            s.fetching = true;
        }
        due
    }

    /// Claims the next batch on a blocking thread, through the journal's claimer; its rows
    /// join the queue when they come, and an error stops the run.
    fn claim_ahead(self: &Arc<Self>) {
        let Some(claim) = self.journal().fetch_apart(BATCH) else {
            self.lock().fetching = false;
            return;
        };
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            let claimed = match tokio::task::spawn_blocking(move || claim.run()).await {
                Ok(claimed) => claimed,
                Err(e) => Err(Error::Failed {
                    context: "the claim for the next rows failed".into(),
                    source: Box::new(e),
                }),
            };
            match claimed {
                Ok(rows) => {
                    queue.journal().fetched(&rows);
                    let mut s = queue.lock();
                    s.fetching = false;
                    if rows.len() < BATCH {
                        s.exhausted = true;
                    }
                    s.fresh.extend(rows);
                }
                Err(e) => {
                    queue.lock().fetching = false;
                    queue.fail(e);
                }
            }
            queue.notify.notify_waiters();
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A worker that panicked mid-update leaves nothing half-done worth refusing.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits every held result, in place (a result for a row whose last result is in a
    /// commit under way stays held: see [`Journal::flush`]).
    pub fn flush(&self) -> Result<()> {
        self.journal().flush()
    }

    /// Commits every recorded result and checks the worker's lease; a worker calls this
    /// before it sends a message's data, and sends nothing if it fails.
    pub fn before_data(&self) -> Result<()> {
        if self.lock().failure.is_some() {
            return Err(Error::Stopping);
        }
        self.journal().before_data()
    }

    /// Whether the result recorded as the `number`th is committed.
    pub fn is_committed(&self, number: u64) -> bool {
        self.journal().is_committed(number)
    }

    /// Rows this worker has claimed through this queue.
    pub fn claimed(&self) -> u64 {
        self.journal().claimed()
    }

    /// When the worker's lease was last renewed.
    pub fn renewed(&self) -> std::time::Instant {
        self.journal().renewed()
    }

    /// Completes when a connection whose last result was recorded as the `own`th had best
    /// start its commit now, while its envelope's replies come back: when that result is
    /// in a commit already, or when half as many results as there are connections are held
    /// (with one or two connections, at once), or when no other connection's reply is
    /// awaited (no result could join it). Otherwise the commit waits for the replies,
    /// and the other connections' results recorded meanwhile go in the same commit: on a
    /// busy run, one commit for many messages in place of one for every few.
    pub async fn group_filled(&self, own: u64) {
        loop {
            let filled = self.filled.notified();
            tokio::pin!(filled);
            filled.as_mut().enable();
            {
                let journal = self.journal();
                if journal.is_taken(own) || journal.held() >= self.group || self.replies_due() == 0
                {
                    return;
                }
            }
            filled.await;
        }
    }

    /// [`Queue::group_filled`] for a connection that has nothing else to wait for (its
    /// next envelope's replies came with the last reply, see `Session::data`): waiting
    /// for the group stands in for the envelope's round trip, but never longer than
    /// [`GROUP_WAIT`], nor once no other connection's reply is awaited.
    pub async fn group_filled_soon(&self, own: u64) {
        let _ = tokio::time::timeout(GROUP_WAIT, self.group_filled(own)).await;
    }

    /// How many connections' replies are awaited ([`Queue::reply_due`]).
    pub fn replies_due(&self) -> usize {
        self.replies_due.load(Ordering::Acquire)
    }

    /// A connection's message has gone in full; its reply is awaited.
    pub fn reply_due(&self) {
        self.replies_due.fetch_add(1, Ordering::AcqRel);
    }

    /// A reply [`Queue::reply_due`] announced is in (and its result recorded): a
    /// connection waiting for a group may have no one left to wait for.
    pub fn reply_in(&self) {
        if self.replies_due.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.filled.notify_waiters();
        }
    }

    /// [`Queue::before_data`] for a connection whose last result was recorded as the
    /// `own`th: with committers, the commit runs on the store's own thread (PostgreSQL) or
    /// a blocking thread while the other connections go on (or, when its commits are quick,
    /// on the runtime's thread at once). A connection whose result is in a commit under
    /// way waits for that one; one whose result is held commits everything held (group
    /// commit; a result for a row whose last result is in a commit under way stays held)
    /// on a committer in no commit, or waits for one to end. So a commit's round trip is
    /// paid once for many messages, and on a server that has two committers, a result that
    /// comes while one commit runs waits for its own commit only, not for the end of that
    /// one first.
    pub async fn before_data_shared(&self, own: u64) -> Result<()> {
        if !self.journal().commits_apart() {
            return self.before_data();
        }
        // Only this connection's own last result must be in: every other connection waits
        // for its own, so each has at most one copy out that the journal does not show.
        loop {
            let ended = self.commit_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.lock().failure.is_some() {
                return Err(Error::Stopping);
            }
            let (commit, quickly) = {
                let mut journal = self.journal();
                if journal.is_committed(own) {
                    break;
                }
                let commit = if journal.is_taken(own) {
                    None
                } else {
                    journal.take_unflushed()
                };
                (commit, journal.commits_quickly())
            };
            let Some(commit) = commit else {
                // In a commit under way, or every committer is busy: one ends soon.
                ended.await;
                continue;
            };
            Underway {
                queue: self,
                commit: Some(commit),
            }
            .run(quickly)
            .await?;
        }
        self.journal().check_lease()
    }

    /// The heartbeat: renews the worker's lease, and takes on the slow-downs other workers
    /// of the job have met.
    pub fn heartbeat(&self) -> Result<()> {
        let paused = {
            let mut journal = self.journal();
            journal.renew()?;
            journal.paused_domains()?
        };
        let now = Instant::now();
        let mut s = self.lock();
        for (domain, left) in paused {
            let until = now + left;
            let d = s.domains.entry(domain).or_default();
            if d.paused_until.is_none_or(|u| u < until) {
                d.paused_until = Some(until);
            }
        }
        Ok(())
    }

    /// Waits for this worker's next send slot under the job's overall `rate` (messages per
    /// second, shared with every worker of the job through the store).
    pub async fn wait_for_slot(&self, rate: u32) -> Result<()> {
        let at = {
            let next = self.lock().slots.pop_front();
            match next {
                Some(at) => at,
                None => {
                    // A tenth of a second's worth at a time: few round trips, and a worker
                    // that dies wastes little of the rate.
                    let count = (rate / 10).clamp(1, 100);
                    let wait = self.journal().reserve_sends(rate, count)?;
                    let first = Instant::now() + wait;
                    let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
                    let mut s = self.lock();
                    s.slots.extend((1..count).map(|i| first + gap * i));
                    first
                }
            }
        };
        tokio::time::sleep_until(at).await;
        Ok(())
    }

    /// The next recipient to send to, or `None` when the job has nothing left (or is
    /// stopping).
    pub async fn next(self: &Arc<Self>) -> Result<Option<Entry>> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut fetch = false;
            let mut wake_at = None;
            {
                let mut s = self.lock();
                // With a claimer, the next batch is claimed on a connection of its
                // own while this one is sent, so no connection waits for a claim.
                if self.claim_due(&mut s) {
                    drop(s);
                    self.claim_ahead();
                    continue;
                }
                if let Some(e) = &s.error {
                    return Err(Error::Smtp {
                        context: "the send stopped".into(),
                        source: e.clone().into(),
                    });
                }
                if s.stopping {
                    return Ok(None);
                }
                let now = Instant::now();
                if let Some(entry) = take_ready(&mut s, now, self.backoff.first) {
                    if entry.state == EntryState::Skipped {
                        // Unsubscribed since the job started.
                        drop(s);
                        self.skip(entry);
                        continue;
                    }
                    s.in_flight += 1;
                    return Ok(Some(entry));
                }
                if s.fresh.len() < BATCH / 4
                    && s.retries.len() < PARKED
                    && !s.exhausted
                    && !s.fetching
                {
                    s.fetching = true;
                    fetch = true;
                } else if s.fresh.is_empty()
                    && s.exhausted
                    && s.retries.is_empty()
                    && s.in_flight == 0
                    && !s.fetching
                {
                    return Ok(None);
                }
                if !fetch {
                    wake_at = earliest(&s);
                }
            }
            if fetch {
                let batch = self.journal().fetch(BATCH);
                let mut s = self.lock();
                s.fetching = false;
                match batch {
                    Ok(rows) => {
                        if rows.len() < BATCH {
                            s.exhausted = true;
                        }
                        s.fresh.extend(rows);
                    }
                    Err(e) => {
                        drop(s);
                        self.notify.notify_waiters();
                        return Err(e);
                    }
                }
                drop(s);
                self.notify.notify_waiters();
                continue;
            }
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// The next recipient if one is ready now, without waiting or reading the journal: a
    /// worker builds that copy while its last one is going out. The entry is in flight
    /// until it is recorded, or given back with [`Queue::recheck`] or [`Queue::put_back`].
    /// With a claimer, the next batch is claimed here too when it is due, so that a worker
    /// that takes every recipient this way never waits for a claim.
    pub fn try_next(self: &Arc<Self>) -> Option<Entry> {
        loop {
            let mut s = self.lock();
            if s.error.is_some() || s.stopping {
                return None;
            }
            let entry = take_ready(&mut s, Instant::now(), self.backoff.first);
            if entry
                .as_ref()
                .is_some_and(|e| e.state != EntryState::Skipped)
            {
                s.in_flight += 1;
            }
            let claim = self.claim_due(&mut s);
            drop(s);
            if claim {
                self.claim_ahead();
            }
            let entry = entry?;
            if entry.state == EntryState::Skipped {
                // Unsubscribed since the job started.
                self.skip(entry);
                continue;
            }
            return Some(entry);
        }
    }

    /// `entry`, taken ahead with [`Queue::try_next`], if it may still go now: not when the
    /// run is stopping (it is given back) nor when its domain was paused meanwhile (it waits
    /// like any other recipient of that domain).
    pub fn recheck(&self, entry: Entry) -> Option<Entry> {
        let mut s = self.lock();
        if s.error.is_some() || s.stopping {
            drop(s);
            self.put_back(entry);
            return None;
        }
        // Only a pause counts here: when this entry was let go as a domain's probe, the
        // domain's `probing` is its own.
        let now = Instant::now();
        let paused = s
            .domains
            .get(&domain_of(&entry.member.email))
            .and_then(|d| d.paused_until)
            .filter(|until| *until > now);
        match paused {
            None => Some(entry),
            Some(until) => {
                s.in_flight = s.in_flight.saturating_sub(1);
                s.retries.push(Reverse(Retry { due: until, entry }));
                drop(s);
                self.notify.notify_waiters();
                None
            }
        }
    }

    /// Gives back `entry`, taken but not sent: it stays pending, first in line. Had it been
    /// let go as its domain's probe, the next recipient there goes as the probe instead.
    pub fn put_back(&self, entry: Entry) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if let Some(d) = s.domains.get_mut(&domain_of(&entry.member.email)) {
            d.probing = false;
        }
        s.fresh.push_front(entry);
        drop(s);
        self.notify.notify_waiters();
    }

    /// Records what happened to `entry` (its copy had `message_id`); the journal has it at
    /// the next [`Queue::flush`] ([`Queue::flush_urgent`] at once for a failure or an
    /// uncertain copy). A broken transport stops the job, leaving the row pending.
    pub fn record(&self, mut entry: Entry, message_id: &str, outcome: Delivery) -> u64 {
        let now = Instant::now();
        let domain = domain_of(&entry.member.email);
        let mut attempts = entry.attempts + 1;
        let mut shared_pause = None;
        let mut due = None;
        let (state, reply) = {
            let mut s = self.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            if !matches!(
                outcome,
                Delivery::Temporary {
                    scope: Scope::Unreachable,
                    ..
                } | Delivery::Broken(_)
            ) {
                s.unreachable = 0;
            }
            if let Some(d) = s.domains.get_mut(&domain) {
                d.probing = false;
            }
            match outcome {
                Delivery::Accepted(reply) => {
                    s.domains.remove(&domain);
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("sent {}: {reply}", entry.member.email);
                    (EntryState::Sent, reply)
                }
                Delivery::Permanent(reply) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("failed {}: {reply}", entry.member.email);
                    s.urgent = true;
                    (EntryState::Failed, reply)
                }
                Delivery::Uncertain(what) => {
                    self.counters.uncertain.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("uncertain {}: {what}", entry.member.email);
                    s.urgent = true;
                    (EntryState::Uncertain, what)
                }
                Delivery::Temporary {
                    reply,
                    scope: Scope::Unreachable,
                } => {
                    // Nobody's attempt: the connection waits before it tries again.
                    attempts = entry.attempts;
                    s.unreachable += 1;
                    s.last_trouble = Some(Trouble {
                        reply: reply.clone(),
                        at: now,
                    });
                    if s.unreachable >= self.unreachable_limit && s.error.is_none() {
                        s.stopping = true;
                        s.error = Some(format!(
                            "no connection could be opened {} in a row, the last: {reply}; the rest stay pending: run the same command again to resume",
                            crate::text::count(s.unreachable as u64, "time", "times")
                        ));
                    }
                    due = Some(now);
                    (EntryState::Pending, reply)
                }
                Delivery::Temporary { reply, scope } => {
                    s.last_trouble = Some(Trouble {
                        reply: reply.clone(),
                        at: now,
                    });
                    let mut wait = self.backoff.delay(attempts);
                    if scope == Scope::Domain {
                        let d = s.domains.entry(domain.clone()).or_default();
                        d.strikes += 1;
                        let pause = self.backoff.delay(d.strikes);
                        d.paused_until = Some(now + pause);
                        shared_pause = Some(pause);
                        wait = wait.max(pause);
                    }
                    if attempts >= self.max_attempts {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        let reply = format!(
                            "gave up after {}: {reply}",
                            crate::text::count(u64::from(attempts), "attempt", "attempts")
                        );
                        tracing::info!("failed {}: {reply}", entry.member.email);
                        s.urgent = true;
                        (EntryState::Failed, reply)
                    } else {
                        self.counters.retried.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!("will retry {}: {reply}", entry.member.email);
                        due = Some(now + wait);
                        (EntryState::Pending, reply)
                    }
                }
                Delivery::Broken(reason) => {
                    s.stopping = true;
                    s.error = Some(reason);
                    drop(s);
                    self.notify.notify_waiters();
                    return 0;
                }
            }
        };
        let mark = Mark {
            job: self.job,
            seq: entry.seq,
            state,
            attempts,
            message_id: message_id.to_string(),
            reply: reply.clone(),
            at: crate::clock::stamp(),
        };
        let recorded = {
            let mut journal = self.journal();
            let recorded = journal.record(mark);
            if journal.held() >= self.group {
                self.filled.notify_waiters();
            }
            if let Some(pause) = shared_pause
                && let Err(e) = journal.pause_domain(&domain, pause)
            {
                // The journal's next flush meets the same trouble and stops the worker.
                tracing::warn!(
                    "could not share the slow-down for {domain}: {}",
                    e.one_line()
                );
            }
            recorded
        };
        if let Some(due) = due {
            entry.attempts = attempts;
            entry.reply = Some(reply);
            self.lock().retries.push(Reverse(Retry { due, entry }));
        }
        self.notify.notify_waiters();
        recorded
    }

    /// Commits the recorded results now if a failure or an uncertain copy is among them, so
    /// that the journal shows it the moment it is decided.
    pub fn flush_urgent(&self) -> Result<()> {
        let urgent = std::mem::take(&mut self.lock().urgent);
        if urgent { self.flush() } else { Ok(()) }
    }

    /// The last temporary trouble met, and how many recipients wait for a retry.
    pub fn trouble(&self) -> (Option<Trouble>, usize) {
        let s = self.lock();
        (s.last_trouble.clone(), s.retries.len())
    }

    /// Records that `entry` is not sent: its address is suppressed.
    fn skip(&self, entry: Entry) {
        tracing::debug!("skipped {}: suppressed", entry.member.email);
        self.journal().record(Mark {
            job: self.job,
            seq: entry.seq,
            state: EntryState::Skipped,
            attempts: entry.attempts,
            message_id: String::new(),
            reply: "suppressed since the job started".into(),
            at: crate::clock::stamp(),
        });
    }

    /// Stops handing out recipients; the ones in flight finish.
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.notify.notify_waiters();
        self.commit_ended.notify_waiters();
    }

    /// Stops the run when the job was cancelled (or finished) elsewhere: the recipients
    /// waiting here are dropped unsent (their rows are cancelled in the store) and the
    /// copies in flight finish. Returns whether it stopped.
    pub fn stop_if_cancelled(&self) -> Result<bool> {
        if !self.journal().job_finished()? {
            return Ok(false);
        }
        let mut s = self.lock();
        s.fresh.clear();
        s.retries.clear();
        s.exhausted = true;
        s.stopping = true;
        drop(s);
        self.notify.notify_waiters();
        Ok(true)
    }

    /// Stops the run because of `e` (the store cannot be reached, the lease ran out).
    pub fn fail(&self, e: Error) {
        let mut s = self.lock();
        s.stopping = true;
        s.failure.get_or_insert(e);
        drop(s);
        self.notify.notify_waiters();
        self.commit_ended.notify_waiters();
    }

    /// The error given to [`Queue::fail`], once.
    pub fn take_failure(&self) -> Option<Error> {
        self.lock().failure.take()
    }

    /// The error that stopped the job, if any.
    pub fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }
}

/// A commit taken for [`Queue::before_data_shared`]. Ended, its results count as committed
/// or are held again; dropped before it ends (the connection's future dropped, a panic in
/// the commit), they are held again, so no connection waits for a commit nobody will end.
struct Underway<'a> {
    queue: &'a Queue,
    commit: Option<Commit>,
}

impl Underway<'_> {
    /// Runs the commit and ends it. A quick commit (SQLite's log written, nothing synced)
    /// runs in place: it costs less than the two thread switches of handing it over.
    async fn run(mut self, quickly: bool) -> Result<()> {
        let Some(commit) = &self.commit else {
            return Ok(());
        };
        let result = if quickly {
            commit.run()
        } else if let Some(pending) = commit.start() {
            // Handed to the store's own thread: no blocking thread in between.
            pending.await
        } else {
            tokio::task::spawn_blocking(commit.apart())
                .await
                .unwrap_or_else(|e| {
                    Err(Error::Failed {
                        context: "the journal's commit failed".into(),
                        source: Box::new(e),
                    })
                })
        };
        if let Some(commit) = self.commit.take() {
            self.queue.journal().commit_ended(commit, result.is_ok());
        }
        self.queue.commit_ended.notify_waiters();
        result
    }
}

impl Drop for Underway<'_> {
    fn drop(&mut self) {
        if let Some(commit) = self.commit.take() {
            self.queue.journal().commit_ended(commit, false);
            self.queue.commit_ended.notify_waiters();
        }
    }
}

/// The next recipient that may go now: a due retry, else a fresh row, skipping (and
/// parking) recipients whose domain is paused. When a domain's pause has run out, one of
/// its recipients goes as the probe and the others wait for its outcome.
fn take_ready(s: &mut State, now: Instant, recheck: Duration) -> Option<Entry> {
    if let Some(Reverse(top)) = s.retries.peek()
        && top.due <= now
    {
        let Reverse(retry) = s.retries.pop()?;
        match held(s, &retry.entry.member.email, now, recheck) {
            Some(until) => s.retries.push(Reverse(Retry {
                due: until,
                entry: retry.entry,
            })),
            None => return Some(retry.entry),
        }
    }
    while let Some(entry) = s.fresh.pop_front() {
        match held(s, &entry.member.email, now, recheck) {
            Some(_) if s.retries.len() >= PARKED => {
                s.fresh.push_front(entry);
                return None;
            }
            Some(until) => s.retries.push(Reverse(Retry { due: until, entry })),
            None => return Some(entry),
        }
    }
    None
}

/// Until when a recipient at `email`'s domain must wait, if it must; otherwise the domain
/// lets it go (as the probe, when the domain has been paused).
fn held(s: &mut State, email: &str, now: Instant, recheck: Duration) -> Option<Instant> {
    let d = s.domains.get_mut(&domain_of(email))?;
    match d.paused_until {
        Some(until) if until > now => Some(until),
        _ if d.probing => Some(now + recheck),
        Some(_) if d.strikes > 0 => {
            d.probing = true;
            None
        }
        _ => None,
    }
}

/// When something may next be ready: the first retry, or the end of the pause holding the
/// first fresh row.
fn earliest(s: &State) -> Option<Instant> {
    let retry = s.retries.peek().map(|Reverse(r)| r.due);
    let head = s
        .fresh
        .front()
        .and_then(|e| s.domains.get(&domain_of(&e.member.email)))
        .and_then(|d| d.paused_until);
    match (retry, head) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The domain of an address, lowercase.
pub fn domain_of(email: &str) -> String {
    email
        .rsplit_once('@')
        .map_or(email, |(_, d)| d)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Journal as _, Store};

    /// A store in `dir` with a job of `members` rows, and a worker to claim them.
    fn job_of(dir: &std::path::Path, members: usize) -> (std::path::PathBuf, i64, i64) {
        let path = dir.join("s.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let job = crate::store::conformance::job_for_all(&store, members);
        let worker = store.register_worker("h", 1, 60).unwrap();
        (path, job.id, worker)
    }

    /// A queue for `connections` connections over job `job` in the store at `path`, its
    /// journal given a connection of its own by `with` (a claimer or a committer).
    fn queue_over(
        path: &std::path::Path,
        job: i64,
        worker: i64,
        connections: usize,
        with: fn(Journal, Box<dyn Store>) -> Journal,
    ) -> Arc<Queue> {
        let open = || -> Box<dyn Store> { Box::new(SqliteStore::open(path).unwrap()) };
        let journal = Journal::new(
            open(),
            job,
            worker,
            Duration::from_secs(60),
            std::time::Instant::now(),
        );
        Arc::new(Queue::new(
            with(journal, open()),
            1,
            Backoff::default(),
            connections,
        ))
    }

    /// Runs `future` on the process's kind of runtime ([`crate::runtime::Runtime`]).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        crate::runtime::Runtime::new().block_on(future).unwrap()
    }

    #[test]
    fn a_worker_taking_recipients_ahead_has_the_next_batch_claimed_before_it_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let (path, job, worker) = job_of(dir.path(), BATCH + BATCH / 2);
        let queue = queue_over(&path, job, worker, 1, Journal::with_claimer);
        block_on(async {
            // The first recipient waits for the first claim.
            assert!(queue.next().await.unwrap().is_some());
            assert!(!queue.lock().fetching);
            // The next, taken ahead while a copy goes out, starts the next claim: a worker
            // on one connection takes every recipient after the first this way.
            assert!(queue.try_next().is_some());
            let notified = queue.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            assert!(queue.lock().fetching, "no claim under way");
            notified.await;
            let s = queue.lock();
            assert_eq!(s.fresh.len(), BATCH - 2 + BATCH / 2);
            assert!(s.exhausted && !s.fetching);
        });
    }

    /// Polls `future` once.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx)))
            .await
    }

    #[test]
    fn a_commit_starts_early_once_half_the_connections_have_a_result_held() {
        let dir = tempfile::tempdir().unwrap();
        let (path, job, worker) = job_of(dir.path(), 8);
        // Four connections: a commit is worth starting early for two results.
        let queue = queue_over(&path, job, worker, 4, Journal::with_committer);
        block_on(async {
            let mut entries = Vec::new();
            for _ in 0..3 {
                entries.push(queue.next().await.unwrap().unwrap());
            }
            let accepted = || Delivery::Accepted("250 ok".into());
            // The other three connections' messages are out, their replies awaited.
            for _ in 0..3 {
                queue.reply_due();
            }
            let first = queue.record(entries.remove(0), "<1@x>", accepted());
            let mut soon = Box::pin(queue.group_filled(first));
            assert!(
                poll_once(&mut soon).await.is_pending(),
                "one result held of four connections: the commit waits for the envelope"
            );
            let second = queue.record(entries.remove(0), "<2@x>", accepted());
            queue.reply_in();
            assert!(poll_once(&mut soon).await.is_ready(), "two held: start now");
            // One commit takes both.
            queue.before_data_shared(first).await.unwrap();
            assert_eq!(queue.journal().committed(), second);
            assert!(
                poll_once(&mut Box::pin(queue.group_filled(second)))
                    .await
                    .is_ready()
            );
            // The next result alone waits again, while a reply is awaited...
            let third = queue.record(entries.remove(0), "<3@x>", accepted());
            queue.reply_in();
            let mut soon = Box::pin(queue.group_filled(third));
            assert!(poll_once(&mut soon).await.is_pending());
            // ...and no longer once none is: no result can join the commit.
            queue.reply_in();
            assert!(poll_once(&mut soon).await.is_ready(), "nobody to wait for");
            // A connection with nothing else to wait for waits a moment at most.
            queue.reply_due();
            queue.group_filled_soon(third).await;
        });
        let store = SqliteStore::open(&path).unwrap();
        let job = store.job(job).unwrap().unwrap();
        assert_eq!(
            job.progress.sent, 2,
            "the third result is held, not committed"
        );
    }

    #[test]
    fn a_commit_dropped_before_it_ends_leaves_its_results_held_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let (path, job, worker) = job_of(dir.path(), 2);
        // Commits that sync the disk go to a blocking thread, where one can be abandoned.
        let queue = queue_over(&path, job, worker, 2, |journal, committer| {
            committer
                .set_durability(crate::store::Durability::Full)
                .unwrap();
            journal.with_committer(committer)
        });
        block_on(async {
            let entry = queue.next().await.unwrap().unwrap();
            let own = queue.record(entry, "<1@x>", Delivery::Accepted("250 ok".into()));
            let mut commit = Box::pin(queue.before_data_shared(own));
            assert!(
                poll_once(&mut commit).await.is_pending(),
                "the commit runs on a blocking thread"
            );
            drop(commit);
            assert!(
                !queue.journal().is_taken(own),
                "the abandoned commit's result is held again"
            );
            // Nobody waits for the abandoned commit: the next one takes the result.
            queue.before_data_shared(own).await.unwrap();
            assert!(queue.is_committed(own));
        });
    }

    #[test]
    fn with_one_connection_a_commit_starts_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (path, job, worker) = job_of(dir.path(), 2);
        let queue = queue_over(&path, job, worker, 1, Journal::with_committer);
        block_on(async {
            let entry = queue.next().await.unwrap().unwrap();
            let own = queue.record(entry, "<1@x>", Delivery::Accepted("250 ok".into()));
            assert!(
                poll_once(&mut Box::pin(queue.group_filled(own)))
                    .await
                    .is_ready()
            );
        });
    }

    #[test]
    fn backoff_grows_and_the_cap_includes_the_jitter() {
        let b = Backoff {
            first: Duration::from_millis(100),
            longest: Duration::from_secs(1),
        };
        for _ in 0..200 {
            let d1 = b.delay(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = b.delay(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            for n in [5, 10, 30, u32::MAX] {
                let d = b.delay(n);
                assert!(d <= b.longest && d >= b.longest / 2, "{n}: {d:?}");
            }
        }
    }

    #[test]
    fn domains() {
        assert_eq!(domain_of("a@Members.Test"), "members.test");
    }
}
