//! # ftps-proto — a sans-IO FTPS engine
//!
//! FTP secured with TLS (RFC 959 + RFC 2228 + RFC 4217, updated by RFC 8996) as pure state
//! machines. This crate owns no socket, no thread and no clock: the caller feeds it the bytes it
//! read and the time it read from its own clock, and drains from it the bytes to write.
//!
//! ## Layers in this crate
//! - [`codec`]: the control-channel codec — replies ([`codec::reply`]), commands
//!   ([`codec::command`]), data-connection addresses ([`codec::addr`]) and directory listings
//!   ([`codec::listing`]). Pure functions and small incremental parsers with bounded buffers.
//! - [`tls`]: the one adapter over `rustls::unbuffered`, usable for a control or a data channel in
//!   either role, with explicit (`AUTH TLS`) and implicit upgrade, close_notify, truncation
//!   detection, CCC, and per-control-connection resumption scoping.
//! - [`client`] and [`server`]: the two session roles over the codec, the TLS adapter and the
//!   shared data-connection machine ([`data`]).
//! - [`io`]: the plain-data types the sessions share with their drivers — the caller's
//!   [`io::Instant`], channel names, IO requests and the one [`io::Output`] type a driver drains.
//!
//! ## The sans-IO contract
//! 1. **Feed** everything that happens: bytes received on a channel, end of stream.
//! 2. **Command** the engine with the application's verbs.
//! 3. **Drain** until it says it is waiting: bytes to send, events, requests.
//!
//! The engine never blocks, never reads a clock, never touches a socket or file, accepts input
//! in any chunking with the same result, keeps every buffer bounded, and never panics on peer
//! input: every fault is a typed error.
//!
#![doc = include_str!("../docs/run_loop.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod client;
pub mod codec;
pub mod data;
pub mod error;
pub mod io;
pub mod server;
pub mod tls;

/// Both sessions can move to another thread (a driver's task or a binding's handle); neither is
/// `Sync`: share one behind a lock.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<client::ClientSession>();
    assert_send::<server::ServerSession>();
};
