//! A send worker (PRODUCT.md §8): registers itself in the store, claims pending journal
//! rows of running jobs in batches under a lease that its heartbeat renews, and sends them.
//! `mailout worker` runs one for any running job, on any machine that shares the store;
//! `mailout send` runs one for its own job, so one-machine use is the same code.
//!
//! When the store cannot be reached, the worker sends nothing more (a message's data only
//! goes once the previous results are committed and the lease is known to be live), keeps
//! the results it could not write, and tries again with backoff; once the store answers it
//! writes them, lets its old claims go and carries on under a new registration.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lettre::Address;

use super::journal::Journal;
use super::queue::{Backoff, Queue};
use super::smtp::{SmtpSettings, SmtpTransport};
use super::transport::{AnyTransport, FileTransport, SendmailTransport};
use super::{RunOptions, RunStats};
use crate::dkim::Signer;
use crate::error::{Error, Result};
use crate::members;
use crate::message::Mailing;
use crate::runtime::Runtime;
use crate::store::{Job, Store};
use crate::workspace::Workspace;

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
    /// The transport when none is named: SMTP when `[smtp]` is configured, else files.
    pub fn default_for(config: &crate::config::Config) -> TransportKind {
        if config.smtp.is_some() {
            TransportKind::Smtp
        } else {
            TransportKind::File
        }
    }

    /// The name shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Smtp => "smtp",
            TransportKind::File => "file",
            TransportKind::Sendmail => "sendmail",
        }
    }

    /// The transport named `name` (as stored with a job).
    pub fn parse(name: &str) -> Option<TransportKind> {
        Some(match name {
            "smtp" => TransportKind::Smtp,
            "file" => TransportKind::File,
            "sendmail" => TransportKind::Sendmail,
            _ => return None,
        })
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The jobs to work on; empty for every running job.
    pub jobs: Vec<i64>,
    /// `--transport`: overrides the transport each job was started with.
    pub transport: Option<TransportKind>,
    /// `--smtp URL`: relay through this server instead of `[smtp] url`.
    pub smtp_url: Option<String>,
    /// `--concurrency`; default `[smtp] concurrency`.
    pub concurrency: Option<u32>,
    /// `--rate`; default `[smtp] rate`. The job's total over every worker.
    pub rate: Option<u32>,
    /// Stop when the jobs have nothing pending (`send` always does).
    pub exit_when_idle: bool,
    /// Where the file transport writes (`outbox/`).
    pub outbox: PathBuf,
    /// Whether to report progress (to the workspace's reporter).
    pub progress: bool,
}

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkStats {
    /// Accepted by this worker.
    pub sent: u64,
    /// Failed for good in this worker.
    pub failed: u64,
    /// Sent in full without a reply in this worker.
    pub uncertain: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Whether it was interrupted (Ctrl-C).
    pub interrupted: bool,
}

impl From<WorkStats> for RunStats {
    fn from(w: WorkStats) -> RunStats {
        RunStats {
            sent: w.sent,
            failed: w.failed,
            uncertain: w.uncertain,
            elapsed: w.elapsed,
            interrupted: w.interrupted,
        }
    }
}

/// Everything a run needs besides the job, checked before a job starts: a missing password
/// or DKIM key is an error before any journal row is written.
pub(crate) struct Setup {
    smtp: Option<Arc<SmtpSettings>>,
    signer: Option<Arc<Signer>>,
    from: Address,
}

impl Setup {
    /// Reads the SMTP settings (when `kind` is SMTP, or when `smtp_url` is given), the DKIM
    /// key and the sender.
    pub(crate) fn new(
        workspace: &Workspace,
        kind: Option<TransportKind>,
        smtp_url: Option<&str>,
    ) -> Result<Setup> {
        let config = &workspace.config;
        let smtp_config = config.smtp.clone().unwrap_or_default();
        let smtp = match (smtp_url, &config.smtp) {
            (Some(url), _) => Some(Arc::new(SmtpSettings::new(
                url,
                &smtp_config,
                &config.sender.list_domain,
            )?)),
            (None, Some(smtp)) => Some(Arc::new(SmtpSettings::new(
                &smtp.url,
                smtp,
                &config.sender.list_domain,
            )?)),
            (None, None) if kind == Some(TransportKind::Smtp) => {
                return Err(Error::Usage(
                    "`--transport smtp` needs an `[smtp]` table in the config (or `--smtp URL`)"
                        .into(),
                ));
            }
            (None, None) => None,
        };
        let signer = match &config.dkim {
            Some(dkim) => Some(Arc::new(Signer::load(dkim, Path::new("."))?)),
            None => None,
        };
        let mailbox = lettre::message::Mailbox::from_str(&config.sender.from).map_err(|e| {
            Error::Setting {
                context: format!("`[sender] from` `{}` is not a mailbox", config.sender.from),
                source: Box::new(e),
            }
        })?;
        Ok(Setup {
            smtp,
            signer,
            from: mailbox.email,
        })
    }
}

impl Setup {
    /// A transport of `kind` (one SMTP connection; files go into `file_dir`).
    pub(crate) fn transport(&self, kind: TransportKind, file_dir: &Path) -> Result<AnyTransport> {
        Ok(match (kind, &self.smtp) {
            (TransportKind::Smtp, Some(settings)) => {
                AnyTransport::Smtp(Box::new(SmtpTransport::new(Arc::clone(settings))))
            }
            (TransportKind::Smtp, None) => {
                return Err(Error::Usage(
                    "sending over SMTP needs an `[smtp]` table in the config (or `--smtp URL`)"
                        .into(),
                ));
            }
            (TransportKind::Sendmail, _) => AnyTransport::Sendmail(SendmailTransport::new()),
            (TransportKind::File, _) => {
                AnyTransport::File(FileTransport::new(file_dir.to_path_buf()))
            }
        })
    }

    /// Tries the transport once before anything is written: for SMTP, a session is
    /// opened (connect, greeting, TLS, AUTH) and closed. An unreachable or misconfigured
    /// server is an error that says why.
    pub(crate) fn check(&self, kind: TransportKind, runtime: &Runtime) -> Result<()> {
        let (TransportKind::Smtp, Some(settings)) = (kind, &self.smtp) else {
            return Ok(());
        };
        runtime.block_on(settings.probe())?
    }

    /// The DKIM signer, when `[dkim]` is configured.
    pub(crate) fn signer(&self) -> Option<&Signer> {
        self.signer.as_deref()
    }

    /// The envelope sender.
    pub(crate) fn from(&self) -> &Address {
        &self.from
    }
}

/// A job as this worker sends it.
struct Prepared {
    mailing: Arc<Mailing>,
    kind: TransportKind,
}

/// Runs a worker in `workspace` on `runtime` until its jobs have nothing pending (with
/// `exit_when_idle`) or it is interrupted.
pub fn work(
    workspace: &Workspace,
    options: &WorkerOptions,
    runtime: &Runtime,
) -> Result<WorkStats> {
    let setup = Setup::new(workspace, options.transport, options.smtp_url.as_deref())?;
    runtime.block_on(Worker::new(workspace, options, setup)?.work())?
}

struct Worker<'a> {
    workspace: &'a Workspace,
    options: &'a WorkerOptions,
    setup: Setup,
    host: String,
    lease: Duration,
    id: Option<i64>,
    renewed: Instant,
    prepared: HashMap<i64, Prepared>,
    /// Jobs whose seed copies this worker has seen to.
    seeded: std::collections::HashSet<i64>,
    stats: WorkStats,
}

impl<'a> Worker<'a> {
    fn new(
        workspace: &'a Workspace,
        options: &'a WorkerOptions,
        setup: Setup,
    ) -> Result<Worker<'a>> {
        Ok(Worker {
            workspace,
            options,
            setup,
            host: crate::host::hostname(),
            lease: Duration::from_secs(workspace.config.store.lease_secs.max(1)),
            id: None,
            renewed: Instant::now(),
            prepared: HashMap::new(),
            seeded: std::collections::HashSet::new(),
            stats: WorkStats::default(),
        })
    }

    fn store(&self) -> Result<&dyn Store> {
        self.workspace.store()
    }

    fn lease_secs(&self) -> u32 {
        u32::try_from(self.lease.as_secs()).unwrap_or(u32::MAX)
    }

    fn heartbeat_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(100))
    }

    /// Registers (again, after a lost lease), first letting go of the claims of workers on
    /// this machine whose process has gone (a send killed before a rerun).
    fn register(&mut self) -> Result<i64> {
        let store = self.store()?;
        let me = std::process::id();
        crate::host::reap_dead_workers(store)?;
        let asked = Instant::now();
        let id = store.register_worker(&self.host, me, self.lease_secs())?;
        self.id = Some(id);
        self.renewed = asked;
        Ok(id)
    }

    /// This worker's id, with a live lease.
    fn live_id(&mut self) -> Result<i64> {
        match self.id {
            Some(id) => {
                let asked = Instant::now();
                if self
                    .store()?
                    .heartbeat(id, 0, self.stats.sent, self.lease_secs())?
                {
                    self.renewed = asked;
                    Ok(id)
                } else {
                    self.register()
                }
            }
            None => self.register(),
        }
    }

    async fn work(mut self) -> Result<WorkStats> {
        let start = Instant::now();
        let outcome = self.work_loop().await;
        if let Some(id) = self.id
            && let Ok(store) = self.store()
            && let Err(e) = store.retire_worker(id)
        {
            tracing::warn!("could not retire worker {id}: {}", e.one_line());
        }
        self.stats.elapsed = start.elapsed();
        outcome.map(|()| self.stats)
    }

    async fn work_loop(&mut self) -> Result<()> {
        let mut quiet_next = false;
        let mut failures = 0u32;
        loop {
            let step = self.pass(quiet_next).await;
            let (busy, idle_pending) = match step {
                Ok(Pass::Interrupted) => {
                    self.stats.interrupted = true;
                    return Ok(());
                }
                Ok(Pass::Done { claimed, pending }) => {
                    failures = 0;
                    (claimed > 0, pending)
                }
                Err(e) if is_transient(&e) => {
                    failures += 1;
                    let wait = Backoff::default().delay(failures);
                    tracing::warn!(
                        "{}; trying again in {:.1} s",
                        e.one_line(),
                        wait.as_secs_f64()
                    );
                    self.workspace
                        .report()
                        .line(&format!("waiting for the store: {}", e.one_line()));
                    if self.pause(wait).await {
                        self.stats.interrupted = true;
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if idle_pending == 0 && self.options.exit_when_idle {
                return Ok(());
            }
            quiet_next = !busy;
            if !busy {
                // Nothing this worker may claim now: other workers hold the rest, or
                // nothing is running. Look again shortly, staying registered.
                let wait =
                    (self.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(2));
                if self.pause(wait).await {
                    self.stats.interrupted = true;
                    return Ok(());
                }
            }
        }
    }

    /// Waits `wait`; true if interrupted meanwhile.
    async fn pause(&self, wait: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = tokio::signal::ctrl_c() => true,
        }
    }

    /// One pass over the running jobs: each is worked until this worker can claim nothing
    /// more of it.
    async fn pass(&mut self, quiet: bool) -> Result<Pass> {
        let due = super::schedule::start_due(self.workspace, &self.options.jobs)?;
        if !due.is_empty() {
            let zone = super::schedule::zone(&self.workspace.config)?;
            for outcome in due {
                self.workspace.report().line(&outcome.describe(&zone));
            }
        }
        let store = self.store()?;
        let jobs: Vec<Job> = if self.options.jobs.is_empty() {
            store.running_jobs()?
        } else {
            let mut jobs = Vec::new();
            for id in &self.options.jobs {
                let job = store.job(*id)?.ok_or_else(|| {
                    Error::Usage(format!("there is no job {id}; `mailout jobs` lists them"))
                })?;
                jobs.push(job);
            }
            jobs
        };
        let mut claimed = 0;
        let mut pending = 0;
        for job in jobs {
            if !job.is_started() {
                // Scheduled: started above when it comes due.
                continue;
            }
            if job.progress.pending == 0 {
                if job.finished_at.is_none() {
                    self.store()?.finish_job(job.id, &crate::clock::stamp())?;
                }
                continue;
            }
            let worker = self.live_id()?;
            let (got, interrupted) = self.run_job(&job, worker, quiet).await?;
            if interrupted {
                return Ok(Pass::Interrupted);
            }
            claimed += got;
            let now = self.store()?.job(job.id)?;
            match now {
                Some(now) if now.progress.pending == 0 && now.finished_at.is_none() => {
                    self.store()?.finish_job(job.id, &crate::clock::stamp())?;
                }
                Some(now) if now.progress.pending == 0 => {}
                Some(now) => pending += now.progress.pending,
                None => {}
            }
        }
        Ok(Pass::Done { claimed, pending })
    }

    fn prepare(&mut self, job: &Job) -> Result<&Prepared> {
        if !self.prepared.contains_key(&job.id) {
            let prepared = prepare(self.workspace, job, self.options.transport)?;
            self.prepared.insert(job.id, prepared);
        }
        self.prepared
            .get(&job.id)
            .ok_or_else(|| Error::Internal("a prepared job vanished".into()))
    }

    /// Works `job` as `worker` until nothing more can be claimed; returns how many rows
    /// this worker claimed and whether it was interrupted.
    async fn run_job(&mut self, job: &Job, worker: i64, quiet: bool) -> Result<(u64, bool)> {
        let options = self.options;
        let smtp = self.workspace.config.smtp.clone().unwrap_or_default();
        let concurrency = options
            .concurrency
            .unwrap_or(smtp.concurrency)
            .clamp(1, 1024) as usize;
        let run = RunOptions {
            concurrency,
            rate: options.rate.unwrap_or(smtp.rate),
            max_attempts: smtp.max_attempts,
            backoff: Backoff::default(),
            progress: options.progress && !quiet,
            report: self.workspace.report().clone(),
        };
        let heartbeat = self.heartbeat_every();
        let lease = self.lease;
        let renewed = self.renewed;
        let (mailing, kind) = {
            let p = self.prepare(job)?;
            (Arc::clone(&p.mailing), p.kind)
        };
        let signer = self.setup.signer.clone();
        let from = self.setup.from.clone();
        let seeds = &self.workspace.config.seeds.addresses;
        if !seeds.is_empty() && self.seeded.insert(job.id) {
            let dir = options
                .outbox
                .join(job.spec.number.to_string())
                .join("seeds")
                .join(job.id.to_string());
            let mut transport = self.setup.transport(kind, &dir)?;
            super::seeds::send_copies(
                self.workspace.store()?,
                job.id,
                &mailing,
                signer.as_deref(),
                &from,
                seeds,
                &mut transport,
            )
            .await?;
        }
        let store = self.workspace.open_store()?;
        let committers = store.committers();
        let mut journal = Journal::new(store, job.id, worker, lease, renewed)
            .with_claimer(self.workspace.open_store()?);
        for _ in 0..committers.max(1) {
            journal = journal.with_committer(self.workspace.open_store()?);
        }
        let queue = super::queue(journal, &run);
        let pending = job.progress.pending;
        let sent_dir = options
            .outbox
            .join(job.spec.number.to_string())
            .join("sent");
        let result = match (0..concurrency)
            .map(|_| self.setup.transport(kind, &sent_dir))
            .collect::<Result<Vec<_>>>()
        {
            Ok(transports) => {
                super::run(
                    mailing,
                    signer,
                    from,
                    Arc::clone(&queue),
                    transports,
                    pending,
                    heartbeat,
                    &run,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let claimed = queue.claimed();
        match result {
            Ok(stats) => {
                self.stats.sent += stats.sent;
                self.stats.failed += stats.failed;
                self.stats.uncertain += stats.uncertain;
                self.renewed = queue.renewed();
                Ok((claimed, stats.interrupted))
            }
            Err(e) if is_transient(&e) => {
                self.stats.sent += queue
                    .counters
                    .sent
                    .load(std::sync::atomic::Ordering::Relaxed);
                self.recover(&queue).await?;
                Err(e)
            }
            Err(e) => {
                if let Err(flush) = queue.flush() {
                    tracing::warn!("could not record the last results: {}", flush.one_line());
                }
                Err(e)
            }
        }
    }

    /// After the store was lost: writes the results held in memory (those copies went out),
    /// then lets this worker's claims go, so that whoever claims them next (this worker
    /// too) starts clean.
    async fn recover(&mut self, queue: &Queue) -> Result<()> {
        let mut failures = 0u32;
        loop {
            // The old registration goes only once it is retired: until then its claims
            // would wait for the lease to run out.
            let written = queue.flush().and_then(|()| match self.id {
                Some(id) => self.store()?.retire_worker(id),
                None => Ok(()),
            });
            match written {
                Ok(()) => {
                    self.id = None;
                    return Ok(());
                }
                Err(e) if is_transient(&e) => {
                    failures += 1;
                    let wait = Backoff::default().delay(failures);
                    self.workspace.report().line(&format!(
                        "waiting for the store to record what was sent: {}; again in {:.1} s",
                        e.one_line(),
                        wait.as_secs_f64()
                    ));
                    if self.pause(wait).await {
                        return Err(e.context(
                            "interrupted while results were still unrecorded; those recipients may receive the bulletin twice",
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

enum Pass {
    Interrupted,
    Done { claimed: u64, pending: u64 },
}

/// Whether `e` passes with time (the store out of reach, a lease lost to it).
fn is_transient(e: &Error) -> bool {
    matches!(e, Error::StoreUnreachable { .. } | Error::LeaseLost)
}

/// The mailing of `job`, from its bulletin file as this worker's folder has it; the
/// content must be what the job started sending.
fn prepare(workspace: &Workspace, job: &Job, transport: Option<TransportKind>) -> Result<Prepared> {
    let path = Path::new(&job.spec.source);
    let edition = workspace.edition(path).map_err(|e| {
        e.context(format!(
            "job {} sends `{}`, which this worker cannot read",
            job.id, job.spec.source
        ))
    })?;
    if edition.content_hash != job.spec.content_hash || edition.number != job.spec.number {
        return Err(Error::Usage(format!(
            "job {} sends bulletin {} as it was when the job started; this worker's `{}` differs, so it will not send it",
            job.id, job.spec.number, job.spec.source
        )));
    }
    let selectors = members::parse_selectors(&job.spec.selectors, &workspace.config)?;
    let started = job
        .spec
        .created_at
        .parse::<jiff::Timestamp>()
        .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t.as_second().max(0).unsigned_abs()))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mailing = workspace
        .mailing(edition, selectors.list_name.as_deref())?
        .with_date(started);
    let kind = transport
        .or_else(|| TransportKind::parse(&job.spec.transport))
        .unwrap_or(TransportKind::File);
    Ok(Prepared {
        mailing: Arc::new(mailing),
        kind,
    })
}
