//! ProFTPD (Debian bookworm's 1.3.8 with its `mod_tls` DSO) as a test peer.
//!
//! Why it is worth a peer of its own, from ProFTPD's `mod_tls` documentation and source:
//! - It implements `CCC`, refused with `534` while `TLSRequired on`/`ctrl` holds; with
//!   `TLSRequired auth+data` a logged-in client may clear the control channel while data
//!   connections stay protected. After `CCC` it no longer checks data-connection session reuse.
//! - Without `TLSOptions NoSessionReuseRequired` a protected data connection must resume the
//!   TLS session *of this control connection* (for TLS 1.3 tickets it binds them to the FTP
//!   session): a stricter check than vsftpd's (checklist T40).
//! - Implicit FTPS is `TLSOptions UseImplicitSSL`.
//!
//! Installation: Debian's `proftpd-core` conflicts with `vsftpd` (both provide `ftp-server`),
//! so `scripts/install-peers.sh` unpacks the two ProFTPD packages into [`PROFTPD_INSTALL_PREFIX`]
//! instead of installing them. The harness looks there first, then on `PATH`.
//!
//! Logins come from an `AuthUserFile` in the temp dir (`AuthOrder mod_auth_file.c`), not PAM or
//! `/etc/passwd`: the user is a made-up name mapped to `nobody`'s uid and gid, with a random
//! password stored as a SHA-512 crypt hash (`openssl passwd -6`).

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::process::{
    LOOPBACK, PeerProcess, connect, find_program, free_port, free_port_range, random_token,
    read_log, write_file,
};
use super::{Endpoint, PeerError, Result, START_TIMEOUT, TestPki, TlsMode, TlsVersions};

/// Where `scripts/install-peers.sh` unpacks Debian's ProFTPD packages.
pub const PROFTPD_INSTALL_PREFIX: &str = "/opt/ftps-peers/proftpd";
/// The login name in the harness's `AuthUserFile`.
pub const PROFTPD_USER: &str = "ftpsuser";
/// The system account whose uid/gid the sessions run under (owns the FTP root).
const RUN_AS: &str = "nobody";

/// Who may send `CCC` with success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CccPolicy {
    /// `TLSRequired on`: TLS on control and data for the whole session; `CCC` gets `534`.
    Refused,
    /// `TLSRequired auth+data`: TLS for the login and for every data connection; after login
    /// the client may clear the control channel.
    AllowedAfterLogin,
}

/// Options for a ProFTPD peer; [`Proftpd::builder`] gives the secure defaults.
#[derive(Debug, Clone)]
pub struct ProftpdBuilder {
    tls_mode: TlsMode,
    tls_versions: TlsVersions,
    require_session_reuse: bool,
    ccc: CccPolicy,
    passive_port_count: u16,
}

impl ProftpdBuilder {
    /// Explicit (`AUTH TLS`, the default) or implicit TLS (`TLSOptions UseImplicitSSL`).
    pub fn tls_mode(mut self, mode: TlsMode) -> Self {
        self.tls_mode = mode;
        self
    }

    /// `TLSProtocol TLSv1.2` or `TLSProtocol TLSv1.2 TLSv1.3` (the default).
    pub fn tls_versions(mut self, versions: TlsVersions) -> Self {
        self.tls_versions = versions;
        self
    }

    /// Data connections must resume the control connection's TLS session (default on,
    /// ProFTPD's own default); off writes `TLSOptions NoSessionReuseRequired`.
    pub fn require_session_reuse(mut self, required: bool) -> Self {
        self.require_session_reuse = required;
        self
    }

    /// Whether `CCC` is accepted (default [`CccPolicy::Refused`]).
    pub fn ccc(mut self, policy: CccPolicy) -> Self {
        self.ccc = policy;
        self
    }

    /// Size of the passive port range (default 8 ports).
    pub fn passive_port_count(mut self, count: u16) -> Self {
        self.passive_port_count = count;
        self
    }

    /// Writes the config, certificates, user file and file root to a new temp dir, starts
    /// ProFTPD in the foreground and waits (at most [`START_TIMEOUT`]) until it accepts
    /// connections.
    pub fn start(self) -> Result<Proftpd> {
        let installation = Installation::find()?;
        let account = run_as_account()?;
        let pki = TestPki::generate()?;
        let password = random_token(24);
        let password_hash = crypt_sha512(&password)?;
        let dir = tempfile::Builder::new()
            .prefix("ftps-proftpd-")
            .tempdir()
            .map_err(PeerError::io("creating temp dir"))?;
        let layout = Layout::new(dir.path());
        layout.create(&account, &pki, &password_hash)?;

        let port = free_port()?;
        let passive_ports = free_port_range(self.passive_port_count)?;
        write_file(
            &layout.config,
            self.config(&installation, &layout, &account, port, &passive_ports),
        )?;

        let mut process = PeerProcess::spawn(
            &installation.program,
            &[
                "-n".as_ref(),
                "-q".as_ref(),
                "-c".as_ref(),
                layout.config.as_os_str(),
            ],
            &[],
            &layout.output,
        )?;
        let addr = SocketAddr::from((LOOPBACK, port));
        let log = || combined_log(&layout);
        let started = std::time::Instant::now();
        let greeting =
            process.wait_until("proftpd", START_TIMEOUT, log, || match self.tls_mode {
                // Implicit TLS starts at once: an accepted connection is all there is to see.
                TlsMode::Implicit => connect(addr).ok().map(|_| None),
                TlsMode::Explicit => read_greeting(addr).map(Some),
            })?;
        if let Some(greeting) = greeting.filter(|line| !line.starts_with("220 ")) {
            return Err(PeerError::NotReady {
                peer: "proftpd",
                waited: started.elapsed(),
                reason: format!("greeting {:?}", greeting.trim_end()),
                log: combined_log(&layout),
            });
        }

        Ok(Proftpd {
            process,
            endpoint: Endpoint {
                addr,
                tls_mode: self.tls_mode,
                user: PROFTPD_USER.to_owned(),
                password,
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
        installation: &Installation,
        layout: &Layout,
        account: &Account,
        port: u16,
        passive: &std::ops::RangeInclusive<u16>,
    ) -> String {
        let protocols = match self.tls_versions {
            TlsVersions::Tls12Only => "TLSv1.2",
            TlsVersions::UpToTls13 => "TLSv1.2 TLSv1.3",
        };
        let required = match self.ccc {
            CccPolicy::Refused => "on",
            CccPolicy::AllowedAfterLogin => "auth+data",
        };
        // EnableDiags: OpenSSL's handshake and alert trace in the TLSLog, for failing tests.
        let mut tls_options = vec!["EnableDiags"];
        if !self.require_session_reuse {
            tls_options.push("NoSessionReuseRequired");
        }
        if self.tls_mode == TlsMode::Implicit {
            tls_options.push("UseImplicitSSL");
        }
        format!(
            "\
# Written by the ftps test harness (tests/src/peers/proftpd.rs).
ServerType standalone
ServerName \"ftps interop test\"
DefaultAddress {LOOPBACK}
SocketBindTight on
Port {port}
UseIPv6 off
UseReverseDNS off
PassivePorts {pasv_min} {pasv_max}
MaxInstances 30
User {user}
Group {group}
Umask 022
AllowOverwrite on
AllowStoreRestart on
AllowRetrieveRestart on
WtmpLog off
ScoreboardFile {scoreboard}
PidFile {pidfile}
DelayTable {delay}
SystemLog {system_log}
TransferLog {xfer_log}
ExtendedLog {command_log} ALL
ModulePath {module_path}
LoadModule mod_tls.c
<IfModule mod_auth_pam.c>
  AuthPAM off
</IfModule>
AuthOrder mod_auth_file.c
AuthUserFile {passwd}
AuthGroupFile {group_file}
RequireValidShell off
DefaultRoot ~
TLSEngine on
TLSLog {tls_log}
TLSProtocol {protocols}
TLSRequired {required}
TLSECCertificateFile {cert}
TLSECCertificateKeyFile {key}
TLSVerifyClient off
TLSRenegotiate none
TLSOptions {tls_options}
",
            pasv_min = passive.start(),
            pasv_max = passive.end(),
            user = RUN_AS,
            group = account.group_name,
            scoreboard = layout.scoreboard.display(),
            pidfile = layout.pidfile.display(),
            delay = layout.delay_table.display(),
            system_log = layout.system_log.display(),
            xfer_log = layout.xfer_log.display(),
            command_log = layout.command_log.display(),
            module_path = installation.module_dir.display(),
            passwd = layout.passwd.display(),
            group_file = layout.group.display(),
            tls_log = layout.tls_log.display(),
            cert = layout.server_cert.display(),
            key = layout.server_key.display(),
            tls_options = tls_options.join(" "),
        )
    }
}

/// A running ProFTPD; dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct Proftpd {
    // Declared first so it is dropped (killed) before the directory is removed.
    process: PeerProcess,
    endpoint: Endpoint,
    layout: Layout,
    _dir: TempDir,
}

impl Proftpd {
    /// Explicit FTPS, TLS 1.2 and 1.3, session reuse required, `CCC` refused.
    pub fn builder() -> ProftpdBuilder {
        ProftpdBuilder {
            tls_mode: TlsMode::Explicit,
            tls_versions: TlsVersions::UpToTls13,
            require_session_reuse: true,
            ccc: CccPolicy::Refused,
            passive_port_count: 8,
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

    /// `mod_tls`'s `TLSLog` alone (what it says about handshakes, reuse and `CCC`).
    pub fn tls_log(&self) -> String {
        read_log(&self.layout.tls_log)
    }

    /// The `ExtendedLog` of every command, one line each (`... "PASV" 227 -`).
    pub fn command_log(&self) -> String {
        read_log(&self.layout.command_log)
    }

    /// Every log ProFTPD writes (system, TLS, commands, transfers) plus its stdout/stderr.
    pub fn log(&self) -> String {
        combined_log(&self.layout)
    }
}

/// The ProFTPD binary and its module directory.
#[derive(Debug)]
struct Installation {
    program: PathBuf,
    module_dir: PathBuf,
}

impl Installation {
    /// The unpacked packages under [`PROFTPD_INSTALL_PREFIX`], else a `proftpd` on `PATH` with its
    /// modules in Debian's place.
    fn find() -> Result<Self> {
        let prefix = Path::new(PROFTPD_INSTALL_PREFIX);
        let unpacked = Self {
            program: prefix.join("usr/sbin/proftpd"),
            module_dir: prefix.join("usr/lib/proftpd"),
        };
        let installation = if unpacked.program.is_file() {
            unpacked
        } else {
            Self {
                program: find_program("proftpd")?,
                module_dir: PathBuf::from("/usr/lib/proftpd"),
            }
        };
        if !installation.module_dir.join("mod_tls.so").is_file() {
            return Err(PeerError::MissingProgram {
                program: format!("{}/mod_tls.so", installation.module_dir.display()),
            });
        }
        Ok(installation)
    }
}

/// The uid, gid and group name the sessions run as.
#[derive(Debug)]
struct Account {
    uid: u32,
    gid: u32,
    group_name: String,
}

fn run_as_account() -> Result<Account> {
    let id = |flag: &str| -> Result<String> {
        let text = run(Command::new("id").args([flag, RUN_AS]))?;
        Ok(text.trim().to_owned())
    };
    let number = |flag: &str| -> Result<u32> {
        let text = id(flag)?;
        text.parse().map_err(|_| PeerError::Io {
            context: format!("parsing `id {flag} {RUN_AS}`"),
            source: std::io::Error::other(text.clone()),
        })
    };
    Ok(Account {
        uid: number("-u")?,
        gid: number("-g")?,
        group_name: id("-gn")?,
    })
}

/// A `$6$` (SHA-512) crypt hash of `password`, as `AuthUserFile` expects.
fn crypt_sha512(password: &str) -> Result<String> {
    // The password is random alphanumerics, so passing it as an argument is safe to quote.
    let hash = run(Command::new(find_program("openssl")?).args(["passwd", "-6", password]))?;
    Ok(hash.trim().to_owned())
}

/// The files and directories of one ProFTPD instance.
#[derive(Debug)]
struct Layout {
    config: PathBuf,
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
    scoreboard: PathBuf,
    pidfile: PathBuf,
    delay_table: PathBuf,
    system_log: PathBuf,
    tls_log: PathBuf,
    xfer_log: PathBuf,
    command_log: PathBuf,
    output: PathBuf,
    root: PathBuf,
}

impl Layout {
    fn new(base: &Path) -> Self {
        Self {
            config: base.join("proftpd.conf"),
            ca_cert: base.join("ca.pem"),
            server_cert: base.join("server-cert.pem"),
            server_key: base.join("server-key.pem"),
            passwd: base.join("ftpd.passwd"),
            group: base.join("ftpd.group"),
            scoreboard: base.join("scoreboard"),
            pidfile: base.join("proftpd.pid"),
            delay_table: base.join("delay.table"),
            system_log: base.join("proftpd.log"),
            tls_log: base.join("tls.log"),
            xfer_log: base.join("xfer.log"),
            command_log: base.join("commands.log"),
            output: base.join("output.log"),
            root: base.join("root"),
        }
    }

    fn create(&self, account: &Account, pki: &TestPki, password_hash: &str) -> Result<()> {
        let base = self.root.parent().expect("root is inside the temp dir");
        // The session processes (uid nobody) must reach their root below the temp dir.
        set_mode(base, 0o711)?;
        write_file(&self.ca_cert, &pki.ca_cert_pem)?;
        write_file(&self.server_cert, &pki.server_cert_pem)?;
        write_file(&self.server_key, &pki.server_key_pem)?;
        set_mode(&self.server_key, 0o600)?;
        // mod_auth_file refuses user/group files that are world-writable; 0600 is fine (read
        // by the root master before it switches user).
        write_file(
            &self.passwd,
            format!(
                "{PROFTPD_USER}:{password_hash}:{uid}:{gid}:ftps interop:{home}:/bin/false\n",
                uid = account.uid,
                gid = account.gid,
                home = self.root.display(),
            ),
        )?;
        set_mode(&self.passwd, 0o600)?;
        write_file(
            &self.group,
            format!("{}:x:{}:\n", account.group_name, account.gid),
        )?;
        set_mode(&self.group, 0o600)?;
        fs::create_dir(&self.root).map_err(PeerError::io("creating the FTP root"))?;
        set_mode(&self.root, 0o755)?;
        std::os::unix::fs::chown(&self.root, Some(account.uid), Some(account.gid)).map_err(
            PeerError::io(format!("chown {} to {RUN_AS}", self.root.display())),
        )
    }
}

fn combined_log(layout: &Layout) -> String {
    format!(
        "--- system log ---\n{}\n--- TLS log ---\n{}\n--- commands ---\n{}\n--- stdout/stderr ---\n{}",
        read_log(&layout.system_log),
        read_log(&layout.tls_log),
        read_log(&layout.command_log),
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

/// Runs a short helper command and returns its stdout.
fn run(command: &mut Command) -> Result<String> {
    let description = format!("{:?}", command.get_program());
    let output = command
        .stdin(Stdio::null())
        .output()
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
