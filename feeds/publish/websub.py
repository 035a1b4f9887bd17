"""WebSub publishing: after a publish, tell each hub which feed URLs changed.

A publish ping (``hub.mode=publish``, ``hub.url=<feed URL>``) is a form POST
to each configured hub, one per changed feed. Pings are queued and sent by a
worker thread, so publishing never waits for a hub: a slow, failing or
unreachable hub only delays its own pings. A ping that fails (no answer,
5xx, 429) is retried after growing delays, then given up with an error line;
a hub that refuses one (another 4xx) is not asked again for it. A feed
changed again while its ping waits is pinged once: the hub fetches the feed,
so one ping covers every change before it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from feeds.errors import FeedsError
from feeds.publish.formats import is_feed_path

log = logging.getLogger("feeds.websub")

# Seconds before each retry of a failed ping: about 45 minutes in all.
RETRY_DELAYS = (10.0, 60.0, 300.0, 900.0, 1800.0)


class Poster(Protocol):
    """Sends one form POST and returns its HTTP status (``fetch.FormPoster``)."""

    def post(self, url: str, form: Mapping[str, str]) -> int: ...


class Announcer(Protocol):
    """What a publisher tells of changed feeds (``WebSubNotifier``)."""

    def notify(self, topics: Iterable[str]) -> int: ...


def changed_feed_urls(base_url: str, paths: Iterable[str]) -> list[str]:
    """The URLs of the subscription feeds among changed tree paths: the WebSub topics."""
    return sorted(f"{base_url}{path}" for path in set(paths) if is_feed_path(path))


def publish_form(topic: str) -> dict[str, str]:
    """The body of a WebSub publish ping for one feed URL."""
    return {"hub.mode": "publish", "hub.url": topic}


def should_retry(status: int | None) -> bool:
    """Whether a failed ping may succeed later: no answer, 5xx and 429 may; other 4xx will not."""
    return status is None or status >= 500 or status == 429


def retry_delay(attempt: int, delays: Sequence[float]) -> float | None:
    """Seconds before retry number ``attempt`` (1 for the first), or None: give up."""
    return delays[attempt - 1] if 1 <= attempt <= len(delays) else None


@dataclass(order=True, slots=True)
class _Ping:
    due: float  # monotonic seconds
    seq: int
    hub: str = field(compare=False)
    topic: str = field(compare=False)
    attempt: int = field(default=0, compare=False)


class WebSubNotifier:
    """A queue of publish pings and the thread that sends them."""

    def __init__(
        self,
        hubs: Sequence[str],
        poster: Poster,
        *,
        delays: Sequence[float] = RETRY_DELAYS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hubs = tuple(hubs)
        self._poster = poster
        self._delays = tuple(delays)
        self._monotonic = monotonic
        self._queue: list[_Ping] = []
        self._waiting: set[tuple[str, str]] = set()  # (hub, topic) queued, not yet being sent
        self._sending = 0
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="websub", daemon=True)
        self._started = False

    def notify(self, topics: Iterable[str]) -> int:
        """Queue a ping to every hub for every changed feed URL; never blocks on a hub.

        Returns how many pings were queued (a topic already waiting is not queued twice).
        """
        queued = 0
        with self._wake:
            if self._closed:
                return 0
            now = self._monotonic()
            for topic in topics:
                for hub in self.hubs:
                    if (hub, topic) not in self._waiting:
                        self._waiting.add((hub, topic))
                        heapq.heappush(self._queue, _Ping(now, next(self._seq), hub, topic))
                        queued += 1
            if queued and not self._started:
                self._started = True
                self._thread.start()
            self._wake.notify_all()
        return queued

    def queued(self) -> int:
        """Pings waiting for their time (new, or failed and waiting to be retried)."""
        with self._wake:
            return len(self._queue)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued ping was sent or given up; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._waiting or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (pings still queued are dropped, with a log line)."""
        with self._wake:
            self._closed = True
            dropped = len(self._queue)
            self._wake.notify_all()
        if self._started:
            self._thread.join(timeout)
        if dropped:
            log.warning("websub: %d pings not sent: stopping", dropped)

    def _run(self) -> None:
        while True:
            with self._wake:
                ping = self._next_due()
                if ping is None:
                    return
            self._send(ping)

    def _next_due(self) -> _Ping | None:
        """The next ping whose time has come, waiting for it; None once closed."""
        while not self._closed:
            if self._queue:
                wait = self._queue[0].due - self._monotonic()
                if wait <= 0:
                    ping = heapq.heappop(self._queue)
                    # From now on a new change needs a new ping: the hub may
                    # fetch the feed before that change is published.
                    self._waiting.discard((ping.hub, ping.topic))
                    self._sending += 1
                    return ping
                self._wake.wait(wait)
            else:
                self._wake.wait()
        return None

    def _send(self, ping: _Ping) -> None:
        status: int | None = None
        try:
            status = self._poster.post(ping.hub, publish_form(ping.topic))
            problem = None if 200 <= status < 300 else f"HTTP {status}"
        except FeedsError as e:
            problem = e.message
        except Exception as e:  # a ping must never take the worker down
            problem = f"{type(e).__name__}: {e}"
        if problem is None:
            log.info("websub: hub %s: published %s", ping.hub, ping.topic)
            self._done(ping)
            return
        delay = retry_delay(ping.attempt + 1, self._delays) if should_retry(status) else None
        if delay is None:
            log.error("websub: hub %s: ping for %s failed, given up: %s", ping.hub, ping.topic, problem)
            self._done(ping)
            return
        log.warning(
            "websub: hub %s: ping for %s failed, retry in %.0fs: %s", ping.hub, ping.topic, delay, problem
        )
        with self._wake:
            if (ping.hub, ping.topic) not in self._waiting:  # else a newer ping covers this one
                ping.attempt += 1
                ping.due = self._monotonic() + delay
                self._waiting.add((ping.hub, ping.topic))
                heapq.heappush(self._queue, ping)
            self._sending -= 1
            self._wake.notify_all()

    def _done(self, ping: _Ping) -> None:
        with self._wake:
            self._sending -= 1
            self._wake.notify_all()
