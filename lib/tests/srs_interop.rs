//! SRS interop with real peers, driven as processes: postern's codec
//! (`postern::rewriter::srs`) against Mail::SRS 0.31 (Perl, Debian
//! libmail-srs-perl, through tests/interop/srs-mail-srs.pl), srslib 0.1.5
//! (PyPI, in the venv tests/interop/install.sh makes, through
//! tests/interop/srs-srslib.py) and postsrsd 1.10 (Debian, over Postfix's
//! tcp_table protocol).
//!
//! Mail::SRS and srslib take the time from the test, so their addresses
//! are compared byte for byte at fixed times; postsrsd reads the clock, so
//! it is compared on today's date with the same `now` passed to postern.
//! Each side also reverses the other's addresses. A missing peer fails
//! its test with what to install; none is skipped.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use postern::config::SrsConfig;
use postern::mail::address::Address;
use postern::rewriter::srs::{Srs, SrsError, SrsSecrets};

/// postsrsd's test time: 2020-01-01 00:01 UTC.
const T: u64 = 1_577_836_860;
const DAY: u64 = 86_400;
const SECRET: &str = "tops3cr3t";
const DOMAIN: &str = "fwd.example.net";

/// Senders every peer forwards the same way: plain, mixed case, tags,
/// `=` in the local part, an address literal, UTF-8 without capitals
/// outside ASCII, SRS0 (any tag case and separator) and SRS1 senders from
/// earlier hops.
const SENDERS: &[&str] = &[
    "alice@example.org",
    "Alice.Smith@Example.ORG",
    "bob+tag@mail.example.net",
    "a=b=c@example.org",
    "o'brien@example.ie",
    "x@[192.0.2.1]",
    "jörg@bücher.example",
    "a.very.long.local.part.of.someone.who.writes@sub.domain.example.com",
    "SRS0=HHHH=TT=orig.example=bob@first.example",
    "SRS0+abcd=AB=orig.example=bob@first.example",
    "srs0-Zz9/=7Q=orig.example=Bob.Smith@First.Example",
    "SRS1=XXXX=first.example==HHHH=TT=orig.example=bob@second.example",
    "SRS1+XXXX=first.example=+abcd=AB=orig.example=bob@second.example",
];

/// A capital outside ASCII: srslib folds it (Python's `str.lower()`),
/// libsrs2 and Mail::SRS do not (C `tolower`, Perl `lc` on bytes).
const NON_ASCII_CAPITALS: &str = "ÄRGER@example.org";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn postern(secrets: &[&str], separator: char, max_age_days: u64) -> Srs {
    let settings = SrsConfig {
        separator,
        max_age: Duration::from_secs(max_age_days * DAY),
        ..SrsConfig::default()
    };
    Srs::new(
        &settings,
        DOMAIN,
        SrsSecrets::new(secrets).expect("a secret"),
    )
    .expect("codec")
}

fn forward(srs: &Srs, sender: &str, now: u64) -> String {
    let out = srs
        .forward(&addr(sender), at(now))
        .unwrap_or_else(|e| panic!("postern forward {sender}: {e}"));
    assert_eq!(Address::parse(out.as_str()), Ok(out.clone()));
    out.to_string()
}

fn reverse(srs: &Srs, address: &str, now: u64) -> Result<String, SrsError> {
    match srs.reverse(&addr(address), at(now)) {
        Ok(Some(a)) => {
            assert_eq!(Address::parse(a.as_str()).as_ref(), Ok(&a));
            Ok(a.to_string())
        }
        Ok(None) => panic!("{address} is not an SRS address to postern"),
        Err(e) => Err(e),
    }
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

// ---------------------------------------------------------------------------
// Peers driven over stdin: one request a line, one answer a line.

/// What a peer answered: `Ok(address)` or `Err(message)`, and its stderr.
struct Answers {
    answers: Vec<Result<String, String>>,
    stderr: String,
}

fn ask(mut cmd: Command, requests: &[String]) -> Answers {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("peer output");
    writer.join().expect("writer").expect("write requests");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{shown} failed: {stderr}");
    let answers: Vec<_> = String::from_utf8(out.stdout)
        .expect("UTF-8 answers")
        .lines()
        .map(|l| {
            if let Some(ok) = l.strip_prefix("ok ") {
                Ok(ok.to_string())
            } else {
                Err(l.strip_prefix("err ").unwrap_or(l).to_string())
            }
        })
        .collect();
    assert_eq!(answers.len(), requests.len(), "{shown}: {stderr}");
    Answers { answers, stderr }
}

fn forwards(senders: &[&str]) -> Vec<String> {
    senders.iter().map(|s| format!("f {s}")).collect()
}

fn reverses(addresses: &[String]) -> Vec<String> {
    addresses.iter().map(|s| format!("r {s}")).collect()
}

/// Mail::SRS (Guarded) at `now`.
fn mail_srs(
    now: u64,
    separator: char,
    max_age: u64,
    secrets: &[&str],
    requests: &[String],
) -> Answers {
    let probe = Command::new("perl")
        .args(["-MMail::SRS", "-e", "1"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "Mail::SRS is not installed: run `make deps` (Debian package libmail-srs-perl)"
    );
    let mut cmd = Command::new("perl");
    cmd.arg(interop_dir().join("srs-mail-srs.pl"))
        .arg(now.to_string())
        .arg(DOMAIN)
        .arg(separator.to_string())
        .arg(max_age.to_string())
        .args(secrets);
    ask(cmd, requests)
}

/// srslib at `now`; it always writes `=` after the tag.
fn srslib(now: u64, validity_days: u64, secrets: &[&str], requests: &[String]) -> Answers {
    let python = interop_dir().join("venv/bin/python");
    let probe = Command::new(&python).args(["-c", "import srslib"]).output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "srslib is not installed in {}: run `bash tests/interop/install.sh` (make test does)",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(interop_dir().join("srs-srslib.py"))
        .arg(now.to_string())
        .arg(DOMAIN)
        .arg(validity_days.to_string())
        .args(secrets)
        .env("PYTHONUTF8", "1");
    ask(cmd, requests)
}

fn oks(answers: &Answers, what: &str) -> Vec<String> {
    answers
        .answers
        .iter()
        .map(|a| a.clone().unwrap_or_else(|e| panic!("{what}: {e}")))
        .collect()
}

// ---------------------------------------------------------------------------
// Mail::SRS

#[test]
fn forward_is_byte_identical_to_mail_srs() {
    let mut senders = SENDERS.to_vec();
    senders.push(NON_ASCII_CAPITALS);
    for separator in ['=', '+', '-'] {
        let srs = postern(&[SECRET], separator, 21);
        for now in [T, T + 400 * DAY, T + 5000 * DAY + 3 * 3600] {
            let theirs = oks(
                &mail_srs(now, separator, 21, &[SECRET], &forwards(&senders)),
                "Mail::SRS forward",
            );
            for (sender, theirs) in senders.iter().zip(theirs) {
                assert_eq!(
                    forward(&srs, sender, now),
                    theirs,
                    "{sender} at {now}, separator {separator}"
                );
            }
        }
    }
}

#[test]
fn mail_srs_and_postern_reverse_each_other() {
    for separator in ['=', '+', '-'] {
        let srs = postern(&[SECRET], separator, 21);
        let ours: Vec<String> = SENDERS.iter().map(|s| forward(&srs, s, T)).collect();
        let theirs = oks(
            &mail_srs(T, separator, 21, &[SECRET], &forwards(SENDERS)),
            "Mail::SRS forward",
        );
        let all: Vec<String> = ours.iter().chain(&theirs).cloned().collect();
        let later = T + 5 * DAY;
        let reversed = oks(
            &mail_srs(later, separator, 21, &[SECRET], &reverses(&all)),
            "Mail::SRS reverse",
        );
        for (address, theirs) in all.iter().zip(reversed) {
            assert_eq!(reverse(&srs, address, later), Ok(theirs), "{address}");
        }
    }
}

#[test]
fn rotated_secrets_across_mail_srs() {
    let old_only = postern(&["old"], '=', 21);
    let rotated = postern(&["new", "old"], '=', 21);
    // Signed by a peer with the old secret, read back after rotation.
    let theirs = oks(
        &mail_srs(T, '=', 21, &["old"], &forwards(SENDERS)),
        "Mail::SRS forward",
    );
    for (address, sender) in theirs.iter().zip(SENDERS) {
        assert_eq!(
            reverse(&rotated, address, T),
            reverse(&old_only, address, T),
            "{sender}"
        );
    }
    // Signed by postern after rotation: the peer needs the new secret.
    let ours: Vec<String> = SENDERS.iter().map(|s| forward(&rotated, s, T)).collect();
    let with_new = mail_srs(T, '=', 21, &["old", "new"], &reverses(&ours));
    let without = mail_srs(T, '=', 21, &["old"], &reverses(&ours));
    for (i, address) in ours.iter().enumerate() {
        assert_eq!(
            with_new.answers[i].as_ref().ok(),
            reverse(&rotated, address, T).ok().as_ref(),
            "{address}"
        );
        assert!(without.answers[i].is_err(), "{address}");
    }
}

#[test]
fn case_smashed_addresses_reverse_alike() {
    let srs = postern(&[SECRET], '=', 21);
    let smashed: Vec<String> = SENDERS
        .iter()
        .flat_map(|s| {
            let a = forward(&srs, s, T);
            // What an MTA that smashes case does: ASCII only.
            [a.to_ascii_uppercase(), a.to_ascii_lowercase()]
        })
        .collect();
    let theirs = mail_srs(T, '=', 21, &[SECRET], &reverses(&smashed));
    for (address, theirs) in smashed.iter().zip(&theirs.answers) {
        let ours = reverse(&srs, address, T);
        assert!(ours.is_ok(), "{address}: {ours:?}");
        assert_eq!(ours.ok().as_ref(), theirs.as_ref().ok(), "{address}");
    }
    // Mail::SRS accepts them too, with its warning.
    assert!(
        theirs.stderr.contains("Case insensitive hash match"),
        "{}",
        theirs.stderr
    );
}

/// Valid through `max_age` days after the stamp's day, like Mail::SRS; a
/// stamp one day ahead is accepted by postern only (clock skew between MX
/// hosts), refused by Mail::SRS as 1023 days old.
#[test]
fn expiry_agrees_with_mail_srs() {
    let srs = postern(&[SECRET], '=', 21);
    let made = forward(&srs, "alice@example.org", T);
    for days_later in 0..=30u64 {
        let now = T + days_later * DAY;
        let theirs = mail_srs(
            now,
            '=',
            21,
            &[SECRET],
            &reverses(std::slice::from_ref(&made)),
        );
        let ours = reverse(&srs, &made, now);
        assert_eq!(
            ours.is_ok(),
            theirs.answers[0].is_ok(),
            "{days_later} days later"
        );
        assert_eq!(ours.is_ok(), days_later <= 21);
    }
    let day_before = T - DAY;
    let theirs = mail_srs(
        day_before,
        '=',
        21,
        &[SECRET],
        &reverses(std::slice::from_ref(&made)),
    );
    assert!(theirs.answers[0].is_err());
    assert!(reverse(&srs, &made, day_before).is_ok());
    assert!(matches!(
        reverse(&srs, &made, T - 2 * DAY),
        Err(SrsError::FromFuture { days: 2 })
    ));
}

// ---------------------------------------------------------------------------
// srslib

#[test]
fn forward_is_byte_identical_to_srslib() {
    let srs = postern(&[SECRET], '=', 21);
    for now in [T, T + 400 * DAY, T + 5000 * DAY + 3 * 3600] {
        let theirs = oks(
            &srslib(now, 21, &[SECRET], &forwards(SENDERS)),
            "srslib forward",
        );
        for (sender, theirs) in SENDERS.iter().zip(theirs) {
            assert_eq!(forward(&srs, sender, now), theirs, "{sender} at {now}");
        }
    }
}

#[test]
fn srslib_and_postern_reverse_each_other() {
    let srs = postern(&[SECRET, "older"], '=', 21);
    let ours: Vec<String> = SENDERS.iter().map(|s| forward(&srs, s, T)).collect();
    let theirs = oks(
        &srslib(T, 21, &["older", SECRET], &forwards(SENDERS)),
        "srslib forward",
    );
    let all: Vec<String> = ours.iter().chain(&theirs).cloned().collect();
    let later = T + 20 * DAY;
    let reversed = oks(
        &srslib(later, 21, &[SECRET, "older"], &reverses(&all)),
        "srslib reverse",
    );
    for (address, theirs) in all.iter().zip(reversed) {
        assert_eq!(reverse(&srs, address, later), Ok(theirs), "{address}");
    }
}

/// srslib hashes `str.lower()` of the fields: a capital outside ASCII
/// makes a hash libsrs2 and Mail::SRS (and postern) do not, so such an
/// address does not pass between srslib and the others.
#[test]
fn srslib_folds_capitals_outside_ascii() {
    let srs = postern(&[SECRET], '=', 21);
    let ours = forward(&srs, NON_ASCII_CAPITALS, T);
    let perl = oks(
        &mail_srs(T, '=', 21, &[SECRET], &forwards(&[NON_ASCII_CAPITALS])),
        "Mail::SRS forward",
    );
    assert_eq!(ours, perl[0]);
    let python = srslib(T, 21, &[SECRET], &forwards(&[NON_ASCII_CAPITALS]));
    let python = python.answers[0].clone().expect("srslib forward");
    assert_ne!(ours, python);
    assert_eq!(reverse(&srs, &python, T), Err(SrsError::BadHash));
    let back = srslib(T, 21, &[SECRET], &reverses(&[ours]));
    assert_eq!(back.answers[0], Err("InvalidHashError".into()));
}

/// srslib's `validity_days` counts the stamp's own day: 21 accepts one day
/// less than Mail::SRS's and postern's `MaxAge`/`max_age` of 21.
#[test]
fn srslib_validity_is_one_day_shorter() {
    let srs = postern(&[SECRET], '=', 21);
    let made = vec![forward(&srs, "alice@example.org", T)];
    for days_later in [0, 19, 20, 21, 22] {
        let now = T + days_later * DAY;
        let theirs = srslib(now, 21, &[SECRET], &reverses(&made));
        assert_eq!(theirs.answers[0].is_ok(), days_later <= 20, "{days_later}");
        let theirs = srslib(now, 22, &[SECRET], &reverses(&made));
        assert_eq!(
            theirs.answers[0].is_ok(),
            reverse(&srs, &made[0], now).is_ok(),
            "{days_later}"
        );
    }
}

// ---------------------------------------------------------------------------
// postsrsd 1.10, over Postfix's tcp_table protocol (tcp_table(5)).

struct Postsrsd {
    child: Child,
    forward_port: u16,
    reverse_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Postsrsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn postsrsd(secrets: &[&str]) -> Postsrsd {
    let program = ["/usr/sbin/postsrsd", "/usr/bin/postsrsd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("postsrsd is not installed: run `make deps` (Debian package postsrsd)");
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("postsrsd.secret");
    std::fs::write(&secret_file, secrets.join("\n") + "\n").expect("secret file");
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (forward_port, reverse_port) = (free_port(), free_port());
    let child = Command::new(program)
        .arg(format!("-s{}", secret_file.display()))
        .arg(format!("-d{DOMAIN}"))
        .args(["-4", "-l127.0.0.1", "-t60"])
        .arg(format!("-f{forward_port}"))
        .arg(format!("-r{reverse_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start postsrsd");
    let mut daemon = Postsrsd {
        child,
        forward_port,
        reverse_port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", reverse_port)).is_err() {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = daemon.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("postsrsd exited ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "postsrsd did not listen in 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// tcp_table(5) encoding: `%XX` for what is not printable ASCII, and `%`.
fn tcp_table_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_graphic() && b != b'%' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn tcp_table_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("hex");
            out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 answer")
}

/// One `get` per key on one connection, as Postfix asks.
fn tcp_table(port: u16, keys: &[String]) -> Vec<Result<String, String>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to postsrsd");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    keys.iter()
        .map(|key| {
            writeln!(writer, "get {}", tcp_table_encode(key)).expect("request");
            let mut line = String::new();
            reader.read_line(&mut line).expect("postsrsd answer");
            let line = line.trim_end();
            match line.strip_prefix("200 ") {
                Some(value) => Ok(tcp_table_decode(value)),
                None => Err(line.to_string()),
            }
        })
        .collect()
}

fn today() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

#[test]
fn forward_is_byte_identical_to_postsrsd_today() {
    let srs = postern(&[SECRET], '=', 21);
    let daemon = postsrsd(&[SECRET]);
    let keys: Vec<String> = SENDERS
        .iter()
        .chain([&NON_ASCII_CAPITALS])
        .map(|s| s.to_string())
        .collect();
    // postsrsd reads its own clock: ask again if the day changed meanwhile.
    for attempt in 0.. {
        let before = today();
        let theirs = tcp_table(daemon.forward_port, &keys);
        let after = today();
        if before / DAY != after / DAY && attempt < 2 {
            continue;
        }
        for (sender, theirs) in keys.iter().zip(theirs) {
            let theirs = theirs.unwrap_or_else(|e| panic!("postsrsd forward {sender}: {e}"));
            assert_eq!(forward(&srs, sender, before), theirs, "{sender}");
        }
        break;
    }
}

#[test]
fn postsrsd_and_postern_reverse_each_other() {
    let rotated = postern(&["new", SECRET], '+', 21);
    let daemon = postsrsd(&[SECRET, "new"]);
    let now = today();
    let keys: Vec<String> = SENDERS.iter().map(|s| s.to_string()).collect();
    let theirs: Vec<String> = tcp_table(daemon.forward_port, &keys)
        .into_iter()
        .map(|r| r.expect("postsrsd forward"))
        .collect();
    let ours: Vec<String> = SENDERS.iter().map(|s| forward(&rotated, s, now)).collect();
    let all: Vec<String> = ours.iter().chain(&theirs).cloned().collect();
    let reversed = tcp_table(daemon.reverse_port, &all);
    for (address, theirs) in all.iter().zip(reversed) {
        let theirs = theirs.unwrap_or_else(|e| panic!("postsrsd reverse {address}: {e}"));
        assert_eq!(reverse(&rotated, address, now), Ok(theirs), "{address}");
    }
    // A forged one is refused by both.
    let forged = format!("{}AAAA{}", &ours[0][..5], &ours[0][9..]);
    assert_ne!(forged.to_lowercase(), ours[0].to_lowercase());
    assert!(tcp_table(daemon.reverse_port, std::slice::from_ref(&forged))[0].is_err());
    assert_eq!(reverse(&rotated, &forged, now), Err(SrsError::BadHash));
}
