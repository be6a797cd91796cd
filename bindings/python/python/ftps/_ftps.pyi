"""Type stubs of the extension module ``ftps._ftps`` (src/*.rs): the sans-IO sessions, their
configurations, and the objects their drain returns.

Conventions: a channel is an ``int`` (``CONTROL`` = 0, else a data connection's id); time is
``time.monotonic_ns()``; addresses are ``(ip, port)``; paths are ``bytes`` (``str`` is encoded
as UTF-8 with ``surrogateescape``).
"""

import datetime
import os
from typing import ClassVar, Optional, Union, final

from ._errors import Error

CONTROL: int
__version__: str

Path = Union[str, bytes]
Pem = Union[bytes, str, "os.PathLike[str]"]
Address = tuple[str, int]

# ---- configurations ---------------------------------------------------------------------------

@final
class ClientConfig:
    """Everything a client session needs but the server's address.

    ``server_name``: checked against the certificate (and sent as SNI). ``tls_mode``:
    ``"explicit"`` (AUTH TLS, required), ``"implicit"``, ``"explicit_if_available"``,
    ``"plaintext"``. ``trust``: PEM bytes or a path of the CAs (or self-signed certificate) to
    trust; ``None``: Mozilla's roots. ``insecure_skip_verify``: accept any certificate (tests
    only). ``data_protection``: ``"private"`` (PROT P) or ``"clear"``. ``data_mode``:
    ``"passive"`` or ``"active"``. ``trust_pasv_address``: connect to the 227 address instead
    of the control peer's. Timeouts in seconds (``None``: the core's defaults, 30/60/120).
    """

    def __init__(
        self,
        server_name: str,
        *,
        tls_mode: str = "explicit",
        trust: Optional[Pem] = None,
        insecure_skip_verify: bool = False,
        client_certificate: Optional[Pem] = None,
        client_key: Optional[Pem] = None,
        max_tls_version: str = "1.3",
        data_protection: str = "private",
        data_mode: str = "passive",
        trust_pasv_address: bool = False,
        extended_data_commands: bool = True,
        trace_control: bool = False,
        connect_timeout: Optional[float] = None,
        reply_timeout: Optional[float] = None,
        data_idle_timeout: Optional[float] = None,
    ) -> None: ...
    @property
    def default_port(self) -> int: ...
    @property
    def server_name(self) -> str: ...
    @property
    def tls_mode(self) -> str: ...

@final
class ServerConfig:
    """A server's certificate chain and key (PEM bytes or paths; the key may be in the chain's
    file) and its policy: TLS required before login, PROT P required, CCC refused, data
    connections must resume the control session (``data_resumption``: ``"required"``,
    ``"optional"``, ``"off"``)."""

    def __init__(
        self,
        certificate_chain: Pem,
        private_key: Optional[Pem] = None,
        *,
        tls_mode: str = "explicit",
        require_tls: bool = True,
        require_private_data: bool = True,
        allow_ccc: bool = False,
        data_resumption: str = "required",
        client_ca: Optional[Pem] = None,
        max_tls_version: str = "1.3",
        pasv_address: Optional[str] = None,
        greeting: Optional[bytes] = None,
        idle_timeout: Optional[float] = None,
        data_timeout: Optional[float] = None,
        failed_login_delay: Optional[float] = None,
    ) -> None: ...
    @property
    def default_port(self) -> int: ...

# ---- outputs -----------------------------------------------------------------------------------

@final
class Transmit:
    """Send ``data`` on ``channel``, in order and completely."""
    __match_args__: ClassVar[tuple[str, ...]]
    channel: int
    data: bytes

@final
class Connect:
    """Open a TCP connection to ``addr`` for ``channel``; then ``connected`` or ``io_error``."""
    __match_args__: ClassVar[tuple[str, ...]]
    channel: int
    addr: Address

@final
class Listen:
    """Listen on ``ip`` for data connection ``data``; then ``listening`` and ``accepted``."""
    __match_args__: ClassVar[tuple[str, ...]]
    data: int
    ip: str

@final
class RefuseAccepted:
    """Close the connection just accepted for ``data``; keep listening."""
    __match_args__: ClassVar[tuple[str, ...]]
    data: int

@final
class ShutdownWrite:
    """After writing what is held for ``channel``, shut down its write side."""
    __match_args__: ClassVar[tuple[str, ...]]
    channel: int

@final
class Close:
    """Close ``channel``'s socket and listener."""
    __match_args__: ClassVar[tuple[str, ...]]
    channel: int

@final
class Wait:
    """Drained: wait for input or until ``deadline`` (then ``timeout``)."""
    __match_args__: ClassVar[tuple[str, ...]]
    deadline: Optional[int]

# ---- values ------------------------------------------------------------------------------------

@final
class Reply:
    """A server reply."""
    __match_args__: ClassVar[tuple[str, ...]]
    code: int
    lines: list[bytes]
    @property
    def text(self) -> str: ...

@final
class TlsInfo:
    """What a TLS handshake negotiated."""
    __match_args__: ClassVar[tuple[str, ...]]
    version: str
    cipher_suite: str
    resumed: bool
    alpn: Optional[bytes]
    peer_certificates: list[bytes]

@final
class Transfer:
    """What a transfer moved; ``resumed``: the data connection's TLS resumed the control
    connection's session (``None`` in clear)."""
    __match_args__: ClassVar[tuple[str, ...]]
    bytes: int
    resumed: Optional[bool]

@final
class ListingEntry:
    """One listing entry; ``kind``: ``file``, ``dir``, ``symlink``, ``other``, ``unknown``,
    ``total`` or ``unparsed`` (then ``line`` is the raw line)."""
    __match_args__: ClassVar[tuple[str, ...]]
    name: Optional[bytes]
    kind: str
    size: Optional[int]
    modified: Optional[datetime.datetime]
    facts: dict[str, bytes]
    line: Optional[bytes]
    link_target: Optional[bytes]
    @property
    def filename(self) -> Optional[str]: ...

@final
class DirEntry:
    """A directory entry a server application describes (for listings and MLST)."""
    def __init__(
        self,
        name: Path,
        kind: str = "file",
        size: int = 0,
        modified: Optional[datetime.datetime] = None,
        *,
        mode: Optional[int] = None,
        permissions: Optional[str] = None,
        unique: Optional[bytes] = None,
    ) -> None: ...
    @property
    def name(self) -> bytes: ...
    @property
    def kind(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def modified(self) -> Optional[datetime.datetime]: ...

# ---- events (client) ---------------------------------------------------------------------------

@final
class Connected:
    __match_args__: ClassVar[tuple[str, ...]]
    greeting: Reply

@final
class Secured:
    __match_args__: ClassVar[tuple[str, ...]]
    info: TlsInfo

@final
class Ready:
    __match_args__: ClassVar[tuple[str, ...]]
    features: list[bytes]

@final
class LoggedIn:
    __match_args__: ClassVar[tuple[str, ...]]
    op: int

@final
class Preliminary:
    __match_args__: ClassVar[tuple[str, ...]]
    op: int
    reply: Reply

@final
class ControlLine:
    __match_args__: ClassVar[tuple[str, ...]]
    direction: str
    line: bytes

@final
class Readable:
    """Bytes wait for ``read_data(id)`` (client downloads, server uploads)."""
    __match_args__: ClassVar[tuple[str, ...]]
    id: int

@final
class Listing:
    __match_args__: ClassVar[tuple[str, ...]]
    op: int
    entry: ListingEntry

@final
class Writable:
    """``write_data`` (or a server's ``write_entry``) takes more."""
    __match_args__: ClassVar[tuple[str, ...]]
    id: int

@final
class Completed:
    """An operation ended: ``error`` is ``None`` on success (then ``value`` is what the verb
    yields), else the exception object."""
    __match_args__: ClassVar[tuple[str, ...]]
    op: int
    reply: Optional[Reply]
    value: Union[None, bytes, int, datetime.datetime, Transfer]
    error: Optional[Error]
    def result(self) -> Union[None, bytes, int, datetime.datetime, Transfer]: ...

@final
class Closed:
    """The session ended (last event); ``error`` is ``None`` after ``QUIT``."""
    __match_args__: ClassVar[tuple[str, ...]]
    error: Optional[Error]

# ---- events (server) ---------------------------------------------------------------------------

@final
class Request:
    """A decision for the application (see ServerSession.answer/refuse/answer_login)."""
    __match_args__: ClassVar[tuple[str, ...]]
    id: int
    kind: str
    path: Optional[bytes]
    to: Optional[bytes]
    user: Optional[bytes]
    password: Optional[bytes]
    client_certificate: Optional[bytes]
    host: Optional[bytes]
    format: Optional[str]
    offset: Optional[int]
    append: Optional[bool]
    unique: Optional[bool]

@final
class UploadFinished:
    __match_args__: ClassVar[tuple[str, ...]]
    id: int
    complete: bool
    bytes: int
    resumed: bool

@final
class SendFinished:
    __match_args__: ClassVar[tuple[str, ...]]
    id: int
    complete: bool
    bytes: int
    resumed: bool

@final
class Refused:
    __match_args__: ClassVar[tuple[str, ...]]
    reason: str

@final
class DataPeerRefused:
    __match_args__: ClassVar[tuple[str, ...]]
    peer: Address

ClientOutput = Union[
    Transmit, Connect, Listen, RefuseAccepted, ShutdownWrite, Close, Wait,
    Connected, Secured, Ready, LoggedIn, Preliminary, ControlLine, Readable, Listing,
    Writable, Completed, Closed,
]
ServerOutput = Union[
    Transmit, Connect, Listen, RefuseAccepted, ShutdownWrite, Close, Wait,
    Secured, Request, Writable, Readable, UploadFinished, SendFinished, Refused,
    DataPeerRefused, Closed,
]

# ---- sessions ----------------------------------------------------------------------------------

class ClientSession:
    """The client role. Feed inputs, call verbs (each returns an op id), drain with
    ``poll_output(now)`` until ``Wait``."""

    def __init__(self, config: ClientConfig, peer: Address, now: int) -> None: ...
    # inputs (the same as ServerSession's)
    def connected(self, channel: int, local: Address, now: int) -> None: ...
    def listening(self, data: int, addr: Address, now: int) -> None: ...
    def accepted(self, data: int, peer: Address, now: int) -> None: ...
    def receive(self, channel: int, data: bytes, now: int) -> int: ...
    def eof(self, channel: int, now: int) -> None: ...
    def io_error(self, channel: int, kind: str, now: int) -> None: ...
    def transmit_failed(self, channel: int, kind: str, now: int) -> None: ...
    def timeout(self, now: int) -> None: ...
    def transmit_blocked(self, channel: int, now: int) -> None: ...
    def transmit_ready(self, channel: int, now: int) -> None: ...
    def poll_output(self, now: int) -> ClientOutput: ...
    def next_deadline(self) -> Optional[int]: ...
    # state
    @property
    def is_closed(self) -> bool: ...
    @property
    def is_secure(self) -> bool: ...
    @property
    def is_logged_in(self) -> bool: ...
    @property
    def data_protection(self) -> str: ...
    @property
    def features(self) -> list[bytes]: ...
    @property
    def peer_addr(self) -> Address: ...
    @property
    def pending_ops(self) -> int: ...
    # verbs
    def login(self, user: Path, password: Path, account: Optional[Path] = None) -> int: ...
    def cwd(self, path: Path) -> int: ...
    def cdup(self) -> int: ...
    def pwd(self) -> int: ...
    def mkd(self, path: Path) -> int: ...
    def rmd(self, path: Path) -> int: ...
    def dele(self, path: Path) -> int: ...
    def rename(self, from_: Path, to: Path) -> int: ...
    def size(self, path: Path) -> int: ...
    def mdtm(self, path: Path) -> int: ...
    def mlst(self, path: Optional[Path] = None) -> int: ...
    def noop(self) -> int: ...
    def syst(self) -> int: ...
    def stat(self, path: Optional[Path] = None) -> int: ...
    def site(self, command: Path) -> int: ...
    def raw_command(self, verb: Path, argument: Optional[Path] = None) -> int: ...
    def quit(self) -> int: ...
    def ccc(self) -> int: ...
    def set_data_protection(self, level: str) -> int: ...
    def set_transfer_type(self, transfer_type: str) -> None: ...
    def retrieve(self, path: Path, rest: Optional[int] = None) -> int: ...
    def store(self, path: Path) -> int: ...
    def append(self, path: Path) -> int: ...
    def store_unique(self) -> int: ...
    def list(self, path: Optional[Path] = None) -> int: ...
    def list_raw(self, path: Optional[Path] = None) -> int: ...
    def nlst(self, path: Optional[Path] = None) -> int: ...
    def mlsd(self, path: Optional[Path] = None) -> int: ...
    def list_entries(self, path: Optional[Path] = None) -> int: ...
    def read_data(self, op: int, max: int = ...) -> bytes: ...
    def write_data(self, op: int, data: bytes) -> int: ...
    def finish_upload(self, op: int) -> None: ...
    def abort(self, op: int) -> None: ...

class ServerSession:
    """The server role, for one accepted control connection."""

    def __init__(self, config: ServerConfig, peer: Address, local: Address, now: int) -> None: ...
    def connected(self, channel: int, local: Address, now: int) -> None: ...
    def listening(self, data: int, addr: Address, now: int) -> None: ...
    def accepted(self, data: int, peer: Address, now: int) -> None: ...
    def receive(self, channel: int, data: bytes, now: int) -> int: ...
    def eof(self, channel: int, now: int) -> None: ...
    def io_error(self, channel: int, kind: str, now: int) -> None: ...
    def transmit_failed(self, channel: int, kind: str, now: int) -> None: ...
    def timeout(self, now: int) -> None: ...
    def transmit_blocked(self, channel: int, now: int) -> None: ...
    def transmit_ready(self, channel: int, now: int) -> None: ...
    def poll_output(self, now: int) -> ServerOutput: ...
    def next_deadline(self) -> Optional[int]: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def is_secure(self) -> bool: ...
    @property
    def is_logged_in(self) -> bool: ...
    @property
    def cwd(self) -> bytes: ...
    @property
    def peer_addr(self) -> Address: ...
    def answer_login(self, id: int, granted: bool) -> None: ...
    def answer(self, id: int,
               value: Union[None, Path, int, datetime.datetime, DirEntry] = None) -> None: ...
    def refuse(self, id: int, error: str) -> None: ...
    def write_entry(self, id: int, entry: DirEntry) -> bool: ...
    def read_data(self, id: int, max: int = ...) -> bytes: ...
    def write_data(self, id: int, data: bytes) -> int: ...
    def finish_data(self, id: int) -> None: ...
    def fail_transfer(self, id: int, error: str) -> None: ...
    def finish_upload(self, id: int, error: Optional[str] = None) -> None: ...

