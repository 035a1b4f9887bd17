"""The command line: one click group, a module per family of commands."""

from feeds.cli.main import main

__all__ = ["main"]
