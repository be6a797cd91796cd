//! Plain C types both roles share: borrowed byte views, socket addresses, channels, times,
//! and the drain's tagged output.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ftps_proto::codec::listing::FtpTime;
use ftps_proto::io::{Channel, DataId, Instant, IoRequest, Output};

use crate::ffi::Failure;

/// Bytes owned by a session (or static), valid until the next call on that session. Not
/// NUL-terminated; `data` may be NULL when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ftps_bytes {
    /// The first byte.
    pub data: *const u8,
    /// How many bytes.
    pub len: usize,
}

impl ftps_bytes {
    /// No bytes.
    pub(crate) const EMPTY: Self = Self {
        data: std::ptr::null(),
        len: 0,
    };

    /// A view of `bytes` (which must outlive the view's use by C: session-owned storage).
    pub(crate) fn of(bytes: &[u8]) -> Self {
        if bytes.is_empty() {
            return Self::EMPTY;
        }
        Self {
            data: bytes.as_ptr(),
            len: bytes.len(),
        }
    }
}

impl Default for ftps_bytes {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// An IPv4 or IPv6 socket address as plain data. `family` is 4 or 6; an IPv4 address uses the
/// first four bytes of `ip`; `port` is in host byte order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ftps_socket_addr {
    /// 4 or 6.
    pub family: u8,
    /// The address bytes in network order (4 used for IPv4, 16 for IPv6).
    pub ip: [u8; 16],
    /// The port, host byte order.
    pub port: u16,
}

impl From<SocketAddr> for ftps_socket_addr {
    fn from(addr: SocketAddr) -> Self {
        let mut ip = [0u8; 16];
        let family = match addr.ip() {
            IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                4
            }
            IpAddr::V6(v6) => {
                ip = v6.octets();
                6
            }
        };
        Self {
            family,
            ip,
            port: addr.port(),
        }
    }
}

impl From<IpAddr> for ftps_socket_addr {
    fn from(ip: IpAddr) -> Self {
        SocketAddr::new(ip, 0).into()
    }
}

impl ftps_socket_addr {
    /// The address this describes; a family other than 4 or 6 is refused.
    pub(crate) fn to_rust(self) -> Result<SocketAddr, Failure> {
        let addr = self;
        let ip = match addr.family {
            4 => IpAddr::V4(Ipv4Addr::new(
                addr.ip[0], addr.ip[1], addr.ip[2], addr.ip[3],
            )),
            6 => IpAddr::V6(Ipv6Addr::from(addr.ip)),
            other => {
                return Err(Failure::invalid(format!(
                    "address family {other} (must be 4 or 6)"
                )));
            }
        };
        Ok(SocketAddr::new(ip, addr.port))
    }
}

/// The control channel. A data channel is its data id (1, 2, …): a channel is a `uint32_t`.
pub const FTPS_CHANNEL_CONTROL: u32 = 0;

/// The core's channel for a C channel number.
pub(crate) fn channel_from(raw: u32) -> Channel {
    match raw {
        FTPS_CHANNEL_CONTROL => Channel::Control,
        id => Channel::Data(DataId::from_raw(id)),
    }
}

/// The C channel number of a channel.
pub(crate) fn channel_to(channel: Channel) -> u32 {
    match channel {
        Channel::Control => FTPS_CHANNEL_CONTROL,
        Channel::Data(id) => id.get(),
    }
}

/// The core's time for the caller's nanoseconds.
pub(crate) fn instant(now_ns: u64) -> Instant {
    Instant::from_nanos(now_ns)
}

/// A date and time in UTC (MDTM, MLSD `modify`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ftps_time {
    /// Year (1000–9999).
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–60.
    pub second: u8,
    /// Fraction of the second in nanoseconds.
    pub nanos: u32,
}

impl From<FtpTime> for ftps_time {
    fn from(time: FtpTime) -> Self {
        Self {
            year: time.year,
            month: time.month,
            day: time.day,
            hour: time.hour,
            minute: time.minute,
            second: time.second,
            nanos: time.nanos,
        }
    }
}

impl ftps_time {
    /// The core's time for a time given by C, checked (every field in range, the day valid
    /// for its month); the fraction keeps as many digits as `nanos` needs.
    pub(crate) fn to_rust(self) -> Result<FtpTime, Failure> {
        let mut digits = 0u8;
        if self.nanos > 0 {
            digits = 9;
            let mut nanos = self.nanos;
            while nanos % 10 == 0 {
                nanos /= 10;
                digits -= 1;
            }
        }
        let time = FtpTime {
            year: self.year,
            month: self.month,
            day: self.day,
            hour: self.hour,
            minute: self.minute,
            second: self.second,
            nanos: self.nanos,
            fraction_digits: digits,
        };
        time.validate()
            .map_err(|_| Failure::invalid("time out of range"))?;
        Ok(time)
    }
}

/// What [`ftps_output`] holds.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_output_kind {
    /// Send the first `len` bytes of the caller's buffer on `channel`, in order, completely.
    FTPS_OUTPUT_TRANSMIT = 1,
    /// Open a TCP connection to `addr` for `channel`; report `*_handle_connected` (with the
    /// local address) or `*_handle_io_error`.
    FTPS_OUTPUT_CONNECT = 2,
    /// Listen on `addr.ip` (any port, or the server's passive range) for the data channel
    /// `channel`; report `*_handle_listening`, then `*_handle_accepted` per connection. The
    /// listener lives until the channel's `FTPS_OUTPUT_CLOSE`.
    FTPS_OUTPUT_LISTEN = 3,
    /// Close the connection just accepted for the data channel `channel` (a refused peer) and
    /// keep accepting on its listener.
    FTPS_OUTPUT_REFUSE_ACCEPTED = 4,
    /// After writing everything held for `channel`, shut down the socket's write side.
    FTPS_OUTPUT_SHUTDOWN_WRITE = 5,
    /// Close `channel`'s socket (and listener).
    FTPS_OUTPUT_CLOSE = 6,
    /// An event for the application: the role's event struct was filled.
    FTPS_OUTPUT_EVENT = 7,
    /// Nothing more until new input, or until `deadline_ns` when `has_deadline` (then call
    /// `*_handle_timeout`).
    FTPS_OUTPUT_WAIT = 8,
}

/// One output of a session's drain. Which fields mean something depends on `kind`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ftps_output {
    /// What to do.
    pub kind: ftps_output_kind,
    /// The channel (TRANSMIT, CONNECT, LISTEN, REFUSE_ACCEPTED, SHUTDOWN_WRITE, CLOSE).
    pub channel: u32,
    /// Bytes written at the start of the caller's buffer (TRANSMIT).
    pub len: usize,
    /// Where to connect (CONNECT) or the local IP to listen on (LISTEN, port 0).
    pub addr: ftps_socket_addr,
    /// WAIT: whether `deadline_ns` is set.
    pub has_deadline: bool,
    /// WAIT: when to call `*_handle_timeout`, on the caller's clock.
    pub deadline_ns: u64,
}

impl Default for ftps_output {
    fn default() -> Self {
        Self {
            kind: ftps_output_kind::FTPS_OUTPUT_WAIT,
            channel: 0,
            len: 0,
            addr: ftps_socket_addr::default(),
            has_deadline: false,
            deadline_ns: 0,
        }
    }
}

/// Fills `out` from one drain output; returns the event, if it was one, for the role to
/// describe in its own event struct.
pub(crate) fn fill_output<E>(output: Output<E>, out: &mut ftps_output) -> Option<E> {
    *out = ftps_output::default();
    match output {
        Output::Transmit { channel, len } => {
            out.kind = ftps_output_kind::FTPS_OUTPUT_TRANSMIT;
            out.channel = channel_to(channel);
            out.len = len;
        }
        Output::Io(request) => fill_request(request, out),
        Output::Event(event) => {
            out.kind = ftps_output_kind::FTPS_OUTPUT_EVENT;
            return Some(event);
        }
        Output::Wait { deadline } => {
            out.kind = ftps_output_kind::FTPS_OUTPUT_WAIT;
            out.has_deadline = deadline.is_some();
            out.deadline_ns = deadline.map_or(0, Instant::as_nanos);
        }
        // Outputs a newer core may add: nothing to do, ask again.
        _ => out.kind = ftps_output_kind::FTPS_OUTPUT_WAIT,
    }
    None
}

fn fill_request(request: IoRequest, out: &mut ftps_output) {
    let (kind, channel) = match request {
        IoRequest::Connect { channel, addr } => {
            out.addr = addr.into();
            (ftps_output_kind::FTPS_OUTPUT_CONNECT, channel)
        }
        IoRequest::Listen { data, ip } => {
            out.addr = ip.into();
            (ftps_output_kind::FTPS_OUTPUT_LISTEN, Channel::Data(data))
        }
        IoRequest::RefuseAccepted { data } => (
            ftps_output_kind::FTPS_OUTPUT_REFUSE_ACCEPTED,
            Channel::Data(data),
        ),
        IoRequest::ShutdownWrite { channel } => {
            (ftps_output_kind::FTPS_OUTPUT_SHUTDOWN_WRITE, channel)
        }
        IoRequest::Close { channel } => (ftps_output_kind::FTPS_OUTPUT_CLOSE, channel),
        // Requests a newer core may add: report as a wait (nothing to do).
        _ => (ftps_output_kind::FTPS_OUTPUT_WAIT, Channel::Control),
    };
    out.kind = kind;
    out.channel = channel_to(channel);
}

/// Why a socket operation failed, for `*_handle_io_error`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_io_error {
    /// Nothing listens there.
    FTPS_IO_CONNECTION_REFUSED = 1,
    /// The peer reset the connection.
    FTPS_IO_CONNECTION_RESET = 2,
    /// The connection was aborted locally (or a broken pipe).
    FTPS_IO_CONNECTION_ABORTED = 3,
    /// Network or host unreachable.
    FTPS_IO_UNREACHABLE = 4,
    /// The operating system's own timeout.
    FTPS_IO_TIMED_OUT = 5,
    /// A local address could not be bound.
    FTPS_IO_ADDR_NOT_AVAILABLE = 6,
    /// Anything else.
    FTPS_IO_OTHER = 7,
}

impl From<ftps_io_error> for ftps_proto::io::IoErrorKind {
    fn from(error: ftps_io_error) -> Self {
        match error {
            ftps_io_error::FTPS_IO_CONNECTION_REFUSED => Self::ConnectionRefused,
            ftps_io_error::FTPS_IO_CONNECTION_RESET => Self::ConnectionReset,
            ftps_io_error::FTPS_IO_CONNECTION_ABORTED => Self::ConnectionAborted,
            ftps_io_error::FTPS_IO_UNREACHABLE => Self::Unreachable,
            ftps_io_error::FTPS_IO_TIMED_OUT => Self::TimedOut,
            ftps_io_error::FTPS_IO_ADDR_NOT_AVAILABLE => Self::AddrNotAvailable,
            ftps_io_error::FTPS_IO_OTHER => Self::Other,
        }
    }
}

/// A C enum value received as an integer, checked: an out-of-range value from C is
/// `FTPS_ERR_INVALID_PARAMETER`, never undefined behaviour.
pub(crate) fn io_error_from(raw: u32) -> Result<ftps_io_error, Failure> {
    Ok(match raw {
        1 => ftps_io_error::FTPS_IO_CONNECTION_REFUSED,
        2 => ftps_io_error::FTPS_IO_CONNECTION_RESET,
        3 => ftps_io_error::FTPS_IO_CONNECTION_ABORTED,
        4 => ftps_io_error::FTPS_IO_UNREACHABLE,
        5 => ftps_io_error::FTPS_IO_TIMED_OUT,
        6 => ftps_io_error::FTPS_IO_ADDR_NOT_AVAILABLE,
        7 => ftps_io_error::FTPS_IO_OTHER,
        other => return Err(Failure::invalid(format!("I/O error kind {other}"))),
    })
}

/// How a session's TLS handshake went, inside events (`SECURED`, transfer completion).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ftps_tls_info {
    /// 12 for TLS 1.2, 13 for TLS 1.3; 0 when no TLS.
    pub version: u8,
    /// The IANA cipher suite number.
    pub cipher_suite: u16,
    /// The cipher suite's IANA name.
    pub cipher_suite_name: ftps_bytes,
    /// Whether the handshake resumed an earlier session.
    pub resumed: bool,
    /// The peer's end-entity certificate (DER), empty when none.
    pub peer_certificate: ftps_bytes,
}

impl ftps_tls_info {
    /// A view of `info` (which the session keeps until the next call).
    pub(crate) fn of(info: &ftps_proto::tls::TlsInfo) -> Self {
        Self {
            version: match info.version {
                ftps_proto::tls::TlsVersion::Tls12 => 12,
                ftps_proto::tls::TlsVersion::Tls13 => 13,
            },
            cipher_suite: info.cipher_suite,
            cipher_suite_name: ftps_bytes::of(info.cipher_suite_name.as_bytes()),
            resumed: info.kind.is_resumed(),
            peer_certificate: info
                .peer_certificates
                .first()
                .map_or(ftps_bytes::EMPTY, |cert| ftps_bytes::of(cert)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_bad_families_are_refused() {
        for text in ["127.0.0.1:21", "[::1]:990"] {
            let addr: SocketAddr = text.parse().unwrap();
            let c = ftps_socket_addr::from(addr);
            assert_eq!(c.to_rust().unwrap(), addr);
        }
        let bad = ftps_socket_addr {
            family: 5,
            ..Default::default()
        };
        assert!(bad.to_rust().is_err());
    }

    #[test]
    fn times_are_checked_and_keep_their_fraction() {
        let time = ftps_time {
            year: 2024,
            month: 2,
            day: 29,
            hour: 23,
            minute: 59,
            second: 60,
            nanos: 500_000_000,
        };
        let rust = time.to_rust().unwrap();
        assert_eq!(rust.fraction_digits, 1);
        assert_eq!(ftps_time::from(rust), time);
        let whole = ftps_time { nanos: 0, ..time }.to_rust().unwrap();
        assert_eq!(whole.fraction_digits, 0);
        let exact = ftps_time { nanos: 1, ..time }.to_rust().unwrap();
        assert_eq!(exact.fraction_digits, 9);
        for bad in [
            ftps_time { day: 30, ..time },
            ftps_time { year: 2023, ..time },
            ftps_time { month: 13, ..time },
            ftps_time { hour: 24, ..time },
            ftps_time {
                nanos: 1_000_000_000,
                ..time
            },
            ftps_time::default(),
        ] {
            assert!(bad.to_rust().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn channels_are_numbers() {
        assert_eq!(channel_from(0), Channel::Control);
        assert_eq!(channel_to(channel_from(7)), 7);
    }
}
