//! Five 64 MiB PROT P downloads from a local vsftpd (explicit FTPS, TLS 1.3, session reuse
//! required) by this project's blocking client, interleaved with five by `curl --ssl-reqd`
//! fetching the same file, in the same run. Each timing covers connect, TLS, login and the
//! transfer. Prints every run and the medians.
//!
//! `cargo bench -p ftps-tests --bench download_vs_curl`

use ftps_tests::own_client::{EPSV, client_options};
use std::time::{Duration, Instant};

use ftps_std::Client;
use ftps_tests::bench::{median, megabytes_per_second, timed_curl_download};
use ftps_tests::peers::Vsftpd;

const SIZE: usize = 64 << 20;
const ROUNDS: usize = 5;

fn main() {
    let server = Vsftpd::builder().start().expect("vsftpd");
    let endpoint = server.endpoint();
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(endpoint.root_dir.join("big.bin"), &data).expect("write test file");

    let ours = || {
        let start = Instant::now();
        let mut client = Client::connect(client_options(endpoint, EPSV)).expect("connect");
        client
            .login(&endpoint.user, &endpoint.password)
            .expect("login");
        let mut sink = CountingSink(0);
        let summary = client.retrieve("big.bin", 0, &mut sink).expect("RETR");
        client.quit().expect("QUIT");
        let elapsed = start.elapsed();
        assert_eq!((summary.bytes, sink.0), (SIZE as u64, SIZE as u64));
        assert_eq!(summary.resumed, Some(true));
        elapsed
    };
    let curl = || timed_curl_download(endpoint, "big.bin", SIZE);

    let (mut ftps, mut reference) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let a = ours();
        let b = curl();
        println!(
            "round {round}: ftps-std {:7.1} MB/s   curl {:7.1} MB/s",
            mbps(a),
            mbps(b)
        );
        ftps.push(a);
        reference.push(b);
    }
    let (a, b) = (median(&mut ftps), median(&mut reference));
    println!(
        "median of {ROUNDS} x 64 MiB PROT P downloads from vsftpd: ftps-std {:.1} MB/s, curl {:.1} MB/s, ratio {:.2}",
        mbps(a),
        mbps(b),
        b.as_secs_f64() / a.as_secs_f64()
    );
}

struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn mbps(elapsed: Duration) -> f64 {
    megabytes_per_second(SIZE, elapsed)
}
