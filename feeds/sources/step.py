"""Fetch and prepare one source: the pure step of a refresh.

The API (everything here is a frozen, picklable record or a function of
records, so the step runs in a thread, a process or on another machine)::

    tasks, skipped = plan_refresh(config, states, now, names, mode="due")
    prepared = fetch_and_prepare(task, retriever, now)   # for each task
    SourceWriter(store).apply(prepared)                   # feeds.sources.writer

``fetch_and_prepare(task, retriever, now) -> PreparedResult``

- ``task`` (``SourceTask``): the source's config, its stored state and what
  filing and limits need (the site's tag authority, the section filing, the
  backoff cap).
- ``retriever`` (``Retriever``): anything with ``fetch(FetchRequest) ->
  FetchResult`` that raises ``FetchError`` (or its ``GoneError`` and
  ``RetryLaterError``) on failure; ``feeds.sources.fetch.HttpRetriever`` is
  the HTTP one; tests may pass a dict-backed fake.
- ``now``: the time the result is stamped with (state times, first sightings).

It never raises: a failing source is a ``PreparedResult`` whose ``status``
is "error" (or "disabled" for 410), with its backed-off state. Given the
same retrieval, the same inputs give the same result; jitter is drawn from
the source's name and ``now``, not from a random generator.

The result holds the source's new state and, when the body changed, its
clean entries (``RemoteEntry``); deciding which stored item each one is,
and writing, is the single writer's job (``SourceWriter.apply``), which may
run anywhere the store is.

The step is three stages, which the ``Updater`` spreads over fetch threads,
parser processes and the writer: ``retrieve`` (network; the body is kept
only if its fingerprint changed), ``prepare_body`` (CPU: parse, sanitise,
hash; ``sniff_parser`` picks the parser from the body's first bytes) and ``conclude`` (pure:
the new state and the result).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Protocol

from feeds.config import Config, SourceConfig
from feeds.decide import (
    max_age_seconds,
    publisher_floor,
    refresh_action,
    state_after_failure,
    state_after_gone,
    state_after_success,
    state_for_url,
)
from feeds.errors import FetchError, GoneError, ParseError, RetryLaterError, SourceError
from feeds.model import SourceState
from feeds.normalise import fold_title
from feeds.sources.fetch import FetchRequest, FetchResult
from feeds.sources.prepare import (
    Filing,
    ParseFailure,
    PrepareJob,
    RemoteEntry,
    RemoteFeed,
    prepare_with_feedparser,
    prepare_without_feedparser,
)

log = logging.getLogger(__name__)


RefreshMode = Literal["due", "all", "force"]


class Retriever(Protocol):
    """Gets one feed document: a 200 with its body or a 304; FetchError otherwise."""

    def fetch(self, request: FetchRequest) -> FetchResult: ...


@dataclass(frozen=True, slots=True)
class SourceTask:
    """One source to fetch: its config, its stored state and what preparing needs."""

    source: SourceConfig
    state: SourceState
    authority: str  # the site's tag: authority, part of every remote item id
    filing: Filing
    max_backoff: float
    max_entries: int = 5000

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def url(self) -> str:
        """Where to fetch: the permanent redirect's target, else the configured URL."""
        return self.state.current_url or self.state.url


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What the network gave for one task: the response without its body, or
    an error; ``job`` holds the body when it changed and must be parsed."""

    fetched: FetchResult | None = None
    error: SourceError | None = None
    fingerprint: str | None = None
    job: PrepareJob | None = None


@dataclass(frozen=True, slots=True)
class PreparedResult:
    """One source fetched and prepared, ready for the writer.

    ``status``: "fetched" (a changed body: ``entries`` to write), "unchanged"
    (the same body again), "not-modified" (304), "error", "disabled" (410).
    """

    name: str
    status: str
    state: SourceState  # to store, whatever the status
    prepared_at: datetime
    entries: tuple[RemoteEntry, ...] = ()
    http_status: int | None = None
    error: str | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A source a refresh does not fetch, and why."""

    name: str
    status: str  # "skipped", "disabled" or "error" (not in the config)
    detail: str | None = None
    error: str | None = None
    http_status: int | None = None


def filings_of(config: Config) -> dict[str, Filing]:
    """Each source's section filing: its categories map and the section labels."""
    labels = {slug: (s.title or slug.replace("-", " ")).upper() for slug, s in config.sections.items()}
    return {
        s.name: Filing(
            s.section, {fold_title(k): v for k, v in s.categories.items()}, labels, s.include, s.exclude
        )
        for s in config.sources
    }


def plan_refresh(
    config: Config,
    states: Sequence[SourceState],
    now: datetime,
    names: Sequence[str] | None = None,
    *,
    mode: RefreshMode | None = None,
) -> tuple[list[SourceTask], list[Skipped]]:
    """The sources a refresh fetches (in config order), and those it does not.

    ``mode`` (see ``decide.refresh_action``): "due", "all" or "force"; by
    default "all" for the sources named, else "due".
    """
    mode = mode or ("all" if names is not None else "due")
    by_name = {s.name: s for s in states}
    configured = {s.name for s in config.sources}
    skipped = [
        Skipped(name, "error", error=f"{name}: no such source in the config")
        for name in (names or ())
        if name not in configured
    ]
    filings = filings_of(config)
    tasks = []
    for source in config.sources:
        if names is not None and source.name not in names:
            continue
        state = state_for_url(by_name.get(source.name) or SourceState(source.name, source.url), source.url)
        action = refresh_action(state, now, enabled=source.enabled, mode=mode)
        if action == "fetch":
            fetch = config.fetch
            task = SourceTask(
                source,
                state,
                config.site.authority,
                filings[source.name],
                fetch.max_backoff,
                fetch.max_entries,
            )
            tasks.append(task)
        else:
            status = "disabled" if action == "disabled" else "skipped"
            error = state.last_error if state.disabled else None
            skipped.append(Skipped(source.name, status, action, error, state.last_status))
    return tasks, skipped


def body_fingerprint(body: bytes, source: SourceConfig) -> str:
    """Hash of a body and of what decides where its items go and which are
    kept: a new section mapping or include/exclude rule applies from the
    next fetch even when the feed did not change."""
    digest = hashlib.sha256(body)
    filing: list[object] = [source.section, sorted(source.categories.items())]
    if source.include or source.exclude:  # left out otherwise: stored hashes stay valid
        filing.append([list(source.include), list(source.exclude)])
    digest.update(json.dumps(filing).encode())
    return digest.hexdigest()


def retrieve(task: SourceTask, retriever: Retriever) -> Retrieval:
    """Fetch one task's feed; never raises. The body is kept (as a job to
    parse) only when it differs from the last one parsed."""
    state = task.state
    request = FetchRequest(task.name, task.url, state.etag, state.last_modified)
    try:
        fetched = retriever.fetch(request)
    except FetchError as e:
        return Retrieval(error=e)
    except Exception as e:  # a bug must cost one source, not the run
        log.exception("%s: fetch failed", task.name)
        return Retrieval(error=FetchError(f"internal error: {type(e).__name__}: {e}", subject=task.name))
    head = replace(fetched, body=None)  # the writer never needs the bytes
    if fetched.body is None:
        return Retrieval(head)
    fingerprint = body_fingerprint(fetched.body, task.source)
    if fingerprint == state.body_hash:
        return Retrieval(head, fingerprint=fingerprint)
    job = PrepareJob(
        task.name, task.authority, fetched.url, fetched.body, fetched.headers, task.filing, task.max_entries
    )
    return Retrieval(head, fingerprint=fingerprint, job=job)


@dataclass(frozen=True, slots=True)
class FeedParser:
    """How one kind of body is parsed: ``light`` parsers (lxml, json) are
    quick and release the GIL, so the writer may run them itself; the
    others (feedparser, pure Python) belong in a parser process."""

    name: str
    light: bool
    prepare: Callable[[PrepareJob], RemoteFeed | ParseFailure | None]


_JSON = FeedParser("json", True, prepare_without_feedparser)
_RSS = FeedParser("rss", True, prepare_without_feedparser)  # None for an unusual RSS: feedparser's
_ANY = FeedParser("feedparser", False, prepare_with_feedparser)
_RSS_ROOT = re.compile(rb"<rss[\s>]")
_SNIFF_BYTES = 4096  # a prolog, a comment or two and the root element


def sniff_parser(job: PrepareJob) -> FeedParser:
    """The parser for a body, from its first bytes (and its Content-Type):
    JSON Feed, plain RSS 2.0, else feedparser (Atom, RSS 1.0/0.9x, oddities)."""
    head = job.body[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    content_type = next((v for k, v in job.headers.items() if k.lower() == "content-type"), "")
    if head[:1] == b"{" or "json" in content_type.lower():
        return _JSON
    if _RSS_ROOT.search(head):
        return _RSS
    return _ANY


def prepare_body(job: PrepareJob) -> RemoteFeed | ParseFailure:
    """Parse, sanitise and hash a changed body with the parser its bytes call for."""
    parser = sniff_parser(job)
    return parser.prepare(job) or prepare_with_feedparser(job)


def fetch_and_prepare(task: SourceTask, retriever: Retriever, now: datetime) -> PreparedResult:
    """The whole step for one source, in the calling thread (see the module docstring)."""
    retrieval = retrieve(task, retriever)
    parsed = prepare_body(retrieval.job) if retrieval.job is not None else None
    return conclude(task, retrieval, parsed, now)


def conclude(
    task: SourceTask, retrieval: Retrieval, parsed: RemoteFeed | ParseFailure | None, now: datetime
) -> PreparedResult:
    """The source's new state and what to write, from what was fetched and parsed."""
    if retrieval.error is not None:
        return failed(task, retrieval.error, now)
    fetched = retrieval.fetched
    assert fetched is not None
    if parsed is None:
        status = "not-modified" if fetched.status == 304 else "unchanged"
        extra = {} if fetched.status == 304 else {"body_hash": retrieval.fingerprint}
        state = succeeded(task, fetched, now, **extra)
        return PreparedResult(task.name, status, state, now, http_status=fetched.status)
    if isinstance(parsed, ParseFailure):
        return failed(task, ParseError(parsed.message, subject=task.name, status=fetched.status), now)
    hints = parsed.hints
    state = succeeded(
        task,
        fetched,
        now,
        body_hash=retrieval.fingerprint,
        title=parsed.title or task.state.title,
        warning=parsed.warning,
        skip_hours=hints.skip_hours,
        skip_days=hints.skip_days,
        min_interval=publisher_floor(hints.ttl_minutes, hints.update_period, hints.update_frequency),
    )
    return PreparedResult(
        task.name,
        "fetched",
        state,
        now,
        entries=parsed.entries,
        http_status=fetched.status,
        warning=parsed.warning,
    )


def failed(task: SourceTask, error: SourceError, now: datetime) -> PreparedResult:
    """A failure's result: 410 disables the source, anything else backs off."""
    if isinstance(error, GoneError):
        state = state_after_gone(task.state, now, error=error.message)
        return PreparedResult(task.name, "disabled", state, now, http_status=error.status, error=str(error))
    retry = error.retry_after if isinstance(error, RetryLaterError) else None
    state = state_after_failure(
        task.state,
        task.source,
        now,
        error=error.message,
        status=error.status,
        retry_after=retry,
        max_backoff=task.max_backoff,
    )
    message = f"{task.name}: {state.last_error}" if state.last_error != error.message else str(error)
    return PreparedResult(task.name, "error", state, now, http_status=error.status, error=message)


def succeeded(task: SourceTask, fetched: FetchResult, now: datetime, **changes: object) -> SourceState:
    """The state after a 200 or 304, next due as ``decide`` says."""
    previous = task.state
    not_modified = fetched.status == 304
    return state_after_success(
        previous,
        task.source,
        now,
        max_age=max_age_seconds(fetched.headers.get("cache-control")),
        last_status=fetched.status,
        current_url=fetched.permanent_url or previous.current_url,
        etag=fetched.etag or (previous.etag if not_modified else None),
        last_modified=fetched.last_modified or (previous.last_modified if not_modified else None),
        **changes,
    )
