"""The SQLite store of items. It owns all SQL; it imports only feeds.model and feeds.errors."""

from store.db import Store

__all__ = ["Store"]
