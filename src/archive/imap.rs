//! Reading a mailbox over IMAP (async-imap): `imaps://user@host/INBOX` (implicit TLS),
//! `imap://user@host/INBOX` (STARTTLS; plain text only to a loopback server that offers
//! none). The password comes from `MAILOUT_IMAP_PASSWORD`. The mailbox is opened read-only
//! (EXAMINE) and what was fetched is remembered (UIDVALIDITY and the highest UID), so a rerun
//! fetches only new mail.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::net::TcpStream;

use crate::error::{BoxError, Error, Result};
use crate::tls::Stream;

/// The environment variable holding the IMAP password.
pub const PASSWORD_ENV: &str = "MAILOUT_IMAP_PASSWORD";

/// A batch of fetched messages: (UID, raw bytes).
pub type Fetched = Vec<(u32, Vec<u8>)>;

/// Messages fetched per request.
const FETCH: usize = 200;

/// A mailbox to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// Implicit TLS (imaps).
    pub implicit_tls: bool,
    /// `?tls=none`: never encrypt (loopback only).
    pub plain: bool,
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Mailbox name.
    pub mailbox: String,
    /// Extra trusted root certificate (PEM) from `?ca=PATH`.
    pub ca: Option<Vec<u8>>,
}

impl ImapUrl {
    /// Parses `imaps://user@host[:port]/MAILBOX` or `imap://…[?tls=none][&ca=PATH]`.
    pub fn parse(text: &str) -> Result<ImapUrl> {
        let bad = |why: &str| Error::Usage(format!("IMAP URL `{text}`: {why}"));
        let url = url::Url::parse(text).map_err(|e| Error::Setting {
            context: format!("IMAP URL `{text}` is not a URL"),
            source: Box::new(e),
        })?;
        let implicit_tls = match url.scheme() {
            "imaps" => true,
            "imap" => false,
            _ => return Err(bad("the scheme must be imaps:// or imap://")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let user = url::form_urlencoded::parse(format!("u={}", url.username()).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if user.is_empty() {
            return Err(bad("it needs a user: imaps://USER@HOST/MAILBOX"));
        }
        let mailbox = url.path().trim_start_matches('/').to_string();
        let mailbox = percent_decode(&mailbox);
        let mut plain = false;
        let mut ca = None;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "none") if !implicit_tls => plain = true,
                ("tls", "required") if !implicit_tls => plain = false,
                ("ca", path) => {
                    ca = Some(std::fs::read(path).map_err(|source| Error::Read {
                        path: path.into(),
                        source,
                    })?)
                }
                (k, v) => return Err(bad(&format!("unknown parameter `{k}={v}`"))),
            }
        }
        if plain && !is_loopback(&host) {
            return Err(bad("`tls=none` is only for a server on this machine"));
        }
        Ok(ImapUrl {
            implicit_tls,
            plain,
            port: url.port().unwrap_or(if implicit_tls { 993 } else { 143 }),
            host,
            user,
            mailbox: if mailbox.is_empty() {
                "INBOX".into()
            } else {
                mailbox
            },
            ca,
        })
    }

    /// The key the store remembers this mailbox by (no password).
    pub fn key(&self) -> String {
        format!(
            "{}://{}@{}:{}/{}",
            if self.implicit_tls { "imaps" } else { "imap" },
            self.user,
            self.host,
            self.port,
            self.mailbox
        )
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("u={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A TLS client config: the Mozilla roots and `ca`; with `verify` false (STARTTLS to a
/// loopback server), any certificate is accepted.
fn tls_config(ca: Option<&[u8]>, verify: bool) -> Result<Arc<rustls::ClientConfig>> {
    crate::tls::client_config(verify, ca)
        .map(Arc::new)
        .map_err(|e| Error::Imap {
            context: "could not set up TLS for IMAP".into(),
            source: e.into(),
        })
}

async fn tls(tcp: TcpStream, host: &str, config: Arc<rustls::ClientConfig>) -> Result<Stream> {
    let name =
        rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| Error::Setting {
            context: format!("`{host}` is not a host name TLS can check"),
            source: Box::new(e),
        })?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Imap {
            context: format!("TLS with {host} failed"),
            source: Box::new(e),
        })?;
    Ok(Stream::Tls(Box::new(stream)))
}

/// `context` (a sentence), caused by `source`.
fn imap_error(context: impl Into<String>, source: impl Into<BoxError>) -> Error {
    Error::Imap {
        context: context.into(),
        source: source.into(),
    }
}

/// A logged-in session with the server of `url` (TLS as the URL says).
async fn open(url: &ImapUrl, password: &str) -> Result<async_imap::Session<Stream>> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| {
            imap_error(
                format!(
                    "could not connect to the IMAP server {}:{}",
                    url.host, url.port
                ),
                e,
            )
        })?;
    tcp.set_nodelay(true).ok();
    let stream = if url.implicit_tls {
        tls(tcp, &url.host, tls_config(url.ca.as_deref(), true)?).await?
    } else {
        Stream::Plain(tcp)
    };
    let mut client = async_imap::Client::new(stream);
    client
        .read_response()
        .await
        .map_err(|e| imap_error("the IMAP server sent no greeting", e))?
        .ok_or_else(|| {
            imap_error(
                "the IMAP server sent no greeting",
                "the server closed the connection",
            )
        })?;
    if !url.implicit_tls && !url.plain {
        match client.run_command_and_check_ok("STARTTLS", None).await {
            Ok(()) => {
                let Stream::Plain(tcp) = client.into_inner() else {
                    return Err(imap_error(
                        "IMAP STARTTLS failed",
                        "the connection is already encrypted",
                    ));
                };
                // A server on this machine may have a self-signed certificate: encrypt anyway.
                let verify = !is_loopback(&url.host) || url.ca.is_some();
                let config = tls_config(url.ca.as_deref(), verify)?;
                client = async_imap::Client::new(tls(tcp, &url.host, config).await?);
            }
            Err(_) if is_loopback(&url.host) => {}
            Err(e) => {
                return Err(Error::Imap {
                    context: format!(
                        "{} refused IMAP STARTTLS; the password will not go in plain text",
                        url.host
                    ),
                    source: Box::new(e),
                });
            }
        }
    }
    client.login(&url.user, password).await.map_err(|(e, _)| {
        imap_error(
            format!("could not log in to the IMAP server as `{}`", url.user),
            e,
        )
    })
}

/// Fetches every message of `url` newer than `state` (UIDVALIDITY, highest UID), calling
/// `batch` with each batch of (UID, raw bytes) and the mailbox's UIDVALIDITY; `batch` stores
/// them and remembers the highest UID.
pub async fn fetch_new(
    url: &ImapUrl,
    password: &str,
    state: Option<(u32, u32)>,
    batch: &mut dyn FnMut(Fetched, u32) -> Result<()>,
) -> Result<u64> {
    let mut session = open(url, password).await?;
    let mailbox = session.examine(&url.mailbox).await.map_err(|e| {
        imap_error(
            format!("could not open the IMAP mailbox `{}`", url.mailbox),
            e,
        )
    })?;
    let validity = mailbox.uid_validity.unwrap_or(0);
    let after = match state {
        Some((v, last)) if v == validity => last,
        _ => 0,
    };
    let mut uids: Vec<u32> = session
        .uid_search(format!("UID {}:*", after.saturating_add(1)))
        .await
        .map_err(|e| imap_error("could not search the IMAP mailbox for new mail", e))?
        .into_iter()
        .filter(|uid| *uid > after)
        .collect();
    uids.sort_unstable();
    let mut fetched = 0;
    for chunk in uids.chunks(FETCH) {
        let set = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut messages = Vec::with_capacity(chunk.len());
        {
            let mut stream = session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .map_err(|e| imap_error("could not fetch mail from the IMAP mailbox", e))?;
            while let Some(item) = stream.next().await {
                let fetch =
                    item.map_err(|e| imap_error("could not fetch mail from the IMAP mailbox", e))?;
                if let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) {
                    messages.push((uid, body.to_vec()));
                }
            }
        }
        messages.sort_by_key(|(uid, _)| *uid);
        fetched += messages.len() as u64;
        batch(messages, validity)?;
    }
    session.logout().await.ok();
    Ok(fetched)
}

/// Where a message was found by [`locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Its Message-ID, with angle brackets, as asked for.
    pub message_id: String,
    /// The folder it is in.
    pub folder: String,
    /// Whether that folder is the junk (spam) folder.
    pub junk: bool,
    /// When the server stored it (IMAP INTERNALDATE), in Unix seconds.
    pub arrived: Option<i64>,
}

/// Folder names taken for the junk folder when the server marks none `\Junk` (RFC 6154).
const JUNK_NAMES: &[&str] = &["junk", "spam", "junk e-mail", "junk email", "bulk mail"];

/// Looks for each of `message_ids` in the mailbox of `url` and in the account's junk folder
/// (the one the server marks `\Junk`, else one named Junk or Spam), read-only. A message
/// in neither is left out of the answer.
pub async fn locate(url: &ImapUrl, password: &str, message_ids: &[String]) -> Result<Vec<Located>> {
    let mut session = open(url, password).await?;
    let mut junk = Vec::new();
    {
        let mut names = session
            .list(Some(""), Some("*"))
            .await
            .map_err(|e| imap_error("could not list the IMAP folders", e))?;
        let mut by_name = Vec::new();
        while let Some(name) = names.next().await {
            let name = name.map_err(|e| imap_error("could not list the IMAP folders", e))?;
            let marked = name
                .attributes()
                .iter()
                .any(|a| matches!(a, async_imap::types::NameAttribute::Junk));
            let selectable = !name
                .attributes()
                .iter()
                .any(|a| matches!(a, async_imap::types::NameAttribute::NoSelect));
            let leaf = name
                .name()
                .rsplit(['/', '.'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if selectable && marked {
                junk.push(name.name().to_string());
            } else if selectable && JUNK_NAMES.contains(&leaf.as_str()) {
                by_name.push(name.name().to_string());
            }
        }
        if junk.is_empty() {
            junk = by_name;
        }
    }
    let mut folders = vec![(url.mailbox.clone(), false)];
    folders.extend(
        junk.into_iter()
            .filter(|j| *j != url.mailbox)
            .map(|j| (j, true)),
    );
    let mut found = Vec::new();
    for (folder, is_junk) in folders {
        session
            .examine(&folder)
            .await
            .map_err(|e| imap_error(format!("could not open the IMAP mailbox `{folder}`"), e))?;
        for id in message_ids {
            if found.iter().any(|f: &Located| &f.message_id == id) {
                continue;
            }
            // A Message-ID of our own making; anything that would break the quoting is
            // not searched for.
            if id.contains(['"', '\\', '\r', '\n']) || id.is_empty() {
                continue;
            }
            let uids = session
                .uid_search(format!("HEADER Message-ID \"{id}\""))
                .await
                .map_err(|e| imap_error(format!("could not search `{folder}`"), e))?;
            let Some(uid) = uids.into_iter().min() else {
                continue;
            };
            let mut arrived = None;
            {
                let mut stream = session
                    .uid_fetch(uid.to_string(), "(UID INTERNALDATE)")
                    .await
                    .map_err(|e| imap_error(format!("could not read `{folder}`"), e))?;
                while let Some(item) = stream.next().await {
                    let fetch =
                        item.map_err(|e| imap_error(format!("could not read `{folder}`"), e))?;
                    if let Some(date) = fetch.internal_date() {
                        arrived = Some(date.timestamp());
                    }
                }
            }
            found.push(Located {
                message_id: id.clone(),
                folder: folder.clone(),
                junk: is_junk,
                arrived,
            });
        }
    }
    session.logout().await.ok();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ImapUrl::parse("imaps://jo%40union@mail.example.org/Bulletins").unwrap();
        assert_eq!(
            (u.user.as_str(), u.port, u.mailbox.as_str(), u.implicit_tls),
            ("jo@union", 993, "Bulletins", true)
        );
        assert_eq!(u.key(), "imaps://jo@union@mail.example.org:993/Bulletins");
        let u = ImapUrl::parse("imap://mailtest@127.0.0.1/?tls=none").unwrap();
        assert!(u.plain && u.port == 143 && u.mailbox == "INBOX");
        assert!(ImapUrl::parse("imap://mailtest@mail.example.org/?tls=none").is_err());
        assert!(ImapUrl::parse("imaps://mail.example.org/INBOX").is_err());
        assert!(ImapUrl::parse("pop3://a@b/INBOX").is_err());
    }
}
