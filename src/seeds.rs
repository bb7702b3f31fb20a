//! `mailout seeds check [JOB]` (PRODUCT.md §6c): reads each seed mailbox over IMAP (its
//! inbox and its junk folder, read-only), looks for the job's copy by its Message-ID, and
//! says per seed: in the inbox, in junk, or not arrived, with the time from send to arrival.
//! What it finds is kept with the job, so the account shows it.

use serde::Serialize;

use crate::archive::imap::{self, ImapUrl};
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::store::{Job, SeedCopy};
use crate::workspace::Workspace;

/// The environment variable holding the seed mailboxes' IMAP password.
pub const PASSWORD_ENV: &str = "MAILOUT_SEEDS_PASSWORD";

/// Where a seed's copy was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    /// In the mailbox the URL names (the inbox).
    Inbox,
    /// In the junk folder.
    Junk,
    /// In neither.
    NotArrived,
    /// No copy went to it for this job (or the server refused it).
    NotSent,
    /// Its mailbox could not be read.
    NotChecked,
}

impl Found {
    /// The words shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Found::Inbox => "inbox",
            Found::Junk => "junk",
            Found::NotArrived => "not arrived",
            Found::NotSent => "not sent",
            Found::NotChecked => "not checked",
        }
    }
}

/// One seed's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seed {
    /// The seed's address.
    pub address: String,
    /// Where its copy is.
    pub found: Found,
    /// The folder it was found in.
    pub folder: Option<String>,
    /// Seconds from the send to the mailbox's server storing it.
    pub delay_secs: Option<i64>,
    /// The copy's Message-ID.
    pub message_id: Option<String>,
    /// What the sending server said, or why the mailbox could not be read.
    pub note: Option<String>,
}

/// What `seeds check` found for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The job.
    pub job: i64,
    /// Its bulletin.
    pub number: u32,
    /// Per seed, in the config's order.
    pub seeds: Vec<Seed>,
}

impl Check {
    /// How many seeds are in `found`.
    pub fn count(&self, found: Found) -> usize {
        self.seeds.iter().filter(|s| s.found == found).count()
    }
}

/// The seeds of the config, each with the URL that reads it.
fn configured(workspace: &Workspace) -> Result<Vec<(String, ImapUrl)>> {
    let seeds = &workspace.config.seeds;
    if seeds.addresses.is_empty() {
        return Err(Error::Usage(
            "there are no seed mailboxes: name them in `[seeds] addresses`, with the IMAP URL that reads each in `[seeds] imap`".into(),
        ));
    }
    if seeds.imap.len() != seeds.addresses.len() {
        return Err(Error::Usage(format!(
            "`[seeds] imap` has {} for {}: give the URL that reads each address, in the same order",
            crate::text::count(seeds.imap.len() as u64, "URL", "URLs"),
            crate::text::count(seeds.addresses.len() as u64, "address", "addresses")
        )));
    }
    seeds
        .addresses
        .iter()
        .zip(&seeds.imap)
        .map(|(address, url)| {
            ImapUrl::parse(url)
                .map(|url| (address.clone(), url))
                .map_err(|e| e.context(format!("`[seeds] imap` for `{address}`")))
        })
        .collect()
}

/// The job `id`, or the newest job when `None`.
fn job_of(workspace: &Workspace, id: Option<i64>) -> Result<Job> {
    let store = workspace.store()?;
    match id {
        Some(id) => store.job(id)?.ok_or_else(|| {
            Error::Usage(format!("there is no job {id}; `mailout jobs` lists them"))
        }),
        None => store
            .jobs()?
            .into_iter()
            .max_by_key(|j| j.id)
            .ok_or_else(|| Error::Usage("there are no jobs yet: seeds are sent with a job".into())),
    }
}

/// Reads every seed mailbox for job `id` (the newest when `None`) and records what it found.
pub fn check(workspace: &Workspace, id: Option<i64>, runtime: &Runtime) -> Result<Check> {
    let seeds = configured(workspace)?;
    let job = job_of(workspace, id)?;
    let password = std::env::var(PASSWORD_ENV).map_err(|_| {
        Error::Usage(format!(
            "the seed mailboxes' IMAP password goes in the environment variable {PASSWORD_ENV}, which is not set"
        ))
    })?;
    let store = workspace.store()?;
    let copies = store.seed_copies(job.id)?;
    let checked_at = crate::clock::real_stamp();
    let mut out = Vec::new();
    for (address, url) in seeds {
        let copy: Option<&SeedCopy> = copies.iter().find(|c| c.address == address);
        let Some(copy) = copy else {
            out.push(Seed {
                address,
                found: Found::NotSent,
                folder: None,
                delay_secs: None,
                message_id: None,
                note: Some(format!(
                    "no copy went to it with job {}: it was named after the job ran, or the job has not run",
                    job.id
                )),
            });
            continue;
        };
        if copy.state != "sent" && copy.state != "uncertain" {
            // Refused (or never handed over): it cannot have arrived; the reply says why.
            store.record_seed_check(
                job.id,
                &address,
                Found::NotArrived.as_str(),
                None,
                None,
                &checked_at,
            )?;
            out.push(Seed {
                address,
                found: Found::NotArrived,
                folder: None,
                delay_secs: None,
                message_id: Some(copy.message_id.clone()),
                note: Some(copy.reply.clone().unwrap_or_else(|| copy.state.clone())),
            });
            continue;
        }
        let located = runtime.block_on(imap::locate(
            &url,
            &password,
            std::slice::from_ref(&copy.message_id),
        ))?;
        let seed = match located {
            Err(e) => Seed {
                address,
                found: Found::NotChecked,
                folder: None,
                delay_secs: None,
                message_id: Some(copy.message_id.clone()),
                note: Some(e.one_line()),
            },
            Ok(found) => {
                let hit = found.into_iter().next();
                let arrived_at = hit
                    .as_ref()
                    .and_then(|h| h.arrived)
                    .and_then(|t| jiff::Timestamp::from_second(t).ok());
                let sent_at = copy
                    .sent_at
                    .as_deref()
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok());
                let delay_secs = match (sent_at, arrived_at) {
                    (Some(sent), Some(arrived)) => {
                        Some((arrived.as_second() - sent.as_second()).max(0))
                    }
                    _ => None,
                };
                let found = match &hit {
                    Some(h) if h.junk => Found::Junk,
                    Some(_) => Found::Inbox,
                    None => Found::NotArrived,
                };
                store.record_seed_check(
                    job.id,
                    &address,
                    found.as_str(),
                    hit.as_ref().map(|h| h.folder.as_str()),
                    arrived_at
                        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .as_deref(),
                    &checked_at,
                )?;
                Seed {
                    address,
                    found,
                    folder: hit.map(|h| h.folder),
                    delay_secs,
                    message_id: Some(copy.message_id.clone()),
                    note: None,
                }
            }
        };
        out.push(seed);
    }
    Ok(Check {
        job: job.id,
        number: job.spec.number,
        seeds: out,
    })
}
