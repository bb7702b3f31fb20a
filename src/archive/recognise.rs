//! Recognising our own bulletins in received mail, and splitting them into sections where
//! their structure shows them, so a search hit can name its section.

use regex_lite::Regex;

use crate::config::Config;
use crate::error::{Error, Result};

/// Recognises bulletins of the organisation's series.
#[derive(Debug, Clone)]
pub struct Recogniser {
    pattern: Regex,
    list_domain: String,
    list_id: String,
    series_slug: String,
    list_address: String,
}

impl Recogniser {
    /// From `[archive] series_pattern` (its first group is the number) and our own headers.
    pub fn new(config: &Config) -> Result<Recogniser> {
        let source = &config.archive.series_pattern;
        let pattern = Regex::new(&format!("(?i){source}")).map_err(|e| Error::Setting {
            context: format!("`archive.series_pattern` `{source}` is not a regular expression"),
            source: Box::new(e),
        })?;
        if pattern.captures_len() < 2 {
            return Err(Error::Usage(format!(
                "`archive.series_pattern` `{source}` needs a group for the number, like `Latest From Napo (\\d+)`"
            )));
        }
        Ok(Recogniser {
            pattern,
            list_domain: config.sender.list_domain.to_lowercase(),
            list_id: format!("{}.{}", config.series_slug(), config.sender.list_domain)
                .to_lowercase(),
            series_slug: config.series_slug(),
            list_address: config.sender.list_address.clone(),
        })
    }

    /// Which copy of bulletin `number` a message with this Message-ID (without brackets)
    /// and subject is, when it is one mailout sent or built: the copy for everyone
    /// (`build`'s, to the list address), a proof, or a member's own copy. `None` for a
    /// bulletin mailout did not make (an older one, or from elsewhere).
    pub fn copy_kind(
        &self,
        number: u32,
        message_id: Option<&str>,
        subject: Option<&str>,
    ) -> Option<crate::store::CopyKind> {
        use crate::store::CopyKind;
        let proof_subject = subject.is_some_and(|s| s.trim_start().starts_with("[PROOF]"));
        let (local, domain) = message_id?.split_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.list_domain) {
            return proof_subject.then_some(CopyKind::Proof);
        }
        let mut parts = local.split('.');
        if parts.next()?.parse::<u32>().ok()? != number {
            return proof_subject.then_some(CopyKind::Proof);
        }
        let rest: Vec<&str> = parts.collect();
        match rest.as_slice() {
            ["proof", ..] => Some(CopyKind::Proof),
            [hash]
                if *hash
                    == crate::message::message_id_hash(
                        &self.series_slug,
                        number,
                        &self.list_address,
                    ) =>
            {
                Some(if proof_subject {
                    CopyKind::Proof
                } else {
                    CopyKind::Everyone
                })
            }
            [hash] if hash.len() == 20 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(if proof_subject {
                    CopyKind::Proof
                } else {
                    CopyKind::Member
                })
            }
            _ => proof_subject.then_some(CopyKind::Proof),
        }
    }

    /// The bulletin number of a message with this subject, Message-ID (without brackets)
    /// and List-Id, if it is one of ours.
    pub fn number(
        &self,
        subject: Option<&str>,
        message_id: Option<&str>,
        list_id: Option<&str>,
    ) -> Option<u32> {
        let from_subject = subject
            .and_then(|s| self.pattern.captures(s))
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().trim().parse().ok());
        if from_subject.is_some() {
            return from_subject;
        }
        // Our own Message-IDs are `<NUMBER.HASH@list_domain>` (a proof's
        // `<NUMBER.proof.NONCE.HASH@list_domain>`).
        let ours = list_id.is_some_and(|l| l.to_lowercase().contains(&self.list_id));
        message_id
            .and_then(|id| id.split_once('@'))
            .filter(|(_, domain)| ours || domain.eq_ignore_ascii_case(&self.list_domain))
            .and_then(|(local, _)| local.split_once('.'))
            .filter(|(_, rest)| {
                let hash = rest.rsplit('.').next().unwrap_or("");
                hash.len() == 20 && hash.chars().all(|c| c.is_ascii_hexdigit())
            })
            .and_then(|(number, _)| number.parse().ok())
    }
}

/// Splits a bulletin's text into sections: at divider lines (`--oo00oo--`, `* * *`) and at
/// underlined headings (a line followed by `====` or `----`). Each section's heading is its
/// underlined heading, or its first short line. Text after a `-- ` signature line is left
/// out. Returns nothing when the text shows no structure.
pub fn sections(text: &str) -> Vec<(Option<String>, String)> {
    let text = text.replace("\r\n", "\n");
    let body = match text.find("\n-- \n") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    let lines: Vec<&str> = body.lines().collect();
    let mut chunks: Vec<Vec<&str>> = vec![Vec::new()];
    let mut structured = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_divider(line) {
            structured = true;
            chunks.push(Vec::new());
            i += 1;
            continue;
        }
        let underlined = lines
            .get(i + 1)
            .is_some_and(|next| is_underline(next, line));
        if underlined {
            structured = true;
            // A kind label (`[NPS updates]`) just above the heading belongs to its section.
            let mut carried = Vec::new();
            if let Some(current) = chunks.last_mut() {
                while let Some(last) = current.last() {
                    let t = last.trim();
                    if t.is_empty() || (t.starts_with('[') && t.ends_with(']')) {
                        carried.push(current.pop().unwrap_or_default());
                    } else {
                        break;
                    }
                }
            }
            carried.reverse();
            let current = chunks
                .last()
                .map_or(0, |c| c.iter().filter(|l| !l.trim().is_empty()).count());
            if current > 0 {
                chunks.push(carried);
            } else if let Some(last) = chunks.last_mut() {
                last.extend(carried);
            }
        }
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(line);
        }
        i += 1;
    }
    if !structured {
        return Vec::new();
    }
    let mut out = Vec::new();
    for chunk in chunks {
        let text = chunk.join("\n").trim().to_string();
        if text.is_empty() {
            continue;
        }
        let mut heading = None;
        for (j, line) in chunk.iter().enumerate() {
            if chunk
                .get(j + 1)
                .is_some_and(|next| is_underline(next, line))
            {
                heading = Some(line.trim().to_string());
                break;
            }
        }
        let heading = heading.or_else(|| {
            chunk
                .iter()
                .map(|l| l.trim())
                .find(|l| !(l.is_empty() || l.starts_with('[') && l.ends_with(']')))
                .filter(|l| l.chars().count() <= 100)
                .map(str::to_string)
        });
        out.push((heading, text));
    }
    out
}

fn is_divider(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || t.len() > 40 {
        return false;
    }
    let core = t.trim_matches(|c: char| c == '-' || c.is_whitespace());
    let oo = !core.is_empty()
        && core.chars().all(|c| matches!(c, 'o' | 'O' | '0'))
        && core.contains('0')
        && core.chars().any(|c| c == 'o' || c == 'O');
    let stars = t.chars().all(|c| c == '*' || c == ' ') && t.matches('*').count() >= 3;
    oo || stars
}

fn is_underline(line: &str, above: &str) -> bool {
    let t = line.trim();
    let width = above.trim().chars().count();
    t.len() >= 3
        && width > 0
        && (t.chars().all(|c| c == '=') || t.chars().all(|c| c == '-'))
        && t.len() + 3 >= width.min(72)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_subjects_and_our_own_message_ids() {
        let r = Recogniser::new(&Config::builtin()).unwrap();
        assert_eq!(
            r.number(Some("Latest From Example Union 240: Pay"), None, None),
            Some(240)
        );
        assert_eq!(
            r.number(Some("Fwd: latest from example union 12"), None, None),
            Some(12)
        );
        assert_eq!(r.number(Some("Other news"), None, None), None);
        assert_eq!(
            r.number(
                Some("[PROOF] x"),
                Some("241.0123456789abcdef0123@lists.union.example.org"),
                None
            ),
            Some(241)
        );
        assert_eq!(
            r.number(
                None,
                Some("241.0123456789abcdef0123@elsewhere.example"),
                None
            ),
            None
        );
    }

    #[test]
    fn a_pattern_without_a_group_is_refused() {
        let mut c = Config::builtin();
        c.archive.series_pattern = "Latest From".into();
        assert!(
            Recogniser::new(&c)
                .unwrap_err()
                .to_string()
                .contains("needs a group")
        );
        c.archive.series_pattern = "Latest (".into();
        assert!(Recogniser::new(&c).is_err());
    }

    #[test]
    fn splits_at_dividers_and_underlined_headings() {
        let text = "Latest From X 9\nFriday\n\nDear Member\n\nIntro.\n\n[NPS updates]\nPay talks\n=========\n\nTalks resume.\n\nHelen Banner\n\n--oo00oo--\n\nAGM motions\n===========\n\nSend them.\n\n-- \nFooter\nUnsubscribe";
        let s = sections(text);
        let headings: Vec<Option<&str>> = s.iter().map(|(h, _)| h.as_deref()).collect();
        assert_eq!(
            headings,
            [
                Some("Latest From X 9"),
                Some("Pay talks"),
                Some("AGM motions")
            ]
        );
        assert!(s[1].1.contains("Talks resume."));
        assert!(!s[2].1.contains("Footer"));
    }

    #[test]
    fn dividers_alone_split_plain_mailouts() {
        let text = "Chesterfield inquest\n\nThe inquest concluded.\n\n--oo00oo--\n\nOperation Protect fringe\n\nWe held a meeting.";
        let s = sections(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].0.as_deref(), Some("Operation Protect fringe"));
        assert!(sections("Just a letter.\n\nNo structure.").is_empty());
    }
}
