//! The blocking server (`ftps_std::Server` over `LocalFs` and a `UserTable`) on 127.0.0.1,
//! driven by this project's own client, by a raw TLS client for truncation, and by `curl`.

use ftps_tests::data::payload;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::tls::ResumptionPolicy;
use ftps_std::server::{
    Auth as _, LocalFs, Server, ServerOptions, ServerSessionConfig, Storage as _, UserTable,
    hash_password,
};
use ftps_std::{ClientOptions, DataConnectionMode, Trust};
use ftps_tests::own_client::Client;
use ftps_tests::own_server::{
    DEFAULT_PASSWORD as PASSWORD, DEFAULT_USER as USER, OwnServer, OwnServerBuilder,
};
use ftps_tests::peers::{Curl, TestPki};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The server every test here starts: failed logins cost 50 ms, not the default delay.
fn server() -> OwnServerBuilder {
    OwnServer::builder().configure(|session| {
        session.timeouts.failed_login_delay = Duration::from_millis(50);
    })
}

fn round_trip(implicit: bool, mode: DataConnectionMode) {
    round_trip_of(implicit, mode, 3 * 1024 * 1024 + 17);
}

fn round_trip_of(implicit: bool, mode: DataConnectionMode, size: usize) {
    let fixture = server().start();
    let mut client = fixture.login(implicit, mode);
    let data = payload(size, 1);
    let summary = client.store("big.bin", &mut data.as_slice()).unwrap();
    assert_eq!(summary.bytes, data.len() as u64);
    assert_eq!(summary.resumed, Some(true));
    assert_eq!(std::fs::read(fixture.root().join("big.bin")).unwrap(), data);
    let mut back = Vec::new();
    client.retrieve("big.bin", 0, &mut back).unwrap();
    assert!(back == data, "downloaded bytes differ");
    assert_eq!(client.size("big.bin").unwrap(), data.len() as u64);
    client.quit().unwrap();
    assert_eq!(fixture.root_names(), ["big.bin"]);
}

#[test]
fn explicit_passive_upload_download_3mib() {
    round_trip(false, DataConnectionMode::Passive);
}

#[test]
fn explicit_passive_upload_download_64mib() {
    round_trip_of(false, DataConnectionMode::Passive, 64 << 20);
}

#[test]
fn explicit_active_upload_download_3mib() {
    round_trip(false, DataConnectionMode::Active);
}

#[test]
fn implicit_passive_upload_download_3mib() {
    round_trip(true, DataConnectionMode::Passive);
}

#[test]
fn implicit_active_upload_download_3mib() {
    round_trip(true, DataConnectionMode::Active);
}

#[test]
fn listing_rename_delete_mkdir_rmdir() {
    let fixture = server().start();
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    client.store("a.txt", &mut &b"hello"[..]).unwrap();
    assert!(client.mkdir("sub").is_ok());
    client.store("sub/inner.txt", &mut &b"x"[..]).unwrap();

    let mut names = client.names(None).unwrap();
    names.sort();
    assert_eq!(names, [b"a.txt".to_vec(), b"sub".to_vec()]);
    let entries = client.mlsd(None).unwrap();
    assert_eq!(entries.len(), 2);
    let raw = String::from_utf8(client.list_raw(None).unwrap()).unwrap();
    assert!(
        raw.lines()
            .any(|l| l.starts_with('d') && l.ends_with(" sub")),
        "{raw}"
    );
    assert!(
        raw.lines()
            .any(|l| l.starts_with('-') && l.contains(" 5 ") && l.ends_with(" a.txt")),
        "{raw}"
    );

    client.rename("a.txt", "b.txt").unwrap();
    assert!(!fixture.root().join("a.txt").exists());
    assert_eq!(
        std::fs::read(fixture.root().join("b.txt")).unwrap(),
        b"hello"
    );
    client.delete("b.txt").unwrap();
    assert!(!fixture.root().join("b.txt").exists());

    client.cwd("sub").unwrap();
    assert_eq!(client.pwd().unwrap(), b"/sub");
    assert!(
        client.rmdir("/sub").is_err(),
        "a non-empty directory is not removed"
    );
    client.delete("inner.txt").unwrap();
    client.cwd("..").unwrap();
    client.rmdir("sub").unwrap();
    assert!(fixture.root_names().is_empty());
    client.quit().unwrap();
}

#[test]
fn rest_resumes_download_and_upload_and_appe_appends() {
    let fixture = server().start();
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    let data = payload(200_000, 2);
    std::fs::write(fixture.root().join("r.bin"), &data).unwrap();

    // Download from an offset.
    let mut tail = Vec::new();
    client.retrieve("r.bin", 150_000, &mut tail).unwrap();
    assert!(tail == data[150_000..], "REST download tail differs");

    // Upload resumed from an offset (REST + STOR) at the storage level: the first bytes are
    // kept, and the target is untouched until the upload is committed.
    std::fs::write(fixture.root().join("u.bin"), &data[..120_000]).unwrap();
    let storage = LocalFs::new(fixture.root()).unwrap();
    let mut upload = storage.open_write(b"/u.bin", 120_000, false).unwrap();
    upload.write(&data[120_000..]).unwrap();
    assert_eq!(
        std::fs::read(fixture.root().join("u.bin")).unwrap().len(),
        120_000
    );
    upload.commit().unwrap();
    assert!(std::fs::read(fixture.root().join("u.bin")).unwrap() == data);
    // REST beyond the end of the file is refused.
    assert!(storage.open_write(b"/u.bin", 300_000, false).is_err());

    // APPE.
    std::fs::write(fixture.root().join("a.bin"), &data[..1000]).unwrap();
    client.append("a.bin", &mut &data[1000..]).unwrap();
    assert!(std::fs::read(fixture.root().join("a.bin")).unwrap() == data);
    client.quit().unwrap();
    assert_eq!(fixture.root_names(), ["a.bin", "r.bin", "u.bin"]);
}

#[test]
fn jail_refuses_escapes_and_leaves_outside_untouched() {
    let fixture = server().start();
    let secret = fixture.outside().join("secret.txt");
    std::fs::write(&secret, b"outside").unwrap();
    std::os::unix::fs::symlink(fixture.outside(), fixture.root().join("link")).unwrap();
    std::os::unix::fs::symlink(&secret, fixture.root().join("filelink")).unwrap();
    let mut client = fixture.login(false, DataConnectionMode::Passive);

    // `..` stops at the root: this lands inside the jail. (Successful transfers first: each
    // refused transfer below costs our client one TLS ticket, and the server requires data
    // connections to resume.)
    client.store("../../x", &mut &b"jailed"[..]).unwrap();
    assert_eq!(std::fs::read(fixture.root().join("x")).unwrap(), b"jailed");
    client.cwd("/../..").unwrap();
    assert_eq!(client.pwd().unwrap(), b"/");

    let mut sink = Vec::new();
    assert!(client.retrieve("/etc/passwd", 0, &mut sink).is_err());
    assert!(
        client
            .retrieve("../../../../etc/passwd", 0, &mut sink)
            .is_err()
    );
    assert!(client.retrieve("link/secret.txt", 0, &mut sink).is_err());
    assert!(client.retrieve("filelink", 0, &mut sink).is_err());
    assert!(sink.is_empty());
    assert!(client.store("link/secret.txt", &mut &b"pwned"[..]).is_err());
    assert!(client.store("filelink", &mut &b"pwned"[..]).is_err());
    assert!(client.delete("link/secret.txt").is_err());
    assert!(client.rename("link/secret.txt", "stolen.txt").is_err());
    assert!(client.rename("x", "link/moved").is_err());
    assert!(client.cwd("link").is_err());
    assert!(client.mkdir("link/newdir").is_err());
    client.quit().unwrap();

    assert_eq!(std::fs::read(&secret).unwrap(), b"outside");
    assert!(!fixture.outside().join("stolen.txt").exists());
    assert!(!fixture.root().join("stolen.txt").exists());
    assert!(!fixture.outside().join("moved").exists());
    assert!(!fixture.outside().join("newdir").exists());
    assert!(fixture.root().join("x").exists());
}

#[test]
fn wrong_password_is_refused() {
    let fixture = server().start();
    let mut client =
        Client::connect(fixture.client_options(false, DataConnectionMode::Passive)).unwrap();
    let error = client.login(USER, "wrong").unwrap_err();
    assert_eq!(
        error.reply().map(|r| u16::from(r.code)),
        Some(530),
        "{error}"
    );
    let mut client =
        Client::connect(fixture.client_options(false, DataConnectionMode::Passive)).unwrap();
    let error = client.login("anonymous", "guest@").unwrap_err();
    assert_eq!(
        error.reply().map(|r| u16::from(r.code)),
        Some(530),
        "anonymous is off: {error}"
    );
}

#[test]
fn read_only_refuses_writes() {
    let fixture = server().storage(|fs| Arc::new(fs.read_only(true))).start();
    std::fs::write(fixture.root().join("keep.txt"), b"keep").unwrap();
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    let error = client.store("new.txt", &mut &b"x"[..]).unwrap_err();
    assert_eq!(
        error.reply().map(|r| u16::from(r.code)),
        Some(550),
        "{error}"
    );
    assert!(client.delete("keep.txt").is_err());
    assert!(client.mkdir("d").is_err());
    assert!(client.rename("keep.txt", "moved.txt").is_err());
    let mut back = Vec::new();
    client.retrieve("keep.txt", 0, &mut back).unwrap();
    assert_eq!(back, b"keep");
    client.quit().unwrap();
    assert_eq!(fixture.root_names(), ["keep.txt"]);
}

type RawControl = BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// A hand-driven control connection: AUTH TLS, USER, PASS (rustls directly, no ftps code).
fn raw_login(fixture: &OwnServer) -> (RawControl, Arc<rustls::ClientConfig>, ServerName<'static>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(fixture.ca_der().clone()).unwrap();
    let config = Arc::new(ftps_proto::tls::client_config(roots).unwrap());
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tcp = TcpStream::connect(fixture.explicit_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut plain = BufReader::new(tcp.try_clone().unwrap());
    let mut line = String::new();
    plain.read_line(&mut line).unwrap();
    assert!(line.starts_with("220"), "{line}");
    (&tcp).write_all(b"AUTH TLS\r\n").unwrap();
    line.clear();
    plain.read_line(&mut line).unwrap();
    assert!(line.starts_with("234"), "{line}");
    let conn = rustls::ClientConnection::new(config.clone(), name.clone()).unwrap();
    let mut control = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    assert!(command(&mut control, &format!("USER {USER}")).starts_with("331"));
    assert!(command(&mut control, &format!("PASS {PASSWORD}")).starts_with("230"));
    (control, config, name)
}

/// Sends one command and reads a one-line reply.
fn command(control: &mut RawControl, text: &str) -> String {
    control
        .get_mut()
        .write_all(format!("{text}\r\n").as_bytes())
        .unwrap();
    let mut reply = String::new();
    control.read_line(&mut reply).unwrap();
    reply
}

/// A hand-driven client: TLS on control and data, then the data connection is dropped mid
/// upload without close_notify.
#[test]
fn truncated_upload_leaves_no_file() {
    // spec: T29 (truncation: end of stream without close_notify is not success)
    let fixture = server()
        .configure(|session| session.data_resumption = ResumptionPolicy::Optional)
        .start();
    let (mut control, config, name) = raw_login(&fixture);
    assert!(command(&mut control, "PBSZ 0").starts_with("200"));
    assert!(command(&mut control, "PROT P").starts_with("200"));
    assert!(command(&mut control, "TYPE I").starts_with("200"));
    let epsv = command(&mut control, "EPSV");
    assert!(epsv.starts_with("229"), "{epsv}");
    let port: u16 = epsv
        .split("|||")
        .nth(1)
        .and_then(|rest| rest.split('|').next())
        .unwrap()
        .parse()
        .unwrap();
    control.get_mut().write_all(b"STOR cut.bin\r\n").unwrap();
    let data_tcp = TcpStream::connect((fixture.explicit_addr().ip(), port)).unwrap();
    let mut preliminary = String::new();
    control.read_line(&mut preliminary).unwrap();
    assert!(preliminary.starts_with("150"), "{preliminary}");
    let data_conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut data = rustls::StreamOwned::new(data_conn, data_tcp);
    data.write_all(&payload(100_000, 3)).unwrap();
    data.flush().unwrap();
    // No close_notify: shut the socket down under TLS.
    data.sock.shutdown(std::net::Shutdown::Both).unwrap();
    drop(data);
    let mut last = String::new();
    control.read_line(&mut last).unwrap();
    assert!(
        !last.starts_with('2'),
        "a truncated upload must not succeed: {last}"
    );
    assert!(last.starts_with("426") || last.starts_with("451"), "{last}");
    // The 426 can reach us a moment before the session thread has deleted the temporary file
    // (clients never see it: `LocalFs` hides `.ftps-part-*` names), so wait, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !fixture.root_names().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        fixture.root_names().is_empty(),
        "left: {:?}",
        fixture.root_names()
    );
}

fn curl_output(curl: &Curl<'_>, url: &str, args: &[&str]) -> std::process::Output {
    let output = curl.run(url, args).unwrap();
    assert!(
        output.status.success(),
        "curl {args:?} {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Makes every curl run TLS 1.3 (curl's minimum version), so a test that says TLS 1.3 cannot
/// silently fall back to 1.2.
const CURL_TLS13: &str = "--tlsv1.3";

// spec: T40 — curl (OpenSSL) over TLS 1.3: uploads keep their tail (data connections send no
// unasked tickets, so curl never closes a socket with unread bytes) and every data connection
// resumes the control connection's session; resumed download and upload (`-C -`).
#[test]
fn curl_explicit_upload_download_list_and_resume() {
    let fixture = server().start();
    let endpoint = fixture.endpoint(false);
    let curl = Curl::new(&endpoint).arg(CURL_TLS13);
    let data = payload(1024 * 1024 + 5, 4);
    let local = fixture.outside().join("up.bin");
    std::fs::write(&local, &data).unwrap();
    curl.upload(&local, "up.bin").unwrap();
    assert!(std::fs::read(fixture.root().join("up.bin")).unwrap() == data);
    assert!(curl.download("up.bin").unwrap() == data);
    let listing = curl.list().unwrap();
    assert!(listing.lines().any(|l| l.ends_with(" up.bin")), "{listing}");

    // Resumed download (REST): curl appends the rest to a partial local file.
    let partial = fixture.outside().join("partial.bin");
    std::fs::write(&partial, &data[..300_000]).unwrap();
    let partial_str = partial.to_str().unwrap();
    curl_output(
        &curl,
        &endpoint.url("up.bin"),
        &["-C", "-", "-o", partial_str],
    );
    assert!(std::fs::read(&partial).unwrap() == data);

    // Resumed upload: curl asks SIZE and sends the rest with APPE.
    std::fs::write(fixture.root().join("half.bin"), &data[..400_000]).unwrap();
    let local_str = local.to_str().unwrap();
    curl_output(
        &curl,
        &endpoint.url("half.bin"),
        &["-C", "-", "-T", local_str],
    );
    assert!(std::fs::read(fixture.root().join("half.bin")).unwrap() == data);
    assert_eq!(fixture.root_names(), ["half.bin", "up.bin"]);
}

// spec: T40 — one curl run, one control connection, many TLS 1.3 data connections, each
// resumed. OpenSSL uses a TLS 1.3 session once, so curl needs a new ticket for every data
// connection: each data connection brings one (`ftps_proto::tls::UNASKED_DATA_CONNECTION_TICKETS`).
#[test]
fn curl_many_downloads_in_one_session_tls13() {
    let fixture = server().start();
    let endpoint = fixture.endpoint(false);
    let curl = Curl::new(&endpoint).arg(CURL_TLS13);
    let contents: Vec<Vec<u8>> = (0..5)
        .map(|i| payload(70_000 + i * 999, 40 + i as u32))
        .collect();
    for (i, content) in contents.iter().enumerate() {
        std::fs::write(fixture.root().join(format!("m{i}.bin")), content).unwrap();
    }
    let outputs: Vec<std::path::PathBuf> = (0..contents.len())
        .map(|i| fixture.outside().join(format!("back{i}.bin")))
        .collect();
    let urls: Vec<String> = (0..contents.len())
        .map(|i| endpoint.url(&format!("m{i}.bin")))
        .collect();
    let listing = fixture.outside().join("listing.txt");
    // Each `-o` pairs with the next URL; curl keeps the control connection for all of them.
    let mut args: Vec<&str> = vec!["-v"];
    for (url, out) in urls.iter().zip(&outputs) {
        args.extend(["-o", out.to_str().unwrap(), url.as_str()]);
    }
    args.extend(["-o", listing.to_str().unwrap()]);
    let output = curl_output(&curl, &endpoint.url(""), &args);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("SSL connection using TLSv1.3"), "{log}");
    assert_eq!(
        log.matches("> AUTH").count(),
        1,
        "one control connection: {log}"
    );
    assert_eq!(
        log.matches("Re-using existing connection").count(),
        contents.len(),
        "{log}"
    );
    for (out, content) in outputs.iter().zip(&contents) {
        assert!(&std::fs::read(out).unwrap() == content);
    }
    let listed = std::fs::read_to_string(&listing).unwrap();
    assert!(listed.lines().any(|l| l.ends_with(" m4.bin")), "{listed}");
}

// spec: T32, T40 — curl with `--disable-epsv`: PASV (227) data connections, TLS 1.3, resumed.
#[test]
fn curl_pasv_upload_and_download() {
    let fixture = server().start();
    let endpoint = fixture.endpoint(false);
    let curl = Curl::new(&endpoint).arg(CURL_TLS13).arg("--disable-epsv");
    let data = payload(700_000, 21);
    let local = fixture.outside().join("pasv.bin");
    std::fs::write(&local, &data).unwrap();
    let output = curl_output(
        &curl,
        &endpoint.url("pasv.bin"),
        &["-T", local.to_str().unwrap(), "-v"],
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("> PASV") && log.contains("< 227"), "{log}");
    assert!(!log.contains("> EPSV"), "{log}");
    assert!(std::fs::read(fixture.root().join("pasv.bin")).unwrap() == data);
    assert!(curl.download("pasv.bin").unwrap() == data);
}

// spec: E03, T40 — curl over IPv6 (`[::1]`): EPSV data connections, TLS 1.3, resumed.
#[test]
fn curl_ipv6_upload_and_download() {
    let fixture = server().ipv6().start();
    assert!(fixture.explicit_addr().is_ipv6());
    let endpoint = fixture.endpoint(false);
    let curl = Curl::new(&endpoint).arg(CURL_TLS13);
    let data = payload(500_000, 22);
    let local = fixture.outside().join("six.bin");
    std::fs::write(&local, &data).unwrap();
    let url = format!("ftp://[::1]:{}/six.bin", fixture.explicit_addr().port());
    let output = curl_output(&curl, &url, &["-T", local.to_str().unwrap(), "-v"]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("> EPSV") && log.contains("< 229"), "{log}");
    assert!(std::fs::read(fixture.root().join("six.bin")).unwrap() == data);
    let back = fixture.outside().join("six-back.bin");
    curl_output(&curl, &url, &["-o", back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == data);
}

// spec: T26, T29 — curl's `--ftp-ssl-ccc` in its default (passive) mode: after `200` curl
// reads our close_notify and writes plaintext without sending its own; the server accepts that
// one-way shutdown, and the data connections stay protected. OpenSSL drops a session whose
// connection was not shut down both ways, so curl's data connections then start full
// handshakes: this mode works only with data-session reuse relaxed (with it required curl gets
// `522`, like from any server that binds data to control sessions).
#[test]
fn curl_ccc_default_mode_upload_and_download() {
    let fixture = server()
        .configure(|session| session.allow_ccc = true)
        .configure(|session| session.data_resumption = ResumptionPolicy::Optional)
        .start();
    let endpoint = fixture.endpoint(false);
    let curl = Curl::new(&endpoint).arg(CURL_TLS13).arg("--ftp-ssl-ccc");
    let data = payload(300_000, 12);
    let local = fixture.outside().join("ccc-passive.bin");
    std::fs::write(&local, &data).unwrap();
    let output = curl_output(
        &curl,
        &endpoint.url("ccc-passive.bin"),
        &["-T", local.to_str().unwrap(), "-v"],
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("> CCC") && log.contains("< 200"), "{log}");
    assert!(
        log.contains("> STOR ccc-passive.bin"),
        "the session went on after CCC: {log}"
    );
    assert!(std::fs::read(fixture.root().join("ccc-passive.bin")).unwrap() == data);
    let back = fixture.outside().join("ccc-passive-back.bin");
    curl_output(
        &curl,
        &endpoint.url("ccc-passive.bin"),
        &["-o", back.to_str().unwrap()],
    );
    assert!(std::fs::read(&back).unwrap() == data);
}

// spec: T26, T29 — curl's `--ftp-ssl-ccc` in its active mode: after `200` curl sends its
// close_notify and reads ours, the control channel goes on in plaintext, the data connections
// stay protected and resumed.
#[test]
fn curl_ccc_upload_and_download() {
    let fixture = server()
        .configure(|session| session.allow_ccc = true)
        .start();
    let endpoint = fixture.endpoint(false);
    let curl = Curl::new(&endpoint)
        .arg(CURL_TLS13)
        .arg("--ftp-ssl-ccc")
        .arg("--ftp-ssl-ccc-mode")
        .arg("active");
    let data = payload(400_000, 11);
    let local = fixture.outside().join("ccc.bin");
    std::fs::write(&local, &data).unwrap();
    let output = curl_output(
        &curl,
        &endpoint.url("ccc.bin"),
        &["-T", local.to_str().unwrap(), "-v"],
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("> CCC") && log.contains("< 200"), "{log}");
    assert!(
        log.contains("SSL_get_shutdown() returned SSL_SENT_SHUTDOWN|SSL_RECEIVED__SHUTDOWN"),
        "close_notify both ways: {log}"
    );
    assert!(
        log.contains("> STOR ccc.bin"),
        "the session went on after CCC: {log}"
    );
    assert!(std::fs::read(fixture.root().join("ccc.bin")).unwrap() == data);
    let back = fixture.outside().join("ccc-back.bin");
    curl_output(
        &curl,
        &endpoint.url("ccc.bin"),
        &["-o", back.to_str().unwrap()],
    );
    assert!(std::fs::read(&back).unwrap() == data);
}

// The same upload under TLS 1.2 (session ids rather than tickets).
#[test]
fn curl_upload_and_download_over_tls12() {
    let fixture = server().start();
    let endpoint = fixture.endpoint(false);
    let curl = Curl::new(&endpoint).arg("--tls-max").arg("1.2");
    let data = payload(700_000, 8);
    let local = fixture.outside().join("t12.bin");
    std::fs::write(&local, &data).unwrap();
    let output = curl_output(
        &curl,
        &endpoint.url("t12.bin"),
        &["-T", local.to_str().unwrap(), "-v"],
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("TLSv1.2"), "{log}");
    assert!(std::fs::read(fixture.root().join("t12.bin")).unwrap() == data);
    assert!(curl.download("t12.bin").unwrap() == data);
}

#[test]
fn curl_implicit_upload_download() {
    let fixture = server().start();
    let endpoint = fixture.endpoint(true);
    let curl = Curl::new(&endpoint).arg(CURL_TLS13);
    let data = payload(500_000, 5);
    std::fs::write(fixture.root().join("d.bin"), &data).unwrap();
    assert!(curl.download("d.bin").unwrap() == data);
    let local = fixture.outside().join("imp.bin");
    std::fs::write(&local, &data).unwrap();
    curl.upload(&local, "imp.bin").unwrap();
    assert!(std::fs::read(fixture.root().join("imp.bin")).unwrap() == data);
}

// 64 MiB each way with curl over TLS 1.3, compared byte for byte.
#[test]
fn curl_64mib_upload_and_download_tls13() {
    let fixture = server().start();
    let endpoint = fixture.endpoint(false);
    let curl = Curl::new(&endpoint)
        .arg(CURL_TLS13)
        .arg("--max-time")
        .arg("300");
    let data = payload(64 << 20, 9);
    let local = fixture.outside().join("big.bin");
    std::fs::write(&local, &data).unwrap();
    curl.upload(&local, "big.bin").unwrap();
    assert!(std::fs::read(fixture.root().join("big.bin")).unwrap() == data);
    let back = fixture.outside().join("back.bin");
    curl_output(
        &curl,
        &endpoint.url("big.bin"),
        &["-o", back.to_str().unwrap()],
    );
    assert!(
        std::fs::read(&back).unwrap() == data,
        "downloaded bytes differ"
    );
}

// spec: T40 — this project's client: 30 uploads in one control session over TLS 1.3 with
// resumption required, each data connection resumed (a fresh ticket asked for each time).
#[test]
fn own_client_30_uploads_in_one_session_tls13() {
    let fixture = server().start();
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    assert_eq!(
        client.tls_info().map(|info| info.version),
        Some(ftps_proto::tls::TlsVersion::Tls13)
    );
    for i in 0..30 {
        let data = payload(20_000 + i * 37, i as u32);
        let name = format!("u{i}.bin");
        let summary = client.store(&name, &mut data.as_slice()).unwrap();
        assert_eq!(summary.resumed, Some(true), "upload {i}");
        assert!(std::fs::read(fixture.root().join(&name)).unwrap() == data);
    }
    client.quit().unwrap();
    assert_eq!(fixture.root_names().len(), 30);
}

#[test]
fn shutdown_ends_idle_sessions() {
    let fixture = server().start();
    let _client = fixture.login(false, DataConnectionMode::Passive);
    let started = std::time::Instant::now();
    drop(fixture); // shuts down and joins the server thread, which joins the session
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The session ended by the server's `421` (or closed after it).
fn is_closing(error: &ftps_std::Error) -> bool {
    matches!(
        error,
        ftps_std::Error::Closed(_) | ftps_std::Error::Usage(ftps_std::UsageError::Closed)
    ) || error.reply().is_some_and(|reply| reply.code.get() == 421)
}

/// A download sink that writes slowly and calls `at_1mib` once 1 MiB has arrived.
struct SlowSink {
    bytes: Vec<u8>,
    at_1mib: Option<Box<dyn FnOnce() + Send>>,
}

impl std::io::Write for SlowSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        if self.bytes.len() >= 1 << 20 {
            if let Some(call) = self.at_1mib.take() {
                call();
            }
        }
        std::thread::sleep(Duration::from_millis(3));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Graceful shutdown: the server stops accepting, an idle session is closed with 421 at once,
// and a running download is not cut: it completes within the shutdown grace.
#[test]
fn shutdown_lets_a_running_download_finish_and_closes_idle_sessions() {
    let fixture = server()
        .limits(|limits| limits.shutdown_grace = Duration::from_secs(30))
        .start();
    let data = payload(32 << 20, 77);
    std::fs::write(fixture.root().join("big.bin"), &data).unwrap();
    let mut idle = fixture.login(false, DataConnectionMode::Passive);
    let mut busy = fixture.login(false, DataConnectionMode::Passive);
    let stop = fixture.stopper();
    let mut sink = SlowSink {
        bytes: Vec::new(),
        at_1mib: Some(Box::new(move || stop())),
    };
    let result = busy.retrieve("big.bin", 0, &mut sink);
    // Every byte arrives. The server sends its 421 right after the 226; this client may read
    // that 421 before the end of the data it still has buffered and then reports the session
    // closed although the transfer completed (a client-side matter: the server did not cut
    // the transfer).
    assert!(
        sink.bytes == data,
        "the download was cut or garbled: {result:?}"
    );
    match &result {
        Ok(summary) => assert_eq!(summary.bytes, data.len() as u64),
        Err(error) => assert!(is_closing(error), "{error:?}"),
    }
    // The idle session was told 421 and closed meanwhile.
    let error = idle.pwd().expect_err("the idle session is closed");
    assert!(is_closing(&error), "{error:?}");
    // Once its transfer is done, the busy session is closed too.
    let error = busy
        .pwd()
        .expect_err("the busy session is closed after its transfer");
    assert!(is_closing(&error), "{error:?}");
    let started = std::time::Instant::now();
    drop(fixture);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn passive_port_range_and_advertised_address() {
    let base = 47_000 + (std::process::id() % 1000) as u16 * 8;
    let range = base..=base + 3;
    let fixture = server()
        .passive_ports(range.clone())
        .advertised_address(std::net::Ipv4Addr::new(10, 1, 2, 3))
        .start();
    let (mut control, _, _) = raw_login(&fixture);
    let text = command(&mut control, "PASV");
    assert!(text.starts_with("227"), "{text}");
    assert!(text.contains("(10,1,2,3,"), "{text}");
    let numbers: Vec<u16> = text
        .split('(')
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let port = numbers[4] * 256 + numbers[5];
    assert!(range.contains(&port), "{port} not in {range:?}");
    assert!(command(&mut control, "QUIT").starts_with("221"));

    // Transfers through PASV: the client ignores the advertised (NAT) address and connects to
    // the control peer; the data listeners come from the range.
    let mut options = fixture.client_options(false, DataConnectionMode::Passive);
    options.extended_data_commands = false;
    let mut client = Client::connect(options).unwrap();
    client.login(USER, PASSWORD).unwrap();
    for i in 0..6 {
        let data = payload(10_000 + i, 6);
        client.store("p.bin", &mut data.as_slice()).unwrap();
        let mut back = Vec::new();
        client.retrieve("p.bin", 0, &mut back).unwrap();
        assert!(back == data);
    }
    client.quit().unwrap();
}

#[test]
fn ipv6_listener_round_trip() {
    let fixture = server().ipv6().start();
    assert!(fixture.explicit_addr().is_ipv6());
    for mode in [DataConnectionMode::Passive, DataConnectionMode::Active] {
        let mut client = fixture.login(false, mode);
        let data = payload(300_000, 7);
        client.store("v6.bin", &mut data.as_slice()).unwrap();
        let mut back = Vec::new();
        client.retrieve("v6.bin", 0, &mut back).unwrap();
        assert!(back == data);
        client.quit().unwrap();
    }
}

#[test]
fn stou_creates_unique_names_and_aborts_leave_nothing() {
    let root = tempfile::tempdir().unwrap();
    let storage = LocalFs::new(root.path()).unwrap();
    let (first, mut upload) = storage.open_unique(b"/").unwrap();
    upload.write(b"one").unwrap();
    upload.commit().unwrap();
    let (second, mut upload) = storage.open_unique(b"/").unwrap();
    assert_ne!(first, second);
    upload.write(b"two").unwrap();
    upload.abort();
    let names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(format!("/{}", names[0]).into_bytes(), first);
    assert_eq!(std::fs::read(root.path().join(&names[0])).unwrap(), b"one");

    // An upload dropped without commit (the session ended) leaves nothing either.
    let mut upload = storage.open_write(b"/dropped.bin", 0, false).unwrap();
    upload.write(b"partial").unwrap();
    drop(upload);
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);

    // A NUL byte or a temporary-file name is refused.
    assert!(storage.open_write(b"/a\0b", 0, false).is_err());
    assert!(storage.entry(b"/.ftps-part-0000").is_err());
    // Read-only storage refuses STOU too.
    let read_only = LocalFs::new(root.path()).unwrap().read_only(true);
    assert!(read_only.open_unique(b"/").is_err());
}

#[test]
fn user_table_checks_argon2_hashes() {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let attempt = |user: &'static str, password: &'static str| ftps_std::server::LoginAttempt {
        user: user.as_bytes(),
        password: password.as_bytes(),
        client_certificate: None,
        peer,
    };
    let hash = hash_password("s3cret").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("s3cret"));
    let mut users = UserTable::new();
    assert!(
        users.add_user("bob", "s3cret").is_err(),
        "a plaintext password is not a hash"
    );
    users.add_user("bob", &hash).unwrap();
    assert!(users.authenticate(&attempt("bob", "s3cret")));
    assert!(!users.authenticate(&attempt("bob", "S3cret")));
    assert!(!users.authenticate(&attempt("eve", "s3cret")));
    assert!(!users.authenticate(&attempt("anonymous", "")));
    users.allow_anonymous(true);
    assert!(users.authenticate(&attempt("anonymous", "guest@")));
    let shown = format!("{:?}", attempt("bob", "s3cret"));
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn idle_session_is_closed_by_the_server() {
    let fixture = server()
        .configure(|session| session.timeouts.idle = Duration::from_secs(2))
        .start();
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        client.pwd().is_err(),
        "the session should have ended after 2 s idle"
    );
}

#[test]
fn serve_one_runs_a_single_session_until_quit() {
    let pki = TestPki::generate().unwrap();
    let root = tempfile::tempdir().unwrap();
    let chain = vec![CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
    let tls = ftps_proto::tls::server_config(chain, key).unwrap();
    let mut users = UserTable::new();
    users
        .add_user(USER, &hash_password(PASSWORD).unwrap())
        .unwrap();
    let server = Server::bind(ServerOptions {
        session: ServerSessionConfig::new(Arc::new(tls)),
        explicit: vec!["127.0.0.1:0".parse().unwrap()],
        implicit: Vec::new(),
        passive_ports: None,
        advertised_address: None,
        storage: Arc::new(LocalFs::new(root.path()).unwrap()),
        auth: Arc::new(users),
        log: None,
        limits: ftps_std::server::SessionLimits::default(),
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    let ca = CertificateDer::from_pem_slice(pki.ca_cert_pem.as_bytes()).unwrap();
    let client = std::thread::spawn(move || {
        let mut options = ClientOptions::new("127.0.0.1");
        options.port = Some(addr.port());
        options.trust = Trust::Certificates(vec![ca]);
        let mut client = Client::connect(options).unwrap();
        client.login(USER, PASSWORD).unwrap();
        client.store("one.txt", &mut &b"1"[..]).unwrap();
        client.quit().unwrap();
    });
    let end = server.serve_one().unwrap();
    client.join().unwrap();
    assert!(
        matches!(end, Some(ftps_std::server::SessionEnd::Closed(None))),
        "{end:?}"
    );
    assert_eq!(std::fs::read(root.path().join("one.txt")).unwrap(), b"1");
}

/// Python's `ftplib.FTP_TLS` (from the interpreter the harness uses): login, `prot_p()`, then an
/// upload and a download. Returns the script's stdout or its error line.
fn ftplib_round_trip(fixture: &OwnServer, data_len: usize) -> std::process::Output {
    const SCRIPT: &str = r#"
import ftplib, io, ssl, sys
host, port, user, password, cafile, size = sys.argv[1:7]
context = ssl.create_default_context(cafile=cafile)
ftp = ftplib.FTP_TLS(context=context, timeout=20)
ftp.connect(host, int(port))
ftp.login(user, password)
ftp.prot_p()
data = bytes((i * 7 + 3) % 251 for i in range(int(size)))
try:
    ftp.storbinary("STOR ftplib.bin", io.BytesIO(data))
    got = io.BytesIO()
    ftp.retrbinary("RETR ftplib.bin", got.write)
except ftplib.all_errors as error:
    print("refused:", error)
    # The server's final reply for the refused transfer is still on the control connection.
    try:
        print("reply:", ftp.getresp())
    except ftplib.all_errors as reply:
        print("reply:", reply)
    sys.exit(3)
print("equal" if got.getvalue() == data else "different")
ftp.quit()
"#;
    let mut command = std::process::Command::new("python3");
    command.arg("-c").arg(SCRIPT).args([
        fixture.explicit_addr().ip().to_string(),
        fixture.explicit_addr().port().to_string(),
        USER.to_string(),
        PASSWORD.to_string(),
        fixture.ca_path().display().to_string(),
        data_len.to_string(),
    ]);
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed (scripts/install-peers.sh)");
    // Bounded: the script's own socket timeout is 20 s; give the interpreter a little more.
    child.wait_with_output().expect("python3 ran")
}

// spec: T40 — ftplib never resumes the control session on data connections: with the default
// policy (resumption required) it gets a clear refusal, never a transfer.
#[test]
fn ftplib_without_session_reuse_gets_a_clear_refusal() {
    let fixture = server().start();
    let output = ftplib_round_trip(&fixture, 10_000);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(3),
        "stdout: {stdout} stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("522") && stdout.contains("reuse"),
        "refusal names the cause: {stdout}"
    );
    assert!(
        !fixture.root().join("ftplib.bin").exists(),
        "nothing stored"
    );
}

// With the policy relaxed (resumption optional), ftplib's full-handshake data connections work.
#[test]
fn ftplib_works_when_session_reuse_is_optional() {
    let fixture = server()
        .configure(|session| session.data_resumption = ResumptionPolicy::Optional)
        .start();
    let output = ftplib_round_trip(&fixture, 1 << 20);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout} stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "equal");
}
