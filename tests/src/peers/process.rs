//! Shared plumbing: finding programs, picking free ports, owning a peer process.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use super::{PeerError, Result};

/// The only address peers bind and clients connect to.
pub(crate) const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Finds `program` on `PATH`, then in the sbin directories a non-root `PATH` may lack.
pub(crate) fn find_program(program: &str) -> Result<PathBuf> {
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_dirs)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| PeerError::MissingProgram {
            program: program.to_owned(),
        })
}

/// A port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((LOOPBACK, 0)).map_err(PeerError::io("bind 127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(PeerError::io("local_addr"))?
        .port();
    Ok(port)
}

/// First port of the passive ranges: below Linux's ephemeral range (32768+), so outgoing
/// connections never take them, and above the well-known ports.
const PASSIVE_BASE: u16 = 20_000;
const PASSIVE_SPAN: u16 = 12_000;

/// Finds `count` consecutive ports on 127.0.0.1 that are free now, for a passive range.
///
/// Ranges handed out by this process never overlap (a counter walks the span); other processes
/// start at a pid-dependent offset, and every port is checked by binding it.
pub(crate) fn free_port_range(count: u16) -> Result<RangeInclusive<u16>> {
    static NEXT_OFFSET: AtomicU16 = AtomicU16::new(0);
    let count = count.clamp(1, 256);
    let process_offset = (std::process::id() % u32::from(PASSIVE_SPAN)) as u16;
    for _ in 0..64 {
        let offset = NEXT_OFFSET.fetch_add(count, Ordering::Relaxed);
        let first = PASSIVE_BASE + (process_offset.wrapping_add(offset) % (PASSIVE_SPAN - count));
        let range = first..=first + (count - 1);
        if range
            .clone()
            .all(|port| TcpListener::bind((LOOPBACK, port)).is_ok())
        {
            return Ok(range);
        }
    }
    Err(PeerError::Io {
        context: format!("finding {count} free consecutive ports"),
        source: std::io::ErrorKind::AddrInUse.into(),
    })
}

/// `len` random characters from `[A-Za-z0-9]`, for passwords and user names.
pub(crate) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0_u8; len];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Writes `contents` to `path` (creating or truncating it).
pub(crate) fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    fs::write(path, contents).map_err(PeerError::io(format!("writing {}", path.display())))
}

/// Reads a log file for an error message; a missing file reads as a note, not an error.
pub(crate) fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| format!("<{}: {err}>", path.display()))
}

/// A running peer process. Dropping it kills the peer's whole process group and reaps it.
#[derive(Debug)]
pub(crate) struct PeerProcess {
    child: Child,
}

impl PeerProcess {
    /// Starts `program args...` in its own process group with stdout and stderr appended to
    /// `output`, under `setpriv --pdeathsig KILL` so it dies with the thread that started it.
    pub(crate) fn spawn(
        program: &Path,
        args: &[&std::ffi::OsStr],
        envs: &[(&str, &std::ffi::OsStr)],
        output: &Path,
    ) -> Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let setpriv = find_program("setpriv")?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(output)
            .map_err(PeerError::io(format!("opening {}", output.display())))?;
        let log_for_stderr = log.try_clone().map_err(PeerError::io("dup log file"))?;
        let child = Command::new(setpriv)
            .args(["--pdeathsig", "KILL", "--"])
            .arg(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .process_group(0)
            .spawn()
            .map_err(PeerError::io(format!("starting {}", program.display())))?;
        Ok(Self { child })
    }

    /// The process id (also the process group id).
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` once the process has exited.
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("exited early ({status})")),
            Ok(None) => None,
            Err(err) => Some(format!("cannot query process: {err}")),
        }
    }

    /// Polls `probe` every few milliseconds until it yields a value, the process exits or
    /// `timeout` passes; the error carries `log()` so the failure explains itself.
    pub(crate) fn wait_until<T>(
        &mut self,
        peer: &'static str,
        timeout: Duration,
        log: impl Fn() -> String,
        mut probe: impl FnMut() -> Option<T>,
    ) -> Result<T> {
        let started = Instant::now();
        loop {
            if let Some(value) = probe() {
                return Ok(value);
            }
            let reason = match self.exit_status() {
                Some(exited) => exited,
                None if started.elapsed() >= timeout => "timed out".to_owned(),
                None => {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            return Err(PeerError::NotReady {
                peer,
                waited: started.elapsed(),
                reason,
                log: log(),
            });
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        // The group takes the per-connection children too (vsftpd forks one per session).
        if let Ok(pid) = i32::try_from(self.child.id()) {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = kill_process_group(pid, Signal::KILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to `addr` with bounded connect and read timeouts.
pub(crate) fn connect(addr: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(stream)
}
