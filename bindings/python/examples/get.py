"""Download one file with the blocking client:

    python examples/get.py HOST PORT USER PASSWORD REMOTE LOCAL [--cacert CA.pem]
"""

import argparse

import ftps

parser = argparse.ArgumentParser(description="Download one file over FTPS.")
for name in ("host", "port", "user", "password", "remote", "local"):
    parser.add_argument(name)
parser.add_argument("--cacert", help="PEM file of the CA to trust (default: Mozilla's roots)")
args = parser.parse_args()

with ftps.Client(args.host, int(args.port), args.user, args.password, trust=args.cacert,
                 progress=lambda n: print(f"\r{n} bytes", end="")) as ftp:
    with open(args.local, "wb") as out:
        transfer = ftp.retrieve(args.remote, out)
print(f"\n{transfer.bytes} bytes, data TLS session resumed: {transfer.resumed}")
