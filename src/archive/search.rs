//! `mailout archive search`: the query parsed once ([`crate::search::query`]), the store asked for
//! the messages whose whole text matches, each bulletin given once (whatever copies of it
//! the archive holds: the copy for everyone is shown where it matched), and each hit named
//! by the section that holds the most of the query's words (in its heading first), with a
//! snippet from it.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::Result;
use crate::search::query;
use crate::search::words;
use crate::store::{Archive, ArchiveEntry, CopyKind, SearchHit};

/// How far a search may go: `[archive] search_max_terms` and `search_timeout_secs`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The most words a query may hold.
    pub max_terms: usize,
    /// How long the store may search before the search is cut short.
    pub budget: Duration,
}

impl Limits {
    /// The limits `config` sets.
    pub fn from_config(config: &crate::config::Archive) -> Limits {
        Limits {
            max_terms: config.search_max_terms,
            budget: Duration::from_secs_f64(config.search_timeout_secs.clamp(0.001, 600.0)),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::from_config(&crate::config::Archive::default())
    }
}

fn copy_rank(e: &ArchiveEntry) -> u8 {
    match e.copy {
        Some(CopyKind::Everyone) => 0,
        None => 1,
        Some(CopyKind::Member) => 2,
        Some(CopyKind::Proof) => 3,
    }
}

/// The best `limit` hits for `text`, within `limits`.
pub fn search(
    store: &dyn Archive,
    text: &str,
    limit: usize,
    limits: &Limits,
) -> Result<Vec<SearchHit>> {
    let query = query::parse_with(text, limits.max_terms)?;
    let marks = query.marks();
    // More than asked: copies of one bulletin fold into one hit.
    let found = store.archive_search(
        &query,
        limit.saturating_mul(4).saturating_add(8),
        limits.budget,
    )?;
    let mut hits: Vec<SearchHit> = Vec::new();
    let mut by_bulletin: HashMap<u32, usize> = HashMap::new();
    for (entry, rank) in found {
        if let Some(n) = entry.bulletin {
            if let Some(&i) = by_bulletin.get(&n) {
                if copy_rank(&entry) < copy_rank(&hits[i].entry) {
                    hits[i].entry = entry;
                }
                continue;
            }
            by_bulletin.insert(n, hits.len());
        }
        hits.push(SearchHit {
            entry,
            section: None,
            snippet: String::new(),
            rank,
        });
    }
    hits.truncate(limit);
    for hit in &mut hits {
        let rows = store.archive_search_rows(hit.entry.id)?;
        let best = rows
            .iter()
            .filter(|(section, ..)| section.is_some())
            .map(|row| {
                // Words in its heading name a section better than words in its text.
                let heading = row.1.as_deref().map_or((0, 0), |h| words::score(h, &marks));
                let body = words::score(&row.2, &marks);
                ((body.0.max(heading.0), heading.0, body.1 + heading.1), row)
            })
            .filter(|(score, _)| score.0 > 0)
            .max_by(|(a, ra), (b, rb)| a.cmp(b).then(rb.0.cmp(&ra.0)));
        match best {
            Some((_, (section, heading, body))) => {
                hit.section = section.map(|p| (p, heading.as_deref().map(words::display_form)));
                hit.snippet = words::snippet(body, &marks);
            }
            None => {
                let whole = rows.first().map_or("", |r| r.2.as_str());
                hit.snippet = words::snippet(whole, &marks);
            }
        }
    }
    Ok(hits)
}
