"""ftps.Client against pyftpdlib and this project's own servers: the `ftps serve` CLI and the
asyncio example server (python examples/aio_server.py, on ftps.ServerSession)."""

from __future__ import annotations

import io
import os

import pytest
from conftest import MIB, ThreadedAioServer, sha256, write_random

import ftps
from peers import Server


def client(server: Server, **kwargs: object) -> ftps.Client:
    return ftps.Client("127.0.0.1", server.port, server.user, server.password,
                       trust=server.ca_pem, server_name="localhost", timeout=30,
                       **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("passive", [True, False])
def test_pyftpdlib_round_trip(pyftpdlib: Server, passive: bool) -> None:
    data = os.urandom(3 * MIB + 17)
    with client(pyftpdlib, passive=passive) as c:
        assert c.store("file one.bin", data).bytes == len(data)
        assert c.read_bytes("file one.bin") == data
        assert c.mkdir("sub dir") is not None
        c.cwd("sub dir")
        assert c.pwd() == "/sub dir"
        c.cwd("/")
        c.rename("file one.bin", "renamed.bin")
        names = {e.name: e for e in c.list()}
        assert names[b"renamed.bin"].size == len(data)
        assert names[b"sub dir"].kind == "dir"
        assert sorted(c.nlst()) == [b"renamed.bin", b"sub dir"]
        c.delete("renamed.bin")
        c.rmdir("sub dir")
        assert c.list() == []


def test_pyftpdlib_append_and_resume(pyftpdlib: Server) -> None:
    with client(pyftpdlib) as c:
        c.store("log.txt", b"one\n")
        c.append("log.txt", io.BytesIO(b"two\n"))
        assert c.read_bytes("log.txt") == b"one\ntwo\n"
        assert c.read_bytes("log.txt", offset=4) == b"two\n"


def test_ftps_serve_64_mib_up_and_down(ftps_serve: Server) -> None:
    source = ftps_serve.root.parent / "source.bin"
    digest = write_random(source, 64 * MIB)
    with client(ftps_serve) as c:
        with source.open("rb") as f:
            up = c.store("big.bin", f)
        assert up.bytes == 64 * MIB and up.resumed is True  # spec: T40
        down = io.BytesIO()
        assert c.retrieve("big.bin", down).resumed is True
        assert sha256(down.getvalue()) == digest


def test_ftps_serve_active_and_odd_names(ftps_serve: Server) -> None:
    odd = b"na\xefve \xff name.txt"
    with open(bytes(ftps_serve.root) + b"/" + odd, "wb") as f:
        f.write(b"odd")
    with client(ftps_serve, passive=False) as c:
        entries = {e.name: e for e in c.mlsd()}  # spec: X07
        assert entries[odd].size == 3 and entries[odd].facts["type"] == b"file"
        assert c.read_bytes(odd) == b"odd"
        name = entries[odd].filename
        assert name is not None and c.read_bytes(name) == b"odd"


def test_ftps_serve_implicit(ftps_serve_implicit: Server) -> None:
    (ftps_serve_implicit.root / "i.txt").write_bytes(b"implicit")
    with client(ftps_serve_implicit, tls="implicit") as c:
        assert c.read_bytes("i.txt") == b"implicit"


def test_ftps_serve_refuses_another_name(ftps_serve: Server) -> None:
    # spec: T43
    with pytest.raises(ftps.CertificateError):
        ftps.Client("127.0.0.1", ftps_serve.port, trust=ftps_serve.ca_pem,
                    server_name="elsewhere.example", timeout=10)


def test_aio_example_server_serves_a_directory(aio_server: ThreadedAioServer) -> None:
    data = os.urandom(5 * MIB)
    (aio_server.root / "data.bin").write_bytes(data)
    (aio_server.root / "a dir").mkdir(exist_ok=True)
    with ftps.Client("127.0.0.1", aio_server.port, aio_server.user, aio_server.password,
                     trust=aio_server.ca_pem, server_name="localhost", timeout=30) as c:
        entries = {e.name: e for e in c.list()}
        assert entries[b"data.bin"].size == len(data)
        assert entries[b"a dir"].kind == "dir"
        transfer = io.BytesIO()
        result = c.retrieve("data.bin", transfer)
        assert transfer.getvalue() == data and result.resumed is True
        assert c.size("data.bin") == len(data)
        assert c.read_bytes("data.bin", offset=len(data) - 10) == data[-10:]
        with pytest.raises(ftps.ReplyError) as refused:
            c.store("upload.bin", b"no")  # read-only
        assert refused.value.code is not None and refused.value.code >= 500
        with pytest.raises(ftps.ReplyError):
            c.cwd("missing")


def test_truncated_download_raises(aio_server: ThreadedAioServer) -> None:
    # spec: T29, §9.4 — a data connection that ends without close_notify is a failed transfer.
    (aio_server.root / "cut.bin").write_bytes(os.urandom(2 * MIB))
    aio_server.server.truncate_downloads_after = 256 * 1024
    try:
        with ftps.Client("127.0.0.1", aio_server.port, aio_server.user, aio_server.password,
                         trust=aio_server.ca_pem, server_name="localhost", timeout=30) as c:
            with pytest.raises(ftps.TransferError):
                c.read_bytes("cut.bin")
            aio_server.server.truncate_downloads_after = None
            # The session goes on after the failed transfer.
            assert c.size("cut.bin") == 2 * MIB
    finally:
        aio_server.server.truncate_downloads_after = None
