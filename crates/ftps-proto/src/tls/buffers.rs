//! The adapter's three bounded buffers: received TLS bytes, TLS bytes to transmit, and the one
//! decrypted record lent to the caller.

use alloc::vec::Vec;

/// Received TLS bytes not yet discarded by rustls. `buf[start..]` is what rustls sees; the
/// front `start` bytes were discarded and are dropped lazily (one move per `append`, not one
/// per record).
#[derive(Debug, Default)]
pub(super) struct Incoming {
    buf: Vec<u8>,
    start: usize,
}

impl Incoming {
    /// Bytes still owned by the TLS engine (or, after the peer's close_notify, the plaintext
    /// tail).
    pub(super) fn unprocessed(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(super) fn unprocessed_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends as much of `bytes` as fits under `cap` unprocessed bytes; returns how many.
    pub(super) fn append(&mut self, bytes: &[u8], cap: usize) -> usize {
        if self.start > 0 {
            // rustls's remembered offsets are relative to the slice we pass, whose front is
            // `start`; moving the contents to index 0 keeps that slice identical.
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        let accepted = bytes.len().min(cap.saturating_sub(self.buf.len()));
        self.buf.extend_from_slice(&bytes[..accepted]);
        accepted
    }

    /// Drops `n` bytes from the front, exactly as rustls's `discard` says. Never more than held
    /// (a defensive clamp: rustls guarantees it).
    pub(super) fn discard(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Moves the unprocessed bytes out (the CCC plaintext tail).
    pub(super) fn take(&mut self) -> Vec<u8> {
        let tail = self.buf.split_off(self.start);
        self.buf.clear();
        self.start = 0;
        tail
    }
}

/// TLS bytes produced for transmission: `buf[start..end]` is pending. `buf.len()` is the
/// initialised capacity, so rustls can write into `buf[end..]` without zero-filling every time.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Outgoing {
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(super) fn pending_len(&self) -> usize {
        self.end - self.start
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Makes at least `n` writable bytes available after the pending ones.
    pub(super) fn reserve(&mut self, n: usize) {
        if self.buf.len() - self.end >= n {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < n {
            self.buf.resize(self.end + n, 0);
        }
    }

    /// The writable space after the pending bytes.
    pub(super) fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes written into [`Outgoing::spare`] as pending.
    pub(super) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Drops pending bytes beyond the first `len` (used to withhold a server flight).
    pub(super) fn truncate_pending(&mut self, len: usize) {
        if len < self.pending_len() {
            self.end = self.start + len;
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.spare()[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }
}

/// One decrypted application-data record, lent to the caller until its next call.
#[derive(Debug, Default)]
pub(super) struct Plaintext {
    buf: Vec<u8>,
    /// Set when the bytes were lent out by `poll`; any later call drops them.
    lent: bool,
}

impl Plaintext {
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(super) fn fill(&mut self, record: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(record);
        self.lent = false;
    }

    pub(super) fn lend(&mut self) -> &[u8] {
        self.lent = true;
        &self.buf
    }

    /// Drops the bytes if they were lent out: the borrow ended with the caller's next call.
    pub(super) fn release_lent(&mut self) {
        if self.lent {
            self.buf.clear();
            self.lent = false;
        }
    }
}
