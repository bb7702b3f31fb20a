//! Unsubscribing by token, the one check behind both ways a member can leave: the link
//! (`mailout serve`) and mail to `[sender] unsubscribe_mailto` (`mailout unsubscribes`,
//! PRODUCT.md §6b), which `List-Unsubscribe` advertises as
//! `mailto:…?subject=unsubscribe-TOKEN` (RFC 2369).
//!
//! A request by mail carries its token in the subject (`unsubscribe-TOKEN`, perhaps after
//! `Re:`), or, when the subject is empty or just "unsubscribe", in the body, as some mail
//! clients put it. Delivery reports, automatic replies and copies of our own bulletins
//! are never requests, even though they may quote a token. Each verified token suppresses
//! its member (reason `unsubscribed`, detail `mailto`); a forged, altered or unknown token
//! changes nothing.

use std::path::PathBuf;
use std::sync::OnceLock;

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

use crate::error::Result;
use crate::runtime::Runtime;
use crate::store::Roster;
use crate::token::{self, Lookup, Purpose, TokenKey};
use crate::workspace::Workspace;

/// The member `token` was made for with `key` and `purpose`, if it verifies against one;
/// `today` (RFC 3339) decides whether a token of the first form is still honoured.
pub fn member_for(
    store: &dyn Roster,
    key: &TokenKey,
    token: &str,
    purpose: Purpose,
    today: &str,
) -> Result<Option<String>> {
    let candidates = match token::lookup(token) {
        None => return Ok(None),
        Some(Lookup::Key(k)) => store.members_by_lookup_key(&k)?,
        Some(Lookup::Legacy(_)) if !token::legacy_allowed(today) => return Ok(None),
        Some(Lookup::Legacy(k)) => store.members_by_legacy_key(&k)?,
    };
    Ok(candidates
        .into_iter()
        .map(|m| m.email)
        .find(|email| key.verify(token, email, purpose, today)))
}

/// Where the requests come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// One message (`--stdin`: an MTA's pipe transport).
    One(Vec<u8>),
    /// Files, folders and an IMAP mailbox.
    Mail {
        /// .eml files, mbox files, Maildirs, folders of these.
        paths: Vec<PathBuf>,
        /// `imaps://USER@HOST/MAILBOX`; only messages not seen before are read.
        imap: Option<String>,
    },
}

/// What one message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A verified request: this member is now unsubscribed.
    Unsubscribed(String),
    /// A verified request from a member who was already suppressed.
    AlreadySuppressed(String),
    /// A request whose token does not verify (forged, altered, unknown, missing); why.
    Invalid(String),
    /// Not an unsubscribe request.
    NotAnUnsubscribe,
}

/// What `mailout unsubscribes` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages read.
    pub messages: u64,
    /// Verified requests (members now unsubscribed, or already).
    pub unsubscribed: u64,
    /// Requests whose token did not verify.
    pub invalid: u64,
    /// Messages that were not requests.
    pub not_unsubscribes: u64,
    /// Files that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
}

/// The summary as `--json` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Messages read.
    pub messages: u64,
    /// Verified requests.
    pub unsubscribed: u64,
    /// Requests whose token did not verify.
    pub invalid: u64,
    /// Messages that were not requests.
    pub not_unsubscribes: u64,
}

impl Report {
    /// The figures, for `--json`.
    pub fn summary(&self) -> Summary {
        Summary {
            messages: self.messages,
            unsubscribed: self.unsubscribed,
            invalid: self.invalid,
            not_unsubscribes: self.not_unsubscribes,
        }
    }
}

/// Reads the requests from `source` (an IMAP mailbox on `runtime`), suppresses each
/// verified member, and calls `each` with every message's source and outcome.
pub fn run(
    workspace: &Workspace,
    source: Source,
    runtime: &Runtime,
    each: &mut dyn FnMut(&str, &Outcome),
) -> Result<Report> {
    let key = workspace.token_key()?;
    let store = workspace.store()?;
    let list_domain = workspace.config.sender.list_domain.to_ascii_lowercase();
    let mut report = Report::default();
    let mut handle = |source: &str, raw: &[u8]| -> Result<()> {
        let outcome = handle(store, &key, &list_domain, raw)?;
        report.messages += 1;
        match &outcome {
            Outcome::Unsubscribed(_) | Outcome::AlreadySuppressed(_) => report.unsubscribed += 1,
            Outcome::Invalid(_) => report.invalid += 1,
            Outcome::NotAnUnsubscribe => report.not_unsubscribes += 1,
        }
        each(source, &outcome);
        Ok(())
    };
    let mut unreadable = Vec::new();
    match source {
        Source::One(raw) => handle("stdin", &raw)?,
        Source::Mail { paths, imap } => crate::archive::read_mail(
            store,
            &paths,
            imap.as_deref(),
            runtime,
            "unsubscribes",
            &mut handle,
            &mut |source, error| unreadable.push((source, error)),
        )?,
    }
    report.unreadable = unreadable;
    Ok(report)
}

/// One message: finds its token, verifies it, suppresses the member.
fn handle(store: &dyn Roster, key: &TokenKey, list_domain: &str, raw: &[u8]) -> Result<Outcome> {
    let request = match request_in(raw, list_domain) {
        Request::None => return Ok(Outcome::NotAnUnsubscribe),
        Request::WithoutToken => {
            return Ok(Outcome::Invalid(
                "asks to unsubscribe but carries no token".into(),
            ));
        }
        Request::Token(token) => token,
    };
    let now = crate::clock::stamp();
    match member_for(store, key, &request, Purpose::Unsubscribe, &now)? {
        None => Ok(Outcome::Invalid(format!(
            "the token `{}` is not one of ours",
            shorten(&request)
        ))),
        Some(email) => {
            if store.suppress(&email, "unsubscribed", Some("mailto"), &now)? {
                tracing::info!("unsubscribed {email} by mail");
                Ok(Outcome::Unsubscribed(email))
            } else {
                Ok(Outcome::AlreadySuppressed(email))
            }
        }
    }
}

fn shorten(token: &str) -> String {
    let cleaned: String = token
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(48)
        .collect();
    if token.chars().count() > 48 {
        format!("{cleaned}…")
    } else {
        cleaned
    }
}

/// What a message asks.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Nothing: not a request.
    None,
    /// To unsubscribe, without a token.
    WithoutToken,
    /// To unsubscribe, with this token (as written: verification decides).
    Token(String),
}

fn token_pattern() -> Option<&'static regex_lite::Regex> {
    static PATTERN: OnceLock<Option<regex_lite::Regex>> = OnceLock::new();
    PATTERN
        .get_or_init(|| regex_lite::Regex::new(r"(?i)\bunsubscribe-([A-Za-z0-9_-]+)").ok())
        .as_ref()
}

fn request_in(raw: &[u8], list_domain: &str) -> Request {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Request::None;
    };
    // Reports and automatic mail are never requests, whatever they quote.
    let automatic = message
        .header_raw("Auto-Submitted")
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"));
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let ours = message.header_raw("List-Id").is_some()
        && message.message_id().is_some_and(|id| {
            id.to_ascii_lowercase()
                .ends_with(&format!("@{list_domain}"))
        });
    if automatic || report || ours {
        return Request::None;
    }
    let subject = match message.header("Subject") {
        Some(HeaderValue::Text(s)) => s.to_string(),
        _ => String::new(),
    };
    let Some(pattern) = token_pattern() else {
        return Request::None;
    };
    if let Some(c) = pattern.captures(&subject) {
        return Request::Token(c[1].to_string());
    }
    let bare = strip_reply_prefixes(&subject).to_ascii_lowercase();
    if bare.is_empty() || bare == "unsubscribe" {
        let body = message.body_text(0).unwrap_or_default();
        if let Some(c) = pattern.captures(&body) {
            return Request::Token(c[1].to_string());
        }
        if bare == "unsubscribe" {
            return Request::WithoutToken;
        }
    }
    Request::None
}

/// `subject` without leading `Re:`, `Fwd:`, `AW:` and the like.
fn strip_reply_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let Some(prefix) = ["re:", "fw:", "fwd:", "aw:", "wg:", "tr:", "sv:"]
            .into_iter()
            .find(|p| lower.starts_with(p))
        else {
            return s;
        };
        s = s[prefix.len()..].trim_start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "lists.example.org";

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("From: jo@example.net\r\nTo: unsubscribe@example.org\r\n{headers}\r\n{body}")
            .into_bytes()
    }

    #[test]
    fn the_token_comes_from_the_subject_or_a_bare_subject_s_body() {
        assert_eq!(
            request_in(&mail("Subject: unsubscribe-AbC_d-9\r\n", "hi"), DOMAIN),
            Request::Token("AbC_d-9".into())
        );
        assert_eq!(
            request_in(&mail("Subject: Re: Unsubscribe-xyz\r\n", ""), DOMAIN),
            Request::Token("xyz".into())
        );
        assert_eq!(
            request_in(
                &mail("Subject: unsubscribe\r\n", "unsubscribe-tok\r\n"),
                DOMAIN
            ),
            Request::Token("tok".into())
        );
        assert_eq!(
            request_in(&mail("", "please unsubscribe-tok\r\n"), DOMAIN),
            Request::Token("tok".into())
        );
        assert_eq!(
            request_in(&mail("Subject: Unsubscribe\r\n", "take me off\r\n"), DOMAIN),
            Request::WithoutToken
        );
        // A message about something else that quotes a token is not a request.
        assert_eq!(
            request_in(
                &mail("Subject: ballot news\r\n", "unsubscribe-tok\r\n"),
                DOMAIN
            ),
            Request::None
        );
    }

    #[test]
    fn reports_automatic_replies_and_our_own_copies_are_never_requests() {
        assert_eq!(
            request_in(
                &mail(
                    "Subject: unsubscribe-tok\r\nAuto-Submitted: auto-replied\r\n",
                    ""
                ),
                DOMAIN
            ),
            Request::None
        );
        assert_eq!(
            request_in(
                &mail(
                    "Subject: unsubscribe-tok\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
                    "--b\r\n\r\nx\r\n--b--\r\n"
                ),
                DOMAIN
            ),
            Request::None
        );
        assert_eq!(
            request_in(
                &mail(
                    "Subject: unsubscribe-tok\r\nList-Id: <x.lists.example.org>\r\nMessage-ID: <240.ab@lists.example.org>\r\n",
                    ""
                ),
                DOMAIN
            ),
            Request::None
        );
    }
}
