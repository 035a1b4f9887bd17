"""What a config reload changes: a pure comparison of the old and the new config.

SIGHUP (or `feeds reload`) re-reads config.toml. Sources added, removed or
changed get their jobs added, dropped or replaced; everything published is
rebuilt with the new titles and descriptions. A few settings belong to the
process itself (where it listens and stores, its fetch pool, the cluster
broker): those are named in the log as needing a restart, and keep their
old values until then.
"""

from __future__ import annotations

from dataclasses import dataclass

from feeds.config import Config, SourceConfig


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """The difference between two configs, as the daemon acts on it."""

    added: tuple[str, ...]  # enabled now, not before (new, or switched on)
    removed: tuple[str, ...]  # enabled before, not now (gone, or switched off)
    changed: tuple[str, ...]  # enabled in both, with another URL, section or schedule
    seeds_changed: bool  # the seeds dir or its rescan interval
    needs_restart: tuple[str, ...]  # tables whose changes only a restart applies

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} sources added",
            f"{len(self.removed)} removed",
            f"{len(self.changed)} changed",
        ]
        named = (
            [f"+{n}" for n in self.added] + [f"-{n}" for n in self.removed] + [f"~{n}" for n in self.changed]
        )
        return ", ".join(parts) + (f" ({' '.join(named)})" if named else "")


def _enabled(config: Config) -> dict[str, SourceConfig]:
    return {s.name: s for s in config.sources if s.enabled}


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Which source jobs to add, drop and replace, and what waits for a restart."""
    before, after = _enabled(old), _enabled(new)
    restart = [
        name
        for name, a, b in (
            ("[store]", old.store, new.store),
            ("[server] host/port", (old.server.host, old.server.port), (new.server.host, new.server.port)),
            ("[fetch]", old.fetch, new.fetch),
            ("[cluster]", getattr(old, "cluster", None), getattr(new, "cluster", None)),
        )
        if a != b
    ]
    return ReloadPlan(
        added=tuple(n for n in after if n not in before),
        removed=tuple(n for n in before if n not in after),
        changed=tuple(n for n in after if n in before and after[n] != before[n]),
        seeds_changed=old.seeds != new.seeds,
        needs_restart=tuple(restart),
    )
