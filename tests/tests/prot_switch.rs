//! Switching the data protection level (`PROT`) in the middle of a session
//! (`Client::set_data_protection`, checklist T52 and T24) against real servers: this project's
//! own server with private data optional and with it required, and vsftpd, which accepts
//! `PROT C` but then refuses every transfer (`force_local_data_ssl=YES`).

use ftps_tests::own_client::{EPSV, client_options};

use ftps_std::{DataConnectionMode, DataProtection, Error, OpError};
use ftps_tests::data::payload;
use ftps_tests::own_client::Client;
use ftps_tests::own_server::OwnServer;
use ftps_tests::peers::Vsftpd;

/// This project's server on 127.0.0.1 (explicit FTPS), private data required or not.
fn own_server(require_private_data: bool) -> OwnServer {
    OwnServer::builder()
        .without_implicit()
        .configure(move |session| session.require_private_data = require_private_data)
        .start()
}

fn login(server: &OwnServer) -> Client {
    server.login(false, DataConnectionMode::Passive)
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
    let mut client = login(&server);
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
    let mut client = login(&server);
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
    let mut client = Client::connect(client_options(endpoint, EPSV)).unwrap();
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
