//! vsftpd (Debian's package, 3.0.3 on bookworm) as a test peer.
//!
//! What this vsftpd can and cannot be configured to do (from its binary and man page):
//! - Protocol switches are only `ssl_sslv2`, `ssl_sslv3`, `ssl_tlsv1` (TLS 1.0); there is no
//!   `ssl_tlsv1_2` / `ssl_tlsv1_3`. It uses OpenSSL's version-flexible method, so TLS 1.3 is
//!   negotiated by default. [`TlsVersions::Tls12Only`] caps the server through an OpenSSL config
//!   file (`OPENSSL_CONF`, `MaxProtocol = TLSv1.2`), which libssl applies to every context.
//! - No `CCC` command and no option for it.
//! - vsftpd logs in system users through PAM, so the harness keeps one dedicated system user
//!   ([`TEST_USER`]) with a random password, and a PAM service of its own that only runs
//!   pam_unix (the packaged `/etc/pam.d/vsftpd` adds ftpusers and shell checks).

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;

use super::process::{
    LOOPBACK, PeerProcess, connect, find_program, free_port, free_port_range, random_token,
    read_log, write_file,
};
use super::{Endpoint, PeerError, Result, START_TIMEOUT, TestPki, TlsMode, TlsVersions};

/// The system user every harness vsftpd logs in (created on first use, needs root).
pub const TEST_USER: &str = "ftpstest";
/// The PAM service the harness writes and points vsftpd at.
const PAM_SERVICE: &str = "ftps-test";
/// Where the test user's random password is kept, so that concurrent test processes agree.
const PASSWORD_FILE: &str = "/var/lib/ftps-tests/ftpstest.password";

/// Options for a vsftpd peer; [`Vsftpd::builder`] gives the secure defaults.
#[derive(Debug, Clone)]
pub struct VsftpdBuilder {
    tls_mode: TlsMode,
    tls_versions: TlsVersions,
    require_ssl_reuse: bool,
    strict_ssl_shutdown: bool,
    write_enable: bool,
    passive_port_count: u16,
    max_sessions: Option<u32>,
}

impl VsftpdBuilder {
    /// Explicit (`AUTH TLS`, the default) or implicit TLS (`implicit_ssl=YES`).
    pub fn tls_mode(mut self, mode: TlsMode) -> Self {
        self.tls_mode = mode;
        self
    }

    /// TLS 1.2 only, or 1.2 and 1.3 (the default).
    pub fn tls_versions(mut self, versions: TlsVersions) -> Self {
        self.tls_versions = versions;
        self
    }

    /// `require_ssl_reuse`: data connections must resume the control connection's TLS session
    /// (default on, vsftpd's own default; see checklist T40).
    pub fn require_ssl_reuse(mut self, required: bool) -> Self {
        self.require_ssl_reuse = required;
        self
    }

    /// `strict_ssl_read_eof` + `strict_ssl_write_shutdown`: require close_notify on data
    /// connections (default off, as in vsftpd; see checklist §9.4).
    pub fn strict_ssl_shutdown(mut self, strict: bool) -> Self {
        self.strict_ssl_shutdown = strict;
        self
    }

    /// `write_enable`: allow STOR, DELE, MKD ... (default on).
    pub fn write_enable(mut self, enabled: bool) -> Self {
        self.write_enable = enabled;
        self
    }

    /// `max_clients` and `max_per_ip` (default: vsftpd's, 2000 and 50), for benchmarks with
    /// many sessions from 127.0.0.1.
    pub fn max_sessions(mut self, sessions: u32) -> Self {
        self.max_sessions = Some(sessions);
        self
    }

    /// Size of the passive port range (default 8 ports).
    pub fn passive_port_count(mut self, count: u16) -> Self {
        self.passive_port_count = count;
        self
    }

    /// Writes the config, certificates and file root to a new temp dir, starts vsftpd and
    /// waits (at most [`START_TIMEOUT`]) until it accepts connections.
    pub fn start(self) -> Result<Vsftpd> {
        let program = find_program("vsftpd")?;
        let user = test_user()?;
        let pki = TestPki::generate()?;
        let dir = tempfile::Builder::new()
            .prefix("ftps-vsftpd-")
            .tempdir()
            .map_err(PeerError::io("creating temp dir"))?;
        let layout = Layout::new(dir.path());
        layout.create(user, &pki)?;

        let port = free_port()?;
        let passive_ports = free_port_range(self.passive_port_count)?;
        write_file(&layout.config, self.config(&layout, port, &passive_ports))?;
        write_file(&layout.openssl_config, openssl_config(self.tls_versions))?;

        let mut process = PeerProcess::spawn(
            &program,
            &[layout.config.as_os_str()],
            &[("OPENSSL_CONF", layout.openssl_config.as_os_str())],
            &layout.output,
        )?;
        let addr = SocketAddr::from((LOOPBACK, port));
        let log = || combined_log(&layout);
        let started = std::time::Instant::now();
        let greeting =
            process.wait_until("vsftpd", START_TIMEOUT, log, || match self.tls_mode {
                // Implicit TLS starts at once: an accepted connection is all there is to see.
                TlsMode::Implicit => connect(addr).ok().map(|_| None),
                TlsMode::Explicit => read_greeting(addr).map(Some),
            })?;
        // A "500 OOPS" greeting means every session will fail the same way: stop here.
        if let Some(greeting) = greeting.filter(|line| !line.starts_with("220 ")) {
            return Err(PeerError::NotReady {
                peer: "vsftpd",
                waited: started.elapsed(),
                reason: format!("greeting {:?}", greeting.trim_end()),
                log: combined_log(&layout),
            });
        }

        Ok(Vsftpd {
            process,
            endpoint: Endpoint {
                addr,
                tls_mode: self.tls_mode,
                user: TEST_USER.to_owned(),
                password: user.password.clone(),
                root_dir: layout.root.clone(),
                ca_cert_pem: pki.ca_cert_pem,
                ca_cert_path: layout.ca_cert.clone(),
            },
            layout,
            _dir: dir,
        })
    }

    fn config(
        &self,
        layout: &Layout,
        port: u16,
        passive: &std::ops::RangeInclusive<u16>,
    ) -> String {
        let yes_no = |flag: bool| if flag { "YES" } else { "NO" };
        format!(
            "\
# Written by the ftps test harness (tests/src/peers/vsftpd.rs).
listen=YES
listen_ipv6=NO
listen_address={LOOPBACK}
listen_port={port}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable={write}
local_umask=022
local_root={root}
userlist_enable=YES
userlist_deny=NO
userlist_file={userlist}
pam_service_name={PAM_SERVICE}
secure_chroot_dir={empty}
# Namespaces and seccomp may be unavailable in containers; these servers are test-only.
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
pasv_enable=YES
pasv_min_port={pasv_min}
pasv_max_port={pasv_max}
xferlog_enable=YES
xferlog_std_format=NO
vsftpd_log_file={log}
log_ftp_protocol=YES
debug_ssl=YES
ssl_enable=YES
implicit_ssl={implicit}
rsa_cert_file={cert}
rsa_private_key_file={key}
# The key is ECDSA; Debian's built-in default (ECDHE-RSA-AES256-GCM-SHA384) has no suite for it
# under TLS 1.2. These are the TLS 1.2 suites rustls offers; TLS 1.3 suites ignore this list.
ssl_ciphers=ECDHE+AESGCM:ECDHE+CHACHA20
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=NO
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse={reuse}
strict_ssl_read_eof={strict}
strict_ssl_write_shutdown={strict}
{limits}",
            write = yes_no(self.write_enable),
            root = layout.root.display(),
            userlist = layout.userlist.display(),
            empty = layout.empty.display(),
            pasv_min = passive.start(),
            pasv_max = passive.end(),
            log = layout.vsftpd_log.display(),
            implicit = yes_no(self.tls_mode == TlsMode::Implicit),
            cert = layout.server_cert.display(),
            key = layout.server_key.display(),
            reuse = yes_no(self.require_ssl_reuse),
            strict = yes_no(self.strict_ssl_shutdown),
            limits = self
                .max_sessions
                .map(|n| format!("max_clients={n}\nmax_per_ip={n}\n"))
                .unwrap_or_default(),
        )
    }
}

/// A running vsftpd; dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct Vsftpd {
    // Declared first so it is dropped (killed) before the directory is removed.
    process: PeerProcess,
    endpoint: Endpoint,
    layout: Layout,
    _dir: TempDir,
}

impl Vsftpd {
    /// Explicit FTPS, TLS 1.2 and 1.3, session reuse required, uploads allowed.
    pub fn builder() -> VsftpdBuilder {
        VsftpdBuilder {
            tls_mode: TlsMode::Explicit,
            tls_versions: TlsVersions::UpToTls13,
            require_ssl_reuse: true,
            strict_ssl_shutdown: false,
            write_enable: true,
            passive_port_count: 8,
            max_sessions: None,
        }
    }

    /// Address, credentials, file root and CA of this server.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// vsftpd's protocol and TLS debug log (`log_ftp_protocol`, `debug_ssl`) plus its stderr.
    pub fn log(&self) -> String {
        combined_log(&self.layout)
    }
}

/// The files and directories of one vsftpd instance.
#[derive(Debug)]
struct Layout {
    config: PathBuf,
    openssl_config: PathBuf,
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    userlist: PathBuf,
    vsftpd_log: PathBuf,
    output: PathBuf,
    empty: PathBuf,
    root: PathBuf,
}

impl Layout {
    fn new(base: &Path) -> Self {
        Self {
            config: base.join("vsftpd.conf"),
            openssl_config: base.join("openssl.cnf"),
            ca_cert: base.join("ca.pem"),
            server_cert: base.join("server-cert.pem"),
            server_key: base.join("server-key.pem"),
            userlist: base.join("userlist"),
            vsftpd_log: base.join("vsftpd.log"),
            output: base.join("output.log"),
            empty: base.join("empty"),
            root: base.join("root"),
        }
    }

    fn create(&self, user: &SystemUser, pki: &TestPki) -> Result<()> {
        let base = self.root.parent().expect("root is inside the temp dir");
        // The test user must reach its root below the temp dir (created 0700).
        set_mode(base, 0o711)?;
        write_file(&self.ca_cert, &pki.ca_cert_pem)?;
        write_file(&self.server_cert, &pki.server_cert_pem)?;
        write_file(&self.server_key, &pki.server_key_pem)?;
        set_mode(&self.server_key, 0o600)?;
        write_file(&self.userlist, format!("{TEST_USER}\n"))?;
        // secure_chroot_dir: empty and not writable by the unprivileged vsftpd processes.
        fs::create_dir(&self.empty).map_err(PeerError::io("creating secure_chroot_dir"))?;
        set_mode(&self.empty, 0o755)?;
        fs::create_dir(&self.root).map_err(PeerError::io("creating the FTP root"))?;
        set_mode(&self.root, 0o755)?;
        std::os::unix::fs::chown(&self.root, Some(user.uid), Some(user.gid)).map_err(PeerError::io(
            format!("chown {} to {TEST_USER}", self.root.display()),
        ))
    }
}

fn combined_log(layout: &Layout) -> String {
    format!(
        "{}\n--- stdout/stderr ---\n{}",
        read_log(&layout.vsftpd_log),
        read_log(&layout.output)
    )
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(PeerError::io(format!("chmod {mode:o} {}", path.display())))
}

/// The first line the server sends, if it sends one within the read timeout.
fn read_greeting(addr: SocketAddr) -> Option<String> {
    let mut line = String::new();
    BufReader::new(connect(addr).ok()?)
        .read_line(&mut line)
        .ok()?;
    Some(line)
}

/// An OpenSSL config that bounds the protocol versions of every libssl context in vsftpd.
fn openssl_config(versions: TlsVersions) -> String {
    let max = match versions {
        TlsVersions::Tls12Only => "TLSv1.2",
        TlsVersions::UpToTls13 => "TLSv1.3",
    };
    format!(
        "\
openssl_conf = ftps_test_init
[ftps_test_init]
ssl_conf = ftps_test_ssl
[ftps_test_ssl]
system_default = ftps_test_tls
[ftps_test_tls]
MinProtocol = TLSv1.2
MaxProtocol = {max}
"
    )
}

/// The dedicated system user vsftpd logs in.
#[derive(Debug, Clone)]
struct SystemUser {
    password: String,
    uid: u32,
    gid: u32,
}

/// Creates (once per process) the test user, its password and the PAM service.
fn test_user() -> Result<&'static SystemUser> {
    static USER: OnceLock<std::result::Result<SystemUser, String>> = OnceLock::new();
    USER.get_or_init(|| set_up_test_user().map_err(|err| err.to_string()))
        .as_ref()
        .map_err(|message| PeerError::Io {
            context: format!("setting up system user {TEST_USER} (needs root)"),
            source: std::io::Error::other(message.clone()),
        })
}

fn set_up_test_user() -> Result<SystemUser> {
    write_pam_service()?;
    let password = shared_password()?;
    if run(Command::new("id").args(["-u", TEST_USER]), None).is_err() {
        let created = run(
            Command::new(find_program("useradd")?).args([
                "--system",
                "--no-create-home",
                // vsftpd changes to the home directory before local_root: it must exist.
                "--home-dir",
                "/",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                "ftps interop tests",
                TEST_USER,
            ]),
            None,
        );
        // Another test process may have created it meanwhile: then `id` works now.
        if let Err(err) = created {
            run(Command::new("id").args(["-u", TEST_USER]), None).map_err(|_| err)?;
        }
    }
    // Every process sets the same password, so concurrent test processes cannot disagree.
    run(
        &mut Command::new(find_program("chpasswd")?),
        Some(format!("{TEST_USER}:{password}\n").as_bytes()),
    )?;
    let number = |flag: &str| -> Result<u32> {
        let text = run(Command::new("id").args([flag, TEST_USER]), None)?;
        text.trim().parse().map_err(|_| PeerError::Io {
            context: format!("parsing `id {flag} {TEST_USER}`"),
            source: std::io::Error::other(text.clone()),
        })
    };
    Ok(SystemUser {
        password,
        uid: number("-u")?,
        gid: number("-g")?,
    })
}

/// The test user's password: random, made once per machine and kept root-only, published
/// atomically (hard link) so that racing processes all read the winner's.
fn shared_password() -> Result<String> {
    let path = Path::new(PASSWORD_FILE);
    let dir = path.parent().expect("password file has a directory");
    fs::create_dir_all(dir).map_err(PeerError::io(format!("creating {}", dir.display())))?;
    set_mode(dir, 0o700)?;
    if !path.exists() {
        let candidate = dir.join(format!(".password.{}", std::process::id()));
        write_file(&candidate, random_token(24))?;
        set_mode(&candidate, 0o600)?;
        let linked = fs::hard_link(&candidate, path);
        let _ = fs::remove_file(&candidate);
        match linked {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(PeerError::io(format!("publishing {PASSWORD_FILE}"))(err)),
        }
    }
    let password =
        fs::read_to_string(path).map_err(PeerError::io(format!("reading {PASSWORD_FILE}")))?;
    Ok(password.trim().to_owned())
}

/// A PAM service that checks the password and account with pam_unix only.
fn write_pam_service() -> Result<()> {
    let path = Path::new("/etc/pam.d").join(PAM_SERVICE);
    let contents = "\
# Written by the ftps test harness (tests/src/peers/vsftpd.rs) for its local-only vsftpd
# instances, which also restrict logins to the test user (userlist_deny=NO).
auth     required pam_unix.so
account  required pam_unix.so
session  required pam_permit.so
";
    if fs::read_to_string(&path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    // Rename so that a concurrently starting vsftpd never reads a half-written file.
    let staging = path.with_extension(format!("tmp{}", std::process::id()));
    write_file(&staging, contents)?;
    fs::rename(&staging, &path).map_err(PeerError::io(format!("installing {}", path.display())))
}

/// Runs a short helper command, feeding `stdin`, and returns its stdout.
fn run(command: &mut Command, stdin: Option<&[u8]>) -> Result<String> {
    use std::io::Write as _;
    let description = format!("{:?}", command.get_program());
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(PeerError::io(format!("starting {description}")))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)
            .map_err(PeerError::io(format!("writing to {description}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(PeerError::io(format!("running {description}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(PeerError::CommandFailed {
            command: description,
            status: output.status,
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
