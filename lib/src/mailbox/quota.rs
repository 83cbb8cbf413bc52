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

use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;

use super::drop_area::drop_dir;
use super::rekey::side_path;
use crate::exit::{Failure, Sysexit, ToFailure};

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
    let mut u = Usage::default();
    for p in [mailbox.to_owned(), side_path(mailbox, "-wal")] {
        match fs::metadata(&p) {
            Ok(m) => u.database = u.database.saturating_add(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && p != mailbox => {}
            Err(e) => return Err(e),
        }
    }
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

impl ToFailure for OverQuota {
    fn to_failure(&self) -> Failure {
        Failure::new(Sysexit::Unavailable, "5.2.2", self.to_string())
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
    match usage(mailbox) {
        Ok(u) => admits(u.total(), incoming, limit),
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
        assert_eq!(over.to_failure().status, "5.2.2");
        assert!(admits(u64::MAX, u64::MAX, 0).is_ok());
        assert!(admits(u64::MAX, 1, u64::MAX).is_ok());
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
        // Unmeasurable: the delivery itself will say what is wrong.
        assert!(check_delivery(&dir.path().join("none"), 1, 1).is_ok());
    }
}
