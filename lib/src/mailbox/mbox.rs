//! The mbox family (RFC 4155 and the variants it describes), streamed:
//! writing mboxrd, and reading mboxo, mboxrd, mboxcl and mboxcl2.
//!
//! Writing: each message starts with `From MAILER-DAEMON <asctime date>`,
//! its lines end in LF (a CRLF becomes LF, as in every Unix mbox), every
//! line matching `^>*From ` gets one more `>` (mboxrd), and it ends with an
//! empty line.
//!
//! Reading, one message at a time (memory bounded by the size limit, never
//! by the file):
//! - a line is a message separator when it starts with `From `, begins the
//!   file or follows an empty line, and carries a date as a From_ line does
//!   (a time `hh:mm` and a four-digit year); any other `From ` line is body
//!   text — this is the rule for the mboxo ambiguity (unescaped `From ` in
//!   a body);
//! - a message whose header has a `Content-Length` that ends exactly at the
//!   end of the file, or before an (empty line and a) separator, is read by
//!   that length (mboxcl/mboxcl2), so `From ` lines inside it are safe;
//! - unquoting: one `>` is removed from every line matching `^>+From `
//!   (exact for mboxrd; for mboxo and mboxcl the usual reading). A message
//!   read by Content-Length that contains an unquoted `From ` line is
//!   mboxcl2 and is kept byte for byte;
//! - the empty line before a separator belongs to the separator; line
//!   endings are otherwise kept as they are, mixed or not;
//! - `Status:` and `X-Status:` fields (as mutt and Pine write them) give the
//!   flags; the message is kept as it is.

use std::io::{self, BufRead, Read, Write};

use super::ops::Flags;
use crate::mail::date;

/// The longest piece of a line handled at once; longer lines are split into
/// pieces, of which only the first is at the start of a line.
pub const PIECE: usize = 64 * 1024;

/// One piece of a line: at most [`PIECE`] bytes, ending in `\n` unless the
/// line is longer or the input ends.
pub struct Pieces<R> {
    inner: R,
    at_line_start: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> Pieces<R> {
    pub fn new(inner: R) -> Self {
        Pieces {
            inner,
            at_line_start: true,
            buf: Vec::with_capacity(256),
        }
    }

    /// The next piece and whether it starts a line; `None` at the end.
    pub fn next_piece(&mut self) -> io::Result<Option<(&[u8], bool)>> {
        self.buf.clear();
        let start = self.at_line_start;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            let room = PIECE - self.buf.len();
            let (take, done) = match memchr::memchr(b'\n', &avail[..avail.len().min(room)]) {
                Some(i) => (i + 1, true),
                None => {
                    let n = avail.len().min(room);
                    (n, self.buf.len() + n == PIECE)
                }
            };
            self.buf.extend_from_slice(&avail[..take]);
            self.inner.consume(take);
            if done {
                break;
            }
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.at_line_start = self.buf.last() == Some(&b'\n');
        Ok(Some((&self.buf, start)))
    }
}

/// `From MAILER-DAEMON Thu Nov 23 17:30:28 2026` (UTC), without the newline.
pub fn from_line(unix_seconds: i64) -> String {
    format!("From MAILER-DAEMON {}", date::asctime(unix_seconds))
}

/// Writes one message as mboxrd: From_ line, quoted LF lines, empty line.
pub fn write_message(out: &mut impl Write, from: &str, message: impl Read) -> io::Result<()> {
    out.write_all(from.as_bytes())?;
    out.write_all(b"\n")?;
    let mut pieces = Pieces::new(io::BufReader::with_capacity(PIECE, message));
    let mut ended_with_newline = true;
    while let Some((piece, start)) = pieces.next_piece()? {
        if start && needs_quoting(piece) {
            out.write_all(b">")?;
        }
        if let Some(body) = piece.strip_suffix(b"\r\n") {
            out.write_all(body)?;
            out.write_all(b"\n")?;
        } else {
            out.write_all(piece)?;
        }
        ended_with_newline = piece.ends_with(b"\n");
    }
    if !ended_with_newline {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

/// `^>*From `: what mboxrd quotes with one more `>`.
fn needs_quoting(line: &[u8]) -> bool {
    let rest = &line[line.iter().take_while(|&&b| b == b'>').count()..];
    rest.starts_with(b"From ")
}

/// Whether a line looks like a From_ line: `From `, a sender, and a date
/// with a time `hh:mm[:ss]` and a four-digit year.
pub fn is_from_line(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From ") else {
        return false;
    };
    let text = String::from_utf8_lossy(rest);
    let words: Vec<&str> = text.split_whitespace().collect();
    let time = words.iter().skip(1).any(|w| date::is_asctime_time(w));
    let year = words
        .iter()
        .skip(1)
        .any(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()));
    words.len() >= 3 && time && year
}

/// The date of a From_ line (asctime, taken as UTC), as Unix seconds.
pub fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(line.strip_prefix(b"From ")?);
    // The first word is the sender.
    let rest = text.trim_start();
    let date = rest.find(char::is_whitespace).map_or("", |i| &rest[i..]);
    date::parse_asctime(date)
}

/// One message read from an mbox.
#[derive(Debug, Default)]
pub struct MboxMessage {
    /// The message, unquoted; empty when it was larger than the limit.
    pub raw: Vec<u8>,
    /// The date of its From_ line.
    pub date: Option<i64>,
    pub flags: Flags,
    /// Larger than the limit: skipped, `raw` is empty.
    pub oversized: bool,
    /// The file ended in the middle of a line of this message.
    pub truncated: bool,
}

/// What is wrong with a file that is not an mbox at all.
#[derive(Debug, thiserror::Error)]
pub enum MboxError {
    #[error("not an mbox file: the first line does not start with \"From \"")]
    NotMbox,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads messages from an mbox one at a time.
pub struct MboxReader<R> {
    pieces: Pieces<R>,
    limit: usize,
    /// The From_ line of the next message, already read.
    next_from: Option<Vec<u8>>,
    started: bool,
}

enum Phase {
    Header,
    Body,
}

impl<R: BufRead> MboxReader<R> {
    /// `limit`: the largest message kept, in bytes.
    pub fn new(inner: R, limit: usize) -> Self {
        MboxReader {
            pieces: Pieces::new(inner),
            limit,
            next_from: None,
            started: false,
        }
    }

    /// The next message, or `None` at the end of the file.
    pub fn next_message(&mut self) -> Result<Option<MboxMessage>, MboxError> {
        if !self.started {
            self.started = true;
            // Empty lines before the first From_ line are tolerated; a
            // 0-byte file is an mbox with no messages.
            loop {
                match self.pieces.next_piece()? {
                    None => return Ok(None),
                    Some((p, _)) if is_blank(p) => continue,
                    Some((p, true)) if p.starts_with(b"From ") => {
                        self.next_from = Some(p.to_vec());
                        break;
                    }
                    Some(_) => return Err(MboxError::NotMbox),
                }
            }
        }
        let Some(from) = self.next_from.take() else {
            return Ok(None);
        };
        let mut msg = MboxMessage {
            date: from_line_date(&from),
            ..MboxMessage::default()
        };
        let mut raw: Vec<u8> = Vec::new();
        let mut size: usize = 0;
        let mut phase = Phase::Header;
        let mut prev_blank = false;
        let mut content_length: Option<usize> = None;
        let mut by_length = false;
        let mut last_newline = true;
        let limit = self.limit;
        while let Some((piece, start)) = self.pieces.next_piece()? {
            last_newline = piece.ends_with(b"\n");
            if let Phase::Header = phase {
                if start && is_blank(piece) {
                    keep(&mut raw, &mut size, limit, piece, &mut msg.oversized);
                    phase = Phase::Body;
                    prev_blank = false;
                    if let Some(n) = content_length.filter(|&n| n <= limit && !msg.oversized) {
                        let fits = self.read_by_length(n, &mut raw)?;
                        // The header and the length together (and the
                        // line read to check it) may be over the limit.
                        size = raw.len();
                        if size > limit {
                            msg.oversized = true;
                            raw = Vec::new();
                        }
                        if fits {
                            by_length = true;
                            break;
                        }
                        // Not where it said: read on line by line.
                        last_newline = raw.ends_with(b"\n");
                    }
                    continue;
                }
                if start {
                    header_field(piece, &mut content_length, &mut msg.flags);
                }
                keep(&mut raw, &mut size, limit, piece, &mut msg.oversized);
                continue;
            }
            if start && prev_blank && is_from_line(piece) {
                self.next_from = Some(piece.to_vec());
                // The empty line before the separator is not the message's.
                trim_last_blank(&mut raw);
                break;
            }
            prev_blank = start && is_blank(piece);
            keep(&mut raw, &mut size, limit, piece, &mut msg.oversized);
        }
        if self.next_from.is_none() && !by_length {
            msg.truncated = !last_newline && !raw.is_empty();
            if prev_blank {
                // The empty line that ends the last message of a file.
                trim_last_blank(&mut raw);
            }
        }
        if !msg.oversized {
            if !(by_length && has_unquoted_from(&raw)) {
                unquote(&mut raw);
            }
            msg.raw = raw;
        }
        Ok(Some(msg))
    }

    /// Reads `n` body bytes and checks that a separator or the end of the
    /// file follows. `true`: the length was right; `false`:
    /// it was not, and what was read is in `raw` (to be read on as lines).
    fn read_by_length(&mut self, n: usize, raw: &mut Vec<u8>) -> Result<bool, MboxError> {
        let mut left = n;
        while left > 0 {
            let avail = self.pieces.inner.fill_buf()?;
            if avail.is_empty() {
                return Ok(false);
            }
            let take = avail.len().min(left);
            raw.extend_from_slice(&avail[..take]);
            self.pieces.inner.consume(take);
            left -= take;
        }
        self.pieces.at_line_start = raw.last().is_none_or(|&b| b == b'\n');
        let Some((p, start)) = self.pieces.next_piece()? else {
            return Ok(true);
        };
        if start && p.starts_with(b"From ") {
            self.next_from = Some(p.to_vec());
            return Ok(true);
        }
        if start && is_blank(p) {
            let blank = p.to_vec();
            match self.pieces.next_piece()? {
                None => return Ok(true),
                Some((q, true)) if q.starts_with(b"From ") => {
                    self.next_from = Some(q.to_vec());
                    return Ok(true);
                }
                Some((q, _)) => {
                    raw.extend_from_slice(&blank);
                    raw.extend_from_slice(q);
                    return Ok(false);
                }
            }
        }
        raw.extend_from_slice(p);
        Ok(false)
    }
}

/// Appends to the message unless it has outgrown the limit; then only
/// counts, so memory stays bounded.
fn keep(raw: &mut Vec<u8>, size: &mut usize, limit: usize, bytes: &[u8], oversized: &mut bool) {
    *size += bytes.len();
    if *size > limit {
        *oversized = true;
        *raw = Vec::new();
    } else {
        raw.extend_from_slice(bytes);
    }
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

fn trim_last_blank(raw: &mut Vec<u8>) {
    if raw.ends_with(b"\r\n\r\n") || raw == b"\r\n" {
        raw.truncate(raw.len() - 2);
    } else if raw.ends_with(b"\n\n") || raw == b"\n" {
        // LF, or CRLF then LF: the last LF is the empty line.
        raw.truncate(raw.len() - 1);
    }
}

/// Reads `Content-Length`, `Status` and `X-Status` from a header line.
fn header_field(line: &[u8], content_length: &mut Option<usize>, flags: &mut Flags) {
    let Some(colon) = memchr::memchr(b':', line) else {
        return;
    };
    let name = &line[..colon];
    let value = String::from_utf8_lossy(&line[colon + 1..]);
    let value = value.trim();
    if name.eq_ignore_ascii_case(b"Content-Length") {
        *content_length = value.parse().ok();
    } else if name.eq_ignore_ascii_case(b"Status") {
        if value.contains('R') {
            *flags = flags.union(Flags::SEEN);
        }
    } else if name.eq_ignore_ascii_case(b"X-Status") {
        for (c, f) in [
            ('A', Flags::ANSWERED),
            ('F', Flags::FLAGGED),
            ('T', Flags::DRAFT),
            ('D', Flags::DELETED),
        ] {
            if value.contains(c) {
                *flags = flags.union(f);
            }
        }
    }
}

fn lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split_inclusive(|&b| b == b'\n')
}

fn has_unquoted_from(raw: &[u8]) -> bool {
    lines(raw).any(|l| l.starts_with(b"From "))
}

/// Removes one `>` from every line matching `^>+From `.
pub fn unquote(raw: &mut Vec<u8>) {
    if !lines(raw).any(is_quoted_from) {
        return;
    }
    let mut out = Vec::with_capacity(raw.len());
    for l in lines(raw) {
        if is_quoted_from(l) {
            out.extend_from_slice(&l[1..]);
        } else {
            out.extend_from_slice(l);
        }
    }
    *raw = out;
}

fn is_quoted_from(l: &[u8]) -> bool {
    l.first() == Some(&b'>') && needs_quoting(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], limit: usize) -> Vec<MboxMessage> {
        let mut r = MboxReader::new(data, limit);
        let mut out = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    fn write_all(msgs: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            write_message(&mut out, &from_line(1_700_000_000 + i as i64), *m).unwrap();
        }
        out
    }

    #[test]
    fn from_line_dates_round_trip() {
        let l = from_line(1_795_455_028);
        assert_eq!(l, "From MAILER-DAEMON Mon Nov 23 17:30:28 2026");
        assert_eq!(from_line_date(l.as_bytes()), Some(1_795_455_028));
        assert_eq!(
            from_line_date(b"From a@b.c Thu Jan  1 00:00:00 1970\n"),
            Some(0)
        );
        assert!(is_from_line(b"From a@b Sat Jan  3 01:05:34 1996\n"));
        assert!(!is_from_line(b"From now on, we meet at 10:30.\n"));
        assert!(!is_from_line(b"From the 1990s onwards\n"));
    }

    #[test]
    fn mboxrd_round_trip_keeps_from_lines() {
        let a: &[u8] = b"Subject: a\n\nFrom here\n>From there\n>>From everywhere\nend\n";
        let b: &[u8] = b"Subject: b\r\n\r\nno newline at end";
        let data = write_all(&[a, b]);
        let text = String::from_utf8_lossy(&data);
        assert!(text.contains("\n>From here\n>>From there\n>>>From everywhere\n"));
        assert!(!text.contains('\r'));
        let msgs = read_all(&data, 1 << 20);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].raw, a);
        assert_eq!(msgs[1].raw, b"Subject: b\n\nno newline at end\n");
        assert_eq!(msgs[0].date, Some(1_700_000_000));
    }

    #[test]
    fn mboxo_unescaped_from_in_body_stays_in_the_message() {
        let data = b"From x Mon Jan  1 00:00:00 2024\nSubject: one\n\nhello\n\nFrom now on, no.\n\
                     From y Mon Jan  1 00:00:00 2024\nstill one\n\n\
                     From z Tue Jan  2 10:00:00 2024\r\nSubject: two\r\n\r\nbody\r\n";
        let msgs = read_all(data, 1 << 20);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs[0]
                .raw
                .ends_with(b"From y Mon Jan  1 00:00:00 2024\nstill one\n")
        );
        assert_eq!(msgs[1].raw, b"Subject: two\r\n\r\nbody\r\n");
    }

    #[test]
    fn content_length_is_trusted_only_when_it_fits() {
        let body = "From me, in the body\n\nFrom x Mon Jan  1 00:00:00 2024\nquoted\n";
        let m1 = format!("Subject: cl2\nContent-Length: {}\n\n{body}", body.len());
        let data = format!(
            "From a Mon Jan  1 00:00:00 2024\n{m1}\nFrom b Mon Jan  1 00:00:00 2024\n\
             Subject: wrong\nContent-Length: 3\n\nlonger body\n"
        );
        let msgs = read_all(data.as_bytes(), 1 << 20);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert_eq!(msgs[0].raw, m1.as_bytes());
        assert_eq!(
            msgs[1].raw,
            b"Subject: wrong\nContent-Length: 3\n\nlonger body\n"
        );
    }

    #[test]
    fn odd_files() {
        assert!(read_all(b"", 100).is_empty());
        assert!(read_all(b"\n\n", 100).is_empty());
        assert!(matches!(
            MboxReader::new(&b"\x89PNG\r\n\x1a\n"[..], 100).next_message(),
            Err(MboxError::NotMbox)
        ));
        let msgs = read_all(b"From a Mon Jan  1 00:00:00 2024\nSubject: cut", 100);
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].truncated);
        let big = format!(
            "From a Mon Jan  1 00:00:00 2024\nSubject: big\n\n{}\n\nFrom b Mon Jan  1 00:00:00 \
             2024\nX-Status: AF\nStatus: RO\n\nsmall\n",
            "x".repeat(5000)
        );
        let msgs = read_all(big.as_bytes(), 1000);
        assert!(msgs[0].oversized && msgs[0].raw.is_empty());
        assert_eq!(msgs[1].raw, b"X-Status: AF\nStatus: RO\n\nsmall\n");
        assert_eq!(
            msgs[1].flags,
            Flags::SEEN.union(Flags::ANSWERED).union(Flags::FLAGGED)
        );
    }

    /// Found by `mbox_like_text_reads_without_panic`: a message read by
    /// its Content-Length kept the header, the length and the line after
    /// it, together over the limit, when nothing followed to count.
    #[test]
    fn content_length_cannot_take_a_message_over_the_limit() {
        let header = "Content-Length: 11\nSubject: just under the limit\n\n";
        let data = format!(
            "From a Mon Jan  1 00:00:00 2024\n{header}Status: RO\n\
             >>From x Mon Jan  1 00:00:00 2024\n"
        );
        let msgs = read_all(data.as_bytes(), header.len());
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].oversized && msgs[0].raw.is_empty(), "{msgs:?}");
        // The same with the length right: header and body are still over.
        let data = format!("From a Mon Jan  1 00:00:00 2024\n{header}Status: RO\n");
        let msgs = read_all(data.as_bytes(), header.len() + 5);
        assert!(msgs[0].oversized && msgs[0].raw.is_empty(), "{msgs:?}");
        // And under the limit, it is read as before.
        let msgs = read_all(data.as_bytes(), header.len() + 11);
        assert_eq!(msgs[0].raw, format!("{header}Status: RO\n").as_bytes());
    }

    #[test]
    fn long_lines_are_pieces() {
        let line = "a".repeat(PIECE * 2 + 10);
        let data = format!("From a Mon Jan  1 00:00:00 2024\nS: x\n\n{line}\n");
        let msgs = read_all(data.as_bytes(), 1 << 20);
        assert_eq!(msgs[0].raw, format!("S: x\n\n{line}\n").as_bytes());
    }

    /// A line of a generated message: ordinary text, or one of the lines
    /// an mbox must take care of (`From ` lines quoted or not, a From_
    /// line with a date, empty lines, status fields).
    fn line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[ -~]{0,20}",
            Just(String::new()),
            Just("From here".to_owned()),
            Just(">From there".to_owned()),
            Just(">>From x Mon Jan  1 00:00:00 2024".to_owned()),
            Just("From y Tue Jan  2 10:00:00 2024".to_owned()),
            Just("Status: RO".to_owned()),
            Just(">".to_owned()),
        ]
    }

    /// [`line`], or a Content-Length field (mboxcl) of a small length.
    fn line_or_length() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            4 => line(),
            1 => (0usize..40).prop_map(|n| format!("Content-Length: {n}")),
        ]
    }

    proptest::proptest! {
        /// Whatever the file holds, reading it ends without a panic, and
        /// no message kept is over the limit.
        #[test]
        fn any_bytes_read_without_panic(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            limit in 0usize..512,
        ) {
            let mut r = MboxReader::new(&data[..], limit);
            while let Ok(Some(m)) = r.next_message() {
                proptest::prop_assert!(m.raw.len() <= limit || m.raw.is_empty());
            }
        }

        /// Any text made of those lines, with `From ` lines at the start
        /// of the file and after empty lines, reads without a panic.
        #[test]
        fn mbox_like_text_reads_without_panic(
            lines in proptest::collection::vec(line_or_length(), 0..40),
            limit in 0usize..200,
        ) {
            let data = format!("From a Mon Jan  1 00:00:00 2024\n{}", lines.join("\n"));
            let mut r = MboxReader::new(data.as_bytes(), limit);
            let mut n = 0;
            while let Some(m) = r.next_message().unwrap() {
                n += 1;
                proptest::prop_assert!(n <= lines.len() + 1);
                proptest::prop_assert!(m.raw.len() <= limit, "{} > {limit}", m.raw.len());
            }
        }

        /// What the writer writes, the reader gives back byte for byte:
        /// messages with LF line endings and a final newline (the writer
        /// makes every message so), and without a Content-Length field.
        #[test]
        fn written_messages_read_back(
            messages in proptest::collection::vec(
                (proptest::collection::vec(line(), 0..8), proptest::collection::vec(line(), 0..12)),
                1..5,
            ),
        ) {
            let raws: Vec<Vec<u8>> = messages
                .iter()
                .map(|(header, body)| {
                    let header: Vec<&String> =
                        header.iter().filter(|l| !l.is_empty()).collect();
                    let mut m = String::new();
                    for l in header {
                        m.push_str(l);
                        m.push('\n');
                    }
                    m.push('\n');
                    for l in body {
                        m.push_str(l);
                        m.push('\n');
                    }
                    m.into_bytes()
                })
                .collect();
            let refs: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
            let data = write_all(&refs);
            let back: Vec<Vec<u8>> = read_all(&data, 1 << 20).into_iter().map(|m| m.raw).collect();
            proptest::prop_assert_eq!(back, raws);
        }
    }
}
