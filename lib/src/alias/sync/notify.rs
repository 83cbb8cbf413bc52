//! The mail a domain's admins get from a sync run (the `admins` setting
//! of the domain): what was created, changed, disabled and enabled, and
//! the problems not told before. One plain-text message per domain and
//! run, composed here; handed on through postern-rewriter and
//! postern-deliverer in this process, or to sendmail(1)
//! (`sync.notify`). Auto-Submitted: auto-generated (RFC 3834), so
//! auto-responders leave it alone; the envelope sender is the From
//! address, so a notification that cannot be delivered comes back to it.

use std::cell::OnceCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;

use super::plan::{Change, Counts};
use super::state::Outgoing;
use crate::config::{Config, NotifyMethod};
use crate::deliverer::Deliverer;
use crate::exit::Failure;
use crate::log::Log;
use crate::mail::address::{Address, Sender};
use crate::mail::date;
use crate::mail::job::{Envelope, Job, QueueId, Recipient};
use crate::rewriter::Rewriter;
use crate::stage::Stage;

/// What one notification says.
pub struct Notice<'a> {
    pub domain: &'a str,
    pub team: &'a str,
    /// The changes worth telling (no `Restate`).
    pub changes: &'a [&'a Change],
    /// Problems not reported before.
    pub problems: &'a [String],
    /// Why the run failed in this domain, if it did.
    pub failure: Option<&'a str>,
    pub from: &'a str,
    pub to: &'a [String],
    pub hostname: &'a str,
    pub date: SystemTime,
    /// Unique per message (the Message-ID's left part).
    pub id: &'a str,
}

/// The From (and envelope sender) of notifications.
pub fn from_address(config: &Config) -> String {
    if config.sync.notify_from.is_empty() {
        format!("postmaster@{}", config.hostname)
    } else {
        config.sync.notify_from.clone()
    }
}

/// The Subject: the domain and the counts.
pub fn subject(n: &Notice<'_>) -> String {
    let c = Counts::of(n.changes.iter().copied());
    let mut parts = Vec::new();
    for (k, what) in [
        (c.created, "created"),
        (c.changed, "changed"),
        (c.disabled, "disabled"),
        (c.enabled, "enabled again"),
    ] {
        if k > 0 {
            parts.push(format!("{k} {what}"));
        }
    }
    if n.failure.is_some() {
        parts.push("the sync failed".into());
    } else if !n.problems.is_empty() {
        parts.push(format!("{} problem(s)", n.problems.len()));
    }
    format!("Team addresses of {}: {}", n.domain, parts.join(", "))
}

/// The text: one section per kind of change, then the problems.
pub fn body(n: &Notice<'_>) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "This is postern-alias sync on {}: the team addresses of {} follow the team {}.\n",
        n.hostname, n.domain, n.team
    );
    if let Some(f) = n.failure {
        let _ = writeln!(
            t,
            "The sync failed, so nothing changed in {} this time:\n  {f}\n",
            n.domain
        );
    }
    let section = |t: &mut String, title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            let _ = writeln!(t, "{title}:");
            for l in lines {
                let _ = writeln!(t, "  {l}");
            }
            t.push('\n');
        }
    };
    let at = |u: &str| format!("{u}@{}", n.domain);
    let pick = |f: &dyn Fn(&Change) -> Option<String>| -> Vec<String> {
        n.changes.iter().filter_map(|c| f(c)).collect()
    };
    section(
        &mut t,
        "Created",
        pick(&|c| match c {
            Change::Create { username, address } => Some(format!("{} -> {address}", at(username))),
            _ => None,
        }),
    );
    section(
        &mut t,
        "Changed",
        pick(&|c| match c {
            Change::Retarget {
                username,
                old,
                address,
                ..
            } => Some(format!("{} -> {address} (was {old})", at(username))),
            _ => None,
        }),
    );
    section(
        &mut t,
        "Disabled (mail to them is now refused with 5.2.1)",
        pick(&|c| match c {
            Change::Disable {
                username, state, ..
            } => Some(format!("{}: {}", at(username), state.reason())),
            _ => None,
        }),
    );
    section(
        &mut t,
        "Enabled again",
        pick(&|c| match c {
            Change::Enable {
                username, address, ..
            } => Some(format!("{} -> {address}", at(username))),
            _ => None,
        }),
    );
    section(
        &mut t,
        "Problems (each is told once; it stays until it is fixed)",
        n.problems.to_vec(),
    );
    t.push_str("See postern-alias(8), SYNC, for what each of these means.\n");
    t
}

/// The whole message (CRLF line ends).
pub fn compose(n: &Notice<'_>) -> Vec<u8> {
    let to: Vec<&str> = n.to.iter().map(String::as_str).collect();
    MessageBuilder::new()
        .from(("postern team sync", n.from))
        .to(to)
        .subject(subject(n))
        .header("Date", Raw::new(date::rfc5322(n.date)))
        .message_id(format!("{}@{}", n.id, n.hostname))
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .header("MIME-Version", Raw::new("1.0"))
        .text_body(body(n))
        .write_to_vec()
        // Writing into a Vec cannot fail.
        .unwrap_or_default()
}

/// Hands notifications on, opening the rewriter and deliverer once.
pub struct Mailer<'a> {
    config: &'a Config,
    log: &'a Log,
    chain: OnceCell<(Rewriter<'a>, Deliverer<'a>)>,
}

impl<'a> Mailer<'a> {
    pub fn new(config: &'a Config, log: &'a Log) -> Mailer<'a> {
        Mailer {
            config,
            log,
            chain: OnceCell::new(),
        }
    }

    /// Delivers or spools `out` (deliverer), or has sendmail take it.
    /// `Ok` means it is no longer ours to keep.
    pub fn send(&mut self, out: &Outgoing, now: SystemTime) -> Result<(), Failure> {
        let from = from_address(self.config);
        match self.config.sync.notify {
            NotifyMethod::None => Ok(()),
            NotifyMethod::Sendmail => sendmail(self.config, &from, out),
            NotifyMethod::Deliverer => {
                let job = job(&from, out, now)?;
                if self.chain.get().is_none() {
                    let rewriter = Rewriter::open(self.config, self.log)?;
                    let deliverer = Deliverer::open(self.config, self.log)?;
                    let _ = self.chain.set((rewriter, deliverer));
                }
                let Some((rewriter, deliverer)) = self.chain.get_mut() else {
                    return Err(Failure::tempfail("the delivery chain could not be opened"));
                };
                for j in rewriter.process(job, now)? {
                    deliverer.handle(j, now)?;
                }
                Ok(())
            }
        }
    }
}

fn job(from: &str, out: &Outgoing, now: SystemTime) -> Result<Job, Failure> {
    let sender = Address::parse(from).map_err(|e| {
        Failure::config(format!("sync.notify_from {from:?} is not an address: {e}"))
    })?;
    let mut envelope = Envelope::new(QueueId::fresh()?, now, Sender::Mailbox(sender));
    for r in &out.recipients {
        // Checked when the admins setting was set; a store written by
        // hand may still hold anything.
        let a = Address::parse(r).map_err(|e| {
            Failure::config(format!(
                "{}: an address in the admins setting is not valid: {e}",
                out.domain
            ))
        })?;
        envelope.recipients.push(Recipient::new(a));
    }
    envelope.next_attempt = Some(now);
    envelope.eight_bit = !out.message.is_ascii();
    Ok(Job {
        envelope,
        message: out.message.clone(),
    })
}

/// `sendmail -oi -f FROM -- ADMINS...` with the message on its standard
/// input; its exit status says whether it took it.
fn sendmail(config: &Config, from: &str, out: &Outgoing) -> Result<(), Failure> {
    let program = &config.sync.sendmail;
    let fail = |what: String| Failure::tempfail(format!("sendmail {}: {what}", program.display()));
    let mut child = Command::new(program)
        .args(["-oi", "-f", from, "--"])
        .args(&out.recipients)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    // The message is small; the child reads it all before it answers.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&out.message))
        .unwrap_or(Ok(()));
    let output = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(fail(format!(
            "{} ({})",
            output.status,
            crate::mail::text::bounded(said.lines().next().unwrap_or(""), 200)
        )));
    }
    written.map_err(|e| fail(format!("cannot write the message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alias::sync::plan::SyncState;

    #[test]
    fn a_notice_lists_each_kind_and_the_problems() {
        let changes = [
            Change::Create {
                username: "alice".into(),
                address: "alice@example.org".into(),
            },
            Change::Disable {
                alias: 2,
                username: "bob".into(),
                state: SyncState::Left,
            },
        ];
        let refs: Vec<&Change> = changes.iter().collect();
        let to = vec!["council@example.net".to_owned()];
        let n = Notice {
            domain: "ubuntu.com",
            team: "~ubuntumembers",
            changes: &refs,
            problems: &["carol: no address known".to_owned()],
            failure: None,
            from: "postmaster@mx.example",
            to: &to,
            hostname: "mx.example",
            date: SystemTime::UNIX_EPOCH,
            id: "sync.1",
        };
        assert_eq!(
            subject(&n),
            "Team addresses of ubuntu.com: 1 created, 1 disabled, 1 problem(s)"
        );
        let text = String::from_utf8(compose(&n)).unwrap();
        assert!(
            text.contains("alice@ubuntu.com -> alice@example.org"),
            "{text}"
        );
        assert!(text.contains("bob@ubuntu.com: left the team"), "{text}");
        assert!(text.contains("carol: no address known"), "{text}");
        assert!(
            text.contains("Auto-Submitted: auto-generated\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Message-ID: <sync.1@mx.example>\r\n"),
            "{text}"
        );
    }
}
