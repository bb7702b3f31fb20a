//! The typed contexts templates are rendered with. Every name a template may use is a field
//! here; handlebars runs in strict mode, so a misspelt name is an error, not a blank in a
//! mail that went to 8,000 members.

use serde::Serialize;

/// Everything `bulletin.html.hbs` and `bulletin.txt.hbs` can show.
#[derive(Debug, Clone, Serialize)]
pub struct BulletinContext {
    /// The organisation.
    pub organisation: OrganisationContext,
    /// The bulletin number.
    pub number: u32,
    /// The date, written out: `Friday, 20 March 2026`.
    pub date: String,
    /// The date as `2026-03-20`.
    pub date_iso: String,
    /// The Subject header.
    pub subject: String,
    /// The lead title, if any.
    pub headline: Option<String>,
    /// `To: all members in Cafcass, NPS, PbNI and the CRC`, if the bulletin says whom.
    pub to_line: Option<String>,
    /// The member's greeting (personal).
    pub greeting: String,
    /// The introduction (HTML in the HTML part, wrapped text in the text part).
    pub intro: Option<String>,
    /// The table of contents: empty when there are fewer than three sections.
    pub contents: Vec<ContentsEntry>,
    /// The sections this member receives, in order.
    pub sections: Vec<SectionContext>,
    /// The closing sign-off.
    pub signatories: Vec<SignatoryContext>,
    /// Width of each signatory's column, in percent.
    pub signatory_width: u32,
    /// The files attached to the message.
    pub attachments: Vec<AttachmentContext>,
    /// The member (personal fields).
    pub member: MemberContext,
    /// Links in the footer.
    pub links: LinksContext,
    /// The divider between sections.
    pub divider: String,
    /// The stylesheet (HTML only; inlined into the elements after rendering).
    pub css: String,
}

/// The organisation, from the config.
#[derive(Debug, Clone, Serialize)]
pub struct OrganisationContext {
    /// Its name.
    pub name: String,
    /// The series title.
    pub series: String,
    /// Postal address.
    pub address: String,
    /// Website URL.
    pub website: String,
    /// The website's host name, for link text.
    pub website_host: String,
}

/// One line of the table of contents.
#[derive(Debug, Clone, Serialize)]
pub struct ContentsEntry {
    /// 1-based position.
    pub number: usize,
    /// The section's anchor (`s1`).
    pub anchor: String,
    /// The section's heading.
    pub heading: String,
    /// The kind's label, if any.
    pub label: Option<String>,
}

/// One section.
#[derive(Debug, Clone, Serialize)]
pub struct SectionContext {
    /// 1-based position among the sections this member receives.
    pub number: usize,
    /// Anchor for the table of contents (`s1`).
    pub anchor: String,
    /// The heading (wrapped in the text part).
    pub heading: String,
    /// A rule as wide as the heading, to underline it in plain text.
    pub rule: String,
    /// The section kind (`nps`), if any.
    pub kind: Option<String>,
    /// The kind's label (`NPS updates`), if any.
    pub label: Option<String>,
    /// The body (HTML, or wrapped text).
    pub body: String,
    /// `Helen Banner and Ian Lawrence`, if the section is signed.
    pub signed: Option<String>,
    /// Plain text only: the section's link references, one per line.
    pub references: Option<String>,
    /// Whether this is the first section (no divider before it).
    pub first: bool,
}

/// One closing signatory.
#[derive(Debug, Clone, Serialize)]
pub struct SignatoryContext {
    /// Their name.
    pub name: String,
    /// Their role, if given.
    pub role: Option<String>,
    /// For whom they sign, if given.
    pub on_behalf_of: Option<String>,
    /// Plain text only: the signatory on one line (or wrapped), with role.
    pub line: String,
}

/// One attachment.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentContext {
    /// File name.
    pub filename: String,
    /// Human size: `12 KB`.
    pub size: String,
}

/// The member a copy is for. Every field is personal.
#[derive(Debug, Clone, Serialize)]
pub struct MemberContext {
    /// Full name (may be empty).
    pub name: String,
    /// First name (may be empty).
    pub first_name: String,
    /// Address.
    pub email: String,
}

/// Links every copy carries.
#[derive(Debug, Clone, Serialize)]
pub struct LinksContext {
    /// One-click unsubscribe page with the member's token (personal).
    pub unsubscribe: String,
    /// mailto unsubscribe with the member's token (personal).
    pub unsubscribe_mailto: String,
    /// The member's preferences page (personal).
    pub preferences: String,
    /// This bulletin in the web archive.
    pub archive: String,
    /// The organisation's website.
    pub website: String,
}
