//! WKD lookups for real: the HTTPS client (ureq + rustls) against the
//! local server of `https/` (its WKD hosts), every name connected to it
//! through `wkd.connect_to`; and the system resolver for a name that
//! does not exist (`.invalid`, RFC 2606). Each test bounds its time.

mod https;

use std::time::{Duration, Instant};

use https::{PolicyServer, WKD_HASH, wkd_key};
use postern::config::WkdConfig;
use postern::encryptor::wkd::{KeyDirectory, Lookup, WkdClient, WkdError};

/// Every name the server's certificate holds.
const NAMES: [&str; 14] = [
    "openpgpkey.wkd.test",
    "wkd.test",
    "empty.test",
    "direct.test",
    "openpgpkey.direct.test",
    "openpgpkey.redirect.test",
    "openpgpkey.loop.test",
    "openpgpkey.plain.test",
    "openpgpkey.slow.test",
    "openpgpkey.huge.test",
    "openpgpkey.stream.test",
    "openpgpkey.empty.test",
    "openpgpkey.err.test",
    "openpgpkey.missing.test",
];

fn server() -> PolicyServer {
    PolicyServer::start(&NAMES)
}

/// Trusting the server's certificate, connecting to it for every name,
/// loopback allowed.
fn config(server: &PolicyServer) -> WkdConfig {
    WkdConfig {
        timeout: Duration::from_secs(10),
        ca_file: Some(server.cert.clone()),
        connect_to: Some(server.address()),
        allow_private_addresses: true,
        ..WkdConfig::default()
    }
}

fn client(config: &WkdConfig) -> WkdClient {
    WkdClient::new(config).expect("a WKD client")
}

/// Looks `local@domain` up; checks it took less than `within`.
fn timed(client: &WkdClient, local: &str, domain: &str, within: Duration) -> Lookup {
    let start = Instant::now();
    let lookup = client.lookup(local, domain);
    assert!(
        start.elapsed() < within,
        "{local}@{domain} took {:?} (at most {within:?})",
        start.elapsed()
    );
    lookup
}

fn unavailable(lookup: &Lookup) -> &str {
    match lookup {
        Lookup::Unavailable(why) => {
            assert!(!why.contains("Joe.Doe") && !why.contains('@'), "{why}");
            why
        }
        other => panic!("not Unavailable: {other:?}"),
    }
}

const QUICK: Duration = Duration::from_secs(5);

#[test]
fn the_advanced_method_finds_the_key() {
    let server = server();
    let lookup = timed(&client(&config(&server)), "Joe.Doe", "WKD.test", QUICK);
    assert_eq!(lookup, Lookup::Found(wkd_key()));
    assert_eq!(
        server.log(),
        [format!(
            "openpgpkey.wkd.test /.well-known/openpgpkey/wkd.test/hu/{WKD_HASH}?l=Joe.Doe"
        )]
    );
}

#[test]
fn another_local_part_is_not_found_by_either_method() {
    let server = server();
    let lookup = timed(&client(&config(&server)), "someone+else", "wkd.test", QUICK);
    assert_eq!(lookup, Lookup::NotFound);
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].starts_with("openpgpkey.wkd.test /.well-known/openpgpkey/wkd.test/hu/"));
    assert!(log[0].ends_with("?l=someone%2Belse"), "{log:?}");
    assert!(log[1].starts_with("wkd.test /.well-known/openpgpkey/hu/"));
}

#[test]
fn a_404_at_the_advanced_host_falls_back_to_the_direct_method() {
    let server = server();
    let lookup = timed(&client(&config(&server)), "Joe.Doe", "direct.test", QUICK);
    assert_eq!(lookup, Lookup::Found(wkd_key()));
    assert_eq!(
        server.log(),
        [
            format!(
                "openpgpkey.direct.test /.well-known/openpgpkey/direct.test/hu/{WKD_HASH}?l=Joe.Doe"
            ),
            format!("direct.test /.well-known/openpgpkey/hu/{WKD_HASH}?l=Joe.Doe"),
        ]
    );
}

#[test]
fn a_host_that_does_not_exist_in_dns_is_not_found() {
    // No connect_to: the system resolver, which never resolves `.invalid`.
    let config = WkdConfig {
        timeout: Duration::from_secs(5),
        ..WkdConfig::default()
    };
    let lookup = timed(
        &client(&config),
        "Joe.Doe",
        "no-such-host.invalid",
        Duration::from_secs(6),
    );
    assert_eq!(
        lookup,
        Lookup::NotFound,
        "both openpgpkey.no-such-host.invalid and no-such-host.invalid should be \
         'no such host' (is the resolver answering?)"
    );
}

#[test]
fn one_redirect_is_followed_to_the_key() {
    let server = server();
    let lookup = timed(&client(&config(&server)), "Joe.Doe", "redirect.test", QUICK);
    assert_eq!(lookup, Lookup::Found(wkd_key()));
    assert_eq!(server.requests_for("openpgpkey.redirect.test"), 1);
    assert_eq!(server.requests_for("openpgpkey.wkd.test"), 1);
    assert_eq!(server.requests_for("redirect.test"), 0, "no direct method");
}

#[test]
fn a_redirect_loop_stops_at_max_redirects() {
    let server = server();
    let lookup = timed(&client(&config(&server)), "Joe.Doe", "loop.test", QUICK);
    assert_eq!(
        unavailable(&lookup),
        "openpgpkey.loop.test: too many redirects"
    );
    // The first request and three redirects.
    assert_eq!(server.requests_for("openpgpkey.loop.test"), 4);
    assert_eq!(server.requests_for("loop.test"), 0);

    let none = WkdConfig {
        max_redirects: 0,
        ..config(&server)
    };
    let lookup = timed(&client(&none), "Joe.Doe", "redirect.test", QUICK);
    assert_eq!(
        unavailable(&lookup),
        "openpgpkey.redirect.test: the server answered HTTP 301"
    );
}

#[test]
fn a_redirect_to_plain_http_is_refused() {
    let server = server();
    let lookup = timed(&client(&config(&server)), "Joe.Doe", "plain.test", QUICK);
    assert_eq!(
        unavailable(&lookup),
        "openpgpkey.plain.test: redirected to a URL that is not https"
    );
    assert_eq!(server.requests_for("openpgpkey.wkd.test"), 0);
}

#[test]
fn a_slow_server_is_unavailable_within_the_timeout() {
    let server = server();
    let config = WkdConfig {
        timeout: Duration::from_secs(1),
        ..config(&server)
    };
    let lookup = timed(
        &client(&config),
        "Joe.Doe",
        "slow.test",
        Duration::from_secs(2),
    );
    assert_eq!(
        unavailable(&lookup),
        "openpgpkey.slow.test: no answer within 1s"
    );
    assert_eq!(server.requests_for("slow.test"), 0, "no direct method");
}

#[test]
fn a_body_over_max_size_is_refused_without_reading_it_all() {
    let server = server();
    let config = WkdConfig {
        max_size: 64 * 1024,
        ..config(&server)
    };
    for domain in ["huge.test", "stream.test"] {
        let lookup = timed(&client(&config), "Joe.Doe", domain, QUICK);
        assert_eq!(
            unavailable(&lookup),
            format!("openpgpkey.{domain}: the key is larger than 65536 bytes")
        );
        let host = format!("openpgpkey.{domain}");
        let line = server
            .wait_for(&format!("aborted {host}"), QUICK)
            .or_else(|| server.wait_for(&format!("sent {host}"), Duration::ZERO));
        assert!(
            line.as_deref().is_some_and(|l| l.starts_with("aborted")),
            "the server sent the whole body: {line:?}"
        );
    }
}

#[test]
fn an_empty_key_file_is_not_found() {
    let server = server();
    let lookup = timed(&client(&config(&server)), "Joe.Doe", "empty.test", QUICK);
    assert_eq!(lookup, Lookup::NotFound);
    // Empty counts as "no key" there, so the direct method was asked.
    assert_eq!(server.requests_for("empty.test"), 1);
}

#[test]
fn a_server_error_is_unavailable_and_not_masked_by_the_direct_method() {
    let server = server();
    let lookup = timed(&client(&config(&server)), "Joe.Doe", "err.test", QUICK);
    assert_eq!(
        unavailable(&lookup),
        "openpgpkey.err.test: the server answered HTTP 500"
    );
    assert_eq!(server.requests_for("err.test"), 0);
}

#[test]
fn loopback_is_refused_unless_private_addresses_are_allowed() {
    let server = server();
    let refused = WkdConfig {
        allow_private_addresses: false,
        ..config(&server)
    };
    let lookup = timed(&client(&refused), "Joe.Doe", "wkd.test", QUICK);
    assert_eq!(
        unavailable(&lookup),
        "openpgpkey.wkd.test: resolves to a private address"
    );
    assert!(server.log().is_empty(), "no connection was made");
    let allowed = config(&server);
    let lookup = timed(&client(&allowed), "Joe.Doe", "wkd.test", QUICK);
    assert_eq!(lookup, Lookup::Found(wkd_key()));
}

#[test]
fn a_certificate_that_is_not_trusted_is_unavailable() {
    let server = server();
    let untrusted = WkdConfig {
        ca_file: None,
        ..config(&server)
    };
    let lookup = timed(&client(&untrusted), "Joe.Doe", "wkd.test", QUICK);
    let why = unavailable(&lookup);
    assert!(
        why.starts_with("openpgpkey.wkd.test: the TLS handshake failed"),
        "{why}"
    );
    assert_eq!(server.requests_for("wkd.test"), 0, "no direct method");
}

#[test]
fn bad_settings_are_errors_that_name_them() {
    let config = WkdConfig {
        connect_to: Some("localhost".into()),
        ..WkdConfig::default()
    };
    assert_eq!(
        WkdClient::new(&config).map(|_| ()),
        Err(WkdError::ConnectTo("localhost".into()))
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("empty.pem");
    std::fs::write(&path, "").expect("write");
    let config = WkdConfig {
        ca_file: Some(path.clone()),
        ..WkdConfig::default()
    };
    let err = WkdClient::new(&config).map(|_| ()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("wkd.ca_file {}: holds no PEM certificate", path.display())
    );
}
