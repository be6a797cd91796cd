//! # ftps-tokio — an async driver for the ftps engine
//!
//! Runs the sans-IO [`ftps_proto`] sessions over tokio sockets: the async [`Client`] (the
//! blocking `ftps_std::Client`'s verbs as `async` calls, over any `AsyncRead`/`AsyncWrite`,
//! cancel-safe: a dropped call aborts its transfer with `ABOR` and the session goes on) and
//! the [`Server`], one task per session. The session decides everything about the protocol;
//! the shared driver kit ([`ftps_kit`]) builds the client's configuration, routes its events,
//! answers the server's requests from storage and auth, counts sessions against the limits
//! and verifies passwords on its small pool; this crate connects, accepts, spawns, reads,
//! writes and waits.
//!
//! ```no_run
//! use ftps_tokio::{Client, ClientOptions};
//!
//! # async fn fetch() -> Result<(), ftps_tokio::Error> {
//! let mut options = ClientOptions::new("ftp.example.org");
//! options.trust = ftps_tokio::trust_ca_file("ca.pem")?;
//! let mut client = Client::connect(options).await?;
//! client.login("user", "secret").await?;
//! let mut file = tokio::fs::File::create("report.csv").await?;
//! let summary = client.retrieve("report.csv", 0, &mut file).await?;
//! println!("{} bytes, data TLS resumed: {:?}", summary.bytes, summary.resumed);
//! client.quit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ```no_run
//! use std::sync::Arc;
//! use ftps_proto::tls::{self, ServerTlsOptions};
//! use ftps_tokio::server::{
//!     LocalFs, Server, ServerOptions, ServerSessionConfig, SessionLimits, UserTable,
//! };
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = ServerTlsOptions::from_pem(&std::fs::read("cert.pem")?, &std::fs::read("key.pem")?)?;
//! let mut users = UserTable::new();
//! users.add_user("alice", "$argon2id$v=19$m=19456,t=2,p=1$...")?;
//! let server = Server::bind(ServerOptions {
//!     session: ServerSessionConfig::new(Arc::new(tls::server_config_from_options(&tls)?)),
//!     explicit: vec!["[::]:2121".parse()?],
//!     implicit: vec![],
//!     passive_ports: Some(50000..=50100),
//!     advertised_address: None,
//!     storage: Arc::new(LocalFs::new("/srv/ftp")?),
//!     auth: Arc::new(users),
//!     log: None,
//!     limits: SessionLimits::default(),
//! })?;
//! let stop = server.shutdown_handle(); // stop.shutdown() from anywhere
//! server.run().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod client;
mod link;
pub mod server;
mod sockets;

pub use client::{Client, Download};
pub use ftps_kit::client::{
    ClientOptions, Error, Progress, Tracer, TransferSummary, trust_ca_file,
};
pub use ftps_proto::client::{
    ClientError, ClientTimeouts, ClientTlsMode, DataConnectionMode, DataProtection, ListingEntry,
    OpError, TraceDirection, UsageError,
};
pub use ftps_proto::error::ErrorKind;
pub use ftps_proto::tls::{HandshakeKind, TlsInfo, TlsVersion, Trust};
pub use server::{Server, ServerOptions, ShutdownHandle};
