//! The one run loop of both async roles: a session's tokio sockets, the kit's [`Drive`] state,
//! and the steps every task takes with them — drain the session into the sockets, carry out
//! the connect it asked for, feed held-back input and fire its timer, and wait for the next
//! socket event, the session's deadline or whatever else the task waits for (a login verdict,
//! a shutdown). The client and the server use it through the core's [`Session`] trait; what
//! they add is only what they do with events.

use std::future::Future;
use std::ops::RangeInclusive;
use std::time::Duration;

use ftps_kit::drive::{Drained, Drive};
use ftps_kit::limits::DataPermits;
use ftps_proto::io::{Channel, Instant, IoErrorKind, Session};
use tokio::net::TcpStream;

use crate::sockets::{AsyncSockets, Woke};

/// One session's sockets and driver state.
#[derive(Debug)]
pub(crate) struct AsyncLink {
    pub(crate) sockets: AsyncSockets,
    drive: Drive,
    connect_timeout: Duration,
    /// A connect being carried out (its future may be dropped with a cancelled operation).
    connecting: Option<Channel>,
}

impl AsyncLink {
    pub(crate) fn new(
        control: Option<TcpStream>,
        passive_ports: Option<RangeInclusive<u16>>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            sockets: AsyncSockets::new(control, passive_ports),
            drive: Drive::new(),
            connect_timeout,
            connecting: None,
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
        self.drive.drain(session, &mut self.sockets)
    }

    /// Carries out a connect the session asked for and reports its outcome; false when none
    /// was asked for.
    pub(crate) async fn connect_requested<S: Session>(&mut self, session: &mut S) -> bool {
        let Some((channel, addr)) = self.sockets.take_connect() else {
            return false;
        };
        self.connecting = Some(channel);
        let result = self
            .sockets
            .connect(channel, addr, self.connect_timeout)
            .await;
        self.connecting = None;
        let now = self.drive.now();
        match result {
            Ok(local) => session.handle_connected(channel, local, now),
            Err(kind) => session.handle_io_error(channel, kind, now),
        }
        true
    }

    /// After a cancelled wait: a connect whose future was dropped is reported failed, so the
    /// session does not wait for it.
    pub(crate) fn forget_connect<S: Session>(&mut self, session: &mut S) {
        if let Some(channel) = self.connecting.take() {
            session.handle_io_error(channel, IoErrorKind::ConnectionAborted, self.drive.now());
        }
    }

    /// Feeds held-back input again or fires the session's timer when `deadline` passed; true
    /// when either happened (drain again before waiting).
    pub(crate) fn catch_up<S: Session>(
        &mut self,
        session: &mut S,
        deadline: Option<Instant>,
    ) -> bool {
        self.drive.retry_input(session) || self.drive.fire_timer(session, deadline)
    }

    /// When `deadline` is, on tokio's clock.
    pub(crate) fn wake_at(&self, deadline: Option<Instant>) -> Option<tokio::time::Instant> {
        self.drive
            .until(deadline)
            .map(|d| tokio::time::Instant::now() + d)
    }

    /// Waits for the first of: a socket event (handed to `session`), `wake_at`, `interrupt`.
    /// Cancel-safe: a socket's bytes are read only in the poll that reports them.
    pub(crate) async fn wait<S: Session>(
        &mut self,
        session: &mut S,
        wake_at: Option<tokio::time::Instant>,
        interrupt: impl Future<Output = ()>,
    ) {
        let drive = &self.drive;
        let paused = |channel: Channel| drive.is_paused(channel);
        let woke = tokio::select! {
            woke = self.sockets.next(&paused) => woke,
            () = sleep_until(wake_at) => return,
            () = interrupt => return,
        };
        match woke {
            Woke::Socket(event) => {
                self.drive.arrived(session, event, &self.sockets.received);
            }
            Woke::Ready { channel } => {
                let now = self.drive.now();
                session.handle_transmit_ready(channel, now);
            }
            Woke::Wrote => {}
        }
    }

    /// Writes what is still queued on closed channels, for at most `timeout` (the session
    /// ended; its last command or reply should reach the peer).
    pub(crate) async fn finish(&mut self, timeout: Duration) {
        self.sockets.finish(timeout).await;
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
