//! The one place that reads the wall clock or asks for random bytes, so that everything else
//! is deterministic and tests can pin time with `SOURCE_DATE_EPOCH` (the reproducible-builds
//! convention: seconds since 1970).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Now, or the instant in `SOURCE_DATE_EPOCH` when it is set.
pub fn now() -> Timestamp {
    if let Some(pinned) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| Timestamp::from_second(secs).ok())
    {
        return pinned;
    }
    #[allow(clippy::disallowed_methods)]
    Timestamp::now()
}

/// Now (or the pinned instant) as a `SystemTime`, to the second: for a Date header.
pub fn system_time() -> std::time::SystemTime {
    let seconds = now().as_second().max(0).unsigned_abs();
    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
}

/// The real time in Unix seconds, never pinned: for leases and rate slots shared between
/// processes, which must run on the same clock whatever `SOURCE_DATE_EPOCH` says.
pub fn real_unix_seconds() -> f64 {
    #[allow(clippy::disallowed_methods)]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The real time (never pinned) as an RFC 3339 UTC timestamp to the second: for what is
/// compared with another machine's clock, such as when a mailbox's server stored a copy.
pub fn real_stamp() -> String {
    Timestamp::from_second(real_unix_seconds() as i64)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Now as an RFC 3339 UTC timestamp to the second (`2026-11-23T09:12:05Z`), for the store.
pub fn stamp() -> String {
    now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Today's date in the local time zone (UTC when it cannot be found).
pub fn today() -> Date {
    let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
    now().to_zoned(tz).date()
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_bytes_differ() {
        let a = super::random_bytes::<16>().unwrap();
        let b = super::random_bytes::<16>().unwrap();
        assert_ne!(a, b);
    }
}
