//! The server session fed arbitrary client bytes on the control and data connections (plain
//! FTP, so the bytes reach the command parser and the state machine rather than stopping at
//! the TLS layer), with every request answered and every complete upload's commit reported
//! (failing when logins are refused): never panics, reports `Closed` at most once.
#![no_main]

use ftps_proto::codec::listing::Permissions;
use ftps_proto::io::{Channel, Instant, IoErrorKind, IoRequest, Output};
use ftps_proto::server::{
    Answer, DirEntry, DirEntryKind, FsError, Request, ServerEvent, ServerSession,
    ServerSessionConfig, Termination,
};
use libfuzzer_sys::fuzz_target;

/// What a driver reports of a socket fault (a piece of input starting 0xFC..=0xFF, see below).
const IO_ERRORS: [IoErrorKind; 7] = [
    IoErrorKind::ConnectionRefused,
    IoErrorKind::ConnectionReset,
    IoErrorKind::ConnectionAborted,
    IoErrorKind::Unreachable,
    IoErrorKind::TimedOut,
    IoErrorKind::AddrNotAvailable,
    IoErrorKind::Other,
];

/// What the storage may answer. With logins granted, every fourth request (by id) is refused
/// with one of these, and every fourth upload fails mid-way (`fail_transfer`), so that the
/// refusal replies and a storage failure during a transfer are fuzzed too.
const FS_ERRORS: [FsError; 8] = [
    FsError::NotFound,
    FsError::PermissionDenied,
    FsError::WrongKind,
    FsError::AlreadyExists,
    FsError::InvalidName,
    FsError::NoSpace,
    FsError::Unavailable,
    FsError::Local,
];

fn refusal(id: u64) -> Option<FsError> {
    (id % 4 == 3).then(|| FS_ERRORS[(id / 4) as usize % FS_ERRORS.len()])
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, data)) = data.split_first() else {
        return;
    };
    let peer = "127.0.0.1:40000".parse().expect("address");
    let local = "127.0.0.1:2121".parse().expect("address");
    let mut session = ServerSession::new(
        ServerSessionConfig::plaintext(),
        peer,
        local,
        Instant::from_nanos(0),
    );
    let grant = knobs & 1 == 1;
    let chunk = usize::from(knobs >> 1) + 1;
    let mut pieces = data.chunks(chunk);
    let mut buf = vec![0u8; 4096];
    let mut now = 0u64;
    let mut closed = 0;
    let mut last_data = None;
    for _ in 0..10_000 {
        now += 1_000_000;
        let at = Instant::from_nanos(now);
        let mut deadline = None;
        let mut requests = Vec::new();
        let mut uploads = Vec::new();
        for _ in 0..10_000 {
            match session.poll_output(&mut buf, at) {
                Output::Transmit { len, .. } => assert!(len <= buf.len()),
                Output::Io(IoRequest::Connect { channel, .. }) => {
                    if let Channel::Data(id) = channel {
                        last_data = Some(id);
                    }
                    session.handle_connected(channel, "127.0.0.1:20".parse().expect("addr"), at);
                }
                Output::Io(IoRequest::Listen { data, .. }) => {
                    last_data = Some(data);
                    session.handle_listening(data, "127.0.0.1:40001".parse().expect("addr"), at);
                    session.handle_accepted(data, peer, at);
                }
                Output::Event(ServerEvent::Request { id, request }) => requests.push((id, request)),
                Output::Event(ServerEvent::UploadFinished { id, complete, .. }) => {
                    uploads.push((id, complete));
                }
                Output::Event(ServerEvent::Readable { id }) if grant && id.get() % 4 == 2 => {
                    let _ = session.fail_transfer(id, FS_ERRORS[id.get() as usize % 8]);
                }
                Output::Event(ServerEvent::Readable { id }) => {
                    let mut chunk = [0u8; 512];
                    while let Ok(n) = session.read_data(id, &mut chunk) {
                        assert!(n <= chunk.len());
                        if n == 0 {
                            break;
                        }
                    }
                }
                Output::Event(ServerEvent::Closed { .. }) => closed += 1,
                Output::Event(_) | Output::Io(_) => {}
                Output::Wait { deadline: next } => {
                    deadline = next;
                    break;
                }
                _ => {}
            }
        }
        assert!(closed <= 1, "Closed reported twice");
        for (id, complete) in uploads {
            let result =
                session.finish_upload(id, if grant { Ok(()) } else { Err(FsError::NoSpace) });
            // Only a complete upload waits for its commit, and only while the session runs.
            assert!(
                complete || result.is_err(),
                "an incomplete upload took a commit"
            );
        }
        for (id, request) in requests {
            let _ = match request {
                Request::Login { .. } => session.answer_login(id, grant),
                _ if grant && refusal(id.get()).is_some() => {
                    session.answer(id, Err(refusal(id.get()).expect("refusal")))
                }
                Request::List { .. } if grant => {
                    session.answer(id, Ok(Answer::Done)).and_then(|()| {
                        let entry = DirEntry {
                            name: b"file".to_vec(),
                            kind: DirEntryKind::File,
                            size: 3,
                            modified: None,
                            permissions: Permissions::from_letters(b"r"),
                            mode: Some(0o644),
                            unique: None,
                        };
                        session.write_entry(id, &entry)?;
                        session.finish_data(id)
                    })
                }
                Request::Retrieve { .. } if grant => session
                    .write_data(id, b"abc")
                    .and_then(|_| session.finish_data(id)),
                Request::Size { .. } if grant => session.answer(id, Ok(Answer::Size(3))),
                _ if grant => session.answer(id, Ok(Answer::Done)),
                _ => session.answer(id, Err(FsError::NotFound)),
            };
        }
        match pieces.next() {
            // What only a driver reports, so far never fuzzed: a socket error, a failed send,
            // back-pressure and its end — on the control or the latest data connection — and
            // the driver's shutdown. A rare first byte (0xFB..=0xFF) steers a piece here; its
            // second byte picks the channel and the error.
            Some(&[op @ 0xFB..=0xFF, how, ..]) => {
                let channel = match last_data {
                    Some(id) if how & 1 != 0 => Channel::Data(id),
                    _ => Channel::Control,
                };
                let kind = IO_ERRORS[usize::from(how >> 1) % IO_ERRORS.len()];
                match op {
                    0xFF => session.handle_io_error(channel, kind, at),
                    0xFE => session.handle_transmit_failed(channel, kind, at),
                    0xFD => session.handle_transmit_blocked(channel, at),
                    0xFC => session.handle_transmit_ready(channel, at),
                    _ => session.terminate(Termination::ShuttingDown, at),
                }
            }
            Some(piece) => {
                let channel = match last_data {
                    Some(id) if piece[0] & 0x80 != 0 => Channel::Data(id),
                    _ => Channel::Control,
                };
                let _ = session.handle_receive(channel, piece, at);
                if piece[0] & 0x40 != 0 && channel != Channel::Control {
                    session.handle_eof(channel, at);
                }
            }
            None => match deadline {
                Some(when) => session.handle_timeout(when),
                None => break,
            },
        }
        if session.is_closed() && closed == 1 {
            break;
        }
    }
});
