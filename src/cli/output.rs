//! Printing for the command line: lines that never panic on a closed pipe
//! (`mailout members list | head -1`), tables whose cells are cleaned and cut to a
//! readable width (a member's 1 MB name, a NUL, a right-to-left override or a line break
//! cannot break the layout or the terminal), small wording helpers, and [`Terminal`], the
//! library's reporter (its warnings and a send's progress on stderr).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mailout::report::{Progress, Report};

/// Set once a write to stdout failed for a reason other than a closed pipe.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout. A reader that went away (a closed pipe) is not an error:
/// the rest of the output is dropped and the command finishes as it would have; any other
/// failure is remembered for [`stdout_failed`].
macro_rules! outln {
    () => {
        $crate::cli::output::write_out(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*))
    };
}

/// Writes one line to stderr, ignoring failures (`eprintln!` panics on them).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {errln, outln};

/// Writes `args` and a newline to stdout (see [`outln!`]).
pub fn write_out(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n"))
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        STDOUT_FAILED.store(true, Ordering::Relaxed);
    }
}

/// Writes raw bytes to stdout (`archive show --raw`), with [`write_out`]'s rules.
pub fn write_raw(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        STDOUT_FAILED.store(true, Ordering::Relaxed);
    }
}

/// Whether writing to stdout failed (a full disk, say), which makes the command fail.
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// The widest a table cell is shown (in characters); longer values end in `…`.
pub const CELL_WIDTH: usize = 60;
/// The widest the last column is shown.
pub const LAST_CELL_WIDTH: usize = 200;

/// `value` made safe to show in one cell: control characters become `?`, characters that
/// reorder text (bidirectional overrides and marks) are shown as `<U+202E>`, and anything
/// past `width` characters is cut with `…`.
pub fn cell(value: &str, width: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for c in value.chars() {
        let piece: std::borrow::Cow<'_, str> = if is_bidi_control(c) {
            format!("<U+{:04X}>", c as u32).into()
        } else if c.is_control() {
            "?".into()
        } else {
            c.to_string().into()
        };
        let len = piece.chars().count();
        if shown + len > width {
            out.push('…');
            return out;
        }
        out.push_str(&piece);
        shown += len;
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Prints rows as aligned columns (the first row is the header), every cell cleaned and
/// cut by [`cell`].
pub fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let cleaned: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(c, v)| {
                    let width = if c + 1 == columns {
                        LAST_CELL_WIDTH
                    } else {
                        CELL_WIDTH
                    };
                    cell(v, width)
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cleaned
                .iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &cleaned {
        let mut line = String::new();
        for (c, value) in row.iter().enumerate() {
            line.push_str(value);
            if c + 1 < row.len() {
                let pad = widths[c].saturating_sub(value.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        outln!("{}", line.trim_end());
    }
}

pub use mailout::text::count;

/// The date part of an RFC 3339 timestamp.
pub fn day(date: Option<&str>) -> String {
    date.map(|d| d.get(..10).unwrap_or(d).to_string())
        .unwrap_or_default()
}

/// How often a send's progress is written as a line when stderr is not a terminal.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);

/// The command line's [`Report`]: the library's lines on stderr, never failing on a
/// closed pipe; a send's progress as a bar when stderr is a terminal (the lines printed
/// above it), else as a line every few seconds.
pub struct Terminal {
    is_terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    last_line: Mutex<Option<Instant>>,
}

impl Terminal {
    /// A reporter for this process's stderr.
    pub fn new() -> Terminal {
        Terminal {
            is_terminal: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            last_line: Mutex::new(None),
        }
    }
}

/// `sent, failed[, uncertain]` and what recipients wait on, as the progress shows them.
fn progress_words(p: &Progress) -> (String, String) {
    let mut counts = format!("{} sent, {} failed", p.sent, p.failed);
    if p.uncertain > 0 {
        counts.push_str(&format!(", {} uncertain", p.uncertain));
    }
    let trouble = match &p.waiting {
        Some((waiting, reply)) => format!("; {waiting} waiting, last error: {reply}"),
        None => String::new(),
    };
    (counts, trouble)
}

impl Report for Terminal {
    fn line(&self, line: &str) {
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match &*bar {
            Some(bar) => bar.suspend(|| errln!("{line}")),
            None => errln!("{line}"),
        }
    }

    fn progress(&self, p: &Progress) {
        let (counts, trouble) = progress_words(p);
        if self.is_terminal {
            let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
            let bar = bar.get_or_insert_with(|| {
                let bar =
                    ProgressBar::with_draw_target(Some(p.total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} done  {msg}  {eta} left")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            });
            bar.set_position(p.done);
            bar.set_message(format!("{counts}  {:.0}/s{trouble}", p.rate));
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            // The first line comes a few seconds in, as every later one.
            None => *last = Some(Instant::now()),
            Some(at) if at.elapsed() >= PROGRESS_LINE_EVERY => {
                *last = Some(Instant::now());
                errln!(
                    "progress: {}/{} done, {counts}, {:.0}/s{trouble}",
                    p.done,
                    p.total,
                    p.rate
                );
            }
            Some(_) => {}
        }
    }

    fn progress_done(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
        *self.last_line.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Prints `error: …` and one `caused by: …` per source; file problems print in full first.
pub fn report(error: &mailout::Error) {
    for d in error.diagnostics() {
        errln!("{d}");
    }
    errln!("error: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        errln!("caused by: {cause}");
        source = cause.source();
    }
}

/// Logging to stderr, at the level `-v` asks for (or `MAILOUT_LOG`'s).
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cleaned_and_cut() {
        assert_eq!(cell("a\nb\0c", 10), "a?b?c");
        assert_eq!(cell("x\u{202E}y", 20), "x<U+202E>y");
        assert_eq!(cell(&"n".repeat(100_000), 5), "nnnnn…");
        assert_eq!(cell("ok", 2), "ok");
    }
}
