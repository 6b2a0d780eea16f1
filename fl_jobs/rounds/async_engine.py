"""Asynchronous rounds (FedBuff, Nguyen et al., AISTATS 2022) over any engine's wire.

Synchronous rounds wait for the slowest selected silo. Here every silo trains continuously:
as soon as a silo's update arrives it goes into a buffer, and every ``M`` (``async_buffer``)
arrivals the buffer is folded into the global model (:func:`fl_jobs.rounds.fedbuff.fold`,
each update against the model version it trained from, weighted by staleness) and the silos
whose updates were folded start again from the new model. A fold is this engine's "round":
it is evaluated, checked for divergence, recorded (with each update's task, base version and
staleness) and checkpointed like one, and ``--rounds`` counts folds.

Choices, and why:
- A fold takes at most one update per silo: a silo whose update is buffered waits for the fold
  before its next task, so a fold's record holds one training per silo, as a round's does
  (the privacy accounting per silo and round then holds unchanged).
- The buffer is summed in silo order, not arrival order, so the same buffer always gives the
  same bits (the oracle test reproduces a fold exactly).
- Which updates land in which fold depends on timing, so two runs of one seed differ; a resumed
  run restarts the tasks that were in flight from the checkpointed model.
- A silo that dies or misses ``round_timeout`` (counted per task, from its dispatch; a reply
  already in counts however late the orchestrator reads it) is left out, restarted and given
  a new task. A silo left out :data:`MAX_STRIKES` times in a row without an update is set
  aside until the next fold (then tried once more), so a silo that cannot answer never spins;
  the job stops (quorum lost) when fewer than ``M`` silos can still contribute, keeping every
  fold done.
- Secure aggregation, silo-level DP, client fraction and robust strategies are refused by the
  job config: each needs a fixed cohort per round, or every update of a round at once.

The wire is an :class:`~fl_jobs.store.transport.AsyncServerTransport`: the local workers'
pipes (:class:`~fl_jobs.local.pipes.PipesServer`) or the model store
(:class:`~fl_jobs.store.server.StoreServer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from fl_jobs.core.evaluation import evaluate
from fl_jobs.core.seeds import derive_seed
from fl_jobs.errors import QuorumLostError
from fl_jobs.rounds.fedbuff import Buffered, fold
from fl_jobs.rounds.federation_state import FederationState, RoundRecord
from fl_jobs.rounds.round_engine import RoundEngine, add_epsilon
from fl_jobs.store.transport import (
    AsyncServerTransport,
    Diverged,
    Dropped,
    Rejected,
    TrainResult,
    TrainTask,
)
from fl_jobs.strategies.base import MeanStrategy

#: Called with the state after every fold, before its model is published: checkpoint here.
#: Times in a row a silo may be left out (dropped or rejected) before it waits for a fold.
MAX_STRIKES = 3
OnFold = Callable[[FederationState], None]


@dataclass(frozen=True)
class _Pending:
    task: TrainTask
    base: int
    started: float


def next_task_number(state: FederationState) -> int:
    """The first task number after those the checkpointed folds record."""
    for record in reversed(state.history):
        if record.asynchronous:
            return int(record.asynchronous["next_task"])
    return 1


class AsyncEngine:
    """Drives folds over ``transport``; ``rounds`` lends the synchronous engine's checks
    (divergence, the knob to blame, collapse) so that both engines judge a model alike."""

    def __init__(
        self,
        rounds: RoundEngine,
        transport: AsyncServerTransport,
        *,
        on_fold: OnFold | None = None,
    ) -> None:
        self.rounds, self.transport, self.on_fold = rounds, transport, on_fold
        self.config, self.prepared = rounds.config, rounds.prepared
        self.silos, self.index, self.notify = rounds.silos, rounds.index, rounds.notify
        if self.config.federation.async_buffer is None:
            raise ValueError("AsyncEngine needs config.federation.async_buffer")
        self.buffer_size = self.config.federation.async_buffer

    def run(
        self, state: FederationState, model: torch.nn.Module, strategy: MeanStrategy
    ) -> FederationState:
        """Folds ``state.round + 1 .. config.federation.rounds``, from ``state`` (published by the
        caller as version ``state.round``)."""
        self._state, self._model, self._strategy = state, model, strategy
        self._version = state.round
        self._next = max(next_task_number(state), self.transport.first_free_task())
        self._models: dict[int, dict[str, torch.Tensor]] = {state.round: state.global_weights}
        self._busy: dict[str, _Pending] = {}
        self._buffer: dict[str, tuple[TrainResult, _Pending]] = {}
        self._down: dict[str, str] = {}
        self._dropped: dict[str, str] = {}
        self._rejected: dict[str, str] = {}
        self._strikes: dict[str, int] = {}
        self._t0 = time.perf_counter()
        if self._version >= self.config.federation.rounds:
            return state  # a finished run: nothing to train
        for silo in self.silos:
            self._dispatch(silo)
        while self._version < self.config.federation.rounds:
            self._check_quorum()
            silo, reply = self.transport.next_arrival(
                {s: p.task for s, p in self._busy.items()},
                {s: p.started for s, p in self._busy.items()},
                timeout=self.config.federation.round_timeout,
                template=self._state.global_weights,
            )
            pending = self._busy.pop(silo)
            if isinstance(reply, Dropped):
                self._left_out(silo, reply.reason, self._dropped)
                if not self._struck_out(silo, reply.reason):
                    self._restart(silo)
            elif isinstance(reply, Rejected):
                self._left_out(silo, reply.reason, self._rejected)
                if not self._struck_out(silo, reply.reason):
                    self._dispatch(silo)
            elif isinstance(reply, Diverged):
                raise self.rounds.diverged(
                    self._version + 1, silo, f"its training loss became {reply.loss}"
                )
            elif isinstance(reply, TrainResult):
                metrics = {k: float(v) for k, v in reply.metrics.items()}
                so_far = {s: r.metrics for s, (r, _) in self._buffer.items()}
                self.rounds.check_train_loss(self._version + 1, silo, metrics, self._state, so_far)
                self._strikes.pop(silo, None)
                self._buffer[silo] = (reply, pending)
                if len(self._buffer) >= self.buffer_size:
                    self._fold()
            else:  # Trained: secure aggregation, which the config refuses with async rounds
                raise RuntimeError(f"{silo} sent {type(reply).__name__} to an async round")
        return self._state

    # -- the loop's parts ----------------------------------------------------------------------

    def _dispatch(self, silo: str) -> None:
        number = self._next
        self._next += 1
        task = TrainTask(
            silo=silo,
            round=number,
            seed=derive_seed(self.config.federation.seed, number, self.index[silo]),
            config=self._strategy.silo_config(number, silo),
        )
        failed = self.transport.dispatch(task, self._version)
        if failed is not None:
            self._left_out(silo, failed.reason, self._dropped)
            self._down[silo] = failed.reason
            return
        self._busy[silo] = _Pending(task, self._version, time.monotonic())

    def _struck_out(self, silo: str, reason: str) -> bool:
        """Count a time ``silo`` was left out; at :data:`MAX_STRIKES` in a row it waits for
        the next fold (True)."""
        self._strikes[silo] = self._strikes.get(silo, 0) + 1
        if self._strikes[silo] < MAX_STRIKES:
            return False
        self._down[silo] = f"left out {self._strikes[silo]} times in a row, last: {reason}"
        self._say(f"{silo} waits for the next fold before it is tried again")
        return True

    def _restart(self, silo: str) -> None:
        failure = self.transport.rejoin(silo)
        if failure is None:
            self._down.pop(silo, None)
            self._dispatch(silo)
        else:
            self._down[silo] = failure
            self._say(f"{silo} could not be restarted ({failure}); retried after the next fold")

    def _left_out(self, silo: str, reason: str, book: dict[str, str]) -> None:
        book[silo] = reason
        self._say(f"{silo} left out ({reason})")

    def _say(self, line: str) -> None:
        if self.notify is not None:
            self.notify(f"round {self._version + 1}: {line}")

    def _check_quorum(self) -> None:
        """Stop when fewer than ``M`` silos can still put an update in the buffer."""
        able = len(self._busy) + len(self._buffer)
        if able >= self.buffer_size:
            return
        out = ", ".join(f"{s} ({why})" for s, why in sorted(self._down.items())) or "none"
        raise QuorumLostError(
            f"round {self._version + 1}: only {able} silos can still contribute, and a fold "
            f"needs {self.buffer_size} updates (down: {out})",
            "bring the silos back and resume, or lower --async-buffer",
        )

    def _fold(self) -> None:
        """Fold the buffer into version ``v + 1``, evaluate, record, publish, start the
        folded silos again."""
        rnd = self._version + 1
        items = sorted(self._buffer.items(), key=lambda kv: self.index[kv[0]])
        current = self._state.global_weights
        mean = fold(
            self._version,
            current,
            [Buffered(s, r.weights, p.base) for s, (r, p) in items],
            self._models,
            self.index,
        )
        new = self._strategy.server_step(rnd, current, mean)
        self._model.load_state_dict(new)
        ds = self.prepared.dataset
        metrics = evaluate(self._model, ds.test_X, ds.test_y, self.prepared.example)
        silo_metrics = {
            s: {**{k: float(v) for k, v in r.metrics.items()}, "samples": float(r.n_samples)}
            for s, (r, _) in items
        }
        self.rounds.check_global_loss(rnd, metrics, self._state, silo_metrics)
        if self.config.privacy.clip_norm is not None:
            add_epsilon(silo_metrics, self._state.history)
        record = RoundRecord(
            round=rnd,
            selected=[s for s, _ in items],
            global_metrics=metrics,
            silo_metrics=silo_metrics,
            seconds=time.perf_counter() - self._t0,
            dropped=self._dropped,
            rejected=self._rejected,
            asynchronous={
                "buffer": self.buffer_size,
                "updates": {
                    s: {"task": p.task.round, "base": p.base, "staleness": self._version - p.base}
                    for s, (_, p) in items
                },
                "next_task": self._next,
            },
        )
        self._state = FederationState(
            round=rnd,
            global_weights=new,
            strategy=self._strategy.name,
            strategy_state=self._strategy.state_dict(),
            rng_state=self._state.rng_state,
            history=[*self._state.history, record],
            initial_metrics=self._state.initial_metrics,
        )
        self._version = rnd
        self._models[rnd] = new
        self._buffer.clear()
        self._dropped, self._rejected = {}, {}
        self._t0 = time.perf_counter()
        # Checkpointed before it is published: which updates a fold takes depends on timing,
        # so a fold redone after a restart may differ, and a published version is final
        # (create-only in the model store); a restart publishes the checkpointed one.
        if self.on_fold is not None:
            self.on_fold(self._state)
        self.rounds.publish(rnd, self._state, self._strategy)
        if rnd >= self.config.federation.rounds:
            return
        for silo, _ in items:
            self._dispatch(silo)
        for silo in sorted(self._down, key=self.index.__getitem__):
            if silo not in self._busy:
                self._restart(silo)
        keep = {self._version} | {p.base for p in self._busy.values()}
        for version in [v for v in self._models if v not in keep]:
            del self._models[version]
        self.transport.retire(keep, {p.task.round for p in self._busy.values()})
