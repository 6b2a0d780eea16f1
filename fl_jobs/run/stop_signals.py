"""Ctrl-C, SIGTERM and SIGHUP for a running job: stop soon, cleanly, and keep what is finished.

Inside :class:`StopSignals` the first SIGINT, SIGTERM or SIGHUP (a closed terminal, a dropped
ssh session) raises :class:`JobInterrupted` in the
main thread, wherever it is (waiting for silos, training baselines); files that must never be
half-written (checkpoint, summary) are written to a temporary name and renamed, so an
interruption anywhere leaves the previous complete version. Later signals are ignored, so
that the clean-up (summary, plot, MLflow status) is never cut short; it takes a few seconds
at most.
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Why a signal came, for the line that says the job stopped.
CAUSES = {signal.SIGHUP: "the terminal was closed", signal.SIGPIPE: "its output was closed"}


class JobInterrupted(BaseException):
    """The user (Ctrl-C) or the system (SIGTERM) asked the job to stop.

    A BaseException, as KeyboardInterrupt is: library code catching ``Exception`` must not
    swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def label(self) -> str:
        if self.signum == signal.SIGINT:
            return "Ctrl-C"
        name = signal.Signals(self.signum).name
        cause = CAUSES.get(signal.Signals(self.signum))
        return f"{name} ({cause})" if cause else name

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal."""
        return 128 + self.signum


class StopSignals:
    """Context manager turning SIGINT/SIGTERM into :class:`JobInterrupted` (main thread)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # already stopping: let the clean-up finish
        self.received = signum
        raise JobInterrupted(signum)

    def stopping(self) -> None:
        """From now on, ignore further stop signals (the job is already ending)."""
        if self.received is None:
            self.received = -1
