//! `export`: a mailbox, or one folder of it, as mboxrd (see [`super::mbox`]),
//! as a directory of `.eml` files (RFC 5322 messages, one per file), or as
//! an encrypted SQLite copy.
//!
//! Export streams: the messages are read in one read transaction (a
//! consistent snapshot while deliveries go on), and each message's bytes
//! are copied from SQLite's incremental blob I/O in pieces, so memory does
//! not grow with the mailbox or with a message. The SQLite copy is made
//! with SQLite's online backup API into a new file keyed before the first
//! page is written, under the same cipher, and then opened through the
//! usual guard.
//!
//! An mbox or `.eml` export is plaintext by nature: files are created with
//! mode 0600 and directories with 0700, and an existing destination is
//! never overwritten.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::exchange::ExchangeError;
use super::{INBOX, Mailbox, MailboxError, mbox, starts_plaintext};
use crate::mail::text;

/// What was exported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub messages: u64,
    /// Bytes of the messages as stored.
    pub bytes: u64,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One mboxrd file ([`export_mbox`], [`export_mbox_file`]).
    Mbox,
    /// A directory of `.eml` files ([`export_eml`]).
    Eml,
    /// An encrypted SQLite copy ([`export_sqlite`]).
    Sqlite,
}

/// Exports the messages (of `folder`, or all) to the new file or
/// directory `dest` in `format`. An SQLite copy is encrypted under
/// `new_passphrase` when one is given, else under `passphrase`, the
/// mailbox's own; the other formats are plaintext and refuse a new one.
pub fn export(
    mb: &Mailbox,
    format: Format,
    dest: &Path,
    folder: Option<&str>,
    passphrase: &str,
    new_passphrase: Option<&str>,
    lock_timeout: Duration,
) -> Result<ExportReport, ExchangeError> {
    check_new_passphrase(format, new_passphrase.is_some())?;
    match format {
        Format::Mbox => export_mbox_file(mb, dest, folder),
        Format::Eml => export_eml(mb, dest, folder),
        Format::Sqlite => export_sqlite(
            mb,
            dest,
            new_passphrase.unwrap_or(passphrase),
            folder,
            lock_timeout,
        ),
    }
}

/// Only an SQLite copy is encrypted, so only it takes a new passphrase.
pub fn check_new_passphrase(format: Format, given: bool) -> Result<(), ExchangeError> {
    if given && format != Format::Sqlite {
        return Err(ExchangeError::NewPassphraseNotSqlite);
    }
    Ok(())
}

struct Row {
    id: i64,
    folder: String,
    uid: u32,
    internal_date: i64,
    size: u64,
}

/// The folder's name as stored (INBOX in any case is INBOX).
pub fn resolve_folder(mb: &Mailbox, name: &str) -> Result<String, MailboxError> {
    let name = if name.eq_ignore_ascii_case(INBOX) {
        INBOX
    } else {
        name
    };
    super::folders(mb)?
        .into_iter()
        .find(|f| f.name == name)
        .map(|f| f.name)
        .ok_or_else(|| MailboxError::NoFolder {
            name: name.to_owned(),
        })
}

/// The messages to export, folder by folder in their usual order, by UID.
/// Only the numbers: the bytes are read one message at a time.
fn rows(mb: &Mailbox, folder: Option<&str>) -> Result<Vec<Row>, MailboxError> {
    super::all_rows(
        mb.conn(),
        "SELECT m.id, f.name, m.uid, m.internal_date, m.size
         FROM messages m JOIN folders f ON f.id = m.folder_id
         WHERE ?1 IS NULL OR f.name = ?1
         ORDER BY f.id > 6, CASE WHEN f.id <= 6 THEN f.id END, f.name, m.uid",
        [folder],
        |r| {
            Ok(Row {
                id: r.get(0)?,
                folder: r.get(1)?,
                uid: r.get(2)?,
                internal_date: r.get(3)?,
                size: r.get::<_, i64>(4)? as u64,
            })
        },
    )
    .map_err(|e| mb.sql(e))
}

/// Runs `f` inside one read transaction: every message it reads comes
/// from the same snapshot.
fn in_snapshot<T>(
    mb: &Mailbox,
    f: impl FnOnce() -> Result<T, ExchangeError>,
) -> Result<T, ExchangeError> {
    mb.conn()
        .execute_batch("BEGIN DEFERRED")
        .map_err(|e| mb.sql(e))?;
    let result = f();
    // A read transaction: nothing to keep.
    let _ = mb.conn().execute_batch("ROLLBACK");
    result
}

/// Copies one stored message into `out`, piece by piece.
fn copy_message(mb: &Mailbox, id: i64, out: &mut impl Write) -> Result<u64, ExchangeError> {
    let blob = mb
        .conn()
        .blob_open(MAIN_DB, "messages", "raw", id, true)
        .map_err(|e| mb.sql(e))?;
    let mut reader = io::BufReader::with_capacity(mbox::PIECE, blob);
    io::copy(&mut reader, out).map_err(|e| mb.io("read a message", e).into())
}

/// Writes the messages as mboxrd to `out`.
pub fn export_mbox(
    mb: &Mailbox,
    out: &mut impl Write,
    folder: Option<&str>,
) -> Result<ExportReport, ExchangeError> {
    let folder = folder.map(|f| resolve_folder(mb, f)).transpose()?;
    in_snapshot(mb, || {
        let mut report = ExportReport::default();
        for row in rows(mb, folder.as_deref())? {
            let blob = mb
                .conn()
                .blob_open(MAIN_DB, "messages", "raw", row.id, true)
                .map_err(|e| mb.sql(e))?;
            mbox::write_message(out, &mbox::from_line(row.internal_date), blob)
                .map_err(|e| ExchangeError::io(Path::new("mbox"), "write", e))?;
            report.messages += 1;
            report.bytes += row.size;
        }
        Ok(report)
    })
}

/// Writes the mboxrd file `dest` (never an existing one): into a temporary
/// file beside it, fsync, rename.
pub fn export_mbox_file(
    mb: &Mailbox,
    dest: &Path,
    folder: Option<&str>,
) -> Result<ExportReport, ExchangeError> {
    if dest.symlink_metadata().is_ok() {
        return Err(ExchangeError::Exists {
            path: dest.to_owned(),
        });
    }
    let tmp = temp_beside(dest);
    let file = create_private(&tmp)?;
    let result = (|| {
        let mut out = BufWriter::with_capacity(256 * 1024, &file);
        let report = export_mbox(mb, &mut out, folder)?;
        out.flush()
            .map_err(|e| ExchangeError::io(&tmp, "write", e))?;
        drop(out);
        file.sync_all()
            .map_err(|e| ExchangeError::io(&tmp, "fsync", e))?;
        // Not over a file that appeared meanwhile.
        fs::hard_link(&tmp, dest).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => ExchangeError::Exists {
                path: dest.to_owned(),
            },
            _ => ExchangeError::io(dest, "create", e),
        })?;
        sync_parent(dest)?;
        Ok(report)
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Writes each message to `dest/FOLDER/UID.eml`. `dest` must not exist,
/// or be an empty directory. Folder names are written with `%XX` for `/`,
/// `%`, control characters and a leading dot; no address is ever part of a
/// file name.
pub fn export_eml(
    mb: &Mailbox,
    dest: &Path,
    folder: Option<&str>,
) -> Result<ExportReport, ExchangeError> {
    let folder = folder.map(|f| resolve_folder(mb, f)).transpose()?;
    match fs::read_dir(dest) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(ExchangeError::Exists {
                    path: dest.to_owned(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => make_dir(dest)?,
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(ExchangeError::Exists {
                path: dest.to_owned(),
            });
        }
        Err(e) => return Err(ExchangeError::io(dest, "read", e)),
    }
    in_snapshot(mb, || {
        let mut report = ExportReport::default();
        let mut dir: Option<(String, PathBuf)> = None;
        for row in rows(mb, folder.as_deref())? {
            if dir.as_ref().is_none_or(|(name, _)| *name != row.folder) {
                let d = dest.join(folder_file_name(&row.folder));
                make_dir(&d)?;
                dir = Some((row.folder.clone(), d));
            }
            let Some((_, d)) = &dir else { continue };
            let path = d.join(format!("{}.eml", row.uid));
            let file = create_private(&path)?;
            let mut out = BufWriter::with_capacity(256 * 1024, &file);
            copy_message(mb, row.id, &mut out)?;
            out.flush()
                .map_err(|e| ExchangeError::io(&path, "write", e))?;
            drop(out);
            file.sync_data()
                .map_err(|e| ExchangeError::io(&path, "fsync", e))?;
            report.messages += 1;
            report.bytes += row.size;
        }
        Ok(report)
    })
}

/// A folder name as a file name: `/`, `%`, control characters and a
/// leading dot as `%XX`.
pub fn folder_file_name(name: &str) -> String {
    text::percent_encode(name, |i, c| {
        c == '/' || c == '%' || c.is_control() || (i == 0 && c == '.')
    })
}

/// Writes an encrypted copy of the mailbox to `dest` (a new file) under
/// `passphrase` — the mailbox's own, or a new one — with SQLite's online
/// backup API; with `folder`, the other folders' messages are then deleted
/// from the copy (secure_delete). The copy is opened through the guard
/// before this returns.
pub fn export_sqlite(
    mb: &Mailbox,
    dest: &Path,
    passphrase: &str,
    folder: Option<&str>,
    lock_timeout: Duration,
) -> Result<ExportReport, ExchangeError> {
    let folder = folder.map(|f| resolve_folder(mb, f)).transpose()?;
    create_private(dest)?;
    let result = (|| {
        let mut copy = keyed_connection(dest, passphrase)?;
        let sql = |e| ExchangeError::Sqlite {
            path: dest.to_owned(),
            source: e,
        };
        {
            let backup = rusqlite::backup::Backup::new(mb.conn(), &mut copy).map_err(sql)?;
            backup
                .run_to_completion(256, Duration::from_millis(5), None)
                .map_err(sql)?;
        }
        if let Some(folder) = &folder {
            copy.execute(
                "DELETE FROM messages WHERE folder_id <> (SELECT id FROM folders WHERE name = ?1)",
                [folder],
            )
            .map_err(sql)?;
        }
        copy.execute("DELETE FROM drop_merged", []).map_err(sql)?;
        let report: (i64, i64) = copy
            .query_row(
                "SELECT count(*), coalesce(sum(size), 0) FROM messages",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql)?;
        copy.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql)?;
        drop(copy);
        if starts_plaintext(dest).map_err(|e| ExchangeError::io(dest, "read", e))? {
            return Err(MailboxError::NotEncrypting {
                path: dest.to_owned(),
                answer: "the copy was written in plaintext".into(),
            }
            .into());
        }
        // The copy opens through the guard, with the passphrase it is under.
        drop(Mailbox::open_for_check(dest, passphrase, lock_timeout)?);
        File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(|e| ExchangeError::io(dest, "fsync", e))?;
        sync_parent(dest)?;
        Ok(ExportReport {
            messages: report.0 as u64,
            bytes: report.1 as u64,
        })
    })();
    if result.is_err() {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = dest.as_os_str().to_owned();
            p.push(suffix);
            let _ = fs::remove_file(p);
        }
    }
    result
}

/// A connection to a new, empty file, encrypted under `passphrase` with
/// the mailbox cipher before anything is written to it.
pub(crate) fn keyed_connection(path: &Path, passphrase: &str) -> Result<Connection, ExchangeError> {
    let sql = |e| ExchangeError::Sqlite {
        path: path.to_owned(),
        source: e,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    super::set_key(&conn, path, passphrase).map_err(|e| match e {
        MailboxError::Sqlite { source, .. } => sql(source),
        e => e.into(),
    })?;
    Ok(conn)
}

/// A new file, mode 0600; an existing one is refused.
pub(crate) fn create_private(path: &Path) -> Result<File, ExchangeError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => ExchangeError::Exists {
                path: path.to_owned(),
            },
            _ => ExchangeError::io(path, "create", e),
        })
}

pub(crate) fn make_dir(dir: &Path) -> Result<(), ExchangeError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map_err(|e| ExchangeError::io(dir, "create directory", e)),
    }
}

/// `.NAME.tmp-RANDOM` in the same directory as `path`.
pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let tag = text::hex(&bytes);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{tag}"))
}

pub(crate) fn sync_parent(path: &Path) -> Result<(), ExchangeError> {
    crate::store::durable::sync_parent(path)
        .map_err(|e| ExchangeError::io(path, "fsync the directory of", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{deliver, mbox};
    use std::time::SystemTime;

    const PW: &str = "correct horse battery staple";
    const LOCK: Duration = Duration::from_secs(5);

    fn mailbox_with(msgs: &[(&str, &[u8])]) -> (tempfile::TempDir, Mailbox) {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_452_559);
        let mut mb = Mailbox::create(&dir.path().join("bob.sqlite"), PW, LOCK, now).unwrap();
        for (folder, raw) in msgs {
            deliver(&mut mb, raw, folder, now).unwrap();
        }
        (dir, mb)
    }

    #[test]
    fn folder_names_become_safe_file_names() {
        assert_eq!(folder_file_name("INBOX"), "INBOX");
        assert_eq!(folder_file_name("Sent Mail"), "Sent Mail");
        assert_eq!(folder_file_name("a/b%c"), "a%2Fb%25c");
        assert_eq!(folder_file_name(".hidden"), "%2Ehidden");
        assert_eq!(folder_file_name("x\ny"), "x%0Ay");
        assert_eq!(folder_file_name(".."), "%2E.");
    }

    #[test]
    fn mbox_export_reads_back_message_for_message() {
        let a: &[u8] = b"Subject: a\n\nFrom the top\n";
        let b: &[u8] = b"Subject: b\n\n>From quoted\n";
        let (_dir, mb) = mailbox_with(&[("INBOX", a), ("Archive", b), ("INBOX", a)]);
        let mut out = Vec::new();
        let report = export_mbox(&mb, &mut out, None).unwrap();
        assert_eq!(report.messages, 3);
        let mut reader = mbox::MboxReader::new(&out[..], 1 << 20);
        let mut back = Vec::new();
        while let Some(m) = reader.next_message().unwrap() {
            back.push(m.raw);
        }
        // Standard folders in their order, then by UID.
        assert_eq!(back, [a, a, b]);
        let mut out = Vec::new();
        assert_eq!(
            export_mbox(&mb, &mut out, Some("archive"))
                .unwrap_err()
                .to_string(),
            "no folder \"archive\""
        );
        let r = export_mbox(&mb, &mut out, Some("inbox")).unwrap();
        assert_eq!(r.messages, 2);
    }

    /// The messages of the golden mbox: a plain one, one whose body has
    /// `From ` lines (quoted or not, one a From_ line after an empty
    /// line), one with CRLF line endings, one without a final newline,
    /// one in another folder.
    const GOLDEN_MESSAGES: [(&str, &[u8]); 5] = [
        (
            "INBOX",
            b"From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: plain\n\nhello\n",
        ),
        (
            "INBOX",
            b"From: Alice <alice@example.org>\nSubject: from-lines\n\nFrom here on\n\
              >From there\n>>From everywhere\n\nFrom alice@example.org Mon Jan  1 00:00:00 \
              2024\nend\n",
        ),
        (
            "INBOX",
            b"From: Carol <carol@example.org>\r\nSubject: windows\r\n\r\nline one\r\n\
              line two\r\n",
        ),
        ("INBOX", b"Subject: no-newline\n\nthe last line has no end"),
        (
            "Archive",
            b"Subject: archived\n\n\nFrom the archive, after an empty line\n",
        ),
    ];

    /// The mbox export, byte for byte, against tests/golden/export.mbox
    /// (`POSTERN_BLESS=1` writes it anew, to be read and committed).
    #[test]
    fn mbox_export_matches_the_golden_file() {
        let (_dir, mb) = mailbox_with(&GOLDEN_MESSAGES);
        let mut out = Vec::new();
        export_mbox(&mb, &mut out, None).unwrap();
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/export.mbox");
        if std::env::var_os("POSTERN_BLESS").is_some() {
            fs::write(&golden, &out).unwrap();
        }
        let want = fs::read(&golden).unwrap();
        assert!(
            out == want,
            "export differs from {}:\n{}",
            golden.display(),
            String::from_utf8_lossy(&out)
        );
        // Read back, each message is as delivered, with LF line endings
        // and a final newline.
        let mut reader = mbox::MboxReader::new(&want[..], 1 << 20);
        let mut back = Vec::new();
        while let Some(m) = reader.next_message().unwrap() {
            back.push(m.raw);
        }
        // (Standard folders come in their order: INBOX, then Archive.)
        let expected: Vec<Vec<u8>> = GOLDEN_MESSAGES
            .iter()
            .map(|(_, raw)| {
                let mut m = String::from_utf8_lossy(raw).replace("\r\n", "\n");
                if !m.ends_with('\n') {
                    m.push('\n');
                }
                m.into_bytes()
            })
            .collect();
        assert_eq!(back, expected);
    }

    #[test]
    fn sqlite_export_under_a_new_passphrase() {
        let (dir, mb) = mailbox_with(&[("INBOX", b"Subject: x\n\nsecret words\n")]);
        let dest = dir.path().join("copy.sqlite");
        let r = export_sqlite(&mb, &dest, "another one", None, LOCK).unwrap();
        assert_eq!(r.messages, 1);
        assert!(!starts_plaintext(&dest).unwrap());
        assert!(matches!(
            Mailbox::open_for_check(&dest, PW, LOCK),
            Err(MailboxError::WrongPassphrase { .. })
        ));
        let copy = Mailbox::open_for_check(&dest, "another one", LOCK).unwrap();
        assert_eq!(
            crate::mailbox::search(&copy, "secret", None, None)
                .unwrap()
                .len(),
            1
        );
        // Never over an existing file, which is left alone.
        assert!(matches!(
            export_sqlite(&mb, &dest, PW, None, LOCK),
            Err(ExchangeError::Exists { .. })
        ));
        drop(copy);
        assert!(Mailbox::open_for_check(&dest, "another one", LOCK).is_ok());
    }

    #[test]
    fn a_new_passphrase_is_for_an_sqlite_copy_only() {
        use crate::exit::{Sysexit, ToFailure};
        let (dir, mb) = mailbox_with(&[("INBOX", b"Subject: x\n\nwords\n")]);
        let mbox = dir.path().join("out.mbox");
        let refused = export(&mb, Format::Mbox, &mbox, None, PW, Some("new"), LOCK).unwrap_err();
        assert!(matches!(refused, ExchangeError::NewPassphraseNotSqlite));
        assert_eq!(refused.to_failure().exit, Sysexit::Config);
        assert!(!mbox.exists());
        assert_eq!(
            export(&mb, Format::Mbox, &mbox, None, PW, None, LOCK)
                .unwrap()
                .messages,
            1
        );
        let eml = dir.path().join("eml");
        assert_eq!(
            export(&mb, Format::Eml, &eml, None, PW, None, LOCK)
                .unwrap()
                .messages,
            1
        );
        // Without a new one, the copy keeps the mailbox's passphrase.
        let same = dir.path().join("same.sqlite");
        export(&mb, Format::Sqlite, &same, None, PW, None, LOCK).unwrap();
        assert!(Mailbox::open_for_check(&same, PW, LOCK).is_ok());
        let new = dir.path().join("new.sqlite");
        export(&mb, Format::Sqlite, &new, None, PW, Some("new"), LOCK).unwrap();
        assert!(Mailbox::open_for_check(&new, "new", LOCK).is_ok());
        let broken =
            ExchangeError::io(Path::new("mbox"), "write", io::ErrorKind::BrokenPipe.into());
        assert!(broken.is_broken_pipe() && !refused.is_broken_pipe());
    }
}
