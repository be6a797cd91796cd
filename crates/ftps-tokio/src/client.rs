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
    Error, Offered, OpTracker, Progress, Routed, Tracer, TransferSummary, UploadFeed,
    modified_value, names_of, path_value, size_value, transfer_summary,
};
use ftps_kit::drive::Drained;
use ftps_proto::client::{
    ClientSession, ClientSessionConfig, Completion, DataProtection, ListingEntry, OpId,
};
use ftps_proto::codec::listing::FtpTime;
use ftps_proto::codec::reply::Reply;
use ftps_proto::tls::TlsInfo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::link::AsyncLink;

/// Download buffer size.
const IO_BUFFER: usize = 64 * 1024;
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
    /// Connected and ready for operations.
    Ready,
    /// The target operation completed.
    Done(Completion),
    /// A chunk of a download is ready for the caller ([`Job::Chunk`]).
    Chunk,
}

/// An async FTPS client on the tokio runtime it was connected in.
pub struct Client {
    session: ClientSession,
    /// The sockets, held-back input and buffers: the run loop shared with the server.
    link: AsyncLink,
    /// Downloaded bytes read from the session on their way to the sink (reused).
    download: Vec<u8>,
    /// Routes the session's events for the running operation; keeps TLS info, features and
    /// the trace (the shared driver kit's).
    tracker: OpTracker,
    progress: Option<Progress>,
    /// Payload bytes moved by the running transfer so far.
    moved: u64,
    last_transfer: Option<TransferSummary>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
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
            session,
            link,
            download: vec![0; IO_BUFFER],
            tracker: OpTracker::new(trace.map(Tracer::into_inner)),
            progress: None,
            moved: 0,
            last_transfer: None,
        };
        client.drive(None, Job::Control).await?;
        Ok(client)
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.session.peer_addr()
    }

    /// The control connection's TLS parameters (`None` in plaintext).
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tracker.tls_info()
    }

    /// The feature lines of the server's `FEAT` reply (after TLS).
    pub fn features(&self) -> &[Vec<u8>] {
        self.tracker.features()
    }

    /// What the most recent successful data transfer reported, listings included.
    pub fn last_transfer(&self) -> Option<&TransferSummary> {
        self.last_transfer.as_ref()
    }

    /// Sets (or clears) the progress callback for the following transfers.
    pub fn set_progress(&mut self, progress: Option<Progress>) {
        self.progress = progress;
    }

    /// Logs in (and sets up `PBSZ`/`PROT` under TLS).
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        let op = self
            .session
            .login(user.as_bytes(), password.as_bytes(), None)?;
        self.run(op, Job::Control).await.map(drop)
    }

    /// A directory listing, parsed: `MLSD` when the server offers it, `LIST` otherwise.
    pub async fn list(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        let op = self.session.list_entries(path.map(str::as_bytes))?;
        self.listing(op).await
    }

    /// A `LIST` listing (`ls -l` lines, parsed as well as they can be).
    pub async fn list_long(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        let op = self.session.list(path.map(str::as_bytes))?;
        self.listing(op).await
    }

    /// A `LIST` listing as the server sent it.
    pub async fn list_raw(&mut self, path: Option<&str>) -> Result<Vec<u8>, Error> {
        let op = self.session.list_raw(path.map(str::as_bytes))?;
        let mut raw = Vec::new();
        self.run(op, Job::Download(&mut raw)).await?;
        Ok(raw)
    }

    /// An `MLSD` listing (RFC 3659 facts).
    pub async fn mlsd(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        let op = self.session.mlsd(path.map(str::as_bytes))?;
        self.listing(op).await
    }

    /// The names in a directory (`NLST`).
    pub async fn names(&mut self, path: Option<&str>) -> Result<Vec<Vec<u8>>, Error> {
        let op = self.session.nlst(path.map(str::as_bytes))?;
        self.listing(op).await.map(names_of)
    }

    async fn listing(&mut self, op: OpId) -> Result<Vec<ListingEntry>, Error> {
        let mut entries = Vec::new();
        self.run(op, Job::Listing(&mut entries)).await?;
        Ok(entries)
    }

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
        let op = self.session.retrieve(path.as_bytes(), rest)?;
        self.run_transfer(op, Job::Download(sink)).await
    }

    /// Downloads `path` (from byte `offset` when it is not zero) as a stream of chunks:
    /// [`Download::chunk`] returns them in order. Dropping the [`Download`] before its end
    /// aborts the transfer.
    pub fn retrieve_chunks(&mut self, path: &str, offset: u64) -> Result<Download<'_>, Error> {
        let rest = (offset > 0).then_some(offset);
        let op = self.session.retrieve(path.as_bytes(), rest)?;
        self.tracker.start();
        self.moved = 0;
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
        let op = self.session.store(path.as_bytes())?;
        self.run_transfer(op, Job::Upload(source)).await
    }

    /// Appends everything `source` yields to `path` (`APPE`).
    pub async fn append<R>(&mut self, path: &str, source: &mut R) -> Result<TransferSummary, Error>
    where
        R: AsyncRead + Unpin + Send,
    {
        let op = self.session.append(path.as_bytes())?;
        self.run_transfer(op, Job::Upload(source)).await
    }

    /// Creates a directory; returns the server's name for it when the reply gives one.
    pub async fn mkdir(&mut self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        let op = self.session.mkd(path.as_bytes())?;
        Ok(path_value(self.run(op, Job::Control).await?).ok())
    }

    /// Removes a directory.
    pub async fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        let op = self.session.rmd(path.as_bytes())?;
        self.run(op, Job::Control).await.map(drop)
    }

    /// Deletes a file.
    pub async fn delete(&mut self, path: &str) -> Result<(), Error> {
        let op = self.session.dele(path.as_bytes())?;
        self.run(op, Job::Control).await.map(drop)
    }

    /// Renames `from` to `to` (`RNFR` + `RNTO`).
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let op = self.session.rename(from.as_bytes(), to.as_bytes())?;
        self.run(op, Job::Control).await.map(drop)
    }

    /// Changes the working directory.
    pub async fn cwd(&mut self, path: &str) -> Result<(), Error> {
        let op = self.session.cwd(path.as_bytes())?;
        self.run(op, Job::Control).await.map(drop)
    }

    /// The working directory (`PWD`).
    pub async fn pwd(&mut self) -> Result<Vec<u8>, Error> {
        let op = self.session.pwd()?;
        path_value(self.run(op, Job::Control).await?)
    }

    /// The size of a file in bytes (`SIZE`).
    pub async fn size(&mut self, path: &str) -> Result<u64, Error> {
        let op = self.session.size(path.as_bytes())?;
        size_value(self.run(op, Job::Control).await?)
    }

    /// The modification time of a file (`MDTM`, UTC).
    pub async fn mtime(&mut self, path: &str) -> Result<FtpTime, Error> {
        let op = self.session.mdtm(path.as_bytes())?;
        modified_value(self.run(op, Job::Control).await?)
    }

    /// Sends any command and returns its final reply (a 4yz/5yz reply is an error carrying it).
    pub async fn raw(&mut self, verb: &str, argument: Option<&str>) -> Result<Reply, Error> {
        let op = self
            .session
            .raw_command(verb.as_bytes(), argument.map(str::as_bytes))?;
        self.run(op, Job::Control).await.map(|done| done.reply)
    }

    /// Clears the control channel (`CCC`, RFC 4217 §6); data connections keep their
    /// protection.
    pub async fn clear_command_channel(&mut self) -> Result<(), Error> {
        let op = self.session.ccc()?;
        self.run(op, Job::Control).await.map(drop)
    }

    /// Switches the protection of the following data connections (`PBSZ 0`, then `PROT P` or
    /// `PROT C`; RFC 4217 §9). A refusal keeps the previous level.
    pub async fn set_data_protection(&mut self, level: DataProtection) -> Result<(), Error> {
        let op = self.session.set_data_protection(level)?;
        self.run(op, Job::Control).await.map(drop)
    }

    /// Says goodbye (`QUIT`) and closes the connection.
    pub async fn quit(mut self) -> Result<(), Error> {
        let op = self.session.quit()?;
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
        self.tracker.start();
        self.moved = 0;
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
            Stop::Done(done) => {
                if let Some(summary) = transfer_summary(&done) {
                    self.last_transfer = Some(summary);
                }
                Ok(done)
            }
            // Only the connect drive (no target) or a chunked download stops elsewhere.
            Stop::Ready | Stop::Chunk => Err(Error::Closed(None)),
        }
    }

    /// The future running `op` was dropped: abort it (a queued operation is dropped, a running
    /// transfer gets `ABOR` and loses its data connection) and push what the session has to
    /// send now out to the sockets without waiting. Its replies are read by the next call.
    fn abandon(&mut self, op: OpId) {
        self.link.forget_connect(&mut self.session);
        // Refused only for a control command already sent (its reply is read and ignored
        // later) or an operation that already ended.
        let _ = self.session.abort(op);
        while let Drained::Event(event) = self.link.drain(&mut self.session) {
            // The abandoned operation's own events (data, completion) are not routed to
            // anything; the tracker keeps the TLS info, features, trace and the end.
            let _ = self.tracker.route(event, None);
        }
    }

    /// Runs the session until `target` completes (or, with `None`, until the session is ready
    /// for operations), feeding the job's data.
    async fn drive(&mut self, target: Option<OpId>, mut job: Job<'_>) -> Result<Stop, Error> {
        if self.tracker.is_closed() {
            return Err(Error::Closed(None));
        }
        let mut upload = UploadFeed::new(UPLOAD_READ);
        loop {
            // Uploads: hand the session as much as it takes; it says `Writable` when it
            // wants more.
            if let (Job::Upload(source), Some(op)) = (&mut job, target) {
                loop {
                    match upload.offer(&mut self.session, op)? {
                        Offered::NeedSource => {
                            let n = source.read(upload.space()).await?;
                            upload.filled(n);
                        }
                        Offered::Taken(n) => self.moved_more(n),
                        Offered::Full | Offered::Done => break,
                    }
                }
            }

            let mut finished = None;
            let mut writable = false;
            let deadline = loop {
                let event = match self.link.drain(&mut self.session) {
                    Drained::Event(event) => event,
                    Drained::Wait(deadline) => break deadline,
                };
                match self.tracker.route(event, target) {
                    Routed::Readable => {
                        if let Some(op) = target {
                            if self.take_download(op, &mut job).await? {
                                return Ok(Stop::Chunk);
                            }
                        }
                    }
                    Routed::Listing(entry) => {
                        if let Job::Listing(entries) = &mut job {
                            entries.push(entry);
                        }
                    }
                    Routed::Writable => writable = true,
                    Routed::Ready => return Ok(Stop::Ready),
                    Routed::Completed(result) => finished = Some(result),
                    Routed::Closed(Ok(done)) => return Ok(Stop::Done(done)),
                    Routed::Closed(Err(error)) => return Err(Error::Closed(error)),
                    _ => {}
                }
            };
            if let Some(result) = finished {
                return result.map(Stop::Done).map_err(Error::Operation);
            }
            if writable && !upload.is_done() {
                continue; // the session takes more upload data now: no need to wait
            }
            if self.link.connect_requested(&mut self.session).await
                || self.link.catch_up(&mut self.session, deadline)
            {
                continue;
            }
            let wake_at = self.link.wake_at(deadline);
            self.link
                .wait(&mut self.session, wake_at, std::future::pending())
                .await;
        }
    }

    /// Moves the downloaded bytes waiting in the session to the job's sink; true when a chunk
    /// is ready for the caller.
    async fn take_download(&mut self, op: OpId, job: &mut Job<'_>) -> Result<bool, Error> {
        match job {
            Job::Download(sink) => loop {
                let n = self.session.read_data(op, &mut self.download)?;
                if n == 0 {
                    return Ok(false);
                }
                sink.write_all(&self.download[..n]).await?;
                self.moved_more(n);
            },
            Job::Chunk(chunk) => {
                while chunk.len() < CHUNK {
                    let room = (CHUNK - chunk.len()).min(self.download.len());
                    let n = self.session.read_data(op, &mut self.download[..room])?;
                    if n == 0 {
                        break;
                    }
                    chunk.extend_from_slice(&self.download[..n]);
                    self.moved_more(n);
                }
                Ok(!chunk.is_empty())
            }
            _ => Ok(false),
        }
    }

    fn moved_more(&mut self, n: usize) {
        self.moved += n as u64;
        if let Some(progress) = &mut self.progress {
            progress(self.moved);
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
            Ok(Stop::Done(done)) => {
                self.running.op = None;
                let summary = transfer_summary(&done);
                client.last_transfer.clone_from(&summary);
                self.summary = summary;
                Ok(None)
            }
            Ok(Stop::Ready) => {
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
