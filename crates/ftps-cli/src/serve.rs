//! `ftps serve` and `ftps hash-password`: an FTPS server for a directory that works with no
//! set-up (a self-signed certificate and a random password when none are given), and the tool
//! that makes password hashes for its users file.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ftps_proto::server::ClientCertificates;
use ftps_proto::tls::{
    self, CertificateDer, PrivateKeyDer, ResumptionPolicy, RootCertStore, ServerTlsOptions,
};
use ftps_std::server::{
    LocalFs, Server, ServerOptions, ServerSessionConfig, ServerTlsMode, SessionLimits, UserTable,
};
use sha2::{Digest, Sha256};

use crate::commands::read_pem;
use crate::errors::{CliError, ExitCode};
use crate::session_log::StderrLog;

/// Where `ftps serve` listens when no address is given.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2121);
/// The user `ftps serve` creates when neither `--user` nor `--users` names one.
const DEFAULT_USER: &str = "ftps";
/// The names a self-signed certificate is valid for: what a client on this machine dials.
const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Options of `ftps serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The directory to serve; clients cannot leave it (default: the current directory).
    dir: Option<PathBuf>,
    /// The user who may log in, with a password (default: user `ftps` with a random password,
    /// printed at start; no default user with --users).
    #[arg(short, long, value_name = "NAME[:PASSWORD]")]
    user: Option<String>,
    /// Listen for explicit FTPS (AUTH TLS) here; repeatable (default: 127.0.0.1:2121 unless
    /// --implicit-listen is given). Port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// Listen for implicit FTPS (TLS from the first byte) here; repeatable.
    #[arg(long, value_name = "ADDR")]
    implicit_listen: Vec<SocketAddr>,
    /// Allow uploads, deletes, renames and new directories (default: read-only).
    #[arg(long)]
    write: bool,
    /// Commit uploads without waiting for the disk (no fsync before the 226). By default a
    /// 226 means the file is on disk and survives a crash of this machine; with this, it may
    /// still be in the page cache (faster on disks, the same on tmpfs; vsftpd and ProFTPD
    /// never sync).
    #[arg(long)]
    no_fsync: bool,
    /// Users file: one NAME:ARGON2-HASH per line (`ftps hash-password --user NAME` makes
    /// them), '#' starts a comment.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Also let `anonymous` and `ftp` log in with any password (read-only servers only).
    #[arg(long)]
    anonymous: bool,
    /// The server's certificate chain (PEM), end-entity first (default: a fresh self-signed
    /// certificate for localhost, 127.0.0.1 and ::1).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The private key of --cert (PEM); default: read from the --cert file.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Require a client certificate signed by a CA in this PEM file (besides the password).
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Where to save the self-signed certificate (PEM, certificate only) for clients'
    /// --cacert (default: a new ftps-serve-*.pem in the temp directory).
    #[arg(long, value_name = "FILE", conflicts_with = "cert")]
    cert_out: Option<PathBuf>,
    /// Ports for passive data connections, e.g. 50000-50100 (default: any free port).
    #[arg(long, value_name = "A-B", value_parser = parse_port_range)]
    passive_ports: Option<RangeInclusive<u16>>,
    /// The IPv4 address sent in PASV (227) replies, for a server behind NAT.
    #[arg(long, value_name = "IPv4")]
    advertise_ip: Option<Ipv4Addr>,
    /// Accept CCC (clear the control channel after login; data connections stay protected).
    #[arg(long)]
    allow_ccc: bool,
    /// Whether a data connection's TLS must resume the control connection's session
    /// (RFC 4217 §10.2; "optional" lets clients without resumption, like Python's ftplib,
    /// transfer).
    #[arg(long, value_enum, default_value_t = Reuse::Required)]
    reuse: Reuse,
    /// Sessions at the same time; more are refused with 421.
    #[arg(long, value_name = "N", default_value_t = SessionLimits::default().max_sessions)]
    max_sessions: usize,
    /// Sessions at the same time from one client address; more are refused with 421.
    #[arg(long, value_name = "N", default_value_t = SessionLimits::default().max_sessions_per_ip)]
    max_per_ip: usize,
    /// Data connections open at the same time over all sessions; more fail with 425.
    #[arg(long, value_name = "N", default_value_t = SessionLimits::default().max_data_connections)]
    max_data_connections: usize,
    /// Seconds a client has to complete the control connection's TLS handshake.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    handshake_timeout: u64,
    /// Seconds a client has to log in after connecting (421 and close after).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    login_timeout: u64,
    /// Seconds running transfers may go on after Ctrl-C / SIGTERM before their sessions are
    /// closed with 421 (idle sessions are closed at once).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    shutdown_grace: u64,
    /// Run the blocking server (a thread per session) instead of the async one (a tokio task
    /// per session).
    #[arg(long)]
    blocking: bool,
}

impl ServeArgs {
    /// The admission limits of the command line.
    fn limits(&self) -> SessionLimits {
        SessionLimits {
            max_sessions: self.max_sessions,
            max_sessions_per_ip: self.max_per_ip,
            max_data_connections: self.max_data_connections,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            ..SessionLimits::default()
        }
    }
}

/// Options of `ftps hash-password`.
#[derive(Debug, Args)]
pub(crate) struct HashPasswordArgs {
    /// Print a users-file line, NAME:HASH, instead of the hash alone.
    #[arg(short, long, value_name = "NAME")]
    user: Option<String>,
}

/// The data-connection TLS session reuse policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Reuse {
    /// A data connection must resume the control connection's TLS session (522 otherwise).
    Required,
    /// Resumption is offered; a full handshake on a data connection is accepted too.
    Optional,
    /// Data connections are never resumed (every data handshake is a full one).
    Off,
}

/// A server certificate ready for rustls, with what a client needs to trust it.
pub(crate) struct ServerCertificate {
    /// The chain, end-entity first.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub(crate) key: PrivateKeyDer<'static>,
    /// A self-signed certificate as PEM (no key), for clients' `--cacert`; `None` for a
    /// certificate loaded from files.
    pub(crate) self_signed_pem: Option<String>,
    /// SHA-256 of the end-entity certificate, colon-separated upper-case hex (like openssl).
    pub(crate) fingerprint: String,
}

/// A fresh self-signed certificate (ECDSA P-256) for `localhost`, `127.0.0.1` and `::1`.
pub(crate) fn self_signed_certificate() -> Result<ServerCertificate, CliError> {
    let failed = |e: rcgen::Error| {
        CliError::new(
            ExitCode::LocalIo,
            format!("making a self-signed certificate: {e}"),
        )
    };
    let key_pair = rcgen::KeyPair::generate().map_err(failed)?;
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|&n| n.to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftps serve (self-signed)");
    let cert = params.self_signed(&key_pair).map_err(failed)?;
    let der = cert.der().clone();
    Ok(ServerCertificate {
        fingerprint: fingerprint(&der),
        self_signed_pem: Some(cert.pem()),
        chain: vec![der],
        key: PrivateKeyDer::Pkcs8(key_pair.serialize_der().into()),
    })
}

/// The chain in `cert` and the key in `key` (or in `cert` too), both PEM.
fn load_certificate(cert: &Path, key: Option<&Path>) -> Result<ServerCertificate, CliError> {
    let chain = read_pem(cert, tls::certificates_from_pem)?;
    let key = read_pem(key.unwrap_or(cert), tls::private_key_from_pem)?;
    Ok(ServerCertificate {
        fingerprint: fingerprint(&chain[0]),
        self_signed_pem: None,
        chain,
        key,
    })
}

/// SHA-256 of `der` as `AB:CD:...` (the form `openssl x509 -fingerprint -sha256` prints).
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

/// A random password of 16 characters from an alphabet without look-alikes (about 92 bits).
pub(crate) fn random_password() -> Result<String, CliError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // Bytes at or above the largest multiple of the alphabet size are dropped, so every
    // character is equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut password = String::with_capacity(16);
    while password.len() < 16 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            CliError::new(
                ExitCode::LocalIo,
                format!("no randomness for a password: {e}"),
            )
        })?;
        for byte in bytes {
            if usize::from(byte) < limit && password.len() < 16 {
                password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    Ok(password)
}

/// The session configuration shared by `serve` and `demo`: secure defaults plus the policies
/// chosen on the command line. With `client_roots`, a login needs a client certificate that
/// chains to them.
pub(crate) fn session_config(
    cert: &ServerCertificate,
    client_roots: Option<RootCertStore>,
    allow_ccc: bool,
    reuse: Reuse,
) -> Result<ServerSessionConfig, CliError> {
    let required = client_roots.is_some();
    let mut options = ServerTlsOptions::new(cert.chain.clone(), cert.key.clone_key());
    options.client_roots = client_roots;
    let tls = tls::server_config_from_options(&options).map_err(|e| {
        CliError::usage(format!(
            "the certificate and key do not make a TLS configuration: {e}"
        ))
    })?;
    let mut config = ServerSessionConfig::new(Arc::new(tls));
    if required {
        config.client_certificates = ClientCertificates::Required;
    }
    config.allow_ccc = allow_ccc;
    config.data_resumption = match reuse {
        Reuse::Required => ResumptionPolicy::Required,
        Reuse::Optional => ResumptionPolicy::Optional,
        Reuse::Off => ResumptionPolicy::Off,
    };
    Ok(config)
}

/// The CA certificates of `--client-ca` (every certificate in the file must be usable).
fn client_roots(path: &Path) -> Result<RootCertStore, CliError> {
    read_pem(path, tls::root_store_from_pem)
}

/// Adds the `NAME:HASH` lines of a users file to `table`; returns how many users it named.
fn parse_users(text: &str, table: &mut UserTable) -> Result<usize, String> {
    let mut count = 0;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = number + 1;
        let Some((name, hash)) = line.split_once(':') else {
            return Err(format!("line {number}: NAME:HASH expected"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("line {number}: the user name is empty"));
        }
        table
            .add_user(name, hash.trim())
            .map_err(|e| format!("line {number} ({name}): {e}"))?;
        count += 1;
    }
    Ok(count)
}

/// Splits `--user NAME[:PASSWORD]`.
fn split_user(spec: &str) -> Result<(&str, Option<&str>), CliError> {
    let (name, password) = match spec.split_once(':') {
        Some((name, password)) => (name, Some(password)),
        None => (spec, None),
    };
    if name.is_empty() || name.contains(['\r', '\n']) {
        return Err(CliError::usage(
            "--user: the user name is empty or has a line break",
        ));
    }
    Ok((name, password))
}

fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let (low, high) = text
        .split_once('-')
        .ok_or_else(|| "A-B expected, e.g. 50000-50100".to_owned())?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{p:?} is not a port (1-65535)"))
    };
    let (low, high) = (port(low)?, port(high)?);
    if low > high {
        return Err(format!(
            "{low}-{high}: the first port is larger than the last"
        ));
    }
    Ok(low..=high)
}

/// The address a client on this machine dials for a listener on `addr` (a wildcard listener
/// is reached over loopback, which the self-signed certificate names).
fn dial_address(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Who may log in, and how the startup block describes it.
struct Logins {
    table: UserTable,
    /// Lines for the startup block (the generated password among them, nothing else secret).
    described: Vec<String>,
    /// The user name for the example command lines.
    example_user: String,
}

/// The users of `--users`, `--user` (or the default user with a random password) and
/// `--anonymous`.
fn logins(args: &ServeArgs) -> Result<Logins, CliError> {
    let mut table = UserTable::new();
    let mut described = Vec::new();
    let mut example_user = None;
    if let Some(file) = &args.users {
        let text = std::fs::read_to_string(file).map_err(|e| CliError::local(file, &e))?;
        let count = parse_users(&text, &mut table)
            .map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;
        described.push(format!("{count} user(s) from {}", file.display()));
        example_user = Some("USER".to_owned());
    }
    if args.user.is_some() || args.users.is_none() {
        let (name, password) = match &args.user {
            Some(spec) => split_user(spec)?,
            None => (DEFAULT_USER, None),
        };
        let (password, shown) = match password {
            Some(password) => (password.to_owned(), "as given with --user".to_owned()),
            None => {
                let password = random_password()?;
                let shown = format!("password {password}");
                (password, shown)
            }
        };
        let hash = ftps_std::server::hash_password(&password)
            .map_err(|e| CliError::new(ExitCode::LocalIo, format!("hashing the password: {e}")))?;
        table
            .add_user(name, &hash)
            .map_err(|e| CliError::new(ExitCode::LocalIo, e.to_string()))?;
        described.push(format!("user {name}, {shown}"));
        example_user = Some(name.to_owned());
    }
    if args.anonymous {
        table.allow_anonymous(true);
        described.push("anonymous logins allowed (any password)".to_owned());
    }
    Ok(Logins {
        table,
        described,
        example_user: example_user.unwrap_or_else(|| "anonymous".to_owned()),
    })
}

/// The certificate of `--cert/--key`, or a fresh self-signed one saved (without its key) for
/// clients' `--cacert`; the second value is where it was saved.
fn certificate(args: &ServeArgs) -> Result<(ServerCertificate, Option<PathBuf>), CliError> {
    if let Some(path) = &args.cert {
        return Ok((load_certificate(path, args.key.as_deref())?, None));
    }
    let cert = self_signed_certificate()?;
    let pem = cert.self_signed_pem.as_deref().unwrap_or_default();
    let file = match &args.cert_out {
        Some(file) => {
            std::fs::write(file, pem).map_err(|e| CliError::local(file, &e))?;
            file.clone()
        }
        None => {
            // A new file with an unpredictable name: in a shared temp directory nobody can
            // plant a file or symlink there beforehand.
            let temp_dir = std::env::temp_dir();
            let mut file = tempfile::Builder::new()
                .prefix("ftps-serve-")
                .suffix(".pem")
                .tempfile()
                .map_err(|e| CliError::local(&temp_dir, &e))?;
            file.write_all(pem.as_bytes())
                .map_err(|e| CliError::local(file.path(), &e))?;
            // A certificate is public: other local users' clients may read it (tempfile
            // creates 0600).
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let public = std::fs::Permissions::from_mode(0o644);
                file.as_file()
                    .set_permissions(public)
                    .map_err(|e| CliError::local(file.path(), &e))?;
            }
            // Not deleted on drop: the printed commands name it while the server runs; `run`
            // removes it when the server is stopped with Ctrl-C or SIGTERM.
            let (_, path) = file
                .keep()
                .map_err(|e| CliError::local(&temp_dir, &e.error))?;
            path
        }
    };
    Ok((cert, Some(file)))
}

/// `path` as one shell word (quoted when it has anything but safe characters).
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// What `ftps serve` prints once it listens: where, what, which certificate, who, and command
/// lines that work as printed.
fn startup_text(
    args: &ServeArgs,
    addrs: &[(SocketAddr, ServerTlsMode)],
    root: &Path,
    cert: &ServerCertificate,
    cert_file: Option<&Path>,
    logins: &Logins,
) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str("ftps serve: ");
        out.push_str(&text);
        out.push('\n');
    };
    let mode = if args.write {
        "read-write"
    } else {
        "read-only, --write allows uploads"
    };
    line(format!("serving {} ({mode})", root.display()));
    let first = |mode: ServerTlsMode| addrs.iter().find(|(_, m)| *m == mode).map(|(a, _)| *a);
    for &(addr, tls_mode) in addrs {
        let kind = match tls_mode {
            ServerTlsMode::Explicit => "explicit FTPS (AUTH TLS)",
            _ => "implicit FTPS",
        };
        line(format!("listening on {addr} for {kind}"));
    }
    match (cert_file, &args.cert) {
        (Some(file), _) => line(format!(
            "self-signed certificate for {}, saved to {}",
            SELF_SIGNED_NAMES.join(", "),
            file.display()
        )),
        (None, Some(path)) => line(format!("certificate from {}", path.display())),
        (None, None) => {}
    }
    line(format!("SHA-256 fingerprint {}", cert.fingerprint));
    if let Some(ca) = &args.client_ca {
        line(format!(
            "client certificate required, signed by a CA in {}",
            ca.display()
        ));
    }
    for text in &logins.described {
        line(text.clone());
    }
    let user = &logins.example_user;
    let cacert = cert_file
        .map(|f| format!(" --cacert {}", shell_word(f)))
        .unwrap_or_default();
    if let Some(addr) = first(ServerTlsMode::Explicit) {
        let addr = dial_address(addr);
        line(format!("try: ftps ls{cacert} ftp://{user}@{addr}/"));
        line(format!(
            " or: curl --ssl-reqd{cacert} --user {user} ftp://{addr}/"
        ));
    }
    if let Some(addr) = first(ServerTlsMode::Implicit) {
        let addr = dial_address(addr);
        line(format!("try: ftps ls{cacert} ftps://{user}@{addr}/"));
    }
    line("ready (Ctrl-C stops the server)".to_owned());
    out
}

/// Runs `ftps serve` until the process is stopped.
pub(crate) fn run(args: &ServeArgs) -> Result<(), CliError> {
    if args.anonymous && args.write {
        return Err(CliError::usage(
            "--anonymous with --write would let anyone change the files; choose one",
        ));
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = std::fs::canonicalize(&dir).map_err(|e| CliError::local(&dir, &e))?;
    let storage = LocalFs::new(&root)
        .map_err(|e| CliError::local(&root, &e))?
        .read_only(!args.write)
        .sync_uploads(!args.no_fsync);
    // Users before the certificate: a bad users file fails before anything is written.
    let mut logins = logins(args)?;
    let (cert, cert_file) = certificate(args)?;
    let roots = args.client_ca.as_deref().map(client_roots).transpose()?;
    let mut session = session_config(&cert, roots, args.allow_ccc, args.reuse)?;
    session.timeouts.handshake = Duration::from_secs(args.handshake_timeout);
    session.timeouts.login = Duration::from_secs(args.login_timeout);
    let explicit = if args.listen.is_empty() && args.implicit_listen.is_empty() {
        vec![DEFAULT_LISTEN]
    } else {
        args.listen.clone()
    };
    let options = ServerOptions {
        session,
        explicit,
        implicit: args.implicit_listen.clone(),
        passive_ports: args.passive_ports.clone(),
        advertised_address: args.advertise_ip,
        storage: Arc::new(storage),
        auth: Arc::new(std::mem::take(&mut logins.table)),
        log: Some(Arc::new(StderrLog)),
        limits: args.limits(),
    };
    let cannot_listen = |e: std::io::Error| {
        let mut error = CliError::new(ExitCode::Connection, format!("cannot listen: {e}"));
        if e.kind() == std::io::ErrorKind::AddrInUse {
            error.hint =
                Some("another program uses the port; --listen 127.0.0.1:0 picks a free one".into());
        }
        error
    };
    let ready = |addrs: &[(SocketAddr, ServerTlsMode)]| {
        let text = startup_text(args, addrs, &root, &cert, cert_file.as_deref(), &logins);
        let mut stdout = std::io::stdout().lock();
        // Tests and scripts read the listening line from a pipe: it must not sit in a buffer.
        let _ = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush());
    };
    let cannot_handle =
        |e: ctrlc::Error| CliError::new(ExitCode::LocalIo, format!("cannot handle Ctrl-C: {e}"));

    // Ctrl-C / SIGTERM: stop accepting, close every session (transfers get the shutdown
    // grace), remove the certificate file we made on our own, exit 0. Installed before the
    // `ready` line, so a signal sent as soon as a script sees that line is handled; a handler
    // also overrides a SIGINT disposition of "ignore" inherited from a non-interactive parent
    // shell.
    let result = if args.blocking {
        let server = Server::bind(options).map_err(cannot_listen)?;
        let shutdown = server.shutdown_handle();
        ctrlc::set_handler(move || shutdown.shutdown()).map_err(cannot_handle)?;
        ready(&server.local_addrs());
        server.run()
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(ExitCode::LocalIo, format!("tokio runtime: {e}")))?;
        let server = {
            let _inside = runtime.enter();
            ftps_tokio::Server::bind(options).map_err(cannot_listen)?
        };
        let shutdown = server.shutdown_handle();
        ctrlc::set_handler(move || shutdown.shutdown()).map_err(cannot_handle)?;
        ready(&server.local_addrs());
        runtime.block_on(server.run())
    };
    let result = result.map_err(|e| CliError::new(ExitCode::Connection, format!("server: {e}")));
    if args.cert.is_none() && args.cert_out.is_none() {
        if let Some(file) = &cert_file {
            let _ = std::fs::remove_file(file);
        }
    }
    eprintln!("ftps serve: stopped");
    result
}

/// `ftps hash-password`: reads a password and prints `NAME:HASH` (or the hash alone).
pub(crate) fn hash_password_line(args: &HashPasswordArgs) -> Result<(), CliError> {
    let name = match &args.user {
        Some(spec) => match split_user(spec)? {
            (name, None) => Some(name),
            (_, Some(_)) => {
                return Err(CliError::usage(
                    "hash-password takes --user NAME (the password is read, not given)",
                ));
            }
        },
        None => None,
    };
    let password = if std::io::stdin().is_terminal() {
        let prompt_failed =
            |e: std::io::Error| CliError::new(ExitCode::LocalIo, format!("password prompt: {e}"));
        let first = rpassword::prompt_password("Password: ").map_err(prompt_failed)?;
        let again = rpassword::prompt_password("Again: ").map_err(prompt_failed)?;
        if first != again {
            return Err(CliError::usage("the passwords differ"));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::local(Path::new("<stdin>"), &e))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        return Err(CliError::usage("the password is empty"));
    }
    let hash = ftps_std::server::hash_password(&password)
        .map_err(|e| CliError::new(ExitCode::LocalIo, format!("hashing the password: {e}")))?;
    match name {
        Some(name) => println!("{name}:{hash}"),
        None => println!("{hash}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_lines_comments_and_errors() {
        let hash = ftps_std::server::hash_password("pw").unwrap();
        let mut table = UserTable::new();
        let text = format!("# users\n\nalice:{hash}\n  bob : {hash}  \n");
        assert_eq!(parse_users(&text, &mut table), Ok(2));
        let mut table = UserTable::new();
        let error = parse_users("# c\nalice\n", &mut table).unwrap_err();
        assert_eq!(error, "line 2: NAME:HASH expected");
        let error = parse_users("alice:plaintext\n", &mut table).unwrap_err();
        assert!(
            error.starts_with("line 1 (alice): not a valid password hash"),
            "{error}"
        );
        assert!(parse_users(&format!(":{hash}"), &mut table).is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("50000-50100"), Ok(50000..=50100));
        assert_eq!(parse_port_range("7-7"), Ok(7..=7));
        assert!(parse_port_range("10-9").is_err());
        assert!(parse_port_range("0-9").is_err());
        assert!(parse_port_range("100").is_err());
        assert!(parse_port_range("1-70000").is_err());
    }

    #[test]
    fn random_passwords_differ_and_use_the_alphabet() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c))
        );
    }

    #[test]
    fn self_signed_certificate_pem_and_fingerprint_agree() {
        let cert = self_signed_certificate().unwrap();
        let pem = cert.self_signed_pem.as_deref().unwrap();
        assert!(!pem.contains("PRIVATE KEY"));
        let parsed = tls::certificates_from_pem(pem.as_bytes()).unwrap();
        assert_eq!(parsed, cert.chain);
        assert_eq!(cert.fingerprint.len(), 32 * 3 - 1);
        assert_eq!(cert.fingerprint, fingerprint(&cert.chain[0]));
        assert!(session_config(&cert, None, false, Reuse::Required).is_ok());
    }

    #[test]
    fn fingerprint_is_colon_hex_of_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn paths_become_one_shell_word() {
        assert_eq!(
            shell_word(Path::new("/tmp/ftps-serve-1.pem")),
            "/tmp/ftps-serve-1.pem"
        );
        assert_eq!(
            shell_word(Path::new("/my certs/a.pem")),
            "'/my certs/a.pem'"
        );
        assert_eq!(shell_word(Path::new("it's.pem")), r"'it'\''s.pem'");
    }

    #[test]
    fn wildcard_listeners_are_dialled_over_loopback() {
        assert_eq!(
            dial_address("0.0.0.0:21".parse().unwrap()),
            "127.0.0.1:21".parse().unwrap()
        );
        assert_eq!(
            dial_address("[::]:21".parse().unwrap()),
            "[::1]:21".parse().unwrap()
        );
        assert_eq!(
            dial_address("127.0.0.2:21".parse().unwrap()),
            "127.0.0.2:21".parse().unwrap()
        );
    }
}
