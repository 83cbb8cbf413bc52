//! Quotas: how much room a mailbox takes, and whether one more message fits.
//!
//! `deliver` has no passphrase, so the quota is measured from outside the
//! encryption: the size of the database file and its write-ahead log, plus
//! every file in the drop area (waiting, being written, or set aside as
//! damaged). That is what the mailbox costs on disk; it counts the search
//! index and free pages too, which a count of message sizes would not.
//!
//! A message that would take the mailbox over its limit is refused with
//! RFC 3463 X.2.2 "mailbox full" as a permanent failure, 5.2.2 and exit 69
//! (EX_UNAVAILABLE), so that Postfix bounces it and the sender knows at
//! once; this is also what Postfix's local(8) does when a mailbox reaches
//! `mailbox_size_limit`.
//!
//! So that a delivery does not read a directory that grows with every
//! message waiting, the drop area's total is kept in `<mailbox>-drop/size`
//! the Maildir++ way: each delivery appends its sealed size as a line; a
//! check adds the lines up, and counts the directory again (writing the
//! total as the file's one line) when the file is missing, damaged or has
//! grown past [`SIZE_FILE_MAX`] bytes. A merge removes it. It is a cache,
//! not a record: never fsynced, and a delivery that appends while another
//! process recounts may be missed (or counted twice) until the next count.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::drop_area::drop_dir;
use super::rekey::side_path;
use crate::exit::{Failure, Sysexit, ToFailure};
use crate::mail::status;

/// What a mailbox takes on disk, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The database file and its write-ahead log.
    pub database: u64,
    /// Every file in the drop area.
    pub drop_area: u64,
    /// Sealed messages waiting in `new/`.
    pub waiting: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.database.saturating_add(self.drop_area)
    }
}

/// Measures the mailbox at `mailbox`; needs no passphrase.
pub fn usage(mailbox: &Path) -> io::Result<Usage> {
    let mut u = Usage {
        database: database_size(mailbox)?,
        ..Usage::default()
    };
    let drop = drop_dir(mailbox);
    for sub in ["new", "tmp", "corrupt"] {
        let rd = match fs::read_dir(drop.join(sub)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            let size = match size_from_name(&entry.file_name()) {
                Some(size) => size,
                // Another name: ask the file system. A file merged and
                // removed meanwhile takes no room.
                None => match entry.metadata() {
                    Ok(meta) if meta.is_file() => meta.len(),
                    _ => continue,
                },
            };
            u.drop_area = u.drop_area.saturating_add(size);
            if sub == "new" {
                u.waiting += 1;
            }
        }
    }
    Ok(u)
}

/// A mailbox that cannot be measured.
#[derive(Debug, thiserror::Error)]
#[error("cannot measure {path}: {source}")]
pub struct Unmeasurable {
    pub path: PathBuf,
    pub source: io::Error,
}

/// A missing mailbox is the user's mistake (5.1.1); anything else is ours.
impl ToFailure for Unmeasurable {
    fn to_failure(&self) -> Failure {
        if self.source.kind() == io::ErrorKind::NotFound {
            super::MailboxError::NotFound {
                path: self.path.clone(),
            }
            .to_failure()
        } else {
            Failure::tempfail(self.to_string())
        }
    }
}

/// What `postern-maildb quota` reports. The fields are in the order of
/// the JSON object's keys (sorted, as serde_json writes a map).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaReport {
    pub database: u64,
    pub drop_area: u64,
    /// 0: no limit.
    pub limit: u64,
    pub mailbox: String,
    pub used: u64,
    pub waiting: u64,
}

/// Measures the mailbox at `mailbox` against `limit` (0: no limit).
pub fn report(mailbox: &Path, limit: u64) -> Result<QuotaReport, Unmeasurable> {
    let usage = usage(mailbox).map_err(|source| Unmeasurable {
        path: mailbox.to_owned(),
        source,
    })?;
    Ok(QuotaReport::new(mailbox, usage, limit))
}

impl QuotaReport {
    pub fn new(mailbox: &Path, usage: Usage, limit: u64) -> QuotaReport {
        QuotaReport {
            database: usage.database,
            drop_area: usage.drop_area,
            limit,
            mailbox: mailbox.display().to_string(),
            used: usage.total(),
            waiting: usage.waiting,
        }
    }

    /// The report as lines for a person.
    pub fn lines(&self) -> [String; 5] {
        let percent = if self.limit == 0 {
            "no limit".to_owned()
        } else {
            format!("{:.1}%", self.used as f64 * 100.0 / self.limit as f64)
        };
        [
            format!("mailbox: {}", self.mailbox),
            format!("database: {} bytes", self.database),
            format!(
                "drop area: {} bytes, {} sealed messages waiting",
                self.drop_area, self.waiting
            ),
            format!("used: {} bytes ({percent})", self.used),
            format!("limit: {} bytes", self.limit),
        ]
    }
}

/// The database file and its write-ahead log, in bytes.
fn database_size(mailbox: &Path) -> io::Result<u64> {
    let mut size = fs::metadata(mailbox)?.len();
    match fs::metadata(side_path(mailbox, "-wal")) {
        Ok(m) => size = size.saturating_add(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(size)
}

/// The running total of the drop area: `<mailbox>-drop/size`.
pub fn size_file(mailbox: &Path) -> PathBuf {
    drop_dir(mailbox).join("size")
}

/// Past this many bytes (some 800 deliveries) the size file is recounted.
pub const SIZE_FILE_MAX: u64 = 8192;

/// Adds a delivered sealed file's size to the running total. Best effort:
/// a total that cannot be kept is recounted by the next check.
pub fn record_delivery(mailbox: &Path, sealed_size: u64) {
    let path = size_file(mailbox);
    // Only onto a total someone counted: appended to a missing file, the
    // line would stand for the whole drop area.
    let appended = OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{sealed_size}\n").as_bytes()));
    if appended.is_err() {
        let _ = fs::remove_file(&path);
    }
}

/// The drop area's size from the size file; `None` when it must be
/// counted again (missing, too long, or not lines of decimal numbers).
fn cached_drop_area(mailbox: &Path) -> Option<u64> {
    let mut text = String::new();
    fs::File::open(size_file(mailbox))
        .ok()?
        .take(SIZE_FILE_MAX + 1)
        .read_to_string(&mut text)
        .ok()?;
    if text.len() as u64 > SIZE_FILE_MAX || !text.ends_with('\n') {
        return None;
    }
    text.lines().try_fold(0u64, |sum, line| {
        if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        sum.checked_add(line.parse().ok()?)
    })
}

/// Counts the drop area and writes the total as the size file's one line
/// (a file in the drop area's `tmp/` renamed over it, so a reader never
/// sees half a line, and what a crash leaves is cleared with `tmp/`). Not
/// written where there is no drop area yet.
fn recount_drop_area(mailbox: &Path) -> io::Result<u64> {
    let total = usage(mailbox)?.drop_area;
    let tmp = drop_dir(mailbox)
        .join("tmp")
        .join(format!("size.{}", crate::store::durable::random_hex(8)?));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(format!("{total}\n").as_bytes()))
        .and_then(|()| fs::rename(&tmp, size_file(mailbox)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(total)
}

/// The size `deliver` put in a sealed file's name: `<32 hex digits>.<size>`.
fn size_from_name(name: &std::ffi::OsStr) -> Option<u64> {
    let (random, size) = name.to_str()?.split_once('.')?;
    if random.len() != 32 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    size.parse().ok()
}

/// A message that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailbox full: {used} bytes used, the message has {incoming}, the quota is {limit} bytes")]
pub struct OverQuota {
    pub used: u64,
    pub incoming: u64,
    pub limit: u64,
}

/// The failure text goes to the sender in Postfix's bounce: no figures
/// (they are for postern's log, in the error itself).
impl ToFailure for OverQuota {
    fn to_failure(&self) -> Failure {
        Failure::new(Sysexit::Unavailable, status::MAILBOX_FULL, "mailbox full")
    }
}

/// Whether `incoming` more bytes fit under `limit` (0: no limit).
pub fn admits(used: u64, incoming: u64, limit: u64) -> Result<(), OverQuota> {
    if limit == 0 || used.saturating_add(incoming) <= limit {
        Ok(())
    } else {
        Err(OverQuota {
            used,
            incoming,
            limit,
        })
    }
}

/// For `deliver`: refuses a message that would take the mailbox over
/// `limit`. A mailbox that cannot be measured (missing, unreadable) is
/// left to the delivery itself to report.
pub fn check_delivery(mailbox: &Path, incoming: u64, limit: u64) -> Result<(), OverQuota> {
    if limit == 0 {
        return Ok(());
    }
    let measured = database_size(mailbox).and_then(|db| {
        let drop = match cached_drop_area(mailbox) {
            Some(bytes) => bytes,
            None => recount_drop_area(mailbox)?,
        };
        Ok(db.saturating_add(drop))
    });
    match measured {
        Ok(used) => admits(used, incoming, limit),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_inclusive_and_zero_is_none() {
        assert!(admits(90, 10, 100).is_ok());
        let over = admits(91, 10, 100).unwrap_err();
        assert_eq!(over.to_failure().exit, Sysexit::Unavailable);
        assert_eq!(over.to_failure().status, status::MAILBOX_FULL);
        assert_eq!(over.to_failure().text, "mailbox full");
        assert!(over.to_string().contains("91 bytes used"));
        assert!(admits(u64::MAX, u64::MAX, 0).is_ok());
        assert!(admits(u64::MAX, 1, u64::MAX).is_ok());
    }

    #[test]
    fn the_report_says_how_full_and_a_missing_mailbox_is_no_user() {
        let usage = Usage {
            database: 4096,
            drop_area: 1024,
            waiting: 2,
        };
        let r = QuotaReport::new(Path::new("/m/bob.sqlite"), usage, 10240);
        assert_eq!(r.used, 5120);
        assert_eq!(
            r.lines(),
            [
                "mailbox: /m/bob.sqlite",
                "database: 4096 bytes",
                "drop area: 1024 bytes, 2 sealed messages waiting",
                "used: 5120 bytes (50.0%)",
                "limit: 10240 bytes",
            ]
        );
        let unlimited = QuotaReport::new(Path::new("m"), usage, 0);
        assert_eq!(unlimited.lines()[3], "used: 5120 bytes (no limit)");
        let dir = tempfile::tempdir().unwrap();
        let missing = report(&dir.path().join("none.sqlite"), 0).unwrap_err();
        assert_eq!(missing.to_failure().exit, Sysexit::NoUser);
        let broken = Unmeasurable {
            path: "m".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(broken.to_failure().exit, Sysexit::TempFail);
        assert!(broken.to_failure().text.starts_with("cannot measure m: "));
    }

    #[test]
    fn usage_counts_the_database_the_log_and_the_drop_area() {
        let dir = tempfile::tempdir().unwrap();
        let mb = dir.path().join("bob.sqlite");
        assert!(usage(&mb).is_err());
        fs::write(&mb, [0u8; 4096]).unwrap();
        fs::write(side_path(&mb, "-wal"), [0u8; 100]).unwrap();
        fs::write(side_path(&mb, "-shm"), [0u8; 32768]).unwrap();
        let drop = drop_dir(&mb);
        for sub in ["new", "tmp", "corrupt"] {
            fs::create_dir_all(drop.join(sub)).unwrap();
        }
        fs::write(drop.join("new/a"), [0u8; 10]).unwrap();
        fs::write(drop.join("new/b"), [0u8; 20]).unwrap();
        fs::write(drop.join("tmp/c"), [0u8; 5]).unwrap();
        fs::write(drop.join("corrupt/d"), [0u8; 1]).unwrap();
        // deliver's names carry the size: no stat needed (and none made).
        let named = format!("{}.7", "ab".repeat(16));
        fs::write(drop.join("new").join(&named), [0u8; 7]).unwrap();
        assert_eq!(size_from_name(named.as_ref()), Some(7));
        assert_eq!(size_from_name("ab.7".as_ref()), None);
        assert_eq!(
            size_from_name(format!("{}.x", "ab".repeat(16)).as_ref()),
            None
        );
        let u = usage(&mb).unwrap();
        assert_eq!(
            u,
            Usage {
                database: 4196,
                drop_area: 43,
                waiting: 3
            }
        );
        assert_eq!(u.total(), 4239);
        assert!(check_delivery(&mb, 1000, 5239).is_ok());
        assert!(check_delivery(&mb, 1001, 5239).is_err());
        // That check counted the drop area into the size file.
        assert_eq!(fs::read_to_string(size_file(&mb)).unwrap(), "43\n");
        // Unmeasurable: the delivery itself will say what is wrong.
        assert!(check_delivery(&dir.path().join("none"), 1, 1).is_ok());
    }

    #[test]
    fn the_size_file_is_appended_to_and_recounted_when_damaged_or_long() {
        let dir = tempfile::tempdir().unwrap();
        let mb = dir.path().join("bob.sqlite");
        fs::write(&mb, [0u8; 100]).unwrap();
        let new = drop_dir(&mb).join("new");
        fs::create_dir_all(&new).unwrap();
        fs::create_dir_all(drop_dir(&mb).join("tmp")).unwrap();
        let sealed = |i: u32, size: usize| {
            let name = format!("{:032x}.{size}", i);
            fs::write(new.join(name), vec![0u8; size]).unwrap();
        };
        sealed(1, 10);
        // No size file yet: recorded deliveries do not start one.
        record_delivery(&mb, 10);
        assert!(!size_file(&mb).exists());
        assert!(check_delivery(&mb, 0, 110).is_ok());
        assert!(check_delivery(&mb, 1, 110).is_err());
        assert_eq!(fs::read_to_string(size_file(&mb)).unwrap(), "10\n");
        sealed(2, 20);
        record_delivery(&mb, 20);
        assert_eq!(cached_drop_area(&mb), Some(30));
        assert!(check_delivery(&mb, 0, 130).is_ok() && check_delivery(&mb, 1, 130).is_err());
        // What the cache says counts, until it is recounted.
        fs::write(size_file(&mb), "5\n").unwrap();
        assert!(check_delivery(&mb, 25, 130).is_ok());
        for damaged in [
            "",
            "5",
            "5\nx\n",
            "-5\n",
            "\n",
            "99999999999999999999\n",
            "1 2\n",
        ] {
            fs::write(size_file(&mb), damaged).unwrap();
            assert_eq!(cached_drop_area(&mb), None, "{damaged:?}");
            assert!(check_delivery(&mb, 1, 130).is_err(), "{damaged:?}");
            assert_eq!(fs::read_to_string(size_file(&mb)).unwrap(), "30\n");
        }
        fs::write(size_file(&mb), "1\n".repeat(SIZE_FILE_MAX as usize / 2 + 1)).unwrap();
        assert_eq!(cached_drop_area(&mb), None);
        assert!(check_delivery(&mb, 1, 130).is_err());
        assert_eq!(fs::read_to_string(size_file(&mb)).unwrap(), "30\n");
        // Only the total is left behind, no temporary file.
        assert_eq!(fs::read_dir(drop_dir(&mb)).unwrap().count(), 3);
        assert_eq!(fs::read_dir(drop_dir(&mb).join("tmp")).unwrap().count(), 0);
    }
}
