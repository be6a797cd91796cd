"""ftps.Client against vsftpd with data-session reuse required (require_ssl_reuse=YES)."""

from __future__ import annotations

import ftplib
import io
import ssl

import pytest
from conftest import MIB, give, sha256, write_random

import ftps
from peers import Server


def client(server: Server, **kwargs: object) -> ftps.Client:
    return ftps.Client("127.0.0.1", server.port, server.user, server.password,
                       trust=server.ca_pem, server_name="localhost", timeout=30,
                       **kwargs)  # type: ignore[arg-type]


def test_stock_ftplib_fails_where_ftps_client_transfers(vsftpd: Server) -> None:
    # spec: T40 — vsftpd refuses a data connection whose TLS session is not the control's.
    (vsftpd.root / "hello.txt").write_bytes(b"hello from vsftpd\n")
    give(vsftpd, vsftpd.root / "hello.txt")

    context = ssl.create_default_context(cadata=vsftpd.ca_pem.decode())
    stock = ftplib.FTP_TLS(context=context, timeout=30)
    stock.connect("127.0.0.1", vsftpd.port)
    stock.login(vsftpd.user, vsftpd.password)
    stock.prot_p()
    with pytest.raises(ftplib.error_perm) as failure:
        stock.retrbinary("RETR hello.txt", lambda _: None)
    assert str(failure.value).startswith("522")  # "SSL connection failed: session reuse required"
    stock.close()

    with client(vsftpd) as ours:
        assert ours.read_bytes("hello.txt") == b"hello from vsftpd\n"


def test_explicit_passive_64_mib_up_and_down(vsftpd: Server) -> None:
    source = vsftpd.root.parent / "up-source.bin"
    digest = write_random(source, 64 * MIB)
    seen: list[int] = []
    with client(vsftpd, progress=seen.append) as c:
        with source.open("rb") as f:
            sent = c.store("up.bin", f)
        assert sent.bytes == 64 * MIB and sent.resumed is True  # spec: T40
        assert seen and seen[-1] == 64 * MIB
        assert c.size("up.bin") == 64 * MIB
        sink = io.BytesIO()
        got = c.retrieve("up.bin", sink)
        assert got.bytes == 64 * MIB and got.resumed is True
        assert sha256(sink.getvalue()) == digest
    assert sha256((vsftpd.root / "up.bin").read_bytes()) == digest


def test_active_mode_transfers(vsftpd: Server) -> None:
    data = bytes(range(256)) * 4096
    with client(vsftpd, passive=False) as c:
        assert c.store("active.bin", data).bytes == len(data)
        assert c.read_bytes("active.bin") == data
        names = {e.name for e in c.list()}
        assert b"active.bin" in names


def test_twenty_transfers_in_one_session_all_resumed(vsftpd: Server) -> None:
    # spec: T40 — every data connection resumes the control connection's TLS session.
    with client(vsftpd) as c:
        for i in range(20):
            payload = f"transfer {i}\n".encode() * (i + 1)
            up = c.store(f"t{i}.txt", payload)
            assert up.resumed is True
            down = io.BytesIO()
            result = c.retrieve(f"t{i}.txt", down)
            assert result.resumed is True and down.getvalue() == payload


def test_listing_with_spaces_and_non_utf8_names(vsftpd: Server) -> None:
    odd = b"caf\xe9 latin-1.txt"  # not UTF-8
    (vsftpd.root / "with space.txt").write_bytes(b"spaced")
    with open(bytes(vsftpd.root) + b"/" + odd, "wb") as f:
        f.write(b"latin")
    with client(vsftpd) as c:
        entries = {e.name: e for e in c.list()}
        assert entries[b"with space.txt"].size == 6
        assert entries[odd].kind == "file"
        # The str form round-trips to the same bytes.
        name = entries[odd].filename
        assert name is not None and c.read_bytes(name) == b"latin"
        assert c.read_bytes("with space.txt") == b"spaced"


def test_implicit_tls(vsftpd_implicit: Server) -> None:
    (vsftpd_implicit.root / "implicit.txt").write_bytes(b"implicit")
    with client(vsftpd_implicit, tls="implicit") as c:
        assert c.tls_info is not None
        assert c.read_bytes("implicit.txt") == b"implicit"


def test_certificate_for_another_name_is_refused(vsftpd: Server) -> None:
    # spec: T43 — the certificate must name the server we asked for.
    with pytest.raises(ftps.CertificateError):
        ftps.Client("127.0.0.1", vsftpd.port, vsftpd.user, vsftpd.password,
                    trust=vsftpd.ca_pem, server_name="not-this-host.example", timeout=10)


def test_wrong_password_is_a_reply_error(vsftpd: Server) -> None:
    with pytest.raises(ftps.ReplyError) as failure:
        ftps.Client("127.0.0.1", vsftpd.port, vsftpd.user, "wrong", trust=vsftpd.ca_pem,
                    server_name="localhost", timeout=30)
    assert failure.value.code == 530
