//! A small synchronous DNS client for every postern tool: TXT records
//! (alias records, verification tokens) and MX records, over
//! hickory-resolver driven by a current-thread tokio runtime.
//!
//! Standards: RFC 1035 (messages; a TXT record is one or more
//! `<character-string>`s, section 3.3.14, which we join as RFC 7208
//! section 3.3 does for SPF), RFC 2308 (NXDOMAIN and NODATA are answers,
//! with the SOA minimum as their TTL), RFC 7505 (a "null MX" `0 .` says
//! the domain takes no mail).
//!
//! What counts as what:
//! - an answer, possibly empty: records found, NXDOMAIN, NODATA;
//! - a [`DnsError`] (4.4.3, try again later): SERVFAIL, REFUSED and every
//!   other error code, no answer within `timeout × attempts`, an answer
//!   that cannot be decoded, a truncated answer that TCP could not fetch
//!   whole, a network error.
//!
//! There is no cache here: hickory's own cache is switched off (size 0)
//! and callers keep their own (`alias::records` caches parsed alias
//! records per domain). Two caches would stack their TTLs — an answer
//! could outlive its TTL in ours by as long again as it sat in hickory's —
//! and hickory's would keep negative answers on its own terms; with one
//! cache, `dns.max_cache_ttl` means what it says.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use crate::config::DnsConfig;
use crate::exit::{Failure, Sysexit, ToFailure};
use crate::mail::status;
use crate::mail::text;

/// The records of one TXT lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// One string per TXT record, its character-strings joined without a
    /// separator, in the order of the answer (servers may rotate it).
    /// Bytes that are not UTF-8 become U+FFFD, so a reader can refuse
    /// them without ever seeing a panic or a guessed character.
    pub records: Vec<String>,
    /// How long the answer may be kept: the smallest TTL of its records,
    /// or for an empty answer the negative TTL of RFC 2308 (0 when the
    /// server sent no SOA).
    pub ttl: Duration,
}

/// One mail exchanger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    pub preference: u16,
    /// The host name, lower-cased, without the trailing dot.
    pub exchange: String,
}

/// The records of one MX lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mx {
    /// Sorted by preference; a null MX (`0 .`, RFC 7505) is left out.
    pub hosts: Vec<MxHost>,
    /// True when the domain published a null MX: it takes no mail.
    pub null: bool,
    /// As [`Answer::ttl`].
    pub ttl: Duration,
}

impl Mx {
    /// True when the domain names at least one real mail exchanger.
    pub fn accepts_mail(&self) -> bool {
        !self.hosts.is_empty()
    }
}

/// Why a lookup did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsFailure {
    /// Nothing usable within `timeout × attempts`.
    Timeout(Duration),
    /// The server answered SERVFAIL.
    ServerFailure,
    /// The server answered REFUSED.
    Refused,
    /// Another error code (FORMERR, NOTIMP, ...).
    ResponseCode(String),
    /// The answer was truncated and TCP could not fetch it whole.
    Truncated,
    /// The answer could not be decoded.
    Malformed,
    /// No connection to any name server, or a socket error.
    Network(String),
    /// The name asked for is not a domain name.
    BadName,
}

impl std::fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsFailure::Timeout(after) => {
                write!(f, "no answer within {}", humantime::format_duration(*after))
            }
            DnsFailure::ServerFailure => f.write_str("the name server answered SERVFAIL"),
            DnsFailure::Refused => f.write_str("the name server refused the query (REFUSED)"),
            DnsFailure::ResponseCode(code) => write!(f, "the name server answered {code}"),
            DnsFailure::Truncated => {
                f.write_str("the answer was truncated and could not be fetched over TCP")
            }
            DnsFailure::Malformed => f.write_str("the answer could not be decoded"),
            DnsFailure::Network(e) => write!(f, "{e}"),
            DnsFailure::BadName => f.write_str("not a domain name"),
        }
    }
}

/// A lookup that failed: temporary (4.4.3), never a reason to bounce.
/// One line naming the query and the reason (never record data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DNS {kind} lookup for {name} failed: {reason}")]
pub struct DnsError {
    /// The name asked for, as given (a domain, not an address).
    pub name: String,
    /// `TXT` or `MX`.
    pub kind: &'static str,
    pub reason: DnsFailure,
}

impl DnsError {
    pub fn status(&self) -> status::Status {
        status::DNS_FAILURE
    }
}

impl ToFailure for DnsError {
    fn to_failure(&self) -> Failure {
        Failure::new(Sysexit::TempFail, status::DNS_FAILURE, self.to_string())
    }
}

/// Why a client could not be set up: a configuration problem (78).
#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    #[error("dns.nameservers: {0:?} is not IP or IP:PORT")]
    Nameserver(String),
    #[error("dns.nameservers is empty and /etc/resolv.conf could not be read: {0}")]
    System(String),
    #[error("dns.nameservers is empty and /etc/resolv.conf names no name server")]
    NoServers,
    #[error("dns.timeout and dns.attempts must be greater than 0")]
    Limits,
    #[error("cannot start the DNS runtime: {0}")]
    Runtime(std::io::Error),
}

impl ToFailure for DnsSetupError {
    fn to_failure(&self) -> Failure {
        match self {
            DnsSetupError::Runtime(_) => Failure::tempfail(self.to_string()),
            _ => Failure::config(self.to_string()),
        }
    }
}

/// The lookups postern makes, behind a trait so that what uses them (the
/// alias record cache) is tested without a server.
pub trait DnsLookup {
    /// The TXT records at `name`.
    fn txt(&self, name: &str) -> Result<Answer, DnsError>;
    /// The MX records of `domain`.
    fn mx(&self, domain: &str) -> Result<Mx, DnsError>;

    /// True when `domain` has an MX record that is not a null MX.
    fn has_mx(&self, domain: &str) -> Result<bool, DnsError> {
        Ok(self.mx(domain)?.accepts_mail())
    }
}

/// Address lookups (A and AAAA), for mail exchangers.
pub trait AddressLookup {
    /// The IPv4 then the IPv6 addresses of `host`; empty when the name
    /// does not exist or has none.
    fn addresses(&self, host: &str) -> Result<Vec<std::net::IpAddr>, DnsError>;
}

impl AddressLookup for DnsClient {
    fn addresses(&self, host: &str) -> Result<Vec<std::net::IpAddr>, DnsError> {
        let mut out = Vec::new();
        for kind in [RecordType::A, RecordType::AAAA] {
            let (records, _) = self.lookup(host, kind)?;
            out.extend(records.iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(std::net::IpAddr::V6(a.0)),
                _ => None,
            }));
        }
        Ok(out)
    }
}

/// A synchronous DNS client: one per process, kept open across jobs.
pub struct DnsClient {
    // Dropped before the runtime: the resolver's background tasks belong
    // to it.
    resolver: TokioResolver,
    runtime: tokio::runtime::Runtime,
    /// `timeout × attempts`: no lookup takes longer, whatever hickory's
    /// retries, server rotation and TCP fallback add up to.
    budget: Duration,
}

impl std::fmt::Debug for DnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsClient")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// `IP` (port 53) or `IP:PORT`; an IPv6 address with a port is written
/// `[IP]:PORT`.
pub fn parse_nameserver(text: &str) -> Result<SocketAddr, DnsSetupError> {
    let t = text.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    t.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| DnsSetupError::Nameserver(text.to_owned()))
}

/// The resolver every postern lookup goes through, built in this one
/// place: the servers in `config` (or /etc/resolv.conf's when none are
/// listed), its timeout and attempts, no cache (see the module comment)
/// and no hosts file. [`DnsClient`] and the scanner's sender checks
/// (`scanner::sender`, through mail-auth) both use it.
pub(crate) fn build_resolver(config: &DnsConfig) -> Result<TokioResolver, DnsSetupError> {
    if config.timeout.is_zero() || config.attempts == 0 {
        return Err(DnsSetupError::Limits);
    }
    let servers: Vec<SocketAddr> = if config.nameservers.is_empty() {
        let (system, _) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| DnsSetupError::System(text::bounded(&e.to_string(), 200)))?;
        // resolv.conf gives addresses; hickory's connections carry the port.
        system
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns.connections.first().map_or(53, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .collect()
    } else {
        config
            .nameservers
            .iter()
            .map(|s| parse_nameserver(s))
            .collect::<Result<_, _>>()?
    };
    if servers.is_empty() {
        return Err(DnsSetupError::NoServers);
    }
    let name_servers = servers
        .iter()
        .map(|addr| {
            // UDP first; TCP for answers too big for a datagram.
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect();

    let mut options = ResolverOpts::default();
    options.timeout = config.timeout;
    // hickory's `attempts` counts retries after the first query; ours
    // counts queries.
    options.attempts = config.attempts - 1;
    // Ours is the only cache (see the module comment); a moka cache of
    // capacity 0 stores nothing.
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    Resolver::builder_with_config(
        ResolverConfig::from_name_servers(name_servers),
        TokioRuntimeProvider::default(),
    )
    .with_options(options)
    .build()
    .map_err(|e| DnsSetupError::System(text::bounded(&e.to_string(), 200)))
}

impl DnsClient {
    /// A client for the servers in `config` (or /etc/resolv.conf's when
    /// none are listed), with its timeout and attempts.
    pub fn new(config: &DnsConfig) -> Result<DnsClient, DnsSetupError> {
        let resolver = build_resolver(config)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(DnsSetupError::Runtime)?;
        let budget = config
            .timeout
            .saturating_mul(u32::try_from(config.attempts).unwrap_or(u32::MAX));
        Ok(DnsClient {
            resolver,
            runtime,
            budget,
        })
    }

    /// The longest any one lookup may take: `timeout × attempts`.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// One query of `kind` for `name`: the answer records (empty for
    /// NXDOMAIN and NODATA) and the TTL to keep them for.
    fn lookup(
        &self,
        name: &str,
        kind: RecordType,
    ) -> Result<(Vec<hickory_resolver::proto::rr::Record>, Duration), DnsError> {
        let fail = |reason| DnsError {
            name: text::bounded(name, 255),
            kind: match kind {
                RecordType::MX => "MX",
                RecordType::A => "A",
                RecordType::AAAA => "AAAA",
                _ => "TXT",
            },
            reason,
        };
        let fqdn = fqdn(name).ok_or_else(|| fail(DnsFailure::BadName))?;
        let result = self.runtime.block_on(async {
            tokio::time::timeout(self.budget, self.resolver.lookup(fqdn, kind)).await
        });
        match result {
            Err(_elapsed) => Err(fail(DnsFailure::Timeout(self.budget))),
            Ok(Ok(lookup)) => {
                let records = lookup.answers().to_vec();
                let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
                Ok((records, Duration::from_secs(u64::from(ttl))))
            }
            Ok(Err(NetError::Dns(HickoryDnsError::NoRecordsFound(none)))) => {
                // NXDOMAIN or NODATA: an answer, kept for the SOA minimum.
                let ttl = none.negative_ttl.unwrap_or(0);
                Ok((Vec::new(), Duration::from_secs(u64::from(ttl))))
            }
            Ok(Err(e)) => Err(fail(failure(&e, self.budget))),
        }
    }
}

impl DnsLookup for DnsClient {
    fn txt(&self, name: &str) -> Result<Answer, DnsError> {
        let (records, ttl) = self.lookup(name, RecordType::TXT)?;
        let records = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(join_strings(&txt.txt_data)),
                _ => None, // a CNAME on the way
            })
            .collect();
        Ok(Answer { records, ttl })
    }

    fn mx(&self, domain: &str) -> Result<Mx, DnsError> {
        let (records, ttl) = self.lookup(domain, RecordType::MX)?;
        let mut mx = Mx {
            ttl,
            ..Mx::default()
        };
        for r in &records {
            if let RData::MX(m) = &r.data {
                if m.exchange.is_root() {
                    mx.null = true;
                } else {
                    let host = m.exchange.to_ascii().to_ascii_lowercase();
                    mx.hosts.push(MxHost {
                        preference: m.preference,
                        exchange: host.trim_end_matches('.').to_owned(),
                    });
                }
            }
        }
        mx.hosts.sort_by_key(|h| h.preference);
        Ok(mx)
    }
}

/// `name` as a fully qualified name, so no search domain is ever added.
fn fqdn(name: &str) -> Option<Name> {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return None;
    }
    let mut n = Name::from_utf8(trimmed).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// The character-strings of one TXT record joined; bytes that are not
/// UTF-8 become U+FFFD.
pub fn join_strings(strings: &[Box<[u8]>]) -> String {
    let bytes: Vec<u8> = strings.iter().flat_map(|s| s.iter().copied()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What a hickory error means for us.
fn failure(e: &NetError, budget: Duration) -> DnsFailure {
    match e {
        NetError::Timeout => DnsFailure::Timeout(budget),
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::ServFail)) => {
            DnsFailure::ServerFailure
        }
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::Refused)) => DnsFailure::Refused,
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => {
            DnsFailure::ResponseCode(code.to_string())
        }
        NetError::Truncated => DnsFailure::Truncated,
        NetError::Proto(_) | NetError::QueryCaseMismatch | NetError::ForeignClassRecord { .. } => {
            DnsFailure::Malformed
        }
        NetError::NoConnections => DnsFailure::Network("no connection to any name server".into()),
        NetError::Io(io) => DnsFailure::Network(text::bounded(&io.to_string(), 200)),
        other => DnsFailure::Network(text::bounded(&other.to_string(), 200)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_with_and_without_port() {
        assert_eq!(
            parse_nameserver("127.0.0.1").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("::1").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        for bad in ["", "localhost", "127.0.0.1:", "127.0.0.1:99999", "1.2.3"] {
            let e = parse_nameserver(bad).unwrap_err();
            assert!(e.to_string().starts_with("dns.nameservers:"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bad_nameserver_is_a_config_failure() {
        let config = DnsConfig {
            nameservers: vec!["dns.example".into()],
            ..DnsConfig::default()
        };
        let e = DnsClient::new(&config).unwrap_err();
        assert_eq!(e.to_failure().exit, Sysexit::Config);
    }

    #[test]
    fn strings_are_joined_and_bad_bytes_replaced() {
        let strings: Vec<Box<[u8]>> = vec![
            b"forward-email=a:b@".to_vec().into(),
            b"example.org".to_vec().into(),
        ];
        assert_eq!(join_strings(&strings), "forward-email=a:b@example.org");
        let bad: Vec<Box<[u8]>> = vec![b"x\xff".to_vec().into(), b"\xc3".to_vec().into()];
        assert_eq!(join_strings(&bad), "x\u{fffd}\u{fffd}");
        assert_eq!(join_strings(&[]), "");
    }

    #[test]
    fn names_are_asked_fully_qualified() {
        assert_eq!(fqdn("Example.ORG").unwrap().to_ascii(), "example.org.");
        assert!(fqdn("example.org.").unwrap().is_fqdn());
        assert_eq!(
            fqdn("bücher.example").unwrap().to_ascii(),
            "xn--bcher-kva.example."
        );
        assert!(fqdn("").is_none());
        assert!(fqdn(".").is_none());
        assert!(fqdn(&"a".repeat(300)).is_none());
    }

    #[test]
    fn errors_are_one_line_with_4_4_3() {
        let e = DnsError {
            name: "example.org".into(),
            kind: "TXT",
            reason: DnsFailure::ServerFailure,
        };
        let f = e.to_failure();
        assert_eq!(f.exit, Sysexit::TempFail);
        assert_eq!(
            f.to_string(),
            "4.4.3 DNS TXT lookup for example.org failed: the name server answered SERVFAIL"
        );
        let t = DnsError {
            reason: DnsFailure::Timeout(Duration::from_millis(1500)),
            ..e
        };
        assert_eq!(
            t.to_string(),
            "DNS TXT lookup for example.org failed: no answer within 1s 500ms"
        );
    }
}
