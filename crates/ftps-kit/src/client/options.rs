//! What the application gives and gets from every client driver, blocking or async: the
//! connection options ([`ClientOptions`], turned into the core's session configuration here
//! once), the control-line [`Tracer`], the [`TransferSummary`] of a transfer and the [`Error`]
//! every driver call fails with. The drivers re-export these, so `ftps_std::Error` and
//! `ftps_tokio::Error` are one type and an application can switch drivers without touching
//! its error handling.

use std::net::SocketAddr;
use std::sync::Arc;

use ftps_proto::client::{
    ClientError, ClientSession, ClientSessionConfig, ClientTimeouts, ClientTlsMode, Completion,
    DataConnectionMode, DataProtection, ListingEntry, OpError, OpId, OpValue, TraceDirection,
    UsageError,
};
use ftps_proto::codec::listing::FtpTime;
use ftps_proto::codec::reply::Reply;
use ftps_proto::error::ErrorKind;
use ftps_proto::tls::{
    self, CertificateDer, ClientTlsOptions, PrivateKeyDer, ServerName, TlsError, TlsVersion, Trust,
};

use super::TraceFn;

/// Trusts the certificates in the PEM file at `path` (a private CA, or a self-signed server
/// certificate): [`Trust::Certificates`] with every certificate in it. The file is read and
/// parsed now, so a missing file or one without a certificate fails here rather than at
/// connect; the client then checks each certificate as a trust anchor.
///
/// Errors: [`Error::Io`] if the file cannot be read, [`Error::Tls`] with
/// [`TlsError::Pem`] or [`TlsError::NoCertificates`] if it holds no certificate.
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

    /// The control port: the one given, or the TLS mode's default (21, implicit 990).
    pub fn control_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls_mode.default_port())
    }

    /// The session configuration for a server at `peer` (the host already resolved by the
    /// driver, blocking or not), and the tracer to hand the control lines to. The TLS config
    /// is built here (trust, client certificate, versions); the session derives the
    /// per-control-connection clone (resumption store, ALPN `ftp`, no early data) from it.
    pub fn into_session_config(
        self,
        peer: SocketAddr,
    ) -> Result<(ClientSessionConfig, Option<Tracer>), Error> {
        let server_name = ServerName::try_from(self.host.clone())
            .map_err(|_| Error::InvalidHostName(self.host.clone()))?;
        let tls_config = tls::client_config_from_options(&ClientTlsOptions {
            trust: self.trust,
            client_certificate: self.client_certificate,
            max_version: self.max_tls_version,
        })?;
        let mut config = ClientSessionConfig::new(peer, server_name, Arc::new(tls_config));
        config.tls_mode = self.tls_mode;
        config.data_mode = self.data_mode;
        config.data_protection = self.data_protection;
        config.trust_pasv_address = self.trust_pasv_address;
        config.extended_data_commands = self.extended_data_commands;
        config.timeouts = self.timeouts;
        config.trace_control = self.trace.is_some();
        Ok((config, self.trace))
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

    /// The callback, for an [`OpTracker`](super::OpTracker).
    pub fn into_inner(self) -> Box<TraceFn> {
        self.0
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

/// Everything a client driver's call can fail with. Each variant names its cause; a refused
/// operation carries the server's reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local I/O error (reading an upload source, writing a download sink, polling).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The host name resolved to no address.
    #[error("the host name resolved to no address")]
    NoAddress,
    /// The host is neither a DNS name nor an IP address usable for certificate checks.
    #[error("invalid host name {0:?}")]
    InvalidHostName(String),
    /// The TLS configuration was refused (including trust anchors, client certificates and
    /// keys that could not be parsed or used).
    #[error("TLS configuration: {0}")]
    Tls(#[from] TlsError),
    /// The operation failed; the session goes on (a 4yz/5yz reply is [`OpError::Rejected`]).
    #[error("{0}")]
    Operation(OpError),
    /// The session ended (`None`: an orderly end, e.g. after QUIT).
    #[error("the session ended{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Closed(Option<ClientError>),
    /// The API was misused (e.g. CR/LF inside a path).
    #[error("usage: {0}")]
    Usage(#[from] UsageError),
    /// A positive reply whose text could not be understood (SIZE, MDTM, PWD).
    #[error("could not understand the reply {}", .0.code)]
    UnparsableReply(Reply),
}

impl Error {
    /// The stable category of this error, from the core's one table ([`ErrorKind`]); a local
    /// I/O error (a file, DNS, polling) is [`ErrorKind::Io`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io(_) | Self::NoAddress => ErrorKind::Io,
            Self::InvalidHostName(_) => ErrorKind::Usage,
            Self::Tls(error) => error.kind(),
            Self::Operation(error) => error.kind(),
            Self::Closed(Some(error)) => error.kind(),
            Self::Closed(None) => ErrorKind::Closed,
            Self::Usage(error) => error.kind(),
            Self::UnparsableReply(_) => ErrorKind::Protocol,
        }
    }

    /// True when the operation a call was running may still be running after this error (the
    /// application's source or sink failed, not the session): the driver aborts it so the next
    /// call does not queue behind it.
    pub fn leaves_operation_running(&self) -> bool {
        matches!(self, Self::Io(_) | Self::Usage(_))
    }

    /// The server's reply when an operation was refused.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Operation(OpError::Rejected { reply }) | Self::UnparsableReply(reply) => {
                Some(reply)
            }
            _ => None,
        }
    }
}

/// What a `PWD`/`MKD` completion names: the path in its reply.
pub fn path_value(done: Completion) -> Result<Vec<u8>, Error> {
    match done.value {
        OpValue::Path(path) => Ok(path),
        // The session fails the operation when the reply lacks the value; any other value
        // would be a core bug, reported with the reply.
        _ => Err(Error::UnparsableReply(done.reply)),
    }
}

/// What a `SIZE` completion says.
pub fn size_value(done: Completion) -> Result<u64, Error> {
    match done.value {
        OpValue::Size(size) => Ok(size),
        _ => Err(Error::UnparsableReply(done.reply)),
    }
}

/// What an `MDTM` completion says.
pub fn modified_value(done: Completion) -> Result<FtpTime, Error> {
    match done.value {
        OpValue::Modified(time) => Ok(time),
        _ => Err(Error::UnparsableReply(done.reply)),
    }
}

/// The summary of a completed transfer (listings included); `None` for other operations.
pub fn transfer_summary(done: &Completion) -> Option<TransferSummary> {
    match done.value {
        OpValue::Transfer { bytes, resumed } => Some(TransferSummary {
            bytes,
            resumed,
            reply: done.reply.clone(),
        }),
        _ => None,
    }
}

/// The names of an `NLST` listing.
pub fn names_of(entries: Vec<ListingEntry>) -> Vec<Vec<u8>> {
    entries
        .into_iter()
        .filter_map(|entry| match entry {
            ListingEntry::Name(name) => Some(name),
            _ => None,
        })
        .collect()
}

/// An upload's bytes on their way from the application's source to the session: read into
/// this buffer (by a blocking `Read` or an `AsyncRead`, the driver's business), then offered
/// to the session until it takes no more; at the source's end the upload is finished. A
/// session that already ended or dropped the operation (the server refused the upload: its
/// completion is on its way) ends the feed instead of failing the call.
#[derive(Debug)]
pub struct UploadFeed {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    source_ended: bool,
    done: bool,
}

/// What [`UploadFeed::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// The session took this many bytes.
    Taken(usize),
    /// The buffer is empty: read the source into [`UploadFeed::space`].
    NeedSource,
    /// The session takes nothing now; it says `Writable` when it wants more.
    Full,
    /// The upload is finished (or the session no longer wants it).
    Done,
}

impl UploadFeed {
    /// An empty feed reading the source `chunk` bytes at a time.
    pub fn new(chunk: usize) -> Self {
        Self {
            buf: vec![0; chunk.max(1)],
            start: 0,
            end: 0,
            source_ended: false,
            done: false,
        }
    }

    /// Where to read the source into (call only after [`Offered::NeedSource`]).
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// `len` bytes were read into [`space`](Self::space); 0 is the source's end.
    pub fn filled(&mut self, len: usize) {
        self.start = 0;
        self.end = len.min(self.buf.len());
        self.source_ended = len == 0;
    }

    /// True once the upload was finished or given up.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Hands `op` as much as the session takes now, telling `tracker` the progress; true
    /// when it wants more from the source first: read into [`space`](Self::space), report
    /// with [`filled`](Self::filled) and call again. False once the session takes no more
    /// for now (it says `Writable` when it does) or the upload is finished.
    pub fn feed(
        &mut self,
        session: &mut ClientSession,
        op: OpId,
        tracker: &mut super::OpTracker,
    ) -> Result<bool, UsageError> {
        loop {
            match self.offer(session, op)? {
                Offered::NeedSource => return Ok(true),
                Offered::Taken(n) => tracker.moved(n),
                Offered::Full | Offered::Done => return Ok(false),
            }
        }
    }

    /// Offers the buffered bytes to `op`, or finishes it at the source's end.
    pub fn offer(&mut self, session: &mut ClientSession, op: OpId) -> Result<Offered, UsageError> {
        if self.done {
            return Ok(Offered::Done);
        }
        if self.start == self.end {
            if !self.source_ended {
                return Ok(Offered::NeedSource);
            }
            self.done = true;
            return match session.finish_upload(op) {
                Ok(()) | Err(UsageError::Closed | UsageError::UnknownId) => Ok(Offered::Done),
                Err(e) => Err(e),
            };
        }
        match session.write_data(op, &self.buf[self.start..self.end]) {
            Ok(0) => Ok(Offered::Full),
            Ok(taken) => {
                self.start += taken;
                Ok(Offered::Taken(taken))
            }
            Err(UsageError::Closed | UsageError::UnknownId) => {
                self.done = true;
                Ok(Offered::Done)
            }
            Err(e) => Err(e),
        }
    }
}
