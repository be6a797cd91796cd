//! Helpers the benchmark binaries share: a timed curl download and the statistics they print.

use std::time::{Duration, Instant};

use crate::peers::{Curl, Endpoint};

/// Downloads `path` from `endpoint` with `curl --ssl-reqd` into `/dev/null` and returns the
/// wall time of the whole curl run (connect, TLS, login, transfer). Panics unless curl
/// succeeded and reported exactly `expected_len` bytes.
pub fn timed_curl_download(endpoint: &Endpoint, path: &str, expected_len: usize) -> Duration {
    let start = Instant::now();
    let output = Curl::new(endpoint)
        .run(
            &endpoint.url(path),
            &["--output", "/dev/null", "--write-out", "%{size_download}"],
        )
        .expect("curl");
    let elapsed = start.elapsed();
    assert!(output.status.success(), "curl failed: {output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        expected_len.to_string()
    );
    elapsed
}

/// Megabytes (10^6 bytes) per second.
pub fn megabytes_per_second(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

/// The median of a non-empty set of timings (sorts them).
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
