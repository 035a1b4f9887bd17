"""The Fetcher itself against a real HTTP server on 127.0.0.1: what its
requests Session is set up to do and not to do."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests.utils
import trustme
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feeds.config import FetchConfig
from feeds.errors import FetchError
from feeds.sources.fetch import Fetcher, FetchRequest, TlsContexts

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    fetcher = Fetcher(FetchConfig(timeout=2, deadline=5))
    yield fetcher
    fetcher.close()


def get(fetcher: Fetcher, url: str, etag: str | None = None) -> tuple[int, bytes | None]:
    result = fetcher.fetch(FetchRequest("gazette", url, etag))
    return result.status, result.body


def test_cookies_a_feed_sets_are_never_sent(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    sent: list[str | None] = []

    def handler(request: Request) -> Response:
        sent.append(request.headers.get("Cookie"))
        return Response(FEED, headers={"Set-Cookie": "visitor=abc; Path=/", "ETag": '"1"'})

    httpserver.expect_request("/feed.xml").respond_with_handler(handler)
    httpserver.expect_request("/other.xml").respond_with_handler(handler)
    get(fetcher, httpserver.url_for("/feed.xml"))
    get(fetcher, httpserver.url_for("/feed.xml"), '"1"')
    get(fetcher, httpserver.url_for("/other.xml"))
    assert sent == [None, None, None]
    assert len(fetcher.session.cookies) == 0


def test_a_redirect_body_is_not_read_to_its_end(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    # requests' Session.send would read all of it (decoded) even with allow_redirects=False.
    chunk, sent = b"moved " * 10_000, [0]

    def huge() -> Iterator[bytes]:
        for _ in range(200_000_000 // len(chunk)):
            sent[0] += len(chunk)
            yield chunk

    httpserver.expect_request("/old.xml").respond_with_handler(
        lambda request: Response(huge(), status=302, headers={"Location": "/feed.xml"})
    )
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    assert get(fetcher, httpserver.url_for("/old.xml")) == (200, FEED)
    assert sent[0] < 50_000_000  # the drain limit, plus what the sockets buffered


def test_credentials_in_the_url_are_sent_as_basic_auth(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    seen: list[str | None] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("Authorization"))
        return Response(FEED)

    httpserver.expect_request("/private.xml").respond_with_handler(handler)
    httpserver.expect_request("/public.xml").respond_with_handler(handler)
    get(fetcher, httpserver.url_for("/private.xml").replace("://", "://reader:s%40cret@"))
    get(fetcher, httpserver.url_for("/public.xml"))
    assert seen == ["Basic " + base64.b64encode(b"reader:s@cret").decode(), None]


def test_no_proxy_is_honoured(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    fetcher = Fetcher(FetchConfig(timeout=2, deadline=5))
    try:
        assert get(fetcher, httpserver.url_for("/feed.xml")) == (200, FEED)
    finally:
        fetcher.close()


def test_a_proxy_that_refuses_is_a_fetch_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "")
    fetcher = Fetcher(FetchConfig(timeout=2, deadline=5))
    try:
        with pytest.raises(FetchError, match="gazette"):
            get(fetcher, "http://feeds.invalid/feed.xml")
    finally:
        fetcher.close()


def test_the_environment_is_read_once_per_origin(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    lookups: list[str] = []
    real = requests.utils.get_environ_proxies

    def counted(url: str, no_proxy: str | None = None) -> dict[str, str]:
        lookups.append(url)
        return real(url, no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counted)
    httpserver.expect_request("/a.xml").respond_with_data(FEED)
    httpserver.expect_request("/b.xml").respond_with_data(FEED)
    fetcher = Fetcher(FetchConfig(timeout=2, deadline=5))
    try:
        for path in ("/a.xml", "/b.xml", "/a.xml"):
            assert get(fetcher, httpserver.url_for(path))[0] == 200
    finally:
        fetcher.close()
    assert lookups == [httpserver.url_for("/a.xml")]


def test_keep_alive_connections_are_reused(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/feed.xml").respond_with_handler(
        lambda request: Response(status=304) if request.headers.get("If-None-Match") else Response(FEED)
    )
    url = httpserver.url_for("/feed.xml")
    get(fetcher, url)
    adapter = fetcher.session.get_adapter(url)
    pool = adapter.poolmanager.connection_from_url(url)
    for _ in range(3):
        assert get(fetcher, url, '"1"') == (304, None)
    assert pool.num_connections <= 2  # werkzeug may close after a 200; 304s keep it


# -- HTTPS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def https_server(authority: trustme.CA, *names: str) -> HTTPServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*names).configure_cert(context)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.expect_request("/feed.xml").respond_with_data(FEED)
    server.start()
    return server


@pytest.fixture
def trusted_bundle(authority: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    return bundle


def test_https_is_verified_against_the_configured_ca_bundle(
    authority: trustme.CA, trusted_bundle: Path
) -> None:
    server = https_server(authority, "127.0.0.1")
    try:
        contexts = TlsContexts()  # the process's, as HttpRetriever shares it
        fetcher = Fetcher(FetchConfig(timeout=2, deadline=5), tls=contexts)
        assert get(fetcher, server.url_for("/feed.xml")) == (200, FEED)
        fetcher.close()
        # The bundle is loaded once for the process, not parsed again for each
        # new connection (from a new Fetcher here): what the file says now is
        # not read.
        trustme.CA().cert_pem.write_to_path(str(trusted_bundle))
        again = Fetcher(FetchConfig(timeout=2, deadline=5), tls=contexts)
        assert get(again, server.url_for("/feed.xml")) == (200, FEED)
        again.close()
    finally:
        server.stop()


def test_https_from_an_unknown_authority_is_refused(trusted_bundle: Path) -> None:
    server = https_server(trustme.CA(), "127.0.0.1")
    try:
        with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
            get(Fetcher(FetchConfig(timeout=2, deadline=5)), server.url_for("/feed.xml"))
    finally:
        server.stop()


def test_https_with_a_certificate_for_another_host_is_refused(
    authority: trustme.CA, trusted_bundle: Path
) -> None:
    server = https_server(authority, "feeds.example.org")
    try:
        with pytest.raises(FetchError, match=r"(?i)hostname|doesn.t match|not valid for"):
            get(Fetcher(FetchConfig(timeout=2, deadline=5)), server.url_for("/feed.xml"))
    finally:
        server.stop()


def test_an_unreadable_ca_bundle_fails_https_naming_it_and_spares_http(
    httpserver: HTTPServer, authority: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    fetcher = Fetcher(FetchConfig(timeout=2, deadline=5))
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    assert get(fetcher, httpserver.url_for("/feed.xml")) == (200, FEED)
    server = https_server(authority, "127.0.0.1")
    try:
        with pytest.raises(FetchError, match=r"nowhere\.pem"):
            get(fetcher, server.url_for("/feed.xml"))
    finally:
        server.stop()
        fetcher.close()
