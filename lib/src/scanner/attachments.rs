//! Executable attachments (issue 12, rule 1): walk the MIME tree of an
//! RFC 5322 message (RFC 2045/2046 multiparts, RFC 2183 dispositions,
//! RFC 2231 and RFC 2047 encoded names), decode each leaf part, and say
//! which parts would run code on a click. Pure: bytes in, findings out.
//!
//! The rules, each a [`Reason`]:
//! 1. **Extension** — the part's name (Content-Disposition `filename`,
//!    Content-Type `name`; both checked when they differ) ends in one of
//!    [`EXTENSIONS`]. The extension is what follows the last dot after
//!    trailing dots and blanks are dropped (Windows drops them too:
//!    `a.exe.` saves as `a.exe`) and after any `/` or `\` path. So
//!    `setup.exe.txt` is text and not flagged; `x.pdf.exe` is.
//! 2. **Double extension** — an executable extension right after a
//!    document or media one (`invoice.pdf.exe`, `scan.jpg   .scr`): the
//!    decoy is what the recipient sees; reported instead of rule 1.
//! 3. **Bidi control** — the name holds a right-to-left or isolate
//!    control (U+202A–202E, U+2066–2069, U+200E, U+200F, U+061C), which
//!    lets `exe.pdf` display what is really `fdp.exe`; whatever the
//!    extension.
//! 4. **Magic** — the decoded content is an executable format whatever
//!    its name or type: PE (`MZ` pointing at `PE\0\0`), ELF, Mach-O, a
//!    Mach-O universal binary or Java class (`CAFEBABE`, the same bytes),
//!    a `#!/` script, a Windows shortcut, an OLE document with a VBA
//!    project, an ISO 9660/UDF, VHD/VHDX or DMG disk image. A `#!` line
//!    counts only in attachments, not in the message's own text.
//! 5. **Archives** — a ZIP (by `PK\x03\x04`, whatever the name) is
//!    listed one level deep: each entry's name goes through rules 1–3
//!    and its first [`Limits::zip_peek`] bytes through rule 4, reported
//!    as [`Reason::InArchive`]. Nested archives are not opened (their
//!    names are still checked). Any encrypted entry adds one
//!    [`Reason::EncryptedArchive`], a kind of its own so the caller can
//!    choose. Too many entries, an entry inflating past
//!    [`Limits::zip_max_ratio`], or a total past [`Limits::zip_max_total`]
//!    (sizes as the archive declares them; an understated size costs
//!    nothing, as no more than the peek is ever inflated) is a
//!    [`Reason::ZipBomb`], and the archive is not read further.
//! 6. **Embedded messages** — a `message/rfc822` part is walked as a
//!    message of its own, up to [`Limits::max_depth`] levels.
//!
//! Not flagged: a name mentioned in text, a part whose final extension
//! is harmless (`setup.exe.txt`, `report.pdf`, `archive.tar.gz`), text
//! that starts with `MZ` or `#!` in the body. A message or archive that
//! cannot be read sets [`Scan::malformed`]: the caller should refuse it
//! rather than pass what was not seen.

use std::borrow::Cow;

use mailparse::ParsedMail;
use mailparse::body::Body;

use crate::mail::text;

mod archive;
mod extensions;
mod magic;
#[cfg(test)]
mod tests;

pub use extensions::{EXTENSIONS, family};

/// How far one scan goes. The ZIP limits bound work and memory per
/// archive: nothing is inflated beyond the peeks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `message/rfc822` parts walked inside one another.
    pub max_depth: usize,
    /// More entries than this in one archive is a bomb.
    pub zip_max_entries: usize,
    /// Declared uncompressed bytes of all entries of one archive.
    pub zip_max_total: u64,
    /// Uncompressed to compressed size of one entry, over
    /// [`Limits::zip_ratio_floor`] bytes.
    pub zip_max_ratio: u64,
    /// Entries smaller than this are not judged by their ratio.
    pub zip_ratio_floor: u64,
    /// Bytes inflated from the start of each entry to check its magic.
    pub zip_peek: usize,
    /// Bytes inflated in all from the entries of one archive.
    pub zip_read_budget: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 4,
            zip_max_entries: 10_000,
            zip_max_total: 1 << 30,
            zip_max_ratio: 100,
            zip_ratio_floor: 1 << 20,
            zip_peek: 4096,
            zip_read_budget: 16 << 20,
        }
    }
}

/// Why a part is taken for executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The name ends in this extension (lower case, no dot) of [`EXTENSIONS`].
    Extension(String),
    /// A decoy extension before this executable one.
    DoubleExtension(String),
    /// A bidirectional text control in the name.
    BidiControl,
    /// The content is this executable format, whatever its name.
    Magic(&'static str),
    /// An entry of a ZIP attachment, for this reason.
    InArchive { entry: String, reason: Box<Reason> },
    /// A ZIP that would inflate out of proportion; not read further.
    ZipBomb(String),
    /// A ZIP with at least one encrypted entry (content unseen).
    EncryptedArchive,
}

/// One finding: which part, its name, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The part's index in walk order (depth first, the message itself 0).
    pub part: usize,
    /// The part's file name, if it has one.
    pub name: Option<String>,
    pub reason: Reason,
}

/// What [`scan`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub findings: Vec<Finding>,
    /// MIME parts walked, multiparts and embedded messages included.
    pub parts: usize,
    /// Something could not be read: the MIME structure (nesting too deep),
    /// or an archive. What could be read was checked.
    pub malformed: bool,
}

/// Longest attachment or entry name written into a reply.
const NAME_IN_REPLY: usize = 80;

impl Finding {
    /// One line for a 5.7.1 reply: ASCII, names cleaned and cut.
    pub fn describe(&self) -> String {
        let what = match &self.name {
            Some(name) => format!("attachment \"{}\"", for_reply(name)),
            None => format!("part {}", self.part),
        };
        format!("{what}: {}", self.reason.describe())
    }
}

impl Reason {
    fn describe(&self) -> String {
        match self {
            Reason::Extension(ext) => {
                let what = family(ext).unwrap_or("blocked type");
                format!(".{ext} is {} {what}", article(what))
            }
            Reason::DoubleExtension(ext) => format!(
                "double extension hides a .{ext} ({})",
                family(ext).unwrap_or("blocked type")
            ),
            Reason::BidiControl => "name holds bidirectional text controls".to_string(),
            Reason::Magic(kind) => format!("content is executable: {kind}"),
            Reason::InArchive { entry, reason } => {
                format!(
                    "archive entry \"{}\": {}",
                    for_reply(entry),
                    reason.describe()
                )
            }
            Reason::ZipBomb(why) => format!("archive bomb: {why}"),
            Reason::EncryptedArchive => "encrypted archive, content unseen".to_string(),
        }
    }
}

/// "a" or "an" before `word` (the families' names are plain English).
fn article(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// A name from outside as it may appear in a reply: ASCII printable only
/// (bidi controls and other invisibles become `?`), cut to 80 bytes.
fn for_reply(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    text::bounded(&ascii, NAME_IN_REPLY)
}

/// The findings in `message` (RFC 5322 bytes), within `limits`.
pub fn scan(message: &[u8], limits: &Limits) -> Scan {
    let mut scan = Scan::default();
    walk_message(message, limits, 0, &mut scan);
    scan
}

fn walk_message(raw: &[u8], limits: &Limits, depth: usize, scan: &mut Scan) {
    match mailparse::parse_mail(raw) {
        Ok(mail) => walk_part(&mail, limits, depth, scan),
        Err(_) => {
            scan.parts += 1;
            scan.malformed = true;
        }
    }
}

fn walk_part(part: &ParsedMail, limits: &Limits, depth: usize, scan: &mut Scan) {
    let index = scan.parts;
    scan.parts += 1;
    if !part.subparts.is_empty() {
        for sub in &part.subparts {
            walk_part(sub, limits, depth, scan);
        }
        return;
    }
    let names = part_names(part);
    let primary = names.first().cloned();
    let mut reasons = Vec::new();
    for name in &names {
        for reason in name_reasons(name) {
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
    }
    let mimetype = part.ctype.mimetype.as_str();
    let attachment = !names.is_empty()
        || !mimetype.starts_with("text/")
        || part.get_content_disposition().disposition == mailparse::DispositionType::Attachment;
    let body = decoded_body(part);
    let embedded = mimetype == "message/rfc822" || mimetype == "message/global";
    if embedded {
        if depth < limits.max_depth {
            walk_message(&body, limits, depth + 1, scan);
        } else {
            // Deeper than allowed: unseen, so not passed as clean.
            scan.malformed = true;
        }
    } else {
        if let Some(kind) = magic::executable(&body, attachment) {
            reasons.push(Reason::Magic(kind));
        }
        if archive::is_zip(&body) {
            let contents = archive::scan(&body, limits);
            scan.malformed |= contents.unreadable;
            reasons.extend(contents.reasons);
        }
    }
    drop(body);
    scan.findings
        .extend(reasons.into_iter().map(|reason| Finding {
            part: index,
            name: primary.clone(),
            reason,
        }));
}

/// The part's names, Content-Disposition `filename` first; mailparse has
/// joined RFC 2231 continuations and decoded RFC 2047 words.
fn part_names(part: &ParsedMail) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let disposition = part.get_content_disposition();
    for name in [
        disposition.params.get("filename"),
        part.ctype.params.get("name"),
    ]
    .into_iter()
    .flatten()
    {
        if !name.is_empty() && !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The part's content with its transfer encoding undone. Base64 is
/// decoded leniently (anything outside the alphabet skipped), as mail
/// clients do, so a stray character cannot hide a part from the scan.
fn decoded_body<'a>(part: &'a ParsedMail<'a>) -> Cow<'a, [u8]> {
    match part.get_body_encoded() {
        Body::Base64(body) => Cow::Owned(base64_lenient(body.get_raw())),
        Body::QuotedPrintable(body) => match body.get_decoded() {
            Ok(bytes) => Cow::Owned(bytes),
            Err(_) => Cow::Borrowed(body.get_raw()),
        },
        Body::SevenBit(body) | Body::EightBit(body) => Cow::Borrowed(body.get_raw()),
        Body::Binary(body) => Cow::Borrowed(body.get_raw()),
    }
}

fn base64_lenient(encoded: &[u8]) -> Vec<u8> {
    const INVALID: u8 = 0xFF;
    const TABLE: [u8; 256] = {
        let mut table = [INVALID; 256];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut i = 0;
        while i < 64 {
            table[alphabet[i] as usize] = i as u8;
            i += 1;
        }
        table
    };
    let mut out = Vec::with_capacity(encoded.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &byte in encoded {
        if byte == b'=' {
            break;
        }
        let value = TABLE[usize::from(byte)];
        if value == INVALID {
            continue;
        }
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Rules 1–3 for one name (a part's or an archive entry's).
fn name_reasons(name: &str) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if name.chars().any(is_bidi_control) {
        reasons.push(Reason::BidiControl);
    }
    // The last path component, without what Windows drops at the end.
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base = base.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let Some((stem, ext)) = base.rsplit_once('.') else {
        return reasons;
    };
    let ext = ext.to_ascii_lowercase();
    if family(&ext).is_none() {
        return reasons;
    }
    let decoy = stem
        .trim_end()
        .rsplit_once('.')
        .map(|(_, decoy)| decoy.to_ascii_lowercase());
    if decoy.is_some_and(|d| DECOYS.contains(&d.as_str())) {
        reasons.push(Reason::DoubleExtension(ext));
    } else {
        reasons.push(Reason::Extension(ext));
    }
    reasons
}

/// Extensions of documents and media that a decoy name shows before the
/// real one.
const DECOYS: &[&str] = &[
    "avi", "bmp", "csv", "doc", "docx", "gif", "htm", "html", "jpeg", "jpg", "mov", "mp3", "mp4",
    "odp", "ods", "odt", "pdf", "png", "ppt", "pptx", "rar", "rtf", "tif", "tiff", "txt", "wav",
    "xls", "xlsx", "xml", "zip", "7z",
];

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}
