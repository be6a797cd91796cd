//! The sans-IO server session, driven by the real `ClientSession` through an in-memory pump,
//! and by raw scripted bytes for the defences.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
mod server_support;

use std::time::Duration;

use ftps_proto::client::{ClientTlsMode, ListingEntry};
use ftps_proto::codec::listing::ListLine;
use ftps_proto::io::{Channel, IoRequest};
use ftps_proto::server::{
    FsError, Refusal, Request, RequestId, ServerError, ServerTlsMode, UsageError,
};
use server_support::{CEv, Pair, Raw, RawData, SEv, client_config, server_config};

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn codes(replies: &[ftps_proto::codec::reply::Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.code.get()).collect()
}

// ---------------------------------------------------------------- with the real client

// spec: T06, T17, T19, T21
#[test]
fn real_client_logs_in_over_explicit_tls() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    assert!(pair.server.is_secure());
    pair.login();
    assert!(pair.server.is_logged_in());
    assert!(
        pair.server_events
            .iter()
            .any(|e| matches!(e, SEv::Secured(_)))
    );
}

// spec: T40, §9.4
#[test]
fn upload_download_round_trip_with_resumed_data_connections() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    let content = random_bytes(300_000, 7);
    let op = pair.client.store(b"big.bin").unwrap();
    pair.upload(op, content.clone());
    pair.run();
    assert_eq!(
        pair.completed(op),
        Some(Ok(226)),
        "{:?}",
        pair.client_events
    );
    assert_eq!(pair.fs.files.get(&b"/big.bin"[..]), Some(&content));
    let (_, resumed) = pair.transfer_completed(op).unwrap();
    assert_eq!(resumed, Some(true));

    let op = pair.client.retrieve(b"big.bin", None).unwrap();
    pair.run();
    assert_eq!(
        pair.completed(op),
        Some(Ok(226)),
        "{:?}",
        pair.client_events
    );
    assert_eq!(pair.downloads.get(&op), Some(&content));
    assert_eq!(pair.transfer_completed(op).unwrap().1, Some(true));
    assert!(
        pair.server_events
            .iter()
            .any(|e| matches!(e, SEv::SendFinished(_, true)))
    );
}

#[test]
fn listing_mlsd_nlst_rename_delete() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    pair.fs.files.insert(b"/a.txt".to_vec(), b"hello".to_vec());
    pair.fs
        .files
        .insert(b"/b file.txt".to_vec(), b"hi".to_vec());

    let op = pair.client.mlsd(None).unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    let entries = pair.listing(op);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let ListingEntry::Mlsd(first) = &entries[0] else {
        panic!("{entries:?}")
    };
    assert_eq!(first.name, b"a.txt");
    assert_eq!(first.size(), Some(5));

    let op = pair.client.list(None).unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    let entries = pair.listing(op);
    let ListingEntry::List(ListLine::Entry(entry)) = &entries[1] else {
        panic!("{entries:?}")
    };
    assert_eq!(entry.name, b"b file.txt");
    assert_eq!(entry.size, 2);

    let op = pair.client.nlst(None).unwrap();
    pair.run();
    assert_eq!(
        pair.listing(op),
        vec![
            ListingEntry::Name(b"a.txt".to_vec()),
            ListingEntry::Name(b"b file.txt".to_vec())
        ]
    );

    let op = pair.client.rename(b"a.txt", b"c.txt").unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(250)));
    assert!(pair.fs.files.contains_key(&b"/c.txt"[..]));
    let op = pair.client.dele(b"c.txt").unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(250)));
    assert!(!pair.fs.files.contains_key(&b"/c.txt"[..]));
    let op = pair.client.dele(b"missing").unwrap();
    pair.run();
    assert!(matches!(pair.completed(op), Some(Err(_))));
}

#[test]
fn cwd_pwd_mkd_size_mdtm() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    let op = pair.client.mkd(b"dir").unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(257)));
    let op = pair.client.cwd(b"dir").unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(250)));
    assert_eq!(pair.server.cwd(), b"/dir");
    let op = pair.client.cwd(b"nope").unwrap();
    pair.run();
    assert!(matches!(pair.completed(op), Some(Err(_))));
    assert_eq!(pair.server.cwd(), b"/dir");
    let op = pair.client.cdup().unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(250)));
    assert_eq!(pair.server.cwd(), b"/");
    pair.fs.files.insert(b"/f".to_vec(), vec![1; 42]);
    // spec: X03 — no SIZE in TYPE A (the default): the octet count would differ.
    let op = pair.client.raw_command(b"SIZE", Some(b"f")).unwrap();
    pair.run();
    assert!(matches!(pair.completed(op), Some(Err(_))));
    // The client's SIZE sends its file-transfer TYPE (I) first, so it gets the count.
    let op = pair.client.size(b"f").unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(213)));
    let op = pair.client.raw_command(b"TYPE", Some(b"A")).unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(200)));
    let op = pair.client.raw_command(b"SIZE", Some(b"f")).unwrap();
    pair.run();
    assert!(matches!(pair.completed(op), Some(Err(_))));
    // After a raw TYPE the client no longer trusts its idea of the TYPE and sends TYPE I again.
    let op = pair.client.size(b"f").unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(213)));
    let op = pair.client.mdtm(b"f").unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(213)));
}

// spec: X04
#[test]
fn resumed_download_with_rest() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    let content = random_bytes(10_000, 3);
    pair.fs.files.insert(b"/r.bin".to_vec(), content.clone());
    let op = pair.client.retrieve(b"r.bin", Some(4_000)).unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    assert_eq!(pair.downloads.get(&op).unwrap(), &content[4_000..]);
    assert!(
        pair.server_events
            .iter()
            .any(|e| matches!(e, SEv::Request(_, Request::Retrieve { offset: 4_000, .. })))
    );
}

// spec: T14
#[test]
fn quit_closes_in_order() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    let op = pair.client.quit().unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(221)));
    assert!(pair.server_closed);
    assert!(pair.server_events.contains(&SEv::Closed(None)));
}

#[test]
fn implicit_tls_greeting_inside_tls() {
    let mut config = server_config();
    config.tls_mode = ServerTlsMode::Implicit;
    let mut client = client_config();
    client.tls_mode = ClientTlsMode::Implicit;
    let mut pair = Pair::new(config, client);
    pair.run();
    assert!(pair.server.is_secure());
    pair.login();
    let content = random_bytes(5_000, 11);
    pair.fs.files.insert(b"/i.bin".to_vec(), content.clone());
    let op = pair.client.retrieve(b"i.bin", None).unwrap();
    pair.run();
    assert_eq!(pair.downloads.get(&op), Some(&content));
}

// spec: T17 — implicit mode applies the explicit mode's sequencing to PBSZ and PROT: PROT
// before PBSZ is refused (503), as after AUTH TLS; data is private from the start either way
// (MS-FTPS clients send neither, checklist §1.13).
#[test]
fn implicit_prot_before_pbsz_is_refused_like_explicit() {
    for mode in [ServerTlsMode::Explicit, ServerTlsMode::Implicit] {
        let mut config = server_config();
        config.tls_mode = mode;
        let mut raw = Raw::new(config);
        match mode {
            ServerTlsMode::Implicit => raw.start_tls(ftps_proto::tls::client_config_for_control(
                &common::base_client(common::pki()),
            )),
            _ => raw.auth_tls(),
        }
        raw.login();
        assert_eq!(codes(&raw.cmd("PROT P")), vec![503], "{mode:?}");
        assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![200], "{mode:?}");
        assert_eq!(codes(&raw.cmd("PROT P")), vec![200], "{mode:?}");
    }
}

// ---------------------------------------------------------------- raw scripted

// spec: T01, T48, S11 — the session starts in plaintext (220 read without TLS); a policy of TLS
// before login is enforced by refusing USER/PASS and every other command that needs it, and
// PBSZ/PROT need the security exchange first.
#[test]
fn greeting_then_tls_required_before_login() {
    let mut raw = Raw::new(server_config());
    assert_eq!(raw.last_code(), 220);
    assert!(
        raw.raw_control.starts_with(b"220 "),
        "greeting in plaintext"
    );
    assert!(!raw.server.is_secure());
    // spec: §9.3, T15 — no USER/PASS in clear.
    assert_eq!(codes(&raw.cmd("USER alice")), vec![530]);
    assert_eq!(codes(&raw.cmd("PASS secret")), vec![530]);
    assert_eq!(codes(&raw.cmd("PWD")), vec![530]);
    assert_eq!(codes(&raw.cmd("SYST")), vec![215]);
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
    assert_eq!(codes(&raw.cmd("FEAT")), vec![211]);
    // spec: T17
    assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![503]);
    assert_eq!(codes(&raw.cmd("PROT P")), vec![503]);
    // spec: T26
    assert_eq!(codes(&raw.cmd("CCC")), vec![533]);
    assert!(raw.requests.is_empty());
}

// spec: T04, T05
#[test]
fn auth_mechanisms_are_case_insensitive_and_unknown_is_504() {
    for mechanism in ["tls", "Tls-C", "SSL", "tls-p"] {
        let mut raw = Raw::new(server_config());
        assert_eq!(codes(&raw.cmd(&format!("AUTH {mechanism}"))), vec![234]);
    }
    let mut raw = Raw::new(server_config());
    assert_eq!(codes(&raw.cmd("AUTH KERBEROS_V4")), vec![504]);
    // Not echoed (ALPACA reflection).
    assert!(!raw.replies[1].text().windows(8).any(|w| w == b"KERBEROS"));
}

// spec: §9.1
#[test]
fn bytes_after_auth_tls_are_never_executed() {
    let mut raw = Raw::new(server_config());
    raw.send(b"AUTH TLS\r\nUSER alice\r\n");
    assert_eq!(raw.last_code(), 421);
    assert!(raw.replies.iter().all(|r| r.code.get() != 234));
    assert!(raw.requests.is_empty());
    assert_eq!(
        raw.closed(),
        Some(Some(ServerError::PipelinedAfterSecurityChange))
    );
    assert!(raw.control_closed());

    // A partial line is refused too.
    let mut raw = Raw::new(server_config());
    raw.send(b"AUTH TLS\r\nUS");
    assert_eq!(raw.last_code(), 421);
}

// spec: T10, T17, T19, T21
// spec: T20 — only C and P are accepted under TLS; S and E get 536.
#[test]
fn pbsz_prot_sequence_and_auth_under_tls() {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    assert_eq!(codes(&raw.cmd("AUTH TLS")), vec![503]);
    assert_eq!(codes(&raw.cmd("PROT P")), vec![503]);
    let replies = raw.cmd("PBSZ 1024");
    assert_eq!(codes(&replies), vec![200]);
    assert_eq!(replies[0].text(), b"PBSZ=0");
    assert_eq!(codes(&raw.cmd("PROT C")), vec![534]);
    assert_eq!(codes(&raw.cmd("PROT S")), vec![536]);
    assert_eq!(codes(&raw.cmd("PROT E")), vec![536]);
    assert_eq!(codes(&raw.cmd("PROT X")), vec![504]);
    assert_eq!(codes(&raw.cmd("PROT P")), vec![200]);
    raw.login();
    assert_eq!(codes(&raw.cmd("PWD")), vec![257]);
    // spec: T14 — REIN refused compliantly.
    assert_eq!(codes(&raw.cmd("REIN")), vec![502]);
    // spec: T26, T28, S11 — CCC refused by default policy (2228 §7 discourages CCC).
    assert_eq!(codes(&raw.cmd("CCC")), vec![534]);
}

// spec: T30, F02, F06, X09, X10
// spec: F03, F08 — every extension the server implements is listed, upper case, FEAT and OPTS
// are not (OPTS exists: it answers); the list is the checklist's typical FTPS FEAT.
#[test]
fn feat_advertises_what_is_supported_and_opts() {
    let mut raw = Raw::new(server_config());
    let feat = raw.cmd("FEAT").pop().unwrap();
    let lines: Vec<String> = feat
        .lines
        .iter()
        .map(|l| String::from_utf8(l.clone()).unwrap())
        .collect();
    for expected in [
        " AUTH TLS",
        " PBSZ",
        " PROT",
        " EPSV",
        " EPRT",
        " MDTM",
        " SIZE",
        " REST STREAM",
        " UTF8",
        " HOST",
        " TVFS",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected} in {lines:?}"
        );
    }
    assert!(!lines.iter().any(|l| l == " CCC"));
    let mut labels: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l[1..].split(' ').next().unwrap())
        .collect();
    // Order is irrelevant (RFC 2389 §3.2).
    labels.sort_unstable();
    let mut expected = [
        "AUTH", "PBSZ", "PROT", "EPRT", "EPSV", "MDTM", "SIZE", "REST", "MLST", "TVFS", "UTF8",
        "HOST",
    ];
    expected.sort_unstable();
    assert_eq!(labels, expected, "{lines:?}");
    for label in &labels {
        assert_eq!(label.to_ascii_uppercase(), *label);
        assert_ne!(*label, "FEAT");
        assert_ne!(*label, "OPTS");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(" MLST type*;size*;modify*;perm*;unique*;"))
    );
    assert_eq!(codes(&raw.cmd("OPTS UTF8 ON")), vec![200]);
    let reply = raw.cmd("OPTS MLST size;type;bogus;").pop().unwrap();
    assert_eq!(reply.code.get(), 200);
    assert_eq!(reply.text(), b"MLST OPTS type;size;");
    assert_eq!(codes(&raw.cmd("OPTS MLST size type")), vec![501]);
    assert_eq!(codes(&raw.cmd("FEAT x")), vec![501]);
}

// spec: §7 (brute force)
#[test]
fn failed_logins_are_delayed_then_421() {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    for attempt in 1..=3 {
        raw.cmd("USER alice");
        raw.cmd("PASS wrong");
        let (id, request) = raw.requests.pop().unwrap();
        // spec: passwords never logged.
        let debug = format!("{request:?}");
        assert!(!debug.contains("wrong"), "{debug}");
        raw.server.answer_login(id, false).unwrap();
        raw.drain();
        // Nothing before the delay: the reply waits for the deadline.
        let before = raw.replies.len();
        let deadline = match raw.server.poll_output(&mut [0u8; 0], raw.now) {
            ftps_proto::io::Output::Wait { deadline } => deadline.unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(deadline, raw.now.saturating_add(Duration::from_secs(2)));
        raw.now = deadline;
        raw.server.handle_timeout(deadline);
        raw.drain();
        assert_eq!(raw.replies.len(), before + 1);
        if attempt < 3 {
            assert_eq!(raw.last_code(), 530);
        } else {
            assert_eq!(raw.last_code(), 421);
            assert_eq!(raw.closed(), Some(Some(ServerError::TooManyFailedLogins)));
        }
    }
}

// spec: §9.6
#[test]
fn http_request_closes_at_once_without_reply() {
    let mut raw = Raw::new(server_config());
    let before = raw.replies.len();
    raw.send(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(raw.replies.len(), before);
    assert_eq!(raw.closed(), Some(Some(ServerError::HttpRequest)));
    assert!(raw.control_closed());
}

#[test]
fn over_long_line_is_refused_without_echo() {
    let mut raw = Raw::new(server_config());
    let line = format!("NOOP {}", "A".repeat(20_000));
    let replies = raw.cmd(&line);
    assert_eq!(codes(&replies), vec![500]);
    assert!(!replies[0].text().contains(&b'A'));
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
}

#[test]
fn idle_timeout_sends_421_and_closes() {
    let mut config = server_config();
    // The login timeout (shorter by default) would fire first.
    config.timeouts.login = Duration::from_secs(3600);
    let mut raw = Raw::new(config);
    let deadline = raw.server.next_deadline().unwrap();
    raw.now = deadline;
    raw.server.handle_timeout(deadline);
    raw.drain();
    assert_eq!(raw.last_code(), 421);
    assert_eq!(raw.closed(), Some(Some(ServerError::IdleTimeout)));
}

#[test]
fn unknown_commands_are_limited() {
    let mut raw = Raw::new(server_config());
    for _ in 0..10 {
        assert_eq!(codes(&raw.cmd("XYZZY")), vec![500]);
    }
    assert_eq!(codes(&raw.cmd("XYZZY")), vec![421]);
    assert_eq!(raw.closed(), Some(Some(ServerError::TooManyBadCommands)));
}

// spec: T37
// spec: S10 — a protection level below what the server needs refuses STOR/STOU/RETR/LIST/
// NLST/APPE (and MLSD) before any 1yz; under TLS with the 4217 §10.2 code 521, not 2228's 534.
#[test]
fn transfers_need_prot_p_before_any_1yz() {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    raw.login();
    for command in ["RETR f", "STOR f", "APPE f", "STOU", "LIST", "NLST", "MLSD"] {
        assert_eq!(codes(&raw.cmd(command)), vec![521], "{command}");
    }
    assert!(raw.requests.is_empty());
}

// spec: §7 (bounce), §3.8, E02
// spec: T33 — no FXP: PORT/EPRT naming another host than the control peer is refused.
#[test]
fn port_and_eprt_bounce_defences() {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    raw.login();
    assert_eq!(codes(&raw.cmd("PORT 10,0,0,9,200,1")), vec![500]);
    assert_eq!(codes(&raw.cmd("EPRT |1|10.0.0.9|51201|")), vec![500]);
    assert_eq!(codes(&raw.cmd("PORT 127,0,0,1,0,80")), vec![504]);
    assert_eq!(codes(&raw.cmd("EPRT |1|127.0.0.1|25|")), vec![504]);
    let reply = raw.cmd("EPRT |3|x|1|").pop().unwrap();
    assert_eq!(reply.code.get(), 522);
    assert_eq!(reply.text(), b"Network protocol not supported, use (1,2)");
    assert_eq!(codes(&raw.cmd("PORT 1,2,3")), vec![501]);
    assert_eq!(codes(&raw.cmd("PORT 127,0,0,1,200,1")), vec![200]);
    assert_eq!(codes(&raw.cmd("EPRT |1|127.0.0.1|51201|")), vec![200]);
    // spec: E06
    assert_eq!(codes(&raw.cmd("EPSV ALL")), vec![200]);
    assert_eq!(codes(&raw.cmd("PORT 127,0,0,1,200,1")), vec![503]);
    assert_eq!(codes(&raw.cmd("PASV")), vec![503]);
}

// spec: E03
#[test]
fn epsv_and_pasv_ask_the_driver_to_listen() {
    let mut config = server_config();
    config.pasv_address = Some(std::net::Ipv4Addr::new(203, 0, 113, 5));
    let mut raw = Raw::new(config);
    raw.auth_tls();
    raw.login();
    raw.cmd("EPSV");
    let Some(IoRequest::Listen { data, .. }) = raw.io.last().copied() else {
        panic!("{:?}", raw.io)
    };
    raw.server
        .handle_listening(data, "127.0.0.1:50123".parse().unwrap(), raw.now);
    raw.drain();
    let reply = raw.replies.last().unwrap();
    assert_eq!(reply.code.get(), 229);
    assert_eq!(reply.text(), b"Entering Extended Passive Mode (|||50123|)");
    raw.cmd("PASV");
    // The previous listener is closed.
    assert!(raw.io.contains(&IoRequest::Close {
        channel: Channel::Data(data)
    }));
    let Some(IoRequest::Listen { data, .. }) = raw.io.last().copied() else {
        panic!("{:?}", raw.io)
    };
    raw.server
        .handle_listening(data, "127.0.0.1:50124".parse().unwrap(), raw.now);
    raw.drain();
    let reply = raw.replies.last().unwrap();
    assert_eq!(reply.code.get(), 227);
    assert_eq!(reply.text(), b"Entering Passive Mode (203,0,113,5,195,204)");
    assert_eq!(codes(&raw.cmd("EPSV 3")), vec![522]);
}

// spec: §9.5 (port theft)
#[test]
fn passive_connection_from_foreign_host_is_refused() {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    raw.login();
    raw.cmd("EPSV");
    let Some(IoRequest::Listen { data, .. }) = raw.io.last().copied() else {
        panic!()
    };
    raw.server
        .handle_listening(data, "127.0.0.1:50123".parse().unwrap(), raw.now);
    raw.drain();
    let thief = "10.9.9.9:5555".parse().unwrap();
    raw.server.handle_accepted(data, thief, raw.now);
    raw.drain();
    assert!(raw.events.contains(&SEv::DataPeerRefused(thief)));
    // The session says which socket to drop; the listener stays.
    assert_eq!(
        raw.io.last().copied(),
        Some(IoRequest::RefuseAccepted { data })
    );
    // The right peer is still accepted.
    let before = raw.io.len();
    raw.server
        .handle_accepted(data, "127.0.0.1:41001".parse().unwrap(), raw.now);
    raw.drain();
    assert!(
        !raw.io[before..]
            .iter()
            .any(|r| matches!(r, IoRequest::RefuseAccepted { .. }))
    );
}

#[test]
fn client_events_are_consistent() {
    // The harness itself: a login produces LoggedIn.
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    let op = pair.login();
    assert!(pair.client_events.contains(&CEv::LoggedIn(op)));
}

fn raw_ready() -> Raw {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    raw.login();
    assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![200]);
    assert_eq!(codes(&raw.cmd("PROT P")), vec![200]);
    assert_eq!(codes(&raw.cmd("TYPE I")), vec![200]);
    raw
}

fn answer_last(raw: &mut Raw, answer: ftps_proto::server::Answer) -> RequestId {
    let (id, _) = raw.requests.pop().expect("a request");
    raw.server.answer(id, Ok(answer)).unwrap();
    raw.drain();
    id
}

// spec: T40, T38, §9.5
#[test]
fn data_connection_that_does_not_resume_is_refused_with_522() {
    let mut raw = raw_ready();
    let data = raw.open_passive();
    raw.cmd("RETR f");
    answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    // A fresh session store: a full handshake, as a hijacker would do.
    let stranger = ftps_proto::tls::client_config_for_control(&common::base_client(common::pki()));
    let mut conn = raw.data_client(data, stranger);
    raw.pump_data(&mut conn);
    assert!(conn.error.is_some(), "the hijacker's handshake must fail");
    assert_eq!(conn.resumed, None);
    let reply = raw.replies.last().unwrap();
    assert_eq!(reply.code.get(), 522);
    assert_eq!(
        reply.text(),
        b"SSL connection failed: session reuse required."
    );
    assert!(
        raw.events
            .iter()
            .any(|e| matches!(e, SEv::SendFinished(_, false)))
    );
    assert!(
        raw.events
            .contains(&SEv::Refused(Refusal::DataTlsNotResumed))
    );
    // The session goes on.
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
}

// spec: T40, T38 — a data connection offering a TLS 1.3 ticket from ANOTHER control
// connection of the same server (tickets are now reusable within their own control
// connection) is refused with 522 like a full handshake.
#[test]
fn data_connection_with_another_control_sessions_ticket_is_refused_with_522() {
    let mut other = raw_ready();
    let foreign = other.client_tls.clone().unwrap();
    // The other control connection's own data connection resumes with that store.
    let data = other.open_passive();
    other.cmd("RETR f");
    answer_last(&mut other, ftps_proto::server::Answer::Done);
    let mut conn = other.data_client(data, foreign.clone());
    other.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true));

    let mut raw = raw_ready();
    let data = raw.open_passive();
    raw.cmd("RETR f");
    answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    let mut conn = raw.data_client(data, foreign);
    raw.pump_data(&mut conn);
    assert!(conn.error.is_some(), "a foreign ticket must not resume");
    assert_eq!(conn.resumed, None);
    assert_eq!(raw.last_code(), 522);
    assert_eq!(
        raw.replies.last().unwrap().text(),
        b"SSL connection failed: session reuse required."
    );
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
}

// spec: §9.4, T35
#[test]
fn upload_without_close_notify_is_426_and_incomplete() {
    let mut raw = raw_ready();
    let data = raw.open_passive();
    raw.cmd("STOR up.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    let config = raw.client_tls.clone().unwrap();
    let mut conn = raw.data_client(data, config);
    raw.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true));
    let payload = random_bytes(5_000, 5);
    let tls = conn.tls.as_mut().unwrap();
    assert_eq!(tls.write(&payload).unwrap(), payload.len());
    raw.pump_data(&mut conn);
    assert_eq!(raw.uploaded.get(&id), Some(&payload));
    // TCP end without close_notify.
    raw.server.handle_eof(Channel::Data(data), raw.now);
    raw.drain();
    assert_eq!(raw.last_code(), 426);
    assert!(raw.replies.iter().all(|r| r.code.get() != 226));
    assert!(raw.events.contains(&SEv::UploadFinished(id, false)));
    // The 426 does not wait for the application: there is nothing to commit.
    assert_eq!(
        raw.server.finish_upload(id, Ok(())),
        Err(UsageError::UnknownId)
    );
    assert_eq!(raw.last_code(), 426);
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
}

// spec: T35, §9.4
#[test]
fn upload_with_close_notify_is_226_and_complete() {
    let mut raw = raw_ready();
    let data = raw.open_passive();
    raw.cmd("STOR up.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    let config = raw.client_tls.clone().unwrap();
    let mut conn = raw.data_client(data, config);
    raw.pump_data(&mut conn);
    let payload = random_bytes(70_000, 9);
    let mut sent = 0;
    while sent < payload.len() {
        sent += conn.tls.as_mut().unwrap().write(&payload[sent..]).unwrap();
        raw.pump_data(&mut conn);
    }
    conn.tls.as_mut().unwrap().close().unwrap();
    raw.pump_data(&mut conn);
    assert!(conn.peer_closed, "the server answers our close_notify");
    raw.server.handle_eof(Channel::Data(data), raw.now);
    raw.drain();
    assert_eq!(raw.last_code(), 150, "no final reply before the commit");
    assert_eq!(raw.uploaded.get(&id), Some(&payload));
    assert!(raw.events.contains(&SEv::UploadFinished(id, true)));
    raw.server.finish_upload(id, Ok(())).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 226);
    // The data channel was closed before the 226 went out.
    assert!(raw.io.contains(&IoRequest::Close {
        channel: Channel::Data(data)
    }));
}

// spec: §3.7, T54
#[test]
fn abor_during_a_download_gives_426_then_226() {
    let mut raw = raw_ready();
    let data = raw.open_passive();
    raw.cmd("RETR f");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    let config = raw.client_tls.clone().unwrap();
    let mut conn = raw.data_client(data, config);
    raw.pump_data(&mut conn);
    assert!(raw.server.write_data(id, &[7u8; 1000]).unwrap() > 0);
    raw.pump_data(&mut conn);
    assert_eq!(conn.received.len(), 1000);
    let before = raw.replies.len();
    raw.cmd("ABOR");
    assert_eq!(codes(&raw.replies[before..]), vec![426, 226]);
    assert!(raw.events.contains(&SEv::SendFinished(id, false)));
    assert!(raw.io.contains(&IoRequest::Close {
        channel: Channel::Data(data)
    }));
    // Writing after the abort is refused.
    assert!(raw.server.write_data(id, b"x").is_err());
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
}

// spec: §3.7 (QUIT during a transfer: result first)
#[test]
fn quit_during_a_transfer_waits_for_its_result() {
    let mut raw = raw_ready();
    let data = raw.open_passive();
    raw.cmd("RETR f");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    let config = raw.client_tls.clone().unwrap();
    let mut conn = raw.data_client(data, config);
    raw.pump_data(&mut conn);
    let before = raw.replies.len();
    raw.cmd("QUIT");
    assert_eq!(
        raw.replies.len(),
        before,
        "no reply before the transfer's result"
    );
    raw.server.write_data(id, b"hello").unwrap();
    raw.server.finish_data(id).unwrap();
    raw.pump_data(&mut conn);
    assert!(conn.peer_closed);
    conn.tls.as_mut().unwrap().close().unwrap();
    raw.pump_data(&mut conn);
    raw.server.handle_eof(Channel::Data(data), raw.now);
    raw.drain();
    assert_eq!(conn.received, b"hello");
    assert_eq!(codes(&raw.replies[before..]), vec![226, 221]);
    assert_eq!(raw.closed(), Some(None));
}

// spec: §3.4 (STOU: 150 FILE: name, RFC 1123 §4.1.2.9)
#[test]
fn stou_names_the_file_in_the_150() {
    let mut raw = raw_ready();
    raw.open_passive();
    raw.cmd("STOU");
    let Some((id, Request::Store { unique, path, .. })) = raw.requests.pop() else {
        panic!("{:?}", raw.requests)
    };
    assert!(unique);
    assert_eq!(path, b"/");
    raw.server
        .answer(id, Ok(ftps_proto::server::Answer::Path(b"u.1".to_vec())))
        .unwrap();
    raw.drain();
    let reply = raw.replies.last().unwrap();
    assert_eq!(reply.code.get(), 150);
    assert_eq!(reply.text(), b"FILE: u.1");
}

// spec: T32, E01, E02 — active mode: the server connects, and is still the TLS server.
#[test]
fn active_mode_transfers_with_the_real_client() {
    let mut client = client_config();
    client.data_mode = ftps_proto::client::DataConnectionMode::Active;
    let mut pair = Pair::new(server_config(), client);
    pair.run();
    pair.login();
    let content = random_bytes(40_000, 21);
    let op = pair.client.store(b"act.bin").unwrap();
    pair.upload(op, content.clone());
    pair.run();
    assert_eq!(
        pair.completed(op),
        Some(Ok(226)),
        "{:?}",
        pair.client_events
    );
    assert_eq!(pair.fs.files.get(&b"/act.bin"[..]), Some(&content));
    assert_eq!(pair.transfer_completed(op).unwrap().1, Some(true));
    let op = pair.client.retrieve(b"act.bin", None).unwrap();
    pair.run();
    assert_eq!(pair.downloads.get(&op), Some(&content));
    assert_eq!(pair.transfer_completed(op).unwrap().1, Some(true));
}

// spec: §3.5 — TYPE A converts CRLF on the wire to LF in files, both ways.
#[test]
fn type_a_converts_line_ends_both_ways() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    pair.client
        .set_transfer_type(ftps_proto::codec::command::TransferType::Ascii(
            ftps_proto::codec::command::FormatControl::NonPrint,
        ));
    let op = pair.client.store(b"text.txt").unwrap();
    pair.upload(op, b"one\r\ntwo\r\nbare\rcr\r\n".to_vec());
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    assert_eq!(
        pair.fs.files.get(&b"/text.txt"[..]).unwrap(),
        b"one\ntwo\nbare\rcr\n"
    );
    pair.fs
        .files
        .insert(b"/unix.txt".to_vec(), b"a\nb\n\nc".to_vec());
    let op = pair.client.retrieve(b"unix.txt", None).unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    assert_eq!(pair.downloads.get(&op).unwrap(), b"a\r\nb\r\n\r\nc");
}

// spec: X04 — APPE appends; REST + STOR writes at the offset.
#[test]
fn appe_and_rest_stor() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    pair.fs.files.insert(b"/log".to_vec(), b"abc".to_vec());
    let op = pair.client.append(b"log").unwrap();
    pair.upload(op, b"def".to_vec());
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    assert_eq!(pair.fs.files.get(&b"/log"[..]).unwrap(), b"abcdef");
    assert!(pair.server_events.iter().any(|e| matches!(
        e,
        SEv::Request(
            _,
            Request::Store {
                append: true,
                offset: 0,
                ..
            }
        )
    )));
}

// spec: T26, T29 — CCC: 200, close_notify both ways, then plaintext; PBSZ/PROT refused.
#[test]
fn ccc_clears_the_control_channel_and_transfers_stay_private() {
    let mut config = server_config();
    config.allow_ccc = true;
    let mut pair = Pair::new(config, client_config());
    pair.run();
    pair.login();
    let op = pair.client.ccc().unwrap();
    pair.run();
    assert_eq!(
        pair.completed(op),
        Some(Ok(200)),
        "{:?}",
        pair.client_events
    );
    assert!(!pair.server.is_secure());
    let op = pair.client.pwd().unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(257)));
    let content = random_bytes(9_000, 4);
    pair.fs
        .files
        .insert(b"/after-ccc".to_vec(), content.clone());
    let op = pair.client.retrieve(b"after-ccc", None).unwrap();
    pair.run();
    assert_eq!(pair.downloads.get(&op), Some(&content));
    assert_eq!(pair.transfer_completed(op).unwrap().1, Some(true));
}

// spec: V01, T40 — TLS 1.2 only, every data connection resumed.
#[test]
fn tls12_only_server_with_resumed_data_connections() {
    let base = std::sync::Arc::new(common::server_with_versions(
        common::pki(),
        &[&rustls::version::TLS12],
    ));
    let config = ftps_proto::server::ServerSessionConfig::new(base);
    let mut pair = Pair::new(config, client_config());
    pair.run();
    pair.login();
    let secured = pair.server_events.iter().find_map(|e| match e {
        SEv::Secured(info) => Some(info.version),
        _ => None,
    });
    assert_eq!(secured, Some(ftps_proto::tls::TlsVersion::Tls12));
    for round in 0..3 {
        let content = random_bytes(20_000, round);
        let name = format!("f{round}");
        let op = pair.client.store(name.as_bytes()).unwrap();
        pair.upload(op, content.clone());
        pair.run();
        assert_eq!(pair.transfer_completed(op).unwrap().1, Some(true));
        let op = pair.client.retrieve(name.as_bytes(), None).unwrap();
        pair.run();
        assert_eq!(pair.downloads.get(&op), Some(&content));
        assert_eq!(pair.transfer_completed(op).unwrap().1, Some(true));
    }
}

// spec: T40, T41 — TLS 1.3 with resumption required (the default): 20 uploads then 20
// downloads in one control session, every data connection resumed (each brings the client a
// fresh ticket because it asks for one, RFC 9149).
#[test]
fn tls13_many_data_connections_all_resume() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    let secured = pair.server_events.iter().find_map(|e| match e {
        SEv::Secured(info) => Some(info.version),
        _ => None,
    });
    assert_eq!(secured, Some(ftps_proto::tls::TlsVersion::Tls13));
    let files: Vec<Vec<u8>> = (0..20)
        .map(|i| random_bytes(3_000 + i * 101, i as u64))
        .collect();
    for (i, content) in files.iter().enumerate() {
        let name = format!("up{i}");
        let op = pair.client.store(name.as_bytes()).unwrap();
        pair.upload(op, content.clone());
        pair.run();
        assert_eq!(pair.completed(op), Some(Ok(226)), "upload {i}");
        assert_eq!(
            pair.transfer_completed(op).unwrap().1,
            Some(true),
            "upload {i}"
        );
        assert_eq!(
            pair.fs.files.get(format!("/{name}").as_bytes()),
            Some(content)
        );
    }
    for (i, content) in files.iter().enumerate() {
        let op = pair
            .client
            .retrieve(format!("up{i}").as_bytes(), None)
            .unwrap();
        pair.run();
        assert_eq!(pair.completed(op), Some(Ok(226)), "download {i}");
        assert_eq!(
            pair.transfer_completed(op).unwrap().1,
            Some(true),
            "download {i}"
        );
        assert_eq!(pair.downloads.get(&op), Some(content));
    }
}

// spec: T40 — policy `Off`: data connections are never resumed, every data handshake is a
// full one and the transfers still work (for clients whose resumption attempts fail).
#[test]
fn resumption_off_makes_every_data_handshake_full() {
    let mut config = server_config();
    config.data_resumption = ftps_proto::tls::ResumptionPolicy::Off;
    let mut pair = Pair::new(config, client_config());
    pair.run();
    pair.login();
    for i in 0..3 {
        let content = random_bytes(2_000 + i * 17, i as u64);
        let name = format!("off{i}");
        let op = pair.client.store(name.as_bytes()).unwrap();
        pair.upload(op, content.clone());
        pair.run();
        assert_eq!(pair.completed(op), Some(Ok(226)), "upload {i}");
        assert_eq!(pair.transfer_completed(op).unwrap().1, Some(false));
        let op = pair.client.retrieve(name.as_bytes(), None).unwrap();
        pair.run();
        assert_eq!(pair.completed(op), Some(Ok(226)), "download {i}");
        assert_eq!(pair.transfer_completed(op).unwrap().1, Some(false));
        assert_eq!(pair.downloads.get(&op), Some(&content));
    }
}

/// An upload on a resumed TLS data connection, up to the client's last bytes: returns the
/// transfer id, the client side, and the payload it sent (not yet handed to the server).
fn upload_until_client_closes(raw: &mut Raw, payload: &[u8]) -> (RequestId, RawData) {
    let data = raw.open_passive();
    raw.cmd("STOR up.bin");
    let id = answer_last(raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    let mut conn = raw.data_client(data, raw.client_tls.clone().unwrap());
    raw.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true));
    let tls = conn.tls.as_mut().unwrap();
    assert_eq!(tls.write(payload).unwrap(), payload.len());
    tls.close().unwrap();
    (id, conn)
}

/// The download `id` ended incomplete and was answered 426.
fn assert_download_failed(raw: &Raw, id: RequestId) {
    assert!(
        raw.events
            .iter()
            .any(|e| matches!(e, SEv::SendFinished(i, false) if *i == id)),
        "{:?}",
        raw.events
    );
    assert_eq!(raw.last_code(), 426);
}

fn secured_login() -> Raw {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    raw.login();
    assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![200]);
    assert_eq!(codes(&raw.cmd("PROT P")), vec![200]);
    assert_eq!(codes(&raw.cmd("TYPE I")), vec![200]);
    raw
}

// spec: T40 — an uploading client that closes its socket with the server's ticket (or
// close_notify) unread makes its kernel reset the connection, so the server's write fails —
// after the client's payload and close_notify arrived. The failed send must not fail the
// upload: the received bytes are read, the upload is committed with 226.
#[test]
fn failed_send_on_an_upload_keeps_what_arrived() {
    let mut raw = secured_login();
    let payload = random_bytes(40_000, 9);
    let (id, mut conn) = upload_until_client_closes(&mut raw, &payload);
    let channel = Channel::Data(conn.id);
    raw.server.handle_transmit_failed(
        channel,
        ftps_proto::io::IoErrorKind::ConnectionReset,
        raw.now,
    );
    raw.pump_data(&mut conn);
    // Our close_notify had nowhere to go: nothing more was handed out for the channel.
    assert!(!conn.peer_closed);
    raw.server.handle_eof(channel, raw.now);
    raw.drain();
    raw.server.finish_upload(id, Ok(())).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 226);
    assert_eq!(raw.uploaded.get(&id), Some(&payload));
}

// spec: T37 — the same reset, but the client's close_notify never arrived (its kernel dropped
// the unsent tail): a truncated upload, refused, never 226.
#[test]
fn failed_send_on_an_upload_without_close_notify_is_truncation() {
    let mut raw = secured_login();
    let payload = random_bytes(40_000, 10);
    let (id, mut conn) = upload_until_client_closes(&mut raw, &payload);
    let channel = Channel::Data(conn.id);
    raw.server.handle_transmit_failed(
        channel,
        ftps_proto::io::IoErrorKind::ConnectionReset,
        raw.now,
    );
    // Only the first half of the client's records reaches the server.
    let tls = conn.tls.as_mut().unwrap();
    let pending = tls.pending_transmit().to_vec();
    tls.consume_transmit(pending.len()).unwrap();
    let half = &pending[..pending.len() / 2];
    assert_eq!(
        raw.server.handle_receive(channel, half, raw.now),
        half.len()
    );
    raw.server.handle_eof(channel, raw.now);
    raw.drain();
    assert!(
        raw.events
            .iter()
            .any(|e| matches!(e, SEv::UploadFinished(i, false) if *i == id)),
        "{:?}",
        raw.events
    );
    let _ = raw.server.finish_upload(id, Ok(()));
    raw.drain();
    assert_eq!(raw.last_code(), 426);
}

// A failed send on a download's data connection ends the transfer: the client cannot have
// received what we could not send.
#[test]
fn failed_send_on_a_download_fails_it() {
    let mut raw = secured_login();
    let data = raw.open_passive();
    raw.cmd("RETR down.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    let mut conn = raw.data_client(data, raw.client_tls.clone().unwrap());
    raw.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true));
    let payload = random_bytes(5_000, 11);
    assert_eq!(raw.server.write_data(id, &payload).unwrap(), payload.len());
    raw.server.handle_transmit_failed(
        Channel::Data(data),
        ftps_proto::io::IoErrorKind::ConnectionReset,
        raw.now,
    );
    raw.drain();
    assert_download_failed(&raw, id);
}

/// The control connection's client config without the RFC 9149 ticket request, like curl's
/// OpenSSL: it gets only the tickets the server sends unasked.
fn without_ticket_request(raw: &Raw) -> std::sync::Arc<rustls::ClientConfig> {
    let mut plain = raw.client_tls.as_deref().unwrap().clone();
    plain.send_ticket_request = None;
    std::sync::Arc::new(plain)
}

/// A passive data connection whose TLS handshake runs before any transfer command (curl's
/// order).
fn tls_before_command(raw: &mut Raw, config: &std::sync::Arc<rustls::ClientConfig>) -> RawData {
    let data = raw.open_passive();
    let mut conn = raw.data_client(data, config.clone());
    raw.pump_data(&mut conn);
    conn
}

/// Sends `payload` on the upload `id`'s secured data connection, closes it, and commits the
/// upload: the server answers `226` and stored exactly `payload`.
fn upload_and_commit(raw: &mut Raw, conn: &mut RawData, id: RequestId, payload: &[u8]) {
    let tls = conn.tls.as_mut().unwrap();
    assert_eq!(tls.write(payload).unwrap(), payload.len());
    tls.close().unwrap();
    raw.pump_data(conn);
    raw.server.handle_eof(Channel::Data(conn.id), raw.now);
    raw.drain();
    raw.server.finish_upload(id, Ok(())).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 226);
    assert_eq!(raw.uploaded.get(&id).map(Vec::as_slice), Some(payload));
}

// spec: T40 — a client that starts its data connection's TLS handshake before the transfer
// command (curl does) gets it done, ticket included, before the command arrives: an OpenSSL
// client that reads its upload's socket only once, right before it closes, finds its ticket
// there. The upload and a download both complete on such connections.
#[test]
fn data_handshake_runs_before_the_transfer_command() {
    let mut raw = secured_login();
    let plain = without_ticket_request(&raw);
    let mut conn = tls_before_command(&mut raw, &plain);
    assert_eq!(conn.resumed, Some(true), "handshake done before STOR");
    assert_eq!(conn.tls.as_ref().unwrap().tls13_tickets_received(), 1);
    raw.cmd("STOR early.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    let payload = random_bytes(3_000, 12);
    upload_and_commit(&mut raw, &mut conn, id, &payload);

    let data = raw.open_passive();
    let mut conn = raw.data_client(data, plain);
    raw.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true), "handshake done before RETR");
    raw.cmd("RETR early.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    raw.drain();
    assert_eq!(raw.server.write_data(id, &payload).unwrap(), payload.len());
    raw.server.finish_data(id).unwrap();
    raw.pump_data(&mut conn);
    assert!(conn.peer_closed);
    assert!(conn.received == payload);
}

// spec: T40 — a client that once began its data handshake before the command (curl) may have
// its next hello reach the server after the command (two sockets race): that upload still
// gets a ticket, and its 150 waits for the handshake, so an OpenSSL client — which spends each
// TLS 1.3 session once — has a session for its next data connection. (CI saw curl's fifth
// upload refused with 522 after its fourth lost this race.)
#[test]
fn a_client_that_starts_tls_first_keeps_its_upload_tickets_when_the_command_wins_the_race() {
    let mut raw = secured_login();
    let plain = without_ticket_request(&raw);

    // First transfer: the hello comes first, which marks the client.
    let mut conn = tls_before_command(&mut raw, &plain);
    raw.cmd("RETR first.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    raw.server.finish_data(id).unwrap();
    raw.pump_data(&mut conn);
    assert!(conn.peer_closed);
    conn.tls.as_mut().unwrap().close().unwrap();
    raw.pump_data(&mut conn);
    raw.server.handle_eof(Channel::Data(conn.id), raw.now);
    raw.drain();
    assert_eq!(raw.last_code(), 226);

    // Second transfer, an upload: the command is served before the hello arrives.
    let data = raw.open_passive();
    raw.cmd("STOR raced.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_ne!(raw.last_code(), 150, "the 150 waits for the data handshake");
    let mut conn = raw.data_client(data, plain);
    raw.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true));
    assert_eq!(raw.last_code(), 150, "the 150 follows the handshake");
    assert_eq!(
        conn.tls.as_ref().unwrap().tls13_tickets_received(),
        ftps_proto::tls::UNASKED_DATA_CONNECTION_TICKETS as u32,
        "the upload's ticket is in hand before the 150"
    );
    let payload = random_bytes(2_000, 21);
    upload_and_commit(&mut raw, &mut conn, id, &payload);

    // An active upload: we connect after the command, so no hello can come first and the
    // client handshakes after the 150 — which goes out at once.
    assert_eq!(codes(&raw.cmd("EPRT |1|127.0.0.1|51201|")), vec![200]);
    raw.cmd("STOR active.bin");
    answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150, "no 150 held on an active connection");
}

// Payload sent before the command, on what turns out to be a download's connection, fails
// that transfer (nothing is taken as an upload the client never asked for).
#[test]
fn payload_before_a_download_command_fails_the_download() {
    let mut raw = secured_login();
    let data = raw.open_passive();
    let mut conn = raw.data_client(data, raw.client_tls.clone().unwrap());
    raw.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true));
    conn.tls.as_mut().unwrap().write(b"unasked").unwrap();
    raw.pump_data(&mut conn);
    raw.cmd("RETR early.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    raw.drain();
    assert_download_failed(&raw, id);
}

// spec: T40 — through the server session, for a client that does not ask for tickets
// (RFC 9149) and starts its data handshakes after the 150: a download's connection sends it
// one ticket, an upload's none (such a client may close an upload's socket without reading,
// and a ticket left unread makes its kernel reset the connection over the file's tail); both
// resume the control connection's session. (A client that starts before the command gets one
// on uploads too: `data_handshake_runs_before_the_transfer_command`.)
#[test]
fn data_connection_tickets_without_request_follow_the_direction() {
    let mut raw = Raw::new(server_config());
    assert_eq!(raw.cmd("AUTH TLS").last().unwrap().code.get(), 234);
    let mut plain = ftps_proto::tls::client_config_for_control(&common::base_client(common::pki()))
        .as_ref()
        .clone();
    plain.send_ticket_request = None;
    raw.start_tls(std::sync::Arc::new(plain));
    raw.login();
    assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![200]);
    assert_eq!(codes(&raw.cmd("PROT P")), vec![200]);
    assert_eq!(codes(&raw.cmd("TYPE I")), vec![200]);
    let payload = random_bytes(4_000, 3);

    let data = raw.open_passive();
    raw.cmd("STOR up.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    let mut conn = raw.data_client(data, raw.client_tls.clone().unwrap());
    raw.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true));
    let tls = conn.tls.as_mut().unwrap();
    assert_eq!(tls.write(&payload).unwrap(), payload.len());
    tls.close().unwrap();
    raw.pump_data(&mut conn);
    assert!(conn.peer_closed);
    assert_eq!(conn.tls.as_ref().unwrap().tls13_tickets_received(), 0);
    raw.server.handle_eof(Channel::Data(data), raw.now);
    raw.drain();
    raw.server.finish_upload(id, Ok(())).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 226);
    assert_eq!(raw.uploaded.get(&id), Some(&payload));

    let data = raw.open_passive();
    raw.cmd("RETR up.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    let mut conn = raw.data_client(data, raw.client_tls.clone().unwrap());
    raw.pump_data(&mut conn);
    assert_eq!(conn.resumed, Some(true));
    assert_eq!(raw.server.write_data(id, &payload).unwrap(), payload.len());
    raw.server.finish_data(id).unwrap();
    raw.pump_data(&mut conn);
    assert!(conn.peer_closed);
    assert!(conn.received == payload, "downloaded bytes differ");
    assert_eq!(
        conn.tls.as_ref().unwrap().tls13_tickets_received(),
        ftps_proto::tls::UNASKED_DATA_CONNECTION_TICKETS as u32
    );
}

// spec: E01, E03 — IPv6 control connection: EPRT |2| and EPSV work, PASV does not.
#[test]
fn ipv6_eprt_and_epsv() {
    let peer: std::net::SocketAddr = "[::1]:40000".parse().unwrap();
    let mut raw = Raw::with_peer(server_config(), peer);
    // The harness's local address is IPv4; what matters here is the peer check.
    raw.auth_tls();
    raw.login();
    assert_eq!(codes(&raw.cmd("EPRT |2|::1|50000|")), vec![200]);
    assert_eq!(codes(&raw.cmd("EPRT |2|::2|50000|")), vec![500]);
    assert_eq!(codes(&raw.cmd("PORT 127,0,0,1,200,1")), vec![500]);
}

// spec: T44 — client certificate required: without one, PASS fails like a bad password.
#[test]
fn client_certificate_required_policy() {
    let mut config = server_config();
    config.client_certificates = ftps_proto::server::ClientCertificates::Required;
    config.timeouts.failed_login_delay = Duration::ZERO;
    let mut raw = Raw::new(config);
    raw.auth_tls();
    raw.cmd("USER alice");
    assert_eq!(codes(&raw.cmd("PASS secret")), vec![530]);
    assert!(raw.requests.is_empty());
    assert!(
        raw.events
            .contains(&SEv::Refused(Refusal::ClientCertificateRequired))
    );
}

// spec: T44, T45 — the client certificate reaches the login request together with the USER
// name: it authenticates a user, and the application decides which user it maps to.
#[test]
fn client_certificate_is_handed_to_the_login_request() {
    let pki = common::pki();
    let server_base = std::sync::Arc::new(
        ftps_proto::tls::server_config_with_client_auth(
            pki.server_chain.clone(),
            pki.server_key(),
            pki.roots(),
        )
        .unwrap(),
    );
    let mut raw = Raw::new(ftps_proto::server::ServerSessionConfig::new(server_base));
    raw.cmd("AUTH TLS");
    let client_base = std::sync::Arc::new(
        ftps_proto::tls::client_config_with_certificate(
            pki.roots(),
            pki.client_chain.clone(),
            pki.client_key(),
        )
        .unwrap(),
    );
    raw.start_tls(ftps_proto::tls::client_config_for_control(&client_base));
    raw.cmd("USER alice");
    raw.cmd("PASS secret");
    let Some((
        _,
        Request::Login {
            client_certificate, ..
        },
    )) = raw.requests.pop()
    else {
        panic!()
    };
    assert_eq!(
        client_certificate.as_deref(),
        Some(pki.client_chain[0].as_ref())
    );
}

// spec: F07 — HOST before login, 503 after; kept across AUTH (T10).
#[test]
fn host_is_kept_across_auth_and_refused_after_login() {
    let mut raw = Raw::new(server_config());
    assert_eq!(codes(&raw.cmd("HOST ftp.example.com")), vec![220]);
    assert_eq!(codes(&raw.cmd("HOST ftp.example.com:21")), vec![501]);
    raw.auth_tls();
    raw.cmd("USER alice");
    raw.cmd("PASS secret");
    let Some((id, Request::Login { host, .. })) = raw.requests.pop() else {
        panic!()
    };
    assert_eq!(host.as_deref(), Some(&b"ftp.example.com"[..]));
    raw.server.answer_login(id, true).unwrap();
    raw.drain();
    assert_eq!(codes(&raw.cmd("HOST other")), vec![503]);
}

// spec: T10 — AUTH resets the transfer parameters.
// spec: S02 — an accepted AUTH ends the earlier login: the user must log in again.
#[test]
fn auth_resets_type_and_cwd() {
    let mut config = server_config();
    config.require_tls = false;
    let mut raw = Raw::new(config);
    raw.login();
    raw.cmd("TYPE I");
    raw.cmd("CWD /d");
    let (id, _) = raw.requests.pop().unwrap();
    raw.server
        .answer(id, Ok(ftps_proto::server::Answer::Done))
        .unwrap();
    raw.drain();
    assert_eq!(raw.server.cwd(), b"/d");
    raw.auth_tls();
    assert!(!raw.server.is_logged_in());
    assert_eq!(raw.server.cwd(), b"/");
    assert_eq!(codes(&raw.cmd("PWD")), vec![530]);
}

#[test]
fn data_timeout_fails_the_transfer_with_425() {
    let mut raw = raw_ready();
    raw.cmd("EPSV");
    let Some(IoRequest::Listen { data, .. }) = raw.io.last().copied() else {
        panic!()
    };
    raw.server
        .handle_listening(data, "127.0.0.1:50123".parse().unwrap(), raw.now);
    raw.drain();
    raw.cmd("RETR f");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    let deadline = raw.server.next_deadline().unwrap();
    raw.now = deadline;
    raw.server.handle_timeout(deadline);
    raw.drain();
    assert_eq!(raw.last_code(), 425);
    assert!(raw.events.contains(&SEv::SendFinished(id, false)));
}

mod split {
    use super::*;
    use proptest::prelude::*;

    fn replies_for(chunks: &[&[u8]]) -> Vec<u16> {
        let mut raw = Raw::new(server_config());
        for chunk in chunks {
            raw.send(chunk);
        }
        raw.replies.iter().map(|r| r.code.get()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        // spec: §3.2 — any chunking of the control input gives the same replies.
        #[test]
        fn control_input_is_split_invariant(cuts in proptest::collection::vec(0usize..60, 0..6)) {
            let input: &[u8] = b"NOOP\r\nSYST\r\nFEAT\r\nUSER a\r\nPBSZ 0\r\nXYZ\r\nHELP\r\n";
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(&input[start..p]);
                start = p;
            }
            chunks.push(&input[start..]);
            prop_assert_eq!(replies_for(&chunks), replies_for(&[input]));
        }
    }
}

// spec: T26, T29, §9.1 — CCC at the byte level: plaintext right behind the client's
// close_notify in one segment is read as the first plaintext command, nothing lost.
#[test]
fn ccc_plaintext_follows_close_notify_in_the_same_segment() {
    let mut config = server_config();
    config.allow_ccc = true;
    let mut raw = Raw::new(config);
    raw.auth_tls();
    raw.login();
    assert_eq!(codes(&raw.cmd("CCC")), vec![200]);
    let mut tls = raw.tls.take().unwrap();
    loop {
        match tls.poll() {
            Ok(ftps_proto::tls::TlsEvent::Idle) => break,
            Ok(ftps_proto::tls::TlsEvent::PeerClosed | ftps_proto::tls::TlsEvent::Closed) => {}
            other => panic!("{other:?}"),
        }
    }
    tls.close().unwrap();
    let mut segment = tls.pending_transmit().to_vec();
    segment.extend_from_slice(b"PBSZ 0\r\nPROT P\r\nNOOP\r\n");
    raw.send(&segment);
    let tail: Vec<u16> = raw
        .replies
        .iter()
        .rev()
        .take(3)
        .map(|r| r.code.get())
        .collect();
    assert_eq!(tail, vec![200, 503, 503]);
    assert!(!raw.server.is_secure());
}

// spec: T26, T29 — curl's default CCC mode: the client reads our close_notify and sends
// plaintext without its own close_notify. After the 200 the channel is clear by agreement, so
// the server takes the plaintext as the next commands (the one-way shutdown ProFTPD accepts).
#[test]
fn ccc_accepts_a_client_that_skips_its_close_notify() {
    let mut config = server_config();
    config.allow_ccc = true;
    let mut raw = Raw::new(config);
    raw.auth_tls();
    raw.login();
    assert_eq!(codes(&raw.cmd("CCC")), vec![200]);
    let mut tls = raw.tls.take().unwrap();
    loop {
        match tls.poll() {
            Ok(ftps_proto::tls::TlsEvent::Idle) => break,
            Ok(ftps_proto::tls::TlsEvent::PeerClosed | ftps_proto::tls::TlsEvent::Closed) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(tls.peer_has_closed(), "the server's close_notify arrived");
    raw.send(b"PBSZ 0\r\nNOOP\r\n");
    let tail: Vec<u16> = raw
        .replies
        .iter()
        .rev()
        .take(2)
        .map(|r| r.code.get())
        .collect();
    assert_eq!(tail, vec![200, 503]);
    assert!(!raw.server.is_secure());
    assert!(!raw.server.is_closed());
}

// spec: T26 — CCC refused before login even when allowed (T28).
#[test]
fn ccc_needs_login() {
    let mut config = server_config();
    config.allow_ccc = true;
    let mut raw = Raw::new(config);
    raw.auth_tls();
    assert_eq!(codes(&raw.cmd("CCC")), vec![534]);
}

// spec: §3.7 — an ABOR that arrives before the 150 still aborts the transfer in band.
#[test]
fn abor_sent_before_the_150_aborts_once_the_transfer_starts() {
    let mut raw = raw_ready();
    raw.open_passive();
    raw.cmd("RETR f");
    let before = raw.replies.len();
    raw.cmd("ABOR");
    assert_eq!(raw.replies.len(), before, "ABOR waits for the pending RETR");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(codes(&raw.replies[before..]), vec![150, 426, 226]);
    assert!(raw.events.contains(&SEv::SendFinished(id, false)));
}

// spec: X06 — MLST on the control channel.
#[test]
fn mlst_reply_on_the_control_channel() {
    let mut raw = raw_ready();
    raw.cmd("MLST f.txt");
    let (id, request) = raw.requests.pop().unwrap();
    assert_eq!(
        request,
        Request::Mlst {
            path: b"/f.txt".to_vec()
        }
    );
    raw.server
        .answer(
            id,
            Ok(ftps_proto::server::Answer::Entry(
                server_support::file_entry(b"ignored", 12),
            )),
        )
        .unwrap();
    raw.drain();
    let reply = raw.replies.last().unwrap();
    assert_eq!(reply.code.get(), 250);
    assert_eq!(reply.lines.len(), 3);
    assert_eq!(
        reply.lines[1],
        b" type=file;size=12;modify=20240131235959;perm=dfrw;unique=u1;UNIX.mode=0644; /f.txt"
    );
    // A wrong answer type is a usage error, the request stays pending.
    raw.cmd("SIZE f.txt");
    let (id, _) = raw.requests.pop().unwrap();
    assert!(
        raw.server
            .answer(id, Ok(ftps_proto::server::Answer::Done))
            .is_err()
    );
    raw.server
        .answer(id, Ok(ftps_proto::server::Answer::Size(12)))
        .unwrap();
    raw.drain();
    assert_eq!(raw.replies.last().unwrap().text(), b"12");
}

// spec: E03, E05, §1.12 — IPv6 control connection: EPSV listens on the control address;
// PASV is IPv4 only; EPSV 1 names an unsupported protocol.
#[test]
fn ipv6_passive_mode() {
    let mut raw = Raw::with_addrs(
        server_config(),
        "[::1]:40000".parse().unwrap(),
        "[::1]:21".parse().unwrap(),
    );
    raw.auth_tls();
    raw.login();
    raw.cmd("EPSV");
    let Some(IoRequest::Listen { data, ip }) = raw.io.last().copied() else {
        panic!()
    };
    assert_eq!(ip, "::1".parse::<std::net::IpAddr>().unwrap());
    raw.server
        .handle_listening(data, "[::1]:50200".parse().unwrap(), raw.now);
    raw.drain();
    assert_eq!(raw.replies.last().unwrap().code.get(), 229);
    raw.server
        .handle_accepted(data, "[::1]:41000".parse().unwrap(), raw.now);
    assert_eq!(codes(&raw.cmd("PASV")), vec![500]);
    let reply = raw.cmd("EPSV 1").pop().unwrap();
    assert_eq!(reply.code.get(), 522);
    assert_eq!(reply.text(), b"Network protocol not supported, use (2)");
}

// spec: T46, §9.1 — plaintext after the 234 goes to TLS and kills the session without a
// reply: it is never run as a command.
#[test]
fn plaintext_after_234_fails_the_handshake_without_a_reply() {
    let mut raw = Raw::new(server_config());
    assert_eq!(codes(&raw.cmd("AUTH TLS")), vec![234]);
    let before = raw.replies.len();
    raw.send(b"USER alice\r\n");
    assert_eq!(raw.replies.len(), before);
    assert!(raw.requests.is_empty());
    assert!(matches!(raw.closed(), Some(Some(ServerError::Tls(_)))));
    assert!(raw.control_closed());
}

// spec: §9.6 — a client offering only http/1.1 in ALPN is refused by the handshake.
#[test]
fn alpn_without_ftp_is_refused() {
    let mut client = common::client_with_versions(
        common::pki(),
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut raw = Raw::new(server_config());
    assert_eq!(codes(&raw.cmd("AUTH TLS")), vec![234]);
    raw.tls = Some(
        ftps_proto::tls::TlsChannel::client_after_auth(
            std::sync::Arc::new(client),
            common::localhost(),
            0,
            ftps_proto::tls::TlsLimits::default(),
        )
        .unwrap(),
    );
    for _ in 0..5 {
        raw.send(b"");
    }
    assert!(!raw.server.is_secure());
    assert!(matches!(raw.closed(), Some(Some(ServerError::Tls(_)))));
    // The fatal alert reached the client.
    assert_eq!(
        raw.tls_error(),
        Some(ftps_proto::tls::TlsError::Rustls(
            rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
        ))
    );
    assert!(raw.control_closed());
}

// Pipelining beyond the limit while a request is pending ends the session.
#[test]
fn too_many_pending_commands_close_the_session() {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    raw.cmd("USER alice");
    raw.cmd("PASS secret");
    assert_eq!(raw.requests.len(), 1, "login pending");
    raw.send("NOOP\r\n".repeat(33).as_bytes());
    assert_eq!(raw.last_code(), 421);
    assert_eq!(
        raw.closed(),
        Some(Some(ServerError::TooManyPendingCommands))
    );
    // Within the limit, pipelined commands are answered in order after the login.
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    raw.cmd("USER alice");
    raw.send(b"PASS secret\r\nPWD\r\nSYST\r\n");
    let (id, _) = raw.requests.pop().unwrap();
    raw.server.answer_login(id, true).unwrap();
    raw.drain();
    let n = raw.replies.len();
    assert_eq!(codes(&raw.replies[n - 3..]), vec![230, 257, 215]);
}

// spec: T30 — CCC is advertised only when allowed.
#[test]
fn feat_lists_ccc_when_allowed() {
    let mut config = server_config();
    config.allow_ccc = true;
    let mut raw = Raw::new(config);
    let feat = raw.cmd("FEAT").pop().unwrap();
    assert!(feat.lines.iter().any(|l| l == b" CCC"));
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        // Arbitrary peer bytes (with some FTP verbs mixed in) never panic the session; every
        // request is answered with a refusal so the session keeps going.
        #[test]
        fn arbitrary_control_input_never_panics(
            chunks in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..40),
                    Just(b"USER a\r\nPASS b\r\n".to_vec()),
                    Just(b"EPSV\r\nRETR x\r\nLIST\r\n".to_vec()),
                    Just(b"PORT 127,0,0,1,200,1\r\nSTOR y\r\n".to_vec()),
                    Just(b"REST 5\r\nRNFR a\r\nRNTO b\r\nCWD ..\r\nCDUP\r\n".to_vec()),
                    Just(b"TYPE A\r\nMLST\r\nOPTS MLST type;\r\nABOR\r\n".to_vec()),
                    Just(vec![0xff, 0xfd, 0x01, b'\r', b'\n']),
                ],
                0..12,
            )
        ) {
            let mut config = server_config();
            config.require_tls = false;
            config.require_private_data = false;
            config.timeouts.failed_login_delay = Duration::ZERO;
            let mut raw = Raw::new(config);
            let mut seen_io = 0;
            for chunk in chunks {
                raw.send(&chunk);
                while seen_io < raw.io.len() {
                    if let IoRequest::Listen { data, .. } = raw.io[seen_io] {
                        raw.server.handle_listening(data, "127.0.0.1:50000".parse().unwrap(), raw.now);
                        raw.drain();
                    }
                    seen_io += 1;
                }
                while let Some((id, request)) = raw.requests.pop() {
                    match request {
                        Request::Login { .. } => {
                            raw.server.answer_login(id, true).unwrap();
                        }
                        Request::List { .. } => {
                            raw.server
                                .answer(id, Err(FsError::NotFound))
                                .unwrap();
                        }
                        _ => raw
                            .server
                            .answer(id, Err(FsError::PermissionDenied))
                            .unwrap(),
                    }
                    raw.drain();
                }
            }
            // Replies are well formed and never a 1yz without a transfer.
            for reply in &raw.replies {
                prop_assert!(reply.code.get() >= 200 || reply.code.get() == 150);
            }
        }
    }
}

// spec: §3.3 (idle timeout) — a long transfer does not make the session idle-time out right
// after its 226: the idle clock restarts when the transfer ends.
#[test]
fn idle_clock_restarts_after_a_long_transfer() {
    let mut raw = raw_ready();
    let data = raw.open_passive();
    raw.cmd("RETR f");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    let config = raw.client_tls.clone().unwrap();
    let mut conn = raw.data_client(data, config);
    raw.pump_data(&mut conn);
    // Ten minutes of data, no control command (the data clock keeps being touched).
    for _ in 0..10 {
        raw.now = raw.now.saturating_add(Duration::from_secs(60));
        raw.server.write_data(id, &[1u8; 100]).unwrap();
        raw.pump_data(&mut conn);
        raw.server.handle_timeout(raw.now);
    }
    raw.server.finish_data(id).unwrap();
    raw.pump_data(&mut conn);
    conn.tls.as_mut().unwrap().close().unwrap();
    raw.pump_data(&mut conn);
    assert_eq!(raw.last_code(), 226);
    let deadline = raw.server.next_deadline().unwrap();
    assert_eq!(deadline, raw.now.saturating_add(Duration::from_secs(300)));
    assert_eq!(conn.received.len(), 1000);
}

// spec: T36 — a server that lets the client choose: PROT C transfers in clear.
#[test]
fn prot_c_transfers_in_clear_when_policy_allows() {
    let mut config = server_config();
    config.require_private_data = false;
    let mut client = client_config();
    client.data_protection = ftps_proto::client::DataProtection::Clear;
    let mut pair = Pair::new(config, client);
    pair.run();
    pair.login();
    let content = random_bytes(30_000, 8);
    let op = pair.client.store(b"clear.bin").unwrap();
    pair.upload(op, content.clone());
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    assert_eq!(pair.transfer_completed(op).unwrap().1, None);
    let op = pair.client.retrieve(b"clear.bin", None).unwrap();
    pair.run();
    assert_eq!(pair.downloads.get(&op), Some(&content));
}

// ---------------------------------------------------------------- upload commits

/// A `STOR` whose data arrived completely (close_notify, then EOF): the session now waits for
/// the application's commit.
fn complete_upload(raw: &mut Raw, name: &str, payload: &[u8]) -> RequestId {
    let data = raw.open_passive();
    raw.cmd(&format!("STOR {name}"));
    let id = answer_last(raw, ftps_proto::server::Answer::Done);
    let config = raw.client_tls.clone().unwrap();
    let mut conn = raw.data_client(data, config);
    raw.pump_data(&mut conn);
    let mut sent = 0;
    while sent < payload.len() {
        sent += conn.tls.as_mut().unwrap().write(&payload[sent..]).unwrap();
        raw.pump_data(&mut conn);
    }
    conn.tls.as_mut().unwrap().close().unwrap();
    raw.pump_data(&mut conn);
    raw.server.handle_eof(Channel::Data(data), raw.now);
    raw.drain();
    assert!(raw.events.contains(&SEv::UploadFinished(id, true)));
    assert_eq!(raw.last_code(), 150, "the final reply waits for the commit");
    id
}

// spec: §3.4 (STOR: 150 → 226 only for a stored file), §9.4
#[test]
fn no_226_before_the_application_committed_the_upload() {
    let mut raw = raw_ready();
    let id = complete_upload(&mut raw, "a.bin", &random_bytes(3_000, 1));
    // However long the commit takes: no reply, and no idle timeout (the client waits for us).
    assert_eq!(raw.server.next_deadline(), None);
    raw.now = raw.now.saturating_add(Duration::from_secs(3_600));
    raw.server.handle_timeout(raw.now);
    raw.drain();
    assert!(raw.replies.iter().all(|r| r.code.get() != 226));
    assert_eq!(raw.closed(), None);
    // The wrong answer methods are refused while the commit is awaited.
    assert_eq!(
        raw.server.answer(id, Ok(ftps_proto::server::Answer::Done)),
        Err(UsageError::WrongCall("use finish_upload"))
    );
    assert_eq!(
        raw.server.answer_login(id, true),
        Err(UsageError::WrongCall("not a login request"))
    );
    raw.server.finish_upload(id, Ok(())).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 226);
    // Answered once only.
    assert_eq!(
        raw.server.finish_upload(id, Ok(())),
        Err(UsageError::UnknownId)
    );
    // The idle clock runs again from the final reply.
    let idle = ftps_proto::server::ServerTimeouts::default().idle;
    assert_eq!(
        raw.server.next_deadline(),
        Some(raw.now.saturating_add(idle))
    );
    raw.now = raw.now.saturating_add(idle);
    raw.server.handle_timeout(raw.now);
    raw.drain();
    assert_eq!(raw.last_code(), 421);
    assert_eq!(raw.closed(), Some(Some(ServerError::IdleTimeout)));
}

// spec: §3.4 (STOR after the 150: 451, 552 — never 226 for a file that was not stored)
#[test]
fn a_failed_commit_is_an_error_reply_not_226() {
    let mut raw = raw_ready();
    let cases = [
        (FsError::NoSpace, 552),
        (FsError::Local, 451),
        (FsError::PermissionDenied, 451),
        (FsError::AlreadyExists, 451),
        (FsError::Unavailable, 451),
    ];
    for (i, (error, expected)) in cases.into_iter().enumerate() {
        let before = raw.replies.len();
        let id = complete_upload(&mut raw, &format!("secret-name-{i}.bin"), b"payload");
        raw.server.finish_upload(id, Err(error)).unwrap();
        raw.drain();
        assert_eq!(
            codes(&raw.replies[before..]),
            vec![229, 150, expected],
            "{error:?}"
        );
        // Fixed texts: neither the name nor the error's details are echoed.
        let text = raw.replies.last().unwrap().text().to_vec();
        assert!(!String::from_utf8_lossy(&text).contains("secret-name"));
    }
    assert!(raw.replies.iter().all(|r| r.code.get() != 226));
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
}

// spec: §3.4 — commands pipelined while the commit is awaited run after the final reply.
#[test]
fn commands_during_the_commit_wait_queue_behind_the_final_reply() {
    let mut raw = raw_ready();
    let id = complete_upload(&mut raw, "q.bin", b"queued");
    let before = raw.replies.len();
    raw.send(b"NOOP\r\nPWD\r\nSYST\r\n");
    assert_eq!(
        raw.replies.len(),
        before,
        "nothing answered before the commit"
    );
    raw.server.finish_upload(id, Ok(())).unwrap();
    raw.drain();
    assert_eq!(codes(&raw.replies[before..]), vec![226, 200, 257, 215]);
}

// The pending-command limit holds while the commit is awaited.
#[test]
fn pipelining_past_the_limit_during_the_commit_wait_closes_the_session() {
    let mut raw = raw_ready();
    let id = complete_upload(&mut raw, "flood.bin", b"x");
    raw.send("NOOP\r\n".repeat(33).as_bytes());
    assert_eq!(raw.last_code(), 421);
    assert_eq!(
        raw.closed(),
        Some(Some(ServerError::TooManyPendingCommands))
    );
    assert_eq!(
        raw.server.finish_upload(id, Ok(())),
        Err(UsageError::Closed)
    );
}

// spec: §3.7 — ABOR after the data transfer ended: the transfer's own reply first, then 226.
#[test]
fn abor_during_the_commit_wait_is_answered_after_the_final_reply() {
    let mut raw = raw_ready();
    let id = complete_upload(&mut raw, "ab.bin", b"abort me");
    let before = raw.replies.len();
    raw.cmd("ABOR");
    assert_eq!(
        raw.replies.len(),
        before,
        "ABOR cannot undo a commit in progress"
    );
    raw.server.finish_upload(id, Ok(())).unwrap();
    raw.drain();
    assert_eq!(codes(&raw.replies[before..]), vec![226, 226]);
    assert_eq!(raw.replies.last().unwrap().text(), b"No transfer to abort.");
    // A failed commit with ABOR pending: the error, then the ABOR's 226.
    let id = complete_upload(&mut raw, "ab2.bin", b"abort me");
    let before = raw.replies.len();
    raw.cmd("ABOR");
    raw.server.finish_upload(id, Err(FsError::Local)).unwrap();
    raw.drain();
    assert_eq!(codes(&raw.replies[before..]), vec![451, 226]);
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
}

// spec: §3.7 — QUIT waits for the upload's result, during the transfer or the commit.
#[test]
fn quit_during_the_commit_wait_follows_the_final_reply() {
    let mut raw = raw_ready();
    let id = complete_upload(&mut raw, "qq.bin", b"bye");
    let before = raw.replies.len();
    raw.cmd("QUIT");
    assert_eq!(raw.replies.len(), before);
    assert_eq!(raw.closed(), None);
    raw.server.finish_upload(id, Err(FsError::NoSpace)).unwrap();
    raw.drain();
    assert_eq!(codes(&raw.replies[before..]), vec![552, 221]);
    assert_eq!(raw.closed(), Some(None));
    assert!(raw.control_closed());

    // QUIT while the data still flows: after the commit, 226 then 221.
    let mut raw = raw_ready();
    let data = raw.open_passive();
    raw.cmd("STOR late.bin");
    let id = answer_last(&mut raw, ftps_proto::server::Answer::Done);
    let config = raw.client_tls.clone().unwrap();
    let mut conn = raw.data_client(data, config);
    raw.pump_data(&mut conn);
    let before = raw.replies.len();
    raw.cmd("QUIT");
    conn.tls.as_mut().unwrap().write(b"late").unwrap();
    conn.tls.as_mut().unwrap().close().unwrap();
    raw.pump_data(&mut conn);
    raw.server.handle_eof(Channel::Data(data), raw.now);
    raw.drain();
    assert_eq!(
        raw.replies.len(),
        before,
        "neither 226 nor 221 before the commit"
    );
    raw.server.finish_upload(id, Ok(())).unwrap();
    raw.drain();
    assert_eq!(codes(&raw.replies[before..]), vec![226, 221]);
    assert_eq!(raw.closed(), Some(None));
}

// The client hanging up while the commit is awaited ends the session; the late answer is told.
#[test]
fn control_loss_during_the_commit_wait() {
    let mut raw = raw_ready();
    let id = complete_upload(&mut raw, "gone.bin", b"bytes");
    raw.server.handle_eof(Channel::Control, raw.now);
    raw.drain();
    assert_eq!(raw.closed(), Some(Some(ServerError::ConnectionLost)));
    assert_eq!(
        raw.server.finish_upload(id, Ok(())),
        Err(UsageError::Closed)
    );
}

// spec: §3.4 — with the real client: a failed commit is the client's error, nothing stored.
#[test]
fn real_client_sees_a_failed_commit() {
    let mut pair = Pair::new(server_config(), client_config());
    pair.run();
    pair.login();
    pair.commit_failure = Some(FsError::NoSpace);
    let op = pair.client.store(b"full.bin").unwrap();
    pair.upload(op, random_bytes(10_000, 3));
    pair.run();
    match pair.completed(op) {
        Some(Err(ftps_proto::client::OpError::Rejected { reply })) => {
            assert_eq!(reply.code.get(), 552);
        }
        other => panic!("expected a 552, got {other:?}"),
    }
    assert!(!pair.fs.files.contains_key(&b"/full.bin"[..]));
    // The next upload commits.
    pair.commit_failure = None;
    let content = random_bytes(10_000, 4);
    let op = pair.client.store(b"ok.bin").unwrap();
    pair.upload(op, content.clone());
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    assert_eq!(pair.fs.files.get(&b"/ok.bin"[..]), Some(&content));
    // The finish events carry the byte count and the resumption.
    let (_, bytes, resumed) = *pair.finished_stats.last().unwrap();
    assert_eq!(bytes, 10_000);
    assert!(resumed);
}

// ---------------------------------------------------------------- refusal events

// spec: T37, §7 (bounce), T40
// spec: T48 — every command that violates the policy is refused (and reported).
#[test]
fn policy_refusals_are_reported_as_events() {
    let mut raw = Raw::new(server_config());
    assert_eq!(codes(&raw.cmd("USER alice")), vec![530]);
    raw.auth_tls();
    raw.login();
    assert_eq!(codes(&raw.cmd("RETR f")), vec![521]);
    assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![200]);
    assert_eq!(codes(&raw.cmd("PROT C")), vec![534]);
    assert_eq!(codes(&raw.cmd("CCC")), vec![534]);
    assert_eq!(codes(&raw.cmd("PORT 10,0,0,9,200,1")), vec![500]);
    assert_eq!(codes(&raw.cmd("EPRT |1|127.0.0.1|25|")), vec![504]);
    let refusals: Vec<Refusal> = raw
        .events
        .iter()
        .filter_map(|e| match e {
            SEv::Refused(reason) => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        refusals,
        vec![
            Refusal::TlsRequired,
            Refusal::PrivateDataRequired,
            Refusal::ClearDataRefused,
            Refusal::CccRefused,
            Refusal::ForeignDataAddress,
            Refusal::PrivilegedDataPort,
        ]
    );
    // Each has a log text.
    for reason in refusals {
        assert!(!reason.to_string().is_empty());
    }
    // Replies that are not policy refusals report nothing.
    let before = raw.events.len();
    assert_eq!(codes(&raw.cmd("XYZZY")), vec![500]);
    assert_eq!(codes(&raw.cmd("PROT P")), vec![200]);
    assert!(
        raw.events[before..]
            .iter()
            .all(|e| !matches!(e, SEv::Refused(_)))
    );
}

// ---------------------------------------------------------------- checklist coverage

// spec: F05 — OPTS: 200 only when the command name and its options are both recognised,
// otherwise 501 (OPTS FEAT and OPTS OPTS do not exist).
#[test]
fn opts_answers_200_only_for_a_known_name_with_known_options() {
    let mut raw = Raw::new(server_config());
    assert_eq!(codes(&raw.cmd("OPTS UTF8 ON")), vec![200]);
    assert_eq!(codes(&raw.cmd("opts utf8 on")), vec![200]);
    assert_eq!(codes(&raw.cmd("OPTS MLST type;")), vec![200]);
    for refused in [
        "OPTS UTF8 OFF",
        "OPTS UTF8",
        "OPTS MLST size type",
        "OPTS FEAT",
        "OPTS OPTS",
        "OPTS XYZZY 1",
        "OPTS",
    ] {
        assert_eq!(codes(&raw.cmd(refused)), vec![501], "{refused}");
    }
    assert!(raw.requests.is_empty());
}

/// The codes RFC 2228 §8.2 lists for each security command, plus the ones any security command
/// may return (500, 501, 502, 533, 421).
fn rfc2228_codes(verb: &str) -> Vec<u16> {
    let mut codes: Vec<u16> = match verb {
        // 503 to AUTH under TLS is the checklist's answer to an unspecified case (§1.1).
        "AUTH" => vec![234, 334, 502, 504, 534, 431, 503],
        "ADAT" => vec![235, 335, 503, 535],
        "PBSZ" => vec![200, 503, 530],
        "PROT" => vec![200, 504, 536, 503, 534, 431, 530],
        "CCC" => vec![200, 534],
        "MIC" | "CONF" | "ENC" => vec![535],
        other => panic!("{other}"),
    };
    codes.extend([500, 501, 502, 533, 421]);
    codes
}

#[derive(Clone, Copy, Debug)]
enum SecurityState {
    /// Plaintext, a server that does not require TLS.
    OpenPlaintext,
    /// Plaintext, TLS required (the default).
    Plaintext,
    Tls,
    TlsLoggedIn,
    TlsLoggedInWithPbsz,
}

/// Each line in a fresh session in `state` (the bad-command limit would end a shared one).
fn check_security_replies(state: SecurityState, lines: &[&str]) {
    for line in lines {
        let mut config = server_config();
        config.require_tls = !matches!(state, SecurityState::OpenPlaintext);
        let mut raw = Raw::new(config);
        if !matches!(
            state,
            SecurityState::OpenPlaintext | SecurityState::Plaintext
        ) {
            raw.auth_tls();
        }
        if matches!(
            state,
            SecurityState::TlsLoggedIn | SecurityState::TlsLoggedInWithPbsz
        ) {
            raw.login();
        }
        if matches!(state, SecurityState::TlsLoggedInWithPbsz) {
            assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![200]);
        }
        let verb = line.split(' ').next().unwrap();
        let replies = raw.cmd(line);
        assert_eq!(replies.len(), 1, "{state:?} {line}: {replies:?}");
        let code = replies[0].code.get();
        assert!(
            rfc2228_codes(verb).contains(&code),
            "{state:?} {line} answered {code}"
        );
    }
}

// spec: S01, S12 — AUTH, ADAT, PBSZ, PROT, CCC and MIC/CONF/ENC answer only with the codes RFC
// 2228 §8.2 lists for them, in every state: before TLS (also with TLS required, where the other
// commands get the policy's 530), under TLS before and after login and PBSZ.
#[test]
fn security_commands_answer_with_their_rfc_2228_codes() {
    let every_command = [
        "AUTH",
        "AUTH X",
        "AUTH TLS x",
        "ADAT Zm9v",
        "ADAT",
        "PBSZ 0",
        "PBSZ",
        "PBSZ 99999999999",
        "PROT P",
        "PROT C",
        "PROT S",
        "PROT E",
        "PROT X",
        "PROT",
        "CCC",
        "CCC now",
        "MIC x",
        "CONF x",
        "ENC x",
    ];
    check_security_replies(SecurityState::OpenPlaintext, &every_command);
    check_security_replies(SecurityState::Plaintext, &every_command);
    check_security_replies(SecurityState::Tls, &every_command);
    check_security_replies(SecurityState::TlsLoggedIn, &every_command);
    check_security_replies(SecurityState::TlsLoggedInWithPbsz, &every_command);
}

// spec: S13, S03 — the RFC 2228 §9 state diagram: a refused AUTH leaves the session unauthenticated
// and AUTH may be tried again; 234 authenticates (no ADAT step for TLS: no 334/335 ever);
// USER 3yz needs PASS; a 5yz PASS goes back to the start (PASS alone is then out of sequence);
// USER + PASS 2yz authorise.
#[test]
fn login_follows_the_rfc_2228_state_diagram() {
    let mut config = server_config();
    config.timeouts.failed_login_delay = Duration::ZERO;
    let mut raw = Raw::new(config);
    assert_eq!(codes(&raw.cmd("AUTH KERBEROS_V4")), vec![504]);
    assert!(!raw.server.is_secure());
    raw.auth_tls();
    assert!(raw.server.is_secure());
    // spec: S03 — TLS has no ADAT exchange: 503, no exchange in progress.
    assert_eq!(codes(&raw.cmd("ADAT Zm9v")), vec![503]);

    assert_eq!(codes(&raw.cmd("USER alice")), vec![331]);
    raw.cmd("PASS wrong");
    let (id, _) = raw.requests.pop().unwrap();
    raw.server.answer_login(id, false).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 530);
    assert!(!raw.server.is_logged_in());
    assert_eq!(codes(&raw.cmd("PASS secret")), vec![503]);
    assert!(raw.requests.is_empty());

    assert_eq!(codes(&raw.cmd("USER alice")), vec![331]);
    raw.cmd("PASS secret");
    let (id, _) = raw.requests.pop().unwrap();
    raw.server.answer_login(id, true).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 230);
    assert!(raw.server.is_logged_in());
    assert!(
        raw.replies
            .iter()
            .all(|r| !matches!(r.code.get(), 334 | 335))
    );

    // ADAT before any AUTH is out of sequence too (a server that lets plaintext logins in).
    let mut config = server_config();
    config.require_tls = false;
    let mut open = Raw::new(config);
    assert_eq!(codes(&open.cmd("ADAT Zm9v")), vec![503]);
}

// spec: T11 — PBSZ/PROT and USER/PASS may come in either order: both give a session whose
// transfers are accepted under PROT P.
#[test]
fn pbsz_prot_and_login_come_in_either_order() {
    for prot_first in [true, false] {
        let mut raw = Raw::new(server_config());
        raw.auth_tls();
        if !prot_first {
            raw.login();
        }
        assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![200]);
        assert_eq!(codes(&raw.cmd("PROT P")), vec![200]);
        if prot_first {
            raw.login();
        }
        raw.open_passive();
        raw.cmd("RETR f");
        assert!(
            matches!(raw.requests.last(), Some((_, Request::Retrieve { .. }))),
            "prot_first={prot_first}: {:?}",
            raw.replies.last()
        );
    }
}

/// A `RETR` of `payload` over a passive connection opened before, with `tls` as the data
/// connection's client side (`None`: in clear); returns what the client received.
fn download(raw: &mut Raw, data: ftps_proto::io::DataId, tls: bool, payload: &[u8]) -> RawData {
    raw.cmd("RETR f");
    let id = answer_last(raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.last_code(), 150);
    let mut conn = if tls {
        raw.data_client(data, raw.client_tls.clone().unwrap())
    } else {
        RawData {
            id: data,
            tls: None,
            received: Vec::new(),
            error: None,
            peer_closed: false,
            resumed: None,
        }
    };
    raw.pump_data(&mut conn);
    assert_eq!(raw.server.write_data(id, payload).unwrap(), payload.len());
    raw.server.finish_data(id).unwrap();
    raw.pump_data(&mut conn);
    if let Some(tls) = conn.tls.as_mut() {
        tls.close().unwrap();
        raw.pump_data(&mut conn);
    }
    raw.server.handle_eof(Channel::Data(data), raw.now);
    raw.drain();
    assert_eq!(raw.last_code(), 226);
    conn
}

// spec: T22, T23, T24 — the data protection level starts Clear; once PROT P is accepted every
// later data connection is private; PROT may change right after EPSV, and the new level is the
// one the next transfer uses.
#[test]
fn prot_starts_clear_persists_and_may_change_right_after_epsv() {
    let mut config = server_config();
    config.require_private_data = false;
    let mut raw = Raw::new(config);
    raw.auth_tls();
    raw.login();
    assert_eq!(codes(&raw.cmd("PBSZ 0")), vec![200]);
    assert_eq!(codes(&raw.cmd("TYPE I")), vec![200]);
    let clear = b"sent in clear";

    // No PROT yet: Clear, the file's bytes are on the wire as they are.
    let data = raw.open_passive();
    let conn = download(&mut raw, data, false, clear);
    assert_eq!(conn.received, clear);

    assert_eq!(codes(&raw.cmd("PROT P")), vec![200]);
    for round in 0..3u64 {
        let content = random_bytes(2_000, round);
        let data = raw.open_passive();
        let conn = download(&mut raw, data, true, &content);
        assert!(conn.received == content, "round {round}");
        assert_eq!(conn.resumed, Some(true), "round {round}");
    }

    // Changed between EPSV and RETR: Clear, then back to Private.
    let data = raw.open_passive();
    assert_eq!(codes(&raw.cmd("PROT C")), vec![200]);
    let conn = download(&mut raw, data, false, clear);
    assert_eq!(conn.received, clear);
    let data = raw.open_passive();
    assert_eq!(codes(&raw.cmd("PROT P")), vec![200]);
    let content = random_bytes(1_000, 9);
    let conn = download(&mut raw, data, true, &content);
    assert!(conn.received == content);
}

// spec: T53 — the application can inspect what protects the control connection: both ends
// report the same negotiated version and cipher suite.
#[test]
fn both_ends_report_the_negotiated_cipher_suite() {
    let mut raw = Raw::new(server_config());
    raw.auth_tls();
    let server = raw
        .events
        .iter()
        .find_map(|e| match e {
            SEv::Secured(info) => Some(info.clone()),
            _ => None,
        })
        .expect("Secured event");
    let client = raw.tls.as_ref().unwrap().info().expect("client info");
    assert_eq!(server.cipher_suite, client.cipher_suite);
    assert_eq!(server.cipher_suite_name, client.cipher_suite_name);
    assert_eq!(server.version, client.version);
    assert_ne!(server.cipher_suite, 0);
    assert!(
        server.cipher_suite_name.starts_with("TLS13_"),
        "{}",
        server.cipher_suite_name
    );
}

// spec: X02 — MDTM: exactly `213 SP time-val`, one line, UTC YYYYMMDDHHMMSS; 550 when the
// file has no time or does not exist; 501 without a pathname.
#[test]
fn mdtm_is_one_213_line_with_a_time_val_or_550() {
    let mut raw = raw_ready();
    raw.cmd("MDTM f");
    let (id, request) = raw.requests.pop().unwrap();
    assert_eq!(
        request,
        Request::Mdtm {
            path: b"/f".to_vec()
        }
    );
    raw.server
        .answer(
            id,
            Ok(ftps_proto::server::Answer::Modified(
                server_support::sample_time(),
            )),
        )
        .unwrap();
    raw.drain();
    let reply = raw.replies.last().unwrap();
    assert_eq!(reply.code.get(), 213);
    assert_eq!(reply.lines, vec![b"20240131235959".to_vec()]);
    raw.cmd("MDTM missing");
    let (id, _) = raw.requests.pop().unwrap();
    raw.server.answer(id, Err(FsError::NotFound)).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 550);
    assert_eq!(codes(&raw.cmd("MDTM")), vec![501]);
}

// spec: X05 — MLST and MLSD without an argument name the cwd; MLSD of a non-directory is 501
// with no 1yz and no transfer.
#[test]
fn mlst_mlsd_default_to_the_cwd_and_mlsd_of_a_file_is_501() {
    let mut raw = raw_ready();
    raw.cmd("CWD /pub");
    answer_last(&mut raw, ftps_proto::server::Answer::Done);
    raw.cmd("MLST");
    let (id, request) = raw.requests.pop().unwrap();
    assert_eq!(
        request,
        Request::Mlst {
            path: b"/pub".to_vec()
        }
    );
    raw.server.answer(id, Err(FsError::NotFound)).unwrap();
    raw.drain();

    raw.open_passive();
    raw.cmd("MLSD");
    let (id, request) = raw.requests.pop().unwrap();
    assert!(
        matches!(&request, Request::List { path, format: ftps_proto::server::ListFormat::Mlsd } if path == b"/pub"),
        "{request:?}"
    );
    raw.server.answer(id, Err(FsError::NotFound)).unwrap();
    raw.drain();
    assert_eq!(raw.last_code(), 550);

    let before = raw.replies.len();
    raw.open_passive();
    raw.cmd("MLSD file.txt");
    let (id, request) = raw.requests.pop().unwrap();
    assert!(
        matches!(&request, Request::List { path, .. } if path == b"/pub/file.txt"),
        "{request:?}"
    );
    raw.server.answer(id, Err(FsError::WrongKind)).unwrap();
    raw.drain();
    assert_eq!(codes(&raw.replies[before..]), vec![229, 501]);
    assert!(
        !raw.events
            .iter()
            .any(|e| matches!(e, SEv::SendFinished(sent, _) if *sent == id))
    );
}

// spec: X11 — TVFS paths: names joined with `/` onto the cwd, a leading `/` is fully qualified,
// `/` alone is the root; TVFS is advertised.
#[test]
fn tvfs_paths_are_slash_joined_and_rooted() {
    let mut raw = raw_ready();
    let feat = raw.cmd("FEAT").pop().unwrap();
    assert!(feat.lines.iter().any(|l| l == b" TVFS"));
    let path_of = |raw: &mut Raw, line: &str| -> Vec<u8> {
        raw.cmd(line);
        let (id, request) = raw.requests.pop().expect(line);
        raw.server.answer(id, Err(FsError::NotFound)).unwrap();
        raw.drain();
        match request {
            Request::Size { path } | Request::Cwd { path } | Request::Mlst { path } => path,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(path_of(&mut raw, "SIZE f"), b"/f");
    assert_eq!(path_of(&mut raw, "MLST /"), b"/");
    raw.cmd("CWD /d/e");
    answer_last(&mut raw, ftps_proto::server::Answer::Done);
    assert_eq!(raw.server.cwd(), b"/d/e");
    assert_eq!(path_of(&mut raw, "SIZE sub/f"), b"/d/e/sub/f");
    assert_eq!(path_of(&mut raw, "SIZE /abs/f"), b"/abs/f");
    assert_eq!(path_of(&mut raw, "CWD g"), b"/d/e/g");
}

// spec: X12 — one pathname rule for every command: 8-bit bytes (UTF-8 or not), `*` and
// trailing spaces are taken literally (no wildcards, nothing trimmed) by APPE, CWD, DELE, MKD,
// RETR, RMD, RNFR/RNTO, STOR, SIZE, MDTM and MLST alike.
#[test]
fn every_path_command_takes_the_pathname_literally() {
    let mut raw = raw_ready();
    let name: &[u8] = b"a*b \xc3\xbc \xe9?.txt  ";
    let mut expected = b"/".to_vec();
    expected.extend_from_slice(name);
    for verb in [
        "CWD", "DELE", "MKD", "RMD", "SIZE", "MDTM", "MLST", "RNFR", "RETR", "STOR", "APPE",
    ] {
        if matches!(verb, "RETR" | "STOR" | "APPE") {
            raw.open_passive();
        }
        let mut line = format!("{verb} ").into_bytes();
        line.extend_from_slice(name);
        line.extend_from_slice(b"\r\n");
        raw.send(&line);
        if verb == "RNFR" {
            assert_eq!(raw.last_code(), 350);
            raw.cmd("RNTO x");
        }
        let (id, request) = raw.requests.pop().expect(verb);
        let path = match request {
            Request::Cwd { path }
            | Request::Delete { path }
            | Request::Mkdir { path }
            | Request::Rmdir { path }
            | Request::Size { path }
            | Request::Mdtm { path }
            | Request::Mlst { path }
            | Request::Retrieve { path, .. }
            | Request::Store { path, .. } => path,
            Request::Rename { from, .. } => from,
            other => panic!("{verb}: {other:?}"),
        };
        assert_eq!(path, expected, "{verb}");
        raw.server.answer(id, Err(FsError::NotFound)).unwrap();
        raw.drain();
    }
}

// ---------------------------------------------------------------- binding-ready API

#[test]
fn a_listing_of_a_large_directory_is_sent_entry_by_entry_in_bounded_pieces() {
    let mut server_cfg = server_config();
    // A small data buffer: 5 000 entries (~300 KB of MLSD lines) cannot fit at once.
    server_cfg.limits.data_buffer = 16 * 1024;
    let mut pair = Pair::new(server_cfg, client_config());
    pair.run();
    pair.login();
    for i in 0..5_000 {
        pair.fs
            .files
            .insert(format!("/file-{i:05}.dat").into_bytes(), vec![0; i % 7]);
    }
    let op = pair.client.mlsd(None).unwrap();
    pair.run();
    assert_eq!(pair.completed(op), Some(Ok(226)));
    let entries = pair.listing(op);
    assert_eq!(entries.len(), 5_000);
    let ListingEntry::Mlsd(last) = &entries[4_999] else {
        panic!("{:?}", entries[4_999])
    };
    assert_eq!(last.name, b"file-04999.dat");
    assert_eq!(last.size(), Some((4_999 % 7) as u64));
    // The session refused entries while its buffer was full: the directory went out in
    // pieces as the client read them, never as one formatted blob.
    assert!(pair.fs.listing_waits >= 3, "{}", pair.fs.listing_waits);
}

#[test]
fn entries_and_upload_reads_are_refused_for_the_wrong_transfer_or_id() {
    let mut raw = raw_ready();
    raw.open_passive();
    raw.cmd("RETR file.txt");
    let (id, request) = raw.requests.pop().unwrap();
    assert!(matches!(request, Request::Retrieve { .. }), "{request:?}");
    raw.server
        .answer(id, Ok(ftps_proto::server::Answer::Done))
        .unwrap();
    raw.drain();
    let entry = ftps_proto::server::DirEntry {
        name: b"x".to_vec(),
        kind: ftps_proto::server::DirEntryKind::File,
        size: 1,
        modified: None,
        permissions: ftps_proto::codec::listing::Permissions::from_letters(b"r"),
        mode: None,
        unique: None,
    };
    assert_eq!(
        raw.server.write_entry(id, &entry),
        Err(UsageError::WrongCall("not a listing"))
    );
    assert_eq!(
        raw.server.read_data(id, &mut [0; 8]),
        Err(UsageError::WrongCall("not an upload"))
    );
    assert_eq!(
        raw.server
            .read_data(RequestId::from_raw(9_999), &mut [0; 8]),
        Err(UsageError::UnknownId)
    );
}

// ---------------------------------------------------------------- driver limits and timeouts

#[test]
fn login_timeout_sends_421_even_while_commands_arrive() {
    let mut raw = Raw::new(server_config());
    let login = ftps_proto::server::ServerTimeouts::default().login;
    // Commands do not restart the login clock (they restart the idle clock).
    raw.now = raw.now.saturating_add(login / 2);
    assert_eq!(codes(&raw.cmd("NOOP")), vec![200]);
    let deadline = raw.server.next_deadline().unwrap();
    assert_eq!(deadline, support_t1().saturating_add(login));
    raw.now = deadline;
    raw.server.handle_timeout(deadline);
    raw.drain();
    assert_eq!(raw.last_code(), 421);
    assert_eq!(raw.closed(), Some(Some(ServerError::LoginTimeout)));
}

#[test]
fn login_timeout_stops_after_login() {
    let raw = raw_ready();
    let idle = ftps_proto::server::ServerTimeouts::default().idle;
    assert_eq!(
        raw.server.next_deadline(),
        Some(raw.now.saturating_add(idle))
    );
}

#[test]
fn stalled_control_handshake_is_dropped_without_reply() {
    let mut raw = Raw::new(server_config());
    assert_eq!(codes(&raw.cmd("AUTH TLS")), vec![234]);
    let handshake = ftps_proto::server::ServerTimeouts::default().handshake;
    let deadline = raw.server.next_deadline().unwrap();
    assert_eq!(deadline, raw.now.saturating_add(handshake));
    let replies = raw.replies.len();
    raw.now = deadline;
    raw.server.handle_timeout(deadline);
    raw.drain();
    assert_eq!(raw.replies.len(), replies);
    assert_eq!(raw.closed(), Some(Some(ServerError::HandshakeTimeout)));
    assert!(raw.control_closed());
}

#[test]
fn refused_session_says_421_instead_of_the_greeting() {
    use ftps_proto::io::{Instant, Output};
    use ftps_proto::server::{ServerEvent, ServerSession, Termination};
    let peer = "127.0.0.1:40000".parse().unwrap();
    let local = "127.0.0.1:21".parse().unwrap();
    let mut session = ServerSession::refused(
        server_config(),
        peer,
        local,
        Instant::from_nanos(0),
        Termination::TooManyFromAddress,
    );
    let mut buf = vec![0u8; 4096];
    let mut sent = Vec::new();
    let mut outputs = Vec::new();
    for _ in 0..10 {
        match session.poll_output(&mut buf, Instant::from_nanos(0)) {
            Output::Transmit { len, .. } => sent.extend_from_slice(&buf[..len]),
            Output::Wait { .. } => break,
            other => outputs.push(format!("{other:?}")),
        }
    }
    assert_eq!(
        sent,
        b"421 Too many sessions from your address, try again later.\r\n"
    );
    assert!(outputs[0].contains("Close"), "{outputs:?}");
    assert!(
        outputs[1].contains(&format!(
            "{:?}",
            ServerEvent::Closed {
                error: Some(ServerError::Terminated(Termination::TooManyFromAddress))
            }
        )),
        "{outputs:?}"
    );
}

#[test]
fn terminate_sends_421_over_tls_and_closes() {
    use ftps_proto::server::Termination;
    let mut raw = raw_ready();
    let now = raw.now;
    raw.server.terminate(Termination::ShuttingDown, now);
    raw.drain();
    assert_eq!(raw.last_code(), 421);
    assert_eq!(
        raw.closed(),
        Some(Some(ServerError::Terminated(Termination::ShuttingDown)))
    );
}

fn support_t1() -> ftps_proto::io::Instant {
    server_support::t(1)
}
