//! The codec and the TLS adapter composed the way the sessions will compose them, over
//! in-memory byte queues: greeting → `AUTH TLS` → 234 → handshake → commands and replies under
//! TLS → CCC back to plaintext. The injection checks are made with the codec's buffered-byte
//! counts, exactly as a session makes them.

use std::sync::Arc;

use ftps_proto::codec::command::{Command, CommandParser};
use ftps_proto::codec::reply::{Reply, ReplyCode, ReplyParser};
use ftps_proto::tls::{self, ResumptionPolicy, TlsChannel, TlsError, TlsEvent, TlsLimits};
use rustls::pki_types::{PrivateKeyDer, ServerName};

struct Pki {
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let client_base = Arc::new(tls::client_config(roots).unwrap());
    let server_base = Arc::new(tls::server_config(vec![leaf.der().clone()], key).unwrap());
    Pki {
        client: tls::client_config_for_control(&client_base),
        server: tls::server_config_for_control(&server_base),
    }
}

fn encode_reply(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    reply.encode(&mut out).unwrap();
    out
}

fn encode_command(command: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    command.encode(&mut out).unwrap();
    out
}

/// One end of the control connection under TLS: moves decrypted bytes into its parser.
struct TlsEnd {
    tls: TlsChannel,
    peer_closed: bool,
    closed: bool,
}

impl TlsEnd {
    fn new(tls: TlsChannel) -> Self {
        Self {
            tls,
            peer_closed: false,
            closed: false,
        }
    }

    /// Polls until idle, handing every decrypted byte to `sink`.
    fn drain(&mut self, sink: &mut dyn FnMut(&[u8])) {
        loop {
            match self.tls.poll().unwrap() {
                TlsEvent::Data(bytes) => sink(bytes),
                TlsEvent::PeerClosed => self.peer_closed = true,
                TlsEvent::Closed => self.closed = true,
                TlsEvent::HandshakeComplete => {}
                TlsEvent::Idle => return,
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8]) {
        assert_eq!(self.tls.write(bytes).unwrap(), bytes.len());
    }
}

/// Delivers `from`'s pending TLS bytes to `to` in chunks of `chunk` bytes.
fn pump(from: &mut TlsChannel, to: &mut TlsChannel, chunk: usize) {
    let bytes = from.pending_transmit().to_vec();
    from.consume_transmit(bytes.len()).unwrap();
    for piece in bytes.chunks(chunk) {
        assert_eq!(to.feed(piece).unwrap(), piece.len());
    }
}

/// Runs greeting → AUTH TLS → 234 in plaintext; returns both parsers, ready for the upgrade.
fn plaintext_until_auth(
    extra_after_auth: &[u8],
    extra_after_234: &[u8],
) -> (ReplyParser, CommandParser) {
    let mut replies = ReplyParser::default();
    let mut commands = CommandParser::default();

    replies.push(&encode_reply(&Reply::new(
        ReplyCode::SERVICE_READY,
        "ftps test",
    )));
    assert_eq!(
        replies.next_reply().unwrap().unwrap().code,
        ReplyCode::SERVICE_READY
    );

    let mut auth = encode_command(&Command::Auth(b"TLS".to_vec()));
    auth.extend_from_slice(extra_after_auth);
    commands.push(&auth);
    assert_eq!(
        commands.next_command().unwrap().unwrap(),
        Command::Auth(b"TLS".to_vec())
    );

    let mut accepted = encode_reply(&Reply::new(ReplyCode::AUTH_OK, "AUTH TLS successful"));
    accepted.extend_from_slice(extra_after_234);
    replies.push(&accepted);
    assert_eq!(
        replies.next_reply().unwrap().unwrap().code,
        ReplyCode::AUTH_OK
    );
    (replies, commands)
}

#[test]
fn explicit_upgrade_then_commands_under_tls_then_ccc_back_to_plaintext() {
    let pki = pki();
    let (mut replies, mut commands) = plaintext_until_auth(b"", b"");
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = TlsEnd::new(
        TlsChannel::client_after_auth(
            pki.client,
            name,
            replies.buffered_len(),
            TlsLimits::default(),
        )
        .unwrap(),
    );
    let mut server = TlsEnd::new(
        TlsChannel::server_after_auth(
            pki.server,
            commands.buffered_len(),
            ResumptionPolicy::Optional,
            TlsLimits::default(),
        )
        .unwrap(),
    );

    // Handshake, byte by byte in both directions.
    for _ in 0..10 {
        pump(&mut client.tls, &mut server.tls, 1);
        server.drain(&mut |_| panic!("no data during the handshake"));
        pump(&mut server.tls, &mut client.tls, 1);
        client.drain(&mut |_| panic!("no data during the handshake"));
    }
    assert!(client.tls.is_handshake_complete() && server.tls.is_handshake_complete());

    // FEAT under TLS, answered with a multi-line reply whose middle lines start with digits.
    client.write_all(&encode_command(&Command::Feat));
    pump(&mut client.tls, &mut server.tls, 3);
    server.drain(&mut |bytes| commands.push(bytes));
    assert_eq!(commands.next_command().unwrap().unwrap(), Command::Feat);
    let feat = Reply::multiline(
        ReplyCode::new(211).unwrap(),
        vec![
            b"Features:".to_vec(),
            b" AUTH TLS".to_vec(),
            b"211 is not the end".to_vec(),
            b"End".to_vec(),
        ],
    );
    server.write_all(&encode_reply(&feat));
    pump(&mut server.tls, &mut client.tls, 2);
    client.drain(&mut |bytes| replies.push(bytes));
    let got = replies.next_reply().unwrap().unwrap();
    assert_eq!(got.code, ReplyCode::new(211).unwrap());
    assert_eq!(got.lines.len(), 4);
    assert_eq!(
        got.lines[2], b" 211 is not the end",
        "the encoder pads a digit-led middle line"
    );

    // CCC (spec: T29): 200 under TLS, then close_notify both ways. The client's first plaintext
    // command rides in the same segment as its close_notify; the server must get it back intact.
    client.write_all(&encode_command(&Command::Ccc));
    pump(&mut client.tls, &mut server.tls, 7);
    server.drain(&mut |bytes| commands.push(bytes));
    assert_eq!(commands.next_command().unwrap().unwrap(), Command::Ccc);
    server.write_all(&encode_reply(&Reply::new(
        ReplyCode::new(200).unwrap(),
        "CCC ok",
    )));
    server.tls.close().unwrap();
    pump(&mut server.tls, &mut client.tls, 5);
    client.drain(&mut |bytes| replies.push(bytes));
    assert_eq!(replies.next_reply().unwrap().unwrap().code.get(), 200);
    assert!(client.peer_closed);
    client.tls.close().unwrap();
    client.drain(&mut |_| panic!("no data after close_notify"));
    assert!(client.closed);
    let client_plain = client.tls.take_plaintext().unwrap();
    assert!(client_plain.is_empty());

    let mut segment = client.tls.pending_transmit().to_vec();
    client.tls.consume_transmit(segment.len()).unwrap();
    segment.extend_from_slice(&encode_command(&Command::Pwd));
    for byte in &segment {
        assert_eq!(server.tls.feed(std::slice::from_ref(byte)).unwrap(), 1);
        server.drain(&mut |_| panic!("plaintext must not come out of TLS"));
    }
    assert!(server.closed);
    let plaintext = server.tls.take_plaintext().unwrap();
    assert!(
        !commands.has_buffered_bytes(),
        "nothing from TLS is left in the parser"
    );
    commands.push(&plaintext);
    assert_eq!(commands.next_command().unwrap().unwrap(), Command::Pwd);
    assert!(commands.next_command().is_none());
}

// spec: §9.1 — a command pipelined after AUTH TLS in the same plaintext segment is refused.
#[test]
fn server_refuses_commands_injected_after_auth_tls() {
    let pki = pki();
    let (_, commands) = plaintext_until_auth(b"USER attacker\r\n", b"");
    let injected = commands.buffered_len();
    assert_eq!(injected, b"USER attacker\r\n".len());
    let refused = TlsChannel::server_after_auth(
        pki.server,
        injected,
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    );
    assert!(matches!(refused, Err(TlsError::BytesBeforeHandshake { count }) if count == injected));
}

// spec: §9.2 — a reply injected after 234 (CVE-2021-22947) is refused by the client.
#[test]
fn client_refuses_replies_injected_after_234() {
    let pki = pki();
    let (replies, _) = plaintext_until_auth(b"", b"230 Logged in (forged)\r\n");
    let name = ServerName::try_from("localhost").unwrap();
    let refused = TlsChannel::client_after_auth(
        pki.client,
        name,
        replies.buffered_len(),
        TlsLimits::default(),
    );
    assert!(matches!(
        refused,
        Err(TlsError::BytesBeforeHandshake { .. })
    ));

    // Even half a forged line counts.
    let (replies, _) = plaintext_until_auth(b"", b"23");
    assert_eq!(replies.buffered_len(), 2);
}
