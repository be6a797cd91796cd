//! Plain-data types describing a TLS channel: negotiated parameters, limits and policies.

use alloc::string::String;
use alloc::vec::Vec;

use super::TlsError;

/// How the handshake established its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeKind {
    /// A full handshake (certificate sent and verified, new session).
    Full,
    /// A full handshake that needed a HelloRetryRequest (TLS 1.3 key-share mismatch).
    FullWithHelloRetryRequest,
    /// An earlier session was resumed (TLS 1.2 session id/ticket, TLS 1.3 PSK).
    Resumed,
}

impl HandshakeKind {
    /// True for [`HandshakeKind::Resumed`].
    pub fn is_resumed(self) -> bool {
        self == Self::Resumed
    }

    pub(crate) fn from_rustls(kind: rustls::HandshakeKind) -> Self {
        match kind {
            rustls::HandshakeKind::Resumed => Self::Resumed,
            rustls::HandshakeKind::FullWithHelloRetryRequest => Self::FullWithHelloRetryRequest,
            rustls::HandshakeKind::Full => Self::Full,
        }
    }
}

/// The negotiated TLS protocol version. Only TLS 1.2 and 1.3 exist here (RFC 8996: TLS 1.0 and
/// 1.1 must not be negotiated, and rustls implements neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

/// What was negotiated, as owned plain data; available once the handshake completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Full or resumed handshake.
    pub kind: HandshakeKind,
    /// Protocol version.
    pub version: TlsVersion,
    /// IANA cipher suite number (e.g. `0x1301` for `TLS13_AES_128_GCM_SHA256`).
    pub cipher_suite: u16,
    /// The cipher suite's IANA name (e.g. `TLS13_AES_128_GCM_SHA256`).
    pub cipher_suite_name: String,
    /// The ALPN protocol both sides agreed on, if any (`b"ftp"` with this crate's configs;
    /// `None` when the peer did not use ALPN).
    pub alpn: Option<Vec<u8>>,
    /// The peer's certificate chain, DER encoded, end-entity first. Empty when the peer sent
    /// none (a server without client authentication sees no client certificate).
    pub peer_certificates: Vec<Vec<u8>>,
}

/// Buffer limits of one channel. Exceeding `max_incoming_tls` is a typed error; the outgoing
/// limit is backpressure ([`TlsChannel::write`](super::TlsChannel::write) accepts less).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsLimits {
    /// Most received TLS bytes held at once. It must hold a whole fragmented handshake message
    /// (a large certificate flight), so it defaults to 96 KiB; the minimum is one maximal TLS
    /// record ([`TlsLimits::MIN_INCOMING_TLS`]).
    pub max_incoming_tls: usize,
    /// Writes are accepted while fewer than this many encrypted bytes wait to be transmitted
    /// (the total can exceed it by one write's record overhead).
    pub max_pending_output: usize,
}

impl TlsLimits {
    /// One maximal TLS record on the wire: 5-byte header + 2^14 plaintext + 2048 expansion.
    pub const MIN_INCOMING_TLS: usize = 5 + 16_384 + 2_048;

    /// The defaults: 96 KiB incoming, 64 KiB pending output.
    pub const DEFAULT: Self = Self {
        max_incoming_tls: 96 * 1024,
        max_pending_output: 64 * 1024,
    };

    pub(crate) fn validate(self) -> Result<Self, TlsError> {
        if self.max_incoming_tls < Self::MIN_INCOMING_TLS {
            return Err(TlsError::InvalidLimit(
                "max_incoming_tls must hold one maximal TLS record (18437 bytes)",
            ));
        }
        if self.max_pending_output == 0 {
            return Err(TlsError::InvalidLimit(
                "max_pending_output must not be zero",
            ));
        }
        Ok(self)
    }
}

impl Default for TlsLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether a server channel accepts a full handshake (RFC 4217 §10.2, checklist T40).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResumptionPolicy {
    /// Full and resumed handshakes are both accepted (control connections; lenient data).
    #[default]
    Optional,
    /// Only a resumed session is accepted (data connections bound to their control
    /// connection): a full handshake fails with [`TlsError::ResumptionRequired`] as soon as the
    /// ClientHello is processed, before any server flight is handed out.
    Required,
    /// Data connections are never resumed: the server keeps no session for them and issues no
    /// ticket on them, so every data handshake is a full one. For clients whose resumption
    /// attempts fail; data connections are then bound to nothing but their port (weaker than
    /// [`Required`](Self::Required) against port theft).
    Off,
}
