"""Conversions between model records and table rows (no SQL here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from feeds.model import Enclosure, Item, Origin


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a "Z", to the millisecond, always with the fraction
    so that the text sorts in time order."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime reached the store")
    # isoformat is C and about four times faster than strftime; it also
    # truncates to the millisecond. "+00:00" -> "Z".
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    # fromisoformat reads the "Z" since Python 3.11, ten times faster than strptime.
    return datetime.fromisoformat(text).astimezone(UTC)


def item_to_row(
    item: Item, canonical_link: str | None, first_seen: datetime, content_hash: str | None = None
) -> dict[str, Any]:
    return {
        "id": item.id,
        "key": item.key,
        "slug": item.slug,
        "title": item.title,
        "kind": item.kind,
        "section": item.section,
        "section_slug": item.section_slug,
        "link": item.link,
        "canonical_link": canonical_link,
        "summary": item.summary,
        "content_html": item.content_html,
        "body": json.dumps(list(item.body), ensure_ascii=False),
        "dateline": item.dateline,
        "author": item.author,
        "published": format_time(item.published),
        "updated": format_time(item.updated),
        "first_seen": format_time(first_seen),
        "content_hash": content_hash or item.content_hash(),
        "authors": _json_or_none(list(item.authors)),
        "categories": _json_or_none(list(item.categories)),
        "enclosures": _json_or_none([[e.url, e.type, e.length] for e in item.enclosures]),
        "image": item.image,
        "comments": item.comments,
    }


def _json_or_none(values: list[Any]) -> str | None:
    """A JSON list, or NULL for an empty one (most items have none)."""
    return json.dumps(values, ensure_ascii=False) if values else None


def row_to_item(row: dict[str, Any], origins: tuple[Origin, ...] = ()) -> Item:
    return Item(
        id=row["id"],
        key=row["key"],
        slug=row["slug"],
        title=row["title"],
        kind=row["kind"],
        published=parse_time(row["published"]),
        updated=parse_time(row["updated"]),
        section=row["section"],
        section_slug=row["section_slug"],
        link=row["link"],
        summary=row["summary"],
        content_html=row["content_html"],
        body=tuple(json.loads(row["body"] or "[]")),
        dateline=row["dateline"],
        author=row["author"],
        origins=origins,
        authors=tuple(json.loads(row["authors"] or "[]")),
        categories=tuple(json.loads(row["categories"] or "[]")),
        enclosures=tuple(Enclosure(u, t, n) for u, t, n in json.loads(row["enclosures"] or "[]")),
        image=row["image"],
        comments=row["comments"],
    )


def origin_to_row(item_id: str, origin: Origin) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "kind": origin.kind,
        "name": origin.name,
        "url": origin.url,
        "title": origin.title,
        "entry_id": origin.entry_id,
        "first_seen": format_time(origin.first_seen) if origin.first_seen else None,
        "last_seen": format_time(origin.last_seen) if origin.last_seen else None,
    }


def row_to_origin(row: dict[str, Any]) -> Origin:
    return Origin(
        kind=row["kind"],
        name=row["name"],
        url=row["url"],
        title=row["title"],
        entry_id=row["entry_id"],
        first_seen=parse_time(row["first_seen"]) if row["first_seen"] else None,
        last_seen=parse_time(row["last_seen"]) if row["last_seen"] else None,
    )
