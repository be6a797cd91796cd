//! The `ftps` binary against real servers (vsftpd with session reuse required, and pyftpdlib)
//! on 127.0.0.1: every subcommand, and the exit codes scripts rely on.

use ftps_tests::data::payload;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ftps_tests::peers::{Endpoint, Pyftpdlib, TlsMode, Vsftpd};

/// No single command may take longer than this (the servers are local).
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `ftps` with `args`, killing it after the deadline; stdin is empty (no prompts).
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ftps");
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
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > COMMAND_DEADLINE {
            child.kill().expect("kill");
            panic!("ftps {args:?} did not finish within {COMMAND_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap().unwrap(),
        stderr: err_reader.join().unwrap().unwrap(),
    }
}

/// `ftps SUBCOMMAND ... --cacert CA --user U:P --timeout 20` for `endpoint`.
fn ftps(endpoint: &Endpoint, args: &[&str]) -> Output {
    let user = format!("{}:{}", endpoint.user, endpoint.password);
    let ca = endpoint.ca_cert_path.to_str().unwrap().to_owned();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--cacert", &ca, "--user", &user, "--timeout", "20"]);
    run(&all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("sub/b.bin"), payload(70_000, 0)).unwrap();
    std::fs::write(root.join("sub/deeper/c.txt"), b"gamma").unwrap();
}

#[track_caller]
fn assert_same_tree(left: &Path, right: &Path) {
    for file in ["a.txt", "empty", "sub/b.bin", "sub/deeper/c.txt"] {
        assert_eq!(
            std::fs::read(left.join(file)).unwrap(),
            std::fs::read(right.join(file)).unwrap(),
            "{file}"
        );
    }
}

/// Every subcommand against one server.
fn all_commands(endpoint: &Endpoint) {
    let local = tempfile::tempdir().unwrap();
    let data = payload(300_000, 0);
    let source = local.path().join("source.bin");
    std::fs::write(&source, &data).unwrap();

    // put FILE URL → the named remote file.
    let out = ftps(
        endpoint,
        &["put", source.to_str().unwrap(), &endpoint.url("up.bin")],
    );
    expect_code(&out, 0);
    assert_eq!(
        std::fs::read(endpoint.root_dir.join("up.bin")).unwrap(),
        data
    );

    // ls: a long listing with the size.
    let out = ftps(endpoint, &["ls", &endpoint.url("")]);
    expect_code(&out, 0);
    let listing = text(&out.stdout);
    let line = listing
        .lines()
        .find(|l| l.ends_with(" up.bin"))
        .unwrap_or_else(|| panic!("no up.bin in {listing}"));
    assert!(line.contains(" 300000 "), "{line}");
    assert!(line.starts_with('-'), "{line}");

    // size
    let out = ftps(endpoint, &["size", &endpoint.url("up.bin")]);
    expect_code(&out, 0);
    assert_eq!(text(&out.stdout).trim(), "300000");

    // get into a file: bytes equal; -v shows TLS and the resumed data connection.
    let dest = local.path().join("down.bin");
    let out = ftps(
        endpoint,
        &["get", "-v", &endpoint.url("up.bin"), dest.to_str().unwrap()],
    );
    expect_code(&out, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("* control connection: TLS 1."), "{stderr}");
    assert!(
        stderr.contains("* data connection: TLS, session resumed"),
        "{stderr}"
    );

    // get -C: resume from a local half.
    let partial = local.path().join("partial.bin");
    std::fs::write(&partial, &data[..123_457]).unwrap();
    let out = ftps(
        endpoint,
        &[
            "get",
            "-C",
            &endpoint.url("up.bin"),
            partial.to_str().unwrap(),
        ],
    );
    expect_code(&out, 0);
    assert_eq!(std::fs::read(&partial).unwrap(), data);

    // get to stdout.
    let out = ftps(endpoint, &["get", &endpoint.url("up.bin"), "-"]);
    expect_code(&out, 0);
    assert_eq!(out.stdout, data);

    // put --append
    let tail = local.path().join("tail.txt");
    std::fs::write(&tail, b"TAIL").unwrap();
    let out = ftps(
        endpoint,
        &[
            "put",
            "--append",
            tail.to_str().unwrap(),
            &endpoint.url("up.bin"),
        ],
    );
    expect_code(&out, 0);
    let remote = std::fs::read(endpoint.root_dir.join("up.bin")).unwrap();
    assert_eq!(remote.len(), data.len() + 4);
    assert!(remote.ends_with(b"TAIL"));

    // mv, then rm
    let out = ftps(endpoint, &["mv", &endpoint.url("up.bin"), "moved.bin"]);
    expect_code(&out, 0);
    assert!(endpoint.root_dir.join("moved.bin").exists());
    assert!(!endpoint.root_dir.join("up.bin").exists());
    let out = ftps(endpoint, &["rm", &endpoint.url("moved.bin")]);
    expect_code(&out, 0);
    assert!(!endpoint.root_dir.join("moved.bin").exists());

    // mkdir / rmdir
    let out = ftps(endpoint, &["mkdir", &endpoint.url("newdir")]);
    expect_code(&out, 0);
    assert!(endpoint.root_dir.join("newdir").is_dir());
    let out = ftps(endpoint, &["rmdir", &endpoint.url("newdir")]);
    expect_code(&out, 0);
    assert!(!endpoint.root_dir.join("newdir").exists());

    // quote: a raw command and its reply on stdout.
    let out = ftps(endpoint, &["quote", &endpoint.url(""), "NOOP"]);
    expect_code(&out, 0);
    assert!(
        text(&out.stdout).starts_with("200"),
        "{}",
        text(&out.stdout)
    );

    // put -r / get -r: a small tree goes up and comes back equal.
    let tree = local.path().join("tree");
    write_tree(&tree);
    let out = ftps(
        endpoint,
        &["put", "-r", tree.to_str().unwrap(), &endpoint.url("")],
    );
    expect_code(&out, 0);
    assert_same_tree(&tree, &endpoint.root_dir.join("tree"));
    let back = local.path().join("back");
    let out = ftps(
        endpoint,
        &["get", "-r", &endpoint.url("tree"), back.to_str().unwrap()],
    );
    expect_code(&out, 0);
    assert_same_tree(&tree, &back);

    // Exit codes: a missing remote file is a remote-file error (4), naming the reply, and
    // leaves no empty local file behind.
    let missing = local.path().join("missing.bin");
    let out = ftps(
        endpoint,
        &[
            "get",
            &endpoint.url("no-such-file"),
            missing.to_str().unwrap(),
        ],
    );
    expect_code(&out, 4);
    assert!(
        text(&out.stderr).contains("refused by the server: 550"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists());
    let out = ftps(endpoint, &["rm", &endpoint.url("no-such-file")]);
    expect_code(&out, 4);
    let out = ftps(endpoint, &["size", &endpoint.url("no-such-file")]);
    expect_code(&out, 4);

    // A missing local file is a local I/O error (6).
    let out = ftps(
        endpoint,
        &[
            "put",
            local.path().join("nope").to_str().unwrap(),
            &endpoint.url("x"),
        ],
    );
    expect_code(&out, 6);
}

#[test]
fn vsftpd_explicit_all_commands() {
    let server = Vsftpd::builder().start().unwrap();
    all_commands(server.endpoint());
}

#[test]
fn pyftpdlib_all_commands() {
    let server = Pyftpdlib::builder().start().unwrap();
    all_commands(server.endpoint());
}

#[test]
fn vsftpd_implicit_ftps_url() {
    let server = Vsftpd::builder()
        .tls_mode(TlsMode::Implicit)
        .start()
        .unwrap();
    let endpoint = server.endpoint();
    assert!(endpoint.url("").starts_with("ftps://"));
    std::fs::write(endpoint.root_dir.join("hello.txt"), b"hello").unwrap();
    let out = ftps(endpoint, &["get", &endpoint.url("hello.txt"), "-"]);
    expect_code(&out, 0);
    assert_eq!(out.stdout, b"hello");
}

#[test]
fn wrong_password_is_a_login_failure() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    let ca = endpoint.ca_cert_path.to_str().unwrap();
    let user = format!("{}:wrong-{}", endpoint.user, endpoint.password);
    let out = run(&["ls", &endpoint.url(""), "--cacert", ca, "--user", &user]);
    expect_code(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("530"), "{stderr}");
    assert!(
        stderr.contains("hint: check the user name and password"),
        "{stderr}"
    );
}

#[test]
fn untrusted_certificate_is_a_tls_failure_with_a_hint() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    let user = format!("{}:{}", endpoint.user, endpoint.password);
    // Mozilla's roots do not include the test CA.
    let out = run(&["ls", &endpoint.url(""), "--user", &user, "--timeout", "20"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(
        stderr.contains("hint:") && stderr.contains("--cacert"),
        "{stderr}"
    );
}

#[test]
fn insecure_skips_verification_loudly() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    let user = format!("{}:{}", endpoint.user, endpoint.password);
    let out = run(&["ls", &endpoint.url(""), "--user", &user, "--insecure"]);
    expect_code(&out, 0);
    assert!(
        text(&out.stderr).contains("WARNING: --insecure"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn tls_max_restricts_the_version() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    std::fs::write(endpoint.root_dir.join("f"), b"x").unwrap();
    let out = ftps(
        endpoint,
        &["get", "-v", "--tls-max", "1.2", &endpoint.url("f"), "-"],
    );
    expect_code(&out, 0);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("control connection: TLS 1.2"), "{stderr}");
    assert!(stderr.contains("session resumed"), "{stderr}");
    let out = ftps(endpoint, &["get", "-v", &endpoint.url("f"), "-"]);
    expect_code(&out, 0);
    assert!(text(&out.stderr).contains("control connection: TLS 1.3"));
}

#[test]
fn active_mode_and_pasv_work() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    let data = payload(50_000, 0);
    std::fs::write(endpoint.root_dir.join("f"), &data).unwrap();
    for extra in [
        &["--active"][..],
        &["--disable-epsv"],
        &["--active", "--disable-epsv"],
    ] {
        let mut args = vec!["get"];
        args.extend_from_slice(extra);
        let url = endpoint.url("f");
        args.extend([url.as_str(), "-"]);
        let out = ftps(endpoint, &args);
        expect_code(&out, 0);
        assert_eq!(out.stdout, data, "{extra:?}");
    }
}

#[test]
fn netrc_file_supplies_credentials() {
    let server = Pyftpdlib::builder().start().unwrap();
    let endpoint = server.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        format!(
            "machine other login x password y\nmachine 127.0.0.1 login {} password {}\n",
            endpoint.user, endpoint.password
        ),
    )
    .unwrap();
    std::fs::write(endpoint.root_dir.join("n.txt"), b"netrc ok").unwrap();
    let ca = endpoint.ca_cert_path.to_str().unwrap();
    let out = run(&[
        "get",
        &endpoint.url("n.txt"),
        "-",
        "--cacert",
        ca,
        "--netrc-file",
        netrc.to_str().unwrap(),
    ]);
    expect_code(&out, 0);
    assert_eq!(out.stdout, b"netrc ok");
}

#[test]
fn credentials_in_the_url_are_percent_decoded() {
    let server = Pyftpdlib::builder().start().unwrap();
    let endpoint = server.endpoint();
    let encoded: String = endpoint
        .password
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let url = endpoint
        .url("")
        .replacen("://", &format!("://{}:{encoded}@", endpoint.user), 1);
    let ca = endpoint.ca_cert_path.to_str().unwrap();
    let out = run(&["ls", &url, "--cacert", ca]);
    expect_code(&out, 0);
}

#[test]
fn ccc_refused_by_the_server_is_reported() {
    // Neither test server implements CCC: the refusal must be an error naming the reply,
    // never a silent continuation.
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    let out = ftps(endpoint, &["ls", "--ccc", &endpoint.url("")]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("CCC"), "{}", text(&out.stderr));
}

#[test]
fn usage_errors_exit_1() {
    for args in [
        &["ls", "http://127.0.0.1/"][..],
        &["ls", "ftp://127.0.0.1:0/"],
        &["bogus"],
        &["get"],
        &["ls", "ftp://127.0.0.1/", "--tls-max", "1.1"],
        // No password and no terminal to ask on: refused before connecting.
        &["ls", "ftp://someone@127.0.0.1:9/"],
    ] {
        let out = run(args);
        expect_code(&out, 1);
    }
    let help = run(&["--help"]);
    expect_code(&help, 0);
    assert!(text(&help.stdout).contains("Exit codes:"));
}

#[test]
fn refused_connection_is_a_connection_failure() {
    // Bind and drop a listener to find a port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ftp://127.0.0.1:{port}/");
    let out = run(&["ls", &url, "--user", "a:b", "--timeout", "5"]);
    expect_code(&out, 2);
}

/// The position of the first stderr line equal to `wanted` (or starting with it, for replies
/// whose text is the server's).
#[track_caller]
fn line_at(lines: &[&str], wanted: &str) -> usize {
    lines
        .iter()
        .position(|line| *line == wanted || line.starts_with(&format!("{wanted} ")))
        .unwrap_or_else(|| panic!("no {wanted:?} in:\n{}", lines.join("\n")))
}

#[test]
fn verbose_prints_the_control_dialogue_with_the_password_hidden() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    std::fs::write(endpoint.root_dir.join("seen.txt"), b"x").unwrap();
    let out = ftps(endpoint, &["ls", "-v", &endpoint.url("")]);
    expect_code(&out, 0);
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stderr.lines().collect();
    let user = format!("> USER {}", endpoint.user);
    // The dialogue in its order, curl style, from the greeting to the goodbye.
    let order = [
        line_at(&lines, "< 220"),
        line_at(&lines, "> AUTH TLS"),
        line_at(&lines, "< 234"),
        line_at(&lines, "> FEAT"),
        line_at(&lines, &user),
        line_at(&lines, "< 331"),
        line_at(&lines, "> PASS ****"),
        line_at(&lines, "< 230"),
        line_at(&lines, "> PBSZ 0"),
        line_at(&lines, "> PROT P"),
        line_at(&lines, "< 150"),
        line_at(&lines, "< 226"),
        line_at(&lines, "> QUIT"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{stderr}");
    // The TLS details -v printed before are still there, the listing's data connection too.
    assert!(stderr.contains("* control connection: TLS 1."), "{stderr}");
    assert!(
        stderr.contains("* data connection: TLS, session resumed"),
        "{stderr}"
    );
    // The dialogue goes to stderr only; the listing to stdout.
    assert!(stdout.contains("seen.txt"), "{stdout}");
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with("> ") || l.starts_with("< "))
    );
    assert!(!stderr.contains(&endpoint.password), "{stderr}");
    assert!(!stdout.contains(&endpoint.password));

    // Without -v: no dialogue at all.
    let out = ftps(endpoint, &["ls", &endpoint.url("")]);
    expect_code(&out, 0);
    assert!(!text(&out.stderr).contains("> "), "{}", text(&out.stderr));
}

#[test]
fn verbose_hides_a_password_sent_with_quote_and_shows_refusals() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    let out = ftps(
        endpoint,
        &["quote", "-v", &endpoint.url(""), "PASS not-the-real-one"],
    );
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    // The login's PASS and the quoted one: both hidden.
    assert_eq!(
        lines.iter().filter(|l| **l == "> PASS ****").count(),
        2,
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-real-one"), "{stderr}");
    assert!(!stderr.contains(&endpoint.password), "{stderr}");

    // A refused transfer: its 5yz is in the dialogue.
    let out = ftps(endpoint, &["get", "-v", &endpoint.url("missing.bin"), "-"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(line_at(&lines, "> RETR missing.bin") < line_at(&lines, "< 550"));
    assert!(!stderr.contains(&endpoint.password), "{stderr}");
}
