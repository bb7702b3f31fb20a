//! A send's account (PRODUCT.md §6c): everyone the job selected and what became of each,
//! adding up to the selected count whatever happened; the bounces and unsubscribes that
//! came back from it; the same figures by branch and by employer.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bounces::reason_of_reply;
use crate::error::{Error, Result};
use crate::store::{Entry, EntryState, Job, Store};

/// What became of a job's selected members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Members the job's selectors chose when it started.
    pub selected: u64,
    /// Accepted by the server.
    pub sent: u64,
    /// Refused for good, or given up on.
    pub failed: u64,
    /// Sent in full without a final reply: may have been delivered.
    pub uncertain: u64,
    /// Left out when the job started: their address was suppressed.
    pub suppressed_before: u64,
    /// Left out during the job: suppressed after it started, before their turn.
    pub left_out_during: u64,
    /// Not sent: the job was cancelled.
    pub cancelled: u64,
    /// Not sent yet.
    pub pending: u64,
    /// Later: members whose copy bounced (reported by their server after it was accepted).
    pub bounced: u64,
    /// Later: members who were sent it and unsubscribed after the job started.
    pub unsubscribed: u64,
}

impl Figures {
    /// The outcomes added up: always [`Figures::selected`].
    pub fn total(&self) -> u64 {
        self.sent
            + self.failed
            + self.uncertain
            + self.suppressed_before
            + self.left_out_during
            + self.cancelled
            + self.pending
    }
}

/// One branch's or employer's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The branch or employer as members' records write it (`(none)` when unknown).
    pub name: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One wave of a job: the members it started with (1), or a top-up added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaveFigures {
    /// 1 when the job started, then one more per top-up.
    pub wave: u32,
    /// Its figures (what came back later is counted for the whole job only).
    #[serde(flatten)]
    pub figures: Figures,
}

/// A member whose copy failed or may not have arrived, with the server's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Their address.
    pub email: String,
    /// Their name, if the roster has one.
    pub name: Option<String>,
    /// Their branch (`(none)` when unknown).
    pub branch: String,
    /// `failed` or `uncertain`.
    pub state: &'static str,
    /// Why, in one word (`user-unknown`, `mailbox-full`…; `uncertain` for no reply).
    pub reason: String,
    /// The server's reply, or what happened.
    pub reply: String,
}

/// A job's whole account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The job.
    pub job: i64,
    /// The bulletin's number.
    pub number: u32,
    /// Its subject.
    pub subject: String,
    /// Who it went to (`--to`).
    pub selectors: String,
    /// `running`, `finished`, `cancelled`…
    pub state: &'static str,
    /// When it started (RFC 3339).
    pub started: String,
    /// When it finished, if it has.
    pub finished: Option<String>,
    /// Everyone's figures.
    pub figures: Figures,
    /// Failures by reason.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Members left out at the start, by the suppression's reason.
    pub suppressed_by_reason: BTreeMap<String, u64>,
    /// Members left out during the job, by reason.
    pub left_out_by_reason: BTreeMap<String, u64>,
    /// Later bounces by consequence (`hard`, `soft`, `sender-side`, `complaint`), one per
    /// member and consequence.
    pub bounces_by_consequence: BTreeMap<String, u64>,
    /// Per wave: the start, then each top-up.
    pub waves: Vec<WaveFigures>,
    /// Per branch.
    pub by_branch: Vec<Group>,
    /// Per employer.
    pub by_employer: Vec<Group>,
    /// Every failed and uncertain copy.
    pub failures: Vec<Failure>,
    /// The copy for everyone sent to each seed mailbox (not members: in no figure), with
    /// what the last `mailout seeds check` found.
    pub seeds: Vec<crate::store::SeedCopy>,
}

/// The name a group is shown under when members' records leave it out.
pub const NO_GROUP: &str = "(none)";

/// What a job's state is called.
pub fn state_of(job: &Job) -> &'static str {
    use crate::store::Schedule;
    match job.schedule {
        Some(Schedule::Waiting) => return "scheduled",
        Some(Schedule::Late) => return "late",
        Some(Schedule::Released) => return "released",
        Some(Schedule::Held) => return "held",
        Some(Schedule::Cancelled) => return "cancelled",
        Some(Schedule::Started) | None => {}
    }
    let p = &job.progress;
    match &job.finished_at {
        None => "running",
        Some(_) if p.cancelled > 0 => "cancelled",
        Some(_) if p.failed > 0 => "finished with failures",
        Some(_) if p.uncertain > 0 => "finished with uncertain copies",
        Some(_) => "finished",
    }
}

/// The account of job `id`.
pub fn account(store: &dyn Store, id: i64) -> Result<Account> {
    let job = store
        .job(id)?
        .ok_or_else(|| Error::Usage(format!("there is no job {id}; `mailout jobs` lists them")))?;
    let mut figures = Figures::default();
    let mut branches: BTreeMap<String, Figures> = BTreeMap::new();
    let mut employers: BTreeMap<String, Figures> = BTreeMap::new();
    let mut failed_by_reason = BTreeMap::new();
    let mut suppressed_by_reason = BTreeMap::new();
    let mut left_out_by_reason = BTreeMap::new();
    let mut failures = Vec::new();
    let group = |name: &Option<String>| -> String {
        match name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => NO_GROUP.to_string(),
        }
    };
    // Every figure is counted in three places alike: everyone, the branch, the employer.
    let mut count =
        |branch: &Option<String>, employer: &Option<String>, add: &dyn Fn(&mut Figures)| {
            for f in [
                &mut figures,
                branches.entry(group(branch)).or_default(),
                employers.entry(group(employer)).or_default(),
            ] {
                f.selected += 1;
                add(f);
            }
        };
    let suppressions: BTreeMap<String, crate::store::Suppression> = store
        .suppressions()?
        .into_iter()
        .map(|s| (s.email.clone(), s))
        .collect();
    let mut sent_to: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for state in [
        EntryState::Sent,
        EntryState::Failed,
        EntryState::Uncertain,
        EntryState::Skipped,
        EntryState::Cancelled,
        EntryState::Pending,
    ] {
        for Entry { member, reply, .. } in store.entries(id, state)? {
            let reply = reply.unwrap_or_default();
            let add: &dyn Fn(&mut Figures) = match state {
                EntryState::Sent => &|f| f.sent += 1,
                EntryState::Failed => &|f| f.failed += 1,
                EntryState::Uncertain => &|f| f.uncertain += 1,
                EntryState::Skipped => &|f| f.left_out_during += 1,
                EntryState::Cancelled => &|f| f.cancelled += 1,
                EntryState::Pending => &|f| f.pending += 1,
            };
            count(&member.branch, &member.employer, add);
            match state {
                EntryState::Sent | EntryState::Uncertain => {
                    sent_to.insert(
                        member.email.clone(),
                        (member.branch.clone(), member.employer.clone()),
                    );
                }
                _ => {}
            }
            match state {
                EntryState::Failed | EntryState::Uncertain => {
                    let reason = if state == EntryState::Failed {
                        reason_of_reply(&reply).as_str().to_string()
                    } else {
                        "no-final-reply".to_string()
                    };
                    if state == EntryState::Failed {
                        *failed_by_reason.entry(reason.clone()).or_insert(0) += 1;
                    }
                    failures.push(Failure {
                        branch: group(&member.branch),
                        name: member.name,
                        email: member.email,
                        state: state.as_str(),
                        reason,
                        reply,
                    });
                }
                EntryState::Skipped => {
                    // Why the address is suppressed now (else what the row says).
                    let reason = match suppressions.get(&member.email) {
                        Some(s) => s.reason.clone(),
                        None => reply
                            .strip_prefix("suppressed: ")
                            .unwrap_or("suppressed")
                            .to_string(),
                    };
                    *left_out_by_reason.entry(reason).or_insert(0) += 1;
                }
                _ => {}
            }
        }
    }
    let mut waves: BTreeMap<u32, Figures> = BTreeMap::new();
    for w in store.waves(id)? {
        let p = w.progress;
        let f = waves.entry(w.number).or_default();
        f.sent += p.sent;
        f.failed += p.failed;
        f.uncertain += p.uncertain;
        f.left_out_during += p.skipped;
        f.cancelled += p.cancelled;
        f.pending += p.pending;
        f.selected += p.sent + p.failed + p.uncertain + p.skipped + p.cancelled + p.pending;
    }
    for left in store.left_out(id)? {
        count(&left.branch, &left.employer, &|f| f.suppressed_before += 1);
        let f = waves.entry(left.wave).or_default();
        f.suppressed_before += 1;
        f.selected += 1;
        *suppressed_by_reason.entry(left.reason).or_insert(0) += 1;
    }
    // What came back: bounces reported for this job, and unsubscribes since it started
    // from members it was sent to.
    let mut bounces_by_consequence = BTreeMap::new();
    let mut bounced = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for b in store.bounces_of_job(id)? {
        if seen.insert((b.email.clone(), b.consequence.clone())) {
            *bounces_by_consequence.entry(b.consequence).or_insert(0) += 1;
        }
        bounced.insert(b.email);
    }
    let unsubscribed: Vec<String> = suppressions
        .values()
        .filter(|s| s.reason == "unsubscribed" && s.at >= job.spec.created_at)
        .map(|s| s.email.clone())
        .filter(|e| sent_to.contains_key(e))
        .collect();
    let mut later = |emails: &mut dyn Iterator<Item = &String>, add: &dyn Fn(&mut Figures)| {
        for email in emails {
            if let Some((branch, employer)) = sent_to.get(email) {
                add(&mut figures);
                add(branches.entry(group(branch)).or_default());
                add(employers.entry(group(employer)).or_default());
            }
        }
    };
    later(&mut bounced.iter(), &|f| f.bounced += 1);
    later(&mut unsubscribed.iter(), &|f| f.unsubscribed += 1);
    let groups = |map: BTreeMap<String, Figures>| -> Vec<Group> {
        map.into_iter()
            .map(|(name, figures)| Group { name, figures })
            .collect()
    };
    Ok(Account {
        job: job.id,
        number: job.spec.number,
        subject: job.spec.subject.clone(),
        selectors: job.spec.selectors.clone(),
        state: state_of(&job),
        started: job.spec.created_at.clone(),
        finished: job.finished_at.clone(),
        figures,
        failed_by_reason,
        suppressed_by_reason,
        left_out_by_reason,
        bounces_by_consequence,
        waves: waves
            .into_iter()
            .map(|(wave, figures)| WaveFigures { wave, figures })
            .collect(),
        by_branch: groups(branches),
        by_employer: groups(employers),
        failures,
        seeds: store.seed_copies(id)?,
    })
}

/// A seed copy in words: `sent, junk (Junk) after 4 s`, `failed: 550 …, not arrived`,
/// `sent, not checked yet`.
pub fn seed_in_words(seed: &crate::store::SeedCopy) -> String {
    let mut text = seed.state.clone();
    if seed.state != "sent"
        && let Some(reply) = &seed.reply
    {
        text.push_str(&format!(" ({reply})"));
    }
    match seed.found.as_deref() {
        None => text.push_str(", not checked yet"),
        Some(found) => {
            text.push_str(&format!(", {found}"));
            if let Some(folder) = seed.folder.as_deref().filter(|_| found == "junk") {
                text.push_str(&format!(" ({folder})"));
            }
            let delay = seed
                .sent_at
                .as_deref()
                .zip(seed.arrived_at.as_deref())
                .and_then(|(s, a)| {
                    Some((
                        s.parse::<jiff::Timestamp>().ok()?,
                        a.parse::<jiff::Timestamp>().ok()?,
                    ))
                })
                .map(|(s, a)| (a.as_second() - s.as_second()).max(0));
            if let Some(delay) = delay {
                text.push_str(&format!(" after {delay} s"));
            }
        }
    }
    text
}
