//! Sending (PRODUCT.md §6): a job's journal worked through by a fixed number of workers,
//! each with its own transport (one SMTP connection each), under an overall rate limit,
//! with retries and a per-domain slow-down ([`queue`]), results committed to the journal
//! before a worker moves on ([`journal`]), and a progress display ([`progress`]).
//!
//! This is the only async part of mailout; the rest is plain synchronous code.

pub mod job;
pub mod journal;
pub mod progress;
pub mod queue;
pub mod smtp;
pub mod transport;

use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::Address;

use crate::dkim::Signer;
use crate::error::{Error, Result};
use crate::message::Mailing;
use journal::Journal;
use queue::{Backoff, Queue};
use transport::{Delivery, Transport};

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
    /// How progress is shown.
    pub display: progress::Display,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Accepted in this run.
    pub sent: u64,
    /// Failed for good in this run.
    pub failed: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Whether it was interrupted (Ctrl-C) before the end.
    pub interrupted: bool,
}

/// Works through the pending rows of the job behind `journal`, with one transport per
/// worker from `transports`. `pending` is how many rows are left, for the progress display.
/// Run it on a current-thread runtime: the journal is written from the workers' thread.
pub async fn run<T: Transport>(
    mailing: Arc<Mailing>,
    signer: Option<Arc<Signer>>,
    from: Address,
    journal: Journal,
    transports: Vec<T>,
    pending: u64,
    options: &RunOptions,
) -> Result<RunStats> {
    let start = Instant::now();
    let queue = Arc::new(Queue::new(journal, options.max_attempts, options.backoff));
    let limiter = NonZeroU32::new(options.rate).map(|rate| {
        Arc::new(RateLimiter::direct(
            Quota::per_second(rate).allow_burst(NonZeroU32::MIN),
        ))
    });
    let display = progress::Progress::start(options.display, pending, Arc::clone(&queue));

    let mut workers = tokio::task::JoinSet::new();
    for transport in transports {
        workers.spawn(worker(
            Arc::clone(&queue),
            transport,
            Arc::clone(&mailing),
            signer.clone(),
            from.clone(),
            limiter.clone(),
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
                    first_error.get_or_insert(Error::Usage(format!("a send worker failed: {panic}")));
                }
            },
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                eprintln!("stopping: waiting for the messages in flight; run the same command again to resume");
                queue.stop();
            }
        }
    }
    display.finish();
    let flushed = queue.flush();
    if let Some(reason) = queue.error() {
        return Err(Error::Usage(format!("the send stopped: {reason}")));
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    flushed?;
    let counters = &queue.counters;
    Ok(RunStats {
        sent: counters.sent.load(std::sync::atomic::Ordering::Relaxed),
        failed: counters.failed.load(std::sync::atomic::Ordering::Relaxed),
        elapsed: start.elapsed(),
        interrupted,
    })
}

async fn worker<T: Transport>(
    queue: Arc<Queue>,
    mut transport: T,
    mailing: Arc<Mailing>,
    signer: Option<Arc<Signer>>,
    from: Address,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
) -> Result<()> {
    while let Some(entry) = queue.next().await? {
        let recipient = entry.member.recipient();
        let message_id = mailing.message_id(&recipient.email);
        let built = Address::from_str(&recipient.email)
            .map_err(|e| format!("not an address: {e}"))
            .and_then(|to| {
                let copy = mailing
                    .copy_for(&recipient, false)
                    .map_err(|e| format!("could not build the copy: {e}"))?;
                let bytes = match &signer {
                    Some(signer) => signer
                        .sign(&copy.bytes)
                        .map_err(|e| format!("could not sign the copy: {e}"))?,
                    None => copy.bytes,
                };
                Ok((to, bytes))
            });
        let outcome = match built {
            Err(reason) => Delivery::Permanent(reason),
            Ok((to, bytes)) => {
                if let Some(limiter) = &limiter {
                    limiter.until_ready().await;
                }
                // Before this copy can be accepted, every earlier result is committed.
                let mut flushed = Ok(());
                let ready = async { flushed = queue.flush() };
                let outcome = transport.deliver(&from, &to, &bytes, ready).await;
                flushed?;
                outcome
            }
        };
        queue.record(entry, &message_id, outcome);
    }
    queue.flush()?;
    transport.close().await;
    Ok(())
}
