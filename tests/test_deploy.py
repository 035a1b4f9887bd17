"""The files under deploy/, checked with the real tools where this machine has them:
nginx serving an exported tree with the shipped server block, systemd-analyze on the unit."""

from __future__ import annotations

import gzip
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cliutil import run_feeds
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
SYSTEM_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_block(root: Path, port: int) -> str:
    """The shipped block, listening on a free local port over ``root``."""
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert "    listen 80;\n" in text and "    root /var/lib/newsroom-feeds/public;\n" in text
    text = text.replace("    listen 80;\n", f"    listen 127.0.0.1:{port};\n")
    return text.replace("    root /var/lib/newsroom-feeds/public;\n", f"    root {root};\n")


@pytest.fixture
def exported(project: Path) -> Path:
    out = run_feeds("export", "--offline", cwd=project)
    assert out.returncode == 0, out.stderr
    return project / "public"


@pytest.fixture
def nginx(exported: Path, tmp_path: Path) -> Iterator[int]:
    """nginx in the foreground, one process, everything it writes under tmp_path; its port."""
    binary = shutil.which("nginx", path=SYSTEM_PATH)
    if binary is None:
        pytest.skip("nginx is not installed (.ci/run installs nginx-light)")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    (prefix / "server.conf").write_text(server_block(exported, port), encoding="utf-8")
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temps = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in kinds)
    (prefix / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\npid {prefix / 'nginx.pid'};\nerror_log stderr warn;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n{temps}\n    include {prefix / 'server.conf'};\n}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"nginx did not start: {process.communicate()[1]}")
                time.sleep(0.02)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_nginx_serves_the_precompressed_feeds_with_their_types_and_304s(nginx: int, exported: Path) -> None:
    feed = (exported / "feeds" / "all.atom").read_bytes()
    status, headers, body = get(nginx, "/feeds/all.atom", **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert body == (exported / "feeds" / "all.atom.gz").read_bytes()  # the file, not gzip on the fly
    assert gzip.decompress(body) == feed
    assert headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert "Accept-Encoding" in headers["vary"]

    plain = get(nginx, "/feeds/all.atom")
    assert plain[0] == 200 and "content-encoding" not in plain[1] and plain[2] == feed

    types = {
        "/feeds/world.rss": "application/rss+xml; charset=utf-8",
        "/feeds/world.json": "application/feed+json; charset=utf-8",
        "/": "text/html; charset=utf-8",
        "/opml.xml": "text/x-opml; charset=utf-8",
    }
    for path, content_type in types.items():
        answer = get(nginx, path, **{"Accept-Encoding": "gzip"})
        assert (answer[0], answer[1]["content-type"]) == (200, content_type), path

    again = get(nginx, "/feeds/all.atom", **{"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})
    assert again[0] == 304 and again[2] == b""
    since = get(nginx, "/feeds/all.atom", **{"If-Modified-Since": headers["last-modified"]})
    assert since[0] == 304
    assert get(nginx, "/feeds/.tmp-x")[0] == 404


def test_a_reexport_that_changes_nothing_keeps_nginx_validators(nginx: int, project: Path) -> None:
    _, first, _ = get(nginx, "/feeds/all.rss", **{"Accept-Encoding": "gzip"})
    assert run_feeds("export", "--offline", cwd=project).returncode == 0
    _, second, _ = get(nginx, "/feeds/all.rss", **{"Accept-Encoding": "gzip"})
    assert (second["etag"], second["last-modified"]) == (first["etag"], first["last-modified"])


def test_the_systemd_unit_is_hardened_and_verifies(tmp_path: Path) -> None:
    text = (DEPLOY / "newsroom-feeds.service").read_text(encoding="utf-8")
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=newsroom-feeds"):
        assert f"\n{setting}\n" in text
    analyze = shutil.which("systemd-analyze", path=SYSTEM_PATH)
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart exists: point it at this environment's feeds.
    feeds = Path(sys.executable).parent / "feeds"
    unit = tmp_path / "newsroom-feeds.service"
    unit.write_text(text.replace("/usr/local/bin/feeds", str(feeds)), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    problems = [line for line in result.stderr.splitlines() if unit.name in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_the_container_file_runs_unprivileged_with_a_healthcheck() -> None:
    lines = [line.strip() for line in (DEPLOY / "Containerfile").read_text(encoding="utf-8").splitlines()]
    user = next(line for line in lines if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("0", "root")
    healthcheck = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    assert "/healthz" in " ".join(lines[healthcheck : healthcheck + 3])
    assert lines.index(user) < next(i for i, line in enumerate(lines) if line.startswith("CMD "))


def test_the_crontab_line_exports_quietly() -> None:
    lines = (DEPLOY / "crontab").read_text(encoding="utf-8").splitlines()
    (entry,) = [line for line in lines if line and line[0] != "#"]
    fields = entry.split()
    assert len(fields[:5]) == 5 and fields[5] == "feeds" and fields[-1] == "export" and "--quiet" in fields
