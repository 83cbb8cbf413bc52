//! The mailbox schema and its migrations, versioned by `PRAGMA
//! user_version` (0 is an empty file, 1 the first schema). Each migration
//! runs in one write transaction that also sets the new version, so a crash
//! leaves either the old schema or the new one.
//!
//! Folders carry an IMAP UIDVALIDITY and next UID (RFC 9051 section 2.3.1.1)
//! and, for the standard ones, their special use (RFC 6154), so an IMAP
//! server can be put on top. Message UIDs are per folder and never reused
//! within a UIDVALIDITY; a moved message gets a new UID in its new folder,
//! as IMAP MOVE (RFC 6851) does.

use std::time::SystemTime;

use rusqlite::OptionalExtension;

use super::{Mailbox, MailboxError};

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// The folders every mailbox starts with, and their RFC 6154 special use.
pub const STANDARD_FOLDERS: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Drafts", Some("\\Drafts")),
    ("Sent Mail", Some("\\Sent")),
    ("Archive", Some("\\Archive")),
    ("Spam", Some("\\Junk")),
    ("Trash", Some("\\Trash")),
];

/// Version 1. The full-text index is contentless (the text lives only in
/// the index, not twice) with `contentless_delete` and FTS5 `secure-delete`,
/// so a deleted message's words leave the index at once. Its `hashsize`
/// (pending words held in memory before they are written out as a new
/// segment, 1 MB by default) is 16 MB: a merge or import of thousands of
/// messages in one transaction then writes a few large segments instead of
/// many small ones that FTS5 must read back and merge, which took most of
/// the time ([`FTS_HASHSIZE`]; set on older files by [`tune_fts`]).
const V1: &str = "
CREATE TABLE folders (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    special_use TEXT,
    uidvalidity INTEGER NOT NULL CHECK (uidvalidity BETWEEN 1 AND 4294967295),
    uidnext     INTEGER NOT NULL DEFAULT 1 CHECK (uidnext BETWEEN 1 AND 4294967296),
    created     INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    folder_id     INTEGER NOT NULL REFERENCES folders(id) ON DELETE RESTRICT,
    uid           INTEGER NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
    flags         INTEGER NOT NULL DEFAULT 0,
    internal_date INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    date          INTEGER,
    from_addr     TEXT    NOT NULL DEFAULT '',
    to_addr       TEXT    NOT NULL DEFAULT '',
    subject       TEXT    NOT NULL DEFAULT '',
    message_id    TEXT    NOT NULL DEFAULT '',
    raw           BLOB    NOT NULL,
    UNIQUE (folder_id, uid)
) STRICT;

CREATE INDEX messages_by_date ON messages (folder_id, internal_date);

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    from_addr, to_addr, subject, body,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1);
INSERT INTO messages_fts (messages_fts, rank) VALUES ('hashsize', 16777216);

-- The X25519 key pair that sealed deliveries are made to (see drop_area).
CREATE TABLE delivery_key (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  BLOB    NOT NULL,
    public  BLOB    NOT NULL,
    created INTEGER NOT NULL
) STRICT;

-- Sealed files merged but perhaps not yet removed.
CREATE TABLE drop_merged (name TEXT PRIMARY KEY) STRICT;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
END;
";

/// The FTS5 `hashsize` of a mailbox, in bytes.
pub const FTS_HASHSIZE: i64 = 16 << 20;

/// Sets the FTS5 `hashsize` of a mailbox made before it was part of the
/// schema (inside the caller's write transaction; a no-op when set).
pub(crate) fn tune_fts(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let set: Option<i64> = tx
        .query_row(
            "SELECT v FROM messages_fts_config WHERE k = 'hashsize'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if set != Some(FTS_HASHSIZE) {
        tx.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('hashsize', ?1)",
            [FTS_HASHSIZE],
        )?;
    }
    Ok(())
}

/// Brings the mailbox to [`SCHEMA_VERSION`]; refuses a newer one.
pub fn migrate(mb: &mut Mailbox, now: SystemTime) -> Result<(), MailboxError> {
    let found = version(mb)?;
    if found > SCHEMA_VERSION {
        return Err(MailboxError::SchemaTooNew {
            path: mb.path.clone(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let created = unix_seconds(now);
    let uidvalidity = uidvalidity(now);
    let result = mb.write(|tx| {
        // Read again under the write lock: another process may have
        // migrated meanwhile.
        let mut v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        while v < SCHEMA_VERSION {
            v += 1;
            match v {
                1 => {
                    tx.execute_batch(V1)?;
                    let mut insert = tx.prepare(
                        "INSERT INTO folders (name, special_use, uidvalidity, created)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?;
                    for (name, special) in STANDARD_FOLDERS {
                        insert.execute(rusqlite::params![name, special, uidvalidity, created])?;
                    }
                    drop(insert);
                    super::drop_area::store_new_key_pair(tx, created)?;
                }
                _ => unreachable!("no migration to version {v}"),
            }
            tx.pragma_update(None, "user_version", v)?;
        }
        Ok(())
    });
    result.map_err(|e| mb.sql(e))
}

/// The schema version of an open mailbox.
pub fn version(mb: &Mailbox) -> Result<i64, MailboxError> {
    mb.conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| mb.sql(e))
}

/// The UIDVALIDITY of the standard folders: the creation time in seconds.
/// (Folders made later take the larger of the time and one more than any
/// existing UIDVALIDITY, so a folder created again never repeats one.)
pub fn uidvalidity(now: SystemTime) -> i64 {
    unix_seconds(now).clamp(1, i64::from(u32::MAX))
}

/// Seconds since the Unix epoch (0 for earlier times).
pub fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
