//! Security and login: PASS, AUTH, PROT, CCC, the control TLS channel, and closing the session.

use super::{
    ClientCertificates, MLST_FACTS, Pending, Refusal, Request, ServerError, ServerEvent,
    ServerSession, Wait,
};
use crate::codec::command::{Password, ProtectionLevel};
use crate::tls::{TlsChannel, TlsError, TlsEvent};

impl ServerSession {
    pub(super) fn pass(&mut self, password: Password) {
        if self.logged_in {
            self.reply(202, b"Already logged in.");
            return;
        }
        let Some(user) = self.user.take() else {
            self.reply(503, b"Login with USER first.");
            return;
        };
        if self.config.client_certificates == ClientCertificates::Required
            && self.client_certificate.is_none()
        {
            self.refuse(Refusal::ClientCertificateRequired);
            self.login_failed();
            return;
        }
        self.request(
            Request::Login {
                user,
                password,
                client_certificate: self.client_certificate.clone(),
                host: self.host.clone(),
            },
            Pending::Login,
        );
    }

    pub(super) fn login_failed(&mut self) {
        self.failed_logins += 1;
        self.user = None;
        let close = self.failed_logins >= self.config.limits.max_failed_logins;
        // The delay is a deadline, not a clock read: the reply goes out at `handle_timeout`.
        self.wait = Wait::LoginDelay {
            until: self
                .now
                .saturating_add(self.config.timeouts.failed_login_delay),
            close,
        };
        if self.config.timeouts.failed_login_delay.is_zero() {
            let now = self.now;
            self.handle_timeout(now);
        }
    }

    /// Everything RFC 4217 §4 resets on AUTH (HOST is kept, RFC 7151 §3.2.2).
    fn reset_after_auth(&mut self) {
        self.user = None;
        self.logged_in = false;
        self.pbsz = false;
        self.data_private = false;
        self.ascii = true;
        self.cwd = b"/".to_vec();
        self.rest = None;
        self.rnfr = None;
        self.epsv_all = false;
        self.mlst_selected = MLST_FACTS.iter().map(|f| f.to_vec()).collect();
        self.close_setup();
    }

    fn pipelined_bytes(&self) -> usize {
        let queued = self.queue.len();
        let buffered = if self.parser.has_buffered_bytes() {
            self.parser.buffered_len().max(1)
        } else {
            0
        };
        queued + buffered
    }

    pub(super) fn auth(&mut self, mechanism: &[u8]) {
        let Some(tls_config) = self.tls_config.clone() else {
            self.reply(502, b"AUTH not available.");
            return;
        };
        if self.control_tls.is_some() || self.ccc_done {
            self.reply(503, b"Already using TLS.");
            return;
        }
        let known = [&b"TLS"[..], b"TLS-C", b"SSL", b"TLS-P"]
            .iter()
            .any(|m| mechanism.eq_ignore_ascii_case(m));
        if !known {
            self.reply(504, b"Unknown AUTH mechanism.");
            return;
        }
        match TlsChannel::server_after_auth(
            tls_config,
            self.pipelined_bytes(),
            crate::tls::ResumptionPolicy::Optional,
            self.config.limits.tls,
        ) {
            Ok(tls) => {
                self.reply(234, b"AUTH TLS successful.");
                // The 234 goes out in plaintext, before anything TLS produces.
                let out = core::mem::take(&mut self.reply_out);
                self.plain_out.extend_from_slice(&out);
                self.control_tls = Some(tls);
                self.handshake_deadline =
                    Some(self.now.saturating_add(self.config.timeouts.handshake));
                self.reset_after_auth();
            }
            Err(TlsError::BytesBeforeHandshake { .. }) => {
                // Never executed, never fed to TLS (checklist §9.1).
                self.queue.clear();
                self.reply(421, b"Data after AUTH refused, closing.");
                self.close_session(Some(ServerError::PipelinedAfterSecurityChange));
            }
            Err(err) => {
                self.reply(431, b"TLS not available now.");
                self.close_session(Some(ServerError::Tls(err)));
            }
        }
    }

    pub(super) fn prot(&mut self, level: ProtectionLevel) {
        if self.control_tls.is_none() {
            self.reply(503, b"PROT needs TLS on the control connection.");
            return;
        }
        if !self.pbsz {
            self.reply(503, b"PBSZ required first.");
            return;
        }
        match level {
            ProtectionLevel::Private => {
                self.data_private = true;
                self.reply(200, b"Protection level set to P.");
            }
            ProtectionLevel::Clear if self.config.require_private_data => {
                self.refuse(Refusal::ClearDataRefused);
            }
            ProtectionLevel::Clear => {
                self.data_private = false;
                self.reply(200, b"Protection level set to C.");
            }
            ProtectionLevel::Safe | ProtectionLevel::Confidential => {
                self.reply(536, b"Only PROT C and P are supported.");
            }
        }
    }

    pub(super) fn ccc(&mut self) {
        if !self.is_secure() {
            self.reply(533, b"CCC needs TLS on the control connection.");
            return;
        }
        if !self.config.allow_ccc || !self.logged_in {
            self.refuse(Refusal::CccRefused);
            return;
        }
        if self.pipelined_bytes() > 0 {
            self.queue.clear();
            self.reply(421, b"Data after CCC refused, closing.");
            self.close_session(Some(ServerError::PipelinedAfterSecurityChange));
            return;
        }
        self.reply(200, b"Control connection will be cleared.");
        let out = core::mem::take(&mut self.reply_out);
        if let Some(tls) = &mut self.control_tls {
            let mut written = 0;
            while written < out.len() {
                match tls.write(&out[written..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => written += n,
                }
            }
            let _ = tls.close();
        }
        self.clearing = true;
    }

    pub(super) fn fail_control_tls(&mut self, err: TlsError) {
        // Handshake failure or a bad record: drop without a reply (RFC 4217 §10.1).
        self.reply_out.clear();
        self.abandon_tls = true;
        self.close_session(Some(ServerError::Tls(err)));
    }

    /// Runs the control TLS channel: handshake, decrypted commands, CCC shutdown.
    pub(super) fn pump_control(&mut self) {
        let mut failure = None;
        let mut cleared = false;
        let mut peer_closed = false;
        if let Some(tls) = &mut self.control_tls {
            loop {
                match tls.poll() {
                    Ok(TlsEvent::HandshakeComplete) => {
                        if let Some(info) = tls.info() {
                            self.client_certificate = info.peer_certificates.first().cloned();
                            self.events
                                .push_back(ServerEvent::Secured { info: info.clone() });
                        }
                    }
                    Ok(TlsEvent::Data(bytes)) => {
                        if self.clearing {
                            // Commands after CCC must come in plaintext after close_notify.
                            failure = Some(ServerError::PipelinedAfterSecurityChange);
                            break;
                        }
                        self.parser.push(bytes);
                    }
                    Ok(TlsEvent::PeerClosed) => {
                        if !self.clearing {
                            peer_closed = true;
                        }
                    }
                    Ok(TlsEvent::Closed) => {
                        if self.clearing {
                            cleared = true;
                            break;
                        }
                    }
                    Ok(TlsEvent::Idle) => break,
                    // curl's default CCC mode shuts TLS down one way: it reads our
                    // close_notify and goes on in plaintext without sending its own. After
                    // the 200 the channel is clear by agreement, so plaintext at a record
                    // boundary is the next command, not an attack (T29 leniency, as ProFTPD).
                    Err(TlsError::PeerSkippedCloseNotify) if self.clearing => {
                        cleared = true;
                        break;
                    }
                    Err(err) => {
                        failure = Some(ServerError::Tls(err));
                        break;
                    }
                }
            }
        }
        if cleared {
            if let Some(mut tls) = self.control_tls.take() {
                match tls.take_plaintext() {
                    Ok(tail) => self.parser.push(&tail),
                    Err(err) => failure = Some(ServerError::Tls(err)),
                }
                self.cleared_tls = Some(tls);
            }
            self.clearing = false;
            self.ccc_done = true;
        }
        if let Some(err) = failure {
            match err {
                ServerError::Tls(err) => self.fail_control_tls(err),
                other => self.close_session(Some(other)),
            }
        } else if peer_closed {
            self.close_session(Some(ServerError::ConnectionLost));
        }
    }

    pub(super) fn close_session(&mut self, error: Option<ServerError>) {
        if self.closing.is_some() {
            return;
        }
        if let Some(mut t) = self.transfer.take() {
            t.conn.cancel();
            self.push_transfer_finished(&t, false);
            self.closing_data.push(t.conn);
        }
        self.close_setup();
        self.queue.clear();
        self.wait = Wait::Nothing;
        self.closing = Some(error);
        self.data_deadline = None;
    }
}
