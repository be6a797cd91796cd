"""Routing a client session's events to the operation they belong to, shared by the blocking
and the asyncio client: downloaded bytes to a sink, upload bytes from a source, listing
entries to a list, the completion to whoever waits. No FTP decision is made here.
"""

from __future__ import annotations

from typing import IO, Any, Callable, Optional, Union

from ._errors import Error
from ._ftps import (
    ClientSession,
    Closed,
    Completed,
    ControlLine,
    Listing,
    ListingEntry,
    Readable,
    Ready,
    Secured,
    TlsInfo,
    Writable,
)

#: Bytes read from an upload source at once.
UPLOAD_CHUNK = 256 * 1024
#: Bytes taken from the session per ``read_data`` call.
READ_CHUNK = 256 * 1024

Sink = Callable[[bytes], Any]
Progress = Callable[[int], Any]
Source = Union[bytes, bytearray, memoryview, IO[bytes]]


def sink_of(target: Union[Sink, IO[bytes]]) -> Sink:
    """A callable taking each downloaded chunk: ``target`` itself or its ``write``."""
    write = getattr(target, "write", None)
    if write is not None:
        return write  # type: ignore[no-any-return]
    if callable(target):
        return target
    raise TypeError("expected a writable binary file or a callable taking bytes")


class Op:
    """What the driver knows about one running operation."""

    __slots__ = ("id", "sink", "source", "chunk", "finished", "entries", "moved", "progress",
                 "completed", "paused")

    def __init__(self, op: int) -> None:
        self.id = op
        self.sink: Optional[Sink] = None
        self.source: Optional[Callable[[int], bytes]] = None
        self.chunk = b""
        self.finished = False
        self.entries: list[ListingEntry] = []
        self.moved = 0
        self.progress: Optional[Progress] = None
        self.completed: Optional[Completed] = None
        # Downloads with a consumer that is behind (asyncio iterators): the session keeps
        # the bytes, and its data connection is not read, until the consumer catches up.
        self.paused = False


def source_of(data: Source) -> Callable[[int], bytes]:
    """A function giving the next chunk of an upload (``b""`` at the end)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        position = 0

        def take(size: int) -> bytes:
            nonlocal position
            chunk = bytes(view[position:position + size])
            position += len(chunk)
            return chunk

        return take
    read = getattr(data, "read", None)
    if read is None:
        raise TypeError("expected bytes or a readable binary file")
    return read  # type: ignore[no-any-return]


class Ops:
    """The operations of one client session (see the module docs)."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.ops: dict[int, Op] = {}
        self.tls_info: Optional[TlsInfo] = None
        self.features: Optional[list[bytes]] = None
        self.closed: Optional[Closed] = None
        self.trace: Optional[Callable[[str, bytes], Any]] = None
        self.on_completed: Optional[Callable[[Op], None]] = None
        self.on_data: Optional[Callable[[Op], bool]] = None

    def start(self, op: int) -> Op:
        """Tracks a new operation."""
        record = Op(op)
        self.ops[op] = record
        return record

    def handle(self, event: object) -> None:
        """One event from the session's drain."""
        if isinstance(event, Readable):
            self.pull(event.id)
        elif isinstance(event, Writable):
            self.push(event.id)
        elif isinstance(event, Listing):
            record = self.ops.get(event.op)
            if record is not None:
                record.entries.append(event.entry)
        elif isinstance(event, Completed):
            record = self.ops.get(event.op)
            if record is not None:
                record.completed = event
                if self.on_completed is not None:
                    self.on_completed(record)
        elif isinstance(event, Closed):
            self.closed = event
        elif isinstance(event, Secured):
            if self.tls_info is None:
                self.tls_info = event.info
        elif isinstance(event, Ready):
            self.features = list(event.features)
        elif isinstance(event, ControlLine) and self.trace is not None:
            self.trace(event.direction, event.line)

    def pull(self, op: int) -> None:
        """Takes the downloaded bytes of ``op`` into its sink, until the session has none
        (or the consumer is behind: then the op is paused)."""
        record = self.ops.get(op)
        if record is None:
            return  # completed (a paused download whose last bytes were already taken)
        session = self.session
        while True:
            if self.on_data is not None and not self.on_data(record):
                record.paused = True
                return
            chunk = session.read_data(op, READ_CHUNK)
            if not chunk:
                return
            if record.sink is None:
                continue  # an abandoned download: its bytes are dropped
            record.moved += len(chunk)
            record.sink(chunk)
            if record.progress is not None:
                record.progress(record.moved)

    def push(self, op: int) -> None:
        """Gives an upload the bytes of its source until the session takes no more, and ends
        it at the source's end."""
        record = self.ops.get(op)
        if record is None or record.finished or record.source is None:
            return
        session = self.session
        while True:
            if not record.chunk:
                record.chunk = record.source(UPLOAD_CHUNK)
                if not record.chunk:
                    record.finished = True
                    session.finish_upload(op)
                    return
            taken = session.write_data(op, record.chunk)
            if taken:
                record.moved += taken
                if record.progress is not None:
                    record.progress(record.moved)
            if taken < len(record.chunk):
                record.chunk = record.chunk[taken:]
                return  # full: the next Writable continues
            record.chunk = b""

    def result(self, record: Op) -> Completed:
        """The completion of a finished operation (raises nothing)."""
        assert record.completed is not None
        self.ops.pop(record.id, None)
        return record.completed


def raise_for(completed: Completed) -> object:
    """The operation's value, or raise its error."""
    error = completed.error
    if error is not None:
        assert isinstance(error, Error)
        raise error
    return completed.value
