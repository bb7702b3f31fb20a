//! Sending commands: `send` (jobs, proofs), `worker`, `workers`, `jobs` and `job`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use mailout::runtime::Runtime;
use mailout::send::account::{Account, Figures};
use mailout::send::job::{self, Plan, SendRequest, SendResult, TransportKind};
use mailout::send::report;
use mailout::send::transport::Delivery;
use mailout::store::{EntryState, Job, Store};
use mailout::workspace::{Options, Workspace};
use mailout::{Error, outbox};

use super::output::{count, errln, outln, print_table};

/// How to deliver.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TransportArg {
    /// Over SMTP, as `[smtp]` says.
    Smtp,
    /// One file per recipient under OUTBOX/<number>/sent/.
    File,
    /// The local MTA's `sendmail`.
    Sendmail,
}

impl From<TransportArg> for TransportKind {
    fn from(t: TransportArg) -> TransportKind {
        match t {
            TransportArg::Smtp => TransportKind::Smtp,
            TransportArg::File => TransportKind::File,
            TransportArg::Sendmail => TransportKind::Sendmail,
        }
    }
}

/// `mailout send`
#[derive(Args, Debug)]
pub struct Send {
    /// The bulletin file.
    file: PathBuf,
    /// Who receives it: `all`, `branch:NAME`, `employer:NAME` or a list name,
    /// comma-separated. Needed to start a job (not with --resume or --proof).
    #[arg(long, value_name = "SELECTORS")]
    to: Option<String>,
    /// Show who would receive it; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// How to deliver [default: smtp when [smtp] is configured, else file].
    #[arg(long, value_enum)]
    transport: Option<TransportArg>,
    /// Connections [default: [smtp] concurrency, 4].
    #[arg(long)]
    concurrency: Option<u32>,
    /// Messages per second overall; 0 is unlimited [default: [smtp] rate, 0].
    #[arg(long, value_name = "PER_SECOND")]
    rate: Option<u32>,
    /// Do not ask before starting.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Continue job JOB (running the same command again does too).
    #[arg(long, value_name = "JOB")]
    resume: Option<i64>,
    /// With --resume: send the job's uncertain copies again (same Message-ID), on purpose.
    #[arg(long, requires = "resume")]
    retry_uncertain: bool,
    /// Add to the job for --to the members it selects now who are not in it yet (joined or
    /// re-subscribed since it started), as a later wave; nobody in it gets a second copy.
    #[arg(long, requires = "to", conflicts_with_all = ["resume", "proof"])]
    top_up: bool,
    /// Schedule the job for then rather than sending now: YYYY-MM-DDTHH:MM in [schedule]
    /// timezone (or an RFC 3339 time with its offset). With --enqueue, `mailout worker`
    /// starts it when due; without, this command waits for it and sends it.
    #[arg(long, value_name = "TIME", requires = "to", conflicts_with_all = ["resume", "proof", "top_up", "dry_run"])]
    at: Option<String>,
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
}

/// `mailout worker`
#[derive(Args, Debug)]
pub struct Worker {
    /// Work only on this job (repeatable) [default: every running job].
    #[arg(long = "job", value_name = "JOB")]
    jobs: Vec<i64>,
    /// Connections [default: [smtp] concurrency, 4].
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
}

/// `mailout job`
#[derive(Args, Debug)]
pub struct JobArgs {
    /// The job's id.
    id: i64,
    /// The account as JSON.
    #[arg(long, conflicts_with_all = ["csv", "cancel"])]
    json: bool,
    /// The account's figures as CSV: everyone, then a row per branch and per employer.
    #[arg(long, conflicts_with = "cancel")]
    csv: bool,
    /// Stop the job: its pending recipients become cancelled and nothing more is sent
    /// (copies already being sent finish and are counted as sent).
    #[arg(long, conflicts_with = "release")]
    cancel: bool,
    /// Let a scheduled job that waits as `late` (or held) start: `mailout worker` sends it.
    #[arg(long, conflicts_with_all = ["json", "csv", "report"])]
    release: bool,
    /// Write the account as one self-contained HTML page, DIR/job-N.html: the figures, a bar
    /// per branch and per employer, the failures with the server's replies.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["json", "csv", "cancel"])]
    report: Option<PathBuf>,
}

/// `mailout send`, on `runtime`.
pub fn send(options: &Options, args: Send, runtime: &Runtime) -> Result<ExitCode, Error> {
    // A proof or a dry run records nothing: in the demo they leave no store behind.
    let workspace = if args.dry_run || !args.proof.is_empty() {
        Workspace::open_draft(options)?
    } else {
        Workspace::open(options)?
    };
    if !args.proof.is_empty() {
        return proof(&workspace, args, runtime);
    }
    let request = SendRequest {
        enqueue: args.enqueue,
        strict: args.strict,
        file: args.file,
        to: args.to,
        resume: args.resume,
        retry_uncertain: args.retry_uncertain,
        top_up: args.top_up,
        at: args.at,
        dry_run: args.dry_run,
        transport: args.transport.map(TransportKind::from),
        concurrency: args.concurrency,
        rate: args.rate,
        outbox: args.outbox,
        progress: !args.quiet,
    };
    let yes = args.yes;
    let mut confirm = |plan: &Plan| yes || !std::io::stdin().is_terminal() || ask(plan);
    match job::send(&workspace, &request, &mut confirm, runtime)? {
        SendResult::DryRun(plan) => {
            print_plan(&plan);
            Ok(ExitCode::SUCCESS)
        }
        SendResult::Declined(_) => {
            errln!("not sent");
            Ok(ExitCode::from(1))
        }
        SendResult::Enqueued { job, started } => {
            outln!("job: {}", job.id);
            errln!(
                "{} {} pending of {}; `mailout worker` sends them",
                if started {
                    "enqueued:"
                } else {
                    "already enqueued:"
                },
                count(job.progress.pending, "recipient", "recipients"),
                job.total
            );
            Ok(ExitCode::SUCCESS)
        }
        SendResult::Scheduled { job, due, started } => {
            outln!("job: {}", job.id);
            errln!(
                "{} for {due}; `mailout worker` starts it then (`mailout job {} --cancel` drops it)",
                if started {
                    "scheduled"
                } else {
                    "still scheduled"
                },
                job.id
            );
            Ok(ExitCode::SUCCESS)
        }
        SendResult::Waiting { job, describe } => {
            outln!("job: {}", job.id);
            errln!("not sent: {describe}");
            Ok(ExitCode::from(1))
        }
        SendResult::Ran {
            job,
            stats,
            started,
        } => {
            let verb = if started { "started" } else { "resumed" };
            let rate = stats.sent as f64 / stats.elapsed.as_secs_f64().max(0.001);
            let p = &job.progress;
            outln!(
                "job {} ({verb}): {} sent, {} failed, {} uncertain, {} skipped, {} pending of {}; this run: {} sent, {} failed in {:.1} s ({rate:.0}/s)",
                job.id,
                p.sent,
                p.failed,
                p.uncertain,
                p.skipped,
                p.pending,
                job.total,
                stats.sent,
                stats.failed,
                stats.elapsed.as_secs_f64(),
            );
            if stats.interrupted {
                errln!(
                    "error: interrupted; run the same command again to resume job {}",
                    job.id
                );
                return Ok(ExitCode::from(1));
            }
            let store = workspace.store()?;
            list_rows(store, &job, EntryState::Failed, "failed", 20)?;
            list_rows(store, &job, EntryState::Uncertain, "uncertain", 20)?;
            if p.uncertain > 0 {
                errln!(
                    "{} may have been delivered: no reply came after the whole message was sent. They are not sent again on their own; to resend them (same Message-ID): mailout send {} --resume {} --retry-uncertain",
                    count(p.uncertain, "uncertain copy", "uncertain copies"),
                    job.spec.source,
                    job.id
                );
            }
            Ok(if p.failed > 0 || p.uncertain > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// Prints up to `limit` of `job`'s rows in `state` with their replies.
fn list_rows(
    store: &dyn Store,
    job: &Job,
    state: EntryState,
    label: &str,
    limit: usize,
) -> Result<(), Error> {
    let rows = store.entries(job.id, state)?;
    for e in rows.iter().take(limit) {
        errln!(
            "{label}: {}: {}",
            e.member.email,
            e.reply.as_deref().unwrap_or("")
        );
    }
    if rows.len() > limit {
        errln!(
            "… and {} more {label}: `mailout job {}`",
            rows.len() - limit,
            job.id
        );
    }
    Ok(())
}

fn proof(workspace: &Workspace, args: Send, runtime: &Runtime) -> Result<ExitCode, Error> {
    let result = mailout::send::proof::send_proof(
        workspace,
        &mailout::send::proof::ProofRequest {
            file: args.file,
            to: args.proof,
            as_member: args.as_member,
            transport: args.transport.map(TransportKind::from),
            outbox: args.outbox,
        },
        runtime,
    )?;
    let mut failed = false;
    for (address, outcome) in &result.deliveries {
        match outcome {
            Delivery::Accepted(reply) => outln!("proof sent to {address}: {reply}"),
            other => {
                failed = true;
                errln!("proof not sent to {address}: {other}");
            }
        }
    }
    let sent = result
        .deliveries
        .iter()
        .filter(|(_, d)| matches!(d, Delivery::Accepted(_)))
        .count();
    errln!(
        "`{}` (bulletin {}): {} of {} sent; no job started, the number is not used",
        result.subject,
        result.number,
        count(sent as u64, "proof", "proofs"),
        result.deliveries.len()
    );
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `mailout worker`, on `runtime`.
pub fn worker(options: &Options, args: Worker, runtime: &Runtime) -> Result<ExitCode, Error> {
    let workspace = Workspace::open(options)?;
    let stats = mailout::send::work(
        &workspace,
        &mailout::send::WorkerOptions {
            jobs: args.jobs,
            transport: None,
            smtp_url: args.smtp,
            concurrency: args.concurrency,
            rate: None,
            exit_when_idle: args.exit_when_idle,
            outbox: args.outbox,
            progress: !args.quiet,
        },
        runtime,
    )?;
    outln!(
        "worker: {} sent, {} failed, {} uncertain in {:.1} s",
        stats.sent,
        stats.failed,
        stats.uncertain,
        stats.elapsed.as_secs_f64()
    );
    Ok(if stats.interrupted {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `mailout workers`.
pub fn workers(options: &Options) -> Result<ExitCode, Error> {
    let workspace = Workspace::open_read_only(options)?;
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

/// `mailout jobs`.
pub fn jobs(options: &Options) -> Result<ExitCode, Error> {
    let workspace = Workspace::open_read_only(options)?;
    let mut rows = vec![
        [
            "JOB",
            "NUMBER",
            "TO",
            "STATE",
            "SENT",
            "FAILED",
            "UNCERTAIN",
            "SKIPPED",
            "PENDING",
            "TOTAL",
            "STARTED",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for job in workspace.store()?.jobs()? {
        rows.push(vec![
            job.id.to_string(),
            job.spec.number.to_string(),
            job.spec.selectors.clone(),
            mailout::send::account::state_of(&job).to_string(),
            job.progress.sent.to_string(),
            job.progress.failed.to_string(),
            job.progress.uncertain.to_string(),
            job.progress.skipped.to_string(),
            job.progress.pending.to_string(),
            job.total.to_string(),
            job.spec.created_at.clone(),
        ]);
    }
    print_table(&rows);
    Ok(ExitCode::SUCCESS)
}

/// `mailout job N`: the job, its account (everyone selected and what became of them, adding
/// up), every failure with its reply, every uncertain copy with what happened; or the same
/// as JSON, CSV or an HTML page (`--report DIR`).
pub fn job(options: &Options, args: JobArgs) -> Result<ExitCode, Error> {
    let workspace = if args.cancel || args.release {
        Workspace::open(options)?
    } else {
        Workspace::open_read_only(options)?
    };
    let store = workspace.store()?;
    let id = args.id;
    if args.cancel {
        let job = store.job(id)?.ok_or_else(|| {
            Error::Usage(format!("there is no job {id}; `mailout jobs` lists them"))
        })?;
        if job.finished_at.is_some() {
            errln!("job {id} has already finished; nothing to cancel");
            return Ok(ExitCode::SUCCESS);
        }
        let cancelled = store.cancel_job(id, &mailout::clock::stamp())?;
        if !job.is_started() {
            errln!("job {id} cancelled before it started: nothing of it will be sent");
            return Ok(ExitCode::SUCCESS);
        }
        errln!(
            "job {id} cancelled: {} will not be sent (a worker sending it stops within a second)",
            count(cancelled, "pending copy", "pending copies")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.release {
        return release(&workspace, id);
    }
    let account = mailout::send::account::account(store, id)?;
    if let Some(dir) = &args.report {
        let job = store.job(id)?.ok_or_else(|| {
            Error::Usage(format!("there is no job {id}; `mailout jobs` lists them"))
        })?;
        let html = report::render(&account, &job, &mailout::clock::stamp())?;
        let path = write_report(dir, id, &html)?;
        errln!("report: {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        let json = serde_json::to_string_pretty(&account).map_err(|e| Error::Failed {
            context: "could not write the account as JSON".into(),
            source: Box::new(e),
        })?;
        outln!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    if args.csv {
        outln!("{}", account_csv(&account)?);
        return Ok(ExitCode::SUCCESS);
    }
    let job = store
        .job(id)?
        .ok_or_else(|| Error::Usage(format!("there is no job {id}; `mailout jobs` lists them")))?;
    let p = &job.progress;
    outln!("job:        {}", job.id);
    outln!("bulletin:   {} ({})", job.spec.number, job.spec.source);
    outln!("subject:    {}", job.spec.subject);
    outln!("to:         {}", job.spec.selectors);
    outln!("transport:  {}", job.spec.transport);
    outln!("state:      {}", account.state);
    match &job.scheduled_for {
        Some(due) => {
            let zone = mailout::send::schedule::zone(&workspace.config)?;
            outln!(
                "scheduled:  {} (on {})",
                mailout::send::schedule::show(due, &zone),
                job.spec.created_at
            );
            if let Some(why) = &job.held_because {
                outln!("held:       {why}");
            }
        }
        None => outln!("started:    {}", job.spec.created_at),
    }
    if let Some(at) = &job.finished_at {
        outln!("finished:   {at}");
    }
    outln!(
        "recipients: {} ({} sent, {} failed, {} uncertain, {} skipped, {} pending{})",
        job.total,
        p.sent,
        p.failed,
        p.uncertain,
        p.skipped,
        p.pending,
        if p.cancelled > 0 {
            format!(", {} cancelled", p.cancelled)
        } else {
            String::new()
        }
    );
    print_account(&account);
    for (state, label) in [
        (EntryState::Failed, "failed:    "),
        (EntryState::Uncertain, "uncertain: "),
    ] {
        for e in store.entries(id, state)? {
            outln!(
                "{label} {}: {}",
                super::output::cell(&e.member.email, 200),
                super::output::cell(e.reply.as_deref().unwrap_or(""), 400)
            );
        }
    }
    if p.uncertain > 0 {
        outln!(
            "(uncertain copies may have been delivered; resend them on purpose with `mailout send {} --resume {} --retry-uncertain`)",
            job.spec.source,
            job.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailout job N --release`: a late or held scheduled job may start.
fn release(workspace: &Workspace, id: i64) -> Result<ExitCode, Error> {
    use mailout::store::Schedule;
    let store = workspace.store()?;
    let job = store
        .job(id)?
        .ok_or_else(|| Error::Usage(format!("there is no job {id}; `mailout jobs` lists them")))?;
    let state = mailout::send::account::state_of(&job);
    if !matches!(job.schedule, Some(Schedule::Late | Schedule::Held)) {
        return Err(Error::Usage(format!(
            "job {id} is {state}: only a scheduled job that waits as `late` or `held` is released"
        )));
    }
    if !store.set_schedule(
        id,
        &[Schedule::Late, Schedule::Held],
        Schedule::Released,
        None,
    )? {
        return Err(Error::Usage(format!(
            "job {id} changed meanwhile (another command moved it); `mailout job {id}` says where it stands"
        )));
    }
    errln!(
        "job {id} released: `mailout worker` (or `mailout send {} --resume {id}`) starts it now",
        job.spec.source
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes job `id`'s report `html` into `dir`, made if needed; returns the file's path.
fn write_report(dir: &Path, id: i64, html: &str) -> Result<PathBuf, Error> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!(
            "`{}` is a file, not a folder: `--report DIR` writes the report into a folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(report::file_name(id));
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "`{}` is a folder: the report cannot be written over it",
            path.display()
        )));
    }
    outbox::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// `reason 3, other 1`, or `-` for none.
fn by_reason(counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "-".into();
    }
    counts
        .iter()
        .map(|(reason, n)| format!("{} {n}", super::output::cell(reason, 40)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_account(account: &Account) {
    let f = &account.figures;
    outln!(
        "account:    {} selected = {} sent + {} failed + {} uncertain + {} suppressed before the send + {} left out during it + {} cancelled + {} pending",
        f.selected,
        f.sent,
        f.failed,
        f.uncertain,
        f.suppressed_before,
        f.left_out_during,
        f.cancelled,
        f.pending
    );
    outln!(
        "  failed by reason:            {}",
        by_reason(&account.failed_by_reason)
    );
    outln!(
        "  suppressed before the send:  {}",
        by_reason(&account.suppressed_by_reason)
    );
    outln!(
        "  left out during it:          {}",
        by_reason(&account.left_out_by_reason)
    );
    outln!(
        "  came back later:             {} bounced ({}), {} unsubscribed",
        f.bounced,
        by_reason(&account.bounces_by_consequence),
        f.unsubscribed
    );
    for seed in &account.seeds {
        outln!(
            "  seed {}: {}",
            super::output::cell(&seed.address, 200),
            super::output::cell(&mailout::send::account::seed_in_words(seed), 400)
        );
    }
    if account.waves.len() > 1 {
        for w in &account.waves {
            let g = &w.figures;
            outln!(
                "  wave {} ({}):{:width$}{} selected = {} sent + {} failed + {} uncertain + {} suppressed + {} left out + {} cancelled + {} pending",
                w.wave,
                if w.wave == 1 { "start" } else { "top-up" },
                "",
                g.selected,
                g.sent,
                g.failed,
                g.uncertain,
                g.suppressed_before,
                g.left_out_during,
                g.cancelled,
                g.pending,
                width = if w.wave == 1 { 6 } else { 5 },
            );
        }
    }
    for (title, groups) in [
        ("BRANCH", &account.by_branch),
        ("EMPLOYER", &account.by_employer),
    ] {
        let mut rows = vec![
            [
                title,
                "SELECTED",
                "SENT",
                "FAILED",
                "UNCERTAIN",
                "SUPPRESSED",
                "LEFT OUT",
                "CANCELLED",
                "PENDING",
                "BOUNCED",
                "UNSUBSCRIBED",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for g in groups.iter() {
            let mut row = vec![g.name.clone()];
            row.extend(figures_row(&g.figures).iter().map(u64::to_string));
            rows.push(row);
        }
        print_table(&rows);
    }
}

/// A group's figures in the order of the account's columns.
fn figures_row(f: &Figures) -> [u64; 10] {
    [
        f.selected,
        f.sent,
        f.failed,
        f.uncertain,
        f.suppressed_before,
        f.left_out_during,
        f.cancelled,
        f.pending,
        f.bounced,
        f.unsubscribed,
    ]
}

/// The account's figures as CSV. A name that a spreadsheet would take for a formula
/// (`=`, `+`, `-`, `@`) is written with a leading `'`.
fn account_csv(account: &Account) -> Result<String, Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| Error::Failed {
        context: "could not write the account as CSV".into(),
        source: Box::new(e),
    };
    out.write_record([
        "group",
        "name",
        "selected",
        "sent",
        "failed",
        "uncertain",
        "suppressed_before",
        "left_out_during",
        "cancelled",
        "pending",
        "bounced",
        "unsubscribed",
    ])
    .map_err(failed)?;
    let all = std::iter::once(("all", String::new(), &account.figures));
    let waves = account
        .waves
        .iter()
        .filter(|_| account.waves.len() > 1)
        .map(|w| ("wave", w.wave.to_string(), &w.figures));
    let groups = account
        .by_branch
        .iter()
        .map(|g| ("branch", g.name.clone(), &g.figures))
        .chain(
            account
                .by_employer
                .iter()
                .map(|g| ("employer", g.name.clone(), &g.figures)),
        );
    for (group, name, figures) in all.chain(waves).chain(groups) {
        let name = if name.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{name}")
        } else {
            name.to_string()
        };
        let mut record = vec![group.to_string(), name];
        record.extend(figures_row(figures).iter().map(u64::to_string));
        out.write_record(&record).map_err(failed)?;
    }
    let bytes = out.into_inner().map_err(|e| Error::Failed {
        context: "could not write the account as CSV".into(),
        source: Box::new(e.into_error()),
    })?;
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}

fn ask(plan: &Plan) -> bool {
    eprint_flush(&format!(
        "Send `{}` to {} (--to {}){}? [y/N] ",
        plan.subject,
        count(plan.recipients, "member", "members"),
        plan.selectors,
        plan.due
            .as_deref()
            .map(|due| format!(" at {due} (to those it selects then)"))
            .unwrap_or_default()
    ));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

fn eprint_flush(text: &str) {
    let mut err = std::io::stderr();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

fn print_plan(plan: &Plan) {
    if let Some(due) = &plan.due {
        outln!("scheduled for {due}");
    }
    outln!(
        "would send `{}` (bulletin {}) to {} (--to {})",
        plan.subject,
        plan.number,
        count(plan.recipients, "member", "members"),
        plan.selectors
    );
    if let Some(job) = &plan.existing {
        outln!(
            "job {} exists for it: {} sent, {} failed, {} uncertain, {} pending; running the command again resumes it",
            job.id,
            job.progress.sent,
            job.progress.failed,
            job.progress.uncertain,
            job.progress.pending
        );
    }
    for m in &plan.sample {
        outln!("  {}", m.email);
    }
    if plan.recipients > plan.sample.len() as u64 && !plan.sample.is_empty() {
        outln!(
            "  … and {} more",
            plan.recipients - plan.sample.len() as u64
        );
    }
}
