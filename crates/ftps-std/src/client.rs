//! The blocking FTPS client: owns the sockets, runs a [`ClientSession`] until each operation
//! completes, and gives the application plain Rust calls. Every protocol decision is the
//! session's; this file only moves bytes and events.

use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::sync::Arc;

use ftps_kit::client::{OpTracker, Routed, TraceFn};
use ftps_proto::client::{
    ClientSession, ClientSessionConfig, ClientTimeouts, ClientTlsMode, Completion,
    DataConnectionMode, DataProtection, ListingEntry, OpId, OpValue, TraceDirection, UsageError,
};
use ftps_proto::codec::listing::FtpTime;
use ftps_proto::codec::reply::Reply;
use ftps_proto::tls::{
    self, CertificateDer, ClientTlsOptions, PrivateKeyDer, ServerName, TlsInfo, TlsVersion, Trust,
};

use crate::Error;
use ftps_kit::drive::Drained;

use crate::link::Link;
use crate::net::Sockets;

/// Trusts the certificates in the PEM file at `path` (a private CA, or a self-signed server
/// certificate): [`Trust::Certificates`] with every certificate in it. The file is read and
/// parsed now, so a missing file or one without a certificate fails here rather than at
/// connect; [`Client::connect`] then checks each certificate as a trust anchor.
///
/// Errors: [`Error::Io`] if the file cannot be read, [`Error::Tls`] with
/// [`TlsError::Pem`](ftps_proto::tls::TlsError::Pem) or
/// [`TlsError::NoCertificates`](ftps_proto::tls::TlsError::NoCertificates) if it holds no
/// certificate.
pub fn trust_ca_file(path: impl AsRef<std::path::Path>) -> Result<Trust, Error> {
    let pem = std::fs::read(path)?;
    Ok(Trust::Certificates(tls::certificates_from_pem(&pem)?))
}

/// How to reach and talk to a server. Defaults: explicit FTPS with TLS required, `PROT P`,
/// passive mode, the `227` address ignored, certificates verified against Mozilla's roots.
#[derive(Debug)]
pub struct ClientOptions {
    /// Host name (checked against the certificate and sent as SNI) or IP address.
    pub host: String,
    /// Control port; `None` means 21, or 990 for implicit FTPS.
    pub port: Option<u16>,
    /// Explicit (default), implicit, or an explicit opt-in to plaintext.
    pub tls_mode: ClientTlsMode,
    /// Trust anchors for the server certificate (default [`Trust::WebpkiRoots`]; a PEM file:
    /// [`trust_ca_file`]).
    pub trust: Trust,
    /// A client certificate chain and its key, for servers that ask for one
    /// ([`tls::client_certificate_from_pem`] reads PEM bytes).
    pub client_certificate: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Passive (default) or active data connections.
    pub data_mode: DataConnectionMode,
    /// `PROT P` (default) or `PROT C`.
    pub data_protection: DataProtection,
    /// Connect to the address in `227` replies instead of the control peer's IP.
    pub trust_pasv_address: bool,
    /// `EPSV`/`EPRT` first (default); `false` uses `PASV`/`PORT` from the start.
    pub extended_data_commands: bool,
    /// Connect, reply and data-idle timeouts.
    pub timeouts: ClientTimeouts,
    /// The highest TLS version offered (default TLS 1.3; TLS 1.2 is always the minimum).
    pub max_tls_version: TlsVersion,
    /// Receives the control-connection dialogue from the first reply on (`None`, the default:
    /// no trace).
    pub trace: Option<Tracer>,
}

impl ClientOptions {
    /// Options for `host` with every default.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            tls_mode: ClientTlsMode::default(),
            trust: Trust::WebpkiRoots,
            client_certificate: None,
            data_mode: DataConnectionMode::default(),
            data_protection: DataProtection::default(),
            trust_pasv_address: false,
            extended_data_commands: true,
            timeouts: ClientTimeouts::default(),
            max_tls_version: TlsVersion::Tls13,
            trace: None,
        }
    }
}

/// Receives each line of the control-connection dialogue, in order, as the client handles it:
/// the commands sent (the argument of `PASS` and `ACCT` already replaced by `****` in the
/// protocol core, so the secret never reaches the callback) and the lines of every reply
/// received, without CRLF, before and under TLS alike.
pub struct Tracer(Box<TraceFn>);

impl Tracer {
    /// A tracer calling `trace` with each line.
    pub fn new(trace: impl FnMut(TraceDirection, &[u8]) + Send + 'static) -> Self {
        Self(Box::new(trace))
    }
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

/// What a finished transfer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSummary {
    /// Payload bytes moved.
    pub bytes: u64,
    /// Whether the data connection resumed the control connection's TLS session (`None` in
    /// clear).
    pub resumed: Option<bool>,
    /// The server's final reply.
    pub reply: Reply,
}

/// Called with the number of payload bytes moved so far in the current transfer.
pub type Progress = Box<dyn FnMut(u64) + Send>;

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
        let port = options
            .port
            .unwrap_or_else(|| options.tls_mode.default_port());
        let peer = (options.host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or(Error::NoAddress)?;
        let server_name = ServerName::try_from(options.host.clone())
            .map_err(|_| Error::InvalidHostName(options.host.clone()))?;
        // The base config (trust, client certificate, versions); the session derives the
        // per-control-connection clone (resumption store, ALPN `ftp`, no early data) from it.
        let tls_config = tls::client_config_from_options(&ClientTlsOptions {
            trust: options.trust,
            client_certificate: options.client_certificate,
            max_version: options.max_tls_version,
        })?;
        let trace = options.trace;
        let mut config = ClientSessionConfig::new(peer, server_name, Arc::new(tls_config));
        config.tls_mode = options.tls_mode;
        config.data_mode = options.data_mode;
        config.data_protection = options.data_protection;
        config.trust_pasv_address = options.trust_pasv_address;
        config.extended_data_commands = options.extended_data_commands;
        config.timeouts = options.timeouts;
        config.trace_control = trace.is_some();
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
            tracker: OpTracker::new(trace.map(|Tracer(trace)| trace)),
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
        Ok(entries
            .into_iter()
            .filter_map(|entry| match entry {
                ListingEntry::Name(name) => Some(name),
                _ => None,
            })
            .collect())
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
        let done = self.run(op, Job::Control)?;
        match done.value {
            OpValue::Path(path) => Ok(path),
            // The session fails the operation when the reply lacks the value; any other
            // value would be a core bug, reported with the reply.
            _ => Err(Error::UnparsableReply(done.reply)),
        }
    }

    /// The size of a file in bytes (`SIZE`).
    pub fn size(&mut self, path: &str) -> Result<u64, Error> {
        let op = self.session.size(path.as_bytes())?;
        let done = self.run(op, Job::Control)?;
        match done.value {
            OpValue::Size(size) => Ok(size),
            // The session fails the operation when the reply lacks the value; any other
            // value would be a core bug, reported with the reply.
            _ => Err(Error::UnparsableReply(done.reply)),
        }
    }

    /// The modification time of a file (`MDTM`, UTC).
    pub fn mtime(&mut self, path: &str) -> Result<FtpTime, Error> {
        let op = self.session.mdtm(path.as_bytes())?;
        let done = self.run(op, Job::Control)?;
        match done.value {
            OpValue::Modified(time) => Ok(time),
            // The session fails the operation when the reply lacks the value; any other
            // value would be a core bug, reported with the reply.
            _ => Err(Error::UnparsableReply(done.reply)),
        }
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
        let (bytes, resumed) = match done.value {
            OpValue::Transfer { bytes, resumed } => (bytes, resumed),
            _ => (0, None),
        };
        Ok(TransferSummary {
            bytes,
            resumed,
            reply: done.reply,
        })
    }

    fn run(&mut self, op: OpId, job: Job<'_>) -> Result<Completion, Error> {
        let done = self.drive(Some(op), job)?.ok_or(Error::Closed(None))?;
        if let OpValue::Transfer { bytes, resumed } = done.value {
            self.last_transfer = Some(TransferSummary {
                bytes,
                resumed,
                reply: done.reply.clone(),
            });
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
        let mut upload = Vec::new();
        let mut upload_done = false;
        let mut moved = 0u64;
        loop {
            // Uploads: hand the session as much as it takes; it says `Writable` when it
            // wants more.
            if let (Job::Upload(source), Some(op)) = (&mut job, target) {
                if !upload_done {
                    loop {
                        if upload.is_empty() {
                            upload.resize(IO_BUFFER, 0);
                            let n = source.read(&mut upload)?;
                            upload.truncate(n);
                            if n == 0 {
                                upload_done = true;
                                match self.session.finish_upload(op) {
                                    // The session ended (its `Closed` event says why), or the
                                    // server already refused the upload (its `Completed`
                                    // event is next in the drain).
                                    Err(UsageError::Closed | UsageError::UnknownId) | Ok(()) => {
                                        break;
                                    }
                                    Err(e) => return Err(e.into()),
                                }
                            }
                        }
                        let taken = match self.session.write_data(op, &upload) {
                            Ok(taken) => taken,
                            Err(UsageError::Closed | UsageError::UnknownId) => {
                                upload_done = true;
                                break;
                            }
                            Err(e) => return Err(e.into()),
                        };
                        if taken == 0 {
                            break;
                        }
                        upload.drain(..taken);
                        moved += taken as u64;
                        if let Some(progress) = &mut self.progress {
                            progress(moved);
                        }
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
            if writable && !upload_done {
                continue; // the session takes more upload data now: no need to wait
            }
            self.link.wait(&mut self.session, deadline, None, None)?;
        }
    }
}
