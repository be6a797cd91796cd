//! One data connection as a sub-state machine, shared by the client and server sessions.
//!
//! A [`DataConnection`] knows nothing about FTP commands: it carries bytes in one
//! [`DataDirection`] over a socket that either side may have opened (TCP direction is the
//! session's business), optionally inside TLS in either role (the FTP client is always the TLS
//! client, RFC 4217 §7 — the session builds the [`TlsChannel`] and hands it over with
//! [`DataConnection::start_tls`], so this module is role independent).
//!
//! Life cycle: awaiting socket → connected → started (TLS handshake, or clear at once) →
//! open → finished(result). The result is decided here, by direction:
//! - **Receive**: success only when the stream ended cleanly — the peer's close_notify under
//!   TLS, end of stream in clear. End of stream without close_notify is
//!   [`DataError::Truncated`] (RFC 8446 §6.1, checklist §9.4), never success. We answer the
//!   peer's close_notify with ours.
//! - **Send**: success once the local side [`finish`](DataConnection::finish)ed, every byte,
//!   close_notify included, was handed out for transmission (followed by a write shutdown
//!   request), and — under TLS — the peer ended its side (close_notify or end of stream). The
//!   connection keeps reading until then, because TLS 1.3 tickets arrive there; a peer that
//!   ends its side before we finished is [`DataError::ClosedEarly`].
//!
//! Whether the *transfer* succeeded also needs the control reply; the session joins both.
//!
//! Received plaintext is copied once into a bounded buffer and read out of it by the session's
//! application ([`DataConnection::read`]); the connection completes only once it was all read.

use alloc::vec::Vec;

use crate::io::{DataId, IoErrorKind};
use crate::tls::{HandshakeKind, TlsChannel, TlsError, TlsEvent, TlsInfo};

/// Which way the payload of a data connection flows, seen from this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataDirection {
    /// We receive the payload (client: RETR, LIST, NLST, MLSD; server: STOR, APPE, STOU).
    Receive,
    /// We send the payload (client: STOR, APPE, STOU; server: RETR, listings).
    Send,
}

/// Why a data connection failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The stream ended without the peer's close_notify: the data may be truncated.
    #[error("data connection ended without close_notify (truncated)")]
    Truncated,
    /// The TLS layer failed (handshake, certificate, bad record).
    #[error("data connection TLS: {0}")]
    Tls(TlsError),
    /// The socket failed.
    #[error("data connection I/O: {0}")]
    Io(IoErrorKind),
    /// The peer ended its side of an upload before we finished sending.
    #[error("the peer closed the data connection before the upload was finished")]
    ClosedEarly,
    /// The peer sent payload on a connection on which it was to receive (bytes sent before
    /// the transfer command that then turned out to be a download).
    #[error("the peer sent data on a connection on which it was to receive")]
    UnexpectedPayload,
    /// The data connection came from an address other than the control connection's peer.
    #[error("data connection from a foreign address (port theft refused)")]
    ForeignPeer,
    /// The connection was closed locally (abort, or the session ended).
    #[error("data connection closed locally")]
    Cancelled,
}

/// Non-data things that happened on a data connection, reported once each.
#[derive(Debug, Clone, PartialEq)]
pub enum DataEvent {
    /// The TLS handshake completed (never reported in clear).
    Secured(TlsInfo),
    /// Payload may be written now (send direction; reported when the connection opens and
    /// again after a write was refused for lack of room and room came back).
    Writable,
    /// The connection reached its result.
    Finished(Result<(), DataError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the socket (connect or accept).
    AwaitSocket,
    /// Socket up, security not started yet.
    Connected,
    /// Carrying payload (possibly still handshaking).
    Open,
    /// Result decided; only flushing remains.
    Done,
}

/// One data connection. See the [module documentation](self).
#[derive(Debug)]
pub struct DataConnection {
    id: DataId,
    direction: DataDirection,
    stage: Stage,
    /// `None` in clear (PROT C) or before TLS started.
    tls: Option<TlsChannel>,
    clear: bool,
    /// Bytes received before security started (a server receives the ClientHello early).
    early: Vec<u8>,
    /// Received plaintext waiting to be read.
    inbound: Vec<u8>,
    /// Clear-mode payload waiting for transmission.
    clear_out: Vec<u8>,
    max_buffer: usize,
    transport_eof: bool,
    peer_finished: bool,
    finish_requested: bool,
    shutdown_requested: bool,
    shutdown_taken: bool,
    write_blocked: bool,
    /// Writing to the socket failed on a connection that only receives payload: what we
    /// would still send (close_notify) is dropped, the receive side decides the result.
    send_failed: Option<IoErrorKind>,
    /// Opened before its direction was known ([`DataConnection::awaiting_direction`]): the
    /// handshake runs, received payload is held, and nothing is decided until
    /// [`set_direction`](DataConnection::set_direction).
    awaiting_direction: bool,
    /// The peer sent at least one byte.
    peer_spoke: bool,
    events: Vec<DataEvent>,
    result: Option<Result<(), DataError>>,
    bytes_received: u64,
    bytes_sent: u64,
    handshake: Option<HandshakeKind>,
}

/// The smallest buffer a data connection accepts: one TLS record of plaintext.
pub const MIN_DATA_BUFFER: usize = 16 * 1024;

impl DataConnection {
    /// A data connection whose socket is not up yet. `max_buffer` bounds received plaintext
    /// held for the application and clear-mode bytes waiting for transmission (at least
    /// [`MIN_DATA_BUFFER`] is used).
    pub fn new(id: DataId, direction: DataDirection, max_buffer: usize) -> Self {
        Self {
            id,
            direction,
            stage: Stage::AwaitSocket,
            tls: None,
            clear: false,
            early: Vec::new(),
            inbound: Vec::new(),
            clear_out: Vec::new(),
            max_buffer: max_buffer.max(MIN_DATA_BUFFER),
            transport_eof: false,
            peer_finished: false,
            finish_requested: false,
            shutdown_requested: false,
            shutdown_taken: false,
            write_blocked: false,
            send_failed: None,
            awaiting_direction: false,
            peer_spoke: false,
            events: Vec::new(),
            result: None,
            bytes_received: 0,
            bytes_sent: 0,
            handshake: None,
        }
    }

    /// A data connection whose direction is not known yet: a server that accepted the
    /// client's connection before the transfer command runs the TLS handshake at once (the
    /// client sent its hello), so the handshake overlaps the command's round trip and a TLS
    /// 1.3 ticket reaches the client before it starts sending. Received payload is held and
    /// nothing is decided until [`set_direction`](Self::set_direction).
    pub fn awaiting_direction(id: DataId, max_buffer: usize) -> Self {
        let mut conn = Self::new(id, DataDirection::Receive, max_buffer);
        conn.awaiting_direction = true;
        conn
    }

    /// Fixes the direction of a connection made with
    /// [`awaiting_direction`](Self::awaiting_direction) (no effect on any other): what
    /// happened meanwhile is judged now. A download's connection fails if the peer already
    /// sent payload ([`DataError::UnexpectedPayload`]) or ended its side
    /// ([`DataError::ClosedEarly`]), or could not be written to.
    pub fn set_direction(&mut self, direction: DataDirection) {
        if !self.awaiting_direction {
            return;
        }
        self.awaiting_direction = false;
        self.direction = direction;
        match direction {
            DataDirection::Send => {
                if !self.inbound.is_empty() {
                    self.inbound.clear();
                    self.fail(DataError::UnexpectedPayload);
                } else if let Some(kind) = self.send_failed {
                    self.fail(DataError::Io(kind));
                } else if self.peer_finished {
                    self.fail(DataError::ClosedEarly);
                } else if self
                    .tls
                    .as_ref()
                    .is_some_and(TlsChannel::is_handshake_complete)
                {
                    self.events.push(DataEvent::Writable);
                }
            }
            DataDirection::Receive => {
                if self.peer_finished && self.result.is_none() {
                    self.answer_peer_close();
                }
            }
        }
    }

    /// The connection's id.
    pub fn id(&self) -> DataId {
        self.id
    }

    /// The payload direction.
    pub fn direction(&self) -> DataDirection {
        self.direction
    }

    /// True once the socket is connected or accepted.
    pub fn is_connected(&self) -> bool {
        self.stage != Stage::AwaitSocket
    }

    /// True once security was started (TLS or clear).
    pub fn is_started(&self) -> bool {
        matches!(self.stage, Stage::Open | Stage::Done) || self.tls.is_some() || self.clear
    }

    /// True while a TLS handshake the peer began (it sent its first bytes) is under way:
    /// neither complete nor failed.
    pub fn is_handshaking(&self) -> bool {
        self.result.is_none()
            && self.peer_spoke
            && self
                .tls
                .as_ref()
                .is_some_and(|tls| !tls.is_handshake_complete())
    }

    /// True once the TLS handshake is complete (false in clear and before TLS starts).
    pub fn is_secured(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(TlsChannel::is_handshake_complete)
    }

    /// The result, once decided.
    pub fn result(&self) -> Option<&Result<(), DataError>> {
        self.result.as_ref()
    }

    /// Payload bytes received (plaintext).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Payload bytes accepted for sending (plaintext).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Full or resumed TLS handshake, once known; `None` in clear.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.handshake
            .or_else(|| self.tls.as_ref().and_then(TlsChannel::handshake_kind))
    }

    /// The socket is up (connected or accepted).
    pub fn on_connected(&mut self) {
        if self.stage == Stage::AwaitSocket {
            self.stage = Stage::Connected;
        }
    }

    /// Starts TLS with `channel` (client or server role: the caller decides). Bytes received
    /// before are fed to it.
    pub fn start_tls(&mut self, channel: TlsChannel) {
        if self.is_started() || self.result.is_some() {
            return;
        }
        let mut channel = channel;
        if !self.early.is_empty() {
            let early = core::mem::take(&mut self.early);
            // `early` is bounded by `max_buffer`, which is below the TLS incoming limit only
            // when configured so; a shortfall is a peer flooding before the handshake.
            match channel.feed(&early) {
                Ok(n) if n == early.len() => {}
                Ok(_) => {
                    self.fail(DataError::Tls(TlsError::IncomingTooLarge {
                        limit: early.len(),
                    }));
                    return;
                }
                Err(err) => {
                    self.fail(DataError::Tls(err));
                    return;
                }
            }
        }
        if self.transport_eof {
            channel.feed_eof();
        }
        self.tls = Some(channel);
        self.stage = Stage::Open;
        if self.finish_requested {
            self.close_tls();
        }
    }

    /// Starts the connection in clear (PROT C): payload flows as is.
    pub fn start_clear(&mut self) {
        if self.is_started() || self.result.is_some() {
            return;
        }
        self.clear = true;
        self.stage = Stage::Open;
        let early = core::mem::take(&mut self.early);
        self.inbound.extend_from_slice(&early);
        self.bytes_received += early.len() as u64;
        if self.direction == DataDirection::Send {
            self.events.push(DataEvent::Writable);
        }
    }

    /// Feeds bytes received on the socket; returns how many were accepted (the rest must be
    /// fed again after the session drained its output).
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        self.peer_spoke |= !bytes.is_empty();
        if self.result.is_some() && self.tls.is_none() {
            // Finished in clear: nothing more is meaningful; swallow it.
            return bytes.len();
        }
        if let Some(tls) = &mut self.tls {
            if tls.error().is_some() || tls.peer_has_closed() {
                return bytes.len();
            }
            return match tls.feed(bytes) {
                Ok(n) => n,
                Err(err) => {
                    self.fail(DataError::Tls(err));
                    bytes.len()
                }
            };
        }
        if self.clear {
            if self.direction == DataDirection::Send {
                // Nothing is expected from the peer on an upload in clear.
                return bytes.len();
            }
            let room = self.max_buffer.saturating_sub(self.inbound.len());
            let n = room.min(bytes.len());
            self.inbound.extend_from_slice(&bytes[..n]);
            self.bytes_received += n as u64;
            return n;
        }
        let room = self.max_buffer.saturating_sub(self.early.len());
        let n = room.min(bytes.len());
        self.early.extend_from_slice(&bytes[..n]);
        n
    }

    /// The socket delivered end of stream.
    pub fn feed_eof(&mut self) {
        if self.transport_eof {
            return;
        }
        self.transport_eof = true;
        if let Some(tls) = &mut self.tls {
            if tls.error().is_none() {
                tls.feed_eof();
            }
        }
    }

    /// The socket failed.
    pub fn on_io_error(&mut self, kind: IoErrorKind) {
        self.fail(DataError::Io(kind));
    }

    /// Writing to the socket failed (the peer reset the connection).
    ///
    /// On a connection that receives the payload, once it carries payload, that is not a
    /// failure by itself: after the handshake we only send a TLS 1.3 ticket and, at the end,
    /// our close_notify, and a peer that closes its socket without reading them makes its
    /// kernel answer with a reset — after its payload and close_notify arrived, and the
    /// receiving kernel keeps those for us to read. So the rest of our output is dropped and
    /// the receive side decides as always: success only with the peer's close_notify (or end
    /// of stream in clear), [`DataError::Truncated`] otherwise. Everything else fails now.
    pub fn on_send_failed(&mut self, kind: IoErrorKind) {
        let receiving_payload = self.direction == DataDirection::Receive
            && self.stage != Stage::AwaitSocket
            && (self.clear
                || self
                    .tls
                    .as_ref()
                    .is_some_and(TlsChannel::is_handshake_complete));
        if receiving_payload || self.result.is_some() {
            self.send_failed = Some(kind);
            self.drop_transmit();
        } else {
            self.on_io_error(kind);
        }
    }

    /// Forgets bytes waiting for transmission (their socket can no longer take them).
    fn drop_transmit(&mut self) {
        match &mut self.tls {
            Some(tls) => {
                let pending = tls.pending_transmit().len();
                // Consuming what is pending cannot fail for a length we just read.
                let _ = tls.consume_transmit(pending);
            }
            None => self.clear_out.clear(),
        }
    }

    /// Ends the connection locally before its result (abort, session end).
    pub fn cancel(&mut self) {
        self.fail(DataError::Cancelled);
    }

    /// Refuses the connection because its peer is not who it must be.
    pub fn refuse_peer(&mut self) {
        self.fail(DataError::ForeignPeer);
    }

    /// Writes payload (send direction); returns how many bytes were accepted. `0` means no
    /// room (or handshake still running): wait for [`DataEvent::Writable`].
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, DataError> {
        if let Some(Err(err)) = &self.result {
            return Err(err.clone());
        }
        if self.finish_requested || self.result.is_some() {
            return Ok(0);
        }
        let accepted = if let Some(tls) = &mut self.tls {
            if !tls.is_handshake_complete() {
                0
            } else {
                match tls.write(bytes) {
                    Ok(n) => n,
                    Err(err) => {
                        let err = DataError::Tls(err);
                        self.fail(err.clone());
                        return Err(err);
                    }
                }
            }
        } else if self.clear {
            let room = self.max_buffer.saturating_sub(self.clear_out.len());
            let n = room.min(bytes.len());
            self.clear_out.extend_from_slice(&bytes[..n]);
            n
        } else {
            0
        };
        if accepted < bytes.len() {
            self.write_blocked = true;
        }
        self.bytes_sent += accepted as u64;
        Ok(accepted)
    }

    /// Ends our direction: close_notify under TLS (after the handshake, which an empty upload
    /// still completes), then a write shutdown once everything was transmitted.
    pub fn finish(&mut self) {
        if self.finish_requested {
            return;
        }
        self.finish_requested = true;
        if self.tls.is_some() {
            self.close_tls();
        } else if self.clear {
            self.shutdown_requested = true;
        }
    }

    fn close_tls(&mut self) {
        if let Some(tls) = &mut self.tls {
            if tls.error().is_none() {
                if let Err(err) = tls.close() {
                    self.fail(DataError::Tls(err));
                    return;
                }
            }
        }
        self.shutdown_requested = true;
    }

    fn fail(&mut self, err: DataError) {
        if self.result.is_none() {
            self.result = Some(Err(err.clone()));
            self.events.push(DataEvent::Finished(Err(err)));
        }
        self.stage = Stage::Done;
    }

    /// The peer's close_notify on a receiving connection: answer with ours (RFC 8446 §6.1).
    fn answer_peer_close(&mut self) {
        if let Some(tls) = &mut self.tls {
            if let Err(err) = tls.close() {
                self.fail(DataError::Tls(err));
            }
            self.shutdown_requested = true;
        }
    }

    fn succeed(&mut self) {
        if self.result.is_none() {
            self.result = Some(Ok(()));
            self.events.push(DataEvent::Finished(Ok(())));
        }
        self.stage = Stage::Done;
    }

    /// Runs the TLS engine and decides the result where possible. Call after every input,
    /// before taking events, received payload and transmit bytes.
    pub fn process(&mut self) {
        if self.tls.is_some() {
            self.process_tls();
        } else if self.clear && self.result.is_none() {
            match self.direction {
                DataDirection::Receive => {
                    if self.transport_eof {
                        self.peer_finished = true;
                        if self.inbound.is_empty() {
                            self.succeed();
                        }
                    }
                }
                DataDirection::Send => {
                    if self.transport_eof && !self.finish_requested {
                        self.fail(DataError::ClosedEarly);
                    } else if self.finish_requested && self.clear_out.is_empty() {
                        self.succeed();
                    }
                }
            }
        }
    }

    fn process_tls(&mut self) {
        let Some(tls) = &mut self.tls else {
            return;
        };
        // Only pull more records while the application keeps up: the buffer stays bounded.
        while self.inbound.len() < self.max_buffer.saturating_sub(MIN_DATA_BUFFER).max(1) {
            match tls.poll() {
                Ok(TlsEvent::HandshakeComplete) => {
                    self.handshake = tls.handshake_kind();
                    if let Some(info) = tls.info() {
                        self.events.push(DataEvent::Secured(info.clone()));
                    }
                    if self.direction == DataDirection::Send
                        && !self.finish_requested
                        && !self.awaiting_direction
                    {
                        self.events.push(DataEvent::Writable);
                    }
                }
                Ok(TlsEvent::Data(bytes)) => {
                    if self.direction == DataDirection::Receive {
                        self.inbound.extend_from_slice(bytes);
                        self.bytes_received += bytes.len() as u64;
                    }
                }
                Ok(TlsEvent::PeerClosed) => {
                    self.peer_finished = true;
                    if self.awaiting_direction {
                        // Judged once the direction is known (`set_direction`).
                    } else if self.direction == DataDirection::Receive {
                        // Answer with our close_notify (RFC 8446 §6.1).
                        if let Err(err) = tls.close() {
                            if self.result.is_none() {
                                let err = DataError::Tls(err);
                                self.result = Some(Err(err.clone()));
                                self.events.push(DataEvent::Finished(Err(err)));
                            }
                        }
                        self.shutdown_requested = true;
                    } else if !self.finish_requested && self.result.is_none() {
                        self.result = Some(Err(DataError::ClosedEarly));
                        self.events
                            .push(DataEvent::Finished(Err(DataError::ClosedEarly)));
                    }
                }
                Ok(TlsEvent::Closed) => {}
                Ok(TlsEvent::Idle) => break,
                Err(err) => {
                    let finished_upload = self.direction == DataDirection::Send
                        && self.finish_requested
                        && tls.has_sent_close_notify();
                    if self.result.is_none() {
                        // After our upload's close_notify went out, the peer may end its side
                        // without answering (common with OpenSSL servers): nothing of ours was
                        // lost. Everything else is a failure; a receive-side EOF without
                        // close_notify is a truncation.
                        if finished_upload && err == TlsError::Truncated {
                            self.result = Some(Ok(()));
                            self.events.push(DataEvent::Finished(Ok(())));
                        } else {
                            let err = if err == TlsError::Truncated {
                                DataError::Truncated
                            } else {
                                DataError::Tls(err)
                            };
                            self.result = Some(Err(err.clone()));
                            self.events.push(DataEvent::Finished(Err(err)));
                        }
                    }
                    self.stage = Stage::Done;
                    break;
                }
            }
        }
        let tls_done = tls.error().is_some();
        if self.write_blocked
            && !tls_done
            && tls.pending_transmit().is_empty()
            && tls.is_handshake_complete()
            && !self.finish_requested
        {
            self.write_blocked = false;
            self.events.push(DataEvent::Writable);
        }
        if self.result.is_none() && !self.awaiting_direction {
            match self.direction {
                DataDirection::Receive => {
                    if self.peer_finished && self.inbound.is_empty() {
                        self.succeed();
                    }
                }
                DataDirection::Send => {
                    // Done once our close_notify went out *and* the peer ended its side: until
                    // then the connection keeps reading, so a TLS 1.3 ticket the server sent on
                    // it is stored. Closing earlier loses it, and a server that requires
                    // resumption (vsftpd) refuses a later data connection once the tickets run
                    // out. (A peer that ends with a bare EOF is accepted above.)
                    if self.finish_requested
                        && tls.has_sent_close_notify()
                        && tls.pending_transmit().is_empty()
                        && self.peer_finished
                    {
                        self.succeed();
                    }
                }
            }
        }
    }

    /// The next non-data event.
    pub fn next_event(&mut self) -> Option<DataEvent> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }

    /// True when received payload waits to be taken with [`read`](Self::read).
    pub fn has_unread(&self) -> bool {
        !self.inbound.is_empty()
    }

    /// Copies received payload into `buf` and drops it from the buffer; returns how many bytes
    /// (0 when nothing waits). The connection completes only once everything was read.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.inbound.len());
        buf[..n].copy_from_slice(&self.inbound[..n]);
        self.inbound.drain(..n);
        n
    }

    /// Takes all received payload at once (for listings parsed by the session).
    pub fn take_inbound(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.inbound)
    }

    /// True when bytes wait for transmission.
    pub fn has_transmit(&self) -> bool {
        if self.send_failed.is_some() {
            return false;
        }
        match &self.tls {
            Some(tls) => !tls.pending_transmit().is_empty(),
            None => !self.clear_out.is_empty(),
        }
    }

    /// Copies bytes to transmit into `buf`; returns how many.
    pub fn take_transmit(&mut self, buf: &mut [u8]) -> usize {
        if self.send_failed.is_some() {
            self.drop_transmit();
            return 0;
        }
        match &mut self.tls {
            Some(tls) => tls.take_transmit(buf),
            None => {
                let n = self.clear_out.len().min(buf.len());
                buf[..n].copy_from_slice(&self.clear_out[..n]);
                self.clear_out.drain(..n);
                if self.write_blocked && self.clear_out.is_empty() && !self.finish_requested {
                    self.write_blocked = false;
                    self.events.push(DataEvent::Writable);
                }
                n
            }
        }
    }

    /// True once, when our direction ended and everything was transmitted: the driver should
    /// shut down the socket's write side.
    pub fn take_shutdown_request(&mut self) -> bool {
        if self.shutdown_requested && !self.shutdown_taken && !self.has_transmit() {
            let sent_all = match &self.tls {
                Some(tls) => tls.has_sent_close_notify() || tls.error().is_some(),
                None => true,
            };
            if sent_all {
                self.shutdown_taken = true;
                return true;
            }
        }
        false
    }
}
