"""The server side of one synchronous round over any :class:`ServerTransport`.

Selection, per-silo settings and seeds, the quorum ledger, screening, the strategy's
aggregation, evaluation and the divergence checks are the local engine's own code
(:mod:`fl_jobs.local.federation`, :mod:`fl_jobs.local.round_ledger`,
:mod:`fl_jobs.screening`, :mod:`fl_jobs.strategies`), driven here through the transport
interface instead of the worker pool. It runs over the model store
(:class:`~fl_jobs.store.server.StoreServer`) and over the local pipes
(:class:`~fl_jobs.store.pipes.PipesServer`) to the same weights as the local engine; secure
aggregation and DP accounting are still only in the local engine's loop (issue 16's shared
round engine merges the two).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from fl_jobs.errors import DivergenceError
from fl_jobs.evaluation import evaluate
from fl_jobs.local.federation import (
    DIVERGENCE_FACTOR,
    FederationState,
    RoundRecord,
    suggested_lr,
)
from fl_jobs.local.prepare import PreparedJob
from fl_jobs.local.round_ledger import RoundLedger
from fl_jobs.screening import screen_norms
from fl_jobs.seeds import derive_seed
from fl_jobs.store.transport import (
    Diverged,
    Dropped,
    Rejected,
    ServerTransport,
    TrainResult,
    TrainTask,
)
from fl_jobs.strategies.base import Strategy
from fl_jobs.training import LocalUpdate

Notify = Callable[[str], None]


class RoundDriver:
    def __init__(
        self,
        prepared: PreparedJob,
        transport: ServerTransport,
        silos: list[str],
        notify: Notify | None = None,
    ) -> None:
        self.prepared, self.config = prepared, prepared.config
        self.transport, self.silos, self.notify = transport, silos, notify
        self.index = {name: i for i, name in enumerate(silos)}

    def run(
        self,
        rnd: int,
        state: FederationState,
        model: torch.nn.Module,
        strategy: Strategy,
        rng: np.random.Generator,
    ) -> FederationState:
        """Round ``rnd`` from ``state``: the state after it (the global model published by the
        caller). Dropped silos are asked to rejoin for the next round."""
        config, prepared = self.config, self.prepared
        t0 = time.perf_counter()
        selected = strategy.configure_round(rnd, self.silos, rng)
        ledger = RoundLedger(rnd, len(selected), config.min_silos, self.notify)
        tasks = [
            TrainTask(
                silo=s,
                round=rnd,
                seed=derive_seed(config.seed, rnd, self.index[s]),
                config=strategy.silo_config(rnd, s),
            )
            for s in selected
        ]
        ledger.unreachable.update(self.transport.send_round(rnd, tasks))
        updates = self._updates(rnd, selected, ledger, state)
        if config.screens_norms():
            updates = screen_norms(updates, state.global_weights, config.norm_limit, ledger.reject)
        new_weights = strategy.aggregate(rnd, state.global_weights, updates)
        model.load_state_dict(new_weights)
        ds = prepared.dataset
        global_metrics = evaluate(model, ds.test_X, ds.test_y, prepared.example)
        loss = global_metrics.get("loss", 0.0)
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * _scale(state.initial_metrics):
            raise self._diverged(rnd, None, f"the global model's test loss became {loss:.3g}")
        record = RoundRecord(
            round=rnd,
            selected=list(selected),
            global_metrics=global_metrics,
            silo_metrics=ledger.silo_metrics,
            seconds=time.perf_counter() - t0,
            dropped=ledger.dropped,
            rejected=ledger.rejected,
        )
        for silo in record.dropped:
            failure = self.transport.rejoin(silo)
            if failure is not None and self.notify is not None:
                self.notify(f"round {rnd}: {silo} could not be restarted ({failure})")
        return FederationState(
            round=rnd,
            global_weights=new_weights,
            strategy=strategy.name,
            strategy_state=strategy.state_dict(),
            rng_state=dict(rng.bit_generator.state),
            history=[*state.history, record],
            initial_metrics=state.initial_metrics,
        )

    def _updates(
        self, rnd: int, selected: list[str], ledger: RoundLedger, state: FederationState
    ) -> Iterator[LocalUpdate]:
        """The selected silos' checked updates in silo order; the rest go to the ledger."""
        for silo, reply in self.transport.replies(
            rnd,
            selected,
            ledger.unreachable,
            timeout=self.config.round_timeout,
            template=state.global_weights,
        ):
            if isinstance(reply, Dropped):
                ledger.drop(silo, reply.reason)
            elif isinstance(reply, Rejected):
                ledger.reject(silo, reply.reason)
            elif isinstance(reply, Diverged):
                raise self._diverged(rnd, silo, f"its training loss became {reply.loss}")
            else:
                assert isinstance(reply, TrainResult)
                train_loss = reply.metrics.get("train_loss")
                initial = state.initial_metrics
                if train_loss is not None and (
                    not math.isfinite(train_loss)
                    or train_loss > DIVERGENCE_FACTOR * _scale(initial)
                ):
                    raise self._diverged(
                        rnd,
                        silo,
                        f"its training loss reached {train_loss:.3g} (the untrained model's test "
                        f"loss is {initial.get('loss', float('nan')):.3g})",
                    )
                ledger.silo_metrics[silo] = {**reply.metrics, "samples": float(reply.n_samples)}
                yield LocalUpdate(
                    weights=reply.weights,
                    n_samples=reply.n_samples,
                    metrics=dict(reply.metrics),
                    silo=silo,
                )

    def _diverged(self, rnd: int, silo: str | None, what: str) -> DivergenceError:
        where = f"at {silo}" if silo else "after aggregation"
        lr = float(self.config.lr or 0.01)
        return DivergenceError(
            f"training diverged in round {rnd} {where}: {what}",
            f"lower the learning rate, e.g. --lr {suggested_lr(self.config, self.prepared, rnd):g} "
            f"(this run used {lr:g})",
        )


def _scale(initial_metrics: dict[str, float]) -> float:
    loss = initial_metrics.get("loss", 1.0)
    return loss if math.isfinite(loss) and loss > 1e-12 else 1.0
