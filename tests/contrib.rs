//! The service files in contrib/ (systemd units, cron files) run only
//! postern binaries that exist, with flags those binaries have, and
//! `make install` installs every systemd unit.
//!
//! The units and cron lines are read as systemd and cron read them, just
//! enough: `ExecStart=`-style lines and the command field of a crontab
//! line. A command that names `@BINDIR@/postern-...` must name a binary of
//! this workspace, its subcommands (the words before the first flag) must
//! exist, and every flag must be listed by `BIN [SUBCOMMAND...] --help`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built binary of a postern tool, by name.
fn binary(name: &str) -> Option<&'static str> {
    Some(match name {
        "postern-receiver" => env!("CARGO_BIN_EXE_postern-receiver"),
        "postern-rewriter" => env!("CARGO_BIN_EXE_postern-rewriter"),
        "postern-deliverer" => env!("CARGO_BIN_EXE_postern-deliverer"),
        "postern-bouncer" => env!("CARGO_BIN_EXE_postern-bouncer"),
        "postern-queue" => env!("CARGO_BIN_EXE_postern-queue"),
        "postern-alias" => env!("CARGO_BIN_EXE_postern-alias"),
        "postern-maildb" => env!("CARGO_BIN_EXE_postern-maildb"),
        _ => return None,
    })
}

/// The files of a contrib/ subdirectory, sorted.
fn files(dir: &str) -> Vec<PathBuf> {
    let dir = root().join("contrib").join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("contrib entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The commands a systemd unit runs: the values of its `Exec...=` lines,
/// without systemd's prefixes (`-`, `@`, `+`, `!`, `:`; the `@` of
/// `@BINDIR@` stays).
fn unit_commands(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("Exec"))
        .filter_map(|l| l.split_once('='))
        .map(|(_, v)| {
            let mut v = v.trim();
            while !v.starts_with("@BINDIR@") {
                match v.strip_prefix(['-', '@', '+', '!', ':']) {
                    Some(rest) => v = rest,
                    None => break,
                }
            }
            v.to_owned()
        })
        .collect()
}

/// The commands of a crontab file: the field after the five time fields
/// and the user, on every line that is not a comment, blank or a
/// variable.
fn cron_commands(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            !first.contains('=')
        })
        .map(|l| l.split_whitespace().skip(6).collect::<Vec<_>>().join(" "))
        .collect()
}

/// The `--help` text of `bin` with `subcommands`, or why there is none.
fn help(bin: &str, subcommands: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .args(subcommands)
        .arg("--help")
        .env_remove("POSTERN_CONFIG")
        .output()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{bin} {} --help` exited {}: {}",
            subcommands.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The flags a `--help` text lists: its words that start with `-`, cut at
/// `=` and at `,`.
fn listed_flags(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .map(|w| w.split('=').next().unwrap_or(w).to_owned())
        .collect()
}

/// What is wrong with one command line of a contrib file (none: fine).
fn check_command(file: &Path, command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let Some(program) = words.first() else {
        return vec![format!("{}: an empty command", file.display())];
    };
    let Some(name) = program.strip_prefix("@BINDIR@/") else {
        // Not a postern tool (/bin/kill in ExecReload=).
        return if program.contains("postern") {
            vec![format!(
                "{}: `{program}` should be @BINDIR@/..., as make install fills in",
                file.display()
            )]
        } else {
            Vec::new()
        };
    };
    let Some(bin) = binary(name) else {
        return vec![format!(
            "{}: runs {name}, which is no postern binary",
            file.display()
        )];
    };
    // A shell redirection ends the command's own words.
    let args: Vec<&str> = words[1..]
        .iter()
        .take_while(|w| !w.contains('>') && !w.starts_with('<'))
        .copied()
        .collect();
    let subcommands: Vec<&str> = args
        .iter()
        .take_while(|w| !w.starts_with('-') && !w.starts_with('$'))
        .copied()
        .collect();
    let text = match help(bin, &subcommands) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {e}", file.display())],
    };
    let known = listed_flags(&text);
    args.iter()
        .filter(|w| w.starts_with('-'))
        .map(|w| w.split('=').next().unwrap_or(w))
        .filter(|flag| !known.contains(*flag))
        .map(|flag| {
            format!(
                "{}: `{name} {}` has no flag {flag} (see its --help)",
                file.display(),
                subcommands.join(" ")
            )
        })
        .collect()
}

#[test]
fn contrib_commands_name_real_binaries_and_flags() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in files("systemd") {
        for command in unit_commands(&read(&file)) {
            problems.extend(check_command(&file, &command));
            checked += 1;
        }
    }
    for file in files("cron") {
        for command in cron_commands(&read(&file)) {
            problems.extend(check_command(&file, &command));
            checked += 1;
        }
    }
    assert!(checked >= 4, "found only {checked} commands in contrib/");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself finds a wrong flag, a missing binary and a missing
/// subcommand: a test that cannot fail checks nothing.
#[test]
fn the_command_check_can_fail() {
    let file = Path::new("example.service");
    assert!(check_command(file, "@BINDIR@/postern-deliverer --daemon").is_empty());
    assert!(check_command(file, "@BINDIR@/postern-deliverer --run-queue --flush").is_empty());
    assert!(check_command(file, "/bin/kill -HUP $MAINPID").is_empty());
    assert!(!check_command(file, "@BINDIR@/postern-deliverer --deamon").is_empty());
    assert!(!check_command(file, "@BINDIR@/postern-nothing --daemon").is_empty());
    assert!(!check_command(file, "@BINDIR@/postern-maildb nosuchcommand --all").is_empty());
    assert!(!check_command(file, "/usr/local/bin/postern-deliverer --daemon").is_empty());
    assert!(check_command(file, "@BINDIR@/postern-alias sync >/dev/null").is_empty());
    assert!(!check_command(file, "@BINDIR@/postern-alias sync --dryrun >/dev/null").is_empty());
}

/// The units that run the queue: the daemon with its signals, the timer's
/// one-shot run, both as the postern user and not as root.
#[test]
fn queue_units_run_the_deliverer_as_the_postern_user() {
    let dir = root().join("contrib/systemd");
    let daemon = read(&dir.join("postern-deliverer.service"));
    let lines: BTreeSet<&str> = daemon.lines().map(str::trim).collect();
    for want in [
        "ExecStart=@BINDIR@/postern-deliverer --daemon",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "Restart=on-failure",
        "User=@USER@",
        "ProtectSystem=strict",
    ] {
        assert!(
            lines.contains(want),
            "postern-deliverer.service lacks `{want}`"
        );
    }
    let rw = daemon
        .lines()
        .find_map(|l| l.strip_prefix("ReadWritePaths="))
        .expect("postern-deliverer.service has ReadWritePaths=");
    assert!(
        rw.split_whitespace().any(|p| p == "/var/spool/postern"),
        "the daemon must be able to write the spool: ReadWritePaths={rw}"
    );
    let run = read(&dir.join("postern-queue-run.service"));
    assert!(
        run.lines()
            .any(|l| l == "ExecStart=@BINDIR@/postern-deliverer --run-queue")
    );
    assert!(run.lines().any(|l| l == "Type=oneshot"));
    assert!(run.lines().any(|l| l == "User=@USER@"));
    let timer = read(&dir.join("postern-queue-run.timer"));
    assert!(timer.lines().any(|l| l.starts_with("OnCalendar=")));
}

/// `make install` copies every systemd unit and cron file of contrib/.
#[test]
fn make_install_copies_every_unit_and_cron_file() {
    let makefile = read(&root().join("Makefile"));
    let install = makefile
        .split("\ninstall:")
        .nth(1)
        .expect("the Makefile has an install target");
    let install = install.split("\n\n").next().unwrap_or(install);
    for dir in ["systemd", "cron"] {
        for file in files(dir) {
            let name = format!("{dir}/{}", file.file_name().unwrap().to_string_lossy());
            assert!(
                install.contains(&name),
                "make install does not copy contrib/{name}"
            );
        }
    }
}

/// systemd itself reads the units (with the placeholders filled in as
/// `make install` does). Needs systemd-analyze, which `make deps` does
/// not install.
#[test]
#[ignore = "needs systemd-analyze (Debian package systemd); run with --ignored"]
fn systemd_analyze_verifies_the_units() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bindir = Path::new(env!("CARGO_BIN_EXE_postern-deliverer"))
        .parent()
        .expect("the binaries' directory")
        .to_owned();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let mut units = Vec::new();
    for file in files("systemd") {
        let text = read(&file)
            .replace("@BINDIR@", &bindir.to_string_lossy())
            .replace("@USER@", &user);
        let path = dir.path().join(file.file_name().unwrap());
        std::fs::write(&path, text).expect("write unit");
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .expect("systemd-analyze is not installed");
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
