//! The sans-IO FTPS client session.
//!
//! A [`ClientSession`] runs one control connection and its data connections. It follows the
//! crate's contract: the driver feeds what happened (`handle_*`, with the caller's time), the
//! application queues operations (verbs returning an [`OpId`]), and one drain,
//! [`ClientSession::poll_output`], hands out bytes to send, socket requests, events and the
//! next deadline.
//!
//! # Run loop
//! 1. The first output is `Io(Connect { channel: Control, .. })`: connect, then call
//!    [`handle_connected`](ClientSession::handle_connected) (or
//!    [`handle_io_error`](ClientSession::handle_io_error)).
//! 2. Forward every read with [`handle_receive`](ClientSession::handle_receive) (it returns how
//!    many bytes it took; feed the rest after draining) and every end of stream with
//!    [`handle_eof`](ClientSession::handle_eof).
//! 3. Drain [`poll_output`](ClientSession::poll_output) until `Wait { deadline }`; when the
//!    deadline passes without input call [`handle_timeout`](ClientSession::handle_timeout).
//!
//! # Security behaviour
//! - Explicit mode sends `AUTH TLS` whatever the greeting or FEAT said; only an exact `234`
//!   followed by a successful handshake counts. Any other answer, when TLS is required, sends
//!   `QUIT` and ends the session: no `USER` is ever sent in clear (CVE-2021-22946 class).
//! - Bytes already received after the `234` end the session (CVE-2021-22947 class).
//! - `FEAT` is asked after TLS only (the pre-TLS answer can be forged).
//! - After login under TLS, `PBSZ 0` and `PROT P` (or `PROT C` on request); a refusal of
//!   private data protection ends the session: data never flows in clear by accident.
//!   [`set_data_protection`](ClientSession::set_data_protection) switches the level later
//!   (`PBSZ 0`, then `PROT`): only its `200` to `PROT` changes how later data connections run,
//!   and a refusal leaves the level as it was.
//! - Passive data connections go to the control peer's IP, never to the address of a `227`
//!   (unless configured); active ones must come from it. The client is the TLS client on
//!   every data connection, with the control connection's config and server name, so the data
//!   connection resumes the control session. Its ClientHello waits for the transfer command's
//!   1yz, so a refused command spends no single-use TLS 1.3 ticket.
//! - With [`ClientSessionConfig::trace_control`], every control line sent and received is reported
//!   as [`ClientEvent::ControlLine`]; the argument of `PASS`/`ACCT` is replaced by `****`
//!   before the event exists.
//! - A transfer completes only when its data stream ended cleanly (close_notify under TLS) and
//!   its final 2yz arrived, in either order.

mod config;
mod drain;
mod event;
mod ops;
mod state;
mod verbs;

pub use crate::error::UsageError;
pub use config::{
    ClientLimits, ClientSessionConfig, ClientTimeouts, ClientTlsMode, DataConnectionMode,
    DataProtection,
};
pub use event::{
    ClientError, ClientEvent, Completion, ListingEntry, OpError, OpId, OpValue, ProtocolError,
    TimeoutKind, TraceDirection,
};

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::codec::addr::{
    encode_eprt_argument, encode_port_argument, is_same_host, parse_epsv_reply, parse_pasv_reply,
};
use crate::codec::command::{Command, Password, ProtectionLevel, TransferType, Verb};
use crate::codec::listing::{ListingLines, parse_list_line, parse_mlsx_entry};
use crate::codec::reply::{Reply, ReplyCode, ReplyParser};
use crate::data::{DataConnection, DataDirection, DataError, DataEvent};
use crate::io::{Channel, DataId, Instant, IoErrorKind, IoRequest};
use crate::tls::{ClientConfig, TlsChannel, TlsError, TlsEvent};
use ops::{Sent, Verdict};

/// Where the control connection is in its setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the TCP connection.
    Connecting,
    /// Waiting for the greeting (plaintext, or inside implicit TLS).
    Greeting,
    /// `AUTH TLS` sent.
    Auth,
    /// Control TLS handshake running (explicit upgrade).
    Handshaking,
    /// `FEAT` sent.
    Feat,
    /// Running operations.
    Ready,
    /// `CCC` accepted: our close_notify sent, waiting for the server's; then plaintext.
    Clearing,
    /// Ended: only flushing remains.
    Ended,
}

/// What kind of listing a transfer parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListingKind {
    Mlsd,
    List,
    Nlst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TransferStep {
    /// Nothing sent yet.
    Start,
    /// TYPE acknowledged (or not needed): open the data connection next.
    Setup,
    /// Active mode: waiting for the driver's listener address.
    AwaitListen,
    /// Data connection arranged: REST (if any) next.
    Rest,
    /// Send the transfer command next.
    Command,
    /// Transfer command sent: waiting for its replies and the data connection.
    Running,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AbortState {
    None,
    /// Abort requested before the transfer command was sent.
    Requested,
    /// ABOR sent while the transfer command's reply was outstanding.
    Sent,
}

#[derive(Debug)]
struct Transfer {
    command: Command,
    verb: Verb,
    direction: DataDirection,
    listing: Option<ListingKind>,
    rest: Option<u64>,
    transfer_type: Option<TransferType>,
    step: TransferStep,
    data: Option<DataId>,
    data_result: Option<Result<(), DataError>>,
    final_reply: Option<Reply>,
    failure: Option<OpError>,
    finish_requested: bool,
    lines: Option<ListingLines>,
    abort: AbortState,
    resumed: Option<bool>,
    /// Active mode: the driver's listener address.
    listen: Option<SocketAddr>,
    /// Set when the session aborts the transfer itself (data failure): the operation's error.
    abort_reason: Option<OpError>,
    /// The server answered the transfer command with a 1yz (or already with its final 2yz):
    /// it will use the data connection, so its TLS handshake may start.
    accepted: bool,
    /// `list_entries`: MLSD or LIST is picked from FEAT when the transfer starts.
    pick_listing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginStep {
    User,
    Pass,
    Acct,
    Pbsz,
    Prot,
    Utf8,
}

/// The commands of a `PROT` switch, in RFC 4217 order (`PBSZ` before `PROT`, §8, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProtectionStep {
    Pbsz,
    Prot,
}

#[derive(Debug)]
enum OpKind {
    Login {
        user: Vec<u8>,
        password: Password,
        account: Option<Vec<u8>>,
        /// The next command to send; `None` while one is in flight.
        step: Option<LoginStep>,
        reply: Option<Reply>,
    },
    Simple {
        command: Command,
        sent: bool,
    },
    Raw {
        command: Command,
        sent: bool,
    },
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
        sent: Option<Sent>,
    },
    Transfer(Box<Transfer>),
    Quit {
        sent: bool,
    },
    Ccc {
        sent: bool,
    },
    /// `PBSZ 0` then `PROT` at the application's request.
    Protection {
        level: DataProtection,
        /// The next command to send; `None` while one is in flight.
        step: Option<ProtectionStep>,
    },
}

#[derive(Debug)]
struct Op {
    id: OpId,
    kind: OpKind,
}

#[derive(Debug)]
struct DataSlot {
    op: OpId,
    conn: DataConnection,
    /// The operation is over: close the socket once the last bytes went out.
    closing: bool,
    /// `Readable` was reported and the application has not emptied the buffer since.
    readable_announced: bool,
}

/// The FTPS client session. See the [module documentation](self).
#[derive(Debug)]
pub struct ClientSession {
    config: ClientSessionConfig,
    /// This control connection's TLS config (private resumption store), used for every data
    /// connection too.
    tls_config: Arc<ClientConfig>,
    now: Instant,
    phase: Phase,
    control_tls: Option<TlsChannel>,
    parser: ReplyParser,
    /// Encoded commands not yet handed to TLS (or, in plaintext, not yet transmitted).
    command_out: Vec<u8>,
    awaiting: Option<Sent>,
    ops: VecDeque<Op>,
    next_op: u64,
    next_data: u32,
    data: Option<DataSlot>,
    io: VecDeque<IoRequest>,
    events: VecDeque<ClientEvent>,
    /// Channels the driver cannot write now.
    blocked: crate::io::BlockedChannels,
    local_addr: Option<SocketAddr>,
    features: Vec<Vec<u8>>,
    utf8: bool,
    epsv_refused: bool,
    eprt_refused: bool,
    current_type: Option<TransferType>,
    transfer_type: TransferType,
    connect_deadline: Option<Instant>,
    reply_deadline: Option<Instant>,
    data_deadline: Option<Instant>,
    /// `Some` once the session ended: the error, `None` for an orderly end.
    ended: Option<Option<ClientError>>,
    closed_reported: bool,
    control_closed: bool,
    logged_in: bool,
    /// Data connections use TLS (PROT P accepted, or implicit FTPS).
    data_private: bool,
    /// The level the login asks for: the configured one until a switch is accepted.
    login_protection: DataProtection,
    /// The 200 to CCC, reported once the TLS shutdown finished.
    ccc_reply: Option<Reply>,
    /// The control TLS channel after CCC, kept until our close_notify went out.
    cleared_tls: Option<TlsChannel>,
}

crate::io::impl_session!(ClientSession, ClientEvent);

impl ClientSession {
    /// A session that starts by asking its driver to connect the control connection to
    /// `config.peer`.
    pub fn new(config: ClientSessionConfig, now: Instant) -> Self {
        #[cfg(feature = "std")]
        let tls_config = crate::tls::client_config_for_control(&config.tls);
        #[cfg(not(feature = "std"))]
        let tls_config = Arc::clone(&config.tls);
        let parser = ReplyParser::new(config.limits.reply);
        let mut io = VecDeque::new();
        io.push_back(IoRequest::Connect {
            channel: Channel::Control,
            addr: config.peer,
        });
        let connect_deadline = Some(now.saturating_add(config.timeouts.connect));
        let extended = config.extended_data_commands;
        let login_protection = config.data_protection;
        Self {
            config,
            tls_config,
            now,
            phase: Phase::Connecting,
            control_tls: None,
            parser,
            command_out: Vec::new(),
            awaiting: None,
            ops: VecDeque::new(),
            next_op: 1,
            next_data: 1,
            data: None,
            io,
            events: VecDeque::new(),
            blocked: crate::io::BlockedChannels::default(),
            local_addr: None,
            features: Vec::new(),
            utf8: false,
            // Without the extended commands, start as if the server had refused them.
            epsv_refused: !extended,
            eprt_refused: !extended,
            current_type: None,
            transfer_type: TransferType::Image,
            connect_deadline,
            reply_deadline: None,
            data_deadline: None,
            ended: None,
            closed_reported: false,
            control_closed: false,
            logged_in: false,
            data_private: false,
            login_protection,
            ccc_reply: None,
            cleared_tls: None,
        }
    }

    // ------------------------------------------------------------------ getters

    /// True once the session ended (the `Closed` event may still be pending in the drain).
    pub fn is_closed(&self) -> bool {
        self.ended.is_some()
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

    /// The protection data connections started from now on get: [`DataProtection::Private`]
    /// once the server accepted `PROT P` (or implicit FTPS implies it), else
    /// [`DataProtection::Clear`].
    pub fn data_protection(&self) -> DataProtection {
        if self.data_private {
            DataProtection::Private
        } else {
            DataProtection::Clear
        }
    }

    /// The feature lines of the trusted `FEAT` reply.
    pub fn features(&self) -> &[Vec<u8>] {
        &self.features
    }

    /// The control connection's peer.
    pub fn peer_addr(&self) -> SocketAddr {
        self.config.peer
    }

    /// Number of operations queued or running.
    pub fn pending_ops(&self) -> usize {
        self.ops.len()
    }

    // ------------------------------------------------------------------ inputs

    /// A requested connection is up (`Io(Connect)`), with its local address: the control
    /// connection (the address is used for active mode) or a passive data connection.
    pub fn handle_connected(&mut self, channel: Channel, local: SocketAddr, now: Instant) {
        self.enter(now);
        if self.ended.is_some() {
            return;
        }
        match channel {
            Channel::Control => {
                if self.phase != Phase::Connecting {
                    return;
                }
                self.local_addr = Some(local);
                self.connect_deadline = None;
                self.phase = Phase::Greeting;
                self.awaiting = Some(Sent::Greeting);
                if self.config.tls_mode == ClientTlsMode::Implicit {
                    match TlsChannel::client(
                        Arc::clone(&self.tls_config),
                        self.config.server_name.clone(),
                        self.config.limits.tls,
                    ) {
                        Ok(tls) => self.control_tls = Some(tls),
                        Err(err) => return self.end(Some(ClientError::Tls(err))),
                    }
                    // The handshake and the greeting share the connect budget.
                    self.connect_deadline =
                        Some(self.now.saturating_add(self.config.timeouts.connect));
                } else {
                    self.arm_reply_timer();
                }
            }
            Channel::Data(id) => {
                let Some(slot) = self.data.as_mut().filter(|slot| slot.conn.id() == id) else {
                    return;
                };
                if slot.conn.is_connected() {
                    return;
                }
                slot.conn.on_connected();
                self.connect_deadline = None;
                self.touch_data();
                self.maybe_start_data();
            }
        }
    }

    /// Active mode: the driver's listener for `data` is bound to `addr`.
    pub fn handle_listening(&mut self, data: DataId, addr: SocketAddr, now: Instant) {
        self.enter(now);
        if self.ended.is_some() || self.data.as_ref().is_none_or(|slot| slot.conn.id() != data) {
            return;
        }
        let Some(Op {
            kind: OpKind::Transfer(transfer),
            ..
        }) = self.ops.front_mut()
        else {
            return;
        };
        if transfer.step != TransferStep::AwaitListen || self.awaiting.is_some() {
            return;
        }
        let mut argument = Vec::new();
        let command = match addr {
            SocketAddr::V4(v4) if self.eprt_refused => {
                encode_port_argument(v4, &mut argument);
                self.awaiting = Some(Sent::Port);
                Command::Port(argument)
            }
            _ => {
                encode_eprt_argument(addr, &mut argument);
                self.awaiting = Some(Sent::Eprt);
                Command::Eprt(argument)
            }
        };
        transfer.listen = Some(addr);
        self.send_raw_command(&command);
        self.arm_reply_timer();
    }

    /// Active mode: the listener for `data` accepted a connection from `peer`. A peer other
    /// than the control connection's host is refused (port theft): the transfer fails with
    /// [`crate::data::DataError::ForeignPeer`] and the session asks
    /// to close the channel (`Io(Close)`).
    pub fn handle_accepted(&mut self, data: DataId, peer: SocketAddr, now: Instant) {
        self.enter(now);
        if self.ended.is_some() {
            return;
        }
        let control_ip = self.config.peer.ip();
        let Some(slot) = self.data.as_mut().filter(|slot| slot.conn.id() == data) else {
            return;
        };
        if slot.conn.is_connected() {
            return;
        }
        if !is_same_host(peer.ip(), control_ip) {
            slot.conn.refuse_peer();
            self.io.push_back(IoRequest::Close {
                channel: Channel::Data(data),
            });
            return;
        }
        slot.conn.on_connected();
        self.touch_data();
        self.maybe_start_data();
    }

    /// Bytes received on `channel`. Returns how many were taken; keep the rest, stop reading
    /// that socket, and feed the rest again after draining [`poll_output`](Self::poll_output)
    /// (the session's buffers are bounded: this is its back-pressure). Bytes for a channel
    /// the session no longer has, or after it ended, are taken and dropped.
    pub fn handle_receive(&mut self, channel: Channel, bytes: &[u8], now: Instant) -> usize {
        self.enter(now);
        if self.ended.is_some() {
            return bytes.len();
        }
        match channel {
            Channel::Control => self.receive_control(bytes),
            Channel::Data(id) => {
                let Some(slot) = self.data.as_mut().filter(|slot| slot.conn.id() == id) else {
                    return bytes.len();
                };
                let taken = slot.conn.feed(bytes);
                if taken > 0 {
                    self.touch_data();
                }
                taken
            }
        }
    }

    /// The driver cannot write `channel` now (its socket buffer is full) and holds bytes for
    /// it: the drain hands out no more bytes for that channel until
    /// [`handle_transmit_ready`](Self::handle_transmit_ready), and the other channels keep
    /// flowing.
    pub fn handle_transmit_blocked(&mut self, channel: Channel, now: Instant) {
        self.enter(now);
        self.blocked.set(channel, true);
    }

    /// The driver wrote what it held for `channel` and can take more.
    pub fn handle_transmit_ready(&mut self, channel: Channel, now: Instant) {
        self.enter(now);
        self.blocked.set(channel, false);
    }

    /// End of stream on `channel`.
    pub fn handle_eof(&mut self, channel: Channel, now: Instant) {
        self.enter(now);
        if self.ended.is_some() {
            return;
        }
        match channel {
            Channel::Control => {
                if let Some(tls) = &mut self.control_tls {
                    tls.feed_eof();
                    self.pump_control_tls();
                }
                if self.ended.is_none() {
                    self.end(Some(ClientError::ConnectionLost));
                }
            }
            Channel::Data(id) => {
                if let Some(slot) = self.data.as_mut().filter(|slot| slot.conn.id() == id) {
                    slot.conn.feed_eof();
                }
            }
        }
    }

    /// A socket operation on `channel` failed (connect, read, write, listen, accept).
    pub fn handle_io_error(&mut self, channel: Channel, kind: IoErrorKind, now: Instant) {
        self.enter(now);
        if self.ended.is_some() {
            return;
        }
        match channel {
            Channel::Control => {
                self.control_closed = true;
                self.end(Some(ClientError::Io(kind)));
            }
            Channel::Data(id) => {
                if let Some(slot) = self.data.as_mut().filter(|slot| slot.conn.id() == id) {
                    slot.conn.on_io_error(kind);
                    slot.closing = true;
                }
            }
        }
    }

    /// Writing a `Transmit` for `channel` failed. The control connection ends as with
    /// [`handle_io_error`](Self::handle_io_error); a download's data connection keeps its
    /// receive side, because everything the server sent may still be waiting to be read (see
    /// [`DataConnection::on_send_failed`]).
    ///
    /// [`DataConnection::on_send_failed`]: crate::data::DataConnection::on_send_failed
    pub fn handle_transmit_failed(&mut self, channel: Channel, kind: IoErrorKind, now: Instant) {
        self.enter(now);
        if let Channel::Data(id) = channel {
            let ended = self.ended.is_some();
            if let Some(slot) = self.data.as_mut().filter(|slot| slot.conn.id() == id) {
                if !ended {
                    slot.conn.on_send_failed(kind);
                    if slot.conn.result().is_some_and(Result::is_err) {
                        slot.closing = true;
                    }
                }
                return;
            }
        }
        self.handle_io_error(channel, kind, now);
    }

    /// The caller's clock reached a deadline from `Output::Wait`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.enter(now);
        if self.ended.is_some() {
            return;
        }
        let expired = |deadline: Option<Instant>| deadline.is_some_and(|at| at <= now);
        if expired(self.connect_deadline) {
            self.end(Some(ClientError::TimedOut(TimeoutKind::Connect)));
        } else if expired(self.reply_deadline) {
            self.end(Some(ClientError::TimedOut(TimeoutKind::Reply)));
        } else if expired(self.data_deadline) {
            self.end(Some(ClientError::TimedOut(TimeoutKind::DataIdle)));
        }
    }
}
