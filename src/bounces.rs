//! Bounces: delivery status notifications read from received mail, classified hard, soft or
//! unknown. RFC 3464 reports (`multipart/report; report-type=delivery-status`) are read
//! field by field; the common non-standard formats (qmail, Exim, old Sendmail and Postfix,
//! Exchange) by their wording. A hard bounce suppresses the address; the send journal says
//! which job it came from (by the original Message-ID, or by address).

use std::collections::BTreeSet;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use regex_lite::Regex;

/// How permanent a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// The address does not work: stop sending to it.
    Hard,
    /// Try again later (mailbox full, delayed, greylisted).
    Soft,
    /// A bounce, but the reason could not be told.
    Unknown,
}

impl Class {
    /// `hard`, `soft`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Hard => "hard",
            Class::Soft => "soft",
            Class::Unknown => "unknown",
        }
    }
}

/// One recipient's failure in a bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The address that failed, lowercase.
    pub recipient: String,
    /// Hard, soft or unknown.
    pub class: Class,
    /// The enhanced status code (`5.1.1`), if given.
    pub status: Option<String>,
    /// The server's words, if given.
    pub diagnostic: Option<String>,
    /// The Message-ID of the message that bounced (without brackets), if the report has it.
    pub original_message_id: Option<String>,
}

/// The failures reported by `raw`, or `None` if it is not a bounce.
pub fn parse(raw: &[u8]) -> Option<Vec<Bounce>> {
    let message = MessageParser::default().parse(raw)?;
    let mut original = None;
    let mut status_blocks = Vec::new();
    let mut report = false;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let kind = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase();
        match kind.as_str() {
            "multipart/report" => report = true,
            "message/delivery-status"
            | "message/global-delivery-status"
            | "text/delivery-status" => {
                status_blocks.push(part.contents().to_vec());
            }
            "message/rfc822" | "message/global" => {
                if let PartType::Message(m) = &part.body {
                    original = original.or_else(|| m.message_id().map(str::to_string));
                }
            }
            "text/rfc822-headers" | "message/rfc822-headers" => {
                original = original.or_else(|| header_in(part.contents(), "message-id"));
            }
            _ => {}
        }
    }
    let original = original.map(|id| id.trim().trim_matches(['<', '>']).to_string());

    let mut bounces = Vec::new();
    for block in &status_blocks {
        bounces.extend(from_status(block, original.as_deref()));
    }
    if !bounces.is_empty() {
        return Some(bounces);
    }
    let subject = message.subject().unwrap_or("").to_lowercase();
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_lowercase();
    let looks_like_bounce = report
        || !status_blocks.is_empty()
        || from.starts_with("mailer-daemon")
        || from.starts_with("postmaster")
        || BOUNCE_SUBJECT.iter().any(|s| subject.contains(s));
    if !looks_like_bounce {
        return None;
    }
    let text = message
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default();
    let original = original.or_else(|| {
        header_in(text.as_bytes(), "message-id").map(|id| id.trim_matches(['<', '>']).to_string())
    });
    let own: BTreeSet<String> = message
        .from()
        .into_iter()
        .chain(message.to())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address().map(str::to_lowercase))
        .collect();
    Some(from_text(&text, &own, original.as_deref()))
}

const BOUNCE_SUBJECT: &[&str] = &[
    "undeliver",
    "returned mail",
    "delivery status notification",
    "delivery failure",
    "failure notice",
    "mail delivery failed",
    "non-delivery",
    "nondeliver",
    "delivery has failed",
    "could not be delivered",
    "mail system error",
    "delivery problem",
    "returned to sender",
    "error sending your mail",
];

/// Reads the per-recipient fields of an RFC 3464 `message/delivery-status` body.
fn from_status(body: &[u8], original: Option<&str>) -> Vec<Bounce> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let fields = fields(block);
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let Some(recipient) = get("final-recipient").or_else(|| get("original-recipient")) else {
            continue;
        };
        let recipient = recipient
            .split_once(';')
            .map_or(recipient.as_str(), |(_, a)| a)
            .trim()
            .trim_matches(['<', '>'])
            .to_lowercase();
        if recipient.is_empty() {
            continue;
        }
        let action = get("action").unwrap_or_default().to_lowercase();
        if ["delivered", "relayed", "expanded"]
            .iter()
            .any(|a| action.starts_with(a))
        {
            continue;
        }
        let status = get("status").map(|s| s.split_whitespace().next().unwrap_or("").to_string());
        let diagnostic = get("diagnostic-code").map(|d| {
            d.split_once(';')
                .map_or(d.as_str(), |(_, t)| t)
                .trim()
                .to_string()
        });
        let class = if action.starts_with("delayed") {
            Class::Soft
        } else {
            classify(status.as_deref(), diagnostic.as_deref().unwrap_or(""))
        };
        out.push(Bounce {
            recipient,
            class,
            status,
            diagnostic,
            original_message_id: original.map(str::to_string),
        });
    }
    out
}

/// `Name: value` fields (names lowercase, continuation lines unfolded).
fn fields(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_lowercase(), v.trim().to_string()));
        }
    }
    out
}

fn header_in(bytes: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    fields(&text.replace("\r\n", "\n"))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn classify(status: Option<&str>, words: &str) -> Class {
    let words = words.to_lowercase();
    if SOFT_WORDS.iter().any(|w| words.contains(w)) {
        return Class::Soft;
    }
    match status.and_then(|s| s.chars().next()) {
        Some('5') if status.is_some_and(|s| s.starts_with("5.2.2")) => Class::Soft,
        Some('5') => Class::Hard,
        Some('4') => Class::Soft,
        _ => {
            if HARD_WORDS.iter().any(|w| words.contains(w)) {
                Class::Hard
            } else if let Some(code) = smtp_code(&words) {
                if code.starts_with('5') {
                    Class::Hard
                } else {
                    Class::Soft
                }
            } else {
                Class::Unknown
            }
        }
    }
}

const HARD_WORDS: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "does not exist",
    "doesn't exist",
    "invalid recipient",
    "recipient address rejected",
    "mailbox unavailable",
    "no mailbox",
    "address rejected",
    "not a valid mailbox",
    "unknown recipient",
    "no such mailbox",
    "mailbox not found",
    "account disabled",
    "account has been disabled",
    "user not found",
    "host not found",
    "domain not found",
    "no such domain",
    "unrouteable address",
    "recipient not found",
    "invalid mailbox",
    "account is disabled",
];

const SOFT_WORDS: &[&str] = &[
    "mailbox full",
    "mailbox is full",
    "quota",
    "over quota",
    "try again later",
    "temporarily",
    "temporary failure",
    "greylist",
    "insufficient storage",
    "too many messages",
];

fn smtp_code(words: &str) -> Option<String> {
    static CODE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    CODE.get_or_init(|| Regex::new(r"\b([45][0-9][0-9])[ -]([45]\.[0-9]{1,3}\.[0-9]{1,3})?").ok())
        .as_ref()?
        .captures(words)
        .map(|c| c[1].to_string())
}

/// Failures from a bounce's wording: the addresses mentioned in it (other than the bounce's
/// own sender and recipient), each classified by the words and codes around it.
fn from_text(text: &str, own: &BTreeSet<String>, original: Option<&str>) -> Vec<Bounce> {
    static ADDRESS: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    let Some(address) = ADDRESS
        .get_or_init(|| Regex::new(r"[A-Za-z0-9._%+\-=]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+").ok())
        .as_ref()
    else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    // Stop at the returned message's own headers: addresses there are not failures.
    let end = lines
        .iter()
        .position(|l| {
            let l = l.trim_start().to_lowercase();
            l.starts_with("received:")
                || l.starts_with("return-path:")
                || l.contains("original message follows")
                || l.contains("below this line is a copy")
                || l.contains("original message headers")
        })
        .unwrap_or(lines.len());
    for (i, line) in lines[..end].iter().enumerate() {
        for m in address.find_iter(line) {
            let recipient = m.as_str().trim_matches('.').to_lowercase();
            if own.contains(&recipient)
                || recipient.starts_with("mailer-daemon@")
                || recipient.starts_with("postmaster@")
                || !seen.insert(recipient.clone())
            {
                continue;
            }
            // The words on this line and the next few say why.
            let context: String = lines[i..(i + 4).min(end)].join(" ");
            let status = enhanced_status(&context);
            let class = classify(status.as_deref(), &context);
            out.push(Bounce {
                recipient,
                class,
                status,
                diagnostic: Some(context.split_whitespace().collect::<Vec<_>>().join(" "))
                    .filter(|d| !d.is_empty()),
                original_message_id: original.map(str::to_string),
            });
        }
    }
    out
}

fn enhanced_status(text: &str) -> Option<String> {
    static STATUS: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    STATUS
        .get_or_init(|| Regex::new(r"\b([45]\.[0-9]{1,3}\.[0-9]{1,3})\b").ok())
        .as_ref()?
        .captures(text)
        .map(|c| c[1].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3464_reports_are_read_field_by_field() {
        let raw = b"From: MAILER-DAEMON@mx.example\r\nTo: info@union.example\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; Gone@Example.org\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\nFinal-Recipient: rfc822; full@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 mailbox full\r\n\r\nFinal-Recipient: rfc822; ok@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <240.abc@lists.union.example>\r\nSubject: x\r\n--b--\r\n";
        let bounces = parse(raw).unwrap();
        assert_eq!(bounces.len(), 2);
        assert_eq!(bounces[0].recipient, "gone@example.org");
        assert_eq!(bounces[0].class, Class::Hard);
        assert_eq!(bounces[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(
            bounces[0].diagnostic.as_deref(),
            Some("550 5.1.1 user unknown")
        );
        assert_eq!(
            bounces[0].original_message_id.as_deref(),
            Some("240.abc@lists.union.example")
        );
        assert_eq!(bounces[1].class, Class::Soft);
    }

    #[test]
    fn qmail_style_bounces_are_read_by_their_wording() {
        let raw = b"From: MAILER-DAEMON@mx.example\nTo: info@union.example\nSubject: failure notice\n\nHi. This is the qmail-send program at mx.example.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n\n<nobody@example.net>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is a copy of the message.\n\nReturn-Path: <info@union.example>\nTo: nobody@example.net\n";
        let bounces = parse(raw).unwrap();
        assert_eq!(bounces.len(), 1);
        assert_eq!(bounces[0].recipient, "nobody@example.net");
        assert_eq!(bounces[0].class, Class::Hard);
    }

    #[test]
    fn ordinary_mail_is_not_a_bounce() {
        assert!(parse(b"From: jo@example.org\nSubject: lunch\n\nSee you at noon.\n").is_none());
        assert!(parse(b"").is_none());
    }
}

/// What `mailout bounces` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages read.
    pub messages: u64,
    /// Messages that were not bounces.
    pub not_bounces: u64,
    /// Every failure found, with the job it matched (if any).
    pub bounces: Vec<(Bounce, Option<i64>)>,
    /// Addresses newly suppressed.
    pub suppressed: u64,
}

impl Report {
    /// Failures of class `class`.
    pub fn count(&self, class: Class) -> usize {
        self.bounces
            .iter()
            .filter(|(b, _)| b.class == class)
            .count()
    }
}

/// Reads `raw` (from `source`); records its failures in `report`, suppressing hard bounces.
pub fn process(
    store: &dyn crate::store::Store,
    raw: &[u8],
    source: &str,
    report: &mut Report,
) -> crate::error::Result<()> {
    report.messages += 1;
    let Some(bounces) = parse(raw) else {
        report.not_bounces += 1;
        return Ok(());
    };
    for mut bounce in bounces {
        let Some(address) = crate::members::normalise_address(&bounce.recipient) else {
            continue;
        };
        bounce.recipient = address;
        let entries = store.entries_for(&bounce.recipient)?;
        let matched = bounce
            .original_message_id
            .as_deref()
            .and_then(|id| {
                entries.iter().find(|e| {
                    e.message_id.as_deref().map(|m| m.trim_matches(['<', '>'])) == Some(id)
                })
            })
            .or(entries.first())
            .map(|e| e.job);
        if bounce.class == Class::Hard {
            let detail = format!(
                "{}{} (from {source})",
                bounce
                    .status
                    .as_deref()
                    .map(|s| format!("{s} "))
                    .unwrap_or_default(),
                bounce.diagnostic.as_deref().unwrap_or("")
            );
            let detail: String = detail.chars().take(300).collect();
            if store.suppress(
                &bounce.recipient,
                "hard-bounce",
                Some(&detail),
                &crate::clock::stamp(),
            )? {
                report.suppressed += 1;
            }
        }
        report.bounces.push((bounce, matched));
    }
    Ok(())
}
