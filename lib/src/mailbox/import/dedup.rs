//! Repeatable imports: the SHA-256 of each imported message (as stored)
//! is kept in the table `imported`, and a message whose hash is there is
//! a duplicate. The row goes with its message (ON DELETE CASCADE), so a
//! message deleted later can be imported again.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

const HASH_TABLE: &str = "
CREATE TABLE IF NOT EXISTS imported (
    sha256  BLOB    PRIMARY KEY,
    message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS imported_by_message ON imported (message);
";

/// Creates the table of hashes, unless it is there.
pub(super) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(HASH_TABLE)
}

/// The hash a message is known by.
pub(super) fn digest(raw: &[u8]) -> [u8; 32] {
    Sha256::digest(raw).into()
}

/// Whether a message with this hash was imported (and is still there).
pub(super) fn seen(tx: &Transaction<'_>, hash: &[u8; 32]) -> rusqlite::Result<bool> {
    let found: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM imported WHERE sha256 = ?1",
            [&hash[..]],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

/// Records the hash of the message stored as row `id`.
pub(super) fn record(tx: &Transaction<'_>, hash: &[u8; 32], id: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO imported (sha256, message) VALUES (?1, ?2)",
        params![&hash[..], id],
    )
    .map(drop)
}
