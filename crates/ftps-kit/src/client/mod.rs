//! The application side of one client session: [`OpTracker`].
//!
//! A client driver runs one operation at a time to completion (a blocking call, an awaited
//! future) and has to route the session's events: the target operation's data, listing
//! entries and completion; the control connection's TLS parameters and features; the
//! control-line trace; and the session's end, which after `QUIT` also completes the `QUIT`.
//! That routing does not depend on how bytes are read or written, so it is here once; the
//! driver only does what [`Routed`] says with its own sinks and sources (a `Write`, an
//! `AsyncWrite`, a Python callback).

use ftps_proto::client::{
    ClientError, ClientEvent, Completion, ListingEntry, OpError, OpId, TraceDirection,
};
use ftps_proto::tls::TlsInfo;

use crate::drive::Drained;

mod options;
mod verbs;

/// What the listing verbs return.
pub type Listed = Result<Vec<ListingEntry>, Error>;

pub use options::{
    ClientOptions, Error, Offered, Progress, Tracer, TransferSummary, UploadFeed, modified_value,
    names_of, path_value, size_value, transfer_summary, trust_ca_file,
};

/// Receives each line of the control-connection dialogue (the `PASS`/`ACCT` argument already
/// replaced by `****` in the core).
pub type TraceFn = dyn FnMut(TraceDirection, &[u8]) + Send;

/// What an event means for the operation a driver is running.
#[derive(Debug)]
#[non_exhaustive]
pub enum Routed {
    /// Nothing for the driver to do (the tracker kept what it needs).
    Nothing,
    /// The target's downloaded bytes wait: read them with `read_data` until it returns 0.
    Readable,
    /// The target upload takes data with `write_data` (again).
    Writable,
    /// An entry of the target listing.
    Listing(ListingEntry),
    /// The session is ready for operations (TLS and FEAT done).
    Ready,
    /// The target operation ended.
    Completed(Result<Completion, OpError>),
    /// The session ended: `Ok` with the completion of a `QUIT` that was the target, or why.
    Closed(Result<Completion, Option<ClientError>>),
}

/// The state every client driver keeps besides its sockets: the session, the
/// [`OpTracker`], the last transfer's summary and the download buffer. [`client_verbs!`]
/// works on it through the driver's field `core`.
///
/// [`client_verbs!`]: crate::client_verbs
#[derive(Debug)]
pub struct ClientCore {
    /// The sans-IO session.
    pub session: ftps_proto::client::ClientSession,
    /// Routes the session's events for the running operation; keeps the TLS parameters,
    /// features, trace and progress.
    pub tracker: OpTracker,
    /// What the most recent successful data transfer reported.
    pub last_transfer: Option<TransferSummary>,
    /// Downloaded bytes read from the session on their way to the sink (reused).
    pub download: Vec<u8>,
}

impl ClientCore {
    /// The state of a new `session` whose control-line trace goes to `trace`.
    pub fn new(session: ftps_proto::client::ClientSession, trace: Option<Tracer>) -> Self {
        Self {
            session,
            tracker: OpTracker::new(trace.map(Tracer::into_inner)),
            last_transfer: None,
            download: vec![0; DOWNLOAD_BUFFER],
        }
    }

    /// A driver starts running an operation: refused once the session ended; otherwise the
    /// tracker forgets the last operation's completion and progress.
    pub fn begin(&mut self) -> Result<(), Error> {
        if self.tracker.is_closed() {
            return Err(Error::Closed(None));
        }
        self.tracker.start();
        Ok(())
    }

    /// The next downloaded bytes of `op` waiting in the session (at most `limit`, and the
    /// buffer's size), counted as progress; empty when none wait.
    pub fn next_download(&mut self, op: OpId, limit: usize) -> Result<&[u8], Error> {
        let room = limit.min(self.download.len());
        let n = self.session.read_data(op, &mut self.download[..room])?;
        if n > 0 {
            self.tracker.moved(n);
        }
        Ok(&self.download[..n])
    }

    /// Drains the session with `drain` (the driver's drain into its sockets) and routes its
    /// events through `round` for `target` until the driver has something to do: wait, read
    /// the target's downloaded bytes, or end the run.
    pub fn next(
        &mut self,
        round: &mut Round,
        target: Option<OpId>,
        mut drain: impl FnMut(&mut ftps_proto::client::ClientSession) -> Drained<ClientEvent>,
    ) -> Next {
        loop {
            let event = match drain(&mut self.session) {
                Drained::Event(event) => event,
                Drained::Wait(deadline) => return Next::Wait(deadline),
            };
            match round.take(&mut self.tracker, event, target) {
                Taken::Readable => {
                    if let Some(op) = target {
                        return Next::Readable(op);
                    }
                }
                Taken::End(end) => return Next::End(end),
                Taken::Nothing => {}
            }
        }
    }

    /// Records `done`'s transfer summary (listings included) as the last transfer.
    pub fn completed(&mut self, done: &Completion) {
        if let Some(summary) = transfer_summary(done) {
            self.last_transfer = Some(summary);
        }
    }
}

/// What a driver does after [`ClientCore::next`].
#[derive(Debug)]
pub enum Next {
    /// Wait for the sockets or this deadline (then [`Round::end`] and the upload first).
    Wait(Option<ftps_proto::io::Instant>),
    /// Read `op`'s downloaded bytes ([`ClientCore::next_download`]).
    Readable(OpId),
    /// The run is over.
    End(Result<Ended, Error>),
}

/// The download buffer's size.
const DOWNLOAD_BUFFER: usize = 64 * 1024;

/// Where a driver's run of an operation stopped, as [`Round`] decides from the events.
#[derive(Debug)]
pub enum Ended {
    /// Connected and ready for operations (the connect run, which has no target).
    Ready,
    /// The target operation completed (a `QUIT` with the session's orderly end).
    Completed(Completion),
}

impl Ended {
    /// The completion, if the run completed an operation.
    pub fn completion(self) -> Option<Completion> {
        match self {
            Self::Ready => None,
            Self::Completed(done) => Some(done),
        }
    }
}

/// One round of a client driver's run loop: everything the session said between two waits,
/// for the operation being run. The driver drains the session, hands each event to
/// [`Round::take`], reads downloaded bytes when it says [`Taken::Readable`], and stops on
/// [`Taken::End`] or, once the drain says wait, on [`Round::end`].
#[derive(Debug, Default)]
pub struct Round {
    writable: bool,
    finished: Option<Result<Completion, OpError>>,
    entries: Vec<ListingEntry>,
}

/// What an event means for the driver right now.
#[derive(Debug)]
pub enum Taken {
    /// Nothing to do.
    Nothing,
    /// The target's downloaded bytes wait: read them with `read_data` until it returns 0.
    Readable,
    /// The run is over (connected, QUIT's end, or the session ended with an error).
    End(Result<Ended, Error>),
}

impl Round {
    /// Routes `event` through `tracker` for `target`, keeping the target listing's entries,
    /// whether an upload may go on, and the target's completion.
    pub fn take(
        &mut self,
        tracker: &mut OpTracker,
        event: ClientEvent,
        target: Option<OpId>,
    ) -> Taken {
        match tracker.route(event, target) {
            Routed::Readable => Taken::Readable,
            Routed::Listing(entry) => {
                self.entries.push(entry);
                Taken::Nothing
            }
            Routed::Writable => {
                self.writable = true;
                Taken::Nothing
            }
            Routed::Ready => Taken::End(Ok(Ended::Ready)),
            Routed::Completed(result) => {
                self.finished = Some(result);
                Taken::Nothing
            }
            Routed::Closed(Ok(done)) => Taken::End(Ok(Ended::Completed(done))),
            Routed::Closed(Err(error)) => Taken::End(Err(Error::Closed(error))),
            Routed::Nothing => Taken::Nothing,
        }
    }

    /// After the drain: moves the listing entries that came this round to `listing` (a
    /// listing job's; `None` drops them), then returns the target's completion, if it came
    /// (the run is over).
    pub fn end(&mut self, listing: Option<&mut Vec<ListingEntry>>) -> Option<Result<Ended, Error>> {
        if let Some(listing) = listing {
            listing.append(&mut self.entries);
        }
        self.finished
            .take()
            .map(|result| result.map(Ended::Completed).map_err(Error::Operation))
    }

    /// Whether the session asked for more upload data this round.
    pub fn writable(&self) -> bool {
        self.writable
    }
}

/// What a client driver keeps about its session besides the sockets: the control
/// connection's TLS parameters, the server's features, the trace callback, and whether the
/// session ended.
#[derive(Default)]
pub struct OpTracker {
    tls_info: Option<TlsInfo>,
    features: Vec<Vec<u8>>,
    trace: Option<Box<TraceFn>>,
    /// The target's completion, when it came before the session's end (QUIT).
    finished: Option<Result<Completion, OpError>>,
    closed: bool,
    progress: Option<Progress>,
    /// Payload bytes the running transfer moved so far.
    moved: u64,
}

impl std::fmt::Debug for OpTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpTracker")
            .field("tls_info", &self.tls_info)
            .field("features", &self.features.len())
            .field("trace", &self.trace.is_some())
            .field("closed", &self.closed)
            .field("moved", &self.moved)
            .finish_non_exhaustive()
    }
}

impl OpTracker {
    /// A tracker handing the control-line trace to `trace` (when the session's
    /// `trace_control` is on).
    pub fn new(trace: Option<Box<TraceFn>>) -> Self {
        Self {
            trace,
            ..Self::default()
        }
    }

    /// The control connection's TLS parameters (`None` before TLS, or in plaintext).
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls_info.as_ref()
    }

    /// The feature lines of the server's trusted `FEAT` reply.
    pub fn features(&self) -> &[Vec<u8>] {
        &self.features
    }

    /// True once the session reported its end.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Routes one event of the session while the driver runs `target` (`None`: connecting,
    /// until [`Routed::Ready`]).
    pub fn route(&mut self, event: ClientEvent, target: Option<OpId>) -> Routed {
        let ours = |op: OpId| Some(op) == target;
        match event {
            ClientEvent::Readable { op } if ours(op) => Routed::Readable,
            ClientEvent::Writable { op } if ours(op) => Routed::Writable,
            ClientEvent::Listing { op, entry } if ours(op) => Routed::Listing(entry),
            ClientEvent::Secured { info } => {
                self.tls_info = Some(info);
                Routed::Nothing
            }
            ClientEvent::ControlLine { direction, line } => {
                if let Some(trace) = &mut self.trace {
                    trace(direction, &line);
                }
                Routed::Nothing
            }
            ClientEvent::Ready { features } => {
                self.features = features;
                if target.is_none() {
                    Routed::Ready
                } else {
                    Routed::Nothing
                }
            }
            ClientEvent::Completed { op, result } if ours(op) => {
                // A QUIT's session ends right after its reply: hold the completion for the
                // `Closed` that follows; anything else completes now.
                self.finished = Some(result.clone());
                Routed::Completed(result)
            }
            ClientEvent::Closed { error } => {
                self.closed = true;
                match (error, self.finished.take()) {
                    (None, Some(Ok(done))) => Routed::Closed(Ok(done)),
                    (error, _) => Routed::Closed(Err(error)),
                }
            }
            _ => Routed::Nothing,
        }
    }

    /// Sets (or clears) the callback told each transfer's progress.
    pub fn set_progress(&mut self, progress: Option<Progress>) {
        self.progress = progress;
    }

    /// `n` more payload bytes of the running transfer moved: tells the progress callback.
    pub fn moved(&mut self, n: usize) {
        self.moved += n as u64;
        if let Some(progress) = &mut self.progress {
            progress(self.moved);
        }
    }

    /// The driver starts a new operation: forget the last one's completion and progress.
    pub fn start(&mut self) {
        self.moved = 0;
        self.finished = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftps_proto::client::OpValue;
    use ftps_proto::codec::reply::{Reply, ReplyCode};

    fn done(code: u16) -> Completion {
        Completion {
            reply: Reply::new(ReplyCode::new(code).unwrap(), "ok"),
            value: OpValue::None,
        }
    }

    #[test]
    fn only_the_target_operation_is_routed() {
        let mut tracker = OpTracker::new(None);
        let (ours, other) = (OpId::from_raw(2), OpId::from_raw(3));
        let routed = tracker.route(ClientEvent::Readable { op: other }, Some(ours));
        assert!(matches!(routed, Routed::Nothing));
        let routed = tracker.route(ClientEvent::Readable { op: ours }, Some(ours));
        assert!(matches!(routed, Routed::Readable));
        let routed = tracker.route(
            ClientEvent::Completed {
                op: other,
                result: Ok(done(250)),
            },
            Some(ours),
        );
        assert!(matches!(routed, Routed::Nothing));
    }

    #[test]
    fn quit_completes_with_the_orderly_end_and_an_old_completion_is_forgotten() {
        let mut tracker = OpTracker::new(None);
        let quit = OpId::from_raw(7);
        let completed = ClientEvent::Completed {
            op: quit,
            result: Ok(done(221)),
        };
        assert!(matches!(
            tracker.route(completed.clone(), Some(quit)),
            Routed::Completed(Ok(_))
        ));
        match tracker.route(ClientEvent::Closed { error: None }, Some(quit)) {
            Routed::Closed(Ok(done)) => assert_eq!(done.reply.code.get(), 221),
            other => panic!("{other:?}"),
        }
        assert!(tracker.is_closed());

        // An operation that completed earlier does not turn a later end into a success.
        let mut tracker = OpTracker::new(None);
        let _ = tracker.route(completed, Some(quit));
        tracker.start();
        assert!(matches!(
            tracker.route(ClientEvent::Closed { error: None }, Some(OpId::from_raw(8))),
            Routed::Closed(Err(None))
        ));
    }

    #[test]
    fn the_trace_and_features_are_kept() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&lines);
        let mut tracker = OpTracker::new(Some(Box::new(move |_, line: &[u8]| {
            seen.lock().unwrap().push(line.to_vec());
        })));
        let _ = tracker.route(
            ClientEvent::ControlLine {
                direction: TraceDirection::Sent,
                line: b"PASS ****".to_vec(),
            },
            None,
        );
        let ready = tracker.route(
            ClientEvent::Ready {
                features: vec![b"MLST type*;".to_vec()],
            },
            None,
        );
        assert!(matches!(ready, Routed::Ready));
        assert_eq!(tracker.features(), [b"MLST type*;".to_vec()]);
        assert_eq!(*lines.lock().unwrap(), vec![b"PASS ****".to_vec()]);
    }
}
