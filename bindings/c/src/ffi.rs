//! The boundary itself: result codes, the last error message, the panic guard every exported
//! function runs in, and the checked conversions of C pointers into Rust references.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use ftps_proto::error::{ErrorKind, UsageError};
use ftps_proto::tls::TlsError;

/// What every function returns. `FTPS_OK` is 0; codes 1–12 are the core's error kinds (the
/// numbers of `ftps_proto::error::ErrorKind`, stable); codes from 100 are the binding's own.
/// [`ftps_last_error_message`] says what happened.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_result {
    /// Success.
    FTPS_OK = 0,
    /// The call does not fit the session's state or the id (unknown id, CR/LF in an argument,
    /// a wrong answer to a request, too many queued operations). Nothing was sent.
    FTPS_ERR_USAGE = 1,
    /// The session has ended.
    FTPS_ERR_CLOSED = 2,
    /// A configuration was refused (PEM data, TLS versions, limits).
    FTPS_ERR_CONFIG = 3,
    /// A socket operation failed or the connection was lost.
    FTPS_ERR_IO = 4,
    /// A timer of the session expired.
    FTPS_ERR_TIMED_OUT = 5,
    /// TLS failed.
    FTPS_ERR_TLS = 6,
    /// The peer's certificate was not accepted.
    FTPS_ERR_CERTIFICATE = 7,
    /// The peer broke the FTP protocol.
    FTPS_ERR_PROTOCOL = 8,
    /// The peer refused with a 4yz/5yz reply.
    FTPS_ERR_REFUSED = 9,
    /// A data connection failed (truncated, closed early, refused peer).
    FTPS_ERR_TRANSFER = 10,
    /// The application aborted the operation.
    FTPS_ERR_ABORTED = 11,
    /// The peer exceeded a limit of this side.
    FTPS_ERR_LIMIT = 12,
    /// A required pointer was NULL (or a buffer pointer was NULL with a non-zero length).
    FTPS_ERR_NULL_PARAMETER = 100,
    /// An output buffer is too small; the needed size was written to the size output.
    FTPS_ERR_INSUFFICIENT_SIZE = 101,
    /// A parameter is out of range: an unknown enum value, an address family other than 4
    /// or 6, text that must be UTF-8 and is not.
    FTPS_ERR_INVALID_PARAMETER = 102,
    /// The library panicked (a bug); the session it happened in is poisoned.
    FTPS_ERR_PANIC = 103,
    /// The session panicked in an earlier call and cannot be used any more (free it).
    FTPS_ERR_POISONED = 104,
}

impl ftps_result {
    /// The result code of an error kind of the core (the same number).
    pub(crate) fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Usage => Self::FTPS_ERR_USAGE,
            ErrorKind::Closed => Self::FTPS_ERR_CLOSED,
            ErrorKind::Config => Self::FTPS_ERR_CONFIG,
            ErrorKind::Io => Self::FTPS_ERR_IO,
            ErrorKind::TimedOut => Self::FTPS_ERR_TIMED_OUT,
            ErrorKind::Tls => Self::FTPS_ERR_TLS,
            ErrorKind::Certificate => Self::FTPS_ERR_CERTIFICATE,
            ErrorKind::Protocol => Self::FTPS_ERR_PROTOCOL,
            ErrorKind::Refused => Self::FTPS_ERR_REFUSED,
            ErrorKind::Transfer => Self::FTPS_ERR_TRANSFER,
            ErrorKind::Aborted => Self::FTPS_ERR_ABORTED,
            ErrorKind::Limit => Self::FTPS_ERR_LIMIT,
            // A kind a newer core may add: still an error, never success.
            _ => Self::FTPS_ERR_PROTOCOL,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::FTPS_OK => "FTPS_OK",
            Self::FTPS_ERR_USAGE => "FTPS_ERR_USAGE",
            Self::FTPS_ERR_CLOSED => "FTPS_ERR_CLOSED",
            Self::FTPS_ERR_CONFIG => "FTPS_ERR_CONFIG",
            Self::FTPS_ERR_IO => "FTPS_ERR_IO",
            Self::FTPS_ERR_TIMED_OUT => "FTPS_ERR_TIMED_OUT",
            Self::FTPS_ERR_TLS => "FTPS_ERR_TLS",
            Self::FTPS_ERR_CERTIFICATE => "FTPS_ERR_CERTIFICATE",
            Self::FTPS_ERR_PROTOCOL => "FTPS_ERR_PROTOCOL",
            Self::FTPS_ERR_REFUSED => "FTPS_ERR_REFUSED",
            Self::FTPS_ERR_TRANSFER => "FTPS_ERR_TRANSFER",
            Self::FTPS_ERR_ABORTED => "FTPS_ERR_ABORTED",
            Self::FTPS_ERR_LIMIT => "FTPS_ERR_LIMIT",
            Self::FTPS_ERR_NULL_PARAMETER => "FTPS_ERR_NULL_PARAMETER",
            Self::FTPS_ERR_INSUFFICIENT_SIZE => "FTPS_ERR_INSUFFICIENT_SIZE",
            Self::FTPS_ERR_INVALID_PARAMETER => "FTPS_ERR_INVALID_PARAMETER",
            Self::FTPS_ERR_PANIC => "FTPS_ERR_PANIC",
            Self::FTPS_ERR_POISONED => "FTPS_ERR_POISONED",
        }
    }
}

/// The name of a result code as a static NUL-terminated string (`"FTPS_ERR_TLS"`);
/// `"FTPS_ERR_UNKNOWN"` for a number that is no result code. (The argument is a `uint32_t`,
/// not the enum: any number from C is sound.)
#[unsafe(no_mangle)]
pub extern "C" fn ftps_result_name(result: u32) -> *const core::ffi::c_char {
    // Each name gets its own NUL-terminated static copy, built once.
    static NAMES: std::sync::OnceLock<Vec<(ftps_result, Vec<u8>)>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        ALL_RESULTS
            .iter()
            .map(|r| {
                let mut name = r.name().as_bytes().to_vec();
                name.push(0);
                (*r, name)
            })
            .collect()
    });
    names
        .iter()
        .find(|(r, _)| *r as u32 == result)
        .map_or(c"FTPS_ERR_UNKNOWN".as_ptr(), |(_, name)| {
            name.as_ptr().cast()
        })
}

const ALL_RESULTS: [ftps_result; 18] = [
    ftps_result::FTPS_OK,
    ftps_result::FTPS_ERR_USAGE,
    ftps_result::FTPS_ERR_CLOSED,
    ftps_result::FTPS_ERR_CONFIG,
    ftps_result::FTPS_ERR_IO,
    ftps_result::FTPS_ERR_TIMED_OUT,
    ftps_result::FTPS_ERR_TLS,
    ftps_result::FTPS_ERR_CERTIFICATE,
    ftps_result::FTPS_ERR_PROTOCOL,
    ftps_result::FTPS_ERR_REFUSED,
    ftps_result::FTPS_ERR_TRANSFER,
    ftps_result::FTPS_ERR_ABORTED,
    ftps_result::FTPS_ERR_LIMIT,
    ftps_result::FTPS_ERR_NULL_PARAMETER,
    ftps_result::FTPS_ERR_INSUFFICIENT_SIZE,
    ftps_result::FTPS_ERR_INVALID_PARAMETER,
    ftps_result::FTPS_ERR_PANIC,
    ftps_result::FTPS_ERR_POISONED,
];

/// A failed call: its code and its message (kept as this thread's last error).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: ftps_result,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: ftps_result, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(
            ftps_result::FTPS_ERR_NULL_PARAMETER,
            format!("{what} is NULL"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ftps_result::FTPS_ERR_INVALID_PARAMETER, message)
    }
}

impl From<UsageError> for Failure {
    fn from(error: UsageError) -> Self {
        Self::new(ftps_result::from_kind(error.kind()), error.to_string())
    }
}

impl From<TlsError> for Failure {
    fn from(error: TlsError) -> Self {
        Self::new(ftps_result::from_kind(error.kind()), error.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: &str) {
    LAST_ERROR.with(|last| {
        let mut last = last.borrow_mut();
        last.clear();
        last.push_str(message);
    });
}

/// Runs an exported function's body: a failure becomes its code (and this thread's last
/// error), a panic becomes `FTPS_ERR_PANIC` instead of unwinding into C.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> ftps_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ftps_result::FTPS_OK,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.code
        }
        Err(panic) => {
            set_last_error(&format!("panic in libftps: {}", panic_text(&*panic)));
            ftps_result::FTPS_ERR_PANIC
        }
    }
}

/// What a panic said, for the last error message.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Copies the message of the last failed call on this thread into `buf` as a NUL-terminated
/// string and writes its length (without the NUL) to `*out_len`. An empty string when no call
/// failed yet. `FTPS_ERR_INSUFFICIENT_SIZE` when `buf_len` cannot hold the message and its
/// NUL: `*out_len` then says how many bytes the message has (allocate `*out_len + 1`).
///
/// # Safety
/// `buf` must be valid for `buf_len` writable bytes (or NULL with `buf_len` 0); `out_len` must
/// be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_last_error_message(
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> ftps_result {
    let message = LAST_ERROR.with(|last| last.borrow().clone());
    // SAFETY: the caller promises `out_len` is valid for a write (checked for NULL inside).
    let out_len = match unsafe { out_ref(out_len, "out_len") } {
        Ok(out_len) => out_len,
        Err(failure) => return failure.code,
    };
    *out_len = message.len();
    if buf_len < message.len() + 1 {
        return ftps_result::FTPS_ERR_INSUFFICIENT_SIZE;
    }
    // SAFETY: the caller promises `buf` is valid for `buf_len` bytes; `buf_len` is non-zero here.
    let buf = match unsafe { out_slice(buf, buf_len, "buf") } {
        Ok(buf) => buf,
        Err(failure) => return failure.code,
    };
    buf[..message.len()].copy_from_slice(message.as_bytes());
    buf[message.len()] = 0;
    ftps_result::FTPS_OK
}

/// `ptr..ptr+len` as a slice; NULL is allowed only with `len` 0.
///
/// # Safety
/// When non-NULL, `ptr` must be valid for `len` readable bytes for the returned lifetime.
pub(crate) unsafe fn in_slice<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and, as the caller promises, valid for `len` bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `ptr..ptr+len` as a writable slice; NULL is allowed only with `len` 0.
///
/// # Safety
/// When non-NULL, `ptr` must be valid for `len` writable bytes for the returned lifetime and
/// not aliased.
pub(crate) unsafe fn out_slice<'a>(
    ptr: *mut u8,
    len: usize,
    what: &str,
) -> Result<&'a mut [u8], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and, as the caller promises, valid and unaliased for `len` bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// A required output pointer as a reference.
///
/// # Safety
/// When non-NULL, `ptr` must be valid for writes of a `T` and not aliased.
pub(crate) unsafe fn out_ref<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: as the caller promises, a non-NULL `ptr` is valid and unaliased.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// A required input pointer as a reference.
///
/// # Safety
/// When non-NULL, `ptr` must point to a valid `T` for the returned lifetime.
pub(crate) unsafe fn in_ref<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: as the caller promises, a non-NULL `ptr` points to a valid `T`.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// When non-NULL, `ptr` must point to a NUL-terminated string valid for the returned lifetime.
pub(crate) unsafe fn in_str<'a>(
    ptr: *const core::ffi::c_char,
    what: &str,
) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and, as the caller promises, NUL-terminated and valid.
    let text = unsafe { core::ffi::CStr::from_ptr(ptr) };
    text.to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not UTF-8")))
}

/// Moves `value` to the heap and writes the handle to `*out`.
///
/// # Safety
/// `out` must be valid for a write of a pointer (checked for NULL).
pub(crate) unsafe fn new_handle<T>(out: *mut *mut T, value: T) -> Result<(), Failure> {
    // SAFETY: as the caller promises, a non-NULL `out` is valid for a write.
    let out = unsafe { out_ref(out, "out") }?;
    *out = Box::into_raw(Box::new(value));
    Ok(())
}

/// Frees a handle made by [`new_handle`]; NULL is ignored.
///
/// # Safety
/// `ptr` must be NULL or a pointer from `new_handle` of the same `T`, not freed before.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: made by `Box::into_raw` in `new_handle` and, as the caller promises, not
        // freed before.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// A session handle that a panic can poison: the wrapper every session call goes through.
pub(crate) trait Poisonable {
    fn poisoned(&mut self) -> &mut bool;
}

/// Runs `body` on the session behind `ptr`: NULL and poisoned sessions are refused, and a
/// panic poisons the session.
///
/// # Safety
/// `ptr` must be NULL or a live handle of this type, used by no other thread during the call.
pub(crate) unsafe fn with_session<S: Poisonable>(
    ptr: *mut S,
    body: impl FnOnce(&mut S) -> Result<(), Failure>,
) -> ftps_result {
    guard(|| {
        // SAFETY: as the caller promises, a non-NULL `ptr` is a live, unshared handle.
        let session = unsafe { out_ref(ptr, "session") }?;
        if *session.poisoned() {
            return Err(Failure::new(
                ftps_result::FTPS_ERR_POISONED,
                "the session panicked in an earlier call; free it",
            ));
        }
        match catch_unwind(AssertUnwindSafe(|| body(&mut *session))) {
            Ok(result) => result,
            Err(panic) => {
                *session.poisoned() = true;
                Err(Failure::new(
                    ftps_result::FTPS_ERR_PANIC,
                    format!("panic in libftps: {}", panic_text(&*panic)),
                ))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_keep_their_numbers() {
        for kind in ErrorKind::ALL {
            assert_eq!(ftps_result::from_kind(kind) as u32, u32::from(kind.code()));
        }
    }

    #[test]
    fn a_panic_becomes_a_code_and_the_message_is_kept() {
        let result = guard(|| panic!("boom"));
        assert_eq!(result, ftps_result::FTPS_ERR_PANIC);
        let mut buf = [0u8; 64];
        let mut len = 0;
        // SAFETY: a valid buffer and length.
        let r = unsafe { ftps_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(r, ftps_result::FTPS_OK);
        assert_eq!(&buf[..len], b"panic in libftps: boom");
        assert_eq!(buf[len], 0);
        // Too small: the length needed comes back.
        // SAFETY: a valid buffer and length.
        let r = unsafe { ftps_last_error_message(buf.as_mut_ptr(), 4, &mut len) };
        assert_eq!(r, ftps_result::FTPS_ERR_INSUFFICIENT_SIZE);
        assert_eq!(len, "panic in libftps: boom".len());
    }
}
