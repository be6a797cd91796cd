//! This project's blocking client (ftps-std over the sans-IO core) against real servers:
//! vsftpd (explicit and implicit, TLS 1.2 and 1.3, session reuse required) and pyftpdlib.

use std::time::Duration;

use ftps_std::{Client, ClientOptions, DataConnectionMode, ListingEntry, Timeouts, TlsMode, Trust};
use ftps_tests::peers::{self, Endpoint, Pyftpdlib, TlsVersions, Vsftpd};

fn payload(len: usize) -> Vec<u8> {
    // Not one repeated byte, and not periodic at record sizes.
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

fn options(endpoint: &Endpoint, mode: DataConnectionMode) -> ClientOptions {
    let mut options = ClientOptions::new(endpoint.addr.ip().to_string());
    options.port = Some(endpoint.addr.port());
    options.tls_mode = match endpoint.tls_mode {
        peers::TlsMode::Explicit => TlsMode::Explicit,
        peers::TlsMode::Implicit => TlsMode::Implicit,
    };
    options.trust = Trust::CaFile(endpoint.ca_cert_path.clone());
    options.data_mode = mode;
    options.timeouts = Timeouts {
        connect: Duration::from_secs(10),
        reply: Duration::from_secs(20),
        data_idle: Duration::from_secs(20),
    };
    options
}

/// Login, upload, listing, download, resume, rename, delete, and ten more transfers in the
/// same session, each of whose data connections must resume the control session's TLS
/// session (vsftpd refuses any that does not).
fn session_round_trip(endpoint: &Endpoint, mode: DataConnectionMode) {
    let mut client = Client::connect(options(endpoint, mode)).expect("connect");
    assert!(client.tls_info().is_some(), "control connection under TLS");
    client
        .login(&endpoint.user, &endpoint.password)
        .expect("login");

    let data = payload(1 << 20);
    let up = client.store("up.bin", &mut data.as_slice()).expect("STOR");
    assert_eq!(up.bytes, data.len() as u64);
    assert_eq!(up.resumed, Some(true), "upload data connection resumed"); // spec: T40
    assert_eq!(
        std::fs::read(endpoint.root_dir.join("up.bin")).unwrap(),
        data
    );

    let entries = client.list(None).expect("listing");
    let names: Vec<String> = entries
        .iter()
        .filter_map(|entry| match entry {
            ListingEntry::Mlsd(e) => Some(String::from_utf8_lossy(&e.name).into_owned()),
            ListingEntry::List(ftps_proto::codec::listing::ListLine::Entry(e)) => {
                Some(String::from_utf8_lossy(&e.name).into_owned())
            }
            _ => None,
        })
        .collect();
    assert!(names.iter().any(|n| n == "up.bin"), "listing: {entries:?}");

    let mut down = Vec::new();
    let summary = client.retrieve("up.bin", 0, &mut down).expect("RETR");
    assert_eq!(down, data);
    assert_eq!(summary.resumed, Some(true));

    let mut tail = Vec::new();
    client
        .retrieve("up.bin", 1000, &mut tail)
        .expect("REST + RETR");
    assert_eq!(tail, &data[1000..]);

    assert_eq!(client.size("up.bin").expect("SIZE"), data.len() as u64);
    client.rename("up.bin", "renamed.bin").expect("rename");
    for i in 0..10 {
        let mut got = Vec::new();
        let summary = client
            .retrieve("renamed.bin", 0, &mut got)
            .expect("repeated RETR");
        assert_eq!(got.len(), data.len(), "transfer {i}");
        assert_eq!(summary.resumed, Some(true), "transfer {i} resumed");
    }
    client.delete("renamed.bin").expect("DELE");
    assert!(!endpoint.root_dir.join("renamed.bin").exists());
    client.quit().expect("QUIT");
}

#[test]
fn vsftpd_explicit_tls13_passive() {
    let server = Vsftpd::builder().start().unwrap();
    session_round_trip(server.endpoint(), DataConnectionMode::Passive);
}

#[test]
fn vsftpd_explicit_tls12_passive() {
    let server = Vsftpd::builder()
        .tls_versions(TlsVersions::Tls12Only)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), DataConnectionMode::Passive);
}

#[test]
fn vsftpd_implicit_active() {
    let server = Vsftpd::builder()
        .tls_mode(peers::TlsMode::Implicit)
        .start()
        .unwrap();
    session_round_trip(server.endpoint(), DataConnectionMode::Active);
}

#[test]
fn pyftpdlib_explicit_passive() {
    let server = Pyftpdlib::builder().start().unwrap();
    session_round_trip(server.endpoint(), DataConnectionMode::Passive);
}
