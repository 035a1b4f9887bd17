"""Line-level reading of seed files: the lines that carry text, and what each looks like.

A seed file's structure lives in its non-blank lines and in how consecutive
lines relate (a header line ends with the next line; an alt text equals the
title after it, give or take apostrophes). Blank lines only separate, so they
are folded away here; U+00A0-only lines are remembered because they close an
article body on the scraped pages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# The characters fold_title rewrites. Shared rather than copied so the fast
# key below cannot drift from it (a test checks they agree).
from feeds.normalise import APOSTROPHES, DOUBLE_QUOTES

# Invisible characters that scrapers leave behind; they would otherwise make
# two renderings of one title compare unequal.
_INVISIBLE_CHARS = "\u200b\u200c\u200d\u2060\ufeff"
_ZWJ = "\u200d"
_INVISIBLE = str.maketrans(dict.fromkeys(_INVISIBLE_CHARS.replace(_ZWJ, "")))
# A zero-width joiner between emoji (`👨\u200d👩\u200d👧`, `🏳️\u200d🌈`) is part
# of the text: without it one family emoji renders as three. Elsewhere it is
# left-over like the others.
_EMOJI_PART = "\u2190-\u2bff\ufe0f\U0001f000-\U0001faff"
_STRAY_ZWJ = re.compile(f"(?<![{_EMOJI_PART}]){_ZWJ}|{_ZWJ}(?![{_EMOJI_PART}])")
# Characters that may be, or may join, a non-NFC sequence. Latin letters up to
# U+02FF (Turkish ones included) and general punctuation are always NFC, so
# most lines skip the normalisation call.
_NFC_SUSPECT = re.compile("[^\x00-\u02ff\u2010-\u205f\u20ac]")

# `  1. Title` rows of a LATEST NEWS block (matched on the collapsed line).
_ROW = re.compile(r"(\d{1,3})[.)] (\S.*)")
# `date 2025-12-24`, optionally followed by the rest of a header prefix.
_DATE = re.compile(r"date:? ?(\d{4})-(\d{2})-(\d{2})(?: (.*))?", re.IGNORECASE)
# A rendered section label: upper-case words, `&`, a few joiners. Template
# debris (`Quark.Models....ToUpperInvariant()`) has brackets or `?` and fails.
_LABEL = re.compile(r"[^\W\d_][\w&'’./+-]*(?: [\w&'’./+-]+){0,4}")
# A dateline: a place in capitals (`SAN SALVADOR`, `GAZİ MAĞUSA`, `WASHINGTON, D.C.`).
_DATELINE = re.compile(r"[^\W\d_](?:[^\W\d_]|[ .,'’/()–—-])*")
# A byline word: a name (`Barçın`, `O’Neil`, `Jean-Paul`) or an initial (`M.`);
# lower-case words are allowed only as name particles.
_NAME_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*\.?")
_NAME_PARTICLE = re.compile(r"de|da|di|du|del|der|den|van|von|bin|ibn|al|el|la|le|y|and|&")
# Headings of listing blocks; they are never items. None is longer than this.
MAX_HEADING = 30
LIST_HEADINGS = frozenset(
    {
        "latest news",
        "recommended",
        "most read",
        "most popular",
        "popular",
        "related",
        "related news",
        "editor's picks",
        "editors' picks",
        "editor’s picks",
        "you may also like",
        "more news",
        "trending",
    }
)
# Everything but letters and digits; combining marks are not word characters.
_NOT_ALNUM = re.compile(r"[\W_]+")
# A title is never longer than this; a longer line cannot be a repeated title.
_MAX_TITLE = 300
_EDGE_PUNCT = "\"'”’»)].,:;!?…“‘«([-–—"
_CLOSERS = "\"'”’»)]"


@dataclass(frozen=True, slots=True)
class SeedLines:
    """The text-bearing lines of one seed file.

    ``texts[i]`` is line *i* with whitespace (U+00A0 too) collapsed, NFC: the
    form titles are compared and reported in. ``raws[i]`` is the same line only
    trimmed (inner whitespace as in the file, NFC): the form body paragraphs
    and summaries are reported in. ``gap_before[i]`` says a blank line came
    between it and the line before (paragraphs are separated by blank lines);
    ``nbsp_before[i]`` says a U+00A0-only line did; ``nbsp_at_end`` says one
    came after the last text line.
    """

    texts: list[str]
    raws: list[str]
    gap_before: list[bool]
    nbsp_before: list[bool]
    nbsp_at_end: bool


def split_lines(text: str) -> SeedLines:
    """Drop blank lines, collapse whitespace, note blank and U+00A0 lines (one pass)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    check_nfc = False
    if not text.isascii():
        if any(char in text for char in _INVISIBLE_CHARS):  # `in` is far faster than a regex here
            text = text.translate(_INVISIBLE)
            if _ZWJ in text:
                text = _STRAY_ZWJ.sub("", text)
        check_nfc = _NFC_SUSPECT.search(text) is not None
    texts: list[str] = []
    raws: list[str] = []
    gap_before: list[bool] = []
    nbsp_before: list[bool] = []
    pending_gap = pending_nbsp = False
    for raw in text.split("\n"):
        if not raw:
            pending_gap = True
            continue
        # Most lines are already clean (printable excludes tabs and U+00A0);
        # only the others pay for split and join.
        if raw.isprintable() and raw[0] != " " and raw[-1] != " " and "  " not in raw:
            line = trimmed = raw
        else:
            line = " ".join(raw.split())
            if not line:
                # A whitespace-only line that is not plain blank is the `&nbsp;`
                # paragraph that closes an article on the scraped pages.
                pending_nbsp = pending_nbsp or bool(raw.strip(" \t\f\v"))
                pending_gap = True
                continue
            trimmed = raw.strip()
        if check_nfc and not line.isascii() and not unicodedata.is_normalized("NFC", line):
            # Whitespace never composes, so the trimmed form needs NFC exactly when this does.
            line = unicodedata.normalize("NFC", line)
            trimmed = unicodedata.normalize("NFC", trimmed)
        texts.append(line)
        raws.append(trimmed)
        gap_before.append(pending_gap)
        nbsp_before.append(pending_nbsp)
        pending_gap = pending_nbsp = False
    return SeedLines(texts, raws, gap_before, nbsp_before, pending_nbsp)


def story_key(title: str) -> str:
    """``fold_title`` of a line from ``split_lines`` (already NFC and collapsed), faster.

    Replacing the few quote characters present is much cheaper than
    ``str.translate`` on non-ASCII text, and every parsed title is folded.
    """
    text = title
    for char in APOSTROPHES:
        if char in text:
            text = text.replace(char, "")
    for char in DOUBLE_QUOTES:
        if char in text:
            text = text.replace(char, '"')
    text = text.casefold()
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def loose_key(text: str) -> str:
    """Letters and digits only, unaccented: for matching alt text to titles.

    Coarser than ``fold_title`` on purpose (it only decides whether two
    adjacent lines render one title, never the identity of a story), but
    case-sensitive: a repeat keeps its case, and `Ankara?` ending a title
    must not match the dateline `ANKARA` below it.
    """
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKD", text))


def title_tail(text: str) -> str:
    """The last character once closing punctuation is stripped: a cheap first test of sameness.

    Two renderings of one title (a repeat, or alt text without apostrophes or
    with other quotes) end in the same letter; most pairs of lines do not.
    """
    return text.rstrip(_EDGE_PUNCT)[-1:]


def loosely_equal(a: str, b: str) -> bool:
    """Equal letters and digits (see ``loose_key``), and not both empty."""
    if _last_word(a) != _last_word(b):
        return False  # cheaper than the keys, and most lines that end alike still differ here
    key = loose_key(a)
    return bool(key) and key == loose_key(b)


def _last_word(text: str) -> str:
    word = text[text.rfind(" ") + 1 :]
    return word if word.isalnum() else _NOT_ALNUM.sub("", word)


def header_prefix(line: str, following: str) -> str | None:
    """The prefix of a header line whose remainder is ``following``, else None.

    ``""`` when the line is the title itself. Where the repeat differs only in
    apostrophes, quotes or normal form, the shortest prefix whose remainder
    still matches wins, so a label never swallows the title's first word.
    """
    if line == following:
        return ""
    size = len(following)
    # Cheap rejects first: this runs for every pair of adjacent lines.
    if size > _MAX_TITLE or len(line) < size - 8:
        return None
    if len(line) > size and line.endswith(following) and line[-size - 1] == " ":
        return line[: -size - 1]
    if title_tail(line) != title_tail(following) or _last_word(line) != _last_word(following):
        return None
    target = loose_key(following)
    whole = loose_key(line)
    if not target or not whole.endswith(target):
        return None
    if whole == target:
        return ""
    return _loose_prefix(line, target)


def _loose_prefix(line: str, target: str) -> str | None:
    """The shortest prefix of ``line`` (in words) whose remainder loosely equals ``target``."""
    words = line.split(" ")
    tail = ""
    found: int | None = None
    for k in range(len(words) - 1, -1, -1):
        tail = loose_key(words[k]) + tail
        if tail == target:
            found = k  # keep going: words without letters may join the title
        elif len(tail) > len(target):
            break
    return None if found is None else " ".join(words[:found])


def row_title(line: str) -> str | None:
    """The title of a numbered listing row (`1. Title`), else None."""
    match = _ROW.fullmatch(line)
    return match.group(2) if match else None


def is_first_row(line: str) -> bool:
    """Whether the line is row 1 of a numbered listing."""
    return row_number(line) == 1


def row_number(line: str) -> int | None:
    """The number of a numbered listing row (`2. Title` -> 2), else None."""
    match = _ROW.fullmatch(line)
    return int(match.group(1)) if match else None


def date_prefix(prefix: str) -> tuple[str | None, str] | None:
    """For a `date YYYY-MM-DD [rest]` prefix: (ISO date or None if invalid, rest)."""
    match = _DATE.fullmatch(prefix)
    if not match:
        return None
    year, month, day = (int(g) for g in match.group(1, 2, 3))
    valid = 1 <= month <= 12 and 1 <= day <= _days_in(year, month)
    iso = f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if valid else None
    return iso, match.group(4) or ""


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def section_label(prefix: str) -> str | None:
    """The prefix as a section label if it is a rendered upper-case label."""
    label = prefix.strip(" -–—|:»›>/")
    if 2 <= len(label) <= 40 and label.isupper() and _LABEL.fullmatch(label):
        return label
    return None


def is_heading(line: str) -> bool:
    """A known listing heading (`LATEST NEWS`, `Recommended`)."""
    return len(line) <= MAX_HEADING and line.rstrip(":").casefold() in LIST_HEADINGS


def is_short_label(line: str) -> bool:
    """A few words without sentence punctuation: could head a listing block."""
    return len(line) <= MAX_HEADING and line.count(" ") <= 3 and line[-1] not in '.,;:!?"”'


def is_dateline(line: str) -> bool:
    """An upper-case place line (`SAN SALVADOR`, `İZMİR`)."""
    return len(line) <= 40 and line.count(" ") <= 4 and line.isupper() and bool(_DATELINE.fullmatch(line))


def is_byline(line: str) -> bool:
    """A mixed-case author name of an opinion column (`Barçın Yinanç`)."""
    if len(line) > 50 or line.isupper() or line[-1] in '.,;:!?"”)':
        return False
    words = line.split(" ")
    if not 2 <= len(words) <= 6 or not words[0][:1].isupper() or not words[-1][:1].isupper():
        return False
    return all(_NAME_PARTICLE.fullmatch(w) or (w[0].isupper() and _NAME_WORD.fullmatch(w)) for w in words)


def is_sentence(line: str) -> bool:
    """Reads like a body paragraph rather than a title.

    Titles almost never end with a full stop (an abbreviation like `U.S.`
    aside), though they may end with `?` or `!`; very long lines are
    paragraphs whatever their end.
    """
    words = line.count(" ") + 1
    if words >= 30:
        return True
    stripped = line.rstrip(_CLOSERS)
    if not stripped.endswith(".") or words < 3:
        return False
    last = stripped[stripped.rfind(" ") + 1 : -1]
    return "." not in last  # `U.S.` ends a title, not a sentence
