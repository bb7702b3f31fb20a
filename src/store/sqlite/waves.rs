//! A job's waves on SQLite: the members a selection adds to a job (its first wave, or a
//! top-up), each row with its Message-ID, and the selected members left out, with why.

use rusqlite::params;

use crate::store::Selection;

use super::{where_selected, where_skipped};

/// A new journal row's Message-ID (job `?1`, member `m`): made as its copy's will be, from
/// the job's series and domain, so that a result need not write it (NULL for a job from
/// before mailout kept them).
pub(super) const MESSAGE_ID: &str =
    "(SELECT mailout_message_id(jb.id_series, jb.number, jb.id_domain, m.email)
                            FROM jobs jb WHERE jb.id = CAST(?1 AS INTEGER))";

/// Adds to `job`, as its next wave (its first, for a scheduled job starting), the sendable
/// members `selection` selects who are not in it yet, and records the selected suppressed
/// ones not in it as left out. Returns the wave's number and how many rows it added.
pub(super) fn add_wave(
    tx: &rusqlite::Connection,
    job: i64,
    selection: &Selection,
) -> rusqlite::Result<(u32, u64)> {
    let (filter, mut args) = where_selected(selection, 4);
    let (skip, _, skip_args) = where_skipped(selection, 4 + args.len());
    args.extend(skip_args);
    let (wave, last): (i64, i64) = tx.query_row(
        "SELECT COALESCE(MAX(wave), 0) + 1, COALESCE(MAX(seq), 0) FROM journal WHERE job = ?1",
        [job],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut head = vec![job.to_string(), last.to_string(), wave.to_string()];
    head.extend(args.iter().cloned());
    let (left_filter, mut left_args) = where_selected(selection, 3);
    let (left_skip, reason, skip_args) = where_skipped(selection, 3 + left_args.len());
    left_args.extend(skip_args);
    left_args.splice(0..0, [job.to_string(), wave.to_string()]);
    let added = tx.execute(
        &format!(
            "INSERT INTO journal (job, seq, email, name, branch, employer, attributes, wave, message_id)
             SELECT CAST(?1 AS INTEGER), CAST(?2 AS INTEGER) + ROW_NUMBER() OVER (ORDER BY m.id),
                    m.email, m.name, m.branch, m.employer, m.attributes, CAST(?3 AS INTEGER),
                    {MESSAGE_ID}
             FROM members m
             WHERE ({filter}) AND NOT {skip}
               AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)
               AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.job = CAST(?1 AS INTEGER) AND j.email = m.email)"
        ),
        rusqlite::params_from_iter(head.iter()),
    )?;
    // Left out before and in the job now (re-subscribed): counted once, in the journal.
    tx.execute(
        "DELETE FROM left_out WHERE job = ?1
           AND email IN (SELECT email FROM journal WHERE job = ?1 AND wave = ?2)",
        params![job, wave],
    )?;
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO left_out (job, email, branch, employer, reason, wave)
             SELECT CAST(?1 AS INTEGER), m.email, m.branch, m.employer,
                    COALESCE(s.reason, {reason}), CAST(?2 AS INTEGER)
             FROM members m LEFT JOIN suppressions s ON s.email = m.email
             WHERE ({left_filter}) AND (s.email IS NOT NULL OR {left_skip})
               AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.job = CAST(?1 AS INTEGER) AND j.email = m.email)"
        ),
        rusqlite::params_from_iter(left_args.iter()),
    )?;
    if added > 0 {
        tx.execute(
            "UPDATE jobs SET total = total + ?2, finished_at = NULL WHERE id = ?1",
            params![job, added as i64],
        )?;
    }
    Ok((u32::try_from(wave).unwrap_or(u32::MAX), added as u64))
}
