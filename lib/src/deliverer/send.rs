//! One destination's part of an attempt: its hosts (the relay, a next
//! hop, an address literal, or MX hosts from DNS, with MTA-STS applied),
//! each tried until one session settles the group's recipients.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::Deliverer;
use super::classify::{Category, NetworkKind};
use super::mta_sts::{CacheFile, MtaSts};
use super::route::{self, Destination};
use super::smtp::{self, Attempt, Outcome, Peer, Reply, Spec, Timeouts};
use super::tls::TlsClients;
use crate::config::TlsLevel;
use crate::dns::{AddressLookup, DnsLookup};
use crate::mail::job::Job;
use crate::mail::status;

/// One host name and where it listens, before its addresses are known.
struct Host {
    name: String,
    port: u16,
    addrs: Addrs,
}

/// Where a host's addresses come from.
enum Addrs {
    /// Already known (an address literal, a domain's own A records).
    Known(Vec<IpAddr>),
    /// The system's resolver: the relay and next hops, which may be in
    /// /etc/hosts.
    System,
    /// DNS: MX hosts.
    Dns,
}

impl Deliverer<'_> {
    /// One destination's part of an attempt: its hosts in order until
    /// one settles the group; if none does, the last failure is every
    /// recipient's.
    pub(super) fn send(
        &self,
        dest: &Destination,
        job: &mut Job,
        group: &[usize],
        now: SystemTime,
        attempt: &mut Attempt,
    ) {
        let d = &self.config.deliverer;
        let (level, timeouts, deadline) = match dest {
            Destination::Relay => {
                let r = &self.config.relay;
                let t = Timeouts {
                    connect: r.timeout,
                    command: r.timeout,
                    data: r.timeout,
                };
                (r.tls, t, r.deadline)
            }
            _ => {
                let t = Timeouts {
                    connect: d.connect_timeout,
                    command: d.command_timeout,
                    data: d.data_timeout,
                };
                (d.tls, t, d.deadline)
            }
        };
        let end = Instant::now() + deadline;
        let hosts = self.hosts(dest).and_then(|hosts| match dest {
            Destination::Mx(domain) => self.sts_filter(domain, hosts, now),
            _ => Ok((hosts, false)),
        });
        let mut last = match hosts {
            Ok((hosts, enforce)) => {
                let level = if enforce { TlsLevel::Verify } else { level };
                match self.tls_client(level) {
                    Ok(tls_client) => {
                        let spec = Spec {
                            helo: self.config.helo_name().to_owned(),
                            timeouts,
                            tls: level,
                            tls_client,
                        };
                        self.try_hosts(&hosts, dest, &spec, end, job, group, now, attempt)
                    }
                    Err(reply) => Some(reply),
                }
            }
            Err(reply) => Some(reply),
        };
        if let Some(reply) = last.take() {
            smtp::settle_all(job, group, &reply, None, now);
            attempt.problem.get_or_insert((
                reply.code,
                crate::mail::text::bounded(&reply.diagnostic, 200),
            ));
        }
    }

    /// Tries `hosts` in order; `None` once a session settled the group,
    /// else the last failure.
    #[allow(clippy::too_many_arguments)]
    fn try_hosts(
        &self,
        hosts: &[Host],
        dest: &Destination,
        spec: &Spec,
        end: Instant,
        job: &mut Job,
        group: &[usize],
        now: SystemTime,
        attempt: &mut Attempt,
    ) -> Option<Reply> {
        let max = match dest {
            Destination::Mx(_) => self.config.deliverer.max_mx_hosts,
            _ => usize::MAX,
        };
        let mut tried = 0;
        let mut last = None;
        for host in hosts {
            let addrs = match self.addresses(host, end) {
                Ok(a) => a,
                Err(reply) => {
                    if last.is_none() {
                        last = Some(reply);
                    }
                    continue;
                }
            };
            for ip in addrs {
                if tried == max {
                    return last;
                }
                tried += 1;
                let peer = Peer {
                    name: host.name.clone(),
                    addr: SocketAddr::new(ip, host.port),
                };
                let mut outcome = smtp::deliver_at(&peer, spec, end, job, group, now);
                if let Outcome::TryNext {
                    plaintext: true, ..
                } = outcome
                {
                    let plain = Spec {
                        tls: TlsLevel::None,
                        tls_client: None,
                        ..spec.clone()
                    };
                    outcome = smtp::deliver_at(&peer, &plain, end, job, group, now);
                }
                match outcome {
                    Outcome::Settled(tls, problem) => {
                        attempt.peers.push(format!("{peer} tls={tls}"));
                        if let Some(r) = problem {
                            attempt.problem.get_or_insert((
                                r.code,
                                crate::mail::text::bounded(&r.diagnostic, 200),
                            ));
                        }
                        return None;
                    }
                    Outcome::TryNext { reply, .. } => {
                        attempt.peers.push(format!("{peer} failed"));
                        // A host that could not be reached says less than
                        // one that answered (or failed TLS): keep the
                        // latter for the sender's DSN.
                        if last
                            .as_ref()
                            .is_none_or(|l: &Reply| l.is_unreached() || !reply.is_unreached())
                        {
                            last = Some(reply);
                        }
                    }
                }
            }
        }
        last.or_else(|| {
            Some(Reply::local(
                status::DNS_FAILURE,
                Category::Dns,
                format!("no host of {dest} has an address"),
            ))
        })
    }

    /// The TLS client configuration for `level` (`None` for no TLS).
    fn tls_client(&self, level: TlsLevel) -> Result<Option<Arc<rustls::ClientConfig>>, Reply> {
        if level == TlsLevel::None {
            return Ok(None);
        }
        if self.tls.get().is_none() {
            let ca = self.config.deliverer.tls_ca_file.as_deref();
            let clients = TlsClients::new(ca)
                .map_err(|e| Reply::local(status::MISCONFIGURED, Category::Tls, e.to_string()))?;
            let _ = self.tls.set(clients);
        }
        Ok(self.tls.get().and_then(|t| t.for_level(level)))
    }

    /// MTA-STS (RFC 8461) for a domain's MX hosts: with an `enforce`
    /// policy only the hosts it lists are kept, and `true` says verified
    /// TLS is required; `testing` only logs what enforcing would refuse.
    fn sts_filter(
        &self,
        domain: &str,
        hosts: Vec<Host>,
        now: SystemTime,
    ) -> Result<(Vec<Host>, bool), Reply> {
        if !self.config.mta_sts.enabled {
            return Ok((hosts, false));
        }
        let sts = self.mta_sts()?;
        let dns = self.dns()?;
        let lookup = sts.borrow_mut().lookup(dns, domain, now);
        if let Some(problem) = &lookup.problem {
            self.log.warning(format_args!("{problem}"));
        }
        let req = lookup.requirement;
        let (allowed, refused): (Vec<Host>, Vec<Host>) = hosts
            .into_iter()
            .partition(|h| req.policy().is_none_or(|p| p.matches(&h.name)));
        if req.policy().is_some() {
            for h in &refused {
                self.log.warning(format_args!(
                    "MTA-STS {domain}: MX host {} is not in the policy{}",
                    h.name,
                    if req.requires_verified_tls() {
                        "; not used"
                    } else {
                        " (testing mode: used)"
                    }
                ));
            }
        }
        if !req.requires_verified_tls() {
            let mut all = allowed;
            all.extend(refused);
            return Ok((all, false));
        }
        if allowed.is_empty() {
            return Err(Reply::local(
                status::TLS_FAILURE,
                Category::Tls,
                format!("no MX host of {domain} is in its MTA-STS policy (mode enforce)"),
            ));
        }
        Ok((allowed, true))
    }

    /// The MTA-STS state, its policy cache read from the spool directory
    /// at the first use.
    fn mta_sts(&self) -> Result<&RefCell<MtaSts>, Reply> {
        if let Some(s) = self.mta_sts.get() {
            return Ok(s);
        }
        // The cache lives in the spool directory: make it if need be.
        self.spool()
            .map_err(|f| Reply::local(status::SYSTEM, Category::Other, f.to_string()))?;
        let cache = CacheFile {
            path: self.config.spool.directory.join(MTA_STS_CACHE),
            key: self.key.clone(),
        };
        let mut sts = MtaSts::new(&self.config.mta_sts, Some(cache))
            .map_err(|e| Reply::local(status::MISCONFIGURED, Category::Other, e.to_string()))?;
        if let Err(e) = sts.load(SystemTime::now()) {
            self.log
                .warning(format_args!("MTA-STS cache: {e}; starting empty"));
        }
        Ok(self.mta_sts.get_or_init(|| RefCell::new(sts)))
    }

    /// Writes the MTA-STS cache if a policy changed.
    pub(super) fn save_mta_sts(&self) {
        let saved = self
            .mta_sts
            .get()
            .map(|s| s.borrow_mut().save(SystemTime::now()));
        if let Some(Err(e)) = saved {
            self.log.warning(format_args!("MTA-STS cache: {e}"));
        }
    }

    /// The hosts of a destination, in the order to try them.
    fn hosts(&self, dest: &Destination) -> Result<Vec<Host>, Reply> {
        let r = &self.config.relay;
        let d = &self.config.deliverer;
        Ok(match dest {
            Destination::Relay => vec![Host {
                name: r.host.clone(),
                port: r.port,
                addrs: Addrs::System,
            }],
            Destination::Nexthop { host, port } => vec![Host {
                name: host.clone(),
                port: *port,
                addrs: Addrs::System,
            }],
            Destination::Literal(ip) => vec![Host {
                name: ip.to_string(),
                port: d.mx_port,
                addrs: Addrs::Known(vec![*ip]),
            }],
            Destination::Mx(domain) => {
                let dns = self.dns()?;
                let mx = dns.mx(domain).map_err(|e| dns_failure(&e))?;
                if mx.null && !mx.accepts_mail() {
                    return Err(Reply::local(
                        status::NULL_MX,
                        Category::Recipient,
                        format!("{domain} does not accept mail (null MX, RFC 7505)"),
                    ));
                }
                let names = if mx.accepts_mail() {
                    route::order_mx(&mx, d.max_mx_hosts, random_word())
                } else {
                    // No MX: the domain itself is its mail host (RFC 5321
                    // section 5.1), if it has an address.
                    let addrs = dns.addresses(domain).map_err(|e| dns_failure(&e))?;
                    if addrs.is_empty() {
                        return Err(Reply::local(
                            status::NO_ROUTE,
                            Category::Dns,
                            format!("{domain} has no MX and no address record"),
                        ));
                    }
                    return Ok(vec![Host {
                        name: domain.clone(),
                        port: d.mx_port,
                        addrs: Addrs::Known(addrs),
                    }]);
                };
                names
                    .into_iter()
                    .map(|name| Host {
                        name,
                        port: d.mx_port,
                        addrs: Addrs::Dns,
                    })
                    .collect()
            }
        })
    }

    /// A host's addresses: the relay's and next hops' from the system's
    /// resolver (they may be in /etc/hosts), MX hosts' from DNS.
    fn addresses(&self, host: &Host, end: Instant) -> Result<Vec<IpAddr>, Reply> {
        match &host.addrs {
            Addrs::Known(a) => Ok(a.clone()),
            Addrs::Dns => self
                .dns()?
                .addresses(&host.name)
                .map_err(|e| dns_failure(&e)),
            Addrs::System => {
                let wait = end.saturating_duration_since(Instant::now());
                smtp::resolve(&host.name, host.port, wait)
                    .map(|a| a.into_iter().map(|s| s.ip()).collect())
                    .map_err(|e| {
                        Reply::network(
                            NetworkKind::Dns,
                            format!("cannot resolve {}: {e}", host.name),
                        )
                    })
            }
        }
    }
}

/// The MTA-STS policy cache, sealed, in the spool directory.
const MTA_STS_CACHE: &str = "mta-sts.cache";

/// A failed lookup: temporary (4.4.3).
fn dns_failure(e: &crate::dns::DnsError) -> Reply {
    Reply::local(e.status(), Category::Dns, e.to_string())
}

/// A random word, to shuffle MX hosts of equal preference.
fn random_word() -> u64 {
    let mut b = [0u8; 8];
    // No randomness is no reason to fail: the order is then fixed.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
