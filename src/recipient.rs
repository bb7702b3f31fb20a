//! Who a copy is for, and the personal fields a copy may show: the greeting, the member's
//! name and address, and their unsubscribe links.

use std::collections::BTreeMap;

/// The member fields a greeting may name, besides a member's own CSV attributes.
pub const MEMBER_FIELDS: &[&str] = &["first_name", "name", "email", "branch", "employer"];

/// The person a copy is rendered for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipient {
    /// Their address, normalised.
    pub email: String,
    /// Their full name, if known.
    pub name: Option<String>,
    /// Their branch, if known.
    pub branch: Option<String>,
    /// Their employer, if known.
    pub employer: Option<String>,
    /// Other CSV columns.
    pub attributes: BTreeMap<String, String>,
}

impl Recipient {
    /// A recipient known only by address (the list's own address in `build`).
    pub fn address_only(email: impl Into<String>) -> Self {
        Recipient {
            email: email.into(),
            ..Recipient::default()
        }
    }

    /// The value of member field `field`, if the member has a non-empty one.
    pub fn field(&self, field: &str) -> Option<&str> {
        let value = match field {
            "email" => Some(self.email.as_str()),
            "name" => self.name.as_deref(),
            "first_name" => self
                .attributes
                .get("first_name")
                .map(String::as_str)
                .or_else(|| self.name.as_deref().and_then(first_name)),
            "branch" => self.branch.as_deref(),
            "employer" => self.employer.as_deref(),
            other => self.attributes.get(other).map(String::as_str),
        };
        value.map(str::trim).filter(|v| !v.is_empty())
    }

    /// Whether this member belongs to `audience` (a branch or employer name, any case).
    pub fn matches(&self, audience: &str) -> bool {
        [&self.employer, &self.branch]
            .into_iter()
            .flatten()
            .any(|v| v.trim().eq_ignore_ascii_case(audience.trim()))
    }
}

/// The first word of a name, unless the name is written "Surname, Given".
fn first_name(name: &str) -> Option<&str> {
    match name.split_once(',') {
        Some((_, given)) => given.split_whitespace().next(),
        None => name.split_whitespace().next(),
    }
}

/// A greeting such as `Dear {{first_name}}`: literal text and member fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    parts: Vec<GreetingPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GreetingPart {
    Text(String),
    Field(String),
}

/// A mistake in a greeting, at a byte range of the greeting text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreetingError {
    /// Where in the greeting.
    pub range: std::ops::Range<usize>,
    /// What is wrong.
    pub message: String,
}

impl Greeting {
    /// Parses `{{field}}` placeholders; `known` says which field names exist.
    pub fn parse(text: &str, known: &dyn Fn(&str) -> bool) -> Result<Greeting, Vec<GreetingError>> {
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(GreetingPart::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find("}}") else {
                errors.push(GreetingError {
                    range: offset + open..offset + rest.len(),
                    message: "`{{` is not closed by `}}`".into(),
                });
                rest = "";
                break;
            };
            let inner = &rest[open + 2..open + close];
            let name = inner.trim();
            let range = offset + open..offset + open + close + 2;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                errors.push(GreetingError {
                    range,
                    message: format!(
                        "`{{{{{inner}}}}}` is not a member field; write e.g. `{{{{first_name}}}}`"
                    ),
                });
            } else if !known(name) {
                errors.push(GreetingError {
                    range,
                    message: format!(
                        "the greeting names `{name}`, a field no member has; known fields: {}",
                        crate::toml_file::list(MEMBER_FIELDS)
                    ),
                });
            } else {
                parts.push(GreetingPart::Field(name.to_string()));
            }
            offset += open + close + 2;
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(GreetingPart::Text(rest.to_string()));
        }
        if errors.is_empty() {
            Ok(Greeting { parts })
        } else {
            Err(errors)
        }
    }

    /// A greeting with no fields.
    pub fn plain(text: &str) -> Greeting {
        Greeting {
            parts: vec![GreetingPart::Text(text.to_string())],
        }
    }

    /// The greeting for `recipient`, or `fallback` when a field it names is empty for them.
    pub fn render(&self, recipient: &Recipient, fallback: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                GreetingPart::Text(t) => out.push_str(t),
                GreetingPart::Field(f) => match recipient.field(f) {
                    Some(v) => out.push_str(v),
                    None => return fallback.to_string(),
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> bool {
        MEMBER_FIELDS.contains(&name)
    }

    #[test]
    fn greeting_uses_first_name_and_falls_back() {
        let g = Greeting::parse("Dear {{first_name}},", &known).unwrap();
        let mut r = Recipient::address_only("a@b.example");
        assert_eq!(g.render(&r, "Dear Member"), "Dear Member");
        r.name = Some("Ada Lovelace".into());
        assert_eq!(g.render(&r, "Dear Member"), "Dear Ada,");
        r.name = Some("Clarke, Naomi".into());
        assert_eq!(g.render(&r, "Dear Member"), "Dear Naomi,");
    }

    #[test]
    fn unknown_fields_are_located() {
        let errors = Greeting::parse("Hi {{frist_name}} and {{ }}", &known).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].range, 3..17);
        assert!(errors[0].message.contains("`frist_name`"));
        assert!(Greeting::parse("Hi {{name", &known).is_err());
    }

    #[test]
    fn audience_matches_employer_or_branch_in_any_case() {
        let r = Recipient {
            employer: Some("NPS".into()),
            branch: Some("Yorkshire".into()),
            ..Recipient::default()
        };
        assert!(r.matches("nps"));
        assert!(r.matches("Yorkshire"));
        assert!(!r.matches("Cafcass"));
    }
}
