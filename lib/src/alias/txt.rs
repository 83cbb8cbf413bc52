//! Alias rules published in a domain's DNS TXT records, in the format
//! Forward Email documents (forwardemail.net FAQ, "How do I get started
//! and set up email forwarding" and the sections after it; its resolver
//! reads them in `helpers/get-forwarding-addresses.js`). A pure parser:
//! records in, [`Published`] out; the lookup is `alias::records`.
//!
//! # The format
//!
//! A record `PREFIX=VALUE` for each configured prefix (`forward-email=`,
//! `postern=`; the prefix is matched without regard to ASCII case). A
//! record's character-strings are joined first (the DNS client does
//! that), and several records are read one after the other. VALUE is a
//! comma-separated list of entries, spaces around each ignored, empty
//! entries skipped:
//!
//! | entry | rule |
//! |---|---|
//! | `name:target` | exact alias `name` (lower-cased) to `target` |
//! | `target` | catch-all: every other name to `target` |
//! | `/regex/flags:target` | regex alias; `$1`.. in `target` are its groups |
//! | `!name`, `!/regex/` | accept and drop quietly |
//! | `!!name`, `!!/regex/` | refuse for now (4.2.1) |
//! | `!!!name`, `!!!/regex/` | refuse for good (5.2.1) |
//!
//! and `PREFIX-port=NNNN`, the SMTP port the owner asked for
//! ([`Published::port`]).
//!
//! A target is an address or an `http(s)://` URL (a webhook). `maildb:`
//! targets are refused: what a domain publishes must not deliver into a
//! local mailbox of this host. A target without `@` (Forward Email reads
//! `name:example.net` as "the same name at example.net") is refused too.
//!
//! A regex runs from the first `/` to the next `/` that is neither escaped
//! (`\/`) nor inside a class (`[...]`): so `,` and `:` inside a regex are
//! its own. Flags `g` and `i` are accepted and change nothing: matching is
//! always without regard to case (see `alias::compile_pattern`, which also
//! bounds its size; matching is linear in the input whatever the pattern).
//! `$N` or `${N}` in a target must name a group the regex has.
//!
//! # Decisions
//!
//! - **Order.** DNS gives a record set no order (servers rotate it), so
//!   records are read sorted, prefix by prefix in the configured order:
//!   the same records always give the same rules. Within a record the
//!   order is the owner's; keep regex entries whose order matters in one
//!   record.
//! - **Several entries for one name** (one pattern) make one [`Rule`]: its
//!   targets in order, duplicates (ignoring ASCII case; URLs exactly)
//!   folded.
//! - **Contradictions.** A `!` entry wins over forwarding entries for the
//!   same name, wherever it stands, as with Forward Email (whose resolver
//!   stops at any `!` match); between two different `!` modes for one
//!   name the first wins, also as there. Every entry that loses is listed
//!   in [`Published::problems`], so the owner sees it in `explain`.
//! - **Problems** name the entry by its number (1 = the first entry of the
//!   first record read), or the record (`record 2`: the second alias
//!   record read; `port record 1`), and never quote it: a record holds
//!   addresses.
//! - **`None`** when no record starts with a configured `PREFIX=` or
//!   `PREFIX-port=`; a record `PREFIX=` with nothing after it gives an
//!   empty [`Published`] (the domain takes part, with no aliases).
//! - **Encrypted values.** Forward Email lets owners publish a value
//!   encrypted under its service key: `PREFIX=` then base64. Such a value
//!   is recognised (base64 only, at least [`MIN_ENCRYPTED`] characters);
//!   without `aliases.txt_key_file` it is a problem, with it it is
//!   decrypted: ChaCha20-Poly1305 (RFC 8439), the key the file's 32
//!   characters as bytes (Forward Email's `TXT_ENCRYPTION_KEY` form), the
//!   message a 12-byte nonce, the 16-byte tag, then the ciphertext; base64
//!   of those bytes or of their hex text (Forward Email writes both).
//!   Values encrypted by Forward Email need Forward Email's key, which
//!   only they have: decryption serves operators who encrypt their own
//!   values ([`encrypt_value`]).
//!
//! # Limits
//!
//! At most [`MAX_TXT_TEXT`] octets of records are read per domain (whole
//! records; the rest is a problem), [`MAX_ENTRIES`] entries,
//! [`MAX_ENTRY`] octets per entry, [`MAX_REGEX_ENTRIES`] regex entries
//! (each is compiled), [`MAX_RULE_TARGETS`] targets per rule (the rewriter
//! applies the smaller `aliases.max_targets` when it expands them), and
//! [`MAX_PROBLEMS`] problems are listed.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use data_encoding::{BASE64, BASE64_NOPAD, HEXLOWER, HEXLOWER_PERMISSIVE};
use zeroize::Zeroizing;

use super::{Action, Origin, Pattern, Published, Rule, Target, compile_pattern};
use crate::exit::{Failure, ToFailure};

/// Most octets of alias and port records read per domain. DNS over TCP
/// carries up to 64 KiB; a typical entry is 30 to 50 octets.
pub const MAX_TXT_TEXT: usize = 32 * 1024;
/// Most entries read per domain.
pub const MAX_ENTRIES: usize = 1000;
/// Longest entry.
pub const MAX_ENTRY: usize = 4096;
/// Most regex entries per domain: each is compiled, which costs far more
/// than reading a name.
pub const MAX_REGEX_ENTRIES: usize = 100;
/// Most targets one rule keeps.
pub const MAX_RULE_TARGETS: usize = 100;
/// Most problems listed (then one line saying how many more).
pub const MAX_PROBLEMS: usize = 50;
/// Shortest value taken for an encrypted one: a 12-byte nonce, a 16-byte
/// tag and one byte of text are 29 bytes, 40 base64 characters.
pub const MIN_ENCRYPTED: usize = 40;
/// The verification record `postern-alias domain add` asks for.
pub const VERIFICATION_PREFIX: &str = "postern-site-verification=";
/// Longest verification token read.
pub const MAX_TOKEN: usize = 256;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The key for encrypted TXT values (`aliases.txt_key_file`), wiped from
/// memory when dropped.
#[derive(Clone)]
pub struct TxtKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for TxtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxtKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TxtKeyError {
    #[error("aliases.txt_key_file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("aliases.txt_key_file {path} is not a regular file")]
    NotFile { path: PathBuf },
    #[error("aliases.txt_key_file {path} has mode {mode:04o}; it must be 0600 (chmod 600 {path})")]
    Mode { path: PathBuf, mode: u32 },
    #[error(
        "aliases.txt_key_file {path} must hold exactly 32 characters \
         (make one with: umask 077; openssl rand -hex 16 > {path})"
    )]
    Length { path: PathBuf },
}

impl ToFailure for TxtKeyError {
    fn to_failure(&self) -> Failure {
        match self {
            TxtKeyError::Read { .. } => Failure::tempfail(self.to_string()),
            _ => Failure::config(self.to_string()),
        }
    }
}

impl TxtKey {
    /// Reads the key file: mode 0600 (no access for group or others),
    /// 32 characters, one trailing newline allowed.
    pub fn load(path: &Path) -> Result<TxtKey, TxtKeyError> {
        let read_err = |source| TxtKeyError::Read {
            path: path.to_owned(),
            source,
        };
        let (file, meta) = crate::store::private::open(path).map_err(|e| {
            use crate::store::private::PrivateFileError;
            match e {
                PrivateFileError::Open(source) => read_err(source),
                PrivateFileError::NotFile => TxtKeyError::NotFile {
                    path: path.to_owned(),
                },
                PrivateFileError::Mode(mode) => TxtKeyError::Mode {
                    path: path.to_owned(),
                    mode,
                },
            }
        })?;
        let too_long = || TxtKeyError::Length {
            path: path.to_owned(),
        };
        if meta.size() > KEY_LEN as u64 + 2 {
            return Err(too_long());
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 2));
        file.take(KEY_LEN as u64 + 2)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        let text = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(&bytes);
        let key: [u8; KEY_LEN] = text.try_into().map_err(|_| too_long())?;
        Ok(TxtKey(Zeroizing::new(key)))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> TxtKey {
        TxtKey(Zeroizing::new(bytes))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&(*self.0).into())
    }
}

/// Encrypts a value for a `PREFIX=` record under `key` with `nonce` (12
/// random bytes, never used twice with one key): base64 of the hex text
/// of nonce, tag and ciphertext, the form Forward Email writes now.
pub fn encrypt_value(key: &TxtKey, nonce: [u8; NONCE_LEN], plain: &str) -> String {
    let mut body = plain.as_bytes().to_vec();
    // A TXT value is far below the cipher's 256 GiB limit: this cannot fail.
    let tag = key
        .cipher()
        .encrypt_inout_detached(&nonce.into(), b"", (&mut body[..]).into())
        .map(|t| t.to_vec())
        .unwrap_or_default();
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&tag);
    bytes.extend_from_slice(&body);
    BASE64.encode(HEXLOWER.encode(&bytes).as_bytes())
}

/// The bytes of a value that looks encrypted: base64 only (padding
/// optional), at least [`MIN_ENCRYPTED`] characters. A plain value always
/// holds `@`, `:`, `/` with `.`, or is short, so the two never meet.
fn encrypted_blob(value: &str) -> Option<Vec<u8>> {
    if value.len() < MIN_ENCRYPTED {
        return None;
    }
    let body = value.trim_end_matches('=');
    if value.len() - body.len() > 2
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return None;
    }
    BASE64_NOPAD.decode(body.as_bytes()).ok()
}

/// Decrypts what [`encrypted_blob`] found; `None` when it does not open
/// under `key` or is not UTF-8.
fn decrypt(key: &TxtKey, blob: &[u8]) -> Option<String> {
    let bytes = if blob.len().is_multiple_of(2) && blob.iter().all(u8::is_ascii_hexdigit) {
        HEXLOWER_PERMISSIVE.decode(blob).ok()?
    } else {
        blob.to_vec()
    };
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, rest) = bytes.split_at(NONCE_LEN);
    let (tag, ciphertext) = rest.split_at(TAG_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let tag: [u8; TAG_LEN] = tag.try_into().ok()?;
    let mut plain = ciphertext.to_vec();
    key.cipher()
        .decrypt_inout_detached(&nonce.into(), b"", (&mut plain[..]).into(), &tag.into())
        .ok()?;
    String::from_utf8(plain).ok()
}

/// Problems, bounded.
#[derive(Default)]
struct Problems {
    list: Vec<String>,
    more: usize,
}

impl Problems {
    fn push(&mut self, problem: String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(problem);
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list
                .push(format!("{} more problems not listed", self.more));
        }
        self.list
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The rules `records` publish for the prefixes in `prefixes` (in that
/// order), decrypting encrypted values with `key` when given. `None` when
/// no record starts with `PREFIX=` or `PREFIX-port=`.
pub fn parse(records: &[String], prefixes: &[String], key: Option<&TxtKey>) -> Option<Published> {
    let mut sorted: Vec<&str> = records.iter().map(|r| r.trim()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut seen_prefixes: Vec<String> = Vec::new();
    let mut values = Vec::new();
    let mut ports = Vec::new();
    for prefix in prefixes {
        let lower = prefix.to_ascii_lowercase();
        if lower.is_empty() || seen_prefixes.contains(&lower) {
            continue;
        }
        let alias_tag = format!("{lower}=");
        let port_tag = format!("{lower}-port=");
        for record in &sorted {
            if let Some(value) = strip_prefix_ignore_case(record, &alias_tag) {
                values.push(value);
            } else if let Some(value) = strip_prefix_ignore_case(record, &port_tag) {
                ports.push(value);
            }
        }
        seen_prefixes.push(lower);
    }
    if values.is_empty() && ports.is_empty() {
        return None;
    }

    let mut problems = Problems::default();
    let mut budget = MAX_TXT_TEXT;
    let mut within = |len: usize, what: &str, problems: &mut Problems| {
        if len > budget {
            problems.push(format!(
                "{what}: not read: the records pass {MAX_TXT_TEXT} octets in all"
            ));
            budget = 0;
            false
        } else {
            budget -= len;
            true
        }
    };

    let mut port = None;
    for (i, value) in ports.iter().enumerate() {
        let what = format!("port record {}", i + 1);
        if !within(value.len(), &what, &mut problems) {
            break;
        }
        let value = match reveal(value.trim(), key) {
            Ok(v) => v,
            Err(reason) => {
                problems.push(format!("{what}: {reason}"));
                continue;
            }
        };
        match value.trim().parse::<u16>() {
            Ok(p) if p > 0 => match port {
                None => port = Some(p),
                Some(first) if first != p => problems.push(format!(
                    "{what}: another port than the first port record; the first is used"
                )),
                Some(_) => {}
            },
            _ => problems.push(format!("{what}: not a port number (1 to 65535)")),
        }
    }

    let mut builder = Builder::default();
    let mut entry_no = 0usize;
    let mut regexes = 0usize;
    'records: for (i, value) in values.iter().enumerate() {
        let what = format!("record {}", i + 1);
        if !within(value.len(), &what, &mut problems) {
            break;
        }
        let value = match reveal(value.trim(), key) {
            Ok(v) => v,
            Err(reason) => {
                problems.push(format!("{what}: {reason}"));
                continue;
            }
        };
        for entry in split_entries(&value) {
            entry_no += 1;
            if entry_no > MAX_ENTRIES {
                problems.push(format!("entries after the {MAX_ENTRIES}th are not read"));
                break 'records;
            }
            match parse_entry(entry, &mut regexes) {
                Ok((pattern, action, target)) => {
                    builder.add(entry_no, entry, pattern, action, target, &mut problems)
                }
                Err(reason) => problems.push(format!("entry {entry_no}: {reason}")),
            }
        }
    }

    Some(Published {
        rules: builder.finish(),
        port,
        problems: problems.finish(),
    })
}

/// A value as text: itself, or decrypted when it is encrypted.
fn reveal<'a>(value: &'a str, key: Option<&TxtKey>) -> Result<std::borrow::Cow<'a, str>, String> {
    let Some(blob) = encrypted_blob(value) else {
        return Ok(value.into());
    };
    let Some(key) = key else {
        return Err("encrypted TXT value: set aliases.txt_key_file to read it".into());
    };
    let plain = decrypt(key, &blob).ok_or_else(|| {
        "encrypted TXT value does not open with aliases.txt_key_file \
         (encrypted under another key)"
            .to_owned()
    })?;
    if encrypted_blob(plain.trim()).is_some() {
        return Err("encrypted TXT value holds another encrypted value".into());
    }
    Ok(plain.into())
}

/// Where the regex that starts at `s[0] == b'/'` ends: the next `/` not
/// escaped and not inside a class.
fn regex_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    let mut class = false;
    while i < s.len() {
        match s[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'[' if !class => class = true,
            b']' if class => class = false,
            b'/' if !class => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The entries of a value: split at commas, except inside a regex.
fn split_entries(value: &str) -> Vec<&str> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut scan = start;
        while scan < b.len() && b[scan] == b'!' {
            scan += 1;
        }
        if b.get(scan) == Some(&b'/') {
            // An unclosed regex ends at the next comma like any entry, so
            // the entries after it are still read.
            if let Some(end) = regex_end(&b[scan..]) {
                scan += end + 1;
            }
        }
        let end = b[scan..]
            .iter()
            .position(|&c| c == b',')
            .map_or(b.len(), |p| scan + p);
        let entry = value[start..end].trim();
        if !entry.is_empty() {
            out.push(entry);
        }
        i = end + 1;
    }
    out
}

fn is_url(text: &str) -> bool {
    let head = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    head.starts_with("https://") || head.starts_with("http://")
}

/// One entry read: what it matches, what it does, its target if any.
fn parse_entry(
    entry: &str,
    regexes: &mut usize,
) -> Result<(Pattern, Action, Option<String>), String> {
    if entry.len() > MAX_ENTRY {
        return Err(format!("entry is longer than {MAX_ENTRY} octets"));
    }
    if entry.contains('\u{fffd}') {
        return Err("entry holds bytes that are not UTF-8".into());
    }
    if entry.chars().any(char::is_control) {
        return Err("entry holds a control character".into());
    }
    let bangs = entry.bytes().take_while(|&b| b == b'!').count();
    let action = match bangs {
        0 => Action::Forward,
        1 => Action::Drop,
        2 => Action::Defer,
        3 => Action::Refuse,
        _ => return Err("more than three ! before a name".into()),
    };
    let rest = &entry[bangs..];
    if rest.trim().is_empty() {
        return Err("! without a name".into());
    }
    if rest.starts_with('/') {
        return parse_regex(rest, action, regexes);
    }
    if action == Action::Forward && is_url(rest) {
        return Ok((Pattern::CatchAll, action, Some(check_target(rest)?)));
    }
    if action != Action::Forward {
        // `!name` or `!name:target`: the target means nothing then.
        let name = rest.split(':').next().unwrap_or(rest);
        return Ok((Pattern::Exact(alias_name(name)?), action, None));
    }
    match rest.split_once(':') {
        Some((name, target)) => Ok((
            Pattern::Exact(alias_name(name)?),
            action,
            Some(check_target(target.trim())?),
        )),
        None => {
            if encrypted_blob(rest).is_some() {
                return Err("an encrypted value must be a record of its own (PREFIX=VALUE)".into());
            }
            Ok((Pattern::CatchAll, action, Some(check_target(rest)?)))
        }
    }
}

fn parse_regex(
    rest: &str,
    action: Action,
    regexes: &mut usize,
) -> Result<(Pattern, Action, Option<String>), String> {
    let end = regex_end(rest.as_bytes()).ok_or("regex has no closing /")?;
    let source = &rest[1..end];
    let tail = &rest[end + 1..];
    let (flags, target) = match tail.split_once(':') {
        Some((flags, target)) => (flags.trim(), Some(target.trim())),
        None => (tail.trim(), None),
    };
    if !flags.chars().all(|c| c == 'g' || c == 'i') {
        return Err("regex flags other than g and i are not read".into());
    }
    if source.is_empty() {
        return Err("regex is empty".into());
    }
    *regexes += 1;
    if *regexes > MAX_REGEX_ENTRIES {
        return Err(format!(
            "more than {MAX_REGEX_ENTRIES} regex entries: this one is not read"
        ));
    }
    let regex = compile_pattern(source)?;
    let pattern = Pattern::Regex(source.to_owned());
    if action != Action::Forward {
        return Ok((pattern, action, None));
    }
    let target = target
        .filter(|t| !t.is_empty())
        .ok_or("regex alias has no :target")?;
    let probe = fill_groups(target, regex.captures_len().saturating_sub(1))?;
    check_target(&probe)?;
    Ok((pattern, action, Some(target.to_owned())))
}

/// `template` with every `$N` / `${N}` replaced by a sample capture, so
/// it can be checked as a target; an error when N is not one of the
/// regex's `groups`.
fn fill_groups(template: &str, groups: usize) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (digits, skip) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(close) if close > 0 && braced[..close].bytes().all(|b| b.is_ascii_digit()) => {
                    (&braced[..close], close + 2)
                }
                _ => ("", 0),
            }
        } else {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            (&after[..n], n)
        };
        if digits.is_empty() {
            // A `$` that names no group is kept as written.
            out.push('$');
            rest = after;
            continue;
        }
        let n = digits.parse::<usize>().unwrap_or(usize::MAX);
        if n == 0 || n > groups {
            return Err(match groups {
                0 => format!("target uses ${digits} but the regex has no group"),
                1 => format!("target uses ${digits} but the regex has 1 group"),
                g => format!("target uses ${digits} but the regex has {g} groups"),
            });
        }
        out.push('x');
        rest = &after[skip..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A name of an exact alias: lower-cased.
fn alias_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("alias name is empty".into());
    }
    if name.len() > 64 {
        return Err("alias name is longer than 64 octets".into());
    }
    if name.contains('+') {
        return Err(
            "alias name holds +: plus-addressing takes +tag off before lookup, so it never matches"
                .into(),
        );
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "@,:;<>()[]\\\"/".contains(c))
    {
        return Err("alias name holds a character not allowed in a local part".into());
    }
    Ok(name.to_lowercase())
}

/// A target as published, once it is known to be one DNS may name.
fn check_target(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("target is empty".into());
    }
    if text
        .get(..7)
        .is_some_and(|h| h.eq_ignore_ascii_case("maildb:"))
    {
        return Err(
            "maildb: targets are not allowed in DNS records (only the alias store delivers to \
             local mailboxes)"
                .into(),
        );
    }
    if !is_url(text) && !text.contains('@') {
        return Err(
            "target has no @: forwarding to a whole domain or host is not supported".into(),
        );
    }
    match Target::parse(text) {
        Ok(Target::Mailbox(_)) => Err("maildb: targets are not allowed in DNS records".into()),
        Ok(_) => Ok(text.to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn same_target(a: &str, b: &str) -> bool {
    if is_url(a) || is_url(b) {
        a == b
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

/// A rule being built from its entries.
struct Building {
    pattern: Pattern,
    action: Action,
    targets: Vec<String>,
    /// The entries that make it, as published, and their numbers.
    entries: Vec<String>,
    numbers: Vec<usize>,
}

#[derive(Default)]
struct Builder {
    rules: Vec<Building>,
    index: HashMap<String, usize>,
}

fn pattern_key(p: &Pattern) -> String {
    match p {
        Pattern::Exact(name) => format!("e:{name}"),
        Pattern::Regex(source) => format!("r:{source}"),
        Pattern::CatchAll => "c".into(),
    }
}

impl Builder {
    fn add(
        &mut self,
        number: usize,
        entry: &str,
        pattern: Pattern,
        action: Action,
        target: Option<String>,
        problems: &mut Problems,
    ) {
        let key = pattern_key(&pattern);
        let Some(&i) = self.index.get(&key) else {
            self.index.insert(key, self.rules.len());
            self.rules.push(Building {
                pattern,
                action,
                targets: target.into_iter().collect(),
                entries: vec![entry.to_owned()],
                numbers: vec![number],
            });
            return;
        };
        let rule = &mut self.rules[i];
        let first = rule.numbers[0];
        match (rule.action, action) {
            (Action::Forward, Action::Forward) => {
                let Some(target) = target else { return };
                if rule.targets.iter().any(|t| same_target(t, &target)) {
                    return; // a duplicate, folded
                }
                if rule.targets.len() >= MAX_RULE_TARGETS {
                    problems.push(format!(
                        "entry {number}: more than {MAX_RULE_TARGETS} targets for one alias; \
                         this one is not read"
                    ));
                    return;
                }
                rule.targets.push(target);
                rule.entries.push(entry.to_owned());
                rule.numbers.push(number);
            }
            (Action::Forward, _) => {
                for lost in &rule.numbers {
                    problems.push(format!(
                        "entry {lost}: not used: entry {number} disables the same alias \
                         (a ! entry wins over forwarding)"
                    ));
                }
                rule.action = action;
                rule.targets.clear();
                rule.entries = vec![entry.to_owned()];
                rule.numbers = vec![number];
            }
            (_, Action::Forward) => problems.push(format!(
                "entry {number}: not used: entry {first} disables the same alias \
                 (a ! entry wins over forwarding)"
            )),
            (a, b) if a == b => {} // a duplicate, folded
            _ => problems.push(format!(
                "entry {number}: not used: entry {first} gives the same alias another ! mode \
                 (the first wins)"
            )),
        }
    }

    fn finish(self) -> Vec<Rule> {
        self.rules
            .into_iter()
            .map(|b| Rule {
                pattern: b.pattern,
                action: b.action,
                targets: b.targets,
                origin: Origin::Txt {
                    entry: b.entries.join(","),
                },
            })
            .collect()
    }
}

/// The tokens of `postern-site-verification=TOKEN` records (printable
/// ASCII without spaces, at most [`MAX_TOKEN`] characters; others are
/// not tokens), each once, in the order found.
pub fn verification_tokens(records: &[String]) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    for record in records {
        let Some(token) = strip_prefix_ignore_case(record.trim(), VERIFICATION_PREFIX) else {
            continue;
        };
        let token = token.trim();
        let printable = token.bytes().all(|b| b.is_ascii_graphic());
        if !token.is_empty()
            && token.len() <= MAX_TOKEN
            && printable
            && !tokens.iter().any(|t| t == token)
        {
            tokens.push(token.to_owned());
        }
    }
    tokens
}

#[cfg(test)]
mod tests;
