//! contrib/postfix/postern-filter as pipe(8) runs it: whatever order the
//! stages fail in, the exit status is the status of the stage that
//! caused the failure, and exactly one line reaches stderr, that stage's
//! status line. pipe(8) takes a leading 4.x.x/5.x.x of the command's
//! output as the status of the message, so a second line from the other
//! stage, coming first, could turn a deferral into a bounce or back.
//!
//! The stages are stand-ins (small bash scripts in a temp dir, found
//! through POSTERN_BINDIR) that fail in each order and with each kind of
//! status, plus the real binaries in the cases that matter most. Needs
//! neither root nor Postfix.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use util::Output;

const FILTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/postfix/postern-filter"
);

/// What a stand-in receiver passes on when it works: a "job stream" that
/// the stand-in deliverer [`D_READS`] takes as whole when it ends in `end`.
const MESSAGE: &[u8] = b"From: a@example.org\nSubject: t\n\nbody\nend\n";

/// A directory of stages for one run of the filter.
struct Stages {
    dir: tempfile::TempDir,
}

impl Stages {
    fn new(receiver: Option<&str>, deliverer: Option<&str>) -> Stages {
        let stages = Stages {
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        stages.script("postern-receiver", receiver);
        // The middle stages pass the stream on unless a test says more.
        stages.script("postern-scanner", Some(W_PASSES));
        stages.script("postern-rewriter", Some(W_PASSES));
        stages.script("postern-encryptor", Some(W_PASSES));
        stages.script("postern-deliverer", deliverer);
        stages
    }

    /// Writes `body` as a bash script, or leaves the stage out (None).
    fn script(&self, name: &str, body: Option<&str>) {
        if let Some(body) = body {
            self.file(name, &format!("#!/bin/bash\n{body}\n"));
        }
    }

    fn file(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a stage");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod a stage");
    }

    /// Every stage the real binary, as `make install` puts them.
    fn real_chain() -> Stages {
        let stages = Stages::new(None, None);
        for (name, binary) in [
            ("postern-receiver", util::RECEIVER),
            ("postern-scanner", util::SCANNER),
            ("postern-rewriter", util::REWRITER),
            ("postern-encryptor", util::ENCRYPTOR),
            ("postern-deliverer", util::DELIVERER),
        ] {
            stages.real(name, binary);
        }
        stages
    }

    /// The real binary as a stage.
    fn real(&self, name: &str, binary: &str) {
        self.file(name, &format!("#!/bin/sh\nexec {binary} \"$@\"\n"));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the filter as pipe(8) would, bounded in time.
    fn run(&self, stdin: &[u8], config: Option<&Path>) -> Output {
        let mut env = vec![("POSTERN_BINDIR", self.dir.path())];
        if let Some(c) = config {
            env.push(("POSTERN_CONFIG", c));
        }
        util::run(
            "timeout",
            &[
                "60",
                "bash",
                FILTER,
                "-f",
                "alice@example.org",
                "--",
                "bob@example.net",
            ],
            stdin,
            &env,
        )
    }
}

fn filter(receiver: Option<&str>, deliverer: Option<&str>) -> Output {
    Stages::new(receiver, deliverer).run(MESSAGE, None)
}

// Stand-in receivers.
const R_OK: &str = "cat";

/// Reads the message, refuses it, writes no job.
fn r_refuses(code: i32, line: &str) -> String {
    format!(
        "cat >/dev/null; echo \"${{POSTERN_STATUS_TAG:+$POSTERN_STATUS_TAG }}{line}\" >&2; exit {code}"
    )
}

/// Reads the message, writes part of a job, then fails.
fn r_cuts(code: i32, line: &str) -> String {
    format!(
        "cat >/dev/null; printf 'postern-job 1\\nqueue-id: 1\\n'; echo \"${{POSTERN_STATUS_TAG:+$POSTERN_STATUS_TAG }}{line}\" >&2; exit {code}"
    )
}

/// Like a Rust program (which ignores SIGPIPE): writes a 10 MB job and,
/// when the reader is gone, gets EPIPE and exits 75 with its own line.
const R_EPIPE: &str = "cat >/dev/null; trap '' PIPE
for ((i = 0; i < 2560; i++)); do
    printf '%04096d' 0 2>/dev/null || {
        echo \"${POSTERN_STATUS_TAG:+$POSTERN_STATUS_TAG }4.3.0 cannot write the job to standard output: Broken pipe (os error 32)\" >&2
        exit 75
    }
done";

/// Like a C program: dies of SIGPIPE (status 141) when the reader is gone.
const R_SIGPIPE: &str = "cat >/dev/null; exec yes";

// Stand-in rewriters.

/// Passes the stream on (and dies of SIGPIPE when the reader is gone).
const W_PASSES: &str = "cat";

/// Reads the whole stream, then refuses the job, writing nothing on.
fn w_refuses(code: i32, line: &str) -> String {
    r_refuses(code, line)
}

// Stand-in deliverers.

/// Reads the whole stream: empty is nothing to do, one ending in `end` is
/// delivered, anything else is cut (75), as postern-deliverer does.
const D_READS: &str = "data=$(cat)
[[ -z $data || $data == *end ]] && exit 0
echo \"${POSTERN_STATUS_TAG:+$POSTERN_STATUS_TAG }4.3.0 job stream ends inside a job (in the envelope)\" >&2
exit 75";
const D_CUT_LINE: &str = "4.3.0 job stream ends inside a job (in the envelope)";

/// Fails before reading anything (a bad config, a refused job header).
fn d_fails_early(code: i32, line: &str) -> String {
    format!("echo \"${{POSTERN_STATUS_TAG:+$POSTERN_STATUS_TAG }}{line}\" >&2; exit {code}")
}

fn expect(out: &Output, code: i32, stderr: &str, case: &str) {
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (code, stderr),
        "{case}: want exit {code} and stderr {stderr:?}"
    );
}

fn one_line(line: &str) -> String {
    format!("{line}\n")
}

/// The failures each stage can end with, with its status line.
const FAILURES: &[(i32, &str)] = &[
    (65, "5.6.0 the message is malformed"),
    (67, "5.1.3 bad recipient address"),
    (
        69,
        "5.3.4 message size 60000000 exceeds the limit of 52428800",
    ),
    (75, "4.3.0 try again later"),
    (77, "5.7.0 refused by policy"),
    (78, "4.3.5 config: line 3: unknown field"),
];

#[test]
fn both_stages_succeed_and_nothing_is_said() {
    expect(&filter(Some(R_OK), Some(D_READS)), 0, "", "both 0");
    // Chatter of a stage that succeeds (log = "stderr", say) stays out.
    let out = filter(
        Some("echo 'postern-receiver[1]: 1234: size=40' >&2; cat"),
        Some("cat >/dev/null; echo 'stdout chatter'; echo 'postern-deliverer[2]: delivered=1' >&2"),
    );
    expect(&out, 0, "", "both 0 with chatter");
}

#[test]
fn receiver_fails_first() {
    for &(code, line) in FAILURES {
        // It refuses the message; the deliverer sees an empty stream.
        let out = filter(Some(&r_refuses(code, line)), Some(D_READS));
        expect(
            &out,
            code,
            &one_line(line),
            &format!("receiver {code}, empty stream"),
        );
        // It fails after writing part of a job; the deliverer sees a cut
        // stream and says so with 75. The receiver's status is the one,
        // and the deliverer's 4.x.x line must not reach Postfix.
        let out = filter(Some(&r_cuts(code, line)), Some(D_READS));
        let case = format!("receiver {code}, cut stream");
        if code == 75 {
            // Both 75: the script cannot tell this from a deliverer that
            // stopped reading first (the receiver then gets EPIPE and exits
            // 75), and takes the deliverer's line, true in both orders.
            expect(&out, 75, &one_line(D_CUT_LINE), &case);
        } else {
            expect(&out, code, &one_line(line), &case);
        }
    }
}

#[test]
fn receiver_killed_or_missing_keeps_the_mail() {
    for (body, signal) in [
        ("cat >/dev/null; kill -KILL $$", 9),
        (
            "cat >/dev/null; printf 'postern-job 1\\n'; kill -SEGV $$",
            11,
        ),
        ("cat >/dev/null; kill -ABRT $$", 6),
    ] {
        let out = filter(Some(body), Some(D_READS));
        expect(
            &out,
            75,
            &format!("4.3.0 postern-filter: postern-receiver was killed by signal {signal}\n"),
            body,
        );
    }
    let stages = Stages::new(None, Some(D_READS));
    let out = stages.run(MESSAGE, None);
    let line = format!(
        "4.3.5 postern-filter: {} is missing or not executable\n",
        stages.path("postern-receiver").display()
    );
    expect(&out, 75, &line, "receiver missing");
}

#[test]
fn deliverer_fails_first() {
    for &(code, line) in FAILURES {
        for (receiver, how) in [
            (
                R_EPIPE,
                "receiver gets EPIPE and exits 75 with its own line",
            ),
            (R_SIGPIPE, "receiver dies of SIGPIPE"),
            (R_OK, "receiver wrote it all into the pipe"),
        ] {
            let out = filter(Some(receiver), Some(&d_fails_early(code, line)));
            expect(
                &out,
                code,
                &one_line(line),
                &format!("deliverer {code}; {how}"),
            );
        }
    }
}

#[test]
fn deliverer_killed_missing_or_unrunnable_keeps_the_mail() {
    for receiver in [R_EPIPE, R_SIGPIPE, R_OK] {
        let out = filter(Some(receiver), Some("kill -KILL $$"));
        expect(
            &out,
            75,
            "4.3.0 postern-filter: postern-deliverer was killed by signal 9\n",
            receiver,
        );
    }
    let out = filter(Some(R_OK), Some("cat >/dev/null; kill -SEGV $$"));
    expect(
        &out,
        75,
        "4.3.0 postern-filter: postern-deliverer was killed by signal 11\n",
        "deliverer crashes after reading",
    );

    let stages = Stages::new(Some(R_EPIPE), None);
    let out = stages.run(MESSAGE, None);
    let line = format!(
        "4.3.5 postern-filter: {} is missing or not executable\n",
        stages.path("postern-deliverer").display()
    );
    expect(&out, 75, &line, "deliverer missing");

    // Executable, but exec fails (its interpreter is gone): 126 or 127.
    let stages = Stages::new(Some(R_EPIPE), None);
    stages.file("postern-deliverer", "#!/nonexistent/interpreter\n");
    let out = stages.run(MESSAGE, None);
    let prefix = format!(
        "4.3.5 postern-filter: cannot run {} (status 12",
        stages.path("postern-deliverer").display()
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&prefix) && out.stderr.lines().count() == 1,
        "{:?}",
        out.stderr
    );
}

#[test]
fn both_fail_on_their_own() {
    // The receiver refuses the message before writing anything and the
    // deliverer fails on its own (say its config): neither caused the
    // other, and the refusal of the message is the receiver's to report.
    for &(code, line) in FAILURES {
        let out = filter(
            Some(&r_refuses(code, line)),
            Some(&d_fails_early(78, "4.3.5 deliverer config")),
        );
        let case = format!("receiver {code}, deliverer 78");
        if code == 75 {
            // A receiver's 75 may be its EPIPE after the deliverer quit,
            // so the deliverer's status wins; both defer the message.
            expect(&out, 78, "4.3.5 deliverer config\n", &case);
        } else {
            expect(&out, code, &one_line(line), &case);
        }
    }
    // A stage that crashed while the other refused: the refusal stands
    // when it is the receiver's (the deliverer never got a job) ...
    let out = filter(Some(&r_refuses(69, "5.3.4 too big")), Some("kill -KILL $$"));
    expect(&out, 69, "5.3.4 too big\n", "receiver 69, deliverer killed");
    // ... and a crashed receiver keeps the mail whatever the deliverer said.
    let out = filter(
        Some("cat >/dev/null; kill -SEGV $$"),
        Some(&d_fails_early(65, "5.6.0 not a job")),
    );
    expect(
        &out,
        75,
        "4.3.0 postern-filter: postern-receiver was killed by signal 11\n",
        "receiver killed, deliverer 65",
    );
}

#[test]
fn only_the_chosen_stage_line_and_only_its_status_line() {
    // The receiver fails with no line at all; the deliverer's 4.x.x line
    // about the cut stream must not reach Postfix (it would turn the 69
    // bounce into a deferral): nothing is said, pipe(8) uses the code.
    let out = filter(
        Some("cat >/dev/null; printf 'postern-job 1\\n'; exit 69"),
        Some(D_READS),
    );
    expect(&out, 69, "", "silent receiver 69");
    // Log lines and stdout chatter of the chosen stage stay out; its last
    // status line is the one.
    let out = filter(
        Some(R_EPIPE),
        Some(
            "echo 'postern-deliverer[7]: warning: something' >&2; echo chatter
             echo \"${POSTERN_STATUS_TAG:+$POSTERN_STATUS_TAG }5.6.0 job stream does not start with postern-job\" >&2
             echo 'postern-deliverer[7]: after the status line' >&2; exit 65",
        ),
    );
    expect(
        &out,
        65,
        "5.6.0 job stream does not start with postern-job\n",
        "deliverer with log lines",
    );
}

// ---------------------------------------------------------------------------
// The real stages

/// A message over the pipe buffer (64 KiB), so that the receiver is still
/// writing when a deliverer that stopped reading has gone.
fn big_message() -> Vec<u8> {
    let mut msg = util::message("big", "first line");
    for _ in 0..4000 {
        msg.extend_from_slice(format!("{}\n", "z".repeat(76)).as_bytes());
    }
    msg
}

#[test]
fn real_chain_delivers_spools_and_refuses_with_one_line() {
    let site = util::Site::with_extra(util::closed_port(), "message_size_limit = 100000");
    site.configure("encryptor", "keyring = \"\"");
    site.configure("wkd", "enabled = false");
    let stages = Stages::real_chain();

    // Relay down: the job is spooled, which is done (0), and nothing said.
    let out = stages.run(&util::message("spooled", "x"), Some(&site.config));
    expect(&out, 0, "", "relay down");
    assert_eq!(site.queue("deferred").len(), 1);

    // Too large: the receiver's 5.3.4 and nothing from the deliverer.
    let mut big = big_message();
    big.extend_from_slice(&big_message());
    assert!(big.len() > 100_000);
    let out = stages.run(&big, Some(&site.config));
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("5.3.4 message size "),
        "{}",
        out.stderr
    );

    // A config both stages refuse: one 4.3.5 line, not two.
    let bad = site.path().join("bad.toml");
    std::fs::write(&bad, "hostname = \"x\"\nunknown_key = 1\n").unwrap();
    let out = stages.run(&util::message("bad-config", "x"), Some(&bad));
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("4.3.5 config "), "{}", out.stderr);
}

#[test]
fn real_receiver_behind_a_deliverer_that_quits_gives_the_deliverer_status() {
    // The real receiver ignores SIGPIPE (Rust does): it gets EPIPE and
    // exits 75 with a line of its own. The deliverer's status and line
    // are the ones Postfix must see.
    let site = util::Site::new(util::closed_port());
    let stages = Stages::new(None, None);
    stages.real("postern-receiver", util::RECEIVER);
    stages.real("postern-scanner", util::SCANNER);
    stages.real("postern-rewriter", util::REWRITER);
    for &(code, line) in FAILURES {
        stages.script("postern-deliverer", Some(&d_fails_early(code, line)));
        let out = stages.run(&big_message(), Some(&site.config));
        expect(
            &out,
            code,
            &one_line(line),
            &format!("real receiver, deliverer {code}"),
        );
    }
    stages.script("postern-deliverer", Some("kill -KILL $$"));
    let out = stages.run(&big_message(), Some(&site.config));
    expect(
        &out,
        75,
        "4.3.0 postern-filter: postern-deliverer was killed by signal 9\n",
        "real receiver, deliverer killed",
    );
}

#[test]
fn real_deliverer_behind_a_receiver_that_cuts_gives_the_receiver_status() {
    // The real deliverer sees a cut job and exits 75 with "4.3.0 job
    // stream ends inside a job"; the receiver's 5.x.x is the one.
    let site = util::Site::new(util::closed_port());
    let stages = Stages::new(Some(&r_cuts(65, "5.6.0 malformed")), None);
    stages.real("postern-rewriter", util::REWRITER);
    stages.real("postern-deliverer", util::DELIVERER);
    let out = stages.run(MESSAGE, Some(&site.config));
    expect(&out, 65, "5.6.0 malformed\n", "receiver 65 after a cut job");
    assert!(site.queue("deferred").is_empty());
}

#[test]
fn rewriter_fails_in_the_middle() {
    for &(code, line) in FAILURES {
        // It read the job and refused it: nothing reaches the deliverer.
        let stages = Stages::new(Some(R_OK), Some(D_READS));
        stages.script("postern-rewriter", Some(&w_refuses(code, line)));
        let out = stages.run(MESSAGE, None);
        expect(
            &out,
            code,
            &one_line(line),
            &format!("rewriter {code} after reading"),
        );
        // It failed before reading (its config): the receiver gets EPIPE.
        let stages = Stages::new(Some(R_EPIPE), Some(D_READS));
        stages.script("postern-rewriter", Some(&d_fails_early(code, line)));
        let out = stages.run(MESSAGE, None);
        expect(
            &out,
            code,
            &one_line(line),
            &format!("rewriter {code} before reading"),
        );
    }
    let stages = Stages::new(Some(R_EPIPE), Some(D_READS));
    stages.script("postern-rewriter", Some("kill -KILL $$"));
    let out = stages.run(MESSAGE, None);
    expect(
        &out,
        75,
        "4.3.0 postern-filter: postern-rewriter was killed by signal 9\n",
        "rewriter killed",
    );
    std::fs::remove_file(stages.path("postern-rewriter")).unwrap();
    let out = stages.run(MESSAGE, None);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("4.3.5 postern-filter: "),
        "{}",
        out.stderr
    );
}

#[test]
fn real_chain_with_an_alias_refuses_an_unknown_one_with_its_own_line() {
    let site = util::Site::new(util::closed_port());
    site.alias(&["domain", "add", "--verified", "example.net"]);
    let stages = Stages::new(None, None);
    stages.real("postern-receiver", util::RECEIVER);
    stages.real("postern-scanner", util::SCANNER);
    stages.real("postern-rewriter", util::REWRITER);
    stages.real("postern-deliverer", util::DELIVERER);
    // The filter's recipient is bob@example.net, which has no alias.
    let out = stages.run(&util::message("unknown", "x"), Some(&site.config));
    expect(
        &out,
        67,
        "5.1.1 <bob@example.net> does not exist\n",
        "unknown alias",
    );
    site.alias(&[
        "alias",
        "add",
        "bob@example.net",
        "robert@elsewhere.example",
    ]);
    let out = stages.run(&util::message("known", "x"), Some(&site.config));
    expect(&out, 0, "", "alias to a relay that is down: spooled");
    assert_eq!(site.queue("deferred").len(), 1);
}

/// A stage between two others (`postern-scanner`, `postern-encryptor`)
/// failing: its line and its status, whether it read the stream first or
/// not, and a crash keeps the mail.
fn middle_stage_fails_with_its_own_line(name: &str) {
    for &(code, line) in FAILURES {
        for body in [w_refuses(code, line), d_fails_early(code, line)] {
            let stages = Stages::new(Some(R_OK), Some(D_READS));
            stages.script(name, Some(&body));
            let out = stages.run(MESSAGE, None);
            expect(&out, code, &one_line(line), &format!("{name} {code}"));
        }
    }
    let stages = Stages::new(Some(R_OK), Some(D_READS));
    stages.script(name, Some("kill -KILL $$"));
    let out = stages.run(MESSAGE, None);
    expect(
        &out,
        75,
        &format!("4.3.0 postern-filter: {name} was killed by signal 9\n"),
        &format!("{name} killed"),
    );
}

#[test]
fn encryptor_fails_in_the_middle_with_its_own_line() {
    middle_stage_fails_with_its_own_line("postern-encryptor");
}

#[test]
fn scanner_fails_in_the_middle_with_its_own_line() {
    middle_stage_fails_with_its_own_line("postern-scanner");
}

#[test]
fn real_chain_with_clamd_down_keeps_the_mail_with_the_scanners_line() {
    let site = util::Site::new(util::closed_port());
    site.configure(
        "scanner",
        &format!("clamd = \"127.0.0.1:{}\"", util::closed_port()),
    );
    site.configure("encryptor", "keyring = \"\"");
    let stages = Stages::real_chain();
    let out = stages.run(&util::message("clamd down", "x"), Some(&site.config));
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("4.7.1 the virus scanner is not available: cannot connect to clamd"),
        "{}",
        out.stderr
    );
    assert!(site.queue("deferred").is_empty(), "nothing was passed on");
}

#[test]
fn real_chain_with_a_missing_keyring_keeps_the_mail_with_the_encryptors_line() {
    let site = util::Site::new(util::closed_port());
    site.configure("encryptor", "keyring = \"/nonexistent/gnupg\"");
    let stages = Stages::real_chain();
    let out = stages.run(&util::message("no keyring", "x"), Some(&site.config));
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("4.3.5 the GnuPG home /nonexistent/gnupg does not exist"),
        "{}",
        out.stderr
    );
    assert!(site.queue("deferred").is_empty(), "nothing was passed on");
}
