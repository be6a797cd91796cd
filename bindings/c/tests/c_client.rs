//! The C programs of `bindings/c`, compiled against an installed libftps with warnings as
//! errors and run as a user would run them:
//! - `tests/unit.c`: the boundary's error paths, plain, under valgrind and with ASan;
//! - `examples/ftps-get.c`: a complete blocking client over poll(2), downloading from vsftpd
//!   (session reuse required) and from this project's server, checked byte for byte, and
//!   under valgrind and ASan (no errors, no leaks).

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Flavour, assert_success, command, compiled, run_bounded};
use ftps_tests::data::payload;
use ftps_tests::own_server::OwnServer;
use ftps_tests::peers::{Endpoint, TlsMode, Vsftpd};
use sha2::{Digest, Sha256};

const UNIT: &[&str] = &["tests/unit.c"];
const FTPS_GET: &[&str] = &["examples/ftps-get.c"];

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn run_unit(flavour: Flavour) {
    let exe = compiled("unit", UNIT, flavour);
    let started = Instant::now();
    let out = run_bounded(command(&exe, flavour), Duration::from_secs(120));
    eprintln!(
        "unit ({flavour:?}): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_success(&format!("unit.c ({flavour:?})"), &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(", 0 failed"), "{stdout}");
}

#[test]
fn unit_plain() {
    run_unit(Flavour::Plain);
}

#[test]
fn unit_valgrind() {
    run_unit(Flavour::Valgrind);
}

#[test]
fn unit_asan() {
    run_unit(Flavour::Asan);
}

/// One ftps-get run: where to connect, what to fetch, and the flags.
struct Get<'a> {
    flavour: Flavour,
    host: &'a str,
    port: u16,
    ca: &'a Path,
    user: &'a str,
    password: &'a str,
    remote: &'a str,
    local: &'a Path,
    flags: &'a [&'a str],
    limit: Duration,
}

impl Get<'_> {
    fn run(&self) -> Output {
        let exe = compiled("ftps-get", FTPS_GET, self.flavour);
        let mut cmd = command(&exe, self.flavour);
        cmd.args(self.flags)
            .args(["--timeout", "30", "--cacert"])
            .arg(self.ca)
            .args(["--user", self.user, "--password", self.password])
            .arg(self.host)
            .arg(self.port.to_string())
            .arg(self.remote)
            .arg(self.local);
        let started = Instant::now();
        let out = run_bounded(cmd, self.limit);
        eprintln!(
            "ftps-get {:?} ({:?}): {:.1} s\n{}{}",
            self.flags,
            self.flavour,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_success(
            &format!("ftps-get {:?} ({:?})", self.flags, self.flavour),
            &out,
        );
        out
    }
}

/// The transfer lines of a successful run: `count` of them, each with `resumed`.
fn check_lines(out: &Output, count: usize, bytes: usize, resumed: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("transfer "))
        .collect();
    assert_eq!(lines.len(), count, "{stdout}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("transfer {}: {bytes} bytes in ", i + 1)),
            "{line}"
        );
        assert!(line.contains(" MB/s, "), "{line}");
        assert!(line.ends_with(&format!("resumed={resumed}")), "{line}");
    }
}

fn vsftpd_get(mode: TlsMode, size: usize, flags: &[&str]) {
    let server = Vsftpd::builder()
        .tls_mode(mode)
        .require_ssl_reuse(true)
        .start()
        .expect("vsftpd starts");
    let endpoint: &Endpoint = server.endpoint();
    let data = payload(size, 0x00C0_FFEE);
    std::fs::write(endpoint.root_dir.join("big.bin"), &data).unwrap();
    let local_dir = tempfile::tempdir().unwrap();
    let local = local_dir.path().join("big.bin");
    let out = Get {
        flavour: Flavour::Plain,
        host: "127.0.0.1",
        port: endpoint.addr.port(),
        ca: &endpoint.ca_cert_path,
        user: &endpoint.user,
        password: &endpoint.password,
        remote: "big.bin",
        local: &local,
        flags,
        limit: Duration::from_secs(300),
    }
    .run();
    check_lines(&out, 1, size, "yes");
    let got = std::fs::read(&local).unwrap();
    assert_eq!(got.len(), data.len());
    assert!(sha256(&got) == sha256(&data), "SHA-256 differs");
}

#[test]
fn ftps_get_vsftpd_64mib_explicit_passive() {
    vsftpd_get(TlsMode::Explicit, 64 << 20, &[]);
}

#[test]
fn ftps_get_vsftpd_implicit_passive() {
    vsftpd_get(TlsMode::Implicit, 4 << 20, &["--implicit"]);
}

#[test]
fn ftps_get_vsftpd_explicit_active() {
    vsftpd_get(TlsMode::Explicit, 4 << 20, &["--active"]);
}

#[test]
fn ftps_get_vsftpd_implicit_active() {
    vsftpd_get(TlsMode::Implicit, 4 << 20, &["--implicit", "--active"]);
}

/// `--count` downloads from this project's server, in one session.
fn own_server_get(flavour: Flavour, size: usize, count: usize, flags: &[&str], limit: Duration) {
    let server = OwnServer::builder().start();
    let data = payload(size, 0x5EED);
    std::fs::write(server.root().join("file.bin"), &data).unwrap();
    let local = server.outside().join("file.bin");
    let implicit = flags.contains(&"--implicit");
    let port = if implicit {
        server.implicit_addr().port()
    } else {
        server.explicit_addr().port()
    };
    let count_arg = count.to_string();
    let mut all_flags = vec!["--count", count_arg.as_str()];
    all_flags.extend_from_slice(flags);
    let out = Get {
        flavour,
        host: "127.0.0.1",
        port,
        ca: server.ca_path(),
        user: server.user(),
        password: server.password(),
        remote: "file.bin",
        local: &local,
        flags: &all_flags,
        limit,
    }
    .run();
    check_lines(&out, count, size, "yes");
    let got = std::fs::read(&local).unwrap();
    assert!(
        got.len() == data.len() && sha256(&got) == sha256(&data),
        "the local file differs"
    );
    if flavour == Flavour::Valgrind {
        assert!(out.stderr.is_empty(), "valgrind said something");
    }
}

#[test]
fn ftps_get_own_server_20_transfers_all_resumed() {
    own_server_get(Flavour::Plain, 4 << 20, 20, &[], Duration::from_secs(120));
}

#[test]
fn ftps_get_own_server_implicit_active() {
    own_server_get(
        Flavour::Plain,
        1 << 20,
        3,
        &["--implicit", "--active"],
        Duration::from_secs(60),
    );
}

#[test]
fn ftps_get_valgrind() {
    own_server_get(Flavour::Valgrind, 1 << 20, 3, &[], Duration::from_secs(600));
}

#[test]
fn ftps_get_valgrind_active() {
    own_server_get(
        Flavour::Valgrind,
        256 << 10,
        2,
        &["--active"],
        Duration::from_secs(600),
    );
}

#[test]
fn ftps_get_asan() {
    own_server_get(Flavour::Asan, 1 << 20, 3, &[], Duration::from_secs(300));
}

#[test]
fn ftps_get_asan_implicit_active() {
    own_server_get(
        Flavour::Asan,
        256 << 10,
        2,
        &["--implicit", "--active"],
        Duration::from_secs(300),
    );
}

/// A failed download is a failure: exit status 1 and the server's refusal on stderr; the
/// error path frees everything too (valgrind's exit status would be 1 as well, so its
/// silence is checked).
#[test]
fn ftps_get_missing_file_fails() {
    let server = OwnServer::builder().start();
    let local = server.outside().join("none.bin");
    let exe = compiled("ftps-get", FTPS_GET, Flavour::Valgrind);
    let mut cmd = command(&exe, Flavour::Valgrind);
    cmd.args(["--timeout", "30", "--cacert"])
        .arg(server.ca_path())
        .args(["--user", server.user(), "--password", server.password()])
        .arg("127.0.0.1")
        .arg(server.explicit_addr().port().to_string())
        .arg("no-such-file.bin")
        .arg(&local);
    let out = run_bounded(cmd, Duration::from_secs(300));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FTPS_ERR_REFUSED"), "{stderr}");
    assert!(
        !stderr.contains("=="),
        "valgrind reported something:\n{stderr}"
    );
}
