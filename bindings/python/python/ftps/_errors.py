"""The package's exception hierarchy, one class per kind of the core's error table.

Every exception has ``kind`` (the core's stable name, e.g. ``"certificate"``) and
``kind_code`` (its stable number, the same as the C binding's result codes and the CLI's exit
codes are derived from). The sans-IO sessions create these objects (``Completed.error``,
``Closed.error``) and raise them for misuse; the drivers raise the ones events carry.
"""

from __future__ import annotations

from typing import Optional


class Error(Exception):
    """Base class of every error of the package."""

    kind: str = "error"
    kind_code: int = 0

    def __init__(self, message: str, *, kind: Optional[str] = None,
                 kind_code: Optional[int] = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if kind_code is not None:
            self.kind_code = kind_code


class UsageError(Error, ValueError):
    """The caller used the API wrongly (unknown id, CR/LF in an argument, bad option):
    nothing was sent."""


class ClosedError(Error):
    """The session has ended; nothing more can be done with it."""


class ConfigError(Error, ValueError):
    """A configuration was refused (certificate or key PEM, trust anchors, options)."""


class IoError(Error):
    """A socket operation failed, or the connection was lost."""


class TimedOutError(Error):
    """A timer of the session expired (connect, reply, data idle)."""


class TlsError(Error):
    """TLS failed: handshake, alert, bad record, missing session reuse."""


class CertificateError(TlsError):
    """The peer's certificate was not accepted (unknown issuer, wrong name, expired)."""


class ProtocolError(Error):
    """The peer broke the FTP protocol."""


class LimitError(ProtocolError):
    """The peer exceeded a limit of this side (a too large reply, too many commands)."""


class ReplyError(Error):
    """The server refused with a negative reply (4yz/5yz). ``code`` and ``text`` are the
    reply's (``None`` when the refusal carries no reply, e.g. an operation not sent because
    the login before it failed)."""

    def __init__(self, message: str, code: Optional[int] = None, text: Optional[str] = None,
                 **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.code = code
        self.text = text


class TransferError(Error):
    """A data connection failed: truncated without close_notify, closed early, refused peer,
    TLS or socket failure on it."""


class AbortedError(Error):
    """The operation was aborted by the application."""


_BY_KIND: dict[str, type[Error]] = {
    "usage": UsageError,
    "closed": ClosedError,
    "config": ConfigError,
    "io": IoError,
    "timed_out": TimedOutError,
    "tls": TlsError,
    "certificate": CertificateError,
    "protocol": ProtocolError,
    "refused": ReplyError,
    "transfer": TransferError,
    "aborted": AbortedError,
    "limit": LimitError,
}


def _make(kind: str, kind_code: int, message: str, code: Optional[int],
          text: Optional[str]) -> Error:
    """Called by the extension: the exception object for an error of the core's kind
    ``kind``, with the server's reply when there is one."""
    cls = _BY_KIND.get(kind, Error)
    if cls is ReplyError or code is not None:
        if text is not None and code is not None:
            message = f"{message}: {code} {text}"
        error: Error = ReplyError(message, code, text, kind=kind, kind_code=kind_code)
        if cls is not ReplyError:
            # A reply carried by another kind (an unexpected positive reply): keep the kind's
            # class, with the reply attached.
            error = cls(message, kind=kind, kind_code=kind_code)
            error.code = code  # type: ignore[attr-defined]
            error.text = text  # type: ignore[attr-defined]
        return error
    return cls(message, kind=kind, kind_code=kind_code)
