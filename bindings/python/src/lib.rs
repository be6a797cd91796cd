//! # `ftps._ftps` — the sans-IO layer of the Python package
//!
//! Both sessions of [`ftps_proto`] as Python classes, one to one (the h11 style): the caller
//! owns the sockets and the event loop, feeds each session what happened with the time of its
//! monotonic clock (`time.monotonic_ns()`), and drains it with `poll_output(now)`, which
//! returns one typed object per call (`Transmit`, `Connect`, an event, …, `Wait`). The
//! blocking and asyncio drivers of the package are pure Python on top (python/ftps); no FTP
//! decision is made here or there: every one is the core's.
//!
//! Conventions, stated once:
//! - a channel is an `int`: [`CONTROL`](conv::CONTROL) (0) or a data connection's id;
//! - paths and names are `bytes` (a `str` argument is encoded as UTF-8 with
//!   `surrogateescape`, so names read from a listing round-trip);
//! - addresses are `(ip, port)` tuples with an IP literal (the session resolves no names);
//! - misuse raises `ftps.UsageError` (or `ClosedError`), nothing is sent; protocol, TLS and
//!   reply failures arrive as exception *objects* in `Completed.error` / `Closed.error`, made
//!   from the core's one error-kind table (`ftps_proto::error::ErrorKind`);
//! - no Rust panic is expected on any input; pyo3 would turn one into `PanicException`.

mod client;
mod config;
mod conv;
mod records;
mod server;

use pyo3::prelude::*;

/// The extension module, imported as `ftps._ftps` (the `ftps` package re-exports it).
#[pymodule]
fn _ftps(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CONTROL", conv::CONTROL)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    config::register(m)?;
    records::register(m)?;
    client::register(m)?;
    server::register(m)?;
    Ok(())
}
