//! `mailout serve`: the one-click unsubscribe endpoint (RFC 8058). `POST /u/TOKEN`
//! suppresses the member at once (mail providers call it without a person); `GET /u/TOKEN`
//! shows a page with a button that posts, so a link scanner following the URL changes
//! nothing. A token that does not verify gets a 404 and changes nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::clock;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::{self, TokenKey};

/// What the handlers share.
pub struct ServeState {
    store: Mutex<Box<dyn Store>>,
    tokens: TokenKey,
    organisation: String,
}

impl ServeState {
    /// State over `store`, verifying tokens with `tokens`.
    pub fn new(store: Box<dyn Store>, tokens: TokenKey, organisation: String) -> ServeState {
        ServeState {
            store: Mutex::new(store),
            tokens,
            organisation,
        }
    }

    /// The address `token` was made for, if it verifies against a member.
    fn member_for(&self, token: &str) -> Result<Option<String>> {
        let Some(key) = token::key_of(token) else {
            return Ok(None);
        };
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let members = store.members_by_token_key(&key)?;
        Ok(members
            .into_iter()
            .map(|m| m.email)
            .find(|email| self.tokens.verify(token, email)))
    }
}

/// The routes, for serving or testing.
pub fn router(state: Arc<ServeState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/u/{token}", get(confirm_page).post(unsubscribe))
        .with_state(state)
}

/// A listening socket on `listen`, and the address it got (the port, when `listen` says 0).
pub async fn bind(listen: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let failed = |e: std::io::Error| Error::Usage(format!("could not listen on {listen}: {e}"));
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Usage(format!("the server stopped: {e}")))
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
