//! # `ftps` — an FTPS client for the command line
//!
//! ```text
//! ftps ls    ftp://user@host/dir/            long listing (MLSD when offered, else LIST)
//! ftps get   ftp://host/file [DEST]          download (-C resume, -r directory)
//! ftps put   FILE... ftp://host/dir/         upload (-r directory, --append)
//! ftps rm | mkdir | rmdir | size  URL
//! ftps mv    URL NEWNAME
//! ftps quote URL 'RAW COMMAND'
//!
//! ftps serve [DIR]                           an FTPS server for DIR (default: .), no set-up needed
//! ftps hash-password [--user NAME]           a password hash for `serve --users FILE`
//! ftps demo                                  a server and a client talking, step by step
//! ```
//!
//! `ftps serve` listens on 127.0.0.1:2121 (explicit FTPS) and serves DIR read-only (`--write`
//! allows uploads). Without `--cert/--key` it makes a self-signed certificate for `localhost`,
//! `127.0.0.1` and `::1`, saves it to a PEM file (`--cert-out`) and prints its SHA-256
//! fingerprint and the `--cacert` command line that trusts it. Logins: user `ftps` with a
//! random password printed at start, `--user NAME:PASSWORD`, or `--users FILE` with
//! `NAME:ARGON2-HASH` lines made by `ftps hash-password`. One line per session event goes to
//! stderr; passwords never do. Other options: `--listen ADDR`, `--implicit-listen ADDR`,
//! `--passive-ports A-B`, `--advertise-ip IPv4`, `--allow-ccc`, `--reuse required|optional|off`,
//! `--anonymous`, `--client-ca FILE` (a client certificate from that CA is required).
//!
//! `ftps demo` starts a server on a free 127.0.0.1 port with a fresh certificate and a temp
//! directory, then uploads, lists, downloads and resumes a file with this crate's client,
//! printing each step (TLS version and cipher, data-session resumption, speed) and a verdict.
//!
//! `ftp://` and `ftpes://` mean explicit FTPS (`AUTH TLS` is required: there is never a silent
//! fall-back to plaintext), `ftps://` implicit FTPS (port 990). Credentials come from the URL
//! (`user:password@`, percent-encoded), `--user`, a prompt on a terminal, or `--netrc`.
//!
//! ## Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | usage: bad command line, URL or option |
//! | 2 | connection or TLS failure (DNS, TCP, certificate, AUTH TLS refused, timeout, connection lost) |
//! | 3 | the server refused the login |
//! | 4 | the server refused a file or directory operation (550 and the like) |
//! | 5 | a transfer failed (data connection, truncation, 425/426) |
//! | 6 | a local file could not be read or written |
#![forbid(unsafe_code)]

mod commands;
mod demo;
mod errors;
mod listing;
mod netrc;
mod serve;
mod session_log;
mod url;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::errors::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  usage: bad command line, URL or option
  2  connection or TLS failure (DNS, TCP, certificate, AUTH TLS refused, timeout)
  3  the server refused the login
  4  the server refused a file or directory operation (550 and the like)
  5  a transfer failed (data connection, truncation, 425/426)
  6  a local file could not be read or written

URLs: ftp://[user[:password]@]host[:port]/path and ftpes:// are explicit FTPS (AUTH TLS is
required, never a plaintext fall-back); ftps:// is implicit FTPS (default port 990). The path
is relative to the login directory (ftp://host//abs for an absolute path).";

/// An FTPS client and server: TLS on the control and data connections, always.
#[derive(Debug, Parser)]
#[command(name = "ftps", version, after_help = EXIT_CODES)]
struct Invocation {
    #[command(flatten)]
    options: GlobalOptions,
    #[command(subcommand)]
    command: AnyCommand,
}

/// A client command line: what the client subcommands run with.
#[derive(Debug)]
struct Cli {
    options: GlobalOptions,
    command: Command,
}

/// Every subcommand: the client's, then the server-side tools.
#[derive(Debug, Subcommand)]
enum AnyCommand {
    #[command(flatten)]
    Client(Command),
    #[command(flatten)]
    Server(ServerCommand),
}

/// The server-side tools. They are parsed on their own (see [`server_tool_arguments`]) so the
/// client's global options (--cacert, --prot, --active, ...) neither clutter their help nor
/// are silently accepted; they have their own --user, --cert and --key.
#[derive(Debug, Parser)]
#[command(name = "ftps", version)]
struct ServerTools {
    #[command(subcommand)]
    command: ServerCommand,
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Serve a directory over FTPS (explicit, 127.0.0.1:2121), with no set-up needed.
    Serve(Box<serve::ServeArgs>),
    /// Print a password hash for `serve --users FILE` (NAME:HASH with --user NAME).
    HashPassword(serve::HashPasswordArgs),
    /// Start a server and a client in this process and show each FTPS step.
    Demo(demo::DemoArgs),
}

impl ServerCommand {
    const NAMES: [&str; 3] = ["serve", "hash-password", "demo"];

    fn name(&self) -> &'static str {
        match self {
            Self::Serve(_) => Self::NAMES[0],
            Self::HashPassword(_) => Self::NAMES[1],
            Self::Demo(_) => Self::NAMES[2],
        }
    }

    fn run(self, interactive: bool) -> Result<(), errors::CliError> {
        match self {
            Self::Serve(args) => serve::run(&args),
            Self::HashPassword(args) => serve::hash_password_line(&args),
            Self::Demo(args) => demo::run(&args, interactive),
        }
    }
}

/// The arguments when they name a server-side tool (`ftps serve ...`, `ftps help demo`).
fn server_tool_arguments() -> Option<Vec<OsString>> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let named = |i: usize| {
        args.get(i)
            .and_then(|a| a.to_str())
            .is_some_and(|a| ServerCommand::NAMES.contains(&a))
    };
    let help = args.get(1).is_some_and(|a| a == "help");
    (named(1) || (help && named(2))).then_some(args)
}

/// Parses the command line, or prints the usage error (or help) and exits.
fn parse_or_exit<T: Parser>(args: Option<Vec<OsString>>) -> T {
    let parsed = match args {
        Some(args) => T::try_parse_from(args),
        None => T::try_parse(),
    };
    match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let code = if error.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok // --help, --version
            };
            // Printing help can fail only on a closed stdout, and then there is nobody to tell.
            let _ = error.print();
            std::process::exit(code as i32);
        }
    }
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
struct GlobalOptions {
    /// User name and password (USER[:PASSWORD]); without a password one is prompted for.
    #[arg(short, long, global = true, value_name = "USER[:PASSWORD]")]
    user: Option<String>,
    /// Read credentials from ~/.netrc when the URL and --user give none.
    #[arg(long, global = true)]
    netrc: bool,
    /// Read credentials from this netrc file (implies --netrc).
    #[arg(long, global = true, value_name = "FILE")]
    netrc_file: Option<PathBuf>,
    /// Trust the CA certificates in this PEM file (instead of the built-in Mozilla roots).
    #[arg(long, global = true, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Do not verify the server certificate at all (DANGEROUS: anyone in the path can read
    /// and change everything).
    #[arg(short = 'k', long, global = true)]
    insecure: bool,
    /// Client certificate chain (PEM), for servers that ask for one.
    #[arg(long, global = true, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM); default: read from the --cert file.
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Active mode: the server connects to us (EPRT/PORT) instead of passive mode.
    #[arg(long, global = true)]
    active: bool,
    /// Use PASV/PORT instead of EPSV/EPRT.
    #[arg(long, global = true)]
    disable_epsv: bool,
    /// Connect to the address in the server's 227 reply instead of the control peer's.
    #[arg(long, global = true)]
    trust_pasv_ip: bool,
    /// Data-connection protection: private (PROT P, default) or clear (PROT C, explicit opt-in).
    #[arg(long, global = true, value_enum, default_value_t = Prot::Private)]
    prot: Prot,
    /// Clear the control channel after login (CCC); data connections keep their protection.
    #[arg(long, global = true)]
    ccc: bool,
    /// Timeout in seconds for connecting, for each reply, and for an idle data connection.
    #[arg(long, global = true, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// Highest TLS version to offer (TLS 1.2 is always the minimum).
    #[arg(long, global = true, value_enum, value_name = "VERSION")]
    tls_max: Option<TlsMax>,
    /// Print the control dialogue (password hidden) and TLS details (version, cipher,
    /// resumption per data connection) to stderr.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// No progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Prot {
    /// PROT P: data connections inside TLS.
    Private,
    /// PROT C: data connections in clear.
    Clear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TlsMax {
    /// TLS 1.2.
    #[value(name = "1.2")]
    V1_2,
    /// TLS 1.3.
    #[value(name = "1.3")]
    V1_3,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List a directory, like `ls -l`.
    Ls {
        /// ftp://host/dir/
        url: String,
    },
    /// Download a file (or, with -r, a directory).
    Get {
        /// ftp://host/path
        url: String,
        /// Local file or directory ('-' for standard output); default: the remote name.
        dest: Option<PathBuf>,
        /// Resume: continue from the size of the local file.
        #[arg(short = 'C', long = "continue")]
        resume: bool,
        /// Download a directory tree.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Upload files (or, with -r, directories): FILE... URL.
    Put {
        /// Local files, then the remote URL (a directory URL ends with '/').
        #[arg(required = true, num_args = 2.., value_name = "FILE... URL")]
        args: Vec<String>,
        /// Upload directory trees.
        #[arg(short, long)]
        recursive: bool,
        /// Append to the remote file (APPE) instead of replacing it.
        #[arg(long, conflicts_with = "recursive")]
        append: bool,
    },
    /// Delete a file.
    Rm {
        /// ftp://host/path
        url: String,
    },
    /// Create a directory.
    Mkdir {
        /// ftp://host/path
        url: String,
    },
    /// Remove an empty directory.
    Rmdir {
        /// ftp://host/path
        url: String,
    },
    /// Rename a file or directory. A NEWNAME without '/' stays in the same directory.
    Mv {
        /// ftp://host/path
        url: String,
        /// The new name.
        new_name: String,
    },
    /// Print the size of a file in bytes.
    Size {
        /// ftp://host/path
        url: String,
    },
    /// Send a raw command (after login, in the URL's directory) and print the reply.
    Quote {
        /// ftp://host/[dir]
        url: String,
        /// The command, e.g. 'SITE CHMOD 644 file' or 'STAT'.
        command: String,
    },
}

fn main() {
    let interactive = std::io::stderr().is_terminal();
    let result = if let Some(args) = server_tool_arguments() {
        parse_or_exit::<ServerTools>(Some(args))
            .command
            .run(interactive)
    } else {
        let invocation = parse_or_exit::<Invocation>(None);
        match invocation.command {
            AnyCommand::Client(command) => commands::run(
                Cli {
                    options: invocation.options,
                    command,
                },
                interactive,
            ),
            // Only reached with options before the tool's name (`ftps -q demo`): those are
            // the client's options, which the server-side tools do not take.
            AnyCommand::Server(command) => Err(errors::CliError::usage(format!(
                "the options of `ftps {}` go after its name",
                command.name()
            ))),
        }
    };
    match result {
        Ok(()) => {}
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(error.code as i32);
        }
    }
}

#[cfg(test)]
mod readme_tests {
    use super::*;

    /// Every `ftps …` command line in the README's `sh` blocks (directly or through
    /// `cargo run … -p ftps-cli -- …`), as arguments; comments and redirections dropped.
    fn readme_command_lines() -> Vec<(String, Vec<String>)> {
        let readme = include_str!("../../../README.md");
        let mut commands = Vec::new();
        let mut in_sh = false;
        for line in readme.lines() {
            if line.starts_with("```") {
                in_sh = line == "```sh";
                continue;
            }
            if !in_sh {
                continue;
            }
            let code = line.split(" #").next().unwrap_or_default().trim();
            let rest = if let Some(rest) = code.strip_prefix("ftps ") {
                rest
            } else if let Some((_, rest)) = code
                .strip_prefix("cargo run ")
                .filter(|c| c.contains("-p ftps-cli"))
                .and_then(|c| c.split_once(" -- "))
            {
                rest
            } else {
                continue;
            };
            let words = shlex::split(rest).unwrap_or_else(|| panic!("bad quoting: {line}"));
            let mut args = vec!["ftps".to_owned()];
            args.extend(words.into_iter().take_while(|w| !w.starts_with('>')));
            commands.push((line.to_owned(), args));
        }
        commands
    }

    // The README is kept true: each command it shows parses with this binary's own parser
    // (their behaviour is exercised by tests/cli.rs and tests/serve.rs).
    #[test]
    fn every_readme_command_line_parses() {
        let commands = readme_command_lines();
        assert!(commands.len() >= 10, "found only {commands:?}");
        for (line, args) in &commands {
            let server_tool = args
                .get(1)
                .is_some_and(|a| ServerCommand::NAMES.contains(&a.as_str()));
            let parsed = if server_tool {
                ServerTools::try_parse_from(args).map(|_| ())
            } else {
                Invocation::try_parse_from(args).map(|_| ())
            };
            if let Err(error) = parsed {
                panic!("README line does not parse: {line}\n{error}");
            }
        }
    }

    #[test]
    fn a_wrong_option_in_a_readme_line_would_be_caught() {
        assert!(
            Invocation::try_parse_from(["ftps", "ls", "--no-such-option", "ftp://h/"]).is_err()
        );
        assert!(ServerTools::try_parse_from(["ftps", "serve", "--reuse", "sometimes"]).is_err());
    }
}
