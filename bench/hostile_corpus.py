"""Serve a corpus of hostile feed files from 127.0.0.1 as sources, refresh and
export through the CLI, and check the rules of issue 11:

- `feeds refresh --all` and `feeds export --offline` exit 0, with no traceback;
- every source that did not update has its failure recorded (a source error
  in the store), and none is an "internal error";
- every feed we publish from them passes our own checks and, if a validator
  is named, the W3C Feed Validator with no errors.

    python bench/hostile_corpus.py CORPUS_DIR [--validator CMD] [--keep DIR]

CORPUS_DIR is searched for files (feedparser's tests/ folder works: its
`Header:` lines in a file's leading comment are sent as HTTP headers). The
validator command defaults to $FEEDS_W3C_VALIDATOR (usage: CMD FILE...; exit 0
when no errors). Prints counts; exits 1 when a rule fails.
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SKIP_SUFFIXES = {".py", ".pyc", ".md", ".cfg", ".toml", ".ini"}
HEADER_LINE = re.compile(rb"^Header:\s*([A-Za-z0-9-]+):\s*(.*?)\s*$", re.M)


def corpus_files(root: Path) -> list[Path]:
    found = (p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(p for p in found if p.suffix not in SKIP_SUFFIXES)


def declared_headers(body: bytes) -> list[tuple[str, str]]:
    """feedparser's convention: `Header: Name: value` lines in the leading comment."""
    head = body[:2048]
    end = head.find(b"-->")
    if not head.lstrip().startswith(b"<!--") or end < 0:
        return []
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in HEADER_LINE.findall(head[:end])]


def content_type_for(path: Path) -> str:
    return "application/json" if path.suffix == ".json" else "application/xml"


def serve(files: dict[str, Path]) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = files.get(self.path)
            if path is None:
                self.send_error(404)
                return
            body = path.read_bytes()
            headers = declared_headers(body)
            self.send_response(200)
            if not any(n.lower() == "content-type" for n, _ in headers):
                self.send_header("Content-Type", content_type_for(path))
            for name, value in headers:
                if name.lower() not in ("content-length", "transfer-encoding", "content-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_config(project: Path, port: int, names: list[str]) -> None:
    lines = [
        '[site]\nbase_url = "http://127.0.0.1:8080/"\n',
        '[store]\npath = "data/feeds.db"\n[seeds]\ndir = "seeds"\n[output]\ndir = "public"\n',
        # Every entry of the corpus in the one feed it is published in.
        "items_per_feed = 100000\n",
        '[fetch]\nworkers = 8\nper_host = 8\ntimeout = "10s"\ndeadline = "30s"\n',
    ]
    for index, name in enumerate(names):
        url = f"http://127.0.0.1:{port}/{name}"
        lines.append(f'[[sources]]\nname = "c{index:05d}"\nurl = "{url}"\nsection = "corpus"\n')
    (project / "config.toml").write_text("\n".join(lines), encoding="utf-8")


def feeds(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "feeds"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "feeds"]
    env = {k: v for k, v in os.environ.items() if k != "FEEDS_CONFIG"}
    return subprocess.run(
        [*command, *args], cwd=project, env=env, capture_output=True, text=True, check=False, timeout=3600
    )


def source_outcomes(db: Path) -> dict[str, tuple[str | None, str | None]]:
    """Each source's (last_success, last_error), read straight from the store."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT name, last_success, last_error FROM sources").fetchall()
    return {name: (success, error) for name, success, error in rows}


def validate(validator: str, paths: list[Path]) -> tuple[bool, str]:
    out = subprocess.run(
        [*validator.split(), *map(str, paths)], capture_output=True, text=True, check=False, timeout=3600
    )
    return out.returncode == 0, out.stdout + out.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--validator", default=os.environ.get("FEEDS_W3C_VALIDATOR"))
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.feedcheck import check_atom, check_json, check_rss

    paths = corpus_files(args.corpus)
    files = {"/" + p.relative_to(args.corpus).as_posix(): p for p in paths}
    server = serve(files)
    with tempfile.TemporaryDirectory() as scratch:
        project = args.keep or Path(scratch)
        project.mkdir(parents=True, exist_ok=True)
        (project / "seeds").mkdir(exist_ok=True)
        names = [name.lstrip("/") for name in files]
        write_config(project, server.server_address[1], names)
        failures: list[str] = []
        refresh = feeds(project, "refresh", "--all")
        if refresh.returncode != 0 or "Traceback" in refresh.stderr:
            failures.append(f"refresh exited {refresh.returncode}: {refresh.stderr[-2000:]}")
        export = feeds(project, "export", "--offline")
        if export.returncode != 0 or "Traceback" in export.stderr:
            failures.append(f"export exited {export.returncode}: {export.stderr[-2000:]}")
        outcomes = source_outcomes(project / "data" / "feeds.db")
        by_name = {f"c{i:05d}": name for i, name in enumerate(names)}
        unrecorded = [by_name[n] for n in by_name if n not in outcomes or outcomes[n] == (None, None)]
        internal = sorted(
            f"{by_name[n]}: {error}"
            for n, (_, error) in outcomes.items()
            if error and "internal error" in error
        )
        errors = sum(1 for _, error in outcomes.values() if error)
        if unrecorded:
            failures.append(f"{len(unrecorded)} sources with no outcome recorded: {unrecorded[:10]}")
        if internal:
            failures.append(f"{len(internal)} internal errors: " + "; ".join(internal[:20]))
        feeds_dir = project / "public" / "feeds"
        published = sorted(feeds_dir.glob("*.*")) if feeds_dir.is_dir() else []
        for path in published:
            check = {".rss": check_rss, ".atom": check_atom, ".json": check_json}.get(path.suffix)
            try:
                if check is not None:
                    check(path.read_bytes())
            except AssertionError as e:
                failures.append(f"{path.name}: our own check failed: {str(e)[:500]}")
        validated = "not run (no --validator or $FEEDS_W3C_VALIDATOR)"
        xml_feeds = [p for p in published if p.suffix in (".rss", ".atom")]
        if args.validator and xml_feeds:
            ok, report = validate(args.validator, xml_feeds)
            validated = f"{len(xml_feeds)} files, " + ("no errors" if ok else "ERRORS")
            if not ok:
                failures.append(f"W3C validator:\n{report[-6000:]}")
        items = feeds(project, "status").stdout.count("\n")
        print(
            f"{len(paths)} corpus files served; refresh exit {refresh.returncode}, export exit "
            f"{export.returncode}; {len(outcomes)} sources recorded, {errors} with a recorded error, "
            f"{len(internal)} internal errors; {len(published)} feeds published; validator: {validated}; "
            f"status lines {items}"
        )
        server.shutdown()
        for failure in failures:
            print("FAIL:", failure)
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
