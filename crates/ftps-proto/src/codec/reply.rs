//! FTP replies: codes, values, an incremental parser (client role) and an encoder (server role).
//!
//! Syntax (RFC 959 §4.2, RFC 1123 §4.1.2.11, RFC 2389 §2.2; checklist §3.1):
//! - A single-line reply is `ddd SP text CRLF`.
//! - A multi-line reply starts with `ddd-text CRLF` and ends at the first later line that begins
//!   with the **same** three digits followed by a space. Lines in between may be anything: empty,
//!   starting with digits, with another code and a space, or with `ddd-`. Replies do not nest.
//! - Only the code drives the protocol; the text is for humans and is kept as raw bytes, never
//!   lossily converted (pathnames in 257 replies need not be UTF-8).
//!
//! The [`ReplyParser`] is strict where strictness protects the client and lenient where real
//! servers deviate harmlessly:
//! - strict: the code must be three digits with a first digit of 1–6, and the 4th byte of a first
//!   line must be SP or `-`;
//! - lenient: a bare `LF` ends a line, and a line that is exactly `ddd` (nothing after the code)
//!   is a complete single-line reply or a multi-line terminator.
//!
//! Memory is bounded by [`ReplyLimits`]. Exceeding a limit is a [`ReplyError`] reported once per
//! reply, after which the parser skips to that reply's terminator so the caller may continue
//! (RFC 1123 §4.1.2.11: a client must recover from its own limits).
//!
//! The encoder pads a middle line that starts with a digit with one space, as RFC 959 §4.2
//! requires, so it can never be taken for the end of the reply.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::line::{LineFramer, LineTooLong, MIN_MAX_LINE_LEN};

/// A three-digit reply code, `100` to `699` (first digit 1–5 per RFC 959, 6 for the RFC 2228
/// protected replies).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyCode(u16);

/// The meaning of a reply code's first digit (RFC 959 §4.2.1, RFC 2228 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyClass {
    /// `1yz`: the action is starting; expect another reply before the next command.
    PositivePreliminary,
    /// `2yz`: the action completed.
    PositiveCompletion,
    /// `3yz`: accepted, more information (another command) is needed.
    PositiveIntermediate,
    /// `4yz`: not done, a retry later may succeed.
    TransientNegative,
    /// `5yz`: not done, do not retry as is.
    PermanentNegative,
    /// `6yz`: an RFC 2228 protected reply (never used with TLS).
    Protected,
}

impl ReplyCode {
    /// `120` service ready in a few minutes (a `220` follows).
    pub const SERVICE_READY_SOON: Self = Self(120);
    /// `125` data connection already open, transfer starting.
    pub const DATA_CONNECTION_OPEN: Self = Self(125);
    /// `150` file status okay, about to open the data connection.
    pub const OPENING_DATA_CONNECTION: Self = Self(150);
    /// `200` command okay.
    pub const OK: Self = Self(200);
    /// `211` system status or help reply (FEAT uses it).
    pub const SYSTEM_STATUS: Self = Self(211);
    /// `213` file status (SIZE and MDTM answers).
    pub const FILE_STATUS: Self = Self(213);
    /// `215` system type (SYST).
    pub const SYSTEM_TYPE: Self = Self(215);
    /// `220` service ready for a new user.
    pub const SERVICE_READY: Self = Self(220);
    /// `221` service closing the control connection (QUIT).
    pub const SERVICE_CLOSING: Self = Self(221);
    /// `226` closing the data connection; the transfer or abort succeeded.
    pub const CLOSING_DATA_CONNECTION: Self = Self(226);
    /// `227` entering passive mode (PASV).
    pub const ENTERING_PASSIVE_MODE: Self = Self(227);
    /// `229` entering extended passive mode (EPSV, RFC 2428).
    pub const ENTERING_EXTENDED_PASSIVE_MODE: Self = Self(229);
    /// `230` user logged in.
    pub const LOGGED_IN: Self = Self(230);
    /// `232` user logged in, authorised by the security exchange (RFC 2228).
    pub const LOGGED_IN_BY_SECURITY_EXCHANGE: Self = Self(232);
    /// `234` security mechanism accepted: start the TLS handshake (RFC 4217 §4.2).
    pub const AUTH_OK: Self = Self(234);
    /// `250` requested file action okay, completed.
    pub const FILE_ACTION_OK: Self = Self(250);
    /// `257` pathname created (PWD, MKD).
    pub const PATHNAME_CREATED: Self = Self(257);
    /// `331` user name okay, need password.
    pub const NEED_PASSWORD: Self = Self(331);
    /// `332` need account for login.
    pub const NEED_ACCOUNT: Self = Self(332);
    /// `350` requested file action pending further information (REST, RNFR).
    pub const PENDING_FURTHER_INFORMATION: Self = Self(350);
    /// `421` service not available, closing the control connection.
    pub const CLOSING: Self = Self(421);
    /// `425` cannot open the data connection.
    pub const CANNOT_OPEN_DATA_CONNECTION: Self = Self(425);
    /// `426` connection closed; transfer aborted.
    pub const TRANSFER_ABORTED: Self = Self(426);
    /// `500` syntax error, command unrecognised (also: command line too long).
    pub const SYNTAX_ERROR: Self = Self(500);
    /// `501` syntax error in parameters or arguments.
    pub const ARGUMENT_SYNTAX_ERROR: Self = Self(501);
    /// `502` command not implemented.
    pub const NOT_IMPLEMENTED: Self = Self(502);
    /// `503` bad sequence of commands.
    pub const BAD_SEQUENCE: Self = Self(503);
    /// `504` command not implemented for that parameter.
    pub const PARAMETER_NOT_IMPLEMENTED: Self = Self(504);
    /// `530` not logged in.
    pub const NOT_LOGGED_IN: Self = Self(530);
    /// `534` request denied for policy reasons (RFC 2228).
    pub const POLICY_DENIED: Self = Self(534);
    /// `550` file unavailable (not found, no access).
    pub const FILE_UNAVAILABLE: Self = Self(550);

    /// The code for `value`, or `None` unless `100 <= value <= 699`.
    pub const fn new(value: u16) -> Option<Self> {
        if value >= 100 && value <= 699 {
            Some(Self(value))
        } else {
            None
        }
    }

    /// The code spelled by three ASCII bytes, or `None` unless they are digits with a first
    /// digit of 1–6.
    pub fn from_digits(digits: [u8; 3]) -> Option<Self> {
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = digits
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        Self::new(value)
    }

    /// The numeric value.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The three ASCII digits.
    pub const fn digits(self) -> [u8; 3] {
        // Each quotient is below 10 because the value is below 1000.
        [
            b'0' + (self.0 / 100) as u8,
            b'0' + (self.0 / 10 % 10) as u8,
            b'0' + (self.0 % 10) as u8,
        ]
    }

    /// The class given by the first digit.
    pub const fn class(self) -> ReplyClass {
        match self.0 / 100 {
            1 => ReplyClass::PositivePreliminary,
            2 => ReplyClass::PositiveCompletion,
            3 => ReplyClass::PositiveIntermediate,
            4 => ReplyClass::TransientNegative,
            5 => ReplyClass::PermanentNegative,
            _ => ReplyClass::Protected,
        }
    }

    /// `1yz`.
    pub const fn is_preliminary(self) -> bool {
        matches!(self.class(), ReplyClass::PositivePreliminary)
    }

    /// `2yz`.
    pub const fn is_completion(self) -> bool {
        matches!(self.class(), ReplyClass::PositiveCompletion)
    }

    /// `3yz`.
    pub const fn is_intermediate(self) -> bool {
        matches!(self.class(), ReplyClass::PositiveIntermediate)
    }

    /// `4yz`.
    pub const fn is_transient_negative(self) -> bool {
        matches!(self.class(), ReplyClass::TransientNegative)
    }

    /// `5yz`.
    pub const fn is_permanent_negative(self) -> bool {
        matches!(self.class(), ReplyClass::PermanentNegative)
    }

    /// `4yz` or `5yz`.
    pub const fn is_negative(self) -> bool {
        self.is_transient_negative() || self.is_permanent_negative()
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

impl fmt::Debug for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplyCode({:03})", self.0)
    }
}

impl From<ReplyCode> for u16 {
    fn from(code: ReplyCode) -> Self {
        code.0
    }
}

/// A complete reply: its code and the text of each line as raw bytes.
///
/// The first line's text excludes the `ddd-` (or `ddd `) prefix and the last line's excludes
/// `ddd `; middle lines are kept exactly as received. A reply always has at least one line when
/// built by the parser or the constructors; an empty `lines` is encoded as one empty line.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The reply code.
    pub code: ReplyCode,
    /// The text of each line, without terminators.
    pub lines: Vec<Vec<u8>>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: ReplyCode, text: impl Into<Vec<u8>>) -> Self {
        Self {
            code,
            lines: vec![text.into()],
        }
    }

    /// A reply of the given lines (one empty line when `lines` is empty).
    pub fn multiline(code: ReplyCode, lines: Vec<Vec<u8>>) -> Self {
        let lines = if lines.is_empty() {
            vec![Vec::new()]
        } else {
            lines
        };
        Self { code, lines }
    }

    /// The text of all lines joined with `\n`.
    pub fn text(&self) -> Vec<u8> {
        self.lines.join(&b'\n')
    }

    /// The text of the first line (empty if there are no lines).
    pub fn first_line(&self) -> &[u8] {
        self.lines.first().map_or(&[], Vec::as_slice)
    }

    /// The text of the last line (empty if there are no lines).
    pub fn last_line(&self) -> &[u8] {
        self.lines.last().map_or(&[], Vec::as_slice)
    }

    /// `true` when the reply has more than one line.
    pub fn is_multiline(&self) -> bool {
        self.lines.len() > 1
    }

    /// Appends the wire form to `out`: `ddd text CRLF` for one line; otherwise `ddd-first CRLF`,
    /// the middle lines (one space prepended to any that starts with a digit) and
    /// `ddd last CRLF`.
    ///
    /// Fails, leaving `out` unchanged, when a line contains CR or LF: it would end the line early
    /// and let the rest be read as another reply.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ReplyEncodeError> {
        if let Some(line) = self
            .lines
            .iter()
            .position(|line| line.iter().any(|&b| b == b'\r' || b == b'\n'))
        {
            return Err(ReplyEncodeError::LineBreakInText { line });
        }
        let digits = self.code.digits();
        match self.lines.as_slice() {
            [] => {
                out.extend_from_slice(&digits);
                out.extend_from_slice(b" \r\n");
            }
            [only] => {
                out.extend_from_slice(&digits);
                out.push(b' ');
                out.extend_from_slice(only);
                out.extend_from_slice(b"\r\n");
            }
            [first, middle @ .., last] => {
                out.extend_from_slice(&digits);
                out.push(b'-');
                out.extend_from_slice(first);
                out.extend_from_slice(b"\r\n");
                for line in middle {
                    if line.first().is_some_and(u8::is_ascii_digit) {
                        out.push(b' ');
                    }
                    out.extend_from_slice(line);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(&digits);
                out.push(b' ');
                out.extend_from_slice(last);
                out.extend_from_slice(b"\r\n");
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct EscapedLines<'a>(&'a [Vec<u8>]);
        impl fmt::Debug for EscapedLines<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_list();
                for line in self.0 {
                    list.entry(&format_args!("\"{}\"", line.escape_ascii()));
                }
                list.finish()
            }
        }
        f.debug_struct("Reply")
            .field("code", &self.code)
            .field("lines", &EscapedLines(&self.lines))
            .finish()
    }
}

/// Why a reply cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyEncodeError {
    /// A line's text contains CR or LF.
    #[error("reply line {line} contains CR or LF")]
    LineBreakInText {
        /// Index of the offending line in [`Reply::lines`].
        line: usize,
    },
}

/// A malformed or over-limit reply received from the peer.
///
/// After any of these the parser has resynchronised (skipping, if needed, to the terminator of
/// the reply in question), so the caller may keep feeding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line was longer than [`ReplyLimits::max_line_len`].
    #[error("reply line longer than {max_line_len} bytes")]
    LineTooLong {
        /// The exceeded limit.
        max_line_len: usize,
        /// The code of the reply the line belonged to, when it could be read.
        code: Option<ReplyCode>,
    },
    /// A multi-line reply had more than [`ReplyLimits::max_lines`] lines.
    #[error("reply {code} has more than {max_lines} lines")]
    TooManyLines {
        /// The reply's code.
        code: ReplyCode,
        /// The exceeded limit.
        max_lines: usize,
    },
    /// A multi-line reply held more than [`ReplyLimits::max_reply_bytes`].
    #[error("reply {code} is longer than {max_reply_bytes} bytes")]
    TooLarge {
        /// The reply's code.
        code: ReplyCode,
        /// The exceeded limit.
        max_reply_bytes: usize,
    },
    /// A reply's first line does not start with a valid three-digit code (`100`–`699`).
    #[error("reply line does not start with a valid reply code")]
    InvalidCode,
    /// A reply's first line has a valid code followed by neither SP, `-` nor the line end.
    #[error("reply {code} has {byte:#04x} after the code instead of SP or '-'")]
    BadSeparator {
        /// The code read.
        code: ReplyCode,
        /// The byte found after it.
        byte: u8,
    },
}

impl ReplyError {
    /// True when the reply exceeded a configured limit (rather than being malformed).
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::LineTooLong { .. } | Self::TooManyLines { .. } | Self::TooLarge { .. }
        )
    }
}

/// Bounds on what a [`ReplyParser`] buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Maximum bytes in one line, code included, terminator excluded (at least
    /// [`MIN_MAX_LINE_LEN`] is used).
    pub max_line_len: usize,
    /// Maximum lines in one reply, first and last included (at least 2 is used).
    pub max_lines: usize,
    /// Maximum bytes held for one multi-line reply, each line counted with one byte for its
    /// end (at least `2 × max_line_len` is used). Bounds the memory of one reply below
    /// `max_lines × max_line_len`, which a hostile server could otherwise fill.
    pub max_reply_bytes: usize,
}

impl Default for ReplyLimits {
    /// 8 KiB per line, 1000 lines and 1 MiB per reply.
    fn default() -> Self {
        Self {
            max_line_len: 8 * 1024,
            max_lines: 1000,
            max_reply_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    /// Between replies: the next line is a first line.
    Idle,
    /// Inside a multi-line reply, with the lines so far.
    Multiline {
        code: ReplyCode,
        lines: Vec<Vec<u8>>,
        /// The lines' bytes, each counted with one byte for its end.
        held: usize,
    },
    /// Dropping the rest of a multi-line reply that was already reported as an error.
    Skipping { code: ReplyCode },
}

/// Incremental reply parser for the client side of the control channel.
///
/// [`push`](Self::push) received bytes in any chunking, then call
/// [`next_reply`](Self::next_reply) until it returns `None`. Each reply on the wire yields
/// exactly one item, `Ok` or `Err`; a line that cannot start a reply yields one `Err`.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    framer: LineFramer,
    max_lines: usize,
    max_reply_bytes: usize,
    state: State,
}

impl ReplyParser {
    /// A parser with the given limits.
    pub fn new(limits: ReplyLimits) -> Self {
        Self {
            framer: LineFramer::new(limits.max_line_len),
            max_lines: limits.max_lines.max(2),
            max_reply_bytes: limits
                .max_reply_bytes
                .max(2 * limits.max_line_len.max(MIN_MAX_LINE_LEN)),
            state: State::Idle,
        }
    }

    /// The limits in effect (after raising values below the minimums).
    pub fn limits(&self) -> ReplyLimits {
        ReplyLimits {
            max_line_len: self.framer.max_line_len(),
            max_lines: self.max_lines,
            max_reply_bytes: self.max_reply_bytes,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.framer.push(bytes);
    }

    /// The next complete reply or reply error, or `None` when more bytes are needed.
    pub fn next_reply(&mut self) -> Option<Result<Reply, ReplyError>> {
        loop {
            let item = match self.framer.next_line()? {
                Ok(line) => Self::on_line(
                    &mut self.state,
                    (self.max_lines, self.max_reply_bytes),
                    line,
                ),
                Err(too_long) => Self::on_line_too_long(&mut self.state, too_long),
            };
            if item.is_some() {
                return item;
            }
        }
    }

    /// `true` when any byte is held: part of a line, or lines of an unfinished reply.
    ///
    /// After the `234` reply to `AUTH TLS` this must be `false`; otherwise the peer (or a man in
    /// the middle) sent plaintext that would be mistaken for protected replies (checklist §9.2,
    /// CVE-2021-22947).
    pub fn has_buffered_bytes(&self) -> bool {
        !self.framer.is_empty() || !matches!(self.state, State::Idle)
    }

    /// How many received bytes are held: the unfinished line plus the lines of an unfinished
    /// multi-line reply (each counted with one byte for its line end, so an empty held line
    /// still counts). Zero exactly when [`has_buffered_bytes`](Self::has_buffered_bytes) is
    /// `false`; this is the count the explicit TLS upgrade checks.
    pub fn buffered_len(&self) -> usize {
        let pending_lines = match &self.state {
            State::Multiline { held, .. } => *held,
            State::Idle | State::Skipping { .. } => 0,
        };
        self.framer.buffered_len() + pending_lines
    }

    fn on_line(
        state: &mut State,
        (max_lines, max_reply_bytes): (usize, usize),
        line: &[u8],
    ) -> Option<Result<Reply, ReplyError>> {
        match state {
            State::Idle => match split_first_line(line) {
                Err(error) => Some(Err(error)),
                Ok((code, FirstLine::Single, text)) => Some(Ok(Reply::new(code, text))),
                Ok((code, FirstLine::Continued, text)) => {
                    *state = State::Multiline {
                        code,
                        lines: vec![text.to_vec()],
                        held: line.len() + 1,
                    };
                    None
                }
            },
            State::Multiline { code, lines, held } => {
                let code = *code;
                let end = terminator_text(code, line);
                if *held + line.len() + 1 > max_reply_bytes {
                    *state = if end.is_some() {
                        State::Idle
                    } else {
                        State::Skipping { code }
                    };
                    return Some(Err(ReplyError::TooLarge {
                        code,
                        max_reply_bytes,
                    }));
                }
                if let Some(text) = end {
                    lines.push(text.to_vec());
                    let lines = core::mem::take(lines);
                    *state = State::Idle;
                    return Some(Ok(Reply { code, lines }));
                }
                // Keep room for the terminator, which is not known to be within the limit yet.
                if lines.len() + 2 > max_lines {
                    *state = State::Skipping { code };
                    return Some(Err(ReplyError::TooManyLines { code, max_lines }));
                }
                *held += line.len() + 1;
                lines.push(line.to_vec());
                None
            }
            State::Skipping { code } => {
                if terminator_text(*code, line).is_some() {
                    *state = State::Idle;
                }
                None
            }
        }
    }

    fn on_line_too_long(
        state: &mut State,
        too_long: LineTooLong,
    ) -> Option<Result<Reply, ReplyError>> {
        let head = too_long.head();
        let max_line_len = too_long.max_line_len();
        match state {
            State::Idle => {
                let code = head
                    .first_chunk::<3>()
                    .and_then(|d| ReplyCode::from_digits(*d));
                if let (Some(code), Some(b'-')) = (code, head.get(3)) {
                    *state = State::Skipping { code };
                }
                Some(Err(ReplyError::LineTooLong { max_line_len, code }))
            }
            State::Multiline { code, .. } => {
                let code = *code;
                *state = if terminator_text(code, head).is_some() {
                    State::Idle
                } else {
                    State::Skipping { code }
                };
                Some(Err(ReplyError::LineTooLong {
                    max_line_len,
                    code: Some(code),
                }))
            }
            State::Skipping { code } => {
                if terminator_text(*code, head).is_some() {
                    *state = State::Idle;
                }
                None
            }
        }
    }
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new(ReplyLimits::default())
    }
}

enum FirstLine {
    Single,
    Continued,
}

/// Splits a first line into code, kind and text, enforcing the strict first-line rules.
fn split_first_line(line: &[u8]) -> Result<(ReplyCode, FirstLine, &[u8]), ReplyError> {
    let code = line
        .first_chunk::<3>()
        .and_then(|d| ReplyCode::from_digits(*d))
        .ok_or(ReplyError::InvalidCode)?;
    match line.get(3) {
        None => Ok((code, FirstLine::Single, &[])),
        Some(b' ') => Ok((code, FirstLine::Single, &line[4..])),
        Some(b'-') => Ok((code, FirstLine::Continued, &line[4..])),
        Some(&byte) => Err(ReplyError::BadSeparator { code, byte }),
    }
}

/// The text of `line` if it ends the multi-line reply `code`: the same three digits followed by
/// SP, or (leniently) by nothing.
fn terminator_text(code: ReplyCode, line: &[u8]) -> Option<&[u8]> {
    let (digits, rest) = line.split_first_chunk::<3>()?;
    if *digits != code.digits() {
        return None;
    }
    match rest {
        [] => Some(&[]),
        [b' ', text @ ..] => Some(text),
        _ => None,
    }
}

/// The size in a `213` reply to `SIZE`: exactly `213 SP 1*DIGIT` (RFC 3659 §4; checklist X03).
pub fn size_value(reply: &Reply) -> Option<u64> {
    if reply.code.get() != 213 || reply.is_multiline() {
        return None;
    }
    let text = reply.first_line();
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u64, |value, &digit| {
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// The pathname in a `257` reply (`PWD`, `MKD`): from the first `"` to the first `"` not
/// followed by another, with doubled quotes undone (RFC 959 Appendix II; checklist §3.7).
pub fn quoted_pathname(reply: &Reply) -> Option<Vec<u8>> {
    if reply.code.get() != 257 {
        return None;
    }
    let text = reply.first_line();
    let start = text.iter().position(|&byte| byte == b'"')? + 1;
    let mut name = Vec::new();
    let mut rest = text.get(start..)?.iter();
    while let Some(&byte) = rest.next() {
        if byte == b'"' {
            if rest.as_slice().first() == Some(&b'"') {
                rest.next();
            } else {
                return Some(name);
            }
        }
        name.push(byte);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(value: u16) -> ReplyCode {
        ReplyCode::new(value).unwrap()
    }

    /// Feeds each chunk and drains after it.
    fn parse_chunks<'a>(
        parser: &mut ReplyParser,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Result<Reply, ReplyError>> {
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk);
            while let Some(item) = parser.next_reply() {
                out.push(item);
            }
        }
        out
    }

    fn parse_all(input: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        parse_chunks(&mut ReplyParser::default(), [input])
    }

    fn lines(texts: &[&str]) -> Vec<Vec<u8>> {
        texts.iter().map(|t| t.as_bytes().to_vec()).collect()
    }

    #[test]
    fn code_validity_and_classes() {
        assert_eq!(ReplyCode::new(99), None);
        assert_eq!(ReplyCode::new(700), None);
        assert_eq!(ReplyCode::from_digits(*b"099"), None);
        assert_eq!(ReplyCode::from_digits(*b"2a0"), None);
        assert_eq!(ReplyCode::from_digits(*b"234"), Some(ReplyCode::AUTH_OK));
        assert_eq!(code(150).class(), ReplyClass::PositivePreliminary);
        assert!(code(150).is_preliminary());
        assert!(code(226).is_completion());
        assert!(code(331).is_intermediate());
        assert!(code(421).is_transient_negative() && code(421).is_negative());
        assert!(code(550).is_permanent_negative() && code(550).is_negative());
        assert!(!code(226).is_negative());
        // spec: S07 — 6yz is its own class, not a success.
        assert_eq!(code(631).class(), ReplyClass::Protected);
        assert!(!code(631).is_completion() && !code(631).is_negative());
        assert_eq!(code(107).to_string(), "107");
        assert_eq!(code(220).digits(), *b"220");
    }

    // spec: RFC 959 §4.2
    #[test]
    fn single_line_reply() {
        assert_eq!(
            parse_all(b"220 Service ready\r\n"),
            vec![Ok(Reply::new(ReplyCode::SERVICE_READY, "Service ready"))]
        );
    }

    // spec: RFC 959 §4.2
    #[test]
    fn multiline_reply_fed_one_byte_at_a_time() {
        let wire = b"230-Welcome\r\n  to the server\r\n\r\n230 Logged in\r\n";
        let mut parser = ReplyParser::default();
        let out = parse_chunks(&mut parser, wire.chunks(1));
        assert_eq!(
            out,
            vec![Ok(Reply::multiline(
                ReplyCode::LOGGED_IN,
                lines(&["Welcome", "  to the server", "", "Logged in"])
            ))]
        );
        assert!(!parser.has_buffered_bytes());
    }

    // spec: RFC 959 §4.2 — only "same code + SP" at the start of a line ends the reply.
    #[test]
    fn inner_lines_with_codes_do_not_end_the_reply() {
        let wire = b"123-First line\r\n\
                     Second line\r\n  234 A line beginning with numbers\r\n\
                     234 another code and a space\r\n\
                     123-same code and a hyphen\r\n\
                     123The end?\r\n\
                     1234 longer number\r\n\
                     123 The last line\r\n";
        let out = parse_all(wire);
        assert_eq!(
            out,
            vec![Ok(Reply::multiline(
                code(123),
                lines(&[
                    "First line",
                    "Second line",
                    "  234 A line beginning with numbers",
                    "234 another code and a space",
                    "123-same code and a hyphen",
                    "123The end?",
                    "1234 longer number",
                    "The last line",
                ])
            ))]
        );
    }

    // spec: F02 — FEAT reply shape.
    #[test]
    fn feat_reply() {
        let wire = b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n MLST type*;size*;modify*;\r\n UTF8\r\n211 End\r\n";
        let out = parse_all(wire);
        let reply = out[0].as_ref().unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(reply.code, ReplyCode::SYSTEM_STATUS);
        assert_eq!(reply.lines.len(), 7);
        assert_eq!(reply.first_line(), b"Features:");
        assert_eq!(reply.lines[1], b" AUTH TLS");
        assert_eq!(reply.last_line(), b"End");
        assert!(reply.is_multiline());
        assert_eq!(
            reply.text(),
            b"Features:\n AUTH TLS\n PBSZ\n PROT\n MLST type*;size*;modify*;\n UTF8\nEnd".to_vec()
        );
    }

    #[test]
    fn lenient_bare_code_ends_reply_and_bare_lf_ends_lines() {
        let out = parse_all(b"211-Status\n info\n211\n200\r\n");
        assert_eq!(
            out,
            vec![
                Ok(Reply::multiline(code(211), lines(&["Status", " info", ""]))),
                Ok(Reply::new(code(200), "")),
            ]
        );
    }

    #[test]
    fn bare_cr_does_not_end_a_line() {
        let out = parse_all(b"200 a\rb\r\n");
        assert_eq!(out, vec![Ok(Reply::new(code(200), "a\rb"))]);
    }

    #[test]
    fn bad_fourth_byte_is_rejected_and_parser_continues() {
        let out = parse_all(b"220Welcome\r\n220 ok\r\n");
        assert_eq!(
            out,
            vec![
                Err(ReplyError::BadSeparator {
                    code: code(220),
                    byte: b'W'
                }),
                Ok(Reply::new(code(220), "ok")),
            ]
        );
    }

    #[test]
    fn invalid_codes_are_rejected() {
        let out = parse_all(b"\r\n22\r\n099 x\r\n700 x\r\nabc def\r\n");
        assert_eq!(out, vec![Err(ReplyError::InvalidCode); 5]);
    }

    #[test]
    fn non_utf8_text_is_kept_as_bytes() {
        let out = parse_all(b"257 \"/caf\xe9\" created\r\n");
        assert_eq!(
            out,
            vec![Ok(Reply::new(code(257), &b"\"/caf\xe9\" created"[..]))]
        );
    }

    #[test]
    fn overlong_single_line_is_one_error_then_recovery() {
        let limits = ReplyLimits {
            max_line_len: 16,
            max_lines: 10,
            max_reply_bytes: 1 << 20,
        };
        let mut wire = b"220 ".to_vec();
        wire.extend_from_slice(&[b'x'; 40]);
        wire.extend_from_slice(b"\r\n200 next\r\n");
        let out = parse_chunks(&mut ReplyParser::new(limits), wire.chunks(5));
        assert_eq!(
            out,
            vec![
                Err(ReplyError::LineTooLong {
                    max_line_len: 16,
                    code: Some(code(220))
                }),
                Ok(Reply::new(code(200), "next")),
            ]
        );
    }

    #[test]
    fn overlong_first_line_of_multiline_skips_the_whole_reply() {
        let limits = ReplyLimits {
            max_line_len: 16,
            max_lines: 10,
            max_reply_bytes: 1 << 20,
        };
        let mut wire = b"211-".to_vec();
        wire.extend_from_slice(&[b'x'; 40]);
        wire.extend_from_slice(b"\r\n211 inner looks like a reply? no, it ends it\r\n");
        wire.extend_from_slice(b"200 next\r\n");
        let out = parse_chunks(&mut ReplyParser::new(limits), [wire.as_slice()]);
        assert_eq!(
            out,
            vec![
                Err(ReplyError::LineTooLong {
                    max_line_len: 16,
                    code: Some(code(211))
                }),
                Ok(Reply::new(code(200), "next")),
            ]
        );
    }

    #[test]
    fn overlong_middle_line_skips_to_terminator_and_overlong_terminator_ends() {
        let limits = ReplyLimits {
            max_line_len: 16,
            max_lines: 10,
            max_reply_bytes: 1 << 20,
        };
        let long = "y".repeat(30);
        let wire = format!(
            "211-a\r\n{long}\r\n more\r\n211 end\r\n\
             212-b\r\n212 {long}\r\n200 next\r\n"
        );
        let out = parse_chunks(&mut ReplyParser::new(limits), [wire.as_bytes()]);
        let too_long = |c| {
            Err(ReplyError::LineTooLong {
                max_line_len: 16,
                code: Some(code(c)),
            })
        };
        assert_eq!(
            out,
            vec![
                too_long(211),
                too_long(212),
                Ok(Reply::new(code(200), "next"))
            ]
        );
    }

    #[test]
    fn too_many_lines_is_one_error_then_recovery() {
        let limits = ReplyLimits {
            max_line_len: 64,
            max_lines: 4,
            max_reply_bytes: 1 << 20,
        };
        let ok = b"211-a\r\n b\r\n c\r\n211 d\r\n";
        let too_many = b"211-a\r\n b\r\n c\r\n d\r\n e\r\n f\r\n211 g\r\n";
        let mut wire = ok.to_vec();
        wire.extend_from_slice(too_many);
        wire.extend_from_slice(b"226 done\r\n");
        let mut parser = ReplyParser::new(limits);
        let out = parse_chunks(&mut parser, [wire.as_slice()]);
        assert_eq!(
            out,
            vec![
                Ok(Reply::multiline(code(211), lines(&["a", " b", " c", "d"]))),
                Err(ReplyError::TooManyLines {
                    code: code(211),
                    max_lines: 4
                }),
                Ok(Reply::new(code(226), "done")),
            ]
        );
        assert!(!parser.has_buffered_bytes());
    }

    #[test]
    fn max_lines_boundary_is_exact() {
        let limits = ReplyLimits {
            max_line_len: 64,
            max_lines: 3,
            max_reply_bytes: 1 << 20,
        };
        let out = parse_chunks(
            &mut ReplyParser::new(limits),
            [&b"211-a\r\n b\r\n211 c\r\n211-a\r\n b\r\n c\r\n211 d\r\n"[..]],
        );
        assert_eq!(
            out,
            vec![
                Ok(Reply::multiline(code(211), lines(&["a", " b", "c"]))),
                Err(ReplyError::TooManyLines {
                    code: code(211),
                    max_lines: 3
                }),
            ]
        );
    }

    #[test]
    fn reply_bytes_are_bounded_then_the_parser_recovers() {
        let limits = ReplyLimits {
            max_line_len: 600,
            max_lines: 1000,
            max_reply_bytes: 1200,
        };
        let mut parser = ReplyParser::new(limits);
        assert_eq!(parser.limits().max_reply_bytes, 1200);
        let filler = [b'x'; 500];
        let mut wire = b"211-start\r\n".to_vec();
        for _ in 0..4 {
            wire.push(b' ');
            wire.extend_from_slice(&filler);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"211 end\r\n226 next\r\n");
        let out = parse_chunks(&mut parser, [wire.as_slice()]);
        assert_eq!(
            out,
            vec![
                Err(ReplyError::TooLarge {
                    code: code(211),
                    max_reply_bytes: 1200
                }),
                Ok(Reply::new(code(226), "next")),
            ]
        );
        assert!(!parser.has_buffered_bytes());
        // The held bytes never passed the limit.
        let mut parser = ReplyParser::new(limits);
        parser.push(&wire[..wire.len() / 2]);
        while parser.next_reply().is_some() {}
        assert!(parser.buffered_len() <= 1200 + 600);
    }

    #[test]
    fn reply_byte_limit_is_raised_to_two_lines() {
        let parser = ReplyParser::new(ReplyLimits {
            max_line_len: 1000,
            max_lines: 10,
            max_reply_bytes: 0,
        });
        assert_eq!(parser.limits().max_reply_bytes, 2000);
    }

    // spec: X03 — the SIZE reply is exactly `213 SP 1*DIGIT`.
    #[test]
    fn size_value_is_strict() {
        assert_eq!(size_value(&Reply::new(code(213), "1234")), Some(1234));
        assert_eq!(size_value(&Reply::new(code(213), "12 bytes")), None);
        assert_eq!(size_value(&Reply::new(code(213), "")), None);
        assert_eq!(
            size_value(&Reply::new(code(213), "99999999999999999999999")),
            None
        );
        assert_eq!(size_value(&Reply::new(code(250), "1234")), None);
    }

    // spec: §3.7 — 257 pathnames with doubled quotes.
    #[test]
    fn quoted_pathname_undoes_doubled_quotes() {
        let reply = Reply::new(code(257), "\"/a \"\"b\"\" c\" is the current directory");
        assert_eq!(quoted_pathname(&reply), Some(b"/a \"b\" c".to_vec()));
        assert_eq!(
            quoted_pathname(&Reply::new(code(257), "\"/\"")),
            Some(b"/".to_vec())
        );
        assert_eq!(quoted_pathname(&Reply::new(code(257), "no quotes")), None);
        assert_eq!(
            quoted_pathname(&Reply::new(code(257), "\"unterminated")),
            None
        );
        assert_eq!(quoted_pathname(&Reply::new(code(250), "\"/\"")), None);
    }

    // spec: §9.2 — plaintext pipelined after 234 is visible to the upgrade check.
    #[test]
    fn bytes_after_auth_reply_are_reported_as_buffered() {
        let mut parser = ReplyParser::default();
        parser.push(b"234 AUTH TLS OK\r\n230 injected\r\n");
        assert_eq!(
            parser.next_reply(),
            Some(Ok(Reply::new(ReplyCode::AUTH_OK, "AUTH TLS OK")))
        );
        assert!(parser.has_buffered_bytes());
        assert_eq!(parser.buffered_len(), b"230 injected\r\n".len());

        let mut clean = ReplyParser::default();
        clean.push(b"234 AUTH TLS OK\r\n");
        assert!(clean.next_reply().is_some());
        assert!(!clean.has_buffered_bytes());
        assert_eq!(clean.buffered_len(), 0);

        // An unfinished multi-line reply also counts, even with the framer empty.
        let mut partial = ReplyParser::default();
        partial.push(b"234-\r\n");
        assert_eq!(partial.next_reply(), None);
        assert!(partial.has_buffered_bytes());
        assert!(partial.buffered_len() > 0);
    }

    #[test]
    fn encode_single_and_multiline_with_padding() {
        let mut out = Vec::new();
        Reply::new(code(220), "ready").encode(&mut out).unwrap();
        assert_eq!(out, b"220 ready\r\n");

        out.clear();
        let reply = Reply::multiline(
            code(211),
            lines(&["Features:", " UTF8", "211 not the end", "", "End"]),
        );
        reply.encode(&mut out).unwrap();
        assert_eq!(
            out,
            b"211-Features:\r\n UTF8\r\n 211 not the end\r\n\r\n211 End\r\n".to_vec()
        );
        let parsed = parse_all(&out);
        assert_eq!(
            parsed,
            vec![Ok(Reply::multiline(
                code(211),
                lines(&["Features:", " UTF8", " 211 not the end", "", "End"])
            ))]
        );
    }

    #[test]
    fn encode_refuses_line_breaks_and_leaves_output_unchanged() {
        let mut out = b"keep".to_vec();
        let reply = Reply::multiline(code(250), lines(&["ok", "evil\r\n226 done", "end"]));
        assert_eq!(
            reply.encode(&mut out),
            Err(ReplyEncodeError::LineBreakInText { line: 1 })
        );
        assert_eq!(
            Reply::new(code(250), "a\rb").encode(&mut out),
            Err(ReplyEncodeError::LineBreakInText { line: 0 })
        );
        assert_eq!(out, b"keep");
    }

    #[test]
    fn empty_lines_vector_encodes_as_one_empty_line() {
        let mut out = Vec::new();
        let reply = Reply {
            code: code(200),
            lines: Vec::new(),
        };
        reply.encode(&mut out).unwrap();
        assert_eq!(out, b"200 \r\n");
        assert_eq!(
            Reply::multiline(code(200), Vec::new()).lines,
            vec![Vec::new()]
        );
    }

    fn text_line() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
            0..20,
        )
    }

    fn any_reply() -> impl Strategy<Value = Reply> {
        (100u16..700, proptest::collection::vec(text_line(), 1..6))
            .prop_map(|(value, lines)| Reply::multiline(code(value), lines))
    }

    /// What the encoder's padding does to a reply: middle lines starting with a digit gain a
    /// leading space.
    fn padded(reply: &Reply) -> Reply {
        let last = reply.lines.len().saturating_sub(1);
        let lines = reply
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                if i != 0 && i != last && line.first().is_some_and(u8::is_ascii_digit) {
                    let mut padded_line = vec![b' '];
                    padded_line.extend_from_slice(line);
                    padded_line
                } else {
                    line.clone()
                }
            })
            .collect();
        Reply {
            code: reply.code,
            lines,
        }
    }

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
        // spec: RFC 959 §4.2 — encode → parse gives back the value (after the documented padding).
        #[test]
        fn encode_parse_round_trip(replies in proptest::collection::vec(any_reply(), 1..5)) {
            let mut wire = Vec::new();
            for reply in &replies {
                reply.encode(&mut wire).unwrap();
            }
            let expected: Vec<_> = replies.iter().map(|r| Ok(padded(r))).collect();
            prop_assert_eq!(parse_all(&wire), expected);
        }

        #[test]
        fn split_invariance_of_valid_streams(
            replies in proptest::collection::vec(any_reply(), 1..5),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let mut wire = Vec::new();
            for reply in &replies {
                reply.encode(&mut wire).unwrap();
            }
            let whole = parse_all(&wire);
            let chunks = chunked(&wire, &cuts);
            let split = parse_chunks(&mut ReplyParser::default(), chunks.iter().map(Vec::as_slice));
            prop_assert_eq!(whole, split);
        }

        // Arbitrary bytes with small limits exercise every error and recovery path.
        #[test]
        fn split_invariance_of_arbitrary_streams(
            input in proptest::collection::vec(
                prop_oneof![
                    Just(&b"211-"[..]), Just(&b"211 "[..]), Just(&b"211"[..]), Just(&b"2"[..]),
                    Just(&b"\r\n"[..]), Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b"x"[..]),
                    Just(&b"-"[..]), Just(&b" "[..]), Just(&b"abcdefghij"[..]),
                ],
                0..60,
            ).prop_map(|parts| parts.concat()),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
            max_line_len in 8usize..20,
            max_lines in 2usize..5,
        ) {
            let limits = ReplyLimits { max_line_len, max_lines, max_reply_bytes: 1 << 20 };
            let whole = parse_chunks(&mut ReplyParser::new(limits), [input.as_slice()]);
            let chunks = chunked(&input, &cuts);
            let mut parser = ReplyParser::new(limits);
            let split = parse_chunks(&mut parser, chunks.iter().map(Vec::as_slice));
            prop_assert_eq!(&whole, &split);
            for reply in whole.iter().flatten() {
                prop_assert!(reply.lines.len() <= max_lines);
            }
        }
    }
}
