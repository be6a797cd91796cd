//! What the client session reports: events, operation ids and errors.

use alloc::vec::Vec;

use crate::codec::addr::AddrError;
use crate::codec::listing::{ListLine, ListingError, MlsxEntry};
use crate::codec::reply::{Reply, ReplyError};
use crate::data::DataError;
use crate::io::IoErrorKind;
use crate::tls::{TlsError, TlsInfo};

/// Names one queued operation. Returned by the session's verbs and carried by its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(u64);

impl OpId {
    pub(crate) const fn new(id: u64) -> Self {
        Self(id)
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

/// What the session tells the application. Data slices are borrowed until the next call on
/// the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent<'a> {
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
    /// [`SessionConfig::trace_control`](super::SessionConfig::trace_control) is on, in the
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
    /// A chunk of a download (RETR), borrowed until the next call.
    Data {
        /// The transfer.
        op: OpId,
        /// The bytes.
        bytes: &'a [u8],
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
    /// A transfer's data connection ended cleanly and its final 2yz reply arrived.
    TransferCompleted {
        /// The transfer.
        op: OpId,
        /// Payload bytes moved.
        bytes: u64,
        /// Whether the data connection's TLS session resumed the control connection's
        /// (`None` in clear).
        resumed: Option<bool>,
    },
    /// An operation ended: its final reply, or why it failed. Reported once per operation.
    Completed {
        /// The operation.
        op: OpId,
        /// The final reply (2yz), or the failure (a 4yz/5yz reply is
        /// [`OpError::Rejected`]).
        result: Result<Reply, OpError>,
    },
    /// The session ended. Reported exactly once, last; `None` after an orderly `QUIT`.
    Closed {
        /// Why, when it was not an orderly end.
        error: Option<ClientError>,
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

/// The application misused the session API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// An argument contains CR or LF (command injection).
    #[error("argument contains CR or LF")]
    LineBreakInArgument,
    /// An argument is empty where the command needs one.
    #[error("invalid argument")]
    InvalidArgument,
    /// The session has ended.
    #[error("the session is closed")]
    Closed,
    /// No such operation (or it already completed).
    #[error("unknown operation")]
    UnknownOp,
    /// The operation is not a transfer in the needed direction.
    #[error("the operation cannot do that: {0}")]
    WrongOp(&'static str),
    /// Too many operations queued.
    #[error("too many pending operations")]
    TooManyPending,
    /// The operation needs a TLS-protected control connection and this one is not (plaintext
    /// mode, a refused `AUTH TLS` the configuration accepted, or after `CCC`).
    #[error("the control connection is not protected by TLS")]
    NotSecured,
}
