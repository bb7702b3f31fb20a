//! Words for people: counts with the plural they need (`1 row`, `2 rows`); and digests
//! written out in hex.

/// `n` with `singular` or `plural`: `1 row`, `0 rows`, `2 rows`.
pub fn count(n: impl Into<u64>, singular: &str, plural: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_the_rest_plural() {
        assert_eq!(super::count(1u64, "row", "rows"), "1 row");
        assert_eq!(super::count(0u32, "row", "rows"), "0 rows");
        assert_eq!(super::count(2u8, "copy", "copies"), "2 copies");
    }
}
