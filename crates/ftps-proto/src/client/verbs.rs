//! The application's verbs: each queues an operation and returns its [`OpId`].

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::{
    AbortState, ClientSession, ClientTlsMode, DataDirection, DataProtection, ListingKind,
    LoginStep, Op, OpError, OpId, OpKind, Password, Phase, ProtectionStep, Transfer, TransferStep,
    UsageError,
};
use crate::codec::command::{Command, TransferType, Verb};
use crate::io::Channel;
use crate::io::IoRequest;

/// CR or LF in an argument would end the command early and inject another (checklist §3.2).
fn check_argument(argument: &[u8]) -> Result<(), UsageError> {
    if argument.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
        Err(UsageError::LineBreakInArgument)
    } else {
        Ok(())
    }
}

fn check_path(path: &[u8]) -> Result<Vec<u8>, UsageError> {
    check_argument(path)?;
    if path.is_empty() {
        return Err(UsageError::InvalidArgument);
    }
    Ok(path.to_vec())
}

fn check_optional(path: Option<&[u8]>) -> Result<Option<Vec<u8>>, UsageError> {
    match path {
        None => Ok(None),
        Some([]) => Ok(None),
        Some(path) => check_path(path).map(Some),
    }
}

impl ClientSession {
    fn queue(&mut self, kind: OpKind) -> Result<OpId, UsageError> {
        if self.ended.is_some() {
            return Err(UsageError::Closed);
        }
        if self.ops.len() >= self.config.limits.max_pending_ops {
            return Err(UsageError::TooManyPending);
        }
        let id = OpId::new(self.next_op);
        self.next_op += 1;
        self.ops.push_back(Op { id, kind });
        self.drive();
        Ok(id)
    }

    fn queue_simple(&mut self, command: Command) -> Result<OpId, UsageError> {
        self.queue(OpKind::Simple {
            command,
            sent: false,
        })
    }

    /// Logs in with `USER`/`PASS` (and `ACCT` if the server asks and `account` is given).
    /// Under TLS the login also sets up data protection (`PBSZ 0`, `PROT P` or `C`) and, when
    /// FEAT advertised it, `OPTS UTF8 ON`.
    pub fn login(
        &mut self,
        user: &[u8],
        password: &[u8],
        account: Option<&[u8]>,
    ) -> Result<OpId, UsageError> {
        check_argument(user)?;
        check_argument(password)?;
        if user.is_empty() {
            return Err(UsageError::InvalidArgument);
        }
        let account = check_optional(account)?;
        self.queue(OpKind::Login {
            user: user.to_vec(),
            password: Password::new(password.to_vec()),
            account,
            step: Some(LoginStep::User),
            reply: None,
        })
    }

    /// `CWD path`.
    pub fn cwd(&mut self, path: &[u8]) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_simple(Command::Cwd(path))
    }

    /// `CDUP`.
    pub fn cdup(&mut self) -> Result<OpId, UsageError> {
        self.queue_simple(Command::Cdup)
    }

    /// `PWD`.
    pub fn pwd(&mut self) -> Result<OpId, UsageError> {
        self.queue_simple(Command::Pwd)
    }

    /// `MKD path`.
    pub fn mkd(&mut self, path: &[u8]) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_simple(Command::Mkd(path))
    }

    /// `RMD path`.
    pub fn rmd(&mut self, path: &[u8]) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_simple(Command::Rmd(path))
    }

    /// `DELE path`.
    pub fn dele(&mut self, path: &[u8]) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_simple(Command::Dele(path))
    }

    /// `RNFR from` then `RNTO to`, as one operation.
    pub fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<OpId, UsageError> {
        let from = check_path(from)?;
        let to = check_path(to)?;
        self.queue(OpKind::Rename {
            from,
            to,
            sent: None,
        })
    }

    /// `SIZE path` (the size is in the 213 reply's text).
    pub fn size(&mut self, path: &[u8]) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_simple(Command::Size(path))
    }

    /// `MDTM path` (the time is in the 213 reply's text).
    pub fn mdtm(&mut self, path: &[u8]) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_simple(Command::Mdtm(path))
    }

    /// `MLST [path]` (the entry is in the 250 reply).
    pub fn mlst(&mut self, path: Option<&[u8]>) -> Result<OpId, UsageError> {
        let path = check_optional(path)?;
        self.queue_simple(Command::Mlst(path))
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<OpId, UsageError> {
        self.queue_simple(Command::Noop)
    }

    /// `SYST`.
    pub fn syst(&mut self) -> Result<OpId, UsageError> {
        self.queue_simple(Command::Syst)
    }

    /// `STAT [path]`.
    pub fn stat(&mut self, path: Option<&[u8]>) -> Result<OpId, UsageError> {
        let path = check_optional(path)?;
        self.queue_simple(Command::Stat(path))
    }

    /// `SITE command`.
    pub fn site(&mut self, command: &[u8]) -> Result<OpId, UsageError> {
        let command = check_path(command)?;
        self.queue_simple(Command::Site(command))
    }

    /// Any command line (`verb [argument]`) whose final reply, whatever it is, is the result.
    /// Commands that need a data connection or change the session's security cannot be sent
    /// this way (`PBSZ`/`PROT`: [`set_data_protection`](Self::set_data_protection), which also
    /// tells the data connections).
    pub fn raw_command(
        &mut self,
        verb: &[u8],
        argument: Option<&[u8]>,
    ) -> Result<OpId, UsageError> {
        check_argument(verb)?;
        if verb.is_empty() || verb.contains(&b' ') {
            return Err(UsageError::InvalidArgument);
        }
        let argument = check_optional(argument)?;
        if let Some(known) = Verb::parse(verb) {
            if matches!(
                known,
                Verb::Retr
                    | Verb::Stor
                    | Verb::Stou
                    | Verb::Appe
                    | Verb::List
                    | Verb::Nlst
                    | Verb::Mlsd
                    | Verb::Auth
                    | Verb::Ccc
                    | Verb::Rein
                    | Verb::Pbsz
                    | Verb::Prot
                    | Verb::Quit
                    | Verb::Abor
                    | Verb::Pasv
                    | Verb::Epsv
                    | Verb::Port
                    | Verb::Eprt
            ) {
                return Err(UsageError::WrongCall("use the dedicated verb"));
            }
        }
        self.queue(OpKind::Raw {
            command: Command::Unknown {
                verb: verb.to_vec(),
                argument,
            },
            sent: false,
        })
    }

    /// `QUIT`, after the operations queued before it; the session then ends in order.
    pub fn quit(&mut self) -> Result<OpId, UsageError> {
        self.queue(OpKind::Quit { sent: false })
    }

    /// `CCC` (RFC 4217 §5): after the server's `200`, both sides exchange close_notify and
    /// the control connection continues in plaintext (data connections keep their `PROT`
    /// level). Commands after it travel unprotected and can be tampered with: use only when a
    /// firewall needs to read the control connection.
    pub fn ccc(&mut self) -> Result<OpId, UsageError> {
        self.queue(OpKind::Ccc { sent: false })
    }

    /// Switches the protection of later data connections (RFC 4217 §9, checklist T24, T52):
    /// queued behind the operations before it, it sends `PBSZ 0` then `PROT P` or `PROT C`.
    /// Only the server's `200` to `PROT` changes the level, for the data connections of the
    /// transfers after it; a transfer already running keeps its own. A 4yz/5yz to either
    /// command completes the operation with [`OpError::Rejected`] and leaves the level as it
    /// was. `PBSZ 0` is sent again even though the login sent it: RFC 4217 §9 wants a `PBSZ`
    /// before `PROT`, and the login's may have been refused (implicit FTPS) — servers answer
    /// a repeated `PBSZ 0` with `200`.
    ///
    /// `PBSZ` and `PROT` belong to the TLS security exchange (RFC 2228 §3): on a control
    /// connection known to be without TLS (plaintext mode or fallback, or after `CCC`, where
    /// a tampered `PROT` could make the server send in clear what the client believes
    /// private) this is [`UsageError::NotSecured`]; when that only turns out by the time the
    /// operation runs (a `CCC` queued before it), the operation completes with
    /// [`OpError::NotSecured`] and sends nothing.
    pub fn set_data_protection(&mut self, level: DataProtection) -> Result<OpId, UsageError> {
        if self.ended.is_some() {
            return Err(UsageError::Closed);
        }
        let past_tls_setup = matches!(self.phase, Phase::Feat | Phase::Ready | Phase::Clearing);
        if self.config.tls_mode == ClientTlsMode::Plaintext || (past_tls_setup && !self.is_secure())
        {
            return Err(UsageError::NotSecured);
        }
        self.queue(OpKind::Protection {
            level,
            step: Some(ProtectionStep::Pbsz),
        })
    }

    /// Sets the `TYPE` of later file transfers (retrieve/store/append/store_unique). The
    /// default is `TYPE I` (binary); listings use the server's implied `TYPE A`.
    pub fn set_transfer_type(&mut self, transfer_type: TransferType) {
        self.transfer_type = transfer_type;
    }

    fn queue_transfer(
        &mut self,
        command: Command,
        listing: Option<ListingKind>,
        rest: Option<u64>,
    ) -> Result<OpId, UsageError> {
        // File transfers set the chosen TYPE first; listings use the server's implied TYPE A.
        let transfer_type = listing.is_none().then_some(self.transfer_type);
        self.queue_typed_transfer(command, listing, rest, transfer_type)
    }

    fn queue_typed_transfer(
        &mut self,
        command: Command,
        listing: Option<ListingKind>,
        rest: Option<u64>,
        transfer_type: Option<TransferType>,
    ) -> Result<OpId, UsageError> {
        // Only the transfer verbs above call this, each with its transfer command.
        let (verb, direction) = transfer_shape(&command).ok_or(UsageError::InvalidArgument)?;
        let lines = listing
            .map(|_| crate::codec::listing::ListingLines::new(self.config.limits.max_listing_line));
        self.queue(OpKind::Transfer(Box::new(Transfer {
            command,
            verb,
            direction,
            listing,
            rest,
            transfer_type,
            step: TransferStep::Start,
            data: None,
            data_result: None,
            final_reply: None,
            failure: None,
            finish_requested: false,
            lines,
            abort: AbortState::None,
            resumed: None,
            listen: None,
            abort_reason: None,
            accepted: false,
            pick_listing: false,
        })))
    }

    /// Downloads `path` (`RETR`), from byte `rest` when given (`REST`, RFC 3659 §5). The data
    /// is announced by [`ClientEvent::Readable`](super::ClientEvent::Readable) and taken with
    /// [`read_data`](Self::read_data).
    pub fn retrieve(&mut self, path: &[u8], rest: Option<u64>) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_transfer(Command::Retr(path), None, rest.filter(|&offset| offset > 0))
    }

    /// Uploads to `path` (`STOR`): write with [`write_data`](Self::write_data) after
    /// [`ClientEvent::Writable`](super::ClientEvent::Writable), end with
    /// [`finish_upload`](Self::finish_upload) (also for an empty file).
    pub fn store(&mut self, path: &[u8]) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_transfer(Command::Stor(path), None, None)
    }

    /// Like [`store`](Self::store), appending (`APPE`).
    pub fn append(&mut self, path: &[u8]) -> Result<OpId, UsageError> {
        let path = check_path(path)?;
        self.queue_transfer(Command::Appe(path), None, None)
    }

    /// Like [`store`](Self::store), the server picks a unique name (`STOU`; the name is in the
    /// preliminary reply).
    pub fn store_unique(&mut self) -> Result<OpId, UsageError> {
        self.queue_transfer(Command::Stou, None, None)
    }

    /// `LIST [path]`: entries arrive as [`ListingEntry::List`](super::ListingEntry::List).
    pub fn list(&mut self, path: Option<&[u8]>) -> Result<OpId, UsageError> {
        let path = check_optional(path)?;
        self.queue_transfer(Command::List(path), Some(ListingKind::List), None)
    }

    /// `LIST [path]` delivered raw: the listing's bytes are read with
    /// [`read_data`](Self::read_data) after [`ClientEvent::Readable`](super::ClientEvent::Readable),
    /// exactly as the server sent them (for display, or a parser of the application's own).
    pub fn list_raw(&mut self, path: Option<&[u8]>) -> Result<OpId, UsageError> {
        let path = check_optional(path)?;
        self.queue_typed_transfer(Command::List(path), None, None, None)
    }

    /// `NLST [path]`: names arrive as [`ListingEntry::Name`](super::ListingEntry::Name).
    pub fn nlst(&mut self, path: Option<&[u8]>) -> Result<OpId, UsageError> {
        let path = check_optional(path)?;
        self.queue_transfer(Command::Nlst(path), Some(ListingKind::Nlst), None)
    }

    /// `MLSD [path]`: entries arrive as [`ListingEntry::Mlsd`](super::ListingEntry::Mlsd).
    pub fn mlsd(&mut self, path: Option<&[u8]>) -> Result<OpId, UsageError> {
        let path = check_optional(path)?;
        self.queue_transfer(Command::Mlsd(path), Some(ListingKind::Mlsd), None)
    }

    /// The best listing the server offers: `MLSD` (exact facts, RFC 3659) when its trusted
    /// `FEAT` reply lists `MLST`, otherwise `LIST` parsed as well as it can be. Decided when
    /// the operation starts, so it may be queued before the session is ready. Entries arrive
    /// as [`ClientEvent::Listing`](super::ClientEvent::Listing).
    pub fn list_entries(&mut self, path: Option<&[u8]>) -> Result<OpId, UsageError> {
        let path = check_optional(path)?;
        let op = self.queue_transfer(Command::List(path), Some(ListingKind::List), None)?;
        if let Some(Op {
            kind: OpKind::Transfer(transfer),
            ..
        }) = self.ops.iter_mut().find(|queued| queued.id == op)
        {
            transfer.pick_listing = true;
        }
        self.drive();
        Ok(op)
    }

    /// Takes downloaded bytes of `op` (RETR, raw LIST) into `buf`; returns how many (0 when
    /// none wait). Call after [`ClientEvent::Readable`](super::ClientEvent::Readable) until it
    /// returns 0: until every byte was read the session takes no more input from the data
    /// connection and the transfer does not complete.
    pub fn read_data(&mut self, op: OpId, buf: &mut [u8]) -> Result<usize, UsageError> {
        let transfer = self.transfer_mut(op)?;
        if transfer.direction != DataDirection::Receive || transfer.listing.is_some() {
            return Err(UsageError::WrongCall("not a download"));
        }
        let Some(slot) = self.data.as_mut().filter(|slot| slot.op == op) else {
            return Ok(0);
        };
        let read = slot.conn.read(buf);
        if !slot.conn.has_unread() {
            slot.readable_announced = false;
        }
        Ok(read)
    }

    /// Writes upload data for `op`; returns how many bytes were taken (`0` until the data
    /// connection is open, or while earlier data waits for transmission — wait for
    /// [`ClientEvent::Writable`](super::ClientEvent::Writable)).
    pub fn write_data(&mut self, op: OpId, bytes: &[u8]) -> Result<usize, UsageError> {
        let transfer = self.transfer_mut(op)?;
        if transfer.direction != DataDirection::Send {
            return Err(UsageError::WrongCall("not an upload"));
        }
        if transfer.finish_requested {
            return Err(UsageError::WrongCall("upload already finished"));
        }
        let Some(slot) = self.data.as_mut().filter(|slot| slot.op == op) else {
            return Ok(0);
        };
        let written = slot.conn.write(bytes).unwrap_or(0);
        if written > 0 {
            self.touch_data();
        }
        Ok(written)
    }

    /// Ends the upload `op` (close_notify, then the write side is shut down). An upload
    /// finished without any `write_data` stores an empty file.
    pub fn finish_upload(&mut self, op: OpId) -> Result<(), UsageError> {
        let transfer = self.transfer_mut(op)?;
        if transfer.direction != DataDirection::Send {
            return Err(UsageError::WrongCall("not an upload"));
        }
        transfer.finish_requested = true;
        if let Some(slot) = self.data.as_mut().filter(|slot| slot.op == op) {
            slot.conn.finish();
        }
        Ok(())
    }

    /// Aborts `op`: a queued operation is dropped; a running transfer is ended with `ABOR`
    /// (RFC 959 §4.1.3) and its data connection closed. Completes with
    /// [`OpError::Aborted`] unless the transfer had already finished.
    pub fn abort(&mut self, op: OpId) -> Result<(), UsageError> {
        if self.ended.is_some() {
            return Err(UsageError::Closed);
        }
        let position = self
            .ops
            .iter()
            .position(|queued| queued.id == op)
            .ok_or(UsageError::UnknownId)?;
        if position > 0 {
            self.ops.remove(position);
            self.complete_event(op, Err(OpError::Aborted));
            return Ok(());
        }
        let command_running = {
            let Some(Op {
                kind: OpKind::Transfer(transfer),
                ..
            }) = self.ops.front_mut()
            else {
                return Err(UsageError::WrongCall(
                    "only transfers can be aborted once started",
                ));
            };
            if transfer.abort != AbortState::None {
                return Ok(());
            }
            if transfer.step == TransferStep::Running {
                transfer.abort = AbortState::Sent;
                true
            } else {
                transfer.abort = AbortState::Requested;
                false
            }
        };
        // The data connection goes away at once; partial data is never complete.
        if let Some(slot) = self.data.as_mut().filter(|slot| slot.op == op) {
            slot.conn.cancel();
            slot.closing = true;
        }
        if command_running {
            // ABOR may be sent while the transfer command's reply is outstanding (RFC 959
            // §4.1.3); under TLS it goes in-band (RFC 4217 §14).
            self.send_raw_command(&Command::Abor);
            if self.awaiting.is_none() {
                // The final reply already came; only the ABOR's own reply is due.
                self.awaiting = Some(super::Sent::Abor);
            }
            self.arm_reply_timer();
        } else if self.awaiting.is_none() {
            self.drive();
        }
        Ok(())
    }

    fn transfer_mut(&mut self, op: OpId) -> Result<&mut Transfer, UsageError> {
        if self.ended.is_some() {
            return Err(UsageError::Closed);
        }
        match self.ops.iter_mut().find(|queued| queued.id == op) {
            Some(Op {
                kind: OpKind::Transfer(transfer),
                ..
            }) => Ok(transfer),
            Some(_) => Err(UsageError::WrongCall("not a transfer")),
            None => Err(UsageError::UnknownId),
        }
    }

    pub(super) fn close_data_channel(&mut self, id: crate::io::DataId) {
        self.io.push_back(IoRequest::Close {
            channel: Channel::Data(id),
        });
    }
}

/// The verb of a transfer command and the direction its data flows (seen from the client);
/// `None` for any other command.
fn transfer_shape(command: &Command) -> Option<(Verb, DataDirection)> {
    use DataDirection::{Receive, Send};
    Some(match command {
        Command::Retr(_) => (Verb::Retr, Receive),
        Command::List(_) => (Verb::List, Receive),
        Command::Nlst(_) => (Verb::Nlst, Receive),
        Command::Mlsd(_) => (Verb::Mlsd, Receive),
        Command::Stor(_) => (Verb::Stor, Send),
        Command::Appe(_) => (Verb::Appe, Send),
        Command::Stou => (Verb::Stou, Send),
        _ => return None,
    })
}
