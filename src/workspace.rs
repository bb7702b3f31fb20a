//! The organisation's folder as mailout sees it: its config, templates and store. The
//! command line calls these methods; each is one user-facing job (`new`, `check`, `build`).

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bulletin::Bulletin;
use crate::clock;
use crate::config::{self, Config};
use crate::diagnostic::{self, Diagnostic};
use crate::edition::Edition;
use crate::env_file;
use crate::error::{Error, Result};
use crate::inputs::Inputs;
use crate::lint;
use crate::message::Mailing;
use crate::numbering;
use crate::outbox::{self, Built};
use crate::recipient::{MEMBER_FIELDS, Recipient};
use crate::render::Renderer;
use crate::render::templates::{self, Templates};
use crate::report::Reporter;
use crate::store::Selection;
use crate::store::{self, EditionRecord, Store};
use crate::token::TokenKey;

/// Global options: where the config and the store are, and where the library's lines go.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--config`; `None` looks for `config/mailout.toml` and falls back to defaults.
    pub config: Option<PathBuf>,
    /// `--store`; `None` uses `[store] path`.
    pub store: Option<String>,
    /// Who hears the warnings, waits and send progress of commands run with these options
    /// (by default, nobody).
    pub report: Reporter,
}

impl Options {
    /// Whether a command run with these options uses the built-in demo organisation: no
    /// `--config` was given and there is no `config/mailout.toml` (the same test
    /// [`Config::load`] makes).
    pub fn uses_demo(&self) -> bool {
        self.config.is_none()
            && matches!(
                std::fs::metadata(config::DEFAULT_PATH),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            )
    }
}

/// What a command does with the store, which decides whether a missing SQLite file is
/// created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Records something: the store is created on first use.
    Write,
    /// Composes (`new`, `build`): created on first use, except in the demo, where a missing
    /// store is not created and an empty one in memory stands in.
    Draft,
    /// Only reads: an existing SQLite file is opened read-only; a missing one is read as
    /// an empty store and not created.
    ReadOnly,
}

/// The folder mailout runs in.
pub struct Workspace {
    /// The configuration.
    pub config: Config,
    /// The templates (built in, with the folder's overrides).
    pub templates: Templates,
    store_location: String,
    store: OnceCell<Box<dyn Store>>,
    base: PathBuf,
    access: Access,
    token_secret: OnceCell<Option<String>>,
    report: Reporter,
    /// Bulletins and attachments, each read once per command.
    inputs: Inputs,
    /// Bulletins parsed, by path.
    parsed: RefCell<HashMap<PathBuf, Arc<Parsed>>>,
    /// What `check` (true) or `validate` (false) found, by path.
    inspected: RefCell<HashMap<(PathBuf, bool), Checked>>,
    /// Editions made, by path.
    editions: RefCell<HashMap<PathBuf, Edition>>,
}

/// A bulletin file as read and parsed: the bulletin is `None` only when its TOML is broken.
#[derive(Debug)]
pub struct Parsed {
    /// The file's text.
    pub source: String,
    /// What could be read of it.
    pub bulletin: Option<Bulletin>,
    /// Every structural problem found.
    pub diagnostics: Vec<Diagnostic>,
}

/// What `check` found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Every problem, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The number the bulletin would get, when that is known.
    pub number: Option<u32>,
    /// How many sections it has.
    pub sections: usize,
}

impl Checked {
    /// How many problems are errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// How many problems are warnings (the pre-send checks).
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

impl Workspace {
    /// Reads the config (or the defaults) and the templates of the current folder.
    pub fn open(options: &Options) -> Result<Workspace> {
        let (path, required) = match &options.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(config::DEFAULT_PATH), false),
        };
        let config = Config::load(&path, required)?;
        let templates = Templates::load(Path::new(templates::DIR))?;
        let store_location = options
            .store
            .clone()
            .unwrap_or_else(|| config.store.path.clone());
        Ok(Workspace {
            config,
            templates,
            store_location,
            store: OnceCell::new(),
            base: PathBuf::from("."),
            access: Access::Write,
            token_secret: OnceCell::new(),
            report: options.report.clone(),
            inputs: Inputs::new("."),
            parsed: RefCell::default(),
            inspected: RefCell::default(),
            editions: RefCell::default(),
        })
    }

    /// [`Workspace::open`] for a command that only reads the store (`members list`,
    /// `jobs`, `archive search`…): an existing SQLite store is opened read-only, so these
    /// work on a store file the user may not write, and a missing one is read as an empty
    /// store rather than created.
    pub fn open_read_only(options: &Options) -> Result<Workspace> {
        let mut workspace = Workspace::open(options)?;
        workspace.access = Access::ReadOnly;
        Ok(workspace)
    }

    /// [`Workspace::open`] for a command that composes (`new`, `build`): with a config it
    /// creates the store as usual (numbers must be remembered); in the demo (no config) a
    /// missing store is not created, so trying mailout in an empty folder leaves no
    /// `mailout.sqlite` behind. Each such run then starts from `[numbering] start`.
    pub fn open_draft(options: &Options) -> Result<Workspace> {
        let mut workspace = Workspace::open(options)?;
        workspace.access = Access::Draft;
        Ok(workspace)
    }

    /// Where this workspace's warnings, waits and send progress go.
    pub fn report(&self) -> &Reporter {
        &self.report
    }

    /// Whether no config file was found, so the built-in demo organisation is in use.
    pub fn is_demo(&self) -> bool {
        self.config.origin.is_none()
    }

    /// The store, opened (and, unless the command only reads or composes the demo,
    /// created) on first use.
    pub fn store(&self) -> Result<&dyn Store> {
        if let Some(store) = self.store.get() {
            return Ok(store.as_ref());
        }
        let location = &self.store_location;
        let password_env = &self.config.store.password_env;
        let missing_file = || !store::is_postgres(location) && !Path::new(location).exists();
        let opened = match self.access {
            Access::ReadOnly => store::open_read_only(location, password_env)?,
            Access::Draft if self.is_demo() && missing_file() => store::open_empty(location)?,
            Access::Draft | Access::Write => {
                let store = store::open_with(location, password_env)?;
                store.set_durability(self.config.store.durability)?;
                store
            }
        };
        Ok(self.store.get_or_init(|| opened).as_ref())
    }

    /// The secret member tokens are made with: the environment variable `[sender]
    /// token_secret_env` names when it is set, else that variable's line in the folder's
    /// `.mailout.env` (what `mailout init` writes); `None` when neither has one. Read once.
    pub fn token_secret(&self) -> Result<Option<String>> {
        if let Some(secret) = self.token_secret.get() {
            return Ok(secret.clone());
        }
        let found = env_file::lookup(&self.base, &self.config.sender.token_secret_env)?
            .map(|(secret, _)| secret);
        Ok(self.token_secret.get_or_init(|| found).clone())
    }

    /// A connection of its own to the store (for a server or a send worker).
    pub fn open_store(&self) -> Result<Box<dyn Store>> {
        let store = store::open_with(&self.store_location, &self.config.store.password_env)?;
        store.set_durability(self.config.store.durability)?;
        Ok(store)
    }

    /// The folder paths in bulletins are relative to.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Where the store is (a path, or a URL).
    pub fn store_location(&self) -> &str {
        &self.store_location
    }

    /// The store if it already exists; `check` reads but never creates one.
    fn existing_store(&self) -> Result<Option<&dyn Store>> {
        let is_file = !self.store_location.contains("://");
        if is_file && !Path::new(&self.store_location).exists() {
            return Ok(None);
        }
        self.store().map(Some)
    }

    /// Writes a new bulletin file for the next free number (or `number`) into `dir`.
    pub fn new_bulletin(&self, dir: &Path, number: Option<u32>) -> Result<(u32, PathBuf)> {
        let number = match number {
            Some(n) => n,
            None => numbering::next_free(self.store()?, &self.config)?,
        };
        let path = dir.join(format!("{number}.toml"));
        if path.exists() {
            return Err(Error::Exists {
                path,
                hint: Some(format!(
                    "edit it, or build it first: `mailout build {}/{number}.toml`",
                    dir.display()
                )),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let text = skeleton(&self.config, number, clock::today());
        outbox::write_atomic(&path, text.as_bytes())?;
        Ok((number, path))
    }

    /// Every problem in the bulletin at `path`: structure, content, and its number against
    /// the store's history; and the pre-send warnings (PRODUCT.md §6a, see [`lint`]).
    pub fn check(&self, path: &Path) -> Result<Checked> {
        self.inspect(path, true)
    }

    /// Every problem in the bulletin at `path`, without the pre-send warnings: what a build
    /// needs to know.
    pub fn validate(&self, path: &Path) -> Result<Checked> {
        self.inspect(path, false)
    }

    /// The bulletin file at `path`, read and parsed once per command.
    pub fn parsed(&self, path: &Path) -> Result<Arc<Parsed>> {
        if let Some(parsed) = self.parsed.borrow().get(crate::inputs::key(path)) {
            return Ok(Arc::clone(parsed));
        }
        let file = self.inputs.read(path)?;
        let source = String::from_utf8(file.bytes.clone()).map_err(|e| Error::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
        })?;
        let (bulletin, diagnostics) = Bulletin::parse(path, &source);
        let parsed = Arc::new(Parsed {
            source,
            bulletin,
            diagnostics,
        });
        self.parsed
            .borrow_mut()
            .insert(crate::inputs::key(path).to_path_buf(), Arc::clone(&parsed));
        Ok(parsed)
    }

    /// The bulletin at `path`, when it has no structural problem (else they are the error).
    pub fn bulletin(&self, path: &Path) -> Result<Bulletin> {
        let parsed = self.parsed(path)?;
        match &parsed.bulletin {
            Some(b) if parsed.diagnostics.is_empty() => Ok(b.clone()),
            _ => Err(Error::Invalid(parsed.diagnostics.clone())),
        }
    }

    /// The bulletins' and attachments' files, as this command reads them.
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    fn inspect(&self, path: &Path, warnings: bool) -> Result<Checked> {
        let key = (crate::inputs::key(path).to_path_buf(), warnings);
        if let Some(checked) = self.inspected.borrow().get(&key) {
            return Ok(checked.clone());
        }
        let checked = self.inspect_afresh(path, warnings)?;
        self.inspected.borrow_mut().insert(key, checked.clone());
        Ok(checked)
    }

    fn inspect_afresh(&self, path: &Path, warnings: bool) -> Result<Checked> {
        let parsed = self.parsed(path)?;
        let source = &parsed.source;
        let bulletin = &parsed.bulletin;
        let mut diagnostics = parsed.diagnostics.clone();
        let mut checked = Checked::default();
        if let Some(b) = bulletin {
            let store = self.existing_store()?;
            let attributes = match store {
                Some(store) => store.attribute_names()?,
                None => Vec::new(),
            };
            let known = |f: &str| MEMBER_FIELDS.contains(&f) || attributes.iter().any(|a| a == f);
            diagnostics.extend(b.validate(&self.config, &known, &self.base));
            checked.sections = b.sections.len();
            if let Some(store) = store {
                if let Ok(hash) = b.content_hash(&self.inputs) {
                    let number = match &b.number {
                        Some(n) => *n.get_ref(),
                        None => numbering::assign(store, &self.config, &source_key(path), &hash)?,
                    };
                    checked.number = Some(number);
                    if let Err(reused) = numbering::check_reuse(store, number, &hash)? {
                        diagnostics.push(Diagnostic::error(
                            path,
                            source,
                            b.number_span(),
                            reused.to_string(),
                        ));
                    }
                }
            } else {
                checked.number = Some(match &b.number {
                    Some(n) => *n.get_ref(),
                    None => self.config.numbering.start,
                });
            }
            if warnings {
                let render = !diagnostics.iter().any(Diagnostic::is_error);
                diagnostics.extend(self.lint(b, checked.number, store, render)?);
            }
        }
        diagnostic::sort(&mut diagnostics);
        checked.diagnostics = diagnostics;
        Ok(checked)
    }

    /// The pre-send warnings about bulletin `b` (see [`lint`]), numbered `number`. The
    /// audience checks need a store with members; `render` measures the HTML part as `build`
    /// renders it (only for a bulletin without errors).
    fn lint(
        &self,
        b: &Bulletin,
        number: Option<u32>,
        store: Option<&dyn Store>,
        render: bool,
    ) -> Result<Vec<Diagnostic>> {
        let number = number.unwrap_or(self.config.numbering.start);
        let mut found = lint::content(b, &self.config, number);
        if let Some(store) = store
            && lint::has_audiences(b, &self.config)
        {
            let counts = store.counts()?;
            if counts.all + counts.suppressed > 0 {
                let names = counts.branches.into_iter().chain(counts.employers);
                let count = |s: &Selection| store.count_selected(s);
                let roster = lint::Roster {
                    names: names.map(|(name, _)| name).collect(),
                    count: &count,
                };
                found.extend(lint::audiences(b, &self.config, &roster)?);
            }
        }
        if render {
            let date = b.date.as_ref().map_or_else(clock::today, |d| *d.get_ref());
            match Edition::new(b.clone(), self.config.clone(), number, date, &self.inputs) {
                Ok(edition) => {
                    let rendering = lint::render_variants(edition, &self.templates, &self.base);
                    found.extend(
                        rendering
                            .html_bytes
                            .and_then(|bytes| lint::html_size(b, bytes)),
                    );
                    found.extend(rendering.problems);
                    if let Some(html) = &rendering.html {
                        found.extend(lint::accessibility(b, html, &self.templates, &self.base));
                    }
                }
                // `build` reports what stops the edition (an attachment it cannot read).
                Err(e) => tracing::debug!("not rendering: {}", e.one_line()),
            }
        }
        Ok(found)
    }

    /// The pre-send warnings about a send rather than a file: no unsubscribe secret (in the
    /// environment or `.mailout.env`) when sending over SMTP (`smtp`).
    pub fn send_warnings(&self, smtp: bool) -> Result<Vec<String>> {
        if !smtp {
            return Ok(Vec::new());
        }
        let found = self.token_secret()?.is_some();
        Ok(lint::unsubscribe_secret(&self.config, found)
            .into_iter()
            .collect())
    }

    /// Loads, validates and numbers the bulletin at `path`. Any error in it fails with every
    /// problem found.
    pub fn edition(&self, path: &Path) -> Result<Edition> {
        if let Some(edition) = self.editions.borrow().get(crate::inputs::key(path)) {
            return Ok(edition.clone());
        }
        let edition = self.edition_afresh(path)?;
        self.editions
            .borrow_mut()
            .insert(crate::inputs::key(path).to_path_buf(), edition.clone());
        Ok(edition)
    }

    fn edition_afresh(&self, path: &Path) -> Result<Edition> {
        let checked = self.validate(path)?;
        if checked.errors() > 0 {
            return Err(Error::Invalid(checked.diagnostics));
        }
        let bulletin = self.bulletin(path)?;
        let hash = bulletin.content_hash(&self.inputs)?;
        let store = self.store()?;
        let number = match &bulletin.number {
            Some(n) => *n.get_ref(),
            None => numbering::assign(store, &self.config, &source_key(path), &hash)?,
        };
        if let Err(reused) = numbering::check_reuse(store, number, &hash)? {
            let d = Diagnostic::error(
                path,
                &bulletin.source,
                bulletin.number_span(),
                reused.to_string(),
            );
            return Err(Error::Invalid(vec![d]));
        }
        let date = bulletin
            .date
            .as_ref()
            .map(|d| *d.get_ref())
            .unwrap_or_else(clock::today);
        Edition::new(bulletin, self.config.clone(), number, date, &self.inputs)
    }

    /// The key that makes member tokens: the secret [`Workspace::token_secret`] finds (the
    /// configured environment variable, else `.mailout.env`), or else one kept in the store. The store's lookup keys are made again
    /// when they were made with another secret (or some are missing), so that every token
    /// this key makes can be found.
    pub fn token_key(&self) -> Result<TokenKey> {
        let store = self.store()?;
        let key = match self.token_secret()? {
            Some(secret) => TokenKey::new(secret.into_bytes()),
            None => TokenKey::new(store.secret("unsubscribe-token")?),
        };
        let fingerprint = key.fingerprint();
        let (known, missing) = store.lookup_keys_state()?;
        let changed = known.as_ref().is_some_and(|k| *k != fingerprint);
        if changed || known.is_none() || missing > 0 {
            if changed {
                self.report.line(
                    "warning: the token secret differs from the one the store's members were keyed with; their keys are made again, and unsubscribe links in copies sent with the other secret no longer work",
                );
            }
            let keys: Vec<(String, Vec<u8>)> = store
                .members(None)?
                .into_iter()
                .map(|m| {
                    let k = key.lookup_key(&m.email).to_vec();
                    (m.email, k)
                })
                .collect();
            store.set_lookup_keys(&keys, &fingerprint)?;
        }
        Ok(key)
    }

    /// Adds or updates the members `csv` yields (see
    /// [`Roster::import_members`](crate::store::Roster::import_members)), with the token
    /// lookup key of each.
    ///
    /// An address that was erased (`mailout members erase`) is not added again: the
    /// addresses left out for that are returned beside the counts. `origin` (the file) goes
    /// into each new member's history.
    pub fn import_members(
        &self,
        members: &mut dyn Iterator<Item = crate::members::Member>,
        origin: &str,
    ) -> Result<(store::ImportCounts, Vec<String>)> {
        let key = self.token_key()?;
        let store = self.store()?;
        let erased: std::collections::HashSet<String> = store.erased()?.into_iter().collect();
        let mut refused = Vec::new();
        let mut failed = None;
        let mut kept = members.filter(|m| {
            if erased.is_empty() || failed.is_some() {
                return failed.is_none();
            }
            match crate::consent::erasure_hash(store, &m.email) {
                Ok(hash) if erased.contains(&hash) => {
                    if !refused.contains(&m.email) {
                        refused.push(m.email.clone());
                    }
                    false
                }
                Ok(_) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        });
        let counts = store.import_members(&mut (&mut kept).map(|m| {
            let mut keyed = key.keyed(m);
            keyed.origin = Some(origin.to_string());
            keyed
        }))?;
        drop(kept);
        if let Some(e) = failed {
            return Err(e);
        }
        Ok((counts, refused))
    }

    /// Copies this store into the empty PostgreSQL database at `to` (see
    /// [`store::migrate::migrate`]), once the claims of this machine's workers that have
    /// gone are released.
    pub fn migrate_store(
        &self,
        to: &str,
        progress: &mut dyn FnMut(&str, u64),
    ) -> Result<store::migrate::Report> {
        let store = self.store()?;
        crate::host::reap_dead_workers(store)?;
        store::migrate::migrate(store, to, &self.config.store.password_env, progress)
    }

    /// Prepares `edition` for personal copies.
    pub fn mailing(&self, edition: Edition, list: Option<&str>) -> Result<Mailing> {
        let renderer = Renderer::new(&self.templates)?;
        Mailing::new(edition, renderer, self.token_key()?, list)
    }

    /// Builds the bulletin at `path` into `outbox/<number>/`: the HTML, the text, and the
    /// message as a member without a name receives it, addressed to the list.
    pub fn build(&self, path: &Path, outbox: &Path) -> Result<Built> {
        let edition = self.edition(path)?;
        let number = edition.number;
        let record = EditionRecord {
            number,
            content_hash: edition.content_hash.clone(),
            subject: edition.subject.clone(),
            source: source_key(path),
            built_at: Some(clock::stamp()),
            sent_at: None,
        };
        let mailing = self.mailing(edition, None)?;
        let list = Recipient::address_only(&self.config.sender.list_address);
        let copy = mailing.copy_for(&list, true)?;
        let parts = mailing.parts_for(&list, true)?;
        let built = outbox::write_build(outbox, number, &copy, &parts)?;
        self.store()?.record_build(&record)?;
        Ok(built)
    }

    /// Keeps the copy of a sent bulletin that everyone may read in the archive (every
    /// section, addressed to the list, no member's name or token: what `build` writes),
    /// dated `date`: it is the copy the public archive shows. Already there: nothing done.
    pub fn archive_everyone_copy(&self, path: &Path, date: std::time::SystemTime) -> Result<()> {
        let edition = self.edition(path)?;
        let mailing = self.mailing(edition, None)?.with_date(date);
        let list = Recipient::address_only(&self.config.sender.list_address);
        let copy = mailing.copy_for(&list, true)?;
        let recogniser = crate::archive::recognise::Recogniser::new(&self.config)?;
        let message = crate::archive::parse::parse(
            &copy.bytes,
            &format!("mailout send {}", source_key(path)),
            None,
            &recogniser,
        );
        self.store()?.archive_add(&[message])?;
        Ok(())
    }

    /// Puts the copy for everyone of every sent bulletin whose file is still here, unchanged,
    /// into the archive when it is not there yet (bulletins sent before mailout kept it);
    /// returns how many were added.
    pub fn archive_sent_editions(&self) -> Result<usize> {
        let store = self.store()?;
        let mut added = 0;
        for record in store.sent_editions()? {
            let has_everyone = store
                .archive_bulletin(record.number)?
                .iter()
                .any(|c| c.copy == Some(crate::store::CopyKind::Everyone));
            let path = self.base.join(&record.source);
            if has_everyone || !path.exists() {
                continue;
            }
            match self.edition(&path) {
                Ok(e) if e.content_hash == record.content_hash && e.number == record.number => {
                    let date = record
                        .sent_at
                        .as_deref()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                        .map_or_else(clock::system_time, |t| {
                            std::time::SystemTime::UNIX_EPOCH
                                + std::time::Duration::from_secs(
                                    t.as_second().max(0).unsigned_abs(),
                                )
                        });
                    self.archive_everyone_copy(&path, date)?;
                    added += 1;
                }
                _ => {}
            }
        }
        Ok(added)
    }

    /// The bulletin at `path` ready to look at (`mailout preview`), with the warnings
    /// `check` finds: checked, numbered and rendered as `build` would, but read-only. No
    /// store is created, no number is taken and no build is recorded. Unsubscribe links are
    /// signed with the configured secret when there is one, else with a placeholder key (a
    /// preview's links are never a member's).
    pub fn draft(&self, path: &Path) -> Result<(Mailing, Vec<Diagnostic>)> {
        // Only what stops a build stops a preview: unfinished text is shown, not refused.
        let validated = self.validate(path)?;
        if validated.errors() > 0 {
            return Err(Error::Invalid(validated.diagnostics));
        }
        let checked = self.check(path)?;
        let bulletin = self.bulletin(path)?;
        let number = match &bulletin.number {
            Some(n) => *n.get_ref(),
            None => checked.number.unwrap_or(self.config.numbering.start),
        };
        let date = bulletin
            .date
            .as_ref()
            .map(|d| *d.get_ref())
            .unwrap_or_else(clock::today);
        let edition = Edition::new(bulletin, self.config.clone(), number, date, &self.inputs)?;
        let tokens = match self.token_secret()? {
            Some(secret) => TokenKey::new(secret.into_bytes()),
            None => TokenKey::new(b"mailout preview".to_vec()),
        };
        let mailing = Mailing::new(edition, Renderer::new(&self.templates)?, tokens, None)?;
        Ok((mailing, checked.diagnostics))
    }
}

/// How the store remembers a bulletin file: its path as given, without a leading `./`.
pub fn source_key(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    text.trim_start_matches("./").to_string()
}

/// The text of a new bulletin file.
fn skeleton(config: &Config, number: u32, date: jiff::civil::Date) -> String {
    let kinds: Vec<&str> = config.sections.keys().map(String::as_str).collect();
    format!(
        r#"# {series} {number}, started with `mailout new`.
# Check it:  mailout check <this file>     Build it:  mailout build <this file>
number = {number}
date = {date}
headline = "{lead}"
# subject = "..."           # default: "{series} {number}: <headline>"
# to = ["Cafcass", "NPS", "PbNI", "CRC"]   # the "To:" line
# greeting = "Dear {{{{first_name}}}}"     # default: "{greeting}"
intro = """
{intro}. Markdown works: **bold**, [links](https://example.org),
bullet lists and numbered lists.
"""

[[section]]
heading = "First item"
kind = "general"            # one of: {kinds}
# audience = ["NPS"]        # only members whose employer or branch matches
body = """
{item}.
"""
# signed = ["{name}"]

[[signatory]]
name = "{name}"
role = "General Secretary"
"#,
        series = config.organisation.series,
        greeting = config.greeting.default,
        kinds = kinds.join(", "),
        lead = lint::SKELETON_TEXTS[0],
        intro = lint::SKELETON_TEXTS[1],
        item = lint::SKELETON_TEXTS[2],
        name = lint::SKELETON_TEXTS[3],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skeleton_is_a_valid_bulletin() {
        let config = Config::builtin();
        let text = skeleton(&config, 241, jiff::civil::date(2026, 11, 23));
        let (b, problems) = Bulletin::parse(Path::new("241.toml"), &text);
        assert!(problems.is_empty(), "{problems:?}");
        let b = b.unwrap();
        assert!(
            b.validate(&config, &|f| MEMBER_FIELDS.contains(&f), Path::new("."))
                .is_empty()
        );
        assert_eq!(b.number.as_ref().map(|n| *n.get_ref()), Some(241));
        // Every placeholder it holds stops a send until written over.
        assert_eq!(lint::unfinished_text(&b).len(), lint::SKELETON_TEXTS.len());
    }

    #[test]
    fn one_command_reads_a_bulletin_and_its_attachment_once() {
        let dir = tempfile::tempdir().unwrap();
        let pdf = dir.path().join("plan.pdf");
        let toml = dir.path().join("240.toml");
        let bulletin = |body: &str| {
            format!(
                "number = 240\nsubject = \"Plan\"\n[[section]]\nheading = \"Plan\"\nbody = \"{body}\"\n[[attachment]]\npath = {:?}\n",
                pdf.display().to_string()
            )
        };
        std::fs::write(&toml, bulletin("The plan is attached.")).unwrap();
        std::fs::write(&pdf, b"%PDF-1.4 first").unwrap();
        let options = Options {
            config: Some(PathBuf::from("config/mailout.toml")),
            store: Some(dir.path().join("s.sqlite").display().to_string()),
            report: Reporter::default(),
        };
        let workspace = Workspace::open(&options).unwrap();
        let first = workspace.edition(&toml).unwrap();
        let approved = crate::approval::content_hash(&workspace, &toml).unwrap();
        // Edited while the command runs: every later step still sees what the first read.
        std::fs::write(&toml, bulletin("Changed.")).unwrap();
        std::fs::write(&pdf, b"%PDF-1.4 second").unwrap();
        assert_eq!(workspace.check(&toml).unwrap().errors(), 0);
        let again = workspace.edition(&toml).unwrap();
        assert_eq!(again.content_hash, first.content_hash);
        assert_eq!(again.attachments[0].bytes, b"%PDF-1.4 first");
        assert_eq!(
            crate::approval::content_hash(&workspace, &toml).unwrap(),
            approved
        );
        // The next command reads them afresh.
        let next = Workspace::open(&options).unwrap();
        assert_ne!(
            next.edition(&toml).unwrap().content_hash,
            first.content_hash
        );
        assert_eq!(
            next.edition(&toml).unwrap().attachments[0].bytes,
            b"%PDF-1.4 second"
        );
    }

    #[test]
    fn source_keys_drop_leading_dot_slash() {
        assert_eq!(
            source_key(Path::new("./bulletins/1.toml")),
            "bulletins/1.toml"
        );
    }
}
