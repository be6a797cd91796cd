//! One session's tokio sockets as the kit's [`Transport`]: transmits are queued per channel
//! (a full queue is reported blocked, so the session holds its output back instead of this
//! buffer growing), written when the socket is writable; shutdowns and closes wait for their
//! channel's queue to drain. [`AsyncSockets::next`] waits for the first socket event of any
//! channel — cancel-safe: bytes are read only in the poll that returns them.

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::os::fd::AsFd;
use std::task::{Context, Poll};
use std::time::Duration;

use ftps_kit::drive::{
    Performed, Sent, SocketEvent, Transport, ack_now, bind_data_listener, io_error_kind,
    is_transient,
};
use ftps_proto::io::{Channel, DataId, IoErrorKind, IoRequest};
use tokio::net::{TcpListener, TcpStream};

/// Bytes queued on one channel before it is reported blocked.
const QUEUE_HIGH: usize = 256 * 1024;
/// Socket read size.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes waiting for a socket, and what to do once they are written.
#[derive(Debug, Default)]
struct Queue {
    bytes: Vec<u8>,
    written: usize,
    shutdown: bool,
    blocked: bool,
}

impl Queue {
    fn pending(&self) -> &[u8] {
        &self.bytes[self.written..]
    }
}

/// A data channel is first a listener (passive mode) and then a stream.
#[derive(Debug)]
enum DataSocket {
    Stream(TcpStream),
    Listener(TcpListener),
}

/// What [`AsyncSockets::next`] saw.
#[derive(Debug)]
pub(crate) enum Woke {
    /// Something happened on a socket (bytes are in [`AsyncSockets::received`]).
    Socket(SocketEvent),
    /// `channel`'s queue drained after it was reported blocked.
    Ready { channel: Channel },
    /// Queued bytes were written (nothing for the session).
    Wrote,
}

/// All sockets of one session, keyed by channel.
#[derive(Debug)]
pub(crate) struct AsyncSockets {
    control: Option<TcpStream>,
    data: HashMap<DataId, DataSocket>,
    /// The listener a data connection was accepted on, kept until the channel's `Close` (a
    /// refused peer is dropped and the listener used again).
    accepted_from: HashMap<DataId, TcpListener>,
    queues: HashMap<Channel, Queue>,
    /// Closed channels whose queued bytes still go out before the socket is dropped.
    closing: Vec<(TcpStream, Queue)>,
    /// Channels whose peer ended (not read again).
    ended: Vec<Channel>,
    /// Blocked channels whose socket failed: reported ready again (the session must not wait
    /// for a queue that will never drain, e.g. to hand out a closing connection's last bytes,
    /// which then fail at once).
    unblocked: Vec<Channel>,
    /// Connects the session asked for, carried out by the session task.
    connects: Vec<(Channel, SocketAddr)>,
    passive_ports: Option<RangeInclusive<u16>>,
    /// Where [`SocketEvent::Received`] bytes are.
    pub(crate) received: Vec<u8>,
}

impl AsyncSockets {
    pub(crate) fn new(
        control: Option<TcpStream>,
        passive_ports: Option<RangeInclusive<u16>>,
    ) -> Self {
        if let Some(control) = &control {
            let _ = control.set_nodelay(true);
        }
        Self {
            control,
            data: HashMap::new(),
            accepted_from: HashMap::new(),
            queues: HashMap::new(),
            closing: Vec::new(),
            ended: Vec::new(),
            unblocked: Vec::new(),
            connects: Vec::new(),
            passive_ports,
            received: vec![0; READ_CHUNK],
        }
    }

    fn stream(&self, channel: Channel) -> Option<&TcpStream> {
        stream_of(self.control.as_ref(), &self.data, channel)
    }

    fn remove_stream(&mut self, channel: Channel) -> Option<TcpStream> {
        match channel {
            Channel::Control => self.control.take(),
            Channel::Data(id) => {
                self.accepted_from.remove(&id);
                match self.data.remove(&id) {
                    Some(DataSocket::Stream(stream)) => Some(stream),
                    _ => None,
                }
            }
        }
    }

    /// A connect the session asked for, to carry out now.
    pub(crate) fn take_connect(&mut self) -> Option<(Channel, SocketAddr)> {
        self.connects.pop()
    }

    /// Connects `channel` to `addr` within `timeout`; the local address on success.
    pub(crate) async fn connect(
        &mut self,
        channel: Channel,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<SocketAddr, IoErrorKind> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(io_error_kind(&e)),
            Err(_) => return Err(IoErrorKind::TimedOut),
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().map_err(|e| io_error_kind(&e))?;
        // A reconnected channel is read again.
        self.ended.retain(|c| *c != channel);
        if let Channel::Data(id) = channel {
            self.data.insert(id, DataSocket::Stream(stream));
        } else {
            self.control = Some(stream);
        }
        Ok(local)
    }

    /// Waits for the next socket event: readable channels not `paused`, listeners with a
    /// connection, writable sockets with queued bytes.
    pub(crate) async fn next(&mut self, paused: &(dyn Fn(Channel) -> bool + Sync)) -> Woke {
        poll_fn(|cx| self.poll_next(cx, paused)).await
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        paused: &(dyn Fn(Channel) -> bool + Sync),
    ) -> Poll<Woke> {
        if let Some(channel) = self.unblocked.pop() {
            return Poll::Ready(Woke::Ready { channel });
        }
        if let Poll::Ready(event) = self.poll_writes(cx) {
            return Poll::Ready(event);
        }
        let mut channels: Vec<Channel> = self.data.keys().map(|id| Channel::Data(*id)).collect();
        if self.control.is_some() {
            channels.push(Channel::Control);
        }
        for channel in channels {
            if paused(channel) || self.ended.contains(&channel) {
                continue;
            }
            if let Poll::Ready(event) = self.poll_channel(cx, channel) {
                return Poll::Ready(event);
            }
        }
        Poll::Pending
    }

    fn poll_channel(&mut self, cx: &mut Context<'_>, channel: Channel) -> Poll<Woke> {
        if let Channel::Data(id) = channel {
            if let Some(DataSocket::Listener(listener)) = self.data.get(&id) {
                return match listener.poll_accept(cx) {
                    Poll::Ready(Ok((stream, peer))) => {
                        let _ = stream.set_nodelay(true);
                        if let Some(DataSocket::Listener(listener)) =
                            self.data.insert(id, DataSocket::Stream(stream))
                        {
                            self.accepted_from.insert(id, listener);
                        }
                        Poll::Ready(Woke::Socket(SocketEvent::Accepted { data: id, peer }))
                    }
                    Poll::Ready(Err(e)) if is_transient(&e) => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Woke::Socket(SocketEvent::Failed {
                        channel,
                        kind: io_error_kind(&e),
                    })),
                    Poll::Pending => Poll::Pending,
                };
            }
        }
        let Some(stream) = stream_of(self.control.as_ref(), &self.data, channel) else {
            return Poll::Pending;
        };
        loop {
            match stream.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    self.ended.push(channel);
                    let kind = io_error_kind(&e);
                    return Poll::Ready(Woke::Socket(SocketEvent::Failed { channel, kind }));
                }
                Poll::Ready(Ok(())) => {}
            }
            match stream.try_read(&mut self.received) {
                Ok(0) => {
                    self.ended.push(channel);
                    return Poll::Ready(Woke::Socket(SocketEvent::Eof { channel }));
                }
                Ok(len) => {
                    if matches!(channel, Channel::Data(_)) {
                        ack_now(stream.as_fd());
                    }
                    return Poll::Ready(Woke::Socket(SocketEvent::Received { channel, len }));
                }
                // Readiness was stale: poll again (this registers the waker).
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    self.ended.push(channel);
                    let kind = io_error_kind(&e);
                    return Poll::Ready(Woke::Socket(SocketEvent::Failed { channel, kind }));
                }
            }
        }
    }

    /// Writes queued bytes to every writable socket.
    fn poll_writes(&mut self, cx: &mut Context<'_>) -> Poll<Woke> {
        let mut wrote = false;
        let channels: Vec<Channel> = self
            .queues
            .iter()
            .filter(|(_, q)| !q.pending().is_empty())
            .map(|(c, _)| *c)
            .collect();
        for channel in channels {
            // Taken out of the map while its socket (borrowed from `self`) is written.
            let Some(mut queue) = self.queues.remove(&channel) else {
                continue;
            };
            let Some(stream) = self.stream(channel) else {
                continue;
            };
            match flush(stream, &mut queue, cx) {
                Err(kind) => {
                    if queue.blocked {
                        self.unblocked.push(channel);
                    }
                    return Poll::Ready(Woke::Socket(SocketEvent::Failed { channel, kind }));
                }
                Ok(progress) => wrote |= progress,
            }
            let mut ready = false;
            if queue.pending().is_empty() {
                queue.bytes.clear();
                queue.written = 0;
                if queue.shutdown {
                    queue.shutdown = false;
                    shutdown_write(stream);
                }
                ready = std::mem::take(&mut queue.blocked);
            }
            self.queues.insert(channel, queue);
            if ready {
                return Poll::Ready(Woke::Ready { channel });
            }
        }
        let mut index = 0;
        while index < self.closing.len() {
            let (stream, queue) = &mut self.closing[index];
            let done = match flush(stream, queue, cx) {
                Err(_) => true,
                Ok(progress) => {
                    wrote |= progress;
                    queue.pending().is_empty()
                }
            };
            if done {
                // Dropping the stream closes it, after its last bytes.
                self.closing.swap_remove(index);
            } else {
                index += 1;
            }
        }
        if wrote {
            Poll::Ready(Woke::Wrote)
        } else {
            Poll::Pending
        }
    }

    /// Writes what is still queued on closed channels, for at most `timeout` (the session
    /// ended; its last reply should reach the client).
    pub(crate) async fn finish(&mut self, timeout: Duration) {
        let control = self.control.take();
        if let (Some(stream), Some(queue)) = (control, self.queues.remove(&Channel::Control)) {
            self.closing.push((stream, queue));
        }
        let _ = tokio::time::timeout(timeout, async {
            while !self.closing.is_empty() {
                self.next(&|_| true).await;
            }
        })
        .await;
    }
}

/// `channel`'s stream (a free function, so the other fields stay borrowable).
fn stream_of<'a>(
    control: Option<&'a TcpStream>,
    data: &'a HashMap<DataId, DataSocket>,
    channel: Channel,
) -> Option<&'a TcpStream> {
    match channel {
        Channel::Control => control,
        Channel::Data(id) => match data.get(&id) {
            Some(DataSocket::Stream(stream)) => Some(stream),
            _ => None,
        },
    }
}

/// Writes as much of `queue` as `stream` takes now; true when anything was written.
fn flush(stream: &TcpStream, queue: &mut Queue, cx: &mut Context<'_>) -> Result<bool, IoErrorKind> {
    let mut progress = false;
    while !queue.pending().is_empty() {
        match stream.poll_write_ready(cx) {
            Poll::Pending => break,
            Poll::Ready(Err(e)) => return Err(io_error_kind(&e)),
            Poll::Ready(Ok(())) => {}
        }
        match stream.try_write(queue.pending()) {
            Ok(0) => return Err(IoErrorKind::ConnectionAborted),
            Ok(n) => {
                queue.written += n;
                progress = true;
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(io_error_kind(&e)),
        }
    }
    Ok(progress)
}

fn shutdown_write(stream: &TcpStream) {
    // The peer may already be gone; its EOF or error reaches the session anyway.
    let _ = rustix::net::shutdown(stream, rustix::net::Shutdown::Write);
}

impl Transport for AsyncSockets {
    fn transmit(&mut self, channel: Channel, bytes: &[u8]) -> Sent {
        let Some(stream) = stream_of(self.control.as_ref(), &self.data, channel) else {
            return Sent::Failed(IoErrorKind::Other);
        };
        let queue = self.queues.entry(channel).or_default();
        let mut rest = bytes;
        if queue.pending().is_empty() {
            // Nothing queued: write at once what the socket takes.
            match stream.try_write(bytes) {
                Ok(n) => rest = &bytes[n..],
                Err(e) if is_transient(&e) => {}
                Err(e) => return Sent::Failed(io_error_kind(&e)),
            }
        }
        if rest.is_empty() {
            return Sent::Ok;
        }
        queue.bytes.extend_from_slice(rest);
        if queue.pending().len() >= QUEUE_HIGH {
            queue.blocked = true;
            return Sent::Blocked;
        }
        Sent::Ok
    }

    fn perform(&mut self, request: IoRequest) -> Performed {
        match request {
            IoRequest::Connect { channel, addr } => {
                self.connects.push((channel, addr));
                Performed::Later
            }
            IoRequest::Listen { data, ip } => {
                let bound = bind_data_listener(data, ip, self.passive_ports.clone())
                    .and_then(TcpListener::from_std)
                    .and_then(|listener| Ok((listener.local_addr()?, listener)));
                match bound {
                    Ok((local, listener)) => {
                        self.data.insert(data, DataSocket::Listener(listener));
                        Performed::Listening(local)
                    }
                    Err(e) => Performed::Failed(io_error_kind(&e)),
                }
            }
            IoRequest::RefuseAccepted { data } => {
                if let Some(listener) = self.accepted_from.remove(&data) {
                    self.data.insert(data, DataSocket::Listener(listener));
                }
                self.ended.retain(|c| *c != Channel::Data(data));
                Performed::Done
            }
            IoRequest::ShutdownWrite { channel } => {
                match self.queues.get_mut(&channel) {
                    Some(queue) if !queue.pending().is_empty() => queue.shutdown = true,
                    _ => {
                        if let Some(stream) = self.stream(channel) {
                            shutdown_write(stream);
                        }
                    }
                }
                Performed::Done
            }
            IoRequest::Close { channel } => {
                let queue = self.queues.remove(&channel);
                let stream = self.remove_stream(channel);
                if let (Some(stream), Some(queue)) = (stream, queue) {
                    if !queue.pending().is_empty() {
                        self.closing.push((stream, queue));
                    }
                }
                self.ended.retain(|c| *c != channel);
                Performed::Done
            }
            _ => Performed::Done,
        }
    }
}
