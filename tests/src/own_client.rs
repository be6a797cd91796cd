//! This project's client set up for a running peer: the data connection setups the interop
//! tests iterate over, the options that reach an [`Endpoint`] and trust its test CA, and
//! [`Client`], the blocking or the async client as `FTPS_TEST_DRIVER` says.

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ftps_proto::client::ListingEntry;
use ftps_proto::codec::listing::FtpTime;
use ftps_proto::codec::reply::Reply;
use ftps_std::{
    ClientOptions, ClientTimeouts, ClientTlsMode, DataConnectionMode, DataProtection, Error,
    Progress, TlsInfo, TransferSummary,
};

use crate::peers::{self, Endpoint};

/// How the data connections are set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSetup {
    /// Passive (the client connects) or active (the server connects).
    pub mode: DataConnectionMode,
    /// EPSV/EPRT (true) or PASV/PORT (false).
    pub extended: bool,
}

impl DataSetup {
    /// The command that sets the data connection up: `EPSV`, `PASV`, `EPRT` or `PORT`.
    pub fn verb(self) -> &'static str {
        match (self.mode, self.extended) {
            (DataConnectionMode::Passive, true) => "EPSV",
            (DataConnectionMode::Passive, false) => "PASV",
            (DataConnectionMode::Active, true) => "EPRT",
            (DataConnectionMode::Active, false) => "PORT",
        }
    }
}

/// Passive, extended (RFC 2428): the client's default.
pub const EPSV: DataSetup = DataSetup {
    mode: DataConnectionMode::Passive,
    extended: true,
};
/// Passive, RFC 959.
pub const PASV: DataSetup = DataSetup {
    mode: DataConnectionMode::Passive,
    extended: false,
};
/// Active, extended (RFC 2428).
pub const EPRT: DataSetup = DataSetup {
    mode: DataConnectionMode::Active,
    extended: true,
};
/// Active, RFC 959.
pub const PORT: DataSetup = DataSetup {
    mode: DataConnectionMode::Active,
    extended: false,
};

/// Options that reach `endpoint` in its TLS mode, trust its test CA, set the data connections
/// up as `data` says, and bound every wait (10 s connect, 20 s reply and data idle).
pub fn client_options(endpoint: &Endpoint, data: DataSetup) -> ClientOptions {
    let mut options = ClientOptions::new(endpoint.addr.ip().to_string());
    options.port = Some(endpoint.addr.port());
    options.tls_mode = match endpoint.tls_mode {
        peers::TlsMode::Explicit => ClientTlsMode::Explicit,
        peers::TlsMode::Implicit => ClientTlsMode::Implicit,
    };
    options.trust = ftps_std::trust_ca_file(&endpoint.ca_cert_path).expect("the test CA");
    options.data_mode = data.mode;
    options.extended_data_commands = data.extended;
    options.timeouts = ClientTimeouts {
        connect: Duration::from_secs(10),
        reply: Duration::from_secs(20),
        data_idle: Duration::from_secs(20),
    };
    options
}

/// This project's client on the driver `FTPS_TEST_DRIVER` names: the blocking
/// `ftps_std::Client`, or the async `ftps_tokio::client::Client` run to completion call by call
/// on a runtime of its own. The methods are the blocking client's, so a suite written against
/// it runs unchanged against either driver.
pub enum Client {
    /// `ftps_std::Client`.
    Std(Box<ftps_std::Client>),
    /// `ftps_tokio::client::Client` and the runtime its calls run on.
    Tokio(Box<TokioClient>),
}

/// The async client with the runtime its calls are run on.
pub struct TokioClient {
    runtime: tokio::runtime::Runtime,
    client: ftps_tokio::client::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Std(client) => client.fmt(f),
            Self::Tokio(tokio) => tokio.client.fmt(f),
        }
    }
}

/// Runs the same call on either client (the async one to completion on its runtime).
macro_rules! on_either {
    ($self:expr, $client:ident => $call:expr) => {
        match $self {
            Client::Std($client) => $call,
            Client::Tokio(tokio) => {
                let TokioClient {
                    runtime,
                    client: $client,
                } = &mut **tokio;
                runtime.block_on(async { $call.await })
            }
        }
    };
}

impl Client {
    /// Connects with `options` on the driver `FTPS_TEST_DRIVER` names.
    pub fn connect(options: ClientOptions) -> Result<Self, Error> {
        Self::connect_on(crate::own_server::Driver::from_env(), options)
    }

    /// Connects with `options` on `driver`.
    pub fn connect_on(
        driver: crate::own_server::Driver,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        match driver {
            crate::own_server::Driver::Std => {
                ftps_std::Client::connect(options).map(|client| Self::Std(Box::new(client)))
            }
            crate::own_server::Driver::Tokio => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let client = runtime.block_on(ftps_tokio::client::Client::connect(options))?;
                Ok(Self::Tokio(Box::new(TokioClient { runtime, client })))
            }
        }
    }

    /// The control connection's TLS parameters.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        match self {
            Self::Std(client) => client.tls_info(),
            Self::Tokio(tokio) => tokio.client.tls_info(),
        }
    }

    /// The server's features.
    pub fn features(&self) -> &[Vec<u8>] {
        match self {
            Self::Std(client) => client.features(),
            Self::Tokio(tokio) => tokio.client.features(),
        }
    }

    /// The last transfer's summary.
    pub fn last_transfer(&self) -> Option<&TransferSummary> {
        match self {
            Self::Std(client) => client.last_transfer(),
            Self::Tokio(tokio) => tokio.client.last_transfer(),
        }
    }

    /// Sets the progress callback.
    pub fn set_progress(&mut self, progress: Option<Progress>) {
        match self {
            Self::Std(client) => client.set_progress(progress),
            Self::Tokio(tokio) => tokio.client.set_progress(progress),
        }
    }

    /// `login`.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        on_either!(self, client => client.login(user, password))
    }

    /// `list`.
    pub fn list(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        on_either!(self, client => client.list(path))
    }

    /// `list_long`.
    pub fn list_long(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        on_either!(self, client => client.list_long(path))
    }

    /// `list_raw`.
    pub fn list_raw(&mut self, path: Option<&str>) -> Result<Vec<u8>, Error> {
        on_either!(self, client => client.list_raw(path))
    }

    /// `mlsd`.
    pub fn mlsd(&mut self, path: Option<&str>) -> Result<Vec<ListingEntry>, Error> {
        on_either!(self, client => client.mlsd(path))
    }

    /// `names`.
    pub fn names(&mut self, path: Option<&str>) -> Result<Vec<Vec<u8>>, Error> {
        on_either!(self, client => client.names(path))
    }

    /// `retrieve` into a blocking sink (written from the async client's task as bytes come).
    pub fn retrieve(
        &mut self,
        path: &str,
        offset: u64,
        sink: &mut (dyn Write + Send),
    ) -> Result<TransferSummary, Error> {
        match self {
            Self::Std(client) => client.retrieve(path, offset, sink),
            Self::Tokio(tokio) => {
                let TokioClient { runtime, client } = &mut **tokio;
                runtime.block_on(client.retrieve(path, offset, &mut SyncSink(sink)))
            }
        }
    }

    /// `store` from a blocking source.
    pub fn store(
        &mut self,
        path: &str,
        source: &mut (dyn Read + Send),
    ) -> Result<TransferSummary, Error> {
        match self {
            Self::Std(client) => client.store(path, source),
            Self::Tokio(tokio) => {
                let TokioClient { runtime, client } = &mut **tokio;
                runtime.block_on(client.store(path, &mut SyncSource(source)))
            }
        }
    }

    /// `append` from a blocking source.
    pub fn append(
        &mut self,
        path: &str,
        source: &mut (dyn Read + Send),
    ) -> Result<TransferSummary, Error> {
        match self {
            Self::Std(client) => client.append(path, source),
            Self::Tokio(tokio) => {
                let TokioClient { runtime, client } = &mut **tokio;
                runtime.block_on(client.append(path, &mut SyncSource(source)))
            }
        }
    }

    /// `mkdir`.
    pub fn mkdir(&mut self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        on_either!(self, client => client.mkdir(path))
    }

    /// `rmdir`.
    pub fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        on_either!(self, client => client.rmdir(path))
    }

    /// `delete`.
    pub fn delete(&mut self, path: &str) -> Result<(), Error> {
        on_either!(self, client => client.delete(path))
    }

    /// `rename`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        on_either!(self, client => client.rename(from, to))
    }

    /// `cwd`.
    pub fn cwd(&mut self, path: &str) -> Result<(), Error> {
        on_either!(self, client => client.cwd(path))
    }

    /// `pwd`.
    pub fn pwd(&mut self) -> Result<Vec<u8>, Error> {
        on_either!(self, client => client.pwd())
    }

    /// `size`.
    pub fn size(&mut self, path: &str) -> Result<u64, Error> {
        on_either!(self, client => client.size(path))
    }

    /// `mtime`.
    pub fn mtime(&mut self, path: &str) -> Result<FtpTime, Error> {
        on_either!(self, client => client.mtime(path))
    }

    /// `raw`.
    pub fn raw(&mut self, verb: &str, argument: Option<&str>) -> Result<Reply, Error> {
        on_either!(self, client => client.raw(verb, argument))
    }

    /// `clear_command_channel`.
    pub fn clear_command_channel(&mut self) -> Result<(), Error> {
        on_either!(self, client => client.clear_command_channel())
    }

    /// `set_data_protection`.
    pub fn set_data_protection(&mut self, level: DataProtection) -> Result<(), Error> {
        on_either!(self, client => client.set_data_protection(level))
    }

    /// `quit`.
    pub fn quit(self) -> Result<(), Error> {
        match self {
            Self::Std(client) => (*client).quit(),
            Self::Tokio(tokio) => {
                let TokioClient { runtime, client } = *tokio;
                runtime.block_on(client.quit())
            }
        }
    }
}

/// A blocking `Write` as a tokio `AsyncWrite` (tests write to memory or local files).
struct SyncSink<'a>(&'a mut (dyn Write + Send));

impl tokio::io::AsyncWrite for SyncSink<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.0.write(buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.0.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A blocking `Read` as a tokio `AsyncRead`.
struct SyncSource<'a>(&'a mut (dyn Read + Send));

impl tokio::io::AsyncRead for SyncSource<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}
