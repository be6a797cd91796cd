//! The sans-IO FTPS server session.
//!
//! A [`ServerSession`] runs one control connection (already accepted by the driver) and its
//! data connections. The core decides protocol and policy; every login and file-system
//! decision goes to the application as a [`ServerEvent::Request`], answered with
//! [`answer_login`](ServerSession::answer_login), [`answer`](ServerSession::answer) or
//! [`answer_listing`](ServerSession::answer_listing). The core never touches a file: paths are
//! bytes joined to a working directory the session tracks as text, and the backend resolves and
//! jails them.
//!
//! # Run loop
//! 1. Create the session when the driver accepted a control connection. Drain
//!    [`poll_output`](ServerSession::poll_output) until `Wait { deadline }`: the greeting (or,
//!    in implicit mode, nothing until the client's TLS hello) goes out.
//! 2. Forward reads with [`handle_receive`](ServerSession::handle_receive) (it returns how many
//!    bytes it took; feed the rest after draining), end of stream with
//!    [`handle_eof`](ServerSession::handle_eof), socket results with `handle_listening`,
//!    `handle_accepted`, `handle_connected`, `handle_io_error`, and expired deadlines with
//!    [`handle_timeout`](ServerSession::handle_timeout).
//! 3. Answer requests; for downloads write bytes after [`ServerEvent::Writable`] with
//!    [`write_data`](ServerSession::write_data) and end with
//!    [`finish_data`](ServerSession::finish_data); uploads arrive as [`ServerEvent::Data`] and
//!    end with [`ServerEvent::UploadFinished`]; a complete one is committed by the application
//!    and answered with [`finish_upload`](ServerSession::finish_upload) before its final
//!    reply (`226` only for a file that is really stored).
//!
//! # Security behaviour (secure by default, see [`SessionConfig`])
//! - TLS on the control connection before `USER`/`PASS` (530 otherwise); only FEAT, HELP,
//!   QUIT, AUTH, HOST, SYST, NOOP, OPTS (and PBSZ/PROT/CCC with their own 503/533) before it.
//! - Bytes pipelined after `AUTH TLS` (or `CCC`) are never executed: `421` and close
//!   (CVE-2011-0411 class, checklist §9.1).
//! - `PROT P` required for transfers: `521` before any 1yz; `PROT C` refused with `534`.
//! - Data connections must resume this control connection's TLS session (`522`).
//! - `PORT`/`EPRT` to another host than the control peer (`500`) or to a port below 1024
//!   (`504`) is refused (bounce); a passive data connection from another host is refused and
//!   the session keeps waiting (port theft).
//! - An upload that ends without close_notify is `426`, never `226`, and the application hears
//!   `complete: false` (truncation, checklist §9.4); a complete one gets `226` only after
//!   the application reported its commit.
//! - Policy and defence refusals are reported as [`ServerEvent::Refused`] (for logs).
//! - Failed logins are answered after a delay and end the session with `421` at the limit;
//!   HTTP-looking commands close the connection at once (ALPACA, §9.6); command arguments are
//!   never echoed in replies; passwords are redacted in `Debug`.
//!
//! Reply-code choices where the RFCs leave a choice: AUTH under TLS `503`; REIN `502`
//! (compliant refusal, checklist T14); PBSZ/PROT after CCC `503`; a data connection that did
//! not resume `522 SSL connection failed: session reuse required` (T40, vsftpd's text);
//! other data TLS failures `522`; `EPSV ALL` `200` and later PORT/EPRT/PASV `503` (E06).

mod ascii;
mod config;
mod drain;
mod event;

pub use config::{ClientCertificates, Limits, SessionConfig, Timeouts, TlsMode};
pub use event::{
    Answer, DirEntry, DirEntryKind, FsError, ListFormat, Refusal, Request, RequestId, ServerError,
    ServerEvent, UsageError,
};

use alloc::collections::VecDeque;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use crate::codec::addr::{
    AddrError, EpsvRequest, NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT, NetworkProtocol, epsv_reply_text,
    is_same_host, network_protocol_not_supported_text, parse_eprt_argument, parse_epsv_argument,
    parse_port_argument, pasv_reply_text,
};
use crate::codec::command::{
    Command, CommandError, CommandParser, FileStructure, FormatControl, Password, ProtectionLevel,
    TransferMode, TransferType,
};
use crate::codec::listing::{
    Fact, ListEntry, ListEntryKind, ListTime, MlsxEntry, parse_opts_mlst_facts,
};
use crate::codec::reply::{Reply, ReplyCode};
use crate::data::{DataConnection, DataDirection, DataError};
use crate::io::{Channel, DataId, Instant, IoErrorKind, IoRequest};
use crate::tls::{DataServerConfigs, ServerConfig, TlsChannel, TlsError, TlsEvent};
use ascii::{AsciiDecoder, encode_ascii};

/// MLST facts this server can send, all on by default.
const MLST_FACTS: [&[u8]; 6] = [
    b"type",
    b"size",
    b"modify",
    b"perm",
    b"unique",
    b"UNIX.mode",
];

/// Rounds of data processing per drain call (each moves at most a buffer's worth).
const DATA_ROUNDS: usize = 8;

/// What an answer from the application completes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Login,
    Cwd {
        path: Vec<u8>,
    },
    Mkdir {
        path: Vec<u8>,
    },
    /// RMD, DELE, RNTO: `250` on success.
    Simple,
    Size,
    Mdtm,
    Mlst {
        path: Vec<u8>,
    },
    Transfer(PendingTransfer),
    /// A complete upload: its final reply waits for the application's commit
    /// (`finish_upload`).
    Commit,
}

/// When a file-system error is reported, which decides its reply code.
#[derive(Debug, Clone, Copy)]
enum ErrorStage<'a> {
    /// Refusing a request, before any 1yz reply.
    Request(&'a Pending),
    /// A transfer's final reply, after its 150: RFC 959 §5.4 allows only 226/250, 425, 426,
    /// 451, 551 and 552 there, so 550/553/452 would be out of place.
    Transfer,
}

/// The one mapping from the application's [`FsError`] to a reply (fixed texts: nothing the
/// backend said is echoed).
fn fs_error_reply(err: FsError, stage: ErrorStage<'_>) -> (u16, &'static [u8]) {
    let pending = match stage {
        ErrorStage::Transfer => {
            return match err {
                FsError::NoSpace => (552, b"Transfer aborted: insufficient storage space."),
                _ => (451, b"Transfer aborted: local error."),
            };
        }
        ErrorStage::Request(pending) => pending,
    };
    let mlsd = matches!(
        pending,
        Pending::Transfer(PendingTransfer {
            kind: TransferKind::Listing(ListFormat::Mlsd)
        })
    );
    let upload = matches!(
        pending,
        Pending::Transfer(PendingTransfer {
            kind: TransferKind::Store { .. }
        })
    );
    match err {
        FsError::NotFound => (550, b"No such file or directory."),
        FsError::PermissionDenied => (550, b"Permission denied."),
        FsError::WrongKind if mlsd => (501, b"Not a directory."),
        FsError::WrongKind => (550, b"Wrong kind of file."),
        FsError::AlreadyExists if upload => (553, b"File exists."),
        FsError::AlreadyExists => (550, b"File exists."),
        FsError::InvalidName => (553, b"File name not allowed."),
        FsError::NoSpace => (452, b"Insufficient storage space."),
        FsError::Unavailable => (450, b"Requested file action not taken."),
        FsError::Local => (451, b"Local error in processing."),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferKind {
    Retrieve,
    Store { unique: bool },
    Listing(ListFormat),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingTransfer {
    kind: TransferKind,
}

/// What the command processor waits for.
#[derive(Debug)]
enum Wait {
    Nothing,
    Answer { id: RequestId, pending: Pending },
    Listen { data: DataId, extended: bool },
    LoginDelay { until: Instant, close: bool },
}

/// The data connection prepared by the last PORT/EPRT/PASV/EPSV.
#[derive(Debug)]
enum DataSetup {
    None,
    Passive {
        id: DataId,
        /// The listener's address is known (227/229 sent).
        bound: bool,
        accepted: bool,
        early: Vec<u8>,
        eof: bool,
    },
    Active {
        addr: SocketAddr,
    },
}

#[derive(Debug)]
struct Transfer {
    id: RequestId,
    kind: TransferKind,
    ascii: bool,
    conn: DataConnection,
    /// Payload waiting for room in the connection (listings, TYPE A downloads).
    staging: Vec<u8>,
    /// Nothing more will be written (listing formatted, or `finish_data`).
    source_done: bool,
    finish_called: bool,
    /// The application was told (or must be told) the download takes data.
    want_writable: bool,
    conn_writable: bool,
    decoder: AsciiDecoder,
    /// An upload chunk after TYPE A conversion, lent to the application.
    upload: Vec<u8>,
    result: Option<Result<(), DataError>>,
}

/// The FTPS server session. See the [module documentation](self).
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    /// This control connection's TLS config (private session store).
    tls_config: Option<Arc<ServerConfig>>,
    /// Its data connections' configs: the same session store; TLS 1.3 tickets by direction.
    data_tls_configs: Option<DataServerConfigs>,
    peer: SocketAddr,
    local: SocketAddr,
    now: Instant,
    control_tls: Option<TlsChannel>,
    /// CCC accepted: waiting for the client's close_notify.
    clearing: bool,
    /// The control TLS channel after CCC, kept until our close_notify went out.
    cleared_tls: Option<TlsChannel>,
    ccc_done: bool,
    parser: CommandParser,
    queue: VecDeque<Result<Command, CommandError>>,
    /// Plaintext that must go out before the control TLS output (the `234`).
    plain_out: Vec<u8>,
    /// Encoded replies not yet handed to TLS (or transmitted in plaintext).
    reply_out: Vec<u8>,
    wait: Wait,
    next_request: u64,
    next_data: u32,
    // FTP state
    user: Option<Vec<u8>>,
    logged_in: bool,
    host: Option<Vec<u8>>,
    client_certificate: Option<Vec<u8>>,
    pbsz: bool,
    data_private: bool,
    ascii: bool,
    cwd: Vec<u8>,
    rest: Option<u64>,
    rnfr: Option<Vec<u8>>,
    epsv_all: bool,
    mlst_selected: Vec<Vec<u8>>,
    failed_logins: u32,
    bad_commands: u32,
    setup: DataSetup,
    transfer: Option<Transfer>,
    /// A data connection whose transfer is over: flushed, then closed.
    closing_data: Vec<DataConnection>,
    quit_after_transfer: bool,
    /// The last bytes of a TYPE A upload (a final bare CR), lent once before its
    /// `UploadFinished`; emptied by the next drain call.
    upload_tail: Option<(RequestId, Vec<u8>)>,
    tail_lent: bool,
    io: VecDeque<IoRequest>,
    events: VecDeque<ServerEvent<'static>>,
    idle_deadline: Option<Instant>,
    data_deadline: Option<Instant>,
    /// `Some` once the session is ending: the error, `None` for QUIT.
    closing: Option<Option<ServerError>>,
    /// The control `Close` request went out.
    control_close_sent: bool,
    /// The control TLS channel failed: send nothing more through it (only a pending alert).
    abandon_tls: bool,
    closed_reported: bool,
}

fn code(value: u16) -> ReplyCode {
    ReplyCode::new(value).unwrap_or(ReplyCode::SYNTAX_ERROR)
}

fn is_http_request(item: &Result<Command, CommandError>) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE", b"PATCH",
    ];
    match item {
        Ok(Command::Unknown { verb, .. }) => {
            verb.last() == Some(&b':') || METHODS.iter().any(|m| verb.eq_ignore_ascii_case(m))
        }
        _ => false,
    }
}

fn quoted(path: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in path {
        out.push(b);
        if b == b'"' {
            out.push(b'"');
        }
    }
    out.push(b'"');
    out
}

fn parent_of(path: &[u8]) -> Vec<u8> {
    let trimmed = match path.iter().rposition(|&b| b != b'/') {
        Some(end) => &path[..=end],
        None => return b"/".to_vec(),
    };
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/".to_vec(),
        Some(slash) => trimmed[..slash].to_vec(),
    }
}

impl ServerSession {
    /// A session for a control connection the driver accepted from `peer` on `local`.
    pub fn new(config: SessionConfig, peer: SocketAddr, local: SocketAddr, now: Instant) -> Self {
        #[cfg(feature = "std")]
        let tls_config = config
            .tls
            .as_ref()
            .map(crate::tls::server_config_for_control);
        #[cfg(not(feature = "std"))]
        let tls_config = config.tls.clone();
        let data_tls_configs = tls_config.as_ref().map(|control| {
            if config.data_resumption == crate::tls::ResumptionPolicy::Off {
                crate::tls::server_configs_without_resumption(control)
            } else {
                crate::tls::server_configs_for_data(control)
            }
        });
        let parser = CommandParser::new(config.limits.command);
        let implicit = config.tls_mode == TlsMode::Implicit && tls_config.is_some();
        let mut session = Self {
            tls_config,
            data_tls_configs,
            peer,
            local,
            now,
            control_tls: None,
            clearing: false,
            cleared_tls: None,
            ccc_done: false,
            parser,
            queue: VecDeque::new(),
            plain_out: Vec::new(),
            reply_out: Vec::new(),
            wait: Wait::Nothing,
            next_request: 1,
            next_data: 1,
            user: None,
            logged_in: false,
            host: None,
            client_certificate: None,
            // Implicit FTPS clients may assume PBSZ 0 / PROT P (MS-FTPS, checklist §1.13).
            pbsz: implicit,
            data_private: implicit,
            ascii: true,
            cwd: b"/".to_vec(),
            rest: None,
            rnfr: None,
            epsv_all: false,
            mlst_selected: MLST_FACTS.iter().map(|f| f.to_vec()).collect(),
            failed_logins: 0,
            bad_commands: 0,
            setup: DataSetup::None,
            transfer: None,
            closing_data: Vec::new(),
            quit_after_transfer: false,
            upload_tail: None,
            tail_lent: false,
            io: VecDeque::new(),
            events: VecDeque::new(),
            idle_deadline: Some(now.saturating_add(config.timeouts.idle)),
            data_deadline: None,
            closing: None,
            control_close_sent: false,
            abandon_tls: false,
            closed_reported: false,
            config,
        };
        if implicit {
            if let Some(tls_config) = &session.tls_config {
                match TlsChannel::server(
                    Arc::clone(tls_config),
                    crate::tls::ResumptionPolicy::Optional,
                    session.config.limits.tls,
                ) {
                    Ok(tls) => session.control_tls = Some(tls),
                    Err(err) => {
                        session.close_session(Some(ServerError::Tls(err)));
                        return session;
                    }
                }
            }
        }
        let greeting = session.config.greeting.clone();
        session.reply(220, &greeting);
        session
    }

    // ------------------------------------------------------------------ getters

    /// True once the session is ending or ended (the `Closed` event may still be pending).
    pub fn is_closed(&self) -> bool {
        self.closing.is_some()
    }

    /// True while the control connection is protected by TLS.
    pub fn is_secure(&self) -> bool {
        self.control_tls
            .as_ref()
            .is_some_and(TlsChannel::is_handshake_complete)
    }

    /// True after a successful login.
    pub fn is_logged_in(&self) -> bool {
        self.logged_in
    }

    /// The working directory, as text.
    pub fn cwd(&self) -> &[u8] {
        &self.cwd
    }

    /// The control connection's peer.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.closing.is_some() {
            return None;
        }
        let delay = match self.wait {
            Wait::LoginDelay { until, .. } => Some(until),
            _ => None,
        };
        let idle = if self.transfer.is_none() && !matches!(self.wait, Wait::Answer { .. }) {
            self.idle_deadline
        } else {
            None
        };
        [idle, self.data_deadline, delay]
            .into_iter()
            .flatten()
            .min()
    }

    // ------------------------------------------------------------------ inputs

    /// Bytes received on `channel`. Returns how many were taken; feed the rest again after
    /// draining [`poll_output`](Self::poll_output).
    pub fn handle_receive(&mut self, channel: Channel, bytes: &[u8], now: Instant) -> usize {
        self.now = now;
        if self.closing.is_some() {
            return bytes.len();
        }
        match channel {
            Channel::Control => {
                self.idle_deadline = Some(now.saturating_add(self.config.timeouts.idle));
                let taken = if let Some(tls) = &mut self.control_tls {
                    match tls.feed(bytes) {
                        Ok(n) => n,
                        Err(err) => {
                            self.fail_control_tls(err);
                            return bytes.len();
                        }
                    }
                } else {
                    self.parser.push(bytes);
                    bytes.len()
                };
                self.pump_control();
                self.run();
                taken
            }
            Channel::Data(id) => self.receive_data(id, bytes),
        }
    }

    fn receive_data(&mut self, id: DataId, bytes: &[u8]) -> usize {
        if let Some(t) = self.transfer.as_mut().filter(|t| t.conn.id() == id) {
            let taken = t.conn.feed(bytes);
            if taken > 0 {
                self.touch_data();
            }
            return taken;
        }
        if let DataSetup::Passive {
            id: setup_id,
            accepted: true,
            early,
            ..
        } = &mut self.setup
        {
            if *setup_id == id {
                // A client may start its TLS hello before it sends the transfer command.
                let room = self
                    .config
                    .limits
                    .data_buffer
                    .max(crate::data::MIN_DATA_BUFFER)
                    .saturating_sub(early.len());
                let n = room.min(bytes.len());
                early.extend_from_slice(&bytes[..n]);
                return n;
            }
        }
        if let Some(conn) = self.closing_data.iter_mut().find(|c| c.id() == id) {
            conn.feed(bytes);
        }
        bytes.len()
    }

    /// End of stream on `channel`.
    pub fn handle_eof(&mut self, channel: Channel, now: Instant) {
        self.now = now;
        if self.closing.is_some() {
            return;
        }
        match channel {
            Channel::Control => {
                if let Some(tls) = &mut self.control_tls {
                    tls.feed_eof();
                }
                self.close_session(Some(ServerError::ConnectionLost));
            }
            Channel::Data(id) => {
                if let Some(t) = self.transfer.as_mut().filter(|t| t.conn.id() == id) {
                    t.conn.feed_eof();
                } else if let DataSetup::Passive {
                    id: setup_id, eof, ..
                } = &mut self.setup
                {
                    if *setup_id == id {
                        *eof = true;
                    }
                } else if let Some(conn) = self.closing_data.iter_mut().find(|c| c.id() == id) {
                    conn.feed_eof();
                }
            }
        }
    }

    /// A socket operation on `channel` failed (read, write, listen, accept, connect).
    pub fn handle_io_error(&mut self, channel: Channel, kind: IoErrorKind, now: Instant) {
        self.now = now;
        if self.closing.is_some() {
            return;
        }
        match channel {
            Channel::Control => self.close_session(Some(ServerError::Io(kind))),
            Channel::Data(id) => {
                if let Some(t) = self.transfer.as_mut().filter(|t| t.conn.id() == id) {
                    t.conn.on_io_error(kind);
                    return;
                }
                let listening = matches!(self.wait, Wait::Listen { data, .. } if data == id);
                if listening {
                    self.setup = DataSetup::None;
                    self.wait = Wait::Nothing;
                    self.reply(425, b"Cannot open a passive listener.");
                    self.run();
                } else if matches!(&self.setup, DataSetup::Passive { id: s, .. } if *s == id) {
                    self.setup = DataSetup::None;
                }
            }
        }
    }

    /// Passive mode: the driver's listener for `data` is bound to `addr`.
    pub fn handle_listening(&mut self, data: DataId, addr: SocketAddr, now: Instant) {
        self.now = now;
        let Wait::Listen {
            data: waiting,
            extended,
        } = self.wait
        else {
            return;
        };
        if waiting != data || self.closing.is_some() {
            return;
        }
        self.wait = Wait::Nothing;
        if let DataSetup::Passive { bound, .. } = &mut self.setup {
            *bound = true;
        }
        if extended {
            let text = epsv_reply_text(addr.port());
            self.reply(229, text.as_bytes());
        } else {
            let ip = match (self.config.pasv_address, addr.ip().to_canonical()) {
                (Some(advertised), _) => advertised,
                (None, IpAddr::V4(v4)) => v4,
                (None, IpAddr::V6(_)) => {
                    self.setup = DataSetup::None;
                    self.io.push_back(IoRequest::Close {
                        channel: Channel::Data(data),
                    });
                    self.reply(425, b"PASV needs an IPv4 listener; use EPSV.");
                    self.run();
                    return;
                }
            };
            let text = pasv_reply_text(core::net::SocketAddrV4::new(ip, addr.port()));
            self.reply(227, text.as_bytes());
        }
        self.run();
    }

    /// Passive mode: the listener for `data` accepted a connection from `peer`. Returns
    /// `false` when the connection is refused: the driver closes that socket and keeps the
    /// listener open (a connection from another host than the control peer is port theft).
    pub fn handle_accepted(&mut self, data: DataId, peer: SocketAddr, now: Instant) -> bool {
        self.now = now;
        if self.closing.is_some() {
            return false;
        }
        if !self.config.allow_foreign_data_peer && !is_same_host(peer.ip(), self.peer.ip()) {
            self.events.push_back(ServerEvent::DataPeerRefused { peer });
            return false;
        }
        if self.transfer.as_ref().is_some_and(|t| t.conn.id() == data) {
            return self.transfer_socket_up(data);
        }
        if let DataSetup::Passive {
            id, accepted: a, ..
        } = &mut self.setup
        {
            if *id == data && !*a {
                *a = true;
                return true;
            }
        }
        false
    }

    /// Active mode: the connection requested for `channel` is up.
    pub fn handle_connected(&mut self, channel: Channel, now: Instant) {
        self.now = now;
        let Channel::Data(id) = channel else {
            return;
        };
        self.transfer_socket_up(id);
    }

    /// The running transfer's data socket (accepted or connected) is up: start TLS or clear
    /// data on it. Returns `false` when it was already up (a second socket is not wanted).
    fn transfer_socket_up(&mut self, id: DataId) -> bool {
        let Some(t) = self.transfer.as_mut().filter(|t| t.conn.id() == id) else {
            return false;
        };
        if t.conn.is_connected() {
            return false;
        }
        t.conn.on_connected();
        Self::start_security(
            &mut t.conn,
            self.data_private,
            self.data_tls_configs.as_ref(),
            &self.config,
        );
        self.touch_data();
        true
    }

    /// The caller's clock reached a deadline from `Output::Wait`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.closing.is_some() {
            return;
        }
        if let Wait::LoginDelay { until, close } = self.wait {
            if until <= now {
                self.wait = Wait::Nothing;
                self.touch_idle();
                if close {
                    self.reply(421, b"Too many failed logins, closing.");
                    self.close_session(Some(ServerError::TooManyFailedLogins));
                    return;
                }
                self.reply(530, b"Login incorrect.");
                self.run();
            }
        }
        if self.closing.is_some() {
            return;
        }
        if self.data_deadline.is_some_and(|at| at <= now) {
            if let Some(t) = &mut self.transfer {
                let connected = t.conn.is_connected();
                t.conn.cancel();
                let reply: (u16, &[u8]) = if connected {
                    (426, b"Data connection timed out; transfer aborted.")
                } else {
                    (425, b"Data connection not opened in time.")
                };
                self.complete_transfer(Some(reply));
            }
            self.data_deadline = None;
            self.run();
        }
        if self.closing.is_some() {
            return;
        }
        let idle_counts = self.transfer.is_none() && !matches!(self.wait, Wait::Answer { .. });
        if idle_counts && self.idle_deadline.is_some_and(|at| at <= now) {
            self.reply(421, b"Idle timeout, closing control connection.");
            self.close_session(Some(ServerError::IdleTimeout));
        }
    }

    // ------------------------------------------------------------------ application

    fn take_answer(&mut self, id: RequestId) -> Result<Pending, UsageError> {
        if self.closing.is_some() {
            return Err(UsageError::Closed);
        }
        match &self.wait {
            Wait::Answer { id: waiting, .. } if *waiting == id => {}
            _ => return Err(UsageError::UnknownRequest),
        }
        self.touch_idle();
        match core::mem::replace(&mut self.wait, Wait::Nothing) {
            Wait::Answer { pending, .. } => Ok(pending),
            _ => Err(UsageError::UnknownRequest),
        }
    }

    /// Answers a [`Request::Login`]: `true` logs the user in (`230`), `false` is a failed
    /// login (`530` after the configured delay; `421` and close at the limit).
    pub fn answer_login(&mut self, id: RequestId, granted: bool) -> Result<(), UsageError> {
        match &self.wait {
            Wait::Answer {
                id: waiting,
                pending: Pending::Login,
            } if *waiting == id => {}
            Wait::Answer { id: waiting, .. } if *waiting == id => {
                return Err(UsageError::WrongAnswer("not a login request"));
            }
            _ => {
                return Err(if self.closing.is_some() {
                    UsageError::Closed
                } else {
                    UsageError::UnknownRequest
                });
            }
        }
        self.wait = Wait::Nothing;
        self.touch_idle();
        if granted {
            self.logged_in = true;
            self.failed_logins = 0;
            self.reply(230, b"Login successful.");
        } else {
            self.login_failed();
        }
        self.run();
        Ok(())
    }

    /// Answers any request but logins and listings. An `Err` is refused with a fixed text.
    pub fn answer(
        &mut self,
        id: RequestId,
        result: Result<Answer, FsError>,
    ) -> Result<(), UsageError> {
        let pending = match &self.wait {
            Wait::Answer {
                id: waiting,
                pending,
            } if *waiting == id => pending.clone(),
            _ => {
                return Err(if self.closing.is_some() {
                    UsageError::Closed
                } else {
                    UsageError::UnknownRequest
                });
            }
        };
        let wrong = |what| Err(UsageError::WrongAnswer(what));
        match (&pending, &result) {
            (Pending::Login, _) => return wrong("use answer_login"),
            (Pending::Commit, _) => return wrong("use finish_upload"),
            (
                Pending::Transfer(PendingTransfer {
                    kind: TransferKind::Listing(_),
                }),
                Ok(_),
            ) => {
                return wrong("use answer_listing");
            }
            (Pending::Size, Ok(answer)) if !matches!(answer, Answer::Size(_)) => {
                return wrong("SIZE needs Answer::Size");
            }
            (Pending::Mdtm, Ok(answer)) if !matches!(answer, Answer::Modified(_)) => {
                return wrong("MDTM needs Answer::Modified");
            }
            (Pending::Mlst { .. }, Ok(answer)) if !matches!(answer, Answer::Entry(_)) => {
                return wrong("MLST needs Answer::Entry");
            }
            _ => {}
        }
        let pending = self.take_answer(id)?;
        match result {
            Err(err) => self.reply_fs_error(&pending, err),
            Ok(answer) => self.complete_answer(id, pending, answer),
        }
        self.run();
        Ok(())
    }

    /// Answers a [`Request::List`] with the entries to send; the session formats them as
    /// `ls -l`, NLST or MLSD lines.
    pub fn answer_listing(
        &mut self,
        id: RequestId,
        result: Result<Vec<DirEntry>, FsError>,
    ) -> Result<(), UsageError> {
        let format = match &self.wait {
            Wait::Answer {
                id: waiting,
                pending:
                    Pending::Transfer(PendingTransfer {
                        kind: TransferKind::Listing(format),
                    }),
            } if *waiting == id => *format,
            Wait::Answer { id: waiting, .. } if *waiting == id => {
                return Err(UsageError::WrongAnswer("not a listing request"));
            }
            _ => {
                return Err(if self.closing.is_some() {
                    UsageError::Closed
                } else {
                    UsageError::UnknownRequest
                });
            }
        };
        let pending = self.take_answer(id)?;
        match result {
            Err(err) => self.reply_fs_error(&pending, err),
            Ok(entries) => {
                let bytes = self.format_listing(format, &entries);
                self.start_transfer(id, TransferKind::Listing(format), bytes, None);
            }
        }
        self.run();
        Ok(())
    }

    /// Writes download bytes (RETR); returns how many were taken. Fewer than given (or 0):
    /// wait for [`ServerEvent::Writable`].
    pub fn write_data(&mut self, id: RequestId, bytes: &[u8]) -> Result<usize, UsageError> {
        let t = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id)
            .ok_or(UsageError::UnknownRequest)?;
        if t.kind != TransferKind::Retrieve || t.source_done {
            return Err(UsageError::NotWritable);
        }
        let taken = if t.ascii {
            let cap = self
                .config
                .limits
                .data_buffer
                .max(crate::data::MIN_DATA_BUFFER);
            let room = cap.saturating_sub(t.staging.len());
            let n = encode_ascii(bytes, room, &mut t.staging);
            Self::flush_staging(t);
            n
        } else if t.staging.is_empty() {
            t.conn.write(bytes).unwrap_or(0)
        } else {
            0
        };
        if taken < bytes.len() {
            t.want_writable = true;
            t.conn_writable = false;
        }
        if taken > 0 {
            self.touch_data();
        }
        Ok(taken)
    }

    /// Ends a download (RETR): close_notify follows the last byte, and `226` follows the
    /// client's end of the data connection.
    pub fn finish_data(&mut self, id: RequestId) -> Result<(), UsageError> {
        let t = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id)
            .ok_or(UsageError::UnknownRequest)?;
        if t.kind != TransferKind::Retrieve {
            return Err(UsageError::NotWritable);
        }
        t.source_done = true;
        Self::flush_staging(t);
        Ok(())
    }

    /// Fails a running transfer from the application's side (read or write error): the data
    /// connection is closed and the client gets `451` (`552` for [`FsError::NoSpace`]).
    pub fn fail_transfer(&mut self, id: RequestId, error: FsError) -> Result<(), UsageError> {
        let t = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id)
            .ok_or(UsageError::UnknownRequest)?;
        t.conn.cancel();
        self.complete_transfer(Some(fs_error_reply(error, ErrorStage::Transfer)));
        self.run();
        Ok(())
    }

    /// Answers a complete upload ([`ServerEvent::UploadFinished`] with `complete: true`):
    /// `Ok` once the file is committed under its name (`226`), `Err` when committing failed
    /// (`552` for [`FsError::NoSpace`], `451` otherwise; the file must not be left visible).
    ///
    /// Until this call the upload's final reply is held back: commands the client pipelines
    /// meanwhile queue (under [`Limits::max_pending_commands`]), `ABOR`, `STAT` and `QUIT`
    /// included, and run after the final reply — the data transfer is already over, so `ABOR`
    /// gets `226 No transfer to abort.` and `QUIT` `221`. The idle timeout does not run while
    /// the application decides (as for every request). If the session closes first (the
    /// client hung up) this returns [`UsageError::Closed`]; the upload was complete, so the
    /// application may keep it.
    pub fn finish_upload(
        &mut self,
        id: RequestId,
        result: Result<(), FsError>,
    ) -> Result<(), UsageError> {
        match &self.wait {
            Wait::Answer {
                id: waiting,
                pending: Pending::Commit,
            } if *waiting == id => {}
            Wait::Answer { id: waiting, .. } if *waiting == id => {
                return Err(UsageError::WrongAnswer("not an upload awaiting its commit"));
            }
            _ => {
                return Err(if self.closing.is_some() {
                    UsageError::Closed
                } else {
                    UsageError::UnknownRequest
                });
            }
        }
        self.take_answer(id)?;
        match result {
            Ok(()) => self.reply(226, b"Transfer complete."),
            Err(err) => {
                let (value, text) = fs_error_reply(err, ErrorStage::Transfer);
                self.reply(value, text);
            }
        }
        self.after_final_reply();
        self.run();
        Ok(())
    }

    // ------------------------------------------------------------------ internals: replies

    fn reply(&mut self, value: u16, text: &[u8]) {
        let reply = Reply::new(code(value), text.to_vec());
        self.send_reply(&reply);
    }

    fn send_reply(&mut self, reply: &Reply) {
        if reply.encode(&mut self.reply_out).is_err() {
            // Only a name from the backend can hold CR/LF; never send it.
            let fallback = Reply::new(
                code(if reply.code.is_completion() {
                    550
                } else {
                    reply.code.get()
                }),
                b"Name cannot be represented.".to_vec(),
            );
            let _ = fallback.encode(&mut self.reply_out);
        }
    }

    fn reply_fs_error(&mut self, pending: &Pending, err: FsError) {
        let (value, text) = fs_error_reply(err, ErrorStage::Request(pending));
        self.reply(value, text);
    }

    /// Replies to and reports a policy or defence refusal.
    fn refuse(&mut self, reason: Refusal) {
        if let Some((value, text)) = reason.reply() {
            self.reply(value, text);
        }
        self.events.push_back(ServerEvent::Refused { reason });
    }

    fn complete_answer(&mut self, id: RequestId, pending: Pending, answer: Answer) {
        match pending {
            Pending::Login | Pending::Commit => {}
            Pending::Cwd { path } => {
                self.cwd = match answer {
                    Answer::Path(canonical) => canonical,
                    _ => path,
                };
                self.reply(250, b"Directory successfully changed.");
            }
            Pending::Mkdir { path } => {
                let name = match answer {
                    Answer::Path(created) => created,
                    _ => path,
                };
                let mut text = quoted(&name);
                text.extend_from_slice(b" created.");
                self.reply(257, &text);
            }
            Pending::Simple => self.reply(250, b"Requested file action okay, completed."),
            Pending::Size => {
                if let Answer::Size(size) = answer {
                    self.reply(213, format!("{size}").as_bytes());
                }
            }
            Pending::Mdtm => {
                if let Answer::Modified(time) = answer {
                    let mut text = Vec::new();
                    time.encode(&mut text);
                    self.reply(213, &text);
                }
            }
            Pending::Mlst { path } => {
                if let Answer::Entry(mut entry) = answer {
                    entry.name = path;
                    let mut line = vec![b' '];
                    match self.mlsx_entry(&entry).encode(&mut line) {
                        Ok(()) => {
                            let reply = Reply::multiline(
                                code(250),
                                vec![b"Listing:".to_vec(), line, b"End.".to_vec()],
                            );
                            self.send_reply(&reply);
                        }
                        Err(_) => self.reply(550, b"Name cannot be represented."),
                    }
                }
            }
            Pending::Transfer(PendingTransfer { kind }) => {
                let unique_name = match answer {
                    Answer::Path(name) => Some(name),
                    _ => None,
                };
                self.start_transfer(id, kind, Vec::new(), unique_name);
            }
        }
    }

    // ------------------------------------------------------------------ internals: commands

    fn request(&mut self, request: Request, pending: Pending) {
        let id = RequestId::new(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        self.wait = Wait::Answer { id, pending };
        self.events.push_back(ServerEvent::Request { id, request });
    }

    fn resolve(&self, arg: &[u8]) -> Vec<u8> {
        if arg.first() == Some(&b'/') {
            return arg.to_vec();
        }
        let mut path = self.cwd.clone();
        if path.last() != Some(&b'/') {
            path.push(b'/');
        }
        path.extend_from_slice(arg);
        path
    }

    /// Pulls commands from the parser and runs them while nothing is awaited.
    fn run(&mut self) {
        loop {
            if self.closing.is_some() {
                return;
            }
            while let Some(item) = self.parser.next_command() {
                if is_http_request(&item) {
                    // ALPACA: never answer a browser; close at once.
                    self.reply_out.clear();
                    self.close_session(Some(ServerError::HttpRequest));
                    return;
                }
                if self.transfer.is_some() {
                    // Read in band during a transfer (RFC 4217 §14).
                    match &item {
                        Ok(Command::Abor) => {
                            self.abort_running_transfer();
                            continue;
                        }
                        Ok(Command::Stat(None)) => {
                            self.reply(213, b"Transfer in progress.");
                            continue;
                        }
                        Ok(Command::Quit) => {
                            self.quit_after_transfer = true;
                            continue;
                        }
                        _ => {}
                    }
                }
                if self.queue.len() >= self.config.limits.max_pending_commands {
                    self.reply(421, b"Too many pending commands, closing.");
                    self.close_session(Some(ServerError::TooManyPendingCommands));
                    return;
                }
                self.queue.push_back(item);
            }
            if self.transfer.is_some() && !self.quit_after_transfer {
                // ABOR/QUIT/STAT that arrived before the 150 still act in band.
                let in_band = matches!(
                    self.queue.front(),
                    Some(Ok(Command::Abor | Command::Quit | Command::Stat(None)))
                );
                if in_band {
                    match self.queue.pop_front() {
                        Some(Ok(Command::Abor)) => self.abort_running_transfer(),
                        Some(Ok(Command::Quit)) => self.quit_after_transfer = true,
                        _ => self.reply(213, b"Transfer in progress."),
                    }
                    continue;
                }
            }
            if !matches!(self.wait, Wait::Nothing)
                || self.transfer.is_some()
                || self.clearing
                || self.quit_after_transfer
            {
                return;
            }
            let Some(item) = self.queue.pop_front() else {
                return;
            };
            self.dispatch(item);
        }
    }

    fn bad_command(&mut self) -> bool {
        self.bad_commands += 1;
        if self.bad_commands > self.config.limits.max_bad_commands {
            self.reply(421, b"Too many bad commands, closing.");
            self.close_session(Some(ServerError::TooManyBadCommands));
            return true;
        }
        false
    }

    fn control_secure(&self) -> bool {
        self.is_secure() || self.ccc_done
    }

    fn dispatch(&mut self, item: Result<Command, CommandError>) {
        let command = match item {
            Ok(command) => command,
            Err(err) => {
                if self.bad_command() {
                    return;
                }
                let text: &[u8] = match err {
                    CommandError::LineTooLong { .. } => b"Command line too long.",
                    CommandError::NoVerb => b"Syntax error.",
                    CommandError::UnsupportedParameter { .. } => {
                        b"Command not implemented for that parameter."
                    }
                    _ => b"Syntax error in parameters or arguments.",
                };
                self.reply(err.suggested_reply_code().get(), text);
                return;
            }
        };
        // REST and RNFR apply to the very next command only.
        let rest = self.rest.take();
        let rnfr = self.rnfr.take();

        let before_tls = matches!(
            command,
            Command::Feat
                | Command::Help(_)
                | Command::Quit
                | Command::Auth(_)
                | Command::Host(_)
                | Command::Syst
                | Command::Noop
                | Command::Opts(_)
                | Command::Pbsz(_)
                | Command::Prot(_)
                | Command::Ccc
                // The other RFC 2228 commands answer with their own codes (503/502), which
                // §8.2 lists for them; a login-policy 530 is not among those (checklist S01).
                | Command::Adat(_)
                | Command::Mic(_)
                | Command::Conf(_)
                | Command::Enc(_)
                | Command::Unknown { .. }
        );
        if self.config.require_tls && !self.control_secure() && !before_tls {
            self.refuse(Refusal::TlsRequired);
            return;
        }
        let without_login = before_tls
            || matches!(
                command,
                Command::User(_)
                    | Command::Pass(_)
                    | Command::Acct(_)
                    | Command::Stat(_)
                    | Command::Rein
                    | Command::Abor
                    | Command::Adat(_)
                    | Command::Mic(_)
                    | Command::Conf(_)
                    | Command::Enc(_)
            );
        if !self.logged_in && !without_login {
            self.reply(530, b"Please log in with USER and PASS.");
            return;
        }

        let is_appe = matches!(command, Command::Appe(_));
        match command {
            Command::User(name) => {
                if self.logged_in {
                    self.reply(503, b"Already logged in.");
                } else {
                    self.user = Some(name);
                    // Always 331: no user enumeration (RFC 2577 §7).
                    self.reply(331, b"Please specify the password.");
                }
            }
            Command::Pass(password) => self.pass(password),
            Command::Acct(_) => self.reply(202, b"ACCT not needed."),
            Command::Auth(mechanism) => self.auth(&mechanism),
            Command::Pbsz(_) => {
                if self.control_tls.is_none() {
                    self.reply(503, b"PBSZ needs TLS on the control connection.");
                } else {
                    self.pbsz = true;
                    self.reply(200, b"PBSZ=0");
                }
            }
            Command::Prot(level) => self.prot(level),
            Command::Ccc => self.ccc(),
            Command::Adat(_) => self.reply(503, b"No security exchange in progress."),
            Command::Mic(_) | Command::Conf(_) | Command::Enc(_) => {
                self.reply(502, b"Command not implemented.");
            }
            Command::Feat => self.feat(),
            Command::Opts(argument) => self.opts(&argument),
            Command::Syst => self.reply(215, b"UNIX Type: L8"),
            Command::Noop => self.reply(200, b"NOOP ok."),
            Command::Help(_) => self.reply(214, b"Help OK."),
            Command::Stat(None) => self.stat(),
            Command::Stat(Some(_)) => self.reply(502, b"STAT with a pathname not implemented."),
            Command::Rein => self.reply(502, b"REIN not implemented."),
            Command::Smnt(_) => self.reply(502, b"SMNT not implemented."),
            Command::Site(_) => self.reply(502, b"SITE not implemented."),
            Command::Host(name) => {
                if self.logged_in {
                    self.reply(503, b"HOST must come before login.");
                } else if name.contains(&b':') && name.first() != Some(&b'[') {
                    self.reply(501, b"HOST takes no port.");
                } else {
                    self.host = Some(name);
                    self.user = None;
                    self.reply(220, b"Host accepted.");
                }
            }
            Command::Quit => {
                self.reply(221, b"Goodbye.");
                self.close_session(None);
            }
            Command::Type(transfer_type) => match transfer_type {
                TransferType::Ascii(FormatControl::NonPrint) => {
                    self.ascii = true;
                    self.reply(200, b"Switching to ASCII mode.");
                }
                TransferType::Image | TransferType::Local(8) => {
                    self.ascii = false;
                    self.reply(200, b"Switching to Binary mode.");
                }
                _ => self.reply(504, b"Type not implemented."),
            },
            Command::Stru(FileStructure::File) => self.reply(200, b"Structure set to F."),
            Command::Stru(_) => self.reply(504, b"Only STRU F is supported."),
            Command::Mode(TransferMode::Stream) => self.reply(200, b"Mode set to S."),
            Command::Mode(_) => self.reply(504, b"Only MODE S is supported."),
            Command::Allo { .. } => self.reply(202, b"ALLO not needed."),
            Command::Pwd => {
                let mut text = quoted(&self.cwd);
                text.extend_from_slice(b" is the current directory.");
                self.reply(257, &text);
            }
            Command::Cwd(path) => {
                let path = self.resolve(&path);
                self.request(Request::Cwd { path: path.clone() }, Pending::Cwd { path });
            }
            Command::Cdup => {
                let path = parent_of(&self.cwd);
                self.request(Request::Cwd { path: path.clone() }, Pending::Cwd { path });
            }
            Command::Mkd(path) => {
                let path = self.resolve(&path);
                self.request(
                    Request::Mkdir { path: path.clone() },
                    Pending::Mkdir { path },
                );
            }
            Command::Rmd(path) => {
                let path = self.resolve(&path);
                self.request(Request::Rmdir { path }, Pending::Simple);
            }
            Command::Dele(path) => {
                let path = self.resolve(&path);
                self.request(Request::Delete { path }, Pending::Simple);
            }
            Command::Rnfr(path) => {
                self.rnfr = Some(self.resolve(&path));
                self.reply(350, b"Ready for RNTO.");
            }
            Command::Rnto(path) => match rnfr {
                Some(from) => {
                    let to = self.resolve(&path);
                    self.request(Request::Rename { from, to }, Pending::Simple);
                }
                None => self.reply(503, b"RNFR required first."),
            },
            Command::Size(path) => {
                if self.ascii {
                    self.reply(550, b"SIZE not available in ASCII mode.");
                } else {
                    let path = self.resolve(&path);
                    self.request(Request::Size { path }, Pending::Size);
                }
            }
            Command::Mdtm(path) => {
                let path = self.resolve(&path);
                self.request(Request::Mdtm { path }, Pending::Mdtm);
            }
            Command::Mlst(path) => {
                let path = path.map_or_else(|| self.cwd.clone(), |p| self.resolve(&p));
                self.request(Request::Mlst { path: path.clone() }, Pending::Mlst { path });
            }
            Command::Rest(offset) => {
                self.rest = Some(offset);
                self.reply(350, b"Restart position accepted.");
            }
            Command::Port(argument) => {
                let parsed = parse_port_argument(&argument).map(SocketAddr::V4);
                self.active(parsed, b"PORT command successful.");
            }
            Command::Eprt(argument) => {
                let parsed = parse_eprt_argument(&argument);
                self.active(parsed, b"EPRT command successful.");
            }
            Command::Pasv => {
                if self.epsv_all {
                    self.reply(503, b"EPSV ALL in effect.");
                } else if !self.local.ip().to_canonical().is_ipv4()
                    && self.config.pasv_address.is_none()
                {
                    self.reply(500, b"PASV is IPv4 only; use EPSV.");
                } else {
                    self.passive(false);
                }
            }
            Command::Epsv(argument) => match parse_epsv_argument(argument.as_deref()) {
                Ok(EpsvRequest::All) => {
                    self.epsv_all = true;
                    self.reply(200, b"EPSV ALL accepted.");
                }
                Ok(EpsvRequest::Protocol(protocol))
                    if protocol != NetworkProtocol::of(self.local.ip().to_canonical()) =>
                {
                    let supported = [NetworkProtocol::of(self.local.ip().to_canonical())];
                    let text = network_protocol_not_supported_text(&supported);
                    self.reply(522, text.as_bytes());
                }
                Ok(_) => self.passive(true),
                Err(err) => self.addr_error(err),
            },
            Command::Retr(path) => {
                let path = self.resolve(&path);
                let offset = rest.unwrap_or(0);
                self.transfer_request(Request::Retrieve { path, offset }, TransferKind::Retrieve);
            }
            Command::Stor(path) | Command::Appe(path) => {
                let append = rest.is_none() && is_appe;
                let path = self.resolve(&path);
                self.transfer_request(
                    Request::Store {
                        path,
                        offset: rest.unwrap_or(0),
                        append,
                        unique: false,
                    },
                    TransferKind::Store { unique: false },
                );
            }
            Command::Stou => {
                self.transfer_request(
                    Request::Store {
                        path: self.cwd.clone(),
                        offset: 0,
                        append: false,
                        unique: true,
                    },
                    TransferKind::Store { unique: true },
                );
            }
            Command::List(path) => self.listing_request(path, ListFormat::List),
            Command::Nlst(path) => self.listing_request(path, ListFormat::Nlst),
            Command::Mlsd(path) => self.listing_request(path, ListFormat::Mlsd),
            Command::Abor => {
                self.close_setup();
                self.reply(226, b"No transfer to abort.");
            }
            Command::Unknown { .. } => {
                if !self.bad_command() {
                    self.reply(500, b"Unknown command.");
                }
            }
        }
    }
}

impl ServerSession {
    // ------------------------------------------------------------------ internals: security

    fn pass(&mut self, password: Password) {
        if self.logged_in {
            self.reply(202, b"Already logged in.");
            return;
        }
        let Some(user) = self.user.take() else {
            self.reply(503, b"Login with USER first.");
            return;
        };
        if self.config.client_certificates == ClientCertificates::Required
            && self.client_certificate.is_none()
        {
            self.refuse(Refusal::ClientCertificateRequired);
            self.login_failed();
            return;
        }
        self.request(
            Request::Login {
                user,
                password,
                client_certificate: self.client_certificate.clone(),
                host: self.host.clone(),
            },
            Pending::Login,
        );
    }

    fn login_failed(&mut self) {
        self.failed_logins += 1;
        self.user = None;
        let close = self.failed_logins >= self.config.limits.max_failed_logins;
        // The delay is a deadline, not a clock read: the reply goes out at `handle_timeout`.
        self.wait = Wait::LoginDelay {
            until: self
                .now
                .saturating_add(self.config.timeouts.failed_login_delay),
            close,
        };
        if self.config.timeouts.failed_login_delay.is_zero() {
            let now = self.now;
            self.handle_timeout(now);
        }
    }

    /// Everything RFC 4217 §4 resets on AUTH (HOST is kept, RFC 7151 §3.2.2).
    fn reset_after_auth(&mut self) {
        self.user = None;
        self.logged_in = false;
        self.pbsz = false;
        self.data_private = false;
        self.ascii = true;
        self.cwd = b"/".to_vec();
        self.rest = None;
        self.rnfr = None;
        self.epsv_all = false;
        self.mlst_selected = MLST_FACTS.iter().map(|f| f.to_vec()).collect();
        self.close_setup();
    }

    fn pipelined_bytes(&self) -> usize {
        let queued = self.queue.len();
        let buffered = if self.parser.has_buffered_bytes() {
            self.parser.buffered_len().max(1)
        } else {
            0
        };
        queued + buffered
    }

    fn auth(&mut self, mechanism: &[u8]) {
        let Some(tls_config) = self.tls_config.clone() else {
            self.reply(502, b"AUTH not available.");
            return;
        };
        if self.control_tls.is_some() || self.ccc_done {
            self.reply(503, b"Already using TLS.");
            return;
        }
        let known = [&b"TLS"[..], b"TLS-C", b"SSL", b"TLS-P"]
            .iter()
            .any(|m| mechanism.eq_ignore_ascii_case(m));
        if !known {
            self.reply(504, b"Unknown AUTH mechanism.");
            return;
        }
        match TlsChannel::server_after_auth(
            tls_config,
            self.pipelined_bytes(),
            crate::tls::ResumptionPolicy::Optional,
            self.config.limits.tls,
        ) {
            Ok(tls) => {
                self.reply(234, b"AUTH TLS successful.");
                // The 234 goes out in plaintext, before anything TLS produces.
                let out = core::mem::take(&mut self.reply_out);
                self.plain_out.extend_from_slice(&out);
                self.control_tls = Some(tls);
                self.reset_after_auth();
            }
            Err(TlsError::BytesBeforeHandshake { .. }) => {
                // Never executed, never fed to TLS (checklist §9.1).
                self.queue.clear();
                self.reply(421, b"Data after AUTH refused, closing.");
                self.close_session(Some(ServerError::PipelinedAfterSecurityChange));
            }
            Err(err) => {
                self.reply(431, b"TLS not available now.");
                self.close_session(Some(ServerError::Tls(err)));
            }
        }
    }

    fn prot(&mut self, level: ProtectionLevel) {
        if self.control_tls.is_none() {
            self.reply(503, b"PROT needs TLS on the control connection.");
            return;
        }
        if !self.pbsz {
            self.reply(503, b"PBSZ required first.");
            return;
        }
        match level {
            ProtectionLevel::Private => {
                self.data_private = true;
                self.reply(200, b"Protection level set to P.");
            }
            ProtectionLevel::Clear if self.config.require_private_data => {
                self.refuse(Refusal::ClearDataRefused);
            }
            ProtectionLevel::Clear => {
                self.data_private = false;
                self.reply(200, b"Protection level set to C.");
            }
            ProtectionLevel::Safe | ProtectionLevel::Confidential => {
                self.reply(536, b"Only PROT C and P are supported.");
            }
        }
    }

    fn ccc(&mut self) {
        if !self.is_secure() {
            self.reply(533, b"CCC needs TLS on the control connection.");
            return;
        }
        if !self.config.allow_ccc || !self.logged_in {
            self.refuse(Refusal::CccRefused);
            return;
        }
        if self.pipelined_bytes() > 0 {
            self.queue.clear();
            self.reply(421, b"Data after CCC refused, closing.");
            self.close_session(Some(ServerError::PipelinedAfterSecurityChange));
            return;
        }
        self.reply(200, b"Control connection will be cleared.");
        let out = core::mem::take(&mut self.reply_out);
        if let Some(tls) = &mut self.control_tls {
            let mut written = 0;
            while written < out.len() {
                match tls.write(&out[written..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => written += n,
                }
            }
            let _ = tls.close();
        }
        self.clearing = true;
    }

    fn fail_control_tls(&mut self, err: TlsError) {
        // Handshake failure or a bad record: drop without a reply (RFC 4217 §10.1).
        self.reply_out.clear();
        self.abandon_tls = true;
        self.close_session(Some(ServerError::Tls(err)));
    }

    /// Runs the control TLS channel: handshake, decrypted commands, CCC shutdown.
    fn pump_control(&mut self) {
        let mut failure = None;
        let mut cleared = false;
        let mut peer_closed = false;
        if let Some(tls) = &mut self.control_tls {
            loop {
                match tls.poll() {
                    Ok(TlsEvent::HandshakeComplete) => {
                        if let Some(info) = tls.info() {
                            self.client_certificate = info.peer_certificates.first().cloned();
                            self.events
                                .push_back(ServerEvent::Secured { info: info.clone() });
                        }
                    }
                    Ok(TlsEvent::Data(bytes)) => {
                        if self.clearing {
                            // Commands after CCC must come in plaintext after close_notify.
                            failure = Some(ServerError::PipelinedAfterSecurityChange);
                            break;
                        }
                        self.parser.push(bytes);
                    }
                    Ok(TlsEvent::PeerClosed) => {
                        if !self.clearing {
                            peer_closed = true;
                        }
                    }
                    Ok(TlsEvent::Closed) => {
                        if self.clearing {
                            cleared = true;
                            break;
                        }
                    }
                    Ok(TlsEvent::Idle) => break,
                    // curl's default CCC mode shuts TLS down one way: it reads our
                    // close_notify and goes on in plaintext without sending its own. After
                    // the 200 the channel is clear by agreement, so plaintext at a record
                    // boundary is the next command, not an attack (T29 leniency, as ProFTPD).
                    Err(TlsError::PeerSkippedCloseNotify) if self.clearing => {
                        cleared = true;
                        break;
                    }
                    Err(err) => {
                        failure = Some(ServerError::Tls(err));
                        break;
                    }
                }
            }
        }
        if cleared {
            if let Some(mut tls) = self.control_tls.take() {
                match tls.take_plaintext() {
                    Ok(tail) => self.parser.push(&tail),
                    Err(err) => failure = Some(ServerError::Tls(err)),
                }
                self.cleared_tls = Some(tls);
            }
            self.clearing = false;
            self.ccc_done = true;
        }
        if let Some(err) = failure {
            match err {
                ServerError::Tls(err) => self.fail_control_tls(err),
                other => self.close_session(Some(other)),
            }
        } else if peer_closed {
            self.close_session(Some(ServerError::ConnectionLost));
        }
    }

    fn close_session(&mut self, error: Option<ServerError>) {
        if self.closing.is_some() {
            return;
        }
        if let Some(mut t) = self.transfer.take() {
            t.conn.cancel();
            self.push_transfer_finished(&t, false);
            self.closing_data.push(t.conn);
        }
        self.close_setup();
        self.queue.clear();
        self.wait = Wait::Nothing;
        self.closing = Some(error);
        self.data_deadline = None;
    }

    // ------------------------------------------------------------------ internals: info

    fn feat(&mut self) {
        let mut lines: Vec<Vec<u8>> = vec![b"Features:".to_vec()];
        let mut feature = |text: &[u8]| {
            let mut line = vec![b' '];
            line.extend_from_slice(text);
            lines.push(line);
        };
        if self.tls_config.is_some() {
            feature(b"AUTH TLS");
            feature(b"PBSZ");
            feature(b"PROT");
            if self.config.allow_ccc {
                feature(b"CCC");
            }
        }
        feature(b"EPRT");
        feature(b"EPSV");
        feature(b"MDTM");
        feature(b"SIZE");
        feature(b"REST STREAM");
        let mut mlst = b"MLST ".to_vec();
        for fact in MLST_FACTS {
            mlst.extend_from_slice(fact);
            if self
                .mlst_selected
                .iter()
                .any(|s| s.eq_ignore_ascii_case(fact))
            {
                mlst.push(b'*');
            }
            mlst.push(b';');
        }
        feature(&mlst);
        if self.config.tvfs {
            feature(b"TVFS");
        }
        feature(b"UTF8");
        feature(b"HOST");
        lines.push(b"End".to_vec());
        self.send_reply(&Reply::multiline(code(211), lines));
    }

    fn opts(&mut self, argument: &[u8]) {
        let (name, rest) = match argument.iter().position(|&b| b == b' ') {
            Some(sp) => (&argument[..sp], &argument[sp + 1..]),
            None => (argument, &[][..]),
        };
        if name.eq_ignore_ascii_case(b"UTF8") && rest.eq_ignore_ascii_case(b"ON") {
            self.reply(200, b"Always in UTF8 mode.");
        } else if name.eq_ignore_ascii_case(b"MLST") {
            match parse_opts_mlst_facts(rest) {
                Ok(facts) => {
                    // Unknown facts are dropped silently (RFC 3659 §7.9).
                    self.mlst_selected = MLST_FACTS
                        .iter()
                        .filter(|known| facts.iter().any(|f| f.eq_ignore_ascii_case(known)))
                        .map(|f| f.to_vec())
                        .collect();
                    let mut text = b"MLST OPTS ".to_vec();
                    for fact in &self.mlst_selected {
                        text.extend_from_slice(fact);
                        text.push(b';');
                    }
                    self.reply(200, &text);
                }
                Err(_) => self.reply(501, b"Invalid MLST fact list."),
            }
        } else {
            self.reply(501, b"Option not understood.");
        }
    }

    fn stat(&mut self) {
        let mut lines = vec![b"FTPS server status:".to_vec()];
        lines.push(if self.control_tls.is_some() {
            b" Control connection protected by TLS".to_vec()
        } else {
            b" Control connection in clear".to_vec()
        });
        lines.push(if self.logged_in {
            b" Logged in".to_vec()
        } else {
            b" Not logged in".to_vec()
        });
        lines.push(if self.data_private {
            b" Data protection: private".to_vec()
        } else {
            b" Data protection: clear".to_vec()
        });
        lines.push(if self.ascii {
            b" TYPE: ASCII".to_vec()
        } else {
            b" TYPE: BINARY".to_vec()
        });
        lines.push(b"End of status".to_vec());
        self.send_reply(&Reply::multiline(code(211), lines));
    }

    // ------------------------------------------------------------------ internals: data setup

    fn new_data_id(&mut self) -> DataId {
        let id = DataId::new(self.next_data);
        self.next_data = self.next_data.wrapping_add(1);
        id
    }

    /// Drops the current data setup, closing a passive listener or accepted socket.
    fn close_setup(&mut self) {
        if let DataSetup::Passive { id, .. } = core::mem::replace(&mut self.setup, DataSetup::None)
        {
            self.io.push_back(IoRequest::Close {
                channel: Channel::Data(id),
            });
        }
    }

    fn addr_error(&mut self, err: AddrError) {
        if err.server_reply_code() == 522 {
            self.reply(522, NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT.as_bytes());
        } else {
            self.reply(501, b"Syntax error in the address.");
        }
    }

    fn active(&mut self, parsed: Result<SocketAddr, AddrError>, ok_text: &[u8]) {
        if self.epsv_all {
            self.reply(503, b"EPSV ALL in effect.");
            return;
        }
        let addr = match parsed {
            Ok(addr) => addr,
            Err(err) => {
                self.addr_error(err);
                return;
            }
        };
        if !self.config.allow_foreign_data_peer && !is_same_host(addr.ip(), self.peer.ip()) {
            self.refuse(Refusal::ForeignDataAddress);
            return;
        }
        if addr.port() < 1024 {
            self.refuse(Refusal::PrivilegedDataPort);
            return;
        }
        self.close_setup();
        self.setup = DataSetup::Active { addr };
        self.reply(200, ok_text);
    }

    fn passive(&mut self, extended: bool) {
        self.close_setup();
        let id = self.new_data_id();
        self.setup = DataSetup::Passive {
            id,
            bound: false,
            accepted: false,
            early: Vec::new(),
            eof: false,
        };
        self.io.push_back(IoRequest::Listen {
            data: id,
            ip: self.local.ip(),
        });
        self.wait = Wait::Listen { data: id, extended };
    }

    // ------------------------------------------------------------------ internals: transfers

    fn transfer_checks(&mut self) -> bool {
        if self.config.require_private_data && !self.data_private {
            self.refuse(Refusal::PrivateDataRequired);
            return false;
        }
        let ready = match &self.setup {
            DataSetup::None => false,
            DataSetup::Passive { bound, .. } => *bound,
            DataSetup::Active { .. } => true,
        };
        if !ready {
            self.reply(425, b"Use PORT, EPRT, PASV or EPSV first.");
            return false;
        }
        true
    }

    fn transfer_request(&mut self, request: Request, kind: TransferKind) {
        if self.transfer_checks() {
            self.request(request, Pending::Transfer(PendingTransfer { kind }));
        }
    }

    fn listing_request(&mut self, path: Option<Vec<u8>>, format: ListFormat) {
        let path = path.map_or_else(|| self.cwd.clone(), |p| self.resolve(&p));
        self.transfer_request(
            Request::List { path, format },
            TransferKind::Listing(format),
        );
    }

    fn start_security(
        conn: &mut DataConnection,
        private: bool,
        tls_configs: Option<&DataServerConfigs>,
        config: &SessionConfig,
    ) {
        let tls_config = tls_configs.map(|configs| match conn.direction() {
            DataDirection::Receive => &configs.receiving,
            DataDirection::Send => &configs.sending,
        });
        match (private, tls_config) {
            (true, Some(tls_config)) => {
                // The FTP server is the TLS server whichever side connected (RFC 4217 §7).
                match TlsChannel::server(
                    Arc::clone(tls_config),
                    config.data_resumption,
                    config.limits.tls,
                ) {
                    Ok(tls) => conn.start_tls(tls),
                    Err(_) => conn.cancel(),
                }
            }
            (true, None) => conn.cancel(),
            (false, _) => conn.start_clear(),
        }
    }

    fn start_transfer(
        &mut self,
        id: RequestId,
        kind: TransferKind,
        staged: Vec<u8>,
        unique_name: Option<Vec<u8>>,
    ) {
        let direction = match kind {
            TransferKind::Store { .. } => DataDirection::Receive,
            _ => DataDirection::Send,
        };
        let buffer = self.config.limits.data_buffer;
        let mut conn;
        match core::mem::replace(&mut self.setup, DataSetup::None) {
            DataSetup::Passive {
                id: data,
                accepted,
                early,
                eof,
                ..
            } => {
                conn = DataConnection::new(data, direction, buffer);
                if accepted {
                    conn.on_connected();
                    conn.feed(&early);
                    if eof {
                        conn.feed_eof();
                    }
                    Self::start_security(
                        &mut conn,
                        self.data_private,
                        self.data_tls_configs.as_ref(),
                        &self.config,
                    );
                }
            }
            DataSetup::Active { addr } => {
                let data = self.new_data_id();
                conn = DataConnection::new(data, direction, buffer);
                self.io.push_back(IoRequest::Connect {
                    channel: Channel::Data(data),
                    addr,
                });
            }
            DataSetup::None => {
                self.reply(425, b"Use PORT, EPRT, PASV or EPSV first.");
                self.push_finished(id, kind, false, 0, false);
                return;
            }
        }
        let text: Vec<u8> = match (&kind, unique_name) {
            (TransferKind::Store { unique: true }, Some(name)) => {
                let mut text = b"FILE: ".to_vec();
                text.extend_from_slice(&name);
                text
            }
            (TransferKind::Listing(_), _) => b"Here comes the directory listing.".to_vec(),
            _ => b"Opening data connection.".to_vec(),
        };
        self.reply(150, &text);
        let ascii = self.ascii && !matches!(kind, TransferKind::Listing(_));
        let source_done = matches!(kind, TransferKind::Listing(_));
        let mut transfer = Transfer {
            id,
            kind,
            ascii,
            conn,
            staging: staged,
            source_done,
            finish_called: false,
            want_writable: kind == TransferKind::Retrieve,
            conn_writable: false,
            decoder: AsciiDecoder::default(),
            upload: Vec::new(),
            result: None,
        };
        Self::flush_staging(&mut transfer);
        self.transfer = Some(transfer);
        self.touch_data();
    }

    fn flush_staging(t: &mut Transfer) {
        while !t.staging.is_empty() {
            match t.conn.write(&t.staging) {
                Ok(n) if n > 0 => {
                    t.staging.drain(..n);
                }
                _ => break,
            }
        }
        if t.staging.is_empty() && t.source_done && !t.finish_called {
            t.finish_called = true;
            t.conn.finish();
        }
    }

    /// The idle clock restarts when the session becomes idle again (after a transfer, an
    /// answer, a login delay), not only on control input.
    fn touch_idle(&mut self) {
        self.idle_deadline = Some(self.now.saturating_add(self.config.timeouts.idle));
    }

    fn touch_data(&mut self) {
        self.data_deadline = Some(self.now.saturating_add(self.config.timeouts.data));
    }

    fn push_transfer_finished(&mut self, t: &Transfer, complete: bool) {
        let (bytes, resumed_tls) = match t.kind {
            TransferKind::Store { .. } => (t.conn.bytes_received(), t.conn.handshake_kind()),
            _ => (t.conn.bytes_sent(), t.conn.handshake_kind()),
        };
        let resumed_tls = resumed_tls.is_some_and(|kind| kind.is_resumed());
        self.push_finished(t.id, t.kind, complete, bytes, resumed_tls);
    }

    fn push_finished(
        &mut self,
        id: RequestId,
        kind: TransferKind,
        complete: bool,
        bytes: u64,
        resumed_tls: bool,
    ) {
        let event = if let TransferKind::Store { .. } = kind {
            ServerEvent::UploadFinished {
                id,
                complete,
                bytes,
                resumed_tls,
            }
        } else {
            ServerEvent::SendFinished {
                id,
                complete,
                bytes,
                resumed_tls,
            }
        };
        self.events.push_back(event);
    }

    /// Ends the running transfer with its data result (or `forced`, a reply the caller
    /// chose), closes its data connection, and sends the final reply.
    fn complete_transfer(&mut self, forced: Option<(u16, &[u8])>) {
        let Some(mut t) = self.transfer.take() else {
            return;
        };
        let result = t.result.clone().or_else(|| t.conn.result().cloned());
        let complete = forced.is_none() && matches!(result, Some(Ok(())));
        if complete && t.ascii && matches!(t.kind, TransferKind::Store { .. }) {
            let mut tail = Vec::new();
            t.decoder.finish(&mut tail);
            if !tail.is_empty() {
                self.upload_tail = Some((t.id, tail));
                self.tail_lent = false;
            }
        }
        self.push_transfer_finished(&t, complete);
        let connected = t.conn.is_connected();
        let (id, kind) = (t.id, t.kind);
        self.closing_data.push(t.conn);
        self.data_deadline = None;
        self.touch_idle();
        if complete && matches!(kind, TransferKind::Store { .. }) {
            // No 226 before the application committed the file (`finish_upload`): a failed
            // rename or a full disk must not have been announced as success.
            self.wait = Wait::Answer {
                id,
                pending: Pending::Commit,
            };
            return;
        }
        match (forced, result) {
            (Some((value, text)), _) => self.reply(value, text),
            (None, Some(Ok(()))) => self.reply(226, b"Transfer complete."),
            (None, Some(Err(err))) => {
                let (value, text): (u16, &[u8]) = match err {
                    DataError::Truncated => (
                        426,
                        b"Transfer aborted: data connection ended without TLS close_notify.",
                    ),
                    DataError::Tls(TlsError::ResumptionRequired) => {
                        self.refuse(Refusal::DataTlsNotResumed);
                        self.after_final_reply();
                        return;
                    }
                    DataError::Tls(_) => (522, b"TLS negotiation on the data connection failed."),
                    DataError::Io(_) if !connected => (425, b"Cannot open data connection."),
                    DataError::ForeignPeer => (425, b"Cannot open data connection."),
                    _ => (426, b"Connection closed; transfer aborted."),
                };
                self.reply(value, text);
            }
            (None, None) => self.reply(426, b"Transfer aborted."),
        }
        self.after_final_reply();
    }

    /// After a transfer's final reply: a `QUIT` received during the transfer takes effect.
    fn after_final_reply(&mut self) {
        if self.quit_after_transfer {
            self.reply(221, b"Goodbye.");
            self.close_session(None);
        }
    }

    fn abort_running_transfer(&mut self) {
        if let Some(t) = &mut self.transfer {
            t.conn.cancel();
            self.complete_transfer(Some((426, b"Transfer aborted.")));
            self.reply(226, b"ABOR successful.");
        }
    }

    fn format_listing(&self, format: ListFormat, entries: &[DirEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in entries {
            let start = out.len();
            let ok = match format {
                ListFormat::Nlst => {
                    if entry.name.iter().any(|&b| b == b'\r' || b == b'\n') || entry.name.is_empty()
                    {
                        false
                    } else {
                        out.extend_from_slice(&entry.name);
                        true
                    }
                }
                ListFormat::Mlsd => self.mlsx_entry(entry).encode(&mut out).is_ok(),
                ListFormat::List => list_entry(entry).encode(&mut out).is_ok(),
            };
            if ok {
                out.extend_from_slice(b"\r\n");
            } else {
                // A name that cannot be sent is left out (RFC 3659 §7.2).
                out.truncate(start);
            }
        }
        out
    }

    fn mlsx_entry(&self, entry: &DirEntry) -> MlsxEntry {
        let selected = |name: &[u8]| {
            self.mlst_selected
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
        };
        let mut facts = Vec::new();
        let mut fact = |name: &[u8], value: Vec<u8>| {
            if selected(name) {
                facts.push(Fact {
                    name: name.to_vec(),
                    value,
                });
            }
        };
        let kind: &[u8] = match entry.kind {
            DirEntryKind::File => b"file",
            DirEntryKind::Directory => b"dir",
            DirEntryKind::Symlink => b"OS.unix=symlink",
        };
        fact(b"type", kind.to_vec());
        if entry.kind != DirEntryKind::Directory {
            fact(b"size", format!("{}", entry.size).into_bytes());
        }
        if let Some(modified) = entry.modified {
            let mut value = Vec::new();
            modified.encode(&mut value);
            fact(b"modify", value);
        }
        let mut perm = Vec::new();
        entry.permissions.encode(&mut perm);
        fact(b"perm", perm);
        if let Some(unique) = &entry.unique {
            fact(b"unique", unique.clone());
        }
        if let Some(mode) = entry.mode {
            fact(b"UNIX.mode", format!("{:04o}", mode & 0o7777).into_bytes());
        }
        MlsxEntry {
            facts,
            name: entry.name.clone(),
        }
    }
}

/// The `ls -l` form of an entry.
fn list_entry(entry: &DirEntry) -> ListEntry {
    let (kind, default_mode) = match entry.kind {
        DirEntryKind::File => (ListEntryKind::File, 0o644),
        DirEntryKind::Directory => (ListEntryKind::Directory, 0o755),
        DirEntryKind::Symlink => (ListEntryKind::Symlink, 0o777),
    };
    let mode = entry.mode.unwrap_or(default_mode);
    let mut permissions = Vec::with_capacity(9);
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        permissions.push(if bits & 4 != 0 { b'r' } else { b'-' });
        permissions.push(if bits & 2 != 0 { b'w' } else { b'-' });
        permissions.push(if bits & 1 != 0 { b'x' } else { b'-' });
    }
    let time = entry.modified.map_or(
        ListTime::Dated {
            year: 1970,
            month: 1,
            day: 1,
        },
        |t| ListTime::Dated {
            year: t.year,
            month: t.month,
            day: t.day,
        },
    );
    ListEntry {
        kind,
        permissions,
        links: Some(1),
        owner: None,
        group: None,
        size: entry.size,
        device: None,
        time,
        name: entry.name.clone(),
        link_target: None,
    }
}
