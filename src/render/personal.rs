//! A rendered part with holes for the personal fields. Templates are rendered once per
//! audience variant with a marker in place of each personal value; filling the holes is all
//! that is left per member, so personalising 100,000 copies costs string copies, not
//! 100,000 template renders.

use std::fmt::Write;

use crate::error::{Error, Result};

/// A value that differs from member to member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// "Dear Jo", or the default greeting.
    Greeting,
    /// The member's full name (empty when unknown).
    Name,
    /// The member's first name (empty when unknown).
    FirstName,
    /// The member's address.
    Email,
    /// The one-click unsubscribe URL with the member's token.
    Unsubscribe,
    /// The mailto unsubscribe URL with the member's token.
    UnsubscribeMailto,
    /// The member's preferences page, with their token.
    Preferences,
}

impl Field {
    const ALL: [Field; 7] = [
        Field::Greeting,
        Field::Name,
        Field::FirstName,
        Field::Email,
        Field::Unsubscribe,
        Field::UnsubscribeMailto,
        Field::Preferences,
    ];

    /// The marker rendered in place of this field. Unicode noncharacters are reserved for
    /// internal use, so no bulletin or template text can contain them by accident.
    pub fn marker(self) -> String {
        format!("\u{FDD0}{}\u{FDD1}", self as u8)
    }
}

const OPEN: char = '\u{FDD0}';
const CLOSE: char = '\u{FDD1}';

/// The personal values for one copy, unescaped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    /// See [`Field::Greeting`].
    pub greeting: String,
    /// See [`Field::Name`].
    pub name: String,
    /// See [`Field::FirstName`].
    pub first_name: String,
    /// See [`Field::Email`].
    pub email: String,
    /// See [`Field::Unsubscribe`].
    pub unsubscribe: String,
    /// See [`Field::UnsubscribeMailto`].
    pub unsubscribe_mailto: String,
    /// See [`Field::Preferences`].
    pub preferences: String,
}

impl Values {
    /// The value of `field`.
    pub fn get(&self, field: Field) -> &str {
        match field {
            Field::Greeting => &self.greeting,
            Field::Name => &self.name,
            Field::FirstName => &self.first_name,
            Field::Email => &self.email,
            Field::Unsubscribe => &self.unsubscribe,
            Field::UnsubscribeMailto => &self.unsubscribe_mailto,
            Field::Preferences => &self.preferences,
        }
    }
}

/// Rendered text split at its personal fields: `literals[0] field[0] literals[1] …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personal {
    literals: Vec<String>,
    fields: Vec<Field>,
}

impl Personal {
    /// Splits `rendered` at the markers of [`Field::marker`].
    pub fn split(rendered: &str) -> Result<Personal> {
        let mut literals = Vec::new();
        let mut fields = Vec::new();
        let mut rest = rendered;
        while let Some(open) = rest.find(OPEN) {
            literals.push(rest[..open].to_string());
            let after = &rest[open + OPEN.len_utf8()..];
            let close = after
                .find(CLOSE)
                .ok_or_else(|| Error::Internal("a personal field marker was cut in two".into()))?;
            let field = after[..close]
                .parse::<usize>()
                .ok()
                .and_then(|i| Field::ALL.get(i).copied())
                .ok_or_else(|| Error::Internal("an unknown personal field marker".into()))?;
            fields.push(field);
            rest = &after[close + CLOSE.len_utf8()..];
        }
        literals.push(rest.to_string());
        if literals.iter().any(|l| l.contains(CLOSE)) {
            return Err(Error::Internal(
                "a personal field marker was cut in two".into(),
            ));
        }
        Ok(Personal { literals, fields })
    }

    /// The literal pieces between fields (one more than the fields).
    pub fn literals(&self) -> &[String] {
        &self.literals
    }

    /// The fields, in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The text with every field filled by `values`, each passed through `escape`.
    pub fn fill(&self, values: &Values, escape: impl Fn(&str) -> String) -> String {
        let mut out =
            String::with_capacity(self.literals.iter().map(String::len).sum::<usize>() + 256);
        for (i, literal) in self.literals.iter().enumerate() {
            out.push_str(literal);
            if let Some(field) = self.fields.get(i) {
                let _ = write!(out, "{}", escape(values.get(*field)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_fills() {
        let rendered = format!(
            "<p>{}</p><a href=\"{}\">x</a>",
            Field::Greeting.marker(),
            Field::Unsubscribe.marker()
        );
        let p = Personal::split(&rendered).unwrap();
        assert_eq!(p.fields(), [Field::Greeting, Field::Unsubscribe]);
        let values = Values {
            greeting: "Dear <Jo>".into(),
            unsubscribe: "https://u.example/u/T".into(),
            ..Values::default()
        };
        let html = p.fill(&values, handlebars::html_escape);
        assert_eq!(
            html,
            "<p>Dear &lt;Jo&gt;</p><a href=\"https://u.example/u/T\">x</a>"
        );
    }

    #[test]
    fn broken_markers_are_errors() {
        assert!(Personal::split("a\u{FDD0}0").is_err());
        assert!(Personal::split("a\u{FDD0}9\u{FDD1}").is_err());
        assert!(Personal::split("a\u{FDD1}").is_err());
    }
}
