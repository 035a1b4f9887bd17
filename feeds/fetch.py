"""HTTP for remote feeds (the only HTTP client user).

A ``Fetcher`` holds one urllib3 ``PoolManager`` (one per worker thread, so
each keeps its own keep-alive connections) and performs polite conditional
GETs: a User-Agent naming us, ``Accept`` for feed types, gzip/deflate, the
stored ETag/Last-Modified, connect and read timeouts, a total deadline and
a cap on the (decoded) body size, read as a stream so an endless or
bomb-sized body costs at most the cap.

urllib3 rather than requests on top of it: requests spent ~1 ms of CPU
per request here (cookie jars, netrc and proxy lookups in the environment,
hooks), three times urllib3's, and with the GIL shared a refresh that gets
a thousand 304s is bound by exactly that. We use none of what it adds.

Redirects are followed here, not by urllib3, so that we know which hops
were permanent: only a chain of 301/308 from the start updates the stored
URL; a 302/303/307 anywhere stops that. Retries are off: a failure is
recorded and backed off by the scheduler. Every foreign exception becomes
a ``FetchError`` naming the source, once, here.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from feeds import __version__
from feeds.config import FetchConfig
from feeds.errors import FetchError, GoneError, RetryLaterError

USER_AGENT = f"newsroom-feeds/{__version__} (+https://pypi.org/project/newsroom-feeds/)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)
PERMANENT_REDIRECTS = frozenset({301, 308})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
_CHUNK = 64 * 1024
_DRAIN_LIMIT = 256 * 1024
# Response headers the rest of the pipeline uses (the parser and the scheduler).
_KEPT_HEADERS = (
    "content-type", "content-location", "content-language", "etag", "last-modified", "cache-control",
)


@dataclass(frozen=True, slots=True)
class FetchRequest:
    name: str  # the source, named in every error
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int  # 200 (a body) or 304 (not modified)
    url: str  # where the body came from, after redirects
    permanent_url: str | None  # the new home a 301/308 chain named, if any
    body: bytes | None  # None for 304
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")


class Fetcher:
    """Conditional GETs with limits; one per thread."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self.headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
        self.timeout = urllib3.Timeout(connect=config.timeout, read=config.timeout)
        self.pool = urllib3.PoolManager(timeout=self.timeout, retries=False)
        # HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, read once, as requests read them per request.
        self.proxies = {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https", "all")}
        self.via: dict[str, urllib3.ProxyManager] = {}

    def close(self) -> None:
        for pool in (self.pool, *self.via.values()):
            pool.clear()

    def fetch(self, request: FetchRequest) -> FetchResult:
        """GET the feed; FetchError (GoneError, RetryLaterError) on any failure."""
        try:
            return self._follow(request, time.monotonic() + self.config.deadline)
        except FetchError as e:
            e.subject = e.subject or request.name
            raise
        except NewConnectionError as e:  # urllib3 files it under timeouts; it is a refusal
            raise FetchError(f"{type(e).__name__}: {_reason(e)}", subject=request.name) from e
        except TimeoutError as e:
            raise FetchError(f"timed out: {_reason(e)}", subject=request.name) from e
        except HTTPError as e:
            raise FetchError(f"{type(e).__name__}: {_reason(e)}", subject=request.name) from e
        except (OSError, ValueError) as e:  # socket errors surfacing outside urllib3, bad URLs
            raise FetchError(f"{type(e).__name__}: {e}", subject=request.name) from e

    def _follow(self, request: FetchRequest, deadline: float) -> FetchResult:
        url, permanent, only_permanent = request.url, None, True
        for _ in range(MAX_REDIRECTS + 1):
            response = self._pool_for(url).request(
                "GET", url, headers=self._headers(request), preload_content=False, redirect=False
            )
            read = False  # to its end: the connection may then serve the next request
            try:
                status = response.status
                if status != 200:
                    read = _drain(response)
                if status in REDIRECTS and response.headers.get("location"):
                    url = urljoin(url, response.headers["location"])
                    only_permanent = only_permanent and status in PERMANENT_REDIRECTS
                    permanent = url if only_permanent else permanent
                    continue
                headers = {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}
                if status == 304:
                    return FetchResult(304, url, permanent, None, headers)
                _check_status(response, request.name)
                body = self._read_body(response, request.name, deadline)
                read = True
                return FetchResult(status, url, permanent, body, headers)
            finally:
                if not read:
                    response.close()  # drops the connection: unread bytes would poison it
                response.release_conn()
        raise FetchError(f"more than {MAX_REDIRECTS} redirects", subject=request.name)

    def _pool_for(self, url: str) -> urllib3.PoolManager:
        """Straight to the host, or through the proxy the environment names for it."""
        if not self.proxies:
            return self.pool
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme) or self.proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
            return self.pool
        if proxy not in self.via:
            self.via[proxy] = urllib3.ProxyManager(proxy, timeout=self.timeout, retries=False)
        return self.via[proxy]

    def _headers(self, request: FetchRequest) -> dict[str, str]:
        headers = dict(self.headers)
        if request.etag:
            headers["If-None-Match"] = request.etag
        if request.last_modified:
            headers["If-Modified-Since"] = request.last_modified
        return headers

    def _read_body(self, response: urllib3.BaseHTTPResponse, name: str, deadline: float) -> bytes:
        """The decoded body, at most max_bytes, read before the deadline."""
        limit = self.config.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and "content-encoding" not in response.headers and int(declared) > limit:
            raise FetchError(f"body of {declared} bytes is over the {limit}-byte limit", subject=name)
        # A server trickling bytes never trips the read timeout; the watchdog
        # cuts the connection when the total deadline passes.
        watch = _WATCHDOG.watch(deadline, response)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.stream(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"body is over the {limit}-byte limit", subject=name)
                if time.monotonic() > deadline:
                    raise FetchError(f"took longer than {self.config.deadline:g}s", subject=name)
                chunks.append(chunk)
        except HTTPError as e:
            if time.monotonic() >= deadline:
                raise FetchError(f"took longer than {self.config.deadline:g}s", subject=name) from e
            raise
        finally:
            _WATCHDOG.cancel(watch)
        return b"".join(chunks)


class _Watchdog:
    """One thread that cuts the responses still being read at their deadline.

    A ``threading.Timer`` per body cost a thread start per fetch, a thousand
    in a refresh of a thousand feeds; here a watch is a heap entry.
    """

    def __init__(self) -> None:
        self._watches: list[list[Any]] = []  # [deadline, sequence, response or None]
        self._sequence = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, response: urllib3.BaseHTTPResponse) -> list[Any]:
        entry = [deadline, next(self._sequence), response]
        with self._wake:
            heapq.heappush(self._watches, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-deadlines", daemon=True)
                self._thread.start()
            if self._watches[0] is entry:  # sooner than the one the thread waits for
                self._wake.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        entry[2] = None  # dropped by the thread when its time comes

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._watches or self._watches[0][0] > time.monotonic():
                    self._wake.wait(self._watches[0][0] - time.monotonic() if self._watches else None)
                response = heapq.heappop(self._watches)[2]
            if response is not None:
                _cut(response)


_WATCHDOG = _Watchdog()


def _drain(response: urllib3.BaseHTTPResponse) -> bool:
    """Read a small non-feed body (a 304, a redirect, an error page) to its end,
    so the connection goes back to the pool; closing it unread would drop it,
    and a new connection per request is slow for us and rude to the server.
    False when it was too big or broke off."""
    size = 0
    try:
        for chunk in response.stream(_CHUNK, decode_content=False):
            size += len(chunk)
            if size > _DRAIN_LIMIT:
                return False
    except HTTPError:
        return False
    return True


def _check_status(response: urllib3.BaseHTTPResponse, name: str) -> None:
    status = response.status
    if status == 410:
        raise GoneError("HTTP 410 Gone: the feed was removed", subject=name, status=status)
    if status in (429, 503):
        raise RetryLaterError(
            f"HTTP {status} {response.reason or ''}".strip(), subject=name, status=status,
            retry_after=response.headers.get("retry-after"),
        )
    if not 200 <= status < 300:
        raise FetchError(f"HTTP {status} {response.reason or ''}".strip(), subject=name, status=status)


def _cut(response: urllib3.BaseHTTPResponse) -> None:
    """Shut the socket under a response being read in another thread."""
    # Private attributes, looked up defensively: urllib3 keeps the connection
    # while it may be reused; http.client drops it for a response that will
    # close, and then only the response's socket reader holds the socket.
    sock = getattr(getattr(response, "_connection", None), "sock", None)
    if sock is None:
        reader = getattr(getattr(response, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _reason(error: Exception) -> str:
    """The innermost message of a urllib3 error chain."""
    reason: BaseException = error
    while reason.args and isinstance(reason.args[0], BaseException):
        reason = reason.args[0]
    inner = getattr(reason, "reason", None)
    return str(inner if isinstance(inner, BaseException) else reason)
