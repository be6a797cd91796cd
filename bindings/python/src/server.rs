//! `ftps.ServerSession`: the core's server session, one method per input and answer, and its
//! events (requests for the application) as Python objects.

use ftps_proto::codec::listing::Permissions;
use ftps_proto::io::DataId;
use ftps_proto::server::{
    Answer, DirEntry as CoreDirEntry, DirEntryKind, FsError, ListFormat, Request as CoreRequest,
    RequestId, ServerEvent, ServerSession as CoreSession,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use crate::client::{Closed, Readable, Secured, Writable, data_channel};
use crate::config::ServerConfig;
use crate::conv::{
    PathArg, addr_from, addr_to, channel_from, check, datetime_from, datetime_to, error_object,
    instant, io_error_kind, usage,
};
use crate::records::{FieldRepr, output_to, record, tls_info_to};

/// See the client's constants.
const RELEASE_GIL_AT: usize = 4 * 1024;
const TRANSMIT_BUFFER: usize = 128 * 1024;
const MAX_READ: usize = 16 * 1024 * 1024;

/// A decision the application makes; answer with `answer_login` (kind `"login"`), `answer`,
/// or `refuse`. `kind` is one of `login`, `cwd`, `mkdir`, `rmdir`, `delete`, `rename`, `size`,
/// `mdtm`, `mlst`, `list`, `retrieve`, `store`; the fields that do not apply are `None`. The
/// `repr` never shows the password.
#[pyclass(frozen, get_all, module = "ftps")]
pub(crate) struct Request {
    id: u64,
    kind: String,
    path: Option<PyObject>,
    to: Option<PyObject>,
    user: Option<PyObject>,
    password: Option<PyObject>,
    client_certificate: Option<PyObject>,
    host: Option<PyObject>,
    /// `"list"`, `"nlst"` or `"mlsd"` for a listing.
    format: Option<String>,
    offset: Option<u64>,
    append: Option<bool>,
    unique: Option<bool>,
}

#[pymethods]
impl Request {
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("id", "kind")
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut parts = vec![format!("id={}", self.id), format!("kind={:?}", self.kind)];
        let shown = [
            ("path", &self.path),
            ("to", &self.to),
            ("user", &self.user),
            ("host", &self.host),
        ];
        for (name, value) in shown {
            if let Some(value) = value {
                parts.push(format!("{name}={}", value.field_repr(py)?));
            }
        }
        if self.password.is_some() {
            parts.push("password=****".to_owned());
        }
        if let Some(format) = &self.format {
            parts.push(format!("format={format:?}"));
        }
        if let Some(offset) = self.offset {
            parts.push(format!("offset={offset}"));
        }
        if self.append == Some(true) {
            parts.push("append=True".to_owned());
        }
        if self.unique == Some(true) {
            parts.push("unique=True".to_owned());
        }
        Ok(format!("Request({})", parts.join(", ")))
    }
}

record! {
    /// An upload ended. `complete`: every byte arrived and the stream ended cleanly — commit
    /// the file and call `finish_upload(id)` (the `226` waits for it); otherwise discard it
    /// (the session already replied).
    UploadFinished { id: u64, complete: bool, bytes: u64, resumed: bool }
}
record! {
    /// A download or listing ended; `complete`: the client received everything.
    SendFinished { id: u64, complete: bool, bytes: u64, resumed: bool }
}
record! {
    /// The session refused something for a policy or defence reason (for logs).
    Refused { reason: String }
}
record! {
    /// A passive data connection from another host was refused (port theft).
    DataPeerRefused { peer: PyObject }
}

/// One directory entry as the application describes it; the session formats `LIST`, `NLST`,
/// `MLSD` and `MLST` lines from it.
#[pyclass(frozen, module = "ftps")]
pub(crate) struct DirEntry {
    entry: CoreDirEntry,
}

#[pymethods]
impl DirEntry {
    /// `kind`: `"file"`, `"dir"` or `"symlink"`; `modified`: a `datetime` (naive = UTC);
    /// `permissions`: RFC 3659 `perm` letters (`"r"`, `"el"`, …); `mode`: Unix mode bits.
    #[new]
    #[pyo3(signature = (name, kind = "file", size = 0, modified = None, *, mode = None, permissions = None, unique = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: PathArg,
        kind: &str,
        size: u64,
        modified: Option<&Bound<'_, PyAny>>,
        mode: Option<u32>,
        permissions: Option<&str>,
        unique: Option<Vec<u8>>,
    ) -> PyResult<Self> {
        if name.0.is_empty() || name.0.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(usage(py, "a name is not empty and has no CR, LF or NUL"));
        }
        let kind = match kind {
            "file" => DirEntryKind::File,
            "dir" => DirEntryKind::Directory,
            "symlink" => DirEntryKind::Symlink,
            other => {
                return Err(usage(
                    py,
                    &format!("kind must be \"file\", \"dir\" or \"symlink\", not {other:?}"),
                ));
            }
        };
        let modified = modified
            .filter(|m| !m.is_none())
            .map(|m| datetime_from(py, m))
            .transpose()?;
        let permissions = match permissions {
            Some(letters) => Permissions::from_letters(letters.as_bytes()),
            None if kind == DirEntryKind::Directory => Permissions::from_letters(b"el"),
            None => Permissions::from_letters(b"r"),
        };
        Ok(Self {
            entry: CoreDirEntry {
                name: name.0,
                kind,
                size,
                modified,
                permissions,
                mode,
                unique,
            },
        })
    }

    /// The name (bytes).
    #[getter]
    fn name<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.entry.name)
    }

    /// `"file"`, `"dir"` or `"symlink"`.
    #[getter]
    fn kind(&self) -> &'static str {
        kind_name(self.entry.kind)
    }

    /// Size in octets.
    #[getter]
    fn size(&self) -> u64 {
        self.entry.size
    }

    /// Last modification (UTC), if known.
    #[getter]
    fn modified(&self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        self.entry
            .modified
            .as_ref()
            .map(|t| datetime_to(py, t))
            .transpose()
    }

    fn __repr__(&self) -> String {
        format!(
            "DirEntry({:?}, kind={:?}, size={})",
            String::from_utf8_lossy(&self.entry.name),
            kind_name(self.entry.kind),
            self.entry.size
        )
    }
}

fn kind_name(kind: DirEntryKind) -> &'static str {
    match kind {
        DirEntryKind::File => "file",
        DirEntryKind::Directory => "dir",
        DirEntryKind::Symlink => "symlink",
    }
}

fn fs_error(py: Python<'_>, name: &str) -> PyResult<FsError> {
    Ok(match name {
        "not_found" => FsError::NotFound,
        "permission_denied" => FsError::PermissionDenied,
        "wrong_kind" => FsError::WrongKind,
        "already_exists" => FsError::AlreadyExists,
        "invalid_name" => FsError::InvalidName,
        "no_space" => FsError::NoSpace,
        "unavailable" => FsError::Unavailable,
        "local" => FsError::Local,
        other => {
            return Err(usage(
                py,
                &format!(
                    "unknown file-system error {other:?} (not_found, permission_denied, \
                     wrong_kind, already_exists, invalid_name, no_space, unavailable, local)"
                ),
            ));
        }
    })
}

fn bytes(py: Python<'_>, data: &[u8]) -> PyObject {
    PyBytes::new(py, data).into_any().unbind()
}

fn request_to(py: Python<'_>, id: RequestId, request: CoreRequest) -> PyResult<PyObject> {
    let mut out = Request {
        id: id.get(),
        kind: String::new(),
        path: None,
        to: None,
        user: None,
        password: None,
        client_certificate: None,
        host: None,
        format: None,
        offset: None,
        append: None,
        unique: None,
    };
    let (kind, path) = match request {
        CoreRequest::Login {
            user,
            password,
            client_certificate,
            host,
        } => {
            out.user = Some(bytes(py, &user));
            out.password = Some(bytes(py, password.as_bytes()));
            out.client_certificate = client_certificate.map(|c| bytes(py, &c));
            out.host = host.map(|h| bytes(py, &h));
            ("login", None)
        }
        CoreRequest::Cwd { path } => ("cwd", Some(path)),
        CoreRequest::Mkdir { path } => ("mkdir", Some(path)),
        CoreRequest::Rmdir { path } => ("rmdir", Some(path)),
        CoreRequest::Delete { path } => ("delete", Some(path)),
        CoreRequest::Rename { from, to } => {
            out.to = Some(bytes(py, &to));
            ("rename", Some(from))
        }
        CoreRequest::Size { path } => ("size", Some(path)),
        CoreRequest::Mdtm { path } => ("mdtm", Some(path)),
        CoreRequest::Mlst { path } => ("mlst", Some(path)),
        CoreRequest::List { path, format } => {
            out.format = Some(
                match format {
                    ListFormat::List => "list",
                    ListFormat::Nlst => "nlst",
                    ListFormat::Mlsd => "mlsd",
                }
                .to_owned(),
            );
            ("list", Some(path))
        }
        CoreRequest::Retrieve { path, offset } => {
            out.offset = Some(offset);
            ("retrieve", Some(path))
        }
        CoreRequest::Store {
            path,
            offset,
            append,
            unique,
        } => {
            out.offset = Some(offset);
            out.append = Some(append);
            out.unique = Some(unique);
            ("store", Some(path))
        }
        // `Request` is non-exhaustive; this version of the core has no other request.
        _ => ("unknown", None),
    };
    out.kind = kind.to_owned();
    out.path = path.map(|p| bytes(py, &p));
    Ok(Py::new(py, out)?.into_any())
}

fn event_to(py: Python<'_>, event: ServerEvent) -> PyResult<PyObject> {
    Ok(match event {
        ServerEvent::Secured { info } => Py::new(
            py,
            Secured {
                info: tls_info_to(py, &info)?,
            },
        )?
        .into_any(),
        ServerEvent::Request { id, request } => request_to(py, id, request)?,
        ServerEvent::Writable { id } => Py::new(py, Writable { id: id.get() })?.into_any(),
        ServerEvent::Readable { id } => Py::new(py, Readable { id: id.get() })?.into_any(),
        ServerEvent::UploadFinished {
            id,
            complete,
            bytes,
            resumed_tls,
        } => Py::new(
            py,
            UploadFinished {
                id: id.get(),
                complete,
                bytes,
                resumed: resumed_tls,
            },
        )?
        .into_any(),
        ServerEvent::SendFinished {
            id,
            complete,
            bytes,
            resumed_tls,
        } => Py::new(
            py,
            SendFinished {
                id: id.get(),
                complete,
                bytes,
                resumed: resumed_tls,
            },
        )?
        .into_any(),
        ServerEvent::Refused { reason } => Py::new(
            py,
            Refused {
                reason: reason.to_string(),
            },
        )?
        .into_any(),
        ServerEvent::DataPeerRefused { peer } => Py::new(
            py,
            DataPeerRefused {
                peer: addr_to(py, peer)?,
            },
        )?
        .into_any(),
        ServerEvent::Closed { error } => Py::new(
            py,
            Closed {
                error: error
                    .map(|e| error_object(py, e.kind(), e.to_string(), None))
                    .transpose()?,
            },
        )?
        .into_any(),
        // `ServerEvent` is non-exhaustive; this version of the core has no other event.
        _ => Py::new(py, Closed { error: None })?.into_any(),
    })
}

fn id(raw: u64) -> RequestId {
    RequestId::from_raw(raw)
}

/// The server role of the sans-IO engine (see the module docs and the stub).
#[pyclass(module = "ftps")]
pub(crate) struct ServerSession {
    inner: CoreSession,
    out: Vec<u8>,
    scratch: Vec<u8>,
}

#[pymethods]
impl ServerSession {
    /// A session for a control connection accepted from `peer` on `local`.
    #[new]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, ServerConfig>,
        peer: &Bound<'_, PyAny>,
        local: &Bound<'_, PyAny>,
        now: u64,
    ) -> PyResult<Self> {
        let peer = addr_from(py, peer)?;
        let local = addr_from(py, local)?;
        Ok(Self {
            inner: CoreSession::new(config.get().config.clone(), peer, local, instant(now)),
            out: vec![0; TRANSMIT_BUFFER],
            scratch: Vec::new(),
        })
    }

    // ---- inputs (the same names and meanings as ClientSession's) ----------------------------

    /// A requested connection is up (the server asks for none: kept for the one contract).
    fn connected(
        &mut self,
        py: Python<'_>,
        channel: u32,
        local: &Bound<'_, PyAny>,
        now: u64,
    ) -> PyResult<()> {
        let local = addr_from(py, local)?;
        self.inner
            .handle_connected(channel_from(channel), local, instant(now));
        Ok(())
    }

    /// The listener for `data` is bound to `addr`.
    fn listening(
        &mut self,
        py: Python<'_>,
        data: u32,
        addr: &Bound<'_, PyAny>,
        now: u64,
    ) -> PyResult<()> {
        let addr = addr_from(py, addr)?;
        data_channel(py, data)?;
        self.inner
            .handle_listening(DataId::from_raw(data), addr, instant(now));
        Ok(())
    }

    /// The listener for `data` accepted a connection from `peer` (a refused one comes back as
    /// `RefuseAccepted`).
    fn accepted(
        &mut self,
        py: Python<'_>,
        data: u32,
        peer: &Bound<'_, PyAny>,
        now: u64,
    ) -> PyResult<()> {
        let peer = addr_from(py, peer)?;
        data_channel(py, data)?;
        self.inner
            .handle_accepted(DataId::from_raw(data), peer, instant(now));
        Ok(())
    }

    /// Bytes received on `channel`; returns how many were taken.
    fn receive(&mut self, py: Python<'_>, channel: u32, data: &[u8], now: u64) -> usize {
        let (channel, now) = (channel_from(channel), instant(now));
        if data.len() >= RELEASE_GIL_AT {
            let inner = &mut self.inner;
            py.allow_threads(|| inner.handle_receive(channel, data, now))
        } else {
            self.inner.handle_receive(channel, data, now)
        }
    }

    /// End of stream on `channel`, after every byte before it was taken.
    fn eof(&mut self, channel: u32, now: u64) {
        self.inner.handle_eof(channel_from(channel), instant(now));
    }

    /// A socket operation on `channel` failed (kinds as for `ClientSession.io_error`).
    fn io_error(&mut self, py: Python<'_>, channel: u32, kind: &str, now: u64) -> PyResult<()> {
        let kind = io_error_kind(py, kind)?;
        self.inner
            .handle_io_error(channel_from(channel), kind, instant(now));
        Ok(())
    }

    /// Writing the bytes of a `Transmit` for `channel` failed (the peer reset the
    /// connection; kinds as for `io_error`). The channel's receive side stays open: keep
    /// reading it and report its end as usual — what the peer sent before its reset may
    /// complete a transfer.
    fn transmit_failed(
        &mut self,
        py: Python<'_>,
        channel: u32,
        kind: &str,
        now: u64,
    ) -> PyResult<()> {
        let kind = io_error_kind(py, kind)?;
        self.inner
            .handle_transmit_failed(channel_from(channel), kind, instant(now));
        Ok(())
    }

    /// The deadline of the last `Wait` passed.
    fn timeout(&mut self, now: u64) {
        self.inner.handle_timeout(instant(now));
    }

    /// The driver holds bytes for `channel` it cannot write now.
    fn transmit_blocked(&mut self, channel: u32, now: u64) {
        self.inner
            .handle_transmit_blocked(channel_from(channel), instant(now));
    }

    /// The driver wrote what it held for `channel`.
    fn transmit_ready(&mut self, channel: u32, now: u64) {
        self.inner
            .handle_transmit_ready(channel_from(channel), instant(now));
    }

    /// The next thing to do; call until it returns a `Wait`.
    fn poll_output(&mut self, py: Python<'_>, now: u64) -> PyResult<PyObject> {
        let (inner, out) = (&mut self.inner, &mut self.out);
        let output = py.allow_threads(|| inner.poll_output(out, instant(now)));
        output_to(py, output, &self.out, event_to)
    }

    /// The earliest deadline of the session's timers (`None`: none armed).
    fn next_deadline(&self) -> Option<u64> {
        self.inner.next_deadline().map(|d| d.as_nanos())
    }

    // ---- getters --------------------------------------------------------------------------

    /// True once the session ended.
    #[getter]
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Whether the control connection is protected by TLS now.
    #[getter]
    fn is_secure(&self) -> bool {
        self.inner.is_secure()
    }

    /// Whether the client logged in.
    #[getter]
    fn is_logged_in(&self) -> bool {
        self.inner.is_logged_in()
    }

    /// The textual working directory.
    #[getter]
    fn cwd<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.cwd())
    }

    /// The client's address.
    #[getter]
    fn peer_addr(&self, py: Python<'_>) -> PyResult<PyObject> {
        addr_to(py, self.inner.peer_addr())
    }

    // ---- answers --------------------------------------------------------------------------

    /// Answers a login request: `True` logs the user in (`230`), `False` fails it (`530`).
    fn answer_login(&mut self, py: Python<'_>, id: u64, granted: bool) -> PyResult<()> {
        check(py, self.inner.answer_login(self::id(id), granted))
    }

    /// Answers a request positively. `value`: `None` (done; listings, downloads and uploads
    /// are opened so), `bytes`/`str` (a path: CWD, MKD, STOU), `int` (SIZE), `datetime`
    /// (MDTM) or a `DirEntry` (MLST).
    #[pyo3(signature = (id, value = None))]
    fn answer(
        &mut self,
        py: Python<'_>,
        id: u64,
        value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let answer = match value {
            None => Answer::Done,
            Some(value) if value.is_none() => Answer::Done,
            Some(value) => {
                if let Ok(entry) = value.downcast::<DirEntry>() {
                    Answer::Entry(entry.get().entry.clone())
                } else if value.downcast::<PyInt>().is_ok() {
                    Answer::Size(value.extract()?)
                } else if let Ok(path) = value.extract::<PathArg>() {
                    Answer::Path(path.0)
                } else if value.hasattr("tzinfo")? {
                    Answer::Modified(datetime_from(py, value)?)
                } else {
                    return Err(PyTypeError::new_err(
                        "answer value: None, bytes/str, int, datetime or DirEntry",
                    ));
                }
            }
        };
        check(py, self.inner.answer(self::id(id), Ok(answer)))
    }

    /// Refuses a request with a file-system error: `not_found`, `permission_denied`,
    /// `wrong_kind`, `already_exists`, `invalid_name`, `no_space`, `unavailable`, `local`.
    fn refuse(&mut self, py: Python<'_>, id: u64, error: &str) -> PyResult<()> {
        let error = fs_error(py, error)?;
        check(py, self.inner.answer(self::id(id), Err(error)))
    }

    /// One listing entry (after `Writable`); `False`: the buffer is full, offer it again
    /// after the next `Writable`.
    fn write_entry(
        &mut self,
        py: Python<'_>,
        id: u64,
        entry: &Bound<'_, DirEntry>,
    ) -> PyResult<bool> {
        check(py, self.inner.write_entry(self::id(id), &entry.get().entry))
    }

    /// Takes up to `max` uploaded bytes (`b""`: nothing buffered now).
    #[pyo3(signature = (id, max = 256 * 1024))]
    fn read_data<'py>(
        &mut self,
        py: Python<'py>,
        id: u64,
        max: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let max = max.clamp(1, MAX_READ);
        self.scratch.resize(max, 0);
        let (inner, scratch) = (&mut self.inner, &mut self.scratch);
        let read = if max >= RELEASE_GIL_AT {
            py.allow_threads(|| inner.read_data(self::id(id), scratch))
        } else {
            inner.read_data(self::id(id), scratch)
        };
        let n = check(py, read)?;
        Ok(PyBytes::new(py, &self.scratch[..n]))
    }

    /// Offers download bytes; returns how many were taken (fewer: wait for `Writable`).
    fn write_data(&mut self, py: Python<'_>, id: u64, data: &[u8]) -> PyResult<usize> {
        let inner = &mut self.inner;
        let written = if data.len() >= RELEASE_GIL_AT {
            py.allow_threads(|| inner.write_data(self::id(id), data))
        } else {
            inner.write_data(self::id(id), data)
        };
        check(py, written)
    }

    /// Ends a download or listing.
    fn finish_data(&mut self, py: Python<'_>, id: u64) -> PyResult<()> {
        check(py, self.inner.finish_data(self::id(id)))
    }

    /// Fails a running transfer from the application's side (`451`, `552` for `no_space`).
    fn fail_transfer(&mut self, py: Python<'_>, id: u64, error: &str) -> PyResult<()> {
        let error = fs_error(py, error)?;
        check(py, self.inner.fail_transfer(self::id(id), error))
    }

    /// Answers a complete upload: `error=None` once committed (`226`), or why not.
    #[pyo3(signature = (id, error = None))]
    fn finish_upload(&mut self, py: Python<'_>, id: u64, error: Option<&str>) -> PyResult<()> {
        let result = match error {
            None => Ok(()),
            Some(name) => Err(fs_error(py, name)?),
        };
        check(py, self.inner.finish_upload(self::id(id), result))
    }

    fn __repr__(&self) -> String {
        format!(
            "<ServerSession peer={} secure={} logged_in={} closed={}>",
            self.inner.peer_addr(),
            crate::conv::py_bool(self.inner.is_secure()),
            crate::conv::py_bool(self.inner.is_logged_in()),
            crate::conv::py_bool(self.inner.is_closed())
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ServerSession>()?;
    m.add_class::<Request>()?;
    m.add_class::<UploadFinished>()?;
    m.add_class::<SendFinished>()?;
    m.add_class::<Refused>()?;
    m.add_class::<DataPeerRefused>()?;
    m.add_class::<DirEntry>()?;
    Ok(())
}
