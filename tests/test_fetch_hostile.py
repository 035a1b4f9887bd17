"""The Fetcher against hostile servers on 127.0.0.1: trickled headers, and
redirects that try to lead from a public address to an internal one.

Which addresses count as public is injected (by port: one local server plays
the public internet), and names resolve through an injected resolver, so no
test sends a byte anywhere but 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from feeds.config import FetchConfig
from feeds.errors import FetchError
from feeds.sources.fetch import Fetcher, FetchRequest, is_internal_address
from tests.hostile_server import HostileServer, hostile_server, respond
from tests.test_daemon_process import Daemon

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


class MapResolver:
    """Names to addresses from a table (a list: one answer per call, the last repeated)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        self.asked.append(host)
        answers = self.table.get(host, [host])  # a literal address resolves to itself
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(2, answer)]


@pytest.fixture
def public() -> Iterator[HostileServer]:
    with hostile_server() as server:
        yield server


def fetcher_for(public: HostileServer, resolver: MapResolver, **config: object) -> Fetcher:
    def is_internal(address: tuple[str, int]) -> bool:
        # The hostile server plays a public host; everything else is judged as in production.
        return address != ("127.0.0.1", public.port) and is_internal_address(address)

    return Fetcher(FetchConfig(timeout=2, deadline=5, **config), resolver=resolver, is_internal=is_internal)  # type: ignore[arg-type]


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 OK\r\nX-Slow: ", b"HTTP/1.1 2"])
def test_the_deadline_holds_while_the_status_line_or_headers_trickle(head: bytes) -> None:
    with hostile_server() as server:
        server.routes["/feed.xml"] = server.trickle(head, every=0.1)
        fetcher = Fetcher(FetchConfig(timeout=1, deadline=1.5))
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"took longer than 1\.5s"):
            fetcher.fetch(FetchRequest("slow", server.url("/feed.xml")))
        assert time.monotonic() - started < 4
        fetcher.close()


def test_a_redirect_from_a_public_address_to_an_internal_one_is_refused(
    public: HostileServer, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    resolver = MapResolver({"news.test": ["127.0.0.1"], "intranet.test": ["127.0.0.1"]})
    public.routes["/feed.xml"] = respond(
        302, b"", {"Location": f"http://intranet.test:{httpserver.port}/feed.xml"}
    )
    fetcher = fetcher_for(public, resolver)
    with pytest.raises(FetchError, match=r"refused a redirect from a public address to intranet\.test"):
        fetcher.fetch(FetchRequest("news", f"http://news.test:{public.port}/feed.xml"))
    assert len(httpserver.log) == 0  # not a byte reached the internal server
    fetcher.close()


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:{port}/x", "http://metadata.test/latest", "http://rebind.test:{public}/second"],
)
def test_literal_internal_addresses_and_names_that_rebind_are_refused(
    public: HostileServer, location: str
) -> None:
    # rebind.test answers the public address once, then an internal one: each
    # connection is checked with the very answer it connects to.
    resolver = MapResolver({"metadata.test": ["169.254.169.254"], "rebind.test": ["127.0.0.1", "10.0.0.7"]})
    public.routes["/first"] = respond(302, b"", {"Location": f"http://rebind.test:{public.port}/hop"})
    public.routes["/hop"] = respond(
        302, b"", {"Location": location.format(port=public.port + 1, public=public.port)}
    )
    fetcher = fetcher_for(public, resolver)
    with pytest.raises(FetchError, match="refused a redirect from a public address"):
        fetcher.fetch(FetchRequest("news", public.url("/first")))
    fetcher.close()


def test_allow_private_redirects_opts_out(public: HostileServer, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    resolver = MapResolver({"intranet.test": ["127.0.0.1"]})
    public.routes["/feed.xml"] = respond(
        302, b"", {"Location": f"http://intranet.test:{httpserver.port}/feed.xml"}
    )
    fetcher = fetcher_for(public, resolver, allow_private_redirects=True)
    result = fetcher.fetch(FetchRequest("news", public.url("/feed.xml")))
    assert (result.status, result.body) == (200, FEED)
    fetcher.close()


def test_a_configured_internal_source_may_redirect_within_the_intranet(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old.xml").respond_with_data("", status=301, headers={"Location": "/feed.xml"})
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    fetcher = Fetcher(FetchConfig(timeout=2, deadline=5))  # the real resolver and rules
    result = fetcher.fetch(FetchRequest("intranet", httpserver.url_for("/old.xml")))
    assert (result.status, result.body) == (200, FEED)
    fetcher.close()


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.1", True),
        ("172.16.5.5", True),
        ("169.254.169.254", True),
        ("0.0.0.0", True),
        ("100.64.0.1", True),
        ("::1", True),
        ("::", True),
        ("fe80::1%eth0", True),
        ("fc00::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("224.0.0.1", True),
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert is_internal_address((address, 80)) is internal


def test_serve_opens_its_port_while_a_fetch_trickles(project: Path) -> None:
    with hostile_server() as server:
        server.routes["/feed.xml"] = server.trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", every=0.2)
        with (project / "config.toml").open("a", encoding="utf-8") as config:
            url = server.url("/feed.xml")
            config.write(f'\n[fetch]\ndeadline = "60s"\n\n[[sources]]\nname = "slow"\nurl = "{url}"\n')
        daemon = Daemon(project, "--port", "0")
        try:
            daemon.wait_for(r"serving http://127\.0\.0\.1:\d+/", timeout=20)
            assert "source slow" not in daemon.text()  # the fetch is still going on
        finally:
            daemon.stop()
