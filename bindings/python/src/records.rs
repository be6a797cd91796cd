//! The plain-data objects a session's drain returns (outputs and events) and the values they
//! carry: frozen Python classes with readable `repr`s and `__match_args__`, so a driver can
//! `match` on them.

use ftps_proto::client::ListingEntry as CoreListingEntry;
use ftps_proto::codec::listing::{EntryKind, ListEntryKind, ListLine, ListTime};
use ftps_proto::codec::reply::Reply as CoreReply;
use ftps_proto::io::{IoRequest, Output};
use ftps_proto::tls::{HandshakeKind, TlsInfo as CoreTlsInfo, TlsVersion};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::conv::{addr_to, channel_to, datetime_to};

/// How a field shows in a record's `repr`.
pub(crate) trait FieldRepr {
    fn field_repr(&self, py: Python<'_>) -> PyResult<String>;
}

macro_rules! plain_repr {
    ($($ty:ty),*) => {$(
        impl FieldRepr for $ty {
            fn field_repr(&self, _py: Python<'_>) -> PyResult<String> {
                Ok(self.to_string())
            }
        }
    )*};
}
plain_repr!(u64, u32, u16);

impl FieldRepr for bool {
    fn field_repr(&self, _py: Python<'_>) -> PyResult<String> {
        Ok(if *self { "True" } else { "False" }.to_owned())
    }
}

impl FieldRepr for PyObject {
    fn field_repr(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.bind(py).repr()?.to_string())
    }
}

impl FieldRepr for String {
    fn field_repr(&self, _py: Python<'_>) -> PyResult<String> {
        Ok(format!("{self:?}"))
    }
}

impl<T: FieldRepr> FieldRepr for Option<T> {
    fn field_repr(&self, py: Python<'_>) -> PyResult<String> {
        match self {
            Some(value) => value.field_repr(py),
            None => Ok("None".to_owned()),
        }
    }
}

/// Declares a frozen record class: its fields readable as attributes, `__match_args__` in
/// field order, and a `repr` like a dataclass's.
macro_rules! record {
    (
        $(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }
        $(methods { $($extra:tt)* })?
    ) => {
        $(#[$meta])*
        #[pyclass(frozen, get_all, module = "ftps")]
        pub(crate) struct $name {
            $($(#[$fmeta])* pub(crate) $field: $ty,)*
        }

        #[pymethods]
        impl $name {
            #[classattr]
            fn __match_args__(py: Python<'_>) -> PyResult<Py<pyo3::types::PyTuple>> {
                let names: [&'static str; 0 $(+ { let _ = stringify!($field); 1 })*] =
                    [$(stringify!($field)),*];
                Ok(pyo3::types::PyTuple::new(py, names)?.unbind())
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                #[allow(unused_mut)]
                let mut parts: Vec<String> = Vec::new();
                $(parts.push(format!(
                    "{}={}",
                    stringify!($field),
                    FieldRepr::field_repr(&self.$field, py)?
                ));)*
                let _ = py;
                Ok(format!("{}({})", stringify!($name), parts.join(", ")))
            }

            $($($extra)*)?
        }
    };
}
pub(crate) use record;

// ---- outputs -------------------------------------------------------------------------------

record! {
    /// Send `data` on `channel`, in order and completely. The bytes are the driver's now: if
    /// the socket is full, keep them, call `transmit_blocked(channel)`, and
    /// `transmit_ready(channel)` once written.
    Transmit { channel: u32, data: PyObject }
}
record! {
    /// Open a TCP connection to `addr` (an `(ip, port)` tuple) for `channel`, then report
    /// `connected(channel, local_addr, now)` or `io_error(...)`.
    Connect { channel: u32, addr: PyObject }
}
record! {
    /// Listen on `ip` (any port) for data connection `data`; report `listening(data, addr)`,
    /// then each accepted peer with `accepted(data, peer)`. The listener lives until
    /// `Close(data)`.
    Listen { data: u32, ip: String }
}
record! {
    /// Close the connection just accepted for `data` (a foreign peer, or one too many) and
    /// keep the listener accepting.
    RefuseAccepted { data: u32 }
}
record! {
    /// After writing everything held for `channel`, shut down its write side.
    ShutdownWrite { channel: u32 }
}
record! {
    /// Close `channel`'s socket (and listener); forget what was held for it.
    Close { channel: u32 }
}
record! {
    /// Drained: wait for input or until `deadline` (`time.monotonic_ns()` value; `None`: no
    /// timer), then call `timeout(now)`.
    Wait { deadline: Option<u64> }
}

// ---- values ----------------------------------------------------------------------------------

record! {
    /// A server reply: its code and the text of each line (bytes, without CRLF).
    Reply { code: u16, lines: PyObject }
    methods {
        /// The reply's lines joined by newlines, decoded as UTF-8 (invalid bytes replaced).
        #[getter]
        fn text(&self, py: Python<'_>) -> PyResult<String> {
            let lines: Vec<Vec<u8>> = self.lines.bind(py).extract()?;
            Ok(String::from_utf8_lossy(&lines.join(&b'\n')).into_owned())
        }
    }
}
record! {
    /// What a TLS handshake negotiated.
    TlsInfo {
        /// `"TLSv1.2"` or `"TLSv1.3"`.
        version: String,
        /// The IANA name of the cipher suite.
        cipher_suite: String,
        /// Whether the session was resumed (data connections resume the control one's).
        resumed: bool,
        /// The negotiated ALPN protocol, if any.
        alpn: Option<PyObject>,
        /// The peer's certificate chain (DER), end-entity first.
        peer_certificates: PyObject,
    }
}
record! {
    /// What a transfer moved: payload bytes, and whether its data connection's TLS resumed the
    /// control connection's session (`None` in clear).
    Transfer { bytes: u64, resumed: Option<bool> }
}
record! {
    /// One entry of a listing. `kind`: `"file"`, `"dir"`, `"symlink"`, `"other"`,
    /// `"unknown"` (no type fact), or `"unparsed"` (then `line` holds the raw line). `facts`
    /// holds an MLSD entry's facts (names lower-cased).
    ListingEntry {
        name: Option<PyObject>,
        kind: String,
        size: Option<u64>,
        modified: Option<PyObject>,
        facts: PyObject,
        line: Option<PyObject>,
        link_target: Option<PyObject>,
    }
    methods {
        /// The name as `str` (UTF-8 with `surrogateescape`: passing it back as a path sends
        /// the same bytes), or `None`.
        #[getter]
        fn filename(&self, py: Python<'_>) -> PyResult<Option<PyObject>> {
            match &self.name {
                Some(name) => {
                    let text = name.bind(py).call_method1("decode", ("utf-8", "surrogateescape"))?;
                    Ok(Some(text.unbind()))
                }
                None => Ok(None),
            }
        }
    }
}

fn bytes(py: Python<'_>, data: &[u8]) -> PyObject {
    PyBytes::new(py, data).into_any().unbind()
}

fn bytes_list(py: Python<'_>, items: &[Vec<u8>]) -> PyResult<PyObject> {
    let list = PyList::empty(py);
    for item in items {
        list.append(PyBytes::new(py, item))?;
    }
    Ok(list.into_any().unbind())
}

/// A core reply as a `Reply` object.
pub(crate) fn reply_to(py: Python<'_>, reply: &CoreReply) -> PyResult<PyObject> {
    Ok(Py::new(
        py,
        Reply {
            code: reply.code.get(),
            lines: bytes_list(py, &reply.lines)?,
        },
    )?
    .into_any())
}

/// The core's TLS parameters as a `TlsInfo` object.
pub(crate) fn tls_info_to(py: Python<'_>, info: &CoreTlsInfo) -> PyResult<PyObject> {
    Ok(Py::new(
        py,
        TlsInfo {
            version: match info.version {
                TlsVersion::Tls12 => "TLSv1.2",
                TlsVersion::Tls13 => "TLSv1.3",
            }
            .to_owned(),
            cipher_suite: info.cipher_suite_name.clone(),
            resumed: info.kind == HandshakeKind::Resumed,
            alpn: info.alpn.as_deref().map(|alpn| bytes(py, alpn)),
            peer_certificates: bytes_list(py, &info.peer_certificates)?,
        },
    )?
    .into_any())
}

/// A parsed listing line as a `ListingEntry` object (the C binding makes the same choices).
pub(crate) fn listing_entry_to(py: Python<'_>, entry: &CoreListingEntry) -> PyResult<PyObject> {
    let facts = PyDict::new(py);
    let mut out = ListingEntry {
        name: None,
        kind: "unparsed".to_owned(),
        size: None,
        modified: None,
        facts: py.None(),
        line: None,
        link_target: None,
    };
    match entry {
        CoreListingEntry::Mlsd(mlsx) => {
            out.name = Some(bytes(py, &mlsx.name));
            out.kind = match mlsx.kind() {
                Some(EntryKind::File) => "file",
                Some(EntryKind::Dir | EntryKind::Cdir | EntryKind::Pdir) => "dir",
                Some(EntryKind::OsSpecific { kind, .. })
                    if kind.starts_with(b"slink") || kind.starts_with(b"symlink") =>
                {
                    "symlink"
                }
                Some(_) => "other",
                None => "unknown",
            }
            .to_owned();
            out.size = mlsx.size();
            out.modified = mlsx
                .modify()
                .map(|time| datetime_to(py, &time))
                .transpose()?;
            for fact in &mlsx.facts {
                let name = String::from_utf8_lossy(&fact.name).to_ascii_lowercase();
                facts.set_item(name, PyBytes::new(py, &fact.value))?;
            }
        }
        CoreListingEntry::List(ListLine::Entry(line)) => {
            out.name = Some(bytes(py, &line.name));
            out.kind = match line.kind {
                ListEntryKind::File => "file",
                ListEntryKind::Directory => "dir",
                ListEntryKind::Symlink => "symlink",
                ListEntryKind::Other(_) => "other",
            }
            .to_owned();
            out.size = Some(line.size);
            out.link_target = line.link_target.as_deref().map(|t| bytes(py, t));
            // `ls -l` leaves out the year of recent files and the engine has no clock: such
            // a time stays unknown rather than guessed.
            let time = match line.time {
                ListTime::Dated { year, month, day } => Some((year, month, day, 0, 0)),
                ListTime::DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                } => Some((year, month, day, hour, minute)),
                ListTime::Recent { .. } => None,
            };
            if let Some((year, month, day, hour, minute)) = time {
                let time = ftps_proto::codec::listing::FtpTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second: 0,
                    nanos: 0,
                    fraction_digits: 0,
                };
                out.modified = Some(datetime_to(py, &time)?);
            }
        }
        CoreListingEntry::List(ListLine::Unparsed(line)) => out.line = Some(bytes(py, line)),
        CoreListingEntry::List(ListLine::Total(_)) => out.kind = "total".to_owned(),
        CoreListingEntry::Invalid(error) => {
            out.line = Some(bytes(py, error.to_string().as_bytes()));
        }
        CoreListingEntry::Name(name) => {
            out.name = Some(bytes(py, name));
            out.kind = "unknown".to_owned();
        }
    }
    out.facts = facts.into_any().unbind();
    Ok(Py::new(py, out)?.into_any())
}

/// An output that is not an event as its Python object; events are converted by the role.
pub(crate) fn output_to<E>(
    py: Python<'_>,
    output: Output<E>,
    buf: &[u8],
    event: impl FnOnce(Python<'_>, E) -> PyResult<PyObject>,
) -> PyResult<PyObject> {
    let object = match output {
        Output::Transmit { channel, len } => Py::new(
            py,
            Transmit {
                channel: channel_to(channel),
                data: bytes(py, &buf[..len]),
            },
        )?
        .into_any(),
        Output::Io(request) => io_request_to(py, request)?,
        Output::Event(e) => event(py, e)?,
        Output::Wait { deadline } => Py::new(
            py,
            Wait {
                deadline: deadline.map(|d| d.as_nanos()),
            },
        )?
        .into_any(),
        // `Output` is non-exhaustive; this version of the core has no other kind (a new one
        // would be added here together with the core change).
        _ => Py::new(py, Wait { deadline: None })?.into_any(),
    };
    Ok(object)
}

fn io_request_to(py: Python<'_>, request: IoRequest) -> PyResult<PyObject> {
    Ok(match request {
        IoRequest::Connect { channel, addr } => Py::new(
            py,
            Connect {
                channel: channel_to(channel),
                addr: addr_to(py, addr)?,
            },
        )?
        .into_any(),
        IoRequest::Listen { data, ip } => Py::new(
            py,
            Listen {
                data: data.get(),
                ip: ip.to_string(),
            },
        )?
        .into_any(),
        IoRequest::RefuseAccepted { data } => {
            Py::new(py, RefuseAccepted { data: data.get() })?.into_any()
        }
        IoRequest::ShutdownWrite { channel } => Py::new(
            py,
            ShutdownWrite {
                channel: channel_to(channel),
            },
        )?
        .into_any(),
        IoRequest::Close { channel } => Py::new(
            py,
            Close {
                channel: channel_to(channel),
            },
        )?
        .into_any(),
        // `IoRequest` is non-exhaustive; this version of the core has no other request (a new
        // one would be added here together with the core change).
        _ => Py::new(py, Wait { deadline: None })?.into_any(),
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Transmit>()?;
    m.add_class::<Connect>()?;
    m.add_class::<Listen>()?;
    m.add_class::<RefuseAccepted>()?;
    m.add_class::<ShutdownWrite>()?;
    m.add_class::<Close>()?;
    m.add_class::<Wait>()?;
    m.add_class::<Reply>()?;
    m.add_class::<TlsInfo>()?;
    m.add_class::<Transfer>()?;
    m.add_class::<ListingEntry>()?;
    Ok(())
}
