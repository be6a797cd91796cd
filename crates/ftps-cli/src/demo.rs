//! `ftps demo`: this crate's server and client in one process, over 127.0.0.1, each protocol
//! step printed as one line — a newcomer's first look at FTPS, and a self-test.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Args;
use ftps_std::server::{
    LocalFs, Server, ServerOptions, SessionEvent, SessionLog, ShutdownHandle, UserTable,
};
use ftps_std::{
    Client, ClientOptions, ClientTimeouts, Error, HandshakeKind, TlsVersion, TransferSummary, Trust,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::errors::{CliError, ExitCode, reply_text};
use crate::listing;
use crate::serve::{self, Reuse};
use crate::session_log::{log_line, rate};

/// The demo user's name.
const USER: &str = "demo";
/// The remote file's name.
const REMOTE: &str = "demo.bin";
/// No step may take longer (everything is local).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of `ftps demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Size of the file sent back and forth, in bytes; K, M and G suffixes (binary) allowed.
    #[arg(long, value_name = "BYTES", default_value = "32M", value_parser = parse_size)]
    size: u64,
    /// Keep the temp directory (server files and client copies) and print its path.
    #[arg(long)]
    keep: bool,
    /// No progress bars.
    #[arg(short, long)]
    quiet: bool,
}

/// `4096`, `64K`, `32M`, `1G` (also `KiB`, `MiB`, `GiB`): at least 2 bytes, so there is a
/// second half to resume.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: a number of bytes expected (e.g. 32M)"))?;
    let unit: u64 = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        "G" | "GIB" => 1 << 30,
        _ => return Err(format!("{suffix:?}: unknown unit (K, M or G)")),
    };
    let size = number
        .checked_mul(unit)
        .filter(|&s| s <= 16 << 30)
        .ok_or_else(|| format!("{text}: at most 16G"))?;
    if size < 2 {
        return Err("at least 2 bytes".to_owned());
    }
    Ok(size)
}

/// The running in-process server; dropping it stops the server and waits for its thread.
struct RunningServer {
    address: SocketAddr,
    shutdown: ShutdownHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Shows the server's side of each step: its session events, as `ftps serve` logs them.
struct ServerSteps;

impl SessionLog for ServerSteps {
    fn event(&self, session: u64, peer: SocketAddr, event: &SessionEvent) {
        step(&format!("  server: {}", log_line(session, peer, event)));
    }
}

/// Writes one step line (stdout, unbuffered so it shows as it happens).
fn step(text: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "demo: {text}").and_then(|()| out.flush());
}

/// Runs the demo; prints the verdict, and on failure returns the cause.
pub(crate) fn run(args: &DemoArgs, progress: bool) -> Result<(), CliError> {
    let result = tempfile::Builder::new()
        .prefix("ftps-demo-")
        .tempdir()
        .map_err(|e| CliError::local(&std::env::temp_dir(), &e))
        .and_then(|dir| {
            let result = demo(args, dir.path(), progress && !args.quiet);
            if args.keep {
                let kept = dir.keep();
                step(&format!("kept the files in {}", kept.display()));
            }
            result
        });
    match result {
        Ok(summary) => {
            step(&format!("OK — {summary}"));
            Ok(())
        }
        Err(error) => {
            step(&format!("FAILED — {}", error.message));
            Err(error)
        }
    }
}

/// The demo's steps; returns what the last line says on success.
fn demo(args: &DemoArgs, dir: &Path, progress: bool) -> Result<String, CliError> {
    let server_root = dir.join("server");
    let client_dir = dir.join("client");
    for d in [&server_root, &client_dir] {
        fs::create_dir(d).map_err(|e| CliError::local(d, &e))?;
    }

    let cert = serve::self_signed_certificate()?;
    let password = serve::random_password()?;
    let server = start_server(&cert, &password, &server_root)?;
    step(&format!(
        "server listening on {} (explicit FTPS), serving {} read-write, user {USER} with a random password",
        server.address,
        server_root.display()
    ));
    step(&format!(
        "server certificate: self-signed for localhost, 127.0.0.1, ::1; SHA-256 {}",
        cert.fingerprint
    ));

    let upload = client_dir.join("upload.bin");
    let original = write_payload(&upload, args.size)?;
    step(&format!(
        "made {} ({} bytes of seeded pseudo-random data), SHA-256 {}",
        upload.display(),
        args.size,
        short_hex(&original)
    ));

    let (client, tls) = connect(server.address, &cert)?;
    let mut session = Session {
        client,
        progress,
        size: args.size,
        resumed: Vec::new(),
    };
    session
        .client
        .login(USER, &password)
        .map_err(|e| client_error("login", &e))?;
    step(&format!(
        "USER {USER} / PASS: logged in; PBSZ 0 / PROT P: data connections inside TLS"
    ));

    session.upload(&upload)?;
    session.list()?;
    let download = client_dir.join("download.bin");
    session.download(&download, 0)?;
    compare(&download, &original, "download")?;

    // Resume: keep the first half, as an interrupted download leaves it; fetch the rest.
    let half = args.size / 2;
    OpenOptions::new()
        .write(true)
        .open(&download)
        .and_then(|file| file.set_len(half))
        .map_err(|e| CliError::local(&download, &e))?;
    step(&format!(
        "cut the local copy to its first {half} bytes, as an interrupted download leaves it"
    ));
    session.download(&download, half)?;
    compare(&download, &original, "resumed download")?;

    let all_resumed = session.resumed.iter().all(|r| *r == Some(true));
    session
        .client
        .quit()
        .map_err(|e| client_error("QUIT", &e))?;
    step("QUIT: closed with close_notify on the control connection");
    drop(server);
    step("server stopped");

    let data_tls = if all_resumed {
        "every data connection resumed the control session"
    } else {
        "NOT every data connection resumed the control session"
    };
    Ok(format!(
        "{} bytes up, down and resumed from byte {half} over {} ({}); {data_tls}; SHA-256 identical",
        args.size, tls.version, tls.cipher
    ))
}

/// The control connection's TLS, as the verdict names it.
struct ControlTls {
    version: &'static str,
    cipher: String,
}

/// Connects with `AUTH TLS`, trusting exactly `cert`, and shows the handshake.
fn connect(
    address: SocketAddr,
    cert: &serve::ServerCertificate,
) -> Result<(Client, ControlTls), CliError> {
    let mut options = ClientOptions::new(address.ip().to_string());
    options.port = Some(address.port());
    // Exactly this certificate is trusted: nothing else would pass.
    options.trust = Trust::Certificates(cert.chain.clone());
    options.timeouts = ClientTimeouts {
        connect: STEP_TIMEOUT,
        reply: STEP_TIMEOUT,
        data_idle: STEP_TIMEOUT,
    };
    let client = Client::connect(options).map_err(|e| client_error("connect + AUTH TLS", &e))?;
    let tls = client
        .tls_info()
        .ok_or_else(|| CliError::new(ExitCode::Connection, "the control connection has no TLS"))?;
    let version = match tls.version {
        TlsVersion::Tls12 => "TLS 1.2",
        TlsVersion::Tls13 => "TLS 1.3",
    };
    let kind = match tls.kind {
        HandshakeKind::Resumed => "resumed handshake",
        _ => "full handshake",
    };
    let pinned = tls
        .peer_certificates
        .first()
        .is_some_and(|der| serve::fingerprint(der) == cert.fingerprint);
    step(&format!(
        "connected to {address}, AUTH TLS: {version}, {}, {kind}, ALPN {}, server certificate {}",
        tls.cipher_suite_name,
        tls.alpn
            .as_deref()
            .map_or_else(|| "none".into(), String::from_utf8_lossy),
        if pinned {
            "is the one made above"
        } else {
            "UNEXPECTED"
        }
    ));
    if !pinned {
        return Err(CliError::new(
            ExitCode::Connection,
            "the server showed another certificate",
        ));
    }
    let cipher = tls.cipher_suite_name.clone();
    Ok((client, ControlTls { version, cipher }))
}

/// The logged-in client and what its transfers showed.
struct Session {
    client: Client,
    progress: bool,
    /// The size of the demo file.
    size: u64,
    /// Whether each data connection resumed the control connection's TLS session.
    resumed: Vec<Option<bool>>,
}

impl Session {
    /// Runs one transfer of `expected` bytes and prints its line.
    fn transfer(
        &mut self,
        what: &str,
        expected: u64,
        run: impl FnOnce(&mut Client) -> Result<TransferSummary, Error>,
    ) -> Result<(), CliError> {
        let (summary, secs) = timed(&mut self.client, self.progress, what, expected, run)
            .map_err(|e| client_error(what, &e))?;
        step(&transfer_line(what, &summary, secs));
        self.resumed.push(summary.resumed);
        if summary.bytes == expected {
            Ok(())
        } else {
            Err(CliError::new(
                ExitCode::Transfer,
                format!("{what} moved {} bytes, {expected} expected", summary.bytes),
            ))
        }
    }

    fn upload(&mut self, local: &Path) -> Result<(), CliError> {
        let mut source = File::open(local).map_err(|e| CliError::local(local, &e))?;
        self.transfer(&format!("STOR {REMOTE}"), self.size, |c| {
            c.store(REMOTE, &mut source)
        })
    }

    fn list(&mut self) -> Result<(), CliError> {
        let entries = self
            .client
            .list(None)
            .map_err(|e| client_error("MLSD", &e))?;
        let listed: Vec<String> = entries
            .iter()
            .filter(|e| listing::name_and_kind(e).is_some_and(|(n, _)| n != b"." && n != b".."))
            .filter_map(listing::format_entry)
            .collect();
        step(&format!(
            "directory listing: {} entr{}",
            listed.len(),
            if listed.len() == 1 { "y" } else { "ies" }
        ));
        for line in &listed {
            step(&format!("  {line}"));
        }
        let found = entries
            .iter()
            .any(|e| listing::name_and_kind(e).is_some_and(|(n, _)| n == REMOTE.as_bytes()));
        if found {
            Ok(())
        } else {
            Err(CliError::new(
                ExitCode::RemoteFile,
                format!("{REMOTE} is not in the listing"),
            ))
        }
    }

    /// Downloads into `local` from `offset` on: a new file at 0, else appended (REST).
    fn download(&mut self, local: &Path, offset: u64) -> Result<(), CliError> {
        let file = if offset == 0 {
            File::create(local)
        } else {
            OpenOptions::new().append(true).open(local)
        }
        .map_err(|e| CliError::local(local, &e))?;
        let mut sink = BufWriter::new(file);
        let what = if offset == 0 {
            format!("RETR {REMOTE}")
        } else {
            format!("REST {offset} + RETR {REMOTE}")
        };
        self.transfer(&what, self.size - offset, |c| {
            c.retrieve(REMOTE, offset, &mut sink)
        })?;
        sink.flush().map_err(|e| CliError::local(local, &e))
    }
}

fn start_server(
    cert: &serve::ServerCertificate,
    password: &str,
    root: &Path,
) -> Result<RunningServer, CliError> {
    let mut users = UserTable::new();
    let hash = ftps_std::server::hash_password(password)
        .map_err(|e| CliError::new(ExitCode::LocalIo, format!("hashing the password: {e}")))?;
    users
        .add_user(USER, &hash)
        .map_err(|e| CliError::new(ExitCode::LocalIo, e.to_string()))?;
    let storage = LocalFs::new(root).map_err(|e| CliError::local(root, &e))?;
    let server = Server::bind(ServerOptions {
        session: serve::session_config(cert, None, false, Reuse::Required)?,
        explicit: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
        implicit: Vec::new(),
        passive_ports: None,
        advertised_address: None,
        storage: Arc::new(storage),
        auth: Arc::new(users),
        log: Some(Arc::new(ServerSteps)),
        limits: ftps_std::server::SessionLimits::default(),
    })
    .map_err(|e| CliError::new(ExitCode::Connection, format!("cannot listen: {e}")))?;
    let address = server
        .local_addr()
        .map_err(|e| CliError::new(ExitCode::Connection, format!("no listener: {e}")))?;
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run());
    Ok(RunningServer {
        address,
        shutdown,
        thread: Some(thread),
    })
}

/// Runs one transfer with a progress bar (when wanted) and measures it.
fn timed(
    client: &mut Client,
    progress: bool,
    label: &str,
    total: u64,
    transfer: impl FnOnce(&mut Client) -> Result<TransferSummary, Error>,
) -> Result<(TransferSummary, f64), Error> {
    let bar = progress.then(|| {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "demo: {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        let handle = bar.clone();
        client.set_progress(Some(Box::new(move |moved| handle.set_position(moved))));
        bar
    });
    let started = Instant::now();
    let result = transfer(client);
    let secs = started.elapsed().as_secs_f64();
    if let Some(bar) = bar {
        client.set_progress(None);
        bar.finish_and_clear();
    }
    result.map(|summary| (summary, secs))
}

fn transfer_line(what: &str, summary: &TransferSummary, secs: f64) -> String {
    let data_tls = match summary.resumed {
        Some(true) => "data TLS resumed the control session",
        Some(false) => "data TLS full handshake (NOT resumed)",
        None => "data connection NOT encrypted",
    };
    format!(
        "{what}: {} bytes in {secs:.2} s ({}), {data_tls}; server: {}",
        summary.bytes,
        rate(summary.bytes, secs),
        reply_text(&summary.reply)
    )
}

fn compare(path: &Path, expected: &[u8; 32], what: &str) -> Result<(), CliError> {
    let actual = sha256_file(path)?;
    if &actual == expected {
        step(&format!(
            "{what}: SHA-256 {} matches the original",
            short_hex(&actual)
        ));
        Ok(())
    } else {
        Err(CliError::new(
            ExitCode::Transfer,
            format!(
                "{what}: SHA-256 {} differs from the original's {}",
                short_hex(&actual),
                short_hex(expected)
            ),
        ))
    }
}

fn client_error(what: &str, error: &Error) -> CliError {
    CliError::from_client(error, crate::errors::Stage::Transfer, what, "127.0.0.1")
}

/// Writes `size` bytes of a fixed xorshift sequence to `path`; returns their SHA-256.
fn write_payload(path: &Path, size: u64) -> Result<[u8; 32], CliError> {
    let file = File::create(path).map_err(|e| CliError::local(path, &e))?;
    let mut out = BufWriter::new(file);
    let mut hasher = Sha256::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left).map_or(chunk.len(), |l| l.min(chunk.len()));
        for word in chunk[..n].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        hasher.update(&chunk[..n]);
        out.write_all(&chunk[..n])
            .map_err(|e| CliError::local(path, &e))?;
        left -= n as u64;
    }
    out.flush().map_err(|e| CliError::local(path, &e))?;
    Ok(hasher.finalize().into())
}

fn sha256_file(path: &Path) -> Result<[u8; 32], CliError> {
    let mut file = File::open(path).map_err(|e| CliError::local(path, &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| CliError::local(path, &e))?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

/// The first 16 hex digits of a digest (enough to compare by eye).
fn short_hex(digest: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for byte in &digest[..8] {
        let _ = write!(out, "{byte:02x}");
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("32m"), Ok(32 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("1").is_err());
        assert!(parse_size("17G").is_err());
        assert!(parse_size("3T").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }

    #[test]
    fn payload_hash_matches_the_file_and_the_seed_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let hash = write_payload(&a, 100_003).unwrap();
        assert_eq!(write_payload(&b, 100_003).unwrap(), hash);
        assert_eq!(fs::metadata(&a).unwrap().len(), 100_003);
        assert_eq!(sha256_file(&a).unwrap(), hash);
        assert_ne!(write_payload(&b, 100_002).unwrap(), hash);
    }
}
