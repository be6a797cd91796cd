//! Reply encoding and command dispatch: the command loop and what each command does.

use alloc::vec::Vec;
use core::net::SocketAddr;

use super::{
    ListFormat, Pending, Refusal, Request, RequestId, ServerError, ServerEvent, ServerSession,
    TransferKind, Wait, code, quoted,
};
use crate::codec::addr::{
    EpsvRequest, NetworkProtocol, network_protocol_not_supported_text, parse_eprt_argument,
    parse_epsv_argument, parse_port_argument,
};
use crate::codec::command::{
    Command, CommandError, FileStructure, FormatControl, TransferMode, TransferType,
};
use crate::codec::reply::Reply;

fn is_http_request(item: &Result<Command, CommandError>) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE", b"PATCH",
    ];
    match item {
        Ok(Command::Unknown { verb, .. }) => {
            verb.last() == Some(&b':') || METHODS.iter().any(|m| verb.eq_ignore_ascii_case(m))
        }
        _ => false,
    }
}

fn parent_of(path: &[u8]) -> Vec<u8> {
    let trimmed = match path.iter().rposition(|&b| b != b'/') {
        Some(end) => &path[..=end],
        None => return b"/".to_vec(),
    };
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/".to_vec(),
        Some(slash) => trimmed[..slash].to_vec(),
    }
}

impl ServerSession {
    pub(super) fn reply(&mut self, value: u16, text: &[u8]) {
        let reply = Reply::new(code(value), text.to_vec());
        self.send_reply(&reply);
    }

    pub(super) fn send_reply(&mut self, reply: &Reply) {
        if reply.encode(&mut self.reply_out).is_err() {
            // Only a name from the backend can hold CR/LF; never send it.
            let fallback = Reply::new(
                code(if reply.code.is_completion() {
                    550
                } else {
                    reply.code.get()
                }),
                b"Name cannot be represented.".to_vec(),
            );
            let _ = fallback.encode(&mut self.reply_out);
        }
    }

    /// Replies to and reports a policy or defence refusal.
    pub(super) fn refuse(&mut self, reason: Refusal) {
        if let Some((value, text)) = reason.reply() {
            self.reply(value, text);
        }
        self.events.push_back(ServerEvent::Refused { reason });
    }

    pub(super) fn request(&mut self, request: Request, pending: Pending) {
        let id = RequestId::new(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        self.wait = Wait::Answer { id, pending };
        self.events.push_back(ServerEvent::Request { id, request });
    }

    pub(super) fn resolve(&self, arg: &[u8]) -> Vec<u8> {
        if arg.first() == Some(&b'/') {
            return arg.to_vec();
        }
        let mut path = self.cwd.clone();
        if path.last() != Some(&b'/') {
            path.push(b'/');
        }
        path.extend_from_slice(arg);
        path
    }

    /// Pulls commands from the parser and runs them while nothing is awaited.
    pub(super) fn run(&mut self) {
        loop {
            if self.closing.is_some() {
                return;
            }
            while let Some(item) = self.parser.next_command() {
                if is_http_request(&item) {
                    // ALPACA: never answer a browser; close at once.
                    self.reply_out.clear();
                    self.close_session(Some(ServerError::HttpRequest));
                    return;
                }
                if self.transfer.is_some() {
                    // Read in band during a transfer (RFC 4217 §14).
                    match &item {
                        Ok(Command::Abor) => {
                            self.abort_running_transfer();
                            continue;
                        }
                        Ok(Command::Stat(None)) => {
                            self.reply(213, b"Transfer in progress.");
                            continue;
                        }
                        Ok(Command::Quit) => {
                            self.quit_after_transfer = true;
                            continue;
                        }
                        _ => {}
                    }
                }
                if self.queue.len() >= self.config.limits.max_pending_commands {
                    self.reply(421, b"Too many pending commands, closing.");
                    self.close_session(Some(ServerError::TooManyPendingCommands));
                    return;
                }
                self.queue.push_back(item);
            }
            if self.transfer.is_some() && !self.quit_after_transfer {
                // ABOR/QUIT/STAT that arrived before the 150 still act in band.
                let in_band = matches!(
                    self.queue.front(),
                    Some(Ok(Command::Abor | Command::Quit | Command::Stat(None)))
                );
                if in_band {
                    match self.queue.pop_front() {
                        Some(Ok(Command::Abor)) => self.abort_running_transfer(),
                        Some(Ok(Command::Quit)) => self.quit_after_transfer = true,
                        _ => self.reply(213, b"Transfer in progress."),
                    }
                    continue;
                }
            }
            if !matches!(self.wait, Wait::Nothing)
                || self.transfer.is_some()
                || self.clearing
                || self.quit_after_transfer
            {
                return;
            }
            let Some(item) = self.queue.pop_front() else {
                return;
            };
            self.dispatch(item);
        }
    }

    fn bad_command(&mut self) -> bool {
        self.bad_commands += 1;
        if self.bad_commands > self.config.limits.max_bad_commands {
            self.reply(421, b"Too many bad commands, closing.");
            self.close_session(Some(ServerError::TooManyBadCommands));
            return true;
        }
        false
    }

    fn control_secure(&self) -> bool {
        self.is_secure() || self.ccc_done
    }

    fn dispatch(&mut self, item: Result<Command, CommandError>) {
        let command = match item {
            Ok(command) => command,
            Err(err) => {
                if self.bad_command() {
                    return;
                }
                let text: &[u8] = match err {
                    CommandError::LineTooLong { .. } => b"Command line too long.",
                    CommandError::NoVerb => b"Syntax error.",
                    CommandError::UnsupportedParameter { .. } => {
                        b"Command not implemented for that parameter."
                    }
                    _ => b"Syntax error in parameters or arguments.",
                };
                self.reply(err.suggested_reply_code().get(), text);
                return;
            }
        };
        // REST and RNFR apply to the very next command only.
        let rest = self.rest.take();
        let rnfr = self.rnfr.take();

        let before_tls = matches!(
            command,
            Command::Feat
                | Command::Help(_)
                | Command::Quit
                | Command::Auth(_)
                | Command::Host(_)
                | Command::Syst
                | Command::Noop
                | Command::Opts(_)
                | Command::Pbsz(_)
                | Command::Prot(_)
                | Command::Ccc
                // The other RFC 2228 commands answer with their own codes (503/502), which
                // §8.2 lists for them; a login-policy 530 is not among those (checklist S01).
                | Command::Adat(_)
                | Command::Mic(_)
                | Command::Conf(_)
                | Command::Enc(_)
                | Command::Unknown { .. }
        );
        if self.config.require_tls && !self.control_secure() && !before_tls {
            self.refuse(Refusal::TlsRequired);
            return;
        }
        let without_login = before_tls
            || matches!(
                command,
                Command::User(_)
                    | Command::Pass(_)
                    | Command::Acct(_)
                    | Command::Stat(_)
                    | Command::Rein
                    | Command::Abor
                    | Command::Adat(_)
                    | Command::Mic(_)
                    | Command::Conf(_)
                    | Command::Enc(_)
            );
        if !self.logged_in && !without_login {
            self.reply(530, b"Please log in with USER and PASS.");
            return;
        }

        let is_appe = matches!(command, Command::Appe(_));
        match command {
            Command::User(name) => {
                if self.logged_in {
                    self.reply(503, b"Already logged in.");
                } else {
                    self.user = Some(name);
                    // Always 331: no user enumeration (RFC 2577 §7).
                    self.reply(331, b"Please specify the password.");
                }
            }
            Command::Pass(password) => self.pass(password),
            Command::Acct(_) => self.reply(202, b"ACCT not needed."),
            Command::Auth(mechanism) => self.auth(&mechanism),
            Command::Pbsz(_) => {
                if self.control_tls.is_none() {
                    self.reply(503, b"PBSZ needs TLS on the control connection.");
                } else {
                    self.pbsz = true;
                    self.reply(200, b"PBSZ=0");
                }
            }
            Command::Prot(level) => self.prot(level),
            Command::Ccc => self.ccc(),
            Command::Adat(_) => self.reply(503, b"No security exchange in progress."),
            Command::Mic(_) | Command::Conf(_) | Command::Enc(_) => {
                self.reply(502, b"Command not implemented.");
            }
            Command::Feat => self.feat(),
            Command::Opts(argument) => self.opts(&argument),
            Command::Syst => self.reply(215, b"UNIX Type: L8"),
            Command::Noop => self.reply(200, b"NOOP ok."),
            Command::Help(_) => self.reply(214, b"Help OK."),
            Command::Stat(None) => self.stat(),
            Command::Stat(Some(_)) => self.reply(502, b"STAT with a pathname not implemented."),
            Command::Rein => self.reply(502, b"REIN not implemented."),
            Command::Smnt(_) => self.reply(502, b"SMNT not implemented."),
            Command::Site(_) => self.reply(502, b"SITE not implemented."),
            Command::Host(name) => {
                if self.logged_in {
                    self.reply(503, b"HOST must come before login.");
                } else if name.contains(&b':') && name.first() != Some(&b'[') {
                    self.reply(501, b"HOST takes no port.");
                } else {
                    self.host = Some(name);
                    self.user = None;
                    self.reply(220, b"Host accepted.");
                }
            }
            Command::Quit => {
                self.reply(221, b"Goodbye.");
                self.close_session(None);
            }
            Command::Type(transfer_type) => match transfer_type {
                TransferType::Ascii(FormatControl::NonPrint) => {
                    self.ascii = true;
                    self.reply(200, b"Switching to ASCII mode.");
                }
                TransferType::Image | TransferType::Local(8) => {
                    self.ascii = false;
                    self.reply(200, b"Switching to Binary mode.");
                }
                _ => self.reply(504, b"Type not implemented."),
            },
            Command::Stru(FileStructure::File) => self.reply(200, b"Structure set to F."),
            Command::Stru(_) => self.reply(504, b"Only STRU F is supported."),
            Command::Mode(TransferMode::Stream) => self.reply(200, b"Mode set to S."),
            Command::Mode(_) => self.reply(504, b"Only MODE S is supported."),
            Command::Allo { .. } => self.reply(202, b"ALLO not needed."),
            Command::Pwd => {
                let mut text = quoted(&self.cwd);
                text.extend_from_slice(b" is the current directory.");
                self.reply(257, &text);
            }
            Command::Cwd(path) => {
                let path = self.resolve(&path);
                self.request(Request::Cwd { path: path.clone() }, Pending::Cwd { path });
            }
            Command::Cdup => {
                let path = parent_of(&self.cwd);
                self.request(Request::Cwd { path: path.clone() }, Pending::Cwd { path });
            }
            Command::Mkd(path) => {
                let path = self.resolve(&path);
                self.request(
                    Request::Mkdir { path: path.clone() },
                    Pending::Mkdir { path },
                );
            }
            Command::Rmd(path) => {
                let path = self.resolve(&path);
                self.request(Request::Rmdir { path }, Pending::Simple);
            }
            Command::Dele(path) => {
                let path = self.resolve(&path);
                self.request(Request::Delete { path }, Pending::Simple);
            }
            Command::Rnfr(path) => {
                self.rnfr = Some(self.resolve(&path));
                self.reply(350, b"Ready for RNTO.");
            }
            Command::Rnto(path) => match rnfr {
                Some(from) => {
                    let to = self.resolve(&path);
                    self.request(Request::Rename { from, to }, Pending::Simple);
                }
                None => self.reply(503, b"RNFR required first."),
            },
            Command::Size(path) => {
                if self.ascii {
                    self.reply(550, b"SIZE not available in ASCII mode.");
                } else {
                    let path = self.resolve(&path);
                    self.request(Request::Size { path }, Pending::Size);
                }
            }
            Command::Mdtm(path) => {
                let path = self.resolve(&path);
                self.request(Request::Mdtm { path }, Pending::Mdtm);
            }
            Command::Mlst(path) => {
                let path = path.map_or_else(|| self.cwd.clone(), |p| self.resolve(&p));
                self.request(Request::Mlst { path: path.clone() }, Pending::Mlst { path });
            }
            Command::Rest(offset) => {
                self.rest = Some(offset);
                self.reply(350, b"Restart position accepted.");
            }
            Command::Port(argument) => {
                let parsed = parse_port_argument(&argument).map(SocketAddr::V4);
                self.active(parsed, b"PORT command successful.");
            }
            Command::Eprt(argument) => {
                let parsed = parse_eprt_argument(&argument);
                self.active(parsed, b"EPRT command successful.");
            }
            Command::Pasv => {
                if self.epsv_all {
                    self.reply(503, b"EPSV ALL in effect.");
                } else if !self.local.ip().to_canonical().is_ipv4()
                    && self.config.pasv_address.is_none()
                {
                    self.reply(500, b"PASV is IPv4 only; use EPSV.");
                } else {
                    self.passive(false);
                }
            }
            Command::Epsv(argument) => match parse_epsv_argument(argument.as_deref()) {
                Ok(EpsvRequest::All) => {
                    self.epsv_all = true;
                    self.reply(200, b"EPSV ALL accepted.");
                }
                Ok(EpsvRequest::Protocol(protocol))
                    if protocol != NetworkProtocol::of(self.local.ip().to_canonical()) =>
                {
                    let supported = [NetworkProtocol::of(self.local.ip().to_canonical())];
                    let text = network_protocol_not_supported_text(&supported);
                    self.reply(522, text.as_bytes());
                }
                Ok(_) => self.passive(true),
                Err(err) => self.addr_error(err),
            },
            Command::Retr(path) => {
                let path = self.resolve(&path);
                let offset = rest.unwrap_or(0);
                self.transfer_request(Request::Retrieve { path, offset }, TransferKind::Retrieve);
            }
            Command::Stor(path) | Command::Appe(path) => {
                let append = rest.is_none() && is_appe;
                let path = self.resolve(&path);
                self.transfer_request(
                    Request::Store {
                        path,
                        offset: rest.unwrap_or(0),
                        append,
                        unique: false,
                    },
                    TransferKind::Store { unique: false },
                );
            }
            Command::Stou => {
                self.transfer_request(
                    Request::Store {
                        path: self.cwd.clone(),
                        offset: 0,
                        append: false,
                        unique: true,
                    },
                    TransferKind::Store { unique: true },
                );
            }
            Command::List(path) => self.listing_request(path, ListFormat::List),
            Command::Nlst(path) => self.listing_request(path, ListFormat::Nlst),
            Command::Mlsd(path) => self.listing_request(path, ListFormat::Mlsd),
            Command::Abor => {
                self.close_setup();
                self.reply(226, b"No transfer to abort.");
            }
            Command::Unknown { .. } => {
                if !self.bad_command() {
                    self.reply(500, b"Unknown command.");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(verb: &[u8]) -> Result<Command, CommandError> {
        Ok(Command::Unknown {
            verb: verb.to_vec(),
            argument: Some(b"/ HTTP/1.1".to_vec()),
        })
    }

    #[test]
    fn http_methods_and_header_lines_are_http() {
        for verb in [&b"GET"[..], b"get", b"Post", b"HEAD", b"CONNECT", b"PATCH"] {
            assert!(is_http_request(&unknown(verb)), "{verb:?}");
        }
        // A header line such as `Host: example.com` parses as the verb `Host:`.
        assert!(is_http_request(&unknown(b"Host:")));
        assert!(is_http_request(&unknown(b"User-Agent:")));
    }

    #[test]
    fn ftp_commands_are_not_http() {
        assert!(!is_http_request(&unknown(b"XYZ")));
        assert!(!is_http_request(&unknown(b"GETX")));
        assert!(!is_http_request(&Ok(Command::Noop)));
        assert!(!is_http_request(&Ok(Command::Host(
            b"example.com".to_vec()
        ))));
        assert!(!is_http_request(&Err(CommandError::NoVerb)));
    }

    #[test]
    fn parent_of_goes_up_one_level() {
        assert_eq!(parent_of(b"/a/b"), b"/a");
        assert_eq!(parent_of(b"/a/b/"), b"/a");
        assert_eq!(parent_of(b"/a/b//"), b"/a");
        assert_eq!(parent_of(b"/a/b/c"), b"/a/b");
    }

    #[test]
    fn parent_of_stops_at_the_root() {
        assert_eq!(parent_of(b"/a"), b"/");
        assert_eq!(parent_of(b"/a/"), b"/");
        assert_eq!(parent_of(b"/"), b"/");
        assert_eq!(parent_of(b"//"), b"/");
        assert_eq!(parent_of(b""), b"/");
        assert_eq!(parent_of(b"a"), b"/");
    }
}
