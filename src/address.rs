//! Addresses and personal values, cleaned the same way wherever they come from (a member
//! CSV, a bounce report, a proof's `--to`) and wherever they go (the store, a header).

use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Normalises an address for storage and comparison: trimmed and lowercased. Returns `None`
/// when it is not a deliverable address (`user@domain.tld`).
pub fn normalise_address(raw: &str) -> Option<String> {
    let address = raw.trim().trim_start_matches("mailto:").to_lowercase();
    let parsed = lettre::Address::from_str(&address).ok()?;
    let domain = parsed.domain();
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
    domain_ok.then_some(address)
}

/// A personal value made safe for a header or a single line: control characters (CR, LF,
/// tabs, NUL) become spaces and runs of spaces collapse.
pub fn clean(value: &str) -> String {
    let tidy = !value.chars().any(char::is_control)
        && !value.contains("  ")
        && value.trim().len() == value.len();
    if tidy {
        return value.to_string();
    }
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The hash part of the Message-ID of `address`'s copy of bulletin `number` of the series
/// `series_slug` (20 hex digits): the same for every run, and for the archive to recognise
/// which copy a received message is.
pub fn message_id_hash(series_slug: &str, number: u32, address: &str) -> String {
    let digest = Sha256::new()
        .chain_update(series_slug)
        .chain_update([0])
        .chain_update(number.to_be_bytes())
        .chain_update(address.trim().to_lowercase())
        .finalize();
    crate::text::hex(&digest[..10])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        assert_eq!(
            normalise_address("  Jo.Bloggs@Members.Test "),
            Some("jo.bloggs@members.test".into())
        );
        assert_eq!(
            normalise_address("mailto:a@b.example"),
            Some("a@b.example".into())
        );
        for bad in [
            "",
            "jo",
            "jo@",
            "@x.example",
            "jo@localhost",
            "jo@x..example",
            "a b@x.example",
            "jo@x.example\r\nBcc: y@z.example",
        ] {
            assert_eq!(normalise_address(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn clean_removes_line_breaks() {
        assert_eq!(clean("Jo\r\nBcc: x@y"), "Jo Bcc: x@y");
        assert_eq!(clean(" a\t b "), "a b");
        assert_eq!(clean("Zoë Ní Bhriain"), "Zoë Ní Bhriain");
    }
}
