//! Errors of the TLS adapter.

/// Everything that can go wrong on a [`TlsChannel`](super::TlsChannel).
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
}

impl From<rustls::Error> for TlsError {
    fn from(err: rustls::Error) -> Self {
        Self::Rustls(err)
    }
}
