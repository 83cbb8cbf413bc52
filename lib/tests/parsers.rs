//! Property tests of every parser of outside data, through the library's
//! public API (cargo-fuzz needs a nightly toolchain, which these machines
//! do not have; proptest runs anywhere): the job stream reader, the SMTP
//! reply reader, envelope addresses, unsealing, and DNS TXT alias records.
//!
//! Case counts are modest (256 to 512) so the whole file runs in seconds
//! on two cores; every case that ever failed is kept below as a named
//! regression test. Failures are not persisted to files: a failing case is
//! printed, shrunk, and belongs in a named test.

use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::time::{Duration, SystemTime};

use postern::alias::txt::{self, TxtKey};
use postern::alias::{Action, Pattern, compile_pattern};
use postern::deliverer::smtp::read_reply;
use postern::exit::{Sysexit, ToFailure};
use postern::mail::address::{Address, Sender};
use postern::mail::job::{
    Envelope, Job, JobError, JobReader, Notify, QueueId, RcptStatus, Recipient,
};
use postern::mail::status::Status;
use postern::store::seal::{self, SealKey};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The job stream

fn read_all(bytes: &[u8]) -> Result<Vec<Job>, JobError> {
    let mut reader = JobReader::new(bytes, 1 << 20);
    let mut jobs = Vec::new();
    while let Some(job) = reader.next_job()? {
        jobs.push(job);
    }
    Ok(jobs)
}

fn stream(jobs: &[Job]) -> Vec<u8> {
    jobs.iter().flat_map(Job::to_bytes).collect()
}

/// A job read from anything must be whole: written again it reads back
/// the same, and writing it is a fixed point.
fn assert_round_trips(job: &Job) {
    let bytes = job.to_bytes();
    let again = read_all(&bytes).expect("a job read must write back readable");
    assert_eq!(again, vec![job.clone()]);
    assert_eq!(again[0].to_bytes(), bytes);
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        "[a-z0-9][a-z0-9._+-]{0,15}@[a-z0-9]{1,10}(\\.[a-z]{2,6}){1,2}",
        "\"[a-z ]{1,10}\"@example\\.org",
        "[a-z]{1,8}@\\[192\\.0\\.2\\.[0-9]{1,3}\\]",
        "[a-zäöü]{1,8}@[a-zü]{1,8}\\.example",
    ]
    .prop_filter_map("a valid address", |s| Address::parse(&s).ok())
}

/// Text a field may hold: printable, no control characters (the writer
/// turns those into spaces, the reader refuses them).
fn text() -> impl Strategy<Value = String> {
    "[ -~äöü€]{0,30}"
}

fn time() -> impl Strategy<Value = SystemTime> {
    (0u64..4_000_000_000).prop_map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// Unknown fields as a later stage may add them: `x-...`, distinct names.
fn extra() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map("x-[a-z0-9-]{0,8}", text(), 0..3)
        .prop_map(|m| m.into_iter().collect())
}

fn status() -> impl Strategy<Value = RcptStatus> {
    let code = |class: u8| {
        (0u16..8, 0u16..1000).prop_map(move |(s, d)| {
            Status::parse(&format!("{class}.{s}.{d}")).expect("a status code")
        })
    };
    prop_oneof![
        Just(RcptStatus::Pending),
        Just(RcptStatus::Delivered),
        code(4).prop_map(|code| RcptStatus::Deferred { code }),
        code(5).prop_map(|code| RcptStatus::Failed { code }),
    ]
}

fn recipient() -> impl Strategy<Value = Recipient> {
    (
        address(),
        prop::option::of(address().prop_map(|a| format!("rfc822;{a}"))),
        prop::sample::select(vec![
            "",
            "NEVER",
            "SUCCESS",
            "FAILURE,DELAY",
            "SUCCESS,FAILURE,DELAY",
        ]),
        status(),
        prop::option::of(text()),
        extra(),
    )
        .prop_map(|(address, orcpt, notify, status, diagnostic, extra)| {
            let mut r = Recipient::new(address);
            r.orcpt = orcpt;
            r.notify = if notify.is_empty() {
                Notify::default()
            } else {
                Notify::parse(notify).expect("a NOTIFY value")
            };
            r.status = status;
            r.diagnostic = diagnostic;
            r.extra = extra;
            r
        })
}

fn job() -> impl Strategy<Value = Job> {
    let sender = prop_oneof![Just(Sender::Null), address().prop_map(Sender::Mailbox)];
    let client = (
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of("[A-Za-z0-9]{1,12}"),
    );
    (
        "[A-Z0-9]{1,32}",
        time(),
        sender,
        prop::collection::vec(recipient(), 1..4),
        client,
        (
            any::<u32>(),
            prop::option::of(time()),
            any::<bool>(),
            extra(),
        ),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(qid, arrival, sender, recipients, client, more, message)| {
                let queue_id = QueueId::parse(&qid).expect("a queue id");
                let mut env = Envelope::new(queue_id, arrival, sender);
                env.recipients = recipients;
                (
                    env.client_address,
                    env.client_hostname,
                    env.client_helo,
                    env.sasl_username,
                    env.upstream_queue_id,
                ) = client;
                (env.attempts, env.next_attempt, env.eight_bit, env.extra) = more;
                Job {
                    envelope: env,
                    message,
                }
            },
        )
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes: never a panic, and any job that comes out is whole.
    #[test]
    fn job_reader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(jobs) = read_all(&bytes) {
            jobs.iter().for_each(assert_round_trips);
        }
        // The same bytes behind a valid job's first line reach the envelope parser.
        let mut framed = b"postern-job 1\n".to_vec();
        framed.extend_from_slice(&bytes);
        if let Ok(jobs) = read_all(&framed) {
            jobs.iter().for_each(assert_round_trips);
        }
    }

    /// Valid streams with a few bytes changed, inserted or removed.
    #[test]
    fn job_reader_never_panics_on_mutated_streams(
        jobs in prop::collection::vec(job(), 1..3),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = stream(&jobs);
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        if let Ok(jobs) = read_all(&bytes) {
            jobs.iter().for_each(assert_round_trips);
        }
    }

    /// What the writer writes, the reader reads back to the same jobs, and
    /// writing those again gives the same bytes.
    #[test]
    fn written_jobs_read_back_identically(jobs in prop::collection::vec(job(), 1..4)) {
        let bytes = stream(&jobs);
        let read = read_all(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&read, &jobs);
        prop_assert_eq!(stream(&read), bytes);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Every cut of a valid stream inside its last job is an error that
    /// asks Postfix to try again (75), never a job and never a bounce.
    #[test]
    fn every_cut_of_a_valid_stream_is_a_temporary_error(jobs in prop::collection::vec(job(), 1..3)) {
        let bytes = stream(&jobs);
        let last = jobs.last().map(|j| j.to_bytes().len()).unwrap_or(0);
        for cut in (bytes.len() - last + 1)..bytes.len() {
            match read_all(&bytes[..cut]) {
                Ok(read) => prop_assert!(false, "cut at {} of {} read as {} job(s)", cut, bytes.len(), read.len()),
                Err(e) => prop_assert_eq!(
                    e.to_failure().exit,
                    Sysexit::TempFail,
                    "cut at {} of {}: {}", cut, bytes.len(), e
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// SMTP replies

/// RFC 5321 section 4.5.3.1.5, with the reader's own bounds.
const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 100;

/// Reply-shaped lines: codes, separators and texts that hit every branch.
fn reply_lines() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        prop::sample::select(vec![
            "250", "220", "421", "550", "199", "600", "25", "2x0", "",
        ]),
        prop::sample::select(vec!["-", " ", "", "x"]),
        "[ -~]{0,20}",
        prop::sample::select(vec!["\r\n", "\n", "", "\r"]),
    )
        .prop_map(|(code, sep, text, end)| format!("{code}{sep}{text}{end}"));
    prop::collection::vec(line, 0..8).prop_map(|l| l.concat().into_bytes())
}

fn check_reply(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut input = Cursor::new(bytes);
    if let Ok(reply) = read_reply(&mut input) {
        prop_assert!((200..600).contains(&reply.code), "{:?}", reply);
        prop_assert!(!reply.lines.is_empty() && reply.lines.len() <= MAX_REPLY_LINES);
        prop_assert!(reply.lines.iter().all(|l| l.len() <= MAX_REPLY_LINE));
        // One text per line. A bare CR may stay inside a text ("250 \r250-"
        // is one line): texts reach the job and the log only through
        // their writers, which turn control characters into spaces.
        prop_assert!(reply.lines.iter().all(|l| !l.contains('\n')));
    }
    // Never more than the bounds allow is read for one reply.
    prop_assert!(input.position() as usize <= MAX_REPLY_LINES * (MAX_REPLY_LINE + 1));
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn read_reply_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        check_reply(&bytes)?;
    }

    #[test]
    fn read_reply_never_panics_on_reply_shaped_input(bytes in reply_lines()) {
        check_reply(&bytes)?;
    }
}

/// An endless input, repeating `pattern`.
struct Endless {
    pattern: &'static [u8],
    at: usize,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for b in buf.iter_mut() {
            *b = self.pattern[self.at % self.pattern.len()];
            self.at += 1;
        }
        Ok(buf.len())
    }
}

/// A server that never ends its reply, or a line, is cut off after the
/// bounds instead of being read forever.
#[test]
fn read_reply_is_bounded_on_endless_input() {
    for pattern in [
        b"250-more to come\r\n".as_slice(),
        b"2".as_slice(),
        b"250-".as_slice(),
    ] {
        let mut input = BufReader::new(Endless { pattern, at: 0 });
        let result = read_reply(&mut input);
        assert!(result.is_err(), "{pattern:?}: {result:?}");
        let read = input.get_ref().at - input.buffer().len();
        assert!(
            read <= MAX_REPLY_LINES * (MAX_REPLY_LINE + 1) + 8192,
            "{pattern:?}: read {read} bytes"
        );
    }
    let mut input = Cursor::new(b"250 ok\r\n".repeat(3));
    assert_eq!(read_reply(&mut input).ok().map(|r| r.code), Some(250));
    assert_eq!(
        input.fill_buf().map(<[u8]>::len).ok(),
        Some(16),
        "one reply, not more"
    );
}

// ---------------------------------------------------------------------------
// Envelope addresses

/// Address-shaped strings with the characters that matter to a guard:
/// free-form, and `local@domain` shaped (quoted or not, with brackets).
fn address_like() -> impl Strategy<Value = String> {
    let chars = "[a-z\"<>@. \\[\\]\\\\,:\\x00-\\x1f\\x7fäß\u{2028}]";
    let regex = |re: String| proptest::string::string_regex(&re).expect("a regex");
    prop_oneof![
        regex(format!("{chars}{{0,24}}")),
        // Mostly printable: one control character anywhere refuses it all.
        regex(format!(
            "<?\"?([a-z\"<>@. \\\\,]|{chars}){{1,8}}\"?@(\\[?[a-z0-9.:]{{1,8}}\\]?|[a-z0-9.-]{{1,8}})>?"
        )),
    ]
}

fn check_address(input: &str) -> Result<(), TestCaseError> {
    if let Ok(a) = Address::parse(input) {
        let s = a.as_str();
        prop_assert!(
            !s.chars().any(char::is_control),
            "control character in {:?}",
            s
        );
        // Angle brackets only inside a quoted local part (RFC 5321
        // Quoted-string), never where they could end a path.
        let (local, domain) = s.rsplit_once('@').expect("an @");
        let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
        prop_assert!(
            !domain.contains(['<', '>']) && (quoted || !local.contains(['<', '>'])),
            "bare angle bracket in {:?} (from {:?})",
            s,
            input
        );
        prop_assert!(s.contains('@'));
        prop_assert_eq!(a.to_string(), s);
        // Accepted once, accepted again as the same address.
        prop_assert_eq!(Address::parse(s), Ok(a.clone()));
    }
    let _ = Sender::parse(input);
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn accepted_addresses_have_no_control_characters_or_bare_angle_brackets(input in address_like()) {
        check_address(&input)?;
    }

    #[test]
    fn address_parse_never_panics(input in any::<String>()) {
        let _ = Address::parse(&input);
        let _ = Sender::parse(&input);
    }
}

/// Found by the property test above (shrunk to `"<"@[0]`): a quoted local
/// part may hold `<` and `>`. RFC 5321 allows them there, and refusing
/// one would bounce a whole pipe(8) batch, so they pass; what matters is
/// that such an address survives the job stream unchanged.
#[test]
fn angle_brackets_inside_quotes_pass_and_survive_the_job_stream() {
    for input in ["\"<\"@[0]", "\"a<b\"@example.org", "<\"a>\"@example.org>"] {
        let a = Address::parse(input).expect("RFC 5321 quoted string");
        let mut env = Envelope::new(
            QueueId::parse("Q").unwrap(),
            std::time::SystemTime::UNIX_EPOCH,
            Sender::Mailbox(a.clone()),
        );
        env.recipients.push(Recipient::new(a.clone()));
        let job = Job {
            envelope: env,
            message: b"x".to_vec(),
        };
        let back = JobReader::new(job.to_bytes().as_slice(), 1 << 20)
            .next_job()
            .expect("reads back")
            .expect("a job");
        assert_eq!(back, job, "{input:?}");
    }
    for outside in ["a<b@example.org", "a>@example.org", "<a@b.org"] {
        assert!(Address::parse(outside).is_err(), "{outside:?}");
    }
}

/// The property without the known angle-bracket gap: control characters
/// never pass, whatever the quoting.
#[test]
fn accepted_addresses_have_no_control_characters() {
    let mut runner = proptest::test_runner::TestRunner::new(config(1000));
    runner
        .run(&address_like(), |input| {
            if let Ok(a) = Address::parse(&input) {
                prop_assert!(!a.as_str().chars().any(char::is_control), "{:?}", a);
                prop_assert_eq!(Address::parse(a.as_str()), Ok(a.clone()));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------
// Unsealing

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary bytes, and bytes behind the right magic, never open.
    #[test]
    fn open_never_panics_and_refuses_what_it_did_not_seal(
        key in any::<[u8; 32]>(),
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let key = SealKey::from_bytes(key);
        prop_assert!(seal::open(&key, bytes.clone()).is_err());
        let mut framed = b"PSPL\x01".to_vec();
        framed.extend_from_slice(&bytes);
        prop_assert!(seal::open(&key, framed).is_err());
    }

    /// Sealed data opens to the payload under its key, and under no other;
    /// a flipped bit anywhere is refused; the size is the padded size.
    #[test]
    fn seal_open_round_trip(
        key in any::<[u8; 32]>(),
        other in any::<[u8; 32]>(),
        nonce in any::<[u8; 24]>(),
        payload in prop::collection::vec(any::<u8>(), 0..5000),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let k = SealKey::from_bytes(key);
        let sealed = seal::seal(&k, nonce, &payload).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(sealed.len() as u64, 5 + 24 + seal::padded_len(payload.len() as u64) + 16);
        prop_assert_eq!(seal::open(&k, sealed.clone()).ok(), Some(payload.clone()));
        if other != key {
            prop_assert!(seal::open(&SealKey::from_bytes(other), sealed.clone()).is_err());
        }
        let mut damaged = sealed;
        let i = flip.index(damaged.len());
        damaged[i] ^= 1 << bit;
        prop_assert!(seal::open(&k, damaged).is_err(), "bit {} of byte {} flipped", bit, i);
    }
}

// ---------------------------------------------------------------------------
// DNS TXT alias records (alias::txt)

/// Records: arbitrary text, and records built from the format's own
/// pieces (so regexes, `!`, `$N`, URLs and encrypted-looking values reach
/// the deeper paths of the parser).
fn txt_record() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "!{0,4}[a-zA-Z0-9._+-]{0,8}",
        "/[^/]{0,16}/[gix]{0,2}",
        "[:,@ ]",
        Just("https://".to_owned()),
        Just("maildb:".to_owned()),
        Just("example.net".to_owned()),
        "\\$[0-9{}]{0,3}",
        "[A-Za-z0-9+/]{40,60}={0,2}",
        "[\\[\\]()*+?{}|^$.]{0,6}",
        "[ -~\u{fffd}ä\u{7}]{0,8}",
    ];
    let prefix = prop::sample::select(vec![
        "forward-email=",
        "postern=",
        "forward-email-port=",
        "Postern=",
        "postern-site-verification=",
        "v=spf1 ",
        "",
    ]);
    prop_oneof![
        any::<String>(),
        (prefix, prop::collection::vec(piece, 0..16))
            .prop_map(|(p, parts)| format!("{p}{}", parts.concat())),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// Any records: never a panic; what comes out keeps the parser's
    /// promises; the order of the records does not matter.
    #[test]
    fn txt_parser_never_panics(
        records in prop::collection::vec(txt_record(), 0..6),
        with_key in any::<bool>(),
    ) {
        let prefixes = vec!["forward-email".to_owned(), "postern".to_owned()];
        let key = TxtKey::from_bytes([1; 32]);
        let key = with_key.then_some(&key);
        let parsed = txt::parse(&records, &prefixes, key);
        if let Some(p) = &parsed {
            prop_assert!(p.problems.len() <= txt::MAX_PROBLEMS + 1);
            prop_assert!(p.problems.iter().all(|pr| !pr.contains('\n')));
            for rule in &p.rules {
                match rule.action {
                    Action::Forward => {
                        prop_assert!(!rule.targets.is_empty());
                        prop_assert!(rule.targets.len() <= txt::MAX_RULE_TARGETS);
                    }
                    _ => prop_assert!(rule.targets.is_empty()),
                }
                for t in &rule.targets {
                    prop_assert!(!t.to_ascii_lowercase().starts_with("maildb:"));
                }
                match &rule.pattern {
                    Pattern::Exact(name) => prop_assert_eq!(name, &name.to_lowercase()),
                    Pattern::Regex(source) => prop_assert!(compile_pattern(source).is_ok()),
                    Pattern::CatchAll => {}
                }
            }
        }
        let mut reversed = records.clone();
        reversed.reverse();
        prop_assert_eq!(txt::parse(&reversed, &prefixes, key), parsed);
        let _ = txt::verification_tokens(&records);
    }
}
