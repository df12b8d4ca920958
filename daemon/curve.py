"""ZeroMQ CURVE: encrypted, authenticated streams, and `caed-keys` to make the key pairs.

Key files are ZeroMQ's own certificate format (zmq.auth): NAME.key holds the public key and is
what you copy to the other side; NAME.key_secret holds both and never leaves its machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


class CurveError(ValueError):
    """A key file or folder is missing or not a ZeroMQ certificate."""


def load_secret(path: str) -> tuple[bytes, bytes]:
    """(public, secret) from a NAME.key_secret file."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise CurveError(f"cannot read key pair {path}: {e}") from None
    if secret is None:
        raise CurveError(f"{path} holds only a public key; give the .key_secret file")
    return public, secret


def load_public(path: str) -> bytes:
    try:
        return zmq.auth.load_certificate(path)[0]
    except (OSError, ValueError) as e:
        raise CurveError(f"cannot read public key {path}: {e}") from None


def check_clients(folder: str) -> int:
    """Number of client public keys in `folder`; CurveError if there are none."""
    keys = list(Path(folder).glob("*.key")) if Path(folder).is_dir() else []
    if not keys:
        raise CurveError(f"{folder} has no client public keys (*.key)")
    return len(keys)


def serve_curve(sock: zmq.Socket, secret_file: str, clients_dir: str) -> ThreadAuthenticator:
    """Make `sock` a CURVE server that admits only the clients whose public keys are in clients_dir."""
    public, secret = load_secret(secret_file)
    check_clients(clients_dir)
    auth = ThreadAuthenticator(sock.context)
    auth.start()
    auth.configure_curve(domain="*", location=str(clients_dir))
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return auth


def connect_curve(sock: zmq.Socket, secret_file: str, server_public_file: str) -> None:
    """Make `sock` a CURVE client of the server whose public key is in server_public_file."""
    public, secret = load_secret(secret_file)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = load_public(server_public_file)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="caed-keys", description="Make a CURVE key pair for a board or a viewer.",
        epilog="board:  caed-keys /etc/caed/keys board   → board.key (give to viewers), board.key_secret\n"
               "viewer: caed-keys ~/.caed laptop         → copy laptop.key into the board's curve_clients folder",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="where to write NAME.key and NAME.key_secret")
    p.add_argument("name", help="key name, e.g. board or the viewer's host name")
    args = p.parse_args(argv)
    if (args.folder / f"{args.name}.key_secret").exists():
        p.exit(2, f"caed-keys: error: {args.folder / args.name}.key_secret exists; not overwriting it\n")
    args.folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(args.folder), args.name)
    Path(secret).chmod(0o600)
    print(f"public key (share it): {public}\nsecret key (keep it):  {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
