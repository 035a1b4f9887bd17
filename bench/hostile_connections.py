"""Hold thousands of idle connections to `feeds serve` under a small descriptor limit,
and count how many new requests still succeed.

    python bench/hostile_connections.py [--idle 2000] [--seconds 30] [--nofile 1024]

The daemon runs as `ulimit -n NOFILE; feeds serve` in a scratch project built
from the public seed. The attacker opens IDLE connections that send nothing
and reopens each one the server closes, for SECONDS; meanwhile a client makes
one fresh request every 50 ms. Prints the counts and exits 1 if any request
failed.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_1e8f96a0d2ae3308.txt"
CONFIG = '[site]\nbase_url = "http://127.0.0.1:8080/"\n[store]\npath = "data/feeds.db"\n'


def feeds_command() -> list[str]:
    script = Path(sys.executable).parent / "feeds"
    return [str(script)] if script.exists() else [sys.executable, "-m", "feeds"]


def start_daemon(project: Path, nofile: int) -> tuple[subprocess.Popen[bytes], int]:
    log_path = project / "daemon.log"
    command = ["sh", "-c", f'ulimit -n {nofile} && exec "$@"', "sh", *feeds_command(), "serve", "--port", "0"]
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(command, cwd=project, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if match := re.search(r"serving http://127\.0\.0\.1:(\d+)/", log_path.read_text(errors="replace")):
            return daemon, int(match.group(1))
        time.sleep(0.1)
    daemon.kill()
    raise SystemExit(f"the daemon did not start:\n{log_path.read_text(errors='replace')}")


def hold_idle(port: int, count: int, stop: threading.Event, reopened: list[int]) -> None:
    """Keep ``count`` silent connections open, reopening each the server closes."""
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    for sock in held:
        sock.setblocking(False)
    while not stop.wait(0.2):
        for index, sock in enumerate(held):
            try:
                if sock.recv(1) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                continue
            except OSError:
                sock.close()
                held[index] = socket.create_connection(("127.0.0.1", port))
                held[index].setblocking(False)
                reopened[0] += 1
    for sock in held:
        sock.close()


def one_request(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data.startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--nofile", type=int, default=1024)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.idle + 256)), hard))
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        (project / "seeds").mkdir()
        shutil.copy(SEED, project / "seeds" / SEED.name)
        (project / "config.toml").write_text(CONFIG, encoding="utf-8")
        daemon, port = start_daemon(project, args.nofile)
        stop, reopened = threading.Event(), [0]
        attacker = threading.Thread(target=hold_idle, args=(port, args.idle, stop, reopened))
        attacker.start()
        ok = failed = 0
        slowest = 0.0
        deadline = time.monotonic() + args.seconds
        try:
            while time.monotonic() < deadline:
                started = time.monotonic()
                if one_request(port):
                    ok += 1
                else:
                    failed += 1
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.05)
        finally:
            stop.set()
            attacker.join()
            daemon.kill()
            daemon.wait()
    print(
        f"{args.idle} idle connections held for {args.seconds:.0f}s under ulimit -n {args.nofile}: "
        f"{ok} requests ok, {failed} failed, slowest {slowest * 1000:.0f} ms, "
        f"{reopened[0]} idle connections closed by the server and reopened"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
