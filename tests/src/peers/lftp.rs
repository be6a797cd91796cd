//! The `lftp` command-line client (GnuTLS) as a reference FTPS client.
//!
//! Every run gets a fresh home directory (so no user rc file, bookmark or history is read or
//! written), a script file holding the settings, the login and the test's commands (so the
//! password never appears on a command line), a debug log at level 9, and a wall-clock limit
//! after which lftp's whole process group is killed.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use super::process::{find_program, read_log, write_file};
use super::{Endpoint, PeerError, Result, TlsMode};

/// Default wall-clock limit of one lftp run.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// GnuTLS priority string that allows TLS 1.3 only.
pub const PRIORITY_TLS13_ONLY: &str = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
/// GnuTLS priority string that allows TLS 1.2 only.
pub const PRIORITY_TLS12_ONLY: &str = "NORMAL:-VERS-ALL:+VERS-TLS1.2";

/// What the panic messages show instead of the password.
const PASSWORD_MASK: &str = "<password>";

/// An lftp client for one [`Endpoint`]: TLS forced on control and data connections, the
/// endpoint's CA trusted and the certificate (and host name) verified, one try per operation,
/// bounded network timeouts, and exit on the first failing command.
#[derive(Debug, Clone)]
pub struct Lftp<'a> {
    endpoint: &'a Endpoint,
    settings: Vec<(String, String)>,
    timeout: Duration,
}

/// The outcome of one lftp run, successful or not.
#[derive(Debug, Clone)]
pub struct LftpRun {
    /// lftp's exit status; `None` when it was killed after the wall-clock limit.
    pub status: Option<ExitStatus>,
    /// What the commands printed (listings, `echo`).
    pub stdout: String,
    /// lftp's error messages.
    pub stderr: String,
    /// The level-9 debug log: every command and reply on the control connection, TLS notes.
    pub debug_log: String,
    /// The script that ran, with the password masked.
    pub script: String,
}

impl LftpRun {
    /// lftp finished within the limit and exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// Everything about the run as text, for assertion messages.
    pub fn report(&self) -> String {
        let status = self.status.map_or_else(
            || "killed after the time limit".to_owned(),
            |s| s.to_string(),
        );
        format!(
            "lftp {status}\n--- script ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}\n\
             --- debug log ---\n{}",
            self.script, self.stdout, self.stderr, self.debug_log
        )
    }

    /// Lines of the debug log that lftp sent on the control connection (`---> CMD`), without
    /// the arrow.
    pub fn sent_commands(&self) -> Vec<&str> {
        self.debug_log
            .lines()
            .filter_map(|line| {
                line.split_once("---> ")
                    .map(|(_, command)| command.trim_end())
            })
            .collect()
    }
}

impl<'a> Lftp<'a> {
    /// A client for `endpoint` with the defaults described on [`Lftp`], passive mode with
    /// EPSV preferred and GnuTLS's normal priorities (TLS 1.3 when the server offers it).
    pub fn new(endpoint: &'a Endpoint) -> Self {
        let ca_file = endpoint.ca_cert_path.to_string_lossy();
        let defaults = [
            ("cmd:fail-exit", "true"),
            ("cmd:interactive", "false"),
            // Every listing goes to the server, never to lftp's cache.
            ("cache:enable", "false"),
            ("ftp:ssl-allow", "true"),
            ("ftp:ssl-force", "true"),
            ("ftp:ssl-auth", "TLS"),
            ("ftp:ssl-protect-data", "true"),
            ("ftp:ssl-protect-list", "true"),
            ("ftp:ssl-use-ccc", "false"),
            ("ftp:passive-mode", "true"),
            ("ftp:prefer-epsv", "true"),
            ("ssl:ca-file", &*ca_file),
            ("ssl:verify-certificate", "true"),
            ("ssl:check-hostname", "true"),
            ("net:max-retries", "1"),
            ("net:persist-retries", "0"),
            ("net:timeout", "10"),
            ("net:reconnect-interval-base", "1"),
            ("dns:order", "inet"),
            ("xfer:clobber", "on"),
            ("bmk:save-passwords", "false"),
        ];
        Self {
            endpoint,
            settings: defaults
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            timeout: DEFAULT_RUN_TIMEOUT,
        }
    }

    /// Sets (or overrides) an lftp setting, e.g. `("ftp:passive-mode", "off")`. The value is
    /// quoted for lftp's parser.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        let value = value.to_owned();
        match self.settings.iter_mut().find(|(known, _)| known == name) {
            Some(setting) => setting.1 = value,
            None => self.settings.push((name.to_owned(), value)),
        }
        self
    }

    /// Restricts GnuTLS to the versions of a priority string such as [`PRIORITY_TLS12_ONLY`].
    pub fn priority(self, priority: &str) -> Self {
        self.set("ssl:priority", priority)
    }

    /// Replaces the wall-clock limit of each run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Logs in and runs `commands` (lftp script lines) with `local_dir` as the local
    /// directory; returns whatever happened. Errors only when lftp cannot be run at all.
    pub fn run(&self, local_dir: &Path, commands: &str) -> Result<LftpRun> {
        let lftp = find_program("lftp")?;
        let work = tempfile::tempdir().map_err(PeerError::io("lftp temp dir"))?;
        let home = work.path().join("home");
        fs::create_dir(&home).map_err(PeerError::io("lftp home dir"))?;
        let debug_path = work.path().join("debug.log");
        let stdout_path = work.path().join("stdout");
        let stderr_path = work.path().join("stderr");
        let script_path = work.path().join("script.lftp");

        let login = self.script(local_dir, &debug_path, commands, &self.endpoint.password);
        write_file(&script_path, &login)?;
        let shown_script = self.script(local_dir, &debug_path, commands, PASSWORD_MASK);

        let stdout = fs::File::create(&stdout_path).map_err(PeerError::io("lftp stdout"))?;
        let stderr = fs::File::create(&stderr_path).map_err(PeerError::io("lftp stderr"))?;
        let status = self.run_bounded(
            Command::new(lftp)
                .arg("-f")
                .arg(&script_path)
                .env("HOME", &home)
                .env("LFTP_HOME", home.join(".lftp"))
                .env("XDG_CONFIG_HOME", home.join(".config"))
                .env("XDG_DATA_HOME", home.join(".local/share"))
                .env("XDG_CACHE_HOME", home.join(".cache"))
                .env("TERM", "dumb")
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr),
        )?;
        let mask = |text: String| text.replace(&self.endpoint.password, PASSWORD_MASK);
        Ok(LftpRun {
            status,
            stdout: mask(read_log(&stdout_path)),
            stderr: mask(read_log(&stderr_path)),
            debug_log: mask(read_log(&debug_path)),
            script: shown_script,
        })
    }

    /// [`run`](Self::run), with a failed or timed-out run as an error carrying its report.
    pub fn run_ok(&self, local_dir: &Path, commands: &str) -> Result<LftpRun> {
        let run = self.run(local_dir, commands)?;
        if run.success() {
            Ok(run)
        } else {
            Err(PeerError::CommandFailed {
                command: "lftp -f <script>".to_owned(),
                // A run killed at the limit reads as "signal: 9 (SIGKILL)".
                status: run
                    .status
                    .unwrap_or_else(|| std::os::unix::process::ExitStatusExt::from_raw(9)),
                output: run.report(),
            })
        }
    }

    fn script(
        &self,
        local_dir: &Path,
        debug_path: &Path,
        commands: &str,
        password: &str,
    ) -> String {
        let mut script = String::new();
        // Debugging first, so that the connection and TLS set-up are logged too.
        let _ = writeln!(
            script,
            "debug -t -o {} 9",
            quote(&debug_path.to_string_lossy())
        );
        for (name, value) in &self.settings {
            let _ = writeln!(script, "set {name} {}", quote(value));
        }
        let scheme = match self.endpoint.tls_mode {
            TlsMode::Explicit => "ftp",
            TlsMode::Implicit => "ftps",
        };
        let credentials = format!("{},{password}", self.endpoint.user);
        let _ = writeln!(
            script,
            "open -u {} {scheme}://{}",
            quote(&credentials),
            self.endpoint.addr
        );
        let _ = writeln!(script, "lcd {}", quote(&local_dir.to_string_lossy()));
        script.push_str(commands);
        if !commands.ends_with('\n') {
            script.push('\n');
        }
        script
    }

    /// Runs the command in its own process group; kills the group after the limit.
    fn run_bounded(&self, command: &mut Command) -> Result<Option<ExitStatus>> {
        use std::os::unix::process::CommandExt as _;
        let mut child = command
            .process_group(0)
            .spawn()
            .map_err(PeerError::io("starting lftp"))?;
        let group = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
        let kill_group = || {
            if let Some(group) = group {
                let _ = kill_process_group(group, Signal::KILL);
            }
        };
        let deadline = Instant::now() + self.timeout;
        loop {
            match child.try_wait() {
                // No group kill once lftp is reaped: its pid (the group id) may be reused.
                Ok(Some(status)) => return Ok(Some(status)),
                // lftp is not reaped yet, so the group id still names its group; the kill takes
                // any helper it forked (it forks for DNS look-ups) with it.
                Ok(None) if Instant::now() >= deadline => {
                    kill_group();
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(None);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(err) => {
                    kill_group();
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PeerError::io("waiting for lftp")(err));
                }
            }
        }
    }
}

/// `text` as one double-quoted lftp word (backslash escapes `"` and `\`).
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}
