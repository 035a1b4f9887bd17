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

Redirects are followed here, not by requests, so that we know which hops
were permanent: only a chain of 301/308 from the start updates the stored
URL; a 302/303/307 anywhere stops that. Retries are off: a failure is
recorded and backed off by the scheduler. Every foreign exception becomes
a ``FetchError`` naming the source, once, here.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import requests.cookies
import requests.utils
import urllib3.exceptions
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
    """An adapter whose HTTPS pools share one loaded ``SSLContext``.

    requests' ``cert_verify`` names the bundle on every pool it hands a
    request to, and urllib3 loads a named bundle into the context of each new
    connection: where the pool carries our context, that name is dropped,
    since the context already holds the same certificates.
    """

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self.tls = context  # before HTTPAdapter.__init__, which makes the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, ssl_context=self.tls, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs.setdefault("ssl_context", self.tls)
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        if verify and getattr(conn, "conn_kw", {}).get("ssl_context") is self.tls:
            conn.ca_certs = conn.ca_cert_dir = None


class Fetcher:
    """Conditional GETs with limits; one per thread.

    ``tls`` and ``watchdog`` are the process's (``HttpRetriever`` hands every
    Fetcher the same ones); a Fetcher made alone gets its own.
    """

    def __init__(
        self, config: FetchConfig, *, tls: TlsContexts | None = None, watchdog: Watchdog | None = None
    ) -> None:
        self.config = config
        self.watchdog = watchdog or Watchdog()
        self._own_watchdog = watchdog is None
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
        adapter: requests.adapters.HTTPAdapter
        try:
            adapter = _TLSAdapter((tls or TlsContexts()).get(self.verify), pool_maxsize=1, max_retries=0)
        except (OSError, ssl.SSLError):
            # A bundle that cannot be read fails each HTTPS fetch, naming it,
            # as requests does; plain HTTP sources still work.
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=1, max_retries=0)
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
        try:
            return self._follow(request, time.monotonic() + self.config.deadline)
        except FetchError as e:
            e.subject = e.subject or request.name
            raise
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as e:
            raise FetchError(f"timed out: {_reason(e)}", subject=request.name) from e
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            raise FetchError(f"{type(e).__name__}: {_reason(e)}", subject=request.name) from e
        except (OSError, ValueError) as e:  # socket errors surfacing outside requests, bad URLs
            raise FetchError(f"{type(e).__name__}: {e}", subject=request.name) from e

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
        # cuts the connection when the total deadline passes.
        watch = self.watchdog.watch(deadline, response)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.raw.stream(_CHUNK, decode_content=True):
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"body is over the {limit}-byte limit", subject=name)
                if time.monotonic() > deadline:
                    raise FetchError(f"took longer than {self.config.deadline:g}s", subject=name)
                chunks.append(chunk)
        except urllib3.exceptions.HTTPError as e:
            if time.monotonic() >= deadline:
                raise FetchError(f"took longer than {self.config.deadline:g}s", subject=name) from e
            raise
        finally:
            self.watchdog.cancel(watch)
        return b"".join(chunks)


class Watchdog:
    """One thread that cuts the responses still being read at their deadline.

    A ``threading.Timer`` per body cost a thread start per fetch, a thousand
    in a refresh of a thousand feeds; here a watch is a heap entry. One per
    process (the updater's), started with its first watch.
    """

    def __init__(self) -> None:
        self._watches: list[list[Any]] = []  # [deadline, sequence, response or None]
        self._sequence = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def close(self) -> None:
        """End the thread; responses still watched are no longer cut."""
        with self._wake:
            self._closed = True
            self._wake.notify()

    def watch(self, deadline: float, response: requests.Response) -> list[Any]:
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
                while not self._closed and (not self._watches or self._watches[0][0] > time.monotonic()):
                    self._wake.wait(self._watches[0][0] - time.monotonic() if self._watches else None)
                if self._closed:
                    return
                response = heapq.heappop(self._watches)[2]
            if response is not None:
                _cut(response)


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


def _cut(response: requests.Response) -> None:
    """Shut the socket under a response being read in another thread."""
    # Private attributes, looked up defensively: urllib3 keeps the connection
    # while it may be reused; http.client drops it for a response that will
    # close, and then only the response's socket reader holds the socket.
    raw = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        reader = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


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
