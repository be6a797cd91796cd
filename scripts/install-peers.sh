#!/usr/bin/env bash
# Installs the real FTPS peers the interop tests start (tests/src/peers): vsftpd, curl and lftp from
# Debian's packages, pyftpdlib (+ pyOpenSSL for its TLS handler) from PyPI; and what the C
# binding's tests need (bindings/c/tests): a C compiler with the libc headers and the
# sanitizer runtimes (gcc, libc6-dev), make and pkg-config to install and find libftps, and
# valgrind. Idempotent: does nothing when everything is already there. Needs root (apt-get, pip
# into the system Python).
#
# The tests start their own vsftpd on a free high port with a config in a temp dir; the
# package's own daemon (port 21, /etc/vsftpd.conf) must never run, so we keep the package install
# from starting it and stop it if some init system started it anyway.
set -euo pipefail

PYFTPDLIB_VERSION="2.2.0"
PYOPENSSL_VERSION="26.4.0"

# lftp (GnuTLS) is a client only: no daemon comes with it.
apt_packages=(vsftpd curl lftp)
# The C binding's tests: compile C11 programs against an installed libftps (Makefile +
# pkg-config), run them under valgrind and with ASan. gcc only recommends libc6-dev, and the
# install below skips recommendations, so the headers are named.
apt_packages+=(gcc libc6-dev make pkg-config valgrind)
# The Python binding's tests (bindings/python/run-tests.sh) make a venv: Debian's python3 can
# make one with pip only with python3-venv (its ensurepip is split off). The extension is abi3
# and links no libpython, so python3-dev is not needed.
apt_packages+=(python3-venv)
# Shared libraries of ProFTPD (unpacked below, not installed: see there).
apt_packages+=(libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3 libsodium23)
missing=()
for pkg in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  # Without systemd, Debian maintainer scripts start services through invoke-rc.d, which asks
  # /usr/sbin/policy-rc.d first; exit 101 there means "do not start". Put one in place only
  # for this install when the machine has none, and remove it afterwards.
  temporary_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    temporary_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$temporary_policy"
    chmod 755 "$temporary_policy"
    trap 'rm -f "$temporary_policy"' EXIT
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  if [ -n "$temporary_policy" ]; then
    rm -f "$temporary_policy"
    trap - EXIT
  fi
  # With systemd, the package enables and starts vsftpd.service (policy-rc.d may not stop
  # that); elsewhere an init script may have started it. Stop and disable what we installed.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now vsftpd.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/vsftpd ]; then
    /etc/init.d/vsftpd stop >/dev/null 2>&1 || true
  fi
fi

# ProFTPD: Debian's proftpd-core declares `Conflicts: ftp-server`, as vsftpd does, so installing
# it would remove vsftpd. The tests start ProFTPD with a config of their own, so the package
# contents are enough: unpack proftpd-core and proftpd-mod-crypto (mod_tls) into a private
# prefix, without dpkg, maintainer scripts or a daemon (tests/src/peers/proftpd.rs looks there).
PROFTPD_PREFIX=/opt/ftps-peers/proftpd
if [ ! -x "$PROFTPD_PREFIX/usr/sbin/proftpd" ] || [ ! -f "$PROFTPD_PREFIX/usr/lib/proftpd/mod_tls.so" ]; then
  proftpd_debs=$(mktemp -d)
  (cd "$proftpd_debs" && apt-get download proftpd-core proftpd-mod-crypto)
  mkdir -p "$PROFTPD_PREFIX"
  for deb in "$proftpd_debs"/*.deb; do
    dpkg-deb -x "$deb" "$PROFTPD_PREFIX"
  done
  rm -rf "$proftpd_debs"
fi

# pip of the python3 the tests will run (the harness starts `python3` from PATH).
if ! python3 - "$PYFTPDLIB_VERSION" "$PYOPENSSL_VERSION" <<'EOF' 2>/dev/null; then
import sys
from importlib.metadata import version
want_ftpd, want_ssl = sys.argv[1], sys.argv[2]
sys.exit(0 if version("pyftpdlib") == want_ftpd and version("pyOpenSSL") == want_ssl else 1)
EOF
  pip_flags=()
  # A Debian-managed python3 (PEP 668) refuses plain `pip install`; the tests need the module
  # importable by that interpreter, so override for it.
  if python3 -c 'import sys, sysconfig, os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
    pip_flags+=(--break-system-packages)
  fi
  python3 -m pip install --disable-pip-version-check --no-input "${pip_flags[@]}" \
    "pyftpdlib==${PYFTPDLIB_VERSION}" "pyOpenSSL==${PYOPENSSL_VERSION}"
fi

# vsftpd prints its version on file descriptor 0.
vsftpd -v 0>&1 || true
curl --version | head -n 1
"$PROFTPD_PREFIX/usr/sbin/proftpd" --version
# lftp names its TLS library (GnuTLS) on the "Libraries used" line.
lftp --version | grep -E '^LFTP|^Libraries used' || true
python3 -c 'from importlib.metadata import version as v; print("pyftpdlib", v("pyftpdlib"), "pyOpenSSL", v("pyOpenSSL"))'
cc --version | head -n 1
valgrind --version
