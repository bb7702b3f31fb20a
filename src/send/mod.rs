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

    let (maker, making) = Maker::start(Arc::clone(&mailing), signer)?;
    let mut workers = tokio::task::JoinSet::new();
    for transport in transports {
        workers.spawn(worker(
            Arc::clone(&queue),
            transport,
            Arc::clone(&mailing),
            maker.clone(),
            from.clone(),
            rate,
        ));
    }
    drop(maker);
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
    // Every worker, and so every handle on the maker, is gone: its thread has ended or is
    // finishing its last copy.
    let _ = making.join();
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

/// A copy being made: its recipient's address and the finished (signed) bytes, or why it
/// cannot be sent.
type Making = tokio::sync::oneshot::Receiver<Made>;

/// A finished copy: its recipient's address and its bytes, or why it cannot be sent.
type Made = std::result::Result<(Address, Vec<u8>), String>;

/// What the maker's thread is asked: a recipient, and where its copy goes.
type Job = (
    crate::recipient::Recipient,
    tokio::sync::oneshot::Sender<Made>,
);

/// Makes copies on a thread of its own, in the order asked: personalising and signing cost
/// CPU that would otherwise hold up every connection of the run, and one thread beside the
/// runtime's is what a small machine that also runs the database and the SMTP server has to
/// spare (a thread per copy would take the runtime's share).
#[derive(Clone)]
struct Maker {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Maker {
    /// The maker's thread, which ends when every [`Maker`] is dropped.
    fn start(
        mailing: Arc<Mailing>,
        signer: Option<Arc<Signer>>,
    ) -> Result<(Maker, std::thread::JoinHandle<()>)> {
        let (jobs, asked) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("mailout-copies".into())
            .spawn(move || {
                for (recipient, reply) in asked {
                    let _ = reply.send(make(&mailing, signer.as_deref(), &recipient));
                }
            })
            .map_err(|e| Error::Io {
                context: "could not start the thread that makes copies".into(),
                path: None,
                source: e,
            })?;
        Ok((Maker { jobs }, thread))
    }

    /// Starts making `entry`'s copy; its Message-ID now.
    fn make(&self, entry: &Entry, mailing: &Mailing) -> (String, Making) {
        let recipient = entry.member.recipient();
        let message_id = mailing.message_id(&recipient.email);
        let (reply, making) = tokio::sync::oneshot::channel();
        // A maker that has stopped drops `reply`: [`finish`] says so.
        let _ = self.jobs.send((recipient, reply));
        (message_id, making)
    }
}

/// `recipient`'s copy, signed when there is a key.
fn make(
    mailing: &Mailing,
    signer: Option<&Signer>,
    recipient: &crate::recipient::Recipient,
) -> Made {
    let to = Address::from_str(&recipient.email).map_err(|e| format!("not an address: {e}"))?;
    let copy = mailing
        .copy_for(recipient, false)
        .map_err(|e| format!("could not build the copy: {}", e.one_line()))?;
    let bytes = match signer {
        Some(signer) => signer
            .sign(&copy.bytes)
            .map_err(|e| format!("could not sign the copy: {}", e.one_line()))?,
        None => copy.bytes,
    };
    Ok((to, bytes))
}

/// The copy `making` makes.
async fn finish(making: Making) -> Made {
    making.await.unwrap_or_else(|_| {
        Err("could not build the copy: the thread making copies stopped".into())
    })
}

/// One connection's loop. While a copy goes out, the next recipient's copy is made on
/// another thread, so that building and signing add no time on the wire; that next
/// recipient is held in flight and, when the run stops or its domain is paused meanwhile,
/// given back unsent.
async fn worker<T: Transport>(
    queue: Arc<Queue>,
    mut transport: T,
    mailing: Arc<Mailing>,
    maker: Maker,
    from: Address,
    rate: u32,
) -> Result<()> {
    let mut ahead: Option<(Entry, String, Making)> = None;
    // How many results were recorded when this connection's last one was: it is committed
    // before this connection sends another message's data.
    let mut own = 0;
    loop {
        let (entry, message_id, making) = match ahead.take() {
            Some((entry, message_id, making)) => match queue.recheck(entry) {
                Some(entry) => (entry, message_id, making),
                None => {
                    drop(making);
                    continue;
                }
            },
            None => match queue.next().await? {
                Some(entry) => {
                    let (message_id, making) = maker.make(&entry, &mailing);
                    (entry, message_id, making)
                }
                None => break,
            },
        };
        let outcome = match finish(making).await {
            Err(reason) => Delivery::Permanent(reason),
            Ok((to, bytes)) => {
                if rate > 0
                    && let Err(e) = queue.wait_for_slot(rate).await
                {
                    queue.put_back(entry);
                    return Err(e);
                }
                ahead = queue.try_next().map(|next| {
                    let (message_id, making) = maker.make(&next, &mailing);
                    (next, message_id, making)
                });
                // Before this copy can be accepted, every earlier result is committed and
                // the lease checked; if that fails the copy does not go, and this row stays
                // as it was.
                let mut flushed = Ok(());
                let ready = Commit {
                    queue: &queue,
                    own,
                    outcome: &mut flushed,
                };
                let outcome = transport.deliver(&from, &to, &bytes, ready).await;
                if let Err(e) = flushed {
                    give_back(&queue, ahead.take());
                    queue.put_back(entry);
                    return Err(e);
                }
                outcome
            }
        };
        own = queue.record(entry, &message_id, outcome);
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
struct Commit<'a> {
    queue: &'a Queue,
    own: u64,
    outcome: &'a mut Result<()>,
}

impl Ready for Commit<'_> {
    fn soon(&mut self) -> impl Future<Output = ()> + Send {
        self.queue.group_filled(self.own)
    }

    async fn commit(self) -> bool {
        *self.outcome = self.queue.before_data_shared(self.own).await;
        self.outcome.is_ok()
    }
}

/// Gives back a recipient taken ahead, unsent.
fn give_back(queue: &Queue, ahead: Option<(Entry, String, Making)>) {
    if let Some((entry, _, making)) = ahead {
        drop(making);
        queue.put_back(entry);
    }
}
