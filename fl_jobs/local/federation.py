"""The local federation loop: workers per silo, the job's strategy on the orchestrator side.

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

import functools
import math
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fl_jobs.collapse import collapse_reason
from fl_jobs.config import JobConfig
from fl_jobs.errors import CollapseError, DivergenceError, ModelUpdateError, RunFolderError
from fl_jobs.evaluation import evaluate
from fl_jobs.knob_blame import likely_knob
from fl_jobs.local.prepare import PreparedJob, prepare_job
from fl_jobs.local.round_ledger import Notify, RoundLedger
from fl_jobs.local.secure_round import SecureRound
from fl_jobs.local.wait_notice import wait_notice
from fl_jobs.local.worker import Diverged, TrainReply, TrainRequest
from fl_jobs.local.worker_pool import Dropped, FederationError, SiloWorker, WorkerPool
from fl_jobs.local_sgd import PlainSGD
from fl_jobs.model_io import read_update, save_weights
from fl_jobs.screening import screen_norms
from fl_jobs.secure_aggregation import FixedPointCodec
from fl_jobs.secure_aggregation.silo_guard import session_policy
from fl_jobs.seeds import derive_seed
from fl_jobs.silo_dp import SiloDPAggregator, silo_dp_on
from fl_jobs.strategies.base import MeanStrategy, Strategy
from fl_jobs.strategies.registry import build_strategy, get_info, strategy_title
from fl_jobs.torch_threads import single_threaded
from fl_jobs.training import LocalUpdate, state_weights

__all__ = [
    "FederationError",
    "FederationResult",
    "FederationState",
    "RoundRecord",
    "run_federation",
]

#: A round's training loss this many times the untrained model's test loss is divergence.
DIVERGENCE_FACTOR = 1e3


@dataclass
class RoundRecord:
    """One round: who trained, the global model's test metrics, each silo's metrics, the
    silos left out (silo -> why) and the silos whose update screening rejected (silo -> why);
    with secure aggregation, how its sum was reached (attempts, silos whose masks were
    removed).

    A rejected silo did train: its metrics (and, with DP, the privacy it spent) are kept."""

    round: int
    selected: list[str]
    global_metrics: dict[str, float]
    silo_metrics: dict[str, dict[str, float]]
    seconds: float
    dropped: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    secure_aggregation: dict[str, Any] | None = None
    #: With silo-level DP: its mode and the epsilon spent after this round (fl_jobs.silo_dp).
    silo_dp: dict[str, Any] | None = None

    def to_plain(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "selected": list(self.selected),
            "global_metrics": dict(self.global_metrics),
            "silo_metrics": {k: dict(v) for k, v in self.silo_metrics.items()},
            "seconds": self.seconds,
            "dropped": dict(self.dropped),
            "rejected": dict(self.rejected),
            "secure_aggregation": None
            if self.secure_aggregation is None
            else dict(self.secure_aggregation),
            "silo_dp": None if self.silo_dp is None else dict(self.silo_dp),
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> RoundRecord:
        return cls(**data)


@dataclass
class FederationState:
    """Everything after round ``round`` that a resumed job needs to continue exactly."""

    round: int
    global_weights: dict[str, torch.Tensor]
    strategy: str
    strategy_state: dict[str, Any]
    rng_state: dict[str, Any]
    history: list[RoundRecord]
    initial_metrics: dict[str, float]


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
    #: With DP-SGD: epsilon spent by each silo over the run (at ``config.target_delta``).
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
    scratch = prepared.example.build_model(prepared.config, ds.shape)
    scratch.load_state_dict(model.state_dict())
    if prepared.config.clip_norm is not None:
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
    torch.manual_seed(prepared.config.seed)
    return prepared.example.build_model(prepared.config, prepared.dataset.shape)


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
    """Run rounds ``resume.round + 1 .. config.rounds`` (all of them without ``resume``)
    across ``config.silos`` local workers.

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
    rng = np.random.default_rng(derive_seed(config.seed, 0xC11E))
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


def suggested_lr(config: JobConfig, prepared: PreparedJob, round: int) -> float:
    """A learning rate to try after divergence: the example's default if the job used more;
    else a hundredth of the job's when it diverged in round 1 (far too large: a tenth, e.g.
    on diabetes' raw targets, diverged again a round later), a tenth after that."""
    lr = float(config.lr or 0.01)
    default = prepared.example.defaults.get("lr")
    if default is not None and lr > float(default):
        return float(default)
    return lr / 100 if round == 1 else lr / 10


def result_from_state(
    config: JobConfig, prepared: PreparedJob, state: FederationState, wall_seconds: float
) -> FederationResult:
    """The result of the rounds in ``state`` (a finished run, or one that stopped early)."""
    final = state.history[-1].global_metrics if state.history else state.initial_metrics
    return FederationResult(
        example=config.example,
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
        + (" + secure aggregation" if config.secure_aggregation else ""),
    )


@dataclass
class _RoundContext:
    """What one round's aggregation works with."""

    rnd: int
    state: FederationState
    strategy: Strategy
    selected: list[SiloWorker]
    pool: WorkerPool
    ledger: RoundLedger


class _Federation:
    def __init__(
        self, config: JobConfig, prepared: PreparedJob, keep_files: bool, cache: Path | None
    ) -> None:
        if config.output_dir is None:
            raise ValueError("run_federation needs config.output_dir (the run folder)")
        self.config = config
        self.prepared = prepared
        self.keep_files = keep_files
        self.cache = cache
        out = Path(config.output_dir)
        #: Binds every secure-aggregation session to this run (keys are fresh per session).
        self.run_id = str(out.resolve())
        self.silo_dp = SiloDPAggregator(config, out) if silo_dp_on(config) else None
        self.silos_root, self.models_dir, self.updates_dir = (
            out / "silos",
            out / "models",
            out / "updates",
        )

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
        if config.secure_aggregation:  # before any training: the sum must fit its ring
            FixedPointCodec(clip=config.secure_aggregation_clip).check_capacity(
                len(prepared.silo_names), max(prepared.silo_sizes())
            )
        for folder in (self.models_dir, self.updates_dir):  # per-round scratch files only
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
        self.silos_root.mkdir(parents=True, exist_ok=True)

        state = resume if resume is not None else initial_state(prepared)
        model = initial_model(prepared)
        warm_up_torch(model, prepared)
        strategy = build_strategy(config)
        rng = np.random.default_rng(derive_seed(config.seed, 0xC11E))
        _restore(model, strategy, rng, state)

        pool = WorkerPool(prepared, self.silos_root, self.cache)
        # As many workers may die while starting as the rounds can do without: they are
        # left out and restarted after the first round, as after a death mid-run.
        n = len(pool.workers)
        needed = max(
            config.min_silos or n,
            get_info(config.strategy.name).min_updates(config.strategy.options),
        )
        for silo, why in pool.start(tolerate=max(n - needed, 0)).items():
            if notify is not None:
                notify(f"{silo} {why}; it is left out and restarted after round {state.round + 1}")
        graceful = False
        try:
            for rnd in range(state.round + 1, config.rounds + 1):
                state = self._round(rnd, state, model, strategy, rng, pool, notify)
                if on_state is not None:
                    on_state(state)
                if progress is not None:
                    progress(state.history[-1])
                self._check_collapse(state)
                self._restart_dropped(rnd, state.history[-1], pool, notify)
            graceful = True
        finally:
            pool.stop(graceful=graceful)
        save_weights(
            Path(config.output_dir or ".") / "global_model.pt",
            state.global_weights,
            meta={"rounds": state.round},
        )
        return result_from_state(config, prepared, state, time.perf_counter() - start)

    def _round(
        self,
        rnd: int,
        state: FederationState,
        model: torch.nn.Module,
        strategy: Strategy,
        rng: np.random.Generator,
        pool: WorkerPool,
        notify: Notify | None,
    ) -> FederationState:
        config, prepared = self.config, self.prepared
        example, ds = prepared.example, prepared.dataset
        t0 = time.perf_counter()
        selected = strategy.configure_round(rnd, pool.workers, rng)
        global_path = self.models_dir / f"global_{rnd:04d}.pt"
        save_weights(global_path, state.global_weights, meta={"round": rnd})
        round_dir = self.updates_dir / f"round_{rnd:04d}"
        info = get_info(config.strategy.name)
        ledger = RoundLedger(
            rnd,
            len(selected),
            config.min_silos,
            notify,
            floor=info.min_updates(config.strategy.options),
            strategy=config.strategy.describe(),
            secure_floor=session_policy(config).floor if config.secure_aggregation else 0,
        )
        secure = config.secure_aggregation
        for worker in selected:
            request = TrainRequest(
                round=rnd,
                global_path=global_path,
                update_path=None if secure else round_dir / f"{worker.name}.pt",
                seed=derive_seed(config.seed, rnd, worker.index),
                config=strategy.silo_config(rnd, worker.name),
            )
            failed = pool.send(worker, request)
            if failed is not None:
                ledger.unreachable[worker.name] = failed
        ctx = _RoundContext(rnd, state, strategy, selected, pool, ledger)
        secure_info: dict[str, Any] | None = None
        if secure:
            new_weights, secure_info = self._aggregate_secure(ctx)
        else:
            new_weights = self._aggregate(ctx)
        model.load_state_dict(new_weights)
        global_metrics = evaluate(model, ds.test_X, ds.test_y, example)
        loss = global_metrics.get("loss", 0.0)
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * _scale(state.initial_metrics):
            raise self._diverged(
                rnd,
                None,
                f"the global model's test loss became {loss:.3g}",
                list(ledger.silo_metrics.values()),
            )
        if not self.keep_files:
            global_path.unlink()
            shutil.rmtree(round_dir, ignore_errors=True)
        if config.clip_norm is not None:
            _add_epsilon(ledger.silo_metrics, state.history)
        record = RoundRecord(
            round=rnd,
            selected=[w.name for w in selected],
            global_metrics=global_metrics,
            silo_metrics=ledger.silo_metrics,
            seconds=time.perf_counter() - t0,
            dropped=ledger.dropped,
            rejected=ledger.rejected,
            secure_aggregation=secure_info,
            silo_dp=None if self.silo_dp is None else self.silo_dp.record(len(state.history) + 1),
        )
        return FederationState(
            round=rnd,
            global_weights=new_weights,
            strategy=strategy.name,
            strategy_state=strategy.state_dict(),
            rng_state=dict(rng.bit_generator.state),
            history=[*state.history, record],
            initial_metrics=state.initial_metrics,
        )

    def _aggregate(self, ctx: _RoundContext) -> dict[str, torch.Tensor]:
        """The round's new global weights: the only place that reads the silos' updates.

        Each reply's update file is read and validated in silo order (:meth:`_updates`),
        screened for outlying norms when the job asks for it, and streamed into
        ``strategy.aggregate``.
        """
        updates = self._updates(ctx)
        weights = ctx.state.global_weights
        if self.silo_dp is not None:  # clipped deltas, summed, noised, over the fixed cohort
            assert isinstance(ctx.strategy, MeanStrategy), ctx.strategy.name
            mean = self.silo_dp.mean_of_updates(ctx.rnd, weights, updates, ctx.ledger.reject)
            return ctx.strategy.server_step(ctx.rnd, weights, mean)
        if self.config.screens_norms():
            updates = screen_norms(updates, weights, self.config.norm_limit, ctx.ledger.reject)
        return ctx.strategy.aggregate(ctx.rnd, weights, updates)

    def _aggregate_secure(
        self, ctx: _RoundContext
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The round's new global weights from the masked sum of the trained silos' updates
        (no update is ever read), and how the sum was reached. Mean strategies only: the job
        config refuses robust ones with secure aggregation."""
        strategy = ctx.strategy
        assert isinstance(strategy, MeanStrategy), strategy.name
        trained = [w for w, _ in self._trained(ctx)]
        outcome = SecureRound(
            run_id=self.run_id,
            round=ctx.rnd,
            pool=ctx.pool,
            ledger=ctx.ledger,
            codec=FixedPointCodec(clip=self.config.secure_aggregation_clip),
            timeout=self.config.round_timeout,
        ).run(trained, ctx.state.global_weights)
        mean = outcome.mean
        if self.silo_dp is not None:  # the silos' noise shares are in the unmasked sum
            mean = self.silo_dp.mean_of_secure(ctx.rnd, ctx.state.global_weights, mean)
        new_weights = strategy.server_step(ctx.rnd, ctx.state.global_weights, mean)
        return new_weights, outcome.to_plain()

    def _updates(self, ctx: _RoundContext) -> Iterator[LocalUpdate]:
        """The selected silos' validated updates, in silo order, as their replies settle;
        invalid updates go to the ledger (which stops the round when the quorum is lost)."""
        for worker, reply in self._trained(ctx):
            assert reply.update_path is not None
            try:
                weights, meta = read_update(reply.update_path, ctx.state.global_weights)
            except ModelUpdateError as exc:
                ctx.ledger.reject(worker.name, str(exc).replace(f"{reply.update_path}: ", ""))
                continue
            ctx.ledger.silo_metrics[worker.name]["samples"] = float(meta["n_samples"])
            yield LocalUpdate(
                weights=weights,
                n_samples=int(meta["n_samples"]),
                metrics={k: float(v) for k, v in reply.metrics.items()},
                silo=worker.name,
            )

    def _trained(self, ctx: _RoundContext) -> Iterator[tuple[SiloWorker, TrainReply]]:
        """The selected silos' training replies, in silo order, as they settle; dead or
        silent silos go to the ledger, a diverged one stops the job."""
        config, rnd, ledger = self.config, ctx.rnd, ctx.ledger
        on_wait = wait_notice(rnd, ledger.notify)
        for worker, reply in ctx.pool.replies(
            ctx.selected, ledger.unreachable, timeout=config.round_timeout, on_wait=on_wait
        ):
            if isinstance(reply, Dropped):
                ledger.drop(worker.name, reply.reason)
                continue
            if isinstance(reply, Diverged):
                raise self._diverged(
                    rnd,
                    worker.name,
                    f"its training loss became {reply.loss}",
                    _metrics_so_far(ctx.state.history, ledger.silo_metrics),
                )
            if not isinstance(reply, TrainReply):
                raise FederationError(
                    f"silo {worker.name} sent a {type(reply).__name__} instead of its "
                    "training result"
                )
            metrics = {k: float(v) for k, v in reply.metrics.items()}
            self._check_train_loss(
                rnd,
                worker,
                metrics,
                ctx.state.initial_metrics,
                functools.partial(
                    _metrics_so_far, ctx.state.history, {**ledger.silo_metrics, "": metrics}
                ),
            )
            counted = {} if reply.n_samples is None else {"samples": float(reply.n_samples)}
            ledger.silo_metrics[worker.name] = {**metrics, **counted}
            yield worker, reply

    def _restart_dropped(
        self, rnd: int, record: RoundRecord, pool: WorkerPool, notify: Notify | None
    ) -> None:
        for worker in pool.workers:
            if worker.name not in record.dropped:
                continue
            failure = pool.restart(worker)
            if notify is not None:
                notify(
                    f"round {rnd}: {worker.name} restarted; it rejoins in round {rnd + 1}"
                    if failure is None
                    else f"round {rnd}: {worker.name} could not be restarted ({failure})"
                )

    def _check_train_loss(
        self,
        rnd: int,
        worker: SiloWorker,
        metrics: dict[str, float],
        initial: dict[str, float],
        seen: Callable[[], list[dict[str, float]]],
    ) -> None:
        loss = metrics.get("train_loss")
        if loss is None:
            return
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * _scale(initial):
            raise self._diverged(
                rnd,
                worker.name,
                f"its training loss reached {loss:.3g} (the untrained model's test loss is "
                f"{initial.get('loss', float('nan')):.3g})",
                seen(),
            )

    def _diverged(
        self,
        rnd: int,
        silo: str | None,
        what: str,
        silo_metrics: Iterable[Mapping[str, float]] = (),
    ) -> DivergenceError:
        where = f"at {silo}" if silo else "after aggregation"
        blame = likely_knob(
            self.config,
            example_lr=self.prepared.example.defaults.get("lr"),
            suggested_lr=suggested_lr(self.config, self.prepared, rnd),
            server_side=silo is None or rnd > 1,
            silo_metrics=silo_metrics,
        )
        return DivergenceError(f"training diverged in round {rnd} {where}: {what}", blame.fix)

    def _check_collapse(self, state: FederationState) -> None:
        """Stop a run whose model stays no better than the untrained one (fl_jobs.collapse);
        its rounds are already checkpointed."""
        ds = self.prepared.dataset
        classes = None
        if self.prepared.example.task == "classification":
            classes = int(np.unique(ds.y).size)
        reason = collapse_reason(
            state.history,
            state.initial_metrics,
            rounds=self.config.collapse_rounds,
            n_classes=classes,
        )
        if reason is None:
            return
        blame = likely_knob(
            self.config,
            example_lr=self.prepared.example.defaults.get("lr"),
            suggested_lr=suggested_lr(self.config, self.prepared, 2),
            server_side=True,
            silo_metrics=[m for r in state.history for m in r.silo_metrics.values()],
        )
        raise CollapseError(
            f"the model collapsed: {reason}",
            f"{blame.fix}; or --collapse-rounds 0 to train on regardless",
        )


def _metrics_so_far(
    history: list[RoundRecord], current: dict[str, dict[str, float]]
) -> list[dict[str, float]]:
    """Every silo metric of the run so far (for the knob blamed after divergence)."""
    return [m for r in history for m in r.silo_metrics.values()] + list(current.values())


def _scale(initial_metrics: dict[str, float]) -> float:
    loss = initial_metrics.get("loss", 1.0)
    return loss if math.isfinite(loss) and loss > 1e-12 else 1.0


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


def _dp_history(
    silo: str, history: list[RoundRecord], current: dict[str, float] | None = None
) -> list[tuple[float, float, float]]:
    """The silo's DP-SGD steps as ``(noise, sample rate, steps)``, one entry per round it
    trained in (rejected rounds included: its data was used all the same)."""
    rounds = [r.silo_metrics[silo] for r in history if silo in r.silo_metrics]
    if current is not None:
        rounds.append(current)
    from fl_jobs.silo_metrics import METRIC_NOISE_KEY

    steps = [
        (m.get("dp_noise_multiplier", 0.0), m.get("dp_sample_rate", 1.0), m.get("dp_steps", 0.0))
        for m in rounds
    ]  # and a noised metric release (--silo-metrics dp): one Gaussian step, sampling rate 1
    return steps + [(m[METRIC_NOISE_KEY], 1.0, 1.0) for m in rounds if METRIC_NOISE_KEY in m]


def _add_epsilon(silo_metrics: dict[str, dict[str, float]], history: list[RoundRecord]) -> None:
    """Each silo's epsilon spent so far (this round included, at the silo's own delta), as
    its ``epsilon`` metric."""
    from fl_jobs.privacy import spent

    for silo, metrics in silo_metrics.items():
        if "dp_steps" in metrics:
            metrics["epsilon"] = spent(_dp_history(silo, history, metrics), metrics["dp_delta"])


def _privacy_spent(config: JobConfig, history: list[RoundRecord]) -> dict[str, float] | None:
    """Epsilon each silo spent over the run (client sampling is not credited)."""
    if config.clip_norm is None:
        return None
    from fl_jobs.privacy import spent

    deltas = {
        silo: metrics["dp_delta"]
        for record in history
        for silo, metrics in record.silo_metrics.items()
        if "dp_delta" in metrics
    }
    return {silo: spent(_dp_history(silo, history), delta) for silo, delta in deltas.items()}
