"""Pure decisions: functions of records and ``now``, touching nothing else."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

from feeds.model import SourceState

# -- remote sources: when to fetch, how long to back off -------------------
#
# One policy, computed once per fetch: ``state_after_success`` and
# ``state_after_failure`` set ``next_due`` (the interval or cron time, the
# publisher's hints and skipped hours, backoff, Retry-After);
# ``refresh_action`` says whether a run fetches; ``wake_time`` is when the
# daemon's one trigger for the source fires (``next_due`` plus jitter).

# A publisher's hint (ttl, sy:, max-age) may slow us down, but not below once a day.
HINT_CAP = 86400.0
# A failing source is retried no sooner than its own interval, doubling from
# there per consecutive failure up to ``[fetch] max_backoff``; jitter adds up
# to a quarter, so failing sources do not retry in step.
BACKOFF_SPREAD = 0.25
# Daemon wake-ups are spread over a tenth of the interval, at most five
# minutes: sources added together drift apart instead of hitting the network
# at once. Cron sources share round minutes, so they are spread a little too.
MAX_JITTER = 300.0
CRON_JITTER = 30.0
_SY_PERIODS = {
    "hourly": 3600,
    "daily": 86400,
    "weekly": 7 * 86400,
    "monthly": 30 * 86400,
    "yearly": 365 * 86400,
}
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_INTERVAL = 3600.0


class Schedule(Protocol):
    """A source's own schedule (``feeds.config.SourceConfig``)."""

    @property
    def name(self) -> str: ...
    @property
    def interval(self) -> float | None: ...
    @property
    def cron(self) -> str | None: ...


def is_due(state: SourceState, now: datetime) -> bool:
    """Whether a source should be fetched now on its own schedule."""
    return not state.disabled and (state.next_due is None or state.next_due <= now)


def in_backoff(state: SourceState, now: datetime) -> bool:
    """Whether a failing source asked (or earned) a pause that has not ended."""
    return state.backoff_until is not None and state.backoff_until > now


def publisher_floor(
    ttl_minutes: int | None = None,
    update_period: str | None = None,
    update_frequency: int | None = None,
    max_age: float | None = None,
) -> float | None:
    """The shortest interval a publisher asks for, in seconds (None: no hint).

    RSS ``ttl`` is minutes; ``sy:updatePeriod``/``sy:updateFrequency`` means
    "frequency times per period". Capped at a day so one odd value cannot
    silence a source.
    """
    hints: list[float] = []
    if ttl_minutes and ttl_minutes > 0:
        hints.append(ttl_minutes * 60.0)
    period = _SY_PERIODS.get((update_period or "").strip().lower())
    if period:
        hints.append(period / max(update_frequency or 1, 1))
    if max_age and max_age > 0:
        hints.append(max_age)
    return min(max(hints), HINT_CAP) if hints else None


def skip_forward(moment: datetime, skip_hours: Iterable[int], skip_days: Iterable[str]) -> datetime:
    """The first moment at or after ``moment`` outside RSS skipHours/skipDays (UTC)."""
    hours = {h % 24 for h in skip_hours}
    days = {d.strip().lower() for d in skip_days}
    if len(hours) >= 24 or days >= set(_DAY_NAMES):
        return moment  # a publisher that skips everything is ignored
    for _ in range(24 * 8):
        utc = moment.astimezone(UTC)
        if utc.hour not in hours and _DAY_NAMES[utc.weekday()] not in days:
            return moment
        moment = utc.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return moment


def next_refresh_after(
    now: datetime,
    *,
    interval: float | None,
    cron: str | None,
    floor: float | None = None,
    skip_hours: Iterable[int] = (),
    skip_days: Iterable[str] = (),
) -> datetime:
    """When a source that was just fetched is next due: its interval or cron
    time, never sooner than the publisher's floor, outside skipped hours/days."""
    earliest = now + timedelta(seconds=floor or 0)
    if cron:
        moment = next_cron_time(cron, max(earliest, now + timedelta(seconds=1)))
    else:
        moment = max(now + timedelta(seconds=interval or DEFAULT_INTERVAL), earliest)
    return skip_forward(moment, skip_hours, skip_days)


def own_period(schedule: Schedule, now: datetime) -> float:
    """Seconds from ``now`` to the source's next regular fetch: its interval,
    or the wait until its next cron time."""
    if schedule.cron:
        return max(60.0, (next_cron_time(schedule.cron, now + timedelta(seconds=1)) - now).total_seconds())
    return schedule.interval or DEFAULT_INTERVAL


def jitter_fraction(name: str, now: datetime) -> float:
    """A draw in [0, 1) fixed by a source's name and the moment: sources that
    fail together spread out, and the same inputs give the same state."""
    digest = hashlib.blake2b(f"{name}\0{now.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def backoff_delay(failures: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures.

    ``base`` is the source's own period: a failing source is never polled
    more often than a healthy one. It doubles per further failure, up to
    ``cap`` (which never brings it below ``base``); ``jitter`` in [0, 1)
    (a draw from ``jitter_fraction``) adds up to a quarter.
    """
    exponent = min(max(failures, 1) - 1, 40)
    grown = base * 2.0**exponent * (1.0 + BACKOFF_SPREAD * jitter)
    return max(base, min(cap, grown))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A 429/503 ``Retry-After`` (seconds or an HTTP date) as seconds from
    ``now`` (0 for a date in the past); None when absent or unreadable.
    The value may be absurd (twenty digits): the caller clamps it."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text)) if len(text) <= 20 else float("inf")
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def retry_after_time(value: str | None, now: datetime, *, cap: float) -> datetime | None:
    """When a ``Retry-After`` lets us retry, clamped to [now, now + cap];
    None when absent or unreadable. Never an OverflowError."""
    seconds = retry_after_seconds(value, now)
    return None if seconds is None else now + timedelta(seconds=min(seconds, cap))


def state_for_url(state: SourceState, url: str) -> SourceState:
    """A state whose configured URL changed starts afresh (a 410 is forgotten)."""
    if state.url == url:
        return state
    return SourceState(name=state.name, url=url, title=state.title)


def state_after_failure(
    state: SourceState,
    schedule: Schedule,
    now: datetime,
    *,
    error: str,
    status: int | None,
    retry_after: str | None,
    max_backoff: float,
) -> SourceState:
    """One more consecutive failure: back off from the source's own period,
    or wait longer if the publisher's Retry-After asks (clamped to the cap,
    and the clamp named in the recorded error)."""
    failures = state.error_count + 1
    jitter = jitter_fraction(schedule.name, now)
    delay = backoff_delay(failures, base=own_period(schedule, now), cap=max_backoff, jitter=jitter)
    asked = retry_after_seconds(retry_after, now)
    if asked is not None and asked > max_backoff:
        error = f"{error} (Retry-After {retry_after!s:.40} clamped to {max_backoff:g}s)"
    if asked is not None:
        delay = max(delay, min(asked, max_backoff))
    until = now + timedelta(seconds=round(delay))  # the store keeps whole seconds of these
    return replace(
        state,
        last_attempt=now,
        last_status=status,
        last_error=error,
        error_count=failures,
        backoff_until=until,
        next_due=until,
    )


def state_after_gone(state: SourceState, now: datetime, *, error: str) -> SourceState:
    """410 Gone: the source is disabled and not polled again."""
    return replace(
        state,
        last_attempt=now,
        last_status=410,
        last_error=error,
        error_count=state.error_count + 1,
        disabled=True,
        backoff_until=None,
        next_due=None,
    )


def state_after_success(
    state: SourceState,
    schedule: Schedule,
    now: datetime,
    *,
    max_age: float | None = None,
    **changes: object,
) -> SourceState:
    """A fetch that worked (200 or 304): errors and backoff are forgotten, and
    the source is next due on its schedule, no sooner than the publisher's
    hints (ttl, sy:, ``max_age`` of Cache-Control), outside skipped hours."""
    done = replace(
        state,
        last_attempt=now,
        last_success=now,
        last_error=None,
        error_count=0,
        backoff_until=None,
        **changes,  # type: ignore[arg-type]
    )
    floors = [done.min_interval, publisher_floor(max_age=max_age)]
    next_due = next_refresh_after(
        now,
        interval=schedule.interval,
        cron=schedule.cron,
        floor=max((f for f in floors if f), default=None),
        skip_hours=done.skip_hours,
        skip_days=done.skip_days,
    )
    return replace(done, next_due=next_due)


def jitter_for(schedule: Schedule) -> float:
    """How far past its due time a source's daemon wake-up may be spread."""
    if schedule.cron:
        return CRON_JITTER
    return min((schedule.interval or DEFAULT_INTERVAL) / 10, MAX_JITTER)


def wake_time(schedule: Schedule, state: SourceState | None, now: datetime) -> datetime | None:
    """When the daemon's trigger for a source fires: now for a source never
    fetched (or overdue), else its due time (the later of ``next_due`` and
    any backoff) plus its jitter; None for a source gone (410)."""
    if state is None or state.next_due is None:
        return None if state is not None and state.disabled else now
    if state.disabled:
        return None
    due = max(state.next_due, state.backoff_until or state.next_due)
    spread = jitter_for(schedule) * jitter_fraction(schedule.name, due)
    return max(now, due + timedelta(seconds=spread))


# -- cron -------------------------------------------------------------------

_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_MONTHS = re.compile("|".join(_MONTH_NAMES))
_CRON_DAYS = re.compile("|".join(_CRON_DAY_NAMES))


def cron_fields(expression: str) -> tuple[frozenset[int], ...]:
    """The five fields of a crontab expression as sets; ValueError if malformed.

    Supports ``*``, numbers, ``a-b``, ``*/n``, ``a-b/n``, lists and month and
    day names (``jan``, ``mon-fri``); day of week 0 and 7 are Sunday.
    """
    parts = expression.lower().split()
    if len(parts) != 5:
        raise ValueError(f"expected 5 fields, got {expression!r}")
    parts[3] = _CRON_MONTHS.sub(lambda m: str(_MONTH_NAMES.index(m.group(0)) + 1), parts[3])
    parts[4] = _CRON_DAYS.sub(lambda m: str(_CRON_DAY_NAMES.index(m.group(0))), parts[4])
    fields = []
    for text, (low, high) in zip(parts, _CRON_RANGES, strict=True):
        values: set[int] = set()
        for piece in text.split(","):
            span, _, step_text = piece.partition("/")
            step = int(step_text) if step_text else 1
            if span == "*":
                start, end = low, high
            elif "-" in span:
                start, end = (int(x) for x in span.split("-", 1))
            else:
                start = end = int(span)
            if step < 1 or start < low or end > high or start > end:
                raise ValueError(f"bad cron field {text!r}")
            values.update(range(start, end + 1, step))
        fields.append(frozenset(values))
    minutes, hours, days, months, weekdays = fields
    weekdays = frozenset(d % 7 for d in weekdays)
    return minutes, hours, days, months, weekdays


def next_cron_time(expression: str, after: datetime) -> datetime:
    """The first minute at or after ``after`` (UTC) matching the expression.

    As in cron, when both day of month and day of week are restricted, either
    may match.
    """
    minutes, hours, days, months, weekdays = cron_fields(expression)
    any_day, any_weekday = len(days) == 31, len(weekdays) == 7
    start = after.astimezone(UTC)
    if start.second or start.microsecond:
        start = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.replace(hour=0, minute=0)
    for _ in range(366 * 5):
        weekday = (day.weekday() + 1) % 7  # cron counts from Sunday = 0
        day_ok = (
            day.day in days and weekday in weekdays
            if any_day or any_weekday
            else day.day in days or weekday in weekdays
        )
        if day.month in months and day_ok:
            for hour in sorted(hours):
                for minute in sorted(minutes):
                    moment = day.replace(hour=hour, minute=minute)
                    if moment >= start:
                        return moment
        day += timedelta(days=1)
    raise ValueError(f"cron expression {expression!r} never matches")


_MAX_AGE = re.compile(r"(?:^|[,\s])(?:s-)?max-age\s*=\s*\"?(\d{1,10})", re.I)


def max_age_seconds(cache_control: str | None) -> float | None:
    """``max-age`` of a Cache-Control header, in seconds (None: absent)."""
    match = _MAX_AGE.search(cache_control or "")
    return float(match.group(1)) if match else None


def refresh_action(state: SourceState, now: datetime, *, enabled: bool, mode: str) -> str:
    """What a refresh does with one source: "fetch", or why not.

    ``mode`` "due": only if due; "all" (``feeds refresh --all``, or the
    source named): due or not, but a publisher's Retry-After and a failing
    source's backoff are still honoured; "force" (``--force``) overrides those
    too. None polls a source switched off (``enabled = false``) or gone (410).
    """
    if not enabled:
        return "switched off in the config"
    if state.disabled:
        return "disabled"
    if mode == "force":
        return "fetch"
    if in_backoff(state, now):
        return f"backing off until {state.backoff_until:%Y-%m-%d %H:%M:%S}Z"
    if mode == "all" or is_due(state, now):
        return "fetch"
    return f"not due until {state.next_due:%Y-%m-%d %H:%M:%S}Z"
