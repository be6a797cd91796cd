//! Exit codes and error messages: each failure names its cause, the server's reply when there
//! is one, and a hint where one helps.

use std::fmt;

use ftps_proto::client::{ClientError, OpError, TimeoutKind};
use ftps_proto::codec::reply::Reply;
use ftps_proto::data::DataError;
use ftps_proto::tls::{CertificateProblem, TlsError};
use ftps_std::{Error, ErrorKind};

/// The exit codes (also listed in `--help` and the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
    /// 0: everything worked.
    Ok = 0,
    /// 1: bad command line, URL or option (nothing was sent).
    Usage = 1,
    /// 2: the connection or TLS failed (DNS, TCP, certificate, AUTH TLS refused, timeout,
    /// protocol violation, connection lost).
    Connection = 2,
    /// 3: the server refused the login.
    Login = 3,
    /// 4: the server refused an operation on a remote file or directory (550 and the like).
    RemoteFile = 4,
    /// 5: a transfer failed (data connection, truncation, 425/426).
    Transfer = 5,
    /// 6: a local file could not be read or written.
    LocalIo = 6,
}

/// What the tool was doing when an error happened; it decides between "login refused" and
/// "file refused" for the same reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Connecting and setting up TLS.
    Connect,
    /// USER/PASS/PBSZ/PROT.
    Login,
    /// A command on a file or directory.
    Command,
    /// A transfer (its local file is written or read by the driver).
    Transfer,
}

/// A failure ready to print: `ftps: MESSAGE` and maybe `hint: ...`.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The exit code.
    pub(crate) code: ExitCode,
    /// What failed and why.
    pub(crate) message: String,
    /// What the user can do about it.
    pub(crate) hint: Option<String>,
}

impl CliError {
    /// A usage error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message)
    }

    /// An error with `code`.
    pub(crate) fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// A local I/O failure on `path`.
    pub(crate) fn local(path: &std::path::Path, error: &std::io::Error) -> Self {
        Self::new(ExitCode::LocalIo, format!("{}: {error}", path.display()))
    }

    /// Classifies an error of the client while doing `what` at `stage`; `host` is the name
    /// the certificate was checked against.
    pub(crate) fn from_client(error: &Error, stage: Stage, what: &str, host: &str) -> Self {
        let code = classify(error, stage);
        let message = match (error, error.reply().or_else(|| closing_reply(error))) {
            (Error::Operation(OpError::Rejected { reply }), _) => {
                format!("{what}: refused by the server: {}", reply_text(reply))
            }
            (_, Some(reply)) => format!("{what}: {error} — server said: {}", reply_text(reply)),
            (_, None) => format!("{what}: {error}"),
        };
        let mut out = Self::new(code, message);
        out.hint = hint(error, host);
        out
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ftps: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// A reply as one line of text: `550 No such file`.
pub(crate) fn reply_text(reply: &Reply) -> String {
    let lines: Vec<String> = reply
        .lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .collect();
    format!("{} {}", reply.code.get(), lines.join(" / "))
}

fn closing_reply(error: &Error) -> Option<&Reply> {
    match error {
        Error::Closed(Some(
            ClientError::TlsRefused { reply }
            | ClientError::DataProtectionRefused { reply }
            | ClientError::ServiceClosing { reply },
        )) => Some(reply),
        _ => None,
    }
}

/// The exit code of `error` at `stage`: from the core's error kind (the one table C result
/// codes and Python exceptions also come from), refined by the stage and the reply code where
/// the kind alone cannot tell a refused login from a refused file.
fn classify(error: &Error, stage: Stage) -> ExitCode {
    let kind = error.kind();
    match error {
        // This tool's own files (and DNS, before anything was sent).
        Error::Io(_) if stage == Stage::Transfer => ExitCode::LocalIo,
        Error::Io(_) => ExitCode::Connection,
        Error::Usage(_) | Error::InvalidHostName(_) => ExitCode::Usage,
        Error::Operation(op) => match kind {
            ErrorKind::Refused => match op.reply().map(|reply| reply.code.get()) {
                // 530 "not logged in" is a login failure wherever it comes.
                Some(530 | 532) | None => ExitCode::Login,
                _ if stage == Stage::Login => ExitCode::Login,
                Some(425 | 426) => ExitCode::Transfer,
                Some(_) => ExitCode::RemoteFile,
            },
            // A reply that does not fit the command (or lacks its value).
            ErrorKind::Protocol if op.reply().is_some() => match stage {
                Stage::Login => ExitCode::Login,
                _ => ExitCode::RemoteFile,
            },
            ErrorKind::Transfer
            | ErrorKind::Aborted
            | ErrorKind::Tls
            | ErrorKind::Certificate
            | ErrorKind::Protocol => ExitCode::Transfer,
            _ if stage == Stage::Transfer => ExitCode::Transfer,
            _ => ExitCode::Connection,
        },
        Error::UnparsableReply(_) => ExitCode::RemoteFile,
        Error::Closed(Some(ClientError::TimedOut(TimeoutKind::DataIdle))) => ExitCode::Transfer,
        Error::Closed(_) if stage == Stage::Transfer => ExitCode::Transfer,
        _ => ExitCode::Connection,
    }
}

fn tls_error(error: &Error) -> Option<&TlsError> {
    match error {
        Error::Tls(e) | Error::Closed(Some(ClientError::Tls(e) | ClientError::ClearFailed(e))) => {
            Some(e)
        }
        Error::Operation(OpError::Data(DataError::Tls(e))) => Some(e),
        _ => None,
    }
}

fn hint(error: &Error, host: &str) -> Option<String> {
    if let Some(problem) = tls_error(error).and_then(TlsError::certificate_problem) {
        return Some(match problem {
            CertificateProblem::NotValidForName => format!(
                "the certificate is not valid for {host}; use the name on the certificate or --cacert"
            ),
            CertificateProblem::UnknownIssuer | CertificateProblem::BadSignature => {
                "the server's certificate is not signed by a trusted CA; pass that CA (or the \
                 self-signed certificate) with --cacert FILE, or --insecure to skip the check"
                    .into()
            }
            CertificateProblem::Expired | CertificateProblem::NotValidYet => {
                "the certificate is outside its validity period; check the clocks".into()
            }
            _ => "the certificate was refused; --cacert FILE names the CA to trust".into(),
        });
    }
    if tls_error(error).is_some_and(TlsError::is_peer_incompatible) {
        return Some(
            "the server offers no TLS version or cipher in common (TLS 1.2 is the minimum)".into(),
        );
    }
    if let Some(TlsError::Truncated) = tls_error(error) {
        return Some(
            "the server closed the TLS connection without close_notify; the data may be incomplete"
                .into(),
        );
    }
    if let Some(reply) = error.reply().or_else(|| closing_reply(error)) {
        let text = String::from_utf8_lossy(&reply.text()).to_ascii_lowercase();
        if reply.code.get() == 522 || text.contains("reuse") {
            return Some(
                "the server requires the data connection to resume the control connection's \
                 TLS session; this client does that, but a TLS 1.3 session is used once and \
                 some servers (ProFTPD) hand out no new one on uploads, so after several uploads \
                 in one session retry with --tls-max 1.2; otherwise check that no proxy ends \
                 TLS between you and the server"
                    .into(),
            );
        }
        if reply.code.get() == 530 {
            return Some(
                "check the user name and password (--user USER[:PASSWORD], --netrc)".into(),
            );
        }
    }
    match error {
        Error::Closed(Some(ClientError::TlsRefused { .. })) => Some(
            "the server does not offer explicit FTPS (AUTH TLS); try ftps:// for implicit TLS on port 990"
                .into(),
        ),
        Error::Closed(Some(ClientError::Io(_))) => {
            Some("is the server running, and is the port right (ftp:// 21, ftps:// 990)?".into())
        }
        Error::Closed(Some(ClientError::TimedOut(_))) => {
            Some("--timeout SECS allows more time; --active or --disable-epsv may help behind firewalls".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftps_proto::codec::reply::ReplyCode;

    fn reply(code: u16, text: &str) -> Reply {
        let digits = code.to_string().into_bytes();
        Reply::new(
            ReplyCode::from_digits([digits[0], digits[1], digits[2]]).unwrap(),
            text,
        )
    }

    fn rejected(code: u16, text: &str) -> Error {
        Error::Operation(OpError::Rejected {
            reply: reply(code, text),
        })
    }

    #[test]
    fn replies_map_to_codes_by_stage() {
        let e = rejected(530, "Login incorrect.");
        assert_eq!(classify(&e, Stage::Login), ExitCode::Login);
        assert_eq!(
            classify(&rejected(550, "x"), Stage::Command),
            ExitCode::RemoteFile
        );
        assert_eq!(
            classify(&rejected(550, "x"), Stage::Transfer),
            ExitCode::RemoteFile
        );
        assert_eq!(
            classify(&rejected(425, "x"), Stage::Transfer),
            ExitCode::Transfer
        );
        let truncated = Error::Operation(OpError::Data(DataError::Truncated));
        assert_eq!(classify(&truncated, Stage::Transfer), ExitCode::Transfer);
        let io = Error::Io(std::io::Error::other("disk full"));
        assert_eq!(classify(&io, Stage::Transfer), ExitCode::LocalIo);
    }

    #[test]
    fn name_mismatch_gets_the_name_hint() {
        let e = Error::Closed(Some(ClientError::Tls(TlsError::Rustls(
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName),
        ))));
        assert_eq!(classify(&e, Stage::Connect), ExitCode::Connection);
        let err = CliError::from_client(&e, Stage::Connect, "connect", "ftp.example.org");
        assert_eq!(
            err.hint.as_deref(),
            Some(
                "the certificate is not valid for ftp.example.org; use the name on the certificate or --cacert"
            )
        );
    }

    #[test]
    fn session_reuse_refusal_gets_a_hint_and_the_reply() {
        let e = rejected(522, "SSL connection failed: session reuse required");
        let err = CliError::from_client(&e, Stage::Transfer, "get x", "h");
        assert!(
            err.message.contains("522 SSL connection failed"),
            "{}",
            err.message
        );
        assert!(err.hint.unwrap().contains("resume"));
    }
}
