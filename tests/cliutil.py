"""Run the `feeds` command as a user would: a real process through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def feeds_command() -> list[str]:
    """The installed console script beside this Python, else `python -m feeds`."""
    script = Path(sys.executable).parent / "feeds"
    return [str(script)] if script.exists() else [sys.executable, "-m", "feeds"]


def run_feeds(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    # The developer's own FEEDS_CONFIG must not leak into a test.
    full_env = {k: v for k, v in os.environ.items() if k != "FEEDS_CONFIG"}
    full_env.update(env or {})
    return subprocess.run(
        [*feeds_command(), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
