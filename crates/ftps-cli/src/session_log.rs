//! One stderr line per server session event (`ftps serve`): who connected, TLS, logins,
//! transfers with size, speed and data-session resumption, file-system changes (delete,
//! rename, mkdir, rmdir), refused file operations with the reason, and why a session ended.
//! The events carry no password, so no line can contain one.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use ftps_std::server::{SessionEvent, SessionLog};

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
/// (8.7 MB/s) ok, data TLS resumed`. The wording (with client text escaped, so a client cannot
/// forge or garble log lines) is the event's own `Display`.
pub(crate) fn log_line(session: u64, peer: SocketAddr, event: &SessionEvent) -> String {
    format!("#{session} {peer} {event}")
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ftps_std::server::{FileOp, TransferKind};

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
