//! postern-deliverer(8) without a relay: MX hosts found through a private
//! DNS server (dnsmasq, or a scripted one that fails), test SMTP servers
//! on several loopback addresses sharing one port, STARTTLS at each level,
//! and DSN parameters passed to a next hop that offers DSN.

mod util;

use std::sync::atomic::Ordering;
use std::time::Duration;

use postern::mail::job::RcptStatus;
use util::dns::{Behaviour, Dnsmasq, FakeDns, Records, Zone};
use util::smtp::{Script, Server};
use util::{DELIVERER, RECEIVER, Site, message};

/// A free port on every loopback address we use (127.0.0.2 ... .9).
fn shared_port() -> u16 {
    'next: for _ in 0..50 {
        let port = util::closed_port();
        for last in 2..10 {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
                || std::net::TcpListener::bind((format!("127.0.0.{last}").as_str(), port)).is_err()
            {
                continue 'next;
            }
        }
        return port;
    }
    panic!("no port free on every loopback address");
}

/// A site that delivers straight to MX hosts on `port`, asking `dns`.
fn mx_site(port: u16, nameserver: &str) -> Site {
    mx_site_with(port, nameserver, "data_timeout = \"3s\"")
}

fn mx_site_with(port: u16, nameserver: &str, extra: &str) -> Site {
    let site = Site::new(util::closed_port());
    site.configure(
        "deliverer",
        &format!(
            "transport = \"mx\"\nmx_port = {port}\nconnect_timeout = \"2s\"\n\
             command_timeout = \"3s\"\ndeadline = \"20s\"\n{extra}"
        ),
    );
    site.configure(
        "dns",
        &format!("nameservers = [\"{nameserver}\"]\ntimeout = \"1s\"\nattempts = 1"),
    );
    site
}

fn zone() -> Zone {
    Zone::new()
        .local("mx.test")
        .mx("mx.test", "mx1.mx.test", 10)
        .mx("mx.test", "mx2.mx.test", 20)
        .host("mx1.mx.test", "127.0.0.2")
        .host("mx2.mx.test", "127.0.0.3")
        .host("plain.mx.test", "127.0.0.4")
}

fn send(site: &Site, rcpts: &[&str], msg: &[u8]) -> util::Output {
    let mut args = vec!["-f", "alice@example.org", "--"];
    args.extend_from_slice(rcpts);
    let r = site.run(RECEIVER, &args, msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    site.run(DELIVERER, &[], &r.stdout)
}

#[test]
fn mx_hosts_are_tried_by_preference_and_the_next_one_takes_over() {
    let dns = Dnsmasq::start(&zone());
    let port = shared_port();
    // mx1 first answers nothing at all (refused), then 421 at the greeting.
    let mx2 = Server::start_at("127.0.0.3", port, Script::default());
    let site = mx_site(port, &dns.nameserver());
    let out = send(
        &site,
        &["bob@mx.test", "carol@MX.test"],
        &message("mx", "hello"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = mx2.received();
    assert_eq!(got.len(), 1, "one connection for the domain's recipients");
    assert_eq!(got[0].rcpts, ["bob@mx.test", "carol@MX.test"]);
    let log = site.log();
    assert!(
        log.contains("relay=mx1.mx.test[127.0.0.2]:")
            && log.contains("failed,mx2.mx.test[127.0.0.3]"),
        "{log}"
    );
    assert!(log.contains("delivered=2 deferred=0 failed=0"), "{log}");

    let mx1 = Server::start_at(
        "127.0.0.2",
        port,
        Script {
            greeting: Some("421 4.3.2 mx1 is shutting down".into()),
            ..Script::default()
        },
    );
    let out = send(&site, &["dave@mx.test"], &message("mx2", "again"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(mx1.connections.load(Ordering::SeqCst), 1);
    assert_eq!(mx2.received().len(), 2);
}

#[test]
fn a_domain_without_mx_is_its_own_host_and_one_without_either_fails() {
    let dns = Dnsmasq::start(&zone());
    let port = shared_port();
    let host = Server::start_at("127.0.0.4", port, Script::default());
    let site = mx_site(port, &dns.nameserver());
    let out = send(&site, &["bob@plain.mx.test"], &message("implicit", "mx"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(host.received().len(), 1);

    // No MX and no address: a permanent failure, queued for the bouncer.
    let out = send(&site, &["bob@nowhere.mx.test"], &message("none", "x"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bounced = site.spooled("bounce");
    assert_eq!(bounced.len(), 1);
    let r = &bounced[0].envelope.recipients[0];
    assert_eq!(r.status.to_string(), "failed 5.4.4");
    assert!(
        r.diagnostic
            .as_deref()
            .unwrap_or("")
            .contains("no MX and no address"),
        "{r:?}"
    );
}

#[test]
fn null_mx_fails_and_a_failing_name_server_defers() {
    let port = shared_port();
    let dns = FakeDns::start(Behaviour::Records(Records::new(60).mx("null.test", 0, ".")));
    let site = mx_site(port, &dns.nameserver());
    let out = send(&site, &["bob@null.test"], &message("null", "mx"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bounced = site.spooled("bounce");
    assert_eq!(bounced.len(), 1);
    assert_eq!(
        bounced[0].envelope.recipients[0].status.to_string(),
        "failed 5.1.10"
    );

    for behaviour in [Behaviour::ServFail, Behaviour::Silent, Behaviour::Garbage] {
        dns.set(behaviour.clone());
        let before = site.spooled("deferred").len();
        let out = send(&site, &["bob@null.test"], &message("dns", "down"));
        assert_eq!(out.code, 0, "{behaviour:?}: {}", out.stderr);
        let deferred = site.spooled("deferred");
        assert_eq!(deferred.len(), before + 1, "{behaviour:?}");
        for j in &deferred {
            let status = j.envelope.recipients[0].status.to_string();
            assert_eq!(status, "deferred 4.4.3", "{behaviour:?}");
        }
    }
}

#[test]
fn starttls_when_offered_and_plain_text_after_a_broken_handshake() {
    let dns = Dnsmasq::start(&zone());
    let port = shared_port();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = util::tls::self_signed(dir.path(), "not-the-host.example");
    let mx1 = Server::start_at(
        "127.0.0.2",
        port,
        Script {
            tls: Some(util::tls::server_config(&cert, &key)),
            ..Script::default()
        },
    );
    let site = mx_site(port, &dns.nameserver());
    let out = send(&site, &["bob@mx.test"], &message("tls", "secret"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = mx1.received();
    assert!(got[0].tls, "the message went over TLS");
    assert!(site.log().contains("tls=encrypted"), "{}", site.log());
    drop(mx1);

    let broken = Server::start_at(
        "127.0.0.2",
        port,
        Script {
            broken_tls: true,
            ..Script::default()
        },
    );
    let out = send(&site, &["bob@mx.test"], &message("plain", "after all"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(broken.connections.load(Ordering::SeqCst), 2);
    let got = broken.received();
    assert_eq!(got.len(), 1);
    assert!(!got[0].tls);
}

#[test]
fn required_tls_is_verified_or_the_mail_waits() {
    let dns = Dnsmasq::start(&zone());
    let port = shared_port();
    let dir = tempfile::tempdir().unwrap();
    let ca = util::tls::Ca::new(dir.path());
    let (good, good_key) = ca.issue("mx1.mx.test");
    let (wrong, wrong_key) = ca.issue("mx9.elsewhere.test");
    let site = mx_site(port, &dns.nameserver());
    site.configure(
        "deliverer",
        &format!(
            "tls = \"verify\"\ntls_ca_file = \"{}\"",
            ca.ca_file().display()
        ),
    );
    let mx1 = Server::start_at(
        "127.0.0.2",
        port,
        Script {
            tls: Some(util::tls::server_config(&good, &good_key)),
            ..Script::default()
        },
    );
    let out = send(&site, &["bob@mx.test"], &message("verified", "x"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(mx1.received()[0].tls);
    assert!(site.log().contains("tls=verified"), "{}", site.log());
    drop(mx1);

    // A certificate for another name, then no STARTTLS at all: nothing is
    // sent in the clear, the recipient waits with 4.7.5.
    for script in [
        Script {
            tls: Some(util::tls::server_config(&wrong, &wrong_key)),
            ..Script::default()
        },
        Script::default(),
    ] {
        let mx1 = Server::start_at("127.0.0.2", port, script);
        let before = site.spooled("deferred").len();
        let out = send(&site, &["bob@mx.test"], &message("unverified", "x"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(mx1.received().is_empty());
        let deferred = site.spooled("deferred");
        assert_eq!(deferred.len(), before + 1);
        let statuses: Vec<String> = deferred
            .iter()
            .map(|j| j.envelope.recipients[0].status.to_string())
            .collect();
        assert!(
            statuses.iter().all(|s| s == "deferred 4.7.5"),
            "{statuses:?}"
        );
    }
}

/// A job whose envelope asks for DSNs (as an SMTP content filter would
/// record them), made by editing the receiver's output.
fn job_with_dsn(site: &Site, rcpts: &[&str], msg: &[u8]) -> Vec<u8> {
    let mut args = vec!["-f", "alice@example.org", "--"];
    args.extend_from_slice(rcpts);
    let r = site.run(RECEIVER, &args, msg);
    let text = String::from_utf8(r.stdout).unwrap();
    let (head, body) = text.split_once("\n\n").unwrap();
    let mut out = String::new();
    for line in head.lines() {
        if line.starts_with("recipient: ") && !out.contains("recipient: ") {
            out.push_str("envid: QQ314159 x=y\nret: HDRS\n");
        }
        out.push_str(line);
        out.push('\n');
        if let Some(a) = line.strip_prefix("recipient: ") {
            let a = a.trim_matches(['<', '>']);
            out.push_str(&format!("  orcpt: rfc822;{a}\n  notify: SUCCESS,FAILURE\n"));
        }
    }
    format!("{out}\n{body}").into_bytes()
}

#[test]
fn each_recipient_gets_its_own_result_and_dsn_parameters_pass_on() {
    let dns = Dnsmasq::start(&zone());
    let port = shared_port();
    let mut script = Script {
        extensions: vec!["DSN".into(), "SIZE 10000000".into()],
        ..Script::default()
    };
    script.rcpt_replies.insert(
        "carol@mx.test".into(),
        "550 5.1.1 <carol@mx.test>: Recipient address rejected: User unknown".into(),
    );
    let mx1 = Server::start_at("127.0.0.2", port, script);
    let site = mx_site(port, &dns.nameserver());
    let job = job_with_dsn(
        &site,
        &["bob@mx.test", "carol@mx.test", "dave@mx.test"],
        &message("dsn", "x"),
    );
    let out = site.run(DELIVERER, &[], &job);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = mx1.received();
    assert_eq!(got[0].rcpts, ["bob@mx.test", "dave@mx.test"]);
    let mail = &got[0].commands[0];
    assert!(
        mail.contains(" RET=HDRS") && mail.contains(" ENVID=QQ314159+20x+3Dy"),
        "{mail}"
    );
    assert!(mail.contains(" SIZE="), "{mail}");
    assert!(
        got[0].commands[1].ends_with("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@mx.test"),
        "{:?}",
        got[0].commands
    );
    // The refused one waits for the bouncer, with where and when; the
    // others were handed to a hop that reports success itself.
    let bounced = site.spooled("bounce");
    assert_eq!(bounced.len(), 1);
    let r = &bounced[0].envelope.recipients[0];
    assert_eq!(r.address.as_str(), "carol@mx.test");
    assert!(matches!(r.status, RcptStatus::Failed { .. }));
    assert_eq!(r.remote_mta.as_deref(), Some("dns; mx1.mx.test"));
    assert!(r.last_attempt.is_some());
    assert!(
        r.diagnostic
            .as_deref()
            .unwrap()
            .starts_with("smtp; 550 5.1.1")
    );
}

#[test]
fn a_slow_or_vanishing_server_leaves_the_mail_deferred() {
    let dns = Dnsmasq::start(&zone());
    let port = shared_port();
    let site = mx_site_with(port, &dns.nameserver(), "data_timeout = \"1s\"");
    for script in [
        Script {
            data_delay: Some(Duration::from_secs(3)),
            ..Script::default()
        },
        Script {
            drop_in_data: true,
            ..Script::default()
        },
    ] {
        let mx = Server::start_at("127.0.0.2", port, script);
        let before = site.spooled("deferred").len();
        let out = send(
            &site,
            &["bob@mx.test"],
            &message("slow", &"line\n".repeat(100)),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(site.spooled("deferred").len(), before + 1);
        drop(mx);
    }
}

/// A site whose MX hosts for mx.test present certificates of a private
/// CA, with an MTA-STS policy served over HTTPS by `policy`.
fn sts_site(port: u16, dns: &Dnsmasq, ca: &util::tls::Ca, https: &util::https::Https) -> Site {
    let site = mx_site(port, &dns.nameserver());
    site.configure(
        "deliverer",
        &format!("tls_ca_file = \"{}\"", ca.ca_file().display()),
    );
    site.configure(
        "mta_sts",
        &format!(
            "ca_file = \"{}\"\nconnect_to = \"127.0.0.1:{}\"\ntimeout = \"3s\"",
            ca.ca_file().display(),
            https.port
        ),
    );
    site
}

#[test]
fn an_enforced_mta_sts_policy_picks_the_hosts_and_requires_verified_tls() {
    let dns = Dnsmasq::start(&zone().txt("_mta-sts.mx.test", &["v=STSv1; id=20261202"]));
    let port = shared_port();
    let dir = tempfile::tempdir().unwrap();
    let ca = util::tls::Ca::new(dir.path());
    let (web, web_key) = ca.issue("mta-sts.mx.test");
    let https = util::https::Https::start(
        util::tls::server_config(&web, &web_key),
        "version: STSv1\nmode: enforce\nmx: mx2.mx.test\nmax_age: 86400\n",
    );
    let (mx1_cert, mx1_key) = ca.issue("mx1.mx.test");
    let (mx2_cert, mx2_key) = ca.issue("mx2.mx.test");
    let tls = |c: &std::path::Path, k: &std::path::Path| Script {
        tls: Some(util::tls::server_config(c, k)),
        ..Script::default()
    };
    let mx1 = Server::start_at("127.0.0.2", port, tls(&mx1_cert, &mx1_key));
    let mx2 = Server::start_at("127.0.0.3", port, tls(&mx2_cert, &mx2_key));
    let site = sts_site(port, &dns, &ca, &https);
    let out = send(&site, &["bob@mx.test"], &message("sts", "enforced"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        mx1.connections.load(Ordering::SeqCst),
        0,
        "mx1 is not in the policy"
    );
    assert!(mx2.received()[0].tls);
    let log = site.log();
    assert!(
        log.contains("mx2.mx.test[127.0.0.3]") && log.contains("tls=verified"),
        "{log}"
    );
    assert!(
        log.contains("MTA-STS mx.test: MX host mx1.mx.test is not in the policy; not used"),
        "{log}"
    );
    // The policy is cached, sealed, in the spool: no second fetch.
    let cache = std::fs::read(site.path().join("spool/mta-sts.cache")).unwrap();
    assert!(!String::from_utf8_lossy(&cache).contains("mx.test"));
    let out = send(&site, &["carol@mx.test"], &message("sts2", "cached"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(https.requests.load(Ordering::SeqCst), 1);
    drop(mx2);

    // mx2 now shows a certificate for another name: nothing is sent.
    let (other, other_key) = ca.issue("other.example");
    let mx2 = Server::start_at("127.0.0.3", port, tls(&other, &other_key));
    let out = send(&site, &["dave@mx.test"], &message("sts3", "refused"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(mx2.received().is_empty());
    let deferred = site.spooled("deferred");
    assert_eq!(deferred.len(), 1);
    assert_eq!(
        deferred[0].envelope.recipients[0].status.to_string(),
        "deferred 4.7.5"
    );
}

#[test]
fn a_testing_mta_sts_policy_only_reports() {
    let dns = Dnsmasq::start(&zone().txt("_mta-sts.mx.test", &["v=STSv1; id=7"]));
    let port = shared_port();
    let dir = tempfile::tempdir().unwrap();
    let ca = util::tls::Ca::new(dir.path());
    let (web, web_key) = ca.issue("mta-sts.mx.test");
    let https = util::https::Https::start(
        util::tls::server_config(&web, &web_key),
        "version: STSv1\nmode: testing\nmx: mx2.mx.test\nmax_age: 86400\n",
    );
    let mx1 = Server::start_at("127.0.0.2", port, Script::default());
    let site = sts_site(port, &dns, &ca, &https);
    let out = send(&site, &["bob@mx.test"], &message("testing", "x"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(mx1.received().len(), 1, "testing mode changes nothing");
    assert!(
        site.log().contains("(testing mode: used)"),
        "{}",
        site.log()
    );
}

/// The zone, with a sender domain whose MX (127.0.0.5) takes the DSNs.
fn zone_with_sender() -> Zone {
    zone()
        .local("sender.test")
        .mx("sender.test", "mx.sender.test", 10)
        .host("mx.sender.test", "127.0.0.5")
}

/// Three recipients: bob fine, carol greylisted, dave unknown; alice
/// (the sender) has her own MX host.
fn greylist_site(port: u16, dns: &Dnsmasq) -> (Site, Server, Server) {
    let mut script = Script {
        greylist: ["carol@mx.test".to_string()].into(),
        ..Script::default()
    };
    script.rcpt_replies.insert(
        "dave@mx.test".into(),
        "550 5.1.1 <dave@mx.test>: Recipient address rejected: User unknown in virtual mailbox table"
            .into(),
    );
    let mx = Server::start_at("127.0.0.2", port, script);
    let sender_mx = Server::start_at("127.0.0.5", port, Script::default());
    (mx_site(port, &dns.nameserver()), mx, sender_mx)
}

/// From alice@sender.test to bob, carol and dave@mx.test, through the
/// receiver and a pipe-mode deliverer.
fn send_three(site: &Site, msg: &[u8]) {
    let rcpts = ["bob@mx.test", "carol@mx.test", "dave@mx.test"];
    let mut args = vec!["-f", "alice@sender.test", "--"];
    args.extend_from_slice(&rcpts);
    let r = site.run(RECEIVER, &args, msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = site.run(DELIVERER, &[], &r.stdout);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

fn assert_all_told(mx: &Server, sender_mx: &Server, site: &Site) {
    let got = mx.received();
    let mut delivered: Vec<String> = got.iter().flat_map(|m| m.rcpts.clone()).collect();
    delivered.sort();
    assert_eq!(
        delivered,
        ["bob@mx.test", "carol@mx.test"],
        "one delivery each"
    );
    let dsns = sender_mx.received();
    assert_eq!(dsns.len(), 1, "one DSN");
    assert_eq!(dsns[0].mail_from, "<>");
    assert_eq!(dsns[0].rcpts, ["alice@sender.test"]);
    let text = String::from_utf8_lossy(&dsns[0].data);
    assert!(text.contains("report-type=\"delivery-status\""), "{text}");
    assert!(
        text.contains("Final-Recipient: rfc822; dave@mx.test"),
        "{text}"
    );
    assert!(!text.contains("Final-Recipient: rfc822; carol"), "{text}");
    for q in ["deferred", "active", "bounce"] {
        assert!(site.queue(q).is_empty(), "{q}/ is not empty");
    }
}

#[test]
fn greylisted_unknown_and_fine_end_delivered_once_and_bounced_once() {
    let dns = Dnsmasq::start(&zone_with_sender());
    let port = shared_port();
    let (site, mx, sender_mx) = greylist_site(port, &dns);
    send_three(&site, &message("three", "one of each"));
    assert_eq!(mx.received().len(), 1);
    assert_eq!(site.spooled("deferred").len(), 1);
    assert_eq!(
        site.spooled("deferred")[0].envelope.recipients[0]
            .category
            .as_deref(),
        Some("greylist")
    );
    assert_eq!(site.spooled("bounce").len(), 1);
    // One queue run: the bouncer's notice and the retry.
    let out = site.run(DELIVERER, &["--run-queue", "--flush"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_all_told(&mx, &sender_mx, &site);
    // Another run changes nothing.
    let out = site.run(DELIVERER, &["--run-queue", "--flush"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_all_told(&mx, &sender_mx, &site);
}

/// A daemon killed when the test ends, whatever happens.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_daemon_retries_on_schedule_and_stops_on_sigterm() {
    let dns = Dnsmasq::start(&zone_with_sender());
    let port = shared_port();
    let (site, mx, sender_mx) = greylist_site(port, &dns);
    site.configure(
        "queue",
        "minimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\nqueue_run_delay = \"2s\"",
    );
    let mut daemon = Daemon(
        std::process::Command::new(DELIVERER)
            .arg("--daemon")
            .env("POSTERN_CONFIG", &site.config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    send_three(&site, &message("daemon", "on schedule"));
    // A reload on the way changes nothing.
    let pid = daemon.0.id().to_string();
    let kill = |sig: &str| {
        let s = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(s.success());
    };
    kill("-HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sender_mx.received().is_empty()
        || site.queue("deferred").len() + site.queue("active").len() > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not done in 30 s: {}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill("-TERM");
    let status = daemon.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_all_told(&mx, &sender_mx, &site);
    let log = site.log();
    assert!(log.contains("configuration read again (SIGHUP)"), "{log}");
    assert!(
        log.contains("queue daemon stopped (SIGTERM or SIGINT)"),
        "{log}"
    );
}
