//! The man pages say what the code does, and are clean mdoc.
//!
//! postern writes its man pages by hand, so these checks keep them honest:
//! every flag in a tool's `--help` is documented in its page and every flag
//! a page names exists; the keys of postern.toml(5) are exactly the fields
//! of `lib/src/config.rs`, with the documented defaults; the examples of
//! postern.toml(5) and postern-job(5) are read by the real parsers; and
//! `mandoc -Tlint -Wwarning` finds nothing to say about any page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use postern::config::Config;
use postern::mail::job::JobReader;

const RECEIVER: &str = env!("CARGO_BIN_EXE_postern-receiver");
const DELIVERER: &str = env!("CARGO_BIN_EXE_postern-deliverer");

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
    let out = Command::new(bin)
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
    let help = help(bin);
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
fn deliverer_flags_match_its_page() {
    check_flags(DELIVERER, "postern-deliverer.8");
}

/// Pages that are not a tool's own may name only flags some tool has.
#[test]
fn other_pages_name_only_real_flags() {
    let mut known: BTreeSet<String> = help(RECEIVER).options.into_keys().collect();
    known.extend(help(DELIVERER).options.into_keys());
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
// postern.toml(5) against lib/src/config.rs

/// The TOML keys of the configuration, from the serde structs of
/// config.rs: `hostname`, `spool.directory`, ... A field whose type is
/// another struct of the file is a table.
fn config_keys_from_source() -> BTreeSet<String> {
    let path = root().join("lib/src/config.rs");
    let src = read(&path);
    let mut structs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    let mut attrs = String::new();
    for line in src.lines() {
        let t = line.trim();
        if let Some((name, fields)) = current.as_mut() {
            if line.starts_with('}') {
                structs.insert(name.clone(), std::mem::take(fields));
                current = None;
            } else if t.starts_with("#[") {
                attrs.push_str(t);
            } else if let Some(field) = t.strip_prefix("pub ") {
                let (ident, ty) = field
                    .split_once(':')
                    .unwrap_or_else(|| panic!("config.rs: cannot read field `{t}`"));
                let ty = ty.trim().trim_end_matches(',').to_owned();
                if !attrs.contains("skip") {
                    let key = attrs
                        .split_once("rename = \"")
                        .and_then(|(_, r)| r.split_once('"'))
                        .map_or(ident.trim().to_owned(), |(k, _)| k.to_owned());
                    fields.push((key, ty));
                }
                attrs.clear();
            } else if !t.starts_with("//") && !t.is_empty() {
                attrs.clear();
            }
            continue;
        }
        if t.starts_with("#[") {
            attrs.push_str(t);
        } else if let Some(rest) = t.strip_prefix("pub struct ") {
            let name = rest
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next();
            if t.ends_with('{') && attrs.contains("Deserialize") {
                assert!(
                    !attrs.contains("rename_all"),
                    "config.rs: struct {rest} uses rename_all; teach tests/man.rs about it"
                );
                current = Some((name.unwrap_or_default().to_owned(), Vec::new()));
            }
            attrs.clear();
        } else if !t.starts_with("//") {
            attrs.clear();
        }
    }
    let root_fields = structs
        .get("Config")
        .unwrap_or_else(|| panic!("config.rs has no `pub struct Config` deriving Deserialize"));
    let mut keys = BTreeSet::new();
    for (key, ty) in root_fields {
        match structs.get(ty) {
            Some(table) => {
                for (sub, sub_ty) in table {
                    assert!(
                        !structs.contains_key(sub_ty),
                        "config.rs: [{key}] nests table {sub}; teach tests/man.rs about it"
                    );
                    keys.insert(format!("{key}.{sub}"));
                }
            }
            None => {
                keys.insert(key.clone());
            }
        }
    }
    assert!(keys.len() > 5, "read too few keys from config.rs: {keys:?}");
    keys
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
    let source = config_keys_from_source();
    let documented: BTreeSet<String> = documented_keys().into_iter().map(|k| k.key).collect();
    let undocumented: Vec<&String> = source.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&source).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "postern.toml(5) and lib/src/config.rs disagree:\n  \
         in config.rs but not documented: {undocumented:?}\n  \
         documented but not in config.rs: {unknown:?}"
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
    let source = config_keys_from_source();
    let listed_keys: BTreeSet<String> = listed.keys().cloned().collect();
    assert_eq!(
        listed_keys, source,
        "the defaults example of postern.toml(5) does not list every key"
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

/// Exit codes in EXIT STATUS items are codes of lib/src/exit.rs.
#[test]
fn documented_exit_codes_exist() {
    let exit_rs = read(&root().join("lib/src/exit.rs"));
    let codes: BTreeSet<u32> = exit_rs
        .lines()
        .filter_map(|l| {
            let (_, n) = l.trim().trim_end_matches(',').split_once(" = ")?;
            n.parse().ok()
        })
        .collect();
    assert!(codes.contains(&75), "read no exit codes from exit.rs");
    for path in pages() {
        let src = read(&path);
        for (sec, line) in lines_by_section(&src) {
            if sec != "EXIT STATUS" {
                continue;
            }
            if let Some(n) = line.strip_prefix(".It ") {
                let n: u32 = n.trim().parse().unwrap_or_else(|_| {
                    panic!(
                        "{}: EXIT STATUS item `{line}` is not a number",
                        path.display()
                    )
                });
                assert!(
                    codes.contains(&n),
                    "{}: exit status {n} is not in lib/src/exit.rs",
                    path.display()
                );
            }
        }
    }
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
        let out = match Command::new("mandoc")
            .args(["-Tlint", "-Wwarning"])
            .arg(&path)
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "mandoc is not installed, so the man pages cannot be checked: \
                 run `make deps` (as root) to install it"
            ),
            Err(e) => panic!("cannot run mandoc: {e}"),
        };
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "mandoc -Tlint -Wwarning {} ({}):\n{said}",
            path.display(),
            out.status
        );
    }
}
