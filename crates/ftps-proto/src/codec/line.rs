//! A bounded, incremental line framer for the control channel.
//!
//! Both directions of the FTP control channel are Telnet-style text lines ended by `CRLF`
//! (RFC 959 §4.1, §4.2). TCP (and TLS) read boundaries mean nothing (RFC 1123 §4.1.2.10), so the
//! framer accepts bytes in any chunking and hands out complete lines only.
//!
//! Rules:
//! - A line ends at `LF`. A `CR` immediately before that `LF` is part of the terminator and is
//!   stripped; a bare `LF` is accepted leniently. A bare `CR` is **not** a line end: treating it as
//!   one would let a peer split a command or reply in a way the other side does not see.
//! - Memory is bounded. A line whose content (terminator excluded) is longer than the configured
//!   maximum is reported once as [`LineTooLong`], as soon as that is certain, even before its `LF`
//!   arrives. The framer then discards bytes up to and including the next `LF`, so the session may
//!   choose to continue. The internal buffer never holds more than the maximum line length plus the
//!   bytes pushed since the last time every complete line was drained.
//! - [`LineFramer::is_empty`] tells whether any byte is still buffered. The explicit TLS upgrade
//!   depends on it: a server must refuse bytes that follow the `AUTH TLS` line and a client must
//!   refuse bytes that follow the `234` reply, since they were not protected (CVE-2011-0411 and
//!   CVE-2021-22947 class; checklist §9.1/§9.2).
//!
//! Usage: [`push`](LineFramer::push) what was read, then call [`next_line`](LineFramer::next_line)
//! until it returns `None`.

use alloc::vec::Vec;

/// Smallest accepted maximum line length; smaller configured values are raised to this.
///
/// The reply and command parsers need the first few bytes of an over-long line (the reply code
/// and separator, or the verb) to recover from it, and [`LineTooLong::head`] holds that many.
pub const MIN_MAX_LINE_LEN: usize = LineTooLong::HEAD_CAPACITY;

/// A line longer than the configured maximum; it has been (or is being) discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line longer than {max_line_len} bytes")]
pub struct LineTooLong {
    max_line_len: usize,
    head: [u8; Self::HEAD_CAPACITY],
    head_len: u8,
}

impl LineTooLong {
    /// How many leading bytes of the discarded line [`head`](Self::head) keeps.
    pub const HEAD_CAPACITY: usize = 8;

    fn new(max_line_len: usize, line_start: &[u8]) -> Self {
        let head_len = line_start.len().min(Self::HEAD_CAPACITY);
        let mut head = [0; Self::HEAD_CAPACITY];
        head[..head_len].copy_from_slice(&line_start[..head_len]);
        Self {
            max_line_len,
            head,
            // Cannot truncate: head_len <= HEAD_CAPACITY = 8.
            head_len: head_len as u8,
        }
    }

    /// The maximum line length that was exceeded.
    pub fn max_line_len(&self) -> usize {
        self.max_line_len
    }

    /// The first bytes (at most [`HEAD_CAPACITY`](Self::HEAD_CAPACITY)) of the discarded line,
    /// so a parser can tell which reply code or verb it belonged to.
    pub fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }
}

/// Splits a byte stream into lines ended by `LF` (optionally preceded by `CR`), with a bounded
/// buffer. See the [module documentation](self) for the rules.
#[derive(Debug, Clone)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Start of the first byte not yet handed out as part of a line.
    start: usize,
    /// `buf[start..scanned]` is known to contain no `LF`, so it is not searched again.
    scanned: usize,
    max_line_len: usize,
    /// Dropping the remainder of an over-long line, up to and including its `LF`.
    discarding: bool,
}

impl LineFramer {
    /// A framer for lines of at most `max_line_len` content bytes (terminator excluded; values
    /// below [`MIN_MAX_LINE_LEN`] are raised to it).
    pub fn new(max_line_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line_len: max_line_len.max(MIN_MAX_LINE_LEN),
            discarding: false,
        }
    }

    /// The effective maximum line length (content bytes, terminator excluded).
    pub fn max_line_len(&self) -> usize {
        self.max_line_len
    }

    /// Appends received bytes. Drain with [`next_line`](Self::next_line) afterwards.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if self.discarding {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    self.discarding = false;
                    bytes = &bytes[lf + 1..];
                }
                None => return,
            }
        }
        if bytes.is_empty() {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line without its terminator, or the report of an over-long line;
    /// `None` when no complete line is buffered.
    ///
    /// The slice is borrowed until the next call on the framer.
    pub fn next_line(&mut self) -> Option<Result<&[u8], LineTooLong>> {
        let pending = &self.buf[self.scanned..];
        match pending.iter().position(|&b| b == b'\n') {
            Some(offset) => {
                let lf = self.scanned + offset;
                let line_start = self.start;
                self.start = lf + 1;
                self.scanned = self.start;
                let mut line = &self.buf[line_start..lf];
                if let [content @ .., b'\r'] = line {
                    line = content;
                }
                if line.len() > self.max_line_len {
                    return Some(Err(LineTooLong::new(self.max_line_len, line)));
                }
                Some(Ok(line))
            }
            None => {
                self.scanned = self.buf.len();
                let partial = &self.buf[self.start..];
                // A legal line can buffer at most max_line_len content bytes plus the CR of its
                // terminator before the LF arrives; anything more is certainly too long.
                let certainly_too_long = partial.len() > self.max_line_len + 1
                    || (partial.len() == self.max_line_len + 1 && partial.last() != Some(&b'\r'));
                if !certainly_too_long {
                    return None;
                }
                let error = LineTooLong::new(self.max_line_len, partial);
                self.clear();
                self.discarding = true;
                Some(Err(error))
            }
        }
    }

    /// `true` when no byte is buffered (bytes of an over-long line being discarded are dropped,
    /// not buffered).
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// Number of bytes buffered and not yet handed out as lines.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// `true` while the rest of an over-long line is being dropped (up to its `LF`).
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Takes every buffered byte, raw (terminators included), and resets the framer to empty.
    ///
    /// For channel transitions: after CCC the bytes that follow must go to another consumer
    /// unchanged, and at a TLS upgrade any leftover bytes must be inspected or refused rather
    /// than parsed.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let mut taken = core::mem::take(&mut self.buf);
        taken.drain(..self.start);
        self.start = 0;
        self.scanned = 0;
        self.discarding = false;
        taken
    }

    /// Drops every buffered byte and any pending discard.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
        self.discarding = false;
    }

    /// Removes the bytes already handed out, so the buffer only holds the pending partial line.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.drain(..self.start);
        self.scanned -= self.start;
        self.start = 0;
    }
}

impl Default for LineFramer {
    /// A framer with an 8 KiB line limit.
    fn default() -> Self {
        Self::new(8 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    /// Feeds `chunks` and drains after each, collecting lines (as owned bytes) and errors.
    fn run(framer: &mut LineFramer, chunks: &[&[u8]]) -> Vec<Result<Vec<u8>, LineTooLong>> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(item) = framer.next_line() {
                out.push(item.map(<[u8]>::to_vec));
            }
        }
        out
    }

    #[test]
    fn crlf_and_bare_lf_end_lines_but_bare_cr_does_not() {
        let mut framer = LineFramer::new(64);
        let out = run(&mut framer, &[b"one\r\ntwo\nthree\rstill three\r\n"]);
        assert_eq!(
            out,
            vec![
                Ok(b"one".to_vec()),
                Ok(b"two".to_vec()),
                Ok(b"three\rstill three".to_vec()),
            ]
        );
        assert!(framer.is_empty());
    }

    #[test]
    fn only_one_cr_before_lf_is_stripped() {
        let mut framer = LineFramer::new(64);
        assert_eq!(run(&mut framer, &[b"a\r\r\n"]), vec![Ok(b"a\r".to_vec())]);
    }

    #[test]
    fn partial_line_stays_buffered_and_is_reported() {
        let mut framer = LineFramer::new(64);
        assert!(run(&mut framer, &[b"USER x\r\nPA"]).len() == 1);
        assert!(!framer.is_empty());
        assert_eq!(framer.buffered_len(), 2);
        assert_eq!(framer.take_buffered(), b"PA".to_vec());
        assert!(framer.is_empty());
        assert_eq!(framer.next_line(), None);
    }

    // spec: §9.1 — the upgrade check can see bytes pipelined after the AUTH TLS line.
    #[test]
    fn bytes_after_a_complete_line_are_visible_and_taken_raw() {
        let mut framer = LineFramer::new(64);
        framer.push(b"AUTH TLS\r\nUSER evil\r\n");
        assert_eq!(framer.next_line(), Some(Ok(&b"AUTH TLS"[..])));
        assert!(!framer.is_empty());
        assert_eq!(framer.take_buffered(), b"USER evil\r\n".to_vec());
        assert!(framer.is_empty());
    }

    #[test]
    fn line_of_exactly_max_len_is_accepted_in_any_chunking() {
        let line = [b'x'; 16];
        let mut framer = LineFramer::new(16);
        let mut chunks: Vec<&[u8]> = line.chunks(1).collect();
        chunks.push(b"\r");
        chunks.push(b"\n");
        assert_eq!(run(&mut framer, &chunks), vec![Ok(line.to_vec())]);
    }

    #[test]
    fn overlong_partial_line_is_reported_early_then_discarded_to_lf() {
        let mut framer = LineFramer::new(8);
        framer.push(b"ok\r\n0123456789");
        assert_eq!(framer.next_line(), Some(Ok(&b"ok"[..])));
        let err = framer.next_line().unwrap().unwrap_err();
        assert_eq!(err.max_line_len(), 8);
        assert_eq!(err.head(), b"01234567");
        // Reported once; the rest of the line is dropped, not buffered.
        assert!(framer.is_discarding());
        assert!(framer.is_empty());
        framer.push(b"more garbage");
        assert!(framer.is_empty());
        assert_eq!(framer.next_line(), None);
        framer.push(b" end\r\nnext\r\n");
        assert!(!framer.is_discarding());
        assert_eq!(framer.next_line(), Some(Ok(&b"next"[..])));
        assert_eq!(framer.next_line(), None);
    }

    #[test]
    fn overlong_is_reported_as_soon_as_it_is_certain() {
        let mut framer = LineFramer::new(8);
        // max + 1 bytes ending in CR could still be the legal line "0123456\r" before its CRLF.
        framer.push(b"0123456\r\r");
        assert_eq!(framer.next_line(), None);
        framer.push(b"x");
        assert!(framer.next_line().unwrap().is_err());

        let mut framer = LineFramer::new(8);
        framer.push(b"01234567\r");
        assert_eq!(framer.next_line(), None);
        framer.push(b"\n");
        assert_eq!(framer.next_line(), Some(Ok(&b"01234567"[..])));

        // max + 1 bytes not ending in CR: certainly too long, before any further byte.
        let mut framer = LineFramer::new(8);
        framer.push(b"012345678");
        assert!(framer.next_line().unwrap().is_err());
        assert!(framer.is_empty());
    }

    #[test]
    fn overlong_complete_line_is_one_error() {
        let mut framer = LineFramer::new(8);
        let out = run(&mut framer, &[b"0123456789\r\nnext\r\n"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap_err().head(), b"01234567");
        assert_eq!(out[1], Ok(b"next".to_vec()));
    }

    #[test]
    fn max_len_is_clamped_to_the_minimum() {
        assert_eq!(LineFramer::new(0).max_line_len(), MIN_MAX_LINE_LEN);
    }

    #[test]
    fn buffer_is_bounded_when_drained_after_every_push() {
        let mut framer = LineFramer::new(32);
        for _ in 0..1000 {
            framer.push(b"abcdefghijklmnop");
            while framer.next_line().is_some() {}
            assert!(framer.buffered_len() <= 32 + 1);
        }
    }

    /// Splits `input` at the given cut points (taken modulo the length).
    fn chunked(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(input[last..p].to_vec());
            last = p;
        }
        chunks.push(input[last..].to_vec());
        chunks
    }

    proptest! {
        #[test]
        fn split_invariance(
            input in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()], 0..200),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
            max in 8usize..24,
        ) {
            let whole = run(&mut LineFramer::new(max), &[&input]);
            let chunks = chunked(&input, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let mut framer = LineFramer::new(max);
            let split = run(&mut framer, &refs);
            prop_assert_eq!(&whole, &split);
            prop_assert!(framer.buffered_len() <= max + 1);
            // Every emitted line respects the limit and holds no LF.
            for line in whole.iter().flatten() {
                prop_assert!(line.len() <= max);
                prop_assert!(!line.contains(&b'\n'));
            }
        }
    }
}
