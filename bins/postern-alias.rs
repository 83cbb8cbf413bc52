//! postern-alias(8): the alias store — domains and their verification,
//! aliases, per-domain settings, virtual(5) import and export. Each
//! command parses its arguments and calls one operation of
//! `postern::alias::admin`.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Parser, Subcommand};
use postern::alias::admin::{self, AliasLimits};
use postern::alias::crypto;
use postern::alias::store::{AliasCrypto, AliasRow, AliasStore, Domain, DomainMode, pattern_label};
use postern::alias::sync;
use postern::config::Config;
use postern::encryptor::openpgp::Cert;
use postern::exit::{Failure, Sysexit, ToFailure};
use postern::log::Log;
use postern::mail::{date, status};
use postern_cli as common;
use serde_json::{Value, json};

const TOOL: &str = "postern-alias";

/// Manage postern's alias store: domains, aliases, settings, imports.
#[derive(Parser)]
#[command(name = TOOL, version)]
struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Print JSON (one object or array) instead of text
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Domains: add, remove, list, verify, show, set
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Aliases: add, remove, enable, disable, list, show
    #[command(subcommand)]
    Alias(AliasCommand),
    /// OpenPGP keys and encryption policies of aliases: set, remove, show, list, policy
    #[command(subcommand)]
    Key(KeyCommand),
    /// Import a virtual(5) file ("-" for standard input)
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the aliases (of DOMAIN, or all) as a virtual(5) file
    Export {
        #[arg(value_name = "DOMAIN")]
        domain: Option<String>,
    },
    /// Keep team addresses in step with their directory ([sync] teams; all domains, or DOMAIN...)
    Sync {
        /// Print the plan; change nothing and send nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Apply a plan that disables more aliases than sync.max_disable
        #[arg(long)]
        force: bool,
        /// Print every change and problem, not only the counts
        #[arg(short = 'v', long)]
        verbose: bool,
        #[arg(value_name = "DOMAIN")]
        domains: Vec<String>,
    },
    /// The member registry of the sync: add, remove, ban, unban, list, show
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Send USERNAME's team mail to ADDRESS (over the directory's address)
    Add {
        #[arg(value_name = "USERNAME")]
        username: String,
        #[arg(value_name = "ADDRESS")]
        address: String,
    },
    /// Forget USERNAME's registry entry (address and ban)
    Remove {
        #[arg(value_name = "USERNAME")]
        username: String,
    },
    /// Ban USERNAME: the next sync disables their team addresses
    Ban {
        #[arg(value_name = "USERNAME")]
        username: String,
    },
    /// Lift USERNAME's ban
    Unban {
        #[arg(value_name = "USERNAME")]
        username: String,
    },
    /// List the registry
    List,
    /// Show USERNAME: registry entry and team addresses
    Show {
        #[arg(value_name = "USERNAME")]
        username: String,
    },
}

#[derive(Subcommand)]
enum DomainCommand {
    /// Add DOMAIN and print the TXT record that verifies it
    Add {
        /// Read the domain's DNS TXT records too (after the store's aliases)
        #[arg(long)]
        dns: bool,
        /// Count it as verified now, without the DNS check (the operator vouches for it)
        #[arg(long)]
        verified: bool,
        #[arg(value_name = "DOMAIN")]
        domain: String,
    },
    /// Remove DOMAIN with its aliases and settings
    Remove {
        #[arg(value_name = "DOMAIN")]
        domain: String,
    },
    /// List the domains
    List,
    /// Look up DOMAIN's verification record in DNS; exit 75 until it is there
    Verify {
        #[arg(value_name = "DOMAIN")]
        domain: String,
    },
    /// Show DOMAIN: mode, verification, settings
    Show {
        #[arg(value_name = "DOMAIN")]
        domain: String,
    },
    /// Set one of DOMAIN's settings (see postern-alias(8), SETTINGS)
    Set {
        #[arg(value_name = "DOMAIN")]
        domain: String,
        #[arg(value_name = "KEY")]
        key: String,
        #[arg(value_name = "VALUE")]
        value: String,
    },
    /// Read DOMAIN's aliases from the store only, or the store then its TXT records
    Mode {
        #[arg(value_name = "DOMAIN")]
        domain: String,
        #[arg(value_name = "MODE", value_parser = ["store", "dns"])]
        mode: String,
    },
}

#[derive(Subcommand)]
enum AliasCommand {
    /// Add ALIAS (or replace its targets): NAME@DOMAIN, *@DOMAIN, /REGEX/@DOMAIN, with ! !! !!! for drop, defer, refuse
    Add(AddArgs),
    /// Remove ALIAS
    Remove {
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// Enable ALIAS again
    Enable {
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// Disable ALIAS: its mail is refused with 5.2.1 until it is enabled
    Disable {
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// List the aliases (of DOMAIN, or all)
    List {
        #[arg(value_name = "DOMAIN")]
        domain: Option<String>,
    },
    /// Show ALIAS
    Show {
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Attach the public key in FILE ("-" for standard input) to ALIAS
    Set {
        /// Use the key for every target of ALIAS, not only those its user IDs name
        #[arg(long)]
        any_user_id: bool,
        #[arg(value_name = "ALIAS")]
        alias: String,
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Take the key off ALIAS
    Remove {
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// Show ALIAS's key (with --armor, the key itself) and policy
    Show {
        /// Print the key ASCII-armored
        #[arg(long)]
        armor: bool,
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// List the aliases with a key or a policy
    List,
    /// Set ALIAS's encryption policy and WKD lookups
    Policy {
        /// if-key, require, never, or default (the domain's)
        #[arg(long, value_name = "POLICY")]
        encrypt: Option<String>,
        /// on, off, or default (the domain's)
        #[arg(long, value_name = "WHEN")]
        wkd: Option<String>,
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
}

#[derive(Args)]
struct AddArgs {
    /// A note for administrators
    #[arg(long, value_name = "TEXT", default_value = "")]
    description: String,
    #[arg(value_name = "ALIAS", allow_hyphen_values = true)]
    alias: String,
    /// Addresses, maildb:ADDRESS mailboxes or http(s) URLs
    #[arg(value_name = "TARGET")]
    targets: Vec<String>,
}

fn main() -> ExitCode {
    common::main(TOOL, |cli: &Cli| cli.config.clone(), run)
}

fn run(cli: Cli, config: &Config, log: &Log) -> Result<(), Failure> {
    let mut store = AliasStore::open_or_create(&config.aliases.store)?;
    let now = SystemTime::now();
    let json = cli.json;
    let limits = AliasLimits {
        max_targets: config.aliases.max_targets,
        max_new_per_day: config.aliases.max_new_aliases_per_day,
    };
    let out = match cli.command {
        Command::Domain(c) => domain(&mut store, config, c, json, now)?,
        Command::Alias(c) => alias(&mut store, c, json, limits, now)?,
        Command::Key(c) => key(&mut store, c, json, now)?,
        Command::Import { file } => {
            let (text, name) = read_file(&file)?;
            let r = admin::import(&mut store, &text, &name, limits.max_targets, now)?;
            if json {
                json!(r).to_string()
            } else {
                format!(
                    "{} added, {} changed, {} unchanged",
                    r.added, r.changed, r.unchanged
                )
            }
        }
        Command::Export { domain } => {
            let (text, skipped) = admin::export(&store, domain.as_deref())?;
            if skipped > 0 {
                eprintln!(
                    "{TOOL}: {skipped} alias(es) written as comments: virtual(5) cannot say what they do"
                );
            }
            text.trim_end().to_owned()
        }
        Command::Sync {
            dry_run,
            force,
            verbose,
            domains,
        } => {
            let options = sync::run::Options {
                dry_run,
                force,
                domains,
            };
            let report = sync::run::run(&mut store, config, log, &options, now)?;
            let text = if json {
                json!(report).to_string()
            } else {
                sync_text(&report, verbose || dry_run)
            };
            print(&text)?;
            return report.failure().map_or(Ok(()), Err);
        }
        Command::Member(c) => member(&mut store, c, json, now)?,
    };
    print(&out)
}

fn print(text: &str) -> Result<(), Failure> {
    if text.is_empty() {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::tempfail(format!("cannot write to standard output: {e}")))
}

/// A line per domain; with `details`, a line per change and problem.
fn sync_text(report: &sync::run::Report, details: bool) -> String {
    use sync::plan::Change;
    use sync::run::Outcome;
    let mut out = Vec::new();
    for d in &report.domains {
        let n = sync::plan::Counts::of(&d.changes);
        let head = format!(
            "{} {}{}",
            d.domain,
            d.team,
            if report.dry_run { " (dry run)" } else { "" }
        );
        match &d.outcome {
            Outcome::Skipped(why) => out.push(format!("{head}: skipped: {why}")),
            Outcome::Failed(why) | Outcome::Refused(why) => {
                out.push(format!("{head}: nothing changed: {why}"));
            }
            Outcome::Synced => out.push(format!(
                "{head}: {} member(s), {} created, {} changed, {} disabled, {} enabled again, \
                 {} unchanged, {} problem(s) ({} new){}",
                d.members,
                n.created,
                n.changed,
                n.disabled,
                n.enabled,
                d.unchanged,
                d.problems.len(),
                d.new_problems.len(),
                match d.notified {
                    0 => String::new(),
                    n => format!("; {n} admin(s) notified"),
                }
            )),
        }
        if !details {
            continue;
        }
        let at = |u: &str| format!("{u}@{}", d.domain);
        for c in &d.changes {
            out.push(match c {
                Change::Create { username, address } => {
                    format!("  create   {} -> {address}", at(username))
                }
                Change::Retarget {
                    username,
                    old,
                    address,
                    ..
                } => format!("  change   {} -> {address} (was {old})", at(username)),
                Change::Disable {
                    username, state, ..
                } => format!("  disable  {} ({})", at(username), state.reason()),
                Change::Enable {
                    username, address, ..
                } => format!("  enable   {} -> {address}", at(username)),
                Change::Restate {
                    username, state, ..
                } => format!("  still disabled  {} ({})", at(username), state.reason()),
            });
        }
        for p in &d.problems {
            let new = if d.new_problems.contains(p) {
                " (new)"
            } else {
                ""
            };
            out.push(format!("  problem  {p}{new}"));
        }
    }
    if report.sent > 0 {
        out.push(format!("{} notification(s) sent", report.sent));
    }
    for u in &report.unsent {
        out.push(format!("notification kept for the next run: {u}"));
    }
    out.join("\n")
}

fn member(
    store: &mut AliasStore,
    c: MemberCommand,
    json: bool,
    now: SystemTime,
) -> Result<String, Failure> {
    use sync::state;
    let show = |m: &sync::plan::Registered| {
        if json {
            member_json(m).to_string()
        } else {
            member_line(m)
        }
    };
    Ok(match c {
        MemberCommand::Add { username, address } => {
            show(&state::add_member(store, &username, &address, now)?)
        }
        MemberCommand::Remove { username } => {
            state::remove_member(store, &username)?;
            let name = state::username_arg(&username)?;
            if json {
                json!({"removed": name}).to_string()
            } else {
                format!("removed {name} from the registry")
            }
        }
        MemberCommand::Ban { username } => show(&state::ban_member(store, &username, true, now)?),
        MemberCommand::Unban { username } => {
            show(&state::ban_member(store, &username, false, now)?)
        }
        MemberCommand::List => {
            let all = store.read(state::members)?;
            if json {
                Value::Array(all.iter().map(member_json).collect()).to_string()
            } else {
                all.iter().map(member_line).collect::<Vec<_>>().join("\n")
            }
        }
        MemberCommand::Show { username } => {
            let name = state::username_arg(&username)?;
            let entry = state::find_member(store, &name)?;
            let rows = store.read(|c| state::synced_rows(c, Some(&name)))?;
            if json {
                let mut v = entry.as_ref().map_or_else(
                    || json!({"username": name, "address": null, "banned": false}),
                    member_json,
                );
                v["aliases"] = rows
                    .iter()
                    .map(|r| {
                        json!({
                            "alias": format!("{}@{}", r.synced.username, r.domain),
                            "team": r.team,
                            "state": r.synced.state,
                            "enabled": r.enabled,
                            "targets": r.synced.targets,
                        })
                    })
                    .collect();
                v.to_string()
            } else {
                let mut s = match &entry {
                    Some(m) => member_line(m),
                    None => format!("{name}\t(not in the registry)"),
                };
                for r in rows {
                    s.push_str(&format!(
                        "\n  {}@{}\t{}\t{}{}",
                        r.synced.username,
                        r.domain,
                        r.team,
                        r.synced.state.as_str(),
                        if r.enabled { "" } else { " (disabled)" }
                    ));
                }
                s
            }
        }
    })
}

fn member_line(m: &sync::plan::Registered) -> String {
    format!(
        "{}\t{}{}",
        m.username,
        m.address.as_deref().unwrap_or("(the directory's address)"),
        if m.banned { "\tbanned" } else { "" }
    )
}

fn member_json(m: &sync::plan::Registered) -> Value {
    json!({"username": m.username, "address": m.address, "banned": m.banned})
}

fn domain(
    store: &mut AliasStore,
    config: &Config,
    c: DomainCommand,
    json: bool,
    now: SystemTime,
) -> Result<String, Failure> {
    Ok(match c {
        DomainCommand::Add {
            dns,
            verified,
            domain,
        } => {
            let mode = if dns {
                DomainMode::Dns
            } else {
                DomainMode::Store
            };
            let d = admin::add_domain(store, &domain, mode, verified, now)?;
            let record = admin::verification_record(&d);
            if json {
                let mut v = domain_json(&d);
                v["record"] = json!(record);
                v.to_string()
            } else if d.verified.is_some() {
                format!("added {} (verified)", d.name)
            } else {
                format!(
                    "added {name}; publish this TXT record at {name}, then run {TOOL} domain verify {name}:\n{record}",
                    name = d.name
                )
            }
        }
        DomainCommand::Remove { domain } => {
            let name = admin::domain_arg(&domain)?;
            store.remove_domain(&name)?;
            if json {
                json!({"removed": name}).to_string()
            } else {
                format!("removed {name}")
            }
        }
        DomainCommand::List => {
            let domains = store.domains()?;
            if json {
                Value::Array(domains.iter().map(domain_json).collect()).to_string()
            } else {
                domains
                    .iter()
                    .map(|d| format!("{}\t{}\t{}", d.name, mode_name(d.mode), verified_text(d)))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        DomainCommand::Verify { domain } => {
            let name = admin::domain_arg(&domain)?;
            let client = postern::dns::DnsClient::new(&config.dns).map_err(|e| e.to_failure())?;
            let tokens = postern::alias::records::verification_tokens(&client, &name)
                .map_err(|e| Failure::new(Sysexit::TempFail, status::DNS_FAILURE, e.to_string()))?;
            if admin::verify_domain(store, &name, &tokens, now)? {
                if json {
                    json!({"domain": name, "verified": true}).to_string()
                } else {
                    format!("{name} is verified")
                }
            } else {
                let d = store
                    .domain(&name)?
                    .ok_or_else(|| postern::alias::store::StoreError::NoDomain(name.clone()))?;
                return Err(Failure::new(
                    Sysexit::TempFail,
                    status::NOT_AUTHORIZED,
                    format!(
                        "{name}: no TXT record {} yet",
                        admin::verification_record(&d)
                    ),
                ));
            }
        }
        DomainCommand::Show { domain } => {
            let name = admin::domain_arg(&domain)?;
            let d = store
                .domain(&name)?
                .ok_or_else(|| postern::alias::store::StoreError::NoDomain(name.clone()))?;
            let settings = store.settings(&name)?;
            if json {
                let mut v = domain_json(&d);
                v["record"] = json!(admin::verification_record(&d));
                v["settings"] = settings
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                v.to_string()
            } else {
                let mut s = format!(
                    "domain:   {}\nmode:     {}\nverified: {}\nrecord:   {}\n",
                    d.name,
                    mode_name(d.mode),
                    verified_text(&d),
                    admin::verification_record(&d)
                );
                for (k, v) in settings {
                    s.push_str(&format!("{k} = {v}\n"));
                }
                s.trim_end().to_owned()
            }
        }
        DomainCommand::Set { domain, key, value } => {
            let name = admin::domain_arg(&domain)?;
            store.set_setting(&name, &key, &value)?;
            let v = store.setting(&name, &key)?;
            if json {
                json!({"domain": name, key: v}).to_string()
            } else {
                format!("{name}: {key} = {v}")
            }
        }
        DomainCommand::Mode { domain, mode } => {
            let name = admin::domain_arg(&domain)?;
            let m = if mode == "dns" {
                DomainMode::Dns
            } else {
                DomainMode::Store
            };
            store.set_domain_mode(&name, m)?;
            if json {
                json!({"domain": name, "mode": mode}).to_string()
            } else {
                format!("{name}: mode {mode}")
            }
        }
    })
}

fn alias(
    store: &mut AliasStore,
    c: AliasCommand,
    json: bool,
    limits: AliasLimits,
    now: SystemTime,
) -> Result<String, Failure> {
    let show = |row: &AliasRow| {
        if json {
            alias_json(row).to_string()
        } else {
            alias_text(row)
        }
    };
    Ok(match c {
        AliasCommand::Add(a) => {
            let (row, new) =
                admin::add_alias(store, &a.alias, &a.targets, &a.description, limits, now)?;
            if json {
                let mut v = alias_json(&row);
                v["new"] = json!(new);
                v.to_string()
            } else {
                format!(
                    "{} {}",
                    if new { "added" } else { "replaced" },
                    alias_line(&row)
                )
            }
        }
        AliasCommand::Remove { alias } => {
            let row = admin::find(store, &alias)?;
            store.remove_alias(row.id)?;
            if json {
                json!({"removed": row.label()}).to_string()
            } else {
                format!("removed {}", row.label())
            }
        }
        AliasCommand::Enable { alias } => {
            let row = admin::find(store, &alias)?;
            store.set_enabled(row.id, true)?;
            show(&admin::find(store, &alias)?)
        }
        AliasCommand::Disable { alias } => {
            let row = admin::find(store, &alias)?;
            store.set_enabled(row.id, false)?;
            show(&admin::find(store, &alias)?)
        }
        AliasCommand::List { domain } => {
            let domain = domain.map(|d| admin::domain_arg(&d)).transpose()?;
            let rows = store.aliases(domain.as_deref())?;
            if json {
                Value::Array(rows.iter().map(alias_json).collect()).to_string()
            } else {
                rows.iter().map(alias_line).collect::<Vec<_>>().join("\n")
            }
        }
        AliasCommand::Show { alias } => show(&admin::find(store, &alias)?),
    })
}

fn key(
    store: &mut AliasStore,
    c: KeyCommand,
    json: bool,
    now: SystemTime,
) -> Result<String, Failure> {
    Ok(match c {
        KeyCommand::Set {
            any_user_id,
            alias,
            file,
        } => {
            let (bytes, _) = read_bytes(&file)?;
            let info = crypto::set_key(store, &alias, &bytes, any_user_id, now)?;
            if json {
                json!(info).to_string()
            } else {
                format!(
                    "{}: key {} for {}",
                    info.alias,
                    info.fingerprint,
                    if info.any_user_id {
                        "every target".to_owned()
                    } else {
                        info.targets.join(", ")
                    }
                )
            }
        }
        KeyCommand::Remove { alias } => {
            let label = crypto::remove_key(store, &alias, now)?;
            if json {
                json!({"alias": label, "key": null}).to_string()
            } else {
                format!("{label}: key removed")
            }
        }
        KeyCommand::Show { armor, alias } => {
            let (row, c, cert) = crypto::show(store, &alias)?;
            let armored = match (&cert, armor) {
                (Some(cert), true) => Some(cert.to_armored()),
                _ => None,
            };
            if json {
                let mut v = key_json(&row, &c, cert.as_ref());
                if let Some(a) = armored {
                    v["armored"] = json!(a);
                }
                v.to_string()
            } else {
                let mut s = key_text(&row, &c, cert.as_ref());
                if let Some(a) = armored {
                    s.push('\n');
                    s.push_str(a.trim_end());
                }
                s
            }
        }
        KeyCommand::List => {
            let mut rows = Vec::new();
            for (row, c) in store.crypto_aliases()? {
                rows.push((row, c));
            }
            if json {
                Value::Array(rows.iter().map(|(row, c)| key_json(row, c, None)).collect())
                    .to_string()
            } else {
                rows.iter()
                    .map(|(row, c)| {
                        format!(
                            "{}\t{}\tencrypt={}\twkd={}",
                            row.label(),
                            c.key.as_ref().map_or("-", |k| k.fingerprint.as_str()),
                            c.encrypt
                                .map_or("default", postern::config::EncryptPolicy::as_str),
                            c.wkd.map_or("default", |w| if w { "on" } else { "off" })
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        KeyCommand::Policy {
            encrypt,
            wkd,
            alias,
        } => {
            if encrypt.is_none() && wkd.is_none() {
                return Err(Failure::new(
                    Sysexit::Usage,
                    status::BAD_ARGUMENTS,
                    "key policy: give --encrypt, --wkd or both",
                ));
            }
            let (row, c) =
                crypto::set_policy(store, &alias, encrypt.as_deref(), wkd.as_deref(), now)?;
            if json {
                key_json(&row, &c, None).to_string()
            } else {
                key_text(&row, &c, None)
            }
        }
    })
}

fn key_text(row: &AliasRow, c: &AliasCrypto, cert: Option<&Cert>) -> String {
    let mut s = format!(
        "alias:       {}\nkey:         {}\nfor:         {}\nencrypt:     {}\nwkd:         {}",
        row.label(),
        c.key.as_ref().map_or("none", |k| k.fingerprint.as_str()),
        match &c.key {
            Some(k) if k.any_user_id => "every target",
            Some(_) => "the targets its user IDs name",
            None => "-",
        },
        c.encrypt.map_or(
            "default (the domain's)",
            postern::config::EncryptPolicy::as_str
        ),
        c.wkd
            .map_or("default (the domain's)", |w| if w { "on" } else { "off" })
    );
    if let Some(cert) = cert {
        s.push_str(&format!("\nuser IDs:    {}", cert.emails().join(", ")));
    }
    s
}

fn key_json(row: &AliasRow, c: &AliasCrypto, cert: Option<&Cert>) -> Value {
    json!({
        "alias": row.label(),
        "fingerprint": c.key.as_ref().map(|k| k.fingerprint.clone()),
        "any_user_id": c.key.as_ref().is_some_and(|k| k.any_user_id),
        "encrypt": c.encrypt.map(postern::config::EncryptPolicy::as_str),
        "wkd": c.wkd,
        "user_ids": cert.map(Cert::emails),
    })
}

fn read_bytes(path: &PathBuf) -> Result<(Vec<u8>, String), Failure> {
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    let result = if name == "-" {
        io::stdin().lock().read_to_end(&mut bytes).map(drop)
    } else {
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map(drop)
    };
    result.map_err(|e| {
        Failure::new(
            Sysexit::NoInput,
            status::BAD_ARGUMENTS,
            format!("cannot read {name}: {e}"),
        )
    })?;
    Ok((bytes, name))
}

fn read_file(path: &PathBuf) -> Result<(String, String), Failure> {
    let (bytes, name) = read_bytes(path)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::new(
            Sysexit::DataErr,
            status::BAD_ARGUMENTS,
            format!("{name} is not UTF-8 text"),
        )
    })?;
    Ok((text, name))
}

fn mode_name(m: DomainMode) -> &'static str {
    match m {
        DomainMode::Store => "store",
        DomainMode::Dns => "store+dns",
    }
}

fn verified_text(d: &Domain) -> String {
    match d.verified {
        Some(t) => format!(
            "verified {}",
            date::rfc5322(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
        ),
        None => "not verified".into(),
    }
}

fn domain_json(d: &Domain) -> Value {
    json!({
        "domain": d.name,
        "mode": if d.mode == DomainMode::Dns { "dns" } else { "store" },
        "verified": d.verified.is_some(),
        "verified_at": d.verified,
        "created": d.created,
    })
}

fn action_prefix(row: &AliasRow) -> &'static str {
    match row.action {
        postern::alias::Action::Forward => "",
        postern::alias::Action::Drop => "!",
        postern::alias::Action::Defer => "!!",
        postern::alias::Action::Refuse => "!!!",
    }
}

fn alias_line(row: &AliasRow) -> String {
    let state = if row.enabled { "" } else { " (disabled)" };
    format!(
        "{}{}\t{}{state}",
        action_prefix(row),
        row.label(),
        row.targets.join(", ")
    )
}

fn alias_text(row: &AliasRow) -> String {
    format!(
        "alias:       {}{}\nrule:        {}\naction:      {}\ntargets:     {}\nenabled:     {}\ndescription: {}\nid:          {}",
        action_prefix(row),
        row.label(),
        pattern_label(&row.pattern),
        postern::alias::store::action_str(row.action),
        row.targets.join(", "),
        if row.enabled { "yes" } else { "no" },
        row.description,
        row.id
    )
}

fn alias_json(row: &AliasRow) -> Value {
    json!({
        "id": row.id,
        "alias": row.label(),
        "domain": row.domain,
        "rule": pattern_label(&row.pattern),
        "action": postern::alias::store::action_str(row.action),
        "targets": row.targets,
        "enabled": row.enabled,
        "description": row.description,
        "created": row.created,
    })
}
