"""Explicit-FTPS test server on pyftpdlib, started by tests/src/peers/pyftpdlib.rs.

Binds 127.0.0.1 on --port (0 = the kernel picks), then prints one line
`READY port=<port>` on stdout; everything else goes to stderr. The password comes from the
FTPS_TEST_PASSWORD environment variable so that it does not show in the process list.

TLS is required on the control connection before USER/PASS and on every data connection.
pyftpdlib has no implicit-TLS mode and no CCC command.
"""

import argparse
import logging
import os
import sys

from OpenSSL import SSL
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer

MAX_TLS_VERSION = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}


def tls_context(cert, key, max_version):
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_max_proto_version(MAX_TLS_VERSION[max_version])
    context.set_options(SSL.OP_NO_COMPRESSION)
    context.use_certificate_chain_file(cert)
    context.use_privatekey_file(key)
    context.check_privatekey()
    return context


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--passive-ports", required=True, help="FIRST-LAST")
    parser.add_argument("--tls-max", choices=sorted(MAX_TLS_VERSION), default="1.3")
    args = parser.parse_args()

    password = os.environ["FTPS_TEST_PASSWORD"]
    first, last = (int(p) for p in args.passive_ports.split("-"))

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, password, args.root, perm="elradfmwMT")

    handler = TLS_FTPHandler
    handler.authorizer = authorizer
    handler.ssl_context = tls_context(args.cert, args.key, args.tls_max)
    handler.tls_control_required = True
    handler.tls_data_required = True
    handler.passive_ports = list(range(first, last + 1))
    handler.permit_foreign_addresses = False

    logging.basicConfig(
        stream=sys.stderr, level=logging.DEBUG, format="%(asctime)s %(levelname)s %(message)s"
    )
    server = FTPServer(("127.0.0.1", args.port), handler)
    port = server.socket.getsockname()[1]
    print(f"READY port={port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
