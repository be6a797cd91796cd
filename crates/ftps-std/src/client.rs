//! The blocking FTPS client: owns the sockets, runs a [`ClientSession`] until each operation
//! completes, and gives the application plain Rust calls. Every protocol decision is the
//! session's; this file only moves bytes and events.

use std::io::{Read, Write};
use std::net::ToSocketAddrs;

use ftps_kit::client::{
    ClientCore, ClientOptions, Ended, Error, Next, Round, Tracer, TransferSummary, UploadFeed,
    transfer_summary,
};
use ftps_proto::client::{ClientSession, ClientSessionConfig, Completion, ListingEntry, OpId};

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
#[derive(Debug)]
pub struct Client {
    /// The session and what the driver kit keeps about it.
    core: ClientCore,
    /// The sockets, held-back input and buffers: the run loop shared with the server.
    link: Link,
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
            core: ClientCore::new(session, trace),
            link,
        };
        client.drive(None, Job::Control)?;
        Ok(client)
    }

    ftps_kit::client_verbs!(sync);

    /// Downloads `path` into `sink`, starting at byte `offset` (`REST`) when it is not zero.
    pub fn retrieve(
        &mut self,
        path: &str,
        offset: u64,
        sink: &mut dyn Write,
    ) -> Result<TransferSummary, Error> {
        let rest = (offset > 0).then_some(offset);
        let op = self.core.session.retrieve(path.as_bytes(), rest)?;
        self.run_transfer(op, Job::Download(sink))
    }

    /// Uploads everything `source` yields to `path` (`STOR`).
    pub fn store(&mut self, path: &str, source: &mut dyn Read) -> Result<TransferSummary, Error> {
        let op = self.core.session.store(path.as_bytes())?;
        self.run_transfer(op, Job::Upload(source))
    }

    /// Appends everything `source` yields to `path` (`APPE`).
    pub fn append(&mut self, path: &str, source: &mut dyn Read) -> Result<TransferSummary, Error> {
        let op = self.core.session.append(path.as_bytes())?;
        self.run_transfer(op, Job::Upload(source))
    }

    /// Says goodbye (`QUIT`) and closes the connection.
    pub fn quit(mut self) -> Result<(), Error> {
        let op = self.core.session.quit()?;
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
                    let _ = self.core.session.abort(op);
                }
                return Err(error);
            }
        };
        self.core.completed(&done);
        Ok(done)
    }

    /// Runs the session until `target` completes (or, with `None`, until the session is ready
    /// for operations), feeding the job's data.
    fn drive(
        &mut self,
        target: Option<OpId>,
        mut job: Job<'_>,
    ) -> Result<Option<Completion>, Error> {
        self.core.begin()?;
        let mut upload = UploadFeed::new(IO_BUFFER);
        loop {
            // Uploads: hand the session as much as it takes; it says `Writable` when it
            // wants more.
            if let (Job::Upload(source), Some(op)) = (&mut job, target) {
                while upload.feed(&mut self.core.session, op, &mut self.core.tracker)? {
                    let n = source.read(upload.space())?;
                    upload.filled(n);
                }
            }

            let mut round = Round::default();
            let link = &mut self.link;
            let deadline = loop {
                match self
                    .core
                    .next(&mut round, target, |session| link.drain(session))
                {
                    Next::Wait(deadline) => break deadline,
                    Next::Readable(op) => {
                        if let Job::Download(sink) = &mut job {
                            loop {
                                let bytes = self.core.next_download(op, usize::MAX)?;
                                if bytes.is_empty() {
                                    break;
                                }
                                sink.write_all(bytes)?;
                            }
                        }
                    }
                    Next::End(end) => return end.map(Ended::completion),
                }
            };
            let listing = match &mut job {
                Job::Listing(entries) => Some(&mut **entries),
                _ => None,
            };
            if let Some(end) = round.end(listing) {
                return end.map(Ended::completion);
            }
            if round.writable() && !upload.is_done() {
                continue; // the session takes more upload data now: no need to wait
            }
            self.link
                .wait(&mut self.core.session, deadline, None, None)?;
        }
    }
}
