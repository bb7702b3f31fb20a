//! DKIM signatures on the final bytes of each copy (mail-auth): relaxed/relaxed, rsa-sha256
//! or ed25519, over the headers PRODUCT.md §4 names. lettre's own signer is not used: its
//! `simple` header canonicalisation never verifies, and it fails on multipart messages.
//!
//! mail-auth canonicalises the headers and makes an RSA signature; an ed25519 signature is
//! made in [`ed25519`], its nonce made ahead on a thread of its own; the body's relaxed form is
//! hashed here ([`relaxed_body`]), a line at a time with whole runs of clean lines handed to
//! SHA-256 at once, which costs a fraction of mail-auth's word-at-a-time canonicalisation on
//! a 50 KB bulletin. A body that is not CRLF-clean goes through mail-auth's own.

mod ed25519;

use std::path::Path;

use mail_auth::common::crypto::{Ed25519Key, HashContext, HashImpl, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderStream, HeaderWriter, Writable, Writer};
use mail_auth::dkim::{Canonicalization, Signature};
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

/// A loaded signing key and the signature every copy starts from.
pub struct Signer {
    key: Key,
    template: Signature,
}

enum Key {
    /// ed25519-sha256 (RFC 8463).
    Ed25519(ed25519::Ed25519),
    /// rsa-sha256.
    Rsa(RsaKey<Sha256>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.key {
            Key::Ed25519(_) => "Signer(ed25519)",
            Key::Rsa(_) => "Signer(rsa-sha256)",
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
        let key = match dkim.algorithm.as_str() {
            "ed25519" => {
                let der = PrivatePkcs8KeyDer::from_pem_slice(&pem)
                    .map_err(|e| bad("a PKCS#8 PEM ed25519 key", Box::new(e)))?;
                let checked = Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der())
                    .map_err(|e| bad("a usable ed25519 key", Box::new(e)))?;
                Key::Ed25519(
                    ed25519::Ed25519::new(der.secret_pkcs8_der(), &checked)
                        .map_err(|e| bad("a usable ed25519 key", Box::new(e)))?,
                )
            }
            "rsa-sha256" => {
                let der = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| bad("a PEM RSA key", Box::new(e)))?;
                Key::Rsa(
                    RsaKey::<Sha256>::from_key_der(der)
                        .map_err(|e| bad("a usable RSA key", Box::new(e)))?,
                )
            }
            other => {
                return Err(Error::Usage(format!(
                    "DKIM key `{}`: unknown algorithm `{other}`",
                    path.display()
                )));
            }
        };
        let template = Signature {
            v: 1,
            a: match &key {
                Key::Ed25519(k) => k.algorithm(),
                Key::Rsa(k) => k.algorithm(),
            },
            d: dkim.domain.clone(),
            s: dkim.selector.clone(),
            h: SIGNED_HEADERS.iter().map(|h| h.to_string()).collect(),
            ch: Canonicalization::Relaxed,
            cb: Canonicalization::Relaxed,
            ..Default::default()
        };
        Ok(Signer { key, template })
    }

    /// `message` with a DKIM-Signature header in front.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let now = crate::clock::now().as_second().max(0).unsigned_abs();
        let signature = match &self.key {
            Key::Ed25519(key) => sign_with(key, &self.template, message, now),
            Key::Rsa(key) => sign_with(key, &self.template, message, now),
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

/// The signature of `message` by `key`, made as mail-auth's `DkimSigner::sign` makes it
/// (the same headers, the same `h=` list) with the body hashed by [`relaxed_body`].
fn sign_with<K: SigningKey>(
    key: &K,
    template: &Signature,
    message: &[u8],
    now: u64,
) -> mail_auth::Result<Signature> {
    let (_, headers, signed, _) = template.canonicalize(Fields::new(message));
    if signed.is_empty() {
        return Err(mail_auth::Error::NoHeadersFound);
    }
    let body = {
        let mut fields = Fields::new(message);
        while fields.next_header().is_some() {}
        fields.body()
    };
    let mut hasher = <K::Hasher as HashImpl>::hasher();
    let hash = if relaxed_body(body, &mut hasher) {
        hasher.complete()
    } else {
        key.hash(Canonicalization::Relaxed.canonical_body(body, 0))
    };
    let mut signature = template.clone();
    signature.bh = hash.as_ref().to_vec();
    signature.t = now;
    signature.h = signed;
    signature.b = key.sign(Signable {
        headers,
        signature: &signature,
    })?;
    Ok(signature)
}

/// The header fields of a message and then its body, found as mail-auth's own (private)
/// header iterator finds them, line by line: a field runs to the first line end not
/// followed by a space or tab; the body starts after the first empty line.
struct Fields<'x> {
    message: &'x [u8],
    pos: usize,
    start: usize,
}

impl<'x> Fields<'x> {
    fn new(message: &'x [u8]) -> Self {
        Fields {
            message,
            pos: 0,
            start: 0,
        }
    }

    /// From `from`: a named field (its colon and end), a line without a colon (its end), or
    /// the end of the header (where the body starts).
    fn scan(&self, from: usize) -> Scan {
        let message = self.message;
        let mut cur = from;
        while let Some(rest) = message.get(cur..) {
            let Some(offset) = memchr::memchr2(b':', b'\n', rest) else {
                break;
            };
            let pos = cur + offset;
            if rest[offset] == b':' {
                return Fields::value(message, pos);
            } else if (offset > 0 && rest[offset - 1] == b'\r') || pos == self.start {
                return Scan::End(pos + 1);
            }
            match message.get(pos + 1) {
                Some(b' ' | b'\t') => cur = pos + 1,
                _ => return Scan::Unnamed(pos + 1),
            }
        }
        Scan::End(message.len())
    }

    fn value(message: &[u8], colon: usize) -> Scan {
        let mut cur = colon + 1;
        while let Some(rest) = message.get(cur..) {
            let Some(offset) = memchr::memchr(b'\n', rest) else {
                break;
            };
            let pos = cur + offset;
            match message.get(pos + 1) {
                Some(b' ' | b'\t') => cur = pos + 1,
                _ => return Scan::Named(colon, pos + 1),
            }
        }
        Scan::End(message.len())
    }
}

enum Scan {
    Named(usize, usize),
    Unnamed(usize),
    End(usize),
}

impl<'x> HeaderStream<'x> for Fields<'x> {
    fn next_header(&mut self) -> Option<(&'x [u8], &'x [u8])> {
        let message = self.message;
        match self.scan(self.pos) {
            Scan::Named(colon, end) => {
                let field = (
                    message.get(self.start..colon).unwrap_or_default(),
                    message.get(colon + 1..end).unwrap_or_default(),
                );
                (self.start, self.pos) = (end, end);
                Some(field)
            }
            Scan::Unnamed(end) => {
                let name = message.get(self.start..end).unwrap_or_default();
                (self.start, self.pos) = (end, end);
                Some((name, b""))
            }
            Scan::End(pos) => {
                self.pos = pos;
                None
            }
        }
    }

    fn body(&mut self) -> &'x [u8] {
        if self.pos < self.message.len() {
            &self.message[self.pos..]
        } else {
            b""
        }
    }
}

/// What the signature signs: the canonical headers, then the DKIM-Signature header itself
/// with an empty `b=` (RFC 6376 §3.7).
struct Signable<'a, H: Writable> {
    headers: H,
    signature: &'a Signature,
}

impl<H: Writable> Writable for Signable<'_, H> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        self.signature.write(writer, false);
    }
}

/// Writes `body` in DKIM's relaxed body form (RFC 6376 §3.4.4) to `out`: in each line, runs
/// of spaces and tabs become one space and none is left at the end; empty lines at the end
/// go; a last line without CRLF gets one. Lines are found by CRLF; a body with a CR or an LF
/// on its own is not written (`false`), for mail-auth's canonicalisation to take.
pub fn relaxed_body(body: &[u8], out: &mut impl Writer) -> bool {
    // Every LF after a CR, and as many CRs as LFs: no bare line ends anywhere.
    let lfs = memchr::memchr_iter(b'\n', body);
    let mut count = 0usize;
    for at in lfs {
        if at == 0 || body[at - 1] != b'\r' {
            return false;
        }
        count += 1;
    }
    if memchr::memchr_iter(b'\r', body).count() != count {
        return false;
    }
    // Up to the end of the last line with something other than white space in it.
    let Some(last) = body
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    else {
        return true; // nothing but white space: the empty body
    };
    let (body, add_crlf) = match memchr::memchr(b'\n', &body[last..]) {
        Some(lf) => (&body[..last + lf + 1], false),
        None => (body, true),
    };
    // Where a line needs changing: two white spaces in a row, a tab, a space before the
    // line end (or the body's end). Usually a few dozen places in a bulletin; everything
    // between them goes to the hash as it is, in long runs.
    let mut dirty: Vec<usize> = memchr::memmem::find_iter(body, b"  ")
        .chain(memchr::memchr_iter(b'\t', body))
        .chain(memchr::memmem::find_iter(body, b" \r"))
        .collect();
    if add_crlf && body.last() == Some(&b' ') {
        dirty.push(body.len() - 1);
    }
    dirty.sort_unstable();
    let white = |b: u8| b == b' ' || b == b'\t';
    let mut clean_from = 0;
    for at in dirty {
        if at < clean_from {
            continue; // inside the run just handled
        }
        // The whole run of white space `at` is in (it never crosses a line end).
        let mut start = at;
        while start > clean_from && white(body[start - 1]) {
            start -= 1;
        }
        let mut end = at;
        while end < body.len() && white(body[end]) {
            end += 1;
        }
        out.write(&body[clean_from..start]);
        // One space for it, or none at the end of a line.
        if end < body.len() && body[end] != b'\r' {
            out.write(b" ");
        }
        clean_from = end;
    }
    out.write(&body[clean_from..]);
    if add_crlf {
        out.write(b"\r\n");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mail-auth's relaxed body form of `body`.
    fn theirs(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Canonicalization::Relaxed
            .canonical_body(body, 0)
            .write(&mut out);
        out
    }

    /// RFC 6376 §3.4.4 read literally, line by line.
    fn rfc(body: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(body);
        let mut lines: Vec<String> = text
            .split("\r\n")
            .map(|line| {
                let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
                let joined = words.join(" ");
                if line.starts_with([' ', '\t']) && !joined.is_empty() {
                    format!(" {joined}")
                } else {
                    joined
                }
            })
            .collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
            .iter()
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn ours(body: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        relaxed_body(body, &mut out).then_some(out)
    }

    #[test]
    fn the_relaxed_body_is_the_rfcs() {
        for (body, canonical) in [
            (&b""[..], &b""[..]),
            (b"\r\n\r\n", b""),
            (b"  \r\n\t\r\n", b""),
            (b"a", b"a\r\n"),
            (b"a \t ", b"a\r\n"),
            (b"a  b\r\n", b"a b\r\n"),
            (b"  * one\r\n  * two  \r\n\r\n\r\n", b" * one\r\n * two\r\n"),
            (b"a\r\n\r\n \r\nb\r\n", b"a\r\n\r\n\r\nb\r\n"),
            (b"x\tx\t\r\n", b"x x\r\n"),
            (b"=3D=3D\r\n--b--\r\n", b"=3D=3D\r\n--b--\r\n"),
        ] {
            assert_eq!(
                ours(body).as_deref(),
                Some(canonical),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        // A bare CR or LF is left to mail-auth.
        for body in [&b"a\nb\r\n"[..], b"a\rb\r\n", b"a\r\r\n", b"\n"] {
            assert_eq!(ours(body), None, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_relaxed_body_matches_mail_auths_on_bodies_with_content() {
        // Pseudo-random bodies of words, spaces, tabs and line ends (xorshift: the same
        // bodies every run).
        let pieces: [&[u8]; 8] = [b"a", b"bc", b" ", b"  ", b"\t", b"\r\n", b"=20", b" \r\n"];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut body = Vec::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = state % 24;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                body.extend_from_slice(pieces[(state % 8) as usize]);
            }
            let ours = ours(&body).expect("CRLF-clean");
            assert_eq!(ours, rfc(&body), "{:?}", String::from_utf8_lossy(&body));
            // mail-auth keeps a line end for a last line of white space alone, where RFC
            // 6376 (and python's dkim, and the receiving servers) drop it; elsewhere the
            // two agree.
            let theirs = theirs(&body);
            if !theirs.ends_with(b"\r\n\r\n") && theirs != b"\r\n" {
                assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&body));
            }
        }
    }
}
