//! The blocking FTPS server: listeners for explicit and implicit FTPS, one thread per session,
//! each running one [`ServerSession`] over its own sockets, admitted within the
//! [`SessionLimits`] of [`ServerOptions::limits`] (a refused client reads `421`), with
//! passwords verified on the kit's small login pool. An idle session's thread sleeps in
//! poll(2) until its sockets, its session's next deadline or a shutdown wake it. Every reply, policy and format is
//! the session's; this module moves bytes and carries out socket requests. Everything else —
//! answering the session's requests from [`Storage`] and [`Auth`], running transfers, and
//! reporting what happens in each session (logins, transfers, refusals, ends) to the optional
//! [`SessionLog`] of [`ServerOptions::log`] — is the shared driver kit's
//! ([`ftps_kit::server::SessionApp`]).

pub use ftps_kit::server::api::*;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ftps_kit::limits::SessionPermit;
use ftps_kit::server::{Backends, ServerSetup, SessionApp};
use ftps_proto::server::{ServerError, ServerEvent, ServerSession, Termination};
use rustix::event::{PollFd, PollFlags};

use ftps_kit::drive::Drained;

use crate::link::Link;
use crate::net::Sockets;

/// How long a session thread blocks for a login verdict before it looks at its sockets and
/// the shutdown flag again.
const LOGIN_WAIT: Duration = Duration::from_millis(200);

/// The shutdown state every thread of a server shares: a flag, when it was set, and a socket
/// pair whose read end becomes readable then (it is in every session's poll set, so idle
/// sessions sleep until something happens instead of looking at the flag periodically).
#[derive(Debug)]
struct ShutdownState {
    flag: AtomicBool,
    at: std::sync::OnceLock<Instant>,
    wake_read: UnixStream,
    wake_write: UnixStream,
}

/// Stops a running [`Server`] from another thread: the accept loop returns, idle sessions are
/// closed with `421` at once, sessions with a running transfer when it ends or when the
/// shutdown grace ([`SessionLimits::shutdown_grace`]) runs out.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<ShutdownState>);

impl ShutdownHandle {
    fn new() -> io::Result<Self> {
        let (wake_read, wake_write) = UnixStream::pair()?;
        wake_write.set_nonblocking(true)?;
        Ok(Self(Arc::new(ShutdownState {
            flag: AtomicBool::new(false),
            at: std::sync::OnceLock::new(),
            wake_read,
            wake_write,
        })))
    }

    /// Asks the server and its sessions to stop.
    pub fn shutdown(&self) {
        let _ = self.0.at.set(Instant::now());
        self.0.flag.store(true, Ordering::SeqCst);
        // One byte, never read: the read end stays readable for every poller. A full buffer
        // (a second shutdown) already wakes them.
        let _ = (&self.0.wake_write).write(&[1]);
    }

    fn is_set(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
    }

    /// How long after the shutdown `grace` runs out (zero once it has).
    fn grace_left(&self, grace: Duration) -> Duration {
        let at = self.0.at.get().copied().unwrap_or_else(Instant::now);
        (at + grace).saturating_duration_since(Instant::now())
    }
}

/// What every session thread shares.
struct Shared {
    /// Storage, login pool, log and admission, handed to each session's [`SessionApp`].
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
    setup: ServerSetup,
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
    /// Binds every listener of `options` and starts the login pool.
    pub fn bind(options: ServerOptions) -> io::Result<Self> {
        let mut setup = ServerSetup::bind(options)?;
        let listeners = std::mem::take(&mut setup.listeners);
        let shared = Arc::new(Shared {
            backends: setup.backends.clone(),
            passive_ports: setup.passive_ports.clone(),
            shutdown: ShutdownHandle::new()?,
            sessions: AtomicU64::new(0),
        });
        Ok(Self {
            listeners,
            setup,
            shared,
        })
    }

    /// The address of the first listener.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.setup
            .addrs
            .first()
            .map(|(a, _)| *a)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Every listener's address and TLS mode.
    pub fn local_addrs(&self) -> Vec<(SocketAddr, ServerTlsMode)> {
        self.setup.addrs.clone()
    }

    /// The first listener's address for `mode`.
    pub fn local_addr_for(&self, mode: ServerTlsMode) -> Option<SocketAddr> {
        self.setup.local_addr_for(mode)
    }

    /// A handle that stops [`run`](Self::run) and the sessions.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shared.shutdown.clone()
    }

    /// Accepts connections and runs each admitted session on its own thread until shut down;
    /// then waits for the sessions to end. A connection beyond the limits is answered `421`
    /// and closed on the accepting thread.
    pub fn run(&self) -> io::Result<()> {
        let mut threads: Vec<JoinHandle<SessionEnd>> = Vec::new();
        while let Some((stream, mode)) = self.accept()? {
            let config = self.config_for(mode);
            let shared = Arc::clone(&self.shared);
            let number = self.shared.next_session_number();
            threads.retain(|t| !t.is_finished());
            let Ok((stream, permit)) = admit(stream, &config, &shared, number) else {
                continue;
            };
            threads.push(std::thread::spawn(move || {
                run_session(stream, config, &shared, number, &permit)
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
        let Some((stream, mode)) = self.accept()? else {
            return Ok(None);
        };
        let number = self.shared.next_session_number();
        let config = self.config_for(mode);
        Ok(Some(match admit(stream, &config, &self.shared, number) {
            Ok((stream, permit)) => run_session(stream, config, &self.shared, number, &permit),
            Err(end) => end,
        }))
    }

    fn config_for(&self, mode: ServerTlsMode) -> ServerSessionConfig {
        self.setup.config_for(mode)
    }

    /// Waits for a connection on any listener; `None` after shutdown.
    fn accept(&self) -> io::Result<Option<(TcpStream, ServerTlsMode)>> {
        let wake = &self.shared.shutdown.0.wake_read;
        loop {
            if self.shared.shutdown.is_set() {
                return Ok(None);
            }
            let mut fds: Vec<PollFd<'_>> = self
                .listeners
                .iter()
                .map(|(l, _)| PollFd::new(l, PollFlags::IN))
                .collect();
            fds.push(PollFd::new(wake, PollFlags::IN));
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready: Vec<usize> = fds
                .iter()
                .take(self.listeners.len())
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

/// Admits the connection within the server's limits, or answers it `421` (the core's
/// refusal, on this thread: a few bytes into an empty socket buffer), logs why and says how
/// the session ended.
fn admit(
    stream: TcpStream,
    config: &ServerSessionConfig,
    shared: &Shared,
    number: u64,
) -> Result<(TcpStream, SessionPermit), SessionEnd> {
    let (peer, local) = stream
        .peer_addr()
        .and_then(|p| Ok((p, stream.local_addr()?)))
        .map_err(SessionEnd::Io)?;
    let refused = match shared.backends.admission.admit(peer.ip()) {
        Ok(permit) => return Ok((stream, permit)),
        Err(refused) => refused,
    };
    let app = SessionApp::new(shared.backends.clone(), number, peer);
    app.connected(config.tls_mode == ServerTlsMode::Implicit);
    if let Ok(sockets) = Sockets::with_control(stream) {
        let timeout = config.timeouts.data;
        let mut link = Link::new(sockets, timeout, timeout, None);
        let now = link.now();
        let mut session = ServerSession::refused(config.clone(), peer, local, now, refused.reason);
        // Drains to the end: the refusal is written, the socket closed.
        while let Drained::Event(event) = link.drain(&mut session) {
            if matches!(event, ServerEvent::Closed { .. }) {
                break;
            }
        }
    }
    app.closed(Some(refused.to_string()));
    Err(SessionEnd::Closed(Some(ServerError::Terminated(
        refused.reason,
    ))))
}

/// One session's state on its thread: its sockets and the kit's application side.
struct SessionRunner<'a> {
    session: ServerSession,
    link: Link,
    shared: &'a Shared,
    app: SessionApp,
    /// The session was told the server shuts down.
    terminated: bool,
}

fn run_session(
    stream: TcpStream,
    config: ServerSessionConfig,
    shared: &Shared,
    number: u64,
    permit: &SessionPermit,
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
    let mut link = Link::new(sockets, timeout, timeout, shared.passive_ports.clone());
    link.limit_data(permit.data_permits(shared.backends.log.clone(), number, peer));
    let session = ServerSession::new(config, peer, local, link.now());
    let mut runner = SessionRunner {
        session,
        link,
        shared,
        app,
        terminated: false,
    };
    let end = match runner.run() {
        Ok(end) => end,
        Err(e) => SessionEnd::Io(e),
    };
    // Closes every socket; closing the app then discards unfinished uploads.
    let app = runner.into_app();
    app.closed(end.reason());
    end
}

impl SessionRunner<'_> {
    /// The application side, the sockets closed.
    fn into_app(self) -> SessionApp {
        self.app
    }

    fn run(&mut self) -> io::Result<SessionEnd> {
        let shutdown = &self.shared.shutdown;
        let grace = self.shared.backends.admission.limits().shutdown_grace;
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
            if !shutdown.is_set() {
                if self.app.login_pending() {
                    self.app.wait_login(LOGIN_WAIT);
                    continue;
                }
                let wake = shutdown.0.wake_read.as_fd();
                self.link
                    .wait(&mut self.session, deadline, None, Some(wake))?;
                continue;
            }
            // Shutting down: an idle session ends now, a transfer may finish within the
            // grace period.
            let left = shutdown.grace_left(grace);
            if !self.terminated && (!self.app.is_transferring() || left.is_zero()) {
                self.terminated = true;
                let now = self.link.now();
                self.session.terminate(Termination::ShuttingDown, now);
                continue;
            }
            // Until the grace runs out; after the 421 the session only flushes and closes.
            let max_wait = if self.terminated {
                Duration::from_millis(100)
            } else {
                left
            };
            self.link
                .wait(&mut self.session, deadline, Some(max_wait), None)?;
        }
    }
}
