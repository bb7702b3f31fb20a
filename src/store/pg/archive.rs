//! The archive on PostgreSQL: messages, attachments, search and IMAP state.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use postgres::{GenericClient, Row};

use crate::error::{Error, Result};
use crate::search::query::Query;
use crate::search::words::index_form;
use crate::store::schema::ARCHIVE_COLUMNS;
use crate::store::{
    Archive, ArchiveEntry, Archived, ArchivedMessage, AttachmentInfo, CopyKind, NewAttachment,
    NewMessage,
};

use super::bridge::{Db, Step, bad};
use super::search::{SEARCH, SearchRow, insert_search_rows, tsquery};
use super::{PgStore, count_of, narrow, wide};

fn archive_row(row: &Row) -> Step<ArchiveEntry> {
    Ok(ArchiveEntry {
        id: row.try_get(0)?,
        message_id: row.try_get(1)?,
        date: row.try_get(2)?,
        sender: row.try_get(3)?,
        subject: row.try_get(4)?,
        bulletin: row.try_get::<_, Option<i64>>(5)?.map(narrow).transpose()?,
        flagged: row.try_get(6)?,
        size: count_of(row.try_get(7)?),
        folder: row.try_get(8)?,
        copy: row.try_get::<_, Option<&str>>(9)?.and_then(CopyKind::parse),
    })
}

const INSERT_MESSAGES: &str = "
INSERT INTO messages (message_id, content_hash, date, sender, recipients, subject, bulletin,
                      flagged, size, raw_zstd, source, imported_at, folder, copy_kind)
SELECT u.message_id, u.content_hash, u.date, u.sender, u.recipients, u.subject, u.bulletin,
       u.flagged, u.size, u.raw_zstd, u.source, $12, u.folder, u.copy_kind
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
            $8::text[], $9::bigint[], $10::bytea[], $11::text[], $13::text[], $14::text[])
     WITH ORDINALITY AS u(message_id, content_hash, date, sender, recipients, subject, bulletin,
                          flagged, size, raw_zstd, source, folder, copy_kind, ord)
ORDER BY u.ord
RETURNING id, content_hash";

/// Where a message of an [`archive_add`] batch ends up.
enum Slot {
    Known(i64),
    /// The n-th message inserted by this batch (new, or a repeat of one new in it).
    Fresh(usize, bool),
}

fn archive_add<C: GenericClient>(
    db: &mut Db<'_, C>,
    messages: &[NewMessage],
    now: &str,
) -> Step<Vec<Archived>> {
    let ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.message_id.as_deref())
        .collect();
    let hashes: Vec<&str> = messages.iter().map(|m| m.content_hash.as_str()).collect();
    let mut by_id: HashMap<String, Slot> = HashMap::new();
    let mut by_hash: HashMap<String, Slot> = HashMap::new();
    for row in db.query(
        "SELECT id, message_id, content_hash FROM messages
         WHERE message_id = ANY($1) OR content_hash = ANY($2)",
        &[&ids, &hashes],
    )? {
        let id: i64 = row.try_get(0)?;
        if let Some(mid) = row.try_get::<_, Option<String>>(1)? {
            by_id.insert(mid, Slot::Known(id));
        }
        by_hash.insert(row.try_get(2)?, Slot::Known(id));
    }
    // As SQLite does it one message at a time: by Message-ID, then by content, counting the
    // messages this batch adds.
    let mut fresh: Vec<&NewMessage> = Vec::new();
    let mut slots = Vec::with_capacity(messages.len());
    for m in messages {
        let found = m
            .message_id
            .as_ref()
            .and_then(|mid| by_id.get(mid))
            .or_else(|| by_hash.get(&m.content_hash));
        let slot = match found {
            Some(Slot::Known(id)) => Slot::Known(*id),
            Some(Slot::Fresh(n, _)) => Slot::Fresh(*n, false),
            None => {
                let n = fresh.len();
                fresh.push(m);
                if let Some(mid) = &m.message_id {
                    by_id.insert(mid.clone(), Slot::Fresh(n, false));
                }
                by_hash.insert(m.content_hash.clone(), Slot::Fresh(n, false));
                Slot::Fresh(n, true)
            }
        };
        slots.push(slot);
    }
    let mut new_ids: Vec<i64> = Vec::with_capacity(fresh.len());
    let mut start = 0;
    while start < fresh.len() {
        // Batches of at most 500 messages or about 32 MB.
        let mut end = start;
        let mut bytes = 0usize;
        while end < fresh.len() && end - start < 500 && (end == start || bytes < 32 << 20) {
            let m = fresh[end];
            bytes += m.raw_zstd.len()
                + m.attachments
                    .iter()
                    .map(|a| a.data_zstd.len())
                    .sum::<usize>();
            end += 1;
        }
        let batch = &fresh[start..end];
        new_ids.extend(insert_messages(db, batch, now)?);
        insert_children(db, batch, &new_ids[start..end])?;
        start = end;
    }
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Known(id) => Ok(Archived::Duplicate(id)),
            Slot::Fresh(n, added) => {
                let id = *new_ids
                    .get(n)
                    .ok_or_else(|| bad("an archived message got no id"))?;
                Ok(if added {
                    Archived::Added(id)
                } else {
                    Archived::Duplicate(id)
                })
            }
        })
        .collect()
}

/// Inserts `batch` (no duplicates among them or in the archive); returns their ids in order.
fn insert_messages<C: GenericClient>(
    db: &mut Db<'_, C>,
    batch: &[&NewMessage],
    now: &str,
) -> Step<Vec<i64>> {
    let text = |f: fn(&NewMessage) -> Option<&str>| -> Vec<Option<&str>> {
        batch.iter().map(|m| f(m)).collect()
    };
    let hashes: Vec<&str> = batch.iter().map(|m| m.content_hash.as_str()).collect();
    let bulletins: Vec<Option<i64>> = batch.iter().map(|m| m.bulletin.map(i64::from)).collect();
    let sizes: Vec<i64> = batch.iter().map(|m| wide(m.size)).collect();
    let raws: Vec<&[u8]> = batch.iter().map(|m| m.raw_zstd.as_slice()).collect();
    let sources: Vec<&str> = batch.iter().map(|m| m.source.as_str()).collect();
    let rows = db.query(
        INSERT_MESSAGES,
        &[
            &text(|m| m.message_id.as_deref()),
            &hashes,
            &text(|m| m.date.as_deref()),
            &text(|m| m.sender.as_deref()),
            &text(|m| m.recipients.as_deref()),
            &text(|m| m.subject.as_deref()),
            &bulletins,
            &text(|m| m.flagged.as_deref()),
            &sizes,
            &raws,
            &sources,
            &now,
            &text(|m| m.folder.as_deref()),
            &batch
                .iter()
                .map(|m| m.copy.map(CopyKind::as_str))
                .collect::<Vec<_>>(),
        ],
    )?;
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for row in rows {
        ids.insert(row.try_get(1)?, row.try_get(0)?);
    }
    batch
        .iter()
        .map(|m| {
            ids.get(&m.content_hash)
                .copied()
                .ok_or_else(|| bad("an archived message got no id"))
        })
        .collect()
}

/// Sections, search rows and attachments of newly inserted messages.
fn insert_children<C: GenericClient>(
    db: &mut Db<'_, C>,
    batch: &[&NewMessage],
    ids: &[i64],
) -> Step<()> {
    let mut sections: (Vec<i64>, Vec<i64>, Vec<Option<&str>>) = Default::default();
    let mut search = Vec::new();
    let mut blobs: Vec<&NewAttachment> = Vec::new();
    let mut seen_blobs = HashSet::new();
    let mut links: Vec<(i64, i64, &NewAttachment)> = Vec::new();
    for (m, &id) in batch.iter().zip(ids) {
        // The whole message (what a search matches), then each section (where a hit is
        // shown), in the index's form of the text.
        if m.flagged.is_none() {
            search.push(SearchRow {
                subject: m.subject.as_deref().map(|s| index_form(s).into_owned()),
                sender: m.sender.clone(),
                heading: None,
                body: Some(index_form(m.text.as_deref().unwrap_or("")).into_owned()),
                message: Some(id),
                section: None,
            });
        }
        for (i, (heading, body)) in m.sections.iter().enumerate() {
            let position = wide(i as u64 + 1);
            sections.0.push(id);
            sections.1.push(position);
            sections.2.push(heading.as_deref());
            search.push(SearchRow {
                subject: m.subject.as_deref().map(|s| index_form(s).into_owned()),
                sender: m.sender.clone(),
                heading: heading.as_deref().map(|h| index_form(h).into_owned()),
                body: Some(index_form(body).into_owned()),
                message: Some(id),
                section: Some(position),
            });
        }
        for (i, a) in m.attachments.iter().enumerate() {
            if seen_blobs.insert(a.hash.as_str()) {
                blobs.push(a);
            }
            links.push((id, wide(i as u64), a));
        }
    }
    if !sections.0.is_empty() {
        db.execute(
            "INSERT INTO message_sections (message, position, heading)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])",
            &[&sections.0, &sections.1, &sections.2],
        )?;
    }
    insert_search_rows(db, &search)?;
    if !blobs.is_empty() {
        let hashes: Vec<&str> = blobs.iter().map(|a| a.hash.as_str()).collect();
        let types: Vec<&str> = blobs.iter().map(|a| a.content_type.as_str()).collect();
        let sizes: Vec<i64> = blobs.iter().map(|a| wide(a.size)).collect();
        let data: Vec<&[u8]> = blobs.iter().map(|a| a.data_zstd.as_slice()).collect();
        db.execute(
            "INSERT INTO attachments (hash, content_type, size, data_zstd)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])
             ON CONFLICT (hash) DO NOTHING",
            &[&hashes, &types, &sizes, &data],
        )?;
    }
    if !links.is_empty() {
        let messages: Vec<i64> = links.iter().map(|l| l.0).collect();
        let positions: Vec<i64> = links.iter().map(|l| l.1).collect();
        let hashes: Vec<&str> = links.iter().map(|l| l.2.hash.as_str()).collect();
        let names: Vec<Option<&str>> = links.iter().map(|l| l.2.filename.as_deref()).collect();
        let ids: Vec<Option<&str>> = links.iter().map(|l| l.2.content_id.as_deref()).collect();
        db.execute(
            "INSERT INTO message_attachments (message, position, hash, filename, content_id)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[])",
            &[&messages, &positions, &hashes, &names, &ids],
        )?;
    }
    Ok(())
}

/// PostgreSQL's `text` cannot hold NUL (SQLite's can, and mail sometimes has it): NULs in
/// a message's fields become U+FFFD. The raw message keeps every byte.
fn without_nul(m: &NewMessage) -> NewMessage {
    fn clean(s: &str) -> String {
        s.replace('\0', "\u{FFFD}")
    }
    fn clean_opt(s: &Option<String>) -> Option<String> {
        s.as_deref().map(clean)
    }
    NewMessage {
        message_id: clean_opt(&m.message_id),
        content_hash: clean(&m.content_hash),
        date: clean_opt(&m.date),
        sender: clean_opt(&m.sender),
        recipients: clean_opt(&m.recipients),
        subject: clean_opt(&m.subject),
        bulletin: m.bulletin,
        flagged: clean_opt(&m.flagged),
        size: m.size,
        raw_zstd: m.raw_zstd.clone(),
        folder: clean_opt(&m.folder),
        copy: m.copy,
        text: clean_opt(&m.text),
        sections: m
            .sections
            .iter()
            .map(|(h, t)| (clean_opt(h), clean(t)))
            .collect(),
        attachments: m
            .attachments
            .iter()
            .map(|a| NewAttachment {
                filename: clean_opt(&a.filename),
                content_id: clean_opt(&a.content_id),
                content_type: clean(&a.content_type),
                ..a.clone()
            })
            .collect(),
        source: clean(&m.source),
    }
}

impl Archive for PgStore {
    fn archive_add(&self, messages: &[NewMessage]) -> Result<Vec<Archived>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let messages: Vec<NewMessage> = messages.iter().map(without_nul).collect();
        let now = crate::clock::stamp();
        self.call("could not archive messages", move |db| {
            db.transaction(|tx| archive_add(tx, &messages, &now))
        })
    }

    fn archive_list(&self) -> Result<Vec<ArchiveEntry>> {
        self.call("could not list the archive", |db| {
            db.query(
                &format!(
                    "SELECT {ARCHIVE_COLUMNS} FROM messages
                     ORDER BY bulletin IS NULL, bulletin, date COLLATE \"C\" NULLS FIRST, id"
                ),
                &[],
            )?
            .iter()
            .map(archive_row)
            .collect()
        })
    }

    fn archive_message(&self, id: i64) -> Result<Option<ArchivedMessage>> {
        self.call("could not read an archived message", move |db| {
            let Some(row) = db.query_opt(
                &format!(
                    "SELECT {ARCHIVE_COLUMNS}, recipients, raw_zstd FROM messages WHERE id = $1"
                ),
                &[&id],
            )?
            else {
                return Ok(None);
            };
            let mut message = ArchivedMessage {
                entry: archive_row(&row)?,
                recipients: row.try_get(10)?,
                raw_zstd: row.try_get(11)?,
                ..ArchivedMessage::default()
            };
            message.sections = db
                .query(
                    "SELECT heading FROM message_sections WHERE message = $1 ORDER BY position",
                    &[&id],
                )?
                .iter()
                .map(|r| Ok(r.try_get(0)?))
                .collect::<Step<_>>()?;
            message.attachments = db
                .query(
                    "SELECT a.hash, l.filename, l.content_id, a.content_type, a.size
                     FROM message_attachments l JOIN attachments a ON a.hash = l.hash
                     WHERE l.message = $1 ORDER BY l.position",
                    &[&id],
                )?
                .iter()
                .map(|r| {
                    Ok(AttachmentInfo {
                        hash: r.try_get(0)?,
                        filename: r.try_get(1)?,
                        content_id: r.try_get(2)?,
                        content_type: r.try_get(3)?,
                        size: count_of(r.try_get(4)?),
                    })
                })
                .collect::<Step<_>>()?;
            Ok(Some(message))
        })
    }

    fn archive_bulletin(&self, number: u32) -> Result<Vec<ArchiveEntry>> {
        let number = i64::from(number);
        self.call("could not read the archive", move |db| {
            db.query(
                &format!(
                    "SELECT {ARCHIVE_COLUMNS} FROM messages WHERE bulletin = $1
                     ORDER BY date COLLATE \"C\" NULLS FIRST, id"
                ),
                &[&number],
            )?
            .iter()
            .map(archive_row)
            .collect()
        })
    }

    fn archive_by_message_id(&self, message_id: &str) -> Result<Option<ArchiveEntry>> {
        let message_id = message_id.to_string();
        self.call("could not read the archive", move |db| {
            db.query_opt(
                &format!("SELECT {ARCHIVE_COLUMNS} FROM messages WHERE message_id = $1"),
                &[&message_id],
            )?
            .map(|r| archive_row(&r))
            .transpose()
        })
    }

    fn archive_raw(&self, each: &mut dyn FnMut(i64, &[u8]) -> Result<()>) -> Result<()> {
        // A page at a time: the callback may use the store.
        let mut after = i64::MIN;
        loop {
            let rows = self.call("could not read the archive", move |db| {
                db.query(
                    "SELECT id, raw_zstd FROM messages WHERE id > $1 ORDER BY id LIMIT 64",
                    &[&after],
                )?
                .iter()
                .map(|r| Ok((r.try_get::<_, i64>(0)?, r.try_get::<_, Vec<u8>>(1)?)))
                .collect::<Step<Vec<_>>>()
            })?;
            let full = rows.len() == 64;
            for (id, raw) in rows {
                after = id;
                each(id, &raw)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn archive_attachment(&self, hash: &str) -> Result<Option<(String, Vec<u8>)>> {
        let hash = hash.to_string();
        self.call("could not read an attachment", move |db| {
            db.query_opt(
                "SELECT content_type, data_zstd FROM attachments WHERE hash = $1",
                &[&hash],
            )?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
        })
    }

    fn archive_search(
        &self,
        query: &Query,
        limit: usize,
        budget: Duration,
    ) -> Result<Vec<(ArchiveEntry, f64)>> {
        let tsquery = tsquery(query);
        let limit = wide(limit as u64);
        let millis = budget.as_millis().clamp(1, 3_600_000) as u64;
        let found = self.call("could not search the archive", move |db| {
            db.transaction(|tx| {
                // Prepared before the budget starts: a timeout that fires as the server
                // finishes preparing is reported after the driver has taken the statement
                // as prepared, so nobody reads it, and the search would then fail with
                // "current transaction is aborted" instead of saying it was cut short.
                tx.statement(SEARCH)?;
                tx.c.batch_execute(&format!("SET LOCAL statement_timeout = {millis}"))?;
                tx.query(SEARCH, &[&tsquery, &limit])?
                    .iter()
                    .map(|r| Ok((archive_row(r)?, -r.try_get::<_, f64>(10)?)))
                    .collect::<Step<Vec<_>>>()
            })
        });
        match found {
            Err(Error::Store { source, .. })
                if source
                    .downcast_ref::<postgres::Error>()
                    .and_then(postgres::Error::code)
                    == Some(&postgres::error::SqlState::QUERY_CANCELED) =>
            {
                Err(query.cut_short(budget))
            }
            other => other,
        }
    }

    fn archive_search_rows(&self, message: i64) -> Result<Vec<crate::store::SearchRow>> {
        self.call("could not read the archive's search rows", move |db| {
            db.query(
                "SELECT section, heading, body FROM archive_search
                 WHERE message = $1 ORDER BY section NULLS FIRST, id",
                &[&message],
            )?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, Option<i64>>(0)?.map(narrow).transpose()?,
                    r.try_get(1)?,
                    r.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
                ))
            })
            .collect()
        })
    }

    fn imap_state(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        let mailbox = mailbox.to_string();
        self.call("could not read the IMAP state", move |db| {
            db.query_opt(
                "SELECT uidvalidity, last_uid FROM imap_state WHERE mailbox = $1",
                &[&mailbox],
            )?
            .map(|r| Ok((narrow(r.try_get(0)?)?, narrow(r.try_get(1)?)?)))
            .transpose()
        })
    }

    fn set_imap_state(&self, mailbox: &str, uidvalidity: u32, last_uid: u32) -> Result<()> {
        let mailbox = mailbox.to_string();
        self.call("could not save the IMAP state", move |db| {
            db.execute(
                "INSERT INTO imap_state (mailbox, uidvalidity, last_uid) VALUES ($1, $2, $3)
                 ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
                &[&mailbox, &i64::from(uidvalidity), &i64::from(last_uid)],
            )?;
            Ok(())
        })
    }
}
