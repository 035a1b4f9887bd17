"""Connection hygiene for the HTTP server: what nginx does and uvicorn leaves out.

uvicorn closes a keep-alive connection that stays idle, but a connection that
never completes its first request's headers, or trickles them a byte at a
time, stays open for ever, and it accepts connections until the process runs
out of descriptors, after which every new client fails. Here a request's
headers must arrive within ``header_timeout`` of the connection opening (or of
the previous response), they may not exceed ``MAX_HEADER_BYTES``, and the
number of open connections stays below the descriptor limit: at the cap, the
oldest connection with no request in progress is closed to make room, as
nginx drains its idle keep-alive connections.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# nginx's default is 4 x 8 KB buffers; a feed reader's request is a few hundred bytes.
MAX_HEADER_BYTES = 64 * 1024
_TOO_LARGE_BODY = b"431 Request Header Fields Too Large\n"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)
)
# Descriptors kept back for the store, logs, fetches and parser children.
_RESERVED_DESCRIPTORS = 64
_UNLIMITED_DESCRIPTORS = 65536


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a client may take, and how many may be connected at once."""

    header_timeout: float
    keep_alive: float
    max_connections: int


def connection_cap(descriptor_limit: int | None = None) -> int:
    """Connections the server may hold: the descriptor limit minus a reserve.

    The reserve is an eighth of the limit, at least ``_RESERVED_DESCRIPTORS``,
    so accept() never meets EMFILE (which stalls asyncio's accept loop).
    """
    if descriptor_limit is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        descriptor_limit = _UNLIMITED_DESCRIPTORS if soft == resource.RLIM_INFINITY else soft
    reserve = max(_RESERVED_DESCRIPTORS, descriptor_limit // 8)
    return max(8, descriptor_limit - reserve)


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with header deadlines and the connection cap."""

    class GuardedHttpProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.opened_at = 0.0
            self.header_bytes = 0
            self.header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.opened_at = self.loop.time()
            self.await_headers()
            if len(self.connections) > limits.max_connections:
                make_room(self)

        def connection_lost(self, exc: Exception | None) -> None:
            self.stop_header_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.header_timer is not None:  # still reading a request's headers
                self.header_bytes += len(data)
                if self.header_bytes > MAX_HEADER_BYTES:
                    self.transport.write(_TOO_LARGE)
                    self.transport.close()
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self.stop_header_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            next_is_waiting = bool(self.pipeline)
            super().on_response_complete()
            if not next_is_waiting and not self.transport.is_closing():
                self.await_headers()

        def is_idle(self) -> bool:
            """No request in progress: closing it loses no answer."""
            return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

        def await_headers(self) -> None:
            self.stop_header_timer()
            self.header_bytes = 0
            self.header_timer = self.loop.call_later(limits.header_timeout, self.headers_too_slow)

        def stop_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def headers_too_slow(self) -> None:
            self.header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    def make_room(newcomer: GuardedHttpProtocol) -> None:
        """Close the oldest idle connection; the newcomer itself if none is idle."""
        idle = [c for c in newcomer.connections if isinstance(c, GuardedHttpProtocol) and c.is_idle()]
        idle = [c for c in idle if c is not newcomer] or [newcomer]
        victim = min(idle, key=lambda c: c.opened_at)
        victim.transport.close()

    return GuardedHttpProtocol
