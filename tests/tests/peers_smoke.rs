//! The peer harness gives working FTPS servers: real `curl` lists, uploads and downloads
//! against vsftpd (explicit, implicit, TLS 1.2 / 1.3) and pyftpdlib. A missing server or
//! client program fails these tests; scripts/install-peers.sh installs them.

use std::path::Path;
use std::time::Duration;

use ftps_tests::peers::{Curl, Endpoint, Pyftpdlib, TlsMode, TlsVersions, Vsftpd};

/// A payload that is not all one byte and spans several TLS records.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Uploads a file with curl, checks it landed in the server's root byte for byte, lists it,
/// and downloads it back.
fn round_trip(endpoint: &Endpoint, curl: &Curl<'_>) {
    let local_dir = tempfile::tempdir().unwrap();
    let local = local_dir.path().join("upload.bin");
    let data = payload(100_000);
    std::fs::write(&local, &data).unwrap();

    curl.upload(&local, "upload.bin").unwrap();
    assert_eq!(
        std::fs::read(endpoint.root_dir.join("upload.bin")).unwrap(),
        data
    );

    let listing = curl.list().unwrap();
    assert!(listing.contains("upload.bin"), "listing: {listing}");

    std::fs::write(endpoint.root_dir.join("served.bin"), &data[..4321]).unwrap();
    assert_eq!(curl.download("served.bin").unwrap(), &data[..4321]);
}

/// Whether vsftpd's `debug_ssl` log shows a resumed TLS session of this version.
fn log_shows_resumed(log: &str, version: &str) -> bool {
    log.lines().any(|line| {
        line.contains(&format!("SSL version: {version},")) && line.contains(", reused,")
    })
}

/// Runs curl (with `--verbose`) expecting failure; returns its trace, which holds the
/// server's replies as `< NNN text` lines.
fn failed_run_replies(curl: &Curl<'_>, url: &str) -> String {
    let output = curl.run(url, &[]).unwrap();
    let trace = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "curl should have failed:\n{trace}"
    );
    trace
}

fn assert_process_gone(pid: u32) {
    // Reaped processes have no /proc entry; zombies would still have one.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still exists"
    );
}

#[test]
fn vsftpd_explicit_tls12_round_trip() {
    let server = Vsftpd::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    let endpoint = server.endpoint();
    assert_eq!(endpoint.tls_mode, TlsMode::Explicit);
    round_trip(endpoint, &Curl::new(endpoint));
    let log = server.log();
    // require_ssl_reuse is on, so the data connections resumed the control session.
    assert!(log_shows_resumed(&log, "TLSv1.2"), "{log}");
    assert!(!log.contains("SSL version: TLSv1.3"), "{log}");
}

#[test]
fn vsftpd_tls12_only_refuses_a_tls13_only_client() {
    let server = Vsftpd::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    let curl = Curl::new(server.endpoint()).arg("--tlsv1.3");
    let error = curl
        .list()
        .expect_err("a TLS 1.3-only client must be refused");
    assert!(error.to_string().contains("protocol version"), "{error}");
}

#[test]
fn vsftpd_explicit_tls13_round_trip_resumes_on_data() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    round_trip(endpoint, &Curl::new(endpoint).arg("--tlsv1.3"));
    // require_ssl_reuse is on, so each data connection above resumed the control session.
    let log = server.log();
    assert!(
        log.contains("SSL version: TLSv1.3, SSL cipher: TLS_AES_256_GCM_SHA384, reused"),
        "{log}"
    );
}

#[test]
fn vsftpd_implicit_round_trip() {
    let server = Vsftpd::builder()
        .tls_mode(TlsMode::Implicit)
        .start()
        .unwrap();
    let endpoint = server.endpoint();
    assert!(endpoint.url("x").starts_with("ftps://127.0.0.1:"));
    round_trip(endpoint, &Curl::new(endpoint));
}

#[test]
fn vsftpd_refuses_login_without_tls() {
    let server = Vsftpd::builder().start().unwrap();
    let curl = Curl::new(server.endpoint()).without_tls().arg("--verbose");
    let replies = failed_run_replies(&curl, &server.endpoint().url(""));
    assert!(
        replies.contains("< 530 Non-anonymous sessions must use encryption."),
        "{replies}"
    );
}

// spec: T40
#[test]
fn vsftpd_requires_tls_session_reuse_on_data_connections() {
    let strict = Vsftpd::builder().start().unwrap();
    let no_resumption = Curl::new(strict.endpoint())
        .arg("--no-sessionid")
        .arg("--verbose");
    let replies = failed_run_replies(&no_resumption, &strict.endpoint().url(""));
    assert!(
        replies.contains("< 522 SSL connection failed: session reuse required"),
        "{replies}"
    );

    let lenient = Vsftpd::builder().require_ssl_reuse(false).start().unwrap();
    let listing = Curl::new(lenient.endpoint()).arg("--no-sessionid").list();
    assert!(listing.is_ok(), "{listing:?}\n{}", lenient.log());
}

#[test]
fn pyftpdlib_explicit_round_trip_tls12_and_tls13() {
    let server = Pyftpdlib::builder().start().unwrap();
    let endpoint = server.endpoint();
    round_trip(endpoint, &Curl::new(endpoint).arg("--tlsv1.3"));
    round_trip(endpoint, &Curl::new(endpoint).arg("--tls-max").arg("1.2"));
}

#[test]
fn pyftpdlib_tls12_only_refuses_a_tls13_only_client() {
    let server = Pyftpdlib::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    let error = Curl::new(server.endpoint())
        .arg("--tlsv1.3")
        .list()
        .expect_err("must be refused");
    assert!(error.to_string().contains("protocol version"), "{error}");
}

#[test]
fn pyftpdlib_refuses_login_without_tls() {
    let server = Pyftpdlib::builder().start().unwrap();
    let curl = Curl::new(server.endpoint()).without_tls().arg("--verbose");
    let replies = failed_run_replies(&curl, &server.endpoint().url(""));
    assert!(
        replies.contains("< 550 SSL/TLS required on the control channel."),
        "{replies}"
    );
}

#[test]
fn dropping_a_peer_kills_and_reaps_it() {
    let vsftpd = Vsftpd::builder().start().unwrap();
    let pyftpdlib = Pyftpdlib::builder().start().unwrap();
    let addresses = [vsftpd.endpoint().addr, pyftpdlib.endpoint().addr];
    let pids = [vsftpd.pid(), pyftpdlib.pid()];
    drop(vsftpd);
    drop(pyftpdlib);
    for (addr, pid) in addresses.into_iter().zip(pids) {
        assert_process_gone(pid);
        let connected = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        assert!(connected.is_err(), "{addr} still accepts connections");
    }
}
