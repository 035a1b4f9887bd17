"""Parser children when their parent dies: SIGKILL of `feeds refresh` while
children are parsing leaves no traceback behind (they find the pipe broken)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.cliutil import feeds_command
from tests.remote_helpers import config_with_sources


@pytest.fixture
def farm() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def atom_feed(n: int, entries: int) -> bytes:
    # Atom goes to the parser children (plain RSS 2.0 is read in the parent).
    items = "".join(
        f"<entry><id>tag:example.org,2026:{n}/{i}</id><title>Feed {n} entry {i}</title>"
        f"<link href='http://example.org/{n}/{i}'/><updated>2026-01-01T00:00:00Z</updated>"
        f"<summary>Entry {i} of feed {n}, with some words to parse.</summary></entry>"
        for i in range(entries)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        f"<id>tag:example.org,2026:{n}</id><title>Feed {n}</title><updated>2026-01-01T00:00:00Z</updated>"
        f"{items}</feed>"
    ).encode()


def children_cpu_seconds(pid: int) -> float:
    """CPU time used so far by the direct children of ``pid`` (0 when none)."""
    total = 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    for child in children:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to see the children")
def test_children_exit_quietly_when_refresh_is_killed(farm: HTTPServer, project: Path) -> None:
    sources = []
    for n in range(24):
        farm.expect_request(f"/{n}.atom").respond_with_data(
            atom_feed(n, 1500), content_type="application/atom+xml"
        )
        sources.append({"name": f"f{n}", "url": farm.url_for(f"/{n}.atom")})
    config_with_sources(project, sources, fetch='workers = 4\ndeadline = "60s"')
    refresh = subprocess.Popen(
        [*feeds_command(), "refresh", "--all"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while children_cpu_seconds(refresh.pid) < 0.5:  # the children are busy parsing
        assert refresh.poll() is None and time.monotonic() < deadline, "no child got to work"
        time.sleep(0.02)
    refresh.kill()
    refresh.wait(10)
    _, stderr = refresh.communicate(timeout=60)  # EOF once every child has gone too
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr, stderr.decode(errors="replace")
