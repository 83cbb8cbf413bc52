//! DNS blocklists of the client address (issue 12, rule 5), RFC 5782: the
//! address is asked as an A record under each zone — IPv4 as its octets
//! reversed (`192.0.2.99` → `99.2.0.192.ZONE`), IPv6 as its 32 nibbles
//! reversed (section 2.4) — over postern's own DNS client.
//!
//! What an answer means:
//! - NXDOMAIN (or NODATA): not listed;
//! - an address in 127.0.0.0/8: listed, unless the zone is configured
//!   with the answers that count (`ZONE=127.0.0.2,127.0.0.4`) and this
//!   is not one of them (then it is ignored);
//! - an address in 127.255.255.0/24: an error, never a listing — Spamhaus
//!   answers these when it refuses a query (through a public resolver,
//!   over the limit, a wrong key);
//! - an address outside 127.0.0.0/8: an error, never a listing (RFC 5782
//!   section 2.1: a zone answering that is broken, or hijacked — some
//!   resolvers turn NXDOMAIN into an advertising address). When any answer
//!   of a zone is an error, none of its answers counts;
//! - a failed lookup (timeout, SERVFAIL, ...): an error for that zone,
//!   never a listing.
//!
//! Loopback, private (RFC 1918), shared (100.64.0.0/10), link-local,
//! unique-local (fc00::/7) and unspecified client addresses are not looked
//! up: no list has them, and asking would tell the lists about our
//! network. An IPv4-mapped IPv6 address is looked up as its IPv4 address.
//!
//! Zones are asked one after the other; each lookup is bounded by the DNS
//! client's own budget (`dns.timeout × dns.attempts`). Errors name the
//! zone and the reason, never the client address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dns::AddressLookup;

/// A `scanner.dnsbl_zones` entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scanner.dnsbl_zones: {entry:?}: {problem}")]
pub struct DnsblError {
    /// The entry as configured.
    pub entry: String,
    pub problem: String,
}

/// One blocklist zone and the answers that count on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsblZone {
    /// The zone, lower-cased, without a final dot.
    pub name: String,
    /// Only these answers count; empty: every answer in 127.0.0.0/8.
    pub answers: Vec<Ipv4Addr>,
}

/// The configured blocklists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dnsbl {
    zones: Vec<DnsblZone>,
}

/// The client address is on a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub zone: String,
    /// The list's answer (its code: what it was listed for).
    pub answer: Ipv4Addr,
}

/// What the lists said about one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsblOutcome {
    pub listed: Vec<Listing>,
    /// Zones that gave no usable answer: (zone, reason).
    pub errors: Vec<(String, String)>,
}

/// The longest reversed address a zone is put after (IPv6: 32 nibbles and
/// their dots), so a zone leaves room for it in a 253-octet name.
const LONGEST_PREFIX: usize = 64;

impl Dnsbl {
    /// The zones of `scanner.dnsbl_zones`: `ZONE` or
    /// `ZONE=127.0.0.2,127.0.0.4`.
    pub fn parse(zones: &[String]) -> Result<Dnsbl, DnsblError> {
        let zones = zones
            .iter()
            .map(|entry| parse_zone(entry))
            .collect::<Result<_, _>>()?;
        Ok(Dnsbl { zones })
    }

    pub fn zones(&self) -> &[DnsblZone] {
        &self.zones
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Asks every zone about `ip` (nothing for a non-public address).
    pub fn check(&self, dns: &impl AddressLookup, ip: IpAddr) -> DnsblOutcome {
        let mut outcome = DnsblOutcome::default();
        let Some(reversed) = query_prefix(ip) else {
            return outcome;
        };
        for zone in &self.zones {
            let name = format!("{reversed}.{}", zone.name);
            match dns.addresses(&name) {
                Ok(answers) => match classify(&zone.answers, &answers) {
                    Verdict::Listed(codes) => {
                        outcome
                            .listed
                            .extend(codes.into_iter().map(|answer| Listing {
                                zone: zone.name.clone(),
                                answer,
                            }));
                    }
                    Verdict::NotListed => {}
                    Verdict::Error(reason) => outcome.errors.push((zone.name.clone(), reason)),
                },
                // The reason only (the error's name holds the address),
                // and the address kept out of the resolver's own words.
                Err(e) => outcome.errors.push((
                    zone.name.clone(),
                    e.reason.to_string().replace(&reversed, "CLIENT"),
                )),
            }
        }
        outcome
    }
}

fn parse_zone(entry: &str) -> Result<DnsblZone, DnsblError> {
    let fail = |problem: &str| DnsblError {
        entry: entry.to_owned(),
        problem: problem.to_owned(),
    };
    let (name, answers) = match entry.split_once('=') {
        Some((name, answers)) => (name.trim(), Some(answers)),
        None => (entry.trim(), None),
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() {
        return Err(fail("no zone name"));
    }
    if name.len() + 1 + LONGEST_PREFIX > 253 {
        return Err(fail(
            "the zone name is too long to put an address before it",
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split('.').all(label_ok) {
        return Err(fail(
            "not a zone name (labels of letters, digits, '-' and '_', separated by dots)",
        ));
    }
    let mut wanted = Vec::new();
    if let Some(list) = answers {
        for code in list.split(',') {
            let code = code.trim();
            let addr: Ipv4Addr = code.parse().map_err(|_| {
                fail(
                    "answers must be IPv4 addresses separated by commas (ZONE=127.0.0.2,127.0.0.4)",
                )
            })?;
            if !addr.is_loopback() || is_refusal(addr) {
                return Err(fail(
                    "answers that count must be in 127.0.0.0/8 and outside 127.255.255.0/24",
                ));
            }
            wanted.push(addr);
        }
    }
    Ok(DnsblZone {
        name,
        answers: wanted,
    })
}

/// What a zone's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Listed(Vec<Ipv4Addr>),
    NotListed,
    Error(String),
}

/// Decides on a zone's answer records (see the module comment). IPv6
/// answers (the client asks AAAA too) are not a list's and are ignored.
fn classify(wanted: &[Ipv4Addr], answers: &[IpAddr]) -> Verdict {
    let mut listed = Vec::new();
    for answer in answers {
        let IpAddr::V4(a) = *answer else { continue };
        if is_refusal(a) {
            return Verdict::Error(format!(
                "the list answered {a}: it refused the query (over its limit, or asked \
                 through a public resolver)"
            ));
        }
        if !a.is_loopback() {
            return Verdict::Error(format!(
                "the list answered {a}, outside 127.0.0.0/8: the zone is broken or hijacked"
            ));
        }
        if (wanted.is_empty() || wanted.contains(&a)) && !listed.contains(&a) {
            listed.push(a);
        }
    }
    if listed.is_empty() {
        Verdict::NotListed
    } else {
        Verdict::Listed(listed)
    }
}

/// 127.255.255.0/24: Spamhaus's error answers.
fn is_refusal(a: Ipv4Addr) -> bool {
    let [x, y, z, _] = a.octets();
    (x, y, z) == (127, 255, 255)
}

/// The reversed address to put before a zone, or `None` for an address
/// that is not looked up.
fn query_prefix(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => reversed_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => reversed_v4(v4),
            None => reversed_v6(v6),
        },
    }
}

fn reversed_v4(ip: Ipv4Addr) -> Option<String> {
    let [a, b, c, d] = ip.octets();
    let shared = a == 100 && (b & 0xc0) == 64; // 100.64.0.0/10, RFC 6598
    if ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || shared
    {
        return None;
    }
    Some(format!("{d}.{c}.{b}.{a}"))
}

fn reversed_v6(ip: Ipv6Addr) -> Option<String> {
    let first = ip.segments()[0];
    let unique_local = (first & 0xfe00) == 0xfc00;
    let link_local = (first & 0xffc0) == 0xfe80;
    if ip.is_loopback() || ip.is_unspecified() || unique_local || link_local {
        return None;
    }
    let mut out = String::with_capacity(LONGEST_PREFIX);
    for byte in ip.octets().iter().rev() {
        for nibble in [byte & 0x0f, byte >> 4] {
            if !out.is_empty() {
                out.push('.');
            }
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{DnsError, DnsFailure};
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::time::Duration;

    fn zones(list: &[&str]) -> Result<Dnsbl, DnsblError> {
        Dnsbl::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn zones_are_parsed() {
        let d = zones(&["zen.example.org", " BL.Example.ORG. = 127.0.0.2, 127.0.0.4"]).unwrap();
        assert_eq!(
            d.zones(),
            [
                DnsblZone {
                    name: "zen.example.org".into(),
                    answers: vec![]
                },
                DnsblZone {
                    name: "bl.example.org".into(),
                    answers: vec![Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 4)]
                },
            ]
        );
        assert!(zones(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_zone_is_named_in_the_error() {
        let long = format!("{}.example", "a".repeat(64));
        let too_long = format!("{}example", "abcdefgh.".repeat(21));
        for bad in [
            "",
            " ",
            ".",
            "=127.0.0.2",
            "bl.example=",
            "bl.example=127.0.0.2,",
            "bl.example=127.0.0.2,,127.0.0.3",
            "bl.example=1.2.3.4",
            "bl.example=127.255.255.254",
            "bl.example=abc",
            "bl.example=::1",
            "bl.example=127.0.0.2=127.0.0.3",
            "bad zone.example",
            "bl..example",
            ".bl.example",
            "bl.example/24",
            long.as_str(),
            too_long.as_str(),
        ] {
            let e = zones(&["good.example", bad]).unwrap_err();
            assert_eq!(e.entry, bad);
            assert!(
                e.to_string()
                    .starts_with(&format!("scanner.dnsbl_zones: {bad:?}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn addresses_are_reversed() {
        let p = |s: &str| query_prefix(s.parse().unwrap());
        assert_eq!(p("192.0.2.99").as_deref(), Some("99.2.0.192"));
        assert_eq!(p("203.0.113.7").as_deref(), Some("7.113.0.203"));
        // RFC 5782 section 2.4's example.
        assert_eq!(
            p("2001:db8:1:2:3:4:567:89ab").as_deref(),
            Some("b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2")
        );
        assert_eq!(p("::ffff:192.0.2.99").as_deref(), Some("99.2.0.192"));
        let v6 = p("2001:db8::1").unwrap();
        assert_eq!(v6.len(), 63);
        assert_eq!(v6.split('.').count(), 32);
    }

    #[test]
    fn non_public_addresses_are_not_looked_up() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(query_prefix(ip.parse().unwrap()), None, "{ip}");
        }
        assert!(query_prefix("100.128.0.1".parse().unwrap()).is_some());
        assert!(query_prefix("172.32.0.1".parse().unwrap()).is_some());
    }

    #[test]
    fn answers_are_classified() {
        let v4 = |s: &str| IpAddr::V4(s.parse().unwrap());
        let any: &[Ipv4Addr] = &[];
        assert_eq!(classify(any, &[]), Verdict::NotListed);
        assert_eq!(
            classify(any, &[v4("127.0.0.2"), v4("127.0.0.10"), v4("127.0.0.2")]),
            Verdict::Listed(vec![
                "127.0.0.2".parse().unwrap(),
                "127.0.0.10".parse().unwrap()
            ])
        );
        let only = ["127.0.0.2".parse().unwrap(), "127.0.0.4".parse().unwrap()];
        assert_eq!(classify(&only, &[v4("127.0.0.3")]), Verdict::NotListed);
        assert_eq!(
            classify(&only, &[v4("127.0.0.3"), v4("127.0.0.4")]),
            Verdict::Listed(vec!["127.0.0.4".parse().unwrap()])
        );
        for refusal in ["127.255.255.252", "127.255.255.254", "127.255.255.255"] {
            let Verdict::Error(reason) = classify(any, &[v4("127.0.0.2"), v4(refusal)]) else {
                panic!("{refusal} counted");
            };
            assert!(
                reason.contains(refusal) && reason.contains("refused"),
                "{reason}"
            );
        }
        for outside in ["10.0.0.1", "8.8.8.8", "128.0.0.2"] {
            let Verdict::Error(reason) = classify(&only, &[v4(outside)]) else {
                panic!("{outside} counted");
            };
            assert!(reason.contains("outside 127.0.0.0/8"), "{reason}");
        }
        assert_eq!(classify(any, &["::1".parse().unwrap()]), Verdict::NotListed);
    }

    /// Answers by name; a name it does not know is NXDOMAIN; `fail` names
    /// time out.
    struct Scripted {
        answers: HashMap<String, Vec<IpAddr>>,
        fail: Vec<String>,
        asked: RefCell<Vec<String>>,
    }

    impl AddressLookup for Scripted {
        fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
            self.asked.borrow_mut().push(host.to_owned());
            if self.fail.iter().any(|f| f == host) {
                return Err(DnsError {
                    name: host.into(),
                    kind: "A",
                    reason: DnsFailure::Timeout(Duration::from_secs(2)),
                });
            }
            Ok(self.answers.get(host).cloned().unwrap_or_default())
        }
    }

    #[test]
    fn every_zone_is_asked_and_errors_do_not_list() {
        let d = zones(&[
            "one.example",
            "two.example=127.0.0.4",
            "three.example",
            "four.example",
        ])
        .unwrap();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let dns = Scripted {
            answers: HashMap::from([
                (
                    "7.113.0.203.one.example".into(),
                    vec!["127.0.0.2".parse().unwrap()],
                ),
                (
                    "7.113.0.203.two.example".into(),
                    vec!["127.0.0.2".parse().unwrap()],
                ),
                (
                    "7.113.0.203.three.example".into(),
                    vec!["127.255.255.254".parse().unwrap()],
                ),
            ]),
            fail: vec!["7.113.0.203.four.example".into()],
            asked: RefCell::new(Vec::new()),
        };
        let outcome = d.check(&dns, ip);
        assert_eq!(
            outcome.listed,
            [Listing {
                zone: "one.example".into(),
                answer: "127.0.0.2".parse().unwrap()
            }]
        );
        assert_eq!(outcome.errors.len(), 2);
        assert_eq!(outcome.errors[0].0, "three.example");
        assert_eq!(
            outcome.errors[1],
            ("four.example".into(), "no answer within 2s".into())
        );
        for (_, reason) in &outcome.errors {
            assert!(!reason.contains("203.0.113.7") && !reason.contains("7.113.0.203"));
        }
        assert_eq!(dns.asked.borrow().len(), 4);

        dns.asked.borrow_mut().clear();
        let none = d.check(&dns, "192.168.0.7".parse().unwrap());
        assert_eq!(none, DnsblOutcome::default());
        assert!(dns.asked.borrow().is_empty());
    }
}
