//! SMTP delivery: one [`Session`] per send worker, opened on first use and again after a
//! fault, and the sorting of every outcome into what the queue must do with it.
//!
//! `smtp://HOST:PORT` uses STARTTLS when offered (`?tls=opportunistic`, the default, which
//! like Postfix's `may` level does not verify the certificate), `?tls=required` insists on
//! STARTTLS with a verified certificate, `?tls=none` stays in plain text; `smtps://` is
//! implicit TLS, verified. `?ca=PATH` adds a PEM root certificate to trust, for a relay
//! with a private CA.
//!
//! Outcomes (PRODUCT.md §6): a 2xx to the final dot is *accepted*; a 5xx is *permanent*; a
//! 4xx is *temporary*, scoped to the recipient, or to its domain when the reply is a
//! domain-level signal (421, rate or reputation); a fault before the message was complete
//! is temporary for the connection; a fault after the final dot went is *uncertain*.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use lettre::Address;

use super::session::{self, DataOutcome, Endpoint, Fault, OpenError, Reply, Session, Tls};
use super::transport::{Delivery, NOT_READY, Ready, Scope, Transport};
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
    /// AUTH user and password, if a user is configured.
    pub credentials: Option<(String, String)>,
    /// Timeout for connecting, each command and writing the message.
    pub timeout: Duration,
    /// How long the reply to the final dot is awaited.
    pub data_timeout: Duration,
    /// The name we greet with (EHLO).
    pub hello: String,
    /// Extra trusted root certificates (PEM, from `?ca=PATH`), for a relay with a private CA.
    pub ca: Option<Vec<u8>>,
    /// The session endpoint, built once (TLS configurations are not free).
    endpoint: OnceLock<std::result::Result<Endpoint, String>>,
}

impl SmtpSettings {
    /// Reads `url` (`smtp://[user@]host[:port][?tls=…]` or `smtps://…`) and the rest of
    /// `[smtp]`; the password comes from the environment variable `password_env`.
    pub fn new(url: &str, smtp: &config::Smtp, hello: &str) -> Result<SmtpSettings> {
        let bad = |why: &str| Error::Usage(format!("SMTP URL `{url}`: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| Error::Setting {
            context: format!("SMTP URL `{url}` is not a URL"),
            source: Box::new(e),
        })?;
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
                Some((user, password))
            }
            None => None,
        };
        Ok(SmtpSettings {
            host,
            port,
            security,
            credentials,
            timeout: Duration::from_secs(smtp.timeout_secs.max(1)),
            data_timeout: Duration::from_secs(smtp.data_timeout_secs.max(1)),
            hello: hello.to_string(),
            ca,
            endpoint: OnceLock::new(),
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn endpoint(&self) -> std::result::Result<&Endpoint, String> {
        self.endpoint
            .get_or_init(|| {
                let config = |verify: bool| {
                    crate::tls::client_config(verify, self.ca.as_deref()).map(Arc::new)
                };
                let tls = match self.security {
                    Security::None => Tls::None,
                    Security::Opportunistic => Tls::StartTls {
                        config: config(false)?,
                        required: false,
                    },
                    Security::Required => Tls::StartTls {
                        config: config(true)?,
                        required: true,
                    },
                    Security::Implicit => Tls::Implicit(config(true)?),
                };
                Ok(Endpoint {
                    host: self.host.clone(),
                    port: self.port,
                    tls,
                    hello: self.hello.clone(),
                    credentials: self.credentials.clone(),
                    timeout: self.timeout,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Opens a session, as a send would, and closes it again: the check before a job or a
    /// proof starts. The error says what went wrong, in a sentence.
    pub async fn probe(&self) -> Result<()> {
        let outcome = open(self).await;
        match outcome {
            Ok(session) => {
                session.quit().await;
                Ok(())
            }
            Err(Delivery::Broken(why))
            | Err(Delivery::Temporary { reply: why, .. })
            | Err(Delivery::Permanent(why))
            | Err(Delivery::Uncertain(why))
            | Err(Delivery::Accepted(why)) => Err(Error::Smtp {
                context: "the SMTP server cannot be used; nothing was sent".into(),
                source: why.into(),
            }),
        }
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("u={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

/// Opens a session as `settings` say; a failure is sorted as the queue needs it.
async fn open(settings: &SmtpSettings) -> std::result::Result<Session, Delivery> {
    let server = settings.server();
    let tls = if settings.security == Security::Implicit {
        "TLS"
    } else {
        "STARTTLS"
    };
    let endpoint = settings
        .endpoint()
        .map_err(|e| Delivery::Broken(format!("TLS settings for {server}: {e}")))?;
    Session::open(endpoint).await.map_err(|e| match e {
        OpenError::Fault(Fault::Tls {
            message,
            certificate: true,
        }) => Delivery::Broken(format!("{tls} with {server}: {message}")),
        OpenError::Fault(Fault::Io(io)) => Delivery::temporary(
            format!("could not connect to {server}: {io}"),
            Scope::Unreachable,
        ),
        OpenError::Fault(fault) => {
            Delivery::temporary(format!("{server}: {fault}"), Scope::Unreachable)
        }
        OpenError::Refused {
            step: "authentication",
            reply,
        } => {
            if reply.is_transient() {
                Delivery::temporary(
                    format!("{server}: authentication refused for now: {reply}"),
                    Scope::Unreachable,
                )
            } else {
                Delivery::Broken(format!("authentication refused by {server}: {reply}"))
            }
        }
        OpenError::Refused { step, reply } if reply.is_transient() => Delivery::temporary(
            format!("{server}: {step} refused: {reply}"),
            Scope::Unreachable,
        ),
        OpenError::Refused { step, reply } => {
            Delivery::Broken(format!("{server}: {step} refused: {reply}"))
        }
        OpenError::Setup(why) => Delivery::Broken(why),
    })
}

/// One SMTP connection, opened on first use and again after any fault; while the server
/// cannot be reached it waits longer before each new try (up to a minute).
pub struct SmtpTransport {
    settings: Arc<SmtpSettings>,
    session: Option<Session>,
    last_used: Instant,
    /// Opens that failed in a row, and when the next may be tried.
    failed_opens: u32,
    next_open: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("host", &self.settings.host)
            .field("connected", &self.session.is_some())
            .finish()
    }
}

/// After this long idle, a session is checked with NOOP before it is used again.
const IDLE_CHECK: Duration = Duration::from_secs(10);

impl SmtpTransport {
    /// A transport that connects as `settings` say.
    pub fn new(settings: Arc<SmtpSettings>) -> SmtpTransport {
        SmtpTransport {
            settings,
            session: None,
            last_used: Instant::now(),
            failed_opens: 0,
            next_open: None,
        }
    }

    /// The session for a transaction from `from` to `to`: the open one unless it is broken,
    /// has an envelope primed for someone else, or has been idle long enough to need a
    /// NOOP that it fails (a primed session cannot be asked: it is closed instead).
    async fn session(
        &mut self,
        from: &str,
        to: &str,
    ) -> std::result::Result<&mut Session, Delivery> {
        if let Some(session) = &mut self.session
            && (session.is_broken()
                || !session.primed_for(from, to)
                || (self.last_used.elapsed() > IDLE_CHECK
                    && (session.is_primed() || !session.noop().await)))
        {
            // Closed without QUIT when the server waits for data (`Session::quit`).
            self.drop_session().await;
        }
        if self.session.is_none() {
            if let Some(at) = self.next_open {
                tokio::time::sleep_until(at).await;
            }
            match open(&self.settings).await {
                Ok(session) => {
                    self.failed_opens = 0;
                    self.next_open = None;
                    self.session = Some(session);
                }
                Err(failed) => {
                    self.failed_opens += 1;
                    let wait = super::queue::Backoff::default().delay(self.failed_opens);
                    self.next_open = Some(tokio::time::Instant::now() + wait);
                    return Err(failed);
                }
            }
        }
        self.session
            .as_mut()
            .ok_or_else(|| Delivery::Broken("internal: no session".into()))
    }

    async fn drop_session(&mut self) {
        if let Some(session) = self.session.take() {
            session.quit().await;
        }
    }
}

impl Transport for SmtpTransport {
    async fn deliver(
        &mut self,
        from: &Address,
        to: &Address,
        message: &[u8],
        ready: impl Ready,
    ) -> Delivery {
        let server = self.settings.server();
        let data_timeout = self.settings.data_timeout;
        let (sender, recipient): (&str, &str) = (from.as_ref(), to.as_ref());
        let session = match self.session(sender, recipient).await {
            Ok(session) => session,
            Err(failed) => return failed,
        };
        if !recipient.is_ascii() && !session.smtputf8() {
            return Delivery::Permanent(format!(
                "{server} does not support SMTPUTF8, needed for `{to}`"
            ));
        }

        // The envelope; a refusal here leaves the session usable (RSET). Earlier results are
        // committed (`ready`) before the message can be accepted: while the envelope's
        // replies come back when that is worth it (`Ready::soon`), else once they are in.
        // An envelope that went with the last message's data has its replies in already
        // (`committed` is then decided below, while the data goes).
        let mut ready = ready;
        let (envelope, committed) = if session.is_primed() {
            (session.envelope(sender, recipient).await, None)
        } else {
            let envelope = session.envelope(sender, recipient);
            tokio::pin!(envelope);
            let replied = tokio::select! {
                biased;
                replies = &mut envelope => Some(replies),
                () = ready.soon() => None,
            };
            let (replies, committed) = match replied {
                Some(replies) => (replies, ready.commit().await),
                None => tokio::join!(envelope, ready.commit()),
            };
            (replies, Some(committed))
        };
        let refusal = match envelope {
            Err(fault) => Some(Delivery::temporary(
                format!("{server}: {fault}"),
                Scope::Connection,
            )),
            Ok((mail, rcpt, data)) => {
                if !mail.is_positive() {
                    Some(refused_sender(&server, &mail))
                } else if let Some(rcpt) = rcpt.as_ref().filter(|r| !r.is_positive()) {
                    Some(refused(rcpt))
                } else {
                    match data {
                        Some(data) if data.code == 354 => None,
                        Some(data) => Some(refused(&data)),
                        None => Some(Delivery::temporary(
                            format!("{server}: no reply to DATA"),
                            Scope::Connection,
                        )),
                    }
                }
            }
        };
        if let Some(outcome) = refusal {
            let session = self.session.as_mut();
            let kept = match session {
                Some(s) if !s.is_broken() => s.reset().await,
                _ => false,
            };
            if !kept {
                self.drop_session().await;
            }
            self.last_used = Instant::now();
            return outcome;
        }
        let Some(session) = self.session.as_mut() else {
            return Delivery::Broken("internal: no session".into());
        };
        let next = ready
            .next_recipient()
            .filter(|to| to.is_ascii() || session.smtputf8())
            .map(str::to_string);
        let next = next.as_deref().map(|to| (sender, to));
        let outcome = match committed {
            Some(true) => Some(
                session
                    .data(message, data_timeout, next, || ready.sent())
                    .await,
            ),
            // The server waits for the data; the session cannot be reused.
            Some(false) => None,
            None => {
                // Other connections' results may share the commit (`Ready::soon`). When
                // the server would wait for it (no other connection's reply is awaited),
                // the message goes first, all but its final dot: the server reads it
                // meanwhile, and cannot accept it before the dot.
                let early = if ready.send_while_committing() {
                    session.data_without_dot(message).await.map(|()| true)
                } else {
                    Ok(false)
                };
                match early {
                    Err(fault) => Some(DataOutcome::NotSent(fault)),
                    Ok(early) => {
                        ready.soon().await;
                        if !ready.commit().await {
                            // A message sent early is closed without its dot: the server
                            // drops it.
                            None
                        } else if early {
                            Some(
                                session
                                    .finish_data(data_timeout, next, || ready.sent())
                                    .await,
                            )
                        } else {
                            Some(
                                session
                                    .data(message, data_timeout, next, || ready.sent())
                                    .await,
                            )
                        }
                    }
                }
            }
        };
        let Some(outcome) = outcome else {
            self.drop_session().await;
            return Delivery::Broken(NOT_READY.into());
        };
        self.last_used = Instant::now();
        let delivery = match outcome {
            DataOutcome::Replied(reply) if reply.is_positive() => {
                Delivery::Accepted(reply.to_string())
            }
            DataOutcome::Replied(reply) => refused(&reply),
            DataOutcome::NotSent(fault) => Delivery::temporary(
                format!("{server}: the message could not be sent in full: {fault}"),
                Scope::Connection,
            ),
            DataOutcome::Unanswered(fault) => Delivery::Uncertain(unanswered(&server, &fault)),
        };
        if self.session.as_ref().is_some_and(Session::is_broken) {
            self.drop_session().await;
        }
        delivery
    }

    async fn close(&mut self) {
        self.drop_session().await;
    }
}

/// What an unanswered message means, in a sentence.
fn unanswered(server: &str, fault: &Fault) -> String {
    let what = match fault {
        Fault::Timeout { after, .. } => format!(
            "no reply within {} after the whole message was sent",
            session::seconds(*after)
        ),
        Fault::Closed => {
            "the connection closed after the whole message was sent, before any reply".into()
        }
        other => format!("after the whole message was sent: {other}"),
    };
    format!("{server}: {what}; it may have been delivered")
}

/// A refusal of the sender address: 5xx means nothing can go (the relay refuses us), so
/// the send stops rather than failing every member; 4xx is tried again later.
fn refused_sender(server: &str, reply: &Reply) -> Delivery {
    if reply.is_transient() {
        Delivery::temporary(
            format!("{server}: sender refused for now: {reply}"),
            Scope::Connection,
        )
    } else {
        Delivery::Broken(format!("{server} refuses the sender address: {reply}"))
    }
}

/// A refusal of this recipient or its message: 5xx permanent, 4xx temporary with the
/// scope its wording signals.
fn refused(reply: &Reply) -> Delivery {
    if reply.is_transient() {
        Delivery::temporary(reply.to_string(), scope_of(reply))
    } else {
        Delivery::Permanent(reply.to_string())
    }
}

/// Whether a 4xx reply is a domain-level signal (slow down for everyone there) or concerns
/// this recipient alone: 421 (service closing), the enhanced codes for rate and
/// reputation (4.7.0, 4.7.28, 4.3.2) and wording about rate, volume or throttling are
/// domain-level; mailbox full, greylisting of one address, unknown-for-now and the rest
/// are the recipient's.
pub fn scope_of(reply: &Reply) -> Scope {
    static WORDS: OnceLock<Option<regex_lite::Regex>> = OnceLock::new();
    if reply.code == 421 {
        return Scope::Domain;
    }
    if matches!(
        reply.status,
        Some([4, 7, 0]) | Some([4, 7, 28]) | Some([4, 3, 2])
    ) {
        return Scope::Domain;
    }
    let words = WORDS.get_or_init(|| {
        regex_lite::Regex::new(
            r"(?i)\b(too many|rate|rate[- ]?limit\w*|ratelimit\w*|throttl\w*|reputation|volume|slow down)\b",
        )
        .ok()
    });
    if words.as_ref().is_some_and(|w| w.is_match(&reply.text)) {
        Scope::Domain
    } else {
        Scope::Recipient
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

    /// A `Ready` that says `commit` and reports each `sent` on a channel.
    struct Probe {
        commit: bool,
        sent: std::sync::mpsc::Sender<()>,
    }

    impl Ready for Probe {
        async fn commit(&mut self) -> bool {
            self.commit
        }

        fn sent(&mut self) {
            let _ = self.sent.send(());
        }
    }

    /// A server on loopback for one session: it refuses RCPT TO for addresses that start
    /// with `refused`, and after a message's final dot holds its reply until the client's
    /// `sent` has been called (or five seconds have gone). Says, for each message, whether
    /// `sent` came before the reply, and how many more times `sent` was called.
    fn holding_server(
        sent: std::sync::mpsc::Receiver<()>,
    ) -> (u16, std::thread::JoinHandle<(Vec<bool>, usize)>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut lines = BufReader::new(stream);
            let mut seen = Vec::new();
            out.write_all(b"220 holding ESMTP\r\n").unwrap();
            let mut line = String::new();
            let mut recipients = 0;
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-holding\r\n250 PIPELINING\r\n",
                    "RSET" => {
                        recipients = 0;
                        b"250 ok\r\n"
                    }
                    "RCPT" if line.contains("<refused") => b"550 5.1.1 no such user\r\n",
                    "RCPT" => {
                        recipients += 1;
                        b"250 ok\r\n"
                    }
                    "DATA" if recipients == 0 => b"554 5.5.1 no valid recipients\r\n",
                    "DATA" => {
                        recipients = 0;
                        out.write_all(b"354 go on\r\n").unwrap();
                        let mut data = String::new();
                        while data != ".\r\n" {
                            data.clear();
                            if lines.read_line(&mut data).unwrap_or(0) == 0 {
                                break; // the client went before its data
                            }
                        }
                        if data != ".\r\n" {
                            break;
                        }
                        let held = sent.recv_timeout(Duration::from_secs(5)).is_ok();
                        seen.push(held);
                        b"250 2.0.0 queued\r\n"
                    }
                    "QUIT" => {
                        out.write_all(b"221 bye\r\n").unwrap();
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                out.write_all(reply).unwrap();
                line.clear();
            }
            // The client has hung up: every `sent` it made is in the channel.
            (seen, sent.iter().count())
        });
        (port, server)
    }

    #[test]
    fn the_next_copy_is_made_while_the_server_reads_the_data() {
        let (tell, told) = std::sync::mpsc::channel();
        let (port, server) = holding_server(told);
        let settings = settings(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
        let mut transport = SmtpTransport::new(Arc::new(settings));
        let from: Address = "news@union.example.org".parse().unwrap();
        let probe = |commit| Probe {
            commit,
            sent: tell.clone(),
        };
        let runtime = crate::runtime::Runtime::new();
        let outcomes = runtime
            .block_on(async {
                let mut outcomes = Vec::new();
                for (to, commit) in [
                    ("a@members.test", true),
                    ("refused@members.test", true),
                    ("b@members.test", true),
                    ("c@members.test", false),
                ] {
                    let to: Address = to.parse().unwrap();
                    let message = b"Subject: x\r\n\r\nHello\r\n";
                    outcomes.push(transport.deliver(&from, &to, message, probe(commit)).await);
                }
                transport.close().await;
                outcomes
            })
            .unwrap();
        drop(tell);
        assert!(matches!(outcomes[0], Delivery::Accepted(_)), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Delivery::Permanent(_)),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[2], Delivery::Accepted(_)), "{outcomes:?}");
        assert!(matches!(outcomes[3], Delivery::Broken(_)), "{outcomes:?}");
        // `sent` came while each reply was held, once a message; not for the refused
        // recipient, nor for a message whose commit failed (it never went).
        assert_eq!(server.join().unwrap(), (vec![true, true], 0));
    }

    /// A `Ready` that commits and names the next recipient.
    struct Ahead(Option<&'static str>);

    impl Ready for Ahead {
        async fn commit(&mut self) -> bool {
            true
        }

        fn next_recipient(&self) -> Option<&str> {
            self.0
        }
    }

    /// A server on loopback, one session after another, that logs what it sees: each
    /// RCPT, each message received in full (`message TO`, and `, with MAIL next` when the
    /// next envelope came in the same write as its final dot), a session that ended while
    /// the server read a message (`abandoned TO`), QUIT and new sessions. The reply to a
    /// final dot depends on the recipient: `closing…` gets 421 and the connection closes,
    /// `silent…` gets nothing, ever; the rest get 250. With `bodies`, the server says on it
    /// when it has read the body of a message to `gated…`, before that message's dot.
    fn logging_server(
        bodies: Option<std::sync::mpsc::Sender<String>>,
    ) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let say = |line: String| shared.lock().unwrap().push(line);
                say("session".into());
                let mut out = stream.try_clone().unwrap();
                let mut lines = BufReader::new(stream);
                let _ = out.write_all(b"220 logging ESMTP\r\n");
                let mut to = String::new();
                let mut line = String::new();
                'session: while lines.read_line(&mut line).unwrap_or(0) > 0 {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-logging\r\n250 PIPELINING\r\n",
                        "RCPT" => {
                            to = line.trim_end()["RCPT TO:".len()..].to_string();
                            say(format!("RCPT {to}"));
                            b"250 ok\r\n"
                        }
                        "DATA" => {
                            let _ = out.write_all(b"354 go on\r\n");
                            let mut data = String::new();
                            while data != ".\r\n" {
                                data.clear();
                                if lines.read_line(&mut data).unwrap_or(0) == 0 {
                                    say(format!("abandoned {to}"));
                                    break 'session;
                                }
                                if data == "Hello\r\n"
                                    && to.starts_with("<gated")
                                    && let Some(bodies) = &bodies
                                {
                                    let _ = bodies.send(to.clone());
                                }
                            }
                            let next = if lines.buffer().starts_with(b"MAIL FROM:") {
                                ", with MAIL next"
                            } else {
                                ""
                            };
                            say(format!("message {to}{next}"));
                            if to.starts_with("<closing") {
                                let _ = out.write_all(b"421 4.3.2 closing\r\n");
                                break 'session;
                            }
                            if to.starts_with("<silent") {
                                while lines.read_line(&mut data).unwrap_or(0) > 0 {}
                                break 'session;
                            }
                            b"250 2.0.0 queued\r\n"
                        }
                        "QUIT" => {
                            say("QUIT".into());
                            let _ = out.write_all(b"221 bye\r\n");
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = out.write_all(reply);
                    line.clear();
                }
            }
        });
        (port, log)
    }

    /// The server's log once its last line names `needle` (the server closes a session a
    /// moment after the client goes); five seconds at most.
    fn log_once_ended(log: &std::sync::Mutex<Vec<String>>, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = log.lock().unwrap().clone();
            if lines.last().is_some_and(|l| l.contains(needle)) {
                return lines;
            }
            assert!(Instant::now() < deadline, "{lines:?}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_next_envelope_goes_with_the_data_and_is_never_a_message_of_its_own() {
        let (port, log) = logging_server(None);
        let smtp = config::Smtp {
            data_timeout_secs: 1,
            ..config::Smtp::default()
        };
        let url = format!("smtp://127.0.0.1:{port}?tls=none");
        let settings = SmtpSettings::new(&url, &smtp, "lists.example.org").unwrap();
        let mut transport = SmtpTransport::new(Arc::new(settings));
        let from: Address = "news@union.example.org".parse().unwrap();
        let runtime = crate::runtime::Runtime::new();
        let outcomes = runtime
            .block_on(async {
                let mut outcomes = Vec::new();
                // Each message, and the recipient its envelope is followed by.
                for (to, next) in [
                    ("a@m.test", Some("b@m.test")),
                    ("b@m.test", Some("c@m.test")),
                    // The worker took someone else after all: c's envelope is never
                    // followed by data.
                    ("d@m.test", Some("closing@m.test")),
                    // The server closes after its reply, with e's envelope unanswered.
                    ("closing@m.test", Some("e@m.test")),
                    ("e@m.test", Some("silent@m.test")),
                    // No reply: uncertain, and f's envelope goes again on a new session.
                    ("silent@m.test", Some("f@m.test")),
                    ("f@m.test", Some("g@m.test")),
                ] {
                    let to: Address = to.parse().unwrap();
                    let message = b"Subject: x\r\n\r\nHello\r\n";
                    outcomes.push(transport.deliver(&from, &to, message, Ahead(next)).await);
                }
                // The run ends with g's envelope out: closing must not deliver it.
                transport.close().await;
                outcomes
            })
            .unwrap();
        let kinds: Vec<&str> = outcomes
            .iter()
            .map(|o| match o {
                Delivery::Accepted(_) => "accepted",
                Delivery::Temporary { .. } => "temporary",
                Delivery::Uncertain(_) => "uncertain",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "accepted",
                "accepted",
                "accepted",
                "temporary",
                "accepted",
                "uncertain",
                "accepted"
            ],
            "{outcomes:?}"
        );
        assert_eq!(
            log_once_ended(&log, "abandoned <g@"),
            [
                "session",
                "RCPT <a@m.test>",
                "message <a@m.test>, with MAIL next",
                "RCPT <b@m.test>",
                "message <b@m.test>, with MAIL next",
                "RCPT <c@m.test>",
                "abandoned <c@m.test>",
                "session",
                "RCPT <d@m.test>",
                "message <d@m.test>, with MAIL next",
                "RCPT <closing@m.test>",
                "message <closing@m.test>, with MAIL next",
                "session",
                "RCPT <e@m.test>",
                "message <e@m.test>, with MAIL next",
                "RCPT <silent@m.test>",
                "message <silent@m.test>, with MAIL next",
                "session",
                "RCPT <f@m.test>",
                "message <f@m.test>, with MAIL next",
                "RCPT <g@m.test>",
                "abandoned <g@m.test>",
            ]
        );
    }

    /// A `Ready` whose commit waits until the server has read a message's body (or five
    /// seconds), notes whose body that was, and then says `verdict`.
    struct Gate {
        next: Option<&'static str>,
        bodies: Option<Arc<std::sync::Mutex<std::sync::mpsc::Receiver<String>>>>,
        seen: Arc<std::sync::Mutex<Vec<String>>>,
        verdict: bool,
    }

    impl Ready for Gate {
        async fn commit(&mut self) -> bool {
            if let Some(bodies) = self.bodies.clone() {
                let body = tokio::task::spawn_blocking(move || {
                    let bodies = bodies.lock().unwrap();
                    bodies.recv_timeout(Duration::from_secs(5))
                })
                .await
                .unwrap();
                let body = body.unwrap_or_else(|_| "nothing".into());
                self.seen.lock().unwrap().push(body);
            }
            self.verdict
        }

        fn send_while_committing(&self) -> bool {
            self.bodies.is_some()
        }

        fn next_recipient(&self) -> Option<&str> {
            self.next
        }
    }

    #[test]
    fn only_the_final_dot_waits_for_a_commit_the_server_would_wait_for() {
        let (tell, told) = std::sync::mpsc::channel();
        let (port, log) = logging_server(Some(tell));
        let url = format!("smtp://127.0.0.1:{port}?tls=none");
        let settings = settings(&url).unwrap();
        let mut transport = SmtpTransport::new(Arc::new(settings));
        let from: Address = "news@union.example.org".parse().unwrap();
        let told = Arc::new(std::sync::Mutex::new(told));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let gate = |next, waits: bool, verdict| Gate {
            next,
            bodies: waits.then(|| Arc::clone(&told)),
            seen: Arc::clone(&seen),
            verdict,
        };
        let runtime = crate::runtime::Runtime::new();
        let outcomes = runtime
            .block_on(async {
                let mut outcomes = Vec::new();
                for (to, ready) in [
                    ("a@m.test", gate(Some("gated-b@m.test"), false, true)),
                    // b's envelope went with a's data: its commit runs while its body
                    // goes.
                    ("gated-b@m.test", gate(Some("gated-c@m.test"), true, true)),
                    // c's commit fails once its body is read: no dot follows.
                    ("gated-c@m.test", gate(None, true, false)),
                ] {
                    let to: Address = to.parse().unwrap();
                    let message = b"Subject: x\r\n\r\nHello\r\n";
                    outcomes.push(transport.deliver(&from, &to, message, ready).await);
                }
                transport.close().await;
                outcomes
            })
            .unwrap();
        assert!(matches!(outcomes[0], Delivery::Accepted(_)), "{outcomes:?}");
        assert!(matches!(outcomes[1], Delivery::Accepted(_)), "{outcomes:?}");
        assert!(matches!(outcomes[2], Delivery::Broken(_)), "{outcomes:?}");
        // Each commit ran while the server read that very message's body.
        assert_eq!(
            *seen.lock().unwrap(),
            ["<gated-b@m.test>", "<gated-c@m.test>"]
        );
        assert_eq!(
            log_once_ended(&log, "abandoned <gated-c@"),
            [
                "session",
                "RCPT <a@m.test>",
                "message <a@m.test>, with MAIL next",
                "RCPT <gated-b@m.test>",
                "message <gated-b@m.test>, with MAIL next",
                "RCPT <gated-c@m.test>",
                "abandoned <gated-c@m.test>",
            ]
        );
    }

    fn reply(code: u16, status: Option<[u8; 3]>, text: &str) -> Reply {
        Reply {
            code,
            status,
            text: text.into(),
        }
    }

    #[test]
    fn only_domain_level_signals_pause_a_domain() {
        for (r, scope) in [
            (
                reply(421, Some([4, 7, 0]), "try again later, closing"),
                Scope::Domain,
            ),
            (
                reply(450, Some([4, 7, 28]), "unusual rate of mail"),
                Scope::Domain,
            ),
            (
                reply(451, None, "Too many messages from your IP"),
                Scope::Domain,
            ),
            (reply(451, Some([4, 7, 1]), "throttled"), Scope::Domain),
            (
                reply(452, Some([4, 2, 2]), "mailbox full"),
                Scope::Recipient,
            ),
            (
                reply(451, Some([4, 7, 1]), "greylisted, try again later"),
                Scope::Recipient,
            ),
            (
                reply(450, Some([4, 2, 1]), "mailbox temporarily disabled"),
                Scope::Recipient,
            ),
            (
                reply(
                    451,
                    Some([4, 1, 1]),
                    "recipient unknown for now; separate issue",
                ),
                Scope::Recipient,
            ),
        ] {
            assert_eq!(scope_of(&r), scope, "{r}");
        }
    }
}
