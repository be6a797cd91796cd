//! # libftps — the C ABI of the ftps engine
//!
//! Both sans-IO sessions of [`ftps_proto`] behind opaque handles, one to one: a C program owns
//! its sockets and its event loop (poll, epoll, libuv…), feeds each session what happened with
//! the time of its own monotonic clock (`uint64_t` nanoseconds), and drains it with one
//! `poll_output` call that returns a tagged struct. No protocol behaviour is added here: every
//! decision is the core's.
//!
//! Conventions (the rustls-ffi style), stated once for every function:
//! - every function returns an [`ftps_result`]: `FTPS_OK`, one of the core's error kinds
//!   (the same numbers as `ftps_proto::error::ErrorKind`), or a binding code (NULL parameter,
//!   insufficient buffer, invalid parameter, panic, poisoned session);
//!   [`ftps_last_error_message`] gives the text of the last failure on this thread;
//! - objects are opaque, made by `*_new` and released by the matching `*_free` (which accepts
//!   NULL); outputs are written through pointers the caller owns;
//! - a buffer argument is a pointer and a length; NULL is allowed only with length 0;
//! - data an event points into (reply text, names, listing entries, messages) is owned by the
//!   session and valid until the next call on that session;
//! - no panic crosses the boundary: a panic inside a session call returns `FTPS_ERR_PANIC` and
//!   poisons that session (every later call returns `FTPS_ERR_POISONED`, `*_free` still works);
//! - a session is not thread-safe: it may move between threads, but calls on one session must
//!   not overlap (use a lock).

#![allow(non_camel_case_types)]

mod client;
mod config;
mod ffi;
mod server;
mod types;

pub use client::*;
pub use config::*;
pub use ffi::{ftps_last_error_message, ftps_result, ftps_result_name};
pub use server::*;
pub use types::*;

/// The library version as a NUL-terminated string (`"0.1.0"`), static.
#[unsafe(no_mangle)]
pub extern "C" fn ftps_version() -> *const core::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
