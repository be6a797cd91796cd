//! The blocking FTPS server: listeners for explicit and implicit FTPS, one thread per session,
//! each running one [`ServerSession`] over its own sockets. Every reply, policy and format is
//! the session's; this module moves bytes, carries out socket requests, and routes the
//! session's requests to [`Storage`] and [`Auth`]. What happens in each session (logins,
//! transfers, refusals, ends) goes to the optional [`SessionLog`] of [`ServerOptions::log`].

mod auth;
mod log;
mod storage;

pub use auth::{Auth, InvalidHash, LoginAttempt, UserTable, hash_password};
/// The session configuration and listener modes, re-exported for [`ServerOptions`].
pub use ftps_proto::server::{SessionConfig, TlsMode};
pub use log::{FileOp, SessionEvent, SessionLog, TransferKind};
pub use storage::{Download, LocalFs, Storage, Upload};

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ftps_proto::io::{Channel, Instant, IoRequest, Output};
use ftps_proto::server::{
    Answer, FsError, Request, RequestId, ServerError, ServerEvent, ServerSession,
};
use ftps_proto::tls::{TlsInfo, TlsVersion};
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
    storage: Arc<dyn Storage>,
    auth: Arc<dyn Auth>,
    passive_ports: Option<RangeInclusive<u16>>,
    shutdown: ShutdownHandle,
    log: Option<Arc<dyn SessionLog>>,
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
                storage: options.storage,
                auth: options.auth,
                passive_ports: options.passive_ports,
                shutdown: ShutdownHandle(Arc::new(AtomicBool::new(false))),
                log: options.log,
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

/// A running transfer's local side.
enum Transfer {
    Download {
        source: Download,
        /// Bytes read from the source and not yet taken by the session.
        pending: Vec<u8>,
        writable: bool,
        finished: bool,
    },
    Upload(Option<Box<dyn Upload>>),
}

/// What the log needs of a transfer the backend accepted.
struct TransferLog {
    kind: TransferKind,
    path: String,
    started: std::time::Instant,
}

/// One session's state on its thread.
struct SessionRunner<'a> {
    session: ServerSession,
    sockets: Sockets,
    shared: &'a Shared,
    epoch: std::time::Instant,
    write_timeout: Duration,
    out: Vec<u8>,
    recv: Vec<u8>,
    backlog: HashMap<Channel, Vec<u8>>,
    transfers: HashMap<RequestId, Transfer>,
    /// This session's number and peer, for the log.
    number: u64,
    peer: SocketAddr,
    transfer_logs: HashMap<RequestId, TransferLog>,
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
    let log = |event: &SessionEvent| {
        if let Some(log) = &shared.log {
            log.event(number, peer, event);
        }
    };
    log(&SessionEvent::Connected {
        peer,
        implicit: config.tls_mode == TlsMode::Implicit,
    });
    let sockets = match Sockets::with_control(stream) {
        Ok(sockets) => sockets,
        Err(e) => {
            log(&SessionEvent::Closed {
                reason: Some(format!("I/O error: {e}")),
            });
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
        epoch,
        write_timeout,
        out: vec![0; IO_BUFFER],
        recv: vec![0; IO_BUFFER],
        backlog: HashMap::new(),
        transfers: HashMap::new(),
        number,
        peer,
        transfer_logs: HashMap::new(),
    };
    let end = match runner.run() {
        Ok(end) => end,
        Err(e) => SessionEnd::Io(e),
    };
    // Dropping the runner closes every socket and discards unfinished uploads.
    drop(runner);
    let reason = match &end {
        SessionEnd::Closed(error) => error.as_ref().map(ToString::to_string),
        SessionEnd::Shutdown => Some("server shut down".to_owned()),
        SessionEnd::Io(e) => Some(format!("I/O error: {e}")),
    };
    log(&SessionEvent::Closed { reason });
    end
}

impl SessionRunner<'_> {
    fn now(&self) -> Instant {
        let nanos = self.epoch.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn run(&mut self) -> io::Result<SessionEnd> {
        loop {
            let (deadline, closed) = self.drain();
            if let Some(error) = closed {
                return Ok(SessionEnd::Closed(error));
            }
            if self.pump_downloads() {
                continue;
            }
            if self.shared.shutdown.is_set() {
                return Ok(SessionEnd::Shutdown);
            }
            self.wait_for_io(deadline)?;
        }
    }

    /// Drains the session; returns its deadline, and `Some(error)` once it closed.
    fn drain(&mut self) -> (Option<Instant>, Option<Option<ServerError>>) {
        loop {
            let now = self.now();
            let mut request = None;
            let mut failed_upload = None;
            let mut finished_upload = None;
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
                Output::Event(event) => match event {
                    ServerEvent::Request { id, request: r } => request = Some((id, r)),
                    ServerEvent::Writable { id } => {
                        if let Some(Transfer::Download { writable, .. }) =
                            self.transfers.get_mut(&id)
                        {
                            *writable = true;
                        }
                    }
                    ServerEvent::Data { id, bytes } => {
                        if let Some(Transfer::Upload(Some(upload))) = self.transfers.get_mut(&id) {
                            if let Err(e) = upload.write(bytes) {
                                failed_upload = Some((id, e));
                            }
                        }
                    }
                    ServerEvent::UploadFinished {
                        id,
                        complete,
                        bytes,
                        resumed_tls,
                    } => finished_upload = Some((id, complete, bytes, resumed_tls)),
                    ServerEvent::SendFinished {
                        id,
                        complete,
                        bytes,
                        resumed_tls,
                    } => {
                        self.transfers.remove(&id);
                        self.log_transfer(id, complete, bytes, resumed_tls);
                    }
                    ServerEvent::Secured { info } => {
                        let event = secured_event(&info);
                        emit(self.shared, self.number, self.peer, &event);
                    }
                    ServerEvent::Refused { reason } => {
                        let reason = reason.to_string();
                        emit(
                            self.shared,
                            self.number,
                            self.peer,
                            &SessionEvent::Refused { reason },
                        );
                    }
                    ServerEvent::DataPeerRefused { peer } => {
                        let reason =
                            format!("passive data connection from {peer} refused (port theft)");
                        emit(
                            self.shared,
                            self.number,
                            self.peer,
                            &SessionEvent::Refused { reason },
                        );
                    }
                    ServerEvent::Closed { error } => return (None, Some(error)),
                    _ => {}
                },
                _ => {}
            }
            if let Some((id, error)) = failed_upload {
                if let Some(Transfer::Upload(upload)) = self.transfers.get_mut(&id) {
                    if let Some(upload) = upload.take() {
                        upload.abort();
                    }
                }
                let _ = self.session.fail_transfer(id, error);
            }
            if let Some((id, complete, bytes, resumed_tls)) = finished_upload {
                let committed = self.finish_upload(id, complete);
                self.log_transfer(id, committed, bytes, resumed_tls);
            }
            if let Some((id, request)) = request {
                self.answer(id, request);
            }
        }
    }

    /// An upload ended: a complete one is committed (made visible under its name) and the
    /// session hears the outcome before it sends the final reply; an incomplete one is
    /// discarded (its reply does not wait). True when the file was committed.
    fn finish_upload(&mut self, id: RequestId, complete: bool) -> bool {
        let upload = match self.transfers.remove(&id) {
            Some(Transfer::Upload(upload)) => upload,
            _ => None,
        };
        if !complete {
            if let Some(upload) = upload {
                upload.abort();
            }
            return false;
        }
        // A complete upload without its file (its write failed earlier): nothing to commit.
        let result = upload.map_or(Err(FsError::Local), |upload| upload.commit());
        let committed = result.is_ok();
        let _ = self.session.finish_upload(id, result);
        committed
    }

    /// Logs the end of a transfer the backend accepted.
    fn log_transfer(&mut self, id: RequestId, ok: bool, bytes: u64, resumed_tls: bool) {
        let Some(started) = self.transfer_logs.remove(&id) else {
            return;
        };
        let event = SessionEvent::Transfer {
            kind: started.kind,
            path: started.path,
            bytes,
            duration: started.started.elapsed(),
            ok,
            resumed_tls,
        };
        emit(self.shared, self.number, self.peer, &event);
    }

    /// Remembers a transfer the backend accepted, for its log line.
    fn start_transfer_log(&mut self, id: RequestId, kind: TransferKind, path: &[u8]) {
        if self.shared.log.is_some() {
            let path = String::from_utf8_lossy(path).into_owned();
            let started = std::time::Instant::now();
            self.transfer_logs.insert(
                id,
                TransferLog {
                    kind,
                    path,
                    started,
                },
            );
        }
    }

    /// Answers one request from auth, or from storage (logging the file operation).
    fn answer(&mut self, id: RequestId, request: Request) {
        let Request::Login {
            user,
            password,
            client_certificate,
            ..
        } = request
        else {
            // Described before the request is consumed; only when someone listens.
            let described = if self.shared.log.is_some() {
                describe_file_op(&request)
            } else {
                None
            };
            let outcome = self.answer_from_storage(id, request);
            if let Some((op, path, to)) = described {
                self.log_file_op(op, path, to, outcome);
            }
            return;
        };
        let attempt = LoginAttempt {
            user: &user,
            password: password.as_bytes(),
            client_certificate: client_certificate.as_deref(),
            peer: self.session.peer_addr(),
        };
        let granted = self.shared.auth.authenticate(&attempt);
        let user = String::from_utf8_lossy(&user).into_owned();
        let event = if granted {
            SessionEvent::LoggedIn { user }
        } else {
            SessionEvent::LoginRefused { user }
        };
        emit(self.shared, self.number, self.peer, &event);
        let _ = self.session.answer_login(id, granted);
    }

    /// Logs a file operation: every change, and anything the storage refused. Accepted reads
    /// are not logged here (a SIZE or CWD line per command is noise; accepted transfers get
    /// their own line when they end).
    fn log_file_op(
        &self,
        op: FileOp,
        path: String,
        to: Option<String>,
        outcome: Result<(), FsError>,
    ) {
        if outcome.is_ok() && !op.is_change() {
            return;
        }
        let event = SessionEvent::FileOp {
            op,
            path,
            to,
            result: outcome.map_err(|e| fs_error_reason(e).to_owned()),
        };
        emit(self.shared, self.number, self.peer, &event);
    }

    /// Answers a file-system request from storage; returns the storage's verdict (whether or
    /// not the session still took the answer).
    fn answer_from_storage(&mut self, id: RequestId, request: Request) -> Result<(), FsError> {
        let storage = &*self.shared.storage;
        let answer = match request {
            Request::List { path, .. } => {
                let entries = storage.list(&path);
                let outcome = entries.as_ref().map(|_| ()).map_err(|e| *e);
                if entries.is_ok() {
                    self.start_transfer_log(id, TransferKind::Listing, &path);
                }
                if self.session.answer_listing(id, entries).is_err() {
                    self.transfer_logs.remove(&id);
                }
                return outcome;
            }
            Request::Cwd { path } => storage.change_dir(&path).map(Answer::Path),
            Request::Mkdir { path } => storage.make_dir(&path).map(Answer::Path),
            Request::Rmdir { path } => storage.remove_dir(&path).map(|()| Answer::Done),
            Request::Delete { path } => storage.delete(&path).map(|()| Answer::Done),
            Request::Rename { from, to } => storage.rename(&from, &to).map(|()| Answer::Done),
            Request::Size { path } => storage.entry(&path).map(|e| Answer::Size(e.size)),
            Request::Mdtm { path } => storage
                .entry(&path)
                .and_then(|e| e.modified.ok_or(FsError::Unavailable))
                .map(Answer::Modified),
            Request::Mlst { path } => storage.entry(&path).map(Answer::Entry),
            Request::Retrieve { path, offset } => storage.open_read(&path, offset).map(|source| {
                self.start_transfer_log(id, TransferKind::Download, &path);
                self.transfers.insert(
                    id,
                    Transfer::Download {
                        source,
                        pending: Vec::new(),
                        writable: false,
                        finished: false,
                    },
                );
                Answer::Done
            }),
            Request::Store {
                path,
                offset,
                append,
                unique,
            } => {
                let opened = if unique {
                    storage
                        .open_unique(&path)
                        .map(|(name, upload)| (Answer::Path(name), upload))
                } else {
                    storage
                        .open_write(&path, offset, append)
                        .map(|upload| (Answer::Done, upload))
                };
                opened.map(|(answer, upload)| {
                    let logged = match &answer {
                        Answer::Path(name) => name.as_slice(),
                        _ => path.as_slice(),
                    };
                    self.start_transfer_log(id, TransferKind::Upload, logged);
                    self.transfers.insert(id, Transfer::Upload(Some(upload)));
                    answer
                })
            }
            // Requests a newer core may add: refused until this driver knows them.
            _ => Err(FsError::PermissionDenied),
        };
        let outcome = answer.as_ref().map(|_| ()).map_err(|e| *e);
        if self.session.answer(id, answer).is_err() {
            self.transfers.remove(&id);
            self.transfer_logs.remove(&id);
        }
        outcome
    }

    /// Feeds writable downloads; true when anything moved (drain again before waiting).
    fn pump_downloads(&mut self) -> bool {
        let mut progressed = false;
        let mut failed = Vec::new();
        for (id, transfer) in &mut self.transfers {
            let Transfer::Download {
                source,
                pending,
                writable,
                finished,
            } = transfer
            else {
                continue;
            };
            while *writable && !*finished {
                if pending.is_empty() {
                    pending.resize(IO_BUFFER, 0);
                    match source.read(pending) {
                        Ok(0) => {
                            pending.clear();
                            *finished = true;
                            let _ = self.session.finish_data(*id);
                            progressed = true;
                            break;
                        }
                        Ok(n) => pending.truncate(n),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                            pending.clear();
                            continue;
                        }
                        Err(_) => {
                            pending.clear();
                            *finished = true;
                            failed.push(*id);
                            break;
                        }
                    }
                }
                match self.session.write_data(*id, pending) {
                    Ok(0) => *writable = false,
                    Ok(n) => {
                        pending.drain(..n);
                        progressed = true;
                    }
                    Err(_) => *finished = true,
                }
            }
        }
        for id in failed {
            let _ = self.session.fail_transfer(id, FsError::Local);
            progressed = true;
        }
        progressed
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
                self.backlog.remove(&channel);
            }
            _ => {}
        }
    }

    /// Feeds held-back bytes first; otherwise waits for the next socket event, the session's
    /// deadline or the shutdown poll interval, and reports it.
    fn wait_for_io(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let now = self.now();
        let mut progressed = false;
        let channels: Vec<Channel> = self.backlog.keys().copied().collect();
        for channel in channels {
            let Some(bytes) = self.backlog.get_mut(&channel) else {
                continue;
            };
            let taken = self.session.handle_receive(channel, bytes, now);
            bytes.drain(..taken);
            progressed |= taken > 0;
            if bytes.is_empty() {
                self.backlog.remove(&channel);
            }
        }
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
        let paused: Vec<Channel> = self.backlog.keys().copied().collect();
        let readiness = match self.sockets.wait(Some(timeout), &paused, &mut self.recv) {
            Ok(readiness) => readiness,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        let now = self.now();
        match readiness {
            Readiness::Received { channel, len } => {
                let taken = self.session.handle_receive(channel, &self.recv[..len], now);
                if taken < len {
                    self.backlog
                        .entry(channel)
                        .or_default()
                        .extend_from_slice(&self.recv[taken..len]);
                }
            }
            Readiness::Eof { channel } => self.session.handle_eof(channel, now),
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

/// The operation, path and (for a rename) new name of a file-system request, for its log
/// line; `None` for a request that is not one (a login, or one a newer core may add).
fn describe_file_op(request: &Request) -> Option<(FileOp, String, Option<String>)> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let (op, path) = match request {
        Request::Cwd { path } => (FileOp::ChangeDir, path),
        Request::Mkdir { path } => (FileOp::MakeDir, path),
        Request::Rmdir { path } => (FileOp::RemoveDir, path),
        Request::Delete { path } => (FileOp::Delete, path),
        Request::Rename { from, to } => return Some((FileOp::Rename, text(from), Some(text(to)))),
        Request::Size { path } => (FileOp::Size, path),
        Request::Mdtm { path } => (FileOp::ModTime, path),
        Request::Mlst { path } => (FileOp::Stat, path),
        Request::List { path, .. } => (FileOp::Listing, path),
        Request::Retrieve { path, .. } => (FileOp::Download, path),
        Request::Store { path, .. } => (FileOp::Upload, path),
        _ => return None,
    };
    Some((op, text(path), None))
}

/// Why the storage refused, for a log line.
fn fs_error_reason(error: FsError) -> &'static str {
    match error {
        FsError::NotFound => "not found",
        FsError::PermissionDenied => "permission denied",
        FsError::WrongKind => "wrong kind (file vs. directory)",
        FsError::AlreadyExists => "already exists",
        FsError::InvalidName => "invalid name",
        FsError::NoSpace => "no space left",
        FsError::Unavailable => "temporarily unavailable",
        FsError::Local => "local error",
        _ => "refused by the storage",
    }
}

/// Hands `event` to the server's log, if any.
fn emit(shared: &Shared, number: u64, peer: SocketAddr, event: &SessionEvent) {
    if let Some(log) = &shared.log {
        log.event(number, peer, event);
    }
}

fn secured_event(info: &TlsInfo) -> SessionEvent {
    let version = match info.version {
        TlsVersion::Tls13 => "TLSv1.3".to_owned(),
        TlsVersion::Tls12 => "TLSv1.2".to_owned(),
    };
    SessionEvent::Secured {
        version,
        cipher: info.cipher_suite_name.clone(),
    }
}
