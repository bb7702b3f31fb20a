//! The archive on SQLite: messages, attachments, the FTS5 search index and IMAP state.

use rusqlite::{OptionalExtension, params};

use crate::error::Result;
use crate::search::query::{Field, Node, Query};
use crate::search::words::index_form;
use crate::store::schema::ARCHIVE_COLUMNS;
use crate::store::{
    Archive, ArchiveEntry, Archived, ArchivedMessage, AttachmentInfo, CopyKind, NewMessage,
};

use super::SqliteStore;

impl Archive for SqliteStore {
    fn archive_add(&self, messages: &[NewMessage]) -> Result<Vec<Archived>> {
        let fail = |e| self.fail("could not archive messages", e);
        let now = crate::clock::stamp();
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        let mut out = Vec::with_capacity(messages.len());
        {
            let mut by_id = tx
                .prepare_cached("SELECT id FROM messages WHERE message_id = ?1")
                .map_err(fail)?;
            let mut by_hash = tx
                .prepare_cached("SELECT id FROM messages WHERE content_hash = ?1")
                .map_err(fail)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO messages (message_id, content_hash, date, sender, recipients, subject,
                       bulletin, flagged, size, raw_zstd, source, imported_at, folder, copy_kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(fail)?;
            let mut section = tx
                .prepare_cached(
                    "INSERT INTO message_sections (message, position, heading)
                     VALUES (?1, ?2, ?3)",
                )
                .map_err(fail)?;
            let mut search = tx
                .prepare_cached(
                    "INSERT INTO archive_search (rowid, subject, sender, heading, body, message, section)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(fail)?;
            let mut blob = tx
                .prepare_cached(
                    "INSERT INTO attachments (hash, content_type, size, data_zstd) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(hash) DO NOTHING",
                )
                .map_err(fail)?;
            let mut link = tx
                .prepare_cached(
                    "INSERT INTO message_attachments (message, position, hash, filename, content_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(fail)?;
            for m in messages {
                let existing: Option<i64> = match &m.message_id {
                    Some(mid) => by_id
                        .query_row([mid], |r| r.get(0))
                        .optional()
                        .map_err(fail)?,
                    None => None,
                };
                let existing = match existing {
                    Some(id) => Some(id),
                    None => by_hash
                        .query_row([&m.content_hash], |r| r.get(0))
                        .optional()
                        .map_err(fail)?,
                };
                if let Some(id) = existing {
                    out.push(Archived::Duplicate(id));
                    continue;
                }
                insert
                    .execute(params![
                        m.message_id,
                        m.content_hash,
                        m.date,
                        m.sender,
                        m.recipients,
                        m.subject,
                        m.bulletin,
                        m.flagged,
                        m.size as i64,
                        m.raw_zstd,
                        m.source,
                        now,
                        m.folder,
                        m.copy.map(CopyKind::as_str)
                    ])
                    .map_err(fail)?;
                let id = tx.last_insert_rowid();
                // The whole message (what a search matches), then each section (where a
                // hit is shown), in the index's form of the text.
                if m.flagged.is_none() {
                    search
                        .execute(params![
                            search_rowid(id, None),
                            m.subject.as_deref().map(index_form),
                            m.sender,
                            None::<String>,
                            index_form(m.text.as_deref().unwrap_or("")),
                            id,
                            None::<i64>
                        ])
                        .map_err(fail)?;
                }
                for (i, (heading, body)) in m.sections.iter().enumerate() {
                    let position = i as i64 + 1;
                    section
                        .execute(params![id, position, heading])
                        .map_err(fail)?;
                    if position >= SECTION_SPAN {
                        // The whole message's row still finds it.
                        continue;
                    }
                    search
                        .execute(params![
                            search_rowid(id, Some(position)),
                            m.subject.as_deref().map(index_form),
                            m.sender,
                            heading.as_deref().map(index_form),
                            index_form(body),
                            id,
                            position
                        ])
                        .map_err(fail)?;
                }
                for (i, a) in m.attachments.iter().enumerate() {
                    blob.execute(params![a.hash, a.content_type, a.size as i64, a.data_zstd])
                        .map_err(fail)?;
                    link.execute(params![id, i as i64, a.hash, a.filename, a.content_id])
                        .map_err(fail)?;
                }
                out.push(Archived::Added(id));
            }
        }
        tx.commit().map_err(fail)?;
        Ok(out)
    }

    fn archive_list(&self) -> Result<Vec<ArchiveEntry>> {
        let fail = |e| self.fail("could not list the archive", e);
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM messages
                 ORDER BY bulletin IS NULL, bulletin, date, id"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([], archive_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn archive_message(&self, id: i64) -> Result<Option<ArchivedMessage>> {
        let fail = |e| self.fail("could not read an archived message", e);
        let found = self
            .conn
            .query_row(
                &format!(
                    "SELECT {ARCHIVE_COLUMNS}, recipients, raw_zstd FROM messages WHERE id = ?1"
                ),
                [id],
                |r| {
                    Ok(ArchivedMessage {
                        entry: archive_row(r)?,
                        recipients: r.get(10)?,
                        raw_zstd: r.get(11)?,
                        ..ArchivedMessage::default()
                    })
                },
            )
            .optional()
            .map_err(fail)?;
        let Some(mut message) = found else {
            return Ok(None);
        };
        let mut sections = self
            .conn
            .prepare_cached(
                "SELECT heading FROM message_sections WHERE message = ?1 ORDER BY position",
            )
            .map_err(fail)?;
        message.sections = sections
            .query_map([id], |r| r.get(0))
            .map_err(fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(fail)?;
        let mut attachments = self
            .conn
            .prepare_cached(
                "SELECT a.hash, l.filename, l.content_id, a.content_type, a.size
                 FROM message_attachments l JOIN attachments a ON a.hash = l.hash
                 WHERE l.message = ?1 ORDER BY l.position",
            )
            .map_err(fail)?;
        message.attachments = attachments
            .query_map([id], |r| {
                Ok(AttachmentInfo {
                    hash: r.get(0)?,
                    filename: r.get(1)?,
                    content_id: r.get(2)?,
                    content_type: r.get(3)?,
                    size: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(fail)?;
        Ok(Some(message))
    }

    fn archive_bulletin(&self, number: u32) -> Result<Vec<ArchiveEntry>> {
        let fail = |e| self.fail("could not read the archive", e);
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM messages WHERE bulletin = ?1 ORDER BY date, id"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([number], archive_row).map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn archive_by_message_id(&self, message_id: &str) -> Result<Option<ArchiveEntry>> {
        self.conn
            .query_row(
                &format!("SELECT {ARCHIVE_COLUMNS} FROM messages WHERE message_id = ?1"),
                [message_id],
                archive_row,
            )
            .optional()
            .map_err(|e| self.fail("could not read the archive", e))
    }

    fn archive_raw(&self, each: &mut dyn FnMut(i64, &[u8]) -> Result<()>) -> Result<()> {
        let fail = |e| self.fail("could not read the archive", e);
        let mut statement = self
            .conn
            .prepare("SELECT id, raw_zstd FROM messages ORDER BY id")
            .map_err(fail)?;
        let mut rows = statement.query([]).map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let id: i64 = row.get(0).map_err(fail)?;
            let raw = row
                .get_ref(1)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(fail)?;
            each(id, raw)?;
        }
        Ok(())
    }

    fn archive_attachment(&self, hash: &str) -> Result<Option<(String, Vec<u8>)>> {
        self.conn
            .query_row(
                "SELECT content_type, data_zstd FROM attachments WHERE hash = ?1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.fail("could not read an attachment", e))
    }

    fn archive_search(
        &self,
        query: &Query,
        limit: usize,
        budget: std::time::Duration,
    ) -> Result<Vec<(ArchiveEntry, f64)>> {
        let text = fts5(query);
        // The time budget: past it, the search is interrupted.
        let interrupt = self.conn.get_interrupt_handle();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if wait.recv_timeout(budget) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                interrupt.interrupt();
            }
        });
        // Rank by the index alone (a row's number says whether it is a whole message and
        // which), then read the few messages kept: reading every match's columns would cost
        // far more than the search.
        let found: rusqlite::Result<Vec<(i64, f64)>> = self
            .conn
            .prepare_cached(
                "SELECT rowid, bm25(archive_search, 6.0, 2.0, 4.0, 1.0) AS rank
                 FROM archive_search WHERE archive_search MATCH ?1 AND rowid > 0
                 ORDER BY rank, rowid LIMIT ?2",
            )
            .and_then(|mut st| {
                st.query_map(params![text, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            });
        let _ = done.send(());
        let _ = watchdog.join();
        let ranked = match found {
            Ok(rows) => rows,
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                return Err(query.cut_short(budget));
            }
            Err(e) => return Err(self.fail("could not search the archive", e)),
        };
        let fail = |e| self.fail("could not search the archive", e);
        let mut entry = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM messages WHERE id = ?1"
            ))
            .map_err(fail)?;
        let mut out = Vec::with_capacity(ranked.len());
        for (id, rank) in ranked {
            if let Some(e) = entry
                .query_row([id], archive_row)
                .optional()
                .map_err(fail)?
            {
                out.push((e, rank));
            }
        }
        Ok(out)
    }

    fn archive_search_rows(&self, message: i64) -> Result<Vec<crate::store::SearchRow>> {
        let fail = |e| self.fail("could not read the archive's search rows", e);
        let mut rows = Vec::new();
        let whole: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM archive_search WHERE rowid = ?1",
                [search_rowid(message, None)],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?
            .flatten();
        rows.push((None, None, whole.unwrap_or_default()));
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT ms.position, ms.heading, s.body FROM message_sections ms
                 JOIN archive_search s ON s.rowid = -(ms.message * ?2 + ms.position)
                 WHERE ms.message = ?1 ORDER BY ms.position",
            )
            .map_err(fail)?;
        let sections = statement
            .query_map(params![message, SECTION_SPAN], |r| {
                Ok((
                    Some(r.get::<_, i64>(0)? as u32),
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                ))
            })
            .map_err(fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(fail)?;
        rows.extend(sections);
        Ok(rows)
    }

    fn imap_state(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        self.conn
            .query_row(
                "SELECT uidvalidity, last_uid FROM imap_state WHERE mailbox = ?1",
                [mailbox],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.fail("could not read the IMAP state", e))
    }

    fn set_imap_state(&self, mailbox: &str, uidvalidity: u32, last_uid: u32) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO imap_state (mailbox, uidvalidity, last_uid) VALUES (?1, ?2, ?3)
                 ON CONFLICT(mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
                params![mailbox, uidvalidity, last_uid],
            )
            .map(drop)
            .map_err(|e| self.fail("could not save the IMAP state", e))
    }
}

/// How many section rows each message's numbers leave room for in the search index.
pub(super) const SECTION_SPAN: i64 = 1 << 20;

/// A search-index row's number: the message's id for its whole text, and a negative number
/// for each section, so a search can keep whole messages and know which without reading
/// the rows.
pub(super) fn search_rowid(message: i64, section: Option<i64>) -> i64 {
    match section {
        None => message,
        Some(position) => -(message * SECTION_SPAN + position),
    }
}

fn archive_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ArchiveEntry> {
    Ok(ArchiveEntry {
        id: row.get(0)?,
        message_id: row.get(1)?,
        date: row.get(2)?,
        sender: row.get(3)?,
        subject: row.get(4)?,
        bulletin: row.get(5)?,
        flagged: row.get(6)?,
        size: row.get::<_, i64>(7)? as u64,
        folder: row.get(8)?,
        copy: row
            .get::<_, Option<String>>(9)?
            .as_deref()
            .and_then(CopyKind::parse),
    })
}

/// `query` as an FTS5 `MATCH` expression. Every term is a quoted string (FTS5 reads nothing
/// in it as syntax): `"w1 w2" *` for a phrase ending in a prefix, `subject : "w"` for a
/// field; `AND`, `OR` and `NOT` as the tree says.
fn fts5(query: &Query) -> String {
    fn term(t: &crate::search::query::Term) -> String {
        let mut out = String::new();
        match t.field {
            Some(Field::Subject) => out.push_str("subject : "),
            Some(Field::From) => out.push_str("sender : "),
            None => {}
        }
        out.push('"');
        out.push_str(&t.words.join(" "));
        out.push('"');
        if t.prefix {
            out.push_str(" *");
        }
        out
    }
    fn node(n: &Node) -> String {
        match n {
            Node::Term(t) => term(t),
            Node::Or(parts) => format!(
                "({})",
                parts.iter().map(node).collect::<Vec<_>>().join(" OR ")
            ),
            Node::And(parts) => {
                let positive: Vec<String> = parts
                    .iter()
                    .filter(|p| !matches!(p, Node::Not(_)))
                    .map(node)
                    .collect();
                let mut out = format!("({})", positive.join(" AND "));
                for p in parts {
                    if let Node::Not(inner) = p {
                        out = format!("({out} NOT {})", node(inner));
                    }
                }
                out
            }
            // A lone NOT never reaches here: the parser refuses it.
            Node::Not(inner) => node(inner),
        }
    }
    node(&query.root)
}
