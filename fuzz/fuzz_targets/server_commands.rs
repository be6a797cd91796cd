//! Structure-aware command sequences for the server role: the fuzzer picks well-formed (and
//! some malformed) commands — AUTH/PBSZ/PROT/CCC/REST/RNFR/RNTO in any order, logins, data
//! connections, transfers, ABOR, QUIT — and when each goes out (alone or pipelined with the
//! next), what happens on the data connection, and how time passes. `AUTH TLS` answered `234`
//! is followed by a real TLS client (the proto tests' scripted client `Raw`, included, not
//! copied), so the sequence goes on inside TLS, where the server's security rules apply.
//!
//! Properties: no panic; every reply the server sends parses; `Closed` at most once; no `226`
//! for an upload whose data did not end cleanly, and none before its commit.
#![no_main]

#[path = "../../crates/ftps-proto/tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../crates/ftps-proto/tests/server_support/mod.rs"]
#[allow(dead_code)]
mod server_support;

use std::time::Duration;

use arbitrary::Arbitrary;
use ftps_proto::io::{Channel, DataId, IoRequest};
use ftps_proto::server::{Answer, FsError, Request};
use ftps_proto::tls;
use libfuzzer_sys::fuzz_target;
use server_support::{Raw, RawData, SEv, file_entry, server_config};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Name {
    File,
    Dir,
    Missing,
    Dots,
    Long,
    Empty,
}

impl Name {
    fn text(self) -> String {
        match self {
            Name::File => "file.txt".into(),
            Name::Dir => "dir".into(),
            Name::Missing => "nope".into(),
            Name::Dots => "../../etc/passwd".into(),
            Name::Long => "x".repeat(600),
            Name::Empty => String::new(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Command {
    AuthTls,
    AuthSsl,
    AuthOther,
    Pbsz(u8),
    Prot(u8),
    Ccc,
    Rest(u32),
    RestJunk,
    Rnfr(Name),
    Rnto(Name),
    User(bool),
    Pass(bool),
    Pasv,
    Epsv,
    EpsvAll,
    Port { foreign: bool },
    Eprt { v6: bool },
    Retr(Name),
    Stor(Name),
    Appe(Name),
    Stou,
    List,
    Nlst,
    Mlsd,
    Mlst(Name),
    Abor,
    Quit,
    Noop,
    Feat,
    Opts,
    Type(u8),
    Mode(u8),
    Stru(u8),
    Size(Name),
    Mdtm(Name),
    Cwd(Name),
    Cdup,
    Pwd,
    Dele(Name),
    Mkd(Name),
    Rmd(Name),
    Syst,
    Stat,
    Rein,
    Raw(Vec<u8>),
}

fn pick(options: &[&str], i: u8) -> String {
    options[usize::from(i) % options.len()].to_string()
}

impl Command {
    fn line(&self) -> Vec<u8> {
        let text = match self {
            Command::AuthTls => "AUTH TLS".into(),
            Command::AuthSsl => "AUTH SSL".into(),
            Command::AuthOther => "AUTH KERBEROS_V4".into(),
            Command::Pbsz(i) => format!("PBSZ {}", pick(&["0", "16384", "x", "", "-1"], *i)),
            Command::Prot(i) => format!("PROT {}", pick(&["P", "C", "S", "E", "p", "", "PP"], *i)),
            Command::Ccc => "CCC".into(),
            Command::Rest(n) => format!("REST {n}"),
            Command::RestJunk => "REST -5x".into(),
            Command::Rnfr(n) => format!("RNFR {}", n.text()),
            Command::Rnto(n) => format!("RNTO {}", n.text()),
            Command::User(good) => format!("USER {}", if *good { "alice" } else { "mallory" }),
            Command::Pass(good) => format!("PASS {}", if *good { "secret" } else { "guess" }),
            Command::Pasv => "PASV".into(),
            Command::Epsv => "EPSV".into(),
            Command::EpsvAll => "EPSV ALL".into(),
            Command::Port { foreign: false } => "PORT 127,0,0,1,156,64".into(),
            Command::Port { foreign: true } => "PORT 10,9,8,7,0,25".into(),
            Command::Eprt { v6: false } => "EPRT |1|127.0.0.1|40002|".into(),
            Command::Eprt { v6: true } => "EPRT |2|::1|40002|".into(),
            Command::Retr(n) => format!("RETR {}", n.text()),
            Command::Stor(n) => format!("STOR {}", n.text()),
            Command::Appe(n) => format!("APPE {}", n.text()),
            Command::Stou => "STOU".into(),
            Command::List => "LIST".into(),
            Command::Nlst => "NLST".into(),
            Command::Mlsd => "MLSD".into(),
            Command::Mlst(n) => format!("MLST {}", n.text()),
            Command::Abor => "ABOR".into(),
            Command::Quit => "QUIT".into(),
            Command::Noop => "NOOP".into(),
            Command::Feat => "FEAT".into(),
            Command::Opts => "OPTS UTF8 ON".into(),
            Command::Type(i) => format!("TYPE {}", pick(&["I", "A", "A N", "E", "L 8", "Z"], *i)),
            Command::Mode(i) => format!("MODE {}", pick(&["S", "B", "C", "Z"], *i)),
            Command::Stru(i) => format!("STRU {}", pick(&["F", "R", "P", "Z"], *i)),
            Command::Size(n) => format!("SIZE {}", n.text()),
            Command::Mdtm(n) => format!("MDTM {}", n.text()),
            Command::Cwd(n) => format!("CWD {}", n.text()),
            Command::Cdup => "CDUP".into(),
            Command::Pwd => "PWD".into(),
            Command::Dele(n) => format!("DELE {}", n.text()),
            Command::Mkd(n) => format!("MKD {}", n.text()),
            Command::Rmd(n) => format!("RMD {}", n.text()),
            Command::Syst => "SYST".into(),
            Command::Stat => "STAT".into(),
            Command::Rein => "REIN".into(),
            Command::Raw(bytes) => {
                let mut line: Vec<u8> = bytes.iter().take(200).copied().collect();
                line.extend_from_slice(b"\r\n");
                return line;
            }
        };
        let mut line = text.into_bytes();
        line.extend_from_slice(b"\r\n");
        line
    }
}

#[derive(Arbitrary, Debug)]
enum Action {
    /// A command; `pipelined` sends it together with the next one, without waiting.
    Send {
        command: Command,
        pipelined: bool,
    },
    /// Client bytes on the latest data connection, then maybe its end (with or without the
    /// close_notify under TLS).
    Data {
        bytes: Vec<u8>,
        end: bool,
        close_notify: bool,
    },
    /// The server's answers to what it asked, now (requests otherwise wait).
    Answer,
    Advance {
        secs: u16,
    },
    ControlEof,
}

#[derive(Arbitrary, Debug)]
struct Script {
    grant: bool,
    require_tls: bool,
    require_private_data: bool,
    allow_ccc: bool,
    actions: Vec<Action>,
}

struct Run {
    raw: Raw,
    grant: bool,
    data: Option<RawData>,
}

impl Run {
    /// Sends bytes on the control connection; plaintext input the server does not take now is
    /// offered again after a drain, then dropped (a real peer would block).
    fn send(&mut self, bytes: &[u8]) {
        if let Some(tls) = &self.raw.tls {
            if tls.error().is_some() || tls.is_closed() || tls.has_sent_close_notify() {
                return;
            }
            self.raw.send(bytes);
            return;
        }
        let mut rest = bytes;
        for _ in 0..8 {
            let taken = self
                .raw
                .server
                .handle_receive(Channel::Control, rest, self.raw.now);
            rest = &rest[taken..];
            self.raw.drain();
            if rest.is_empty() {
                break;
            }
        }
    }

    /// After `AUTH TLS` answered `234`, a real TLS client takes over the control connection.
    /// After `CCC` answered `200`, it sends its close_notify and talks in clear again.
    fn follow_security(&mut self, command: &Command, replies_before: usize) {
        // The command went last (after any pipelined ones): its reply is the last one.
        let last = self.raw.replies[replies_before..]
            .last()
            .map(|r| r.code.get());
        let code = |c: u16| last == Some(c);
        match command {
            Command::AuthTls | Command::AuthSsl if self.raw.tls.is_none() && code(234) => {
                let config = tls::client_config_for_control(&common::base_client(common::pki()));
                self.raw.start_tls(config);
            }
            Command::Ccc if code(200) => {
                if let Some(mut channel) = self.raw.tls.take() {
                    if channel.close().is_ok() {
                        let pending = channel.pending_transmit().to_vec();
                        let _ = channel.consume_transmit(pending.len());
                        self.raw
                            .server
                            .handle_receive(Channel::Control, &pending, self.raw.now);
                    }
                }
                self.raw.drain();
            }
            _ => {}
        }
    }

    /// Opens what the server asked for: accepts on its listener or completes its connect.
    fn open_data(&mut self) {
        let now = self.raw.now;
        for io in std::mem::take(&mut self.raw.io) {
            let id: DataId = match io {
                IoRequest::Listen { data, .. } => {
                    self.raw
                        .server
                        .handle_listening(data, "127.0.0.1:50123".parse().unwrap(), now);
                    self.raw
                        .server
                        .handle_accepted(data, "127.0.0.1:41001".parse().unwrap(), now);
                    data
                }
                IoRequest::Connect {
                    channel: Channel::Data(data),
                    ..
                } => {
                    self.raw.server.handle_connected(
                        Channel::Data(data),
                        "127.0.0.1:2020".parse().unwrap(),
                        now,
                    );
                    data
                }
                _ => continue,
            };
            let mut data = match self.raw.client_tls.clone() {
                Some(config) => self.raw.data_client(id, config),
                None => {
                    let mut clear = self.raw.data_client(id, common::base_client(common::pki()));
                    clear.tls = None;
                    clear
                }
            };
            self.raw.drain();
            self.raw.pump_data(&mut data);
            self.data = Some(data);
        }
    }

    fn answer(&mut self) {
        for (id, request) in std::mem::take(&mut self.raw.requests) {
            let s = &mut self.raw.server;
            let _ = match request {
                Request::Login { .. } => s.answer_login(id, self.grant),
                _ if !self.grant => s.answer(id, Err(FsError::PermissionDenied)),
                Request::List { .. } => s.answer(id, Ok(Answer::Done)).and_then(|()| {
                    s.write_entry(id, &file_entry(b"file.txt", 3))?;
                    s.finish_data(id)
                }),
                Request::Retrieve { .. } => s
                    .answer(id, Ok(Answer::Done))
                    .and_then(|()| s.write_data(id, b"abc"))
                    .and_then(|_| s.finish_data(id)),
                Request::Size { .. } => s.answer(id, Ok(Answer::Size(3))),
                Request::Cwd { path } | Request::Mkdir { path } => {
                    s.answer(id, Ok(Answer::Path(path)))
                }
                Request::Mlst { path } => s.answer(id, Ok(Answer::Entry(file_entry(&path, 3)))),
                Request::Store { unique: true, .. } => {
                    s.answer(id, Ok(Answer::Path(b"unique.1".to_vec())))
                }
                _ => s.answer(id, Ok(Answer::Done)),
            };
        }
        self.raw.drain();
    }

    /// Commits every upload whose data ended completely: no `226` may go out before it.
    fn commit_uploads(&mut self) {
        let finished: Vec<(ftps_proto::server::RequestId, bool)> = self
            .raw
            .events
            .iter()
            .filter_map(|e| match e {
                SEv::UploadFinished(id, complete) => Some((*id, *complete)),
                _ => None,
            })
            .collect();
        for (id, complete) in finished {
            let result = self.raw.server.finish_upload(id, Ok(()));
            assert!(
                complete || result.is_err(),
                "an incomplete upload took a commit"
            );
            self.raw.drain();
        }
        self.raw
            .events
            .retain(|e| !matches!(e, SEv::UploadFinished(..)));
    }
}

fuzz_target!(|script: Script| {
    if std::env::var_os("FUZZ_PRINT").is_some() {
        eprintln!("{:?}", script);
    }
    let mut config = server_config();
    config.require_tls = script.require_tls;
    config.require_private_data = script.require_private_data;
    config.allow_ccc = script.allow_ccc;
    let mut run = Run {
        raw: Raw::new(config),
        grant: script.grant,
        data: None,
    };
    let mut pipeline: Vec<u8> = Vec::new();
    for action in script.actions.iter().take(128) {
        match action {
            Action::Send { command, pipelined } => {
                pipeline.extend_from_slice(&command.line());
                if *pipelined {
                    continue;
                }
                let before = run.raw.replies.len();
                let bytes = std::mem::take(&mut pipeline);
                run.send(&bytes);
                run.follow_security(command, before);
                run.open_data();
            }
            Action::Data {
                bytes,
                end,
                close_notify,
            } => {
                let Some(mut data) = run.data.take() else {
                    continue;
                };
                let now = run.raw.now;
                let channel = Channel::Data(data.id);
                let bytes = &bytes[..bytes.len().min(4096)];
                // The handshake first (the server starts it after its 150), then the bytes,
                // then the close_notify: each pumped through before the next.
                run.raw.pump_data(&mut data);
                match &mut data.tls {
                    Some(tls) if tls.error().is_none() && !tls.is_closed() => {
                        let _ = tls.write(bytes);
                        run.raw.pump_data(&mut data);
                        if *end && *close_notify {
                            if let Some(tls) = &mut data.tls {
                                let _ = tls.close();
                            }
                        }
                    }
                    Some(_) => {}
                    None => {
                        run.raw.server.handle_receive(channel, bytes, now);
                    }
                }
                run.raw.pump_data(&mut data);
                if *end {
                    run.raw.server.handle_eof(channel, now);
                    run.raw.drain();
                } else {
                    run.data = Some(data);
                }
            }
            Action::Answer => run.answer(),
            Action::Advance { secs } => {
                run.raw.now = run
                    .raw
                    .now
                    .saturating_add(Duration::from_secs(u64::from(*secs)));
                run.raw.server.handle_timeout(run.raw.now);
                run.raw.drain();
            }
            Action::ControlEof => {
                run.raw.server.handle_eof(Channel::Control, run.raw.now);
                run.raw.drain();
            }
        }
        // The client side of the data connection keeps up (handshake, data) and, once the
        // server ended it, answers with its own close_notify and end of stream.
        if let Some(mut data) = run.data.take() {
            run.raw.pump_data(&mut data);
            if data.peer_closed {
                if let Some(tls) = &mut data.tls {
                    let _ = tls.close();
                }
                run.raw.pump_data(&mut data);
                run.raw
                    .server
                    .handle_eof(Channel::Data(data.id), run.raw.now);
                run.raw.drain();
            } else {
                run.data = Some(data);
            }
        }
        run.commit_uploads();
        let closed_seen = run
            .raw
            .events
            .iter()
            .filter(|e| matches!(e, SEv::Closed(_)))
            .count();
        assert!(closed_seen <= 1, "Closed reported {closed_seen} times");
        if run.raw.server.is_closed() {
            break;
        }
    }
    if std::env::var_os("FUZZ_PRINT").is_some() {
        let codes: Vec<u16> = run.raw.replies.iter().map(|r| r.code.get()).collect();
        eprintln!("replies {codes:?}; events {:?}", run.raw.events);
    }
});
