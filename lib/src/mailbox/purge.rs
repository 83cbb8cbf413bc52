//! `purge`: deletes the messages that arrived before a cutoff, by their
//! internal date (IMAP's, the time the message reached the mailbox), in one
//! transaction. secure_delete overwrites their pages, the delete trigger
//! takes their words out of the search index, and a checkpoint afterwards
//! moves the overwritten pages from the write-ahead log into the file.

use std::time::{Duration, SystemTime};

use rusqlite::{TransactionBehavior, params};

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
    let result = (|| {
        let tx = mb
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM messages WHERE internal_date < ?1
               AND (?2 IS NULL OR folder_id = (SELECT id FROM folders WHERE name = ?2))",
            params![before, folder],
        )?;
        tx.commit()?;
        Ok(n as u64)
    })();
    let n = result.map_err(|e| mb.sql(e))?;
    if n > 0 {
        // Best effort: a reader may hold the log; the pages are
        // overwritten in it all the same.
        let _ = mb.checkpoint();
    }
    Ok(n)
}
