//! The sans-IO FTPS server session.
//!
//! A [`ServerSession`] runs one control connection (already accepted by the driver) and its
//! data connections. The core decides protocol and policy; every login and file-system
//! decision goes to the application as a [`ServerEvent::Request`], answered with
//! [`answer_login`](ServerSession::answer_login) or [`answer`](ServerSession::answer); a
//! listing's entries follow with [`write_entry`](ServerSession::write_entry), one at a time as
//! the client reads them. The core never touches a file: paths are
//! bytes joined to a working directory the session tracks as text, and the backend resolves and
//! jails them.
//!
//! # Run loop
//! 1. Create the session when the driver accepted a control connection. Drain
//!    [`poll_output`](ServerSession::poll_output) until `Wait { deadline }`: the greeting (or,
//!    in implicit mode, nothing until the client's TLS hello) goes out.
//! 2. Forward reads with [`handle_receive`](ServerSession::handle_receive) (it returns how many
//!    bytes it took; feed the rest after draining; the inputs are those of every role, see
//!    [`Session`](crate::io::Session)), end of stream with
//!    [`handle_eof`](ServerSession::handle_eof), socket results with `handle_listening`,
//!    `handle_accepted`, `handle_connected`, `handle_io_error`, and expired deadlines with
//!    [`handle_timeout`](ServerSession::handle_timeout).
//! 3. Answer requests; for downloads write bytes after [`ServerEvent::Writable`] with
//!    [`write_data`](ServerSession::write_data) (listings: entries with
//!    [`write_entry`](ServerSession::write_entry)) and end with
//!    [`finish_data`](ServerSession::finish_data); uploads are announced by
//!    [`ServerEvent::Readable`], read with [`read_data`](ServerSession::read_data), and
//!    end with [`ServerEvent::UploadFinished`]; a complete one is committed by the application
//!    and answered with [`finish_upload`](ServerSession::finish_upload) before its final
//!    reply (`226` only for a file that is really stored).
//!
//! # Security behaviour (secure by default, see [`ServerSessionConfig`])
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
//!
//! # Files
//! - `mod.rs`: the [`ServerSession`] struct, its private state types, `new`, getters, helpers.
//! - `inputs.rs`: the driver's inputs (`handle_receive`, `handle_eof`, `handle_timeout`, …).
//! - `answers.rs`: the application's answers and transfer calls, and the file-system error replies.
//! - `dispatch.rs`: reply encoding, the command loop and per-command dispatch.
//! - `security.rs`: login, AUTH/PBSZ/PROT/CCC, the control TLS channel, closing the session.
//! - `info.rs`: FEAT, OPTS and STAT.
//! - `data_setup.rs`: PORT/EPRT and PASV/EPSV data connection setup.
//! - `transfers.rs`: running a transfer, from its checks to its final reply.
//! - `listing.rs`: LIST, NLST and MLSD/MLST formatting of directory entries.
//! - `drain.rs`: [`poll_output`](ServerSession::poll_output) and the data-connection pump.
//! - `event.rs`: the public events, requests, answers and errors.
//! - `config.rs`: [`ServerSessionConfig`] and its limits and timeouts.
//! - `ascii.rs`: TYPE A conversion.

mod answers;
mod ascii;
mod config;
mod data_setup;
mod dispatch;
mod drain;
mod event;
mod info;
mod inputs;
mod listing;
mod security;
mod transfers;

pub use crate::error::UsageError;
pub use config::{
    ClientCertificates, ServerLimits, ServerSessionConfig, ServerTimeouts, ServerTlsMode,
};
pub use event::{
    Answer, DirEntry, DirEntryKind, FsError, ListFormat, Refusal, Request, RequestId, ServerError,
    ServerEvent, Termination,
};

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::codec::command::{Command, CommandError, CommandParser};
use crate::codec::reply::ReplyCode;
use crate::data::{DataConnection, DataDirection, DataError};
use crate::io::{DataId, Instant, IoRequest};
use crate::tls::{ServerConfig, TlsChannel};
use ascii::AsciiDecoder;

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
        /// The client's connection, once accepted and before its transfer command: under
        /// PROT P its TLS handshake already runs (see
        /// [`DataConnection::awaiting_direction`]); in clear, what it sent is held.
        accepted: Option<Box<AcceptedEarly>>,
    },
    Active {
        addr: SocketAddr,
    },
}

/// A passive data connection accepted before its transfer command.
#[derive(Debug)]
struct AcceptedEarly {
    conn: DataConnection,
    /// Whether its TLS handshake started (the client's hello came under PROT P).
    private: bool,
}

/// The TLS configs for the data connections of one control connection, and which one a
/// connection gets (see [`crate::tls::UNASKED_DATA_CONNECTION_TICKETS`]).
///
/// A ticket on a download or listing is always safe: the client reads that connection to its
/// end. On an upload it is safe only for a client that reads its socket before it closes it;
/// one that does not (lftp, GnuTLS) has its kernel reset the connection over the unread
/// ticket and lose the unsent tail of the file. Uploads get a ticket when the client began
/// its TLS handshake before the transfer command (curl, which reads its socket while it waits
/// for the `150` and right before it closes, and which needs a new ticket for every data
/// connection) and has not shown that it re-presents tickets; clients that handshake after
/// the `150` (lftp, ftplib) get none they did not ask for (RFC 9149 requests, as this crate's
/// client makes, are always honoured).
#[derive(Debug, Clone)]
struct DataTlsConfigs {
    /// Downloads, listings, and uploads of a client that started early and spends tickets.
    with_ticket: Arc<ServerConfig>,
    /// The other uploads: no ticket the client did not ask for.
    upload_without_unasked_ticket: Arc<ServerConfig>,
    /// What the control connection's session store saw (`None` without `std`).
    #[cfg(feature = "std")]
    reuse: Option<Arc<crate::tls::TicketReuse>>,
}

impl DataTlsConfigs {
    /// The config for a data connection that carries payload in `direction` (a connection
    /// whose command is still unknown counts as an upload), for a client that starts its data
    /// TLS before the transfer command (`client_tls_first`, see `ServerSession`) or not.
    fn for_connection(
        &self,
        direction: DataDirection,
        client_tls_first: bool,
    ) -> &Arc<ServerConfig> {
        #[cfg(feature = "std")]
        let reusing = self.reuse.as_ref().is_some_and(|reuse| reuse.seen());
        #[cfg(not(feature = "std"))]
        let reusing = false;
        if direction == DataDirection::Receive && (reusing || !client_tls_first) {
            &self.upload_without_unasked_ticket
        } else {
            &self.with_ticket
        }
    }
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
    /// The `150` text, held while the data connection's handshake completes (one begun before
    /// the command, or any on a `tls_first` upload); sent when it does or fails (the data
    /// timeout bounds the wait).
    held_preliminary: Option<Vec<u8>>,
    /// The client starts its data TLS before the command (`ServerSession::client_tls_first`)
    /// and this transfer's connection is passive: its TLS gets the ticket config whenever the
    /// socket comes up.
    tls_first: bool,
    /// Upload bytes after TYPE A conversion, not yet read by the application.
    upload: Vec<u8>,
    /// TYPE A uploads: raw bytes taken from the connection for decoding (reused).
    raw: Vec<u8>,
    /// `Readable` was reported and the application has not emptied the buffers since.
    readable_announced: bool,
    result: Option<Result<(), DataError>>,
}

/// The FTPS server session. See the [module documentation](self).
#[derive(Debug)]
pub struct ServerSession {
    config: ServerSessionConfig,
    /// This control connection's TLS config (private session store).
    tls_config: Option<Arc<ServerConfig>>,
    /// Its data connections' configs: the same session store; which one a connection gets
    /// depends on its direction and the client's ticket habits.
    data_tls_config: Option<DataTlsConfigs>,
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
    /// The client began a data connection's TLS handshake before its transfer command at
    /// least once (curl does, on every data connection). Sticky for the session: which of a
    /// data connection's hello and its command reaches us first is a race between two
    /// sockets, and an OpenSSL client that misses its upload ticket once cannot resume on the
    /// next data connection (it spends each TLS 1.3 session once), so the next upload would
    /// be refused with `522`.
    client_tls_first: bool,
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
    /// The last bytes of a TYPE A upload (a final bare CR), announced as `Readable` before
    /// its `UploadFinished` and read with `read_data`.
    upload_tail: Option<(RequestId, Vec<u8>)>,
    /// Channels the driver cannot write now.
    blocked: crate::io::BlockedChannels,
    io: VecDeque<IoRequest>,
    events: VecDeque<ServerEvent>,
    idle_deadline: Option<Instant>,
    data_deadline: Option<Instant>,
    /// Until a login succeeds: when the login timeout closes the session.
    login_deadline: Option<Instant>,
    /// While the control TLS handshake runs: when the handshake timeout drops the connection.
    handshake_deadline: Option<Instant>,
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

crate::io::impl_session!(ServerSession, ServerEvent);

impl ServerSession {
    /// A session for a control connection the driver accepted from `peer` on `local`.
    pub fn new(
        config: ServerSessionConfig,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> Self {
        #[cfg(feature = "std")]
        let (tls_config, ticket_reuse) = match config.tls.as_ref() {
            Some(base) => {
                let (control, reuse) = crate::tls::server_config_for_control_tracked(base);
                (Some(control), Some(reuse))
            }
            None => (None, None),
        };
        #[cfg(not(feature = "std"))]
        let tls_config = config.tls.clone();
        let data_tls_config = tls_config.as_ref().map(|control| {
            if config.data_resumption == crate::tls::ResumptionPolicy::Off {
                let never = crate::tls::server_config_without_resumption(control);
                DataTlsConfigs {
                    with_ticket: Arc::clone(&never),
                    upload_without_unasked_ticket: never,
                    #[cfg(feature = "std")]
                    reuse: None,
                }
            } else {
                DataTlsConfigs {
                    with_ticket: crate::tls::server_config_for_data(control),
                    upload_without_unasked_ticket:
                        crate::tls::server_config_for_data_without_unasked_tickets(control),
                    #[cfg(feature = "std")]
                    reuse: ticket_reuse,
                }
            }
        });
        let parser = CommandParser::new(config.limits.command);
        let implicit = config.tls_mode == ServerTlsMode::Implicit && tls_config.is_some();
        let mut session = Self {
            tls_config,
            data_tls_config,
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
            // Implicit FTPS clients may assume PBSZ 0 / PROT P without sending them (MS-FTPS,
            // checklist §1.13), so data is private from the start; a client that does send
            // them follows the same sequencing as in explicit mode (PROT before PBSZ → 503).
            pbsz: false,
            data_private: implicit,
            client_tls_first: false,
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
            blocked: crate::io::BlockedChannels::default(),
            io: VecDeque::new(),
            events: VecDeque::new(),
            idle_deadline: Some(now.saturating_add(config.timeouts.idle)),
            data_deadline: None,
            login_deadline: Some(now.saturating_add(config.timeouts.login)),
            handshake_deadline: None,
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
                    Ok(tls) => {
                        session.control_tls = Some(tls);
                        session.handshake_deadline =
                            Some(now.saturating_add(session.config.timeouts.handshake));
                    }
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

    /// A session for a control connection the driver refuses (a session limit): in explicit
    /// mode the client reads `421` and the reason instead of the greeting, then the connection
    /// closes; in implicit mode it closes without a reply (a reply would need a TLS handshake,
    /// which a refused client is not worth). The session ends with
    /// [`ServerError::Terminated`].
    pub fn refused(
        mut config: ServerSessionConfig,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
        reason: Termination,
    ) -> Self {
        let implicit = config.tls_mode == ServerTlsMode::Implicit && config.tls.is_some();
        // No TLS state is built for a refused connection: it is never used.
        let tls = config.tls.take();
        let mut session = Self::new(config, peer, local, now);
        session.config.tls = tls;
        session.reply_out.clear();
        session.plain_out.clear();
        if !implicit {
            session.reply(421, reason.reply_text());
        }
        session.close_session(Some(ServerError::Terminated(reason)));
        session
    }

    /// Ends the session on the driver's behalf (a server shutting down): a running transfer
    /// is aborted, the client reads `421` and the reason, and the session closes (its
    /// `Closed` event carries [`ServerError::Terminated`]). Nothing happens on a session that
    /// is already ending.
    pub fn terminate(&mut self, reason: Termination, now: Instant) {
        self.now = self.now.advanced_to(now);
        if self.closing.is_some() {
            return;
        }
        if self
            .control_tls
            .as_ref()
            .is_some_and(|tls| !tls.is_handshake_complete())
        {
            // No reply can go out in the middle of a handshake.
            self.abandon_tls = true;
        } else {
            self.reply(421, reason.reply_text());
        }
        self.close_session(Some(ServerError::Terminated(reason)));
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
        let handshake = self.handshake_deadline.filter(|_| {
            self.control_tls
                .as_ref()
                .is_some_and(|t| !t.is_handshake_complete())
        });
        let login = self
            .login_deadline
            .filter(|_| !self.logged_in && !matches!(self.wait, Wait::Answer { .. }));
        [idle, self.data_deadline, delay, handshake, login]
            .into_iter()
            .flatten()
            .min()
    }

    // ------------------------------------------------------------------ shared helpers

    /// The idle clock restarts when the session becomes idle again (after a transfer, an
    /// answer, a login delay), not only on control input.
    fn touch_idle(&mut self) {
        self.idle_deadline = Some(self.now.saturating_add(self.config.timeouts.idle));
    }

    fn touch_data(&mut self) {
        self.data_deadline = Some(self.now.saturating_add(self.config.timeouts.data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_wraps_in_double_quotes() {
        assert_eq!(quoted(b"/home/user"), b"\"/home/user\"");
        assert_eq!(quoted(b""), b"\"\"");
    }

    #[test]
    fn quoted_doubles_embedded_quotes() {
        // RFC 959 Appendix II: a `"` in a 257 path is doubled.
        assert_eq!(quoted(b"/a\"b"), b"\"/a\"\"b\"");
        assert_eq!(quoted(b"\""), b"\"\"\"\"");
    }
}
