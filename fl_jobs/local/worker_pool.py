"""The silo worker processes of a local federation: start them, send a round's requests,
gather the replies in silo order within the round's deadline, restart the workers that died or
stopped answering, stop them all.

A worker that dies, or does not answer before the deadline, is reported as :class:`Dropped`
(never an exception): whether the round can go on without it is the federation's quorum
decision. A worker that answers with a failure stops the job (:class:`FederationError`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np

from fl_jobs.local.prepare import PreparedJob
from fl_jobs.local.secure_messages import SECURE_REPLIES, SecureReply, SecureRequest
from fl_jobs.local.worker import (
    PIPE_CLOSED,
    STOP,
    Diverged,
    Ready,
    TrainReply,
    TrainRequest,
    WorkerFailure,
    run_worker,
)

#: How long a (re)started worker may take to put its data in place and say it is ready.
READY_TIMEOUT_S = 300.0
#: Without a round timeout, how often to say which silos a round is still waiting for
#: (``$FL_SANDBOX_WAIT_NOTICE_S`` changes it, e.g. for tests that wait for the notice).
WAIT_NOTICE_S = float(os.environ.get("FL_SANDBOX_WAIT_NOTICE_S") or 60.0)
#: Signals kept from a worker until it has installed its own handlers.
_GUARDED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

WaitNotice = Callable[[list[str], float], None]
#: What a worker answers to a request of a round.
Reply = TrainReply | Diverged | SecureReply


class FederationError(RuntimeError):
    """A worker failed (an error in its own code or data); the message names the silo."""


class WorkerLost(FederationError):
    """A worker died or did not get ready while starting (not an error of its own)."""

    def __init__(self, silo: str, reason: str) -> None:
        super().__init__(f"silo {silo} {reason}")
        self.silo = silo
        self.reason = reason


@dataclass(frozen=True)
class Dropped:
    """A silo left out of a round, and why (it died, or did not answer in time)."""

    silo: str
    reason: str


@dataclass
class SiloWorker:
    name: str
    index: int
    rows: np.ndarray
    process: BaseProcess | None = None
    conn: Connection | None = None
    #: Why the last (re)start failed; the silo is down until a restart succeeds.
    down_reason: str | None = None

    @property
    def up(self) -> bool:
        return self.process is not None and self.conn is not None


def death_reason(process: BaseProcess) -> str:
    """``worker died (killed by SIGKILL)``, ``worker died (exit code 1)``..."""
    process.join(timeout=1)
    code = process.exitcode
    if code is None:
        return "worker closed its connection"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"worker died (killed by {signal.Signals(-code).name})"
    return f"worker died (exit code {code})"


def _is_stopped(process: BaseProcess | None) -> bool:
    """True when the process is suspended (SIGSTOP, Ctrl-Z): worth saying in a notice."""
    import psutil

    if process is None or process.pid is None:
        return False
    try:
        return psutil.Process(process.pid).status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return False


def _too_late(worker: SiloWorker, timeout: float) -> Dropped:
    """``worker`` left out at its deadline, saying if its process is stopped."""
    reason = f"no answer within {timeout:g} s"
    if _is_stopped(worker.process):
        reason += " (process stopped)"
    return Dropped(worker.name, reason)


class WorkerPool:
    """One long-lived worker process per silo, forked from this (warmed-up) process."""

    def __init__(self, prepared: PreparedJob, silos_root: Path, cache: Path | None) -> None:
        self.prepared = prepared
        self.silos_root = silos_root
        self.cache = cache
        self.workers = [
            SiloWorker(name, index, rows)
            for index, (name, rows) in enumerate(
                zip(prepared.silo_names, prepared.partitions, strict=True)
            )
        ]
        self.reused_cache = 0
        self._ctx = mp.get_context("fork")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, tolerate: int = 0) -> dict[str, str]:
        """Start every worker and wait until each has its data. Up to ``tolerate`` workers
        may die (or not get ready) on the way: they stay down, their rounds leave them out
        and restart them, as for a death mid-run; returns silo -> why. A worker that
        reports an error, or more deaths than that, is fatal."""
        down: dict[str, str] = {}
        try:
            for worker in self.workers:
                self._spawn(worker)
            for worker in self.workers:
                try:
                    self._await_ready(worker)
                except WorkerLost as exc:
                    if len(down) >= tolerate:
                        raise
                    self._kill(worker)
                    worker.down_reason = down[worker.name] = exc.reason
        except BaseException:
            self.stop(graceful=False)
            raise
        return down

    def restart(self, worker: SiloWorker) -> str | None:
        """Replace ``worker``'s process by a fresh one; the reason if that failed."""
        self._kill(worker)
        try:
            self._spawn(worker)
            self._await_ready(worker)
        except FederationError as exc:
            self._kill(worker)
            worker.down_reason = str(exc)
            return worker.down_reason
        worker.down_reason = None
        return None

    def stop(self, *, graceful: bool) -> None:
        """Graceful: ask idle workers to exit and wait a little. Otherwise (an interrupted or
        failed run) end them at once with SIGTERM, which a worker obeys without a word."""
        if graceful:
            for worker in self.workers:
                if worker.conn is not None:
                    with contextlib.suppress(*PIPE_CLOSED):
                        worker.conn.send(STOP)
        for worker in self.workers:
            if worker.process is not None and graceful:
                worker.process.join(timeout=5)
            self._kill(worker)

    def _spawn(self, worker: SiloWorker) -> None:
        ds = self.prepared.dataset
        parent_conn, child_conn = self._ctx.Pipe()
        others = [w.conn for w in self.workers if w.conn is not None and w is not worker]
        process = self._ctx.Process(
            target=run_worker,
            name=f"fl-{worker.name}",
            args=(child_conn,),
            kwargs={
                "silo": worker.name,
                "folder": self.silos_root / worker.name,
                "X": ds.X[worker.rows],
                "y": ds.y[worker.rows],
                "config": self.prepared.config,
                "example": self.prepared.example,
                "shape": ds.shape,
                "cache": self.cache,
                # Forked children inherit every open pipe end; each closes the orchestrator's
                # ends so that it sees end-of-file (and exits) if the orchestrator dies.
                "inherited": [parent_conn, *others],
            },
            daemon=True,
        )
        # A Ctrl-C landing between fork and the worker's own signal set-up would run the
        # orchestrator's handler in the child: hold those signals until the worker is ready.
        signal.pthread_sigmask(signal.SIG_BLOCK, _GUARDED_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _GUARDED_SIGNALS)
        child_conn.close()
        worker.process, worker.conn = process, parent_conn

    def _await_ready(self, worker: SiloWorker) -> None:
        assert worker.conn is not None and worker.process is not None
        if not wait([worker.conn, worker.process.sentinel], timeout=READY_TIMEOUT_S):
            raise WorkerLost(
                worker.name, f"worker did not get ready within {READY_TIMEOUT_S:.0f} s"
            )
        message = self._recv(worker)
        if isinstance(message, Dropped):
            raise WorkerLost(worker.name, f"{message.reason} while starting")
        if not isinstance(message, Ready):
            raise FederationError(f"silo {worker.name} sent {message!r} instead of ready")
        self.reused_cache += int(message.from_cache)

    def _kill(self, worker: SiloWorker) -> None:
        process, conn = worker.process, worker.conn
        worker.process, worker.conn = None, None
        if process is not None:
            if process.is_alive():
                process.kill()  # SIGKILL also ends a stopped (SIGSTOP) process
            process.join(timeout=5)
        if conn is not None:
            conn.close()

    # -- a round ---------------------------------------------------------------------------

    def send(self, worker: SiloWorker, request: TrainRequest | SecureRequest) -> Dropped | None:
        """Send ``request``; a :class:`Dropped` if the silo cannot be reached."""
        if not worker.up:
            return Dropped(worker.name, f"worker is down ({worker.down_reason or 'not started'})")
        assert worker.conn is not None and worker.process is not None
        try:
            worker.conn.send(request)
        except PIPE_CLOSED:
            return Dropped(worker.name, death_reason(worker.process))
        return None

    def replies(
        self,
        selected: list[SiloWorker],
        unreachable: dict[str, Dropped],
        *,
        timeout: float | None,
        on_wait: WaitNotice | None = None,
    ) -> Iterator[tuple[SiloWorker, Reply | Dropped]]:
        """Each selected silo's reply, in silo order, as soon as it and every silo before it
        are settled; silos that die or miss the deadline come out as :class:`Dropped`."""
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        settled: dict[str, Reply | Dropped] = dict(unreachable)
        pending = {w.name: w for w in selected if w.name not in settled}
        next_notice = started + WAIT_NOTICE_S
        for worker in selected:
            while worker.name not in settled:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    assert timeout is not None  # the deadline comes from it
                    for late in pending.values():
                        settled[late.name] = _too_late(late, timeout)
                    pending.clear()
                    break
                limit = (deadline if deadline is not None else next_notice) - now
                ready = set(self._wait(pending.values(), max(limit, 0.0)))
                for other in list(pending.values()):
                    assert other.conn is not None and other.process is not None
                    if other.conn in ready or other.process.sentinel in ready:
                        reply = self._recv(other)
                        if isinstance(reply, Ready):  # sent once, at start-up, never in a round
                            raise FederationError(f"silo {other.name} sent Ready during a round")
                        settled[other.name] = reply
                        del pending[other.name]
                if deadline is None and time.monotonic() >= next_notice and pending:
                    if on_wait is not None:
                        waiting = [
                            f"{w.name} (process stopped)" if _is_stopped(w.process) else w.name
                            for w in pending.values()
                        ]
                        on_wait(waiting, time.monotonic() - started)
                    next_notice += WAIT_NOTICE_S
            yield worker, settled[worker.name]

    def first_reply(
        self,
        busy: list[SiloWorker],
        started: dict[str, float],
        *,
        timeout: float | None,
        on_wait: WaitNotice | None = None,
    ) -> tuple[SiloWorker, Reply | Dropped]:
        """The first of ``busy`` to settle (asynchronous rounds; among replies already in,
        the first in ``busy``'s order): its reply, or :class:`Dropped` when it died or
        ``timeout`` seconds passed since ``started[name]`` (``time.monotonic``) without one."""
        waiting_since = time.monotonic()
        next_notice = waiting_since + WAIT_NOTICE_S
        while True:
            for worker in busy:
                if not worker.up:
                    return worker, Dropped(worker.name, f"worker is down ({worker.down_reason})")
            # A reply already in its pipe counts, however long the orchestrator took to look
            # (folding, evaluating, restarting a worker): read before judging deadlines.
            arrived = self._first_ready(busy, 0.0)
            if arrived is not None:
                return arrived
            now = time.monotonic()
            for worker in busy:
                if timeout is not None and now >= started[worker.name] + timeout:
                    return worker, _too_late(worker, timeout)
            limits = [next_notice - now]
            if timeout is not None:
                limits += [started[w.name] + timeout - now for w in busy]
            arrived = self._first_ready(busy, max(min(limits), 0.0))
            if arrived is not None:
                return arrived
            if time.monotonic() >= next_notice:
                if on_wait is not None and timeout is None:
                    on_wait([w.name for w in busy], time.monotonic() - waiting_since)
                next_notice += WAIT_NOTICE_S

    def _first_ready(
        self, busy: list[SiloWorker], timeout: float
    ) -> tuple[SiloWorker, Reply | Dropped] | None:
        """The first of ``busy`` (in their order) with a reply or an exit within
        ``timeout``, and what it is; None if none."""
        ready = set(self._wait(busy, timeout))
        for worker in busy:
            assert worker.conn is not None and worker.process is not None
            if worker.conn in ready or worker.process.sentinel in ready:
                reply = self._recv(worker)
                if isinstance(reply, Ready):
                    raise FederationError(f"silo {worker.name} sent Ready during a round")
                return worker, reply
        return None

    @staticmethod
    def _wait(workers: Iterable[SiloWorker], timeout: float) -> list[Any]:
        handles: list[Any] = []
        for worker in workers:
            assert worker.conn is not None and worker.process is not None
            handles += [worker.conn, worker.process.sentinel]
        return list(wait(handles, timeout=timeout))

    def _recv(self, worker: SiloWorker) -> Reply | Dropped | Ready:
        """The worker's next message, or Dropped if it died; a failure raises."""
        assert worker.conn is not None and worker.process is not None
        try:
            if worker.conn.poll():
                message = worker.conn.recv()
            else:  # only the process sentinel fired: it exited without a word
                return Dropped(worker.name, death_reason(worker.process))
        except PIPE_CLOSED:
            return Dropped(worker.name, death_reason(worker.process))
        if isinstance(message, WorkerFailure):
            lines = message.message.strip().splitlines() or ["(no message)"]
            error = FederationError(f"silo {message.silo} failed: {lines[-1]}")
            error.add_note(f"in the worker of silo {message.silo}:\n{message.message}")
            raise error
        if isinstance(message, (TrainReply, Diverged, Ready, *SECURE_REPLIES)):
            return message
        raise FederationError(f"silo {worker.name} sent an unexpected reply: {message!r}")
