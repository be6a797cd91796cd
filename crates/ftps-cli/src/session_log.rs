//! One stderr line per server session event (`ftps serve`): who connected, TLS, logins,
//! transfers with size, speed and data-session resumption, file-system changes (delete,
//! rename, mkdir, rmdir), refused file operations with the reason, and why a session ended.
//! The events carry no password, so no line can contain one.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use ftps_std::server::{SessionEvent, SessionLog, TransferKind};

/// Writes [`log_line`]s to stderr, each prefixed with the UTC time of day.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StderrLog;

impl SessionLog for StderrLog {
    fn event(&self, session: u64, peer: SocketAddr, event: &SessionEvent) {
        let line = format!("{} {}\n", time_of_day(), log_line(session, peer, event));
        // One write per line, so lines of concurrent sessions do not interleave; a closed
        // stderr leaves nobody to tell.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// `HH:MM:SS` (UTC) now.
fn time_of_day() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// One event as one line: `#3 127.0.0.1:50312 upload /a.bin 1048576 bytes in 0.12 s
/// (8.7 MB/s) ok, data TLS resumed`. Text from the peer (user names, paths, reasons) has its
/// control characters escaped, so a client cannot forge or garble log lines.
pub(crate) fn log_line(session: u64, peer: SocketAddr, event: &SessionEvent) -> String {
    let mut line = format!("#{session} {peer} ");
    match event {
        SessionEvent::Connected { implicit, .. } => {
            let mode = if *implicit { "implicit" } else { "explicit" };
            let _ = write!(line, "connected ({mode} FTPS)");
        }
        SessionEvent::Secured { version, cipher } => {
            let _ = write!(
                line,
                "TLS established: {}, {}",
                printable(version),
                printable(cipher)
            );
        }
        SessionEvent::LoggedIn { user } => {
            let _ = write!(line, "logged in as {}", printable(user));
        }
        SessionEvent::LoginRefused { user } => {
            let _ = write!(line, "login refused for {}", printable(user));
        }
        SessionEvent::Transfer {
            kind,
            path,
            bytes,
            duration,
            ok,
            resumed_tls,
        } => {
            let kind = match kind {
                TransferKind::Download => "download",
                TransferKind::Upload => "upload",
                TransferKind::Listing => "listing",
            };
            let secs = duration.as_secs_f64();
            let path = if path.is_empty() { "." } else { path };
            let _ = write!(
                line,
                "{kind} {} {bytes} bytes in {secs:.2} s ({}) {}, data TLS {}",
                printable(path),
                rate(*bytes, secs),
                if *ok { "ok" } else { "FAILED" },
                if *resumed_tls {
                    "resumed"
                } else {
                    "not resumed"
                }
            );
        }
        SessionEvent::FileOp {
            op,
            path,
            to,
            result,
        } => {
            let mut subject = format!("{op} {}", quoted(path));
            if let Some(to) = to {
                let _ = write!(subject, " -> {}", quoted(to));
            }
            match result {
                Ok(()) => {
                    let _ = write!(line, "{subject} ok");
                }
                Err(reason) => {
                    let _ = write!(line, "refused: {subject} — {}", printable(reason));
                }
            }
        }
        SessionEvent::Refused { reason } => {
            let _ = write!(line, "refused: {}", printable(reason));
        }
        SessionEvent::Closed { reason: None } => line.push_str("closed after QUIT"),
        SessionEvent::Closed {
            reason: Some(reason),
        } => {
            let _ = write!(line, "closed: {}", printable(reason));
        }
        _ => line.push_str("(event not known to this version)"),
    }
    line
}

/// A transfer rate: `8.7 MB/s` (decimal megabytes, like most download tools).
pub(crate) fn rate(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-- MB/s".to_owned();
    }
    // Precision loss above 2^53 bytes is irrelevant for a rate.
    #[allow(clippy::cast_precision_loss)]
    let mbps = bytes as f64 / secs / 1e6;
    format!("{mbps:.1} MB/s")
}

/// `text` with control characters (and nothing else) escaped.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `text` in double quotes, with control characters, quotes and backslashes escaped, so a
/// name with spaces (or a quote) cannot blur where it ends.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ftps_std::server::FileOp;

    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:50312".parse().unwrap()
    }

    #[test]
    fn a_transfer_line_has_size_time_rate_outcome_and_resumption() {
        let event = SessionEvent::Transfer {
            kind: TransferKind::Upload,
            path: "/a.bin".into(),
            bytes: 1_048_576,
            duration: Duration::from_millis(120),
            ok: true,
            resumed_tls: true,
        };
        assert_eq!(
            log_line(3, peer(), &event),
            "#3 127.0.0.1:50312 upload /a.bin 1048576 bytes in 0.12 s (8.7 MB/s) ok, data TLS resumed"
        );
        let failed = SessionEvent::Transfer {
            kind: TransferKind::Download,
            path: String::new(),
            bytes: 0,
            duration: Duration::ZERO,
            ok: false,
            resumed_tls: false,
        };
        assert_eq!(
            log_line(4, peer(), &failed),
            "#4 127.0.0.1:50312 download . 0 bytes in 0.00 s (-- MB/s) FAILED, data TLS not resumed"
        );
    }

    #[test]
    fn every_event_has_its_own_wording() {
        let lines: Vec<String> = [
            SessionEvent::Connected {
                peer: peer(),
                implicit: true,
            },
            SessionEvent::Secured {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_128_GCM_SHA256".into(),
            },
            SessionEvent::LoggedIn {
                user: "alice".into(),
            },
            SessionEvent::LoginRefused { user: "bob".into() },
            SessionEvent::Refused {
                reason: "522 data connection must resume".into(),
            },
            SessionEvent::FileOp {
                op: FileOp::Delete,
                path: "/a.txt".into(),
                to: None,
                result: Ok(()),
            },
            SessionEvent::FileOp {
                op: FileOp::Rename,
                path: "/a.txt".into(),
                to: Some("/b.txt".into()),
                result: Ok(()),
            },
            SessionEvent::FileOp {
                op: FileOp::Upload,
                path: "/x".into(),
                to: None,
                result: Err("permission denied".into()),
            },
            SessionEvent::Closed { reason: None },
            SessionEvent::Closed {
                reason: Some("idle timeout".into()),
            },
        ]
        .iter()
        .map(|e| log_line(1, peer(), e))
        .collect();
        let tails: Vec<&str> = lines
            .iter()
            .map(|l| l.strip_prefix("#1 127.0.0.1:50312 ").unwrap())
            .collect();
        assert_eq!(
            tails,
            [
                "connected (implicit FTPS)",
                "TLS established: TLSv1.3, TLS13_AES_128_GCM_SHA256",
                "logged in as alice",
                "login refused for bob",
                "refused: 522 data connection must resume",
                r#"delete "/a.txt" ok"#,
                r#"rename "/a.txt" -> "/b.txt" ok"#,
                r#"refused: upload "/x" — permission denied"#,
                "closed after QUIT",
                "closed: idle timeout",
            ]
        );
    }

    #[test]
    fn peer_text_cannot_break_or_forge_a_line() {
        let event = SessionEvent::LoginRefused {
            user: "x\n#9 127.0.0.1:1 logged in as root\u{1b}[2J".into(),
        };
        let line = log_line(2, peer(), &event);
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
        assert!(line.contains(r"x\n#9"), "{line}");
    }

    #[test]
    fn a_file_path_cannot_break_its_quotes_or_the_line() {
        let event = SessionEvent::FileOp {
            op: FileOp::MakeDir,
            path: "/a\" ok\n#9 127.0.0.1:1 delete \"/etc\\".into(),
            to: None,
            result: Err("already exists".into()),
        };
        assert_eq!(
            log_line(2, peer(), &event),
            r#"#2 127.0.0.1:50312 refused: mkdir "/a\" ok\n#9 127.0.0.1:1 delete \"/etc\\" — already exists"#
        );
    }

    #[test]
    fn rate_is_decimal_megabytes_per_second() {
        assert_eq!(rate(32_000_000, 2.0), "16.0 MB/s");
        assert_eq!(rate(5, 0.0), "-- MB/s");
    }
}
