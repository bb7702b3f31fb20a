//! The organisation's `config/mailout.toml`: strict serde (unknown keys are errors), built-in
//! defaults for every key so that a new user gets a working demo, and a separate semantic
//! `validate()` whose problems name their `FILE:LINE:COL`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use crate::toml_file::{self, TomlFile};

/// Where the config is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/mailout.toml";

/// The whole configuration (PRODUCT.md §10).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Who sends the bulletins.
    pub organisation: Organisation,
    /// Envelope and list headers.
    pub sender: Sender,
    /// SMTP relay; absent means the file transport into `outbox/<number>/sent/`.
    pub smtp: Option<Smtp>,
    /// DKIM signing; absent means unsigned.
    pub dkim: Option<Dkim>,
    /// Where members, numbering, journals and the archive live.
    pub store: Store,
    /// The unsubscribe endpoint (`mailout serve`).
    pub serve: Serve,
    /// What bounces lead to.
    pub bounces: Bounces,
    /// Sign-off before sending.
    pub approval: Approval,
    /// Bulletin numbering.
    pub numbering: Numbering,
    /// Scheduled sends (`mailout send --at`).
    pub schedule: Schedule,
    /// Seed mailboxes that confirm arrival.
    pub seeds: Seeds,
    /// Privacy by default: members at their employer's mail domain.
    pub privacy: Privacy,
    /// The received-mail archive and its web copy.
    pub archive: Archive,
    /// The greeting when a bulletin sets none or a member has no name.
    pub greeting: Greeting,
    /// Section kinds: a label and an optional audience. Merged over the built-in kinds.
    pub sections: BTreeMap<String, SectionKind>,
    /// Named lists, each a union of selectors.
    pub lists: BTreeMap<String, NamedList>,
    /// Where this config came from, for error messages (not part of the file).
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// The file a config was read from and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as the user named it.
    pub path: PathBuf,
    /// Its contents.
    pub source: String,
}

/// `[organisation]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Organisation {
    /// The organisation's name.
    pub name: String,
    /// The bulletin series title; subjects start with it.
    pub series: String,
    /// Postal address for the footer.
    pub address: String,
    /// The organisation's website.
    pub website: String,
}

impl Default for Organisation {
    fn default() -> Self {
        Organisation {
            name: "Example Union".into(),
            series: "Latest From Example Union".into(),
            address: "1 Example Street, London".into(),
            website: "https://union.example.org".into(),
        }
    }
}

/// `[sender]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Sender {
    /// The From mailbox.
    pub from: String,
    /// Optional Reply-To.
    pub reply_to: Option<String>,
    /// The list's own address: To of the copy `build` writes.
    pub list_address: String,
    /// The domain of List-Id and Message-ID.
    pub list_domain: String,
    /// One-click unsubscribe URL; `{token}` is replaced by the member's token.
    pub unsubscribe_url: String,
    /// Address for mailto unsubscribes.
    pub unsubscribe_mailto: String,
    /// The environment variable holding the HMAC secret for unsubscribe tokens.
    pub token_secret_env: String,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            from: "Example Union <info@union.example.org>".into(),
            reply_to: None,
            list_address: "members@lists.union.example.org".into(),
            list_domain: "lists.union.example.org".into(),
            unsubscribe_url: "https://union.example.org/u/{token}".into(),
            unsubscribe_mailto: "unsubscribe@union.example.org".into(),
            token_secret_env: "MAILOUT_TOKEN_SECRET".into(),
        }
    }
}

/// `[smtp]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Smtp {
    /// `smtp://host:port` (STARTTLS when offered) or `smtps://` (implicit TLS).
    pub url: String,
    /// Optional user for AUTH.
    pub username: Option<String>,
    /// The environment variable holding the password.
    pub password_env: String,
    /// Connections.
    pub concurrency: u32,
    /// Messages per second overall; 0 is unlimited.
    pub rate: u32,
    /// Per-command timeout (connecting, greeting, each command, writing the message).
    pub timeout_secs: u64,
    /// How long to wait for the reply to the message's final dot (RFC 5321 §4.5.3.2.6:
    /// ten minutes). Past it the copy is `uncertain`: it may have been delivered.
    pub data_timeout_secs: u64,
    /// Attempts per recipient before giving up on a temporary failure.
    pub max_attempts: u32,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            url: "smtp://127.0.0.1:25".into(),
            username: None,
            password_env: "MAILOUT_SMTP_PASSWORD".into(),
            concurrency: 4,
            rate: 0,
            timeout_secs: 30,
            data_timeout_secs: 600,
            max_attempts: 5,
        }
    }
}

/// `[dkim]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Dkim {
    /// The signing domain (d=).
    pub domain: String,
    /// The selector (s=).
    pub selector: String,
    /// Path of the private key (PEM).
    pub key_file: PathBuf,
    /// `ed25519` or `rsa-sha256`.
    pub algorithm: String,
}

impl Default for Dkim {
    fn default() -> Self {
        Dkim {
            domain: String::new(),
            selector: "mailout".into(),
            key_file: PathBuf::from("config/dkim.key"),
            algorithm: "ed25519".into(),
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// A SQLite file path or a `postgres://` URL.
    pub path: String,
    /// The environment variable with the PostgreSQL password.
    pub password_env: String,
    /// How long a worker's claim on journal rows lasts without renewal.
    pub lease_secs: u64,
    /// What a commit survives: `process` (a crash of mailout) or `full` (a crash of the
    /// machine too).
    pub durability: crate::store::Durability,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            path: "mailout.sqlite".into(),
            password_env: "MAILOUT_PG_PASSWORD".into(),
            lease_secs: 60,
            durability: crate::store::Durability::Process,
        }
    }
}

/// `[bounces]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Bounces {
    /// Soft bounces (mailbox full, expired…) before an address is suppressed.
    pub soft_limit: u32,
    /// Within this many days.
    pub soft_days: u32,
}

impl Default for Bounces {
    fn default() -> Self {
        Bounces {
            soft_limit: 5,
            soft_days: 30,
        }
    }
}

/// `[serve]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Serve {
    /// The public address `serve` answers under (`https://union.example.org`): requests for
    /// any other host than this one and loopback are refused. Default: the host of
    /// `[sender] unsubscribe_url`.
    pub public_url: Option<String>,
    /// Seconds a client has to send a request's head.
    pub header_timeout_secs: u64,
    /// Seconds a connection is kept at most, busy or idle.
    pub connection_secs: u64,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            public_url: None,
            header_timeout_secs: 10,
            connection_secs: 60,
        }
    }
}

impl Config {
    /// The host names `mailout serve` answers for besides loopback: `[serve] public_url`'s,
    /// else `[sender] unsubscribe_url`'s.
    pub fn served_hosts(&self) -> Vec<String> {
        let url = self
            .serve
            .public_url
            .as_deref()
            .unwrap_or(&self.sender.unsubscribe_url)
            .replace("{token}", "t");
        url::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
            .into_iter()
            .collect()
    }
}

/// `[schedule]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Schedule {
    /// The zone `--at` times are in (an IANA name such as `Europe/London`); the system's
    /// when absent.
    pub timezone: Option<String>,
    /// How late (in minutes) a scheduled job may start on its own; later, it waits as
    /// `late` until `mailout job N --release`.
    pub late_limit_mins: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            timezone: None,
            late_limit_mins: 30,
        }
    }
}

impl Sender {
    /// The preferences page for a member, `{token}` to be replaced: `/p/{token}` on the
    /// host of `unsubscribe_url` (what `mailout serve` answers).
    pub fn preferences_url(&self) -> String {
        if self.unsubscribe_url.contains("/u/{token}") {
            return self.unsubscribe_url.replace("/u/{token}", "/p/{token}");
        }
        match url::Url::parse(&self.unsubscribe_url.replace("{token}", "t")) {
            Ok(u) => format!("{}/p/{{token}}", u.origin().ascii_serialization()),
            Err(_) => String::new(),
        }
    }
}

/// `[privacy]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Privacy {
    /// The mail domains of the employers members work for (`justice.gov.uk`): a bulletin
    /// sent there can show the employer who is a member. Subdomains count.
    pub employer_domains: Vec<String>,
    /// Leave members at those domains out of every send (counted in the account).
    pub skip_employer_domains: bool,
}

impl Privacy {
    /// The employer domain `email` is at, if any.
    pub fn employer_domain_of(&self, email: &str) -> Option<&str> {
        let domain = email.rsplit_once('@')?.1.to_ascii_lowercase();
        self.employer_domains
            .iter()
            .map(|d| d.trim().trim_start_matches('@').trim_start_matches('.'))
            .filter(|d| !d.is_empty())
            .find(|d| {
                let d = d.to_ascii_lowercase();
                domain == d || domain.ends_with(&format!(".{d}"))
            })
    }

    /// The domains sends leave out (none unless `skip_employer_domains`), lowercase.
    pub fn skipped(&self) -> Vec<String> {
        if !self.skip_employer_domains {
            return Vec::new();
        }
        self.domains()
    }

    /// `employer_domains` in order, lowercase, without a leading `@` or `.`.
    pub fn domains(&self) -> Vec<String> {
        self.employer_domains
            .iter()
            .map(|d| {
                d.trim()
                    .trim_start_matches('@')
                    .trim_start_matches('.')
                    .to_ascii_lowercase()
            })
            .filter(|d| !d.is_empty())
            .collect()
    }
}

/// `[seeds]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Seeds {
    /// Addresses the organisation reads (a mailbox at each big provider): every job sends
    /// each the copy for everyone.
    pub addresses: Vec<String>,
    /// The IMAP URL that reads each address's mailbox, in the same order
    /// (`imaps://user@host/INBOX`); the password is in `MAILOUT_SEEDS_PASSWORD`.
    pub imap: Vec<String>,
}

/// `[approval]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Approval {
    /// How many different people must approve before a send.
    pub required: u32,
}

/// `[numbering]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Numbering {
    /// The first number of the series.
    pub start: u32,
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering { start: 1 }
    }
}

/// `[archive]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Archive {
    /// A regular expression whose first group is the bulletin number.
    pub series_pattern: String,
    /// Where the web archive is published; each bulletin is at `{site_url}/{number}/`.
    pub site_url: String,
    /// The most words an archive search may hold (each word of a phrase counts).
    pub search_max_terms: usize,
    /// How long an archive search may run before it is cut short, in seconds.
    pub search_timeout_secs: f64,
}

impl Default for Archive {
    fn default() -> Self {
        Archive {
            series_pattern: "Latest From Example Union (\\d+)".into(),
            site_url: "https://union.example.org/archive".into(),
            search_max_terms: crate::search::query::MAX_TERMS,
            search_timeout_secs: 2.0,
        }
    }
}

/// `[greeting]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Greeting {
    /// The greeting for members without a name, and for bulletins that set none.
    pub default: String,
}

impl Default for Greeting {
    fn default() -> Self {
        Greeting {
            default: "Dear Member".into(),
        }
    }
}

/// `[sections.KIND]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SectionKind {
    /// The label shown above sections of this kind.
    pub label: String,
    /// Who receives sections of this kind when a section sets no audience (empty: everyone).
    pub audience: Vec<String>,
    /// How the "To:" line names these members (`the CRC`); default: the name as written.
    pub to_name: Option<String>,
}

/// `[lists.NAME]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NamedList {
    /// Selectors: `all`, `branch:NAME`, `employer:NAME`, or another list's name.
    pub select: Vec<String>,
    /// Members may opt out of (and back into) this list on their preferences page; a send
    /// to it leaves out those who opted out (counted in the account).
    pub optional: bool,
    /// What the list is for, shown on the preferences page.
    pub description: Option<String>,
}

/// The section kinds every organisation has unless its config redefines them.
pub fn builtin_sections() -> BTreeMap<String, SectionKind> {
    let kind = |label: &str, audience: &[&str], to_name: Option<&str>| SectionKind {
        label: label.into(),
        audience: audience.iter().map(|s| s.to_string()).collect(),
        to_name: to_name.map(str::to_string),
    };
    BTreeMap::from([
        ("nps".into(), kind("NPS updates", &["NPS"], None)),
        ("cafcass".into(), kind("Cafcass notes", &["Cafcass"], None)),
        ("pbni".into(), kind("PbNI news", &["PbNI"], None)),
        ("crc".into(), kind("CRC news", &["CRC"], Some("the CRC"))),
        ("general".into(), kind("General news", &[], None)),
    ])
}

impl Config {
    /// The built-in demo configuration.
    pub fn builtin() -> Config {
        Config {
            sections: builtin_sections(),
            ..Config::default()
        }
    }

    /// Reads the config at `path`. When the file does not exist and `required` is false, the
    /// built-in defaults are used, so every command works in an empty folder.
    pub fn load(path: &Path, required: bool) -> Result<Config> {
        let source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::builtin());
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Config::parse(path, &source)
    }

    /// Parses and validates config text.
    pub fn parse(path: &Path, source: &str) -> Result<Config> {
        let mut config: Config = toml::from_str(source).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().trim_end_matches('.').to_string();
            Error::Invalid(vec![Diagnostic::error(path, source, span, message)])
        })?;
        for (name, kind) in builtin_sections() {
            config.sections.entry(name).or_insert(kind);
        }
        config.origin = Some(Origin {
            path: path.to_path_buf(),
            source: source.to_string(),
        });
        let problems = config.validate();
        if problems.iter().any(Diagnostic::is_error) {
            return Err(Error::Invalid(problems));
        }
        Ok(config)
    }

    /// Checks what serde cannot: addresses, URLs, values that become headers, names.
    pub fn validate(&self) -> Vec<Diagnostic> {
        let (path, source) = match &self.origin {
            Some(o) => (o.path.clone(), o.source.clone()),
            None => (PathBuf::from(DEFAULT_PATH), String::new()),
        };
        let mut file = TomlFile::new(&path, &source);
        let doc = file.parse();
        let mut check = Check {
            file: &mut file,
            doc: doc.as_ref().map(|d| d.get_ref()),
        };
        self.check(&mut check);
        file.diagnostics
    }

    fn check(&self, c: &mut Check<'_, '_>) {
        let org = &self.organisation;
        c.header_text(&["organisation", "name"], &org.name);
        c.header_text(&["organisation", "series"], &org.series);
        c.one_line(&["organisation", "address"], &org.address);
        c.web_url(&["organisation", "website"], &org.website, false);

        let s = &self.sender;
        c.mailbox(&["sender", "from"], &s.from);
        if let Some(reply_to) = &s.reply_to {
            c.mailbox(&["sender", "reply_to"], reply_to);
        }
        c.address(&["sender", "list_address"], &s.list_address);
        c.address(&["sender", "unsubscribe_mailto"], &s.unsubscribe_mailto);
        c.domain(&["sender", "list_domain"], &s.list_domain);
        c.web_url(&["sender", "unsubscribe_url"], &s.unsubscribe_url, true);
        if s.token_secret_env.trim().is_empty() {
            c.error(
                &["sender", "token_secret_env"],
                "must name an environment variable",
            );
        }

        if let Some(public) = &self.serve.public_url {
            c.web_url(&["serve", "public_url"], public, false);
        }
        for (key, value) in [
            ("soft_limit", u64::from(self.bounces.soft_limit)),
            ("soft_days", u64::from(self.bounces.soft_days)),
        ] {
            if value == 0 {
                c.error(&["bounces", key], "must be at least 1");
            }
        }
        for (key, value) in [
            ("header_timeout_secs", self.serve.header_timeout_secs),
            ("connection_secs", self.serve.connection_secs),
        ] {
            if value == 0 {
                c.error(&["serve", key], "must be at least 1");
            }
        }

        if let Some(smtp) = &self.smtp {
            let ok = ["smtp://", "smtps://"]
                .iter()
                .any(|p| smtp.url.starts_with(p) && smtp.url.len() > p.len());
            if !ok {
                c.error(
                    &["smtp", "url"],
                    format!(
                        "`{}` is not an SMTP URL; write `smtp://HOST:PORT` or `smtps://HOST:PORT`",
                        smtp.url
                    ),
                );
            }
            for (key, value) in [
                ("concurrency", u64::from(smtp.concurrency)),
                ("timeout_secs", smtp.timeout_secs),
                ("data_timeout_secs", smtp.data_timeout_secs),
                ("max_attempts", u64::from(smtp.max_attempts)),
            ] {
                if value == 0 {
                    c.error(&["smtp", key], "must be at least 1");
                }
            }
        }

        if let Some(dkim) = &self.dkim {
            if !["ed25519", "rsa-sha256"].contains(&dkim.algorithm.as_str()) {
                c.error(
                    &["dkim", "algorithm"],
                    format!(
                        "unknown DKIM algorithm `{}`; expected `ed25519` or `rsa-sha256`",
                        dkim.algorithm
                    ),
                );
            }
            c.domain(&["dkim", "domain"], &dkim.domain);
            if dkim.selector.trim().is_empty() || dkim.selector.contains(char::is_whitespace) {
                c.error(&["dkim", "selector"], "must be a DNS label, like `mailout`");
            }
        }

        if self.store.path.trim().is_empty() {
            c.error(
                &["store", "path"],
                "must be a file path or a postgres:// URL",
            );
        }
        if self.store.lease_secs == 0 {
            c.error(&["store", "lease_secs"], "must be at least 1");
        }
        c.web_url(&["archive", "site_url"], &self.archive.site_url, false);
        if !(1..=1024).contains(&self.archive.search_max_terms) {
            c.error(
                &["archive", "search_max_terms"],
                "must be between 1 and 1024",
            );
        }
        let timeout = self.archive.search_timeout_secs;
        if !(timeout.is_finite() && (0.001..=600.0).contains(&timeout)) {
            c.error(
                &["archive", "search_timeout_secs"],
                "must be between 0.001 and 600 seconds",
            );
        }
        c.one_line(&["greeting", "default"], &self.greeting.default);

        for (name, kind) in &self.sections {
            if !is_identifier(name) {
                c.error(
                    &["sections", name],
                    format!("section kind `{name}` must be lowercase letters, digits, `-` or `_`"),
                );
            }
            if kind.label.trim().is_empty() {
                c.error(
                    &["sections", name, "label"],
                    "a section kind needs a `label`",
                );
            }
        }
        for (name, list) in &self.lists {
            if !is_identifier(name) || ["all"].contains(&name.as_str()) {
                c.error(
                    &["lists", name],
                    format!("list name `{name}` must be lowercase letters, digits, `-` or `_`, and not `all`"),
                );
            }
            for selector in &list.select {
                let known = selector == "all"
                    || selector
                        .split_once(':')
                        .is_some_and(|(k, v)| ["branch", "employer"].contains(&k) && !v.is_empty())
                    || (self.lists.contains_key(selector) && selector != name);
                if !known {
                    c.error(
                        &["lists", name, "select"],
                        format!("unknown selector `{selector}`; expected `all`, `branch:NAME`, `employer:NAME` or another list's name"),
                    );
                }
            }
        }
    }

    /// The file this config was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.origin.as_ref().map(|o| o.path.as_path())
    }

    /// The label of section kind `kind`.
    pub fn section_kind(&self, kind: &str) -> Option<&SectionKind> {
        self.sections.get(kind)
    }

    /// The series title as a List-Id and URL component: `latest-from-example-union`.
    pub fn series_slug(&self) -> String {
        slug(&self.organisation.series)
    }
}

/// Lowercase ASCII letters and digits joined by single hyphens.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("bulletin");
    }
    out
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Collects semantic problems, locating each by its key path in the parsed document.
struct Check<'f, 'a> {
    file: &'f mut TomlFile<'a>,
    doc: Option<&'f toml::de::DeTable<'a>>,
}

impl Check<'_, '_> {
    fn error(&mut self, key: &[&str], message: impl Into<String>) {
        let span = self
            .doc
            .and_then(|d| toml_file::locate(d, key))
            .unwrap_or(0..0);
        let message = format!("`{}` {}", key.join("."), message.into());
        self.file.error(span, message);
    }

    fn one_line(&mut self, key: &[&str], value: &str) {
        if value.contains(['\r', '\n']) {
            self.error(key, "must be on one line");
        }
    }

    fn header_text(&mut self, key: &[&str], value: &str) {
        if value.trim().is_empty() {
            self.error(key, "must not be empty");
        }
        if value.chars().any(char::is_control) {
            self.error(
                key,
                "becomes a mail header and must not contain line breaks or control characters",
            );
        }
    }

    fn mailbox(&mut self, key: &[&str], value: &str) {
        if value.chars().any(char::is_control) {
            self.error(
                key,
                "becomes a mail header and must not contain line breaks or control characters",
            );
        } else if lettre::message::Mailbox::from_str(value).is_err() {
            self.error(
                key,
                format!("`{value}` is not a mailbox; write `Name <user@example.org>` or `user@example.org`"),
            );
        }
    }

    fn address(&mut self, key: &[&str], value: &str) {
        if lettre::Address::from_str(value).is_err() || value.chars().any(char::is_control) {
            self.error(key, format!("`{value}` is not an email address"));
        }
    }

    fn domain(&mut self, key: &[&str], value: &str) {
        let ok = !value.is_empty()
            && value.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !ok {
            self.error(key, format!("`{value}` is not a domain name"));
        }
    }

    fn web_url(&mut self, key: &[&str], value: &str, needs_token: bool) {
        let ok = (value.starts_with("https://") || value.starts_with("http://"))
            && !value.contains(char::is_whitespace)
            && !value.chars().any(char::is_control);
        if !ok {
            self.error(key, format!("`{value}` is not an http(s) URL"));
        } else if needs_token && !value.contains("{token}") {
            self.error(
                key,
                "must contain `{token}`, where each member's unsubscribe token goes",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_five_section_kinds() {
        let c = Config::builtin();
        let kinds: Vec<&str> = c.sections.keys().map(String::as_str).collect();
        assert_eq!(kinds, ["cafcass", "crc", "general", "nps", "pbni"]);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn unknown_key_is_an_error_with_its_place() {
        let err = Config::parse(Path::new("m.toml"), "[organisation]\nnmae = \"x\"\n").unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!((d.line, d.column), (2, 1));
        assert!(d.message.contains("unknown field `nmae`"), "{}", d.message);
    }

    #[test]
    fn sections_merge_over_builtins() {
        let c = Config::parse(
            Path::new("m.toml"),
            "[sections.nps]\nlabel = \"Probation news\"\n[sections.young]\nlabel = \"Young members\"\n",
        )
        .unwrap();
        assert_eq!(c.sections["nps"].label, "Probation news");
        assert!(c.sections["nps"].audience.is_empty());
        assert_eq!(c.sections["young"].label, "Young members");
        assert_eq!(c.sections["crc"].to_name.as_deref(), Some("the CRC"));
    }

    #[test]
    fn header_injection_in_series_is_refused() {
        let err = Config::parse(
            Path::new("m.toml"),
            "[organisation]\nseries = \"News\\r\\nBcc: x@evil.example\"\n",
        )
        .unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!((d.line, d.column), (2, 10));
        assert!(d.message.contains("line breaks"), "{}", d.message);
    }

    #[test]
    fn bad_addresses_and_urls_are_located() {
        let src =
            "[sender]\nfrom = \"not an address\"\nunsubscribe_url = \"https://x.example/u\"\n";
        let err = Config::parse(Path::new("m.toml"), src).unwrap_err();
        let lines: Vec<(usize, &str)> = err
            .diagnostics()
            .iter()
            .map(|d| (d.line, d.message.as_str()))
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].0, 2);
        assert_eq!(lines[1].0, 3);
        assert!(lines[1].1.contains("{token}"));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Latest From Napo"), "latest-from-napo");
        assert_eq!(slug("  Café & Co. "), "caf-co");
        assert_eq!(slug("!!!"), "bulletin");
    }
}
