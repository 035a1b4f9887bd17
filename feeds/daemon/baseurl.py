"""Does ``[site] base_url`` point at the address this daemon serves?

Feeds, pages and OPML carry absolute links built from ``base_url``. A
daemon started with ``--port 9001`` under the default ``base_url`` of
``:8080`` serves pages whose links lead elsewhere; behind a reverse proxy
that serves ``base_url`` that is intended. Either way the operator should
hear it once, at start-up, rather than find out from a reader.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
_ANY = {"0.0.0.0", "::", ""}  # noqa: S104 (names a wildcard bind, binds nothing)


def _same_host(linked: str, served: str) -> bool:
    linked, served = linked.lower().strip("[]"), served.lower().strip("[]")
    if served in _ANY or linked == served:
        return True
    return linked in _LOOPBACK and served in _LOOPBACK


def base_url_mismatch(base_url: str, host: str, port: int) -> str | None:
    """A sentence saying where links point and where we serve, or None when they agree."""
    parts = urlsplit(base_url)
    linked_host = parts.hostname or ""
    linked_port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    if _same_host(linked_host, host) and linked_port == port:
        return None
    served = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return (
        f"links in the published feeds and pages point at {base_url} ([site] base_url), "
        f"but this daemon serves {served}: right behind a proxy that serves {base_url}; "
        "otherwise set [site] base_url (or `feeds export --base-url`)"
    )
