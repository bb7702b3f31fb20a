//! DKIM signatures on the final bytes of each copy (mail-auth): relaxed/relaxed, rsa-sha256
//! or ed25519, over the headers PRODUCT.md §4 names. lettre's own signer is not used: its
//! `simple` header canonicalisation never verifies, and it fails on multipart messages.

use std::path::Path;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config;
use crate::error::{BoxError, Error, Result};

/// The headers every signature covers.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A loaded signing key.
pub enum Signer {
    /// ed25519-sha256 (RFC 8463).
    Ed25519(DkimSigner<Ed25519Key, Done>),
    /// rsa-sha256.
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signer::Ed25519(_) => "Signer(ed25519)",
            Signer::Rsa(_) => "Signer(rsa-sha256)",
        })
    }
}

impl Signer {
    /// Loads the key named by `[dkim]` (a PEM file: PKCS#8 for ed25519; PKCS#1 or PKCS#8
    /// for RSA), relative to `base`.
    pub fn load(dkim: &config::Dkim, base: &Path) -> Result<Signer> {
        let path = base.join(&dkim.key_file);
        let pem = std::fs::read(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let bad = |what: &str, source: BoxError| Error::Setting {
            context: format!("DKIM key `{}` is not {what}", path.display()),
            source,
        };
        let signer = match dkim.algorithm.as_str() {
            "ed25519" => {
                let der = PrivatePkcs8KeyDer::from_pem_slice(&pem)
                    .map_err(|e| bad("a PKCS#8 PEM ed25519 key", Box::new(e)))?;
                let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der())
                    .map_err(|e| bad("a usable ed25519 key", Box::new(e)))?;
                Signer::Ed25519(sign_with(key, dkim))
            }
            "rsa-sha256" => {
                let der = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| bad("a PEM RSA key", Box::new(e)))?;
                let key = RsaKey::<Sha256>::from_key_der(der)
                    .map_err(|e| bad("a usable RSA key", Box::new(e)))?;
                Signer::Rsa(sign_with(key, dkim))
            }
            other => {
                return Err(Error::Usage(format!(
                    "DKIM key `{}`: unknown algorithm `{other}`",
                    path.display()
                )));
            }
        };
        Ok(signer)
    }

    /// `message` with a DKIM-Signature header in front.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let signature = match self {
            Signer::Ed25519(s) => s.sign(message),
            Signer::Rsa(s) => s.sign(message),
        }
        .map_err(|e| Error::Failed {
            context: "could not sign the message with DKIM".into(),
            source: Box::new(e),
        })?;
        let header = signature.to_header();
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }
}

fn sign_with<K: mail_auth::common::crypto::SigningKey>(
    key: K,
    dkim: &config::Dkim,
) -> DkimSigner<K, Done> {
    DkimSigner::from_key(key)
        .domain(dkim.domain.clone())
        .selector(dkim.selector.clone())
        .headers(SIGNED_HEADERS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}
