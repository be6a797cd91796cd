//! Harnesses for the server session: the real `ClientSession` wired to a `ServerSession`
//! through in-memory byte queues with a toy in-memory file system answering the server's
//! requests, and a raw scripted client for the defences.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::client::{
    ClientEvent, ClientSession, ClientSessionConfig, Completion, ListingEntry, OpError, OpId,
    OpValue,
};
use ftps_proto::codec::listing::{FtpTime, Permissions};
use ftps_proto::codec::reply::{Reply, ReplyParser};
use ftps_proto::io::{Channel, DataId, Instant, IoRequest, Output};
use ftps_proto::server::ServerSessionConfig;
use ftps_proto::server::{
    Answer, DirEntry, DirEntryKind, FsError, Refusal, Request, RequestId, ServerError, ServerEvent,
    ServerSession,
};
use ftps_proto::tls::{self, TlsChannel, TlsError, TlsEvent, TlsInfo, TlsLimits};

use crate::common;

pub(crate) const SERVER_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 21);
pub(crate) const CLIENT_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 40000);

pub(crate) fn t(secs: u64) -> Instant {
    Instant::from_nanos(secs * 1_000_000_000)
}

/// The default server config over the test certificate.
pub(crate) fn server_config() -> ServerSessionConfig {
    ServerSessionConfig::new(common::base_server(common::pki()))
}

pub(crate) fn client_config() -> ClientSessionConfig {
    ClientSessionConfig::new(
        SERVER_ADDR,
        common::localhost(),
        common::base_client(common::pki()),
    )
}

/// A client-side event with owned data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CEv {
    LoggedIn(OpId),
    Listing(OpId, ListingEntry),
    TransferCompleted {
        op: OpId,
        bytes: u64,
        resumed: Option<bool>,
    },
    Completed(OpId, Result<u16, OpError>),
    Closed,
    Other,
}

/// A server-side event with owned data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SEv {
    Secured(TlsInfo),
    Request(RequestId, Request),
    UploadFinished(RequestId, bool),
    SendFinished(RequestId, bool),
    DataPeerRefused(SocketAddr),
    Refused(Refusal),
    Closed(Option<ServerError>),
}

/// The toy backend: files by full path, directories, and the user.
#[derive(Debug, Default)]
pub(crate) struct Fs {
    pub(crate) files: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) dirs: Vec<Vec<u8>>,
    pub(crate) incomplete: Vec<Vec<u8>>,
    uploads: HashMap<RequestId, (Vec<u8>, Vec<u8>)>,
    downloads: HashMap<RequestId, (Vec<u8>, usize)>,
    /// Listings being sent: the entries not yet taken by the session.
    listings: HashMap<RequestId, VecDeque<DirEntry>>,
    /// How often the session had no room for a listing entry (its bounded buffer was full).
    pub(crate) listing_waits: usize,
    next_unique: u32,
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn normalise(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = Vec::new();
    for part in parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// One side's byte queue for one channel.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub(crate) bytes: VecDeque<u8>,
    pub(crate) eof_after: bool,
    pub(crate) eof_delivered: bool,
}

/// The real client and the server session, wired in memory.
pub(crate) struct Pair {
    pub(crate) client: ClientSession,
    pub(crate) server: ServerSession,
    pub(crate) now: Instant,
    pub(crate) fs: Fs,
    pub(crate) client_events: Vec<CEv>,
    pub(crate) server_events: Vec<SEv>,
    pub(crate) downloads: HashMap<OpId, Vec<u8>>,
    pub(crate) uploads: HashMap<OpId, (Vec<u8>, usize, bool)>,
    pub(crate) to_client: HashMap<Channel, Inbox>,
    pub(crate) to_server: HashMap<Channel, Inbox>,
    /// Client data id ↔ server data id.
    links: Vec<(DataId, DataId)>,
    /// Server passive listeners: address → server data id.
    server_listeners: HashMap<SocketAddr, DataId>,
    /// Client active listeners: address → client data id.
    client_listeners: HashMap<SocketAddr, DataId>,
    /// Passwords the backend accepts per user.
    pub(crate) users: Vec<(Vec<u8>, Vec<u8>)>,
    /// Answer requests automatically.
    pub(crate) auto_answer: bool,
    pub(crate) pending_requests: Vec<(RequestId, Request)>,
    pub(crate) server_closed: bool,
    pub(crate) client_closed: bool,
    /// Make every upload commit fail with this error (the file is not stored).
    pub(crate) commit_failure: Option<FsError>,
    /// Byte counts and resumption the server reported per finished transfer.
    pub(crate) finished_stats: Vec<(RequestId, u64, bool)>,
}

impl Pair {
    pub(crate) fn new(server_cfg: ServerSessionConfig, client_cfg: ClientSessionConfig) -> Self {
        let now = t(1);
        let mut client = ClientSession::new(client_cfg, now);
        // The first output is the control connect.
        let mut buf = vec![0u8; 64 * 1024];
        match client.poll_output(&mut buf, now) {
            Output::Io(IoRequest::Connect {
                channel: Channel::Control,
                ..
            }) => {}
            other => panic!("expected the control connect, got {other:?}"),
        }
        client.handle_connected(Channel::Control, CLIENT_ADDR, now);
        let server = ServerSession::new(server_cfg, CLIENT_ADDR, SERVER_ADDR, now);
        Self {
            client,
            server,
            now,
            fs: Fs::default(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            downloads: HashMap::new(),
            uploads: HashMap::new(),
            to_client: HashMap::new(),
            to_server: HashMap::new(),
            links: Vec::new(),
            server_listeners: HashMap::new(),
            client_listeners: HashMap::new(),
            users: vec![(b"alice".to_vec(), b"secret".to_vec())],
            auto_answer: true,
            pending_requests: Vec::new(),
            server_closed: false,
            client_closed: false,
            commit_failure: None,
            finished_stats: Vec::new(),
        }
    }

    fn server_channel_for(&self, client: Channel) -> Option<Channel> {
        match client {
            Channel::Control => Some(Channel::Control),
            Channel::Data(id) => self
                .links
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, s)| Channel::Data(*s)),
        }
    }

    fn client_channel_for(&self, server: Channel) -> Option<Channel> {
        match server {
            Channel::Control => Some(Channel::Control),
            Channel::Data(id) => self
                .links
                .iter()
                .find(|(_, s)| *s == id)
                .map(|(c, _)| Channel::Data(*c)),
        }
    }

    /// Moves everything until nothing happens any more.
    pub(crate) fn run(&mut self) {
        for _ in 0..10_000 {
            let mut progress = self.drain_client();
            progress |= self.drain_server();
            progress |= self.deliver();
            if !progress {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// Advances time and fires timeouts.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.run();
    }

    fn deliver(&mut self) -> bool {
        let mut progress = false;
        let now = self.now;
        let channels: Vec<Channel> = self.to_server.keys().copied().collect();
        for ch in channels {
            let inbox = self.to_server.get_mut(&ch).unwrap();
            if !inbox.bytes.is_empty() {
                let bytes: Vec<u8> = inbox.bytes.iter().copied().collect();
                let taken = self.server.handle_receive(ch, &bytes, now);
                let inbox = self.to_server.get_mut(&ch).unwrap();
                inbox.bytes.drain(..taken);
                progress |= taken > 0;
            }
            let inbox = self.to_server.get_mut(&ch).unwrap();
            if inbox.bytes.is_empty() && inbox.eof_after && !inbox.eof_delivered {
                inbox.eof_delivered = true;
                self.server.handle_eof(ch, now);
                progress = true;
            }
        }
        let channels: Vec<Channel> = self.to_client.keys().copied().collect();
        for ch in channels {
            let inbox = self.to_client.get_mut(&ch).unwrap();
            if !inbox.bytes.is_empty() {
                let bytes: Vec<u8> = inbox.bytes.iter().copied().collect();
                let taken = self.client.handle_receive(ch, &bytes, now);
                let inbox = self.to_client.get_mut(&ch).unwrap();
                inbox.bytes.drain(..taken);
                progress |= taken > 0;
            }
            let inbox = self.to_client.get_mut(&ch).unwrap();
            if inbox.bytes.is_empty() && inbox.eof_after && !inbox.eof_delivered {
                inbox.eof_delivered = true;
                self.client.handle_eof(ch, now);
                progress = true;
            }
        }
        progress
    }

    pub(crate) fn drain_client(&mut self) -> bool {
        let mut buf = vec![0u8; 32 * 1024];
        let mut progress = false;
        let now = self.now;
        loop {
            let mut writable = Vec::new();
            match self.client.poll_output(&mut buf, now) {
                Output::Wait { .. } => return progress,
                Output::Transmit { channel, len } => {
                    if let Some(target) = self.server_channel_for(channel) {
                        self.to_server
                            .entry(target)
                            .or_default()
                            .bytes
                            .extend(&buf[..len]);
                    }
                }
                Output::Io(request) => self.client_io(request),
                Output::Event(event) => match event {
                    ClientEvent::LoggedIn { op } => self.client_events.push(CEv::LoggedIn(op)),
                    ClientEvent::Readable { op } => {
                        let mut chunk = [0u8; 4096];
                        loop {
                            let n = self.client.read_data(op, &mut chunk).unwrap();
                            if n == 0 {
                                break;
                            }
                            self.downloads
                                .entry(op)
                                .or_default()
                                .extend_from_slice(&chunk[..n]);
                        }
                    }
                    ClientEvent::Listing { op, entry } => {
                        self.client_events.push(CEv::Listing(op, entry));
                    }
                    ClientEvent::Writable { op } => writable.push(op),
                    ClientEvent::Completed { op, result } => {
                        if let Ok(Completion {
                            value: OpValue::Transfer { bytes, resumed },
                            ..
                        }) = &result
                        {
                            self.client_events.push(CEv::TransferCompleted {
                                op,
                                bytes: *bytes,
                                resumed: *resumed,
                            });
                        }
                        self.client_events
                            .push(CEv::Completed(op, result.map(|r| r.reply.code.get())));
                    }
                    ClientEvent::Closed { .. } => {
                        self.client_closed = true;
                        self.client_events.push(CEv::Closed);
                    }
                    _ => self.client_events.push(CEv::Other),
                },
                _ => unreachable!(),
            }
            progress = true;
            for op in writable {
                self.feed_upload(op);
            }
        }
    }

    fn feed_upload(&mut self, op: OpId) {
        let Some((data, pos, cut)) = self.uploads.get_mut(&op) else {
            return;
        };
        while *pos < data.len() {
            let n = self.client.write_data(op, &data[*pos..]).unwrap();
            if n == 0 {
                return;
            }
            *pos += n;
        }
        if !*cut {
            self.client.finish_upload(op).unwrap();
        }
    }

    fn client_io(&mut self, request: IoRequest) {
        let now = self.now;
        match request {
            IoRequest::Connect {
                channel: Channel::Data(cid),
                addr,
            } => {
                let sid = *self
                    .server_listeners
                    .get(&addr)
                    .unwrap_or_else(|| panic!("client connects to {addr}, nobody listens"));
                self.links.push((cid, sid));
                self.client
                    .handle_connected(Channel::Data(cid), CLIENT_ADDR, now);
                self.server.handle_accepted(sid, data_client_addr(cid), now);
            }
            IoRequest::Listen { data, ip } => {
                let addr = SocketAddr::new(ip, 50_000 + data.get() as u16);
                self.client_listeners.insert(addr, data);
                self.client.handle_listening(data, addr, now);
            }
            IoRequest::ShutdownWrite { channel } => {
                if let Some(target) = self.server_channel_for(channel) {
                    self.to_server.entry(target).or_default().eof_after = true;
                }
            }
            IoRequest::Close { channel } => {
                if let Some(target) = self.server_channel_for(channel) {
                    self.to_server.entry(target).or_default().eof_after = true;
                }
            }
            other => panic!("unexpected client io {other:?}"),
        }
    }

    fn server_io(&mut self, request: IoRequest) {
        let now = self.now;
        match request {
            IoRequest::Listen { data, ip } => {
                let addr = SocketAddr::new(ip, 30_000 + data.get() as u16);
                self.server_listeners.insert(addr, data);
                self.server.handle_listening(data, addr, now);
            }
            IoRequest::Connect {
                channel: Channel::Data(sid),
                addr,
            } => {
                let cid = *self
                    .client_listeners
                    .get(&addr)
                    .unwrap_or_else(|| panic!("server connects to {addr}, nobody listens"));
                self.links.push((cid, sid));
                self.server
                    .handle_connected(Channel::Data(sid), SERVER_ADDR, now);
                self.client
                    .handle_accepted(cid, SocketAddr::new(SERVER_ADDR.ip(), 20), now);
            }
            IoRequest::ShutdownWrite { channel } | IoRequest::Close { channel } => {
                if channel == Channel::Control && matches!(request, IoRequest::Close { .. }) {
                    self.server_closed = true;
                }
                if let Some(target) = self.client_channel_for(channel) {
                    self.to_client.entry(target).or_default().eof_after = true;
                }
            }
            other => panic!("unexpected server io {other:?}"),
        }
    }

    pub(crate) fn drain_server(&mut self) -> bool {
        let mut buf = vec![0u8; 32 * 1024];
        let mut progress = false;
        let now = self.now;
        loop {
            let mut writable = None;
            let mut request = None;
            let mut commit = None;
            match self.server.poll_output(&mut buf, now) {
                Output::Wait { .. } => return progress,
                Output::Transmit { channel, len } => {
                    if let Some(target) = self.client_channel_for(channel) {
                        self.to_client
                            .entry(target)
                            .or_default()
                            .bytes
                            .extend(&buf[..len]);
                    }
                }
                Output::Io(io) => self.server_io(io),
                Output::Event(event) => match event {
                    ServerEvent::Secured { info } => self.server_events.push(SEv::Secured(info)),
                    ServerEvent::Request { id, request: r } => {
                        self.server_events.push(SEv::Request(id, r.clone()));
                        request = Some((id, r));
                    }
                    ServerEvent::Writable { id } => writable = Some(id),
                    ServerEvent::Readable { id } => {
                        let mut chunk = [0u8; 3000];
                        // A request the session already dropped (a fuzzed sequence may end it
                        // before the event is read) has nothing to read.
                        while let Ok(n) = self.server.read_data(id, &mut chunk) {
                            if n == 0 {
                                break;
                            }
                            self.fs
                                .uploads
                                .get_mut(&id)
                                .unwrap()
                                .1
                                .extend_from_slice(&chunk[..n]);
                        }
                    }
                    ServerEvent::UploadFinished {
                        id,
                        complete,
                        bytes,
                        resumed_tls,
                    } => {
                        self.server_events.push(SEv::UploadFinished(id, complete));
                        self.finished_stats.push((id, bytes, resumed_tls));
                        if let Some((path, data)) = self.fs.uploads.remove(&id) {
                            if !complete {
                                self.fs.incomplete.push(path);
                            } else if let Some(err) = self.commit_failure {
                                commit = Some((id, Err(err)));
                            } else {
                                self.fs.files.insert(path, data);
                                commit = Some((id, Ok(())));
                            }
                        }
                    }
                    ServerEvent::SendFinished {
                        id,
                        complete,
                        bytes,
                        resumed_tls,
                    } => {
                        self.server_events.push(SEv::SendFinished(id, complete));
                        self.finished_stats.push((id, bytes, resumed_tls));
                        self.fs.downloads.remove(&id);
                    }
                    ServerEvent::Refused { reason } => {
                        self.server_events.push(SEv::Refused(reason));
                    }
                    ServerEvent::DataPeerRefused { peer } => {
                        self.server_events.push(SEv::DataPeerRefused(peer));
                    }
                    ServerEvent::Closed { error } => {
                        self.server_events.push(SEv::Closed(error));
                    }
                    _ => {}
                },
                _ => unreachable!(),
            }
            progress = true;
            if let Some((id, result)) = commit {
                self.server.finish_upload(id, result).unwrap();
            }
            if let Some((id, r)) = request {
                if self.auto_answer {
                    self.answer(id, r);
                } else {
                    self.pending_requests.push((id, r));
                }
            }
            if let Some(id) = writable {
                self.feed_download(id);
            }
        }
    }

    fn feed_download(&mut self, id: RequestId) {
        if let Some(entries) = self.fs.listings.get_mut(&id) {
            // A listing, one entry at a time, as the session takes them.
            while let Some(entry) = entries.front() {
                if !self.server.write_entry(id, entry).unwrap() {
                    self.fs.listing_waits += 1;
                    return;
                }
                entries.pop_front();
            }
            self.fs.listings.remove(&id);
            self.server.finish_data(id).unwrap();
            return;
        }
        let Some((data, pos)) = self.fs.downloads.get_mut(&id) else {
            return;
        };
        while *pos < data.len() {
            let n = self.server.write_data(id, &data[*pos..]).unwrap();
            if n == 0 {
                return;
            }
            *pos += n;
        }
        self.server.finish_data(id).unwrap();
    }

    /// The toy backend's answer to a request.
    pub(crate) fn answer(&mut self, id: RequestId, request: Request) {
        let fs = &mut self.fs;
        let exists_dir = |fs: &Fs, p: &[u8]| p == b"/" || fs.dirs.iter().any(|d| d == p);
        match request {
            Request::Login { user, password, .. } => {
                let ok = self
                    .users
                    .iter()
                    .any(|(u, p)| *u == user && p.as_slice() == password.as_bytes());
                self.server.answer_login(id, ok).unwrap();
            }
            Request::Cwd { path } => {
                let path = normalise(&path);
                let result = if exists_dir(fs, &path) {
                    Ok(Answer::Path(path))
                } else {
                    Err(FsError::NotFound)
                };
                self.server.answer(id, result).unwrap();
            }
            Request::Mkdir { path } => {
                let path = normalise(&path);
                fs.dirs.push(path.clone());
                self.server.answer(id, Ok(Answer::Path(path))).unwrap();
            }
            Request::Rmdir { path } => {
                let path = normalise(&path);
                let before = fs.dirs.len();
                fs.dirs.retain(|d| *d != path);
                let result = if fs.dirs.len() < before {
                    Ok(Answer::Done)
                } else {
                    Err(FsError::NotFound)
                };
                self.server.answer(id, result).unwrap();
            }
            Request::Delete { path } => {
                let result = match fs.files.remove(&normalise(&path)) {
                    Some(_) => Ok(Answer::Done),
                    None => Err(FsError::NotFound),
                };
                self.server.answer(id, result).unwrap();
            }
            Request::Rename { from, to } => {
                let result = match fs.files.remove(&normalise(&from)) {
                    Some(data) => {
                        fs.files.insert(normalise(&to), data);
                        Ok(Answer::Done)
                    }
                    None => Err(FsError::NotFound),
                };
                self.server.answer(id, result).unwrap();
            }
            Request::Size { path } => {
                let result = match fs.files.get(&normalise(&path)) {
                    Some(data) => Ok(Answer::Size(data.len() as u64)),
                    None => Err(FsError::NotFound),
                };
                self.server.answer(id, result).unwrap();
            }
            Request::Mdtm { path } => {
                let result = match fs.files.get(&normalise(&path)) {
                    Some(_) => Ok(Answer::Modified(sample_time())),
                    None => Err(FsError::NotFound),
                };
                self.server.answer(id, result).unwrap();
            }
            Request::Mlst { path } => {
                let path = normalise(&path);
                let result = match fs.files.get(&path) {
                    Some(data) => Ok(Answer::Entry(file_entry(&path, data.len()))),
                    None => Err(FsError::NotFound),
                };
                self.server.answer(id, result).unwrap();
            }
            Request::List { path, .. } => {
                let dir = normalise(&path);
                let mut entries = Vec::new();
                for (name, data) in &fs.files {
                    if let Some(rest) = name.strip_prefix(join(&dir, b"").as_slice()) {
                        if !rest.contains(&b'/') {
                            entries.push(file_entry(rest, data.len()));
                        }
                    }
                }
                fs.listings.insert(id, entries.into());
                self.server.answer(id, Ok(Answer::Done)).unwrap();
            }
            Request::Retrieve { path, offset } => match fs.files.get(&normalise(&path)) {
                Some(data) => {
                    let data = data.clone();
                    fs.downloads
                        .insert(id, (data, usize::try_from(offset).unwrap()));
                    self.server.answer(id, Ok(Answer::Done)).unwrap();
                }
                None => self.server.answer(id, Err(FsError::NotFound)).unwrap(),
            },
            Request::Store {
                path,
                offset,
                append,
                unique,
            } => {
                let (path, answer) = if unique {
                    fs.next_unique += 1;
                    let name = format!("unique.{}", fs.next_unique).into_bytes();
                    (join(&normalise(&path), &name), Answer::Path(name))
                } else {
                    (normalise(&path), Answer::Done)
                };
                let existing = fs.files.get(&path).cloned().unwrap_or_default();
                let start = if append {
                    existing
                } else {
                    existing[..usize::try_from(offset).unwrap().min(existing.len())].to_vec()
                };
                fs.uploads.insert(id, (path, start));
                self.server.answer(id, Ok(answer)).unwrap();
            }
            other => panic!("unexpected request {other:?}"),
        }
    }

    /// Client events for `op`, in order.
    pub(crate) fn completed(&self, op: OpId) -> Option<Result<u16, OpError>> {
        self.client_events.iter().find_map(|e| match e {
            CEv::Completed(o, r) if *o == op => Some(r.clone()),
            _ => None,
        })
    }

    pub(crate) fn transfer_completed(&self, op: OpId) -> Option<(u64, Option<bool>)> {
        self.client_events.iter().find_map(|e| match e {
            CEv::TransferCompleted {
                op: o,
                bytes,
                resumed,
            } if *o == op => Some((*bytes, *resumed)),
            _ => None,
        })
    }

    pub(crate) fn listing(&self, op: OpId) -> Vec<ListingEntry> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                CEv::Listing(o, entry) if *o == op => Some(entry.clone()),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn login(&mut self) -> OpId {
        let op = self.client.login(b"alice", b"secret", None).unwrap();
        self.run();
        assert_eq!(
            self.completed(op),
            Some(Ok(230)),
            "{:?}",
            self.client_events
        );
        op
    }

    pub(crate) fn upload(&mut self, op: OpId, data: Vec<u8>) {
        self.uploads.insert(op, (data, 0, false));
    }
}

fn data_client_addr(cid: DataId) -> SocketAddr {
    SocketAddr::new(CLIENT_ADDR.ip(), 41_000 + cid.get() as u16)
}

pub(crate) fn sample_time() -> FtpTime {
    FtpTime::parse(b"20240131235959").unwrap()
}

pub(crate) fn file_entry(name: &[u8], size: usize) -> DirEntry {
    DirEntry {
        name: name.to_vec(),
        kind: DirEntryKind::File,
        size: size as u64,
        modified: Some(sample_time()),
        permissions: Permissions::READ
            .union(Permissions::WRITE)
            .union(Permissions::DELETE)
            .union(Permissions::RENAME),
        mode: Some(0o644),
        unique: Some(b"u1".to_vec()),
    }
}

/// A raw scripted client: plaintext bytes in, replies out, optional TLS on the control
/// connection with a real `TlsChannel`.
pub(crate) struct Raw {
    pub(crate) server: ServerSession,
    pub(crate) now: Instant,
    parser: ReplyParser,
    pub(crate) replies: Vec<Reply>,
    pub(crate) tls: Option<TlsChannel>,
    pub(crate) io: Vec<IoRequest>,
    pub(crate) events: Vec<SEv>,
    pub(crate) requests: Vec<(RequestId, Request)>,
    /// Bytes the server sent on data channels, by channel.
    pub(crate) data_out: HashMap<DataId, Vec<u8>>,
    pub(crate) uploaded: HashMap<RequestId, Vec<u8>>,
    pub(crate) raw_control: Vec<u8>,
    /// The control connection's client config (its session store), for data connections.
    pub(crate) client_tls: Option<Arc<rustls::ClientConfig>>,
}

/// A raw client-side data connection: TLS (or clear) over an in-memory link to the server.
pub(crate) struct RawData {
    pub(crate) id: DataId,
    pub(crate) tls: Option<TlsChannel>,
    pub(crate) received: Vec<u8>,
    pub(crate) error: Option<TlsError>,
    pub(crate) peer_closed: bool,
    pub(crate) resumed: Option<bool>,
}

impl Raw {
    pub(crate) fn new(config: ServerSessionConfig) -> Self {
        Self::with_peer(config, CLIENT_ADDR)
    }

    pub(crate) fn with_peer(config: ServerSessionConfig, peer: SocketAddr) -> Self {
        Self::with_addrs(config, peer, SERVER_ADDR)
    }

    pub(crate) fn with_addrs(
        config: ServerSessionConfig,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Self {
        let now = t(1);
        let mut raw = Self {
            server: ServerSession::new(config, peer, local, now),
            now,
            parser: ReplyParser::default(),
            replies: Vec::new(),
            tls: None,
            io: Vec::new(),
            events: Vec::new(),
            requests: Vec::new(),
            data_out: HashMap::new(),
            uploaded: HashMap::new(),
            raw_control: Vec::new(),
            client_tls: None,
        };
        raw.drain();
        raw
    }

    /// Drains the server; control bytes go to the reply parser (through TLS when up).
    pub(crate) fn drain(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..1000 {
            let mut control = Vec::new();
            match self.server.poll_output(&mut buf, self.now) {
                Output::Wait { .. } => break,
                Output::Transmit { channel, len } => match channel {
                    Channel::Control => control.extend_from_slice(&buf[..len]),
                    Channel::Data(id) => self
                        .data_out
                        .entry(id)
                        .or_default()
                        .extend_from_slice(&buf[..len]),
                },
                Output::Io(io) => self.io.push(io),
                Output::Event(event) => match event {
                    ServerEvent::Request { id, request } => {
                        self.events.push(SEv::Request(id, request.clone()));
                        self.requests.push((id, request));
                    }
                    ServerEvent::Readable { id } => {
                        let mut chunk = [0u8; 3000];
                        // A request the session already dropped (a fuzzed sequence may end it
                        // before the event is read) has nothing to read.
                        while let Ok(n) = self.server.read_data(id, &mut chunk) {
                            if n == 0 {
                                break;
                            }
                            self.uploaded
                                .entry(id)
                                .or_default()
                                .extend_from_slice(&chunk[..n]);
                        }
                    }
                    ServerEvent::UploadFinished { id, complete, .. } => {
                        self.events.push(SEv::UploadFinished(id, complete));
                    }
                    ServerEvent::SendFinished { id, complete, .. } => {
                        self.events.push(SEv::SendFinished(id, complete));
                    }
                    ServerEvent::Refused { reason } => self.events.push(SEv::Refused(reason)),
                    ServerEvent::Closed { error } => self.events.push(SEv::Closed(error)),
                    ServerEvent::DataPeerRefused { peer } => {
                        self.events.push(SEv::DataPeerRefused(peer));
                    }
                    ServerEvent::Secured { info } => self.events.push(SEv::Secured(info)),
                    _ => {}
                },
                _ => unreachable!(),
            }
            if !control.is_empty() {
                self.raw_control.extend_from_slice(&control);
                match &mut self.tls {
                    Some(tls) => {
                        // A failed client channel refuses input; the test checks its error.
                        let _ = tls.feed(&control);
                        self.pump_tls();
                    }
                    None => self.parser.push(&control),
                }
            }
        }
        while let Some(reply) = self.parser.next_reply() {
            self.replies.push(reply.unwrap());
        }
    }

    fn pump_tls(&mut self) {
        let Some(tls) = &mut self.tls else { return };
        loop {
            match tls.poll() {
                Ok(TlsEvent::Data(bytes)) => self.parser.push(bytes),
                Ok(TlsEvent::Idle) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // Send what TLS produced (handshake flights).
        let pending = tls.pending_transmit().to_vec();
        if !pending.is_empty() {
            tls.consume_transmit(pending.len()).unwrap();
            self.server
                .handle_receive(Channel::Control, &pending, self.now);
        }
    }

    /// Sends raw plaintext bytes on the control connection (or inside TLS when up).
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        match &mut self.tls {
            Some(tls) => {
                if !bytes.is_empty() {
                    assert_eq!(tls.write(bytes).unwrap(), bytes.len());
                }
                let pending = tls.pending_transmit().to_vec();
                tls.consume_transmit(pending.len()).unwrap();
                self.server
                    .handle_receive(Channel::Control, &pending, self.now);
            }
            None => {
                let taken = self
                    .server
                    .handle_receive(Channel::Control, bytes, self.now);
                assert_eq!(taken, bytes.len());
            }
        }
        self.drain();
        for _ in 0..20 {
            self.pump_tls();
            self.drain();
        }
    }

    /// Sends one command line and returns the replies it produced.
    pub(crate) fn cmd(&mut self, line: &str) -> Vec<Reply> {
        let before = self.replies.len();
        self.send(format!("{line}\r\n").as_bytes());
        self.replies[before..].to_vec()
    }

    /// The code of the last reply.
    pub(crate) fn last_code(&self) -> u16 {
        self.replies.last().map_or(0, |r| r.code.get())
    }

    /// `AUTH TLS` and the control handshake with a fresh client config.
    pub(crate) fn auth_tls(&mut self) {
        let replies = self.cmd("AUTH TLS");
        assert_eq!(replies.last().unwrap().code.get(), 234);
        let config = tls::client_config_for_control(&common::base_client(common::pki()));
        self.start_tls(config);
    }

    pub(crate) fn start_tls(&mut self, config: Arc<rustls::ClientConfig>) {
        self.client_tls = Some(Arc::clone(&config));
        let tls =
            TlsChannel::client_after_auth(config, common::localhost(), 0, TlsLimits::default())
                .unwrap();
        self.tls = Some(tls);
        for _ in 0..20 {
            self.pump_tls();
            self.drain();
        }
        assert!(self.server.is_secure(), "control TLS did not come up");
    }

    pub(crate) fn login(&mut self) {
        self.cmd("USER alice");
        self.cmd("PASS secret");
        let (id, _) = self.requests.pop().expect("login request");
        self.server.answer_login(id, true).unwrap();
        self.drain();
        assert_eq!(self.last_code(), 230);
    }

    /// `EPSV`, the listener's address, and an accepted connection from the control peer.
    pub(crate) fn open_passive(&mut self) -> DataId {
        self.cmd("EPSV");
        let Some(IoRequest::Listen { data, .. }) = self.io.last().copied() else {
            panic!("no listen request: {:?}", self.io)
        };
        self.server
            .handle_listening(data, "127.0.0.1:50123".parse().unwrap(), self.now);
        self.drain();
        assert_eq!(self.last_code(), 229);
        self.server
            .handle_accepted(data, "127.0.0.1:41001".parse().unwrap(), self.now);
        data
    }

    /// A data connection whose TLS client uses `config` (the control one resumes).
    pub(crate) fn data_client(&self, id: DataId, config: Arc<rustls::ClientConfig>) -> RawData {
        let tls = TlsChannel::client(config, common::localhost(), TlsLimits::default()).unwrap();
        RawData {
            id,
            tls: Some(tls),
            received: Vec::new(),
            error: None,
            peer_closed: false,
            resumed: None,
        }
    }

    /// Moves bytes both ways on a data connection until nothing changes.
    pub(crate) fn pump_data(&mut self, data: &mut RawData) {
        for _ in 0..50 {
            let mut moved = false;
            if let Some(tls) = &mut data.tls {
                let pending = tls.pending_transmit().to_vec();
                if !pending.is_empty() {
                    tls.consume_transmit(pending.len()).unwrap();
                    let taken =
                        self.server
                            .handle_receive(Channel::Data(data.id), &pending, self.now);
                    assert_eq!(taken, pending.len());
                    moved = true;
                }
            }
            self.drain();
            let incoming = self.data_out.remove(&data.id).unwrap_or_default();
            if !incoming.is_empty() {
                moved = true;
                match &mut data.tls {
                    Some(tls) => {
                        if tls.error().is_none() {
                            let _ = tls.feed(&incoming);
                        }
                    }
                    None => data.received.extend_from_slice(&incoming),
                }
            }
            if let Some(tls) = &mut data.tls {
                loop {
                    match tls.poll() {
                        Ok(TlsEvent::Data(bytes)) => data.received.extend_from_slice(bytes),
                        Ok(TlsEvent::HandshakeComplete) => {
                            data.resumed = tls.handshake_kind().map(|k| k.is_resumed());
                        }
                        Ok(TlsEvent::PeerClosed) => data.peer_closed = true,
                        Ok(TlsEvent::Idle) => break,
                        Ok(TlsEvent::Closed) => {}
                        Err(err) => {
                            data.error = Some(err);
                            break;
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    pub(crate) fn closed(&self) -> Option<Option<ServerError>> {
        self.events.iter().find_map(|e| match e {
            SEv::Closed(err) => Some(err.clone()),
            _ => None,
        })
    }

    pub(crate) fn control_closed(&self) -> bool {
        self.io.contains(&IoRequest::Close {
            channel: Channel::Control,
        })
    }

    pub(crate) fn tls_error(&self) -> Option<TlsError> {
        self.tls.as_ref().and_then(|t| t.error().cloned())
    }
}
