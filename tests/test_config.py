"""config.toml: every key checked, one clear line per mistake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feeds.config import config_from_dict, load_config, parse_duration
from feeds.errors import ConfigError
from tests.cliutil import run_feeds

REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_config_loads_and_resolves_paths_next_to_it() -> None:
    config = load_config(REPO / "config.toml")
    assert config.store.path == REPO / "data" / "feeds.db"
    assert config.seeds.dir == REPO / "seeds"
    assert config.output.dir == REPO / "public"
    assert config.output.items_per_feed == 50
    assert config.sources == ()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0), (1.5, 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"site": {"titel": "x"}}, "site.titel: unknown key"),
        ({"bogus": {}}, "bogus: unknown key"),
        ({"output": {"items_per_feed": "50"}}, "output.items_per_feed: expected a whole number"),
        ({"output": {"items_per_feed": 0}}, "output.items_per_feed: must be positive"),
        ({"seeds": {"interval": "soon"}}, "seeds.interval: expected a duration"),
        ({"site": {"base_url": "ftp://x"}}, "site.base_url: expected an http(s) URL"),
        ({"site": {"authority": "example.org"}}, "site.authority: expected an RFC 4151"),
        ({"server": {"port": 70000}}, "server.port: expected a port"),
        ({"sources": [{"name": "a"}]}, "sources[0].url: missing"),
        (
            {"sources": [{"name": "a", "url": "http://x/", "interval": "1h", "cron": "* * * * *"}]},
            "sources[0].cron: give either interval or cron",
        ),
        (
            {"sources": [{"name": "a", "url": "http://x/"}, {"name": "a", "url": "http://y/"}]},
            "sources[1].name: duplicate",
        ),
        ({"sections": {"World": {}}}, "a section key must be its slug"),
        ({"sections": {"world": {"colour": "red"}}}, "sections.world.colour: unknown key"),
        ({"cluster": {"brokr": "redis://h/0"}}, "cluster.brokr: unknown key"),
        ({"cluster": {"broker": "http://h:6379/0"}}, "cluster.broker: expected a Redis URL"),
        ({"cluster": {"broker": "redis://h:6379/zero"}}, "cluster.broker: expected a Redis URL"),
        ({"cluster": {"broker": "redis://h:99999/0"}}, "cluster.broker: bad port"),
        ({"cluster": {"broker": 6379}}, "cluster.broker: expected a string"),
        ({"cluster": {"redeliver_after": 0}}, "cluster.redeliver_after: a duration must be positive"),
        ({"seeds": {"interval": float("nan")}}, "seeds.interval: a duration must be positive"),
        ({"seeds": {"interval": float("inf")}}, "seeds.interval: a duration must be positive"),
        ({"fetch": {"deadline": 1e308}}, "fetch.deadline: a duration must be at most 366 days"),
        ({"fetch": {"timeout": "99999999999999999999d"}}, "fetch.timeout: a duration must be at most"),
        ({"server": {"max_age": 1e300}}, "server.max_age: a duration must be at most 366 days"),
        ({"fetch": {"workers": 10**9}}, "fetch.workers: expected at most 256"),
        (
            {"sources": [{"name": "a", "url": "http://x/", "cron": "0 0 30 2 *"}]},
            "sources[0].cron: '0 0 30 2 *' names no date that exists",
        ),
        (
            {"sources": [{"name": "a", "url": "http://[::1/x"}]},
            "sources[0].url: not a valid URL (Invalid IPv6 URL)",
        ),
        ({"sources": [{"name": "a", "url": "http://x:99999/"}]}, "sources[0].url: not a valid URL"),
        ({"store": {"path": "data/a\x00b.db"}}, "store.path: must not contain a NUL character"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, "my.toml")
    assert str(info.value).startswith("my.toml: ")
    assert message in str(info.value)


def test_aliases_map_labels_to_a_section() -> None:
    config = config_from_dict({"sections": {"turkiye": {"aliases": ["TURKEY", "Türkiye"]}}})
    assert config.section_for_label("TURKEY") == "turkiye"
    assert config.section_for_label("TÜRKİYE") == "turkiye"
    assert config.section_for_label("ARTS & CULTURE") == "arts-culture"


def test_a_leap_day_crontab_is_accepted() -> None:
    config = config_from_dict({"sources": [{"name": "a", "url": "http://x/", "cron": "0 0 29 2 *"}]})
    assert config.sources[0].cron == "0 0 29 2 *"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[site]\ntitel = 'x'\n", "site.titel: unknown key"),
        ("[output]\nitems_per_feed = 'many'\n", "output.items_per_feed: expected a whole number"),
        ("[site\n", "not valid TOML"),
        ("[seeds]\ndir = 'no-such-dir'\n", "not a readable directory"),
        ("[fetch]\ndeadline = nan\n", "fetch.deadline: a duration must be positive"),
        ("[server]\nmax_age = 1e300\n", "server.max_age: a duration must be at most 366 days"),
        ('[store]\npath = "a\\u0000b"\n', "store.path: must not contain a NUL character"),
        ("x = " + "[" * 10_000 + "]" * 10_000 + "\n", "nested too deep"),
        ("[[sources]]\nname = 'a'\nurl = 'http://[::1/x'\n", "sources[0].url: not a valid URL"),
        (
            "[[sources]]\nname = 'a'\nurl = 'http://x/'\ncron = '0 0 31 4,6 *'\n",
            "sources[0].cron: '0 0 31 4,6 *' names no date that exists",
        ),
    ],
)
def test_cli_exits_2_with_one_line(tmp_path: Path, toml: str, expected: str) -> None:
    (tmp_path / "config.toml").write_text(toml, encoding="utf-8")
    result = run_feeds("export", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "config.toml" in lines[0] or "no-such-dir" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_config_file_given_explicitly(tmp_path: Path) -> None:
    result = run_feeds("--config", str(tmp_path / "nope.toml"), "status", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.toml: config file not found" in result.stderr


def test_config_from_environment(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text("[site]\nbogus = 1\n", encoding="utf-8")
    result = run_feeds("status", cwd=tmp_path, env={"FEEDS_CONFIG": str(tmp_path / "other.toml")})
    assert result.returncode == 2
    assert "other.toml: site.bogus: unknown key" in result.stderr


def test_the_cluster_is_off_unless_a_broker_is_named() -> None:
    assert config_from_dict({}).cluster.broker is None
    cluster = config_from_dict(
        {"cluster": {"broker": "redis://10.0.0.5:6380/2", "redeliver_after": "30s"}}
    ).cluster
    assert (cluster.broker, cluster.redeliver_after) == ("redis://10.0.0.5:6380/2", 30.0)


def test_an_empty_config_name_is_refused_not_ignored(tmp_path: Path) -> None:
    result = run_feeds("--config", "", "status", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "feeds: error: --config: the file name is empty"


def test_a_fifo_as_config_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    result = run_feeds("--config", str(fifo), "status", cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == f"feeds: error: {fifo}: not a regular file"


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[site]\ntitle = 'With a BOM'\n")
    assert load_config(path).site.title == "With a BOM"
