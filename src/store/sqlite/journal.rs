//! Send jobs on SQLite: jobs and their journals, workers and their leases, the send rate
//! and domain pauses, seed copies. How rows are claimed and marked is in `claims.rs`; how
//! a job's rows are added, in `waves.rs`.

use rusqlite::{OptionalExtension, params};

use crate::error::{Error, Result};
use crate::store::schema::{ENTRY_COLUMNS, JOB_COLUMNS, attributes, count_state};
use crate::store::{Entry, EntryState, Job, Journal, Mark, NewJob, Progress, WorkerInfo};
use crate::store::{LeftOut, Member, MessageIds, Schedule, SeedCopy, Selection, Wave};

use super::waves::{MESSAGE_ID, add_wave};
use super::{SqliteStore, claims, unix_now, where_selected, where_skipped};

impl Journal for SqliteStore {
    fn find_job(&self, number: u32, selectors: &str) -> Result<Option<Job>> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM jobs WHERE number = ?1 AND selectors = ?2",
                params![number, selectors],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.fail("could not look up a job", e))?;
        match id {
            Some(id) => self.job(id),
            None => Ok(None),
        }
    }

    fn create_job(&self, job: &NewJob, selection: &Selection) -> Result<Job> {
        let fail = |e| self.fail("could not start the job", e);
        let (filter, mut args) = where_selected(selection, 2);
        let (skip, reason, skip_args) = where_skipped(selection, 2 + args.len());
        args.extend(skip_args);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        tx.execute(
            "INSERT INTO jobs (number, selectors, content_hash, subject, source, transport, total, created_at, id_series, id_domain)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9)",
            params![job.number, job.selectors, job.content_hash, job.subject, job.source, job.transport, job.created_at,
                    job.message_ids.as_ref().map(|m| &m.series), job.message_ids.as_ref().map(|m| &m.domain)],
        )
        .map_err(fail)?;
        let id = tx.last_insert_rowid();
        args.insert(0, id.to_string());
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO journal (job, seq, email, name, branch, employer, attributes, message_id)
                     SELECT CAST(?1 AS INTEGER), ROW_NUMBER() OVER (ORDER BY m.id), m.email, m.name, m.branch, m.employer, m.attributes,
                            {MESSAGE_ID}
                     FROM members m
                     WHERE ({filter}) AND NOT {skip}
                       AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)"
                ),
                rusqlite::params_from_iter(args.iter()),
            )
            .map_err(fail)?;
        tx.execute(
            "UPDATE jobs SET total = ?1 WHERE id = ?2",
            params![inserted as i64, id],
        )
        .map_err(fail)?;
        tx.execute(
            &format!(
                "INSERT OR IGNORE INTO left_out (job, email, branch, employer, reason)
                 SELECT CAST(?1 AS INTEGER), m.email, m.branch, m.employer,
                        COALESCE(s.reason, {reason})
                 FROM members m LEFT JOIN suppressions s ON s.email = m.email
                 WHERE ({filter}) AND (s.email IS NOT NULL OR {skip})"
            ),
            rusqlite::params_from_iter(args.iter()),
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        self.job(id)?.ok_or_else(|| Error::Store {
            location: self.location.clone(),
            context: "the new job vanished".into(),
            source: "no row".into(),
        })
    }

    fn job(&self, id: i64) -> Result<Option<Job>> {
        let fail = |e| self.fail("could not read a job", e);
        let job = self
            .conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_row,
            )
            .optional()
            .map_err(fail)?;
        match job {
            Some(mut job) => {
                job.progress = self.progress(id).map_err(fail)?;
                Ok(Some(job))
            }
            None => Ok(None),
        }
    }

    fn jobs(&self) -> Result<Vec<Job>> {
        let fail = |e| self.fail("could not list jobs", e);
        let mut statement = self
            .conn
            .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC"))
            .map_err(fail)?;
        let rows = statement.query_map([], job_row).map_err(fail)?;
        let mut jobs = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)?;
        for job in &mut jobs {
            job.progress = self.progress(job.id).map_err(fail)?;
        }
        Ok(jobs)
    }

    fn skip_suppressed(&self, job: i64, at: &str) -> Result<u64> {
        self.conn
            .execute(
                "UPDATE journal SET state = 'skipped', reply = 'suppressed: ' || (SELECT reason FROM suppressions s WHERE s.email = journal.email), updated_at = ?2
                 WHERE job = ?1 AND state = 'pending'
                   AND EXISTS (SELECT 1 FROM suppressions s WHERE s.email = journal.email)",
                params![job, at],
            )
            .map(|n| n as u64)
            .map_err(|e| self.fail("could not skip suppressed addresses", e))
    }

    fn pending(&self, job: i64, after_seq: i64, limit: usize) -> Result<Vec<Entry>> {
        let fail = |e| self.fail("could not read the journal", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT job, seq, email, name, branch, employer, attributes,
                        CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email = journal.email)
                             THEN 'skipped' ELSE state END,
                        attempts, message_id, reply
                 FROM journal
                 WHERE job = ?1 AND state = 'pending' AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map(params![job, after_seq, limit as i64], entry_row)
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn claim(&self, job: i64, worker: i64, after: i64, limit: usize) -> Result<Vec<Entry>> {
        claims::claim(&self.conn, job, worker, after, limit)
            .map_err(|e| self.fail("could not claim journal rows", e))
    }

    fn running_jobs(&self) -> Result<Vec<Job>> {
        let mut jobs = self.jobs()?;
        jobs.retain(|j| j.finished_at.is_none() && j.is_started());
        jobs.reverse();
        Ok(jobs)
    }

    fn register_worker(&self, host: &str, pid: u32, lease_secs: u32) -> Result<i64> {
        let now = crate::clock::stamp();
        self.conn
            .execute(
                "INSERT INTO workers (host, pid, started_at, heartbeat_at, expires)
                 VALUES (?1, ?2, ?3, ?3, ?4)",
                params![host, pid, now, unix_now() + f64::from(lease_secs)],
            )
            .map(|_| self.conn.last_insert_rowid())
            .map_err(|e| self.fail("could not register the worker", e))
    }

    fn heartbeat(&self, worker: i64, claimed: u64, sent: u64, lease_secs: u32) -> Result<bool> {
        let now = unix_now();
        self.conn
            .execute(
                "UPDATE workers SET expires = ?2, heartbeat_at = ?3, claimed = ?4, sent = ?5
                 WHERE id = ?1 AND expires > ?6",
                params![
                    worker,
                    now + f64::from(lease_secs),
                    crate::clock::stamp(),
                    claimed as i64,
                    sent as i64,
                    now
                ],
            )
            .map(|n| n == 1)
            .map_err(|e| self.fail("could not renew the worker's lease", e))
    }

    fn retire_worker(&self, worker: i64) -> Result<()> {
        let fail = |e| self.fail("could not retire the worker", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        tx.execute(
            "UPDATE journal SET claimed_by = NULL WHERE claimed_by = ?1 AND state = 'pending'",
            [worker],
        )
        .map_err(fail)?;
        tx.execute("DELETE FROM workers WHERE id = ?1", [worker])
            .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let fail = |e| self.fail("could not list workers", e);
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, host, pid, started_at, heartbeat_at, claimed, sent
                 FROM workers WHERE expires > ?1 ORDER BY id",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([unix_now()], |r| {
                Ok(WorkerInfo {
                    id: r.get(0)?,
                    host: r.get(1)?,
                    pid: r.get(2)?,
                    started_at: r.get(3)?,
                    heartbeat_at: r.get(4)?,
                    claimed: r.get::<_, i64>(5)? as u64,
                    sent: r.get::<_, i64>(6)? as u64,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn reserve_sends(&self, job: i64, rate: u32, count: u32) -> Result<std::time::Duration> {
        let now = unix_now();
        let span = f64::from(count) / f64::from(rate.max(1));
        let start: f64 = self
            .conn
            .query_row(
                "UPDATE jobs SET rate_next = MAX(COALESCE(rate_next, 0), ?2) + ?3 WHERE id = ?1
                 RETURNING rate_next - ?3",
                params![job, now, span],
                |r| r.get(0),
            )
            .map_err(|e| self.fail("could not reserve send slots", e))?;
        Ok(std::time::Duration::from_secs_f64((start - now).max(0.0)))
    }

    fn pause_domain(&self, job: i64, domain: &str, pause: std::time::Duration) -> Result<()> {
        // Capped at about 30 years, as on PostgreSQL: a longer pause would not read back as a
        // `Duration`.
        let secs = pause.as_secs_f64().min(1.0e9);
        self.conn
            .execute(
                "INSERT INTO domain_pauses (job, domain, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (job, domain) DO UPDATE SET until = MAX(until, excluded.until)",
                params![job, domain, unix_now() + secs],
            )
            .map(drop)
            .map_err(|e| self.fail("could not pause a domain", e))
    }

    fn paused_domains(&self, job: i64) -> Result<Vec<(String, std::time::Duration)>> {
        let fail = |e| self.fail("could not read paused domains", e);
        let now = unix_now();
        let mut statement = self
            .conn
            .prepare_cached("SELECT domain, until FROM domain_pauses WHERE job = ?1 AND until > ?2")
            .map_err(fail)?;
        let rows = statement
            .query_map(params![job, now], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    std::time::Duration::from_secs_f64((r.get::<_, f64>(1)? - now).max(0.0)),
                ))
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn mark(&self, marks: &[Mark]) -> Result<()> {
        claims::mark(&self.conn, marks).map_err(|e| self.fail("could not write the journal", e))
    }

    fn left_out(&self, job: i64) -> Result<Vec<LeftOut>> {
        let fail = |e| self.fail("could not read who a job left out", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, branch, employer, reason, wave FROM left_out WHERE job = ?1 ORDER BY email",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([job], |r| {
                Ok(LeftOut {
                    email: r.get(0)?,
                    branch: r.get(1)?,
                    employer: r.get(2)?,
                    reason: r.get(3)?,
                    wave: r.get(4)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn top_up(&self, job: i64, selection: &Selection) -> Result<(u32, u64)> {
        let fail = |e| self.fail("could not top up the job", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let added = add_wave(&tx, job, selection).map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(added)
    }

    fn schedule_job(&self, job: &NewJob, due: &str) -> Result<Job> {
        let fail = |e| self.fail("could not schedule the job", e);
        self.conn
            .execute(
                "INSERT INTO jobs (number, selectors, content_hash, subject, source, transport, total, created_at, scheduled_for, schedule, id_series, id_domain)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, 'waiting', ?9, ?10)",
                params![job.number, job.selectors, job.content_hash, job.subject, job.source, job.transport, job.created_at, due,
                        job.message_ids.as_ref().map(|m| &m.series), job.message_ids.as_ref().map(|m| &m.domain)],
            )
            .map_err(fail)?;
        let id = self.conn.last_insert_rowid();
        self.job(id)?.ok_or_else(|| Error::Store {
            location: self.location.clone(),
            context: "the new job vanished".into(),
            source: "no row".into(),
        })
    }

    fn set_schedule(
        &self,
        job: i64,
        from: &[Schedule],
        to: Schedule,
        because: Option<&str>,
    ) -> Result<bool> {
        let from: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        self.conn
            .execute(
                &format!(
                    "UPDATE jobs SET schedule = ?2, held_because = ?3
                     WHERE id = ?1 AND schedule IN ({})",
                    from.join(", ")
                ),
                params![job, to.as_str(), because],
            )
            .map(|n| n > 0)
            .map_err(|e| self.fail("could not change the job's schedule", e))
    }

    fn due_jobs(&self, at: &str) -> Result<Vec<Job>> {
        let fail = |e| self.fail("could not list the scheduled jobs", e);
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE schedule IN ('waiting', 'released') AND scheduled_for <= ?1 ORDER BY id"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([at], job_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn start_scheduled(&self, job: i64, selection: &Selection) -> Result<Option<u64>> {
        let fail = |e| self.fail("could not start the scheduled job", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let claimed = tx
            .execute(
                "UPDATE jobs SET schedule = 'started', held_because = NULL
                 WHERE id = ?1 AND schedule IN ('waiting', 'released')",
                [job],
            )
            .map_err(fail)?;
        if claimed == 0 {
            return Ok(None);
        }
        let (_, added) = add_wave(&tx, job, selection).map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(Some(added))
    }

    fn claim_seed(&self, job: i64, address: &str, message_id: &str) -> Result<bool> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO seed_copies (job, address, message_id, state)
                 VALUES (?1, ?2, ?3, 'sending')",
                params![job, address, message_id],
            )
            .map(|n| n > 0)
            .map_err(|e| self.fail("could not record a seed copy", e))
    }

    fn record_seed(
        &self,
        job: i64,
        address: &str,
        state: &str,
        reply: &str,
        at: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE seed_copies SET state = ?3, reply = ?4, sent_at = ?5
                 WHERE job = ?1 AND address = ?2",
                params![job, address, state, reply, at],
            )
            .map(drop)
            .map_err(|e| self.fail("could not record a seed copy", e))
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
        self.conn
            .execute(
                "UPDATE seed_copies SET found = ?3, folder = ?4, arrived_at = ?5, checked_at = ?6
                 WHERE job = ?1 AND address = ?2",
                params![job, address, found, folder, arrived_at, at],
            )
            .map(drop)
            .map_err(|e| self.fail("could not record a seed check", e))
    }

    fn seed_copies(&self, job: i64) -> Result<Vec<SeedCopy>> {
        let fail = |e| self.fail("could not read the seed copies", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT job, address, message_id, state, reply, sent_at, found, folder, arrived_at, checked_at
                 FROM seed_copies WHERE job = ?1 ORDER BY address",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([job], |r| {
                Ok(SeedCopy {
                    job: r.get(0)?,
                    address: r.get(1)?,
                    message_id: r.get(2)?,
                    state: r.get(3)?,
                    reply: r.get(4)?,
                    sent_at: r.get(5)?,
                    found: r.get(6)?,
                    folder: r.get(7)?,
                    arrived_at: r.get(8)?,
                    checked_at: r.get(9)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn waves(&self, job: i64) -> Result<Vec<Wave>> {
        let fail = |e| self.fail("could not read the job's waves", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT wave, state, COUNT(*) FROM journal WHERE job = ?1 GROUP BY wave, state ORDER BY wave",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([job], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(fail)?;
        let mut waves: Vec<Wave> = Vec::new();
        for (number, state, n) in rows {
            if waves.last().is_none_or(|w| w.number != number) {
                waves.push(Wave {
                    number,
                    progress: Progress::default(),
                });
            }
            if let Some(w) = waves.last_mut() {
                crate::store::schema::count_state(&mut w.progress, &state, n.max(0) as u64);
            }
        }
        Ok(waves)
    }

    fn cancel_job(&self, job: i64, at: &str) -> Result<u64> {
        let fail = |e| self.fail("could not cancel the job", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let cancelled = tx
            .execute(
                "UPDATE journal SET state = 'cancelled', claimed_by = NULL, updated_at = ?2
                 WHERE job = ?1 AND state = 'pending'",
                params![job, at],
            )
            .map_err(fail)?;
        tx.execute(
            "UPDATE jobs SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL",
            params![job, at],
        )
        .map_err(fail)?;
        tx.execute(
            "UPDATE jobs SET schedule = 'cancelled'
             WHERE id = ?1 AND schedule IN ('waiting', 'late', 'released', 'held')",
            [job],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(cancelled as u64)
    }

    fn is_finished(&self, job: i64) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT finished_at IS NOT NULL FROM jobs WHERE id = ?1",
                [job],
                |r| r.get(0),
            )
            .optional()
            .map(|finished| finished.unwrap_or(true))
            .map_err(|e| self.fail("could not read a job", e))
    }

    fn finish_job(&self, job: i64, at: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE jobs SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL",
                params![job, at],
            )
            .map(drop)
            .map_err(|e| self.fail("could not finish the job", e))
    }

    fn retry_uncertain(&self, job: i64, at: &str) -> Result<u64> {
        let fail = |e| self.fail("could not reopen the uncertain rows", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let n = tx
            .execute(
                "UPDATE journal SET state = 'pending', claimed_by = NULL, updated_at = ?2,
                        reply = 'resent on purpose after: ' || COALESCE(reply, '')
                 WHERE job = ?1 AND state = 'uncertain'",
                params![job, at],
            )
            .map_err(fail)?;
        if n > 0 {
            tx.execute(
                "UPDATE jobs SET finished_at = NULL, claim_floor = 0 WHERE id = ?1",
                [job],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(n as u64)
    }

    fn entries(&self, job: i64, state: EntryState) -> Result<Vec<Entry>> {
        let fail = |e| self.fail("could not read the journal", e);
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM journal WHERE job = ?1 AND state = ?2 ORDER BY seq"
            ))
            .map_err(fail)?;
        let rows = statement
            .query_map(params![job, state.as_str()], entry_row)
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn entries_for(&self, email: &str) -> Result<Vec<Entry>> {
        let fail = |e| self.fail("could not read the journal", e);
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM journal WHERE email = ?1 ORDER BY job DESC"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([email], entry_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn entry_by_message_id(&self, message_id: &str) -> Result<Option<Entry>> {
        self.conn
            .query_row(
                // Rows hold their Message-ID before they are sent: a copy that went first.
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM journal WHERE message_id = ?1
                     ORDER BY state IN ('pending', 'skipped', 'cancelled'), job DESC LIMIT 1"
                ),
                [message_id],
                entry_row,
            )
            .optional()
            .map_err(|e| self.fail("could not read the journal", e))
    }
}

impl SqliteStore {
    fn progress(&self, job: i64) -> rusqlite::Result<Progress> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM journal WHERE job = ?1 GROUP BY state")?;
        let mut progress = Progress::default();
        let rows =
            statement.query_map([job], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            count_state(&mut progress, &state, n as u64);
        }
        Ok(progress)
    }
}

fn job_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: row.get(0)?,
        spec: NewJob {
            number: row.get(1)?,
            selectors: row.get(2)?,
            content_hash: row.get(3)?,
            subject: row.get(4)?,
            source: row.get(5)?,
            transport: row.get(6)?,
            created_at: row.get(7)?,
            message_ids: match (row.get(13)?, row.get(14)?) {
                (Some(series), Some(domain)) => Some(MessageIds { series, domain }),
                _ => None,
            },
        },
        finished_at: row.get(8)?,
        total: row.get::<_, i64>(9)? as u64,
        progress: Progress::default(),
        scheduled_for: row.get(10)?,
        schedule: row
            .get::<_, Option<String>>(11)?
            .as_deref()
            .and_then(Schedule::parse),
        held_because: row.get(12)?,
    })
}

pub(super) fn entry_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        job: row.get(0)?,
        seq: row.get(1)?,
        member: Member {
            email: row.get(2)?,
            name: row.get(3)?,
            branch: row.get(4)?,
            employer: row.get(5)?,
            attributes: attributes(&row.get::<_, String>(6)?),
        },
        state: EntryState::parse(&row.get::<_, String>(7)?).unwrap_or(EntryState::Pending),
        attempts: row.get(8)?,
        message_id: row.get(9)?,
        reply: row.get(10)?,
    })
}
