//! # ftps-std — a blocking driver for the ftps engine
//!
//! Runs the sans-IO [`ftps_proto`] sessions over `std::net` sockets: the session decides
//! everything about the protocol; this crate connects, listens, reads, writes and waits
//! (poll(2) over the control and data sockets, with the session's deadline as timeout).
//!
//! ```no_run
//! use ftps_std::{Client, ClientOptions};
//!
//! let mut options = ClientOptions::new("ftp.example.org");
//! options.trust = ftps_std::trust_ca_file("ca.pem")?; // default: Mozilla's roots
//! let mut client = Client::connect(options)?; // explicit FTPS, TLS required
//! client.login("user", "secret")?;            // + PBSZ 0 / PROT P
//! let mut file = Vec::new();
//! let summary = client.retrieve("report.csv", 0, &mut file)?;
//! println!("{} bytes, data TLS resumed: {:?}", summary.bytes, summary.resumed);
//! client.quit()?;
//! # Ok::<(), ftps_std::Error>(())
//! ```
//!
//! The [`server`] module runs the server role: [`Server`] listens for explicit and implicit
//! FTPS, runs one session per thread, and answers the session's requests from a
//! [`server::Storage`] (the jailed [`server::LocalFs`]) and a [`server::Auth`] (the argon2
//! [`server::UserTable`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use ftps_proto::tls::{self, ServerTlsOptions};
//! use ftps_std::server::{LocalFs, Server, ServerOptions, ServerSessionConfig, UserTable};
//!
//! let tls = ServerTlsOptions::from_pem(&std::fs::read("cert.pem")?, &std::fs::read("key.pem")?)?;
//! let mut users = UserTable::new();
//! users.add_user("alice", "$argon2id$v=19$m=19456,t=2,p=1$...")?;
//! let server = Server::bind(ServerOptions {
//!     session: ServerSessionConfig::new(Arc::new(tls::server_config_from_options(&tls)?)),
//!     explicit: vec!["[::]:2121".parse().unwrap()],
//!     implicit: vec!["[::]:9990".parse().unwrap()],
//!     passive_ports: Some(50000..=50100),
//!     advertised_address: None,
//!     storage: Arc::new(LocalFs::new("/srv/ftp")?),
//!     auth: Arc::new(users),
//!     log: None,
//!     limits: ftps_std::server::SessionLimits::default(),
//! })?;
//! server.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod client;
mod link;
mod net;
pub mod server;

// The README's Rust examples compile as doctests of this crate (it depends on both the core
// and this driver).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub use client::{Client, ClientOptions, Progress, Tracer, TransferSummary, trust_ca_file};
pub use ftps_proto::client::{
    ClientError, ClientTimeouts, ClientTlsMode, DataConnectionMode, DataProtection, ListingEntry,
    OpError, TraceDirection, UsageError,
};
pub use server::{Server, ServerOptions, ShutdownHandle};

use ftps_proto::codec::reply::Reply;
pub use ftps_proto::error::ErrorKind;
use ftps_proto::tls::TlsError;
pub use ftps_proto::tls::{HandshakeKind, TlsInfo, TlsVersion, Trust};

/// Everything the blocking client can fail with. Each variant names its cause; a refused
/// operation carries the server's reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local I/O error (reading an upload source, writing a download sink, polling).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The host name resolved to no address.
    #[error("the host name resolved to no address")]
    NoAddress,
    /// The host is neither a DNS name nor an IP address usable for certificate checks.
    #[error("invalid host name {0:?}")]
    InvalidHostName(String),
    /// The TLS configuration was refused (including trust anchors, client certificates and
    /// keys that could not be parsed or used).
    #[error("TLS configuration: {0}")]
    Tls(#[from] TlsError),
    /// The operation failed; the session goes on (a 4yz/5yz reply is [`OpError::Rejected`]).
    #[error("{0}")]
    Operation(OpError),
    /// The session ended (`None`: an orderly end, e.g. after QUIT).
    #[error("the session ended{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Closed(Option<ClientError>),
    /// The API was misused (e.g. CR/LF inside a path).
    #[error("usage: {0}")]
    Usage(#[from] UsageError),
    /// A positive reply whose text could not be understood (SIZE, MDTM, PWD).
    #[error("could not understand the reply {}", .0.code)]
    UnparsableReply(Reply),
}

impl Error {
    /// The stable category of this error, from the core's one table ([`ErrorKind`]); a local
    /// I/O error (a file, DNS, polling) is [`ErrorKind::Io`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io(_) | Self::NoAddress => ErrorKind::Io,
            Self::InvalidHostName(_) => ErrorKind::Usage,
            Self::Tls(error) => error.kind(),
            Self::Operation(error) => error.kind(),
            Self::Closed(Some(error)) => error.kind(),
            Self::Closed(None) => ErrorKind::Closed,
            Self::Usage(error) => error.kind(),
            Self::UnparsableReply(_) => ErrorKind::Protocol,
        }
    }

    /// The server's reply when an operation was refused.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Operation(OpError::Rejected { reply }) | Self::UnparsableReply(reply) => {
                Some(reply)
            }
            _ => None,
        }
    }
}
