//! Archive commands: `import` and `archive list|show|search|export|site`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mailout::runtime::Runtime;
use mailout::workspace::{Options, Workspace};
use mailout::{Error, archive};

use super::output::{day, errln, outln, print_table};

/// `mailout import`
#[derive(Args, Debug)]
pub struct Import {
    /// Files and folders.
    paths: Vec<PathBuf>,
    /// A mailbox over IMAP: imaps://USER@HOST/MAILBOX (password in MAILOUT_IMAP_PASSWORD).
    #[arg(long, value_name = "URL")]
    imap: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `mailout archive …`
#[derive(Subcommand, Debug)]
pub enum ArchiveCommand {
    /// Numbered bulletins (gaps and copies marked), then other mail.
    List {
        /// Only messages from this mail folder (as imported: `Lists/Union`).
        #[arg(long, value_name = "NAME")]
        folder: Option<String>,
    },
    /// One message: a bulletin NUMBER, #ID, or a Message-ID.
    Show {
        /// NUMBER, #ID or MESSAGE-ID.
        what: String,
        /// Print the message as received.
        #[arg(long)]
        raw: bool,
    },
    /// Full-text search: words, "phrases", prefix*, AND, OR, NOT (or -word), parentheses,
    /// subject:WORD, from:WORD.
    Search {
        /// The query.
        #[arg(allow_hyphen_values = true)]
        query: String,
        /// Most results.
        #[arg(long, default_value = "20")]
        limit: usize,
    },
    /// Write every message, as received, to an mbox file.
    Export {
        /// The mbox file to write.
        #[arg(long, value_name = "FILE")]
        mbox: PathBuf,
    },
    /// Publish the archive as a static website.
    Site {
        /// Where to write it.
        dir: PathBuf,
    },
}

/// `mailout import`, reading IMAP on `runtime`.
pub fn import(options: &Options, args: Import, runtime: &Runtime) -> Result<ExitCode, Error> {
    let Import { paths, imap, json } = args;
    let workspace = Workspace::open(options)?;
    let store = workspace.store()?;
    let recogniser = archive::recognise::Recogniser::new(&workspace.config)?;
    if paths.is_empty() && imap.is_none() {
        return Err(Error::Usage(
            "say what to import: files, folders, or `--imap URL`".into(),
        ));
    }
    let bar = counter("importing");
    let progress = |s: &archive::Summary| {
        if let Some(bar) = &bar {
            bar.set_position(s.total());
        }
    };
    let mut summary = archive::import_paths(store, &recogniser, &paths, &progress)?;
    if let Some(url) = imap {
        let more = archive::import_imap(store, &recogniser, &url, &progress, runtime)?;
        summary.imported += more.imported;
        summary.duplicates += more.duplicates;
        summary.flagged += more.flagged;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for (source, error) in &summary.unreadable {
        errln!("warning: could not read `{source}`: {error}");
    }
    if json {
        outln!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        outln!(
            "imported: {}  duplicates: {}  flagged: {}",
            summary.imported,
            summary.duplicates,
            summary.flagged
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailout archive …`: on a store opened read-only, but for `site`, which first puts the
/// copy for everyone of each sent bulletin into the archive when it is missing (and, like
/// `build`, leaves no store behind in the demo).
pub fn archive(options: &Options, command: ArchiveCommand) -> Result<ExitCode, Error> {
    let workspace = if matches!(command, ArchiveCommand::Site { .. }) {
        let workspace = Workspace::open_draft(options)?;
        workspace.archive_sent_editions()?;
        workspace
    } else {
        Workspace::open_read_only(options)?
    };
    let store = workspace.store()?;
    archive_command(&workspace, store, command)
}

/// A counter on a terminal, nothing otherwise.
pub fn counter(what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what}: {{pos}} messages  {{per_sec}}  {{elapsed}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    Some(bar)
}

fn archive_command(
    workspace: &Workspace,
    store: &dyn mailout::store::Store,
    command: ArchiveCommand,
) -> Result<ExitCode, Error> {
    match command {
        ArchiveCommand::List { folder } => {
            let mut entries = store.archive_list()?;
            if let Some(folder) = &folder {
                let wanted = folder.trim_matches('/');
                entries.retain(|e| {
                    e.folder
                        .as_deref()
                        .unwrap_or("")
                        .eq_ignore_ascii_case(wanted)
                        || (wanted.eq_ignore_ascii_case("INBOX") && e.folder.is_none())
                });
            }
            let mut by_number: std::collections::BTreeMap<u32, Vec<&mailout::store::ArchiveEntry>> =
                Default::default();
            let mut others = Vec::new();
            for e in &entries {
                match e.bulletin {
                    Some(n) => by_number.entry(n).or_default().push(e),
                    None => others.push(e),
                }
            }
            let mut rows = vec![["NUMBER", "DATE", "SUBJECT"].map(String::from).to_vec()];
            let mut previous: Option<u32> = None;
            for (number, copies) in &by_number {
                if let Some(p) = previous
                    && *number > p + 1
                {
                    let gap = if *number == p + 2 {
                        format!("{}", p + 1)
                    } else {
                        format!("{}-{}", p + 1, number - 1)
                    };
                    rows.push(vec![
                        format!("missing: {gap}"),
                        String::new(),
                        String::new(),
                    ]);
                }
                previous = Some(*number);
                let Some(first) = archive::best_copy(copies) else {
                    continue;
                };
                let mut subject = first.subject.clone().unwrap_or_default();
                if copies.len() > 1 || first.copy.is_some() {
                    subject.push_str(&format!("  ({})", archive::copies_note(copies)));
                }
                rows.push(vec![
                    number.to_string(),
                    day(first.date.as_deref()),
                    subject,
                ]);
            }
            if by_number.is_empty() {
                outln!(
                    "no bulletins of `{}` in the archive",
                    workspace.config.organisation.series
                );
            } else {
                print_table(&rows);
            }
            if !others.is_empty() {
                outln!();
                let mut rows = vec![
                    ["ID", "DATE", "FOLDER", "FROM", "SUBJECT"]
                        .map(String::from)
                        .to_vec(),
                ];
                for e in others {
                    let mut subject = e.subject.clone().unwrap_or_default();
                    if let Some(why) = &e.flagged {
                        subject = format!("(flagged: {why}) {subject}");
                    }
                    rows.push(vec![
                        format!("#{}", e.id),
                        day(e.date.as_deref()),
                        e.folder.clone().unwrap_or_default(),
                        e.sender.clone().unwrap_or_default(),
                        subject,
                    ]);
                }
                print_table(&rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Show { what, raw } => {
            let id = if let Some(id) = what.strip_prefix('#') {
                id.parse::<i64>()
                    .map_err(|_| Error::Usage(format!("`{what}` is not an archive id")))?
            } else if what.contains('@') {
                store
                    .archive_by_message_id(what.trim().trim_matches(['<', '>']))?
                    .ok_or_else(|| {
                        Error::Usage(format!("no archived message has Message-ID `{what}`"))
                    })?
                    .id
            } else {
                let number: u32 = what.parse().map_err(|_| {
                    Error::Usage(format!(
                        "`{what}` is not a bulletin number, #ID or Message-ID"
                    ))
                })?;
                let copies = store.archive_bulletin(number)?;
                let refs: Vec<&mailout::store::ArchiveEntry> = copies.iter().collect();
                archive::best_copy(&refs)
                    .ok_or_else(|| {
                        Error::Usage(format!("bulletin {number} is not in the archive"))
                    })?
                    .id
            };
            let message = store
                .archive_message(id)?
                .ok_or_else(|| Error::Usage(format!("there is no archived message #{id}")))?;
            if raw {
                let mut bytes = None;
                store.archive_raw(&mut |i, compressed| {
                    if i == id {
                        bytes = Some(archive::parse::decompress(compressed).map_err(|source| {
                            Error::Io {
                                context: format!("could not decompress archived message #{id}"),
                                path: None,
                                source,
                            }
                        })?);
                    }
                    Ok(())
                })?;
                super::output::write_raw(&bytes.unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            }
            let e = &message.entry;
            outln!("id:         #{}", e.id);
            if let Some(n) = e.bulletin {
                outln!("bulletin:   {n}");
            }
            outln!("subject:    {}", e.subject.as_deref().unwrap_or(""));
            outln!("from:       {}", e.sender.as_deref().unwrap_or(""));
            outln!(
                "to:         {}",
                message.recipients.as_deref().unwrap_or("")
            );
            outln!("date:       {}", e.date.as_deref().unwrap_or(""));
            outln!("message-id: {}", e.message_id.as_deref().unwrap_or(""));
            if let Some(why) = &e.flagged {
                outln!("flagged:    {why} (kept as received; `--raw` prints it)");
            }
            for a in &message.attachments {
                outln!(
                    "attachment: {} ({}, {} bytes, {})",
                    a.filename.as_deref().unwrap_or("(unnamed)"),
                    a.content_type,
                    a.size,
                    a.hash.get(..12).unwrap_or(&a.hash)
                );
            }
            for (i, heading) in message.sections.iter().enumerate() {
                outln!(
                    "section {}:  {}",
                    i + 1,
                    heading.as_deref().unwrap_or("(untitled)")
                );
            }
            outln!();
            let raw = archive::parse::decompress(&message.raw_zstd).unwrap_or_default();
            let (text, _) = archive::parse::bodies(&raw);
            outln!("{}", text.as_deref().unwrap_or("").trim_end());
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Search { query, limit } => {
            let limits = archive::search::Limits::from_config(&workspace.config.archive);
            let hits = archive::search::search(store, &query, limit, &limits)?;
            if hits.is_empty() {
                outln!("nothing found for `{query}`");
            }
            for h in hits {
                let e = &h.entry;
                let place = match (&e.bulletin, &h.section) {
                    (Some(n), Some((i, heading))) => format!(
                        "  [bulletin {n}, section {i}: {}]",
                        heading.as_deref().unwrap_or("")
                    ),
                    (Some(n), None) => format!("  [bulletin {n}]"),
                    _ => String::new(),
                };
                outln!(
                    "#{}  {}  {}{place}",
                    e.id,
                    day(e.date.as_deref()),
                    e.subject.as_deref().unwrap_or("(no subject)")
                );
                outln!(
                    "    {}",
                    h.snippet.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Export { mbox } => {
            let n = archive::export_mbox(store, &mbox)?;
            outln!(
                "exported {} to `{}`",
                mailout::text::count(n as u64, "message", "messages"),
                mbox.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Site { dir } => {
            let s = archive::site::write_site(store, &workspace.config, &dir)?;
            outln!(
                "{}: {}, {}, {}",
                dir.display(),
                mailout::text::count(s.bulletins as u64, "bulletin", "bulletins"),
                mailout::text::count(s.messages as u64, "other message", "other messages"),
                mailout::text::count(s.attachments as u64, "attachment", "attachments")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
