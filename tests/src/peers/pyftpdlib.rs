//! pyftpdlib (`TLS_FTPHandler`, explicit FTPS only) as a test peer.
//!
//! pyftpdlib has no implicit-TLS mode and no CCC; its TLS comes from pyOpenSSL. The server
//! script is `tests/peers/pyftpdlib_server.py`; it needs no system user (a `DummyAuthorizer`
//! holds a random user and password).

use std::net::SocketAddr;
use std::path::PathBuf;

use tempfile::TempDir;

use super::process::{
    LOOPBACK, PeerProcess, find_program, free_port_range, random_token, read_log, write_file,
};
use super::{Endpoint, PeerError, Result, START_TIMEOUT, TestPki, TlsMode, TlsVersions};

/// The server script, run with `python3` from `PATH`.
const SERVER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/pyftpdlib_server.py");

/// Options for a pyftpdlib peer; [`Pyftpdlib::builder`] gives the defaults.
#[derive(Debug, Clone)]
pub struct PyftpdlibBuilder {
    tls_versions: TlsVersions,
    passive_port_count: u16,
}

impl PyftpdlibBuilder {
    /// TLS 1.2 only, or 1.2 and 1.3 (the default).
    pub fn tls_versions(mut self, versions: TlsVersions) -> Self {
        self.tls_versions = versions;
        self
    }

    /// Size of the passive port range (default 8 ports).
    pub fn passive_port_count(mut self, count: u16) -> Self {
        self.passive_port_count = count;
        self
    }

    /// Writes certificates and the file root to a new temp dir, starts the server and waits
    /// (at most [`START_TIMEOUT`]) for its `READY port=N` line.
    pub fn start(self) -> Result<Pyftpdlib> {
        let python = find_program("python3")?;
        let pki = TestPki::generate()?;
        let dir = tempfile::Builder::new()
            .prefix("ftps-pyftpdlib-")
            .tempdir()
            .map_err(PeerError::io("creating temp dir"))?;
        let ca_cert = dir.path().join("ca.pem");
        let server_cert = dir.path().join("server-cert.pem");
        let server_key = dir.path().join("server-key.pem");
        let output = dir.path().join("output.log");
        let root = dir.path().join("root");
        write_file(&ca_cert, &pki.ca_cert_pem)?;
        write_file(&server_cert, &pki.server_cert_pem)?;
        write_file(&server_key, &pki.server_key_pem)?;
        std::fs::create_dir(&root).map_err(PeerError::io("creating the FTP root"))?;

        let user = format!("user{}", random_token(6));
        let password = random_token(24);
        let passive = free_port_range(self.passive_port_count)?;
        let passive_arg = format!("{}-{}", passive.start(), passive.end());
        let tls_max = match self.tls_versions {
            TlsVersions::Tls12Only => "1.2",
            TlsVersions::UpToTls13 => "1.3",
        };
        let args: Vec<std::ffi::OsString> = vec![
            "-u".into(),
            SERVER_SCRIPT.into(),
            "--port".into(),
            "0".into(),
            "--root".into(),
            root.clone().into(),
            "--user".into(),
            user.clone().into(),
            "--cert".into(),
            server_cert.into(),
            "--key".into(),
            server_key.into(),
            "--passive-ports".into(),
            passive_arg.into(),
            "--tls-max".into(),
            tls_max.into(),
        ];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_os_str()).collect();
        let mut process = PeerProcess::spawn(
            &python,
            &args,
            &[("FTPS_TEST_PASSWORD", password.as_ref())],
            &output,
        )?;
        let port = process.wait_until(
            "pyftpdlib",
            START_TIMEOUT,
            || read_log(&output),
            || ready_port(&std::fs::read_to_string(&output).ok()?),
        )?;

        Ok(Pyftpdlib {
            process,
            endpoint: Endpoint {
                addr: SocketAddr::from((LOOPBACK, port)),
                tls_mode: TlsMode::Explicit,
                user,
                password,
                root_dir: root,
                ca_cert_pem: pki.ca_cert_pem,
                ca_cert_path: ca_cert,
            },
            output,
            _dir: dir,
        })
    }
}

/// The port from the script's `READY port=N` line.
fn ready_port(output: &str) -> Option<u16> {
    output
        .lines()
        .find_map(|line| line.strip_prefix("READY port=")?.trim().parse().ok())
}

/// A running pyftpdlib server; dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct Pyftpdlib {
    // Declared first so it is dropped (killed) before the directory is removed.
    process: PeerProcess,
    endpoint: Endpoint,
    output: PathBuf,
    _dir: TempDir,
}

impl Pyftpdlib {
    /// Explicit FTPS with TLS required on control and data, TLS 1.2 and 1.3.
    pub fn builder() -> PyftpdlibBuilder {
        PyftpdlibBuilder {
            tls_versions: TlsVersions::UpToTls13,
            passive_port_count: 8,
        }
    }

    /// Address, credentials, file root and CA of this server.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The server's output (the READY line and pyftpdlib's debug log).
    pub fn log(&self) -> String {
        read_log(&self.output)
    }
}
