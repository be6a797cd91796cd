//! Integration tests of the TLS adapter (`ftps_proto::tls`) over in-memory byte queues.

mod common;

use std::sync::Arc;

use common::{
    Chunking, Dir, Ev, Pair, base_client, base_server, client_with_versions, localhost, make_pki,
    pair, pair_with, payload, pki, server_with_versions,
};
use ftps_proto::tls::{
    self, HandshakeKind, ResumptionPolicy, TlsChannel, TlsError, TlsEvent, TlsLimits, TlsRole,
    TlsVersion,
};
use proptest::prelude::*;
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Resumption};
use rustls::pki_types::ServerName;
use rustls::version::{TLS12, TLS13};
use rustls::{AlertDescription, ClientConfig, NamedGroup, ServerConfig};

const ALERT_HANDSHAKE_FAILURE: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40];

// ------------------------------------------------------------------ handshake and info

fn check_handshake_info(pair: &Pair, version: TlsVersion) {
    let pki = pki();
    let client = pair.client.ch.info().expect("client info");
    let server = pair.server.ch.info().expect("server info");
    assert_eq!(client.version, version);
    assert_eq!(server.version, version);
    assert_eq!(client.kind, HandshakeKind::Full);
    assert_eq!(server.kind, HandshakeKind::Full);
    assert_eq!(client.cipher_suite, server.cipher_suite);
    assert_eq!(client.cipher_suite_name, server.cipher_suite_name);
    let prefix = match version {
        TlsVersion::Tls12 => "TLS_ECDHE_",
        TlsVersion::Tls13 => "TLS13_",
    };
    assert!(
        client.cipher_suite_name.starts_with(prefix),
        "{}",
        client.cipher_suite_name
    );
    assert_eq!(client.alpn.as_deref(), Some(&b"ftp"[..]));
    assert_eq!(server.alpn.as_deref(), Some(&b"ftp"[..]));
    assert_eq!(client.peer_certificates, vec![pki.server_chain[0].to_vec()]);
    assert!(server.peer_certificates.is_empty());
    assert_eq!(pair.client.ch.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(pair.server.ch.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(pair.client.events, vec![Ev::HandshakeComplete]);
    assert_eq!(pair.server.events, vec![Ev::HandshakeComplete]);
}

// spec: V01
#[test]
fn handshake_tls13_reports_version_suite_alpn_kind_and_certificates() {
    let pki = pki();
    let client = Arc::new(client_with_versions(pki, &[&TLS13]));
    let mut pair = pair(client, base_server(pki));
    pair.handshake();
    check_handshake_info(&pair, TlsVersion::Tls13);
}

// spec: V01
#[test]
fn handshake_tls12_reports_version_suite_alpn_kind_and_certificates() {
    let pki = pki();
    let server = Arc::new(server_with_versions(pki, &[&TLS12]));
    let mut pair = pair(base_client(pki), server);
    pair.handshake();
    check_handshake_info(&pair, TlsVersion::Tls12);
}

// spec: T32
#[test]
fn tls_role_is_independent_of_who_speaks_first() {
    // Whoever opened the TCP connection, the TLS client sends the first bytes: a client
    // channel has its ClientHello pending at once, a server channel waits for it.
    let pki = pki();
    let client = TlsChannel::client(base_client(pki), localhost(), TlsLimits::default()).unwrap();
    let mut server = TlsChannel::server(
        base_server(pki),
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )
    .unwrap();
    assert_eq!(client.role(), TlsRole::Client);
    assert_eq!(server.role(), TlsRole::Server);
    assert_eq!(
        client.pending_transmit()[0],
        0x16,
        "ClientHello record pending"
    );
    assert_eq!(server.poll().unwrap(), TlsEvent::Idle);
    assert!(server.pending_transmit().is_empty());
    assert_eq!(server.handshake_kind(), None);
}

#[test]
fn handshake_with_client_certificate() {
    let pki = pki();
    let server = tls::server_config_with_client_auth(
        pki.server_chain.clone(),
        pki.server_key(),
        pki.roots(),
    )
    .unwrap();
    let client = tls::client_config_with_certificate(
        pki.roots(),
        pki.client_chain.clone(),
        pki.client_key(),
    )
    .unwrap();
    let server = Arc::new(server);
    let mut ok = pair(Arc::new(client), server.clone());
    ok.handshake();
    let info = ok.server.ch.info().unwrap();
    assert_eq!(info.peer_certificates, vec![pki.client_chain[0].to_vec()]);

    // Without a certificate the same server refuses the client.
    let mut refused = pair(base_client(pki), server);
    refused.run();
    assert!(
        matches!(
            refused.server.error,
            Some(TlsError::Rustls(rustls::Error::NoCertificatesPresented))
        ),
        "{:?}",
        refused.server.error
    );
    assert!(refused.client.error.is_some());
}

/// Records the SNI the server saw, then resolves to the test certificate.
#[derive(Debug)]
struct SniRecorder {
    seen: std::sync::Mutex<Vec<Option<String>>>,
    key: Arc<rustls::sign::CertifiedKey>,
}

impl rustls::server::ResolvesServerCert for SniRecorder {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.seen
            .lock()
            .unwrap()
            .push(hello.server_name().map(str::to_string));
        Some(self.key.clone())
    }
}

#[test]
fn sni_is_sent_for_dns_names_only() {
    let pki = pki();
    let provider = tls::crypto_provider();
    let key =
        rustls::sign::CertifiedKey::from_der(pki.server_chain.clone(), pki.server_key(), &provider)
            .unwrap();
    let recorder = Arc::new(SniRecorder {
        seen: std::sync::Mutex::new(Vec::new()),
        key: Arc::new(key),
    });
    let mut server = (*base_server(pki)).clone();
    server.cert_resolver = recorder.clone();
    let server = Arc::new(server);
    let client = tls::client_config_for_control(&base_client(pki));

    for name in [localhost(), ServerName::try_from("127.0.0.1").unwrap()] {
        let c = TlsChannel::client(client.clone(), name, TlsLimits::default()).unwrap();
        let s = TlsChannel::server(
            server.clone(),
            ResumptionPolicy::Optional,
            TlsLimits::default(),
        )
        .unwrap();
        let mut pair = Pair::new(c, s);
        pair.handshake();
    }
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen, vec![Some("localhost".to_string()), None]);
}

// ------------------------------------------------------------------ data

#[test]
fn data_both_ways_including_multi_megabyte_payloads() {
    let pki = pki();
    let mut pair = pair(base_client(pki), base_server(pki));
    pair.handshake();

    pair.send(Dir::ClientToServer, b"USER anonymous\r\n");
    assert_eq!(pair.server.data, b"USER anonymous\r\n");
    pair.send(Dir::ServerToClient, b"331 Password required\r\n");
    assert_eq!(pair.client.data, b"331 Password required\r\n");

    let up = payload(3 * 1024 * 1024 + 17, 0x5a);
    let down = payload(2 * 1024 * 1024 + 3, 0xa5);
    pair.server.data.clear();
    pair.client.data.clear();
    pair.send(Dir::ClientToServer, &up);
    pair.send(Dir::ServerToClient, &down);
    assert!(pair.server.data == up, "upload differs");
    assert!(pair.client.data == down, "download differs");
    // Each Data event is at most one TLS record.
    assert!(pair.server.events.iter().all(|ev| match ev {
        Ev::Data(n) => *n <= 16_384,
        _ => true,
    }));
}

#[test]
fn write_applies_backpressure_at_the_pending_output_limit() {
    let pki = pki();
    let limits = TlsLimits {
        max_pending_output: 20_000,
        ..TlsLimits::default()
    };
    let client = TlsChannel::client(base_client(pki), localhost(), limits).unwrap();
    let server = TlsChannel::server(base_server(pki), ResumptionPolicy::Optional, limits).unwrap();
    let mut pair = Pair::new(client, server);

    // Before the handshake completes nothing is accepted.
    assert_eq!(pair.client.ch.write(b"early").unwrap(), 0);
    pair.handshake();

    let big = payload(100_000, 1);
    let first = pair.client.ch.write(&big).unwrap();
    assert_eq!(first, 20_000);
    assert!(pair.client.ch.pending_transmit().len() >= 20_000);
    assert_eq!(
        pair.client.ch.write(&big[first..]).unwrap(),
        0,
        "limit reached"
    );
    pair.run();
    let second = pair.client.ch.write(&big[first..]).unwrap();
    assert_eq!(second, 20_000);
    pair.run();
    assert_eq!(pair.server.data, big[..first + second]);
}

#[test]
fn feed_is_bounded_by_the_incoming_limit() {
    let pki = pki();
    let mut server = TlsChannel::server(
        base_server(pki),
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )
    .unwrap();
    let junk = vec![0u8; 200 * 1024];
    assert_eq!(
        server.feed(&junk).unwrap(),
        TlsLimits::DEFAULT.max_incoming_tls
    );
    assert_eq!(server.feed(&junk).unwrap(), 0);
    assert_eq!(
        server.buffered_incoming(),
        TlsLimits::DEFAULT.max_incoming_tls
    );
    assert!(matches!(server.poll(), Err(TlsError::Rustls(_))));
}

#[test]
fn limits_are_validated() {
    let pki = pki();
    let tiny = TlsLimits {
        max_incoming_tls: 1000,
        ..TlsLimits::default()
    };
    assert!(matches!(
        TlsChannel::client(base_client(pki), localhost(), tiny),
        Err(TlsError::InvalidLimit(_))
    ));
    let no_output = TlsLimits {
        max_pending_output: 0,
        ..TlsLimits::default()
    };
    assert!(matches!(
        TlsChannel::server(base_server(pki), ResumptionPolicy::Optional, no_output),
        Err(TlsError::InvalidLimit(_))
    ));
}

#[test]
fn early_data_configs_are_refused() {
    let pki = pki();
    let mut client = (*base_client(pki)).clone();
    client.enable_early_data = true;
    assert_eq!(
        TlsChannel::client(Arc::new(client), localhost(), TlsLimits::default()).unwrap_err(),
        TlsError::EarlyDataEnabled
    );
    let mut server = (*base_server(pki)).clone();
    server.max_early_data_size = 16_384;
    assert_eq!(
        TlsChannel::server(
            Arc::new(server),
            ResumptionPolicy::Optional,
            TlsLimits::default()
        )
        .unwrap_err(),
        TlsError::EarlyDataEnabled
    );
    // The per-control configs switch it off whatever the base says.
    let mut client = (*base_client(pki)).clone();
    client.enable_early_data = true;
    assert!(!tls::client_config_for_control(&Arc::new(client)).enable_early_data);
    let mut server = (*base_server(pki)).clone();
    server.max_early_data_size = 16_384;
    assert_eq!(
        tls::server_config_for_control(&Arc::new(server)).max_early_data_size,
        0
    );
}

// ------------------------------------------------------------------ close and truncation

#[test]
fn close_notify_both_ways_then_clean_eof() {
    let pki = pki();
    for version in [&TLS12, &TLS13] {
        let server = Arc::new(server_with_versions(pki, &[version]));
        let mut pair = pair(base_client(pki), server);
        pair.handshake();
        pair.send(Dir::ServerToClient, b"226 Transfer complete\r\n");

        pair.server.ch.close().unwrap();
        assert!(pair.server.ch.has_sent_close_notify());
        assert_eq!(
            pair.server.ch.write(b"more").unwrap_err(),
            TlsError::WriteAfterClose
        );
        pair.run();
        assert_eq!(pair.client.events.last(), Some(&Ev::PeerClosed));
        assert!(pair.client.ch.peer_has_closed());
        // Half-close: the client may still send before closing.
        pair.send(Dir::ClientToServer, b"QUIT\r\n");
        assert_eq!(pair.server.data, b"QUIT\r\n");
        pair.client.ch.close().unwrap();
        pair.run();
        assert_eq!(
            pair.client.events,
            vec![
                Ev::HandshakeComplete,
                Ev::Data(23),
                Ev::PeerClosed,
                Ev::Closed
            ]
        );
        assert_eq!(
            pair.server.events,
            vec![
                Ev::HandshakeComplete,
                Ev::Data(6),
                Ev::PeerClosed,
                Ev::Closed
            ]
        );
        for side in [&mut pair.client, &mut pair.server] {
            assert!(side.ch.is_closed());
            side.ch.feed_eof();
            assert_eq!(
                side.ch.poll().unwrap(),
                TlsEvent::Idle,
                "EOF after close_notify is clean"
            );
            assert_eq!(side.ch.feed(b"x").unwrap_err(), TlsError::InputAfterEof);
        }
    }
}

/// EOF without close_notify, after some data, in the given direction.
fn truncation(dir: Dir) {
    let pki = pki();
    let mut pair = pair(base_client(pki), base_server(pki));
    pair.handshake();
    pair.send(dir, b"partial file contents");
    let receiver = match dir {
        Dir::ClientToServer => &mut pair.server,
        Dir::ServerToClient => &mut pair.client,
    };
    assert_eq!(receiver.data, b"partial file contents");
    receiver.ch.feed_eof();
    receiver.drain();
    assert_eq!(receiver.error, Some(TlsError::Truncated));
    assert!(!receiver.has(&Ev::PeerClosed));
    // Sticky.
    assert_eq!(receiver.ch.poll().unwrap_err(), TlsError::Truncated);
}

// spec: §9.4
#[test]
fn eof_without_close_notify_is_truncation_client_receiving() {
    truncation(Dir::ServerToClient);
}

// spec: §9.4
#[test]
fn eof_without_close_notify_is_truncation_server_receiving() {
    truncation(Dir::ClientToServer);
}

// spec: §9.4
#[test]
fn eof_in_the_middle_of_a_record_or_handshake_is_truncation() {
    let pki = pki();
    let mut pair = pair(base_client(pki), base_server(pki));
    pair.handshake();
    pair.server.ch.write(b"226 done\r\n").unwrap();
    let record = pair.server.ch.pending_transmit().to_vec();
    // Deliver all but the last byte of the record, then EOF.
    pair.client.ch.feed(&record[..record.len() - 1]).unwrap();
    assert_eq!(pair.client.ch.poll().unwrap(), TlsEvent::Idle);
    pair.client.ch.feed_eof();
    assert_eq!(pair.client.ch.poll().unwrap_err(), TlsError::Truncated);

    // During the handshake.
    let mut server = TlsChannel::server(
        base_server(pki),
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )
    .unwrap();
    server.feed_eof();
    assert_eq!(server.poll().unwrap_err(), TlsError::Truncated);
}

// spec: §9.4
#[test]
fn data_before_close_notify_in_one_segment_is_delivered_then_clean() {
    let pki = pki();
    let mut pair = pair(base_client(pki), base_server(pki));
    pair.handshake();
    pair.server.ch.write(b"last bytes").unwrap();
    pair.server.ch.close().unwrap();
    let segment = pair.server.ch.pending_transmit().to_vec();
    pair.client.ch.feed(&segment).unwrap();
    pair.client.ch.feed_eof();
    assert_eq!(
        pair.client.ch.poll().unwrap(),
        TlsEvent::Data(b"last bytes")
    );
    assert_eq!(pair.client.ch.poll().unwrap(), TlsEvent::PeerClosed);
    assert_eq!(pair.client.ch.poll().unwrap(), TlsEvent::Idle);
}

// ------------------------------------------------------------------ CCC

/// CCC: the client sends `CCC`, the server answers `200` under TLS, both exchange
/// close_notify, and each side's plaintext follows its close_notify on the wire.
/// `client_first`: the client's close_notify is sent before the server's.
fn ccc(version: &'static rustls::SupportedProtocolVersion, client_first: bool, chunk: Chunking) {
    let pki = pki();
    let server = Arc::new(server_with_versions(pki, &[version]));
    let mut pair = pair(base_client(pki), server).chunked(chunk.clone(), chunk);
    pair.handshake();
    pair.send(Dir::ClientToServer, b"CCC\r\n");
    assert_eq!(pair.server.data, b"CCC\r\n");

    let server_close = |pair: &mut Pair| {
        assert_eq!(pair.server.ch.write(b"200 CCC ok\r\n").unwrap(), 12);
        pair.server.ch.close().unwrap();
        pair.flush(Dir::ServerToClient);
        pair.inject(Dir::ServerToClient, b"220 plain\r\n");
        pair.deliver(Dir::ServerToClient);
    };
    let client_close = |pair: &mut Pair| {
        pair.client.ch.close().unwrap();
        pair.flush(Dir::ClientToServer);
        pair.inject(Dir::ClientToServer, b"PWD\r\n");
        pair.deliver(Dir::ClientToServer);
    };
    if client_first {
        client_close(&mut pair);
        assert!(pair.server.ch.peer_has_closed());
        server_close(&mut pair);
    } else {
        server_close(&mut pair);
        assert!(pair.client.ch.peer_has_closed());
        client_close(&mut pair);
    }
    pair.client.drain();
    pair.server.drain();
    assert_eq!(pair.client.error, None);
    assert_eq!(pair.server.error, None);
    assert_eq!(pair.client.data, b"200 CCC ok\r\n");
    assert!(pair.client.has(&Ev::Closed) && pair.server.has(&Ev::Closed));
    // Our close_notify records are still pending for the side that closed last: both flushed.
    assert!(pair.client.ch.pending_transmit().is_empty());
    assert!(pair.server.ch.pending_transmit().is_empty());

    assert_eq!(pair.server.ch.take_plaintext().unwrap(), b"PWD\r\n");
    assert_eq!(pair.client.ch.take_plaintext().unwrap(), b"220 plain\r\n");
    assert_eq!(
        pair.client.ch.take_plaintext().unwrap_err(),
        TlsError::Finished
    );
    assert_eq!(
        pair.server.ch.feed(b"CWD /\r\n").unwrap_err(),
        TlsError::Finished
    );
}

// spec: T29
#[test]
fn ccc_tail_after_close_notify_same_segment_tls13() {
    ccc(&TLS13, false, Chunking::whole());
    ccc(&TLS13, true, Chunking::whole());
}

// spec: T29
#[test]
fn ccc_tail_after_close_notify_same_segment_tls12() {
    ccc(&TLS12, false, Chunking::whole());
    ccc(&TLS12, true, Chunking::whole());
}

// spec: T29
#[test]
fn ccc_tail_after_close_notify_byte_by_byte() {
    for version in [&TLS12, &TLS13] {
        ccc(version, false, Chunking::fixed(1));
        ccc(version, true, Chunking::fixed(1));
    }
}

// spec: T29
#[test]
fn ccc_tail_that_looks_like_tls_is_returned_verbatim() {
    // Bytes after the peer's close_notify are never parsed, even when they look like a record.
    let pki = pki();
    let mut pair =
        pair(base_client(pki), base_server(pki)).chunked(Chunking::fixed(3), Chunking::fixed(3));
    pair.handshake();
    let tail = [
        0x17, 0x03, 0x03, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0x15, 0x03,
    ];
    pair.server.ch.close().unwrap();
    pair.flush(Dir::ServerToClient);
    pair.inject(Dir::ServerToClient, &tail);
    pair.deliver(Dir::ServerToClient);
    assert_eq!(pair.client.error, None);
    assert!(pair.client.data.is_empty());
    assert_eq!(pair.client.events.last(), Some(&Ev::PeerClosed));
    assert_eq!(pair.client.ch.buffered_incoming(), tail.len());
    pair.client.ch.close().unwrap();
    pair.client.drain();
    assert_eq!(pair.client.events.last(), Some(&Ev::Closed));
    assert_eq!(pair.client.ch.take_plaintext().unwrap(), tail);
}

// spec: T29
#[test]
fn ccc_tail_is_unavailable_before_both_close_notify() {
    let pki = pki();
    let mut pair = pair(base_client(pki), base_server(pki));
    pair.handshake();
    assert_eq!(
        pair.client.ch.take_plaintext().unwrap_err(),
        TlsError::NotClosed
    );
    pair.client.ch.close().unwrap();
    assert_eq!(
        pair.client.ch.take_plaintext().unwrap_err(),
        TlsError::NotClosed
    );
    pair.run();
    // The server saw the client's close_notify but has not sent its own.
    assert!(pair.server.ch.peer_has_closed());
    assert_eq!(
        pair.server.ch.take_plaintext().unwrap_err(),
        TlsError::NotClosed
    );
}

// spec: T29
#[test]
fn peer_skipping_close_notify_after_ours_is_a_typed_error() {
    let pki = pki();
    let mut pair = pair(base_client(pki), base_server(pki));
    pair.handshake();
    pair.client.ch.close().unwrap();
    pair.run();
    // The server goes straight to plaintext instead of sending its close_notify.
    pair.inject(Dir::ServerToClient, b"220 plain after ccc\r\n");
    pair.deliver(Dir::ServerToClient);
    assert_eq!(pair.client.error, Some(TlsError::PeerSkippedCloseNotify));
    assert!(
        pair.client.data.is_empty(),
        "plaintext is never delivered as TLS data"
    );
    // The caller may accept the one-way shutdown: the plaintext comes back untouched, once.
    assert_eq!(
        pair.client.ch.take_plaintext().unwrap(),
        b"220 plain after ccc\r\n".to_vec()
    );
    assert_eq!(
        pair.client.ch.take_plaintext().unwrap_err(),
        TlsError::Finished
    );
}

#[test]
fn garbage_record_after_our_close_notify_is_an_error_not_a_panic() {
    // A well-formed header with a body that does not decrypt: rustls (debug assertions)
    // would panic here; the workspace profile and the adapter make it a typed error.
    let pki = pki();
    let mut pair = pair(base_client(pki), base_server(pki));
    pair.handshake();
    pair.client.ch.close().unwrap();
    pair.run();
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    record.extend_from_slice(&[0xee; 32]);
    pair.inject(Dir::ServerToClient, &record);
    pair.deliver(Dir::ServerToClient);
    assert!(
        matches!(pair.client.error, Some(TlsError::Rustls(_))),
        "{:?}",
        pair.client.error
    );
}

// ------------------------------------------------------------------ explicit upgrade, injection

// spec: §9.1
#[test]
fn server_upgrade_refuses_bytes_buffered_after_auth() {
    let pki = pki();
    let err = TlsChannel::server_after_auth(
        base_server(pki),
        b"USER x\r\n".len(),
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )
    .unwrap_err();
    assert_eq!(err, TlsError::BytesBeforeHandshake { count: 8 });
    assert!(!err.is_usage_error(), "an injection is the peer's fault");

    let mut ok = TlsChannel::server_after_auth(
        base_server(pki),
        0,
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )
    .unwrap();
    // Plaintext that arrives after the switch goes to rustls and is rejected, never promoted.
    ok.feed(b"USER anonymous\r\n").unwrap();
    assert!(matches!(ok.poll(), Err(TlsError::Rustls(_))));
    assert_eq!(ok.pending_transmit()[0], 0x15, "a fatal alert is pending");
    assert!(matches!(ok.write(b"230 ok"), Err(TlsError::Rustls(_))));
}

// spec: §9.2
#[test]
fn client_upgrade_refuses_bytes_buffered_after_234() {
    let pki = pki();
    let err = TlsChannel::client_after_auth(
        base_client(pki),
        localhost(),
        b"230 fake login\r\n".len(),
        TlsLimits::default(),
    )
    .unwrap_err();
    assert_eq!(err, TlsError::BytesBeforeHandshake { count: 16 });

    let mut ok =
        TlsChannel::client_after_auth(base_client(pki), localhost(), 0, TlsLimits::default())
            .unwrap();
    ok.feed(b"230 fake login\r\n").unwrap();
    match ok.poll() {
        Err(TlsError::Rustls(_)) => {}
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(ok.info().is_none());
}

#[test]
fn explicit_upgrade_with_nothing_buffered_completes() {
    let pki = pki();
    let client =
        TlsChannel::client_after_auth(base_client(pki), localhost(), 0, TlsLimits::default())
            .unwrap();
    let server = TlsChannel::server_after_auth(
        base_server(pki),
        0,
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )
    .unwrap();
    let mut pair = Pair::new(client, server);
    pair.handshake();
    pair.send(Dir::ClientToServer, b"PBSZ 0\r\n");
    assert_eq!(pair.server.data, b"PBSZ 0\r\n");
}

// ------------------------------------------------------------------ resumption

struct ControlSession {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

/// A control session: per-control configs and a completed control handshake whose
/// post-handshake bytes (TLS 1.3 tickets) were processed.
fn control_session(
    base_client: &Arc<ClientConfig>,
    base_server: &Arc<ServerConfig>,
) -> ControlSession {
    let session = ControlSession {
        client: tls::client_config_for_control(base_client),
        server: tls::server_config_for_control(base_server),
    };
    let mut control = pair(session.client.clone(), session.server.clone());
    control.handshake();
    assert_eq!(control.client.ch.info().unwrap().kind, HandshakeKind::Full);
    if control.client.ch.info().unwrap().version == TlsVersion::Tls13 {
        assert_eq!(
            control.client.ch.tls13_tickets_received(),
            2,
            "tickets harvested"
        );
    }
    session
}

fn resumption_is_scoped_per_control_session(
    server_versions: &[&'static rustls::SupportedProtocolVersion],
) {
    let pki = pki();
    let base_c = base_client(pki);
    let base_s = Arc::new(server_with_versions(pki, server_versions));
    let a = control_session(&base_c, &base_s);
    let b = control_session(&base_c, &base_s);

    // A data connection of control session A resumes A's session, on both sides, and the
    // resumed session still reports the control connection's certificate.
    let a_data = tls::server_config_for_data(&a.server);
    for _ in 0..3 {
        let mut data = pair_with(a.client.clone(), a_data.clone(), ResumptionPolicy::Required);
        data.handshake();
        let client = data.client.ch.info().unwrap();
        let server = data.server.ch.info().unwrap();
        assert_eq!(client.kind, HandshakeKind::Resumed);
        assert_eq!(server.kind, HandshakeKind::Resumed);
        assert_eq!(client.alpn.as_deref(), Some(&b"ftp"[..]));
        // spec: T43
        assert_eq!(client.peer_certificates, vec![pki.server_chain[0].to_vec()]);
        data.send(Dir::ServerToClient, b"file");
        assert_eq!(data.client.data, b"file");
    }

    // B's client offers B's session to A's server, which requires resumption: unknown there,
    // so it is refused before any server flight.
    let mut refused = pair_with(b.client.clone(), a_data, ResumptionPolicy::Required);
    refused.flush(Dir::ClientToServer);
    refused.deliver(Dir::ClientToServer);
    assert_eq!(refused.server.error, Some(TlsError::ResumptionRequired));
    assert_eq!(
        refused.server.ch.handshake_kind(),
        Some(HandshakeKind::Full)
    );
    assert_eq!(
        refused.server.ch.pending_transmit(),
        ALERT_HANDSHAKE_FAILURE,
        "only the alert, no ServerHello/Certificate"
    );
    refused.run();
    assert_eq!(
        refused.client.error,
        Some(TlsError::Rustls(rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure
        )))
    );

    // B's client offers B's session to A's server: unknown there, so a full handshake. (B's
    // client then holds a session from A's server: the store is keyed by name only, which is
    // why each control connection needs its own store.)
    let mut cross = pair_with(
        b.client.clone(),
        a.server.clone(),
        ResumptionPolicy::Optional,
    );
    cross.handshake();
    assert_eq!(cross.client.ch.info().unwrap().kind, HandshakeKind::Full);
    assert_eq!(cross.server.ch.info().unwrap().kind, HandshakeKind::Full);
}

// spec: T40
#[test]
fn resumption_scoped_per_control_session_tls13() {
    resumption_is_scoped_per_control_session(&[&TLS13]);
}

// spec: T40
#[test]
fn resumption_scoped_per_control_session_tls12() {
    resumption_is_scoped_per_control_session(&[&TLS12]);
}

// spec: T40
#[test]
fn resumption_required_refuses_a_fresh_client_before_any_flight() {
    let pki = pki();
    let server = tls::server_config_for_control(&base_server(pki));
    let client = tls::client_config_for_control(&base_client(pki));
    let mut data = pair_with(client, server, ResumptionPolicy::Required);
    data.run();
    assert_eq!(data.server.error, Some(TlsError::ResumptionRequired));
    assert_eq!(
        data.delivered_s2c,
        ALERT_HANDSHAKE_FAILURE.len(),
        "only the alert was sent"
    );
    assert!(data.client.error.is_some());
}

// ------------------------------------------------------------------ data-connection tickets

/// The same client config (and session store) without the RFC 9149 ticket request, like a
/// plain rustls or OpenSSL client.
fn without_ticket_request(config: &Arc<ClientConfig>) -> Arc<ClientConfig> {
    let mut config = ClientConfig::clone(config);
    config.send_ticket_request = None;
    Arc::new(config)
}

/// A resumed TLS 1.3 data connection; returns how many tickets its client received after
/// the handshake, data and both close_notify went through.
fn data_connection_tickets(client: Arc<ClientConfig>, data_server: Arc<ServerConfig>) -> u32 {
    let mut data = pair_with(client, data_server, ResumptionPolicy::Required);
    data.handshake();
    assert_eq!(data.server.ch.info().unwrap().kind, HandshakeKind::Resumed);
    assert_eq!(data.client.ch.info().unwrap().version, TlsVersion::Tls13);
    data.send(Dir::ClientToServer, b"upload");
    data.send(Dir::ServerToClient, b"download");
    data.client.ch.close().unwrap();
    data.server.ch.close().unwrap();
    data.run();
    assert!(data.client.has(&Ev::Closed) && data.server.has(&Ev::Closed));
    assert_eq!(data.server.data, b"upload");
    data.client.ch.tls13_tickets_received()
}

// spec: T40 — TLS 1.3 tickets on data connections: what a client asks for (RFC 9149), capped;
// without a request one on every data connection, whichever way the payload flows (an OpenSSL
// client needs a new ticket for each). The control connection keeps sending rustls's default
// two.
#[test]
fn data_connection_tickets_follow_the_request() {
    let pki = pki();
    let base_s = base_server(pki);
    let control = control_session(&base_client(pki), &base_s);
    let data = tls::server_config_for_data(&control.server);

    // This crate's client asks and gets what it asked for on every data connection.
    let asked = u32::from(tls::CLIENT_TICKET_REQUEST.resumption_count);
    for _ in 0..3 {
        assert_eq!(
            data_connection_tickets(control.client.clone(), data.clone()),
            asked
        );
    }

    // Asking for more than the limit gets the limit.
    let mut greedy = ClientConfig::clone(&control.client);
    greedy.send_ticket_request = Some(rustls::client::TicketRequest {
        new_session_count: 50,
        resumption_count: 50,
    });
    let greedy = Arc::new(greedy);
    assert_eq!(
        data_connection_tickets(greedy, data.clone()),
        tls::MAX_DATA_CONNECTION_TICKETS as u32
    );

    // A client that does not ask gets one on each data connection...
    let plain = without_ticket_request(&control.client);
    for _ in 0..3 {
        assert_eq!(
            data_connection_tickets(plain.clone(), data.clone()),
            tls::UNASKED_DATA_CONNECTION_TICKETS as u32
        );
    }

    // ...and two on its control connection.
    let plain_control = without_ticket_request(&tls::client_config_for_control(&base_client(pki)));
    let mut control = pair(plain_control, tls::server_config_for_control(&base_s));
    control.handshake();
    assert_eq!(control.client.ch.tls13_tickets_received(), 2);
}

/// Resumes a data connection of a fresh control session on `control_server`, then offers the
/// very same ClientHello (same ticket, same binder) to a second data connection, the way an
/// OpenSSL client resumes with the one session it holds. Returns that second server channel.
fn replay_ticket_on_second_data_connection(control_server: Arc<ServerConfig>) -> TlsChannel {
    let pki = pki();
    let client = without_ticket_request(&tls::client_config_for_control(&base_client(pki)));
    let mut control = pair(client.clone(), control_server.clone());
    control.handshake();
    assert_eq!(control.client.ch.tls13_tickets_received(), 2);
    let data_server = tls::server_config_for_data(&control_server);

    let mut first_client = TlsChannel::client(client, localhost(), TlsLimits::default()).unwrap();
    assert!(matches!(first_client.poll(), Ok(TlsEvent::Idle)));
    let hello = first_client.pending_transmit().to_vec();
    assert!(!hello.is_empty());
    let first_server = TlsChannel::server(
        data_server.clone(),
        ResumptionPolicy::Required,
        TlsLimits::default(),
    )
    .unwrap();
    let mut first = Pair::new(first_client, first_server);
    first.handshake();
    assert_eq!(first.server.ch.info().unwrap().kind, HandshakeKind::Resumed);

    let mut second = TlsChannel::server(
        data_server,
        ResumptionPolicy::Required,
        TlsLimits::default(),
    )
    .unwrap();
    assert_eq!(second.feed(&hello).unwrap(), hello.len());
    while let Ok(event) = second.poll() {
        if event == TlsEvent::Idle {
            break;
        }
    }
    second
}

// spec: T40 — a TLS 1.3 ticket resumes more than one data connection of its control
// connection (rustls's stateful store would take it out on first use).
#[test]
fn tls13_ticket_resumes_twice_within_its_control_connection() {
    let pki = pki();
    let base_s = Arc::new(server_with_versions(pki, &[&TLS13]));
    let second = replay_ticket_on_second_data_connection(tls::server_config_for_control(&base_s));
    assert_eq!(second.error(), None);
    assert_eq!(second.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(
        !second.pending_transmit().is_empty(),
        "the ServerHello flight went out"
    );

    // The same with rustls's single-use store: the second offer is unknown, hence refused.
    let mut single_use = ServerConfig::clone(&tls::server_config_for_control(&base_s));
    single_use.session_storage = rustls::server::ServerSessionMemoryCache::new(64);
    let second = replay_ticket_on_second_data_connection(Arc::new(single_use));
    assert_eq!(second.error(), Some(&TlsError::ResumptionRequired));
}

// spec: T40 — the control connection's store notices a client that presents one ticket on
// two data connections (as GnuTLS clients do with the control session); a client that spends
// each ticket once (rustls, OpenSSL) is never taken for one.
#[test]
fn ticket_presented_twice_is_noticed() {
    let pki = pki();
    let base_s = Arc::new(server_with_versions(pki, &[&TLS13]));
    let (control, reuse) = tls::server_config_for_control_tracked(&base_s);
    let second = replay_ticket_on_second_data_connection(control);
    assert_eq!(second.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(reuse.seen());

    let (control_server, reuse) = tls::server_config_for_control_tracked(&base_s);
    let client = tls::client_config_for_control(&base_client(pki));
    let mut control = pair(client.clone(), control_server.clone());
    control.handshake();
    let data = tls::server_config_for_data(&control_server);
    for _ in 0..4 {
        data_connection_tickets(client.clone(), data.clone());
    }
    assert!(!reuse.seen());
}

// spec: T40 — the store behind both configs: take keeps the entry, and the data config shares
// the control config's store.
#[test]
fn server_store_keeps_taken_sessions_and_is_shared_with_data_connections() {
    let control = tls::server_config_for_control(&base_server(pki()));
    let data = tls::server_config_for_data(&control);
    assert_eq!(control.send_tls13_tickets, 2);
    assert_eq!(
        data.send_tls13_tickets,
        tls::UNASKED_DATA_CONNECTION_TICKETS
    );
    assert_eq!(data.max_tls13_tickets, tls::MAX_DATA_CONNECTION_TICKETS);
    assert!(control.session_storage.can_cache());
    assert!(
        control
            .session_storage
            .put(b"ticket".to_vec(), b"session".to_vec())
    );
    for _ in 0..3 {
        assert_eq!(
            data.session_storage.take(b"ticket").as_deref(),
            Some(&b"session"[..])
        );
    }
    assert_eq!(
        control.session_storage.get(b"ticket").as_deref(),
        Some(&b"session"[..])
    );
    assert_eq!(data.session_storage.take(b"other"), None);
    // Another control connection has its own store.
    let other = tls::server_config_for_control(&base_server(pki()));
    assert_eq!(other.session_storage.take(b"ticket"), None);
}

/// A client session store that forgets key-exchange hints, so every connection starts with
/// the default key share and a server that prefers another group asks for a retry.
#[derive(Debug)]
struct NoKxHints(ClientSessionMemoryCache);

impl ClientSessionStore for NoKxHints {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }
    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.0.set_tls12_session(name, value);
    }
    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.0.tls12_session(name)
    }
    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.0.remove_tls12_session(name);
    }
    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(name, value);
    }
    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.0.take_tls13_ticket(name)
    }
}

// spec: T40
#[test]
fn resumption_required_lets_a_hello_retry_through_and_decides_on_the_retried_hello() {
    let pki = pki();
    // The server only accepts P-256 while clients send an X25519 key share first: every
    // handshake starts with a HelloRetryRequest.
    let mut provider = (*tls::crypto_provider()).clone();
    provider
        .kx_groups
        .retain(|group| group.name() == NamedGroup::secp256r1);
    let server = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key())
        .unwrap();
    let server = tls::server_config_for_control(&Arc::new(server));
    let mut client = (*base_client(pki)).clone();
    client.resumption = Resumption::store(Arc::new(NoKxHints(ClientSessionMemoryCache::new(16))));
    let client = Arc::new(client);

    let mut control = pair(client.clone(), server.clone());
    control.handshake();
    assert_eq!(
        control.server.ch.info().unwrap().kind,
        HandshakeKind::FullWithHelloRetryRequest
    );
    assert_eq!(control.client.ch.tls13_tickets_received(), 2);

    // Same session, retried hello carries the ticket: resumed, accepted.
    let mut data = pair_with(client.clone(), server.clone(), ResumptionPolicy::Required);
    data.handshake();
    assert_eq!(data.server.ch.info().unwrap().kind, HandshakeKind::Resumed);
    assert_eq!(data.client.ch.info().unwrap().kind, HandshakeKind::Resumed);

    // Another session's client: the HRR goes out, the retried hello is full, refused then.
    let stranger = tls::client_config_for_control(&base_client(pki));
    let mut refused = pair_with(stranger, server, ResumptionPolicy::Required);
    refused.flush(Dir::ClientToServer);
    refused.deliver(Dir::ClientToServer);
    assert_eq!(
        refused.server.error, None,
        "HelloRetryRequest carries no certificate"
    );
    assert_eq!(refused.server.ch.pending_transmit()[0], 0x16, "HRR pending");
    refused.flush(Dir::ServerToClient);
    refused.deliver(Dir::ServerToClient);
    refused.flush(Dir::ClientToServer);
    refused.deliver(Dir::ClientToServer);
    assert_eq!(refused.server.error, Some(TlsError::ResumptionRequired));
    assert_eq!(
        refused.server.ch.pending_transmit(),
        ALERT_HANDSHAKE_FAILURE
    );
}

// ------------------------------------------------------------------ ALPN

// spec: §9.6
#[test]
fn client_offering_only_other_alpn_is_refused() {
    let pki = pki();
    let mut client = (*base_client(pki)).clone();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut pair = pair(
        Arc::new(client),
        tls::server_config_for_control(&base_server(pki)),
    );
    pair.run();
    assert_eq!(
        pair.server.error,
        Some(TlsError::Rustls(rustls::Error::NoApplicationProtocol))
    );
    assert_eq!(
        pair.client.error,
        Some(TlsError::Rustls(rustls::Error::AlertReceived(
            AlertDescription::NoApplicationProtocol
        )))
    );
}

// spec: §9.6
#[test]
fn client_without_alpn_is_accepted() {
    let pki = pki();
    let mut client = (*base_client(pki)).clone();
    client.alpn_protocols = Vec::new();
    let mut pair = pair(
        Arc::new(client),
        tls::server_config_for_control(&base_server(pki)),
    );
    pair.handshake();
    assert_eq!(pair.server.ch.info().unwrap().alpn, None);
    assert_eq!(pair.client.ch.info().unwrap().alpn, None);
}

// spec: §9.6
#[test]
fn per_control_configs_offer_ftp_alpn() {
    let pki = pki();
    assert_eq!(
        tls::client_config_for_control(&base_client(pki)).alpn_protocols,
        vec![b"ftp".to_vec()]
    );
    assert_eq!(
        tls::server_config_for_control(&base_server(pki)).alpn_protocols,
        vec![b"ftp".to_vec()]
    );
}

// ------------------------------------------------------------------ large certificate flight

#[test]
fn large_certificate_flight_byte_by_byte() {
    let big = make_pki(1200);
    assert!(
        big.server_chain[0].len() > 16_384,
        "leaf is {} bytes",
        big.server_chain[0].len()
    );
    for version in [&TLS13, &TLS12] {
        let server = Arc::new(server_with_versions(&big, &[version]));
        let client = Arc::new(tls::client_config(big.roots()).unwrap());
        let mut pair = pair(client, server).chunked(Chunking::fixed(1), Chunking::fixed(1));
        pair.handshake();
        assert!(pair.delivered_s2c > 16_384);
        assert_eq!(
            pair.client.ch.info().unwrap().peer_certificates,
            vec![big.server_chain[0].to_vec()]
        );
        pair.send(Dir::ServerToClient, b"220 big cert ok\r\n");
        assert_eq!(pair.client.data, b"220 big cert ok\r\n");
    }
}

#[test]
fn certificate_flight_beyond_the_incoming_limit_is_a_typed_error() {
    let big = make_pki(1200);
    let server = Arc::new(server_with_versions(&big, &[&TLS13]));
    let limits = TlsLimits {
        max_incoming_tls: TlsLimits::MIN_INCOMING_TLS,
        ..TlsLimits::default()
    };
    let client = TlsChannel::client(
        Arc::new(tls::client_config(big.roots()).unwrap()),
        localhost(),
        limits,
    )
    .unwrap();
    let server =
        TlsChannel::server(server, ResumptionPolicy::Optional, TlsLimits::default()).unwrap();
    let mut pair = Pair::new(client, server);
    pair.run();
    assert_eq!(
        pair.client.error,
        Some(TlsError::IncomingTooLarge {
            limit: TlsLimits::MIN_INCOMING_TLS
        })
    );
}

// ------------------------------------------------------------------ properties

/// Handshake, data both ways, close both ways, with the given chunking; returns what each side
/// received and whether both ended cleanly.
fn full_session(
    version: &'static rustls::SupportedProtocolVersion,
    c2s: Vec<usize>,
    s2c: Vec<usize>,
) -> (Vec<u8>, Vec<u8>, Option<TlsError>, Option<TlsError>, bool) {
    let pki = pki();
    let server = Arc::new(server_with_versions(pki, &[version]));
    let mut pair =
        pair(base_client(pki), server).chunked(Chunking::sizes(c2s), Chunking::sizes(s2c));
    pair.run();
    pair.send(Dir::ClientToServer, &payload(20_000, 3));
    pair.send(Dir::ServerToClient, &payload(30_000, 4));
    pair.client.ch.close().unwrap();
    pair.run();
    pair.server.ch.close().unwrap();
    pair.run();
    let clean = pair.client.ch.is_closed() && pair.server.ch.is_closed();
    (
        pair.server.data,
        pair.client.data,
        pair.server.error,
        pair.client.error,
        clean,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_gives_the_same_plaintext_and_outcome(
        tls13 in any::<bool>(),
        c2s in proptest::collection::vec(1usize..3000, 1..8),
        s2c in proptest::collection::vec(1usize..3000, 1..8),
    ) {
        let version = if tls13 { &TLS13 } else { &TLS12 };
        let (server_got, client_got, server_err, client_err, clean) = full_session(version, c2s, s2c);
        prop_assert_eq!(server_err, None);
        prop_assert_eq!(client_err, None);
        prop_assert!(clean);
        prop_assert!(server_got == payload(20_000, 3));
        prop_assert!(client_got == payload(30_000, 4));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_a_server_channel(
        header in prop_oneof![
            Just(Vec::new()),
            Just(vec![0x16, 0x03, 0x01]),
            Just(vec![0x16, 0x03, 0x03, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03]),
            Just(vec![0x17, 0x03, 0x03]),
            Just(vec![0x15, 0x03, 0x03, 0x00, 0x02]),
        ],
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..600,
        eof in any::<bool>(),
    ) {
        let mut server = TlsChannel::server(
            base_server(pki()), ResumptionPolicy::Required, TlsLimits::default()).unwrap();
        let mut input = header;
        input.extend_from_slice(&body);
        let mut outcome = Ok(());
        'feed: for piece in input.chunks(chunk) {
            match server.feed(piece) {
                Ok(n) => prop_assert_eq!(n, piece.len()),
                Err(err) => { outcome = Err(err); break; }
            }
            loop {
                match server.poll() {
                    Ok(TlsEvent::Idle) => break,
                    Ok(TlsEvent::Data(_)) => prop_assert!(false, "plaintext from garbage"),
                    Ok(TlsEvent::HandshakeComplete) => prop_assert!(false, "handshake from garbage"),
                    Ok(_) => {}
                    Err(err) => { outcome = Err(err); break 'feed; }
                }
            }
        }
        if outcome.is_ok() && eof {
            server.feed_eof();
            outcome = server.poll().map(|_| ());
            prop_assert!(matches!(outcome, Err(TlsError::Truncated) | Err(TlsError::Rustls(_))));
        }
        if let Err(err) = outcome {
            prop_assert!(!err.is_usage_error(), "{err:?}");
            prop_assert_eq!(server.poll().unwrap_err(), err, "errors are sticky");
        }
    }
}

// spec: T40 — OpenSSL servers (vsftpd) send an RFC 5077 NewSessionTicket in the TLS 1.2
// handshake's last flight; the client must complete the handshake and keep the session.
#[test]
fn tls12_handshake_with_a_session_ticket_completes() {
    let pki = pki();
    let mut server = server_with_versions(pki, &[&TLS12]);
    server.ticketer = rustls::crypto::ring::Ticketer::new().unwrap();
    let mut pair = pair(base_client(pki), Arc::new(server));
    pair.handshake();
    check_handshake_info(&pair, TlsVersion::Tls12);
}

// spec: V03 — TLS 1.2 is supported on both sides and TLS 1.3 is preferred: the default configs
// negotiate 1.3, and a peer limited to 1.2 still connects to a default one.
#[test]
fn default_configs_prefer_tls13_and_accept_tls12_peers() {
    let pki = pki();
    let mut both_default = pair(base_client(pki), base_server(pki));
    both_default.handshake();
    assert_eq!(
        both_default.client.ch.info().unwrap().version,
        TlsVersion::Tls13
    );
    let mut old_client = pair(
        Arc::new(client_with_versions(pki, &[&TLS12])),
        base_server(pki),
    );
    old_client.handshake();
    assert_eq!(
        old_client.server.ch.info().unwrap().version,
        TlsVersion::Tls12
    );
    let mut old_server = pair(
        base_client(pki),
        Arc::new(server_with_versions(pki, &[&TLS12])),
    );
    old_server.handshake();
    assert_eq!(
        old_server.client.ch.info().unwrap().version,
        TlsVersion::Tls12
    );
}

// spec: V02 — the TLS 1.0 reliance of RFC 4217 is raised to TLS 1.2: a ClientHello that offers
// at most SSL 3.0, TLS 1.0 or TLS 1.1 never gets a lower version. rustls does not answer it with
// the protocol_version alert RFC 8996 asks for (V01): it selects TLS 1.2 anyway, which a real
// TLS 1.0/1.1 client must refuse, and the tampered transcript then fails the handshake.
#[test]
fn client_hello_below_tls12_never_gets_a_lower_version() {
    let pki = pki();
    for legacy_minor in [0u8, 1, 2] {
        // A TLS 1.2-only ClientHello carries no supported_versions extension, so its
        // client_version field alone names the version offered; lower it.
        let mut pair = pair(
            Arc::new(client_with_versions(pki, &[&TLS12])),
            base_server(pki),
        );
        let mut hello = pair.client.ch.pending_transmit().to_vec();
        pair.client.ch.consume_transmit(hello.len()).unwrap();
        assert_eq!(hello[0], 0x16, "a handshake record");
        assert_eq!(hello[5], 1, "a ClientHello");
        assert_eq!(&hello[9..11], &[3, 3], "client_version TLS 1.2");
        hello[10] = legacy_minor;
        pair.inject(Dir::ClientToServer, &hello);
        pair.deliver(Dir::ClientToServer);
        let answer = pair.server.ch.pending_transmit().to_vec();
        assert_eq!(answer[0], 0x16, "3.{legacy_minor}: {answer:?}");
        assert_eq!(answer[5], 2, "a ServerHello");
        assert_eq!(&answer[9..11], &[3, 3], "3.{legacy_minor}: server_version");
        pair.run();
        assert!(pair.client.error.is_some() || pair.server.error.is_some());
        assert!(!pair.server.handshake_done(), "3.{legacy_minor}");
    }
}

// spec: T42 — the server certificate authenticates the host: the client checks it against the
// host name it connects to, and a certificate for another name fails the handshake.
#[test]
fn server_certificate_must_name_the_host() {
    let pki = pki();
    let other = ServerName::try_from("ftp.other.example").unwrap();
    let client = TlsChannel::client(base_client(pki), other, TlsLimits::default()).unwrap();
    let server = TlsChannel::server(
        base_server(pki),
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )
    .unwrap();
    let mut wrong = Pair::new(client, server);
    wrong.run();
    assert!(
        matches!(
            wrong.client.error,
            Some(TlsError::Rustls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            )))
        ),
        "{:?}",
        wrong.client.error
    );
    assert!(!wrong.client.handshake_done());
    assert!(!wrong.server.handshake_done());
    // The same configs with the certificate's own name connect.
    let mut right = pair(base_client(pki), base_server(pki));
    right.handshake();
}
