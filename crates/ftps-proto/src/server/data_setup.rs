//! Data connection setup: PORT/EPRT (active) and PASV/EPSV (passive).

use core::net::SocketAddr;

use super::{DataSetup, Refusal, ServerSession, Wait};
use crate::codec::addr::{AddrError, NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT, is_same_host};
use crate::io::{Channel, DataId, IoRequest};

impl ServerSession {
    pub(super) fn new_data_id(&mut self) -> DataId {
        let id = DataId::new(self.next_data);
        self.next_data = self.next_data.wrapping_add(1);
        id
    }

    /// Drops the current data setup, closing a passive listener or accepted socket.
    pub(super) fn close_setup(&mut self) {
        if let DataSetup::Passive { id, .. } = core::mem::replace(&mut self.setup, DataSetup::None)
        {
            self.io.push_back(IoRequest::Close {
                channel: Channel::Data(id),
            });
        }
    }

    pub(super) fn addr_error(&mut self, err: AddrError) {
        if err.server_reply_code() == 522 {
            self.reply(522, NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT.as_bytes());
        } else {
            self.reply(501, b"Syntax error in the address.");
        }
    }

    pub(super) fn active(&mut self, parsed: Result<SocketAddr, AddrError>, ok_text: &[u8]) {
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

    pub(super) fn passive(&mut self, extended: bool) {
        self.close_setup();
        let id = self.new_data_id();
        self.setup = DataSetup::Passive {
            id,
            bound: false,
            accepted: None,
        };
        self.io.push_back(IoRequest::Listen {
            data: id,
            ip: self.local.ip(),
        });
        self.wait = Wait::Listen { data: id, extended };
    }
}
