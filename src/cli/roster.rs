//! Roster commands: `members import|list`, `lists`, `unsubscribe`, `suppressed` and
//! `unsubscribes` (mail sent to the unsubscribe address).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mailout::members::{self, MemberCsv};
use mailout::runtime::Runtime;
use mailout::workspace::{Options, Workspace};
use mailout::{Error, clock};

use super::output::{count, errln, outln, print_table};

/// `mailout members …`
#[derive(Subcommand, Debug)]
pub enum Members {
    /// Add or update members from a CSV file (columns email,name,branch,employer,...).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// List members.
    List {
        /// Only these: `all`, `branch:NAME`, `employer:NAME` or a list name.
        #[arg(long, value_name = "SELECTORS")]
        to: Option<String>,
        /// Only members whose address is at one of `[privacy] employer_domains`.
        #[arg(long)]
        at_employer_domain: bool,
    },
    /// Every change of a member's mail status, with when, who or what made it, and the
    /// evidence: the record of their consent.
    History {
        /// The member's address.
        address: String,
    },
    /// Everything mailout holds about an address, as JSON (a subject access request).
    Export {
        /// The member's address.
        address: String,
    },
    /// Erase a member: their roster entry, history, bounces, archived personal copies and
    /// the personal fields of their journal rows. A keyed hash keeps the address from being
    /// added again by a later import.
    Erase {
        /// The member's address.
        address: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

/// `mailout unsubscribe`
#[derive(Args, Debug)]
pub struct Unsubscribe {
    /// Addresses.
    #[arg(required = true)]
    addresses: Vec<String>,
    /// Why, for the record.
    #[arg(long)]
    reason: Option<String>,
}

/// `mailout unsubscribes`
#[derive(Args, Debug)]
pub struct Unsubscribes {
    /// Files and folders of mail sent to the unsubscribe address (.eml, mbox, Maildir).
    paths: Vec<PathBuf>,
    /// A mailbox over IMAP: imaps://USER@HOST/MAILBOX (password in MAILOUT_IMAP_PASSWORD).
    #[arg(long, value_name = "URL")]
    imap: Option<String>,
    /// Read one message from standard input (for an MTA's pipe transport or a .forward).
    #[arg(long, conflicts_with_all = ["paths", "imap"])]
    stdin: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `mailout members …`.
pub fn members(options: &Options, command: Members) -> Result<ExitCode, Error> {
    match command {
        Members::Import { file } => {
            let workspace = Workspace::open(options)?;
            let mut csv = MemberCsv::open(&file)?;
            let (counts, erased) =
                workspace.import_members(&mut csv, &file.display().to_string())?;
            // Every warning in file order: rows skipped, and rows with a note.
            let mut warnings: Vec<(u64, String)> = csv
                .skipped
                .iter()
                .map(|s| (s.line, format!("{}; row skipped", s.reason)))
                .chain(csv.notes.iter().map(|n| (n.line, n.reason.clone())))
                .chain(erased.iter().map(|email| {
                    (
                        csv.line_of_address(email).unwrap_or(0),
                        format!("`{email}` was erased (`mailout members erase`) and is not added again; row skipped"),
                    )
                }))
                .collect();
            warnings.sort_by_key(|(line, _)| *line);
            for (line, warning) in warnings {
                errln!("{}:{line}: warning: {warning}", file.display());
            }
            outln!(
                "imported `{}`: {} new, {} updated, {} skipped",
                file.display(),
                counts.added,
                counts.updated,
                count((csv.skipped.len() + erased.len()) as u64, "row", "rows")
            );
        }
        Members::History { address } => {
            let workspace = Workspace::open_read_only(options)?;
            let events = mailout::consent::history(&workspace, &address)?;
            if events.is_empty() {
                errln!("no history for {}", mailout::consent::address(&address)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = vec![
                ["WHEN", "CHANGE", "SOURCE", "EVIDENCE"]
                    .map(String::from)
                    .to_vec(),
            ];
            for e in events {
                rows.push(vec![
                    e.at,
                    e.change,
                    super::output::cell(&e.source, 60),
                    super::output::cell(e.evidence.as_deref().unwrap_or("-"), 200),
                ]);
            }
            print_table(&rows);
        }
        Members::Export { address } => {
            let workspace = Workspace::open_read_only(options)?;
            let export = mailout::consent::export(&workspace, &address)?;
            let json = serde_json::to_string_pretty(&export).map_err(|e| Error::Failed {
                context: "could not write the export as JSON".into(),
                source: Box::new(e),
            })?;
            outln!("{json}");
        }
        Members::Erase { address, yes } => {
            let workspace = Workspace::open(options)?;
            let email = mailout::consent::address(&address)?;
            if !yes && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                errln!(
                    "Erase {email} and everything held about them? This cannot be undone. [y/N] "
                );
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer).ok();
                if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
                    errln!("not erased");
                    return Ok(ExitCode::from(1));
                }
            }
            let e = mailout::consent::erase(&workspace, &email)?;
            outln!(
                "erased {email}: {} roster entry, {} blanked, {} blanked, {} deleted, {} deleted; the address stays off the roster",
                e.member,
                count(e.journal_rows, "journal row", "journal rows"),
                count(e.left_out_rows, "left-out row", "left-out rows"),
                count(
                    e.archived_copies,
                    "archived personal copy",
                    "archived personal copies"
                ),
                count(
                    e.records,
                    "suppression, bounce or history entry",
                    "suppressions, bounces and history entries"
                ),
            );
        }
        Members::List {
            to,
            at_employer_domain,
        } => {
            let workspace = Workspace::open_read_only(options)?;
            let store = workspace.store()?;
            let selection = match to {
                Some(to) => Some(members::parse_selectors(&to, &workspace.config)?.selection),
                None => None,
            };
            let suppressed: std::collections::HashMap<String, String> = store
                .suppressions()?
                .into_iter()
                .map(|s| (s.email, s.reason))
                .collect();
            let mut rows = vec![
                ["EMAIL", "NAME", "BRANCH", "EMPLOYER", "SUPPRESSED"]
                    .map(String::from)
                    .to_vec(),
            ];
            let privacy = &workspace.config.privacy;
            if at_employer_domain && privacy.employer_domains.is_empty() {
                return Err(Error::Usage(
                    "`--at-employer-domain` needs `[privacy] employer_domains` in the config"
                        .into(),
                ));
            }
            for m in store.members(selection.as_ref())? {
                if at_employer_domain && privacy.employer_domain_of(&m.email).is_none() {
                    continue;
                }
                let status = suppressed.get(&m.email).cloned().unwrap_or_default();
                rows.push(vec![
                    m.email,
                    m.name.unwrap_or_default(),
                    m.branch.unwrap_or_default(),
                    m.employer.unwrap_or_default(),
                    status,
                ]);
            }
            print_table(&rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailout lists`.
pub fn lists(options: &Options) -> Result<ExitCode, Error> {
    let workspace = Workspace::open_read_only(options)?;
    let store = workspace.store()?;
    let counts = store.counts()?;
    let mut rows = vec![vec!["LIST".to_string(), "MEMBERS".to_string()]];
    rows.push(vec!["all".into(), counts.all.to_string()]);
    for (name, n) in &counts.branches {
        rows.push(vec![format!("branch:{name}"), n.to_string()]);
    }
    for (name, n) in &counts.employers {
        rows.push(vec![format!("employer:{name}"), n.to_string()]);
    }
    for (name, list) in &workspace.config.lists {
        let selection = members::parse_selectors(name, &workspace.config)?.selection;
        rows.push(vec![
            format!("{name} ({})", list.select.join(", ")),
            store.count_selected(&selection)?.to_string(),
        ]);
    }
    print_table(&rows);
    if counts.suppressed > 0 {
        outln!(
            "({} not counted)",
            count(
                counts.suppressed,
                "suppressed member is",
                "suppressed members are"
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailout unsubscribe`.
pub fn unsubscribe(options: &Options, args: Unsubscribe) -> Result<ExitCode, Error> {
    let workspace = Workspace::open(options)?;
    let store = workspace.store()?;
    let now = clock::stamp();
    for raw in &args.addresses {
        let Some(email) = mailout::address::normalise_address(raw) else {
            return Err(Error::Usage(format!(
                "`{}` is not an email address",
                super::output::cell(raw, 200)
            )));
        };
        if store.suppress(&email, "manual", args.reason.as_deref(), &now)? {
            outln!("suppressed {email}");
        } else {
            outln!("{email} was already suppressed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailout suppressed`.
pub fn suppressed(options: &Options) -> Result<ExitCode, Error> {
    let workspace = Workspace::open_read_only(options)?;
    let mut rows = vec![
        ["EMAIL", "REASON", "SINCE", "DETAIL"]
            .map(String::from)
            .to_vec(),
    ];
    for s in workspace.store()?.suppressions()? {
        rows.push(vec![s.email, s.reason, s.at, s.detail.unwrap_or_default()]);
    }
    print_table(&rows);
    Ok(ExitCode::SUCCESS)
}

/// `mailout unsubscribes`: suppresses the members whose verified tokens came by mail
/// (reading IMAP on `runtime`).
pub fn unsubscribes(
    options: &Options,
    args: Unsubscribes,
    runtime: &Runtime,
) -> Result<ExitCode, Error> {
    use mailout::unsubscribes::{Outcome, Source};
    let workspace = Workspace::open(options)?;
    let source = if args.stdin {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw).map_err(|source| {
            Error::Io {
                context: "could not read standard input".into(),
                path: None,
                source,
            }
        })?;
        Source::One(raw)
    } else if args.paths.is_empty() && args.imap.is_none() {
        return Err(Error::Usage(
            "say where the mail is: files, folders, `--imap URL`, or `--stdin`".into(),
        ));
    } else {
        Source::Mail {
            paths: args.paths,
            imap: args.imap,
        }
    };
    let report =
        mailout::unsubscribes::run(&workspace, source, runtime, &mut |source, outcome| {
            if !args.json {
                match outcome {
                    Outcome::Unsubscribed(email) => outln!("unsubscribed  {email}  ({source})"),
                    Outcome::AlreadySuppressed(email) => {
                        outln!("already       {email}  ({source})")
                    }
                    Outcome::Invalid(why) => outln!("invalid       {why}  ({source})"),
                    Outcome::NotAnUnsubscribe => {}
                }
            }
        })?;
    for (source, error) in &report.unreadable {
        errln!("warning: could not read `{source}`: {error}");
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string(&report.summary()).unwrap_or_default()
        );
    } else {
        outln!(
            "unsubscribed: {}  invalid: {}  not unsubscribes: {}",
            report.unsubscribed,
            report.invalid,
            report.not_unsubscribes
        );
    }
    Ok(ExitCode::SUCCESS)
}
