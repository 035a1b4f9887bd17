"""Parser processes: remote bodies parsed in child interpreters.

A child runs ``feeds.sources.workers.main`` and loads only the parser (lxml, nh3,
and feedparser once a body needs it). multiprocessing's spawn would also
re-import the parent's main script in every child (for the ``feeds``
command, the whole CLI) and start a resource-tracker process beside them:
~30 MB of a refresh that otherwise takes ~90.

Jobs and outcomes cross the child's stdin and stdout as length-prefixed
pickles, in order. A feeder thread writes and a reader thread reads, so the
store writer that submits never blocks on a pipe. A child that dies fails
the bodies it held (as ``ParseFailure``) and takes no more; the caller
parses those itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import IO, Protocol

from feeds.sources.prepare import ParseFailure, PrepareJob, RemoteFeed, prepare_feed

log = logging.getLogger(__name__)

Outcome = RemoteFeed | ParseFailure
Done = Callable[[Outcome], None]

_HEADER = struct.Struct("!Q")
_STOP_TIMEOUT = 5.0  # seconds a child gets to finish its body and exit


class ParserProcess:
    """One child interpreter that parses the bodies it is given, in order."""

    def __init__(self) -> None:
        # The child gets our import path, as multiprocessing's spawn would give it.
        code = f"import sys; sys.path[:] = {sys.path!r}; from feeds.sources.workers import main; main()"
        self._child = subprocess.Popen(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._jobs: SimpleQueue[PrepareJob | None] = SimpleQueue()
        self._waiting: deque[Done] = deque()  # one per job sent, in order
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._broken = False
        threading.Thread(target=self._feed, name="parser-feed", daemon=True).start()
        threading.Thread(target=self._read, name="parser-read", daemon=True).start()

    @property
    def ready(self) -> bool:
        """The child has loaded the parser (a body sent before waits for that) and lives."""
        return self._ready.is_set() and not self._broken

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def submit(self, job: PrepareJob, done: Done) -> bool:
        """Queue a body; ``done`` gets its outcome, from another thread.
        False, and nothing queued, when the child is gone."""
        with self._lock:
            if self._broken:
                return False
            self._waiting.append(done)
        self._jobs.put(job)
        return True

    def close(self) -> None:
        """Let the child finish what it holds, then end it."""
        self._jobs.put(None)
        try:
            self._child.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()

    def _feed(self) -> None:
        stdin = self._child.stdin
        assert stdin is not None
        with contextlib.suppress(OSError):  # the child died: the reader reports it
            while (job := self._jobs.get()) is not None:
                _write_frame(stdin, pickle.dumps(job, pickle.HIGHEST_PROTOCOL))
        with contextlib.suppress(OSError):
            stdin.close()  # end of input: the child exits

    def _read(self) -> None:
        stdout = self._child.stdout
        assert stdout is not None
        try:
            if _read_frame(stdout) is not None:  # the child's "loaded"
                self._ready.set()
                while (data := _read_frame(stdout)) is not None:
                    outcome = pickle.loads(data)  # noqa: S301 - our own child's reply
                    with self._lock:
                        done = self._waiting.popleft()
                    done(outcome)
        except Exception:  # a torn pipe or pickle: the child is no use any more
            log.exception("parser process: reading its reply failed")
            self._child.kill()
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        with self._lock:
            self._broken = True
            lost, self._waiting = list(self._waiting), deque()
        if lost:
            status = self._child.wait()
            for done in lost:
                done(ParseFailure(f"parser process exited (status {status})"))


class Parser(Protocol):
    """What the updater uses of a parser process (tests give it small fakes)."""

    @property
    def ready(self) -> bool: ...
    @property
    def pending(self) -> int: ...
    def submit(self, job: PrepareJob, done: Done) -> bool: ...
    def close(self) -> None: ...


class ParserPool:
    """The process's parser processes: started when a run is big enough to
    gain from them, kept for the next runs, closed with the updater.

    ``count`` processes (the CLI and daemon pass one per core but the
    writer's) for runs of at least ``min_jobs`` fetches; below that, parsing
    in the writer beats starting processes. ``start`` makes one (a
    ``ParserProcess``; tests inject fakes).
    """

    def __init__(
        self,
        count: int,
        *,
        min_jobs: int = 8,
        ahead: int = 8,
        start: Callable[[], Parser] = ParserProcess,
    ) -> None:
        self.count = count
        self.min_jobs = min_jobs
        self.ahead = ahead  # bodies queued per process; the writer parses any beyond
        self._start = start
        self._parsers: list[Parser] = []
        self._lock = threading.Lock()

    def pick(self, jobs: int, *, free: bool) -> Parser | None:
        """The least busy process for a run of ``jobs`` fetches (a ``free`` one:
        up, and with room), starting them on first need; None: parse here.
        Until they are up the writer parses: a body sent now would wait out
        their start, longer than a dozen parses."""
        if jobs < self.min_jobs:
            return None
        with self._lock:
            try:
                while len(self._parsers) < self.count:
                    self._parsers.append(self._start())
            except OSError:  # no (more) to be had: the writer parses the rest
                log.exception("cannot start parser processes")
                self.count = len(self._parsers)
            parsers = list(self._parsers)
        usable = [p for p in parsers if p.ready and p.pending < self.ahead] if free else parsers
        return min(usable, key=lambda p: p.pending, default=None)

    def close(self) -> None:
        """Let every process finish what it holds, then end it."""
        with self._lock:
            parsers, self._parsers = self._parsers, []
        for parser in parsers:
            parser.close()


def _write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    return data if len(data) == size else None


def main() -> None:
    """The child: parse each body read from stdin, write each outcome to stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not corrupt replies
    jobs = sys.stdin.buffer
    try:
        _write_frame(replies, b"")
        while (data := _read_frame(jobs)) is not None:
            job = pickle.loads(data)  # noqa: S301 - from our own parent
            _write_frame(replies, pickle.dumps(prepare_feed(job), pickle.HIGHEST_PROTOCOL))
    except (BrokenPipeError, ConnectionResetError, EOFError, pickle.UnpicklingError):
        # The parent went away (killed mid-run): nobody is left to answer, or
        # to read a traceback. Leave without flushing into the broken pipe.
        os._exit(0)
