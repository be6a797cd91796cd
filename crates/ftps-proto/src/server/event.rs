//! What the server session asks of and tells the application: requests, answers, events and
//! errors.

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::codec::command::Password;
use crate::codec::listing::{FtpTime, Permissions};
use crate::error::ErrorKind;
use crate::io::IoErrorKind;
use crate::tls::{TlsError, TlsInfo};

/// Names one request to the application. A transfer keeps its request's id for its data
/// (`write_data`, `write_entry`, `finish_data`, `read_data`, `ServerEvent::Readable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl RequestId {
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

/// Which listing a [`Request::List`] is for; the session formats the lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListFormat {
    /// `LIST`: `ls -l` lines.
    List,
    /// `NLST`: bare names.
    Nlst,
    /// `MLSD`: RFC 3659 facts.
    Mlsd,
}

/// A login or file-system decision the application makes. Paths are bytes, already joined to
/// the session's textual working directory (`/` separated, not normalised): the backend
/// resolves `.`/`..` and keeps them inside the user's root.
///
/// The `Debug` form never shows a password ([`Password`] redacts itself).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// `USER` + `PASS`: answer with `answer_login`.
    Login {
        /// The user name.
        user: Vec<u8>,
        /// The password (redacted in `Debug`).
        password: Password,
        /// The client's TLS certificate (DER, end-entity), when one was presented on the
        /// control connection.
        client_certificate: Option<Vec<u8>>,
        /// The `HOST` the client named (RFC 7151), if any.
        host: Option<Vec<u8>>,
    },
    /// `CWD`/`CDUP`: does the directory exist and may the user enter it? Answer
    /// [`Answer::Path`] with the canonical path to use as the new cwd, or [`Answer::Done`] to
    /// keep `path` as given.
    Cwd {
        /// The directory.
        path: Vec<u8>,
    },
    /// `MKD`: answer [`Answer::Done`] or [`Answer::Path`] (the name reported in `257`).
    Mkdir {
        /// The directory to create.
        path: Vec<u8>,
    },
    /// `RMD`.
    Rmdir {
        /// The directory to remove.
        path: Vec<u8>,
    },
    /// `DELE`.
    Delete {
        /// The file to delete.
        path: Vec<u8>,
    },
    /// `RNFR` + `RNTO`.
    Rename {
        /// The existing name.
        from: Vec<u8>,
        /// The new name.
        to: Vec<u8>,
    },
    /// `SIZE`: answer [`Answer::Size`].
    Size {
        /// The file.
        path: Vec<u8>,
    },
    /// `MDTM`: answer [`Answer::Modified`].
    Mdtm {
        /// The file.
        path: Vec<u8>,
    },
    /// `MLST`: answer [`Answer::Entry`].
    Mlst {
        /// The file or directory.
        path: Vec<u8>,
    },
    /// `LIST`, `NLST`, `MLSD`: answer [`Answer::Done`] when the directory can be read (or
    /// an error), then hand over its entries with `write_entry` after each
    /// `ServerEvent::Writable`, and end with `finish_data`.
    List {
        /// The directory (or file, for LIST/NLST).
        path: Vec<u8>,
        /// The listing format.
        format: ListFormat,
    },
    /// `RETR` (after `REST offset`): answer [`Answer::Done`] when the file is open, then
    /// write it with `write_data` after `ServerEvent::Writable` and end with `finish_data`.
    Retrieve {
        /// The file.
        path: Vec<u8>,
        /// Bytes to skip (REST STREAM).
        offset: u64,
    },
    /// `STOR`, `APPE`, `STOU`: answer [`Answer::Done`] when the file is open (for `STOU`,
    /// [`Answer::Path`] with the name chosen); the bytes are announced by `ServerEvent::Readable` and read with `read_data`, the end
    /// as `ServerEvent::UploadFinished`, answered (when complete) with `finish_upload`.
    Store {
        /// The file (for `STOU`: the directory to create a unique file in).
        path: Vec<u8>,
        /// Where to start writing (REST STREAM; for `APPE` an explicit offset, RFC 3659 §5).
        offset: u64,
        /// `APPE`: append at the end (when `offset` is 0).
        append: bool,
        /// `STOU`: create a new file with a unique name inside `path`.
        unique: bool,
    },
}

/// A positive answer to a [`Request`] (logins use `answer_login`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Done as asked.
    Done,
    /// Done; this is the resulting path (CWD: the new cwd; MKD: the directory; STOU: the
    /// file's name).
    Path(Vec<u8>),
    /// The exact size a transfer in the current type would send (SIZE).
    Size(u64),
    /// The modification time (MDTM).
    Modified(FtpTime),
    /// The entry (MLST).
    Entry(DirEntry),
}

/// Why the application refused a request; the session picks the reply code and a fixed text
/// (arguments are never echoed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FsError {
    /// No such file or directory (`550`).
    NotFound,
    /// Not allowed (`550`).
    PermissionDenied,
    /// Not a directory, or a directory where a file was needed (`550`; `501` for MLSD).
    WrongKind,
    /// Already exists (`550`; `553` for uploads).
    AlreadyExists,
    /// The name is not allowed (`553`).
    InvalidName,
    /// Out of space (`452` before a transfer, `552` during one).
    NoSpace,
    /// Temporarily unavailable, try again (`450`; `451` during a transfer).
    Unavailable,
    /// A local error (`451`).
    Local,
}

/// The kind of a [`DirEntry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirEntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
}

/// One directory entry as the application describes it; the session formats `LIST`, `NLST`,
/// `MLSD` and `MLST` lines from it (so formatting rules live in the core).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The name (bare name for listings, the full path for MLST).
    pub name: Vec<u8>,
    /// File, directory or link.
    pub kind: DirEntryKind,
    /// Size in octets.
    pub size: u64,
    /// Last modification (UTC).
    pub modified: Option<FtpTime>,
    /// The RFC 3659 `perm` letters.
    pub permissions: Permissions,
    /// Unix mode bits (`0o644`), for `ls -l` and `UNIX.mode`.
    pub mode: Option<u32>,
    /// An opaque unique id (`unique` fact).
    pub unique: Option<Vec<u8>>,
}

/// What the session tells the application: owned plain data, no lifetime (uploaded bytes are
/// announced by [`Readable`](Self::Readable) and taken with
/// [`ServerSession::read_data`](super::ServerSession::read_data)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The control connection is protected by TLS.
    Secured {
        /// The negotiated parameters (with the client certificate, if any).
        info: TlsInfo,
    },
    /// A decision for the application; answer it with the matching `answer*` method.
    Request {
        /// The id to answer with.
        id: RequestId,
        /// What is asked.
        request: Request,
    },
    /// A download (RETR) can take bytes with `write_data`, or a listing entries with
    /// `write_entry` (again).
    Writable {
        /// The transfer.
        id: RequestId,
    },
    /// Upload bytes wait to be taken with
    /// [`read_data`](super::ServerSession::read_data). Reported once each time bytes arrive
    /// after `read_data` emptied the buffer: keep reading until it returns 0. Until they are
    /// read, the session takes no more input from the data connection, and the upload does
    /// not finish.
    Readable {
        /// The transfer.
        id: RequestId,
    },
    /// An upload ended.
    ///
    /// `complete == true`: every byte arrived and the stream ended cleanly. The final reply
    /// waits for the application: commit the file (rename, sync) and report the outcome with
    /// [`finish_upload`](super::ServerSession::finish_upload) — `226` only after it succeeded.
    ///
    /// `complete == false` (truncated without close_notify, aborted, timed out, failed): the
    /// backend must discard or mark the file incomplete. The session has already chosen its
    /// reply (`426`, `425`, `451`, `552`, …) and waits for nothing: no answer is needed.
    UploadFinished {
        /// The transfer.
        id: RequestId,
        /// Whether every byte arrived and the stream ended cleanly.
        complete: bool,
        /// Payload bytes received on the data connection (before TYPE A conversion).
        bytes: u64,
        /// The data connection's TLS resumed the control connection's session (`false` in
        /// clear or when no handshake completed).
        resumed_tls: bool,
    },
    /// A download or listing ended.
    SendFinished {
        /// The transfer.
        id: RequestId,
        /// Whether the client received everything (our close_notify out, its end seen).
        complete: bool,
        /// Payload bytes handed to the data connection (after TYPE A conversion).
        bytes: u64,
        /// The data connection's TLS resumed the control connection's session (`false` in
        /// clear or when no handshake completed).
        resumed_tls: bool,
    },
    /// The session refused something for a policy or defence reason (for logs; the reply,
    /// if any, is already on its way). Port theft is reported as
    /// [`DataPeerRefused`](Self::DataPeerRefused); refusals that end the session come with
    /// [`Closed`](Self::Closed).
    Refused {
        /// What was refused.
        reason: Refusal,
    },
    /// A passive data connection from a host other than the control peer was refused (port
    /// theft); the session keeps waiting for the right one.
    DataPeerRefused {
        /// The refused peer.
        peer: SocketAddr,
    },
    /// The session ended. Reported exactly once, last; `None` after `QUIT`.
    Closed {
        /// Why, when it was not an orderly end.
        error: Option<ServerError>,
    },
}

/// A policy or defence refusal, reported as [`ServerEvent::Refused`]. `Display` gives a short
/// text for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// A command that needs TLS on the control connection came before `AUTH TLS` (`530`).
    TlsRequired,
    /// `PASS` without the client certificate the policy requires (a failed login).
    ClientCertificateRequired,
    /// A transfer while `PROT` is C and private data is required (`521`).
    PrivateDataRequired,
    /// `PROT C` refused by policy (`534`).
    ClearDataRefused,
    /// `CCC` refused by policy or before login (`534`).
    CccRefused,
    /// `PORT`/`EPRT` to a host other than the control peer (bounce, `500`).
    ForeignDataAddress,
    /// `PORT`/`EPRT` to a port below 1024 (`504`).
    PrivilegedDataPort,
    /// A data connection's TLS did not resume the control connection's session (`522`).
    DataTlsNotResumed,
}

impl Refusal {
    /// The reply that goes with the refusal; `None` when another reply follows (a failed
    /// login's delayed `530`).
    pub(crate) fn reply(self) -> Option<(u16, &'static [u8])> {
        Some(match self {
            Self::TlsRequired => (530, b"TLS required on the control connection (AUTH TLS)."),
            Self::ClientCertificateRequired => return None,
            Self::PrivateDataRequired => {
                // Before any 1yz (RFC 4217 §10.2, checklist T37).
                (521, b"Data connections must be protected: use PROT P.")
            }
            Self::ClearDataRefused => (534, b"PROT C refused by policy."),
            Self::CccRefused => (534, b"CCC refused by policy."),
            Self::ForeignDataAddress => {
                // Bounce defence (RFC 2577 §3).
                (500, b"Illegal PORT command: address is not the client's.")
            }
            Self::PrivilegedDataPort => (504, b"Illegal PORT command: privileged port refused."),
            Self::DataTlsNotResumed => (522, b"SSL connection failed: session reuse required."),
        })
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TlsRequired => "TLS required on the control connection before this command",
            Self::ClientCertificateRequired => "login without the required client certificate",
            Self::PrivateDataRequired => "transfer refused: PROT P required",
            Self::ClearDataRefused => "PROT C refused by policy",
            Self::CccRefused => "CCC refused",
            Self::ForeignDataAddress => "PORT/EPRT to a foreign host refused (bounce)",
            Self::PrivilegedDataPort => "PORT/EPRT to a privileged port refused",
            Self::DataTlsNotResumed => "data connection TLS did not resume the control session",
        })
    }
}

impl ServerError {
    /// The stable category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Tls(error) => error.kind(),
            Self::PipelinedAfterSecurityChange | Self::HttpRequest => ErrorKind::Protocol,
            Self::TooManyFailedLogins | Self::TooManyBadCommands | Self::TooManyPendingCommands => {
                ErrorKind::Limit
            }
            Self::IdleTimeout | Self::HandshakeTimeout | Self::LoginTimeout => ErrorKind::TimedOut,
            Self::Terminated(Termination::ShuttingDown) => ErrorKind::Closed,
            Self::Terminated(_) => ErrorKind::Limit,
            Self::ConnectionLost | Self::Io(_) => ErrorKind::Io,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The control connection's TLS failed.
    #[error("control TLS: {0}")]
    Tls(TlsError),
    /// Bytes followed `AUTH TLS` (or `CCC`) in the same plaintext (injection, checklist §9.1).
    #[error("bytes pipelined after AUTH/CCC refused (command injection)")]
    PipelinedAfterSecurityChange,
    /// The client sent an HTTP request (ALPACA, checklist §9.6).
    #[error("HTTP request on the FTP control connection")]
    HttpRequest,
    /// Too many failed logins (RFC 2577 §5).
    #[error("too many failed logins")]
    TooManyFailedLogins,
    /// Too many unknown or malformed commands.
    #[error("too many bad commands")]
    TooManyBadCommands,
    /// More pipelined commands than the limit.
    #[error("too many pending commands")]
    TooManyPendingCommands,
    /// The idle timeout expired.
    #[error("idle timeout")]
    IdleTimeout,
    /// The control connection's TLS handshake did not complete in time.
    #[error("TLS handshake timeout")]
    HandshakeTimeout,
    /// No successful login in time.
    #[error("login timeout")]
    LoginTimeout,
    /// The driver ended the session ([`ServerSession::terminate`](super::ServerSession::terminate)
    /// or [`ServerSession::refused`](super::ServerSession::refused)).
    #[error("{0}")]
    Terminated(Termination),
    /// The client closed the control connection without `QUIT`.
    #[error("control connection lost")]
    ConnectionLost,
    /// The control socket failed.
    #[error("control connection I/O: {0}")]
    Io(IoErrorKind),
}

/// Why the driver ends (or refuses) a session with `421`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Termination {
    /// The server is shutting down.
    ShuttingDown,
    /// The server holds as many sessions as it allows.
    TooManySessions,
    /// The server holds as many sessions from this client address as it allows.
    TooManyFromAddress,
}

impl Termination {
    /// The text of the `421` reply.
    pub fn reply_text(self) -> &'static [u8] {
        match self {
            Self::ShuttingDown => b"Server shutting down, closing.",
            Self::TooManySessions => b"Too many sessions, try again later.",
            Self::TooManyFromAddress => b"Too many sessions from your address, try again later.",
        }
    }
}

impl core::fmt::Display for Termination {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::ShuttingDown => "server shutting down",
            Self::TooManySessions => "too many sessions",
            Self::TooManyFromAddress => "too many sessions from this address",
        })
    }
}
