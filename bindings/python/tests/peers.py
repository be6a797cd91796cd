"""Real FTPS peers on 127.0.0.1 for the tests: vsftpd, pyftpdlib, the `ftps serve` CLI and the
asyncio example server. Each is started with its own config in a temp dir, waited for with a
bound, and stopped by the fixture that started it. vsftpd is set up as the Rust harness does
(tests/src/peers/vsftpd.rs): the same system user, password file and PAM service, so both
suites can run on one machine.
"""

from __future__ import annotations

import datetime
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 20.0
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Pki:
    """A test CA and a server certificate for localhost / 127.0.0.1 signed by it."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_pki(names: tuple[str, ...] = ("localhost",)) -> Pki:
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ftps python test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans.append(x509.IPAddress(ipaddress.ip_address(LOOPBACK)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Pki(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path,
                  greeting: bool) -> None:
    """Waits (bounded) until the server accepts, and greets when ``greeting``."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
                if not greeting:
                    return
                sock.settimeout(3)
                if sock.recv(100).startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not ready after {START_TIMEOUT}s: {log.read_text(errors='replace')}")


@dataclass
class Server:
    """A running server: where it is, whom to log in as, what to trust, where its files are."""

    port: int
    user: str
    password: str
    ca_pem: bytes
    root: Path
    process: Optional[subprocess.Popen[bytes]] = None
    tmp: Optional[tempfile.TemporaryDirectory[str]] = None
    log: Optional[Path] = None
    extra: dict[str, object] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.tmp is not None:
            self.tmp.cleanup()


# ---- vsftpd ---------------------------------------------------------------------------------

TEST_USER = "ftpstest"
PAM_SERVICE = "ftps-test"
PASSWORD_FILE = Path("/var/lib/ftps-tests/ftpstest.password")
PAM_CONTENTS = """\
# Written by the ftps test harness (tests/src/peers/vsftpd.rs) for its local-only vsftpd
# instances, which also restrict logins to the test user (userlist_deny=NO).
auth     required pam_unix.so
account  required pam_unix.so
session  required pam_permit.so
"""


def _test_user() -> tuple[str, int, int]:
    pam = Path("/etc/pam.d") / PAM_SERVICE
    if not pam.exists() or pam.read_text() != PAM_CONTENTS:
        staging = pam.with_suffix(f".tmp{os.getpid()}")
        staging.write_text(PAM_CONTENTS)
        staging.rename(pam)
    PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(PASSWORD_FILE.parent, 0o700)
    if not PASSWORD_FILE.exists():
        candidate = PASSWORD_FILE.parent / f".password.{os.getpid()}"
        candidate.write_text(secrets.token_hex(12))
        os.chmod(candidate, 0o600)
        try:
            os.link(candidate, PASSWORD_FILE)
        except FileExistsError:
            pass
        candidate.unlink()
    password = PASSWORD_FILE.read_text().strip()
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/",
                        "--shell", "/usr/sbin/nologin", "--comment", "ftps interop tests",
                        TEST_USER], capture_output=True)
    subprocess.run(["chpasswd"], input=f"{TEST_USER}:{password}\n".encode(), check=True,
                   capture_output=True)
    uid = int(subprocess.run(["id", "-u", TEST_USER], capture_output=True, check=True).stdout)
    gid = int(subprocess.run(["id", "-g", TEST_USER], capture_output=True, check=True).stdout)
    return password, uid, gid


def start_vsftpd(*, implicit: bool = False, require_ssl_reuse: bool = True) -> Server:
    program = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    password, uid, gid = _test_user()
    pki = make_pki()
    tmp = tempfile.TemporaryDirectory(prefix="ftps-py-vsftpd-")
    base = Path(tmp.name)
    os.chmod(base, 0o711)
    (base / "cert.pem").write_bytes(pki.cert_pem)
    (base / "key.pem").write_bytes(pki.key_pem)
    os.chmod(base / "key.pem", 0o600)
    (base / "userlist").write_text(f"{TEST_USER}\n")
    (base / "empty").mkdir(mode=0o755)
    root = base / "root"
    root.mkdir(mode=0o755)
    os.chown(root, uid, gid)
    port = free_port()
    pasv = free_port()

    def yes(flag: bool) -> str:
        return "YES" if flag else "NO"

    (base / "vsftpd.conf").write_text(f"""\
listen=YES
listen_ipv6=NO
listen_address={LOOPBACK}
listen_port={port}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
local_root={root}
userlist_enable=YES
userlist_deny=NO
userlist_file={base / 'userlist'}
pam_service_name={PAM_SERVICE}
secure_chroot_dir={base / 'empty'}
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
pasv_enable=YES
pasv_min_port={pasv}
pasv_max_port={pasv + 40 if pasv + 40 < 65535 else pasv}
port_enable=YES
connect_from_port_20=NO
vsftpd_log_file={base / 'vsftpd.log'}
ssl_enable=YES
implicit_ssl={yes(implicit)}
rsa_cert_file={base / 'cert.pem'}
rsa_private_key_file={base / 'key.pem'}
ssl_ciphers=ECDHE+AESGCM:ECDHE+CHACHA20
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=NO
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse={yes(require_ssl_reuse)}
strict_ssl_read_eof=NO
strict_ssl_write_shutdown=NO
""")
    log = base / "output.log"
    process = subprocess.Popen([program, str(base / "vsftpd.conf")],
                               stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    server = Server(port, TEST_USER, password, pki.ca_pem, root, process, tmp, log,
                    {"uid": uid, "gid": gid})
    try:
        wait_for_port(port, process, log, greeting=not implicit)
    except BaseException:
        server.stop()
        raise
    return server


# ---- pyftpdlib --------------------------------------------------------------------------------

PYFTPDLIB_SCRIPT = """
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
port, root, cert, key, user, password = sys.argv[1:7]
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, root, perm="elradfmwMT")
class Handler(TLS_FTPHandler):
    pass
Handler.certfile = cert
Handler.keyfile = key
Handler.authorizer = authorizer
Handler.tls_control_required = True
Handler.tls_data_required = True
Handler.permit_foreign_addresses = False
server = FTPServer(("127.0.0.1", int(port)), Handler)
server.serve_forever()
"""


def start_pyftpdlib() -> Server:
    pki = make_pki()
    tmp = tempfile.TemporaryDirectory(prefix="ftps-py-pyftpdlib-")
    base = Path(tmp.name)
    (base / "cert.pem").write_bytes(pki.cert_pem)
    (base / "key.pem").write_bytes(pki.key_pem)
    root = base / "root"
    root.mkdir()
    port = free_port()
    password = secrets.token_hex(8)
    log = base / "output.log"
    process = subprocess.Popen(
        [sys.executable, "-c", PYFTPDLIB_SCRIPT, str(port), str(root), str(base / "cert.pem"),
         str(base / "key.pem"), "user", password],
        stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    server = Server(port, "user", password, pki.ca_pem, root, process, tmp, log)
    try:
        wait_for_port(port, process, log, greeting=True)
    except BaseException:
        server.stop()
        raise
    return server


# ---- ftps serve (this project's server, the CLI binary) ------------------------------------------

def ftps_binary() -> Path:
    """The CLI built by the test command (FTPS_BIN), or the workspace's debug build."""
    configured = os.environ.get("FTPS_BIN")
    if configured:
        return Path(configured)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "ftps"


def start_ftps_serve(*, implicit: bool = False, write: bool = True) -> Server:
    pki = make_pki()
    tmp = tempfile.TemporaryDirectory(prefix="ftps-py-serve-")
    base = Path(tmp.name)
    (base / "cert.pem").write_bytes(pki.cert_pem)
    (base / "key.pem").write_bytes(pki.key_pem)
    root = base / "root"
    root.mkdir()
    port = free_port()
    password = secrets.token_hex(8)
    log = base / "output.log"
    listen = ["--implicit-listen" if implicit else "--listen", f"{LOOPBACK}:{port}"]
    args = [str(ftps_binary()), "serve", *listen, "--user", f"user:{password}",
            "--cert", str(base / "cert.pem"), "--key", str(base / "key.pem"), str(root)]
    if write:
        args.append("--write")
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    server = Server(port, "user", password, pki.ca_pem, root, process, tmp, log)
    try:
        wait_for_port(port, process, log, greeting=not implicit)
    except BaseException:
        server.stop()
        raise
    return server
