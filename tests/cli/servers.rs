//! Real SMTP servers on 127.0.0.1 for the send tests: Postfix's `smtp-sink` (Debian package
//! `postfix`), which accepts everything and dumps each transaction to a file, and a scripted
//! server for the faults a real server cannot be made to show on cue (4xx and 5xx per
//! recipient, a connection dropped after DATA, a server that stalls).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port` (the event itself, not a sleep).
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::yield_now();
    }
}

pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// `smtp-sink` on a free port, dumping every transaction to one file.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dump: PathBuf,
    _dir: tempfile::TempDir,
}

/// One message as `smtp-sink` received it.
#[derive(Debug, Clone)]
pub struct Dumped {
    pub rcpt: String,
    pub text: String,
}

impl Dumped {
    /// The value of header `name` (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        let mut lines = self
            .text
            .lines()
            .skip_while(|l| !l.to_lowercase().starts_with(&prefix));
        let first = lines.next()?;
        let mut value = first[prefix.len()..].trim().to_string();
        for cont in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
            value.push(' ');
            value.push_str(cont.trim());
        }
        Some(value)
    }
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let binary = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("smtp-sink is needed for the send tests: apt-get install postfix");
        let dir = tempfile::tempdir().unwrap();
        // smtp-sink drops to `nobody` when started as root; it must be able to write here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let dump = dir.path().join("dump");
        let port = free_port();
        let mut command = Command::new(binary);
        if running_as_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg("-D")
            .arg(&dump)
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        wait_for_port(port);
        SmtpSink {
            child,
            port,
            dump,
            _dir: dir,
        }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Dumped> {
        let text = std::fs::read_to_string(&self.dump).unwrap_or_default();
        let mut out = Vec::new();
        for chunk in text.split("X-Client-Addr: ").skip(1) {
            let rcpt = chunk
                .lines()
                .find_map(|l| l.strip_prefix("X-Rcpt-Args: "))
                .unwrap_or("")
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_string();
            let body_start = chunk.find("\nReceived: ").map_or(0, |i| i + 1);
            out.push(Dumped {
                rcpt,
                text: chunk[body_start..].to_string(),
            });
        }
        out
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the scripted server does with a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// 250.
    Accept,
    /// `451 4.7.1 greylisted` to the first `n` attempts, then 250 (recipient-level).
    TempFail(u32),
    /// `452 4.2.2 mailbox full` to the first `n` attempts, then 250 (recipient-level).
    Full(u32),
    /// `450 4.7.28` (an unusual rate: domain-level) to the first `n` attempts, then 250.
    Rate(u32),
    /// `421 4.7.0 … slow down` and a closed connection to the first `n` attempts, then 250.
    Closing(u32),
    /// 550 always.
    Reject,
    /// This reply to RCPT always (without its CRLF), `{rcpt}` replaced by the address.
    RejectWith(&'static str),
    /// 554 after DATA, always.
    RejectData,
    /// Closes the connection after the message's final dot, without a reply, the first
    /// time; accepts after that.
    DropAfterData,
    /// Never answers the message's final dot the first time (the client must time out);
    /// accepts after that.
    StallAfterData,
    /// Answers the message's final dot with garbage the first time; accepts after that.
    GarbageAfterData,
    /// Never answers DATA the first time (no 354: the message never goes); accepts after.
    StallBeforeData,
    /// Answers RCPT with a line that is not an SMTP reply, always.
    GarbageRcpt,
}

/// A message the scripted server accepted (or received in full).
#[derive(Debug, Clone)]
pub struct Accepted {
    pub rcpt: String,
    pub data: String,
}

impl Accepted {
    /// The value of header `name` in the message.
    pub fn header(&self, name: &str) -> Option<String> {
        Dumped {
            rcpt: self.rcpt.clone(),
            text: self.data.clone(),
        }
        .header(name)
    }
}

/// A scripted SMTP server on a free port: per-recipient rules by local part. It answers
/// line by line, so a client may pipeline when it is told it can.
pub struct Scripted {
    pub port: u16,
    /// Messages answered with 250.
    pub accepted: Arc<Mutex<Vec<Accepted>>>,
    /// Every message whose final dot arrived, whatever the answer (or none): each may have
    /// been delivered.
    pub received: Arc<Mutex<Vec<Accepted>>>,
    pub attempts: Arc<Mutex<HashMap<String, u32>>>,
    /// When each RCPT arrived, with its address and the reply code.
    pub log: Arc<Mutex<Vec<(Instant, String, u16)>>>,
    /// EHLO commands per session, in the order sessions began.
    pub ehlos: Arc<Mutex<Vec<u32>>>,
}

/// How the scripted server behaves as a whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// EHLO offers PIPELINING.
    pub pipelining: bool,
    /// EHLO offers AUTH PLAIN LOGIN, and a session must log in as this user and password.
    pub auth: Option<(&'static str, &'static str)>,
    /// After this many accepted messages the server goes away: open sessions are closed at
    /// their next command and new ones are closed before the greeting.
    pub hang_up_after: Option<usize>,
}

impl Scripted {
    /// Starts the server; `rule` decides for each recipient address. With `pipelining`,
    /// EHLO offers PIPELINING.
    pub fn start(rule: fn(&str) -> Rule, pipelining: bool) -> Scripted {
        Scripted::with(
            rule,
            Options {
                pipelining,
                ..Options::default()
            },
        )
    }

    /// Starts the server with `options`.
    pub fn with(rule: fn(&str) -> Rule, options: Options) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Shared {
            accepted: Arc::default(),
            received: Arc::default(),
            attempts: Arc::default(),
            log: Arc::default(),
            ehlos: Arc::default(),
        };
        let server = Scripted {
            port,
            accepted: Arc::clone(&shared.accepted),
            received: Arc::clone(&shared.received),
            attempts: Arc::clone(&shared.attempts),
            log: Arc::clone(&shared.log),
            ehlos: Arc::clone(&shared.ehlos),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || session(stream, rule, options, &shared));
            }
        });
        server
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().unwrap().clone()
    }

    /// Every message received in full, per recipient.
    pub fn received_by(&self) -> HashMap<String, Vec<Accepted>> {
        let mut by: HashMap<String, Vec<Accepted>> = HashMap::new();
        for a in self.received.lock().unwrap().iter() {
            by.entry(a.rcpt.clone()).or_default().push(a.clone());
        }
        by
    }

    pub fn attempts_of(&self, address: &str) -> u32 {
        self.attempts
            .lock()
            .unwrap()
            .get(address)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Clone)]
struct Shared {
    accepted: Arc<Mutex<Vec<Accepted>>>,
    received: Arc<Mutex<Vec<Accepted>>>,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
    log: Arc<Mutex<Vec<(Instant, String, u16)>>>,
    ehlos: Arc<Mutex<Vec<u32>>>,
}

impl Shared {
    fn gone(&self, options: &Options) -> bool {
        options
            .hang_up_after
            .is_some_and(|n| self.accepted.lock().unwrap().len() >= n)
    }
}

fn session(stream: TcpStream, rule: fn(&str) -> Rule, options: Options, shared: &Shared) {
    if shared.gone(&options) {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let session_index = {
        let mut ehlos = shared.ehlos.lock().unwrap();
        ehlos.push(0);
        ehlos.len() - 1
    };
    let mut authenticated = options.auth.is_none();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut say = |text: &str| out.write_all(text.as_bytes()).is_ok();
    if !say("220 scripted.test ESMTP\r\n") {
        return;
    }
    let mut rcpt: Option<(String, Rule, u32)> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if shared.gone(&options) {
            let _ = reader.get_ref().shutdown(Shutdown::Both);
            return;
        }
        let command = line.trim_end().to_string();
        let upper = command.to_uppercase();
        let ok = if upper.starts_with("EHLO") {
            shared.ehlos.lock().unwrap()[session_index] += 1;
            let mut extra = String::new();
            if options.pipelining {
                extra.push_str("250-PIPELINING\r\n");
            }
            if options.auth.is_some() {
                extra.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            say(&format!(
                "250-scripted.test\r\n{extra}250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
            ))
        } else if upper.starts_with("AUTH PLAIN") {
            let (user, password) = options.auth.unwrap_or(("", ""));
            let expected = base64(format!("\0{user}\0{password}").as_bytes());
            let given = command.split_whitespace().nth(2).unwrap_or("");
            authenticated = given == expected;
            say(if authenticated {
                "235 2.7.0 authenticated\r\n"
            } else {
                "535 5.7.8 authentication failed\r\n"
            })
        } else if !authenticated
            && (upper.starts_with("MAIL") || upper.starts_with("RCPT") || upper == "DATA")
        {
            say("530 5.7.0 authentication required\r\n")
        } else if upper.starts_with("HELO")
            || upper.starts_with("MAIL")
            || upper == "RSET"
            || upper == "NOOP"
        {
            rcpt = if upper.starts_with("MAIL") || upper == "RSET" {
                None
            } else {
                rcpt.take()
            };
            say("250 2.0.0 ok\r\n")
        } else if upper.starts_with("RCPT") {
            let address = command
                .split('<')
                .nth(1)
                .and_then(|s| s.split('>').next())
                .unwrap_or("")
                .to_lowercase();
            let n = {
                let mut t = shared.attempts.lock().unwrap();
                let n = t.entry(address.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let r = rule(&address);
            let own;
            let reply = match r {
                Rule::RejectWith(text) => {
                    own = format!("{}\r\n", text.replace("{rcpt}", &address));
                    own.as_str()
                }
                Rule::TempFail(times) if n <= times => "451 4.7.1 greylisted, try again later\r\n",
                Rule::Full(times) if n <= times => "452 4.2.2 mailbox full, try again later\r\n",
                Rule::Rate(times) if n <= times => {
                    "450 4.7.28 unusual rate of mail from your address, try again later\r\n"
                }
                Rule::Closing(times) if n <= times => {
                    "421 4.7.0 too many messages, slow down; closing connection\r\n"
                }
                Rule::Reject => "550 5.1.1 no such user here\r\n",
                Rule::GarbageRcpt => "hello there, this is not SMTP\r\n",
                _ => "250 2.1.5 ok\r\n",
            };
            let code = reply[..3].parse().unwrap_or(0);
            shared
                .log
                .lock()
                .unwrap()
                .push((Instant::now(), address.clone(), code));
            if reply.starts_with('2') {
                rcpt = Some((address, r, n));
            }
            let said = say(reply);
            if code == 421 || r == Rule::GarbageRcpt {
                return;
            }
            said
        } else if upper == "DATA" {
            match rcpt.take() {
                None => say("503 5.5.1 no valid recipients\r\n"),
                Some((_, Rule::StallBeforeData, 1)) => {
                    // Read (and ignore) until the client gives up and hangs up.
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {}
                    return;
                }
                Some((address, r, n)) => {
                    say("354 go ahead\r\n") && {
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        let message = Accepted {
                            rcpt: address,
                            data,
                        };
                        shared.received.lock().unwrap().push(message.clone());
                        match r {
                            Rule::DropAfterData if n == 1 => {
                                let _ = reader.get_ref().shutdown(Shutdown::Both);
                                return;
                            }
                            Rule::StallAfterData if n == 1 => {
                                while reader.read_line(&mut line).unwrap_or(0) > 0 {}
                                return;
                            }
                            Rule::GarbageAfterData if n == 1 => {
                                say("\u{1}\u{2}?? what\r\n");
                                return;
                            }
                            Rule::RejectData => say("554 5.7.1 message refused\r\n"),
                            _ => {
                                shared.accepted.lock().unwrap().push(message);
                                say("250 2.0.0 queued\r\n")
                            }
                        }
                    }
                }
            }
        } else if upper == "QUIT" {
            say("221 2.0.0 bye\r\n");
            return;
        } else {
            say("502 5.5.2 not implemented\r\n")
        };
        if !ok {
            return;
        }
    }
}

/// A TLS front (socat, Debian package `socat`) on a free port for a plain server on
/// `backend`, with a certificate for 127.0.0.1 issued by a test CA.
pub struct TlsFront {
    child: Child,
    pub port: u16,
    /// The test CA's certificate (PEM).
    pub ca: PathBuf,
    _certs: TlsCerts,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is needed for the TLS tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TlsFront {
    pub fn start(backend: u16) -> TlsFront {
        let certs = TlsCerts::new();
        let d = certs.dir.path();
        let port = free_port();
        let child = Command::new("socat")
            .current_dir(d)
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert=server.pem,key=server.key,verify=0"
            ))
            .arg(format!("TCP:127.0.0.1:{backend}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is needed for the TLS tests: apt-get install socat");
        wait_for_port(port);
        TlsFront {
            child,
            port,
            ca: certs.path("ca.pem"),
            _certs: certs,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Python's aiosmtpd (Debian package `python3-aiosmtpd`) requiring STARTTLS with a
/// certificate from a test CA; each message it receives is printed as a line of JSON
/// saying whether the session was encrypted.
pub struct Aiosmtpd {
    child: Child,
    pub port: u16,
    pub ca: PathBuf,
    lines: std::sync::mpsc::Receiver<String>,
    _front: TlsCerts,
}

/// A test CA and a server certificate for 127.0.0.1, made with openssl.
pub struct TlsCerts {
    pub dir: tempfile::TempDir,
}

impl TlsCerts {
    pub fn new() -> TlsCerts {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=mailout test CA",
        ]);
        openssl(d, &ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(d, &csr);
        std::fs::write(
            d.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext",
            ],
        );
        TlsCerts { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

const AIOSMTPD: &str = r#"
import asyncio, json, ssl, sys
from aiosmtpd.controller import Controller
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(sys.argv[1], sys.argv[2])
class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"rcpt": envelope.rcpt_tos, "tls": session.ssl is not None}), flush=True)
        return "250 2.0.0 queued"
import socket
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)
controller.start()
print("ready", port, flush=True)
import threading
threading.Event().wait()
"#;

impl Aiosmtpd {
    pub fn start() -> Aiosmtpd {
        let certs = TlsCerts::new();
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(AIOSMTPD)
            .arg(certs.path("server.pem"))
            .arg(certs.path("server.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with python3-aiosmtpd is needed for the STARTTLS test");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("aiosmtpd did not start");
        let port = ready
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .expect(&ready);
        Aiosmtpd {
            child,
            port,
            ca: certs.path("ca.pem"),
            lines,
            _front: certs,
        }
    }

    /// The next `n` messages' JSON lines.
    pub fn received(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.lines
                    .recv_timeout(Duration::from_secs(30))
                    .expect("a message")
            })
            .collect()
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
