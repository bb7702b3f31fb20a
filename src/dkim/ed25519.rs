//! Ed25519 signatures (RFC 8032) whose costly half is made ahead of time, on a thread of its
//! own.
//!
//! A signature is `R || S` with `R = r·B` for a secret nonce `r`, and `S = r + k·a` where
//! `k` hashes `R`, the public key and the message. `r·B` is almost all of the cost (a
//! scalar multiplication and a field inversion); it does not depend on the message, so once
//! a key has signed a few copies (a send, not a proof), a thread makes nonces and their
//! points in batches while the sender works, and a signature on the sender's thread is two
//! hashes and a multiply-add. RFC 8032 derives `r` from the message; a verifier cannot tell,
//! and what matters is that no `r` is ever used twice or guessable: here
//! `r = SHA-512(prefix ‖ label ‖ seed ‖ n)`, with the key's secret prefix, a fixed label, a
//! seed from the operating system's random source for each loaded key, and a counter `n`
//! that never repeats.
//!
//! The signer's thread never waits for the nonce thread: it takes what is ready only when
//! the thread is not holding it, and otherwise makes the nonce itself. Buffers go back and
//! forth between the two, so that after the first batches neither frees what the other
//! allocated.
//!
//! The curve arithmetic is curve25519-dalek's; ring (through mail-auth) reads the key, and
//! at load a signature made here with RFC 8032's own nonce must equal ring's, bit for bit,
//! so a key that is not what ring read, or arithmetic that disagrees with ring's, never
//! signs. The larger table the nonce thread multiplies by must agree with
//! curve25519-dalek's own before it is used.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{EdwardsBasepointTableRadix32, EdwardsPoint};
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use curve25519_dalek::traits::BasepointTable;
use mail_auth::common::crypto::{Algorithm, Ed25519Key, HashContext, HashImpl, Sha256, SigningKey};
use mail_auth::common::headers::Writable;
use sha2::{Digest, Sha512};

/// Nonces made on the signer's thread before it starts the nonce thread (at the last of
/// them): a proof or a few seed copies never start it.
const INLINE_FIRST: u64 = 8;
/// Nonces the thread makes at a time, and keeps ready at most.
const BATCH: usize = 64;
const SHELF: usize = 4 * BATCH;
/// Sets the nonces apart from RFC 8032's, which hash the prefix and the message.
const LABEL: &[u8] = b"mailout DKIM nonce made ahead";

/// An ed25519 signing key (ed25519-sha256 for DKIM, RFC 8463: the key signs the SHA-256
/// digest of the canonical headers).
pub struct Ed25519 {
    /// The secret scalar `a`.
    secret: Scalar,
    /// `A = a·B`, compressed.
    public: [u8; 32],
    nonces: Arc<NonceKey>,
    ahead: Mutex<Ahead>,
}

/// What every nonce is derived from.
struct NonceKey {
    /// The second half of SHA-512 of the key's seed (RFC 8032's prefix): secret.
    prefix: [u8; 32],
    /// Random for each loaded key.
    seed: [u8; 32],
    /// The next nonce's number.
    counter: AtomicU64,
}

/// A secret nonce `r` and its point `R = r·B`, used for one signature only.
struct Nonce {
    r: Scalar,
    point: [u8; 32],
}

/// The signer's side: nonces taken from the shelf, and the thread that fills it.
struct Ahead {
    ready: Vec<Nonce>,
    thread: Option<Arc<Shelf>>,
    made_here: u64,
}

/// Where the nonce thread leaves what it made.
struct Shelf {
    stock: Mutex<Stock>,
    /// Told when the signer took the stock, or the key is gone.
    taken: Condvar,
}

struct Stock {
    nonces: Vec<Nonce>,
    /// The key is gone: the thread stops.
    closed: bool,
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not an ed25519 PKCS#8 document")]
    NotPkcs8,
    #[error("the key's public half or a signature made with it does not match ring's")]
    Mismatch,
    #[error("could not read the operating system's random source")]
    Random(#[source] std::io::Error),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ed25519 {
    /// The key in `pkcs8` (DER), which ring has read as `checked`.
    pub fn new(pkcs8: &[u8], checked: &Ed25519Key) -> Result<Ed25519, KeyError> {
        let seed = seed_of(pkcs8).ok_or(KeyError::NotPkcs8)?;
        let hash: [u8; 64] = Sha512::digest(seed).into();
        let (mut low, mut prefix) = ([0u8; 32], [0u8; 32]);
        low.copy_from_slice(&hash[..32]);
        prefix.copy_from_slice(&hash[32..]);
        let secret = Scalar::from_bytes_mod_order(clamp_integer(low));
        let public = EdwardsPoint::mul_base(&secret).compress().to_bytes();
        if public[..] != checked.public_key()[..] {
            return Err(KeyError::Mismatch);
        }
        let key = Ed25519 {
            secret,
            public,
            nonces: Arc::new(NonceKey {
                prefix,
                seed: crate::clock::random_bytes().map_err(KeyError::Random)?,
                counter: AtomicU64::new(0),
            }),
            ahead: Mutex::new(Ahead {
                ready: Vec::with_capacity(SHELF),
                thread: None,
                made_here: 0,
            }),
        };
        // RFC 8032's own signature, made here and by ring (which signs the SHA-256 digest of
        // what it is given, as DKIM's ed25519-sha256 does).
        let input = b"mailout checks its ed25519 arithmetic against ring's";
        let digest = sha2::Sha256::digest(input);
        let ours = key.sign_digest(&digest, &key.nonces.deterministic(&digest));
        let theirs = checked.sign(&input[..]).map_err(|_| KeyError::Mismatch)?;
        if ours[..] != theirs[..] {
            return Err(KeyError::Mismatch);
        }
        Ok(key)
    }

    /// `S = r + SHA-512(R ‖ A ‖ digest)·a`, and the signature `R ‖ S`.
    fn sign_digest(&self, digest: &[u8], nonce: &Nonce) -> [u8; 64] {
        let k: [u8; 64] = Sha512::new()
            .chain_update(nonce.point)
            .chain_update(self.public)
            .chain_update(digest)
            .finalize()
            .into();
        let s = Scalar::from_bytes_mod_order_wide(&k) * self.secret + nonce.r;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&nonce.point);
        signature[32..].copy_from_slice(s.as_bytes());
        signature
    }

    /// A nonce never used before: one made ahead when there is one and the nonce thread is
    /// not holding the shelf, else made now (and at the last of the first few made here,
    /// the nonce thread is started).
    fn nonce(&self) -> Nonce {
        let mut ahead = lock(&self.ahead);
        let Ahead {
            ready,
            thread,
            made_here,
        } = &mut *ahead;
        if ready.is_empty()
            && let Some(shelf) = thread
            && let Ok(mut stock) = shelf.stock.try_lock()
            && !stock.nonces.is_empty()
        {
            // This (empty) buffer goes to the thread, to fill.
            std::mem::swap(ready, &mut stock.nonces);
            drop(stock);
            shelf.taken.notify_one();
        }
        if let Some(nonce) = ready.pop() {
            return nonce;
        }
        *made_here += 1;
        if *made_here == INLINE_FIRST {
            *thread = start(Arc::clone(&self.nonces));
        }
        drop(ahead);
        self.nonces.make()
    }
}

impl Drop for Ed25519 {
    fn drop(&mut self) {
        if let Some(shelf) = &lock(&self.ahead).thread {
            lock(&shelf.stock).closed = true;
            shelf.taken.notify_one();
        }
    }
}

impl NonceKey {
    /// `r = SHA-512(prefix ‖ label ‖ seed ‖ n)` for the next `n`, and `r·B`.
    fn make(&self) -> Nonce {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let hash: [u8; 64] = Sha512::new()
            .chain_update(self.prefix)
            .chain_update(LABEL)
            .chain_update(self.seed)
            .chain_update(n.to_le_bytes())
            .finalize()
            .into();
        Nonce::from_hash(&hash)
    }

    /// RFC 8032's nonce for `message`: `SHA-512(prefix ‖ message)`.
    fn deterministic(&self, message: &[u8]) -> Nonce {
        let hash: [u8; 64] = Sha512::new()
            .chain_update(self.prefix)
            .chain_update(message)
            .finalize()
            .into();
        Nonce::from_hash(&hash)
    }
}

/// A larger table of multiples of the base point than curve25519-dalek's own (61 KB, made
/// in about 3 ms): `r·B` in about three quarters of the time. Made by the nonce thread, so
/// that a key that signs a few copies never makes it.
static TABLE: OnceLock<EdwardsBasepointTableRadix32> = OnceLock::new();

/// The larger table, made if it is not yet, or `None` if it disagrees with
/// curve25519-dalek's own table (it is then never used).
fn checked_table() -> Option<&'static EdwardsBasepointTableRadix32> {
    if let Some(table) = TABLE.get() {
        return Some(table);
    }
    let table = EdwardsBasepointTableRadix32::create(&ED25519_BASEPOINT_POINT);
    let agrees = (1u8..=8).all(|i| {
        let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest([i]).into());
        table.mul_base(&r) == EdwardsPoint::mul_base(&r)
    });
    agrees.then(|| TABLE.get_or_init(|| table))
}

impl Nonce {
    fn from_hash(hash: &[u8; 64]) -> Nonce {
        let r = Scalar::from_bytes_mod_order_wide(hash);
        let point = match TABLE.get() {
            Some(table) => table.mul_base(&r),
            None => EdwardsPoint::mul_base(&r),
        };
        Nonce {
            point: point.compress().to_bytes(),
            r,
        }
    }
}

/// The thread that keeps the shelf stocked until the key is dropped; `None` when no thread
/// can be started (every nonce is then made on the signer's thread).
fn start(key: Arc<NonceKey>) -> Option<Arc<Shelf>> {
    let shelf = Arc::new(Shelf {
        stock: Mutex::new(Stock {
            nonces: Vec::with_capacity(SHELF),
            closed: false,
        }),
        taken: Condvar::new(),
    });
    let filled = Arc::clone(&shelf);
    std::thread::Builder::new()
        .name("dkim-nonces".into())
        .spawn(move || {
            idle_priority();
            if checked_table().is_none() {
                tracing::warn!(
                    "curve25519-dalek's tables disagree: DKIM nonces are not made ahead"
                );
                return;
            }
            let mut made = Vec::with_capacity(BATCH);
            loop {
                made.extend((0..BATCH).map(|_| key.make()));
                let mut stock = lock(&filled.stock);
                // Room on the shelf (whose capacity holds all of it: nothing is
                // reallocated), or the key is gone.
                while !stock.closed && stock.nonces.len() + BATCH > SHELF {
                    stock = filled
                        .taken
                        .wait(stock)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if stock.closed {
                    return;
                }
                stock.nonces.append(&mut made);
            }
        })
        .ok()?;
    Some(shelf)
}

/// Runs the calling thread only on CPU time nothing else wants (Linux's `SCHED_IDLE`): where
/// the SMTP server or the database shares the machine and the cores are busy, the nonces are
/// made on the signer's thread instead, as if there were no thread, rather than taking time
/// from the server the send waits for.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `pthread_self` is this thread, and `param` lives through the call, which
        // only reads it.
        let failed =
            unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_IDLE, &param) };
        if failed != 0 {
            tracing::debug!(
                error = %std::io::Error::from_raw_os_error(failed),
                "the DKIM nonce thread runs at normal priority"
            );
        }
    }
}

impl SigningKey for Ed25519 {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        let mut hasher = Sha256::hasher();
        input.write(&mut hasher);
        let digest = hasher.complete();
        Ok(self.sign_digest(digest.as_ref(), &self.nonce()).to_vec())
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::Ed25519Sha256
    }
}

/// The 32-byte seed in an ed25519 PKCS#8 document (RFC 8410: after the algorithm's object
/// identifier 1.3.101.112, an OCTET STRING holding an OCTET STRING of 32 bytes).
fn seed_of(der: &[u8]) -> Option<[u8; 32]> {
    const ALGORITHM: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
    let at = memchr::memmem::find(der, ALGORITHM)?;
    let rest = der[at + ALGORITHM.len()..].strip_prefix(&[0x04, 0x22, 0x04, 0x20][..])?;
    rest.get(..32)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use ring::signature::{ED25519, UnparsedPublicKey};

    use super::*;

    /// A new key (ring writes PKCS#8 v2, with the public key; openssl, in the command-line
    /// tests, v1) and ring's reading of it.
    fn key() -> (Vec<u8>, Ed25519Key) {
        let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
        let checked = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
        (pkcs8, checked)
    }

    fn verifies(public: &[u8], input: &[u8], signature: &[u8]) -> bool {
        let digest = sha2::Sha256::digest(input);
        UnparsedPublicKey::new(&ED25519, public)
            .verify(&digest, signature)
            .is_ok()
    }

    #[test]
    fn with_rfc_8032s_nonce_a_signature_is_rings() {
        let (pkcs8, checked) = key();
        let ours = Ed25519::new(&pkcs8, &checked).unwrap();
        for n in 0..200u32 {
            let input = format!("message {n}").repeat(n as usize % 7 + 1);
            let digest = sha2::Sha256::digest(input.as_bytes());
            let signature = ours.sign_digest(&digest, &ours.nonces.deterministic(&digest));
            assert_eq!(
                signature[..],
                checked.sign(input.as_bytes()).unwrap()[..],
                "{input}"
            );
        }
    }

    /// Waits (a minute at most: the thread runs at idle priority) until `ok` holds.
    fn until(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !ok() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn signatures_with_nonces_made_ahead_verify_and_no_nonce_is_used_twice() {
        let (pkcs8, checked) = key();
        let public = checked.public_key();
        let ours = Ed25519::new(&pkcs8, &checked).unwrap();
        let mut points = HashSet::new();
        let mut sign = |n: usize| {
            let input = format!("copy {n}");
            let signature = ours.sign(input.as_bytes()).unwrap();
            assert!(verifies(&public, input.as_bytes(), &signature), "{input}");
            assert!(
                points.insert(signature[..32].to_vec()),
                "a nonce used twice"
            );
        };
        // The first few are made here; then the thread starts.
        for n in 0..INLINE_FIRST as usize {
            sign(n);
        }
        let shelf = Arc::clone(ours.ahead.lock().unwrap().thread.as_ref().unwrap());
        until("the nonce thread stocks its shelf", || {
            lock(&shelf.stock).nonces.len() >= BATCH
        });
        // The next nonces come from the shelf (the signer takes it when the thread is not
        // holding it, else makes its own), and the thread keeps making more.
        for n in 0..4 * SHELF {
            sign(INLINE_FIRST as usize + n);
        }
        assert_eq!(points.len(), INLINE_FIRST as usize + 4 * SHELF);
        let made_here = ours.ahead.lock().unwrap().made_here;
        assert!(
            made_here <= INLINE_FIRST + (4 * SHELF - BATCH) as u64,
            "{made_here} of {} nonces made by the signer",
            INLINE_FIRST as usize + 4 * SHELF
        );
        // Dropping the key stops the thread (which holds the shelf until it returns).
        let weak = Arc::downgrade(&shelf);
        drop(shelf);
        drop(ours);
        until("the nonce thread stops", || weak.upgrade().is_none());
    }

    #[test]
    fn the_larger_table_multiplies_as_curve25519_daleks_own() {
        let table = checked_table().expect("the tables agree");
        for i in 0..200u32 {
            let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(i.to_le_bytes()).into());
            assert_eq!(
                table.mul_base(&r).compress(),
                EdwardsPoint::mul_base(&r).compress()
            );
        }
    }

    #[test]
    fn two_loads_of_one_key_make_different_nonces() {
        let (pkcs8, checked) = key();
        let a = Ed25519::new(&pkcs8, &checked).unwrap();
        let b = Ed25519::new(&pkcs8, &checked).unwrap();
        assert_ne!(a.sign(&b"same"[..]).unwrap(), b.sign(&b"same"[..]).unwrap());
    }

    #[test]
    fn a_key_that_is_not_what_ring_read_is_refused() {
        let (pkcs8, checked) = key();
        let (other, _) = key();
        assert!(matches!(
            Ed25519::new(&other, &checked),
            Err(KeyError::Mismatch)
        ));
        assert!(matches!(
            Ed25519::new(&pkcs8[..20], &checked),
            Err(KeyError::NotPkcs8)
        ));
        assert!(seed_of(b"").is_none());
    }
}
