//! Switching the data protection level (`PROT`) in the middle of a session
//! (`Client::set_data_protection`, checklist T52 and T24) against real servers: this project's
//! own server with private data optional and with it required, and vsftpd, which accepts
//! `PROT C` but then refuses every transfer (`force_local_data_ssl=YES`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ftps_std::server::{
    LocalFs, Server, ServerOptions, SessionConfig, ShutdownHandle, TlsMode as ServerTlsMode,
    UserTable, hash_password,
};
use ftps_std::{Client, ClientOptions, DataProtection, Error, OpError, Timeouts, TlsMode, Trust};
use ftps_tests::data::payload;
use ftps_tests::peers::{TestPki, Vsftpd};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        reply: Duration::from_secs(10),
        data_idle: Duration::from_secs(10),
    }
}

/// This project's server on 127.0.0.1 (explicit FTPS), stopped on drop.
struct OwnServer {
    _root: tempfile::TempDir,
    addr: SocketAddr,
    ca: CertificateDer<'static>,
    shutdown: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn own_server(require_private_data: bool) -> OwnServer {
    let pki = TestPki::generate().unwrap();
    let root = tempfile::tempdir().unwrap();
    let chain = vec![CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
    let tls = ftps_proto::tls::server_config(chain, key).unwrap();
    let mut session = SessionConfig::new(Arc::new(tls));
    session.require_private_data = require_private_data;
    let mut users = UserTable::new();
    users
        .add_user(USER, &hash_password(PASSWORD).unwrap())
        .unwrap();
    let server = Server::bind(ServerOptions {
        session,
        explicit: vec!["127.0.0.1:0".parse().unwrap()],
        implicit: Vec::new(),
        passive_ports: None,
        advertised_address: None,
        storage: Arc::new(LocalFs::new(root.path()).unwrap()),
        auth: Arc::new(users),
        log: None,
    })
    .unwrap();
    let addr = server.local_addr_for(ServerTlsMode::Explicit).unwrap();
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run().unwrap());
    OwnServer {
        _root: root,
        addr,
        ca: CertificateDer::from_pem_slice(pki.ca_cert_pem.as_bytes()).unwrap(),
        shutdown,
        thread: Some(thread),
    }
}

impl OwnServer {
    fn login(&self) -> Client {
        let mut options = ClientOptions::new(self.addr.ip().to_string());
        options.port = Some(self.addr.port());
        options.trust = Trust::Certificates(vec![self.ca.clone()]);
        options.timeouts = timeouts();
        let mut client = Client::connect(options).unwrap();
        client.login(USER, PASSWORD).unwrap();
        client
    }
}

fn download(client: &mut Client, path: &str) -> (Vec<u8>, Option<bool>) {
    let mut bytes = Vec::new();
    let summary = client.retrieve(path, 0, &mut bytes).expect("RETR");
    assert_eq!(summary.bytes, bytes.len() as u64);
    (bytes, summary.resumed)
}

fn rejected_code(error: &Error) -> Option<u16> {
    match error {
        Error::Operation(OpError::Rejected { reply }) => Some(reply.code.get()),
        _ => None,
    }
}

// spec: T52, T24, T40
#[test]
fn own_server_private_then_clear_then_private_again() {
    let server = own_server(false);
    let mut client = server.login();
    let data = payload(300_000, 7);
    let up = client.store("f.bin", &mut data.as_slice()).unwrap();
    assert_eq!(up.resumed, Some(true));

    let (got, resumed) = download(&mut client, "f.bin");
    assert!(got == data, "private download differs");
    assert_eq!(resumed, Some(true));

    client.set_data_protection(DataProtection::Clear).unwrap();
    let (got, resumed) = download(&mut client, "f.bin");
    assert!(got == data, "clear download differs");
    // No TLS on the data connection at all.
    assert_eq!(resumed, None);
    // An upload in clear as well: the server reads it as plain bytes.
    let clear_data = payload(50_000, 8);
    let up = client.store("c.bin", &mut clear_data.as_slice()).unwrap();
    assert_eq!((up.bytes, up.resumed), (clear_data.len() as u64, None));

    client.set_data_protection(DataProtection::Private).unwrap();
    let (got, resumed) = download(&mut client, "c.bin");
    assert!(
        got == clear_data,
        "private download after the switch back differs"
    );
    // Back under TLS, and still resuming the control connection's session (the server
    // requires it).
    assert_eq!(resumed, Some(true));
    client.quit().unwrap();
}

// spec: T52, T24, T17
#[test]
fn own_server_requiring_private_data_refuses_prot_c_and_stays_private() {
    let server = own_server(true);
    let mut client = server.login();
    let data = payload(40_000, 9);
    client.store("f.bin", &mut data.as_slice()).unwrap();

    let refused = client
        .set_data_protection(DataProtection::Clear)
        .expect_err("PROT C must be refused");
    assert_eq!(rejected_code(&refused), Some(534), "{refused}");
    // The session goes on with private data connections.
    let (got, resumed) = download(&mut client, "f.bin");
    assert!(got == data);
    assert_eq!(resumed, Some(true));
    // Asking for what is already in force is accepted.
    client.set_data_protection(DataProtection::Private).unwrap();
    let (got, resumed) = download(&mut client, "f.bin");
    assert!(got == data);
    assert_eq!(resumed, Some(true));
    client.quit().unwrap();
}

// spec: T52, T24
#[test]
fn vsftpd_forcing_private_data_refuses_clear_transfers_and_the_switch_back_works() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    let mut options = ClientOptions::new(endpoint.addr.ip().to_string());
    options.port = Some(endpoint.addr.port());
    options.tls_mode = TlsMode::Explicit;
    options.trust = Trust::CaFile(endpoint.ca_cert_path.clone());
    options.timeouts = timeouts();
    let mut client = Client::connect(options).unwrap();
    client.login(&endpoint.user, &endpoint.password).unwrap();
    let data = payload(200_000, 3);
    client.store("f.bin", &mut data.as_slice()).unwrap();

    // vsftpd takes PROT C ("200 PROT now Clear") and then, with force_local_data_ssl=YES,
    // refuses the transfer itself with 522 before any data flows.
    client.set_data_protection(DataProtection::Clear).unwrap();
    let mut partial = Vec::new();
    let refused = client
        .retrieve("f.bin", 0, &mut partial)
        .expect_err("vsftpd refuses clear data");
    assert_eq!(
        rejected_code(&refused),
        Some(522),
        "{refused}\n{}",
        server.log()
    );
    assert!(partial.is_empty());

    client.set_data_protection(DataProtection::Private).unwrap();
    let (got, resumed) = download(&mut client, "f.bin");
    assert!(
        got == data,
        "private download after the switch back differs"
    );
    // vsftpd requires session reuse (require_ssl_reuse=YES by default in the harness).
    assert_eq!(resumed, Some(true));
    client.quit().unwrap();
}
