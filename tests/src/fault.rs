//! Fault injection for the fault-matrix tests (`tests/fault_matrix.rs`): a TCP proxy that can
//! reset a connection in the middle of a transfer, a scripted plaintext server that answers a
//! download with `421`, a storage wrapper whose disk fills up, a small tmpfs, child processes
//! that can be killed with SIGKILL, and the process's own file-descriptor and thread counts
//! (for leak checks).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ftps_proto::server::{DirEntry, FsError};
use ftps_std::server::{Download, Listing, Storage, Upload};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// What this process holds: open file descriptors and threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// Entries of /proc/self/fd.
    pub fds: usize,
    /// Entries of /proc/self/task.
    pub threads: usize,
}

impl Resources {
    /// Counts them now.
    ///
    /// # Panics
    ///
    /// When /proc cannot be read (these tests need Linux).
    pub fn now() -> Self {
        let count = |dir: &str| std::fs::read_dir(dir).expect("read /proc/self").count();
        Self {
            fds: count("/proc/self/fd"),
            threads: count("/proc/self/task"),
        }
    }

    /// Waits up to `within` until the counts are back to `self` (threads and sockets end
    /// asynchronously after a fault); returns the last counts on failure.
    ///
    /// # Errors
    ///
    /// The counts seen at the deadline, with the descriptors' targets, when they differ.
    pub fn wait_back(self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let now = Self::now();
            if now == self {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let targets: Vec<String> = std::fs::read_dir("/proc/self/fd")
                    .map(|d| {
                        d.filter_map(Result::ok)
                            .filter_map(|e| std::fs::read_link(e.path()).ok())
                            .map(|p| p.display().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(format!(
                    "expected {self:?}, still {now:?} after {within:?}; descriptors: {targets:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A TCP proxy on `listen` to `target`, one thread per connection, that resets both sides of
/// a connection (SO_LINGER 0, then close: an RST each way) when asked or after a number of
/// bytes towards the client.
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    reset: Arc<AtomicBool>,
    resets: Arc<AtomicU64>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("addr", &self.addr).finish()
    }
}

impl Proxy {
    /// Listens on `listen` (port 0: any) and forwards each connection to `target`. With
    /// `reset_after`, a connection is reset once that many bytes went towards the client.
    ///
    /// # Errors
    ///
    /// When `listen` cannot be bound.
    pub fn start(
        listen: SocketAddr,
        target: SocketAddr,
        reset_after: Option<u64>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let reset = Arc::new(AtomicBool::new(false));
        let resets = Arc::new(AtomicU64::new(0));
        let (stop2, reset2, resets2) = (Arc::clone(&stop), Arc::clone(&reset), Arc::clone(&resets));
        let accept = std::thread::spawn(move || {
            let mut connections: Vec<JoinHandle<()>> = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(target) else {
                            continue;
                        };
                        let (stop, reset, resets) = (
                            Arc::clone(&stop2),
                            Arc::clone(&reset2),
                            Arc::clone(&resets2),
                        );
                        connections.push(std::thread::spawn(move || {
                            relay(client, server, reset_after, &stop, &reset, &resets);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for c in connections {
                let _ = c.join();
            }
        });
        Ok(Self {
            addr,
            stop,
            reset,
            resets,
            accept: Some(accept),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resets every connection now (and every later one).
    pub fn reset_now(&self) {
        self.reset.store(true, Ordering::SeqCst);
    }

    /// Connections reset so far.
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Moves bytes both ways until both ends closed, the proxy stops, or a reset is due.
fn relay(
    client: TcpStream,
    server: TcpStream,
    reset_after: Option<u64>,
    stop: &AtomicBool,
    reset: &AtomicBool,
    resets: &AtomicU64,
) {
    let mut to_client = 0u64;
    let (mut client_open, mut server_open) = (true, true);
    let mut buf = vec![0u8; 16 * 1024];
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    while (client_open || server_open) && !stop.load(Ordering::SeqCst) {
        if reset.load(Ordering::SeqCst) || reset_after.is_some_and(|n| to_client >= n) {
            // SO_LINGER 0: closing sends an RST instead of a FIN.
            let _ = rustix::net::sockopt::set_socket_linger(&client, Some(Duration::ZERO));
            let _ = rustix::net::sockopt::set_socket_linger(&server, Some(Duration::ZERO));
            resets.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let mut fds = [
            PollFd::new(
                &client,
                if client_open {
                    PollFlags::IN
                } else {
                    PollFlags::empty()
                },
            ),
            PollFd::new(
                &server,
                if server_open {
                    PollFlags::IN
                } else {
                    PollFlags::empty()
                },
            ),
        ];
        if poll(&mut fds, Some(&timeout)).is_err() {
            return;
        }
        let ready = [!fds[0].revents().is_empty(), !fds[1].revents().is_empty()];
        for (i, is_ready) in ready.into_iter().enumerate() {
            if !is_ready {
                continue;
            }
            let (mut from, mut to) = if i == 0 {
                (&client, &server)
            } else {
                (&server, &client)
            };
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown(Shutdown::Write);
                    if i == 0 {
                        client_open = false;
                    } else {
                        server_open = false;
                    }
                }
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    if i == 1 {
                        to_client += n as u64;
                    }
                }
            }
        }
    }
}

/// A plaintext FTP server for one session that sends part of a download and then `421`
/// (the service closes) instead of `226`, closing the data connection cleanly first, so the
/// data alone looks complete. Ends after that session.
pub struct Scripted421 {
    addr: SocketAddr,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for Scripted421 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted421")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Scripted421 {
    /// Listens on 127.0.0.1 and serves one session on a thread; `payload` bytes precede the 421.
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound.
    pub fn start(payload: usize) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let thread = std::thread::spawn(move || serve_421(&listener, payload));
        Ok(Self {
            addr,
            thread: Some(thread),
        })
    }

    /// The control address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the session to end.
    ///
    /// # Errors
    ///
    /// The server thread's I/O error.
    ///
    /// # Panics
    ///
    /// When the server thread panicked.
    pub fn join(mut self) -> io::Result<()> {
        self.thread
            .take()
            .map_or(Ok(()), |t| t.join().expect("scripted server"))
    }
}

fn serve_421(listener: &TcpListener, payload: usize) -> io::Result<()> {
    let (control, _) = listener.accept()?;
    control.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(control.try_clone()?);
    let mut out = control;
    out.write_all(b"220 scripted server\r\n")?;
    let mut data_listener: Option<TcpListener> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            // Plaintext only: the client was told it may go on without TLS.
            "AUTH" => out.write_all(b"502 no TLS here\r\n")?,
            "USER" => out.write_all(b"331 password\r\n")?,
            "PASS" => out.write_all(b"230 logged in\r\n")?,
            "FEAT" => out.write_all(b"211-Features:\r\n EPSV\r\n211 End\r\n")?,
            "EPSV" => {
                let l = TcpListener::bind("127.0.0.1:0")?;
                let port = l.local_addr()?.port();
                data_listener = Some(l);
                out.write_all(
                    format!("229 Entering Extended Passive Mode (|||{port}|)\r\n").as_bytes(),
                )?;
            }
            "RETR" => {
                let Some(l) = data_listener.take() else {
                    out.write_all(b"425 no data connection\r\n")?;
                    continue;
                };
                out.write_all(b"150 sending\r\n")?;
                let (mut data, _) = l.accept()?;
                let chunk = vec![b'x'; payload];
                data.write_all(&chunk)?;
                data.shutdown(Shutdown::Both)?;
                drop(data);
                // The service goes away mid-transfer: 421 instead of 226, then the close.
                out.write_all(b"421 Service not available, closing control connection\r\n")?;
                out.shutdown(Shutdown::Both)?;
                return Ok(());
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"200 ok\r\n")?,
        }
    }
}

/// A [`Storage`] whose disk is full after `capacity` bytes of uploads in progress: the write
/// that would pass it fails with [`FsError::NoSpace`] (ENOSPC), like a full file system.
pub struct FullDisk {
    inner: Arc<dyn Storage>,
    capacity: u64,
}

impl FullDisk {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Storage>, capacity: u64) -> Self {
        Self { inner, capacity }
    }
}

struct FillingUpload {
    inner: Box<dyn Upload>,
    left: u64,
}

impl Upload for FillingUpload {
    fn write(&mut self, bytes: &[u8]) -> Result<(), FsError> {
        let n = bytes.len() as u64;
        if n > self.left {
            return Err(FsError::NoSpace);
        }
        self.left -= n;
        self.inner.write(bytes)
    }

    fn commit(self: Box<Self>) -> Result<(), FsError> {
        self.inner.commit()
    }

    fn abort(self: Box<Self>) {
        self.inner.abort();
    }
}

impl Storage for FullDisk {
    fn change_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        self.inner.change_dir(path)
    }
    fn make_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        self.inner.make_dir(path)
    }
    fn remove_dir(&self, path: &[u8]) -> Result<(), FsError> {
        self.inner.remove_dir(path)
    }
    fn delete(&self, path: &[u8]) -> Result<(), FsError> {
        self.inner.delete(path)
    }
    fn rename(&self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        self.inner.rename(from, to)
    }
    fn entry(&self, path: &[u8]) -> Result<DirEntry, FsError> {
        self.inner.entry(path)
    }
    fn list(&self, path: &[u8]) -> Result<Listing, FsError> {
        self.inner.list(path)
    }
    fn open_read(&self, path: &[u8], offset: u64) -> Result<Download, FsError> {
        self.inner.open_read(path, offset)
    }
    fn open_write(
        &self,
        path: &[u8],
        offset: u64,
        append: bool,
    ) -> Result<Box<dyn Upload>, FsError> {
        let inner = self.inner.open_write(path, offset, append)?;
        Ok(Box::new(FillingUpload {
            inner,
            left: self.capacity,
        }))
    }
    fn open_unique(&self, dir: &[u8]) -> Result<(Vec<u8>, Box<dyn Upload>), FsError> {
        let (name, inner) = self.inner.open_unique(dir)?;
        let upload = FillingUpload {
            inner,
            left: self.capacity,
        };
        Ok((name, Box::new(upload)))
    }
}

/// A tmpfs of a few hundred KiB mounted on a fresh temporary directory, unmounted (and the
/// directory removed) on drop.
#[derive(Debug)]
pub struct SmallTmpfs {
    dir: Option<tempfile::TempDir>,
}

impl SmallTmpfs {
    /// Mounts `size_kib` KiB.
    ///
    /// # Errors
    ///
    /// A message saying why it could not be mounted (mount(8) needs root or CAP_SYS_ADMIN).
    pub fn mount(size_kib: u32) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {} — the disk-full cell needs root or CAP_SYS_ADMIN",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self { dir: Some(dir) })
    }

    /// The mount point.
    ///
    /// # Panics
    ///
    /// Never after `mount` succeeded.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("mounted").path()
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = Command::new("umount").arg(dir.path()).status();
            let _ = dir.close();
        }
    }
}

/// Names in `dir`, sorted.
///
/// # Panics
///
/// When `dir` cannot be read.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A child process running this same test binary in a role (`FAULT_MATRIX_CHILD=role`),
/// killed with SIGKILL on drop if still running; its stdout is read line by line.
pub struct ChildRole {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// Directories the child said it made (removed after it is killed: a killed process
    /// cleans nothing up).
    pub leftovers: Vec<PathBuf>,
}

impl std::fmt::Debug for ChildRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildRole")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl ChildRole {
    /// Starts `role` with the extra environment `env`.
    ///
    /// # Errors
    ///
    /// When the process cannot be started.
    pub fn spawn(role: &str, env: &[(&str, String)]) -> io::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env("FAULT_MATRIX_CHILD", role)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn()?;
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Self {
            child,
            stdout,
            leftovers: Vec::new(),
        })
    }

    /// The next line the child printed (without the newline); `None` at its end. Bounded by
    /// the child's own timeouts: a child that hangs is killed by the caller's deadline.
    ///
    /// # Errors
    ///
    /// When reading the pipe fails.
    pub fn line(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end().to_owned()))
    }

    /// Reads lines until one starts with `prefix`; returns the rest of it.
    ///
    /// # Errors
    ///
    /// When the child ends first.
    pub fn expect_line(&mut self, prefix: &str) -> io::Result<String> {
        while let Some(line) = self.line()? {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_owned());
            }
        }
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the child ended before printing {prefix:?}"),
        ))
    }

    /// SIGKILL, reaped, and its leftover directories removed.
    pub fn kill(mut self) {
        self.kill_in_place();
    }

    fn kill_in_place(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in self.leftovers.drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for ChildRole {
    fn drop(&mut self) {
        self.kill_in_place();
    }
}

/// A `Write` sink for downloads that counts bytes, sleeps after each write, and calls a hook
/// once the count passes a threshold (to kill or cut something mid-transfer).
pub struct SlowSink {
    /// Bytes written.
    pub bytes: Vec<u8>,
    /// Sleep after each write.
    pub pause: Duration,
    /// Called once when `bytes.len()` first reaches `threshold`.
    pub hook: Option<(usize, Box<dyn FnOnce() + Send>)>,
}

impl std::fmt::Debug for SlowSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowSink")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Write for SlowSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        if self
            .hook
            .as_ref()
            .is_some_and(|(threshold, _)| self.bytes.len() >= *threshold)
        {
            if let Some((_, hook)) = self.hook.take() {
                hook();
            }
        }
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Read` source for uploads: `total` bytes of a pattern, a pause after each read, and a
/// hook called once after `threshold` bytes were handed out.
pub struct SlowSource {
    /// Bytes still to hand out.
    pub left: u64,
    /// Bytes handed out.
    pub given: u64,
    /// Sleep before each read.
    pub pause: Duration,
    /// Called once when `given` first reaches the threshold.
    pub hook: Option<(u64, Box<dyn FnOnce() + Send>)>,
}

impl std::fmt::Debug for SlowSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowSource")
            .field("given", &self.given)
            .finish()
    }
}

impl Read for SlowSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX))
            .min(64 * 1024);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = ((self.given + i as u64) % 251) as u8;
        }
        self.left -= n as u64;
        self.given += n as u64;
        if self.hook.as_ref().is_some_and(|(t, _)| self.given >= *t) {
            if let Some((_, hook)) = self.hook.take() {
                hook();
            }
        }
        Ok(n)
    }
}
