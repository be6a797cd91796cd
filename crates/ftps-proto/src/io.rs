//! Plain-data types shared by the client and server sessions: the caller's time, channel names,
//! the IO requests a session makes of its driver, and the one output type a driver drains.
//!
//! Everything here is `Copy` or small owned data so the C and Python bindings can mirror it
//! one to one.

use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

/// A point on the caller's monotonic clock, in nanoseconds since an epoch the caller picks
/// (process start, boot, …). The core never reads a clock: every input carries one of these,
/// and deadlines come back as one. A plain integer keeps the type `no_std` and trivial to pass
/// from C (`uint64_t`) or Python (`time.monotonic_ns()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The instant `nanos` nanoseconds after the caller's epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the caller's epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at the end of the representable range (about 584 years
    /// after the epoch) instead of overflowing: a deadline that far away never fires.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(nanos))
    }

    /// The later of `self` and `now`: how both sessions take the time of an input. A caller's
    /// clock is monotonic, but inputs from different threads may arrive slightly out of order;
    /// a session's time never goes back.
    #[must_use]
    pub fn advanced_to(self, now: Self) -> Self {
        if now > self { now } else { self }
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later (a caller's
    /// clock is monotonic, but inputs from different threads may arrive slightly out of order).
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Names one data connection of a session. Made by the session only; small and `Copy` so a
/// driver can key its sockets by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataId(u32);

impl DataId {
    /// Used by the sessions to number their data connections.
    pub(crate) const fn new(id: u32) -> Self {
        Self(id)
    }

    /// The number, for logs and bindings.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The id with this number (from [`get`](Self::get)), for bindings that pass ids as
    /// integers. Input for a data id the session does not know (any more) is ignored.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }
}

/// A byte stream of a session: its control connection or one of its data connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The control connection.
    Control,
    /// A data connection.
    Data(DataId),
}

/// Which channels the driver cannot write now (`handle_transmit_blocked`): the drain hands
/// out no bytes for them.
#[derive(Debug, Default)]
pub(crate) struct BlockedChannels(Vec<Channel>);

impl BlockedChannels {
    pub(crate) fn set(&mut self, channel: Channel, blocked: bool) {
        self.0.retain(|c| *c != channel);
        if blocked {
            self.0.push(channel);
        }
    }

    pub(crate) fn contains(&self, channel: Channel) -> bool {
        self.0.contains(&channel)
    }
}

/// Socket-level work a session asks of its driver. The driver reports the outcome through the
/// session's `handle_*` inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoRequest {
    /// Open a TCP connection to `addr` for `channel`.
    Connect {
        /// The channel the connection is for.
        channel: Channel,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Listen on `ip` (any port, or the driver's configured range) for one incoming data
    /// connection, report the bound address, then the accepted peer.
    Listen {
        /// The data connection the listener is for.
        data: DataId,
        /// The local address to listen on.
        ip: IpAddr,
    },
    /// The connection just accepted for `data` (reported with the session's
    /// `handle_accepted`) is refused — its peer is not the control connection's host (port
    /// theft), or the data connection already has its socket: close that connection only and
    /// keep the listener accepting. A data channel's listener lives until the channel's
    /// [`Close`](Self::Close).
    RefuseAccepted {
        /// The data connection whose accepted socket to drop.
        data: DataId,
    },
    /// Everything for `channel` has been handed out for transmission: after writing it, shut
    /// down the socket's write side (the peer sees end of stream).
    ShutdownWrite {
        /// The channel to half-close.
        channel: Channel,
    },
    /// Close `channel`'s socket (or listener); the session expects no more input from it.
    Close {
        /// The channel to close.
        channel: Channel,
    },
}

/// Why a socket operation failed, as reported by the driver through a session's
/// `handle_io_error` input. A small portable subset of `std::io::ErrorKind` (which is not
/// available without `std` and is too large for the bindings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoErrorKind {
    /// The peer refused the connection (nothing listening).
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// The connection was aborted locally.
    ConnectionAborted,
    /// The network or host is unreachable.
    Unreachable,
    /// The operating system's own timeout expired (a connect or a write).
    TimedOut,
    /// A local address could not be bound (listener for active mode).
    AddrNotAvailable,
    /// Any other failure.
    Other,
}

impl core::fmt::Display for IoErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::ConnectionRefused => "connection refused",
            Self::ConnectionReset => "connection reset",
            Self::ConnectionAborted => "connection aborted",
            Self::Unreachable => "network unreachable",
            Self::TimedOut => "timed out",
            Self::AddrNotAvailable => "address not available",
            Self::Other => "I/O error",
        })
    }
}

/// What a session's drain returns, one item per call.
///
/// Transmit bytes may be buffered by the driver: once handed out they belong to the driver,
/// which must send them on their channel in order and completely (or report the channel's
/// failure with `handle_io_error`). A driver that cannot write a channel now (a full socket
/// buffer) keeps the bytes, tells the session with `handle_transmit_blocked(channel)` — the
/// drain then hands out nothing more for that channel, so the control channel still gets its
/// bytes (ABOR, STAT) while a data socket is full — and calls
/// `handle_transmit_ready(channel)` once it wrote what it held.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Output<E> {
    /// `len` bytes were written at the start of the caller's buffer: send them, in order, on
    /// `channel`.
    Transmit {
        /// The channel to send on.
        channel: Channel,
        /// How many bytes of the caller's buffer to send.
        len: usize,
    },
    /// Socket-level work for the driver.
    Io(IoRequest),
    /// Something the application should know.
    Event(E),
    /// Drained: nothing more until new input, or until `deadline` (then call the session's
    /// timeout input). `None` means no timer is armed.
    Wait {
        /// When to wake the session up without new input.
        deadline: Option<Instant>,
    },
}

/// The one contract of both session roles: the same inputs with the same signatures and
/// meaning, and the same drain. A driver written against this trait drives a
/// [`ClientSession`](crate::client::ClientSession) and a
/// [`ServerSession`](crate::server::ServerSession) with one loop; the application's verbs
/// and answers stay on the concrete types.
///
/// Every input carries the caller's time; a session's time never goes back
/// ([`Instant::advanced_to`]). Input for a data channel the session does not know (any more)
/// is taken and ignored.
pub trait Session {
    /// What the drain reports to the application.
    type Event;

    /// A requested connection (`IoRequest::Connect`) is up, with its local address.
    fn handle_connected(&mut self, channel: Channel, local: SocketAddr, now: Instant);
    /// The listener for `data` (`IoRequest::Listen`) is bound to `addr`.
    fn handle_listening(&mut self, data: DataId, addr: SocketAddr, now: Instant);
    /// The listener for `data` accepted a connection from `peer`; a refused one comes back
    /// as `IoRequest::RefuseAccepted` (client: `Close`).
    fn handle_accepted(&mut self, data: DataId, peer: SocketAddr, now: Instant);
    /// Bytes received on `channel`; returns how many were taken (keep the rest, pause that
    /// socket, feed the rest after draining).
    fn handle_receive(&mut self, channel: Channel, bytes: &[u8], now: Instant) -> usize;
    /// End of stream on `channel` — only after every received byte of it was taken.
    fn handle_eof(&mut self, channel: Channel, now: Instant);
    /// A socket operation on `channel` failed.
    fn handle_io_error(&mut self, channel: Channel, kind: IoErrorKind, now: Instant);
    /// Writing bytes of a `Transmit` for `channel` failed (the peer reset the connection).
    /// Unlike [`handle_io_error`](Self::handle_io_error), the channel's receive side stays
    /// open: keep reading it and report its end as usual.
    fn handle_transmit_failed(&mut self, channel: Channel, kind: IoErrorKind, now: Instant);
    /// The deadline of the last `Output::Wait` passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The driver cannot write `channel` now and holds bytes for it.
    fn handle_transmit_blocked(&mut self, channel: Channel, now: Instant);
    /// The driver wrote what it held for `channel`.
    fn handle_transmit_ready(&mut self, channel: Channel, now: Instant);
    /// The next thing to do: call until `Output::Wait`.
    fn poll_output(&mut self, buf: &mut [u8], now: Instant) -> Output<Self::Event>;
    /// True once the session ended (its `Closed` event may still be pending in the drain).
    fn is_closed(&self) -> bool;
}

/// Implements [`Session`] for a session type by delegating to its inherent methods of the
/// same names (one signature per input, checked here by the compiler for both roles).
macro_rules! impl_session {
    ($session:ty, $event:ty) => {
        impl $crate::io::Session for $session {
            type Event = $event;

            fn handle_connected(
                &mut self,
                channel: $crate::io::Channel,
                local: core::net::SocketAddr,
                now: $crate::io::Instant,
            ) {
                <$session>::handle_connected(self, channel, local, now)
            }
            fn handle_listening(
                &mut self,
                data: $crate::io::DataId,
                addr: core::net::SocketAddr,
                now: $crate::io::Instant,
            ) {
                <$session>::handle_listening(self, data, addr, now)
            }
            fn handle_accepted(
                &mut self,
                data: $crate::io::DataId,
                peer: core::net::SocketAddr,
                now: $crate::io::Instant,
            ) {
                <$session>::handle_accepted(self, data, peer, now)
            }
            fn handle_receive(
                &mut self,
                channel: $crate::io::Channel,
                bytes: &[u8],
                now: $crate::io::Instant,
            ) -> usize {
                <$session>::handle_receive(self, channel, bytes, now)
            }
            fn handle_eof(&mut self, channel: $crate::io::Channel, now: $crate::io::Instant) {
                <$session>::handle_eof(self, channel, now)
            }
            fn handle_io_error(
                &mut self,
                channel: $crate::io::Channel,
                kind: $crate::io::IoErrorKind,
                now: $crate::io::Instant,
            ) {
                <$session>::handle_io_error(self, channel, kind, now)
            }
            fn handle_transmit_failed(
                &mut self,
                channel: $crate::io::Channel,
                kind: $crate::io::IoErrorKind,
                now: $crate::io::Instant,
            ) {
                <$session>::handle_transmit_failed(self, channel, kind, now)
            }
            fn handle_timeout(&mut self, now: $crate::io::Instant) {
                <$session>::handle_timeout(self, now)
            }
            fn handle_transmit_blocked(
                &mut self,
                channel: $crate::io::Channel,
                now: $crate::io::Instant,
            ) {
                <$session>::handle_transmit_blocked(self, channel, now)
            }
            fn handle_transmit_ready(
                &mut self,
                channel: $crate::io::Channel,
                now: $crate::io::Instant,
            ) {
                <$session>::handle_transmit_ready(self, channel, now)
            }
            fn poll_output(
                &mut self,
                buf: &mut [u8],
                now: $crate::io::Instant,
            ) -> $crate::io::Output<$event> {
                <$session>::poll_output(self, buf, now)
            }
            fn is_closed(&self) -> bool {
                <$session>::is_closed(self)
            }
        }
    };
}
pub(crate) use impl_session;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates_instead_of_overflowing() {
        let t = Instant::from_nanos(1_000);
        assert_eq!(
            t.saturating_add(Duration::from_nanos(500)).as_nanos(),
            1_500
        );
        assert_eq!(t.saturating_add(Duration::MAX).as_nanos(), u64::MAX);
        assert_eq!(
            Instant::from_nanos(3_000).saturating_duration_since(t),
            Duration::from_nanos(2_000)
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_nanos(3_000)),
            Duration::ZERO
        );
        assert!(t < Instant::from_nanos(1_001));
    }

    #[test]
    fn data_ids_are_plain_numbers() {
        let id = DataId::new(7);
        assert_eq!(id.get(), 7);
        assert_ne!(Channel::Data(id), Channel::Data(DataId::new(8)));
        assert_ne!(Channel::Data(id), Channel::Control);
    }
}
