//! The man pages say what the code does, and are clean mdoc.
//!
//! postern writes its man pages by hand, so these checks keep them honest:
//! every flag in a tool's `--help` is documented in its page and every flag
//! a page names exists; the keys of postern.toml(5) are exactly the keys of
//! the serialized default configuration, with its values as the documented
//! defaults; the examples of
//! postern.toml(5) and postern-job(5) are read by the real parsers; the
//! exit codes and status codes of each EXIT STATUS are the ones the tools
//! give when driven into each situation; and `mandoc -Tlint -Wwarning`
//! finds nothing to say about any page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use postern::config::Config;
use postern::mail::job::JobReader;

mod util;

use util::{DELIVERER, RECEIVER};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn page(name: &str) -> String {
    read(&root().join("man").join(name))
}

/// Every file in man/, sorted.
fn pages() -> Vec<PathBuf> {
    let dir = root().join("man");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("man/ entry").path())
        .filter(|p| p.is_file())
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "no man pages in {}", dir.display());
    pages
}

// ---------------------------------------------------------------------------
// mdoc, just enough of it

/// The source lines of a page with the section (`.Sh`) each is in.
fn lines_by_section(src: &str) -> Vec<(String, &str)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in src.lines() {
        if let Some(title) = line.strip_prefix(".Sh ") {
            section = title.trim().trim_matches('"').to_owned();
        }
        out.push((section.clone(), line));
    }
    out
}

/// The arguments of every `Fl` macro on a macro line, as flags:
/// `.Op Fl c Ar file` gives `-c`, `Fl -config` gives `--config`, `Fl -`
/// gives `--` (the end of options).
fn fl_flags(line: &str) -> Vec<String> {
    if !line.starts_with('.') {
        return Vec::new();
    }
    let words: Vec<&str> = line[1..].split_whitespace().collect();
    let mut flags = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if *w != "Fl" {
            continue;
        }
        match words.get(i + 1) {
            Some(name) if !matches!(*name, "|" | "," | ";" | ":" | "." | ")" | "(" | "Ns") => {
                flags.push(format!("-{}", name.replace("\\-", "-")));
            }
            _ => {}
        }
    }
    flags
}

/// An option as a page documents it: the flags of one `.It Fl ...` item and
/// whether the item names an argument (`Ar`).
#[derive(Debug)]
struct DocOption {
    flags: Vec<String>,
    takes_value: bool,
}

fn documented_options(src: &str) -> Vec<DocOption> {
    src.lines()
        .filter(|l| l.starts_with(".It Fl "))
        .map(|l| DocOption {
            flags: fl_flags(l),
            takes_value: l.split_whitespace().any(|w| w == "Ar"),
        })
        .collect()
}

/// Every flag a page names anywhere.
fn all_flags(src: &str) -> BTreeSet<String> {
    src.lines().flat_map(fl_flags).collect()
}

/// The text of the literal displays (`.Bd -literal` ... `.Ed`) in a
/// section, with mdoc escapes undone.
fn literal_blocks(src: &str, section: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for (sec, line) in lines_by_section(src) {
        if sec != section {
            continue;
        }
        if line.starts_with(".Bd -literal") {
            current = Some(String::new());
        } else if line.starts_with(".Ed") {
            if let Some(block) = current.take() {
                blocks.push(block);
            }
        } else if let Some(block) = current.as_mut() {
            let text = line
                .replace("\\e", "\u{0}")
                .replace("\\&", "")
                .replace("\\-", "-")
                .replace('\u{0}', "\\");
            block.push_str(&text);
            block.push('\n');
        }
    }
    assert!(current.is_none(), "unterminated .Bd in section {section}");
    blocks
}

// ---------------------------------------------------------------------------
// --help

/// The options of a tool's `--help`: flag -> takes a value.
struct Help {
    options: BTreeMap<String, bool>,
    usage: String,
}

fn help(bin: &str) -> Help {
    help_of(bin, &[])
}

/// The options of `bin SUBCOMMAND... --help`.
fn help_of(bin: &str, subcommand: &[&str]) -> Help {
    let out = Command::new(bin)
        .args(subcommand)
        .arg("--help")
        .env_remove("POSTERN_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin} --help: {e}"));
    assert!(out.status.success(), "{bin} --help exited {}", out.status);
    let text = String::from_utf8(out.stdout).expect("--help is UTF-8");
    let usage = text
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_else(|| panic!("{bin} --help has no Usage: line:\n{text}"))
        .to_owned();
    let mut options = BTreeMap::new();
    let mut in_options = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_options = line.trim_end() == "Options:";
            continue;
        }
        let item = line.trim_start();
        if !in_options || !item.starts_with('-') {
            continue; // a wrapped description line
        }
        // `-c, --config <FILE>  Configuration file ...`: the part before the
        // description.
        let spec = item.split("  ").next().unwrap_or(item);
        let words: Vec<&str> = spec
            .split([',', ' ', '='])
            .filter(|w| !w.is_empty())
            .collect();
        let takes_value = words
            .iter()
            .any(|w| w.starts_with('<') || w.starts_with('['));
        for w in words.iter().filter(|w| w.starts_with('-')) {
            options.insert((*w).to_owned(), takes_value);
        }
    }
    assert!(
        !options.is_empty(),
        "found no options in {bin} --help:\n{text}"
    );
    Help { options, usage }
}

fn check_flags(bin: &str, page_name: &str) {
    check_flags_of(bin, page_name, &[]);
}

/// Like `check_flags`, for a tool with subcommands: the options of the
/// tool and of each subcommand together.
fn check_flags_of(bin: &str, page_name: &str, subcommands: &[&[&str]]) {
    let mut help = help(bin);
    for sub in subcommands {
        help.options.extend(help_of(bin, sub).options);
    }
    let src = page(page_name);
    let documented = documented_options(&src);
    let mut problems = Vec::new();

    // Every flag of --help has an item in the option list, and the item
    // shows an argument exactly when the flag takes one.
    for (flag, takes_value) in &help.options {
        match documented.iter().find(|o| o.flags.contains(flag)) {
            None => problems.push(format!(
                "{flag} is in --help but has no `.It Fl {}` item",
                &flag[1..]
            )),
            Some(o) if o.takes_value != *takes_value => problems.push(format!(
                "{flag}: --help says it {} a value, the page says it {}",
                if *takes_value { "takes" } else { "takes no" },
                if o.takes_value {
                    "takes one (Ar)"
                } else {
                    "takes none"
                }
            )),
            Some(_) => {}
        }
    }
    // Every flag the page names, in the synopsis, the option list or the
    // text, is one the tool has.
    for flag in all_flags(&src) {
        if flag == "--" {
            if !help.usage.contains("-- ") {
                problems.push(format!(
                    "the page uses `Fl -` (end of options) but the usage has none: {}",
                    help.usage
                ));
            }
        } else if !help.options.contains_key(&flag) {
            problems.push(format!("{flag} is in the page but not in --help"));
        }
    }
    let synopsis: BTreeSet<String> = lines_by_section(&src)
        .into_iter()
        .filter(|(sec, _)| sec == "SYNOPSIS")
        .flat_map(|(_, l)| fl_flags(l))
        .collect();
    assert!(!synopsis.is_empty(), "{page_name}: SYNOPSIS names no flag");
    assert!(
        problems.is_empty(),
        "{page_name} and `{bin} --help` disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn receiver_flags_match_its_page() {
    check_flags(RECEIVER, "postern-receiver.1");
}

#[test]
fn rewriter_flags_match_its_page() {
    check_flags_of(util::REWRITER, "postern-rewriter.1", &[&["explain"]]);
}

#[test]
fn alias_flags_match_its_page() {
    let commands: &[&[&str]] = &[
        &["domain", "add"],
        &["domain", "remove"],
        &["domain", "list"],
        &["domain", "verify"],
        &["domain", "show"],
        &["domain", "set"],
        &["domain", "mode"],
        &["alias", "add"],
        &["alias", "remove"],
        &["alias", "enable"],
        &["alias", "disable"],
        &["alias", "list"],
        &["alias", "show"],
        &["key", "set"],
        &["key", "remove"],
        &["key", "show"],
        &["key", "list"],
        &["key", "policy"],
        &["import"],
        &["export"],
        &["sync"],
        &["member", "add"],
        &["member", "remove"],
        &["member", "ban"],
        &["member", "unban"],
        &["member", "list"],
        &["member", "show"],
    ];
    check_flags_of(util::ALIAS, "postern-alias.8", commands);
}

#[test]
fn scanner_flags_match_its_page() {
    check_flags(util::SCANNER, "postern-scanner.1");
}

#[test]
fn encryptor_flags_match_its_page() {
    check_flags(util::ENCRYPTOR, "postern-encryptor.1");
}

#[test]
fn deliverer_flags_match_its_page() {
    check_flags(DELIVERER, "postern-deliverer.8");
}

const QUEUE: &str = env!("CARGO_BIN_EXE_postern-queue");

#[test]
fn queue_flags_match_its_page() {
    let commands: &[&[&str]] = &[
        &["list"],
        &["show"],
        &["flush"],
        &["hold"],
        &["release"],
        &["delete"],
    ];
    check_flags_of(QUEUE, "postern-queue.8", commands);
}

/// Pages that are not a tool's own may name only flags some tool has.
#[test]
fn other_pages_name_only_real_flags() {
    let mut known: BTreeSet<String> = help(RECEIVER).options.into_keys().collect();
    known.extend(help(DELIVERER).options.into_keys());
    // postern.toml(5) [sync] names a flag of postern-alias sync.
    known.extend(help_of(util::ALIAS, &["sync"]).options.into_keys());
    known.insert("--".into());
    for name in ["postern.7", "postern.toml.5", "postern-job.5"] {
        for flag in all_flags(&page(name)) {
            assert!(
                known.contains(&flag),
                "{name} names {flag}, which no tool has"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// postern.toml(5) against the configuration itself

/// Every key of the configuration (`hostname`, `spool.directory`, ...)
/// with its built-in default as TOML value text (`"300s"`, `50`, `false`),
/// or `None` for a key without a value by default (`log_file`). Taken from
/// the serialized `Config::default()`, so a field added, renamed or
/// skipped in lib/src/config.rs shows here as it shows to a parser.
fn config_defaults() -> BTreeMap<String, Option<String>> {
    let value = serde_json::to_value(Config::default()).expect("the default config serializes");
    let mut keys = BTreeMap::new();
    flatten_defaults("", &value, &mut keys);
    assert!(
        keys.len() > 5,
        "too few keys in the default config: {keys:?}"
    );
    keys
}

fn flatten_defaults(
    prefix: &str,
    value: &serde_json::Value,
    out: &mut BTreeMap<String, Option<String>>,
) {
    use serde_json::Value;
    let serde_json::Value::Object(fields) = value else {
        panic!("the default config at {prefix:?} is not a table: {value}");
    };
    for (name, v) in fields {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let text = match v {
            Value::Object(_) if prefix.is_empty() => {
                flatten_defaults(&key, v, out);
                continue;
            }
            // A table inside a table is a map of the operator's (say
            // `deliverer.routes`): one key, no fixed default.
            Value::Object(_) => None,
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            // A JSON string of these characters is written as TOML writes it.
            Value::String(_) => Some(v.to_string()),
            // Arrays of strings, as TOML writes them: ["a", "b"].
            Value::Array(items) => Some(format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        out.insert(key, text);
    }
}

fn config_keys() -> BTreeSet<String> {
    config_defaults().into_keys().collect()
}

/// A key as postern.toml(5) documents it, with the default its text gives
/// (`None` for keys whose default is not a fixed value).
#[derive(Debug)]
struct DocKey {
    key: String,
    default: Option<String>,
}

/// Keys are `.It Cm NAME` items under `.Ss Top-level keys` and under
/// `.Ss The [TABLE] table`. The default is in the item's text, as
/// `Default: 50.` or `Default:` followed by `.Qq 300s .` or `.Cm false .`.
fn documented_keys() -> Vec<DocKey> {
    let src = page("postern.toml.5");
    let lines: Vec<&str> = src.lines().collect();
    let mut table: Option<String> = None;
    let mut keys = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(title) = line.strip_prefix(".Ss ") {
            table = if title.trim() == "Top-level keys" {
                Some(String::new())
            } else {
                title
                    .split_once('[')
                    .and_then(|(_, r)| r.split_once(']'))
                    .map(|(t, _)| t.to_owned())
            };
            continue;
        }
        if line.starts_with(".Sh ") {
            table = None;
        }
        let Some(t) = &table else { continue };
        let Some(name) = line
            .strip_prefix(".It Cm ")
            .and_then(|r| r.split_whitespace().next())
        else {
            continue;
        };
        let key = if t.is_empty() {
            name.to_owned()
        } else {
            format!("{t}.{name}")
        };
        let mut default = None;
        for (j, l) in lines.iter().enumerate().skip(i + 1) {
            if l.starts_with(".It ") || l.starts_with(".El") {
                break;
            }
            if let Some(rest) = l.strip_prefix("Default:") {
                let rest = rest.trim();
                default = if rest.is_empty() {
                    lines.get(j + 1).and_then(|next| {
                        let mut w = next.split_whitespace();
                        match (w.next(), w.next()) {
                            (Some(".Qq"), Some("\"\"")) => Some("\"\"".to_owned()),
                            (Some(".Qq"), Some(v)) => Some(format!("\"{v}\"")),
                            (Some(".Cm"), Some(v)) => Some(v.to_owned()),
                            // A list, written whole: `.Li ["a", "b"]`.
                            (Some(".Li"), Some(_)) => {
                                next.strip_prefix(".Li ").map(|v| v.trim().to_owned())
                            }
                            _ => None,
                        }
                    })
                } else {
                    rest.split_whitespace()
                        .next()
                        .map(|w| w.trim_end_matches(['.', ',']))
                        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
                        .map(str::to_owned)
                };
                break;
            }
        }
        keys.push(DocKey { key, default });
    }
    keys
}

#[test]
fn documented_keys_are_the_config_fields() {
    let config = config_keys();
    let documented: BTreeSet<String> = documented_keys().into_iter().map(|k| k.key).collect();
    let undocumented: Vec<&String> = config.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&config).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "postern.toml(5) and the configuration (lib/src/config.rs) disagree:\n  \
         in the config but not documented: {undocumented:?}\n  \
         documented but not in the config: {unknown:?}"
    );
}

/// `key = value` lines of a TOML example, as `table.key` -> value text;
/// commented-out keys (`# key = ...`) map to `None`.
fn example_values(block: &str) -> BTreeMap<String, Option<String>> {
    let mut table = String::new();
    let mut out = BTreeMap::new();
    for line in block.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.to_owned();
            continue;
        }
        let (commented, t) = match t.strip_prefix('#') {
            Some(rest) => (true, rest.trim()),
            None => (false, t),
        };
        let Some((k, v)) = t.split_once(" = ") else {
            continue;
        };
        if k.contains(' ') {
            continue; // prose in a comment
        }
        let key = if table.is_empty() {
            k.to_owned()
        } else {
            format!("{table}.{k}")
        };
        out.insert(key, (!commented).then(|| v.trim().to_owned()));
    }
    out
}

#[test]
fn toml_examples_parse_and_the_first_is_the_defaults() {
    let src = page("postern.toml.5");
    let blocks = literal_blocks(&src, "EXAMPLES");
    assert!(
        blocks.len() >= 2,
        "postern.toml(5) EXAMPLES has too few files"
    );
    for (i, block) in blocks.iter().enumerate() {
        if let Err(e) = Config::parse(block, Path::new("postern.toml(5) example")) {
            panic!(
                "example {} of postern.toml(5) is refused: {e}\n{block}",
                i + 1
            );
        }
    }
    // The first example is every key at its default: it must read as the
    // built-in defaults, and list every key.
    let defaults = Config::parse(&blocks[0], Path::new("defaults")).expect("parsed above");
    assert_eq!(
        format!("{defaults:?}"),
        format!("{:?}", Config::default()),
        "the first example of postern.toml(5) is not the built-in defaults"
    );
    let listed = example_values(&blocks[0]);
    let defaults = config_defaults();
    let listed_keys: BTreeSet<String> = listed.keys().cloned().collect();
    let keys: BTreeSet<String> = defaults.keys().cloned().collect();
    assert_eq!(
        listed_keys, keys,
        "the defaults example of postern.toml(5) does not list every key"
    );
    // Each value of the example is the built-in default as it serializes
    // (durations as "300s" or "5d", sizes as "10G"). A key the example
    // leaves commented out has no fixed default: none at all, or the
    // host's name for `hostname`.
    for (key, default) in &defaults {
        match (listed.get(key).cloned().flatten(), default) {
            (None, None) => {}
            (None, Some(_)) if key == "hostname" => {}
            (in_example, default) => assert_eq!(
                in_example.as_ref(),
                default.as_ref(),
                "postern.toml(5): the defaults example and the built-in default disagree on {key}"
            ),
        }
    }
    // And the serialized defaults, written out as a file, read back as
    // the defaults.
    let mut text = String::new();
    let mut table = "";
    let (top, tables): (Vec<_>, Vec<_>) = defaults.iter().partition(|(k, _)| !k.contains('.'));
    for (key, value) in top.into_iter().chain(tables) {
        let Some(value) = value else { continue };
        let (t, name) = key.split_once('.').unwrap_or(("", key));
        if t != table {
            text.push_str(&format!("[{t}]\n"));
            table = t;
        }
        text.push_str(&format!("{name} = {value}\n"));
    }
    let reread = Config::parse(&text, Path::new("serialized defaults"))
        .unwrap_or_else(|e| panic!("the serialized defaults do not read back: {e}\n{text}"));
    assert_eq!(
        format!("{reread:?}"),
        format!("{:?}", Config::default()),
        "the serialized defaults read back differently:\n{text}"
    );
    // The default each key's text gives is the one in the example.
    for doc in documented_keys() {
        let in_example = listed.get(&doc.key).cloned().flatten();
        assert_eq!(
            doc.default, in_example,
            "postern.toml(5): the text and the defaults example disagree on {}",
            doc.key
        );
    }
}

// ---------------------------------------------------------------------------
// postern-job(5) against lib/src/job.rs

#[test]
fn job_example_is_read_and_written_back_byte_for_byte() {
    let src = page("postern-job.5");
    let jobs: Vec<String> = literal_blocks(&src, "EXAMPLES")
        .into_iter()
        .filter(|b| b.starts_with("postern-job "))
        .collect();
    assert_eq!(jobs.len(), 1, "postern-job(5) EXAMPLES should hold one job");
    let bytes = jobs[0].as_bytes();
    let mut reader = JobReader::new(bytes, u64::MAX);
    let job = match reader.next_job() {
        Ok(Some(job)) => job,
        Ok(None) => panic!("the example of postern-job(5) holds no job"),
        Err(e) => panic!("the example of postern-job(5) does not read: {e}"),
    };
    assert!(
        matches!(reader.next_job(), Ok(None)),
        "the example of postern-job(5) has bytes after its job"
    );
    assert_eq!(
        String::from_utf8_lossy(&job.to_bytes()),
        jobs[0],
        "the example of postern-job(5) is not what the writer writes"
    );
}

// ---------------------------------------------------------------------------
// Every page

// ---------------------------------------------------------------------------
// EXIT STATUS against what the tools do

/// The EXIT STATUS section of a page: each code with the enhanced status
/// codes its items name (`5.3.4`, `4.3.0`). A page may list a code twice
/// (postern-maildb(8) has a second list for some commands): the sets merge.
fn documented_exits(name: &str) -> BTreeMap<i32, BTreeSet<String>> {
    let src = page(name);
    let mut exits: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<i32> = None;
    for (sec, line) in lines_by_section(&src) {
        if sec != "EXIT STATUS" {
            continue;
        }
        if let Some(n) = line.strip_prefix(".It ") {
            let n: i32 = n
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: EXIT STATUS item `{line}` is not a number"));
            exits.entry(n).or_default();
            current = Some(n);
        } else if line.starts_with(".El") || line.starts_with(".Pp") {
            current = None;
        } else if let Some(n) = current {
            exits.entry(n).or_default().extend(enhanced_codes(line));
        }
    }
    assert!(
        exits.contains_key(&0) && exits.contains_key(&75),
        "{name}: read no exit codes from its EXIT STATUS: {exits:?}"
    );
    exits
}

/// The RFC 3463 codes in a line of text: `class.subject.detail`.
fn enhanced_codes(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
        .collect()
}

/// What a tool did in one situation: its exit code and the enhanced code
/// its status line starts with (None on success).
struct Seen {
    situation: &'static str,
    code: i32,
    status: Option<String>,
}

fn seen(situation: &'static str, out: &util::Output) -> Seen {
    let status = (out.code != 0).then(|| {
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "{situation}: a failure says exactly one line: {:?}",
            out.stderr
        );
        out.status_line()
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    Seen {
        situation,
        code: out.code,
        status,
    }
}

/// Every situation's code and status line are listed in the page, under
/// that code. With `complete`, every code and status the page lists was
/// also seen, so that the page promises nothing the tool does not do.
fn check_exits(page_name: &str, seen: &[Seen], complete: bool) {
    let documented = documented_exits(page_name);
    let mut problems = Vec::new();
    for s in seen {
        match (documented.get(&s.code), &s.status) {
            (None, _) => problems.push(format!(
                "{}: exit {} is not in EXIT STATUS",
                s.situation, s.code
            )),
            (Some(codes), Some(status)) if !codes.contains(status) => problems.push(format!(
                "{}: exit {} with {status}, but the page lists {codes:?} for {}",
                s.situation, s.code, s.code
            )),
            (Some(_), None) if s.code != 0 => {
                problems.push(format!("{}: exit {} without a status", s.situation, s.code))
            }
            _ => {}
        }
    }
    if complete {
        for (code, statuses) in &documented {
            if !seen.iter().any(|s| s.code == *code) {
                problems.push(format!(
                    "exit {code} is documented but no situation gives it"
                ));
            }
            for status in statuses {
                if !seen
                    .iter()
                    .any(|s| s.code == *code && s.status.as_deref() == Some(status))
                {
                    problems.push(format!(
                        "exit {code} with {status} is documented but no situation gives it"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{page_name}, EXIT STATUS, against what the tool did:\n  {}",
        problems.join("\n  ")
    );
}

fn site_with(extra: &str) -> util::Site {
    util::Site::with_extra(util::closed_port(), extra)
}

/// `-f a@example.org -- RCPT...` for `n` recipients.
fn envelope_args(n: usize) -> Vec<String> {
    let mut args = vec!["-f".to_owned(), "a@example.org".to_owned(), "--".to_owned()];
    args.extend((0..n).map(|i| format!("r{i}@example.net")));
    args
}

fn run_with(site: &util::Site, bin: &str, args: &[String], stdin: &[u8]) -> util::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    site.run(bin, &args, stdin)
}

/// The situations of postern-receiver(1) EXIT STATUS.
#[test]
fn receiver_exit_statuses_are_the_documented_ones() {
    let site = site_with("message_size_limit = 100000\nhop_count_limit = 3");
    let ok = util::message("exit", "body");
    let one = envelope_args(1);
    let with = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let mut seen_ = vec![
        seen("a message", &run_with(&site, RECEIVER, &one, &ok)),
        seen("an empty message", &run_with(&site, RECEIVER, &one, b"")),
        seen(
            "a message with no header",
            &run_with(&site, RECEIVER, &one, b"hello\n\nbody\n"),
        ),
        seen(
            "a bad sender",
            &run_with(
                &site,
                RECEIVER,
                &with(&["-f", "a b@x.org", "--", "c@d.org"]),
                &ok,
            ),
        ),
        seen(
            "a bad recipient",
            &run_with(&site, RECEIVER, &with(&["-f", "a@x.org", "--", "c"]), &ok),
        ),
        seen(
            "a message over message_size_limit",
            &run_with(&site, RECEIVER, &one, &vec![b'x'; 100_001]),
        ),
        seen(
            "a loop",
            &run_with(
                &site,
                RECEIVER,
                &one,
                b"Received: 1\nReceived: 2\nDelivered-To: x\n\nb\n",
            ),
        ),
        seen(
            "too many recipients",
            &run_with(
                &site,
                RECEIVER,
                &envelope_args(postern::mail::job::MAX_RECIPIENTS + 1),
                &ok,
            ),
        ),
        seen(
            "an unknown option",
            &run_with(
                &site,
                RECEIVER,
                &with(&["--frobnicate", "-f", "a@x.org", "--", "c@d.org"]),
                &ok,
            ),
        ),
        seen(
            "no recipients",
            &run_with(&site, RECEIVER, &with(&["-f", "a@x.org", "--"]), &ok),
        ),
        seen(
            "a config with an unknown key",
            &util::run(
                RECEIVER,
                &["-f", "a@x.org", "--", "c@d.org"],
                &ok,
                &[("POSTERN_CONFIG", &bad_config(&site))],
            ),
        ),
    ];
    // Standard output that cannot be written (a full disk).
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Command::new(RECEIVER)
        .args(["-f", "a@x.org", "--", "c@d.org"])
        .env("POSTERN_CONFIG", &site.config)
        .stdin(std::fs::File::open(write_temp(&site, "msg", &ok)).expect("message file"))
        .stdout(full)
        .output()
        .expect("run the receiver");
    let out = util::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    seen_.push(seen("standard output on a full disk", &out));
    check_exits("postern-receiver.1", &seen_, true);
}

fn write_temp(site: &util::Site, name: &str, bytes: &[u8]) -> PathBuf {
    let path = site.path().join(name);
    std::fs::write(&path, bytes).expect("write a temporary file");
    path
}

fn bad_config(site: &util::Site) -> PathBuf {
    write_temp(site, "bad.toml", b"hostname = \"mx\"\nunknown_key = 1\n")
}

/// The situations of postern-deliverer(8) EXIT STATUS.
#[test]
fn deliverer_exit_statuses_are_the_documented_ones() {
    let sink = util::smtp::Server::start(util::smtp::Script::default());
    let up = util::Site::new(sink.port);
    let down = site_with("message_size_limit = 100000\nhop_count_limit = 3");
    let ok = util::message("exit", "body");
    let job = |site: &util::Site| {
        let out = run_with(site, RECEIVER, &envelope_args(1), &ok);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let with = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let none: Vec<String> = Vec::new();
    let mut seen_ = vec![
        seen(
            "a job delivered",
            &run_with(&up, DELIVERER, &none, &job(&up)),
        ),
        seen("no input", &run_with(&down, DELIVERER, &none, b"")),
    ];
    assert_eq!(sink.received().len(), 1, "the job was delivered");
    seen_.push(seen(
        "the relay down",
        &run_with(&down, DELIVERER, &none, &job(&down)),
    ));
    assert_eq!(down.queue("deferred").len(), 1, "the job was spooled");
    seen_.push(seen(
        "a queue run",
        &run_with(&down, DELIVERER, &with(&["--run-queue"]), b""),
    ));
    let good = String::from_utf8(job(&down)).expect("a job is text up to its message");
    let size_line = good
        .lines()
        .find(|l| l.starts_with("size: "))
        .expect("a size line")
        .to_owned();
    seen_.extend([
        seen(
            "not a job",
            &run_with(&down, DELIVERER, &none, b"Subject: not a job\n\n"),
        ),
        seen(
            "an unknown job version",
            &run_with(
                &down,
                DELIVERER,
                &none,
                good.replacen("postern-job 1", "postern-job 9", 1)
                    .as_bytes(),
            ),
        ),
        seen(
            "a job larger than allowed",
            &run_with(
                &down,
                DELIVERER,
                &none,
                good.replacen(&size_line, "size: 99999999999", 1).as_bytes(),
            ),
        ),
        seen(
            "a cut job",
            &run_with(&down, DELIVERER, &none, &good.as_bytes()[..good.len() - 3]),
        ),
        seen(
            "a bare message with a bad sender",
            &run_with(
                &down,
                DELIVERER,
                &with(&["-f", "a b@x.org", "--", "c@d.org"]),
                &ok,
            ),
        ),
        seen(
            "a bare message with a bad recipient",
            &run_with(&down, DELIVERER, &with(&["-f", "a@x.org", "--", "c"]), &ok),
        ),
        seen(
            "a bare message that is empty",
            &run_with(&down, DELIVERER, &envelope_args(1), b""),
        ),
        seen(
            "a bare message over message_size_limit",
            &run_with(&down, DELIVERER, &envelope_args(1), &vec![b'x'; 100_001]),
        ),
        seen(
            "a bare message that loops",
            &run_with(
                &down,
                DELIVERER,
                &envelope_args(1),
                b"Received: 1\nReceived: 2\nDelivered-To: x\n\nb\n",
            ),
        ),
        seen(
            "a bare message with too many recipients",
            &run_with(
                &down,
                DELIVERER,
                &envelope_args(postern::mail::job::MAX_RECIPIENTS + 1),
                &ok,
            ),
        ),
        seen(
            "--flush without --run-queue",
            &run_with(&down, DELIVERER, &with(&["--flush"]), b""),
        ),
        seen(
            "a config with an unknown key",
            &util::run(
                DELIVERER,
                &[],
                &job(&down),
                &[("POSTERN_CONFIG", &bad_config(&down))],
            ),
        ),
    ]);
    // The spool key: readable by others (78), then missing (75), then the
    // spool unwritable (75).
    use std::os::unix::fs::PermissionsExt;
    let key = down.path().join("spool.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    seen_.push(seen(
        "a spool key others can read",
        &run_with(&down, DELIVERER, &none, &job(&down)),
    ));
    std::fs::remove_file(&key).expect("remove the key");
    seen_.push(seen(
        "no spool key",
        &run_with(&down, DELIVERER, &none, &job(&down)),
    ));
    let fresh = site_with("");
    std::fs::create_dir_all(fresh.path().join("spool")).expect("spool");
    std::fs::write(fresh.path().join("spool/tmp"), b"not a directory").expect("block tmp/");
    seen_.push(seen(
        "an unwritable spool",
        &run_with(&fresh, DELIVERER, &none, &job(&fresh)),
    ));
    check_exits("postern-deliverer.8", &seen_, true);
}

/// The situations of postern-queue(8) EXIT STATUS.
#[test]
fn queue_exit_statuses_are_the_documented_ones() {
    let site = site_with("");
    let job = run_with(
        &site,
        RECEIVER,
        &envelope_args(2),
        &util::message("exit", "body"),
    );
    assert_eq!(job.code, 0, "{}", job.stderr);
    let d = site.run(DELIVERER, &[], &job.stdout);
    assert_eq!(d.code, 0, "the relay is down: spooled; {}", d.stderr);
    let spool = site.path().join("spool");
    let id = site.queue("deferred")[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a spool file name")
        .to_owned();
    std::fs::write(spool.join("deferred/BROKEN-0000"), b"not sealed").expect("write");
    let q = |args: &[&str]| site.run(QUEUE, args, b"");
    let mut seen_ = vec![
        seen("list", &q(&["list"])),
        seen("hold", &q(&["hold", &id])),
        seen("release", &q(&["release", &id])),
        seen(
            "show an entry that cannot be opened",
            &q(&["show", "BROKEN-0000"]),
        ),
        seen("an unknown id", &q(&["delete", "NOSUCHID-0000"])),
        seen(
            "--headers without --show-addresses",
            &q(&["show", &id, "--headers"]),
        ),
    ];
    std::fs::rename(
        spool.join("deferred").join(&id),
        spool.join("active").join(&id),
    )
    .expect("claim the entry as a queue run would");
    seen_.push(seen("an entry being delivered", &q(&["hold", &id])));
    use std::os::unix::fs::PermissionsExt;
    let key = site.path().join("spool.key");
    std::fs::write(&key, [7u8; 32]).expect("another key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    seen_.push(seen("a wrong spool key", &q(&["list"])));
    check_exits("postern-queue.8", &seen_, true);
}

/// The situations of postern-maildb(8) that need no root, no lock held by
/// another process and no damaged file: each exit status and status line
/// must be the documented ones (the page lists more than is made here).
#[test]
fn maildb_exit_statuses_are_documented_ones() {
    let site = util::MailSite::new();
    let m = util::message("exit", "body");
    let wrong = site.path().join("wrong-passphrase");
    std::fs::write(&wrong, "not the passphrase\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let wrong = wrong.display().to_string();
    let mut seen_ = vec![
        seen("init", &site.owner("bob", &["init"])),
        seen("init again", &site.owner("bob", &["init"])),
        seen("deliver", &site.run(&["deliver", "bob"], &m)),
        seen(
            "deliver to no mailbox",
            &site.run(&["deliver", "nobody"], &m),
        ),
        seen(
            "deliver to a bad name",
            &site.run(&["deliver", "../bob"], &m),
        ),
        seen(
            "deliver an empty message",
            &site.run(&["deliver", "bob"], b""),
        ),
        seen(
            "show a message that is not there",
            &site.owner("bob", &["show", "99"]),
        ),
        seen(
            "a wrong passphrase",
            &site.run(&["-u", "bob", "--passphrase-file", &wrong, "list"], b""),
        ),
        seen("an unknown option", &site.run(&["--frobnicate"], b"")),
    ];
    std::fs::remove_file(site.path().join("mail/bob.sqlite-pub")).expect("remove the key");
    seen_.push(seen(
        "deliver without the mailbox's public key",
        &site.run(&["deliver", "bob"], &m),
    ));
    check_exits("postern-maildb.8", &seen_, false);
}

/// A reference to a postern page points at a page that exists.
#[test]
fn postern_cross_references_resolve() {
    let names: BTreeSet<String> = pages()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    for path in pages() {
        for line in read(&path).lines() {
            let Some(rest) = line.strip_prefix(".Xr ") else {
                continue;
            };
            let mut w = rest.split_whitespace();
            let (Some(name), Some(section)) = (w.next(), w.next()) else {
                continue;
            };
            if name.starts_with("postern") {
                let file = format!("{name}.{section}");
                assert!(
                    names.contains(&file),
                    "{}: .Xr {name} {section}, but there is no man/{file}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn mandoc_lint_is_clean() {
    for path in pages() {
        util::assert_mandoc_clean(&path);
    }
}
