//! `ftps serve`, `ftps hash-password` and `ftps demo` as a user runs them: the binary's own
//! server on 127.0.0.1 with a free port, reached by the binary's client commands, curl and
//! Python's ftplib. Every server started here is killed when its guard drops.

use ftps_tests::data::payload;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftps_proto::tls::certificates_from_pem;
use sha2::{Digest, Sha256};

/// No command may take longer than this (everything is local).
const DEADLINE: Duration = Duration::from_secs(60);
/// How long a server may take to print its `ready` line.
const STARTUP: Duration = Duration::from_secs(20);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits for `child` at most [`DEADLINE`], killing it when it overstays.
fn wait_bounded(child: &mut Child, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `program args`, feeding `stdin`; output collected, time bounded.
fn run_program(program: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A program that does not read its input closes the pipe; that is fine.
        let _ = input.write_all(&stdin);
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).map(|_| buf)
    });
    let status = wait_bounded(&mut child, &format!("{program} {args:?}"));
    writer.join().unwrap();
    Output {
        status,
        stdout: out_reader.join().unwrap().unwrap(),
        stderr: err_reader.join().unwrap().unwrap(),
    }
}

fn ftps(args: &[&str]) -> Output {
    run_program(env!("CARGO_BIN_EXE_ftps"), args, b"")
}

#[track_caller]
fn expect_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn write_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(root.join("big.bin"), payload(400_000, 7)).unwrap();
    std::fs::write(root.join("sub/b.bin"), payload(70_000, 11)).unwrap();
    std::fs::write(root.join("sub/deeper/c.txt"), b"gamma").unwrap();
}

#[track_caller]
fn assert_same_files(left: &Path, right: &Path, files: &[&str]) {
    for file in files {
        assert_eq!(
            std::fs::read(left.join(file)).unwrap(),
            std::fs::read(right.join(file)).unwrap(),
            "{file}"
        );
    }
}

/// A running `ftps serve`; killed (and reaped) on drop.
struct Served {
    child: Child,
    /// The startup lines (stdout up to and including `ready`).
    startup: Vec<String>,
    port: u16,
    /// The generated password, when one was printed.
    password: Option<String>,
    /// Where the self-signed certificate was saved.
    cert: PathBuf,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts `ftps serve DIR --listen 127.0.0.1:0 --cert-out CERT EXTRA...` and waits for its
    /// startup block. With `--cert` in `extra`, `cert` is the CA clients trust instead. When
    /// `cert` is a directory, it is the server's TMPDIR and the server names the file.
    fn start(dir: &Path, cert: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["serve".to_owned(), dir.display().to_string()];
        let temp_dir = cert.is_dir();
        if !extra.contains(&"--cert") && !temp_dir {
            args.extend(["--cert-out".to_owned(), cert.display().to_string()]);
        }
        if !extra.iter().any(|a| a.contains("listen")) {
            args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        args.extend(extra.iter().map(|&a| a.to_owned()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_ftps"));
        if temp_dir {
            command.env("TMPDIR", cert);
        }
        let mut child = command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ftps serve");
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Self {
            child,
            startup: Vec::new(),
            port: 0,
            password: None,
            cert: cert.to_owned(),
            stderr,
        };
        let started = Instant::now();
        loop {
            let left = STARTUP.saturating_sub(started.elapsed());
            match received.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("ftps serve: ready");
                    served.startup.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => panic!(
                    "no ready line from ftps serve {args:?}; stdout so far: {:?}; stderr: {}",
                    served.startup,
                    served.stderr_text()
                ),
            }
        }
        // "ftps serve: listening on 127.0.0.1:PORT for ..."
        served.port = served
            .startup
            .iter()
            .find_map(|l| l.strip_prefix("ftps serve: listening on 127.0.0.1:"))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no listening line in {:?}", served.startup));
        if temp_dir {
            served.cert = served
                .startup
                .iter()
                .find_map(|l| l.split_once(", saved to "))
                .map(|(_, path)| PathBuf::from(path))
                .unwrap_or_else(|| panic!("no saved-to line in {:?}", served.startup));
        }
        served.password = served.startup.iter().find_map(|l| {
            l.split_once(", password ")
                .map(|(_, password)| password.to_owned())
        });
        served
    }

    fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}/{path}", self.port)
    }

    fn stderr_text(&self) -> String {
        text(&self.stderr.lock().unwrap())
    }

    /// Waits (bounded) for a session log line on stderr containing every one of `parts`.
    #[track_caller]
    fn expect_log(&self, parts: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let stderr = self.stderr_text();
            if let Some(line) = stderr
                .lines()
                .find(|line| parts.iter().all(|part| line.contains(part)))
            {
                return line.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no log line with {parts:?} in:\n{stderr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ftps ARGS --cacert CERT --user USER:PASSWORD --timeout 20`.
    fn client(&self, user: &str, password: &str, args: &[&str]) -> Output {
        self.client_with(user, password, args, &[])
    }

    /// [`client`](Self::client) with more options (a client certificate).
    fn client_with(&self, user: &str, password: &str, args: &[&str], more: &[&str]) -> Output {
        let credentials = format!("{user}:{password}");
        let cacert = self.cert.display().to_string();
        let mut all = args.to_vec();
        all.extend([
            "--cacert",
            &cacert,
            "--user",
            &credentials,
            "--timeout",
            "20",
        ]);
        all.extend_from_slice(more);
        ftps(&all)
    }

    /// [`client`](Self::client) as the generated `ftps` user.
    fn as_ftps(&self, args: &[&str]) -> Output {
        let password = self.password.clone().expect("a generated password");
        self.client("ftps", &password, args)
    }
}

#[test]
fn demo_runs_every_step_and_says_ok() {
    let out = ftps(&["demo"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("demo: OK — 33554432 bytes"), "{stdout}");
    for expected in [
        "AUTH TLS: TLS 1.3",
        "server certificate is the one made above",
        "STOR demo.bin: 33554432 bytes",
        "RETR demo.bin: 33554432 bytes",
        "REST 16777216 + RETR demo.bin: 16777216 bytes",
        "resumed download: SHA-256",
        "demo.bin",
        // The server's side of the same steps, from its session log.
        "server: #1 127.0.0.1:",
        "logged in as demo",
        "upload /demo.bin 33554432 bytes",
        "download /demo.bin 16777216 bytes",
        "closed after QUIT",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing in {stdout}"
        );
    }
    assert_eq!(
        stdout
            .matches("data TLS resumed the control session")
            .count(),
        3,
        "{stdout}"
    );
    // No progress bar on a pipe.
    assert!(!text(&out.stderr).contains("[="), "{}", text(&out.stderr));
}

#[test]
fn demo_keep_leaves_identical_files_behind() {
    let out = ftps(&["demo", "--size", "100K", "--keep"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo: kept the files in "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no kept path in {stdout}"));
    let original = std::fs::read(kept.join("client/upload.bin")).unwrap();
    assert_eq!(original.len(), 100 << 10);
    assert_eq!(
        std::fs::read(kept.join("server/demo.bin")).unwrap(),
        original
    );
    assert_eq!(
        std::fs::read(kept.join("client/download.bin")).unwrap(),
        original
    );
    std::fs::remove_dir_all(&kept).unwrap();
    expect_code(&ftps(&["demo", "--size", "1"]), 1);
}

#[test]
fn demo_failure_is_a_verdict_and_an_exit_code() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["demo", "--size", "4K"])
        .env("TMPDIR", "/nonexistent/ftps-demo-test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, "ftps demo");
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(6), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("demo: FAILED — /nonexistent/ftps-demo-test"),
        "{stdout}"
    );
}

#[test]
fn read_only_server_with_generated_certificate_and_password() {
    let root = tempfile::tempdir().unwrap();
    write_tree(root.path());
    let local = tempfile::tempdir().unwrap();
    let cert = local.path().join("cert.pem");
    let server = Served::start(root.path(), &cert, &[]);
    let startup = server.startup.join("\n");
    let password = server.password.clone().expect("a generated password");
    assert_eq!(password.len(), 16, "{startup}");
    assert!(startup.contains("read-only"), "{startup}");
    assert!(
        startup.contains("ftps serve: user ftps, password "),
        "{startup}"
    );

    // The printed fingerprint is the SHA-256 of the saved certificate, which holds no key.
    let pem = std::fs::read_to_string(&cert).unwrap();
    assert!(!pem.contains("PRIVATE"), "{pem}");
    let der = certificates_from_pem(pem.as_bytes()).unwrap().remove(0);
    let fingerprint: Vec<String> = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(
        startup.contains(&format!(
            "ftps serve: SHA-256 fingerprint {}",
            fingerprint.join(":")
        )),
        "{startup}"
    );

    // The printed command works as printed (with the password added to the URL).
    let command = server
        .startup
        .iter()
        .find_map(|l| l.strip_prefix("ftps serve: try: "))
        .expect("a try line");
    let expected = format!(
        "ftps ls --cacert {} ftp://ftps@127.0.0.1:{}/",
        cert.display(),
        server.port
    );
    assert_eq!(command, expected);
    let words: Vec<String> = command
        .replace("ftps@", &format!("ftps:{password}@"))
        .split(' ')
        .skip(1)
        .map(str::to_owned)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let out = ftps(&words);
    expect_code(&out, 0);
    let listing = text(&out.stdout);
    assert!(listing.lines().any(|l| l.ends_with(" a.txt")), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('d') && l.ends_with(" sub")),
        "{listing}"
    );

    // get, get -C from a partial file, get -r.
    let dest = local.path().join("a.txt");
    expect_code(
        &server.as_ftps(&["get", &server.url("a.txt"), dest.to_str().unwrap()]),
        0,
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"alpha\n");
    let big = std::fs::read(root.path().join("big.bin")).unwrap();
    let partial = local.path().join("big.bin");
    std::fs::write(&partial, &big[..150_001]).unwrap();
    expect_code(
        &server.as_ftps(&[
            "get",
            "-C",
            &server.url("big.bin"),
            partial.to_str().unwrap(),
        ]),
        0,
    );
    assert_eq!(std::fs::read(&partial).unwrap(), big);
    let tree = local.path().join("tree");
    expect_code(
        &server.as_ftps(&["get", "-r", &server.url("sub"), tree.to_str().unwrap()]),
        0,
    );
    assert_same_files(&root.path().join("sub"), &tree, &["b.bin", "deeper/c.txt"]);

    // curl, trusting the saved certificate.
    let credentials = format!("ftps:{password}");
    let out = run_program(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "--max-time",
            "20",
            "--cacert",
            cert.to_str().unwrap(),
            "--user",
            &credentials,
            &server.url("sub/b.bin"),
        ],
        b"",
    );
    expect_code(&out, 0);
    assert_eq!(out.stdout, payload(70_000, 11));

    // Read-only: uploads, deletes and new directories are refused (exit 4); nothing changes.
    let source = local.path().join("new.txt");
    std::fs::write(&source, b"new").unwrap();
    let out = server.as_ftps(&["put", source.to_str().unwrap(), &server.url("")]);
    expect_code(&out, 4);
    assert!(text(&out.stderr).contains("550"), "{}", text(&out.stderr));
    expect_code(&server.as_ftps(&["rm", &server.url("a.txt")]), 4);
    expect_code(&server.as_ftps(&["mkdir", &server.url("made")]), 4);
    assert!(!root.path().join("new.txt").exists());
    assert!(root.path().join("a.txt").exists());
    assert!(!root.path().join("made").exists());

    // A wrong password: exit 3.
    let out = server.client("ftps", "not-the-password", &["ls", &server.url("")]);
    expect_code(&out, 3);

    // One log line per session event on stderr: connection, TLS, login, each transfer with
    // its size and data-session resumption, refused logins; the password never.
    server.expect_log(&["connected (explicit FTPS)"]);
    server.expect_log(&["TLS established: TLSv1.3"]);
    server.expect_log(&["logged in as ftps"]);
    server.expect_log(&["listing / "]);
    server.expect_log(&["download /a.txt 6 bytes in ", "ok, data TLS resumed"]);
    // The resumed download moved only the second part.
    server.expect_log(&["download /big.bin 249999 bytes", "ok"]);
    server.expect_log(&["login refused for ftps"]);
    server.expect_log(&["closed after QUIT"]);
    // Refused file operations, with the path and the reason.
    server.expect_log(&[r#"refused: upload "/new.txt" — permission denied"#]);
    server.expect_log(&[r#"refused: delete "/a.txt" — permission denied"#]);
    server.expect_log(&[r#"refused: mkdir "/made" — permission denied"#]);
    let stderr = server.stderr_text();
    assert!(
        stderr
            .lines()
            .all(|l| l.len() > 9 && l.as_bytes()[5] == b':' && l[8..].starts_with(" #")),
        "every line is `HH:MM:SS #N PEER ...`: {stderr}"
    );
    assert!(!stderr.contains(&password), "{stderr}");
}

#[test]
fn writable_server_takes_uploads_from_ftps_and_curl() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    write_tree(local.path());
    let cert = local.path().join("cert.pem");
    let server = Served::start(
        root.path(),
        &cert,
        &["--write", "--user", "writer:pass word:with colon"],
    );
    let startup = server.startup.join("\n");
    assert!(startup.contains("(read-write)"), "{startup}");
    assert!(
        startup.contains("ftps serve: user writer, as given with --user"),
        "{startup}"
    );
    assert!(!startup.contains("pass word"), "{startup}");
    let put = |args: &[&str]| server.client("writer", "pass word:with colon", args);

    let a = local.path().join("a.txt");
    expect_code(&put(&["put", a.to_str().unwrap(), &server.url("")]), 0);
    assert_eq!(
        std::fs::read(root.path().join("a.txt")).unwrap(),
        b"alpha\n"
    );
    let sub = local.path().join("sub");
    expect_code(
        &put(&["put", "-r", sub.to_str().unwrap(), &server.url("")]),
        0,
    );
    assert_same_files(
        &local.path().join("sub"),
        &root.path().join("sub"),
        &["b.bin", "deeper/c.txt"],
    );
    let out = run_program(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "--max-time",
            "20",
            "--cacert",
            cert.to_str().unwrap(),
            "--user",
            "writer:pass word:with colon",
            "-T",
            local.path().join("big.bin").to_str().unwrap(),
            &server.url("from-curl.bin"),
        ],
        b"",
    );
    expect_code(&out, 0);
    assert_eq!(
        std::fs::read(root.path().join("from-curl.bin")).unwrap(),
        std::fs::read(local.path().join("big.bin")).unwrap()
    );
    expect_code(&put(&["rm", &server.url("a.txt")]), 0);
    assert!(!root.path().join("a.txt").exists());
    server.expect_log(&["upload /a.txt 6 bytes", "ok, data TLS resumed"]);
    server.expect_log(&["upload /sub/deeper/c.txt 5 bytes", "ok"]);
    server.expect_log(&["upload /from-curl.bin 400000 bytes", "ok, data TLS resumed"]);
    // Every change to the file system has its line.
    server.expect_log(&[r#" mkdir "/sub" ok"#]);
    server.expect_log(&[r#" mkdir "/sub/deeper" ok"#]);
    server.expect_log(&[r#" delete "/a.txt" ok"#]);
    let stderr = server.stderr_text();
    assert!(!stderr.contains("pass word"), "{stderr}");
}

#[test]
fn users_file_made_by_hash_password() {
    let local = tempfile::tempdir().unwrap();
    let out = run_program(
        env!("CARGO_BIN_EXE_ftps"),
        &["hash-password", "--user", "alice"],
        b"correct horse\n",
    );
    expect_code(&out, 0);
    let line = text(&out.stdout);
    assert!(line.starts_with("alice:$argon2id$"), "{line}");
    assert!(!line.contains("correct horse"), "{line}");
    let out = run_program(env!("CARGO_BIN_EXE_ftps"), &["hash-password"], b"pw\n");
    expect_code(&out, 0);
    assert!(text(&out.stdout).starts_with("$argon2id$"));
    // Empty password, or a password given on the command line: usage errors.
    expect_code(
        &run_program(env!("CARGO_BIN_EXE_ftps"), &["hash-password"], b"\n"),
        1,
    );
    expect_code(&ftps(&["hash-password", "--user", "a:b"]), 1);

    let users = local.path().join("users");
    std::fs::write(&users, format!("# who may log in\n\n{line}")).unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("f.txt"), b"file").unwrap();
    let cert = local.path().join("cert.pem");
    let server = Served::start(root.path(), &cert, &["--users", users.to_str().unwrap()]);
    let startup = server.startup.join("\n");
    assert!(server.password.is_none(), "{startup}");
    assert!(startup.contains("1 user(s) from"), "{startup}");
    let out = server.client("alice", "correct horse", &["ls", &server.url("")]);
    expect_code(&out, 0);
    assert!(text(&out.stdout).contains("f.txt"));
    expect_code(
        &server.client("alice", "wrong horse", &["ls", &server.url("")]),
        3,
    );
    // No default user when a users file is given.
    expect_code(
        &server.client("ftps", "anything", &["ls", &server.url("")]),
        3,
    );
    let stderr = server.stderr_text();
    assert!(!stderr.contains("horse"), "{stderr}");
}

#[test]
fn implicit_listener_only() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("i.txt"), b"implicit").unwrap();
    let local = tempfile::tempdir().unwrap();
    let cert = local.path().join("cert.pem");
    let server = Served::start(root.path(), &cert, &["--implicit-listen", "127.0.0.1:0"]);
    let startup = server.startup.join("\n");
    assert!(startup.contains("for implicit FTPS"), "{startup}");
    assert!(!startup.contains("explicit"), "{startup}");
    assert!(
        startup.contains(&format!(
            "try: ftps ls --cacert {} ftps://ftps@127.0.0.1:{}/",
            cert.display(),
            server.port
        )),
        "{startup}"
    );
    let dest = local.path().join("i.txt");
    let url = format!("ftps://127.0.0.1:{}/i.txt", server.port);
    expect_code(&server.as_ftps(&["get", &url, dest.to_str().unwrap()]), 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"implicit");
}

/// Python's ftplib does not resume the control session on data connections: refused with the
/// default `--reuse required`, served with `--reuse optional` and `--reuse off` (where even a
/// client that would resume, this project's, gets full data handshakes).
#[test]
fn reuse_policy_decides_whether_ftplib_can_download() {
    const SCRIPT: &str = r#"
import ftplib, ssl, sys
port, password, cafile = sys.argv[1:4]
ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=cafile), timeout=20)
ftp.connect("127.0.0.1", int(port))
ftp.login("ftps", password)
ftp.prot_p()
chunks = []
try:
    ftp.retrbinary("RETR r.txt", chunks.append)
except ftplib.all_errors as error:
    print("error:", error)
    # A refused data handshake fails first; the server's reason follows on the control line.
    try:
        print("reply:", ftp.getresp())
    except ftplib.all_errors as reply:
        print("reply:", reply)
    sys.exit(3)
print("got:", b"".join(chunks).decode())
ftp.quit()
"#;
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("r.txt"), b"reused?").unwrap();
    let local = tempfile::tempdir().unwrap();
    for (reuse, code, expected) in [
        ("required", 3, "522"),
        ("optional", 0, "got: reused?"),
        ("off", 0, "got: reused?"),
    ] {
        let cert = local.path().join(format!("{reuse}.pem"));
        let server = Served::start(root.path(), &cert, &["--reuse", reuse]);
        let port = server.port.to_string();
        let password = server.password.clone().unwrap();
        let out = run_program(
            "python3",
            &["-c", SCRIPT, &port, &password, cert.to_str().unwrap()],
            b"",
        );
        expect_code(&out, code);
        assert!(
            text(&out.stdout).contains(expected),
            "{reuse}: {}",
            text(&out.stdout)
        );
        if reuse == "required" {
            server.expect_log(&["refused: data connection TLS did not resume"]);
        } else {
            server.expect_log(&["download /r.txt 7 bytes", "ok, data TLS not resumed"]);
        }
        if reuse == "off" {
            let dest = local.path().join("off.txt");
            let url = format!("ftp://ftps:{password}@127.0.0.1:{port}/r.txt");
            let out = run_program(
                env!("CARGO_BIN_EXE_ftps"),
                &[
                    "--cacert",
                    cert.to_str().unwrap(),
                    "-v",
                    "get",
                    &url,
                    dest.to_str().unwrap(),
                ],
                b"",
            );
            expect_code(&out, 0);
            assert_eq!(std::fs::read(&dest).unwrap(), b"reused?");
            assert!(
                text(&out.stderr).contains("* data connection: TLS, full handshake (not resumed)"),
                "{}",
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn bad_set_ups_are_refused_before_serving() {
    let root = tempfile::tempdir().unwrap();
    let cert = root.path().join("cert.pem");
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", root.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend(["--cert-out", cert.to_str().unwrap()]);
        ftps(&args)
    };
    // The server takes its own options, not the client's.
    let help = ftps(&["serve", "--help"]);
    expect_code(&help, 0);
    let help = text(&help.stdout);
    assert!(
        help.contains("--write") && help.contains("--reuse"),
        "{help}"
    );
    assert!(
        !help.contains("--insecure") && !help.contains("--prot"),
        "{help}"
    );
    expect_code(&serve(&["--insecure"]), 1);
    let out = ftps(&["-q", "demo"]);
    expect_code(&out, 1);
    assert!(
        text(&out.stderr).contains("the options of `ftps demo` go after its name"),
        "{}",
        text(&out.stderr)
    );
    expect_code(&ftps(&["demo", "-q", "--size", "2"]), 0);
    expect_code(&serve(&["--anonymous", "--write"]), 1);
    expect_code(&serve(&["--passive-ports", "9-8"]), 1);
    expect_code(&serve(&["--reuse", "sometimes"]), 1);
    let users = root.path().join("users");
    std::fs::write(&users, "alice:not-a-hash\n").unwrap();
    let out = serve(&["--users", users.to_str().unwrap()]);
    expect_code(&out, 1);
    assert!(
        text(&out.stderr).contains("line 1 (alice)"),
        "{}",
        text(&out.stderr)
    );
    let out = ftps(&["serve", "/no/such/dir"]);
    expect_code(&out, 6);
    // A port in use: exit 2 with a hint.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = serve(&["--listen", &addr]);
    expect_code(&out, 2);
    assert!(
        text(&out.stderr).contains("127.0.0.1:0"),
        "{}",
        text(&out.stderr)
    );
}

/// Ctrl-C (SIGINT) and SIGTERM stop the server cleanly (exit 0) and free its port, also when
/// the server was started with SIGINT ignored (as a non-interactive shell's background job is).
#[test]
fn interrupt_stops_the_server_and_frees_the_port() {
    let root = tempfile::tempdir().unwrap();
    let cert = root.path().join("cert.pem");
    for signal in ["-INT", "-TERM"] {
        let mut server = Served::start(root.path(), &cert, &[]);
        let pid = server.child.id().to_string();
        let out = run_program("kill", &[signal, &pid], b"");
        expect_code(&out, 0);
        let status = wait_bounded(&mut server.child, "ftps serve after the signal");
        assert!(status.success(), "{signal}: {status:?}");
        TcpListener::bind(("127.0.0.1", server.port)).expect("the port is free again");
    }
}

/// A CA and a client certificate it signed, as PEM: (CA, client certificate, client key).
fn client_pki() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "serve test client CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "alice");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// `--cert/--key` from a CA (clients trust the CA, no certificate file is written) and
/// `--client-ca`: a login needs a client certificate from that CA.
#[test]
fn given_certificate_and_required_client_certificate() {
    let pki = ftps_tests::peers::TestPki::generate().unwrap();
    let (client_ca, client_cert, client_key) = client_pki();
    let local = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = local.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = write("ca.pem", &pki.ca_cert_pem);
    let cert = write("server.pem", &pki.server_cert_pem);
    let key = write("server.key", &pki.server_key_pem);
    let client_ca = write("client-ca.pem", &client_ca);
    let client_cert = write("client.pem", &client_cert);
    let client_key = write("client.key", &client_key);
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("c.txt"), b"cert").unwrap();

    let server = Served::start(
        root.path(),
        &ca,
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--client-ca",
            client_ca.to_str().unwrap(),
            "--user",
            "alice:pw",
        ],
    );
    let startup = server.startup.join("\n");
    assert!(
        startup.contains(&format!("certificate from {}", cert.display())),
        "{startup}"
    );
    assert!(startup.contains("client certificate required"), "{startup}");
    assert!(!startup.contains("--cacert"), "{startup}");
    let url = server.url("c.txt");
    let dest = local.path().join("c.txt");
    let with_cert = [
        "--cert",
        client_cert.to_str().unwrap(),
        "--key",
        client_key.to_str().unwrap(),
    ];
    let out = server.client_with(
        "alice",
        "pw",
        &["get", &url, dest.to_str().unwrap()],
        &with_cert,
    );
    expect_code(&out, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"cert");
    // Without a client certificate the TLS handshake is refused: a connection failure.
    let out = server.client("alice", "pw", &["ls", &server.url("")]);
    expect_code(&out, 2);
}

/// `--passive-ports`, `--advertise-ip` and `--allow-ccc` reach the wire.
#[test]
fn passive_ports_advertised_address_and_ccc() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("p.txt"), b"passive").unwrap();
    let local = tempfile::tempdir().unwrap();
    let cert = local.path().join("cert.pem");
    // A port that was free a moment ago, as a one-port range.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let range = format!("{port}-{port}");
    let server = Served::start(
        root.path(),
        &cert,
        &[
            "--passive-ports",
            &range,
            "--advertise-ip",
            "10.1.2.3",
            "--allow-ccc",
        ],
    );
    let password = server.password.clone().unwrap();
    let credentials = format!("ftps:{password}");
    let curl = |extra: &[&str]| {
        let mut args = vec![
            "-sS",
            "-v",
            "--ssl-reqd",
            "--max-time",
            "20",
            "--cacert",
            cert.to_str().unwrap(),
            "--user",
            &credentials,
        ];
        args.extend_from_slice(extra);
        let url = server.url("p.txt");
        args.push(&url);
        let out = run_program("curl", &args, b"");
        expect_code(&out, 0);
        assert_eq!(out.stdout, b"passive");
        text(&out.stderr)
    };
    // EPSV names the one passive port.
    let verbose = curl(&[]);
    assert!(verbose.contains(&format!("(|||{port}|)")), "{verbose}");
    // PASV carries the advertised address (curl connects to the control peer anyway).
    let verbose = curl(&["--disable-epsv"]);
    assert!(
        verbose.contains("227 Entering Passive Mode (10,1,2,3,"),
        "{verbose}"
    );
    // CCC is accepted with --allow-ccc; the transfer after it still works.
    let dest = local.path().join("p.txt");
    let out = server.as_ftps(&["get", "--ccc", &server.url("p.txt"), dest.to_str().unwrap()]);
    expect_code(&out, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"passive");
    drop(server);
    // Without --allow-ccc the same command is refused.
    let server = Served::start(root.path(), &cert, &[]);
    let out = server.as_ftps(&["get", "--ccc", &server.url("p.txt"), dest.to_str().unwrap()]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("CCC"), "{}", text(&out.stderr));
}

/// `--anonymous`: `anonymous` logs in with any password, read-only.
#[test]
fn anonymous_read_only_access() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("pub.txt"), b"public").unwrap();
    let local = tempfile::tempdir().unwrap();
    let cert = local.path().join("cert.pem");
    let server = Served::start(root.path(), &cert, &["--anonymous"]);
    let startup = server.startup.join("\n");
    assert!(startup.contains("anonymous logins allowed"), "{startup}");
    let dest = local.path().join("pub.txt");
    let out = server.client(
        "anonymous",
        "guest@",
        &["get", &server.url("pub.txt"), dest.to_str().unwrap()],
    );
    expect_code(&out, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"public");
    let out = server.client(
        "anonymous",
        "guest@",
        &["put", dest.to_str().unwrap(), &server.url("copy.txt")],
    );
    expect_code(&out, 4);
    assert!(!root.path().join("copy.txt").exists());
}

/// Without --cert-out the certificate goes to a new, unpredictably named, world-readable file
/// in the temp directory, and the printed command trusts it.
#[test]
fn certificate_file_in_the_temp_directory_by_default() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("t.txt"), b"temp").unwrap();
    let temp = tempfile::tempdir().unwrap();
    let first = Served::start(root.path(), temp.path(), &[]);
    let second = Served::start(root.path(), temp.path(), &[]);
    for server in [&first, &second] {
        assert_eq!(server.cert.parent(), Some(temp.path()));
        let name = server.cert.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("ftps-serve-") && name.ends_with(".pem"),
            "{name}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&server.cert)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        let out = server.as_ftps(&["ls", &server.url("")]);
        expect_code(&out, 0);
        assert!(text(&out.stdout).contains("t.txt"));
    }
    assert_ne!(first.cert, second.cert);
    // Each server trusts only its own certificate.
    let out = first.client(
        "ftps",
        second.password.as_deref().unwrap(),
        &["ls", &second.url("")],
    );
    expect_code(&out, 2);
}

// A failed download removes only an empty regular file that this run created. A destination
// that was there before — an empty file the user had, a FIFO, a device (run as root, the old
// rule "remove it if its size is 0" deleted /dev/null) — is left as it was.
#[test]
fn failed_download_never_removes_a_destination_it_did_not_create() {
    use std::os::unix::fs::FileTypeExt;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let cert = local.path().join("cert.pem");
    let server = Served::start(root.path(), &cert, &[]);
    let missing = server.url("no-such-file");
    let get = |dest: &Path| {
        let out = server.as_ftps(&["get", &missing, dest.to_str().unwrap()]);
        assert_ne!(out.status.code(), Some(0), "the download must fail");
    };

    // Created by this run, nothing received: removed.
    let fresh = local.path().join("fresh.bin");
    get(&fresh);
    assert!(
        !fresh.exists(),
        "an empty file this run made is not left behind"
    );

    // An empty file the user had: kept.
    let empty = local.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    get(&empty);
    assert!(empty.is_file(), "the user's empty file was removed");

    // A FIFO: kept (opening it for writing would block until a reader comes: one does).
    let fifo = local.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read(reader_path).map(|b| b.len()));
    get(&fifo);
    let _ = reader.join();
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO was removed"
    );

    // A character device (a private copy of /dev/null, so a regression cannot delete the
    // machine's): kept. Making it needs root, as the test command runs.
    let device = local.path().join("null");
    let made = Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(
        made.success(),
        "mknod needs root (scripts/test-all.sh runs as root)"
    );
    get(&device);
    assert!(
        std::fs::symlink_metadata(&device)
            .unwrap()
            .file_type()
            .is_char_device(),
        "the device was removed"
    );
}

// ---------------------------------------------------------------- limits and memory, both servers

/// The server modes `ftps serve` has: the async server (default) and `--blocking`.
const DRIVERS: [&[&str]; 2] = [&[], &["--blocking"]];

/// A session of this project's blocking client on `served`, control TLS up, not logged in.
fn connected(served: &Served) -> ftps_std::Client {
    let mut options = ftps_std::ClientOptions::new("127.0.0.1");
    options.port = Some(served.port);
    options.trust = ftps_std::trust_ca_file(&served.cert).expect("the server's certificate");
    ftps_std::Client::connect(options).expect("connect")
}

/// Logs `client` in as the generated user of `served`.
fn log_in(served: &Served, client: &mut ftps_std::Client) {
    let password = served.password.as_deref().expect("the generated password");
    client.login("ftps", password).expect("log in");
}

/// A logged-in session of this project's blocking client on `served`.
fn logged_in(served: &Served) -> ftps_std::Client {
    let mut client = connected(served);
    log_in(served, &mut client);
    client
}

/// The first line a new control connection to `served` reads.
fn greeting(served: &Served) -> String {
    let stream = std::net::TcpStream::connect(("127.0.0.1", served.port)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read the greeting");
    line
}

/// Waits (bounded) until a new connection is greeted with `220` again.
#[track_caller]
fn expect_welcome_again(served: &Served) {
    let started = Instant::now();
    loop {
        let line = greeting(served);
        if line.starts_with("220 ") {
            return;
        }
        assert!(started.elapsed() < DEADLINE, "still refused: {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn session_limits_refuse_with_421_and_recover_when_sessions_end() {
    let root = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    for driver in DRIVERS {
        // Per address: the second session from 127.0.0.1 is refused.
        let cert = temp.path().join("per-ip.pem");
        let mut args = vec!["--max-per-ip", "1", "--max-sessions", "10"];
        args.extend_from_slice(driver);
        let served = Served::start(root.path(), &cert, &args);
        let first = logged_in(&served);
        let line = greeting(&served);
        assert!(
            line.starts_with("421 Too many sessions from your address"),
            "{driver:?}: {line}"
        );
        served.expect_log(&["refused with 421: too many sessions from this address (limit 1)"]);
        first.quit().expect("quit");
        expect_welcome_again(&served);
        drop(served);

        // In total: the third session is refused, whoever it comes from.
        let cert = temp.path().join("total.pem");
        let mut args = vec!["--max-per-ip", "10", "--max-sessions", "2"];
        args.extend_from_slice(driver);
        let served = Served::start(root.path(), &cert, &args);
        let first = logged_in(&served);
        let mut second = logged_in(&served);
        let line = greeting(&served);
        assert!(
            line.starts_with("421 Too many sessions, try again later"),
            "{driver:?}: {line}"
        );
        served.expect_log(&["refused with 421: too many sessions (limit 2)"]);
        // A session that stays keeps working; one that ends frees its place.
        assert_eq!(second.pwd().expect("pwd"), b"/");
        drop(first);
        expect_welcome_again(&served);
        second.quit().expect("quit");
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Sessions logged in at the same time by the memory test.
const MANY_SESSIONS: usize = 200;
/// What the server may hold beyond its idle size for those sessions: a fixed 24 MiB (the one
/// login verifier's argon2 working memory, 19 MiB, and allocator slack) plus 160 KiB per
/// logged-in TLS session (measured: about 60 KiB for the async server, 145 KiB for the
/// blocking one with its thread stacks). Before the login pool every login left about 19 MiB
/// in the server (argon2's memory in allocator arenas): 200 sessions held 3.5 GiB.
const RSS_BUDGET_FIXED_KIB: u64 = 24 * 1024;
/// Each further login verifier (the pool has one per core, at most 4) keeps its own 19 MiB of
/// argon2 working memory: 20 MiB more of the budget per verifier beyond the first.
const RSS_BUDGET_PER_EXTRA_VERIFIER_KIB: u64 = 20 * 1024;
const RSS_BUDGET_PER_SESSION_KIB: u64 = 160;

#[test]
fn a_few_hundred_logged_in_sessions_stay_within_the_memory_budget() {
    let root = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    for driver in DRIVERS {
        let cert = temp.path().join("rss.pem");
        let mut args = vec!["--max-per-ip", "1000"];
        args.extend_from_slice(driver);
        let served = Served::start(root.path(), &cert, &args);
        let pid = served.child.id();
        let before = rss_kib(pid);
        let mut clients: Vec<ftps_std::Client> =
            (0..MANY_SESSIONS).map(|_| connected(&served)).collect();
        let secured = rss_kib(pid);
        let served = Arc::new(served);
        let mut groups = Vec::new();
        while !clients.is_empty() {
            groups.push(clients.split_off(clients.len().saturating_sub(MANY_SESSIONS / 4)));
        }
        let workers: Vec<_> = groups
            .into_iter()
            .map(|mut chunk| {
                let served = Arc::clone(&served);
                std::thread::spawn(move || {
                    chunk.iter_mut().for_each(|c| log_in(&served, c));
                    chunk
                })
            })
            .collect();
        for worker in workers {
            clients.extend(worker.join().expect("client thread"));
        }
        let after = rss_kib(pid);
        let verifiers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 4);
        let budget = RSS_BUDGET_FIXED_KIB
            + RSS_BUDGET_PER_EXTRA_VERIFIER_KIB * (verifiers as u64 - 1)
            + RSS_BUDGET_PER_SESSION_KIB * MANY_SESSIONS as u64;
        let grown = after.saturating_sub(before);
        eprintln!(
            "{driver:?}: server RSS {before} KiB idle, {secured} KiB with {MANY_SESSIONS} TLS sessions, {after} KiB logged in (+{grown} KiB, budget {budget} KiB)"
        );
        assert!(
            grown <= budget,
            "{driver:?}: the server grew by {grown} KiB for {MANY_SESSIONS} sessions (budget {budget} KiB)"
        );
        // Every session still answers.
        for client in &mut clients {
            assert_eq!(client.pwd().expect("pwd"), b"/");
        }
        drop(clients);
        drop(served);
    }
}
