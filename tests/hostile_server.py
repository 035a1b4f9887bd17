"""A hostile HTTP server on 127.0.0.1 for tests: it answers each path with a
behaviour written against the raw socket (trickled headers, absurd headers,
huge bodies), which well-behaved servers such as pytest-httpserver cannot do."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Behaviour = Callable[[socket.socket], None]


class HostileServer:
    """Serves ``routes`` (path -> behaviour) until closed; unknown paths get 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.stopping = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode("latin-1")
            behaviour = self.routes.get(path, respond(404, b"not here"))
            behaviour(sock)
        except OSError:
            pass  # the client gave up: that is often the point

    def trickle(self, head: bytes, every: float, limit: float = 30.0) -> Behaviour:
        """Send ``head`` then one header byte every ``every`` seconds, for up to ``limit``."""

        def behaviour(sock: socket.socket) -> None:
            sock.sendall(head)
            started = time.monotonic()
            while not self.stopping.is_set() and time.monotonic() - started < limit:
                sock.sendall(b"a")
                self.stopping.wait(every)

        return behaviour


def respond(status: int, body: bytes, headers: dict[str, str] | None = None) -> Behaviour:
    """A plain, complete answer (with whatever headers, however absurd)."""

    def behaviour(sock: socket.socket) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    return behaviour


@contextmanager
def hostile_server() -> Iterator[HostileServer]:
    server = HostileServer()
    try:
        yield server
    finally:
        server.close()
