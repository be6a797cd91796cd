//! Real FTPS peers (vsftpd, ProFTPD, pyftpdlib) started on 127.0.0.1 for interop tests, and a
//! `curl` wrapper to drive them.
//!
//! Every peer listens on 127.0.0.1 only, on a free high port, with its own config, certificate
//! and file root in a temporary directory. Start-up waits are bounded. The peer runs in its own
//! process group; dropping the handle (also while a test panics) kills the group and reaps the
//! process. As a second line of defence the peer gets `SIGKILL` when the thread that started it
//! ends (Linux parent-death signal, set by `setpriv`), so a peer cannot outlive its test, and
//! must not be shared between tests through a `static`.
//!
//! The programs come from `scripts/install-peers.sh`; a missing one is an error, never a skip.

mod curl;
mod lftp;
mod pki;
mod process;
mod proftpd;
mod pyftpdlib;
mod vsftpd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use curl::Curl;
pub use lftp::{DEFAULT_RUN_TIMEOUT, Lftp, LftpRun, PRIORITY_TLS12_ONLY, PRIORITY_TLS13_ONLY};
pub use pki::TestPki;
pub use proftpd::{CccPolicy, PROFTPD_INSTALL_PREFIX, PROFTPD_USER, Proftpd, ProftpdBuilder};
pub use pyftpdlib::{Pyftpdlib, PyftpdlibBuilder};
pub use vsftpd::{TEST_USER, Vsftpd, VsftpdBuilder};

/// How long a peer may take to start listening before start-up fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How TLS starts on the control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP first, then `AUTH TLS` (RFC 4217); URL scheme `ftp://`.
    Explicit,
    /// TLS from the first byte (the de-facto "FTPS" port-990 style); URL scheme `ftps://`.
    Implicit,
}

/// Which TLS versions a peer accepts (TLS 1.2 is always the minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 only: a client that insists on 1.3 is refused.
    Tls12Only,
    /// TLS 1.2 and 1.3; 1.3 is negotiated when the client offers it.
    UpToTls13,
}

/// Everything a client needs to reach and log in to a running peer.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Control connection address (always on 127.0.0.1).
    pub addr: SocketAddr,
    /// Explicit or implicit TLS on the control connection.
    pub tls_mode: TlsMode,
    /// Login name.
    pub user: String,
    /// Login password.
    pub password: String,
    /// Directory the login lands in; files put here are visible to the client and vice versa.
    pub root_dir: PathBuf,
    /// PEM of the CA that issued the server certificate (for `localhost` and 127.0.0.1).
    pub ca_cert_pem: String,
    /// The same CA certificate as a file, for clients that take a path (`curl --cacert`).
    pub ca_cert_path: PathBuf,
}

impl Endpoint {
    /// URL of `path` (relative to the login directory) with the scheme matching the TLS mode.
    pub fn url(&self, path: &str) -> String {
        let scheme = match self.tls_mode {
            TlsMode::Explicit => "ftp",
            TlsMode::Implicit => "ftps",
        };
        format!("{scheme}://{}/{}", self.addr, path.trim_start_matches('/'))
    }
}

/// Why a peer (or the curl client) could not be started or used.
///
/// `Debug` prints the same text as `Display`, so that `.unwrap()` in a test shows the peer's
/// log as readable lines.
#[derive(thiserror::Error)]
pub enum PeerError {
    /// A program the harness needs is not installed.
    #[error("`{program}` not found; run scripts/install-peers.sh as root")]
    MissingProgram {
        /// The program name.
        program: String,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper command (useradd, chpasswd, curl ...) exited unsuccessfully.
    #[error("{command} failed ({status}): {output}")]
    CommandFailed {
        /// The command line, without secrets.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its stderr (and stdout where useful).
        output: String,
    },
    /// The peer did not become ready within the bounded wait.
    #[error("{peer} not ready after {waited:?}: {reason}\n--- {peer} log ---\n{log}")]
    NotReady {
        /// Which peer.
        peer: &'static str,
        /// How long the harness waited.
        waited: Duration,
        /// What went wrong (exited, timed out, unexpected greeting).
        reason: String,
        /// The peer's own log and stderr.
        log: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Certificate(#[from] rcgen::Error),
}

impl std::fmt::Debug for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl PeerError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Result type of the peer harness.
pub type Result<T> = std::result::Result<T, PeerError>;
