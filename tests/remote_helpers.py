"""Helpers for the remote-source tests: a settable clock, configs with sources,
and feed documents made to order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from feeds.config import Config, load_config
from tests.conftest import CONFIG_TEXT, NOW

REMOTE = Path(__file__).resolve().parent / "data" / "remote"


@dataclass
class SteppingClock:
    """The injected clock: tests move it, nothing sleeps."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def config_with_sources(project: Path, sources: list[dict[str, object]], fetch: str = "") -> Config:
    """The test project's config plus [fetch] settings and [[sources]] tables."""
    settings = {"timeout": '"2s"', "deadline": '"5s"'}
    for line in fetch.splitlines():
        key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    lines = [CONFIG_TEXT, "[fetch]", *(f"{k} = {v}" for k, v in settings.items())]
    for source in sources:
        lines.append("[[sources]]")
        for key, value in source.items():
            lines.append(f"{key} = {_toml(value)}")
    (project / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(project / "config.toml")


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def rss(title: str, items: list[dict[str, str]], extra: str = "") -> bytes:
    """A small RSS 2.0 document; each item dict gives title, link, guid, date, description."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{title}</title><link>http://127.0.0.1/</link><description>d</description>{extra}",
    ]
    for item in items:
        parts.append("<item>")
        for tag, key in (
            ("title", "title"),
            ("link", "link"),
            ("guid", "guid"),
            ("pubDate", "date"),
            ("description", "description"),
        ):
            if key in item:
                attrs = ' isPermaLink="false"' if tag == "guid" else ""
                parts.append(f"<{tag}{attrs}>{item[key]}</{tag}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)
