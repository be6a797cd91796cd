//! lftp (GnuTLS) fetching 20 files of 10 KB in one session, TLS 1.3 and TLS 1.2, from this
//! project's blocking server and from vsftpd, interleaved in the same run: five rounds each,
//! median per file. Small files make the per-transfer cost visible: the data connection's
//! TLS handshake and its round trips (GnuTLS writes its last TLS 1.3 flight in two writes and
//! lftp leaves Nagle on, so a delayed ACK on the server side costs 40 ms per transfer; the
//! server driver acknowledges data-connection reads at once to avoid that).
//!
//! `cargo bench -p ftps-tests --bench lftp_small_files`

use std::time::{Duration, Instant};

use ftps_tests::bench::median;
use ftps_tests::data::payload;
use ftps_tests::own_server::OwnServer;
use ftps_tests::peers::{Endpoint, Lftp, PRIORITY_TLS12_ONLY, PRIORITY_TLS13_ONLY, Vsftpd};

const FILES: usize = 20;
const SIZE: usize = 10_000;
const ROUNDS: usize = 5;

fn main() {
    let server = OwnServer::builder()
        .credentials("bench", "bench password")
        .without_implicit()
        .start();
    let vsftpd = Vsftpd::builder().start().expect("vsftpd");
    let names: Vec<String> = (0..FILES).map(|i| format!("f{i}.bin")).collect();
    for (i, name) in names.iter().enumerate() {
        let data = payload(SIZE, i as u32);
        std::fs::write(server.root().join(name), &data).expect("write");
        std::fs::write(vsftpd.endpoint().root_dir.join(name), &data).expect("write");
    }
    let script = format!("get {}\n", names.join(" "));
    let ours = server.endpoint(false);
    let cases: [(&str, &Endpoint, &str); 4] = [
        ("ftps-std server, TLS 1.3", &ours, PRIORITY_TLS13_ONLY),
        (
            "vsftpd,          TLS 1.3",
            vsftpd.endpoint(),
            PRIORITY_TLS13_ONLY,
        ),
        ("ftps-std server, TLS 1.2", &ours, PRIORITY_TLS12_ONLY),
        (
            "vsftpd,          TLS 1.2",
            vsftpd.endpoint(),
            PRIORITY_TLS12_ONLY,
        ),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 0..ROUNDS {
        for (index, (label, endpoint, priority)) in cases.iter().enumerate() {
            let local = tempfile::tempdir().expect("local dir");
            let lftp = Lftp::new(endpoint).priority(priority);
            let started = Instant::now();
            lftp.run_ok(local.path(), &script).expect("lftp run");
            let per_file = started.elapsed() / FILES as u32;
            println!("round {round}: {label}: {:6.1} ms per file", ms(per_file));
            times[index].push(per_file);
        }
    }
    for ((label, _, _), mut runs) in cases.iter().zip(times) {
        println!(
            "median of {ROUNDS} runs of {FILES} x {SIZE} B: {label}: {:6.1} ms per file",
            ms(median(&mut runs))
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
