"""Atomic, change-only writes of the published tree."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from feeds.errors import ExportError
from feeds.publish.export import export_files, write_if_changed
from feeds.publish.tree import ENTRIES


def test_unchanged_bytes_leave_the_file_alone(tmp_path: Path) -> None:
    assert write_if_changed(tmp_path, "feeds/all.rss", b"one")
    target = tmp_path / "feeds" / "all.rss"
    os.utime(target, (1_000_000, 1_000_000))
    assert not write_if_changed(tmp_path, "feeds/all.rss", b"one")
    assert target.stat().st_mtime == 1_000_000
    assert write_if_changed(tmp_path, "feeds/all.rss", b"two")
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o777 == 0o644


def test_stale_managed_files_are_removed_and_others_kept(tmp_path: Path) -> None:
    export_files(tmp_path, [("feeds/all.rss", b"a"), ("feeds/old.rss", b"b"), ("items/x.html", b"c")])
    (tmp_path / "robots.txt").write_text("mine")
    (tmp_path / "feeds" / "notes.txt").write_text("mine too")
    (tmp_path / "feeds" / ".tmp-leftover").write_text("crash debris")
    result = export_files(tmp_path, [("feeds/all.rss", b"a")], ENTRIES.managed)
    assert sorted(result.deleted) == ["feeds/.tmp-leftover", "feeds/old.rss", "items/x.html"]
    assert result.unchanged == ["feeds/all.rss"]
    assert (tmp_path / "robots.txt").exists()
    assert (tmp_path / "feeds" / "notes.txt").exists()


@pytest.mark.parametrize("bad", ["../escape.rss", "/etc/passwd", "feeds/../../x", ""])
def test_paths_cannot_leave_the_tree(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ExportError):
        write_if_changed(tmp_path / "out", bad, b"x")


def test_a_file_where_a_folder_should_be_is_named(tmp_path: Path) -> None:
    (tmp_path / "feeds").write_text("a file where a folder should be")
    with pytest.raises(ExportError, match=r"/feeds: is a file, where a folder is needed$"):
        write_if_changed(tmp_path, "feeds/all.rss", b"x")


def test_a_failed_write_leaves_the_old_file_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_if_changed(tmp_path, "feeds/all.rss", b"old")

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ExportError, match="No space left"):
        write_if_changed(tmp_path, "feeds/all.rss", b"new")
    assert (tmp_path / "feeds" / "all.rss").read_bytes() == b"old"
    assert sorted(p.name for p in (tmp_path / "feeds").iterdir()) == ["all.rss", "all.rss.gz"]


def test_every_file_gets_a_deterministic_gzip_beside_it_with_its_mtime(tmp_path: Path) -> None:
    export_files(tmp_path, [("feeds/all.rss", b"<rss/>" * 50), ("index.html", b"<html></html>")])
    for rel in ("feeds/all.rss", "index.html"):
        plain, packed = tmp_path / rel, tmp_path / (rel + ".gz")
        assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
        assert packed.stat().st_mtime_ns == plain.stat().st_mtime_ns
    data = (tmp_path / "feeds/all.rss.gz").read_bytes()
    assert data[4:8] == b"\0\0\0\0" and not data[3] & 0x08  # gzip mtime 0, no file name
    other = tmp_path / "other"
    export_files(other, [("feeds/all.rss", b"<rss/>" * 50)])
    assert (other / "feeds/all.rss.gz").read_bytes() == data


def test_gzip_files_follow_their_file_and_only_its_changes(tmp_path: Path) -> None:
    export_files(tmp_path, [("feeds/all.rss", b"one"), ("feeds/old.rss", b"x")])
    packed = tmp_path / "feeds/all.rss.gz"
    os.utime(tmp_path / "feeds/all.rss", ns=(10**18, 10**18))
    os.utime(packed, ns=(10**18, 10**18))
    result = export_files(tmp_path, [("feeds/all.rss", b"one")], ENTRIES.managed)
    assert result.unchanged == ["feeds/all.rss"] and result.deleted == ["feeds/old.rss"]
    assert packed.stat().st_mtime_ns == 10**18  # untouched
    assert not (tmp_path / "feeds/old.rss.gz").exists()
    packed.unlink()
    export_files(tmp_path, [("feeds/all.rss", b"one")])  # a tree exported before .gz files existed
    assert gzip.decompress(packed.read_bytes()) == b"one"
    assert (tmp_path / "feeds/all.rss").stat().st_mtime_ns == 10**18
    export_files(tmp_path, [("feeds/all.rss", b"two")])
    assert gzip.decompress(packed.read_bytes()) == b"two"
    assert packed.stat().st_mtime_ns == (tmp_path / "feeds/all.rss").stat().st_mtime_ns != 10**18
