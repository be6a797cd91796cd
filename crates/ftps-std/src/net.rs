//! The sockets of one session and the poll(2) wait over them. Nothing here knows FTP: the
//! session says what to open, close and send; this module only moves bytes.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use ftps_kit::drive::{SocketEvent, ack_now, bind_data_listener, io_error_kind, is_transient};
use ftps_proto::io::{Channel, DataId};
use rustix::event::{PollFd, PollFlags, Timespec};

/// A data channel is first a listener (active mode) and then a stream.
#[derive(Debug)]
enum DataSocket {
    Stream(TcpStream),
    Listener(TcpListener),
}

/// What ended a [`Sockets::wait`].
#[derive(Debug)]
pub(crate) enum Readiness {
    /// Something happened on a socket (bytes are in the caller's buffer).
    Socket(SocketEvent),
    /// Nothing to read after all.
    TimedOut,
}

/// All sockets of one session, keyed by channel.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    control: Option<TcpStream>,
    data: HashMap<DataId, DataSocket>,
    /// The listener a data connection was accepted on, kept until the channel's `Close` (the
    /// core's contract): a peer the session refuses (`RefuseAccepted`) is dropped and the
    /// listener polled again.
    accepted_from: HashMap<DataId, TcpListener>,
    /// Channels whose peer already ended: not polled again (their EOF was reported).
    ended: Vec<Channel>,
}

impl Sockets {
    pub(crate) fn connect(
        &mut self,
        channel: Channel,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<SocketAddr> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let local = stream.local_addr()?;
        match channel {
            Channel::Control => self.control = Some(stream),
            Channel::Data(id) => {
                self.data.insert(id, DataSocket::Stream(stream));
            }
        }
        self.ended.retain(|c| *c != channel);
        Ok(local)
    }

    /// Server side: a session over an accepted control connection.
    pub(crate) fn with_control(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(Self {
            control: Some(stream),
            ..Self::default()
        })
    }

    /// Listens for `data` on `ip`, on a port of `ports` (any free port when `None`).
    pub(crate) fn listen_in(
        &mut self,
        data: DataId,
        ip: std::net::IpAddr,
        ports: Option<std::ops::RangeInclusive<u16>>,
    ) -> io::Result<SocketAddr> {
        let listener = bind_data_listener(data, ip, ports)?;
        let local = listener.local_addr()?;
        self.data.insert(data, DataSocket::Listener(listener));
        Ok(local)
    }

    pub(crate) fn shutdown_write(&mut self, channel: Channel) {
        if let Some(stream) = self.stream(channel) {
            // The peer may already be gone; its EOF or error reaches the session anyway.
            let _ = stream.shutdown(Shutdown::Write);
        }
    }

    pub(crate) fn close(&mut self, channel: Channel) {
        match channel {
            Channel::Control => self.control = None,
            Channel::Data(id) => {
                self.data.remove(&id);
                self.accepted_from.remove(&id);
            }
        }
        self.ended.retain(|c| *c != channel);
    }

    /// The session refused the peer accepted for `data` (port theft): drop that connection
    /// and listen again.
    pub(crate) fn refuse_accepted(&mut self, data: DataId) {
        if let Some(listener) = self.accepted_from.remove(&data) {
            self.data.insert(data, DataSocket::Listener(listener));
        }
        self.ended.retain(|c| *c != Channel::Data(data));
    }

    fn stream(&self, channel: Channel) -> Option<&TcpStream> {
        match channel {
            Channel::Control => self.control.as_ref(),
            Channel::Data(id) => match self.data.get(&id) {
                Some(DataSocket::Stream(stream)) => Some(stream),
                _ => None,
            },
        }
    }

    /// Writes all of `bytes`, waiting for the socket to drain when it is full (a blocking
    /// driver: the session's own limits keep each transmit small), until `deadline`.
    pub(crate) fn write_all(
        &self,
        channel: Channel,
        mut bytes: &[u8],
        deadline: Instant,
    ) -> io::Result<()> {
        let Some(mut stream) = self.stream(channel) else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "no socket for channel",
            ));
        };
        while !bytes.is_empty() {
            match stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    let mut fds = [PollFd::new(stream, PollFlags::OUT)];
                    rustix::event::poll(&mut fds, Some(&timespec(left)))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` (forever when `None`) for socket events among the channels not
    /// `paused` (channels whose received bytes the session has not taken yet), or for `wake`
    /// to become readable. Returns whether `wake` woke it and every channel that is ready —
    /// data channels before the control channel (none: the wait ran out). Read each with
    /// [`read_ready`](Self::read_ready), in that order.
    ///
    /// Data first: a client that sends its data connection's TLS hello and then its transfer
    /// command (curl) has the session see the hello first, so the session can hold the `150`
    /// until that handshake, ticket included, is done. Every ready channel is served in each
    /// round, so neither side starves the other.
    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        paused: &dyn Fn(Channel) -> bool,
        wake: Option<BorrowedFd<'_>>,
    ) -> io::Result<(bool, Vec<Channel>)> {
        let mut channels = Vec::new();
        let mut fds = Vec::new();
        if let Some(wake) = &wake {
            fds.push(PollFd::from_borrowed_fd(*wake, PollFlags::IN));
        }
        let polled = |c: &Channel| !paused(*c) && !self.ended.contains(c);
        if let Some(control) = &self.control {
            if polled(&Channel::Control) {
                channels.push(Channel::Control);
                fds.push(PollFd::new(control, PollFlags::IN));
            }
        }
        for (id, socket) in &self.data {
            let channel = Channel::Data(*id);
            if polled(&channel) {
                channels.push(channel);
                fds.push(match socket {
                    DataSocket::Stream(stream) => PollFd::new(stream, PollFlags::IN),
                    DataSocket::Listener(listener) => PollFd::new(listener, PollFlags::IN),
                });
            }
        }
        if fds.is_empty() && timeout.is_none() {
            // Nothing could ever wake us: report it instead of sleeping forever.
            return Err(io::Error::other(
                "the session waits for input on no socket and set no deadline",
            ));
        }
        let ready = rustix::event::poll(&mut fds, timeout.map(timespec).as_ref())?;
        if ready == 0 {
            return Ok((false, Vec::new()));
        }
        let woken = wake.is_some() && !fds[0].revents().is_empty();
        let skip = usize::from(wake.is_some());
        let mut ready: Vec<Channel> = fds[skip..]
            .iter()
            .zip(&channels)
            .filter(|(fd, _)| !fd.revents().is_empty())
            .map(|(_, channel)| *channel)
            .collect();
        // The control channel was polled first: move it behind the data channels.
        if ready.first() == Some(&Channel::Control) {
            ready.rotate_left(1);
        }
        Ok((woken, ready))
    }

    /// Reads (or accepts) on a channel [`wait`](Self::wait) reported ready.
    pub(crate) fn read_ready(&mut self, channel: Channel, buf: &mut [u8]) -> Readiness {
        if let Channel::Data(id) = channel {
            if let Some(DataSocket::Listener(listener)) = self.data.get(&id) {
                return match listener.accept() {
                    Ok((stream, peer)) => {
                        if let Err(e) = stream.set_nonblocking(true) {
                            return Readiness::Socket(SocketEvent::Failed {
                                channel,
                                kind: io_error_kind(&e),
                            });
                        }
                        let _ = stream.set_nodelay(true);
                        if let Some(DataSocket::Listener(listener)) =
                            self.data.insert(id, DataSocket::Stream(stream))
                        {
                            self.accepted_from.insert(id, listener);
                        }
                        Readiness::Socket(SocketEvent::Accepted { data: id, peer })
                    }
                    Err(e) if is_transient(&e) => Readiness::TimedOut,
                    Err(e) => Readiness::Socket(SocketEvent::Failed {
                        channel,
                        kind: io_error_kind(&e),
                    }),
                };
            }
        }
        let Some(mut stream) = self.stream(channel) else {
            return Readiness::TimedOut;
        };
        match stream.read(buf) {
            Ok(0) => {
                self.ended.push(channel);
                Readiness::Socket(SocketEvent::Eof { channel })
            }
            Ok(len) => {
                if matches!(channel, Channel::Data(_)) {
                    ack_now(stream.as_fd());
                }
                Readiness::Socket(SocketEvent::Received { channel, len })
            }
            Err(e) if is_transient(&e) => Readiness::TimedOut,
            Err(e) => {
                self.ended.push(channel);
                Readiness::Socket(SocketEvent::Failed {
                    channel,
                    kind: io_error_kind(&e),
                })
            }
        }
    }
}

fn timespec(duration: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(duration.subsec_nanos()),
    }
}
