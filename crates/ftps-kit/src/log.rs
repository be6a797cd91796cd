//! What a server session reports for log lines: [`SessionEvent`]s handed to the
//! [`SessionLog`] a driver's server options name (`ftps_std::server::ServerOptions::log`),
//! fed by [`SessionApp`](crate::server::SessionApp).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Something that happened in one session, for a log line. Never carries a password.
///
/// Strings from the client (user names, paths) are lossy UTF-8 of its bytes and may hold
/// control characters; `Display` quotes and escapes them, so a log line stays one line.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A control connection was accepted.
    Connected {
        /// The client's address.
        peer: SocketAddr,
        /// Implicit FTPS (TLS from the first byte) rather than explicit (`AUTH TLS`).
        implicit: bool,
    },
    /// The control connection is protected by TLS.
    Secured {
        /// The protocol version (`TLSv1.3`, `TLSv1.2`).
        version: String,
        /// The cipher suite's IANA name.
        cipher: String,
    },
    /// A login succeeded.
    LoggedIn {
        /// The user name.
        user: String,
    },
    /// A login was refused by the [`Auth`](crate::auth::Auth) backend.
    LoginRefused {
        /// The user name that was tried.
        user: String,
    },
    /// A transfer ended (with a data connection opened or attempted).
    Transfer {
        /// Download, upload or listing.
        kind: TransferKind,
        /// The requested path, joined to the working directory (not normalised).
        path: String,
        /// Payload bytes moved on the data connection (TYPE A: as sent on the wire).
        bytes: u64,
        /// From the server's acceptance of the request to the end of the transfer (for an
        /// upload: its commit).
        duration: Duration,
        /// The transfer completed (and an upload was committed under its name).
        ok: bool,
        /// The data connection's TLS resumed the control connection's session.
        resumed_tls: bool,
    },
    /// A policy or defence refusal: data TLS not resuming (522), PROT P required, PROT C or
    /// CCC refused, bounce PORT/EPRT, port theft, TLS required before USER, a missing client
    /// certificate. Refusals that end the session (too many failed logins, commands after
    /// AUTH, an HTTP request, …) are the `reason` of [`Closed`](Self::Closed).
    Refused {
        /// What was refused, as text.
        reason: String,
    },
    /// A file-system request answered by the [`Storage`](crate::storage::Storage): every change
    /// (delete, rename, mkdir, rmdir) whatever its outcome, and any other request only when
    /// refused (a refused upload, a download of a missing file, a refused `CWD`, …). Accepted
    /// transfers are reported as [`Transfer`](Self::Transfer) when they end.
    FileOp {
        /// What was asked.
        op: FileOp,
        /// The path, joined to the working directory (not normalised); for a rename, the
        /// existing name.
        path: String,
        /// A rename's new name (`None` for every other operation).
        to: Option<String>,
        /// `Ok` when done; otherwise why the storage refused, as text (`not found`,
        /// `permission denied`, `already exists`, …).
        result: Result<(), String>,
    },
    /// The session ended; always the last event of a session.
    Closed {
        /// Why; `None` after `QUIT`.
        reason: Option<String>,
    },
}

/// The direction of a [`SessionEvent::Transfer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// `RETR`.
    Download,
    /// `STOR`, `APPE`, `STOU`.
    Upload,
    /// `LIST`, `NLST`, `MLSD`.
    Listing,
}

/// The file-system operation of a [`SessionEvent::FileOp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileOp {
    /// `CWD`, `CDUP`.
    ChangeDir,
    /// `MKD`.
    MakeDir,
    /// `RMD`.
    RemoveDir,
    /// `DELE`.
    Delete,
    /// `RNFR` + `RNTO`.
    Rename,
    /// `RETR`.
    Download,
    /// `STOR`, `APPE`, `STOU` (for `STOU` the path is the directory).
    Upload,
    /// `LIST`, `NLST`, `MLSD`.
    Listing,
    /// `SIZE`.
    Size,
    /// `MDTM`.
    ModTime,
    /// `MLST`.
    Stat,
}

impl FileOp {
    /// The operation changes the file system (logged also when it succeeds).
    pub fn is_change(self) -> bool {
        matches!(
            self,
            Self::MakeDir | Self::RemoveDir | Self::Delete | Self::Rename
        )
    }
}

impl fmt::Display for FileOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ChangeDir => "cwd",
            Self::MakeDir => "mkdir",
            Self::RemoveDir => "rmdir",
            Self::Delete => "delete",
            Self::Rename => "rename",
            Self::Download => "download",
            Self::Upload => "upload",
            Self::Listing => "listing",
            Self::Size => "size",
            Self::ModTime => "mdtm",
            Self::Stat => "mlst",
        })
    }
}

/// Receives session events; called from session threads.
pub trait SessionLog: Send + Sync {
    /// One event of session number `session` (a per-server counter starting at 1) with the
    /// client at `peer`.
    fn event(&self, session: u64, peer: SocketAddr, event: &SessionEvent);
}

impl fmt::Display for TransferKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Download => "download",
            Self::Upload => "upload",
            Self::Listing => "listing",
        })
    }
}

impl fmt::Display for SessionEvent {
    /// One line of text, without the session number or peer: `upload /a.bin 1048576 bytes in
    /// 0.12 s (8.7 MB/s) ok, data TLS resumed`, `rename "/a" -> "/b" ok`, `refused: …`. Text
    /// from the client (user names, paths, reasons) has its control characters escaped and
    /// file-operation paths are quoted, so a client cannot forge or garble a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected { implicit, .. } => {
                let mode = if *implicit { "implicit" } else { "explicit" };
                write!(f, "connected ({mode} FTPS)")
            }
            Self::Secured { version, cipher } => write!(
                f,
                "TLS established: {}, {}",
                Printable(version),
                Printable(cipher)
            ),
            Self::LoggedIn { user } => write!(f, "logged in as {}", Printable(user)),
            Self::LoginRefused { user } => write!(f, "login refused for {}", Printable(user)),
            Self::Transfer {
                kind,
                path,
                bytes,
                duration,
                ok,
                resumed_tls,
            } => {
                let secs = duration.as_secs_f64();
                let path = if path.is_empty() { "." } else { path };
                write!(
                    f,
                    "{kind} {} {bytes} bytes in {secs:.2} s ({}) {}, data TLS {}",
                    Printable(path),
                    Rate(*bytes, secs),
                    if *ok { "ok" } else { "FAILED" },
                    if *resumed_tls {
                        "resumed"
                    } else {
                        "not resumed"
                    }
                )
            }
            Self::FileOp {
                op,
                path,
                to,
                result,
            } => {
                if result.is_err() {
                    f.write_str("refused: ")?;
                }
                write!(f, "{op} {}", Quoted(path))?;
                if let Some(to) = to {
                    write!(f, " -> {}", Quoted(to))?;
                }
                match result {
                    Ok(()) => f.write_str(" ok"),
                    Err(reason) => write!(f, " — {}", Printable(reason)),
                }
            }
            Self::Refused { reason } => write!(f, "refused: {}", Printable(reason)),
            Self::Closed { reason: None } => f.write_str("closed after QUIT"),
            Self::Closed {
                reason: Some(reason),
            } => write!(f, "closed: {}", Printable(reason)),
        }
    }
}

/// Client text with its control characters (and nothing else) escaped.
struct Printable<'a>(&'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Client text in double quotes, with control characters, quotes and backslashes escaped, so
/// a name with spaces (or a quote) cannot blur where it ends.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' | '\\' => write!(f, "\\{c}")?,
                c if c.is_control() => write!(f, "{}", c.escape_default())?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A transfer rate in decimal megabytes per second, like most download tools.
struct Rate(u64, f64);

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(bytes, secs) = *self;
        if secs <= 0.0 {
            return f.write_str("-- MB/s");
        }
        // Precision loss above 2^53 bytes is irrelevant for a rate.
        #[allow(clippy::cast_precision_loss)]
        let mbps = bytes as f64 / secs / 1e6;
        write!(f, "{mbps:.1} MB/s")
    }
}
