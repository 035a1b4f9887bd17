"""Editing config.toml in place: the only tomlkit user.

`feeds sources add/remove/enable/disable/import` change the operator's own
file, so it must come back as they wrote it: comments, blank lines, key
order and quoting kept, only the edited ``[[sources]]`` tables touched.
tomlkit round-trips a TOML document exactly; ``tomllib`` cannot write.

A changed document is written to a temporary file beside the config and
read back with ``load_config``, the very checks of start-up, before it
replaces the config by a rename. So an edit that would leave a config the
daemon refuses is never written, and a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, MutableSequence
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from feeds.config import Config, load_config
from feeds.errors import ConfigError

SOURCES = "sources"


class ConfigFile:
    """One config file's TOML document, edited in memory and saved checked."""

    def __init__(self, path: Path, document: tomlkit.TOMLDocument) -> None:
        self.path = path
        self._doc = document

    @classmethod
    def open(cls, path: Path) -> ConfigFile:
        """Read ``path``; ConfigError naming it when it is missing or not TOML."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise ConfigError("config file not found", subject=str(path)) from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file: {e}", subject=str(path)) from e
        try:
            return cls(path, tomlkit.parse(text))
        except TOMLKitError as e:
            raise ConfigError(f"not valid TOML: {e}", subject=str(path)) from e

    def source_tables(self) -> list[Mapping[str, Any]]:
        """The ``[[sources]]`` tables, in file order."""
        return list(self._sources())

    def _sources(self) -> MutableSequence[Any]:
        tables = self._doc.get(SOURCES)
        if tables is None:
            return []
        if not isinstance(tables, MutableSequence):
            raise ConfigError(f"{SOURCES}: expected [[sources]] tables", subject=str(self.path))
        return tables

    def _index_of(self, name: str) -> int:
        for index, table in enumerate(self._sources()):
            if isinstance(table, Mapping) and table.get("name") == name:
                return index
        raise KeyError(name)

    def add_source(self, fields: Mapping[str, object]) -> None:
        """Append a ``[[sources]]`` table with ``fields`` (in their order)."""
        table = tomlkit.table()
        for key, value in fields.items():
            table[key] = value
        if SOURCES not in self._doc:
            self._doc.add(tomlkit.nl())  # a blank line between what was there and the new tables
            self._doc.append(SOURCES, tomlkit.aot())
        self._sources().append(table)

    def remove_source(self, name: str) -> None:
        """Delete the table of source ``name``; KeyError if there is none."""
        del self._sources()[self._index_of(name)]
        if not self._sources():
            del self._doc[SOURCES]

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Switch source ``name`` on or off; False if it already was. KeyError if unknown.

        Enabled is the default, so enabling removes the key: disable then
        enable gives back the file as it was.
        """
        table = self._sources()[self._index_of(name)]
        if bool(table.get("enabled", True)) == enabled:
            return False
        if enabled:
            del table["enabled"]
        else:
            table["enabled"] = False
        return True

    def text(self) -> str:
        return tomlkit.dumps(self._doc)

    def save(self) -> Config:
        """Check the edited document as start-up would, then replace the file atomically."""
        fd, temp_name = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=self.path.parent)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(self.text())
            try:
                load_config(temp)
            except ConfigError as e:
                raise ConfigError(f"not saved: {e.message}", subject=str(self.path)) from e
            _copy_mode(self.path, temp)
            temp.replace(self.path)
        except OSError as e:
            raise ConfigError(f"cannot write config file: {e.strerror or e}", subject=str(self.path)) from e
        finally:
            temp.unlink(missing_ok=True)
        return load_config(self.path)  # the same config, its ``path`` naming the real file


def _copy_mode(original: Path, replacement: Path) -> None:
    """Keep the config's permissions (mkstemp makes 0600)."""
    try:
        replacement.chmod(original.stat().st_mode & 0o7777)
    except FileNotFoundError:
        replacement.chmod(0o644)
