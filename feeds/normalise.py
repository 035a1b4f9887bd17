"""Pure normalisation helpers: title folding, slugs, stable ids.

Nothing here does I/O or reads the clock. The identity of a story is its
*folded title* (``fold_title``); ids and permalink slugs are derived from it,
so they never change when the story is enriched.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

# Public: the seed reader's fast title key uses the same sets.
# Apostrophes (and look-alikes) are dropped when titles are compared: scraped
# alt text routinely loses them ("North Koreas Kim" for "North Korea's Kim").
APOSTROPHES = "'\u2018\u2019\u201b\u02bc\u02bb\u0060\u00b4\u2032"
# Double quotes are compared as one straight quote: alt text swaps curly for
# straight quotes.
DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033"
_FOLD_TABLE = str.maketrans({**dict.fromkeys(APOSTROPHES), **dict.fromkeys(DOUBLE_QUOTES, '"')})
_DROP_APOSTROPHES = str.maketrans(dict.fromkeys(APOSTROPHES))
# Characters NFKD does not split into ASCII + marks, spelled out for slugs.
_ASCII_EXTRA = str.maketrans(
    {
        "ı": "i",
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "&": " ",
    }
)
_NON_SLUG = re.compile(r"[^a-z0-9]+")
# What XML 1.0 cannot carry, even as a character reference: C0 controls but
# tab, LF and CR, lone surrogates (JSON "\ud800" decodes to one), U+FFFE and
# U+FFFF. One of them in a stored string makes lxml refuse to build a feed.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# C1 controls (U+0080-U+009F) in text are Windows-1252 bytes read as
# Latin-1: mapped to what they meant, as feedparser and HTML5 do, or dropped
# where Windows-1252 leaves the byte undefined. No text means a C1 control.
_C1 = re.compile("[\x80-\x9f]")
_WINDOWS_1252_C1 = str.maketrans(
    {chr(c): bytes([c]).decode("cp1252", "ignore") or None for c in range(0x80, 0xA0)}
)


def windows_1252_c1(text: str) -> str:
    """``text`` with C1 controls read as the Windows-1252 characters they were."""
    return text.translate(_WINDOWS_1252_C1) if _C1.search(text) else text


def has_non_xml(text: str) -> bool:
    """Whether ``text`` holds a character XML 1.0 cannot carry."""
    return _NOT_XML.search(text) is not None


def xml_chars(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (see ``_NOT_XML``)."""
    return _NOT_XML.sub("", text)


def publishable_chars(text: str) -> str:
    """Remote text as it may be stored and published: what XML cannot carry
    dropped, C1 controls read as the Windows-1252 characters they were."""
    return windows_1252_c1(xml_chars(text))


def collapse_space(text: str) -> str:
    """NFC, every run of whitespace (U+00A0 and the other Unicode spaces) to one space, trimmed."""
    # str.split() splits on exactly what \s matches (str.isspace), five times
    # faster than the regex; every remote title and summary comes through here.
    return " ".join(unicodedata.normalize("NFC", text).split())


def fold_title(title: str) -> str:
    """The identity key of a story title.

    NFC, whitespace folded, apostrophes removed, quotes unified, case folded.
    Two mentions of a story with equal folded titles are the same story.
    """
    text = collapse_space(title).translate(_FOLD_TABLE)
    return unicodedata.normalize("NFC", text.casefold())


def ascii_fold(text: str) -> str:
    """Best-effort ASCII transliteration (``TÜRKİYE`` -> ``TURKIYE``)."""
    if text.isascii():  # most titles: nothing to decompose, only "&" to space
        return text.replace("&", " ")
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_EXTRA))
    # Dropping what is left outside ASCII, in C: a character loop was a
    # fifth of a seed ingest.
    return decomposed.encode("ascii", "ignore").decode("ascii")


def slugify(text: str, max_length: int = 64) -> str:
    """Lower-case ASCII words joined by hyphens; never longer than ``max_length``."""
    # Apostrophes vanish rather than split a word: "Korea's" -> "koreas".
    slug = _NON_SLUG.sub("-", ascii_fold(text.translate(_DROP_APOSTROPHES)).lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug


def section_slug(label: str) -> str:
    """The URL slug of a section label (``ARTS & CULTURE`` -> ``arts-culture``)."""
    return slugify(label) or "section"


def key_digest(key: str) -> str:
    """A short, stable hex digest of an identity key."""
    # surrogatepass: a lone surrogate from a JSON feed must not raise here.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def seed_item_id(authority: str, key: str) -> str:
    """RFC 4151 tag URI of a seed story, from the site's tagging entity."""
    return f"tag:{authority}:item/{key_digest(key)}"


def item_slug(title: str, key: str) -> str:
    """Permalink page name: readable words plus a digest that keeps it unique."""
    words = slugify(title, max_length=60)
    digest = key_digest(key)[:8]
    return f"{words}-{digest}" if words else digest


# -- remote feed entries ----------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_ID = 1000
# A feed dated ahead would pin its entries to the top of every feed: beyond
# clock skew, a date ahead of the fetch is a wrong time zone or a scheduled
# post, and the W3C validator calls anything 10 minutes ahead implausible.
_FUTURE_SLACK = timedelta(minutes=10)
# Before feeds existed: a zero timestamp (1970-01-01), a year 1 or 1800 from a
# broken CMS. The W3C validator calls anything before 1990 implausible.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


def web_link(href: str | None, base: str | None = None) -> str | None:
    """``href`` made absolute against ``base``, if it is an http(s) URL; else None.

    Anything else (``javascript:``, ``data:``, ``file:``) is dropped: the link
    ends up as an ``href`` in our output.
    """
    if not href or not href.strip():
        return None
    href = xml_chars(href.strip())
    try:
        # An absolute http(s) link needs no joining (feeds mostly give those).
        url = urljoin(base, href) if base and not href.startswith(("http://", "https://")) else href
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.netloc:
        return None
    if _URI_CHARS.match(url) and not _STRAY_PERCENT.search(url) and url.count("#") < 2:
        return url  # nearly every link: nothing to escape
    return _as_uri(parts)


# What a URI may hold as it is (RFC 3986: unreserved, reserved but "[]", "%").
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*$")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Left as they are in a path, query or fragment; the rest is %-escaped as UTF-8.
_PART_SAFE = "-._~!$&'()*+,;=:@/?%"
# A host as a URI may name it: a registered name or an IP literal in brackets.
_URI_HOST = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])$")


def _as_uri(parts: SplitResult) -> str | None:
    """An http(s) link as a URI, the way a browser sends it: spaces, quotes and
    other characters a URI cannot hold %-escaped, a lone "%" as "%25", a
    non-ASCII host in IDNA. RSS wants a URL there, and the W3C validator calls
    an unescaped space an error in Atom too. None if the host cannot be written."""
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    if not colon or host.endswith(":") or not (port.isdigit() or not port):
        host, colon, port = hostport, "", ""
    elif not port:
        colon = ""  # "example.org:/" is "example.org/"
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not _URI_HOST.match(host):
        return None

    def escaped(part: str) -> str:
        return quote(_STRAY_PERCENT.sub("%25", part), safe=_PART_SAFE)

    netloc = escaped(userinfo) + at + host + colon + port
    fragment = escaped(parts.fragment).replace("#", "%23")
    return urlunsplit((parts.scheme, netloc, escaped(parts.path), escaped(parts.query), fragment))


def canonical_link(url: str | None) -> str | None:
    """The form of a link that two feeds citing the same story agree on.

    Scheme and host lower-cased, default port, fragment and ``utm_*``
    parameters dropped, no trailing slash. None for anything but http(s).
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        return None
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = parts.query and urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith("utm_")
        ]
    )
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), query, ""))


def remote_entry_key(guid: str | None, link: str | None, title: str, date: str | None) -> str:
    """What identifies an entry within its feed: guid/id, else link, else title + date."""
    if guid and (guid := xml_chars(guid).strip()):
        return guid[:_MAX_ID]
    if link:
        return link[:_MAX_ID]
    return "title-date:" + key_digest(f"{title}\0{date or ''}")


def remote_item_id(authority: str, source_name: str, entry_key: str) -> str:
    """The stored id of a remote entry: its own key when that is a valid URI
    for an Atom id (so Atom readers keep it), else a tag: URI scoped by the source."""
    if valid_atom_id(entry_key):
        return entry_key
    return f"tag:{authority}:source/{slugify(source_name)}/{key_digest(entry_key)}"


# RFC 3986 characters of an absolute URI (no brackets: an id needs no IP literal).
_URI_ID = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]+$")
# RFC 8141: a namespace id of 2 to 32 characters, then a non-empty specific string.
_URN = re.compile(
    r"^urn:[A-Za-z0-9][A-Za-z0-9-]{1,31}:(?:[A-Za-z0-9()+,.:=@;$_!*'-]|%[0-9A-Fa-f]{2})+$", re.I
)
_UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# RFC 4151: tag:authority,date:specific
_TAG_URI = re.compile(
    r"^tag:(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+,\d{4}(?:-\d{2}(?:-\d{2})?)?:"
    r"[A-Za-z0-9;/?:@&=+$._!~*'()%,-]*(?:#[A-Za-z0-9;/?:@&=+$._!~*'()%,-]*)?$"
)


def valid_atom_id(key: str) -> bool:
    """Whether ``key`` can be an Atom id as it is: an absolute URI, with a URN,
    a UUID URN and a tag: URI also well formed by their own RFCs, and
    http(s) with a host. Anything else (``urn:uuid:`` with no UUID, ``urn:x:1``,
    a bare "1234") would make our feeds invalid."""
    if key.startswith("title-date:") or not _URI_ID.match(key) or _STRAY_PERCENT.search(key):
        return False
    scheme = key.partition(":")[0].lower()
    if scheme == "urn":
        return bool(_UUID_URN.match(key) if key[4:9].lower() == "uuid:" else _URN.match(key))
    if scheme == "tag":
        return bool(_TAG_URI.match(key))
    if scheme in ("http", "https"):
        return bool(re.match(r"^https?://[^/]", key, re.I))
    return True


def remote_item_slug(title: str, item_id: str) -> str:
    """Slug of a remote item: unique per id, since remote titles repeat (a daily
    "Morning briefing"); a longer digest keeps 50,000 items apart."""
    words = slugify(title, max_length=60)
    digest = hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:12]
    return f"{words}-{digest}" if words else digest


def utc_from_struct(parts: tuple[int, ...] | None) -> datetime | None:
    """A UTC datetime from a ``time.struct_time``-like tuple (feedparser's dates)."""
    if not parts:
        return None
    try:
        year, month, day, hour, minute, second = parts[:6]
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def entry_published(date: datetime | None, first_seen: datetime) -> datetime:
    """An entry's publication time: its own date, else when we first saw it.

    A date more than ten minutes ahead of ``first_seen``, or before 1990, is
    not believed.
    """
    if date is None or date > first_seen + _FUTURE_SLACK or date < _EARLIEST:
        return first_seen
    return date.astimezone(UTC)
