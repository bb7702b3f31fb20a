//! Members on PostgreSQL: imports, selections, suppressions, bounces and token lookup keys.

use std::collections::HashMap;

use postgres::types::ToSql;

use crate::error::Result;
use crate::store::schema::suppression_event;
use crate::store::{Counts, Erasure, ImportCounts, KeyedMember, Member, MemberEvent, Roster};
use crate::store::{Selection, Suppression};

use super::{PgStore, SENDABLE, count_of, fold, member_row, selected, skipped};

/// One member of an import, with how often its address came.
struct Incoming {
    keyed: KeyedMember,
    times: i64,
}

const UPSERT_MEMBERS: &str = "
INSERT INTO members (email, name, branch, employer, attributes, token_key, lookup_key, created_at, updated_at)
SELECT u.email, u.name, u.branch, u.employer, u.attributes, u.token_key, u.lookup_key, $7, $7
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $8::bytea[])
     WITH ORDINALITY AS u(email, name, branch, employer, attributes, token_key, lookup_key, ord)
ORDER BY u.ord
ON CONFLICT (email) DO UPDATE SET
  name = excluded.name, branch = excluded.branch, employer = excluded.employer,
  attributes = excluded.attributes, lookup_key = excluded.lookup_key,
  updated_at = excluded.updated_at";

impl Roster for PgStore {
    fn import_members(
        &self,
        members: &mut dyn Iterator<Item = KeyedMember>,
    ) -> Result<ImportCounts> {
        // Repeats are folded here, as SQLite's row-by-row upserts would leave them: the last
        // values win, the first place gives the id, and every repeat of an address that was
        // already there counts as an update.
        let mut at: HashMap<String, usize> = HashMap::new();
        let mut incoming: Vec<Incoming> = Vec::new();
        for keyed in members {
            match at.get(&keyed.member.email) {
                Some(&i) => {
                    incoming[i].keyed = keyed;
                    incoming[i].times += 1;
                }
                None => {
                    at.insert(keyed.member.email.clone(), incoming.len());
                    incoming.push(Incoming { keyed, times: 1 });
                }
            }
        }
        drop(at);
        let now = crate::clock::stamp();
        self.call("could not import members", move |db| {
            db.transaction(|tx| {
                let mut counts = ImportCounts::default();
                for chunk in incoming.chunks(10_000) {
                    let emails: Vec<&str> = chunk
                        .iter()
                        .map(|i| i.keyed.member.email.as_str())
                        .collect();
                    let times: Vec<i64> = chunk.iter().map(|i| i.times).collect();
                    let existing = tx.query_one(
                        "SELECT count(*), coalesce(sum(u.n), 0)::bigint
                         FROM unnest($1::text[], $2::bigint[]) AS u(email, n)
                         JOIN members m ON m.email = u.email",
                        &[&emails, &times],
                    )?;
                    let (known, repeats): (i64, i64) = (existing.try_get(0)?, existing.try_get(1)?);
                    counts.added += count_of(chunk.len() as i64 - known);
                    counts.updated += count_of(repeats);
                    let field = |f: fn(&Member) -> &Option<String>| -> Vec<Option<&str>> {
                        chunk
                            .iter()
                            .map(|i| f(&i.keyed.member).as_deref())
                            .collect()
                    };
                    let attributes: Vec<String> = chunk
                        .iter()
                        .map(|i| {
                            serde_json::to_string(&i.keyed.member.attributes)
                                .unwrap_or_else(|_| "{}".into())
                        })
                        .collect();
                    let keys: Vec<&[u8]> = chunk
                        .iter()
                        .map(|i| i.keyed.legacy_key.as_slice())
                        .collect();
                    let lookup_keys: Vec<&[u8]> = chunk
                        .iter()
                        .map(|i| i.keyed.lookup_key.as_slice())
                        .collect();
                    let origins: Vec<Option<&str>> =
                        chunk.iter().map(|i| i.keyed.origin.as_deref()).collect();
                    tx.execute(
                        "INSERT INTO member_events (email, at, change, source, evidence)
                         SELECT u.email, $2, 'added', 'import', u.origin
                         FROM unnest($1::text[], $3::text[]) WITH ORDINALITY AS u(email, origin, ord)
                         WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.email = u.email)
                         ORDER BY u.ord",
                        &[&emails, &now, &origins],
                    )?;
                    tx.execute(
                        UPSERT_MEMBERS,
                        &[
                            &emails,
                            &field(|m| &m.name),
                            &field(|m| &m.branch),
                            &field(|m| &m.employer),
                            &attributes,
                            &keys,
                            &now,
                            &lookup_keys,
                        ],
                    )?;
                }
                Ok(counts)
            })
        })
    }

    fn members(&self, selection: Option<&Selection>) -> Result<Vec<Member>> {
        let (filter, args) = match selection {
            Some(s) => selected(s, 1),
            None => ("TRUE".to_string(), Vec::new()),
        };
        let sql = format!(
            "SELECT email, name, branch, employer, attributes FROM members m
             WHERE {filter} ORDER BY m.email COLLATE \"C\""
        );
        self.call("could not list members", move |db| {
            let params: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
            db.query(&sql, &params)?.iter().map(member_row).collect()
        })
    }

    fn member(&self, email: &str) -> Result<Option<Member>> {
        let email = email.to_string();
        self.call("could not read a member", move |db| {
            db.query_opt(
                "SELECT email, name, branch, employer, attributes FROM members WHERE email = $1",
                &[&email],
            )?
            .as_ref()
            .map(member_row)
            .transpose()
        })
    }

    fn members_by_lookup_key(&self, key: &[u8]) -> Result<Vec<Member>> {
        members_by_key(self, "lookup_key", key)
    }

    fn members_by_legacy_key(&self, key: &[u8]) -> Result<Vec<Member>> {
        members_by_key(self, "token_key", key)
    }

    fn lookup_keys_state(&self) -> Result<(Option<Vec<u8>>, u64)> {
        self.call("could not read the token keys' state", move |db| {
            let fingerprint: Option<Vec<u8>> = db
                .query_opt(
                    "SELECT value FROM secrets WHERE name = 'token-fingerprint'",
                    &[],
                )?
                .map(|r| r.try_get(0))
                .transpose()?;
            let missing: i64 = db
                .query_one("SELECT count(*) FROM members WHERE lookup_key IS NULL", &[])?
                .try_get(0)?;
            Ok((fingerprint, count_of(missing)))
        })
    }

    fn set_lookup_keys(&self, keys: &[(String, Vec<u8>)], fingerprint: &[u8]) -> Result<()> {
        let emails: Vec<String> = keys.iter().map(|(e, _)| e.clone()).collect();
        let values: Vec<Vec<u8>> = keys.iter().map(|(_, k)| k.clone()).collect();
        let fingerprint = fingerprint.to_vec();
        self.call("could not write the token keys", move |db| {
            db.transaction(|tx| {
                tx.execute(
                    "UPDATE members m SET lookup_key = u.key
                     FROM unnest($1::text[], $2::bytea[]) AS u(email, key)
                     WHERE m.email = u.email",
                    &[&emails, &values],
                )?;
                tx.execute(
                    "INSERT INTO secrets (name, value) VALUES ('token-fingerprint', $1)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    &[&fingerprint],
                )?;
                Ok(())
            })
        })
    }

    fn attribute_names(&self) -> Result<Vec<String>> {
        self.call("could not read attribute names", |db| {
            db.query(
                "SELECT DISTINCT k.key COLLATE \"C\" AS key
                 FROM members m
                 CROSS JOIN LATERAL (SELECT m.attributes::jsonb AS a) j
                 CROSS JOIN LATERAL jsonb_object_keys(
                     CASE WHEN jsonb_typeof(j.a) = 'object' THEN j.a ELSE '{}'::jsonb END) AS k(key)
                 ORDER BY 1",
                &[],
            )?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
        })
    }

    fn counts(&self) -> Result<Counts> {
        self.call("could not count members", |db| {
            let totals = db.query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE {SENDABLE}), count(*) FILTER (WHERE NOT {SENDABLE})
                     FROM members m"
                ),
                &[],
            )?;
            let mut counts = Counts {
                all: count_of(totals.try_get(0)?),
                suppressed: count_of(totals.try_get(1)?),
                ..Counts::default()
            };
            for (column, out) in [
                ("branch", &mut counts.branches),
                ("employer", &mut counts.employers),
            ] {
                let folded = fold(&format!("m.{column}"));
                for row in db.query(
                    &format!(
                        "SELECT min(m.{column} COLLATE \"C\"), count(*) FROM members m
                         WHERE m.{column} IS NOT NULL AND {SENDABLE}
                         GROUP BY {folded} ORDER BY {folded} COLLATE \"C\""
                    ),
                    &[],
                )? {
                    out.push((row.try_get(0)?, count_of(row.try_get(1)?)));
                }
            }
            Ok(counts)
        })
    }

    fn count_selected(&self, selection: &Selection) -> Result<u64> {
        let (filter, mut args) = selected(selection, 1);
        let (skip, _, skip_args) = skipped(selection, 1 + args.len());
        args.extend(skip_args);
        let sql = format!(
            "SELECT count(*) FROM members m WHERE ({filter}) AND NOT {skip} AND {SENDABLE}"
        );
        self.call("could not count recipients", move |db| {
            let params: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
            Ok(count_of(db.query_one(&sql, &params)?.try_get(0)?))
        })
    }

    fn suppress(&self, email: &str, reason: &str, detail: Option<&str>, at: &str) -> Result<bool> {
        let (email, reason, detail, at) = (
            email.to_string(),
            reason.to_string(),
            detail.map(str::to_string),
            at.to_string(),
        );
        let event = suppression_event(&email, &reason, detail.as_deref(), &at);
        self.call("could not suppress an address", move |db| {
            db.transaction(|tx| {
                let added = tx.execute(
                    "INSERT INTO suppressions (email, reason, detail, at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (email) DO NOTHING",
                    &[&email, &reason, &detail, &at],
                )? > 0;
                if added {
                    record_event(tx, &event)?;
                }
                Ok(added)
            })
        })
    }

    fn suppressions(&self) -> Result<Vec<Suppression>> {
        self.call("could not list suppressions", |db| {
            db.query(
                "SELECT email, reason, detail, at FROM suppressions
                 ORDER BY at COLLATE \"C\", email COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(Suppression {
                    email: r.try_get(0)?,
                    reason: r.try_get(1)?,
                    detail: r.try_get(2)?,
                    at: r.try_get(3)?,
                })
            })
            .collect()
        })
    }

    fn unsuppress(&self, email: &str, event: &MemberEvent) -> Result<Option<Suppression>> {
        let email = email.to_string();
        let event = event.clone();
        self.call("could not lift a suppression", move |db| {
            db.transaction(|tx| {
                let lifted = tx
                    .query_opt(
                        "DELETE FROM suppressions WHERE email = $1 RETURNING email, reason, detail, at",
                        &[&email],
                    )?
                    .map(|r| -> std::result::Result<Suppression, postgres::Error> {
                        Ok(Suppression {
                            email: r.try_get(0)?,
                            reason: r.try_get(1)?,
                            detail: r.try_get(2)?,
                            at: r.try_get(3)?,
                        })
                    })
                    .transpose()?;
                if lifted.is_some() {
                    record_event(tx, &event)?;
                }
                Ok(lifted)
            })
        })
    }

    fn member_events(&self, email: &str) -> Result<Vec<MemberEvent>> {
        let email = email.to_string();
        self.call("could not read a member's history", move |db| {
            db.query(
                "SELECT email, at, change, source, evidence FROM member_events
                 WHERE email = $1 ORDER BY id",
                &[&email],
            )?
            .iter()
            .map(|r| {
                Ok(MemberEvent {
                    email: r.try_get(0)?,
                    at: r.try_get(1)?,
                    change: r.try_get(2)?,
                    source: r.try_get(3)?,
                    evidence: r.try_get(4)?,
                })
            })
            .collect()
        })
    }

    fn erase_member(&self, email: &str, hash: &str, at: &str) -> Result<Erasure> {
        let (email, hash, at) = (email.to_string(), hash.to_string(), at.to_string());
        let gone = format!("erased:{}", &hash[..hash.len().min(16)]);
        self.call("could not erase the member", move |db| {
            db.transaction(|tx| {
                let member = tx.execute("DELETE FROM members WHERE email = $1", &[&email])?;
                let journal_rows = tx.execute(
                    "UPDATE journal SET email = $2, name = NULL, branch = NULL, employer = NULL,
                            attributes = '{}', reply = replace(reply, $1, $2)
                     WHERE email = $1",
                    &[&email, &gone],
                )?;
                let left_out_rows = tx.execute(
                    "UPDATE left_out SET email = $2, branch = NULL, employer = NULL WHERE email = $1",
                    &[&email, &gone],
                )?;
                let ids: Vec<i64> = tx
                    .query(
                        "SELECT id FROM messages
                         WHERE copy_kind = 'member' AND strpos(lower(recipients), lower($1)) > 0",
                        &[&email],
                    )?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<std::result::Result<_, _>>()?;
                for table in ["archive_search", "message_sections", "message_attachments"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE message = ANY($1)"),
                        &[&ids],
                    )?;
                }
                tx.execute("DELETE FROM messages WHERE id = ANY($1)", &[&ids])?;
                let mut records = 0;
                for table in ["suppressions", "bounces", "member_events", "list_optouts"] {
                    records +=
                        tx.execute(&format!("DELETE FROM {table} WHERE email = $1"), &[&email])?;
                }
                tx.execute(
                    "INSERT INTO erased (hash, at) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                    &[&hash, &at],
                )?;
                Ok(Erasure {
                    member,
                    journal_rows,
                    left_out_rows,
                    archived_copies: ids.len() as u64,
                    records,
                })
            })
        })
    }

    fn set_list_choice(
        &self,
        email: &str,
        list: &str,
        receive: bool,
        event: &MemberEvent,
    ) -> Result<bool> {
        let (email, list, event) = (email.to_string(), list.to_string(), event.clone());
        self.call("could not record a list choice", move |db| {
            db.transaction(|tx| {
                let changed = if receive {
                    tx.execute(
                        "DELETE FROM list_optouts WHERE email = $1 AND list = $2",
                        &[&email, &list],
                    )?
                } else {
                    tx.execute(
                        "INSERT INTO list_optouts (email, list, at) VALUES ($1, $2, $3)
                         ON CONFLICT (email, list) DO NOTHING",
                        &[&email, &list, &event.at],
                    )?
                };
                if changed > 0 {
                    record_event(tx, &event)?;
                }
                Ok(changed > 0)
            })
        })
    }

    fn list_optouts(&self, email: &str) -> Result<Vec<String>> {
        let email = email.to_string();
        self.call("could not read a member's list choices", move |db| {
            db.query(
                "SELECT list FROM list_optouts WHERE email = $1 ORDER BY list COLLATE \"C\"",
                &[&email],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
        })
    }

    fn erased(&self) -> Result<Vec<String>> {
        self.call("could not read the erased addresses", |db| {
            db.query("SELECT hash FROM erased ORDER BY hash COLLATE \"C\"", &[])?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()
                .map_err(Into::into)
        })
    }

    fn add_bounce(&self, e: &crate::store::BounceEvent) -> Result<()> {
        let e = e.clone();
        self.call("could not keep a bounce", move |db| {
            db.execute(
                "INSERT INTO bounces (email, at, reason, consequence, job, evidence)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &e.email,
                    &e.at,
                    &e.reason,
                    &e.consequence,
                    &e.job,
                    &e.evidence,
                ],
            )?;
            Ok(())
        })
    }

    fn bounces_for(&self, email: &str) -> Result<Vec<crate::store::BounceEvent>> {
        let email = email.to_string();
        self.call("could not read bounces", move |db| {
            db.query(
                "SELECT email, at, reason, consequence, job, evidence FROM bounces
                 WHERE email = $1 ORDER BY at, id",
                &[&email],
            )?
            .iter()
            .map(|r| {
                Ok(crate::store::BounceEvent {
                    email: r.try_get(0)?,
                    at: r.try_get(1)?,
                    reason: r.try_get(2)?,
                    consequence: r.try_get(3)?,
                    job: r.try_get(4)?,
                    evidence: r.try_get(5)?,
                })
            })
            .collect()
        })
    }

    fn bounces_of_job(&self, job: i64) -> Result<Vec<crate::store::BounceEvent>> {
        self.call("could not read bounces", move |db| {
            db.query(
                "SELECT email, at, reason, consequence, job, evidence FROM bounces
                 WHERE job = $1 ORDER BY at, id",
                &[&job],
            )?
            .iter()
            .map(|r| {
                Ok(crate::store::BounceEvent {
                    email: r.try_get(0)?,
                    at: r.try_get(1)?,
                    reason: r.try_get(2)?,
                    consequence: r.try_get(3)?,
                    job: r.try_get(4)?,
                    evidence: r.try_get(5)?,
                })
            })
            .collect()
        })
    }
}

/// The members whose `column` (a token key column) holds `key`, in the order they came.
fn members_by_key(store: &PgStore, column: &'static str, key: &[u8]) -> Result<Vec<Member>> {
    let key = key.to_vec();
    store.call("could not look up a token", move |db| {
        db.query(
            &format!(
                "SELECT email, name, branch, employer, attributes FROM members
                 WHERE {column} = $1 ORDER BY id"
            ),
            &[&key],
        )?
        .iter()
        .map(member_row)
        .collect()
    })
}

/// Adds `e` to its member's history, inside the caller's transaction.
fn record_event(
    tx: &mut super::bridge::Db<'_, postgres::Transaction<'_>>,
    e: &MemberEvent,
) -> super::bridge::Step<u64> {
    tx.execute(
        "INSERT INTO member_events (email, at, change, source, evidence)
         VALUES ($1, $2, $3, $4, $5)",
        &[&e.email, &e.at, &e.change, &e.source, &e.evidence],
    )
}
