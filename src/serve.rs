//! `mailout serve`: the one-click unsubscribe endpoint (RFC 8058). `POST /u/TOKEN`
//! suppresses the member at once (mail providers call it without a person); `GET /u/TOKEN`
//! shows a page with a button that posts, so a link scanner following the URL changes
//! nothing. A token that does not verify gets a 404 and changes nothing.
//!
//! It faces the internet, so it defends itself: a client has `[serve] header_timeout_secs`
//! (10) to send its request head and a connection lives at most `[serve] connection_secs`
//! (60); heads over [`MAX_HEAD`] and bodies over [`MAX_BODY`] are refused; at most
//! [`MAX_CONNECTIONS`] are served at once; and only requests for the configured public host
//! (`[serve] public_url`, else the host of `[sender] unsubscribe_url`) or a loopback name
//! are answered, so a misrouted or rebound name gets 421 and nothing else.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use crate::clock;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::{Purpose, TokenKey};
use crate::workspace::Workspace;

/// The largest request head read.
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest request body read.
pub const MAX_BODY: usize = 4 * 1024;
/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 256;

/// What the handlers share.
pub struct ServeState {
    store: Mutex<Box<dyn Store>>,
    tokens: TokenKey,
    organisation: String,
    hosts: Vec<String>,
    /// The lists members may opt out of: name and what it is for.
    optional_lists: Vec<(String, Option<String>)>,
    /// Sends members the link to their preferences page ("email me my link"), when set up.
    links: Option<LinkMail>,
    header_timeout: Duration,
    lifetime: Duration,
}

impl ServeState {
    /// State over `store`, verifying tokens with `tokens`, answering for `hosts` (and
    /// loopback).
    pub fn new(
        store: Box<dyn Store>,
        tokens: TokenKey,
        organisation: String,
        hosts: Vec<String>,
    ) -> ServeState {
        ServeState {
            store: Mutex::new(store),
            tokens,
            organisation,
            hosts,
            optional_lists: Vec::new(),
            links: None,
            header_timeout: Duration::from_secs(10),
            lifetime: Duration::from_secs(60),
        }
    }

    /// With these limits: the time to send a request head, and a connection's lifetime.
    pub fn with_limits(mut self, header_timeout: Duration, lifetime: Duration) -> ServeState {
        self.header_timeout = header_timeout;
        self.lifetime = lifetime;
        self
    }

    /// With "email me my link": members asking on `/p/` are sent their link over `mailer`.
    fn with_link_mail(mut self, mailer: LinkMailer) -> ServeState {
        let (queue, waiting) = tokio::sync::mpsc::unbounded_channel();
        self.links = Some(LinkMail {
            queue,
            waiting: Mutex::new(Some((waiting, mailer))),
            asked: Mutex::new(Asked::default()),
        });
        self
    }

    /// With these lists offered on the preferences page (name, description).
    pub fn with_optional_lists(mut self, lists: Vec<(String, Option<String>)>) -> ServeState {
        self.optional_lists = lists;
        self
    }

    /// State for `workspace`: its token key, a store connection of its own, its hosts.
    pub fn for_workspace(workspace: &Workspace) -> Result<ServeState> {
        let serve = &workspace.config.serve;
        let lists = workspace
            .config
            .lists
            .iter()
            .filter(|(_, l)| l.optional)
            .map(|(name, l)| (name.clone(), l.description.clone()))
            .collect();
        Ok(ServeState::new(
            workspace.open_store()?,
            workspace.token_key()?,
            workspace.config.organisation.name.clone(),
            workspace.config.served_hosts(),
        )
        .with_limits(
            Duration::from_secs(serve.header_timeout_secs.max(1)),
            Duration::from_secs(serve.connection_secs.max(1)),
        )
        .with_optional_lists(lists)
        .with_link_mail(LinkMailer::for_workspace(workspace)?))
    }

    /// The address `token` was made for, if it verifies against a member.
    fn member_for(&self, token: &str) -> Result<Option<String>> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        crate::unsubscribes::member_for(
            store.as_ref(),
            &self.tokens,
            token,
            Purpose::Unsubscribe,
            &clock::stamp(),
        )
    }

    fn allows(&self, host: &str) -> bool {
        let name = host_name(host);
        is_loopback_name(&name) || self.hosts.contains(&name)
    }
}

/// `host[:port]` or `[v6]:port` → the lowercase name.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The routes, for serving or testing.
pub fn router(state: Arc<ServeState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/u/{token}", get(confirm_page).post(unsubscribe))
        .route("/p/{token}", get(preferences_page).post(preferences_save))
        .route("/p", get(link_page).post(link_request))
        .route("/p/", get(link_page).post(link_request))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Refuses requests for hosts other than ours (421) and bodies over [`MAX_BODY`] (413).
async fn guard(State(state): State<Arc<ServeState>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let too_long = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .parse::<u64>()
                .map_or(true, |n| n > MAX_BODY as u64)
        });
    match host {
        Some(_) if too_long => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Html(page(
                &state.organisation,
                "Too large",
                "<p>This request is larger than this server takes.</p>",
            )),
        )
            .into_response(),
        Some(host) if state.allows(&host) => next.run(request).await,
        _ => (
            StatusCode::MISDIRECTED_REQUEST,
            Html(page(
                &state.organisation,
                "Wrong address",
                "<p>This server does not answer for that address.</p>",
            )),
        )
            .into_response(),
    }
}

/// A listening socket on `listen`, and the address it got (the port, when `listen` says 0).
pub async fn bind(listen: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let failed = |source: std::io::Error| Error::Io {
        context: format!("could not listen on {listen}"),
        path: None,
        source,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    Ok((listener, bound))
}

/// Serves on `listen` until Ctrl-C; `ready` is called once the socket is bound.
pub async fn serve(
    state: Arc<ServeState>,
    listen: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let (listener, bound) = bind(listen).await?;
    // One sender for "email me my link", in the order asked.
    if let Some(links) = &state.links
        && let Some((waiting, mailer)) = links
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    {
        tokio::spawn(mailer.run(waiting, Arc::clone(&state)));
    }
    ready(bound);
    let (header_timeout, lifetime) = (state.header_timeout, state.lifetime);
    let app = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            _ = &mut stop => return Ok(()),
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { return Ok(()) };
        let accepted = tokio::select! {
            _ = &mut stop => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, _) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: say so, and keep serving.
                tracing::warn!("could not accept a connection: {e}");
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            // Past its lifetime a connection is dropped, whatever it is doing.
            let _ = tokio::time::timeout(lifetime, connection).await;
        });
    }
}

async fn index(State(state): State<Arc<ServeState>>) -> Html<String> {
    Html(page(
        &state.organisation,
        "mailout",
        "<p>This server handles unsubscribe links for the organisation's bulletins.</p>",
    ))
}

async fn confirm_page(State(state): State<Arc<ServeState>>, Path(token): Path<String>) -> Response {
    let lookup = {
        let state = Arc::clone(&state);
        let token = token.clone();
        tokio::task::spawn_blocking(move || state.member_for(&token)).await
    };
    match lookup {
        Ok(Ok(Some(email))) => Html(page(
            &state.organisation,
            "Unsubscribe",
            &format!(
                "<p>Stop sending bulletins to <strong>{}</strong>?</p>\
                 <form method=\"post\" action=\"/u/{}\">\
                 <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\">Unsubscribe</button></form>",
                handlebars::html_escape(&email),
                handlebars::html_escape(&token)
            ),
        ))
        .into_response(),
        Ok(Ok(None)) => not_found(&state),
        _ => server_error(&state),
    }
}

async fn unsubscribe(State(state): State<Arc<ServeState>>, Path(token): Path<String>) -> Response {
    let done = {
        let state = Arc::clone(&state);
        tokio::task::spawn_blocking(move || -> Result<Option<String>> {
            let Some(email) = state.member_for(&token)? else {
                return Ok(None);
            };
            let store = state.store.lock().unwrap_or_else(|e| e.into_inner());
            store.suppress(
                &email,
                "unsubscribed",
                Some("one-click link"),
                &clock::stamp(),
            )?;
            tracing::info!("unsubscribed {email}");
            Ok(Some(email))
        })
        .await
    };
    match done {
        Ok(Ok(Some(email))) => Html(page(
            &state.organisation,
            "Unsubscribed",
            &format!(
                "<p><strong>{}</strong> will not receive any more bulletins.</p>",
                handlebars::html_escape(&email)
            ),
        ))
        .into_response(),
        Ok(Ok(None)) => not_found(&state),
        _ => server_error(&state),
    }
}

/// What the preferences page shows of a member.
struct Standing {
    email: String,
    member: Option<crate::store::Member>,
    suppression: Option<crate::store::Suppression>,
    opted_out: Vec<String>,
}

impl ServeState {
    /// The member `token` was made for, and where they stand.
    fn standing(&self, token: &str) -> Result<Option<Standing>> {
        let Some(email) = self.member_for(token)? else {
            return Ok(None);
        };
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Some(Standing {
            member: store.member(&email)?,
            suppression: store.suppressions()?.into_iter().find(|s| s.email == email),
            opted_out: store.list_optouts(&email)?,
            email,
        }))
    }
}

/// `GET /p/TOKEN`: the member's name, branch and employer as the union holds them, the
/// optional lists with their choice, and a way out (or back in). No script; every form
/// carries the page's form key.
async fn preferences_page(
    State(state): State<Arc<ServeState>>,
    Path(token): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let lookup = {
        let state = Arc::clone(&state);
        let token = token.clone();
        tokio::task::spawn_blocking(move || state.standing(&token)).await
    };
    let standing = match lookup {
        Ok(Ok(Some(standing))) => standing,
        Ok(Ok(None)) => return not_found(&state),
        _ => return server_error(&state),
    };
    let esc = |s: &str| handlebars::html_escape(s);
    let key = state.tokens.form_key(&token);
    let action = format!("/p/{}", esc(&token));
    let hidden = format!("<input type=\"hidden\" name=\"form\" value=\"{key}\">");
    let mut body = String::new();
    if query.as_deref() == Some("saved=1") {
        body.push_str("<p class=\"saved\" role=\"status\">Your choices are saved.</p>");
    }
    let member = standing.member.as_ref();
    let field = |v: Option<&Option<String>>| {
        v.and_then(|v| v.as_deref())
            .filter(|v| !v.trim().is_empty())
            .map_or_else(|| "<em>not held</em>".to_string(), esc)
    };
    body.push_str(&format!(
        "<h2>What the union holds about you</h2><dl>\
         <dt>Name</dt><dd>{}</dd><dt>Address</dt><dd>{}</dd>\
         <dt>Branch</dt><dd>{}</dd><dt>Employer</dt><dd>{}</dd></dl>\
         <p class=\"note\">If any of this is wrong, tell your branch secretary.</p>",
        field(member.map(|m| &m.name)),
        esc(&standing.email),
        field(member.map(|m| &m.branch)),
        field(member.map(|m| &m.employer)),
    ));
    match standing.suppression.as_ref().map(|s| s.reason.as_str()) {
        Some("unsubscribed") => body.push_str(&format!(
            "<h2>Bulletins</h2><p>You unsubscribed: no bulletins are sent to you.</p>\
             <form method=\"post\" action=\"{action}\">{hidden}\
             <button type=\"submit\" name=\"action\" value=\"resubscribe\">Re-subscribe to the bulletins</button></form>"
        )),
        Some(_) => body.push_str(
            "<h2>Bulletins</h2><p>Bulletins to this address are stopped (mail to it came back, \
             or the union's office stopped them). To have them again, write to the union.</p>",
        ),
        None => {
            body.push_str(&format!(
                "<h2>Bulletins</h2><form method=\"post\" action=\"{action}\">{hidden}"
            ));
            if state.optional_lists.is_empty() {
                body.push_str("<p>Every bulletin goes to all members; there are no lists to choose.</p>");
            } else {
                body.push_str("<fieldset><legend>Lists you receive</legend>");
                for (name, description) in &state.optional_lists {
                    let id = format!("list-{}", esc(name));
                    let checked = if standing.opted_out.contains(name) {
                        ""
                    } else {
                        " checked"
                    };
                    body.push_str(&format!(
                        "<div class=\"choice\"><input type=\"checkbox\" id=\"{id}\" name=\"list\" value=\"{}\"{checked}>\
                         <label for=\"{id}\"><strong>{}</strong>{}</label></div>",
                        esc(name),
                        esc(name),
                        description
                            .as_deref()
                            .map(|d| format!(": {}", esc(d)))
                            .unwrap_or_default()
                    ));
                }
                body.push_str(
                    "</fieldset><button type=\"submit\" name=\"action\" value=\"save\">Save my choices</button>",
                );
            }
            body.push_str(&format!(
                "</form><form method=\"post\" action=\"{action}\">{hidden}\
                 <button type=\"submit\" name=\"action\" value=\"unsubscribe\" class=\"secondary\">Unsubscribe from all bulletins</button></form>"
            ));
        }
    }
    Html(page(&state.organisation, "Your mail preferences", &body)).into_response()
}

/// `POST /p/TOKEN`: saves the member's choices, unsubscribes or re-subscribes them, each
/// in their history, and shows the page again. A post without this page's form key, or
/// from another site, changes nothing.
async fn preferences_save(
    State(state): State<Arc<ServeState>>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let pairs = form_fields(&body);
    let given = |name: &str| field(&pairs, name);
    if from_elsewhere(&state, &headers)
        || !state
            .tokens
            .form_key_matches(&token, given("form").unwrap_or(""))
    {
        return forbidden(&state);
    }
    let action = given("action").unwrap_or("").to_string();
    let chosen: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "list")
        .map(|(_, v)| v.clone())
        .collect();
    let done = {
        let state = Arc::clone(&state);
        let token = token.clone();
        tokio::task::spawn_blocking(move || -> Result<Option<bool>> {
            let Some(email) = state.member_for(&token)? else {
                return Ok(None);
            };
            let store = state.store.lock().unwrap_or_else(|e| e.into_inner());
            let now = clock::stamp();
            let event = |change: &str, evidence: Option<String>| crate::store::MemberEvent {
                email: email.clone(),
                at: now.clone(),
                change: change.into(),
                source: "preferences page".into(),
                evidence,
            };
            let own = store
                .suppressions()?
                .into_iter()
                .find(|s| s.email == email)
                .map(|s| s.reason);
            match action.as_str() {
                "save" if own.is_none() => {
                    for (list, _) in &state.optional_lists {
                        let receive = chosen.contains(list);
                        let change = if receive {
                            "list-opt-in"
                        } else {
                            "list-opt-out"
                        };
                        store.set_list_choice(
                            &email,
                            list,
                            receive,
                            &event(change, Some(format!("list `{list}`"))),
                        )?;
                    }
                }
                "unsubscribe" => {
                    store.suppress(&email, "unsubscribed", Some("preferences page"), &now)?;
                }
                // Only the member's own unsubscribe is theirs to undo.
                "resubscribe" if own.as_deref() == Some("unsubscribed") => {
                    store.unsuppress(&email, &event("resubscribed", None))?;
                }
                _ => return Ok(Some(false)),
            }
            tracing::info!("preferences of {email}: {action}");
            Ok(Some(true))
        })
        .await
    };
    match done {
        Ok(Ok(Some(true))) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/p/{token}?saved=1"))],
        )
            .into_response(),
        Ok(Ok(Some(false))) => (
            StatusCode::BAD_REQUEST,
            Html(page(
                &state.organisation,
                "Not saved",
                "<p>That choice is not one this page offers now; nothing was changed.</p>",
            )),
        )
            .into_response(),
        Ok(Ok(None)) => not_found(&state),
        _ => server_error(&state),
    }
}

/// The most links sent to one address within [`ONE_ADDRESS_WINDOW`].
const ONE_ADDRESS_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most links sent in all within [`ALL_WINDOW`].
const ALL_MOST: usize = 60;
/// The window of [`ALL_MOST`].
const ALL_WINDOW: Duration = Duration::from_secs(60 * 60);

/// "Email me my link": who asked lately, and the queue to the one sender.
struct LinkMail {
    queue: tokio::sync::mpsc::UnboundedSender<String>,
    waiting: Mutex<Option<(tokio::sync::mpsc::UnboundedReceiver<String>, LinkMailer)>>,
    asked: Mutex<Asked>,
}

/// Recent requests, for the rate limits.
#[derive(Default)]
struct Asked {
    by_address: std::collections::HashMap<String, std::time::Instant>,
    all: std::collections::VecDeque<std::time::Instant>,
}

impl Asked {
    /// Whether a link may go to `email` now (and if so, it counts).
    fn allow(&mut self, email: &str) -> bool {
        let now = std::time::Instant::now();
        self.by_address
            .retain(|_, at| now.duration_since(*at) < ONE_ADDRESS_WINDOW);
        while self
            .all
            .front()
            .is_some_and(|at| now.duration_since(*at) >= ALL_WINDOW)
        {
            self.all.pop_front();
        }
        if self.by_address.contains_key(email) || self.all.len() >= ALL_MOST {
            return false;
        }
        self.by_address.insert(email.to_string(), now);
        self.all.push_back(now);
        true
    }
}

/// Sends a member the link to their preferences page, over the configured transport.
struct LinkMailer {
    setup: crate::send::worker::Setup,
    kind: crate::send::worker::TransportKind,
    from: lettre::message::Mailbox,
    preferences_url: String,
    organisation: String,
    list_domain: String,
    outbox: std::path::PathBuf,
}

impl LinkMailer {
    fn for_workspace(workspace: &Workspace) -> Result<LinkMailer> {
        let config = &workspace.config;
        let kind = crate::send::worker::TransportKind::default_for(config);
        let from = config
            .sender
            .from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| Error::Setting {
                context: format!("`[sender] from` `{}` is not a mailbox", config.sender.from),
                source: Box::new(e),
            })?;
        Ok(LinkMailer {
            setup: crate::send::worker::Setup::new(workspace, Some(kind), None)?,
            kind,
            from,
            preferences_url: config.sender.preferences_url(),
            organisation: config.organisation.name.clone(),
            list_domain: config.sender.list_domain.clone(),
            outbox: std::path::PathBuf::from(crate::outbox::DEFAULT_DIR).join("links"),
        })
    }

    /// Sends each address that comes, one at a time.
    async fn run(
        self,
        mut waiting: tokio::sync::mpsc::UnboundedReceiver<String>,
        state: Arc<ServeState>,
    ) {
        while let Some(email) = waiting.recv().await {
            if let Err(e) = self.send(&email, &state).await {
                tracing::warn!("could not send a preferences link: {}", e.one_line());
            }
        }
    }

    async fn send(&self, email: &str, state: &ServeState) -> Result<()> {
        use crate::send::transport::Transport;
        let token = state.tokens.token(email);
        let link = self.preferences_url.replace("{token}", &token);
        let to: lettre::Address = email.parse().map_err(|e| Error::Setting {
            context: format!("`{email}` is not an address mail can be sent to"),
            source: Box::new(e),
        })?;
        let nonce = crate::text::hex(&clock::random_bytes::<8>().map_err(|source| Error::Io {
            context: "could not take random bytes for a Message-ID".into(),
            path: None,
            source,
        })?);
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(lettre::message::Mailbox::new(None, to.clone()))
            .subject(format!("Your mail preferences at {}", self.organisation))
            .message_id(Some(format!("<preferences.{nonce}@{}>", self.list_domain)))
            .date(clock::system_time())
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(format!(
                "You asked for the link to your mail preferences at {}.\n\n\
                 {link}\n\n\
                 It shows what the union holds about you, lets you choose the lists you\n\
                 receive, and unsubscribe. Keep it to yourself: anyone with it can change\n\
                 your choices. If you did not ask, you can ignore this message.\n",
                self.organisation
            ))
            .map_err(|e| Error::Failed {
                context: "could not make the preferences link message".into(),
                source: Box::new(e),
            })?;
        let bytes = message.formatted();
        let bytes = match self.setup.signer() {
            Some(signer) => signer.sign(&bytes)?,
            None => bytes,
        };
        let mut transport = self.setup.transport(self.kind, &self.outbox)?;
        let outcome = transport
            .deliver(self.setup.from(), &to, &bytes, true)
            .await;
        transport.close().await;
        tracing::info!("preferences link for {email}: {outcome:?}");
        Ok(())
    }
}

/// The answer to "email me my link", the same whoever asks.
const LINK_SENT: &str = "<p role=\"status\">If that address is on the union's list, a link to its \
    preferences is on its way to it. It can take a few minutes; look in the junk folder too.</p>";

/// `GET /p/`: asks for an address to send the preferences link to.
async fn link_page(State(state): State<Arc<ServeState>>) -> Response {
    if state.links.is_none() {
        return not_found(&state);
    }
    Html(page(
        &state.organisation,
        "Your mail preferences",
        &link_form(&state, ""),
    ))
    .into_response()
}

fn link_form(state: &ServeState, before: &str) -> String {
    format!(
        "{before}<p>Your preferences link is in the footer of every bulletin. If you cannot find \
         one, we can email it to you.</p>\
         <form method=\"post\" action=\"/p/\"><input type=\"hidden\" name=\"form\" value=\"{}\">\
         <p><label for=\"email\">Your email address</label><br>\
         <input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"email\" required size=\"32\"></p>\
         <button type=\"submit\">Email me my link</button></form>",
        state.tokens.form_key("/p/")
    )
}

/// `POST /p/`: sends the link if the address is a member's (at most once a quarter of an
/// hour per address, and [`ALL_MOST`] an hour in all), answering the same either way, at
/// once: the sending happens after the answer.
async fn link_request(
    State(state): State<Arc<ServeState>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let Some(links) = &state.links else {
        return not_found(&state);
    };
    let pairs = form_fields(&body);
    let given = |name: &str| field(&pairs, name);
    if from_elsewhere(&state, &headers)
        || !state
            .tokens
            .form_key_matches("/p/", given("form").unwrap_or(""))
    {
        return forbidden(&state);
    }
    let Some(email) = crate::address::normalise_address(given("email").unwrap_or("")) else {
        let again = link_form(
            &state,
            "<p class=\"saved\" role=\"alert\">That is not an email address.</p>",
        );
        return (
            StatusCode::BAD_REQUEST,
            Html(page(&state.organisation, "Your mail preferences", &again)),
        )
            .into_response();
    };
    let is_member = {
        let state = Arc::clone(&state);
        let email = email.clone();
        tokio::task::spawn_blocking(move || {
            let store = state.store.lock().unwrap_or_else(|e| e.into_inner());
            store.member(&email).map(|m| m.is_some())
        })
        .await
    };
    if let Ok(Ok(true)) = is_member
        && links
            .asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(&email)
    {
        let _ = links.queue.send(email);
    }
    Html(page(
        &state.organisation,
        "Your mail preferences",
        LINK_SENT,
    ))
    .into_response()
}

/// A form's fields (`application/x-www-form-urlencoded`), repeats kept in order.
fn form_fields(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// The first value of field `name`.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether a post came from a page of another site.
fn from_elsewhere(state: &ServeState, headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .and_then(|o| url::Url::parse(o).ok())
        .is_some_and(|o| !state.allows(o.host_str().unwrap_or("")))
        || headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site")
}

fn forbidden(state: &ServeState) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(page(
            &state.organisation,
            "Not saved",
            "<p>This form did not come from your preferences page, so nothing was changed. \
             Open the preferences link from a recent bulletin and try again.</p>",
        )),
    )
        .into_response()
}

fn not_found(state: &ServeState) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page(
            &state.organisation,
            "Link not recognised",
            "<p>This link is not valid. Please use the link from a recent bulletin.</p>",
        )),
    )
        .into_response()
}

fn server_error(state: &ServeState) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(page(
            &state.organisation,
            "Something went wrong",
            "<p>Please try again later.</p>",
        )),
    )
        .into_response()
}

fn page(organisation: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} – {org}</title>\
         <style>body{{font-family:Arial,Helvetica,sans-serif;max-width:32em;margin:3em auto;padding:0 1em;color:#1d1d1f}}\
         button{{font-size:1em;padding:.5em 1.2em;margin:.5em 0;background:#1f3a5f;color:#fff;border:0;border-radius:4px;cursor:pointer}}\
         button.secondary{{background:#fff;color:#8a1c1c;border:2px solid #8a1c1c}}\
         button:focus,input:focus{{outline:3px solid #b35900;outline-offset:2px}}\
         dt{{font-weight:bold}}dd{{margin:0 0 .6em 0}}fieldset{{border:1px solid #5a6472;padding:.8em}}\
         .choice{{margin:.4em 0}}.note{{color:#4a5260}}.saved{{background:#e6f2e6;color:#14491f;padding:.6em;border-left:4px solid #14491f}}</style>\
         </head><body><h1>{title}</h1>{body}<p><small>{org}</small></p></body></html>\n",
        org = handlebars::html_escape(organisation),
        title = handlebars::html_escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(host_name("Union.Example.org:443"), "union.example.org");
        assert_eq!(host_name("[::1]:8025"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert!(is_loopback_name("::1") && is_loopback_name("localhost"));
        assert!(!is_loopback_name("evil.example"));
    }
}
