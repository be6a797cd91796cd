//! Test helpers for the TLS adapter: certificates made with rcgen, configs, and an in-memory
//! pump that moves bytes between a client and a server channel with configurable chunking.

use std::sync::{Arc, OnceLock};

use ftps_proto::tls::{self, TlsChannel, TlsError, TlsEvent};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A CA, a server leaf for `localhost` (and 127.0.0.1), and a client leaf, all signed by the CA.
pub(crate) struct Pki {
    pub(crate) ca: CertificateDer<'static>,
    pub(crate) server_chain: Vec<CertificateDer<'static>>,
    server_key_der: Vec<u8>,
    pub(crate) client_chain: Vec<CertificateDer<'static>>,
    client_key_der: Vec<u8>,
}

impl Pki {
    pub(crate) fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        roots
    }

    pub(crate) fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(self.server_key_der.clone()).unwrap()
    }

    pub(crate) fn client_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(self.client_key_der.clone()).unwrap()
    }
}

/// Makes a PKI whose server leaf carries `extra_sans` additional DNS names (to inflate the
/// certificate flight).
pub(crate) fn make_pki(extra_sans: usize) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftps test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let mut names = vec!["localhost".to_string()];
    names.extend((0..extra_sans).map(|i| format!("host-{i:05}.ftps-test.example")));
    let mut server_params = rcgen::CertificateParams::new(names).unwrap();
    server_params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    let mut client_params = rcgen::CertificateParams::new(vec!["ftp-user".to_string()]).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftp-user");
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

    Pki {
        ca: ca_cert.der().clone(),
        server_chain: vec![server_cert.der().clone()],
        server_key_der: server_key.serialize_der(),
        client_chain: vec![client_cert.der().clone()],
        client_key_der: client_key.serialize_der(),
    }
}

/// The shared small PKI (generated once per test binary).
pub(crate) fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| make_pki(0))
}

pub(crate) fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// The crate's base client config (TLS 1.3 + 1.2, ALPN ftp) trusting the test CA.
pub(crate) fn base_client(pki: &Pki) -> Arc<ClientConfig> {
    Arc::new(tls::client_config(pki.roots()).unwrap())
}

/// The crate's base server config with the test leaf.
pub(crate) fn base_server(pki: &Pki) -> Arc<ServerConfig> {
    Arc::new(tls::server_config(pki.server_chain.clone(), pki.server_key()).unwrap())
}

/// A client config restricted to the given versions, otherwise like the crate's base config.
pub(crate) fn client_with_versions(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    config.alpn_protocols = vec![tls::ALPN_FTP.to_vec()];
    config
}

/// A server config restricted to the given versions, otherwise like the crate's base config.
pub(crate) fn server_with_versions(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ServerConfig {
    let mut config = ServerConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key())
        .unwrap();
    config.alpn_protocols = vec![tls::ALPN_FTP.to_vec()];
    config
}

/// An event with owned data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    HandshakeComplete,
    Data(usize),
    PeerClosed,
    Closed,
}

/// One channel plus everything it reported.
pub(crate) struct Side {
    pub(crate) ch: TlsChannel,
    pub(crate) events: Vec<Ev>,
    pub(crate) data: Vec<u8>,
    pub(crate) error: Option<TlsError>,
}

impl Side {
    pub(crate) fn new(ch: TlsChannel) -> Self {
        Self {
            ch,
            events: Vec::new(),
            data: Vec::new(),
            error: None,
        }
    }

    /// Polls until Idle or an error; returns how many events were seen.
    pub(crate) fn drain(&mut self) -> usize {
        if self.error.is_some() {
            return 0;
        }
        let mut seen = 0;
        loop {
            match self.ch.poll() {
                Ok(TlsEvent::Idle) => return seen,
                Ok(TlsEvent::HandshakeComplete) => self.events.push(Ev::HandshakeComplete),
                Ok(TlsEvent::Data(bytes)) => {
                    assert!(!bytes.is_empty(), "Data events carry bytes");
                    self.events.push(Ev::Data(bytes.len()));
                    self.data.extend_from_slice(bytes);
                }
                Ok(TlsEvent::PeerClosed) => self.events.push(Ev::PeerClosed),
                Ok(TlsEvent::Closed) => self.events.push(Ev::Closed),
                Err(err) => {
                    self.error = Some(err);
                    return seen + 1;
                }
            }
            seen += 1;
        }
    }

    pub(crate) fn has(&self, ev: &Ev) -> bool {
        self.events.contains(ev)
    }

    pub(crate) fn handshake_done(&self) -> bool {
        self.has(&Ev::HandshakeComplete)
    }
}

/// Chunk sizes for one direction, cycled; `usize::MAX` means "everything at once".
#[derive(Debug, Clone)]
pub(crate) struct Chunking {
    sizes: Vec<usize>,
    next: usize,
}

impl Chunking {
    pub(crate) fn whole() -> Self {
        Self::sizes(vec![usize::MAX])
    }

    pub(crate) fn fixed(n: usize) -> Self {
        Self::sizes(vec![n])
    }

    pub(crate) fn sizes(sizes: Vec<usize>) -> Self {
        assert!(!sizes.is_empty() && sizes.iter().all(|&n| n > 0));
        Self { sizes, next: 0 }
    }

    fn take(&mut self) -> usize {
        let n = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        n
    }
}

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    ClientToServer,
    ServerToClient,
}

/// A client and a server channel connected by two in-memory byte queues ("wires").
pub(crate) struct Pair {
    pub(crate) client: Side,
    pub(crate) server: Side,
    pub(crate) c2s: Chunking,
    pub(crate) s2c: Chunking,
    wire_c2s: Vec<u8>,
    wire_s2c: Vec<u8>,
    /// Total bytes delivered per direction.
    pub(crate) delivered_c2s: usize,
    pub(crate) delivered_s2c: usize,
}

impl Pair {
    pub(crate) fn new(client: TlsChannel, server: TlsChannel) -> Self {
        Self {
            client: Side::new(client),
            server: Side::new(server),
            c2s: Chunking::whole(),
            s2c: Chunking::whole(),
            wire_c2s: Vec::new(),
            wire_s2c: Vec::new(),
            delivered_c2s: 0,
            delivered_s2c: 0,
        }
    }

    pub(crate) fn chunked(mut self, c2s: Chunking, s2c: Chunking) -> Self {
        self.c2s = c2s;
        self.s2c = s2c;
        self
    }

    /// Moves the sender's pending transmit bytes onto the wire.
    pub(crate) fn flush(&mut self, dir: Dir) {
        let (sender, wire) = match dir {
            Dir::ClientToServer => (&mut self.client.ch, &mut self.wire_c2s),
            Dir::ServerToClient => (&mut self.server.ch, &mut self.wire_s2c),
        };
        let pending = sender.pending_transmit().to_vec();
        wire.extend_from_slice(&pending);
        sender.consume_transmit(pending.len()).unwrap();
    }

    /// Appends raw (non-TLS) bytes to a wire, after what was flushed so far.
    pub(crate) fn inject(&mut self, dir: Dir, bytes: &[u8]) {
        match dir {
            Dir::ClientToServer => self.wire_c2s.extend_from_slice(bytes),
            Dir::ServerToClient => self.wire_s2c.extend_from_slice(bytes),
        }
    }

    /// Delivers the wire's bytes to the receiver chunk by chunk, polling after each chunk.
    /// Returns how many bytes were delivered.
    pub(crate) fn deliver(&mut self, dir: Dir) -> usize {
        let (receiver, wire, chunking) = match dir {
            Dir::ClientToServer => (&mut self.server, &mut self.wire_c2s, &mut self.c2s),
            Dir::ServerToClient => (&mut self.client, &mut self.wire_s2c, &mut self.s2c),
        };
        let mut delivered = 0;
        while !wire.is_empty() && receiver.error.is_none() {
            let chunk = chunking.take().min(wire.len());
            let accepted = match receiver.ch.feed(&wire[..chunk]) {
                Ok(n) => n,
                Err(err) => {
                    receiver.error = Some(err);
                    break;
                }
            };
            wire.drain(..accepted);
            delivered += accepted;
            let seen = receiver.drain();
            if accepted == 0 && seen == 0 {
                break;
            }
        }
        receiver.drain();
        match dir {
            Dir::ClientToServer => self.delivered_c2s += delivered,
            Dir::ServerToClient => self.delivered_s2c += delivered,
        }
        delivered
    }

    /// Flushes and delivers in both directions until no byte moves.
    pub(crate) fn run(&mut self) {
        for _ in 0..10_000 {
            self.client.drain();
            self.server.drain();
            self.flush(Dir::ClientToServer);
            self.flush(Dir::ServerToClient);
            let moved = self.deliver(Dir::ClientToServer) + self.deliver(Dir::ServerToClient);
            if moved == 0 {
                return;
            }
        }
        panic!("pump did not settle");
    }

    /// Runs the handshake to completion and checks neither side failed.
    pub(crate) fn handshake(&mut self) {
        self.run();
        assert_eq!(self.client.error, None, "client failed");
        assert_eq!(self.server.error, None, "server failed");
        assert!(self.client.handshake_done(), "client handshake incomplete");
        assert!(self.server.handshake_done(), "server handshake incomplete");
    }

    /// Writes all of `data` from one side, pumping whenever the writer applies backpressure.
    pub(crate) fn send(&mut self, dir: Dir, data: &[u8]) {
        let mut offset = 0;
        let mut stalls = 0;
        while offset < data.len() {
            let writer = match dir {
                Dir::ClientToServer => &mut self.client.ch,
                Dir::ServerToClient => &mut self.server.ch,
            };
            let n = writer.write(&data[offset..]).unwrap();
            offset += n;
            if n == 0 {
                stalls += 1;
                assert!(stalls < 1_000, "writer stalled");
            } else {
                stalls = 0;
            }
            self.run();
        }
    }
}

/// A client/server pair over the given configs (implicit TLS, default limits).
pub(crate) fn pair(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Pair {
    pair_with(client, server, tls::ResumptionPolicy::Optional)
}

pub(crate) fn pair_with(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    resumption: tls::ResumptionPolicy,
) -> Pair {
    let client = TlsChannel::client(client, localhost(), tls::TlsLimits::default()).unwrap();
    let server = TlsChannel::server(server, resumption, tls::TlsLimits::default()).unwrap();
    Pair::new(client, server)
}

/// A deterministic payload of `len` bytes.
pub(crate) fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}
