//! The drain: [`ServerSession::poll_output`], and the data-connection pump it runs first.

use super::{AcceptedEarly, DATA_ROUNDS, DataSetup, ServerEvent, ServerSession, TransferKind};
use crate::data::DataEvent;
use crate::io::Instant;
use crate::io::{Channel, IoRequest, Output};

impl ServerSession {
    /// The next thing for the driver to do. Call until it returns `Output::Wait`.
    ///
    /// - `Transmit { channel, len }`: send `buf[..len]` on `channel` (an empty `buf` gets no
    ///   transmit).
    /// - `Io(request)`: listen, connect, shut down a write side, or close.
    /// - `Event(event)`: for the application (owned data).
    /// - `Wait { deadline }`: nothing more until new input or `deadline`.
    ///
    /// Data-connection output comes before control output, so a transfer's data connection is
    /// flushed and closed before its `226` goes out; nothing comes for a channel the driver
    /// reported blocked (`handle_transmit_blocked`).
    pub fn poll_output(&mut self, buf: &mut [u8], now: Instant) -> Output<ServerEvent> {
        self.now = self.now.advanced_to(now);
        self.pump_control();
        self.process_data();
        self.run();

        if !buf.is_empty() {
            for conn in &mut self.closing_data {
                if self.blocked.contains(Channel::Data(conn.id())) {
                    continue;
                }
                let len = conn.take_transmit(buf);
                if len > 0 {
                    return Output::Transmit {
                        channel: Channel::Data(conn.id()),
                        len,
                    };
                }
            }
            if let Some(t) = self
                .transfer
                .as_mut()
                .filter(|t| !self.blocked.contains(Channel::Data(t.conn.id())))
            {
                let len = t.conn.take_transmit(buf);
                if len > 0 {
                    let channel = Channel::Data(t.conn.id());
                    self.touch_data();
                    return Output::Transmit { channel, len };
                }
            }
            if let Some(early) = self.accepted_early_mut() {
                let channel = Channel::Data(early.conn.id());
                let len = early.conn.take_transmit(buf);
                if len > 0 {
                    return Output::Transmit { channel, len };
                }
            }
        }
        for index in 0..self.closing_data.len() {
            let conn = &mut self.closing_data[index];
            let channel = Channel::Data(conn.id());
            if conn.take_shutdown_request() {
                return Output::Io(IoRequest::ShutdownWrite { channel });
            }
            if !conn.has_transmit() {
                self.closing_data.remove(index);
                self.blocked.set(channel, false);
                return Output::Io(IoRequest::Close { channel });
            }
        }
        if let Some(t) = &mut self.transfer {
            if t.conn.take_shutdown_request() {
                return Output::Io(IoRequest::ShutdownWrite {
                    channel: Channel::Data(t.conn.id()),
                });
            }
        }
        if let Some(early) = self.accepted_early_mut() {
            if early.conn.take_shutdown_request() {
                return Output::Io(IoRequest::ShutdownWrite {
                    channel: Channel::Data(early.conn.id()),
                });
            }
        }
        if !buf.is_empty() && !self.blocked.contains(Channel::Control) {
            if let Some(len) = self.take_control_transmit(buf) {
                return Output::Transmit {
                    channel: Channel::Control,
                    len,
                };
            }
        }
        if let Some(request) = self.io.pop_front() {
            if let IoRequest::Close { channel } = request {
                self.blocked.set(channel, false);
            }
            return Output::Io(request);
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        if self.closing.is_none() {
            if let Some(t) = self.transfer.as_mut().filter(|t| {
                matches!(t.kind, TransferKind::Store { .. })
                    && !t.readable_announced
                    && (t.conn.has_unread() || !t.upload.is_empty())
            }) {
                t.readable_announced = true;
                return Output::Event(ServerEvent::Readable { id: t.id });
            }
        }
        if let Some(error) = &self.closing {
            if !self.control_flushed() {
                return Output::Wait { deadline: None };
            }
            if !self.control_close_sent {
                self.control_close_sent = true;
                return Output::Io(IoRequest::Close {
                    channel: Channel::Control,
                });
            }
            if !self.closed_reported && self.closing_data.is_empty() {
                self.closed_reported = true;
                return Output::Event(ServerEvent::Closed {
                    error: error.clone(),
                });
            }
            return Output::Wait { deadline: None };
        }
        Output::Wait {
            deadline: self.next_deadline(),
        }
    }

    /// True when every control byte that will ever go out has been handed out.
    fn control_flushed(&self) -> bool {
        if self.control_close_sent {
            return true;
        }
        let tls_pending = self.control_tls.as_ref().is_some_and(|tls| {
            !tls.pending_transmit().is_empty()
                || (!self.abandon_tls
                    && tls.error().is_none()
                    && tls.is_handshake_complete()
                    && !tls.has_sent_close_notify())
        });
        self.plain_out.is_empty()
            && self.cleared_tls.is_none()
            && !tls_pending
            && (self.control_tls.is_some() || self.reply_out.is_empty())
    }

    fn take_control_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.control_close_sent {
            return None;
        }
        if !self.plain_out.is_empty() {
            let len = self.plain_out.len().min(buf.len());
            buf[..len].copy_from_slice(&self.plain_out[..len]);
            self.plain_out.drain(..len);
            return Some(len);
        }
        if let Some(tls) = &mut self.cleared_tls {
            let len = tls.take_transmit(buf);
            if len > 0 {
                return Some(len);
            }
            self.cleared_tls = None;
        }
        if let Some(tls) = &mut self.control_tls {
            let usable = !self.abandon_tls && tls.error().is_none() && !tls.has_sent_close_notify();
            if usable && tls.is_handshake_complete() && !self.reply_out.is_empty() {
                match tls.write(&self.reply_out) {
                    Ok(n) => {
                        self.reply_out.drain(..n);
                    }
                    Err(_) => self.reply_out.clear(),
                }
            }
            if self.closing.is_some() && usable && tls.is_handshake_complete() {
                if self.reply_out.is_empty() {
                    // Orderly end of the control TLS stream.
                    let _ = tls.close();
                }
            } else if self.closing.is_some() && !tls.is_handshake_complete() {
                self.reply_out.clear();
            }
            let len = tls.take_transmit(buf);
            if len > 0 {
                return Some(len);
            }
            return None;
        }
        if !self.reply_out.is_empty() {
            let len = self.reply_out.len().min(buf.len());
            buf[..len].copy_from_slice(&self.reply_out[..len]);
            self.reply_out.drain(..len);
            return Some(len);
        }
        None
    }

    /// The passive connection accepted before its transfer command, when the driver may
    /// write to it.
    fn accepted_early_mut(&mut self) -> Option<&mut AcceptedEarly> {
        match &mut self.setup {
            DataSetup::Passive {
                id,
                accepted: Some(early),
                ..
            } if !self.blocked.contains(Channel::Data(*id)) => Some(early.as_mut()),
            _ => None,
        }
    }

    /// Runs the data connections and routes what they report.
    pub(super) fn process_data(&mut self) {
        // Its events wait in it for the transfer that takes it over.
        if let DataSetup::Passive {
            accepted: Some(early),
            ..
        } = &mut self.setup
        {
            early.conn.process();
        }
        for conn in &mut self.closing_data {
            conn.process();
            while conn.next_event().is_some() {}
            if conn.has_unread() {
                conn.take_inbound();
            }
        }
        let mut finished = false;
        for _ in 0..DATA_ROUNDS {
            let Some(t) = &mut self.transfer else {
                return;
            };
            t.conn.process();
            let mut progressed = false;
            let mut release = None;
            while let Some(event) = t.conn.next_event() {
                progressed = true;
                match event {
                    DataEvent::Secured(_) => release = t.held_preliminary.take(),
                    DataEvent::Writable => t.conn_writable = true,
                    DataEvent::Finished(result) => {
                        release = release.or_else(|| t.held_preliminary.take());
                        t.result = Some(result);
                        finished = true;
                    }
                }
            }
            if let Some(text) = release {
                self.reply(150, &text);
            }
            let Some(t) = &mut self.transfer else {
                return;
            };
            if !t.staging.is_empty() || (t.source_done && !t.finish_called) {
                let before = t.staging.len();
                Self::flush_staging(t);
                progressed |= t.staging.len() != before;
            }
            if !matches!(t.kind, TransferKind::Store { .. })
                && t.want_writable
                && t.conn_writable
                && t.staging.is_empty()
                && !t.source_done
                && !finished
            {
                t.want_writable = false;
                self.events.push_back(ServerEvent::Writable { id: t.id });
            }
            if finished || !progressed {
                break;
            }
        }
        if finished {
            self.complete_transfer(None);
        }
    }
}
