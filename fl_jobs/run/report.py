"""The end of a run: comparison table, metric-per-round plot and JSON summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fl_jobs.cli.plurals import count
from fl_jobs.config import JobConfig
from fl_jobs.local.federation import FederationResult, RoundRecord
from fl_jobs.rounds.baselines import Baselines
from fl_jobs.run.result_curves import CurveSummary, summarize


@dataclass
class Comparison:
    """Final metric of federated, centralized and local-only (mean and worst silo)."""

    strategy: str
    metric_name: str
    higher_is_better: bool
    federated: float
    centralized: float | None
    local_mean: float | None
    local_worst: float | None
    #: Final and best value with its round, per approach with a curve (federated,
    #: centralized, local-only mean).
    curves: dict[str, CurveSummary] = field(default_factory=dict)

    def unstable(self) -> list[str]:
        """Approaches whose curve jumped in its last rounds."""
        return [name for name, curve in self.curves.items() if curve.jumped]


FEDERATED, CENTRALIZED, LOCAL_MEAN = "federated", "centralized", "local_mean"


def curves_of(result: FederationResult, baselines: Baselines | None) -> dict[str, CurveSummary]:
    """The curve summaries of the federated run and the baselines (see result_curves)."""
    metric, higher = result.metric_name, result.higher_is_better
    series = {FEDERATED: [r.global_metrics[metric] for r in result.history]}
    if baselines is not None:
        series[CENTRALIZED] = baselines.centralized.per_round
        series[LOCAL_MEAN] = baselines.local_mean_curve()
    return {
        name: summarize([float(v) for v in values], metric=metric, higher_is_better=higher)
        for name, values in series.items()
        if values
    }


def compare(result: FederationResult, baselines: Baselines | None) -> Comparison:
    return Comparison(
        curves=curves_of(result, baselines),
        strategy=result.strategy,
        metric_name=result.metric_name,
        higher_is_better=result.higher_is_better,
        federated=float(result.final_metrics[result.metric_name]),
        centralized=(
            None
            if baselines is None
            else float(baselines.centralized.final_metrics[result.metric_name])
        ),
        local_mean=None if baselines is None else baselines.local_mean(),
        local_worst=None if baselines is None else baselines.local_worst(),
    )


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if metric == "accuracy" else f"{value:.3f}"


def comparison_table(comparison: Comparison, rounds: int) -> Table:
    """A rich table: one row per approach and how much better federated did (positive) or
    worse (negative) than it."""
    metric = comparison.metric_name
    arrow = "higher is better" if comparison.higher_is_better else "lower is better"
    table = Table(title=f"Test {metric} after {count(rounds, 'round')} ({arrow})")
    table.add_column("approach", no_wrap=True)  # the name stays whole in 80 columns
    table.add_column(f"final {metric}", justify="right")
    table.add_column("best (round)", justify="right")
    table.add_column("federated advantage", justify="right")
    rows = [
        (f"federated ({comparison.strategy})", comparison.federated, FEDERATED),
        ("centralized (pooled data)", comparison.centralized, CENTRALIZED),
        ("local-only, mean of silos", comparison.local_mean, LOCAL_MEAN),
        ("local-only, worst silo", comparison.local_worst, None),
    ]
    for name, value, key in rows:
        if value is None:
            continue
        curve = comparison.curves.get(key) if key else None
        best = "-" if curve is None else f"{_fmt(curve.best, metric)} ({curve.best_round})"
        if curve is not None and curve.jumped:
            best += " !"
        diff = comparison.federated - value
        if not comparison.higher_is_better:
            diff = -diff  # positive always means federation did better
        scale = 100 if metric == "accuracy" else 1
        unit = " pts" if metric == "accuracy" else ""
        delta = "" if name.startswith("federated") else f"{scale * diff:+.2f}{unit}"
        table.add_row(name, _fmt(value, metric), best, delta)
    return table


LABELS = {
    FEDERATED: "federated",
    CENTRALIZED: "centralized (pooled data)",
    LOCAL_MEAN: "local-only (mean)",
}


def jump_notes(comparison: Comparison) -> list[str]:
    """One line per approach whose curve jumped in its last rounds (marked ``!``)."""
    metric = comparison.metric_name
    notes = []
    for name in comparison.unstable():
        curve = comparison.curves[name]
        notes.append(
            f"! {LABELS[name]} ended at {_fmt(curve.final, metric)} after "
            f"{_fmt(curve.recent_best, metric)} in the rounds before: its last round jumped, "
            f"so compare the best values (its best: {_fmt(curve.best, metric)} at round "
            f"{curve.best_round}), or lower its learning rate"
        )
    return notes


def best_values(comparison: Comparison) -> dict[str, Any]:
    """The summary's ``best`` section: per approach its final and best value and round, and
    whether it jumped at the end."""
    return {
        name: {
            "final": curve.final,
            "best": curve.best,
            "best_round": curve.best_round,
            "jumped_at_end": curve.jumped,
        }
        for name, curve in comparison.curves.items()
    }


def write_plot(
    path: Path, result: FederationResult, baselines: Baselines | None, *, partition: str = ""
) -> Path:
    """PNG of the test metric per round: federated vs centralized vs local-only mean.

    Drawn with matplotlib's object API on the Agg canvas: no pyplot, no global figure state,
    no GUI backend, and matplotlib is imported only here, when a plot is drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rounds = [r.round for r in result.history]
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(
        rounds,
        [r.global_metrics[result.metric_name] for r in result.history],
        label=f"federated ({result.strategy})",
        linewidth=2,
    )
    if baselines is not None:
        ax.plot(rounds, baselines.centralized.per_round, label="centralized", linestyle="--")
        ax.plot(rounds, baselines.local_mean_curve(), label="local-only (mean)", linestyle=":")
    ax.set_xlabel("round")
    ax.set_ylabel(f"test {result.metric_name}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{result.example}: {len(result.silo_names)} silos, {partition}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def summary_dict(
    config: JobConfig,
    result: FederationResult,
    baselines: Baselines | None,
    *,
    wall_seconds: float,
    artifacts: dict[str, str],
    outcome: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a reader needs to compare runs, as plain JSON. ``outcome`` (status, why it
    stopped, how to resume) comes first: a summary is written at every stop."""
    comparison = compare(result, baselines)
    return {
        **(outcome or {}),
        "example": config.example.name,
        "metric": result.metric_name,
        "higher_is_better": result.higher_is_better,
        "rounds": config.federation.rounds,
        "strategy": config.strategy.model_dump(),
        # Under secure aggregation each silo's count travels masked: the summary keeps the
        # names, not the counts (only a round's total is ever unmasked).
        "silos": dict(
            zip(
                result.silo_names,
                [None] * len(result.silo_names)
                if config.secure_aggregation.enabled
                else result.silo_sizes,
                strict=True,
            )
        ),
        "federated": result.final_metrics,
        "centralized": None if baselines is None else baselines.centralized.final_metrics,
        "local_only": None
        if baselines is None
        else {
            "mean": comparison.local_mean,
            "worst": comparison.local_worst,
            "per_silo": {
                name: curve.final_metrics
                for name, curve in zip(result.silo_names, baselines.local_only, strict=True)
            },
        },
        "best": best_values(comparison),
        "completed_rounds": len(result.history),
        "history": [_history_row(r) for r in result.history],
        "privacy": None if result.epsilon_per_silo is None else _privacy(config, result),
        **({"silo_dp": _silo_dp(config, result)} if config.privacy.dp_level == "silo" else {}),
        "silo_metrics": config.silo_metrics_policy(),
        "wall_seconds": round(wall_seconds, 3),
        "federation_seconds": round(result.wall_seconds, 3),
        "config": config.flat(),
        "artifacts": artifacts,
    }


def _history_row(record: RoundRecord) -> dict[str, Any]:
    """One round in the summary: who trained, the global metrics, who was left out or
    rejected and why, how a secure sum was reached, and (with DP) the epsilon each trained
    silo had spent by then."""
    epsilons = {silo: m["epsilon"] for silo, m in record.silo_metrics.items() if "epsilon" in m}
    return {
        "round": record.round,
        "selected": record.selected,
        **record.global_metrics,
        **({"dropped": record.dropped} if record.dropped else {}),
        **({"rejected": record.rejected} if record.rejected else {}),
        **({"secure_aggregation": record.secure_aggregation} if record.secure_aggregation else {}),
        **({"epsilon": epsilons} if epsilons else {}),
        **({"silo_dp": record.silo_dp} if record.silo_dp else {}),
        **({"asynchronous": record.asynchronous} if record.asynchronous else {}),
    }


def _silo_dp(config: JobConfig, result: FederationResult) -> dict[str, Any]:
    """Silo-level DP: the mode, the adjacency and the epsilon spent (fl_jobs.silo.silo_dp)."""
    from fl_jobs.silo.silo_dp import summary

    return summary(config, len(result.history))


def _privacy(config: JobConfig, result: FederationResult) -> dict[str, Any]:
    """The DP settings and what each silo spent (and the noise it trained with)."""
    spent = result.epsilon_per_silo or {}
    from fl_jobs.core.privacy import ADJACENCY

    noise: dict[str, float] = {}
    deltas: dict[str, float] = {}
    for record in result.history:
        for silo, metrics in record.silo_metrics.items():
            if "dp_noise_multiplier" in metrics:
                noise[silo] = metrics["dp_noise_multiplier"]
            if "dp_delta" in metrics:
                deltas[silo] = metrics["dp_delta"]
    return {
        "adjacency": ADJACENCY,
        "clip_norm": config.privacy.clip_norm,
        "noise_multiplier": config.privacy.noise_multiplier,
        "target_epsilon": config.privacy.target_epsilon,
        "delta": config.privacy.target_delta,
        "delta_per_silo": deltas,
        "noise_multiplier_per_silo": noise,
        "epsilon_per_silo": spent,
        "epsilon_max": max(spent.values(), default=0.0),
    }


def write_summary(path: Path, summary: dict[str, Any]) -> Path:
    """Write the summary atomically: a reader never sees half of it."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def print_comparison(console: Console, comparison: Comparison, rounds: int) -> None:
    console.print(comparison_table(comparison, rounds))
    for note in jump_notes(comparison):
        console.print(note, markup=False, highlight=False, soft_wrap=True)
