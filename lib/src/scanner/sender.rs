//! The sender checks of postern-scanner (issue 12, rules 5 and 6): SPF
//! (RFC 7208), DKIM verification (RFC 6376) and DMARC (RFC 7489, as
//! mail-auth implements it: the DMARCbis tree walk for the policy record),
//! through the crate mail-auth, over the resolver postern's own DNS client
//! is built from (`dns::build_resolver`), and their results as an RFC 8601
//! `Authentication-Results` header and a one-line summary.
//!
//! What is checked, and on which identity:
//! - SPF checks the MAIL FROM domain, or the HELO name when the sender is
//!   null (RFC 7208 section 2.4). No client address (local submission):
//!   `none` without a lookup. A name that is not a domain (an address
//!   literal, one label, an empty local part's missing domain): `none`
//!   without a lookup, as check_host() returns for a malformed domain
//!   (section 4.3). Two SPF records or more are `permerror` (section
//!   4.5); mail-auth would take the first that parses, so the domain's
//!   TXT records are read here first (see `one_spf_record`). mail-auth is
//!   lenient where the RFC is not: it skips some terms it cannot read
//!   (`ip4:300.1.2.3`, an unknown `foo:bar`) instead of `permerror`.
//! - DKIM verifies at most [`MAX_SIGNATURES`] signatures of a message; a
//!   body that does not match its hash is `fail` (RFC 6376 section 6.1.3
//!   calls it a verification failure; mail-auth says `neutral`); an
//!   expired signature and one with `l=` (which mail-auth refuses) are
//!   `policy` (RFC 8601 section 2.7.1: not acceptable to us).
//! - DMARC needs one author domain. A message with no From address, or a
//!   From address without a domain, gets `permerror`; so does a From with
//!   addresses in several domains (RFC 7489 section 6.6.1 would check each
//!   and apply the strictest failing policy; we do not choose among them,
//!   and the caller sees `permerror` with no policy). Several addresses
//!   in one domain are checked as that domain. DMARC needs SPF: with
//!   `dmarc` on, SPF is evaluated even when `spf` is off, and then only
//!   used for DMARC's alignment (not reported).
//!
//! The lookups of one message share one budget (`scanner.auth_timeout`):
//! a check still unfinished at the deadline is `temperror`, and so is
//! every check after it. A DNS failure is `temperror` (mail-auth maps
//! every resolver error but NXDOMAIN/NODATA to it). [`SenderChecks::check`]
//! never fails and never panics on outside data.
//!
//! The message is parsed once (mail-auth's header parser, then one body
//! hash per distinct canonicalization and algorithm of the signatures).
//! The TXT records found for one message are kept for that message only
//! (a `MessageTxt`), so mail-auth does not ask for them again (DMARC's
//! tree walk for alignment repeats the one for the policy); it keeps no
//! negative answers.
//!
//! Privacy: nothing here logs. [`AuthOutcome::summary`], the line for the
//! job envelope and the log, carries results only — no address, no
//! domain. [`AuthOutcome::header_value`] names domains (that is what the
//! header is for) but never the sender's local part.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::resolver::ToFqdn;
use mail_auth::common::to_a_label;
use mail_auth::dkim::DkimError;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DmarcOutput, MessageAuthenticator, Parameters, ResolverCache,
    SpfOutput, Txt,
};

use crate::config::DnsConfig;
use crate::dns::{DnsSetupError, build_resolver, join_strings};

/// The most DKIM signatures of one message verified (each costs a key
/// lookup); the ones after are left out of the results.
pub const MAX_SIGNATURES: usize = 8;

/// What the checks look at: the SMTP session and the message.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The SMTP client's address; `None` for a local submission.
    pub client_ip: Option<IpAddr>,
    /// The HELO/EHLO name the client gave.
    pub helo: Option<&'a str>,
    /// The envelope sender; `""` is the null sender (`MAIL FROM:<>`).
    pub mail_from: &'a str,
    /// The whole message, header and body.
    pub message: &'a [u8],
    /// Our host name: SPF's receiving host (`%{r}`).
    pub hostname: &'a str,
}

/// An SPF result (RFC 7208 section 2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl SpfResult {
    /// As RFC 8601 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::Neutral => "neutral",
            SpfResult::None => "none",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

/// Which identity SPF checked (RFC 7208 section 2.3, 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfScope {
    Helo,
    MailFrom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfOutcome {
    pub result: SpfResult,
    pub scope: SpfScope,
    /// The domain checked, lower-cased (A-labels); empty when there was
    /// none to check.
    pub domain: String,
}

/// A DKIM result as RFC 8601 section 2.7.1 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimResult {
    Pass,
    Fail,
    Neutral,
    None,
    TempError,
    PermError,
    Policy,
}

impl DkimResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimResult::Pass => "pass",
            DkimResult::Fail => "fail",
            DkimResult::Neutral => "neutral",
            DkimResult::None => "none",
            DkimResult::TempError => "temperror",
            DkimResult::PermError => "permerror",
            DkimResult::Policy => "policy",
        }
    }
}

/// One signature's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimOutcome {
    pub result: DkimResult,
    /// The signature's `d=`; empty for a signature too malformed to read.
    pub domain: String,
    /// The signature's `s=`; empty as `domain`.
    pub selector: String,
}

/// A DMARC result (RFC 7489 section 11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcResult {
    Pass,
    Fail,
    None,
    TempError,
    PermError,
}

impl DmarcResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcResult::Pass => "pass",
            DmarcResult::Fail => "fail",
            DmarcResult::None => "none",
            DmarcResult::TempError => "temperror",
            DmarcResult::PermError => "permerror",
        }
    }
}

/// The policy the author domain asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

impl DmarcPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcOutcome {
    pub result: DmarcResult,
    /// The From domain, lower-cased (A-labels); empty when the message
    /// has none, or several (then `result` is `permerror`).
    pub from_domain: String,
    /// The policy that applies to this From domain: `p=`, or `sp=` for a
    /// subdomain under an organizational record (`np=` for one that does
    /// not exist), one step milder under `t=y`. `None` without a record.
    pub policy: DmarcPolicy,
}

/// The results of one message's checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthOutcome {
    /// `None` when SPF was not asked for.
    pub spf: Option<SpfOutcome>,
    /// One per signature (none for an unsigned message, or when DKIM was
    /// not checked: DKIM is checked with DMARC).
    pub dkim: Vec<DkimOutcome>,
    /// `None` when DMARC was not asked for.
    pub dmarc: Option<DmarcOutcome>,
}

/// The checks, opened once and kept across jobs: a resolver and the
/// current-thread runtime that drives it, like [`crate::dns::DnsClient`].
pub struct SenderChecks {
    // Dropped before the runtime: the resolver's tasks belong to it.
    authenticator: MessageAuthenticator,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
}

impl std::fmt::Debug for SenderChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderChecks")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SenderChecks {
    /// Checks over the servers of `dns`; `timeout` is the budget of all
    /// the lookups of one message (`scanner.auth_timeout`).
    pub fn new(dns: &DnsConfig, timeout: Duration) -> Result<SenderChecks, DnsSetupError> {
        let resolver = build_resolver(dns)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(DnsSetupError::Runtime)?;
        Ok(SenderChecks {
            authenticator: MessageAuthenticator(resolver),
            runtime,
            timeout,
        })
    }

    /// SPF when `spf`, DKIM and DMARC when `dmarc`, within the budget.
    pub fn check(&self, input: &Input<'_>, spf: bool, dmarc: bool) -> AuthOutcome {
        if !spf && !dmarc {
            return AuthOutcome::default();
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        self.runtime.block_on(self.run(input, spf, dmarc, deadline))
    }

    async fn run(
        &self,
        input: &Input<'_>,
        spf: bool,
        dmarc: bool,
        deadline: tokio::time::Instant,
    ) -> AuthOutcome {
        let auth = &self.authenticator;
        let cache = MessageTxt::default();
        let identity = spf_identity(input.helo, input.mail_from);
        let spf_output = match (input.client_ip, is_domain(&identity.domain)) {
            (Some(ip), true) => {
                let helo = input.helo.unwrap_or("");
                let spf = async {
                    // The name as mail-auth will ask it (not normalized).
                    let asked = match identity.scope {
                        SpfScope::Helo => helo,
                        SpfScope::MailFrom => {
                            input.mail_from.rsplit_once('@').map_or(helo, |(_, d)| d)
                        }
                    };
                    if let Err(result) = self.one_spf_record(asked, &cache).await {
                        return SpfOutput::new(identity.domain.clone()).with_result(result);
                    }
                    let params = match identity.scope {
                        SpfScope::Helo => SpfParameters::verify_ehlo(ip, helo, input.hostname),
                        SpfScope::MailFrom => SpfParameters::verify_mail_from(
                            ip,
                            helo,
                            input.hostname,
                            input.mail_from,
                        ),
                    };
                    auth.verify_spf(Parameters::new(params).with_txt_cache(&cache))
                        .await
                };
                tokio::time::timeout_at(deadline, spf)
                    .await
                    .unwrap_or_else(|_elapsed| {
                        SpfOutput::new(identity.domain.clone())
                            .with_result(mail_auth::SpfResult::TempError)
                    })
            }
            // Local submission, or no domain to check: none, no lookup.
            _ => SpfOutput::new(identity.domain.clone()).with_result(mail_auth::SpfResult::None),
        };
        let mut outcome = AuthOutcome {
            spf: spf.then(|| SpfOutcome {
                result: spf_result(spf_output.result()),
                scope: identity.scope,
                domain: identity.domain.clone(),
            }),
            ..AuthOutcome::default()
        };
        if !dmarc {
            return outcome;
        }

        // mail-auth keeps the body offset in a u32.
        let parsed = u32::try_from(input.message.len())
            .ok()
            .and_then(|_| AuthenticatedMessage::parse(input.message));
        let Some(mut message) = parsed else {
            // Not a message: nothing signed, no From.
            outcome.dmarc = Some(DmarcOutcome {
                result: DmarcResult::PermError,
                from_domain: String::new(),
                policy: DmarcPolicy::None,
            });
            return outcome;
        };
        message.dkim_headers.truncate(MAX_SIGNATURES);
        message.errors.truncate(MAX_SIGNATURES);
        let message = message;

        let dkim_output = match tokio::time::timeout_at(
            deadline,
            auth.verify_dkim(Parameters::new(&message).with_txt_cache(&cache)),
        )
        .await
        {
            Ok(output) => output,
            Err(_elapsed) => {
                outcome.dkim = unverified(&message);
                outcome.dmarc = Some(match author_domain(message.froms()) {
                    Ok(domain) => DmarcOutcome {
                        result: DmarcResult::TempError,
                        from_domain: domain,
                        policy: DmarcPolicy::None,
                    },
                    Err(refused) => refused,
                });
                return outcome;
            }
        };
        outcome.dkim = dkim_output.iter().map(dkim_outcome).collect();

        let from_domain = match author_domain(message.froms()) {
            Ok(domain) => domain,
            Err(refused) => {
                outcome.dmarc = Some(refused);
                return outcome;
            }
        };
        // SPF's identity counts for alignment only when SPF looked at it.
        let spf_domain = if input.client_ip.is_some() {
            identity.domain.as_str()
        } else {
            ""
        };
        let params = Parameters::new(DmarcParameters::new(
            &message,
            &dkim_output,
            spf_domain,
            &spf_output,
        ))
        .with_txt_cache(&cache);
        let dmarc_output = tokio::time::timeout_at(deadline, auth.verify_dmarc(params)).await;
        outcome.dmarc = Some(match dmarc_output {
            Ok(output) => dmarc_outcome(&output, from_domain),
            Err(_elapsed) => DmarcOutcome {
                result: DmarcResult::TempError,
                from_domain,
                policy: DmarcPolicy::None,
            },
        });
        outcome
    }
}

impl SenderChecks {
    /// RFC 7208 section 4.5: the SPF record of `domain`, or the result
    /// when there is not exactly one — `none` for none (or no such
    /// domain), `permerror` for several, `temperror` when the lookup
    /// fails. mail-auth would take the first record that parses; so the
    /// TXT records are fetched here, and the one SPF record is handed to
    /// mail-auth through `cache` rather than asked again.
    async fn one_spf_record(
        &self,
        domain: &str,
        cache: &MessageTxt,
    ) -> Result<(), mail_auth::SpfResult> {
        use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
        use hickory_resolver::proto::rr::{Name, RData, RecordType};
        use mail_auth::SpfResult as M;

        let key = domain.to_fqdn();
        let name = Name::from_str_relaxed(key.as_ref()).map_err(|_| M::None)?;
        let lookup = match self.authenticator.0.lookup(name, RecordType::TXT).await {
            Ok(lookup) => lookup,
            Err(NetError::Dns(HickoryDnsError::NoRecordsFound(_))) => return Err(M::None),
            Err(_) => return Err(M::TempError),
        };
        let mut spf = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(join_strings(&txt.txt_data)),
                _ => None, // a CNAME on the way
            })
            .filter(|r| is_spf_record(r));
        let record = match (spf.next(), spf.next()) {
            (None, _) => return Err(M::None),
            (Some(record), None) => record,
            (Some(_), Some(_)) => return Err(M::PermError),
        };
        cache.insert(
            key.into_owned().into_boxed_str(),
            Txt::from(Spf::parse(record.as_bytes())),
            std::time::Instant::now(),
        );
        Ok(())
    }
}

/// A TXT record that is an SPF record: `v=spf1` (any case) alone or
/// before a space (RFC 7208 section 4.5).
fn is_spf_record(record: &str) -> bool {
    let bytes = record.as_bytes();
    bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"v=spf1")
        && (bytes.len() == 6 || bytes[6] == b' ')
}

/// The TXT records of one message's checks, given to mail-auth, which
/// asks some names more than once (DMARC's tree walk, for alignment
/// again). Kept for the one message only: postern caches nothing for
/// longer than its own DNS client does (see `dns`).
#[derive(Default)]
struct MessageTxt(RefCell<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for MessageTxt {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.borrow().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.borrow_mut().remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _valid_until: std::time::Instant) {
        self.0.borrow_mut().insert(key, value);
    }
}

/// The identity SPF checks: the MAIL FROM domain, or the HELO name for
/// the null sender. Its domain is lower-cased A-labels; empty when there
/// is none (no HELO, a sender without `@`).
struct SpfIdentity {
    scope: SpfScope,
    domain: String,
}

fn spf_identity(helo: Option<&str>, mail_from: &str) -> SpfIdentity {
    if mail_from.is_empty() {
        SpfIdentity {
            scope: SpfScope::Helo,
            domain: normalize(helo.unwrap_or("")),
        }
    } else {
        SpfIdentity {
            scope: SpfScope::MailFrom,
            domain: normalize(mail_from.rsplit_once('@').map_or("", |(_, d)| d)),
        }
    }
}

/// A domain as the checks compare it: A-labels, lower case, no final dot.
fn normalize(domain: &str) -> String {
    let domain = domain.trim();
    to_a_label(domain.strip_suffix('.').unwrap_or(domain)).into_owned()
}

/// True for a name SPF and DMARC can look up: two labels or more, each
/// of 1 to 63 letters, digits, `-` or `_`, 253 octets at most. Address
/// literals (`[192.0.2.1]`) and single labels are not.
fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

/// The one domain of the From addresses (mail-auth gives them lower-cased,
/// only those with an address), or the DMARC outcome when there is not
/// exactly one: see the module comment.
fn author_domain(froms: &[String]) -> Result<String, DmarcOutcome> {
    let refused = DmarcOutcome {
        result: DmarcResult::PermError,
        from_domain: String::new(),
        policy: DmarcPolicy::None,
    };
    let mut found: Option<String> = None;
    for address in froms {
        let domain = match address.rsplit_once('@') {
            Some((_, d)) => normalize(d),
            None => return Err(refused),
        };
        if !is_domain(&domain) {
            return Err(refused);
        }
        match &found {
            Some(first) if *first != domain => return Err(refused),
            Some(_) => {}
            None => found = Some(domain),
        }
    }
    found.ok_or(refused)
}

fn spf_result(result: mail_auth::SpfResult) -> SpfResult {
    use mail_auth::SpfResult as M;
    match result {
        M::Pass => SpfResult::Pass,
        M::Fail => SpfResult::Fail,
        M::SoftFail => SpfResult::SoftFail,
        M::Neutral => SpfResult::Neutral,
        M::TempError => SpfResult::TempError,
        M::PermError => SpfResult::PermError,
        M::None => SpfResult::None,
    }
}

fn dkim_result(result: &mail_auth::DkimResult) -> DkimResult {
    use mail_auth::DkimResult as M;
    use mail_auth::Error::Dkim;
    match result {
        M::Pass => DkimResult::Pass,
        M::Fail(_) | M::Neutral(Dkim(DkimError::FailedBodyHashMatch)) => DkimResult::Fail,
        M::Neutral(Dkim(DkimError::SignatureExpired | DkimError::SignatureLength)) => {
            DkimResult::Policy
        }
        M::Neutral(_) => DkimResult::Neutral,
        M::TempError(_) => DkimResult::TempError,
        M::PermError(_) => DkimResult::PermError,
        M::None => DkimResult::None,
    }
}

fn dkim_outcome(output: &DkimOutput<'_>) -> DkimOutcome {
    let (domain, selector) = output
        .signature()
        .map_or((String::new(), String::new()), |s| {
            (normalize(&s.d), s.s.to_ascii_lowercase())
        });
    DkimOutcome {
        result: dkim_result(output.result()),
        domain,
        selector,
    }
}

/// The signatures of a message whose verification ran out of time: the
/// unreadable ones as mail-auth would report them (only its DKIM errors
/// are reported), the others `temperror`.
fn unverified(message: &AuthenticatedMessage<'_>) -> Vec<DkimOutcome> {
    let malformed = message.errors.iter().filter_map(|h| match &h.header {
        e @ mail_auth::Error::Dkim(_) => Some(DkimOutcome {
            result: dkim_result(&mail_auth::DkimResult::Neutral(e.clone())),
            domain: String::new(),
            selector: String::new(),
        }),
        _ => None,
    });
    let signed = message.dkim_headers.iter().map(|h| DkimOutcome {
        result: DkimResult::TempError,
        domain: normalize(&h.header.d),
        selector: h.header.s.to_ascii_lowercase(),
    });
    malformed.chain(signed).collect()
}

fn dmarc_outcome(output: &DmarcOutput, from_domain: String) -> DmarcOutcome {
    use mail_auth::DmarcResult as M;
    let result = match output.result() {
        M::Pass => DmarcResult::Pass,
        M::Fail(_) => DmarcResult::Fail,
        M::TempError(_) => DmarcResult::TempError,
        M::PermError(_) => DmarcResult::PermError,
        M::None => DmarcResult::None,
    };
    let policy = match output.policy() {
        mail_auth::dmarc::Policy::Reject => DmarcPolicy::Reject,
        mail_auth::dmarc::Policy::Quarantine => DmarcPolicy::Quarantine,
        mail_auth::dmarc::Policy::None | mail_auth::dmarc::Policy::Unspecified => DmarcPolicy::None,
    };
    DmarcOutcome {
        result,
        from_domain,
        policy,
    }
}

/// The longest line of a header we write (RFC 5322 section 2.1.1).
const LINE: usize = 78;
const HEADER_NAME: &str = "Authentication-Results: ";

impl AuthOutcome {
    /// The value of an RFC 8601 `Authentication-Results` header (what
    /// follows `Authentication-Results: `): `authserv_id`, then one
    /// `method=result` per line with its properties (`smtp.mailfrom` or
    /// `smtp.helo`, `header.d` and `header.s`, `header.from`), folded
    /// with `eol` and a tab so no line passes 78 octets where it can be
    /// helped (one very long domain cannot be cut). Without any result:
    /// `authserv_id; none` (RFC 8601 section 2.2). A `none` result has no
    /// property when there was nothing to name (`dkim=none`: no
    /// signature). No trailing line end.
    pub fn header_value(&self, authserv_id: &str, eol: &str) -> String {
        let resinfos = self.resinfos();
        let mut out = pvalue(authserv_id);
        if resinfos.is_empty() {
            out.push_str("; none");
            return out;
        }
        out.push(';');
        let last = resinfos.len() - 1;
        for (i, words) in resinfos.into_iter().enumerate() {
            out.push_str(eol);
            out.push('\t');
            let mut column = 1;
            let count = words.len();
            for (j, mut word) in words.into_iter().enumerate() {
                if j + 1 == count && i < last {
                    word.push(';');
                }
                if j > 0 {
                    if column + 1 + word.len() > LINE {
                        out.push_str(eol);
                        out.push('\t');
                        column = 1;
                    } else {
                        out.push(' ');
                        column += 1;
                    }
                }
                column += word.len();
                out.push_str(&word);
            }
        }
        out
    }

    /// The whole header line, `eol` included.
    pub fn header(&self, authserv_id: &str, eol: &str) -> String {
        format!("{HEADER_NAME}{}{eol}", self.header_value(authserv_id, eol))
    }

    /// One `method=result` with its properties per check, as words.
    fn resinfos(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        if let Some(spf) = &self.spf {
            let mut words = vec![format!("spf={}", spf.result.as_str())];
            if !spf.domain.is_empty() {
                let property = match spf.scope {
                    SpfScope::MailFrom => "smtp.mailfrom",
                    SpfScope::Helo => "smtp.helo",
                };
                words.push(format!("{property}={}", pvalue(&spf.domain)));
            }
            out.push(words);
        }
        for dkim in &self.dkim {
            let mut words = vec![format!("dkim={}", dkim.result.as_str())];
            if !dkim.domain.is_empty() {
                words.push(format!("header.d={}", pvalue(&dkim.domain)));
            }
            if !dkim.selector.is_empty() {
                words.push(format!("header.s={}", pvalue(&dkim.selector)));
            }
            out.push(words);
        }
        if let Some(dmarc) = &self.dmarc {
            // DKIM was checked with DMARC: say so when nothing was signed.
            if self.dkim.is_empty() {
                out.push(vec!["dkim=none".to_owned()]);
            }
            let mut words = vec![format!("dmarc={}", dmarc.result.as_str())];
            if matches!(dmarc.result, DmarcResult::Pass | DmarcResult::Fail) {
                words.push(format!("(p={})", dmarc.policy.as_str()));
            }
            if !dmarc.from_domain.is_empty() {
                words.push(format!("header.from={}", pvalue(&dmarc.from_domain)));
            }
            out.push(words);
        }
        out
    }

    /// The results in one short line for the job envelope and the log:
    /// `spf=pass dkim=pass dmarc=fail policy=reject`. Only the checks
    /// made; `dkim=` lists each distinct result once (`dkim=pass,fail`);
    /// `policy=` follows a DMARC `pass` or `fail`. Never an address or a
    /// domain. `none` when nothing was checked.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(spf) = &self.spf {
            parts.push(format!("spf={}", spf.result.as_str()));
        }
        if self.dmarc.is_some() || !self.dkim.is_empty() {
            let mut results: Vec<&str> = Vec::new();
            for dkim in &self.dkim {
                let r = dkim.result.as_str();
                if !results.contains(&r) {
                    results.push(r);
                }
            }
            if results.is_empty() {
                results.push(DkimResult::None.as_str());
            }
            parts.push(format!("dkim={}", results.join(",")));
        }
        if let Some(dmarc) = &self.dmarc {
            parts.push(format!("dmarc={}", dmarc.result.as_str()));
            if matches!(dmarc.result, DmarcResult::Pass | DmarcResult::Fail) {
                parts.push(format!("policy={}", dmarc.policy.as_str()));
            }
        }
        if parts.is_empty() {
            return "none".to_owned();
        }
        parts.join(" ")
    }
}

/// A property value for the header (RFC 8601 `pvalue`): a domain or
/// selector as it is when it is only letters, digits, `.`, `-` and `_`;
/// anything else as a quoted-string, with `"` and `\` escaped and bytes
/// that do not belong in a header (controls, non-ASCII) as `?`, cut at
/// 255 characters — text from outside can neither end the header nor
/// forge another.
fn pvalue(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !value.is_empty() && value.len() <= 255 && value.chars().all(plain) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len().min(255) + 2);
    out.push('"');
    for c in value.chars().take(255) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spf(result: SpfResult, scope: SpfScope, domain: &str) -> Option<SpfOutcome> {
        Some(SpfOutcome {
            result,
            scope,
            domain: domain.into(),
        })
    }

    fn dkim(result: DkimResult, domain: &str, selector: &str) -> DkimOutcome {
        DkimOutcome {
            result,
            domain: domain.into(),
            selector: selector.into(),
        }
    }

    fn dmarc(result: DmarcResult, domain: &str, policy: DmarcPolicy) -> Option<DmarcOutcome> {
        Some(DmarcOutcome {
            result,
            from_domain: domain.into(),
            policy,
        })
    }

    fn lines(value: &str) -> Vec<String> {
        format!("{HEADER_NAME}{value}")
            .split("\r\n")
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_full_header_has_one_result_per_line() {
        let outcome = AuthOutcome {
            spf: spf(SpfResult::Pass, SpfScope::MailFrom, "example.org"),
            dkim: vec![dkim(DkimResult::Pass, "example.org", "sel1")],
            dmarc: dmarc(DmarcResult::Pass, "example.org", DmarcPolicy::Reject),
        };
        assert_eq!(
            outcome.header_value("mx.example.net", "\r\n"),
            "mx.example.net;\r\n\
             \tspf=pass smtp.mailfrom=example.org;\r\n\
             \tdkim=pass header.d=example.org header.s=sel1;\r\n\
             \tdmarc=pass (p=reject) header.from=example.org"
        );
        assert_eq!(
            outcome.header("mx.example.net", "\n"),
            "Authentication-Results: mx.example.net;\n\
             \tspf=pass smtp.mailfrom=example.org;\n\
             \tdkim=pass header.d=example.org header.s=sel1;\n\
             \tdmarc=pass (p=reject) header.from=example.org\n"
        );
    }

    #[test]
    fn none_results_are_written_as_rfc_8601_says() {
        assert_eq!(
            AuthOutcome::default().header_value("mx.example.net", "\r\n"),
            "mx.example.net; none"
        );
        let outcome = AuthOutcome {
            spf: spf(SpfResult::None, SpfScope::Helo, ""),
            dkim: vec![],
            dmarc: dmarc(DmarcResult::None, "example.org", DmarcPolicy::None),
        };
        assert_eq!(
            outcome.header_value("mx.example.net", "\r\n"),
            "mx.example.net;\r\n\tspf=none;\r\n\tdkim=none;\r\n\tdmarc=none header.from=example.org"
        );
        let helo = AuthOutcome {
            spf: spf(SpfResult::SoftFail, SpfScope::Helo, "mail.example.org"),
            ..AuthOutcome::default()
        };
        assert_eq!(
            helo.header_value("mx", "\r\n"),
            "mx;\r\n\tspf=softfail smtp.helo=mail.example.org"
        );
        let no_from = AuthOutcome {
            dmarc: dmarc(DmarcResult::PermError, "", DmarcPolicy::None),
            dkim: vec![dkim(DkimResult::Neutral, "", "")],
            ..AuthOutcome::default()
        };
        assert_eq!(
            no_from.header_value("mx", "\r\n"),
            "mx;\r\n\tdkim=neutral;\r\n\tdmarc=permerror"
        );
    }

    #[test]
    fn long_results_are_folded_within_78_columns() {
        let long = format!("{}.example.org", "a".repeat(40));
        let outcome = AuthOutcome {
            spf: spf(SpfResult::TempError, SpfScope::MailFrom, &long),
            dkim: vec![
                dkim(DkimResult::Fail, &long, &"s".repeat(30)),
                dkim(DkimResult::Pass, "example.org", "x"),
            ],
            dmarc: dmarc(DmarcResult::Fail, &long, DmarcPolicy::Quarantine),
        };
        let value = outcome.header_value("mx.example.net", "\r\n");
        for line in lines(&value) {
            assert!(line.len() <= LINE, "{} octets: {line:?}", line.len());
            assert!(!line.ends_with(' '), "{line:?}");
        }
        assert!(lines(&value).iter().skip(1).all(|l| l.starts_with('\t')));
        // Unfolded, it reads as the same words.
        let unfolded = value.replace("\r\n\t", " ");
        assert_eq!(
            unfolded,
            format!(
                "mx.example.net; spf=temperror smtp.mailfrom={long}; dkim=fail header.d={long} \
                 header.s={}; dkim=pass header.d=example.org header.s=x; dmarc=fail (p=quarantine) \
                 header.from={long}",
                "s".repeat(30)
            )
        );
        // One word longer than a line stands alone on its line.
        let huge = format!("{}.example", "b".repeat(90));
        let outcome = AuthOutcome {
            dkim: vec![dkim(DkimResult::Pass, &huge, "s")],
            ..AuthOutcome::default()
        };
        assert_eq!(
            outcome.header_value("mx", "\n"),
            format!("mx;\n\tdkim=pass\n\theader.d={huge}\n\theader.s=s")
        );
    }

    #[test]
    fn outside_text_cannot_break_the_header() {
        let outcome = AuthOutcome {
            spf: spf(
                SpfResult::Fail,
                SpfScope::Helo,
                "evil.example\r\nX-Injected: yes",
            ),
            dkim: vec![dkim(DkimResult::Fail, "a b;c=d", "s\"el\\")],
            dmarc: dmarc(DmarcResult::Fail, "bücher.example", DmarcPolicy::Reject),
        };
        let value = outcome.header_value("mx", "\r\n");
        assert!(!value.contains("\r\nX-Injected"), "{value}");
        assert!(
            value.contains(r#"smtp.helo="evil.example??X-Injected: yes""#),
            "{value}"
        );
        assert!(value.contains(r#"header.d="a b;c=d""#), "{value}");
        assert!(value.contains(r#"header.s="s\"el\\""#), "{value}");
        assert!(value.contains(r#"header.from="b?cher.example""#), "{value}");
        assert!(value.is_ascii());
        assert_eq!(pvalue(""), "\"\"");
        assert_eq!(pvalue(&"x".repeat(300)).len(), 257);
    }

    #[test]
    fn summary_has_results_only() {
        let outcome = AuthOutcome {
            spf: spf(SpfResult::Pass, SpfScope::MailFrom, "sender.example.org"),
            dkim: vec![
                dkim(DkimResult::Pass, "sender.example.org", "s1"),
                dkim(DkimResult::Fail, "other.example", "s2"),
                dkim(DkimResult::Pass, "x.example", "s3"),
            ],
            dmarc: dmarc(DmarcResult::Fail, "sender.example.org", DmarcPolicy::Reject),
        };
        let summary = outcome.summary();
        assert_eq!(summary, "spf=pass dkim=pass,fail dmarc=fail policy=reject");
        assert!(!summary.contains('@') && !summary.contains("example"));
        assert_eq!(AuthOutcome::default().summary(), "none");
        let spf_only = AuthOutcome {
            spf: spf(SpfResult::SoftFail, SpfScope::Helo, "h.example"),
            ..AuthOutcome::default()
        };
        assert_eq!(spf_only.summary(), "spf=softfail");
        let unsigned = AuthOutcome {
            dmarc: dmarc(DmarcResult::TempError, "x.example", DmarcPolicy::None),
            ..AuthOutcome::default()
        };
        assert_eq!(unsigned.summary(), "dkim=none dmarc=temperror");
    }

    #[test]
    fn spf_checks_the_sender_or_the_helo_name() {
        let i = spf_identity(Some("mail.example.net"), "alice@Example.ORG.");
        assert_eq!(
            (i.scope, i.domain.as_str()),
            (SpfScope::MailFrom, "example.org")
        );
        let i = spf_identity(Some("Mail.Example.NET"), "");
        assert_eq!(
            (i.scope, i.domain.as_str()),
            (SpfScope::Helo, "mail.example.net")
        );
        let i = spf_identity(None, "");
        assert_eq!((i.scope, i.domain.as_str()), (SpfScope::Helo, ""));
        let i = spf_identity(Some("h.example"), "postmaster");
        assert_eq!((i.scope, i.domain.as_str()), (SpfScope::MailFrom, ""));
        let i = spf_identity(None, "a@bücher.example");
        assert_eq!(i.domain, "xn--bcher-kva.example");
    }

    #[test]
    fn only_domains_are_looked_up() {
        for good in [
            "example.org",
            "a-b.example",
            "_spf.example.org",
            "xn--bcher-kva.example",
        ] {
            assert!(is_domain(good), "{good}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}example", "abcdefghi.".repeat(26));
        for bad in [
            "",
            "localhost",
            "[192.0.2.1]",
            "192.0.2.1]",
            "a..example",
            ".example",
            "exa mple.org",
            "example.org;x",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
    }

    #[test]
    fn spf_records_are_told_from_other_txt_records() {
        for yes in ["v=spf1", "v=spf1 -all", "V=SPF1 ip4:192.0.2.1 -all"] {
            assert!(is_spf_record(yes), "{yes}");
        }
        for no in [
            "",
            "v=spf",
            "v=spf10 -all",
            "v=spf1-all",
            " v=spf1 -all",
            "spf1",
            "x v=spf1",
        ] {
            assert!(!is_spf_record(no), "{no}");
        }
    }

    #[test]
    fn dmarc_needs_exactly_one_from_domain() {
        let froms = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            author_domain(&froms(&["a@example.org"])).unwrap(),
            "example.org"
        );
        assert_eq!(
            author_domain(&froms(&["a@example.org", "b@Example.org"])).unwrap(),
            "example.org"
        );
        for bad in [
            &[][..],
            &["nodomain"][..],
            &["a@"][..],
            &["a@[192.0.2.1]"][..],
            &["a@example.org", "b@example.net"][..],
            &["a@example.org", "b"][..],
        ] {
            let refused = author_domain(&froms(bad)).unwrap_err();
            assert_eq!(refused.result, DmarcResult::PermError, "{bad:?}");
            assert_eq!(refused.from_domain, "");
            assert_eq!(refused.policy, DmarcPolicy::None);
        }
    }

    #[test]
    fn dkim_results_follow_rfc_8601() {
        use mail_auth::DkimResult as M;
        use mail_auth::Error;
        let cases = [
            (M::Pass, DkimResult::Pass),
            (M::Fail(Error::ParseError), DkimResult::Fail),
            (
                M::Neutral(Error::Dkim(DkimError::FailedBodyHashMatch)),
                DkimResult::Fail,
            ),
            (
                M::Neutral(Error::Dkim(DkimError::SignatureExpired)),
                DkimResult::Policy,
            ),
            (
                M::Neutral(Error::Dkim(DkimError::SignatureLength)),
                DkimResult::Policy,
            ),
            (
                M::Neutral(Error::Dkim(DkimError::UnsupportedVersion)),
                DkimResult::Neutral,
            ),
            (M::TempError(Error::ParseError), DkimResult::TempError),
            (M::PermError(Error::ParseError), DkimResult::PermError),
            (M::None, DkimResult::None),
        ];
        for (theirs, ours) in cases {
            assert_eq!(dkim_result(&theirs), ours, "{theirs:?}");
        }
    }

    #[test]
    fn nothing_asked_nothing_looked_up() {
        // A server that does not exist: any lookup would fail, and the
        // checks below must not need one.
        let config = DnsConfig {
            nameservers: vec!["127.0.0.1:1".into()],
            timeout: Duration::from_millis(200),
            attempts: 1,
            max_cache_ttl: Duration::from_secs(60),
        };
        let checks = SenderChecks::new(&config, Duration::from_secs(1)).unwrap();
        let input = Input {
            client_ip: None,
            helo: Some("client.example.org"),
            mail_from: "a@example.org",
            message: b"From: a@example.org\r\n\r\nbody\r\n",
            hostname: "mx.example.net",
        };
        assert_eq!(checks.check(&input, false, false), AuthOutcome::default());
        let local = checks.check(&input, true, false);
        assert_eq!(
            local.spf,
            spf(SpfResult::None, SpfScope::MailFrom, "example.org")
        );
        let literal = Input {
            client_ip: Some("192.0.2.1".parse().unwrap()),
            helo: Some("[192.0.2.1]"),
            mail_from: "",
            ..input
        };
        assert_eq!(
            checks.check(&literal, true, false).spf,
            spf(SpfResult::None, SpfScope::Helo, "[192.0.2.1]")
        );
    }
}
