"""A silo's side of one round, for every engine: train from the global model under the silo's
own privacy controls.

The local worker (:mod:`fl_jobs.local.worker`) and the model-store silo agent
(:mod:`fl_jobs.store.silo_agent`) both train through :class:`SiloTrainer`, so a round does the
same at a silo whichever wire brought it:

* DP-SGD's noise and Poisson sampling come from the silo's own secret
  (:mod:`fl_jobs.silo.silo_secret`), keyed by the model it trains, never from the orchestrator's
  seed;
* every release (DP-SGD's steps, a noised metric, silo-level DP's round) is checked against
  the silo's own budget before training and written to its ledger before the update leaves
  (:mod:`fl_jobs.silo.silo_ledger`);
* silo-level DP clips (and noises) the update before it leaves (:mod:`fl_jobs.silo.silo_dp`);
* per-silo metrics leave only as the job's metrics policy allows (:mod:`fl_jobs.core.silo_metrics`);
* the strategy's silo hook (:mod:`fl_jobs.core.silo_hook`) checks the round's settings, adds its
  gradient terms, keeps its state in the silo's store and adds its tensors to the update.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from typing import Any

import torch

from fl_jobs.config import JobConfig
from fl_jobs.core.silo_data import SiloArrays
from fl_jobs.core.silo_hook import HookState, round_inputs, split_extras, with_extras
from fl_jobs.core.silo_metrics import metric_release, noised_loss, released
from fl_jobs.core.training import (
    LocalUpdate,
    TrainParams,
    tensors,
    train_local,
)
from fl_jobs.errors import TrainingDivergedError
from fl_jobs.examples.base import DataShape, Example
from fl_jobs.rounds.job_parts import build_strategy, train_params_from_config
from fl_jobs.secure_aggregation.silo_guard import update_digest
from fl_jobs.silo.silo_dp import SiloRelease
from fl_jobs.silo.silo_ledger import check_budget
from fl_jobs.silo.silo_ledger import record as record_release
from fl_jobs.silo.silo_secret import metric_seed, private_seeds, silo_secret
from fl_jobs.silo.silo_store import SiloStore


@dataclass(frozen=True)
class SiloRound:
    """What one round trained: the update (weights, the true sample count, every metric) and
    the metrics the silo's policy lets leave."""

    update: LocalUpdate
    sent: dict[str, float]


def planned_release(
    silo: str,
    store: SiloStore,
    params: TrainParams,
    n_samples: int,
    run: str,
    round: int,
    *,
    metric: bool = False,
) -> list[dict[str, Any]]:
    """The releases this round will make (DP-SGD, then with ``metric`` the noised metrics),
    checked against the silo's own budget (BudgetExhausted) before any training."""
    from fl_jobs.core.privacy import dp_schedule, silo_delta, silo_noise

    rate, per_epoch = dp_schedule(n_samples, params.batch_size)
    release: dict[str, Any] = {
        "run": run,
        "round": round,
        "noise_multiplier": silo_noise(params, n_samples),
        "sample_rate": rate,
        "steps": per_epoch * params.epochs,
        "delta": silo_delta(params.target_delta, n_samples),
    }
    releases = [release]
    if metric:
        releases.append({"run": run, "round": round})
        releases[-1].update(metric_release(release["delta"]))
    check_budget(silo, store, *releases)
    return releases


def training_context(
    weights: dict[str, torch.Tensor], round: int, silo_config: dict[str, float]
) -> int:
    """64 bits of what a round trains: the global model, the round and its settings."""
    settings = json.dumps(silo_config, sort_keys=True).encode()
    digest = hashlib.sha256(update_digest(weights, round).encode() + settings).hexdigest()
    return int(digest[:16], 16)


class SiloTrainer:
    """Trains rounds at one silo, on its data, with its store (secret, ledger, budget)."""

    def __init__(
        self,
        silo: str,
        config: JobConfig,
        example: Example,
        shape: DataShape,
        data: SiloArrays,
        store: SiloStore,
    ) -> None:
        self.silo, self.config, self.example, self.data, self.store = (
            silo,
            config,
            example,
            data,
            store,
        )
        self.model = example.build_model(config.example, shape)
        self.params = train_params_from_config(config)
        # DP-SGD's noise and sampling come from the silo's own secret, not the request seed.
        self.secret = silo_secret(store) if self.params.clip_norm is not None else None
        self.silo_dp = SiloRelease.for_worker(config, store)  # silo-level DP: clip (and noise)
        self.metrics_policy = config.silo_metrics_policy()
        self.hook = build_strategy(config).silo_hook()

    def train(
        self,
        weights: dict[str, torch.Tensor],
        *,
        run: str,
        round: int,
        seed: int,
        silo_config: dict[str, float],
        state_run: str | None = None,
    ) -> SiloRound:
        """Round ``round`` of run ``run`` from the global ``weights`` (with the strategy's
        tensors, if it sends any). Raises TrainingDivergedError, BudgetExhausted before
        training when the silo's budget would be passed, or ValueError for settings or
        tensors the silo's own strategy does not take. ``state_run``: what the hook's state
        is keyed by (default ``run``; the local engine gives its run's identity)."""
        silo, data = self.silo, self.data
        model_weights, received = split_extras(weights)
        self.model.load_state_dict(model_weights)
        round_params = self.params
        settings = self.hook.check_settings(silo_config)
        hook_state = None
        if self.hook.state_name is not None:
            hook_state = HookState(self.store, state_run or run, self.hook.state_name)
        inputs = round_inputs(
            self.model,
            received,
            settings,
            round=round,
            state=hook_state,
            keep_start=self.hook.keeps_start,
        )
        self.hook.check_received(received, inputs.names, inputs.start)
        own, releases = None, []
        noised = self.metrics_policy == "dp"
        # Keyed by what is trained (model, round and settings), not by the orchestrator's
        # seed: the same request draws the same noise (resume), any other request fresh noise
        # (two releases that shared noise would cancel it in their difference).
        context = training_context(weights, round, silo_config)
        if self.secret is not None:
            own = private_seeds(self.secret, context, round)
            releases = planned_release(
                silo, self.store, round_params, data.n_samples, run, round, metric=noised
            )
        if self.silo_dp is not None:  # silo-level DP: its round is a release too, budgeted
            releases.append(self.silo_dp.release(run, round))
            check_budget(silo, self.store, *releases)
        try:
            update = train_local(
                self.model,
                data,
                round_params,
                seed=seed,
                example=self.example,
                private_seeds=own,
                terms=self.hook.terms(inputs),
            )
        except TrainingDivergedError as exc:
            # Its report leaves the silo too (under DP-SGD there is none: a non-finite record
            # adds nothing): booked before it does, with the steps run, and without the step
            # and loss, which a crafted model could aim at one record (the detail stays in
            # the silo's own log).
            if releases and self.secret is not None:
                releases[0] = {**releases[0], "steps": exc.step}
            for entry in releases:
                record_release(self.store, entry)
            if not releases:
                raise
            print(f"{silo}: round {round}: {exc}", file=sys.stderr)
            raise TrainingDivergedError(float("nan"), 0) from None
        trained = [p.detach() for p in self.model.parameters() if p.requires_grad]
        extras = self.hook.reply(inputs, trained, round_params.lr)
        if extras:  # the strategy's tensors travel with the update
            update.weights = with_extras(update.weights, extras)
        if noised and self.secret is not None:  # on the trained model, from the silo's secret
            X_own, y_own = tensors(data)
            seed_ = metric_seed(self.secret, context, round)
            update.metrics.update(noised_loss(self.model, X_own, y_own, self.example, seed_))
        if self.silo_dp is not None:  # clipped (noised) before it leaves, weight 1
            update = self.silo_dp.apply(update, weights, context, round)
        if releases:  # in the silo's ledger before the update leaves
            if self.secret is not None:  # DP-SGD's steps, as trained
                releases[0] = {**releases[0], "steps": update.metrics["dp_steps"]}
            for entry in releases:
                record_release(self.store, entry)
        return SiloRound(update, released(update.metrics, self.metrics_policy))
