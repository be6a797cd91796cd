//! Building and running the C programs of `bindings/c` in tests: libftps is built (`cargo
//! test` alone builds only the rlib) and installed into a prefix in the target directory with
//! the Makefile (header, libraries, pkg-config file), each program is
//! compiled with `cc -std=c11 -Wall -Wextra -Werror` against that installation, as a user
//! would, in three flavours: plain, under valgrind memcheck, and with AddressSanitizer.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How a C program is built and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Optimised (`-O2`), run directly.
    Plain,
    /// Debug info (`-O1 -g`), run under `valgrind --tool=memcheck --leak-check=full
    /// --error-exitcode=1`.
    Valgrind,
    /// `-fsanitize=address,undefined` (LeakSanitizer included), run directly.
    Asan,
}

/// The crate directory (`bindings/c`).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo profile directory this test binary was built into (`target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Builds libftps's static and shared libraries for this test binary's profile. `cargo test`
/// builds only the rlib its test binaries link, so `libftps.a` may be missing or older than
/// the code under test; this `cargo build` makes it current (a no-op when it is).
fn build_library(profile: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--lib", "-p", "ftps-capi"])
        .current_dir(crate_dir())
        .env("CARGO_TARGET_DIR", profile.parent().unwrap());
    match profile.file_name().unwrap().to_str().unwrap() {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build -p ftps-capi failed");
}

/// The installation prefix (made once per test binary, inside the target directory so that
/// nothing is left in /tmp: `target/<profile>/ftps-capi-prefix`).
pub fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let profile = profile_dir();
        let dir = profile.join("ftps-capi-prefix");
        build_library(&profile);
        let lib = profile.join("libftps.a");
        assert!(lib.exists(), "{} is missing", lib.display());
        let status = Command::new("make")
            .arg("-C")
            .arg(crate_dir())
            .arg("install")
            .arg(format!("PREFIX={}", dir.display()))
            .arg(format!(
                "PROFILE={}",
                profile.file_name().unwrap().to_str().unwrap()
            ))
            .arg(format!(
                "CARGO_TARGET_DIR={}",
                profile.parent().unwrap().display()
            ))
            .status()
            .expect("make runs");
        assert!(status.success(), "make install failed");
        dir
    })
}

/// `pkg-config --cflags --libs --static ftps` of the temporary installation.
fn pkg_config() -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "--libs", "--static", "ftps"])
        .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig"))
        .output()
        .expect("pkg-config runs");
    assert!(out.status.success(), "pkg-config: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// [`compile`] once per `(name, flavour)` in this test binary: tests running in parallel
/// share the executable instead of racing to write it.
pub fn compiled(name: &str, sources: &[&str], flavour: Flavour) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<(String, Flavour), PathBuf>>> = Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .get_or_insert_with(HashMap::new)
        .entry((name.to_owned(), flavour))
        .or_insert_with(|| compile(name, sources, flavour))
        .clone()
}

/// Compiles the C `sources` (paths relative to `bindings/c`) into an executable for
/// `flavour`, linked statically against the installed libftps; returns its path.
pub fn compile(name: &str, sources: &[&str], flavour: Flavour) -> PathBuf {
    let out_dir = prefix().join("bin");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(format!("{name}-{flavour:?}").to_lowercase());
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-D_POSIX_C_SOURCE=200809L",
    ]);
    match flavour {
        Flavour::Plain => cc.arg("-O2"),
        Flavour::Valgrind => cc.args(["-O1", "-g"]),
        Flavour::Asan => cc.args([
            "-O1",
            "-g",
            "-fno-omit-frame-pointer",
            "-fsanitize=address,undefined",
        ]),
    };
    for source in sources {
        cc.arg(crate_dir().join(source));
    }
    // Static: the program needs no LD_LIBRARY_PATH, and valgrind sees the whole program.
    cc.arg("-o").arg(&exe);
    let flags = pkg_config();
    for flag in &flags {
        if flag == "-lftps" {
            cc.arg(prefix().join("lib/libftps.a"));
        } else {
            cc.arg(flag);
        }
    }
    let out = cc.output().expect("cc runs");
    assert!(
        out.status.success(),
        "cc failed for {name}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// A command that runs `exe` in `flavour` (under valgrind for [`Flavour::Valgrind`]).
pub fn command(exe: &Path, flavour: Flavour) -> Command {
    match flavour {
        Flavour::Valgrind => {
            let mut cmd = Command::new("valgrind");
            cmd.args([
                "--tool=memcheck",
                "--leak-check=full",
                "--show-leak-kinds=definite,indirect,possible",
                "--errors-for-leak-kinds=definite,indirect,possible",
                "--error-exitcode=1",
                "-q",
            ])
            // ring's AES-GCM assembly: a false positive of memcheck (see the file).
            .arg(format!(
                "--suppressions={}",
                crate_dir().join("tests/valgrind.supp").display()
            ))
            .arg(exe);
            cmd
        }
        Flavour::Asan => {
            let mut cmd = Command::new(exe);
            cmd.env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=1")
                .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1");
            cmd
        }
        Flavour::Plain => Command::new(exe),
    }
}

/// Runs `cmd` with its output captured, killing it when it runs longer than `limit` (the
/// output then ends with a note, and the status is the killed process's).
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed child");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = stderr.join().unwrap();
    if timed_out {
        stderr.extend_from_slice(format!("\n[killed after {limit:?}]\n").as_bytes());
    }
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr,
    }
}

/// Asserts that a run succeeded, showing its output when not.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
