//! `purge`: deletes the messages that arrived before a cutoff, by their
//! internal date (IMAP's, the time the message reached the mailbox), in one
//! transaction. secure_delete overwrites their pages, the delete trigger
//! takes their words out of the search index, and a checkpoint afterwards
//! moves the overwritten pages from the write-ahead log into the file.

use std::time::{Duration, SystemTime};

use rusqlite::params;

use super::export::resolve_folder;
use super::schema::unix_seconds;
use super::{Mailbox, MailboxError};

/// The internal date before which a message is purged: `now` less `days`.
pub fn cutoff(now: SystemTime, days: u32) -> i64 {
    let age = Duration::from_secs(u64::from(days) * 86_400);
    unix_seconds(now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// Deletes the messages (of `folder`, or of every folder) that arrived
/// more than `days` days before `now`; returns how many.
pub fn purge(
    mb: &mut Mailbox,
    days: u32,
    folder: Option<&str>,
    now: SystemTime,
) -> Result<u64, MailboxError> {
    let folder = folder.map(|f| resolve_folder(mb, f)).transpose()?;
    let before = cutoff(now, days);
    let result = mb.write(|tx| {
        tx.execute(
            "DELETE FROM messages WHERE internal_date < ?1
               AND (?2 IS NULL OR folder_id = (SELECT id FROM folders WHERE name = ?2))",
            params![before, folder],
        )
    });
    let n = result.map_err(|e| mb.sql(e))? as u64;
    if n > 0 {
        // Best effort: a reader may hold the log; the pages are
        // overwritten in it all the same.
        let _ = mb.checkpoint();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_whole_days_back() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10 * 86_400 + 5);
        assert_eq!(cutoff(now, 0), 10 * 86_400 + 5);
        assert_eq!(cutoff(now, 3), 7 * 86_400 + 5);
        assert_eq!(cutoff(now, 365), 0);
    }

    #[test]
    fn purge_removes_old_messages_and_their_words() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Duration::from_secs(5);
        let day = |d: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(d * 86_400);
        let mut mb = Mailbox::create(&dir.path().join("bob.sqlite"), "pw", lock, day(1)).unwrap();
        for (d, word) in [(1, "ancient"), (5, "older"), (9, "recent")] {
            let raw = format!("Subject: {word}\n\n{word}\n");
            super::super::deliver(&mut mb, raw.as_bytes(), "INBOX", day(d)).unwrap();
        }
        assert_eq!(purge(&mut mb, 3, Some("Trash"), day(10)).unwrap(), 0);
        assert_eq!(purge(&mut mb, 3, None, day(10)).unwrap(), 2);
        assert!(
            super::super::search(&mb, "ancient", None, None)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            super::super::search(&mb, "recent", None, None)
                .unwrap()
                .len(),
            1
        );
        assert!(purge(&mut mb, 3, Some("Nope"), day(10)).is_err());
    }
}
