"""HTTP for remote feeds (the only module importing requests).

A ``Fetcher`` holds one ``requests.Session`` (one per worker thread: a
Session is not safe to share) and performs polite conditional GETs:
a User-Agent naming us, ``Accept`` for feed types, gzip/deflate, the stored
ETag/Last-Modified, connect and read timeouts, a total deadline and a cap
on the (decoded) body size, read as a stream so an endless or bomb-sized
body costs at most the cap.

requests is cheap here because each Session is set up once for what a feed
fetch needs, not left to work it out again on every request. Used as a plain
``session.get`` it cost ~0.7-1 ms of CPU per 304 here, over half of it
reading the environment, and with the GIL shared a refresh that gets a
thousand 304s is bound by exactly that; set up as below, ~0.3 ms:

- ``trust_env`` is off; what it would read per request is read once per
  session instead: proxies (``http_proxy``/``https_proxy``/``all_proxy``,
  ``no_proxy``) through requests' own utils, once per origin, and the CA
  bundle (``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``). ``~/.netrc`` is not
  read: its passwords are not for whatever host a feed list names.
- Requests are prepared here, not merged with session settings, and sent
  with ``Session.send`` and every setting explicit.
- Cookies are refused (see ``_NO_COOKIES``).
- TLS: every HTTPS connection of the process verifies with one shared
  ``ssl.SSLContext`` holding the CA bundle, loaded once. Left to itself,
  requests hands urllib3 the bundle's path and each new connection parses it
  again: ~40 ms of CPU for certifi's bundle, against ~4 ms for the handshake
  with the bundle already loaded, for every host of a cold refresh.
- Bodies are read from the raw urllib3 stream, decoded there, so the cap
  counts decoded bytes; bodies we discard (a 304, a redirect, an error page)
  are read undecoded, and at most ``_DRAIN_LIMIT`` of them.

The deadline covers the whole exchange: every socket a fetch connects or
reuses is watched from the start, so a server trickling its status line or
headers a byte at a time is cut at the deadline as a trickled body is.

Connections are made here too (``_GuardedConnection``): the host is resolved
once, by the injected ``Resolver``, and the address connected to is the one
checked, so DNS cannot answer one address to a check and another to the
connect. A redirect from a public address may not lead to a loopback,
private, link-local or unspecified one (``[fetch] allow_private_redirects``
opts out); the URL an operator configured may be anywhere. Through a proxy
the proxy resolves, and its own rules apply.

Redirects are followed here, not by requests, so that we know which hops
were permanent: only a chain of 301/308 from the start updates the stored
URL; a 302/303/307 anywhere stops that. Retries are off: a failure is
recorded and backed off by the scheduler. Every foreign exception becomes
a ``FetchError`` naming the source, once, here.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import requests.cookies
import requests.utils
import urllib3.connection
import urllib3.exceptions
import urllib3.poolmanager
import urllib3.util.ssl_

from feeds import __version__
from feeds.config import FetchConfig
from feeds.errors import FetchError, GoneError, RetryLaterError

USER_AGENT = f"newsroom-feeds/{__version__} (+https://pypi.org/project/newsroom-feeds/)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)
HEADERS = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
PERMANENT_REDIRECTS = frozenset({301, 308})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
_CHUNK = 64 * 1024
_DRAIN_LIMIT = 256 * 1024
# Response headers the rest of the pipeline uses (the parser and the scheduler).
_KEPT_HEADERS = (
    "content-type",
    "content-location",
    "content-language",
    "etag",
    "last-modified",
    "cache-control",
)


@dataclass(frozen=True, slots=True)
class FetchRequest:
    name: str  # the source, named in every error
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int  # a 2xx with a body; 204 (no entries) or 304 (not modified) without
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


class Resolver(Protocol):
    """Host name -> addresses to connect to, as (family, address) pairs."""

    def resolve(self, host: str, port: int) -> list[tuple[int, str]]: ...


class SystemResolver:
    """The system's resolver (getaddrinfo), as urllib3 would use it."""

    def resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise FetchError(f"cannot resolve {host}: {e.strerror or e}") from e
        return [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in found]


def is_internal_address(address: tuple[str, int]) -> bool:
    """Whether a (host, port) address is not on the public internet: loopback,
    private, link-local, unspecified, shared or reserved (IPv4-mapped IPv6 included)."""
    ip = ipaddress.ip_address(address[0].partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


# (host, port) -> internal? The port is there so a test can call one local server public.
AddressPolicy = Callable[[tuple[str, int]], bool]


class ExchangeGuard:
    """What one Fetcher's connections must respect during the fetch in hand:
    the deadline (every socket is watched) and where a redirect may lead.

    One per Fetcher, so per thread: the fetch in hand is this thread's.
    """

    def __init__(self, resolver: Resolver, is_internal: AddressPolicy, watchdog: Watchdog) -> None:
        self.resolver = resolver
        self.is_internal = is_internal
        self.watchdog = watchdog
        self.deadline = float("inf")
        self.public_only = False  # this hop came by a redirect from a public address
        self.peer_internal = True  # the address of the hop in hand
        self._watches: list[list[Any]] = []

    def begin(self, deadline: float) -> None:
        self.deadline, self.public_only, self.peer_internal = deadline, False, True

    def end(self) -> None:
        for watch in self._watches:
            self.watchdog.cancel(watch)
        self._watches.clear()

    def connect(self, host: str, port: int, timeout: float | None, options: Any) -> socket.socket:
        """A socket to the first acceptable address ``host`` resolves to, watched."""
        addresses = self.resolver.resolve(host.strip("[]"), port)
        refused = None
        for family, ip in addresses:
            if not self._may_reach((ip, port)):
                refused = ip
                continue
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                for option in options or ():
                    sock.setsockopt(*option)
                sock.settimeout(timeout)
                self.adopt(sock)
                sock.connect((ip, port))
                return sock
            except OSError:
                sock.close()
                if ip == addresses[-1][1]:
                    raise
        if refused is not None:
            raise FetchError(
                f"refused a redirect from a public address to {host} ({refused}), an internal address"
            )
        raise OSError(f"no address for {host}")

    def adopt(self, sock: socket.socket) -> None:
        """Check a (kept or new) connection's peer and watch it until the deadline."""
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        if peer is not None and not self._may_reach(peer[:2]):
            raise FetchError(f"refused a redirect from a public address to {peer[0]}, an internal address")
        self.watch(sock)

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down if this fetch is still using it at the deadline."""
        self._watches.append(self.watchdog.watch(self.deadline, sock))

    def _may_reach(self, address: tuple[str, int]) -> bool:
        internal = self.is_internal(address)
        self.peer_internal = internal
        return not (internal and self.public_only)


class _GuardedConnection:
    """Mixed into urllib3's connections: connect and reuse through the guard."""

    guard: ExchangeGuard

    def _new_conn(self) -> socket.socket:
        if getattr(self, "proxy", None) is not None or getattr(self, "_tunnel_host", None):
            sock: socket.socket = super()._new_conn()  # type: ignore[misc]
            self.guard.watch(sock)  # the proxy resolves and connects: only the deadline applies
            return sock
        conn: Any = self  # an urllib3 HTTPConnection: its attributes are typed there
        try:
            return self.guard.connect(conn._dns_host, conn.port, conn.timeout, conn.socket_options)
        except TimeoutError as e:
            raise urllib3.exceptions.ConnectTimeoutError(conn, f"connect to {conn.host} timed out") from e
        except OSError as e:
            raise urllib3.exceptions.NewConnectionError(conn, f"cannot connect: {e}") from e

    def request(self, *args: Any, **kwargs: Any) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:  # a kept connection: checked and watched as a new one would be
            self.guard.adopt(sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_GuardedConnection, urllib3.connection.HTTPConnection):
    def __init__(self, *args: Any, guard: ExchangeGuard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)


class _GuardedHTTPSConnection(_GuardedConnection, urllib3.connection.HTTPSConnection):
    def __init__(self, *args: Any, guard: ExchangeGuard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)


class _GuardedPoolManager(urllib3.poolmanager.PoolManager):
    """Pools whose connections go through the guard."""

    def __init__(self, *args: Any, guard: ExchangeGuard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _new_pool(self, scheme: str, host: str, port: int, request_context: Any = None) -> Any:
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = _GuardedHTTPSConnection if scheme == "https" else _GuardedHTTPConnection
        pool.conn_kw["guard"] = self.guard
        return pool


class _FeedSession(requests.Session):
    """A Session that leaves redirects to the ``Fetcher``.

    ``Session.send`` prepares ``Response.next`` even with
    ``allow_redirects=False``, and to do so reads a redirect's whole body,
    decoded and uncapped; a redirect target of None stops that, and the
    Fetcher reads at most ``_DRAIN_LIMIT`` raw bytes of it instead.
    """

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


# A feed is a public document fetched anonymously, and what we keep between
# polls is its ETag/Last-Modified, stored with the source. Cookies would carry
# a publisher's tracking or consent ids from poll to poll, make a request
# depend on which worker happened to fetch that host before, and grow a jar
# per worker. So requests are prepared with no cookies (no Cookie header, no
# jar walk), and the session's jar, which Session.send fills from every
# response, refuses them all.
_NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])
_NO_PROXIES: dict[str, str] = {}


class TlsContexts:
    """Verifying contexts by CA bundle, each loaded once: one per process,
    owned by the updater and shared by all its Fetchers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contexts: dict[str, ssl.SSLContext] = {}

    def get(self, ca_location: str) -> ssl.SSLContext:
        """The verifying context for a CA bundle file or directory.

        urllib3's own settings (TLS 1.2 and up, its ciphers), certificates
        required and host names checked, as on every connection it makes itself.
        """
        with self._lock:
            context = self._contexts.get(ca_location)
            if context is None:
                context = urllib3.util.ssl_.create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                context.check_hostname = True
                if Path(ca_location).is_dir():
                    context.load_verify_locations(capath=ca_location)
                else:
                    context.load_verify_locations(cafile=ca_location)
                self._contexts[ca_location] = context
            return context


class _TLSAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections go through the guard, and whose HTTPS
    pools share one loaded ``SSLContext`` (None: the bundle could not be read).

    requests' ``cert_verify`` names the bundle on every pool it hands a
    request to, and urllib3 loads a named bundle into the context of each new
    connection: where the pool carries our context, that name is dropped,
    since the context already holds the same certificates.
    """

    def __init__(self, context: ssl.SSLContext | None, guard: ExchangeGuard, **kwargs: Any) -> None:
        self.tls = context  # before HTTPAdapter.__init__, which makes the pool manager
        self.guard = guard
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        if self.tls is not None:
            kwargs["ssl_context"] = self.tls
        super().init_poolmanager(connections, maxsize, block, **kwargs)
        self.poolmanager = _GuardedPoolManager(
            num_pools=connections, maxsize=maxsize, block=block, guard=self.guard, **kwargs
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        if self.tls is not None:
            proxy_kwargs.setdefault("ssl_context", self.tls)
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        if verify and self.tls is not None and getattr(conn, "conn_kw", {}).get("ssl_context") is self.tls:
            conn.ca_certs = conn.ca_cert_dir = None


class Fetcher:
    """Conditional GETs with limits; one per thread.

    ``tls`` and ``watchdog`` are the process's (``HttpRetriever`` hands every
    Fetcher the same ones); a Fetcher made alone gets its own.
    """

    def __init__(
        self,
        config: FetchConfig,
        *,
        tls: TlsContexts | None = None,
        watchdog: Watchdog | None = None,
        resolver: Resolver | None = None,
        is_internal: AddressPolicy = is_internal_address,
    ) -> None:
        self.config = config
        self.watchdog = watchdog or Watchdog()
        self._own_watchdog = watchdog is None
        self.guard = ExchangeGuard(resolver or SystemResolver(), is_internal, self.watchdog)
        self.timeout = (config.timeout, config.timeout)  # connect, read
        self.session = _FeedSession()
        self.session.trust_env = False  # the environment is read here, once
        self.session.cookies = requests.cookies.RequestsCookieJar(policy=_NO_COOKIES)
        # One request at a time in this thread: one kept connection per host is
        # all it can reuse (with the other workers', at most ``workers`` per host).
        # What trust_env would look up on every request, looked up once: the CA
        # bundle, and whether the environment names any proxy (usually not, and
        # then no origin has one; if so, each origin's are looked up once).
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self.verify = ca_bundle or requests.utils.DEFAULT_CA_BUNDLE_PATH  # requests' own: certifi's
        context: ssl.SSLContext | None
        try:
            context = (tls or TlsContexts()).get(self.verify)
        except (OSError, ssl.SSLError):
            # A bundle that cannot be read fails each HTTPS fetch, naming it,
            # as requests does; plain HTTP sources still work.
            context = None
        adapter = _TLSAdapter(context, self.guard, pool_maxsize=1, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.env_has_proxies = any(scheme != "no" for scheme in urllib.request.getproxies())
        self.proxies: dict[str, dict[str, str]] = {}  # per scheme://host:port
        # The part of every request that never changes, validated once.
        self.template = requests.PreparedRequest()
        self.template.prepare_method("GET")
        self.template.prepare_headers(HEADERS)

    def close(self) -> None:
        self.session.close()
        if self._own_watchdog:
            self.watchdog.close()

    def fetch(self, request: FetchRequest) -> FetchResult:
        """GET the feed; FetchError (GoneError, RetryLaterError) on any failure."""
        deadline = time.monotonic() + self.config.deadline
        self.guard.begin(deadline)
        try:
            result = self._follow(request, deadline)
            if time.monotonic() >= deadline:
                # Cut mid-headers, http.client takes the end of the stream for the
                # end of the headers, and an empty body for the whole of it.
                raise FetchError(f"took longer than {self.config.deadline:g}s", subject=request.name)
            return result
        except FetchError as e:
            e.subject = e.subject or request.name
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            if time.monotonic() >= deadline:  # the watchdog cut the connection
                raise FetchError(f"took longer than {self.config.deadline:g}s", subject=request.name) from e
            if isinstance(e, requests.Timeout | urllib3.exceptions.TimeoutError):
                raise FetchError(f"timed out: {_reason(e)}", subject=request.name) from e
            if isinstance(e, requests.RequestException | urllib3.exceptions.HTTPError):
                raise FetchError(f"{type(e).__name__}: {_reason(e)}", subject=request.name) from e
            # socket errors surfacing outside requests, bad URLs
            raise FetchError(f"{type(e).__name__}: {e}", subject=request.name) from e
        finally:
            self.guard.end()

    def _follow(self, request: FetchRequest, deadline: float) -> FetchResult:
        url, permanent, only_permanent = request.url, None, True
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(request, url)
            read = False  # to its end: the connection may then serve the next request
            try:
                status = response.status_code
                # Any 2xx but 204 carries the feed (a 203 from a transforming proxy,
                # a 201 or 226 from an odd server); everything else is drained.
                has_body = 200 <= status < 300 and status != 204
                if not has_body:
                    read = _drain(response)
                if status in REDIRECTS and response.headers.get("location"):
                    url = urljoin(url, response.headers["location"])
                    # The next hop came from this one's address: public, then public only.
                    self.guard.public_only = self.guard.public_only or (
                        not self.guard.peer_internal and not self.config.allow_private_redirects
                    )
                    only_permanent = only_permanent and status in PERMANENT_REDIRECTS
                    permanent = url if only_permanent else permanent
                    continue
                headers = {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}
                if status in (204, 304):  # no content: no entries, or none changed
                    return FetchResult(status, url, permanent, None, headers)
                _check_status(response, request.name)
                body = self._read_body(response, request.name, deadline)
                read = True
                return FetchResult(status, url, permanent, body, headers)
            finally:
                if read:
                    response.raw.release_conn()
                else:
                    response.close()  # drops the connection: unread bytes would poison it
        raise FetchError(f"more than {MAX_REDIRECTS} redirects", subject=request.name)

    def _send(self, request: FetchRequest, url: str) -> requests.Response:
        """One GET, streamed; Session.send with every setting given, so that it
        merges nothing from the session or the environment."""
        prepared = self.template.copy()
        prepared.prepare_url(url, None)
        if "@" in url:  # user:password@host: Basic auth, as requests would send it
            prepared.prepare_auth(None, url)
        if request.etag:
            prepared.headers["If-None-Match"] = request.etag
        if request.last_modified:
            prepared.headers["If-Modified-Since"] = request.last_modified
        return self.session.send(
            prepared,
            stream=True,
            timeout=self.timeout,
            verify=self.verify,
            cert=None,
            proxies=self._proxies_for(url),
            allow_redirects=False,
        )

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The environment's proxies, as requests would take them for this URL
        (``no_proxy`` honoured), looked up once per origin."""
        if not self.env_has_proxies:
            return _NO_PROXIES
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        proxies = self.proxies.get(origin)
        if proxies is None:
            proxies = self.proxies[origin] = requests.utils.get_environ_proxies(url)
        return proxies

    def _read_body(self, response: requests.Response, name: str, deadline: float) -> bytes:
        """The decoded body, at most max_bytes, read before the deadline."""
        limit = self.config.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and "content-encoding" not in response.headers and int(declared) > limit:
            raise FetchError(f"body of {declared} bytes is over the {limit}-byte limit", subject=name)
        # A server trickling bytes never trips the read timeout; the watchdog
        # cuts the connection (watched since it was made or reused) at the deadline.
        chunks: list[bytes] = []
        size = 0
        for chunk in response.raw.stream(_CHUNK, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise FetchError(f"body is over the {limit}-byte limit", subject=name)
            if time.monotonic() > deadline:
                raise FetchError(f"took longer than {self.config.deadline:g}s", subject=name)
            chunks.append(chunk)
        return b"".join(chunks)


class Watchdog:
    """One thread that cuts the connections of fetches still running at their deadline.

    A ``threading.Timer`` per body cost a thread start per fetch, a thousand
    in a refresh of a thousand feeds; here a watch is a heap entry. One per
    process (the updater's), started with its first watch.
    """

    def __init__(self) -> None:
        self._watches: list[list[Any]] = []  # [deadline, sequence, socket or None]
        self._sequence = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def close(self) -> None:
        """End the thread; sockets still watched are no longer cut."""
        with self._wake:
            self._closed = True
            self._wake.notify()

    def watch(self, deadline: float, sock: socket.socket) -> list[Any]:
        entry = [deadline, next(self._sequence), sock]
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
                while not self._closed and (not self._watches or self._watches[0][0] > time.monotonic()):
                    self._wake.wait(self._watches[0][0] - time.monotonic() if self._watches else None)
                if self._closed:
                    return
                sock = heapq.heappop(self._watches)[2]
            if sock is not None:
                # shutdown, not close: the fetch thread still owns the descriptor,
                # and its blocked recv returns at once.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class HttpRetriever:
    """The ``Retriever`` over HTTP: a Fetcher (a Session) per calling thread,
    all sharing one TLS context cache and one deadline watchdog. Built once
    per process by the updater; safe to call from any thread."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self.tls = TlsContexts()
        self.watchdog = Watchdog()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._fetchers: list[Fetcher] = []

    def fetch(self, request: FetchRequest) -> FetchResult:
        """GET one feed with this thread's Session; FetchError on any failure."""
        fetcher: Fetcher | None = getattr(self._local, "fetcher", None)
        if fetcher is None:
            fetcher = self._local.fetcher = Fetcher(self.config, tls=self.tls, watchdog=self.watchdog)
            with self._lock:
                self._fetchers.append(fetcher)
        return fetcher.fetch(request)

    def close(self) -> None:
        """Close every Session and stop the watchdog."""
        with self._lock:
            fetchers, self._fetchers = self._fetchers, []
        for fetcher in fetchers:
            fetcher.close()
        self.watchdog.close()


def _drain(response: requests.Response) -> bool:
    """Read a small non-feed body (a 304, a redirect, an error page) to its end,
    so the connection goes back to the pool; closing it unread would drop it,
    and a new connection per request is slow for us and rude to the server.
    False when it was too big or broke off."""
    size = 0
    try:
        for chunk in response.raw.stream(_CHUNK, decode_content=False):
            size += len(chunk)
            if size > _DRAIN_LIMIT:
                return False
    except (urllib3.exceptions.HTTPError, OSError):
        return False
    return True


def _check_status(response: requests.Response, name: str) -> None:
    status = response.status_code
    if status == 410:
        raise GoneError("HTTP 410 Gone: the feed was removed", subject=name, status=status)
    if status in (429, 503):
        raise RetryLaterError(
            f"HTTP {status} {response.reason or ''}".strip(),
            subject=name,
            status=status,
            retry_after=response.headers.get("retry-after"),
        )
    if not 200 <= status < 300:
        raise FetchError(f"HTTP {status} {response.reason or ''}".strip(), subject=name, status=status)


def _reason(error: Exception) -> str:
    """The innermost message of a requests/urllib3 error chain (they nest three deep)."""
    reason: BaseException = error
    while reason.args and isinstance(reason.args[0], BaseException):
        reason = reason.args[0]
    inner = getattr(reason, "reason", None)
    return str(inner if isinstance(inner, BaseException) else reason)


class FormPoster:
    """POSTs small forms (WebSub publish pings) with one Session of its own.

    Used from one thread (the WebSub worker's); the ping is a plain form
    POST, so none of the feed-fetch machinery above applies. Network errors
    become a ``FetchError`` naming the URL; any HTTP status is returned.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # a hub URL is configured, not found through the environment
        self._session.cookies.set_policy(_NO_COOKIES)
        self._session.headers.update({"User-Agent": USER_AGENT})

    def post(self, url: str, form: Mapping[str, str]) -> int:
        """The HTTP status of one form POST; FetchError when no answer came."""
        try:
            with self._session.post(url, data=dict(form), timeout=self.timeout, allow_redirects=False) as r:
                return r.status_code
        except requests.RequestException as e:
            raise FetchError(f"no answer: {_reason(e)}", subject=url) from e

    def close(self) -> None:
        self._session.close()
