//! rustls configurations for FTPS: base configs with the crate's crypto provider, and the
//! per-control-connection clones that scope session resumption (DESIGN §4).

use alloc::sync::Arc;
#[cfg(feature = "std")]
use alloc::vec::Vec;

#[cfg(feature = "std")]
use rustls::ClientConfig;
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
use rustls::RootCertStore;
use rustls::ServerConfig;
#[cfg(feature = "std")]
use rustls::client::TicketRequest;
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
use rustls::crypto::CryptoProvider;
#[cfg(feature = "std")]
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
use super::{TlsError, TlsVersion};

/// The IANA ALPN protocol id for FTP (RFC 4217 / the ALPACA countermeasure).
pub const ALPN_FTP: &[u8] = b"ftp";

/// Client sessions kept per control connection. rustls keeps one TLS 1.2 session and up to 8
/// TLS 1.3 tickets per server name and sizes the cache in names of 8; a control connection
/// talks to one name, so 16 (two names) is ample.
#[cfg(feature = "std")]
pub const CLIENT_SESSIONS_PER_CONTROL: usize = 16;

/// Server sessions kept per control connection: the control handshake stores 2 TLS 1.3
/// tickets or one TLS 1.2 session, each data connection stores the tickets it sends (at most
/// [`MAX_DATA_CONNECTION_TICKETS`]), resumption leaves them in place (they stay reusable
/// within the control connection), and the oldest are evicted first. Clients resume with
/// their newest tickets, so 64 leaves ample room.
#[cfg(feature = "std")]
pub const SERVER_SESSIONS_PER_CONTROL: usize = 64;

/// The most TLS 1.3 tickets a data connection sends to a client that asks for them with the
/// RFC 9149 `ticket_request` extension.
pub const MAX_DATA_CONNECTION_TICKETS: usize = 2;

/// The TLS 1.3 tickets a data connection gives a client that does not ask for a number (RFC
/// 9149): one on every download and listing; on an upload, one only for a client that began
/// the data connection's TLS handshake before its transfer command and has not shown that it
/// re-presents tickets ([`TicketReuse`]).
///
/// OpenSSL clients such as curl use a TLS 1.3 session once and resume from the newest ticket
/// they hold, so they need a new one on every data connection, uploads included. A ticket is
/// only ever sent right after a handshake (rustls cannot send one later, on the data or the
/// control connection). curl sends its data connection's hello before the transfer command;
/// the server runs that handshake at once and holds the `150` until it is done, so the ticket
/// is in curl's socket before curl starts sending the file, and curl reads it there right
/// before it closes.
///
/// Uploads are where a ticket can hurt: a client that never reads an upload's socket (lftp,
/// GnuTLS) closes it with the ticket unread, its kernel answers with a reset and drops what it
/// had not sent yet — the tail of the file (the upload fails with 426; it is never committed).
/// Such clients start their data handshakes after the `150`, and they do not need the ticket:
/// they re-present one session on every data connection. A reset that arrives after an
/// upload's last bytes costs nothing either way: a failed *send* does not fail an upload
/// (`handle_transmit_failed`).
pub const UNASKED_DATA_CONNECTION_TICKETS: usize = 1;

/// The TLS 1.3 tickets this crate's client asks for (RFC 9149 `ticket_request`). rustls uses
/// each ticket once, so every data connection must bring at least one back; two leave slack
/// for a data connection that ends before its ticket was read (an aborted transfer), and
/// rustls keeps at most 8 per server name. Servers without RFC 9149 ignore the request.
#[cfg(feature = "std")]
pub const CLIENT_TICKET_REQUEST: TicketRequest = TicketRequest {
    new_session_count: 2,
    resumption_count: 2,
};

/// The crypto provider selected by the crate feature: `ring` (default) or `aws-lc-rs` (`ring`
/// wins when both are enabled). Configs are always built with it explicitly, never with a
/// process-wide default provider.
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
pub fn crypto_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "ring")]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    Arc::new(provider)
}

/// The protocol versions offered up to `max`: TLS 1.2 is always the minimum.
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
fn protocol_versions(max: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static UP_TO_TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static UP_TO_TLS13: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    match max {
        TlsVersion::Tls12 => &UP_TO_TLS12,
        TlsVersion::Tls13 => &UP_TO_TLS13,
    }
}

/// How a client config checks the server's certificate.
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub(super) enum ServerCheck {
    /// WebPKI verification against these trust anchors.
    Roots(RootCertStore),
    /// A verifier of our own (the insecure one of [`super::Trust::InsecureSkipVerification`]).
    Custom(Arc<dyn rustls::client::danger::ServerCertVerifier>),
}

/// The one place a client config is built: `provider`, TLS 1.2 up to `max_version`, the
/// server check, an optional client certificate, and [`apply_client_defaults`].
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub(super) fn build_client_config(
    provider: Arc<CryptoProvider>,
    check: ServerCheck,
    client_certificate: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    max_version: TlsVersion,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(protocol_versions(max_version))?;
    let builder = match check {
        ServerCheck::Roots(roots) => builder.with_root_certificates(roots),
        ServerCheck::Custom(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier),
    };
    let mut config = match client_certificate {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    apply_client_defaults(&mut config);
    Ok(config)
}

/// The one place a server config is built: the crate's provider, TLS 1.2 up to
/// `max_version`, the certificate chain and key, client certificates required to chain to
/// `client_roots` when given, and the server defaults (ALPN `ftp`, no early data).
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub(super) fn build_server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<RootCertStore>,
    max_version: TlsVersion,
) -> Result<ServerConfig, TlsError> {
    let provider = crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(protocol_versions(max_version))?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|err| rustls::Error::General(alloc::format!("client verifier: {err}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(cert_chain, key)?;
    apply_server_defaults(&mut config);
    Ok(config)
}

/// A base client config: the crate's provider, TLS 1.3 and 1.2, the given trust anchors, no
/// client certificate, ALPN `ftp`, no early data. Derive the per-control config with
/// [`client_config_for_control`]. [`client_config_from_options`](super::client_config_from_options)
/// builds one from plain options (PEM bytes, a TLS version cap, ...).
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub fn client_config(roots: RootCertStore) -> Result<ClientConfig, TlsError> {
    build_client_config(
        crypto_provider(),
        ServerCheck::Roots(roots),
        None,
        TlsVersion::Tls13,
    )
}

/// Like [`client_config`], presenting a client certificate chain (end-entity first) and its
/// private key.
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub fn client_config_with_certificate(
    roots: RootCertStore,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ClientConfig, TlsError> {
    build_client_config(
        crypto_provider(),
        ServerCheck::Roots(roots),
        Some((cert_chain, key)),
        TlsVersion::Tls13,
    )
}

/// A base server config: the crate's provider, TLS 1.3 and 1.2, the given certificate chain
/// (end-entity first) and key, no client authentication, ALPN `ftp`, no early data. Derive the
/// per-control config with [`server_config_for_control`].
/// [`server_config_from_options`](super::server_config_from_options) builds one from plain
/// options (PEM bytes, a TLS version cap, ...).
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsError> {
    build_server_config(cert_chain, key, None, TlsVersion::Tls13)
}

/// Like [`server_config`], requiring a client certificate that chains to `client_roots`.
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub fn server_config_with_client_auth(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: RootCertStore,
) -> Result<ServerConfig, TlsError> {
    build_server_config(cert_chain, key, Some(client_roots), TlsVersion::Tls13)
}

/// Applies this crate's client defaults to a config built elsewhere (a custom verifier, a
/// version limit): ALPN `ftp`, no early data, SNI for DNS names.
#[cfg(feature = "std")]
pub fn apply_client_defaults(config: &mut ClientConfig) {
    config.alpn_protocols = alloc::vec![ALPN_FTP.to_vec()];
    config.enable_early_data = false;
    // SNI goes out whenever the server name is a DNS name (never for an IP address).
    config.enable_sni = true;
}

#[cfg(feature = "std")]
fn apply_server_defaults(config: &mut ServerConfig) {
    config.alpn_protocols = alloc::vec![ALPN_FTP.to_vec()];
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
}

/// The client config for ONE control connection and all of its data connections: a clone of
/// `base` (same verifier and certificate resolver, which rustls compares by pointer before it
/// resumes) with a private in-memory session store, ALPN `ftp`, early data off, and the RFC
/// 9149 `ticket_request` [`CLIENT_TICKET_REQUEST`] so that a server which honours it (ours)
/// hands out a fresh TLS 1.3 ticket on every data connection.
///
/// rustls keys its session cache only by server name, so a store shared by two control
/// connections to one host would let A's data connection resume B's session, which a server
/// that binds data to control (ProFTPD, FileZilla Server, ours) rejects. Use the returned
/// config, with the control connection's server name, for every data connection of that
/// control connection.
#[cfg(feature = "std")]
pub fn client_config_for_control(base: &Arc<ClientConfig>) -> Arc<ClientConfig> {
    let mut config = ClientConfig::clone(base);
    config.resumption = rustls::client::Resumption::in_memory_sessions(CLIENT_SESSIONS_PER_CONTROL);
    config.send_ticket_request = Some(CLIENT_TICKET_REQUEST);
    apply_client_defaults(&mut config);
    Arc::new(config)
}

/// The server config for ONE control connection: a clone of `base` with a private session
/// store, ALPN `ftp`, and early data off (`max_early_data_size = 0`). The control connection
/// sends rustls's default 2 TLS 1.3 tickets (clients read the control channel). Derive the
/// config for its data connections with [`server_config_for_data`].
///
/// The unbuffered server connection offers no per-connection resumption data, so the session
/// store is what binds a data connection to its control connection: sessions minted on another
/// control connection are simply unknown here. That only holds for *stateful* tickets (kept in
/// the store): a stateless ticketer would let any ticket encrypted with the shared key resume
/// anywhere. So the ticketer is replaced with one that never produces tickets, whatever `base`
/// had.
///
/// Within the control connection, TLS 1.3 tickets are reusable (the store hands them out
/// without removing them), like TLS 1.2 session ids.
#[cfg(feature = "std")]
pub fn server_config_for_control(base: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    server_config_for_control_tracked(base).0
}

/// [`server_config_for_control`], with the [`TicketReuse`] its session store records into.
#[cfg(feature = "std")]
pub fn server_config_for_control_tracked(
    base: &Arc<ServerConfig>,
) -> (Arc<ServerConfig>, Arc<TicketReuse>) {
    let reuse = Arc::new(TicketReuse::default());
    let mut config = ServerConfig::clone(base);
    config.session_storage = Arc::new(ReusableTicketStore {
        sessions: ServerSessionMemoryCache::new(SERVER_SESSIONS_PER_CONTROL),
        reuse: Arc::clone(&reuse),
    });
    config.ticketer = Arc::new(StatefulTicketsOnly);
    apply_server_defaults(&mut config);
    (Arc::new(config), reuse)
}

/// Derives the config for every data connection of the control connection that uses
/// `control` (from [`server_config_for_control`]): the same session store, certificate resolver
/// and client verifier, so data connections resume the control connection's sessions, and
/// [`UNASKED_DATA_CONNECTION_TICKETS`] TLS 1.3 tickets, or as many as a client asks for with
/// RFC 9149 up to [`MAX_DATA_CONNECTION_TICKETS`], so that every client has a session to resume
/// for its next data connection.
pub fn server_config_for_data(control: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(control);
    config.send_tls13_tickets = UNASKED_DATA_CONNECTION_TICKETS;
    config.max_tls13_tickets = MAX_DATA_CONNECTION_TICKETS;
    Arc::new(config)
}

/// Like [`server_config_for_data`] without unasked tickets: for the uploads of a client that
/// re-presents tickets ([`TicketReuse::seen`]). A client that asks (RFC 9149) still gets what
/// it asks for, up to [`MAX_DATA_CONNECTION_TICKETS`].
pub fn server_config_for_data_without_unasked_tickets(
    control: &Arc<ServerConfig>,
) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(control);
    config.send_tls13_tickets = 0;
    config.max_tls13_tickets = MAX_DATA_CONNECTION_TICKETS;
    Arc::new(config)
}

/// The data-connection config that never resumes (policy [`ResumptionPolicy::Off`]): no
/// session store, no tickets, so every data handshake is a full one.
///
/// [`ResumptionPolicy::Off`]: super::ResumptionPolicy::Off
pub fn server_config_without_resumption(control: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(control);
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_tls13_tickets = 0;
    Arc::new(config)
}

/// The per-control session store: rustls's bounded memory cache, except that resuming with a
/// TLS 1.3 ticket leaves the ticket in place, and that it notices a ticket presented twice
/// ([`TicketReuse`]).
///
/// rustls takes a stateful ticket out of the store to make it single-use. That protects
/// 0-RTT data against replay (RFC 8446 §8), but early data is off here, so single use buys
/// nothing, while a client that offers one saved session on several data connections would be
/// refused (522) for it. OpenSSL servers such as vsftpd accept such reuse too (their stateless
/// tickets are reusable), and TLS 1.2 session ids are reusable anyway. The tickets stay scoped
/// to one control connection because the store is private to it.
#[cfg(feature = "std")]
#[derive(Debug)]
struct ReusableTicketStore {
    sessions: Arc<ServerSessionMemoryCache>,
    reuse: Arc<TicketReuse>,
}

#[cfg(feature = "std")]
impl StoresServerSessions for ReusableTicketStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.sessions.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.sessions.get(key)
    }

    /// A lookup that keeps the entry: the ticket stays usable for later data connections.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let found = self.sessions.get(key);
        if found.is_some() {
            self.reuse.presented(key);
        }
        found
    }

    fn can_cache(&self) -> bool {
        self.sessions.can_cache()
    }
}

/// What one control connection's client has shown about its TLS 1.3 tickets: whether it
/// presented one ticket on more than one connection (GnuTLS clients such as lftp re-present
/// the control connection's session; OpenSSL clients such as curl spend each once). Shared by
/// the control connection's session store, which records every resumption, and its session,
/// which decides from it whether an upload's data connection sends a ticket (see
/// [`UNASKED_DATA_CONNECTION_TICKETS`]).
#[cfg(feature = "std")]
#[derive(Debug, Default)]
pub struct TicketReuse {
    state: std::sync::Mutex<ReuseState>,
}

#[cfg(feature = "std")]
#[derive(Debug, Default)]
struct ReuseState {
    /// Tickets presented so far (their store keys), at most [`SERVER_SESSIONS_PER_CONTROL`].
    presented: alloc::collections::VecDeque<Vec<u8>>,
    seen: bool,
}

#[cfg(feature = "std")]
impl TicketReuse {
    /// True once the client presented a ticket it had presented before.
    pub fn seen(&self) -> bool {
        self.state.lock().map(|state| state.seen).unwrap_or(true)
    }

    fn presented(&self, key: &[u8]) {
        // A poisoned lock only means another thread panicked mid-update: the flag is a
        // heuristic, and `seen` then answers conservatively (no ticket on uploads).
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.presented.iter().any(|known| known.as_slice() == key) {
            state.seen = true;
            return;
        }
        if state.presented.len() == SERVER_SESSIONS_PER_CONTROL {
            state.presented.pop_front();
        }
        state.presented.push_back(key.to_vec());
    }
}

/// A ticketer that is disabled, so rustls issues stateful TLS 1.3 tickets kept in the
/// per-control session store (rustls's own `NeverProducesTickets` is not public).
#[cfg(feature = "std")]
#[derive(Debug)]
struct StatefulTicketsOnly;

#[cfg(feature = "std")]
impl rustls::server::ProducesTickets for StatefulTicketsOnly {
    fn enabled(&self) -> bool {
        false
    }

    fn lifetime(&self) -> u32 {
        0
    }

    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}
