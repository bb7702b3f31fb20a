//! The member roster (PRODUCT.md §5): importing it from CSV, and choosing recipients by
//! selectors (`all`, `branch:NAME`, `employer:NAME`, a named list in the config).

use std::collections::BTreeMap;
use std::path::Path;

use crate::address::{clean, normalise_address};
use crate::config::Config;
use crate::error::{Error, Result};
pub use crate::store::{Member, Selection};

impl Member {
    /// The member as a recipient of a copy.
    pub fn recipient(&self) -> crate::recipient::Recipient {
        crate::recipient::Recipient {
            email: self.email.clone(),
            name: self.name.clone(),
            branch: self.branch.clone(),
            employer: self.employer.clone(),
            attributes: self.attributes.clone(),
        }
    }
}

/// A CSV row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file's line number of the row.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// Members read from a CSV file: a header row naming the columns (`email` required;
/// `name`, `branch`, `employer` known; others kept as attributes), then one member per row.
/// Iterating yields the valid rows; the others are collected in [`MemberCsv::skipped`] with
/// their line numbers.
pub struct MemberCsv {
    reader: csv::Reader<std::io::Cursor<Vec<u8>>>,
    /// Byte offsets of the file's line feeds, to name a row's line whatever the line ends
    /// (the csv crate's own line count is off by one with CRLF).
    line_feeds: Vec<u64>,
    headers: Vec<String>,
    email: usize,
    name: Option<usize>,
    branch: Option<usize>,
    employer: Option<usize>,
    record: csv::StringRecord,
    /// The line each address was first seen on.
    seen: std::collections::HashMap<String, u64>,
    /// Rows that were not imported, in file order.
    pub skipped: Vec<Skipped>,
    /// Rows that were imported with something to say (an address seen before in the
    /// file), in file order.
    pub notes: Vec<Skipped>,
}

impl MemberCsv {
    /// The line address `email` was first read on.
    pub fn line_of_address(&self, email: &str) -> Option<u64> {
        self.seen.get(email).copied()
    }

    /// Opens `path` and reads its header row.
    pub fn open(path: &Path) -> Result<MemberCsv> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if let Err(e) = std::str::from_utf8(&bytes) {
            return Err(not_utf8(path, &bytes, e.valid_up_to()));
        }
        let line_feeds = memchr::memchr_iter(b'\n', &bytes)
            .map(|i| i as u64)
            .collect();
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::Fields)
            .from_reader(std::io::Cursor::new(bytes));
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| Error::Failed {
                context: format!("could not read the first row of `{}`", path.display()),
                source: Box::new(e),
            })?
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_lowercase())
            .collect();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let Some(email) = column("email") else {
            return Err(Error::Usage(format!(
                "`{}`: the first row must name the columns, and one must be `email` (found: {})",
                path.display(),
                headers.join(", ")
            )));
        };
        Ok(MemberCsv {
            email,
            name: column("name"),
            branch: column("branch"),
            employer: column("employer"),
            headers,
            reader,
            line_feeds,
            record: csv::StringRecord::new(),
            seen: std::collections::HashMap::new(),
            skipped: Vec::new(),
            notes: Vec::new(),
        })
    }

    /// The line (from 1) holding byte `offset` of the file.
    fn line_of(&self, offset: u64) -> u64 {
        // After a CRLF the csv crate places the next record at the LF: it belongs to the
        // line before, so the record starts just after it.
        self.line_feeds.partition_point(|&lf| lf <= offset) as u64 + 1
    }

    fn field(&self, i: Option<usize>) -> Option<String> {
        i.and_then(|i| self.record.get(i))
            .map(clean)
            .filter(|v| !v.is_empty())
    }
}

impl Iterator for MemberCsv {
    type Item = Member;

    fn next(&mut self) -> Option<Member> {
        loop {
            let line = self.line_of(self.reader.position().byte());
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(line, |p| self.line_of(p.byte()));
                    self.skipped.push(Skipped {
                        line,
                        reason: format!("unreadable row: {e}"),
                    });
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        return None;
                    }
                    continue;
                }
            }
            let line = self
                .record
                .position()
                .map_or(line, |p| self.line_of(p.byte()));
            if self.record.iter().all(|f| f.is_empty()) {
                continue;
            }
            let raw = self.record.get(self.email).unwrap_or("");
            let Some(email) = normalise_address(raw) else {
                let reason = if raw.trim().is_empty() {
                    "no email address".to_string()
                } else {
                    format!("`{}` is not a valid email address", clean(raw))
                };
                self.skipped.push(Skipped { line, reason });
                continue;
            };
            match self.seen.get(&email) {
                Some(first) => self.notes.push(Skipped {
                    line,
                    reason: format!(
                        "`{email}` is also on line {first}; this row replaces that one"
                    ),
                }),
                None => {
                    self.seen.insert(email.clone(), line);
                }
            }
            if self.record.len() > self.headers.len() {
                let extra: Vec<String> = self
                    .record
                    .iter()
                    .skip(self.headers.len())
                    .map(clean)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("`{}`", v.chars().take(40).collect::<String>()))
                    .collect();
                if !extra.is_empty() {
                    self.notes.push(Skipped {
                        line,
                        reason: format!(
                            "this row has {} but the header names {}; {} left out (a comma inside a value needs quotes: \"Smith, Jo\")",
                            crate::text::count(self.record.len() as u64, "value", "values"),
                            crate::text::count(self.headers.len() as u64, "column", "columns"),
                            extra.join(", ")
                        ),
                    });
                }
            }
            let known = [Some(self.email), self.name, self.branch, self.employer];
            let mut attributes = BTreeMap::new();
            for (i, header) in self.headers.iter().enumerate() {
                if known.contains(&Some(i)) || header.is_empty() {
                    continue;
                }
                if let Some(value) = self.field(Some(i)) {
                    attributes.insert(header.clone(), value);
                }
            }
            return Some(Member {
                email,
                name: self.field(self.name),
                branch: self.field(self.branch),
                employer: self.field(self.employer),
                attributes,
            });
        }
    }
}

/// The error for a CSV file that is not UTF-8: where the first byte that is not is, what
/// it is likely to be, and how to save the file as UTF-8.
fn not_utf8(path: &Path, bytes: &[u8], at: usize) -> Error {
    let line = memchr::memchr_iter(b'\n', &bytes[..at]).count() + 1;
    let byte = bytes[at];
    // Windows-1252 (Excel's "CSV" on Windows) and Latin-1 agree on the letters people type.
    let guess = match byte {
        0xa0..=0xff => format!(", which in Windows-1252 is `{}`", char::from(byte)),
        0x80 => ", which in Windows-1252 is `€`".to_string(),
        0x92 => ", which in Windows-1252 is `’`".to_string(),
        _ => String::new(),
    };
    Error::Usage(format!(
        "`{}` line {line} is not UTF-8 text (byte 0x{byte:02X}{guess}); save the file as \"CSV UTF-8\" (Excel: Save As, CSV UTF-8; LibreOffice: character set Unicode (UTF-8)), or convert it: `iconv -f windows-1252 -t utf-8 {} > members-utf8.csv`",
        path.display(),
        path.display()
    ))
}

/// `--to` parsed: the canonical text (the job's key) and what it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selectors {
    /// Sorted, deduplicated, lowercase selectors joined by commas: `branch:london,employer:nps`.
    pub key: String,
    /// The members they select.
    pub selection: Selection,
    /// The named list, when `--to` is exactly one; its name goes into List-Id.
    pub list_name: Option<String>,
}

/// Parses `--to` (a comma-separated union of selectors), expanding named lists from the
/// config.
pub fn parse_selectors(text: &str, config: &Config) -> Result<Selectors> {
    let mut parts: Vec<String> = text
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(Error::Usage(
            "`--to` needs at least one selector: `all`, `branch:NAME`, `employer:NAME` or a list name".into(),
        ));
    }
    let list_name = match parts.as_slice() {
        [one] if config.lists.contains_key(one.as_str()) => Some(one.clone()),
        [one] if one == "all" => None,
        [one] => Some(one.clone()),
        _ => None,
    };
    let mut selection = Selection::default();
    let mut seen_lists = Vec::new();
    expand(&parts, config, &mut selection, &mut seen_lists)?;
    selection.branches.sort();
    selection.branches.dedup();
    selection.employers.sort();
    selection.employers.dedup();
    selection.skip_domains = config.privacy.skipped();
    // A send to one optional list leaves out who opted out of it.
    selection.optional_list = list_name
        .as_ref()
        .filter(|name| config.lists.get(name.as_str()).is_some_and(|l| l.optional))
        .cloned();
    for p in parts.iter_mut() {
        *p = canonical(p);
    }
    parts.sort();
    parts.dedup();
    Ok(Selectors {
        key: parts.join(","),
        selection,
        list_name,
    })
}

fn canonical(selector: &str) -> String {
    match selector.split_once(':') {
        Some((kind, value)) => format!(
            "{}:{}",
            kind.trim().to_lowercase(),
            value.trim().to_lowercase()
        ),
        None => selector.trim().to_lowercase(),
    }
}

fn expand(
    parts: &[String],
    config: &Config,
    selection: &mut Selection,
    seen: &mut Vec<String>,
) -> Result<()> {
    for part in parts {
        match part.split_once(':') {
            _ if part.eq_ignore_ascii_case("all") => selection.all = true,
            Some((kind, value))
                if kind.trim().eq_ignore_ascii_case("branch") && !value.trim().is_empty() =>
            {
                selection.branches.push(value.trim().to_lowercase());
            }
            Some((kind, value))
                if kind.trim().eq_ignore_ascii_case("employer") && !value.trim().is_empty() =>
            {
                selection.employers.push(value.trim().to_lowercase());
            }
            None if config.lists.contains_key(part.as_str()) => {
                if seen.contains(part) {
                    return Err(Error::Usage(format!("list `{part}` includes itself")));
                }
                seen.push(part.clone());
                expand(&config.lists[part.as_str()].select, config, selection, seen)?;
                seen.pop();
            }
            _ => {
                let lists: Vec<&str> = config.lists.keys().map(String::as_str).collect();
                let known = if lists.is_empty() {
                    String::new()
                } else {
                    format!(", or a list: {}", crate::toml_file::list(&lists))
                };
                let mut names = vec!["all"];
                names.extend(lists.iter().copied());
                let hint = match crate::suggest::closest(part, names.iter().copied()) {
                    Some(name) => format!("; did you mean `{name}`? Expected"),
                    None => "; expected".to_string(),
                };
                return Err(Error::Usage(format!(
                    "unknown selector `{part}`{hint} `all`, `branch:NAME`, `employer:NAME`{known}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_reports_bad_ones_by_line_and_keeps_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(
            &path,
            "Email,Name,Branch,Employer,Grade\n\
             a@x.example,\"Clarke, Naomi\",London,NPS,PO\n\
             not-an-address,Bob,London,NPS,\n\
             \n\
             B@X.example,\"Evil\r\nBcc: all@x.example\",Wales,CRC,\n\
             ,No Address,Wales,CRC,\n",
        )
        .unwrap();
        let mut csv = MemberCsv::open(&path).unwrap();
        let members: Vec<Member> = csv.by_ref().collect();
        let skipped = csv.skipped;
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].name.as_deref(), Some("Clarke, Naomi"));
        assert_eq!(
            members[0].attributes.get("grade").map(String::as_str),
            Some("PO")
        );
        assert_eq!(members[1].email, "b@x.example");
        assert_eq!(members[1].name.as_deref(), Some("Evil Bcc: all@x.example"));
        assert_eq!(
            skipped,
            [
                Skipped {
                    line: 3,
                    reason: "`not-an-address` is not a valid email address".into()
                },
                Skipped {
                    line: 7,
                    reason: "no email address".into()
                },
            ]
        );
    }

    #[test]
    fn a_csv_without_an_email_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "a@x.example,Bob\n").unwrap();
        let err = MemberCsv::open(&path).err().unwrap().to_string();
        assert!(err.contains("one must be `email`"), "{err}");
    }

    #[test]
    fn selectors_expand_lists_and_have_a_canonical_key() {
        let mut config = Config::builtin();
        config.lists.insert(
            "north".into(),
            crate::config::NamedList {
                select: vec!["branch:Yorkshire".into(), "employer:Cafcass".into()],
                ..Default::default()
            },
        );
        let s = parse_selectors("employer:NPS, branch:London", &config).unwrap();
        assert_eq!(s.key, "branch:london,employer:nps");
        assert_eq!(s.selection.branches, ["london"]);
        let s = parse_selectors("north", &config).unwrap();
        assert_eq!(s.selection.branches, ["yorkshire"]);
        assert_eq!(s.selection.employers, ["cafcass"]);
        assert_eq!(s.list_name.as_deref(), Some("north"));
        assert!(parse_selectors("all", &config).unwrap().selection.all);
        let err = parse_selectors("nrth", &config).unwrap_err().to_string();
        assert!(
            err.contains("unknown selector `nrth`") && err.contains("`north`"),
            "{err}"
        );
        assert!(parse_selectors(" , ", &config).is_err());
    }

    #[test]
    fn selection_matches_without_case() {
        let member = Member {
            email: "a@x.example".into(),
            name: None,
            branch: Some("London".into()),
            employer: Some("NPS".into()),
            attributes: BTreeMap::new(),
        };
        let s = Selection {
            employers: vec!["nps".into()],
            ..Selection::default()
        };
        assert!(s.matches(&member));
        assert!(!Selection::default().matches(&member));
    }
}
