//! Sending (PRODUCT.md §6): a job's journal worked through by a fixed number of workers,
//! each with its own transport (one SMTP connection each), under an overall rate limit,
//! with retries and a per-domain slow-down ([`queue`]), results committed to the journal
//! before a worker moves on ([`journal`]), and a progress display ([`progress`]).
//!
//! This is the only async part of mailout; the rest is plain synchronous code.

pub mod account;
pub mod job;
pub mod journal;
pub mod progress;
pub mod proof;
pub mod queue;
pub mod report;
pub mod schedule;
pub mod seeds;
pub mod session;
pub mod smtp;
pub mod transport;
pub mod worker;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::Address;

use crate::dkim::Signer;
use crate::error::{Error, Result};
use crate::message::Mailing;
use crate::report::Reporter;
use crate::store::Entry;
use journal::Journal;
use queue::{Backoff, Queue};
use transport::{Delivery, Ready, Transport};
pub use worker::{WorkerOptions, work};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Workers (SMTP connections).
    pub concurrency: usize,
    /// Messages per second overall; 0 is unlimited.
    pub rate: u32,
    /// Attempts per recipient for temporary failures.
    pub max_attempts: u32,
    /// Retry timing.
    pub backoff: Backoff,
    /// Whether progress is reported.
    pub progress: bool,
    /// Who hears the progress and the notes of the run.
    pub report: Reporter,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Accepted in this run.
    pub sent: u64,
    /// Failed for good in this run.
    pub failed: u64,
    /// Sent in full without a reply in this run: may have been delivered.
    pub uncertain: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Whether it was interrupted (Ctrl-C) before the end.
    pub interrupted: bool,
}

/// A queue over `journal` for a run with `options`.
pub fn queue(journal: Journal, options: &RunOptions) -> Arc<Queue> {
    Arc::new(Queue::new(
        journal,
        options.max_attempts,
        options.backoff,
        options.concurrency,
    ))
}

/// Works through the rows of `queue`'s job that this worker can claim, with one transport
/// per connection from `transports`, renewing the worker's lease every `heartbeat`.
/// `pending` is how many rows are left, for the progress display. Run it on a
/// current-thread runtime: the journal is written from the workers' thread. After an error
/// the queue may still hold results to commit ([`Queue::flush`]).
#[allow(clippy::too_many_arguments)]
pub async fn run<T: Transport>(
    mailing: Arc<Mailing>,
    signer: Option<Arc<Signer>>,
    from: Address,
    queue: Arc<Queue>,
    transports: Vec<T>,
    pending: u64,
    heartbeat: Duration,
    options: &RunOptions,
) -> Result<RunStats> {
    let start = Instant::now();
    let rate = options.rate;
    let display = progress::Progress::start(
        options.report.clone(),
        options.progress,
        pending,
        Arc::clone(&queue),
    );
    let beats = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            // Every second, a look whether the job was cancelled; the lease is renewed
            // every `heartbeat`.
            let look = heartbeat.min(Duration::from_secs(1));
            let mut every = tokio::time::interval(look);
            every.tick().await;
            let beat = (heartbeat.as_millis() / look.as_millis().max(1)).max(1);
            let mut ticks: u128 = 0;
            loop {
                every.tick().await;
                match queue.stop_if_cancelled() {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => {
                        queue.fail(e);
                        return;
                    }
                }
                ticks += 1;
                if ticks.is_multiple_of(beat)
                    && let Err(e) = queue.heartbeat()
                {
                    queue.fail(e);
                    return;
                }
            }
        })
    };

    let mut workers = tokio::task::JoinSet::new();
    for transport in transports {
        workers.spawn(worker(
            Arc::clone(&queue),
            transport,
            Arc::clone(&mailing),
            signer.clone(),
            from.clone(),
            rate,
        ));
    }
    let mut interrupted = false;
    let mut first_error = None;
    loop {
        tokio::select! {
            done = workers.join_next() => match done {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    queue.stop();
                    first_error.get_or_insert(e);
                }
                Some(Err(panic)) => {
                    queue.stop();
                    first_error.get_or_insert(Error::Failed {
                        context: "a send worker failed".into(),
                        source: Box::new(panic),
                    });
                }
            },
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                display.say("stopping: waiting for the messages in flight; run the same command again to resume");
                queue.stop();
            }
        }
    }
    beats.abort();
    display.finish();
    if let Some(e) = queue.take_failure().or(first_error) {
        return Err(e);
    }
    let flushed = queue.flush();
    if let Some(reason) = queue.error() {
        return Err(Error::Smtp {
            context: "the send stopped".into(),
            source: reason.into(),
        });
    }
    flushed?;
    let counters = &queue.counters;
    Ok(RunStats {
        sent: counters.sent.load(std::sync::atomic::Ordering::Relaxed),
        failed: counters.failed.load(std::sync::atomic::Ordering::Relaxed),
        uncertain: counters
            .uncertain
            .load(std::sync::atomic::Ordering::Relaxed),
        elapsed: start.elapsed(),
        interrupted,
    })
}

/// A finished copy: its recipient's address and its bytes, or why it cannot be sent.
type Made = std::result::Result<(Address, Vec<u8>), String>;

/// The recipient a connection takes while its last copy goes out, with the Message-ID its
/// copy carries and, once made, the copy.
struct Ahead {
    entry: Entry,
    message_id: String,
    /// The envelope's recipient, when the address parses (the copy of any other fails
    /// before anything is sent).
    to: Option<Address>,
    made: Option<Made>,
}

impl Ahead {
    fn new(entry: Entry, mailing: &Mailing) -> Ahead {
        let message_id = mailing.message_id(&entry.member.email);
        let to = Address::from_str(&entry.member.email).ok();
        Ahead {
            entry,
            message_id,
            to,
            made: None,
        }
    }

    /// The copy, made now unless it was made while the last one went out.
    fn take_copy(&mut self, mailing: &Mailing, signer: Option<&Signer>) -> Made {
        match self.made.take() {
            Some(made) => made,
            None => make(mailing, signer, &self.entry),
        }
    }
}

/// `entry`'s copy, signed when there is a key.
fn make(mailing: &Mailing, signer: Option<&Signer>, entry: &Entry) -> Made {
    let recipient = entry.member.recipient();
    let to = Address::from_str(&recipient.email).map_err(|e| format!("not an address: {e}"))?;
    let copy = mailing
        .copy_for(&recipient, false)
        .map_err(|e| format!("could not build the copy: {}", e.one_line()))?;
    let bytes = match signer {
        Some(signer) => signer
            .sign(&copy.bytes)
            .map_err(|e| format!("could not sign the copy: {}", e.one_line()))?,
        None => copy.bytes,
    };
    Ok((to, bytes))
}

/// One connection's loop. While a copy's data is read by the server, the next recipient's
/// copy is made ([`Ready::sent`]), so that building and signing add no time on the wire and
/// no thread of their own: on a small machine that also runs the database and the SMTP
/// server, the runtime's one thread doing everything in turn beats handing copies between
/// threads (only an ed25519 signature's nonce is made ahead, at idle priority, by the key:
/// [`crate::dkim`]). That next recipient is held in flight and, when the run stops or its
/// domain is paused meanwhile, given back unsent.
async fn worker<T: Transport>(
    queue: Arc<Queue>,
    mut transport: T,
    mailing: Arc<Mailing>,
    signer: Option<Arc<Signer>>,
    from: Address,
    rate: u32,
) -> Result<()> {
    let signer = signer.as_deref();
    let mut ahead: Option<Ahead> = None;
    // How many results were recorded when this connection's last one was: it is committed
    // before this connection sends another message's data.
    let mut own = 0;
    // Whether this connection's message went in full and its reply is awaited (see
    // `Queue::reply_due`).
    let mut awaited = false;
    loop {
        let mut this = match ahead.take() {
            Some(next) => match queue.recheck(next.entry) {
                Some(entry) => Ahead { entry, ..next },
                None => continue,
            },
            None => match queue.next().await? {
                Some(entry) => Ahead::new(entry, &mailing),
                None => break,
            },
        };
        let outcome = match this.take_copy(&mailing, signer) {
            Err(reason) => Delivery::Permanent(reason),
            Ok((to, bytes)) => {
                if rate > 0
                    && let Err(e) = queue.wait_for_slot(rate).await
                {
                    queue.put_back(this.entry);
                    return Err(e);
                }
                ahead = queue.try_next().map(|next| Ahead::new(next, &mailing));
                // Before this copy can be accepted, every earlier result is committed and
                // the lease checked; if that fails the copy does not go, and this row stays
                // as it was.
                let mut flushed = Ok(());
                let ready = Commit {
                    queue: &queue,
                    own,
                    outcome: &mut flushed,
                    // Under a rate, the next message waits for its slot: its envelope
                    // does not go ahead of it.
                    pipeline: rate == 0,
                    next: ahead.as_mut(),
                    awaited: &mut awaited,
                    mailing: &mailing,
                    signer,
                };
                let outcome = transport.deliver(&from, &to, &bytes, ready).await;
                if let Err(e) = flushed {
                    give_back(&queue, ahead.take());
                    queue.put_back(this.entry);
                    return Err(e);
                }
                outcome
            }
        };
        own = queue.record(this.entry, &this.message_id, outcome);
        if std::mem::take(&mut awaited) {
            queue.reply_in();
        }
        if let Err(e) = queue.flush_urgent() {
            give_back(&queue, ahead.take());
            return Err(e);
        }
    }
    queue.flush()?;
    transport.close().await;
    Ok(())
}

/// A connection's earlier results committed before its next message's data
/// ([`Queue::group_filled`], [`Queue::before_data_shared`]); `outcome` says how that went.
/// Once the data has gone, the next recipient's copy is made.
struct Commit<'a> {
    queue: &'a Queue,
    own: u64,
    outcome: &'a mut Result<()>,
    /// Whether the next recipient's envelope may go with this message's data.
    pipeline: bool,
    next: Option<&'a mut Ahead>,
    /// Set once the message has gone in full and its reply is awaited.
    awaited: &'a mut bool,
    mailing: &'a Mailing,
    signer: Option<&'a Signer>,
}

impl Ready for Commit<'_> {
    fn soon(&mut self) -> impl Future<Output = ()> + Send {
        self.queue.group_filled_soon(self.own)
    }

    async fn commit(&mut self) -> bool {
        *self.outcome = self.queue.before_data_shared(self.own).await;
        self.outcome.is_ok()
    }

    fn send_while_committing(&self) -> bool {
        !self.queue.is_committed(self.own) && self.queue.replies_due() == 0
    }

    fn sent(&mut self) {
        *self.awaited = true;
        self.queue.reply_due();
        if let Some(next) = self.next.take()
            && next.made.is_none()
        {
            next.made = Some(make(self.mailing, self.signer, &next.entry));
        }
    }

    fn next_recipient(&self) -> Option<&str> {
        self.next
            .as_deref()
            .filter(|_| self.pipeline)
            .and_then(|next| next.to.as_ref())
            .map(AsRef::as_ref)
    }
}

/// Gives back a recipient taken ahead, unsent.
fn give_back(queue: &Queue, ahead: Option<Ahead>) {
    if let Some(next) = ahead {
        queue.put_back(next.entry);
    }
}
