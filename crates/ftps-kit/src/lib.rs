//! # ftps-kit — what every ftps driver shares that is not sockets or tasks
//!
//! A driver moves bytes between sockets and a sans-IO [`ftps_proto`] session, carries out the
//! session's IO requests and keeps its timers (DESIGN §9). Everything else a driver does is
//! the same whether it blocks on threads (`ftps-std`), runs on tokio, or lives inside a C or
//! Python binding, so it is written once, here, and every driver calls it instead of copying
//! another driver:
//!
//! - [`storage`]: the [`Storage`](storage::Storage) trait a server answers file-system
//!   requests from, and [`LocalFs`](storage::LocalFs), a local directory tree jailed to a
//!   root.
//! - [`auth`]: the [`Auth`](auth::Auth) trait a server checks logins with, and
//!   [`UserTable`](auth::UserTable) of argon2 password hashes
//!   ([`hash_password`](auth::hash_password)).
//! - [`log`]: what a server session reports for log lines ([`SessionEvent`](log::SessionEvent))
//!   and where it goes ([`SessionLog`](log::SessionLog)).
//! - [`server`]: [`SessionApp`](server::SessionApp), the application side of one server
//!   session: it routes the session's events and requests to storage, auth and the log, runs
//!   the downloads and uploads, and commits an upload before its final reply.
//! - [`client`]: [`OpTracker`](client::OpTracker), the application side of one client
//!   session: it routes the session's events for the operation a driver runs (data, entries,
//!   completion, the end after `QUIT`) and keeps the TLS parameters, features and trace.
//! - [`drive`]: [`Drive`](drive::Drive), the run-loop steps of every driver (drain into a
//!   [`Transport`](drive::Transport), feed arrivals, fire timers, count data connections), and
//!   binding data listeners over a passive port range.
//! - [`input`]: [`InputBacklog`](input::InputBacklog), the per-channel bookkeeping of
//!   received bytes a session has not taken yet (its backpressure) and of an end of stream that
//!   must wait for them.
//! - [`limits`]: [`SessionLimits`](limits::SessionLimits) (sessions in total and per
//!   address, data connections, the login pool) and the [`Admission`](limits::Admission)
//!   counters both servers ask before starting a session or opening a data connection.
//! - [`ports`]: [`PortOrder`](ports::PortOrder), which ports of a passive port range a data
//!   listener tries, in which order.
//!
//! Nothing here runs an event loop or spawns a task (the only socket made here is a data
//! listener bound for a driver), and the only clock read is the session clock of
//! [`Drive`](drive::Drive) and log durations; the only threads are the [`LoginPool`](auth::LoginPool)'s few password
//! verifiers, shared by every session of a server whichever driver runs it.
#![forbid(unsafe_code)]

/// The core, for the paths [`client_verbs!`] expands to.
#[doc(hidden)]
pub use ftps_proto as __proto;

pub mod auth;
pub mod client;
pub mod drive;
pub mod input;
pub mod limits;
pub mod log;
pub mod ports;
pub mod server;
pub mod storage;
