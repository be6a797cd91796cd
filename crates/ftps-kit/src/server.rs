//! The application side of one server session: [`SessionApp`].
//!
//! A server driver drains its [`ServerSession`], sends what it transmits and carries out its
//! socket requests; every event the session reports goes to the session's [`SessionApp`],
//! which answers requests from [`Auth`] and [`Storage`], runs the downloads and uploads they
//! start, commits a complete upload before the session sends its `226`, and reports what
//! happened to the [`SessionLog`]. Between drains the driver calls [`SessionApp::pump`] to
//! feed writable downloads and listings (a listing goes entry by entry from the storage's
//! iterator, so a huge directory never sits in memory as formatted text).
//!
//! ```text
//! loop {
//!     match session.poll_output(&mut out, now) {
//!         Output::Transmit { .. } | Output::Io(..) => { /* sockets: the driver's */ }
//!         Output::Event(ServerEvent::Closed { error }) => return error,
//!         Output::Event(event) => app.on_event(&mut session, event), // owned: no borrow
//!         Output::Wait { .. } => { if app.pump(&mut session) { continue } /* wait */ }
//!     }
//! }
//! ```

/// Everything a server's user names, whichever driver runs it: the drivers' `server` modules
/// re-export this module whole.
pub mod api {
    pub use crate::auth::{Auth, InvalidHash, LoginAttempt, UserTable, hash_password};
    pub use crate::limits::SessionLimits;
    pub use crate::log::{FileOp, SessionEvent, SessionLog, TransferKind};
    pub use crate::server::{ServerOptions, SessionEnd};
    pub use crate::storage::{Download, Listing, LocalFs, Storage, Upload};
    /// What a [`Storage`] answers with.
    pub use ftps_proto::server::{DirEntry, FsError};
    /// The session configuration and listener modes, for [`ServerOptions`].
    pub use ftps_proto::server::{ServerSessionConfig, ServerTlsMode};
}

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ftps_proto::server::{
    Answer, DirEntry, FsError, Request, RequestId, ServerError, ServerEvent, ServerSession,
    ServerSessionConfig, ServerTlsMode,
};
use ftps_proto::tls::{TlsInfo, TlsVersion};

use crate::auth::{Auth, LoginJob, LoginPool};
use crate::limits::{Admission, SessionLimits};
use crate::log::{FileOp, SessionEvent, SessionLog, TransferKind};
use crate::storage::{Download, Listing, Storage, Upload};

/// How many bytes a download reads from its source at a time.
const DOWNLOAD_CHUNK: usize = 64 * 1024;
/// How many upload bytes are read from the session per call.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// What every session of one server shares: its files, who may log in (verified on the
/// server's [`LoginPool`]), where session events go, and the [`Admission`] counters of its
/// [`SessionLimits`]. Cheap to clone (reference counts).
#[derive(Clone)]
pub struct Backends {
    /// The files.
    pub storage: Arc<dyn Storage>,
    /// Verifies logins with the server's [`Auth`].
    pub logins: Arc<LoginPool>,
    /// Where session events go for logging (`None`: nowhere).
    pub log: Option<Arc<dyn SessionLog>>,
    /// Sessions and data connections admitted.
    pub admission: Arc<Admission>,
}

impl Backends {
    /// The shared state of a server over `storage` and `auth` with `limits` (this starts the
    /// login pool's threads).
    pub fn new(
        storage: Arc<dyn Storage>,
        auth: Arc<dyn Auth>,
        log: Option<Arc<dyn SessionLog>>,
        limits: SessionLimits,
    ) -> io::Result<Self> {
        let logins = LoginPool::new(auth, limits.login_threads, limits.login_queue)?;
        Ok(Self {
            storage,
            logins: Arc::new(logins),
            log,
            admission: Admission::new(limits),
        })
    }
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("log", &self.log.is_some())
            .field("admission", &self.admission)
            .finish_non_exhaustive()
    }
}

/// Where and how a server listens, and what it serves: the options of every driver's server.
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
    /// Sessions, data connections, login pool and shutdown grace.
    pub limits: SessionLimits,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("explicit", &self.explicit)
            .field("implicit", &self.implicit)
            .field("passive_ports", &self.passive_ports)
            .field("advertised_address", &self.advertised_address)
            .field("log", &self.log.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A server's options made real: its listeners bound (non-blocking std listeners; an async
/// driver converts them), the session template, and the [`Backends`] with the login pool
/// started.
#[derive(Debug)]
pub struct ServerSetup {
    /// Every listener with its TLS mode.
    pub listeners: Vec<(TcpListener, ServerTlsMode)>,
    /// Their addresses, in the same order.
    pub addrs: Vec<(SocketAddr, ServerTlsMode)>,
    /// What every session shares.
    pub backends: Backends,
    /// The ports passive data listeners use.
    pub passive_ports: Option<RangeInclusive<u16>>,
    session: ServerSessionConfig,
}

impl ServerSetup {
    /// Binds every listener of `options` and starts the login pool.
    pub fn bind(options: ServerOptions) -> io::Result<Self> {
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for (list, mode) in [
            (&options.explicit, ServerTlsMode::Explicit),
            (&options.implicit, ServerTlsMode::Implicit),
        ] {
            for addr in list {
                let listener = TcpListener::bind(addr)?;
                listener.set_nonblocking(true)?;
                addrs.push((listener.local_addr()?, mode));
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
        let backends = Backends::new(options.storage, options.auth, options.log, options.limits)?;
        Ok(Self {
            listeners,
            addrs,
            backends,
            passive_ports: options.passive_ports,
            session,
        })
    }

    /// The first listener's address for `mode`.
    pub fn local_addr_for(&self, mode: ServerTlsMode) -> Option<SocketAddr> {
        self.addrs.iter().find(|(_, m)| *m == mode).map(|(a, _)| *a)
    }

    /// The session configuration for a connection accepted on a listener of `mode`.
    pub fn config_for(&self, mode: ServerTlsMode) -> ServerSessionConfig {
        let mut config = self.session.clone();
        config.tls_mode = mode;
        config
    }
}

/// How one server session ended, in either driver.
#[derive(Debug)]
pub enum SessionEnd {
    /// The session closed: `None` after `QUIT`, otherwise why (idle timeout, lost connection,
    /// TLS failure, a limit, shutdown, …).
    Closed(Option<ServerError>),
    /// A local socket error the session could not be told about.
    Io(io::Error),
}

impl SessionEnd {
    /// The reason for the session's `Closed` log line (`None` after `QUIT`).
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Closed(error) => error.as_ref().map(ToString::to_string),
            Self::Io(e) => Some(format!("I/O error: {e}")),
        }
    }
}

/// A login handed to the pool: where its verdict lands, and who to wake then.
struct LoginSlot {
    verdict: Mutex<Option<bool>>,
    decided: Condvar,
    wake: Option<Waker>,
}

/// Wakes a session's driver (called from a pool thread).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Runs a storage call that may block for long — opening a file, a listing, a rename, the
/// commit of an upload with its fsync — where the driver says: an async driver whose thread
/// must not stall its other sessions moves it off (tokio: `block_in_place`); without one the
/// call runs in place. The reads and writes of a transfer's chunks run in place either way
/// (64 KiB at a time, page-cache speed; moving each off would cost a thread hand-off per
/// chunk).
pub type BlockingSection = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

/// A login waiting for its verdict.
struct PendingLogin {
    id: RequestId,
    user: String,
    slot: Arc<LoginSlot>,
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
    /// `None` once discarded (its write failed).
    Upload(Option<Box<dyn Upload>>),
    /// A directory listing, handed to the session entry by entry as it takes them.
    Listing {
        entries: Listing,
        /// An entry the session had no room for yet.
        pending: Option<DirEntry>,
        writable: bool,
        finished: bool,
    },
}

/// What the log needs of a transfer the backend accepted.
struct TransferLog {
    kind: TransferKind,
    path: String,
    started: std::time::Instant,
}

/// The application side of one server session: answers its requests from [`Auth`] and
/// [`Storage`], moves the bytes of its transfers between the session and the storage, and
/// reports its events to the [`SessionLog`]. Owns no socket; the driver hands it the session
/// with each call.
///
/// Dropping it discards unfinished uploads (and closes downloads).
pub struct SessionApp {
    backends: Backends,
    /// This session's number and peer, for the log.
    number: u64,
    peer: SocketAddr,
    transfers: HashMap<RequestId, Transfer>,
    transfer_logs: HashMap<RequestId, TransferLog>,
    /// Upload bytes read from the session on their way to storage (reused).
    upload_buffer: Vec<u8>,
    /// The login on the pool, if any.
    login: Option<PendingLogin>,
    /// Called when a login verdict arrives (`None`: the driver waits with
    /// [`wait_login`](SessionApp::wait_login)).
    wake: Option<Waker>,
    /// Where long storage calls run (`None`: in place).
    blocking: Option<BlockingSection>,
}

impl std::fmt::Debug for SessionApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionApp")
            .field("number", &self.number)
            .field("peer", &self.peer)
            .field("transfers", &self.transfers.len())
            .finish_non_exhaustive()
    }
}

impl SessionApp {
    /// The application side of session number `number` (a per-server counter starting at 1)
    /// with the client at `peer`.
    pub fn new(backends: Backends, number: u64, peer: SocketAddr) -> Self {
        Self {
            backends,
            number,
            peer,
            transfers: HashMap::new(),
            transfer_logs: HashMap::new(),
            upload_buffer: Vec::new(),
            login: None,
            wake: None,
            blocking: None,
        }
    }

    /// Runs the storage calls that may block for long through `section` (see
    /// [`BlockingSection`]).
    pub fn set_blocking_section(&mut self, section: BlockingSection) {
        self.blocking = Some(section);
    }

    /// Runs `call` through the blocking section, if any.
    fn blocking<T>(&self, call: impl FnOnce() -> T) -> T {
        let Some(section) = &self.blocking else {
            return call();
        };
        let mut call = Some(call);
        let mut out = None;
        section(&mut || {
            if let Some(call) = call.take() {
                out = Some(call());
            }
        });
        match (out, call) {
            (Some(out), _) => out,
            // A section that did not run its job: run it here.
            (None, Some(call)) => call(),
            (None, None) => unreachable!("a job that ran has its result"),
        }
    }

    /// Has `wake` called whenever a login verdict arrives (an async driver's task waker; a
    /// blocking driver uses [`wait_login`](Self::wait_login) instead).
    pub fn set_waker(&mut self, wake: Waker) {
        self.wake = Some(wake);
    }

    /// True while a login is being verified.
    pub fn login_pending(&self) -> bool {
        self.login.is_some()
    }

    /// Blocks until the pending login's verdict arrives, at most `timeout` (then
    /// [`pump`](Self::pump) answers it). Returns at once when no login is pending.
    pub fn wait_login(&self, timeout: Duration) {
        let Some(login) = &self.login else {
            return;
        };
        let verdict = login
            .slot
            .verdict
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = login
            .slot
            .decided
            .wait_timeout_while(verdict, timeout, |v| v.is_none());
    }

    /// True while a transfer runs (a graceful shutdown lets it finish).
    pub fn is_transferring(&self) -> bool {
        !self.transfers.is_empty()
    }

    /// Answers the pending login once its verdict is in; true when it did.
    fn answer_login(&mut self, session: &mut ServerSession) -> bool {
        let Some(login) = &self.login else {
            return false;
        };
        let verdict = *login
            .slot
            .verdict
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(granted) = verdict else {
            return false;
        };
        let Some(login) = self.login.take() else {
            return false;
        };
        self.decide_login(session, login.id, login.user, granted);
        true
    }

    fn decide_login(&self, session: &mut ServerSession, id: RequestId, user: String, ok: bool) {
        let event = if ok {
            SessionEvent::LoggedIn { user }
        } else {
            SessionEvent::LoginRefused { user }
        };
        self.emit(&event);
        let _ = session.answer_login(id, ok);
    }

    /// Logs the accepted control connection ([`SessionEvent::Connected`]); `implicit`: TLS
    /// from the first byte.
    pub fn connected(&self, implicit: bool) {
        self.emit(&SessionEvent::Connected {
            peer: self.peer,
            implicit,
        });
    }

    /// The session ended (`reason`: why, `None` after `QUIT`): discards unfinished uploads,
    /// then logs [`SessionEvent::Closed`], always the session's last event.
    pub fn closed(mut self, reason: Option<String>) {
        self.transfers.clear();
        self.emit(&SessionEvent::Closed { reason });
    }

    /// Handles one event of `session`: answers requests, marks downloads and listings
    /// writable, moves upload bytes to storage, commits or discards finished uploads, and logs.
    /// [`ServerEvent::Closed`] is the driver's (it ends the session) and ignored here.
    pub fn on_event(&mut self, session: &mut ServerSession, event: ServerEvent) {
        match event {
            ServerEvent::Request { id, request } => self.answer(session, id, request),
            ServerEvent::Writable { id } => {
                if let Some(
                    Transfer::Download { writable, .. } | Transfer::Listing { writable, .. },
                ) = self.transfers.get_mut(&id)
                {
                    *writable = true;
                }
            }
            ServerEvent::Readable { id } => self.store_upload_bytes(session, id),
            ServerEvent::UploadFinished {
                id,
                complete,
                bytes,
                resumed_tls,
            } => {
                let committed = self.finish_upload(session, id, complete);
                self.log_transfer(id, committed, bytes, resumed_tls);
            }
            ServerEvent::SendFinished {
                id,
                complete,
                bytes,
                resumed_tls,
            } => {
                self.transfers.remove(&id);
                self.log_transfer(id, complete, bytes, resumed_tls);
            }
            ServerEvent::Secured { info } => self.emit(&secured_event(&info)),
            ServerEvent::Refused { reason } => {
                let reason = reason.to_string();
                self.emit(&SessionEvent::Refused { reason });
            }
            ServerEvent::DataPeerRefused { peer } => {
                let reason = format!("passive data connection from {peer} refused (port theft)");
                self.emit(&SessionEvent::Refused { reason });
            }
            _ => {}
        }
    }

    /// Reads the upload bytes `session` holds for `id` and writes them to their upload. When
    /// the storage refuses them the upload is discarded and the session fails the transfer
    /// (`451`, `552` when out of space).
    fn store_upload_bytes(&mut self, session: &mut ServerSession, id: RequestId) {
        self.upload_buffer.resize(UPLOAD_CHUNK, 0);
        loop {
            let n = match session.read_data(id, &mut self.upload_buffer) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            let Some(Transfer::Upload(slot)) = self.transfers.get_mut(&id) else {
                continue; // not ours (any more): drain and drop
            };
            let Some(upload) = slot.as_mut() else {
                continue;
            };
            if let Err(error) = upload.write(&self.upload_buffer[..n]) {
                if let Some(upload) = slot.take() {
                    upload.abort();
                }
                let _ = session.fail_transfer(id, error);
                return;
            }
        }
    }

    /// Feeds writable downloads from their sources and writable listings from their
    /// entries; true when anything moved (drain the session again before waiting).
    pub fn pump(&mut self, session: &mut ServerSession) -> bool {
        let mut progressed = self.answer_login(session);
        let mut failed = Vec::new();
        for (id, transfer) in &mut self.transfers {
            if let Transfer::Listing {
                entries,
                pending,
                writable,
                finished,
            } = transfer
            {
                while *writable && !*finished {
                    let Some(entry) = pending.take().or_else(|| entries.next()) else {
                        *finished = true;
                        let _ = session.finish_data(*id);
                        progressed = true;
                        break;
                    };
                    match session.write_entry(*id, &entry) {
                        Ok(true) => progressed = true,
                        Ok(false) => {
                            *pending = Some(entry);
                            *writable = false;
                        }
                        Err(_) => *finished = true,
                    }
                }
                continue;
            }
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
                    pending.resize(DOWNLOAD_CHUNK, 0);
                    match source.read(pending) {
                        Ok(0) => {
                            pending.clear();
                            *finished = true;
                            let _ = session.finish_data(*id);
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
                match session.write_data(*id, pending) {
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
            let _ = session.fail_transfer(id, FsError::Local);
            progressed = true;
        }
        progressed
    }

    /// An upload ended: a complete one is committed (made visible under its name) and the
    /// session hears the outcome before it sends the final reply; an incomplete one is
    /// discarded (its reply does not wait). True when the file was committed.
    fn finish_upload(
        &mut self,
        session: &mut ServerSession,
        id: RequestId,
        complete: bool,
    ) -> bool {
        let upload = match self.transfers.remove(&id) {
            Some(Transfer::Upload(upload)) => upload,
            _ => None,
        };
        if !complete {
            if let Some(upload) = upload {
                self.blocking(|| upload.abort());
            }
            return false;
        }
        // A complete upload without its file (its write failed earlier): nothing to commit.
        let result = self.blocking(|| upload.map_or(Err(FsError::Local), |upload| upload.commit()));
        let committed = result.is_ok();
        let _ = session.finish_upload(id, result);
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
        self.emit(&event);
    }

    /// Remembers a transfer the backend accepted, for its log line.
    fn start_transfer_log(&mut self, id: RequestId, kind: TransferKind, path: &[u8]) {
        if self.backends.log.is_some() {
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
    fn answer(&mut self, session: &mut ServerSession, id: RequestId, request: Request) {
        let Request::Login {
            user,
            password,
            client_certificate,
            ..
        } = request
        else {
            // Described before the request is consumed; only when someone listens.
            let described = if self.backends.log.is_some() {
                describe_file_op(&request)
            } else {
                None
            };
            let outcome = self.answer_from_storage(session, id, request);
            if let Some((op, path, to)) = described {
                self.log_file_op(op, path, to, outcome);
            }
            return;
        };
        let user_text = String::from_utf8_lossy(&user).into_owned();
        let job = LoginJob {
            user,
            password: password.as_bytes().to_vec(),
            client_certificate,
            peer: session.peer_addr(),
        };
        let slot = Arc::new(LoginSlot {
            verdict: Mutex::new(None),
            decided: Condvar::new(),
            wake: self.wake.clone(),
        });
        let landed = Arc::clone(&slot);
        let done = Box::new(move |granted: bool| {
            *landed
                .verdict
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(granted);
            landed.decided.notify_all();
            if let Some(wake) = &landed.wake {
                wake();
            }
        });
        match self.backends.logins.submit(job, done) {
            Ok(()) => {
                self.login = Some(PendingLogin {
                    id,
                    user: user_text,
                    slot,
                });
            }
            Err(full) => {
                let reason = format!("login of {user_text:?} not checked: {full}");
                self.emit(&SessionEvent::Refused { reason });
                self.decide_login(session, id, user_text, false);
            }
        }
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
        self.emit(&event);
    }

    /// Answers a file-system request from storage; returns the storage's verdict (whether or
    /// not the session still took the answer). The storage call runs in the blocking section;
    /// the session's bookkeeping after it does not.
    fn answer_from_storage(
        &mut self,
        session: &mut ServerSession,
        id: RequestId,
        request: Request,
    ) -> Result<(), FsError> {
        let storage = Arc::clone(&self.backends.storage);
        let opened = self.blocking(|| open_from_storage(&*storage, request));
        let answer = opened.map(|opened| match opened {
            Opened::Answer(answer) => answer,
            Opened::Listing { path, entries } => {
                self.start_transfer_log(id, TransferKind::Listing, &path);
                let listing = Transfer::Listing {
                    entries,
                    pending: None,
                    writable: false,
                    finished: false,
                };
                self.transfers.insert(id, listing);
                Answer::Done
            }
            Opened::Download { path, source } => {
                self.start_transfer_log(id, TransferKind::Download, &path);
                let download = Transfer::Download {
                    source,
                    pending: Vec::new(),
                    writable: false,
                    finished: false,
                };
                self.transfers.insert(id, download);
                Answer::Done
            }
            Opened::Upload {
                answer,
                path,
                upload,
            } => {
                self.start_transfer_log(id, TransferKind::Upload, &path);
                self.transfers.insert(id, Transfer::Upload(Some(upload)));
                answer
            }
        });
        let outcome = answer.as_ref().map(|_| ()).map_err(|e| *e);
        if session.answer(id, answer).is_err() {
            self.transfers.remove(&id);
            self.transfer_logs.remove(&id);
        }
        outcome
    }

    /// Hands `event` to the server's log, if any.
    fn emit(&self, event: &SessionEvent) {
        if let Some(log) = &self.backends.log {
            log.event(self.number, self.peer, event);
        }
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

/// What storage answered a request with, before the session's bookkeeping.
enum Opened {
    /// A plain answer.
    Answer(Answer),
    /// A listing to stream.
    Listing { path: Vec<u8>, entries: Listing },
    /// A file to send.
    Download { path: Vec<u8>, source: Download },
    /// A file being received (`path`: the name logged, the unique name for `STOU`).
    Upload {
        answer: Answer,
        path: Vec<u8>,
        upload: Box<dyn Upload>,
    },
}

/// Asks `storage` for what `request` needs (the part of answering that may block).
fn open_from_storage(storage: &dyn Storage, request: Request) -> Result<Opened, FsError> {
    let answer = |answer: Result<Answer, FsError>| answer.map(Opened::Answer);
    match request {
        Request::List { path, .. } => storage
            .list(&path)
            .map(|entries| Opened::Listing { path, entries }),
        Request::Cwd { path } => answer(storage.change_dir(&path).map(Answer::Path)),
        Request::Mkdir { path } => answer(storage.make_dir(&path).map(Answer::Path)),
        Request::Rmdir { path } => answer(storage.remove_dir(&path).map(|()| Answer::Done)),
        Request::Delete { path } => answer(storage.delete(&path).map(|()| Answer::Done)),
        Request::Rename { from, to } => answer(storage.rename(&from, &to).map(|()| Answer::Done)),
        Request::Size { path } => answer(storage.entry(&path).map(|e| Answer::Size(e.size))),
        Request::Mdtm { path } => answer(
            storage
                .entry(&path)
                .and_then(|e| e.modified.ok_or(FsError::Unavailable))
                .map(Answer::Modified),
        ),
        Request::Mlst { path } => answer(storage.entry(&path).map(Answer::Entry)),
        Request::Retrieve { path, offset } => storage
            .open_read(&path, offset)
            .map(|source| Opened::Download { path, source }),
        Request::Store {
            path,
            offset,
            append,
            unique,
        } => {
            if unique {
                storage
                    .open_unique(&path)
                    .map(|(name, upload)| Opened::Upload {
                        answer: Answer::Path(name.clone()),
                        path: name,
                        upload,
                    })
            } else {
                storage
                    .open_write(&path, offset, append)
                    .map(|upload| Opened::Upload {
                        answer: Answer::Done,
                        path,
                        upload,
                    })
            }
        }
        // Requests a newer core may add: refused until this kit knows them.
        _ => Err(FsError::PermissionDenied),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ops_are_described_for_the_log() {
        let rename = Request::Rename {
            from: b"/a".to_vec(),
            to: b"/b\xff".to_vec(),
        };
        assert_eq!(
            describe_file_op(&rename),
            Some((
                FileOp::Rename,
                "/a".to_owned(),
                Some("/b\u{fffd}".to_owned())
            ))
        );
        let cwd = Request::Cwd {
            path: b"/pub".to_vec(),
        };
        assert_eq!(
            describe_file_op(&cwd),
            Some((FileOp::ChangeDir, "/pub".to_owned(), None))
        );
    }

    #[test]
    fn storage_refusals_have_log_reasons() {
        assert_eq!(fs_error_reason(FsError::NotFound), "not found");
        assert_eq!(fs_error_reason(FsError::AlreadyExists), "already exists");
        assert_eq!(fs_error_reason(FsError::Local), "local error");
    }
}
