//! A send job from the command line's point of view: find or start the job for a bulletin
//! and selectors (writing its whole journal before any mail moves), choose the transport,
//! run the workers, and report.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::Address;

use super::journal::Journal;
use super::progress::Display;
use super::queue::Backoff;
use super::smtp::{SmtpSettings, SmtpTransport};
use super::transport::{FileTransport, SendmailTransport};
use super::{RunOptions, RunStats};
use crate::clock;
use crate::config;
use crate::dkim::Signer;
use crate::edition::Edition;
use crate::error::{Error, Result};
use crate::members::{self, Member};
use crate::store::{EditionRecord, Job, NewJob};
use crate::workspace::{Workspace, source_key};

/// Which transport carries a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// SMTP, as `[smtp]` configures it.
    Smtp,
    /// One `.eml` per recipient under `outbox/<number>/sent/`.
    File,
    /// The local MTA's `sendmail`.
    Sendmail,
}

impl TransportKind {
    /// The name shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Smtp => "smtp",
            TransportKind::File => "file",
            TransportKind::Sendmail => "sendmail",
        }
    }
}

/// What `mailout send` was asked to do.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// The bulletin file.
    pub file: PathBuf,
    /// `--to`: selectors (needed unless resuming).
    pub to: Option<String>,
    /// `--resume JOB`.
    pub resume: Option<i64>,
    /// `--dry-run`: show who would receive it, change nothing.
    pub dry_run: bool,
    /// `--transport`; default SMTP when configured, else files.
    pub transport: Option<TransportKind>,
    /// `--concurrency`; default `[smtp] concurrency`.
    pub concurrency: Option<u32>,
    /// `--rate`; default `[smtp] rate`.
    pub rate: Option<u32>,
    /// Where the file transport writes (`outbox/`).
    pub outbox: PathBuf,
    /// How to show progress.
    pub display: Display,
}

/// Who a job goes to, before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The edition.
    pub number: u32,
    /// Its subject.
    pub subject: String,
    /// The canonical selectors.
    pub selectors: String,
    /// How many members will receive it.
    pub recipients: u64,
    /// The first few of them.
    pub sample: Vec<Member>,
    /// The job that already exists for this bulletin and these selectors.
    pub existing: Option<Job>,
}

/// How a send ended.
#[derive(Debug, Clone)]
pub enum SendResult {
    /// `--dry-run`: nothing was sent.
    DryRun(Plan),
    /// The user said no.
    Declined(Plan),
    /// The job ran (or had nothing left); its state now, and what this run did.
    Ran {
        /// The job after the run.
        job: Job,
        /// This run.
        stats: RunStats,
        /// Whether this run started the job.
        started: bool,
    },
}

/// Runs `request` in `workspace`; `confirm` is asked before a new job starts.
pub fn send(
    workspace: &Workspace,
    request: &SendRequest,
    confirm: &mut dyn FnMut(&Plan) -> bool,
) -> Result<SendResult> {
    let edition = workspace.edition(&request.file)?;
    let store = workspace.store()?;
    let config = &workspace.config;

    let (job, selectors) = match request.resume {
        Some(id) => {
            let job = store.job(id)?.ok_or_else(|| {
                Error::Usage(format!("there is no job {id}; `mailout jobs` lists them"))
            })?;
            if job.spec.number != edition.number {
                return Err(Error::Usage(format!(
                    "job {id} sends bulletin {}, not {} (`{}`)",
                    job.spec.number,
                    edition.number,
                    request.file.display()
                )));
            }
            let selectors = members::parse_selectors(&job.spec.selectors, config)?;
            (Some(job), selectors)
        }
        None => {
            let to = request.to.as_deref().ok_or_else(|| {
                Error::Usage("say who receives it: `--to all`, `--to branch:NAME`, `--to employer:NAME` or a list name (or `--resume JOB`)".into())
            })?;
            let selectors = members::parse_selectors(to, config)?;
            (store.find_job(edition.number, &selectors.key)?, selectors)
        }
    };
    if let Some(job) = &job
        && job.spec.content_hash != edition.content_hash
    {
        return Err(Error::Usage(format!(
            "job {} started sending bulletin {} with other content; a sent bulletin cannot change",
            job.id, job.spec.number
        )));
    }

    let plan = Plan {
        number: edition.number,
        subject: edition.subject.clone(),
        selectors: selectors.key.clone(),
        recipients: match &job {
            Some(job) => job.total,
            None => store.count_selected(&selectors.selection)?,
        },
        sample: if request.dry_run {
            store
                .members(Some(&selectors.selection))?
                .into_iter()
                .take(10)
                .collect()
        } else {
            Vec::new()
        },
        existing: job.clone(),
    };
    if request.dry_run {
        return Ok(SendResult::DryRun(plan));
    }

    let setup = Setup::new(workspace, request)?;
    let now = clock::stamp();
    let (job, started) = match job {
        Some(job) => (job, false),
        None => {
            if plan.recipients == 0 {
                return Err(Error::Usage(format!(
                    "`--to {}` selects nobody: no member matches, or all are suppressed",
                    selectors.key
                )));
            }
            if !confirm(&plan) {
                return Ok(SendResult::Declined(plan));
            }
            let job = store.create_job(
                &NewJob {
                    number: edition.number,
                    selectors: selectors.key.clone(),
                    content_hash: edition.content_hash.clone(),
                    subject: edition.subject.clone(),
                    source: source_key(&request.file),
                    transport: setup.kind.as_str().to_string(),
                    created_at: now.clone(),
                },
                &selectors.selection,
            )?;
            // From now on the number is sent: its content cannot change.
            store.record_sent(
                &EditionRecord {
                    number: edition.number,
                    content_hash: edition.content_hash.clone(),
                    subject: edition.subject.clone(),
                    source: source_key(&request.file),
                    built_at: None,
                    sent_at: None,
                },
                &now,
            )?;
            (job, true)
        }
    };

    store.skip_suppressed(job.id, &now)?;
    let job = store.job(job.id)?.unwrap_or(job);
    let stats = if job.progress.pending > 0 {
        run_job(
            workspace,
            request,
            setup,
            edition,
            &job,
            selectors.list_name.as_deref(),
        )?
    } else {
        RunStats::default()
    };
    let job = store.job(job.id)?.unwrap_or(job);
    if job.progress.pending == 0 && job.finished_at.is_none() {
        store.finish_job(job.id, &clock::stamp())?;
    }
    let job = store.job(job.id)?.unwrap_or(job);
    Ok(SendResult::Ran {
        job,
        stats,
        started,
    })
}

fn transport_kind(request: &SendRequest, config: &config::Config) -> TransportKind {
    request.transport.unwrap_or(if config.smtp.is_some() {
        TransportKind::Smtp
    } else {
        TransportKind::File
    })
}

/// Everything a run needs besides the job, checked before a job starts: a missing password
/// or DKIM key is an error before any journal row is written.
struct Setup {
    kind: TransportKind,
    smtp: Option<Arc<SmtpSettings>>,
    signer: Option<Arc<Signer>>,
    from: Address,
}

impl Setup {
    fn new(workspace: &Workspace, request: &SendRequest) -> Result<Setup> {
        let config = &workspace.config;
        let kind = transport_kind(request, config);
        let smtp = match (kind, &config.smtp) {
            (TransportKind::Smtp, Some(smtp)) => Some(Arc::new(SmtpSettings::new(
                &smtp.url,
                smtp,
                &config.sender.list_domain,
            )?)),
            (TransportKind::Smtp, None) => {
                return Err(Error::Usage(
                    "`--transport smtp` needs an `[smtp]` table in the config".into(),
                ));
            }
            _ => None,
        };
        let signer = match &config.dkim {
            Some(dkim) => Some(Arc::new(Signer::load(dkim, Path::new("."))?)),
            None => None,
        };
        let mailbox = lettre::message::Mailbox::from_str(&config.sender.from)
            .map_err(|e| Error::Usage(format!("`[sender] from`: {e}")))?;
        Ok(Setup {
            kind,
            smtp,
            signer,
            from: mailbox.email,
        })
    }
}

fn run_job(
    workspace: &Workspace,
    request: &SendRequest,
    setup: Setup,
    edition: Edition,
    job: &Job,
    list_name: Option<&str>,
) -> Result<RunStats> {
    let config = &workspace.config;
    let smtp = config.smtp.clone().unwrap_or_default();
    let number = edition.number;
    let started = job
        .spec
        .created_at
        .parse::<jiff::Timestamp>()
        .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t.as_second().max(0).unsigned_abs()))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mailing = Arc::new(workspace.mailing(edition, list_name)?.with_date(started));
    let concurrency = request
        .concurrency
        .unwrap_or(smtp.concurrency)
        .clamp(1, 1024) as usize;
    let options = RunOptions {
        concurrency,
        rate: request.rate.unwrap_or(smtp.rate),
        max_attempts: smtp.max_attempts,
        backoff: Backoff::default(),
        display: request.display,
    };
    let journal = Journal::new(crate::store::open(workspace.store_location())?, job.id);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("could not start the async runtime: {e}")))?;
    let pending = job.progress.pending;
    let Setup {
        kind,
        smtp: settings,
        signer,
        from,
    } = setup;
    let result = runtime.block_on(async {
        match (kind, settings) {
            (TransportKind::Smtp, Some(settings)) => {
                let transports = (0..concurrency)
                    .map(|_| SmtpTransport::new(Arc::clone(&settings)))
                    .collect();
                super::run(
                    mailing, signer, from, journal, transports, pending, &options,
                )
                .await
            }
            (TransportKind::Sendmail, _) => {
                let transports = (0..concurrency).map(|_| SendmailTransport::new()).collect();
                super::run(
                    mailing, signer, from, journal, transports, pending, &options,
                )
                .await
            }
            _ => {
                let dir = request.outbox.join(number.to_string()).join("sent");
                let transports = (0..concurrency)
                    .map(|_| FileTransport::new(dir.clone()))
                    .collect();
                super::run(
                    mailing, signer, from, journal, transports, pending, &options,
                )
                .await
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}
