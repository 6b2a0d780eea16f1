"""Result tables tell the truth: final and best value with its round for every approach, a
curve that jumps in its last rounds is flagged, and turbofan's pooled baseline no longer
jumps (its short last minibatch joins the one before)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from fl_jobs.config import JobConfig
from fl_jobs.core.training import batch_bounds
from fl_jobs.local.prepare import prepare_job
from fl_jobs.rounds.baselines import run_baselines
from fl_jobs.run.report import Comparison, comparison_table, jump_notes
from fl_jobs.run.result_curves import summarize

#: The turbofan pooled baseline of the README command before the fix (RMSE per round).
SPIKY = [20.1, 19.2, 18.3, 17.8, 18.3, 18.3, 18.6, 17.7, 17.3, 17.4, 17.5, 29.8, 17.0, 16.8]
SPIKY += [16.9, 17.1, 17.3, 17.2, 53.3, 17.3, 17.1, 17.1, 18.4, 17.0, 17.1, 17.2, 17.1, 17.3]
SPIKY += [17.1, 34.1]


def test_a_last_round_spike_is_flagged_with_the_best_value_and_round() -> None:
    curve = summarize(SPIKY, metric="rmse", higher_is_better=False)
    assert (curve.final, curve.best, curve.best_round) == (34.1, 16.8, 14)
    assert curve.jumped and curve.recent_best == 17.1


def test_a_smooth_curve_or_a_small_wobble_is_not_flagged() -> None:
    smooth = summarize([20.0, 18.0, 17.0, 16.9, 17.2], metric="rmse", higher_is_better=False)
    assert not smooth.jumped and smooth.best_round == 4
    accuracy = [0.80, 0.90, 0.93, 0.94, 0.935]
    assert not summarize(accuracy, metric="accuracy", higher_is_better=True).jumped
    dropped = summarize([0.80, 0.90, 0.93, 0.94, 0.90], metric="accuracy", higher_is_better=True)
    assert dropped.jumped and (dropped.best, dropped.best_round) == (0.94, 4)
    assert summarize([0.5], metric="accuracy", higher_is_better=True).best_round == 1


def test_table_shows_final_and_best_and_notes_the_jump() -> None:
    fed = summarize([20.0, 18.0, 17.0], metric="rmse", higher_is_better=False)
    comparison = Comparison(
        strategy="FedAvg",
        metric_name="rmse",
        higher_is_better=False,
        federated=17.0,
        centralized=34.1,
        local_mean=19.0,
        local_worst=21.0,
        curves={
            "federated": fed,
            "centralized": summarize(SPIKY, metric="rmse", higher_is_better=False),
        },
    )
    console = Console(record=True, width=120)
    console.print(comparison_table(comparison, 30))
    text = console.export_text()
    assert "final rmse" in text and "best (round)" in text
    assert "16.800 (14) !" in text and "17.000 (3)" in text
    (note,) = jump_notes(comparison)
    assert note.startswith("! centralized (pooled data) ended at 34.100 after 17.100")
    assert "its best: 16.800 at round 14" in note


def test_short_last_batch_joins_the_one_before_only_when_asked() -> None:
    assert batch_bounds(67, 32, merge_short_last=True) == [(0, 32), (32, 67)]
    assert batch_bounds(67, 32, merge_short_last=False) == [(0, 32), (32, 64), (64, 67)]
    assert batch_bounds(80, 32, merge_short_last=True) == [(0, 32), (32, 64), (64, 80)]
    assert batch_bounds(10, 32, merge_short_last=True) == [(0, 10)]


def test_turbofan_pooled_baseline_no_longer_jumps(shared_data: Path) -> None:
    """The README command's baselines (4 silos, 30 rounds): the pooled curve ends near its
    best (it ended at 34.07 after 17.1 before the fix)."""
    prepared = prepare_job(JobConfig(example="turbofan", silos=4, rounds=30))
    baselines = run_baselines(prepared)
    curve = summarize(baselines.centralized.per_round, metric="rmse", higher_is_better=False)
    assert not curve.jumped, baselines.centralized.per_round
    assert max(baselines.centralized.per_round[5:]) < 20.0
    assert curve.final == pytest.approx(curve.best, rel=0.05)
