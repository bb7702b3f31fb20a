//! A job's waves on PostgreSQL: the members a selection adds to a job (its first wave, or
//! a top-up), each row with its Message-ID, and the selected members left out, with why.

use postgres::types::ToSql;

use crate::store::Selection;

use super::bridge::{Db, Step};
use super::{SENDABLE, narrow, selected, skipped, wide};

/// A new journal row's Message-ID (job `$1`, member `m`, whose address is stored
/// normalised): made as its copy's will be ([`MessageIds::message_id`]), from the job's
/// series and domain; NULL for a job from before mailout kept them.
pub(super) const MESSAGE_ID: &str = "(SELECT '<' || jb.number || '.'
        || substr(encode(sha256(convert_to(jb.id_series, 'UTF8') || decode('00', 'hex')
                                || substring(int8send(jb.number) from 5)
                                || convert_to(m.email, 'UTF8')), 'hex'), 1, 20)
        || '@' || jb.id_domain || '>'
    FROM jobs jb WHERE jb.id = $1)";

/// The statements that add a wave to a job: the sendable members a selection selects who
/// are not in it yet, and the selected suppressed ones not in it, as left out.
pub(super) struct WaveStatements {
    add: String,
    left_out: String,
    args: Vec<Vec<String>>,
}

impl WaveStatements {
    pub(super) fn new(selection: &Selection) -> WaveStatements {
        let (filter, mut args) = selected(selection, 3);
        let (skip, reason, skip_args) = skipped(selection, 3 + args.len());
        args.extend(skip_args);
        WaveStatements {
            add: format!(
                "INSERT INTO journal (job, seq, email, name, branch, employer, attributes, wave, message_id)
                 SELECT $1, n.last + row_number() OVER (ORDER BY m.id), m.email, m.name, m.branch,
                        m.employer, m.attributes, $2, {MESSAGE_ID}
                 FROM members m, (SELECT coalesce(max(seq), 0) AS last FROM journal WHERE job = $1) n
                 WHERE ({filter}) AND NOT {skip} AND {SENDABLE}
                   AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.job = $1 AND j.email = m.email)"
            ),
            left_out: format!(
                "INSERT INTO left_out (job, email, branch, employer, reason, wave)
                 SELECT $1, m.email, m.branch, m.employer, coalesce(s.reason, {reason}), $2
                 FROM members m LEFT JOIN suppressions s ON s.email = m.email
                 WHERE ({filter}) AND (s.email IS NOT NULL OR {skip})
                   AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.job = $1 AND j.email = m.email)
                 ON CONFLICT DO NOTHING"
            ),
            args,
        }
    }

    /// Adds the wave to `job` inside `tx`; its number and how many rows it added.
    pub(super) fn add(
        &self,
        tx: &mut Db<'_, postgres::Transaction<'_>>,
        job: i64,
    ) -> Step<(u32, u64)> {
        let wave: i64 = tx
            .query_one(
                "SELECT coalesce(max(wave), 0) + 1 FROM journal WHERE job = $1",
                &[&job],
            )?
            .try_get(0)?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&job, &wave];
        params.extend(self.args.iter().map(|a| a as &(dyn ToSql + Sync)));
        let added = tx.execute(&self.add, &params)?;
        tx.execute(
            "DELETE FROM left_out l USING journal j
             WHERE l.job = $1 AND j.job = $1 AND j.wave = $2 AND j.email = l.email",
            &[&job, &wave],
        )?;
        tx.execute(&self.left_out, &params)?;
        if added > 0 {
            tx.execute(
                "UPDATE jobs SET total = total + $2, finished_at = NULL WHERE id = $1",
                &[&job, &wide(added)],
            )?;
        }
        Ok((narrow(wave)?, added))
    }
}
