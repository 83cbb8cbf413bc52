//! What can be done with an open mailbox: deliver, list, show, search,
//! flag, move, delete, folders, check. Each is a plain function over a
//! [`Mailbox`]; each change is one transaction.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::schema::{self, SCHEMA_VERSION, unix_seconds};
use super::{CIPHER, Mailbox, MailboxError, all_rows, envelope, starts_plaintext};

/// The name of the inbox, which IMAP matches without regard to case.
pub const INBOX: &str = "INBOX";

/// IMAP system flags (RFC 9051 section 2.3.2), as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(2);
    pub const FLAGGED: Flags = Flags(4);
    pub const DELETED: Flags = Flags(8);
    pub const DRAFT: Flags = Flags(16);
    const ALL: [(Flags, &'static str, char); 5] = [
        (Flags::SEEN, "seen", 'S'),
        (Flags::ANSWERED, "answered", 'A'),
        (Flags::FLAGGED, "flagged", 'F'),
        (Flags::DELETED, "deleted", 'D'),
        (Flags::DRAFT, "draft", 'T'),
    ];

    /// `seen`, `\Seen` or `Seen`; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<Flags> {
        let name = name.strip_prefix('\\').unwrap_or(name);
        Flags::ALL
            .iter()
            .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
            .map(|(f, _, _)| *f)
    }

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// The IMAP names of the flags set, e.g. `["\\Seen", "\\Flagged"]`.
    pub fn names(self) -> Vec<String> {
        Flags::ALL
            .iter()
            .filter(|(f, _, _)| self.contains(*f))
            .map(|(_, n, _)| {
                let mut s = String::from("\\");
                s.push_str(&n[..1].to_ascii_uppercase());
                s.push_str(&n[1..]);
                s
            })
            .collect()
    }

    /// Five columns for a listing: `S-F--` is seen and flagged.
    pub fn letters(self) -> String {
        Flags::ALL
            .iter()
            .map(|(f, _, c)| if self.contains(*f) { *c } else { '-' })
            .collect()
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// One message in a listing or a search result.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub folder: String,
    pub uid: u32,
    pub flags: Flags,
    /// When the message arrived, Unix seconds.
    pub internal_date: i64,
    pub size: u64,
    /// The Date field, Unix seconds.
    pub date: Option<i64>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
}

/// One folder, with its IMAP numbers and counts.
#[derive(Debug, Clone, Serialize)]
pub struct FolderInfo {
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: u64,
    pub messages: u64,
    pub unseen: u64,
}

/// Where a delivered message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub folder: String,
    pub uid: u32,
}

/// What `check` found: nothing in `problems` means the mailbox is sound.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub schema_version: i64,
    pub messages: u64,
    pub problems: Vec<String>,
}

/// Stores a message in `folder` (INBOX when there is no such folder, as
/// Dovecot's LDA does, so that mail is never refused for a folder name)
/// and returns its new UID. `now` is its internal date. A leading mbox
/// `From ` line is not part of the message and is not stored.
pub fn deliver(
    mb: &mut Mailbox,
    raw: &[u8],
    folder: &str,
    now: SystemTime,
) -> Result<Delivered, MailboxError> {
    let raw = &raw[crate::mail::message::mbox_from_line_len(raw)..];
    if raw.is_empty() {
        return Err(MailboxError::EmptyMessage);
    }
    let stored = mb.write(|tx| insert_message(tx, raw, folder, unix_seconds(now)));
    match stored.map_err(|e| mb.sql(e))? {
        Some(d) => Ok(d),
        None => Err(MailboxError::UidsExhausted {
            folder: folder.to_owned(),
        }),
    }
}

/// Stores a message inside the caller's write transaction: the row, its
/// words in the index, and the folder's next UID. `None` when the folder
/// has no UID left.
pub(crate) fn insert_message(
    tx: &rusqlite::Transaction<'_>,
    raw: &[u8],
    folder: &str,
    internal_date: i64,
) -> rusqlite::Result<Option<Delivered>> {
    insert_parsed(tx, raw, &envelope::parse(raw), folder, internal_date)
}

/// [`insert_message`] with the envelope already read (a merge reads it on
/// another thread). The statements are cached on the connection, so a
/// transaction storing thousands of messages compiles them once.
pub(crate) fn insert_parsed(
    tx: &rusqlite::Transaction<'_>,
    raw: &[u8],
    env: &envelope::Envelope,
    folder: &str,
    internal_date: i64,
) -> rusqlite::Result<Option<Delivered>> {
    let (folder_id, name, uidnext) = match find_folder(tx, folder)? {
        Some(found) => found,
        None => find_folder(tx, INBOX)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?,
    };
    let Ok(uid) = u32::try_from(uidnext) else {
        return Ok(None);
    };
    tx.prepare_cached(
        "INSERT INTO messages (folder_id, uid, flags, internal_date, size, date,
                               from_addr, to_addr, subject, message_id, raw)
         VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        folder_id,
        uid,
        internal_date,
        raw.len() as i64,
        env.date,
        env.from,
        env.to,
        env.subject,
        env.message_id,
        raw,
    ])?;
    let id = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO messages_fts (rowid, from_addr, to_addr, subject, body)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, env.from, env.to, env.subject, env.body_text])?;
    tx.prepare_cached("UPDATE folders SET uidnext = uidnext + 1 WHERE id = ?1")?
        .execute([folder_id])?;
    Ok(Some(Delivered { folder: name, uid }))
}

/// The messages of a folder, in UID order.
pub fn list(mb: &Mailbox, folder: &str) -> Result<Vec<Summary>, MailboxError> {
    let (folder_id, _, _) = require_folder(mb, folder)?;
    all_rows(
        mb.conn(),
        &format!("{SUMMARY_SELECT} WHERE m.folder_id = ?1 ORDER BY m.uid"),
        [folder_id],
        summary_row,
    )
    .map_err(|e| mb.sql(e))
}

/// The raw message, as delivered.
pub fn show(mb: &Mailbox, folder: &str, uid: u32) -> Result<Vec<u8>, MailboxError> {
    let (folder_id, name, _) = require_folder(mb, folder)?;
    mb.conn()
        .query_row(
            "SELECT raw FROM messages WHERE folder_id = ?1 AND uid = ?2",
            params![folder_id, uid],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| mb.sql(e))?
        .ok_or(MailboxError::NoMessage { folder: name, uid })
}

/// Messages matching every word of `query` (in any folder, or in `folder`),
/// best match first. See [`fts_query`] for the syntax.
///
/// With `limit`, only the best that many: in all folders they are taken
/// from the index by rank before any message row is read, which keeps a
/// query with tens of thousands of hits (a short prefix) fast.
pub fn search(
    mb: &Mailbox,
    query: &str,
    folder: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<Summary>, MailboxError> {
    let Some(fts) = fts_query(query) else {
        return Err(MailboxError::EmptyQuery {
            query: query.to_owned(),
        });
    };
    let folder_id = match folder {
        Some(f) => Some(require_folder(mb, f)?.0),
        None => None,
    };
    // SQLite reads a negative LIMIT as none.
    let limit = limit.and_then(|n| i64::try_from(n).ok()).unwrap_or(-1);
    // In all folders the best are taken from the index; in one folder the
    // limit can only come after the folder test. Without a limit the
    // index's hits are not sorted twice.
    let (best_first, outer) = match folder_id {
        None if limit >= 0 => ("ORDER BY rank LIMIT ?3", -1),
        _ => ("", limit),
    };
    all_rows(
        mb.conn(),
        &format!(
            "WITH hits AS (SELECT rowid, rank FROM messages_fts WHERE messages_fts MATCH ?1
                           {best_first})
             {SUMMARY_SELECT} JOIN hits ON hits.rowid = m.id
             WHERE ?2 IS NULL OR m.folder_id = ?2
             ORDER BY hits.rank, m.internal_date DESC
             LIMIT ?4"
        ),
        params![fts, folder_id, limit, outer],
        summary_row,
    )
    .map_err(|e| mb.sql(e))
}

/// Turns what a person types into an FTS5 query: every word must occur
/// (in any order); a word ending in `*` matches as a prefix; `from:`,
/// `to:`, `subject:` and `body:` before a word look only in that field.
/// Everything else is taken literally (quoted), so no input is an FTS5
/// syntax error. `None` when there is no word.
pub fn fts_query(query: &str) -> Option<String> {
    let mut terms = Vec::new();
    for word in query.split_whitespace() {
        let (column, word) = match word.split_once(':') {
            Some((field, rest)) if !rest.is_empty() => match field.to_ascii_lowercase().as_str() {
                "from" => (Some("from_addr"), rest),
                "to" => (Some("to_addr"), rest),
                "subject" => (Some("subject"), rest),
                "body" => (Some("body"), rest),
                _ => (None, word),
            },
            _ => (None, word),
        };
        let (word, prefix) = match word.strip_suffix('*') {
            Some(w) if !w.is_empty() => (w, true),
            _ => (word, false),
        };
        let mut term = String::new();
        if let Some(c) = column {
            term.push_str(c);
            term.push_str(" : ");
        }
        term.push('"');
        term.push_str(&word.replace('"', "\"\""));
        term.push('"');
        if prefix {
            term.push_str(" *");
        }
        terms.push(term);
    }
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

/// Sets and clears flags of one message; returns its flags afterwards.
pub fn flag(
    mb: &mut Mailbox,
    folder: &str,
    uid: u32,
    set: Flags,
    clear: Flags,
) -> Result<Flags, MailboxError> {
    let (folder_id, name, _) = require_folder(mb, folder)?;
    let result = mb.write(|tx| {
        let old: Option<u8> = tx
            .query_row(
                "SELECT flags FROM messages WHERE folder_id = ?1 AND uid = ?2",
                params![folder_id, uid],
                |r| r.get(0),
            )
            .optional()?;
        let Some(old) = old else {
            return Ok(None);
        };
        let new = Flags(old).without(clear).union(set);
        tx.execute(
            "UPDATE messages SET flags = ?3 WHERE folder_id = ?1 AND uid = ?2",
            params![folder_id, uid, new.0],
        )?;
        Ok(Some(new))
    });
    result
        .map_err(|e| mb.sql(e))?
        .ok_or(MailboxError::NoMessage { folder: name, uid })
}

/// Moves a message to another folder, where it gets the next UID (as IMAP
/// MOVE does); returns the new UID.
pub fn move_message(
    mb: &mut Mailbox,
    folder: &str,
    uid: u32,
    to: &str,
) -> Result<Delivered, MailboxError> {
    let (from_id, from_name, _) = require_folder(mb, folder)?;
    let (to_id, to_name, _) = require_folder(mb, to)?;
    let result = mb.write(|tx| {
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM messages WHERE folder_id = ?1 AND uid = ?2",
                params![from_id, uid],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = exists else {
            return Ok(Err(MailboxError::NoMessage {
                folder: from_name,
                uid,
            }));
        };
        if from_id == to_id {
            return Ok(Ok(Delivered {
                folder: to_name,
                uid,
            }));
        }
        let uidnext: i64 =
            tx.query_row("SELECT uidnext FROM folders WHERE id = ?1", [to_id], |r| {
                r.get(0)
            })?;
        let Ok(new_uid) = u32::try_from(uidnext) else {
            return Ok(Err(MailboxError::UidsExhausted { folder: to_name }));
        };
        tx.execute(
            "UPDATE messages SET folder_id = ?2, uid = ?3 WHERE id = ?1",
            params![id, to_id, new_uid],
        )?;
        tx.execute(
            "UPDATE folders SET uidnext = uidnext + 1 WHERE id = ?1",
            [to_id],
        )?;
        Ok(Ok(Delivered {
            folder: to_name,
            uid: new_uid,
        }))
    });
    result.map_err(|e| mb.sql(e))?
}

/// Removes a message for good: its row, its words in the index, and (by
/// secure_delete) the bytes of its pages.
pub fn delete(mb: &mut Mailbox, folder: &str, uid: u32) -> Result<(), MailboxError> {
    let (folder_id, name, _) = require_folder(mb, folder)?;
    let n = mb
        .conn()
        .execute(
            "DELETE FROM messages WHERE folder_id = ?1 AND uid = ?2",
            params![folder_id, uid],
        )
        .map_err(|e| mb.sql(e))?;
    if n == 0 {
        return Err(MailboxError::NoMessage { folder: name, uid });
    }
    Ok(())
}

/// All folders: the standard ones first in their usual order, then the
/// others by name. (The standard folders are ids 1 to 6: schema version 1
/// creates them first, in order, in one transaction.)
pub fn folders(mb: &Mailbox) -> Result<Vec<FolderInfo>, MailboxError> {
    all_rows(
        mb.conn(),
        "SELECT f.name, f.special_use, f.uidvalidity, f.uidnext,
                count(m.id), count(m.id) - coalesce(sum(m.flags & 1), 0)
         FROM folders f LEFT JOIN messages m ON m.folder_id = f.id
         GROUP BY f.id
         ORDER BY f.id > 6, CASE WHEN f.id <= 6 THEN f.id END, f.name",
        [],
        |r| {
            Ok(FolderInfo {
                name: r.get(0)?,
                special_use: r.get(1)?,
                uidvalidity: r.get(2)?,
                uidnext: r.get::<_, i64>(3)? as u64,
                messages: r.get::<_, i64>(4)? as u64,
                unseen: r.get::<_, i64>(5)? as u64,
            })
        },
    )
    .map_err(|e| mb.sql(e))
}

/// How many messages the mailbox holds, in all folders.
pub fn message_count(mb: &Mailbox) -> Result<u64, MailboxError> {
    Ok(folders(mb)?.iter().map(|f| f.messages).sum())
}

/// Creates a user folder. `/` separates levels of a hierarchy.
pub fn create_folder(
    mb: &mut Mailbox,
    name: &str,
    now: SystemTime,
) -> Result<FolderInfo, MailboxError> {
    check_folder_name(name)?;
    if find_folder(mb.conn(), name)
        .map_err(|e| mb.sql(e))?
        .is_some()
    {
        return Err(MailboxError::FolderExists {
            name: name.to_owned(),
        });
    }
    let created = unix_seconds(now);
    let result = mb.write(|tx| {
        let highest: i64 = tx.query_row(
            "SELECT coalesce(max(uidvalidity), 0) FROM folders",
            [],
            |r| r.get(0),
        )?;
        let uidvalidity = schema::uidvalidity(now).max(highest + 1);
        tx.execute(
            "INSERT INTO folders (name, uidvalidity, created) VALUES (?1, ?2, ?3)",
            params![name, uidvalidity, created],
        )
    });
    result.map_err(|e| mb.sql(e))?;
    folders(mb)?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| MailboxError::NoFolder {
            name: name.to_owned(),
        })
}

/// Whether `name` may be a new folder's name.
pub fn check_folder_name(name: &str) -> Result<(), MailboxError> {
    let bad = |why| {
        Err(MailboxError::BadFolderName {
            name: crate::mail::text::clean(name).into_owned(),
            why,
        })
    };
    if name.trim().is_empty() {
        return bad("it is empty");
    }
    if name.len() > 255 {
        return bad("it is longer than 255 bytes");
    }
    if name.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    if name.contains(['*', '%']) {
        return bad("'*' and '%' are IMAP wildcards");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return bad("'/' separates folder levels and cannot start, end or repeat");
    }
    if name.eq_ignore_ascii_case(INBOX) {
        return bad("INBOX exists in every mailbox");
    }
    Ok(())
}

/// Checks the mailbox: the encryption guard, the schema version, SQLite's
/// integrity check (which reads, and so authenticates, every page in use),
/// the full-text index and the stored sizes. Damage is reported, not raised.
pub fn check(mb: &Mailbox) -> Result<CheckReport, MailboxError> {
    let mut report = CheckReport::default();
    let conn = mb.conn();
    match starts_plaintext(mb.path()) {
        Ok(false) => {}
        Ok(true) => report
            .problems
            .push("the file starts with a plaintext SQLite header".into()),
        Err(e) => return Err(mb.io("read", e)),
    }
    let cipher: Result<String, _> = conn.query_row("PRAGMA cipher", [], |r| r.get(0));
    match cipher {
        Ok(c) if c.eq_ignore_ascii_case(CIPHER) => {}
        Ok(c) => report
            .problems
            .push(format!("cipher is {c:?}, not {CIPHER:?}")),
        Err(e) => report.problems.push(format!("cipher unknown: {e}")),
    }
    match schema::version(mb) {
        Ok(v) => {
            report.schema_version = v;
            if v != SCHEMA_VERSION {
                report.problems.push(format!(
                    "schema version {v}, expected {SCHEMA_VERSION} (open the mailbox once to \
                     migrate it)"
                ));
            }
        }
        Err(e) => report
            .problems
            .push(format!("schema version unreadable: {e}")),
    }
    let integrity = all_rows(conn, "PRAGMA integrity_check", [], |r| {
        r.get::<_, String>(0)
    });
    match integrity {
        Ok(lines) if lines == ["ok"] => {}
        Ok(lines) => report
            .problems
            .extend(lines.into_iter().map(|l| format!("integrity: {l}"))),
        Err(e) => report.problems.push(format!("integrity check failed: {e}")),
    }
    if report.schema_version >= 1 {
        if let Err(e) = conn.execute(
            "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')",
            [],
        ) {
            report.problems.push(format!("full-text index: {e}"));
        }
        let counts: Result<(i64, i64), _> = conn.query_row(
            "SELECT count(*), coalesce(sum(length(raw) != size), 0) FROM messages",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        );
        match counts {
            Ok((n, 0)) => report.messages = n as u64,
            Ok((n, bad)) => {
                report.messages = n as u64;
                report
                    .problems
                    .push(format!("{bad} messages differ from their recorded size"));
            }
            Err(e) => report.problems.push(format!("messages unreadable: {e}")),
        }
    }
    Ok(report)
}

const SUMMARY_SELECT: &str = "SELECT f.name, m.uid, m.flags, m.internal_date, m.size, m.date,
        m.from_addr, m.to_addr, m.subject, m.message_id
     FROM messages m JOIN folders f ON f.id = m.folder_id";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    Ok(Summary {
        folder: r.get(0)?,
        uid: r.get(1)?,
        flags: Flags(r.get(2)?),
        internal_date: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        date: r.get(5)?,
        from: r.get(6)?,
        to: r.get(7)?,
        subject: r.get(8)?,
        message_id: r.get(9)?,
    })
}

/// The folder's id, its name as stored, and its next UID; INBOX matches in
/// any case.
fn find_folder(
    conn: &rusqlite::Connection,
    name: &str,
) -> rusqlite::Result<Option<(i64, String, i64)>> {
    let name = if name.eq_ignore_ascii_case(INBOX) {
        INBOX
    } else {
        name
    };
    conn.prepare_cached("SELECT id, name, uidnext FROM folders WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
}

fn require_folder(mb: &Mailbox, name: &str) -> Result<(i64, String, i64), MailboxError> {
    find_folder(mb.conn(), name)
        .map_err(|e| mb.sql(e))?
        .ok_or_else(|| MailboxError::NoFolder {
            name: name.to_owned(),
        })
}
