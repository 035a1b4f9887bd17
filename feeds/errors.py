"""One error tree for the whole product.

Foreign exceptions (OSError, sqlite3, requests, tomllib, ...) are wrapped once,
at the adapter that met them, with ``raise ... from e``. Every error names the
thing it is about (a file, a config key, a source) so that one line is enough
to tell the user what went wrong.
"""

from __future__ import annotations


class FeedsError(Exception):
    """Base of every error this product raises on purpose."""

    def __init__(self, message: str, *, subject: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.subject = subject  # the file, key or source the error is about

    def __str__(self) -> str:
        if self.subject:
            return f"{self.subject}: {self.message}"
        return self.message


class ConfigError(FeedsError):
    """The configuration file is missing, unreadable or has a bad key/value."""


class SeedError(FeedsError):
    """A seed file could not be read or decoded."""


class StoreError(FeedsError):
    """The SQLite store could not be opened, migrated, read or written."""


class ExportError(FeedsError):
    """The output tree could not be written."""


class QueryError(FeedsError):
    """A request's query string asks for something the product does not offer
    (an unknown parameter, a bad ``limit``): the HTTP answer is 400."""


class SourceError(FeedsError):
    """A remote source failed: fetch, HTTP status or parse."""

    def __init__(self, message: str, *, subject: str | None = None, status: int | None = None) -> None:
        super().__init__(message, subject=subject)
        self.status = status


class FetchError(SourceError):
    """The remote feed could not be fetched (network, timeout, size, HTTP status)."""


class ParseError(SourceError):
    """The remote feed's body held no usable feed."""


class GoneError(FetchError):
    """The remote feed answered 410 Gone: the source is disabled, polling stops."""


class RetryLaterError(FetchError):
    """The remote feed answered 429 or 503; ``retry_after`` is its Retry-After value, if any."""

    def __init__(
        self,
        message: str,
        *,
        subject: str | None = None,
        status: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message, subject=subject, status=status)
        self.retry_after = retry_after


class BrokerError(FeedsError):
    """The cluster's broker (Redis, ``[cluster] broker``) could not be reached or failed a call."""
