"""FTPS (FTP over TLS, RFC 4217) for Python, on the ftps sans-IO engine.

Three layers, one wheel:

- the sans-IO sessions :class:`ClientSession` and :class:`ServerSession` (the Rust core, one
  to one: feed what happened, drain :meth:`~ClientSession.poll_output` until ``Wait``);
- :class:`Client`, a blocking client on sockets and ``selectors``;
- :class:`ftps.aio.Client`, an asyncio client.

The drivers make no FTP decision: every one is the core's.
"""

from ._errors import (
    AbortedError,
    CertificateError,
    ClosedError,
    ConfigError,
    Error,
    IoError,
    LimitError,
    ProtocolError,
    ReplyError,
    TimedOutError,
    TlsError,
    TransferError,
    UsageError,
)
from ._ftps import (
    CONTROL,
    ClientConfig,
    ClientSession,
    Close,
    Closed,
    Completed,
    Connect,
    Connected,
    ControlLine,
    DataPeerRefused,
    DirEntry,
    Listen,
    Listing,
    ListingEntry,
    LoggedIn,
    Preliminary,
    Readable,
    Ready,
    Refused,
    RefuseAccepted,
    Reply,
    Request,
    Secured,
    SendFinished,
    ServerConfig,
    ServerSession,
    ShutdownWrite,
    TlsInfo,
    Transfer,
    Transmit,
    UploadFinished,
    Wait,
    Writable,
    __version__,
)
from .client import Client

__all__ = [
    "AbortedError", "CertificateError", "ClosedError", "ConfigError", "Error", "IoError",
    "LimitError", "ProtocolError", "ReplyError", "TimedOutError", "TlsError", "TransferError",
    "UsageError",
    "CONTROL", "ClientConfig", "ClientSession", "Close", "Closed", "Completed", "Connect",
    "Connected", "ControlLine", "DataPeerRefused", "DirEntry", "Listen", "Listing",
    "ListingEntry", "LoggedIn", "Preliminary", "Readable", "Ready", "Refused", "RefuseAccepted",
    "Reply", "Request", "Secured", "SendFinished", "ServerConfig", "ServerSession",
    "ShutdownWrite", "TlsInfo", "Transfer", "Transmit", "UploadFinished", "Wait", "Writable",
    "__version__",
    "Client",
]
