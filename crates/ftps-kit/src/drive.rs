//! The run-loop steps every driver takes with a session, whatever its sockets are: drain the
//! session's output into a [`Transport`] (transmits, socket requests and their outcomes,
//! data-connection places), feed what happened on the sockets ([`SocketEvent`]) through the input
//! backlog, and fire the session's timer. [`Drive`] holds the per-session state for that (the
//! transmit buffer, the [`InputBacklog`], the [`DataPermits`], the session clock); a blocking
//! driver's transport writes transmits at once, an async one queues them and reports a full
//! queue as blocked.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;

use ftps_proto::io::{Channel, DataId, Instant, IoErrorKind, IoRequest, Output, Session};

use crate::input::{InputBacklog, SessionInput};
use crate::limits::DataPermits;
use crate::ports::PortOrder;

/// Session transmit buffer size.
const TRANSMIT_BUFFER: usize = 64 * 1024;

/// What a drain stopped at.
#[derive(Debug)]
pub enum Drained<E> {
    /// An event for the application.
    Event(E),
    /// Nothing more until input or the deadline.
    Wait(Option<Instant>),
}

/// What became of a transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written, or queued with room for more.
    Ok,
    /// Queued, and the channel's queue is full: the session hands out nothing more for it
    /// until the driver reports it ready again.
    Blocked,
    /// The socket failed.
    Failed(IoErrorKind),
}

/// What became of a socket request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Performed {
    /// Nothing to report (a shutdown, a close, a refused peer dropped).
    Done,
    /// The channel is connected from `local`.
    Connected(SocketAddr),
    /// The data channel listens on `local`.
    Listening(SocketAddr),
    /// The request failed.
    Failed(IoErrorKind),
    /// The driver carries it out later and reports the outcome itself (an async connect).
    Later,
}

/// A driver's sockets, as the drain sees them.
pub trait Transport {
    /// Sends (or queues) `bytes` on `channel`.
    fn transmit(&mut self, channel: Channel, bytes: &[u8]) -> Sent;
    /// Carries out a socket request (or takes it on for later).
    fn perform(&mut self, request: IoRequest) -> Performed;
}

/// Something that happened on a driver's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketEvent {
    /// `len` bytes arrived on `channel` (in the driver's read buffer).
    Received {
        /// On this channel.
        channel: Channel,
        /// How many bytes.
        len: usize,
    },
    /// The peer ended `channel`'s direction.
    Eof {
        /// On this channel.
        channel: Channel,
    },
    /// A data listener accepted its connection.
    Accepted {
        /// For this data channel.
        data: DataId,
        /// From this peer.
        peer: SocketAddr,
    },
    /// `channel`'s socket failed.
    Failed {
        /// This channel's.
        channel: Channel,
        /// How.
        kind: IoErrorKind,
    },
}

/// One session's driver-side state that does not depend on the kind of socket.
#[derive(Debug)]
pub struct Drive {
    out: Vec<u8>,
    input: InputBacklog,
    permits: DataPermits,
    epoch: std::time::Instant,
}

impl Default for Drive {
    fn default() -> Self {
        Self::new()
    }
}

impl Drive {
    /// A fresh state; the session clock starts now.
    pub fn new() -> Self {
        Self {
            out: vec![0; TRANSMIT_BUFFER],
            input: InputBacklog::new(),
            permits: DataPermits::unlimited(),
            epoch: std::time::Instant::now(),
        }
    }

    /// Counts the session's data connections against a server's limit.
    pub fn limit_data(&mut self, permits: DataPermits) {
        self.permits = permits;
    }

    /// The session's clock: nanoseconds since this state was made.
    pub fn now(&self) -> Instant {
        let nanos = self.epoch.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Drains `session` until it has an event or waits: transmits go to `transport`, socket
    /// requests are carried out (a data channel first takes one of the server's places; none
    /// left fails it like a port that could not be bound) and their outcomes reported.
    pub fn drain<S: Session, T: Transport>(
        &mut self,
        session: &mut S,
        transport: &mut T,
    ) -> Drained<S::Event> {
        loop {
            let now = self.now();
            match session.poll_output(&mut self.out, now) {
                Output::Transmit { channel, len } => {
                    match transport.transmit(channel, &self.out[..len]) {
                        Sent::Ok => {}
                        Sent::Blocked => session.handle_transmit_blocked(channel, self.now()),
                        Sent::Failed(kind) => {
                            session.handle_transmit_failed(channel, kind, self.now())
                        }
                    }
                }
                Output::Io(request) => self.perform(session, transport, request),
                Output::Event(event) => return Drained::Event(event),
                Output::Wait { deadline } => return Drained::Wait(deadline),
                // Outputs a newer core may add: nothing for a driver to do.
                _ => {}
            }
        }
    }

    fn perform<S: Session, T: Transport>(
        &mut self,
        session: &mut S,
        transport: &mut T,
        request: IoRequest,
    ) {
        let channel = match request {
            IoRequest::Connect { channel, .. }
            | IoRequest::ShutdownWrite { channel }
            | IoRequest::Close { channel } => channel,
            IoRequest::Listen { data, .. } | IoRequest::RefuseAccepted { data } => {
                Channel::Data(data)
            }
            _ => return,
        };
        let opens = matches!(
            request,
            IoRequest::Connect { .. } | IoRequest::Listen { .. }
        );
        if let (true, Channel::Data(data)) = (opens, channel) {
            if !self.permits.acquire(data) {
                let kind = IoErrorKind::AddrNotAvailable;
                session.handle_io_error(channel, kind, self.now());
                return;
            }
        }
        if let IoRequest::Close { channel } = request {
            self.input.forget(channel);
            if let Channel::Data(data) = channel {
                self.permits.release(data);
            }
        }
        let now = self.now();
        match transport.perform(request) {
            Performed::Connected(local) => session.handle_connected(channel, local, now),
            Performed::Listening(local) => {
                if let Channel::Data(data) = channel {
                    session.handle_listening(data, local, now);
                }
            }
            Performed::Failed(kind) => session.handle_io_error(channel, kind, now),
            Performed::Done | Performed::Later => {}
        }
    }

    /// Hands what happened on a socket to `session` (bytes, the first `len` of `read`,
    /// through the input backlog).
    pub fn arrived<S: Session>(&mut self, session: &mut S, event: SocketEvent, read: &[u8]) {
        let now = self.now();
        match event {
            SocketEvent::Received { channel, len } => {
                let mut input = SessionInput::new(session, now);
                let bytes = read.get(..len).unwrap_or(read);
                let Ok(()) = self.input.received(&mut input, channel, bytes);
            }
            SocketEvent::Eof { channel } => {
                self.input
                    .ended(&mut SessionInput::new(session, now), channel);
            }
            SocketEvent::Accepted { data, peer } => session.handle_accepted(data, peer, now),
            SocketEvent::Failed { channel, kind } => session.handle_io_error(channel, kind, now),
        }
    }

    /// Feeds held-back input again; true when the session took any (drain before waiting).
    pub fn retry_input<S: Session>(&mut self, session: &mut S) -> bool {
        let now = self.now();
        let Ok(progressed) = self.input.retry(&mut SessionInput::new(session, now));
        progressed
    }

    /// Whether `channel` holds input back (its socket must not be read now).
    pub fn is_paused(&self, channel: Channel) -> bool {
        self.input.is_paused(channel)
    }

    /// Fires the session's timer when `deadline` has passed; true when it did.
    pub fn fire_timer<S: Session>(&self, session: &mut S, deadline: Option<Instant>) -> bool {
        let now = self.now();
        if deadline.is_some_and(|deadline| deadline <= now) {
            session.handle_timeout(now);
            return true;
        }
        false
    }

    /// How long from now until `deadline` (`None`: no deadline).
    pub fn until(&self, deadline: Option<Instant>) -> Option<std::time::Duration> {
        let now = self.now();
        deadline.map(|d| d.saturating_duration_since(now))
    }
}

/// Binds a data listener for `data` on `ip`, on a port of `ports` (any free port when `None`),
/// trying them in the [`PortOrder`] for `data`. An IPv4-mapped IPv6 address (a dual-stack
/// listener's control connection) is listened on as IPv4. The listener is non-blocking.
pub fn bind_data_listener(
    data: DataId,
    ip: IpAddr,
    ports: Option<RangeInclusive<u16>>,
) -> io::Result<TcpListener> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    let listener = match ports {
        None => TcpListener::bind((ip, 0))?,
        Some(range) => {
            let order = PortOrder::new(data, range)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let mut last_error = io::Error::from(io::ErrorKind::AddrInUse);
            let mut bound = None;
            for port in order {
                match TcpListener::bind((ip, port)) {
                    Ok(listener) => {
                        bound = Some(listener);
                        break;
                    }
                    Err(e) => last_error = e,
                }
            }
            bound.ok_or(last_error)?
        }
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The session's portable error kind for a socket error.
pub fn io_error_kind(e: &io::Error) -> IoErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => IoErrorKind::ConnectionRefused,
        io::ErrorKind::ConnectionReset => IoErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => {
            IoErrorKind::ConnectionAborted
        }
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            IoErrorKind::Unreachable
        }
        io::ErrorKind::TimedOut => IoErrorKind::TimedOut,
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse => IoErrorKind::AddrNotAvailable,
        _ => IoErrorKind::Other,
    }
}

/// Whether a socket error only means "not now" (try again when ready).
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Sends the ACK of what was just read from a data connection now instead of up to 40 ms
/// later (Linux: setting `TCP_QUICKACK` flushes a scheduled delayed ACK). A data connection's
/// TLS handshake is a lock-step exchange, and a peer that writes its last flight in two small
/// writes with Nagle on (GnuTLS writes ChangeCipherSpec and Finished separately; lftp leaves
/// Nagle on) holds the second write until the first is acknowledged: without this every TLS
/// 1.3 transfer with lftp stalled for the delayed-ACK timer. One setsockopt per read; a
/// failure changes nothing.
pub fn ack_now(socket: std::os::fd::BorrowedFd<'_>) {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::net::sockopt::set_tcp_quickack(socket, true);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}
