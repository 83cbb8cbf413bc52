//! Golden files for the job stream (postern-job(5)): the bytes on disk in
//! tests/golden/ are what the writer writes, byte for byte, for fixed
//! inputs; the reader reads them back to the same jobs, and postern-receiver
//! writes what the library writes once its random parts (queue id, arrival
//! time) are fixed to the ones it chose.
//!
//! A change of the format shows here as a diff of a file. To accept one on
//! purpose (and bump the format version when old readers would break),
//! run with POSTERN_BLESS=1 and commit the new files.

mod util;

use std::time::{Duration, SystemTime};

use postern::config::Config;
use postern::mail::address::{Address, Sender};
use postern::mail::job::{
    Envelope, Job, JobReader, Notify, QueueId, RcptStatus, Recipient, Ret, write_job,
};
use postern::mail::status;
use postern::receiver::{self, Arrival};

fn read_all(bytes: &[u8]) -> Vec<Job> {
    let mut reader = JobReader::new(bytes, u64::MAX);
    let mut jobs = Vec::new();
    loop {
        match reader.next_job() {
            Ok(Some(job)) => jobs.push(job),
            Ok(None) => return jobs,
            Err(e) => panic!("a golden stream does not read: {e}"),
        }
    }
}

/// 2026-11-23T16:31:44Z.
fn fixed_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_451_504)
}

fn qid(s: &str) -> QueueId {
    QueueId::parse(s).expect("a queue id")
}

// ---------------------------------------------------------------------------
// What the receiver writes

/// A message with what the receiver must keep exactly: CRLF line ends, a
/// folded header, 8-bit UTF-8 (so `eight-bit: yes`), dot lines, trailing
/// white space, no final line end.
const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\n\
To: Bob <bob@example.net>\r\n\
Subject: golden\r\n\
X-Folded: one\r\n\
\ttwo\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Gr\xc3\xbc\xc3\x9fe, caf\xc3\xa9\r\n\
.\r\n\
..leading dots\r\n\
trailing white space   \r\n\
no final line end";

const RECEIVER_ARGS: &[&str] = &[
    "--queue-id=4Pz1GOLDEN",
    "--client-address=192.0.2.7",
    "--client-hostname=mail.example.org",
    "--client-helo=mail.example.org",
    "--sasl-username=alice",
    "-f",
    "alice@example.org",
    "--",
    "bob@example.net",
    "carol@example.net",
];

fn arrival() -> Arrival {
    Arrival {
        sender: "alice@example.org".into(),
        recipients: vec!["bob@example.net".into(), "carol@example.net".into()],
        client_address: Some("192.0.2.7".into()),
        client_hostname: Some("mail.example.org".into()),
        client_helo: Some("mail.example.org".into()),
        sasl_username: Some("alice".into()),
        upstream_queue_id: Some("4Pz1GOLDEN".into()),
    }
}

/// The job for [`MESSAGE`] as the receiver's library code writes it.
fn received_job(hostname: &str, now: SystemTime, queue_id: QueueId) -> Vec<u8> {
    let config = Config {
        hostname: hostname.into(),
        ..Config::default()
    };
    let accepted = receiver::accept(
        &config,
        "postern-receiver",
        &arrival(),
        MESSAGE,
        now,
        queue_id,
    )
    .expect("the golden message is accepted");
    let mut out = Vec::new();
    write_job(&mut out, &accepted.envelope, &accepted.parts(MESSAGE)).expect("write to a Vec");
    out
}

#[test]
fn the_receivers_job_for_a_fixed_message() {
    let bytes = received_job("mx.test.example", fixed_time(), qid("8F3A2C91D04B7E65"));
    util::check_golden("received.job", &bytes);
    let jobs = read_all(&bytes);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].to_bytes(), bytes, "read and written back");
    assert!(jobs[0].message.ends_with(b"no final line end"));
}

/// postern-receiver itself writes, for the same input, what the library
/// writes with the queue id and arrival time the binary chose.
#[test]
fn the_receiver_binary_writes_the_same_bytes() {
    let site = util::Site::new(util::closed_port());
    let out = site.run(util::RECEIVER, RECEIVER_ARGS, MESSAGE);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let jobs = read_all(&out.stdout);
    assert_eq!(jobs.len(), 1);
    let env = &jobs[0].envelope;
    let expect = received_job("mx.test.example", env.arrival, env.queue_id.clone());
    assert!(
        out.stdout == expect,
        "the binary and the library differ:\n--- binary ---\n{}\n--- library ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expect)
    );
    // And with its random parts replaced by the fixed ones, it is the
    // golden file.
    let fixed = String::from_utf8_lossy(&out.stdout)
        .replace(env.queue_id.as_str(), "8F3A2C91D04B7E65")
        .into_bytes();
    let golden = std::fs::read(util::golden_path("received.job")).expect("received.job");
    let golden_lines = String::from_utf8_lossy(&golden);
    let fixed_lines = String::from_utf8_lossy(&fixed);
    // The arrival time (envelope and Received: date, whose length moves
    // the size) is the one part left.
    let differing: Vec<(&str, &str)> = golden_lines
        .lines()
        .zip(fixed_lines.lines())
        .filter(|(g, f)| g != f)
        .collect();
    assert_eq!(golden_lines.lines().count(), fixed_lines.lines().count());
    assert!(
        differing.iter().all(|(g, _)| ["arrival: ", "size: ", "\t"]
            .iter()
            .any(|p| g.starts_with(p))),
        "{differing:#?}"
    );
}

// ---------------------------------------------------------------------------
// Every field

/// A stream of two jobs: one with every envelope and recipient field set,
/// then one with as few as a job can have (null sender).
fn every_field_stream() -> Vec<Job> {
    let mut env = Envelope::new(
        qid("8F3A2C91D04B7E65"),
        fixed_time(),
        Sender::parse("alice@example.org").expect("sender"),
    );
    env.client_address = Some("192.0.2.1".into());
    env.client_hostname = Some("mail.example.org".into());
    env.client_helo = Some("helo.example.org".into());
    env.sasl_username = Some("alice".into());
    env.upstream_queue_id = Some("4Pz1Vx".into());
    env.attempts = 3;
    env.next_attempt = Some(fixed_time() + Duration::from_secs(1200));
    env.eight_bit = true;
    env.envid = Some("QQ314159".into());
    env.ret = Some(Ret::Headers);
    env.delay_warned = 2;
    env.extra = vec![("scan-verdict".into(), "clean".into())];
    let rcpt = |a: &str| Recipient::new(Address::parse(a).expect("address"));
    let mut bob = rcpt("bob@example.net");
    bob.orcpt = Some("rfc822;bob@example.net".into());
    bob.notify = Notify::parse("SUCCESS,FAILURE,DELAY").expect("notify");
    let mut carol = rcpt("carol@example.net");
    carol.status = RcptStatus::Delivered;
    carol.notify = Notify::parse("NEVER").expect("notify");
    carol.diagnostic = Some("smtp; 250 2.0.0 Ok: queued as 4Pz1Vx".into());
    carol.remote_mta = Some("dns; mx1.example.net".into());
    carol.last_attempt = Some(fixed_time() + Duration::from_secs(600));
    carol.dsn_passed = true;
    let mut dave = rcpt("dave@example.net");
    dave.status = RcptStatus::Deferred {
        code: status::MAILBOX_BUSY,
    };
    dave.diagnostic = Some("smtp; 450 4.2.0 greylisted, try again".into());
    dave.category = Some("greylist".into());
    let mut erin = rcpt("\"erin smith\"@[192.0.2.9]");
    erin.status = RcptStatus::Failed {
        code: status::NO_SUCH_MAILBOX,
    };
    erin.diagnostic = Some("smtp; 550 5.1.1 no such user".into());
    erin.extra = vec![("pgp-key".into(), "0xABCD".into())];
    let mut frank = rcpt("frank@bücher.example");
    frank.orcpt = Some("utf-8;frank@bücher.example".into());
    env.recipients = vec![bob, carol, dave, erin, frank];
    let full = Job {
        envelope: env,
        message: "Subject: every field\r\n\r\nGrüße\r\nend\r\n".into(),
    };

    let mut bounce = Envelope::new(qid("B0"), fixed_time(), Sender::Null);
    bounce.recipients = vec![rcpt("alice@example.org")];
    let minimal = Job {
        envelope: bounce,
        message: Vec::new(),
    };
    vec![full, minimal]
}

#[test]
fn a_stream_with_every_field_set() {
    let jobs = every_field_stream();
    let bytes: Vec<u8> = jobs.iter().flat_map(Job::to_bytes).collect();
    util::check_golden("every-field.job", &bytes);
    assert_eq!(
        read_all(&bytes),
        jobs,
        "the golden stream reads back as the jobs"
    );
    let again: Vec<u8> = read_all(&bytes).iter().flat_map(Job::to_bytes).collect();
    assert_eq!(again, bytes, "read and written back, byte for byte");
}
