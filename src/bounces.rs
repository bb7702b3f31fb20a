//! Bounces: delivery status notifications read from received mail, each failed recipient
//! classified by reason (after sisimai's list) and the reason's consequence derived:
//!
//! - *the recipient, for good* (user or host unknown, moved): the address is suppressed at
//!   once (`hard-bounce`);
//! - *the recipient, for now* (mailbox full, message too large, expired, suspended, a
//!   network or system trouble at their end, a reason that cannot be told): the address's
//!   soft score grows, and it is suppressed after `[bounces] soft_limit` within
//!   `soft_days` (`soft-bounces`); a delivery since resets it;
//! - *the sender* (authentication, SPF/DKIM/DMARC; blocked or bad reputation; spam content;
//!   policy; rate limited): **never** suppressed: it is the organisation's sending that
//!   needs fixing, and it is reported by receiving domain;
//! - a complaint (an ARF feedback report) unsubscribes the member: consent is theirs;
//! - automatic replies and successful delivery reports are not bounces.
//!
//! Reports are read from every MIME part, decoded (RFC 3464 `message/delivery-status`, in
//! whatever transfer encoding; `text/rfc822-headers`; the returned message), with any line
//! ends; where there is no report, the wording of the common non-standard formats is read,
//! in English, German, French, Spanish and Japanese. A recipient is taken only from a
//! report's fields, from the returned copy's `To:`, or from a line of wording that names
//! one, never from a Message-ID, the report's own envelope or the original sender.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use regex_lite::Regex;

/// Why a recipient's copy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// No such user.
    UserUnknown,
    /// No such host or domain.
    HostUnknown,
    /// The address has moved.
    Moved,
    /// The mailbox is full.
    MailboxFull,
    /// The message is larger than the server takes.
    TooLarge,
    /// Delivery was tried until it expired, or is delayed.
    Expired,
    /// The mailbox is disabled or suspended.
    Suspended,
    /// The receiving server limits how fast or how much we send.
    RateLimited,
    /// We are blocked: a blocklist, our reputation, our IP or DNS.
    Blocked,
    /// Our mail failed authentication: SPF, DKIM or DMARC.
    Authentication,
    /// Our message was taken for spam or a virus.
    SpamContent,
    /// A policy of the receiving side refused it.
    Policy,
    /// A network or system trouble on the way.
    Network,
    /// The member complained (a feedback report): they do not want our mail.
    Complaint,
    /// A bounce whose reason cannot be told.
    Unknown,
}

/// What a reason means for the member's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Consequence {
    /// The address does not work: suppress it.
    Hard,
    /// Try again; suppress after too many.
    Soft,
    /// A problem with our sending: never suppress; fix it.
    SenderSide,
    /// The member does not want our mail: unsubscribe them.
    Complaint,
}

impl Reason {
    /// How it is written: `user-unknown`, `authentication`…
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UserUnknown => "user-unknown",
            Reason::HostUnknown => "host-unknown",
            Reason::Moved => "moved",
            Reason::MailboxFull => "mailbox-full",
            Reason::TooLarge => "too-large",
            Reason::Expired => "expired",
            Reason::Suspended => "suspended",
            Reason::RateLimited => "rate-limited",
            Reason::Blocked => "blocked",
            Reason::Authentication => "authentication",
            Reason::SpamContent => "spam-content",
            Reason::Policy => "policy",
            Reason::Network => "network",
            Reason::Complaint => "complaint",
            Reason::Unknown => "unknown",
        }
    }

    /// In words, for a report to people.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::UserUnknown => "the user does not exist",
            Reason::HostUnknown => "the domain does not exist",
            Reason::Moved => "the address has moved",
            Reason::MailboxFull => "the mailbox is full",
            Reason::TooLarge => "the message is too large",
            Reason::Expired => "delivery expired",
            Reason::Suspended => "the mailbox is disabled",
            Reason::RateLimited => "they limit how fast we may send",
            Reason::Blocked => "they block us (blocklist or reputation)",
            Reason::Authentication => "our mail failed authentication (SPF, DKIM or DMARC)",
            Reason::SpamContent => "they took our message for spam",
            Reason::Policy => "their policy refused our message",
            Reason::Network => "a network or system trouble",
            Reason::Complaint => "the member marked our mail as spam",
            Reason::Unknown => "no reason could be told",
        }
    }

    /// What it means for the address.
    pub fn consequence(self) -> Consequence {
        match self {
            Reason::UserUnknown | Reason::HostUnknown | Reason::Moved => Consequence::Hard,
            Reason::MailboxFull
            | Reason::TooLarge
            | Reason::Expired
            | Reason::Suspended
            | Reason::Network
            | Reason::Unknown => Consequence::Soft,
            Reason::RateLimited
            | Reason::Blocked
            | Reason::Authentication
            | Reason::SpamContent
            | Reason::Policy => Consequence::SenderSide,
            Reason::Complaint => Consequence::Complaint,
        }
    }

    /// Every reason, for tables.
    pub const ALL: [Reason; 15] = [
        Reason::UserUnknown,
        Reason::HostUnknown,
        Reason::Moved,
        Reason::MailboxFull,
        Reason::TooLarge,
        Reason::Expired,
        Reason::Suspended,
        Reason::Network,
        Reason::Unknown,
        Reason::RateLimited,
        Reason::Blocked,
        Reason::Authentication,
        Reason::SpamContent,
        Reason::Policy,
        Reason::Complaint,
    ];
}

impl Consequence {
    /// `hard`, `soft`, `sender-side`, `complaint`.
    pub fn as_str(self) -> &'static str {
        match self {
            Consequence::Hard => "hard",
            Consequence::Soft => "soft",
            Consequence::SenderSide => "sender-side",
            Consequence::Complaint => "complaint",
        }
    }
}

/// One recipient's failure in a bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The address that failed, lowercase.
    pub recipient: String,
    /// Why.
    pub reason: Reason,
    /// The enhanced status code (`5.1.1`), if given.
    pub status: Option<String>,
    /// The server's words, if given.
    pub diagnostic: Option<String>,
    /// The Message-ID of the message that bounced (without brackets), if the report has it.
    pub original_message_id: Option<String>,
}

/// What a message is, read as a possible bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Failures.
    Bounces(Vec<Bounce>),
    /// Not a bounce (ordinary mail, an automatic reply, a report of success); why.
    NotABounce(&'static str),
}

/// Addresses of our own that are never a failed recipient (the sender, the list, the
/// unsubscribe address).
#[derive(Debug, Clone, Default)]
pub struct Own {
    /// Lowercase addresses.
    pub addresses: BTreeSet<String>,
    /// Our list domain: Message-IDs there are ours.
    pub list_domain: String,
}

impl Own {
    /// Our addresses from `config`.
    pub fn from_config(config: &crate::config::Config) -> Own {
        let s = &config.sender;
        let mut addresses = BTreeSet::new();
        for text in [
            Some(s.from.as_str()),
            s.reply_to.as_deref(),
            Some(&s.list_address),
            Some(&s.unsubscribe_mailto),
        ]
        .into_iter()
        .flatten()
        {
            let address = text
                .rsplit_once('<')
                .map_or(text, |(_, a)| a.trim_end_matches('>'));
            addresses.insert(address.trim().to_lowercase());
        }
        Own {
            addresses,
            list_domain: s.list_domain.to_lowercase(),
        }
    }
}

fn regex(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

/// Reads `raw` as a possible bounce.
pub fn parse(raw: &[u8], own: &Own) -> Verdict {
    let raw = crate::archive::parse::normalise_line_ends(raw);
    let Some(message) = MessageParser::default().parse(&raw) else {
        return Verdict::NotABounce("not readable mail");
    };
    let mut blocks: Vec<String> = Vec::new();
    let mut original_id: Option<String> = None;
    let mut original_to: Vec<String> = Vec::new();
    let mut original_from: Vec<String> = Vec::new();
    let mut report_kind: Option<String> = None;
    let mut human = String::new();
    for (i, part) in message.parts.iter().enumerate() {
        let kind = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_else(|| "text/plain".into());
        if kind == "multipart/report" {
            report_kind = part
                .content_type()
                .and_then(|ct| ct.attribute("report-type"))
                .map(|r| r.to_ascii_lowercase());
        }
        match kind.as_str() {
            "message/delivery-status"
            | "message/global-delivery-status"
            | "text/delivery-status" => blocks.push(decoded(part)),
            "message/feedback-report" => report_kind = Some("feedback-report".into()),
            "message/rfc822" | "message/global" => {
                if let PartType::Message(m) = &part.body {
                    original_id = original_id.or_else(|| m.message_id().map(str::to_string));
                    original_to.extend(addresses_of(m.to()));
                    original_from.extend(addresses_of(m.from()));
                    original_from.extend(addresses_of(m.reply_to()));
                    original_from.extend(addresses_of(m.sender()));
                }
            }
            "text/rfc822-headers" | "message/rfc822-headers" => {
                let headers = decoded(part);
                original_id = original_id.or_else(|| header_in(&headers, "message-id"));
                original_to.extend(
                    header_in(&headers, "to")
                        .iter()
                        .flat_map(|v| find_addresses(v)),
                );
                for h in ["from", "reply-to", "sender", "return-path"] {
                    original_from.extend(
                        header_in(&headers, h)
                            .iter()
                            .flat_map(|v| find_addresses(v)),
                    );
                }
            }
            "text/plain" if i > 0 || message.parts.len() == 1 => {
                if human.is_empty()
                    && let Some(text) = part.text_contents()
                {
                    human = text.to_string();
                }
            }
            _ => {}
        }
    }
    if human.is_empty() {
        human = message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
    }
    let original_id = original_id
        .map(|id| id.trim().trim_matches(['<', '>']).to_string())
        .or_else(|| {
            header_in(&human, "message-id").map(|id| id.trim().trim_matches(['<', '>']).to_string())
        });
    let subject = message.subject().unwrap_or("").to_lowercase();
    let from = addresses_of(message.from())
        .into_iter()
        .next()
        .unwrap_or_default();

    // A complaint: an ARF feedback report about one of our copies.
    if report_kind.as_deref() == Some("feedback-report") {
        let recipient = original_to
            .first()
            .cloned()
            .or_else(|| header_in(&human, "original-rcpt-to"));
        return match recipient {
            Some(r) => Verdict::Bounces(vec![Bounce {
                recipient: r.to_lowercase(),
                reason: Reason::Complaint,
                status: None,
                diagnostic: Some("a feedback report: the member marked our mail as spam".into()),
                original_message_id: original_id,
            }]),
            None => Verdict::NotABounce("a feedback report that names no recipient"),
        };
    }

    let mut excluded: BTreeSet<String> = own.addresses.clone();
    excluded.extend(original_from);
    excluded.extend(addresses_of(message.from()));
    excluded.extend(addresses_of(message.to()));
    excluded.extend(addresses_of(message.sender()));
    excluded.extend(
        message
            .header_raw("Return-Path")
            .map(find_addresses)
            .unwrap_or_default(),
    );

    if !blocks.is_empty() {
        let (mut bounces, delivered) = from_status(&blocks, original_id.as_deref(), &original_to);
        // One report may name a recipient in several blocks: once is enough.
        let mut seen = BTreeSet::new();
        bounces.retain(|b| seen.insert(b.recipient.clone()));
        if !bounces.is_empty() {
            return Verdict::Bounces(bounces);
        }
        if delivered {
            return Verdict::NotABounce("a report of successful delivery");
        }
    }
    let looks_like_bounce = report_kind.as_deref() == Some("delivery-status")
        || !blocks.is_empty()
        || from.starts_with("mailer-daemon")
        || from.starts_with("postmaster")
        || from.starts_with("mail-daemon")
        || BOUNCE_SUBJECT.iter().any(|s| subject.contains(s));
    if !looks_like_bounce {
        // Many bounces say `Auto-Submitted: auto-replied` too: only mail that is not a
        // bounce is an automatic reply.
        return Verdict::NotABounce(if is_auto_reply(&message, &subject) {
            "an automatic reply"
        } else {
            "ordinary mail"
        });
    }
    // Exim and Google name the failed recipients in a header of their own.
    let failed: Vec<String> = message
        .header_raw("X-Failed-Recipients")
        .map(find_addresses)
        .unwrap_or_default();
    let bounces = if failed.is_empty() {
        from_text(
            &human,
            &excluded,
            &own.list_domain,
            original_id.as_deref(),
            &original_to,
        )
    } else {
        from_text(
            &human,
            &BTreeSet::new(),
            &own.list_domain,
            original_id.as_deref(),
            &failed,
        )
    };
    if bounces.is_empty() {
        Verdict::NotABounce("a notice that names no failed recipient")
    } else {
        Verdict::Bounces(bounces)
    }
}

fn addresses_of(address: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    address
        .into_iter()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address().map(|e| e.trim().to_lowercase()))
        .collect()
}

/// A part's text, decoded: mail-parser leaves a `message/*` part's transfer encoding alone,
/// so quoted-printable and base64 are undone here.
fn decoded(part: &mail_parser::MessagePart<'_>) -> String {
    let contents = part.contents();
    let encoding = part
        .content_transfer_encoding()
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let bytes: Vec<u8> = match encoding.as_str() {
        "quoted-printable" => {
            quoted_printable::decode(contents, quoted_printable::ParseMode::Robust)
                .unwrap_or_else(|_| contents.to_vec())
        }
        "base64" => {
            use base64::Engine;
            let clean: Vec<u8> = contents
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&clean)
                .unwrap_or_else(|_| contents.to_vec())
        }
        _ => contents.to_vec(),
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    String::from_utf8_lossy(&crate::archive::parse::normalise_line_ends(text.as_bytes()))
        .replace("\r\n", "\n")
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
    "non delivery",
    "delivery has failed",
    "could not be delivered",
    "mail system error",
    "delivery problem",
    "returned to sender",
    "error sending your mail",
    "mail failure",
    "delivery notification",
    "postmaster notify",
    // German, French, Spanish, Japanese
    "unzustellbar",
    "nicht zustellbar",
    "rückläufer",
    "non distribuable",
    "échec de la remise",
    "non remis",
    "no se pudo entregar",
    "no entregado",
    "error de entrega",
    "配信エラー",
    "配送エラー",
    "送信エラー",
    "届きませんでした",
    "お届けできません",
];

fn is_auto_reply(message: &mail_parser::Message<'_>, subject: &str) -> bool {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    header("Auto-Submitted").is_some_and(|v| v.starts_with("auto-replied"))
        || header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("Precedence").is_some_and(|v| v == "auto_reply")
        || [
            "out of office",
            "automatic reply",
            "auto:",
            "autoreply",
            "auto-reply",
            "abwesenheit",
            "réponse automatique",
            "reponse automatique",
            "absence",
            "respuesta automática",
            "fuera de la oficina",
            "vacation",
            "不在",
            "自動応答",
            "自動返信",
        ]
        .iter()
        .any(|w| subject.contains(w))
}

/// Reads the per-recipient fields of RFC 3464 reports; also says whether any recipient
/// was reported delivered (a success report, not a bounce).
fn from_status(
    blocks: &[String],
    original: Option<&str>,
    original_to: &[String],
) -> (Vec<Bounce>, bool) {
    let mut out = Vec::new();
    let mut delivered = false;
    for text in blocks {
        for block in text.split("\n\n") {
            let fields = fields(block);
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let address = |v: String| {
                v.split_once(';')
                    .map_or(v.as_str(), |(_, a)| a)
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_lowercase()
            };
            // The address as we sent it: Original-Recipient (a forwarding alias's target
            // is Final-Recipient), else the returned copy's To, else Final-Recipient.
            let final_recipient = get("final-recipient").map(address);
            let Some(recipient) = get("original-recipient")
                .map(address)
                .filter(|a| a.contains('@'))
                .or_else(|| {
                    (original_to.len() == 1 && final_recipient.is_some())
                        .then(|| original_to[0].clone())
                })
                .or(final_recipient)
                .filter(|a| a.contains('@'))
            else {
                continue;
            };
            let action = get("action").unwrap_or_default().to_lowercase();
            let status =
                get("status").map(|s| s.split_whitespace().next().unwrap_or("").to_string());
            if ["delivered", "relayed", "expanded"]
                .iter()
                .any(|a| action.starts_with(a))
                || status.as_deref().is_some_and(|s| s.starts_with('2'))
            {
                delivered = true;
                continue;
            }
            let diagnostic = get("diagnostic-code").map(|d| {
                d.split_once(';')
                    .map_or(d.as_str(), |(_, t)| t)
                    .trim()
                    .to_string()
            });
            let reason = if action.starts_with("delayed") {
                classify(status.as_deref(), diagnostic.as_deref().unwrap_or(""))
                    .max_soft(Reason::Expired)
            } else {
                classify(status.as_deref(), diagnostic.as_deref().unwrap_or(""))
            };
            out.push(Bounce {
                recipient,
                reason,
                status,
                diagnostic,
                original_message_id: original.map(str::to_string),
            });
        }
    }
    (out, delivered)
}

impl Reason {
    /// A delayed delivery is never permanent: anything but a sender-side reason reads as
    /// `fallback` (expired, for now).
    fn max_soft(self, fallback: Reason) -> Reason {
        match self.consequence() {
            Consequence::SenderSide | Consequence::Soft => self,
            _ => fallback,
        }
    }
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

fn header_in(text: &str, name: &str) -> Option<String> {
    fields(&text.replace("\r\n", "\n"))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Wordings, in order: the sender-side ones first (a false "user unknown" would drop a
/// member; a false "blocked" only delays them), then the recipient's.
const WORDINGS: &[(Reason, &str)] = &[
    (
        Reason::Authentication,
        r"(?i)\b(spf|dkim|dmarc|sender policy framework|domainkeys)\b|not authenticated|unauthenticated|authentication (check )?fail|failed (authentication|sender authentication)|5\.7\.2[346]\b|5\.7\.7\b|does not pass authentication|認証",
    ),
    (
        Reason::RateLimited,
        r"(?i)too many (connections|messages|recipients|mails)|rate[- ]?limit|\brate of\b|throttl|exceeded (the )?(rate|limit|quota of messages)|sending limit|temporarily deferred|slow down|4\.7\.28|5\.7\.28",
    ),
    (
        Reason::SpamContent,
        r"(?i)\bspam\b|spamassassin|\bvirus\b|malware|phish|\bjunk\b|content (filter|rejected|policy)|message content|suspicious|unsolicited|\bbulk\b|迷惑メール|スパム|ウイルス",
    ),
    (
        Reason::Blocked,
        r"(?i)block(ed|list|listed| list)|blacklist|black list|\blisted\b|spamhaus|spamcop|barracuda|\brbl\b|dnsbl|reputation|\bptr\b|reverse (dns|lookup)|rdns|client host rejected|not allowed to send|ip address|your ip|denied by|5\.7\.25|sender rejected|sender address rejected|sender domain|relaying denied|relay (access )?denied|not permitted to relay|no relaying|unable to relay",
    ),
    (
        Reason::Policy,
        r"(?i)\bpolicy\b|not permitted|prohibited|administrative|not accepted|refused by|rejected by (the )?(recipient|administrator|server)|access denied|\bdenied\b|security|restricted|5\.7\.0\b|5\.7\.1\b",
    ),
    (
        Reason::Moved,
        r"(?i)has moved|address changed|no longer (valid|available|at|in use)|5\.1\.6\b",
    ),
    (
        Reason::HostUnknown,
        r"(?i)host (or domain name )?(not found|unknown)|unknown host|domain (not found|does not exist|unknown|name not found)|no such domain|unrouteable|unroutable|name service error|no mx|nxdomain|mx (record )?not found|does not accept mail|null mx|domain is not reachable|5\.1\.2\b|5\.1\.10\b|5\.4\.4\b|ホストが見つかりません|ドメインが存在しません",
    ),
    (
        Reason::MailboxFull,
        r"(?i)mailbox (is )?full|full mailbox|over ?quota|quota (exceeded|full)|exceeds? (the )?(storage|quota)|insufficient (system )?storage|out of storage|mailfolder is full|disk full|postfach (ist )?voll|speicherplatz|bo[iî]te (aux lettres )?(est )?pleine|espace de stockage|buz[oó]n (est[aá] )?lleno|cuota|容量|いっぱい|満杯|4\.2\.2\b|5\.2\.2\b",
    ),
    (
        Reason::TooLarge,
        r"(?i)too (large|big)|size (exceeds|limit)|exceeds? (the )?(maximum|size)|maximum (message )?size|message size|5\.3\.4\b|5\.2\.3\b|サイズ",
    ),
    (
        Reason::Suspended,
        r"(?i)disabled|suspended|inactive|deactivated|account (is )?(locked|closed|blocked)|not active|gesperrt|désactivé|suspendido|desactivad|停止|5\.2\.1\b",
    ),
    (
        Reason::UserUnknown,
        r"(?i)user unknown|unknown user|no such (user|mailbox|recipient|address|account)|does ?n[o']t exist|not exist|invalid (recipient|mailbox|address|user)|recipient (address )?rejected|recipient not found|user not found|mailbox (not found|unavailable|does not exist)|unknown (recipient|address|mailbox|local part)|not a valid (mailbox|recipient|user)|addressee unknown|no mailbox|unknown or illegal alias|undeliverable address|bad destination mailbox|does ?n[o']t have an? [^ ]+ account|does not have an? [^ ]+ account|invalid (final delivery )?userid|no such person|benutzer unbekannt|unbekannt|existiert nicht|adresse (e-mail )?inconnue|utilisateur inconnu|destinataire inconnu|n'existe pas|usuario desconocido|no existe|direcci[oó]n desconocida|utente sconosciuto|存在しない|存在しません|宛先不明|見つかりません|ありません|5\.1\.1\b|5\.1\.0\b|5\.1\.3\b",
    ),
    (
        Reason::Expired,
        r"(?i)expired|retry time(out)? (exceeded|reached)|giving up|gave up|delivery time|could not be delivered (within|for)|delayed|deferred|message timed out|queue|4\.4\.7\b|5\.4\.7\b|期限",
    ),
    (
        Reason::Network,
        r"(?i)connection (timed out|refused|reset|lost)|network|timed out|unreachable|temporary (failure|error)|system (error|failure)|internal (server )?error|resources temporarily|loop|hop count|not accepting connections|service (currently )?unavailable|4\.4\.\d\b|5\.4\.\d\b|4\.3\.\d\b|5\.3\.\d\b",
    ),
];

fn wordings() -> &'static [(Reason, Regex)] {
    static COMPILED: OnceLock<Vec<(Reason, Regex)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        WORDINGS
            .iter()
            .filter_map(|(r, p)| Regex::new(p).ok().map(|re| (*r, re)))
            .collect()
    })
}

/// The reason a status code and the server's words give.
pub fn classify(status: Option<&str>, words: &str) -> Reason {
    let text = format!("{} {words}", status.unwrap_or(""));
    if let Some((reason, _)) = wordings().iter().find(|(_, re)| re.is_match(&text)) {
        return *reason;
    }
    // No wording: the status code alone (RFC 3463), never a permanent reason unless the
    // code says which address problem it is.
    match status.map(|s| s.trim()) {
        Some(s) if s.starts_with("5.1.") || s.starts_with("4.1.") => match s {
            "5.1.2" | "4.1.2" => Reason::HostUnknown,
            "5.1.6" => Reason::Moved,
            _ if s.starts_with('5') => Reason::UserUnknown,
            _ => Reason::Unknown,
        },
        Some(s) if s.ends_with(".2.2") => Reason::MailboxFull,
        Some(s) if s.ends_with(".2.1") => Reason::Suspended,
        Some(s) if s.ends_with(".3.4") || s.ends_with(".2.3") => Reason::TooLarge,
        Some(s) if s.ends_with(".4.7") => Reason::Expired,
        Some(s) if s.starts_with("5.7.") || s.starts_with("4.7.") => Reason::Policy,
        Some(s) if s.get(2..3).is_some_and(|c| c == "4" || c == "3") => Reason::Network,
        _ => Reason::Unknown,
    }
}

fn address_pattern() -> Option<&'static Regex> {
    static ADDRESS: OnceLock<Option<Regex>> = OnceLock::new();
    regex(
        &ADDRESS,
        r"[A-Za-z0-9._%+\-=!#$&'*/?^`{|}~]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+",
    )
}

fn find_addresses(text: &str) -> Vec<String> {
    address_pattern()
        .map(|re| {
            re.find_iter(text)
                .map(|m| m.as_str().trim_matches(['.', '\'', '`']).to_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a line of a notice names a recipient (rather than quoting a Message-ID, a host
/// or the envelope).
fn names_a_recipient(line: &str, address_at: usize) -> bool {
    static CUE: OnceLock<Option<Regex>> = OnceLock::new();
    let lower = line.to_lowercase();
    if !line.is_char_boundary(address_at) {
        return false;
    }
    if lower.contains("message-id") || lower.contains("message id") || lower.contains("queue id") {
        return false;
    }
    // Alone on its line (`<addr>`, `addr:`), or after a word that introduces one.
    let alone = line[..address_at]
        .trim()
        .trim_matches(['<', '"', '\'', '(', '['])
        .is_empty();
    alone
        || regex(
            &CUE,
            r"(?i)(recipient|rcpt|to|for|address|user|mailbox|destinataire|empfänger|destinatario|宛先|受信者)[^@]{0,20}$",
        )
        .is_some_and(|re| re.is_match(&line[..address_at]))
}

/// Failures from a notice's wording: the recipients the lines name (not our own addresses,
/// the notice's envelope, the original sender or a Message-ID), each classified by the
/// words near it. When the returned copy's `To:` holds one address, it is the recipient.
fn from_text(
    text: &str,
    excluded: &BTreeSet<String>,
    list_domain: &str,
    original: Option<&str>,
    original_to: &[String],
) -> Vec<Bounce> {
    let lines: Vec<&str> = text.lines().collect();
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
                || l.contains("original message --")
                || l.starts_with("------ this is a copy of the message")
        })
        .unwrap_or(lines.len());
    let context_of = |i: usize| lines[i..(i + 4).min(end.max(i + 1))].join(" ");
    let whole: String = lines[..end].join(" ");
    let mut out: Vec<Bounce> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |recipient: String, context: &str, out: &mut Vec<Bounce>| {
        if !seen.insert(recipient.clone()) {
            return;
        }
        let status = enhanced_status(context).or_else(|| enhanced_status(&whole));
        let mut reason = classify(status.as_deref(), context);
        if reason == Reason::Unknown {
            reason = classify(status.as_deref(), &whole);
        }
        out.push(Bounce {
            recipient,
            reason,
            status,
            diagnostic: Some(context.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|d| !d.is_empty())
                .map(|d| d.chars().take(300).collect()),
            original_message_id: original.map(str::to_string),
        });
    };
    let ours = |a: &str| {
        excluded.contains(a)
            || a.starts_with("mailer-daemon@")
            || a.starts_with("postmaster@")
            || a.starts_with("noreply@")
            || a.starts_with("no-reply@")
            || a.ends_with(&format!("@{list_domain}"))
    };
    let named: Vec<&String> = original_to.iter().filter(|a| !ours(a)).collect();
    if !named.is_empty() && (named.len() == 1 || excluded.is_empty()) {
        for to in named {
            // The words about this address, if a line names it; else the whole notice.
            let context = lines[..end]
                .iter()
                .position(|l| l.to_lowercase().contains(to.as_str()))
                .map_or_else(|| whole.clone(), context_of);
            push(to.clone(), &context, &mut out);
        }
        return out;
    }
    let Some(address) = address_pattern() else {
        return out;
    };
    for (i, line) in lines[..end].iter().enumerate() {
        for m in address.find_iter(line) {
            let recipient = m.as_str().trim_matches(['.', '\'', '`']).to_lowercase();
            if ours(&recipient) || !names_a_recipient(line, m.start()) {
                continue;
            }
            // A long run of hex and dashes is an id, not a mailbox.
            let local = recipient.split('@').next().unwrap_or("");
            if local.len() > 30
                && local
                    .chars()
                    .filter(|c| c.is_ascii_hexdigit() || *c == '-')
                    .count()
                    * 10
                    > local.len() * 9
            {
                continue;
            }
            push(recipient, &context_of(i), &mut out);
        }
    }
    out
}

/// The reason a server's reply to one recipient gives (`550 5.1.1 … User unknown`).
pub fn reason_of_reply(reply: &str) -> Reason {
    classify(enhanced_status(reply).as_deref(), reply)
}

fn enhanced_status(text: &str) -> Option<String> {
    static STATUS: OnceLock<Option<Regex>> = OnceLock::new();
    regex(&STATUS, r"\b([245]\.[0-9]{1,3}\.[0-9]{1,3})\b")?
        .captures(text)
        .map(|c| c[1].to_string())
}

/// What one message was, as counted in the summary: each message counts once, by its
/// most serious failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MessageClass {
    /// A failure for good.
    Hard,
    /// A problem with our sending.
    SenderSide,
    /// A failure for now.
    Soft,
    /// A complaint.
    Complaint,
    /// Not a bounce.
    NotABounce,
}

/// What `mailout bounces` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages read.
    pub messages: u64,
    /// Messages with a failure for good, or a complaint.
    pub hard: u64,
    /// Messages whose failures were soft.
    pub soft: u64,
    /// Messages that report a problem with our sending.
    pub sender_side: u64,
    /// Complaints (also counted in `hard`).
    pub complaints: u64,
    /// Messages that were not bounces.
    pub not_bounces: u64,
    /// Every failure found, with the job it matched (if any) and what was done.
    pub bounces: Vec<Handled>,
    /// Addresses newly suppressed.
    pub suppressed: u64,
}

/// One failure and what it led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The failure.
    pub bounce: Bounce,
    /// The send job it came from, if known.
    pub job: Option<i64>,
    /// What was done: `suppressed`, `soft 3 of 5`, `not suppressed: our sending`…
    pub action: String,
}

/// The summary as `--json` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Messages read.
    pub messages: u64,
    /// Bounces (hard + soft + sender-side).
    pub bounces: u64,
    /// Hard (complaints among them).
    pub hard: u64,
    /// Soft.
    pub soft: u64,
    /// Sender-side.
    pub sender_side: u64,
    /// Complaints.
    pub complaints: u64,
    /// Not bounces.
    pub not_bounces: u64,
    /// Addresses suppressed by this run.
    pub suppressed: u64,
}

impl Report {
    /// The bounce messages (complaints are counted with the hard ones).
    pub fn bounce_messages(&self) -> u64 {
        self.hard + self.soft + self.sender_side
    }

    /// The figures, for `--json`.
    pub fn summary(&self) -> Summary {
        Summary {
            messages: self.messages,
            bounces: self.bounce_messages(),
            hard: self.hard,
            soft: self.soft,
            sender_side: self.sender_side,
            complaints: self.complaints,
            not_bounces: self.not_bounces,
            suppressed: self.suppressed,
        }
    }

    /// Sender-side failures by receiving domain and reason: (domain, reason, how many, an
    /// example of the server's words), most first.
    pub fn sender_side(&self) -> Vec<(String, Reason, u64, String)> {
        let mut groups: std::collections::BTreeMap<(String, Reason), (u64, String)> =
            Default::default();
        for h in &self.bounces {
            if h.bounce.reason.consequence() != Consequence::SenderSide {
                continue;
            }
            let domain = h
                .bounce
                .recipient
                .rsplit_once('@')
                .map_or("", |(_, d)| d)
                .to_string();
            let entry = groups
                .entry((domain, h.bounce.reason))
                .or_insert((0, String::new()));
            entry.0 += 1;
            if entry.1.is_empty() {
                entry.1 = h.bounce.diagnostic.clone().unwrap_or_default();
            }
        }
        let mut out: Vec<(String, Reason, u64, String)> = groups
            .into_iter()
            .map(|((d, r), (n, e))| (d, r, n, e))
            .collect();
        out.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        out
    }
}

/// What soft bounces add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftRule {
    /// Soft bounces before an address is suppressed.
    pub limit: u32,
    /// Within this many days.
    pub days: u32,
}

/// Reads `raw` (from `source`); records its failures in `report` and the store:
/// suppresses hard bounces and complaints, counts soft ones (suppressing at the limit),
/// and never suppresses for a problem with our own sending.
pub fn process(
    store: &dyn crate::store::Store,
    own: &Own,
    rule: SoftRule,
    raw: &[u8],
    source: &str,
    report: &mut Report,
) -> crate::error::Result<()> {
    report.messages += 1;
    let bounces = match parse(raw, own) {
        Verdict::NotABounce(_) => {
            report.not_bounces += 1;
            return Ok(());
        }
        Verdict::Bounces(b) => b,
    };
    let now = crate::clock::stamp();
    let mut class = MessageClass::NotABounce;
    for mut bounce in bounces {
        // Our own copy, found by its Message-ID, names the member whatever address the
        // report shows (a forwarding alias's target, say).
        let by_id = match bounce.original_message_id.as_deref() {
            Some(id) => store.entry_by_message_id(&format!("<{id}>"))?,
            None => None,
        };
        let address = match &by_id {
            Some(entry) => entry.member.email.clone(),
            None => match crate::address::normalise_address(&bounce.recipient) {
                Some(a) => a,
                None => continue,
            },
        };
        bounce.recipient = address;
        let job = match &by_id {
            Some(entry) => Some(entry.job),
            None => store.entries_for(&bounce.recipient)?.first().map(|e| e.job),
        };
        let consequence = bounce.reason.consequence();
        let evidence = {
            let text = format!(
                "{}: {}{} (from {source})",
                bounce.reason.as_str(),
                bounce
                    .status
                    .as_deref()
                    .map(|s| format!("{s} "))
                    .unwrap_or_default(),
                bounce.diagnostic.as_deref().unwrap_or("")
            );
            text.chars().take(400).collect::<String>()
        };
        store.add_bounce(&crate::store::BounceEvent {
            email: bounce.recipient.clone(),
            at: now.clone(),
            reason: bounce.reason.as_str().to_string(),
            consequence: consequence.as_str().to_string(),
            job,
            evidence: evidence.clone(),
        })?;
        let action = match consequence {
            Consequence::Hard => {
                class = class.min(MessageClass::Hard);
                if store.suppress(&bounce.recipient, "hard-bounce", Some(&evidence), &now)? {
                    report.suppressed += 1;
                    "suppressed".to_string()
                } else {
                    "already suppressed".to_string()
                }
            }
            Consequence::Complaint => {
                class = class.min(MessageClass::Complaint);
                if store.suppress(&bounce.recipient, "complaint", Some(&evidence), &now)? {
                    report.suppressed += 1;
                    "unsubscribed: they complained".to_string()
                } else {
                    "already suppressed".to_string()
                }
            }
            Consequence::SenderSide => {
                class = class.min(MessageClass::SenderSide);
                "not suppressed: a problem with our sending".to_string()
            }
            Consequence::Soft => {
                class = class.min(MessageClass::Soft);
                let score = soft_score(store, &bounce.recipient, rule, &now)?;
                if score >= rule.limit {
                    let why = format!(
                        "{} within {}, the last {evidence}",
                        crate::text::count(score as u64, "soft bounce", "soft bounces"),
                        crate::text::count(u64::from(rule.days), "day", "days")
                    );
                    if store.suppress(&bounce.recipient, "soft-bounces", Some(&why), &now)? {
                        report.suppressed += 1;
                    }
                    format!("suppressed: {score} soft bounces")
                } else {
                    format!("soft {score} of {}", rule.limit)
                }
            }
        };
        report.bounces.push(Handled {
            bounce,
            job,
            action,
        });
    }
    match class {
        MessageClass::Hard => report.hard += 1,
        MessageClass::SenderSide => report.sender_side += 1,
        MessageClass::Soft => report.soft += 1,
        // A complaint unsubscribes at once, as a hard bounce suppresses: counted with them.
        MessageClass::Complaint => {
            report.hard += 1;
            report.complaints += 1;
        }
        MessageClass::NotABounce => report.not_bounces += 1,
    }
    Ok(())
}

/// An address's soft score now: its soft bounces within the window, counting back from the
/// latest and stopping at a send that did not bounce (a later successful delivery resets
/// it).
fn soft_score(
    store: &dyn crate::store::Store,
    email: &str,
    rule: SoftRule,
    now: &str,
) -> crate::error::Result<u32> {
    let since = now
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| {
            t.checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(rule.days)))
                .ok()
        })
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let events: Vec<crate::store::BounceEvent> = store
        .bounces_for(email)?
        .into_iter()
        .filter(|e| e.consequence == Consequence::Soft.as_str() && e.at >= since)
        .collect();
    // Jobs sent to the address, newest first; a job with no bounce from it was delivered.
    let bounced_jobs: BTreeSet<i64> = store
        .bounces_for(email)?
        .iter()
        .filter_map(|e| e.job)
        .collect();
    let sent = store.entries_for(email)?;
    let latest_success = sent
        .iter()
        .filter(|e| e.state == crate::store::EntryState::Sent && !bounced_jobs.contains(&e.job))
        .map(|e| e.job)
        .max();
    let score = events
        .iter()
        .filter(|e| match (latest_success, e.job) {
            // Bounces of a job sent before the latest success are forgiven.
            (Some(success), Some(job)) => job > success,
            _ => true,
        })
        .count();
    Ok(u32::try_from(score).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Own {
        Own {
            addresses: ["info@union.example".to_string()].into_iter().collect(),
            list_domain: "lists.union.example".into(),
        }
    }

    fn bounces(raw: &[u8]) -> Vec<Bounce> {
        match parse(raw, &own()) {
            Verdict::Bounces(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc3464_reports_are_read_field_by_field() {
        let raw = b"From: MAILER-DAEMON@mx.example\r\nTo: info@union.example\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; Gone@Example.org\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\nFinal-Recipient: rfc822; full@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 mailbox full\r\n\r\nFinal-Recipient: rfc822; ok@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <240.abc@lists.union.example>\r\nSubject: x\r\n--b--\r\n";
        let b = bounces(raw);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].recipient, "gone@example.org");
        assert_eq!(b[0].reason, Reason::UserUnknown);
        assert_eq!(b[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(b[0].diagnostic.as_deref(), Some("550 5.1.1 user unknown"));
        assert_eq!(
            b[0].original_message_id.as_deref(),
            Some("240.abc@lists.union.example")
        );
        assert_eq!(b[1].reason, Reason::MailboxFull);
    }

    #[test]
    fn the_unions_own_problems_are_never_the_members() {
        for (status, words, reason) in [
            (
                "5.7.26",
                "550 5.7.26 This message does not pass authentication checks (SPF and DKIM both do not pass). DMARC policy",
                Reason::Authentication,
            ),
            (
                "5.7.1",
                "550 5.7.1 Unauthenticated email from union.example is not accepted due to domain's DMARC policy",
                Reason::Authentication,
            ),
            (
                "5.7.1",
                "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
                Reason::Blocked,
            ),
            (
                "5.7.1",
                "550 5.7.1 Our system has detected that this message is likely unsolicited mail (spam)",
                Reason::SpamContent,
            ),
            (
                "5.7.25",
                "550 5.7.25 The IP address sending this message does not have a PTR record setup",
                Reason::Blocked,
            ),
            (
                "5.7.1",
                "550 5.7.1 Message rejected due to local policy",
                Reason::Policy,
            ),
            (
                "4.7.28",
                "421 4.7.28 Our system has detected an unusual rate of unsolicited mail",
                Reason::RateLimited,
            ),
        ] {
            let r = classify(Some(status), words);
            assert_eq!(r, reason, "{words}");
            assert_eq!(r.consequence(), Consequence::SenderSide, "{words}");
        }
        for (status, words, reason) in [
            (
                Some("5.1.1"),
                "550 5.1.1 <x@y>: Recipient address rejected: User unknown",
                Reason::UserUnknown,
            ),
            (None, "Benutzer unbekannt", Reason::UserUnknown),
            (
                None,
                "L'adresse e-mail est inconnue: utilisateur inconnu",
                Reason::UserUnknown,
            ),
            (None, "usuario desconocido", Reason::UserUnknown),
            (
                None,
                "指定されたメールアドレスは存在しません",
                Reason::UserUnknown,
            ),
            (None, "Postfach voll", Reason::MailboxFull),
            (None, "boîte pleine", Reason::MailboxFull),
            (None, "buzón lleno", Reason::MailboxFull),
            (
                None,
                "メールボックスの容量がいっぱいです",
                Reason::MailboxFull,
            ),
            (Some("5.1.2"), "Host unknown", Reason::HostUnknown),
            (Some("4.4.7"), "retry timeout exceeded", Reason::Expired),
        ] {
            assert_eq!(classify(status, words), reason, "{words}");
        }
    }

    #[test]
    fn a_quoted_printable_report_is_decoded_and_delivered_is_not_a_failure() {
        let raw = b"From: MAILER-DAEMON@mx.example\r\nTo: info@union.example\r\nSubject: Delivery Status Notification\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not ex=\r\nist\r\n--b--\r\n";
        let b = bounces(raw);
        assert_eq!(b[0].reason, Reason::UserUnknown);
        assert!(
            b[0].diagnostic
                .as_deref()
                .unwrap()
                .contains("does not exist"),
            "{b:?}"
        );
        let delivered = b"From: MAILER-DAEMON@mx.example\r\nTo: info@union.example\r\nSubject: Delivery Status Notification (Success)\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; ok@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n--b--\r\n";
        assert!(matches!(parse(delivered, &own()), Verdict::NotABounce(_)));
    }

    #[test]
    fn message_ids_senders_and_forwarding_targets_are_not_recipients() {
        // An Amazon-style diagnostic quoting a Message-ID-like address, the original
        // sender in the text, and a forwarding alias as Final-Recipient.
        let raw = b"From: MAILER-DAEMON@mx.example\r\nTo: info@union.example\r\nSubject: Delivery Status Notification (Failure)\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message from info@union.example could not be delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nOriginal-Recipient: rfc822; member@example.net\r\nFinal-Recipient: rfc822; member.forward@elsewhere.example\r\nAction: failed\r\nStatus: 5.1.0\r\nDiagnostic-Code: smtp; 5.1.0 - Unknown address error 550-'5.7.1 <0000013-788e31c8-2be1-422f-a8d4-cf7765cc9ed7-000000@email-bounces.amazonses.com>... Access denied'\r\n--b--\r\n";
        let b = bounces(raw);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].recipient, "member@example.net");
    }

    #[test]
    fn auto_replies_and_ordinary_mail_are_not_bounces() {
        assert!(matches!(
            parse(b"From: jo@example.org\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nBack on Monday.\r\n", &own()),
            Verdict::NotABounce(_)
        ));
        assert!(matches!(
            parse(
                b"From: jo@example.org\nSubject: lunch\n\nSee you at noon.\n",
                &own()
            ),
            Verdict::NotABounce(_)
        ));
        assert!(matches!(parse(b"", &own()), Verdict::NotABounce(_)));
    }

    #[test]
    fn notices_in_other_languages_and_cr_line_ends_are_read() {
        let raw = "From: MAILER-DAEMON@mx.example.jp\rTo: info@union.example\rSubject: 配信エラー\rContent-Type: text/plain; charset=utf-8\r\r次のアドレスには配信できませんでした。\r宛先: taro@example.jp\r指定されたメールアドレスは存在しません。\r".as_bytes();
        let b = bounces(raw);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].recipient, "taro@example.jp");
        assert_eq!(b[0].reason, Reason::UserUnknown);
    }
}
