//! The client session: `ftps_client_session_*`, one to one with `ftps_proto::client`.

use ftps_proto::client::{
    ClientEvent, ClientSession, Completion, DataProtection, ListingEntry, OpError, OpId, OpValue,
    TraceDirection, UsageError,
};
use ftps_proto::codec::listing::{EntryKind, ListEntryKind, ListLine, ListTime};
use ftps_proto::codec::reply::Reply;
use ftps_proto::io::{Channel, DataId, Instant};
use std::net::SocketAddr;

use crate::config::ftps_client_config;
use crate::ffi::{
    Failure, Poisonable, free_handle, ftps_result, guard, in_ref, in_slice, new_handle, out_ref,
    out_slice, with_session,
};
use crate::types::{
    channel_from, fill_output, ftps_bytes, ftps_output, ftps_socket_addr, ftps_time, ftps_tls_info,
    instant, io_error_from,
};

/// One FTPS client session (a control connection and its data connections). Opaque.
#[derive(Debug)]
pub struct ftps_client_session {
    session: ClientSession,
    poisoned: bool,
    /// The last event handed out: what its `ftps_client_event` points into, kept until the
    /// next call.
    event: Option<ClientEvent>,
    /// Text composed for the last event (reply lines, a failure's message, feature lines).
    text: Vec<u8>,
    message: Vec<u8>,
}

impl Poisonable for ftps_client_session {
    fn poisoned(&mut self) -> &mut bool {
        &mut self.poisoned
    }
}

/// What a client event is.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_client_event_kind {
    /// The greeting arrived (`reply`).
    FTPS_CLIENT_EVENT_CONNECTED = 1,
    /// The control connection is protected by TLS (`tls`).
    FTPS_CLIENT_EVENT_SECURED = 2,
    /// Set up (TLS and the trusted FEAT): operations run now. `text`: the feature lines,
    /// joined by `\n`.
    FTPS_CLIENT_EVENT_READY = 3,
    /// The login `op` succeeded (PBSZ/PROT included).
    FTPS_CLIENT_EVENT_LOGGED_IN = 4,
    /// A 1yz reply for `op` (`reply`).
    FTPS_CLIENT_EVENT_PRELIMINARY = 5,
    /// A control line (`text`; `sent` for a command, else a reply line), when tracing.
    FTPS_CLIENT_EVENT_CONTROL_LINE = 6,
    /// Downloaded bytes of `op` wait: call `ftps_client_session_read_data` until it reads 0.
    FTPS_CLIENT_EVENT_READABLE = 7,
    /// The upload `op` takes data with `ftps_client_session_write_data` (again).
    FTPS_CLIENT_EVENT_WRITABLE = 8,
    /// An entry of the listing `op` (`entry`).
    FTPS_CLIENT_EVENT_LISTING = 9,
    /// The operation `op` ended: `ok` with `reply` and the value, or `error`/`message` (and
    /// `reply` when the server refused).
    FTPS_CLIENT_EVENT_COMPLETED = 10,
    /// The session ended: `ok` after QUIT, else `error`/`message`. Always the last event.
    FTPS_CLIENT_EVENT_CLOSED = 11,
    /// An event a newer library version reports: ignore it.
    FTPS_CLIENT_EVENT_OTHER = 12,
}

/// What a successful operation yields beyond its reply.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_value_kind {
    /// Nothing.
    FTPS_VALUE_NONE = 0,
    /// `path`: PWD, and MKD when the server names the directory.
    FTPS_VALUE_PATH = 1,
    /// `number`: SIZE.
    FTPS_VALUE_SIZE = 2,
    /// `time`: MDTM.
    FTPS_VALUE_MODIFIED = 3,
    /// A transfer: `number` bytes moved, `data_resumed`.
    FTPS_VALUE_TRANSFER = 4,
}

/// What a listing entry is.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_entry_kind {
    /// Not said (NLST names).
    FTPS_ENTRY_UNKNOWN = 0,
    /// A regular file.
    FTPS_ENTRY_FILE = 1,
    /// A directory (MLSD `dir`, `cdir`, `pdir`).
    FTPS_ENTRY_DIRECTORY = 2,
    /// A symbolic link.
    FTPS_ENTRY_SYMLINK = 3,
    /// Something else (a device, an OS-specific type).
    FTPS_ENTRY_OTHER = 4,
    /// A line that could not be understood (`line` holds it, or nothing when too long).
    FTPS_ENTRY_UNPARSED = 5,
}

/// One listing entry, borrowed from the session until the next call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ftps_list_entry {
    /// File, directory, …
    pub kind: ftps_entry_kind,
    /// The name (raw bytes, may contain spaces, need not be UTF-8).
    pub name: ftps_bytes,
    /// Whether `size` is known.
    pub has_size: bool,
    /// Size in bytes.
    pub size: u64,
    /// Whether `modified` is known (with its year).
    pub has_modified: bool,
    /// Last modification (UTC for MLSD; the server's local time for LIST).
    pub modified: ftps_time,
    /// UNPARSED: the line.
    pub line: ftps_bytes,
}

impl Default for ftps_list_entry {
    fn default() -> Self {
        Self {
            kind: ftps_entry_kind::FTPS_ENTRY_UNKNOWN,
            name: ftps_bytes::EMPTY,
            has_size: false,
            size: 0,
            has_modified: false,
            modified: ftps_time::default(),
            line: ftps_bytes::EMPTY,
        }
    }
}

/// A reply: its code and its lines joined by `\n` (borrowed until the next call).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ftps_reply {
    /// The three-digit code; 0 when the event has no reply.
    pub code: u16,
    /// The text of its lines, joined by `\n`, without the codes.
    pub text: ftps_bytes,
}

/// A client event; which fields mean something depends on `kind`. Everything it points to
/// is owned by the session and valid until the next call on it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ftps_client_event {
    /// What happened.
    pub kind: ftps_client_event_kind,
    /// The operation (LOGGED_IN, PRELIMINARY, READABLE, WRITABLE, LISTING, COMPLETED).
    pub op: u64,
    /// CONNECTED, PRELIMINARY, COMPLETED (and failures that carry one).
    pub reply: ftps_reply,
    /// COMPLETED, CLOSED: success.
    pub ok: bool,
    /// COMPLETED, CLOSED: the failure's code (`FTPS_OK` when `ok`).
    pub error: ftps_result,
    /// COMPLETED, CLOSED: the failure's description (empty when `ok`).
    pub message: ftps_bytes,
    /// COMPLETED: what `path`, `number`, `time`, `data_resumed` hold.
    pub value_kind: ftps_value_kind,
    /// FTPS_VALUE_PATH.
    pub path: ftps_bytes,
    /// FTPS_VALUE_SIZE: the size; FTPS_VALUE_TRANSFER: the payload bytes moved.
    pub number: u64,
    /// FTPS_VALUE_MODIFIED.
    pub time: ftps_time,
    /// FTPS_VALUE_TRANSFER: 1 when the data connection resumed the control connection's TLS
    /// session, 0 when not, -1 in clear.
    pub data_resumed: i8,
    /// SECURED.
    pub tls: ftps_tls_info,
    /// READY: feature lines joined by `\n`; CONTROL_LINE: the line.
    pub text: ftps_bytes,
    /// CONTROL_LINE: `true` for a command sent, `false` for a reply line received.
    pub sent: bool,
    /// LISTING.
    pub entry: ftps_list_entry,
}

impl Default for ftps_client_event {
    fn default() -> Self {
        Self {
            kind: ftps_client_event_kind::FTPS_CLIENT_EVENT_OTHER,
            op: 0,
            reply: ftps_reply::default(),
            ok: false,
            error: ftps_result::FTPS_OK,
            message: ftps_bytes::EMPTY,
            value_kind: ftps_value_kind::FTPS_VALUE_NONE,
            path: ftps_bytes::EMPTY,
            number: 0,
            time: ftps_time::default(),
            data_resumed: -1,
            tls: ftps_tls_info::default(),
            text: ftps_bytes::EMPTY,
            sent: false,
            entry: ftps_list_entry::default(),
        }
    }
}

impl ftps_client_session {
    /// Keeps `event` and describes it in `out` (views into the kept event and text).
    fn describe(&mut self, event: ClientEvent, out: &mut ftps_client_event) {
        use ftps_client_event_kind as Kind;
        *out = ftps_client_event::default();
        self.text.clear();
        self.message.clear();
        // Composed text first (it must not move once views of it are taken).
        match &event {
            ClientEvent::Connected { greeting: reply }
            | ClientEvent::Preliminary { reply, .. }
            | ClientEvent::Completed {
                result: Ok(Completion { reply, .. }),
                ..
            } => self.text = reply.text(),
            ClientEvent::Completed { result: Err(e), .. } => {
                self.message = e.to_string().into_bytes();
                if let Some(reply) = e.reply() {
                    self.text = reply.text();
                }
            }
            ClientEvent::Closed { error: Some(e) } => {
                self.message = e.to_string().into_bytes();
                if let Some(reply) = e.reply() {
                    self.text = reply.text();
                }
            }
            ClientEvent::Ready { features } => self.text = features.join(&b'\n'),
            _ => {}
        }
        let event = self.event.insert(event);
        let reply_view = |reply: &Reply, text: &[u8]| ftps_reply {
            code: reply.code.get(),
            text: ftps_bytes::of(text),
        };
        match event {
            ClientEvent::Connected { greeting } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_CONNECTED;
                out.reply = reply_view(greeting, &self.text);
            }
            ClientEvent::Secured { info } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_SECURED;
                out.tls = ftps_tls_info::of(info);
            }
            ClientEvent::Ready { .. } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_READY;
                out.text = ftps_bytes::of(&self.text);
            }
            ClientEvent::LoggedIn { op } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_LOGGED_IN;
                out.op = op.get();
            }
            ClientEvent::Preliminary { op, reply } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_PRELIMINARY;
                out.op = op.get();
                out.reply = reply_view(reply, &self.text);
            }
            ClientEvent::ControlLine { direction, line } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_CONTROL_LINE;
                out.sent = *direction == TraceDirection::Sent;
                out.text = ftps_bytes::of(line);
            }
            ClientEvent::Readable { op } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_READABLE;
                out.op = op.get();
            }
            ClientEvent::Writable { op } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_WRITABLE;
                out.op = op.get();
            }
            ClientEvent::Listing { op, entry } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_LISTING;
                out.op = op.get();
                out.entry = list_entry(entry);
            }
            ClientEvent::Completed { op, result } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_COMPLETED;
                out.op = op.get();
                match result {
                    Ok(done) => {
                        out.ok = true;
                        out.reply = reply_view(&done.reply, &self.text);
                        describe_value(&done.value, out);
                    }
                    Err(error) => fail_view(error, &self.message, &self.text, out),
                }
            }
            ClientEvent::Closed { error } => {
                out.kind = Kind::FTPS_CLIENT_EVENT_CLOSED;
                match error {
                    None => out.ok = true,
                    Some(error) => {
                        out.error = ftps_result::from_kind(error.kind());
                        out.message = ftps_bytes::of(&self.message);
                        if let Some(reply) = error.reply() {
                            out.reply = reply_view(reply, &self.text);
                        }
                    }
                }
            }
            _ => out.kind = Kind::FTPS_CLIENT_EVENT_OTHER,
        }
    }
}

fn fail_view(error: &OpError, message: &[u8], text: &[u8], out: &mut ftps_client_event) {
    out.ok = false;
    out.error = ftps_result::from_kind(error.kind());
    out.message = ftps_bytes::of(message);
    if let Some(reply) = error.reply() {
        out.reply = ftps_reply {
            code: reply.code.get(),
            text: ftps_bytes::of(text),
        };
    }
}

fn describe_value(value: &OpValue, out: &mut ftps_client_event) {
    match value {
        OpValue::Path(path) => {
            out.value_kind = ftps_value_kind::FTPS_VALUE_PATH;
            out.path = ftps_bytes::of(path);
        }
        OpValue::Size(size) => {
            out.value_kind = ftps_value_kind::FTPS_VALUE_SIZE;
            out.number = *size;
        }
        OpValue::Modified(time) => {
            out.value_kind = ftps_value_kind::FTPS_VALUE_MODIFIED;
            out.time = (*time).into();
        }
        OpValue::Transfer { bytes, resumed } => {
            out.value_kind = ftps_value_kind::FTPS_VALUE_TRANSFER;
            out.number = *bytes;
            out.data_resumed = resumed.map_or(-1, i8::from);
        }
        _ => out.value_kind = ftps_value_kind::FTPS_VALUE_NONE,
    }
}

fn list_entry(entry: &ListingEntry) -> ftps_list_entry {
    use ftps_entry_kind as Kind;
    let mut out = ftps_list_entry::default();
    match entry {
        ListingEntry::Mlsd(mlsx) => {
            out.name = ftps_bytes::of(&mlsx.name);
            out.kind = match mlsx.kind() {
                Some(EntryKind::File) => Kind::FTPS_ENTRY_FILE,
                Some(EntryKind::Dir | EntryKind::Cdir | EntryKind::Pdir) => {
                    Kind::FTPS_ENTRY_DIRECTORY
                }
                Some(EntryKind::OsSpecific { kind, .. })
                    if kind.starts_with(b"slink") || kind.starts_with(b"symlink") =>
                {
                    Kind::FTPS_ENTRY_SYMLINK
                }
                Some(_) => Kind::FTPS_ENTRY_OTHER,
                None => Kind::FTPS_ENTRY_UNKNOWN,
            };
            if let Some(size) = mlsx.size() {
                out.has_size = true;
                out.size = size;
            }
            if let Some(time) = mlsx.modify() {
                out.has_modified = true;
                out.modified = time.into();
            }
        }
        ListingEntry::List(ListLine::Entry(line)) => {
            out.name = ftps_bytes::of(&line.name);
            out.kind = match line.kind {
                ListEntryKind::File => Kind::FTPS_ENTRY_FILE,
                ListEntryKind::Directory => Kind::FTPS_ENTRY_DIRECTORY,
                ListEntryKind::Symlink => Kind::FTPS_ENTRY_SYMLINK,
                ListEntryKind::Other(_) => Kind::FTPS_ENTRY_OTHER,
            };
            out.has_size = true;
            out.size = line.size;
            let (year, month, day, hour, minute) = match line.time {
                ListTime::Dated { year, month, day } => (Some(year), month, day, 0, 0),
                ListTime::DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                } => (Some(year), month, day, hour, minute),
                ListTime::Recent {
                    month,
                    day,
                    hour,
                    minute,
                } => (None, month, day, hour, minute),
            };
            out.has_modified = year.is_some();
            out.modified = ftps_time {
                year: year.unwrap_or(0),
                month,
                day,
                hour,
                minute,
                second: 0,
                nanos: 0,
            };
        }
        ListingEntry::List(ListLine::Unparsed(line)) => {
            out.kind = Kind::FTPS_ENTRY_UNPARSED;
            out.line = ftps_bytes::of(line);
        }
        ListingEntry::List(_) | ListingEntry::Invalid(_) => out.kind = Kind::FTPS_ENTRY_UNPARSED,
        ListingEntry::Name(name) => out.name = ftps_bytes::of(name),
    }
    out
}

/// Starts a client session with the server at `peer` (the caller resolved the name of the
/// config): its first output asks to connect the control channel. `now_ns` is the caller's
/// monotonic clock in nanoseconds, as for every later call.
///
/// # Safety
/// `config` a live config (used by no other thread during the call); `peer` valid; `out`
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_new(
    config: *mut ftps_client_config,
    peer: *const ftps_socket_addr,
    now_ns: u64,
    out: *mut *mut ftps_client_session,
) -> ftps_result {
    guard(|| {
        // SAFETY: as the caller promises.
        let config = unsafe { out_ref(config, "config") }?;
        // SAFETY: as the caller promises.
        let peer = unsafe { in_ref(peer, "peer") }?.to_rust()?;
        let session = ClientSession::new(config.session_config(peer)?, instant(now_ns));
        let handle = ftps_client_session {
            session,
            poisoned: false,
            event: None,
            text: Vec::new(),
            message: Vec::new(),
        };
        // SAFETY: as the caller promises.
        unsafe { new_handle(out, handle) }
    })
}

/// Frees a client session (NULL is ignored), poisoned or not. Close its sockets yourself.
///
/// # Safety
/// `session` must be NULL or from `ftps_client_session_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_free(session: *mut ftps_client_session) {
    // SAFETY: as the caller promises.
    unsafe { free_handle(session) }
}

/// Runs `body` with the core session; drops the last event first (its views end with the
/// call that follows it).
///
/// # Safety
/// As [`with_session`].
unsafe fn with_client(
    session: *mut ftps_client_session,
    body: impl FnOnce(&mut ftps_client_session) -> Result<(), Failure>,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_session(session, |handle| {
            handle.event = None;
            body(handle)
        })
    }
}

/// The drain: writes the next thing to do to `*out` (and, for `FTPS_OUTPUT_EVENT`, the event
/// to `*event`). Call until `out->kind` is `FTPS_OUTPUT_WAIT`. Transmit bytes are written to
/// `buf` (64 KiB is a good size; with `buf_len` 0 nothing is transmitted).
///
/// # Safety
/// `session` live; `buf` valid for `buf_len` writable bytes; `out`, `event` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_poll_output(
    session: *mut ftps_client_session,
    buf: *mut u8,
    buf_len: usize,
    now_ns: u64,
    out: *mut ftps_output,
    event: *mut ftps_client_event,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            let buf = out_slice(buf, buf_len, "buf")?;
            let out = out_ref(out, "out")?;
            let event_out = out_ref(event, "event")?;
            let output = handle.session.poll_output(buf, instant(now_ns));
            if let Some(event) = fill_output(output, out) {
                handle.describe(event, event_out);
            }
            Ok(())
        })
    }
}

/// Bytes received on `channel`: `*taken` says how many the session took. Keep the rest, stop
/// reading that socket, and feed the rest after the next drain.
///
/// # Safety
/// `session` live; `data` valid for `len` bytes; `taken` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_receive(
    session: *mut ftps_client_session,
    channel: u32,
    data: *const u8,
    len: usize,
    now_ns: u64,
    taken: *mut usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            let data = in_slice(data, len, "data")?;
            let taken = out_ref(taken, "taken")?;
            *taken = handle
                .session
                .handle_receive(channel_from(channel), data, instant(now_ns));
            Ok(())
        })
    }
}

/// Runs a channel input on the core session.
///
/// # Safety
/// As [`with_session`].
unsafe fn channel_input(
    session: *mut ftps_client_session,
    channel: u32,
    now_ns: u64,
    input: fn(&mut ClientSession, Channel, Instant),
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            input(&mut handle.session, channel_from(channel), instant(now_ns));
            Ok(())
        })
    }
}

// The exported functions are written out one by one (no macros): cbindgen reads the source
// without expanding macros, and a function it cannot see is missing from the header.

/// End of stream on `channel`, after every byte before it was taken.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_eof(
    session: *mut ftps_client_session,
    channel: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { channel_input(session, channel, now_ns, ClientSession::handle_eof) }
}

/// The socket of `channel` is full and bytes of it are held: nothing more is handed out for
/// it until `ftps_client_session_handle_transmit_ready` (other channels keep flowing).
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_transmit_blocked(
    session: *mut ftps_client_session,
    channel: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        channel_input(
            session,
            channel,
            now_ns,
            ClientSession::handle_transmit_blocked,
        )
    }
}

/// The bytes held for `channel` were written.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_transmit_ready(
    session: *mut ftps_client_session,
    channel: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        channel_input(
            session,
            channel,
            now_ns,
            ClientSession::handle_transmit_ready,
        )
    }
}

/// Runs an input that takes a channel and an address on the core session.
///
/// # Safety
/// As [`with_session`]; `addr` NULL or valid.
unsafe fn address_input(
    session: *mut ftps_client_session,
    channel: u32,
    addr: *const ftps_socket_addr,
    now_ns: u64,
    input: fn(&mut ClientSession, Channel, SocketAddr, Instant) -> Result<(), Failure>,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            let addr = in_ref(addr, "addr")?.to_rust()?;
            input(
                &mut handle.session,
                channel_from(channel),
                addr,
                instant(now_ns),
            )
        })
    }
}

/// The data id of a data channel; the control channel has no listener.
fn data_id(channel: Channel) -> Result<DataId, Failure> {
    match channel {
        Channel::Data(data) => Ok(data),
        Channel::Control => Err(Failure::invalid(
            "channel 0 is the control channel: listeners are data channels",
        )),
    }
}

/// The connection asked for by `FTPS_OUTPUT_CONNECT` is up; `addr` is its local address.
///
/// # Safety
/// `session` a live session; `addr` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_connected(
    session: *mut ftps_client_session,
    channel: u32,
    addr: *const ftps_socket_addr,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        address_input(session, channel, addr, now_ns, |s, channel, addr, now| {
            s.handle_connected(channel, addr, now);
            Ok(())
        })
    }
}

/// The listener of the data channel `channel` (`FTPS_OUTPUT_LISTEN`) is bound to `addr`.
/// Channel 0 (control) is `FTPS_ERR_INVALID_PARAMETER`.
///
/// # Safety
/// `session` a live session; `addr` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_listening(
    session: *mut ftps_client_session,
    channel: u32,
    addr: *const ftps_socket_addr,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        address_input(session, channel, addr, now_ns, |s, channel, addr, now| {
            s.handle_listening(data_id(channel)?, addr, now);
            Ok(())
        })
    }
}

/// The listener of the data channel `channel` accepted a connection from `addr` (the
/// peer's address). Channel 0 (control) is `FTPS_ERR_INVALID_PARAMETER`.
///
/// # Safety
/// `session` a live session; `addr` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_accepted(
    session: *mut ftps_client_session,
    channel: u32,
    addr: *const ftps_socket_addr,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        address_input(session, channel, addr, now_ns, |s, channel, addr, now| {
            s.handle_accepted(data_id(channel)?, addr, now);
            Ok(())
        })
    }
}

/// A socket operation on `channel` failed: `kind` is an `ftps_io_error` value.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_io_error(
    session: *mut ftps_client_session,
    channel: u32,
    kind: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            let kind = io_error_from(kind)?;
            handle
                .session
                .handle_io_error(channel_from(channel), kind.into(), instant(now_ns));
            Ok(())
        })
    }
}

/// Writing the bytes of an `FTPS_OUTPUT_TRANSMIT` for `channel` failed (the peer reset the
/// connection): `kind` is an `ftps_io_error` value. Unlike `*_handle_io_error`, the channel's
/// receive side stays open: keep reading it and report its end as usual (what the peer sent
/// before its reset may complete a transfer).
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_transmit_failed(
    session: *mut ftps_client_session,
    channel: u32,
    kind: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            let kind = io_error_from(kind)?;
            handle.session.handle_transmit_failed(
                channel_from(channel),
                kind.into(),
                instant(now_ns),
            );
            Ok(())
        })
    }
}

/// The deadline of the last `FTPS_OUTPUT_WAIT` passed.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_handle_timeout(
    session: *mut ftps_client_session,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            handle.session.handle_timeout(instant(now_ns));
            Ok(())
        })
    }
}

/// Queues an operation made by `verb` and writes its id to `*op`.
///
/// # Safety
/// `session` a live session; `op` valid for a write.
unsafe fn queue(
    session: *mut ftps_client_session,
    op: *mut u64,
    verb: impl FnOnce(&mut ClientSession) -> Result<Result<OpId, UsageError>, Failure>,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            let op = out_ref(op, "op")?;
            *op = verb(&mut handle.session)??.get();
            Ok(())
        })
    }
}

/// Queues a verb that takes one path (bytes, need not be UTF-8).
///
/// # Safety
/// As [`queue`]; `path` valid for `path_len` bytes.
unsafe fn path_verb(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
    verb: fn(&mut ClientSession, &[u8]) -> Result<OpId, UsageError>,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        queue(session, op, |s| {
            let path = in_slice(path, path_len, "path")?;
            Ok(verb(s, path))
        })
    }
}

/// Queues a verb that takes an optional path (NULL: none).
///
/// # Safety
/// As [`queue`]; `path` NULL or valid for `path_len` bytes.
unsafe fn optional_path_verb(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
    verb: fn(&mut ClientSession, Option<&[u8]>) -> Result<OpId, UsageError>,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        queue(session, op, |s| {
            let path = if path.is_null() {
                None
            } else {
                Some(in_slice(path, path_len, "path")?)
            };
            Ok(verb(s, path))
        })
    }
}

/// `STOR`: write with `ftps_client_session_write_data` after WRITABLE events, end with
/// `ftps_client_session_finish_upload`.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_store(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { path_verb(session, path, path_len, op, ClientSession::store) }
}

/// `APPE`: like store, appending.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_append(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { path_verb(session, path, path_len, op, ClientSession::append) }
}

/// `MKD`: completes with FTPS_VALUE_PATH when the server names the directory.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_mkdir(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { path_verb(session, path, path_len, op, ClientSession::mkd) }
}

/// `RMD`.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_rmdir(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { path_verb(session, path, path_len, op, ClientSession::rmd) }
}

/// `DELE`.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_delete(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { path_verb(session, path, path_len, op, ClientSession::dele) }
}

/// `CWD`.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_cwd(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { path_verb(session, path, path_len, op, ClientSession::cwd) }
}

/// `SIZE`: completes with FTPS_VALUE_SIZE.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_size(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { path_verb(session, path, path_len, op, ClientSession::size) }
}

/// `MDTM`: completes with FTPS_VALUE_MODIFIED.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_mdtm(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { path_verb(session, path, path_len, op, ClientSession::mdtm) }
}

/// The best listing the server offers (MLSD when FEAT lists MLST, else LIST parsed):
/// entries arrive as LISTING events.
///
/// # Safety
/// `session` a live session; `path` NULL or valid for `path_len` bytes; `op` valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_list_entries(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { optional_path_verb(session, path, path_len, op, ClientSession::list_entries) }
}

/// `LIST` parsed: entries arrive as LISTING events.
///
/// # Safety
/// `session` a live session; `path` NULL or valid for `path_len` bytes; `op` valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_list(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { optional_path_verb(session, path, path_len, op, ClientSession::list) }
}

/// `LIST` raw: the bytes are read with `ftps_client_session_read_data` after READABLE.
///
/// # Safety
/// `session` a live session; `path` NULL or valid for `path_len` bytes; `op` valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_list_raw(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { optional_path_verb(session, path, path_len, op, ClientSession::list_raw) }
}

/// `MLSD`: entries arrive as LISTING events.
///
/// # Safety
/// `session` a live session; `path` NULL or valid for `path_len` bytes; `op` valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_mlsd(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { optional_path_verb(session, path, path_len, op, ClientSession::mlsd) }
}

/// `NLST`: names arrive as LISTING events.
///
/// # Safety
/// `session` a live session; `path` NULL or valid for `path_len` bytes; `op` valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_nlst(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { optional_path_verb(session, path, path_len, op, ClientSession::nlst) }
}

/// `PWD`: completes with FTPS_VALUE_PATH.
///
/// # Safety
/// `session` a live session; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_pwd(
    session: *mut ftps_client_session,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { queue(session, op, |s| Ok(s.pwd())) }
}

/// `NOOP`.
///
/// # Safety
/// `session` a live session; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_noop(
    session: *mut ftps_client_session,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { queue(session, op, |s| Ok(s.noop())) }
}

/// `CCC`: clears the control channel after the server's 200 (RFC 4217 §6).
///
/// # Safety
/// `session` a live session; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_ccc(
    session: *mut ftps_client_session,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { queue(session, op, |s| Ok(s.ccc())) }
}

/// `QUIT`: the session closes after the reply (CLOSED with `ok`).
///
/// # Safety
/// `session` a live session; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_quit(
    session: *mut ftps_client_session,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { queue(session, op, |s| Ok(s.quit())) }
}

/// Logs in: `USER`, `PASS` (and `ACCT` when `account` is not NULL), then `PBSZ 0`/`PROT`
/// under TLS. The password never appears in events or messages.
///
/// # Safety
/// `session` live; the strings valid for their lengths (`account` may be NULL); `op` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_login(
    session: *mut ftps_client_session,
    user: *const u8,
    user_len: usize,
    password: *const u8,
    password_len: usize,
    account: *const u8,
    account_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        queue(session, op, |s| {
            let user = in_slice(user, user_len, "user")?;
            let password = in_slice(password, password_len, "password")?;
            let account = if account.is_null() {
                None
            } else {
                Some(in_slice(account, account_len, "account")?)
            };
            Ok(s.login(user, password, account))
        })
    }
}

/// `RETR path`, from byte `offset` (`REST`) when it is not 0: read the bytes with
/// `ftps_client_session_read_data` after READABLE events.
///
/// # Safety
/// `session` live; `path` valid for `path_len` bytes; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_retrieve(
    session: *mut ftps_client_session,
    path: *const u8,
    path_len: usize,
    offset: u64,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        queue(session, op, |s| {
            let path = in_slice(path, path_len, "path")?;
            Ok(s.retrieve(path, (offset > 0).then_some(offset)))
        })
    }
}

/// `RNFR from` + `RNTO to`.
///
/// # Safety
/// `session` live; `from`/`to` valid for their lengths; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_rename(
    session: *mut ftps_client_session,
    from: *const u8,
    from_len: usize,
    to: *const u8,
    to_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        queue(session, op, |s| {
            let from = in_slice(from, from_len, "from")?;
            let to = in_slice(to, to_len, "to")?;
            Ok(s.rename(from, to))
        })
    }
}

/// Any command (`verb`, and `argument` unless NULL); completes with its final reply.
/// Transfer verbs and `PASS` outside a login are refused (use their functions).
///
/// # Safety
/// `session` live; `verb`/`argument` valid for their lengths (`argument` may be NULL); `op`
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_raw(
    session: *mut ftps_client_session,
    verb: *const u8,
    verb_len: usize,
    argument: *const u8,
    argument_len: usize,
    op: *mut u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        queue(session, op, |s| {
            let verb = in_slice(verb, verb_len, "verb")?;
            let argument = if argument.is_null() {
                None
            } else {
                Some(in_slice(argument, argument_len, "argument")?)
            };
            Ok(s.raw_command(verb, argument))
        })
    }
}

/// Switches the protection of later data connections: `PBSZ 0`, then `PROT P` (`private`)
/// or `PROT C`.
///
/// # Safety
/// `session` live; `op` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_set_protection(
    session: *mut ftps_client_session,
    private_data: bool,
    op: *mut u64,
) -> ftps_result {
    let level = if private_data {
        DataProtection::Private
    } else {
        DataProtection::Clear
    };
    // SAFETY: as the caller promises.
    unsafe { queue(session, op, |s| Ok(s.set_data_protection(level))) }
}

/// Takes downloaded bytes of `op` into `buf`; `*read` says how many (0: none wait now).
///
/// # Safety
/// `session` live; `buf` valid for `buf_len` writable bytes; `read` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_read_data(
    session: *mut ftps_client_session,
    op: u64,
    buf: *mut u8,
    buf_len: usize,
    read: *mut usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            let buf = out_slice(buf, buf_len, "buf")?;
            let read = out_ref(read, "read")?;
            *read = handle.session.read_data(OpId::from_raw(op), buf)?;
            Ok(())
        })
    }
}

/// Writes upload bytes of `op`; `*taken` says how many were taken (fewer than `len`: wait for
/// the next WRITABLE event).
///
/// # Safety
/// `session` live; `data` valid for `len` bytes; `taken` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_write_data(
    session: *mut ftps_client_session,
    op: u64,
    data: *const u8,
    len: usize,
    taken: *mut usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            let data = in_slice(data, len, "data")?;
            let taken = out_ref(taken, "taken")?;
            *taken = handle.session.write_data(OpId::from_raw(op), data)?;
            Ok(())
        })
    }
}

/// Runs a call that takes an operation id.
///
/// # Safety
/// As [`with_session`].
unsafe fn op_call(
    session: *mut ftps_client_session,
    op: u64,
    call: fn(&mut ClientSession, OpId) -> Result<(), UsageError>,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client(session, |handle| {
            call(&mut handle.session, OpId::from_raw(op))?;
            Ok(())
        })
    }
}

/// Ends the upload `op` (close_notify, then the write side is shut down).
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_finish_upload(
    session: *mut ftps_client_session,
    op: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { op_call(session, op, ClientSession::finish_upload) }
}

/// Aborts `op`: a queued operation is dropped, a running transfer ended with `ABOR`.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_abort(
    session: *mut ftps_client_session,
    op: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { op_call(session, op, ClientSession::abort) }
}

/// Writes the session's state: closed (the CLOSED event may still be pending), logged in,
/// control connection protected by TLS. Any pointer may be NULL.
///
/// # Safety
/// `session` live; non-NULL outputs valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_session_state(
    session: *mut ftps_client_session,
    closed: *mut bool,
    logged_in: *mut bool,
    secure: *mut bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_session(session, |handle| {
            for (ptr, value) in [
                (closed, handle.session.is_closed()),
                (logged_in, handle.session.is_logged_in()),
                (secure, handle.session.is_secure()),
            ] {
                if let Some(out) = ptr.as_mut() {
                    *out = value;
                }
            }
            Ok(())
        })
    }
}
