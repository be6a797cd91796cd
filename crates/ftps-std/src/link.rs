//! The one run loop of both roles: a session's sockets and the kit's [`Drive`] state, and the
//! things every blocking driver does with them — drain the session (writing transmits whole,
//! carrying out socket requests), and wait for the next socket event, deadline or wake-up.
//! The client and the server use it through the core's [`Session`] trait; what they add is
//! only what they do with events.

use std::io;
use std::ops::RangeInclusive;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use ftps_kit::drive::{Drained, Drive, Performed, Sent, SocketEvent, Transport, io_error_kind};
use ftps_kit::limits::DataPermits;
use ftps_proto::io::{Channel, Instant, IoRequest, Session};

use crate::net::{Readiness, Sockets};

/// Socket read buffer size.
const IO_BUFFER: usize = 64 * 1024;

/// The sockets with what a blocking transport needs to use them.
#[derive(Debug)]
pub(crate) struct Blocking {
    pub(crate) sockets: Sockets,
    /// TCP connect timeout (control and data connections the session asks for).
    connect_timeout: Duration,
    /// How long one transmit may wait for a full socket to drain.
    write_timeout: Duration,
    /// The ports data listeners use (`None`: any free port).
    passive_ports: Option<RangeInclusive<u16>>,
}

impl Transport for Blocking {
    fn transmit(&mut self, channel: Channel, bytes: &[u8]) -> Sent {
        let deadline = std::time::Instant::now() + self.write_timeout;
        match self.sockets.write_all(channel, bytes, deadline) {
            Ok(()) => Sent::Ok,
            Err(e) => Sent::Failed(io_error_kind(&e)),
        }
    }

    fn perform(&mut self, request: IoRequest) -> Performed {
        let outcome = match request {
            IoRequest::Connect { channel, addr } => self
                .sockets
                .connect(channel, addr, self.connect_timeout)
                .map(Performed::Connected),
            IoRequest::Listen { data, ip } => self
                .sockets
                .listen_in(data, ip, self.passive_ports.clone())
                .map(Performed::Listening),
            IoRequest::RefuseAccepted { data } => {
                self.sockets.refuse_accepted(data);
                Ok(Performed::Done)
            }
            IoRequest::ShutdownWrite { channel } => {
                self.sockets.shutdown_write(channel);
                Ok(Performed::Done)
            }
            IoRequest::Close { channel } => {
                self.sockets.close(channel);
                Ok(Performed::Done)
            }
            _ => Ok(Performed::Done),
        };
        outcome.unwrap_or_else(|e| Performed::Failed(io_error_kind(&e)))
    }
}

/// One session's sockets, driver state and read buffer.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) io: Blocking,
    drive: Drive,
    recv: Vec<u8>,
}

impl Link {
    pub(crate) fn new(
        sockets: Sockets,
        connect_timeout: Duration,
        write_timeout: Duration,
        passive_ports: Option<RangeInclusive<u16>>,
    ) -> Self {
        Self {
            io: Blocking {
                sockets,
                connect_timeout,
                write_timeout,
                passive_ports,
            },
            drive: Drive::new(),
            recv: vec![0; IO_BUFFER],
        }
    }

    /// Counts this session's data connections against a server's limit.
    pub(crate) fn limit_data(&mut self, permits: DataPermits) {
        self.drive.limit_data(permits);
    }

    /// The session's clock.
    pub(crate) fn now(&self) -> Instant {
        self.drive.now()
    }

    /// Drains `session` until it has an event or waits.
    pub(crate) fn drain<S: Session>(&mut self, session: &mut S) -> Drained<S::Event> {
        self.drive.drain(session, &mut self.io)
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
        if self.drive.retry_input(session) || self.drive.fire_timer(session, deadline) {
            return Ok(());
        }
        let timeout = match (self.drive.until(deadline), max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let drive = &self.drive;
        let paused = |channel| drive.is_paused(channel);
        let (woken, ready) = match self.io.sockets.wait(timeout, &paused, wake) {
            Ok(ready) => ready,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        if ready.is_empty() {
            if !woken {
                self.drive.fire_timer(session, deadline);
            }
            return Ok(());
        }
        let mut ready = std::collections::VecDeque::from(ready);
        while let Some(channel) = ready.pop_front() {
            match self.io.sockets.read_ready(channel, &mut self.recv) {
                Readiness::Socket(event) => {
                    if let SocketEvent::Accepted { data, .. } = event {
                        // What the new connection already carries (a TLS hello sent right
                        // after connecting) is read before this round's control command.
                        ready.push_front(Channel::Data(data));
                    }
                    self.drive.arrived(session, event, &self.recv);
                }
                // Nothing to read after all (a spurious wake-up, or the channel went away).
                Readiness::TimedOut => {}
            }
        }
        Ok(())
    }
}
