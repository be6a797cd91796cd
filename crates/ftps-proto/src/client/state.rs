//! All transitions of the client session: the control connection's replies, the operation
//! driver, and the join of a transfer's control and data sides.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::{
    AbortState, ClientError, ClientEvent, ClientSession, ClientTlsMode, Command, DataConnection,
    DataConnectionMode, DataDirection, DataProtection, DataSlot, Op, OpError, OpId, OpKind, Phase,
    ProtectionLevel, ProtocolError, Reply, ReplyCode, Sent, TlsChannel, TlsError, TlsEvent,
    TraceDirection, TransferStep, Verdict, encode_port_argument, parse_epsv_reply,
    parse_pasv_reply,
};
use super::{Completion, OpValue};
use super::{LoginStep, ProtectionStep, Verb};
use crate::codec::listing::FtpTime;
use crate::codec::reply::{quoted_pathname, size_value};
use crate::io::{Channel, IoRequest};

impl ClientSession {
    /// Every input starts here: time moves forward only (the same clamp as the server's).
    pub(super) fn enter(&mut self, now: crate::io::Instant) {
        self.now = self.now.advanced_to(now);
    }

    pub(super) fn arm_reply_timer(&mut self) {
        self.reply_deadline = Some(self.now.saturating_add(self.config.timeouts.reply));
    }

    pub(super) fn touch_data(&mut self) {
        if self.data.is_some() {
            self.data_deadline = Some(self.now.saturating_add(self.config.timeouts.data_idle));
        }
    }

    /// Queues a command line without changing what is awaited (ABOR, the fatal QUIT).
    pub(super) fn send_raw_command(&mut self, command: &Command) {
        let start = self.command_out.len();
        // Arguments were checked for CR/LF by the verbs, so encoding cannot fail; a failure
        // would only drop the command, and the reply timer then ends the session.
        let _ = command.encode(&mut self.command_out);
        if self.config.trace_control && self.command_out.len() > start {
            let encoded = &self.command_out[start..];
            let line = encoded.strip_suffix(b"\r\n").unwrap_or(encoded);
            let line = if hides_secret(command) {
                redacted(line)
            } else {
                line.to_vec()
            };
            self.events.push_back(ClientEvent::ControlLine {
                direction: TraceDirection::Sent,
                line,
            });
        }
        self.flush_commands();
    }

    /// Reports a complete reply line by line, in its wire form (code and separator rebuilt
    /// around the text the parser kept).
    fn trace_reply(&mut self, reply: &Reply) {
        if !self.config.trace_control {
            return;
        }
        let code = reply.code.get();
        let digits = [digit(code / 100), digit(code / 10 % 10), digit(code % 10)];
        let last = reply.lines.len().saturating_sub(1);
        for (index, text) in reply.lines.iter().enumerate() {
            let mut line = Vec::with_capacity(text.len() + 4);
            if index == 0 {
                line.extend_from_slice(&digits);
                line.push(if last == 0 { b' ' } else { b'-' });
            } else if index == last {
                line.extend_from_slice(&digits);
                line.push(b' ');
            }
            line.extend_from_slice(text);
            self.events.push_back(ClientEvent::ControlLine {
                direction: TraceDirection::Received,
                line,
            });
        }
    }

    fn send(&mut self, sent: Sent, command: &Command) {
        self.send_raw_command(command);
        self.awaiting = Some(sent);
        self.arm_reply_timer();
    }

    /// Hands queued command bytes to the control TLS channel once it is up.
    pub(super) fn flush_commands(&mut self) {
        let Some(tls) = &mut self.control_tls else {
            return;
        };
        if self.command_out.is_empty() || !tls.is_handshake_complete() {
            return;
        }
        match tls.write(&self.command_out) {
            Ok(n) => {
                self.command_out.drain(..n);
            }
            Err(err) => self.end(Some(ClientError::Tls(err))),
        }
    }

    /// Bytes on the control connection: through TLS when it is up, else to the reply parser.
    pub(super) fn receive_control(&mut self, bytes: &[u8]) -> usize {
        if let Some(tls) = &mut self.control_tls {
            let taken = match tls.feed(bytes) {
                Ok(n) => n,
                Err(err) => {
                    self.end(Some(ClientError::Tls(err)));
                    return bytes.len();
                }
            };
            self.pump_control_tls();
            return taken;
        }
        if self.phase == Phase::Connecting {
            return bytes.len();
        }
        self.parser.push(bytes);
        self.process_replies();
        bytes.len()
    }

    /// Runs the control TLS channel: handshake, decrypted replies, close.
    pub(super) fn pump_control_tls(&mut self) {
        loop {
            if self.ended.is_some() {
                return;
            }
            let Some(tls) = &mut self.control_tls else {
                return;
            };
            match tls.poll() {
                Ok(TlsEvent::HandshakeComplete) => {
                    let info = tls.info().cloned();
                    self.on_control_secured(info);
                }
                Ok(TlsEvent::Data(bytes)) => self.parser.push(bytes),
                Ok(TlsEvent::PeerClosed) => {}
                Ok(TlsEvent::Closed) => {
                    if self.phase == Phase::Clearing {
                        self.finish_ccc();
                        break;
                    }
                }
                Ok(TlsEvent::Idle) => break,
                Err(err) => {
                    let error = if self.phase == Phase::Clearing {
                        ClientError::ClearFailed(err)
                    } else {
                        ClientError::Tls(err)
                    };
                    self.end(Some(error));
                    return;
                }
            }
        }
        let was_clearing = self.phase == Phase::Clearing;
        self.process_replies();
        if self.phase == Phase::Clearing && !was_clearing {
            // The 200 to CCC was just read: the server's close_notify may be here already.
            self.pump_control_tls();
            return;
        }
        self.flush_commands();
    }

    /// Both close_notify alerts were exchanged after `CCC`: the bytes that followed the
    /// server's close_notify are the first plaintext, and nothing is lost or read twice.
    fn finish_ccc(&mut self) {
        let Some(mut tls) = self.control_tls.take() else {
            return;
        };
        let tail = match tls.take_plaintext() {
            Ok(tail) => tail,
            Err(err) => {
                self.end(Some(ClientError::ClearFailed(err)));
                return;
            }
        };
        // Our close_notify may still wait for transmission.
        self.cleared_tls = Some(tls);
        self.phase = Phase::Ready;
        self.reply_deadline = None;
        let reply = self
            .ccc_reply
            .take()
            .unwrap_or_else(|| Reply::new(ReplyCode::OK, Vec::new()));
        self.complete_front(Ok(reply));
        self.parser.push(&tail);
        self.process_replies();
        self.drive();
    }

    fn process_replies(&mut self) {
        // After the 234 the plaintext parser must not be read again: whatever it holds was
        // injected (checked when the upgrade started).
        while self.ended.is_none() && self.phase != Phase::Handshaking {
            match self.parser.next_reply() {
                None => break,
                Some(Ok(reply)) => {
                    self.trace_reply(&reply);
                    self.on_reply(reply);
                }
                Some(Err(err)) => self.end(Some(ClientError::Protocol(
                    ProtocolError::MalformedReply(err),
                ))),
            }
        }
    }

    fn protocol_error(&mut self, sent: Option<Sent>, reply: Reply) {
        let command = sent.map_or("nothing", Sent::name);
        self.end(Some(ClientError::Protocol(
            ProtocolError::UnexpectedReply { command, reply },
        )));
    }

    /// The one place where replies change the session.
    fn front_is_transfer(&self) -> bool {
        matches!(
            self.ops.front(),
            Some(Op {
                kind: OpKind::Transfer(_),
                ..
            })
        )
    }

    fn front_is_protection_switch(&self) -> bool {
        matches!(
            self.ops.front(),
            Some(Op {
                kind: OpKind::Protection { .. },
                ..
            })
        )
    }

    /// A reply to the `PBSZ` or `PROT` of [`set_data_protection`](Self::set_data_protection).
    /// Only the `200` to `PROT` changes the level, so a refusal at either step leaves data
    /// connections exactly as they were (never clear by accident, never private without the
    /// server's consent).
    fn on_protection_reply(&mut self, sent: Sent, reply: Reply, positive: bool) {
        let Some(Op {
            kind: OpKind::Protection { level, step },
            ..
        }) = self.ops.front_mut()
        else {
            return;
        };
        if !positive {
            self.complete_front(Err(OpError::Rejected { reply }));
            return;
        }
        if sent == Sent::Pbsz {
            *step = Some(ProtectionStep::Prot);
            return;
        }
        let level = *level;
        self.data_private = level == DataProtection::Private;
        // Another login on this session asks for the level in force now.
        self.login_protection = level;
        self.complete_front(Ok(reply));
    }

    fn on_reply(&mut self, reply: Reply) {
        // 421 may answer any command: the server is going away (RFC 959 §5.4).
        if reply.code == ReplyCode::CLOSING {
            self.end(Some(ClientError::ServiceClosing { reply }));
            return;
        }
        let Some(sent) = self.awaiting else {
            // RFC 959 has no spontaneous replies.
            self.protocol_error(None, reply);
            return;
        };
        if sent == Sent::Auth {
            self.awaiting = None;
            self.reply_deadline = None;
            self.on_auth_reply(reply);
            return;
        }
        if sent == Sent::SyncNoop && matches!(reply.code.get(), 225 | 226) {
            // The stray second reply of an ABOR sequence.
            return;
        }
        let verdict = sent.verdict(reply.code);
        match verdict {
            Verdict::Preliminary => {
                if let Sent::Transfer(_) = sent {
                    self.on_transfer_preliminary(reply);
                } else {
                    // 120: the greeting comes later.
                    self.arm_reply_timer();
                }
                return;
            }
            Verdict::Unexpected => {
                let op_level = matches!(
                    sent,
                    Sent::User
                        | Sent::Pass
                        | Sent::Acct
                        | Sent::Type(_)
                        | Sent::Epsv
                        | Sent::Pasv
                        | Sent::Eprt
                        | Sent::Port
                        | Sent::Rest
                        | Sent::Transfer(_)
                        | Sent::Simple(_)
                        | Sent::Rnfr
                        | Sent::Rnto
                ) || (matches!(sent, Sent::Pbsz | Sent::Prot)
                    && self.front_is_protection_switch());
                // An unlisted 2yz fails the operation; an unexpected 1yz, 3yz or 6yz means
                // the server's state differs from ours: the session cannot go on safely.
                if !(op_level && reply.code.is_completion()) {
                    self.protocol_error(Some(sent), reply);
                    return;
                }
                self.awaiting = None;
                self.reply_deadline = None;
                self.fail_front(OpError::UnexpectedReply {
                    command: sent.name(),
                    reply,
                });
                self.drive();
                return;
            }
            Verdict::Positive | Verdict::Negative => {}
        }
        self.awaiting = None;
        self.reply_deadline = None;
        let positive = verdict == Verdict::Positive;
        match sent {
            Sent::Greeting => self.on_greeting(reply, positive),
            Sent::Auth => {}
            Sent::Feat => self.on_feat(&reply, positive),
            Sent::Pbsz | Sent::Prot if self.front_is_protection_switch() => {
                self.on_protection_reply(sent, reply, positive);
            }
            Sent::User | Sent::Pass | Sent::Acct | Sent::Pbsz | Sent::Prot | Sent::OptsUtf8 => {
                self.on_login_reply(sent, reply, positive)
            }
            Sent::Type(transfer_type) if !self.front_is_transfer() => {
                // The TYPE sent before a SIZE.
                if positive {
                    self.current_type = Some(transfer_type);
                } else {
                    self.complete_front(Err(OpError::Rejected { reply }));
                }
            }
            Sent::Type(_)
            | Sent::Epsv
            | Sent::Pasv
            | Sent::Eprt
            | Sent::Port
            | Sent::Rest
            | Sent::Transfer(_) => self.on_transfer_reply(sent, reply, positive),
            Sent::Simple(Verb::Ccc) if positive => {
                // spec T29: close_notify both ways, then plaintext on the same connection.
                if let Some(tls) = &mut self.control_tls {
                    if let Err(err) = tls.close() {
                        self.end(Some(ClientError::ClearFailed(err)));
                        return;
                    }
                }
                self.phase = Phase::Clearing;
                self.ccc_reply = Some(reply);
                self.arm_reply_timer();
                return;
            }
            Sent::Simple(_) | Sent::Raw | Sent::Rnto => {
                let result = if positive {
                    Ok(reply)
                } else {
                    Err(OpError::Rejected { reply })
                };
                self.complete_front(result);
            }
            Sent::Rnfr => {
                if positive {
                    if let Some(Op {
                        kind: OpKind::Rename { sent, .. },
                        ..
                    }) = self.ops.front_mut()
                    {
                        *sent = Some(Sent::Rnfr);
                    }
                } else {
                    self.complete_front(Err(OpError::Rejected { reply }));
                }
            }
            Sent::Quit => {
                let result = if positive {
                    Ok(reply)
                } else {
                    Err(OpError::Rejected { reply })
                };
                self.complete_front(result);
                self.end_orderly();
            }
            Sent::Abor => {
                // 225/226, or a refusal: either way the aborted transfer is over.
                let result = self.abort_result();
                self.complete_front(Err(result));
            }
            Sent::SyncNoop => {}
        }
        self.drive();
    }

    fn on_greeting(&mut self, reply: Reply, positive: bool) {
        if !positive {
            self.protocol_error(Some(Sent::Greeting), reply);
            return;
        }
        self.events
            .push_back(ClientEvent::Connected { greeting: reply });
        match self.config.tls_mode {
            // Try AUTH TLS whatever the greeting or a FEAT said: both can be forged.
            ClientTlsMode::Explicit | ClientTlsMode::ExplicitIfAvailable => {
                self.phase = Phase::Auth;
                self.send(Sent::Auth, &Command::Auth(b"TLS".to_vec()));
            }
            ClientTlsMode::Implicit | ClientTlsMode::Plaintext => self.send_feat(),
        }
    }

    fn send_feat(&mut self) {
        self.phase = Phase::Feat;
        self.send(Sent::Feat, &Command::Feat);
    }

    /// Only an exact 234 followed by a successful handshake counts (checklist T07, §9.3).
    fn on_auth_reply(&mut self, reply: Reply) {
        if reply.code == ReplyCode::AUTH_OK {
            let buffered = self.parser.buffered_len();
            match TlsChannel::client_after_auth(
                Arc::clone(&self.tls_config),
                self.config.server_name.clone(),
                buffered,
                self.config.limits.tls,
            ) {
                Ok(tls) => {
                    self.control_tls = Some(tls);
                    self.phase = Phase::Handshaking;
                    self.connect_deadline =
                        Some(self.now.saturating_add(self.config.timeouts.connect));
                }
                Err(TlsError::BytesBeforeHandshake { count }) => {
                    self.end(Some(ClientError::Protocol(
                        ProtocolError::PlaintextAfterAuth { count },
                    )));
                }
                Err(err) => self.end(Some(ClientError::Tls(err))),
            }
            return;
        }
        if self.config.tls_mode == ClientTlsMode::ExplicitIfAvailable && reply.code.is_negative() {
            // The caller explicitly accepted plaintext when TLS is refused (T08).
            self.send_feat();
            return;
        }
        // 334, another 2yz, 4yz, 5yz, or a 1yz: TLS is not active. QUIT in plaintext and fail
        // (checklist T07, T08, T47, §9.3). No credential was sent.
        self.command_out.clear();
        self.send_raw_command(&Command::Quit);
        self.end(Some(ClientError::TlsRefused { reply }));
    }

    fn on_control_secured(&mut self, info: Option<crate::tls::TlsInfo>) {
        self.connect_deadline = None;
        if let Some(info) = info {
            self.events.push_back(ClientEvent::Secured { info });
        }
        if self.phase == Phase::Handshaking {
            // Ask FEAT again under TLS: only this answer is trustworthy (T31).
            self.send_feat();
        } else {
            // Implicit: the greeting comes inside TLS now.
            self.arm_reply_timer();
        }
        if self.config.tls_mode == ClientTlsMode::Implicit
            && self.login_protection == DataProtection::Private
        {
            // Implicit FTPS implies PROT P (MS-FTPS); PBSZ/PROT are still sent after login.
            self.data_private = true;
        }
    }

    fn on_feat(&mut self, reply: &Reply, positive: bool) {
        let mut features = Vec::new();
        if positive && reply.lines.len() > 2 {
            for line in &reply.lines[1..reply.lines.len() - 1] {
                let trimmed = line.trim_ascii();
                if !trimmed.is_empty() {
                    features.push(trimmed.to_vec());
                }
            }
        }
        self.utf8 = features.iter().any(|feature| {
            feature
                .split(|&byte| byte == b' ')
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case(b"UTF8"))
        });
        self.features.clone_from(&features);
        self.phase = Phase::Ready;
        self.events.push_back(ClientEvent::Ready { features });
    }

    fn on_login_reply(&mut self, sent: Sent, reply: Reply, positive: bool) {
        let secure = self.is_secure();
        let wants_private = self.login_protection == DataProtection::Private;
        let implicit = self.config.tls_mode == ClientTlsMode::Implicit;
        let utf8 = self.utf8;
        let Some(Op {
            kind:
                OpKind::Login {
                    account,
                    step,
                    reply: saved,
                    ..
                },
            ..
        }) = self.ops.front_mut()
        else {
            return;
        };
        let after_login = if secure {
            Some(LoginStep::Pbsz)
        } else if utf8 {
            Some(LoginStep::Utf8)
        } else {
            None
        };
        let code = reply.code.get();
        match sent {
            Sent::User | Sent::Pass | Sent::Acct => {
                if !positive {
                    self.complete_front(Err(OpError::Rejected { reply }));
                    return;
                }
                match code {
                    331 => *step = Some(LoginStep::Pass),
                    332 => {
                        if account.is_some() {
                            *step = Some(LoginStep::Acct);
                        } else {
                            self.complete_front(Err(OpError::AccountRequired));
                            return;
                        }
                    }
                    // 230, 232 (security exchange), 202 (not needed).
                    _ => {
                        *saved = Some(reply.clone());
                        self.logged_in = true;
                        *step = after_login;
                    }
                }
            }
            Sent::Pbsz | Sent::Prot => {
                if !positive && wants_private && !implicit {
                    // Never transfer in clear when private data was required (§9.3).
                    self.end(Some(ClientError::DataProtectionRefused { reply }));
                    return;
                }
                if sent == Sent::Pbsz {
                    *step = Some(LoginStep::Prot);
                } else {
                    *step = utf8.then_some(LoginStep::Utf8);
                    if positive {
                        self.data_private = wants_private;
                    }
                }
            }
            // OPTS UTF8 ON is a courtesy: a refusal changes nothing.
            _ => *step = None,
        }
        let finished = step.is_none();
        if finished {
            let final_reply = saved.take().unwrap_or(reply);
            if let Some(op) = self.ops.front().map(|op| op.id) {
                self.events.push_back(ClientEvent::LoggedIn { op });
            }
            self.complete_front(Ok(final_reply));
        }
    }

    fn on_transfer_preliminary(&mut self, reply: Reply) {
        let Some(Op {
            id,
            kind: OpKind::Transfer(transfer),
        }) = self.ops.front_mut()
        else {
            return;
        };
        // The final reply may take as long as the data takes: the data idle timer rules now.
        self.reply_deadline = None;
        transfer.accepted = true;
        if transfer.abort == AbortState::None {
            let op = *id;
            self.events
                .push_back(ClientEvent::Preliminary { op, reply });
        }
        self.touch_data();
        self.maybe_start_data();
    }

    fn on_transfer_reply(&mut self, sent: Sent, reply: Reply, positive: bool) {
        let peer = self.config.peer;
        let trust_pasv = self.config.trust_pasv_address;
        let Some(Op {
            kind: OpKind::Transfer(transfer),
            ..
        }) = self.ops.front_mut()
        else {
            return;
        };
        let code = reply.code.get();
        match sent {
            Sent::Type(transfer_type) => {
                if positive {
                    self.current_type = Some(transfer_type);
                    transfer.step = TransferStep::Setup;
                } else {
                    transfer.failure = Some(OpError::Rejected { reply });
                }
            }
            Sent::Epsv => {
                if positive {
                    match parse_epsv_reply(&reply.text()) {
                        // E04: connect to the control peer's address.
                        Ok(port) => self.open_passive(SocketAddr::new(peer.ip(), port)),
                        Err(err) => transfer.failure = Some(OpError::BadPassiveAddress(err)),
                    }
                } else if matches!(code, 500 | 502) {
                    // EPSV unknown: PASV from now on (E07).
                    self.epsv_refused = true;
                } else {
                    transfer.failure = Some(OpError::Rejected { reply });
                }
            }
            Sent::Pasv => {
                if positive {
                    match parse_pasv_reply(&reply.text()) {
                        Ok(offered) => {
                            // §3.9: by default only the port of a 227 is used.
                            let target = if trust_pasv {
                                SocketAddr::V4(offered)
                            } else {
                                SocketAddr::new(peer.ip(), offered.port())
                            };
                            self.open_passive(target);
                        }
                        Err(err) => transfer.failure = Some(OpError::BadPassiveAddress(err)),
                    }
                } else {
                    transfer.failure = Some(OpError::Rejected { reply });
                }
            }
            Sent::Eprt | Sent::Port => {
                if positive {
                    transfer.step = TransferStep::Rest;
                } else if sent == Sent::Eprt && matches!(code, 500 | 502) {
                    if let Some(SocketAddr::V4(v4)) = transfer.listen {
                        self.eprt_refused = true;
                        let mut argument = Vec::new();
                        encode_port_argument(v4, &mut argument);
                        self.send(Sent::Port, &Command::Port(argument));
                    } else {
                        transfer.failure = Some(OpError::Rejected { reply });
                    }
                } else {
                    transfer.failure = Some(OpError::Rejected { reply });
                }
            }
            Sent::Rest => {
                if positive {
                    transfer.step = TransferStep::Command;
                } else {
                    transfer.failure = Some(OpError::Rejected { reply });
                }
            }
            Sent::Transfer(_) => {
                if transfer.abort == AbortState::Sent {
                    if positive {
                        // 226 for the transfer or for the ABOR: which one is unknowable, so a
                        // NOOP finds the end of any stray second reply.
                        let result = self.abort_result();
                        self.complete_front(Err(result));
                        self.send(Sent::SyncNoop, &Command::Noop);
                    } else {
                        // 426 (or similar): the ABOR's own reply follows. When the session
                        // aborted because the data connection failed, a refusal other than
                        // 426 says why the server broke it off (552: disk full, 451: local
                        // error), which the application needs more than the reset it caused.
                        if code != 426 {
                            if let Some(OpError::Data(_)) = transfer.abort_reason {
                                transfer.abort_reason = Some(OpError::Rejected { reply });
                            }
                        }
                        self.awaiting = Some(Sent::Abor);
                        self.arm_reply_timer();
                    }
                    return;
                }
                if positive {
                    transfer.final_reply = Some(reply);
                    transfer.accepted = true;
                    if transfer.data_result.is_none() {
                        // Waiting for the data side only now.
                        self.touch_data();
                        self.maybe_start_data();
                    }
                } else {
                    transfer.failure = Some(OpError::Rejected { reply });
                }
                self.settle();
            }
            _ => {}
        }
    }

    /// Passive mode: the data connection goes to `addr`.
    fn open_passive(&mut self, addr: SocketAddr) {
        let id = self.new_data_slot();
        self.io.push_back(IoRequest::Connect {
            channel: Channel::Data(id),
            addr,
        });
        self.connect_deadline = Some(self.now.saturating_add(self.config.timeouts.connect));
        if let Some(Op {
            kind: OpKind::Transfer(transfer),
            ..
        }) = self.ops.front_mut()
        {
            transfer.step = TransferStep::Rest;
        }
    }

    /// Makes the data connection for the front transfer.
    fn new_data_slot(&mut self) -> crate::io::DataId {
        let id = crate::io::DataId::new(self.next_data);
        self.next_data = self.next_data.wrapping_add(1);
        if let Some(old) = self.data.take() {
            self.close_data_channel(old.conn.id());
        }
        let (op, direction, finish) = match self.ops.front_mut() {
            Some(Op {
                id: op,
                kind: OpKind::Transfer(transfer),
            }) => {
                transfer.data = Some(id);
                (*op, transfer.direction, transfer.finish_requested)
            }
            _ => (OpId::new(0), DataDirection::Receive, false),
        };
        let mut conn = DataConnection::new(id, direction, self.config.limits.data_buffer);
        if finish {
            conn.finish();
        }
        self.data = Some(DataSlot {
            op,
            conn,
            closing: false,
            readable_announced: false,
        });
        id
    }

    /// Starts the data connection once its socket is up and the transfer command went out
    /// (servers accept the data connection only after it; T34). Under TLS it waits further,
    /// for the server's 1yz: a refused command (550) then costs no ClientHello, which would
    /// spend one of the control session's single-use TLS 1.3 tickets on a connection the
    /// server never reads, and a later data connection could then not resume. In RFC 4217's
    /// diagrams (§12.5-§12.7, checklist T34) the data handshake follows the 150/125, and the
    /// server must not hold the 1yz back for it; curl and Python's ftplib wait for it too.
    pub(super) fn maybe_start_data(&mut self) {
        let private = self.data_private;
        let (running, accepted) = match self.ops.front() {
            Some(Op {
                id,
                kind: OpKind::Transfer(transfer),
            }) => (
                transfer.step == TransferStep::Running
                    && self.data.as_ref().is_some_and(|slot| slot.op == *id),
                transfer.accepted,
            ),
            _ => (false, false),
        };
        let Some(slot) = &mut self.data else {
            return;
        };
        if !running || slot.closing || !slot.conn.is_connected() || slot.conn.is_started() {
            return;
        }
        if private && !accepted {
            return;
        }
        if private {
            // The FTP client is the TLS client on every data connection (T32), with the
            // control connection's config and name so the session resumes (T40).
            match TlsChannel::client(
                Arc::clone(&self.tls_config),
                self.config.server_name.clone(),
                self.config.limits.tls,
            ) {
                Ok(tls) => slot.conn.start_tls(tls),
                Err(_) => slot.conn.cancel(),
            }
        } else {
            slot.conn.start_clear();
        }
    }

    /// Sends the next command of the front operation when nothing is in flight.
    pub(super) fn drive(&mut self) {
        loop {
            if self.ended.is_some() || self.awaiting.is_some() || self.phase != Phase::Ready {
                return;
            }
            let secure_private = self.data_private;
            let control_secure = self.is_secure();
            // SIZE counts the octets a transfer would send in the current TYPE (RFC 3659 §4),
            // and some servers refuse it in TYPE A: send the file-transfer TYPE first.
            let type_for_size =
                (self.current_type != Some(self.transfer_type)).then_some(self.transfer_type);
            let Some(op) = self.ops.front_mut() else {
                return;
            };
            let action: Option<(Sent, Command)> = match &mut op.kind {
                OpKind::Login {
                    user,
                    password,
                    account,
                    step,
                    ..
                } => match step.take() {
                    Some(LoginStep::User) => Some((Sent::User, Command::User(user.clone()))),
                    Some(LoginStep::Pass) => Some((Sent::Pass, Command::Pass(password.clone()))),
                    Some(LoginStep::Acct) => Some((
                        Sent::Acct,
                        Command::Acct(account.clone().unwrap_or_default()),
                    )),
                    Some(LoginStep::Pbsz) => Some((Sent::Pbsz, Command::Pbsz(0))),
                    Some(LoginStep::Prot) => {
                        Some((Sent::Prot, Command::Prot(wire_level(self.login_protection))))
                    }
                    Some(LoginStep::Utf8) => {
                        Some((Sent::OptsUtf8, Command::Opts(b"UTF8 ON".to_vec())))
                    }
                    None => None,
                },
                OpKind::Simple { command, .. }
                    if matches!(command, Command::Size(_)) && type_for_size.is_some() =>
                {
                    type_for_size.map(|wanted| (Sent::Type(wanted), Command::Type(wanted)))
                }
                OpKind::Simple { command, sent } | OpKind::Raw { command, sent } => {
                    if *sent {
                        None
                    } else {
                        *sent = true;
                        let tag = match command.verb() {
                            Some(verb) if !matches!(command, Command::Unknown { .. }) => {
                                Sent::Simple(verb)
                            }
                            _ => Sent::Raw,
                        };
                        Some((tag, command.clone()))
                    }
                }
                OpKind::Rename { from, to, sent } => match sent {
                    None => {
                        *sent = Some(Sent::Rnto);
                        Some((Sent::Rnfr, Command::Rnfr(from.clone())))
                    }
                    Some(Sent::Rnfr) => {
                        *sent = Some(Sent::Quit);
                        Some((Sent::Rnto, Command::Rnto(to.clone())))
                    }
                    Some(_) => None,
                },
                OpKind::Quit { sent } => {
                    if *sent {
                        None
                    } else {
                        *sent = true;
                        Some((Sent::Quit, Command::Quit))
                    }
                }
                OpKind::Ccc { sent } => {
                    if *sent {
                        None
                    } else if self
                        .control_tls
                        .as_ref()
                        .is_none_or(|tls| !tls.is_handshake_complete())
                    {
                        self.complete_front(Err(OpError::NotSecured));
                        continue;
                    } else {
                        *sent = true;
                        Some((Sent::Simple(Verb::Ccc), Command::Ccc))
                    }
                }
                OpKind::Protection { level, step } => match step.take() {
                    Some(ProtectionStep::Pbsz) if !control_secure => {
                        // PBSZ/PROT belong to the TLS exchange on the control connection
                        // (RFC 2228 §3, RFC 4217 §8): a fallback to plaintext or a CCC
                        // queued before the switch leaves nothing to switch safely.
                        self.complete_front(Err(OpError::NotSecured));
                        continue;
                    }
                    // PBSZ again although the login sent it: RFC 4217 §9 wants PBSZ before
                    // every PROT, and the login's PBSZ may have been refused (implicit FTPS).
                    Some(ProtectionStep::Pbsz) => Some((Sent::Pbsz, Command::Pbsz(0))),
                    Some(ProtectionStep::Prot) => {
                        Some((Sent::Prot, Command::Prot(wire_level(*level))))
                    }
                    None => None,
                },
                OpKind::Transfer(_) => {
                    if self.drive_transfer(secure_private) {
                        continue;
                    }
                    return;
                }
            };
            if let Some((sent, command)) = action {
                if matches!(&command, Command::Unknown { verb, .. } if verb.eq_ignore_ascii_case(b"TYPE"))
                {
                    // A raw TYPE changes the server's state behind our back: the next
                    // transfer or SIZE sends its own TYPE again.
                    self.current_type = None;
                }
                self.send(sent, &command);
            }
            return;
        }
    }

    /// One step of the front transfer. Returns true when the loop should look again.
    fn drive_transfer(&mut self, _private: bool) -> bool {
        let passive = self.config.data_mode == DataConnectionMode::Passive;
        let epsv_refused = self.epsv_refused;
        let current_type = self.current_type;
        let local_ip = self
            .local_addr
            .map_or(self.config.peer.ip(), |addr| addr.ip());
        let data_failed = self
            .data
            .as_ref()
            .and_then(|slot| slot.conn.result().cloned())
            .and_then(Result::err);
        let mlsd_offered = self.mlsd_offered();
        let Some(Op {
            kind: OpKind::Transfer(transfer),
            ..
        }) = self.ops.front_mut()
        else {
            return false;
        };
        if transfer.pick_listing {
            // `list_entries`: the listing the server's trusted FEAT says it has.
            transfer.pick_listing = false;
            if mlsd_offered {
                let path = match &transfer.command {
                    Command::List(path) => path.clone(),
                    _ => None,
                };
                transfer.command = Command::Mlsd(path);
                transfer.verb = Verb::Mlsd;
                transfer.listing = Some(super::ListingKind::Mlsd);
            }
        }
        if transfer.step != TransferStep::Running {
            if transfer.abort == AbortState::Requested {
                self.complete_front(Err(OpError::Aborted));
                return true;
            }
            if let Some(failure) = transfer.failure.take() {
                self.complete_front(Err(failure));
                return true;
            }
        }
        match transfer.step {
            TransferStep::Start => match transfer.transfer_type {
                Some(wanted) if current_type != Some(wanted) => {
                    self.send(Sent::Type(wanted), &Command::Type(wanted));
                    false
                }
                _ => {
                    transfer.step = TransferStep::Setup;
                    true
                }
            },
            TransferStep::Setup => {
                if passive {
                    if epsv_refused {
                        self.send(Sent::Pasv, &Command::Pasv);
                    } else {
                        self.send(Sent::Epsv, &Command::Epsv(None));
                    }
                } else {
                    transfer.step = TransferStep::AwaitListen;
                    let id = self.new_data_slot();
                    self.io.push_back(IoRequest::Listen {
                        data: id,
                        ip: local_ip,
                    });
                }
                false
            }
            TransferStep::AwaitListen | TransferStep::Running => false,
            TransferStep::Rest => {
                match transfer.rest {
                    Some(offset) => self.send(Sent::Rest, &Command::Rest(offset)),
                    None => {
                        transfer.step = TransferStep::Command;
                        return true;
                    }
                }
                false
            }
            TransferStep::Command => {
                if let Some(err) = data_failed {
                    // The data connection failed before the command went out: nothing to
                    // resynchronise on the control connection.
                    self.complete_front(Err(OpError::Data(err)));
                    return true;
                }
                transfer.step = TransferStep::Running;
                let verb = transfer.verb;
                let command = transfer.command.clone();
                self.send(Sent::Transfer(verb), &command);
                self.maybe_start_data();
                false
            }
        }
    }

    /// Joins a running transfer's control and data sides (either order).
    pub(super) fn settle(&mut self) {
        let Some(Op {
            id,
            kind: OpKind::Transfer(transfer),
        }) = self.ops.front_mut()
        else {
            return;
        };
        if transfer.step != TransferStep::Running || transfer.abort != AbortState::None {
            return;
        }
        let op = *id;
        if let Some(failure) = transfer.failure.take() {
            self.complete_front(Err(failure));
            self.drive();
            return;
        }
        let Some(final_reply) = transfer.final_reply.clone() else {
            return;
        };
        match transfer.data_result.clone() {
            None => {}
            Some(Err(err)) => {
                self.complete_front(Err(OpError::Data(err)));
                self.drive();
            }
            Some(Ok(())) => {
                let bytes = self
                    .data
                    .as_ref()
                    .map_or(0, |slot| match transfer.direction {
                        DataDirection::Receive => slot.conn.bytes_received(),
                        DataDirection::Send => slot.conn.bytes_sent(),
                    });
                let resumed = transfer.resumed;
                let _ = op;
                self.complete_front_with(Ok(final_reply), OpValue::Transfer { bytes, resumed });
                self.drive();
            }
        }
    }

    /// Why an aborted transfer failed: the application's abort, or the data failure that
    /// made the session abort it.
    fn abort_result(&mut self) -> OpError {
        match self.ops.front_mut() {
            Some(Op {
                kind: OpKind::Transfer(transfer),
                ..
            }) => transfer.abort_reason.take().unwrap_or(OpError::Aborted),
            _ => OpError::Aborted,
        }
    }

    /// The data connection of the running transfer failed before its final reply: ABOR makes
    /// the server end the transfer now instead of whenever it notices (RFC 959 §4.1.3).
    pub(super) fn abort_after_data_failure(&mut self, error: crate::data::DataError) {
        let Some(Op {
            kind: OpKind::Transfer(transfer),
            ..
        }) = self.ops.front_mut()
        else {
            return;
        };
        if transfer.step != TransferStep::Running
            || transfer.abort != AbortState::None
            || transfer.final_reply.is_some()
            || transfer.failure.is_some()
        {
            return;
        }
        transfer.abort_reason = Some(OpError::Data(error));
        if self.awaiting.is_some() {
            transfer.abort = AbortState::Sent;
        } else {
            self.awaiting = Some(Sent::Abor);
        }
        if let Some(slot) = &mut self.data {
            slot.closing = true;
        }
        self.send_raw_command(&Command::Abor);
        self.arm_reply_timer();
    }

    /// Ends the front operation with `result` (and its data connection); a positive reply's
    /// value is parsed from it (the one place each verb's reply is understood).
    pub(super) fn complete_front(&mut self, result: Result<Reply, OpError>) {
        let value = match (&result, self.ops.front()) {
            (Ok(reply), Some(op)) => op_value(&op.kind, reply),
            _ => Ok(OpValue::None),
        };
        match value {
            Ok(value) => self.complete_front_with(result, value),
            Err(error) => self.complete_front_with(Err(error), OpValue::None),
        }
    }

    /// Ends the front operation with `result` and, when it succeeded, `value`.
    pub(super) fn complete_front_with(&mut self, result: Result<Reply, OpError>, value: OpValue) {
        let Some(op) = self.ops.pop_front() else {
            return;
        };
        let login_failed = matches!(op.kind, OpKind::Login { .. }) && result.is_err();
        if let Some(slot) = self.data.as_mut().filter(|slot| slot.op == op.id) {
            if slot.conn.result().is_none() {
                slot.conn.cancel();
            }
            slot.closing = true;
        }
        self.data_deadline = None;
        self.complete_event(op.id, result.map(|reply| Completion { reply, value }));
        if login_failed {
            self.fail_ops_after_failed_login();
        }
    }

    /// A login failed: the operations queued behind it would run unauthenticated (a RETR
    /// after a 530 must never be sent). They fail with [`OpError::LoginFailed`] up to the next
    /// login, `QUIT` or raw command (the application speaking FTP itself, e.g. its own
    /// `USER`/`PASS`), which run as queued.
    fn fail_ops_after_failed_login(&mut self) {
        while let Some(op) = self.ops.front() {
            if matches!(
                op.kind,
                OpKind::Login { .. } | OpKind::Quit { .. } | OpKind::Raw { .. }
            ) {
                break;
            }
            if let Some(op) = self.ops.pop_front() {
                self.complete_event(op.id, Err(OpError::LoginFailed));
            }
        }
    }

    pub(super) fn fail_front(&mut self, error: OpError) {
        self.complete_front(Err(error));
    }

    pub(super) fn complete_event(&mut self, op: OpId, result: Result<Completion, OpError>) {
        self.events.push_back(ClientEvent::Completed { op, result });
    }

    /// True when the trusted FEAT reply lists `MLST` (so `MLSD` exists, RFC 3659 §7.8).
    pub(super) fn mlsd_offered(&self) -> bool {
        self.features
            .iter()
            .any(|line| line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"MLST"))
    }

    /// Orderly end after QUIT: close_notify on the control connection, then close it.
    fn end_orderly(&mut self) {
        if let Some(tls) = &mut self.control_tls {
            if tls.error().is_none() {
                let _ = tls.close();
            }
        }
        self.end(None);
    }

    /// Ends the session (sticky): every pending operation fails, every socket is closed, and
    /// the drain reports `Closed` once, after what was already queued.
    pub(super) fn end(&mut self, error: Option<ClientError>) {
        if self.ended.is_some() {
            return;
        }
        self.phase = Phase::Ended;
        self.awaiting = None;
        self.connect_deadline = None;
        self.reply_deadline = None;
        self.data_deadline = None;
        while let Some(op) = self.ops.pop_front() {
            self.complete_event(op.id, Err(OpError::SessionClosed));
        }
        if let Some(mut slot) = self.data.take() {
            slot.conn.cancel();
            self.close_data_channel(slot.conn.id());
        }
        self.io.push_back(IoRequest::Close {
            channel: Channel::Control,
        });
        self.ended = Some(error);
    }
}

/// What a successful operation yields, parsed from its final reply; an error when the reply
/// lacks what the command promises.
fn op_value(kind: &OpKind, reply: &Reply) -> Result<OpValue, OpError> {
    let unparsable = |command| OpError::UnparsableReply {
        command,
        reply: reply.clone(),
    };
    let OpKind::Simple { command, .. } = kind else {
        return Ok(OpValue::None);
    };
    Ok(match command {
        Command::Pwd => OpValue::Path(quoted_pathname(reply).ok_or_else(|| unparsable("PWD"))?),
        // A server may answer MKD with 250 and no name (RFC 959 allows only 257, but real
        // servers differ): the directory exists either way.
        Command::Mkd(_) => quoted_pathname(reply).map_or(OpValue::None, OpValue::Path),
        Command::Size(_) => OpValue::Size(size_value(reply).ok_or_else(|| unparsable("SIZE"))?),
        Command::Mdtm(_) => {
            OpValue::Modified(FtpTime::parse(reply.first_line()).map_err(|_| unparsable("MDTM"))?)
        }
        _ => OpValue::None,
    })
}

/// The `PROT` argument for a protection level.
fn wire_level(level: DataProtection) -> ProtectionLevel {
    match level {
        DataProtection::Private => ProtectionLevel::Private,
        DataProtection::Clear => ProtectionLevel::Clear,
    }
}

/// `PASS` and `ACCT` carry secrets: their argument never reaches a trace event, also when
/// sent as a raw command.
fn hides_secret(command: &Command) -> bool {
    match command {
        Command::Pass(_) | Command::Acct(_) => true,
        Command::Unknown { verb, .. } => {
            verb.eq_ignore_ascii_case(b"PASS") || verb.eq_ignore_ascii_case(b"ACCT")
        }
        _ => false,
    }
}

/// The verb as encoded, then ` ****` in place of the argument (whether there was one or not,
/// so the trace does not tell an empty password either).
fn redacted(line: &[u8]) -> Vec<u8> {
    let verb_len = line
        .iter()
        .position(|&byte| byte == b' ')
        .unwrap_or(line.len());
    let mut out = Vec::with_capacity(verb_len + 5);
    out.extend_from_slice(&line[..verb_len]);
    out.extend_from_slice(b" ****");
    out
}

/// The ASCII digit of `value % 10`.
fn digit(value: u16) -> u8 {
    // The remainder is below 10, so the narrowing keeps it whole.
    b'0' + (value % 10) as u8
}
