//! The one run loop of both roles: a session's sockets, its held-back input and its buffers,
//! and the three things every blocking driver does with them — drain the session (writing
//! transmits, carrying out IO requests), and wait for the next socket event or deadline. The
//! client and the server use it through the core's [`Session`] trait; what they add is only
//! what they do with events.

use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use std::os::fd::BorrowedFd;

use ftps_kit::input::{InputBacklog, SessionInput};
use ftps_kit::limits::DataPermits;
use ftps_proto::io::{Channel, Instant, IoErrorKind, IoRequest, Output, Session};

use crate::net::{Readiness, Sockets, io_error_kind};

/// Socket read and session transmit buffer size.
const IO_BUFFER: usize = 64 * 1024;

/// What a drain stopped at.
pub(crate) enum Drained<E> {
    /// An event for the application.
    Event(E),
    /// Nothing more until input or the deadline.
    Wait(Option<Instant>),
}

/// One session's sockets, input bookkeeping and buffers.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) sockets: Sockets,
    input: InputBacklog,
    out: Vec<u8>,
    recv: Vec<u8>,
    epoch: std::time::Instant,
    /// TCP connect timeout (control and data connections the session asks for).
    connect_timeout: Duration,
    /// How long one transmit may wait for a full socket to drain.
    write_timeout: Duration,
    /// The ports data listeners use (`None`: any free port).
    passive_ports: Option<RangeInclusive<u16>>,
    /// The server's places for data connections this session holds.
    data_permits: DataPermits,
}

impl Link {
    pub(crate) fn new(
        sockets: Sockets,
        connect_timeout: Duration,
        write_timeout: Duration,
        passive_ports: Option<RangeInclusive<u16>>,
    ) -> Self {
        Self {
            sockets,
            input: InputBacklog::new(),
            out: vec![0; IO_BUFFER],
            recv: vec![0; IO_BUFFER],
            epoch: std::time::Instant::now(),
            connect_timeout,
            write_timeout,
            passive_ports,
            data_permits: DataPermits::unlimited(),
        }
    }

    /// Counts this session's data connections against a server's limit.
    pub(crate) fn limit_data(&mut self, permits: DataPermits) {
        self.data_permits = permits;
    }

    /// The session's clock: nanoseconds since this link was made.
    pub(crate) fn now(&self) -> Instant {
        let nanos = self.epoch.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Drains `session` until it has an event or waits: transmits are written (a blocking
    /// driver writes them whole, so it never reports a channel blocked), IO requests carried
    /// out and their outcomes reported.
    pub(crate) fn drain<S: Session>(&mut self, session: &mut S) -> Drained<S::Event> {
        loop {
            let now = self.now();
            match session.poll_output(&mut self.out, now) {
                Output::Transmit { channel, len } => {
                    let deadline = std::time::Instant::now() + self.write_timeout;
                    if let Err(e) = self.sockets.write_all(channel, &self.out[..len], deadline) {
                        session.handle_io_error(channel, io_error_kind(&e), self.now());
                    }
                }
                Output::Io(request) => self.perform(session, request),
                Output::Event(event) => return Drained::Event(event),
                Output::Wait { deadline } => return Drained::Wait(deadline),
                // Outputs a newer core may add: nothing for this driver to do.
                _ => {}
            }
        }
    }

    /// Carries out one socket request and reports the outcome to the session.
    fn perform<S: Session>(&mut self, session: &mut S, request: IoRequest) {
        let data = match &request {
            IoRequest::Connect {
                channel: Channel::Data(data),
                ..
            }
            | IoRequest::Listen { data, .. } => Some(*data),
            _ => None,
        };
        if let Some(data) = data {
            if !self.data_permits.acquire(data) {
                // At the server's limit: the transfer fails (425) as if no port was free.
                let kind = IoErrorKind::AddrNotAvailable;
                session.handle_io_error(Channel::Data(data), kind, self.now());
                return;
            }
        }
        match request {
            IoRequest::Connect { channel, addr } => {
                let result = self.sockets.connect(channel, addr, self.connect_timeout);
                match result {
                    Ok(local) => session.handle_connected(channel, local, self.now()),
                    Err(e) => session.handle_io_error(channel, io_error_kind(&e), self.now()),
                }
            }
            IoRequest::Listen { data, ip } => {
                let ports = self.passive_ports.clone();
                match self.sockets.listen_in(data, listen_ip(ip), ports) {
                    Ok(local) => session.handle_listening(data, local, self.now()),
                    Err(e) => {
                        session.handle_io_error(Channel::Data(data), io_error_kind(&e), self.now());
                    }
                }
            }
            IoRequest::RefuseAccepted { data } => self.sockets.refuse_accepted(data),
            IoRequest::ShutdownWrite { channel } => self.sockets.shutdown_write(channel),
            IoRequest::Close { channel } => {
                self.sockets.close(channel);
                self.input.forget(channel);
                if let Channel::Data(data) = channel {
                    self.data_permits.release(data);
                }
            }
            _ => {}
        }
    }

    /// Feeds held-back input first; otherwise waits for the next socket event, the session's
    /// deadline (at most `max_wait`, e.g. a shutdown's grace period) or `wake` becoming
    /// readable (a shutdown), and reports it. `Ok(())` also when only the wait ran out or
    /// `wake` woke it.
    pub(crate) fn wait<S: Session>(
        &mut self,
        session: &mut S,
        deadline: Option<Instant>,
        max_wait: Option<Duration>,
        wake: Option<BorrowedFd<'_>>,
    ) -> io::Result<()> {
        let now = self.now();
        let Ok(progressed) = self.input.retry(&mut SessionInput::new(session, now));
        if progressed {
            return Ok(());
        }
        if deadline.is_some_and(|deadline| deadline <= now) {
            session.handle_timeout(now);
            return Ok(());
        }
        let until_deadline = deadline.map(|d| d.saturating_duration_since(now));
        let timeout = match (until_deadline, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let paused = self.input.paused();
        let readiness = match self.sockets.wait(timeout, &paused, wake, &mut self.recv) {
            Ok(readiness) => readiness,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        let now = self.now();
        match readiness {
            Readiness::Received { channel, len } => {
                let mut input = SessionInput::new(session, now);
                let Ok(()) = self.input.received(&mut input, channel, &self.recv[..len]);
            }
            Readiness::Eof { channel } => {
                self.input
                    .ended(&mut SessionInput::new(session, now), channel);
            }
            Readiness::Accepted { data, peer } => session.handle_accepted(data, peer, now),
            Readiness::Failed { channel, kind } => session.handle_io_error(channel, kind, now),
            Readiness::Woken => {}
            Readiness::TimedOut => {
                if deadline.is_some_and(|d| d <= now) {
                    session.handle_timeout(now);
                }
            }
        }
        Ok(())
    }
}

/// The session asks to listen on the control connection's local address; an IPv4-mapped IPv6
/// address is listened on as IPv4 (a dual-stack listener's control connection).
fn listen_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}
