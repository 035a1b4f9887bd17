"""The running daemon's pid, in a file beside its store, for `feeds reload`.

Beside the store because that is what one daemon owns: two daemons on two
stores never share a pid file, and `feeds reload` finds the daemon of the
config it is given without another setting. Written atomically once the
daemon is ready, removed when it stops (only if it is still ours).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from feeds.config import Config
from feeds.errors import FeedsError


def pid_path(config: Config) -> Path:
    """Where the daemon of ``config`` keeps its pid: ``<store>.pid``."""
    store = config.store.path
    return store.with_name(store.name + ".pid")


def write_pid(path: Path, pid: int) -> None:
    """Record ``pid``; FeedsError naming the file if it cannot be written."""
    try:
        fd, temp = tempfile.mkstemp(prefix=".pid-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(f"{pid}\n")
        Path(temp).replace(path)
    except OSError as e:
        raise FeedsError(f"cannot write the pid file: {e.strerror or e}", subject=str(path)) from e


def read_pid(path: Path) -> int | None:
    """The pid recorded in ``path``, or None when there is no readable one."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def remove_pid(path: Path, pid: int) -> None:
    """Remove the pid file if it still names ``pid`` (a newer daemon may have replaced it)."""
    if read_pid(path) == pid:
        path.unlink(missing_ok=True)


def is_running(pid: int) -> bool:
    """Whether a process ``pid`` exists (that we may signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; signalling it will say we may not
    return True
