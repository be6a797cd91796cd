//! `ftps.ClientSession`: the core's client session, one method per input and verb, and its
//! events as Python objects.

use ftps_proto::client::{
    ClientEvent, ClientSession as CoreSession, DataProtection, OpError, OpId, OpValue,
    TraceDirection,
};
use ftps_proto::codec::command::{FormatControl, TransferType};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::config::ClientConfig;
use crate::conv::{
    PathArg, addr_from, addr_to, channel_from, check, datetime_to, error_object, instant,
    io_error_kind, usage,
};
use crate::records::{
    FieldRepr, Transfer, listing_entry_to, output_to, record, reply_to, tls_info_to,
};

/// Bytes at or above which a call releases the GIL: below it, releasing costs more than the
/// work (a control reply, a small record).
const RELEASE_GIL_AT: usize = 4 * 1024;

/// The drain's buffer for `Transmit` bytes: a few TLS records per call.
const TRANSMIT_BUFFER: usize = 128 * 1024;

/// The largest `read_data` a caller may ask for at once.
const MAX_READ: usize = 16 * 1024 * 1024;

record! {
    /// The server's greeting (220) arrived.
    Connected { greeting: PyObject }
}
record! {
    /// The control connection is protected by TLS (both roles report it).
    Secured { info: PyObject }
}
record! {
    /// The session is set up (TLS and the trusted `FEAT`) and runs queued operations.
    Ready { features: PyObject }
}
record! {
    /// A login operation succeeded (including `PBSZ`/`PROT` under TLS).
    LoggedIn { op: u64 }
}
record! {
    /// A preliminary (1yz) reply for an operation, e.g. `150`.
    Preliminary { op: u64, reply: PyObject }
}
record! {
    /// One line of the control dialogue (`trace_control=True`); `direction` is `"sent"` or
    /// `"received"`; a password is shown as `****`.
    ControlLine { direction: String, line: PyObject }
}
record! {
    /// Bytes wait to be taken with `read_data(id, …)` (a download, or an upload on the
    /// server): read until it returns `b""`. `id` is the operation (client) or the request
    /// (server).
    Readable { id: u64 }
}
record! {
    /// One entry of a listing.
    Listing { op: u64, entry: PyObject }
}
record! {
    /// A transfer takes data (again): `write_data` (client uploads, server downloads) or
    /// `write_entry` (server listings).
    Writable { id: u64 }
}
record! {
    /// An operation ended, once per operation. On success `error` is `None`, `reply` the final
    /// reply and `value` what the verb yields: `bytes` (PWD, MKD), `int` (SIZE), `datetime`
    /// (MDTM), `Transfer` (transfers) or `None`. On failure `error` is the exception (not
    /// raised) and `reply` the server's reply when there was one.
    Completed { op: u64, reply: Option<PyObject>, value: Option<PyObject>, error: Option<PyObject> }
    methods {
        /// `value`, or raise `error`.
        fn result(&self, py: Python<'_>) -> PyResult<PyObject> {
            match &self.error {
                Some(error) => Err(PyErr::from_value(error.bind(py).clone())),
                None => Ok(self.value.as_ref().map_or_else(|| py.None(), |v| v.clone_ref(py))),
            }
        }
    }
}
record! {
    /// The session ended, reported once and last; `error` is `None` after an orderly `QUIT`,
    /// otherwise the exception object that says why.
    Closed { error: Option<PyObject> }
}

fn op_error_to(py: Python<'_>, error: &OpError) -> PyResult<PyObject> {
    error_object(py, error.kind(), error.to_string(), error.reply())
}

fn event_to(py: Python<'_>, event: ClientEvent) -> PyResult<PyObject> {
    Ok(match event {
        ClientEvent::Connected { greeting } => Py::new(
            py,
            Connected {
                greeting: reply_to(py, &greeting)?,
            },
        )?
        .into_any(),
        ClientEvent::Secured { info } => Py::new(
            py,
            Secured {
                info: tls_info_to(py, &info)?,
            },
        )?
        .into_any(),
        ClientEvent::Ready { features } => {
            let list = pyo3::types::PyList::empty(py);
            for feature in &features {
                list.append(PyBytes::new(py, feature))?;
            }
            Py::new(
                py,
                Ready {
                    features: list.into_any().unbind(),
                },
            )?
            .into_any()
        }
        ClientEvent::LoggedIn { op } => Py::new(py, LoggedIn { op: op.get() })?.into_any(),
        ClientEvent::Preliminary { op, reply } => Py::new(
            py,
            Preliminary {
                op: op.get(),
                reply: reply_to(py, &reply)?,
            },
        )?
        .into_any(),
        ClientEvent::ControlLine { direction, line } => Py::new(
            py,
            ControlLine {
                direction: match direction {
                    TraceDirection::Sent => "sent",
                    TraceDirection::Received => "received",
                }
                .to_owned(),
                line: PyBytes::new(py, &line).into_any().unbind(),
            },
        )?
        .into_any(),
        ClientEvent::Readable { op } => Py::new(py, Readable { id: op.get() })?.into_any(),
        ClientEvent::Listing { op, entry } => Py::new(
            py,
            Listing {
                op: op.get(),
                entry: listing_entry_to(py, &entry)?,
            },
        )?
        .into_any(),
        ClientEvent::Writable { op } => Py::new(py, Writable { id: op.get() })?.into_any(),
        ClientEvent::Completed { op, result } => {
            let completed = match result {
                Ok(completion) => Completed {
                    op: op.get(),
                    reply: Some(reply_to(py, &completion.reply)?),
                    value: value_to(py, &completion.value)?,
                    error: None,
                },
                Err(error) => Completed {
                    op: op.get(),
                    reply: error.reply().map(|r| reply_to(py, r)).transpose()?,
                    value: None,
                    error: Some(op_error_to(py, &error)?),
                },
            };
            Py::new(py, completed)?.into_any()
        }
        ClientEvent::Closed { error } => Py::new(
            py,
            Closed {
                error: error
                    .map(|e| error_object(py, e.kind(), e.to_string(), e.reply()))
                    .transpose()?,
            },
        )?
        .into_any(),
        // `ClientEvent` is non-exhaustive; this version of the core has no other event.
        _ => Py::new(py, Closed { error: None })?.into_any(),
    })
}

fn value_to(py: Python<'_>, value: &OpValue) -> PyResult<Option<PyObject>> {
    Ok(match value {
        OpValue::Path(path) => Some(PyBytes::new(py, path).into_any().unbind()),
        OpValue::Size(size) => Some(size.into_pyobject(py)?.into_any().unbind()),
        OpValue::Modified(time) => Some(datetime_to(py, time)?),
        OpValue::Transfer { bytes, resumed } => Some(
            Py::new(
                py,
                Transfer {
                    bytes: *bytes,
                    resumed: *resumed,
                },
            )?
            .into_any(),
        ),
        _ => None,
    })
}

/// The client role of the sans-IO engine (see the module docs and the stub).
#[pyclass(module = "ftps")]
pub(crate) struct ClientSession {
    inner: CoreSession,
    out: Vec<u8>,
    scratch: Vec<u8>,
}

fn op(id: u64) -> OpId {
    OpId::from_raw(id)
}

fn optional(path: Option<PathArg>) -> Option<Vec<u8>> {
    path.map(|p| p.0)
}

#[pymethods]
impl ClientSession {
    /// A session with the server at `peer` (an `(ip, port)` tuple); its first output asks to
    /// connect the control channel.
    #[new]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, ClientConfig>,
        peer: &Bound<'_, PyAny>,
        now: u64,
    ) -> PyResult<Self> {
        let peer = addr_from(py, peer)?;
        let config = config.get().session_config(peer);
        Ok(Self {
            inner: CoreSession::new(config, instant(now)),
            out: vec![0; TRANSMIT_BUFFER],
            scratch: Vec::new(),
        })
    }

    // ---- inputs (the same names and meanings as ServerSession's) ----------------------------

    /// A requested connection is up, with its local address.
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
            .handle_listening(ftps_proto::io::DataId::from_raw(data), addr, instant(now));
        Ok(())
    }

    /// The listener for `data` accepted a connection from `peer`.
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
            .handle_accepted(ftps_proto::io::DataId::from_raw(data), peer, instant(now));
        Ok(())
    }

    /// Bytes received on `channel`; returns how many were taken. Keep the rest, stop reading
    /// that socket, and feed the rest after draining.
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

    /// A socket operation on `channel` failed; `kind` is one of `connection_refused`,
    /// `connection_reset`, `connection_aborted`, `unreachable`, `timed_out`,
    /// `addr_not_available`, `other`.
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
        // TLS records are sealed and opened here: without the GIL.
        let output = py.allow_threads(|| inner.poll_output(out, instant(now)));
        output_to(py, output, &self.out, event_to)
    }

    /// The earliest deadline of the session's timers (`None`: none armed).
    fn next_deadline(&self) -> Option<u64> {
        self.inner.next_deadline().map(|d| d.as_nanos())
    }

    // ---- getters --------------------------------------------------------------------------

    /// True once the session ended (its `Closed` event may still be pending in the drain).
    #[getter]
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Whether the control connection is protected by TLS now.
    #[getter]
    fn is_secure(&self) -> bool {
        self.inner.is_secure()
    }

    /// Whether a login succeeded.
    #[getter]
    fn is_logged_in(&self) -> bool {
        self.inner.is_logged_in()
    }

    /// `"private"` or `"clear"`: the protection of the next data connection.
    #[getter]
    fn data_protection(&self) -> &'static str {
        match self.inner.data_protection() {
            DataProtection::Private => "private",
            _ => "clear",
        }
    }

    /// The feature lines of the trusted `FEAT` reply.
    #[getter]
    fn features<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.inner
            .features()
            .iter()
            .map(|f| PyBytes::new(py, f))
            .collect()
    }

    /// The server's address.
    #[getter]
    fn peer_addr(&self, py: Python<'_>) -> PyResult<PyObject> {
        addr_to(py, self.inner.peer_addr())
    }

    /// Operations queued and not completed.
    #[getter]
    fn pending_ops(&self) -> usize {
        self.inner.pending_ops()
    }

    // ---- verbs: each queues an operation and returns its id ---------------------------------

    /// `USER`/`PASS` (and `ACCT` if asked and given); under TLS also `PBSZ`/`PROT`.
    #[pyo3(signature = (user, password, account = None))]
    fn login(
        &mut self,
        py: Python<'_>,
        user: PathArg,
        password: PathArg,
        account: Option<PathArg>,
    ) -> PyResult<u64> {
        let account = optional(account);
        check(
            py,
            self.inner.login(&user.0, &password.0, account.as_deref()),
        )
        .map(OpId::get)
    }

    /// `CWD path`.
    fn cwd(&mut self, py: Python<'_>, path: PathArg) -> PyResult<u64> {
        check(py, self.inner.cwd(&path.0)).map(OpId::get)
    }

    /// `CDUP`.
    fn cdup(&mut self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.inner.cdup()).map(OpId::get)
    }

    /// `PWD`: completes with the path (`bytes`).
    fn pwd(&mut self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.inner.pwd()).map(OpId::get)
    }

    /// `MKD path`: completes with the path when the server names it.
    fn mkd(&mut self, py: Python<'_>, path: PathArg) -> PyResult<u64> {
        check(py, self.inner.mkd(&path.0)).map(OpId::get)
    }

    /// `RMD path`.
    fn rmd(&mut self, py: Python<'_>, path: PathArg) -> PyResult<u64> {
        check(py, self.inner.rmd(&path.0)).map(OpId::get)
    }

    /// `DELE path`.
    fn dele(&mut self, py: Python<'_>, path: PathArg) -> PyResult<u64> {
        check(py, self.inner.dele(&path.0)).map(OpId::get)
    }

    /// `RNFR from` + `RNTO to`.
    fn rename(&mut self, py: Python<'_>, from_: PathArg, to: PathArg) -> PyResult<u64> {
        check(py, self.inner.rename(&from_.0, &to.0)).map(OpId::get)
    }

    /// `SIZE path`: completes with an `int`.
    fn size(&mut self, py: Python<'_>, path: PathArg) -> PyResult<u64> {
        check(py, self.inner.size(&path.0)).map(OpId::get)
    }

    /// `MDTM path`: completes with a UTC `datetime`.
    fn mdtm(&mut self, py: Python<'_>, path: PathArg) -> PyResult<u64> {
        check(py, self.inner.mdtm(&path.0)).map(OpId::get)
    }

    /// `MLST [path]`.
    #[pyo3(signature = (path = None))]
    fn mlst(&mut self, py: Python<'_>, path: Option<PathArg>) -> PyResult<u64> {
        let path = optional(path);
        check(py, self.inner.mlst(path.as_deref())).map(OpId::get)
    }

    /// `NOOP`.
    fn noop(&mut self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.inner.noop()).map(OpId::get)
    }

    /// `SYST`.
    fn syst(&mut self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.inner.syst()).map(OpId::get)
    }

    /// `STAT [path]`.
    #[pyo3(signature = (path = None))]
    fn stat(&mut self, py: Python<'_>, path: Option<PathArg>) -> PyResult<u64> {
        let path = optional(path);
        check(py, self.inner.stat(path.as_deref())).map(OpId::get)
    }

    /// `SITE command`.
    fn site(&mut self, py: Python<'_>, command: PathArg) -> PyResult<u64> {
        check(py, self.inner.site(&command.0)).map(OpId::get)
    }

    /// Any other command: `verb [argument]` (commands with a dedicated verb are refused).
    #[pyo3(signature = (verb, argument = None))]
    fn raw_command(
        &mut self,
        py: Python<'_>,
        verb: PathArg,
        argument: Option<PathArg>,
    ) -> PyResult<u64> {
        let argument = optional(argument);
        check(py, self.inner.raw_command(&verb.0, argument.as_deref())).map(OpId::get)
    }

    /// `QUIT`.
    fn quit(&mut self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.inner.quit()).map(OpId::get)
    }

    /// `CCC`: the control connection goes back to clear text after login.
    fn ccc(&mut self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.inner.ccc()).map(OpId::get)
    }

    /// `PBSZ 0` + `PROT P` (`"private"`) or `PROT C` (`"clear"`).
    fn set_data_protection(&mut self, py: Python<'_>, level: &str) -> PyResult<u64> {
        let level = match level {
            "private" => DataProtection::Private,
            "clear" => DataProtection::Clear,
            other => {
                return Err(usage(
                    py,
                    &format!("level must be \"private\" or \"clear\", not {other:?}"),
                ));
            }
        };
        check(py, self.inner.set_data_protection(level)).map(OpId::get)
    }

    /// `"binary"` (`TYPE I`, the default) or `"ascii"` (`TYPE A`) for later transfers.
    fn set_transfer_type(&mut self, py: Python<'_>, transfer_type: &str) -> PyResult<()> {
        let transfer_type = match transfer_type {
            "binary" => TransferType::Image,
            "ascii" => TransferType::Ascii(FormatControl::NonPrint),
            other => {
                return Err(usage(
                    py,
                    &format!("transfer_type must be \"binary\" or \"ascii\", not {other:?}"),
                ));
            }
        };
        self.inner.set_transfer_type(transfer_type);
        Ok(())
    }

    /// `RETR path` (after `REST rest`): `Readable` events, then `Completed` with a `Transfer`.
    #[pyo3(signature = (path, rest = None))]
    fn retrieve(&mut self, py: Python<'_>, path: PathArg, rest: Option<u64>) -> PyResult<u64> {
        check(py, self.inner.retrieve(&path.0, rest)).map(OpId::get)
    }

    /// `STOR path`: `Writable` events; `write_data`, then `finish_upload`.
    fn store(&mut self, py: Python<'_>, path: PathArg) -> PyResult<u64> {
        check(py, self.inner.store(&path.0)).map(OpId::get)
    }

    /// `APPE path`.
    fn append(&mut self, py: Python<'_>, path: PathArg) -> PyResult<u64> {
        check(py, self.inner.append(&path.0)).map(OpId::get)
    }

    /// `STOU`.
    fn store_unique(&mut self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.inner.store_unique()).map(OpId::get)
    }

    /// `LIST [path]`, parsed: `Listing` events.
    #[pyo3(signature = (path = None))]
    fn list(&mut self, py: Python<'_>, path: Option<PathArg>) -> PyResult<u64> {
        let path = optional(path);
        check(py, self.inner.list(path.as_deref())).map(OpId::get)
    }

    /// `LIST [path]`, raw: `Readable` events.
    #[pyo3(signature = (path = None))]
    fn list_raw(&mut self, py: Python<'_>, path: Option<PathArg>) -> PyResult<u64> {
        let path = optional(path);
        check(py, self.inner.list_raw(path.as_deref())).map(OpId::get)
    }

    /// `NLST [path]`: `Listing` events with names.
    #[pyo3(signature = (path = None))]
    fn nlst(&mut self, py: Python<'_>, path: Option<PathArg>) -> PyResult<u64> {
        let path = optional(path);
        check(py, self.inner.nlst(path.as_deref())).map(OpId::get)
    }

    /// `MLSD [path]`: `Listing` events with facts.
    #[pyo3(signature = (path = None))]
    fn mlsd(&mut self, py: Python<'_>, path: Option<PathArg>) -> PyResult<u64> {
        let path = optional(path);
        check(py, self.inner.mlsd(path.as_deref())).map(OpId::get)
    }

    /// `MLSD` when the server offers it, `LIST` otherwise (decided by the session).
    #[pyo3(signature = (path = None))]
    fn list_entries(&mut self, py: Python<'_>, path: Option<PathArg>) -> PyResult<u64> {
        let path = optional(path);
        check(py, self.inner.list_entries(path.as_deref())).map(OpId::get)
    }

    /// Takes up to `max` downloaded bytes of `op` (`b""`: nothing buffered now).
    #[pyo3(signature = (op, max = 256 * 1024))]
    fn read_data<'py>(
        &mut self,
        py: Python<'py>,
        op: u64,
        max: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let max = max.clamp(1, MAX_READ);
        self.scratch.resize(max, 0);
        let (inner, scratch) = (&mut self.inner, &mut self.scratch);
        let read = if max >= RELEASE_GIL_AT {
            py.allow_threads(|| inner.read_data(self::op(op), scratch))
        } else {
            inner.read_data(self::op(op), scratch)
        };
        let n = check(py, read)?;
        Ok(PyBytes::new(py, &self.scratch[..n]))
    }

    /// Offers upload bytes to `op`; returns how many were taken (fewer: wait for `Writable`).
    fn write_data(&mut self, py: Python<'_>, op: u64, data: &[u8]) -> PyResult<usize> {
        let inner = &mut self.inner;
        let written = if data.len() >= RELEASE_GIL_AT {
            py.allow_threads(|| inner.write_data(self::op(op), data))
        } else {
            inner.write_data(self::op(op), data)
        };
        check(py, written)
    }

    /// Ends an upload: the data connection is closed after the bytes written.
    fn finish_upload(&mut self, py: Python<'_>, op: u64) -> PyResult<()> {
        check(py, self.inner.finish_upload(self::op(op)))
    }

    /// Aborts an operation (`ABOR` for a running transfer); it completes with `AbortedError`.
    fn abort(&mut self, py: Python<'_>, op: u64) -> PyResult<()> {
        check(py, self.inner.abort(self::op(op)))
    }

    fn __repr__(&self) -> String {
        format!(
            "<ClientSession peer={} secure={} logged_in={} closed={}>",
            self.inner.peer_addr(),
            crate::conv::py_bool(self.inner.is_secure()),
            crate::conv::py_bool(self.inner.is_logged_in()),
            crate::conv::py_bool(self.inner.is_closed())
        )
    }
}

/// Data ids start at 1: channel 0 is the control connection.
pub(crate) fn data_channel(py: Python<'_>, data: u32) -> PyResult<()> {
    if data == crate::conv::CONTROL {
        return Err(usage(py, "0 is the control channel, not a data connection"));
    }
    Ok(())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ClientSession>()?;
    m.add_class::<Connected>()?;
    m.add_class::<Secured>()?;
    m.add_class::<Ready>()?;
    m.add_class::<LoggedIn>()?;
    m.add_class::<Preliminary>()?;
    m.add_class::<ControlLine>()?;
    m.add_class::<Readable>()?;
    m.add_class::<Listing>()?;
    m.add_class::<Writable>()?;
    m.add_class::<Completed>()?;
    m.add_class::<Closed>()?;
    Ok(())
}
