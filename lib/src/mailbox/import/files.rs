//! Sources whose files are each one message: a Maildir (`new/` then
//! `cur/`, flags from the `:2,` info suffix, the arrival time from the
//! name), a directory of `.eml` files, or one `.eml` file.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::dating::seconds_since_1970;
use super::{Arrival, Incoming, Item, Source};
use crate::mailbox::exchange::ExchangeError;
use crate::mailbox::ops::Flags;

pub(super) fn has_eml_extension(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml"))
}

/// The Unix time a Maildir file name `time.unique.host[:2,flags]` starts
/// with: the digits before the first dot.
pub fn maildir_name_time(name: &str) -> Option<i64> {
    let (time, rest) = name.split_once('.')?;
    if time.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    time.parse().ok()
}

/// Files that are each one message: a Maildir, a directory of `.eml`
/// files, or one `.eml` file.
pub(super) struct FileSource {
    files: VecDeque<QueuedFile>,
    limit: u64,
}

/// A file of a [`FileSource`]; an empty path stands for a skipped entry.
struct QueuedFile {
    path: PathBuf,
    flags: Flags,
    /// The time a Maildir file's name starts with.
    name_time: Option<i64>,
}

impl QueuedFile {
    fn message(path: PathBuf, flags: Flags, name_time: Option<i64>) -> QueuedFile {
        QueuedFile {
            path,
            flags,
            name_time,
        }
    }

    fn skipped() -> QueuedFile {
        QueuedFile::message(PathBuf::new(), Flags::default(), None)
    }
}

impl FileSource {
    pub(super) fn eml_file(path: &Path, limit: u64) -> FileSource {
        FileSource {
            files: VecDeque::from([QueuedFile::message(path.to_owned(), Flags::default(), None)]),
            limit,
        }
    }

    pub(super) fn eml_directory(dir: &Path, limit: u64) -> Result<FileSource, ExchangeError> {
        let mut files = VecDeque::new();
        for (path, is_file) in sorted_entries(dir)? {
            if is_file && has_eml_extension(&path) {
                files.push_back(QueuedFile::message(path, Flags::default(), None));
            } else {
                files.push_back(QueuedFile::skipped());
            }
        }
        Ok(FileSource { files, limit })
    }

    /// `new/` (not yet seen) then `cur/`; `tmp/` is never read.
    pub(super) fn maildir(dir: &Path, limit: u64) -> Result<FileSource, ExchangeError> {
        let mut files = VecDeque::new();
        for sub in ["new", "cur"] {
            let d = dir.join(sub);
            if !d.is_dir() {
                continue;
            }
            for (path, is_file) in sorted_entries(&d)? {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !is_file || name.starts_with('.') {
                    files.push_back(QueuedFile::skipped());
                    continue;
                }
                let flags = if sub == "cur" {
                    maildir_flags(&name)
                } else {
                    Flags::default()
                };
                files.push_back(QueuedFile::message(path, flags, maildir_name_time(&name)));
            }
        }
        Ok(FileSource { files, limit })
    }
}

/// The flags of a Maildir file name `unique:2,FLAGS` (D draft, F flagged,
/// R replied, S seen, T trashed; P and anything unknown are ignored). A
/// name without a `:2,` suffix has no flags.
pub fn maildir_flags(name: &str) -> Flags {
    let Some((_, info)) = name.rsplit_once(":2,") else {
        return Flags::default();
    };
    info.chars()
        .filter_map(|c| match c {
            'D' => Some(Flags::DRAFT),
            'F' => Some(Flags::FLAGGED),
            'R' => Some(Flags::ANSWERED),
            'S' => Some(Flags::SEEN),
            'T' => Some(Flags::DELETED),
            _ => None,
        })
        .fold(Flags::default(), Flags::union)
}

/// The entries of a directory, numbers in names sorted as numbers (so
/// `2.eml` comes before `10.eml`), with whether each is a regular file.
fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, bool)>, ExchangeError> {
    let rd = fs::read_dir(dir).map_err(|e| ExchangeError::io(dir, "read", e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| ExchangeError::io(dir, "read", e))?;
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        out.push((e.path(), is_file));
    }
    out.sort_by_cached_key(|(p, _)| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        (
            digits.len(),
            digits.parse::<u128>().unwrap_or(u128::MAX),
            name,
        )
    });
    Ok(out)
}

impl Source for FileSource {
    fn next_item(&mut self) -> Result<Option<Item>, ExchangeError> {
        let Some(QueuedFile {
            path,
            flags,
            name_time,
        }) = self.files.pop_front()
        else {
            return Ok(None);
        };
        if path.as_os_str().is_empty() {
            return Ok(Some(Item::Skipped));
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            // Gone meanwhile (a Maildir in use): not a message any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(Item::Skipped)),
            Err(e) => return Err(ExchangeError::io(&path, "open", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| ExchangeError::io(&path, "stat", e))?;
        if meta.len() > self.limit {
            return Ok(Some(Item::TooLarge));
        }
        let mut raw = Vec::with_capacity(meta.len() as usize);
        file.take(self.limit + 1)
            .read_to_end(&mut raw)
            .map_err(|e| ExchangeError::io(&path, "read", e))?;
        if raw.len() as u64 > self.limit {
            return Ok(Some(Item::TooLarge));
        }
        Ok(Some(Item::Message(Incoming {
            raw,
            flags,
            arrival: Arrival::Hints {
                before: name_time,
                after: meta.modified().ok().and_then(seconds_since_1970),
            },
            folder: None,
            truncated: false,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_names() {
        assert_eq!(
            maildir_flags("1700000000.M1P2.host:2,FRS"),
            Flags::FLAGGED.union(Flags::ANSWERED).union(Flags::SEEN)
        );
        assert_eq!(maildir_flags("1700000000.M1P2.host:2,DT"), Flags(8 | 16));
        assert_eq!(maildir_flags("no-info-suffix"), Flags::default());
        assert_eq!(maildir_flags("bad:1,S"), Flags::default());
        assert_eq!(maildir_flags("odd:2,xyzP"), Flags::default());
    }

    #[test]
    fn maildir_name_times() {
        assert_eq!(
            maildir_name_time("1700000000.M1P2.host:2,S"),
            Some(1_700_000_000)
        );
        assert_eq!(
            maildir_name_time("1700000000.M1P2.host"),
            Some(1_700_000_000)
        );
        assert_eq!(maildir_name_time("12.x"), Some(12));
        for name in [
            "abc.host",
            "1700000000",
            "1700000000.",
            "17a0.host",
            ".1700000000.host",
            "-5.host",
            "99999999999999999999.host",
        ] {
            assert_eq!(maildir_name_time(name), None, "{name}");
        }
    }
}
