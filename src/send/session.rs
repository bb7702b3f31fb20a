//! One SMTP session on the wire (RFC 5321): connect, greeting, EHLO, STARTTLS, AUTH, the
//! envelope (pipelined when the server offers PIPELINING, RFC 2920, and then sent with the
//! last message's final dot when the next recipient is known), the message, and each reply
//! read under a deadline of its own.
//!
//! Replies and EHLO keywords are parsed by smtp-proto. What this module adds, and why it
//! is not lettre's connection: every failure says how far the transaction got. Above all,
//! [`Session::data`] knows whether the message's final dot was written before the trouble;
//! after that, a missing reply means the copy may have been delivered (it is *uncertain*,
//! not a failure to retry), and the reply is awaited for a longer time of its own
//! (`[smtp] data_timeout_secs`, RFC 5321 §4.5.3.2.6). The EHLO reply is read once, so
//! PIPELINING is known without greeting the server twice.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, EXT_PIPELINING, EXT_SMTP_UTF8, EXT_START_TLS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tls::{Stream, certificate_problem};

/// The most reply bytes read without a complete reply before the reply counts as garbage.
const MAX_REPLY: usize = 64 * 1024;

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The enhanced status code (RFC 3463), when the server gave one.
    pub status: Option<[u8; 3]>,
    /// The text, lines joined with spaces.
    pub text: String,
}

impl Reply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// The enhanced status code as text (`4.2.2`), if there is one.
    pub fn status_text(&self) -> Option<String> {
        self.status.map(|[a, b, c]| format!("{a}.{b}.{c}"))
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(status) = self.status_text() {
            write!(f, " {status}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// What went wrong on the wire, as opposed to a reply that says no.
#[derive(Debug)]
pub enum Fault {
    /// Nothing came within the time allowed.
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long.
        after: Duration,
    },
    /// The server closed the connection.
    Closed,
    /// A network error.
    Io(io::Error),
    /// The server's bytes are not an SMTP reply; what came (cleaned, shortened).
    Garbage(String),
    /// TLS could not be set up; `certificate` when the server's certificate is the reason
    /// (a setup problem that trying again will not fix).
    Tls {
        /// The error.
        message: String,
        /// Whether the certificate was refused.
        certificate: bool,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Timeout { what, after } => {
                write!(f, "no {what} within {}", seconds(*after))
            }
            Fault::Closed => f.write_str("the server closed the connection"),
            Fault::Io(e) => write!(f, "{e}"),
            Fault::Garbage(text) => write!(f, "the server's reply could not be read: `{text}`"),
            Fault::Tls { message, .. } => write!(f, "TLS failed: {message}"),
        }
    }
}

/// A duration for messages: `30 s`, `0.5 s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// How the message's data went.
#[derive(Debug)]
pub enum DataOutcome {
    /// The server answered the final dot.
    Replied(Reply),
    /// The message was not completely written: the server cannot have accepted it.
    NotSent(Fault),
    /// The message was completely written, final dot included, and no reply was read: the
    /// server may have accepted it.
    Unanswered(Fault),
}

/// How a session is protected.
#[derive(Debug, Clone)]
pub enum Tls {
    /// Plain text throughout.
    None,
    /// STARTTLS when offered; with `required`, a server that does not offer it is refused.
    StartTls {
        /// The client configuration (verifying or not).
        config: Arc<rustls::ClientConfig>,
        /// Whether STARTTLS must happen.
        required: bool,
    },
    /// TLS from the first byte.
    Implicit(Arc<rustls::ClientConfig>),
}

/// Where and how to open a session.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Server host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS.
    pub tls: Tls,
    /// The name we greet with.
    pub hello: String,
    /// AUTH user and password.
    pub credentials: Option<(String, String)>,
    /// Connecting, the greeting, each command, writing the message.
    pub timeout: Duration,
}

/// Why a session could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// A wire problem (refused, timed out, closed, garbage, TLS trouble).
    Fault(Fault),
    /// The server refused us: the greeting, EHLO or AUTH was answered with this.
    Refused {
        /// At which step.
        step: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// The session cannot work as configured (TLS required but not offered, no usable
    /// AUTH mechanism).
    Setup(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Fault(fault) => fault.fmt(f),
            OpenError::Refused { step, reply } => write!(f, "{step} refused: {reply}"),
            OpenError::Setup(text) => f.write_str(text),
        }
    }
}

impl From<Fault> for OpenError {
    fn from(f: Fault) -> Self {
        OpenError::Fault(f)
    }
}

/// An open session, ready for a transaction.
pub struct Session {
    stream: Stream,
    /// Bytes read but not yet parsed.
    pending: Vec<u8>,
    pipelining: bool,
    smtputf8: bool,
    timeout: Duration,
    broken: bool,
    /// An envelope (sender, recipient) whose MAIL FROM, RCPT TO and DATA went out after the
    /// last message's final dot ([`Session::data`]) and whose replies are not read yet.
    primed: Option<(String, String)>,
    /// The server has said 354 (or may have: an envelope is primed) and reads what comes
    /// next as a message: only its data, or closing the connection, can follow.
    in_data: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("pipelining", &self.pipelining)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects to `endpoint`, reads the greeting, says EHLO (once; once more after
    /// STARTTLS, as RFC 3207 requires), and logs in when credentials are given.
    pub async fn open(endpoint: &Endpoint) -> Result<Session, OpenError> {
        let timeout = endpoint.timeout;
        let tcp = tokio::time::timeout(
            timeout,
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await
        .map_err(|_| Fault::Timeout {
            what: "connection",
            after: timeout,
        })?
        .map_err(Fault::Io)?;
        tcp.set_nodelay(true).map_err(Fault::Io)?;
        let stream = match &endpoint.tls {
            Tls::Implicit(config) => Stream::Tls(Box::new(
                handshake(tcp, &endpoint.host, config, timeout).await?,
            )),
            _ => Stream::Plain(tcp),
        };
        let mut session = Session {
            stream,
            pending: Vec::new(),
            pipelining: false,
            smtputf8: false,
            timeout,
            broken: false,
            primed: None,
            in_data: false,
        };
        let greeting = session.read_reply("greeting", timeout).await?;
        if !greeting.is_positive() {
            return Err(OpenError::Refused {
                step: "the greeting",
                reply: greeting,
            });
        }
        let mut ehlo = session.ehlo(&endpoint.hello).await?;
        if let Tls::StartTls { config, required } = &endpoint.tls {
            if ehlo.has_capability(EXT_START_TLS) {
                let reply = session.command("STARTTLS\r\n", "reply to STARTTLS").await?;
                if !reply.is_positive() {
                    return Err(OpenError::Refused {
                        step: "STARTTLS",
                        reply,
                    });
                }
                let Stream::Plain(tcp) = std::mem::replace(&mut session.stream, Stream::Gone)
                else {
                    return Err(OpenError::Setup("STARTTLS on a TLS session".into()));
                };
                session.pending.clear();
                session.stream = Stream::Tls(Box::new(
                    handshake(tcp, &endpoint.host, config, timeout).await?,
                ));
                ehlo = session.ehlo(&endpoint.hello).await?;
            } else if *required {
                return Err(OpenError::Setup(format!(
                    "{}:{} does not offer STARTTLS, and `tls=required`",
                    endpoint.host, endpoint.port
                )));
            }
        }
        session.pipelining = ehlo.has_capability(EXT_PIPELINING);
        session.smtputf8 = ehlo.has_capability(EXT_SMTP_UTF8);
        if let Some((user, password)) = &endpoint.credentials {
            session.auth(ehlo.auth(), user, password).await?;
        }
        Ok(session)
    }

    /// Whether the server offers PIPELINING.
    pub fn pipelining(&self) -> bool {
        self.pipelining
    }

    /// Whether the server takes non-ASCII addresses (SMTPUTF8).
    pub fn smtputf8(&self) -> bool {
        self.smtputf8
    }

    /// Whether a fault has left the session unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    async fn ehlo(&mut self, hello: &str) -> Result<smtp_proto::EhloResponse<String>, OpenError> {
        self.write(format!("EHLO {hello}\r\n").as_bytes()).await?;
        let (reply, raw) = self.read_reply_raw("reply to EHLO", self.timeout).await?;
        if !reply.is_positive() {
            return Err(OpenError::Refused {
                step: "EHLO",
                reply,
            });
        }
        smtp_proto::EhloResponse::parse(&mut raw.iter())
            .map_err(|_| OpenError::Fault(Fault::Garbage(shown(&raw))))
    }

    async fn auth(&mut self, offered: u64, user: &str, password: &str) -> Result<(), OpenError> {
        let reply = if offered & AUTH_PLAIN != 0 {
            let token = BASE64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {token}\r\n"), "reply to AUTH")
                .await?
        } else if offered & AUTH_LOGIN != 0 {
            let mut reply = self.command("AUTH LOGIN\r\n", "reply to AUTH").await?;
            for secret in [user, password] {
                if reply.code != 334 {
                    break;
                }
                let line = format!("{}\r\n", BASE64.encode(secret));
                reply = self.command(&line, "reply to AUTH").await?;
            }
            reply
        } else {
            return Err(OpenError::Setup(
                "the server offers no AUTH mechanism mailout knows (PLAIN or LOGIN)".into(),
            ));
        };
        if reply.is_positive() {
            Ok(())
        } else {
            Err(OpenError::Refused {
                step: "authentication",
                reply,
            })
        }
    }

    /// Sends `line` (a command with its CRLF) and reads the reply.
    pub async fn command(&mut self, line: &str, what: &'static str) -> Result<Reply, Fault> {
        self.write(line.as_bytes()).await?;
        self.read_reply(what, self.timeout).await
    }

    /// Whether the next transaction may be for `from` and `to`: nothing is primed, or
    /// exactly that envelope is (an envelope primed for anyone else leaves the session
    /// unusable, as the server waits for that message's data).
    pub fn primed_for(&self, from: &str, to: &str) -> bool {
        self.primed
            .as_ref()
            .is_none_or(|(f, t)| f == from && t == to)
    }

    /// Whether an envelope is primed ([`Session::data`]).
    pub fn is_primed(&self) -> bool {
        self.primed.is_some()
    }

    fn envelope_commands(&self, from: &str, to: &str) -> (String, String) {
        let utf8 = if (!from.is_ascii() || !to.is_ascii()) && self.smtputf8 {
            " SMTPUTF8"
        } else {
            ""
        };
        (
            format!("MAIL FROM:<{from}>{utf8}\r\n"),
            format!("RCPT TO:<{to}>\r\n"),
        )
    }

    /// MAIL FROM, RCPT TO and DATA: in one write when the server pipelines (none at all
    /// when they went with the last message's data, [`Session::data`]), then every reply in
    /// order. Returns the three replies (the later ones absent when an earlier one refused
    /// without pipelining).
    pub async fn envelope(
        &mut self,
        from: &str,
        to: &str,
    ) -> Result<(Reply, Option<Reply>, Option<Reply>), Fault> {
        let primed = match self.primed.take() {
            Some((f, t)) if f == from && t == to => true,
            Some(_) => {
                // The server waits for another recipient's data: nothing can follow.
                self.broken = true;
                return Err(Fault::Closed);
            }
            None => false,
        };
        let (mail, rcpt) = self.envelope_commands(from, to);
        if self.pipelining {
            if !primed {
                let mut all = mail;
                all.push_str(&rcpt);
                all.push_str("DATA\r\n");
                self.write(all.as_bytes()).await?;
            }
            self.in_data = true;
            let mail = self.read_reply("reply to MAIL FROM", self.timeout).await?;
            let rcpt = self.read_reply("reply to RCPT TO", self.timeout).await?;
            if mail.code == 421 || rcpt.code == 421 {
                // The server is closing the connection: no reply to DATA will come.
                self.broken = true;
                return Ok((mail, Some(rcpt), None));
            }
            match self.read_reply("reply to DATA", self.timeout).await {
                Ok(data) => {
                    self.in_data = data.code == 354;
                    Ok((mail, Some(rcpt), Some(data)))
                }
                // A refusal already says why; the lost DATA reply adds nothing.
                Err(_) if !mail.is_positive() || !rcpt.is_positive() => {
                    Ok((mail, Some(rcpt), None))
                }
                Err(fault) => Err(fault),
            }
        } else {
            let mail = self.command(&mail, "reply to MAIL FROM").await?;
            if !mail.is_positive() {
                self.broken |= mail.code == 421;
                return Ok((mail, None, None));
            }
            let rcpt = self.command(&rcpt, "reply to RCPT TO").await?;
            if !rcpt.is_positive() {
                self.broken |= rcpt.code == 421;
                return Ok((mail, Some(rcpt), None));
            }
            let data = self.command("DATA\r\n", "reply to DATA").await?;
            self.in_data = data.code == 354;
            Ok((mail, Some(rcpt), Some(data)))
        }
    }

    /// Sends the message (dot-stuffed, RFC 5321 §4.5.2) and its final dot within the
    /// session's timeout, calls `meanwhile` while the server reads it, then waits up to
    /// `reply_within` for the reply.
    ///
    /// With `next` (a sender and recipient) and a server that pipelines, the next
    /// transaction's MAIL FROM, RCPT TO and DATA go in the same write, after the final dot
    /// (RFC 2920 lets the message's data begin a group, and DATA end it): the next
    /// [`Session::envelope`] for exactly that pair then only reads their replies, one round
    /// trip fewer a message. Its data still waits for that call, and for the caller's
    /// commit; a caller that then sends to anyone else must drop the session
    /// ([`Session::primed_for`]).
    pub async fn data(
        &mut self,
        message: &[u8],
        reply_within: Duration,
        next: Option<(&str, &str)>,
        meanwhile: impl FnOnce(),
    ) -> DataOutcome {
        self.end_data(&stuff(message), reply_within, next, meanwhile)
            .await
    }

    /// Sends the message without its final dot, for a caller with something to finish
    /// before the message may be accepted ([`Session::finish_data`] sends the dot). A
    /// session left this way is closed without the dot, and the server drops the message.
    pub async fn data_without_dot(&mut self, message: &[u8]) -> Result<(), Fault> {
        let stuffed = stuff(message);
        self.write_parts(&stuffed, b"").await
    }

    /// The final dot after [`Session::data_without_dot`], then as [`Session::data`].
    pub async fn finish_data(
        &mut self,
        reply_within: Duration,
        next: Option<(&str, &str)>,
        meanwhile: impl FnOnce(),
    ) -> DataOutcome {
        self.end_data(b"", reply_within, next, meanwhile).await
    }

    /// Writes `body` (what is left of the message, stuffed), the final dot and `next`'s
    /// envelope when the server pipelines, then as [`Session::after_the_dot`].
    async fn end_data(
        &mut self,
        body: &[u8],
        reply_within: Duration,
        next: Option<(&str, &str)>,
        meanwhile: impl FnOnce(),
    ) -> DataOutcome {
        let next = next.filter(|_| self.pipelining);
        let end = self.end_of_data(next);
        if let Err(fault) = self.write_parts(body, &end).await {
            return DataOutcome::NotSent(fault);
        }
        self.after_the_dot(next, reply_within, meanwhile).await
    }

    /// The final dot, and the next envelope when there is one.
    fn end_of_data(&self, next: Option<(&str, &str)>) -> Vec<u8> {
        let mut end = b"\r\n.\r\n".to_vec();
        if let Some((from, to)) = next {
            let (mail, rcpt) = self.envelope_commands(from, to);
            end.extend_from_slice(mail.as_bytes());
            end.extend_from_slice(rcpt.as_bytes());
            end.extend_from_slice(b"DATA\r\n");
        }
        end
    }

    /// Writes `body` then `tail` within the session's timeout, in one system call when
    /// the socket takes it all, without copying either. The server reads data from here
    /// on.
    async fn write_parts(&mut self, body: &[u8], tail: &[u8]) -> Result<(), Fault> {
        self.in_data = true;
        let written = async {
            let (mut body, mut tail) = (body, tail);
            while !body.is_empty() || !tail.is_empty() {
                let slices = [io::IoSlice::new(body), io::IoSlice::new(tail)];
                let n = self.stream.write_vectored(&slices).await?;
                if n == 0 {
                    return Err(io::Error::from(io::ErrorKind::WriteZero));
                }
                let from_body = n.min(body.len());
                body = &body[from_body..];
                tail = &tail[n - from_body..];
            }
            self.stream.flush().await
        };
        match tokio::time::timeout(self.timeout, written).await {
            Err(_) => {
                self.broken = true;
                Err(Fault::Timeout {
                    what: "room to write the message",
                    after: self.timeout,
                })
            }
            Ok(Err(e)) => {
                self.broken = true;
                Err(io_fault(e))
            }
            Ok(Ok(())) => Ok(()),
        }
    }

    /// After the final dot (and `next`'s envelope) went: `meanwhile`, then the reply.
    async fn after_the_dot(
        &mut self,
        next: Option<(&str, &str)>,
        reply_within: Duration,
        meanwhile: impl FnOnce(),
    ) -> DataOutcome {
        self.in_data = next.is_some();
        self.primed = next.map(|(from, to)| (from.to_string(), to.to_string()));
        meanwhile();
        match self
            .read_reply("reply to the end of the message", reply_within)
            .await
        {
            Ok(reply) => {
                // 421: the server is closing; the primed envelope's replies will not come.
                self.broken |= reply.code == 421;
                DataOutcome::Replied(reply)
            }
            Err(fault) => DataOutcome::Unanswered(fault),
        }
    }

    /// RSET, to leave a refused transaction; false if the session did not survive it.
    pub async fn reset(&mut self) -> bool {
        matches!(self.command("RSET\r\n", "reply to RSET").await, Ok(r) if r.is_positive())
    }

    /// NOOP: whether the session still answers.
    pub async fn noop(&mut self) -> bool {
        matches!(self.command("NOOP\r\n", "reply to NOOP").await, Ok(r) if r.is_positive())
    }

    /// QUIT, best effort, then close. A server waiting for a message's data would read
    /// QUIT as data: the connection is only closed, which abandons that message.
    pub async fn quit(mut self) {
        if !self.broken && !self.in_data {
            let quick = Duration::from_secs(2).min(self.timeout);
            let _ = tokio::time::timeout(quick, async {
                let _ = self.write(b"QUIT\r\n").await;
                let _ = self.read_reply("reply to QUIT", quick).await;
            })
            .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        let written = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.timeout, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.broken = true;
                Err(io_fault(e))
            }
            Err(_) => {
                self.broken = true;
                Err(Fault::Timeout {
                    what: "room to write a command",
                    after: self.timeout,
                })
            }
        }
    }

    async fn read_reply(&mut self, what: &'static str, within: Duration) -> Result<Reply, Fault> {
        self.read_reply_raw(what, within).await.map(|(r, _)| r)
    }

    /// Reads one reply (all its lines) within `within`; also gives its raw bytes.
    async fn read_reply_raw(
        &mut self,
        what: &'static str,
        within: Duration,
    ) -> Result<(Reply, Vec<u8>), Fault> {
        let deadline = tokio::time::Instant::now() + within;
        let mut receiver = ResponseReceiver::default();
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if !self.pending.is_empty() {
                let pending = std::mem::take(&mut self.pending);
                let mut iter = pending.iter();
                let parsed = receiver.parse(&mut iter);
                let rest = iter.as_slice();
                raw.extend_from_slice(&pending[..pending.len() - rest.len()]);
                self.pending = rest.to_vec();
                match parsed {
                    Ok(response) => {
                        let text = response
                            .message
                            .split('\n')
                            .map(|l| l.trim_end_matches('\r').trim())
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ");
                        let status = (response.esc != [0, 0, 0]).then_some(response.esc);
                        return Ok((
                            Reply {
                                code: response.code,
                                status,
                                text,
                            },
                            raw,
                        ));
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) if raw.len() < MAX_REPLY => {}
                    Err(_) => {
                        self.broken = true;
                        raw.extend_from_slice(&self.pending);
                        return Err(Fault::Garbage(shown(&raw)));
                    }
                }
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => {
                    self.broken = true;
                    return Err(Fault::Timeout {
                        what,
                        after: within,
                    });
                }
                Ok(Err(e)) => {
                    self.broken = true;
                    return Err(io_fault(e));
                }
                Ok(Ok(0)) => {
                    self.broken = true;
                    return Err(if raw.is_empty() {
                        Fault::Closed
                    } else {
                        Fault::Garbage(shown(&raw))
                    });
                }
                Ok(Ok(n)) => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// `message` with every line that starts with a dot given one more, unless no line does
/// (our own copies never have one: quoted-printable encodes a leading dot).
fn stuff(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let needs = message.first() == Some(&b'.') || memchr::memmem::find(message, b"\n.").is_some();
    if !needs {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut line_start = true;
    for &b in message {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    std::borrow::Cow::Owned(out)
}

/// What came, for a message: printable, on one line, at most 120 characters.
fn shown(raw: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(119).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn io_fault(e: io::Error) -> Fault {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Fault::Closed,
        _ => Fault::Io(e),
    }
}

async fn handshake(
    tcp: TcpStream,
    host: &str,
    config: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Fault> {
    let name =
        rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| Fault::Tls {
            message: format!("`{host}` is not a name TLS can check: {e}"),
            certificate: true,
        })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => Err(Fault::Timeout {
            what: "TLS handshake",
            after: timeout,
        }),
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(Fault::Tls {
            certificate: certificate_problem(&e),
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_doubles_leading_dots_only() {
        assert_eq!(&*stuff(b"a\r\nb"), b"a\r\nb");
        assert_eq!(&*stuff(b".a\r\n.b\r\nc.d"), b"..a\r\n..b\r\nc.d");
        assert_eq!(&*stuff(b"a\r\n.\r\n"), b"a\r\n..\r\n");
    }

    #[test]
    fn replies_read_as_sentences() {
        let r = Reply {
            code: 451,
            status: Some([4, 2, 2]),
            text: "mailbox full".into(),
        };
        assert_eq!(r.to_string(), "451 4.2.2 mailbox full");
        assert!(r.is_transient());
        assert_eq!(shown(b"\x00\x01garbage\r\nmore"), "garbage more");
    }
}
