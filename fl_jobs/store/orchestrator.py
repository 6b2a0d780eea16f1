"""The orchestrator agent: drives one job's rounds through the model store.

It holds the job's lease, resumes from the last checkpoint in the store (or starts from the
seeded initial model), and for each round: picks the silos with the strategy, announces the
round, takes the replies in silo order under the quorum and the deadline, screens them, lets
the strategy aggregate, evaluates, and writes the new global model and its checkpoint to the
store before the head says the round is complete.

A round itself is :class:`fl_jobs.rounds.round_engine.RoundEngine`'s, the local engine's own, over
the store transport.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fl_jobs.core.model_io import save_weights
from fl_jobs.core.seeds import derive_seed
from fl_jobs.errors import FLJobError
from fl_jobs.local.federation import (
    FederationState,
    initial_model,
    initial_state,
)
from fl_jobs.local.prepare import PreparedJob
from fl_jobs.rounds.async_engine import AsyncEngine
from fl_jobs.rounds.checkpoint import load_checkpoint, save_checkpoint
from fl_jobs.rounds.job_parts import build_strategy
from fl_jobs.rounds.round_engine import RoundEngine
from fl_jobs.silo.silo_dp import SiloDPAggregator, silo_dp_on
from fl_jobs.store import layout
from fl_jobs.store.blobs import Blob, Store
from fl_jobs.store.lease import JobLease
from fl_jobs.store.server import StoreServer
from fl_jobs.strategies.base import MeanStrategy

log = logging.getLogger("fl_jobs.store")

MODEL_FOLDER = "model"
"""The final MLflow model's folder in the orchestrator's run folder (``--out``)."""
Notify = Callable[[str], None]


class StoreOrchestrator:
    def __init__(
        self,
        prepared: PreparedJob,
        *,
        job: str,
        store: Store,
        silos: list[str],
        out: Path,
        notify: Notify | None = None,
    ) -> None:
        self.prepared, self.config = prepared, prepared.config
        self.job, self.store, self.silos, self.out = job, store, silos, out
        self.notify = notify or (lambda line: log.info("%s", line))
        self.transport = StoreServer(store, job, silos, self.config)
        silo_dp = SiloDPAggregator(self.config, out) if silo_dp_on(self.config) else None
        self.rounds = RoundEngine(
            prepared, self.transport, silos, notify=self.notify, silo_dp=silo_dp
        )
        #: One line per round this orchestrator ran: the round record and its store cost.
        self.rounds_path = out / "rounds.jsonl"

    def run(self) -> FederationState:
        lease = JobLease(self.store, self.job, self.out / "lease-id")
        lease.acquire()
        try:
            return self._run(lease)
        finally:
            lease.release()

    def _run(self, lease: JobLease) -> FederationState:
        config, prepared = self.config, self.prepared
        state = self._resume() or initial_state(prepared)
        model = initial_model(prepared)
        strategy = build_strategy(config)
        rng = np.random.default_rng(derive_seed(config.federation.seed, 0xC11E))
        model.load_state_dict(state.global_weights)
        strategy.load_state_dict(state.strategy_state)
        rng.bit_generator.state = state.rng_state
        if state.round:
            self.notify(f"resumed job {self.job} after round {state.round} from the store")
        self.rounds.publish(state.round, state, strategy)
        self._before = self.store.cost.copy()
        if config.federation.async_buffer is not None:
            assert isinstance(strategy, MeanStrategy), strategy.name  # the config's rule

            def on_fold(folded: FederationState) -> None:
                lease.check()
                self._completed(folded)

            state = AsyncEngine(self.rounds, self.transport, on_fold=on_fold).run(
                state, model, strategy
            )
        for rnd in range(state.round + 1, config.federation.rounds + 1):
            lease.check()
            state = self.rounds.run(rnd, state, model, strategy, rng)
            self.rounds.publish(rnd, state, strategy)
            lease.check()
            self._completed(state)
            self.transport.set_head(rnd, self.transport.attempt, complete=rnd, state="running")
            # A dropped silo agent is restarted by its own host and picks up the next
            # round's task by itself: nothing to rejoin from here.
        self.transport.finish(state.round)
        save_weights(
            self.out / "global_model.pt", state.global_weights, meta={"rounds": state.round}
        )
        self._save_model()
        return state

    def _completed(self, state: FederationState) -> None:
        """A round (or fold) is done and its model published: checkpoint it, log its record
        with its store cost, say so, and stop a collapsed run."""
        self._checkpoint(state)
        cost = self.store.cost.since(self._before)
        self._before = self.store.cost.copy()
        line = {**state.history[-1].to_plain(), "store": cost}
        with self.rounds_path.open("a") as fh:
            fh.write(json.dumps(line) + "\n")
        record = state.history[-1]
        metric = self.prepared.example.metric_name
        self.notify(
            f"round {record.round}: {metric} "
            f"{record.global_metrics.get(metric, float('nan')):.4f}, "
            f"{len(record.silo_metrics)} of {len(record.selected)} silos, "
            f"{cost['requests']} requests, {cost['bytes_up'] + cost['bytes_down']} bytes"
        )
        self.rounds.check_collapse(state)

    def _save_model(self) -> None:
        """The final model as an MLflow model (``fl_jobs.serving``), which ``submit``
        registers in the workspace; a failure here keeps the weights and says so."""
        from fl_jobs.serving.export import save_model

        try:
            save_model(self.prepared, self.out / "global_model.pt", self.out / MODEL_FOLDER)
        except Exception as exc:
            self.notify(
                f"could not write the MLflow model ({type(exc).__name__}: {exc}); the final "
                f"weights are in {self.out / 'global_model.pt'}"
            )

    # -- checkpoints ------------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {"job": self.job, "silos": self.silos, "config": self.config.model_dump(mode="json")}

    def _checkpoint(self, state: FederationState) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.pt"
            save_checkpoint(path, state, settings=self._settings())
            self.store.create(
                layout.GLOBAL_CONTAINER,
                layout.checkpoint_blob(self.job, state.round),
                path.read_bytes(),
            )

    def _resume(self) -> FederationState | None:
        """The state after the last round whose checkpoint is in the store, if any."""
        names = self.store.list(layout.GLOBAL_CONTAINER, f"{self.job}/checkpoints/")
        if not names:
            return None
        latest = max(names)
        blob = self.store.read(layout.GLOBAL_CONTAINER, latest)
        if not isinstance(blob, Blob):
            raise FLJobError(f"checkpoint global/{latest} vanished while resuming", "try again")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.pt"
            path.write_bytes(blob.data)
            state, settings = load_checkpoint(path)
        if settings != self._settings():
            raise FLJobError(
                f"job {self.job} in the store was started with other settings",
                "resume it with the job file and manifest it started with, or use a new --job",
            )
        return state
