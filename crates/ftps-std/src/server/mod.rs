//! The blocking FTPS server: listeners for explicit and implicit FTPS, one thread per session,
//! each running one [`ServerSession`] over its own sockets. Every reply, policy and format is
//! the session's; this module moves bytes and carries out socket requests. Everything else —
//! answering the session's requests from [`Storage`] and [`Auth`], running transfers, and
//! reporting what happens in each session (logins, transfers, refusals, ends) to the optional
//! [`SessionLog`] of [`ServerOptions::log`] — is the shared driver kit's
//! ([`ftps_kit::server::SessionApp`]).

pub use ftps_kit::auth::{Auth, InvalidHash, LoginAttempt, UserTable, hash_password};
pub use ftps_kit::log::{FileOp, SessionEvent, SessionLog, TransferKind};
pub use ftps_kit::storage::{Download, Listing, LocalFs, Storage, Upload};
/// The session configuration and listener modes, re-exported for [`ServerOptions`].
pub use ftps_proto::server::{ServerSessionConfig, ServerTlsMode};

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ftps_kit::server::{Backends, SessionApp};
use ftps_proto::server::{ServerError, ServerEvent, ServerSession};
use rustix::event::{PollFd, PollFlags};

use crate::link::{Drained, Link};
use crate::net::Sockets;

/// How often a waiting session or listener looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Where and how the server listens, and what it serves.
pub struct ServerOptions {
    /// The session configuration template (TLS certificate, timeouts, limits, policies). Its
    /// `tls_mode` is set per listener and its `pasv_address` from
    /// [`advertised_address`](Self::advertised_address).
    pub session: ServerSessionConfig,
    /// Addresses for explicit FTPS (`AUTH TLS`), e.g. `127.0.0.1:2121` or `[::1]:0`.
    pub explicit: Vec<SocketAddr>,
    /// Addresses for implicit FTPS (TLS from the first byte).
    pub implicit: Vec<SocketAddr>,
    /// The ports passive data listeners use (`None`: any free port).
    pub passive_ports: Option<RangeInclusive<u16>>,
    /// The IPv4 address sent in `227` replies when the server is behind NAT.
    pub advertised_address: Option<Ipv4Addr>,
    /// The files.
    pub storage: Arc<dyn Storage>,
    /// Who may log in.
    pub auth: Arc<dyn Auth>,
    /// Where session events go for logging (`None`: nowhere).
    pub log: Option<Arc<dyn SessionLog>>,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("explicit", &self.explicit)
            .field("implicit", &self.implicit)
            .field("passive_ports", &self.passive_ports)
            .field("advertised_address", &self.advertised_address)
            .field("log", &self.log.is_some())
            .finish_non_exhaustive()
    }
}

/// Stops a running [`Server`] from another thread: the accept loop returns and every session
/// closes its sockets within about 100 ms.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<AtomicBool>);

impl ShutdownHandle {
    /// Asks the server and its sessions to stop.
    pub fn shutdown(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How one session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// The session closed: `None` after `QUIT`, otherwise why (idle timeout, lost connection,
    /// TLS failure, …).
    Closed(Option<ServerError>),
    /// The server was shut down while the session ran.
    Shutdown,
    /// A local socket error the session could not be told about.
    Io(io::Error),
}

/// What every session thread shares.
struct Shared {
    /// Storage, auth and log, handed to each session's [`SessionApp`].
    backends: Backends,
    passive_ports: Option<RangeInclusive<u16>>,
    shutdown: ShutdownHandle,
    /// The number of the last session accepted (sessions count from 1).
    sessions: AtomicU64,
}

impl Shared {
    fn next_session_number(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A blocking FTPS server.
pub struct Server {
    listeners: Vec<(TcpListener, ServerTlsMode)>,
    session: ServerSessionConfig,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listeners", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds every listener of `options`.
    pub fn bind(options: ServerOptions) -> io::Result<Self> {
        let mut listeners = Vec::new();
        for (addrs, mode) in [
            (&options.explicit, ServerTlsMode::Explicit),
            (&options.implicit, ServerTlsMode::Implicit),
        ] {
            for addr in addrs {
                let listener = TcpListener::bind(addr)?;
                listener.set_nonblocking(true)?;
                listeners.push((listener, mode));
            }
        }
        if listeners.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no listen address",
            ));
        }
        let mut session = options.session;
        if options.advertised_address.is_some() {
            session.pasv_address = options.advertised_address;
        }
        Ok(Self {
            listeners,
            session,
            shared: Arc::new(Shared {
                backends: Backends {
                    storage: options.storage,
                    auth: options.auth,
                    log: options.log,
                },
                passive_ports: options.passive_ports,
                shutdown: ShutdownHandle(Arc::new(AtomicBool::new(false))),
                sessions: AtomicU64::new(0),
            }),
        })
    }

    /// The address of the first listener.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listeners
            .first()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?
            .0
            .local_addr()
    }

    /// Every listener's address and TLS mode.
    pub fn local_addrs(&self) -> Vec<(SocketAddr, ServerTlsMode)> {
        self.listeners
            .iter()
            .filter_map(|(l, mode)| l.local_addr().ok().map(|a| (a, *mode)))
            .collect()
    }

    /// The first listener's address for `mode`.
    pub fn local_addr_for(&self, mode: ServerTlsMode) -> Option<SocketAddr> {
        self.local_addrs()
            .into_iter()
            .find(|(_, m)| *m == mode)
            .map(|(a, _)| a)
    }

    /// A handle that stops [`run`](Self::run) and the sessions.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shared.shutdown.clone()
    }

    /// Accepts connections and runs each session on its own thread until shut down; then
    /// waits for the sessions to end.
    pub fn run(&self) -> io::Result<()> {
        let mut threads: Vec<JoinHandle<SessionEnd>> = Vec::new();
        while let Some((stream, mode)) = self.accept()? {
            let config = self.config_for(mode);
            let shared = Arc::clone(&self.shared);
            let number = self.shared.next_session_number();
            threads.retain(|t| !t.is_finished());
            threads.push(std::thread::spawn(move || {
                run_session(stream, config, &shared, number)
            }));
        }
        for thread in threads {
            let _ = thread.join();
        }
        Ok(())
    }

    /// Accepts one connection and runs its session on this thread. `Ok(None)` when shut down
    /// before a connection came.
    pub fn serve_one(&self) -> io::Result<Option<SessionEnd>> {
        Ok(self.accept()?.map(|(stream, mode)| {
            let number = self.shared.next_session_number();
            run_session(stream, self.config_for(mode), &self.shared, number)
        }))
    }

    fn config_for(&self, mode: ServerTlsMode) -> ServerSessionConfig {
        let mut config = self.session.clone();
        config.tls_mode = mode;
        config
    }

    /// Waits for a connection on any listener; `None` after shutdown.
    fn accept(&self) -> io::Result<Option<(TcpStream, ServerTlsMode)>> {
        loop {
            if self.shared.shutdown.is_set() {
                return Ok(None);
            }
            let mut fds: Vec<PollFd<'_>> = self
                .listeners
                .iter()
                .map(|(l, _)| PollFd::new(l, PollFlags::IN))
                .collect();
            let timeout = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: i64::from(SHUTDOWN_POLL.subsec_nanos()),
            };
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready: Vec<usize> = fds
                .iter()
                .enumerate()
                .filter(|(_, fd)| !fd.revents().is_empty())
                .map(|(i, _)| i)
                .collect();
            drop(fds);
            for index in ready {
                let (listener, mode) = &self.listeners[index];
                match listener.accept() {
                    Ok((stream, _)) => return Ok(Some((stream, *mode))),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::Interrupted
                                | io::ErrorKind::ConnectionAborted
                        ) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// One session's state on its thread: its sockets and the kit's application side.
struct SessionRunner<'a> {
    session: ServerSession,
    link: Link,
    shared: &'a Shared,
    app: SessionApp,
}

fn run_session(
    stream: TcpStream,
    config: ServerSessionConfig,
    shared: &Shared,
    number: u64,
) -> SessionEnd {
    let addrs = stream
        .peer_addr()
        .and_then(|p| Ok((p, stream.local_addr()?)));
    let (peer, local) = match addrs {
        Ok(addrs) => addrs,
        Err(e) => return SessionEnd::Io(e),
    };
    let app = SessionApp::new(shared.backends.clone(), number, peer);
    app.connected(config.tls_mode == ServerTlsMode::Implicit);
    let sockets = match Sockets::with_control(stream) {
        Ok(sockets) => sockets,
        Err(e) => {
            app.closed(Some(format!("I/O error: {e}")));
            return SessionEnd::Io(e);
        }
    };
    // Active-mode connects and every write are bounded by the data timeout.
    let timeout = config.timeouts.data;
    let link = Link::new(sockets, timeout, timeout, shared.passive_ports.clone());
    let session = ServerSession::new(config, peer, local, link.now());
    let mut runner = SessionRunner {
        session,
        link,
        shared,
        app,
    };
    let end = match runner.run() {
        Ok(end) => end,
        Err(e) => SessionEnd::Io(e),
    };
    // Closes every socket; closing the app then discards unfinished uploads.
    let app = runner.into_app();
    let reason = match &end {
        SessionEnd::Closed(error) => error.as_ref().map(ToString::to_string),
        SessionEnd::Shutdown => Some("server shut down".to_owned()),
        SessionEnd::Io(e) => Some(format!("I/O error: {e}")),
    };
    app.closed(reason);
    end
}

impl SessionRunner<'_> {
    /// The application side, the sockets closed.
    fn into_app(self) -> SessionApp {
        self.app
    }

    fn run(&mut self) -> io::Result<SessionEnd> {
        loop {
            let deadline = match self.link.drain(&mut self.session) {
                Drained::Event(ServerEvent::Closed { error }) => {
                    return Ok(SessionEnd::Closed(error));
                }
                Drained::Event(event) => {
                    self.app.on_event(&mut self.session, event);
                    continue;
                }
                Drained::Wait(deadline) => deadline,
            };
            if self.app.pump(&mut self.session) {
                continue;
            }
            if self.shared.shutdown.is_set() {
                return Ok(SessionEnd::Shutdown);
            }
            self.link
                .wait(&mut self.session, deadline, Some(SHUTDOWN_POLL))?;
        }
    }
}
