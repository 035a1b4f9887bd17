"""Shared fixtures: a project folder with its own config, seeds and store."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feeds.config import Config, load_config
from store import Store

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PUBLIC_SEED = REPO / "seeds" / "000_1e8f96a0d2ae3308.txt"
NOW = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)

CONFIG_TEXT = """
[site]
title = "Test feeds"
base_url = "http://127.0.0.1:8080/"
authority = "test.example.org,2026"

[store]
path = "data/feeds.db"

[seeds]
dir = "seeds"

[output]
dir = "public"
items_per_feed = 50

[sections.world]
title = "World"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with config.toml and a seeds/ dir holding the public seed."""
    (tmp_path / "seeds").mkdir()
    shutil.copy(PUBLIC_SEED, tmp_path / "seeds" / PUBLIC_SEED.name)
    (tmp_path / "config.toml").write_text(CONFIG_TEXT, encoding="utf-8")
    return tmp_path


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config.toml")


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    s = Store(config.store.path)
    yield s
    s.close()


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return lambda: NOW


# The cluster tests' own redis-server (a fixture; tests/redisutil.py).
from tests.redisutil import redis_server  # noqa: E402, F401
