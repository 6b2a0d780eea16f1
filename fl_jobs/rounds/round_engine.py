"""The server side of one synchronous round, written once for every engine.

Both the local engine (:mod:`fl_jobs.local.federation`, worker processes behind
:class:`~fl_jobs.local.pipes.PipesServer`) and the model-store orchestrator
(:mod:`fl_jobs.store.orchestrator`, :class:`~fl_jobs.store.server.StoreServer`) drive their
rounds through :class:`RoundEngine`; only the wire differs (:mod:`fl_jobs.store.transport`).
One round here is: the strategy picks the silos; each gets its seed and the strategy's
settings; the replies are taken in silo order under the quorum and the deadline
(:class:`~fl_jobs.local.round_ledger.RoundLedger`); a diverged silo stops the job with the
knob to blame; the updates are screened and aggregated by the strategy, or, with secure
aggregation, summed masked by the transport's :class:`SecureTransport` side; silo-level DP
clips and noises; the new model is evaluated and checked for divergence; each silo's epsilon
is added. The caller publishes the global model, checkpoints, and asks :meth:`rejoin` for the
silos that dropped out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from fl_jobs.core.collapse import collapse_reason
from fl_jobs.core.evaluation import evaluate
from fl_jobs.core.screening import screen_norms
from fl_jobs.core.seeds import derive_seed
from fl_jobs.core.silo_hook import with_extras
from fl_jobs.core.training import LocalUpdate
from fl_jobs.errors import CollapseError, DivergenceError
from fl_jobs.local.prepare import PreparedJob
from fl_jobs.local.round_ledger import Notify, RoundLedger
from fl_jobs.rounds.federation_state import FederationState, RoundRecord, dp_history, suggested_lr
from fl_jobs.run.knob_blame import likely_knob
from fl_jobs.secure_aggregation.silo_guard import session_policy
from fl_jobs.silo.silo_dp import SiloDPAggregator
from fl_jobs.store.transport import (
    Diverged,
    Dropped,
    Rejected,
    ServerTransport,
    Trained,
    TrainResult,
    TrainTask,
)
from fl_jobs.strategies.base import MeanStrategy, Strategy, WeightedMean
from fl_jobs.strategies.registry import get_info

#: A round's training loss this many times the untrained model's test loss is divergence.
DIVERGENCE_FACTOR = 1e3


@runtime_checkable
class SecureTransport(Protocol):
    """A transport that runs secure aggregation among the silos that trained: it relays the
    protocol's messages and returns the unmasked weighted mean, never an update."""

    def secure_round(
        self,
        round: int,
        trained: list[str],
        ledger: RoundLedger,
        template: Mapping[str, torch.Tensor],
    ) -> tuple[WeightedMean, dict[str, Any]]:
        """The round's weighted mean and how it was reached (attempts, contributors)."""


class RoundEngine:
    """Drives rounds over ``transport``; ``silos`` in index order (their seeds' index)."""

    def __init__(
        self,
        prepared: PreparedJob,
        transport: ServerTransport,
        silos: list[str],
        *,
        notify: Notify | None = None,
        silo_dp: SiloDPAggregator | None = None,
    ) -> None:
        self.prepared, self.config = prepared, prepared.config
        self.transport, self.silos, self.notify = transport, silos, notify
        self.index = {name: i for i, name in enumerate(silos)}
        self.silo_dp = silo_dp
        if self.config.secure_aggregation.enabled and not isinstance(transport, SecureTransport):
            raise TypeError(f"{type(transport).__name__} cannot run secure aggregation")

    def run(
        self,
        rnd: int,
        state: FederationState,
        model: torch.nn.Module,
        strategy: Strategy,
        rng: np.random.Generator,
    ) -> FederationState:
        """Round ``rnd`` from ``state`` (whose global model the caller has published)."""
        config = self.config
        t0 = time.perf_counter()
        selected = strategy.configure_round(rnd, self.silos, rng)
        info = get_info(config.strategy.name)
        ledger = RoundLedger(
            rnd,
            len(selected),
            config.federation.min_silos,
            self.notify,
            floor=info.min_updates(config.strategy.options),
            strategy=config.strategy.describe(),
            secure_floor=session_policy(config).floor if config.secure_aggregation.enabled else 0,
        )
        tasks = [
            TrainTask(
                silo=s,
                round=rnd,
                seed=derive_seed(config.federation.seed, rnd, self.index[s]),
                config=strategy.silo_config(rnd, s),
            )
            for s in selected
        ]
        ledger.unreachable.update(self.transport.send_round(rnd, tasks))
        secure_info: dict[str, Any] | None = None
        # what each reply is checked against: the model, and the strategy's tensors if any
        template = with_extras(state.global_weights, strategy.reply_template(state.global_weights))
        if config.secure_aggregation.enabled:
            new_weights, secure_info = self._aggregate_secure(
                rnd, state, strategy, selected, ledger, template
            )
        else:
            new_weights = self._aggregate(rnd, state, strategy, selected, ledger, template)
        model.load_state_dict(new_weights)
        ds = self.prepared.dataset
        global_metrics = evaluate(model, ds.test_X, ds.test_y, self.prepared.example)
        self.check_global_loss(rnd, global_metrics, state, ledger.silo_metrics)
        if config.privacy.clip_norm is not None:
            add_epsilon(ledger.silo_metrics, state.history)
        record = RoundRecord(
            round=rnd,
            selected=list(selected),
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

    def publish(self, version: int, state: FederationState, strategy: Strategy) -> None:
        """Publish ``state``'s global model as version ``version``, with the tensors the
        strategy sends the silos for the next round (:mod:`fl_jobs.core.silo_hook`)."""
        extras = strategy.to_silos(version + 1, state.global_weights)
        self.transport.publish_global(version, with_extras(state.global_weights, extras))

    def rejoin(self, record: RoundRecord) -> None:
        """Bring the silos that dropped out of ``record``'s round back for the next one."""
        for silo in record.dropped:
            failure = self.transport.rejoin(silo)
            if self.notify is not None:
                self.notify(
                    f"round {record.round}: {silo} restarted; it rejoins in round "
                    f"{record.round + 1}"
                    if failure is None
                    else f"round {record.round}: {silo} could not be restarted ({failure})"
                )

    def check_collapse(self, state: FederationState) -> None:
        """Stop a run whose model stays no better than the untrained one
        (:mod:`fl_jobs.core.collapse`); its rounds are already checkpointed."""
        ds = self.prepared.dataset
        classes = None
        if self.prepared.example.task == "classification":
            classes = int(np.unique(ds.y).size)
        reason = collapse_reason(
            state.history,
            state.initial_metrics,
            rounds=self.config.run.collapse_rounds,
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

    # -- aggregation ------------------------------------------------------------------------

    def _aggregate(
        self,
        rnd: int,
        state: FederationState,
        strategy: Strategy,
        selected: list[str],
        ledger: RoundLedger,
        template: Mapping[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """The new global weights from the checked updates, streamed in silo order."""
        weights = state.global_weights
        updates: Iterator[LocalUpdate] = (
            LocalUpdate(
                weights=reply.weights, n_samples=reply.n_samples, metrics=reply.metrics, silo=silo
            )
            for silo, reply in self._replies(rnd, state, selected, ledger, template)
            if isinstance(reply, TrainResult)
        )
        if self.silo_dp is not None:  # clipped deltas, summed, noised, over the fixed cohort
            assert isinstance(strategy, MeanStrategy), strategy.name
            mean = self.silo_dp.mean_of_updates(rnd, weights, updates, ledger.reject)
            return strategy.server_step(rnd, weights, mean)
        if self.config.screens_norms():
            updates = screen_norms(updates, weights, self.config.server.norm_limit, ledger.reject)
        return strategy.aggregate(rnd, weights, updates)

    def _aggregate_secure(
        self,
        rnd: int,
        state: FederationState,
        strategy: Strategy,
        selected: list[str],
        ledger: RoundLedger,
        template: Mapping[str, torch.Tensor],
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The new global weights from the masked sum of the trained silos' updates (no
        update is ever read). Mean strategies only: the job config refuses robust ones."""
        assert isinstance(strategy, MeanStrategy), strategy.name
        assert isinstance(self.transport, SecureTransport)
        trained = [silo for silo, _ in self._replies(rnd, state, selected, ledger, template)]
        mean, info = self.transport.secure_round(rnd, trained, ledger, state.global_weights)
        if self.silo_dp is not None:  # the silos' noise shares are in the unmasked sum
            mean = self.silo_dp.mean_of_secure(rnd, state.global_weights, mean)
        return strategy.server_step(rnd, state.global_weights, mean), info

    def _replies(
        self,
        rnd: int,
        state: FederationState,
        selected: list[str],
        ledger: RoundLedger,
        template: Mapping[str, torch.Tensor],
    ) -> Iterator[tuple[str, TrainResult | Trained]]:
        """The selected silos' training replies, in silo order, as they settle: dead, silent
        or refused silos go to the ledger (which stops the round when the quorum is lost), a
        diverged one stops the job."""
        for silo, reply in self.transport.replies(
            rnd,
            selected,
            ledger.unreachable,
            timeout=self.config.federation.round_timeout,
            template=template,
        ):
            if isinstance(reply, Dropped):
                ledger.drop(silo, reply.reason)
                continue
            if isinstance(reply, Rejected):
                ledger.reject(silo, reply.reason)
                continue
            if isinstance(reply, Diverged):
                raise self.diverged(
                    rnd,
                    silo,
                    f"its training loss became {reply.loss}",
                    _metrics_so_far(state.history, ledger.silo_metrics),
                )
            metrics = {k: float(v) for k, v in reply.metrics.items()}
            self.check_train_loss(rnd, silo, metrics, state, ledger.silo_metrics)
            counted = {} if reply.n_samples is None else {"samples": float(reply.n_samples)}
            ledger.silo_metrics[silo] = {**metrics, **counted}
            yield silo, reply

    def check_global_loss(
        self,
        rnd: int,
        global_metrics: Mapping[str, float],
        state: FederationState,
        silo_metrics: Mapping[str, Mapping[str, float]],
    ) -> None:
        """Stop the job (:class:`DivergenceError`) if the new global model's test loss is not
        finite or exploded against the untrained model's."""
        loss = global_metrics.get("loss", 0.0)
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * _scale(state.initial_metrics):
            raise self.diverged(
                rnd,
                None,
                f"the global model's test loss became {loss:.3g}",
                list(silo_metrics.values()),
            )

    def check_train_loss(
        self,
        rnd: int,
        silo: str,
        metrics: dict[str, float],
        state: FederationState,
        so_far: dict[str, dict[str, float]],
    ) -> None:
        """Stop the job (:class:`DivergenceError`) if ``silo``'s training loss exploded;
        ``so_far``: the round's other silos' metrics, for the knob to blame."""
        loss, initial = metrics.get("train_loss"), state.initial_metrics
        if loss is None:
            return
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * _scale(initial):
            raise self.diverged(
                rnd,
                silo,
                f"its training loss reached {loss:.3g} (the untrained model's test loss is "
                f"{initial.get('loss', float('nan')):.3g})",
                _metrics_so_far(state.history, {**so_far, "": metrics}),
            )

    def diverged(
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


def _metrics_so_far(
    history: list[RoundRecord], current: dict[str, dict[str, float]]
) -> list[dict[str, float]]:
    """Every silo metric of the run so far (for the knob blamed after divergence)."""
    return [m for r in history for m in r.silo_metrics.values()] + list(current.values())


def _scale(initial_metrics: dict[str, float]) -> float:
    loss = initial_metrics.get("loss", 1.0)
    return loss if math.isfinite(loss) and loss > 1e-12 else 1.0


def add_epsilon(silo_metrics: dict[str, dict[str, float]], history: list[RoundRecord]) -> None:
    """Each silo's epsilon spent so far (this round included, at the silo's own delta), as
    its ``epsilon`` metric."""
    from fl_jobs.core.privacy import spent

    for silo, metrics in silo_metrics.items():
        if "dp_steps" in metrics:
            metrics["epsilon"] = spent(dp_history(silo, history, metrics), metrics["dp_delta"])
