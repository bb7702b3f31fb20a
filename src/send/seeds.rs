//! Seed mailboxes (PRODUCT.md §6c): every job sends each `[seeds] addresses` the copy for
//! everyone, once per job however many workers share it, under a Message-ID of its own to
//! that job and seed, and records what the server said, so that `mailout seeds check` can
//! look for it by its Message-ID.

use std::str::FromStr;

use lettre::Address;

use super::transport::{Delivery, Transport};
use crate::dkim::Signer;
use crate::error::Result;
use crate::message::Mailing;
use crate::recipient::Recipient;
use crate::store::Store;

/// Sends `job`'s copy for everyone to each of `seeds` not yet sent one (by this process or
/// another), over `transport`; returns how many this call sent. A seed that cannot be
/// sent to is recorded as failed with the reason; it does not stop the job.
pub async fn send_copies<T: Transport>(
    store: &dyn Store,
    job: i64,
    mailing: &Mailing,
    signer: Option<&Signer>,
    from: &Address,
    seeds: &[String],
    transport: &mut T,
) -> Result<u64> {
    let mut sent = 0;
    for seed in seeds {
        // A Message-ID of its own per job: two jobs of one bulletin are told apart.
        let copy = mailing.copy_keyed(
            &Recipient::address_only(seed.clone()),
            true,
            &format!("{seed} job {job}"),
        )?;
        if !store.claim_seed(job, seed, &copy.message_id)? {
            continue;
        }
        let (state, reply) = match Address::from_str(seed) {
            Err(e) => (
                "failed",
                format!("`{seed}` is not an address mail can be sent to: {e}"),
            ),
            Ok(to) => {
                let bytes = match signer {
                    Some(signer) => signer.sign(&copy.bytes)?,
                    None => copy.bytes,
                };
                match transport.deliver(from, &to, &bytes, true).await {
                    Delivery::Accepted(reply) => ("sent", reply),
                    Delivery::Uncertain(what) => ("uncertain", what),
                    Delivery::Permanent(reply) => ("failed", reply),
                    Delivery::Temporary { reply, .. } => {
                        ("failed", format!("not sent (temporary): {reply}"))
                    }
                    Delivery::Broken(why) => ("failed", why),
                }
            }
        };
        store.record_seed(job, seed, state, &reply, &crate::clock::real_stamp())?;
        if state == "sent" {
            sent += 1;
        }
    }
    transport.close().await;
    Ok(sent)
}
