//! Send jobs on PostgreSQL: jobs and their journals, workers and their leases on the
//! server's clock, the shared send rate and domain pauses, seed copies. How rows are
//! claimed and marked is in `claims.rs`; how a job's rows are added, in `waves.rs`.

use std::collections::HashMap;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{GenericClient, Row};

use crate::error::Result;
use crate::store::schema::{ENTRY_COLUMNS, JOB_COLUMNS, attributes, count_state};
use crate::store::{Entry, EntryState, Job, Journal, Mark, NewJob, Progress, WorkerInfo};
use crate::store::{LeftOut, Member, MessageIds, Schedule, SeedCopy, Selection, Wave};

use super::bridge::{Db, Step, bad};
use super::claims::{self, CLAIM_LOCK, release_rows};
use super::waves::{MESSAGE_ID, WaveStatements};
use super::{PgStore, SENDABLE, SHOWN_STATE, count_of, narrow, seconds, selected, skipped, wide};

pub(super) fn entry_row(row: &Row) -> Step<Entry> {
    Ok(Entry {
        job: row.try_get(0)?,
        seq: row.try_get(1)?,
        member: Member {
            email: row.try_get(2)?,
            name: row.try_get(3)?,
            branch: row.try_get(4)?,
            employer: row.try_get(5)?,
            attributes: attributes(row.try_get(6)?),
        },
        state: EntryState::parse(row.try_get(7)?).unwrap_or(EntryState::Pending),
        attempts: narrow(row.try_get(8)?)?,
        message_id: row.try_get(9)?,
        reply: row.try_get(10)?,
    })
}

fn job_row(row: &Row) -> Step<Job> {
    Ok(Job {
        id: row.try_get(0)?,
        spec: NewJob {
            number: narrow(row.try_get(1)?)?,
            selectors: row.try_get(2)?,
            content_hash: row.try_get(3)?,
            subject: row.try_get(4)?,
            source: row.try_get(5)?,
            transport: row.try_get(6)?,
            created_at: row.try_get(7)?,
            message_ids: match (row.try_get(13)?, row.try_get(14)?) {
                (Some(series), Some(domain)) => Some(MessageIds { series, domain }),
                _ => None,
            },
        },
        finished_at: row.try_get(8)?,
        total: count_of(row.try_get(9)?),
        progress: Progress::default(),
        scheduled_for: row.try_get(10)?,
        schedule: row
            .try_get::<_, Option<&str>>(11)?
            .and_then(Schedule::parse),
        held_because: row.try_get(12)?,
    })
}

/// Has PostgreSQL count the journal again once a job's rows are in (committed). A claim
/// walks the job's rows in order from its cursor by the primary key; planned on counts from
/// before the rows came (a new table has none), it would read and sort every row after the
/// cursor instead, for each batch, and autovacuum counts the table again only a minute or so
/// later. Best effort, after the commit so that no lock waits on it: a vacuum or count
/// under way is left to finish (`SKIP_LOCKED`), only the table's owner may count it (others
/// get a warning), and a failure leaves the counting to autovacuum.
fn count_again(db: &mut Db<'_, postgres::Client>) {
    let _ = db.c.batch_execute("ANALYZE (SKIP_LOCKED) journal");
}

/// Which jobs [`load_jobs`] reads.
enum Jobs {
    One(i64),
    All,
    Running,
}

/// Jobs with their progress.
fn load_jobs<C: GenericClient>(db: &mut Db<'_, C>, which: Jobs) -> Step<Vec<Job>> {
    let rows = match which {
        Jobs::One(id) => db.query(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
            &[&id],
        )?,
        Jobs::All => db.query(
            &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC"),
            &[],
        )?,
        Jobs::Running => db.query(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE finished_at IS NULL AND (schedule IS NULL OR schedule = 'started')
                 ORDER BY id"
            ),
            &[],
        )?,
    };
    let mut jobs = rows.iter().map(job_row).collect::<Step<Vec<Job>>>()?;
    if jobs.is_empty() {
        return Ok(jobs);
    }
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let mut progress: HashMap<i64, Progress> = HashMap::new();
    for row in db.query(
        "SELECT job, state, count(*) FROM journal WHERE job = ANY($1) GROUP BY job, state",
        &[&ids],
    )? {
        let p = progress.entry(row.try_get(0)?).or_default();
        count_state(p, row.try_get(1)?, count_of(row.try_get(2)?));
    }
    for job in &mut jobs {
        job.progress = progress.get(&job.id).copied().unwrap_or_default();
    }
    Ok(jobs)
}

impl Journal for PgStore {
    fn find_job(&self, number: u32, selectors: &str) -> Result<Option<Job>> {
        let number = i64::from(number);
        let selectors = selectors.to_string();
        self.call("could not look up a job", move |db| {
            let Some(row) = db.query_opt(
                "SELECT id FROM jobs WHERE number = $1 AND selectors = $2",
                &[&number, &selectors],
            )?
            else {
                return Ok(None);
            };
            Ok(load_jobs(db, Jobs::One(row.try_get(0)?))?.pop())
        })
    }

    fn create_job(&self, job: &NewJob, selection: &Selection) -> Result<Job> {
        let job = job.clone();
        let (filter, mut args) = selected(selection, 2);
        let (skip, reason, skip_args) = skipped(selection, 2 + args.len());
        args.extend(skip_args);
        let snapshot = format!(
            "INSERT INTO journal (job, seq, email, name, branch, employer, attributes, message_id)
             SELECT $1, row_number() OVER (ORDER BY m.id), m.email, m.name, m.branch, m.employer, m.attributes,
                    {MESSAGE_ID}
             FROM members m
             WHERE ({filter}) AND NOT {skip} AND {SENDABLE}"
        );
        let left_out = format!(
            "INSERT INTO left_out (job, email, branch, employer, reason)
             SELECT $1, m.email, m.branch, m.employer, coalesce(s.reason, {reason})
             FROM members m LEFT JOIN suppressions s ON s.email = m.email
             WHERE ({filter}) AND (s.email IS NOT NULL OR {skip})
             ON CONFLICT DO NOTHING"
        );
        self.call("could not start the job", move |db| {
            let job = db.transaction(|tx| {
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO jobs (number, selectors, content_hash, subject, source, transport, total, created_at, id_series, id_domain)
                         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9) RETURNING id",
                        &[
                            &i64::from(job.number),
                            &job.selectors,
                            &job.content_hash,
                            &job.subject,
                            &job.source,
                            &job.transport,
                            &job.created_at,
                            &job.message_ids.as_ref().map(|m| &m.series),
                            &job.message_ids.as_ref().map(|m| &m.domain),
                        ],
                    )?
                    .try_get(0)?;
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id];
                params.extend(args.iter().map(|a| a as &(dyn ToSql + Sync)));
                let inserted = tx.execute(&snapshot, &params)?;
                tx.execute(&left_out, &params)?;
                tx.execute(
                    "UPDATE jobs SET total = $1 WHERE id = $2",
                    &[&wide(inserted), &id],
                )?;
                load_jobs(tx, Jobs::One(id))?
                    .pop()
                    .ok_or_else(|| bad("the new job vanished"))
            })?;
            count_again(db);
            Ok(job)
        })
    }

    fn job(&self, id: i64) -> Result<Option<Job>> {
        self.call("could not read a job", move |db| {
            Ok(load_jobs(db, Jobs::One(id))?.pop())
        })
    }

    fn jobs(&self) -> Result<Vec<Job>> {
        self.call("could not list jobs", |db| load_jobs(db, Jobs::All))
    }

    fn skip_suppressed(&self, job: i64, at: &str) -> Result<u64> {
        let at = at.to_string();
        self.call("could not skip suppressed addresses", move |db| {
            db.execute(
                "UPDATE journal j SET state = 'skipped', reply = 'suppressed: ' || s.reason, updated_at = $2
                 FROM suppressions s
                 WHERE j.job = $1 AND j.state = 'pending' AND s.email = j.email",
                &[&job, &at],
            )
        })
    }

    fn pending(&self, job: i64, after_seq: i64, limit: usize) -> Result<Vec<Entry>> {
        let limit = wide(limit as u64);
        self.call("could not read the journal", move |db| {
            db.query(
                &format!(
                    "SELECT j.job, j.seq, j.email, j.name, j.branch, j.employer, j.attributes,
                            {SHOWN_STATE}, j.attempts, j.message_id, j.reply
                     FROM journal j
                     WHERE j.job = $1 AND j.state = 'pending' AND j.seq > $2 ORDER BY j.seq LIMIT $3"
                ),
                &[&job, &after_seq, &limit],
            )?
            .iter()
            .map(entry_row)
            .collect()
        })
    }

    fn claim(&self, job: i64, worker: i64, after: i64, limit: usize) -> Result<Vec<Entry>> {
        let limit = wide(limit as u64);
        self.call("could not claim journal rows", move |db| {
            claims::claim(db, job, worker, after, limit)
        })
    }

    fn running_jobs(&self) -> Result<Vec<Job>> {
        self.call("could not list jobs", |db| load_jobs(db, Jobs::Running))
    }

    fn register_worker(&self, host: &str, pid: u32, lease_secs: u32) -> Result<i64> {
        let host = host.to_string();
        let now = crate::clock::stamp();
        self.call("could not register the worker", move |db| {
            Ok(db
                .query_one(
                    "INSERT INTO workers (host, pid, started_at, heartbeat_at, expires)
                     VALUES ($1, $2, $3, $3, now() + $4::float8 * interval '1 second') RETURNING id",
                    &[&host, &i64::from(pid), &now, &f64::from(lease_secs)],
                )?
                .try_get(0)?)
        })
    }

    fn heartbeat(&self, worker: i64, claimed: u64, sent: u64, lease_secs: u32) -> Result<bool> {
        let now = crate::clock::stamp();
        self.call("could not renew the worker's lease", move |db| {
            Ok(db.execute(
                "UPDATE workers SET expires = now() + $2::float8 * interval '1 second',
                        heartbeat_at = $3, claimed = $4, sent = $5
                 WHERE id = $1 AND expires > now()",
                &[
                    &worker,
                    &f64::from(lease_secs),
                    &now,
                    &wide(claimed),
                    &wide(sent),
                ],
            )? == 1)
        })
    }

    fn retire_worker(&self, worker: i64) -> Result<()> {
        self.call("could not retire the worker", move |db| {
            db.transaction(|tx| {
                // Each job's ranges change under that job's claim lock, taken in order.
                let jobs = tx
                    .query(
                        "SELECT DISTINCT job FROM claims WHERE worker = $1 ORDER BY job",
                        &[&worker],
                    )?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<std::result::Result<Vec<i64>, _>>()?;
                for job in &jobs {
                    tx.execute(CLAIM_LOCK, &[job])?;
                }
                tx.execute(
                    "WITH released AS (DELETE FROM claims WHERE worker = $1)
                     DELETE FROM workers WHERE id = $1",
                    &[&worker],
                )?;
                Ok(())
            })
        })
    }

    fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.call("could not list workers", |db| {
            db.query(
                "SELECT id, host, pid, started_at, heartbeat_at, claimed, sent
                 FROM workers WHERE expires > now() ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(WorkerInfo {
                    id: r.try_get(0)?,
                    host: r.try_get(1)?,
                    pid: narrow(r.try_get(2)?)?,
                    started_at: r.try_get(3)?,
                    heartbeat_at: r.try_get(4)?,
                    claimed: count_of(r.try_get(5)?),
                    sent: count_of(r.try_get(6)?),
                })
            })
            .collect()
        })
    }

    fn reserve_sends(&self, job: i64, rate: u32, count: u32) -> Result<Duration> {
        let span = f64::from(count) / f64::from(rate.max(1));
        self.call("could not reserve send slots", move |db| {
            let row = db
                .query_opt(
                    "UPDATE jobs SET rate_next = greatest(coalesce(rate_next, clock_timestamp()), clock_timestamp())
                                                 + $2::float8 * interval '1 second'
                     WHERE id = $1
                     RETURNING extract(epoch FROM (rate_next - $2::float8 * interval '1 second'
                                                   - clock_timestamp()))::float8",
                    &[&job, &span],
                )?
                .ok_or_else(|| bad(format!("there is no job {job}")))?;
            Ok(seconds(row.try_get(0)?))
        })
    }

    fn pause_domain(&self, job: i64, domain: &str, pause: Duration) -> Result<()> {
        let domain = domain.to_string();
        // Capped at about 30 years, which an interval holds.
        let secs = pause.as_secs_f64().min(1.0e9);
        self.call("could not pause a domain", move |db| {
            db.execute(
                "INSERT INTO domain_pauses (job, domain, until)
                 VALUES ($1, $2, clock_timestamp() + $3::float8 * interval '1 second')
                 ON CONFLICT (job, domain) DO UPDATE SET until = greatest(domain_pauses.until, excluded.until)",
                &[&job, &domain, &secs],
            )?;
            Ok(())
        })
    }

    fn paused_domains(&self, job: i64) -> Result<Vec<(String, Duration)>> {
        self.call("could not read paused domains", move |db| {
            db.query(
                "SELECT domain, extract(epoch FROM (until - clock_timestamp()))::float8
                 FROM domain_pauses WHERE job = $1 AND until > clock_timestamp()
                 ORDER BY domain COLLATE \"C\"",
                &[&job],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, seconds(r.try_get(1)?))))
            .collect()
        })
    }

    fn mark(&self, marks: &[Mark]) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let marks = claims::Marks::new(marks);
        let commits = self.marks_commit();
        self.call_with("could not write the journal", commits, move |db| {
            marks.write(db)
        })
    }

    fn mark_soon(&self, marks: &[Mark]) -> Option<crate::store::Pending> {
        let marks = claims::Marks::new(marks);
        let commits = self.marks_commit();
        Some(
            self.call_soon("could not write the journal", commits, move |db| {
                marks.write(db)
            }),
        )
    }

    fn left_out(&self, job: i64) -> Result<Vec<LeftOut>> {
        self.call("could not read who a job left out", move |db| {
            db.query(
                "SELECT email, branch, employer, reason, wave FROM left_out WHERE job = $1 ORDER BY email",
                &[&job],
            )?
            .iter()
            .map(|r| {
                Ok(LeftOut {
                    email: r.try_get(0)?,
                    branch: r.try_get(1)?,
                    employer: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    wave: narrow(r.try_get(4)?)?,
                })
            })
            .collect()
        })
    }

    fn top_up(&self, job: i64, selection: &Selection) -> Result<(u32, u64)> {
        let wave = WaveStatements::new(selection);
        let (number, added) = self.call("could not top up the job", move |db| {
            let (number, added) = db.transaction(|tx| {
                // One top-up at a time per job: the next wave and its numbers are its own.
                tx.execute("SELECT id FROM jobs WHERE id = $1 FOR UPDATE", &[&job])?;
                wave.add(tx, job)
            })?;
            if added > 0 {
                count_again(db);
            }
            Ok((number, added))
        })?;
        Ok((number, added))
    }

    fn schedule_job(&self, job: &NewJob, due: &str) -> Result<Job> {
        let job = job.clone();
        let due = due.to_string();
        self.call("could not schedule the job", move |db| {
            let id: i64 = db
                .query_one(
                    "INSERT INTO jobs (number, selectors, content_hash, subject, source, transport, total, created_at, scheduled_for, schedule, id_series, id_domain)
                     VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, 'waiting', $9, $10) RETURNING id",
                    &[
                        &i64::from(job.number),
                        &job.selectors,
                        &job.content_hash,
                        &job.subject,
                        &job.source,
                        &job.transport,
                        &job.created_at,
                        &due,
                        &job.message_ids.as_ref().map(|m| &m.series),
                        &job.message_ids.as_ref().map(|m| &m.domain),
                    ],
                )?
                .try_get(0)?;
            load_jobs(db, Jobs::One(id))?
                .pop()
                .ok_or_else(|| bad("the new job vanished"))
        })
    }

    fn set_schedule(
        &self,
        job: i64,
        from: &[Schedule],
        to: Schedule,
        because: Option<&str>,
    ) -> Result<bool> {
        let from: Vec<String> = from.iter().map(|s| s.as_str().to_string()).collect();
        let because = because.map(str::to_string);
        self.call("could not change the job's schedule", move |db| {
            Ok(db.execute(
                "UPDATE jobs SET schedule = $2, held_because = $3
                 WHERE id = $1 AND schedule = ANY($4)",
                &[&job, &to.as_str(), &because, &from],
            )? > 0)
        })
    }

    fn due_jobs(&self, at: &str) -> Result<Vec<Job>> {
        let at = at.to_string();
        self.call("could not list the scheduled jobs", move |db| {
            db.query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs
                     WHERE schedule IN ('waiting', 'released') AND scheduled_for <= $1
                     ORDER BY id"
                ),
                &[&at],
            )?
            .iter()
            .map(job_row)
            .collect()
        })
    }

    fn start_scheduled(&self, job: i64, selection: &Selection) -> Result<Option<u64>> {
        let wave = WaveStatements::new(selection);
        self.call("could not start the scheduled job", move |db| {
            let started = db.transaction(|tx| {
                let claimed = tx.execute(
                    "UPDATE jobs SET schedule = 'started', held_because = NULL
                     WHERE id = $1 AND schedule IN ('waiting', 'released')",
                    &[&job],
                )?;
                if claimed == 0 {
                    return Ok(None);
                }
                Ok(Some(wave.add(tx, job)?.1))
            })?;
            if started.is_some_and(|added| added > 0) {
                count_again(db);
            }
            Ok(started)
        })
    }

    fn claim_seed(&self, job: i64, address: &str, message_id: &str) -> Result<bool> {
        let (address, message_id) = (address.to_string(), message_id.to_string());
        self.call("could not record a seed copy", move |db| {
            Ok(db.execute(
                "INSERT INTO seed_copies (job, address, message_id, state)
                 VALUES ($1, $2, $3, 'sending') ON CONFLICT DO NOTHING",
                &[&job, &address, &message_id],
            )? > 0)
        })
    }

    fn record_seed(
        &self,
        job: i64,
        address: &str,
        state: &str,
        reply: &str,
        at: &str,
    ) -> Result<()> {
        let values = [address, state, reply, at].map(str::to_string);
        self.call("could not record a seed copy", move |db| {
            let [address, state, reply, at] = &values;
            db.execute(
                "UPDATE seed_copies SET state = $3, reply = $4, sent_at = $5
                 WHERE job = $1 AND address = $2",
                &[&job, address, state, reply, at],
            )?;
            Ok(())
        })
    }

    fn record_seed_check(
        &self,
        job: i64,
        address: &str,
        found: &str,
        folder: Option<&str>,
        arrived_at: Option<&str>,
        at: &str,
    ) -> Result<()> {
        let values = [address, found, at].map(str::to_string);
        let (folder, arrived_at) = (folder.map(str::to_string), arrived_at.map(str::to_string));
        self.call("could not record a seed check", move |db| {
            let [address, found, at] = &values;
            db.execute(
                "UPDATE seed_copies SET found = $3, folder = $4, arrived_at = $5, checked_at = $6
                 WHERE job = $1 AND address = $2",
                &[&job, address, found, &folder, &arrived_at, at],
            )?;
            Ok(())
        })
    }

    fn seed_copies(&self, job: i64) -> Result<Vec<SeedCopy>> {
        self.call("could not read the seed copies", move |db| {
            db.query(
                "SELECT job, address, message_id, state, reply, sent_at, found, folder, arrived_at, checked_at
                 FROM seed_copies WHERE job = $1 ORDER BY address COLLATE \"C\"",
                &[&job],
            )?
            .iter()
            .map(|r| {
                Ok(SeedCopy {
                    job: r.try_get(0)?,
                    address: r.try_get(1)?,
                    message_id: r.try_get(2)?,
                    state: r.try_get(3)?,
                    reply: r.try_get(4)?,
                    sent_at: r.try_get(5)?,
                    found: r.try_get(6)?,
                    folder: r.try_get(7)?,
                    arrived_at: r.try_get(8)?,
                    checked_at: r.try_get(9)?,
                })
            })
            .collect()
        })
    }

    fn waves(&self, job: i64) -> Result<Vec<Wave>> {
        self.call("could not read the job's waves", move |db| {
            let mut waves: Vec<Wave> = Vec::new();
            for row in db.query(
                "SELECT wave, state, count(*) FROM journal WHERE job = $1
                 GROUP BY wave, state ORDER BY wave",
                &[&job],
            )? {
                let number: u32 = narrow(row.try_get(0)?)?;
                if waves.last().is_none_or(|w| w.number != number) {
                    waves.push(Wave {
                        number,
                        progress: Progress::default(),
                    });
                }
                if let Some(w) = waves.last_mut() {
                    count_state(&mut w.progress, row.try_get(1)?, count_of(row.try_get(2)?));
                }
            }
            Ok(waves)
        })
    }

    fn cancel_job(&self, job: i64, at: &str) -> Result<u64> {
        let at = at.to_string();
        self.call("could not cancel the job", move |db| {
            db.transaction(|tx| {
                let cancelled = tx.execute(
                    "UPDATE journal SET state = 'cancelled', updated_at = $2
                     WHERE job = $1 AND state = 'pending'",
                    &[&job, &at],
                )?;
                tx.execute("DELETE FROM claims WHERE job = $1", &[&job])?;
                tx.execute(
                    "UPDATE jobs SET finished_at = $2 WHERE id = $1 AND finished_at IS NULL",
                    &[&job, &at],
                )?;
                tx.execute(
                    "UPDATE jobs SET schedule = 'cancelled'
                     WHERE id = $1 AND schedule IN ('waiting', 'late', 'released', 'held')",
                    &[&job],
                )?;
                Ok(cancelled)
            })
        })
    }

    fn is_finished(&self, job: i64) -> Result<bool> {
        self.call("could not read a job", move |db| {
            Ok(db
                .query_opt(
                    "SELECT finished_at IS NOT NULL FROM jobs WHERE id = $1",
                    &[&job],
                )?
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(true))
        })
    }

    fn finish_job(&self, job: i64, at: &str) -> Result<()> {
        let at = at.to_string();
        self.call("could not finish the job", move |db| {
            db.execute(
                "WITH done AS (DELETE FROM claims c WHERE c.job = $1
                               AND NOT EXISTS (SELECT 1 FROM journal j
                                               WHERE j.job = $1 AND j.state = 'pending'))
                 UPDATE jobs SET finished_at = $2 WHERE id = $1 AND finished_at IS NULL",
                &[&job, &at],
            )?;
            Ok(())
        })
    }

    fn retry_uncertain(&self, job: i64, at: &str) -> Result<u64> {
        let at = at.to_string();
        self.call("could not reopen the uncertain rows", move |db| {
            db.transaction(|tx| {
                // No claim runs meanwhile: it could cover a reopened row in a new range.
                tx.execute(CLAIM_LOCK, &[&job])?;
                let mut reopened = tx
                    .query(
                        "UPDATE journal SET state = 'pending', updated_at = $2,
                                reply = 'resent on purpose after: ' || COALESCE(reply, '')
                         WHERE job = $1 AND state = 'uncertain' RETURNING seq",
                        &[&job, &at],
                    )?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<std::result::Result<Vec<i64>, _>>()?;
                reopened.sort_unstable();
                release_rows(tx, job, &reopened)?;
                let n = reopened.len() as u64;
                if n > 0 {
                    tx.execute("UPDATE jobs SET finished_at = NULL WHERE id = $1", &[&job])?;
                    tx.execute("DELETE FROM claim_floors WHERE job = $1", &[&job])?;
                }
                Ok(n)
            })
        })
    }

    fn entries(&self, job: i64, state: EntryState) -> Result<Vec<Entry>> {
        self.call("could not read the journal", move |db| {
            db.query(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM journal WHERE job = $1 AND state = $2 ORDER BY seq"
                ),
                &[&job, &state.as_str()],
            )?
            .iter()
            .map(entry_row)
            .collect()
        })
    }

    fn entries_for(&self, email: &str) -> Result<Vec<Entry>> {
        let email = email.to_string();
        self.call("could not read the journal", move |db| {
            db.query(
                &format!("SELECT {ENTRY_COLUMNS} FROM journal WHERE email = $1 ORDER BY job DESC"),
                &[&email],
            )?
            .iter()
            .map(entry_row)
            .collect()
        })
    }

    fn entry_by_message_id(&self, message_id: &str) -> Result<Option<Entry>> {
        let message_id = message_id.to_string();
        self.call("could not read the journal", move |db| {
            db.query_opt(
                // Rows hold their Message-ID before they are sent: a copy that went first.
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM journal WHERE message_id = $1
                     ORDER BY state IN ('pending', 'skipped', 'cancelled'), job DESC LIMIT 1"
                ),
                &[&message_id],
            )?
            .as_ref()
            .map(entry_row)
            .transpose()
        })
    }
}
