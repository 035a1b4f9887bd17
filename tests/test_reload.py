"""Reloading the config of a running daemon (a real `feeds serve` process): SIGHUP and `feeds reload`."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from dataclasses import replace
from pathlib import Path

from pytest_httpserver import HTTPServer

from feeds.config import SourceConfig, load_config
from feeds.daemon.reload import plan_reload
from tests.cliutil import run_feeds
from tests.remote_helpers import config_with_sources, rss
from tests.test_daemon_process import Daemon as DaemonProcess
from tests.test_daemon_process import daemons  # noqa: F401 (the fixture)

RSS = "application/rss+xml"


def wire(name: str) -> bytes:
    story = {
        "guid": f"{name}-1",
        "link": f"http://127.0.0.1/{name}/1",
        "title": f"{name.title()} wire story",
        "date": "Mon, 05 Jan 2026 08:00:00 GMT",
        "description": f"From {name}.",
    }
    return rss(f"{name.title()} wire", [story])


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return str(response.read().decode("utf-8"))


def test_sighup_picks_up_an_added_source_and_new_titles_and_survives_a_broken_edit(
    httpserver: HTTPServer,
    project: Path,
    daemons: list[DaemonProcess],  # noqa: F811 (the fixture)
) -> None:
    for name in ("one", "two"):
        httpserver.expect_request(f"/{name}.xml").respond_with_data(wire(name), content_type=RSS)
    config_with_sources(project, [{"name": "one", "url": httpserver.url_for("/one.xml"), "section": "world"}])
    daemon = DaemonProcess(project, "--port", "0")
    daemons.append(daemon)
    port = int(daemon.wait_for(r"serving http://127\.0\.0\.1:(\d+)/").group(1))
    daemon.wait_for("ready")
    pid = daemon.process.pid
    assert (project / "data" / "feeds.db.pid").read_text().strip() == str(pid)
    assert "Two wire story" not in get(port, "/feeds/world.atom")

    added = run_feeds(
        "sources", "add", httpserver.url_for("/two.xml"), "--name", "two", "--section", "world", "--no-check",
        cwd=project,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    path = project / "config.toml"
    path.write_text(path.read_text().replace('title = "World"', 'title = "World Desk"'), encoding="utf-8")
    reloaded = run_feeds("reload", cwd=project)
    assert reloaded.returncode == 0 and f"pid {pid}" in reloaded.stdout, reloaded.stderr
    daemon.wait_for(r"reload: 1 sources added, 0 removed, 0 changed \(\+two\)")
    daemon.wait_for(r"source two: updated")
    daemon.wait_for(r"publish: .*world")
    atom = get(port, "/feeds/world.atom")
    assert "Two wire story" in atom and "World Desk" in atom
    assert daemon.process.poll() is None and daemon.process.pid == pid

    good = path.read_text()
    path.write_text(good + "\n[site\n", encoding="utf-8")
    os.kill(pid, signal.SIGHUP)
    line = daemon.wait_for(r"ERROR .*reload: .*config\.toml.*; still running on the previous config")
    assert "\n" not in line.group(0)
    assert json.loads(get(port, "/healthz"))["status"] == "ok"
    assert "Two wire story" in get(port, "/feeds/world.atom")
    assert daemon.process.poll() is None

    path.write_text(good.replace('name = "one"', 'name = "one"\nenabled = false'), encoding="utf-8")
    assert run_feeds("reload", cwd=project).returncode == 0
    daemon.wait_for(r"reload: 0 sources added, 1 removed, 0 changed \(-one\)")
    assert "Traceback" not in daemon.text()
    assert len(re.findall("still running on the previous config", daemon.text())) == 1


def test_reload_without_a_running_daemon_exits_1(project: Path) -> None:
    out = run_feeds("reload", cwd=project)
    assert out.returncode == 1 and "no running daemon" in out.stderr
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "feeds.db.pid").write_text("999999999\n")
    stale = run_feeds("reload", cwd=project)
    assert stale.returncode == 1 and "has exited" in stale.stderr


def test_plan_reload_names_what_changed(project: Path) -> None:
    old = config_with_sources(
        project,
        [
            {"name": "kept", "url": "http://127.0.0.1/k"},
            {"name": "moved", "url": "http://127.0.0.1/m"},
            {"name": "gone", "url": "http://127.0.0.1/g"},
        ],
    )
    new = load_config(project / "config.toml")
    sources = (
        SourceConfig("kept", "http://127.0.0.1/k"),
        SourceConfig("moved", "http://127.0.0.1/m2"),
        SourceConfig("fresh", "http://127.0.0.1/f"),
    )
    plan = plan_reload(old, replace(new, sources=sources))
    assert (plan.added, plan.removed, plan.changed) == (("fresh",), ("gone",), ("moved",))
    assert plan.needs_restart == () and not plan.seeds_changed
