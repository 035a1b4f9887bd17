"""The HTTP server, over a real socket: every header rule, 304s, gzip, HEAD, 404, 405, traversal."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from feeds.config import Config
from feeds.daemon.service import Daemon
from feeds.daemon.web import HttpServer, bind_socket, call_app, create_app, tree_path
from feeds.publish.resources import strong_etag
from store import Store
from tests.conftest import NOW

FEEDS = [
    f"/feeds/{slug}.{ext}"
    for slug in ("all", "world", "economy", "sports")
    for ext in ("rss", "atom", "json")
]
CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Served:
    port: int
    daemon: Daemon

    def request(self, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Reply:
        """One request with the path sent exactly as given (http.client does not normalise it)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            body = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
        finally:
            conn.close()

    def raw(self, request: bytes) -> bytes:
        """Bytes in, bytes out: for request lines no client library would send."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture
def served(store: Store, config: Config, clock) -> Iterator[Served]:
    daemon = Daemon(store, config, clock)
    daemon.start(sources=False)
    server = HttpServer(create_app(daemon.site, daemon.health), bind_socket("127.0.0.1", 0))
    server.start()
    try:
        yield Served(server.port, daemon)
    finally:
        server.stop()


def test_every_feed_has_its_content_type_tags_dates_and_cache_headers(served: Served, store, config) -> None:
    for path in FEEDS:
        reply = served.request(path)
        assert reply.status == 200, path
        assert reply.headers["content-type"] == CONTENT_TYPES[path.rsplit(".", 1)[1]]
        assert reply.headers["etag"] == strong_etag(reply.body).decode()
        assert not reply.headers["etag"].startswith("W/")
        assert reply.headers["cache-control"] == "public, max-age=300"
        assert reply.headers["vary"] == "Accept, Accept-Encoding"  # feed URLs also answer by Accept
        assert int(reply.headers["content-length"]) == len(reply.body)
        # When the bytes were published (the injected clock), not the newest item's date.
        assert reply.headers["last-modified"] == format_datetime(NOW, usegmt=True)


def test_pages_index_and_opml(served: Served) -> None:
    index = served.request("/")
    assert index.status == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert served.request("/index.html").body == index.body
    assert b'rel="alternate"' in index.body
    opml = served.request("/opml.xml")
    assert opml.status == 200
    assert opml.headers["content-type"] == "text/x-opml; charset=utf-8"
    page_url = json.loads(served.request("/feeds/all.json").body)["items"][0]["url"]
    page = served.request("/" + page_url.split("/", 3)[3])
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["etag"] == strong_etag(page.body).decode()
    assert "last-modified" in page.headers
    assert served.request("/" + page_url.split("/", 3)[3]).body == page.body  # cached, same bytes


def test_if_none_match_gives_304_with_the_same_validators(served: Served) -> None:
    first = served.request("/feeds/all.rss")
    etag = first.headers["etag"]
    for sent in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        reply = served.request("/feeds/all.rss", headers={"If-None-Match": sent})
        assert reply.status == 304, sent
        assert reply.body == b""
        assert reply.headers["etag"] == etag
        assert reply.headers["cache-control"] == "public, max-age=300"
        assert reply.headers["vary"] == "Accept, Accept-Encoding"
    assert served.request("/feeds/all.rss", headers={"If-None-Match": '"other"'}).status == 200


def test_if_modified_since_gives_304_unless_changed_after(served: Served) -> None:
    first = served.request("/feeds/all.atom")
    modified = parsedate_to_datetime(first.headers["last-modified"])
    later = format_datetime(modified + timedelta(hours=1), usegmt=True)
    earlier = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    same = first.headers["last-modified"]
    assert served.request("/feeds/all.atom", headers={"If-Modified-Since": same}).status == 304
    assert served.request("/feeds/all.atom", headers={"If-Modified-Since": later}).status == 304
    assert served.request("/feeds/all.atom", headers={"If-Modified-Since": earlier}).status == 200
    assert served.request("/feeds/all.atom", headers={"If-Modified-Since": "yesterday"}).status == 200
    # If-None-Match wins: a stale tag means 200 even with a fresh date.
    both = {"If-None-Match": '"stale"', "If-Modified-Since": later}
    assert served.request("/feeds/all.atom", headers=both).status == 200


def test_gzip_when_asked_with_its_own_tag(served: Served) -> None:
    plain = served.request("/feeds/all.rss")
    packed = served.request("/feeds/all.rss", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.status == 200
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    assert int(packed.headers["content-length"]) == len(packed.body) < len(plain.body)
    assert packed.headers["etag"] != plain.headers["etag"]
    assert packed.headers["vary"] == "Accept, Accept-Encoding"
    again = served.request("/feeds/all.rss", headers={"Accept-Encoding": "gzip"})
    assert again.body == packed.body and again.headers["etag"] == packed.headers["etag"]
    refused = served.request("/feeds/all.rss", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.body == plain.body
    not_modified = served.request(
        "/feeds/all.rss", headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["etag"]}
    )
    assert not_modified.status == 304 and not_modified.headers["etag"] == packed.headers["etag"]


def test_head_sends_the_headers_of_get_without_a_body(served: Served) -> None:
    for path in ("/feeds/all.rss", "/", "/opml.xml"):
        got = served.request(path)
        head = served.request(path, method="HEAD")
        assert head.status == 200
        assert head.body == b""
        for name in ("content-type", "etag", "last-modified", "content-length", "cache-control", "vary"):
            assert head.headers[name] == got.headers[name], (path, name)
    assert served.request("/nope", method="HEAD").status == 404


def test_unknown_paths_are_404_with_a_small_body(served: Served) -> None:
    for path in ("/nope", "/feeds/", "/feeds/nope.rss", "/feeds/all.xml", "/items/", "/items/nope.html"):
        reply = served.request(path)
        assert reply.status == 404, path
        assert reply.body == b"404 Not Found\n"
        assert reply.headers["content-type"] == "text/plain; charset=utf-8"


def test_other_methods_are_405_with_allow(served: Served) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        reply = served.request("/feeds/all.rss", method=method)
        assert reply.status == 405, method
        assert reply.headers["allow"] == "GET, HEAD"


def test_pages_ignore_query_strings_and_feeds_refuse_unknown_parameters(served: Served) -> None:
    assert served.request("/index.html?utm_source=reader").body == served.request("/index.html").body
    refused = served.request("/feeds/all.rss?utm_source=reader")
    assert refused.status == 400
    assert (
        refused.body
        == b"400 Bad Request: unknown parameter 'utm_source' (expected one of: limit, q, exclude)\n"
    )


TRAVERSALS = [
    "/../config.toml",
    "/feeds/../config.toml",
    "/feeds/../../config.toml",
    "/feeds/..%2f..%2fconfig.toml",
    "/%2e%2e/config.toml",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/feeds/%2e%2e/opml.xml",
    "/feeds/./all.rss",
    "/items/../config.toml",
    "/items/..%2fconfig.html",
    "/items/..%2f..%2fdata%2ffeeds.db.html",
    "/items/%2e%2e%5c%2e%2e%5cconfig.html",
    "/items/..\\..\\config.html",
    "/..\\config.toml",
    "/%5c..%5cconfig.toml",
    "/feeds/all.rss%00",
    "/feeds/all.rss%00.html",
    "/items/x%00.html",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/etc/passwd",
    "/data/feeds.db",
    "/seeds/000_1e8f96a0d2ae3308.txt",
    "/config.toml",
    "/feeds/all.rss/..",
    "/items/..%252f..%252fconfig.html",
    "/%c0%ae%c0%ae/config.toml",
    "/feeds%2fall.rss%2f..%2f..%2fconfig.toml",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_reaches_outside_the_tree(served: Served, path: str) -> None:
    reply = served.request(path)
    assert reply.status == 404
    assert reply.body == b"404 Not Found\n"


def test_raw_request_lines_with_nul_or_backslashes_are_refused(served: Served) -> None:
    for target in (b"/feeds/all.rss\x00", b"/..\\..\\config.toml", b"/feeds/../../config.toml"):
        response = served.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status = int(response.split(b" ", 2)[1])
        assert status in (400, 404), target
        assert b"[site]" not in response


def test_healthz_reports_seeds_sources_and_items(served: Served, store: Store) -> None:
    reply = served.request("/healthz")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert reply.headers["cache-control"] == "no-store"
    health = json.loads(reply.body)
    assert health["ok"] is True
    assert health["items"] == store.count_items() > 0
    assert health["seeds"]["last_scan"] == "2026-01-05T12:00:00Z"
    assert health["seeds"]["ok"] is True
    assert health["sources"] == []


def test_healthz_is_503_when_the_store_cannot_be_read(store: Store, config: Config, clock) -> None:
    daemon = Daemon(store, config, clock)
    daemon.start(sources=False)
    app = create_app(daemon.site, daemon.health)
    store.close()
    reply = call_app(app, "/healthz")
    assert reply.status == 503
    assert json.loads(reply.body)["ok"] is False
    assert call_app(app, "/feeds/all.rss").status == 200  # feeds are served from memory still


def test_tree_paths_under_a_base_url_path() -> None:
    assert tree_path("/") == "index.html"
    assert tree_path("/feeds/all.rss") == "feeds/all.rss"
    assert tree_path("/news/feeds/all.rss", "/news/") == "feeds/all.rss"
    assert tree_path("/news/", "/news/") == "index.html"
    assert tree_path("/feeds/all.rss", "/news/") == "feeds/all.rss"
    assert tree_path("feeds/all.rss") is None


def test_in_process_and_socket_answers_are_the_same(served: Served) -> None:
    app = create_app(served.daemon.site, served.daemon.health)
    for path in ("/feeds/all.atom", "/opml.xml", "/nope"):
        local = call_app(app, path)
        remote = served.request(path)
        assert (local.status, local.body) == (remote.status, remote.body)
