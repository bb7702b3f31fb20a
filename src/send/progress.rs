//! Progress while sending: a few times a second, how many are done, sent and failed, the
//! rate, and, while recipients wait on trouble (a server that defers, a connection that
//! fails), what and how many, told to the run's [`Report`]. The caller shows it (the
//! command line: a bar on a terminal, a line every few seconds otherwise).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::queue::Queue;
use crate::report::{self, Reporter};

/// How often progress is reported.
const EVERY: Duration = Duration::from_millis(200);

/// How long a trouble stays in the report after it was last seen.
const TROUBLE_SHOWN: Duration = Duration::from_secs(120);

/// The trouble recipients wait on: how many wait, and the last error (at most 100
/// characters).
fn waiting(queue: &Queue) -> Option<(usize, String)> {
    let (trouble, waiting) = queue.trouble();
    match trouble {
        Some(t) if waiting > 0 && t.at.elapsed() < TROUBLE_SHOWN => {
            Some((waiting, t.reply.chars().take(100).collect()))
        }
        _ => None,
    }
}

/// A running progress report.
pub struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    report: Reporter,
}

impl Progress {
    /// Starts reporting the progress of `queue` through `pending` recipients to `report`
    /// (with `shown` false, only [`Progress::say`] lines go to it).
    pub fn start(report: Reporter, shown: bool, pending: u64, queue: Arc<Queue>) -> Progress {
        if !shown {
            return Progress { task: None, report };
        }
        let to = report.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(EVERY);
            loop {
                tick.tick().await;
                let sent = queue.counters.sent.load(Ordering::Relaxed);
                let failed = queue.counters.failed.load(Ordering::Relaxed);
                let uncertain = queue.counters.uncertain.load(Ordering::Relaxed);
                to.progress(&report::Progress {
                    done: sent + failed + uncertain,
                    total: pending,
                    sent,
                    failed,
                    uncertain,
                    rate: sent as f64 / start.elapsed().as_secs_f64().max(0.001),
                    waiting: waiting(&queue),
                });
            }
        });
        Progress {
            task: Some(task),
            report,
        }
    }

    /// Tells the reporter `line` (above the bar, on a terminal).
    pub fn say(&self, line: &str) {
        self.report.line(line);
    }

    /// Stops reporting.
    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
            self.report.progress_done();
        }
    }
}
