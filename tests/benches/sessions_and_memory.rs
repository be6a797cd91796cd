//! Session cost of this project's two servers (the async `ftps_tokio::Server` and the
//! blocking `ftps_std::server::Server`) side by side with a local vsftpd, in one run:
//!
//! 1. sessions per second at 16 concurrent clients, each session connect, `AUTH TLS`, login
//!    (+ `PBSZ`/`PROT`), `PWD`, `QUIT` (this project's blocking client); three rounds of
//!    `BENCH_SECONDS` (default 5) per server, interleaved, median;
//! 2. memory per idle logged-in TLS session with `BENCH_SESSIONS` (default 1000) sessions
//!    open at once. vsftpd: the sum of the PSS of its processes (one or two per session)
//!    after minus before. Our servers run in this process, with the clients: their cost is
//!    this process's RSS growth minus what the same number of clients alone cost (measured
//!    against vsftpd, whose memory is elsewhere).
//!
//! `cargo bench -p ftps-tests --bench sessions_and_memory` (`ulimit -n` must allow two
//! descriptors per session for our in-process servers).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ftps_std::{Client, ClientOptions, ClientTimeouts, Trust};
use ftps_tests::own_server::{Driver, OwnServer};
use ftps_tests::peers::{Endpoint, Vsftpd};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

const CLIENTS: usize = 16;
const ROUNDS: usize = 3;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Client options for `endpoint` (explicit FTPS, its CA trusted).
fn options(endpoint: &Endpoint) -> ClientOptions {
    let mut options = ClientOptions::new(endpoint.addr.ip().to_string());
    options.port = Some(endpoint.addr.port());
    let ca = CertificateDer::from_pem_slice(endpoint.ca_cert_pem.as_bytes()).expect("CA");
    options.trust = Trust::Certificates(vec![ca]);
    options.timeouts = ClientTimeouts {
        connect: Duration::from_secs(10),
        reply: Duration::from_secs(30),
        data_idle: Duration::from_secs(30),
    };
    options
}

fn login(endpoint: &Endpoint) -> Client {
    let mut client = Client::connect(options(endpoint)).expect("connect");
    client
        .login(&endpoint.user, &endpoint.password)
        .expect("login");
    client
}

/// Complete sessions per second by [`CLIENTS`] threads during `duration`.
fn sessions_per_second(endpoint: &Endpoint, duration: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, done, endpoint) = (Arc::clone(&stop), Arc::clone(&done), endpoint.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut client = login(&endpoint);
                    client.pwd().expect("pwd");
                    client.quit().expect("quit");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("client thread");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// A `/proc/<pid>/...` value in KiB: `field` of `file`.
fn proc_kib(pid: u32, file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The PSS of process `root` and all its descendants, in KiB, and how many there are
/// (vsftpd forks one or two processes per session, in sessions of their own).
fn tree_pss_kib(root: u32) -> (u64, usize) {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|v| v.parse().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    let total = tree
        .iter()
        .map(|pid| proc_kib(*pid, "smaps_rollup", "Pss:"))
        .sum();
    (total, tree.len())
}

/// Opens `sessions` logged-in sessions, [`CLIENTS`] at a time (10 000 logins one after
/// another would take most of an hour of argon2 and yescrypt).
fn open_sessions(endpoint: &Endpoint, sessions: usize) -> Vec<Client> {
    std::thread::scope(|scope| {
        let openers: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let share = sessions / CLIENTS + usize::from(i < sessions % CLIENTS);
                scope.spawn(move || (0..share).map(|_| login(endpoint)).collect::<Vec<_>>())
            })
            .collect();
        openers
            .into_iter()
            .flat_map(|opener| opener.join().expect("opener thread"))
            .collect()
    })
}

fn own_server(driver: Driver, sessions: usize) -> OwnServer {
    OwnServer::builder()
        .credentials("bench", "bench-password")
        .without_implicit()
        .driver(driver)
        .limits(|limits| {
            limits.max_sessions = sessions + CLIENTS + 8;
            limits.max_sessions_per_ip = sessions + CLIENTS + 8;
        })
        .start()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Child mode: `--serve DRIVER SESSIONS` runs one server and prints its endpoint
/// (`ADDR USER PASSWORD CA-PATH`) until stdin closes.
fn serve(driver: &str, sessions: usize) {
    let driver = if driver == "std" {
        Driver::Std
    } else {
        Driver::Tokio
    };
    let server = own_server(driver, sessions);
    let endpoint = server.endpoint(false);
    println!(
        "{} {} {} {}",
        endpoint.addr,
        endpoint.user,
        endpoint.password,
        endpoint.ca_cert_path.display()
    );
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
}

fn endpoint_from_line(line: &str) -> Endpoint {
    let mut words = line.split_whitespace();
    let (Some(addr), Some(user), Some(password), Some(ca)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        panic!("not an endpoint line: {line:?}");
    };
    let ca_cert_path = std::path::PathBuf::from(ca);
    Endpoint {
        addr: addr.parse().expect("address"),
        tls_mode: ftps_tests::peers::TlsMode::Explicit,
        user: user.to_owned(),
        password: password.to_owned(),
        root_dir: std::path::PathBuf::new(),
        ca_cert_pem: std::fs::read_to_string(&ca_cert_path).expect("CA file"),
        ca_cert_path,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, driver, sessions] = args.as_slice() {
        if flag == "--serve" {
            serve(driver, sessions.parse().expect("session count"));
            return;
        }
    }
    let seconds = env_number("BENCH_SECONDS", 5);
    let sessions = env_number("BENCH_SESSIONS", 1000) as usize;
    let duration = Duration::from_secs(seconds);
    println!("load average before: {}", load_average());
    let max = u32::try_from(sessions + CLIENTS + 8).unwrap_or(u32::MAX);
    let vsftpd = Vsftpd::builder().max_sessions(max).start().expect("vsftpd");
    let servers = [
        ("ftps-tokio", own_server(Driver::Tokio, sessions)),
        ("ftps-std", own_server(Driver::Std, sessions)),
    ];

    // 1. Sessions per second.
    let mut rates: Vec<(String, Vec<f64>)> = Vec::new();
    for round in 0..ROUNDS {
        let mut line = format!("round {round}:");
        for (name, server) in &servers {
            let rate = sessions_per_second(&server.endpoint(false), duration);
            line.push_str(&format!("  {name} {rate:6.1}/s"));
            push(&mut rates, name, rate);
        }
        let rate = sessions_per_second(vsftpd.endpoint(), duration);
        line.push_str(&format!("  vsftpd {rate:6.1}/s"));
        push(&mut rates, "vsftpd", rate);
        println!("{line}");
    }
    let vsftpd_rate = median_of(&rates, "vsftpd");
    for (name, _) in &rates {
        let rate = median_of(&rates, name);
        println!(
            "sessions/s at {CLIENTS} clients, median of {ROUNDS} x {seconds} s: {name} {rate:.1} ({:.2}x vsftpd)",
            rate / vsftpd_rate
        );
    }

    drop(servers);
    // 2. Memory per idle logged-in TLS session. Our servers run in child processes (this
    // binary with `--serve DRIVER`), so their memory is not mixed with the clients'.
    let warm_up = login(vsftpd.endpoint());
    let (pss_before, _) = tree_pss_kib(vsftpd.pid());
    let clients = open_sessions(vsftpd.endpoint(), sessions);
    std::thread::sleep(Duration::from_secs(1));
    let (pss_after, processes) = tree_pss_kib(vsftpd.pid());
    let vsftpd_kib = pss_after.saturating_sub(pss_before);
    drop(clients);
    drop(warm_up);
    println!(
        "{sessions} idle logged-in TLS sessions: vsftpd {:.1} KiB/session (PSS of its {processes} processes)",
        vsftpd_kib as f64 / sessions as f64,
    );
    for driver in ["tokio", "std"] {
        let mut child = std::process::Command::new(std::env::current_exe().expect("this binary"))
            .args(["--serve", driver, &sessions.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the server process");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("the server's endpoint");
        let endpoint = endpoint_from_line(&line);
        // One login first: the login pool's argon2 memory (once per server) is not per session.
        let warm_up = login(&endpoint);
        let before = proc_kib(child.id(), "status", "VmRSS:");
        let clients = open_sessions(&endpoint, sessions);
        std::thread::sleep(Duration::from_secs(1));
        let after = proc_kib(child.id(), "status", "VmRSS:");
        let server_kib = after.saturating_sub(before);
        println!(
            "{sessions} idle logged-in TLS sessions: ftps-{driver} {:.1} KiB/session (RSS {before} -> {after} KiB; {:.2}x vsftpd)",
            server_kib as f64 / sessions as f64,
            server_kib as f64 / vsftpd_kib.max(1) as f64
        );
        drop(clients);
        drop(warm_up);
        drop(child.stdin.take());
        let _ = child.wait();
    }
    println!("load average after: {}", load_average());
}

fn push(rates: &mut Vec<(String, Vec<f64>)>, name: &str, rate: f64) {
    match rates.iter_mut().find(|(n, _)| n == name) {
        Some((_, list)) => list.push(rate),
        None => rates.push((name.to_owned(), vec![rate])),
    }
}

fn median_of(rates: &[(String, Vec<f64>)], name: &str) -> f64 {
    let mut list = rates
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, l)| l.clone())
        .unwrap_or_default();
    list.sort_by(f64::total_cmp);
    list.get(list.len() / 2).copied().unwrap_or(0.0)
}
