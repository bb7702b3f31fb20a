//! The search index on PostgreSQL: a `tsvector` per row built from text folded in Rust, and
//! a parsed query as a `tsquery`.

use postgres::GenericClient;

use crate::search::query::{Field, Node, Query};
use crate::search::words;

use super::bridge::{Db, Step};

pub(super) const INSERT_SEARCH: &str = "
INSERT INTO archive_search (subject, sender, heading, body, message, section, tsv)
SELECT u.subject, u.sender, u.heading, u.body, u.message, u.section,
       setweight(to_tsvector('simple', u.fsubject), 'A')
       || setweight(to_tsvector('simple', u.fheading), 'B')
       || setweight(to_tsvector('simple', u.fsender), 'C')
       || setweight(to_tsvector('simple', u.fbody), 'D')
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
            $7::text[], $8::text[], $9::text[], $10::text[])
     WITH ORDINALITY AS u(subject, sender, heading, body, message, section,
                          fsubject, fsender, fheading, fbody, ord)
ORDER BY u.ord";

/// Messages whose whole text matches, best first. Weights are SQLite's bm25 weights
/// (subject 6, sender 2, heading 4, body 1) scaled: {D, C, B, A}.
pub(super) const SEARCH: &str = "
SELECT m.id, m.message_id, m.date, m.sender, m.subject, m.bulletin, m.flagged, m.size,
       m.folder, m.copy_kind, ts_rank('{0.1, 0.2, 0.4, 0.6}', s.tsv, q, 1)::float8 AS rank
FROM archive_search s JOIN messages m ON m.id = s.message, to_tsquery('simple', $1) AS q
WHERE s.section IS NULL AND s.tsv @@ q
ORDER BY rank DESC, m.id
LIMIT $2";

/// `query` as a `tsquery`: a word `'w'`, a prefix `'w':*`, a phrase `'a' <-> 'b'`, a field
/// by weight (subject A, sender C), and `&`, `|`, `!` as the tree says. Words are folded
/// letters and digits only, so quoting them is enough.
pub(super) fn tsquery(query: &Query) -> String {
    fn term(t: &crate::search::query::Term) -> String {
        let weight = match t.field {
            Some(Field::Subject) => "A",
            Some(Field::From) => "C",
            None => "",
        };
        let last = t.words.len().saturating_sub(1);
        let parts: Vec<String> = t
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let star = if t.prefix && i == last { "*" } else { "" };
                if star.is_empty() && weight.is_empty() {
                    format!("'{w}'")
                } else {
                    format!("'{w}':{star}{weight}")
                }
            })
            .collect();
        format!("({})", parts.join(" <-> "))
    }
    fn node(n: &Node) -> String {
        match n {
            Node::Term(t) => term(t),
            Node::Or(parts) => format!(
                "({})",
                parts.iter().map(node).collect::<Vec<_>>().join(" | ")
            ),
            Node::And(parts) => format!(
                "({})",
                parts
                    .iter()
                    .map(|p| match p {
                        Node::Not(inner) => format!("!{}", node(inner)),
                        other => node(other),
                    })
                    .collect::<Vec<_>>()
                    .join(" & ")
            ),
            Node::Not(inner) => format!("!{}", node(inner)),
        }
    }
    node(&query.root)
}

/// The words of `text`, folded, separated by spaces, for `to_tsvector('simple', …)`; words
/// stop once `budget` (an upper bound of the bytes their `tsvector` takes) is spent.
pub(super) fn folded(text: &str, budget: usize) -> String {
    let mut out = String::with_capacity(text.len().min(budget));
    let mut spent = 0;
    words::each_word(text, |_, _, word| {
        spent += word.len() + 9;
        if spent > budget {
            return false;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        true
    });
    out
}

/// A row of `archive_search` to write.
pub(super) struct SearchRow {
    pub(super) subject: Option<String>,
    pub(super) sender: Option<String>,
    pub(super) heading: Option<String>,
    pub(super) body: Option<String>,
    pub(super) message: Option<i64>,
    pub(super) section: Option<i64>,
}

/// How much of each field goes into a row's `tsvector`, in bytes of its upper bound
/// (PostgreSQL refuses a `tsvector` over 1 MB): words past it are not indexed.
pub(super) const SHORT_BUDGET: usize = 16_000;
pub(super) const BODY_BUDGET: usize = 960_000;

/// Writes search rows, their `tsvector` built from the folded text.
pub(super) fn insert_search_rows<C: GenericClient>(
    db: &mut Db<'_, C>,
    rows: &[SearchRow],
) -> Step<()> {
    for chunk in rows.chunks(500) {
        let text = |f: fn(&SearchRow) -> &Option<String>| -> Vec<Option<&str>> {
            chunk.iter().map(|r| f(r).as_deref()).collect()
        };
        let folded = |f: fn(&SearchRow) -> &Option<String>, budget| -> Vec<String> {
            chunk
                .iter()
                .map(|r| folded(f(r).as_deref().unwrap_or(""), budget))
                .collect()
        };
        let message: Vec<Option<i64>> = chunk.iter().map(|r| r.message).collect();
        let section: Vec<Option<i64>> = chunk.iter().map(|r| r.section).collect();
        db.execute(
            INSERT_SEARCH,
            &[
                &text(|r| &r.subject),
                &text(|r| &r.sender),
                &text(|r| &r.heading),
                &text(|r| &r.body),
                &message,
                &section,
                &folded(|r| &r.subject, SHORT_BUDGET),
                &folded(|r| &r.sender, SHORT_BUDGET),
                &folded(|r| &r.heading, SHORT_BUDGET),
                &folded(|r| &r.body, BODY_BUDGET),
            ],
        )?;
    }
    Ok(())
}
