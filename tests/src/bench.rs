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

/// Uploads the local file `local` to `path` on `endpoint` with `curl --ssl-reqd -T` and returns
/// the wall time of the whole curl run. Panics unless curl succeeded.
pub fn timed_curl_upload(endpoint: &Endpoint, local: &std::path::Path, path: &str) -> Duration {
    let local = local.to_str().expect("UTF-8 path");
    let start = Instant::now();
    let output = Curl::new(endpoint)
        .run(&endpoint.url(path), &["--upload-file", local])
        .expect("curl");
    let elapsed = start.elapsed();
    assert!(output.status.success(), "curl failed: {output:?}");
    elapsed
}

/// CPU time (user + system) a process used so far, with its waited-for children (a server
/// that forks a process per session, as vsftpd does, accounts the sessions there once it
/// reaped them): fields 14–17 of `/proc/PID/stat`, in clock ticks of 10 ms (Linux's
/// `USER_HZ`). `None` for `self` reads this process — with its children, so a curl this
/// process ran and waited for is counted: use [`own_cpu_time`] for this process's threads
/// alone (an in-process server).
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    stat_ticks(&path, 4)
}

/// CPU time the whole machine spent busy so far (user, nice, system, irq, softirq and steal
/// of the `cpu` line of `/proc/stat`, all cores). Minus [`cpu_time`]`(None)` over the same
/// span it is what every other process used: on an otherwise quiet machine, an out-of-process
/// server's CPU including session processes that exited without being reaped into their
/// parent's counters (vsftpd's privilege-separated sessions).
pub fn busy_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let line = stat.lines().next().expect("the cpu line");
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().expect("a number"))
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Duration::from_millis(busy * 10)
}

/// CPU time (user + system) of this process's own threads (fields 14–15 of
/// `/proc/self/stat`), without the children it waited for (curl).
pub fn own_cpu_time() -> Duration {
    stat_ticks("/proc/self/stat", 2)
}

/// The sum of the first `fields` of utime, stime, cutime, cstime in `path`.
fn stat_ticks(path: &str, fields: usize) -> Duration {
    let stat = std::fs::read_to_string(path).expect("read /proc stat");
    // The command name (field 2) may hold spaces: fields are counted after its ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11) // state .. cmajflt: fields 3–13
        .take(fields) // utime stime cutime cstime: fields 14–17
        .map(|f| f.parse().expect("a number"))
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}
