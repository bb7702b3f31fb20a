//! Rendering: an edition and an audience variant into an HTML part (CSS inlined) and a plain
//! text part (wrapped at 72 columns), each with holes for the personal fields.
//!
//! Templates come from [`templates`] (built in, overridable file by file) and get the typed
//! context of [`context`]; handlebars runs in strict mode. Markdown bodies go through
//! [`markdown`], which never lets raw HTML through.

pub mod context;
pub mod markdown;
pub mod personal;
pub mod templates;

use handlebars::Handlebars;

use crate::edition::Edition;
use crate::error::{Error, Result};
use context::{
    AttachmentContext, BulletinContext, ContentsEntry, LinksContext, MemberContext,
    OrganisationContext, SectionContext, SignatoryContext,
};
use personal::{Field, Personal};
use templates::Templates;

/// The divider between sections, as the seeds print it.
pub const DIVIDER: &str = "--oo00oo--";

/// A bulletin rendered for one audience variant, personal fields still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The HTML part.
    pub html: Personal,
    /// The plain-text part.
    pub text: Personal,
}

/// The two template registries: HTML (escaping) and plain text (no escaping).
pub struct Renderer {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    css: String,
    inliner: css_inline::CSSInliner<'static>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Html,
    Text,
}

impl Renderer {
    /// Compiles `templates`; a template with a syntax error is reported by name.
    pub fn new(templates: &Templates) -> Result<Renderer> {
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        text.register_escape_fn(handlebars::no_escape);
        for registry in [&mut html, &mut text] {
            registry.set_strict_mode(true);
            registry.set_prevent_indent(true);
        }
        for (name, source) in templates.iter() {
            let register = |registry: &mut Handlebars<'static>, key: &str| {
                registry.register_template_string(key, source).map_err(|e| {
                    let (line, column) = e.pos().unzip();
                    Error::Template {
                        name: format!("{}/{name}", templates::DIR),
                        line,
                        column,
                        message: template_syntax_message(e.reason()),
                    }
                })
            };
            let partial = name.strip_prefix("partials/");
            if let Some(stem) = name.strip_suffix(".html.hbs") {
                register(
                    &mut html,
                    partial.map_or(stem, |p| p.trim_end_matches(".html.hbs")),
                )?;
            } else if let Some(stem) = name.strip_suffix(".txt.hbs") {
                register(
                    &mut text,
                    partial.map_or(stem, |p| p.trim_end_matches(".txt.hbs")),
                )?;
            }
        }
        let css = templates.get("style.css").unwrap_or_default().to_string();
        let inliner = css_inline::CSSInliner::options()
            .keep_at_rules(true)
            .load_remote_stylesheets(false)
            .build();
        Ok(Renderer {
            html,
            text,
            css,
            inliner,
        })
    }

    /// Renders `edition` with the sections marked `true` in `visible`.
    pub fn render(&self, edition: &Edition, visible: &[bool]) -> Result<Rendered> {
        let html_context = self.context(edition, visible, Flavour::Html);
        let html = self
            .html
            .render("bulletin", &html_context)
            .map_err(|e| render_error(Flavour::Html, &e, &html_context))?;
        let html = self
            .inliner
            .inline(&html)
            .map_err(|source| Error::CssInline {
                name: format!("{}/bulletin.html.hbs", templates::DIR),
                source,
            })?;
        let text_context = self.context(edition, visible, Flavour::Text);
        let text = self
            .text
            .render("bulletin", &text_context)
            .map_err(|e| render_error(Flavour::Text, &e, &text_context))?;
        Ok(Rendered {
            html: Personal::split(&html)?,
            text: Personal::split(&tidy_text(&text))?,
        })
    }

    fn context(&self, edition: &Edition, visible: &[bool], flavour: Flavour) -> BulletinContext {
        let b = &edition.bulletin;
        let config = &edition.config;
        let org = &config.organisation;
        let text = flavour == Flavour::Text;
        let wrapped = |s: &str| -> String {
            if text {
                markdown::wrap(s, "", "").join("\n")
            } else {
                s.to_string()
            }
        };
        let mut next_reference = 1;
        let mut markdown_block = |md: &str| -> (String, Option<String>) {
            if text {
                let t = markdown::to_text(md, next_reference);
                next_reference += t.references.len();
                let refs = (!t.references.is_empty()).then(|| t.references.join("\n"));
                (t.body, refs)
            } else {
                (markdown::to_html(md), None)
            }
        };

        let (intro, intro_references) = match &b.intro {
            Some(i) if !i.get_ref().trim().is_empty() => {
                let (body, refs) = markdown_block(i.get_ref());
                (Some(body), refs)
            }
            _ => (None, None),
        };
        // Intro references print right after the intro in the text part.
        let intro = match (intro, intro_references) {
            (Some(body), Some(refs)) => Some(format!("{body}\n\n{refs}")),
            (intro, _) => intro,
        };

        let mut sections = Vec::new();
        for (index, section) in b.sections.iter().enumerate() {
            if !visible.get(index).copied().unwrap_or(true) {
                continue;
            }
            let number = sections.len() + 1;
            let heading = section.heading.get_ref().trim();
            let (body, references) = markdown_block(section.body.get_ref());
            let kind = section.kind.as_ref().map(|k| k.get_ref().clone());
            let label = kind
                .as_deref()
                .and_then(|k| config.section_kind(k))
                .map(|k| k.label.clone());
            let signed: Vec<&str> = section.signed.iter().map(|s| s.get_ref().trim()).collect();
            let heading_text = wrapped(heading);
            let rule_width = heading_text
                .lines()
                .map(textwrap::core::display_width)
                .max()
                .unwrap_or(0)
                .min(markdown::TEXT_WIDTH);
            sections.push(SectionContext {
                number,
                anchor: format!("s{number}"),
                heading: heading_text,
                rule: if text {
                    "=".repeat(rule_width)
                } else {
                    String::new()
                },
                kind,
                label,
                body,
                signed: (!signed.is_empty()).then(|| wrapped(&join_names(&signed))),
                references,
                first: number == 1,
            });
        }
        let contents = if sections.len() >= 3 {
            sections
                .iter()
                .map(|s| ContentsEntry {
                    number: s.number,
                    anchor: s.anchor.clone(),
                    heading: if text {
                        markdown::wrap(s.heading.replace('\n', " ").as_str(), "", "     ")
                            .join("\n")
                    } else {
                        s.heading.clone()
                    },
                    label: s.label.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };

        let signatories: Vec<SignatoryContext> = b
            .signatories
            .iter()
            .map(|s| {
                let name = s.name.get_ref().trim().to_string();
                let role = s.role.as_ref().map(|r| r.get_ref().trim().to_string());
                let on_behalf_of = s
                    .on_behalf_of
                    .as_ref()
                    .map(|o| o.get_ref().trim().to_string());
                let mut line = match &role {
                    Some(role) if !role.is_empty() => format!("{name}, {role}"),
                    _ => name.clone(),
                };
                if let Some(o) = &on_behalf_of {
                    line = format!("{line}, on behalf of {o}");
                }
                SignatoryContext {
                    name,
                    role,
                    on_behalf_of,
                    line: if text {
                        markdown::wrap(&line, "", "  ").join("\n")
                    } else {
                        String::new()
                    },
                }
            })
            .collect();
        let signatory_width = 100 / u32::try_from(signatories.len().max(1)).unwrap_or(1);

        let to_line = (!b.to.is_empty()).then(|| {
            let names: Vec<String> =
                b.to.iter()
                    .map(|t| {
                        let t = t.get_ref().trim();
                        config
                            .sections
                            .iter()
                            .find(|(kind, _)| kind.eq_ignore_ascii_case(t))
                            .and_then(|(_, k)| k.to_name.clone())
                            .unwrap_or_else(|| t.to_string())
                    })
                    .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            wrapped(&format!("To: all members in {}", join_names(&names)))
        });

        BulletinContext {
            organisation: OrganisationContext {
                name: org.name.clone(),
                series: org.series.clone(),
                address: wrapped(&org.address),
                website: org.website.clone(),
                website_host: host(&org.website),
            },
            number: edition.number,
            date: edition.date.strftime("%A, %-d %B %Y").to_string(),
            date_iso: edition.date.to_string(),
            subject: edition.subject.clone(),
            headline: b
                .headline
                .as_ref()
                .map(|h| h.get_ref().trim())
                .filter(|h| !h.is_empty())
                .map(wrapped),
            to_line,
            greeting: Field::Greeting.marker(),
            intro,
            contents,
            sections,
            signatories,
            signatory_width,
            attachments: edition
                .attachments
                .iter()
                .map(|a| AttachmentContext {
                    filename: a.filename.clone(),
                    size: human_size(a.bytes.len()),
                })
                .collect(),
            member: MemberContext {
                name: Field::Name.marker(),
                first_name: Field::FirstName.marker(),
                email: Field::Email.marker(),
            },
            links: LinksContext {
                unsubscribe: Field::Unsubscribe.marker(),
                unsubscribe_mailto: Field::UnsubscribeMailto.marker(),
                preferences: Field::Preferences.marker(),
                archive: edition.archive_url(),
                website: org.website.clone(),
            },
            divider: DIVIDER.to_string(),
            css: if text {
                String::new()
            } else {
                self.css.clone()
            },
        }
    }
}

/// The file a registered template came from: `bulletin` or a partial's name.
fn template_file(registered: &str, flavour: Flavour) -> String {
    let extension = match flavour {
        Flavour::Html => "html.hbs",
        Flavour::Text => "txt.hbs",
    };
    if registered == "bulletin" {
        format!("{}/bulletin.{extension}", templates::DIR)
    } else {
        format!("{}/partials/{registered}.{extension}", templates::DIR)
    }
}

/// A render failure as a sentence at its place in the template file that failed (a
/// partial's own file, not the page that included it).
fn render_error(flavour: Flavour, e: &handlebars::RenderError, context: &BulletinContext) -> Error {
    use handlebars::RenderErrorReason as R;
    let name = template_file(e.template_name.as_deref().unwrap_or("bulletin"), flavour);
    let message = match e.reason() {
        R::MissingVariable(Some(path)) => {
            let fields = field_paths(context);
            format!(
                "`{path}` is not a field templates can use{}",
                crate::suggest::did_you_mean(path, fields.iter().map(String::as_str))
            )
        }
        R::MissingVariable(None) => "a field this template uses does not exist".into(),
        R::PartialNotFound(p) => format!(
            "there is no partial `{p}` (a file `{}`)",
            template_file(p, flavour)
        ),
        R::HelperNotFound(h) => format!("there is no helper `{h}`"),
        R::TemplateNotFound(t) => format!("there is no template `{t}`"),
        R::TemplateError(t) => template_syntax_message(t.reason()),
        other => other.to_string(),
    };
    Error::Template {
        name,
        line: e.line_no,
        column: e.column_no,
        message,
    }
}

/// A template's syntax error as a sentence.
fn template_syntax_message(reason: &handlebars::TemplateErrorReason) -> String {
    use handlebars::TemplateErrorReason as T;
    match reason {
        T::MismatchingClosedHelper(opened, closing)
        | T::MismatchingClosedDecorator(opened, closing) => {
            format!("`{{{{#{opened}}}}}` is closed by `{{{{/{closing}}}}}`; close it with `{{{{/{opened}}}}}`")
        }
        T::InvalidSyntax(_) => "the handlebars here cannot be read: look for a `{{#…}}` block never closed with `{{/…}}`, a `{{` without its `}}`, or a stray `}}`".into(),
        T::InvalidParam(p) => format!("`{p}` is not a valid parameter here"),
        T::NestedSubexpression => "a subexpression inside a subexpression is not supported".into(),
        other => other.to_string(),
    }
}

/// Every field a template can name, dotted (`organisation.address`), and the fields of
/// each item a block like `{{#each sections}}` walks, as the block names them (`heading`,
/// `this.heading`).
fn field_paths(context: &BulletinContext) -> Vec<String> {
    fn walk(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    out.push(path.clone());
                    walk(v, &path, out);
                }
            }
            serde_json::Value::Array(items) => {
                if let Some(first) = items.first() {
                    walk(first, "", out);
                    walk(first, "this", out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::to_value(context) {
        walk(&value, "", &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// `A`, `A and B`, `A, B and C`.
pub fn join_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The host of a URL, for link text: `https://union.example.org/x` → `union.example.org`.
fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_string()
}

fn human_size(bytes: usize) -> String {
    match bytes {
        0..1024 => crate::text::count(bytes as u64, "byte", "bytes"),
        1024..1_048_576 => format!("{} KB", bytes.div_ceil(1024)),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

/// Normalises rendered plain text: no trailing spaces, at most one blank line in a row, no
/// blank lines at the start, one newline at the end, and no line over 78 characters (a
/// longer line from a template is re-wrapped).
fn tidy_text(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        // "-- " (with its space) is the signature separator mail readers recognise.
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        if textwrap::core::display_width(line) > markdown::MAX_LINE && !line.contains('\u{FDD0}') {
            let indent: String = line.chars().take_while(|c| *c == ' ').collect();
            out.extend(markdown::wrap(line.trim_start(), &indent, &indent));
        } else {
            out.push(line.to_string());
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_names_as_people_write_them() {
        assert_eq!(join_names(&["A"]), "A");
        assert_eq!(join_names(&["A", "B"]), "A and B");
        assert_eq!(join_names(&["A", "B", "C"]), "A, B and C");
    }

    #[test]
    fn tidy_text_collapses_blank_lines_and_rewraps_long_lines() {
        let long = "word ".repeat(30);
        let tidy = tidy_text(&format!("\n\na  \n\n\n\nb\n{long}\n\n"));
        let lines: Vec<&str> = tidy.lines().collect();
        assert_eq!(&lines[..3], ["a", "", "b"]);
        assert!(lines.iter().all(|l| l.chars().count() <= 78));
        assert!(tidy.ends_with("word\n"));
    }

    #[test]
    fn hosts_and_sizes() {
        assert_eq!(host("https://union.example.org/x?y"), "union.example.org");
        assert_eq!(human_size(785), "785 bytes");
        assert_eq!(human_size(2048), "2 KB");
    }
}
