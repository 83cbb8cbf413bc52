//! `postern-maildb deliver USER`: local delivery for Postfix's pipe(8).
//! The message is sealed into the drop area of USER's mailbox (no
//! passphrase, see [`drop_area`]) after the quota check ([`quota`]).
//!
//! Every failure is the one Postfix must read (see
//! [`MailboxError::to_delivery_failure`]): a missing mailbox bounces
//! (5.1.1), a full one too (5.2.2), a locked or broken one defers (4.x), so
//! mail is never lost to a problem on our side. The details, which name
//! the mailbox file and so the address, go to postern's log only.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use super::{MailboxError, drop_area, name, quota};
use crate::config::MaildbConfig;
use crate::exit::{Failure, ToFailure};
use crate::log::Log;

/// The mailbox file of `user` in the mailbox directory.
pub fn mailbox_path(config: &MaildbConfig, user: &str) -> Result<PathBuf, Failure> {
    name::path(&config.directory, user).map_err(|e| MailboxError::from(e).to_delivery_failure())
}

/// Seals `msg` into the drop area of the mailbox at `path`, for `folder`
/// (INBOX when there is none by that name at the next open); `now` is the
/// message's arrival. Logs the outcome, naming `user` only when the log
/// may show addresses.
pub fn deliver(
    config: &MaildbConfig,
    path: &Path,
    user: &str,
    msg: &[u8],
    folder: &str,
    now: SystemTime,
    log: &Log,
) -> Result<drop_area::DropReceipt, Failure> {
    if msg.is_empty() {
        return Err(MailboxError::EmptyMessage.to_failure());
    }
    // The figures go to postern's log, not to the sender.
    quota::check_delivery(path, msg.len() as u64, config.quota).map_err(|e| {
        log.warning(format_args!("deliver refused: 5.2.2 {e}"));
        e.to_failure()
    })?;
    let started = Instant::now();
    let receipt = drop_area::deliver_sealed(path, msg, folder, now, config.directory_fsync)
        .map_err(|e| {
            let f = e.to_delivery_failure();
            // The whole error names the mailbox file, so the address.
            if log.shows_addresses() {
                log.warning(format_args!("deliver failed: {} {e}", f.status));
            } else {
                log.warning(format_args!("deliver failed: {} {}", f.status, f.text));
            }
            f
        })?;
    let who = if log.shows_addresses() {
        format!(" user={user}")
    } else {
        String::new()
    };
    log.info(format_args!(
        "sealed: size={} sealed_size={}{who} delay={:.3}s",
        msg.len(),
        receipt.size,
        started.elapsed().as_secs_f64()
    ));
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Sysexit;
    use crate::mail::status;
    use crate::mailbox::{Mailbox, list};
    use std::time::Duration;

    const PW: &str = "pw";
    const LOCK: Duration = Duration::from_secs(5);

    fn config(dir: &Path, quota: u64) -> MaildbConfig {
        MaildbConfig {
            directory: dir.to_owned(),
            quota,
            ..MaildbConfig::default()
        }
    }

    #[test]
    fn delivers_sealed_and_refuses_what_postfix_must_bounce() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::discard("test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_452_559);
        let cfg = config(dir.path(), 0);

        let bad = mailbox_path(&cfg, "../etc").unwrap_err();
        assert_eq!(bad.exit, Sysexit::NoUser);

        let path = mailbox_path(&cfg, "bob").unwrap();
        let missing = deliver(
            &cfg,
            &path,
            "bob",
            b"Subject: a\r\n\r\nhi\r\n",
            "INBOX",
            now,
            &log,
        )
        .unwrap_err();
        assert_eq!(
            (missing.exit, missing.status),
            (Sysexit::NoUser, status::NO_SUCH_MAILBOX)
        );
        // No file name, so no address, in what Postfix puts in a bounce.
        assert!(!missing.text.contains("bob"), "{}", missing.text);

        drop(Mailbox::create(&path, PW, LOCK, now).unwrap());
        let empty = deliver(&cfg, &path, "bob", b"", "INBOX", now, &log).unwrap_err();
        assert_eq!(empty.exit, Sysexit::DataErr);
        let msg = b"Subject: hello\r\n\r\nhi\r\n";
        let receipt = deliver(&cfg, &path, "bob", msg, "INBOX", now, &log).unwrap();
        assert!(receipt.size > msg.len() as u64);

        let full = config(dir.path(), 1);
        let over = deliver(&full, &path, "bob", msg, "INBOX", now, &log).unwrap_err();
        assert_eq!(
            (over.exit, over.status),
            (Sysexit::Unavailable, status::MAILBOX_FULL)
        );

        let mb = Mailbox::open(&path, PW, LOCK, now).unwrap();
        let subjects: Vec<String> = list(&mb, "INBOX")
            .unwrap()
            .into_iter()
            .map(|s| s.subject)
            .collect();
        assert_eq!(subjects, ["hello"]);
    }
}
