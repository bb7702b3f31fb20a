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

    /// State for `workspace`: its token key, a store connection of its own, its hosts.
    pub fn for_workspace(workspace: &Workspace) -> Result<ServeState> {
        let serve = &workspace.config.serve;
        Ok(ServeState::new(
            workspace.open_store()?,
            workspace.token_key()?,
            workspace.config.organisation.name.clone(),
            workspace.config.served_hosts(),
        )
        .with_limits(
            Duration::from_secs(serve.header_timeout_secs.max(1)),
            Duration::from_secs(serve.connection_secs.max(1)),
        ))
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

fn not_found(state: &ServeState) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page(
            &state.organisation,
            "Link not recognised",
            "<p>This unsubscribe link is not valid. Please use the link from a recent bulletin.</p>",
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
         button{{font-size:1em;padding:.5em 1.2em;background:#1f3a5f;color:#fff;border:0;border-radius:4px;cursor:pointer}}</style>\
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
