"""Drive ``python -m fl_jobs run`` as a real process, as a user's shell would, for fault tests.

The run starts in its own session (so that a Ctrl-C can reach its whole process group, as a
terminal's does), in the test's folder (so that ``runs/`` lands there); stdout and stderr are
pipes that the silo workers share, so the captured stderr holds anything a worker prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


def start_run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The run's default MLflow store is the shared ``runs/mlflow.db`` in ``cwd`` unless
    ``env`` sets ``MLFLOW_TRACKING_URI``."""
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    environment = {**inherited, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "fl_jobs", "run", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_to_end(cwd: Path, *args: str, timeout: float = 240, **kw: Any) -> Finished:
    return finish(start_run(cwd, *args, **kw), timeout=timeout)


def finish(process: subprocess.Popen[str], timeout: float = 240) -> Finished:
    """Wait for the run and read everything it (and its workers) wrote."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        stdout, stderr = process.communicate()
        raise AssertionError(f"the run did not end within {timeout} s:\n{stderr[-3000:]}") from None
    return Finished(process.returncode, stdout, stderr)


def completed_round(run_dir: Path) -> int:
    """The last round in the run's checkpoint (0 while there is none)."""
    from fl_jobs.rounds.checkpoint import CHECKPOINT_FILE, load_checkpoint

    if not (run_dir / CHECKPOINT_FILE).exists():
        return 0
    state, _ = load_checkpoint(run_dir / CHECKPOINT_FILE)
    return state.round


def wait_for_round(
    process: subprocess.Popen[str], run_dir: Path, k: int, timeout: float = 120
) -> int:
    """Block until the run has checkpointed round ``k`` (or more); return that round."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the run ended (exit {process.returncode}) before round {k}")
        with contextlib.suppress(Exception):  # a checkpoint being replaced: read it again
            done = completed_round(run_dir)
            if done >= k:
                return done
        time.sleep(0.02)
    raise AssertionError(f"round {k} not checkpointed within {timeout} s")


def workers(process: subprocess.Popen[str], n: int, timeout: float = 60) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    found: list[psutil.Process] = []
    while time.monotonic() < deadline:
        found = psutil.Process(process.pid).children()
        if len(found) >= n:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {n} silo workers, found {len(found)}")


def only_run_dir(cwd: Path) -> Path:
    """The one run folder under ``cwd/runs`` (via the ``latest`` link)."""
    return (cwd / "runs" / "latest").resolve()


def summary_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def assert_no_traceback(result: Finished) -> None:
    """Neither the orchestrator nor any worker printed a traceback or a Python warning."""
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, stream[-4000:]
        assert "Error:" not in stream.replace("error:", ""), stream[-4000:]


class Watched:
    """A started run whose output is read as it comes, so that a test can wait for a line
    (a notice) before it acts; :meth:`finish` then gives everything, as :func:`finish` does."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        import threading

        self.process = process
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((process.stdout, self.out), (process.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_for_line(self, text: str, timeout: float = 120, start: int = 0) -> int:
        """The index of the first stdout line from ``start`` on that contains ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(start, len(self.out)):
                if text in self.out[i]:
                    return i
            if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n{''.join(self.out)}")

    def finish(self, timeout: float = 240) -> Finished:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            self.process.wait()
            raise AssertionError(f"the run did not end within {timeout} s") from None
        for reader in self._readers:
            reader.join(timeout=30)
        return Finished(self.process.returncode, "".join(self.out), "".join(self.err))
