"""One publisher: every file `feeds export` writes, `feeds serve` answers with the same bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

from pytest_httpserver import HTTPServer

from feeds.config import load_config
from feeds.daemon.service import Daemon
from feeds.daemon.web import call_app, create_app
from store import Store
from tests.cliutil import run_feeds
from tests.conftest import NOW
from tests.remote_helpers import REMOTE, config_with_sources

RSS = "application/rss+xml"


def exported(folder: Path) -> dict[str, bytes]:
    """Every file of an exported tree but the .gz beside each (checked against its file)."""
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    packed = {path: data for path, data in files.items() if path.endswith(".gz")}
    for path, data in packed.items():
        assert gzip.decompress(data) == files[path.removesuffix(".gz")], path
    return {path: data for path, data in files.items() if path not in packed}


def test_the_served_tree_is_the_exported_tree_byte_for_byte(httpserver: HTTPServer, project: Path) -> None:
    # Seed stories (with pages) and remote entries (links, provenance) in one store.
    httpserver.expect_request("/feed.xml").respond_with_data(
        (REMOTE / "rss20.xml").read_bytes(), content_type=RSS
    )
    config_with_sources(project, [{"name": "gazette", "url": httpserver.url_for("/feed.xml")}])
    result = run_feeds("export", cwd=project)
    assert result.returncode == 0, result.stderr
    files = exported(project / "public")
    assert {"index.html", "opml.xml", "feeds/all.rss", "feeds/all.atom", "feeds/all.json"} <= set(files)
    assert sum(path.startswith("items/") for path in files) == 14

    config = load_config(project / "config.toml")
    with Store(config.store.path) as store:
        daemon = Daemon(store, config, lambda: NOW)
        daemon.start(sources=False)
        app = create_app(daemon.site, daemon.health)
        for path, body in sorted(files.items()):
            reply = call_app(app, "/" + path)
            assert (reply.status, reply.body) == (200, body), path
        # Nor does the daemon publish anything the export left out.
        assert daemon.site.paths() == set(files)

    # `serve --get` through the entry point, for a sample of the tree.
    page = next(path for path in sorted(files) if path.startswith("items/"))
    for path in ("feeds/all.atom", "feeds/world.json", "index.html", "opml.xml", page):
        got = run_feeds("serve", "--get", "/" + path, cwd=project)
        assert got.returncode == 0, got.stderr
        head, _, body = got.stdout.partition("\n\n")
        assert head.startswith("200 OK\n"), path
        assert body.encode("utf-8") == files[path], path
