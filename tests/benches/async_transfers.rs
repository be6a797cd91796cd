//! 512 MiB PROT P transfers through the async driver beside the blocking one and vsftpd, in
//! one run, rounds interleaved:
//!
//! - `curl --ssl-reqd` downloading from and uploading to the async server (`ftps_tokio`), the
//!   blocking server (`ftps_std`) and a local vsftpd (TLS 1.3, `require_ssl_reuse=YES`);
//! - the async client (`ftps_tokio::client::Client` on a current-thread runtime) and the
//!   blocking client (`ftps_std::Client`) downloading from and uploading to that vsftpd.
//!
//! Every root and the upload source live on tmpfs (`/dev/shm`; the benchmark re-runs itself
//! with `TMPDIR` there), and our servers do not fsync before `226` (vsftpd does not either),
//! so the disk is out of the comparison. Per row: median MB/s, and CPU seconds per GiB of the
//! side being measured — our in-process servers and clients: this process's own threads (curl
//! is a child, not counted); vsftpd: the machine's busy time minus this process's and curl's
//! (so run it on a quiet machine: anything else running is counted as vsftpd's).
//!
//! `cargo bench -p ftps-tests --bench async_transfers`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftps_tests::bench::{
    busy_cpu_time, cpu_time, median, megabytes_per_second, own_cpu_time, timed_curl_download,
    timed_curl_upload,
};
use ftps_tests::own_client::{EPSV, client_options};
use ftps_tests::own_server::{Driver, OwnServer};
use ftps_tests::peers::{Endpoint, Vsftpd};

const SIZE: usize = 512 << 20;
const ROUNDS: usize = 3;
/// Set in the re-run child (whose TMPDIR is tmpfs).
const CHILD: &str = "FTPS_BENCH_ON_TMPFS";

struct Row {
    name: &'static str,
    times: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Row {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            times: Vec::new(),
            cpu: Vec::new(),
        }
    }
}

/// Runs `transfer` and records its wall time and the CPU time `cpu` counts meanwhile.
fn measure(row: &mut Row, cpu: impl Fn() -> Duration, transfer: impl FnOnce()) {
    let before = cpu();
    let start = Instant::now();
    transfer();
    let elapsed = start.elapsed();
    row.times.push(elapsed);
    row.cpu.push(cpu() - before);
}

fn main() {
    if std::env::var_os(CHILD).is_none() {
        let me = std::env::current_exe().expect("this benchmark's path");
        let status = std::process::Command::new(me)
            .env(CHILD, "1")
            .env("TMPDIR", "/dev/shm")
            .status()
            .expect("re-run on tmpfs");
        assert!(status.success(), "{status}");
        return;
    }
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let source_dir = tempfile::tempdir().expect("source dir");
    let source = source_dir.path().join("upload.bin");
    std::fs::write(&source, &data).expect("source file");

    let vsftpd = Vsftpd::builder().start().expect("vsftpd");
    let server = |driver| {
        let server = OwnServer::builder()
            .credentials("bench", "bench password")
            .without_implicit()
            .driver(driver)
            .storage(|fs| Arc::new(fs.sync_uploads(false)))
            .start();
        std::fs::write(server.root().join("big.bin"), &data).expect("write");
        server
    };
    let (tokio_server, std_server) = (server(Driver::Tokio), server(Driver::Std));
    std::fs::write(vsftpd.endpoint().root_dir.join("big.bin"), &data).expect("write");
    drop(data);
    // vsftpd's sessions are processes that end with the transfer: the machine's busy time
    // minus this process's (with curl, its child) is theirs on a quiet machine.
    let vsftpd_cpu = || busy_cpu_time() - cpu_time(None);

    let mut rows = [
        Row::new("curl <- ftps-tokio server"),
        Row::new("curl <- ftps-std server"),
        Row::new("curl <- vsftpd"),
        Row::new("curl -> ftps-tokio server"),
        Row::new("curl -> ftps-std server"),
        Row::new("curl -> vsftpd"),
        Row::new("ftps-tokio client <- vsftpd"),
        Row::new("ftps-std client <- vsftpd"),
        Row::new("ftps-tokio client -> vsftpd"),
        Row::new("ftps-std client -> vsftpd"),
    ];
    let (ours_tokio, ours_std) = (tokio_server.endpoint(false), std_server.endpoint(false));
    let theirs = vsftpd.endpoint();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for round in 0..ROUNDS {
        let down = |endpoint: &Endpoint| {
            let _ = timed_curl_download(endpoint, "big.bin", SIZE);
        };
        let up = |endpoint: &Endpoint| {
            let _ = timed_curl_upload(endpoint, &source, "up.bin");
        };
        measure(&mut rows[0], own_cpu_time, || down(&ours_tokio));
        measure(&mut rows[1], own_cpu_time, || down(&ours_std));
        measure(&mut rows[2], vsftpd_cpu, || down(theirs));
        measure(&mut rows[3], own_cpu_time, || up(&ours_tokio));
        measure(&mut rows[4], own_cpu_time, || up(&ours_std));
        measure(&mut rows[5], vsftpd_cpu, || up(theirs));
        measure(&mut rows[6], own_cpu_time, || {
            runtime.block_on(async_download(theirs));
        });
        measure(&mut rows[7], own_cpu_time, || std_download(theirs));
        measure(&mut rows[8], own_cpu_time, || {
            runtime.block_on(async_upload(theirs, &source));
        });
        measure(&mut rows[9], own_cpu_time, || std_upload(theirs, &source));
        for row in &rows {
            println!(
                "round {round}: {:30} {:7.1} MB/s  CPU {:.2} s",
                row.name,
                megabytes_per_second(SIZE, row.times[round]),
                row.cpu[round].as_secs_f64()
            );
        }
    }
    let gib = SIZE as f64 / f64::from(1u32 << 30);
    println!("medians of {ROUNDS} x 512 MiB PROT P transfers (tmpfs, TLS 1.3)");
    for row in &mut rows {
        let t = median(&mut row.times);
        let c = median(&mut row.cpu);
        println!(
            "  {:30} {:7.1} MB/s  {:.2} CPU s/GiB",
            row.name,
            megabytes_per_second(SIZE, t),
            c.as_secs_f64() / gib
        );
    }
}

async fn async_download(endpoint: &Endpoint) {
    let mut client = ftps_tokio::client::Client::connect(client_options(endpoint, EPSV))
        .await
        .expect("connect");
    client
        .login(&endpoint.user, &endpoint.password)
        .await
        .expect("login");
    let summary = client
        .retrieve("big.bin", 0, &mut tokio::io::sink())
        .await
        .expect("download");
    assert_eq!(summary.bytes, SIZE as u64);
    client.quit().await.expect("quit");
}

fn std_download(endpoint: &Endpoint) {
    let mut client = ftps_std::Client::connect(client_options(endpoint, EPSV)).expect("connect");
    client
        .login(&endpoint.user, &endpoint.password)
        .expect("login");
    let summary = client
        .retrieve("big.bin", 0, &mut std::io::sink())
        .expect("download");
    assert_eq!(summary.bytes, SIZE as u64);
    client.quit().expect("quit");
}

async fn async_upload(endpoint: &Endpoint, source: &Path) {
    let mut client = ftps_tokio::client::Client::connect(client_options(endpoint, EPSV))
        .await
        .expect("connect");
    client
        .login(&endpoint.user, &endpoint.password)
        .await
        .expect("login");
    let mut file = tokio::fs::File::open(source).await.expect("source");
    let summary = client.store("up.bin", &mut file).await.expect("upload");
    assert_eq!(summary.bytes, SIZE as u64);
    client.quit().await.expect("quit");
}

fn std_upload(endpoint: &Endpoint, source: &Path) {
    let mut client = ftps_std::Client::connect(client_options(endpoint, EPSV)).expect("connect");
    client
        .login(&endpoint.user, &endpoint.password)
        .expect("login");
    let mut file = std::fs::File::open(source).expect("source");
    let summary = client.store("up.bin", &mut file).expect("upload");
    assert_eq!(summary.bytes, SIZE as u64);
    client.quit().expect("quit");
}
