"""config.toml -> frozen dataclasses, with one clear error per mistake.

Every key is checked: an unknown key, a wrong type or a bad value raises
``ConfigError`` naming the file, the dotted key and the problem, so the CLI can
print one line and exit 2 instead of a traceback. Relative paths are resolved
against the directory of the config file, so the program behaves the same
whatever the working directory.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feeds.decide import cron_fields, next_cron_time
from feeds.errors import ConfigError
from feeds.normalise import section_slug

CONFIG_ENV = "FEEDS_CONFIG"
DEFAULT_CONFIG_NAME = "config.toml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
# RFC 4151 taggingEntity: a domain name or email address, then a date.
_TAGGING_ENTITY = re.compile(
    r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[^@\s,]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
    r",\d{4}(?:-\d{2}(?:-\d{2})?)?$"
)
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Longer than any sane interval, backoff or cache lifetime, and small enough
# that every timer, timedelta and header built from a duration stays in range.
MAX_DURATION = 366 * 86400.0
# A cron expression that matches at all matches within a leap cycle of this.
_CRON_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC)
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SiteConfig:
    title: str = "Newsroom feeds"
    description: str = "Stories from the newsroom, by section."
    base_url: str = "http://127.0.0.1:8080/"
    language: str = "en"
    authority: str = "feeds.example.org,2026"
    author: str = "Newsroom"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: Path = Path("data/feeds.db")
    keep: float | None = None  # seconds; items older than this are deleted (None: kept forever)
    keep_tombstones: float = 30 * 86400.0  # how long a deleted item's tombstone is published


@dataclass(frozen=True, slots=True)
class SeedsConfig:
    dir: Path = Path("seeds")
    interval: float = 900.0
    max_bytes: int = 20 * 1024 * 1024  # a bigger seed file is refused by name


@dataclass(frozen=True, slots=True)
class OutputConfig:
    dir: Path = Path("public")
    items_per_feed: int = 50
    # Items per RFC 5005 archive page; changing it renumbers every archive page.
    archive_page_items: int = 100


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_age: float = 300.0  # Cache-Control max-age of feeds and pages
    header_timeout: float = 10.0  # a request's headers must arrive within this
    keep_alive: float = 5.0  # an idle keep-alive connection is closed after this


@dataclass(frozen=True, slots=True)
class FetchConfig:
    workers: int = 8
    per_host: int = 2
    timeout: float = 10.0  # connect and read timeout, each
    deadline: float = 60.0  # total time one fetch may take
    max_bytes: int = 10 * 1024 * 1024
    max_backoff: float = 86400.0
    max_entries: int = 5000  # a feed's newest entries kept; the rest dropped with a warning
    # A redirect from a public address may lead to a loopback/private one (off:
    # a public feed must not be able to point us at the intranet).
    allow_private_redirects: bool = False


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Fetch workers on other processes or machines (``feeds worker``), through
    a Redis broker. Without ``broker`` the daemon fetches in-process."""

    broker: str | None = None  # redis://host:port/db
    redeliver_after: float = 60.0  # a worker silent this long has its jobs given to another


@dataclass(frozen=True, slots=True)
class WebSubConfig:
    hubs: tuple[str, ...] = ()  # WebSub hubs advertised in every feed and pinged on change


@dataclass(frozen=True, slots=True)
class SectionConfig:
    slug: str
    title: str | None = None
    description: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    url: str
    section: str | None = None  # section slug the items go to
    categories: Mapping[str, str] = field(default_factory=dict)  # feed category -> slug
    interval: float | None = 3600.0
    cron: str | None = None
    enabled: bool = True
    include: tuple[str, ...] = ()  # words/phrases: only entries naming one are stored
    exclude: tuple[str, ...] = ()  # words/phrases: entries naming one are not stored
    max_items: int | None = None  # the most items this source gives a combined feed (all, a section)


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None = None  # the file it came from; None for built-in defaults
    site: SiteConfig = SiteConfig()
    store: StoreConfig = StoreConfig()
    seeds: SeedsConfig = SeedsConfig()
    output: OutputConfig = OutputConfig()
    server: ServerConfig = ServerConfig()
    fetch: FetchConfig = FetchConfig()
    cluster: ClusterConfig = ClusterConfig()
    websub: WebSubConfig = WebSubConfig()
    sections: Mapping[str, SectionConfig] = field(default_factory=dict)
    sources: tuple[SourceConfig, ...] = ()

    def section_for_label(self, label: str) -> str:
        """The slug an item labelled ``label`` is published under (aliases applied)."""
        slug = section_slug(label)
        for section in self.sections.values():
            if slug in section.aliases:
                return section.slug
        return slug


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 90, "90s", "15m" or "2h"')
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f'expected a duration such as 90, "90s", "15m" or "2h", got {value!r}')
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"a duration must be at most 366 days, got {value!r}")
    return seconds


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """--config wins, then $FEEDS_CONFIG, then ./config.toml; None: built-in defaults."""
    if explicit is not None:
        if not os.fspath(explicit):
            raise ConfigError("--config: the file name is empty")
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env is not None:
        if not from_env:
            raise ConfigError(f"${CONFIG_ENV}: the file name is empty")
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.exists() else None


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read and check a config file; ``None`` gives the built-in defaults."""
    if path is None:
        return _resolve_paths(Config(), Path.cwd())
    path = Path(path)
    data = _parse_toml(_read_config_bytes(path), str(path))
    config = config_from_dict(data, str(path))
    config = _replace(config, path=path)
    return _resolve_paths(config, path.resolve().parent)


def _read_config_bytes(path: Path) -> bytes:
    """The file's bytes; a FIFO or device is refused before opening, as opening one may block."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise ConfigError("not a regular file", subject=str(path))
        return path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError("config file not found", subject=str(path)) from e
    except OSError as e:
        raise ConfigError(f"cannot read config file: {e.strerror or e}", subject=str(path)) from e
    except ValueError as e:  # a NUL byte in the name
        raise ConfigError(f"not a usable file name: {e}", subject=str(path)) from e


def _parse_toml(raw: bytes, origin: str) -> dict[str, Any]:
    """Parsed TOML; a leading UTF-8 byte order mark (as some editors write) is skipped."""
    raw = raw.removeprefix(_UTF8_BOM)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"not valid UTF-8 (byte {e.start})", subject=origin) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}", subject=origin) from e
    except RecursionError as e:
        raise ConfigError("not valid TOML: arrays or tables nested too deep", subject=origin) from e


def config_from_dict(data: Mapping[str, Any], origin: str = "config") -> Config:
    """Build a Config from parsed TOML, raising ConfigError for any bad key."""
    reader = _Reader(origin)
    reader.no_unknown(
        data,
        "",
        {"site", "store", "seeds", "output", "server", "fetch", "cluster", "websub", "sections", "sources"},
    )
    site = reader.dataclass_table(
        data,
        "site",
        SiteConfig,
        {
            "title": reader.text,
            "description": reader.text,
            "base_url": reader.base_url,
            "language": reader.language,
            "authority": reader.authority,
            "author": reader.text,
        },
    )
    store = reader.dataclass_table(
        data,
        "store",
        StoreConfig,
        {"path": reader.path, "keep": reader.duration, "keep_tombstones": reader.duration},
    )
    seeds = reader.dataclass_table(
        data,
        "seeds",
        SeedsConfig,
        {
            "dir": reader.path,
            "interval": reader.duration,
            "max_bytes": reader.positive_int,
        },
    )
    output = reader.dataclass_table(
        data,
        "output",
        OutputConfig,
        {
            "dir": reader.path,
            "items_per_feed": reader.positive_int,
            "archive_page_items": reader.positive_int,
        },
    )
    server = reader.dataclass_table(
        data,
        "server",
        ServerConfig,
        {
            "host": reader.text,
            "port": reader.port,
            "max_age": reader.duration_or_zero,
            "header_timeout": reader.duration,
            "keep_alive": reader.duration,
        },
    )
    fetch = reader.dataclass_table(
        data,
        "fetch",
        FetchConfig,
        {
            "workers": reader.thread_count,
            "per_host": reader.thread_count,
            "timeout": reader.duration,
            "deadline": reader.duration,
            "max_bytes": reader.positive_int,
            "max_backoff": reader.duration,
            "max_entries": reader.positive_int,
            "allow_private_redirects": reader.boolean,
        },
    )
    cluster = reader.dataclass_table(
        data,
        "cluster",
        ClusterConfig,
        {"broker": reader.redis_url, "redeliver_after": reader.duration},
    )
    websub = reader.dataclass_table(data, "websub", WebSubConfig, {"hubs": reader.url_list})
    sections = reader.sections(data.get("sections", {}))
    sources = reader.sources(data.get("sources", []))
    return Config(
        site=site,
        store=store,
        seeds=seeds,
        output=output,
        server=server,
        fetch=fetch,
        cluster=cluster,
        websub=websub,
        sections=sections,
        sources=sources,
    )


def _replace(config: Config, **changes: Any) -> Config:
    from dataclasses import replace

    return replace(config, **changes)


def _resolve_paths(config: Config, root: Path) -> Config:
    from dataclasses import replace

    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else root / p

    return replace(
        config,
        store=replace(config.store, path=resolve(config.store.path)),
        seeds=replace(config.seeds, dir=resolve(config.seeds.dir)),
        output=replace(config.output, dir=resolve(config.output.dir)),
    )


class _Reader:
    """Checks values one key at a time; every failure names origin and key."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{key}: {problem}", subject=self.origin)

    def no_unknown(self, table: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                raise self.fail(f"{prefix}{key}", f"unknown key (expected one of: {expected})")

    def table(self, value: object, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a table, got {_type_name(value)}")
        return value

    def dataclass_table(
        self,
        data: Mapping[str, Any],
        name: str,
        cls: Any,
        checks: Mapping[str, Callable[[object, str], Any]],
    ) -> Any:
        table = self.table(data.get(name, {}), name)
        self.no_unknown(table, f"{name}.", set(checks))
        values = {key: checks[key](table[key], f"{name}.{key}") for key in table}
        return cls(**values)

    def text(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_type_name(value)}")
        if not value.strip():
            raise self.fail(key, "must not be empty")
        if "\x00" in value:
            raise self.fail(key, "must not contain a NUL character")
        return value

    def url(self, value: object, key: str) -> str:
        text = self.text(value, key).strip()
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError as e:
            raise self.fail(key, f"not a valid URL ({e}): {text!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.fail(key, f"expected an http(s) URL, got {text!r}")
        return text

    def redis_url(self, value: object, key: str) -> str:
        text = self.text(value, key).strip()
        parts = urlsplit(text)
        db = parts.path.lstrip("/")
        if parts.scheme not in ("redis", "rediss") or not parts.hostname or (db and not db.isdigit()):
            raise self.fail(key, f'expected a Redis URL such as "redis://127.0.0.1:6379/0", got {text!r}')
        try:
            parts.port  # noqa: B018 - reading it checks it
        except ValueError:
            raise self.fail(key, f"bad port in {text!r}") from None
        return text

    def url_list(self, value: object, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of URLs, got {_type_name(value)}")
        urls = tuple(self.url(v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(set(urls)) != len(urls):
            raise self.fail(key, "a URL is listed twice")
        return urls

    def base_url(self, value: object, key: str) -> str:
        text = self.url(value, key)
        return text if text.endswith("/") else text + "/"

    def language(self, value: object, key: str) -> str:
        text = self.text(value, key)
        if not re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", text):
            raise self.fail(key, f'expected a language tag such as "en" or "tr-TR", got {text!r}')
        return text

    def authority(self, value: object, key: str) -> str:
        text = self.text(value, key)
        if not _TAGGING_ENTITY.match(text):
            raise self.fail(
                key, f'expected an RFC 4151 tagging entity such as "example.org,2026", got {text!r}'
            )
        return text

    def path(self, value: object, key: str) -> Path:
        return Path(self.text(value, key))

    def positive_int(self, value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected a whole number, got {_type_name(value)}")
        if value <= 0:
            raise self.fail(key, f"must be positive, got {value}")
        return value

    def thread_count(self, value: object, key: str) -> int:
        number = self.positive_int(value, key)
        if number > 256:
            raise self.fail(key, f"expected at most 256 (each is a thread), got {number}")
        return number

    def port(self, value: object, key: str) -> int:
        number = self.positive_int(value, key)
        if number > 65535:
            raise self.fail(key, f"expected a port from 1 to 65535, got {number}")
        return number

    def duration(self, value: object, key: str) -> float:
        try:
            return parse_duration(value)
        except ValueError as e:
            raise self.fail(key, str(e)) from None

    def duration_or_zero(self, value: object, key: str) -> float:
        if value == 0 and not isinstance(value, bool):
            return 0.0
        return self.duration(value, key)

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_type_name(value)}")
        return value

    def slug(self, value: object, key: str) -> str:
        text = self.text(value, key)
        slug = section_slug(text)
        if slug == "all":
            raise self.fail(key, '"all" is the feed of every item; it cannot be a section')
        return slug

    def cron(self, value: object, key: str) -> str:
        text = self.text(value, key)
        if len(text.split()) != 5:
            raise self.fail(key, f"expected a crontab expression of 5 fields, got {text!r}")
        try:
            cron_fields(text)
        except ValueError as e:
            raise self.fail(key, f"not a valid crontab expression: {e}") from None
        try:
            next_cron_time(text, _CRON_PROBE_START)
        except ValueError:
            raise self.fail(key, f"{text!r} names no date that exists, so it would never run") from None
        return text

    def sections(self, value: object) -> dict[str, SectionConfig]:
        table = self.table(value, "sections")
        result: dict[str, SectionConfig] = {}
        for name, raw in table.items():
            key = f"sections.{name}"
            slug = self.slug(name, key)
            if slug != name:
                raise self.fail(key, f"a section key must be its slug; use [sections.{slug}]")
            entry = self.table(raw, key)
            self.no_unknown(entry, f"{key}.", {"title", "description", "aliases"})
            aliases = self.string_list(entry.get("aliases", []), f"{key}.aliases")
            result[slug] = SectionConfig(
                slug=slug,
                title=self.text(entry["title"], f"{key}.title") if "title" in entry else None,
                description=(
                    self.text(entry["description"], f"{key}.description") if "description" in entry else None
                ),
                aliases=tuple(section_slug(a) for a in aliases),
            )
        return result

    def string_list(self, value: object, key: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of strings, got {_type_name(value)}")
        return [self.text(v, f"{key}[{i}]") for i, v in enumerate(value)]

    def sources(self, value: object) -> tuple[SourceConfig, ...]:
        if not isinstance(value, list):
            raise self.fail("sources", "expected [[sources]] tables")
        seen: set[str] = set()
        result = []
        for index, raw in enumerate(value):
            source = self.source(raw, f"sources[{index}]")
            if source.name in seen:
                raise self.fail(f"sources[{index}].name", f"duplicate source name {source.name!r}")
            seen.add(source.name)
            result.append(source)
        return tuple(result)

    def source(self, raw: object, key: str) -> SourceConfig:
        entry = self.table(raw, key)
        allowed = {"name", "url", "section", "categories", "interval", "cron", "enabled"}
        allowed |= {"include", "exclude", "max_items"}
        self.no_unknown(entry, f"{key}.", allowed)
        for required in ("name", "url"):
            if required not in entry:
                raise self.fail(f"{key}.{required}", "missing (every source needs a name and a url)")
        name = self.text(entry["name"], f"{key}.name")
        if not _SOURCE_NAME.match(name):
            raise self.fail(f"{key}.name", f"use letters, digits, '.', '_' or '-', got {name!r}")
        if "interval" in entry and "cron" in entry:
            raise self.fail(f"{key}.cron", "give either interval or cron, not both")
        categories_raw = self.table(entry.get("categories", {}), f"{key}.categories")
        categories = {
            str(cat): self.slug(slug, f"{key}.categories.{cat}") for cat, slug in categories_raw.items()
        }
        cron = self.cron(entry["cron"], f"{key}.cron") if "cron" in entry else None
        interval = (
            self.duration(entry["interval"], f"{key}.interval")
            if "interval" in entry
            else (None if cron else 3600.0)
        )
        return SourceConfig(
            name=name,
            url=self.url(entry["url"], f"{key}.url"),
            section=self.slug(entry["section"], f"{key}.section") if "section" in entry else None,
            categories=categories,
            interval=interval,
            cron=cron,
            enabled=self.boolean(entry.get("enabled", True), f"{key}.enabled"),
            include=self.phrases(entry.get("include", []), f"{key}.include"),
            exclude=self.phrases(entry.get("exclude", []), f"{key}.exclude"),
            max_items=self.positive_int(entry["max_items"], f"{key}.max_items")
            if "max_items" in entry
            else None,
        )

    def phrases(self, value: object, key: str) -> tuple[str, ...]:
        """Words or phrases to match as plain text (never a pattern)."""
        found = self.string_list(value, key)
        for index, phrase in enumerate(found):
            if not re.search(r"\w", phrase):
                raise self.fail(f"{key}[{index}]", f"needs a letter or digit to match, got {phrase!r}")
        return tuple(p.strip() for p in found)


def _type_name(value: object) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)
