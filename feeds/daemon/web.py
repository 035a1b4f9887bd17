"""HTTP: a raw ASGI app over the published tree, and the uvicorn server that runs it.

``create_app`` is the factory: ``routed_app`` over a routing table
(``tree_routes``: the health check, then the published tree); tests and ``feeds serve --get`` call
the app in-process with ``call_app``, and ``HttpServer`` binds it to a socket
(the only uvicorn user). A tree path is looked up in the in-memory mapping of
published resources, so no path, however encoded, can name a file, and
answering costs a dictionary lookup plus the header checks of
``feeds.publish.resources``.

uvicorn with httptools (and uvloop where installed) was chosen for speed:
about 4x gunicorn and 6x waitress on a 100 KB feed here. It runs in a thread
beside the scheduler, in one process that shares one store and one
in-memory tree.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

import uvicorn

from feeds.clock import Clock, system_clock
from feeds.daemon.connections import ConnectionLimits, connection_cap, guarded_protocol
from feeds.daemon.dynamic import SEARCH_PATHS, filtered_feed, preview_of, search_answer, section_page_path
from feeds.errors import FeedsError
from feeds.publish.cache import PublishedSite
from feeds.publish.formats import is_feed_path
from feeds.publish.resources import (
    VARY_NEGOTIATED,
    Answer,
    Resource,
    answer,
    json_answer,
    method_not_allowed,
    not_found,
    prefers_html,
    store_unavailable,
    with_vary,
)

log = logging.getLogger("feeds.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Health = Callable[[], tuple[int, bytes]]
# A route's answer to (tree path, ASGI scope, is HEAD).
Handler = Callable[[str, Scope, bool], Awaitable[Answer]]

HEALTH_PATH = "healthz"
INDEX = "index.html"


def tree_path(url_path: str, mount: str = "/") -> str | None:
    """The published-tree path a URL path asks for (``/`` -> ``index.html``), or None.

    ``mount`` is the path of the configured base URL: a proxy may pass it on
    (``/news/feeds/all.rss``) or strip it (``/feeds/all.rss``); both work.
    """
    if mount != "/" and url_path.startswith(mount):
        url_path = url_path[len(mount) - 1 :]
    if not url_path.startswith("/"):
        return None
    rel = url_path[1:]
    return rel or INDEX


@dataclass(frozen=True, slots=True)
class Route:
    """One row of the routing table: which tree paths it answers, and how."""

    name: str
    matches: Callable[[str], bool]
    answer: Handler


def tree_routes(site: PublishedSite, health: Health, clock: Clock = system_clock) -> tuple[Route, ...]:
    """The routes of ``feeds serve``, in the order they are tried."""

    async def health_answer(rel: str, scope: Scope, head: bool) -> Answer:
        status, body = await asyncio.to_thread(health)
        return json_answer(status, body, head=head)

    async def tree_answer(rel: str, scope: Scope, head: bool) -> Answer:
        resource = site.resource(rel)
        if resource is None:  # not a site or feed file: an item page, maybe not rendered yet
            if not site.knows_page(rel):
                return not_found(head)
            resource = site.cached_page(rel)
            if resource is None:
                # A page not yet cached is read from the store: keep the event loop free.
                try:
                    resource = await asyncio.to_thread(site.item_page, rel)
                except FeedsError as e:
                    log.error("%s: %s", scope["path"], e)
                    return store_unavailable(head)
            if resource is None:
                return not_found(head)
        return respond_with(resource, scope["headers"], head, clock)

    async def rendered(work: Callable[[], Resource | Answer], scope: Scope, head: bool) -> Answer:
        """An answer rendered for this request, off the event loop."""
        try:
            found = await asyncio.to_thread(work)
        except FeedsError as e:
            log.error("%s: %s", scope["path"], e)
            return store_unavailable(head)
        if isinstance(found, Resource):
            return respond_with(found, scope["headers"], head, clock)
        return found._replace(body=b"") if head else found

    async def feed_answer(rel: str, scope: Scope, head: bool) -> Answer:
        query = scope["query_string"].decode("latin-1")
        if query:
            return await rendered(partial(filtered_feed, site, rel, query), scope, head)
        if prefers_html(header_of(scope, b"accept")):
            # A browser following a feed link gets the readable page; the URL's
            # answer depends on Accept, and says so (Vary) in both forms.
            preview = site.resource(preview_of(rel))
            if preview is not None:
                return with_vary(respond_with(preview, scope["headers"], head, clock), VARY_NEGOTIATED)
        return await tree_answer(rel, scope, head)

    async def search(rel: str, scope: Scope, head: bool) -> Answer:
        query = scope["query_string"].decode("latin-1")
        return await rendered(partial(search_answer, site, rel, query), scope, head)

    async def section_page(rel: str, scope: Scope, head: bool) -> Answer:
        numbered = section_page_path(rel, scope["query_string"].decode("latin-1"))
        return await tree_answer(numbered, scope, head) if numbered is not None else not_found(head)

    return (
        Route("health", lambda rel: rel == HEALTH_PATH, health_answer),
        Route("search", lambda rel: rel in SEARCH_PATHS, search),
        Route("feed", is_feed_path, feed_answer),
        Route("section page", lambda rel: rel.startswith("sections/"), section_page),
        Route("tree", lambda rel: True, tree_answer),
    )


def header_of(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (the last, if sent twice)."""
    found = None
    for key, value in scope["headers"]:
        if key == name:
            found = value
    return found


def routed_app(routes: Sequence[Route], *, mount: str = "/") -> ASGIApp:
    """The ASGI app answering GET and HEAD by the first route that matches the path."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to do
        method = scope["method"]
        head = method == "HEAD"
        reply = None
        if method != "GET" and not head:
            reply = method_not_allowed()
        elif (rel := tree_path(scope["path"], mount)) is not None:
            for route in routes:
                if route.matches(rel):
                    reply = await route.answer(rel, scope, head)
                    break
        if reply is None:
            reply = not_found(head)
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
        await send({"type": "http.response.body", "body": reply.body})
        if log.isEnabledFor(logging.DEBUG):
            log.debug('"%s %s" %d %d', method, scope["path"], reply.status, len(reply.body))

    return app


def create_app(
    site: PublishedSite, health: Health, *, mount: str = "/", clock: Clock = system_clock
) -> ASGIApp:
    """The app of ``feeds serve``: the published tree and the health check."""
    return routed_app(tree_routes(site, health, clock), mount=mount)


def respond_with(
    resource: Resource, headers: Iterable[tuple[bytes, bytes]], head: bool, clock: Clock
) -> Answer:
    """Apply the request's conditional and encoding headers to a resource.

    Several If-None-Match lines are one list (RFC 9110 5.3); several
    If-Modified-Since lines are no valid date, so the condition is ignored.
    """
    if_none_match = if_modified_since = accept_encoding = None
    dates = 0
    for name, value in headers:
        if name == b"if-none-match":
            if_none_match = value if if_none_match is None else if_none_match + b", " + value
        elif name == b"if-modified-since":
            if_modified_since = value
            dates += 1
        elif name == b"accept-encoding":
            accept_encoding = value
    return answer(
        resource,
        head=head,
        if_none_match=if_none_match,
        if_modified_since=if_modified_since if dates == 1 else None,
        accept_encoding=accept_encoding,
        now=clock,
    )


def mount_of(base_url: str) -> str:
    """The path part of the base URL, ending in ``/``."""
    path = urlsplit(base_url).path or "/"
    return path if path.endswith("/") else path + "/"


def call_app(
    app: ASGIApp, path: str, *, method: str = "GET", headers: Iterable[tuple[str, str]] = ()
) -> Answer:
    """Answer one request in-process, without a socket (``--get`` and tests)."""
    raw_path, _, query = path.partition("?")
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "http",
        "root_path": "",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": query.encode("latin-1", "replace"),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": None,
        "server": None,
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        await app(scope, receive, send)

    asyncio.run(run())
    start, body = sent[0], sent[1]
    return Answer(start["status"], list(start["headers"]), body.get("body", b""))


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, bound now so that a busy port fails before start-up work."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        raise FeedsError(f"cannot listen: {e.strerror or e}", subject=f"{host}:{port}") from e


class HttpServer:
    """uvicorn serving one app on one bound socket, in a thread of its own.

    One event loop: answers are pre-built bytes, so a request costs tens of
    microseconds of Python, and more loops in threads would only contend for
    the GIL. More worker processes would each need their own copy of the tree
    and a way to hear of every change; the scheduler and the only store
    writer live here. Past one core, serve ``--export DIR`` with nginx.
    """

    def __init__(self, app: ASGIApp, sock: socket.socket, limits: ConnectionLimits | None = None) -> None:
        self.socket = sock
        limits = limits or ConnectionLimits(
            header_timeout=10.0, keep_alive=5.0, max_connections=connection_cap()
        )
        self.limits = limits
        config = uvicorn.Config(
            app,
            http=guarded_protocol(limits),
            timeout_keep_alive=limits.keep_alive,  # type: ignore[arg-type]  # call_later takes a float
            loop="auto",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=1,
            backlog=2048,
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise FeedsError("the HTTP server did not start", subject=f"port {self.port}")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish in-flight requests, close connections and the socket."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.socket.close()


def format_head(reply: Answer) -> str:
    """Status line and headers as text, as ``--get`` prints them before the body."""
    lines = [f"{reply.status} {HTTPStatus(reply.status).phrase}"]
    lines.extend(f"{name.decode('latin-1')}: {value.decode('latin-1')}" for name, value in reply.headers)
    return "\n".join(lines) + "\n\n"
