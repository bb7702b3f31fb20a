//! One received message, raw bytes → what the archive keeps: the raw bytes (compressed),
//! its fields and bodies for search, its attachments by content hash, and, for our own
//! bulletins, the number and sections. A message that cannot be parsed is kept raw and
//! flagged, never dropped.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::recognise::{self, Recogniser};
use crate::bulletin::hex;
use crate::store::{NewAttachment, NewMessage};

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
    fn unreadable_input_is_kept_and_flagged() {
        for raw in [&b""[..], b"\x00\x01\x02 not mail at all", b"\n\n\n"] {
            let m = parse(raw, "t", None, &recogniser());
            assert!(m.flagged.is_some(), "{raw:?}");
            assert_eq!(decompress(&m.raw_zstd).unwrap(), raw);
        }
    }
}
