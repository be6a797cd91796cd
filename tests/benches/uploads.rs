//! Uploads onto a disk-backed directory and onto tmpfs, side by side in one run: 256 MiB PROT P
//! uploads by `curl --ssl-reqd -T` to this project's blocking server (`ftps_std::Server` over
//! `LocalFs`, with and without its fsync before the 226) and to a local vsftpd (TLS 1.3,
//! `require_ssl_reuse=YES`), and by this project's client to its server. Prints every run and,
//! per path, the median throughput and the server's CPU seconds per GiB (for ours → ours, the
//! process holds client and server: their sum).
//!
//! The disk directory is under `/var/tmp`, the tmpfs one under `/dev/shm` (each server's root
//! is made there through `TMPDIR`); the source file lives on tmpfs.
//!
//! `cargo bench -p ftps-tests --bench uploads`

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ftps_std::DataConnectionMode;
use ftps_tests::bench::{cpu_time, median, megabytes_per_second, own_cpu_time, timed_curl_upload};
use ftps_tests::own_server::OwnServer;
use ftps_tests::peers::Vsftpd;

const SIZE: usize = 256 << 20;
const ROUNDS: usize = 3;
/// Time for vsftpd to reap its session processes (their CPU time reaches its `cutime` then).
const REAP: Duration = Duration::from_millis(300);

struct Row {
    name: &'static str,
    times: Vec<Duration>,
    cpu: Vec<Duration>,
}

fn main() {
    // Each target runs in a child process of this binary started with TMPDIR pointing there:
    // the servers make their roots with `tempfile`, which reads TMPDIR.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == TARGET_ARG) {
        let label = &args[i + 1];
        let source = Path::new(&args[i + 2]);
        run_target(label, source);
        return;
    }
    let source_dir = tempfile::tempdir_in("/dev/shm").expect("tmpfs source dir");
    let source = source_dir.path().join("upload.bin");
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&source, &data).expect("write the source file");
    drop(data);
    let me = std::env::current_exe().expect("this benchmark's path");
    for (label, dir) in [
        ("disk (/var/tmp)", "/var/tmp"),
        ("tmpfs (/dev/shm)", "/dev/shm"),
    ] {
        let status = std::process::Command::new(&me)
            .args([TARGET_ARG, label, source.to_str().expect("UTF-8 path")])
            .env("TMPDIR", dir)
            .status()
            .expect("run the target");
        assert!(status.success(), "{label}: {status}");
    }
}

/// Runs one target: `uploads --target LABEL SOURCE` (with TMPDIR set by the parent).
const TARGET_ARG: &str = "--target";

fn run_target(label: &str, source: &Path) {
    let vsftpd = Vsftpd::builder().start().expect("vsftpd");
    let synced = OwnServer::builder()
        .credentials("bench", "bench password")
        .without_implicit()
        .start();
    let unsynced = OwnServer::builder()
        .credentials("bench", "bench password")
        .without_implicit()
        .storage(|fs| Arc::new(fs.sync_uploads(false)))
        .start();
    let mut rows = [
        Row::new("curl -> ftps-std server (fsync)"),
        Row::new("curl -> ftps-std server (no fsync)"),
        Row::new("curl -> vsftpd"),
        Row::new("ftps-std client -> server (fsync)"),
    ];
    for round in 0..ROUNDS {
        // Our servers run in this process: its own threads' CPU (curl, a child, not counted).
        let before = own_cpu_time();
        let t = timed_curl_upload(&synced.endpoint(false), source, "up.bin");
        rows[0].record(t, own_cpu_time() - before);

        let before = own_cpu_time();
        let t = timed_curl_upload(&unsynced.endpoint(false), source, "up.bin");
        rows[1].record(t, own_cpu_time() - before);

        let before = cpu_time(Some(vsftpd.pid()));
        let t = timed_curl_upload(vsftpd.endpoint(), source, "up.bin");
        std::thread::sleep(REAP);
        rows[2].record(t, cpu_time(Some(vsftpd.pid())) - before);

        let before = own_cpu_time();
        let start = std::time::Instant::now();
        let mut client = synced.login(false, DataConnectionMode::Passive);
        let mut file = std::fs::File::open(source).expect("source");
        let summary = client.store("own.bin", &mut file).expect("upload");
        assert_eq!(summary.bytes, SIZE as u64);
        client.quit().expect("quit");
        rows[3].record(start.elapsed(), own_cpu_time() - before);

        for row in &rows {
            let (t, c) = (row.times[round], row.cpu[round]);
            println!(
                "{label} round {round}: {:36} {:7.1} MB/s  server CPU {:.2} s",
                row.name,
                megabytes_per_second(SIZE, t),
                c.as_secs_f64()
            );
        }
    }
    let gib = SIZE as f64 / f64::from(1u32 << 30);
    println!("{label}: medians of {ROUNDS} x 256 MiB PROT P uploads");
    for row in &mut rows {
        let t = median(&mut row.times);
        let c = median(&mut row.cpu);
        println!(
            "  {:36} {:7.1} MB/s  {:.2} CPU s/GiB",
            row.name,
            megabytes_per_second(SIZE, t),
            c.as_secs_f64() / gib
        );
    }
}

impl Row {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            times: Vec::new(),
            cpu: Vec::new(),
        }
    }

    fn record(&mut self, time: Duration, cpu: Duration) {
        self.times.push(time);
        self.cpu.push(cpu);
    }
}
