//! An unencrypted postern mailbox as a source (only when asked with
//! `allow_plaintext`): its messages keep their folders, flags and
//! internal dates.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{Arrival, Incoming, Item, Source};
use crate::mailbox::exchange::ExchangeError;
use crate::mailbox::ops::Flags;

/// An unencrypted postern mailbox, read one message at a time.
pub(super) struct SqliteSource {
    path: PathBuf,
    conn: Connection,
    ids: VecDeque<(i64, i64)>,
    limit: u64,
}

impl SqliteSource {
    pub(super) fn open(path: &Path, limit: u64) -> Result<SqliteSource, ExchangeError> {
        let sql = |e| ExchangeError::Sqlite {
            path: path.to_owned(),
            source: e,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        let ids = crate::mailbox::all_rows(
            &conn,
            "SELECT m.id, length(m.raw) FROM messages m ORDER BY m.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map(VecDeque::from)
        .map_err(|e| {
            ExchangeError::bad(
                path,
                format!("not a postern mailbox (no readable messages table: {e})"),
            )
        })?;
        Ok(SqliteSource {
            path: path.to_owned(),
            conn,
            ids,
            limit,
        })
    }
}

impl Source for SqliteSource {
    fn folders(&mut self) -> Result<Vec<String>, ExchangeError> {
        crate::mailbox::all_rows(
            &self.conn,
            "SELECT DISTINCT f.name FROM folders f JOIN messages m ON m.folder_id = f.id",
            [],
            |r| r.get(0),
        )
        .map_err(|e| ExchangeError::bad(&self.path, format!("not a postern mailbox: {e}")))
    }

    fn next_item(&mut self) -> Result<Option<Item>, ExchangeError> {
        let Some((id, len)) = self.ids.pop_front() else {
            return Ok(None);
        };
        if len < 0 || len as u64 > self.limit {
            return Ok(Some(Item::TooLarge));
        }
        let row = self
            .conn
            .query_row(
                "SELECT f.name, m.flags, m.internal_date, m.raw
                 FROM messages m JOIN folders f ON f.id = m.folder_id WHERE m.id = ?1",
                [id],
                |r| {
                    Ok(Incoming {
                        folder: Some(r.get(0)?),
                        flags: Flags(r.get::<_, i64>(1)?.clamp(0, 31) as u8),
                        arrival: Arrival::Recorded(r.get(2)?),
                        raw: r.get(3)?,
                        truncated: false,
                    })
                },
            )
            .optional()
            .map_err(|e| ExchangeError::bad(&self.path, format!("not a postern mailbox: {e}")))?;
        Ok(Some(row.map_or(Item::Skipped, Item::Message)))
    }
}
