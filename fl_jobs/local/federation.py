"""The local federation loop: workers per silo, the job's strategy on the orchestrator side.

Each round is :class:`fl_jobs.rounds.round_engine.RoundEngine`'s, the one the model-store
orchestrator runs too, over :class:`fl_jobs.local.pipes.PipesServer` (the workers' pipes and
files); this loop starts the workers, publishes the global model, and checkpoints.

The orchestrator (this process) holds the global model and the test set. It sends each
selected silo the path of the global model file and the strategy's settings for the silo this
round (e.g. FedProx's ``proximal_mu``), and gets back the path of an update file, a sample
count and metrics; it validates and screens every update and hands it to the strategy in a
fixed silo order (so a seed always gives the same weights). It never opens a silo folder.

Faults: a silo whose worker dies or does not answer within ``round_timeout`` is left out of the
round, and so is an update that screening rejects (wrong tensors, non-finite values, an
outlying norm); if at least ``min_silos`` updates remain the round completes, and a dropped
worker is restarted and trains again from the next round's global model. Otherwise the job
stops with :class:`QuorumLostError` and the last complete round is what is kept. After every
round the caller gets a :class:`FederationState` (``on_state``): with it,
``run_federation(resume=...)`` continues to bit-identical weights.

With ``secure_aggregation`` the workers write no update files: they keep their trained weights
and the orchestrator gets only masked updates, whose sum it unmasks into the round's weighted
mean for the strategy's server step (:mod:`fl_jobs.local.secure_round`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fl_jobs.config import JobConfig
from fl_jobs.core.evaluation import evaluate
from fl_jobs.core.local_sgd import PlainSGD
from fl_jobs.core.model_io import save_weights
from fl_jobs.core.seeds import derive_seed
from fl_jobs.core.torch_threads import single_threaded
from fl_jobs.core.training import state_weights
from fl_jobs.errors import RunFolderError
from fl_jobs.local.pipes import PipesServer
from fl_jobs.local.prepare import PreparedJob, prepare_job
from fl_jobs.local.round_ledger import Notify
from fl_jobs.local.run_identity import start_run
from fl_jobs.local.worker_pool import FederationError, WorkerPool
from fl_jobs.rounds.async_engine import AsyncEngine
from fl_jobs.rounds.federation_state import (
    FederationState,
    RoundRecord,
    dp_history,
)
from fl_jobs.rounds.job_parts import build_strategy
from fl_jobs.rounds.round_engine import RoundEngine
from fl_jobs.secure_aggregation import FixedPointCodec
from fl_jobs.silo.silo_dp import SiloDPAggregator, silo_dp_on
from fl_jobs.strategies.base import MeanStrategy, Strategy
from fl_jobs.strategies.registry import get_info, strategy_title

__all__ = [
    "FederationError",
    "FederationResult",
    "FederationState",
    "RoundRecord",
    "run_federation",
]


@dataclass
class FederationResult:
    example: str
    metric_name: str
    higher_is_better: bool
    silo_names: list[str]
    silo_sizes: list[int]
    history: list[RoundRecord]
    final_metrics: dict[str, float]
    final_weights: dict[str, torch.Tensor]
    wall_seconds: float
    initial_metrics: dict[str, float] = field(default_factory=dict)
    #: With DP-SGD: epsilon spent by each silo over the run (at ``config.privacy.target_delta``).
    epsilon_per_silo: dict[str, float] | None = None
    #: How tables and plots name the strategy (e.g. FedAdam, Multi-Krum).
    strategy: str = "FedAvg"


Progress = Callable[[RoundRecord], None]


def warm_up_torch(model: torch.nn.Module, prepared: PreparedJob) -> None:
    """One throwaway training step before forking: torch initialises lazily, and paying it
    once here instead of once per forked worker makes the first round as fast as the rest.

    With DP-SGD the workers train through Opacus and ``torch.optim``: both are imported here
    too (``torch.optim``'s first optimizer imports ``torch._dynamo``), once for every worker."""
    ds = prepared.dataset
    scratch = prepared.example.build_model(prepared.config.example, ds.shape)
    scratch.load_state_dict(model.state_dict())
    if prepared.config.privacy.clip_norm is not None:
        import opacus  # noqa: F401

        torch.optim.SGD(scratch.parameters(), lr=1e-3)
    opt = PlainSGD(scratch.parameters(), lr=1e-3, momentum=0.5)
    X = torch.from_numpy(np.ascontiguousarray(ds.X[:2], dtype=np.float32))
    dtype = torch.int64 if prepared.example.task == "classification" else torch.float32
    y = torch.as_tensor(ds.y[:2], dtype=dtype)
    prepared.example.loss_fn(scratch(X), y).backward()
    opt.step()


def initial_model(prepared: PreparedJob) -> torch.nn.Module:
    """The seeded initial global model (the baselines start from the same weights)."""
    torch.manual_seed(prepared.config.federation.seed)
    return prepared.example.build_model(prepared.config.example, prepared.dataset.shape)


def run_federation(
    config: JobConfig,
    *,
    prepared: PreparedJob | None = None,
    progress: Progress | None = None,
    keep_files: bool = False,
    resume: FederationState | None = None,
    on_state: Callable[[FederationState], None] | None = None,
    notify: Notify | None = None,
    cache: Path | None = None,
) -> FederationResult:
    """Run rounds ``resume.round + 1 .. config.federation.rounds`` (all of them without ``resume``)
    across ``config.federation.silos`` local workers.

    ``on_state`` gets the state after every complete round (to checkpoint it), ``notify`` a
    line for each fault event, ``cache`` is the silo data cache (None: write silo folders
    directly).
    """
    with single_threaded():
        loop = _Federation(config, prepared or prepare_job(config), keep_files, cache)
        return loop.run(resume=resume, progress=progress, on_state=on_state, notify=notify)


def initial_state(prepared: PreparedJob) -> FederationState:
    """Round 0: the seeded initial model, a fresh strategy and selection RNG."""
    config = prepared.config
    model = initial_model(prepared)
    strategy = build_strategy(config)
    rng = np.random.default_rng(derive_seed(config.federation.seed, 0xC11E))
    ds = prepared.dataset
    return FederationState(
        round=0,
        global_weights=state_weights(model),
        strategy=strategy.name,
        strategy_state=strategy.state_dict(),
        rng_state=dict(rng.bit_generator.state),
        history=[],
        initial_metrics=evaluate(model, ds.test_X, ds.test_y, prepared.example),
    )


def result_from_state(
    config: JobConfig, prepared: PreparedJob, state: FederationState, wall_seconds: float
) -> FederationResult:
    """The result of the rounds in ``state`` (a finished run, or one that stopped early)."""
    final = state.history[-1].global_metrics if state.history else state.initial_metrics
    return FederationResult(
        example=config.example.name,
        metric_name=prepared.example.metric_name,
        higher_is_better=prepared.example.higher_is_better,
        silo_names=prepared.silo_names,
        silo_sizes=prepared.silo_sizes(),
        history=list(state.history),
        epsilon_per_silo=_privacy_spent(config, state.history),
        final_metrics=dict(final),
        final_weights=state.global_weights,
        wall_seconds=wall_seconds,
        initial_metrics=dict(state.initial_metrics),
        strategy=strategy_title(config.strategy.name, config.strategy.options)
        + (" + secure aggregation" if config.secure_aggregation.enabled else "")
        + (
            f" + FedBuff (M={config.federation.async_buffer})"
            if config.federation.async_buffer
            else ""
        ),
    )


class _Federation:
    def __init__(
        self, config: JobConfig, prepared: PreparedJob, keep_files: bool, cache: Path | None
    ) -> None:
        if config.run.output_dir is None:
            raise ValueError("run_federation needs config.run.output_dir (the run folder)")
        self.config = config
        self.prepared = prepared
        self.keep_files = keep_files
        self.cache = cache
        self.out = Path(config.run.output_dir)
        self.silo_dp = SiloDPAggregator(config, self.out) if silo_dp_on(config) else None
        self.silos_root = self.out / "silos"

    def run(
        self,
        *,
        resume: FederationState | None,
        progress: Progress | None,
        on_state: Callable[[FederationState], None] | None,
        notify: Notify | None,
    ) -> FederationResult:
        start = time.perf_counter()
        config, prepared = self.config, self.prepared
        if config.secure_aggregation.enabled:  # before any training: the sum must fit its ring
            FixedPointCodec(clip=config.secure_aggregation.clip).check_capacity(
                len(prepared.silo_names), max(prepared.silo_sizes())
            )
        for folder in (self.out / "models", self.out / "updates"):  # per-round scratch only
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
        self.silos_root.mkdir(parents=True, exist_ok=True)

        state = resume if resume is not None else initial_state(prepared)
        model = initial_model(prepared)
        warm_up_torch(model, prepared)
        strategy = build_strategy(config)
        rng = np.random.default_rng(derive_seed(config.federation.seed, 0xC11E))
        _restore(model, strategy, rng, state)

        # Binds every secure-aggregation session to this run; recorded before the workers
        # start, which read it as the run they serve.
        identity = start_run(self.out, resume=resume is not None)
        pool = WorkerPool(prepared, self.silos_root, self.cache)
        pipes = PipesServer(
            pool, self.out, identity=identity, notify=notify, keep_files=self.keep_files
        )
        engine = RoundEngine(
            prepared, pipes, prepared.silo_names, notify=notify, silo_dp=self.silo_dp
        )
        # As many workers may die while starting as the rounds can do without: they are
        # left out and restarted after the first round, as after a death mid-run.
        n = len(pool.workers)
        needed = max(
            config.federation.async_buffer or config.federation.min_silos or n,
            get_info(config.strategy.name).min_updates(config.strategy.options),
        )
        for silo, why in pool.start(tolerate=max(n - needed, 0)).items():
            if notify is not None:
                notify(f"{silo} {why}; it is left out and restarted after round {state.round + 1}")
        graceful = False
        try:
            if config.federation.async_buffer is not None:
                state = self._run_async(state, model, strategy, engine, pipes, on_state, progress)
            for rnd in range(state.round + 1, config.federation.rounds + 1):
                engine.publish(rnd - 1, state, strategy)
                state = engine.run(rnd, state, model, strategy, rng)
                if not self.keep_files:
                    pipes.forget(rnd)
                if on_state is not None:
                    on_state(state)
                if progress is not None:
                    progress(state.history[-1])
                engine.check_collapse(state)
                engine.rejoin(state.history[-1])
            graceful = True
        finally:
            pool.stop(graceful=graceful)
        save_weights(
            self.out / "global_model.pt", state.global_weights, meta={"rounds": state.round}
        )
        return result_from_state(config, prepared, state, time.perf_counter() - start)

    @staticmethod
    def _run_async(
        state: FederationState,
        model: torch.nn.Module,
        strategy: Strategy,
        engine: RoundEngine,
        pipes: PipesServer,
        on_state: Callable[[FederationState], None] | None,
        progress: Progress | None,
    ) -> FederationState:
        """Asynchronous rounds (FedBuff): every fold is checkpointed and reported as a round
        is; the job config admits only mean strategies here."""
        assert isinstance(strategy, MeanStrategy), strategy.name

        def on_fold(folded: FederationState) -> None:
            if on_state is not None:
                on_state(folded)
            if progress is not None:
                progress(folded.history[-1])
            engine.check_collapse(folded)

        engine.publish(state.round, state, strategy)
        return AsyncEngine(engine, pipes, on_fold=on_fold).run(state, model, strategy)


def _restore(
    model: torch.nn.Module, strategy: Strategy, rng: np.random.Generator, state: FederationState
) -> None:
    """Load a checkpointed state into the model, the strategy and the selection RNG."""
    if state.strategy != strategy.name:
        raise RunFolderError(
            f"the checkpoint holds the state of strategy {state.strategy!r}, this job uses "
            f"{strategy.name!r}",
            "resume with the settings the run started with, or start a new run",
        )
    try:
        model.load_state_dict(state.global_weights)
        strategy.load_state_dict(state.strategy_state)
        rng.bit_generator.state = state.rng_state
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        first = str(exc).splitlines()[0]
        raise RunFolderError(
            f"the checkpoint does not fit this job's model ({first})",
            "resume with the settings the run started with, or start a new run",
        ) from None


def _privacy_spent(config: JobConfig, history: list[RoundRecord]) -> dict[str, float] | None:
    """Epsilon each silo spent over the run (client sampling is not credited)."""
    if config.privacy.clip_norm is None:
        return None
    from fl_jobs.core.privacy import spent

    deltas = {
        silo: metrics["dp_delta"]
        for record in history
        for silo, metrics in record.silo_metrics.items()
        if "dp_delta" in metrics
    }
    return {silo: spent(dp_history(silo, history), delta) for silo, delta in deltas.items()}
