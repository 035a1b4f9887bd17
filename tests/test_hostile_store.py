"""The store, the disk and the seeds against a clumsy operator, through the CLI:
seed files over the size cap, a file where the output needs a folder."""

from __future__ import annotations

from pathlib import Path

from tests.cliutil import run_feeds
from tests.conftest import PUBLIC_SEED


def test_a_seed_file_over_the_size_cap_is_refused_by_name(project: Path) -> None:
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[seeds]\n", f"[seeds]\nmax_bytes = {PUBLIC_SEED.stat().st_size + 100}\n"))
    big = project / "seeds" / "001_huge.txt"
    big.write_bytes(PUBLIC_SEED.read_bytes() * 2)
    result = run_feeds("ingest", cwd=project)
    assert "Traceback" not in result.stderr
    output = result.stdout + result.stderr
    assert f"{big}: {big.stat().st_size} bytes is over the" in output
    assert "([seeds] max_bytes)" in output
    assert f"seed {PUBLIC_SEED.name}: ingested, 14 items" in output  # the other file is stored


def test_a_file_where_the_output_needs_a_folder_is_named(project: Path) -> None:
    out = project / "out"
    out.mkdir()
    (out / "feeds").write_text("not a folder", encoding="utf-8")
    result = run_feeds("export", "--offline", "--out", str(out), cwd=project)
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"feeds: error: {out / 'feeds'}: is a file, where a folder is needed"
    )
