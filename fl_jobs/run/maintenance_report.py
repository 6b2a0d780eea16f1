"""The turbofan run's maintenance outcome (fl_jobs.run.maintenance) on the official test engines:
corrective, each silo's best fixed interval, each silo's local-only model, the federated model
and the centralized one, as a table, a plot (``maintenance.png``) and the summary's
``maintenance`` section.

The test engines are watched cycle by cycle (every 30-cycle window of their observed history,
normalised per engine as in training); an engine's life is its observed cycles plus its true
RUL (RUL_FD001, uncapped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fl_jobs.run.maintenance import (
    COSTS,
    THRESHOLD,
    PolicyOutcome,
    best_interval,
    corrective,
    outcome,
    predictive_stops,
)

if TYPE_CHECKING:
    from fl_jobs.local.federation import FederationResult
    from fl_jobs.local.prepare import PreparedJob
    from fl_jobs.rounds.baselines import Baselines

PLOT_FILE = "maintenance.png"


@dataclass
class Fleet:
    """The test engines, window by window, and every training engine's life."""

    X: np.ndarray
    cycles: np.ndarray
    units: np.ndarray
    engine_ids: np.ndarray
    life: np.ndarray
    train_life: dict[int, float]


def test_fleet(prepared: PreparedJob) -> Fleet:
    from fl_jobs.examples import turbofan as tf
    from fl_jobs.examples.data_paths import resolve_data_dir
    from fl_jobs.examples.data_sources import TURBOFAN

    settings = prepared.config.example
    assert isinstance(settings, tf.TurbofanSettings), "a maintenance report is turbofan's"
    folder = resolve_data_dir(settings.data_dir, TURBOFAN.folder, tf.FILES, dataset=TURBOFAN.name)
    train = tf.read_table(folder, tf.FILES[0])
    test = tf.read_table(folder, tf.FILES[1])
    true_rul = tf.read_table_column(folder, tf.FILES[2])
    X, to_last, units = tf.windows(tf.normalize_per_engine(test), last_only=False)
    engine_ids = np.unique(test[:, 0]).astype(int)
    observed = {int(u): float(test[test[:, 0] == u, 1].max()) for u in engine_ids}
    cycles = np.array([observed[int(u)] for u in units]) - to_last
    life = np.array([observed[int(u)] for u in engine_ids]) + true_rul
    train_life = {int(u): float(train[train[:, 0] == u, 1].max()) for u in np.unique(train[:, 0])}
    return Fleet(X, cycles, units, engine_ids, life, train_life)


def _predict(prepared: PreparedJob, weights: dict[str, Any], X: np.ndarray) -> np.ndarray:
    import torch

    from fl_jobs.local.federation import initial_model

    model = initial_model(prepared)
    model.load_state_dict(weights)
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(X)))
        return prepared.example.predict(out).numpy().astype(np.float64)


@dataclass
class MaintenanceReport:
    rows: list[tuple[str, PolicyOutcome]]
    intervals: dict[str, int]
    plot: Path

    def summary(self) -> dict[str, Any]:
        return {
            "threshold_cycles": THRESHOLD,
            "costs": {
                "failure": COSTS.failure,
                "planned": COSTS.planned,
                "wasted_cycle": COSTS.wasted_cycle,
            },
            "fixed_intervals": self.intervals,
            "policies": {name: result.as_dict() for name, result in self.rows},
        }


def evaluate(
    prepared: PreparedJob, result: FederationResult, baselines: Baselines, out: Path
) -> MaintenanceReport:
    fleet = test_fleet(prepared)

    def predictive(weights: dict[str, Any]) -> PolicyOutcome:
        predicted = _predict(prepared, weights, fleet.X)
        stops = predictive_stops(fleet.cycles, fleet.units, predicted, fleet.engine_ids)
        return outcome(stops, fleet.life)

    rows: list[tuple[str, PolicyOutcome]] = [
        ("corrective (run to failure)", corrective(fleet.life)),
        ("predictive, federated model", predictive(dict(result.final_weights))),
    ]
    if baselines.centralized.final_weights is not None:
        rows.append(
            ("predictive, centralized model", predictive(baselines.centralized.final_weights))
        )
    groups = prepared.dataset.groups
    intervals: dict[str, int] = {}
    for name, part, curve in zip(
        prepared.silo_names, prepared.partitions, baselines.local_only, strict=True
    ):
        units = np.unique(groups[part]) if groups is not None else np.array([])
        lives = np.array([fleet.train_life[int(u)] for u in units])
        interval = best_interval(lives)
        intervals[name] = interval
        rows.append(
            (
                f"{name}: fixed, every {interval} cycles",
                outcome(np.full(len(fleet.life), interval), fleet.life),
            )
        )
        if curve.final_weights is not None:
            rows.append((f"{name}: predictive, local-only model", predictive(curve.final_weights)))
    plot = write_plot(out / PLOT_FILE, rows, prepared.silo_names)
    return MaintenanceReport(rows, intervals, plot)


def table(report: MaintenanceReport, engines: int) -> Table:
    title = (
        f"Maintenance of the {engines} test engines (predictive: maintain when predicted RUL < "
        f"{THRESHOLD:g} cycles; cost: failure {COSTS.failure:g}, planned {COSTS.planned:g}, "
        f"wasted cycle {COSTS.wasted_cycle:g})"
    )
    out = Table(title=title)
    for column in ("policy", "failures", "wasted cycles", "cost"):
        out.add_column(column, justify="left" if column == "policy" else "right")
    for name, result in report.rows:
        out.add_row(
            name, str(result.failures), f"{result.wasted_cycles:,.0f}", f"{result.cost:.1f}"
        )
    return out


def print_report(console: Console, report: MaintenanceReport) -> None:
    engines = report.rows[0][1].engines
    console.print(table(report, engines))
    console.print(f"maintenance plot: {report.plot}", soft_wrap=True, markup=False, highlight=False)


def write_plot(path: Path, rows: list[tuple[str, PolicyOutcome]], silos: list[str]) -> Path:
    """Cost per policy: per silo its fixed interval and its local-only model, against the
    federated model (a line); run to failure, far above, is in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_name = dict(rows)
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(silos))
    fixed = [by_name[n].cost for n, _ in rows if ": fixed" in n]
    local = [by_name[n].cost for n, _ in rows if ": predictive, local-only" in n]
    ax.bar(x - 0.2, fixed, width=0.4, label="fixed interval (silo's best)")
    if len(local) == len(silos):
        ax.bar(x + 0.2, local, width=0.4, label="predictive, local-only model")
    ax.axhline(
        by_name["predictive, federated model"].cost, color="C2", label="predictive, federated"
    )
    ax.set_xticks(x, silos)
    ax.set_ylabel("cost (failure 10, planned 1, wasted cycle 1/200)")
    worst = by_name["corrective (run to failure)"].cost
    ax.set_title(
        f"Maintenance cost on the FD001 test engines (lower is better; run to failure: "
        f"{worst:.0f})",
        fontsize=10,
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
