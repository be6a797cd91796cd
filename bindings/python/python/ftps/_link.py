"""The socket side shared by the blocking and the asyncio drivers.

A :class:`Link` owns the non-blocking sockets of one session and carries out its outputs
(``Transmit``, ``Connect``, ``Listen``, ``RefuseAccepted``, ``ShutdownWrite``, ``Close``); it
feeds the session what the sockets report, with the bookkeeping the core asks of every driver
(crates/ftps-proto/docs/run_loop.md): input the session did not take is kept and that socket
is not read until it is taken; end of stream is reported only after every byte before it;
bytes that do not fit a socket are held, with ``transmit_blocked``/``transmit_ready``.
Events go to a callback. How to wait for readiness (``selectors`` or the asyncio loop) is the
driver's; :meth:`Link.interests` says what to wait for.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Callable, Optional, Union

from ._ftps import (
    ClientSession,
    Close,
    Connect,
    Listen,
    RefuseAccepted,
    ServerSession,
    ShutdownWrite,
    Transmit,
    Wait,
)

Session = Union[ClientSession, ServerSession]

#: Bytes asked of a socket per read: a few TLS records, and no more than the session takes at
#: once (its incoming TLS buffer is 96 KiB), so the rest kept for later is rare and small.
RECV_SIZE = 64 * 1024

_IO_KINDS = {
    errno.ECONNREFUSED: "connection_refused",
    errno.ECONNRESET: "connection_reset",
    errno.EPIPE: "connection_reset",
    errno.ECONNABORTED: "connection_aborted",
    errno.ENETUNREACH: "unreachable",
    errno.EHOSTUNREACH: "unreachable",
    errno.ETIMEDOUT: "timed_out",
    errno.EADDRNOTAVAIL: "addr_not_available",
}


def now() -> int:
    """The session's clock: ``time.monotonic_ns()``."""
    return time.monotonic_ns()


def io_kind(error: OSError) -> str:
    """The session's name for a socket error."""
    return _IO_KINDS.get(error.errno or 0, "other")


class _Channel:
    """One connected (or connecting) socket of the session."""

    __slots__ = ("sock", "out", "blocked", "backlog", "eof_seen", "eof_fed", "shutdown",
                 "connecting", "dead", "send_dead")

    def __init__(self, sock: socket.socket, connecting: bool) -> None:
        self.sock = sock
        self.out = bytearray()
        self.blocked = False
        self.backlog = b""
        self.eof_seen = False
        self.eof_fed = False
        self.shutdown = False
        self.connecting = connecting
        self.dead = False
        # Sending failed (the peer reset the connection); reading goes on.
        self.send_dead = False


class Link:
    """The sockets of one session (see the module docs)."""

    def __init__(self, session: Session, on_event: Callable[[object], None]) -> None:
        self.session = session
        self.on_event = on_event
        self.channels: dict[int, _Channel] = {}
        self.listeners: dict[int, socket.socket] = {}
        self.just_accepted: dict[int, socket.socket] = {}
        self.deadline: Optional[int] = None
        #: Called with each socket just before the link closes it, so the driver can stop
        #: waiting on it first (its descriptor may be reused at once).
        self.before_close: Optional[Callable[[socket.socket], None]] = None

    # ---- the drain ---------------------------------------------------------------------

    def drain(self) -> None:
        """Carries out the session's outputs until it waits; sets :attr:`deadline`."""
        session = self.session
        while True:
            out = session.poll_output(now())
            kind = type(out)
            if kind is Transmit:
                assert isinstance(out, Transmit)
                self._transmit(out.channel, out.data)
            elif kind is Wait:
                assert isinstance(out, Wait)
                # Reading events may have made room for input held back: feed it, and drain
                # again if the session took anything.
                if self._feed_all():
                    continue
                self.deadline = out.deadline
                return
            elif kind is Connect:
                assert isinstance(out, Connect)
                self._connect(out.channel, out.addr)
            elif kind is Listen:
                assert isinstance(out, Listen)
                self._listen(out.data, out.ip)
            elif kind is RefuseAccepted:
                assert isinstance(out, RefuseAccepted)
                self._refuse(out.data)
            elif kind is ShutdownWrite:
                assert isinstance(out, ShutdownWrite)
                self._shutdown(out.channel)
            elif kind is Close:
                assert isinstance(out, Close)
                self.close_channel(out.channel)
            else:
                self.on_event(out)

    def adopt(self, channel: int, sock: socket.socket) -> None:
        """Takes a connected socket the driver made itself: a server's accepted control
        connection (report it to the session by creating the session with its addresses)."""
        sock.setblocking(False)
        self.channels[channel] = _Channel(sock, connecting=False)

    def timed_out(self) -> bool:
        """Reports the deadline to the session if it passed; True if it did."""
        if self.deadline is not None and now() >= self.deadline:
            self.deadline = None
            self.session.timeout(now())
            return True
        return False

    # ---- readiness -----------------------------------------------------------------------

    def interests(self) -> list[tuple[socket.socket, int, bool, bool]]:
        """``(socket, key, read, write)`` for every socket to wait on; ``key`` is the channel,
        or ``-data`` for a listener."""
        result = []
        for channel, chan in self.channels.items():
            if chan.dead:
                continue
            read = not chan.connecting and not chan.backlog and not chan.eof_seen
            write = chan.connecting or bool(chan.out)
            if read or write:
                result.append((chan.sock, channel, read, write))
        for data, listener in self.listeners.items():
            result.append((listener, -data, True, False))
        return result

    def readable(self, key: int) -> bool:
        """The socket for ``key`` (from :meth:`interests`) can be read. True if it gave bytes
        and the session took them all (the socket may have more)."""
        if key < 0:
            self._accept(-key)
            return False
        chan = self.channels.get(key)
        if chan is None or chan.dead or chan.backlog or chan.eof_seen:
            return False
        try:
            data = chan.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as error:
            self._failed(key, chan, error)
            return False
        if data:
            chan.backlog = data
        else:
            chan.eof_seen = True
        self._feed(key, chan)
        return bool(data) and not chan.backlog

    def writable(self, key: int) -> None:
        """The socket for ``key`` can be written."""
        chan = self.channels.get(key)
        if chan is None or chan.dead:
            return
        if chan.connecting:
            code = chan.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._failed(key, chan, OSError(code, "connect failed"))
                return
            chan.connecting = False
            self.session.connected(key, _addr(chan.sock.getsockname()), now())
            # Bytes queued while connecting go now.
        self._flush(key, chan)

    # ---- carrying out outputs -------------------------------------------------------------

    def _transmit(self, channel: int, data: bytes) -> None:
        chan = self.channels.get(channel)
        if chan is None or chan.dead or chan.send_dead:
            return  # the channel failed: the session learnt it through io_error
        if not chan.out and not chan.connecting:
            try:
                sent = chan.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:
                self._send_failed(channel, chan, error)
                return
            if sent == len(data):
                return
            data = data[sent:]
        chan.out += data
        if not chan.blocked:
            chan.blocked = True
            self.session.transmit_blocked(channel, now())

    def _flush(self, channel: int, chan: _Channel) -> None:
        while chan.out:
            try:
                sent = chan.sock.send(chan.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._send_failed(channel, chan, error)
                return
            del chan.out[:sent]
        if chan.blocked:
            chan.blocked = False
            self.session.transmit_ready(channel, now())
        if chan.shutdown:
            chan.shutdown = False
            try:
                chan.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # already gone: its end is reported by the read side

    def _connect(self, channel: int, addr: tuple[str, int]) -> None:
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if channel == 0:
            # Commands are small and waited for: no Nagle delay on the control connection.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chan = _Channel(sock, connecting=True)
        self.channels[channel] = chan
        code = sock.connect_ex(addr)
        if code == 0:
            chan.connecting = False
            self.session.connected(channel, _addr(sock.getsockname()), now())
        elif code not in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            self._failed(channel, chan, OSError(code, "connect failed"))

    def _listen(self, data: int, ip: str) -> None:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.bind((ip, 0))
            listener.listen(4)
        except OSError as error:
            listener.close()
            self.session.io_error(data, io_kind(error), now())
            return
        listener.setblocking(False)
        self.listeners[data] = listener
        self.session.listening(data, _addr(listener.getsockname()), now())

    def _accept(self, data: int) -> None:
        listener = self.listeners.get(data)
        if listener is None:
            return
        try:
            conn, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.session.io_error(data, io_kind(error), now())
            return
        conn.setblocking(False)
        if data not in self.channels:
            self.channels[data] = _Channel(conn, connecting=False)
        self.just_accepted[data] = conn
        self.session.accepted(data, _addr(peer), now())

    def _refuse(self, data: int) -> None:
        conn = self.just_accepted.pop(data, None)
        if conn is None:
            return
        chan = self.channels.get(data)
        if chan is not None and chan.sock is conn:
            del self.channels[data]
        self._close(conn)

    def _shutdown(self, channel: int) -> None:
        chan = self.channels.get(channel)
        if chan is None or chan.dead:
            return
        chan.shutdown = True
        if not chan.out:
            self._flush(channel, chan)

    def close_channel(self, channel: int) -> None:
        """Closes a channel's socket and listener (``Close``), after a last short attempt to
        write what is held for it."""
        chan = self.channels.pop(channel, None)
        if chan is not None:
            if chan.out and not chan.dead and not chan.connecting:
                try:
                    chan.sock.settimeout(1.0)
                    chan.sock.sendall(chan.out)
                except OSError:
                    pass
            self._close(chan.sock)
        listener = self.listeners.pop(channel, None)
        if listener is not None:
            self._close(listener)
        self.just_accepted.pop(channel, None)

    def close_all(self) -> None:
        """Closes every socket (the session is over or abandoned)."""
        for channel in list(self.channels):
            chan = self.channels.pop(channel)
            self._close(chan.sock)
        for listener in self.listeners.values():
            self._close(listener)
        self.listeners.clear()
        self.just_accepted.clear()

    def _close(self, sock: socket.socket) -> None:
        if self.before_close is not None and sock.fileno() >= 0:
            self.before_close(sock)
        sock.close()

    # ---- input ---------------------------------------------------------------------------

    def _feed(self, channel: int, chan: _Channel) -> bool:
        progressed = False
        if chan.backlog:
            taken = self.session.receive(channel, chan.backlog, now())
            if taken:
                progressed = True
                chan.backlog = b"" if taken >= len(chan.backlog) else chan.backlog[taken:]
        if not chan.backlog and chan.eof_seen and not chan.eof_fed:
            chan.eof_fed = True
            self.session.eof(channel, now())
            progressed = True
        return progressed

    def _feed_all(self) -> bool:
        progressed = False
        for channel, chan in list(self.channels.items()):
            if not chan.dead and (chan.backlog or (chan.eof_seen and not chan.eof_fed)):
                progressed |= self._feed(channel, chan)
        return progressed

    def _failed(self, channel: int, chan: _Channel, error: OSError) -> None:
        chan.dead = True
        chan.out.clear()
        self.session.io_error(channel, io_kind(error), now())

    def _send_failed(self, channel: int, chan: _Channel, error: OSError) -> None:
        # The session decides (an upload's bytes may all have arrived before the peer's
        # reset); the socket keeps being read until its end.
        chan.send_dead = True
        chan.out.clear()
        if chan.blocked:
            chan.blocked = False
        self.session.transmit_failed(channel, io_kind(error), now())


def _addr(addr: tuple[object, ...]) -> tuple[str, int]:
    host, port = addr[0], addr[1]
    assert isinstance(host, str) and isinstance(port, int)
    return (host, port)
