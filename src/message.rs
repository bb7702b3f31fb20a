//! Rendered parts + a recipient → the MIME message that recipient receives (PRODUCT.md §4).
//!
//! A [`Mailing`] is made once per edition. It renders each audience variant once, and keeps
//! each part's quoted-printable encoding with the personal fields left open; a copy for one
//! member fills those holes and lets lettre assemble the headers and MIME structure. Every
//! header value goes through lettre's typed headers or its RFC 2047 encoder, and values
//! that could carry a line break are checked or cleaned first, so header injection is
//! impossible by construction.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use sha2::{Digest, Sha256};

use crate::bulletin::hex;
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
    attachments: Vec<SinglePart>,
    variants: Mutex<HashMap<Vec<bool>, Arc<Variant>>>,
}

impl std::fmt::Debug for Mailing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailing")
            .field("number", &self.edition.number)
            .finish_non_exhaustive()
    }
}

/// One audience variant: rendered once, encoded once.
#[derive(Debug)]
struct Variant {
    rendered: Rendered,
    html: Encoded,
    text: Encoded,
}

/// A part's quoted-printable encoding with holes: `literals[0] field[0] literals[1] …`.
/// Each encoded literal ends at the start of a line (with a soft line break if the text
/// did not), so a field's encoding can be placed between two literals without re-encoding.
#[derive(Debug)]
struct Encoded {
    literals: Vec<Vec<u8>>,
    fields: Vec<Field>,
}

/// One member's copy.
#[derive(Debug, Clone)]
pub struct Copy {
    /// The Message-ID, with angle brackets.
    pub message_id: String,
    /// The whole message, CRLF line endings.
    pub bytes: Vec<u8>,
    /// The HTML part as the member sees it.
    pub html: String,
    /// The text part as the member sees it.
    pub text: String,
}

impl Mailing {
    /// Prepares `edition` for sending to `list` (a list name or selectors, for List-Id; `None`
    /// for the list as a whole).
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
            .map_err(|e| Error::Usage(format!("date {}: {e}", edition.date)))?;
        let date = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(date.as_second()).unwrap_or(0));
        let list_id = edition.list_id(list);
        let boundary = format!("=_mailout_{}", &edition.content_hash[..24]);
        let mut attachments = Vec::new();
        for a in &edition.attachments {
            let content_type = ContentType::parse(&a.content_type).unwrap_or(
                ContentType::parse("application/octet-stream")
                    .map_err(|e| Error::Usage(e.to_string()))?,
            );
            attachments.push(
                Attachment::new(clean(&a.filename)).body(Body::new(a.bytes.clone()), content_type),
            );
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
            attachments,
            variants: Mutex::new(HashMap::new()),
        })
    }

    /// The edition this mailing sends.
    pub fn edition(&self) -> &Edition {
        &self.edition
    }

    /// The Message-ID of `address`'s copy: the same for every run, so a resend after a
    /// crash is recognisable.
    pub fn message_id(&self, address: &str) -> String {
        let digest = Sha256::new()
            .chain_update(self.edition.config.series_slug())
            .chain_update([0])
            .chain_update(self.edition.number.to_be_bytes())
            .chain_update(address.trim().to_lowercase())
            .finalize();
        format!(
            "<{}.{}@{}>",
            self.edition.number,
            &hex(&digest)[..20],
            self.edition.config.sender.list_domain
        )
    }

    /// The copy for `recipient`. With `all_sections`, every section is shown whatever the
    /// member's audience (the copy `build` writes and the archive keeps).
    pub fn copy_for(&self, recipient: &Recipient, all_sections: bool) -> Result<Copy> {
        let visible = self.edition.visible((!all_sections).then_some(recipient));
        let variant = self.variant(visible)?;
        let values = self.values(recipient);

        let to = Address::from_str(recipient.email.trim()).map_err(|e| Error::Message {
            recipient: recipient.email.clone(),
            source: Box::new(e),
        })?;
        let name = recipient
            .name
            .as_deref()
            .map(clean)
            .filter(|n| !n.is_empty());
        let message_id = self.message_id(&recipient.email);

        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(variant.text.fill(&values, |v| v.to_string()));
        let html = SinglePart::builder()
            .header(ContentType::TEXT_HTML)
            .body(variant.html.fill(&values, handlebars::html_escape));
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
            for a in &self.attachments {
                mixed = mixed.singlepart(a.clone());
            }
            mixed
        };

        let mut builder = Message::builder().from(self.from.clone());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let unsubscribe = format!("<{}>, <{}>", values.unsubscribe, values.unsubscribe_mailto);
        let message = builder
            .to(Mailbox::new(name, to))
            .subject(self.edition.subject.clone())
            .date(self.date)
            .message_id(Some(message_id.clone()))
            .raw_header(header("List-Id", &self.list_id))
            .raw_header(header("List-Unsubscribe", &unsubscribe))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click",
            ))
            .multipart(body)
            .map_err(|e| Error::Message {
                recipient: recipient.email.clone(),
                source: Box::new(e),
            })?;
        Ok(Copy {
            message_id,
            bytes: message.formatted(),
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
        }
    }

    fn variant(&self, visible: Vec<bool>) -> Result<Arc<Variant>> {
        let mut variants = self
            .variants
            .lock()
            .map_err(|_| Error::Usage("a rendering thread panicked".into()))?;
        if let Some(v) = variants.get(&visible) {
            return Ok(Arc::clone(v));
        }
        let rendered = self.renderer.render(&self.edition, &visible)?;
        let variant = Arc::new(Variant {
            html: Encoded::new(&rendered.html),
            text: Encoded::new(&rendered.text),
            rendered,
        });
        variants.insert(visible, Arc::clone(&variant));
        Ok(variant)
    }
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

    fn fill(&self, values: &Values, escape: impl Fn(&str) -> String) -> Body {
        let mut out = Vec::with_capacity(self.literals.iter().map(Vec::len).sum::<usize>() + 512);
        for (i, literal) in self.literals.iter().enumerate() {
            out.extend_from_slice(literal);
            if let Some(field) = self.fields.get(i) {
                out.extend(encode_piece(&escape(values.get(*field))));
            }
        }
        while out.ends_with(b"=\r\n") {
            out.truncate(out.len() - 3);
        }
        Body::dangerous_pre_encoded(out, ContentTransferEncoding::QuotedPrintable)
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
    encoded
}

/// A personal value made safe for a header or a single line: control characters (CR, LF,
/// tabs, NUL) become spaces and runs of spaces collapse.
pub fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn header(name: &'static str, value: &str) -> HeaderValue {
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
    fn clean_removes_line_breaks() {
        assert_eq!(clean("Jo\r\nBcc: x@y"), "Jo Bcc: x@y");
        assert_eq!(clean(" a\t b "), "a b");
    }
}
