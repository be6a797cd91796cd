//! What the client session reports: events, operation ids and errors.

use alloc::vec::Vec;

use crate::codec::addr::AddrError;
use crate::codec::listing::{FtpTime, ListLine, ListingError, MlsxEntry};
use crate::codec::reply::{Reply, ReplyError};
use crate::data::DataError;
use crate::error::ErrorKind;
use crate::io::IoErrorKind;
use crate::tls::{TlsError, TlsInfo};

/// Names one queued operation. Returned by the session's verbs and carried by its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(u64);

impl OpId {
    pub(crate) const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The id with this number (from [`get`](Self::get)), for bindings that pass ids as
    /// integers. A number the session never handed out is refused by the session
    /// ([`UsageError::UnknownId`](crate::error::UsageError::UnknownId)).
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The number, for logs and bindings.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// One entry of a directory listing, parsed from the data connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListingEntry {
    /// An `MLSD` line: facts and name (RFC 3659 §7).
    Mlsd(MlsxEntry),
    /// A `LIST` line, as well as it could be understood.
    List(ListLine),
    /// An `NLST` line: a bare pathname.
    Name(Vec<u8>),
    /// A line that could not be parsed (too long, or a malformed `MLSD` entry).
    Invalid(ListingError),
}

/// Which way a traced control-connection line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceDirection {
    /// A command line the client sent.
    Sent,
    /// A reply line the client received.
    Received,
}

/// What the session tells the application: owned plain data, no lifetime (downloaded bytes are
/// announced by [`Readable`](Self::Readable) and taken with
/// [`ClientSession::read_data`](super::ClientSession::read_data)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server's greeting (220) arrived.
    Connected {
        /// The greeting.
        greeting: Reply,
    },
    /// The control connection is protected by TLS.
    Secured {
        /// The negotiated parameters.
        info: TlsInfo,
    },
    /// The session is set up (TLS and the trusted `FEAT`) and runs queued operations.
    Ready {
        /// The feature lines of the `FEAT` reply after TLS (empty if FEAT was refused).
        features: Vec<Vec<u8>>,
    },
    /// A login operation succeeded, including `PBSZ`/`PROT` under TLS.
    LoggedIn {
        /// The login operation.
        op: OpId,
    },
    /// A preliminary (1yz) reply for an operation, e.g. `150`.
    Preliminary {
        /// The operation.
        op: OpId,
        /// The reply.
        reply: Reply,
    },
    /// One line of the control-connection dialogue, reported only when
    /// [`ClientSessionConfig::trace_control`](super::ClientSessionConfig::trace_control) is on, in the
    /// order of the dialogue (before or under TLS alike). Sent lines are reported when the
    /// command is queued for sending, as encoded, except that the argument of `PASS` and
    /// `ACCT` is replaced by `****` (the secret never reaches an event). Received lines are
    /// the lines of each complete reply, code included; a multi-line reply gives one event per
    /// line. Line terminators are not included.
    ControlLine {
        /// Sent or received.
        direction: TraceDirection,
        /// The line's bytes, without CRLF.
        line: Vec<u8>,
    },
    /// Downloaded bytes (RETR, or a raw `LIST`) wait to be taken with
    /// [`read_data`](super::ClientSession::read_data). Reported once each time bytes arrive
    /// after `read_data` emptied the buffer: keep reading until it returns 0. Until they are
    /// read, the session takes no more input from the data connection, and the transfer does
    /// not complete.
    Readable {
        /// The transfer.
        op: OpId,
    },
    /// An entry of a listing (LIST, NLST, MLSD).
    Listing {
        /// The transfer.
        op: OpId,
        /// The entry.
        entry: ListingEntry,
    },
    /// An upload can take data with `write_data` (again).
    Writable {
        /// The transfer.
        op: OpId,
    },
    /// An operation ended: its final reply and what it yields, or why it failed. Reported
    /// once per operation. A transfer completes only when its data connection ended cleanly
    /// (every byte read by the application) and its final 2yz arrived.
    Completed {
        /// The operation.
        op: OpId,
        /// The final reply (2yz) with the operation's typed value, or the failure (a 4yz/5yz
        /// reply is [`OpError::Rejected`]).
        result: Result<Completion, OpError>,
    },
    /// The session ended. Reported exactly once, last; `None` after an orderly `QUIT`.
    Closed {
        /// Why, when it was not an orderly end.
        error: Option<ClientError>,
    },
}

/// A successful operation's final reply and the value parsed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The final (2yz) reply.
    pub reply: Reply,
    /// What the operation yields, parsed by the session.
    pub value: OpValue,
}

/// What a successful operation yields, beyond its reply. The session parses each verb's reply
/// once, here, so no driver or binding parses FTP replies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpValue {
    /// Nothing beyond the reply (login, CWD, DELE, RMD, rename, raw commands, ...).
    None,
    /// A path from a `257` reply: `PWD` (always), `MKD` (when the server names the directory;
    /// otherwise [`OpValue::None`]).
    Path(Vec<u8>),
    /// The size from `SIZE`'s `213` reply.
    Size(u64),
    /// The modification time from `MDTM`'s `213` reply (UTC).
    Modified(FtpTime),
    /// A transfer (download, upload, listing) moved its data.
    Transfer {
        /// Payload bytes moved.
        bytes: u64,
        /// Whether the data connection's TLS session resumed the control connection's
        /// (`None` in clear).
        resumed: Option<bool>,
    },
}

/// Why one operation failed; the session goes on unless it reported `Closed`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The server answered with a negative (4yz/5yz) reply.
    #[error("refused by the server: {}", reply.code)]
    Rejected {
        /// The reply.
        reply: Reply,
    },
    /// A positive reply the command does not allow (RFC 959 §5.4).
    #[error("unexpected reply {} to {command}", reply.code)]
    UnexpectedReply {
        /// The command the reply answered.
        command: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// The data connection failed (truncation, TLS, socket).
    #[error("data connection: {0}")]
    Data(DataError),
    /// The server asked for an account and the login had none.
    #[error("the server requires an account (ACCT)")]
    AccountRequired,
    /// The address in a `227`/`229` reply is unusable.
    #[error("bad passive address: {0}")]
    BadPassiveAddress(AddrError),
    /// The operation needs a TLS-protected control connection (`CCC`, a `PROT` switch).
    #[error("the control connection is not protected by TLS")]
    NotSecured,
    /// The operation was aborted by the application.
    #[error("aborted")]
    Aborted,
    /// The session ended before the operation completed.
    #[error("the session ended")]
    SessionClosed,
    /// A login queued before this operation failed, so it was not sent (no command runs
    /// after a refused login; a later login or `QUIT` runs again).
    #[error("not sent: the login before it failed")]
    LoginFailed,
    /// The positive reply does not carry what the command promises (a `257` without a
    /// quoted path to `PWD`, a `213` without a number to `SIZE` or a time to `MDTM`).
    #[error("could not understand the reply {} to {command}", reply.code)]
    UnparsableReply {
        /// The command the reply answered.
        command: &'static str,
        /// The reply.
        reply: Reply,
    },
}

impl OpError {
    /// The stable category of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Rejected { .. } | Self::AccountRequired | Self::LoginFailed => ErrorKind::Refused,
            Self::UnexpectedReply { .. }
            | Self::BadPassiveAddress(_)
            | Self::UnparsableReply { .. } => ErrorKind::Protocol,
            Self::Data(error) => error.kind(),
            Self::NotSecured => ErrorKind::Usage,
            Self::Aborted => ErrorKind::Aborted,
            Self::SessionClosed => ErrorKind::Closed,
        }
    }

    /// The server's reply, when the failure carries one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Rejected { reply }
            | Self::UnexpectedReply { reply, .. }
            | Self::UnparsableReply { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// TLS on the control connection failed.
    #[error("control TLS: {0}")]
    Tls(TlsError),
    /// `AUTH TLS` was not accepted with exactly `234` while TLS is required (checklist §9.3).
    #[error("the server refused AUTH TLS ({}) and TLS is required", reply.code)]
    TlsRefused {
        /// The reply.
        reply: Reply,
    },
    /// `PBSZ`/`PROT` was refused while private data connections are required.
    #[error("the server refused data protection ({})", reply.code)]
    DataProtectionRefused {
        /// The reply.
        reply: Reply,
    },
    /// The server is closing the session (421).
    #[error("service closing: {}", reply.code)]
    ServiceClosing {
        /// The 421 reply.
        reply: Reply,
    },
    /// After `CCC`, the server did not end TLS with close_notify (or sent bytes that are not
    /// TLS before it).
    #[error("CCC failed: {0}")]
    ClearFailed(TlsError),
    /// The control connection ended unexpectedly.
    #[error("the control connection was closed by the peer")]
    ConnectionLost,
    /// The control socket failed.
    #[error("control connection I/O: {0}")]
    Io(IoErrorKind),
    /// A timer expired.
    #[error("timed out: {0:?}")]
    TimedOut(TimeoutKind),
}

impl ClientError {
    /// The stable category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Protocol(error) => error.kind(),
            Self::Tls(error) | Self::ClearFailed(error) => error.kind(),
            Self::TlsRefused { .. }
            | Self::DataProtectionRefused { .. }
            | Self::ServiceClosing { .. } => ErrorKind::Refused,
            Self::ConnectionLost | Self::Io(_) => ErrorKind::Io,
            Self::TimedOut(_) => ErrorKind::TimedOut,
        }
    }

    /// The server's reply, when the error carries one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::TlsRefused { reply }
            | Self::DataProtectionRefused { reply }
            | Self::ServiceClosing { reply } => Some(reply),
            Self::Protocol(ProtocolError::UnexpectedReply { reply, .. }) => Some(reply),
            _ => None,
        }
    }
}

/// Which timer expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// A TCP connect or the control TLS handshake.
    Connect,
    /// A reply on the control connection.
    Reply,
    /// An open data connection moved no byte.
    DataIdle,
}

/// A violation of the FTP protocol by the server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A malformed or over-limit reply.
    #[error("malformed reply: {0}")]
    MalformedReply(ReplyError),
    /// A reply the command in flight cannot have (an unexpected 1yz/3yz/6yz, a reply with no
    /// command in flight, a 334 to AUTH TLS, ...).
    #[error("unexpected reply {} to {command}", reply.code)]
    UnexpectedReply {
        /// The command in flight (or "nothing").
        command: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// Plaintext bytes followed the 234 reply to `AUTH TLS` (injection, checklist §9.2).
    #[error("{count} plaintext byte(s) after the 234 reply (injection refused)")]
    PlaintextAfterAuth {
        /// How many bytes.
        count: usize,
    },
    /// An active-mode data connection came from a foreign address.
    #[error("active data connection from a foreign address")]
    ForeignDataPeer,
}

impl ProtocolError {
    /// [`ErrorKind::Limit`] for a reply over the configured limits, [`ErrorKind::Protocol`]
    /// otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MalformedReply(error) if error.is_limit() => ErrorKind::Limit,
            _ => ErrorKind::Protocol,
        }
    }
}
