//! Lines for the person at the terminal from inside the library (pre-send warnings, a
//! worker waiting for its store), written to stderr without ever failing: a closed or
//! broken stderr must not stop a send half-way, and `eprintln!` would panic on it.

/// Writes one line to stderr, ignoring errors (`eprintln!` without the panic).
macro_rules! line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use line;
