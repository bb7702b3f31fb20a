//! A send job from the command line's point of view: find or start the job for a bulletin
//! and selectors (writing its whole journal before any mail moves), choose the transport,
//! run the workers, and report.

use std::path::PathBuf;

use super::RunStats;
use super::worker::{Setup, WorkerOptions, work};
use crate::clock;
use crate::config;
use crate::error::{Error, Result};
use crate::members::{self, Member};
use crate::runtime::Runtime;
use crate::store::{EditionRecord, Job, NewJob};
use crate::workspace::{Workspace, source_key};

pub use super::worker::TransportKind;

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
    /// Whether to report the send's progress (to the workspace's reporter).
    pub progress: bool,
    /// `--enqueue`: write the job and its journal, and leave the sending to workers.
    pub enqueue: bool,
    /// `--strict`: refuse to start a job while the pre-send checks give warnings.
    pub strict: bool,
    /// `--retry-uncertain` (with `--resume`): send the uncertain rows again, on purpose.
    pub retry_uncertain: bool,
    /// `--top-up`: add to the existing job for `--to` the members selected now who are not
    /// in it yet (joined or re-subscribed since it started), as its next wave.
    pub top_up: bool,
    /// `--at`: start the job then (in `[schedule] timezone`) rather than now.
    pub at: Option<String>,
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
    /// `--at`: when it is scheduled for, as the officer reads it.
    pub due: Option<String>,
}

/// How a send ended.
#[derive(Debug, Clone)]
pub enum SendResult {
    /// `--dry-run`: nothing was sent.
    DryRun(Plan),
    /// The user said no.
    Declined(Plan),
    /// `--enqueue`: the job is written; workers will send it.
    Enqueued {
        /// The job.
        job: Job,
        /// Whether this command created it (rather than finding it).
        started: bool,
    },
    /// The job is scheduled (or was found scheduled) and `--enqueue` (or an interrupt) left
    /// it to `mailout worker`.
    Scheduled {
        /// The job.
        job: Job,
        /// When it is due, as the officer reads it.
        due: String,
        /// Whether this command scheduled it.
        started: bool,
    },
    /// The scheduled job came due too late, or could not start: it waits (`describe` says
    /// for what).
    Waiting {
        /// The job.
        job: Job,
        /// What became of it, in words.
        describe: String,
    },
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

/// Runs `request` in `workspace`, sending on `runtime`; `confirm` is asked before a new
/// job starts.
pub fn send(
    workspace: &Workspace,
    request: &SendRequest,
    confirm: &mut dyn FnMut(&Plan) -> bool,
    runtime: &Runtime,
) -> Result<SendResult> {
    let edition = workspace.edition(&request.file)?;
    let store = workspace.store()?;
    let config = &workspace.config;

    if request.retry_uncertain && request.resume.is_none() {
        return Err(Error::Usage(
            "`--retry-uncertain` resends a job's uncertain copies: say which job with `--resume JOB`".into(),
        ));
    }
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
    if request.top_up && (request.resume.is_some() || request.retry_uncertain) {
        return Err(Error::Usage(
            "`--top-up` adds members to the job for `--to`; it does not go with `--resume` or `--retry-uncertain`".into(),
        ));
    }
    if request.at.is_some() && (request.resume.is_some() || request.top_up) {
        return Err(Error::Usage(
            "`--at` schedules a new job; it does not go with `--resume` or `--top-up`".into(),
        ));
    }
    if let (Some(at), Some(job)) = (&request.at, &job) {
        return Err(Error::Usage(format!(
            "bulletin {} already has job {} for `{}` ({}); `--at {at}` schedules a new job only",
            edition.number,
            job.id,
            selectors.key,
            super::account::state_of(job)
        )));
    }
    if request.top_up && job.is_none() {
        return Err(Error::Usage(format!(
            "there is no job sending bulletin {} to `{}` to top up; start one without `--top-up`",
            edition.number, selectors.key
        )));
    }
    if let Some(existing) = &job
        && !existing.is_started()
    {
        if request.top_up {
            return Err(Error::Usage(format!(
                "job {} has not started yet: when it starts, it goes to everyone `{}` selects then",
                existing.id, selectors.key
            )));
        }
        if request.dry_run {
            return Err(Error::Usage(format!(
                "job {} is scheduled ({}); nobody is chosen before it starts",
                existing.id,
                super::account::state_of(existing)
            )));
        }
        return wait_for(workspace, request, existing.clone(), false, runtime);
    }
    let zone = super::schedule::zone(config)?;
    let due = match &request.at {
        Some(at) => Some(super::schedule::parse_at(at, &zone)?),
        None => None,
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
        due: due.map(|t| super::schedule::show(&super::schedule::stamp(t), &zone)),
    };
    if job.is_none() && plan.recipients == 0 {
        return Err(selects_nobody(store, &selectors)?);
    }
    if request.dry_run {
        if job.is_none() {
            // What the send would say: its warnings, and the problems that would stop it.
            pre_send_checks(
                workspace,
                request,
                transport_kind(request, config),
                &selectors.selection,
            )?;
        }
        return Ok(SendResult::DryRun(plan));
    }

    let kind = transport_kind(request, config);
    let setup = Setup::new(workspace, Some(kind), None)?;
    let work_left = job.as_ref().is_none_or(|j| j.progress.pending > 0)
        || (request.retry_uncertain && job.as_ref().is_some_and(|j| j.progress.uncertain > 0));
    if !request.enqueue && work_left && due.is_none() {
        // Before anything is written: the server must answer.
        setup.check(kind, runtime)?;
    }
    let now = clock::stamp();
    let (job, started) = match job {
        Some(job) => (job, false),
        None => {
            pre_send_checks(workspace, request, kind, &selectors.selection)?;
            if config.approval.required > 0 {
                let status = crate::approval::status(workspace, &request.file)?;
                if !status.satisfied() {
                    return Err(Error::Usage(status.refusal(&request.file)));
                }
            }
            if !confirm(&plan) {
                return Ok(SendResult::Declined(plan));
            }
            if let Some(due) = due {
                let job = store.schedule_job(
                    &NewJob {
                        number: edition.number,
                        selectors: selectors.key.clone(),
                        content_hash: edition.content_hash.clone(),
                        subject: edition.subject.clone(),
                        source: source_key(&request.file),
                        transport: kind.as_str().to_string(),
                        created_at: now.clone(),
                        message_ids: Some(edition.message_ids()),
                    },
                    &super::schedule::stamp(due),
                )?;
                return wait_for(workspace, request, job, true, runtime);
            }
            let job = store.create_job(
                &NewJob {
                    number: edition.number,
                    selectors: selectors.key.clone(),
                    content_hash: edition.content_hash.clone(),
                    subject: edition.subject.clone(),
                    source: source_key(&request.file),
                    transport: kind.as_str().to_string(),
                    created_at: now.clone(),
                    message_ids: Some(edition.message_ids()),
                },
                &selectors.selection,
            )?;
            commit_edition(workspace, &request.file, &now)?;
            (job, true)
        }
    };

    if request.top_up && !request.dry_run {
        let (wave, added) = store.top_up(job.id, &selectors.selection)?;
        workspace.report().line(&if added == 0 {
            format!(
                "top-up: everyone `{}` selects is already in job {}; nobody added",
                selectors.key, job.id
            )
        } else {
            format!(
                "top-up: wave {wave} of job {} adds {} not in it yet",
                job.id,
                crate::text::count(added, "member", "members")
            )
        });
    }
    let job = if request.top_up {
        store.job(job.id)?.unwrap_or(job)
    } else {
        job
    };
    store.skip_suppressed(job.id, &now)?;
    if request.retry_uncertain {
        store.retry_uncertain(job.id, &now)?;
    }
    if request.enqueue {
        let job = store.job(job.id)?.unwrap_or(job);
        return Ok(SendResult::Enqueued { job, started });
    }
    run(workspace, request, job, started, runtime)
}

/// Marks the edition in `path` sent (from now on its content cannot change) and puts the
/// copy for everyone in the archive, dated `now`: the public page shows it.
pub(crate) fn commit_edition(
    workspace: &Workspace,
    path: &std::path::Path,
    now: &str,
) -> Result<()> {
    let edition = workspace.edition(path)?;
    workspace.store()?.record_sent(
        &EditionRecord {
            number: edition.number,
            content_hash: edition.content_hash.clone(),
            subject: edition.subject.clone(),
            source: source_key(path),
            built_at: None,
            sent_at: None,
        },
        now,
    )?;
    let started = now
        .parse::<jiff::Timestamp>()
        .map(|t| {
            std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(t.as_second().max(0).unsigned_abs())
        })
        .unwrap_or_else(|_| clock::system_time());
    workspace.archive_everyone_copy(path, started)
}

/// A scheduled job that has not started: left to workers (`--enqueue`), or waited for here
/// and then sent, unless it is late or held.
fn wait_for(
    workspace: &Workspace,
    request: &SendRequest,
    job: Job,
    scheduled: bool,
    runtime: &Runtime,
) -> Result<SendResult> {
    use crate::store::Schedule;
    let zone = super::schedule::zone(&workspace.config)?;
    let store = workspace.store()?;
    let due = super::schedule::show(job.scheduled_for.as_deref().unwrap_or(""), &zone);
    match job.schedule {
        Some(Schedule::Cancelled) => {
            return Err(Error::Usage(format!(
                "job {} was cancelled before it started; schedule it again with `--at`",
                job.id
            )));
        }
        Some(Schedule::Late) => {
            return Ok(SendResult::Waiting {
                describe: format!(
                    "job {} was due at {due} and waits as `late`: `mailout job {} --release` sends it (or `--cancel` drops it)",
                    job.id, job.id
                ),
                job,
            });
        }
        Some(Schedule::Held) => {
            return Ok(SendResult::Waiting {
                describe: format!(
                    "job {} was not started: {}; when that is put right, `mailout job {} --release` starts it",
                    job.id,
                    job.held_because.as_deref().unwrap_or("it is held"),
                    job.id
                ),
                job,
            });
        }
        _ => {}
    }
    if !scheduled {
        workspace
            .report()
            .line(&format!("job {} is scheduled for {due}", job.id));
    }
    if request.enqueue {
        return Ok(SendResult::Scheduled {
            job,
            due,
            started: scheduled,
        });
    }
    let mut told = false;
    loop {
        for outcome in super::schedule::start_due(workspace, &[job.id])? {
            match outcome {
                super::schedule::Due::Started { .. } => {
                    workspace.report().line(&outcome.describe(&zone));
                }
                other => {
                    return Ok(SendResult::Waiting {
                        describe: other.describe(&zone),
                        job: store.job(job.id)?.unwrap_or(job),
                    });
                }
            }
        }
        let now = store.job(job.id)?.unwrap_or_else(|| job.clone());
        match now.schedule {
            Some(Schedule::Waiting | Schedule::Released) => {}
            Some(Schedule::Started) => return run(workspace, request, now, scheduled, runtime),
            // Moved by another process meanwhile (cancelled, held, late): say so.
            _ => return wait_for(workspace, request, now, false, runtime),
        }
        if !told {
            workspace.report().line(&format!(
                "job {}: waiting until {due} to start (interrupt to leave it to `mailout worker`)",
                job.id
            ));
            told = true;
        }
        let left = now
            .scheduled_for
            .as_deref()
            .and_then(|d| d.parse::<jiff::Timestamp>().ok())
            .map_or(0, |d| d.as_second() - clock::now().as_second());
        // Looked at again at least every 30 s: a cancel or a clock change is noticed.
        let wait = std::time::Duration::from_secs(left.clamp(1, 30).unsigned_abs());
        let interrupted = runtime.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = tokio::signal::ctrl_c() => true,
            }
        })?;
        if interrupted {
            return Ok(SendResult::Scheduled {
                job: now,
                due,
                started: scheduled,
            });
        }
    }
}

/// Works `job` in this process until nothing is left, and says how it ended.
fn run(
    workspace: &Workspace,
    request: &SendRequest,
    job: Job,
    started: bool,
    runtime: &Runtime,
) -> Result<SendResult> {
    let store = workspace.store()?;
    let stats = work(
        workspace,
        &WorkerOptions {
            jobs: vec![job.id],
            transport: request.transport,
            smtp_url: None,
            concurrency: request.concurrency,
            rate: request.rate,
            exit_when_idle: true,
            outbox: request.outbox.clone(),
            progress: request.progress,
        },
        runtime,
    )?;
    let job = store.job(job.id)?.unwrap_or(job);
    if job.progress.pending == 0 && job.finished_at.is_none() {
        store.finish_job(job.id, &clock::stamp())?;
    }
    let job = store.job(job.id)?.unwrap_or(job);
    Ok(SendResult::Ran {
        job,
        stats: stats.into(),
        started,
    })
}

/// Why `selectors` select nobody: a branch or employer no member has (with the name it
/// most likely meant), or everyone it names is suppressed.
fn selects_nobody(
    store: &dyn crate::store::Store,
    selectors: &members::Selectors,
) -> Result<Error> {
    let counts = store.counts()?;
    let mut why = Vec::new();
    for (kind, wanted, known) in [
        ("branch", &selectors.selection.branches, &counts.branches),
        (
            "employer",
            &selectors.selection.employers,
            &counts.employers,
        ),
    ] {
        for name in wanted {
            if !known.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
                why.push(format!(
                    "no member's {kind} is `{name}`{}",
                    crate::suggest::did_you_mean(name, known.iter().map(|(k, _)| k.as_str()))
                ));
            }
        }
    }
    if why.is_empty() {
        why.push(if counts.all + counts.suppressed == 0 {
            "there are no members yet (`mailout members import FILE`)".to_string()
        } else {
            "every member it names is suppressed (`mailout suppressed`)".to_string()
        });
    }
    Ok(Error::Usage(format!(
        "`--to {}` selects nobody: {}",
        selectors.key,
        why.join("; ")
    )))
}

/// The pre-send checks (PRODUCT.md §6a) before a job starts: the warnings `check` gives,
/// and a missing unsubscribe secret for a send over SMTP, told to the workspace's reporter. With
/// `--strict` they are errors and the send is refused.
fn pre_send_checks(
    workspace: &Workspace,
    request: &SendRequest,
    kind: TransportKind,
    selection: &crate::store::Selection,
) -> Result<()> {
    let (errors, mut placed): (Vec<_>, Vec<_>) = workspace
        .check(&request.file)?
        .diagnostics
        .into_iter()
        .partition(|d| d.is_error());
    if !errors.is_empty() {
        // Unfinished text (the file's own mistakes stopped the send before this).
        for d in &errors {
            workspace.report().line(&d.to_string());
        }
        return Err(Error::Usage(format!(
            "not sending: {} must be fixed first (`mailout check {}` lists {})",
            if errors.len() == 1 {
                "this problem".to_string()
            } else {
                format!("these {} problems", errors.len())
            },
            request.file.display(),
            if errors.len() == 1 { "it" } else { "them" },
        )));
    }
    let mut general = workspace.send_warnings(kind == TransportKind::Smtp)?;
    match employer_domains(workspace, selection)? {
        Some((true, note)) => workspace.report().line(&note),
        Some((false, warning)) => general.push(warning),
        None => {}
    }
    let severity = if request.strict {
        crate::lint::make_errors(&mut placed);
        "error"
    } else {
        "warning"
    };
    for warning in &general {
        workspace.report().line(&format!("{severity}: {warning}"));
    }
    for d in &placed {
        workspace.report().line(&d.to_string());
    }
    let count = placed.len() + general.len();
    if request.strict && count > 0 {
        return Err(Error::Usage(format!(
            "not sending: the pre-send checks gave {count} warning{} and `--strict` makes them errors",
            if count == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// The members `selection` chooses (and may be sent to) at `[privacy] employer_domains`, in
/// words: a note when the send leaves them out (true), else a warning (false).
fn employer_domains(
    workspace: &Workspace,
    selection: &crate::store::Selection,
) -> Result<Option<(bool, String)>> {
    let privacy = &workspace.config.privacy;
    if privacy.employer_domains.is_empty() {
        return Ok(None);
    }
    // Counted by the store, not read into memory (a million members): each domain's count
    // is what leaving it out, after the domains before it in the config, takes away.
    let store = workspace.store()?;
    let mut left_out = crate::store::Selection {
        skip_domains: Vec::new(),
        ..selection.clone()
    };
    let mut before = store.count_selected(&left_out)?;
    let mut by_domain: Vec<(String, u64)> = Vec::new();
    for domain in privacy.domains() {
        if left_out.skip_domains.contains(&domain) {
            continue;
        }
        left_out.skip_domains.push(domain.clone());
        let after = store.count_selected(&left_out)?;
        if after < before {
            by_domain.push((domain, before - after));
        }
        before = after;
    }
    by_domain.sort();
    let total: u64 = by_domain.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return Ok(None);
    }
    let counts = by_domain
        .iter()
        .map(|(d, n)| format!("{d} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let who = crate::text::count(total, "member", "members");
    Ok(Some(if privacy.skip_employer_domains {
        (
            true,
            format!(
                "{who} at employer domains ({counts}) are left out of this send ([privacy] skip_employer_domains); the account counts them"
            ),
        )
    } else {
        (
            false,
            format!(
                "{who} would receive this at their employer's mail domain ({counts}): the employer's servers and staff can see who is a member; `mailout members list --at-employer-domain` lists them, and `[privacy] skip_employer_domains = true` leaves them out"
            ),
        )
    }))
}

fn transport_kind(request: &SendRequest, config: &config::Config) -> TransportKind {
    request
        .transport
        .unwrap_or_else(|| TransportKind::default_for(config))
}
