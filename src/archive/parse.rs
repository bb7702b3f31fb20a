//! One received message, raw bytes → what the archive keeps: the raw bytes (compressed),
//! its fields and bodies for search, its attachments by content hash, and, for our own
//! bulletins, the number and sections. A message that cannot be parsed is kept raw and
//! flagged, never dropped.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::recognise::{self, Recogniser};
use crate::store::{NewAttachment, NewMessage};
use crate::text::hex;

/// zstd level for raw messages and attachments: the fastest, and most of the gain.
const LEVEL: i32 = 1;

/// Most bytes of a message's text indexed for search.
const MAX_INDEXED: usize = 256 * 1024;

const MAIL_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Received",
    "Return-Path",
    "Sender",
    "Reply-To",
    "Delivered-To",
    "Content-Type",
    "MIME-Version",
];

/// Compresses `bytes` for the store, with a compression context kept per thread.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            std::cell::RefCell::new(zstd::bulk::Compressor::new(LEVEL).ok());
    }
    COMPRESSOR
        .with(|c| c.borrow_mut().as_mut().and_then(|c| c.compress(bytes).ok()))
        // Compressing in memory only fails if memory runs out: zstd's one-shot call then.
        .unwrap_or_else(|| zstd::bulk::compress(bytes, LEVEL).unwrap_or_else(|_| bytes.to_vec()))
}

/// `raw` with line ends a parser can read: a lone CR (old Mac mail, some gateways) becomes
/// CRLF; CRLF and LF stay as they are. The archive keeps the raw bytes as they came; only
/// parsing sees this.
pub fn normalise_line_ends(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let lone_cr = memchr::memchr_iter(b'\r', raw).any(|i| raw.get(i + 1) != Some(&b'\n'));
    if !lone_cr {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for (i, &b) in raw.iter().enumerate() {
        out.push(b);
        if b == b'\r' && raw.get(i + 1) != Some(&b'\n') {
            out.push(b'\n');
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A message's bodies, read again from its raw bytes: (text, HTML if it has an HTML part).
pub fn bodies(raw: &[u8]) -> (Option<String>, Option<String>) {
    let raw = normalise_line_ends(raw);
    let Some(parsed) = MessageParser::default().parse(&raw) else {
        return (None, None);
    };
    let text = parsed.body_text(0).map(|t| t.into_owned());
    let html = parsed
        .html_part(0)
        .filter(|p| matches!(p.body, PartType::Html(_)))
        .and_then(|_| parsed.body_html(0))
        .map(|h| h.into_owned());
    (text, html)
}

/// Whom a copy was addressed to, read again from its raw bytes, so that a public page can
/// leave them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressees {
    /// Display name (if any) and address (if any) of each mailbox in To and Cc, and the
    /// addresses in Delivered-To, X-Original-To and Envelope-To.
    pub people: Vec<(Option<String>, Option<String>)>,
    /// The List-Unsubscribe header fields, raw (a member's copy carries the member's token
    /// there).
    pub unsubscribe: Vec<String>,
}

/// Reads a message's [`Addressees`] from its raw bytes (none from bytes that are not mail).
pub fn addressees(raw: &[u8]) -> Addressees {
    let mut out = Addressees::default();
    let Some(parsed) = MessageParser::default().parse(raw) else {
        return out;
    };
    for mailbox in parsed
        .to()
        .into_iter()
        .chain(parsed.cc())
        .flat_map(|a| a.iter())
    {
        let name = mailbox.name().map(str::to_string);
        let address = mailbox.address().map(str::to_string);
        if name.is_some() || address.is_some() {
            out.people.push((name, address));
        }
    }
    for (name, value) in parsed.headers_raw() {
        if name.eq_ignore_ascii_case("to") || name.eq_ignore_ascii_case("cc") {
            // Read again as written: an address mail-parser cannot make sense of (quotes,
            // brackets) is still the recipient's.
            out.people.extend(mailboxes(value));
        } else if ["delivered-to", "x-original-to", "envelope-to"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            for address in value.split(',') {
                let address = address.trim();
                let address = match (address.find('<'), address.rfind('>')) {
                    (Some(start), Some(end)) if start < end => &address[start + 1..end],
                    _ => address,
                };
                if address.contains('@') {
                    out.people.push((None, Some(address.trim().to_string())));
                }
            }
        } else if name.eq_ignore_ascii_case("list-unsubscribe") {
            out.unsubscribe.push(value.to_string());
        }
    }
    out
}

/// The mailboxes of an address header's raw value as written, each as (display name,
/// address): split at commas outside quotes, comments and angle brackets; a group's name
/// left out; the address inside `<…>` if there is one (quoted local parts kept quoted),
/// the phrase before it (unquoted) as the name, or else a comment.
fn mailboxes(value: &str) -> Vec<(Option<String>, Option<String>)> {
    let mut out = Vec::new();
    let (mut phrase, mut angle, mut comment, mut bare) =
        (String::new(), String::new(), String::new(), String::new());
    let (mut quoted, mut depth, mut in_angle, mut escaped) = (false, 0usize, false, false);
    let mut finish =
        |phrase: &mut String, angle: &mut String, comment: &mut String, bare: &mut String| {
            // `Name <address>`, or `address (Name)`.
            let (name, address) = if angle.trim().is_empty() {
                (comment.trim(), bare.trim())
            } else {
                let phrase = phrase.trim();
                (
                    if phrase.is_empty() {
                        comment.trim()
                    } else {
                        phrase
                    },
                    angle.trim(),
                )
            };
            let name = Some(name)
                .filter(|n| !n.is_empty() && !n.contains("=?"))
                .map(str::to_string);
            let address = Some(address)
                .filter(|a| a.contains('@'))
                .map(str::to_string);
            if name.is_some() || address.is_some() {
                out.push((name, address));
            }
            for s in [phrase, angle, comment, bare] {
                s.clear();
            }
        };
    for c in value.chars().filter(|&c| c != '\r' && c != '\n') {
        // Where the character goes: the address (in brackets, or bare), the phrase, or a
        // comment; quoted text keeps its quotes and escapes in an address only.
        let into_address = in_angle;
        if escaped {
            escaped = false;
            if into_address {
                angle.push(c);
            } else if depth > 0 {
                comment.push(c);
            } else {
                phrase.push(c);
                bare.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if into_address {
                    angle.push(c);
                } else if quoted {
                    bare.push(c);
                }
                continue;
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                if into_address {
                    angle.push(c);
                } else {
                    bare.push(c);
                }
                continue;
            }
            _ if quoted => {
                if into_address {
                    angle.push(c);
                } else {
                    phrase.push(c);
                    bare.push(c);
                }
                continue;
            }
            '(' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    continue;
                }
            }
            _ => {}
        }
        if depth > 0 {
            comment.push(c);
            continue;
        }
        match c {
            '<' if !in_angle => in_angle = true,
            '>' if in_angle => in_angle = false,
            _ if in_angle => angle.push(c),
            ':' => {
                // A group: what came before is its name.
                phrase.clear();
                bare.clear();
            }
            ',' | ';' => finish(&mut phrase, &mut angle, &mut comment, &mut bare),
            _ => {
                phrase.push(c);
                bare.push(c);
            }
        }
    }
    finish(&mut phrase, &mut angle, &mut comment, &mut bare);
    out
}

/// Decompresses what [`compress`] made.
pub fn decompress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    zstd::stream::decode_all(bytes)
}

/// Reads `raw` (from `source`, in mail folder `folder`) into what the archive keeps.
pub fn parse(
    raw: &[u8],
    source: &str,
    folder: Option<&str>,
    recogniser: &Recogniser,
) -> NewMessage {
    let mut message = NewMessage {
        content_hash: hex(&Sha256::digest(raw)),
        size: raw.len() as u64,
        raw_zstd: compress(raw),
        source: source.to_string(),
        folder: folder.map(str::to_string),
        ..NewMessage::default()
    };
    let raw = &*normalise_line_ends(raw);
    // A message has at least one of the header fields every mail carries; bytes that give
    // mail-parser none of them are not mail it could read.
    // Only the headers the archive reads are parsed; the rest stay raw (Received headers are
    // many, and parsing them is costly).
    thread_local! {
        static PARSER: MessageParser = MessageParser::new()
            .with_minimal_headers()
            .header_id(mail_parser::HeaderName::MessageId);
    }
    let parsed = PARSER.with(|p| p.parse(raw));
    let Some(parsed) = parsed.filter(|p| MAIL_HEADERS.iter().any(|h| p.header_raw(*h).is_some()))
    else {
        message.flagged = Some(if raw.is_empty() {
            "empty".into()
        } else {
            "no message header could be read".into()
        });
        return message;
    };
    message.message_id = parsed
        .message_id()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .filter(|id| !id.is_empty());
    message.date = parsed
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| jiff::Timestamp::from_second(d.to_timestamp()).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    message.sender = parsed
        .from()
        .and_then(|a| a.first())
        .map(|a| match (a.name(), a.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        });
    let recipients: Vec<&str> = parsed
        .to()
        .into_iter()
        .chain(parsed.cc())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .collect();
    message.recipients = (!recipients.is_empty()).then(|| recipients.join(", "));
    message.subject = parsed.subject().map(|s| s.trim().to_string());
    // The text indexed for search (a runaway body is cut: search needs words, not all).
    message.text = parsed.body_text(0).map(|t| {
        let mut t = t.into_owned();
        if t.len() > MAX_INDEXED {
            let mut end = MAX_INDEXED;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
        }
        t
    });
    let list_id = parsed.header_raw("List-Id");
    message.bulletin = recogniser.number(
        message.subject.as_deref(),
        message.message_id.as_deref(),
        list_id,
    );
    message.copy = message.bulletin.and_then(|n| {
        recogniser.copy_kind(n, message.message_id.as_deref(), message.subject.as_deref())
    });
    if message.bulletin.is_some()
        && let Some(text) = &message.text
    {
        message.sections = recognise::sections(text);
    }
    for part in parsed.attachments() {
        let contents = part.contents();
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{sub}", c.ctype()),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_lowercase();
        message.attachments.push(NewAttachment {
            hash: hex(&Sha256::digest(contents)),
            filename: part.attachment_name().map(str::to_string),
            content_id: part.content_id().map(|c| {
                c.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            }),
            content_type,
            size: contents.len() as u64,
            data_zstd: compress(contents),
        });
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn recogniser() -> Recogniser {
        Recogniser::new(&Config::builtin()).unwrap()
    }

    #[test]
    fn fields_bodies_and_attachments() {
        let raw = b"Message-ID: <abc@x.example>\r\nDate: Mon, 30 Oct 2023 09:00:00 +0100\r\nFrom: Jo <jo@x.example>\r\nTo: a@x.example, b@x.example\r\nSubject: Latest From Example Union 240: Pay\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nIntro\r\n\r\nPay\r\n===\r\n\r\nTalks.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=plan.pdf\r\n\r\n%PDF\r\n--b--\r\n";
        let m = parse(raw, "test", None, &recogniser());
        assert_eq!(m.message_id.as_deref(), Some("abc@x.example"));
        assert_eq!(m.date.as_deref(), Some("2023-10-30T08:00:00Z"));
        assert_eq!(m.sender.as_deref(), Some("Jo <jo@x.example>"));
        assert_eq!(m.recipients.as_deref(), Some("a@x.example, b@x.example"));
        assert_eq!(m.bulletin, Some(240));
        assert_eq!(m.sections.len(), 2);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].filename.as_deref(), Some("plan.pdf"));
        assert_eq!(m.attachments[0].content_type, "application/pdf");
        assert!(m.flagged.is_none());
        assert_eq!(decompress(&m.raw_zstd).unwrap(), raw);
    }

    #[test]
    fn cr_only_mail_is_read_and_kept_as_it_came() {
        let raw = b"Message-ID: <cr@x.example>\rDate: Mon, 30 Oct 2023 09:00:00 +0100\rFrom: Jo <jo@x.example>\rSubject: Old Mac mail\r\rLine one.\rLine two.\r";
        let m = parse(raw, "cr", Some("Old"), &recogniser());
        assert!(m.flagged.is_none());
        assert_eq!(m.subject.as_deref(), Some("Old Mac mail"));
        assert_eq!(m.sender.as_deref(), Some("Jo <jo@x.example>"));
        assert_eq!(m.date.as_deref(), Some("2023-10-30T08:00:00Z"));
        assert!(
            m.text.as_deref().unwrap_or("").contains("Line two."),
            "{:?}",
            m.text
        );
        assert_eq!(m.folder.as_deref(), Some("Old"));
        assert_eq!(decompress(&m.raw_zstd).unwrap(), raw, "kept byte for byte");
        assert_eq!(&*normalise_line_ends(b"a\r\nb\nc"), b"a\r\nb\nc");
        assert_eq!(&*normalise_line_ends(b"a\rb\r\nc\r"), b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn addressees_are_read_as_written_whatever_their_quotes() {
        let raw = concat!(
            "To: \"Zelda Quigley-Marsh\" <\"zq\\\" onmouseover=\\\"alert(1)\\\" <b>\"@recipient.example>,\r\n",
            " Jo (the member) <jo@x.example>, plain@x.example (Plain Person)\r\n",
            "Cc: Friends: a@x.example, \"B, Bee\" <b@x.example>;\r\n",
            "Delivered-To: <d@x.example>\r\n",
            "List-Unsubscribe: <https://u.example/u/T>\r\n",
            "Subject: x\r\n\r\nbody\r\n"
        );
        let found = addressees(raw.as_bytes());
        for (name, address) in [
            (
                Some("Zelda Quigley-Marsh"),
                Some("\"zq\\\" onmouseover=\\\"alert(1)\\\" <b>\"@recipient.example"),
            ),
            (Some("Jo"), Some("jo@x.example")),
            (Some("Plain Person"), Some("plain@x.example")),
            (None, Some("a@x.example")),
            (Some("B, Bee"), Some("b@x.example")),
            (None, Some("d@x.example")),
        ] {
            let wanted = (name.map(str::to_string), address.map(str::to_string));
            assert!(
                found.people.contains(&wanted),
                "{wanted:?} not in {found:?}"
            );
        }
        assert_eq!(found.unsubscribe.len(), 1);
        assert!(found.unsubscribe[0].contains("<https://u.example/u/T>"));
    }

    #[test]
    fn unreadable_input_is_kept_and_flagged() {
        for raw in [&b""[..], b"\x00\x01\x02 not mail at all", b"\n\n\n"] {
            let m = parse(raw, "t", None, &recogniser());
            assert!(m.flagged.is_some(), "{raw:?}");
            assert_eq!(decompress(&m.raw_zstd).unwrap(), raw);
        }
    }
}
