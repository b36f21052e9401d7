"""DNS rebinding, staged on loopback: a "public" host on 127.0.0.2 and a "private" one
on 127.0.0.1, on the same port, each recording what reaches it; labelyard's resolver
answers the public address for ``localhost`` (and takes 127.0.0.2 for public), while
anything that resolves the name again, outside the address checks, gets 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from labelyard.adapters import network

PUBLIC, PRIVATE = "127.0.0.2", "127.0.0.1"
NAME = "localhost"


@dataclass
class Host:
    """A loopback HTTP server: every request's method and path, and what it answers
    (``content`` to GETs, 200 to PUTs)."""

    address: str
    port: int = 0
    content: bytes | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)


def _handler(host: Host) -> type[BaseHTTPRequestHandler]:
    class Recorder(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes = b"") -> None:
            host.requests.append((self.command, self.path))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(200, host.content) if host.content else self._answer(404)

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(200)

        def log_message(self, *args: Any) -> None:
            pass

    return Recorder


@contextmanager
def _serving(host: Host) -> Iterator[None]:
    server = ThreadingHTTPServer((host.address, host.port), _handler(host))
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def rebinding(content: bytes | None = None) -> Iterator[Any]:
    """``(public, private)`` hosts on one port, with ``localhost`` rebinding between them
    until the block ends (then labelyard resolves it to loopback again)."""
    public = Host(PUBLIC, content=content)
    with _serving(public):
        private = Host(PRIVATE, public.port, content=content)
        with _serving(private), pytest.MonkeyPatch.context() as monkeypatch:

            def getaddrinfo(name: str, port: Any, *args: Any, **kwargs: Any) -> Any:
                if name == NAME:
                    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port))]
                return socket.getaddrinfo(name, port, *args, **kwargs)

            fake = SimpleNamespace(getaddrinfo=getaddrinfo, IPPROTO_TCP=socket.IPPROTO_TCP)
            monkeypatch.setattr(network, "socket", fake)
            real_is_public = network.is_public
            monkeypatch.setattr(
                network,
                "is_public",
                lambda address: address == ipaddress.ip_address(PUBLIC) or real_is_public(address),
            )
            yield public, private
