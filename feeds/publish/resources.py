"""Published bytes as HTTP resources, and the pure rules for answering a request.

A ``Resource`` is made once per change of its bytes: the body, its gzip form,
a strong ETag of each, and every header line pre-encoded. Answering a request
is then a dictionary lookup and a choice between pre-built answers, which is
what lets one Python process serve a feed nearly as fast as nginx serves the
file. Nothing here touches a socket, a clock or the store.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import NamedTuple

Headers = list[tuple[bytes, bytes]]

ALLOWED_METHODS = b"GET, HEAD"
VARY_ENCODING = b"Accept-Encoding"
VARY_NEGOTIATED = b"Accept, Accept-Encoding"
# What a feed reader asks for; a browser asks for text/html before all of them.
FEED_MEDIA_TYPES = (b"application/rss+xml", b"application/atom+xml", b"application/feed+json")
# Below this size gzip saves nothing worth a header (and may grow the body).
_GZIP_MIN_BYTES = 256


class Answer(NamedTuple):
    """What to send: status, header lines and body (empty for HEAD and 304)."""

    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class Resource:
    """One published file, ready to be sent in any of its forms."""

    body: bytes
    gzipped: bytes | None  # None when gzip would not help
    etag: bytes  # strong, quoted, from the bytes
    gzip_etag: bytes  # the gzip form is another representation: another tag
    last_modified: datetime
    last_modified_text: bytes
    full: Headers  # 200 headers of the identity body
    full_gzip: Headers  # 200 headers of the gzip body
    not_modified: Headers  # 304 headers (identity)
    not_modified_gzip: Headers


def strong_etag(data: bytes, suffix: str = "") -> bytes:
    """A strong validator: the same bytes always give the same tag, across restarts."""
    return f'"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"'.encode("ascii")


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def make_resource(
    body: bytes, content_type: str, last_modified: datetime, max_age: int, *, vary: bytes = VARY_ENCODING
) -> Resource:
    """Build every form of a resource once: gzip, tags and header lines.

    ``vary`` names the request headers the answer at this URL depends on:
    feed URLs also answer by ``Accept`` (a browser gets the preview page).
    """
    # mtime=0 keeps the gzip bytes (and so their tag) a function of the body alone.
    packed = gzip.compress(body, compresslevel=9, mtime=0) if len(body) >= _GZIP_MIN_BYTES else None
    gzipped = packed if packed is not None and len(packed) < len(body) else None
    etag = strong_etag(body)
    gzip_etag = strong_etag(body, "-gz")
    modified = last_modified.astimezone(UTC).replace(microsecond=0)
    modified_text = http_date(modified).encode("ascii")
    cache = (b"cache-control", f"public, max-age={max_age}".encode("ascii"))
    varies = (b"vary", vary)
    common: Headers = [cache, (b"last-modified", modified_text), varies]
    # A 304 repeats what a cache must refresh (RFC 9110 15.4.5): ETag, Cache-Control
    # and Vary. Last-Modified is unchanged, so it is left out: every header costs here.
    revalidated: Headers = [cache, varies]
    typed = [(b"content-type", content_type.encode("ascii")), *common]
    full = [*typed, (b"etag", etag), (b"content-length", str(len(body)).encode("ascii"))]
    full_gzip = full
    if gzipped is not None:
        full_gzip = [
            *typed,
            (b"etag", gzip_etag),
            (b"content-encoding", b"gzip"),
            (b"content-length", str(len(gzipped)).encode("ascii")),
        ]
    return Resource(
        body=body,
        gzipped=gzipped,
        etag=etag,
        gzip_etag=gzip_etag,
        last_modified=modified,
        last_modified_text=modified_text,
        full=full,
        full_gzip=full_gzip,
        not_modified=[*revalidated, (b"etag", etag)],
        not_modified_gzip=[*revalidated, (b"etag", gzip_etag if gzipped is not None else etag)],
    )


def accepts_gzip(accept_encoding: bytes) -> bool:
    """Whether an Accept-Encoding value allows gzip (``gzip`` or ``*``, not with q=0)."""
    for part in accept_encoding.lower().split(b","):
        coding, _, params = part.strip().partition(b";")
        if coding.strip() in (b"gzip", b"x-gzip", b"*"):
            return not _zero_quality(params)
    return False


def _zero_quality(params: bytes) -> bool:
    for param in params.split(b";"):
        name, _, value = param.strip().partition(b"=")
        if name.strip() == b"q":
            try:
                return float(value.strip() or b"1") == 0
            except ValueError:
                return False
    return False


def etag_matches(if_none_match: bytes, resource: Resource) -> bool:
    """If-None-Match uses the weak comparison: ``W/`` is ignored, ``*`` matches.

    Either form's tag matches, since both are the same bytes: a reader that
    stored the gzip tag and now asks without gzip has nothing new to fetch.
    """
    for candidate in if_none_match.split(b","):
        tag = candidate.strip()
        if tag == b"*":
            return True
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag in (resource.etag, resource.gzip_etag):
            return True
    return False


def unmodified_since(if_modified_since: bytes, resource: Resource, now: datetime) -> bool:
    """True when the resource has not changed after the If-Modified-Since date.

    A date that cannot be read, is out of range or is later than ``now`` is
    ignored (RFC 9110 13.1.3): a client's future date could otherwise hide
    a change made between now and then.
    """
    if if_modified_since == resource.last_modified_text:
        return True  # readers echo our own date back: skip the parsing
    try:
        since = parsedate_to_datetime(if_modified_since.decode("latin-1"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return resource.last_modified <= since <= now


def answer(
    resource: Resource,
    *,
    head: bool,
    if_none_match: bytes | None,
    if_modified_since: bytes | None,
    accept_encoding: bytes | None,
    now: Callable[[], datetime],
) -> Answer:
    """The response to a GET or HEAD of ``resource`` given the request's headers.

    If-None-Match wins over If-Modified-Since when both are sent (RFC 9110 13.2.2).
    ``now`` is asked only when a date has to be compared.
    """
    use_gzip = resource.gzipped is not None and accept_encoding is not None and accepts_gzip(accept_encoding)
    if if_none_match is not None:
        fresh = etag_matches(if_none_match, resource)
    else:
        fresh = if_modified_since is not None and unmodified_since(if_modified_since, resource, now())
    if fresh:
        return Answer(304, resource.not_modified_gzip if use_gzip else resource.not_modified, b"")
    if use_gzip:
        assert resource.gzipped is not None
        return Answer(200, resource.full_gzip, b"" if head else resource.gzipped)
    return Answer(200, resource.full, b"" if head else resource.body)


def plain_answer(status: int, text: str, *, head: bool = False, extra: Headers | None = None) -> Answer:
    """A small uncached text answer (404, 405, errors)."""
    body = text.encode("utf-8")
    headers: Headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    return Answer(status, headers, b"" if head else body)


def json_answer(status: int, body: bytes, *, head: bool = False) -> Answer:
    """An uncached JSON answer (health)."""
    headers: Headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
    return Answer(status, headers, b"" if head else body)


def not_found(head: bool = False) -> Answer:
    return plain_answer(404, "404 Not Found\n", head=head)


def method_not_allowed(head: bool = False) -> Answer:
    return plain_answer(405, "405 Method Not Allowed\n", head=head, extra=[(b"allow", ALLOWED_METHODS)])


def store_unavailable(head: bool = False) -> Answer:
    """What a page the store cannot give answers: no details, the log has them."""
    return plain_answer(503, "503 Service Unavailable: the store cannot be read\n", head=head)


def _qualities(accept: bytes) -> dict[bytes, float]:
    """media range -> q of an Accept header (malformed q values count as 0)."""
    found: dict[bytes, float] = {}
    for part in accept.lower().split(b","):
        media, _, params = part.strip().partition(b";")
        q = 1.0
        for param in params.split(b";"):
            name, _, value = param.strip().partition(b"=")
            if name.strip() == b"q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if media.strip():
            found[media.strip()] = max(q, found.get(media.strip(), 0.0))
    return found


def _quality(qualities: dict[bytes, float], media_type: bytes) -> float:
    """The q a media type gets: its own range, else type/*, else */*, else 0 (RFC 9110 12.5.1)."""
    major = media_type.split(b"/", 1)[0]
    for candidate in (media_type, major + b"/*", b"*/*"):
        if candidate in qualities:
            return qualities[candidate]
    return 0.0


def prefers_html(accept: bytes | None) -> bool:
    """Whether a client ranks text/html above every feed type (browsers do, readers do not).

    Equal ranks (``*/*``, or no Accept at all) get the feed: it is what the URL names.
    """
    if not accept:
        return False
    qualities = _qualities(accept)
    html = _quality(qualities, b"text/html")
    return html > 0 and all(html > _quality(qualities, t) for t in FEED_MEDIA_TYPES)


def with_vary(reply: Answer, vary: bytes) -> Answer:
    """The same answer naming other request headers in Vary."""
    headers = [(name, vary) if name == b"vary" else (name, value) for name, value in reply.headers]
    return Answer(reply.status, headers, reply.body)


def bad_request(message: str, head: bool = False) -> Answer:
    return plain_answer(400, f"400 Bad Request: {message}\n", head=head)
