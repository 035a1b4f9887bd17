"""Write the published tree to a folder: atomically, and only what changed.

A file is replaced by writing a temporary file beside it and renaming it over
the old one, so a web server never serves half a feed. A file whose bytes
are already on disk is not touched at all, which keeps its mtime (and the
ETag and Last-Modified a static server derives from it) stable. Files of
items or sections that no longer exist are removed; nothing else in the
folder is.

Beside every file a ``.gz`` holds its bytes gzip-compressed, for nginx's
``gzip_static``: compressed once per change, not per request. The gzip is
deterministic (no name, mtime 0), written only when its file's bytes
changed (or it is missing), and carries its file's mtime, so a static
server's ``Last-Modified``/``ETag`` of either stay put across re-exports
that change nothing. A ``.gz`` whose file is gone is removed with it.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from feeds.errors import ExportError

# folder -> file suffixes: the parts of the tree this program owns, where
# stale files are removed (the publisher's entries say which they are).
Managed = Mapping[str, tuple[str, ...]]
_TEMP_PREFIX = ".tmp-"
GZIP_SUFFIX = ".gz"


@dataclass(slots=True)
class ExportResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def safe_relative(rel: str) -> PurePosixPath:
    """A tree path as a relative path that cannot leave the tree."""
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
        raise ExportError("refusing a path outside the output folder", subject=rel)
    return path


def write_if_changed(root: Path, rel: str, data: bytes) -> bool:
    """Write ``data`` to ``root/rel`` (and its ``.gz``) unless the file already holds exactly it."""
    target = root.joinpath(*safe_relative(rel).parts)
    try:
        unchanged = target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data
        if not unchanged:
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(target, data)
        _write_gzip_beside(target, data, changed=not unchanged)
    except OSError as e:
        blocker = _file_in_the_way(root, target)
        if blocker is not None:  # mkdir says "File exists" of the file it wanted to create
            raise ExportError("is a file, where a folder is needed", subject=str(blocker)) from e
        raise ExportError(f"cannot write: {e.strerror or e}", subject=str(target)) from e
    return not unchanged


def _file_in_the_way(root: Path, target: Path) -> Path | None:
    """The first folder on the way from ``root`` to ``target`` that is something else."""
    for folder in reversed(target.parents):
        if folder.is_relative_to(root) and folder.exists() and not folder.is_dir():
            return folder
    return None


def gzip_bytes(data: bytes) -> bytes:
    """The same bytes always give the same gzip: no file name, mtime 0."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def _write_gzip_beside(target: Path, data: bytes, *, changed: bool) -> None:
    compressed = target.with_name(target.name + GZIP_SUFFIX)
    stamp = target.stat()
    if not changed and compressed.is_file() and compressed.stat().st_mtime_ns == stamp.st_mtime_ns:
        return  # written with these bytes before (an export of a tree without .gz files writes them)
    _atomic_write(compressed, gzip_bytes(data))
    os.utime(compressed, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))


def _atomic_write(target: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(temp).chmod(0o644)  # mkstemp makes 0600; a web server must read it
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def export_files(
    root: Path, files: Iterable[tuple[str, bytes]], managed: Managed | None = None
) -> ExportResult:
    """Write every (path, bytes); with ``managed``, remove managed files not among them."""
    result = ExportResult()
    keep: set[str] = set()
    for rel, data in files:
        keep.add(rel)
        (result.written if write_if_changed(root, rel, data) else result.unchanged).append(rel)
    if managed is not None:
        result.deleted = prune_stale(root, keep, managed)
    return result


def prune_stale(root: Path, keep: set[str], managed: Managed) -> list[str]:
    """Delete managed files (and leftover temp files) that the tree no longer has."""
    deleted = []
    for folder, suffixes in managed.items():
        directory = root / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            rel = f"{folder}/{path.name}"
            base = rel.removesuffix(GZIP_SUFFIX)
            stale = path.name.startswith(_TEMP_PREFIX) or (
                PurePosixPath(base).suffix in suffixes and base not in keep
            )
            if stale and path.is_file():
                try:
                    path.unlink()
                except OSError as e:
                    raise ExportError(f"cannot remove: {e.strerror or e}", subject=str(path)) from e
                if base == rel:  # a .gz goes with its file, unreported
                    deleted.append(rel)
    return deleted
