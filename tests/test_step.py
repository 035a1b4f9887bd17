"""The pure step (fetch and prepare one source) with a small fake retriever,
and the single writer that applies its result to a real SQLite file."""

from __future__ import annotations

import pickle
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from feeds.config import Config
from feeds.errors import FetchError, GoneError, RetryLaterError
from feeds.sources.fetch import FetchRequest, FetchResult
from feeds.sources.prepare import PrepareJob, prepare_feed
from feeds.sources.step import (
    PreparedResult,
    SourceTask,
    fetch_and_prepare,
    plan_refresh,
    prepare_body,
    sniff_parser,
)
from feeds.sources.writer import SourceWriter
from store import Store
from tests.conftest import NOW
from tests.remote_helpers import REMOTE, config_with_sources

URL = "http://feeds.test/feed.xml"


class FakeRetriever:
    """URL -> a body, a 304 or an exception; records the requests it saw."""

    def __init__(self, answers: dict[str, bytes | int | Exception]) -> None:
        self.answers = answers
        self.requests: list[FetchRequest] = []

    def fetch(self, request: FetchRequest) -> FetchResult:
        self.requests.append(request)
        answer = self.answers[request.url]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return FetchResult(answer, request.url, None, None, {"etag": '"v1"'})
        return FetchResult(
            200, request.url, None, answer, {"etag": '"v1"', "content-type": "application/rss+xml"}
        )


@pytest.fixture
def sourced(project: Path) -> Config:
    return config_with_sources(project, [{"name": "gazette", "url": URL, "section": "world"}])


def task_of(config: Config, store: Store, now: datetime = NOW) -> SourceTask:
    (task,), skipped = plan_refresh(config, store.source_states(), now)
    assert skipped == []
    return task


def dump(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        tables = ("items", "origins", "sources")
        return [row for t in tables for row in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]


def test_a_prepared_result_crosses_a_process_boundary_unchanged(sourced: Config, store: Store) -> None:
    body = (REMOTE / "rss20.xml").read_bytes()
    prepared = fetch_and_prepare(task_of(sourced, store), FakeRetriever({URL: body}), NOW)
    assert prepared.status == "fetched" and prepared.entries
    assert prepared.state.etag == '"v1"' and prepared.state.next_due == NOW + timedelta(hours=1)
    assert pickle.loads(pickle.dumps(prepared)) == prepared


def test_applying_the_same_result_twice_changes_nothing(sourced: Config, store: Store) -> None:
    body = (REMOTE / "rss20.xml").read_bytes()
    prepared = fetch_and_prepare(task_of(sourced, store), FakeRetriever({URL: body}), NOW)
    writer = SourceWriter(store)
    first = writer.apply(prepared)
    assert first.status == "updated" and first.items_changed == len(prepared.entries)
    once = dump(store.path)
    again = writer.apply(prepared)
    assert (again.status, again.items_changed, again.sections) == ("unchanged", 0, frozenset())
    assert dump(store.path) == once


@pytest.mark.parametrize(
    ("answer", "status", "disabled"),
    [
        (304, "not-modified", False),
        (FetchError("HTTP 500", status=500), "error", False),
        (RetryLaterError("HTTP 429", status=429, retry_after="7200"), "error", False),
        (GoneError("HTTP 410 Gone", status=410), "disabled", True),
    ],
)
def test_failures_and_304s_are_results_with_their_new_state(
    sourced: Config, store: Store, answer: int | Exception, status: str, disabled: bool
) -> None:
    prepared = fetch_and_prepare(task_of(sourced, store), FakeRetriever({URL: answer}), NOW)
    assert (prepared.status, prepared.state.disabled, prepared.entries) == (status, disabled, ())
    if isinstance(answer, RetryLaterError):
        assert prepared.state.next_due == NOW + timedelta(seconds=7200)
    SourceWriter(store).apply(prepared)
    (state,) = store.source_states()
    assert state.last_status == (prepared.http_status) and state.disabled is disabled


def test_the_same_inputs_give_the_same_result(sourced: Config, store: Store) -> None:
    # Jitter comes from the source's name and the time, not a random draw.
    retriever = FakeRetriever({URL: FetchError("HTTP 500", status=500)})
    results: list[PreparedResult] = [fetch_and_prepare(task_of(sourced, store), retriever, NOW) for _ in "ab"]
    assert results[0] == results[1]


def test_an_unchanged_body_is_not_prepared_again(sourced: Config, store: Store) -> None:
    body = (REMOTE / "rss20.xml").read_bytes()
    retriever = FakeRetriever({URL: body})
    SourceWriter(store).apply(fetch_and_prepare(task_of(sourced, store), retriever, NOW))
    later = NOW + timedelta(hours=2)
    again = fetch_and_prepare(task_of(sourced, store, later), retriever, later)
    assert (again.status, again.entries) == ("unchanged", ())
    assert retriever.requests[-1].etag == '"v1"'


@pytest.mark.parametrize(
    ("name", "parser"),
    [
        ("rss20.xml", "rss"),
        ("atom10.xml", "feedparser"),
        ("atom03.xml", "feedparser"),
        ("rss10.xml", "feedparser"),
        ("jsonfeed11.json", "json"),
        ("cp1252.xml", "rss"),
    ],
)
def test_the_parser_is_chosen_by_sniffing_the_body(name: str, parser: str) -> None:
    job = PrepareJob("gazette", "test.example.org,2026", URL, (REMOTE / name).read_bytes(), {})
    assert sniff_parser(job).name == parser
    assert prepare_body(job) == prepare_feed(job)  # the same records whichever parser reads it
