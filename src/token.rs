//! Member tokens (unsubscribe links, the mailto subject): URL-safe, fixed length, and
//! made only with the organisation's secret, so that a token reveals nothing about its
//! member to anyone without it.
//!
//! A token is 43 characters of URL-safe base64 over 32 bytes: a 16-byte *lookup key*,
//! HMAC-SHA-256 of the address under the secret (the store finds the member by it), and a
//! 16-byte MAC over the address and the token's purpose. Without the secret nothing in a
//! token can be computed from an address, so holding a token does not let anyone test a
//! guessed address. Tokens are compared exactly (no trimming, no other encoding) and the
//! MAC in constant time.
//!
//! Tokens of the first form (32 characters: an unkeyed hash of the address, then a MAC)
//! went out in copies sent before this version. They are still honoured until
//! [`LEGACY_UNTIL`], so that a member can use the link in an older bulletin; new copies
//! never carry them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Bytes of the lookup key in a token.
pub const KEY_LEN: usize = 16;
const MAC_LEN: usize = 16;
/// Characters in a token.
pub const TOKEN_LEN: usize = 43;

/// Bytes of the address hash in a token of the first form.
pub const LEGACY_KEY_LEN: usize = 9;
const LEGACY_MAC_LEN: usize = 15;
/// Characters in a token of the first form.
pub const LEGACY_TOKEN_LEN: usize = 32;
/// Tokens of the first form are honoured until the end of this day (UTC).
pub const LEGACY_UNTIL: &str = "2027-05-31";

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Unsubscribe from every bulletin.
    Unsubscribe,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Unsubscribe => b"mailout-unsubscribe-v2\0",
        }
    }
}

/// A token taken apart: how the store finds its member, and the rest to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A current token: the member whose lookup key is this.
    Key([u8; KEY_LEN]),
    /// A token of the first form: the member whose address hash is this.
    Legacy([u8; LEGACY_KEY_LEN]),
}

/// The secret that makes and checks tokens.
#[derive(Clone)]
pub struct TokenKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

impl TokenKey {
    /// A key from secret bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        TokenKey {
            secret: secret.into(),
        }
    }

    fn hmac(&self, label: &[u8], address: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(label);
        mac.update(normalise(address).as_bytes());
        mac
    }

    /// The key a preferences page's forms carry for `token`: only a page this server made
    /// has it, so a form posted from another site changes nothing.
    pub fn form_key(&self, token: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(b"mailout-preferences-form-v1\0");
        mac.update(token.as_bytes());
        crate::text::hex(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `given` is [`TokenKey::form_key`] of `token` (compared in constant time).
    pub fn form_key_matches(&self, token: &str, given: &str) -> bool {
        let want = self.form_key(token);
        want.len() == given.len()
            && want
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The lookup key of `address` (normalised: lowercase, trimmed): what the store keeps
    /// to find a member by token.
    pub fn lookup_key(&self, address: &str) -> [u8; KEY_LEN] {
        let digest = self
            .hmac(b"mailout-lookup-v2\0", address)
            .finalize()
            .into_bytes();
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&digest[..KEY_LEN]);
        key
    }

    /// `member` with the keys the store finds their tokens by.
    pub fn keyed(&self, member: crate::store::Member) -> crate::store::KeyedMember {
        crate::store::KeyedMember {
            lookup_key: self.lookup_key(&member.email).to_vec(),
            legacy_key: legacy_key(&member.email).to_vec(),
            origin: None,
            member,
        }
    }

    /// A short fingerprint of the secret, kept in the store to notice that the secret has
    /// changed (the lookup keys are then made again).
    pub fn fingerprint(&self) -> Vec<u8> {
        self.hmac(b"mailout-fingerprint-v2\0", "")
            .finalize()
            .into_bytes()[..16]
            .to_vec()
    }

    /// The unsubscribe token for `address`.
    pub fn token(&self, address: &str) -> String {
        self.token_for(address, Purpose::Unsubscribe)
    }

    /// The token for `address` and `purpose`: [`TOKEN_LEN`] URL-safe characters.
    pub fn token_for(&self, address: &str, purpose: Purpose) -> String {
        let mut raw = [0u8; KEY_LEN + MAC_LEN];
        raw[..KEY_LEN].copy_from_slice(&self.lookup_key(address));
        let mac = self.hmac(purpose.label(), address).finalize().into_bytes();
        raw[KEY_LEN..].copy_from_slice(&mac[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `token` was made by this key for `address` and `purpose` (a token of the
    /// first form only until [`LEGACY_UNTIL`], `today` being an RFC 3339 date or time).
    pub fn verify(&self, token: &str, address: &str, purpose: Purpose, today: &str) -> bool {
        match decode(token) {
            Some(Decoded::Current(raw)) => {
                // The key part is checked as a MAC too, so nothing is compared by `==`.
                let key_ok = self
                    .hmac(b"mailout-lookup-v2\0", address)
                    .verify_truncated_left(&raw[..KEY_LEN])
                    .is_ok();
                let mac_ok = self
                    .hmac(purpose.label(), address)
                    .verify_truncated_left(&raw[KEY_LEN..])
                    .is_ok();
                key_ok & mac_ok
            }
            Some(Decoded::Legacy(raw)) => {
                purpose == Purpose::Unsubscribe
                    && legacy_allowed(today)
                    && raw[..LEGACY_KEY_LEN] == legacy_key(address)
                    && self
                        .hmac(b"mailout-unsubscribe\0", address)
                        .verify_truncated_left(&raw[LEGACY_KEY_LEN..])
                        .is_ok()
            }
            None => false,
        }
    }
}

/// Whether tokens of the first form are still honoured on `today` (RFC 3339).
pub fn legacy_allowed(today: &str) -> bool {
    today.get(..10).is_some_and(|day| day <= LEGACY_UNTIL)
}

/// The address hash a token of the first form carries (unkeyed: why that form is retired).
pub fn legacy_key(address: &str) -> [u8; LEGACY_KEY_LEN] {
    let digest = Sha256::digest(normalise(address).as_bytes());
    let mut key = [0u8; LEGACY_KEY_LEN];
    key.copy_from_slice(&digest[..LEGACY_KEY_LEN]);
    key
}

/// How the store finds the member of `token`, if it is well formed. Exact: no spaces,
/// padding or other base64 alphabets are accepted.
pub fn lookup(token: &str) -> Option<Lookup> {
    match decode(token)? {
        Decoded::Current(raw) => {
            let mut key = [0u8; KEY_LEN];
            key.copy_from_slice(&raw[..KEY_LEN]);
            Some(Lookup::Key(key))
        }
        Decoded::Legacy(raw) => {
            let mut key = [0u8; LEGACY_KEY_LEN];
            key.copy_from_slice(&raw[..LEGACY_KEY_LEN]);
            Some(Lookup::Legacy(key))
        }
    }
}

enum Decoded {
    Current([u8; KEY_LEN + MAC_LEN]),
    Legacy([u8; LEGACY_KEY_LEN + LEGACY_MAC_LEN]),
}

fn decode(token: &str) -> Option<Decoded> {
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    match token.len() {
        TOKEN_LEN => URL_SAFE_NO_PAD
            .decode(token)
            .ok()?
            .try_into()
            .ok()
            .map(Decoded::Current),
        LEGACY_TOKEN_LEN => URL_SAFE_NO_PAD
            .decode(token)
            .ok()?
            .try_into()
            .ok()
            .map(Decoded::Legacy),
        _ => None,
    }
}

fn normalise(address: &str) -> String {
    address.trim().to_lowercase()
}

/// The token of the first form for `address` under `key`, as copies sent before this
/// version carried it (for tests of the transition).
pub fn legacy_token(key: &TokenKey, address: &str) -> String {
    let mut raw = [0u8; LEGACY_KEY_LEN + LEGACY_MAC_LEN];
    raw[..LEGACY_KEY_LEN].copy_from_slice(&legacy_key(address));
    let mac = key
        .hmac(b"mailout-unsubscribe\0", address)
        .finalize()
        .into_bytes();
    raw[LEGACY_KEY_LEN..].copy_from_slice(&mac[..LEGACY_MAC_LEN]);
    URL_SAFE_NO_PAD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = "2026-11-30";

    #[test]
    fn tokens_verify_only_for_their_address_key_and_purpose() {
        let key = TokenKey::new(b"secret".to_vec());
        let token = key.token("Jo@Example.org");
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let u = Purpose::Unsubscribe;
        assert!(key.verify(&token, "jo@example.org", u, TODAY));
        assert!(!key.verify(&token, "jo@example.net", u, TODAY));
        assert!(!TokenKey::new(b"other".to_vec()).verify(&token, "jo@example.org", u, TODAY));
        assert_eq!(
            lookup(&token),
            Some(Lookup::Key(key.lookup_key("jo@example.org")))
        );
    }

    #[test]
    fn altered_or_padded_tokens_fail() {
        let key = TokenKey::new(b"secret".to_vec());
        let token = key.token("jo@example.org");
        let u = Purpose::Unsubscribe;
        for i in 0..token.len() {
            let mut altered: Vec<char> = token.chars().collect();
            altered[i] = if altered[i] == 'A' { 'B' } else { 'A' };
            let altered: String = altered.into_iter().collect();
            assert!(!key.verify(&altered, "jo@example.org", u, TODAY), "{i}");
        }
        for padded in [
            format!(" {token}"),
            format!("{token} "),
            format!("%20{token}%20"),
            format!("{token}="),
            token.replace('-', "+"),
            token[..TOKEN_LEN - 1].to_string(),
        ] {
            if padded != token {
                assert!(!key.verify(&padded, "jo@example.org", u, TODAY), "{padded}");
                assert!(lookup(&padded).is_none() || padded.len() == TOKEN_LEN);
            }
        }
        assert!(!key.verify("short", "jo@example.org", u, TODAY));
        assert!(lookup("!!!").is_none());
    }

    #[test]
    fn nothing_in_a_token_is_computable_from_the_address_alone() {
        let address = "jo@example.org";
        let a = TokenKey::new(b"secret one".to_vec()).token(address);
        let b = TokenKey::new(b"secret two".to_vec()).token(address);
        let (a, b) = (
            URL_SAFE_NO_PAD.decode(a).unwrap(),
            URL_SAFE_NO_PAD.decode(b).unwrap(),
        );
        // The same address under two secrets: every part differs, so no part is a function
        // of the address alone.
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same <= 4, "{same} equal bytes of 32");
        let hash = Sha256::digest(address.as_bytes());
        for window in a.windows(4) {
            assert!(!hash.windows(4).any(|h| h == window));
        }
    }

    #[test]
    fn two_members_tokens_share_no_part_a_guess_could_test() {
        let key = TokenKey::new(b"secret".to_vec());
        let a = URL_SAFE_NO_PAD.decode(key.token("jo@example.org")).unwrap();
        let b = URL_SAFE_NO_PAD.decode(key.token("jo@example.net")).unwrap();
        // Addresses that differ in one letter: the tokens differ all through (a byte may
        // match by chance, one time in 256), unlike an unkeyed hash prefix or an id.
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same <= 4, "{same} equal bytes of 32");
        assert_ne!(a[..KEY_LEN], b[..KEY_LEN]);
    }

    #[test]
    fn legacy_tokens_are_honoured_until_the_end_of_the_transition() {
        let key = TokenKey::new(b"secret".to_vec());
        let old = legacy_token(&key, "jo@example.org");
        assert_eq!(old.len(), LEGACY_TOKEN_LEN);
        let u = Purpose::Unsubscribe;
        assert!(key.verify(&old, "jo@example.org", u, "2027-05-31T23:59:59Z"));
        assert!(!key.verify(&old, "jo@example.org", u, "2027-06-01"));
        assert!(!key.verify(&old, "jo@example.net", u, TODAY));
        assert_eq!(
            lookup(&old),
            Some(Lookup::Legacy(legacy_key("jo@example.org")))
        );
    }
}
