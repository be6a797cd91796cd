//! Five 64 MiB PROT P downloads by `curl --ssl-reqd` from this project's server (the blocking
//! `ftps_std::Server` over `LocalFs`, or the async `ftps_tokio::Server` with
//! `FTPS_TEST_DRIVER=tokio`), interleaved with five from a local vsftpd (TLS 1.3,
//! `require_ssl_reuse=YES`), in the same run. Each timing is one whole curl run (connect, TLS,
//! login, transfer). Prints every run and the medians.
//!
//! `cargo bench -p ftps-tests --bench curl_from_servers`

use std::time::Duration;

use ftps_tests::bench::{median, megabytes_per_second, timed_curl_download};
use ftps_tests::own_server::{Driver, OwnServer};
use ftps_tests::peers::{Endpoint, Vsftpd};

const SIZE: usize = 64 << 20;
const ROUNDS: usize = 5;

fn main() {
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    let vsftpd = Vsftpd::builder().start().expect("vsftpd");
    std::fs::write(vsftpd.endpoint().root_dir.join("big.bin"), &data).expect("write");

    let server = OwnServer::builder()
        .credentials("bench", "bench password")
        .without_implicit()
        .start();
    std::fs::write(server.root().join("big.bin"), &data).expect("write");
    let ours = server.endpoint(false);

    let name = match Driver::from_env() {
        Driver::Std => "ftps-std server",
        Driver::Tokio => "ftps-tokio server",
    };
    let fetch = |endpoint: &Endpoint| timed_curl_download(endpoint, "big.bin", SIZE);
    let (mut from_ours, mut from_vsftpd) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let a = fetch(&ours);
        let b = fetch(vsftpd.endpoint());
        println!(
            "round {round}: {name} {:7.1} MB/s   vsftpd {:7.1} MB/s",
            mbps(a),
            mbps(b)
        );
        from_ours.push(a);
        from_vsftpd.push(b);
    }
    let (a, b) = (median(&mut from_ours), median(&mut from_vsftpd));
    println!(
        "median of {ROUNDS} x 64 MiB PROT P downloads by curl: from {name} {:.1} MB/s, from vsftpd {:.1} MB/s, ratio {:.2}",
        mbps(a),
        mbps(b),
        b.as_secs_f64() / a.as_secs_f64()
    );
    drop(server); // shuts the server down and joins its thread
}

fn mbps(elapsed: Duration) -> f64 {
    megabytes_per_second(SIZE, elapsed)
}
