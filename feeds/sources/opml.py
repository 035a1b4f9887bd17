"""OPML subscription lists in and out (`feeds sources import/export`).

Readers export their subscriptions as OPML 1.0/2.0: ``<outline>`` elements
with an ``xmlUrl``, often nested in an outline per folder. The folder is
the category a Miniflux or FreshRSS user expects their subscriptions to
keep, so it comes back as ``Subscription.folder``. The file is read with
entities and network access off, as every XML we take from outside.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from feeds.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed of an OPML file."""

    url: str
    title: str | None = None
    folder: str | None = None  # the enclosing outline's text, if any


def read_opml(data: bytes, origin: str) -> list[Subscription]:
    """The subscriptions of an OPML document, in document order; ConfigError if it is none."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise ConfigError(f"not well-formed XML: {e}", subject=origin) from e
    if root.tag != "opml":
        raise ConfigError(f"not an OPML file (its root element is <{root.tag}>)", subject=origin)
    body = root.find("body")
    if body is None:
        raise ConfigError("an OPML file without a <body>", subject=origin)
    return list(_outlines(body, None))


def _outlines(parent: etree._Element, folder: str | None) -> Iterable[Subscription]:
    for outline in parent.iterfind("outline"):
        label = _attribute(outline, "title") or _attribute(outline, "text")
        url = _attribute(outline, "xmlUrl")
        if url:
            yield Subscription(url=url, title=label, folder=folder)
        # A folder's own name is the category; deeper folders keep the outermost one.
        yield from _outlines(outline, folder or (label if not url else None))


def _attribute(element: etree._Element, name: str) -> str | None:
    value = element.get(name)
    return value.strip() or None if value else None


def write_opml(title: str, subscriptions: Iterable[Subscription]) -> bytes:
    """An OPML 2.0 document of ``subscriptions``, one folder outline per folder."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    body = etree.SubElement(root, "body")
    folders: dict[str, etree._Element] = {}
    for sub in subscriptions:
        parent = body
        if sub.folder:
            if sub.folder not in folders:
                folders[sub.folder] = etree.SubElement(body, "outline", text=sub.folder, title=sub.folder)
            parent = folders[sub.folder]
        label = sub.title or sub.url
        etree.SubElement(parent, "outline", type="rss", text=label, title=label, xmlUrl=sub.url)
    etree.indent(root, space="  ")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
