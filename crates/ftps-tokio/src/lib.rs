//! # ftps-tokio — an async driver for the ftps engine
//!
//! Runs the sans-IO [`ftps_proto`] server session over tokio sockets, one task per session:
//! the session decides everything about the protocol; the shared driver kit
//! ([`ftps_kit`]) answers requests from storage and auth, counts sessions against the
//! limits and verifies passwords on its small pool; this crate accepts, spawns, reads,
//! writes and waits.
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

pub use server::{Server, ServerOptions, ShutdownHandle};
