//! Scheduled sends (PRODUCT.md §6c): `--at` read in the `[schedule] timezone`, and the jobs
//! that have come due started, or held: a job that comes due later than `[schedule]
//! late_limit_mins` with nothing running waits as `late` until someone releases it, and a
//! job whose bulletin changed or whose sign-off no longer holds is not started at all.
//!
//! A scheduled job has no recipients until it starts: who receives it is decided then (as
//! for a job sent at once), and nothing of it is published in the archive before.

use std::path::Path;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::members;
use crate::store::{Job, Schedule};
use crate::workspace::Workspace;

/// The zone `--at` times are read and shown in: `[schedule] timezone`, else the system's.
pub fn zone(config: &Config) -> Result<TimeZone> {
    match config.schedule.timezone.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => TimeZone::get(name).map_err(|_| {
            Error::Usage(format!(
                "`[schedule] timezone = \"{name}\"` is not a time zone this machine knows; use an IANA name such as `Europe/London`"
            ))
        }),
        _ => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
    }
}

/// The instant `--at TEXT` names: `YYYY-MM-DDTHH:MM` (or `…:SS`) in `zone`, or an RFC 3339
/// time with its own offset. A local time the clocks skip or pass twice is refused.
pub fn parse_at(text: &str, zone: &TimeZone) -> Result<Timestamp> {
    let full = text.trim();
    if let Ok(t) = full.parse::<Timestamp>() {
        return Ok(t);
    }
    let text = &shorten(full);
    let civil: DateTime = full.parse().map_err(|_| {
        Error::Usage(format!(
            "`--at {text}` is not a time: write it as YYYY-MM-DDTHH:MM (for example 2026-12-01T08:00)"
        ))
    })?;
    let name = zone.iana_name().unwrap_or("the system's time zone");
    let ambiguous = zone.to_ambiguous_zoned(civil);
    if ambiguous.is_ambiguous() {
        let why = if matches!(ambiguous.offset(), jiff::tz::AmbiguousOffset::Gap { .. }) {
            "does not exist there: the clocks go forward over it"
        } else {
            "happens twice there: the clocks go back over it; add the offset you mean, such as +01:00"
        };
        return Err(Error::Usage(format!("`--at {text}` in {name} {why}")));
    }
    ambiguous
        .unambiguous()
        .map(|z| z.timestamp())
        .map_err(|e| Error::Usage(format!("`--at {text}` in {name}: {e}")))
}

/// At most 40 characters of what was given, for an error message.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 40 {
        return text.to_string();
    }
    let head: String = text.chars().take(40).collect();
    format!("{head}…")
}

/// `stamp` (UTC, as the store keeps it) as the officer reads it: `2026-12-01 08:00 GMT`.
pub fn show(stamp: &str, zone: &TimeZone) -> String {
    match stamp.parse::<Timestamp>() {
        Ok(t) => {
            let local: Zoned = t.to_zoned(zone.clone());
            local.strftime("%Y-%m-%d %H:%M %Z").to_string()
        }
        Err(_) => stamp.to_string(),
    }
}

/// The store's form of `t`: RFC 3339 UTC to the second.
pub fn stamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What became of a job that had come due.
#[derive(Debug, Clone)]
pub enum Due {
    /// Started: its recipients are in the journal and workers may send it.
    Started {
        /// The job, started.
        job: Job,
        /// How many members it selected.
        recipients: u64,
    },
    /// Due more than the late limit ago with nothing running: waits as `late`.
    Late {
        /// The job.
        job: Job,
        /// Minutes past its time.
        minutes: i64,
    },
    /// Not started: `because` says why.
    Held {
        /// The job.
        job: Job,
        /// Why.
        because: String,
    },
}

impl Due {
    /// What to tell the officer.
    pub fn describe(&self, zone: &TimeZone) -> String {
        let due = |job: &Job| show(job.scheduled_for.as_deref().unwrap_or(""), zone);
        match self {
            Due::Started { job, recipients } => format!(
                "job {}: scheduled for {}, started: {} to send",
                job.id,
                due(job),
                crate::text::count(*recipients, "member", "members")
            ),
            Due::Late { job, minutes } => format!(
                "job {} was due at {} and nothing sent it for {minutes} minutes, past the late limit: it waits as `late` until `mailout job {} --release` (or `--cancel`)",
                job.id,
                due(job),
                job.id
            ),
            Due::Held { job, because } => format!(
                "job {} was due at {} and was not started: {because}; when that is put right, `mailout job {} --release` starts it (or `--cancel` drops it)",
                job.id,
                due(job),
                job.id
            ),
        }
    }
}

/// Starts (or holds) the scheduled jobs that have come due, of `only` (or of all when it is
/// empty). Each is started by one process only, however many look at once.
pub fn start_due(workspace: &Workspace, only: &[i64]) -> Result<Vec<Due>> {
    let store = workspace.store()?;
    let now = clock::now();
    let now_stamp = stamp(now);
    let limit = i64::from(workspace.config.schedule.late_limit_mins);
    let mut outcomes = Vec::new();
    for job in store.due_jobs(&now_stamp)? {
        if !only.is_empty() && !only.contains(&job.id) {
            continue;
        }
        let Some(state @ (Schedule::Waiting | Schedule::Released)) = job.schedule else {
            continue;
        };
        let due = job.scheduled_for.as_deref().unwrap_or_default();
        let minutes = due
            .parse::<Timestamp>()
            .map(|t| (now.as_second() - t.as_second()) / 60)
            .unwrap_or(0);
        if state == Schedule::Waiting && minutes > limit {
            if store.set_schedule(job.id, &[Schedule::Waiting], Schedule::Late, None)? {
                outcomes.push(Due::Late {
                    job: store.job(job.id)?.unwrap_or(job),
                    minutes,
                });
            }
            continue;
        }
        if let Some(because) = why_not(workspace, &job)? {
            if store.set_schedule(job.id, &[state], Schedule::Held, Some(&because))? {
                outcomes.push(Due::Held {
                    job: store.job(job.id)?.unwrap_or(job),
                    because,
                });
            }
            continue;
        }
        let selectors = members::parse_selectors(&job.spec.selectors, &workspace.config)?;
        let Some(recipients) = store.start_scheduled(job.id, &selectors.selection)? else {
            continue;
        };
        super::job::commit_edition(workspace, Path::new(&job.spec.source), &now_stamp)?;
        outcomes.push(Due::Started {
            job: store.job(job.id)?.unwrap_or(job),
            recipients,
        });
    }
    Ok(outcomes)
}

/// Why `job` may not start now, if it may not: its bulletin is gone or changed, its
/// selectors no longer read, or its sign-off no longer holds.
fn why_not(workspace: &Workspace, job: &Job) -> Result<Option<String>> {
    let path = Path::new(&job.spec.source);
    let edition = match workspace.edition(path) {
        Ok(edition) => edition,
        Err(e) => {
            return Ok(Some(format!(
                "its bulletin `{}` could not be read: {}",
                path.display(),
                e.one_line()
            )));
        }
    };
    if edition.content_hash != job.spec.content_hash || edition.number != job.spec.number {
        return Ok(Some(format!(
            "`{}` changed after it was scheduled, and a scheduled bulletin goes out as it was signed off",
            path.display()
        )));
    }
    if let Err(e) = members::parse_selectors(&job.spec.selectors, &workspace.config) {
        return Ok(Some(format!(
            "its recipients `{}` no longer read: {}",
            job.spec.selectors,
            e.one_line()
        )));
    }
    if workspace.config.approval.required > 0 {
        let status = crate::approval::status(workspace, path)?;
        if !status.satisfied() {
            return Ok(Some(status.refusal(path)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_time_is_read_in_the_zone_and_shown_back() {
        let london = TimeZone::get("Europe/London").unwrap();
        let winter = parse_at("2026-12-01T08:00", &london).unwrap();
        assert_eq!(stamp(winter), "2026-12-01T08:00:00Z");
        let summer = parse_at("2026-07-01T08:00", &london).unwrap();
        assert_eq!(stamp(summer), "2026-07-01T07:00:00Z");
        assert_eq!(
            show("2026-07-01T07:00:00Z", &london),
            "2026-07-01 08:00 BST"
        );
        let offset = parse_at("2026-07-01T08:00:00+02:00", &london).unwrap();
        assert_eq!(stamp(offset), "2026-07-01T06:00:00Z");
    }

    #[test]
    fn times_the_clocks_skip_or_repeat_and_nonsense_are_refused_in_words() {
        let london = TimeZone::get("Europe/London").unwrap();
        let gap = parse_at("2026-03-29T01:30", &london)
            .unwrap_err()
            .to_string();
        assert!(gap.contains("does not exist there"), "{gap}");
        let fold = parse_at("2026-10-25T01:30", &london)
            .unwrap_err()
            .to_string();
        assert!(fold.contains("happens twice there"), "{fold}");
        let junk = parse_at("tomorrow 8am", &london).unwrap_err().to_string();
        assert!(junk.contains("write it as YYYY-MM-DDTHH:MM"), "{junk}");
        let long = "9".repeat(1_000_000);
        assert!(parse_at(&long, &london).is_err());
    }
}
