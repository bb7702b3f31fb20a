//! The `mailout` command line: parses arguments, calls the library, prints results and
//! maps errors to exit codes (0 ok, 1 error, 2 finished with some recipients failed).

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};
use mailout::members::{self, MemberCsv};
use mailout::send::job::{self, Plan, SendRequest, SendResult, TransportKind};
use mailout::send::progress::Display;
use mailout::store::{EntryState, Job};
use mailout::workspace::{Options, Workspace};
use mailout::{Error, archive, bounces, clock, outbox, render::templates, serve};

/// Draft, send and archive an organisation's numbered email bulletins.
#[derive(Parser, Debug)]
#[command(name = "mailout", version, about, propagate_version = true)]
struct Cli {
    /// The organisation's config file.
    #[arg(long, global = true, value_name = "PATH", env = "MAILOUT_CONFIG")]
    config: Option<PathBuf>,

    /// The store: a SQLite file (default from the config).
    #[arg(long, global = true, value_name = "PATH|URL", env = "MAILOUT_STORE")]
    store: Option<String>,

    /// Log more (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a bulletin file for the next free number.
    New {
        /// Folder for bulletin files.
        #[arg(long, default_value = "bulletins")]
        dir: PathBuf,
        /// Use this number instead of the next free one.
        #[arg(long)]
        number: Option<u32>,
    },
    /// Report every mistake in bulletin files, as FILE:LINE:COL, and the pre-send warnings.
    Check {
        /// Bulletin files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Treat the pre-send warnings as errors (exit 1).
        #[arg(long)]
        strict: bool,
    },
    /// Build bulletins into OUTBOX/<number>/bulletin.{html,txt,eml}.
    Build {
        /// Bulletin files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where built mailouts go.
        #[arg(long, default_value = outbox::DEFAULT_DIR)]
        outbox: PathBuf,
    },
    /// Work with the templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Send a bulletin: one personal copy per selected member.
    Send {
        /// The bulletin file.
        file: PathBuf,
        /// Who receives it: `all`, `branch:NAME`, `employer:NAME` or a list name, comma-separated.
        #[arg(long, value_name = "SELECTORS")]
        to: Option<String>,
        /// Show who would receive it; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// How to deliver (default: smtp when configured, else files in OUTBOX/<number>/sent/).
        #[arg(long, value_enum)]
        transport: Option<TransportArg>,
        /// Connections (default: [smtp] concurrency).
        #[arg(long)]
        concurrency: Option<u32>,
        /// Messages per second overall; 0 is unlimited (default: [smtp] rate).
        #[arg(long, value_name = "PER_SECOND")]
        rate: Option<u32>,
        /// Do not ask before starting.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Continue job JOB (running the same command again does too).
        #[arg(long, value_name = "JOB")]
        resume: Option<i64>,
        /// Where the file transport writes.
        #[arg(long, default_value = outbox::DEFAULT_DIR)]
        outbox: PathBuf,
        /// No progress display.
        #[arg(long, short = 'q')]
        quiet: bool,
        /// Write the job and its journal, print `job: ID`, and leave the sending to
        /// `mailout worker` processes.
        #[arg(long, conflicts_with = "dry_run")]
        enqueue: bool,
        /// Refuse to start a job while the pre-send checks give warnings.
        #[arg(long)]
        strict: bool,
        /// Send a proof to these addresses now ([PROOF] subject; no job, no number used).
        #[arg(long, value_name = "ADDR[,ADDR...]", value_delimiter = ',', conflicts_with_all = ["to", "resume", "enqueue", "dry_run"])]
        proof: Vec<String>,
        /// With --proof: render the copy as this member receives it.
        #[arg(long, value_name = "ADDR", requires = "proof")]
        as_member: Option<String>,
    },
    /// Approve a bulletin's content as it is now ([approval] required).
    Approve {
        /// The bulletin file.
        file: PathBuf,
        /// Who approves.
        #[arg(long = "as", value_name = "NAME")]
        name: String,
    },
    /// The approvals of a bulletin, and whether they still hold.
    Approvals {
        /// The bulletin file.
        file: PathBuf,
    },
    /// Send for running jobs, beside other workers on this or other machines.
    Worker {
        /// Work only on this job (repeatable; default: every running job).
        #[arg(long = "job", value_name = "JOB")]
        jobs: Vec<i64>,
        /// Connections (default: [smtp] concurrency).
        #[arg(long)]
        concurrency: Option<u32>,
        /// Relay through this SMTP server instead of [smtp] url.
        #[arg(long, value_name = "URL")]
        smtp: Option<String>,
        /// Exit when nothing is pending.
        #[arg(long)]
        exit_when_idle: bool,
        /// Where the file transport writes.
        #[arg(long, default_value = outbox::DEFAULT_DIR)]
        outbox: PathBuf,
        /// No progress display.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Live send workers: host, pid, rows claimed, copies sent, last heartbeat.
    Workers,
    /// The store itself.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// The member roster.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// Every branch, employer and named list, with its member count.
    Lists,
    /// Never send to these addresses again.
    Unsubscribe {
        /// Addresses.
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Addresses that are never sent to, and why.
    Suppressed,
    /// Send jobs, newest first.
    Jobs,
    /// One send job: its state and its failures.
    Job {
        /// The job's id.
        id: i64,
    },
    /// Import received mail into the archive: .eml files, folders, mbox, Maildir, or IMAP.
    Import {
        /// Files and folders.
        paths: Vec<PathBuf>,
        /// A mailbox over IMAP: imaps://USER@HOST/MAILBOX (password in MAILOUT_IMAP_PASSWORD).
        #[arg(long, value_name = "URL")]
        imap: Option<String>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The archive of received mail.
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
    /// Read delivery status notifications; suppress hard-bounced addresses.
    Bounces {
        /// Files and folders of bounce messages.
        paths: Vec<PathBuf>,
        /// A mailbox over IMAP: imaps://USER@HOST/MAILBOX (password in MAILOUT_IMAP_PASSWORD).
        #[arg(long, value_name = "URL")]
        imap: Option<String>,
    },
    /// The one-click unsubscribe endpoint.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8025")]
        listen: SocketAddr,
    },
    /// A live page while drafting: HTML and text side by side, per audience; it rebuilds
    /// when the bulletin, a template or the config changes.
    Preview {
        /// The bulletin file.
        file: PathBuf,
        /// Address to listen on (loopback by default; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8026")]
        listen: SocketAddr,
    },
}

#[derive(Subcommand, Debug)]
enum ArchiveCommand {
    /// Numbered bulletins (gaps and duplicates marked), then other mail.
    List,
    /// One message: a bulletin NUMBER, #ID, or a Message-ID.
    Show {
        /// NUMBER, #ID or MESSAGE-ID.
        what: String,
        /// Print the message as received.
        #[arg(long)]
        raw: bool,
    },
    /// Full-text search: words, "phrases", AND, OR, NOT.
    Search {
        /// The query.
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

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Copy this SQLite store into an empty PostgreSQL database, and check the counts.
    Migrate {
        /// The PostgreSQL database: postgres://USER@HOST:PORT/DB (password in the URL or
        /// in [store] password_env).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Subcommand, Debug)]
enum MembersCommand {
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
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TransportArg {
    Smtp,
    File,
    Sendmail,
}

#[derive(Subcommand, Debug)]
enum TemplatesCommand {
    /// Copy the built-in templates out, to edit them.
    Export {
        /// Where to write them.
        #[arg(default_value = templates::DIR)]
        dir: PathBuf,
        /// Overwrite files that exist.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let options = Options {
        config: cli.config,
        store: cli.store,
    };
    match cli.command {
        Command::Templates {
            command: TemplatesCommand::Export { dir, force },
        } => {
            for path in templates::export(&dir, force)? {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::New { dir, number } => {
            let workspace = Workspace::open(&options)?;
            let (_, path) = workspace.new_bulletin(&dir, number)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { files, strict } => {
            let workspace = Workspace::open(&options)?;
            let mut failed = false;
            // A warning about sending rather than about a file: once, without a place.
            for warning in workspace.send_warnings(workspace.config.smtp.is_some()) {
                let severity = if strict { "error" } else { "warning" };
                eprintln!("{severity}: {warning}");
                failed |= strict;
            }
            for file in &files {
                let mut checked = workspace.check(file)?;
                if strict {
                    mailout::lint::make_errors(&mut checked.diagnostics);
                }
                for d in &checked.diagnostics {
                    eprintln!("{d}");
                }
                if checked.errors() > 0 {
                    failed = true;
                } else {
                    let number = checked
                        .number
                        .map(|n| format!(", number {n}"))
                        .unwrap_or_default();
                    let warnings = match checked.warnings() {
                        0 => String::new(),
                        1 => ", 1 warning".to_string(),
                        n => format!(", {n} warnings"),
                    };
                    println!(
                        "{}: ok ({} section{}{number}{warnings})",
                        file.display(),
                        checked.sections,
                        if checked.sections == 1 { "" } else { "s" }
                    );
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Send {
            file,
            to,
            dry_run,
            transport,
            concurrency,
            rate,
            yes,
            resume,
            outbox,
            quiet,
            enqueue,
            strict,
            proof,
            as_member,
        } => {
            let workspace = Workspace::open(&options)?;
            if !proof.is_empty() {
                let result = mailout::send::proof::send_proof(
                    &workspace,
                    &mailout::send::proof::ProofRequest {
                        file,
                        to: proof,
                        as_member,
                        transport: transport.map(|t| match t {
                            TransportArg::Smtp => TransportKind::Smtp,
                            TransportArg::File => TransportKind::File,
                            TransportArg::Sendmail => TransportKind::Sendmail,
                        }),
                        outbox,
                    },
                )?;
                let mut failed = false;
                for (address, outcome) in &result.deliveries {
                    match outcome {
                        mailout::send::transport::Delivery::Accepted(reply) => {
                            println!("proof sent to {address}: {reply}");
                        }
                        other => {
                            failed = true;
                            eprintln!("proof not sent to {address}: {other:?}");
                        }
                    }
                }
                eprintln!(
                    "`{}` (bulletin {}; no job started, the number is not used)",
                    result.subject, result.number
                );
                return Ok(if failed {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                });
            }
            let request = SendRequest {
                enqueue,
                strict,
                file,
                to,
                resume,
                dry_run,
                transport: transport.map(|t| match t {
                    TransportArg::Smtp => TransportKind::Smtp,
                    TransportArg::File => TransportKind::File,
                    TransportArg::Sendmail => TransportKind::Sendmail,
                }),
                concurrency,
                rate,
                outbox,
                display: if quiet {
                    Display::Quiet
                } else {
                    Display::auto()
                },
            };
            let mut confirm = |plan: &Plan| yes || !std::io::stdin().is_terminal() || ask(plan);
            match job::send(&workspace, &request, &mut confirm)? {
                SendResult::DryRun(plan) => {
                    print_plan(&plan);
                    Ok(ExitCode::SUCCESS)
                }
                SendResult::Declined(_) => {
                    eprintln!("not sent");
                    Ok(ExitCode::from(1))
                }
                SendResult::Enqueued { job, started } => {
                    println!("job: {}", job.id);
                    eprintln!(
                        "{} {} recipients pending of {}; `mailout worker` sends them",
                        if started {
                            "enqueued:"
                        } else {
                            "already enqueued:"
                        },
                        job.progress.pending,
                        job.total
                    );
                    Ok(ExitCode::SUCCESS)
                }
                SendResult::Ran {
                    job,
                    stats,
                    started,
                } => {
                    let verb = if started { "started" } else { "resumed" };
                    let rate = stats.sent as f64 / stats.elapsed.as_secs_f64().max(0.001);
                    println!(
                        "job {} ({verb}): {} sent, {} failed, {} skipped, {} pending of {}; this run: {} sent, {} failed in {:.1} s ({rate:.0}/s)",
                        job.id,
                        job.progress.sent,
                        job.progress.failed,
                        job.progress.skipped,
                        job.progress.pending,
                        job.total,
                        stats.sent,
                        stats.failed,
                        stats.elapsed.as_secs_f64(),
                    );
                    if stats.interrupted {
                        eprintln!(
                            "error: interrupted; run the same command again to resume job {}",
                            job.id
                        );
                        return Ok(ExitCode::from(1));
                    }
                    if job.progress.failed > 0 {
                        let store = workspace.store()?;
                        for e in store.entries(job.id, EntryState::Failed)?.iter().take(20) {
                            eprintln!(
                                "failed: {}: {}",
                                e.member.email,
                                e.reply.as_deref().unwrap_or("")
                            );
                        }
                        if job.progress.failed > 20 {
                            eprintln!(
                                "… and {} more: `mailout job {}`",
                                job.progress.failed - 20,
                                job.id
                            );
                        }
                        return Ok(ExitCode::from(2));
                    }
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Members { command } => {
            let workspace = Workspace::open(&options)?;
            let store = workspace.store()?;
            match command {
                MembersCommand::Import { file } => {
                    let mut csv = MemberCsv::open(&file)?;
                    let counts = store.import_members(&mut csv)?;
                    for skipped in &csv.skipped {
                        eprintln!(
                            "{}:{}: warning: {}; row skipped",
                            file.display(),
                            skipped.line,
                            skipped.reason
                        );
                    }
                    println!(
                        "imported `{}`: {} new, {} updated, {} rows skipped",
                        file.display(),
                        counts.added,
                        counts.updated,
                        csv.skipped.len()
                    );
                }
                MembersCommand::List { to } => {
                    let selection = match to {
                        Some(to) => {
                            Some(members::parse_selectors(&to, &workspace.config)?.selection)
                        }
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
                    for m in store.members(selection.as_ref())? {
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
        Command::Lists => {
            let workspace = Workspace::open(&options)?;
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
                println!("({} suppressed members are not counted)", counts.suppressed);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Unsubscribe { addresses, reason } => {
            let workspace = Workspace::open(&options)?;
            let store = workspace.store()?;
            let now = clock::stamp();
            for raw in &addresses {
                let Some(email) = members::normalise_address(raw) else {
                    return Err(Error::Usage(format!("`{raw}` is not an email address")));
                };
                if store.suppress(&email, "manual", reason.as_deref(), &now)? {
                    println!("suppressed {email}");
                } else {
                    println!("{email} was already suppressed");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Suppressed => {
            let workspace = Workspace::open(&options)?;
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
        Command::Worker {
            jobs,
            concurrency,
            smtp,
            exit_when_idle,
            outbox,
            quiet,
        } => {
            let workspace = Workspace::open(&options)?;
            let stats = mailout::send::work(
                &workspace,
                &mailout::send::WorkerOptions {
                    jobs,
                    transport: None,
                    smtp_url: smtp,
                    concurrency,
                    rate: None,
                    exit_when_idle,
                    outbox,
                    display: if quiet {
                        Display::Quiet
                    } else {
                        Display::auto()
                    },
                },
            )?;
            println!(
                "worker: {} sent, {} failed in {:.1} s",
                stats.sent,
                stats.failed,
                stats.elapsed.as_secs_f64()
            );
            Ok(if stats.interrupted {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Approve { file, name } => {
            let workspace = Workspace::open(&options)?;
            let status = mailout::approval::approve(&workspace, &file, &name)?;
            println!(
                "approved `{}` as {} (content {}); {} of {} required",
                file.display(),
                name.trim(),
                &status.content_hash[..12],
                status.valid(),
                status.required
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Approvals { file } => {
            let workspace = Workspace::open(&options)?;
            let status = mailout::approval::status(&workspace, &file)?;
            let mut rows = vec![
                ["NAME", "AT", "CONTENT", "STATE"]
                    .map(String::from)
                    .to_vec(),
            ];
            for (a, current) in &status.approvals {
                rows.push(vec![
                    a.name.clone(),
                    a.at.clone(),
                    a.content_hash[..12.min(a.content_hash.len())].to_string(),
                    if *current {
                        "valid"
                    } else {
                        "void: changed since"
                    }
                    .to_string(),
                ]);
            }
            print_table(&rows);
            println!(
                "content now {}: {} of {} required approvals",
                &status.content_hash[..12],
                status.valid(),
                status.required
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Workers => {
            let workspace = Workspace::open(&options)?;
            let mut rows = vec![
                [
                    "WORKER",
                    "HOST",
                    "PID",
                    "CLAIMED",
                    "SENT",
                    "HEARTBEAT",
                    "STARTED",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for w in workspace.store()?.workers()? {
                rows.push(vec![
                    w.id.to_string(),
                    w.host,
                    w.pid.to_string(),
                    w.claimed.to_string(),
                    w.sent.to_string(),
                    w.heartbeat_at,
                    w.started_at,
                ]);
            }
            print_table(&rows);
            Ok(ExitCode::SUCCESS)
        }
        Command::Store {
            command: StoreCommand::Migrate { to },
        } => {
            let workspace = Workspace::open(&options)?;
            let report = mailout::store::migrate::migrate(
                workspace.store()?,
                &to,
                &workspace.config.store.password_env,
                &mut |table, n| eprintln!("copied {n} rows of {table}"),
            )?;
            let mut rows = vec![["TABLE", "SQLITE", "POSTGRESQL"].map(String::from).to_vec()];
            for (table, from, to) in &report.tables {
                rows.push(vec![table.to_string(), from.to_string(), to.to_string()]);
            }
            print_table(&rows);
            println!(
                "migrated to {}; set `[store] path` to it (or pass --store) and run the same commands",
                mailout::store::redact(&to)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs => {
            let workspace = Workspace::open(&options)?;
            let mut rows = vec![
                [
                    "JOB", "NUMBER", "TO", "STATE", "SENT", "FAILED", "SKIPPED", "PENDING",
                    "TOTAL", "STARTED",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for job in workspace.store()?.jobs()? {
                rows.push(vec![
                    job.id.to_string(),
                    job.spec.number.to_string(),
                    job.spec.selectors.clone(),
                    state_of(&job).to_string(),
                    job.progress.sent.to_string(),
                    job.progress.failed.to_string(),
                    job.progress.skipped.to_string(),
                    job.progress.pending.to_string(),
                    job.total.to_string(),
                    job.spec.created_at.clone(),
                ]);
            }
            print_table(&rows);
            Ok(ExitCode::SUCCESS)
        }
        Command::Job { id } => {
            let workspace = Workspace::open(&options)?;
            let store = workspace.store()?;
            let job = store.job(id)?.ok_or_else(|| {
                Error::Usage(format!("there is no job {id}; `mailout jobs` lists them"))
            })?;
            println!("job:        {}", job.id);
            println!("bulletin:   {} ({})", job.spec.number, job.spec.source);
            println!("subject:    {}", job.spec.subject);
            println!("to:         {}", job.spec.selectors);
            println!("transport:  {}", job.spec.transport);
            println!("state:      {}", state_of(&job));
            println!("started:    {}", job.spec.created_at);
            if let Some(at) = &job.finished_at {
                println!("finished:   {at}");
            }
            println!(
                "recipients: {} ({} sent, {} failed, {} skipped, {} pending)",
                job.total,
                job.progress.sent,
                job.progress.failed,
                job.progress.skipped,
                job.progress.pending
            );
            for e in store.entries(id, EntryState::Failed)? {
                println!(
                    "failed:     {}: {}",
                    e.member.email,
                    e.reply.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { paths, imap, json } => {
            let workspace = Workspace::open(&options)?;
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
                let more = archive::import_imap(store, &recogniser, &url, &progress)?;
                summary.imported += more.imported;
                summary.duplicates += more.duplicates;
                summary.flagged += more.flagged;
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            for (source, error) in &summary.unreadable {
                eprintln!("warning: could not read `{source}`: {error}");
            }
            if json {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            } else {
                println!(
                    "imported: {}  duplicates: {}  flagged: {}",
                    summary.imported, summary.duplicates, summary.flagged
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Archive { command } => {
            let workspace = Workspace::open(&options)?;
            let store = workspace.store()?;
            archive_command(&workspace, store, command)
        }
        Command::Bounces { paths, imap } => {
            let workspace = Workspace::open(&options)?;
            let store = workspace.store()?;
            let mut report = bounces::Report::default();
            for path in &paths {
                if !path.exists() {
                    return Err(Error::Usage(format!("`{}` does not exist", path.display())));
                }
                let mut failed = None;
                archive::read_path(path, &mut |item| match item {
                    archive::Item::Message(source, raw) => {
                        match bounces::process(store, &raw, &source, &mut report) {
                            Ok(()) => true,
                            Err(e) => {
                                failed = Some(e);
                                false
                            }
                        }
                    }
                    archive::Item::Unreadable(source, error) => {
                        eprintln!("warning: could not read `{source}`: {error}");
                        true
                    }
                });
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            if let Some(url) = imap {
                let url = archive::imap::ImapUrl::parse(&url)?;
                let password = std::env::var(archive::imap::PASSWORD_ENV).map_err(|_| {
                    Error::Usage(format!(
                        "IMAP needs a password in `{}`",
                        archive::imap::PASSWORD_ENV
                    ))
                })?;
                let key = format!("bounces:{}", url.key());
                let state = store.imap_state(&key)?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Usage(e.to_string()))?;
                runtime.block_on(archive::imap::fetch_new(
                    &url,
                    &password,
                    state,
                    &mut |batch, validity| {
                        let last = batch.iter().map(|(uid, _)| *uid).max();
                        for (uid, raw) in batch {
                            bounces::process(
                                store,
                                &raw,
                                &format!("{key};UID={uid}"),
                                &mut report,
                            )?;
                        }
                        if let Some(last) = last {
                            store.set_imap_state(&key, validity, last)?;
                        }
                        Ok(())
                    },
                ))?;
            }
            for (b, job) in &report.bounces {
                println!(
                    "{:<7}  {}  {}{}{}",
                    b.class.as_str(),
                    b.recipient,
                    b.status.as_deref().unwrap_or("-"),
                    job.map(|j| format!("  job {j}")).unwrap_or_default(),
                    b.diagnostic
                        .as_deref()
                        .map(|d| format!("  ({})", d.chars().take(100).collect::<String>()))
                        .unwrap_or_default(),
                );
            }
            println!(
                "messages: {}  bounces: {}  hard: {}  soft: {}  unknown: {}  suppressed: {}  not bounces: {}",
                report.messages,
                report.bounces.len(),
                report.count(bounces::Class::Hard),
                report.count(bounces::Class::Soft),
                report.count(bounces::Class::Unknown),
                report.suppressed,
                report.not_bounces
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Preview { file, listen } => {
            let preview = mailout::preview::Preview::start(options, file)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Error::Usage(format!("could not start the async runtime: {e}")))?;
            runtime.block_on(preview.serve(listen, |bound| {
                if !bound.ip().is_loopback() {
                    eprintln!("warning: the preview is open to the network on {bound}");
                }
                println!("preview: http://{bound}/");
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { listen } => {
            let workspace = Workspace::open(&options)?;
            let tokens = workspace.token_key()?;
            let store = workspace.open_store()?;
            let state = std::sync::Arc::new(serve::ServeState::new(
                store,
                tokens,
                workspace.config.organisation.name.clone(),
            ));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Usage(format!("could not start the async runtime: {e}")))?;
            runtime.block_on(serve::serve(state, listen, |bound| {
                eprintln!("listening on http://{bound}");
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { files, outbox } => {
            let workspace = Workspace::open(&options)?;
            for file in &files {
                let built = workspace.build(file, &outbox)?;
                for path in [&built.html, &built.text, &built.eml] {
                    println!("{}", path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A counter on a terminal, nothing otherwise.
fn counter(what: &str) -> Option<indicatif::ProgressBar> {
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
        ArchiveCommand::List => {
            let entries = store.archive_list()?;
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
                let first = copies[0];
                let mut subject = first.subject.clone().unwrap_or_default();
                if copies.len() > 1 {
                    subject.push_str(&format!(
                        "  ({} copies: {})",
                        copies.len(),
                        copies
                            .iter()
                            .map(|c| format!("#{}", c.id))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                rows.push(vec![
                    number.to_string(),
                    day(first.date.as_deref()),
                    subject,
                ]);
            }
            if by_number.is_empty() {
                println!(
                    "no bulletins of `{}` in the archive",
                    workspace.config.organisation.series
                );
            } else {
                print_table(&rows);
            }
            if !others.is_empty() {
                println!();
                let mut rows = vec![["ID", "DATE", "FROM", "SUBJECT"].map(String::from).to_vec()];
                for e in others {
                    let mut subject = e.subject.clone().unwrap_or_default();
                    if let Some(why) = &e.flagged {
                        subject = format!("(flagged: {why}) {subject}");
                    }
                    rows.push(vec![
                        format!("#{}", e.id),
                        day(e.date.as_deref()),
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
                copies
                    .first()
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
                        bytes = Some(
                            archive::parse::decompress(compressed)
                                .map_err(|e| Error::Usage(e.to_string()))?,
                        );
                    }
                    Ok(())
                })?;
                std::io::stdout()
                    .write_all(&bytes.unwrap_or_default())
                    .map_err(|e| Error::Usage(e.to_string()))?;
                return Ok(ExitCode::SUCCESS);
            }
            let e = &message.entry;
            println!("id:         #{}", e.id);
            if let Some(n) = e.bulletin {
                println!("bulletin:   {n}");
            }
            println!("subject:    {}", e.subject.as_deref().unwrap_or(""));
            println!("from:       {}", e.sender.as_deref().unwrap_or(""));
            println!(
                "to:         {}",
                message.recipients.as_deref().unwrap_or("")
            );
            println!("date:       {}", e.date.as_deref().unwrap_or(""));
            println!("message-id: {}", e.message_id.as_deref().unwrap_or(""));
            if let Some(why) = &e.flagged {
                println!("flagged:    {why} (kept as received; `--raw` prints it)");
            }
            for a in &message.attachments {
                println!(
                    "attachment: {} ({}, {} bytes, {})",
                    a.filename.as_deref().unwrap_or("(unnamed)"),
                    a.content_type,
                    a.size,
                    a.hash.get(..12).unwrap_or(&a.hash)
                );
            }
            for (i, heading) in message.sections.iter().enumerate() {
                println!(
                    "section {}:  {}",
                    i + 1,
                    heading.as_deref().unwrap_or("(untitled)")
                );
            }
            println!();
            let raw = archive::parse::decompress(&message.raw_zstd).unwrap_or_default();
            let (text, _) = archive::parse::bodies(&raw);
            println!("{}", text.as_deref().unwrap_or("").trim_end());
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Search { query, limit } => {
            let hits = store.archive_search(&query, limit)?;
            if hits.is_empty() {
                println!("nothing found for `{query}`");
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
                println!(
                    "#{}  {}  {}{place}",
                    e.id,
                    day(e.date.as_deref()),
                    e.subject.as_deref().unwrap_or("(no subject)")
                );
                println!(
                    "    {}",
                    h.snippet.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Export { mbox } => {
            let n = archive::export_mbox(store, &mbox)?;
            println!("exported {n} messages to `{}`", mbox.display());
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Site { dir } => {
            let s = archive::site::write_site(store, &workspace.config, &dir)?;
            println!(
                "{}: {} bulletins, {} other messages, {} attachments",
                dir.display(),
                s.bulletins,
                s.messages,
                s.attachments
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn day(date: Option<&str>) -> String {
    date.map(|d| d.get(..10).unwrap_or(d).to_string())
        .unwrap_or_default()
}

fn state_of(job: &Job) -> &'static str {
    match (&job.finished_at, job.progress.failed) {
        (None, _) => "running",
        (Some(_), 0) => "finished",
        (Some(_), _) => "finished with failures",
    }
}

fn ask(plan: &Plan) -> bool {
    eprint!(
        "Send `{}` to {} member{} (--to {})? [y/N] ",
        plan.subject,
        plan.recipients,
        if plan.recipients == 1 { "" } else { "s" },
        plan.selectors
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

fn print_plan(plan: &Plan) {
    println!(
        "would send `{}` (bulletin {}) to {} member{} (--to {})",
        plan.subject,
        plan.number,
        plan.recipients,
        if plan.recipients == 1 { "" } else { "s" },
        plan.selectors
    );
    if let Some(job) = &plan.existing {
        println!(
            "job {} exists for it: {} sent, {} failed, {} pending; running the command again resumes it",
            job.id, job.progress.sent, job.progress.failed, job.progress.pending
        );
    }
    for m in &plan.sample {
        println!("  {}", m.email);
    }
    if plan.recipients > plan.sample.len() as u64 && !plan.sample.is_empty() {
        println!(
            "  … and {} more",
            plan.recipients - plan.sample.len() as u64
        );
    }
}

/// Prints rows as aligned columns (the first row is the header).
fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, value) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(value);
            } else {
                line.push_str(&format!("{value:<width$}  ", width = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// Prints `error: …` and one `caused by: …` per source; file problems print in full first.
fn report(error: &Error) {
    for d in error.diagnostics() {
        eprintln!("{d}");
    }
    eprintln!("error: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        eprintln!("caused by: {cause}");
        source = cause.source();
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
