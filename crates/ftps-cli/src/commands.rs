//! The subcommands: connect, log in, do one thing, say goodbye.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ftps_proto::tls::{self, TlsError};
use ftps_std::{
    Client, ClientOptions, ClientTimeouts, ClientTlsMode, DataConnectionMode, DataProtection,
    Error, HandshakeKind, ListingEntry, TlsInfo, TlsVersion, TraceDirection, Tracer,
    TransferSummary, Trust,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::errors::{CliError, ExitCode, Stage, reply_text};
use crate::listing::{self, Kind};
use crate::url::FtpUrl;
use crate::{Cli, Command, GlobalOptions, Prot, TlsMax, netrc};

/// How deep recursive transfers go (a server with a directory loop must not recurse forever).
const MAX_DEPTH: usize = 32;

/// Runs one command line.
pub(crate) fn run(cli: Cli, interactive: bool) -> Result<(), CliError> {
    let options = cli.options;
    let url_text = match &cli.command {
        Command::Ls { url }
        | Command::Get { url, .. }
        | Command::Rm { url }
        | Command::Mkdir { url }
        | Command::Rmdir { url }
        | Command::Mv { url, .. }
        | Command::Size { url }
        | Command::Quote { url, .. } => url.clone(),
        Command::Put { args, .. } => args.last().cloned().unwrap_or_default(),
    };
    let url = FtpUrl::parse(&url_text).map_err(CliError::usage)?;
    let mut session = Session::open(&url, &options, interactive)?;
    let result = session.dispatch(cli.command, &url);
    session.quit();
    result
}

/// A logged-in connection and how to report on it.
struct Session {
    client: Option<Client>,
    host: String,
    verbose: bool,
    progress: bool,
}

impl Session {
    fn open(url: &FtpUrl, options: &GlobalOptions, interactive: bool) -> Result<Self, CliError> {
        let (user, password) = credentials(url, options)?;
        let client_options = client_options(url, options)?;
        if options.insecure {
            eprintln!(
                "ftps: WARNING: --insecure: the server certificate is NOT verified; anyone on \
                 the network path can read and change this session, password included"
            );
        }
        if options.prot == Prot::Clear {
            eprintln!("ftps: warning: --prot clear: file contents and listings travel unencrypted");
        }
        let host = url.host.clone();
        let client = Client::connect(client_options)
            .map_err(|e| CliError::from_client(&e, Stage::Connect, "connect", &host))?;
        let mut session = Self {
            client: Some(client),
            host,
            verbose: options.verbose,
            // -v prints the dialogue line by line; a progress bar would be torn by it.
            progress: interactive && !options.quiet && !options.verbose,
        };
        if session.verbose {
            match session.client().tls_info() {
                Some(info) => eprintln!("* control connection: {}", describe_tls(info)),
                None => eprintln!("* control connection: NOT encrypted"),
            }
        }
        session
            .client()
            .login(&user, &password)
            .map_err(|e| session.error(&e, Stage::Login, &format!("login as {user}")))?;
        if options.ccc {
            session.client().clear_command_channel().map_err(|e| {
                let mut err = session.error(&e, Stage::Command, "CCC");
                err.code = ExitCode::Connection;
                err
            })?;
            if session.verbose {
                eprintln!("* control connection: TLS ended by CCC, commands now in clear");
            }
        }
        Ok(session)
    }

    fn client(&mut self) -> &mut Client {
        self.client.as_mut().expect("the client lives until quit")
    }

    fn error(&self, error: &Error, stage: Stage, what: &str) -> CliError {
        CliError::from_client(error, stage, what, &self.host)
    }

    fn quit(&mut self) {
        if let Some(client) = self.client.take() {
            // The work is done (or failed already); a failing QUIT changes nothing.
            let _ = client.quit();
        }
    }

    fn dispatch(&mut self, command: Command, url: &FtpUrl) -> Result<(), CliError> {
        match command {
            Command::Ls { .. } => self.ls(url),
            Command::Get {
                dest,
                resume,
                recursive,
                ..
            } => self.get(url, dest, resume, recursive),
            Command::Put {
                mut args,
                recursive,
                append,
            } => {
                args.pop();
                self.put(url, &args, recursive, append)
            }
            Command::Rm { .. } => {
                let path = required_path(url)?;
                self.client()
                    .delete(path)
                    .map_err(|e| self.error(&e, Stage::Command, &format!("rm {path}")))
            }
            Command::Mkdir { .. } => {
                let path = required_path(url)?;
                self.client()
                    .mkdir(path)
                    .map(drop)
                    .map_err(|e| self.error(&e, Stage::Command, &format!("mkdir {path}")))
            }
            Command::Rmdir { .. } => {
                let path = required_path(url)?;
                self.client()
                    .rmdir(path)
                    .map_err(|e| self.error(&e, Stage::Command, &format!("rmdir {path}")))
            }
            Command::Mv { new_name, .. } => {
                let from = required_path(url)?;
                if new_name.is_empty() || new_name.contains(['\r', '\n']) {
                    return Err(CliError::usage("invalid new name"));
                }
                let to = if new_name.contains('/') {
                    new_name
                } else {
                    join(parent(from), &new_name)
                };
                self.client()
                    .rename(from, &to)
                    .map_err(|e| self.error(&e, Stage::Command, &format!("mv {from} {to}")))
            }
            Command::Size { .. } => {
                let path = required_path(url)?;
                let size = self
                    .client()
                    .size(path)
                    .map_err(|e| self.error(&e, Stage::Command, &format!("size {path}")))?;
                println!("{size}");
                Ok(())
            }
            Command::Quote { command, .. } => self.quote(url, &command),
        }
    }

    fn ls(&mut self, url: &FtpUrl) -> Result<(), CliError> {
        let path = url.path_or_none();
        let entries = self
            .client()
            .list(path)
            .map_err(|e| self.error(&e, Stage::Transfer, &format!("ls {}", path.unwrap_or("."))))?;
        if let Some(summary) = self.client.as_ref().and_then(Client::last_transfer) {
            self.report(summary);
        }
        let mut out = std::io::stdout().lock();
        for entry in &entries {
            if let ListingEntry::Mlsd(e) = entry {
                if matches!(
                    e.kind(),
                    Some(
                        ftps_proto::codec::listing::EntryKind::Cdir
                            | ftps_proto::codec::listing::EntryKind::Pdir
                    )
                ) {
                    continue;
                }
            }
            if let Some(line) = listing::format_entry(entry) {
                writeln!(out, "{line}").map_err(|e| CliError::local(Path::new("<stdout>"), &e))?;
            }
        }
        Ok(())
    }

    fn quote(&mut self, url: &FtpUrl, command: &str) -> Result<(), CliError> {
        let command = command.trim();
        if command.is_empty() || command.contains(['\r', '\n']) {
            return Err(CliError::usage(
                "the raw command is empty or contains a line break",
            ));
        }
        if let Some(dir) = url.path_or_none() {
            self.client()
                .cwd(dir)
                .map_err(|e| self.error(&e, Stage::Command, &format!("cd {dir}")))?;
        }
        let (verb, argument) = match command.split_once(' ') {
            Some((verb, argument)) => (verb, Some(argument.trim_start())),
            None => (command, None),
        };
        let reply = self
            .client()
            .raw(verb, argument)
            .map_err(|e| self.error(&e, Stage::Command, &format!("quote {verb}")))?;
        let code = reply.code.get();
        let last = reply.lines.len().saturating_sub(1);
        for (i, line) in reply.lines.iter().enumerate() {
            let text = String::from_utf8_lossy(line);
            match (i, i == last) {
                (0, true) => println!("{code} {text}"),
                (0, false) => println!("{code}-{text}"),
                (_, false) => println!("{text}"),
                (_, true) => println!("{code} {text}"),
            }
        }
        Ok(())
    }

    fn get(
        &mut self,
        url: &FtpUrl,
        dest: Option<PathBuf>,
        resume: bool,
        recursive: bool,
    ) -> Result<(), CliError> {
        let remote = url.path.clone();
        let name = url.file_name();
        if recursive {
            let local = match (dest, name) {
                (Some(dest), _) => dest,
                (None, Some(name)) => PathBuf::from(name),
                (None, None) => {
                    return Err(CliError::usage(
                        "get -r of the login directory needs a destination directory",
                    ));
                }
            };
            return self.get_tree(&remote, &local, resume, 0);
        }
        let name = name.ok_or_else(|| CliError::usage("the URL names no file"))?;
        let local = match dest {
            Some(dest) if dest.is_dir() => dest.join(name),
            Some(dest) => dest,
            None => PathBuf::from(name),
        };
        self.get_file(&remote, &local, resume)
    }

    fn get_tree(
        &mut self,
        remote: &str,
        local: &Path,
        resume: bool,
        depth: usize,
    ) -> Result<(), CliError> {
        if depth > MAX_DEPTH {
            return Err(CliError::new(
                ExitCode::RemoteFile,
                format!("{remote}: directories nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        fs::create_dir_all(local).map_err(|e| CliError::local(local, &e))?;
        let dir = (!remote.is_empty()).then_some(remote);
        let entries = self
            .client()
            .list(dir)
            .map_err(|e| self.error(&e, Stage::Transfer, &format!("ls {remote}")))?;
        for entry in &entries {
            let Some((raw_name, kind)) = listing::name_and_kind(entry) else {
                continue;
            };
            let Some(name) = listing::safe_component(raw_name) else {
                if raw_name != b"." && raw_name != b".." {
                    eprintln!(
                        "ftps: skipping unsafe remote name {:?}",
                        String::from_utf8_lossy(raw_name)
                    );
                }
                continue;
            };
            let child = join(remote, name);
            match kind {
                Kind::File => self.get_file(&child, &local.join(name), resume)?,
                Kind::Dir => self.get_tree(&child, &local.join(name), resume, depth + 1)?,
                Kind::Other => {
                    if self.verbose {
                        eprintln!("* skipping {child} (not a regular file or directory)");
                    }
                }
            }
        }
        Ok(())
    }

    fn get_file(&mut self, remote: &str, local: &Path, resume: bool) -> Result<(), CliError> {
        let what = format!("get {remote}");
        if local == Path::new("-") {
            let mut out = std::io::stdout().lock();
            let summary = self
                .client()
                .retrieve(remote, 0, &mut out)
                .map_err(|e| self.error(&e, Stage::Transfer, &what))?;
            self.report(&summary);
            return out.flush().map_err(|e| CliError::local(local, &e));
        }
        let offset = if resume {
            match fs::metadata(local) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(CliError::local(local, &e)),
            }
        } else {
            0
        };
        let total = if self.progress || offset > 0 {
            self.client().size(remote).ok()
        } else {
            None
        };
        if offset > 0 && total == Some(offset) {
            if self.verbose {
                eprintln!("* {remote}: already complete ({offset} bytes)");
            }
            return Ok(());
        }
        // Whether this run creates the destination: only then may a failed download remove
        // it. A destination that exists (a file the user had, empty or not, a device such as
        // /dev/null, a FIFO) is opened as it is and never removed.
        let existed = fs::symlink_metadata(local).is_ok();
        let file = if offset > 0 {
            OpenOptions::new().append(true).open(local)
        } else if existed {
            OpenOptions::new().write(true).truncate(true).open(local)
        } else {
            OpenOptions::new().write(true).create_new(true).open(local)
        }
        .map_err(|e| CliError::local(local, &e))?;
        let created = !existed;
        let mut sink = BufWriter::new(file);
        let bar = self.start_progress(remote, total, offset);
        let result = self.client().retrieve(remote, offset, &mut sink);
        self.stop_progress(bar);
        let flushed = sink.flush();
        match result {
            Ok(summary) => {
                flushed.map_err(|e| CliError::local(local, &e))?;
                self.report(&summary);
                Ok(())
            }
            Err(e) => {
                // A file this run created that never got a byte is not left behind; a partial
                // one stays for -C. Anything that was there before stays, whatever it is.
                if created && fs::symlink_metadata(local).is_ok_and(|m| m.is_file() && m.len() == 0)
                {
                    let _ = fs::remove_file(local);
                }
                Err(self.error(&e, Stage::Transfer, &what))
            }
        }
    }

    fn put(
        &mut self,
        url: &FtpUrl,
        files: &[String],
        recursive: bool,
        append: bool,
    ) -> Result<(), CliError> {
        let single_target =
            files.len() == 1 && !recursive && !url.path.is_empty() && !url.path.ends_with('/');
        for file in files {
            let local = Path::new(file);
            let meta = fs::metadata(local).map_err(|e| CliError::local(local, &e))?;
            let name = local
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| CliError::usage(format!("{file}: no usable file name")))?;
            let remote = if single_target {
                url.path.clone()
            } else {
                join(&url.path, name)
            };
            if meta.is_dir() {
                if !recursive {
                    return Err(CliError::new(
                        ExitCode::LocalIo,
                        format!("{file} is a directory (use -r)"),
                    ));
                }
                self.put_tree(local, &remote, 0)?;
            } else {
                self.put_file(local, &remote, append)?;
            }
        }
        Ok(())
    }

    fn put_tree(&mut self, local: &Path, remote: &str, depth: usize) -> Result<(), CliError> {
        if depth > MAX_DEPTH {
            return Err(CliError::new(
                ExitCode::LocalIo,
                format!("{}: nested deeper than {MAX_DEPTH} levels", local.display()),
            ));
        }
        // The directory may exist already; a real problem shows up on the first upload.
        if let Err(e) = self.client().mkdir(remote) {
            if e.reply().is_none() {
                return Err(self.error(&e, Stage::Command, &format!("mkdir {remote}")));
            }
        }
        let mut children: Vec<_> = fs::read_dir(local)
            .map_err(|e| CliError::local(local, &e))?
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::local(local, &e))?;
        children.sort_by_key(fs::DirEntry::file_name);
        for child in children {
            let path = child.path();
            let Some(name) = child.file_name().to_str().map(str::to_owned) else {
                eprintln!("ftps: skipping {} (name is not UTF-8)", path.display());
                continue;
            };
            let kind = child.file_type().map_err(|e| CliError::local(&path, &e))?;
            let target = join(remote, &name);
            if kind.is_dir() {
                self.put_tree(&path, &target, depth + 1)?;
            } else if kind.is_file() {
                self.put_file(&path, &target, false)?;
            } else if self.verbose {
                eprintln!("* skipping {} (not a regular file)", path.display());
            }
        }
        Ok(())
    }

    fn put_file(&mut self, local: &Path, remote: &str, append: bool) -> Result<(), CliError> {
        let mut file = File::open(local).map_err(|e| CliError::local(local, &e))?;
        let total = file.metadata().ok().map(|m| m.len());
        let bar = self.start_progress(remote, total, 0);
        let result = if append {
            self.client().append(remote, &mut file)
        } else {
            self.client().store(remote, &mut file)
        };
        self.stop_progress(bar);
        let summary =
            result.map_err(|e| self.error(&e, Stage::Transfer, &format!("put {remote}")))?;
        self.report(&summary);
        Ok(())
    }

    fn start_progress(
        &mut self,
        label: &str,
        total: Option<u64>,
        offset: u64,
    ) -> Option<ProgressBar> {
        if !self.progress {
            return None;
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::no_length(),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
        } else {
            "{msg} {bytes} {bytes_per_sec} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        bar.set_position(offset);
        let handle = bar.clone();
        self.client().set_progress(Some(Box::new(move |moved| {
            handle.set_position(offset + moved)
        })));
        Some(bar)
    }

    fn stop_progress(&mut self, bar: Option<ProgressBar>) {
        if let Some(bar) = bar {
            self.client().set_progress(None);
            bar.finish_and_clear();
        }
    }

    fn report(&self, summary: &TransferSummary) {
        if self.verbose {
            let tls = match summary.resumed {
                Some(true) => "TLS, session resumed",
                Some(false) => "TLS, full handshake (not resumed)",
                None => "clear (no TLS)",
            };
            eprintln!(
                "* data connection: {tls}; {} bytes; {}",
                summary.bytes,
                reply_text(&summary.reply)
            );
        }
    }
}

fn describe_tls(info: &TlsInfo) -> String {
    let version = match info.version {
        TlsVersion::Tls12 => "TLS 1.2",
        TlsVersion::Tls13 => "TLS 1.3",
    };
    let kind = match info.kind {
        HandshakeKind::Full => "full handshake",
        HandshakeKind::FullWithHelloRetryRequest => "full handshake (HelloRetryRequest)",
        HandshakeKind::Resumed => "resumed",
    };
    let alpn = info.alpn.as_deref().map_or_else(
        || "none".to_owned(),
        |a| String::from_utf8_lossy(a).into_owned(),
    );
    format!(
        "{version}, {}, {kind}, ALPN {alpn}, {} certificate(s) from the server",
        info.cipher_suite_name,
        info.peer_certificates.len()
    )
}

fn required_path(url: &FtpUrl) -> Result<&str, CliError> {
    url.path_or_none()
        .ok_or_else(|| CliError::usage("the URL needs a path (ftp://host/path)"))
}

/// `dir` + `/` + `name`, where an empty `dir` is the login directory.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory part of a path (`a/b` → `a`, `/x` → `/`, `x` → ``).
fn parent(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

fn credentials(url: &FtpUrl, options: &GlobalOptions) -> Result<(String, String), CliError> {
    let (mut user, mut password) = if let Some(user) = &url.user {
        (Some(user.clone()), url.password.clone())
    } else if let Some(spec) = &options.user {
        match spec.split_once(':') {
            Some((user, password)) => (Some(user.to_owned()), Some(password.to_owned())),
            None => (Some(spec.clone()), None),
        }
    } else {
        (None, None)
    };
    if password.is_none() && (options.netrc || options.netrc_file.is_some()) {
        let path = match &options.netrc_file {
            Some(path) => Some(path.clone()),
            None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".netrc")),
        };
        let text = match path {
            Some(path) => match fs::read_to_string(&path) {
                Ok(text) => Some(text),
                // ~/.netrc is optional; a named file is not.
                Err(e)
                    if options.netrc_file.is_none() && e.kind() == std::io::ErrorKind::NotFound =>
                {
                    None
                }
                Err(e) => return Err(CliError::local(&path, &e)),
            },
            None => None,
        };
        if let Some(entry) = text.and_then(|t| netrc::lookup(&t, &url.host)) {
            if user.is_none() || user == entry.login {
                user = user.or(entry.login);
                password = entry.password;
            }
        }
    }
    let Some(user) = user else {
        return Ok((
            "anonymous".into(),
            password.unwrap_or_else(|| "anonymous@".into()),
        ));
    };
    let password = match password {
        Some(password) => password,
        None if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!("Password for {user}@{}: ", url.host))
                .map_err(|e| CliError::new(ExitCode::LocalIo, format!("password prompt: {e}")))?
        }
        None => {
            return Err(CliError::usage(format!(
                "no password for {user} (give --user {user}:PASSWORD, put it in the URL, or use --netrc)"
            )));
        }
    };
    if user.contains(['\r', '\n']) || password.contains(['\r', '\n']) {
        return Err(CliError::usage(
            "the user name or password contains a line break",
        ));
    }
    Ok((user, password))
}

fn client_options(url: &FtpUrl, options: &GlobalOptions) -> Result<ClientOptions, CliError> {
    let mut out = ClientOptions::new(url.host.clone());
    out.port = url.port;
    out.tls_mode = url.tls_mode;
    debug_assert!(matches!(
        out.tls_mode,
        ClientTlsMode::Explicit | ClientTlsMode::Implicit
    ));
    out.trust = if options.insecure {
        Trust::InsecureSkipVerification
    } else if let Some(ca) = &options.cacert {
        Trust::Certificates(read_pem(ca, tls::certificates_from_pem)?)
    } else {
        Trust::WebpkiRoots
    };
    if let Some(cert) = &options.cert {
        let chain = read_pem(cert, tls::certificates_from_pem)?;
        let key_file = options.key.as_ref().unwrap_or(cert);
        let key = read_pem(key_file, tls::private_key_from_pem)?;
        out.client_certificate = Some((chain, key));
    }
    out.data_mode = if options.active {
        DataConnectionMode::Active
    } else {
        DataConnectionMode::Passive
    };
    out.data_protection = match options.prot {
        Prot::Private => DataProtection::Private,
        Prot::Clear => DataProtection::Clear,
    };
    out.trust_pasv_address = options.trust_pasv_ip;
    out.extended_data_commands = !options.disable_epsv;
    if let Some(secs) = options.timeout {
        let t = Duration::from_secs(secs);
        out.timeouts = ClientTimeouts {
            connect: t,
            reply: t,
            data_idle: t,
        };
    }
    out.max_tls_version = match options.tls_max {
        Some(TlsMax::V1_2) => TlsVersion::Tls12,
        Some(TlsMax::V1_3) | None => TlsVersion::Tls13,
    };
    if options.verbose {
        out.trace = Some(Tracer::new(|direction, line| {
            eprintln!("{}", trace_line(direction, line));
        }));
    }
    Ok(out)
}

/// Reads the PEM file `path` and parses it with `parse` (one of the `ftps_proto::tls` PEM
/// functions): a file that cannot be read is a local I/O error, one whose contents are not
/// what is needed a usage error naming the file.
pub(crate) fn read_pem<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, TlsError>,
) -> Result<T, CliError> {
    let pem = fs::read(path).map_err(|e| CliError::local(path, &e))?;
    parse(&pem).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

/// One line of the -v dialogue, curl style: `> ` for a command (its password already hidden by
/// the client), `< ` for a reply line. Control characters from the server are shown escaped so
/// a reply cannot drive the terminal.
fn trace_line(direction: TraceDirection, line: &[u8]) -> String {
    let mut out = String::from(match direction {
        TraceDirection::Sent => "> ",
        TraceDirection::Received => "< ",
    });
    for ch in String::from_utf8_lossy(line).chars() {
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_are_marked_and_escape_control_characters() {
        assert_eq!(
            trace_line(TraceDirection::Sent, b"PASS ****"),
            "> PASS ****"
        );
        assert_eq!(
            trace_line(TraceDirection::Received, b"230 caf\xc3\xa9 ok"),
            "< 230 caf\u{e9} ok"
        );
        assert_eq!(
            trace_line(TraceDirection::Received, b"220 \x1b[2Jhi\x07"),
            "< 220 \\u{1b}[2Jhi\\u{7}"
        );
    }

    #[test]
    fn join_and_parent() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("d", "a"), "d/a");
        assert_eq!(join("d/", "a"), "d/a");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(parent("a/b"), "a");
        assert_eq!(parent("/x"), "/");
        assert_eq!(parent("x"), "");
        assert_eq!(parent("a/b/"), "a");
    }
}
