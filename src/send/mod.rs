//! Sending (PRODUCT.md §6): a job's journal worked through by a fixed number of workers,
//! each with its own transport (one SMTP connection each), under an overall rate limit,
//! with retries and a per-domain slow-down ([`queue`]), results committed to the journal
//! before a worker moves on ([`journal`]), and a progress display ([`progress`]).
//!
//! This is the only async part of mailout; the rest is plain synchronous code.

pub mod job;
pub mod journal;
pub mod progress;
pub mod proof;
pub mod queue;
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
use transport::{Delivery, Transport};
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
            let mut every = tokio::time::interval(heartbeat);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(e) = queue.heartbeat() {
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

/// A copy being made on a blocking thread: its recipient's address and the finished
/// (signed) bytes, or why it cannot be sent.
type Making = tokio::task::JoinHandle<std::result::Result<(Address, Vec<u8>), String>>;

/// Starts making `entry`'s copy off the runtime's thread: personalising and signing cost
/// CPU that would otherwise hold up every connection of the run.
fn make_copy(
    entry: &Entry,
    mailing: &Arc<Mailing>,
    signer: &Option<Arc<Signer>>,
) -> (String, Making) {
    let recipient = entry.member.recipient();
    let message_id = mailing.message_id(&recipient.email);
    let mailing = Arc::clone(mailing);
    let signer = signer.clone();
    let making = tokio::task::spawn_blocking(move || {
        let to = Address::from_str(&recipient.email).map_err(|e| format!("not an address: {e}"))?;
        let copy = mailing
            .copy_for(&recipient, false)
            .map_err(|e| format!("could not build the copy: {}", e.one_line()))?;
        let bytes = match &signer {
            Some(signer) => signer
                .sign(&copy.bytes)
                .map_err(|e| format!("could not sign the copy: {}", e.one_line()))?,
            None => copy.bytes,
        };
        Ok((to, bytes))
    });
    (message_id, making)
}

/// The copy `making` makes; a thread that died making it is that copy's failure.
async fn finish(making: Making) -> std::result::Result<(Address, Vec<u8>), String> {
    making
        .await
        .unwrap_or_else(|e| Err(format!("could not build the copy: {e}")))
}

/// One connection's loop. While a copy goes out, the next recipient's copy is made on
/// another thread, so that building and signing add no time on the wire; that next
/// recipient is held in flight and, when the run stops or its domain is paused meanwhile,
/// given back unsent.
async fn worker<T: Transport>(
    queue: Arc<Queue>,
    mut transport: T,
    mailing: Arc<Mailing>,
    signer: Option<Arc<Signer>>,
    from: Address,
    rate: u32,
) -> Result<()> {
    let mut ahead: Option<(Entry, String, Making)> = None;
    loop {
        let (entry, message_id, making) = match ahead.take() {
            Some((entry, message_id, making)) => match queue.recheck(entry) {
                Some(entry) => (entry, message_id, making),
                None => {
                    making.abort();
                    continue;
                }
            },
            None => match queue.next().await? {
                Some(entry) => {
                    let (message_id, making) = make_copy(&entry, &mailing, &signer);
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
                    let (message_id, making) = make_copy(&next, &mailing, &signer);
                    (next, message_id, making)
                });
                // Before this copy can be accepted, every earlier result is committed and
                // the lease checked; if that fails the copy does not go, and this row stays
                // as it was.
                let mut flushed = Ok(());
                let ready = async {
                    flushed = queue.before_data_shared().await;
                    flushed.is_ok()
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
        queue.record(entry, &message_id, outcome);
        if let Err(e) = queue.flush_urgent() {
            give_back(&queue, ahead.take());
            return Err(e);
        }
    }
    queue.flush()?;
    transport.close().await;
    Ok(())
}

/// Gives back a recipient taken ahead, unsent.
fn give_back(queue: &Queue, ahead: Option<(Entry, String, Making)>) {
    if let Some((entry, _, making)) = ahead {
        making.abort();
        queue.put_back(entry);
    }
}
