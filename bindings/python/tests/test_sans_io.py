"""The sans-IO classes driven by hand, in memory: a ClientSession against a ServerSession, with
the bytes of every channel delivered in random chunks (hypothesis), and the typed errors for a
caller's misuse."""

from __future__ import annotations

import datetime
import itertools
from typing import Optional, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftps
from peers import make_pki

PKI = make_pki()
Session = Union[ftps.ClientSession, ftps.ServerSession]


class Pair:
    """A client and a server session joined by in-memory pipes: each pipe delivers its bytes
    in chunks of the given sizes (cycled), and the receiver may take fewer."""

    def __init__(self, chunks: list[int], payload: bytes) -> None:
        self.now = 1_000_000_000
        self.sizes = itertools.cycle(chunks)
        self.client = ftps.ClientSession(
            ftps.ClientConfig("localhost", trust=PKI.ca_pem), ("127.0.0.1", 21), self.now)
        self.server: Optional[ftps.ServerSession] = None
        self.server_config = ftps.ServerConfig(PKI.cert_pem, PKI.key_pem)
        # (side, channel) -> bytes in flight towards the other side; side 0 = client.
        self.pipes: dict[tuple[int, int], bytearray] = {}
        self.eof_after: set[tuple[int, int]] = set()
        self.peer_channel: dict[tuple[int, int], int] = {(0, 0): 0, (1, 0): 0}
        self.listening: dict[int, int] = {}  # fake port -> server data id
        self.files: dict[bytes, bytes] = {b"/given.bin": payload}
        self.upload = bytearray()
        self.sending: dict[int, bytes] = {}
        self.completed: dict[int, ftps.Completed] = {}
        self.downloads: dict[int, bytearray] = {}
        self.uploads: dict[int, bytes] = {}
        self.listings: dict[int, list[ftps.ListingEntry]] = {}
        self.closed: list[object] = []

    def session(self, side: int) -> Session:
        if side == 0:
            return self.client
        assert self.server is not None
        return self.server

    def tick(self) -> int:
        self.now += 1000
        return self.now

    # ---- outputs ----------------------------------------------------------------------------

    def drain(self, side: int) -> bool:
        session = self.session(side)
        moved = False
        while True:
            out = session.poll_output(self.tick())
            if isinstance(out, ftps.Wait):
                return moved
            moved = True
            if isinstance(out, ftps.Transmit):
                self.pipes.setdefault((side, out.channel), bytearray()).extend(out.data)
            elif isinstance(out, ftps.Connect):
                self.connect(out.channel, out.addr)
            elif isinstance(out, ftps.Listen):
                port = 40000 + out.data
                self.listening[port] = out.data
                session.listening(out.data, (out.ip, port), self.tick())
            elif isinstance(out, (ftps.ShutdownWrite, ftps.Close)):
                self.eof_after.add((side, out.channel))
            elif side == 0:
                self.client_event(out)
            else:
                self.server_event(out)

    def connect(self, channel: int, addr: tuple[str, int]) -> None:
        local = ("127.0.0.1", 50000 + channel)
        if channel == 0:
            self.server = ftps.ServerSession(self.server_config, local, ("127.0.0.1", 21),
                                             self.tick())
            self.client.connected(0, local, self.tick())
            return
        data = self.listening[addr[1]]
        self.peer_channel[(0, channel)] = data
        self.peer_channel[(1, data)] = channel
        self.client.connected(channel, local, self.tick())
        assert self.server is not None
        self.server.accepted(data, local, self.tick())

    def client_event(self, event: object) -> None:
        client = self.client
        if isinstance(event, ftps.Readable):
            while chunk := client.read_data(event.id, 777):
                self.downloads.setdefault(event.id, bytearray()).extend(chunk)
        elif isinstance(event, ftps.Writable):
            data = self.uploads.get(event.id)
            if data is None:
                return
            taken = client.write_data(event.id, data[:5000]) if data else 0
            self.uploads[event.id] = data[taken:]
            if not self.uploads[event.id]:
                del self.uploads[event.id]
                client.finish_upload(event.id)
        elif isinstance(event, ftps.Listing):
            self.listings.setdefault(event.op, []).append(event.entry)
        elif isinstance(event, ftps.Completed):
            self.completed[event.op] = event
        elif isinstance(event, ftps.Closed):
            self.closed.append(event)

    def server_event(self, event: object) -> None:
        server = self.server
        assert server is not None
        if isinstance(event, ftps.Request):
            if event.kind == "login":
                server.answer_login(event.id, event.password == b"pw")
            elif event.kind == "store":
                self.upload = bytearray()
                server.answer(event.id)
            elif event.kind == "retrieve":
                assert isinstance(event.path, bytes)
                if event.path in self.files:
                    self.sending[event.id] = self.files[event.path]
                    server.answer(event.id)
                else:
                    server.refuse(event.id, "not_found")
            elif event.kind == "list":
                self.sending[event.id] = b""
                self.entries = [ftps.DirEntry(name.lstrip(b"/"), "file", len(data),
                                              datetime.datetime(2024, 5, 6, 7, 8, 9))
                                for name, data in sorted(self.files.items())]
                server.answer(event.id)
            elif event.kind == "size":
                assert isinstance(event.path, bytes)
                server.answer(event.id, len(self.files[event.path]))
            else:
                server.refuse(event.id, "permission_denied")
        elif isinstance(event, ftps.Readable):
            while chunk := server.read_data(event.id, 999):
                self.upload.extend(chunk)
        elif isinstance(event, ftps.UploadFinished):
            assert event.complete
            self.files[b"/up.bin"] = bytes(self.upload)
            server.finish_upload(event.id)
        elif isinstance(event, ftps.Writable):
            if event.id not in self.sending:
                return
            if getattr(self, "entries", None):
                while self.entries and server.write_entry(event.id, self.entries[0]):
                    self.entries.pop(0)
                if not self.entries:
                    del self.sending[event.id]
                    server.finish_data(event.id)
                return
            data = self.sending[event.id]
            while data:
                taken = server.write_data(event.id, data[:3000])
                data = data[taken:]
                if not taken:
                    break
            self.sending[event.id] = data
            if not data:
                del self.sending[event.id]
                server.finish_data(event.id)

    # ---- delivery --------------------------------------------------------------------------

    def deliver(self) -> bool:
        moved = False
        for (side, channel), pending in list(self.pipes.items()):
            peer_side = 1 - side
            peer = self.peer_channel.get((side, channel))
            if peer is None or self.server is None:
                continue
            if pending:
                size = next(self.sizes)
                taken = self.session(peer_side).receive(peer, bytes(pending[:size]), self.tick())
                del pending[:taken]
                moved |= taken > 0
            if not pending and (side, channel) in self.eof_after:
                self.eof_after.discard((side, channel))
                self.session(peer_side).eof(peer, self.tick())
                moved = True
        for key in list(self.eof_after):
            if key not in self.pipes and self.peer_channel.get(key) is not None:
                self.eof_after.discard(key)
                self.session(1 - key[0]).eof(self.peer_channel[key], self.tick())
                moved = True
        return moved

    def run(self) -> None:
        for _ in range(200_000):
            moved = self.drain(0)
            if self.server is not None:
                moved |= self.drain(1)
            moved |= self.deliver()
            if self.closed:
                return
            if not moved:
                raise AssertionError("both sessions wait and nothing is in flight")
        raise AssertionError("no end after 200000 rounds")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.integers(min_value=1, max_value=4096), min_size=1, max_size=8),
       payload=st.binary(max_size=70_000), upload=st.binary(max_size=70_000))
def test_client_and_server_sessions_in_memory_any_chunking(chunks: list[int], payload: bytes,
                                                           upload: bytes) -> None:
    # spec: T35 — every transfer ends with close_notify each way, then 226, whatever the
    # chunking.
    pair = Pair(chunks, payload)
    client = pair.client
    login = client.login("user", "pw")
    store = client.store("up.bin")
    pair.uploads[store] = upload
    retrieve = client.retrieve("given.bin")
    listing = client.list_entries()
    size = client.size("given.bin")
    missing = client.retrieve("missing.bin")
    quit = client.quit()
    pair.run()

    for op in (login, store, retrieve, listing, size, quit):
        assert pair.completed[op].error is None, pair.completed[op]
    assert pair.files[b"/up.bin"] == upload
    transfer = pair.completed[retrieve].value
    assert isinstance(transfer, ftps.Transfer) and transfer.bytes == len(payload)
    assert transfer.resumed is True
    assert bytes(pair.downloads.get(retrieve, b"")) == payload
    names = sorted(e.name for e in pair.listings[listing] if e.name is not None)
    assert names == [b"given.bin", b"up.bin"]
    assert pair.completed[size].value == len(payload)
    error = pair.completed[missing].error
    assert isinstance(error, ftps.ReplyError) and error.code == 550
    assert isinstance(pair.closed[0], ftps.Closed) and pair.closed[0].error is None
    assert client.is_closed


def test_outputs_and_events_have_readable_reprs() -> None:
    session = ftps.ClientSession(ftps.ClientConfig("localhost", trust=PKI.ca_pem),
                                 ("127.0.0.1", 2121), 5)
    out = session.poll_output(6)
    assert isinstance(out, ftps.Connect)
    assert repr(out) == "Connect(channel=0, addr=('127.0.0.1', 2121))"
    match out:
        case ftps.Connect(channel, addr):
            assert channel == ftps.CONTROL and addr == ("127.0.0.1", 2121)
    wait = session.poll_output(7)
    assert isinstance(wait, ftps.Wait) and wait.deadline is not None
    assert repr(wait).startswith("Wait(deadline=")
    assert "secure=False" in repr(session)


def test_misuse_raises_typed_errors() -> None:
    config = ftps.ClientConfig("localhost", trust=PKI.ca_pem)
    session = ftps.ClientSession(config, ("127.0.0.1", 21), 0)
    with pytest.raises(ftps.UsageError):
        session.cwd("a\r\nDELE x")  # spec: C-injection: CR/LF refused, nothing sent
    with pytest.raises(ftps.UsageError):
        session.read_data(12345)
    with pytest.raises(ftps.UsageError):
        session.io_error(0, "no-such-kind", 1)
    with pytest.raises(ftps.UsageError):
        ftps.ClientSession(config, ("example.com", 21), 0)
    with pytest.raises(TypeError):
        session.cwd(42)  # type: ignore[arg-type]
    with pytest.raises(ftps.UsageError):
        ftps.ClientConfig("localhost", tls_mode="sometimes")
    with pytest.raises(ftps.ConfigError):
        ftps.ClientConfig("localhost", trust=b"not a certificate")
    with pytest.raises(ftps.ConfigError):
        ftps.ServerConfig(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ftps.UsageError):
        ftps.DirEntry("bad\nname")
    assert issubclass(ftps.UsageError, ftps.Error) and issubclass(ftps.UsageError, ValueError)
    assert issubclass(ftps.CertificateError, ftps.TlsError)
    error = ftps.UsageError("x", kind="usage", kind_code=1)
    assert error.kind == "usage" and error.kind_code == 1
