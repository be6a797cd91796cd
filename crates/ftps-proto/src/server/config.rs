//! The server session's configuration: plain data with secure defaults.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use core::time::Duration;

use crate::codec::command::CommandLimits;
use crate::tls::{ResumptionPolicy, ServerConfig, TlsLimits};

/// How the control connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerTlsMode {
    /// Explicit FTPS: plaintext greeting, then `AUTH TLS` (RFC 4217 §4).
    #[default]
    Explicit,
    /// Implicit FTPS: TLS from the first byte; the greeting is sent inside TLS.
    Implicit,
}

impl ServerTlsMode {
    /// The port a listener of this mode uses by default: 990 for implicit FTPS (IANA
    /// `ftps`), 21 for explicit (RFC 959, RFC 4217 §4).
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Implicit => 990,
            Self::Explicit => 21,
        }
    }
}

/// Whether a TLS client certificate is needed to log in. Whether one is *asked for* is the
/// rustls config's business (`tls::server_config_with_client_auth`); this is the session's
/// policy on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientCertificates {
    /// Not needed; one presented is still handed to the login request.
    #[default]
    Optional,
    /// `PASS` is refused (530, counted as a failed login) without a client certificate on the
    /// control connection.
    Required,
}

/// ServerTimeouts, measured on the caller's clock and reported through `Output::Wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerTimeouts {
    /// No command received while nothing runs: `421` and close (RFC 1123 §4.1.3.2: at least
    /// 5 minutes by default).
    pub idle: Duration,
    /// No byte moved on the data connection of a running transfer (or its socket did not
    /// come): the transfer fails.
    pub data: Duration,
    /// Delay before the reply to a failed login (RFC 2577 §5).
    pub failed_login_delay: Duration,
    /// The control connection's TLS handshake (from `AUTH TLS`, or from the start in implicit
    /// mode) did not complete: the connection is dropped without a reply (none can be sent
    /// mid-handshake). Bounds what a client that stalls a handshake holds.
    pub handshake: Duration,
    /// No successful login this long after the connection came: `421` and close, whatever
    /// the client sends meanwhile (unlike `idle`, commands do not restart it).
    pub login: Duration,
}

impl Default for ServerTimeouts {
    /// 300 s idle, 120 s data, 2 s after a failed login, 15 s for the control handshake,
    /// 60 s to log in.
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(300),
            data: Duration::from_secs(120),
            failed_login_delay: Duration::from_secs(2),
            handshake: Duration::from_secs(15),
            login: Duration::from_secs(60),
        }
    }
}

/// Buffer, queue and abuse limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest command line.
    pub command: CommandLimits,
    /// TLS buffers of the control and data connections.
    pub tls: TlsLimits,
    /// Commands received and not yet answered (pipelining); more ends the session with 421.
    pub max_pending_commands: usize,
    /// Failed logins before `421` and close (RFC 2577 §5: 3–5).
    pub max_failed_logins: u32,
    /// Unknown or malformed commands before `421` and close (ALPACA hardening).
    pub max_bad_commands: u32,
    /// Bytes buffered per data connection (received payload, staged payload to send).
    pub data_buffer: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            command: CommandLimits::default(),
            tls: TlsLimits::default(),
            max_pending_commands: 32,
            max_failed_logins: 3,
            max_bad_commands: 10,
            data_buffer: 64 * 1024,
        }
    }
}

/// Everything a [`ServerSession`](super::ServerSession) needs before it starts.
#[derive(Debug, Clone)]
pub struct ServerSessionConfig {
    /// The base TLS configuration (certificate, ALPN `ftp`), or `None` for plain FTP (then
    /// set [`require_tls`](Self::require_tls) and
    /// [`require_private_data`](Self::require_private_data) to `false`). The session clones it
    /// once with a private session store, so data connections can resume only this control
    /// connection's session.
    pub tls: Option<Arc<ServerConfig>>,
    /// Explicit (`AUTH TLS`) or implicit TLS.
    pub tls_mode: ServerTlsMode,
    /// Refuse `USER`/`PASS` and everything but FEAT, HELP, QUIT, AUTH, HOST, SYST, NOOP and
    /// OPTS before the control connection is protected. Default `true`.
    pub require_tls: bool,
    /// Refuse transfers while `PROT` is C (521 before any 1yz, RFC 4217 §10.2) and refuse
    /// `PROT C` with 534. Default `true`.
    pub require_private_data: bool,
    /// Accept `CCC` (after login). Default `false`: the control channel could be tampered with
    /// afterwards (RFC 4217 §15.3).
    pub allow_ccc: bool,
    /// Whether a data connection's TLS must resume this control connection's session.
    /// Default [`ResumptionPolicy::Required`] (RFC 4217 §10.2, checklist T40).
    pub data_resumption: ResumptionPolicy,
    /// Client-certificate policy for logins.
    pub client_certificates: ClientCertificates,
    /// The IPv4 address put into `227` replies (a server behind NAT); `None` uses the address
    /// the driver's listener reports.
    pub pasv_address: Option<Ipv4Addr>,
    /// Accept `PORT`/`EPRT` to, and passive data connections from, hosts other than the
    /// control peer (FXP). Default `false` (bounce and port-theft defences).
    pub allow_foreign_data_peer: bool,
    /// Advertise `TVFS` in FEAT: the backend follows RFC 3659 §6 paths.
    pub tvfs: bool,
    /// The text of the `220` greeting (no CR or LF; never the software version by default).
    pub greeting: Vec<u8>,
    /// Timeouts.
    pub timeouts: ServerTimeouts,
    /// Limits.
    pub limits: ServerLimits,
}

impl ServerSessionConfig {
    /// The secure defaults with `tls` as the certificate configuration: explicit TLS required
    /// before login, PROT P required, CCC refused, data connections must resume the control
    /// session, bounce and port-theft defences on.
    pub fn new(tls: Arc<ServerConfig>) -> Self {
        Self {
            tls: Some(tls),
            tls_mode: ServerTlsMode::Explicit,
            require_tls: true,
            require_private_data: true,
            allow_ccc: false,
            data_resumption: ResumptionPolicy::Required,
            client_certificates: ClientCertificates::Optional,
            pasv_address: None,
            allow_foreign_data_peer: false,
            tvfs: true,
            greeting: b"FTPS server ready.".to_vec(),
            timeouts: ServerTimeouts::default(),
            limits: ServerLimits::default(),
        }
    }

    /// Plain FTP without TLS (tests, trusted networks only).
    pub fn plaintext() -> Self {
        Self {
            tls: None,
            require_tls: false,
            require_private_data: false,
            ..Self::new_without_tls()
        }
    }

    fn new_without_tls() -> Self {
        Self {
            tls: None,
            tls_mode: ServerTlsMode::Explicit,
            require_tls: true,
            require_private_data: true,
            allow_ccc: false,
            data_resumption: ResumptionPolicy::Required,
            client_certificates: ClientCertificates::Optional,
            pasv_address: None,
            allow_foreign_data_peer: false,
            tvfs: true,
            greeting: b"FTP server ready.".to_vec(),
            timeouts: ServerTimeouts::default(),
            limits: ServerLimits::default(),
        }
    }
}
