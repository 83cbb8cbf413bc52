//! Allow and deny lists of postern-scanner(1) (`[scanner] allow`, `deny`,
//! and the per-domain alias-store settings): which clients and senders
//! skip the sender checks, and which are refused.
//!
//! An entry is one of:
//!
//! | entry              | matches                                              |
//! |--------------------|------------------------------------------------------|
//! | `192.0.2.1`, `2001:db8::1` | the client's address                         |
//! | `192.0.2.0/24`, `2001:db8::/32` | the client's address in that network (host bits must be 0) |
//! | `mail.example.org` | the client's verified reverse DNS name, exactly      |
//! | `*.example.org`    | a sender domain or the client's reverse DNS name that ends in `.example.org` (not `example.org` itself); `*.tld` works too |
//! | `@example.org`     | an envelope sender at exactly that domain            |
//! | `user@example.org` | that envelope sender                                 |
//!
//! Domains and host names are compared in one form: lower case, IDNs as
//! A-labels (`xn--...`), without a trailing dot. A sender address is
//! compared whole and without regard to case, local part included
//! (RFC 5321 section 2.4 lets a server tell `User` from `user`; no real
//! one does, and a list that missed `User@` would surprise). IPv4 addresses
//! written as IPv6 (`::ffff:192.0.2.1`) are taken as IPv4, in entries and
//! of the client. The null sender matches no sender entry.
//!
//! [`List::matches`] says which kind of entry matched ([`Match`]), for the
//! log — never the entry or the address.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use crate::alias::domain_key;
use crate::mail::text;

/// Longest entry accepted (a domain is at most 253 octets, an address 254).
pub const MAX_ENTRY: usize = 512;
/// Most entries in one list.
pub const MAX_ENTRIES: usize = 10_000;
/// Characters of a bad entry quoted in an error.
const MAX_QUOTED: usize = 80;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ListError {
    #[error("list entry {entry:?}: {reason}")]
    Entry { entry: String, reason: &'static str },
    #[error("list has more than {MAX_ENTRIES} entries")]
    TooMany,
}

fn bad(entry: &str, reason: &'static str) -> ListError {
    ListError::Entry {
        entry: text::bounded(entry, MAX_QUOTED),
        reason,
    }
}

/// What the scanner knows of the client and the sender.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client<'a> {
    /// The client's address (Postfix's `client_address`).
    pub ip: Option<IpAddr>,
    /// Postfix's verified reverse DNS name (`client_name`); `unknown` or
    /// empty: none.
    pub hostname: Option<&'a str>,
    /// The envelope sender, with or without angle brackets; `None` or
    /// empty: the null sender.
    pub sender: Option<&'a str>,
}

/// The kind of entry that matched, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// An IP address entry.
    ClientAddress,
    /// A CIDR network entry.
    ClientNetwork,
    /// A host name entry, equal to the client's reverse DNS name.
    ClientName,
    /// A `*.domain` entry, matched by the client's reverse DNS name.
    ClientDomain,
    /// A `user@domain` entry.
    SenderAddress,
    /// An `@domain` entry.
    SenderDomain,
    /// A `*.domain` entry, matched by the sender's domain.
    SenderSubdomain,
}

impl Match {
    pub fn as_str(self) -> &'static str {
        match self {
            Match::ClientAddress => "client address",
            Match::ClientNetwork => "client network",
            Match::ClientName => "client name",
            Match::ClientDomain => "client domain",
            Match::SenderAddress => "sender address",
            Match::SenderDomain => "sender domain",
            Match::SenderSubdomain => "sender subdomain",
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IPv4 or IPv6 network, its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    V4(u32, u8),
    V6(u128, u8),
}

impl Network {
    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Network::V4(net, len), IpAddr::V4(a)) => u32::from(a) & mask32(len) == net,
            (Network::V6(net, len), IpAddr::V6(a)) => u128::from(a) & mask128(len) == net,
            _ => false,
        }
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// An allow or deny list, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct List {
    addresses: BTreeSet<IpAddr>,
    networks: Vec<Network>,
    hosts: BTreeSet<String>,
    /// `*.example.org` kept as `.example.org`.
    suffixes: Vec<String>,
    senders: BTreeSet<String>,
    sender_domains: BTreeSet<String>,
}

impl List {
    /// A list of the entries of the configuration file, one each.
    pub fn parse(entries: &[String]) -> Result<List, ListError> {
        if entries.len() > MAX_ENTRIES {
            return Err(ListError::TooMany);
        }
        let mut list = List::default();
        for entry in entries {
            list.add(entry)?;
        }
        Ok(list)
    }

    /// A list written in one string, entries separated by commas or white
    /// space (a per-domain setting of the alias store).
    pub fn parse_str(text: &str) -> Result<List, ListError> {
        let mut list = List::default();
        let entries = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty());
        for (n, entry) in entries.enumerate() {
            if n == MAX_ENTRIES {
                return Err(ListError::TooMany);
            }
            list.add(entry)?;
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
            && self.networks.is_empty()
            && self.hosts.is_empty()
            && self.suffixes.is_empty()
            && self.senders.is_empty()
            && self.sender_domains.is_empty()
    }

    fn add(&mut self, raw: &str) -> Result<(), ListError> {
        let entry = raw.trim();
        if entry.is_empty() {
            return Err(bad(raw, "is empty"));
        }
        if entry.len() > MAX_ENTRY {
            return Err(bad(raw, "is too long"));
        }
        if entry.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad(raw, "holds a space or control character"));
        }
        if let Some((addr, len)) = entry.split_once('/') {
            self.networks
                .push(network(addr, len).map_err(|r| bad(raw, r))?);
        } else if let Ok(ip) = entry.parse::<IpAddr>() {
            self.addresses.insert(ip.to_canonical());
        } else if let Some(domain) = entry.strip_prefix("*.") {
            let d = domain_name(domain).ok_or_else(|| bad(raw, "is not *. and a domain"))?;
            self.suffixes.push(format!(".{d}"));
        } else if let Some(domain) = entry.strip_prefix('@') {
            let d = domain_name(domain).ok_or_else(|| bad(raw, "is not @ and a domain"))?;
            self.sender_domains.insert(d);
        } else if entry.contains('@') {
            let a = sender_key(entry).ok_or_else(|| bad(raw, "is not an address user@domain"))?;
            self.senders.insert(a);
        } else {
            let d = domain_name(entry).ok_or_else(|| {
                bad(
                    raw,
                    "is not an IP address, network, host name, *.domain, @domain or address",
                )
            })?;
            self.hosts.insert(d);
        }
        Ok(())
    }

    /// The first kind of entry that matches, in this order: client
    /// address, network, name, domain; sender address, domain, subdomain.
    pub fn matches(&self, c: &Client<'_>) -> Option<Match> {
        if let Some(ip) = c.ip.map(|ip| ip.to_canonical()) {
            if self.addresses.contains(&ip) {
                return Some(Match::ClientAddress);
            }
            if self.networks.iter().any(|n| n.contains(ip)) {
                return Some(Match::ClientNetwork);
            }
        }
        let host = c
            .hostname
            .filter(|h| !h.is_empty() && !h.eq_ignore_ascii_case("unknown"))
            .and_then(domain_key);
        if let Some(host) = &host {
            if self.hosts.contains(host) {
                return Some(Match::ClientName);
            }
            if self.has_suffix_of(host) {
                return Some(Match::ClientDomain);
            }
        }
        let sender = c.sender.and_then(sender_key)?;
        if self.senders.contains(&sender) {
            return Some(Match::SenderAddress);
        }
        let (_, domain) = sender.rsplit_once('@')?;
        if self.sender_domains.contains(domain) {
            return Some(Match::SenderDomain);
        }
        self.has_suffix_of(domain).then_some(Match::SenderSubdomain)
    }

    fn has_suffix_of(&self, name: &str) -> bool {
        self.suffixes.iter().any(|s| name.ends_with(s.as_str()))
    }
}

/// `ADDR/LEN` as a network; host bits set are an error (the entry would
/// not mean what it says).
fn network(addr: &str, len: &str) -> Result<Network, &'static str> {
    let ip: IpAddr = addr.parse().map_err(|_| "is not an IP address/length")?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err("needs a prefix length after / (at most 32 for IPv4, 128 for IPv6)");
    }
    let len: u8 = len
        .parse()
        .map_err(|_| "has a prefix length out of range")?;
    let net = match ip {
        IpAddr::V4(a) if len <= 32 => Network::V4(u32::from(a), len),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) if (96..=128).contains(&len) => Network::V4(u32::from(v4), len - 96),
            _ if len <= 128 => Network::V6(u128::from(a), len),
            _ => return Err("has a prefix length out of range"),
        },
        IpAddr::V4(_) => return Err("has a prefix length out of range"),
    };
    let host_bits = match net {
        Network::V4(a, l) => a & !mask32(l) != 0,
        Network::V6(a, l) => a & !mask128(l) != 0,
    };
    if host_bits {
        return Err("has host bits set (write the network's first address)");
    }
    Ok(net)
}

/// A host or domain name in the form entries are compared in (lower
/// case, A-labels, no trailing dot), or `None` when it is not one:
/// labels of letters, digits and inner hyphens, at most 63 octets each,
/// 253 in all, the last not all digits (that is an IP address cut short).
pub fn domain_name(text: &str) -> Option<String> {
    if text.is_empty() || text.len() > MAX_ENTRY {
        return None;
    }
    let d = domain_key(text)?;
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let last_numeric = d
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    (labels_ok && !last_numeric && d.len() <= 253).then_some(d)
}

/// A sender address as compared: no angle brackets, the local part lower
/// case, the domain as [`domain_name`]. `None` for the null sender and
/// for what is not `local@domain`.
fn sender_key(sender: &str) -> Option<String> {
    let s = sender.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s);
    let (local, domain) = s.rsplit_once('@')?;
    if local.is_empty() || local.chars().any(char::is_control) {
        return None;
    }
    Some(format!("{}@{}", local.to_lowercase(), domain_name(domain)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> List {
        let owned: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        List::parse(&owned).unwrap()
    }

    fn ip(a: &str) -> Client<'static> {
        Client {
            ip: Some(a.parse().unwrap()),
            ..Client::default()
        }
    }

    fn host(h: &'static str) -> Client<'static> {
        Client {
            hostname: Some(h),
            ..Client::default()
        }
    }

    fn sender(s: &'static str) -> Client<'static> {
        Client {
            sender: Some(s),
            ..Client::default()
        }
    }

    fn error(entry: &str) -> String {
        match List::parse(&[entry.to_owned()]) {
            Err(e) => e.to_string(),
            Ok(l) => panic!("{entry:?} parsed: {l:?}"),
        }
    }

    #[test]
    fn addresses_and_networks_match_the_client() {
        let l = list(&[
            "192.0.2.1",
            "2001:db8::1",
            "198.51.100.0/24",
            "2001:db8:1::/48",
        ]);
        assert_eq!(l.matches(&ip("192.0.2.1")), Some(Match::ClientAddress));
        assert_eq!(l.matches(&ip("192.0.2.2")), None);
        assert_eq!(l.matches(&ip("2001:db8::1")), Some(Match::ClientAddress));
        assert_eq!(
            l.matches(&ip("::ffff:192.0.2.1")),
            Some(Match::ClientAddress)
        );
        assert_eq!(l.matches(&ip("198.51.100.255")), Some(Match::ClientNetwork));
        assert_eq!(l.matches(&ip("198.51.101.0")), None);
        assert_eq!(
            l.matches(&ip("2001:db8:1:ffff::9")),
            Some(Match::ClientNetwork)
        );
        assert_eq!(l.matches(&ip("2001:db8:2::9")), None);
        // An IPv4 network never holds an IPv6 client, nor the reverse.
        assert_eq!(list(&["0.0.0.0/0"]).matches(&ip("2001:db8::1")), None);
        assert_eq!(list(&["::/0"]).matches(&ip("192.0.2.1")), None);
        assert_eq!(
            list(&["0.0.0.0/0"]).matches(&ip("192.0.2.1")),
            Some(Match::ClientNetwork)
        );
        assert_eq!(
            list(&["192.0.2.7/32"]).matches(&ip("192.0.2.7")),
            Some(Match::ClientNetwork)
        );
        assert_eq!(
            list(&["::ffff:192.0.2.0/120"]).matches(&ip("192.0.2.9")),
            Some(Match::ClientNetwork)
        );
    }

    #[test]
    fn host_names_match_the_reverse_name_exactly() {
        let l = list(&["mail.example.org", "MX.BÜCHER.example."]);
        assert_eq!(
            l.matches(&host("mail.example.org")),
            Some(Match::ClientName)
        );
        assert_eq!(
            l.matches(&host("MAIL.Example.ORG.")),
            Some(Match::ClientName)
        );
        assert_eq!(
            l.matches(&host("mx.xn--bcher-kva.example")),
            Some(Match::ClientName)
        );
        assert_eq!(l.matches(&host("a.mail.example.org")), None);
        assert_eq!(l.matches(&host("example.org")), None);
        // A host name entry is not a sender domain.
        assert_eq!(l.matches(&sender("a@mail.example.org")), None);
        assert_eq!(list(&["unknown"]).matches(&host("unknown")), None);
        assert_eq!(list(&["unknown"]).matches(&host("")), None);
    }

    #[test]
    fn wildcards_match_below_the_domain_not_the_domain() {
        let l = list(&["*.example.org"]);
        assert_eq!(
            l.matches(&host("mx1.example.org")),
            Some(Match::ClientDomain)
        );
        assert_eq!(
            l.matches(&sender("a@lists.example.org")),
            Some(Match::SenderSubdomain)
        );
        assert_eq!(l.matches(&host("example.org")), None);
        assert_eq!(l.matches(&sender("a@example.org")), None);
        assert_eq!(l.matches(&host("badexample.org")), None);
        assert_eq!(l.matches(&sender("a@badexample.org")), None);
        let tld = list(&["*.test"]);
        assert_eq!(
            tld.matches(&sender("<x@a.b.TEST>")),
            Some(Match::SenderSubdomain)
        );
        assert_eq!(tld.matches(&sender("x@test")), None);
    }

    #[test]
    fn senders_match_whole_and_without_regard_to_case() {
        let l = list(&["Alice@Example.org", "@lists.example.net"]);
        assert_eq!(
            l.matches(&sender("alice@example.org")),
            Some(Match::SenderAddress)
        );
        assert_eq!(
            l.matches(&sender("<ALICE@EXAMPLE.ORG>")),
            Some(Match::SenderAddress)
        );
        assert_eq!(l.matches(&sender("bob@example.org")), None);
        assert_eq!(l.matches(&sender("alice@sub.example.org")), None);
        assert_eq!(l.matches(&sender("xalice@example.org")), None);
        assert_eq!(
            l.matches(&sender("any@Lists.Example.NET")),
            Some(Match::SenderDomain)
        );
        assert_eq!(l.matches(&sender("any@x.lists.example.net")), None);
        // The null sender and nonsense match no sender entry.
        assert_eq!(l.matches(&sender("")), None);
        assert_eq!(l.matches(&sender("<>")), None);
        assert_eq!(l.matches(&Client::default()), None);
        assert_eq!(l.matches(&sender("alice")), None);
        assert_eq!(l.matches(&sender("@example.org")), None);
    }

    #[test]
    fn the_client_is_checked_before_the_sender() {
        let l = list(&["192.0.2.0/24", "@example.org"]);
        let c = Client {
            ip: Some("192.0.2.1".parse().unwrap()),
            hostname: None,
            sender: Some("a@example.org"),
        };
        assert_eq!(l.matches(&c), Some(Match::ClientNetwork));
        let c = Client {
            ip: Some("203.0.113.1".parse().unwrap()),
            ..c
        };
        assert_eq!(l.matches(&c), Some(Match::SenderDomain));
    }

    #[test]
    fn a_string_list_splits_on_commas_and_spaces() {
        let l =
            List::parse_str(" 192.0.2.1, @example.org\n*.example.net,,\tmx.example.com ").unwrap();
        assert_eq!(l.matches(&ip("192.0.2.1")), Some(Match::ClientAddress));
        assert_eq!(
            l.matches(&sender("a@example.org")),
            Some(Match::SenderDomain)
        );
        assert_eq!(l.matches(&host("a.example.net")), Some(Match::ClientDomain));
        assert_eq!(l.matches(&host("mx.example.com")), Some(Match::ClientName));
        assert!(List::parse_str(" , ").unwrap().is_empty());
        assert!(!l.is_empty());
        assert!(List::parse(&[]).unwrap().is_empty());
        let e = List::parse_str("192.0.2.1, 192.0.2.0/8").unwrap_err();
        assert!(e.to_string().contains("192.0.2.0/8"), "{e}");
    }

    #[test]
    fn malformed_entries_are_errors_naming_them() {
        for (entry, says) in [
            ("", "empty"),
            ("   ", "empty"),
            ("192.0.2.1/24", "host bits"),
            ("2001:db8::1/32", "host bits"),
            ("192.0.2.0/33", "out of range"),
            ("2001:db8::/129", "out of range"),
            ("192.0.2.0/", "prefix length"),
            ("192.0.2.0/-1", "prefix length"),
            ("192.0.2.0/24/8", "prefix length"),
            ("192.0.2.0/0024", "prefix length"),
            ("mail.example.org/24", "IP address"),
            ("192.0.2.256", "not an IP"),
            ("192.0.2", "not an IP"),
            ("@", "@ and a domain"),
            ("@@example.org", "@ and a domain"),
            ("*.", "*. and a domain"),
            ("*", "not an IP"),
            ("*.*.example.org", "*. and a domain"),
            ("mail.*.example.org", "not an IP"),
            ("user@", "not an address"),
            ("@example..org", "@ and a domain"),
            ("-bad.example", "not an IP"),
            ("a b", "space"),
            ("a\u{0}b", "control"),
            ("under_score.example", "not an IP"),
        ] {
            let e = error(entry);
            assert!(e.contains(says), "{entry:?}: {e}");
            if !entry.trim().is_empty() {
                assert!(
                    e.contains(&format!("{:?}", text::bounded(entry, 80))),
                    "{e}"
                );
            }
        }
        let huge = "a".repeat(MAX_ENTRY + 1);
        let e = error(&huge);
        assert!(e.contains("too long") && e.len() < 200, "{e}");
        let label = format!("{}.example", "a".repeat(64));
        assert!(error(&label).contains("not an IP"));
        let too_many = vec!["192.0.2.1".to_owned(); MAX_ENTRIES + 1];
        assert_eq!(List::parse(&too_many), Err(ListError::TooMany));
        let too_many = "192.0.2.1 ".repeat(MAX_ENTRIES + 1);
        assert_eq!(List::parse_str(&too_many), Err(ListError::TooMany));
    }

    #[test]
    fn match_kinds_name_no_address() {
        for m in [
            Match::ClientAddress,
            Match::ClientNetwork,
            Match::ClientName,
            Match::ClientDomain,
            Match::SenderAddress,
            Match::SenderDomain,
            Match::SenderSubdomain,
        ] {
            let s = m.to_string();
            assert!(s.is_ascii() && !s.contains('@') && !s.contains('.'), "{s}");
        }
    }
}
