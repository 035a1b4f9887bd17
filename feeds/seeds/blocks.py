"""Block-level reading of seed files: pages, teasers and listing blocks -> mentions.

One pass over the text lines of a file. Each step looks at the current line
(and the one or two after it) and reads the whole block that starts there:
a page or teaser (a header line whose title repeats on the next line), a
numbered LATEST NEWS block, or a Recommended block of (alt text, title) pairs.
Every story mention becomes one ``SeedItem``; merging mentions of one story is
the caller's job. Lines that fit no block are skipped: a human reader would
not call them stories either.
"""

from __future__ import annotations

from feeds.model import Kind, SeedItem
from feeds.seeds.lines import (
    MAX_HEADING,
    SeedLines,
    date_prefix,
    header_prefix,
    is_byline,
    is_dateline,
    is_first_row,
    is_heading,
    is_sentence,
    is_short_label,
    loosely_equal,
    row_number,
    row_title,
    section_label,
    title_tail,
)

_DATE_WORDS = frozenset({"date", "Date", "DATE"})


def read_mentions(lines: SeedLines) -> list[SeedItem]:
    """Every story mention in the file, in order, unmerged."""
    return _Reader(lines).run()


class _Reader:
    """The cursor over one file's lines plus the current date context."""

    def __init__(self, lines: SeedLines) -> None:
        texts = lines.texts
        self.texts = texts
        self.raws = lines.raws  # body text is reported trimmed, not collapsed
        self.gap_before = lines.gap_before
        self.nbsp_before = lines.nbsp_before
        self.nbsp_at_end = lines.nbsp_at_end
        self.size = len(texts)
        # Computed once: every later decision asks "is line i a header?",
        # "is line i this title again?" or "is line i a row?" several times.
        # A line is a header or a repeat only if its tail (last letter) matches.
        self.tails = tails = list(map(title_tail, texts))
        self.prefixes: list[str | None] = [None] * self.size
        for i in range(self.size - 1):
            if tails[i] == tails[i + 1]:
                self.prefixes[i] = header_prefix(texts[i], texts[i + 1])
        # A numbered line repeated whole on the next line (`10. Yıl Marşı ...`
        # over itself, a Recommended pair) is a title that starts with an
        # ordinal; a LATEST NEWS row repeats its title without the number.
        self.rows = [
            row_title(t) if t[0].isdigit() and self.prefixes[i] != "" else None for i, t in enumerate(texts)
        ]
        self.date: str | None = None
        # Whether the current page has shown lists or teasers since its start
        # (an article, or a U+00A0 closing line, or the file start).
        self.in_run = False
        self.items: list[SeedItem] = []

    def run(self) -> list[SeedItem]:
        i = 0
        while i < self.size:
            i = self._step(i)
        return self.items

    def _step(self, i: int) -> int:
        """Read the block starting at line ``i``; return the line after it."""
        if self.nbsp_before[i]:
            self.in_run = False  # a U+00A0 line closes the page: a new one starts here
        if self._starts_listing(i, over_pairs=True):
            return self._read_listing(i + 1)
        if self.rows[i] is not None:
            return self._read_rows(i)
        prefix = self.prefixes[i]
        if prefix is not None:
            if self._starts_listing(i + 1):
                self._read_prefix(prefix)
                return i + 1  # a listing page titled like its heading: the heading is no story
            return self._read_page(i + 2, self.texts[i + 1], prefix)
        dated = date_prefix(self.texts[i])
        if dated is None:
            return i + 1
        self.date, title = dated
        if title and not is_heading(title):
            # A `date` header whose title is not repeated is still unmistakably a page.
            return self._read_page(i + 1, title, None)
        return i + 1

    # -- what a line is -------------------------------------------------------

    def _starts_listing(self, i: int, over_pairs: bool = False) -> bool:
        """A listing heading: a known one, or a short label over row 1.

        With ``over_pairs``, also a short label over an (alt text, title) pair.
        Only outside a page: there a dateline over the title repeated twice
        (image alt text and caption) has the same shape.
        """
        text = self.texts[i]
        if len(text) > MAX_HEADING:
            return False  # the common case, a paragraph: skip the calls below
        if is_heading(text):
            return True
        if self.prefixes[i] is not None or not is_short_label(text) or i + 1 >= self.size:
            return False
        if is_first_row(self.texts[i + 1]) and self._row_goes_on(i + 1):
            return True
        return over_pairs and i + 2 < self.size and self._same(i + 1, self.texts[i + 2], self.tails[i + 2])

    def _row_goes_on(self, k: int) -> bool:
        """Whether the numbered line ``k`` is followed like a listing row: by its
        title again, by the whole line again, or by the next row.

        A title that starts with an ordinal (`1. Lig leaders stumble`) under a
        dateline is the page's title repeated, followed by its body (which
        may itself start with an ordinal: `1. Lig club Sakaryaspor ...`).
        """
        nxt = k + 1
        if nxt >= self.size:
            return True
        row = self.rows[k]
        if row is not None and self._same(nxt, row, title_tail(row)):
            return True
        if self.prefixes[k] == "":
            return True
        number = row_number(self.texts[k])
        return self.rows[nxt] is not None and number is not None and row_number(self.texts[nxt]) == number + 1

    def _ends_body(self, j: int) -> bool:
        """Whether line ``j`` starts a new block, so a body (or lead) stops before it."""
        prefix = self.prefixes[j]
        # Two equal paragraphs in a row are not a title and its repeat.
        if prefix is not None and (prefix or not is_sentence(self.texts[j])):
            return True
        if self._starts_listing(j):
            return True
        text = self.texts[j]
        if text[:4] in _DATE_WORDS and date_prefix(text) is not None:
            return True  # a `date` header, even one whose title is not repeated
        row = self.rows[j]
        if row is None:
            return False
        # A numbered list inside an article is text; a row after the closing
        # U+00A0 line, or one whose title repeats, starts LATEST NEWS.
        return self.nbsp_before[j] or (j + 1 < self.size and self._same(j + 1, row, title_tail(row)))

    def _is_block_heading(self, j: int, title: str, tail: str) -> bool:
        """A short upper-case line with no text of its own after it: a heading, not a paragraph.

        Sections head their teaser runs (`OPINION` over `OPINION Title` lines);
        such a line may follow an article's closing U+00A0 and must not become
        its last paragraph (nor its dateline). Body text, or the page's title
        again (under a dateline), after it makes it part of the page.
        """
        k = j
        while k < self.size and self._heading_shaped(k):
            k += 1  # headings may stack (`MORE FROM` over `OPINION`)
        if k == j:
            return False
        # The U+00A0 line closes the page and headings come after it: a short
        # upper-case line between the text and that line (`UPDATE`) is the
        # page's last paragraph.
        if not self.nbsp_before[j] and self._closes_before(j + 1, k):
            return False
        return k >= self.size or (self._ends_body(k) and not self._same(k, title, tail))

    def _closes_before(self, start: int, stop: int) -> bool:
        """Whether a U+00A0 line comes before one of lines ``start`` to ``stop`` (or the end)."""
        if stop >= self.size:
            stop = self.size - 1
            if self.nbsp_at_end:
                return True
        return any(self.nbsp_before[m] for m in range(start, stop + 1))

    def _heading_shaped(self, k: int) -> bool:
        """Reads like a section label (`OPINION`, `ARTS & CULTURE`); `(AA)` credits do not."""
        text = self.texts[k]
        if self.prefixes[k] is not None:
            return False  # a header (`OPINION 习近平会见...` over its title) starts the next block
        return len(text) <= MAX_HEADING and text.isupper() and section_label(text) == text

    def _page_goes_on(self, j: int) -> bool:
        """After a block's text: a U+00A0 closer or a listing says it was a page."""
        if j >= self.size:
            return self.nbsp_at_end
        return self.nbsp_before[j] or self._starts_listing(j) or self.rows[j] is not None

    def _opens_page(self, k: int) -> bool:
        """Whether the pair at ``k`` is really a prefix-less page header (body follows).

        A page may show its title a third time (header, h1, image caption); a
        list pair never does, so that alone says page.
        """
        nxt = k + 2
        if nxt < self.size and self._same(nxt, self.texts[k + 1], self.tails[k + 1]):
            return True
        if nxt >= self.size or self.prefixes[nxt] is not None or self._ends_body(nxt):
            return False
        text = self.texts[nxt]
        return is_sentence(text) or is_dateline(text) or is_byline(text)

    # -- listing blocks -------------------------------------------------------

    def _read_listing(self, k: int) -> int:
        self.in_run = True
        if k < self.size and self.rows[k] is not None:
            return self._read_rows(k)
        return self._read_pairs(k)

    def _read_rows(self, k: int) -> int:
        """`1. Title` rows, each optionally followed by the title again."""
        self.in_run = True
        while k < self.size:
            title = self.rows[k]
            if title is None:
                break
            self._emit(title, "headline")
            k += 1
            if k < self.size and self._same(k, title, title_tail(title)):
                k += 1
        return k

    def _read_pairs(self, k: int) -> int:
        """(alt text, title) pairs; the title line is the real title."""
        while k + 1 < self.size:
            if is_heading(self.texts[k]) or self.rows[k] is not None:
                break
            alt, title = self.texts[k], self.texts[k + 1]
            if self._same(k, title, self.tails[k + 1]):
                if self._opens_page(k):
                    break
                self._emit(title, "headline")
                k += 2
            elif (
                self.prefixes[k] is None
                and k + 2 < self.size
                and self._same(k + 1, self.texts[k + 2], self.tails[k + 2])
                and not is_sentence(alt)
            ):
                self._emit(alt, "headline")  # an image without alt text: the title stands alone
                k += 1
            else:
                break
        return k

    # -- pages and teasers ----------------------------------------------------

    def _read_prefix(self, prefix: str) -> tuple[bool, str | None]:
        """Apply a header prefix: a `date` sets the date context. Returns
        (whether it was a date header, the section label it shows)."""
        dated = date_prefix(prefix)
        if dated is None:
            return False, section_label(prefix)
        self.date, rest = dated
        return True, section_label(rest) if rest else None

    def _read_page(self, j: int, title: str, prefix: str | None) -> int:
        """A page or teaser from line ``j`` on (after its title): lead, then body paragraphs."""
        dated, section = self._read_prefix(prefix) if prefix is not None else (True, None)
        tail = title_tail(title)
        j = self._skip_title(j, title, tail)
        dateline, author, j = self._read_lead(j, title, tail)
        body, j = self._read_body(j, title, tail)
        # Only a rendered label heads a teaser; date headers, template debris
        # or no prefix at all head a page, and so do a dateline, a byline or
        # a second paragraph.
        teaser = not dated and section is not None and not (dateline or author) and len(body) <= 1
        # A teaser shape with a U+00A0 closer or a listing after it is still a
        # teaser inside a run (the last teaser before the page's closing
        # U+00A0); at a page start it is a page (a one-paragraph article).
        if teaser and (self.in_run or not self._page_goes_on(j)):
            self._emit(title, "teaser", section, summary=body[0] if body else None)
        elif body:
            self._emit(title, "article", section, dateline, author, tuple(body))
        else:
            self._emit(title, "headline", section)
        # An article ends its page's run; a teaser or a bare page title (over
        # the page's lists and teasers) goes on with it.
        self.in_run = self.items[-1].kind != "article"
        return j

    def _same(self, k: int, title: str, tail: str) -> bool:
        """Whether line ``k`` renders ``title`` (whose tail is ``tail``)."""
        text = self.texts[k]
        return text == title or (self.tails[k] == tail and loosely_equal(text, title))

    def _skip_title(self, j: int, title: str, tail: str) -> int:
        while j < self.size and self._same(j, title, tail):
            j += 1
        return j

    def _read_lead(self, j: int, title: str, tail: str) -> tuple[str | None, str | None, int]:
        """The dateline and/or byline between the title and the body."""
        dateline: str | None = None
        author: str | None = None
        while j < self.size and not self._ends_body(j):
            text = self.texts[j]
            if self._is_block_heading(j, title, tail):
                break
            if dateline is None and is_dateline(text):
                dateline = self.raws[j]  # as shown, only trimmed
            elif author is None and is_byline(text):
                author = text
            else:
                break
            j = self._skip_title(j + 1, title, tail)
        return dateline, author, j

    def _read_body(self, j: int, title: str, tail: str) -> tuple[list[str], int]:
        """Paragraphs up to the next block; image gaps (blank runs) do not stop it.

        Paragraphs are separated by blank lines: adjacent lines (a hard line
        break, a bulleted list) are one paragraph, joined with a newline.
        """
        body: list[str] = []
        joins = False  # whether line j may continue the last paragraph
        while j < self.size and not self._ends_body(j):
            if self._same(j, title, tail):
                joins = False  # a repeated title is no paragraph, and none runs across it
            elif self._is_block_heading(j, title, tail):
                break
            elif joins and not self.gap_before[j]:
                body[-1] += "\n" + self.raws[j]
            else:
                body.append(self.raws[j])
                joins = True
            j += 1
        return body, j

    def _emit(
        self,
        title: str,
        kind: Kind,
        section: str | None = None,
        dateline: str | None = None,
        author: str | None = None,
        body: tuple[str, ...] = (),
        summary: str | None = None,
    ) -> None:
        if body:
            summary = body[0]
        self.items.append(
            SeedItem(
                title=title,
                kind=kind,
                section=section,
                date=self.date,
                dateline=dateline if body else None,
                summary=summary,
                body=body,
                author=author if body else None,
            )
        )
