//! A scripted FTPS server built from the codec and the TLS adapter, and a harness that wires a
//! `ClientSession` to it through in-memory byte queues with simulated time and configurable
//! segmentation of the server's bytes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::client::{
    ClientError, ClientEvent, ClientSession, ClientSessionConfig, ClientTlsMode, Completion,
    ListingEntry, OpError, OpId, OpValue, TraceDirection,
};
use ftps_proto::codec::command::{Command, CommandParser, ProtectionLevel, Verb};
use ftps_proto::io::{Channel, DataId, Instant, IoRequest, Output};
use ftps_proto::tls::{
    self, ResumptionPolicy, ServerConfig, TlsChannel, TlsError, TlsEvent, TlsInfo, TlsLimits,
};

use crate::common;

pub(crate) const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
pub(crate) const CLIENT_LOCAL: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 40000);

/// An event with owned data, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ev {
    Connected(u16),
    Secured(TlsInfo),
    Ready(Vec<Vec<u8>>),
    LoggedIn(OpId),
    Preliminary(OpId, u16),
    Data(OpId, usize),
    Listing(OpId, ListingEntry),
    Writable(OpId),
    TransferCompleted {
        op: OpId,
        bytes: u64,
        resumed: Option<bool>,
    },
    Completed(OpId, Result<u16, OpError>),
    Closed(Option<ClientError>),
    /// A traced control line, as text (lossy) for readable assertions.
    ControlLine(TraceDirection, String),
}

/// How a data connection of the server ends a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataEnd {
    /// close_notify, then the final reply.
    Clean,
    /// close_notify after the final reply was sent.
    CleanAfterFinal,
    /// TCP end without close_notify, before the final reply.
    CutBeforeFinal,
    /// TCP end without close_notify, after the final reply.
    CutAfterFinal,
}

/// What the scripted server does. Raw reply bytes are sent verbatim.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) implicit: bool,
    pub(crate) greeting: Vec<u8>,
    pub(crate) auth_reply: Vec<u8>,
    /// Bytes sent in plaintext right after the 234 (an injection).
    pub(crate) after_auth: Vec<u8>,
    pub(crate) feat_plain: Vec<u8>,
    pub(crate) feat_tls: Vec<u8>,
    /// Raw replies replacing the default for a verb (each use pops the first; the last stays).
    pub(crate) overrides: Vec<(Verb, Vec<Vec<u8>>)>,
    /// Verbs the server never answers.
    pub(crate) mute: Vec<Verb>,
    pub(crate) file: Vec<u8>,
    pub(crate) listing: Vec<u8>,
    pub(crate) data_end: DataEnd,
    /// Replaces the final reply of a transfer.
    pub(crate) final_reply: Vec<u8>,
    /// Sent instead of anything else once the data connection is open (e.g. a 421).
    pub(crate) during_transfer: Option<Vec<u8>>,
    pub(crate) pasv_text: Vec<u8>,
    pub(crate) data_resumption: ResumptionPolicy,
    /// Active mode: the address the server connects from.
    pub(crate) active_from: SocketAddr,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            implicit: false,
            greeting: b"220 scripted FTPS server\r\n".to_vec(),
            auth_reply: b"234 AUTH TLS ok\r\n".to_vec(),
            after_auth: Vec::new(),
            feat_plain: b"211-Features:\r\n AUTH TLS\r\n211 End\r\n".to_vec(),
            feat_tls: b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n EPSV\r\n MLST type*;size*;modify*;\r\n REST STREAM\r\n UTF8\r\n211 End\r\n".to_vec(),
            overrides: Vec::new(),
            mute: Vec::new(),
            file: Vec::new(),
            listing: Vec::new(),
            data_end: DataEnd::Clean,
            final_reply: b"226 Transfer complete\r\n".to_vec(),
            during_transfer: None,
            pasv_text: b"227 Entering Passive Mode (127,0,0,1,19,137)\r\n".to_vec(),
            data_resumption: ResumptionPolicy::Required,
            active_from: SocketAddr::new(SERVER_IP, 20),
        }
    }
}

#[derive(Debug, Default)]
struct ServerData {
    tls: Option<TlsChannel>,
    /// Bytes to deliver to the client (after TLS).
    out: Vec<u8>,
    /// Deliver end of stream after `out`.
    eof_out: bool,
    received: Vec<u8>,
    peer_closed: bool,
    eof_in: bool,
    error: Option<TlsError>,
    handshake_done: bool,
    resumed: Option<bool>,
    payload_written: bool,
}

impl ServerData {
    fn ready(&self) -> bool {
        match &self.tls {
            Some(_) => self.handshake_done,
            None => true,
        }
    }

    fn pump(&mut self) {
        let Some(tls) = &mut self.tls else {
            return;
        };
        loop {
            match tls.poll() {
                Ok(TlsEvent::HandshakeComplete) => {
                    self.handshake_done = true;
                    self.resumed = tls.handshake_kind().map(|kind| kind.is_resumed());
                }
                Ok(TlsEvent::Data(bytes)) => self.received.extend_from_slice(bytes),
                Ok(TlsEvent::PeerClosed) => {
                    self.peer_closed = true;
                }
                Ok(TlsEvent::Closed) => {}
                Ok(TlsEvent::Idle) => break,
                Err(err) => {
                    self.error = Some(err);
                    break;
                }
            }
        }
        let pending = tls.pending_transmit().to_vec();
        tls.consume_transmit(pending.len()).unwrap();
        self.out.extend_from_slice(&pending);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XferState {
    AwaitData,
    Sending,
    FinalSent,
    Done,
}

#[derive(Debug)]
struct Xfer {
    verb: Verb,
    data: DataId,
    state: XferState,
}

/// The scripted server.
pub(crate) struct Server {
    pub(crate) script: Script,
    base: Arc<ServerConfig>,
    control_cfg: Arc<ServerConfig>,
    control_tls: Option<TlsChannel>,
    parser: CommandParser,
    /// Plaintext to send on control (encrypted on the way when TLS is up).
    plain_out: Vec<u8>,
    /// Wire bytes for the client's control channel.
    pub(crate) control_out: Vec<u8>,
    /// Every command the server received, in order.
    pub(crate) commands: Vec<Command>,
    /// Every control byte received before TLS (the wire, to check for leaked credentials).
    pub(crate) plaintext_wire: Vec<u8>,
    pub(crate) prot_private: bool,
    data: BTreeMap<DataId, ServerData>,
    xfer: Option<Xfer>,
    /// Client data ids the server connected to in active mode.
    pub(crate) active_listen: Option<DataId>,
    pub(crate) active_connect_due: Option<DataId>,
    pub(crate) uploaded: Vec<u8>,
    pub(crate) upload_clean: Option<bool>,
    pub(crate) data_resumed: Vec<Option<bool>>,
    control_eof_out: bool,
    pub(crate) passive_connects: Vec<SocketAddr>,
    upgraded: bool,
    ccc_pending: bool,
    /// Every command byte received (decrypted), as it arrived.
    pub(crate) command_log: Vec<u8>,
    /// Commands the server read in plaintext after CCC.
    pub(crate) after_ccc: Vec<Command>,
    cleared: bool,
}

impl Server {
    pub(crate) fn new(script: Script, base: Arc<ServerConfig>) -> Self {
        let control_cfg = tls::server_config_for_control(&base);
        let mut server = Self {
            script,
            base,
            control_cfg,
            control_tls: None,
            parser: CommandParser::default(),
            plain_out: Vec::new(),
            control_out: Vec::new(),
            commands: Vec::new(),
            plaintext_wire: Vec::new(),
            prot_private: false,
            data: BTreeMap::new(),
            xfer: None,
            active_listen: None,
            active_connect_due: None,
            uploaded: Vec::new(),
            upload_clean: None,
            data_resumed: Vec::new(),
            control_eof_out: false,
            passive_connects: Vec::new(),
            upgraded: false,
            ccc_pending: false,
            command_log: Vec::new(),
            after_ccc: Vec::new(),
            cleared: false,
        };
        let _ = &server.base;
        if server.script.implicit {
            server.control_tls = Some(
                TlsChannel::server(
                    Arc::clone(&server.control_cfg),
                    ResumptionPolicy::Optional,
                    TlsLimits::default(),
                )
                .unwrap(),
            );
            server.upgraded = true;
        }
        let greeting = server.script.greeting.clone();
        server.reply(&greeting);
        server
    }

    fn reply(&mut self, bytes: &[u8]) {
        self.plain_out.extend_from_slice(bytes);
    }

    /// Control bytes from the client.
    pub(crate) fn on_control(&mut self, bytes: &[u8]) {
        if let Some(tls) = &mut self.control_tls {
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = tls.feed(rest).unwrap_or(rest.len());
                rest = &rest[n..];
                Self::pump_control_tls(tls, &mut self.parser, &mut self.command_log);
            }
        } else {
            self.plaintext_wire.extend_from_slice(bytes);
            self.command_log.extend_from_slice(bytes);
            self.parser.push(bytes);
        }
    }

    fn pump_control_tls(tls: &mut TlsChannel, parser: &mut CommandParser, log: &mut Vec<u8>) {
        loop {
            match tls.poll() {
                Ok(TlsEvent::Data(bytes)) => {
                    log.extend_from_slice(bytes);
                    parser.push(bytes);
                }
                Ok(TlsEvent::Idle) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    pub(crate) fn on_data(&mut self, id: DataId, bytes: &[u8]) {
        if let Some(data) = self.data.get_mut(&id) {
            if data.tls.is_none() {
                data.received.extend_from_slice(bytes);
                return;
            }
            let mut rest = bytes;
            while !rest.is_empty() {
                let Some(tls) = data.tls.as_mut() else { break };
                let Ok(n) = tls.feed(rest) else { break };
                rest = &rest[n..];
                data.pump();
                if n == 0 {
                    break;
                }
            }
        }
    }

    pub(crate) fn on_data_eof(&mut self, id: DataId) {
        if let Some(data) = self.data.get_mut(&id) {
            data.eof_in = true;
            if let Some(tls) = &mut data.tls {
                tls.feed_eof();
                data.pump();
            }
        }
    }

    pub(crate) fn on_control_eof(&mut self) {}

    /// A data connection for `id` exists (passive connect or active accept).
    pub(crate) fn open_data(&mut self, id: DataId) {
        let tls = self.prot_private.then(|| {
            TlsChannel::server(
                Arc::clone(&self.control_cfg),
                self.script.data_resumption,
                TlsLimits::default(),
            )
            .unwrap()
        });
        self.data.insert(
            id,
            ServerData {
                tls,
                ..ServerData::default()
            },
        );
    }

    fn override_for(&mut self, verb: Verb) -> Option<Vec<u8>> {
        let (_, list) = self.script.overrides.iter_mut().find(|(v, _)| *v == verb)?;
        if list.len() > 1 {
            Some(list.remove(0))
        } else {
            list.first().cloned()
        }
    }

    /// Runs the server: commands, transfers, TLS.
    pub(crate) fn process(&mut self) {
        // Commands.
        while let Some(command) = self.parser.next_command() {
            let Ok(command) = command else {
                self.reply(b"500 bad command\r\n");
                continue;
            };
            self.commands.push(command.clone());
            if self.cleared {
                self.after_ccc.push(command.clone());
            }
            let Some(verb) = command.verb() else {
                self.reply(b"500 unknown\r\n");
                continue;
            };
            if self.script.mute.contains(&verb) {
                continue;
            }
            if let Some(raw) = self.override_for(verb) {
                // A PROT answered 200 takes effect however its reply was scripted.
                if let Command::Prot(level) = &command {
                    if raw.starts_with(b"200") {
                        self.prot_private = *level == ProtectionLevel::Private;
                    }
                }
                self.reply(&raw);
                if verb == Verb::Auth && raw.starts_with(b"234") {
                    self.start_tls();
                }
                continue;
            }
            self.default_reply(&command, verb);
        }
        // Data connections.
        for data in self.data.values_mut() {
            data.pump();
        }
        self.progress_transfer();
        // Control TLS output.
        if let Some(tls) = &mut self.control_tls {
            Self::pump_control_tls(tls, &mut self.parser, &mut self.command_log);
            if tls.is_handshake_complete() && !self.plain_out.is_empty() {
                let n = tls.write(&self.plain_out).unwrap_or(0);
                self.plain_out.drain(..n);
            }
            if self.ccc_pending && self.plain_out.is_empty() {
                self.ccc_pending = false;
                tls.close().unwrap();
            }
            let pending = tls.pending_transmit().to_vec();
            tls.consume_transmit(pending.len()).unwrap();
            self.control_out.extend_from_slice(&pending);
            if tls.is_closed() {
                // CCC done: what followed the client's close_notify is plaintext.
                let tail = tls.take_plaintext().unwrap();
                self.control_tls = None;
                self.cleared = true;
                self.plaintext_wire.extend_from_slice(&tail);
                self.command_log.extend_from_slice(&tail);
                self.parser.push(&tail);
            }
        } else {
            self.control_out.append(&mut self.plain_out);
        }
    }

    fn start_tls(&mut self) {
        // The 234 goes out in plaintext first, with any injected bytes after it.
        self.control_out.append(&mut self.plain_out);
        let injected = self.script.after_auth.clone();
        self.control_out.extend_from_slice(&injected);
        self.control_tls = Some(
            TlsChannel::server_after_auth(
                Arc::clone(&self.control_cfg),
                self.parser.buffered_len(),
                ResumptionPolicy::Optional,
                TlsLimits::default(),
            )
            .unwrap(),
        );
        self.upgraded = true;
    }

    fn default_reply(&mut self, command: &Command, verb: Verb) {
        match command {
            Command::Auth(_) => {
                let raw = self.script.auth_reply.clone();
                self.reply(&raw);
                if raw.starts_with(b"234") {
                    self.start_tls();
                }
            }
            Command::Feat => {
                let raw = if self.upgraded {
                    self.script.feat_tls.clone()
                } else {
                    self.script.feat_plain.clone()
                };
                self.reply(&raw);
            }
            Command::User(_) => self.reply(b"331 password please\r\n"),
            Command::Pass(_) => self.reply(b"230 logged in\r\n"),
            Command::Pbsz(_) => self.reply(b"200 PBSZ=0\r\n"),
            Command::Prot(level) => {
                self.prot_private = *level == ProtectionLevel::Private;
                self.reply(b"200 PROT ok\r\n");
            }
            Command::Opts(_) | Command::Type(_) | Command::Noop => self.reply(b"200 ok\r\n"),
            Command::Epsv(_) => self.reply(b"229 Entering Extended Passive Mode (|||5001|)\r\n"),
            Command::Pasv => {
                let raw = self.script.pasv_text.clone();
                self.reply(&raw);
            }
            Command::Eprt(_) | Command::Port(_) => self.reply(b"200 port ok\r\n"),
            Command::Rest(_) => self.reply(b"350 restarting\r\n"),
            Command::Cwd(_) | Command::Dele(_) | Command::Rmd(_) | Command::Rnto(_) => {
                self.reply(b"250 ok\r\n")
            }
            Command::Rnfr(_) => self.reply(b"350 ready for RNTO\r\n"),
            Command::Pwd | Command::Mkd(_) => self.reply(b"257 \"/home\" is current\r\n"),
            Command::Syst => self.reply(b"215 UNIX Type: L8\r\n"),
            Command::Size(_) => self.reply(b"213 1234\r\n"),
            Command::Quit => {
                self.reply(b"221 bye\r\n");
                self.control_eof_out = true;
            }
            Command::Abor => self.reply(b"226 abort ok\r\n"),
            Command::Ccc => {
                self.reply(b"200 CCC ok\r\n");
                self.ccc_pending = true;
            }
            Command::Retr(_)
            | Command::Stor(_)
            | Command::Appe(_)
            | Command::Stou
            | Command::List(_)
            | Command::Nlst(_)
            | Command::Mlsd(_) => {
                self.reply(b"150 opening data connection\r\n");
                let data = self
                    .active_listen
                    .take()
                    .inspect(|&id| {
                        self.active_connect_due = Some(id);
                    })
                    .or_else(|| self.data.keys().next_back().copied());
                if let Some(data) = data {
                    self.xfer = Some(Xfer {
                        verb,
                        data,
                        state: XferState::AwaitData,
                    });
                } else {
                    self.reply(b"425 no data connection\r\n");
                }
            }
            _ => self.reply(b"502 not implemented\r\n"),
        }
    }

    fn progress_transfer(&mut self) {
        let Some(xfer) = &mut self.xfer else {
            return;
        };
        let Some(data) = self.data.get_mut(&xfer.data) else {
            return;
        };
        let upload = matches!(xfer.verb, Verb::Stor | Verb::Appe | Verb::Stou);
        if xfer.state == XferState::AwaitData && data.ready() {
            if let Some(raw) = self.script.during_transfer.clone() {
                self.plain_out.extend_from_slice(&raw);
                xfer.state = XferState::Done;
                return;
            }
            xfer.state = XferState::Sending;
        }
        let mut final_now = false;
        if xfer.state == XferState::Sending {
            if upload {
                if data.peer_closed || data.eof_in || data.error.is_some() {
                    self.uploaded = data.received.clone();
                    self.upload_clean = Some(data.tls.is_none() || data.peer_closed);
                    self.data_resumed.push(data.resumed);
                    if let Some(tls) = &mut data.tls {
                        let _ = tls.close();
                    }
                    data.pump();
                    data.eof_out = true;
                    final_now = true;
                }
            } else if !data.payload_written {
                let payload = if xfer.verb == Verb::Retr {
                    self.script.file.clone()
                } else {
                    self.script.listing.clone()
                };
                match &mut data.tls {
                    Some(tls) => {
                        let mut rest = &payload[..];
                        while !rest.is_empty() {
                            let n = tls.write(rest).unwrap();
                            rest = &rest[n..];
                            let pending = tls.pending_transmit().to_vec();
                            tls.consume_transmit(pending.len()).unwrap();
                            data.out.extend_from_slice(&pending);
                        }
                    }
                    None => data.out.extend_from_slice(&payload),
                }
                data.payload_written = true;
                self.data_resumed.push(data.resumed);
                let end = self.script.data_end;
                if matches!(end, DataEnd::Clean | DataEnd::CleanAfterFinal) {
                    if let Some(tls) = &mut data.tls {
                        tls.close().unwrap();
                    }
                    data.pump();
                }
                data.eof_out = true;
                final_now = true;
            }
        }
        if final_now {
            xfer.state = XferState::FinalSent;
            let raw = self.script.final_reply.clone();
            self.plain_out.extend_from_slice(&raw);
        }
    }

    /// Wire bytes for the client's data connection `id`, and whether end of stream follows.
    pub(crate) fn take_data_out(&mut self, id: DataId) -> (Vec<u8>, bool) {
        match self.data.get_mut(&id) {
            Some(data) => {
                let out = std::mem::take(&mut data.out);
                let eof = data.eof_out;
                data.eof_out = false;
                (out, eof)
            }
            None => (Vec::new(), false),
        }
    }

    pub(crate) fn take_control_eof(&mut self) -> bool {
        std::mem::take(&mut self.control_eof_out)
    }

    pub(crate) fn data_ids(&self) -> Vec<DataId> {
        self.data.keys().copied().collect()
    }

    pub(crate) fn data_error(&self, id: DataId) -> Option<TlsError> {
        self.data.get(&id).and_then(|data| data.error.clone())
    }

    pub(crate) fn verbs(&self) -> Vec<Verb> {
        self.commands.iter().filter_map(Command::verb).collect()
    }
}

/// How the server's bytes are cut into segments before the client sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Split {
    Whole,
    Bytewise,
    Random(u64),
}

/// Client + server + wires + clock.
pub(crate) struct Harness {
    pub(crate) client: ClientSession,
    pub(crate) server: Server,
    pub(crate) now: u64,
    pub(crate) events: Vec<Ev>,
    pub(crate) downloaded: BTreeMap<OpId, Vec<u8>>,
    /// The typed value of every operation that completed successfully.
    pub(crate) values: BTreeMap<OpId, OpValue>,
    /// While false, `Readable` events are recorded but nothing is read (an application that
    /// does not keep up).
    pub(crate) read_downloads: bool,
    pub(crate) io: Vec<IoRequest>,
    pub(crate) split: Split,
    rng: u64,
    /// Bytes the client has not accepted yet, per channel.
    backlog: BTreeMap<ChannelKey, Vec<u8>>,
    eof_due: Vec<Channel>,
    pub(crate) closed_channels: Vec<Channel>,
    /// Upload sources: op → remaining bytes.
    pub(crate) uploads: BTreeMap<OpId, Vec<u8>>,
    pub(crate) client_control_out: Vec<u8>,
    pub(crate) last_wait: Option<Option<Instant>>,
    pub(crate) control_connected: bool,
    /// The client's local address on the control connection.
    pub(crate) local: SocketAddr,
    /// For each data transmit: how many command bytes the server had received by then.
    pub(crate) data_sent_after: Vec<usize>,
    /// Every byte the client transmitted on each data connection (by data id number): a TLS
    /// data connection starts with a handshake record, a clear download sends nothing.
    pub(crate) data_from_client: BTreeMap<u32, Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ChannelKey {
    Control,
    Data(u32),
}

fn key(channel: Channel) -> ChannelKey {
    match channel {
        Channel::Control => ChannelKey::Control,
        Channel::Data(id) => ChannelKey::Data(id.get()),
    }
}

pub(crate) fn client_config(mode: ClientTlsMode) -> ClientSessionConfig {
    let pki = common::pki();
    let mut config = ClientSessionConfig::new(
        SocketAddr::new(SERVER_IP, 21),
        common::localhost(),
        common::base_client(pki),
    );
    config.tls_mode = mode;
    config
}

pub(crate) fn server_base() -> Arc<ServerConfig> {
    common::base_server(common::pki())
}

impl Harness {
    pub(crate) fn new(config: ClientSessionConfig, script: Script) -> Self {
        Self::with_server_config(config, script, server_base())
    }

    pub(crate) fn with_server_config(
        config: ClientSessionConfig,
        script: Script,
        server: Arc<ServerConfig>,
    ) -> Self {
        let client = ClientSession::new(config, Instant::from_nanos(0));
        let server = Server::new(script, server);
        Self {
            client,
            server,
            now: 0,
            events: Vec::new(),
            downloaded: BTreeMap::new(),
            values: BTreeMap::new(),
            read_downloads: true,
            io: Vec::new(),
            split: Split::Whole,
            rng: 0,
            backlog: BTreeMap::new(),
            eof_due: Vec::new(),
            closed_channels: Vec::new(),
            uploads: BTreeMap::new(),
            client_control_out: Vec::new(),
            last_wait: None,
            control_connected: false,
            local: CLIENT_LOCAL,
            data_sent_after: Vec::new(),
            data_from_client: BTreeMap::new(),
        }
    }

    pub(crate) fn instant(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: deterministic segmentation from a seed.
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn set_split(&mut self, split: Split) {
        self.split = split;
        if let Split::Random(seed) = split {
            self.rng = seed;
        }
    }

    /// Drains the client once; returns whether anything happened.
    fn drain_client(&mut self) -> bool {
        let mut moved = false;
        let mut buf = vec![0u8; 4096];
        loop {
            let now = self.instant();
            match self.client.poll_output(&mut buf, now) {
                Output::Transmit { channel, len } => {
                    moved = true;
                    let bytes = buf[..len].to_vec();
                    match channel {
                        Channel::Control => {
                            self.client_control_out.extend_from_slice(&bytes);
                            self.server.on_control(&bytes);
                        }
                        Channel::Data(id) => {
                            self.data_sent_after.push(self.server.command_log.len());
                            self.data_from_client
                                .entry(id.get())
                                .or_default()
                                .extend_from_slice(&bytes);
                            self.server.on_data(id, &bytes);
                        }
                    }
                }
                Output::Io(request) => {
                    moved = true;
                    self.io.push(request);
                    self.perform(request);
                }
                Output::Event(event) => {
                    moved = true;
                    let owned = match event {
                        ClientEvent::Connected { greeting } => Ev::Connected(greeting.code.get()),
                        ClientEvent::Secured { info } => Ev::Secured(info),
                        ClientEvent::Ready { features } => Ev::Ready(features),
                        ClientEvent::LoggedIn { op } => Ev::LoggedIn(op),
                        ClientEvent::Preliminary { op, reply } => {
                            Ev::Preliminary(op, reply.code.get())
                        }
                        ClientEvent::Readable { op } => {
                            // Read in odd-sized pieces until the session has nothing more.
                            let mut chunk = [0u8; 1500];
                            let mut total = 0;
                            while self.read_downloads {
                                let n = self.client.read_data(op, &mut chunk).unwrap();
                                if n == 0 {
                                    break;
                                }
                                total += n;
                                self.downloaded
                                    .entry(op)
                                    .or_default()
                                    .extend_from_slice(&chunk[..n]);
                            }
                            Ev::Data(op, total)
                        }
                        ClientEvent::Listing { op, entry } => Ev::Listing(op, entry),
                        ClientEvent::Writable { op } => {
                            self.feed_upload(op);
                            Ev::Writable(op)
                        }
                        ClientEvent::Completed { op, result } => {
                            if let Ok(Completion {
                                value: OpValue::Transfer { bytes, resumed },
                                ..
                            }) = &result
                            {
                                self.events.push(Ev::TransferCompleted {
                                    op,
                                    bytes: *bytes,
                                    resumed: *resumed,
                                });
                            }
                            if let Ok(done) = &result {
                                self.values.insert(op, done.value.clone());
                            }
                            Ev::Completed(op, result.map(|done| done.reply.code.get()))
                        }
                        ClientEvent::Closed { error } => Ev::Closed(error),
                        ClientEvent::ControlLine { direction, line } => {
                            Ev::ControlLine(direction, String::from_utf8_lossy(&line).into_owned())
                        }
                        _ => continue,
                    };
                    // Data chunk events are summarised; keep them out of the comparable log
                    // (their sizes depend on segmentation).
                    if !matches!(owned, Ev::Data(..)) {
                        self.events.push(owned);
                    }
                }
                Output::Wait { deadline } => {
                    self.last_wait = Some(deadline);
                    return moved;
                }
                _ => return moved,
            }
        }
    }

    fn feed_upload(&mut self, op: OpId) {
        let Some(source) = self.uploads.get_mut(&op) else {
            return;
        };
        while !source.is_empty() {
            let n = self.client.write_data(op, source).unwrap();
            if n == 0 {
                return;
            }
            source.drain(..n);
        }
        self.uploads.remove(&op);
        self.client.finish_upload(op).unwrap();
    }

    fn perform(&mut self, request: IoRequest) {
        match request {
            IoRequest::Connect { channel, addr } => match channel {
                Channel::Control => {
                    self.control_connected = true;
                    let local = self.local;
                    self.client
                        .handle_connected(Channel::Control, local, self.instant());
                }
                Channel::Data(id) => {
                    self.server.passive_connects.push(addr);
                    self.server.open_data(id);
                    let local = SocketAddr::new(self.local.ip(), 40001);
                    self.client.handle_connected(channel, local, self.instant());
                }
            },
            IoRequest::Listen { data, ip } => {
                self.server.active_listen = Some(data);
                self.client
                    .handle_listening(data, SocketAddr::new(ip, 50000), self.instant());
            }
            IoRequest::ShutdownWrite {
                channel: Channel::Data(id),
            } => self.server.on_data_eof(id),
            IoRequest::Close { channel } => {
                self.closed_channels.push(channel);
                match channel {
                    Channel::Data(id) => self.server.on_data_eof(id),
                    Channel::Control => self.server.on_control_eof(),
                }
            }
            _ => {}
        }
    }

    /// Moves server output to the client, segmented per `split`.
    fn deliver(&mut self) -> bool {
        let mut moved = false;
        if let Some(id) = self.server.active_connect_due.take() {
            let from = self.server.script.active_from;
            self.server.open_data(id);
            self.client.handle_accepted(id, from, self.instant());
            moved = true;
        }
        let control = std::mem::take(&mut self.server.control_out);
        if !control.is_empty() {
            self.backlog
                .entry(ChannelKey::Control)
                .or_default()
                .extend_from_slice(&control);
        }
        if self.server.take_control_eof() {
            self.eof_due.push(Channel::Control);
        }
        for id in self.server.data_ids() {
            let (out, eof) = self.server.take_data_out(id);
            if !out.is_empty() {
                self.backlog
                    .entry(ChannelKey::Data(id.get()))
                    .or_default()
                    .extend_from_slice(&out);
            }
            if eof {
                self.eof_due.push(Channel::Data(id));
            }
        }
        let keys: Vec<ChannelKey> = self.backlog.keys().copied().collect();
        for k in keys {
            let channel = match k {
                ChannelKey::Control => Channel::Control,
                ChannelKey::Data(n) => {
                    match self.server.data_ids().into_iter().find(|id| id.get() == n) {
                        Some(id) => Channel::Data(id),
                        None => continue,
                    }
                }
            };
            let pending = self.backlog.remove(&k).unwrap_or_default();
            if pending.is_empty() {
                continue;
            }
            // One segment per delivery round, so the client drains in between.
            let seg = match self.split {
                Split::Whole => pending.len(),
                Split::Bytewise => 1,
                Split::Random(_) => 1 + (self.next_rand() as usize % pending.len().min(97)),
            };
            let seg = seg.min(pending.len());
            let taken = self
                .client
                .handle_receive(channel, &pending[..seg], self.instant());
            if taken < pending.len() {
                self.backlog.insert(k, pending[taken..].to_vec());
            }
            moved |= taken > 0;
        }
        // End of stream only after every byte of that channel went in.
        let due = std::mem::take(&mut self.eof_due);
        for channel in due {
            if self.backlog.contains_key(&key(channel)) {
                self.eof_due.push(channel);
            } else {
                self.client.handle_eof(channel, self.instant());
                moved = true;
            }
        }
        moved
    }

    /// Reads everything downloaded for `op` that waits in the session.
    pub(crate) fn read_all(&mut self, op: OpId) -> usize {
        let mut chunk = [0u8; 1500];
        let mut total = 0;
        loop {
            let n = self.client.read_data(op, &mut chunk).unwrap();
            if n == 0 {
                return total;
            }
            total += n;
            self.downloaded
                .entry(op)
                .or_default()
                .extend_from_slice(&chunk[..n]);
        }
    }

    /// Runs until nothing moves (or a bound).
    pub(crate) fn run(&mut self) {
        for _ in 0..200_000 {
            let a = self.drain_client();
            self.server.process();
            let b = self.deliver();
            let c = self.drain_client();
            if !a && !b && !c {
                self.server.process();
                if self.server.control_out.is_empty() && !self.deliver() {
                    return;
                }
            }
        }
        panic!("harness did not settle");
    }

    /// Advances the clock and fires the client's timer.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += u64::try_from(by.as_nanos()).unwrap();
        self.client.handle_timeout(self.instant());
        self.run();
    }

    pub(crate) fn completed(&self, op: OpId) -> Option<&Result<u16, OpError>> {
        self.events.iter().find_map(|event| match event {
            Ev::Completed(id, result) if *id == op => Some(result),
            _ => None,
        })
    }

    pub(crate) fn closed(&self) -> Option<&Option<ClientError>> {
        self.events.iter().find_map(|event| match event {
            Ev::Closed(error) => Some(error),
            _ => None,
        })
    }

    pub(crate) fn closed_count(&self) -> usize {
        self.events
            .iter()
            .filter(|event| matches!(event, Ev::Closed(_)))
            .count()
    }

    /// Connect and log in (asserting success).
    pub(crate) fn login(&mut self) -> OpId {
        let op = self.client.login(b"alice", b"secret", None).unwrap();
        self.run();
        assert_eq!(
            self.completed(op),
            Some(&Ok(230)),
            "events: {:#?}",
            self.events
        );
        op
    }
}
