//! The async FTPS server: listeners for explicit and implicit FTPS, one tokio task per
//! session, each running one [`ServerSession`] over its own sockets. Admission (sessions in
//! total and per address, data connections), the login pool, request routing, storage and
//! the log are the shared driver kit's, exactly as in the blocking server; this module only
//! accepts, spawns and waits. An idle session's task is parked on its sockets, its session's
//! next deadline, its login verdict and the shutdown signal: it costs no CPU.

pub use ftps_kit::server::api::*;

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use ftps_kit::drive::Drained;
use ftps_kit::limits::{NotAdmitted, SessionPermit};
use ftps_kit::server::{BlockingSection, ServerSetup, SessionApp};
use ftps_proto::server::{ServerEvent, ServerSession, Termination};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::link::AsyncLink;

/// How long a closed session's last reply may take to reach the client.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// Stops a running [`Server`], from any thread or task: it stops accepting, idle sessions are
/// closed with `421` at once, sessions with a running transfer when it ends or when the
/// shutdown grace ([`SessionLimits::shutdown_grace`]) runs out.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<Option<tokio::time::Instant>>>);

impl ShutdownHandle {
    /// Asks the server and its sessions to stop.
    pub fn shutdown(&self) {
        self.0.send_if_modified(|at| {
            let first = at.is_none();
            if first {
                *at = Some(tokio::time::Instant::now());
            }
            first
        });
    }
}

/// What every session task shares.
#[derive(Debug)]
struct Shared {
    setup: ServerSetup,
    shutdown: ShutdownHandle,
    /// The number of the last session accepted (sessions count from 1).
    sessions: AtomicU64,
    /// Where long storage calls run: `block_in_place` on a multi-threaded runtime (the
    /// worker's other sessions move to another thread meanwhile); in place on a
    /// current-thread runtime, which has no other worker to hand them to.
    blocking_off_worker: bool,
}

/// An async FTPS server on the tokio runtime it was bound in.
#[derive(Debug)]
pub struct Server {
    listeners: Vec<(TcpListener, ServerTlsMode)>,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds every listener of `options` and starts the login pool. Call it inside a tokio
    /// runtime (the listeners register with its reactor).
    pub fn bind(options: ServerOptions) -> io::Result<Self> {
        let mut setup = ServerSetup::bind(options)?;
        let listeners = std::mem::take(&mut setup.listeners)
            .into_iter()
            .map(|(listener, mode)| Ok((TcpListener::from_std(listener)?, mode)))
            .collect::<io::Result<Vec<_>>>()?;
        let (shutdown, _) = watch::channel(None);
        let blocking_off_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread);
        Ok(Self {
            listeners,
            shared: Arc::new(Shared {
                setup,
                shutdown: ShutdownHandle(Arc::new(shutdown)),
                sessions: AtomicU64::new(0),
                blocking_off_worker,
            }),
        })
    }

    /// The address of the first listener.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local_addrs()
            .first()
            .map(|(a, _)| *a)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Every listener's address and TLS mode.
    pub fn local_addrs(&self) -> Vec<(SocketAddr, ServerTlsMode)> {
        self.shared.setup.addrs.clone()
    }

    /// The first listener's address for `mode`.
    pub fn local_addr_for(&self, mode: ServerTlsMode) -> Option<SocketAddr> {
        self.shared.setup.local_addr_for(mode)
    }

    /// A handle that stops [`run`](Self::run) and the sessions.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shared.shutdown.clone()
    }

    /// Accepts connections and runs each session as its own task until shut down; then waits
    /// for the sessions to end (each ends within the shutdown grace and a final flush). A
    /// connection beyond the limits is answered `421` and closed.
    pub async fn run(self) -> io::Result<()> {
        let mut shutdown = self.shared.shutdown.0.subscribe();
        let mut tasks = JoinSet::new();
        loop {
            if shutdown.borrow_and_update().is_some() {
                break;
            }
            let accepted = tokio::select! {
                accepted = accept(&self.listeners) => accepted,
                _ = shutdown.changed() => continue,
                // Reap finished sessions so the set does not grow with every connection.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            };
            let (stream, peer, mode) = match accepted {
                Ok(accepted) => accepted,
                Err(e) if transient_accept_error(&e) => continue,
                Err(e) => return Err(e),
            };
            let shared = Arc::clone(&self.shared);
            let number = shared.sessions.fetch_add(1, Ordering::Relaxed) + 1;
            let admitted = shared.setup.backends.admission.admit(peer.ip());
            tasks.spawn(async move {
                let session = SessionTask::start(stream, mode, &shared, number, peer, admitted);
                match session {
                    Ok(task) => task.run().await,
                    Err(end) => end,
                }
            });
        }
        drop(self.listeners);
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// Errors of `accept` that concern one connection only (it went away, or descriptors ran out
/// for a moment): the server keeps accepting.
fn transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error() == Some(24) // EMFILE: the limits above should prevent it
}

/// The next connection on any listener.
async fn accept(
    listeners: &[(TcpListener, ServerTlsMode)],
) -> io::Result<(TcpStream, SocketAddr, ServerTlsMode)> {
    poll_fn(|cx| {
        for (listener, mode) in listeners {
            if let Poll::Ready(result) = listener.poll_accept(cx) {
                return Poll::Ready(result.map(|(stream, peer)| (stream, peer, *mode)));
            }
        }
        Poll::Pending
    })
    .await
}

/// One session's task state.
struct SessionTask {
    session: ServerSession,
    link: AsyncLink,
    app: SessionApp,
    shared: Arc<Shared>,
    /// Woken by the login pool when a verdict arrives.
    login: Arc<Notify>,
    /// Keeps the session's place among the admitted ones.
    _permit: Option<SessionPermit>,
    refused: Option<NotAdmitted>,
}

impl SessionTask {
    fn start(
        stream: TcpStream,
        mode: ServerTlsMode,
        shared: &Arc<Shared>,
        number: u64,
        peer: SocketAddr,
        admitted: Result<SessionPermit, NotAdmitted>,
    ) -> Result<Self, SessionEnd> {
        let local = stream.local_addr().map_err(SessionEnd::Io)?;
        let config = shared.setup.config_for(mode);
        let backends = shared.setup.backends.clone();
        let mut app = SessionApp::new(backends.clone(), number, peer);
        app.connected(mode == ServerTlsMode::Implicit);
        let login = Arc::new(Notify::new());
        let woken = Arc::clone(&login);
        app.set_waker(Arc::new(move || woken.notify_one()));
        if shared.blocking_off_worker {
            let section: BlockingSection = Arc::new(|job| tokio::task::block_in_place(job));
            app.set_blocking_section(section);
        }
        let ports = shared.setup.passive_ports.clone();
        let mut link = AsyncLink::new(Some(stream), ports, config.timeouts.data);
        let (session, permit, refused) = match admitted {
            Ok(permit) => {
                link.limit_data(permit.data_permits(backends.log.clone(), number, peer));
                let session = ServerSession::new(config, peer, local, link.now());
                (session, Some(permit), None)
            }
            Err(refused) => {
                let now = link.now();
                let session = ServerSession::refused(config, peer, local, now, refused.reason);
                (session, None, Some(refused))
            }
        };
        Ok(Self {
            session,
            link,
            app,
            shared: Arc::clone(shared),
            login,
            _permit: permit,
            refused,
        })
    }

    async fn run(mut self) -> SessionEnd {
        let end = self.serve().await;
        self.link.finish(FINAL_FLUSH).await;
        let reason = match &self.refused {
            Some(refused) => Some(refused.to_string()),
            None => end.reason(),
        };
        self.app.closed(reason);
        end
    }

    async fn serve(&mut self) -> SessionEnd {
        let mut shutdown = self.shared.shutdown.0.subscribe();
        let grace = self.shared.setup.backends.admission.limits().shutdown_grace;
        let mut terminated = false;
        loop {
            let deadline = match self.link.drain(&mut self.session) {
                Drained::Event(ServerEvent::Closed { error }) => return SessionEnd::Closed(error),
                Drained::Event(event) => {
                    self.app.on_event(&mut self.session, event);
                    continue;
                }
                Drained::Wait(deadline) => deadline,
            };
            if self.link.connect_requested(&mut self.session).await
                || self.app.pump(&mut self.session)
                || self.link.catch_up(&mut self.session, deadline)
            {
                continue;
            }
            let shutting_down = *shutdown.borrow_and_update();
            let grace_end = shutting_down.map(|at| at + grace);
            if let Some(grace_end) = grace_end {
                let over = tokio::time::Instant::now() >= grace_end;
                if !terminated && (!self.app.is_transferring() || over) {
                    terminated = true;
                    let now = self.link.now();
                    self.session.terminate(Termination::ShuttingDown, now);
                    continue;
                }
            }
            let wake_at = self
                .link
                .wake_at(deadline)
                .into_iter()
                .chain(grace_end.filter(|_| !terminated))
                .min();
            let login = &self.login;
            let interrupt = async {
                tokio::select! {
                    () = login.notified() => {}
                    _ = shutdown.changed(), if shutting_down.is_none() => {}
                }
            };
            self.link.wait(&mut self.session, wake_at, interrupt).await;
        }
    }
}
