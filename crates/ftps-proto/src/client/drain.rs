//! The drain: [`ClientSession::poll_output`], and the data-connection pump it runs first.

use super::{
    ClientEvent, ClientSession, DataEvent, ListingEntry, ListingKind, Op, OpKind, TransferStep,
    parse_list_line, parse_mlsx_entry,
};
use crate::io::{Channel, Instant, IoRequest, Output};

/// Rounds of data processing per drain call; each round moves at most one buffer's worth, so
/// this only bounds work per call (the next call continues).
const DATA_ROUNDS: usize = 8;

/// Listing lines are parsed only while fewer events than this wait in the queue: the rest of
/// the listing stays in the (bounded) data buffers until the application caught up.
const MAX_QUEUED_EVENTS: usize = 256;

impl ClientSession {
    /// The next thing for the driver to do. Call until it returns `Output::Wait`.
    ///
    /// - `Transmit { channel, len }`: send `buf[..len]` on `channel` (an empty `buf` gets no
    ///   transmit); control bytes come first, and nothing comes for a channel the driver
    ///   reported blocked.
    /// - `Io(request)`: connect, listen, shut down a write side, or close, and report back.
    /// - `Event(event)`: for the application (owned data).
    /// - `Wait { deadline }`: nothing more until new input or `deadline`.
    pub fn poll_output(&mut self, buf: &mut [u8], now: Instant) -> Output<ClientEvent> {
        self.enter(now);
        self.process_data();

        if !buf.is_empty() && !self.blocked.contains(Channel::Control) {
            if let Some(len) = self.take_control_transmit(buf) {
                return Output::Transmit {
                    channel: Channel::Control,
                    len,
                };
            }
        }
        if let Some(slot) = &mut self.data {
            let channel = Channel::Data(slot.conn.id());
            if !buf.is_empty() && !self.blocked.contains(channel) {
                let len = slot.conn.take_transmit(buf);
                if len > 0 {
                    self.touch_data();
                    return Output::Transmit { channel, len };
                }
            }
            if slot.conn.take_shutdown_request() {
                return Output::Io(IoRequest::ShutdownWrite { channel });
            }
            if slot.closing && !slot.conn.has_transmit() {
                self.data = None;
                self.blocked.set(channel, false);
                return Output::Io(IoRequest::Close { channel });
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
        if let Some(slot) = &mut self.data {
            let download = self.ops.front().is_some_and(|op| {
                op.id == slot.op && matches!(&op.kind, OpKind::Transfer(t) if t.listing.is_none())
            });
            if download && !slot.closing && !slot.readable_announced && slot.conn.has_unread() {
                slot.readable_announced = true;
                return Output::Event(ClientEvent::Readable { op: slot.op });
            }
        }
        self.closed_or_wait()
    }

    /// Control-channel bytes to send: commands through TLS (or in clear), and the TLS
    /// shutdown after CCC.
    fn take_control_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        if let Some(tls) = &mut self.control_tls {
            if self.ended.is_none() && tls.is_handshake_complete() && !self.command_out.is_empty() {
                match tls.write(&self.command_out) {
                    Ok(n) => {
                        self.command_out.drain(..n);
                    }
                    Err(err) => self.end(Some(super::ClientError::Tls(err))),
                }
            }
        }
        if let Some(tls) = &mut self.cleared_tls {
            let len = tls.take_transmit(buf);
            if len > 0 {
                return Some(len);
            }
            self.cleared_tls = None;
        }
        if let Some(tls) = &mut self.control_tls {
            let len = tls.take_transmit(buf);
            return (len > 0).then_some(len);
        }
        if !self.command_out.is_empty() && !self.control_closed {
            let len = self.command_out.len().min(buf.len());
            buf[..len].copy_from_slice(&self.command_out[..len]);
            self.command_out.drain(..len);
            return Some(len);
        }
        None
    }

    fn closed_or_wait(&mut self) -> Output<ClientEvent> {
        if let Some(error) = &self.ended {
            if !self.closed_reported {
                self.closed_reported = true;
                return Output::Event(ClientEvent::Closed {
                    error: error.clone(),
                });
            }
            return Output::Wait { deadline: None };
        }
        Output::Wait {
            deadline: self.next_deadline(),
        }
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.ended.is_some() {
            return None;
        }
        [
            self.connect_deadline,
            self.reply_deadline,
            self.data_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the data connection and routes what it reports to its transfer.
    fn process_data(&mut self) {
        let mut settle = false;
        let mut failed_data = None;
        for _ in 0..DATA_ROUNDS {
            let Some(slot) = &mut self.data else {
                break;
            };
            slot.conn.process();
            let mut progressed = false;
            let front = match self.ops.front_mut() {
                Some(Op {
                    id,
                    kind: OpKind::Transfer(transfer),
                }) if *id == slot.op && transfer.step == TransferStep::Running => {
                    Some((*id, transfer))
                }
                _ => None,
            };
            let Some((op, transfer)) = front else {
                // A data connection whose operation is over: only flushing and closing remain.
                while slot.conn.next_event().is_some() {}
                if slot.conn.has_unread() {
                    slot.conn.take_inbound();
                }
                break;
            };
            if let (Some(kind), Some(lines)) = (transfer.listing, transfer.lines.as_mut()) {
                if slot.conn.has_unread() && self.events.len() < MAX_QUEUED_EVENTS {
                    let bytes = slot.conn.take_inbound();
                    lines.push(&bytes);
                    progressed = true;
                }
                while let Some(line) = lines.next_line() {
                    let entry = match (kind, line) {
                        (_, Err(err)) => ListingEntry::Invalid(err),
                        (ListingKind::Mlsd, Ok(line)) => match parse_mlsx_entry(&line) {
                            Ok(entry) => ListingEntry::Mlsd(entry),
                            Err(err) => ListingEntry::Invalid(err),
                        },
                        (ListingKind::List, Ok(line)) => ListingEntry::List(parse_list_line(&line)),
                        (ListingKind::Nlst, Ok(line)) => ListingEntry::Name(line),
                    };
                    self.events.push_back(ClientEvent::Listing { op, entry });
                }
            }
            while let Some(event) = slot.conn.next_event() {
                progressed = true;
                match event {
                    DataEvent::Secured(info) => transfer.resumed = Some(info.kind.is_resumed()),
                    DataEvent::Writable => {
                        if !transfer.finish_requested {
                            self.events.push_back(ClientEvent::Writable { op });
                        }
                    }
                    DataEvent::Finished(result) => {
                        if result.is_ok() {
                            if let (Some(kind), Some(lines)) =
                                (transfer.listing, transfer.lines.as_mut())
                            {
                                lines.finish();
                                while let Some(line) = lines.next_line() {
                                    let entry = match (kind, line) {
                                        (_, Err(err)) => ListingEntry::Invalid(err),
                                        (ListingKind::Mlsd, Ok(line)) => {
                                            match parse_mlsx_entry(&line) {
                                                Ok(entry) => ListingEntry::Mlsd(entry),
                                                Err(err) => ListingEntry::Invalid(err),
                                            }
                                        }
                                        (ListingKind::List, Ok(line)) => {
                                            ListingEntry::List(parse_list_line(&line))
                                        }
                                        (ListingKind::Nlst, Ok(line)) => ListingEntry::Name(line),
                                    };
                                    self.events.push_back(ClientEvent::Listing { op, entry });
                                }
                            }
                        }
                        if let Err(err) = &result {
                            failed_data = Some(err.clone());
                        }
                        transfer.data_result = Some(result);
                        if transfer.final_reply.is_none() {
                            // The data side is done: the final reply is due now.
                            self.reply_deadline =
                                Some(self.now.saturating_add(self.config.timeouts.reply));
                        }
                        settle = true;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        if let Some(err) = failed_data {
            self.abort_after_data_failure(err);
        }
        if settle {
            self.settle();
        }
    }
}
