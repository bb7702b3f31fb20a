//! Proofs (PRODUCT.md §6a): `mailout send FILE --proof ADDR,...` sends the personalised
//! copy at once to a few addresses, Subject prefixed `[PROOF] `, outside any job: no journal
//! rows, no number consumed, the addresses need not be members. `--as-member` renders it as
//! that member receives it.

use std::path::PathBuf;
use std::str::FromStr;

use lettre::Address;

use super::transport::{Delivery, Transport};
use super::worker::{Setup, TransportKind};
use crate::address::normalise_address;
use crate::error::{Error, Result};
use crate::message::Mailing;
use crate::recipient::Recipient;
use crate::runtime::Runtime;
use crate::workspace::Workspace;

/// The prefix of a proof's subject.
pub const PREFIX: &str = "[PROOF] ";

/// What `mailout send --proof` was asked to do.
#[derive(Debug, Clone)]
pub struct ProofRequest {
    /// The bulletin file.
    pub file: PathBuf,
    /// Where the proofs go.
    pub to: Vec<String>,
    /// Render as this member receives it (name, audience).
    pub as_member: Option<String>,
    /// `--transport`; default SMTP when configured, else files.
    pub transport: Option<TransportKind>,
    /// Where the file transport writes (`outbox/<number>/proof/`).
    pub outbox: PathBuf,
}

/// What happened to each proof.
#[derive(Debug, Clone)]
pub struct ProofResult {
    /// The bulletin number (not consumed).
    pub number: u32,
    /// The subject as sent.
    pub subject: String,
    /// Per address, the outcome.
    pub deliveries: Vec<(String, Delivery)>,
}

/// Sends the proofs of `request`, on `runtime`.
pub fn send_proof(
    workspace: &Workspace,
    request: &ProofRequest,
    runtime: &Runtime,
) -> Result<ProofResult> {
    let mut addresses = Vec::new();
    for raw in &request.to {
        let address = normalise_address(raw)
            .ok_or_else(|| Error::Usage(format!("`--proof {raw}`: not an email address")))?;
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        return Err(Error::Usage("`--proof` needs at least one address".into()));
    }
    let as_member = match &request.as_member {
        None => None,
        Some(raw) => {
            let email = normalise_address(raw).ok_or_else(|| {
                Error::Usage(format!("`--as-member {raw}`: not an email address"))
            })?;
            let member = workspace.store()?.member(&email)?.ok_or_else(|| {
                Error::Usage(format!(
                    "`--as-member {email}`: no such member (`mailout members list`)"
                ))
            })?;
            Some(member)
        }
    };

    let mut edition = workspace.edition(&request.file)?;
    let number = edition.number;
    edition.subject = format!("{PREFIX}{}", edition.subject);
    let subject = edition.subject.clone();
    let nonce =
        crate::text::hex(
            &crate::clock::random_bytes::<6>().map_err(|source| Error::Io {
                context: "could not take random bytes for the proof's Message-ID".into(),
                path: None,
                source,
            })?,
        );
    // A proof is dated when it is sent, as a member's copy is dated when its job starts.
    let mailing = workspace
        .mailing(edition, None)?
        .as_proof(&nonce)
        .with_date(crate::clock::system_time());

    let kind = request
        .transport
        .unwrap_or_else(|| TransportKind::default_for(&workspace.config));
    let setup = Setup::new(workspace, Some(kind), None)?;
    setup.check(kind, runtime)?;
    let mut transport =
        setup.transport(kind, &request.outbox.join(number.to_string()).join("proof"))?;
    let deliveries = runtime.block_on(deliver_all(
        &mailing,
        &setup,
        &addresses,
        as_member.as_ref(),
        &mut transport,
    ))??;
    Ok(ProofResult {
        number,
        subject,
        deliveries,
    })
}

async fn deliver_all<T: Transport>(
    mailing: &Mailing,
    setup: &Setup,
    addresses: &[String],
    as_member: Option<&crate::members::Member>,
    transport: &mut T,
) -> Result<Vec<(String, Delivery)>> {
    let mut out = Vec::new();
    for address in addresses {
        let recipient = match as_member {
            Some(member) => Recipient {
                email: address.clone(),
                ..member.recipient()
            },
            None => Recipient::address_only(address.clone()),
        };
        // Without a member, the proof shows every section, as `build` does.
        let copy = mailing.copy_for(&recipient, as_member.is_none())?;
        let bytes = match setup.signer() {
            Some(signer) => signer.sign(&copy.bytes)?,
            None => copy.bytes,
        };
        let to = Address::from_str(address).map_err(|e| Error::Setting {
            context: format!("`{address}` is not an address mail can be sent to"),
            source: Box::new(e),
        })?;
        let outcome = transport.deliver(setup.from(), &to, &bytes, true).await;
        if let Delivery::Broken(reason) = &outcome {
            return Err(Error::Smtp {
                context: "the proof was not sent".into(),
                source: reason.clone().into(),
            });
        }
        out.push((address.clone(), outcome));
    }
    transport.close().await;
    Ok(out)
}
