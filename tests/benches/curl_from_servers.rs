//! Five 64 MiB PROT P downloads by `curl --ssl-reqd` from this project's blocking server
//! (`ftps_std::Server` over `LocalFs`), interleaved with five from a local vsftpd (TLS 1.3,
//! `require_ssl_reuse=YES`), in the same run. Each timing is one whole curl run (connect, TLS,
//! login, transfer). Prints every run and the medians.
//!
//! `cargo bench -p ftps-tests --bench curl_from_servers`

use std::sync::Arc;
use std::time::Duration;

use ftps_std::server::{
    LocalFs, Server, ServerOptions, SessionConfig, TlsMode as ServerTlsMode, UserTable,
    hash_password,
};
use ftps_tests::bench::{median, megabytes_per_second, timed_curl_download};
use ftps_tests::peers::{self, Endpoint, TestPki, Vsftpd};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const SIZE: usize = 64 << 20;
const ROUNDS: usize = 5;

fn main() {
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    let vsftpd = Vsftpd::builder().start().expect("vsftpd");
    std::fs::write(vsftpd.endpoint().root_dir.join("big.bin"), &data).expect("write");

    let pki = TestPki::generate().expect("pki");
    let root = tempfile::tempdir().expect("root");
    let ca_dir = tempfile::tempdir().expect("ca dir");
    let ca_path = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_path, &pki.ca_cert_pem).expect("ca");
    std::fs::write(root.path().join("big.bin"), &data).expect("write");
    let chain = vec![CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).expect("key");
    let tls = ftps_proto::tls::server_config(chain, key).expect("tls");
    let password = "bench password";
    let mut users = UserTable::new();
    users
        .add_user("bench", &hash_password(password).expect("hash"))
        .expect("user");
    let server = Server::bind(ServerOptions {
        session: SessionConfig::new(Arc::new(tls)),
        explicit: vec!["127.0.0.1:0".parse().expect("addr")],
        implicit: vec![],
        passive_ports: None,
        advertised_address: None,
        storage: Arc::new(LocalFs::new(root.path()).expect("storage")),
        auth: Arc::new(users),
        log: None,
    })
    .expect("bind");
    let ours = Endpoint {
        addr: server
            .local_addr_for(ServerTlsMode::Explicit)
            .expect("listener"),
        tls_mode: peers::TlsMode::Explicit,
        user: "bench".into(),
        password: password.into(),
        root_dir: root.path().to_path_buf(),
        ca_cert_pem: pki.ca_cert_pem.clone(),
        ca_cert_path: ca_path,
    };
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run().expect("server"));

    let fetch = |endpoint: &Endpoint| timed_curl_download(endpoint, "big.bin", SIZE);
    let (mut from_ours, mut from_vsftpd) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let a = fetch(&ours);
        let b = fetch(vsftpd.endpoint());
        println!(
            "round {round}: ftps-std server {:7.1} MB/s   vsftpd {:7.1} MB/s",
            mbps(a),
            mbps(b)
        );
        from_ours.push(a);
        from_vsftpd.push(b);
    }
    let (a, b) = (median(&mut from_ours), median(&mut from_vsftpd));
    println!(
        "median of {ROUNDS} x 64 MiB PROT P downloads by curl: from ftps-std server {:.1} MB/s, from vsftpd {:.1} MB/s, ratio {:.2}",
        mbps(a),
        mbps(b),
        b.as_secs_f64() / a.as_secs_f64()
    );
    shutdown.shutdown();
    let _ = thread.join();
}

fn mbps(elapsed: Duration) -> f64 {
    megabytes_per_second(SIZE, elapsed)
}
