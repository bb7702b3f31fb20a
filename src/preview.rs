//! `mailout preview`: a live page for drafting a bulletin (PRODUCT.md §6a). It shows the HTML
//! and the plain text side by side, for every audience variant the bulletin's sections make
//! and for a member with and without a name. A watcher (notify, debounced) rebuilds it when
//! the bulletin, a template or the config changes, and the open page reloads itself when
//! told to over server-sent events. While the bulletin has errors the page shows them, as
//! `mailout check` prints them, instead of a stale render.
//!
//! Nothing is written: the preview takes no number, records no build and creates no store
//! (see [`Workspace::draft`]). The page answers only requests addressed to a loopback name
//! when it listens on loopback, so a web page elsewhere cannot read a draft through DNS
//! rebinding.

use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::Stream;
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::watch;

use crate::config;
use crate::error::{Error, Result};
use crate::recipient::Recipient;
use crate::render::templates;
use crate::workspace::{Options, Workspace};

/// How long the watcher waits for a burst of file events (an editor's save) to settle.
const SETTLE: Duration = Duration::from_millis(150);

/// The sample member for the copies with a name.
const SAMPLE_NAME: &str = "Jo Bloggs";
const SAMPLE_EMAIL: &str = "jo.bloggs@example.org";
/// The address of a sample member without a name.
const NAMELESS_EMAIL: &str = "member@example.org";

/// A running preview: the file watcher and what the page shows. Dropping it stops the
/// watcher.
pub struct Preview {
    shared: Arc<Shared>,
    stop: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

/// What the watcher and the handlers share.
struct Shared {
    /// The bulletin file as the user named it.
    file: String,
    /// The current build and its generation (counting from 1).
    current: RwLock<(u64, Arc<Snapshot>)>,
    /// The current generation, for the event streams.
    generation: watch::Sender<u64>,
}

/// What the page shows: the bulletin rendered, or why it cannot be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Snapshot {
    Rendered(Rendering),
    Failed {
        /// How many errors.
        errors: usize,
        /// The problems as `mailout check` prints them (or `error: …` and its causes).
        report: String,
    },
}

/// The bulletin rendered for each variant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rendering {
    subject: String,
    number: u32,
    /// Section headings, in order.
    headings: Vec<String>,
    variants: Vec<Variant>,
    /// Warnings, as `mailout check` prints them.
    warnings: Vec<String>,
}

/// One audience variant, as a member with a name and as one without.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Variant {
    /// Its key in the page's URL.
    key: String,
    /// The switch's label.
    label: String,
    /// Who receives it.
    who: String,
    /// Which sections it has.
    visible: Vec<bool>,
    named: Sample,
    nameless: Sample,
}

/// One copy's two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sample {
    to: String,
    html: String,
    text: String,
}

/// What the watcher thread receives.
enum Message {
    Changed(DebounceEventResult),
    Stop,
}

impl Preview {
    /// Renders `file` once and starts watching it, the templates and the config.
    pub fn start(options: Options, file: PathBuf) -> Result<Preview> {
        std::fs::metadata(&file).map_err(|source| Error::Read {
            path: file.clone(),
            source,
        })?;
        let (generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            file: file.display().to_string(),
            current: RwLock::new((
                0,
                Arc::new(Snapshot::Failed {
                    errors: 0,
                    report: String::new(),
                }),
            )),
            generation,
        });
        let watched = Watched::new(&options, &file)?;
        let (sender, receiver) = mpsc::channel();
        let events = sender.clone();
        let mut debouncer = new_debouncer(SETTLE, None, move |result| {
            let _ = events.send(Message::Changed(result));
        })
        .map_err(|e| Error::Io {
            context: "could not watch for changes".into(),
            path: None,
            source: std::io::Error::other(e),
        })?;
        let mut dirs = HashSet::new();
        watched.refresh(&mut dirs, |dir, mode| debouncer.watch(dir, mode));
        // Watching starts before the first build, so no save goes unnoticed.
        publish(&shared, build(&options, &file));
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("preview-watch".into())
                .spawn(move || {
                    while let Ok(Message::Changed(result)) = receiver.recv() {
                        match result {
                            Ok(events) if events.iter().any(|e| watched.concerns(e)) => {}
                            Ok(_) => continue,
                            Err(errors) => {
                                for e in errors {
                                    tracing::warn!("watching for changes: {e}");
                                }
                            }
                        }
                        // A folder that appeared (templates/) or went is watched or dropped.
                        for dir in dirs
                            .iter()
                            .filter(|d| !d.exists())
                            .cloned()
                            .collect::<Vec<_>>()
                        {
                            let _ = debouncer.unwatch(&dir);
                            dirs.remove(&dir);
                        }
                        watched.refresh(&mut dirs, |dir, mode| debouncer.watch(dir, mode));
                        if publish(&shared, build(&options, &file)) {
                            tracing::info!("preview: rebuilt {}", file.display());
                        }
                    }
                    drop(debouncer);
                })
                .map_err(|source| Error::Io {
                    context: "could not start the watcher's thread".into(),
                    path: None,
                    source,
                })?
        };
        Ok(Preview {
            shared,
            stop: sender,
            thread: Some(thread),
        })
    }

    /// Serves the page on `listen` until Ctrl-C; `ready` is called with the bound address
    /// once the socket listens.
    pub async fn serve(&self, listen: SocketAddr, ready: impl FnOnce(SocketAddr)) -> Result<()> {
        let (listener, bound) = crate::serve::bind(listen).await?;
        ready(bound);
        let app = router(Arc::clone(&self.shared), bound.ip().is_loopback());
        let server = axum::serve(listener, app);
        // Not a graceful shutdown: the open event streams never end by themselves.
        tokio::select! {
            served = std::future::IntoFuture::into_future(server) => {
                served.map_err(|e| Error::Serve {
                    context: "the preview's server stopped".into(),
                    source: Box::new(e),
                })
            }
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The files a preview depends on, as absolute paths (the watcher reports those).
struct Watched {
    file: PathBuf,
    config: PathBuf,
    templates: PathBuf,
    /// Folders to watch, and how.
    dirs: Vec<(PathBuf, RecursiveMode)>,
}

impl Watched {
    fn new(options: &Options, file: &Path) -> Result<Watched> {
        let here = std::env::current_dir()
            .and_then(|d| d.canonicalize())
            .map_err(|source| Error::Io {
                context: "could not find the current folder".into(),
                path: None,
                source,
            })?;
        let locate = |path: &Path| -> PathBuf {
            let path = here.join(path);
            match (path.parent(), path.file_name()) {
                (Some(dir), Some(name)) => dir
                    .canonicalize()
                    .unwrap_or_else(|_| dir.to_path_buf())
                    .join(name),
                _ => path,
            }
        };
        let file = locate(file);
        let config = locate(
            options
                .config
                .as_deref()
                .unwrap_or(Path::new(config::DEFAULT_PATH)),
        );
        let templates = locate(Path::new(templates::DIR));
        let mut dirs: Vec<(PathBuf, RecursiveMode)> =
            vec![(templates.clone(), RecursiveMode::Recursive)];
        for dir in [file.parent(), config.parent(), Some(here.as_path())]
            .into_iter()
            .flatten()
        {
            if !dirs.iter().any(|(d, _)| d == dir) {
                dirs.push((dir.to_path_buf(), RecursiveMode::NonRecursive));
            }
        }
        Ok(Watched {
            file,
            config,
            templates,
            dirs,
        })
    }

    /// Starts watching the folders that exist and are not watched yet.
    fn refresh(
        &self,
        watching: &mut HashSet<PathBuf>,
        mut watch: impl FnMut(&Path, RecursiveMode) -> notify::Result<()>,
    ) {
        for (dir, mode) in &self.dirs {
            if watching.contains(dir) || !dir.is_dir() {
                continue;
            }
            match watch(dir, *mode) {
                Ok(()) => {
                    watching.insert(dir.clone());
                }
                Err(e) => tracing::warn!("could not watch `{}`: {e}", dir.display()),
            }
        }
    }

    /// Whether `event` changed something the preview is made from.
    fn concerns(&self, event: &notify::Event) -> bool {
        if matches!(event.kind, EventKind::Access(_)) {
            return false;
        }
        let config_dir = self.config.parent();
        event.paths.iter().any(|p| {
            *p == self.file
                || *p == self.config
                || Some(p.as_path()) == config_dir
                || p.starts_with(&self.templates)
        })
    }
}

/// Makes `snapshot` the current one, unless nothing changed; tells the open pages. Returns
/// whether it changed.
fn publish(shared: &Shared, snapshot: Snapshot) -> bool {
    let mut current = shared.current.write().unwrap_or_else(|e| e.into_inner());
    if current.0 > 0 && *current.1 == snapshot {
        return false;
    }
    current.0 += 1;
    current.1 = Arc::new(snapshot);
    // Sent under the lock, so a page never carries a generation the streams have not seen.
    shared.generation.send_replace(current.0);
    true
}

/// Reads the config and templates afresh and renders `file` for every variant.
fn build(options: &Options, file: &Path) -> Snapshot {
    match render(options, file) {
        Ok(rendering) => Snapshot::Rendered(rendering),
        Err(error) => {
            let mut report = String::new();
            let diagnostics = error.diagnostics();
            for d in diagnostics {
                let _ = writeln!(report, "{d}");
            }
            if diagnostics.is_empty() {
                let _ = writeln!(report, "error: {error}");
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    let _ = writeln!(report, "caused by: {cause}");
                    source = cause.source();
                }
            }
            let errors = diagnostics.iter().filter(|d| d.is_error()).count().max(1);
            Snapshot::Failed { errors, report }
        }
    }
}

fn render(options: &Options, file: &Path) -> Result<Rendering> {
    let workspace = Workspace::open(options)?;
    let (mailing, diagnostics) = workspace.draft(file)?;
    let edition = mailing.edition();
    let sections = edition.bulletin.sections.len();
    let copy = |recipient: &Recipient, all_sections: bool| -> Result<Sample> {
        let parts = mailing.parts_for(recipient, all_sections)?;
        let to = match &recipient.name {
            Some(name) => format!("{name} <{}>", recipient.email),
            None => recipient.email.clone(),
        };
        Ok(Sample {
            to,
            html: parts.html,
            text: parts.text,
        })
    };
    let member = |audience: Option<&str>, name: Option<&str>| Recipient {
        email: if name.is_some() {
            SAMPLE_EMAIL
        } else {
            NAMELESS_EMAIL
        }
        .into(),
        name: name.map(str::to_string),
        employer: audience.map(str::to_string),
        ..Recipient::default()
    };

    let list = Recipient::address_only(&edition.config.sender.list_address);
    let mut variants = vec![Variant {
        key: "all".into(),
        label: "Everyone".into(),
        who: "Every section, as mailout build writes it and the archive keeps it".into(),
        visible: vec![true; sections],
        named: copy(&member(None, Some(SAMPLE_NAME)), true)?,
        nameless: copy(&list, true)?,
    }];

    // Each audience name once, in order of appearance; names whose members receive the same
    // sections share a variant.
    let mut names: Vec<&str> = Vec::new();
    for i in 0..sections {
        for name in edition.audience(i) {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name);
            }
        }
    }
    let mut groups: Vec<(Vec<&str>, Vec<bool>)> = Vec::new();
    for name in &names {
        let visible = edition.visible(Some(&member(Some(name), None)));
        match groups.iter_mut().find(|(_, v)| *v == visible) {
            Some((group, _)) => group.push(name),
            None => groups.push((vec![name], visible)),
        }
    }
    if !groups.is_empty() {
        let visible = edition.visible(Some(&member(None, None)));
        if !groups.iter().any(|(_, v)| *v == visible) {
            groups.push((Vec::new(), visible));
        }
    }
    for (group, visible) in groups {
        let audience = group.first().copied();
        let (key, label, who) = match audience {
            Some(first) => (
                format!("to-{}", config::slug(first)),
                group.join(" / "),
                format!("What a member in {} receives", or_list(&group)),
            ),
            None => (
                "others".into(),
                "Other members".into(),
                format!("What a member in none of {} receives", or_list(&names)),
            ),
        };
        variants.push(Variant {
            key,
            label,
            who,
            visible,
            named: copy(&member(audience, Some(SAMPLE_NAME)), false)?,
            nameless: copy(&member(audience, None), false)?,
        });
    }

    Ok(Rendering {
        subject: edition.subject.clone(),
        number: edition.number,
        headings: edition
            .bulletin
            .sections
            .iter()
            .map(|s| s.heading.get_ref().clone())
            .collect(),
        variants,
        warnings: diagnostics.iter().map(ToString::to_string).collect(),
    })
}

/// `A`, `A or B`, `A, B or C`.
fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn router(shared: Arc<Shared>, loopback: bool) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .layer(middleware::from_fn_with_state(loopback, loopback_only))
        .with_state(shared)
}

/// Refuses requests for another host name while listening on loopback (DNS rebinding).
async fn loopback_only(State(loopback): State<bool>, request: Request, next: Next) -> Response {
    if loopback {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let local = name.eq_ignore_ascii_case("localhost")
            || name.to_ascii_lowercase().ends_with(".localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !local {
            return (
                StatusCode::FORBIDDEN,
                "the preview answers only on loopback\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// The value of `key` in `uri`'s query.
fn query<'a>(uri: &'a Uri, key: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Server-sent events: `reload` whenever the preview was rebuilt after the page's own
/// generation (`?since=N`).
async fn events(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut generation = shared.generation.subscribe();
    let current = *generation.borrow_and_update();
    let since = query(&uri, "since").and_then(|s| s.parse::<u64>().ok());
    let missed = since.filter(|s| *s != current).map(|_| current);
    let hello = Event::default()
        .retry(Duration::from_secs(1))
        .comment("watching for changes");
    let stream = futures_util::stream::unfold(
        (generation, Some(hello), missed),
        |(mut generation, hello, missed)| async move {
            if let Some(hello) = hello {
                return Some((Ok(hello), (generation, None, missed)));
            }
            let number = match missed {
                Some(number) => number,
                None => {
                    generation.changed().await.ok()?;
                    *generation.borrow_and_update()
                }
            };
            let reload = Event::default().event("reload").data(number.to_string());
            Some((Ok(reload), (generation, None, None)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The page: `?view=KEY&member=named|nameless`.
async fn page(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let (generation, snapshot) = {
        let current = shared.current.read().unwrap_or_else(|e| e.into_inner());
        (current.0, Arc::clone(&current.1))
    };
    let view = query(&uri, "view").unwrap_or("all");
    let named = query(&uri, "member") != Some("nameless");
    let html = render_page(&shared.file, generation, &snapshot, view, named);
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(html),
    )
        .into_response()
}

fn esc(text: &str) -> String {
    handlebars::html_escape(text)
}

fn render_page(
    file: &str,
    generation: u64,
    snapshot: &Snapshot,
    view: &str,
    named: bool,
) -> String {
    let mut body = String::new();
    let title;
    match snapshot {
        Snapshot::Failed { errors, report } => {
            title = format!("{errors} error{} – preview", plural(*errors));
            let _ = write!(
                body,
                "<header class=\"bar\"><div class=\"heading\"><div class=\"title\">Preview</div>\
                 <div class=\"file\">{file}</div></div>{status}</header>\
                 <main class=\"problems\"><section class=\"card\">\
                 <h1><span class=\"badge\">{errors} error{s}</span> The bulletin cannot be built</h1>\
                 <p>Fix the file and save it: this page updates by itself.</p>\
                 <pre class=\"report\">{report}</pre></section></main>",
                file = esc(file),
                status = STATUS,
                s = plural(*errors),
                report = esc(report.trim_end()),
            );
        }
        Snapshot::Rendered(r) => {
            let variant = r
                .variants
                .iter()
                .find(|v| v.key == view)
                .unwrap_or(&r.variants[0]);
            let copy = if named {
                &variant.named
            } else {
                &variant.nameless
            };
            title = format!("{} – preview", r.subject);
            let member = if named { "named" } else { "nameless" };
            let mut audiences = String::new();
            for v in &r.variants {
                let _ = write!(
                    audiences,
                    "<a href=\"/?view={key}&amp;member={member}\"{current} title=\"{who}\">{label}</a>",
                    key = esc(&v.key),
                    current = if v.key == variant.key {
                        " aria-current=\"page\""
                    } else {
                        ""
                    },
                    who = esc(&v.who),
                    label = esc(&v.label),
                );
            }
            let mut members = String::new();
            for (key, label) in [("named", SAMPLE_NAME), ("nameless", "Without a name")] {
                let _ = write!(
                    members,
                    "<a href=\"/?view={view}&amp;member={key}\"{current}>{label}</a>",
                    view = esc(&variant.key),
                    current = if key == member {
                        " aria-current=\"page\""
                    } else {
                        ""
                    },
                );
            }
            let shown = variant.visible.iter().filter(|v| **v).count();
            let left_out: Vec<&str> = r
                .headings
                .iter()
                .zip(&variant.visible)
                .filter(|(_, v)| !**v)
                .map(|(h, _)| h.as_str())
                .collect();
            let mut about = format!(
                "<span>{who}: <b>{shown} of {total} section{s}</b>.</span>",
                who = esc(&variant.who),
                total = r.headings.len(),
                s = plural(r.headings.len()),
            );
            if !left_out.is_empty() {
                let _ = write!(
                    about,
                    "<span class=\"left-out\"><b>Left out:</b> {}</span>",
                    left_out
                        .iter()
                        .map(|h| esc(h))
                        .collect::<Vec<_>>()
                        .join(" · ")
                );
            }
            let warnings = if r.warnings.is_empty() {
                String::new()
            } else {
                format!(
                    "<details class=\"warnings\"><summary>{n} warning{s} from <code>mailout check</code></summary><pre>{list}</pre></details>",
                    n = r.warnings.len(),
                    s = plural(r.warnings.len()),
                    list = esc(&r.warnings.join("\n")),
                )
            };
            let _ = write!(
                body,
                "<header class=\"bar\"><div class=\"heading\"><div class=\"title\">{subject}</div>\
                 <div class=\"file\">{file} · number {number}</div></div>{status}</header>\
                 <nav class=\"controls\">\
                 <div class=\"group\"><span class=\"label\">Audience</span><div class=\"seg\">{audiences}</div></div>\
                 <div class=\"group\"><span class=\"label\">Member</span><div class=\"seg\">{members}</div></div>\
                 <div class=\"to\"><span class=\"label\">To</span> {to}</div>\
                 </nav>\
                 <div class=\"about\">{about}</div>{warnings}\
                 <main class=\"panes\">\
                 <section class=\"pane\"><h2><span>HTML</span><span>{size}</span></h2>\
                 <iframe title=\"HTML part\" sandbox=\"allow-same-origin allow-popups allow-popups-to-escape-sandbox\" srcdoc=\"{html}\"></iframe></section>\
                 <section class=\"pane\"><h2><span>Plain text</span><span>{lines} lines</span></h2>\
                 <pre class=\"text\">{text}</pre></section>\
                 </main>",
                subject = esc(&r.subject),
                file = esc(file),
                number = r.number,
                status = STATUS,
                to = esc(&copy.to),
                size = size(copy.html.len()),
                html = esc(&copy.html),
                lines = copy.text.lines().count(),
                text = esc(&copy.text),
            );
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body data-generation=\"{generation}\">{body}<script>{SCRIPT}</script></body></html>\n",
        title = esc(&title),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `12.3 KB`, the way Gmail's 102 KB clipping limit is counted.
fn size(bytes: usize) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}

const STATUS: &str = "<span id=\"status\" class=\"status\">connecting</span>";

const STYLE: &str = r#"
:root{--navy:#1f3a5f;--ink:#1d1d1f;--muted:#5b6270;--line:#d9dde3;--bg:#eef0f3;--mono:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace}
*{box-sizing:border-box}
html,body{height:100%;margin:0}
body{display:flex;flex-direction:column;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
.bar{display:flex;align-items:center;gap:16px;padding:10px 20px;background:var(--navy);color:#fff}
.heading{min-width:0}
.title{font-weight:600;font-size:15px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.file{color:#c9d6e8;font:12px var(--mono);margin-top:1px}
.status{margin-left:auto;flex:none;font-size:12px;padding:3px 11px;border-radius:999px;background:rgba(255,255,255,.12);color:#e6edf6}
.status::before{content:"";display:inline-block;width:8px;height:8px;border-radius:50%;background:#9aa4b2;margin-right:7px;vertical-align:1px}
.status.live::before{background:#4cd07d}
.status.off::before{background:#ef6b62}
.controls{display:flex;flex-wrap:wrap;gap:10px 32px;align-items:center;padding:10px 20px;background:#fff;border-bottom:1px solid var(--line)}
.group{display:flex;align-items:center;gap:10px}
.label{font-size:11px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;color:var(--muted)}
.seg{display:inline-flex;flex-wrap:wrap;border:1px solid var(--line);border-radius:7px;overflow:hidden}
.seg a{padding:5px 13px;color:var(--ink);text-decoration:none;border-left:1px solid var(--line);background:#fff}
.seg a:first-child{border-left:0}
.seg a:hover{background:#f1f4f8}
.seg a[aria-current]{background:var(--navy);color:#fff}
.about{display:flex;flex-wrap:wrap;gap:4px 22px;padding:8px 20px;font-size:13px;color:var(--muted);background:#f8f9fb;border-bottom:1px solid var(--line)}
.about b{color:var(--ink)}
.to{margin-left:auto;font:12px var(--mono);color:var(--muted)}
.to .label{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin-right:6px}
.warnings{padding:8px 20px;background:#fff8e6;border-bottom:1px solid #f0dfb0;font-size:13px}
.warnings summary{cursor:pointer;color:#7a5a00}
.warnings pre{margin:8px 0 2px;font:12px/1.5 var(--mono);white-space:pre-wrap}
.panes{flex:1;min-height:0;display:grid;grid-template-columns:minmax(0,1.1fr) minmax(0,1fr);gap:16px;padding:16px 20px 20px}
.pane{display:flex;flex-direction:column;min-height:0;background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.pane h2{display:flex;justify-content:space-between;margin:0;padding:8px 14px;font-size:11px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);background:#fafbfc;border-bottom:1px solid var(--line)}
.pane h2 span+span{font-weight:400;letter-spacing:0;text-transform:none}
.pane iframe{flex:1;width:100%;border:0;background:var(--bg)}
.pane pre{flex:1;margin:0;padding:18px 22px;overflow:auto;font:13px/1.5 var(--mono);white-space:pre;tab-size:8}
.problems{flex:1;overflow:auto;padding:28px 20px}
.card{max-width:980px;margin:0 auto;background:#fff;border:1px solid var(--line);border-top:4px solid #c8372d;border-radius:8px;padding:20px 24px}
.card h1{margin:0 0 4px;font-size:18px}
.card p{margin:0 0 14px;color:var(--muted)}
.badge{display:inline-block;margin-right:8px;padding:2px 9px;border-radius:999px;background:#fdecea;color:#a52a21;font-size:12px;vertical-align:2px}
.report{margin:0;padding:14px 16px;overflow:auto;background:#1e2430;color:#e8ecf2;border-radius:6px;font:13px/1.55 var(--mono)}
@media (max-width:900px){.panes{grid-template-columns:1fr}.pane{min-height:80vh}.to{margin-left:0}}
"#;

/// Reloads the page when the preview is rebuilt, keeping both panes where they were.
const SCRIPT: &str = r#"
(() => {
  const status = document.getElementById("status");
  const frame = document.querySelector("iframe");
  const text = document.querySelector("pre.text");
  const key = "mailout-preview-scroll";
  try {
    const saved = JSON.parse(sessionStorage.getItem(key) || "null");
    sessionStorage.removeItem(key);
    if (saved && text) text.scrollTop = saved.text;
    if (saved && frame) {
      const place = () => frame.contentWindow.scrollTo(0, saved.html);
      frame.addEventListener("load", place);
      if (frame.contentDocument && frame.contentDocument.readyState === "complete") place();
    }
  } catch (e) {}
  const since = document.body.dataset.generation;
  const events = new EventSource("/events?since=" + since);
  events.addEventListener("reload", () => {
    try {
      sessionStorage.setItem(key, JSON.stringify({
        text: text ? text.scrollTop : 0,
        html: frame ? frame.contentWindow.scrollY : 0,
      }));
    } catch (e) {}
    location.reload();
  });
  events.onopen = () => { status.textContent = "live"; status.className = "status live"; };
  events.onerror = () => { status.textContent = "not connected"; status.className = "status off"; };
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_naturally() {
        assert_eq!(or_list(&["NPS"]), "NPS");
        assert_eq!(or_list(&["NPS", "CRC"]), "NPS or CRC");
        assert_eq!(or_list(&["NPS", "PbNI", "CRC"]), "NPS, PbNI or CRC");
    }

    #[test]
    fn query_values_are_found_by_key() {
        let uri: Uri = "/?view=to-nps&member=nameless".parse().unwrap();
        assert_eq!(query(&uri, "view"), Some("to-nps"));
        assert_eq!(query(&uri, "member"), Some("nameless"));
        assert_eq!(query(&uri, "since"), None);
    }
}
