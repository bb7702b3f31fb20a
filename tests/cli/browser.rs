//! Headless Chromium driven over its DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! JSON messages ending in NUL, commands on descriptor 3, answers and events on 4), so a
//! test can open a page, click what a person would click and read what they would see,
//! with no WebSocket client and no script of our own in the page.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

/// The browser the tests drive.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one step may take before the test fails (a page load, a command).
const STEP: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: Receiver<Value>,
    next: u64,
    session: String,
    /// Events received while waiting for a command's answer, oldest first.
    events: Vec<Value>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium with a profile in `profile` and opens one tab.
    pub fn start(profile: &Path) -> Browser {
        let (chrome_reads, to) = std::io::pipe().unwrap();
        let (from_pipe, chrome_writes) = std::io::pipe().unwrap();
        let (r, w) = (chrome_reads.as_raw_fd(), chrome_writes.as_raw_fd());
        let mut command = Command::new(CHROMIUM);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--window-size=900,1000",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: dup2 is async-signal-safe; only descriptors are touched before exec.
        unsafe {
            command.pre_exec(move || {
                // Out of the way first (either may already be 3 or 4), then into place;
                // dup2 leaves the copies open across exec.
                let r = libc::fcntl(r, libc::F_DUPFD, 10);
                let w = libc::fcntl(w, libc::F_DUPFD, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        drop(chrome_reads);
        drop(chrome_writes);
        let (send, from) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_pipe);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        message.pop();
                        if let Ok(v) = serde_json::from_slice::<Value>(&message)
                            && send.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            events: Vec::new(),
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}), false);
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
            false,
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.call("Page.enable", json!({}), true);
        browser.call("Runtime.enable", json!({}), true);
        browser
    }

    /// Sends `method` (to the tab when `in_tab`) and returns its result.
    fn call(&mut self, method: &str, params: Value, in_tab: bool) -> Value {
        self.next += 1;
        let id = self.next;
        let mut message = json!({"id": id, "method": method, "params": params});
        if in_tab {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let v = self
                .from
                .recv_timeout(STEP)
                .unwrap_or_else(|_| panic!("no answer from chromium to {method}"));
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Waits for the tab's next `name` event after the last [`Browser::forget_events`].
    fn wait_for(&mut self, name: &str) {
        if let Some(i) = self.events.iter().position(|e| e["method"] == name) {
            self.events.drain(..=i);
            return;
        }
        loop {
            let v = self
                .from
                .recv_timeout(STEP)
                .unwrap_or_else(|_| panic!("chromium sent no {name}"));
            if v["method"] == name {
                return;
            }
        }
    }

    fn forget_events(&mut self) {
        self.events.clear();
        while self.from.try_recv().is_ok() {}
    }

    /// Opens `url` and waits for it to load.
    pub fn open(&mut self, url: &str) {
        self.forget_events();
        self.call("Page.navigate", json!({"url": url}), true);
        self.wait_for("Page.loadEventFired");
    }

    /// The value of JavaScript `expression` in the page.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
            true,
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Runs `expression` (a click that submits a form) and waits for the next page.
    pub fn submit(&mut self, expression: &str) {
        self.forget_events();
        self.eval(expression);
        self.wait_for("Page.loadEventFired");
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// A PNG of the page as shown.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}), true);
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }
}

/// A headless Chromium screenshot, decoded.
pub struct Shot {
    pub width: u32,
    pub height: u32,
    channels: usize,
    pixels: Vec<u8>,
}

impl Shot {
    /// Takes a screenshot of `url` in a window of `window` ("W,H") into `file` (profile in
    /// `profile`) and decodes it; fails the test when Chromium makes none.
    pub fn take(url: &str, window: &str, file: &Path, profile: &Path) -> Shot {
        let run = Command::new("timeout")
            .arg("120")
            .arg(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!("--window-size={window}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--screenshot={}", file.display()))
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            run.status.success() && file.is_file(),
            "chromium made no screenshot ({}):\n{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(file).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let channels = info.color_type.samples();
        assert!(
            channels >= 3 && info.bit_depth == png::BitDepth::Eight,
            "{info:?}"
        );
        pixels.truncate(info.buffer_size());
        Shot {
            width: info.width,
            height: info.height,
            channels,
            pixels,
        }
    }

    /// How many pixels there are.
    pub fn total(&self) -> usize {
        (self.width * self.height) as usize
    }

    /// How many pixels are within 8 of colour `wanted` in each channel.
    pub fn count(&self, wanted: [u8; 3]) -> usize {
        self.pixels
            .chunks(self.channels)
            .filter(|p| (0..3).all(|i| p[i].abs_diff(wanted[i]) <= 8))
            .count()
    }
}
