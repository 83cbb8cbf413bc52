//! Phishing signs in a message (issue 12, rule 3): links whose text names
//! one site while they go to another, IDN homographs (Unicode UTS #39:
//! mixed-script detection, section 5, and confusable skeletons, section
//! 4), From display names that claim the recipient's own domain or a
//! protected brand, and From domains made to look like the recipient's.
//!
//! [`scan`] decides and does no I/O: it reads the message's bytes and the
//! caller's [`Context`] and returns [`Finding`]s, each with a one-line
//! [`Finding::describe`] fit for an `X-Postern-Phishing:` header (ASCII,
//! domains only, never an address of the recipient). No DNS, and no
//! Public Suffix List: "the same site" is the rough rule of [`site`].
//!
//! Bounds: at most [`MAX_PARTS`] MIME parts are looked at; of each
//! text/html part (after its transfer encoding and charset are decoded)
//! the first [`MAX_HTML_BYTES`] bytes, and in them the first
//! [`MAX_ANCHORS`] anchors, each with at most [`MAX_ANCHOR_TEXT`] bytes of
//! visible text; at most [`MAX_FINDINGS`] findings, each reason once.
//!
//! The HTML reader is a small tokenizer for `<a href=...>text</a>`, not an
//! HTML5 parser. It handles: tag and attribute names in any case;
//! attribute values in double quotes, single quotes or none; numeric
//! character references and a few named ones (`&amp;` `&lt;` `&gt;`
//! `&quot;` `&apos;` `&nbsp;` `&sol;` `&colon;` `&period;` `&commat;`
//! `&num;` `&quest;` `&equals;` `&Tab;` `&NewLine;`); comments; the
//! contents of `<script>` and `<style>` skipped; other tags inside an
//! anchor's text dropped (a space for `<br>`, `<p>`, `<div>`, `<td>`,
//! `<tr>`, `<li>`, `<img>`); an `<a>` opened inside an open `<a>` closes it,
//! as in HTML. It does not know: the rest of the named references,
//! `<base href>`, CDATA, text hidden by CSS, or links built by scripts.

use std::net::Ipv4Addr;

use mailparse::{MailAddr, MailHeader, MailHeaderMap};
use unicode_security::{MixedScript, skeleton};

use crate::alias::domain_key;
use crate::mail::text;

/// MIME parts looked at, in depth-first order.
pub const MAX_PARTS: usize = 64;
/// Bytes of each decoded text/html part that are tokenized.
pub const MAX_HTML_BYTES: usize = 1 << 20;
/// Anchors read from each text/html part.
pub const MAX_ANCHORS: usize = 500;
/// Bytes of visible text kept for each anchor.
pub const MAX_ANCHOR_TEXT: usize = 512;
/// Findings returned for one message.
pub const MAX_FINDINGS: usize = 20;
/// Characters of a caller-given or message-given string in a description.
const MAX_DESCRIBED: usize = 80;

/// What the caller protects.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The recipient's own domains (`example.com`); IDNs in either form.
    pub our_domains: &'a [String],
    /// Brand names (`PayPal`, `Example Bank`), matched case-insensitively
    /// and after confusable folding. A name with a dot (`paypal.com`) is a
    /// protected domain instead: matched in display names as a domain, and
    /// imitations of it are found by skeleton.
    pub protected_names: &'a [String],
}

/// Why a message looks like phishing. Domains are in their ASCII
/// (IDNA, `xn--`) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Rule 1: an anchor's visible text is a URL or domain of the site
    /// `shown`, while its href goes to the site `target`.
    LinkTextMismatch { shown: String, target: String },
    /// Rule 1: an anchor's href runs code or carries its content inline
    /// (`javascript:`, `vbscript:`, `data:`).
    ScriptLink { scheme: String },
    /// Rule 1: an anchor's href goes to an IP address, not a name.
    IpLiteralLink { host: String },
    /// Rule 2: a host (in an href, or the From domain) with a label that
    /// mixes scripts (UTS #39 section 5.1, not single-script).
    MixedScriptHost { host: String },
    /// Rule 2: a host whose confusable skeleton (UTS #39 section 4) is a
    /// protected domain's or brand's while the host is not it.
    ConfusableHost { host: String, imitates: String },
    /// Rule 3: the From display name names `claims` (one of our domains,
    /// a protected domain or brand), but the address is at `domain`.
    DisplayNameClaim { claims: String, domain: String },
    /// Rule 4: the From domain is not ours but is made to look like
    /// `imitates`, one of ours.
    LookalikeFromDomain { domain: String, imitates: String },
}

impl Reason {
    /// One line, ASCII, for an `X-Postern-Phishing:` header.
    pub fn describe(&self) -> String {
        match self {
            Reason::LinkTextMismatch { shown, target } => {
                format!("link text shows {shown} but the link goes to {target}")
            }
            Reason::ScriptLink { scheme } => format!("link runs a {scheme}: URL"),
            Reason::IpLiteralLink { host } => {
                format!("link goes to the bare IP address {}", clean(host))
            }
            Reason::MixedScriptHost { host } => format!("host {host} mixes scripts"),
            Reason::ConfusableHost { host, imitates } => {
                format!("host {host} imitates {}", clean(imitates))
            }
            Reason::DisplayNameClaim { claims, domain } => format!(
                "sender name claims {} but the address is at {domain}",
                clean(claims)
            ),
            Reason::LookalikeFromDomain { domain, imitates } => {
                format!("sender domain {domain} imitates {imitates}")
            }
        }
    }
}

/// One phishing sign found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub reason: Reason,
}

impl Finding {
    /// One line, ASCII, for an `X-Postern-Phishing:` header.
    pub fn describe(&self) -> String {
        self.reason.describe()
    }
}

/// The phishing signs in a raw RFC 5322 message. Never fails: what cannot
/// be parsed is not looked at.
pub fn scan(message: &[u8], ctx: &Context) -> Vec<Finding> {
    let protected = Protected::new(ctx);
    let mut found = Findings::default();
    match mailparse::parse_mail(message) {
        Ok(mail) => {
            check_from(&mail.headers, &protected, &mut found);
            for part in mail.parts().take(MAX_PARTS) {
                if !part.ctype.mimetype.eq_ignore_ascii_case("text/html") {
                    continue;
                }
                let html = part.get_body().unwrap_or_else(|_| {
                    part.get_body_raw()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                });
                check_html(&html, &protected, &mut found);
            }
        }
        Err(_) => {
            if let Ok((headers, _)) = mailparse::parse_headers(message) {
                check_from(&headers, &protected, &mut found);
            }
        }
    }
    found.0
}

/// The registrable-ish part of an ASCII host, its "site": the last two
/// labels, or three when the last is a two-letter country code and the
/// second-to-last one of [`SECOND_LEVEL`] (`shop.co.uk`, `bank.com.au`).
/// Rough by design (no Public Suffix List): hosts under a shared platform
/// (`a.github.io`, `b.github.io`) count as one site, and a country's
/// second-level names missing from the list count as sites.
pub fn site(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    let mut dots = host.rmatch_indices('.').map(|(i, _)| i);
    let Some(d1) = dots.next() else { return host };
    let Some(d2) = dots.next() else { return host };
    let tld = &host[d1 + 1..];
    let second = &host[d2 + 1..d1];
    if tld.len() != 2 || !SECOND_LEVEL.contains(&second) {
        return &host[d2 + 1..];
    }
    match dots.next() {
        Some(d3) => &host[d3 + 1..],
        None => host,
    }
}

/// Second-level labels under which country-code TLDs register names.
const SECOND_LEVEL: &[&str] = &[
    "ac", "co", "com", "edu", "gob", "go", "gov", "gv", "int", "ltd", "mil", "ne", "net", "nhs",
    "nic", "nom", "or", "org", "plc", "sch",
];

/// Endings of file names that are not TLDs people see in link text: a
/// bare `report.pdf` is not a domain. (Text with a scheme or `www.` is
/// always a URL.)
const FILE_ENDINGS: &[&str] = &[
    "asp", "aspx", "csv", "doc", "docx", "exe", "gif", "htm", "html", "jpeg", "jpg", "js", "json",
    "mp3", "mp4", "odt", "pdf", "php", "png", "ppt", "pptx", "rar", "svg", "txt", "xls", "xlsx",
    "xml", "zip",
];

/// A domain to protect: its ASCII form and the skeleton of its Unicode form.
#[derive(Clone)]
struct Domain {
    ascii: String,
    skeleton: String,
}

impl Domain {
    fn new(name: &str) -> Option<Domain> {
        let ascii = domain_key(name.trim())?;
        let skeleton = skel(&unicode(&ascii));
        Some(Domain { ascii, skeleton })
    }
}

/// A brand name to protect.
struct Brand {
    /// As the caller gave it, cleaned for a header.
    shown: String,
    /// Skeleton of the lower-cased name, for display names.
    folded: String,
    /// Lower-cased letters and digits only (`examplebank`).
    compact: String,
    /// Skeleton of `compact`, for domain labels.
    compact_skeleton: String,
}

struct Protected {
    ours: Vec<Domain>,
    /// Ours and the dotted protected names.
    domains: Vec<Domain>,
    brands: Vec<Brand>,
}

impl Protected {
    fn new(ctx: &Context) -> Protected {
        let ours: Vec<Domain> = ctx
            .our_domains
            .iter()
            .filter_map(|d| Domain::new(d))
            .collect();
        let mut domains = ours.clone();
        let mut brands = Vec::new();
        for name in ctx.protected_names {
            let name = name.trim();
            if name.contains('.') {
                domains.extend(Domain::new(name));
                continue;
            }
            let lower = name.to_lowercase();
            let compact: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
            if compact.is_empty() {
                continue;
            }
            brands.push(Brand {
                shown: clean(name),
                folded: skel(&lower),
                compact_skeleton: skel(&compact),
                compact,
            });
        }
        Protected {
            ours,
            domains,
            brands,
        }
    }

    fn is_ours(&self, host: &str) -> bool {
        self.ours.iter().any(|d| within(host, &d.ascii))
    }
}

/// The findings so far: each reason once, at most [`MAX_FINDINGS`].
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, reason: Reason) {
        if self.0.len() < MAX_FINDINGS && !self.0.iter().any(|f| f.reason == reason) {
            self.0.push(Finding { reason });
        }
    }
}

/// Rules 2, 3 and 4 on the first address of the first From field.
fn check_from(headers: &[MailHeader], p: &Protected, found: &mut Findings) {
    let Some(field) = headers.get_first_header("From") else {
        return;
    };
    let Ok(list) = mailparse::addrparse_header(field) else {
        return;
    };
    let Some(sender) = list.iter().find_map(|a| match a {
        MailAddr::Single(s) => Some(s.clone()),
        MailAddr::Group(g) => g.addrs.first().cloned(),
    }) else {
        return;
    };
    let Some((_, domain)) = sender.addr.rsplit_once('@') else {
        return;
    };
    let Some(from) = domain_key(domain.trim()) else {
        return;
    };
    if !p.is_ours(&from) {
        match lookalike(&from, p) {
            Some(reason) => found.push(reason),
            None => check_host(&from, p, found),
        }
    }
    if let Some(name) = sender.display_name {
        check_display_name(&name, &from, p, found);
    }
}

/// Rule 3.
fn check_display_name(name: &str, from: &str, p: &Protected, found: &mut Findings) {
    let folded = skel(&name.to_lowercase());
    for d in &p.domains {
        if !within(from, &d.ascii) && contains_word(&folded, &d.skeleton) {
            found.push(Reason::DisplayNameClaim {
                claims: d.ascii.clone(),
                domain: from.to_owned(),
            });
            return;
        }
    }
    if p.is_ours(from) {
        return;
    }
    let label = first_label(site(from)).replace('-', "");
    for b in &p.brands {
        if contains_word(&folded, &b.folded) && label != b.compact {
            found.push(Reason::DisplayNameClaim {
                claims: b.shown.clone(),
                domain: from.to_owned(),
            });
            return;
        }
    }
}

/// Rule 4: the From domain `from` (not ours) made to look like one of ours.
fn lookalike(from: &str, p: &Protected) -> Option<Reason> {
    let from_site = site(from);
    let skeletons = [skel(&unicode(from)), skel(&unicode(from_site))];
    for d in &p.ours {
        let hit = skeletons.contains(&d.skeleton)
            || [from, from_site].iter().any(|c| one_edit_away(c, &d.ascii))
            || label_trick(from, &d.ascii);
        if hit {
            return Some(Reason::LookalikeFromDomain {
                domain: from.to_owned(),
                imitates: d.ascii.clone(),
            });
        }
    }
    None
}

/// Within one insertion, deletion, substitution or swap of neighbours of
/// `ours`, with the same TLD, where the name before the TLD has at least
/// five characters (short names are all near each other).
fn one_edit_away(candidate: &str, ours: &str) -> bool {
    let (Some((a_name, a_tld)), Some((b_name, b_tld))) =
        (candidate.rsplit_once('.'), ours.rsplit_once('.'))
    else {
        return false;
    };
    a_tld == b_tld && b_name.chars().count() >= 5 && edit_distance(a_name, b_name) == 1
}

/// Optimal string alignment distance (Damerau-Levenshtein without
/// repeated edits of one substring), on characters; 2 stands for "more
/// than one" when the lengths differ by more than one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 1 {
        return 2;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, row) in d.chunks_mut(w).enumerate() {
        row[0] = i;
    }
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// `ours` (or it with its dots as hyphens) as whole labels inside `from`:
/// `example.com.evil.test`, `example-com.test`, `secure-example.com`.
fn label_trick(from: &str, ours: &str) -> bool {
    let hyphenated = ours.replace('.', "-");
    [ours, hyphenated.as_str()].iter().any(|pat| {
        from.match_indices(pat).any(|(i, _)| {
            let end = i + pat.len();
            let before = i == 0 || matches!(from.as_bytes()[i - 1], b'.' | b'-');
            let after = end == from.len() || matches!(from.as_bytes()[end], b'.' | b'-');
            before && after && from != *pat
        })
    })
}

/// Rule 2 on an ASCII host that is not ours.
fn check_host(host: &str, p: &Protected, found: &mut Findings) {
    if p.is_ours(host) {
        return;
    }
    let host_site = site(host);
    let uni = unicode(host);
    let uni_site = unicode(host_site);
    let skeletons = [skel(&uni), skel(&uni_site)];
    for d in &p.domains {
        if !within(host, &d.ascii) && skeletons.contains(&d.skeleton) {
            found.push(Reason::ConfusableHost {
                host: host.to_owned(),
                imitates: d.ascii.clone(),
            });
            return;
        }
    }
    let label = first_label(&uni_site);
    let label_skeleton = skel(label);
    let compact: String = label.chars().filter(|c| c.is_alphanumeric()).collect();
    for b in &p.brands {
        if label_skeleton == b.compact_skeleton && compact != b.compact {
            found.push(Reason::ConfusableHost {
                host: host.to_owned(),
                imitates: b.shown.clone(),
            });
            return;
        }
    }
    if uni.split('.').any(|l| !l.is_single_script()) {
        found.push(Reason::MixedScriptHost {
            host: host.to_owned(),
        });
    }
}

/// Rules 1 and 2 on the anchors of one decoded text/html part.
fn check_html(html: &str, p: &Protected, found: &mut Findings) {
    let mut end = html.len().min(MAX_HTML_BYTES);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    for anchor in anchors(&html[..end], MAX_ANCHORS) {
        let Some(href) = anchor.href else { continue };
        match target(&href) {
            Target::Script(scheme) => found.push(Reason::ScriptLink { scheme }),
            Target::Ip(host) => found.push(Reason::IpLiteralLink { host: clean(&host) }),
            Target::Other => {}
            Target::Host(host) => {
                check_host(&host, p, found);
                if let Some(shown) = text_host(&anchor.text) {
                    let (shown, target) = (site(&shown), site(&host));
                    if shown != target {
                        found.push(Reason::LinkTextMismatch {
                            shown: shown.to_owned(),
                            target: target.to_owned(),
                        });
                    }
                }
            }
        }
    }
}

/// Where an href goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// An http(s) or scheme-relative URL's host, in ASCII form.
    Host(String),
    /// An http(s) URL whose host is an IP address (as written).
    Ip(String),
    /// `javascript:`, `vbscript:` or `data:` (the scheme, lower-cased).
    Script(String),
    /// Relative, mailto:, tel:, unreadable...: not judged.
    Other,
}

/// Reads an href (entities already decoded) the way browsers forgive it:
/// tabs and newlines dropped, backslashes as slashes, userinfo skipped
/// (`https://bank.example@evil.test/` goes to evil.test), percent-escapes
/// in the host decoded.
fn target(href: &str) -> Target {
    let href: String = href
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let href = href.trim_matches(|c: char| c <= ' ');
    let rest = match href.split_once(':') {
        Some((scheme, rest))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            let scheme = scheme.to_ascii_lowercase();
            match scheme.as_str() {
                "http" | "https" => rest,
                "javascript" | "vbscript" | "data" => return Target::Script(scheme),
                _ => return Target::Other,
            }
        }
        _ if href.starts_with("//") || href.starts_with("\\\\") => href,
        _ => return Target::Other,
    };
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let authority = percent_decode(authority);
    if authority.starts_with('[') {
        let end = authority.find(']').map_or(authority.len(), |i| i + 1);
        return Target::Ip(authority[..end].to_owned());
    }
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h);
    if host.is_empty() {
        return Target::Other;
    }
    if is_ip(host) {
        return Target::Ip(host.to_owned());
    }
    match domain_key(host) {
        Some(ascii) if is_ip(&ascii) => Target::Ip(ascii),
        Some(ascii) => Target::Host(ascii),
        None => Target::Other,
    }
}

/// Dotted quads, and the other forms browsers read as IPv4 addresses
/// (WHATWG URL: one to four parts, each decimal or `0x` hex:
/// `3221225985`, `0xc0.0.2.1`, `192.168.1`).
fn is_ip(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let numeric = |p: &str| {
        let hex = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X"));
        match hex {
            Some(h) => h.chars().all(|c| c.is_ascii_hexdigit()),
            None => !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()),
        }
    };
    !host.is_empty() && host.split('.').count() <= 4 && host.split('.').all(numeric)
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    String::from_utf8_lossy(&text::percent_decode_lenient(s)).into_owned()
}

/// The ASCII host that an anchor's visible text names, when the whole
/// text is a URL (`https://bank.example/login`) or a domain
/// (`www.paypal.com`, `bank.example`); `None` for anything else
/// (`Click here`, `report.pdf`, an address).
fn text_host(text: &str) -> Option<String> {
    let t = text
        .trim()
        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '>', ']'])
        .trim_start_matches(['(', '<', '[']);
    if t.is_empty() || t.chars().any(char::is_whitespace) {
        return None;
    }
    let lower = t.to_lowercase();
    let (mut explicit, rest) = match ["https://", "http://", "//"]
        .iter()
        .find(|p| lower.starts_with(*p))
    {
        Some(p) => (true, &t[p.len()..]),
        None => (false, t),
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    if authority.contains('@') {
        return None;
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    explicit |= host.to_lowercase().starts_with("www.");
    if !host.contains('.')
        || !host
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    {
        return None;
    }
    let tld = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    if tld.chars().count() < 2 || !tld.chars().all(char::is_alphabetic) {
        return None;
    }
    if !explicit && FILE_ENDINGS.contains(&tld.to_lowercase().as_str()) {
        return None;
    }
    domain_key(host)
}

/// One `<a>` element.
#[derive(Debug, Default, PartialEq, Eq)]
struct Anchor {
    /// The href attribute, entities decoded.
    href: Option<String>,
    /// Visible text: tags dropped, entities decoded, whitespace collapsed.
    text: String,
}

/// The anchors of an HTML text, at most `max` (see the module's doc for
/// what this tokenizer knows).
fn anchors(html: &str, max: usize) -> Vec<Anchor> {
    let b = html.as_bytes();
    let mut out: Vec<Anchor> = Vec::new();
    let mut open: Option<Anchor> = None;
    let mut i = 0;
    while i < b.len() && out.len() < max {
        let lt = memchr::memchr(b'<', &b[i..]).map_or(b.len(), |p| i + p);
        if let Some(a) = open.as_mut() {
            push_text(&mut a.text, &html[i..lt]);
        }
        if lt >= b.len() {
            break;
        }
        i = lt;
        if b[i..].starts_with(b"<!--") {
            i = find_ci(b, i + 4, b"-->").map_or(b.len(), |p| p + 3);
            continue;
        }
        let closing = b.get(i + 1) == Some(&b'/');
        let name_start = if closing { i + 2 } else { i + 1 };
        let name_len = b[name_start.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || !b[name_start].is_ascii_alphabetic() {
            // A '<' that opens no tag is text.
            if let Some(a) = open.as_mut() {
                push_text(&mut a.text, "<");
            }
            i += 1;
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let (href, end) = tag_href(html, name_start + name_len);
        i = end;
        match (closing, name.as_str()) {
            (false, "a") => {
                out.extend(open.take().map(finish));
                open = Some(Anchor {
                    href,
                    text: String::new(),
                });
            }
            (true, "a") => out.extend(open.take().map(finish)),
            (false, "script" | "style") => {
                let close = if name == "script" {
                    &b"</script"[..]
                } else {
                    &b"</style"[..]
                };
                i = find_ci(b, i, close).unwrap_or(b.len());
            }
            (_, "br" | "p" | "div" | "td" | "tr" | "li" | "img") => {
                if let Some(a) = open.as_mut() {
                    push_text(&mut a.text, " ");
                }
            }
            _ => {}
        }
    }
    if out.len() < max {
        out.extend(open.map(finish));
    }
    out
}

fn finish(mut a: Anchor) -> Anchor {
    a.text = a.text.split_whitespace().collect::<Vec<_>>().join(" ");
    a
}

fn push_text(text: &mut String, raw: &str) {
    if text.len() >= MAX_ANCHOR_TEXT || raw.is_empty() {
        return;
    }
    for c in decode_entities(raw).chars() {
        if text.len() + c.len_utf8() > MAX_ANCHOR_TEXT {
            break;
        }
        text.push(c);
    }
}

/// Reads a tag's attributes from just after its name; returns the href
/// and the index just past the closing `>` (or the end of the text).
fn tag_href(html: &str, from: usize) -> (Option<String>, usize) {
    let b = html.as_bytes();
    let mut href = None;
    let mut i = from;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (href, b.len());
        }
        if b[i] == b'>' {
            return (href, i + 1);
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = &html[name_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let start = i + 1;
                let end = memchr::memchr(b[i], &b[start..]).map_or(b.len(), |p| start + p);
                value = Some(&html[start..end]);
                i = (end + 1).min(b.len());
            } else {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = Some(&html[start..i]);
            }
        }
        if href.is_none() && name.eq_ignore_ascii_case("href") {
            href = value.map(decode_entities);
        }
    }
}

/// Index of `needle` (ASCII, any case) in `hay` at or after `from`.
fn find_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|p| from + p)
}

/// Decodes numeric character references and the named ones listed in the
/// module's doc; anything else is left as written.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        match entity(rest) {
            Some((c, n)) => {
                out.push(c);
                rest = &rest[n..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character of the reference at the start of `s` (which starts with
/// `&`) and its length in bytes.
fn entity(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.get(1) == Some(&b'#') {
        let hex = matches!(b.get(2), Some(b'x' | b'X'));
        let start = if hex { 3 } else { 2 };
        let digits = b
            .get(start..)?
            .iter()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 || digits > 8 {
            return None;
        }
        let n = u32::from_str_radix(&s[start..start + digits], if hex { 16 } else { 10 }).ok()?;
        let mut len = start + digits;
        if b.get(len) == Some(&b';') {
            len += 1;
        }
        let c = char::from_u32(n)
            .filter(|&c| c != '\0')
            .unwrap_or('\u{FFFD}');
        return Some((c, len));
    }
    let name_len = b[1..]
        .iter()
        .take(8)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if b.get(1 + name_len) != Some(&b';') {
        return None;
    }
    let c = match &s[1..1 + name_len] {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "sol" => '/',
        "colon" => ':',
        "period" => '.',
        "commat" => '@',
        "num" => '#',
        "quest" => '?',
        "equals" => '=',
        "Tab" => '\t',
        "NewLine" => '\n',
        _ => return None,
    };
    Some((c, name_len + 2))
}

/// `host` is `domain` or under it.
fn within(host: &str, domain: &str) -> bool {
    host == domain
        || host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
}

/// `word` in `hay`, not inside a longer word or name (`example.com` in
/// `support@example.com`, not in `myexample.com`; `paypal` not in
/// `paypals`).
fn contains_word(hay: &str, word: &str) -> bool {
    let joins = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-');
    !word.is_empty()
        && hay.match_indices(word).any(|(i, _)| {
            !joins(hay[..i].chars().next_back()) && !joins(hay[i + word.len()..].chars().next())
        })
}

fn first_label(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The Unicode form of an ASCII domain (its `xn--` labels decoded).
fn unicode(ascii: &str) -> String {
    idna::domain_to_unicode(ascii).0
}

/// The UTS #39 skeleton, lower-cased and folded again: skeletons keep
/// case (`0` folds to `O`, not `o`), and domains and the names matched
/// here have none, so `g00gle` and `google` share one.
fn skel(s: &str) -> String {
    let once: String = skeleton(s).collect::<String>().to_lowercase();
    skeleton(&once).collect()
}

/// Printable ASCII, at most [`MAX_DESCRIBED`] characters, for a header.
fn clean(s: &str) -> String {
    s.chars()
        .take(MAX_DESCRIBED)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Scans a message with one text/html body, for recipients at
    /// example.com who protect PayPal and paypal.com.
    fn scan_with(from: &str, html: &str) -> Vec<Reason> {
        let ours = strings(&["example.com"]);
        let names = strings(&["PayPal", "paypal.com"]);
        let msg = format!(
            "From: {from}\r\nTo: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
        );
        let ctx = Context {
            our_domains: &ours,
            protected_names: &names,
        };
        scan(msg.as_bytes(), &ctx)
            .into_iter()
            .map(|f| f.reason)
            .collect()
    }

    fn html(body: &str) -> Vec<Reason> {
        scan_with("News <news@shop.test>", body)
    }

    fn sender(from: &str) -> Vec<Reason> {
        scan_with(from, "<p>hello</p>")
    }

    fn mismatch(shown: &str, target: &str) -> Reason {
        Reason::LinkTextMismatch {
            shown: shown.into(),
            target: target.into(),
        }
    }

    // Rule 1: link text against link target.

    #[test]
    fn link_text_naming_another_domain_is_flagged() {
        assert_eq!(
            html(r#"<a href="https://evil.test/login">www.paypal.com</a>"#),
            [mismatch("paypal.com", "evil.test")]
        );
    }

    #[test]
    fn link_text_url_on_another_site_is_flagged() {
        assert_eq!(
            html(r#"<a href="http://bank.example.evil.test/x">https://bank.example/login</a>"#),
            [mismatch("bank.example", "evil.test")]
        );
    }

    #[test]
    fn link_whose_text_is_its_own_url_is_clean() {
        assert_eq!(
            html(r#"<a href="https://bank.example/login">https://bank.example/login</a>"#),
            []
        );
        assert_eq!(
            html(r#"<a href="https://www.bank.example/">bank.example.</a>"#),
            []
        );
    }

    #[test]
    fn click_here_is_not_judged() {
        assert_eq!(html(r#"<a href="https://evil.test/">Click here</a>"#), []);
        assert_eq!(
            html(r#"<a href="https://evil.test/">Visit www.paypal.com today</a>"#),
            []
        );
    }

    #[test]
    fn subdomains_are_the_same_site() {
        assert_eq!(
            html(r#"<a href="https://example.com/">mail.example.com</a>"#),
            []
        );
        assert_eq!(
            html(r#"<a href="https://login.shop.co.uk/">www.shop.co.uk</a>"#),
            []
        );
        assert_eq!(
            html(r#"<a href="https://login.other.co.uk/">www.shop.co.uk</a>"#),
            [mismatch("shop.co.uk", "other.co.uk")]
        );
    }

    #[test]
    fn site_rule() {
        assert_eq!(site("a.b.example.com"), "example.com");
        assert_eq!(site("www.shop.co.uk"), "shop.co.uk");
        assert_eq!(site("bank.com.au"), "bank.com.au");
        assert_eq!(site("co.uk"), "co.uk");
        assert_eq!(site("x.y.co.com"), "co.com");
        assert_eq!(site("localhost"), "localhost");
    }

    #[test]
    fn file_names_in_link_text_are_not_domains() {
        assert_eq!(
            html(r#"<a href="https://files.shop.test/r">report.pdf</a>"#),
            []
        );
        assert_eq!(
            html(r#"<a href="https://files.shop.test/r">Version 2.0</a>"#),
            []
        );
    }

    #[test]
    fn anchor_text_with_nested_tags_is_read_whole() {
        assert_eq!(
            html(r#"<A HREF=https://evil.test/><b>www.</b><I>pay<span>pal</span></I>.com</A>"#),
            [mismatch("paypal.com", "evil.test")]
        );
    }

    #[test]
    fn entities_in_href_and_text_are_decoded() {
        assert_eq!(
            html(
                r#"<a href="https:&#x2F;&#47;evil&period;test/a?x=1&amp;y=2">www&#46;paypal&#x2e;com</a>"#
            ),
            [mismatch("paypal.com", "evil.test")]
        );
        assert_eq!(
            html(r#"<a href='https://shop.test/a?x=1&amp;y=2'>shop&period;test</a>"#),
            []
        );
    }

    #[test]
    fn quoted_printable_html_part_is_decoded() {
        let ours = strings(&["example.com"]);
        let msg = "From: a@shop.test\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nwww.paypal.com\r\n\
            --b\r\nContent-Type: text/html; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n\
            <a href=3D\"https://ev=\r\nil.test/\">www.paypal=\r\n.com</a>\r\n--b--\r\n";
        let ctx = Context {
            our_domains: &ours,
            protected_names: &[],
        };
        let found: Vec<Reason> = scan(msg.as_bytes(), &ctx)
            .into_iter()
            .map(|f| f.reason)
            .collect();
        assert_eq!(found, [mismatch("paypal.com", "evil.test")]);
    }

    #[test]
    fn script_and_data_hrefs_are_flagged_other_schemes_not() {
        assert_eq!(
            html("<a href=' JavaScript:alert(1)'>x</a><a href=\"java\tscript:x\">y</a>"),
            [Reason::ScriptLink {
                scheme: "javascript".into()
            }]
        );
        assert_eq!(
            html(r#"<a href="data:text/html;base64,PHA+">open</a>"#),
            [Reason::ScriptLink {
                scheme: "data".into()
            }]
        );
        assert_eq!(
            html(r#"<a href="mailto:x@evil.test">www.paypal.com</a><a href="/rel">a.com</a>"#),
            []
        );
    }

    #[test]
    fn ip_literal_hrefs_are_flagged() {
        let ip = |h: &str| Reason::IpLiteralLink { host: h.into() };
        assert_eq!(
            html(r#"<a href="http://192.0.2.1/login">Log in</a>"#),
            [ip("192.0.2.1")]
        );
        assert_eq!(
            html(r#"<a href="http://3221225985/">x</a>"#),
            [ip("3221225985")]
        );
        assert_eq!(
            html(r#"<a href="https://[2001:db8::1]:8443/">x</a>"#),
            [ip("[2001:db8::1]")]
        );
        assert_eq!(
            html(r#"<a href="https://user@0xc0.0.2.1/">x</a>"#),
            [ip("0xc0.0.2.1")]
        );
    }

    #[test]
    fn userinfo_does_not_hide_the_target() {
        assert_eq!(
            html(r#"<a href="https://www.paypal.com@evil.test/">www.paypal.com</a>"#),
            [mismatch("paypal.com", "evil.test")]
        );
        assert_eq!(
            html(r#"<a href="https:\\evil.test\x">bank.example</a>"#),
            [mismatch("bank.example", "evil.test")]
        );
    }

    #[test]
    fn newsletter_linking_to_its_own_site_is_clean() {
        let mut body =
            String::from("<html><style>a{}</style><!-- <a href=http://evil.test>x.com</a> -->");
        for i in 0..(MAX_ANCHORS + 100) {
            body.push_str(&format!(
                "<p><a href=\"https://news.shop.test/item/{i}?utm=1&amp;x\">shop.test</a> \
                 <a href=https://shop.test/u>Unsubscribe</a></p>"
            ));
        }
        assert_eq!(html(&body), []);
    }

    #[test]
    fn tokenizer_handles_quotes_comments_and_unclosed_anchors() {
        let got = anchors(
            "<a title='x > y' href=\"h1\">one<br>two</a><!-- <a href=no> --><a class=x HREF=h2 >\
             a < b<a href='h3'>three",
            10,
        );
        let pairs: Vec<(Option<&str>, &str)> = got
            .iter()
            .map(|a| (a.href.as_deref(), a.text.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                (Some("h1"), "one two"),
                (Some("h2"), "a < b"),
                (Some("h3"), "three")
            ]
        );
        assert_eq!(anchors("<a href=x>y</a><a href=z>w</a>", 1).len(), 1);
    }

    // Rule 2: IDN homographs.

    #[test]
    fn confusable_of_a_protected_domain_is_flagged() {
        // Cyrillic а (U+0430) in pаypal.com.
        let host = domain_key("p\u{430}ypal.com").unwrap();
        assert_eq!(
            html("<a href=\"https://p\u{430}ypal.com/\">Log in</a>"),
            [Reason::ConfusableHost {
                host,
                imitates: "paypal.com".into()
            }]
        );
        assert_eq!(
            html(r#"<a href="https://paypa1.com/">Log in</a>"#),
            [Reason::ConfusableHost {
                host: "paypa1.com".into(),
                imitates: "paypal.com".into()
            }]
        );
    }

    #[test]
    fn confusables_across_case_and_letter_pairs_are_flagged() {
        let names = strings(&["google.com"]);
        let ctx = Context {
            our_domains: &[],
            protected_names: &names,
        };
        let msg = b"From: <a@shop.test>\r\nContent-Type: text/html\r\n\r\n\
            <a href=https://g00gle.com/>Sign in</a><a href=https://mail.google.com/>Mail</a>\r\n";
        let found: Vec<Reason> = scan(msg, &ctx).into_iter().map(|f| f.reason).collect();
        assert_eq!(
            found,
            [Reason::ConfusableHost {
                host: "g00gle.com".into(),
                imitates: "google.com".into()
            }]
        );
        // "rn" for "m": two edits, caught by the skeleton.
        assert_eq!(
            sender("<x@exarnple.com>"),
            [Reason::LookalikeFromDomain {
                domain: "exarnple.com".into(),
                imitates: "example.com".into()
            }]
        );
    }

    #[test]
    fn confusable_of_a_protected_brand_is_flagged() {
        let host = domain_key("secure.p\u{430}ypal.net").unwrap();
        assert_eq!(
            html("<a href=\"https://secure.p\u{430}ypal.net/\">Log in</a>"),
            [Reason::ConfusableHost {
                host,
                imitates: "PayPal".into()
            }]
        );
        assert_eq!(html(r#"<a href="https://www.paypal.de/">Log in</a>"#), []);
    }

    #[test]
    fn mixed_script_host_is_flagged() {
        // Latin with one Greek ο (U+03BF).
        let host = domain_key("sh\u{3bf}p-bank.test").unwrap();
        assert_eq!(
            html("<a href=\"https://sh\u{3bf}p-bank.test/\">Log in</a>"),
            [Reason::MixedScriptHost { host: host.clone() }]
        );
        // The same host written in its xn-- form.
        assert_eq!(
            html(&format!("<a href=\"https://{host}/\">Log in</a>")),
            [Reason::MixedScriptHost { host: host.clone() }]
        );
        assert_eq!(
            sender(&format!("<a@{host}>")),
            [Reason::MixedScriptHost { host }]
        );
    }

    #[test]
    fn single_script_idns_are_clean() {
        for host in [
            "bücher.de",
            "例え.jp",
            "россия.рф",
            "xn--bcher-kva.de",
            "ελλάδα.gr",
        ] {
            assert_eq!(
                html(&format!("<a href=\"https://{host}/\">{host}</a>")),
                [],
                "{host}"
            );
            assert_eq!(sender(&format!("Shop <info@{host}>")), [], "{host}");
        }
    }

    // Rule 3: display names.

    #[test]
    fn display_name_claiming_our_domain_is_flagged() {
        let claim = || Reason::DisplayNameClaim {
            claims: "example.com".into(),
            domain: "evil.test".into(),
        };
        assert_eq!(
            sender("\"IT support example.com\" <x@evil.test>"),
            [claim()]
        );
        assert_eq!(sender("\"support@example.com\" <x@evil.test>"), [claim()]);
        // Confusable-folded: Cyrillic е (U+0435) in the name.
        assert_eq!(
            sender("\"\u{435}xample.com helpdesk\" <x@evil.test>"),
            [claim()]
        );
    }

    #[test]
    fn display_name_claiming_a_brand_is_flagged() {
        let claim = || Reason::DisplayNameClaim {
            claims: "PayPal".into(),
            domain: "evil.test".into(),
        };
        assert_eq!(sender("\"PAYPAL Service\" <x@evil.test>"), [claim()]);
        assert_eq!(sender("\"P\u{430}yP\u{430}l\" <x@evil.test>"), [claim()]);
        assert_eq!(
            sender("=?utf-8?q?PayPal_Kundendienst?= <x@mailer.test>"),
            [Reason::DisplayNameClaim {
                claims: "PayPal".into(),
                domain: "mailer.test".into()
            }]
        );
    }

    #[test]
    fn genuine_display_names_are_clean() {
        assert_eq!(sender("\"Example Support\" <help@example.com>"), []);
        assert_eq!(sender("\"example.com IT\" <it@mail.example.com>"), []);
        assert_eq!(sender("\"PayPal\" <service@paypal.com>"), []);
        assert_eq!(sender("\"PayPal\" <service@mail.paypal.co.uk>"), []);
        assert_eq!(sender("\"Alice\" <alice@evil.test>"), []);
        assert_eq!(sender("\"PayPals of mine\" <club@friends.test>"), []);
        assert_eq!(sender("\"myexample.com team\" <t@myexample.org>"), []);
    }

    // Rule 4: look-alike From domains.

    fn looks(domain: &str) -> Reason {
        Reason::LookalikeFromDomain {
            domain: domain.into(),
            imitates: "example.com".into(),
        }
    }

    #[test]
    fn from_domains_one_edit_away_are_flagged() {
        assert_eq!(sender("<x@exmaple.com>"), [looks("exmaple.com")]);
        assert_eq!(sender("<x@exampel.com>"), [looks("exampel.com")]);
        assert_eq!(sender("<x@exampl.com>"), [looks("exampl.com")]);
        assert_eq!(sender("<x@examplee.com>"), [looks("examplee.com")]);
        assert_eq!(sender("<x@mail.exannple.com>"), []); // two edits
    }

    #[test]
    fn from_domains_with_our_skeleton_are_flagged() {
        assert_eq!(sender("<x@examp1e.com>"), [looks("examp1e.com")]);
        let cyr = domain_key("\u{435}x\u{430}mple.com").unwrap();
        assert_eq!(sender("<x@\u{435}x\u{430}mple.com>"), [looks(&cyr)]);
    }

    #[test]
    fn from_domains_with_label_tricks_are_flagged() {
        assert_eq!(
            sender("<x@example.com.evil.test>"),
            [looks("example.com.evil.test")]
        );
        assert_eq!(sender("<x@example-com.test>"), [looks("example-com.test")]);
        assert_eq!(
            sender("<x@secure-example.com>"),
            [looks("secure-example.com")]
        );
    }

    #[test]
    fn unrelated_and_short_from_domains_are_clean() {
        assert_eq!(sender("<x@example.net>"), []);
        assert_eq!(sender("<x@example.community>"), []);
        assert_eq!(sender("<x@mail.example.com>"), []);
        let ours = strings(&["abc.de"]);
        let ctx = Context {
            our_domains: &ours,
            protected_names: &[],
        };
        assert_eq!(scan(b"From: <x@abd.de>\r\n\r\nhi\r\n", &ctx), []);
    }

    #[test]
    fn findings_are_deduplicated_and_bounded() {
        let mut body = String::new();
        for i in 0..100 {
            body.push_str(&format!("<a href=http://evil{i}.test/>www.paypal.com</a>"));
            body.push_str("<a href=http://evil.test/>www.paypal.com</a>");
        }
        let found = html(&body);
        assert_eq!(found.len(), MAX_FINDINGS);
        assert_eq!(found[1], mismatch("paypal.com", "evil.test"));
    }

    #[test]
    fn descriptions_are_one_ascii_line_without_addresses() {
        let found = scan_with(
            "\"support@example.com\" <boss@example-com.test>",
            "<a href=http://192.0.2.1/\u{0}\n>x</a><a href=javascript:x>y</a>\
             <a href=\"https://p\u{430}ypal.com/\">www.paypal.com</a>",
        );
        assert_eq!(found.len(), 6, "{found:?}");
        for r in found {
            let line = Finding { reason: r }.describe();
            assert!(
                line.chars().all(|c| c.is_ascii_graphic() || c == ' '),
                "{line}"
            );
            assert!(!line.contains('@'), "{line}");
        }
        assert_eq!(
            mismatch("paypal.com", "evil.test").describe(),
            "link text shows paypal.com but the link goes to evil.test"
        );
    }

    #[test]
    fn unparseable_messages_give_no_findings_or_headers_only() {
        let ours = strings(&["example.com"]);
        let ctx = Context {
            our_domains: &ours,
            protected_names: &[],
        };
        assert_eq!(scan(b"", &ctx), []);
        assert_eq!(scan(b"\xff\xfe\x00<a href=", &ctx), []);
        assert_eq!(scan(b"From: <x@exmaple.com>", &ctx).len(), 1);
    }

    /// Mutated messages (fixed seed): scanning never panics and stays
    /// within its bounds.
    #[test]
    fn mutated_messages_never_panic() {
        let mut rng = crate::testing::XorShift::new(0x9E37_79B9_7F4A_7C15);
        let mut next = move || rng.next();
        let ours = strings(&["example.com", "bücher.de"]);
        let names = strings(&["PayPal", "paypal.com"]);
        let ctx = Context {
            our_domains: &ours,
            protected_names: &names,
        };
        let base = "From: \"PayPal example.com\" <x@ex\u{430}mple.com.evil.test>\r\n\
            Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
            Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
            <a href=3D'https://user@[::1]:80/'>www.paypal.com</a><A HREF=3D&#x68;ttp://\u{440}\u{444}.x>\
            <b>b\u{fc}cher.de</b><!-- x --><script>'<a'</script>&#99999999;&amp\r\n--b--\r\n"
            .as_bytes()
            .to_vec();
        let bytes = [
            b'<', b'>', b'"', b'\'', b'&', b'#', b';', b'=', b'@', b'.', b':', b'/', 0xd0, 0xb0,
            0xff, b'\n',
        ];
        for _ in 0..5_000 {
            let mut m = base.clone();
            for _ in 0..(next() % 6 + 1) {
                let at = (next() as usize) % m.len().max(1);
                let byte = bytes[(next() % bytes.len() as u64) as usize];
                match next() % 4 {
                    0 if !m.is_empty() => m[at] = byte,
                    1 => m.insert(at.min(m.len()), byte),
                    2 => {
                        m.drain(at.min(m.len())..(at + 8).min(m.len()));
                    }
                    _ => m.truncate(at),
                }
            }
            let found = scan(&m, &ctx);
            assert!(found.len() <= MAX_FINDINGS);
            for f in found {
                assert!(!f.describe().contains(['\r', '\n']));
            }
        }
    }

    /// Random bytes (fixed seed) through the tokenizer and the URL
    /// readers: no panic, and the bounds hold.
    #[test]
    fn random_html_never_panics() {
        let mut rng = crate::testing::XorShift::new(0xD1B5_4A32_D192_ED03);
        let alphabet = "<>/=\"'&#;:@.a hrefAHREF0x9%[]-\u{430}\u{fc}\t\n!";
        let chars: Vec<char> = alphabet.chars().collect();
        for _ in 0..3_000 {
            let len = (rng.next() % 200) as usize;
            let s: String = (0..len)
                .map(|_| chars[(rng.next() % chars.len() as u64) as usize])
                .collect();
            for a in anchors(&s, 50) {
                assert!(a.text.len() <= MAX_ANCHOR_TEXT);
                let _ = a.href.as_deref().map(target);
                let _ = text_host(&a.text);
            }
            let _ = (
                target(&s),
                text_host(&s),
                decode_entities(&s),
                percent_decode(&s),
            );
        }
    }
}
