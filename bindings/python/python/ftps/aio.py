"""``ftps.aio.Client``: the asyncio FTPS client.

The same verbs as :class:`ftps.Client`, as coroutines; downloads can also be read as an async
iterator of chunks (:meth:`Client.iter_retrieve`). Cancelling a transfer (its task, or leaving
the iterator early) aborts it with ``ABOR`` and leaves the session usable.

It runs on the event loop's readiness callbacks (``loop.add_reader``/``add_writer``, which the
default selector loop and uvloop have): each callback feeds the session and drains it at once,
like a protocol's ``data_received``, and the session's deadline is one ``loop.call_at`` timer.
The socket bookkeeping is the blocking client's (``ftps._link``); every FTP decision is the
sans-IO session's.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import socket
from types import TracebackType
from typing import IO, Any, AsyncIterator, Callable, List, Optional, Union

from ._errors import ClosedError, Error
from ._ftps import ClientSession, Completed, ListingEntry, Reply, TlsInfo, Transfer
from ._link import Link, now
from ._ops import Op, Ops, Progress, Sink, Source, raise_for, sink_of, source_of
from .client import Pem, PathLike, make_config, resolve, text

#: Downloaded chunks an async iterator holds before the data connection is no longer read.
ITER_QUEUE = 8
#: Socket reads per readiness callback at most (see ``LinkDriver._on_readable``).
READS_PER_CALLBACK = 4


class Client:
    """An asyncio FTPS client. Make it with ``await Client.connect(host, ...)`` (the same
    keyword arguments as :class:`ftps.Client`), or ``async with await Client.connect(...)``.
    """

    def __init__(self, session: ClientSession, progress: Optional[Progress]) -> None:
        self.session = session
        self.progress = progress
        self._loop = asyncio.get_running_loop()
        self._ops = Ops(session)
        self._ops.on_completed = self._completed
        self._ops.on_data = self._consumer_ready
        self._link = Link(session, self._ops.handle)
        self._driver = LinkDriver(self._link, self._after_drain, self._fail_waiters)
        self._waiters: dict[int, asyncio.Future[Completed]] = {}
        self._queues: dict[int, collections.deque[bytes]] = {}
        self._queue_ready: dict[int, asyncio.Event] = {}
        self._ready = self._loop.create_future()
        self._failure: Optional[BaseException] = None

    @classmethod
    async def connect(cls, host: str, port: Optional[int] = None,
                      user: Optional[PathLike] = None, password: PathLike = "", *,
                      tls: str = "explicit", trust: Optional[Pem] = None,
                      insecure: bool = False, server_name: Optional[str] = None,
                      passive: bool = True, data_protection: str = "private",
                      timeout: Optional[float] = 60.0, client_certificate: Optional[Pem] = None,
                      client_key: Optional[Pem] = None, trust_pasv_address: bool = False,
                      progress: Optional[Progress] = None,
                      trace: Optional[Callable[[str, bytes], Any]] = None) -> Client:
        """Connects (TLS and FEAT done) and logs in when ``user`` is given."""
        config = make_config(host, tls=tls, trust=trust, insecure=insecure,
                             server_name=server_name, passive=passive,
                             data_protection=data_protection, timeout=timeout,
                             client_certificate=client_certificate, client_key=client_key,
                             trust_pasv_address=trust_pasv_address, trace=trace is not None)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port if port is not None else config.default_port,
                                       type=socket.SOCK_STREAM)
        peer = resolve(str(infos[0][4][0]), int(infos[0][4][1]))
        client = cls(ClientSession(config, peer, now()), progress)
        client._ops.trace = trace
        try:
            client._pump()
            await client._ready
            if user is not None:
                await client.login(user, password)
        except BaseException:
            client.close()
            raise
        return client

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, kind: Optional[type[BaseException]],
                        value: Optional[BaseException],
                        traceback: Optional[TracebackType]) -> None:
        if kind is None and not self.session.is_closed:
            try:
                await self.quit()
            finally:
                self.close()
        else:
            self.close()

    @property
    def tls_info(self) -> Optional[TlsInfo]:
        """What the control connection's TLS handshake negotiated."""
        return self._ops.tls_info

    @property
    def features(self) -> List[bytes]:
        """The feature lines of the server's ``FEAT`` reply."""
        return list(self._ops.features or [])

    # ---- verbs ------------------------------------------------------------------------------

    async def login(self, user: PathLike = "anonymous", password: PathLike = "",
                    account: Optional[PathLike] = None) -> Reply:
        """``USER``/``PASS`` (``ACCT``), then ``PBSZ``/``PROT`` under TLS."""
        return await self._reply(self.session.login(user, password, account))

    async def cwd(self, path: PathLike) -> Reply:
        """``CWD``."""
        return await self._reply(self.session.cwd(path))

    async def pwd(self) -> str:
        """``PWD``."""
        return text(await self._value(self.session.pwd()))

    async def mkdir(self, path: PathLike) -> Optional[str]:
        """``MKD``."""
        value = await self._value(self.session.mkd(path))
        return None if value is None else text(value)

    async def rmdir(self, path: PathLike) -> Reply:
        """``RMD``."""
        return await self._reply(self.session.rmd(path))

    async def delete(self, path: PathLike) -> Reply:
        """``DELE``."""
        return await self._reply(self.session.dele(path))

    async def rename(self, from_: PathLike, to: PathLike) -> Reply:
        """``RNFR`` + ``RNTO``."""
        return await self._reply(self.session.rename(from_, to))

    async def size(self, path: PathLike) -> int:
        """``SIZE``."""
        value = await self._value(self.session.size(path))
        assert isinstance(value, int)
        return value

    async def mtime(self, path: PathLike) -> datetime.datetime:
        """``MDTM`` (UTC)."""
        value = await self._value(self.session.mdtm(path))
        assert isinstance(value, datetime.datetime)
        return value

    async def quote(self, line: PathLike) -> Reply:
        """A raw command line (transfers and security commands are refused here)."""
        raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        verb, _, argument = raw.partition(b" ")
        return await self._reply(self.session.raw_command(verb, argument or None))

    async def ccc(self) -> Reply:
        """``CCC``."""
        return await self._reply(self.session.ccc())

    async def set_protection(self, level: str) -> Reply:
        """``PBSZ 0`` + ``PROT P`` (``"private"``) or ``PROT C`` (``"clear"``)."""
        return await self._reply(self.session.set_data_protection(level))

    async def list(self, path: Optional[PathLike] = None) -> List[ListingEntry]:
        """``MLSD`` when the server has it, ``LIST`` otherwise."""
        return await self._listing(self.session.list_entries(path))

    async def mlsd(self, path: Optional[PathLike] = None) -> List[ListingEntry]:
        """``MLSD``."""
        return await self._listing(self.session.mlsd(path))

    async def nlst(self, path: Optional[PathLike] = None) -> List[bytes]:
        """``NLST``: bare names."""
        entries = await self._listing(self.session.nlst(path))
        return [e.name for e in entries if e.name is not None]

    async def retrieve(self, path: PathLike, target: Union[Sink, IO[bytes]], offset: int = 0,
                       *, progress: Optional[Progress] = None) -> Transfer:
        """Downloads ``path`` into ``target`` (a binary file or a callable taking each
        chunk). Cancelling the calling task aborts the transfer (``ABOR``)."""
        record = self._ops.start(self.session.retrieve(path, offset or None))
        record.sink = sink_of(target)
        record.progress = progress or self.progress
        return await self._transfer(record)

    async def read_bytes(self, path: PathLike, offset: int = 0) -> bytes:
        """Downloads ``path`` into memory."""
        parts: List[bytes] = []
        await self.retrieve(path, parts.append, offset)
        return b"".join(parts)

    async def iter_retrieve(self, path: PathLike, offset: int = 0) -> AsyncIterator[bytes]:
        """Downloads ``path`` as an async iterator of chunks. The data connection is read
        only as fast as the chunks are consumed; leaving the loop early aborts the transfer.
        The iterator raises the transfer's error (e.g. ``TransferError`` when truncated)."""
        op = self.session.retrieve(path, offset or None)
        record = self._ops.start(op)
        queue: collections.deque[bytes] = collections.deque()
        ready = asyncio.Event()
        self._queues[op] = queue
        self._queue_ready[op] = ready
        record.sink = queue.append
        waiter = self._waiter(op)
        self._pump()
        finished = False
        try:
            while True:
                if queue:
                    chunk = queue.popleft()
                    if record.paused:
                        # The consumer caught up: take the bytes the session held back.
                        record.paused = False
                        self._ops.pull(op)
                        self._pump()
                    yield chunk
                    continue
                if waiter.done():
                    break
                ready.clear()
                # Set by new bytes, by the completion and by a failure of the session.
                await ready.wait()
            while queue:
                yield queue.popleft()
            finished = True
            raise_for(waiter.result())
        finally:
            self._queues.pop(op, None)
            self._queue_ready.pop(op, None)
            if not finished and not waiter.done():
                self._abort(op)

    async def store(self, path: PathLike, source: Source, *,
                    progress: Optional[Progress] = None) -> Transfer:
        """Uploads ``source`` (bytes or a binary file) as ``path``."""
        return await self._upload(self.session.store(path), source, progress)

    async def append(self, path: PathLike, source: Source, *,
                     progress: Optional[Progress] = None) -> Transfer:
        """``APPE``."""
        return await self._upload(self.session.append(path), source, progress)

    async def quit(self) -> Reply:
        """``QUIT``; the session ends after the reply."""
        reply = await self._reply(self.session.quit())
        self.close()
        return reply

    def close(self) -> None:
        """Closes every socket without ``QUIT``."""
        self._driver.close()
        error = ClosedError("the client was closed", kind="closed", kind_code=2)
        self._fail_waiters(error)

    # ---- operations -------------------------------------------------------------------------

    def _waiter(self, op: int) -> asyncio.Future[Completed]:
        future: asyncio.Future[Completed] = self._loop.create_future()
        self._waiters[op] = future
        if self._failure is not None:
            future.set_exception(self._failure)
        return future

    async def _complete(self, record: Op) -> Completed:
        waiter = self._waiter(record.id)
        self._pump()
        try:
            # Shielded: cancelling the caller must not cancel the future the pump resolves.
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            if not waiter.done():
                self._abort(record.id)
            raise

    def _abort(self, op: int) -> None:
        """Aborts an operation whose caller went away: ``ABOR``, and its bytes are dropped."""
        record = self._ops.ops.get(op)
        if record is not None:
            record.sink = None
            record.source = None
            record.paused = False
        try:
            self.session.abort(op)
        except Error:
            pass  # it completed meanwhile, or the session ended
        self._ops.pull(op)
        self._pump()

    async def _reply(self, op: int) -> Reply:
        completed = await self._complete(self._ops.start(op))
        raise_for(completed)
        assert isinstance(completed.reply, Reply)
        return completed.reply

    async def _value(self, op: int) -> object:
        return raise_for(await self._complete(self._ops.start(op)))

    async def _listing(self, op: int) -> List[ListingEntry]:
        record = self._ops.start(op)
        raise_for(await self._complete(record))
        return record.entries

    async def _transfer(self, record: Op) -> Transfer:
        value = raise_for(await self._complete(record))
        assert isinstance(value, Transfer)
        return value

    async def _upload(self, op: int, source: Source, progress: Optional[Progress]) -> Transfer:
        record = self._ops.start(op)
        record.source = source_of(source)
        record.progress = progress or self.progress
        return await self._transfer(record)

    # ---- callbacks from the session's events ------------------------------------------------

    def _completed(self, record: Op) -> None:
        completed = self._ops.result(record)
        waiter = self._waiters.pop(record.id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(completed)
        ready = self._queue_ready.get(record.id)
        if ready is not None:
            ready.set()

    def _consumer_ready(self, record: Op) -> bool:
        queue = self._queues.get(record.id)
        if queue is None:
            return True
        ready = self._queue_ready.get(record.id)
        if ready is not None:
            ready.set()
        return len(queue) < ITER_QUEUE

    def _fail_waiters(self, error: BaseException) -> None:
        self._failure = error
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._waiters.clear()
        if not self._ready.done():
            self._ready.set_exception(error)
        for ready in self._queue_ready.values():
            ready.set()

    # ---- the loop ---------------------------------------------------------------------------

    def _pump(self) -> None:
        self._driver.pump()

    def _after_drain(self) -> None:
        if self._ops.features is not None and not self._ready.done():
            self._ready.set_result(None)
        closed = self._ops.closed
        if closed is not None and self._failure is None:
            error = closed.error
            self._fail_waiters(error if isinstance(error, BaseException) else ClosedError(
                "the session has ended", kind="closed", kind_code=2))


class LinkDriver:
    """Runs a :class:`ftps._link.Link` on the asyncio loop: readiness callbacks
    (``add_reader``/``add_writer``) feed the session and drain it at once, and the session's
    deadline is one ``call_at`` timer. ``after_drain`` runs after every drain. Used by
    :class:`Client` and by the example server (examples/aio_server.py)."""

    def __init__(self, link: Link, after_drain: Callable[[], None],
                 on_failure: Callable[[BaseException], None]) -> None:
        self.link = link
        self.after_drain = after_drain
        self.on_failure = on_failure
        self._loop = asyncio.get_running_loop()
        self._readers: dict[int, socket.socket] = {}
        self._writers: dict[int, socket.socket] = {}
        self._timer: Optional[asyncio.TimerHandle] = None
        self._deadline: Optional[int] = None
        self._interests: list[tuple[socket.socket, int, bool, bool]] = []
        link.before_close = self._forget

    def pump(self) -> None:
        """Drains the session and re-arms the callbacks and the timer. Call after every input
        and verb."""
        try:
            self.link.drain()
            self.after_drain()
        except BaseException as error:  # a bug here must not leave waiters hanging
            self.on_failure(error)
            raise
        self._sync()

    def close(self) -> None:
        """Stops waiting and closes every socket."""
        for fd in list(self._readers):
            self._loop.remove_reader(fd)
        for fd in list(self._writers):
            self._loop.remove_writer(fd)
        self._readers.clear()
        self._writers.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._interests = []
        self.link.close_all()

    def _sync(self) -> None:
        interests = self.link.interests()
        if interests != self._interests:
            self._interests = interests
            self._register(interests)
        deadline = self.link.deadline
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._deadline = None
        elif self._timer is None or self._deadline is None or deadline < self._deadline:
            # A later deadline keeps the armed timer: it fires early, finds the session's
            # deadline not passed, and re-arms (the data-idle deadline moves with every chunk,
            # and a timer per chunk would cost more than the chunk's own work).
            if self._timer is not None:
                self._timer.cancel()
            self._deadline = deadline
            delay = max(0.0, (deadline - now()) / 1e9)
            self._timer = self._loop.call_at(self._loop.time() + delay, self._on_timer)

    def _register(self, interests: list[tuple[socket.socket, int, bool, bool]]) -> None:
        loop = self._loop
        readers: dict[int, tuple[socket.socket, int]] = {}
        writers: dict[int, tuple[socket.socket, int]] = {}
        for sock, key, read, write in interests:
            if read:
                readers[sock.fileno()] = (sock, key)
            if write:
                writers[sock.fileno()] = (sock, key)
        # Stale registrations go first: a closed socket's fd may already belong to a new one.
        for fd, sock in self._readers.items():
            if fd not in readers or readers[fd][0] is not sock:
                loop.remove_reader(fd)
        for fd, sock in self._writers.items():
            if fd not in writers or writers[fd][0] is not sock:
                loop.remove_writer(fd)
        for fd, (sock, key) in readers.items():
            if self._readers.get(fd) is not sock:
                loop.add_reader(fd, self._on_readable, key)
        for fd, (sock, key) in writers.items():
            if self._writers.get(fd) is not sock:
                loop.add_writer(fd, self._on_writable, key)
        self._readers = {fd: sock for fd, (sock, _) in readers.items()}
        self._writers = {fd: sock for fd, (sock, _) in writers.items()}

    def _forget(self, sock: socket.socket) -> None:
        self._interests = []  # the next pump re-registers from scratch
        fd = sock.fileno()
        if self._readers.get(fd) is sock:
            self._loop.remove_reader(fd)
            del self._readers[fd]
        if self._writers.get(fd) is sock:
            self._loop.remove_writer(fd)
            del self._writers[fd]

    def _on_readable(self, key: int) -> None:
        # A few reads per callback while the socket has bytes and the session takes them: a
        # fast download then costs fewer trips through the event loop per chunk.
        for _ in range(READS_PER_CALLBACK):
            more = self.link.readable(key)
            self.pump()
            if not more:
                return

    def _on_writable(self, key: int) -> None:
        self.link.writable(key)
        self.pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._deadline = None
        self.link.timed_out()
        self.pump()
