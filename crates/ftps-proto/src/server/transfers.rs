//! Transfers: checks, the request, the data connection's TLS, staging, and the final reply.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::ascii::AsciiDecoder;
use super::{
    AcceptedEarly, DataSetup, DataTlsConfigs, ListFormat, Pending, PendingTransfer, Refusal,
    Request, RequestId, ServerEvent, ServerSession, ServerSessionConfig, Transfer, TransferKind,
    Wait,
};
use crate::data::{DataConnection, DataDirection, DataError};
use crate::io::{Channel, IoRequest};
use crate::tls::{TlsChannel, TlsError};

impl ServerSession {
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

    pub(super) fn transfer_request(&mut self, request: Request, kind: TransferKind) {
        if self.transfer_checks() {
            self.request(request, Pending::Transfer(PendingTransfer { kind }));
        }
    }

    pub(super) fn listing_request(&mut self, path: Option<Vec<u8>>, format: ListFormat) {
        let path = path.map_or_else(|| self.cwd.clone(), |p| self.resolve(&p));
        self.transfer_request(
            Request::List { path, format },
            TransferKind::Listing(format),
        );
    }

    pub(super) fn start_security(
        conn: &mut DataConnection,
        private: bool,
        tls_configs: Option<&DataTlsConfigs>,
        config: &ServerSessionConfig,
        client_tls_first: bool,
    ) {
        let tls_config =
            tls_configs.map(|configs| configs.for_connection(conn.direction(), client_tls_first));
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

    pub(super) fn start_transfer(
        &mut self,
        id: RequestId,
        kind: TransferKind,
        unique_name: Option<Vec<u8>>,
    ) {
        let direction = match kind {
            TransferKind::Store { .. } => DataDirection::Receive,
            _ => DataDirection::Send,
        };
        let buffer = self.config.limits.data_buffer;
        let conn;
        // Only a passive connection can carry a hello before the command; an active one is
        // opened by us after it, and such a client handshakes after the 150 there.
        let tls_first = self.client_tls_first && matches!(self.setup, DataSetup::Passive { .. });
        match core::mem::replace(&mut self.setup, DataSetup::None) {
            DataSetup::Passive {
                id: data, accepted, ..
            } => match accepted.map(|early| *early) {
                Some(AcceptedEarly {
                    conn: mut early,
                    private,
                }) => {
                    early.set_direction(direction);
                    if private && !self.data_private {
                        // The client's TLS hello came under PROT P, then it asked for PROT C:
                        // what runs on the connection is not what this transfer needs.
                        early.cancel();
                    }
                    Self::start_security(
                        &mut early,
                        self.data_private,
                        self.data_tls_config.as_ref(),
                        &self.config,
                        tls_first,
                    );
                    conn = early;
                }
                None => conn = DataConnection::new(data, direction, buffer),
            },
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
        // A client that begins the TLS handshake before its command (curl) gets the 150 once
        // that handshake is over: it reads the data socket while it waits for the 150, so
        // its TLS 1.3 ticket is in hand before it starts an upload — after it, curl reads the
        // socket only once more, right before it closes, which a small file reaches sooner
        // than the ticket would. Its hello may reach us after the command (two sockets race),
        // so for such a client an upload's 150 waits for a handshake that has not begun too.
        // Clients that start TLS after the 150 get it at once.
        let tls_first_upload = tls_first
            && self.data_private
            && direction == DataDirection::Receive
            && !conn.is_secured()
            && conn.result().is_none();
        let held_preliminary = if conn.is_handshaking() || tls_first_upload {
            Some(text)
        } else {
            self.reply(150, &text);
            None
        };
        let ascii = self.ascii && !matches!(kind, TransferKind::Listing(_));
        let mut transfer = Transfer {
            id,
            kind,
            ascii,
            conn,
            staging: Vec::new(),
            source_done: false,
            finish_called: false,
            // Downloads and listings take their payload as the client reads it.
            want_writable: !matches!(kind, TransferKind::Store { .. }),
            conn_writable: false,
            decoder: AsciiDecoder::default(),
            upload: Vec::new(),
            raw: Vec::new(),
            readable_announced: false,
            result: None,
            held_preliminary,
            tls_first,
        };
        Self::flush_staging(&mut transfer);
        self.transfer = Some(transfer);
        self.touch_data();
    }

    pub(super) fn flush_staging(t: &mut Transfer) {
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

    pub(super) fn push_transfer_finished(&mut self, t: &Transfer, complete: bool) {
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
    pub(super) fn complete_transfer(&mut self, forced: Option<(u16, &[u8])>) {
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
                // Announced before the UploadFinished pushed next.
                self.events.push_back(ServerEvent::Readable { id: t.id });
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
    pub(super) fn after_final_reply(&mut self) {
        if self.quit_after_transfer {
            self.reply(221, b"Goodbye.");
            self.close_session(None);
        }
    }

    pub(super) fn abort_running_transfer(&mut self) {
        if let Some(t) = &mut self.transfer {
            t.conn.cancel();
            self.complete_transfer(Some((426, b"Transfer aborted.")));
            self.reply(226, b"ABOR successful.");
        }
    }
}
