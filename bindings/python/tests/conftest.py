"""Fixtures: real peers on 127.0.0.1 (started per module, stopped after it) and test data."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "examples"))

import peers  # noqa: E402
from aio_server import Server as AioServer  # noqa: E402

import ftps  # noqa: E402

MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_random(path: Path, size: int) -> str:
    """A file of `size` random bytes; returns its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * MIB))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def give(server: peers.Server, path: Path) -> None:
    """Makes a file written by the test owned by the server's user (vsftpd runs as it)."""
    uid = server.extra.get("uid")
    gid = server.extra.get("gid")
    if isinstance(uid, int) and isinstance(gid, int):
        os.chown(path, uid, gid)


@pytest.fixture(scope="module")
def vsftpd() -> Iterator[peers.Server]:
    server = peers.start_vsftpd()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def vsftpd_implicit() -> Iterator[peers.Server]:
    server = peers.start_vsftpd(implicit=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pyftpdlib() -> Iterator[peers.Server]:
    server = peers.start_pyftpdlib()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ftps_serve() -> Iterator[peers.Server]:
    server = peers.start_ftps_serve()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ftps_serve_implicit() -> Iterator[peers.Server]:
    server = peers.start_ftps_serve(implicit=True)
    yield server
    server.stop()


class ThreadedAioServer:
    """The asyncio example server, on its own loop in a thread, so blocking and asyncio
    clients in the tests can both use it."""

    def __init__(self) -> None:
        pki = peers.make_pki()
        import tempfile
        self.tmp = tempfile.TemporaryDirectory(prefix="ftps-py-aio-")
        self.root = Path(self.tmp.name)
        self.ca_pem = pki.ca_pem
        self.user, self.password = "user", "secret"
        self.loop = asyncio.new_event_loop()
        self.server = AioServer(self.root, ftps.ServerConfig(pki.cert_pem, pki.key_pem),
                                self.user, self.password)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def aio_server() -> Iterator[ThreadedAioServer]:
    server = ThreadedAioServer()
    yield server
    server.stop()
