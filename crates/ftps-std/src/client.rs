//! The blocking FTPS client: owns the sockets, runs a [`ClientSession`] until each operation
//! completes, and gives the application plain Rust calls. Every protocol decision is the
//! session's; this file only moves bytes and events.

use std::io::{Read, Write};
use std::net::ToSocketAddrs;

use ftps_kit::client::{
    ClientOptions, Error, Offered, OpTracker, Progress, Routed, Tracer, TransferSummary,
    UploadFeed, modified_value, names_of, path_value, size_value, transfer_summary,
};
use ftps_proto::client::{
    ClientSession, ClientSessionConfig, Completion, DataProtection, ListingEntry, OpId, OpValue,
};
use ftps_proto::codec::listing::FtpTime;
use ftps_proto::codec::reply::Reply;
use ftps_proto::tls::TlsInfo;

use ftps_kit::drive::Drained;

use crate::link::Link;
use crate::net::Sockets;

/// What the operation being driven does with its data.
enum Job<'a> {
    Control,
    Download(&'a mut dyn Write),
    Listing(&'a mut Vec<ListingEntry>),
    Upload(&'a mut dyn Read),
}

/// A blocking FTPS client.
pub struct Client {
    session: ClientSession,
    /// The sockets, held-back input and buffers: the run loop shared with the server.
    link: Link,
    /// Downloaded bytes read from the session on their way to the sink (reused).
    download: Vec<u8>,
    /// Routes the session's events for the running operation; keeps TLS info, features and
    /// the trace (the shared driver kit's).
    tracker: OpTracker,
    progress: Option<Progress>,
    last_transfer: Option<TransferSummary>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

const IO_BUFFER: usize = 64 * 1024;

impl Client {
    /// Connects, secures the control connection (explicit or implicit TLS) and reads the
    /// server's features. Nothing is sent in clear but `AUTH TLS` unless the options allow
    /// plaintext.
    pub fn connect(options: ClientOptions) -> Result<Self, Error> {
        let peer = (options.host.as_str(), options.control_port())
            .to_socket_addrs()?
            .next()
            .ok_or(Error::NoAddress)?;
        let (config, trace) = options.into_session_config(peer)?;
        Self::start(config, trace)
    }

    /// Connects with a fully specified session configuration (its control-line events, if
    /// [`ClientSessionConfig::trace_control`] is on, are dropped: use
    /// [`with_session_config_traced`](Self::with_session_config_traced) to receive them).
    pub fn with_session_config(config: ClientSessionConfig) -> Result<Self, Error> {
        Self::start(config, None)
    }

    /// Connects with a fully specified session configuration, turning the control-line trace
    /// on and handing it to `trace`.
    pub fn with_session_config_traced(
        mut config: ClientSessionConfig,
        trace: Tracer,
    ) -> Result<Self, Error> {
        config.trace_control = true;
        Self::start(config, Some(trace))
    }

    fn start(config: ClientSessionConfig, trace: Option<Tracer>) -> Result<Self, Error> {
        let timeouts = config.timeouts;
        let link = Link::new(
            Sockets::default(),
            timeouts.connect,
            timeouts.data_idle,
            None,
        );
        let session = ClientSession::new(config, link.now());
        let mut client = Self {
            session,
            link,
            download: vec![0; IO_BUFFER],
            tracker: OpTracker::new(trace.map(Tracer::into_inner)),
            progress: None,
            last_transfer: None,
        };
        client.drive(None, Job::Control)?;
        Ok(client)
    }

    /// The control connection's TLS parameters (`None` in plaintext).
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tracker.tls_info()
    }

    /// The feature lines of the server's `FEAT` reply (after TLS).
    pub fn features(&self) -> &[Vec<u8>] {
        self.tracker.features()
    }

    /// What the most recent successful data transfer reported, listings included (whose
    /// entries the listing calls return instead of a summary).
    pub fn last_transfer(&self) -> Option<&TransferSummary> {
        self.last_transfer.as_ref()
    }

    /// Sets (or clears) the progress callback for the following transfers.
    pub fn set_progress(&mut self, progress: Option<Progress>) {
        self.progress = progress;
    }

    /// Logs in (and sets up `PBSZ`/`PROT` under TLS).
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        let op = self
            .session
            .login(user.as_bytes(), password.as_bytes(), None)?;
        self.run(op, Job::Control).map(drop)
    }

    /// A directory listing, parsed: `MLSD` when the server offers it, `LIST` otherwise (the
    /// session decides from FEAT).
    pub fn list(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        let op = self.session.list_entries(path.map(str::as_bytes))?;
        let mut entries = Vec::new();
        self.run(op, Job::Listing(&mut entries))?;
        Ok(entries)
    }

    /// A `LIST` listing (`ls -l` lines, parsed as well as they can be).
    pub fn list_long(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        let op = self.session.list(path.map(str::as_bytes))?;
        let mut entries = Vec::new();
        self.run(op, Job::Listing(&mut entries))?;
        Ok(entries)
    }

    /// A `LIST` listing as the server sent it.
    pub fn list_raw(&mut self, path: Option<&str>) -> Result<Vec<u8>, Error> {
        let op = self.session.list_raw(path.map(str::as_bytes))?;
        let mut raw = Vec::new();
        self.run(op, Job::Download(&mut raw))?;
        Ok(raw)
    }

    /// An `MLSD` listing (RFC 3659 facts).
    pub fn mlsd(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        let op = self.session.mlsd(path.map(str::as_bytes))?;
        let mut entries = Vec::new();
        self.run(op, Job::Listing(&mut entries))?;
        Ok(entries)
    }

    /// The names in a directory (`NLST`).
    pub fn names(&mut self, path: Option<&str>) -> Result<Vec<Vec<u8>>, Error> {
        let op = self.session.nlst(path.map(str::as_bytes))?;
        let mut entries = Vec::new();
        self.run(op, Job::Listing(&mut entries))?;
        Ok(names_of(entries))
    }

    /// Downloads `path` into `sink`, starting at byte `offset` (`REST`) when it is not zero.
    pub fn retrieve(
        &mut self,
        path: &str,
        offset: u64,
        sink: &mut dyn Write,
    ) -> Result<TransferSummary, Error> {
        let rest = (offset > 0).then_some(offset);
        let op = self.session.retrieve(path.as_bytes(), rest)?;
        self.run_transfer(op, Job::Download(sink))
    }

    /// Uploads everything `source` yields to `path` (`STOR`).
    pub fn store(&mut self, path: &str, source: &mut dyn Read) -> Result<TransferSummary, Error> {
        let op = self.session.store(path.as_bytes())?;
        self.run_transfer(op, Job::Upload(source))
    }

    /// Appends everything `source` yields to `path` (`APPE`).
    pub fn append(&mut self, path: &str, source: &mut dyn Read) -> Result<TransferSummary, Error> {
        let op = self.session.append(path.as_bytes())?;
        self.run_transfer(op, Job::Upload(source))
    }

    /// Creates a directory; returns the server's name for it when the reply gives one.
    pub fn mkdir(&mut self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        let op = self.session.mkd(path.as_bytes())?;
        Ok(match self.run(op, Job::Control)?.value {
            OpValue::Path(path) => Some(path),
            _ => None,
        })
    }

    /// Removes a directory.
    pub fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        let op = self.session.rmd(path.as_bytes())?;
        self.run(op, Job::Control).map(drop)
    }

    /// Deletes a file.
    pub fn delete(&mut self, path: &str) -> Result<(), Error> {
        let op = self.session.dele(path.as_bytes())?;
        self.run(op, Job::Control).map(drop)
    }

    /// Renames `from` to `to` (`RNFR` + `RNTO`).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let op = self.session.rename(from.as_bytes(), to.as_bytes())?;
        self.run(op, Job::Control).map(drop)
    }

    /// Changes the working directory.
    pub fn cwd(&mut self, path: &str) -> Result<(), Error> {
        let op = self.session.cwd(path.as_bytes())?;
        self.run(op, Job::Control).map(drop)
    }

    /// The working directory (`PWD`).
    pub fn pwd(&mut self) -> Result<Vec<u8>, Error> {
        let op = self.session.pwd()?;
        path_value(self.run(op, Job::Control)?)
    }

    /// The size of a file in bytes (`SIZE`).
    pub fn size(&mut self, path: &str) -> Result<u64, Error> {
        let op = self.session.size(path.as_bytes())?;
        size_value(self.run(op, Job::Control)?)
    }

    /// The modification time of a file (`MDTM`, UTC).
    pub fn mtime(&mut self, path: &str) -> Result<FtpTime, Error> {
        let op = self.session.mdtm(path.as_bytes())?;
        modified_value(self.run(op, Job::Control)?)
    }

    /// Sends any command and returns its final reply (a 4yz/5yz reply is an error carrying it).
    pub fn raw(&mut self, verb: &str, argument: Option<&str>) -> Result<Reply, Error> {
        let op = self
            .session
            .raw_command(verb.as_bytes(), argument.map(str::as_bytes))?;
        self.run(op, Job::Control).map(|done| done.reply)
    }

    /// Clears the control channel (`CCC`, RFC 4217 §6): after the server's `200` both sides end
    /// TLS on the control connection and the following commands travel in clear. Data
    /// connections keep their protection.
    pub fn clear_command_channel(&mut self) -> Result<(), Error> {
        let op = self.session.ccc()?;
        self.run(op, Job::Control).map(drop)
    }

    /// Switches the protection of the following data connections (`PBSZ 0`, then `PROT P` for
    /// [`DataProtection::Private`] or `PROT C` for [`DataProtection::Clear`]; RFC 4217 §9). A
    /// refusal is [`Error::Operation`] carrying the reply, and the previous level stays; on a
    /// control connection without TLS this is a usage error and nothing is sent.
    pub fn set_data_protection(&mut self, level: DataProtection) -> Result<(), Error> {
        let op = self.session.set_data_protection(level)?;
        self.run(op, Job::Control).map(drop)
    }

    /// Says goodbye (`QUIT`) and closes the connection.
    pub fn quit(mut self) -> Result<(), Error> {
        let op = self.session.quit()?;
        self.run(op, Job::Control).map(drop)
    }

    fn run_transfer(&mut self, op: OpId, job: Job<'_>) -> Result<TransferSummary, Error> {
        let done = self.run(op, job)?;
        // A transfer always completes with its summary; the fallback is never reached.
        Ok(transfer_summary(&done).unwrap_or(TransferSummary {
            bytes: 0,
            resumed: None,
            reply: done.reply,
        }))
    }

    fn run(&mut self, op: OpId, job: Job<'_>) -> Result<Completion, Error> {
        let done = match self.drive(Some(op), job) {
            Ok(done) => done.ok_or(Error::Closed(None))?,
            Err(error) => {
                if error.leaves_operation_running() {
                    // The application's source or sink failed: abort the transfer (ABOR, its
                    // data connection closed) so the next call does not queue behind it.
                    let _ = self.session.abort(op);
                }
                return Err(error);
            }
        };
        if let Some(summary) = transfer_summary(&done) {
            self.last_transfer = Some(summary);
        }
        Ok(done)
    }

    /// Runs the session until `target` completes (or, with `None`, until the session is ready
    /// for operations), feeding the job's data.
    fn drive(
        &mut self,
        target: Option<OpId>,
        mut job: Job<'_>,
    ) -> Result<Option<Completion>, Error> {
        if self.tracker.is_closed() {
            return Err(Error::Closed(None));
        }
        self.tracker.start();
        let mut upload = UploadFeed::new(IO_BUFFER);
        let mut moved = 0u64;
        loop {
            // Uploads: hand the session as much as it takes; it says `Writable` when it
            // wants more.
            if let (Job::Upload(source), Some(op)) = (&mut job, target) {
                loop {
                    match upload.offer(&mut self.session, op)? {
                        Offered::NeedSource => {
                            let n = source.read(upload.space())?;
                            upload.filled(n);
                        }
                        Offered::Taken(n) => {
                            moved += n as u64;
                            if let Some(progress) = &mut self.progress {
                                progress(moved);
                            }
                        }
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
                        if let (Job::Download(sink), Some(op)) = (&mut job, target) {
                            loop {
                                let n = self.session.read_data(op, &mut self.download)?;
                                if n == 0 {
                                    break;
                                }
                                sink.write_all(&self.download[..n])?;
                                moved += n as u64;
                                if let Some(progress) = &mut self.progress {
                                    progress(moved);
                                }
                            }
                        }
                    }
                    Routed::Listing(entry) => {
                        if let Job::Listing(entries) = &mut job {
                            entries.push(entry);
                        }
                    }
                    Routed::Writable => writable = true,
                    Routed::Ready => return Ok(None),
                    Routed::Completed(result) => finished = Some(result),
                    Routed::Closed(Ok(done)) => return Ok(Some(done)),
                    Routed::Closed(Err(error)) => return Err(Error::Closed(error)),
                    _ => {}
                }
            };
            if let Some(result) = finished {
                return result.map(Some).map_err(Error::Operation);
            }
            if writable && !upload.is_done() {
                continue; // the session takes more upload data now: no need to wait
            }
            self.link.wait(&mut self.session, deadline, None, None)?;
        }
    }
}
