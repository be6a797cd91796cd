//! The sans-IO FTPS client session against a scripted server built from the codec and the TLS
//! adapter, in memory (no sockets), with simulated time.

#[allow(dead_code)]
mod client_support;
#[allow(dead_code)]
mod common;

use std::time::Duration;

use client_support::{DataEnd, Ev, Harness, Script, Split, client_config};
use ftps_proto::client::{
    ClientError, ClientTlsMode, DataProtection, OpError, ProtocolError, TimeoutKind,
    TraceDirection, UsageError,
};
use ftps_proto::codec::command::{Command, Verb};
use ftps_proto::codec::reply::ReplyError;
use ftps_proto::io::{Channel, IoRequest};

fn script() -> Script {
    Script::default()
}

fn reply_override(script: &mut Script, verb: Verb, raw: &[&[u8]]) {
    script
        .overrides
        .push((verb, raw.iter().map(|r| r.to_vec()).collect()));
}

// spec: T02, T03, T09, T16, T17, T18, T31
#[test]
fn explicit_login_sets_up_pbsz_prot_and_asks_feat_only_after_tls() {
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), script());
    h.run();
    let login = h.login();
    assert_eq!(
        h.server.verbs(),
        vec![
            Verb::Auth,
            Verb::Feat,
            Verb::User,
            Verb::Pass,
            Verb::Pbsz,
            Verb::Prot,
            Verb::Opts
        ]
    );
    // Only AUTH TLS travelled in clear.
    assert_eq!(h.server.plaintext_wire, b"AUTH TLS\r\n");
    assert_eq!(h.server.commands[0], Command::Auth(b"TLS".to_vec()));
    assert_eq!(h.server.commands[4], Command::Pbsz(0));
    assert!(h.server.prot_private);
    assert!(matches!(h.events[0], Ev::Connected(220)));
    assert!(matches!(h.events[1], Ev::Secured(_)));
    match &h.events[2] {
        Ev::Ready(features) => {
            // The FEAT answer after TLS, not the one before.
            assert!(features.iter().any(|f| f == b"UTF8"));
            assert!(features.iter().any(|f| f == b"PBSZ"));
        }
        other => panic!("expected Ready, got {other:?}"),
    }
    assert!(h.events.contains(&Ev::LoggedIn(login)));
    assert!(h.client.is_secure());
    assert!(h.client.is_logged_in());
    assert_eq!(h.closed_count(), 0);
}

#[test]
fn implicit_mode_reads_the_greeting_inside_tls() {
    let mut s = script();
    s.implicit = true;
    let mut h = Harness::new(client_config(ClientTlsMode::Implicit), s);
    h.run();
    h.login();
    assert!(matches!(h.events[0], Ev::Secured(_)));
    assert!(matches!(h.events[1], Ev::Connected(220)));
    assert_eq!(h.server.verbs()[0], Verb::Feat);
    assert!(!h.server.verbs().contains(&Verb::Auth));
    assert!(h.server.plaintext_wire.is_empty());
}

// spec: T07, T08, T47, §9.3
#[test]
fn refused_auth_never_leads_to_a_plaintext_login() {
    let refusals: [&[u8]; 7] = [
        b"334 ADAT follows\r\n",
        b"200 sure\r\n",
        b"235 almost\r\n",
        b"431 later\r\n",
        b"500 what\r\n",
        b"534 policy\r\n",
        b"234-multi\r\n234 but multi-line\r\nextra",
    ];
    for refusal in refusals {
        let mut s = script();
        s.auth_reply = refusal.to_vec();
        let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
        // The application queues its login before anything happened.
        let login = h.client.login(b"alice", b"secret", None).unwrap();
        h.run();
        let wire = String::from_utf8_lossy(&h.server.plaintext_wire).to_string();
        assert!(!wire.contains("USER"), "{refusal:?}: {wire}");
        assert!(!wire.contains("PASS"), "{refusal:?}: {wire}");
        assert!(!h.client.is_secure());
        let closed = h.closed().cloned().flatten();
        match closed {
            Some(ClientError::TlsRefused { .. }) => {
                assert_eq!(wire, "AUTH TLS\r\nQUIT\r\n", "{refusal:?}");
            }
            // A 234 followed by plaintext is the injection case.
            Some(ClientError::Protocol(ProtocolError::PlaintextAfterAuth { .. })) => {
                assert!(refusal.starts_with(b"234"));
            }
            other => panic!("{refusal:?}: unexpected end {other:?}"),
        }
        assert_eq!(h.completed(login), Some(&Err(OpError::SessionClosed)));
        assert_eq!(h.closed_count(), 1);
    }
}

// spec: T08
#[test]
fn plaintext_fallback_only_when_explicitly_allowed() {
    let mut s = script();
    s.auth_reply = b"502 no TLS here\r\n".to_vec();
    let mut h = Harness::new(client_config(ClientTlsMode::ExplicitIfAvailable), s);
    h.run();
    h.login();
    assert!(!h.client.is_secure());
    // No PBSZ/PROT without TLS.
    assert_eq!(
        h.server.verbs(),
        vec![Verb::Auth, Verb::Feat, Verb::User, Verb::Pass]
    );
}

// spec: §9.2, T31
#[test]
fn plaintext_bytes_after_234_abort_the_session() {
    let mut s = script();
    s.after_auth = b"230 fake login\r\n".to_vec();
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    let login = h.client.login(b"alice", b"secret", None).unwrap();
    h.run();
    assert_eq!(
        h.closed().cloned().flatten(),
        Some(ClientError::Protocol(ProtocolError::PlaintextAfterAuth {
            count: 16
        }))
    );
    assert_eq!(h.server.plaintext_wire, b"AUTH TLS\r\n");
    assert_eq!(h.completed(login), Some(&Err(OpError::SessionClosed)));
    assert!(!h.events.iter().any(|e| matches!(e, Ev::Secured(_))));
}

// spec: §9.3, T17, T21
#[test]
fn refused_data_protection_ends_the_session_before_any_transfer() {
    let mut s = script();
    reply_override(&mut s, Verb::Prot, &[b"534 no private data\r\n"]);
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    let login = h.client.login(b"alice", b"secret", None).unwrap();
    let retr = h.client.retrieve(b"file", None).unwrap();
    h.run();
    assert!(matches!(
        h.closed().cloned().flatten(),
        Some(ClientError::DataProtectionRefused { .. })
    ));
    assert_eq!(h.completed(login), Some(&Err(OpError::SessionClosed)));
    assert_eq!(h.completed(retr), Some(&Err(OpError::SessionClosed)));
    assert!(!h.server.verbs().contains(&Verb::Retr));
}

#[test]
fn clear_data_protection_on_request_sends_prot_c() {
    let mut config = client_config(ClientTlsMode::Explicit);
    config.data_protection = DataProtection::Clear;
    let mut h = Harness::new(config, script());
    h.run();
    h.login();
    assert!(h.server.commands.contains(&Command::Prot(
        ftps_proto::codec::command::ProtectionLevel::Clear
    )));
    assert!(!h.server.prot_private);
}

// spec: T12
#[test]
fn a_232_to_user_is_a_complete_login() {
    let mut s = script();
    reply_override(&mut s, Verb::User, &[b"232 logged in by certificate\r\n"]);
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    let op = h.client.login(b"alice", b"secret", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(232)));
    assert!(!h.server.verbs().contains(&Verb::Pass));
}

#[test]
fn a_rejected_login_is_an_operation_result_and_the_session_goes_on() {
    let mut s = script();
    reply_override(
        &mut s,
        Verb::Pass,
        &[b"530 Login incorrect\r\n", b"230 ok now\r\n"],
    );
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    let first = h.client.login(b"alice", b"wrong", None).unwrap();
    h.run();
    match h.completed(first) {
        Some(Err(OpError::Rejected { reply })) => assert_eq!(reply.code.get(), 530),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.closed_count(), 0);
    h.login();
}

// spec: §3.4
#[test]
fn simple_commands_complete_with_their_replies() {
    let mut s = script();
    reply_override(&mut s, Verb::Dele, &[b"550 no such file\r\n"]);
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    h.login();
    let cwd = h.client.cwd(b"/pub").unwrap();
    let pwd = h.client.pwd().unwrap();
    let mkd = h.client.mkd(b"new dir").unwrap();
    let rename = h.client.rename(b"a", b"b").unwrap();
    let size = h.client.size(b"a").unwrap();
    let noop = h.client.noop().unwrap();
    let syst = h.client.syst().unwrap();
    let dele = h.client.dele(b"gone").unwrap();
    let raw = h.client.raw_command(b"XYZZ", Some(b"arg")).unwrap();
    h.run();
    assert_eq!(h.completed(cwd), Some(&Ok(250)));
    assert_eq!(h.completed(pwd), Some(&Ok(257)));
    assert_eq!(h.completed(mkd), Some(&Ok(257)));
    assert_eq!(h.completed(rename), Some(&Ok(250)));
    assert_eq!(h.completed(size), Some(&Ok(213)));
    assert_eq!(h.completed(noop), Some(&Ok(200)));
    assert_eq!(h.completed(syst), Some(&Ok(215)));
    match h.completed(dele) {
        Some(Err(OpError::Rejected { reply })) => assert_eq!(reply.code.get(), 550),
        other => panic!("{other:?}"),
    }
    match h.completed(raw) {
        Some(Err(OpError::Rejected { reply })) => assert_eq!(reply.code.get(), 500),
        other => panic!("{other:?}"),
    }
    assert!(h.server.commands.contains(&Command::Rnfr(b"a".to_vec())));
    assert!(h.server.commands.contains(&Command::Rnto(b"b".to_vec())));
    assert_eq!(h.closed_count(), 0);
}

// spec: §3.2
#[test]
fn arguments_with_line_breaks_are_refused() {
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), script());
    assert_eq!(
        h.client.cwd(b"a\r\nDELE x"),
        Err(UsageError::LineBreakInArgument)
    );
    assert_eq!(
        h.client.login(b"u\n", b"p", None),
        Err(UsageError::LineBreakInArgument)
    );
    assert_eq!(
        h.client.retrieve(b"x\ry", None),
        Err(UsageError::LineBreakInArgument)
    );
    h.run();
    assert_eq!(h.client.pending_ops(), 0);
}

// spec: §3.4, §9.7
#[test]
fn an_unlisted_positive_reply_fails_the_operation_with_the_reply() {
    let mut s = script();
    reply_override(&mut s, Verb::Cwd, &[b"257 odd\r\n"]);
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    h.login();
    let op = h.client.cwd(b"/x").unwrap();
    h.run();
    match h.completed(op) {
        Some(Err(OpError::UnexpectedReply { command, reply })) => {
            assert_eq!(*command, "CWD");
            assert_eq!(reply.code.get(), 257);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.closed_count(), 0);
}

// spec: §9.7
#[test]
fn an_unexpected_1yz_or_6yz_is_a_protocol_error() {
    for raw in [&b"150 what\r\n"[..], b"631 protected\r\n", b"331 more?\r\n"] {
        let mut s = script();
        reply_override(&mut s, Verb::Cwd, &[raw]);
        let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
        h.run();
        h.login();
        let op = h.client.cwd(b"/x").unwrap();
        h.run();
        assert!(
            matches!(
                h.closed().cloned().flatten(),
                Some(ClientError::Protocol(ProtocolError::UnexpectedReply {
                    command: "CWD",
                    ..
                }))
            ),
            "{raw:?}: {:?}",
            h.events
        );
        assert_eq!(h.completed(op), Some(&Err(OpError::SessionClosed)));
    }
}

// spec: §3.7
#[test]
fn quit_ends_the_session_in_order_exactly_once() {
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), script());
    h.run();
    h.login();
    let quit = h.client.quit().unwrap();
    h.run();
    assert_eq!(h.completed(quit), Some(&Ok(221)));
    assert_eq!(h.closed(), Some(&None));
    assert_eq!(h.closed_count(), 1);
    assert!(h.io.contains(&IoRequest::Close {
        channel: Channel::Control
    }));
    assert!(matches!(h.events.last(), Some(Ev::Closed(None))));
    assert_eq!(h.client.noop(), Err(UsageError::Closed));
    // Later inputs are ignored; no second Closed.
    h.client
        .handle_receive(Channel::Control, b"200 late\r\n", h.instant());
    h.run();
    assert_eq!(h.closed_count(), 1);
}

// spec: §3.1
#[test]
fn a_421_ends_the_session_with_an_event() {
    let mut s = script();
    reply_override(&mut s, Verb::Noop, &[b"421 shutting down\r\n"]);
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    h.login();
    let noop = h.client.noop().unwrap();
    let pwd = h.client.pwd().unwrap();
    h.run();
    match h.closed().cloned().flatten() {
        Some(ClientError::ServiceClosing { reply }) => assert_eq!(reply.code.get(), 421),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.completed(noop), Some(&Err(OpError::SessionClosed)));
    assert_eq!(h.completed(pwd), Some(&Err(OpError::SessionClosed)));
    assert_eq!(h.closed_count(), 1);
}

#[test]
fn a_dropped_control_connection_ends_the_session() {
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), script());
    h.run();
    h.login();
    let now = h.instant();
    h.client.handle_eof(Channel::Control, now);
    h.run();
    // Under TLS an EOF without close_notify is a truncation of the control stream.
    assert!(matches!(
        h.closed().cloned().flatten(),
        Some(ClientError::Tls(_) | ClientError::ConnectionLost)
    ));
    assert_eq!(h.closed_count(), 1);
}

// spec: §3.1
#[test]
fn an_over_long_reply_line_ends_the_session() {
    let mut s = script();
    let mut long = b"250 ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 9000));
    long.extend_from_slice(b"\r\n");
    reply_override(&mut s, Verb::Cwd, &[&long]);
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    h.login();
    h.client.cwd(b"/x").unwrap();
    h.run();
    assert!(matches!(
        h.closed().cloned().flatten(),
        Some(ClientError::Protocol(ProtocolError::MalformedReply(
            ReplyError::LineTooLong { .. }
        )))
    ));
}

#[test]
fn a_server_that_never_answers_times_out_through_the_deadline() {
    let mut s = script();
    s.mute.push(Verb::Pwd);
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    h.login();
    let op = h.client.pwd().unwrap();
    h.run();
    let deadline = h.last_wait.flatten().expect("a reply deadline is armed");
    assert_eq!(
        deadline.as_nanos(),
        h.now + Duration::from_secs(60).as_nanos() as u64
    );
    // Early wake-ups change nothing.
    h.advance(Duration::from_secs(59));
    assert_eq!(h.closed_count(), 0);
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.closed().cloned().flatten(),
        Some(ClientError::TimedOut(TimeoutKind::Reply))
    );
    assert_eq!(h.completed(op), Some(&Err(OpError::SessionClosed)));
}

#[test]
fn a_connect_that_never_completes_times_out() {
    let config = client_config(ClientTlsMode::Explicit);
    let mut session =
        ftps_proto::client::ClientSession::new(config, ftps_proto::io::Instant::from_nanos(5));
    let mut buf = [0u8; 64];
    let now = ftps_proto::io::Instant::from_nanos(5);
    assert!(matches!(
        session.poll_output(&mut buf, now),
        ftps_proto::io::Output::Io(IoRequest::Connect {
            channel: Channel::Control,
            ..
        })
    ));
    let ftps_proto::io::Output::Wait { deadline: Some(at) } = session.poll_output(&mut buf, now)
    else {
        panic!("expected a connect deadline");
    };
    session.handle_timeout(at);
    let mut saw_closed = false;
    for _ in 0..10 {
        if let ftps_proto::io::Output::Event(ftps_proto::client::ClientEvent::Closed { error }) =
            session.poll_output(&mut buf, at)
        {
            assert_eq!(error, Some(ClientError::TimedOut(TimeoutKind::Connect)));
            saw_closed = true;
            break;
        }
    }
    assert!(saw_closed);
}

// spec: §3.1
#[test]
fn a_multi_line_reply_split_at_every_byte_gives_the_same_session() {
    let mut whole = Harness::new(client_config(ClientTlsMode::Explicit), script());
    whole.run();
    whole.login();
    whole.client.syst().unwrap();
    whole.run();

    let mut s = script();
    s.greeting = b"220-Welcome\r\n220 still welcome\r\n".to_vec();
    let mut bytewise = Harness::new(client_config(ClientTlsMode::Explicit), s.clone());
    bytewise.set_split(Split::Bytewise);
    bytewise.run();
    bytewise.login();
    bytewise.client.syst().unwrap();
    bytewise.run();
    let strip = |events: &[Ev]| -> Vec<Ev> {
        events
            .iter()
            .filter(|e| !matches!(e, Ev::Secured(_)))
            .cloned()
            .collect()
    };
    assert_eq!(strip(&whole.events), strip(&bytewise.events));
}

// ---------------------------------------------------------------- transfers

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn logged_in(config: ftps_proto::client::ClientSessionConfig, script: Script) -> Harness {
    let mut h = Harness::new(config, script);
    h.run();
    h.login();
    h
}

fn transfer_done(h: &Harness, op: ftps_proto::client::OpId) -> (u64, Option<bool>) {
    h.events
        .iter()
        .find_map(|e| match e {
            Ev::TransferCompleted {
                op: id,
                bytes,
                resumed,
            } if *id == op => Some((*bytes, *resumed)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TransferCompleted for {op:?}: {:#?}", h.events))
}

fn download_with(server: Option<rustls::ServerConfig>, split: Split) {
    let file = payload(200_000);
    let mut s = script();
    s.file = file.clone();
    let mut h = match server {
        Some(cfg) => Harness::with_server_config(
            client_config(ClientTlsMode::Explicit),
            s,
            std::sync::Arc::new(cfg),
        ),
        None => Harness::new(client_config(ClientTlsMode::Explicit), s),
    };
    h.set_split(split);
    h.run();
    h.login();
    let op = h.client.retrieve(b"big.bin", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert_eq!(h.downloaded.get(&op).map(Vec::len), Some(file.len()));
    assert!(h.downloaded[&op] == file, "downloaded bytes differ");
    let (bytes, resumed) = transfer_done(&h, op);
    assert_eq!(bytes, file.len() as u64);
    // spec: T40 — the data connection resumed the control connection's session (the server
    // requires it and would refuse a full handshake).
    assert_eq!(resumed, Some(true));
    assert_eq!(h.server.data_resumed, vec![Some(true)]);
    // spec: E07 — EPSV first; the data connection went to the control peer.
    assert!(h.server.verbs().contains(&Verb::Epsv));
    assert_eq!(h.server.passive_connects[0].ip(), client_support::SERVER_IP);
    assert_eq!(h.server.passive_connects[0].port(), 5001);
    assert!(h.server.commands.contains(&Command::Type(
        ftps_proto::codec::command::TransferType::Image
    )));
    assert_eq!(h.closed_count(), 0);
}

// spec: T25, T32, T34, T35, T40, §9.4
#[test]
fn download_over_tls13_resumes_the_control_session() {
    download_with(None, Split::Whole);
}

// spec: T32, T40
#[test]
fn download_over_tls12_resumes_the_control_session() {
    let cfg = common::server_with_versions(common::pki(), &[&rustls::version::TLS12]);
    download_with(Some(cfg), Split::Whole);
}

#[test]
fn download_in_small_random_segments() {
    download_with(None, Split::Random(7));
}

// spec: T25, T32, T35, T40
#[test]
fn upload_delivers_every_byte_and_ends_with_close_notify() {
    let file = payload(150_000);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
    let op = h.client.store(b"up.bin").unwrap();
    h.uploads.insert(op, file.clone());
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.server.uploaded == file, "uploaded bytes differ");
    assert_eq!(h.server.upload_clean, Some(true));
    let (bytes, resumed) = transfer_done(&h, op);
    assert_eq!(bytes, file.len() as u64);
    assert_eq!(resumed, Some(true));
    assert!(
        h.io.iter()
            .any(|r| matches!(r, IoRequest::ShutdownWrite { .. }))
    );
}

// spec: T25, §9.4
#[test]
fn an_empty_upload_still_does_the_handshake_and_close_notify() {
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
    let op = h.client.store(b"empty").unwrap();
    // Finished before the data connection even exists.
    h.client.finish_upload(op).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert_eq!(h.server.uploaded, b"");
    assert_eq!(h.server.upload_clean, Some(true));
    assert_eq!(h.server.data_resumed, vec![Some(true)]);
    assert_eq!(transfer_done(&h, op), (0, Some(true)));
}

#[test]
fn uploads_in_clear_when_prot_c_was_requested() {
    let mut config = client_config(ClientTlsMode::Explicit);
    config.data_protection = DataProtection::Clear;
    let file = payload(70_000);
    let mut h = logged_in(config, script());
    let op = h.client.store(b"clear.bin").unwrap();
    h.uploads.insert(op, file.clone());
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.server.uploaded == file);
    assert_eq!(transfer_done(&h, op), (file.len() as u64, None));
}

// spec: §3.4 (MLSD)
#[test]
fn mlsd_listing_is_parsed_into_entries() {
    let mut s = script();
    s.listing = b"type=cdir;modify=20240101120000; .\r\ntype=file;size=1234;modify=20231231235959; report 2023.pdf\r\ntype=dir; sub\r\nbroken-line-without-space\r\n".to_vec();
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.mlsd(Some(b"/pub")).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    let entries: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Listing(id, entry) if *id == op => Some(entry.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(entries.len(), 4);
    match &entries[1] {
        ftps_proto::client::ListingEntry::Mlsd(entry) => {
            assert_eq!(entry.name, b"report 2023.pdf");
            assert_eq!(entry.size(), Some(1234));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        entries[3],
        ftps_proto::client::ListingEntry::Invalid(_)
    ));
    // Listings do not change TYPE.
    assert!(!h.server.verbs().contains(&Verb::Type));
    // The listing entries come before the completion.
    let last_listing = h
        .events
        .iter()
        .rposition(|e| matches!(e, Ev::Listing(..)))
        .unwrap();
    let done = h
        .events
        .iter()
        .position(|e| matches!(e, Ev::Completed(id, _) if *id == op))
        .unwrap();
    assert!(last_listing < done);
}

#[test]
fn list_and_nlst_lines_are_reported() {
    let mut s = script();
    s.listing =
        b"-rw-r--r--   1 ftp ftp  42 Jan  1 12:00 a.txt\r\ndrwxr-xr-x 2 ftp ftp 4096 Jan 1 2023 dir\r\n"
            .to_vec();
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let list = h.client.list(None).unwrap();
    let nlst = h.client.nlst(None).unwrap();
    h.run();
    assert_eq!(h.completed(list), Some(&Ok(226)));
    assert_eq!(h.completed(nlst), Some(&Ok(226)));
    let count = |op| {
        h.events
            .iter()
            .filter(|e| matches!(e, Ev::Listing(id, _) if *id == op))
            .count()
    };
    assert_eq!(count(list), 2);
    assert_eq!(count(nlst), 2);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Ev::Listing(id, ftps_proto::client::ListingEntry::List(
            ftps_proto::codec::listing::ListLine::Entry(_)
        )) if *id == list
    )));
}

// spec: §3.4 (REST)
#[test]
fn rest_resumes_a_download_at_an_offset() {
    let mut s = script();
    s.file = payload(1000)[400..].to_vec();
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"partial", Some(400)).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)));
    let verbs = h.server.verbs();
    let rest = verbs.iter().position(|v| *v == Verb::Rest).unwrap();
    let retr = verbs.iter().position(|v| *v == Verb::Retr).unwrap();
    assert!(rest + 1 == retr, "REST right before RETR: {verbs:?}");
    assert!(h.server.commands.contains(&Command::Rest(400)));
    assert!(h.downloaded[&op] == payload(1000)[400..]);
}

// spec: §9.4
#[test]
fn a_data_connection_cut_without_close_notify_fails_the_transfer() {
    for end in [DataEnd::CutBeforeFinal, DataEnd::CutAfterFinal] {
        let mut s = script();
        s.file = payload(5000);
        s.data_end = end;
        let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
        let op = h.client.retrieve(b"f", None).unwrap();
        h.run();
        assert_eq!(
            h.completed(op),
            Some(&Err(OpError::Data(ftps_proto::data::DataError::Truncated))),
            "{end:?}: {:#?}",
            h.events
        );
        assert!(
            !h.events
                .iter()
                .any(|e| matches!(e, Ev::TransferCompleted { .. }))
        );
        // The session goes on.
        let noop = h.client.noop().unwrap();
        h.run();
        assert_eq!(h.completed(noop), Some(&Ok(200)), "{end:?}");
    }
}

// spec: T35
#[test]
fn the_final_reply_before_the_data_close_still_waits_for_close_notify() {
    let mut s = script();
    s.file = payload(3000);
    s.data_end = DataEnd::CleanAfterFinal;
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)));
    assert!(h.downloaded[&op] == payload(3000));
}

// The completion of a download counts the bytes delivered to the application, whichever comes
// first: the data connection's end or the final reply (a server that answers 226 before the
// client read a small file reported "0 bytes" for a file written correctly).
#[test]
fn download_byte_count_does_not_depend_on_the_order_of_data_end_and_final_reply() {
    for end in [DataEnd::Clean, DataEnd::CleanAfterFinal] {
        for split in [Split::Whole, Split::Bytewise] {
            let mut s = script();
            s.file = payload(40);
            s.data_end = end;
            let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
            h.set_split(split);
            let op = h.client.retrieve(b"small", None).unwrap();
            h.run();
            assert_eq!(h.completed(op), Some(&Ok(226)), "{end:?} {split:?}");
            assert!(h.downloaded[&op] == payload(40));
            assert_eq!(transfer_done(&h, op).0, 40, "{end:?} {split:?}");
        }
    }
}

// spec: §3.4, T38, T39
#[test]
fn a_preliminary_reply_followed_by_a_failure_fails_the_transfer() {
    for final_reply in [&b"451 local error\r\n"[..], b"522 data TLS failed\r\n"] {
        let mut s = script();
        s.file = payload(100);
        s.final_reply = final_reply.to_vec();
        let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
        let op = h.client.retrieve(b"f", None).unwrap();
        h.run();
        assert!(h.events.contains(&Ev::Preliminary(op, 150)));
        match h.completed(op) {
            Some(Err(OpError::Rejected { reply })) => {
                assert_eq!(reply.code.get().to_string().as_bytes(), &final_reply[..3])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h.closed_count(), 0);
    }
}

#[test]
fn an_immediate_refusal_of_the_transfer_command_closes_the_data_connection() {
    let mut s = script();
    reply_override(&mut s, Verb::Retr, &[b"550 no such file\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"missing", None).unwrap();
    h.run();
    assert!(matches!(
        h.completed(op),
        Some(Err(OpError::Rejected { .. }))
    ));
    assert!(h.io.iter().any(|r| matches!(
        r,
        IoRequest::Close {
            channel: Channel::Data(_)
        }
    )));
}

#[test]
fn a_421_in_the_middle_of_a_transfer_ends_the_session() {
    let mut s = script();
    s.file = payload(100);
    s.during_transfer = Some(b"421 going down\r\n".to_vec());
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Err(OpError::SessionClosed)));
    assert!(matches!(
        h.closed().cloned().flatten(),
        Some(ClientError::ServiceClosing { .. })
    ));
    assert!(h.io.iter().any(|r| matches!(
        r,
        IoRequest::Close {
            channel: Channel::Data(_)
        }
    )));
    assert_eq!(h.closed_count(), 1);
}

// spec: §3.9, E07
#[test]
fn pasv_fallback_ignores_a_third_party_address_and_is_remembered() {
    let mut s = script();
    s.file = payload(10);
    reply_override(&mut s, Verb::Epsv, &[b"502 no EPSV\r\n"]);
    s.pasv_text = b"227 Entering Passive Mode (10,9,8,7,19,137)\r\n".to_vec();
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let first = h.client.retrieve(b"a", None).unwrap();
    let second = h.client.retrieve(b"b", None).unwrap();
    h.run();
    assert_eq!(h.completed(first), Some(&Ok(226)));
    assert_eq!(h.completed(second), Some(&Ok(226)));
    // Connect to the control peer's IP with the 227 port, not to 10.9.8.7.
    for addr in &h.server.passive_connects {
        assert_eq!(addr.ip(), client_support::SERVER_IP);
        assert_eq!(addr.port(), 19 * 256 + 137);
    }
    let epsv = h
        .server
        .verbs()
        .iter()
        .filter(|v| **v == Verb::Epsv)
        .count();
    let pasv = h
        .server
        .verbs()
        .iter()
        .filter(|v| **v == Verb::Pasv)
        .count();
    assert_eq!((epsv, pasv), (1, 2), "EPSV refusal remembered");
}

#[test]
fn a_trusted_227_address_is_used_when_configured() {
    let mut s = script();
    s.file = payload(10);
    reply_override(&mut s, Verb::Epsv, &[b"500 what\r\n"]);
    s.pasv_text = b"227 Entering Passive Mode (10,9,8,7,19,137)\r\n".to_vec();
    let mut config = client_config(ClientTlsMode::Explicit);
    config.trust_pasv_address = true;
    let mut h = logged_in(config, s);
    let op = h.client.retrieve(b"a", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)));
    assert_eq!(
        h.server.passive_connects[0],
        "10.9.8.7:5001".parse().unwrap()
    );
}

#[test]
fn a_malformed_229_fails_the_operation() {
    let mut s = script();
    reply_override(
        &mut s,
        Verb::Epsv,
        &[b"229 Entering Extended Passive Mode (|1|x|)\r\n"],
    );
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"a", None).unwrap();
    h.run();
    assert!(matches!(
        h.completed(op),
        Some(Err(OpError::BadPassiveAddress(_)))
    ));
    assert!(!h.server.verbs().contains(&Verb::Retr));
}

// spec: T32, §3.8
#[test]
fn active_mode_download_with_eprt_the_client_is_tls_client() {
    let mut config = client_config(ClientTlsMode::Explicit);
    config.data_mode = ftps_proto::client::DataConnectionMode::Active;
    let mut s = script();
    s.file = payload(30_000);
    let mut h = logged_in(config, s);
    let op = h.client.retrieve(b"a", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.downloaded[&op] == payload(30_000));
    assert!(h.io.iter().any(|r| matches!(r, IoRequest::Listen { .. })));
    assert!(
        h.server
            .commands
            .contains(&Command::Eprt(b"|1|127.0.0.2|50000|".to_vec()))
    );
    assert_eq!(transfer_done(&h, op).1, Some(true));
}

#[test]
fn active_mode_falls_back_to_port_and_refuses_a_foreign_data_peer() {
    let mut config = client_config(ClientTlsMode::Explicit);
    config.data_mode = ftps_proto::client::DataConnectionMode::Active;
    let mut s = script();
    s.file = payload(100);
    reply_override(&mut s, Verb::Eprt, &[b"502 no EPRT\r\n"]);
    s.active_from = "192.0.2.66:20".parse().unwrap();
    let mut h = logged_in(config, s);
    let op = h.client.retrieve(b"a", None).unwrap();
    h.run();
    assert!(
        h.server
            .commands
            .contains(&Command::Port(b"127,0,0,2,195,80".to_vec()))
    );
    assert_eq!(
        h.completed(op),
        Some(&Err(OpError::Data(
            ftps_proto::data::DataError::ForeignPeer
        ))),
        "{:#?}",
        h.events
    );
    assert_eq!(h.downloaded.get(&op), None);
}

// spec: §3.7, T55
#[test]
fn abort_of_a_queued_operation_and_of_a_running_transfer() {
    let mut s = script();
    s.mute.push(Verb::Retr);
    // The muted RETR never answers; ABOR gets 426 then 226.
    reply_override(&mut s, Verb::Abor, &[b"426 aborted\r\n226 abort ok\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let running = h.client.retrieve(b"slow", None).unwrap();
    let queued = h.client.noop().unwrap();
    let later = h.client.pwd().unwrap();
    h.run();
    h.client.abort(queued).unwrap();
    h.client.abort(running).unwrap();
    h.run();
    assert_eq!(h.completed(queued), Some(&Err(OpError::Aborted)));
    assert_eq!(h.completed(running), Some(&Err(OpError::Aborted)));
    assert_eq!(h.completed(later), Some(&Ok(257)), "{:#?}", h.events);
    assert!(h.server.verbs().contains(&Verb::Abor));
    assert_eq!(h.closed_count(), 0);
    // spec: T55 — the ABOR went inside TLS as a plain line (no Telnet IP/Synch, no urgent
    // data: the IO requests have no out-of-band send at all); only AUTH TLS was in clear.
    assert_eq!(h.server.plaintext_wire, b"AUTH TLS\r\n");
    let abor = b"ABOR\r\n";
    assert!(h.server.command_log.windows(abor.len()).any(|w| w == abor));
    assert!(!h.server.command_log.contains(&0xff));
}

// spec: §3.7
#[test]
fn abort_with_a_single_226_resynchronises_with_noop() {
    let mut s = script();
    s.mute.push(Verb::Retr);
    reply_override(&mut s, Verb::Abor, &[b"226 abort ok\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let running = h.client.retrieve(b"slow", None).unwrap();
    h.run();
    h.client.abort(running).unwrap();
    let after = h.client.pwd().unwrap();
    h.run();
    assert_eq!(h.completed(running), Some(&Err(OpError::Aborted)));
    assert_eq!(h.completed(after), Some(&Ok(257)));
    assert!(h.server.verbs().contains(&Verb::Noop));
}

// spec: §3.7
#[test]
fn abort_racing_the_transfers_own_226() {
    // The transfer's 226 arrives, then the ABOR's 226: the second must not be taken as the
    // reply to the next command.
    let mut s = script();
    s.mute.push(Verb::Retr);
    reply_override(
        &mut s,
        Verb::Abor,
        &[b"226 transfer done\r\n226 abor ok\r\n"],
    );
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let running = h.client.retrieve(b"slow", None).unwrap();
    h.run();
    h.client.abort(running).unwrap();
    let after = h.client.pwd().unwrap();
    h.run();
    assert_eq!(h.completed(running), Some(&Err(OpError::Aborted)));
    assert_eq!(h.completed(after), Some(&Ok(257)), "{:#?}", h.events);
    assert_eq!(h.closed_count(), 0);
}

// spec: T25, §9.4
#[test]
fn a_zero_byte_data_connection_succeeds_only_with_a_final_2yz() {
    let mut ok = logged_in(client_config(ClientTlsMode::Explicit), script());
    let op = ok.client.retrieve(b"empty", None).unwrap();
    ok.run();
    assert_eq!(ok.completed(op), Some(&Ok(226)));
    assert_eq!(transfer_done(&ok, op), (0, Some(true)));

    let mut s = script();
    s.final_reply = b"550 refused after all\r\n".to_vec();
    let mut refused = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = refused.client.retrieve(b"empty", None).unwrap();
    refused.run();
    assert!(matches!(
        refused.completed(op),
        Some(Err(OpError::Rejected { .. }))
    ));
    assert!(
        !refused
            .events
            .iter()
            .any(|e| matches!(e, Ev::TransferCompleted { .. }))
    );
}

#[test]
fn opts_utf8_only_when_feat_advertises_it() {
    let mut s = script();
    s.feat_tls = b"211-Features:\r\n PBSZ\r\n PROT\r\n211 End\r\n".to_vec();
    let h = logged_in(client_config(ClientTlsMode::Explicit), s);
    assert!(!h.server.verbs().contains(&Verb::Opts));
    assert_eq!(h.client.features(), &[b"PBSZ".to_vec(), b"PROT".to_vec()]);
}

#[test]
fn a_stalled_data_connection_times_out() {
    let mut s = script();
    s.mute.push(Verb::Retr);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"slow", None).unwrap();
    h.run();
    // The server never answers RETR: the reply timer (60 s) rules until a 1yz arrives.
    h.advance(Duration::from_secs(61));
    assert_eq!(
        h.closed().cloned().flatten(),
        Some(ClientError::TimedOut(TimeoutKind::Reply))
    );
    assert_eq!(h.completed(op), Some(&Err(OpError::SessionClosed)));
    assert!(h.io.iter().any(|r| matches!(
        r,
        IoRequest::Close {
            channel: Channel::Data(_)
        }
    )));
}

#[test]
fn after_a_preliminary_reply_the_data_idle_timer_rules() {
    let mut s = script();
    // 150 comes, then nothing: the data connection never opens on the server side.
    s.file = payload(10);
    s.data_resumption = ftps_proto::tls::ResumptionPolicy::Required;
    s.during_transfer = Some(Vec::new());
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert!(h.events.contains(&Ev::Preliminary(op, 150)));
    h.advance(Duration::from_secs(100));
    assert_eq!(h.closed_count(), 0, "the reply timer is off after the 150");
    h.advance(Duration::from_secs(21));
    assert_eq!(
        h.closed().cloned().flatten(),
        Some(ClientError::TimedOut(TimeoutKind::DataIdle))
    );
}

#[test]
fn verbs_after_close_and_unknown_ops_are_usage_errors() {
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
    let noop = h.client.noop().unwrap();
    assert!(matches!(
        h.client.write_data(noop, b"x"),
        Err(UsageError::WrongCall(_))
    ));
    h.run();
    assert_eq!(h.client.write_data(noop, b"x"), Err(UsageError::UnknownId));
    assert_eq!(h.client.abort(noop), Err(UsageError::UnknownId));
    let retr = h.client.retrieve(b"f", None).unwrap();
    assert!(matches!(
        h.client.finish_upload(retr),
        Err(UsageError::WrongCall(_))
    ));
    h.run();
    h.client.quit().unwrap();
    h.run();
    assert_eq!(h.client.retrieve(b"f", None), Err(UsageError::Closed));
}

/// Events that do not depend on segmentation (data chunk sizes and Writable repetitions do,
/// and where control lines fall among data events does: the channels are independent).
fn stable(events: &[Ev]) -> Vec<Ev> {
    events
        .iter()
        .filter(|e| !matches!(e, Ev::Writable(_) | Ev::Data(..) | Ev::ControlLine(..)))
        .cloned()
        .collect()
}

fn whole_session(split: Split) -> (Vec<Ev>, Vec<u8>, Vec<u8>, Vec<String>) {
    let mut s = script();
    s.greeting = b"220-Welcome\r\n220-to the\r\n220 test\r\n".to_vec();
    s.file = payload(40_000);
    s.listing = b"type=file;size=3; a\r\ntype=dir; b\r\n".to_vec();
    let mut config = client_config(ClientTlsMode::Explicit);
    // The trace is part of the session: it must not depend on segmentation either.
    config.trace_control = true;
    let mut h = Harness::new(config, s);
    h.set_split(split);
    h.run();
    h.login();
    let list = h.client.mlsd(None).unwrap();
    let get = h.client.retrieve(b"f", None).unwrap();
    let put = h.client.store(b"g").unwrap();
    h.uploads.insert(put, payload(20_000));
    h.client.quit().unwrap();
    h.run();
    assert_eq!(h.completed(list), Some(&Ok(226)));
    assert_eq!(h.completed(put), Some(&Ok(226)), "{:#?}", h.events);
    let downloaded = h.downloaded.get(&get).cloned().unwrap_or_default();
    (
        stable(&h.events),
        downloaded,
        h.server.uploaded.clone(),
        trace_lines(&h),
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    // spec: §3.1 (read boundaries mean nothing)
    #[test]
    fn any_segmentation_of_the_servers_bytes_gives_the_same_session(seed in 1u64..u64::MAX) {
        let reference = whole_session(Split::Whole);
        let split = whole_session(Split::Random(seed));
        proptest::prop_assert_eq!(&reference.0, &split.0);
        proptest::prop_assert!(reference.1 == split.1);
        proptest::prop_assert!(reference.1 == payload(40_000));
        proptest::prop_assert!(split.2 == payload(20_000));
        // The control dialogue, on its own, is the same whatever the segmentation.
        proptest::prop_assert_eq!(&reference.3, &split.3);
        proptest::prop_assert_eq!(&reference.3[..3], ["< 220-Welcome", "< 220-to the", "< 220 test"]);
    }
}

// spec: T26, T27, T29
#[test]
fn ccc_continues_the_control_connection_in_plaintext_and_keeps_prot_p() {
    let mut s = script();
    s.file = payload(5000);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let ccc = h.client.ccc().unwrap();
    let pwd = h.client.pwd().unwrap();
    let get = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert_eq!(h.completed(ccc), Some(&Ok(200)), "{:#?}", h.events);
    assert_eq!(h.completed(pwd), Some(&Ok(257)));
    assert_eq!(h.completed(get), Some(&Ok(226)));
    assert!(!h.client.is_secure());
    // The commands after CCC were read in plaintext by the server; data stayed private.
    assert!(h.server.after_ccc.contains(&Command::Pwd));
    assert!(String::from_utf8_lossy(&h.server.plaintext_wire).contains("PWD\r\n"));
    assert_eq!(transfer_done(&h, get).1, Some(true));
    assert!(h.downloaded[&get] == payload(5000));
}

#[test]
fn ccc_refused_keeps_tls_and_ccc_without_tls_is_refused_locally() {
    let mut s = script();
    reply_override(&mut s, Verb::Ccc, &[b"534 not now\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.ccc().unwrap();
    h.run();
    assert!(matches!(
        h.completed(op),
        Some(Err(OpError::Rejected { .. }))
    ));
    assert!(h.client.is_secure());

    let mut s = script();
    s.auth_reply = b"502 no\r\n".to_vec();
    let mut plain = logged_in(client_config(ClientTlsMode::ExplicitIfAvailable), s);
    let op = plain.client.ccc().unwrap();
    plain.run();
    assert_eq!(plain.completed(op), Some(&Err(OpError::NotSecured)));
    assert!(!plain.server.verbs().contains(&Verb::Ccc));
}

// The data-connection machine is role independent: an FTP server would run it as TLS server
// sending a file (RETR), the client as TLS client receiving it.
#[test]
fn data_connection_pair_in_both_roles_with_truncation_detection() {
    use ftps_proto::data::{DataConnection, DataDirection, DataError, DataEvent};
    use ftps_proto::tls::{ResumptionPolicy, TlsChannel, TlsLimits};
    let pki = common::pki();
    let client_cfg = ftps_proto::tls::client_config_for_control(&common::base_client(pki));
    let server_cfg = ftps_proto::tls::server_config_for_control(&common::base_server(pki));
    for truncate in [false, true] {
        let mut sender = DataConnection::new(test_data_id(1), DataDirection::Send, 32 * 1024);
        let mut receiver = DataConnection::new(test_data_id(1), DataDirection::Receive, 32 * 1024);
        sender.on_connected();
        receiver.on_connected();
        sender.start_tls(
            TlsChannel::server(
                server_cfg.clone(),
                ResumptionPolicy::Optional,
                TlsLimits::default(),
            )
            .unwrap(),
        );
        receiver.start_tls(
            TlsChannel::client(
                client_cfg.clone(),
                common::localhost(),
                TlsLimits::default(),
            )
            .unwrap(),
        );
        let body = payload(100_000);
        let mut to_send = &body[..];
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1500];
        let mut receiver_result = None;
        for _ in 0..10_000 {
            sender.process();
            receiver.process();
            // Writable only says what the write loop below finds out by itself.
            while sender.next_event().is_some() {}
            if !to_send.is_empty() {
                let n = sender.write(to_send).unwrap();
                to_send = &to_send[n..];
                if to_send.is_empty() && !truncate {
                    sender.finish();
                }
            }
            let n = sender.take_transmit(&mut buf);
            let mut fed = 0;
            while fed < n {
                fed += receiver.feed(&buf[fed..n]);
                receiver.process();
                let mut piece = [0u8; 2048];
                loop {
                    let n = receiver.read(&mut piece);
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&piece[..n]);
                }
            }
            if truncate && to_send.is_empty() && n == 0 {
                receiver.feed_eof();
            }
            let n = receiver.take_transmit(&mut buf);
            let mut fed = 0;
            while fed < n {
                fed += sender.feed(&buf[fed..n]);
                sender.process();
            }
            receiver.process();
            let mut piece = [0u8; 2048];
            loop {
                let n = receiver.read(&mut piece);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&piece[..n]);
            }
            while let Some(event) = receiver.next_event() {
                if let DataEvent::Finished(result) = event {
                    receiver_result = Some(result);
                }
            }
            if receiver_result.is_some() {
                break;
            }
        }
        if truncate {
            assert_eq!(receiver_result, Some(Err(DataError::Truncated)));
        } else {
            assert_eq!(receiver_result, Some(Ok(())));
            assert!(got == body);
            assert_eq!(receiver.bytes_received(), body.len() as u64);
            assert_eq!(sender.bytes_sent(), body.len() as u64);
        }
    }
}

fn test_data_id(_n: u32) -> ftps_proto::io::DataId {
    // DataId is made by sessions only: take one from a session's IO request.
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
    let op = h.client.retrieve(b"f", None).unwrap();
    let _ = op;
    h.run();
    h.io.iter()
        .find_map(|r| match r {
            IoRequest::Connect {
                channel: Channel::Data(id),
                ..
            } => Some(*id),
            _ => None,
        })
        .unwrap()
}

fn drive_plaintext_session_with(control: &[u8], cuts: &[usize]) -> usize {
    use ftps_proto::client::{ClientEvent, ClientSession};
    use ftps_proto::io::{Instant, Output};
    let mut session = ClientSession::new(
        client_config(ClientTlsMode::Plaintext),
        Instant::from_nanos(0),
    );
    let mut buf = [0u8; 512];
    let mut closed = 0;
    let mut drain = |session: &mut ClientSession, closed: &mut usize, t: u64| {
        for _ in 0..10_000 {
            match session.poll_output(&mut buf, Instant::from_nanos(t)) {
                Output::Wait { .. } => return,
                Output::Event(ClientEvent::Closed { .. }) => *closed += 1,
                _ => {}
            }
        }
        panic!("drain did not reach Wait");
    };
    drain(&mut session, &mut closed, 0);
    session.handle_connected(
        Channel::Control,
        client_support::CLIENT_LOCAL,
        Instant::from_nanos(1),
    );
    let _ = session.login(b"u", b"p", None);
    let _ = session.list(None);
    let _ = session.retrieve(b"f", Some(3));
    let _ = session.store(b"g");
    drain(&mut session, &mut closed, 1);
    let mut start = 0;
    for (i, &cut) in cuts
        .iter()
        .chain(std::iter::once(&control.len()))
        .enumerate()
    {
        let end = cut.clamp(start, control.len());
        let mut rest = &control[start..end];
        while !rest.is_empty() {
            let taken =
                session.handle_receive(Channel::Control, rest, Instant::from_nanos(2 + i as u64));
            rest = &rest[taken.max(1).min(rest.len())..];
            drain(&mut session, &mut closed, 2 + i as u64);
        }
        start = end;
    }
    session.handle_eof(Channel::Control, Instant::from_nanos(1_000));
    drain(&mut session, &mut closed, 1_000);
    closed
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    // Arbitrary server bytes never panic the session; it ends exactly once.
    #[test]
    fn arbitrary_control_bytes_only_give_typed_errors(
        control in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        cuts in proptest::collection::vec(0usize..600, 0..8),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        proptest::prop_assert_eq!(drive_plaintext_session_with(&control, &cuts), 1);
    }

    // Plausible replies in random order (the interesting states) never panic either.
    #[test]
    fn random_reply_sequences_only_give_typed_errors(
        codes in proptest::collection::vec(0usize..14, 0..24),
    ) {
        const REPLIES: [&[u8]; 14] = [
            b"220 hi\r\n", b"211-F\r\n UTF8\r\n211 E\r\n", b"331 pw\r\n", b"230 in\r\n",
            b"229 (|||2000|)\r\n", b"227 (1,2,3,4,5,6)\r\n", b"150 go\r\n", b"226 ok\r\n",
            b"350 rest\r\n", b"500 no\r\n", b"421 bye\r\n", b"125 open\r\n",
            b"200 ok\r\n", b"110 MARK 1 = 2\r\n",
        ];
        let control: Vec<u8> = codes.iter().flat_map(|&i| REPLIES[i].iter().copied()).collect();
        proptest::prop_assert_eq!(drive_plaintext_session_with(&control, &[]), 1);
    }
}

// spec: E01, E04 — IPv6 control peer: EPSV goes to the peer's IPv6 address, EPRT names ours.
#[test]
fn ipv6_passive_and_active_data_connections() {
    for active in [false, true] {
        let mut config = client_config(ClientTlsMode::Explicit);
        config.peer = "[::1]:21".parse().unwrap();
        if active {
            config.data_mode = ftps_proto::client::DataConnectionMode::Active;
        }
        let mut s = script();
        s.file = payload(2000);
        s.active_from = "[::1]:20".parse().unwrap();
        let mut h = Harness::new(config, s);
        h.local = "[::2]:40000".parse().unwrap();
        h.run();
        h.login();
        let op = h.client.retrieve(b"f", None).unwrap();
        h.run();
        assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
        assert!(h.downloaded[&op] == payload(2000));
        if active {
            assert!(
                h.server
                    .commands
                    .contains(&Command::Eprt(b"|2|::2|50000|".to_vec()))
            );
            assert!(h.io.iter().any(|r| matches!(
                r,
                IoRequest::Listen { ip, .. } if *ip == "::2".parse::<std::net::IpAddr>().unwrap()
            )));
        } else {
            assert_eq!(
                h.server.passive_connects,
                vec!["[::1]:5001".parse().unwrap()]
            );
        }
    }
}

// spec: T34 — the transfer command goes out before the data TLS handshake starts.
#[test]
fn the_transfer_command_precedes_the_data_client_hello() {
    for upload in [false, true] {
        let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
        let op = if upload {
            let op = h.client.store(b"x").unwrap();
            h.uploads.insert(op, payload(10));
            op
        } else {
            h.client.retrieve(b"x", None).unwrap()
        };
        h.run();
        assert_eq!(h.completed(op), Some(&Ok(226)));
        let verb: &[u8] = if upload { b"STOR x\r\n" } else { b"RETR x\r\n" };
        let at = h
            .server
            .command_log
            .windows(verb.len())
            .position(|w| w == verb)
            .unwrap()
            + verb.len();
        let first_data = h.data_sent_after[0];
        assert!(first_data >= at, "ClientHello before the transfer command");
    }
}

// ---------------------------------------------------------------- control-line trace

fn traced(config: &mut ftps_proto::client::ClientSessionConfig) {
    config.trace_control = true;
}

/// The traced lines, `> ` for sent and `< ` for received.
fn trace_lines(h: &Harness) -> Vec<String> {
    h.events
        .iter()
        .filter_map(|event| match event {
            Ev::ControlLine(TraceDirection::Sent, line) => Some(format!("> {line}")),
            Ev::ControlLine(TraceDirection::Received, line) => Some(format!("< {line}")),
            _ => None,
        })
        .collect()
}

fn position(h: &Harness, wanted: impl Fn(&Ev) -> bool) -> usize {
    h.events
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("event missing: {:#?}", h.events))
}

#[test]
fn the_trace_reports_the_login_dialogue_in_order_with_the_password_redacted() {
    let mut config = client_config(ClientTlsMode::Explicit);
    traced(&mut config);
    let mut h = Harness::new(config, script());
    h.run();
    h.login();
    assert_eq!(
        trace_lines(&h),
        [
            "< 220 scripted FTPS server",
            "> AUTH TLS",
            "< 234 AUTH TLS ok",
            "> FEAT",
            "< 211-Features:",
            "<  AUTH TLS",
            "<  PBSZ",
            "<  PROT",
            "<  EPSV",
            "<  MLST type*;size*;modify*;",
            "<  REST STREAM",
            "<  UTF8",
            "< 211 End",
            "> USER alice",
            "< 331 password please",
            "> PASS ****",
            "< 230 logged in",
            "> PBSZ 0",
            "< 200 PBSZ=0",
            "> PROT P",
            "< 200 PROT ok",
            "> OPTS UTF8 ON",
            "< 200 ok",
        ]
    );
    // The trace sits in the dialogue among the other events: the greeting line before
    // Connected, the 234 before Secured, the handshake before the FEAT under TLS.
    let greeting_line = position(
        &h,
        |e| matches!(e, Ev::ControlLine(_, l) if l.starts_with("220")),
    );
    let connected = position(&h, |e| matches!(e, Ev::Connected(_)));
    let auth_ok = position(
        &h,
        |e| matches!(e, Ev::ControlLine(_, l) if l.starts_with("234")),
    );
    let secured = position(&h, |e| matches!(e, Ev::Secured(_)));
    let feat = position(&h, |e| matches!(e, Ev::ControlLine(_, l) if l == "FEAT"));
    assert!(greeting_line < connected && connected < auth_ok);
    assert!(auth_ok < secured && secured < feat);
    // The session ran as it does without the trace.
    assert_eq!(h.server.plaintext_wire, b"AUTH TLS\r\n");
    assert!(h.client.is_logged_in());
    assert!(!format!("{:?}", h.events).contains("secret"));
}

#[test]
fn pass_and_acct_are_redacted_also_when_sent_raw_or_as_an_account() {
    let mut s = script();
    reply_override(&mut s, Verb::Pass, &[b"332 account please\r\n"]);
    let mut config = client_config(ClientTlsMode::Explicit);
    traced(&mut config);
    let mut h = Harness::new(config, s);
    h.run();
    let login = h
        .client
        .login(b"alice", b"secret", Some(b"acct-secret"))
        .unwrap();
    let raw_pass = h.client.raw_command(b"pass", Some(b"raw-secret")).unwrap();
    let raw_acct = h.client.raw_command(b"ACCT", Some(b"raw-acct")).unwrap();
    h.run();
    // The scripted server does not know ACCT: the login fails, the session goes on.
    assert!(matches!(
        h.completed(login),
        Some(Err(OpError::Rejected { .. }))
    ));
    assert!(h.completed(raw_pass).is_some());
    assert!(h.completed(raw_acct).is_some());
    let lines = trace_lines(&h);
    for wanted in ["> PASS ****", "> ACCT ****", "> pass ****"] {
        assert!(lines.iter().any(|l| l == wanted), "{wanted}: {lines:#?}");
    }
    assert_eq!(lines.iter().filter(|l| l.ends_with("****")).count(), 4);
    // The secrets did travel (the server got them) but reached no event.
    assert!(
        h.server
            .commands
            .iter()
            .any(|c| matches!(c, Command::Acct(a) if a == b"acct-secret"))
    );
    let shown = format!("{:?}", h.events);
    for secret in ["secret", "raw-acct"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
}

#[test]
fn the_trace_covers_implicit_tls_and_transfers_and_is_off_by_default() {
    let mut s = script();
    s.implicit = true;
    s.file = payload(1000);
    let mut config = client_config(ClientTlsMode::Implicit);
    traced(&mut config);
    let mut h = logged_in(config, s.clone());
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)));
    let lines = trace_lines(&h);
    assert_eq!(lines[0], "< 220 scripted FTPS server");
    let from_retr = lines.iter().position(|l| l == "> RETR f").unwrap();
    assert_eq!(
        lines[from_retr..],
        [
            "> RETR f",
            "< 150 opening data connection",
            "< 226 Transfer complete"
        ]
    );
    assert!(lines.iter().any(|l| l == "> EPSV"));

    // The same session without the trace: not one ControlLine event.
    let mut h = logged_in(client_config(ClientTlsMode::Implicit), s);
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)));
    assert!(trace_lines(&h).is_empty());
    assert!(!h.events.iter().any(|e| matches!(e, Ev::ControlLine(..))));
}

#[test]
fn the_quit_after_a_refused_auth_is_traced() {
    let mut s = script();
    s.auth_reply = b"534 no TLS\r\n".to_vec();
    let mut config = client_config(ClientTlsMode::Explicit);
    traced(&mut config);
    let mut h = Harness::new(config, s);
    h.run();
    assert_eq!(h.server.plaintext_wire, b"AUTH TLS\r\nQUIT\r\n");
    assert_eq!(
        trace_lines(&h),
        [
            "< 220 scripted FTPS server",
            "> AUTH TLS",
            "< 534 no TLS",
            "> QUIT"
        ]
    );
}

// spec: T34, T40 — the data ClientHello waits for the 1yz: a refused transfer command spends no
// TLS 1.3 ticket of the control session, so later data connections still resume.
#[test]
fn a_refused_transfer_sends_no_client_hello_and_spends_no_ticket() {
    let mut s = script();
    s.file = payload(1000);
    reply_override(&mut s, Verb::Retr, &[b"550 no such file\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    // More refusals than the tickets the control handshake brought (rustls sends 2).
    for _ in 0..4 {
        let op = h.client.retrieve(b"missing", None).unwrap();
        h.run();
        assert!(matches!(
            h.completed(op),
            Some(Err(OpError::Rejected { .. }))
        ));
    }
    assert!(
        h.data_sent_after.is_empty(),
        "a ClientHello went out on a refused transfer's data connection"
    );
    assert!(h.server.data_resumed.is_empty());
    // The server requires resumption: this download works only if a ticket is left.
    h.server.script.overrides.clear();
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert_eq!(transfer_done(&h, op), (1000, Some(true)));
    assert_eq!(h.server.data_resumed, vec![Some(true)]);
}

// spec: E08 — 522 answers EPSV ("network protocol not supported", RFC 2428) and a transfer
// ("data TLS failed", RFC 4217): each is read as the failure of the command it answers. Neither
// is taken for a control-TLS failure, neither ends the session, and a 522 to EPSV is not an
// "EPSV unknown" that would switch to PASV.
#[test]
fn a_522_is_read_by_the_command_it_answers() {
    let mut s = script();
    s.file = payload(100);
    reply_override(
        &mut s,
        Verb::Epsv,
        &[b"522 Network protocol not supported, use (2)\r\n"],
    );
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    match h.completed(op) {
        Some(Err(OpError::Rejected { reply })) => assert_eq!(reply.code.get(), 522),
        other => panic!("{other:?}"),
    }
    // Refused at EPSV: no RETR, no PASV fallback, no data connection.
    let verbs = h.server.verbs();
    assert!(!verbs.contains(&Verb::Retr), "{verbs:?}");
    assert!(!verbs.contains(&Verb::Pasv), "{verbs:?}");
    assert!(!h.io.iter().any(|r| matches!(
        r,
        IoRequest::Connect {
            channel: Channel::Data(_),
            ..
        }
    )));
    let noop = h.client.noop().unwrap();
    h.run();
    assert_eq!(h.completed(noop), Some(&Ok(200)));
    assert!(h.client.is_secure());

    // The same code after the 150 of a transfer: the data connection's TLS failed.
    let mut s = script();
    s.file = payload(100);
    s.final_reply = b"522 SSL connection failed: session reuse required.\r\n".to_vec();
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert!(h.events.contains(&Ev::Preliminary(op, 150)));
    match h.completed(op) {
        Some(Err(OpError::Rejected { reply })) => assert_eq!(reply.code.get(), 522),
        other => panic!("{other:?}"),
    }
    let again = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert!(matches!(
        h.completed(again),
        Some(Err(OpError::Rejected { .. }))
    ));
    assert_eq!(h.closed_count(), 0);
    assert!(h.client.is_secure());
}

// spec: F04 — unknown feature lines are kept and ignored, not errors; a refused FEAT leaves an
// empty list and the client tries its extensions one by one (EPSV is sent anyway, OPTS UTF8
// only when advertised).
#[test]
fn unknown_features_and_a_refused_feat_are_not_errors() {
    let mut s = script();
    s.feat_tls =
        b"211-Features:\r\n XCRC\r\n X-FUTURE a;b c\r\n PBSZ\r\n PROT\r\n UTF8\r\n211 End\r\n"
            .to_vec();
    let h = logged_in(client_config(ClientTlsMode::Explicit), s);
    assert!(h.client.is_logged_in());
    assert_eq!(
        h.client.features(),
        &[
            b"XCRC".to_vec(),
            b"X-FUTURE a;b c".to_vec(),
            b"PBSZ".to_vec(),
            b"PROT".to_vec(),
            b"UTF8".to_vec()
        ]
    );
    assert!(h.server.verbs().contains(&Verb::Opts));
    assert_eq!(h.closed_count(), 0);

    let mut s = script();
    s.file = payload(10);
    reply_override(&mut s, Verb::Feat, &[b"502 FEAT not implemented\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    assert!(h.client.is_logged_in());
    assert!(h.client.features().is_empty());
    assert!(h.events.contains(&Ev::Ready(Vec::new())));
    assert!(!h.server.verbs().contains(&Verb::Opts));
    let op = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.server.verbs().contains(&Verb::Epsv));
    assert_eq!(h.closed_count(), 0);
}

// ---------------------------------------------------------------- PROT switch

/// The data connections the client opened, in order (one per transfer here).
fn data_connection_ids(h: &Harness) -> Vec<u32> {
    h.io.iter()
        .filter_map(|request| match request {
            IoRequest::Connect {
                channel: Channel::Data(id),
                ..
            } => Some(id.get()),
            _ => None,
        })
        .collect()
}

/// A data connection's first client byte is a TLS handshake record (the ClientHello).
fn opened_with_client_hello(h: &Harness, data: u32) -> bool {
    h.data_from_client
        .get(&data)
        .is_some_and(|bytes| bytes.first() == Some(&0x16))
}

fn protection_commands(h: &Harness) -> Vec<Command> {
    h.server
        .commands
        .iter()
        .filter(|command| matches!(command, Command::Pbsz(_) | Command::Prot(_)))
        .cloned()
        .collect()
}

// spec: T52, T24, T25, T40
#[test]
fn prot_can_be_switched_to_clear_and_back_between_transfers() {
    use ftps_proto::codec::command::ProtectionLevel;
    let file = payload(30_000);
    let mut s = script();
    s.file = file.clone();
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    assert_eq!(h.client.data_protection(), DataProtection::Private);
    // Queued while the first download is already under way (its TYPE is in flight): it
    // runs after that download, which stays private.
    let first = h.client.retrieve(b"a", None).unwrap();
    let to_clear = h.client.set_data_protection(DataProtection::Clear).unwrap();
    let clear = h.client.retrieve(b"b", None).unwrap();
    h.run();
    assert_eq!(h.completed(first), Some(&Ok(226)), "{:#?}", h.events);
    assert_eq!(h.completed(to_clear), Some(&Ok(200)));
    assert_eq!(h.completed(clear), Some(&Ok(226)));
    assert_eq!(h.client.data_protection(), DataProtection::Clear);
    let to_private = h
        .client
        .set_data_protection(DataProtection::Private)
        .unwrap();
    let private = h.client.retrieve(b"c", None).unwrap();
    h.run();
    assert_eq!(h.completed(to_private), Some(&Ok(200)));
    assert_eq!(h.completed(private), Some(&Ok(226)), "{:#?}", h.events);
    assert_eq!(h.client.data_protection(), DataProtection::Private);

    for op in [first, clear, private] {
        assert!(h.downloaded[&op] == file, "downloaded bytes differ");
    }
    assert_eq!(transfer_done(&h, first), (file.len() as u64, Some(true)));
    assert_eq!(transfer_done(&h, clear), (file.len() as u64, None));
    assert_eq!(transfer_done(&h, private), (file.len() as u64, Some(true)));
    let data = data_connection_ids(&h);
    assert_eq!(data.len(), 3);
    assert!(opened_with_client_hello(&h, data[0]));
    // In clear the client never spoke on the download's data connection: no ClientHello.
    assert_eq!(h.data_from_client.get(&data[1]), None);
    assert!(opened_with_client_hello(&h, data[2]));
    // Login, then each switch: PBSZ 0 before every PROT (RFC 4217 §9).
    assert_eq!(
        protection_commands(&h),
        vec![
            Command::Pbsz(0),
            Command::Prot(ProtectionLevel::Private),
            Command::Pbsz(0),
            Command::Prot(ProtectionLevel::Clear),
            Command::Pbsz(0),
            Command::Prot(ProtectionLevel::Private),
        ]
    );
    // The switch came after the first download's RETR, in queue order.
    let verbs = h.server.verbs();
    let first_retr = verbs.iter().position(|v| *v == Verb::Retr).unwrap();
    let second_pbsz = verbs.iter().rposition(|v| *v == Verb::Pbsz).unwrap();
    assert!(first_retr < second_pbsz);
    assert_eq!(h.closed_count(), 0);
}

// spec: T52, T24
#[test]
fn uploads_follow_the_switched_level_too() {
    let file = payload(20_000);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
    let switch = h.client.set_data_protection(DataProtection::Clear).unwrap();
    let op = h.client.store(b"clear.bin").unwrap();
    h.uploads.insert(op, file.clone());
    h.run();
    assert_eq!(h.completed(switch), Some(&Ok(200)));
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.server.uploaded == file);
    assert_eq!(transfer_done(&h, op), (file.len() as u64, None));
    // The wire carried the file itself, not TLS records.
    let data = data_connection_ids(&h);
    assert!(h.data_from_client[&data[0]] == file);
}

// spec: T52, T24, T17
#[test]
fn a_refused_prot_keeps_the_previous_level() {
    let file = payload(10_000);
    let mut s = script();
    s.file = file.clone();
    // The login's PROT C is accepted, the switch to PROT P refused.
    reply_override(
        &mut s,
        Verb::Prot,
        &[b"200 PROT C ok\r\n", b"534 private data not available\r\n"],
    );
    let mut config = client_config(ClientTlsMode::Explicit);
    config.data_protection = DataProtection::Clear;
    let mut h = logged_in(config, s);
    let switch = h
        .client
        .set_data_protection(DataProtection::Private)
        .unwrap();
    let get = h.client.retrieve(b"f", None).unwrap();
    h.run();
    match h.completed(switch) {
        Some(Err(OpError::Rejected { reply })) => assert_eq!(reply.code.get(), 534),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // Not a session error: the session goes on, in clear as before.
    assert_eq!(h.closed_count(), 0);
    assert_eq!(h.client.data_protection(), DataProtection::Clear);
    assert_eq!(h.completed(get), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.downloaded[&get] == file);
    assert_eq!(transfer_done(&h, get), (file.len() as u64, None));
    assert_eq!(h.data_from_client.get(&data_connection_ids(&h)[0]), None);
}

// spec: T52, T24, T16
#[test]
fn a_refused_pbsz_keeps_private_data_and_sends_no_prot() {
    let file = payload(10_000);
    let mut s = script();
    s.file = file.clone();
    reply_override(&mut s, Verb::Pbsz, &[b"200 PBSZ=0\r\n", b"503 not now\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let switch = h.client.set_data_protection(DataProtection::Clear).unwrap();
    let get = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert!(matches!(
        h.completed(switch),
        Some(Err(OpError::Rejected { .. }))
    ));
    assert_eq!(h.client.data_protection(), DataProtection::Private);
    // Only the login's PROT went out.
    assert_eq!(
        h.server
            .verbs()
            .iter()
            .filter(|v| **v == Verb::Prot)
            .count(),
        1
    );
    assert_eq!(h.completed(get), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.downloaded[&get] == file);
    assert_eq!(transfer_done(&h, get).1, Some(true));
    assert!(opened_with_client_hello(&h, data_connection_ids(&h)[0]));
}

// spec: T52, T24
#[test]
fn implicit_ftps_can_switch_to_clear_data() {
    let file = payload(8_000);
    let mut s = script();
    s.implicit = true;
    s.file = file.clone();
    let mut h = logged_in(client_config(ClientTlsMode::Implicit), s);
    assert_eq!(h.client.data_protection(), DataProtection::Private);
    let switch = h.client.set_data_protection(DataProtection::Clear).unwrap();
    let get = h.client.retrieve(b"f", None).unwrap();
    h.run();
    assert_eq!(h.completed(switch), Some(&Ok(200)));
    assert_eq!(h.completed(get), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.downloaded[&get] == file);
    assert_eq!(transfer_done(&h, get).1, None);
    assert_eq!(h.data_from_client.get(&data_connection_ids(&h)[0]), None);
}

// spec: T52, T24
#[test]
fn an_unlisted_2yz_to_a_switch_fails_only_the_switch() {
    let mut s = script();
    s.file = payload(4_000);
    reply_override(
        &mut s,
        Verb::Prot,
        &[b"200 PROT ok\r\n", b"202 PROT superfluous\r\n"],
    );
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let switch = h.client.set_data_protection(DataProtection::Clear).unwrap();
    let get = h.client.retrieve(b"f", None).unwrap();
    h.run();
    match h.completed(switch) {
        Some(Err(OpError::UnexpectedReply { command, reply })) => {
            assert_eq!((*command, reply.code.get()), ("PROT", 202));
        }
        other => panic!("expected an unexpected-reply failure, got {other:?}"),
    }
    // The server's state is unknown: the level the client uses stays what it was.
    assert_eq!(h.client.data_protection(), DataProtection::Private);
    assert_eq!(h.completed(get), Some(&Ok(226)), "{:#?}", h.events);
    assert_eq!(transfer_done(&h, get).1, Some(true));
    assert_eq!(h.closed_count(), 0);
}

// spec: T52, §9.3
#[test]
fn switching_prot_without_tls_on_the_control_connection_is_refused() {
    // Plaintext mode: known at once, before any connection.
    let mut plain = Harness::new(client_config(ClientTlsMode::Plaintext), script());
    for level in [DataProtection::Private, DataProtection::Clear] {
        assert_eq!(
            plain.client.set_data_protection(level),
            Err(UsageError::NotSecured)
        );
    }

    // AUTH TLS refused and plaintext accepted by the configuration.
    let mut s = script();
    s.auth_reply = b"502 no\r\n".to_vec();
    let mut h = logged_in(client_config(ClientTlsMode::ExplicitIfAvailable), s);
    assert!(!h.client.is_secure());
    assert_eq!(
        h.client.set_data_protection(DataProtection::Private),
        Err(UsageError::NotSecured)
    );
    assert_eq!(
        h.client.set_data_protection(DataProtection::Clear),
        Err(UsageError::NotSecured)
    );
    h.run();
    assert!(!h.server.verbs().contains(&Verb::Pbsz));
    assert!(!h.server.verbs().contains(&Verb::Prot));
    assert_eq!(h.client.pending_ops(), 0);
}

// spec: T52, T26
#[test]
fn a_switch_queued_behind_ccc_sends_nothing_and_after_ccc_is_refused() {
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
    let ccc = h.client.ccc().unwrap();
    // TLS is still up when this is queued; by the time it runs it is gone.
    let switch = h.client.set_data_protection(DataProtection::Clear).unwrap();
    h.run();
    assert_eq!(h.completed(ccc), Some(&Ok(200)), "{:#?}", h.events);
    assert_eq!(h.completed(switch), Some(&Err(OpError::NotSecured)));
    assert!(
        !h.server
            .after_ccc
            .iter()
            .any(|command| matches!(command, Command::Pbsz(_) | Command::Prot(_)))
    );
    assert_eq!(h.client.data_protection(), DataProtection::Private);
    assert_eq!(
        h.client.set_data_protection(DataProtection::Private),
        Err(UsageError::NotSecured)
    );
}

// spec: T52
#[test]
fn raw_pbsz_and_prot_are_refused_in_favour_of_the_verb() {
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
    for (verb, argument) in [
        (&b"PROT"[..], &b"C"[..]),
        (b"prot", b"P"),
        (b"PBSZ", b"0"),
        (b"pBsZ", b"0"),
    ] {
        assert!(matches!(
            h.client.raw_command(verb, Some(argument)),
            Err(UsageError::WrongCall(_))
        ));
    }
    h.run();
    assert_eq!(protection_commands(&h).len(), 2);
}

// spec: T52
#[test]
fn a_switch_after_the_session_ended_is_a_usage_error() {
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), script());
    h.client.quit().unwrap();
    h.run();
    assert!(h.client.is_closed());
    assert_eq!(
        h.client.set_data_protection(DataProtection::Clear),
        Err(UsageError::Closed)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    // spec: T52, T24 — any sequence of switches, each accepted or refused at PBSZ or PROT,
    // with a download after each: the level in force is the last one the server accepted,
    // and each data connection runs at exactly that level.
    #[test]
    fn the_level_in_force_is_the_last_accepted_switch(
        steps in proptest::collection::vec(
            (proptest::prelude::any::<bool>(), 0u8..3),
            1..5,
        ),
    ) {
        // 0: accepted; 1: PBSZ refused; 2: PROT refused.
        let file = payload(3_000);
        let mut s = script();
        s.file = file.clone();
        let mut pbsz: Vec<&[u8]> = vec![b"200 PBSZ=0\r\n"];
        let mut prot: Vec<&[u8]> = vec![b"200 PROT ok\r\n"];
        for &(_, outcome) in &steps {
            pbsz.push(if outcome == 1 { b"504 no PBSZ\r\n" } else { b"200 PBSZ=0\r\n" });
            if outcome != 1 {
                prot.push(if outcome == 2 { b"534 no PROT\r\n" } else { b"200 PROT ok\r\n" });
            }
        }
        // One scripted reply per PBSZ/PROT the client sends, the login's first.
        reply_override(&mut s, Verb::Pbsz, &pbsz);
        reply_override(&mut s, Verb::Prot, &prot);
        let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
        let mut model = DataProtection::Private;
        for &(private, outcome) in &steps {
            let wanted = if private { DataProtection::Private } else { DataProtection::Clear };
            let switch = h.client.set_data_protection(wanted).unwrap();
            let get = h.client.retrieve(b"f", None).unwrap();
            h.run();
            if outcome == 0 {
                proptest::prop_assert_eq!(h.completed(switch), Some(&Ok(200)));
                model = wanted;
            } else {
                let refused = matches!(h.completed(switch), Some(Err(OpError::Rejected { .. })));
                proptest::prop_assert!(refused);
            }
            proptest::prop_assert_eq!(h.client.data_protection(), model);
            proptest::prop_assert_eq!(h.completed(get), Some(&Ok(226)));
            proptest::prop_assert!(h.downloaded[&get] == file);
            let expected_resumed = (model == DataProtection::Private).then_some(true);
            proptest::prop_assert_eq!(transfer_done(&h, get).1, expected_resumed);
        }
        proptest::prop_assert_eq!(h.closed_count(), 0);
    }
}

// ---------------------------------------------------------------- binding-ready API

// spec: X02, X03
#[test]
fn operations_complete_with_their_reply_parsed_into_a_typed_value() {
    use ftps_proto::client::OpValue;
    use ftps_proto::codec::listing::FtpTime;
    let mut s = script();
    reply_override(&mut s, Verb::Mdtm, &[b"213 20260102030405\r\n"]);
    reply_override(&mut s, Verb::Mkd, &[b"257 \"/home/d\" created\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let pwd = h.client.pwd().unwrap();
    let size = h.client.size(b"a").unwrap();
    let mdtm = h.client.mdtm(b"a").unwrap();
    let mkd = h.client.mkd(b"d").unwrap();
    let dele = h.client.dele(b"a").unwrap();
    h.run();
    assert_eq!(h.values[&pwd], OpValue::Path(b"/home".to_vec()));
    assert_eq!(h.values[&size], OpValue::Size(1234));
    assert_eq!(
        h.values[&mdtm],
        OpValue::Modified(FtpTime::parse(b"20260102030405").unwrap())
    );
    assert_eq!(h.values[&mkd], OpValue::Path(b"/home/d".to_vec()));
    assert_eq!(h.values[&dele], OpValue::None);
}

#[test]
fn a_positive_reply_without_the_promised_value_fails_the_operation_only() {
    let mut s = script();
    reply_override(&mut s, Verb::Pwd, &[b"257 no quotes here\r\n"]);
    reply_override(&mut s, Verb::Size, &[b"213 lots\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let pwd = h.client.pwd().unwrap();
    let size = h.client.size(b"a").unwrap();
    let noop = h.client.noop().unwrap();
    h.run();
    assert!(matches!(
        h.completed(pwd),
        Some(Err(OpError::UnparsableReply { command: "PWD", .. }))
    ));
    assert!(matches!(
        h.completed(size),
        Some(Err(OpError::UnparsableReply {
            command: "SIZE",
            ..
        }))
    ));
    assert_eq!(h.completed(noop), Some(&Ok(200)));
    assert_eq!(
        h.completed(pwd).unwrap().as_ref().unwrap_err().kind(),
        ftps_proto::error::ErrorKind::Protocol
    );
}

#[test]
fn a_failed_login_fails_the_operations_queued_behind_it_and_sends_none_of_them() {
    let mut s = script();
    reply_override(
        &mut s,
        Verb::Pass,
        &[b"530 Login incorrect\r\n", b"230 ok\r\n"],
    );
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    h.run();
    let login = h.client.login(b"alice", b"wrong", None).unwrap();
    let retr = h.client.retrieve(b"secret.txt", None).unwrap();
    let cwd = h.client.cwd(b"/x").unwrap();
    let relogin = h.client.login(b"alice", b"secret", None).unwrap();
    let pwd = h.client.pwd().unwrap();
    h.run();
    assert!(matches!(
        h.completed(login),
        Some(Err(OpError::Rejected { .. }))
    ));
    assert_eq!(h.completed(retr), Some(&Err(OpError::LoginFailed)));
    assert_eq!(h.completed(cwd), Some(&Err(OpError::LoginFailed)));
    // The next login runs as queued, and what follows it again.
    assert_eq!(h.completed(relogin), Some(&Ok(230)));
    assert_eq!(h.completed(pwd), Some(&Ok(257)));
    let verbs = h.server.verbs();
    assert!(!verbs.contains(&Verb::Retr), "{verbs:?}");
    assert!(!verbs.contains(&Verb::Cwd), "{verbs:?}");
    assert!(!verbs.contains(&Verb::Epsv), "{verbs:?}");
}

// spec: X09
#[test]
fn list_entries_uses_mlsd_when_feat_offers_mlst_and_list_otherwise() {
    let mut s = script();
    s.listing = b"type=file;size=3; a.txt\r\n".to_vec();
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.list_entries(None).unwrap();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)));
    assert!(h.server.verbs().contains(&Verb::Mlsd));
    assert!(!h.server.verbs().contains(&Verb::List));

    let mut s = script();
    s.feat_tls = b"211-Features:\r\n PBSZ\r\n PROT\r\n EPSV\r\n211 End\r\n".to_vec();
    s.listing = b"-rw-r--r-- 1 u g 3 Jan 01 2026 a.txt\r\n".to_vec();
    let mut h = Harness::new(client_config(ClientTlsMode::Explicit), s);
    // Queued before the session is ready: decided once FEAT was read.
    let op = h.client.list_entries(None).unwrap();
    h.run();
    h.login();
    h.run();
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.server.verbs().contains(&Verb::List));
    assert!(!h.server.verbs().contains(&Verb::Mlsd));
}

#[test]
fn a_download_completes_only_after_the_application_read_every_byte() {
    let mut s = script();
    s.file = payload(200_000);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    h.read_downloads = false;
    let op = h.client.retrieve(b"big", None).unwrap();
    h.run();
    // Nothing read: the bounded buffer is full, the transfer waits.
    assert_eq!(h.completed(op), None, "{:#?}", h.events);
    h.read_downloads = true;
    for _ in 0..1000 {
        if h.completed(op).is_some() {
            break;
        }
        h.read_all(op);
        h.run();
    }
    assert_eq!(h.completed(op), Some(&Ok(226)), "{:#?}", h.events);
    assert!(h.downloaded[&op] == payload(200_000));
    assert_eq!(transfer_done(&h, op).0, 200_000);
    // Reading is for downloads only, and ids must be known.
    let pwd = h.client.pwd().unwrap();
    assert_eq!(
        h.client.read_data(pwd, &mut [0; 8]),
        Err(UsageError::WrongCall("not a transfer"))
    );
    assert_eq!(
        h.client
            .read_data(ftps_proto::client::OpId::from_raw(999), &mut [0; 8]),
        Err(UsageError::UnknownId)
    );
}

#[test]
fn a_blocked_data_channel_does_not_hold_back_control_bytes() {
    let mut s = script();
    s.mute.push(Verb::Retr);
    reply_override(&mut s, Verb::Abor, &[b"426 aborted\r\n226 abort ok\r\n"]);
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.store(b"up").unwrap();
    h.run();
    let data =
        h.io.iter()
            .find_map(|r| match r {
                IoRequest::Connect {
                    channel: channel @ Channel::Data(_),
                    ..
                } => Some(*channel),
                _ => None,
            })
            .expect("a data connection");
    h.client.handle_transmit_blocked(data, h.instant());
    // Upload bytes wait for the data channel; ABOR must still get out.
    h.client.write_data(op, &payload(50_000)).unwrap();
    h.client.abort(op).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut control = 0;
    loop {
        match h.client.poll_output(&mut buf, h.instant()) {
            ftps_proto::io::Output::Transmit { channel, len } => {
                assert_eq!(channel, Channel::Control, "nothing for a blocked channel");
                control += len;
            }
            ftps_proto::io::Output::Wait { .. } => break,
            _ => {}
        }
    }
    assert!(
        control > 0,
        "ABOR went out while the data channel was blocked"
    );
    h.client.handle_transmit_ready(data, h.instant());
}

// Found by the fault matrix (tests/tests/fault_matrix.rs, disk_full_*): the server refuses an
// upload mid-way (552, disk full) and drops the data connection, which the client sees as a
// reset first; the session's own ABOR then reported the reset and hid the server's reason.
#[test]
fn data_reset_then_552_reports_the_servers_refusal() {
    let mut s = script();
    s.mute.push(Verb::Stor);
    // The STOR's own refusal, then the ABOR's reply.
    reply_override(
        &mut s,
        Verb::Abor,
        &[b"552 insufficient storage space\r\n226 no transfer to abort\r\n"],
    );
    let mut h = logged_in(client_config(ClientTlsMode::Explicit), s);
    let op = h.client.store(b"big").unwrap();
    h.run();
    let data =
        h.io.iter()
            .find_map(|r| match r {
                IoRequest::Connect {
                    channel: Channel::Data(id),
                    ..
                } => Some(*id),
                _ => None,
            })
            .expect("a data connection");
    let now = ftps_proto::io::Instant::from_nanos(h.now);
    h.client.handle_io_error(
        Channel::Data(data),
        ftps_proto::io::IoErrorKind::ConnectionReset,
        now,
    );
    let after = h.client.pwd().unwrap();
    h.run();
    match h.completed(op) {
        Some(Err(OpError::Rejected { reply })) => assert_eq!(reply.code.get(), 552),
        other => panic!("expected the 552, got {other:?}; {:#?}", h.events),
    }
    assert_eq!(h.completed(after), Some(&Ok(257)), "{:#?}", h.events);
    assert_eq!(h.closed_count(), 0);
}
