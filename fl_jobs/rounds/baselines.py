"""What federation is compared with, on the same data, model, initial weights and budget.

- centralized: all silos' data pooled in one place (the upper reference federation tries to
  reach without moving data);
- local-only: each silo trains alone on its own data (what a silo gets without federating);
  reported as the mean and the worst silo on the common test set.

Budget: one "round" of a baseline is ``epochs`` local epochs, so after R rounds every model
has made ``R * epochs`` passes over its data, as a silo in the federation with C = 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fl_jobs.core.evaluation import evaluate
from fl_jobs.core.seeds import derive_seed
from fl_jobs.core.silo_data import SiloArrays
from fl_jobs.core.torch_threads import single_threaded
from fl_jobs.core.training import train_local
from fl_jobs.local.federation import initial_model
from fl_jobs.local.prepare import PreparedJob
from fl_jobs.rounds.job_parts import train_params_from_config


@dataclass
class BaselineCurve:
    """Test metric per round-equivalent (index 0 = after round 1) and the final metrics."""

    per_round: list[float]
    final_metrics: dict[str, float]
    #: The trained model's weights (e.g. for the turbofan maintenance evaluation).
    final_weights: dict[str, Any] | None = None


@dataclass
class Baselines:
    centralized: BaselineCurve
    #: One curve per silo, trained on that silo's data alone.
    local_only: list[BaselineCurve]
    metric_name: str
    higher_is_better: bool

    def local_mean(self) -> float:
        return float(np.mean([c.final_metrics[self.metric_name] for c in self.local_only]))

    def local_worst(self) -> float:
        values = [c.final_metrics[self.metric_name] for c in self.local_only]
        return float(min(values) if self.higher_is_better else max(values))

    def local_mean_curve(self) -> list[float]:
        return [float(v) for v in np.mean([c.per_round for c in self.local_only], axis=0)]


def _curve(prepared: PreparedJob, data: SiloArrays, stream: int) -> BaselineCurve:
    ex, ds, config = prepared.example, prepared.dataset, prepared.config
    model = initial_model(prepared)
    params = train_params_from_config(config)
    per_round: list[float] = []
    metrics: dict[str, float] = {}
    for rnd in range(1, config.federation.rounds + 1):
        train_local(
            model, data, params, seed=derive_seed(config.federation.seed, stream, rnd), example=ex
        )
        metrics = evaluate(model, ds.test_X, ds.test_y, ex)
        per_round.append(metrics[ex.metric_name])
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return BaselineCurve(per_round=per_round, final_metrics=metrics, final_weights=weights)


def centralized(prepared: PreparedJob) -> BaselineCurve:
    """Train on the pooled data of all silos (pooled statistics allowed: it is centralized)."""
    ds, ex = prepared.dataset, prepared.example
    pooled = np.concatenate(prepared.partitions)
    data = SiloArrays(X=ex.prepare(ds.X[pooled]), y=ds.y[pooled], task=ex.task)
    return _curve(prepared, data, stream=0xCE)


def local_only(prepared: PreparedJob, only: int | None = None) -> list[BaselineCurve]:
    """Train one model per silo on that silo's data alone (or only silo ``only``)."""
    ds, ex = prepared.dataset, prepared.example
    curves = []
    for index, idx in enumerate(prepared.partitions):
        if only is not None and index != only:
            continue
        data = SiloArrays(X=ex.prepare(ds.X[idx]), y=ds.y[idx], task=ex.task)
        curves.append(_curve(prepared, data, stream=0x10CA1 + index))
    return curves


def run_baselines(
    prepared: PreparedJob, progress: Callable[[str], None] | None = None
) -> Baselines:
    """Centralized and local-only training for the job, single-threaded (see torch_threads).
    ``progress`` gets one line per trained model (the baselines of a big job take a while)."""
    metric = prepared.example.metric_name
    count = 1 + len(prepared.partitions)

    def done(index: int, label: str, curve: BaselineCurve, start: float) -> None:
        if progress is not None:
            value = curve.final_metrics[metric]
            shown = f"{100 * value:.1f}%" if metric == "accuracy" else f"{value:.3f}"
            progress(
                f"baseline {index}/{count} {label}: {metric} {shown} "
                f"({time.perf_counter() - start:.1f} s)"
            )

    with single_threaded():
        start = time.perf_counter()
        pooled = centralized(prepared)
        done(1, "centralized (pooled data)", pooled, start)
        locals_: list[BaselineCurve] = []
        for index, name in enumerate(prepared.silo_names):
            start = time.perf_counter()
            locals_.append(local_only(prepared, only=index)[0])
            done(index + 2, f"local-only {name}", locals_[-1], start)
        return Baselines(
            centralized=pooled,
            local_only=locals_,
            metric_name=metric,
            higher_is_better=prepared.example.higher_is_better,
        )
