//! The client session's configuration: plain data with safe defaults.

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::time::Duration;

use crate::codec::reply::ReplyLimits;
use crate::tls::{ClientConfig, ServerName, TlsLimits};

/// How the control connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientTlsMode {
    /// Explicit FTPS: plaintext greeting, then `AUTH TLS`; TLS is required — a refusal ends
    /// the session (QUIT) and no credential is ever sent in clear (RFC 4217 §4; checklist §9.3).
    #[default]
    Explicit,
    /// Implicit FTPS: TLS from the first byte (port 990); the greeting arrives inside TLS.
    Implicit,
    /// Explicit FTPS where the caller explicitly accepts plaintext when the server answers
    /// `AUTH TLS` with 4yz/5yz (RFC 4217 §4.1 "MAY continue unprotected"). Credentials then
    /// travel in clear.
    ExplicitIfAvailable,
    /// Plain FTP, no TLS at all: only when the caller explicitly asks for it.
    Plaintext,
}

impl ClientTlsMode {
    /// The control port a server listens on for this mode when none is given: 990 for
    /// implicit FTPS (IANA `ftps`), 21 otherwise (RFC 959, RFC 4217 §4).
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Implicit => 990,
            _ => 21,
        }
    }
}

/// Data-connection protection (`PROT`, RFC 4217 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataProtection {
    /// `PROT P`: every data connection inside TLS (the default). A server refusing `PBSZ`/`PROT`
    /// ends the session: data never flows in clear.
    #[default]
    Private,
    /// `PROT C`: data connections in clear (only on request).
    Clear,
}

/// Who opens the data connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataConnectionMode {
    /// `EPSV`, falling back to `PASV` on 500/502 (and remembering it): the client connects.
    #[default]
    Passive,
    /// `EPRT`, falling back to `PORT` on 500/502 for IPv4: the server connects to a listener
    /// the driver opens.
    Active,
}

/// ClientTimeouts, measured on the caller's clock and reported through `Output::Wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// TCP connect (control and data) and the control TLS handshake.
    pub connect: Duration,
    /// Waiting for a reply on the control connection.
    pub reply: Duration,
    /// No byte moved on an open data connection.
    pub data_idle: Duration,
}

impl Default for ClientTimeouts {
    /// 30 s connect, 60 s reply, 120 s data idle.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            reply: Duration::from_secs(60),
            data_idle: Duration::from_secs(120),
        }
    }
}

/// Buffer and queue limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Reply line length and lines per reply.
    pub reply: ReplyLimits,
    /// TLS buffers of the control and data connections.
    pub tls: TlsLimits,
    /// Operations queued at once; more is a usage error.
    pub max_pending_ops: usize,
    /// Received data held per data connection until the application takes it.
    pub data_buffer: usize,
    /// Longest line of a directory listing.
    pub max_listing_line: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            reply: ReplyLimits::default(),
            tls: TlsLimits::default(),
            max_pending_ops: 64,
            data_buffer: 64 * 1024,
            max_listing_line: crate::codec::listing::DEFAULT_MAX_LISTING_LINE_LEN,
        }
    }
}

/// Everything a [`ClientSession`](super::ClientSession) needs to know before it starts.
#[derive(Debug, Clone)]
pub struct ClientSessionConfig {
    /// The control connection's peer. Passive data connections go to this IP unless
    /// [`trust_pasv_address`](Self::trust_pasv_address) is set; active data connections must
    /// come from it.
    pub peer: SocketAddr,
    /// The name the server certificate is checked against (and sent as SNI when a DNS name),
    /// on the control connection and on every data connection.
    pub server_name: ServerName<'static>,
    /// The base TLS configuration; the session clones it once (with a private resumption
    /// store) for its control connection and all of its data connections.
    pub tls: Arc<ClientConfig>,
    /// Control-connection security.
    pub tls_mode: ClientTlsMode,
    /// Data-connection protection set up by the login; switch it later with
    /// [`ClientSession::set_data_protection`](super::ClientSession::set_data_protection).
    pub data_protection: DataProtection,
    /// Passive (default) or active data connections.
    pub data_mode: DataConnectionMode,
    /// Connect to the address a `227` reply names instead of the control peer's IP. Off by
    /// default (NAT, CVE-2020-8284).
    pub trust_pasv_address: bool,
    /// Use `EPSV`/`EPRT` (RFC 2428, the default, with `PASV`/`PORT` as fallback on 500/502).
    /// `false` sends `PASV`/`PORT` from the start, for servers or middleboxes that mishandle
    /// the extended commands (curl's `--disable-epsv`/`--disable-eprt`); IPv6 still needs the
    /// extended ones.
    pub extended_data_commands: bool,
    /// Timeouts.
    pub timeouts: ClientTimeouts,
    /// Limits.
    pub limits: ClientLimits,
    /// Report every control-connection line sent and received as
    /// [`ClientEvent::ControlLine`](super::ClientEvent::ControlLine) (with the `PASS`/`ACCT`
    /// argument redacted), e.g. for a `-v` dialogue. Off by default.
    pub trace_control: bool,
}

impl ClientSessionConfig {
    /// A configuration with the defaults: explicit TLS required, `PROT P`, passive mode,
    /// the `227` address ignored.
    pub fn new(peer: SocketAddr, server_name: ServerName<'static>, tls: Arc<ClientConfig>) -> Self {
        Self {
            peer,
            server_name,
            tls,
            tls_mode: ClientTlsMode::default(),
            data_protection: DataProtection::default(),
            data_mode: DataConnectionMode::default(),
            trust_pasv_address: false,
            extended_data_commands: true,
            timeouts: ClientTimeouts::default(),
            limits: ClientLimits::default(),
            trace_control: false,
        }
    }
}
