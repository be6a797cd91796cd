//! This project's blocking client (ftps-std over the sans-IO core) against real servers:
//! vsftpd (explicit and implicit, TLS 1.2 and 1.3, session reuse required) and pyftpdlib.

use ftps_tests::data::payload;
use ftps_tests::own_client::{DataSetup, EPRT, EPSV, PASV, PORT, client_options};
use std::time::Duration;

use ftps_proto::codec::listing::ListLine;
use ftps_std::{ClientOptions, ListingEntry, Trust};
use ftps_tests::own_client::Client;
use ftps_tests::peers::{self, Endpoint, Pyftpdlib, TlsVersions, Vsftpd};

/// A cheap, stable digest for comparing large payloads in assertion messages.
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn names(entries: &[ListingEntry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|entry| match entry {
            ListingEntry::Mlsd(e) => Some(String::from_utf8_lossy(&e.name).into_owned()),
            ListingEntry::List(ListLine::Entry(e)) => {
                Some(String::from_utf8_lossy(&e.name).into_owned())
            }
            _ => None,
        })
        .collect()
}

/// Login, upload and download (with checksums), listings (LIST, and MLSD where offered),
/// resume, SIZE, rename, delete, and ten more transfers in the same session, each of whose
/// data connections must resume the control session's TLS session (vsftpd refuses any that
/// does not).
fn session_round_trip(endpoint: &Endpoint, data_setup: DataSetup, size: usize) {
    let mut client = Client::connect(client_options(endpoint, data_setup)).expect("connect");
    assert!(client.tls_info().is_some(), "control connection under TLS");
    client
        .login(&endpoint.user, &endpoint.password)
        .expect("login");

    let data = payload(size, 0);
    let up = client.store("up.bin", &mut data.as_slice()).expect("STOR");
    assert_eq!(up.bytes, data.len() as u64);
    assert_eq!(up.resumed, Some(true), "upload data connection resumed"); // spec: T40
    let stored = std::fs::read(endpoint.root_dir.join("up.bin")).unwrap();
    assert_eq!((stored.len(), digest(&stored)), (data.len(), digest(&data)));

    let listing = client.list_long(None).expect("LIST");
    assert!(
        names(&listing).iter().any(|n| n == "up.bin"),
        "LIST: {listing:?}"
    );
    if client.features().iter().any(|f| f.starts_with(b"MLST")) {
        let facts = client.mlsd(None).expect("MLSD");
        let entry = facts.iter().find_map(|e| match e {
            ListingEntry::Mlsd(e) if e.name == b"up.bin" => Some(e),
            _ => None,
        });
        assert_eq!(
            entry.and_then(|e| e.size()),
            Some(data.len() as u64),
            "MLSD: {facts:?}"
        );
    }

    let mut down = Vec::with_capacity(data.len());
    let summary = client.retrieve("up.bin", 0, &mut down).expect("RETR");
    assert_eq!((down.len(), digest(&down)), (data.len(), digest(&data)));
    assert_eq!(summary.resumed, Some(true));

    let mut tail = Vec::new();
    client
        .retrieve("up.bin", 1000, &mut tail)
        .expect("REST + RETR");
    assert!(tail == data[1000..], "resumed download differs");

    assert_eq!(client.size("up.bin").expect("SIZE"), data.len() as u64);
    client.rename("up.bin", "renamed.bin").expect("rename");
    let small = &data[..64 * 1024];
    client
        .store("small.bin", &mut &small[..])
        .expect("small STOR");
    for i in 0..10 {
        let mut got = Vec::new();
        let summary = client
            .retrieve("small.bin", 0, &mut got)
            .expect("repeated RETR");
        assert!(got == small, "transfer {i} differs");
        assert_eq!(summary.resumed, Some(true), "transfer {i} resumed");
    }
    client.delete("renamed.bin").expect("DELE");
    assert!(!endpoint.root_dir.join("renamed.bin").exists());
    client.quit().expect("QUIT");
}

const BIG: usize = 64 << 20;
const MEDIUM: usize = 1 << 20;

// spec: T40, E07 — the interop matrix: server × explicit/implicit × data-connection kind ×
// TLS version; every data connection must resume (vsftpd `require_ssl_reuse=YES`).
#[test]
fn vsftpd_explicit_tls13_epsv_64mib() {
    let server = Vsftpd::builder().start().unwrap();
    session_round_trip(server.endpoint(), EPSV, BIG);
}

#[test]
fn vsftpd_explicit_tls13_pasv() {
    let server = Vsftpd::builder().start().unwrap();
    session_round_trip(server.endpoint(), PASV, MEDIUM);
    let log = server.log();
    assert!(
        log.contains("\"PASV\"") && !log.contains("\"EPSV\""),
        "{log}"
    );
}

#[test]
fn vsftpd_explicit_tls13_eprt() {
    let server = Vsftpd::builder().start().unwrap();
    session_round_trip(server.endpoint(), EPRT, MEDIUM);
}

#[test]
fn vsftpd_explicit_tls13_port() {
    let server = Vsftpd::builder().start().unwrap();
    session_round_trip(server.endpoint(), PORT, MEDIUM);
    let log = server.log();
    assert!(log.contains("\"PORT ") && !log.contains("\"EPRT "), "{log}");
}

#[test]
fn vsftpd_explicit_tls12_epsv_64mib() {
    let server = Vsftpd::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), EPSV, BIG);
}

#[test]
fn vsftpd_explicit_tls12_pasv() {
    let server = Vsftpd::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), PASV, MEDIUM);
}

#[test]
fn vsftpd_explicit_tls12_eprt() {
    let server = Vsftpd::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), EPRT, MEDIUM);
}

#[test]
fn vsftpd_explicit_tls12_port() {
    let server = Vsftpd::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), PORT, MEDIUM);
}

#[test]
fn vsftpd_implicit_tls13_epsv() {
    let server = Vsftpd::builder()
        .tls_mode(peers::TlsMode::Implicit)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), EPSV, MEDIUM);
}

#[test]
fn vsftpd_implicit_tls13_port() {
    let server = Vsftpd::builder()
        .tls_mode(peers::TlsMode::Implicit)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), PORT, MEDIUM);
}

#[test]
fn vsftpd_implicit_tls12_eprt() {
    let server = Vsftpd::builder()
        .tls_mode(peers::TlsMode::Implicit)
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), EPRT, MEDIUM);
}

#[test]
fn pyftpdlib_explicit_tls13_epsv_64mib() {
    let server = Pyftpdlib::builder().start().unwrap();
    session_round_trip(server.endpoint(), EPSV, BIG);
}

#[test]
fn pyftpdlib_explicit_tls13_pasv() {
    let server = Pyftpdlib::builder().start().unwrap();
    session_round_trip(server.endpoint(), PASV, MEDIUM);
}

#[test]
fn pyftpdlib_explicit_tls13_eprt() {
    let server = Pyftpdlib::builder().start().unwrap();
    session_round_trip(server.endpoint(), EPRT, MEDIUM);
}

#[test]
fn pyftpdlib_explicit_tls12_port() {
    let server = Pyftpdlib::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), PORT, MEDIUM);
}

#[test]
fn pyftpdlib_explicit_tls12_epsv() {
    let server = Pyftpdlib::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), EPSV, MEDIUM);
}

// spec: §9.3 — a server that does not speak TLS never gets our credentials: the client ends
// the session at the refused AUTH.
#[test]
fn plain_ftp_server_refusing_auth_gets_no_login() {
    // vsftpd with TLS on but AUTH refused is not configurable; a listener that answers like
    // an FTP server without TLS is enough: greeting, then 500 to AUTH TLS.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"220 plain FTP\r\n").unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut received = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            received.push(line.trim_end().to_string());
            let reply: &[u8] = if line.starts_with("QUIT") {
                b"221 bye\r\n"
            } else {
                b"500 no\r\n"
            };
            stream.write_all(reply).unwrap();
            line.clear();
        }
        received
    });
    let mut options = ClientOptions::new("127.0.0.1");
    options.port = Some(addr.port());
    options.trust = Trust::WebpkiRoots;
    let err = Client::connect(options).expect_err("TLS is required");
    assert!(
        matches!(
            err,
            ftps_std::Error::Closed(Some(ftps_std::ClientError::TlsRefused { .. }))
        ),
        "{err}"
    );
    let received = server.join().unwrap();
    assert_eq!(received, ["AUTH TLS", "QUIT"]);
}

// spec: X03 — SIZE depends on the TYPE, and pyftpdlib refuses it in TYPE A: the session sends
// the file-transfer TYPE before a SIZE even when no transfer ran yet.
#[test]
fn size_before_any_transfer_sends_type_first() {
    let server = Pyftpdlib::builder().start().unwrap();
    let endpoint = server.endpoint();
    std::fs::write(endpoint.root_dir.join("sized.bin"), vec![1u8; 12345]).unwrap();
    let mut client = Client::connect(client_options(endpoint, EPSV)).expect("connect");
    client
        .login(&endpoint.user, &endpoint.password)
        .expect("login");
    assert_eq!(client.size("sized.bin").expect("SIZE"), 12345);
    assert_eq!(client.size("sized.bin").expect("second SIZE"), 12345);
    client.quit().expect("QUIT");
}
