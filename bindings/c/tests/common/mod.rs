//! Building and running the C programs of `bindings/c` in tests: libftps is installed into a
//! temporary prefix with the Makefile (header, libraries, pkg-config file), each program is
//! compiled with `cc -std=c11 -Wall -Wextra -Werror` against that installation, as a user
//! would, in three flavours: plain, under valgrind memcheck, and with AddressSanitizer.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// How a C program is built and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The temporary installation prefix (made once per test binary).
pub fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ftps-capi-prefix-{}", std::process::id()));
        let profile = profile_dir();
        let lib = profile.join("libftps.a");
        assert!(
            lib.exists(),
            "{} is missing: the test command builds ftps-capi first",
            lib.display()
        );
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
