//! The pair harness: drives `server_support::Pair` (the real client and server sessions with
//! the toy file system) one delivery at a time. A seeded chooser picks which byte queue
//! (per direction, per channel) delivers next and how many bytes (1..=max_chunk), so every
//! segmentation and interleaving of the control and data channels can be explored. Time is
//! simulated: it only moves when nothing can be delivered, straight to the next deadline.
//! Knobs drop a close_notify, cut the control connection, hold deliveries (delay), or inject
//! bytes after `AUTH TLS` / the `234`.

use std::collections::HashMap;
use std::time::Duration;

use ftps_proto::io::{Channel, Instant, Output};

use crate::server_support::{CEv, Inbox, Pair, SEv};

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Dir {
    ToServer,
    ToClient,
}

/// A small deterministic generator seeded from proptest values (xorshift64*), or reading its
/// choices from a tape of bytes first (the fuzz target `pair` hands it the fuzzer's bytes, so
/// that a mutation of one byte changes one delivery, which coverage guidance can follow).
#[derive(Debug, Clone)]
pub(crate) struct Chooser {
    state: u64,
    max_chunk: usize,
    tape: Vec<u8>,
    at: usize,
}

impl Chooser {
    pub(crate) fn new(seed: u64, max_chunk: usize) -> Self {
        Self::with_tape(seed, max_chunk, Vec::new())
    }

    /// Takes each choice from `tape` (a byte per choice below 256, two above) while it lasts,
    /// then from the generator seeded with `seed`.
    pub(crate) fn with_tape(seed: u64, max_chunk: usize, tape: Vec<u8>) -> Self {
        Self {
            state: (seed ^ 0x9E37_79B9_7F4A_7C15) | 1,
            max_chunk: max_chunk.max(1),
            tape,
            at: 0,
        }
    }

    /// Choices taken from the tape so far.
    pub(crate) fn tape_used(&self) -> usize {
        self.at
    }

    fn take_from_tape(&mut self, bytes: usize) -> Option<u64> {
        let end = self.at + bytes;
        let taken = self.tape.get(self.at..end)?;
        self.at = end;
        Some(taken.iter().fold(0, |v, &b| v << 8 | u64::from(b)))
    }

    fn next(&mut self) -> u64 {
        if let Some(v) = self.take_from_tape(1) {
            return v;
        }
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n > 256 {
            if let Some(v) = self.take_from_tape(2) {
                return (v % n as u64) as usize;
            }
        }
        (self.next() % n as u64) as usize
    }
}

/// Fault knobs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Knobs {
    /// Strip the server's close_notify on data connections (EOF comes right after the data).
    pub(crate) drop_server_close_notify: bool,
    /// Strip the client's close_notify on data connections.
    pub(crate) drop_client_close_notify: bool,
    /// Appended to the client's bytes right after `AUTH TLS\r\n`.
    pub(crate) inject_after_auth: Option<Vec<u8>>,
    /// Appended to the server's bytes right after its `234` line.
    pub(crate) inject_after_234: Option<Vec<u8>>,
    /// Deliver nothing towards the client (the network stalls); time still passes.
    pub(crate) hold_to_client: bool,
    /// Before each delivery the clock moves by a random 0..=`step_delay_ms` milliseconds
    /// (a slow network), firing whatever deadline that passes.
    pub(crate) step_delay_ms: u64,
}

/// The harness around a `Pair`.
pub(crate) struct Harness {
    pub(crate) pair: Pair,
    pub(crate) chooser: Chooser,
    pub(crate) knobs: Knobs,
    /// Every byte delivered so far, per direction and channel (the receiver's channel id).
    delivered: HashMap<(Dir, Channel), Vec<u8>>,
    /// Shutdowns whose close_notify knob was already applied.
    stripped: Vec<(Dir, Channel)>,
    injected_after_auth: bool,
    injected_after_234: bool,
    /// Records stripped by the close_notify knobs.
    pub(crate) close_notifies_dropped: usize,
    /// Deliveries attempted so far.
    pub(crate) steps: usize,
    /// The control connection was cut: whatever either side still sends on it is lost.
    control_cut: bool,
}

/// Why `run_until` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The condition held.
    Reached,
    /// Nothing could move and no deadline was armed (or time was not allowed to pass).
    Quiescent,
}

impl Harness {
    pub(crate) fn new(pair: Pair, chooser: Chooser, knobs: Knobs) -> Self {
        Self {
            pair,
            chooser,
            knobs,
            delivered: HashMap::new(),
            stripped: Vec::new(),
            injected_after_auth: false,
            injected_after_234: false,
            close_notifies_dropped: 0,
            steps: 0,
            control_cut: false,
        }
    }

    fn inboxes(&mut self, dir: Dir) -> &mut HashMap<Channel, Inbox> {
        match dir {
            Dir::ToServer => &mut self.pair.to_server,
            Dir::ToClient => &mut self.pair.to_client,
        }
    }

    /// The whole stream on `(dir, channel)`: delivered bytes followed by the queue.
    fn stream(&self, dir: Dir, channel: Channel) -> Vec<u8> {
        let mut all = self
            .delivered
            .get(&(dir, channel))
            .cloned()
            .unwrap_or_default();
        let queue = match dir {
            Dir::ToServer => self.pair.to_server.get(&channel),
            Dir::ToClient => self.pair.to_client.get(&channel),
        };
        if let Some(inbox) = queue {
            all.extend(inbox.bytes.iter().copied());
        }
        all
    }

    /// Drains both sessions, then applies the knobs to what they queued.
    fn drain(&mut self) {
        loop {
            let a = self.pair.drain_client();
            let b = self.pair.drain_server();
            if !a && !b {
                break;
            }
        }
        if self.control_cut {
            for dir in [Dir::ToServer, Dir::ToClient] {
                if let Some(inbox) = self.inboxes(dir).get_mut(&Channel::Control) {
                    inbox.bytes.clear();
                }
            }
        }
        self.apply_knobs();
    }

    /// Cuts the control connection: queued bytes are lost and both sides see its end.
    pub(crate) fn cut_control(&mut self) {
        self.control_cut = true;
        for dir in [Dir::ToServer, Dir::ToClient] {
            let inbox = self.inboxes(dir).entry(Channel::Control).or_default();
            inbox.bytes.clear();
            inbox.eof_after = true;
            inbox.eof_delivered = true;
        }
        let now = self.pair.now;
        self.pair.client.handle_eof(Channel::Control, now);
        self.pair.server.handle_eof(Channel::Control, now);
    }

    fn apply_knobs(&mut self) {
        if let Some(extra) = self.knobs.inject_after_auth.clone() {
            if !self.injected_after_auth
                && self
                    .stream(Dir::ToServer, Channel::Control)
                    .ends_with(b"AUTH TLS\r\n")
            {
                self.injected_after_auth = true;
                self.pair
                    .to_server
                    .entry(Channel::Control)
                    .or_default()
                    .bytes
                    .extend(extra);
            }
        }
        if let Some(extra) = self.knobs.inject_after_234.clone() {
            let stream = self.stream(Dir::ToClient, Channel::Control);
            if !self.injected_after_234 && stream.ends_with(b"\r\n") {
                let body = &stream[..stream.len() - 2];
                let line_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                if stream[line_start..].starts_with(b"234 ") {
                    self.injected_after_234 = true;
                    self.pair
                        .to_client
                        .entry(Channel::Control)
                        .or_default()
                        .bytes
                        .extend(extra);
                }
            }
        }
        for (dir, wanted) in [
            (Dir::ToClient, self.knobs.drop_server_close_notify),
            (Dir::ToServer, self.knobs.drop_client_close_notify),
        ] {
            if !wanted {
                continue;
            }
            let closing: Vec<Channel> = self
                .inboxes(dir)
                .iter()
                .filter(|(ch, inbox)| {
                    matches!(ch, Channel::Data(_)) && inbox.eof_after && !inbox.eof_delivered
                })
                .map(|(ch, _)| *ch)
                .collect();
            for channel in closing {
                if self.stripped.contains(&(dir, channel)) {
                    continue;
                }
                self.stripped.push((dir, channel));
                self.strip_last_record(dir, channel);
            }
        }
    }

    /// Removes the final TLS record (the close_notify alert) from a queue whose sender has
    /// shut its write side. The record boundaries are found from the start of the stream.
    fn strip_last_record(&mut self, dir: Dir, channel: Channel) {
        let stream = self.stream(dir, channel);
        let delivered = self.delivered.get(&(dir, channel)).map_or(0, Vec::len);
        let mut at = 0;
        let mut last = None;
        while at + 5 <= stream.len() {
            let len = usize::from(u16::from_be_bytes([stream[at + 3], stream[at + 4]]));
            last = Some((at, stream[at], len));
            at += 5 + len;
        }
        assert_eq!(
            at,
            stream.len(),
            "the stream does not end on a record boundary"
        );
        // A connection closed without a close_notify (an aborted or failed transfer) ends on
        // another record, or on none: there is nothing to strip. Tests that expect a strip
        // check `close_notifies_dropped`.
        let Some((start, kind, len)) = last else {
            return;
        };
        // TLS 1.3 hides the alert in an application_data record of 2 + 1 + 16 bytes;
        // TLS 1.2 sends an alert record.
        // (A record already delivered was data of the same size, not the alert.)
        if !(kind == 21 || (kind == 23 && len == 19)) || start < delivered {
            return;
        }
        let queue = &mut self.inboxes(dir).get_mut(&channel).unwrap().bytes;
        let keep = queue.len() - (stream.len() - start);
        queue.truncate(keep);
        self.close_notifies_dropped += 1;
    }

    /// Queues that can deliver something now.
    fn ready(&self) -> Vec<(Dir, Channel)> {
        let mut ready = Vec::new();
        for (dir, map) in [
            (Dir::ToServer, &self.pair.to_server),
            (Dir::ToClient, &self.pair.to_client),
        ] {
            if dir == Dir::ToClient && self.knobs.hold_to_client {
                continue;
            }
            for (ch, inbox) in map {
                if !inbox.bytes.is_empty() || (inbox.eof_after && !inbox.eof_delivered) {
                    ready.push((dir, *ch));
                }
            }
        }
        // HashMap order is random per process; sort so the seed alone decides.
        ready.sort_by_key(|(dir, ch)| {
            (
                *dir == Dir::ToClient,
                match ch {
                    Channel::Control => 0,
                    Channel::Data(id) => 1 + u64::from(id.get()),
                },
            )
        });
        ready
    }

    /// Delivers one chunk (or the EOF) on one chosen queue. Returns false if none is ready.
    fn deliver_one(&mut self) -> bool {
        if self.ready().is_empty() {
            return false;
        }
        if self.knobs.step_delay_ms > 0 {
            let ms = self.chooser.next() % (self.knobs.step_delay_ms + 1);
            self.pair.now = self.pair.now.saturating_add(Duration::from_millis(ms));
            let now = self.pair.now;
            self.pair.client.handle_timeout(now);
            self.pair.server.handle_timeout(now);
            // A timeout may change what is queued.
            self.drain();
        }
        let ready = self.ready();
        if ready.is_empty() {
            return true;
        }
        let (dir, channel) = ready[self.chooser.below(ready.len())];
        let max_chunk = self.chooser.max_chunk;
        let want = 1 + self.chooser.below(max_chunk);
        let now = self.pair.now;
        let inbox = self.inboxes(dir).get_mut(&channel).unwrap();
        if inbox.bytes.is_empty() {
            inbox.eof_delivered = true;
            match dir {
                Dir::ToServer => self.pair.server.handle_eof(channel, now),
                Dir::ToClient => self.pair.client.handle_eof(channel, now),
            }
            return true;
        }
        let n = want.min(inbox.bytes.len());
        let chunk: Vec<u8> = inbox.bytes.iter().take(n).copied().collect();
        let taken = match dir {
            Dir::ToServer => self.pair.server.handle_receive(channel, &chunk, now),
            Dir::ToClient => self.pair.client.handle_receive(channel, &chunk, now),
        };
        assert!(taken <= n);
        let inbox = self.inboxes(dir).get_mut(&channel).unwrap();
        inbox.bytes.drain(..taken);
        self.delivered
            .entry((dir, channel))
            .or_default()
            .extend_from_slice(&chunk[..taken]);
        true
    }

    /// The earliest deadline either session waits for.
    fn next_deadline(&mut self) -> Option<Instant> {
        let mut buf = [0u8; 0];
        let now = self.pair.now;
        let client = match self.pair.client.poll_output(&mut buf, now) {
            Output::Wait { deadline } => deadline,
            other => panic!("the client was not drained: {other:?}"),
        };
        let server = self.pair.server.next_deadline();
        [client, server].into_iter().flatten().min()
    }

    /// Delivers chunks chosen by the chooser until `done` holds or nothing can move. With
    /// `let_time_pass`, a stall moves the clock to the next deadline and fires timeouts.
    pub(crate) fn run_until(
        &mut self,
        let_time_pass: bool,
        mut done: impl FnMut(&Pair) -> bool,
    ) -> Stop {
        for _ in 0..5_000_000 {
            self.drain();
            if done(&self.pair) {
                return Stop::Reached;
            }
            self.steps += 1;
            if self.deliver_one() {
                continue;
            }
            if !let_time_pass {
                return Stop::Quiescent;
            }
            match self.next_deadline() {
                Some(deadline) => {
                    self.pair.now = deadline.max(self.pair.now);
                    let now = self.pair.now;
                    self.pair.client.handle_timeout(now);
                    self.pair.server.handle_timeout(now);
                }
                None => return Stop::Quiescent,
            }
        }
        panic!("the pair did not settle");
    }

    /// Runs until nothing moves without time passing.
    pub(crate) fn settle(&mut self) {
        self.run_until(false, |_| false);
    }

    /// How many `Closed` events each side reported.
    pub(crate) fn closed_counts(&self) -> (usize, usize) {
        let client = self
            .pair
            .client_events
            .iter()
            .filter(|e| matches!(e, CEv::Closed))
            .count();
        let server = self
            .pair
            .server_events
            .iter()
            .filter(|e| matches!(e, SEv::Closed(_)))
            .count();
        (client, server)
    }

    /// Everything the server sent on the control channel so far (delivered or queued).
    pub(crate) fn server_control_stream(&self) -> Vec<u8> {
        self.stream(Dir::ToClient, Channel::Control)
    }
}
