//! The server session: `ftps_server_session_*`, one to one with `ftps_proto::server`.
//!
//! A C server accepts a control connection, makes a session for it, feeds it what its sockets
//! did and drains it; every login and file-system decision comes out as a REQUEST event,
//! answered with one of the `ftps_server_session_answer_*` functions. Transfers then move
//! their bytes with `write_data`/`write_entry`/`finish_data` (downloads and listings) and
//! `read_data`/`finish_upload` (uploads).

use std::net::SocketAddr;

use ftps_proto::codec::listing::Permissions;
use ftps_proto::io::{Channel, DataId, Instant};
use ftps_proto::server::{
    Answer, DirEntry, DirEntryKind, FsError, ListFormat, Refusal, Request, RequestId, ServerEvent,
    ServerSession,
};

use crate::config::ftps_server_config;
use crate::ffi::{
    Failure, Poisonable, free_handle, ftps_result, guard, in_ref, in_slice, new_handle, out_ref,
    out_slice, with_session,
};
use crate::types::{
    channel_from, fill_output, ftps_bytes, ftps_output, ftps_socket_addr, ftps_time, ftps_tls_info,
    instant, io_error_from,
};

/// One FTPS server session (an accepted control connection and its data connections). Opaque.
#[derive(Debug)]
pub struct ftps_server_session {
    session: ServerSession,
    poisoned: bool,
    /// The last event handed out: what its `ftps_server_event` points into, kept until the
    /// next call.
    event: Option<ServerEvent>,
    /// Text composed for the last event (a refusal's or a failure's description).
    message: Vec<u8>,
}

impl Poisonable for ftps_server_session {
    fn poisoned(&mut self) -> &mut bool {
        &mut self.poisoned
    }
}

/// What a server event is.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_server_event_kind {
    /// The control connection is protected by TLS (`tls`, with the client's certificate if
    /// it presented one).
    FTPS_SERVER_EVENT_SECURED = 1,
    /// A decision for the application (`id`, `request` and its fields): answer it with
    /// `ftps_server_session_answer_login` (logins) or another `ftps_server_session_answer_*`.
    FTPS_SERVER_EVENT_REQUEST = 2,
    /// The download or listing `id` takes bytes (`ftps_server_session_write_data`) or entries
    /// (`ftps_server_session_write_entry`) again.
    FTPS_SERVER_EVENT_WRITABLE = 3,
    /// Upload bytes of `id` wait: call `ftps_server_session_read_data` until it reads 0.
    FTPS_SERVER_EVENT_READABLE = 4,
    /// The upload `id` ended (`complete`, `bytes`, `data_resumed`). Complete: commit the file
    /// and answer with `ftps_server_session_finish_upload`; incomplete: discard it (no
    /// answer).
    FTPS_SERVER_EVENT_UPLOAD_FINISHED = 5,
    /// The download or listing `id` ended (`complete`, `bytes`, `data_resumed`).
    FTPS_SERVER_EVENT_SEND_FINISHED = 6,
    /// The session refused something for a policy or defence reason (`refusal`, `message`),
    /// for logs; its reply is on its way.
    FTPS_SERVER_EVENT_REFUSED = 7,
    /// A passive data connection from `peer`, not the control peer, was refused (port theft).
    FTPS_SERVER_EVENT_DATA_PEER_REFUSED = 8,
    /// The session ended: `ok` after QUIT, else `error`/`message`. Always the last event.
    FTPS_SERVER_EVENT_CLOSED = 9,
    /// An event a newer library version reports: ignore it.
    FTPS_SERVER_EVENT_OTHER = 10,
}

/// What a REQUEST event asks. Paths are bytes joined to the session's working directory
/// (`/`-separated, not normalised): the application resolves `.`/`..` and keeps them inside
/// the user's root.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_request_kind {
    /// Not a request (the event is another kind).
    FTPS_REQUEST_NONE = 0,
    /// `USER` + `PASS`: `user`, `password`, `client_certificate`, `host`. Answer with
    /// `ftps_server_session_answer_login`.
    FTPS_REQUEST_LOGIN = 1,
    /// `CWD`/`CDUP` to `path`: `answer_path` (the canonical new directory), `answer_done`
    /// (keep `path` as given) or `answer_error`.
    FTPS_REQUEST_CWD = 2,
    /// `MKD path`: `answer_done`, `answer_path` (the name for the `257`) or `answer_error`.
    FTPS_REQUEST_MKDIR = 3,
    /// `RMD path`.
    FTPS_REQUEST_RMDIR = 4,
    /// `DELE path`.
    FTPS_REQUEST_DELETE = 5,
    /// `RNFR path` + `RNTO path2`.
    FTPS_REQUEST_RENAME = 6,
    /// `SIZE path`: `answer_size`.
    FTPS_REQUEST_SIZE = 7,
    /// `MDTM path`: `answer_modified`.
    FTPS_REQUEST_MDTM = 8,
    /// `MLST path`: `answer_entry` (the entry's name is the full path).
    FTPS_REQUEST_MLST = 9,
    /// `LIST`/`NLST`/`MLSD path` (`list_format`): `answer_done` when the directory can be
    /// read, then entries with `write_entry` after each WRITABLE, and `finish_data`.
    FTPS_REQUEST_LIST = 10,
    /// `RETR path` from byte `offset`: `answer_done` when the file is open, then bytes with
    /// `write_data` after each WRITABLE, and `finish_data`.
    FTPS_REQUEST_RETRIEVE = 11,
    /// `STOR`/`APPE`/`STOU path` (`offset`, `append`, `unique`: for STOU `path` is the
    /// directory): `answer_done` when the file is open (STOU: `answer_path` with the name
    /// chosen); bytes come with READABLE, the end with UPLOAD_FINISHED.
    FTPS_REQUEST_STORE = 12,
    /// A request a newer library version asks: refuse it with `answer_error`.
    FTPS_REQUEST_OTHER = 13,
}

/// Which listing an `FTPS_REQUEST_LIST` is for; the session formats the lines.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_list_format {
    /// Not a listing.
    FTPS_LIST_FORMAT_NONE = 0,
    /// `LIST`: `ls -l` lines.
    FTPS_LIST_FORMAT_LIST = 1,
    /// `NLST`: bare names.
    FTPS_LIST_FORMAT_NLST = 2,
    /// `MLSD`: RFC 3659 facts.
    FTPS_LIST_FORMAT_MLSD = 3,
}

/// Why the session refused something (FTPS_SERVER_EVENT_REFUSED).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_refusal {
    /// Not a refusal.
    FTPS_REFUSAL_NONE = 0,
    /// A command that needs TLS came before `AUTH TLS` (`530`).
    FTPS_REFUSAL_TLS_REQUIRED = 1,
    /// `PASS` without the client certificate the policy requires.
    FTPS_REFUSAL_CLIENT_CERTIFICATE_REQUIRED = 2,
    /// A transfer while `PROT` is C and private data is required (`521`).
    FTPS_REFUSAL_PRIVATE_DATA_REQUIRED = 3,
    /// `PROT C` refused by policy (`534`).
    FTPS_REFUSAL_CLEAR_DATA_REFUSED = 4,
    /// `CCC` refused (`534`).
    FTPS_REFUSAL_CCC_REFUSED = 5,
    /// `PORT`/`EPRT` to a host other than the control peer (bounce, `500`).
    FTPS_REFUSAL_FOREIGN_DATA_ADDRESS = 6,
    /// `PORT`/`EPRT` to a port below 1024 (`504`).
    FTPS_REFUSAL_PRIVILEGED_DATA_PORT = 7,
    /// A data connection's TLS did not resume the control connection's session (`522`).
    FTPS_REFUSAL_DATA_TLS_NOT_RESUMED = 8,
    /// A refusal a newer library version reports (`message` says what).
    FTPS_REFUSAL_OTHER = 9,
}

/// Why the application refuses a request or fails a transfer; the session picks the reply
/// code and a fixed text (arguments are never echoed). Passed as `uint32_t` and checked.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_fs_error {
    /// No error: only for `ftps_server_session_finish_upload` (the file is committed).
    FTPS_FS_OK = 0,
    /// No such file or directory (`550`).
    FTPS_FS_NOT_FOUND = 1,
    /// Not allowed (`550`).
    FTPS_FS_PERMISSION_DENIED = 2,
    /// Not a directory, or a directory where a file was needed (`550`; `501` for MLSD).
    FTPS_FS_WRONG_KIND = 3,
    /// Already exists (`550`; `553` for uploads).
    FTPS_FS_ALREADY_EXISTS = 4,
    /// The name is not allowed (`553`).
    FTPS_FS_INVALID_NAME = 5,
    /// Out of space (`452` before a transfer, `552` during one).
    FTPS_FS_NO_SPACE = 6,
    /// Temporarily unavailable, try again (`450`; `451` during a transfer).
    FTPS_FS_UNAVAILABLE = 7,
    /// A local error (`451`).
    FTPS_FS_LOCAL = 8,
}

/// The core's error for an `ftps_fs_error` value from C; `FTPS_FS_OK` (0) is `None`.
fn fs_error_from(raw: u32) -> Result<Option<FsError>, Failure> {
    Ok(Some(match raw {
        0 => return Ok(None),
        1 => FsError::NotFound,
        2 => FsError::PermissionDenied,
        3 => FsError::WrongKind,
        4 => FsError::AlreadyExists,
        5 => FsError::InvalidName,
        6 => FsError::NoSpace,
        7 => FsError::Unavailable,
        8 => FsError::Local,
        other => return Err(Failure::invalid(format!("file-system error {other}"))),
    }))
}

/// An error value that must be one (not `FTPS_FS_OK`).
fn required_fs_error(raw: u32) -> Result<FsError, Failure> {
    fs_error_from(raw)?.ok_or_else(|| Failure::invalid("FTPS_FS_OK is not an error"))
}

/// What an `ftps_dir_entry` is. Passed as `uint32_t` and checked.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_dir_entry_kind {
    /// A regular file.
    FTPS_DIR_ENTRY_FILE = 1,
    /// A directory.
    FTPS_DIR_ENTRY_DIRECTORY = 2,
    /// A symbolic link.
    FTPS_DIR_ENTRY_SYMLINK = 3,
}

/// One directory entry as the application describes it (input): the session formats the
/// `LIST`, `NLST`, `MLSD` and `MLST` lines from it. The pointers are read during the call
/// only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ftps_dir_entry {
    /// The name (the bare name in listings, the full path for MLST); bytes, not
    /// NUL-terminated, need not be UTF-8.
    pub name: *const u8,
    /// Its length.
    pub name_len: usize,
    /// An `ftps_dir_entry_kind` value.
    pub kind: u32,
    /// Size in octets.
    pub size: u64,
    /// Whether `modified` is set.
    pub has_modified: bool,
    /// Last modification (UTC).
    pub modified: ftps_time,
    /// The RFC 3659 `perm` letters (`"r"`, `"el"`, …; unknown letters are ignored); NULL
    /// with length 0 for none.
    pub permissions: *const u8,
    /// Their length.
    pub permissions_len: usize,
    /// Whether `mode` is set.
    pub has_mode: bool,
    /// Unix mode bits (`0644`), for `ls -l` and `UNIX.mode`.
    pub mode: u32,
    /// An opaque unique id (the `unique` fact); NULL for none.
    pub unique: *const u8,
    /// Its length.
    pub unique_len: usize,
}

impl ftps_dir_entry {
    /// The core's entry, checked: a bad kind or time is `FTPS_ERR_INVALID_PARAMETER`.
    ///
    /// # Safety
    /// The pointers must be valid for their lengths (NULL allowed with length 0; `unique`
    /// NULL for none).
    unsafe fn to_rust(self) -> Result<DirEntry, Failure> {
        let kind = match self.kind {
            1 => DirEntryKind::File,
            2 => DirEntryKind::Directory,
            3 => DirEntryKind::Symlink,
            other => return Err(Failure::invalid(format!("entry kind {other}"))),
        };
        // SAFETY: as the caller promises.
        let name = unsafe { in_slice(self.name, self.name_len, "entry name") }?;
        // SAFETY: as the caller promises.
        let permissions =
            unsafe { in_slice(self.permissions, self.permissions_len, "permissions") }?;
        let unique = if self.unique.is_null() {
            None
        } else {
            // SAFETY: non-NULL and, as the caller promises, valid for `unique_len` bytes.
            Some(unsafe { in_slice(self.unique, self.unique_len, "unique") }?.to_vec())
        };
        let modified = if self.has_modified {
            Some(self.modified.to_rust()?)
        } else {
            None
        };
        Ok(DirEntry {
            name: name.to_vec(),
            kind,
            size: self.size,
            modified,
            permissions: Permissions::from_letters(permissions),
            mode: self.has_mode.then_some(self.mode),
            unique,
        })
    }
}

/// A server event; which fields mean something depends on `kind` (and, for REQUEST, on
/// `request`). Everything it points to is owned by the session and valid until the next call
/// on it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ftps_server_event {
    /// What happened.
    pub kind: ftps_server_event_kind,
    /// The request or transfer (REQUEST, WRITABLE, READABLE, UPLOAD_FINISHED, SEND_FINISHED).
    pub id: u64,
    /// REQUEST: what is asked.
    pub request: ftps_request_kind,
    /// REQUEST: the path (every request but LOGIN; RENAME: the existing name).
    pub path: ftps_bytes,
    /// REQUEST RENAME: the new name.
    pub path2: ftps_bytes,
    /// REQUEST LOGIN: the user name.
    pub user: ftps_bytes,
    /// REQUEST LOGIN: the password. A secret: compare it, never log or keep it.
    pub password: ftps_bytes,
    /// REQUEST LOGIN: the client's TLS certificate (DER, end-entity), empty when none.
    pub client_certificate: ftps_bytes,
    /// REQUEST LOGIN: the `HOST` the client named (RFC 7151), empty when none.
    pub host: ftps_bytes,
    /// REQUEST RETRIEVE, STORE: the byte to start at (`REST`).
    pub offset: u64,
    /// REQUEST STORE: `APPE` (append at the end when `offset` is 0).
    pub append: bool,
    /// REQUEST STORE: `STOU` (a new file with a unique name inside `path`).
    pub unique: bool,
    /// REQUEST LIST: the format.
    pub list_format: ftps_list_format,
    /// UPLOAD_FINISHED: every byte arrived and the stream ended cleanly; SEND_FINISHED: the
    /// client received everything.
    pub complete: bool,
    /// UPLOAD_FINISHED, SEND_FINISHED: the payload bytes moved.
    pub bytes: u64,
    /// UPLOAD_FINISHED, SEND_FINISHED: the data connection's TLS resumed the control
    /// connection's session.
    pub data_resumed: bool,
    /// SECURED.
    pub tls: ftps_tls_info,
    /// REFUSED: why.
    pub refusal: ftps_refusal,
    /// REFUSED: a short text for logs; CLOSED: the failure's description (empty when `ok`).
    pub message: ftps_bytes,
    /// DATA_PEER_REFUSED: the refused peer.
    pub peer: ftps_socket_addr,
    /// CLOSED: an orderly end (after QUIT).
    pub ok: bool,
    /// CLOSED: the failure's code (`FTPS_OK` when `ok`).
    pub error: ftps_result,
}

impl Default for ftps_server_event {
    fn default() -> Self {
        Self {
            kind: ftps_server_event_kind::FTPS_SERVER_EVENT_OTHER,
            id: 0,
            request: ftps_request_kind::FTPS_REQUEST_NONE,
            path: ftps_bytes::EMPTY,
            path2: ftps_bytes::EMPTY,
            user: ftps_bytes::EMPTY,
            password: ftps_bytes::EMPTY,
            client_certificate: ftps_bytes::EMPTY,
            host: ftps_bytes::EMPTY,
            offset: 0,
            append: false,
            unique: false,
            list_format: ftps_list_format::FTPS_LIST_FORMAT_NONE,
            complete: false,
            bytes: 0,
            data_resumed: false,
            tls: ftps_tls_info::default(),
            refusal: ftps_refusal::FTPS_REFUSAL_NONE,
            message: ftps_bytes::EMPTY,
            peer: ftps_socket_addr::default(),
            ok: false,
            error: ftps_result::FTPS_OK,
        }
    }
}

impl ftps_server_session {
    /// Keeps `event` and describes it in `out` (views into the kept event and text).
    fn describe(&mut self, event: ServerEvent, out: &mut ftps_server_event) {
        use ftps_server_event_kind as Kind;
        *out = ftps_server_event::default();
        self.message.clear();
        // Composed text first (it must not move once views of it are taken).
        match &event {
            ServerEvent::Refused { reason } => self.message = reason.to_string().into_bytes(),
            ServerEvent::Closed { error: Some(e) } => self.message = e.to_string().into_bytes(),
            _ => {}
        }
        let event = self.event.insert(event);
        match event {
            ServerEvent::Secured { info } => {
                out.kind = Kind::FTPS_SERVER_EVENT_SECURED;
                out.tls = ftps_tls_info::of(info);
            }
            ServerEvent::Request { id, request } => {
                out.kind = Kind::FTPS_SERVER_EVENT_REQUEST;
                out.id = id.get();
                describe_request(request, out);
            }
            ServerEvent::Writable { id } => {
                out.kind = Kind::FTPS_SERVER_EVENT_WRITABLE;
                out.id = id.get();
            }
            ServerEvent::Readable { id } => {
                out.kind = Kind::FTPS_SERVER_EVENT_READABLE;
                out.id = id.get();
            }
            ServerEvent::UploadFinished {
                id,
                complete,
                bytes,
                resumed_tls,
            } => {
                out.kind = Kind::FTPS_SERVER_EVENT_UPLOAD_FINISHED;
                out.id = id.get();
                out.complete = *complete;
                out.bytes = *bytes;
                out.data_resumed = *resumed_tls;
            }
            ServerEvent::SendFinished {
                id,
                complete,
                bytes,
                resumed_tls,
            } => {
                out.kind = Kind::FTPS_SERVER_EVENT_SEND_FINISHED;
                out.id = id.get();
                out.complete = *complete;
                out.bytes = *bytes;
                out.data_resumed = *resumed_tls;
            }
            ServerEvent::Refused { reason } => {
                out.kind = Kind::FTPS_SERVER_EVENT_REFUSED;
                out.refusal = refusal(*reason);
                out.message = ftps_bytes::of(&self.message);
            }
            ServerEvent::DataPeerRefused { peer } => {
                out.kind = Kind::FTPS_SERVER_EVENT_DATA_PEER_REFUSED;
                out.peer = (*peer).into();
            }
            ServerEvent::Closed { error } => {
                out.kind = Kind::FTPS_SERVER_EVENT_CLOSED;
                match error {
                    None => out.ok = true,
                    Some(error) => {
                        out.error = ftps_result::from_kind(error.kind());
                        out.message = ftps_bytes::of(&self.message);
                    }
                }
            }
            _ => out.kind = Kind::FTPS_SERVER_EVENT_OTHER,
        }
    }
}

fn describe_request(request: &Request, out: &mut ftps_server_event) {
    use ftps_request_kind as Kind;
    let (kind, path) = match request {
        Request::Login {
            user,
            password,
            client_certificate,
            host,
        } => {
            out.user = ftps_bytes::of(user);
            out.password = ftps_bytes::of(password.as_bytes());
            out.client_certificate = client_certificate
                .as_deref()
                .map_or(ftps_bytes::EMPTY, ftps_bytes::of);
            out.host = host.as_deref().map_or(ftps_bytes::EMPTY, ftps_bytes::of);
            out.request = Kind::FTPS_REQUEST_LOGIN;
            return;
        }
        Request::Cwd { path } => (Kind::FTPS_REQUEST_CWD, path),
        Request::Mkdir { path } => (Kind::FTPS_REQUEST_MKDIR, path),
        Request::Rmdir { path } => (Kind::FTPS_REQUEST_RMDIR, path),
        Request::Delete { path } => (Kind::FTPS_REQUEST_DELETE, path),
        Request::Rename { from, to } => {
            out.path2 = ftps_bytes::of(to);
            (Kind::FTPS_REQUEST_RENAME, from)
        }
        Request::Size { path } => (Kind::FTPS_REQUEST_SIZE, path),
        Request::Mdtm { path } => (Kind::FTPS_REQUEST_MDTM, path),
        Request::Mlst { path } => (Kind::FTPS_REQUEST_MLST, path),
        Request::List { path, format } => {
            out.list_format = match format {
                ListFormat::List => ftps_list_format::FTPS_LIST_FORMAT_LIST,
                ListFormat::Nlst => ftps_list_format::FTPS_LIST_FORMAT_NLST,
                ListFormat::Mlsd => ftps_list_format::FTPS_LIST_FORMAT_MLSD,
            };
            (Kind::FTPS_REQUEST_LIST, path)
        }
        Request::Retrieve { path, offset } => {
            out.offset = *offset;
            (Kind::FTPS_REQUEST_RETRIEVE, path)
        }
        Request::Store {
            path,
            offset,
            append,
            unique,
        } => {
            out.offset = *offset;
            out.append = *append;
            out.unique = *unique;
            (Kind::FTPS_REQUEST_STORE, path)
        }
        _ => {
            out.request = Kind::FTPS_REQUEST_OTHER;
            return;
        }
    };
    out.request = kind;
    out.path = ftps_bytes::of(path);
}

fn refusal(reason: Refusal) -> ftps_refusal {
    use ftps_refusal as R;
    match reason {
        Refusal::TlsRequired => R::FTPS_REFUSAL_TLS_REQUIRED,
        Refusal::ClientCertificateRequired => R::FTPS_REFUSAL_CLIENT_CERTIFICATE_REQUIRED,
        Refusal::PrivateDataRequired => R::FTPS_REFUSAL_PRIVATE_DATA_REQUIRED,
        Refusal::ClearDataRefused => R::FTPS_REFUSAL_CLEAR_DATA_REFUSED,
        Refusal::CccRefused => R::FTPS_REFUSAL_CCC_REFUSED,
        Refusal::ForeignDataAddress => R::FTPS_REFUSAL_FOREIGN_DATA_ADDRESS,
        Refusal::PrivilegedDataPort => R::FTPS_REFUSAL_PRIVILEGED_DATA_PORT,
        Refusal::DataTlsNotResumed => R::FTPS_REFUSAL_DATA_TLS_NOT_RESUMED,
        _ => R::FTPS_REFUSAL_OTHER,
    }
}

/// Starts a server session for a control connection the caller accepted from `peer` on its
/// local address `local`: draining it sends the greeting (implicit FTPS: nothing until the
/// client's TLS hello). `now_ns` is the caller's monotonic clock in nanoseconds, as for every
/// later call.
///
/// # Safety
/// `config` a live config (used by no other thread during the call); `peer`, `local` valid;
/// `out` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_new(
    config: *mut ftps_server_config,
    peer: *const ftps_socket_addr,
    local: *const ftps_socket_addr,
    now_ns: u64,
    out: *mut *mut ftps_server_session,
) -> ftps_result {
    guard(|| {
        // SAFETY: as the caller promises.
        let config = unsafe { out_ref(config, "config") }?;
        // SAFETY: as the caller promises.
        let peer = unsafe { in_ref(peer, "peer") }?.to_rust()?;
        // SAFETY: as the caller promises.
        let local = unsafe { in_ref(local, "local") }?.to_rust()?;
        let session = ServerSession::new(config.session.clone(), peer, local, instant(now_ns));
        let handle = ftps_server_session {
            session,
            poisoned: false,
            event: None,
            message: Vec::new(),
        };
        // SAFETY: as the caller promises.
        unsafe { new_handle(out, handle) }
    })
}

/// Frees a server session (NULL is ignored), poisoned or not. Close its sockets yourself.
///
/// # Safety
/// `session` must be NULL or from `ftps_server_session_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_free(session: *mut ftps_server_session) {
    // SAFETY: as the caller promises.
    unsafe { free_handle(session) }
}

/// Runs `body` with the core session; drops the last event first (its views end with the
/// call that follows it).
///
/// # Safety
/// As [`with_session`].
unsafe fn with_server(
    session: *mut ftps_server_session,
    body: impl FnOnce(&mut ftps_server_session) -> Result<(), Failure>,
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
pub unsafe extern "C" fn ftps_server_session_poll_output(
    session: *mut ftps_server_session,
    buf: *mut u8,
    buf_len: usize,
    now_ns: u64,
    out: *mut ftps_output,
    event: *mut ftps_server_event,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
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
pub unsafe extern "C" fn ftps_server_session_handle_receive(
    session: *mut ftps_server_session,
    channel: u32,
    data: *const u8,
    len: usize,
    now_ns: u64,
    taken: *mut usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            let data = in_slice(data, len, "data")?;
            let taken = out_ref(taken, "taken")?;
            *taken = handle
                .session
                .handle_receive(channel_from(channel), data, instant(now_ns));
            Ok(())
        })
    }
}

// Each input is written out (no macro): cbindgen reads the source without expanding macros,
// and a function it does not see is missing from the header.

/// Runs an input that takes a channel and the time.
///
/// # Safety
/// `session` NULL or a live session.
unsafe fn channel_input(
    session: *mut ftps_server_session,
    channel: u32,
    now_ns: u64,
    input: fn(&mut ServerSession, Channel, Instant),
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            input(&mut handle.session, channel_from(channel), instant(now_ns));
            Ok(())
        })
    }
}

/// End of stream on `channel`, after every byte before it was taken.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_handle_eof(
    session: *mut ftps_server_session,
    channel: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { channel_input(session, channel, now_ns, ServerSession::handle_eof) }
}

/// The socket of `channel` is full and bytes of it are held: nothing more is handed out for
/// it until `ftps_server_session_handle_transmit_ready`.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_handle_transmit_blocked(
    session: *mut ftps_server_session,
    channel: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        channel_input(
            session,
            channel,
            now_ns,
            ServerSession::handle_transmit_blocked,
        )
    }
}

/// The bytes held for `channel` were written.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_handle_transmit_ready(
    session: *mut ftps_server_session,
    channel: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        channel_input(
            session,
            channel,
            now_ns,
            ServerSession::handle_transmit_ready,
        )
    }
}

/// Runs an input that takes a channel, an address and the time.
///
/// # Safety
/// `session` NULL or a live session; `addr` NULL or valid.
unsafe fn address_input(
    session: *mut ftps_server_session,
    channel: u32,
    addr: *const ftps_socket_addr,
    now_ns: u64,
    input: fn(&mut ServerSession, Channel, SocketAddr, Instant) -> Result<(), Failure>,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
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

/// The connection asked for by `FTPS_OUTPUT_CONNECT` (active mode) is up; `addr` is its
/// local address.
///
/// # Safety
/// `session` a live session; `addr` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_handle_connected(
    session: *mut ftps_server_session,
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

/// The listener of the data channel `channel` (`FTPS_OUTPUT_LISTEN`) is bound to `addr` (its
/// port goes into the `227`/`229` reply). Channel 0 (control) is
/// `FTPS_ERR_INVALID_PARAMETER`.
///
/// # Safety
/// `session` a live session; `addr` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_handle_listening(
    session: *mut ftps_server_session,
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

/// The listener of the data channel `channel` accepted a connection from `addr` (the peer's
/// address). Channel 0 (control) is `FTPS_ERR_INVALID_PARAMETER`.
///
/// # Safety
/// `session` a live session; `addr` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_handle_accepted(
    session: *mut ftps_server_session,
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
pub unsafe extern "C" fn ftps_server_session_handle_io_error(
    session: *mut ftps_server_session,
    channel: u32,
    kind: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
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
pub unsafe extern "C" fn ftps_server_session_handle_transmit_failed(
    session: *mut ftps_server_session,
    channel: u32,
    kind: u32,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
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
pub unsafe extern "C" fn ftps_server_session_handle_timeout(
    session: *mut ftps_server_session,
    now_ns: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            handle.session.handle_timeout(instant(now_ns));
            Ok(())
        })
    }
}

/// Answers the LOGIN request `id`: `granted` logs the user in (`230`); otherwise a failed
/// login (`530` after the configured delay, `421` and the end at the limit).
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_answer_login(
    session: *mut ftps_server_session,
    id: u64,
    granted: bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            Ok(handle
                .session
                .answer_login(RequestId::from_raw(id), granted)?)
        })
    }
}

/// Answers the request `id` with `answer`.
///
/// # Safety
/// `session` a live session.
unsafe fn answer(
    session: *mut ftps_server_session,
    id: u64,
    answer: impl FnOnce() -> Result<Result<Answer, FsError>, Failure>,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            let answer = answer()?;
            Ok(handle.session.answer(RequestId::from_raw(id), answer)?)
        })
    }
}

/// Answers the request `id`: done as asked (CWD: keep the path as given; LIST, RETRIEVE,
/// STORE: the directory or file is open, the transfer starts).
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_answer_done(
    session: *mut ftps_server_session,
    id: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { answer(session, id, || Ok(Ok(Answer::Done))) }
}

/// Answers the request `id` with a path: CWD the canonical new working directory, MKD the
/// directory made, STORE with `unique` the name chosen.
///
/// # Safety
/// `session` a live session; `path` valid for `path_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_answer_path(
    session: *mut ftps_server_session,
    id: u64,
    path: *const u8,
    path_len: usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        answer(session, id, || {
            let path = in_slice(path, path_len, "path")?;
            Ok(Ok(Answer::Path(path.to_vec())))
        })
    }
}

/// Answers the SIZE request `id`: the exact size a transfer in the current type would send.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_answer_size(
    session: *mut ftps_server_session,
    id: u64,
    size: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { answer(session, id, || Ok(Ok(Answer::Size(size)))) }
}

/// Answers the MDTM request `id` with the modification time (UTC, checked).
///
/// # Safety
/// `session` a live session; `time` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_answer_modified(
    session: *mut ftps_server_session,
    id: u64,
    time: *const ftps_time,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        answer(session, id, || {
            let time = in_ref(time, "time")?.to_rust()?;
            Ok(Ok(Answer::Modified(time)))
        })
    }
}

/// Answers the MLST request `id` with its entry (the name is the full path).
///
/// # Safety
/// `session` a live session; `entry` valid, with its pointers valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_answer_entry(
    session: *mut ftps_server_session,
    id: u64,
    entry: *const ftps_dir_entry,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        answer(session, id, || {
            let entry = in_ref(entry, "entry")?.to_rust()?;
            Ok(Ok(Answer::Entry(entry)))
        })
    }
}

/// Refuses the request `id` (not a login): `error` is an `ftps_fs_error` value other than
/// `FTPS_FS_OK`. The session picks the reply code and a fixed text.
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_answer_error(
    session: *mut ftps_server_session,
    id: u64,
    error: u32,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe { answer(session, id, || Ok(Err(required_fs_error(error)?))) }
}

/// Writes download bytes of the RETRIEVE `id` (after WRITABLE); `*taken` says how many were
/// taken (fewer than `len`: keep the rest and wait for the next WRITABLE).
///
/// # Safety
/// `session` live; `data` valid for `len` bytes; `taken` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_write_data(
    session: *mut ftps_server_session,
    id: u64,
    data: *const u8,
    len: usize,
    taken: *mut usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            let data = in_slice(data, len, "data")?;
            let taken = out_ref(taken, "taken")?;
            *taken = handle.session.write_data(RequestId::from_raw(id), data)?;
            Ok(())
        })
    }
}

/// Writes one entry of the LIST `id` (after WRITABLE); the session formats it. `*taken` is
/// `false` when the listing's buffer is full: nothing was taken, offer the entry again after
/// the next WRITABLE.
///
/// # Safety
/// `session` live; `entry` valid, with its pointers valid for their lengths; `taken` valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_write_entry(
    session: *mut ftps_server_session,
    id: u64,
    entry: *const ftps_dir_entry,
    taken: *mut bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            let entry = in_ref(entry, "entry")?.to_rust()?;
            let taken = out_ref(taken, "taken")?;
            *taken = handle
                .session
                .write_entry(RequestId::from_raw(id), &entry)?;
            Ok(())
        })
    }
}

/// Ends the download or listing `id`: close_notify follows the last byte, `226` the client's
/// end of the data connection (then SEND_FINISHED).
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_finish_data(
    session: *mut ftps_server_session,
    id: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            Ok(handle.session.finish_data(RequestId::from_raw(id))?)
        })
    }
}

/// Takes upload bytes of the STORE `id` into `buf`; `*read` says how many (0: none wait
/// now). After READABLE, call until it reads 0: unread bytes hold back the upload.
///
/// # Safety
/// `session` live; `buf` valid for `buf_len` writable bytes; `read` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_read_data(
    session: *mut ftps_server_session,
    id: u64,
    buf: *mut u8,
    buf_len: usize,
    read: *mut usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            let buf = out_slice(buf, buf_len, "buf")?;
            let read = out_ref(read, "read")?;
            *read = handle.session.read_data(RequestId::from_raw(id), buf)?;
            Ok(())
        })
    }
}

/// Fails the running transfer `id` from the application's side (a read or write error):
/// `error` is an `ftps_fs_error` value other than `FTPS_FS_OK`; the data connection is
/// closed and the client gets `451` (`552` for `FTPS_FS_NO_SPACE`).
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_fail_transfer(
    session: *mut ftps_server_session,
    id: u64,
    error: u32,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            let error = required_fs_error(error)?;
            Ok(handle
                .session
                .fail_transfer(RequestId::from_raw(id), error)?)
        })
    }
}

/// Answers a complete upload (UPLOAD_FINISHED with `complete`): `FTPS_FS_OK` (0) once the
/// file is committed under its name (`226`), another `ftps_fs_error` value when committing
/// failed (`552` for `FTPS_FS_NO_SPACE`, `451` otherwise; the file must not stay visible).
/// `FTPS_ERR_CLOSED` when the client hung up first (the upload was complete: the file may be
/// kept).
///
/// # Safety
/// `session` a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_finish_upload(
    session: *mut ftps_server_session,
    id: u64,
    error: u32,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server(session, |handle| {
            let result = match fs_error_from(error)? {
                None => Ok(()),
                Some(error) => Err(error),
            };
            Ok(handle
                .session
                .finish_upload(RequestId::from_raw(id), result)?)
        })
    }
}

/// Writes the session's state: closed (the CLOSED event may still be pending), logged in,
/// control connection protected by TLS. Any pointer may be NULL.
///
/// # Safety
/// `session` live; non-NULL outputs valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_session_state(
    session: *mut ftps_server_session,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_errors_are_checked() {
        assert_eq!(fs_error_from(0).unwrap(), None);
        assert_eq!(fs_error_from(1).unwrap(), Some(FsError::NotFound));
        assert_eq!(fs_error_from(8).unwrap(), Some(FsError::Local));
        for bad in [9, 100, u32::MAX] {
            let failure = fs_error_from(bad).unwrap_err();
            assert_eq!(failure.code, ftps_result::FTPS_ERR_INVALID_PARAMETER);
        }
        let failure = required_fs_error(0).unwrap_err();
        assert_eq!(failure.code, ftps_result::FTPS_ERR_INVALID_PARAMETER);
        assert_eq!(required_fs_error(2).unwrap(), FsError::PermissionDenied);
    }

    fn entry(name: &[u8], perm: &[u8]) -> ftps_dir_entry {
        ftps_dir_entry {
            name: name.as_ptr(),
            name_len: name.len(),
            kind: ftps_dir_entry_kind::FTPS_DIR_ENTRY_FILE as u32,
            size: 42,
            has_modified: false,
            modified: ftps_time::default(),
            permissions: perm.as_ptr(),
            permissions_len: perm.len(),
            has_mode: true,
            mode: 0o644,
            unique: std::ptr::null(),
            unique_len: 0,
        }
    }

    #[test]
    fn dir_entries_convert_and_bad_ones_are_refused() {
        let name = b"a file";
        let unique = b"801g2a";
        let mut c = entry(name, b"rw");
        // SAFETY: the pointers come from live slices.
        let rust = unsafe { c.to_rust() }.unwrap();
        assert_eq!(rust.name, name);
        assert_eq!(rust.kind, DirEntryKind::File);
        assert_eq!(rust.size, 42);
        assert_eq!(rust.modified, None);
        assert_eq!(rust.permissions, Permissions::READ | Permissions::WRITE);
        assert_eq!(rust.mode, Some(0o644));
        assert_eq!(rust.unique, None);

        c.unique = unique.as_ptr();
        c.unique_len = unique.len();
        c.kind = ftps_dir_entry_kind::FTPS_DIR_ENTRY_DIRECTORY as u32;
        c.has_mode = false;
        c.has_modified = true;
        c.modified = ftps_time {
            year: 2024,
            month: 5,
            day: 6,
            hour: 7,
            minute: 8,
            second: 9,
            nanos: 0,
        };
        // SAFETY: the pointers come from live slices.
        let rust = unsafe { c.to_rust() }.unwrap();
        assert_eq!(rust.kind, DirEntryKind::Directory);
        assert_eq!(rust.unique.as_deref(), Some(&unique[..]));
        assert_eq!(rust.mode, None);
        assert_eq!(rust.modified.map(ftps_time::from), Some(c.modified));

        for kind in [0, 4, u32::MAX] {
            let bad = ftps_dir_entry { kind, ..c };
            // SAFETY: the pointers come from live slices.
            let failure = unsafe { bad.to_rust() }.unwrap_err();
            assert_eq!(failure.code, ftps_result::FTPS_ERR_INVALID_PARAMETER);
        }
        let bad_time = ftps_dir_entry {
            modified: ftps_time {
                month: 0,
                ..c.modified
            },
            ..c
        };
        // SAFETY: the pointers come from live slices.
        let failure = unsafe { bad_time.to_rust() }.unwrap_err();
        assert_eq!(failure.code, ftps_result::FTPS_ERR_INVALID_PARAMETER);
        let null_name = ftps_dir_entry {
            name: std::ptr::null(),
            ..c
        };
        // SAFETY: NULL with a length is refused before any read.
        let failure = unsafe { null_name.to_rust() }.unwrap_err();
        assert_eq!(failure.code, ftps_result::FTPS_ERR_NULL_PARAMETER);
    }

    #[test]
    fn a_session_runs_through_the_c_calls() {
        let pki = ftps_tests::peers::TestPki::generate().unwrap();
        let mut config = std::ptr::null_mut();
        let chain = pki.server_cert_pem.as_bytes();
        let key = pki.server_key_pem.as_bytes();
        // SAFETY: valid buffers and an out pointer.
        let r = unsafe {
            crate::ftps_server_config_new(
                chain.as_ptr(),
                chain.len(),
                key.as_ptr(),
                key.len(),
                &mut config,
            )
        };
        assert_eq!(r, ftps_result::FTPS_OK);
        let peer = ftps_socket_addr::from("127.0.0.1:40000".parse::<SocketAddr>().unwrap());
        let local = ftps_socket_addr::from("127.0.0.1:21".parse::<SocketAddr>().unwrap());
        let mut session = std::ptr::null_mut();
        // SAFETY: a live config, valid addresses and an out pointer.
        let r = unsafe { ftps_server_session_new(config, &peer, &local, 0, &mut session) };
        assert_eq!(r, ftps_result::FTPS_OK);
        // SAFETY: made above, freed once.
        unsafe { crate::ftps_server_config_free(config) };

        // The greeting goes out first.
        let mut buf = vec![0u8; 4096];
        let mut out = ftps_output::default();
        let mut event = ftps_server_event::default();
        // SAFETY: a live session and valid buffers.
        let r = unsafe {
            ftps_server_session_poll_output(
                session,
                buf.as_mut_ptr(),
                buf.len(),
                1,
                &mut out,
                &mut event,
            )
        };
        assert_eq!(r, ftps_result::FTPS_OK);
        assert_eq!(out.kind, crate::ftps_output_kind::FTPS_OUTPUT_TRANSMIT);
        assert!(buf[..out.len].starts_with(b"220 "));

        // USER before AUTH TLS is refused and reported.
        let mut taken = 0;
        let line = b"USER bob\r\n";
        // SAFETY: a live session and valid buffers.
        let r = unsafe {
            ftps_server_session_handle_receive(session, 0, line.as_ptr(), line.len(), 2, &mut taken)
        };
        assert_eq!(r, ftps_result::FTPS_OK);
        assert_eq!(taken, line.len());
        let mut refused = false;
        for _ in 0..8 {
            // SAFETY: a live session and valid buffers.
            let r = unsafe {
                ftps_server_session_poll_output(
                    session,
                    buf.as_mut_ptr(),
                    buf.len(),
                    3,
                    &mut out,
                    &mut event,
                )
            };
            assert_eq!(r, ftps_result::FTPS_OK);
            if out.kind == crate::ftps_output_kind::FTPS_OUTPUT_EVENT
                && event.kind == ftps_server_event_kind::FTPS_SERVER_EVENT_REFUSED
            {
                assert_eq!(event.refusal, ftps_refusal::FTPS_REFUSAL_TLS_REQUIRED);
                assert!(event.message.len > 0);
                refused = true;
            }
            if out.kind == crate::ftps_output_kind::FTPS_OUTPUT_WAIT {
                break;
            }
        }
        assert!(refused);

        // Answers with unknown ids or bad values are refused, nothing panics.
        // SAFETY: a live session.
        let r = unsafe { ftps_server_session_answer_done(session, 99) };
        assert_eq!(r, ftps_result::FTPS_ERR_USAGE);
        // SAFETY: a live session.
        let r = unsafe { ftps_server_session_answer_error(session, 99, 0) };
        assert_eq!(r, ftps_result::FTPS_ERR_INVALID_PARAMETER);
        // SAFETY: a live session.
        let r = unsafe { ftps_server_session_finish_upload(session, 99, 77) };
        assert_eq!(r, ftps_result::FTPS_ERR_INVALID_PARAMETER);
        // SAFETY: a live session and a valid address.
        let r = unsafe { ftps_server_session_handle_listening(session, 0, &local, 4) };
        assert_eq!(r, ftps_result::FTPS_ERR_INVALID_PARAMETER);
        let (mut closed, mut logged_in) = (true, true);
        // SAFETY: a live session, valid outputs (one NULL).
        let r = unsafe {
            ftps_server_session_state(session, &mut closed, &mut logged_in, std::ptr::null_mut())
        };
        assert_eq!(r, ftps_result::FTPS_OK);
        assert!(!closed && !logged_in);
        // SAFETY: made above, freed once.
        unsafe { ftps_server_session_free(session) };
    }
}
