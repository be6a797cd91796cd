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

mod options;

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
}

impl std::fmt::Debug for OpTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpTracker")
            .field("tls_info", &self.tls_info)
            .field("features", &self.features.len())
            .field("trace", &self.trace.is_some())
            .field("closed", &self.closed)
            .finish()
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

    /// The driver starts a new operation: forget the last one's completion.
    pub fn start(&mut self) {
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
