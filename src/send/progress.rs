//! Progress while sending: a bar on a terminal (sent, failed, rate, time left), plain log
//! lines otherwise, nothing when asked to be quiet.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::queue::Queue;

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A bar on stderr.
    Bar,
    /// A line on stderr every few seconds.
    Lines,
    /// Nothing.
    Quiet,
}

impl Display {
    /// A bar when stderr is a terminal, lines otherwise.
    pub fn auto() -> Display {
        if std::io::stderr().is_terminal() {
            Display::Bar
        } else {
            Display::Lines
        }
    }
}

/// A running progress display.
pub struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Starts showing the progress of `queue` through `pending` recipients.
    pub fn start(display: Display, pending: u64, queue: Arc<Queue>) -> Progress {
        let bar = (display == Display::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(pending), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} done  {msg}  {eta} left")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        if display == Display::Quiet {
            return Progress { task: None, bar };
        }
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut last_line = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let sent = queue.counters.sent.load(Ordering::Relaxed);
                let failed = queue.counters.failed.load(Ordering::Relaxed);
                match &shown {
                    Some(bar) => {
                        let rate = sent as f64 / start.elapsed().as_secs_f64().max(0.001);
                        bar.set_position(sent + failed);
                        bar.set_message(format!("{sent} sent  {failed} failed  {rate:.0}/s"));
                    }
                    None if last_line.elapsed() >= LINE_EVERY => {
                        last_line = Instant::now();
                        let rate = sent as f64 / start.elapsed().as_secs_f64().max(0.001);
                        eprintln!(
                            "progress: {}/{pending} done, {sent} sent, {failed} failed, {rate:.0}/s",
                            sent + failed
                        );
                    }
                    None => {}
                }
            }
        });
        Progress {
            task: Some(task),
            bar,
        }
    }

    /// Stops the display.
    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
