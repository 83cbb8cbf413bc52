//! SMTP delivery of one job to a relay (RFC 5321), with a result for each
//! recipient: RCPT replies are taken one by one, so one refused recipient
//! does not hold up the others.
//!
//! Replies map onto recipient statuses: 2xx delivered, 4xx deferred, 5xx
//! failed. A connection that fails or drops before the final reply to DATA
//! leaves every recipient still undone deferred; one that drops after the
//! message was sent but before the reply may lead to a second delivery
//! later, which is the at-least-once promise of postern(7).

use std::time::Duration;

use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::extension::{ClientId, Extension};

use crate::job::{Job, RcptStatus, is_enhanced_code};

/// Bytes of message handed to the connection at a time.
const CHUNK: usize = 64 * 1024;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub helo: String,
    pub timeout: Duration,
}

impl Relay {
    pub fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A negative or missing reply, as RFC 3464 wants it in a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    permanent: bool,
    /// Enhanced status code: from the reply text, else the class default.
    code: String,
    /// `smtp; 550 5.1.1 ...` or a local reason.
    diagnostic: String,
    /// The basic reply code, e.g. 550; 0 when there was no reply.
    basic: u16,
}

impl Reply {
    fn from_error(e: &lettre::transport::smtp::Error, stage: &str) -> Reply {
        match e.status() {
            Some(code) => {
                let basic: u16 = code.to_string().parse().unwrap_or(0);
                let permanent = e.is_permanent();
                let text = std::error::Error::source(e)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let first = text.split_whitespace().next().unwrap_or("");
                let class = if permanent { '5' } else { '4' };
                let enhanced = if is_enhanced_code(first, class) {
                    first.to_owned()
                } else {
                    format!("{class}.0.0")
                };
                Reply {
                    permanent,
                    code: enhanced,
                    diagnostic: format!("smtp; {basic} {text}"),
                    basic,
                }
            }
            None => Reply::local(format!("{stage}: {e}")),
        }
    }

    /// No usable reply (connection refused, timeout, dropped): 4.4.1/4.4.2.
    fn local(reason: String) -> Reply {
        Reply {
            permanent: false,
            code: "4.4.2".into(),
            diagnostic: format!("x-postern; {reason}"),
            basic: 0,
        }
    }
}

/// What one attempt did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivered: usize,
    pub deferred: usize,
    pub failed: usize,
    /// The reply or reason that ended the transaction early, if one did
    /// (for the log: only its code is shown unless addresses may be).
    pub problem: Option<(String, String)>,
}

/// Tries every undone recipient of `job` once and records the outcome in
/// each recipient's status.
pub fn deliver(relay: &Relay, job: &mut Job) -> Attempt {
    let undone: Vec<usize> = (0..job.envelope.recipients.len())
        .filter(|&i| !job.envelope.recipients[i].status.is_done())
        .collect();
    let mut attempt = Attempt::default();
    if undone.is_empty() {
        return attempt;
    }
    let mut accepted = Vec::new();
    let result = transaction(relay, job, &undone, &mut accepted);
    let recipients = &mut job.envelope.recipients;
    match result {
        Ok(()) => {
            for &i in &accepted {
                recipients[i].status = RcptStatus::Delivered;
                recipients[i].diagnostic = None;
            }
        }
        Err(reply) => {
            // Every recipient not already settled by its own RCPT reply
            // shares the fate of the transaction.
            // (A recipient refused at RCPT already has its diagnostic.)
            for &i in &undone {
                if recipients[i].diagnostic.is_none() {
                    set_failure(&mut recipients[i], &reply);
                }
            }
            attempt.problem = Some((reply.code.clone(), reply.diagnostic.clone()));
        }
    }
    for &i in &undone {
        match recipients[i].status {
            RcptStatus::Delivered => attempt.delivered += 1,
            RcptStatus::Failed { .. } => attempt.failed += 1,
            _ => attempt.deferred += 1,
        }
    }
    attempt
}

fn set_failure(r: &mut crate::job::Recipient, reply: &Reply) {
    r.status = if reply.permanent {
        RcptStatus::Failed {
            code: reply.code.clone(),
        }
    } else {
        RcptStatus::Deferred {
            code: reply.code.clone(),
        }
    };
    r.diagnostic = Some(reply.diagnostic.clone());
}

/// One SMTP transaction. RCPT refusals are recorded on the recipients
/// directly; an `Err` is what ended the transaction for all the rest.
fn transaction(
    relay: &Relay,
    job: &mut Job,
    undone: &[usize],
    accepted: &mut Vec<usize>,
) -> Result<(), Reply> {
    // Clear stale diagnostics so that "has its own RCPT reply" is visible.
    for &i in undone {
        job.envelope.recipients[i].diagnostic = None;
    }
    let client = ClientId::Domain(relay.helo.clone());
    let addr = (relay.host.as_str(), relay.port);
    // A 5xx greeting is not a verdict on the message: like Postfix
    // (smtp_skip_5xx_greeting), treat it as a temporary failure.
    let mut conn = SmtpConnection::connect(addr, Some(relay.timeout), &client, None, None)
        .map_err(|e| {
            let mut reply = Reply::from_error(&e, &format!("connect to {}", relay.label()));
            if reply.permanent {
                reply.permanent = false;
                reply.code = "4.4.2".into();
            }
            reply
        })?;
    let info = conn.server_info();
    let mut params = String::new();
    if job.envelope.eight_bit && info.supports_feature(Extension::EightBitMime) {
        params.push_str(" BODY=8BITMIME");
    }
    let utf8 = job.envelope.sender.address().is_some_and(|a| a.is_utf8())
        || undone
            .iter()
            .any(|&i| job.envelope.recipients[i].address.is_utf8());
    if utf8 && info.supports_feature(Extension::SmtpUtfEight) {
        params.push_str(" SMTPUTF8");
    }
    let result = (|| {
        conn.command(format!("MAIL FROM:{}{params}\r\n", job.envelope.sender))
            .map_err(|e| Reply::from_error(&e, "MAIL FROM"))?;
        for &i in undone {
            let r = &mut job.envelope.recipients[i];
            match conn.command(format!("RCPT TO:<{}>\r\n", r.address)) {
                Ok(_) => accepted.push(i),
                Err(e) if e.status().is_some() => set_failure(r, &Reply::from_error(&e, "RCPT TO")),
                Err(e) => return Err(Reply::from_error(&e, "RCPT TO")),
            }
        }
        if accepted.is_empty() {
            return Ok(());
        }
        conn.command("DATA\r\n")
            .map_err(|e| Reply::from_error(&e, "DATA"))?;
        conn.message_iter(CrlfChunks::new(&job.message))
            .map_err(|e| Reply::from_error(&e, "end of DATA"))?;
        Ok(())
    })();
    if result.is_ok() {
        let _ = conn.quit();
    } else {
        conn.abort();
    }
    result
}

/// The message in chunks with bare LF turned into CRLF (RFC 5321 section
/// 2.3.8) and the final line ending left off, since the connection ends
/// DATA with `CRLF . CRLF` itself. Dot-stuffing is the connection's job.
struct CrlfChunks<'a> {
    rest: &'a [u8],
    last_was_cr: bool,
}

impl<'a> CrlfChunks<'a> {
    fn new(msg: &'a [u8]) -> Self {
        let msg = msg
            .strip_suffix(b"\n")
            .map_or(msg, |m| m.strip_suffix(b"\r").unwrap_or(m));
        CrlfChunks {
            rest: msg,
            last_was_cr: false,
        }
    }
}

impl Iterator for CrlfChunks<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.rest.is_empty() {
            return None;
        }
        let take = self.rest.len().min(CHUNK);
        let (chunk, rest) = self.rest.split_at(take);
        self.rest = rest;
        let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 32 + 2);
        for &b in chunk {
            if b == b'\n' && !self.last_was_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.last_was_cr = b == b'\r';
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crlf(msg: &[u8]) -> Vec<u8> {
        CrlfChunks::new(msg).flatten().collect()
    }

    #[test]
    fn line_endings_become_crlf_once() {
        assert_eq!(crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc");
        assert_eq!(crlf(b"a\r\nb\r\n"), b"a\r\nb");
        assert_eq!(crlf(b"no newline at end"), b"no newline at end");
        assert_eq!(crlf(b""), b"");
        // A CRLF split across chunks is not doubled.
        let mut big = vec![b'x'; CHUNK - 1];
        big.extend_from_slice(b"\r\ny\n");
        let out = crlf(&big);
        assert!(out.ends_with(b"x\r\ny") && !out.windows(3).any(|w| w == b"\r\r\n"));
    }
}
