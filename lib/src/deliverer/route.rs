//! Where each recipient goes (pure decisions; the lookups and sessions
//! are in `mod.rs` and `smtp`): recipients are grouped by destination, so
//! that one connection serves every recipient of a domain, and the MX
//! hosts of a domain are put in the order to try them (RFC 5321 section
//! 5.1).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::alias::domain_key;
use crate::config::{DelivererConfig, Transport};
use crate::dns::Mx;
use crate::mail::job::Job;

/// Where a group of recipients is sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// The configured relay, for every recipient routed there.
    Relay,
    /// A host named in `deliverer.routes`, no MX lookup.
    Nexthop { host: String, port: u16 },
    /// The MX hosts of a domain (its A-label form, lower case).
    Mx(String),
    /// An address literal (`user@[192.0.2.1]`): that host, at
    /// `deliverer.mx_port`, whatever the transport.
    Literal(IpAddr),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Relay => f.write_str("relay"),
            Destination::Nexthop { host, port } => write!(f, "{host}:{port}"),
            Destination::Mx(domain) => f.write_str(domain),
            Destination::Literal(ip) => write!(f, "[{ip}]"),
        }
    }
}

/// `deliverer.transport` and `deliverer.routes`, with the domains in
/// the form they are looked up in.
#[derive(Debug, Clone)]
pub struct Routes {
    default: Transport,
    by_domain: HashMap<String, Transport>,
}

impl Routes {
    pub fn new(config: &DelivererConfig) -> Routes {
        Routes {
            default: config.transport.clone(),
            by_domain: config
                .routes
                .iter()
                .map(|(d, t)| {
                    (
                        domain_key(d).unwrap_or_else(|| d.to_ascii_lowercase()),
                        t.clone(),
                    )
                })
                .collect(),
        }
    }

    /// True when no domain can go to MX hosts (no DNS client is needed).
    pub fn relay_only(&self) -> bool {
        !std::iter::once(&self.default)
            .chain(self.by_domain.values())
            .any(|t| *t == Transport::Mx)
    }
}

/// The destination of a recipient domain.
pub fn destination(routes: &Routes, domain: &str) -> Destination {
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ip = literal.strip_prefix("IPv6:").unwrap_or(literal);
        if let Ok(ip) = ip.parse() {
            return Destination::Literal(ip);
        }
    }
    let key = domain_key(domain).unwrap_or_else(|| domain.to_ascii_lowercase());
    let transport = routes.by_domain.get(&key).unwrap_or(&routes.default);
    match transport {
        Transport::Relay => Destination::Relay,
        Transport::Mx => Destination::Mx(key),
        Transport::Nexthop { host, port } => Destination::Nexthop {
            host: host.clone(),
            port: *port,
        },
    }
}

/// The undone recipients of `job` (indices, in order) grouped by
/// destination, in the order each destination first appears.
pub fn groups(routes: &Routes, job: &Job) -> Vec<(Destination, Vec<usize>)> {
    let mut out: Vec<(Destination, Vec<usize>)> = Vec::new();
    for (i, r) in job.envelope.recipients.iter().enumerate() {
        if r.status.is_done() {
            continue;
        }
        let d = destination(routes, r.address.domain());
        match out.iter_mut().find(|(k, _)| *k == d) {
            Some((_, v)) => v.push(i),
            None => out.push((d, vec![i])),
        }
    }
    out
}

/// The MX hosts to try, best first: by preference, hosts of equal
/// preference in an order that `random` shuffles (RFC 5321 section 5.1:
/// spread the load), at most `max`.
pub fn order_mx(mx: &Mx, max: usize, random: u64) -> Vec<String> {
    let mut hosts: Vec<(u16, u64, &str)> = mx
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            // A different, deterministic key per host from one random word.
            let key = random
                .wrapping_add(i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29);
            (h.preference, key, h.exchange.as_str())
        })
        .collect();
    hosts.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, _, name) in hosts {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
        if out.len() == max {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::MxHost;
    use crate::mail::address::{Address, Sender};
    use crate::mail::job::{Envelope, QueueId, RcptStatus, Recipient};
    use std::time::SystemTime;

    fn mx(hosts: &[(u16, &str)]) -> Mx {
        Mx {
            hosts: hosts
                .iter()
                .map(|(p, h)| MxHost {
                    preference: *p,
                    exchange: (*h).into(),
                })
                .collect(),
            ..Mx::default()
        }
    }

    #[test]
    fn preference_first_equal_ones_shuffled_and_capped() {
        let m = mx(&[(20, "b1"), (10, "a1"), (20, "b2"), (10, "a2"), (30, "c")]);
        let mut firsts = std::collections::HashSet::new();
        for seed in 0..64 {
            let order = order_mx(&m, 5, seed);
            assert_eq!(order.len(), 5);
            let mut a: Vec<_> = order[..2].to_vec();
            a.sort();
            assert_eq!(a, ["a1", "a2"]);
            let mut b: Vec<_> = order[2..4].to_vec();
            b.sort();
            assert_eq!(b, ["b1", "b2"]);
            assert_eq!(order[4], "c");
            firsts.insert(order[0].clone());
        }
        assert_eq!(firsts.len(), 2, "equal preferences are shuffled");
        assert_eq!(order_mx(&m, 3, 1).len(), 3);
        // The same host twice (two preferences) is tried once.
        assert_eq!(order_mx(&mx(&[(10, "a"), (20, "a")]), 5, 0), ["a"]);
    }

    fn job(rcpts: &[&str]) -> Job {
        let mut env = Envelope::new(
            QueueId::parse("Q").unwrap(),
            SystemTime::UNIX_EPOCH,
            Sender::Null,
        );
        env.recipients = rcpts
            .iter()
            .map(|a| Recipient::new(Address::parse(a).unwrap()))
            .collect();
        Job {
            envelope: env,
            message: Vec::new(),
        }
    }

    #[test]
    fn recipients_group_by_destination() {
        let mut c = DelivererConfig {
            transport: Transport::Mx,
            ..DelivererConfig::default()
        };
        c.routes.insert("Corp.Example".into(), Transport::Relay);
        c.routes.insert(
            "lab.example".into(),
            "[192.0.2.7]:2525".to_string().try_into().unwrap(),
        );
        let mut j = job(&[
            "a@x.example",
            "b@corp.example",
            "c@X.EXAMPLE",
            "d@lab.example",
            "e@[192.0.2.1]",
            "f@y.example",
            "g@CORP.example",
        ]);
        j.envelope.recipients[5].status = RcptStatus::Delivered;
        let routes = Routes::new(&c);
        assert!(!routes.relay_only());
        assert!(Routes::new(&DelivererConfig::default()).relay_only());
        let g = groups(&routes, &j);
        assert_eq!(
            g,
            vec![
                (Destination::Mx("x.example".into()), vec![0, 2]),
                (Destination::Relay, vec![1, 6]),
                (
                    Destination::Nexthop {
                        host: "192.0.2.7".into(),
                        port: 2525
                    },
                    vec![3]
                ),
                (Destination::Literal("192.0.2.1".parse().unwrap()), vec![4]),
            ]
        );
        // IDN domains meet in their A-label form.
        assert_eq!(
            destination(&routes, "bücher.example"),
            Destination::Mx("xn--bcher-kva.example".into())
        );
    }

    #[test]
    fn transports_read_and_refuse() {
        for bad in [
            "",
            "host",
            "host:0",
            "host:x",
            "[::1:25",
            "a b:25",
            "host:70000",
        ] {
            assert!(Transport::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
        let t = Transport::try_from("[::1]:2525".to_string()).unwrap();
        assert_eq!(String::from(t.clone()), "[::1]:2525");
        assert_eq!(
            t,
            Transport::Nexthop {
                host: "::1".into(),
                port: 2525
            }
        );
    }
}
