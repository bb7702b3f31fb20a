//! A member's record and their rights over it (PRODUCT.md §6d): the history of their mail
//! status (`mailout members history`), what mailout holds about them (`mailout members
//! export`), erasure that keeps the address off the roster for good (`mailout members
//! erase`), and lifting a suppression, which an officer may do for a bounce or their own
//! suppression but never for the member's own unsubscribe (that is the member's to undo,
//! on their preferences page).

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::address::normalise_address;
use crate::error::{Error, Result};
use crate::store::{BounceEvent, Erasure, Member, MemberEvent, Store, Suppression};
use crate::workspace::Workspace;

/// `raw` as the store keeps addresses, or an error that names it.
pub fn address(raw: &str) -> Result<String> {
    normalise_address(raw).ok_or_else(|| {
        let shown: String = raw.chars().take(200).collect();
        Error::Usage(format!("`{shown}` is not an email address"))
    })
}

/// The keyed hash an erased address is remembered by: HMAC-SHA256 under a secret kept in
/// the store, so the list of erased addresses cannot be tested against guesses without it.
pub fn erasure_hash(store: &dyn Store, email: &str) -> Result<String> {
    let secret = store.secret("erasure")?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).map_err(|e| Error::Failed {
        context: "could not key the erasure hash".into(),
        source: Box::new(e),
    })?;
    mac.update(b"mailout-erased-v1\0");
    mac.update(email.as_bytes());
    Ok(crate::text::hex(&mac.finalize().into_bytes()))
}

/// The history of `raw`'s mail status, oldest first.
pub fn history(workspace: &Workspace, raw: &str) -> Result<Vec<MemberEvent>> {
    let email = address(raw)?;
    workspace.store()?.member_events(&email)
}

/// A copy of the bulletin a job sent (or meant to send) the member.
#[derive(Debug, Clone, Serialize)]
pub struct SentCopy {
    /// The job.
    pub job: i64,
    /// The bulletin's number.
    pub bulletin: u32,
    /// Its subject.
    pub subject: String,
    /// `sent`, `failed`, `uncertain`, `skipped`, `cancelled` or `pending`.
    pub state: String,
    /// The copy's Message-ID, once made.
    pub message_id: Option<String>,
}

/// What mailout holds about one address (a subject access request).
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// The address.
    pub email: String,
    /// The roster entry, if they are on the roster.
    pub member: Option<Member>,
    /// Their suppression, if any.
    pub suppression: Option<Suppression>,
    /// The history of their mail status.
    pub history: Vec<MemberEvent>,
    /// Bounces reported for their address.
    pub bounces: Vec<BounceEvent>,
    /// Every job that selected them, newest first.
    pub bulletins: Vec<SentCopy>,
    /// Whether the address was erased (then nothing else is held, and it is never added
    /// again).
    pub erased: bool,
}

/// Everything held about `raw`.
pub fn export(workspace: &Workspace, raw: &str) -> Result<Export> {
    let email = address(raw)?;
    let store = workspace.store()?;
    let mut bulletins = Vec::new();
    for entry in store.entries_for(&email)? {
        let job = store.job(entry.job)?;
        bulletins.push(SentCopy {
            job: entry.job,
            bulletin: job.as_ref().map_or(0, |j| j.spec.number),
            subject: job.map(|j| j.spec.subject).unwrap_or_default(),
            state: entry.state.as_str().to_string(),
            message_id: entry.message_id,
        });
    }
    Ok(Export {
        member: store.member(&email)?,
        suppression: store.suppressions()?.into_iter().find(|s| s.email == email),
        history: store.member_events(&email)?,
        bounces: store.bounces_for(&email)?,
        bulletins,
        // The erasure secret exists once anything was erased: a read-only look makes none.
        erased: {
            let erased = store.erased()?;
            !erased.is_empty() && erased.contains(&erasure_hash(store, &email)?)
        },
        email,
    })
}

/// Erases `raw` (see [`crate::store::Roster::erase_member`]): what was removed. An
/// address mailout holds nothing about is an error, so a typo is not taken for done.
pub fn erase(workspace: &Workspace, raw: &str) -> Result<Erasure> {
    let email = address(raw)?;
    let store = workspace.store()?;
    let hash = erasure_hash(store, &email)?;
    let known = store.member(&email)?.is_some()
        || !store.entries_for(&email)?.is_empty()
        || !store.member_events(&email)?.is_empty()
        || store.suppressions()?.iter().any(|s| s.email == email);
    if !known {
        let already = store.erased()?.contains(&hash);
        return Err(Error::Usage(if already {
            format!("{email} was erased already; nothing of it is held")
        } else {
            format!("mailout holds nothing about {email}: no member, suppression, history or copy")
        }));
    }
    store.erase_member(&email, &hash, &crate::clock::stamp())
}

/// Which of `emails` were erased: their keyed hashes are on the erased list.
pub fn erased_among(store: &dyn Store, emails: &[String]) -> Result<Vec<String>> {
    let erased: std::collections::HashSet<String> = store.erased()?.into_iter().collect();
    if erased.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for email in emails {
        if erased.contains(&erasure_hash(store, email)?) {
            out.push(email.clone());
        }
    }
    Ok(out)
}

/// What lifting a suppression did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifted {
    /// Lifted: the suppression it was.
    Lifted(Suppression),
    /// Not suppressed.
    NotSuppressed,
    /// The member's own choice (an unsubscribe or a complaint): only they can undo it.
    Theirs(String),
}

/// An officer lifts the suppression of `raw` for `reason`. A member's own unsubscribe or
/// complaint is never lifted this way: only the member can undo it (their preferences
/// page).
pub fn lift(workspace: &Workspace, raw: &str, reason: &str) -> Result<Lifted> {
    let email = address(raw)?;
    let store = workspace.store()?;
    let Some(current) = store.suppressions()?.into_iter().find(|s| s.email == email) else {
        return Ok(Lifted::NotSuppressed);
    };
    if matches!(current.reason.as_str(), "unsubscribed" | "complaint") {
        return Ok(Lifted::Theirs(current.reason));
    }
    let event = MemberEvent {
        email: email.clone(),
        at: crate::clock::stamp(),
        change: "unsuppressed".into(),
        source: "officer".into(),
        evidence: Some(reason.to_string()),
    };
    Ok(match store.unsuppress(&email, &event)? {
        Some(s) => Lifted::Lifted(s),
        None => Lifted::NotSuppressed,
    })
}
