//! How a copy leaves: one trait, three transports. SMTP lives in [`super::smtp`]; here are
//! the file transport (one `.eml` per recipient under `outbox/<number>/sent/`, the default
//! with no SMTP configured) and a local `sendmail`.

use std::future::Future;
use std::path::PathBuf;

use lettre::address::Envelope;
use lettre::{Address, AsyncSendmailTransport, AsyncTransport, Tokio1Executor};

/// What happened to one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted; the server's reply.
    Accepted(String),
    /// Not delivered; try again later (4xx, a network error, a timeout before the message
    /// was complete). `scope` says whom the trouble concerns.
    Temporary {
        /// The reply or error.
        reply: String,
        /// The recipient alone, the recipient's domain, or the connection.
        scope: Scope,
    },
    /// Never try again for this recipient (5xx); the reply.
    Permanent(String),
    /// The message was sent in full and no reply came (a timeout after the final dot, a
    /// dropped connection): it may have been delivered, so it is not retried on its own.
    /// What happened.
    Uncertain(String),
    /// The transport cannot work at all (authentication refused, TLS required but not
    /// offered): the send stops, and nobody's row changes.
    Broken(String),
}

/// Whom a temporary failure concerns, which decides what waits (PRODUCT.md §6: slow-down
/// by signal, not by any 4xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This recipient (mailbox full, greylisting of one address): it alone waits.
    Recipient,
    /// The recipient's domain (421, rate or reputation replies): every worker pauses it.
    Domain,
    /// The connection broke during this recipient's transaction (an unreadable reply, a
    /// dropped connection, a stall before the message went): the recipient waits and the
    /// connection is opened again.
    Connection,
    /// No session could be opened at all (refused, unreachable, no greeting): nobody's
    /// attempt is counted; the connection waits before trying again, and a server that
    /// stays out of reach stops the run.
    Unreachable,
}

impl Delivery {
    /// A temporary failure concerning `scope`.
    pub fn temporary(reply: impl Into<String>, scope: Scope) -> Delivery {
        Delivery::Temporary {
            reply: reply.into(),
            scope,
        }
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delivery::Accepted(reply) => write!(f, "accepted: {reply}"),
            Delivery::Temporary { reply, .. } => write!(f, "not delivered for now: {reply}"),
            Delivery::Permanent(reply) => write!(f, "refused: {reply}"),
            Delivery::Uncertain(what) => write!(f, "uncertain: {what}"),
            Delivery::Broken(why) => write!(f, "cannot send: {why}"),
        }
    }
}

/// Why a message was not delivered when `ready` said no.
pub const NOT_READY: &str = "the journal could not be written; the message was not sent";

/// What a delivery waits for before the message can be accepted: the worker's earlier
/// results committed to the journal. `true` is ready at once; `false` never.
pub trait Ready: Send {
    /// Completes when the commit is worth starting before the envelope's replies are back
    /// (with SMTP): at once when the commit would take in no other connection's results
    /// by waiting. Until then the commit waits for those replies, and takes in whatever the
    /// other connections record meanwhile, so that one commit serves many messages.
    fn soon(&mut self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Waits for the commit; false when the message must not go (the journal cannot be
    /// written, or the worker's claim has lapsed).
    fn commit(&mut self) -> impl Future<Output = bool> + Send;

    /// Whether the message had best go while [`Ready::commit`] runs (and while it waits
    /// for [`Ready::soon`]), all but its final dot: an SMTP transport then holds back only
    /// the dot. Worth it when there is a commit to make and the server has nothing else
    /// to read meanwhile.
    fn send_while_committing(&self) -> bool {
        false
    }

    /// The message has gone in full and its reply is awaited (with SMTP, the server reads
    /// the data meanwhile): work that would otherwise wait for the reply is done now. The
    /// worker makes its next copy here, so that making and signing it costs no time on the
    /// wire. Called at most once, after a commit that said true; a transport that has no
    /// such wait need not call it.
    fn sent(&mut self) {}

    /// The recipient of the worker's next message, when its envelope may go out with this
    /// message's data (with SMTP and a server that pipelines: one round trip fewer a
    /// message). The next delivery must then be to exactly that recipient, or the
    /// transport opens a new session for it.
    fn next_recipient(&self) -> Option<&str> {
        None
    }
}

impl Ready for bool {
    fn commit(&mut self) -> impl Future<Output = bool> + Send {
        std::future::ready(*self)
    }
}

/// A way to deliver messages. Each send worker owns one (an SMTP transport is one
/// connection).
pub trait Transport: Send + 'static {
    /// Delivers `message` from `from` to `to`. `ready` must commit before the message can
    /// be accepted (for SMTP, before the data is sent): the worker's previous result is
    /// being committed to the journal meanwhile, so that at most one accepted copy per worker
    /// is ever unrecorded, and the commit costs no time of its own. When `ready` says false
    /// the message must not be delivered: the transport gives up on it and returns
    /// [`Delivery::Broken`].
    fn deliver(
        &mut self,
        from: &Address,
        to: &Address,
        message: &[u8],
        ready: impl Ready,
    ) -> impl Future<Output = Delivery> + Send;

    /// Says goodbye (SMTP QUIT); best effort.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// Writes each copy to `DIR/<address>.eml`.
#[derive(Debug, Clone)]
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    /// Writes into `dir` (created on first delivery).
    pub fn new(dir: PathBuf) -> FileTransport {
        FileTransport { dir }
    }

    /// The file a copy for `to` goes to.
    pub fn path_for(&self, to: &Address) -> PathBuf {
        let name: String = to
            .to_string()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "@._+-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{name}.eml"))
    }
}

impl Transport for FileTransport {
    async fn deliver(
        &mut self,
        _from: &Address,
        to: &Address,
        message: &[u8],
        mut ready: impl Ready,
    ) -> Delivery {
        if !ready.commit().await {
            return Delivery::Broken(NOT_READY.into());
        }
        let path = self.path_for(to);
        let dir = self.dir.clone();
        let bytes = message.to_vec();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
            std::fs::create_dir_all(&dir)?;
            let mut tmp = path.clone().into_os_string();
            tmp.push(".tmp");
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)?;
            Ok(path)
        })
        .await;
        match written {
            Ok(Ok(path)) => Delivery::Accepted(format!("written to {}", path.display())),
            Ok(Err(e)) => Delivery::Broken(format!("could not write the file: {e}")),
            Err(e) => Delivery::Broken(format!("could not write the file: {e}")),
        }
    }

    async fn close(&mut self) {}
}

/// Hands each copy to the local MTA's `sendmail` command.
pub struct SendmailTransport {
    inner: AsyncSendmailTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SendmailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendmailTransport")
    }
}

impl SendmailTransport {
    /// Uses `sendmail` from the PATH (`/usr/sbin/sendmail` on Debian).
    pub fn new() -> SendmailTransport {
        SendmailTransport {
            inner: AsyncSendmailTransport::new(),
        }
    }
}

impl Default for SendmailTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport for SendmailTransport {
    async fn deliver(
        &mut self,
        from: &Address,
        to: &Address,
        message: &[u8],
        mut ready: impl Ready,
    ) -> Delivery {
        let envelope = match Envelope::new(Some(from.clone()), vec![to.clone()]) {
            Ok(e) => e,
            Err(e) => return Delivery::Permanent(e.to_string()),
        };
        if !ready.commit().await {
            return Delivery::Broken(NOT_READY.into());
        }
        match self.inner.send_raw(&envelope, message).await {
            Ok(()) => Delivery::Accepted("accepted by sendmail".into()),
            Err(e) => Delivery::temporary(format!("sendmail: {e}"), Scope::Connection),
        }
    }

    async fn close(&mut self) {}
}

/// One of the transports, chosen at run time (by the job, `--transport` or the config).
pub enum AnyTransport {
    /// SMTP: one connection.
    Smtp(Box<super::smtp::SmtpTransport>),
    /// Files under the outbox.
    File(FileTransport),
    /// The local `sendmail`.
    Sendmail(SendmailTransport),
}

impl Transport for AnyTransport {
    async fn deliver(
        &mut self,
        from: &Address,
        to: &Address,
        message: &[u8],
        ready: impl Ready,
    ) -> Delivery {
        match self {
            AnyTransport::Smtp(t) => t.deliver(from, to, message, ready).await,
            AnyTransport::File(t) => t.deliver(from, to, message, ready).await,
            AnyTransport::Sendmail(t) => t.deliver(from, to, message, ready).await,
        }
    }

    async fn close(&mut self) {
        match self {
            AnyTransport::Smtp(t) => t.close().await,
            AnyTransport::File(t) => t.close().await,
            AnyTransport::Sendmail(t) => t.close().await,
        }
    }
}
