"""A minimal read-only FTPS server on asyncio and ``ftps.ServerSession``: it serves one
directory to one user. Every FTP decision (commands, replies, TLS, data-connection policy,
listing formats) is the session's; this file answers its requests from the file system and
moves bytes.

    python examples/aio_server.py DIR --cert cert.pem --key key.pem --user NAME:PASSWORD

``Server.truncate_downloads_after`` is a fault injection for the tests: the data connection of
a download is cut (TCP close, no TLS close_notify) after that many bytes were sent.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import socket
import stat
from pathlib import Path
from typing import IO, Optional

import ftps
from ftps._link import Link, now
from ftps.aio import LinkDriver

CHUNK = 256 * 1024


class Connection:
    """One client's control connection, its session and its open file."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        peer = sock.getpeername()[:2]
        local = sock.getsockname()[:2]
        self.session = ftps.ServerSession(server.config, peer, local, now())
        self.link = Link(self.session, self.on_event)
        self.link.adopt(ftps.CONTROL, sock)
        self.driver = LinkDriver(self.link, self.after_drain, self.failed)
        self.file: Optional[IO[bytes]] = None
        self.pending = b""
        self.sent = 0
        self.closed = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        self.driver.pump()

    def after_drain(self) -> None:
        if self.session.is_closed and not self.link.channels and not self.closed.done():
            self.closed.set_result(None)

    def failed(self, error: BaseException) -> None:
        if not self.closed.done():
            self.closed.set_exception(error)

    # ---- the session's requests -------------------------------------------------------------

    def resolve(self, path: Optional[bytes]) -> Optional[Path]:
        """The local path for a session path, or None when it leaves the served root."""
        parts: list[str] = []
        for part in (path or b"/").decode("utf-8", "surrogateescape").split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        local = self.server.root.joinpath(*parts)
        return local

    def on_event(self, event: object) -> None:
        session = self.session
        if isinstance(event, ftps.Request):
            self.request(event)
        elif isinstance(event, ftps.Writable):
            self.write(event.id)
        elif isinstance(event, ftps.SendFinished):
            self.close_file()
        elif isinstance(event, ftps.UploadFinished):
            pass  # read-only: uploads are refused before they start
        elif isinstance(event, ftps.Readable):
            session.read_data(event.id)

    def request(self, request: ftps.Request) -> None:
        session = self.session
        rid = request.id
        if request.kind == "login":
            granted = (request.user == self.server.user.encode()
                       and request.password == self.server.password.encode())
            session.answer_login(rid, granted)
            return
        local = self.resolve(request.path)
        try:
            info = local.stat() if local is not None else None
        except OSError:
            info = None
        if info is None or local is None:
            session.refuse(rid, "not_found")
            return
        kind = request.kind
        is_dir = stat.S_ISDIR(info.st_mode)
        if kind == "cwd":
            session.answer(rid) if is_dir else session.refuse(rid, "wrong_kind")
        elif kind == "size":
            session.answer(rid, info.st_size) if not is_dir else session.refuse(rid, "wrong_kind")
        elif kind == "mdtm":
            session.answer(rid, modified(info))
        elif kind == "mlst":
            session.answer(rid, entry(os.fsencode(local.name) or b"/", info))
        elif kind == "list":
            session.answer(rid)
            self.listing = iter(sorted(local.iterdir()) if is_dir else [local])
            self.listing_pending: Optional[ftps.DirEntry] = None
        elif kind == "retrieve":
            if is_dir:
                session.refuse(rid, "wrong_kind")
                return
            self.file = local.open("rb")
            self.file.seek(request.offset or 0)
            self.pending = b""
            self.sent = 0
            self.listing_pending = None
            self.listing = None  # type: ignore[assignment]
            session.answer(rid)
        else:
            session.refuse(rid, "permission_denied")  # a read-only server

    def write(self, rid: int) -> None:
        """Hands the session the next bytes of the download, or the next listing entries."""
        session = self.session
        if self.file is None:
            listing = getattr(self, "listing", None)
            if listing is None:
                return
            while True:
                item = self.listing_pending
                if item is None:
                    path = next(listing, None)
                    if path is None:
                        self.listing = None  # type: ignore[assignment]
                        session.finish_data(rid)
                        return
                    try:
                        item = entry(os.fsencode(path.name), path.lstat())
                    except OSError:
                        continue
                if not session.write_entry(rid, item):
                    self.listing_pending = item
                    return
                self.listing_pending = None
        limit = self.server.truncate_downloads_after
        while True:
            if not self.pending:
                self.pending = self.file.read(CHUNK)
                if not self.pending:
                    self.close_file()
                    session.finish_data(rid)
                    return
            if limit is not None and self.sent >= limit:
                self.cut_data_connection()
                return
            taken = session.write_data(rid, self.pending)
            self.sent += taken
            self.pending = self.pending[taken:]
            if self.pending:
                return

    def cut_data_connection(self) -> None:
        """The fault injection: drop the data socket without close_notify."""
        self.close_file()
        for channel in list(self.link.channels):
            if channel != ftps.CONTROL:
                chan = self.link.channels[channel]
                chan.sock.shutdown(socket.SHUT_RDWR)

    def close_file(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def modified(info: os.stat_result) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(info.st_mtime), datetime.timezone.utc)


def entry(name: bytes, info: os.stat_result) -> ftps.DirEntry:
    if stat.S_ISDIR(info.st_mode):
        kind = "dir"
    elif stat.S_ISLNK(info.st_mode):
        kind = "symlink"
    else:
        kind = "file"
    return ftps.DirEntry(name, kind, info.st_size, modified(info),
                         mode=stat.S_IMODE(info.st_mode))


class Server:
    """Listens on ``host:port`` (0: any free port) and serves ``root`` read-only."""

    def __init__(self, root: Path, config: ftps.ServerConfig, user: str, password: str) -> None:
        self.root = root
        self.config = config
        self.user = user
        self.password = password
        self.truncate_downloads_after: Optional[int] = None
        self.connections: set[Connection] = set()
        self.listener: Optional[socket.socket] = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Starts listening; returns the port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(16)
        listener.setblocking(False)
        self.listener = listener
        asyncio.get_running_loop().add_reader(listener.fileno(), self.accept)
        return int(listener.getsockname()[1])

    def accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        connection = Connection(self, sock)
        self.connections.add(connection)
        connection.closed.add_done_callback(lambda _: self.connections.discard(connection))
        connection.start()

    def close(self) -> None:
        if self.listener is not None:
            asyncio.get_running_loop().remove_reader(self.listener.fileno())
            self.listener.close()
            self.listener = None
        for connection in list(self.connections):
            connection.driver.close()
        self.connections.clear()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True, help="NAME:PASSWORD")
    parser.add_argument("--port", type=int, default=2121)
    args = parser.parse_args()
    user, _, password = args.user.partition(":")
    server = Server(args.root, ftps.ServerConfig(Path(args.cert).read_bytes(),
                                                 Path(args.key).read_bytes()), user, password)
    port = await server.start(port=args.port)
    print(f"serving {args.root} read-only on 127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
