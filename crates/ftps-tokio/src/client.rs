//! The async FTPS client: owns the tokio sockets, runs a [`ClientSession`] until each operation
//! completes, and gives the application `async` calls with the same verbs as the blocking
//! `ftps_std::Client`. Every protocol decision is the session's; the options, errors, summaries
//! and the routing of the session's events are the shared driver kit's; this file only moves
//! bytes between the session, the sockets and the application's `AsyncRead`/`AsyncWrite`.
//!
//! # Cancellation
//!
//! Every call is cancel-safe in the sense an FTP user needs: dropping a call's future (a
//! `select!` that took another branch, a `timeout`, an aborted task) leaves the client usable.
//! A dropped transfer is aborted at once — the session queues `ABOR` (RFC 959 §4.1.3; under
//! TLS in-band, RFC 4217 §14), the data connection is closed, and the `ABOR` is written to the
//! socket before the drop returns when the socket takes it; its replies are read by the next
//! call, which then runs as usual. A dropped control command (`PWD`, `MKD`, ...) cannot be
//! taken back once sent: its reply is read and ignored by the next call.

use std::net::SocketAddr;

pub use ftps_kit::client::ClientOptions;
use ftps_kit::client::{
    ClientCore, Ended, Error, Next, Round, Tracer, TransferSummary, UploadFeed, transfer_summary,
};
use ftps_kit::drive::Drained;
use ftps_proto::client::{ClientSession, ClientSessionConfig, Completion, ListingEntry, OpId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::link::AsyncLink;

/// Upload read size: an async source such as `tokio::fs::File` hands each read to a blocking
/// thread, so fewer, larger reads (measured: 64 KiB reads cost twice the CPU per GiB of the
/// blocking client's).
const UPLOAD_READ: usize = 256 * 1024;
/// The most bytes one [`Download::chunk`] returns.
const CHUNK: usize = 256 * 1024;
/// How long the last command (`QUIT`) may take to leave after the session ended.
const FINAL_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// What the operation being driven does with its data.
enum Job<'a> {
    Control,
    Download(&'a mut (dyn AsyncWrite + Unpin + Send)),
    /// Downloaded bytes are returned to the caller a chunk at a time.
    Chunk(&'a mut Vec<u8>),
    Listing(&'a mut Vec<ListingEntry>),
    Upload(&'a mut (dyn AsyncRead + Unpin + Send)),
}

/// Where a drive stopped.
enum Stop {
    /// Connected, or the target operation completed.
    Ended(Ended),
    /// A chunk of a download is ready for the caller ([`Job::Chunk`]).
    Chunk,
}

/// An async FTPS client on the tokio runtime it was connected in.
#[derive(Debug)]
pub struct Client {
    /// The session and what the driver kit keeps about it.
    core: ClientCore,
    /// The sockets, held-back input and buffers: the run loop shared with the server.
    link: AsyncLink,
}

/// Aborts the operation it guards when dropped before [`Running::finished`]: the future of the
/// call that ran it was dropped.
struct Running<'a> {
    client: &'a mut Client,
    op: Option<OpId>,
}

impl Running<'_> {
    fn finished(mut self) {
        self.op = None;
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(op) = self.op {
            self.client.abandon(op);
        }
    }
}

impl Client {
    /// Connects, secures the control connection (explicit or implicit TLS) and reads the
    /// server's features. Nothing is sent in clear but `AUTH TLS` unless the options allow
    /// plaintext. Call it inside a tokio runtime.
    pub async fn connect(options: ClientOptions) -> Result<Self, Error> {
        let peer = tokio::net::lookup_host((options.host.as_str(), options.control_port()))
            .await?
            .next()
            .ok_or(Error::NoAddress)?;
        let (config, trace) = options.into_session_config(peer)?;
        Self::start(config, trace).await
    }

    /// Connects with a fully specified session configuration (its control-line events, if
    /// [`ClientSessionConfig::trace_control`] is on, are dropped: use
    /// [`with_session_config_traced`](Self::with_session_config_traced) to receive them).
    pub async fn with_session_config(config: ClientSessionConfig) -> Result<Self, Error> {
        Self::start(config, None).await
    }

    /// Connects with a fully specified session configuration, turning the control-line trace
    /// on and handing it to `trace`.
    pub async fn with_session_config_traced(
        mut config: ClientSessionConfig,
        trace: Tracer,
    ) -> Result<Self, Error> {
        config.trace_control = true;
        Self::start(config, Some(trace)).await
    }

    async fn start(config: ClientSessionConfig, trace: Option<Tracer>) -> Result<Self, Error> {
        let link = AsyncLink::new(None, None, config.timeouts.connect);
        let session = ClientSession::new(config, link.now());
        let mut client = Self {
            core: ClientCore::new(session, trace),
            link,
        };
        client.drive(None, Job::Control).await?;
        Ok(client)
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.core.session.peer_addr()
    }

    ftps_kit::client_verbs!(async);

    /// Downloads `path` into `sink`, starting at byte `offset` (`REST`) when it is not zero.
    /// Dropping the future aborts the transfer (see the module docs).
    pub async fn retrieve<W>(
        &mut self,
        path: &str,
        offset: u64,
        sink: &mut W,
    ) -> Result<TransferSummary, Error>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let rest = (offset > 0).then_some(offset);
        let op = self.core.session.retrieve(path.as_bytes(), rest)?;
        self.run_transfer(op, Job::Download(sink)).await
    }

    /// Downloads `path` (from byte `offset` when it is not zero) as a stream of chunks:
    /// [`Download::chunk`] returns them in order. Dropping the [`Download`] before its end
    /// aborts the transfer.
    pub fn retrieve_chunks(&mut self, path: &str, offset: u64) -> Result<Download<'_>, Error> {
        self.core.begin()?;
        let rest = (offset > 0).then_some(offset);
        let op = self.core.session.retrieve(path.as_bytes(), rest)?;
        Ok(Download {
            running: Running {
                client: self,
                op: Some(op),
            },
            summary: None,
        })
    }

    /// Uploads everything `source` yields to `path` (`STOR`). Dropping the future aborts the
    /// transfer; the server then discards (or, as its policy says, keeps) the partial file.
    pub async fn store<R>(&mut self, path: &str, source: &mut R) -> Result<TransferSummary, Error>
    where
        R: AsyncRead + Unpin + Send,
    {
        let op = self.core.session.store(path.as_bytes())?;
        self.run_transfer(op, Job::Upload(source)).await
    }

    /// Appends everything `source` yields to `path` (`APPE`).
    pub async fn append<R>(&mut self, path: &str, source: &mut R) -> Result<TransferSummary, Error>
    where
        R: AsyncRead + Unpin + Send,
    {
        let op = self.core.session.append(path.as_bytes())?;
        self.run_transfer(op, Job::Upload(source)).await
    }

    /// Says goodbye (`QUIT`) and closes the connection.
    pub async fn quit(mut self) -> Result<(), Error> {
        let op = self.core.session.quit()?;
        let result = self.run(op, Job::Control).await.map(drop);
        self.link.finish(FINAL_FLUSH).await;
        result
    }

    async fn run_transfer(&mut self, op: OpId, job: Job<'_>) -> Result<TransferSummary, Error> {
        let done = self.run(op, job).await?;
        // A transfer always completes with its summary; the fallback is never reached.
        Ok(transfer_summary(&done).unwrap_or(TransferSummary {
            bytes: 0,
            resumed: None,
            reply: done.reply,
        }))
    }

    /// Runs `op` to its completion; dropped before that, it aborts `op`.
    async fn run(&mut self, op: OpId, job: Job<'_>) -> Result<Completion, Error> {
        self.core.begin()?;
        let running = Running {
            client: self,
            op: Some(op),
        };
        let stopped = running.client.drive(Some(op), job).await;
        match &stopped {
            // A local source or sink failed mid-transfer: dropping the guard aborts `op`.
            Err(error) if error.leaves_operation_running() => drop(running),
            _ => running.finished(),
        }
        match stopped? {
            Stop::Ended(Ended::Completed(done)) => {
                self.core.completed(&done);
                Ok(done)
            }
            // Only the connect drive (no target) or a chunked download stops elsewhere.
            Stop::Ended(Ended::Ready) | Stop::Chunk => Err(Error::Closed(None)),
        }
    }

    /// The future running `op` was dropped: abort it (a queued operation is dropped, a running
    /// transfer gets `ABOR` and loses its data connection) and push what the session has to
    /// send now out to the sockets without waiting. Its replies are read by the next call.
    fn abandon(&mut self, op: OpId) {
        self.link.forget_connect(&mut self.core.session);
        // Refused only for a control command already sent (its reply is read and ignored
        // later) or an operation that already ended.
        let _ = self.core.session.abort(op);
        while let Drained::Event(event) = self.link.drain(&mut self.core.session) {
            // The abandoned operation's own events (data, completion) are not routed to
            // anything; the tracker keeps the TLS info, features, trace and the end.
            let _ = self.core.tracker.route(event, None);
        }
    }

    /// Runs the session until `target` completes (or, with `None`, until the session is ready
    /// for operations), feeding the job's data.
    async fn drive(&mut self, target: Option<OpId>, mut job: Job<'_>) -> Result<Stop, Error> {
        if self.core.tracker.is_closed() {
            return Err(Error::Closed(None));
        }
        let mut upload = UploadFeed::new(UPLOAD_READ);
        loop {
            // Uploads: hand the session as much as it takes; it says `Writable` when it
            // wants more.
            if let (Job::Upload(source), Some(op)) = (&mut job, target) {
                while upload.feed(&mut self.core.session, op, &mut self.core.tracker)? {
                    let n = source.read(upload.space()).await?;
                    upload.filled(n);
                }
            }

            let mut round = Round::default();
            let deadline = loop {
                let link = &mut self.link;
                match self
                    .core
                    .next(&mut round, target, |session| link.drain(session))
                {
                    Next::Wait(deadline) => break deadline,
                    Next::Readable(op) => {
                        if self.take_download(op, &mut job).await? {
                            return Ok(Stop::Chunk);
                        }
                    }
                    Next::End(end) => return end.map(Stop::Ended),
                }
            };
            let listing = match &mut job {
                Job::Listing(entries) => Some(&mut **entries),
                _ => None,
            };
            if let Some(end) = round.end(listing) {
                return end.map(Stop::Ended);
            }
            if round.writable() && !upload.is_done() {
                continue; // the session takes more upload data now: no need to wait
            }
            if self.link.connect_requested(&mut self.core.session).await
                || self.link.catch_up(&mut self.core.session, deadline)
            {
                continue;
            }
            let wake_at = self.link.wake_at(deadline);
            self.link
                .wait(&mut self.core.session, wake_at, std::future::pending())
                .await;
        }
    }

    /// Moves the downloaded bytes waiting in the session to the job's sink; true when a chunk
    /// is ready for the caller.
    async fn take_download(&mut self, op: OpId, job: &mut Job<'_>) -> Result<bool, Error> {
        match job {
            Job::Download(sink) => loop {
                let bytes = self.core.next_download(op, usize::MAX)?;
                if bytes.is_empty() {
                    return Ok(false);
                }
                sink.write_all(bytes).await?;
            },
            Job::Chunk(chunk) => {
                while chunk.len() < CHUNK {
                    let bytes = self.core.next_download(op, CHUNK - chunk.len())?;
                    if bytes.is_empty() {
                        break;
                    }
                    chunk.extend_from_slice(bytes);
                }
                Ok(!chunk.is_empty())
            }
            _ => Ok(false),
        }
    }
}

/// A download read a chunk at a time ([`Client::retrieve_chunks`]). Dropped before
/// [`chunk`](Self::chunk) returned `Ok(None)`, it aborts the transfer and the client goes on.
pub struct Download<'a> {
    running: Running<'a>,
    summary: Option<TransferSummary>,
}

impl std::fmt::Debug for Download<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("op", &self.running.op)
            .field("summary", &self.summary)
            .finish()
    }
}

impl Download<'_> {
    /// The next bytes of the file (at most 256 KiB, never empty), or `None` at its end (after
    /// the server's `226` and the data connection's orderly TLS close). Cancel-safe between
    /// chunks: dropping a pending call's future drops no bytes the session already handed
    /// out.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let Some(op) = self.running.op else {
            return Ok(None);
        };
        let client = &mut *self.running.client;
        // Bytes the session read before a previous call's future was dropped come first.
        let mut chunk = Vec::new();
        if client
            .take_download(op, &mut Job::Chunk(&mut chunk))
            .await?
        {
            return Ok(Some(chunk));
        }
        let stopped = client.drive(Some(op), Job::Chunk(&mut chunk)).await;
        match stopped {
            Ok(Stop::Chunk) => Ok(Some(chunk)),
            Ok(Stop::Ended(Ended::Completed(done))) => {
                self.running.op = None;
                let summary = transfer_summary(&done);
                client.core.last_transfer.clone_from(&summary);
                self.summary = summary;
                Ok(None)
            }
            Ok(Stop::Ended(Ended::Ready)) => {
                self.running.op = None;
                Err(Error::Closed(None))
            }
            Err(error) => {
                // The operation ended (or the session did): nothing is left to abort.
                self.running.op = None;
                Err(error)
            }
        }
    }

    /// What the finished download reported (after [`chunk`](Self::chunk) returned `None`).
    pub fn summary(&self) -> Option<&TransferSummary> {
        self.summary.as_ref()
    }
}
