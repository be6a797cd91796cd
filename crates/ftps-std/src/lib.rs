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

pub use client::Client;
pub use ftps_kit::client::{
    ClientOptions, Error, Progress, Tracer, TransferSummary, trust_ca_file,
};
pub use ftps_proto::client::{
    ClientError, ClientTimeouts, ClientTlsMode, DataConnectionMode, DataProtection, ListingEntry,
    OpError, TraceDirection, UsageError,
};
pub use server::{Server, ServerOptions, ShutdownHandle};

pub use ftps_proto::error::ErrorKind;
pub use ftps_proto::tls::{HandshakeKind, TlsInfo, TlsVersion, Trust};
