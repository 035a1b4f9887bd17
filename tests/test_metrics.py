"""/metrics, the access log and the base_url warning: in-process and through a real daemon."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from feeds.daemon.access import instrument, route_of
from feeds.daemon.baseurl import base_url_mismatch
from feeds.daemon.metrics import Metrics
from feeds.daemon.service import Daemon
from feeds.daemon.web import call_app, create_app
from store import Store
from tests.remote_helpers import REMOTE, SteppingClock, config_with_sources
from tests.test_daemon_process import Daemon as DaemonProcess
from tests.test_daemon_process import daemons  # noqa: F401 (the fixture)

RSS = "application/rss+xml"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_after_a_refresh_have_every_family_with_sane_values(
    httpserver: HTTPServer, project: Path
) -> None:
    httpserver.expect_request("/good.xml").respond_with_data(
        (REMOTE / "rss20.xml").read_bytes(), content_type=RSS
    )
    httpserver.expect_request("/bad.xml").respond_with_data("down", status=500)
    config = config_with_sources(
        project,
        [
            {"name": "good", "url": httpserver.url_for("/good.xml")},
            {"name": "bad", "url": httpserver.url_for("/bad.xml")},
        ],
    )
    clock = SteppingClock()
    with Store(config.store.path) as store:
        metrics = Metrics(store, lambda: config.sources)
        daemon = Daemon(store, config, clock, observer=metrics)
        daemon.start()
        app = instrument(create_app(daemon.site, daemon.health), metrics)
        assert call_app(app, "/feeds/all.atom").status == 200
        assert call_app(app, "/no/such/thing").status == 404
        reply = call_app(app, "/metrics")
        items = store.count_items()
    assert reply.status == 200
    assert dict(reply.headers)[b"content-type"].startswith(b"text/plain; version=0.0.4")
    found = samples(reply.body.decode("utf-8"))
    assert found[("feeds_source_fetches_total", (("outcome", "updated"), ("source", "good")))] == 1
    assert found[("feeds_source_fetches_total", (("outcome", "error"), ("source", "bad")))] == 1
    assert found[("feeds_source_fetch_duration_seconds_count", ())] == 2
    assert found[("feeds_items_changed_total", (("source", "good"),))] == 2
    assert found[("feeds_items", ())] == items > 2  # the seeds' items and the good source's
    last = found[("feeds_source_last_success_timestamp_seconds", (("source", "good"),))]
    assert last == clock.now.timestamp()
    assert ("feeds_source_last_success_timestamp_seconds", (("source", "bad"),)) not in found
    assert found[("feeds_publish_duration_seconds_count", ())] == 1
    assert found[("feeds_http_requests_total", (("route", "feed"), ("status", "200")))] == 1
    assert found[("feeds_http_requests_total", (("route", "other"), ("status", "404")))] == 1
    assert found[("feeds_store_size_bytes", ())] > 4096


def test_each_daemon_counts_in_its_own_registry(store: Store) -> None:
    first, second = Metrics(store, tuple), Metrics(store, tuple)
    first.request_served("feed", 200)
    assert ("feeds_http_requests_total", (("route", "feed"), ("status", "200"))) in samples(
        first.exposition().decode()
    )
    assert not any(name == "feeds_http_requests_total" for name, _ in samples(second.exposition().decode()))


def test_routes_label_requests_without_one_series_per_path() -> None:
    cases = {
        "feeds/all.atom": "feed",
        "items/x.html": "page",
        "index.html": "index",
        "opml.xml": "opml",
        "healthz": "healthz",
        "metrics": "metrics",
        "wp-login.php": "other",
        None: "other",
    }
    assert {rel: route_of(rel) for rel in cases} == cases


def test_base_url_mismatch_is_said_only_when_links_lead_elsewhere() -> None:
    assert base_url_mismatch("http://127.0.0.1:8080/", "127.0.0.1", 8080) is None
    assert base_url_mismatch("http://localhost:8080/news/", "0.0.0.0", 8080) is None
    assert base_url_mismatch("https://feeds.example.org/", "0.0.0.0", 443) is None
    message = base_url_mismatch("http://127.0.0.1:8080/", "127.0.0.1", 9001)
    assert message is not None and "127.0.0.1:9001" in message and "http://127.0.0.1:8080/" in message
    assert base_url_mismatch("https://feeds.example.org/", "127.0.0.1", 8080) is not None


def test_a_real_daemon_logs_requests_serves_metrics_and_warns_about_its_base_url(
    project: Path,
    daemons: list[DaemonProcess],  # noqa: F811 (the fixture)
) -> None:
    daemon = DaemonProcess(project, "--port", "0", "--access-log")
    daemons.append(daemon)
    port = int(daemon.wait_for(r"serving http://127\.0\.0\.1:(\d+)/").group(1))
    daemon.wait_for("ready")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/feeds/all.rss", headers={"User-Agent": "Probe/1.0"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        size = len(response.read())
    line = daemon.wait_for(r'127\.0\.0\.1 "GET /feeds/all\.rss" 200 (\d+) [\d.]+ms "Probe/1\.0"')
    assert int(line.group(1)) == size
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        found = samples(response.read().decode("utf-8"))
    assert found[("feeds_http_requests_total", (("route", "feed"), ("status", "200")))] == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert json.loads(response.read())["status"] == "ok"
    warnings = re.findall(
        r"WARNING .*point at http://127\.0\.0\.1:8080/.*serves 127\.0\.0\.1:\d+", daemon.text()
    )
    assert len(warnings) == 1
