//! The client session fed arbitrary server bytes on the control and data connections (in
//! plaintext, so the bytes reach the reply parser and the state machine rather than stopping at
//! the TLS layer): never panics, reports `Closed` at most once, and every output is well formed.
#![no_main]

use std::sync::{Arc, OnceLock};

use ftps_proto::client::{
    ClientEvent, ClientSession, ClientSessionConfig, ClientTlsMode, DataConnectionMode,
    DataProtection, TraceDirection,
};
use ftps_proto::io::{Channel, Instant, IoErrorKind, IoRequest, Output};
use ftps_proto::tls::{self, ClientConfig, RootCertStore, ServerName};
use libfuzzer_sys::fuzz_target;

fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
                .expect("params")
                .self_signed(&key)
                .expect("certificate");
            let mut roots = RootCertStore::empty();
            roots.add(cert.der().clone()).expect("root");
            Arc::new(tls::client_config(roots).expect("client config"))
        })
        .clone()
}

/// What a driver reports of a socket fault (a piece of input starting 0xFC..=0xFF, see below).
const IO_ERRORS: [IoErrorKind; 7] = [
    IoErrorKind::ConnectionRefused,
    IoErrorKind::ConnectionReset,
    IoErrorKind::ConnectionAborted,
    IoErrorKind::Unreachable,
    IoErrorKind::TimedOut,
    IoErrorKind::AddrNotAvailable,
    IoErrorKind::Other,
];

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, data)) = data.split_first() else {
        return;
    };
    let peer = "127.0.0.1:2121".parse().expect("address");
    let mut config = ClientSessionConfig::new(
        peer,
        ServerName::try_from("localhost").expect("name"),
        tls_config(),
    );
    config.tls_mode = ClientTlsMode::Plaintext;
    config.data_protection = DataProtection::Clear;
    if knobs & 1 == 1 {
        config.data_mode = DataConnectionMode::Active;
    }
    // The sent lines of the trace must never carry the password, whatever the server does
    // (received lines are the server's bytes and may say anything).
    config.trace_control = knobs & 0x80 != 0;
    let mut session = ClientSession::new(config, Instant::from_nanos(0));
    let _ = session.login(b"user", b"secret", None);
    let _ = session.mlsd(None);
    let _ = session.retrieve(b"file", Some(10));
    let upload = session.store(b"up").ok();

    let chunk = usize::from(knobs >> 1) + 1;
    let mut pieces = data.chunks(chunk);
    let mut buf = vec![0u8; 4096];
    let mut now = 0u64;
    let mut closed = 0;
    let mut last_data = None;
    // Bounded: every round consumes a chunk or advances time past a deadline.
    for _ in 0..10_000 {
        now += 1_000_000;
        let mut deadline = None;
        for _ in 0..10_000 {
            match session.poll_output(&mut buf, Instant::from_nanos(now)) {
                Output::Transmit { len, .. } => assert!(len <= buf.len()),
                Output::Io(IoRequest::Connect { channel, .. }) => {
                    if let Channel::Data(id) = channel {
                        last_data = Some(id);
                    }
                    session.handle_connected(
                        channel,
                        "127.0.0.1:40000".parse().expect("addr"),
                        Instant::from_nanos(now),
                    );
                }
                Output::Io(IoRequest::Listen { data, .. }) => {
                    last_data = Some(data);
                    session.handle_listening(
                        data,
                        "127.0.0.1:40001".parse().expect("addr"),
                        Instant::from_nanos(now),
                    );
                    session.handle_accepted(data, peer, Instant::from_nanos(now));
                }
                Output::Io(_) => {}
                Output::Event(ClientEvent::Closed { .. }) => closed += 1,
                Output::Event(ClientEvent::Readable { op }) => {
                    let mut chunk = [0u8; 512];
                    while let Ok(n) = session.read_data(op, &mut chunk) {
                        assert!(n <= chunk.len());
                        if n == 0 {
                            break;
                        }
                    }
                }
                Output::Event(ClientEvent::Writable { op }) if Some(op) == upload => {
                    let _ = session.write_data(op, b"upload bytes");
                    let _ = session.finish_upload(op);
                }
                Output::Event(ClientEvent::ControlLine {
                    direction: TraceDirection::Sent,
                    line,
                }) => {
                    assert!(
                        !line.windows(6).any(|w| w == b"secret"),
                        "password in the trace"
                    );
                }
                Output::Event(_) => {}
                Output::Wait { deadline: next } => {
                    deadline = next;
                    break;
                }
                _ => {}
            }
        }
        assert!(closed <= 1, "Closed reported twice");
        match pieces.next() {
            // What only a driver reports, so far never fuzzed: a socket error, a failed send,
            // back-pressure and its end — on the control or the latest data connection. A rare
            // first byte (0xFC..=0xFF) steers a piece here; its second byte picks the channel
            // and the error.
            Some(&[op @ 0xFC..=0xFF, how, ..]) => {
                let channel = match last_data {
                    Some(id) if how & 1 != 0 => Channel::Data(id),
                    _ => Channel::Control,
                };
                let kind = IO_ERRORS[usize::from(how >> 1) % IO_ERRORS.len()];
                match op {
                    0xFF => session.handle_io_error(channel, kind, Instant::from_nanos(now)),
                    0xFE => session.handle_transmit_failed(channel, kind, Instant::from_nanos(now)),
                    0xFD => session.handle_transmit_blocked(channel, Instant::from_nanos(now)),
                    _ => session.handle_transmit_ready(channel, Instant::from_nanos(now)),
                }
            }
            Some(piece) => {
                // The first byte of a piece steers it: to the latest data connection, and
                // sometimes followed by end of stream there.
                let channel = match last_data {
                    Some(id) if piece[0] & 0x80 != 0 => Channel::Data(id),
                    _ => Channel::Control,
                };
                let _ = session.handle_receive(channel, piece, Instant::from_nanos(now));
                if piece[0] & 0x40 != 0 && channel != Channel::Control {
                    session.handle_eof(channel, Instant::from_nanos(now));
                }
            }
            None => match deadline {
                Some(at) => session.handle_timeout(at),
                None => break,
            },
        }
        if session.is_closed() && closed == 1 {
            break;
        }
    }
});
