//! Unsubscribe tokens: short, URL-safe, and HMAC-signed so that nobody can unsubscribe
//! someone else. A token names its address by a hash (the store looks it up) and carries a
//! MAC over the full address made with the organisation's secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Bytes of the address hash in a token: the store's lookup key.
pub const KEY_LEN: usize = 9;
const MAC_LEN: usize = 15;

/// The secret that signs tokens.
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

    /// The token for `address` (normalised: lowercase, trimmed): 32 URL-safe characters.
    pub fn token(&self, address: &str) -> String {
        let address = normalise(address);
        let mut raw = [0u8; KEY_LEN + MAC_LEN];
        raw[..KEY_LEN].copy_from_slice(&address_key(&address));
        raw[KEY_LEN..].copy_from_slice(&self.mac(&address)[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `token` was made by this key for `address`.
    pub fn verify(&self, token: &str, address: &str) -> bool {
        let address = normalise(address);
        let Some(raw) = decode(token) else {
            return false;
        };
        if raw[..KEY_LEN] != address_key(&address) {
            return false;
        }
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(b"mailout-unsubscribe\0");
        mac.update(address.as_bytes());
        mac.verify_truncated_left(&raw[KEY_LEN..]).is_ok()
    }

    fn mac(&self, address: &str) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(b"mailout-unsubscribe\0");
        mac.update(address.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The lookup key a token carries for `address`: the first bytes of its SHA-256.
pub fn address_key(address: &str) -> [u8; KEY_LEN] {
    let digest = Sha256::digest(normalise(address).as_bytes());
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&digest[..KEY_LEN]);
    key
}

/// The lookup key inside `token`, if it is well formed.
pub fn key_of(token: &str) -> Option<[u8; KEY_LEN]> {
    let raw = decode(token)?;
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&raw[..KEY_LEN]);
    Some(key)
}

fn decode(token: &str) -> Option<[u8; KEY_LEN + MAC_LEN]> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    bytes.try_into().ok()
}

fn normalise(address: &str) -> String {
    address.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_address_and_key() {
        let key = TokenKey::new(b"secret".to_vec());
        let token = key.token("Jo@Example.org");
        assert_eq!(token.len(), 32);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(key.verify(&token, "jo@example.org"));
        assert!(!key.verify(&token, "jo@example.net"));
        assert!(!TokenKey::new(b"other".to_vec()).verify(&token, "jo@example.org"));
        assert_eq!(key_of(&token), Some(address_key("jo@example.org")));
    }

    #[test]
    fn altered_tokens_fail() {
        let key = TokenKey::new(b"secret".to_vec());
        let token = key.token("jo@example.org");
        let mut altered: Vec<char> = token.chars().collect();
        altered[20] = if altered[20] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        assert!(!key.verify(&altered, "jo@example.org"));
        assert!(!key.verify("short", "jo@example.org"));
        assert!(key_of("!!!").is_none());
    }
}
