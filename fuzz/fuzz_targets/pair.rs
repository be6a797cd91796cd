//! A `ClientSession` and a `ServerSession` wired together in memory — the proto tests' own pair
//! harness (crates/ftps-proto/tests/{common,server_support,pair}, included, not copied) — with
//! the fuzzer choosing the application's verbs, the segmentation and interleaving of every
//! delivery (the harness `Chooser` reads its choices from the fuzzer's bytes), time steps and
//! faults: dropped close_notify either way, a cut control connection, injected bytes, a stalled
//! direction.
//!
//! Properties: no panic; both sides end with exactly one `Closed`; the bytes in flight stay
//! bounded; every download reported complete delivered exactly the file's bytes from its
//! offset; every upload the server committed is the whole upload, and every upload reported
//! complete was committed.
#![no_main]

#[path = "../../crates/ftps-proto/tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../crates/ftps-proto/tests/pair/mod.rs"]
#[allow(dead_code)]
mod pair;
#[path = "../../crates/ftps-proto/tests/server_support/mod.rs"]
#[allow(dead_code)]
mod server_support;

use std::time::Duration;

use arbitrary::Arbitrary;
use ftps_proto::client::{ClientTlsMode, DataConnectionMode, DataProtection, OpId};
use ftps_proto::io::Channel;
use ftps_proto::server::ServerTlsMode;
use ftps_proto::tls::ResumptionPolicy;
use libfuzzer_sys::fuzz_target;
use pair::{Chooser, Harness, Knobs};
use server_support::{Pair, client_config, server_config};

/// Files the server starts with and nothing changes: what a download must deliver.
const FIXED: [&[u8]; 3] = [b"/f0", b"/f1", b"/f2"];
/// A file renames and deletes may act on.
const SPARE: &[u8] = b"/spare";
/// Bytes in flight (all queues) above which the pair is not bounded any more: the largest
/// transfer here is 8 KiB, the TLS and control overhead a few KiB more.
const MAX_IN_FLIGHT: usize = 1 << 20;
/// Deliveries one `Run`/`Settle` step may take, and the final wind-down: keeps every input
/// bounded in time whatever the sessions do.
const MAX_STEPS: usize = 20_000;

#[derive(Arbitrary, Debug)]
enum Step {
    Login {
        good: bool,
    },
    Download {
        file: u8,
        rest: Option<u16>,
    },
    Upload {
        len: u16,
        cut: bool,
    },
    List,
    Rename,
    Delete,
    Size {
        file: u8,
    },
    Mkdir,
    Ccc,
    Protection {
        private: bool,
    },
    Abort {
        which: u8,
    },
    Quit,
    /// Up to n deliveries without letting time pass.
    Run {
        n: u16,
    },
    /// Deliveries until nothing moves, time passing to each deadline if asked.
    Settle {
        let_time_pass: bool,
    },
    Advance {
        millis: u32,
    },
    /// Hold (or release) everything towards the client: a stalled reply.
    Stall {
        on: bool,
    },
    CutControl,
    /// Bytes appended to a control queue (inside or outside TLS, wherever the stream is).
    Inject {
        to_client: bool,
        bytes: Vec<u8>,
    },
    /// One of the verbs the steps above do not queue, with a path the fuzzer chooses (the
    /// client refuses what it cannot send with a usage error; that path is fuzzed too).
    Verb {
        verb: u8,
        path: Vec<u8>,
    },
}

/// The session configurations the fuzzer chooses between.
#[derive(Arbitrary, Debug)]
struct Setup {
    /// Implicit FTPS on both sides (TLS from the first byte).
    implicit: bool,
    /// The client's `ExplicitIfAvailable` (explicit mode otherwise).
    client_if_available: bool,
    /// The server's data-connection resumption policy: optional, required or off.
    resumption: u8,
    /// No delay after a failed login.
    no_login_delay: bool,
}

#[derive(Arbitrary, Debug)]
struct Scenario {
    setup: Setup,
    max_chunk: u16,
    active: bool,
    file_sizes: [u16; 3],
    drop_server_close_notify: bool,
    drop_client_close_notify: bool,
    inject_after_auth: Option<Vec<u8>>,
    inject_after_234: Option<Vec<u8>>,
    step_delay_ms: u8,
    steps: Vec<Step>,
    /// The delivery choices: which queue, how many bytes.
    tape: Vec<u8>,
}

enum Transfer {
    Download {
        op: OpId,
        file: usize,
        rest: usize,
    },
    Upload {
        op: OpId,
        path: Vec<u8>,
        data: Vec<u8>,
    },
}

fn content(file: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(31)
                .wrapping_add(file as u8 * 7 + (i >> 8) as u8)
        })
        .collect()
}

fn in_flight(p: &Pair) -> usize {
    p.to_client
        .values()
        .chain(p.to_server.values())
        .map(|i| i.bytes.len())
        .sum()
}

/// Deliveries until `done` or `MAX_STEPS`; checks the bytes in flight at each.
fn run(h: &mut Harness, let_time_pass: bool, limit: usize, mut done: impl FnMut(&Pair) -> bool) {
    let mut n = 0;
    h.run_until(let_time_pass, |p| {
        n += 1;
        assert!(
            in_flight(p) <= MAX_IN_FLIGHT,
            "{} bytes in flight",
            in_flight(p)
        );
        n > limit || done(p)
    });
}

fn both_closed(p: &Pair) -> bool {
    p.client.is_closed() && p.server.is_closed()
}

fuzz_target!(|s: Scenario| {
    if std::env::var_os("FUZZ_PRINT").is_some() {
        eprintln!("{:?}", s);
    }
    let mut config = server_config();
    config.allow_ccc = true;
    let mut client = client_config();
    if s.active {
        client.data_mode = DataConnectionMode::Active;
    }
    if s.setup.implicit {
        config.tls_mode = ServerTlsMode::Implicit;
        client.tls_mode = ClientTlsMode::Implicit;
    } else if s.setup.client_if_available {
        client.tls_mode = ClientTlsMode::ExplicitIfAvailable;
    }
    config.data_resumption = match s.setup.resumption % 3 {
        0 => ResumptionPolicy::Optional,
        1 => ResumptionPolicy::Required,
        _ => ResumptionPolicy::Off,
    };
    if s.setup.no_login_delay {
        config.timeouts.failed_login_delay = Duration::ZERO;
    }
    let mut pair = Pair::new(config, client);
    let sizes: Vec<usize> = s
        .file_sizes
        .iter()
        .map(|&n| usize::from(n % 8192))
        .collect();
    for (i, path) in FIXED.iter().enumerate() {
        pair.fs.files.insert(path.to_vec(), content(i, sizes[i]));
    }
    pair.fs.files.insert(SPARE.to_vec(), b"spare".to_vec());
    let knobs = Knobs {
        drop_server_close_notify: s.drop_server_close_notify,
        drop_client_close_notify: s.drop_client_close_notify,
        inject_after_auth: s.inject_after_auth.clone(),
        inject_after_234: s.inject_after_234.clone(),
        hold_to_client: false,
        step_delay_ms: u64::from(s.step_delay_ms),
    };
    let chooser = Chooser::with_tape(0, usize::from(s.max_chunk).max(1), s.tape.clone());
    let mut h = Harness::new(pair, chooser, knobs);

    let mut transfers = Vec::new();
    let mut ops = Vec::new();
    let mut uploads = 0;
    for step in s.steps.iter().take(64) {
        let c = &mut h.pair.client;
        match step {
            Step::Login { good } => {
                let password: &[u8] = if *good { b"secret" } else { b"wrong" };
                let _ = c.login(b"alice", password, None);
            }
            Step::Download { file, rest } => {
                let file = usize::from(*file) % FIXED.len();
                if let Ok(op) = c.retrieve(FIXED[file], rest.map(u64::from)) {
                    let rest = rest.map_or(0, usize::from);
                    transfers.push(Transfer::Download { op, file, rest });
                    ops.push(op);
                }
            }
            Step::Upload { len, cut } => {
                uploads += 1;
                let path = format!("/u{uploads}").into_bytes();
                let data = content(10 + uploads, usize::from(*len % 8192));
                if let Ok(op) = c.store(&path) {
                    h.pair.uploads.insert(op, (data.clone(), 0, *cut));
                    transfers.push(Transfer::Upload { op, path, data });
                    ops.push(op);
                }
            }
            Step::List => ops.extend(c.mlsd(None)),
            Step::Rename => ops.extend(c.rename(SPARE, b"/renamed")),
            Step::Delete => ops.extend(c.dele(SPARE)),
            Step::Size { file } => ops.extend(c.size(FIXED[usize::from(*file) % FIXED.len()])),
            Step::Mkdir => ops.extend(c.mkd(b"/dir")),
            Step::Ccc => ops.extend(c.ccc()),
            Step::Protection { private } => {
                let level = if *private {
                    DataProtection::Private
                } else {
                    DataProtection::Clear
                };
                ops.extend(c.set_data_protection(level));
            }
            Step::Abort { which } => {
                if !ops.is_empty() {
                    let _ = c.abort(ops[usize::from(*which) % ops.len()]);
                }
            }
            Step::Quit => ops.extend(c.quit()),
            Step::Run { n } => run(&mut h, false, usize::from(*n), |_| false),
            Step::Settle { let_time_pass } => run(&mut h, *let_time_pass, MAX_STEPS, |_| false),
            Step::Advance { millis } => {
                // Not `Pair::advance`: that delivers everything, ignoring the stall knob.
                let p = &mut h.pair;
                p.now = p
                    .now
                    .saturating_add(Duration::from_millis(u64::from(*millis)));
                p.client.handle_timeout(p.now);
                p.server.handle_timeout(p.now);
            }
            Step::Stall { on } => h.knobs.hold_to_client = *on,
            Step::CutControl => h.cut_control(),
            Step::Verb { verb, path } => {
                let path = &path[..path.len().min(64)];
                let queued = match verb % 17 {
                    0 => c.cwd(path),
                    1 => c.cdup(),
                    2 => c.pwd(),
                    3 => c.rmd(path),
                    4 => c.mdtm(path),
                    5 => c.mlst(Some(path)),
                    6 => c.mlst(None),
                    7 => c.noop(),
                    8 => c.syst(),
                    9 => c.stat(Some(path)),
                    10 => c.site(path),
                    11 => c.raw_command(path, Some(b"x")),
                    12 => c.list(Some(path)),
                    13 => c.list_raw(None),
                    14 => c.nlst(None),
                    15 => c.list_entries(None),
                    // Appended and unique uploads: fed like uploads, their files not checked
                    // (an append adds to what is there; STOU picks the name).
                    _ => {
                        uploads += 1;
                        let data = content(10 + uploads, path.len() * 31);
                        let op = if path.first().is_some_and(|b| b % 2 == 0) {
                            c.append(FIXED[0])
                        } else {
                            c.store_unique()
                        };
                        if let Ok(op) = op {
                            h.pair.uploads.insert(op, (data, 0, false));
                        }
                        op
                    }
                };
                ops.extend(queued);
            }
            Step::Inject { to_client, bytes } => {
                let queues = if *to_client {
                    &mut h.pair.to_client
                } else {
                    &mut h.pair.to_server
                };
                let inbox = queues.entry(Channel::Control).or_default();
                if !inbox.eof_after {
                    inbox.bytes.extend(bytes.iter().take(64));
                }
            }
        }
    }

    // Wind down: the network recovers, the client quits; if that does not end both sides in
    // bounded time (a stalled upload holds the QUIT back), the control connection is cut.
    h.knobs.hold_to_client = false;
    if !h.pair.client.is_closed() {
        let _ = h.pair.client.quit();
    }
    run(&mut h, true, MAX_STEPS, both_closed);
    if !both_closed(&h.pair) {
        h.cut_control();
        run(&mut h, true, MAX_STEPS, both_closed);
    }
    assert!(
        both_closed(&h.pair),
        "not closed: client events {:?}; server events {:?}",
        h.pair.client_events,
        h.pair.server_events
    );
    assert_eq!(
        h.closed_counts(),
        (1, 1),
        "client events {:?}; server events {:?}",
        h.pair.client_events,
        h.pair.server_events
    );

    if std::env::var_os("FUZZ_PRINT").is_some() {
        eprintln!(
            "client: {:?}\nserver: {:?}",
            h.pair.client_events, h.pair.server_events
        );
    }
    for transfer in &transfers {
        match transfer {
            Transfer::Download { op, file, rest } => {
                if let Some(Ok(_)) = h.pair.completed(*op) {
                    let whole = content(*file, sizes[*file]);
                    let expected = whole.get(*rest..).unwrap_or(&[]);
                    let got = h.pair.downloads.get(op).map_or(&[][..], Vec::as_slice);
                    assert!(
                        got == expected,
                        "download {op:?} reported complete with {} bytes, expected {}",
                        got.len(),
                        expected.len()
                    );
                }
            }
            Transfer::Upload { op, path, data } => {
                let stored = h.pair.fs.files.get(path);
                if let Some(stored) = stored {
                    assert!(
                        stored == data,
                        "upload {op:?} committed {} bytes of {}",
                        stored.len(),
                        data.len()
                    );
                }
                if let Some(Ok(_)) = h.pair.completed(*op) {
                    assert!(
                        stored.is_some(),
                        "upload {op:?} reported complete, not stored"
                    );
                }
            }
        }
    }
});
