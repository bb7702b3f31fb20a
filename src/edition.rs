//! An edition: a validated bulletin with everything resolved that the file may leave open
//! (its number, date, subject, greeting) and its attachments read, ready to render and to
//! turn into personal copies.

use jiff::civil::Date;

use crate::bulletin::Bulletin;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::inputs::Inputs;
use crate::recipient::{Greeting, MEMBER_FIELDS, Recipient};

/// A bulletin ready to render.
#[derive(Debug, Clone)]
pub struct Edition {
    /// The bulletin as written.
    pub bulletin: Bulletin,
    /// The organisation's configuration.
    pub config: Config,
    /// The bulletin's number.
    pub number: u32,
    /// The bulletin's date.
    pub date: Date,
    /// The Subject header.
    pub subject: String,
    /// The greeting template.
    pub greeting: Greeting,
    /// Attached files, read.
    pub attachments: Vec<AttachmentFile>,
    /// SHA-256 of the content (see [`Bulletin::content_hash`]).
    pub content_hash: String,
}

/// An attachment's file name, type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentFile {
    /// The name members see.
    pub filename: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

impl Edition {
    /// How the Message-IDs of this edition's copies are made.
    pub fn message_ids(&self) -> crate::store::MessageIds {
        crate::store::MessageIds {
            series: self.config.series_slug(),
            domain: self.config.sender.list_domain.clone(),
        }
    }

    /// Resolves `bulletin` (already validated) with `number` and `date`; attachment paths are
    /// relative to `base`.
    pub fn new(
        bulletin: Bulletin,
        config: Config,
        number: u32,
        date: Date,
        inputs: &Inputs,
    ) -> Result<Edition> {
        let subject = bulletin.subject_for(&config, number);
        let greeting = match &bulletin.greeting {
            Some(g) => Greeting::parse(g.get_ref(), &|_| true)
                .map_err(|_| Error::Usage(format!("the greeting `{}` is invalid", g.get_ref())))?,
            None => Greeting::plain(&config.greeting.default),
        };
        let mut attachments = Vec::new();
        for a in &bulletin.attachments {
            let (path, file) = inputs.attachment(a.path.get_ref());
            let bytes = file?.bytes.clone();
            let filename = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".into());
            let content_type = mime_guess::from_path(&path)
                .first_or_octet_stream()
                .essence_str()
                .to_string();
            attachments.push(AttachmentFile {
                filename,
                content_type,
                bytes,
            });
        }
        let content_hash = bulletin.content_hash(inputs)?;
        Ok(Edition {
            bulletin,
            config,
            number,
            date,
            subject,
            greeting,
            attachments,
            content_hash,
        })
    }

    /// The audience of section `index`: its own, else its kind's; empty means everyone.
    pub fn audience(&self, index: usize) -> Vec<&str> {
        let section = &self.bulletin.sections[index];
        if !section.audience.is_empty() {
            return section
                .audience
                .iter()
                .map(|a| a.get_ref().as_str())
                .collect();
        }
        section
            .kind
            .as_ref()
            .and_then(|k| self.config.section_kind(k.get_ref()))
            .map(|k| k.audience.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Which sections `recipient` receives. `None` is the full copy (every section), as the
    /// archive and `build` show it.
    pub fn visible(&self, recipient: Option<&Recipient>) -> Vec<bool> {
        (0..self.bulletin.sections.len())
            .map(|i| {
                let audience = self.audience(i);
                match recipient {
                    None => true,
                    Some(r) => audience.is_empty() || audience.iter().any(|a| r.matches(a)),
                }
            })
            .collect()
    }

    /// The greeting for `recipient`, falling back to the configured default.
    pub fn greeting_for(&self, recipient: &Recipient) -> String {
        self.greeting
            .render(recipient, &self.config.greeting.default)
    }

    /// The web archive copy of this edition.
    pub fn archive_url(&self) -> String {
        format!(
            "{}/{}/",
            self.config.archive.site_url.trim_end_matches('/'),
            self.number
        )
    }

    /// `List-Id` value: `Series <series-slug.list-domain>`, or with a list's slug in front
    /// (`<london.series-slug.list-domain>`) for a send to a named list or selector.
    pub fn list_id(&self, list: Option<&str>) -> String {
        let series = &self.config.organisation.series;
        let id = format!(
            "{}.{}",
            self.config.series_slug(),
            self.config.sender.list_domain
        );
        match list.map(crate::config::slug) {
            Some(list) => format!("{series} <{list}.{id}>"),
            None => format!("{series} <{id}>"),
        }
    }

    /// Whether `field` is a member field (for greeting checks without a store).
    pub fn is_member_field(field: &str) -> bool {
        MEMBER_FIELDS.contains(&field)
    }
}
