//! Rendered parts + a recipient → the MIME message that recipient receives (PRODUCT.md §4).
//!
//! A [`Mailing`] is made once per edition. For each audience variant it renders the
//! templates once, encodes each part once as quoted-printable with the personal fields left
//! open, and has lettre assemble the whole message once around markers: the headers every
//! copy shares, the MIME structure, and a place for the personal headers. A copy for one
//! member is then lettre's encoding of three headers (To, Message-ID, List-Unsubscribe),
//! the holes filled, and the rest copied.
//!
//! Every header value goes through lettre's typed headers or its RFC 2047 encoder, and
//! values that could carry a line break are checked (config, bulletin) or cleaned (member
//! data) first, so header injection is impossible by construction.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, HeaderName, HeaderValue, Headers,
};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message, address::Envelope};

use crate::address::clean;
use crate::edition::Edition;
use crate::error::{Error, Result};
use crate::recipient::Recipient;
use crate::render::personal::{Field, Personal, Values};
use crate::render::{Rendered, Renderer};
use crate::token::TokenKey;

/// An edition ready to be turned into personal copies.
pub struct Mailing {
    edition: Edition,
    renderer: Renderer,
    tokens: TokenKey,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    date: SystemTime,
    list_id: String,
    boundary: String,
    series_slug: String,
    attachments: Vec<EncodedAttachment>,
    variants: Mutex<HashMap<Vec<bool>, Arc<Variant>>>,
    /// For proofs: makes every Message-ID different from the real copies' (so a proof
    /// never stands in for the member's copy in a mailbox that drops duplicates).
    proof: Option<String>,
}

impl std::fmt::Debug for Mailing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailing")
            .field("number", &self.edition.number)
            .finish_non_exhaustive()
    }
}

/// One member's copy.
#[derive(Debug, Clone)]
pub struct Copy {
    /// The Message-ID, with angle brackets.
    pub message_id: String,
    /// The whole message, CRLF line endings.
    pub bytes: Vec<u8>,
}

/// The two parts of one member's copy, decoded, as they read them.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The HTML part.
    pub html: String,
    /// The plain-text part.
    pub text: String,
}

/// An attachment, base64-encoded once for every copy.
#[derive(Debug)]
struct EncodedAttachment {
    filename: String,
    content_type: ContentType,
    body: Vec<u8>,
}

/// One audience variant: rendered once, encoded once, assembled once.
#[derive(Debug)]
struct Variant {
    rendered: Rendered,
    html: Encoded,
    text: Encoded,
    skeleton: Vec<Piece>,
    size: usize,
}

/// A piece of a variant's assembled message.
#[derive(Debug)]
enum Piece {
    /// Bytes every copy shares.
    Shared(Vec<u8>),
    /// The member's own headers.
    PersonalHeaders,
    /// The text part's body.
    Text,
    /// The HTML part's body.
    Html,
    /// An attachment's body.
    Attachment(usize),
}

/// A part's quoted-printable encoding with holes: `literals[0] field[0] literals[1] …`.
/// Each encoded literal ends at the start of a line (with a soft line break if the text
/// did not), so a field's encoding can be placed between two literals without re-encoding.
#[derive(Debug)]
struct Encoded {
    literals: Vec<Vec<u8>>,
    fields: Vec<Field>,
}

/// Marks where lettre's output gets a body or the personal headers: control characters
/// that lettre's encoders never emit in a header or a pre-encoded body.
const MARK: &[u8] = b"\x01mailout:";
const MARK_END: u8 = b'\x01';
/// The header whose line becomes the member's own headers.
const PERSONAL_HEADER: &str = "X-Mailout-Personal";

fn marker(name: &str, encoding: ContentTransferEncoding) -> Body {
    let mut bytes = MARK.to_vec();
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(MARK_END);
    Body::dangerous_pre_encoded(bytes, encoding)
}

impl Mailing {
    /// Prepares `edition` for sending to `list` (a list name or selectors, for List-Id;
    /// `None` for the list as a whole).
    pub fn new(
        edition: Edition,
        renderer: Renderer,
        tokens: TokenKey,
        list: Option<&str>,
    ) -> Result<Mailing> {
        let sender = &edition.config.sender;
        let from = parse_mailbox(&sender.from)?;
        let reply_to = sender.reply_to.as_deref().map(parse_mailbox).transpose()?;
        let date = edition
            .date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| Error::Failed {
                context: format!("the date {} cannot be given to a mail", edition.date),
                source: Box::new(e),
            })?;
        let date = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(date.as_second()).unwrap_or(0));
        let list_id = edition.list_id(list);
        let boundary = format!("=_mailout_{}", &edition.content_hash[..24]);
        let series_slug = edition.config.series_slug();
        let mut attachments = Vec::new();
        for a in &edition.attachments {
            let content_type = ContentType::parse(&a.content_type)
                .or_else(|_| ContentType::parse("application/octet-stream"))
                .map_err(|e| Error::Failed {
                    context: format!("the attachment `{}` has no usable content type", a.filename),
                    source: Box::new(e),
                })?;
            let mut body =
                String::with_capacity(email_encoding::body::base64::encoded_len(a.bytes.len()));
            email_encoding::body::base64::encode(&a.bytes, &mut body).map_err(|e| {
                Error::Failed {
                    context: format!("could not encode the attachment `{}`", a.filename),
                    source: Box::new(e),
                }
            })?;
            attachments.push(EncodedAttachment {
                filename: clean(&a.filename),
                content_type,
                body: body.into_bytes(),
            });
        }
        Ok(Mailing {
            edition,
            renderer,
            tokens,
            from,
            reply_to,
            date,
            list_id,
            boundary,
            series_slug,
            attachments,
            variants: Mutex::new(HashMap::new()),
            proof: None,
        })
    }

    /// Dates every copy `date` instead of the bulletin's date (a send uses the time its job
    /// started, the same for every copy and every resume).
    pub fn with_date(mut self, date: SystemTime) -> Mailing {
        self.date = date;
        self
    }

    /// Marks this mailing as a proof: Message-IDs carry `nonce` (and `proof`), so they
    /// differ from the copies members will receive.
    pub fn as_proof(mut self, nonce: &str) -> Mailing {
        self.proof = Some(nonce.to_string());
        self
    }

    /// The edition this mailing sends.
    pub fn edition(&self) -> &Edition {
        &self.edition
    }

    /// How this mailing's Message-IDs are made (proofs aside).
    pub fn message_ids(&self) -> crate::store::MessageIds {
        self.edition.message_ids()
    }

    /// The Message-ID of `address`'s copy: the same for every run, so a resend after a
    /// crash is recognisable.
    pub fn message_id(&self, address: &str) -> String {
        match &self.proof {
            Some(nonce) => format!(
                "<{}.proof.{nonce}.{}@{}>",
                self.edition.number,
                message_id_hash(&self.series_slug, self.edition.number, address),
                self.edition.config.sender.list_domain
            ),
            None => self.message_ids().message_id(self.edition.number, address),
        }
    }

    /// The copy for `recipient`. With `all_sections`, every section is shown whatever the
    /// member's audience (the copy `build` writes and the archive keeps).
    pub fn copy_for(&self, recipient: &Recipient, all_sections: bool) -> Result<Copy> {
        self.copy_keyed(recipient, all_sections, &recipient.email)
    }

    /// The copy for `recipient`, its Message-ID made from `key` rather than the address:
    /// a seed mailbox gets one copy per job, each found by an ID of its own.
    pub fn copy_keyed(&self, recipient: &Recipient, all_sections: bool, key: &str) -> Result<Copy> {
        let visible = self.edition.visible((!all_sections).then_some(recipient));
        let variant = self.variant(visible)?;
        let values = self.values(recipient);
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| Error::Message {
            recipient: recipient.email.clone(),
            source: e,
        };
        let to = Address::from_str(recipient.email.trim()).map_err(|e| fail(e.into()))?;
        let name = recipient
            .name
            .as_deref()
            .map(|n| display_name(&clean(n)))
            .filter(|n| !n.is_empty());
        let message_id = self.message_id(key);

        let mut personal = Headers::new();
        personal.set(header::To::from(lettre::message::Mailboxes::from(
            Mailbox::new(name, to),
        )));
        personal.set(header::MessageId::from(message_id.clone()));
        personal.insert_raw(header_value(
            "List-Unsubscribe",
            &format!("<{}>, <{}>", values.unsubscribe, values.unsubscribe_mailto),
        ));
        let personal = personal.to_string();

        let mut bytes = Vec::with_capacity(variant.size + personal.len() + 512);
        for piece in &variant.skeleton {
            match piece {
                Piece::Shared(b) => bytes.extend_from_slice(b),
                Piece::PersonalHeaders => bytes.extend_from_slice(personal.as_bytes()),
                Piece::Text => variant
                    .text
                    .fill_into(&mut bytes, &values, |v| v.to_string()),
                Piece::Html => variant
                    .html
                    .fill_into(&mut bytes, &values, handlebars::html_escape),
                Piece::Attachment(i) => {
                    let body = self.attachments.get(*i).map_or(&[][..], |a| &a.body[..]);
                    bytes.extend_from_slice(body);
                }
            }
        }
        Ok(Copy { message_id, bytes })
    }

    /// The HTML and text of `recipient`'s copy, decoded (see [`Mailing::copy_for`]).
    pub fn parts_for(&self, recipient: &Recipient, all_sections: bool) -> Result<Parts> {
        let visible = self.edition.visible((!all_sections).then_some(recipient));
        let variant = self.variant(visible)?;
        let values = self.values(recipient);
        Ok(Parts {
            html: variant.rendered.html.fill(&values, handlebars::html_escape),
            text: variant.rendered.text.fill(&values, |v| v.to_string()),
        })
    }

    /// The personal values for `recipient`, cleaned of anything that could break a line.
    fn values(&self, recipient: &Recipient) -> Values {
        let token = self.tokens.token(&recipient.email);
        let sender = &self.edition.config.sender;
        Values {
            greeting: clean(&self.edition.greeting_for(recipient)),
            name: recipient.field("name").map(clean).unwrap_or_default(),
            first_name: recipient.field("first_name").map(clean).unwrap_or_default(),
            email: clean(&recipient.email),
            unsubscribe: sender.unsubscribe_url.replace("{token}", &token),
            unsubscribe_mailto: format!(
                "mailto:{}?subject=unsubscribe-{token}",
                sender.unsubscribe_mailto
            ),
            preferences: sender.preferences_url().replace("{token}", &token),
        }
    }

    fn variant(&self, visible: Vec<bool>) -> Result<Arc<Variant>> {
        let mut variants = self
            .variants
            .lock()
            .map_err(|_| Error::Internal("a rendering thread panicked".into()))?;
        if let Some(v) = variants.get(&visible) {
            return Ok(Arc::clone(v));
        }
        let rendered = self.renderer.render(&self.edition, &visible)?;
        let html = Encoded::new(&rendered.html);
        let text = Encoded::new(&rendered.text);
        let skeleton = self.skeleton()?;
        let size = skeleton
            .iter()
            .map(|p| match p {
                Piece::Shared(b) => b.len(),
                Piece::Attachment(i) => self.attachments.get(*i).map_or(0, |a| a.body.len()),
                _ => 0,
            })
            .sum::<usize>()
            + html.len()
            + text.len();
        let variant = Arc::new(Variant {
            rendered,
            html,
            text,
            skeleton,
            size,
        });
        variants.insert(visible, Arc::clone(&variant));
        Ok(variant)
    }

    /// The message every copy shares, assembled by lettre around markers, cut at them.
    fn skeleton(&self) -> Result<Vec<Piece>> {
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(marker("text", ContentTransferEncoding::QuotedPrintable));
        let html = SinglePart::builder()
            .header(ContentType::TEXT_HTML)
            .body(marker("html", ContentTransferEncoding::QuotedPrintable));
        let alternative = MultiPart::alternative()
            .boundary(format!("{}_alt", self.boundary))
            .singlepart(text)
            .singlepart(html);
        let body = if self.attachments.is_empty() {
            alternative
        } else {
            let mut mixed = MultiPart::mixed()
                .boundary(format!("{}_mix", self.boundary))
                .multipart(alternative);
            for (i, a) in self.attachments.iter().enumerate() {
                let part = Attachment::new(a.filename.clone()).body(
                    marker(&i.to_string(), ContentTransferEncoding::Base64),
                    a.content_type.clone(),
                );
                mixed = mixed.singlepart(part);
            }
            mixed
        };
        let mut builder = Message::builder().from(self.from.clone());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let envelope = Envelope::new(Some(self.from.email.clone()), vec![self.from.email.clone()])
            .map_err(|e| Error::Failed {
                context: "could not make the message's envelope".into(),
                source: Box::new(e),
            })?;
        let formatted = builder
            .raw_header(header_value(PERSONAL_HEADER, "1"))
            .subject(self.edition.subject.clone())
            .date(self.date)
            .raw_header(header_value("List-Id", &self.list_id))
            .raw_header(header_value(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click",
            ))
            .envelope(envelope)
            .multipart(body)
            .map_err(|e| Error::Message {
                recipient: self.edition.config.sender.list_address.clone(),
                source: Box::new(e),
            })?
            .formatted();
        cut(&formatted)
    }
}

pub use crate::address::message_id_hash;

/// The longest display name put in `To:`, in characters. lettre encodes a name but does not
/// fold it, so a longer one (a 1 MB name in a CSV) is shortened: the header line then stays
/// far under RFC 5322's 998 octets, whatever the characters.
pub const MAX_DISPLAY_NAME: usize = 64;

/// `name` shortened to [`MAX_DISPLAY_NAME`] characters, with `…` when it was cut.
fn display_name(name: &str) -> String {
    if name.chars().count() <= MAX_DISPLAY_NAME {
        return name.to_string();
    }
    let mut short: String = name.chars().take(MAX_DISPLAY_NAME - 1).collect();
    short.truncate(short.trim_end().len());
    short.push('…');
    short
}

/// Cuts lettre's output at the markers and at the personal-headers line.
fn cut(formatted: &[u8]) -> Result<Vec<Piece>> {
    let broken = || Error::Internal("the message skeleton lost a marker".into());
    let personal_line = format!("{PERSONAL_HEADER}: 1\r\n");
    let at = find(formatted, personal_line.as_bytes()).ok_or_else(broken)?;
    let mut pieces = vec![
        Piece::Shared(formatted[..at].to_vec()),
        Piece::PersonalHeaders,
    ];
    let mut rest = &formatted[at + personal_line.len()..];
    while let Some(start) = find(rest, MARK) {
        pieces.push(Piece::Shared(rest[..start].to_vec()));
        let name_start = start + MARK.len();
        let len = rest[name_start..]
            .iter()
            .position(|b| *b == MARK_END)
            .ok_or_else(broken)?;
        pieces.push(match &rest[name_start..name_start + len] {
            b"text" => Piece::Text,
            b"html" => Piece::Html,
            digits => Piece::Attachment(
                std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(broken)?,
            ),
        });
        rest = &rest[name_start + len + 1..];
    }
    pieces.push(Piece::Shared(rest.to_vec()));
    Ok(pieces)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Encoded {
    fn new(personal: &Personal) -> Encoded {
        Encoded {
            literals: personal
                .literals()
                .iter()
                .map(|l| encode_piece(l))
                .collect(),
            fields: personal.fields().to_vec(),
        }
    }

    /// The encoded length without the holes.
    fn len(&self) -> usize {
        self.literals.iter().map(Vec::len).sum()
    }

    /// Appends the encoding with every hole filled by `values`, passed through `escape`.
    fn fill_into(&self, out: &mut Vec<u8>, values: &Values, escape: impl Fn(&str) -> String) {
        let start = out.len();
        for (i, literal) in self.literals.iter().enumerate() {
            out.extend_from_slice(literal);
            if let Some(field) = self.fields.get(i) {
                out.extend(encode_piece(&escape(values.get(*field))));
            }
        }
        while out.len() >= start + 3 && out.ends_with(b"=\r\n") {
            out.truncate(out.len() - 3);
        }
    }
}

/// Quoted-printable encoding of `text` (LF line ends become CRLF), ending at the start of
/// a line: with the text's own line break, or a soft one.
fn encode_piece(text: &str) -> Vec<u8> {
    if text.is_empty() {
        return Vec::new();
    }
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut encoded = quoted_printable::encode(crlf.as_bytes());
    if !encoded.ends_with(b"\r\n") {
        encoded.extend_from_slice(b"=\r\n");
    }
    // No line may begin with a dot (it would need SMTP dot-stuffing): encode it. Every
    // piece begins a line.
    if encoded.first() == Some(&b'.') || encoded.windows(3).any(|w| w == b"\r\n.") {
        let mut escaped = Vec::with_capacity(encoded.len() + 8);
        let mut line_start = true;
        for &b in &encoded {
            if line_start && b == b'.' {
                escaped.extend_from_slice(b"=2E");
            } else {
                escaped.push(b);
            }
            line_start = b == b'\n';
        }
        encoded = escaped;
    }
    encoded
}

fn header_value(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), clean(value))
}

fn parse_mailbox(value: &str) -> Result<Mailbox> {
    Mailbox::from_str(value).map_err(|e| Error::Message {
        recipient: value.to_string(),
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_into_valid_quoted_printable() {
        let long = "é".repeat(60);
        let mut joined = encode_piece(&format!("<p>{long}"));
        joined.extend(encode_piece("Dear Zoë"));
        joined.extend(encode_piece("</p>\nend\n"));
        assert!(joined.split(|b| *b == b'\n').all(|l| l.len() <= 77));
        let decoded =
            quoted_printable::decode(&joined, quoted_printable::ParseMode::Strict).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            format!("<p>{long}Dear Zoë</p>\r\nend\r\n")
        );
    }

    #[test]
    fn no_encoded_line_begins_with_a_dot() {
        let encoded = encode_piece(".starts with a dot\n...and again\nnot .here\n");
        assert_eq!(
            encoded,
            b"=2Estarts with a dot\r\n=2E..and again\r\nnot .here\r\n"
        );
        let decoded =
            quoted_printable::decode(&encoded, quoted_printable::ParseMode::Strict).unwrap();
        assert_eq!(
            decoded,
            b".starts with a dot\r\n...and again\r\nnot .here\r\n"
        );
    }

    #[test]
    fn cut_finds_every_marker() {
        let text = b"From: a\r\nX-Mailout-Personal: 1\r\nSubject: s\r\n\r\n\x01mailout:text\x01\r\n--b\r\n\x01mailout:2\x01\r\n";
        let pieces = cut(text).unwrap();
        let kinds: Vec<String> = pieces
            .iter()
            .map(|p| match p {
                Piece::Shared(b) => format!("{:?}", String::from_utf8_lossy(b)),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "\"From: a\\r\\n\"",
                "PersonalHeaders",
                "\"Subject: s\\r\\n\\r\\n\"",
                "Text",
                "\"\\r\\n--b\\r\\n\"",
                "Attachment(2)",
                "\"\\r\\n\""
            ]
        );
        assert!(cut(b"no markers").is_err());
    }
}
