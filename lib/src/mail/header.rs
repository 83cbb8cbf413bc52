//! The header section of a message as bytes (RFC 5322 section 2.2):
//! where it ends and its fields one by one, each with its folded
//! continuation lines, so a stage can keep, drop or move a field without
//! changing a byte of it.

/// The line ending the message uses (its first line's), so added lines
/// match it.
pub fn eol(msg: &[u8]) -> &'static str {
    match memchr::memchr(b'\n', msg) {
        Some(i) if i > 0 && msg[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// The end of the header section of `msg`: the offset just past its last
/// header line, before the empty line that ends it. A message without
/// that empty line (a body line right after the fields, or no body at
/// all) ends its header section at the first line that is neither a field
/// nor a continuation, or at its end.
pub fn header_end(msg: &[u8]) -> usize {
    let mut pos = 0;
    while pos < msg.len() {
        let end = line_end(msg, pos);
        let line = trim_eol(&msg[pos..end]);
        let field = if line.is_empty() {
            false
        } else if line[0] == b' ' || line[0] == b'\t' {
            pos > 0
        } else {
            is_field(line)
        };
        if !field {
            return pos;
        }
        pos = end;
    }
    msg.len()
}

/// Where the body of `msg` starts: after the empty line that ends the
/// header section, or right at the end of the fields when there is none.
pub fn body_start(msg: &[u8]) -> usize {
    let end = header_end(msg);
    match &msg[end..] {
        [b'\r', b'\n', ..] => end + 2,
        [b'\n', ..] => end + 1,
        _ => end,
    }
}

/// One header field: its name and every byte of it, continuation lines
/// and the final line end included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub raw: &'a [u8],
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value after the colon, unfolded (line ends dropped), trimmed.
    pub fn value(&self) -> String {
        let colon = memchr::memchr(b':', self.raw).map_or(self.raw.len(), |c| c + 1);
        let after = &self.raw[colon..];
        let mut out = Vec::with_capacity(after.len());
        for line in after.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(trim_eol(line));
        }
        String::from_utf8_lossy(out.trim_ascii()).into_owned()
    }
}

/// The fields of the header section `headers` (as [`header_end`] cuts
/// it), in order.
pub fn fields(headers: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= headers.len() {
            return None;
        }
        let start = pos;
        pos = line_end(headers, pos);
        while pos < headers.len() && matches!(headers[pos], b' ' | b'\t') {
            pos = line_end(headers, pos);
        }
        let raw = &headers[start..pos];
        let colon = memchr::memchr(b':', raw).unwrap_or(0);
        Some(Field {
            name: raw[..colon].trim_ascii_end(),
            raw,
        })
    })
}

/// `name:` with a name of printable ASCII (RFC 5322 section 3.6.8).
fn is_field(line: &[u8]) -> bool {
    match memchr::memchr(b':', line) {
        Some(colon) if colon > 0 => line[..colon].iter().all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

fn line_end(msg: &[u8], pos: usize) -> usize {
    memchr::memchr(b'\n', &msg[pos..]).map_or(msg.len(), |i| pos + i + 1)
}

pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_ends_at_the_empty_line_or_the_first_non_field() {
        assert_eq!(header_end(b"A: 1\nB: 2\n\nbody\n"), 10);
        assert_eq!(header_end(b"A: 1\r\n folded\r\n\r\nbody"), 15);
        assert_eq!(header_end(b"A: 1\nB: 2\nbody line\nmore\n"), 10);
        assert_eq!(header_end(b"A: 1\nB: 2"), 9);
        assert_eq!(header_end(b"not a header\n\nx"), 0);
        assert_eq!(header_end(b" continuation first\n"), 0);
        assert_eq!(header_end(b""), 0);
        assert_eq!(body_start(b"A: 1\r\n\r\nbody"), 8);
        assert_eq!(body_start(b"A: 1\nbody line\n"), 5);
        assert_eq!(body_start(b"A: 1"), 4);
    }

    #[test]
    fn fields_keep_their_folding_and_line_ends() {
        let h = b"Subject: one\r\n two\r\nContent-Type : text/plain;\n\tcharset=x\nX: y";
        let f: Vec<Field> = fields(h).collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].raw, b"Subject: one\r\n two\r\n");
        assert!(f[1].is("content-type"));
        assert_eq!(f[1].value(), "text/plain;\tcharset=x");
        assert_eq!(f[2].raw, b"X: y");
        assert_eq!(f.iter().map(|f| f.raw.len()).sum::<usize>(), h.len());
    }
}
