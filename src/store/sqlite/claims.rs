//! Claims and results on SQLite: a claim takes a job's next pending rows for a worker in
//! one write transaction (skipping the finished front of the job below its claim floor),
//! and a group of results is one transaction of row updates.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{Entry, Mark};

use super::journal::entry_row;
use super::unix_now;

/// Raises job `?1`'s claim floor (every row at or below it is done; `?2` is where it is)
/// to just below its first pending row, or to its last row when none is pending: a claim
/// from the start (a worker's first, or its look back for rows left behind) then skips
/// the finished front of the job instead of reading it again. Only a claim moves the floor
/// up (in its write transaction); reopening rows puts it back to 0.
const RAISE_FLOOR: &str = "
WITH f AS (
    SELECT coalesce(
        (SELECT seq - 1 FROM journal WHERE job = ?1 AND state = 'pending' AND seq > ?2
         ORDER BY seq LIMIT 1),
        (SELECT max(seq) FROM journal WHERE job = ?1),
        ?2) AS floor)
UPDATE jobs SET claim_floor = f.floor FROM f
WHERE id = ?1 AND claim_floor <> f.floor
RETURNING claim_floor";

/// Claims up to `limit` of job `job`'s pending rows after row `after` for `worker`: rows no
/// one holds, or whose worker's lease has run out.
pub(super) fn claim(
    conn: &Connection,
    job: i64,
    worker: i64,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Entry>> {
    // BEGIN IMMEDIATE: claims by processes sharing the file are serialised.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let mut floor: i64 = tx
        .query_row("SELECT claim_floor FROM jobs WHERE id = ?1", [job], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    if after <= floor {
        floor = tx
            .prepare_cached(RAISE_FLOOR)?
            .query_row(params![job, floor], |r| r.get(0))
            .optional()?
            .unwrap_or(floor);
    }
    let after = after.max(floor);
    let mut rows = tx
        .prepare_cached(
            "UPDATE journal SET claimed_by = ?2
             WHERE job = ?1 AND seq IN (
                SELECT seq FROM journal
                WHERE job = ?1 AND state = 'pending' AND seq > ?5
                  AND (claimed_by IS NULL
                       OR claimed_by NOT IN (SELECT id FROM workers WHERE expires > ?4))
                ORDER BY seq LIMIT ?3)
             RETURNING job, seq, email, name, branch, employer, attributes,
                CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email = journal.email)
                     THEN 'skipped' ELSE state END,
                attempts, message_id, reply",
        )?
        .query_map(
            params![job, worker, limit as i64, unix_now(), after],
            entry_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.commit()?;
    rows.sort_by_key(|e| e.seq);
    Ok(rows)
}

/// Writes a group of results in one transaction. A row takes a result while it is
/// pending (or cancelled, for a final result of a copy already out).
pub(super) fn mark(conn: &Connection, marks: &[Mark]) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        // The Message-ID is written only where the row does not hold it already (a job
        // from before they were kept), so a result leaves the Message-ID index alone.
        let mut identify = tx.prepare_cached(
            "UPDATE journal SET message_id = ?4
             WHERE job = ?1 AND seq = ?2 AND message_id IS NOT ?4
               AND (state = 'pending' OR (state = 'cancelled' AND ?3 <> 'pending'))",
        )?;
        let mut update = tx.prepare_cached(
            "UPDATE journal SET state = ?3, attempts = ?4, reply = ?5, updated_at = ?6,
                    claimed_by = CASE WHEN ?3 = 'pending' THEN claimed_by END
             WHERE job = ?1 AND seq = ?2
               AND (state = 'pending' OR (state = 'cancelled' AND ?3 <> 'pending'))",
        )?;
        for m in marks {
            identify.execute(params![m.job, m.seq, m.state.as_str(), m.message_id])?;
            update.execute(params![
                m.job,
                m.seq,
                m.state.as_str(),
                m.attempts,
                m.reply,
                m.at
            ])?;
        }
    }
    tx.commit()
}
