//! The verbs every client driver offers, written once: [`client_verbs!`](crate::client_verbs)
//! expands to the same methods, with the same docs, blocking in `ftps-std` and `async` in
//! `ftps-tokio`, so the two clients cannot drift apart. Only what depends on the driver's
//! kind of I/O is written in each driver: connecting, the transfers over its `Read`/`Write`
//! (or `AsyncRead`/`AsyncWrite`), `quit`, and the run loop.

/// Expands, inside a client driver's `impl Client`, to its control verbs and getters:
/// `tls_info`, `features`, `last_transfer`, `set_progress`, `login`, the listings (`list`,
/// `list_long`, `list_raw`, `mlsd`, `names`), `mkdir`, `rmdir`, `delete`, `rename`, `cwd`, `pwd`,
/// `size`, `mtime`, `raw`, `clear_command_channel`, `set_data_protection`.
///
/// `client_verbs!(sync)` makes blocking methods, `client_verbs!(async)` `async` ones. The
/// driver provides the field `core` (its [`ClientCore`](crate::client::ClientCore)); an enum `Job` with the variants `Control`,
/// `Listing(&mut Vec<ListingEntry>)` and `Download(_)` that a `&mut Vec<u8>` coerces into; and
/// `fn run(&mut self, op: OpId, job: Job<'_>) -> Result<Completion, Error>` (blocking or
/// `async` as the verbs are), which runs `op` to its completion.
#[macro_export]
macro_rules! client_verbs {
    (sync) => {
        $crate::client_verbs!(@verbs [] []);
    };
    (async) => {
        $crate::client_verbs!(@verbs [async] [.await]);
    };
    (@verbs [$($async:tt)*] [$($await:tt)*]) => {
        /// The control connection's TLS parameters (`None` in plaintext).
        pub fn tls_info(&self) -> ::core::option::Option<&$crate::__proto::tls::TlsInfo> {
            self.core.tracker.tls_info()
        }

        /// The feature lines of the server's `FEAT` reply (after TLS).
        pub fn features(&self) -> &[::std::vec::Vec<u8>] {
            self.core.tracker.features()
        }

        /// What the most recent successful data transfer reported, listings included (whose
        /// entries the listing calls return instead of a summary).
        pub fn last_transfer(
            &self,
        ) -> ::core::option::Option<&$crate::client::TransferSummary> {
            self.core.last_transfer.as_ref()
        }

        /// Sets (or clears) the progress callback for the following transfers.
        pub fn set_progress(
            &mut self,
            progress: ::core::option::Option<$crate::client::Progress>,
        ) {
            self.core.tracker.set_progress(progress);
        }

        /// Logs in (and sets up `PBSZ`/`PROT` under TLS).
        pub $($async)* fn login(
            &mut self,
            user: &str,
            password: &str,
        ) -> ::core::result::Result<(), $crate::client::Error> {
            let op = self
                .core
                .session
                .login(user.as_bytes(), password.as_bytes(), None)?;
            self.run(op, Job::Control)$($await)*.map(drop)
        }

        /// A directory listing, parsed: `MLSD` when the server offers it, `LIST` otherwise
        /// (the session decides from FEAT).
        pub $($async)* fn list(
            &mut self,
            path: ::core::option::Option<&str>,
        ) -> $crate::client::Listed {
            let op = self.core.session.list_entries(path.map(str::as_bytes))?;
            let mut entries = ::std::vec::Vec::new();
            self.run(op, Job::Listing(&mut entries))$($await)*?;
            Ok(entries)
        }

        /// A `LIST` listing (`ls -l` lines, parsed as well as they can be).
        pub $($async)* fn list_long(
            &mut self,
            path: ::core::option::Option<&str>,
        ) -> $crate::client::Listed {
            let op = self.core.session.list(path.map(str::as_bytes))?;
            let mut entries = ::std::vec::Vec::new();
            self.run(op, Job::Listing(&mut entries))$($await)*?;
            Ok(entries)
        }

        /// A `LIST` listing as the server sent it.
        pub $($async)* fn list_raw(
            &mut self,
            path: ::core::option::Option<&str>,
        ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::client::Error> {
            let op = self.core.session.list_raw(path.map(str::as_bytes))?;
            let mut raw = ::std::vec::Vec::new();
            self.run(op, Job::Download(&mut raw))$($await)*?;
            Ok(raw)
        }

        /// An `MLSD` listing (RFC 3659 facts).
        pub $($async)* fn mlsd(
            &mut self,
            path: ::core::option::Option<&str>,
        ) -> $crate::client::Listed {
            let op = self.core.session.mlsd(path.map(str::as_bytes))?;
            let mut entries = ::std::vec::Vec::new();
            self.run(op, Job::Listing(&mut entries))$($await)*?;
            Ok(entries)
        }

        /// The names in a directory (`NLST`).
        pub $($async)* fn names(
            &mut self,
            path: ::core::option::Option<&str>,
        ) -> ::core::result::Result<::std::vec::Vec<::std::vec::Vec<u8>>, $crate::client::Error> {
            let op = self.core.session.nlst(path.map(str::as_bytes))?;
            let mut entries = ::std::vec::Vec::new();
            self.run(op, Job::Listing(&mut entries))$($await)*?;
            Ok($crate::client::names_of(entries))
        }

        /// Creates a directory; returns the server's name for it when the reply gives one.
        pub $($async)* fn mkdir(
            &mut self,
            path: &str,
        ) -> ::core::result::Result<::core::option::Option<::std::vec::Vec<u8>>, $crate::client::Error>
        {
            let op = self.core.session.mkd(path.as_bytes())?;
            let done = self.run(op, Job::Control)$($await)*?;
            Ok($crate::client::path_value(done).ok())
        }

        /// Removes a directory.
        pub $($async)* fn rmdir(
            &mut self,
            path: &str,
        ) -> ::core::result::Result<(), $crate::client::Error> {
            let op = self.core.session.rmd(path.as_bytes())?;
            self.run(op, Job::Control)$($await)*.map(drop)
        }

        /// Deletes a file.
        pub $($async)* fn delete(
            &mut self,
            path: &str,
        ) -> ::core::result::Result<(), $crate::client::Error> {
            let op = self.core.session.dele(path.as_bytes())?;
            self.run(op, Job::Control)$($await)*.map(drop)
        }

        /// Renames `from` to `to` (`RNFR` + `RNTO`).
        pub $($async)* fn rename(
            &mut self,
            from: &str,
            to: &str,
        ) -> ::core::result::Result<(), $crate::client::Error> {
            let op = self.core.session.rename(from.as_bytes(), to.as_bytes())?;
            self.run(op, Job::Control)$($await)*.map(drop)
        }

        /// Changes the working directory.
        pub $($async)* fn cwd(
            &mut self,
            path: &str,
        ) -> ::core::result::Result<(), $crate::client::Error> {
            let op = self.core.session.cwd(path.as_bytes())?;
            self.run(op, Job::Control)$($await)*.map(drop)
        }

        /// The working directory (`PWD`).
        pub $($async)* fn pwd(
            &mut self,
        ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::client::Error> {
            let op = self.core.session.pwd()?;
            $crate::client::path_value(self.run(op, Job::Control)$($await)*?)
        }

        /// The size of a file in bytes (`SIZE`).
        pub $($async)* fn size(
            &mut self,
            path: &str,
        ) -> ::core::result::Result<u64, $crate::client::Error> {
            let op = self.core.session.size(path.as_bytes())?;
            $crate::client::size_value(self.run(op, Job::Control)$($await)*?)
        }

        /// The modification time of a file (`MDTM`, UTC).
        pub $($async)* fn mtime(
            &mut self,
            path: &str,
        ) -> ::core::result::Result<$crate::__proto::codec::listing::FtpTime, $crate::client::Error> {
            let op = self.core.session.mdtm(path.as_bytes())?;
            $crate::client::modified_value(self.run(op, Job::Control)$($await)*?)
        }

        /// Sends any command and returns its final reply (a 4yz/5yz reply is an error
        /// carrying it).
        pub $($async)* fn raw(
            &mut self,
            verb: &str,
            argument: ::core::option::Option<&str>,
        ) -> ::core::result::Result<$crate::__proto::codec::reply::Reply, $crate::client::Error> {
            let op = self
                .core
                .session
                .raw_command(verb.as_bytes(), argument.map(str::as_bytes))?;
            self.run(op, Job::Control)$($await)*.map(|done| done.reply)
        }

        /// Clears the control channel (`CCC`, RFC 4217 §6): after the server's `200` both
        /// sides end TLS on the control connection and the following commands travel in
        /// clear. Data connections keep their protection.
        pub $($async)* fn clear_command_channel(
            &mut self,
        ) -> ::core::result::Result<(), $crate::client::Error> {
            let op = self.core.session.ccc()?;
            self.run(op, Job::Control)$($await)*.map(drop)
        }

        /// Switches the protection of the following data connections (`PBSZ 0`, then `PROT P`
        /// for [`DataProtection::Private`](ftps_proto::client::DataProtection::Private) or
        /// `PROT C` for [`DataProtection::Clear`](ftps_proto::client::DataProtection::Clear);
        /// RFC 4217 §9). A refusal is [`Error::Operation`](crate::Error::Operation) carrying
        /// the reply, and the previous level stays; on a control connection without TLS this
        /// is a usage error and nothing is sent.
        pub $($async)* fn set_data_protection(
            &mut self,
            level: $crate::__proto::client::DataProtection,
        ) -> ::core::result::Result<(), $crate::client::Error> {
            let op = self.core.session.set_data_protection(level)?;
            self.run(op, Job::Control)$($await)*.map(drop)
        }
    };
}
