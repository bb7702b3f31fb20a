//! Progress while sending: a bar on a terminal (sent, failed, rate, time left), plain log
//! lines otherwise, nothing when asked to be quiet. While recipients wait on trouble (a
//! server that defers, a connection that fails), the line says what and how many.

use std::io::{IsTerminal, Write};
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

/// The trouble recipients wait on, for the progress line: `; 12 waiting: 451 4.7.0 …`.
fn trouble_note(queue: &Queue) -> String {
    let (trouble, waiting) = queue.trouble();
    match trouble {
        Some(t) if waiting > 0 && t.at.elapsed() < Duration::from_secs(120) => {
            let reply: String = t.reply.chars().take(100).collect();
            format!("; {waiting} waiting, last error: {reply}")
        }
        _ => String::new(),
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
                let uncertain = queue.counters.uncertain.load(Ordering::Relaxed);
                let rate = sent as f64 / start.elapsed().as_secs_f64().max(0.001);
                let trouble = trouble_note(&queue);
                let mut counts = format!("{sent} sent, {failed} failed");
                if uncertain > 0 {
                    counts.push_str(&format!(", {uncertain} uncertain"));
                }
                match &shown {
                    Some(bar) => {
                        bar.set_position(sent + failed + uncertain);
                        bar.set_message(format!("{counts}  {rate:.0}/s{trouble}"));
                    }
                    None if last_line.elapsed() >= LINE_EVERY => {
                        last_line = Instant::now();
                        let _ = writeln!(
                            std::io::stderr(),
                            "progress: {}/{pending} done, {counts}, {rate:.0}/s{trouble}",
                            sent + failed + uncertain
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

    /// Shows `line` above the bar (or as a line of its own); never fails, even when stderr
    /// is closed.
    pub fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| {
                let _ = writeln!(std::io::stderr(), "{line}");
            }),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
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
