//! Conversions between Python values and the core's plain data: channels, addresses, paths,
//! times, I/O error kinds, and errors (raised or carried by events).

use std::net::{IpAddr, SocketAddr};

use ftps_proto::codec::listing::FtpTime;
use ftps_proto::codec::reply::Reply;
use ftps_proto::error::{ErrorKind, UsageError};
use ftps_proto::io::{Channel, DataId, Instant, IoErrorKind};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

/// The control channel's number; a data channel is its data id (1, 2, …), as in the C binding.
pub(crate) const CONTROL: u32 = 0;

/// The core's channel for a Python channel number.
pub(crate) fn channel_from(raw: u32) -> Channel {
    match raw {
        CONTROL => Channel::Control,
        id => Channel::Data(DataId::from_raw(id)),
    }
}

/// The Python channel number of a channel.
pub(crate) fn channel_to(channel: Channel) -> u32 {
    match channel {
        Channel::Control => CONTROL,
        Channel::Data(id) => id.get(),
    }
}

/// The caller's `time.monotonic_ns()` as the core's time.
pub(crate) fn instant(now: u64) -> Instant {
    Instant::from_nanos(now)
}

/// A path or name argument: `bytes` as given, `str` as UTF-8 with `surrogateescape` (so a
/// non-UTF-8 name decoded the same way goes back unchanged).
pub(crate) struct PathArg(pub(crate) Vec<u8>);

impl<'py> FromPyObject<'py> for PathArg {
    fn extract_bound(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = obj.downcast::<PyBytes>() {
            return Ok(Self(bytes.as_bytes().to_vec()));
        }
        if obj.downcast::<PyString>().is_ok() {
            let encoded = obj.call_method1("encode", ("utf-8", "surrogateescape"))?;
            return Ok(Self(encoded.downcast::<PyBytes>()?.as_bytes().to_vec()));
        }
        Err(PyTypeError::new_err(format!(
            "expected str or bytes, not {}",
            obj.get_type().name()?
        )))
    }
}

/// An `(ip, port)` tuple as a socket address. Names are refused: the sans-IO session resolves
/// nothing, the driver does.
pub(crate) fn addr_from(py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<SocketAddr> {
    let tuple = addr
        .downcast::<PyTuple>()
        .map_err(|_| usage(py, "an address is an (ip, port) tuple"))?;
    if tuple.len() < 2 {
        return Err(usage(py, "an address is an (ip, port) tuple"));
    }
    let host: String = tuple.get_item(0)?.extract()?;
    let port: u16 = tuple.get_item(1)?.extract()?;
    let ip: IpAddr = host.parse().map_err(|_| {
        usage(
            py,
            &format!("{host:?} is not an IP address (resolve names before calling the session)"),
        )
    })?;
    Ok(SocketAddr::new(ip, port))
}

/// A socket address as an `(ip, port)` tuple.
pub(crate) fn addr_to(py: Python<'_>, addr: SocketAddr) -> PyResult<PyObject> {
    Ok((addr.ip().to_string(), addr.port())
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

/// The core's I/O error kind for its Python name.
pub(crate) fn io_error_kind(py: Python<'_>, name: &str) -> PyResult<IoErrorKind> {
    Ok(match name {
        "connection_refused" => IoErrorKind::ConnectionRefused,
        "connection_reset" => IoErrorKind::ConnectionReset,
        "connection_aborted" => IoErrorKind::ConnectionAborted,
        "unreachable" => IoErrorKind::Unreachable,
        "timed_out" => IoErrorKind::TimedOut,
        "addr_not_available" => IoErrorKind::AddrNotAvailable,
        "other" => IoErrorKind::Other,
        other => {
            return Err(usage(
                py,
                &format!(
                    "unknown I/O error kind {other:?} (connection_refused, connection_reset, \
                     connection_aborted, unreachable, timed_out, addr_not_available, other)"
                ),
            ));
        }
    })
}

/// A UTC time as an aware `datetime.datetime` (microsecond precision, as Python has).
pub(crate) fn datetime_to(py: Python<'_>, time: &FtpTime) -> PyResult<PyObject> {
    let datetime = py.import("datetime")?;
    let utc = datetime.getattr("timezone")?.getattr("utc")?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("tzinfo", utc)?;
    let value = datetime.getattr("datetime")?.call(
        (
            time.year,
            time.month,
            time.day,
            time.hour,
            time.minute,
            time.second,
            time.nanos / 1_000,
        ),
        Some(&kwargs),
    );
    // A server may send a date Python cannot hold (year 0, second 60): keep the event, drop
    // the time rather than fail the whole drain.
    Ok(value.map_or_else(|_| py.None(), Bound::unbind))
}

/// A `datetime.datetime` as a UTC time: aware values are converted to UTC, naive ones are
/// taken as UTC.
pub(crate) fn datetime_from(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<FtpTime> {
    let datetime = py.import("datetime")?;
    if !value.is_instance(&datetime.getattr("datetime")?)? {
        return Err(PyTypeError::new_err("expected a datetime.datetime"));
    }
    let value = if value.getattr("tzinfo")?.is_none() {
        value.clone()
    } else {
        value.call_method1(
            "astimezone",
            (datetime.getattr("timezone")?.getattr("utc")?,),
        )?
    };
    let micros: u32 = value.getattr("microsecond")?.extract()?;
    let time = FtpTime {
        year: value.getattr("year")?.extract()?,
        month: value.getattr("month")?.extract()?,
        day: value.getattr("day")?.extract()?,
        hour: value.getattr("hour")?.extract()?,
        minute: value.getattr("minute")?.extract()?,
        second: value.getattr("second")?.extract()?,
        nanos: micros * 1_000,
        fraction_digits: if micros == 0 { 0 } else { 6 },
    };
    time.validate()
        .map_err(|error| usage(py, &format!("time not representable in FTP: {error}")))?;
    Ok(time)
}

/// Makes an exception object of the package's hierarchy (python/ftps/_errors.py) for a kind of
/// the core's one table, with the server's reply when there is one. Not raised: events carry
/// it, drivers raise it.
pub(crate) fn error_object(
    py: Python<'_>,
    kind: ErrorKind,
    message: String,
    reply: Option<&Reply>,
) -> PyResult<PyObject> {
    let (code, text) = match reply {
        Some(reply) => (
            Some(reply.code.get()),
            Some(String::from_utf8_lossy(&reply.text()).into_owned()),
        ),
        None => (None, None),
    };
    let make = py.import("ftps._errors")?.getattr("_make")?;
    Ok(make
        .call1((kind.name(), kind.code(), message, code, text))?
        .unbind())
}

/// The exception to raise for a caller's misuse of a session.
pub(crate) fn usage_error(py: Python<'_>, error: UsageError) -> PyErr {
    error_to_err(py, error.kind(), error.to_string())
}

/// A `UsageError` with a message of the binding's own (bad argument values).
pub(crate) fn usage(py: Python<'_>, message: &str) -> PyErr {
    error_to_err(py, ErrorKind::Usage, message.to_owned())
}

/// An exception of kind `kind` as a `PyErr`, ready to raise.
pub(crate) fn error_to_err(py: Python<'_>, kind: ErrorKind, message: String) -> PyErr {
    match error_object(py, kind, message, None) {
        Ok(object) => PyErr::from_value(object.into_bound(py)),
        Err(error) => error,
    }
}

/// Runs a session call and raises its `UsageError` as the package's exception.
pub(crate) fn check<T>(py: Python<'_>, result: Result<T, UsageError>) -> PyResult<T> {
    result.map_err(|error| usage_error(py, error))
}

/// A boolean as Python writes it, for `repr`s.
pub(crate) fn py_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}
