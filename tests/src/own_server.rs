//! This project's own FTPS server on 127.0.0.1 — the blocking `ftps_std::server::Server` or the
//! async `ftps_tokio::Server`, chosen by [`Driver`] (default: the `FTPS_TEST_DRIVER`
//! environment variable, `std` or `tokio`; `std` when unset), so every suite that uses it runs
//! against either driver without copying a test — set up the way the integration tests and
//! benchmarks need it: a throw-away PKI ([`TestPki`]), `LocalFs`
//! over a temporary root, one argon2-hashed user, run on its own thread, shut down and joined
//! when the handle is dropped (also while a test panics).
//!
//! ```no_run
//! use ftps_tests::own_server::OwnServer;
//!
//! let server = OwnServer::builder()
//!     .configure(|session| session.allow_ccc = true)
//!     .start();
//! let endpoint = server.endpoint(false); // for curl, lftp ...
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ftps_std::server::{
    LocalFs, Server, ServerOptions, ServerSessionConfig, ServerTlsMode, SessionLimits, SessionLog,
    ShutdownHandle, Storage, UserTable, hash_password,
};
use ftps_std::{ClientOptions, ClientTimeouts, ClientTlsMode, DataConnectionMode, Trust};

use crate::own_client::Client;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::peers::{self, Endpoint, TestPki};

/// The login name unless [`OwnServerBuilder::credentials`] says otherwise.
pub const DEFAULT_USER: &str = "alice";
/// The password unless [`OwnServerBuilder::credentials`] says otherwise.
pub const DEFAULT_PASSWORD: &str = "correct horse battery staple";

/// Which server runs behind an [`OwnServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `ftps_std::server::Server`: a thread per session.
    Std,
    /// `ftps_tokio::Server`: a task per session on a two-thread tokio runtime.
    Tokio,
}

impl Driver {
    /// The driver `FTPS_TEST_DRIVER` names (`tokio`; anything else or unset: `std`).
    pub fn from_env() -> Self {
        match std::env::var("FTPS_TEST_DRIVER").as_deref() {
            Ok("tokio") => Self::Tokio,
            _ => Self::Std,
        }
    }
}

/// Stops either server.
#[derive(Debug)]
enum Stop {
    Std(ShutdownHandle),
    Tokio(ftps_tokio::ShutdownHandle),
}

impl Stop {
    fn shutdown(&self) {
        match self {
            Self::Std(handle) => handle.shutdown(),
            Self::Tokio(handle) => handle.shutdown(),
        }
    }
}

type Configure = Box<dyn FnOnce(&mut ServerSessionConfig)>;
type MakeStorage = Box<dyn FnOnce(LocalFs) -> Arc<dyn Storage>>;

/// Options for [`OwnServer`]; start with [`OwnServer::builder`], finish with
/// [`start`](Self::start).
pub struct OwnServerBuilder {
    user: String,
    password: String,
    configure: Vec<Configure>,
    storage: Option<MakeStorage>,
    log: Option<Arc<dyn SessionLog>>,
    ipv6: bool,
    implicit: bool,
    passive_ports: Option<RangeInclusive<u16>>,
    advertised: Option<Ipv4Addr>,
    limits: SessionLimits,
    driver: Driver,
}

impl std::fmt::Debug for OwnServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnServerBuilder")
            .field("user", &self.user)
            .field("configure", &self.configure.len())
            .field("storage", &self.storage.is_some())
            .field("log", &self.log.is_some())
            .field("ipv6", &self.ipv6)
            .field("implicit", &self.implicit)
            .field("passive_ports", &self.passive_ports)
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

impl OwnServerBuilder {
    /// Changes the session configuration template after the TLS config is in place (timeouts,
    /// policies, limits). Several calls apply in order.
    pub fn configure(mut self, change: impl FnOnce(&mut ServerSessionConfig) + 'static) -> Self {
        self.configure.push(Box::new(change));
        self
    }

    /// Serves `storage(LocalFs over the root)` instead of the plain `LocalFs`, e.g. read-only or
    /// wrapped in a test backend.
    pub fn storage(mut self, storage: impl FnOnce(LocalFs) -> Arc<dyn Storage> + 'static) -> Self {
        self.storage = Some(Box::new(storage));
        self
    }

    /// Changes the admission limits (sessions, data connections, login pool, shutdown grace).
    pub fn limits(mut self, change: impl FnOnce(&mut SessionLimits)) -> Self {
        change(&mut self.limits);
        self
    }

    /// Runs `driver`'s server instead of the one `FTPS_TEST_DRIVER` names.
    pub fn driver(mut self, driver: Driver) -> Self {
        self.driver = driver;
        self
    }

    /// Sends session events to `log`.
    pub fn log(mut self, log: Arc<dyn SessionLog>) -> Self {
        self.log = Some(log);
        self
    }

    /// The one user's login name and password (hashed with argon2 for the server).
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        user.clone_into(&mut self.user);
        password.clone_into(&mut self.password);
        self
    }

    /// Puts the explicit-FTPS listener on `[::1]` instead of 127.0.0.1 (the implicit one stays
    /// on 127.0.0.1).
    pub fn ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// Binds no implicit-FTPS listener (one is bound by default).
    pub fn without_implicit(mut self) -> Self {
        self.implicit = false;
        self
    }

    /// Takes passive data listeners from `ports`.
    pub fn passive_ports(mut self, ports: RangeInclusive<u16>) -> Self {
        self.passive_ports = Some(ports);
        self
    }

    /// Sends `address` in `227` replies (a server behind NAT).
    pub fn advertised_address(mut self, address: Ipv4Addr) -> Self {
        self.advertised = Some(address);
        self
    }

    /// Generates the PKI, binds the listeners and runs the server on a new thread.
    ///
    /// # Panics
    ///
    /// When any of that fails: this is test set-up, and a test cannot go on without it.
    pub fn start(self) -> OwnServer {
        let pki = TestPki::generate().expect("test PKI");
        let root = tempfile::tempdir().expect("server root");
        let outside = tempfile::tempdir().expect("directory outside the root");
        let ca_path = outside.path().join("ca.pem");
        std::fs::write(&ca_path, &pki.ca_cert_pem).expect("write the CA file");
        let ca_der = CertificateDer::from_pem_slice(pki.ca_cert_pem.as_bytes()).expect("CA");
        let chain = vec![
            CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes())
                .expect("server certificate"),
        ];
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).expect("key");
        let tls = ftps_proto::tls::server_config(chain, key).expect("server TLS config");
        let mut session = ServerSessionConfig::new(Arc::new(tls));
        for change in self.configure {
            change(&mut session);
        }
        let mut users = UserTable::new();
        users
            .add_user(&self.user, &hash_password(&self.password).expect("hash"))
            .expect("add the user");
        let local_fs = LocalFs::new(root.path()).expect("LocalFs over the root");
        let storage = match self.storage {
            Some(make) => make(local_fs),
            None => Arc::new(local_fs),
        };
        let explicit_bind = if self.ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
        let options = ServerOptions {
            session,
            explicit: vec![explicit_bind.parse().expect("address")],
            implicit: if self.implicit {
                vec!["127.0.0.1:0".parse().expect("address")]
            } else {
                Vec::new()
            },
            passive_ports: self.passive_ports,
            advertised_address: self.advertised,
            storage,
            auth: Arc::new(users),
            log: self.log,
            limits: self.limits,
        };
        let (addrs, shutdown, thread) = match self.driver {
            Driver::Std => {
                let server = Server::bind(options).expect("bind the server");
                let addrs = server.local_addrs();
                let shutdown = Stop::Std(server.shutdown_handle());
                let thread = std::thread::spawn(move || server.run().expect("server run"));
                (addrs, shutdown, thread)
            }
            Driver::Tokio => {
                // A storage call in `block_in_place` hands its worker to a spare thread, which
                // then idles in the blocking pool (10 s by default): let it go at once, so the
                // fault matrix's thread count sees the sessions, not the pool's spare.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_keep_alive(Duration::from_millis(50))
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let server = {
                    let _inside = runtime.enter();
                    ftps_tokio::Server::bind(options).expect("bind the server")
                };
                let addrs = server.local_addrs();
                let shutdown = Stop::Tokio(server.shutdown_handle());
                let thread = std::thread::spawn(move || {
                    runtime.block_on(server.run()).expect("server run");
                });
                (addrs, shutdown, thread)
            }
        };
        let explicit = addrs
            .iter()
            .find(|(_, mode)| *mode == ServerTlsMode::Explicit)
            .map(|(addr, _)| *addr)
            .expect("explicit listener");
        let implicit = addrs
            .iter()
            .find(|(_, mode)| *mode == ServerTlsMode::Implicit)
            .map(|(addr, _)| *addr);
        OwnServer {
            root,
            outside,
            explicit,
            implicit,
            ca_path,
            ca_der,
            ca_pem: pki.ca_cert_pem,
            user: self.user,
            password: self.password,
            shutdown,
            thread: Some(thread),
        }
    }
}

/// A running server; dropping it shuts the server down and joins its thread (which joins the
/// sessions).
#[derive(Debug)]
pub struct OwnServer {
    root: tempfile::TempDir,
    outside: tempfile::TempDir,
    explicit: SocketAddr,
    implicit: Option<SocketAddr>,
    ca_path: PathBuf,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    user: String,
    password: String,
    shutdown: Stop,
    thread: Option<JoinHandle<()>>,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl OwnServer {
    /// Defaults: explicit listener on 127.0.0.1, implicit listener on 127.0.0.1, user
    /// [`DEFAULT_USER`] with [`DEFAULT_PASSWORD`], `LocalFs`, no log, the `ServerSessionConfig`
    /// defaults.
    pub fn builder() -> OwnServerBuilder {
        OwnServerBuilder {
            user: DEFAULT_USER.to_owned(),
            password: DEFAULT_PASSWORD.to_owned(),
            configure: Vec::new(),
            storage: None,
            log: None,
            ipv6: false,
            implicit: true,
            passive_ports: None,
            advertised: None,
            limits: SessionLimits::default(),
            driver: Driver::from_env(),
        }
    }

    /// A function that shuts the server down (from any thread), as Ctrl-C would: it stops
    /// accepting, closes idle sessions with `421` and lets running transfers finish within
    /// the shutdown grace.
    pub fn stopper(&self) -> Arc<dyn Fn() + Send + Sync> {
        match &self.shutdown {
            Stop::Std(handle) => {
                let handle = handle.clone();
                Arc::new(move || handle.shutdown())
            }
            Stop::Tokio(handle) => {
                let handle = handle.clone();
                Arc::new(move || handle.shutdown())
            }
        }
    }

    /// The server's file root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A temporary directory outside the root (it holds `ca.pem`) for clients' local files.
    pub fn outside(&self) -> &Path {
        self.outside.path()
    }

    /// The explicit-FTPS listener.
    pub fn explicit_addr(&self) -> SocketAddr {
        self.explicit
    }

    /// The implicit-FTPS listener.
    ///
    /// # Panics
    ///
    /// When the server was built [`without_implicit`](OwnServerBuilder::without_implicit).
    pub fn implicit_addr(&self) -> SocketAddr {
        self.implicit.expect("this server has no implicit listener")
    }

    /// The CA certificate as a file (in [`outside`](Self::outside)).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The login name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The login password.
    pub fn password(&self) -> &str {
        &self.password
    }

    fn addr(&self, implicit: bool) -> SocketAddr {
        if implicit {
            self.implicit_addr()
        } else {
            self.explicit
        }
    }

    /// How the peer harness (curl, lftp ...) reaches the explicit or the implicit listener.
    pub fn endpoint(&self, implicit: bool) -> Endpoint {
        Endpoint {
            addr: self.addr(implicit),
            tls_mode: if implicit {
                peers::TlsMode::Implicit
            } else {
                peers::TlsMode::Explicit
            },
            user: self.user.clone(),
            password: self.password.clone(),
            root_dir: self.root().to_owned(),
            ca_cert_pem: self.ca_pem.clone(),
            ca_cert_path: self.ca_path.clone(),
        }
    }

    /// Options for this project's client: the explicit or the implicit listener, `mode` data
    /// connections, the test CA trusted, bounded timeouts.
    pub fn client_options(&self, implicit: bool, mode: DataConnectionMode) -> ClientOptions {
        let mut options = ClientOptions::new(self.explicit.ip().to_string());
        if implicit {
            options.tls_mode = ClientTlsMode::Implicit;
        }
        options.port = Some(self.addr(implicit).port());
        // The test certificate names localhost, 127.0.0.1 and ::1.
        options.trust = Trust::Certificates(vec![self.ca_der.clone()]);
        options.data_mode = mode;
        options.timeouts = ClientTimeouts {
            connect: Duration::from_secs(5),
            reply: Duration::from_secs(10),
            data_idle: Duration::from_secs(10),
        };
        options
    }

    /// Connects with [`client_options`](Self::client_options) and logs in.
    ///
    /// # Panics
    ///
    /// When connecting or logging in fails.
    pub fn login(&self, implicit: bool, mode: DataConnectionMode) -> Client {
        let mut client = Client::connect(self.client_options(implicit, mode)).expect("connect");
        client
            .login(&self.user, &self.password)
            .expect("log in with the server's user");
        client
    }

    /// Every name in the root, temporary upload files included, sorted.
    ///
    /// # Panics
    ///
    /// When the root cannot be read.
    pub fn root_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root())
            .expect("read the root")
            .map(|entry| {
                entry
                    .expect("root entry")
                    .file_name()
                    .into_string()
                    .expect("UTF-8 name")
            })
            .collect();
        names.sort();
        names
    }
}
