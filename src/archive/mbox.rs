//! mbox files: splitting them into messages (mboxo and mboxrd: a `From ` line starts each
//! message, `>From ` quoting is undone) and writing them (mboxrd), so that every message's
//! raw bytes come back exactly as they went in.
//!
//! mbox needs every message to end with a line break before the blank separator line. A
//! message that does not is written with one added and the envelope sender
//! `mailout-no-final-newline`, and this reader takes the added line break off again; other
//! readers just see one more line break.

use std::io::{self, BufRead, Write};

/// Envelope sender marking a message whose raw bytes have no final line break.
const NO_FINAL_NEWLINE: &str = "mailout-no-final-newline";

/// One message from an mbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// The `From ` line, without its line break.
    pub envelope: String,
    /// The message, unquoted.
    pub raw: Vec<u8>,
}

/// Splits an mbox into messages. Text before the first `From ` line is not a message and
/// is skipped (see [`MboxReader::preamble`]).
pub struct MboxReader<R> {
    reader: R,
    pending: Option<String>,
    line: Vec<u8>,
    /// Bytes before the first `From ` line.
    pub preamble: usize,
    started: bool,
}

impl<R: BufRead> MboxReader<R> {
    /// Reads from `reader`.
    pub fn new(reader: R) -> MboxReader<R> {
        MboxReader {
            reader,
            pending: None,
            line: Vec::with_capacity(256),
            preamble: 0,
            started: false,
        }
    }
}

fn is_from_line(line: &[u8]) -> bool {
    line.starts_with(b"From ")
}

/// Whether `line` is `>From `, `>>From `… (quoted by mboxo or mboxrd writers).
fn is_quoted_from(line: &[u8]) -> bool {
    let quotes = line.iter().take_while(|b| **b == b'>').count();
    quotes > 0 && line[quotes..].starts_with(b"From ")
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = io::Result<MboxMessage>;

    fn next(&mut self) -> Option<io::Result<MboxMessage>> {
        // Find the first envelope line.
        while !self.started {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => return None,
                Ok(_) if is_from_line(&self.line) => {
                    self.started = true;
                    self.pending = Some(envelope(&self.line));
                }
                Ok(n) => self.preamble += n,
                Err(e) => return Some(Err(e)),
            }
        }
        let envelope = self.pending.take()?;
        let mut raw = Vec::with_capacity(4096);
        loop {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => break,
                Ok(_) if is_from_line(&self.line) && ends_blank(&raw) => {
                    self.pending = Some(self::envelope(&self.line));
                    break;
                }
                Ok(_) if is_quoted_from(&self.line) => raw.extend_from_slice(&self.line[1..]),
                Ok(_) => raw.extend_from_slice(&self.line),
                Err(e) => return Some(Err(e)),
            }
        }
        // The blank separator line is not part of the message.
        if raw == b"\n" || raw == b"\r\n" {
            raw.clear();
        } else if raw.ends_with(b"\r\n\r\n") {
            raw.truncate(raw.len() - 2);
        } else if raw.ends_with(b"\n\n") {
            raw.truncate(raw.len() - 1);
        }
        if envelope.split_whitespace().nth(1) == Some(NO_FINAL_NEWLINE) && raw.ends_with(b"\n") {
            raw.truncate(raw.len() - 1);
        }
        Some(Ok(MboxMessage { envelope, raw }))
    }
}

/// Whether `raw` is empty or ends with a blank line: only then does a `From ` line start a
/// new message (a `From ` line inside an mboxo message that its writer did not quote is
/// kept as text, unless it follows a blank line).
fn ends_blank(raw: &[u8]) -> bool {
    raw.is_empty()
        || raw == b"\n"
        || raw == b"\r\n"
        || raw.ends_with(b"\n\n")
        || raw.ends_with(b"\n\r\n")
}

fn envelope(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

/// Writes messages as mboxrd.
pub struct MboxWriter<W> {
    out: W,
}

impl<W: Write> MboxWriter<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> MboxWriter<W> {
        MboxWriter { out }
    }

    /// Appends `raw`, with envelope sender `from` and `asctime` date (`Mon Jan  1 00:00:00
    /// 2024`).
    pub fn write(&mut self, from: &str, asctime: &str, raw: &[u8]) -> io::Result<()> {
        let complete = raw.is_empty() || raw.ends_with(b"\n");
        let from = if complete { from } else { NO_FINAL_NEWLINE };
        let from: String = from
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .collect();
        let from = if from.is_empty() {
            "MAILER-DAEMON".into()
        } else {
            from
        };
        writeln!(self.out, "From {from} {asctime}")?;
        let mut rest = raw;
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            let line = &rest[..end];
            if is_from_line(line) || is_quoted_from(line) {
                self.out.write_all(b">")?;
            }
            self.out.write_all(line)?;
            rest = &rest[end..];
        }
        // A message must end with a line break (the reader takes this one off again).
        if !complete {
            self.out.write_all(b"\n")?;
        }
        // The separator matches the last line ending, so the reader can take it off exactly.
        let ends_crlf = raw.ends_with(b"\r\n") || (!complete && raw.ends_with(b"\r"));
        self.out.write_all(if ends_crlf { b"\r\n" } else { b"\n" })
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut w = MboxWriter::new(Vec::new());
        for m in messages {
            w.write("a@b.example", "Mon Jan  1 00:00:00 2024", m)
                .unwrap();
        }
        let bytes = w.finish().unwrap();
        MboxReader::new(&bytes[..])
            .map(|m| m.unwrap().raw)
            .collect()
    }

    #[test]
    fn raw_bytes_survive_a_round_trip() {
        let messages: Vec<&[u8]> = vec![
            b"Subject: a\n\nFrom here on\n>From quoted\n>>From twice\n",
            b"Subject: crlf\r\n\r\nbody\r\nFrom x\r\n",
            b"Subject: no final newline\n\nlast line",
            b"Subject: ends blank\n\nbody\n\n",
            b"From the very first line\nSubject: x\n\ny\n",
            b"",
            b" \r",
            b"a\r\n\r",
            b"\n",
            b"\r\n",
            b"x\n\r\n",
        ];
        assert_eq!(round_trip(&messages), messages);
    }

    #[test]
    fn reads_mboxo_and_skips_a_preamble() {
        let mbox = b"junk before\nFrom a@b Mon Jan  1 00:00:00 2024\nSubject: 1\n\n>From quoted\n\nFrom c@d Tue Jan  2 00:00:00 2024\nSubject: 2\n\nbody\n";
        let mut reader = MboxReader::new(&mbox[..]);
        let messages: Vec<MboxMessage> = reader.by_ref().map(|m| m.unwrap()).collect();
        assert_eq!(reader.preamble, 12);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].raw, b"Subject: 1\n\nFrom quoted\n");
        assert_eq!(messages[0].envelope, "From a@b Mon Jan  1 00:00:00 2024");
        assert_eq!(messages[1].raw, b"Subject: 2\n\nbody\n");
    }

    #[test]
    fn an_unquoted_from_line_mid_paragraph_stays_in_the_message() {
        let mbox = b"From a@b x\nSubject: 1\n\nline\nFrom inside a paragraph\n\nFrom c@d y\nSubject: 2\n\n";
        let messages: Vec<Vec<u8>> = MboxReader::new(&mbox[..]).map(|m| m.unwrap().raw).collect();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0],
            b"Subject: 1\n\nline\nFrom inside a paragraph\n"
        );
    }
}
