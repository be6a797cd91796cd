"""ftps.aio.Client against vsftpd (data-session reuse required), `ftps serve` and the
asyncio example server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from conftest import MIB, ThreadedAioServer, give, sha256, write_random

import ftps
import ftps.aio
from peers import Server


async def connect(server: Server, **kwargs: object) -> ftps.aio.Client:
    return await ftps.aio.Client.connect(
        "127.0.0.1", server.port, server.user, server.password, trust=server.ca_pem,
        server_name="localhost", timeout=30, **kwargs)  # type: ignore[arg-type]


def run(coroutine: "asyncio.Future[None] | object") -> None:
    asyncio.run(asyncio.wait_for(coroutine, 120))  # type: ignore[arg-type]


def test_aio_vsftpd_verbs_and_transfers(vsftpd: Server) -> None:
    data = os.urandom(16 * MIB + 3)

    async def main() -> None:
        async with await connect(vsftpd) as c:
            up = await c.store("aio.bin", data)
            assert up.bytes == len(data) and up.resumed is True  # spec: T40
            assert await c.size("aio.bin") == len(data)
            assert sha256(await c.read_bytes("aio.bin")) == sha256(data)
            await c.mkdir("aio dir")
            await c.cwd("aio dir")
            assert (await c.pwd()).endswith("/aio dir")
            await c.cwd("..")
            entries = {e.name: e for e in await c.list()}
            assert entries[b"aio.bin"].size == len(data)
            assert b"aio.bin" in await c.nlst()
            await c.rename("aio.bin", "aio2.bin")
            await c.delete("aio2.bin")
            await c.rmdir("aio dir")
            with pytest.raises(ftps.ReplyError) as refused:
                await c.size("aio2.bin")
            assert refused.value.code == 550

    run(main())


def test_aio_download_as_async_iterator_active_mode(vsftpd: Server) -> None:
    path = vsftpd.root / "iter.bin"
    digest = write_random(path, 8 * MIB)
    give(vsftpd, path)

    async def main() -> None:
        async with await connect(vsftpd, passive=False) as c:
            parts = []
            async for chunk in c.iter_retrieve("iter.bin"):
                parts.append(chunk)
                await asyncio.sleep(0)  # a consumer slower than the network
            assert sha256(b"".join(parts)) == digest

    run(main())


def test_aio_cancellation_aborts_and_session_stays_usable(vsftpd: Server) -> None:
    # spec: T55 — ABOR goes inside TLS on the control connection.
    path = vsftpd.root / "huge.bin"
    write_random(path, 96 * MIB)
    give(vsftpd, path)
    (vsftpd.root / "after.txt").write_bytes(b"still works")
    give(vsftpd, vsftpd.root / "after.txt")

    async def main() -> None:
        async with await connect(vsftpd) as c:
            started = asyncio.Event()
            received = []

            def sink(chunk: bytes) -> None:
                received.append(len(chunk))
                started.set()

            task = asyncio.create_task(c.retrieve("huge.bin", sink))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert 0 < sum(received) < 96 * MIB
            # The session continues: ABOR was answered, the next commands run.
            assert await c.read_bytes("after.txt") == b"still works"
            assert await c.size("huge.bin") == 96 * MIB

            # Leaving an iterator early aborts the same way.
            async for _ in c.iter_retrieve("huge.bin"):
                break
            assert await c.read_bytes("after.txt") == b"still works"

    run(main())


def test_aio_implicit_and_truncation(ftps_serve_implicit: Server,
                                     aio_server: ThreadedAioServer) -> None:
    (ftps_serve_implicit.root / "x.txt").write_bytes(b"x" * 1000)
    (aio_server.root / "cut2.bin").write_bytes(os.urandom(MIB))

    async def main() -> None:
        async with await connect(ftps_serve_implicit, tls="implicit") as c:
            assert await c.read_bytes("x.txt") == b"x" * 1000
        aio_server.server.truncate_downloads_after = 64 * 1024
        try:
            c = await ftps.aio.Client.connect(
                "127.0.0.1", aio_server.port, aio_server.user, aio_server.password,
                trust=aio_server.ca_pem, server_name="localhost", timeout=30)
            async with c:
                # spec: T29 — no close_notify: the download fails.
                with pytest.raises(ftps.TransferError):
                    async for _ in c.iter_retrieve("cut2.bin"):
                        pass
        finally:
            aio_server.server.truncate_downloads_after = None

    run(main())


def test_aio_certificate_mismatch(ftps_serve: Server) -> None:
    async def main() -> None:
        with pytest.raises(ftps.CertificateError):
            await ftps.aio.Client.connect("127.0.0.1", ftps_serve.port, trust=ftps_serve.ca_pem,
                                          server_name="wrong.example", timeout=10)

    run(main())


def test_aio_missing_directory_is_not_a_hang(tmp_path: Path, ftps_serve: Server) -> None:
    async def main() -> None:
        async with await connect(ftps_serve) as c:
            with pytest.raises(ftps.ReplyError):
                await c.cwd("does-not-exist")
            assert await c.pwd() == "/"

    run(main())
