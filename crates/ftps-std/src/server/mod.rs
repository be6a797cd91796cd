//! The blocking FTPS server: listeners for explicit and implicit FTPS, one thread per session,
//! each running one [`ServerSession`] over its own sockets. Every reply, policy and format is
//! the session's; this module moves bytes and carries out socket requests. Everything else —
//! answering the session's requests from [`Storage`] and [`Auth`], running transfers, and
//! reporting what happens in each session (logins, transfers, refusals, ends) to the optional
//! [`SessionLog`] of [`ServerOptions::log`] — is the shared driver kit's
//! ([`ftps_kit::server::SessionApp`]).

pub use ftps_kit::auth::{Auth, InvalidHash, LoginAttempt, UserTable, hash_password};
pub use ftps_kit::log::{FileOp, SessionEvent, SessionLog, TransferKind};
pub use ftps_kit::storage::{Download, LocalFs, Storage, Upload};
/// The session configuration and listener modes, re-exported for [`ServerOptions`].
pub use ftps_proto::server::{SessionConfig, TlsMode};

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ftps_kit::input::{InputBacklog, SessionInput};
use ftps_kit::server::{Backends, SessionApp, SplitEvent, split_event};
use ftps_proto::io::{Channel, Instant, IoRequest, Output};
use ftps_proto::server::{ServerError, ServerEvent, ServerSession};
use rustix::event::{PollFd, PollFlags};

use crate::net::{Readiness, Sockets, io_error_kind};

/// How often a waiting session or listener looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);
/// Socket read and session transmit buffer size.
const IO_BUFFER: usize = 64 * 1024;

/// Where and how the server listens, and what it serves.
pub struct ServerOptions {
    /// The session configuration template (TLS certificate, timeouts, limits, policies). Its
    /// `tls_mode` is set per listener and its `pasv_address` from
    /// [`advertised_address`](Self::advertised_address).
    pub session: SessionConfig,
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
    listeners: Vec<(TcpListener, TlsMode)>,
    session: SessionConfig,
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
            (&options.explicit, TlsMode::Explicit),
            (&options.implicit, TlsMode::Implicit),
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
    pub fn local_addrs(&self) -> Vec<(SocketAddr, TlsMode)> {
        self.listeners
            .iter()
            .filter_map(|(l, mode)| l.local_addr().ok().map(|a| (a, *mode)))
            .collect()
    }

    /// The first listener's address for `mode`.
    pub fn local_addr_for(&self, mode: TlsMode) -> Option<SocketAddr> {
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

    fn config_for(&self, mode: TlsMode) -> SessionConfig {
        let mut config = self.session.clone();
        config.tls_mode = mode;
        config
    }

    /// Waits for a connection on any listener; `None` after shutdown.
    fn accept(&self) -> io::Result<Option<(TcpStream, TlsMode)>> {
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
    sockets: Sockets,
    shared: &'a Shared,
    app: SessionApp,
    epoch: std::time::Instant,
    write_timeout: Duration,
    out: Vec<u8>,
    recv: Vec<u8>,
    /// Received bytes the session has not taken yet (and ends of stream behind them).
    input: InputBacklog,
}

fn run_session(
    stream: TcpStream,
    config: SessionConfig,
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
    app.connected(config.tls_mode == TlsMode::Implicit);
    let sockets = match Sockets::with_control(stream) {
        Ok(sockets) => sockets,
        Err(e) => {
            app.closed(Some(format!("I/O error: {e}")));
            return SessionEnd::Io(e);
        }
    };
    let write_timeout = config.timeouts.data;
    let epoch = std::time::Instant::now();
    let session = ServerSession::new(config, peer, local, Instant::from_nanos(0));
    let mut runner = SessionRunner {
        session,
        sockets,
        shared,
        app,
        epoch,
        write_timeout,
        out: vec![0; IO_BUFFER],
        recv: vec![0; IO_BUFFER],
        input: InputBacklog::new(),
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
    fn now(&self) -> Instant {
        let nanos = self.epoch.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The application side, the sockets closed.
    fn into_app(self) -> SessionApp {
        self.app
    }

    fn run(&mut self) -> io::Result<SessionEnd> {
        loop {
            let (deadline, closed) = self.drain();
            if let Some(error) = closed {
                return Ok(SessionEnd::Closed(error));
            }
            if self.app.pump(&mut self.session) {
                continue;
            }
            if self.shared.shutdown.is_set() {
                return Ok(SessionEnd::Shutdown);
            }
            self.wait_for_io(deadline)?;
        }
    }

    /// Drains the session; returns its deadline, and `Some(error)` once it closed. Events go
    /// to the kit's application side once the session's borrow of them has ended.
    fn drain(&mut self) -> (Option<Instant>, Option<Option<ServerError>>) {
        loop {
            let now = self.now();
            let mut event = None;
            let mut failed_upload = None;
            match self.session.poll_output(&mut self.out, now) {
                Output::Wait { deadline } => return (deadline, None),
                Output::Transmit { channel, len } => {
                    let deadline = std::time::Instant::now() + self.write_timeout;
                    if let Err(e) = self.sockets.write_all(channel, &self.out[..len], deadline) {
                        let now = self.now();
                        self.session
                            .handle_io_error(channel, io_error_kind(&e), now);
                    }
                }
                Output::Io(io_request) => self.perform(io_request),
                Output::Event(borrowed) => match split_event(borrowed) {
                    SplitEvent::Owned(ServerEvent::Closed { error }) => return (None, Some(error)),
                    SplitEvent::Owned(owned) => event = Some(owned),
                    SplitEvent::UploadData { id, bytes } => {
                        failed_upload = self.app.on_upload_data(id, bytes);
                    }
                    _ => {}
                },
                _ => {}
            }
            if let Some(failed) = failed_upload {
                self.app.upload_failed(&mut self.session, failed);
            }
            if let Some(event) = event {
                self.app.on_event(&mut self.session, event);
            }
        }
    }

    /// Carries out one socket request and reports the outcome to the session.
    fn perform(&mut self, request: IoRequest) {
        let now = self.now();
        match request {
            IoRequest::Connect { channel, addr } => {
                match self.sockets.connect(channel, addr, self.write_timeout) {
                    Ok(_) => self.session.handle_connected(channel, self.now()),
                    Err(e) => self
                        .session
                        .handle_io_error(channel, io_error_kind(&e), self.now()),
                }
            }
            IoRequest::Listen { data, ip } => {
                let ip = listen_ip(ip);
                match self
                    .sockets
                    .listen_in(data, ip, self.shared.passive_ports.clone())
                {
                    Ok(local) => self.session.handle_listening(data, local, now),
                    Err(e) => {
                        self.session
                            .handle_io_error(Channel::Data(data), io_error_kind(&e), now);
                    }
                }
            }
            IoRequest::ShutdownWrite { channel } => self.sockets.shutdown_write(channel),
            IoRequest::Close { channel } => {
                self.sockets.close(channel);
                self.input.forget(channel);
            }
            _ => {}
        }
    }

    /// Feeds held-back input first; otherwise waits for the next socket event, the session's
    /// deadline or the shutdown poll interval, and reports it.
    fn wait_for_io(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let now = self.now();
        let Ok(progressed) = self
            .input
            .retry(&mut SessionInput::new(&mut self.session, now));
        if progressed {
            return Ok(());
        }
        if let Some(deadline) = deadline {
            if deadline <= now {
                self.session.handle_timeout(now);
                return Ok(());
            }
        }
        let timeout = deadline
            .map(|d| d.saturating_duration_since(now).min(SHUTDOWN_POLL))
            .unwrap_or(SHUTDOWN_POLL);
        let paused = self.input.paused();
        let readiness = match self.sockets.wait(Some(timeout), &paused, &mut self.recv) {
            Ok(readiness) => readiness,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        let now = self.now();
        let mut input = SessionInput::new(&mut self.session, now);
        match readiness {
            Readiness::Received { channel, len } => {
                let Ok(()) = self.input.received(&mut input, channel, &self.recv[..len]);
            }
            Readiness::Eof { channel } => self.input.ended(&mut input, channel),
            Readiness::Accepted { data, peer } => {
                if self.session.handle_accepted(data, peer, now) {
                    self.sockets.keep_accepted(data);
                } else {
                    self.sockets.refuse_accepted(data);
                }
            }
            Readiness::Failed { channel, kind } => self.session.handle_io_error(channel, kind, now),
            Readiness::TimedOut => {
                if deadline.is_some_and(|d| d <= now) {
                    self.session.handle_timeout(now);
                }
            }
        }
        Ok(())
    }
}

/// The session asks to listen on the control connection's local address; an IPv4-mapped IPv6
/// address is listened on as IPv4 (a dual-stack listener's control connection).
fn listen_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}
