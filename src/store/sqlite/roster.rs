//! Members on SQLite: imports, selections, suppressions, bounces and token lookup keys.

use rusqlite::{OptionalExtension, params};

use crate::error::Result;
use crate::store::schema::suppression_event;
use crate::store::{Counts, Erasure, ImportCounts, KeyedMember, Member, MemberEvent, Roster};
use crate::store::{Selection, Suppression};

use super::{SqliteStore, count, member_row, where_selected, where_skipped};

impl Roster for SqliteStore {
    fn import_members(
        &self,
        members: &mut dyn Iterator<Item = KeyedMember>,
    ) -> Result<ImportCounts> {
        let fail = |e| self.fail("could not import members", e);
        let now = crate::clock::stamp();
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let before = count(&tx, "SELECT COUNT(*) FROM members").map_err(fail)?;
        let newest: i64 = tx
            .query_row("SELECT COALESCE(MAX(id), 0) FROM members", [], |r| r.get(0))
            .map_err(fail)?;
        let mut updated = 0;
        {
            // A returned id at or below the highest before this import is a member who was
            // already there: an update, not a new member (nor a repeat within the file).
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO members (email, name, branch, employer, attributes, token_key, lookup_key, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?7, ?7)
                     ON CONFLICT(email) DO UPDATE SET
                       name = excluded.name, branch = excluded.branch, employer = excluded.employer,
                       attributes = excluded.attributes, lookup_key = excluded.lookup_key,
                       updated_at = excluded.updated_at
                     RETURNING id",
                )
                .map_err(fail)?;
            let mut added_event = tx
                .prepare_cached(
                    "INSERT INTO member_events (email, at, change, source, evidence)
                     VALUES (?1, ?2, 'added', 'import', ?3)",
                )
                .map_err(fail)?;
            let mut added = std::collections::HashSet::new();
            for KeyedMember {
                member: m,
                lookup_key,
                legacy_key,
                origin,
            } in members
            {
                let attributes =
                    serde_json::to_string(&m.attributes).unwrap_or_else(|_| "{}".into());
                let id: i64 = upsert
                    .query_row(
                        params![
                            m.email, m.name, m.branch, m.employer, attributes, legacy_key, now,
                            lookup_key
                        ],
                        |r| r.get(0),
                    )
                    .map_err(fail)?;
                updated += u64::from(id <= newest);
                // A repeat within the file is an update of the row just added.
                if id > newest && added.insert(id) {
                    added_event
                        .execute(params![m.email, now, origin])
                        .map_err(fail)?;
                }
            }
        }
        let after = count(&tx, "SELECT COUNT(*) FROM members").map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(ImportCounts {
            added: after - before,
            updated,
        })
    }

    fn members(&self, selection: Option<&Selection>) -> Result<Vec<Member>> {
        let fail = |e| self.fail("could not list members", e);
        let (filter, args) = match selection {
            Some(s) => where_selected(s, 1),
            None => ("1".to_string(), Vec::new()),
        };
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT email, name, branch, employer, attributes FROM members m WHERE {filter} ORDER BY email"
            ))
            .map_err(fail)?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(args.iter()), member_row)
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn member(&self, email: &str) -> Result<Option<Member>> {
        self.conn
            .query_row(
                "SELECT email, name, branch, employer, attributes FROM members WHERE email = ?1",
                [email],
                member_row,
            )
            .optional()
            .map_err(|e| self.fail("could not read a member", e))
    }

    fn members_by_lookup_key(&self, key: &[u8]) -> Result<Vec<Member>> {
        let fail = |e| self.fail("could not look up a token", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, name, branch, employer, attributes FROM members WHERE lookup_key = ?1 ORDER BY id",
            )
            .map_err(fail)?;
        let rows = statement.query_map([key], member_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn members_by_legacy_key(&self, key: &[u8]) -> Result<Vec<Member>> {
        let fail = |e| self.fail("could not look up a token", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, name, branch, employer, attributes FROM members WHERE token_key = ?1 ORDER BY id",
            )
            .map_err(fail)?;
        let rows = statement.query_map([key], member_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn lookup_keys_state(&self) -> Result<(Option<Vec<u8>>, u64)> {
        let fail = |e| self.fail("could not read the token keys' state", e);
        let fingerprint: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM secrets WHERE name = 'token-fingerprint'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?;
        let missing = count(
            &self.conn,
            "SELECT COUNT(*) FROM members WHERE lookup_key IS NULL",
        )
        .map_err(fail)?;
        Ok((fingerprint, missing))
    }

    fn set_lookup_keys(&self, keys: &[(String, Vec<u8>)], fingerprint: &[u8]) -> Result<()> {
        let fail = |e| self.fail("could not write the token keys", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        {
            let mut update = tx
                .prepare_cached("UPDATE members SET lookup_key = ?2 WHERE email = ?1")
                .map_err(fail)?;
            for (email, key) in keys {
                update.execute(params![email, key]).map_err(fail)?;
            }
        }
        tx.execute(
            "INSERT INTO secrets (name, value) VALUES ('token-fingerprint', ?1)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [fingerprint],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    fn attribute_names(&self) -> Result<Vec<String>> {
        let fail = |e| self.fail("could not read attribute names", e);
        let mut statement = self
            .conn
            .prepare(
                "SELECT DISTINCT j.key FROM members, json_each(members.attributes) AS j ORDER BY j.key",
            )
            .map_err(fail)?;
        let rows = statement.query_map([], |r| r.get(0)).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(fail)
    }

    fn counts(&self) -> Result<Counts> {
        let fail = |e| self.fail("could not count members", e);
        let sendable = "NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)";
        let all = count(
            &self.conn,
            &format!("SELECT COUNT(*) FROM members m WHERE {sendable}"),
        )
        .map_err(fail)?;
        let suppressed = count(
            &self.conn,
            "SELECT COUNT(*) FROM members m WHERE EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)",
        )
        .map_err(fail)?;
        let group = |column: &str| -> rusqlite::Result<Vec<(String, u64)>> {
            let mut statement = self.conn.prepare(&format!(
                "SELECT MIN({column}), COUNT(*) FROM members m
                 WHERE {column} IS NOT NULL AND {sendable}
                 GROUP BY {column} COLLATE NOCASE ORDER BY {column} COLLATE NOCASE"
            ))?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            rows.collect()
        };
        let branches = group("branch").map_err(fail)?;
        let employers = group("employer").map_err(fail)?;
        Ok(Counts {
            all,
            suppressed,
            branches,
            employers,
        })
    }

    fn count_selected(&self, selection: &Selection) -> Result<u64> {
        let (filter, mut args) = where_selected(selection, 1);
        let (skip, _, skip_args) = where_skipped(selection, 1 + args.len());
        args.extend(skip_args);
        self.conn
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM members m WHERE ({filter}) AND NOT {skip}
                     AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = m.email)"
                ),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.fail("could not count recipients", e))
    }

    fn suppress(&self, email: &str, reason: &str, detail: Option<&str>, at: &str) -> Result<bool> {
        let fail = |e| self.fail("could not suppress an address", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let added = tx
            .execute(
                "INSERT INTO suppressions (email, reason, detail, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(email) DO NOTHING",
                params![email, reason, detail, at],
            )
            .map_err(fail)?;
        if added > 0 {
            record_event(&tx, &suppression_event(email, reason, detail, at)).map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(added > 0)
    }

    fn suppressions(&self) -> Result<Vec<Suppression>> {
        let fail = |e| self.fail("could not list suppressions", e);
        let mut statement = self
            .conn
            .prepare("SELECT email, reason, detail, at FROM suppressions ORDER BY at, email")
            .map_err(fail)?;
        let rows = statement
            .query_map([], |r| {
                Ok(Suppression {
                    email: r.get(0)?,
                    reason: r.get(1)?,
                    detail: r.get(2)?,
                    at: r.get(3)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn unsuppress(&self, email: &str, event: &MemberEvent) -> Result<Option<Suppression>> {
        let fail = |e| self.fail("could not lift a suppression", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let lifted = tx
            .query_row(
                "DELETE FROM suppressions WHERE email = ?1 RETURNING email, reason, detail, at",
                [email],
                |r| {
                    Ok(Suppression {
                        email: r.get(0)?,
                        reason: r.get(1)?,
                        detail: r.get(2)?,
                        at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(fail)?;
        if lifted.is_some() {
            record_event(&tx, event).map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(lifted)
    }

    fn member_events(&self, email: &str) -> Result<Vec<MemberEvent>> {
        let fail = |e| self.fail("could not read a member's history", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, at, change, source, evidence FROM member_events
                 WHERE email = ?1 ORDER BY id",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([email], |r| {
                Ok(MemberEvent {
                    email: r.get(0)?,
                    at: r.get(1)?,
                    change: r.get(2)?,
                    source: r.get(3)?,
                    evidence: r.get(4)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn erase_member(&self, email: &str, hash: &str, at: &str) -> Result<Erasure> {
        let fail = |e| self.fail("could not erase the member", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let gone = format!("erased:{}", &hash[..hash.len().min(16)]);
        let n = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<u64> {
            tx.execute(sql, args).map(|n| n as u64)
        };
        let member = n("DELETE FROM members WHERE email = ?1", &[&email]).map_err(fail)?;
        let journal_rows = n(
            "UPDATE journal SET email = ?2, name = NULL, branch = NULL, employer = NULL,
                    attributes = '{}', reply = replace(reply, ?1, ?2)
             WHERE email = ?1",
            &[&email, &gone],
        )
        .map_err(fail)?;
        let left_out_rows = n(
            "UPDATE left_out SET email = ?2, branch = NULL, employer = NULL WHERE email = ?1",
            &[&email, &gone],
        )
        .map_err(fail)?;
        let ids: Vec<i64> = {
            let mut statement = tx
                .prepare(
                    "SELECT id FROM messages
                     WHERE copy_kind = 'member' AND instr(lower(recipients), lower(?1)) > 0",
                )
                .map_err(fail)?;
            statement
                .query_map([email], |r| r.get(0))
                .map_err(fail)?
                .collect::<rusqlite::Result<Vec<i64>>>()
                .map_err(fail)?
        };
        for id in &ids {
            for table in ["archive_search", "message_sections", "message_attachments"] {
                n(&format!("DELETE FROM {table} WHERE message = ?1"), &[id]).map_err(fail)?;
            }
            n("DELETE FROM messages WHERE id = ?1", &[id]).map_err(fail)?;
        }
        let mut records = 0;
        for table in ["suppressions", "bounces", "member_events", "list_optouts"] {
            records +=
                n(&format!("DELETE FROM {table} WHERE email = ?1"), &[&email]).map_err(fail)?;
        }
        n(
            "INSERT INTO erased (hash, at) VALUES (?1, ?2) ON CONFLICT(hash) DO NOTHING",
            &[&hash, &at],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(Erasure {
            member,
            journal_rows,
            left_out_rows,
            archived_copies: ids.len() as u64,
            records,
        })
    }

    fn set_list_choice(
        &self,
        email: &str,
        list: &str,
        receive: bool,
        event: &MemberEvent,
    ) -> Result<bool> {
        let fail = |e| self.fail("could not record a list choice", e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let changed = if receive {
            tx.execute(
                "DELETE FROM list_optouts WHERE email = ?1 AND list = ?2",
                params![email, list],
            )
        } else {
            tx.execute(
                "INSERT INTO list_optouts (email, list, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(email, list) DO NOTHING",
                params![email, list, event.at],
            )
        }
        .map_err(fail)?;
        if changed > 0 {
            record_event(&tx, event).map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(changed > 0)
    }

    fn list_optouts(&self, email: &str) -> Result<Vec<String>> {
        let fail = |e| self.fail("could not read a member's list choices", e);
        let mut statement = self
            .conn
            .prepare_cached("SELECT list FROM list_optouts WHERE email = ?1 ORDER BY list")
            .map_err(fail)?;
        let rows = statement.query_map([email], |r| r.get(0)).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(fail)
    }

    fn erased(&self) -> Result<Vec<String>> {
        let fail = |e| self.fail("could not read the erased addresses", e);
        let mut statement = self
            .conn
            .prepare_cached("SELECT hash FROM erased ORDER BY hash")
            .map_err(fail)?;
        let rows = statement.query_map([], |r| r.get(0)).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(fail)
    }

    fn add_bounce(&self, e: &crate::store::BounceEvent) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO bounces (email, at, reason, consequence, job, evidence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![e.email, e.at, e.reason, e.consequence, e.job, e.evidence],
            )
            .map(drop)
            .map_err(|err| self.fail("could not keep a bounce", err))
    }

    fn bounces_for(&self, email: &str) -> Result<Vec<crate::store::BounceEvent>> {
        let fail = |e| self.fail("could not read bounces", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, at, reason, consequence, job, evidence FROM bounces
                 WHERE email = ?1 ORDER BY at, id",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([email], |r| {
                Ok(crate::store::BounceEvent {
                    email: r.get(0)?,
                    at: r.get(1)?,
                    reason: r.get(2)?,
                    consequence: r.get(3)?,
                    job: r.get(4)?,
                    evidence: r.get(5)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn bounces_of_job(&self, job: i64) -> Result<Vec<crate::store::BounceEvent>> {
        let fail = |e| self.fail("could not read bounces", e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT email, at, reason, consequence, job, evidence FROM bounces
                 WHERE job = ?1 ORDER BY at, id",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([job], |r| {
                Ok(crate::store::BounceEvent {
                    email: r.get(0)?,
                    at: r.get(1)?,
                    reason: r.get(2)?,
                    consequence: r.get(3)?,
                    job: r.get(4)?,
                    evidence: r.get(5)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }
}

/// Adds `e` to its member's history, inside the caller's transaction.
fn record_event(tx: &rusqlite::Connection, e: &MemberEvent) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO member_events (email, at, change, source, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![e.email, e.at, e.change, e.source, e.evidence],
    )
}
