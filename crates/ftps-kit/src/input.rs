//! Received bytes a session has not taken yet, per channel.
//!
//! A session's `handle_receive` takes what its buffers have room for and returns how many
//! bytes that was: that is its backpressure. A driver keeps the rest, feeds it again after
//! draining the session's output, and does not read that channel's socket meanwhile (the
//! channel is *paused*). An end of stream read while bytes are still held is delivered only
//! once they were all taken, so the session never sees the end before the last bytes.
//! [`InputBacklog`] is that bookkeeping; the driver reads sockets and calls it, and it talks
//! to the session through an [`InputSink`] (for the sessions of this engine:
//! [`SessionInput`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::Hash;

use ftps_proto::io::{Channel, Instant, Session};

/// Where received input goes: a session's `handle_receive` and `handle_eof`.
pub trait InputSink<C = Channel> {
    /// What feeding bytes can fail with.
    type Error;

    /// Feeds `bytes` (never empty) received on `channel`; returns how many were taken.
    fn receive(&mut self, channel: C, bytes: &[u8]) -> Result<usize, Self::Error>;

    /// Reports the end of `channel`'s stream.
    fn end(&mut self, channel: C);
}

/// A session with the time its input arrived: the [`InputSink`] of the client and server
/// sessions.
#[derive(Debug)]
pub struct SessionInput<'a, S> {
    session: &'a mut S,
    now: Instant,
}

impl<'a, S> SessionInput<'a, S> {
    /// Input for `session`, received at `now`.
    pub fn new(session: &'a mut S, now: Instant) -> Self {
        Self { session, now }
    }
}

impl<S: Session> InputSink for SessionInput<'_, S> {
    type Error = Infallible;

    fn receive(&mut self, channel: Channel, bytes: &[u8]) -> Result<usize, Infallible> {
        Ok(self.session.handle_receive(channel, bytes, self.now))
    }

    fn end(&mut self, channel: Channel) {
        self.session.handle_eof(channel, self.now);
    }
}

/// What one paused channel holds back.
#[derive(Debug, Default)]
struct Held {
    /// Received, not taken yet (never empty while held).
    bytes: Vec<u8>,
    /// The stream ended after these bytes.
    ended: bool,
}

/// The received bytes (and ends of stream) of each channel that its session has not taken
/// yet. A channel with something held is *paused*: its socket must not be read until
/// [`retry`](Self::retry) fed everything.
#[derive(Debug)]
pub struct InputBacklog<C = Channel> {
    held: HashMap<C, Held>,
}

impl<C> Default for InputBacklog<C> {
    fn default() -> Self {
        Self {
            held: HashMap::new(),
        }
    }
}

impl<C: Copy + Eq + Hash> InputBacklog<C> {
    /// An empty backlog: nothing held, nothing paused.
    pub fn new() -> Self {
        Self::default()
    }

    /// `bytes` were just read from `channel`: feeds them and keeps what was not taken (the
    /// channel is then paused). Bytes of a channel that already holds some are queued behind
    /// them.
    pub fn received<S: InputSink<C>>(
        &mut self,
        sink: &mut S,
        channel: C,
        bytes: &[u8],
    ) -> Result<(), S::Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(held) = self.held.get_mut(&channel) {
            held.bytes.extend_from_slice(bytes);
            return Ok(());
        }
        let taken = sink.receive(channel, bytes)?.min(bytes.len());
        if taken < bytes.len() {
            self.held.insert(
                channel,
                Held {
                    bytes: bytes[taken..].to_vec(),
                    ended: false,
                },
            );
        }
        Ok(())
    }

    /// `channel`'s stream just ended: reported at once when nothing is held for it, otherwise
    /// held until [`retry`](Self::retry) fed its last bytes.
    pub fn ended<S: InputSink<C>>(&mut self, sink: &mut S, channel: C) {
        match self.held.get_mut(&channel) {
            Some(held) => held.ended = true,
            None => sink.end(channel),
        }
    }

    /// Feeds every channel's held bytes again (after the session's output was drained) and
    /// reports the ends of stream whose bytes are now all taken. Returns whether anything
    /// progressed (bytes taken or an end reported): then drain the session again before
    /// waiting for sockets.
    pub fn retry<S: InputSink<C>>(&mut self, sink: &mut S) -> Result<bool, S::Error> {
        let mut progressed = false;
        let channels: Vec<C> = self.held.keys().copied().collect();
        for channel in channels {
            let Some(held) = self.held.get_mut(&channel) else {
                continue;
            };
            let taken = sink.receive(channel, &held.bytes)?.min(held.bytes.len());
            held.bytes.drain(..taken);
            progressed |= taken > 0;
            if held.bytes.is_empty() {
                let ended = held.ended;
                self.held.remove(&channel);
                if ended {
                    sink.end(channel);
                    progressed = true;
                }
            }
        }
        Ok(progressed)
    }

    /// Whether `channel` holds input back (its socket must not be read now).
    pub fn is_paused(&self, channel: C) -> bool {
        self.held.contains_key(&channel)
    }

    /// The channels holding input back, to leave out of the sockets waited on.
    pub fn paused(&self) -> Vec<C> {
        self.held.keys().copied().collect()
    }

    /// Whether nothing is held for any channel.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Drops whatever `channel` holds (its socket was closed).
    pub fn forget(&mut self, channel: C) {
        self.held.remove(&channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a sink saw, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Bytes(u8, Vec<u8>),
        End(u8),
    }

    /// Takes at most `room` bytes per call (per channel); fails when `fail` is set.
    #[derive(Default)]
    struct Sink {
        room: usize,
        fail: bool,
        seen: Vec<Seen>,
    }

    impl InputSink<u8> for Sink {
        type Error = &'static str;

        fn receive(&mut self, channel: u8, bytes: &[u8]) -> Result<usize, &'static str> {
            assert!(!bytes.is_empty(), "fed an empty slice");
            if self.fail {
                return Err("refused");
            }
            let n = self.room.min(bytes.len());
            if n > 0 {
                self.seen.push(Seen::Bytes(channel, bytes[..n].to_vec()));
            }
            Ok(n)
        }

        fn end(&mut self, channel: u8) {
            self.seen.push(Seen::End(channel));
        }
    }

    fn sink(room: usize) -> Sink {
        Sink {
            room,
            ..Sink::default()
        }
    }

    #[test]
    fn everything_taken_holds_nothing() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(100);
        backlog.received(&mut sink, 1, b"hello").unwrap();
        assert!(backlog.is_empty());
        assert!(!backlog.is_paused(1));
        assert!(!backlog.retry(&mut sink).unwrap());
        backlog.ended(&mut sink, 1);
        assert_eq!(sink.seen, [Seen::Bytes(1, b"hello".to_vec()), Seen::End(1)]);
    }

    #[test]
    fn partial_takes_are_fed_again_in_order() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(2);
        backlog.received(&mut sink, 1, b"abcde").unwrap();
        assert!(backlog.is_paused(1));
        assert_eq!(backlog.paused(), [1]);
        assert!(backlog.retry(&mut sink).unwrap());
        assert!(backlog.retry(&mut sink).unwrap());
        assert!(backlog.is_empty());
        assert!(!backlog.retry(&mut sink).unwrap());
        assert_eq!(
            sink.seen,
            [
                Seen::Bytes(1, b"ab".to_vec()),
                Seen::Bytes(1, b"cd".to_vec()),
                Seen::Bytes(1, b"e".to_vec()),
            ]
        );
    }

    #[test]
    fn nothing_taken_is_no_progress() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(0);
        backlog.received(&mut sink, 3, b"xyz").unwrap();
        assert!(backlog.is_paused(3));
        assert!(!backlog.retry(&mut sink).unwrap());
        sink.room = 10;
        assert!(backlog.retry(&mut sink).unwrap());
        assert!(!backlog.is_paused(3));
        assert_eq!(sink.seen, [Seen::Bytes(3, b"xyz".to_vec())]);
    }

    #[test]
    fn bytes_of_a_paused_channel_queue_behind_the_held_ones() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(1);
        backlog.received(&mut sink, 1, b"ab").unwrap();
        backlog.received(&mut sink, 1, b"cd").unwrap();
        sink.room = 10;
        assert!(backlog.retry(&mut sink).unwrap());
        assert_eq!(
            sink.seen,
            [
                Seen::Bytes(1, b"a".to_vec()),
                Seen::Bytes(1, b"bcd".to_vec())
            ]
        );
    }

    #[test]
    fn end_of_stream_waits_for_the_held_bytes() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(1);
        backlog.received(&mut sink, 1, b"abc").unwrap();
        backlog.ended(&mut sink, 1);
        assert_eq!(sink.seen, [Seen::Bytes(1, b"a".to_vec())]);
        assert!(backlog.is_paused(1));
        assert!(backlog.retry(&mut sink).unwrap());
        assert!(!sink.seen.contains(&Seen::End(1)));
        assert!(backlog.retry(&mut sink).unwrap());
        assert!(backlog.is_empty());
        assert_eq!(
            sink.seen,
            [
                Seen::Bytes(1, b"a".to_vec()),
                Seen::Bytes(1, b"b".to_vec()),
                Seen::Bytes(1, b"c".to_vec()),
                Seen::End(1),
            ]
        );
        // Reported once.
        assert!(!backlog.retry(&mut sink).unwrap());
        assert_eq!(sink.seen.len(), 4);
    }

    #[test]
    fn end_of_stream_alone_is_progress_when_released() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(0);
        backlog.received(&mut sink, 2, b"z").unwrap();
        backlog.ended(&mut sink, 2);
        assert!(!backlog.retry(&mut sink).unwrap());
        assert!(sink.seen.is_empty());
        sink.room = 1;
        assert!(backlog.retry(&mut sink).unwrap());
        assert_eq!(sink.seen, [Seen::Bytes(2, b"z".to_vec()), Seen::End(2)]);
    }

    #[test]
    fn channels_are_independent() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(1);
        backlog.received(&mut sink, 1, b"ab").unwrap();
        backlog.received(&mut sink, 2, b"cd").unwrap();
        backlog.ended(&mut sink, 3);
        let mut paused = backlog.paused();
        paused.sort_unstable();
        assert_eq!(paused, [1, 2]);
        backlog.ended(&mut sink, 2);
        assert!(backlog.retry(&mut sink).unwrap());
        assert!(backlog.is_empty());
        assert_eq!(
            sink.seen[..3],
            [
                Seen::Bytes(1, b"a".to_vec()),
                Seen::Bytes(2, b"c".to_vec()),
                Seen::End(3),
            ]
        );
        assert!(sink.seen.contains(&Seen::Bytes(1, b"b".to_vec())));
        let d = sink
            .seen
            .iter()
            .position(|s| *s == Seen::Bytes(2, b"d".to_vec()));
        let end = sink.seen.iter().position(|s| *s == Seen::End(2));
        assert!(d.unwrap() < end.unwrap());
    }

    #[test]
    fn forget_drops_bytes_and_end() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(0);
        backlog.received(&mut sink, 1, b"abc").unwrap();
        backlog.ended(&mut sink, 1);
        backlog.received(&mut sink, 2, b"def").unwrap();
        backlog.forget(1);
        assert!(!backlog.is_paused(1));
        assert_eq!(backlog.paused(), [2]);
        sink.room = 10;
        assert!(backlog.retry(&mut sink).unwrap());
        assert_eq!(sink.seen, [Seen::Bytes(2, b"def".to_vec())]);
        // Forgetting a channel that holds nothing is harmless.
        backlog.forget(7);
        assert!(backlog.is_empty());
    }

    #[test]
    fn errors_keep_the_bytes() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(1);
        backlog.received(&mut sink, 1, b"ab").unwrap();
        sink.fail = true;
        assert_eq!(backlog.retry(&mut sink), Err("refused"));
        assert!(backlog.is_paused(1));
        sink.fail = false;
        assert!(backlog.retry(&mut sink).unwrap());
        assert!(backlog.is_empty());
        // A failure on fresh bytes leaves nothing held: the caller reports the error.
        sink.fail = true;
        assert_eq!(backlog.received(&mut sink, 1, b"x"), Err("refused"));
    }

    #[test]
    fn empty_reads_are_ignored() {
        let mut backlog = InputBacklog::new();
        let mut sink = sink(0);
        backlog.received(&mut sink, 1, b"").unwrap();
        assert!(backlog.is_empty());
        assert!(sink.seen.is_empty());
    }
}
