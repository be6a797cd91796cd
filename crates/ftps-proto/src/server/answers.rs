//! The application's answers to requests and its side of transfers (`answer*`, `write_data`,
//! `finish_data`, `fail_transfer`, `finish_upload`), and the file-system error replies.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::ascii::encode_ascii;
use super::listing::format_entry;
use super::{
    Answer, DirEntry, FsError, ListFormat, Pending, PendingTransfer, RequestId, ServerSession,
    TransferKind, UsageError, Wait, code, quoted,
};
use crate::codec::reply::Reply;

/// When a file-system error is reported, which decides its reply code.
#[derive(Debug, Clone, Copy)]
enum ErrorStage<'a> {
    /// Refusing a request, before any 1yz reply.
    Request(&'a Pending),
    /// A transfer's final reply, after its 150: RFC 959 §5.4 allows only 226/250, 425, 426,
    /// 451, 551 and 552 there, so 550/553/452 would be out of place.
    Transfer,
}

/// The one mapping from the application's [`FsError`] to a reply (fixed texts: nothing the
/// backend said is echoed).
fn fs_error_reply(err: FsError, stage: ErrorStage<'_>) -> (u16, &'static [u8]) {
    let pending = match stage {
        ErrorStage::Transfer => {
            return match err {
                FsError::NoSpace => (552, b"Transfer aborted: insufficient storage space."),
                _ => (451, b"Transfer aborted: local error."),
            };
        }
        ErrorStage::Request(pending) => pending,
    };
    let mlsd = matches!(
        pending,
        Pending::Transfer(PendingTransfer {
            kind: TransferKind::Listing(ListFormat::Mlsd)
        })
    );
    let upload = matches!(
        pending,
        Pending::Transfer(PendingTransfer {
            kind: TransferKind::Store { .. }
        })
    );
    match err {
        FsError::NotFound => (550, b"No such file or directory."),
        FsError::PermissionDenied => (550, b"Permission denied."),
        FsError::WrongKind if mlsd => (501, b"Not a directory."),
        FsError::WrongKind => (550, b"Wrong kind of file."),
        FsError::AlreadyExists if upload => (553, b"File exists."),
        FsError::AlreadyExists => (550, b"File exists."),
        FsError::InvalidName => (553, b"File name not allowed."),
        FsError::NoSpace => (452, b"Insufficient storage space."),
        FsError::Unavailable => (450, b"Requested file action not taken."),
        FsError::Local => (451, b"Local error in processing."),
    }
}

impl ServerSession {
    fn take_answer(&mut self, id: RequestId) -> Result<Pending, UsageError> {
        if self.closing.is_some() {
            return Err(UsageError::Closed);
        }
        match &self.wait {
            Wait::Answer { id: waiting, .. } if *waiting == id => {}
            _ => return Err(UsageError::UnknownId),
        }
        self.touch_idle();
        match core::mem::replace(&mut self.wait, Wait::Nothing) {
            Wait::Answer { pending, .. } => Ok(pending),
            _ => Err(UsageError::UnknownId),
        }
    }

    /// Answers a [`Request::Login`]: `true` logs the user in (`230`), `false` is a failed
    /// login (`530` after the configured delay; `421` and close at the limit).
    ///
    /// [`Request::Login`]: super::Request::Login
    pub fn answer_login(&mut self, id: RequestId, granted: bool) -> Result<(), UsageError> {
        match &self.wait {
            Wait::Answer {
                id: waiting,
                pending: Pending::Login,
            } if *waiting == id => {}
            Wait::Answer { id: waiting, .. } if *waiting == id => {
                return Err(UsageError::WrongCall("not a login request"));
            }
            _ => {
                return Err(if self.closing.is_some() {
                    UsageError::Closed
                } else {
                    UsageError::UnknownId
                });
            }
        }
        self.wait = Wait::Nothing;
        self.touch_idle();
        if granted {
            self.logged_in = true;
            self.login_deadline = None;
            self.failed_logins = 0;
            self.reply(230, b"Login successful.");
        } else {
            self.login_failed();
        }
        self.run();
        Ok(())
    }

    /// Answers any request but logins and listings. An `Err` is refused with a fixed text.
    pub fn answer(
        &mut self,
        id: RequestId,
        result: Result<Answer, FsError>,
    ) -> Result<(), UsageError> {
        let pending = match &self.wait {
            Wait::Answer {
                id: waiting,
                pending,
            } if *waiting == id => pending.clone(),
            _ => {
                return Err(if self.closing.is_some() {
                    UsageError::Closed
                } else {
                    UsageError::UnknownId
                });
            }
        };
        let wrong = |what| Err(UsageError::WrongCall(what));
        match (&pending, &result) {
            (Pending::Login, _) => return wrong("use answer_login"),
            (Pending::Commit, _) => return wrong("use finish_upload"),
            (
                Pending::Transfer(PendingTransfer {
                    kind: TransferKind::Listing(_),
                }),
                Ok(answer),
            ) if *answer != Answer::Done => {
                return wrong("a listing is opened with Answer::Done");
            }
            (Pending::Size, Ok(answer)) if !matches!(answer, Answer::Size(_)) => {
                return wrong("SIZE needs Answer::Size");
            }
            (Pending::Mdtm, Ok(answer)) if !matches!(answer, Answer::Modified(_)) => {
                return wrong("MDTM needs Answer::Modified");
            }
            (Pending::Mlst { .. }, Ok(answer)) if !matches!(answer, Answer::Entry(_)) => {
                return wrong("MLST needs Answer::Entry");
            }
            _ => {}
        }
        let pending = self.take_answer(id)?;
        match result {
            Err(err) => self.reply_fs_error(&pending, err),
            Ok(answer) => self.complete_answer(id, pending, answer),
        }
        self.run();
        Ok(())
    }

    /// Writes one entry of a listing opened with `answer(id, Ok(Answer::Done))` (after
    /// [`ServerEvent::Writable`]); the session formats it as an `ls -l`, NLST or MLSD line.
    /// Returns `false` when the listing's bounded buffer is full: nothing was taken, wait for
    /// the next `Writable` and offer the entry again. End the listing with
    /// [`finish_data`](Self::finish_data). A directory of any size is sent in pieces the
    /// application hands over as the client takes them.
    ///
    /// [`ServerEvent::Writable`]: super::ServerEvent::Writable
    pub fn write_entry(&mut self, id: RequestId, entry: &DirEntry) -> Result<bool, UsageError> {
        let cap = self
            .config
            .limits
            .data_buffer
            .max(crate::data::MIN_DATA_BUFFER);
        let t = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id)
            .ok_or(UsageError::UnknownId)?;
        let TransferKind::Listing(format) = t.kind else {
            return Err(UsageError::WrongCall("not a listing"));
        };
        if t.source_done {
            return Err(UsageError::NotWritable);
        }
        if t.staging.len() >= cap {
            t.want_writable = true;
            t.conn_writable = false;
            return Ok(false);
        }
        format_entry(&self.mlst_selected, format, entry, &mut t.staging);
        Self::flush_staging(t);
        if t.staging.len() >= cap {
            t.want_writable = true;
            t.conn_writable = false;
        }
        self.touch_data();
        Ok(true)
    }

    /// Takes upload bytes of `id` (STOR, APPE, STOU; after TYPE A conversion) into `buf`;
    /// returns how many (0 when none wait). Call after [`ServerEvent::Readable`] until it
    /// returns 0: until every byte was read the session takes no more input from the data
    /// connection and the upload does not finish.
    ///
    /// [`ServerEvent::Readable`]: super::ServerEvent::Readable
    pub fn read_data(&mut self, id: RequestId, buf: &mut [u8]) -> Result<usize, UsageError> {
        if let Some((tail_id, tail)) = &mut self.upload_tail {
            if *tail_id == id {
                // The last bytes of a TYPE A upload (a final bare CR), after its data ended.
                let n = buf.len().min(tail.len());
                buf[..n].copy_from_slice(&tail[..n]);
                tail.drain(..n);
                if tail.is_empty() {
                    self.upload_tail = None;
                }
                return Ok(n);
            }
        }
        let t = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id)
            .ok_or(UsageError::UnknownId)?;
        if !matches!(t.kind, TransferKind::Store { .. }) {
            return Err(UsageError::WrongCall("not an upload"));
        }
        let n = if t.ascii {
            if t.upload.is_empty() {
                // Decode at most what fits: CRLF → LF never grows the data.
                t.raw.resize(buf.len(), 0);
                let raw = t.conn.read(&mut t.raw);
                t.decoder.decode(&t.raw[..raw], &mut t.upload);
            }
            let n = buf.len().min(t.upload.len());
            buf[..n].copy_from_slice(&t.upload[..n]);
            t.upload.drain(..n);
            n
        } else {
            t.conn.read(buf)
        };
        if t.upload.is_empty() && !t.conn.has_unread() {
            t.readable_announced = false;
        }
        if n > 0 {
            self.touch_data();
        }
        Ok(n)
    }

    /// Writes download bytes (RETR, after [`ServerEvent::Writable`]); returns how many were
    /// taken. Fewer than given (or 0): wait for the next `Writable`.
    ///
    /// [`ServerEvent::Writable`]: super::ServerEvent::Writable
    pub fn write_data(&mut self, id: RequestId, bytes: &[u8]) -> Result<usize, UsageError> {
        let t = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id)
            .ok_or(UsageError::UnknownId)?;
        if t.kind != TransferKind::Retrieve || t.source_done {
            return Err(UsageError::NotWritable);
        }
        let taken = if t.ascii {
            let cap = self
                .config
                .limits
                .data_buffer
                .max(crate::data::MIN_DATA_BUFFER);
            let room = cap.saturating_sub(t.staging.len());
            let n = encode_ascii(bytes, room, &mut t.staging);
            Self::flush_staging(t);
            n
        } else if t.staging.is_empty() {
            t.conn.write(bytes).unwrap_or(0)
        } else {
            0
        };
        if taken < bytes.len() {
            t.want_writable = true;
            t.conn_writable = false;
        }
        if taken > 0 {
            self.touch_data();
        }
        Ok(taken)
    }

    /// Ends a download (RETR) or a listing: close_notify follows the last byte, and `226`
    /// follows the client's end of the data connection.
    pub fn finish_data(&mut self, id: RequestId) -> Result<(), UsageError> {
        let t = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id)
            .ok_or(UsageError::UnknownId)?;
        if matches!(t.kind, TransferKind::Store { .. }) {
            return Err(UsageError::NotWritable);
        }
        t.source_done = true;
        Self::flush_staging(t);
        Ok(())
    }

    /// Fails a running transfer from the application's side (read or write error): the data
    /// connection is closed and the client gets `451` (`552` for [`FsError::NoSpace`]).
    pub fn fail_transfer(&mut self, id: RequestId, error: FsError) -> Result<(), UsageError> {
        let t = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id)
            .ok_or(UsageError::UnknownId)?;
        t.conn.cancel();
        self.complete_transfer(Some(fs_error_reply(error, ErrorStage::Transfer)));
        self.run();
        Ok(())
    }

    /// Answers a complete upload ([`ServerEvent::UploadFinished`] with `complete: true`):
    /// `Ok` once the file is committed under its name (`226`), `Err` when committing failed
    /// (`552` for [`FsError::NoSpace`], `451` otherwise; the file must not be left visible).
    ///
    /// Until this call the upload's final reply is held back: commands the client pipelines
    /// meanwhile queue (under [`ServerLimits::max_pending_commands`]), `ABOR`, `STAT` and `QUIT`
    /// included, and run after the final reply — the data transfer is already over, so `ABOR`
    /// gets `226 No transfer to abort.` and `QUIT` `221`. The idle timeout does not run while
    /// the application decides (as for every request). If the session closes first (the
    /// client hung up) this returns [`UsageError::Closed`]; the upload was complete, so the
    /// application may keep it.
    ///
    /// [`ServerEvent::UploadFinished`]: super::ServerEvent::UploadFinished
    /// [`ServerLimits::max_pending_commands`]: super::ServerLimits::max_pending_commands
    pub fn finish_upload(
        &mut self,
        id: RequestId,
        result: Result<(), FsError>,
    ) -> Result<(), UsageError> {
        match &self.wait {
            Wait::Answer {
                id: waiting,
                pending: Pending::Commit,
            } if *waiting == id => {}
            Wait::Answer { id: waiting, .. } if *waiting == id => {
                return Err(UsageError::WrongCall("not an upload awaiting its commit"));
            }
            _ => {
                return Err(if self.closing.is_some() {
                    UsageError::Closed
                } else {
                    UsageError::UnknownId
                });
            }
        }
        self.take_answer(id)?;
        match result {
            Ok(()) => self.reply(226, b"Transfer complete."),
            Err(err) => {
                let (value, text) = fs_error_reply(err, ErrorStage::Transfer);
                self.reply(value, text);
            }
        }
        self.after_final_reply();
        self.run();
        Ok(())
    }

    fn reply_fs_error(&mut self, pending: &Pending, err: FsError) {
        let (value, text) = fs_error_reply(err, ErrorStage::Request(pending));
        self.reply(value, text);
    }

    fn complete_answer(&mut self, id: RequestId, pending: Pending, answer: Answer) {
        match pending {
            Pending::Login | Pending::Commit => {}
            Pending::Cwd { path } => {
                self.cwd = match answer {
                    Answer::Path(canonical) => canonical,
                    _ => path,
                };
                self.reply(250, b"Directory successfully changed.");
            }
            Pending::Mkdir { path } => {
                let name = match answer {
                    Answer::Path(created) => created,
                    _ => path,
                };
                let mut text = quoted(&name);
                text.extend_from_slice(b" created.");
                self.reply(257, &text);
            }
            Pending::Simple => self.reply(250, b"Requested file action okay, completed."),
            Pending::Size => {
                if let Answer::Size(size) = answer {
                    self.reply(213, format!("{size}").as_bytes());
                }
            }
            Pending::Mdtm => {
                if let Answer::Modified(time) = answer {
                    let mut text = Vec::new();
                    time.encode(&mut text);
                    self.reply(213, &text);
                }
            }
            Pending::Mlst { path } => {
                if let Answer::Entry(mut entry) = answer {
                    entry.name = path;
                    let mut line = vec![b' '];
                    match self.mlsx_entry(&entry).encode(&mut line) {
                        Ok(()) => {
                            let reply = Reply::multiline(
                                code(250),
                                vec![b"Listing:".to_vec(), line, b"End.".to_vec()],
                            );
                            self.send_reply(&reply);
                        }
                        Err(_) => self.reply(550, b"Name cannot be represented."),
                    }
                }
            }
            Pending::Transfer(PendingTransfer { kind }) => {
                let unique_name = match answer {
                    Answer::Path(name) => Some(name),
                    _ => None,
                };
                self.start_transfer(id, kind, unique_name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [FsError; 8] = [
        FsError::NotFound,
        FsError::PermissionDenied,
        FsError::WrongKind,
        FsError::AlreadyExists,
        FsError::InvalidName,
        FsError::NoSpace,
        FsError::Unavailable,
        FsError::Local,
    ];

    fn transfer(kind: TransferKind) -> Pending {
        Pending::Transfer(PendingTransfer { kind })
    }

    fn request_code(err: FsError, pending: &Pending) -> u16 {
        fs_error_reply(err, ErrorStage::Request(pending)).0
    }

    #[test]
    fn request_errors_map_to_their_codes() {
        let pending = Pending::Simple;
        let codes: Vec<u16> = ALL.iter().map(|&e| request_code(e, &pending)).collect();
        assert_eq!(codes, [550, 550, 550, 550, 553, 452, 450, 451]);
    }

    #[test]
    fn request_codes_depend_on_the_request() {
        let mlsd = transfer(TransferKind::Listing(ListFormat::Mlsd));
        let list = transfer(TransferKind::Listing(ListFormat::List));
        let store = transfer(TransferKind::Store { unique: false });
        let stou = transfer(TransferKind::Store { unique: true });
        let retr = transfer(TransferKind::Retrieve);
        assert_eq!(request_code(FsError::WrongKind, &mlsd), 501);
        assert_eq!(request_code(FsError::WrongKind, &list), 550);
        assert_eq!(request_code(FsError::AlreadyExists, &store), 553);
        assert_eq!(request_code(FsError::AlreadyExists, &stou), 553);
        assert_eq!(request_code(FsError::AlreadyExists, &retr), 550);
        assert_eq!(
            request_code(
                FsError::AlreadyExists,
                &Pending::Mkdir {
                    path: b"/d".to_vec()
                }
            ),
            550
        );
        assert_eq!(request_code(FsError::NoSpace, &store), 452);
    }

    #[test]
    fn after_a_150_only_451_and_552() {
        for err in ALL {
            let (value, text) = fs_error_reply(err, ErrorStage::Transfer);
            let expected = if err == FsError::NoSpace { 552 } else { 451 };
            assert_eq!(value, expected, "{err:?}");
            assert!(text.starts_with(b"Transfer aborted"), "{err:?}");
        }
    }

    #[test]
    fn texts_are_fixed_single_lines() {
        let pending = Pending::Simple;
        for err in ALL {
            for (_, text) in [
                fs_error_reply(err, ErrorStage::Request(&pending)),
                fs_error_reply(err, ErrorStage::Transfer),
            ] {
                assert!(!text.is_empty());
                assert!(!text.iter().any(|&b| b == b'\r' || b == b'\n'));
            }
        }
        assert_eq!(
            fs_error_reply(FsError::NotFound, ErrorStage::Request(&pending)).1,
            b"No such file or directory."
        );
    }
}
