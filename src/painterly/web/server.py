"""Start the web app on a socket we bind ourselves, so the port is known (and may be 0)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
from typing import TextIO

import uvicorn
from starlette.applications import Starlette

from ..errors import InputError
from .app import LOCAL_HOSTS, create_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or an InputError that says what to try instead."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be from 0 to 65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = "; try another --port" if port else ""
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    return sock


def make_server(app: Starlette) -> uvicorn.Server:
    """Quiet uvicorn: the page polls twice a second, so access logs would be noise."""
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    return uvicorn.Server(config)


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def serve(host: str = "127.0.0.1", port: int = 8000, *, out: TextIO = sys.stdout) -> int:
    """Run the web app until Ctrl-C; the first line printed is the address to open."""
    sock = bind(host, port)
    port = sock.getsockname()[1]
    local = is_loopback(host)
    app = create_app(allowed_hosts=(*LOCAL_HOSTS, host) if local else None)
    print(f"painterly: open {url_for(host, port)} in your browser (Ctrl-C stops)", file=out)
    if not local:
        print(
            f"painterly: warning: listening on {host}, so other machines that can reach this "
            "one can use the app, and see and cancel its runs",
            file=out,
        )
    out.flush()
    # uvicorn shuts down cleanly on Ctrl-C, then re-raises it; for a server it is the way out.
    with contextlib.suppress(KeyboardInterrupt):
        make_server(app).run(sockets=[sock])
    print("painterly: stopped", file=out)
    return 0
