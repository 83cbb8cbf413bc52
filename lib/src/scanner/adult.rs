//! Adult content (`[scanner] adult_action`): a heuristic over the header
//! only — the Subject and the sender, never the body. It is meant to tag
//! mail that says what it is, not to judge what people write, and it will
//! miss mail that does not.
//!
//! A message is adult when, in this order of strength:
//!
//! 1. **Label**: its Subject starts with `SEXUALLY-EXPLICIT:`, the label
//!    the US CAN-SPAM Act requires of sexually oriented commercial mail
//!    (16 CFR 316.4(a)(1)); in any case, after white space;
//! 2. **Word**: its Subject (RFC 2047 encoded-words decoded) holds a
//!    listed word as a whole word, without regard to case;
//! 3. **Sender**: the domain of the envelope sender, or of an address in
//!    a From field, is one of `adult_senders`: `example.org` (that domain
//!    exactly) or `*.example` (any domain below `example`, not `example`
//!    itself).
//!
//! Before words are compared, the Subject and the listed words are folded:
//! lower case; the accents of Latin letters dropped (`é` is `e`, `ñ` is
//! `n`); soft hyphens and zero-width characters dropped; in a word that
//! has a letter, `0` `1` `3` `4` `5` `7` `@` `$` read as `o` `i` `e` `a`
//! `s` `t` `a` `s` (and `1` as `l` too: `s1ut`); and a run of one- or
//! two-letter pieces joined by single separators that are not white space
//! (`s.e.x`, `s-e-x`, `p*o*r*n`, `se.x`) read as one word. A word is a run
//! of letters, digits, `@` and `$`; everything else separates words, so
//! `Essex`, `Sussex`, `sextant`, `analysis`, `Scunthorpe` and `therapist`
//! hold no listed word. Not folded: letters spaced out with blanks
//! (`s e x`), repeated letters (`sexxx`), look-alike letters of other
//! scripts.
//!
//! The built-in lists (a language's list in `adult_words` replaces it;
//! `de = []` turns German off; other languages may be added):
//!
//! - `de`: pornos, nacktbilder, nacktfotos, erotik, ficken, fick, titten,
//!   schlampe, sexkontakte, sextreffen
//! - `en`: sex, porn, porno, xxx, nsfw, nudes, horny, milf, hentai,
//!   erotic, fetish, orgasm, blowjob, slut, sluts, dildo, sexcam, camgirl,
//!   camgirls, webcamsex
//! - `es`: sexo, desnuda, desnudas, erótica, eróticas, erótico, tetas,
//!   follar, cachonda, cachondas
//! - `fr`: sexe, salope, salopes, baise, érotique, érotiques, coquine,
//!   coquines, chaudasse
//!
//! A word in two lists is reported under the first language in
//! alphabetical order. A configured word must be letters only.
//!
//! Bounds: the first [`MAX_HEADER_BYTES`] of the message are read for
//! its header, and the first [`MAX_SUBJECT_CHARS`] characters of each
//! decoded Subject are compared. [`AdultFinding::describe`] says which
//! rule matched and never echoes the Subject, the word or the sender.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mailparse::MailAddr;

use crate::mail::header;
use crate::scanner::lists::domain_name;

/// Bytes of the message read for its header section.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Characters of each decoded Subject compared.
pub const MAX_SUBJECT_CHARS: usize = 1000;
/// Longest word of a list, in characters.
pub const MAX_WORD: usize = 64;
/// Most words in one language's list.
pub const MAX_WORDS: usize = 1000;
/// Most `adult_senders` entries.
pub const MAX_SENDERS: usize = 10_000;

/// The built-in lists, by language (the module documentation quotes them).
pub const BUILT_IN: &[(&str, &[&str])] = &[
    (
        "de",
        &[
            "pornos",
            "nacktbilder",
            "nacktfotos",
            "erotik",
            "ficken",
            "fick",
            "titten",
            "schlampe",
            "sexkontakte",
            "sextreffen",
        ],
    ),
    (
        "en",
        &[
            "sex",
            "porn",
            "porno",
            "xxx",
            "nsfw",
            "nudes",
            "horny",
            "milf",
            "hentai",
            "erotic",
            "fetish",
            "orgasm",
            "blowjob",
            "slut",
            "sluts",
            "dildo",
            "sexcam",
            "camgirl",
            "camgirls",
            "webcamsex",
        ],
    ),
    (
        "es",
        &[
            "sexo",
            "desnuda",
            "desnudas",
            "erótica",
            "eróticas",
            "erótico",
            "tetas",
            "follar",
            "cachonda",
            "cachondas",
        ],
    ),
    (
        "fr",
        &[
            "sexe",
            "salope",
            "salopes",
            "baise",
            "érotique",
            "érotiques",
            "coquine",
            "coquines",
            "chaudasse",
        ],
    ),
];

/// The label of 16 CFR 316.4(a)(1), folded to lower case.
const LABEL: &str = "sexually-explicit:";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AdultError {
    #[error(
        "scanner.adult_words: {lang:?} is not a language name (lower-case letters, \
         digits and -, at most 16)"
    )]
    Language { lang: String },
    #[error("scanner.adult_words.{lang}: a word is empty")]
    EmptyWord { lang: String },
    #[error(
        "scanner.adult_words.{lang}: {word:?} is not one word of letters \
         (at most {MAX_WORD})"
    )]
    NotAWord { lang: String, word: String },
    #[error("scanner.adult_words.{lang}: more than {MAX_WORDS} words")]
    TooManyWords { lang: String },
    #[error("scanner.adult_senders: {entry:?} is not a domain or *.domain")]
    Sender { entry: String },
    #[error("scanner.adult_senders: more than {MAX_SENDERS} entries")]
    TooManySenders,
}

/// Which rule found a message adult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdultReason {
    /// The Subject starts with `SEXUALLY-EXPLICIT:`.
    Label,
    /// The Subject holds a word of the list of `lang`.
    Word { lang: String },
    /// The sender's domain is listed.
    Sender,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdultFinding {
    pub reason: AdultReason,
}

impl AdultFinding {
    /// One ASCII line for a header and the log; never the Subject, the
    /// word or the sender.
    pub fn describe(&self) -> String {
        match &self.reason {
            AdultReason::Label => "subject has the SEXUALLY-EXPLICIT label".into(),
            AdultReason::Word { lang } => format!("subject has a listed word ({lang})"),
            AdultReason::Sender => "sender domain is listed as adult".into(),
        }
    }
}

/// The word lists and sender domains, folded once.
#[derive(Debug, Clone)]
pub struct AdultRules {
    /// Folded word -> index into `langs`.
    words: HashMap<String, usize>,
    langs: Vec<String>,
    domains: BTreeSet<String>,
    /// `*.example` kept as `.example`.
    suffixes: Vec<String>,
}

impl AdultRules {
    /// The built-in lists with `words` (`[scanner] adult_words`) over
    /// them, language by language, and the `adult_senders` entries.
    pub fn new(
        words: &BTreeMap<String, Vec<String>>,
        senders: &[String],
    ) -> Result<AdultRules, AdultError> {
        let mut lists: BTreeMap<&str, Vec<&str>> = BUILT_IN
            .iter()
            .map(|(lang, words)| (*lang, words.to_vec()))
            .collect();
        for (lang, list) in words {
            let tag_ok = (1..=16).contains(&lang.len())
                && lang.starts_with(|c: char| c.is_ascii_lowercase())
                && lang
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !tag_ok {
                return Err(AdultError::Language {
                    lang: crate::mail::text::bounded(lang, 40),
                });
            }
            if list.len() > MAX_WORDS {
                return Err(AdultError::TooManyWords { lang: lang.clone() });
            }
            lists.insert(lang, list.iter().map(String::as_str).collect());
        }
        let mut rules = AdultRules {
            words: HashMap::new(),
            langs: Vec::new(),
            domains: BTreeSet::new(),
            suffixes: Vec::new(),
        };
        for (lang, list) in lists {
            let index = rules.langs.len();
            rules.langs.push(lang.to_owned());
            for word in list {
                let folded = fold_word(word).map_err(|e| e.with_lang(lang, word))?;
                rules.words.entry(folded).or_insert(index);
            }
        }
        if senders.len() > MAX_SENDERS {
            return Err(AdultError::TooManySenders);
        }
        for entry in senders {
            let bad = || AdultError::Sender {
                entry: crate::mail::text::bounded(entry, 80),
            };
            let e = entry.trim();
            match e.strip_prefix("*.") {
                Some(d) => {
                    let d = domain_name(d).ok_or_else(bad)?;
                    rules.suffixes.push(format!(".{d}"));
                }
                None => {
                    rules.domains.insert(domain_name(e).ok_or_else(bad)?);
                }
            }
        }
        Ok(rules)
    }

    /// Whether the message (its header: Subject and From) or its envelope
    /// `sender` marks it as adult; the strongest finding.
    pub fn check(&self, message: &[u8], sender: &str) -> Option<AdultFinding> {
        let head = &message[..message.len().min(MAX_HEADER_BYTES)];
        let head = &head[..header::header_end(head)];
        let mut word: Option<usize> = None;
        let mut listed_sender = self.listed_sender(sender);
        for field in header::fields(head) {
            if field.is("Subject") {
                let subject = decoded(field.raw);
                if has_label(&subject) {
                    return Some(AdultFinding {
                        reason: AdultReason::Label,
                    });
                }
                word = word.or_else(|| self.listed_word(&subject));
            } else if field.is("From") && !listed_sender && self.has_senders() {
                listed_sender = from_addresses(field.raw)
                    .iter()
                    .any(|a| self.listed_sender(a));
            }
        }
        let reason = match (word, listed_sender) {
            (Some(index), _) => AdultReason::Word {
                lang: self.langs.get(index)?.clone(),
            },
            (None, true) => AdultReason::Sender,
            (None, false) => return None,
        };
        Some(AdultFinding { reason })
    }

    fn has_senders(&self) -> bool {
        !self.domains.is_empty() || !self.suffixes.is_empty()
    }

    fn listed_sender(&self, address: &str) -> bool {
        if !self.has_senders() {
            return false;
        }
        let a = address.trim();
        let a = a
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .unwrap_or(a);
        let Some(domain) = a.rsplit_once('@').and_then(|(_, d)| domain_name(d)) else {
            return false;
        };
        self.domains.contains(&domain) || self.suffixes.iter().any(|s| domain.ends_with(s.as_str()))
    }

    /// The language of the first listed word of `subject`.
    fn listed_word(&self, subject: &str) -> Option<usize> {
        candidates(subject)
            .iter()
            .find_map(|w| self.words.get(w.as_str()).copied())
    }
}

/// Why a listed word cannot be used (its language added by the caller).
enum WordError {
    Empty,
    NotAWord,
}

impl WordError {
    fn with_lang(self, lang: &str, word: &str) -> AdultError {
        let lang = lang.to_owned();
        match self {
            WordError::Empty => AdultError::EmptyWord { lang },
            WordError::NotAWord => AdultError::NotAWord {
                lang,
                word: crate::mail::text::bounded(word, 80),
            },
        }
    }
}

/// A listed word as compared: trimmed, folded, letters only.
fn fold_word(word: &str) -> Result<String, WordError> {
    let w = word.trim();
    if w.is_empty() {
        return Err(WordError::Empty);
    }
    let folded: String = fold(w).collect();
    if folded.is_empty()
        || folded.chars().count() > MAX_WORD
        || !folded.chars().all(char::is_alphabetic)
    {
        return Err(WordError::NotAWord);
    }
    Ok(folded)
}

/// A Subject field's value, RFC 2047 words decoded (bytes that are not
/// UTF-8 read as Latin-1, as mailparse does), cut to
/// [`MAX_SUBJECT_CHARS`] characters.
fn decoded(raw: &[u8]) -> String {
    let value = match mailparse::parse_header(raw) {
        Ok((h, _)) => h.get_value(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    };
    value.chars().take(MAX_SUBJECT_CHARS).collect()
}

fn has_label(subject: &str) -> bool {
    let s = subject.trim_start();
    s.get(..LABEL.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(LABEL))
}

/// The addresses of a From field (mailparse's parser; none when it fails).
fn from_addresses(raw: &[u8]) -> Vec<String> {
    let Ok((h, _)) = mailparse::parse_header(raw) else {
        return Vec::new();
    };
    let Ok(list) = mailparse::addrparse_header(&h) else {
        return Vec::new();
    };
    list.iter()
        .flat_map(|a| match a {
            MailAddr::Single(s) => vec![s.addr.clone()],
            MailAddr::Group(g) => g.addrs.iter().map(|s| s.addr.clone()).collect(),
        })
        .collect()
}

/// Lower case, Latin accents dropped, invisible characters dropped.
fn fold(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| {
            !matches!(
                c,
                '\u{ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
            )
        })
        .map(unaccented)
}

/// The base letter of a lower-case Latin letter with an accent (Latin-1
/// and the common letters of Latin Extended-A).
fn unaccented(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ł' | 'ľ' => 'l',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ř' => 'r',
        'ś' | 'š' | 'ş' => 's',
        'ť' | 'ţ' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '@' || c == '$'
}

/// A token's look-alikes read as letters, when it has a letter at all
/// (`2024` stays `2024`); with `1` as `i` and, second, as `l`.
fn unleet(token: &str) -> [Option<String>; 2] {
    if !token.chars().any(char::is_alphabetic) {
        return [Some(token.to_owned()), None];
    }
    let read = |one: char| -> String {
        token
            .chars()
            .map(|c| match c {
                '0' => 'o',
                '1' => one,
                '3' => 'e',
                '4' | '@' => 'a',
                '5' | '$' => 's',
                '7' => 't',
                other => other,
            })
            .collect()
    };
    let second = token.contains('1').then(|| read('l'));
    [Some(read('i')), second]
}

/// The words of a Subject to look up: each word, folded, and each run of
/// at least two one- or two-character pieces joined by single non-blank
/// separators, joined up.
fn candidates(subject: &str) -> Vec<String> {
    let tokens = tokens(subject);
    let mut out: Vec<String> = Vec::new();
    for (t, _) in &tokens {
        out.extend(unleet(t).into_iter().flatten());
    }
    let short = |t: &str| t.chars().count() <= 2;
    let mut i = 0;
    while i < tokens.len() {
        let mut j = i;
        while j + 1 < tokens.len() && tokens[j].1 && short(&tokens[j].0) && short(&tokens[j + 1].0)
        {
            j += 1;
        }
        if j > i {
            let joined: String = tokens[i..=j].iter().map(|(t, _)| t.as_str()).collect();
            out.extend(unleet(&joined).into_iter().flatten());
        }
        i = j + 1;
    }
    out
}

/// The words of `subject` (runs of word characters, folded), each with
/// whether exactly one separator that is not white space joins it to the
/// next.
fn tokens(subject: &str) -> Vec<(String, bool)> {
    let mut tokens: Vec<(String, bool)> = Vec::new();
    let mut current = String::new();
    let mut gap = 0;
    let mut gap_blank = false;
    for c in fold(subject) {
        if is_word_char(c) {
            if current.is_empty()
                && let Some(last) = tokens.last_mut()
            {
                last.1 = gap == 1 && !gap_blank;
            }
            gap = 0;
            current.push(c);
        } else {
            if !current.is_empty() {
                tokens.push((std::mem::take(&mut current), false));
            }
            gap += 1;
            gap_blank = c.is_whitespace();
        }
    }
    if !current.is_empty() {
        tokens.push((current, false));
    }
    tokens
}

#[cfg(test)]
mod tests;
