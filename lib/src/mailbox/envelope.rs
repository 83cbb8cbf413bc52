//! What a mailbox keeps beside the raw message, for listing and search:
//! the decoded From, To (and Cc), Subject, Message-ID and Date header
//! fields (RFC 5322 section 3.6, encoded words per RFC 2047) and the text
//! of the body (the text/plain parts of the MIME tree, RFC 2045/2046, or
//! text/html with the tags removed when there is no plain text).
//!
//! Parsing never fails a delivery: whatever cannot be read is left empty.

use mailparse::{DispositionType, MailHeaderMap, ParsedMail};

use crate::mail::date;

/// Most body text indexed for one message, in bytes.
pub const MAX_BODY_TEXT: usize = 1 << 20;
/// Most bytes kept of one header field.
const MAX_FIELD: usize = 4096;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    /// To and Cc, joined with ", ".
    pub to: String,
    pub subject: String,
    pub message_id: String,
    /// The Date field as Unix seconds, when it is readable.
    pub date: Option<i64>,
    /// Text of the body for the full-text index.
    pub body_text: String,
}

/// Reads the envelope fields and body text of a raw RFC 5322 message.
pub fn parse(raw: &[u8]) -> Envelope {
    let Ok(mail) = mailparse::parse_mail(raw) else {
        return headers_only(raw);
    };
    let headers = mail.get_headers();
    let field = |name: &str| {
        headers
            .get_all_values(name)
            .into_iter()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
    };
    let mut to = field("To");
    to.extend(field("Cc"));
    let mut body_text = String::new();
    collect_text(&mail, &mut body_text, false);
    if body_text.trim().is_empty() {
        collect_text(&mail, &mut body_text, true);
    }
    truncate(&mut body_text, MAX_BODY_TEXT);
    Envelope {
        from: clip(field("From").join(", ")),
        to: clip(to.join(", ")),
        subject: clip(field("Subject").into_iter().next().unwrap_or_default()),
        message_id: clip(field("Message-ID").into_iter().next().unwrap_or_default()),
        date: field("Date").first().and_then(|d| date::parse_rfc5322(d)),
        body_text,
    }
}

/// When the MIME structure cannot be read, the header fields may still be.
fn headers_only(raw: &[u8]) -> Envelope {
    let Ok((headers, _)) = mailparse::parse_headers(raw) else {
        return Envelope::default();
    };
    let first = |name: &str| clip(headers.get_first_value(name).unwrap_or_default());
    Envelope {
        from: first("From"),
        to: first("To"),
        subject: first("Subject"),
        message_id: first("Message-ID"),
        date: headers
            .get_first_value("Date")
            .and_then(|d| date::parse_rfc5322(&d)),
        body_text: String::new(),
    }
}

/// Appends the text of every inline text/plain part (or, with `html`, every
/// inline text/html part with its markup removed).
fn collect_text(part: &ParsedMail<'_>, out: &mut String, html: bool) {
    if out.len() >= MAX_BODY_TEXT {
        return;
    }
    if !part.subparts.is_empty() {
        for sub in &part.subparts {
            collect_text(sub, out, html);
        }
        return;
    }
    if part.get_content_disposition().disposition == DispositionType::Attachment {
        return;
    }
    let wanted = if html { "text/html" } else { "text/plain" };
    if !part.ctype.mimetype.eq_ignore_ascii_case(wanted) {
        return;
    }
    // Without a declared charset, 8-bit text that is valid UTF-8 is taken
    // as UTF-8 (RFC 6532 practice) rather than mangled as US-ASCII.
    let undeclared_utf8 = if part.ctype.params.contains_key("charset") {
        None
    } else {
        part.get_body_raw()
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let Some(body) = undeclared_utf8.or_else(|| part.get_body().ok()) else {
        return;
    };
    if !out.is_empty() {
        out.push('\n');
    }
    if html {
        out.push_str(&strip_html(&body));
    } else {
        out.push_str(&body);
    }
}

/// Text of an HTML document, good enough for a search index: tags, comments,
/// scripts and styles removed, the common character references decoded.
pub fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
        } else if rest.starts_with("<script") || rest.starts_with("<style") {
            let close = if rest.starts_with("<script") {
                "</script"
            } else {
                "</style"
            };
            let end = rest.find(close).map_or(rest.len(), |e| e + close.len());
            i += end;
            i += lower[i..].find('>').map_or(lower.len() - i, |e| e + 1);
            out.push(' ');
        } else if rest.starts_with('<') {
            i += rest.find('>').map_or(rest.len(), |e| e + 1);
            out.push(' ');
        } else if rest.starts_with('&') {
            let entities = [
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
                ("&#39;", '\''),
                ("&apos;", '\''),
                ("&nbsp;", ' '),
            ];
            match entities.iter().find(|(e, _)| rest.starts_with(e)) {
                Some((e, c)) => {
                    out.push(*c);
                    i += e.len();
                }
                None => {
                    out.push('&');
                    i += 1;
                }
            }
        } else {
            let next = rest.find(['<', '&']).unwrap_or(rest.len());
            out.push_str(&html[i..i + next]);
            i += next;
        }
    }
    out
}

fn clip(mut s: String) -> String {
    truncate(&mut s, MAX_FIELD);
    s
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message() {
        let e = parse(
            b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nCc: carol@example.net\r\n\
              Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from Berlin\r\nMessage-ID: <1@x>\r\n\
              Date: Mon, 23 Nov 2026 16:49:19 +0000\r\n\r\nHello Bob,\r\nsee you.\r\n",
        );
        assert_eq!(e.from, "Alice <alice@example.org>");
        assert_eq!(e.to, "bob@example.net, carol@example.net");
        assert_eq!(e.subject, "Grüße from Berlin");
        assert_eq!(e.message_id, "<1@x>");
        assert_eq!(e.date, Some(1_795_452_559));
        assert!(e.body_text.contains("see you."));
    }

    #[test]
    fn a_date_field_without_a_date_is_no_date() {
        for junk in ["garbage", "", "  ", "12345"] {
            let e = parse(format!("Date: {junk}\nSubject: x\n\nbody\n").as_bytes());
            assert_eq!(e.date, None, "{junk:?}");
        }
    }

    #[test]
    fn undeclared_8bit_utf8() {
        let e = parse("Subject: Café\n\nMeet at the café\n".as_bytes());
        assert_eq!(e.subject, "Café");
        assert!(e.body_text.contains("café"), "{:?}", e.body_text);
        let e = parse(b"Content-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9\n");
        assert!(e.body_text.contains("café"), "{:?}", e.body_text);
    }

    #[test]
    fn multipart_prefers_plain_text_and_skips_attachments() {
        let raw = b"From: a@b\nSubject: mp\nMIME-Version: 1.0\n\
            Content-Type: multipart/mixed; boundary=XX\n\n--XX\n\
            Content-Type: multipart/alternative; boundary=YY\n\n--YY\n\
            Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n\
            cGxhaW4gd29yZHM=\n--YY\nContent-Type: text/html\n\n<p>html words</p>\n--YY--\n\
            --XX\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\n\
            attached words\n--XX--\n";
        let e = parse(raw);
        assert!(e.body_text.contains("plain words"), "{:?}", e.body_text);
        assert!(!e.body_text.contains("html words"));
        assert!(!e.body_text.contains("attached words"));
    }

    #[test]
    fn html_only_is_stripped() {
        let raw = b"Subject: h\nContent-Type: text/html\n\n<html><style>p{color:red}</style>\
            <script>var secret=1;</script><p>Fish &amp; chips<!-- hidden --></p></html>\n";
        let e = parse(raw);
        assert!(e.body_text.contains("Fish & chips"), "{:?}", e.body_text);
        assert!(!e.body_text.contains("color") && !e.body_text.contains("secret"));
        assert!(!e.body_text.contains("hidden") && !e.body_text.contains('<'));
    }

    #[test]
    fn garbage_gives_empty_fields_not_a_panic() {
        let e = parse(b"\xff\xfe not a message at all");
        assert_eq!(e.subject, "");
        let e = parse(b"");
        assert_eq!(e, Envelope::default());
        assert_eq!(strip_html("<a href=\"x"), " ");
        assert_eq!(strip_html("a &unknown; b"), "a &unknown; b");
    }
}
