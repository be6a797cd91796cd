//! The `curl` command-line client as a reference FTPS client.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::process::find_program;
use super::{Endpoint, PeerError, Result};

/// Upper bound on one curl run (`--max-time`); transfers in tests are small.
const MAX_SECONDS: &str = "20";

/// A curl invocation against one [`Endpoint`]: TLS required (`--ssl-reqd`), the endpoint's CA
/// trusted, its credentials used, every run bounded by `--max-time`.
#[derive(Debug, Clone)]
pub struct Curl<'a> {
    endpoint: &'a Endpoint,
    extra_args: Vec<String>,
    require_tls: bool,
}

impl<'a> Curl<'a> {
    /// A client for `endpoint` with TLS required.
    pub fn new(endpoint: &'a Endpoint) -> Self {
        Self {
            endpoint,
            extra_args: Vec::new(),
            require_tls: true,
        }
    }

    /// Adds a curl option to every run, e.g. `--tlsv1.3` or `--no-sessionid`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Drops `--ssl-reqd`, so an explicit-mode login is attempted over plain FTP.
    pub fn without_tls(mut self) -> Self {
        self.require_tls = false;
        self
    }

    /// Lists the login directory (`LIST`).
    pub fn list(&self) -> Result<String> {
        let output = self.checked(&self.endpoint.url(""), &[])?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Uploads the local file `local` as `remote` (`STOR`).
    pub fn upload(&self, local: &Path, remote: &str) -> Result<()> {
        let local = local.to_str().expect("test paths are UTF-8");
        self.checked(&self.endpoint.url(remote), &["--upload-file", local])
            .map(drop)
    }

    /// Downloads `remote` (`RETR`) and returns its bytes.
    pub fn download(&self, remote: &str) -> Result<Vec<u8>> {
        Ok(self.checked(&self.endpoint.url(remote), &[])?.stdout)
    }

    /// Runs curl on `url` with `args` and returns whatever happened, success or not.
    pub fn run(&self, url: &str, args: &[&str]) -> Result<Output> {
        let curl = find_program("curl")?;
        let mut command = Command::new(curl);
        // --disable must come first: it makes curl ignore any ~/.curlrc.
        command.args([
            "--disable",
            "--silent",
            "--show-error",
            "--max-time",
            MAX_SECONDS,
        ]);
        command
            .args(["--connect-timeout", "5", "--cacert"])
            .arg(&self.endpoint.ca_cert_path);
        if self.require_tls {
            command.arg("--ssl-reqd");
        }
        // Credentials go through a config on stdin, not argv, so they stay out of `ps`.
        command
            .args(["--config", "-"])
            .args(&self.extra_args)
            .args(args)
            .arg(url);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(PeerError::io("starting curl"))?;
        let config = format!(
            "user = \"{}:{}\"\n",
            self.endpoint.user, self.endpoint.password
        );
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(config.as_bytes())
            .map_err(PeerError::io("writing curl config"))?;
        drop(stdin);
        child
            .wait_with_output()
            .map_err(PeerError::io("running curl"))
    }

    fn checked(&self, url: &str, args: &[&str]) -> Result<Output> {
        let output = self.run(url, args)?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(PeerError::CommandFailed {
                command: format!(
                    "curl {} {} {url}",
                    self.extra_args.join(" "),
                    args.join(" ")
                ),
                status: output.status,
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }
}
