//! Configuration (postern.toml(5)): one TOML file, every key with a
//! built-in default so that postern runs with no file at all.
//!
//! The file is `--config FILE`, else `$POSTERN_CONFIG`, else
//! `/etc/postern/postern.toml` if it exists. Unknown keys are an error that
//! names the key and its line: a typo must never silently fall back to a
//! default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exit::{Failure, ToFailure};
use crate::mail::text;
use crate::store::durable::DirectoryFsync;

pub const DEFAULT_PATH: &str = "/etc/postern/postern.toml";
pub const ENV_VAR: &str = "POSTERN_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ToFailure for ConfigError {
    fn to_failure(&self) -> Failure {
        Failure::config(self.to_string())
    }
}

/// Where log lines go (`log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// syslog if `/dev/log` exists, else stderr when it is a terminal,
    /// else nowhere (stderr of a pipe(8) command is the bounce text).
    Auto,
    Syslog,
    Stderr,
    /// Append to `log_file`.
    File,
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The name in our `Received:` header and the default SMTP HELO name.
    pub hostname: String,
    pub log: LogTarget,
    pub log_file: Option<PathBuf>,
    /// Put envelope addresses in log lines (off: queue ids, sizes, codes only).
    pub log_addresses: bool,
    /// Largest message accepted, in bytes.
    pub message_size_limit: u64,
    /// Most `Received:` plus `Delivered-To:` headers before it is a loop.
    pub hop_count_limit: usize,
    pub spool: SpoolConfig,
    pub relay: RelayConfig,
    pub deliverer: DelivererConfig,
    pub queue: QueueConfig,
    pub maildb: MaildbConfig,
    pub dns: DnsConfig,
    pub aliases: AliasesConfig,
    pub srs: SrsConfig,
    pub rewriter: RewriterConfig,
    pub bouncer: BouncerConfig,
    pub mta_sts: MtaStsConfig,
    pub encryptor: EncryptorConfig,
    pub wkd: WkdConfig,
    pub scanner: ScannerConfig,
    pub sync: SyncConfig,
}

/// DNS lookups (TXT records for aliases and verification; MX later).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// `IP` or `IP:PORT` of the servers to ask; empty: /etc/resolv.conf.
    pub nameservers: Vec<String>,
    /// How long one query may take.
    #[serde(with = "human_duration")]
    pub timeout: Duration,
    /// Queries per lookup before it counts as failed (4.4.3).
    pub attempts: usize,
    /// Longest an answer is kept (answers are kept for their TTL, at most
    /// this; 0s: no cache).
    #[serde(with = "human_duration")]
    pub max_cache_ttl: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
            max_cache_ttl: Duration::from_secs(3600),
        }
    }
}

/// MTA-STS (RFC 8461): the policies of recipient domains, fetched over
/// HTTPS, that say which MX hosts take their mail and that TLS to them
/// must verify (`deliverer::mta_sts`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtaStsConfig {
    /// Look policies up and apply them (off: as if no domain had one).
    pub enabled: bool,
    /// Longest one policy fetch may take, from connecting to the last byte.
    #[serde(with = "human_duration")]
    pub timeout: Duration,
    /// Largest policy file accepted, in bytes (RFC 8461 section 3.3 asks
    /// for at least 64 KiB).
    pub max_policy_size: u64,
    /// PEM file of the CA certificates policy servers must chain to
    /// (none: the Mozilla roots of webpki-roots). For a private PKI and
    /// tests; certificates are always verified.
    pub ca_file: Option<PathBuf>,
    /// For tests: `IP:PORT` that every policy host is reached at; the
    /// host name, SNI and the certificate check stay as they are.
    pub connect_to: Option<String>,
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        MtaStsConfig {
            enabled: true,
            timeout: Duration::from_secs(10),
            max_policy_size: 65_536,
            ca_file: None,
            connect_to: None,
        }
    }
}

/// What the encryptor does when an alias (or its domain) says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncryptPolicy {
    /// Encrypt to a recipient who has a key; others get the message as it is.
    IfKey,
    /// Encrypt, or refuse the recipient (5.7.1) when no key is found.
    Require,
    /// Never encrypt.
    Never,
}

impl EncryptPolicy {
    /// As the configuration and the alias store write it.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptPolicy::IfKey => "if-key",
            EncryptPolicy::Require => "require",
            EncryptPolicy::Never => "never",
        }
    }
}

/// OpenPGP encryption to recipients' keys (postern-encryptor(1)).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptorConfig {
    /// The policy for recipients whose alias and domain set none.
    pub policy: EncryptPolicy,
    /// The operator's GnuPG home, read through gpgme (empty: no keyring).
    pub keyring: PathBuf,
    /// The gpg program gpgme runs (empty: gpgme's default).
    pub gpg: PathBuf,
    /// Longest one keyring lookup may take before the job waits (75).
    #[serde(with = "human_duration")]
    pub keyring_timeout: Duration,
    /// Put the real Subject (and From, To, Cc, Date) inside the encrypted
    /// part and `Subject: ...` outside (protected headers).
    pub protected_headers: bool,
}

impl Default for EncryptorConfig {
    fn default() -> Self {
        EncryptorConfig {
            policy: EncryptPolicy::IfKey,
            keyring: PathBuf::from("/var/lib/postern/gnupg"),
            gpg: PathBuf::new(),
            keyring_timeout: Duration::from_secs(10),
            protected_headers: false,
        }
    }
}

/// Web Key Directory lookups (draft-koch-openpgp-webkey-service).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WkdConfig {
    /// Look keys up by WKD (per domain and per alias it can be switched).
    pub enabled: bool,
    /// Longest one lookup (both methods, redirects included) may take.
    #[serde(with = "human_duration")]
    pub timeout: Duration,
    /// Largest key file accepted, in bytes.
    pub max_size: u64,
    /// Redirects followed at most.
    pub max_redirects: u32,
    /// How long a key found is kept before it is fetched again.
    #[serde(with = "human_duration")]
    pub cache_time: Duration,
    /// How long "no key" (or a server that failed) is kept.
    #[serde(with = "human_duration")]
    pub negative_cache_time: Duration,
    /// PEM file of the CA certificates WKD servers must chain to (none:
    /// the Mozilla roots). Certificates are always verified.
    pub ca_file: Option<PathBuf>,
    /// For tests: allow servers on loopback and private addresses (never
    /// in production: a key lookup must not reach the inside network).
    pub allow_private_addresses: bool,
    /// For tests: `IP:PORT` that every WKD host is reached at; the host
    /// name, SNI and the certificate check stay as they are.
    pub connect_to: Option<String>,
}

impl Default for WkdConfig {
    fn default() -> Self {
        WkdConfig {
            enabled: true,
            timeout: Duration::from_secs(2),
            max_size: 1 << 20,
            max_redirects: 3,
            cache_time: Duration::from_secs(86400),
            negative_cache_time: Duration::from_secs(3600),
            ca_file: None,
            allow_private_addresses: false,
            connect_to: None,
        }
    }
}

/// What the scanner does with a message a rule flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanAction {
    /// Refuse the recipient with 5.7.1 (the sender is told by a bounce).
    Reject,
    /// Pass the message on with an `X-Postern-*` header saying why.
    Tag,
}

impl ScanAction {
    /// As the configuration and the alias store write it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanAction::Reject => "reject",
            ScanAction::Tag => "tag",
        }
    }

    pub fn parse(text: &str) -> Option<ScanAction> {
        match text.trim().to_ascii_lowercase().as_str() {
            "reject" => Some(ScanAction::Reject),
            "tag" => Some(ScanAction::Tag),
            _ => None,
        }
    }
}

/// What the scanner does when clamd cannot be asked (down, slow, an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClamdFailure {
    /// The job waits (4.7.1, 75): Postfix tries again later.
    Defer,
    /// The message goes on unscanned, with `X-Postern-Virus-Scan: not
    /// scanned` and a warning in the log (fail-open).
    Pass,
}

/// What the scanner does when DMARC fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcAction {
    /// As the sender's domain asks: `p=reject` rejects, `p=quarantine`
    /// tags, `p=none` only records the result.
    Policy,
    /// Only record the result (Authentication-Results) and tag.
    Tag,
}

/// Content protection and sender checks (postern-scanner(1)).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScannerConfig {
    /// clamd's socket: `unix:/PATH` (or an absolute path) or `IP:PORT`;
    /// empty: no virus scanning.
    pub clamd: String,
    /// Longest one clamd exchange (connect, each write, the reply) may take.
    #[serde(with = "human_duration")]
    pub clamd_timeout: Duration,
    /// clamd's `StreamMaxLength`: a bigger message is not sent, and is
    /// handled as clamd failing (`clamd_failure`).
    pub clamd_max_stream: u64,
    /// When clamd cannot be asked: `defer` (4.7.1) or `pass` (fail-open).
    pub clamd_failure: ClamdFailure,
    /// Executable attachments, unless the domain's `executable_action` says.
    pub executable_action: ScanAction,
    /// Count password-protected archives as executable attachments.
    pub encrypted_archives: bool,
    /// Phishing signs, unless the domain's `phishing_action` says.
    pub phishing_action: ScanAction,
    /// Put before the Subject of a message tagged as phishing (empty: none).
    pub phishing_subject_prefix: String,
    /// Brand names and domains whose imitation in a display name or From
    /// domain counts as phishing.
    pub protected_names: Vec<String>,
    /// Adult content (the heuristic of postern-scanner(1)).
    pub adult_action: ScanAction,
    /// Words per language (`en = ["..."]`) that mark a Subject as adult;
    /// none given: the built-in lists.
    pub adult_words: std::collections::BTreeMap<String, Vec<String>>,
    /// Sender domains (`example.org`, `*.example`) whose mail is adult.
    pub adult_senders: Vec<String>,
    /// Check SPF of the envelope sender (and of the HELO name when the
    /// sender is empty).
    pub spf: bool,
    /// What an SPF `fail` does.
    pub spf_fail_action: ScanAction,
    /// Check DKIM signatures and DMARC of the From domain.
    pub dmarc: bool,
    /// What a DMARC `fail` does.
    pub dmarc_action: DmarcAction,
    /// Longest the SPF, DKIM and DMARC lookups of one message may take
    /// together; past it the results are `temperror`.
    #[serde(with = "human_duration")]
    pub auth_timeout: Duration,
    /// DNS blocklists of the client address: `ZONE` or
    /// `ZONE=127.0.0.2,127.0.0.4` (only these answers count).
    pub dnsbl_zones: Vec<String>,
    /// What a listing does.
    pub dnsbl_action: ScanAction,
    /// Clients and senders whose mail skips the sender checks (IP, CIDR,
    /// reverse DNS name, `*.domain`, `user@domain`, `@domain`).
    pub allow: Vec<String>,
    /// Clients and senders whose mail is refused (5.7.1), same forms.
    pub deny: Vec<String>,
    /// Greylisting (client network, sender, recipient).
    pub greylist: bool,
    /// How long a new triple waits before it is let through.
    #[serde(with = "human_duration")]
    pub greylist_delay: Duration,
    /// How long a triple seen is remembered.
    #[serde(with = "human_duration")]
    pub greylist_expiry: Duration,
    /// The greylisting database (SQLite; triples are stored as keyed
    /// hashes, never as addresses).
    pub greylist_db: PathBuf,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            clamd: "unix:/run/clamav/clamd.ctl".into(),
            clamd_timeout: Duration::from_secs(30),
            clamd_max_stream: 25 * 1024 * 1024,
            clamd_failure: ClamdFailure::Defer,
            executable_action: ScanAction::Reject,
            encrypted_archives: true,
            phishing_action: ScanAction::Tag,
            phishing_subject_prefix: String::new(),
            protected_names: Vec::new(),
            adult_action: ScanAction::Tag,
            adult_words: std::collections::BTreeMap::new(),
            adult_senders: Vec::new(),
            spf: true,
            spf_fail_action: ScanAction::Tag,
            dmarc: true,
            dmarc_action: DmarcAction::Policy,
            auth_timeout: Duration::from_secs(10),
            dnsbl_zones: Vec::new(),
            dnsbl_action: ScanAction::Reject,
            allow: Vec::new(),
            deny: Vec::new(),
            greylist: false,
            greylist_delay: Duration::from_secs(300),
            greylist_expiry: Duration::from_secs(35 * 86400),
            greylist_db: PathBuf::from("/var/lib/postern/greylist.db"),
        }
    }
}

/// How `postern-alias sync` tells a domain's admins what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyMethod {
    /// A job through postern-rewriter and postern-deliverer, in process
    /// (an admin address in one of our domains is resolved like any mail).
    Deliverer,
    /// Handed to `sync.sendmail` (Postfix's sendmail(1)).
    Sendmail,
    /// No mail; the report is printed only.
    None,
}

/// Team addresses kept in step with a directory (`postern-alias sync`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Domain to team: `"~TEAM"` is a Launchpad team, `"file:TEAM"` a
    /// team of `members_file`. Only verified domains of the store take part.
    pub teams: std::collections::BTreeMap<String, String>,
    /// The Launchpad web service root (`https://`; `http://` only on a
    /// loopback address, for tests).
    pub launchpad_url: String,
    /// PEM file of the CA certificates the web service must chain to
    /// (none: the Mozilla roots).
    pub launchpad_ca_file: Option<PathBuf>,
    /// A member counts only after signing the Ubuntu Code of Conduct.
    pub require_coc: bool,
    /// Members of a team that is itself a member count too (as Launchpad
    /// counts participation); off: such a team is skipped and reported.
    pub sub_teams: bool,
    /// Lines of `team username address` for teams written `"file:TEAM"`.
    pub members_file: PathBuf,
    /// Longest one request may take.
    #[serde(with = "human_duration")]
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Further tries of a request that timed out or got a 5xx answer.
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one.
    #[serde(with = "human_duration")]
    pub retry_backoff: Duration,
    /// Most members read from one team (a larger team fails the domain).
    pub max_members: usize,
    /// Most aliases one run may disable in a domain; a run that would
    /// disable more changes nothing there unless given `--force` (0: no limit).
    pub max_disable: usize,
    /// `deliverer`, `sendmail` or `none`.
    pub notify: NotifyMethod,
    /// The sendmail program for `notify = "sendmail"`.
    pub sendmail: PathBuf,
    /// From: of the notifications (empty: postmaster@`hostname`).
    pub notify_from: String,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            teams: std::collections::BTreeMap::new(),
            launchpad_url: "https://api.launchpad.net/1.0".into(),
            launchpad_ca_file: None,
            require_coc: true,
            sub_teams: true,
            members_file: PathBuf::from("/etc/postern/members"),
            timeout: Duration::from_secs(30),
            concurrency: 8,
            retries: 3,
            retry_backoff: Duration::from_secs(1),
            max_members: 100_000,
            max_disable: 50,
            notify: NotifyMethod::Deliverer,
            sendmail: PathBuf::from("/usr/sbin/sendmail"),
            notify_from: String::new(),
        }
    }
}

/// Where aliases come from (postern-alias(8)).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AliasesConfig {
    /// The alias store (SQLite).
    pub store: PathBuf,
    /// Domains served from their DNS TXT records alone, with no row in
    /// the store (they count as verified: the operator listed them).
    pub dns_domains: Vec<String>,
    /// TXT record prefixes read as alias records, in this order
    /// (`forward-email` reads `forward-email=...`).
    pub txt_prefixes: Vec<String>,
    /// File holding the key for encrypted TXT values (empty: none; such
    /// values are refused with a clear message).
    pub txt_key_file: Option<PathBuf>,
    /// Most targets one alias may expand to.
    pub max_targets: usize,
    /// Most aliases `postern-alias alias add` creates per domain per day.
    pub max_new_aliases_per_day: u32,
}

impl Default for AliasesConfig {
    fn default() -> Self {
        AliasesConfig {
            store: PathBuf::from("/var/lib/postern/aliases.db"),
            dns_domains: Vec::new(),
            txt_prefixes: vec!["forward-email".into(), "postern".into()],
            txt_key_file: None,
            max_targets: 10,
            max_new_aliases_per_day: 50,
        }
    }
}

/// The Sender Rewriting Scheme for forwarded mail.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrsConfig {
    /// The domain of rewritten senders (`SRS0=...@domain`); empty: the
    /// `hostname`. Its SPF record must allow this host.
    pub domain: String,
    /// Secrets, one per line, the first signs and all verify; mode 0600.
    pub secrets_file: PathBuf,
    /// The character after `SRS0`/`SRS1`: `=`, `+` or `-`.
    pub separator: char,
    /// How long a rewritten address is accepted back (bounces).
    #[serde(with = "human_duration")]
    pub max_age: Duration,
    /// Leave senders in these domains as they are (ours: SPF passes).
    pub exclude_domains: Vec<String>,
}

impl Default for SrsConfig {
    fn default() -> Self {
        SrsConfig {
            domain: String::new(),
            secrets_file: PathBuf::from("/etc/postern/srs.secrets"),
            separator: '=',
            max_age: Duration::from_secs(21 * 86400),
            exclude_domains: Vec::new(),
        }
    }
}

/// postern-rewriter(1): rate limits and what it adds to messages.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewriterConfig {
    /// Messages per day to one of our domains (0: no limit); a domain's
    /// own setting in the store wins.
    pub messages_per_day_per_domain: u64,
    /// Messages per day from one envelope sender (0: no limit).
    pub messages_per_day_per_sender: u64,
}

impl Default for RewriterConfig {
    fn default() -> Self {
        RewriterConfig {
            messages_per_day_per_domain: 10_000,
            messages_per_day_per_sender: 1_000,
        }
    }
}

/// postern-bouncer(8): delivery status notifications.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BouncerConfig {
    /// Most bytes of the original message a notification returns (whole,
    /// with RET=FULL, or its headers); a larger message is returned as
    /// its headers only. Postfix's `bounce_size_limit`.
    pub return_size_limit: u64,
    /// How long a message waits before its sender is told it is delayed
    /// (once per message; the deliverer reads this); 0s: never.
    #[serde(with = "human_duration")]
    pub delay_warning_time: Duration,
}

impl Default for BouncerConfig {
    fn default() -> Self {
        BouncerConfig {
            return_size_limit: 50_000,
            delay_warning_time: Duration::from_secs(4 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    pub directory: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    pub host: String,
    pub port: u16,
    /// HELO/EHLO name; empty means `hostname`.
    pub helo_name: String,
    /// Connect and per-command timeout.
    #[serde(with = "human_duration")]
    pub timeout: Duration,
    /// Longest a whole delivery attempt may take (below pipe(8)'s
    /// command_time_limit, 1000s by default).
    #[serde(with = "human_duration")]
    pub deadline: Duration,
    /// STARTTLS to the relay.
    pub tls: TlsLevel,
}

/// How much TLS a delivery insists on (Postfix's smtp_tls_security_level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsLevel {
    /// Plain text, even where STARTTLS is offered.
    None,
    /// STARTTLS when offered, any certificate; plain text if it is not
    /// offered or the handshake fails.
    May,
    /// STARTTLS required, any certificate.
    Encrypt,
    /// STARTTLS required, with a certificate that chains to a trusted
    /// root and names the host.
    Verify,
}

/// Where mail for a domain goes (`deliverer.transport`, `deliverer.routes`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Transport {
    /// The `[relay]`.
    Relay,
    /// The domain's MX hosts.
    Mx,
    /// One given host: `HOST:PORT` or `[IP]:PORT`, no MX lookup.
    Nexthop { host: String, port: u16 },
}

impl TryFrom<String> for Transport {
    type Error = String;

    fn try_from(s: String) -> Result<Transport, String> {
        match s.as_str() {
            "relay" => return Ok(Transport::Relay),
            "mx" => return Ok(Transport::Mx),
            _ => {}
        }
        let bad = || {
            format!(
                "{:?} is not \"relay\", \"mx\", HOST:PORT or [IP]:PORT",
                text::clean(&s)
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|&p| p != 0).ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(h) => h.strip_suffix(']').ok_or_else(bad)?,
            None => host,
        };
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '[' || c == ']')
        {
            return Err(bad());
        }
        Ok(Transport::Nexthop {
            host: host.to_owned(),
            port,
        })
    }
}

impl From<Transport> for String {
    fn from(t: Transport) -> String {
        match t {
            Transport::Relay => "relay".into(),
            Transport::Mx => "mx".into(),
            Transport::Nexthop { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Transport::Nexthop { host, port } => format!("{host}:{port}"),
        }
    }
}

/// How postern-deliverer(8) reaches recipients' domains.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DelivererConfig {
    /// Where mail goes unless `routes` names the domain.
    pub transport: Transport,
    /// Per-domain transports: `"example.net" = "mx"`.
    pub routes: std::collections::BTreeMap<String, Transport>,
    /// STARTTLS with MX hosts.
    pub tls: TlsLevel,
    /// PEM certificates trusted besides the Mozilla roots (verify level,
    /// MTA-STS).
    pub tls_ca_file: Option<PathBuf>,
    /// The port MX hosts listen on (25; other values are for tests).
    pub mx_port: u16,
    /// Most MX hosts tried per domain and attempt.
    pub max_mx_hosts: usize,
    /// Longest wait for a TCP connection.
    #[serde(with = "human_duration")]
    pub connect_timeout: Duration,
    /// Longest wait for the greeting and for the reply to each command.
    #[serde(with = "human_duration")]
    pub command_timeout: Duration,
    /// Longest wait for each write of the message and for the reply after
    /// it.
    #[serde(with = "human_duration")]
    pub data_timeout: Duration,
    /// Longest a whole attempt at one domain may take.
    #[serde(with = "human_duration")]
    pub deadline: Duration,
}

impl Default for DelivererConfig {
    fn default() -> Self {
        DelivererConfig {
            transport: Transport::Relay,
            routes: std::collections::BTreeMap::new(),
            tls: TlsLevel::May,
            tls_ca_file: None,
            mx_port: 25,
            max_mx_hosts: 5,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            deadline: Duration::from_secs(900),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    #[serde(with = "human_duration")]
    pub minimal_backoff_time: Duration,
    #[serde(with = "human_duration")]
    pub maximal_backoff_time: Duration,
    #[serde(with = "human_duration")]
    pub maximal_queue_lifetime: Duration,
    /// The longest the queue daemon sleeps between two runs (it wakes
    /// sooner when a job falls due).
    #[serde(with = "human_duration")]
    pub queue_run_delay: Duration,
    /// How long a redacted copy of a delivered message is kept in the
    /// spool's `sent/` (0: none is kept); the alias store's per-domain
    /// `sent_retention_days` overrides it.
    #[serde(with = "human_duration")]
    pub retention_time: Duration,
}

/// Encrypted mailboxes (postern-maildb(8)).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaildbConfig {
    /// Where the mailbox files live, one per user.
    pub directory: PathBuf,
    /// How long to wait for another process's lock on a mailbox.
    #[serde(with = "human_duration")]
    pub lock_timeout: Duration,
    /// Most bytes a mailbox may take on disk (0: no limit).
    #[serde(with = "byte_size")]
    pub quota: u64,
    /// When `deliver` fsyncs the drop area's directory after the file.
    #[serde(serialize_with = "directory_fsync::serialize")]
    pub directory_fsync: DirectoryFsync,
}

impl Default for MaildbConfig {
    fn default() -> Self {
        MaildbConfig {
            directory: PathBuf::from("/var/lib/postern/mail"),
            lock_timeout: Duration::from_secs(30),
            quota: 10 << 30,
            directory_fsync: DirectoryFsync::Auto,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: system_hostname(),
            log: LogTarget::Auto,
            log_file: None,
            log_addresses: false,
            message_size_limit: 50 * 1024 * 1024,
            hop_count_limit: 50,
            spool: SpoolConfig::default(),
            relay: RelayConfig::default(),
            deliverer: DelivererConfig::default(),
            queue: QueueConfig::default(),
            maildb: MaildbConfig::default(),
            dns: DnsConfig::default(),
            aliases: AliasesConfig::default(),
            srs: SrsConfig::default(),
            rewriter: RewriterConfig::default(),
            bouncer: BouncerConfig::default(),
            mta_sts: MtaStsConfig::default(),
            encryptor: EncryptorConfig::default(),
            wkd: WkdConfig::default(),
            scanner: ScannerConfig::default(),
            sync: SyncConfig::default(),
        }
    }
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            directory: PathBuf::from("/var/spool/postern"),
            key_file: PathBuf::from("/etc/postern/spool.key"),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            host: "127.0.0.1".into(),
            port: 10026,
            helo_name: String::new(),
            timeout: Duration::from_secs(300),
            deadline: Duration::from_secs(600),
            tls: TlsLevel::None,
        }
    }
}

impl Default for QueueConfig {
    /// The same schedule as Postfix's defaults.
    fn default() -> Self {
        QueueConfig {
            minimal_backoff_time: Duration::from_secs(300),
            maximal_backoff_time: Duration::from_secs(4000),
            maximal_queue_lifetime: Duration::from_secs(5 * 86400),
            queue_run_delay: Duration::from_secs(300),
            retention_time: Duration::from_secs(30 * 86400),
        }
    }
}

impl Config {
    /// Loads the file named by `explicit`, else by `$POSTERN_CONFIG`, else
    /// the default path if it exists, else the built-in defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let from_env = std::env::var_os(ENV_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        match explicit.map(Path::to_path_buf).or(from_env) {
            Some(path) => Config::from_file(&path),
            None if Path::new(DEFAULT_PATH).exists() => Config::from_file(Path::new(DEFAULT_PATH)),
            None => Ok(Config::default()),
        }
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses TOML text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: describe_toml_error(&e, text),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.hostname.is_empty()
            || self
                .hostname
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!("hostname {:?} is not a host name", self.hostname));
        }
        if self.log == LogTarget::File && self.log_file.is_none() {
            return Err("log = \"file\" needs log_file".into());
        }
        if self.message_size_limit == 0 {
            return Err("message_size_limit must be greater than 0".into());
        }
        if self.relay.port == 0 {
            return Err("relay.port must not be 0".into());
        }
        if self.relay.timeout.is_zero() {
            return Err("relay.timeout must be greater than 0".into());
        }
        if self.relay.deadline.is_zero() {
            return Err("relay.deadline must be greater than 0".into());
        }
        if self.relay.host.is_empty() {
            return Err("relay.host is empty".into());
        }
        if self
            .relay
            .helo_name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!(
                "relay.helo_name {:?} is not a host name",
                text::clean(&self.relay.helo_name)
            ));
        }
        let d = &self.deliverer;
        if d.mx_port == 0 || d.max_mx_hosts == 0 {
            return Err(
                "deliverer.mx_port and deliverer.max_mx_hosts must be greater than 0".into(),
            );
        }
        if [
            d.connect_timeout,
            d.command_timeout,
            d.data_timeout,
            d.deadline,
        ]
        .iter()
        .any(Duration::is_zero)
        {
            return Err("deliverer: the timeouts and the deadline must be greater than 0".into());
        }
        if self.maildb.directory.as_os_str().is_empty() {
            return Err("maildb.directory is empty".into());
        }
        if self.maildb.lock_timeout.as_millis() > i32::MAX as u128 {
            return Err("maildb.lock_timeout is too long".into());
        }
        if self.dns.timeout.is_zero() || self.dns.attempts == 0 {
            return Err("dns.timeout and dns.attempts must be greater than 0".into());
        }
        if self.aliases.max_targets == 0 {
            return Err("aliases.max_targets must be greater than 0".into());
        }
        if self.aliases.txt_prefixes.iter().any(|p| {
            p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) {
            return Err(
                "aliases.txt_prefixes: a prefix is empty or not letters, digits, - and _".into(),
            );
        }
        if !matches!(self.srs.separator, '=' | '+' | '-') {
            return Err("srs.separator must be \"=\", \"+\" or \"-\"".into());
        }
        if self.srs.max_age < Duration::from_secs(86400) {
            return Err("srs.max_age must be at least 1d".into());
        }
        if self.bouncer.return_size_limit == 0 {
            return Err("bouncer.return_size_limit must be greater than 0".into());
        }
        if self.mta_sts.timeout.is_zero() {
            return Err("mta_sts.timeout must be greater than 0".into());
        }
        if self.mta_sts.max_policy_size == 0 {
            return Err("mta_sts.max_policy_size must be greater than 0".into());
        }
        if let Some(to) = &self.mta_sts.connect_to
            && to.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(format!(
                "mta_sts.connect_to {:?} is not IP:PORT",
                text::bounded(to, 100)
            ));
        }
        if self.encryptor.keyring_timeout.is_zero() {
            return Err("encryptor.keyring_timeout must be greater than 0".into());
        }
        if self.wkd.timeout.is_zero() || self.wkd.max_size == 0 {
            return Err("wkd.timeout and wkd.max_size must be greater than 0".into());
        }
        if let Some(to) = &self.wkd.connect_to
            && to.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(format!(
                "wkd.connect_to {:?} is not IP:PORT",
                text::bounded(to, 100)
            ));
        }
        let sc = &self.scanner;
        if sc.clamd_timeout.is_zero() || sc.clamd_max_stream == 0 || sc.auth_timeout.is_zero() {
            return Err(
                "scanner.clamd_timeout, clamd_max_stream and auth_timeout must be greater than 0"
                    .into(),
            );
        }
        if !sc.clamd.trim().is_empty()
            && let Err(e) = sc.clamd.parse::<crate::scanner::clamd::Endpoint>()
        {
            return Err(format!("scanner.{e}"));
        }
        if sc.greylist && (sc.greylist_delay.is_zero() || sc.greylist_expiry <= sc.greylist_delay) {
            return Err("scanner.greylist_delay must be above 0 and below greylist_expiry".into());
        }
        let sy = &self.sync;
        if sy.timeout.is_zero() || sy.concurrency == 0 || sy.max_members == 0 {
            return Err("sync.timeout, concurrency and max_members must be greater than 0".into());
        }
        if sy.concurrency > 64 {
            return Err("sync.concurrency must be at most 64".into());
        }
        for (domain, team) in &sy.teams {
            if crate::alias::domain_key(domain).is_none() {
                return Err(format!(
                    "sync.teams: {:?} is not a domain",
                    text::bounded(domain, 100)
                ));
            }
            crate::alias::sync::TeamRef::parse(team)
                .map_err(|e| format!("sync.teams.{}: {e}", text::bounded(domain, 100)))?;
        }
        let q = &self.queue;
        if q.queue_run_delay.is_zero() {
            return Err("queue.queue_run_delay must be greater than 0".into());
        }
        if q.minimal_backoff_time.is_zero() || q.minimal_backoff_time > q.maximal_backoff_time {
            return Err(
                "queue.minimal_backoff_time must be above 0 and at most maximal_backoff_time"
                    .into(),
            );
        }
        Ok(())
    }

    /// The domain of SRS addresses.
    pub fn srs_domain(&self) -> &str {
        if self.srs.domain.is_empty() {
            &self.hostname
        } else {
            &self.srs.domain
        }
    }

    /// The name to greet the relay with.
    pub fn helo_name(&self) -> &str {
        if self.relay.helo_name.is_empty() {
            &self.hostname
        } else {
            &self.relay.helo_name
        }
    }
}

/// `line 3: unknown field `hostnme`, expected one of ...` on one line.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Durations written as `300s`, `5m`, `4h`, `5d` (humantime syntax).
mod human_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Whole days as `5d`, else whole seconds as `300s` (as postern.toml(5)
    /// writes the defaults), else milliseconds; each reads back the same.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        const DAY: u64 = 86_400;
        let text = if d.subsec_nanos() == 0 && d.as_secs() > 0 && d.as_secs().is_multiple_of(DAY) {
            format!("{}d", d.as_secs() / DAY)
        } else if d.subsec_nanos() == 0 {
            format!("{}s", d.as_secs())
        } else {
            format!("{}ms", d.as_millis())
        };
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration like \"300s\" or \"5d\": {e}"
            ))
        })
    }
}

/// Sizes written as a number of bytes or as a string with a suffix K, M,
/// G or T (powers of 1024): `10737418240`, `"10G"`, `"512M"`.
mod byte_size {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    /// With the largest suffix that divides it (`10G`, as postern.toml(5)
    /// writes the default), else as a number of bytes.
    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        let suffix = [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')]
            .into_iter()
            .find(|(shift, _)| *n != 0 && n.trailing_zeros() >= *shift);
        match suffix {
            Some((shift, c)) => s.serialize_str(&format!("{}{c}", n >> shift)),
            None => s.serialize_u64(*n),
        }
    }

    struct Size;

    impl Visitor<'_> for Size {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a size like 10737418240, \"10G\" or \"512M\"")
        }

        fn visit_u64<E: Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }

        fn visit_i64<E: Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::custom(format!("size {n} is negative")))
        }

        fn visit_str<E: Error>(self, s: &str) -> Result<u64, E> {
            parse(s).ok_or_else(|| {
                E::custom(format!(
                    "{s:?} is not a size like 10737418240, \"10G\" or \"512M\""
                ))
            })
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Size)
    }

    /// `"10G"` -> 10 * 2^30; a bare number is bytes.
    pub fn parse(s: &str) -> Option<u64> {
        let s = s.trim();
        let (digits, shift) = match s.as_bytes().last()?.to_ascii_uppercase() {
            b'K' => (&s[..s.len() - 1], 10),
            b'M' => (&s[..s.len() - 1], 20),
            b'G' => (&s[..s.len() - 1], 30),
            b'T' => (&s[..s.len() - 1], 40),
            _ => (s, 0),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
    }
}

/// `directory_fsync` as its TOML value; [`DirectoryFsync`] itself is
/// only read.
mod directory_fsync {
    use super::DirectoryFsync;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &DirectoryFsync, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match d {
            DirectoryFsync::Auto => "auto",
            DirectoryFsync::Always => "always",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.message_size_limit, 52_428_800);
        assert_eq!(c.relay.port, 10026);
        assert_eq!(c.queue.maximal_queue_lifetime, Duration::from_secs(432_000));
        assert!(!c.log_addresses);
    }

    #[test]
    fn keys_override_defaults() {
        let c =
            parse("message_size_limit = 1000\n[relay]\nport = 2525\ntimeout = \"10s\"\n").unwrap();
        assert_eq!(c.message_size_limit, 1000);
        assert_eq!(c.relay.port, 2525);
        assert_eq!(c.relay.timeout, Duration::from_secs(10));
        assert_eq!(c.relay.host, "127.0.0.1");
    }

    #[test]
    fn maildb_quota() {
        let q = |text: &str| parse(&format!("[maildb]\nquota = {text}\n")).map(|c| c.maildb.quota);
        assert_eq!(parse("").unwrap().maildb.quota, 10_737_418_240);
        assert_eq!(q("\"10G\"").unwrap(), 10_737_418_240);
        assert_eq!(q("\"512m\"").unwrap(), 512 << 20);
        assert_eq!(q("\"1T\"").unwrap(), 1 << 40);
        assert_eq!(q("\"4096\"").unwrap(), 4096);
        assert_eq!(q("123456").unwrap(), 123_456);
        assert_eq!(q("0").unwrap(), 0);
        for bad in [
            "\"10GB\"",
            "\"G\"",
            "\"1.5G\"",
            "\"-1\"",
            "-1",
            "\"\"",
            "\"99999999999T\"",
        ] {
            let err = q(bad).unwrap_err().to_string();
            assert!(
                err.contains("quota") || err.contains("size"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn maildb_directory_fsync() {
        let d = |text: &str| {
            parse(&format!("[maildb]\ndirectory_fsync = {text}\n"))
                .map(|c| c.maildb.directory_fsync)
        };
        assert_eq!(
            parse("").unwrap().maildb.directory_fsync,
            DirectoryFsync::Auto
        );
        assert_eq!(d("\"auto\"").unwrap(), DirectoryFsync::Auto);
        assert_eq!(d("\"always\"").unwrap(), DirectoryFsync::Always);
        for bad in ["\"never\"", "\"Always\"", "true", "1", "\"\""] {
            let err = d(bad).unwrap_err().to_string();
            assert!(err.contains("line 2"), "{bad}: {err}");
        }
    }

    #[test]
    fn sync_teams_are_checked_at_load() {
        let c = parse(
            "[sync.teams]\n\"ubuntu.com\" = \"~ubuntumembers\"\n\"example.org\" = \"file:staff\"\n",
        )
        .unwrap();
        assert_eq!(c.sync.teams.len(), 2);
        for (bad, needle) in [
            ("\"ubuntu.com\" = \"ubuntumembers\"", "neither ~NAME"),
            ("\"ubuntu.com\" = \"~Bad Name\"", "a name is lower-case"),
            ("\"[1.2.3.4]\" = \"~team\"", "is not a domain"),
        ] {
            let e = parse(&format!("[sync.teams]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let e = parse("[sync]\nconcurrency = 0\n").unwrap_err().to_string();
        assert!(e.contains("sync.timeout, concurrency"), "{e}");
    }

    #[test]
    fn maildb_table() {
        let c = parse("").unwrap();
        assert_eq!(c.maildb.directory, Path::new("/var/lib/postern/mail"));
        assert_eq!(c.maildb.lock_timeout, Duration::from_secs(30));
        let c = parse("[maildb]\ndirectory = \"/srv/mail\"\nlock_timeout = \"2s\"\n").unwrap();
        assert_eq!(c.maildb.directory, Path::new("/srv/mail"));
        assert_eq!(c.maildb.lock_timeout, Duration::from_secs(2));
        assert!(parse("[maildb]\ndirectory = \"\"\n").is_err());
        assert_eq!(c.maildb.quota, 10 * 1024 * 1024 * 1024);
        assert!(parse("[maildb]\ndirectry = \"/x\"\n").is_err());
    }

    #[test]
    fn bouncer_table() {
        let c = parse("").unwrap();
        assert_eq!(c.bouncer.return_size_limit, 50_000);
        assert_eq!(c.bouncer.delay_warning_time, Duration::from_secs(14_400));
        let c =
            parse("[bouncer]\nreturn_size_limit = 1000\ndelay_warning_time = \"0s\"\n").unwrap();
        assert_eq!(c.bouncer.return_size_limit, 1000);
        assert!(c.bouncer.delay_warning_time.is_zero());
        assert!(parse("[bouncer]\nreturn_size_limit = 0\n").is_err());
        assert!(parse("[bouncer]\nfrom = \"x\"\n").is_err());
    }

    #[test]
    fn mta_sts_table() {
        let c = parse("").unwrap();
        assert!(c.mta_sts.enabled);
        assert_eq!(c.mta_sts.timeout, Duration::from_secs(10));
        assert_eq!(c.mta_sts.max_policy_size, 65_536);
        assert_eq!((c.mta_sts.ca_file, c.mta_sts.connect_to), (None, None));
        let c = parse(
            "[mta_sts]\nenabled = false\ntimeout = \"30s\"\nmax_policy_size = 1000\n\
             ca_file = \"/etc/postern/sts-ca.pem\"\nconnect_to = \"127.0.0.1:8443\"\n",
        )
        .unwrap();
        assert!(!c.mta_sts.enabled);
        assert_eq!(c.mta_sts.timeout, Duration::from_secs(30));
        assert_eq!(c.mta_sts.max_policy_size, 1000);
        assert_eq!(
            c.mta_sts.ca_file.as_deref(),
            Some(Path::new("/etc/postern/sts-ca.pem"))
        );
        assert_eq!(c.mta_sts.connect_to.as_deref(), Some("127.0.0.1:8443"));
        for (bad, want) in [
            ("timeout = \"0s\"", "mta_sts.timeout"),
            ("max_policy_size = 0", "mta_sts.max_policy_size"),
            ("connect_to = \"localhost:443\"", "mta_sts.connect_to"),
            ("connect_to = \"127.0.0.1\"", "mta_sts.connect_to"),
            ("verify = false", "verify"),
        ] {
            let err = parse(&format!("[mta_sts]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse("log_addresses = true\n\n[relay]\nprot = 25\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("prot"), "{err}");
        assert!(!err.contains('\n'));
        let err = parse("[spoool]\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("spoool"), "{err}");
    }

    #[test]
    fn malformed_values() {
        assert!(parse("message_size_limit = \"big\"").is_err());
        assert!(
            parse("[relay]\ntimeout = \"soon\"")
                .unwrap_err()
                .to_string()
                .contains("soon")
        );
        assert!(parse("log = \"file\"").is_err());
        assert!(parse("log = \"loud\"").is_err());
        assert!(parse("message_size_limit = 0").is_err());
        assert!(parse("[relay]\ntimeout = \"0s\"").is_err());
        assert!(parse("[relay]\ndeadline = \"0s\"").is_err());
        assert!(parse("[relay]\nhelo_name = \"mx\\r\\nMAIL FROM:<x@y>\"").is_err());
        assert!(parse("[relay]\nhelo_name = \"mx example\"").is_err());
        assert_eq!(
            parse("[relay]\nhelo_name = \"mx.example\"\ndeadline = \"15m\"")
                .unwrap()
                .relay
                .deadline,
            Duration::from_secs(900)
        );
        assert!(parse("hostname = \"a b\"").is_err());
        assert!(parse("[relay]\nport = 70000").is_err());
        assert!(
            parse("this is not toml")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }
}
