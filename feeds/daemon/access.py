"""Around the HTTP app: /metrics, request counts by route, and the access log.

``instrument`` wraps the ASGI app of ``feeds.daemon.web``: it answers
``/metrics`` itself, counts every request by route and status, and with
the access log on writes one line per request with the client address,
method, path, status, bytes sent, duration and user agent (also as
``extra=`` fields, which ``--log-format json`` turns into keys). Routes,
not paths, label the counter, so a crawler asking for a million paths
makes one ``other`` series, not a million.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from feeds.daemon.metrics import CONTENT_TYPE, Metrics
from feeds.daemon.web import ASGIApp, Message, Receive, Scope, Send, tree_path
from feeds.publish.resources import Answer, method_not_allowed

log = logging.getLogger("feeds.http.access")

METRICS_PATH = "metrics"
_ROUTES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda rel: rel.startswith("feeds/"), "feed"),
    (lambda rel: rel.startswith("items/"), "page"),
    (lambda rel: rel == "index.html", "index"),
    (lambda rel: rel == "opml.xml", "opml"),
    (lambda rel: rel == "healthz", "healthz"),
    (lambda rel: rel == METRICS_PATH, "metrics"),
)


def route_of(rel: str | None) -> str:
    """The route name a tree path belongs to (``other`` for anything we do not publish)."""
    if rel is not None:
        for matches, name in _ROUTES:
            if matches(rel):
                return name
    return "other"


def metrics_answer(metrics: Metrics, head: bool) -> Answer:
    body = metrics.exposition()
    headers = [
        (b"content-type", CONTENT_TYPE.encode("ascii")),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
    return Answer(200, headers, b"" if head else body)


def instrument(app: ASGIApp, metrics: Metrics, *, mount: str = "/", access_log: bool = False) -> ASGIApp:
    """``app`` with /metrics, request counting and (``access_log``) one log line per request."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        route = route_of(tree_path(scope["path"], mount))
        sent = {"status": 0, "bytes": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        if route == "metrics":
            method = scope["method"]
            if method in ("GET", "HEAD"):
                reply = await asyncio.to_thread(metrics_answer, metrics, method == "HEAD")
            else:
                reply = method_not_allowed()
            await counting_send(
                {"type": "http.response.start", "status": reply.status, "headers": reply.headers}
            )
            await counting_send({"type": "http.response.body", "body": reply.body})
        else:
            await app(scope, receive, counting_send)
        metrics.request_served(route, sent["status"])
        if access_log:
            _log_request(scope, sent["status"], sent["bytes"], time.perf_counter() - started)

    return wrapped


def _log_request(scope: Scope, status: int, size: int, seconds: float) -> None:
    client = scope.get("client")
    address = client[0] if client else "-"
    agent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"user-agent"), "-")
    log.info(
        '%s "%s %s" %d %d %.1fms "%s"',
        address,
        scope["method"],
        scope["path"],
        status,
        size,
        seconds * 1000,
        agent,
        extra={
            "client": address,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "bytes": size,
            "duration_ms": round(seconds * 1000, 3),
            "user_agent": agent,
        },
    )
