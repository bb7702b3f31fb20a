//! The archive's search language, parsed once in Rust into a tree that each store backend
//! translates into its own query (FTS5 `MATCH`, PostgreSQL `tsquery`), so that both
//! behave alike by construction and no backend error text reaches a user.
//!
//! ```text
//! pay ballot            both words, anywhere in the message
//! "pay award"           a phrase
//! negotiat*             a prefix (at least two letters)
//! pay OR pension        either
//! pay NOT pension       pay, without pension (also: pay -pension)
//! (pay OR pension) AND ballot
//! subject:ballot        in the subject; from:jo, in the sender
//! ```
//!
//! Words fold as the index folds them ([`super::words`]): case and accents do not matter,
//! and a word in a script written without spaces is the phrase of its characters.

use super::words::{self, Mark};
use crate::error::{Error, Result};

/// The most words a query may hold (each word of a phrase counts), unless
/// `[archive] search_max_terms` says otherwise.
pub const MAX_TERMS: usize = 32;
/// The fewest letters before a prefix's `*`.
pub const MIN_PREFIX: usize = 2;
/// The deepest nesting of parentheses.
const MAX_DEPTH: usize = 16;

/// Which field a term must be found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The subject.
    Subject,
    /// The sender (`From:`).
    From,
}

/// One thing to look for: folded words in order (one word, or a phrase), the last one a
/// prefix when `prefix`, in `field` or anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Where, when restricted.
    pub field: Option<Field>,
    /// The folded words (at least one).
    pub words: Vec<String>,
    /// Whether the last word is a prefix.
    pub prefix: bool,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A term.
    Term(Term),
    /// All of these (some may be [`Node::Not`]; at least one is not).
    And(Vec<Node>),
    /// Any of these.
    Or(Vec<Node>),
    /// Not this: only inside [`Node::And`].
    Not(Box<Node>),
}

/// A query, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The query as typed.
    pub text: String,
    /// Its tree.
    pub root: Node,
}

impl Query {
    /// The terms a hit must show (not those it must lack), for snippets and for finding
    /// the section that holds most of them.
    pub fn marks(&self) -> Vec<Mark> {
        let mut out = Vec::new();
        positive(&self.root, &mut out);
        out
    }

    /// The positive terms, as [`Term`]s.
    pub fn positive_terms(&self) -> Vec<&Term> {
        let mut out = Vec::new();
        positive_terms(&self.root, &mut out);
        out
    }
}

fn positive_terms<'a>(node: &'a Node, out: &mut Vec<&'a Term>) {
    match node {
        Node::Term(t) => out.push(t),
        Node::And(nodes) | Node::Or(nodes) => nodes.iter().for_each(|n| positive_terms(n, out)),
        Node::Not(_) => {}
    }
}

fn positive(node: &Node, out: &mut Vec<Mark>) {
    match node {
        Node::Term(t) => out.push(match (t.words.as_slice(), t.prefix) {
            ([one], false) => Mark::Word(one.clone()),
            ([one], true) => Mark::Prefix(one.clone()),
            (words, _) => Mark::Phrase(words.to_vec()),
        }),
        Node::And(nodes) | Node::Or(nodes) => nodes.iter().for_each(|n| positive(n, out)),
        Node::Not(_) => {}
    }
}

/// A token, with the column (from 1, in characters) it starts at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Minus,
    Quoted(String),
    Bare(String),
}

fn lex(text: &str) -> std::result::Result<Vec<(usize, Tok)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((column, Tok::Open));
                i += 1;
            }
            ')' => {
                out.push((column, Tok::Close));
                i += 1;
            }
            '"' => {
                let close = chars[i + 1..].iter().position(|c| *c == '"');
                let Some(close) = close else {
                    return Err(format!("the quote at column {column} is never closed"));
                };
                let inner: String = chars[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                // `"pay rise"*`: a phrase whose last word is a prefix.
                let star = chars.get(i) == Some(&'*');
                if star {
                    i += 1;
                }
                out.push((
                    column,
                    Tok::Quoted(if star { format!("{inner}*") } else { inner }),
                ));
            }
            '-' if chars
                .get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && !"()".contains(*n)) =>
            {
                out.push((column, Tok::Minus));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"()\"".contains(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push((
                    column,
                    match word.as_str() {
                        "AND" => Tok::And,
                        "OR" => Tok::Or,
                        "NOT" => Tok::Not,
                        _ => Tok::Bare(word),
                    },
                ));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: &'a [(usize, Tok)],
    at: usize,
    terms: usize,
    max_terms: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&(usize, Tok)> {
        self.toks.get(self.at)
    }

    fn end_column(&self) -> usize {
        self.toks.last().map_or(1, |(c, _)| c + 1)
    }

    fn expr(&mut self) -> std::result::Result<Node, String> {
        let mut alternatives = vec![self.and()?];
        while let Some((column, Tok::Or)) = self.peek().cloned() {
            self.at += 1;
            if matches!(
                self.peek(),
                None | Some((_, Tok::Close | Tok::Or | Tok::And))
            ) {
                return Err(format!("`OR` at column {column} has nothing after it"));
            }
            alternatives.push(self.and()?);
        }
        for a in &alternatives {
            if alternatives.len() > 1 && matches!(a, Node::Not(_)) {
                return Err(
                    "a word left out with NOT or `-` cannot be one side of OR: say what to look for on each side"
                        .into(),
                );
            }
        }
        Ok(if alternatives.len() == 1 {
            alternatives.remove(0)
        } else {
            Node::Or(alternatives)
        })
    }

    fn and(&mut self) -> std::result::Result<Node, String> {
        let mut parts = Vec::new();
        let mut first_column = self.peek().map_or(self.end_column(), |(c, _)| *c);
        loop {
            match self.peek().cloned() {
                None | Some((_, Tok::Close | Tok::Or)) => break,
                Some((column, Tok::And)) => {
                    self.at += 1;
                    if parts.is_empty() {
                        return Err(format!("`AND` at column {column} has nothing before it"));
                    }
                    if matches!(
                        self.peek(),
                        None | Some((_, Tok::Close | Tok::Or | Tok::And))
                    ) {
                        return Err(format!("`AND` at column {column} has nothing after it"));
                    }
                }
                Some(_) => {
                    if parts.is_empty() {
                        first_column = self.peek().map_or(first_column, |(c, _)| *c);
                    }
                    parts.push(self.unary()?);
                }
            }
        }
        if parts.is_empty() {
            return Err(format!("nothing to look for at column {first_column}"));
        }
        if parts.iter().all(|p| matches!(p, Node::Not(_))) && parts.len() > 1 {
            return Err(format!(
                "every word from column {first_column} is left out (NOT or `-`): say what to look for as well, as in `ballot -strike`"
            ));
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Node::And(parts)
        })
    }

    fn unary(&mut self) -> std::result::Result<Node, String> {
        match self.peek().cloned() {
            Some((column, Tok::Not | Tok::Minus)) => {
                self.at += 1;
                if matches!(
                    self.peek(),
                    None | Some((_, Tok::Close | Tok::Or | Tok::And | Tok::Not | Tok::Minus))
                ) {
                    return Err(format!(
                        "the `NOT` or `-` at column {column} has nothing after it to leave out"
                    ));
                }
                Ok(Node::Not(Box::new(self.primary()?)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> std::result::Result<Node, String> {
        let Some((column, tok)) = self.peek().cloned() else {
            return Err(format!(
                "nothing to look for at column {}",
                self.end_column()
            ));
        };
        self.at += 1;
        match tok {
            Tok::Open => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!(
                        "parentheses nest deeper than {MAX_DEPTH} at column {column}"
                    ));
                }
                let inner = self.expr()?;
                self.depth -= 1;
                match self.peek() {
                    Some((_, Tok::Close)) => {
                        self.at += 1;
                        if matches!(inner, Node::Not(_)) {
                            return Err(format!(
                                "the parentheses at column {column} only leave words out: say what to look for as well"
                            ));
                        }
                        Ok(inner)
                    }
                    _ => Err(format!("the `(` at column {column} is never closed")),
                }
            }
            Tok::Close => Err(format!("the `)` at column {column} closes nothing")),
            Tok::Quoted(text) => self.term(column, None, &text, true),
            Tok::Bare(text) => {
                let (field, rest) = match text.split_once(':') {
                    Some((f, rest)) if f.eq_ignore_ascii_case("subject") => {
                        (Some(Field::Subject), rest)
                    }
                    Some((f, rest)) if f.eq_ignore_ascii_case("from") => (Some(Field::From), rest),
                    _ => (None, text.as_str()),
                };
                if field.is_some() && rest.is_empty() {
                    // `subject:"pay rise"`: the phrase follows.
                    if let Some((_, Tok::Quoted(q))) = self.peek().cloned() {
                        self.at += 1;
                        return self.term(column, field, &q, true);
                    }
                    return Err(format!(
                        "`{text}` at column {column} needs a word after the colon"
                    ));
                }
                self.term(column, field, rest, false)
            }
            Tok::And | Tok::Or => Err(format!(
                "`{}` at column {column} has nothing before it",
                if tok == Tok::And { "AND" } else { "OR" }
            )),
            Tok::Not | Tok::Minus => Err(format!(
                "the `NOT` or `-` at column {column} cannot follow another"
            )),
        }
    }

    fn term(
        &mut self,
        column: usize,
        field: Option<Field>,
        text: &str,
        quoted: bool,
    ) -> std::result::Result<Node, String> {
        let prefix = text.ends_with('*');
        let body = text.trim_end_matches('*');
        let words = words::words(body);
        if words.is_empty() {
            return Err(if prefix {
                format!("the `*` at column {column} needs at least {MIN_PREFIX} letters before it")
            } else if quoted {
                format!("the phrase at column {column} has no words")
            } else {
                format!("`{text}` at column {column} has no letters or digits to look for")
            });
        }
        if prefix && words.last().is_some_and(|w| w.chars().count() < MIN_PREFIX) {
            return Err(format!(
                "`{text}` at column {column}: a prefix needs at least {MIN_PREFIX} letters before the `*`"
            ));
        }
        if body.contains('*') {
            return Err(format!(
                "`{text}` at column {column}: a `*` may only end a word"
            ));
        }
        self.terms += words.len();
        if self.terms > self.max_terms {
            return Err(format!(
                "the query has more than {} words (at column {column}); search with fewer",
                self.max_terms
            ));
        }
        Ok(Node::Term(Term {
            field,
            words,
            prefix,
        }))
    }
}

impl Query {
    /// The error a store gives when searching for this query ran past `budget`.
    pub fn cut_short(&self, budget: std::time::Duration) -> Error {
        let took = if budget.as_secs_f64() < 1.0 {
            format!("{} ms", budget.as_millis().max(1))
        } else {
            format!("{:.1} s", budget.as_secs_f64())
        };
        Error::Usage(format!(
            "the search for `{}` was cut short after {took}; narrow it down (fewer prefixes, more words)",
            self.text.chars().take(200).collect::<String>()
        ))
    }
}

/// Parses `text` with at most [`MAX_TERMS`] words; a mistake is an error that names its
/// column.
pub fn parse(text: &str) -> Result<Query> {
    parse_with(text, MAX_TERMS)
}

/// Parses `text` with at most `max_terms` words.
pub fn parse_with(text: &str, max_terms: usize) -> Result<Query> {
    let fail = |why: String| {
        Error::Usage(format!(
            "cannot search for `{}`: {why}",
            text.chars().take(200).collect::<String>()
        ))
    };
    if text.trim().is_empty() {
        return Err(Error::Usage(
            "say what to look for: words, \"a phrase\", prefix*, AND, OR, NOT".into(),
        ));
    }
    let toks = lex(text).map_err(fail)?;
    let mut parser = Parser {
        toks: &toks,
        at: 0,
        terms: 0,
        max_terms,
        depth: 0,
    };
    let root = parser.expr().map_err(fail)?;
    if let Some((column, _)) = parser.peek() {
        return Err(fail(format!("the `)` at column {column} closes nothing")));
    }
    if matches!(root, Node::Not(_)) {
        return Err(fail(
            "a query cannot only leave words out: say what to look for first, as in `ballot NOT strike`"
                .into(),
        ));
    }
    Ok(Query {
        text: text.to_string(),
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(words: &[&str]) -> Node {
        Node::Term(Term {
            field: None,
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix: false,
        })
    }

    #[test]
    fn the_language() {
        assert_eq!(
            parse("Pay Ballot").unwrap().root,
            Node::And(vec![term(&["pay"]), term(&["ballot"])])
        );
        assert_eq!(parse("\"pay rise\"").unwrap().root, term(&["pay", "rise"]));
        assert_eq!(
            parse("pay OR pension").unwrap().root,
            Node::Or(vec![term(&["pay"]), term(&["pension"])])
        );
        assert_eq!(
            parse("pay -pension").unwrap().root,
            Node::And(vec![
                term(&["pay"]),
                Node::Not(Box::new(term(&["pension"])))
            ])
        );
        assert_eq!(
            parse("pay NOT pension").unwrap().root,
            parse("pay -pension").unwrap().root
        );
        let Node::Term(t) = parse("subject:Négotiat*").unwrap().root else {
            panic!()
        };
        assert_eq!(
            (t.field, t.words, t.prefix),
            (Some(Field::Subject), vec!["negotiat".to_string()], true)
        );
        assert_eq!(parse("e-mail").unwrap().root, term(&["e", "mail"]));
        assert_eq!(parse("賃金").unwrap().root, term(&["賃", "金"]));
        assert!(matches!(
            parse("(pay OR pension) AND ballot").unwrap().root,
            Node::And(_)
        ));
    }

    #[test]
    fn mistakes_name_their_column() {
        for (query, expected) in [
            ("NOT pay", "cannot only leave words out"),
            ("-pay", "cannot only leave words out"),
            ("\"pay rise", "the quote at column 1 is never closed"),
            ("pay \"rise", "the quote at column 5 is never closed"),
            ("*", "the `*` at column 1 needs at least 2 letters"),
            ("a*", "a prefix needs at least 2 letters"),
            ("(pay", "the `(` at column 1 is never closed"),
            ("pay)", "the `)` at column 4 closes nothing"),
            ("pay OR", "`OR` at column 5 has nothing after it"),
            ("AND pay", "`AND` at column 1 has nothing before it"),
            ("pay OR -x", "cannot be one side of OR"),
            ("!!!", "has no letters or digits"),
            ("", "say what to look for"),
        ] {
            let e = parse(query).unwrap_err().to_string();
            assert!(e.contains(expected), "{query}: {e}");
        }
        let many = vec!["ab*"; 1000].join(" ");
        assert!(
            parse(&many)
                .unwrap_err()
                .to_string()
                .contains("more than 32 words")
        );
    }
}
