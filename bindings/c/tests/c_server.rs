//! `examples/ftps-serve.c`, the read-only FTPS server in C, served to real clients: curl lists
//! the directory (LIST, NLST), asks SIZE/MDTM (`-I`) and downloads files concurrently (one of
//! 4 MiB, one named with a space, one in a subdirectory), lftp downloads in active mode (the
//! server connects) and lists with MLSD; every byte is compared. Plain, under valgrind (the
//! server must exit 0 after `--max-sessions` with no leak or error) and with ASan. Changes
//! are refused and paths stay inside the root.
//!
//! Every wait is bounded: the server's start (its ready line), each client run (curl
//! `--max-time`, lftp's run limit) and the server's exit; the server is killed when a test
//! fails.

// `tests/common` is shared by the C programs' tests; its items are `pub` for them.
#![allow(unreachable_pub)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Flavour, command, compiled};
use ftps_tests::data::payload;
use ftps_tests::peers::{Curl, Endpoint, Lftp, TestPki, TlsMode};

const USER: &str = "reader";
const PASSWORD: &str = "c-server-secret";
const BIG: usize = 4 * 1024 * 1024;

/// How long the server may take to print its ready line (valgrind starts slowly).
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long the server may take to exit after its last session.
const EXIT_LIMIT: Duration = Duration::from_secs(120);

/// The files served, the certificate, and the client's view.
struct Fixture {
    dir: tempfile::TempDir,
    pki: TestPki,
    big: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca_cert_pem).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &pki.server_cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &pki.server_key_pem).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let big = payload(BIG, 7);
        std::fs::write(root.join("big.bin"), &big).unwrap();
        std::fs::write(root.join("with space.txt"), b"a name with a space\n").unwrap();
        std::fs::write(root.join("sub/nested.txt"), payload(100_000, 8)).unwrap();
        std::fs::create_dir(dir.path().join("local")).unwrap();
        Self { dir, pki, big }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A directory outside the root, for the clients' files.
    fn local(&self) -> PathBuf {
        self.dir.path().join("local")
    }

    fn endpoint(&self, addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            tls_mode: TlsMode::Explicit,
            user: USER.to_owned(),
            password: PASSWORD.to_owned(),
            root_dir: self.root(),
            ca_cert_pem: self.pki.ca_cert_pem.clone(),
            ca_cert_path: self.dir.path().join("ca.pem"),
        }
    }
}

/// A running ftps-serve; killed on drop unless it exited.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Option<JoinHandle<String>>,
    exited: bool,
}

impl Server {
    fn start(flavour: Flavour, fixture: &Fixture, max_sessions: u32) -> Self {
        let exe = compiled("ftps-serve", &["examples/ftps-serve.c"], flavour);
        let dir = fixture.dir.path();
        let mut cmd = command(&exe, flavour);
        cmd.arg("--root")
            .arg(fixture.root())
            .arg("--cert")
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"))
            .args(["--user", USER, "--port", "0", "--max-sessions"])
            .arg(max_sessions.to_string())
            .env("FTPS_SERVE_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("ftps-serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut server = Self {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            stderr: Some(stderr),
            exited: false,
        };
        let line = match ready.recv_timeout(START_LIMIT) {
            Ok(line) => line,
            Err(e) => server.fail(&format!("no ready line within {START_LIMIT:?}: {e}")),
        };
        let Some(addr) = line.strip_prefix("ftps-serve: listening on ") else {
            server.fail(&format!("unexpected first line {line:?}"))
        };
        server.addr = addr.parse().unwrap();
        server
    }

    /// Kills the server and panics with `what` and its stderr.
    fn fail(&mut self, what: &str) -> ! {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exited = true;
        }
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default());
        panic!(
            "{what}\n--- ftps-serve stderr ---\n{}",
            stderr.unwrap_or_default()
        );
    }

    /// The value of a client run, or the failure with the server's log.
    fn expect<T, E: std::fmt::Debug>(&mut self, result: Result<T, E>, what: &str) -> T {
        match result {
            Ok(value) => value,
            Err(e) => self.fail(&format!("{what}: {e:?}")),
        }
    }

    /// Waits (bounded) for the server to exit after its last session; its status and stderr.
    fn wait(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + EXIT_LIMIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = true;
                    let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
                    return (status, stderr);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => self.fail(&format!("did not exit within {EXIT_LIMIT:?}")),
                Err(e) => self.fail(&format!("wait: {e}")),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asserts a clean exit: status 0 and (valgrind, ASan) no report on stderr.
fn assert_clean_exit(flavour: Flavour, status: ExitStatus, stderr: &str) {
    assert!(
        status.success(),
        "ftps-serve exited with {status}:\n{stderr}"
    );
    for marker in [
        "==ERROR",
        "LeakSanitizer",
        "runtime error",
        "definitely lost",
        "==WARNING",
    ] {
        assert!(
            !stderr.contains(marker),
            "{flavour:?}: {marker} in ftps-serve's stderr:\n{stderr}"
        );
    }
}

/// The lines of a curl listing whose last field is `name`.
fn lists(listing: &str, name: &str) -> bool {
    listing
        .lines()
        .any(|line| line.trim_end().ends_with(&format!(" {name}")) || line.trim_end() == name)
}

/// Lists, downloads and checks everything the server offers; then the server must exit
/// cleanly after its sessions.
fn serves_a_directory(flavour: Flavour) {
    let fixture = Fixture::new();
    compiled("ftps-serve", &["examples/ftps-serve.c"], flavour);
    let started = Instant::now();
    // LIST, NLST, HEAD (SIZE + MDTM), three concurrent downloads, lftp active + MLSD.
    let mut server = Server::start(flavour, &fixture, 7);
    let endpoint = fixture.endpoint(server.addr);
    let curl = Curl::new(&endpoint);

    let listing = server.expect(curl.list(), "curl LIST");
    for name in ["big.bin", "with space.txt", "sub"] {
        assert!(
            lists(&listing, name),
            "{name} not in the listing:\n{listing}"
        );
    }
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('d') && l.ends_with(" sub")),
        "{listing}"
    );

    let names = server.expect(curl.run(&endpoint.url(""), &["--list-only"]), "curl NLST");
    let names = String::from_utf8_lossy(&names.stdout).into_owned();
    let mut names: Vec<&str> = names.lines().map(str::trim_end).collect();
    names.sort_unstable();
    assert_eq!(names, ["big.bin", "sub", "with space.txt"]);

    let head = server.expect(curl.run(&endpoint.url("big.bin"), &["-I"]), "curl -I");
    let head = String::from_utf8_lossy(&head.stdout).into_owned();
    assert!(
        head.contains(&format!("Content-Length: {BIG}")),
        "SIZE: {head}"
    );
    assert!(head.contains("Last-Modified: "), "MDTM: {head}");

    // Three sessions at once.
    let remotes = ["big.bin", "with%20space.txt", "sub/nested.txt"];
    let downloads: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = remotes
            .iter()
            .map(|remote| scope.spawn(|| curl.download(remote)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let expected = [
        fixture.big.clone(),
        std::fs::read(fixture.root().join("with space.txt")).unwrap(),
        std::fs::read(fixture.root().join("sub/nested.txt")).unwrap(),
    ];
    for ((remote, got), want) in remotes.iter().zip(downloads).zip(expected.iter()) {
        let got = server.expect(got, &format!("curl download {remote}"));
        assert!(
            got == *want,
            "{remote}: {} bytes back, {} expected",
            got.len(),
            want.len()
        );
    }

    // Active mode: the server connects to lftp (curl 7.88's active mode is broken:
    // "sa_addr inet_ntop() failed"). And MLSD.
    let lftp = Lftp::new(&endpoint).set("ftp:passive-mode", "off");
    let run = server.expect(
        lftp.run_ok(
            &fixture.local(),
            "get sub/nested.txt -o active.txt\ncls -l /sub",
        ),
        "lftp active",
    );
    assert!(
        run.sent_commands()
            .iter()
            .any(|c| c.starts_with("PORT ") || c.starts_with("EPRT ")),
        "{}",
        run.report()
    );
    assert!(run.stdout.contains("nested.txt"), "{}", run.report());
    assert!(
        std::fs::read(fixture.local().join("active.txt")).unwrap() == expected[2],
        "active download differs"
    );

    let (status, stderr) = server.wait();
    assert_clean_exit(flavour, status, &stderr);
    assert_eq!(stderr.matches("login granted").count(), 7, "{stderr}");
    assert!(stderr.contains("7 session(s) served"), "{stderr}");
    eprintln!("{flavour:?}: served in {:?}", started.elapsed());
}

#[test]
fn serves_a_directory_plain() {
    serves_a_directory(Flavour::Plain);
}

#[test]
fn serves_a_directory_under_valgrind() {
    serves_a_directory(Flavour::Valgrind);
}

#[test]
fn serves_a_directory_with_asan() {
    serves_a_directory(Flavour::Asan);
}

/// Uploads, directory changes and paths out of the root are refused; nothing appears.
#[test]
fn changes_and_escapes_are_refused() {
    let fixture = Fixture::new();
    let mut server = Server::start(Flavour::Plain, &fixture, 4);
    let endpoint = fixture.endpoint(server.addr);
    let curl = Curl::new(&endpoint);
    let before = entries(&fixture.root());

    let local = fixture.local().join("upload.bin");
    std::fs::write(&local, payload(50_000, 9)).unwrap();
    assert!(curl.upload(&local, "upload.bin").is_err(), "STOR accepted");
    assert!(!fixture.root().join("upload.bin").exists());

    let root_url = endpoint.url("");
    for (quote, what) in [("MKD made", "MKD"), ("DELE big.bin", "DELE")] {
        let out = server.expect(curl.run(&root_url, &["-Q", quote]), what);
        assert!(!out.status.success(), "{what} accepted");
    }
    assert!(fixture.root().join("big.bin").exists());
    assert_eq!(entries(&fixture.root()), before);

    // `..` above the root is refused (curl's `%2E%2E` becomes `CWD ..` at the root).
    let escape = format!("ftp://{}/%2E%2E/etc/passwd", endpoint.addr);
    let out = server.expect(curl.run(&escape, &[]), "curl ..");
    assert!(!out.status.success(), "escaped the root");
    assert!(out.stdout.is_empty());

    let (status, stderr) = server.wait();
    assert_clean_exit(Flavour::Plain, status, &stderr);
}

/// The sorted names in `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
