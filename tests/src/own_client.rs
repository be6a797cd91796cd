//! This project's blocking client (`ftps_std::Client`) set up for a running peer: the data
//! connection setups the interop tests iterate over, and the options that reach an
//! [`Endpoint`] and trust its test CA.

use std::time::Duration;

use ftps_std::{ClientOptions, ClientTimeouts, ClientTlsMode, DataConnectionMode};

use crate::peers::{self, Endpoint};

/// How the data connections are set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSetup {
    /// Passive (the client connects) or active (the server connects).
    pub mode: DataConnectionMode,
    /// EPSV/EPRT (true) or PASV/PORT (false).
    pub extended: bool,
}

impl DataSetup {
    /// The command that sets the data connection up: `EPSV`, `PASV`, `EPRT` or `PORT`.
    pub fn verb(self) -> &'static str {
        match (self.mode, self.extended) {
            (DataConnectionMode::Passive, true) => "EPSV",
            (DataConnectionMode::Passive, false) => "PASV",
            (DataConnectionMode::Active, true) => "EPRT",
            (DataConnectionMode::Active, false) => "PORT",
        }
    }
}

/// Passive, extended (RFC 2428): the client's default.
pub const EPSV: DataSetup = DataSetup {
    mode: DataConnectionMode::Passive,
    extended: true,
};
/// Passive, RFC 959.
pub const PASV: DataSetup = DataSetup {
    mode: DataConnectionMode::Passive,
    extended: false,
};
/// Active, extended (RFC 2428).
pub const EPRT: DataSetup = DataSetup {
    mode: DataConnectionMode::Active,
    extended: true,
};
/// Active, RFC 959.
pub const PORT: DataSetup = DataSetup {
    mode: DataConnectionMode::Active,
    extended: false,
};

/// Options that reach `endpoint` in its TLS mode, trust its test CA, set the data connections
/// up as `data` says, and bound every wait (10 s connect, 20 s reply and data idle).
pub fn client_options(endpoint: &Endpoint, data: DataSetup) -> ClientOptions {
    let mut options = ClientOptions::new(endpoint.addr.ip().to_string());
    options.port = Some(endpoint.addr.port());
    options.tls_mode = match endpoint.tls_mode {
        peers::TlsMode::Explicit => ClientTlsMode::Explicit,
        peers::TlsMode::Implicit => ClientTlsMode::Implicit,
    };
    options.trust = ftps_std::trust_ca_file(&endpoint.ca_cert_path).expect("the test CA");
    options.data_mode = data.mode;
    options.extended_data_commands = data.extended;
    options.timeouts = ClientTimeouts {
        connect: Duration::from_secs(10),
        reply: Duration::from_secs(20),
        data_idle: Duration::from_secs(20),
    };
    options
}
