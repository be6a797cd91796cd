//! What both session roles share about errors: the one table of error kinds that C result
//! codes, Python exceptions and the CLI's exit codes are derived from, and the one
//! [`UsageError`] for a caller's misuse of either session.
//!
//! Every error enum of this crate has a `kind()` returning an [`ErrorKind`]. A binding maps
//! kinds, never variants: variants are `#[non_exhaustive]` and grow, the kinds and their
//! numbers ([`ErrorKind::code`]) are stable.

/// The stable category of an error. The numbers are part of the API: a C binding returns
/// them as result codes, and they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u16)]
pub enum ErrorKind {
    /// The caller used the API wrongly (unknown id, CR/LF in an argument, wrong answer to a
    /// request, too many queued operations): nothing was sent.
    Usage = 1,
    /// The session has ended; nothing more can be done with it.
    Closed = 2,
    /// A configuration was refused (certificate or key PEM, TLS limits, TLS versions).
    Config = 3,
    /// A socket operation failed, as the driver reported it, or the connection was lost.
    Io = 4,
    /// A timer of the session expired (connect, reply, data idle, login, idle).
    TimedOut = 5,
    /// TLS failed: handshake, alert, bad record, missing session reuse.
    Tls = 6,
    /// The peer's certificate was not accepted (unknown issuer, wrong name, expired, ...).
    Certificate = 7,
    /// The peer broke the FTP protocol (malformed or unexpected reply, bytes injected around
    /// a TLS upgrade, an HTTP request on the control connection, ...).
    Protocol = 8,
    /// The peer refused with a negative reply (4yz/5yz), e.g. a refused login, `550`, a
    /// refused `AUTH TLS`, `421`.
    Refused = 9,
    /// A data connection failed: truncated without close_notify, closed early, refused peer,
    /// TLS or socket failure on it.
    Transfer = 10,
    /// The application aborted the operation.
    Aborted = 11,
    /// The peer exceeded a limit of this side (too many bad commands, failed logins or
    /// pipelined commands, a too large reply).
    Limit = 12,
}

impl ErrorKind {
    /// Every kind, in code order (for tables in bindings and tests).
    pub const ALL: [Self; 12] = [
        Self::Usage,
        Self::Closed,
        Self::Config,
        Self::Io,
        Self::TimedOut,
        Self::Tls,
        Self::Certificate,
        Self::Protocol,
        Self::Refused,
        Self::Transfer,
        Self::Aborted,
        Self::Limit,
    ];

    /// The stable number of this kind (never 0: C uses 0 for success).
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The kind with this number, if any.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// A short stable name in snake case (`"certificate"`), for logs and bindings.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::Closed => "closed",
            Self::Config => "config",
            Self::Io => "io",
            Self::TimedOut => "timed_out",
            Self::Tls => "tls",
            Self::Certificate => "certificate",
            Self::Protocol => "protocol",
            Self::Refused => "refused",
            Self::Transfer => "transfer",
            Self::Aborted => "aborted",
            Self::Limit => "limit",
        }
    }
}

impl core::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The application called a session (either role) wrongly. Nothing was sent or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// An argument contains CR or LF (command injection).
    #[error("argument contains CR or LF")]
    LineBreakInArgument,
    /// An argument is empty or malformed where the command needs one.
    #[error("invalid argument")]
    InvalidArgument,
    /// The session has ended.
    #[error("the session has ended")]
    Closed,
    /// No operation, request or transfer of this session has this id (or it already
    /// completed).
    #[error("unknown id")]
    UnknownId,
    /// The call does not fit the operation or request with this id (e.g. `write_data` on a
    /// download, a size for a CWD request); the text says what was expected.
    #[error("wrong call for this id: {0}")]
    WrongCall(&'static str),
    /// Too many operations queued at once.
    #[error("too many pending operations")]
    TooManyPending,
    /// The operation needs a TLS-protected control connection and this one is not (plaintext
    /// mode, a refused `AUTH TLS` the configuration accepted, or after `CCC`).
    #[error("the control connection is not protected by TLS")]
    NotSecured,
    /// The transfer takes no data now (`write_data` after `finish_data`/`finish_upload`, or on
    /// a transfer in the other direction).
    #[error("the transfer does not take data now")]
    NotWritable,
}

impl UsageError {
    /// [`ErrorKind::Closed`] for [`UsageError::Closed`], [`ErrorKind::Usage`] otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Closed => ErrorKind::Closed,
            _ => ErrorKind::Usage,
        }
    }
}

impl crate::tls::TlsError {
    /// [`ErrorKind::Certificate`] for a refused peer certificate, [`ErrorKind::Usage`] for the
    /// caller's misuse, [`ErrorKind::Config`] for a refused configuration, [`ErrorKind::Tls`]
    /// for everything else.
    pub fn kind(&self) -> ErrorKind {
        match self {
            error if error.certificate_problem().is_some() => ErrorKind::Certificate,
            Self::InvalidLimit(_)
            | Self::EarlyDataEnabled
            | Self::Pem(_)
            | Self::NoCertificates
            | Self::NoPrivateKey
            | Self::InvalidTrustAnchor { .. } => ErrorKind::Config,
            Self::BytesBeforeHandshake { .. } => ErrorKind::Protocol,
            Self::IncomingTooLarge { .. } => ErrorKind::Limit,
            error if error.is_usage_error() => ErrorKind::Usage,
            _ => ErrorKind::Tls,
        }
    }
}

impl crate::data::DataError {
    /// [`ErrorKind::Aborted`] when closed locally, [`ErrorKind::Certificate`] for a refused
    /// certificate, [`ErrorKind::Transfer`] otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Cancelled => ErrorKind::Aborted,
            Self::Tls(tls) if tls.kind() == ErrorKind::Certificate => ErrorKind::Certificate,
            _ => ErrorKind::Transfer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_distinct_and_round_trip() {
        for (index, kind) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(kind.code()), index + 1);
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::Certificate.code(), 7);
        assert_eq!(ErrorKind::Refused.name(), "refused");
    }

    #[test]
    fn usage_errors_are_usage_except_closed() {
        assert_eq!(UsageError::Closed.kind(), ErrorKind::Closed);
        assert_eq!(UsageError::UnknownId.kind(), ErrorKind::Usage);
        assert_eq!(UsageError::LineBreakInArgument.kind(), ErrorKind::Usage);
    }
}
