//! The blocking server on 127.0.0.1 with this project's client: an upload's final reply comes
//! after the backend's commit (a failed commit is the client's error, and no file is left), and
//! the session log reports logins, transfers, refusals, file-system changes and refused file
//! operations, and ends, without ever a password.

use ftps_tests::data::payload;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftps_proto::server::{DirEntry, FsError};
use ftps_std::server::{
    Download, FileOp, LocalFs, SessionEvent, SessionLog, Storage, TransferKind, Upload,
};
use ftps_std::{Client, DataConnectionMode};
use ftps_tests::own_server::OwnServer;

const USER: &str = "alice";
const PASSWORD: &str = "Tr0ub4dor&3-never-logged";
const WRONG_PASSWORD: &str = "hunter2-also-never-logged";

/// A server on 127.0.0.1 (explicit FTPS only) over `storage(root)`, with `log`.
fn start(
    storage: impl FnOnce(LocalFs) -> Arc<dyn Storage> + 'static,
    log: Option<Arc<dyn SessionLog>>,
) -> OwnServer {
    let builder = OwnServer::builder()
        .credentials(USER, PASSWORD)
        .without_implicit()
        .configure(|session| session.timeouts.failed_login_delay = Duration::from_millis(20))
        .storage(storage);
    match log {
        Some(log) => builder.log(log),
        None => builder,
    }
    .start()
}

fn connect(fixture: &OwnServer) -> Client {
    Client::connect(fixture.client_options(false, DataConnectionMode::Passive)).unwrap()
}

// ---------------------------------------------------------------- upload commits

/// `LocalFs`, except that committing an upload fails as a full disk would (the upload is
/// discarded first, as a backend must).
struct CommitFails(LocalFs);

struct FailingUpload(Box<dyn Upload>);

impl Upload for FailingUpload {
    fn write(&mut self, bytes: &[u8]) -> Result<(), FsError> {
        self.0.write(bytes)
    }

    fn commit(self: Box<Self>) -> Result<(), FsError> {
        self.0.abort();
        Err(FsError::NoSpace)
    }

    fn abort(self: Box<Self>) {
        self.0.abort();
    }
}

impl Storage for CommitFails {
    fn change_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        self.0.change_dir(path)
    }
    fn make_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        self.0.make_dir(path)
    }
    fn remove_dir(&self, path: &[u8]) -> Result<(), FsError> {
        self.0.remove_dir(path)
    }
    fn delete(&self, path: &[u8]) -> Result<(), FsError> {
        self.0.delete(path)
    }
    fn rename(&self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        self.0.rename(from, to)
    }
    fn entry(&self, path: &[u8]) -> Result<DirEntry, FsError> {
        self.0.entry(path)
    }
    fn list(&self, path: &[u8]) -> Result<ftps_std::server::Listing, FsError> {
        self.0.list(path)
    }
    fn open_read(&self, path: &[u8], offset: u64) -> Result<Download, FsError> {
        self.0.open_read(path, offset)
    }
    fn open_write(
        &self,
        path: &[u8],
        offset: u64,
        append: bool,
    ) -> Result<Box<dyn Upload>, FsError> {
        let upload = self.0.open_write(path, offset, append)?;
        Ok(Box::new(FailingUpload(upload)))
    }
    fn open_unique(&self, dir: &[u8]) -> Result<(Vec<u8>, Box<dyn Upload>), FsError> {
        let (name, upload) = self.0.open_unique(dir)?;
        Ok((name, Box::new(FailingUpload(upload))))
    }
}

// spec: §3.4 (STOR after the 150: 226 only for a stored file; 552 when storage is full)
#[test]
fn a_failed_commit_reaches_the_client_and_leaves_no_file() {
    let fixture = start(|fs| Arc::new(CommitFails(fs)), None);
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    let data = payload(200_000, 1);
    let err = client.store("full.bin", &mut data.as_slice()).unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(552), "{err}");
    assert_eq!(fixture.root_names(), Vec::<String>::new());
    // The session goes on.
    assert_eq!(client.pwd().unwrap(), b"/");
    client.quit().unwrap();
}

/// An upload source that makes the commit's rename fail: when it is exhausted (the upload is
/// running by then), a directory takes the target's name.
struct BlockTargetAtEnd {
    data: Vec<u8>,
    pos: usize,
    target: std::path::PathBuf,
}

impl Read for BlockTargetAtEnd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        if n == 0 && !self.target.exists() {
            std::fs::create_dir(&self.target)?;
        }
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

// spec: §3.4 — LocalFs: a rename that fails at commit is 451, and the temporary file goes.
#[test]
fn local_fs_rename_failure_is_451_and_removes_the_temporary_file() {
    let fixture = start(|fs| Arc::new(fs), None);
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    let mut source = BlockTargetAtEnd {
        data: payload(1024 * 1024, 2),
        pos: 0,
        target: fixture.root().join("race.bin"),
    };
    let err = client.store("race.bin", &mut source).unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(451), "{err}");
    // Only the directory that blocked the rename: no `.ftps-part-*` left behind.
    assert_eq!(fixture.root_names(), vec!["race.bin".to_owned()]);
    assert!(fixture.root().join("race.bin").is_dir());
    // A normal upload still commits.
    let data = payload(10_000, 3);
    client.store("fine.bin", &mut data.as_slice()).unwrap();
    assert_eq!(
        std::fs::read(fixture.root().join("fine.bin")).unwrap(),
        data
    );
    client.quit().unwrap();
}

// ---------------------------------------------------------------- session log

type LoggedOp = (FileOp, String, Option<String>, Result<(), String>);

fn done(op: FileOp, path: &str) -> LoggedOp {
    (op, path.to_owned(), None, Ok(()))
}

fn refused(op: FileOp, path: &str, reason: &str) -> LoggedOp {
    (op, path.to_owned(), None, Err(reason.to_owned()))
}

#[derive(Default)]
struct Collect(Mutex<Vec<(u64, SocketAddr, SessionEvent)>>);

impl SessionLog for Collect {
    fn event(&self, session: u64, peer: SocketAddr, event: &SessionEvent) {
        self.0.lock().unwrap().push((session, peer, event.clone()));
    }
}

impl Collect {
    fn of(&self, session: u64) -> Vec<SessionEvent> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _, _)| *s == session)
            .map(|(_, _, e)| e.clone())
            .collect()
    }

    /// The file operations session `session` reported, in order.
    fn file_ops(&self, session: u64) -> Vec<LoggedOp> {
        self.of(session)
            .into_iter()
            .filter_map(|e| match e {
                SessionEvent::FileOp {
                    op,
                    path,
                    to,
                    result,
                } => Some((op, path, to, result)),
                _ => None,
            })
            .collect()
    }

    /// Waits until `count` sessions reported `Closed` (the log line follows the socket close).
    fn wait_closed(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let closed = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, _, e)| matches!(e, SessionEvent::Closed { .. }))
                .count();
            if closed >= count {
                return;
            }
            assert!(Instant::now() < deadline, "sessions did not close");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn session_log_reports_logins_transfers_refusals_and_ends() {
    let log = Arc::new(Collect::default());
    let fixture = start(|fs| Arc::new(fs), Some(log.clone()));

    // Session 1: a wrong password.
    let mut client = connect(&fixture);
    let err = client.login(USER, WRONG_PASSWORD).unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(530), "{err}");
    client.quit().unwrap();
    log.wait_closed(1);

    // Session 2: login, upload, download, listing, QUIT.
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    let data = payload(100_000, 4);
    client.store("up.bin", &mut data.as_slice()).unwrap();
    let mut back = Vec::new();
    client.retrieve("up.bin", 0, &mut back).unwrap();
    assert_eq!(back, data);
    assert!(!client.list(None).unwrap().is_empty());
    client.quit().unwrap();
    log.wait_closed(2);

    // Session 3: USER in plaintext, refused by policy (TLS first), then QUIT.
    let mut plain = TcpStream::connect(fixture.explicit_addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(plain.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line:?}");
    plain.write_all(b"USER alice\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("530 "), "{line:?}");
    plain.write_all(b"QUIT\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("221 "), "{line:?}");
    log.wait_closed(3);

    let all = log.0.lock().unwrap().clone();
    for (session, peer, event) in &all {
        assert!(matches!(session, 1..=3), "{session}");
        assert!(peer.ip().is_loopback());
        // No password, in either form.
        for text in [format!("{event:?}"), event.to_string()] {
            assert!(!text.contains(PASSWORD), "{text}");
            assert!(!text.contains(WRONG_PASSWORD), "{text}");
        }
    }

    let first = log.of(1);
    assert!(
        matches!(&first[0], SessionEvent::Connected { implicit: false, peer } if peer.ip().is_loopback()),
        "{first:?}"
    );
    assert!(
        matches!(&first[1], SessionEvent::Secured { version, cipher } if version == "TLSv1.3" && cipher.starts_with("TLS13_")),
        "{first:?}"
    );
    assert!(
        matches!(&first[2], SessionEvent::LoginRefused { user } if user == USER),
        "{first:?}"
    );
    assert!(
        matches!(first.last(), Some(SessionEvent::Closed { reason: None })),
        "{first:?}"
    );
    assert!(
        !first.iter().any(|e| matches!(
            e,
            SessionEvent::LoggedIn { .. } | SessionEvent::Transfer { .. }
        )),
        "{first:?}"
    );

    let second = log.of(2);
    assert!(
        matches!(
            &second[0],
            SessionEvent::Connected {
                implicit: false,
                ..
            }
        ),
        "{second:?}"
    );
    assert!(
        matches!(&second[1], SessionEvent::Secured { .. }),
        "{second:?}"
    );
    assert!(
        matches!(&second[2], SessionEvent::LoggedIn { user } if user == USER),
        "{second:?}"
    );
    let transfers: Vec<(TransferKind, String, u64, bool, bool)> = second
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Transfer {
                kind,
                path,
                bytes,
                ok,
                resumed_tls,
                ..
            } => Some((*kind, path.clone(), *bytes, *ok, *resumed_tls)),
            _ => None,
        })
        .collect();
    assert_eq!(transfers.len(), 3, "{second:?}");
    assert_eq!(
        transfers[0],
        (
            TransferKind::Upload,
            "/up.bin".to_owned(),
            100_000,
            true,
            true
        )
    );
    assert_eq!(
        transfers[1],
        (
            TransferKind::Download,
            "/up.bin".to_owned(),
            100_000,
            true,
            true
        )
    );
    let (kind, path, bytes, ok, resumed) = transfers[2].clone();
    assert_eq!(
        (kind, path.as_str(), ok, resumed),
        (TransferKind::Listing, "/", true, true)
    );
    assert!(bytes > 0);
    assert!(
        !second
            .iter()
            .any(|e| matches!(e, SessionEvent::Refused { .. })),
        "{second:?}"
    );
    assert!(
        matches!(second.last(), Some(SessionEvent::Closed { reason: None })),
        "{second:?}"
    );

    let third = log.of(3);
    assert_eq!(third.len(), 3, "{third:?}");
    assert!(matches!(&third[0], SessionEvent::Connected { .. }));
    assert!(
        matches!(&third[1], SessionEvent::Refused { reason } if reason.contains("TLS required")),
        "{third:?}"
    );
    assert!(matches!(&third[2], SessionEvent::Closed { reason: None }));

    // Display gives one line per event.
    for (_, _, event) in &all {
        let line = event.to_string();
        assert!(!line.is_empty() && !line.contains('\n'), "{line:?}");
    }
}

#[test]
fn session_log_reports_file_changes_and_refused_file_operations() {
    let log = Arc::new(Collect::default());
    let fixture = start(|fs| Arc::new(fs), Some(log.clone()));
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    assert!(client.mkdir("d").is_ok());
    let err = client.mkdir("d").unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(550), "{err}");
    client.store("a.txt", &mut &b"hello"[..]).unwrap();
    // Accepted reads are not logged.
    assert_eq!(client.size("a.txt").unwrap(), 5);
    client.cwd("d").unwrap();
    client.cwd("/").unwrap();
    client.rename("a.txt", "d/b.txt").unwrap();
    client.delete("d/b.txt").unwrap();
    client.rmdir("d").unwrap();
    let err = client
        .retrieve("missing.bin", 0, &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(550), "{err}");
    let err = client.cwd("nowhere").unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(550), "{err}");
    let err = client.delete("d").unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(550), "{err}");
    client.quit().unwrap();
    log.wait_closed(1);

    assert_eq!(
        log.file_ops(1),
        vec![
            done(FileOp::MakeDir, "/d"),
            refused(FileOp::MakeDir, "/d", "already exists"),
            (
                FileOp::Rename,
                "/a.txt".to_owned(),
                Some("/d/b.txt".to_owned()),
                Ok(())
            ),
            done(FileOp::Delete, "/d/b.txt"),
            done(FileOp::RemoveDir, "/d"),
            refused(FileOp::Download, "/missing.bin", "not found"),
            refused(FileOp::ChangeDir, "/nowhere", "not found"),
            refused(FileOp::Delete, "/d", "not found"),
        ]
    );
    // The upload that succeeded is a transfer, not a file operation.
    let uploads = log
        .of(1)
        .iter()
        .filter(|e| {
            matches!(
                e,
                SessionEvent::Transfer {
                    kind: TransferKind::Upload,
                    ok: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(uploads, 1);
    let lines: Vec<String> = log.of(1).iter().map(ToString::to_string).collect();
    assert!(
        lines.contains(&r#"rename "/a.txt" -> "/d/b.txt" ok"#.to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&r#"refused: download "/missing.bin" — not found"#.to_owned()),
        "{lines:?}"
    );
}

#[test]
fn session_log_reports_what_a_read_only_server_refuses() {
    let log = Arc::new(Collect::default());
    let fixture = start(|fs| Arc::new(fs.read_only(true)), Some(log.clone()));
    std::fs::write(fixture.root().join("here.txt"), b"content").unwrap();
    let mut client = fixture.login(false, DataConnectionMode::Passive);
    let err = client.store("x.bin", &mut &b"data"[..]).unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(550), "{err}");
    let err = client.delete("here.txt").unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(550), "{err}");
    let err = client.mkdir("new").unwrap_err();
    assert_eq!(err.reply().map(|r| r.code.get()), Some(550), "{err}");
    // Reading still works, and is not a file-operation line.
    let mut back = Vec::new();
    client.retrieve("here.txt", 0, &mut back).unwrap();
    assert_eq!(back, b"content");
    client.quit().unwrap();
    log.wait_closed(1);

    assert_eq!(
        log.file_ops(1),
        vec![
            refused(FileOp::Upload, "/x.bin", "permission denied"),
            refused(FileOp::Delete, "/here.txt", "permission denied"),
            refused(FileOp::MakeDir, "/new", "permission denied"),
        ]
    );
    assert_eq!(fixture.root_names(), vec!["here.txt".to_owned()]);
}
