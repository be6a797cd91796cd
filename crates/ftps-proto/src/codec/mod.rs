//! The FTP control-channel codec: pure, incremental and bounded.
//!
//! Nothing here knows about TLS or sessions; the session layers call these parsers on the bytes
//! of a channel after any TLS has been removed.

pub mod addr;
pub mod command;
pub mod line;
pub mod listing;
pub mod reply;
