//! Taking a message in: the envelope from the command line (Postfix
//! pipe(8) style, `-f SENDER -- RCPT...`), the checks of `message`, and the
//! `Received:` trace header. What every stage does with a bare message.

use std::time::SystemTime;

use crate::config::Config;
use crate::exit::{Failure, Sysexit, ToFailure};
use crate::mail::address::{Address, AddressError, Sender};
use crate::mail::job::{Envelope, MAX_RECIPIENTS, QueueId, Recipient};
use crate::mail::message::{self, MessageError};
use crate::mail::status;
use crate::mail::text;

/// Longest client name or HELO kept (a DNS name is at most 255 octets).
const MAX_CLIENT_FIELD: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("bad sender address: {0}")]
    Sender(AddressError),
    #[error("bad recipient address #{index}: {error}")]
    Recipient { index: usize, error: AddressError },
    #[error("no recipients given (expected -f SENDER -- RCPT...)")]
    NoRecipients,
    #[error("too many recipients: {0} (at most {MAX_RECIPIENTS})")]
    TooManyRecipients(usize),
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl ToFailure for ReceiveError {
    fn to_failure(&self) -> Failure {
        let text = self.to_string();
        match self {
            ReceiveError::Sender(_) => {
                Failure::new(Sysexit::DataErr, status::BAD_SENDER_SYNTAX, text)
            }
            ReceiveError::Recipient { .. } => {
                Failure::new(Sysexit::NoUser, status::BAD_RECIPIENT_SYNTAX, text)
            }
            // A master.cf mistake: Postfix keeps the mail until it is fixed.
            ReceiveError::NoRecipients => Failure::config(text),
            ReceiveError::TooManyRecipients(_) => {
                Failure::new(Sysexit::Unavailable, status::TOO_MANY_RECIPIENTS, text)
            }
            ReceiveError::Message(e) => e.to_failure(),
        }
    }
}

/// What the MTA told us about the message besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct Arrival {
    pub sender: String,
    pub recipients: Vec<String>,
    pub client_address: Option<String>,
    pub client_hostname: Option<String>,
    pub client_helo: Option<String>,
    pub sasl_username: Option<String>,
    pub upstream_queue_id: Option<String>,
}

/// An accepted message: its envelope and how to write its bytes.
#[derive(Debug)]
pub struct Accepted {
    pub envelope: Envelope,
    /// The `Received:` header to put in front.
    pub trace: String,
    skip: usize,
    separator_at: Option<usize>,
    eol: &'static str,
}

impl Accepted {
    /// The message as slices to write in order: the trace header, the
    /// message without a leading mbox `From ` line, and the empty line
    /// inserted where the header/body separator was missing. No copy of the
    /// message is made.
    pub fn parts<'a>(&'a self, msg: &'a [u8]) -> Vec<&'a [u8]> {
        let mut parts = vec![self.trace.as_bytes()];
        match self.separator_at {
            Some(at) => parts.extend([&msg[self.skip..at], self.eol.as_bytes(), &msg[at..]]),
            None => parts.push(&msg[self.skip..]),
        }
        parts
    }

    pub fn size(&self, msg: &[u8]) -> usize {
        self.parts(msg).iter().map(|p| p.len()).sum()
    }

    /// True if the header/body separator had to be inserted.
    pub fn repaired(&self) -> bool {
        self.separator_at.is_some()
    }
}

/// Validates an arriving message and builds its envelope. `tool` names the
/// stage in the `Received:` header.
pub fn accept(
    config: &Config,
    tool: &str,
    arrival: &Arrival,
    msg: &[u8],
    now: SystemTime,
    queue_id: QueueId,
) -> Result<Accepted, ReceiveError> {
    let sender = Sender::parse(&arrival.sender).map_err(ReceiveError::Sender)?;
    if arrival.recipients.is_empty() {
        return Err(ReceiveError::NoRecipients);
    }
    if arrival.recipients.len() > MAX_RECIPIENTS {
        return Err(ReceiveError::TooManyRecipients(arrival.recipients.len()));
    }
    let mut recipients = Vec::with_capacity(arrival.recipients.len());
    for (i, r) in arrival.recipients.iter().enumerate() {
        let address = Address::parse(r).map_err(|error| ReceiveError::Recipient {
            index: i + 1,
            error,
        })?;
        recipients.push(Recipient::new(address));
    }
    // Our own Received: header counts as one more hop.
    let inspection = message::inspect(
        msg,
        config.message_size_limit,
        config.hop_count_limit.saturating_sub(1),
    )?;
    let trace = message::received_header(
        &config.hostname,
        tool,
        queue_id.as_str(),
        now,
        inspection.eol,
    );
    let mut envelope = Envelope::new(queue_id, now, sender);
    envelope.recipients = recipients;
    envelope.client_address = client_field(&arrival.client_address);
    envelope.client_hostname = client_field(&arrival.client_hostname);
    envelope.client_helo = client_field(&arrival.client_helo);
    envelope.sasl_username = client_field(&arrival.sasl_username);
    envelope.upstream_queue_id = client_field(&arrival.upstream_queue_id);
    envelope.eight_bit = inspection.eight_bit;
    Ok(Accepted {
        envelope,
        trace,
        skip: inspection.skip,
        separator_at: inspection.missing_separator_at,
        eol: inspection.eol,
    })
}

/// Client details come from the SMTP client (HELO is whatever it said):
/// printable, bounded, and absent when empty.
fn client_field(value: &Option<String>) -> Option<String> {
    let v = text::bounded(value.as_deref()?, MAX_CLIENT_FIELD);
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::job::{JobReader, write_job};

    fn arrival(rcpts: &[&str]) -> Arrival {
        Arrival {
            sender: "alice@example.org".into(),
            recipients: rcpts.iter().map(|s| s.to_string()).collect(),
            client_helo: Some("evil\r\nhelo".into()),
            client_address: Some(String::new()),
            ..Arrival::default()
        }
    }

    fn qid() -> QueueId {
        QueueId::parse("AAAA").unwrap()
    }

    #[test]
    fn accepted_message_becomes_a_job() {
        let config = Config::default();
        let msg = b"Subject: hi\n\nbody\n";
        let a = accept(
            &config,
            "postern-receiver",
            &arrival(&["bob@example.net"]),
            msg,
            SystemTime::now(),
            qid(),
        )
        .unwrap();
        assert_eq!(a.envelope.client_helo.as_deref(), Some("evil helo"));
        assert_eq!(a.envelope.client_address, None);
        let mut out = Vec::new();
        write_job(&mut out, &a.envelope, &a.parts(msg)).unwrap();
        let job = JobReader::new(out.as_slice(), 1 << 20)
            .next_job()
            .unwrap()
            .unwrap();
        assert!(job.message.starts_with(b"Received: by "));
        assert!(job.message.ends_with(b"\nSubject: hi\n\nbody\n"));
        assert_eq!(job.message.len(), a.size(msg));
    }

    #[test]
    fn missing_separator_is_inserted() {
        let config = Config::default();
        let msg = b"Subject: hi\nbody without separator\n";
        let a = accept(
            &config,
            "t",
            &arrival(&["b@x.org"]),
            msg,
            SystemTime::now(),
            qid(),
        )
        .unwrap();
        assert!(a.repaired());
        let joined: Vec<u8> = a.parts(msg).concat();
        assert!(joined.ends_with(b"Subject: hi\n\nbody without separator\n"));
    }

    #[test]
    fn envelope_errors_map_to_the_right_codes() {
        let config = Config::default();
        let msg = b"Subject: hi\n\nbody\n";
        let now = SystemTime::now();
        let fail = |a: &Arrival| {
            accept(&config, "t", a, msg, now, qid())
                .unwrap_err()
                .to_failure()
        };
        let f = fail(&arrival(&[]));
        assert_eq!((f.exit, f.status), (Sysexit::Config, status::MISCONFIGURED));
        let f = fail(&arrival(&["ok@x.org", "bad\r\n@x.org"]));
        assert_eq!(
            (f.exit, f.status),
            (Sysexit::NoUser, status::BAD_RECIPIENT_SYNTAX)
        );
        assert!(f.text.contains("#2"));
        let mut a = arrival(&["ok@x.org"]);
        a.sender = "a\0@x.org".into();
        let f = fail(&a);
        assert_eq!(
            (f.exit, f.status),
            (Sysexit::DataErr, status::BAD_SENDER_SYNTAX)
        );
        let f = accept(&config, "t", &arrival(&["b@x.org"]), b"", now, qid())
            .unwrap_err()
            .to_failure();
        assert_eq!((f.exit, f.status), (Sysexit::DataErr, status::BAD_MESSAGE));
    }

    #[test]
    fn own_trace_header_counts_as_a_hop() {
        let config = Config {
            hop_count_limit: 2,
            ..Config::default()
        };
        let now = SystemTime::now();
        let two = b"Received: a\nReceived: b\n\nx\n";
        let f = accept(&config, "t", &arrival(&["b@x.org"]), two, now, qid())
            .unwrap_err()
            .to_failure();
        assert_eq!(f.status, status::LOOP);
        assert!(
            accept(
                &config,
                "t",
                &arrival(&["b@x.org"]),
                b"Received: a\n\nx\n",
                now,
                qid()
            )
            .is_ok()
        );
    }
}
