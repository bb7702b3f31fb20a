//! For the library's own tests: one way to say that a test cannot run here (a server it
//! needs is missing), the same as the integration tests' (`tests/cli/harness.rs`).

/// Reports that the running test cannot do its work here, and why: a line
/// `SKIPPED test: reason` on stderr and the same in the file `MAILOUT_SKIP_LOG` names
/// (`scripts/test` counts them). Under `CI=true` the test then fails. The caller returns
/// after it.
#[track_caller]
pub(crate) fn skip(reason: &str) {
    use std::io::Write;
    // The test harness runs each test on a thread named after it.
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let ci = std::env::var("CI").as_deref() == Ok("true");
    // Straight to stderr, past the test harness's capture, so that a plain `cargo test`
    // shows it too.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    if let Some(log) = std::env::var_os("MAILOUT_SKIP_LOG") {
        let outcome = if ci { "failed" } else { "skipped" };
        let line = format!("{test}\t{reason}\t{outcome}\n");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("writing to {}: {e}", log.to_string_lossy()));
    }
    assert!(
        !ci,
        "{test} cannot run: {reason} (under CI=true a skip is a failure)"
    );
}
