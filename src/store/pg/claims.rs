//! Claims and results on PostgreSQL: ranges of a job's rows held by workers under the
//! claim lock, the claim floor that lets a claim from the start skip the finished front of
//! a job, and results written in arrays, one statement per group commit.

use std::collections::HashMap;

use postgres::GenericClient;

use crate::store::{Entry, EntryState, Mark};

use super::SHOWN_STATE;
use super::bridge::{Db, Step};
use super::journal::entry_row;

/// The marks SQLite's one-by-one updates would apply, one per row: each row takes the
/// marks given for it in order until the first that is not `pending` (after which it is no
/// longer pending, and later marks leave it alone).
pub(super) fn effective_marks(marks: &[Mark]) -> Vec<&Mark> {
    let mut at: HashMap<(i64, i64), usize> = HashMap::new();
    let mut out: Vec<&Mark> = Vec::with_capacity(marks.len());
    for m in marks {
        match at.get(&(m.job, m.seq)) {
            Some(&i) => {
                if out[i].state == EntryState::Pending {
                    out[i] = m;
                }
            }
            None => {
                at.insert((m.job, m.seq), out.len());
                out.push(m);
            }
        }
    }
    out
}

/// Claims are ranges of a job's rows in `claims`, so that a claim writes no journal row
/// (a mark per row cost as much as the result's own update). Ranges never overlap, and
/// the pending rows in a range are its worker's while that worker's lease lasts. One
/// worker claims from a job at a time (this lock, for the claim's transaction). A claim's
/// commit never waits for the disk, under either durability: a claim the database lost in
/// a crash is one its worker gives up anyway when its connection breaks.
pub(super) const CLAIM_LOCK: &str = "
SELECT pg_advisory_xact_lock(hashtext('mailout claims ' || current_schema() || ' ' || $1::bigint::text)),
       set_config('synchronous_commit', 'off', true)";

/// Lets go of the ranges of workers whose lease ran out, and of the claimer's own ranges
/// with nothing left pending.
const LET_GO: &str = "
DELETE FROM claims c
WHERE c.job = $1
  AND (NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = c.worker AND w.expires > now())
       OR (c.worker = $2
           AND NOT EXISTS (SELECT 1 FROM journal j
                           WHERE j.job = $1 AND j.state = 'pending' AND j.seq BETWEEN c.lo AND c.hi)))";

/// Where other workers' ranges start between two rows: a new range must not cross one.
const RANGE_STARTS: &str =
    "SELECT lo FROM claims WHERE job = $1 AND lo > $2 AND lo < $3 ORDER BY lo";

/// Raises job `$1`'s claim floor (every row at or below it is done; `$2` is where it is)
/// to just below its first pending row, or to its last row when none is pending: a claim
/// from the start (a worker's first, or its look back for rows left behind) then skips
/// the finished front of the job instead of reading it again. The floors are a table of
/// their own, written only under the claim lock (by a claim, which alone moves a floor up,
/// and by reopening rows, which puts it back): a claim that also held the job's row would
/// deadlock with the statements that lock the job's row and its ranges in another order.
const RAISE_FLOOR: &str = "
INSERT INTO claim_floors AS c (job, floor)
SELECT $1, coalesce(
    (SELECT seq - 1 FROM journal WHERE job = $1 AND state = 'pending' AND seq > $2
     ORDER BY seq LIMIT 1),
    (SELECT max(seq) FROM journal WHERE job = $1),
    $2)
ON CONFLICT (job) DO UPDATE SET floor = excluded.floor WHERE c.floor <> excluded.floor
RETURNING floor";

/// The first `$3` pending rows of job `$1` after row `$2` that no range holds.
pub(super) fn claimable() -> String {
    format!(
        "SELECT j.job, j.seq, j.email, j.name, j.branch, j.employer, j.attributes,
                {SHOWN_STATE}, j.attempts, j.message_id, j.reply
         FROM journal j
         WHERE j.job = $1 AND j.state = 'pending' AND j.seq > $2
           AND NOT EXISTS (SELECT 1 FROM claims c
                           WHERE c.job = $1 AND c.lo <= j.seq AND c.hi >= j.seq)
         ORDER BY j.seq LIMIT $3"
    )
}

const ADD_RANGES: &str = "
INSERT INTO claims (job, lo, hi, worker)
SELECT $1, r.lo, r.hi, $2 FROM unnest($3::bigint[], $4::bigint[]) AS r(lo, hi)";

/// The ranges that hold `seqs` (sorted) and cross none of `starts` (where other ranges
/// begin, sorted): a range ends where another one starts before the next row.
fn ranges(seqs: &[i64], starts: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let (mut los, mut his) = (Vec::new(), Vec::new());
    let Some((&first, rest)) = seqs.split_first() else {
        return (los, his);
    };
    let (mut lo, mut prev) = (first, first);
    let mut next = starts.iter().peekable();
    for &seq in rest {
        while next.next_if(|&&s| s <= prev).is_some() {}
        if next.peek().is_some_and(|&&s| s < seq) {
            los.push(lo);
            his.push(prev);
            lo = seq;
        }
        prev = seq;
    }
    los.push(lo);
    his.push(prev);
    (los, his)
}

/// Takes `seqs` (sorted) out of whatever ranges hold them (rows made pending again for anyone to
/// claim), leaving the rest of each range with its worker.
pub(super) fn release_rows<C: GenericClient>(
    db: &mut Db<'_, C>,
    job: i64,
    seqs: &[i64],
) -> Step<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    let held = db.query(
        "SELECT lo, hi, worker FROM claims WHERE job = $1 ORDER BY lo",
        &[&job],
    )?;
    for row in &held {
        let (lo, hi, worker): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let inside: Vec<i64> = seqs
            .iter()
            .copied()
            .filter(|s| (lo..=hi).contains(s))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let (mut los, mut his) = (Vec::new(), Vec::new());
        let mut from = lo;
        for s in inside {
            if s > from {
                los.push(from);
                his.push(s - 1);
            }
            from = s + 1;
        }
        if from <= hi {
            los.push(from);
            his.push(hi);
        }
        db.execute(
            "DELETE FROM claims WHERE job = $1 AND lo = $2",
            &[&job, &lo],
        )?;
        db.execute(ADD_RANGES, &[&job, &worker, &los, &his])?;
    }
    Ok(())
}

pub(super) const MARK: &str = "
UPDATE journal j SET state = m.state, attempts = m.attempts, message_id = m.message_id,
       reply = m.reply, updated_at = m.at
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])
     AS m(job, seq, state, attempts, message_id, reply, at)
WHERE j.job = m.job AND j.seq = m.seq
  AND (j.state = 'pending' OR (j.state = 'cancelled' AND m.state <> 'pending'))";

/// Claims up to `limit` of job `job`'s pending rows after row `after` for `worker`: lets go
/// of dead workers' ranges, skips below the claim floor, and records the rows as ranges.
pub(super) fn claim(
    db: &mut Db<'_, postgres::Client>,
    job: i64,
    worker: i64,
    after: i64,
    limit: i64,
) -> Step<Vec<Entry>> {
    db.transaction(|tx| {
        tx.execute(CLAIM_LOCK, &[&job])?;
        tx.execute(LET_GO, &[&job, &worker])?;
        let floor_of = |row: Option<postgres::Row>| -> Step<Option<i64>> {
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        };
        let mut floor =
            floor_of(tx.query_opt("SELECT floor FROM claim_floors WHERE job = $1", &[&job])?)?
                .unwrap_or(0);
        if after <= floor {
            floor = floor_of(tx.query_opt(RAISE_FLOOR, &[&job, &floor])?)?.unwrap_or(floor);
        }
        let rows = tx
            .query(&claimable(), &[&job, &after.max(floor), &limit])?
            .iter()
            .map(entry_row)
            .collect::<Step<Vec<Entry>>>()?;
        let seqs: Vec<i64> = rows.iter().map(|e| e.seq).collect();
        if let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) {
            let starts = tx
                .query(RANGE_STARTS, &[&job, &first, &last])?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<Vec<i64>, _>>()?;
            let (los, his) = ranges(&seqs, &starts);
            tx.execute(ADD_RANGES, &[&job, &worker, &los, &his])?;
        }
        Ok(rows)
    })
}

/// A group of results as the arrays [`MARK`] takes.
pub(super) struct Marks {
    jobs: Vec<i64>,
    seqs: Vec<i64>,
    states: Vec<&'static str>,
    attempts: Vec<i64>,
    ids: Vec<String>,
    replies: Vec<String>,
    ats: Vec<String>,
}

impl Marks {
    /// The arrays for `marks`, one entry per row ([`effective_marks`]).
    pub(super) fn new(marks: &[Mark]) -> Marks {
        let marks = effective_marks(marks);
        Marks {
            jobs: marks.iter().map(|m| m.job).collect(),
            seqs: marks.iter().map(|m| m.seq).collect(),
            states: marks.iter().map(|m| m.state.as_str()).collect(),
            attempts: marks.iter().map(|m| i64::from(m.attempts)).collect(),
            ids: marks.iter().map(|m| m.message_id.clone()).collect(),
            replies: marks.iter().map(|m| m.reply.clone()).collect(),
            ats: marks.iter().map(|m| m.at.clone()).collect(),
        }
    }

    /// Writes the results in one statement (committed as the connection's session
    /// commits: see [`super::bridge::Conn::attempt`]).
    pub(super) fn write(&self, db: &mut Db<'_, postgres::Client>) -> Step<()> {
        db.execute(
            MARK,
            &[
                &self.jobs,
                &self.seqs,
                &self.states,
                &self.attempts,
                &self.ids,
                &self.replies,
                &self.ats,
            ],
        )?;
        Ok(())
    }
}
