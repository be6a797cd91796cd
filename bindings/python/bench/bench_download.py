"""Download throughput from vsftpd (require_ssl_reuse=YES, TLS 1.3, 127.0.0.1): ftps.Client,
ftps.aio.Client, ftplib.FTP_TLS (with the session-reuse workaround, without which it cannot
transfer at all) and the `ftps get` CLI (release build). Medians of N runs per client, the
clients interleaved so load changes hit them alike. Not a test: run it by hand (as root, for
vsftpd's test user), after `pip install ./bindings/python` and `cargo build --release -p
ftps-cli`:

    python bindings/python/bench/bench_download.py [--mib 512] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import ftplib
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import peers  # noqa: E402

import ftps  # noqa: E402
import ftps.aio  # noqa: E402

CHUNK = 256 * 1024


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """The well-known workaround: wrap each data socket with the control connection's TLS
    session, so servers that require session reuse accept it."""

    def ntransfercmd(self, cmd: str,
                     rest: Union[int, str, None] = None) -> tuple[socket.socket, Any]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)  # type: ignore[union-attr]
        return conn, size


def with_ftps_client(server: peers.Server, name: str) -> int:
    moved = 0

    def count(chunk: bytes) -> None:
        nonlocal moved
        moved += len(chunk)

    with ftps.Client("127.0.0.1", server.port, server.user, server.password,
                     trust=server.ca_pem, server_name="localhost") as client:
        client.retrieve(name, count)
    return moved


def with_aio_client(server: peers.Server, name: str) -> int:
    async def main() -> int:
        moved = 0
        client = await ftps.aio.Client.connect(
            "127.0.0.1", server.port, server.user, server.password, trust=server.ca_pem,
            server_name="localhost")
        async with client:
            async for chunk in client.iter_retrieve(name):
                moved += len(chunk)
        return moved

    return asyncio.run(main())


def with_ftplib(server: peers.Server, name: str) -> int:
    context = ssl.create_default_context(cadata=server.ca_pem.decode())
    moved = 0

    def count(chunk: bytes) -> None:
        nonlocal moved
        moved += len(chunk)

    ftp = ReusingFTP_TLS(context=context, timeout=60)
    ftp.connect("localhost", server.port)
    ftp.login(server.user, server.password)
    ftp.prot_p()
    ftp.retrbinary(f"RETR {name}", count, blocksize=CHUNK)
    ftp.quit()
    return moved


def with_cli(server: peers.Server, name: str, cli: Path, ca: Path) -> int:
    subprocess.run([str(cli), "get", "--cacert", str(ca), "--user",
                    f"{server.user}:{server.password}",
                    f"ftp://localhost:{server.port}/{name}", "/dev/null"],
                   check=True, stdout=subprocess.DEVNULL)
    return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli", type=Path, default=peers.REPO / "target" / "release" / "ftps")
    args = parser.parse_args()
    size = args.mib * 1024 * 1024

    server = peers.start_vsftpd(require_ssl_reuse=True)
    try:
        with (server.root / "bench.bin").open("wb") as f:
            block = os.urandom(4 * 1024 * 1024)
            for _ in range(size // len(block)):
                f.write(block)
        ca = Path(tempfile.mkdtemp()) / "ca.pem"
        ca.write_bytes(server.ca_pem)
        clients: dict[str, Callable[[], int]] = {
            "ftps.Client": lambda: with_ftps_client(server, "bench.bin"),
            "ftps.aio.Client": lambda: with_aio_client(server, "bench.bin"),
            "ftplib.FTP_TLS (reuse workaround)": lambda: with_ftplib(server, "bench.bin"),
            "ftps get (CLI, release)": lambda: with_cli(server, "bench.bin", args.cli, ca),
        }
        times: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(args.runs):
            for name, run in clients.items():
                started = time.perf_counter()
                moved = run()
                times[name].append(time.perf_counter() - started)
                assert moved in (size, -1), f"{name} moved {moved} of {size} bytes"
        load = os.getloadavg()
    finally:
        server.stop()

    medians = {name: statistics.median(values) for name, values in times.items()}
    ftplib_median = medians["ftplib.FTP_TLS (reuse workaround)"]
    cli_median = medians["ftps get (CLI, release)"]
    print(f"{args.mib} MiB from vsftpd on 127.0.0.1, median of {args.runs}; "
          f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| client | median s | MiB/s | × ftplib | × CLI |")
    print("|---|---:|---:|---:|---:|")
    for name, median in medians.items():
        print(f"| {name} | {median:.2f} | {args.mib / median:.0f} | "
              f"{ftplib_median / median:.2f} | {cli_median / median:.2f} |")


if __name__ == "__main__":
    main()
