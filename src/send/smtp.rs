//! SMTP: one connection per send worker, driven through lettre's `AsyncSmtpConnection` over
//! a TCP stream we open ourselves with `TCP_NODELAY` (lettre's own transport leaves Nagle on
//! and manages about 22 messages a second per connection: see CRATES.md).
//!
//! `smtp://HOST:PORT` uses STARTTLS when offered (`?tls=opportunistic`, the default, which
//! like Postfix's `may` level does not verify the certificate), `?tls=required` insists on
//! STARTTLS with a verified certificate, `?tls=none` stays in plain text; `smtps://` is
//! implicit TLS, verified. `?ca=PATH` adds a PEM root certificate to trust, for a relay
//! with a private CA.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::future::Future;

use lettre::Address;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailParameter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::transport::{Delivery, Transport};
use crate::config;
use crate::error::{Error, Result};

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`smtps://`), certificate verified.
    Implicit,
    /// STARTTLS required, certificate verified.
    Required,
    /// STARTTLS when the server offers it, certificate not verified.
    Opportunistic,
    /// Plain text.
    None,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// TLS policy.
    pub security: Security,
    /// AUTH credentials, if a user is configured.
    pub credentials: Option<Credentials>,
    /// Timeout for connecting and for each message.
    pub timeout: Duration,
    /// The name we greet with (EHLO).
    pub hello: String,
    /// Extra trusted root certificates (PEM, from `?ca=PATH`), for a relay with a private CA.
    pub ca: Option<Vec<u8>>,
}

impl SmtpSettings {
    /// Reads `url` (`smtp://[user@]host[:port][?tls=…]` or `smtps://…`) and the rest of
    /// `[smtp]`; the password comes from the environment variable `password_env`.
    pub fn new(url: &str, smtp: &config::Smtp, hello: &str) -> Result<SmtpSettings> {
        let bad = |why: &str| Error::Usage(format!("SMTP URL `{url}`: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let implicit = match parsed.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => return Err(bad("the scheme must be smtp:// or smtps://")),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port().unwrap_or(if implicit { 465 } else { 25 });
        let mut ca = None;
        let mut security = if implicit {
            Security::Implicit
        } else {
            Security::Opportunistic
        };
        for (key, value) in parsed.query_pairs() {
            match (key.as_ref(), value.as_ref(), implicit) {
                ("tls", "required", false) => security = Security::Required,
                ("tls", "opportunistic", false) => security = Security::Opportunistic,
                ("tls", "none", false) => security = Security::None,
                ("tls", _, true) => return Err(bad("smtps:// is always TLS; drop `?tls=`")),
                ("ca", path, _) => {
                    let pem = std::fs::read(path).map_err(|source| Error::Read {
                        path: path.into(),
                        source,
                    })?;
                    ca = Some(pem);
                }
                ("tls", other, _) => {
                    return Err(bad(&format!(
                        "unknown `tls={other}`; expected required, opportunistic or none"
                    )));
                }
                (other, _, _) => return Err(bad(&format!("unknown parameter `{other}`"))),
            }
        }
        let user = Some(parsed.username())
            .filter(|u| !u.is_empty())
            .map(percent_decode)
            .or_else(|| smtp.username.clone());
        let credentials = match user {
            Some(user) => {
                let password = std::env::var(&smtp.password_env).map_err(|_| {
                    Error::Usage(format!(
                        "SMTP user `{user}` needs a password in the environment variable `{}`",
                        smtp.password_env
                    ))
                })?;
                Some(Credentials::new(user, password))
            }
            None => None,
        };
        Ok(SmtpSettings {
            host,
            port,
            security,
            credentials,
            timeout: Duration::from_secs(smtp.timeout_secs.max(1)),
            hello: hello.to_string(),
            ca,
        })
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("u={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

/// One SMTP connection, opened on first use and again after any error.
pub struct SmtpTransport {
    settings: Arc<SmtpSettings>,
    conn: Option<AsyncSmtpConnection>,
    pipelining: bool,
    last_used: Instant,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("host", &self.settings.host)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// After this long idle, a connection is checked with NOOP before it is used again.
const IDLE_CHECK: Duration = Duration::from_secs(10);

impl SmtpTransport {
    /// A transport that connects as `settings` say.
    pub fn new(settings: Arc<SmtpSettings>) -> SmtpTransport {
        SmtpTransport {
            settings,
            conn: None,
            pipelining: false,
            last_used: Instant::now(),
        }
    }

    /// Opens a connection: TCP with no delay, TLS as configured, EHLO, AUTH. Also says
    /// whether the server offers PIPELINING (RFC 2920), which lettre does not record.
    pub async fn connect(
        settings: &SmtpSettings,
    ) -> std::result::Result<(AsyncSmtpConnection, bool), Delivery> {
        let s = settings;
        let where_ = format!("{}:{}", s.host, s.port);
        let temporary = |what: &str, e: &dyn std::fmt::Display| {
            Delivery::Temporary(format!("{what} {where_}: {e}"))
        };
        let tcp = tokio::time::timeout(s.timeout, TcpStream::connect((s.host.as_str(), s.port)))
            .await
            .map_err(|_| temporary("timed out connecting to", &format!("{:?}", s.timeout)))?
            .map_err(|e| temporary("could not connect to", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| temporary("could not set TCP_NODELAY on", &e))?;
        let hello = ClientId::Domain(s.hello.clone());
        let stream: Box<dyn AsyncTokioStream> = match s.security {
            Security::Implicit => {
                let tls = implicit_tls(tcp, &s.host, s.ca.as_deref())
                    .await
                    .map_err(|e| {
                        if is_certificate_error(&e) {
                            Delivery::Broken(format!("TLS with {where_}: {e}"))
                        } else {
                            temporary("TLS failed with", &e)
                        }
                    })?;
                Box::new(tls)
            }
            _ => Box::new(tcp),
        };
        let greeting = AsyncSmtpConnection::connect_with_transport(stream, &hello);
        let mut conn = tokio::time::timeout(s.timeout, greeting)
            .await
            .map_err(|_| {
                Delivery::Temporary(format!("{where_} did not greet within {:?}", s.timeout))
            })?
            .map_err(|e| classify(&e, &where_))?;
        match s.security {
            Security::Required | Security::Opportunistic if conn.can_starttls() => {
                let verify = s.security == Security::Required;
                let mut params = TlsParameters::builder(s.host.clone())
                    .dangerous_accept_invalid_certs(!verify)
                    .dangerous_accept_invalid_hostnames(!verify);
                if let Some(pem) = &s.ca {
                    let cert = Certificate::from_pem(pem)
                        .map_err(|e| Delivery::Broken(format!("the `ca` certificate: {e}")))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build_rustls()
                    .map_err(|e| Delivery::Broken(format!("TLS settings: {e}")))?;
                tokio::time::timeout(s.timeout, conn.starttls(params, &hello))
                    .await
                    .map_err(|_| Delivery::Temporary(format!("STARTTLS with {where_} timed out")))?
                    .map_err(|e| {
                        if certificate_problem(&e) {
                            Delivery::Broken(format!("STARTTLS with {where_}: {e}"))
                        } else {
                            classify(&e, &where_)
                        }
                    })?;
            }
            Security::Required => {
                return Err(Delivery::Broken(format!(
                    "{where_} does not offer STARTTLS, and `tls=required`"
                )));
            }
            _ => {}
        }
        if let Some(credentials) = &s.credentials {
            let mechanisms = [
                lettre::transport::smtp::authentication::Mechanism::Plain,
                lettre::transport::smtp::authentication::Mechanism::Login,
            ];
            tokio::time::timeout(s.timeout, conn.auth(&mechanisms, credentials))
                .await
                .map_err(|_| Delivery::Temporary(format!("AUTH with {where_} timed out")))?
                .map_err(|e| match classify(&e, &where_) {
                    Delivery::Permanent(m) => {
                        Delivery::Broken(format!("authentication refused: {m}"))
                    }
                    other => other,
                })?;
        }
        // One more EHLO, to read the keywords lettre does not keep.
        let ehlo = tokio::time::timeout(s.timeout, conn.command(Ehlo::new(hello.clone())))
            .await
            .map_err(|_| Delivery::Temporary(format!("EHLO to {where_} timed out")))?
            .map_err(|e| classify(&e, &where_))?;
        let pipelining = ehlo
            .message()
            .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
        Ok((conn, pipelining))
    }
}

impl Transport for SmtpTransport {
    async fn deliver(
        &mut self,
        from: &Address,
        to: &Address,
        message: &[u8],
        ready: impl Future<Output = bool> + Send,
    ) -> Delivery {
        if let Some(conn) = &mut self.conn
            && (conn.has_broken()
                || (self.last_used.elapsed() > IDLE_CHECK && !conn.test_connected().await))
        {
            self.conn = None;
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => match SmtpTransport::connect(&self.settings).await {
                Ok((conn, pipelining)) => {
                    self.pipelining = pipelining;
                    self.conn.insert(conn)
                }
                Err(d) => return d,
            },
        };
        let where_ = format!("{}:{}", self.settings.host, self.settings.port);
        let timeout = self.settings.timeout;
        let late = || Delivery::Temporary(format!("{where_} did not answer within {timeout:?}"));

        // The envelope first; a refusal here leaves the session usable (RSET).
        let mut parameters = Vec::new();
        let (sender, recipient): (&str, &str) = (from.as_ref(), to.as_ref());
        if !sender.is_ascii() || !recipient.is_ascii() {
            if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Delivery::Permanent(format!(
                    "{where_} does not support SMTPUTF8, needed for `{to}`"
                ));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        let mail = Mail::new(Some(from.clone()), parameters);
        let rcpt = Rcpt::new(to.clone(), Vec::new());
        let pipelining = self.pipelining;
        let envelope = async {
            if pipelining {
                // MAIL, RCPT and DATA in one write; then every reply is read, in order,
                // whatever the first ones said.
                let mail = conn.command(Pipelined(&mail, &rcpt, &Data)).await;
                let rcpt = conn.read_response().await;
                let data = conn.read_response().await;
                mail.and(rcpt).and(data)
            } else {
                conn.command(mail).await?;
                conn.command(rcpt).await?;
                conn.command(Data).await
            }
        };
        let outcome = match tokio::time::timeout(timeout, envelope).await {
            Err(_) => Some(late()),
            Ok(Err(e)) => {
                let refused = e.is_permanent() || e.is_transient();
                let d = classify(&e, &where_);
                if refused
                    && tokio::time::timeout(timeout, conn.command(Rset))
                        .await
                        .is_ok_and(|r| r.is_ok())
                {
                    self.last_used = Instant::now();
                    return d;
                }
                Some(d)
            }
            Ok(Ok(_)) => None,
        };
        // After a reply the session goes on; after a network error or a timeout it is not
        // trusted again.
        let (outcome, keep) = match outcome {
            Some(failed) => (failed, false),
            None if !ready.await => {
                // The server waits for the data; the session cannot be reused.
                (Delivery::Broken(super::transport::NOT_READY.into()), false)
            }
            None => {
                let data = async {
                    match Transparent::new(message) {
                        Some(data) => conn.command(data).await,
                        None => conn.message(message).await,
                    }
                };
                match tokio::time::timeout(timeout, data).await {
                    Ok(Ok(response)) => {
                        let text: Vec<&str> = response.message().collect();
                        let reply = format!("{} {}", response.code(), text.join(" "));
                        (Delivery::Accepted(reply), true)
                    }
                    Ok(Err(e)) => (classify(&e, &where_), e.is_permanent() || e.is_transient()),
                    Err(_) => (late(), false),
                }
            }
        };
        if !keep && let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.abort()).await;
        }
        self.last_used = Instant::now();
        outcome
    }

    async fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.quit()).await;
        }
    }
}

/// Three commands sent together under PIPELINING.
struct Pipelined<'a>(&'a Mail, &'a Rcpt, &'a Data);

impl std::fmt::Display for Pipelined<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.0, self.1, self.2)
    }
}

/// A message that needs no dot-stuffing (no line begins with `.`), sent as one write with
/// its final `.` line. Our copies never have such a line (the quoted-printable parts encode
/// a leading dot, base64 has none), which saves lettre's byte-by-byte transparency pass;
/// any other message goes through lettre's `message()` as usual.
struct Transparent<'a>(&'a str);

impl<'a> Transparent<'a> {
    fn new(message: &'a [u8]) -> Option<Transparent<'a>> {
        let text = std::str::from_utf8(message).ok()?;
        let stuffing_needed = message.first() == Some(&b'.')
            || memchr::memchr_iter(b'\n', message).any(|i| message.get(i + 1) == Some(&b'.'));
        (!stuffing_needed).then_some(Transparent(text))
    }
}

impl std::fmt::Display for Transparent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)?;
        f.write_str("\r\n.\r\n")
    }
}

/// Sorts a lettre error into temporary (4xx, network) or permanent (5xx).
fn classify(e: &lettre::transport::smtp::Error, server: &str) -> Delivery {
    let text = e.to_string();
    if e.is_permanent() {
        Delivery::Permanent(text)
    } else if e.is_transient() {
        Delivery::Temporary(text)
    } else {
        Delivery::Temporary(format!("{server}: {text}"))
    }
}

/// Whether a TLS failure is about the server's certificate: a setup problem that retrying
/// will not fix.
fn is_certificate_error(e: &io::Error) -> bool {
    certificate_problem(e)
}

fn certificate_problem(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(e) = current {
        if e.downcast_ref::<rustls::Error>()
            .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)))
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
            && inner
                .downcast_ref::<rustls::Error>()
                .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)))
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// TLS from the first byte, verified against the Mozilla roots (webpki-roots) and `ca`.
async fn implicit_tls(tcp: TcpStream, host: &str, ca: Option<&[u8]>) -> io::Result<TlsStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca {
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
            roots
                .add(cert.map_err(io::Error::other)?)
                .map_err(io::Error::other)?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name =
        rustls_pki_types::ServerName::try_from(host.to_string()).map_err(io::Error::other)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    Ok(TlsStream(connector.connect(name, tcp).await?))
}

/// A TLS stream lettre can drive (lettre's own implicit-TLS path cannot set `TCP_NODELAY`).
#[derive(Debug)]
pub struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Result<SmtpSettings> {
        SmtpSettings::new(url, &config::Smtp::default(), "lists.example.org")
    }

    #[test]
    fn urls() {
        let s = settings("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("127.0.0.1", 2525, Security::Opportunistic)
        );
        assert_eq!(
            settings("smtp://relay.example?tls=required")
                .unwrap()
                .security,
            Security::Required
        );
        assert_eq!(settings("smtp://relay.example?tls=none").unwrap().port, 25);
        let s = settings("smtps://relay.example").unwrap();
        assert_eq!((s.port, s.security), (465, Security::Implicit));
        assert!(settings("http://x").is_err());
        assert!(settings("smtp://x?tls=maybe").is_err());
        assert!(settings("smtps://x?tls=none").is_err());
    }

    #[test]
    fn only_messages_without_leading_dots_skip_stuffing() {
        assert_eq!(
            Transparent::new(b"a\r\nb").unwrap().to_string(),
            "a\r\nb\r\n.\r\n"
        );
        assert!(Transparent::new(b"a\r\n.b").is_none());
        assert!(Transparent::new(b".a").is_none());
        assert!(Transparent::new(b"a\xff").is_none());
    }

    #[test]
    fn a_user_needs_a_password_from_the_environment() {
        let smtp = config::Smtp {
            password_env: "MAILOUT_TEST_SURELY_UNSET_PASSWORD".into(),
            ..config::Smtp::default()
        };
        let err = SmtpSettings::new("smtp://mailer@relay.example", &smtp, "x").unwrap_err();
        assert!(
            err.to_string()
                .contains("MAILOUT_TEST_SURELY_UNSET_PASSWORD"),
            "{err}"
        );
    }
}
