"""``python -m insitu.live OUT.h5 [--port 5006] [--host 127.0.0.1]``: serve
the live view (:mod:`insitu.live.app`) of an output file.

It binds to localhost by default: the page shows the run's data and config
to anyone who reaches the port, with no authentication, so binding to
another address (``--host 0.0.0.0``) is an explicit choice, warned about.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys

log = logging.getLogger("insitu.live")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m insitu.live",
                                description="Serve a live view of an insitu output file.")
    p.add_argument("path", help="the output file (it may not exist yet)")
    p.add_argument("--port", type=int, default=5006, help="TCP port (default 5006; 0: any free)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--interval", type=float, default=1.0,
                   help="seconds between polls of the file (default 1)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="HOST[:PORT]",
                   help="another origin browsers may reach the page as (e.g. an SSH tunnel's)")
    return p.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args) -> int:
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    from .app import make_document

    if not is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach port %d sees this run's data and "
                    "config, without authentication (the default, 127.0.0.1, is this machine "
                    "only; use an SSH tunnel to watch from elsewhere)", args.host, args.port)
    app = Application(FunctionHandler(lambda doc: make_document(doc, args.path, args.interval)))
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    origins = [f"{h}:{args.port}" for h in {shown, "localhost", "127.0.0.1", socket.getfqdn()}]
    server = Server({"/": app}, port=args.port, address=args.host,
                    allow_websocket_origin=origins + args.allow_origin, num_procs=1)
    server.start()
    port = server.port
    url = f"http://{shown}:{port}/"
    # the URL on stdout, alone on its line, for insitu.run --live and scripts
    print(f"insitu.live: serving {args.path} at {url}", flush=True)
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv=None) -> int:
    from ..log import setup
    setup(0)
    args = parse_args(argv)
    try:
        return serve(args)
    except OSError as exc:  # the port is taken, the address is not ours
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
