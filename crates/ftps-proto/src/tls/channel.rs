//! [`TlsChannel`]: one TLS connection (client or server role) over `rustls::unbuffered`.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus, WriteTraffic,
};
use rustls::{ClientConfig, CommonState, ProtocolVersion, ServerConfig};
use rustls_pki_types::ServerName;

use super::TlsError;
use super::buffers::{Incoming, Outgoing, Plaintext};
use super::info::{HandshakeKind, ResumptionPolicy, TlsInfo, TlsLimits, TlsVersion};

/// What [`TlsChannel::poll`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsEvent<'a> {
    /// The handshake completed; [`TlsChannel::info`] is now available. Reported once.
    HandshakeComplete,
    /// Decrypted application data (at most one TLS record), borrowed until the next call on the
    /// channel: consume or copy it now.
    Data(&'a [u8]),
    /// The peer's close_notify arrived: it will send no more data (a clean end of its
    /// direction). Reported once. We may still write until we [`close`](TlsChannel::close).
    PeerClosed,
    /// Both close_notify alerts were exchanged. Reported once; the channel is then done (for
    /// CCC, take the plaintext that followed with [`TlsChannel::take_plaintext`]).
    Closed,
    /// Nothing more until the caller feeds bytes or end of stream, writes, or closes.
    Idle,
}

/// Which side of the TLS handshake the channel plays. Independent of who opened the TCP
/// connection: the FTP client is always the TLS client (RFC 4217 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRole {
    /// TLS client (sends the ClientHello).
    Client,
    /// TLS server.
    Server,
}

enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

impl Conn {
    fn common(&self) -> &CommonState {
        match self {
            Self::Client(conn) => conn,
            Self::Server(conn) => conn,
        }
    }
}

/// What one rustls state turned into.
enum Step {
    /// Keep going: something was encoded or acknowledged.
    Continue,
    /// A record's plaintext was moved into the lending buffer.
    Data,
    /// rustls has a record ready but the previous one was not polled yet.
    PlaintextPending,
    PeerClosed,
    Closed,
    /// rustls needs more input (handshake) or is idle (nothing to write).
    NeedInput,
    Wrote(usize),
}

/// What a `drive` call ended with.
enum Outcome {
    /// Something the caller should see became pending (data, an event).
    Progress,
    /// Nothing more without new input from the caller.
    Idle,
    Wrote(usize),
}

/// Per-step inputs and outputs that live outside the rustls connection.
struct StepEnv<'a> {
    out: &'a mut Outgoing,
    plain: &'a mut Plaintext,
    write: Option<&'a [u8]>,
    close_requested: bool,
    sent_close_notify: &'a mut bool,
}

/// Steps per `drive` call before the adapter assumes rustls is looping. Every step encodes a
/// queued record or processes input, so real runs use a handful.
const MAX_STEPS: usize = 4096;

/// A fatal `handshake_failure` alert in a plaintext record. Used to refuse a non-resumed data
/// connection: at that point the server sent nothing yet, so no keys are in use.
const PLAINTEXT_HANDSHAKE_FAILURE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40];

/// Plaintext overhead budget reserved before encrypting, per 16 KiB record (TLS 1.2 AES-GCM
/// needs 29 bytes, TLS 1.3 22); rustls reports the exact size if it needs more.
const RECORD_OVERHEAD: usize = 64;

/// One TLS connection in either role, sans-IO: the caller feeds received bytes and end of
/// stream, polls for events, writes plaintext, and transmits the bytes the channel produces.
///
/// See the [module documentation](super) for the contract and an example.
pub struct TlsChannel {
    conn: Conn,
    limits: TlsLimits,
    resumption: ResumptionPolicy,
    incoming: Incoming,
    out: Outgoing,
    plain: Plaintext,
    info: Option<TlsInfo>,
    /// Sticky failure: never call rustls again (it would keep encrypting after an error).
    failed: Option<TlsError>,
    eof: bool,
    close_requested: bool,
    /// Ours, because rustls keeps encrypting after its own close_notify.
    sent_close_notify: bool,
    peer_closed: bool,
    closed: bool,
    finished: bool,
    handshake_event: bool,
    peer_closed_event: bool,
    closed_event: bool,
    resumption_verified: bool,
    /// Total bytes rustls discarded when the HelloRetryRequest flight started, if any.
    hrr_input_mark: Option<u64>,
    total_discarded: u64,
}

impl fmt::Debug for TlsChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsChannel")
            .field("role", &self.role())
            .field("handshake_kind", &self.handshake_kind())
            .field("info", &self.info)
            .field("incoming", &self.incoming.len())
            .field("pending_transmit", &self.out.pending_len())
            .field("failed", &self.failed)
            .field("eof", &self.eof)
            .field("sent_close_notify", &self.sent_close_notify)
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

impl TlsChannel {
    /// A TLS client channel that starts at once (implicit FTPS, or a data connection). The
    /// ClientHello is pending for transmission right away.
    ///
    /// `server_name` is checked against the server certificate and, when it is a DNS name, sent
    /// as SNI. Data connections must use their control connection's name and config so the
    /// session resumes. ALPN is whatever `config` says (`ftp` with
    /// [`client_config_for_control`](super::client_config_for_control)).
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        limits: TlsLimits,
    ) -> Result<Self, TlsError> {
        if config.enable_early_data {
            return Err(TlsError::EarlyDataEnabled);
        }
        let limits = limits.validate()?;
        let conn = UnbufferedClientConnection::new(config, server_name)?;
        let mut channel = Self::new(Conn::Client(conn), limits, ResumptionPolicy::Optional);
        // Produce the ClientHello now so the caller sees it pending without polling first.
        channel.kick();
        Ok(channel)
    }

    /// A TLS client channel for the explicit upgrade after a `234` reply to `AUTH TLS`.
    ///
    /// `buffered_after_reply` is the number of plaintext bytes the reply reader still holds
    /// after the 234 reply's last line. Anything but zero is an injection attempt (the server
    /// must wait for the ClientHello): [`TlsError::BytesBeforeHandshake`], and those bytes must
    /// be dropped unprocessed by the caller.
    pub fn client_after_auth(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        buffered_after_reply: usize,
        limits: TlsLimits,
    ) -> Result<Self, TlsError> {
        if buffered_after_reply != 0 {
            return Err(TlsError::BytesBeforeHandshake {
                count: buffered_after_reply,
            });
        }
        Self::client(config, server_name, limits)
    }

    /// A TLS server channel that starts at once (implicit FTPS, or a data connection).
    pub fn server(
        config: Arc<ServerConfig>,
        resumption: ResumptionPolicy,
        limits: TlsLimits,
    ) -> Result<Self, TlsError> {
        if config.max_early_data_size != 0 {
            return Err(TlsError::EarlyDataEnabled);
        }
        let limits = limits.validate()?;
        let conn = UnbufferedServerConnection::new(config)?;
        Ok(Self::new(Conn::Server(conn), limits, resumption))
    }

    /// A TLS server channel for the explicit upgrade after `AUTH TLS` (the caller sends `234`
    /// in plaintext first).
    ///
    /// `buffered_after_auth` is the number of plaintext bytes the command reader still holds
    /// after the `AUTH TLS` line. Anything but zero is an injection attempt (a client sends its
    /// ClientHello only after reading 234): [`TlsError::BytesBeforeHandshake`], and those bytes
    /// must be dropped unprocessed by the caller.
    pub fn server_after_auth(
        config: Arc<ServerConfig>,
        buffered_after_auth: usize,
        resumption: ResumptionPolicy,
        limits: TlsLimits,
    ) -> Result<Self, TlsError> {
        if buffered_after_auth != 0 {
            return Err(TlsError::BytesBeforeHandshake {
                count: buffered_after_auth,
            });
        }
        Self::server(config, resumption, limits)
    }

    fn new(conn: Conn, limits: TlsLimits, resumption: ResumptionPolicy) -> Self {
        Self {
            conn,
            limits,
            resumption,
            incoming: Incoming::default(),
            out: Outgoing::default(),
            plain: Plaintext::default(),
            info: None,
            failed: None,
            eof: false,
            close_requested: false,
            sent_close_notify: false,
            peer_closed: false,
            closed: false,
            finished: false,
            handshake_event: false,
            peer_closed_event: false,
            closed_event: false,
            resumption_verified: false,
            hrr_input_mark: None,
            total_discarded: 0,
        }
    }

    /// Runs rustls until it waits, so the first flight is pending. Errors stay sticky and are
    /// reported by the next call.
    fn kick(&mut self) {
        let _ = self.drive(None);
    }

    // ---------------------------------------------------------------- inputs

    /// Feeds bytes received from the transport. Returns how many were accepted: at most
    /// [`TlsLimits::max_incoming_tls`] bytes are held, so keep the rest and feed it after
    /// [`poll`](Self::poll) made room. Nothing is processed until `poll` (or `write`/`close`).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, TlsError> {
        self.plain.release_lent();
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.finished {
            return Err(TlsError::Finished);
        }
        if self.eof {
            return Err(TlsError::InputAfterEof);
        }
        Ok(self.incoming.append(bytes, self.limits.max_incoming_tls))
    }

    /// Reports that the transport delivered end of stream. Unless the peer's close_notify was
    /// (or, from already fed bytes, will be) received, `poll` then fails with
    /// [`TlsError::Truncated`].
    pub fn feed_eof(&mut self) {
        self.plain.release_lent();
        self.eof = true;
    }

    /// Encrypts application data. Returns how many bytes were accepted: `0` while the
    /// handshake is still running, while received data waits to be [`poll`](Self::poll)ed, or
    /// while [`TlsLimits::max_pending_output`] bytes already wait for transmission.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, TlsError> {
        self.plain.release_lent();
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.close_requested || self.finished {
            return Err(TlsError::WriteAfterClose);
        }
        let room = self
            .limits
            .max_pending_output
            .saturating_sub(self.out.pending_len());
        let accepted = data.len().min(room);
        if accepted == 0 {
            return Ok(0);
        }
        loop {
            match self.drive(Some(&data[..accepted]))? {
                Outcome::Wrote(n) => return Ok(n),
                Outcome::Progress => {}
                Outcome::Idle => return Ok(0),
            }
        }
    }

    /// Sends close_notify (now if the handshake is done, otherwise as soon as it is). Writing
    /// afterwards is a usage error. Idempotent.
    pub fn close(&mut self) -> Result<(), TlsError> {
        self.plain.release_lent();
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.close_requested || self.finished {
            return Ok(());
        }
        self.close_requested = true;
        while !self.sent_close_notify {
            match self.drive(None)? {
                Outcome::Progress | Outcome::Wrote(_) => {}
                Outcome::Idle => break,
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- outputs

    /// Processes what was fed and reports the next event. Call it until it returns
    /// [`TlsEvent::Idle`]. A failure is sticky: every later call returns it again.
    pub fn poll(&mut self) -> Result<TlsEvent<'_>, TlsError> {
        self.plain.release_lent();
        loop {
            if let Some(err) = &self.failed {
                return Err(err.clone());
            }
            if self.handshake_event {
                self.handshake_event = false;
                return Ok(TlsEvent::HandshakeComplete);
            }
            if !self.plain.is_empty() {
                return Ok(TlsEvent::Data(self.plain.lend()));
            }
            if self.peer_closed_event {
                self.peer_closed_event = false;
                return Ok(TlsEvent::PeerClosed);
            }
            if self.closed_event {
                self.closed_event = false;
                return Ok(TlsEvent::Closed);
            }
            if self.finished {
                return Ok(TlsEvent::Idle);
            }
            match self.drive(None)? {
                Outcome::Progress | Outcome::Wrote(_) => {}
                Outcome::Idle => {
                    // The handshake may complete in a step that ends waiting for input (a
                    // TLS 1.2 client receiving the server's Finished): report it now.
                    if self.handshake_event {
                        continue;
                    }
                    if self.eof && !self.peer_closed {
                        return Err(self.fail(TlsError::Truncated));
                    }
                    return Ok(TlsEvent::Idle);
                }
            }
        }
    }

    /// TLS bytes waiting to be sent to the peer. Send them in order, then call
    /// [`consume_transmit`](Self::consume_transmit) with the number sent.
    pub fn pending_transmit(&self) -> &[u8] {
        self.out.pending()
    }

    /// Marks the first `n` bytes of [`pending_transmit`](Self::pending_transmit) as sent.
    pub fn consume_transmit(&mut self, n: usize) -> Result<(), TlsError> {
        self.plain.release_lent();
        let pending = self.out.pending_len();
        if n > pending {
            return Err(TlsError::ConsumeBeyondPending {
                requested: n,
                pending,
            });
        }
        self.out.consume(n);
        Ok(())
    }

    /// Copies pending transmit bytes into `buf` and consumes them; returns how many.
    pub fn take_transmit(&mut self, buf: &mut [u8]) -> usize {
        self.plain.release_lent();
        let pending = self.out.pending();
        let n = pending.len().min(buf.len());
        buf[..n].copy_from_slice(&pending[..n]);
        self.out.consume(n);
        n
    }

    /// CCC: once both close_notify alerts were exchanged (after [`TlsEvent::Closed`]), returns
    /// the bytes that followed the peer's close_notify record — the first plaintext of the
    /// cleared channel, never seen by the TLS engine. The channel is then finished; any bytes
    /// still in [`pending_transmit`](Self::pending_transmit) (our close_notify) must still be
    /// sent.
    ///
    /// Also succeeds after [`TlsError::PeerSkippedCloseNotify`]: our close_notify was sent and
    /// the peer answered with bytes that cannot start a TLS record, at a record boundary. Those
    /// bytes are returned untouched. This is the one-way shutdown of curl's default CCC mode
    /// (`--ftp-ssl-ccc-mode passive`), which never sends its own close_notify; whether to
    /// accept it is the caller's decision.
    pub fn take_plaintext(&mut self) -> Result<Vec<u8>, TlsError> {
        self.plain.release_lent();
        if self.finished {
            return Err(TlsError::Finished);
        }
        if let Some(err) = &self.failed {
            if *err == TlsError::PeerSkippedCloseNotify && self.plain.is_empty() {
                self.finished = true;
                return Ok(self.incoming.take());
            }
            return Err(err.clone());
        }
        if !(self.is_closed() && self.plain.is_empty()) {
            return Err(TlsError::NotClosed);
        }
        self.finished = true;
        Ok(self.incoming.take())
    }

    // ---------------------------------------------------------------- getters

    /// The channel's TLS role.
    pub fn role(&self) -> TlsRole {
        match self.conn {
            Conn::Client(_) => TlsRole::Client,
            Conn::Server(_) => TlsRole::Server,
        }
    }

    /// Full or resumed, as soon as rustls knows it (for a server: right after the ClientHello
    /// was processed), before the handshake completes.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.conn
            .common()
            .handshake_kind()
            .map(HandshakeKind::from_rustls)
    }

    /// The negotiated parameters, once the handshake completed.
    pub fn info(&self) -> Option<&TlsInfo> {
        self.info.as_ref()
    }

    /// True once the handshake completed.
    pub fn is_handshake_complete(&self) -> bool {
        self.info.is_some()
    }

    /// Number of TLS 1.3 session tickets received so far (always 0 for a server channel).
    /// Tickets arrive after the handshake and are stored only while received bytes keep being
    /// fed and polled.
    pub fn tls13_tickets_received(&self) -> u32 {
        match &self.conn {
            Conn::Client(conn) => conn.tls13_tickets_received(),
            Conn::Server(_) => 0,
        }
    }

    /// True once the peer's close_notify was processed.
    pub fn peer_has_closed(&self) -> bool {
        self.peer_closed
    }

    /// True once our close_notify was queued for transmission.
    pub fn has_sent_close_notify(&self) -> bool {
        self.sent_close_notify
    }

    /// True once both close_notify alerts were exchanged.
    pub fn is_closed(&self) -> bool {
        self.peer_closed && self.sent_close_notify
    }

    /// The sticky failure, if the channel failed.
    pub fn error(&self) -> Option<&TlsError> {
        self.failed.as_ref()
    }

    /// Received bytes held and not yet consumed by the TLS engine (after the peer's
    /// close_notify: the plaintext tail so far).
    pub fn buffered_incoming(&self) -> usize {
        self.incoming.len()
    }

    // ---------------------------------------------------------------- engine

    /// Records `err` as the sticky failure (the first one wins) and returns it.
    fn fail(&mut self, err: TlsError) -> TlsError {
        self.failed.get_or_insert(err).clone()
    }

    /// A failure reported by rustls: it queued a fatal alert (usually); move it to the transmit
    /// buffer. Each `process_tls_records` call returns a queued record before it looks at the
    /// input again, and `wants_write` says whether one is queued, so no input is touched here.
    fn fail_from_engine(&mut self, err: TlsError) -> TlsError {
        let err = self.fail(err);
        for _ in 0..8 {
            if !self.conn.common().wants_write() {
                break;
            }
            let input = self.incoming.unprocessed_mut();
            let encoded = match &mut self.conn {
                Conn::Client(conn) => encode_queued(conn.process_tls_records(input), &mut self.out),
                Conn::Server(conn) => encode_queued(conn.process_tls_records(input), &mut self.out),
            };
            if !encoded {
                break;
            }
        }
        err
    }

    /// Runs rustls until something observable happens, it needs input, or `write` was
    /// encrypted.
    fn drive(&mut self, write: Option<&[u8]>) -> Result<Outcome, TlsError> {
        for _ in 0..MAX_STEPS {
            if let Some(err) = &self.failed {
                return Err(err.clone());
            }
            if self.sent_close_notify
                && !self.peer_closed
                && !could_start_tls_record(self.incoming.unprocessed())
            {
                // Guard: rustls (debug builds) panics on malformed input after our
                // close_notify. The front of the buffer is a record boundary here (no
                // handshake message can be half-received at this point; if one were, the
                // close_notify that must follow would be rejected anyway).
                return Err(self.fail(TlsError::PeerSkippedCloseNotify));
            }
            let pending_before = self.out.pending_len();
            let mut env = StepEnv {
                out: &mut self.out,
                plain: &mut self.plain,
                write,
                close_requested: self.close_requested,
                sent_close_notify: &mut self.sent_close_notify,
            };
            let input = self.incoming.unprocessed_mut();
            let (discard, step) = match &mut self.conn {
                Conn::Client(conn) => handle_status(conn.process_tls_records(input), &mut env),
                Conn::Server(conn) => handle_status(conn.process_tls_records(input), &mut env),
            };
            self.incoming.discard(discard);
            self.total_discarded += discard as u64;
            let step = match step {
                Ok(step) => step,
                Err(err) => return Err(self.fail_from_engine(err)),
            };
            self.check_resumption(pending_before)?;
            self.note_handshake_complete()?;
            match step {
                Step::Continue => {}
                Step::Data => return Ok(Outcome::Progress),
                Step::PlaintextPending => return Ok(Outcome::Idle),
                Step::PeerClosed => {
                    self.peer_closed = true;
                    self.peer_closed_event = true;
                    return Ok(Outcome::Progress);
                }
                Step::Closed => {
                    if self.closed {
                        return Ok(Outcome::Idle);
                    }
                    self.closed = true;
                    self.closed_event = true;
                    return Ok(Outcome::Progress);
                }
                Step::NeedInput => {
                    if !self.peer_closed && self.incoming.len() >= self.limits.max_incoming_tls {
                        return Err(self.fail(TlsError::IncomingTooLarge {
                            limit: self.limits.max_incoming_tls,
                        }));
                    }
                    return Ok(Outcome::Idle);
                }
                Step::Wrote(n) => return Ok(Outcome::Wrote(n)),
            }
        }
        Err(self.fail(TlsError::Internal("TLS engine made no progress")))
    }

    fn note_handshake_complete(&mut self) -> Result<(), TlsError> {
        if self.info.is_some() || self.conn.common().is_handshaking() {
            return Ok(());
        }
        match capture_info(self.conn.common()) {
            Ok(info) => {
                self.info = Some(info);
                self.handshake_event = true;
                Ok(())
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    /// Server with [`ResumptionPolicy::Required`]: decide as soon as rustls wants to send a
    /// flight after processing a ClientHello. `pending_before` is the transmit length before
    /// the step that may have added the flight's first record.
    fn check_resumption(&mut self, pending_before: usize) -> Result<(), TlsError> {
        if self.resumption != ResumptionPolicy::Required
            || self.resumption_verified
            || self.out.pending_len() == pending_before
        {
            return Ok(());
        }
        match self.handshake_kind() {
            Some(HandshakeKind::Resumed) => {
                self.resumption_verified = true;
                Ok(())
            }
            // A HelloRetryRequest carries no certificate and the retried ClientHello may still
            // resume: let the HRR flight out (it is produced without consuming more input) and
            // decide on the flight that answers the retried ClientHello.
            Some(HandshakeKind::FullWithHelloRetryRequest)
                if self
                    .hrr_input_mark
                    .is_none_or(|mark| mark == self.total_discarded) =>
            {
                self.hrr_input_mark = Some(self.total_discarded);
                Ok(())
            }
            _ => {
                self.out.truncate_pending(pending_before);
                self.out.push(&PLAINTEXT_HANDSHAKE_FAILURE_ALERT);
                Err(self.fail(TlsError::ResumptionRequired))
            }
        }
    }
}

/// Handles one rustls state completely (a dropped `EncodeTlsData` would lose its record), and
/// returns the bytes to discard from the front of the input with the outcome.
fn handle_status<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    env: &mut StepEnv<'_>,
) -> (usize, Result<Step, TlsError>) {
    let UnbufferedStatus { mut discard, state } = status;
    let state = match state {
        Ok(state) => state,
        Err(err) => return (discard, Err(TlsError::Rustls(err))),
    };
    let step = match state {
        ConnectionState::ReadTraffic(mut traffic) => {
            if env.plain.is_empty() {
                match traffic.next_record() {
                    Some(Ok(record)) => {
                        discard += record.discard;
                        env.plain.fill(record.payload);
                        Ok(Step::Data)
                    }
                    Some(Err(err)) => Err(TlsError::Rustls(err)),
                    None => Ok(Step::Continue),
                }
            } else {
                // rustls keeps the record until `next_record` (since 0.23.24).
                Ok(Step::PlaintextPending)
            }
        }
        ConnectionState::PeerClosed => Ok(Step::PeerClosed),
        ConnectionState::Closed => Ok(Step::Closed),
        ConnectionState::EncodeTlsData(mut encode) => {
            encode_growing(&mut encode, env.out).map(|()| Step::Continue)
        }
        ConnectionState::TransmitTlsData(transmit) => {
            // The encoded bytes now sit in our transmit buffer, which the caller drains; rustls
            // only needs to know they were taken.
            transmit.done();
            Ok(Step::Continue)
        }
        ConnectionState::BlockedHandshake => Ok(Step::NeedInput),
        ConnectionState::WriteTraffic(mut traffic) => {
            if env.close_requested && !*env.sent_close_notify {
                close_notify_growing(&mut traffic, env.out).map(|()| {
                    *env.sent_close_notify = true;
                    Step::Continue
                })
            } else if let Some(data) = env.write.take() {
                encrypt_growing(&mut traffic, data, env.out).map(|()| Step::Wrote(data.len()))
            } else {
                Ok(Step::NeedInput)
            }
        }
        ConnectionState::ReadEarlyData(_) => Err(TlsError::Internal(
            "0-RTT data offered although early data is disabled",
        )),
        _ => Err(TlsError::Internal("unknown rustls connection state")),
    };
    (discard, step)
}

/// Encodes one queued record, growing the transmit buffer as rustls asks, before the state is
/// dropped.
fn encode_growing<Data>(
    encode: &mut EncodeTlsData<'_, Data>,
    out: &mut Outgoing,
) -> Result<(), TlsError> {
    for _ in 0..2 {
        match encode.encode(out.spare()) {
            Ok(written) => {
                out.commit(written);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                out.reserve(required_size);
            }
            Err(EncodeError::AlreadyEncoded) => {
                return Err(TlsError::Internal("TLS record encoded twice"));
            }
        }
    }
    Err(TlsError::Internal(
        "TLS record did not fit the size rustls asked for",
    ))
}

fn encrypt_growing<Data>(
    traffic: &mut WriteTraffic<'_, Data>,
    data: &[u8],
    out: &mut Outgoing,
) -> Result<(), TlsError> {
    let estimate = data.len() + (data.len() / 16_384 + 1) * RECORD_OVERHEAD;
    emit_growing(out, estimate, |spare| traffic.encrypt(data, spare))
}

fn close_notify_growing<Data>(
    traffic: &mut WriteTraffic<'_, Data>,
    out: &mut Outgoing,
) -> Result<(), TlsError> {
    // On `InsufficientSize` the alert stays queued inside rustls; a retry with room emits it.
    emit_growing(out, RECORD_OVERHEAD, |spare| {
        traffic.queue_close_notify(spare)
    })
}

/// Runs an all-or-nothing rustls writer into the outgoing buffer, growing the buffer once to
/// the size rustls asks for if the first estimate was too small.
fn emit_growing(
    out: &mut Outgoing,
    estimate: usize,
    mut emit: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), TlsError> {
    out.reserve(estimate);
    for _ in 0..2 {
        match emit(out.spare()) {
            Ok(written) => {
                out.commit(written);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                out.reserve(required_size);
            }
            Err(EncryptError::EncryptExhausted) => return Err(TlsError::EncryptExhausted),
        }
    }
    Err(TlsError::Internal(
        "TLS output did not fit the size rustls asked for",
    ))
}

/// After a rustls failure: encodes the queued record if that is what rustls returned.
fn encode_queued<Data>(status: UnbufferedStatus<'_, '_, Data>, out: &mut Outgoing) -> bool {
    // The discard is irrelevant: the channel is dead and its input is never looked at again.
    match status.state {
        Ok(ConnectionState::EncodeTlsData(mut encode)) => encode_growing(&mut encode, out).is_ok(),
        _ => false,
    }
}

/// Could `bytes` be the start of a TLS record? Content types 20..=24 (change_cipher_spec,
/// alert, handshake, application_data, heartbeat) followed by major version 3. An empty or
/// one-byte prefix is judged on what is there.
fn could_start_tls_record(bytes: &[u8]) -> bool {
    match bytes {
        [] => true,
        [content_type] => (0x14..=0x18).contains(content_type),
        [content_type, major, ..] => (0x14..=0x18).contains(content_type) && *major == 0x03,
    }
}

fn capture_info(common: &CommonState) -> Result<TlsInfo, TlsError> {
    let kind = common
        .handshake_kind()
        .map(HandshakeKind::from_rustls)
        .ok_or(TlsError::Internal(
            "handshake complete without a handshake kind",
        ))?;
    let version = match common.protocol_version() {
        Some(ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
        Some(ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
        _ => {
            return Err(TlsError::Internal(
                "handshake complete with an unknown version",
            ));
        }
    };
    let suite = common
        .negotiated_cipher_suite()
        .ok_or(TlsError::Internal(
            "handshake complete without a cipher suite",
        ))?
        .suite();
    let cipher_suite_name = match suite.as_str() {
        Some(name) => String::from(name),
        None => format!("{suite:?}"),
    };
    Ok(TlsInfo {
        kind,
        version,
        cipher_suite: u16::from(suite),
        cipher_suite_name,
        alpn: common.alpn_protocol().map(<[u8]>::to_vec),
        peer_certificates: common
            .peer_certificates()
            .map(|chain| chain.iter().map(|cert| cert.as_ref().to_vec()).collect())
            .unwrap_or_default(),
    })
}
