"""Output piped into ``head``, or a pager that is quit: the job stops as it does on SIGTERM.

Python ignores SIGPIPE, so a closed pipe shows up as ``BrokenPipeError`` in whatever line
printed next; it used to end the job through click's silent exit 1, with no summary.
:class:`GuardedStdout` stands in for ``sys.stdout`` while a job runs: the first write to a
closed pipe raises :class:`~fl_jobs.run.stop_signals.JobInterrupted` for SIGPIPE (exit 141) in
the main thread, and from then on standard output goes to ``/dev/null`` (file descriptor 1
included, so the interpreter's last flush at exit is silent too). Once the job is ending it
only diverts: the summary and the resume line (on stderr) are still written.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, TextIO

from fl_jobs.run.stop_signals import JobInterrupted


class GuardedStdout:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False
        self.armed = True

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._broke()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._broke()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _broke(self) -> None:
        self.broken = True
        try:
            fd = self._stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except (OSError, ValueError):
            pass
        self._stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        if self.armed and threading.current_thread() is threading.main_thread():
            raise JobInterrupted(signal.SIGPIPE)


class guarded_stdout:
    """Install :class:`GuardedStdout` as ``sys.stdout`` for the ``with`` block."""

    def __enter__(self) -> GuardedStdout:
        self._previous = sys.stdout
        self.guard = GuardedStdout(sys.stdout)
        sys.stdout = self.guard
        return self.guard

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._previous if not self.guard.broken else self.guard
