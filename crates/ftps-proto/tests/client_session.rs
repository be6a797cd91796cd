//! The sans-IO FTPS client session against a scripted server built from the codec and the TLS
//! adapter, in memory (no sockets), with simulated time.

#[allow(dead_code)]
mod client_support;
#[allow(dead_code)]
mod common;

use std::time::Duration;

use client_support::{Ev, Harness, Script, Split, client_config};
use ftps_proto::client::{
    ClientError, DataProtection, OpError, ProtocolError, TimeoutKind, TlsMode, UsageError,
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), script());
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
    let mut h = Harness::new(client_config(TlsMode::Implicit), s);
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
        let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut h = Harness::new(client_config(TlsMode::ExplicitIfAvailable), s);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut config = client_config(TlsMode::Explicit);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), script());
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
        let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), script());
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
        .handle_receive(Channel::Control, b"200 late\r\n", h.instant())
        .unwrap();
    h.run();
    assert_eq!(h.closed_count(), 1);
}

// spec: §3.1
#[test]
fn a_421_ends_the_session_with_an_event() {
    let mut s = script();
    reply_override(&mut s, Verb::Noop, &[b"421 shutting down\r\n"]);
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), script());
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let mut h = Harness::new(client_config(TlsMode::Explicit), s);
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
    let config = client_config(TlsMode::Explicit);
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
    let mut whole = Harness::new(client_config(TlsMode::Explicit), script());
    whole.run();
    whole.login();
    whole.client.syst().unwrap();
    whole.run();

    let mut s = script();
    s.greeting = b"220-Welcome\r\n220 still welcome\r\n".to_vec();
    let mut bytewise = Harness::new(client_config(TlsMode::Explicit), s.clone());
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
