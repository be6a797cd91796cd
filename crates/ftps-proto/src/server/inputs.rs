//! The driver's inputs: `handle_*` (bytes, end of stream, socket results, deadlines).

use alloc::boxed::Box;
use core::net::{IpAddr, SocketAddr};

use super::{AcceptedEarly, DataSetup, ServerError, ServerEvent, ServerSession, Wait};
use crate::codec::addr::{epsv_reply_text, is_same_host, pasv_reply_text};
use crate::data::DataConnection;
use crate::io::{Channel, DataId, Instant, IoErrorKind, IoRequest};

impl ServerSession {
    /// Bytes received on `channel`. Returns how many were taken; feed the rest again after
    /// draining [`poll_output`](Self::poll_output).
    pub fn handle_receive(&mut self, channel: Channel, bytes: &[u8], now: Instant) -> usize {
        self.now = self.now.advanced_to(now);
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
            accepted: Some(early),
            ..
        } = &mut self.setup
        {
            if *setup_id == id {
                // A client may start its TLS hello before it sends the transfer command: under
                // PROT P the handshake runs at once (see `DataConnection::awaiting_direction`).
                if self.data_private && !early.conn.is_started() {
                    self.client_tls_first = true;
                    Self::start_security(
                        &mut early.conn,
                        true,
                        self.data_tls_config.as_ref(),
                        &self.config,
                        true,
                    );
                    early.private = true;
                }
                return early.conn.feed(bytes);
            }
        }
        if let Some(conn) = self.closing_data.iter_mut().find(|c| c.id() == id) {
            conn.feed(bytes);
        }
        bytes.len()
    }

    /// End of stream on `channel`.
    pub fn handle_eof(&mut self, channel: Channel, now: Instant) {
        self.now = self.now.advanced_to(now);
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
                    id: setup_id,
                    accepted: Some(early),
                    ..
                } = &mut self.setup
                {
                    if *setup_id == id {
                        early.conn.feed_eof();
                    }
                } else if let Some(conn) = self.closing_data.iter_mut().find(|c| c.id() == id) {
                    conn.feed_eof();
                }
            }
        }
    }

    /// A socket operation on `channel` failed (read, write, listen, accept, connect).
    pub fn handle_io_error(&mut self, channel: Channel, kind: IoErrorKind, now: Instant) {
        self.now = self.now.advanced_to(now);
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

    /// Writing a `Transmit` for `channel` failed. The control connection ends as with
    /// [`handle_io_error`](Self::handle_io_error); an upload's data connection keeps its
    /// receive side, because the client's payload and close_notify may have arrived before
    /// its reset (see [`DataConnection::on_send_failed`]).
    ///
    /// [`DataConnection::on_send_failed`]: crate::data::DataConnection::on_send_failed
    pub fn handle_transmit_failed(&mut self, channel: Channel, kind: IoErrorKind, now: Instant) {
        if let Channel::Data(id) = channel {
            if let Some(t) = self.transfer.as_mut().filter(|t| t.conn.id() == id) {
                self.now = self.now.advanced_to(now);
                if self.closing.is_none() {
                    t.conn.on_send_failed(kind);
                }
                return;
            }
            if let DataSetup::Passive {
                id: setup_id,
                accepted: Some(early),
                ..
            } = &mut self.setup
            {
                if *setup_id == id {
                    self.now = self.now.advanced_to(now);
                    early.conn.on_send_failed(kind);
                    return;
                }
            }
        }
        self.handle_io_error(channel, kind, now);
    }

    /// Passive mode: the driver's listener for `data` is bound to `addr`.
    pub fn handle_listening(&mut self, data: DataId, addr: SocketAddr, now: Instant) {
        self.now = self.now.advanced_to(now);
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

    /// Passive mode: the listener for `data` accepted a connection from `peer`. A connection
    /// from another host than the control peer (port theft), or one the data connection does
    /// not need (it has its socket), is refused: the session asks the driver to drop that
    /// socket and keep the listener open (`Io(RefuseAccepted)`), and keeps waiting.
    pub fn handle_accepted(&mut self, data: DataId, peer: SocketAddr, now: Instant) {
        self.now = self.now.advanced_to(now);
        if self.closing.is_some() {
            return;
        }
        if !self.accept_data_peer(data, peer) {
            self.io.push_back(IoRequest::RefuseAccepted { data });
        }
    }

    /// Whether the connection accepted for `data` from `peer` is taken.
    fn accept_data_peer(&mut self, data: DataId, peer: SocketAddr) -> bool {
        if !self.config.allow_foreign_data_peer && !is_same_host(peer.ip(), self.peer.ip()) {
            self.events.push_back(ServerEvent::DataPeerRefused { peer });
            return false;
        }
        if self.transfer.as_ref().is_some_and(|t| t.conn.id() == data) {
            return self.transfer_socket_up(data);
        }
        if let DataSetup::Passive { id, accepted, .. } = &mut self.setup {
            if *id == data && accepted.is_none() {
                let buffer = self.config.limits.data_buffer;
                let mut conn = DataConnection::awaiting_direction(data, buffer);
                conn.on_connected();
                // Security starts with the first bytes (or with the command): PROT may still
                // change until then.
                *accepted = Some(Box::new(AcceptedEarly {
                    conn,
                    private: false,
                }));
                return true;
            }
        }
        false
    }

    /// The driver cannot write `channel` now (its socket buffer is full) and holds bytes for
    /// it: the drain hands out no more bytes for that channel until
    /// [`handle_transmit_ready`](Self::handle_transmit_ready), and the other channels keep
    /// flowing.
    pub fn handle_transmit_blocked(&mut self, channel: Channel, now: Instant) {
        self.now = self.now.advanced_to(now);
        self.blocked.set(channel, true);
    }

    /// The driver wrote what it held for `channel` and can take more.
    pub fn handle_transmit_ready(&mut self, channel: Channel, now: Instant) {
        self.now = self.now.advanced_to(now);
        self.blocked.set(channel, false);
    }

    /// Active mode: the connection requested for `channel` (`Io(Connect)`) is up, with its
    /// local address.
    pub fn handle_connected(&mut self, channel: Channel, local: SocketAddr, now: Instant) {
        let _ = local;
        self.now = self.now.advanced_to(now);
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
            self.data_tls_config.as_ref(),
            &self.config,
            t.tls_first,
        );
        self.touch_data();
        true
    }

    /// The caller's clock reached a deadline from `Output::Wait`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.advanced_to(now);
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
        let handshake_running = self
            .control_tls
            .as_ref()
            .is_some_and(|tls| !tls.is_handshake_complete());
        if handshake_running && self.handshake_deadline.is_some_and(|at| at <= now) {
            // Mid-handshake nothing can be said: drop the connection.
            self.abandon_tls = true;
            self.close_session(Some(ServerError::HandshakeTimeout));
            return;
        }
        let login_counts = !self.logged_in && !matches!(self.wait, Wait::Answer { .. });
        if login_counts && self.login_deadline.is_some_and(|at| at <= now) {
            self.reply(421, b"Login timeout, closing control connection.");
            self.close_session(Some(ServerError::LoginTimeout));
            return;
        }
        let idle_counts = self.transfer.is_none() && !matches!(self.wait, Wait::Answer { .. });
        if idle_counts && self.idle_deadline.is_some_and(|at| at <= now) {
            self.reply(421, b"Idle timeout, closing control connection.");
            self.close_session(Some(ServerError::IdleTimeout));
        }
    }
}
