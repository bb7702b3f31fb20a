//! The archive flow: received mail (.eml files, folders of them, mbox, Maildir, IMAP) →
//! parse ([`parse`]) → the store (raw bytes compressed, fields and bodies in full-text
//! search, attachments by content hash) → search, export ([`mbox`]) and a static site
//! ([`site`]).
//!
//! Every message read ends up imported, counted as a duplicate (same Message-ID, or same
//! content without one), or kept raw and flagged; nothing aborts an import but an unusable
//! store.

pub mod imap;
pub mod mbox;
pub mod parse;
pub mod recognise;
pub mod sanitise;
pub mod search;
pub mod site;

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::store::{Archive, ArchiveEntry, Archived, CopyKind};
use recognise::Recogniser;

/// Messages stored together (one transaction).
const BATCH: usize = 500;
/// Messages handed to a parser thread at a time.
const CHUNK: usize = 64;

/// What an import did. `imported + duplicates + flagged` is every message read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Added to the archive.
    pub imported: u64,
    /// Already there.
    pub duplicates: u64,
    /// Kept raw because they could not be parsed.
    pub flagged: u64,
    /// Files that could not be read at all (path, error): not messages, not counted.
    #[serde(skip)]
    pub unreadable: Vec<(String, String)>,
}

impl Summary {
    /// Every message read.
    pub fn total(&self) -> u64 {
        self.imported + self.duplicates + self.flagged
    }
}

/// The copy that stands for a bulletin among the copies the archive holds of it: the copy
/// for everyone, else one mailout did not make (an older bulletin), else a member's copy,
/// else a proof.
pub fn best_copy<'a>(copies: &[&'a ArchiveEntry]) -> Option<&'a ArchiveEntry> {
    let rank = |e: &ArchiveEntry| match e.copy {
        Some(CopyKind::Everyone) => 0,
        None => 1,
        Some(CopyKind::Member) => 2,
        Some(CopyKind::Proof) => 3,
    };
    copies.iter().copied().min_by_key(|e| (rank(e), e.id))
}

/// Whether a bulletin copy may be published: the copy for everyone, or one mailout did not
/// make; never a proof or a member's own copy.
pub fn publishable(entry: &ArchiveEntry) -> bool {
    matches!(entry.copy, None | Some(CopyKind::Everyone))
}

/// What copies of one bulletin the archive holds, in words: `1 for everyone, 1 proof, 3
/// members'` with their ids.
pub fn copies_note(copies: &[&ArchiveEntry]) -> String {
    let ids = |kind: Option<CopyKind>| -> Vec<String> {
        copies
            .iter()
            .filter(|c| c.copy == kind)
            .map(|c| format!("#{}", c.id))
            .collect()
    };
    let mut parts = Vec::new();
    for (kind, one, many) in [
        (Some(CopyKind::Everyone), "for everyone", "for everyone"),
        (None, "received", "received"),
        (Some(CopyKind::Proof), "proof", "proofs"),
        (Some(CopyKind::Member), "member's", "members'"),
    ] {
        let ids = ids(kind);
        if !ids.is_empty() {
            let word = if ids.len() == 1 { one } else { many };
            parts.push(format!("{} {word}", ids.join(" ")));
        }
    }
    format!(
        "{}: {}",
        crate::text::count(copies.len() as u64, "copy", "copies"),
        parts.join("; ")
    )
}

/// One thing a source yields.
#[derive(Debug)]
pub enum Item {
    /// A message.
    Message {
        /// Where it came from (a path, `PATH#N` in an mbox, `KEY;UID=N` over IMAP).
        source: String,
        /// The mail folder it was in, if not the top (`Lists/Union`).
        folder: Option<String>,
        /// Its bytes as they came.
        raw: Vec<u8>,
    },
    /// A file that could not be read.
    Unreadable(String, String),
}

/// Parses and stores messages in batches; parsing runs on every core.
pub struct Importer<'a> {
    store: &'a dyn Archive,
    recogniser: &'a Recogniser,
    threads: usize,
    batch: Vec<(String, Option<String>, Vec<u8>)>,
    /// What has been done so far.
    pub summary: Summary,
    /// Ids of the messages imported so far (not duplicates), for callers that want them.
    pub added: Vec<i64>,
    progress: &'a dyn Fn(&Summary),
}

impl<'a> Importer<'a> {
    /// An importer into `store`; `progress` is called after each batch.
    pub fn new(
        store: &'a dyn Archive,
        recogniser: &'a Recogniser,
        progress: &'a dyn Fn(&Summary),
    ) -> Importer<'a> {
        Importer {
            store,
            recogniser,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            batch: Vec::with_capacity(BATCH),
            summary: Summary::default(),
            added: Vec::new(),
            progress,
        }
    }

    /// Takes one item; stores a batch when one is full.
    pub fn add(&mut self, item: Item) -> Result<()> {
        match item {
            Item::Message {
                source,
                folder,
                raw,
            } => {
                self.batch.push((source, folder, raw));
                if self.batch.len() >= BATCH {
                    self.flush()?;
                }
            }
            Item::Unreadable(source, error) => {
                tracing::warn!("could not read {source}: {error}");
                self.summary.unreadable.push((source, error));
            }
        }
        Ok(())
    }

    /// Stores what is waiting.
    pub fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let chunk = batch.len().div_ceil(self.threads).max(1);
        let recogniser = self.recogniser;
        let parsed: Vec<crate::store::NewMessage> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(source, folder, raw)| {
                                parse::parse(raw, source, folder.as_deref(), recogniser)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        if parsed.len() != batch.len() {
            return Err(Error::Internal(
                "a message could not be parsed (a parser thread failed)".into(),
            ));
        }
        self.store_parsed(&parsed)?;
        self.batch = batch;
        self.batch.clear();
        Ok(())
    }

    /// Stores messages parsed elsewhere, in one transaction, and counts them.
    fn store_parsed(&mut self, parsed: &[crate::store::NewMessage]) -> Result<()> {
        if parsed.is_empty() {
            return Ok(());
        }
        let outcomes = self.store.archive_add(parsed)?;
        for (message, outcome) in parsed.iter().zip(outcomes) {
            match outcome {
                Archived::Duplicate(_) => self.summary.duplicates += 1,
                Archived::Added(id) if message.flagged.is_some() => {
                    self.summary.flagged += 1;
                    self.added.push(id);
                }
                Archived::Added(id) => {
                    self.summary.imported += 1;
                    self.added.push(id);
                }
            }
        }
        (self.progress)(&self.summary);
        Ok(())
    }

    /// Stores the rest and returns the summary.
    pub fn finish(mut self) -> Result<Summary> {
        self.flush()?;
        Ok(self.summary)
    }
}

/// Imports every message under `paths` (files, mbox files, Maildirs, folders of these).
/// One thread reads files, one per core parses, and this one stores: parsing the next
/// messages overlaps storing the last.
pub fn import_paths(
    store: &dyn Archive,
    recogniser: &Recogniser,
    paths: &[PathBuf],
    progress: &dyn Fn(&Summary),
) -> Result<Summary> {
    for path in paths {
        if !path.exists() {
            return Err(Error::Read {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
    }
    // One core stores (the index is written by one thread); the others parse.
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .saturating_sub(1)
        .max(1);
    let (raw_tx, raw_rx) = mpsc::sync_channel::<(u64, Vec<Item>)>(threads * 2);
    let raw_rx = std::sync::Mutex::new(raw_rx);
    let (parsed_tx, parsed_rx) = mpsc::sync_channel::<(u64, Vec<Parsed>)>(threads * 2);
    let mut importer = Importer::new(store, recogniser, progress);
    std::thread::scope(|scope| -> Result<()> {
        let reader = std::thread::Builder::new().name("read".into());
        // The paths that held nothing at all, to say so.
        let spawned = reader.spawn_scoped(scope, move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut seq = 0;
            let mut empty = Vec::new();
            for path in paths {
                let mut found = false;
                let going = read_path(path, &mut |item| {
                    found = true;
                    chunk.push(item);
                    if chunk.len() < CHUNK {
                        return true;
                    }
                    seq += 1;
                    raw_tx.send((seq, std::mem::take(&mut chunk))).is_ok()
                });
                if !going {
                    return empty;
                }
                if !found {
                    empty.push(path.clone());
                }
            }
            if !chunk.is_empty() {
                let _ = raw_tx.send((seq + 1, chunk));
            }
            empty
        });
        let reader = spawned.map_err(|source| Error::Io {
            context: "could not start a reader thread".into(),
            path: None,
            source,
        })?;
        for _ in 0..threads {
            let parsed_tx = parsed_tx.clone();
            let raw_rx = &raw_rx;
            let parser = std::thread::Builder::new().name("parse".into());
            let spawned = parser.spawn_scoped(scope, move || {
                loop {
                    let next = raw_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok((seq, items))) = next else { return };
                    let parsed = items
                        .into_iter()
                        .map(|item| match item {
                            Item::Message {
                                source,
                                folder,
                                raw,
                            } => Parsed::Message(Box::new(parse::parse(
                                &raw,
                                &source,
                                folder.as_deref(),
                                recogniser,
                            ))),
                            Item::Unreadable(source, error) => Parsed::Unreadable(source, error),
                        })
                        .collect();
                    if parsed_tx.send((seq, parsed)).is_err() {
                        return;
                    }
                }
            });
            spawned.map_err(|source| Error::Io {
                context: "could not start a parser thread".into(),
                path: None,
                source,
            })?;
        }
        drop(parsed_tx);
        // Store in the order read, whatever order the parsers finish in.
        let mut waiting = std::collections::BTreeMap::new();
        let mut next = 1;
        let mut batch = Vec::with_capacity(BATCH);
        for (seq, parsed) in parsed_rx {
            waiting.insert(seq, parsed);
            while let Some(parsed) = waiting.remove(&next) {
                next += 1;
                for p in parsed {
                    match p {
                        Parsed::Message(m) => batch.push(*m),
                        Parsed::Unreadable(source, error) => {
                            importer.add(Item::Unreadable(source, error))?
                        }
                    }
                }
                if batch.len() >= BATCH {
                    importer.store_parsed(&batch)?;
                    batch.clear();
                }
            }
        }
        importer.store_parsed(&batch)?;
        let empty = reader.join().unwrap_or_default();
        match empty.first() {
            Some(path) => Err(Error::Usage(format!(
                "`{}` holds no mail: no .eml or mbox file and no Maildir was found there",
                path.display()
            ))),
            None => Ok(()),
        }
    })?;
    importer.finish()
}

enum Parsed {
    Message(Box<crate::store::NewMessage>),
    Unreadable(String, String),
}

/// Reads `path`, calling `each` with every message; stops when `each` returns false.
/// Returns false if it was stopped. Folders are walked whole: Maildirs (their `cur/` and
/// `new/`), Maildir++ subfolders (`.Lists.Union/` is folder `Lists/Union`), nested folders
/// in the fs layout (`Lists/Union/cur/`), and loose message and mbox files beside them;
/// each message carries the folder it was found in, relative to `path`.
pub fn read_path(path: &Path, each: &mut dyn FnMut(Item) -> bool) -> bool {
    walk(path, None, each)
}

/// Joins a folder name and a sub-folder's.
fn folder_join(folder: Option<&str>, name: &str) -> Option<String> {
    Some(match folder {
        Some(f) => format!("{f}/{name}"),
        None => name.to_string(),
    })
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

/// Files a mail program keeps beside its folders, which are not mail.
fn is_metadata(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.starts_with('.')
        || name.starts_with("dovecot")
        || name.starts_with("courier")
        || name == "subscriptions"
        || name == "maildirfolder"
        || name.ends_with(".index")
        || name.ends_with(".msf")
        || name.ends_with(".lock")
}

fn walk(path: &Path, folder: Option<&str>, each: &mut dyn FnMut(Item) -> bool) -> bool {
    let label = path.display().to_string();
    if !path.is_dir() {
        return read_file(path, folder, each);
    }
    if is_maildir(path) {
        return read_maildir(path, folder, each);
    }
    let entries = match list(path) {
        Ok(e) => e,
        Err(e) => return each(Item::Unreadable(label, e.to_string())),
    };
    for entry in entries {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let going = if entry.is_dir() {
            match name.strip_prefix('.') {
                // A Maildir++ folder outside a Maildir root: still a folder of mail.
                Some(dotted) if is_maildir(&entry) => read_maildir(
                    &entry,
                    folder_join(folder, &dotted.replace('.', "/")).as_deref(),
                    each,
                ),
                Some(_) => true,
                None => walk(&entry, folder_join(folder, &name).as_deref(), each),
            }
        } else if is_metadata(&entry) {
            true
        } else {
            read_file(&entry, folder, each)
        };
        if !going {
            return false;
        }
    }
    true
}

/// A Maildir: the messages in `cur/` and `new/`, then its subfolders: Maildir++ (`.Name/`,
/// `.Name.Sub/`) and the fs layout (`Name/`, walked whole).
fn read_maildir(dir: &Path, folder: Option<&str>, each: &mut dyn FnMut(Item) -> bool) -> bool {
    for sub in ["cur", "new"] {
        let part = dir.join(sub);
        if !part.is_dir() {
            continue;
        }
        let files = match list(&part) {
            Ok(f) => f,
            Err(e) => {
                if !each(Item::Unreadable(part.display().to_string(), e.to_string())) {
                    return false;
                }
                continue;
            }
        };
        for file in files.into_iter().filter(|f| f.is_file() && !hidden(f)) {
            let item = match std::fs::read(&file) {
                Ok(raw) => Item::Message {
                    source: file.display().to_string(),
                    folder: folder.map(str::to_string),
                    raw,
                },
                Err(e) => Item::Unreadable(file.display().to_string(), e.to_string()),
            };
            if !each(item) {
                return false;
            }
        }
    }
    let Ok(entries) = list(dir) else {
        return true;
    };
    for entry in entries {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if ["cur", "new", "tmp"].contains(&name.as_str()) {
            continue;
        }
        if !entry.is_dir() {
            // Loose message files beside the folders (not the mail program's own files).
            if !is_metadata(&entry) && !read_file(&entry, folder, each) {
                return false;
            }
            continue;
        }
        let going = match name.strip_prefix('.') {
            Some(dotted) if is_maildir(&entry) && !dotted.is_empty() => read_maildir(
                &entry,
                folder_join(folder, &dotted.replace('.', "/")).as_deref(),
                each,
            ),
            Some(_) => true,
            None => walk(&entry, folder_join(folder, &name).as_deref(), each),
        };
        if !going {
            return false;
        }
    }
    true
}

fn hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

/// A file: an mbox when it starts with a `From ` line (its messages are in a folder named
/// after it), otherwise one message.
fn read_file(path: &Path, folder: Option<&str>, each: &mut dyn FnMut(Item) -> bool) -> bool {
    let label = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return each(Item::Unreadable(label, e.to_string())),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match reader.get_mut().read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return each(Item::Unreadable(label, e.to_string())),
        }
    }
    let rest = std::io::Cursor::new(head[..got].to_vec()).chain(reader);
    if &head[..got] == b"From " && !looks_like_single_message(path) {
        let name = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let folder = folder_join(folder, &name);
        let mut n = 0;
        for message in mbox::MboxReader::new(BufReader::new(rest)) {
            n += 1;
            let item = match message {
                Ok(m) => Item::Message {
                    source: format!("{label}#{n}"),
                    folder: folder.clone(),
                    raw: m.raw,
                },
                Err(e) => Item::Unreadable(format!("{label}#{n}"), e.to_string()),
            };
            if !each(item) {
                return false;
            }
        }
        true
    } else {
        let mut raw = Vec::new();
        let mut rest = rest;
        match rest.read_to_end(&mut raw) {
            Ok(_) => each(Item::Message {
                source: label,
                folder: folder.map(str::to_string),
                raw,
            }),
            Err(e) => each(Item::Unreadable(label, e.to_string())),
        }
    }
}

/// An `.eml` file that starts with an mbox envelope line is still one message.
fn looks_like_single_message(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("eml"))
}

/// Imports the new mail of the IMAP mailbox at `url` (see [`imap`]), remembering where it
/// stopped after every batch; the IMAP client runs on `runtime`.
pub fn import_imap(
    store: &dyn Archive,
    recogniser: &Recogniser,
    url: &str,
    progress: &dyn Fn(&Summary),
    runtime: &Runtime,
) -> Result<Summary> {
    let mut importer = Importer::new(store, recogniser, progress);
    let folder = imap::ImapUrl::parse(url)?.mailbox;
    let folder = (!folder.eq_ignore_ascii_case("INBOX")).then_some(folder);
    fetch_imap(store, url, None, runtime, &mut |batch| {
        for (source, raw) in batch {
            importer.add(Item::Message {
                source,
                folder: folder.clone(),
                raw,
            })?;
        }
        importer.flush()
    })?;
    importer.finish()
}

/// Fetches the mail of the IMAP mailbox at `url` not seen before (for `purpose`, when it
/// is not the archive: each purpose remembers its own place), calling `batch` with each
/// batch of (source, raw bytes); the place is remembered after each batch `batch` took.
fn fetch_imap(
    store: &dyn Archive,
    url: &str,
    purpose: Option<&str>,
    runtime: &Runtime,
    batch: &mut dyn FnMut(Vec<(String, Vec<u8>)>) -> Result<()>,
) -> Result<()> {
    let url = imap::ImapUrl::parse(url)?;
    let password = std::env::var(imap::PASSWORD_ENV).map_err(|_| {
        Error::Usage(format!(
            "IMAP needs the password of `{}` in the environment variable `{}`",
            url.user,
            imap::PASSWORD_ENV
        ))
    })?;
    let key = match purpose {
        Some(purpose) => format!("{purpose}:{}", url.key()),
        None => url.key(),
    };
    let state = store.imap_state(&key)?;
    runtime.block_on(imap::fetch_new(
        &url,
        &password,
        state,
        &mut |fetched, validity| {
            let last = fetched.iter().map(|(uid, _)| *uid).max();
            batch(
                fetched
                    .into_iter()
                    .map(|(uid, raw)| (format!("{key};UID={uid}"), raw))
                    .collect(),
            )?;
            if let Some(last) = last {
                store.set_imap_state(&key, validity, last)?;
            }
            Ok(())
        },
    ))??;
    Ok(())
}

/// Reads mail for a purpose other than archiving it (bounces, unsubscribe requests): calls
/// `each` with every message under `paths` (files, mbox files, Maildirs, folders of these)
/// and, with `imap`, every message of that mailbox not yet seen for `purpose` (the UID
/// state is remembered per purpose, after each batch; the IMAP client runs on `runtime`).
/// Files that cannot be read go to `unreadable`; a path that does not exist is an error.
pub fn read_mail(
    store: &dyn Archive,
    paths: &[PathBuf],
    imap: Option<&str>,
    runtime: &Runtime,
    purpose: &str,
    each: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    unreadable: &mut dyn FnMut(String, String),
) -> Result<()> {
    for path in paths {
        if !path.exists() {
            return Err(Error::Usage(format!("`{}` does not exist", path.display())));
        }
        let mut failed = None;
        read_path(path, &mut |item| match item {
            Item::Message { source, raw, .. } => match each(&source, &raw) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
            Item::Unreadable(source, error) => {
                unreadable(source, error);
                true
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    if let Some(url) = imap {
        fetch_imap(store, url, Some(purpose), runtime, &mut |batch| {
            batch.iter().try_for_each(|(source, raw)| each(source, raw))
        })?;
    }
    Ok(())
}

/// Writes every archived message, raw, to an mboxrd file at `path`; returns how many.
pub fn export_mbox(store: &dyn Archive, path: &Path) -> Result<u64> {
    let file = std::fs::File::create(path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let mut writer = mbox::MboxWriter::new(std::io::BufWriter::new(file));
    let date = crate::clock::now()
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string();
    let mut count = 0;
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    store.archive_raw(&mut |_, compressed| {
        let raw = parse::decompress(compressed).map_err(write_error)?;
        writer
            .write("MAILER-DAEMON", &date, &raw)
            .map_err(write_error)?;
        count += 1;
        Ok(())
    })?;
    writer.finish().map_err(write_error)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(path: &Path) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        read_path(path, &mut |item| {
            match item {
                Item::Message { source, folder, .. } => out.push((source, folder)),
                Item::Unreadable(s, _) => out.push((s, Some("unreadable".into()))),
            }
            true
        });
        out
    }

    #[test]
    fn finds_eml_mbox_and_maildir() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.eml"), "Subject: a\n\nx\n").unwrap();
        std::fs::write(
            d.join("b.mbox"),
            "From x y\nSubject: 1\n\n1\n\nFrom x y\nSubject: 2\n\n2\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("md/cur")).unwrap();
        std::fs::create_dir_all(d.join("md/new")).unwrap();
        std::fs::create_dir_all(d.join("md/.Sent/cur")).unwrap();
        std::fs::write(d.join("md/cur/1:2,S"), "Subject: c\n\nc\n").unwrap();
        std::fs::write(d.join("md/new/2"), "Subject: d\n\nd\n").unwrap();
        std::fs::write(d.join("md/.Sent/cur/3"), "Subject: e\n\ne\n").unwrap();
        std::fs::write(d.join(".hidden"), "x").unwrap();
        // Maildir++ nested, the fs layout nested, loose files beside folders, and the files
        // a mail program keeps beside its folders.
        std::fs::create_dir_all(d.join("md/.Lists.Union/cur")).unwrap();
        std::fs::write(d.join("md/.Lists.Union/cur/4"), "Subject: f\n\nf\n").unwrap();
        std::fs::create_dir_all(d.join("fs/Work/Branch/new")).unwrap();
        std::fs::write(d.join("fs/Work/Branch/new/5"), "Subject: g\n\ng\n").unwrap();
        std::fs::write(d.join("fs/Work/loose.eml"), "Subject: h\n\nh\n").unwrap();
        std::fs::write(d.join("fs/Work/dovecot-uidlist"), "3 V1 N2\n").unwrap();
        std::fs::write(d.join("md/subscriptions"), "Lists\n").unwrap();
        let found: Vec<(String, Option<String>)> = collect(d)
            .into_iter()
            .map(|(s, f)| {
                (
                    s.trim_start_matches(&d.display().to_string()).to_string(),
                    f,
                )
            })
            .collect();
        let folder = |f: &str| Some(f.to_string());
        assert_eq!(
            found,
            [
                ("/a.eml".to_string(), None),
                ("/b.mbox#1".to_string(), folder("b")),
                ("/b.mbox#2".to_string(), folder("b")),
                (
                    "/fs/Work/Branch/new/5".to_string(),
                    folder("fs/Work/Branch")
                ),
                ("/fs/Work/loose.eml".to_string(), folder("fs/Work")),
                ("/md/cur/1:2,S".to_string(), folder("md")),
                ("/md/new/2".to_string(), folder("md")),
                (
                    "/md/.Lists.Union/cur/4".to_string(),
                    folder("md/Lists/Union")
                ),
                ("/md/.Sent/cur/3".to_string(), folder("md/Sent")),
            ]
        );
        // A Maildir given itself: its own messages are at the top.
        let top: Vec<Option<String>> = collect(&d.join("md")).into_iter().map(|(_, f)| f).collect();
        assert_eq!(top, [None, None, folder("Lists/Union"), folder("Sent")]);
    }
}
