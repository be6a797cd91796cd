//! The in-memory pair harness: the real client and server sessions wired through byte
//! queues (one per direction per channel) with random segmentation and interleaving chosen
//! by proptest seeds, simulated time, and fault knobs.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
mod pair;
#[allow(dead_code)]
mod server_support;

use std::time::Duration;

use ftps_proto::client::{DataConnectionMode, ListingEntry, OpError, OpId};
use ftps_proto::data::DataError;
use ftps_proto::server::{Request, ServerError};
use pair::{Chooser, Harness, Knobs, Stop};
use proptest::prelude::*;
use server_support::{CEv, Pair, SEv, client_config, server_config};

fn harness(seed: u64, max_chunk: usize, knobs: Knobs) -> Harness {
    harness_in_mode(seed, max_chunk, knobs, false)
}

fn harness_in_mode(seed: u64, max_chunk: usize, knobs: Knobs, active: bool) -> Harness {
    let mut config = server_config();
    config.allow_ccc = true;
    // A one-byte-per-step network with 40 ms steps takes minutes of simulated time to log
    // in; the handshake and login timeouts are for stalled peers, not for this.
    config.timeouts.handshake = Duration::from_secs(3600);
    config.timeouts.login = Duration::from_secs(3600);
    let mut client = client_config();
    if active {
        client.data_mode = DataConnectionMode::Active;
    }
    let pair = Pair::new(config, client);
    Harness::new(pair, Chooser::new(seed, max_chunk), knobs)
}

/// Runs until `op` completes and returns its result.
fn finish(h: &mut Harness, op: OpId) -> Result<u16, OpError> {
    let stop = h.run_until(false, |p| p.completed(op).is_some());
    assert_eq!(
        stop,
        Stop::Reached,
        "op {op:?} stalled; client events {:?}; server events {:?}",
        h.pair.client_events,
        h.pair.server_events
    );
    h.pair.completed(op).unwrap()
}

fn expect_code(h: &mut Harness, op: OpId, code: u16) {
    let result = finish(h, op);
    assert_eq!(
        result,
        Ok(code),
        "client events {:?}; server events {:?}",
        h.pair.client_events,
        h.pair.server_events
    );
}

fn login(h: &mut Harness) {
    h.settle();
    assert!(h.pair.client.is_secure(), "control TLS did not come up");
    let op = h.pair.client.login(b"alice", b"secret", None).unwrap();
    expect_code(h, op, 230);
}

fn downloaded(h: &Harness, op: OpId) -> Vec<u8> {
    h.pair.downloads.get(&op).cloned().unwrap_or_default()
}

/// The whole scripted session; panics on the first difference.
fn scripted_session(
    seed: u64,
    max_chunk: usize,
    content: &[u8],
    rest: usize,
    active: bool,
    step_delay_ms: u64,
) -> Duration {
    let knobs = Knobs {
        step_delay_ms,
        ..Knobs::default()
    };
    let mut h = harness_in_mode(seed, max_chunk, knobs, active);
    login(&mut h);
    h.pair
        .fs
        .files
        .insert(b"/seed.txt".to_vec(), b"hello".to_vec());

    let op = h.pair.client.mlsd(None).unwrap();
    expect_code(&mut h, op, 226);
    let names: Vec<Vec<u8>> = h
        .pair
        .listing(op)
        .into_iter()
        .map(|entry| match entry {
            ListingEntry::Mlsd(fact) => fact.name,
            other => panic!("not an MLSD entry: {other:?}"),
        })
        .collect();
    assert_eq!(names, vec![b"seed.txt".to_vec()]);

    let op = h.pair.client.store(b"up.bin").unwrap();
    h.pair.upload(op, content.to_vec());
    expect_code(&mut h, op, 226);
    assert_eq!(
        h.pair.fs.files.get(&b"/up.bin"[..]).map(Vec::as_slice),
        Some(content)
    );

    let op = h.pair.client.retrieve(b"up.bin", None).unwrap();
    expect_code(&mut h, op, 226);
    assert_eq!(downloaded(&h, op), content);

    // spec: X04
    let op = h
        .pair
        .client
        .retrieve(b"up.bin", Some(rest as u64))
        .unwrap();
    expect_code(&mut h, op, 226);
    assert_eq!(downloaded(&h, op), &content[rest..]);

    let op = h.pair.client.rename(b"up.bin", b"moved.bin").unwrap();
    expect_code(&mut h, op, 250);
    assert!(h.pair.fs.files.contains_key(&b"/moved.bin"[..]));
    assert!(!h.pair.fs.files.contains_key(&b"/up.bin"[..]));
    let op = h.pair.client.dele(b"moved.bin").unwrap();
    expect_code(&mut h, op, 250);
    assert!(!h.pair.fs.files.contains_key(&b"/moved.bin"[..]));

    // spec: T29
    let op = h.pair.client.ccc().unwrap();
    expect_code(&mut h, op, 200);
    // The 200 completes the client's op before the server read the client's close_notify.
    h.settle();
    assert!(!h.pair.server.is_secure());
    assert!(!h.pair.client.is_secure());
    let reversed: Vec<u8> = content.iter().rev().copied().collect();
    let op = h.pair.client.store(b"after-ccc.bin").unwrap();
    h.pair.upload(op, reversed.clone());
    expect_code(&mut h, op, 226);
    assert_eq!(h.pair.fs.files.get(&b"/after-ccc.bin"[..]), Some(&reversed));
    let op = h.pair.client.retrieve(b"after-ccc.bin", None).unwrap();
    expect_code(&mut h, op, 226);
    assert_eq!(downloaded(&h, op), reversed);

    let op = h.pair.client.quit().unwrap();
    expect_code(&mut h, op, 221);
    h.settle();

    // spec: T40 — every data connection resumed the control connection's session.
    let resumed: Vec<Option<bool>> = h
        .pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            CEv::TransferCompleted { resumed, .. } => Some(*resumed),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, vec![Some(true); 6]);
    assert!(
        h.pair
            .client_events
            .iter()
            .all(|e| !matches!(e, CEv::Completed(_, Err(_)))),
        "{:?}",
        h.pair.client_events
    );
    assert_eq!(h.closed_counts(), (1, 1), "{:?}", h.pair.server_events);
    assert!(h.pair.server_events.contains(&SEv::Closed(None)));
    assert!(h.pair.client.is_closed());
    assert!(h.pair.server.is_closed());
    h.pair.now.saturating_duration_since(server_support::t(1))
}

// spec: §9.4, T29, T35, T40, X04
#[test]
fn scripted_session_byte_by_byte() {
    let content: Vec<u8> = (0..3_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let took = scripted_session(1, 1, &content, 1_234, false, 0);
    assert_eq!(took, Duration::ZERO, "time passes only on a stall");
}

// spec: T32, T40 — active mode: the server dials and is still the TLS server.
#[test]
fn scripted_session_active_mode_byte_by_byte() {
    let content: Vec<u8> = (0..2_000u32).map(|i| (i * 13) as u8).collect();
    let took = scripted_session(11, 1, &content, 999, true, 0);
    assert_eq!(took, Duration::ZERO, "time passes only on a stall");
}

// spec: T29, T40
#[test]
fn scripted_session_with_empty_file_and_whole_queues() {
    let took = scripted_session(2, usize::MAX, &[], 0, false, 0);
    assert_eq!(took, Duration::ZERO, "time passes only on a stall");
}

/// The largest delivery per step: mostly tiny, sometimes whole records, sometimes more.
fn chunk_limit() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..=8, 9usize..=300, 301usize..=20_000]
}

/// Segmentation, and how much simulated time each delivery takes. The pump's queues are
/// unbounded (an endless socket buffer): a sender hands over a whole file at once and then sees
/// nothing move while the queue drains. A slow drain of many tiny chunks would then trip the
/// sender's data-idle timer (120 s) legitimately, so delays go with larger chunks only.
fn network() -> impl Strategy<Value = (usize, u64)> {
    prop_oneof![(chunk_limit(), Just(0u64)), (301usize..=20_000, 1u64..=50),]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    // spec: §9.4, T29, T35, T40, X04 — same bytes on both sides under any segmentation.
    #[test]
    fn scripted_session_is_segmentation_invariant(
        seed in any::<u64>(),
        content in proptest::collection::vec(any::<u8>(), 0..20_000),
        rest_fraction in 0.0f64..=1.0,
        active in any::<bool>(),
        (max_chunk, step_delay_ms) in network(),
    ) {
        let rest = ((content.len() as f64) * rest_fraction) as usize;
        let _ = scripted_session(
            seed,
            max_chunk,
            &content,
            rest.min(content.len()),
            active,
            step_delay_ms,
        );
    }
}

// ---------------------------------------------------------------- knobs

/// A download whose server close_notify is replaced by a bare EOF.
fn download_without_close_notify(seed: u64, max_chunk: usize, content: &[u8], active: bool) {
    let knobs = Knobs {
        drop_server_close_notify: true,
        ..Knobs::default()
    };
    let mut h = harness_in_mode(seed, max_chunk, knobs, active);
    login(&mut h);
    h.pair.fs.files.insert(b"/t.bin".to_vec(), content.to_vec());
    let op = h.pair.client.retrieve(b"t.bin", None).unwrap();
    let result = finish(&mut h, op);
    assert_eq!(h.close_notifies_dropped, 1);
    assert_eq!(
        result,
        Err(OpError::Data(DataError::Truncated)),
        "{:?}",
        h.pair.client_events
    );
    assert!(h.pair.transfer_completed(op).is_none());
    // Whatever arrived is a prefix of the file: nothing was invented.
    assert!(content.starts_with(&downloaded(&h, op)));
    // The control session goes on.
    let op = h.pair.client.pwd().unwrap();
    expect_code(&mut h, op, 257);
}

/// An upload whose client close_notify is replaced by a bare EOF.
fn upload_without_close_notify(seed: u64, max_chunk: usize, content: &[u8], active: bool) {
    let knobs = Knobs {
        drop_client_close_notify: true,
        ..Knobs::default()
    };
    let mut h = harness_in_mode(seed, max_chunk, knobs, active);
    login(&mut h);
    let op = h.pair.client.store(b"t.bin").unwrap();
    h.pair.upload(op, content.to_vec());
    let result = finish(&mut h, op);
    assert_eq!(h.close_notifies_dropped, 1);
    match result {
        Err(OpError::Rejected { reply }) => {
            assert!(
                matches!(reply.code.get(), 426 | 451),
                "refused with {}",
                reply.code
            );
        }
        other => panic!("the upload did not fail as truncated: {other:?}"),
    }
    let finished: Vec<bool> = h
        .pair
        .server_events
        .iter()
        .filter_map(|e| match e {
            SEv::UploadFinished(_, complete) => Some(*complete),
            _ => None,
        })
        .collect();
    assert_eq!(finished, vec![false]);
    assert!(!h.pair.fs.files.contains_key(&b"/t.bin"[..]));
    assert_eq!(h.pair.fs.incomplete, vec![b"/t.bin".to_vec()]);
    let op = h.pair.client.pwd().unwrap();
    expect_code(&mut h, op, 257);
}

// spec: §9.4
#[test]
fn truncated_download_and_upload_byte_by_byte() {
    let content: Vec<u8> = (0..2_000u32).map(|i| (i % 251) as u8).collect();
    download_without_close_notify(3, 1, &content, false);
    upload_without_close_notify(4, 1, &content, false);
    download_without_close_notify(12, 1, &content, true);
    upload_without_close_notify(13, 1, &content, true);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    // spec: §9.4 — EOF without close_notify is never a successful download.
    #[test]
    fn download_without_close_notify_is_truncated(
        seed in any::<u64>(),
        max_chunk in chunk_limit(),
        content in proptest::collection::vec(any::<u8>(), 0..10_000),
        active in any::<bool>(),
    ) {
        download_without_close_notify(seed, max_chunk, &content, active);
    }

    // spec: §9.4 — the server stores nothing and answers 426/451.
    #[test]
    fn upload_without_close_notify_is_incomplete(
        seed in any::<u64>(),
        max_chunk in chunk_limit(),
        content in proptest::collection::vec(any::<u8>(), 0..10_000),
        active in any::<bool>(),
    ) {
        upload_without_close_notify(seed, max_chunk, &content, active);
    }
}

/// Cuts the control connection once `cut_after` bytes of a download arrived.
fn cut_control_mid_download(seed: u64, max_chunk: usize, cut_after: usize, active: bool) {
    let mut h = harness_in_mode(seed, max_chunk, Knobs::default(), active);
    login(&mut h);
    let content: Vec<u8> = (0..50_000u32).map(|i| (i * 31) as u8).collect();
    h.pair
        .fs
        .files
        .insert(b"/big.bin".to_vec(), content.clone());
    let op = h.pair.client.retrieve(b"big.bin", None).unwrap();
    let stop = h.run_until(false, |p| {
        p.downloads.get(&op).map_or(0, Vec::len) >= cut_after
    });
    assert_eq!(stop, Stop::Reached);
    h.cut_control();
    h.settle();
    assert_eq!(
        h.closed_counts(),
        (1, 1),
        "client {:?}; server {:?}",
        h.pair.client_events,
        h.pair.server_events
    );
    assert!(h.pair.client.is_closed());
    assert!(h.pair.server.is_closed());
    assert!(
        matches!(h.pair.completed(op), Some(Err(_))),
        "{:?}",
        h.pair.completed(op)
    );
    assert!(content.starts_with(&downloaded(&h, op)));
}

/// Cuts the control connection `cut_after` deliveries into an upload.
fn cut_control_mid_upload(seed: u64, max_chunk: usize, cut_after: usize, active: bool) {
    let mut h = harness_in_mode(seed, max_chunk, Knobs::default(), active);
    login(&mut h);
    let content: Vec<u8> = (0..50_000u32).map(|i| (i * 17) as u8).collect();
    let op = h.pair.client.store(b"big.bin").unwrap();
    h.pair.upload(op, content.clone());
    let mut deliveries = 0;
    h.run_until(false, |p| {
        deliveries += 1;
        deliveries > cut_after || p.completed(op).is_some()
    });
    h.cut_control();
    h.settle();
    assert_eq!(
        h.closed_counts(),
        (1, 1),
        "client {:?}; server {:?}",
        h.pair.client_events,
        h.pair.server_events
    );
    assert!(h.pair.client.is_closed());
    assert!(h.pair.server.is_closed());
    if h.pair.completed(op) != Some(Ok(226)) {
        // Cut before the 226 arrived: nothing half-written is stored as complete.
        assert!(matches!(h.pair.completed(op), Some(Err(_))));
        if let Some(stored) = h.pair.fs.files.get(&b"/big.bin"[..]) {
            assert_eq!(stored, &content);
        }
    }
}

#[test]
fn cut_control_byte_by_byte() {
    cut_control_mid_upload(16, 1, 50, false);
    cut_control_mid_download(5, 1, 1, false);
    cut_control_mid_download(14, 1, 1, true);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    // Both sides end cleanly, one Closed each, whenever the cut happens.
    #[test]
    fn cut_control_mid_transfer_closes_both_once(
        seed in any::<u64>(),
        max_chunk in chunk_limit(),
        cut_after in 1usize..40_000,
        active in any::<bool>(),
    ) {
        cut_control_mid_download(seed, max_chunk, cut_after, active);
    }

    #[test]
    fn cut_control_mid_upload_closes_both_once(
        seed in any::<u64>(),
        max_chunk in chunk_limit(),
        cut_after in 1usize..600,
        active in any::<bool>(),
    ) {
        cut_control_mid_upload(seed, max_chunk, cut_after, active);
    }
}

/// Plaintext appended to `AUTH TLS\r\n` by a man in the middle.
fn inject_after_auth(seed: u64, max_chunk: usize) -> Harness {
    let knobs = Knobs {
        inject_after_auth: Some(b"USER alice\r\nPASS secret\r\n".to_vec()),
        ..Knobs::default()
    };
    let mut h = harness(seed, max_chunk, knobs);
    h.settle();
    assert!(
        !h.pair
            .server_events
            .iter()
            .any(|e| matches!(e, SEv::Request(..))),
        "the injected commands ran: {:?}",
        h.pair.server_events
    );
    assert!(!h.pair.server.is_logged_in());
    assert_eq!(
        h.closed_counts(),
        (1, 1),
        "client {:?}; server {:?}",
        h.pair.client_events,
        h.pair.server_events
    );
    h
}

// spec: §9.1 — pipelined plaintext after AUTH TLS is refused with 421 when it arrives with it.
#[test]
fn injection_after_auth_in_one_segment_is_421() {
    let h = inject_after_auth(6, usize::MAX);
    let stream = h.server_control_stream();
    assert!(
        stream.windows(4).any(|w| w == b"421 "),
        "{}",
        String::from_utf8_lossy(&stream)
    );
    assert!(!stream.windows(4).any(|w| w == b"234 "));
    assert_eq!(
        h.pair.server_events,
        vec![SEv::Closed(Some(ServerError::PipelinedAfterSecurityChange))]
    );
}

// spec: §9.1 — split from the AUTH line, the bytes reach only the TLS engine, which fails.
#[test]
fn injection_after_auth_byte_by_byte_never_runs() {
    let h = inject_after_auth(7, 1);
    // The AUTH line arrived alone: 234, then the plaintext fails as a TLS record.
    assert!(h.server_control_stream().windows(4).any(|w| w == b"234 "));
    assert!(
        matches!(
            h.pair.server_events.as_slice(),
            [SEv::Closed(Some(ServerError::Tls(_)))]
        ),
        "{:?}",
        h.pair.server_events
    );
}

/// Replies appended to the server's `234` by a man in the middle.
fn inject_after_234(seed: u64, max_chunk: usize) {
    let knobs = Knobs {
        inject_after_234: Some(b"230 fake login\r\n".to_vec()),
        ..Knobs::default()
    };
    let mut h = harness(seed, max_chunk, knobs);
    h.settle();
    assert!(!h.pair.client.is_secure() || h.pair.client.is_closed());
    assert!(h.pair.client.is_closed(), "{:?}", h.pair.client_events);
    assert!(
        !h.pair
            .client_events
            .iter()
            .any(|e| matches!(e, CEv::LoggedIn(_))),
        "{:?}",
        h.pair.client_events
    );
    assert!(
        !h.pair
            .server_events
            .iter()
            .any(|e| matches!(e, SEv::Request(..)))
    );
    assert_eq!(
        h.closed_counts(),
        (1, 1),
        "client {:?}; server {:?}",
        h.pair.client_events,
        h.pair.server_events
    );
}

// spec: §9.2
#[test]
fn injection_after_234_aborts_the_client() {
    inject_after_234(8, usize::MAX);
    inject_after_234(9, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    // spec: §9.1 — never run, whatever the segmentation.
    #[test]
    fn injection_after_auth_never_runs(seed in any::<u64>(), max_chunk in 1usize..=512) {
        inject_after_auth(seed, max_chunk);
    }

    // spec: §9.2
    #[test]
    fn injection_after_234_always_aborts(seed in any::<u64>(), max_chunk in 1usize..=512) {
        inject_after_234(seed, max_chunk);
    }
}

/// Nothing reaches the client while simulated time passes.
fn stalled_reply_times_out(seed: u64, max_chunk: usize) {
    let mut h = harness(seed, max_chunk, Knobs::default());
    login(&mut h);
    h.knobs.hold_to_client = true;
    let start = h.pair.now;
    let op = h.pair.client.pwd().unwrap();
    let stop = h.run_until(true, |p| p.client_closed);
    assert_eq!(stop, Stop::Reached);
    let waited = h.pair.now.saturating_duration_since(start);
    // The client's reply timeout (60 s) fires, well before the server's idle timeout.
    assert_eq!(waited, Duration::from_secs(60));
    assert_eq!(h.pair.completed(op), Some(Err(OpError::SessionClosed)));
    // The server hears the end of the control connection.
    h.knobs.hold_to_client = false;
    h.settle();
    assert_eq!(h.closed_counts(), (1, 1), "{:?}", h.pair.server_events);
    assert!(h.pair.server.is_closed());
    assert!(
        h.pair
            .server_events
            .iter()
            .all(|e| !matches!(e, SEv::Request(_, Request::Retrieve { .. })))
    );
}

#[test]
fn stalled_reply_times_out_byte_by_byte() {
    stalled_reply_times_out(10, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn stalled_reply_times_out_under_any_segmentation(
        seed in any::<u64>(),
        max_chunk in chunk_limit(),
    ) {
        stalled_reply_times_out(seed, max_chunk);
    }
}

// A slow network, byte by byte: every delivery takes up to 40 ms of simulated time, so the
// whole session spans minutes, longer than the reply timeout, while each reply and each
// stretch of data still comes well within its own timeout.
#[test]
fn scripted_session_on_a_slow_network() {
    let content: Vec<u8> = (0..3_000u32).map(|i| (i * 5) as u8).collect();
    let took = scripted_session(15, 1, &content, 100, false, 40);
    assert!(took > Duration::from_secs(60), "{took:?}");
}
