"""``ftps.Client``: a blocking FTPS client on sockets and ``selectors``.

Every FTP decision (TLS, session reuse on data connections, PASV/EPSV, truncation checks,
replies) is the sans-IO session's; this module moves bytes and waits.
"""

from __future__ import annotations

import datetime
import os
import selectors
import socket
from types import TracebackType
from typing import IO, Any, Callable, List, Optional, Union

from ._errors import ClosedError, Error
from ._ftps import ClientConfig, ClientSession, ListingEntry, Reply, TlsInfo, Transfer
from ._link import Link, now
from ._ops import Op, Ops, Progress, Sink, Source, raise_for, sink_of, source_of

PathLike = Union[str, bytes]
Pem = Union[bytes, str, "os.PathLike[str]"]


def resolve(host: str, port: int) -> tuple[str, int]:
    """The first TCP address of ``host`` (the session itself resolves no names)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"no address for {host!r}")
    address = infos[0][4]
    return (str(address[0]), int(address[1]))


def make_config(host: str, *, tls: str, trust: Optional[Pem], insecure: bool,
                server_name: Optional[str], passive: bool, data_protection: str,
                timeout: Optional[float], client_certificate: Optional[Pem],
                client_key: Optional[Pem], trust_pasv_address: bool,
                trace: bool) -> ClientConfig:
    """The session configuration both clients build from their keyword arguments."""
    return ClientConfig(
        server_name or host,
        tls_mode=tls,
        trust=trust,
        insecure_skip_verify=insecure,
        client_certificate=client_certificate,
        client_key=client_key,
        data_protection=data_protection,
        data_mode="passive" if passive else "active",
        trust_pasv_address=trust_pasv_address,
        trace_control=trace,
        connect_timeout=timeout,
        reply_timeout=timeout,
        data_idle_timeout=timeout,
    )


def text(value: object) -> str:
    """A path from the server as ``str`` (UTF-8, undecodable bytes kept as surrogates)."""
    assert isinstance(value, bytes)
    return value.decode("utf-8", "surrogateescape")


class Client:
    """A blocking FTPS client.

    ``Client(host, port=None, user=None, password="", ...)`` connects (and logs in when
    ``user`` is given) before returning. Explicit FTPS (``tls="explicit"``, the default) or
    implicit (``tls="implicit"``, port 990 by default); passive data connections by default,
    ``passive=False`` for active. Certificates are checked against ``trust`` (PEM bytes or a
    path; Mozilla's roots when ``None``) for ``server_name`` (default: ``host``).
    ``timeout`` (seconds) bounds connecting, every reply and an idle data connection.
    ``progress(bytes_so_far)`` is called as transfers move data. Use it as a context manager:
    ``QUIT`` is sent on exit.
    """

    def __init__(self, host: str, port: Optional[int] = None, user: Optional[PathLike] = None,
                 password: PathLike = "", *, tls: str = "explicit",
                 trust: Optional[Pem] = None, insecure: bool = False,
                 server_name: Optional[str] = None, passive: bool = True,
                 data_protection: str = "private", timeout: Optional[float] = 60.0,
                 client_certificate: Optional[Pem] = None, client_key: Optional[Pem] = None,
                 trust_pasv_address: bool = False, progress: Optional[Progress] = None,
                 trace: Optional[Callable[[str, bytes], Any]] = None) -> None:
        config = make_config(host, tls=tls, trust=trust, insecure=insecure,
                             server_name=server_name, passive=passive,
                             data_protection=data_protection, timeout=timeout,
                             client_certificate=client_certificate, client_key=client_key,
                             trust_pasv_address=trust_pasv_address, trace=trace is not None)
        peer = resolve(host, port if port is not None else config.default_port)
        self.session = ClientSession(config, peer, now())
        self._ops = Ops(self.session)
        self._ops.trace = trace
        self._link = Link(self.session, self._ops.handle)
        self._link.before_close = self._forget
        self._selector = selectors.DefaultSelector()
        self._registered: dict[int, tuple[socket.socket, int]] = {}
        self._interests: List[tuple[socket.socket, int, bool, bool]] = []
        self.progress = progress
        try:
            # Connected, TLS set up and FEAT read: errors surface here, not at the first verb.
            self._run(lambda: self._ops.features is not None)
            if user is not None:
                self.login(user, password)
        except BaseException:
            self.close()
            raise

    # ---- context manager -------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: Optional[type[BaseException]], value: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        if kind is None and not self.session.is_closed:
            try:
                self.quit()
            finally:
                self.close()
        else:
            self.close()

    # ---- information -----------------------------------------------------------------------

    @property
    def tls_info(self) -> Optional[TlsInfo]:
        """What the control connection's TLS handshake negotiated."""
        return self._ops.tls_info

    @property
    def features(self) -> List[bytes]:
        """The feature lines of the server's ``FEAT`` reply."""
        return list(self._ops.features or [])

    # ---- verbs -------------------------------------------------------------------------------

    def login(self, user: PathLike = "anonymous", password: PathLike = "",
              account: Optional[PathLike] = None) -> Reply:
        """``USER``/``PASS`` (``ACCT``), then ``PBSZ``/``PROT`` under TLS."""
        return self._reply(self.session.login(user, password, account))

    def cwd(self, path: PathLike) -> Reply:
        """``CWD``."""
        return self._reply(self.session.cwd(path))

    def pwd(self) -> str:
        """``PWD``: the working directory."""
        return text(self._value(self.session.pwd()))

    def mkdir(self, path: PathLike) -> Optional[str]:
        """``MKD``: the directory created, when the server names it."""
        value = self._value(self.session.mkd(path))
        return None if value is None else text(value)

    def rmdir(self, path: PathLike) -> Reply:
        """``RMD``."""
        return self._reply(self.session.rmd(path))

    def delete(self, path: PathLike) -> Reply:
        """``DELE``."""
        return self._reply(self.session.dele(path))

    def rename(self, from_: PathLike, to: PathLike) -> Reply:
        """``RNFR`` + ``RNTO``."""
        return self._reply(self.session.rename(from_, to))

    def size(self, path: PathLike) -> int:
        """``SIZE`` (in the current transfer type: binary by default)."""
        value = self._value(self.session.size(path))
        assert isinstance(value, int)
        return value

    def mtime(self, path: PathLike) -> datetime.datetime:
        """``MDTM``: the modification time, UTC."""
        value = self._value(self.session.mdtm(path))
        assert isinstance(value, datetime.datetime)
        return value

    def quote(self, line: PathLike) -> Reply:
        """Sends a raw command line (``"SITE CHMOD 644 x"``); transfers and security commands
        have their own verbs and are refused here."""
        raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        verb, _, argument = raw.partition(b" ")
        return self._reply(self.session.raw_command(verb, argument or None))

    def ccc(self) -> Reply:
        """``CCC``: the control connection continues in clear (data stays protected)."""
        return self._reply(self.session.ccc())

    def set_protection(self, level: str) -> Reply:
        """``PBSZ 0`` + ``PROT P`` (``"private"``) or ``PROT C`` (``"clear"``)."""
        return self._reply(self.session.set_data_protection(level))

    def list(self, path: Optional[PathLike] = None) -> List[ListingEntry]:
        """The entries of a directory: ``MLSD`` when the server has it, ``LIST`` otherwise."""
        return self._listing(self.session.list_entries(path))

    def mlsd(self, path: Optional[PathLike] = None) -> List[ListingEntry]:
        """``MLSD``: entries with their facts."""
        return self._listing(self.session.mlsd(path))

    def nlst(self, path: Optional[PathLike] = None) -> List[bytes]:
        """``NLST``: bare names."""
        return [e.name for e in self._listing(self.session.nlst(path)) if e.name is not None]

    def retrieve(self, path: PathLike, target: Union[Sink, IO[bytes]], offset: int = 0, *,
                 progress: Optional[Progress] = None) -> Transfer:
        """Downloads ``path`` into ``target`` (a binary file or a callable taking each
        chunk), from ``offset`` (``REST``). Raises ``TransferError`` if the data connection
        ended without TLS close_notify (a truncated file), ``ReplyError`` if refused."""
        op = self.session.retrieve(path, offset or None)
        record = self._ops.start(op)
        record.sink = sink_of(target)
        record.progress = progress or self.progress
        return self._transfer(record)

    def read_bytes(self, path: PathLike, offset: int = 0) -> bytes:
        """Downloads ``path`` into memory."""
        parts: List[bytes] = []
        self.retrieve(path, parts.append, offset)
        return b"".join(parts)

    def store(self, path: PathLike, source: Source, *,
              progress: Optional[Progress] = None) -> Transfer:
        """Uploads ``source`` (bytes or a binary file read to its end) as ``path``."""
        return self._upload(self.session.store(path), source, progress)

    def append(self, path: PathLike, source: Source, *,
               progress: Optional[Progress] = None) -> Transfer:
        """``APPE``: appends ``source`` to ``path``."""
        return self._upload(self.session.append(path), source, progress)

    def quit(self) -> Reply:
        """``QUIT``; the session ends after the reply."""
        reply = self._reply(self.session.quit())
        self._run(lambda: self._ops.closed is not None)
        self.close()
        return reply

    def close(self) -> None:
        """Closes every socket without ``QUIT`` (the server sees the connection drop)."""
        self._link.close_all()
        for sock, _ in self._registered.values():
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
        self._registered.clear()
        self._selector.close()

    # ---- the loop ------------------------------------------------------------------------------

    def _reply(self, op: int) -> Reply:
        completed = self._wait(self._ops.start(op))
        raise_for(completed)
        assert isinstance(completed.reply, Reply)
        return completed.reply

    def _value(self, op: int) -> object:
        return raise_for(self._wait(self._ops.start(op)))

    def _listing(self, op: int) -> List[ListingEntry]:
        record = self._ops.start(op)
        raise_for(self._wait(record))
        return record.entries

    def _transfer(self, record: Op) -> Transfer:
        value = raise_for(self._wait(record))
        assert isinstance(value, Transfer)
        return value

    def _upload(self, op: int, source: Source, progress: Optional[Progress]) -> Transfer:
        record = self._ops.start(op)
        record.source = source_of(source)
        record.progress = progress or self.progress
        return self._transfer(record)

    def _wait(self, record: Op):  # type: ignore[no-untyped-def]
        self._run(lambda: record.completed is not None)
        return self._ops.result(record)

    def _run(self, done: Callable[[], bool]) -> None:
        """Drives the session until ``done()``: drain, wait for the sockets or the session's
        deadline, feed what happened."""
        link = self._link
        while True:
            link.drain()
            if done():
                return
            if self._ops.closed is not None:
                error = self._ops.closed.error
                if isinstance(error, Error):
                    raise error
                raise ClosedError("the session has ended", kind="closed", kind_code=2)
            self._sync_selector()
            timeout = None
            if link.deadline is not None:
                timeout = max(0.0, (link.deadline - now()) / 1e9)
            if not self._registered and timeout is None:
                raise ClosedError("the session waits for nothing", kind="closed", kind_code=2)
            ready = self._selector.select(timeout)
            if not ready:
                link.timed_out()
                continue
            for key, mask in ready:
                channel = key.data
                if mask & selectors.EVENT_WRITE:
                    link.writable(channel)
                if mask & selectors.EVENT_READ:
                    link.readable(channel)
            link.timed_out()

    def _forget(self, sock: socket.socket) -> None:
        self._interests = []  # the next wait re-registers from scratch
        current = self._registered.get(sock.fileno())
        if current is not None and current[0] is sock:
            self._selector.unregister(sock)
            del self._registered[sock.fileno()]

    def _sync_selector(self) -> None:
        """Registers each socket for what the link waits for, changing only what changed."""
        interests = self._link.interests()
        if interests == self._interests:
            return
        self._interests = interests
        wanted: dict[int, tuple[socket.socket, int]] = {}
        for sock, key, read, write in interests:
            events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
            wanted[sock.fileno()] = (sock, events)
            current = self._registered.get(sock.fileno())
            if current is None:
                self._selector.register(sock, events, key)
            elif current[0] is not sock:
                self._selector.unregister(current[0])
                self._selector.register(sock, events, key)
            elif current[1] != events:
                self._selector.modify(sock, events, key)
        for fd, (sock, _) in self._registered.items():
            if fd not in wanted or wanted[fd][0] is not sock:
                try:
                    self._selector.unregister(sock)
                except (KeyError, ValueError):
                    pass
        self._registered = wanted
