//! Errors of the TLS adapter and of the config builders, with plain classifications
//! ([`CertificateProblem`], [`PemProblem`]) that need no rustls type.

use alloc::string::String;

/// Everything that can go wrong on a [`TlsChannel`](super::TlsChannel), or while building a
/// configuration from PEM bytes or options ([`client_config_from_options`],
/// [`server_config_from_options`], [`root_store_from_pem`], ...).
///
/// [`client_config_from_options`]: super::client_config_from_options
/// [`server_config_from_options`]: super::server_config_from_options
/// [`root_store_from_pem`]: super::root_store_from_pem
///
/// Once a channel returned an error other than a usage error it is dead: every later call
/// returns the same error again (the value is sticky), and the only useful thing left to do is
/// to transmit [`pending_transmit`](super::TlsChannel::pending_transmit) (it may hold a fatal
/// alert) and close the transport.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls rejected the peer's data, the handshake, or the configuration.
    #[error("TLS error: {0}")]
    Rustls(#[cfg_attr(feature = "std", source)] rustls::Error),

    /// An explicit upgrade (`AUTH TLS`) was requested while plaintext bytes that followed the
    /// `AUTH TLS` command (server) or the `234` reply (client) were still buffered.
    ///
    /// A legitimate peer sends nothing there; such bytes are injected (CVE-2011-0411 /
    /// CVE-2021-22947 class) and must never be processed by anyone.
    #[error("{count} plaintext byte(s) were buffered before the TLS handshake (injection refused)")]
    BytesBeforeHandshake {
        /// How many bytes were buffered.
        count: usize,
    },

    /// The transport ended (end of stream) before the peer's close_notify: the received data
    /// may be truncated and must not be taken as complete.
    #[error("end of stream without close_notify: the TLS stream was truncated")]
    Truncated,

    /// After we sent our close_notify, the peer sent bytes that cannot start a TLS record
    /// (typically plaintext after CCC) instead of its own close_notify.
    #[error("peer skipped its close_notify and sent non-TLS bytes")]
    PeerSkippedCloseNotify,

    /// The server channel requires a resumed session and the client did a full handshake. No
    /// server handshake flight was handed out for transmission.
    #[error("TLS session resumption required but the client did a full handshake")]
    ResumptionRequired,

    /// The peer's data needs more incoming buffer than the configured limit (e.g. an oversized
    /// certificate flight).
    #[error("incoming TLS data needs more than the {limit}-byte buffer limit")]
    IncomingTooLarge {
        /// The configured limit ([`TlsLimits::max_incoming_tls`](super::TlsLimits)).
        limit: usize,
    },

    /// The configuration enables 0-RTT early data, which this adapter refuses (replayable).
    #[error("0-RTT early data must be disabled in the TLS configuration")]
    EarlyDataEnabled,

    /// A [`TlsLimits`](super::TlsLimits) value is outside its allowed range.
    #[error("invalid TLS limit: {0}")]
    InvalidLimit(&'static str),

    /// Usage error: plaintext written after close was requested.
    #[error("write after close")]
    WriteAfterClose,

    /// Usage error: bytes fed after end of stream was fed.
    #[error("input fed after end of stream")]
    InputAfterEof,

    /// Usage error: more transmit bytes consumed than were pending.
    #[error("consumed {requested} transmit byte(s) but only {pending} were pending")]
    ConsumeBeyondPending {
        /// Bytes the caller said it transmitted.
        requested: usize,
        /// Bytes that were pending.
        pending: usize,
    },

    /// Usage error: the plaintext tail (CCC) was requested before both close_notify alerts were
    /// exchanged, or while received data was still waiting to be polled.
    #[error("TLS not closed in both directions yet (or received data not yet polled)")]
    NotClosed,

    /// Usage error: the channel was finished by taking its plaintext tail.
    #[error("TLS channel already finished")]
    Finished,

    /// The record protection reached its usage limit (TLS 1.2 sequence number exhaustion).
    #[error("TLS record protection exhausted")]
    EncryptExhausted,

    /// rustls behaved in a way this adapter does not expect (a bug, not a peer fault).
    #[error("unexpected TLS engine behaviour: {0}")]
    Internal(&'static str),

    /// Configuration: PEM data could not be parsed.
    #[error("invalid PEM data: {0}")]
    Pem(PemProblem),

    /// Configuration: no certificate where at least one is needed (PEM data without a
    /// `CERTIFICATE` section, or an empty certificate list).
    #[error("no certificate found (the PEM data has no CERTIFICATE section, or the list is empty)")]
    NoCertificates,

    /// Configuration: PEM data without a private key section (`PRIVATE KEY`,
    /// `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
    #[error("no private key found in the PEM data")]
    NoPrivateKey,

    /// Configuration: a certificate given as a trust anchor could not be used as one
    /// (typically DER that is not an X.509 certificate).
    #[error("trusted certificate #{index} (counting from 0) is unusable: {reason}")]
    InvalidTrustAnchor {
        /// Its position in the PEM data or the list, from 0.
        index: usize,
        /// Why it was refused.
        reason: String,
    },
}

/// What was wrong with PEM data ([`TlsError::Pem`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemProblem {
    /// A `-----BEGIN ...-----` line without its `-----END ...-----` line.
    #[error("a section has no END line")]
    MissingSectionEnd,
    /// A malformed `-----BEGIN ...-----` line.
    #[error("malformed BEGIN line")]
    IllegalSectionStart,
    /// A section's contents are not valid base64.
    #[error("a section is not valid base64")]
    Base64,
    /// A section is larger than the PEM parser allows.
    #[error("a section is too large")]
    TooLarge,
    /// Any other parse failure, described.
    #[error("{0}")]
    Other(String),
}

/// Why a certificate was refused during a handshake, as plain data (see
/// [`TlsError::certificate_problem`]): what a binding or a CLI needs to explain the failure
/// without matching rustls types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// The certificate is not valid for the server name that was dialled.
    NotValidForName,
    /// The certificate does not chain to a trusted root (unknown CA, or self-signed).
    UnknownIssuer,
    /// The certificate's validity period ended.
    Expired,
    /// The certificate's validity period has not started (check the clocks).
    NotValidYet,
    /// The certificate was revoked.
    Revoked,
    /// A signature in the chain is invalid.
    BadSignature,
    /// Anything else (bad encoding, unsupported algorithm, wrong key usage, ...); the
    /// error's `Display` text has the details.
    Other,
}

impl TlsError {
    /// True if this error is the caller's misuse of the API rather than a fault of the peer or
    /// of the connection. Usage errors do not kill the channel.
    pub fn is_usage_error(&self) -> bool {
        matches!(
            self,
            Self::WriteAfterClose
                | Self::InputAfterEof
                | Self::ConsumeBeyondPending { .. }
                | Self::NotClosed
                | Self::Finished
                | Self::InvalidLimit(_)
                | Self::EarlyDataEnabled
        )
    }

    /// If this error is the refusal of a peer's certificate (or of a certificate given in the
    /// configuration) by the verifier, why it was refused. `None` for every other error.
    pub fn certificate_problem(&self) -> Option<CertificateProblem> {
        use rustls::CertificateError as C;
        let Self::Rustls(rustls::Error::InvalidCertificate(error)) = self else {
            return None;
        };
        Some(match error {
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                CertificateProblem::NotValidForName
            }
            C::UnknownIssuer => CertificateProblem::UnknownIssuer,
            C::Expired | C::ExpiredContext { .. } => CertificateProblem::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => CertificateProblem::NotValidYet,
            C::Revoked => CertificateProblem::Revoked,
            C::BadSignature => CertificateProblem::BadSignature,
            _ => CertificateProblem::Other,
        })
    }

    /// True if the peer offers nothing this side accepts (no common protocol version, cipher
    /// suite, signature scheme or key exchange group; e.g. a server without TLS 1.2 or 1.3).
    pub fn is_peer_incompatible(&self) -> bool {
        matches!(self, Self::Rustls(rustls::Error::PeerIncompatible(_)))
    }
}

impl From<rustls::Error> for TlsError {
    fn from(err: rustls::Error) -> Self {
        Self::Rustls(err)
    }
}
