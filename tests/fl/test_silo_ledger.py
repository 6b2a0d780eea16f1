"""The silo-enforced privacy budget (issue 17): each DP release is in the silo's own ledger
before the update leaves, and a silo at the budget its operator set refuses to train."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.silo.silo_ledger import read_ledger
from fl_jobs.silo.silo_store import local_silo_store

RUN = ["run", "--silos", "2", "--epochs", "1", "--clip-norm", "1", "--noise-multiplier", "1.1",
       "--no-baselines", "--no-tracking"]  # fmt: skip


def test_the_ledger_records_every_release_and_prints(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*RUN, "--rounds", "2", "--output-dir", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    entries = read_ledger(local_silo_store("silo-0"))
    assert [e["round"] for e in entries] == [1, 2]
    assert all(e["noise_multiplier"] == 1.1 and e["steps"] > 0 for e in entries)
    printed = CliRunner().invoke(app, ["privacy", "ledger", "--silo", "silo-0"])
    assert printed.exit_code == 0, printed.output
    assert "silo-0: 2 releases" in printed.output and "round 2: noise x1.1" in printed.output
    assert "budget: none set" in printed.output


def test_a_silo_at_its_budget_refuses_and_the_run_says_which_and_why(tmp_path: Path) -> None:
    """The budget is the silo's (set on the silo side), not in the orchestrator's config; it
    holds across jobs: a second job stops at the first round past it."""
    first = CliRunner().invoke(app, [*RUN, "--rounds", "2", "--output-dir", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    spent = CliRunner().invoke(app, ["privacy", "ledger", "--silo", "silo-1"])
    assert spent.exit_code == 0
    set_it = CliRunner().invoke(
        app, ["privacy", "budget", "--silo", "silo-1", "--epsilon", "5", "--delta", "1e-6"]
    )
    assert set_it.exit_code == 0, set_it.output
    out = tmp_path / "b"
    second = CliRunner().invoke(app, [*RUN, "--rounds", "5", "--output-dir", str(out)])
    assert second.exit_code != 0
    summary = json.loads((out / "summary.json").read_text())
    assert (
        "silo silo-1 failed: silo-1 refuses to train: its privacy budget is epsilon 5"
        in (summary["stop_reason"])
    )
    ledger = read_ledger(local_silo_store("silo-1"))
    printed = CliRunner().invoke(app, ["privacy", "ledger", "--silo", "silo-1"])
    assert "budget: epsilon 5 at delta 1e-06; spent" in printed.output
    spent_now = float(printed.output.split("spent ")[1].split()[0])
    assert spent_now <= 5 and len(ledger) == 2 + 1  # refused before its 4th release
    bad = CliRunner().invoke(app, ["privacy", "budget", "--silo", "silo-1", "--epsilon", "0"])
    assert bad.exit_code == 2 and "error: --epsilon 0" in bad.stderr


SILO_LEVEL = ["run", "--silos", "5", "--epochs", "1", "--dp-level", "silo", "--dp-silo-clip",
              "0.5", "--noise-multiplier", "2", "--dp-silo-noise", "distributed",
              "--secure-aggregation", "--no-baselines", "--no-tracking"]  # fmt: skip


def test_silo_level_dp_rounds_are_in_the_silo_ledger_and_its_budget(tmp_path: Path) -> None:
    """Silo-level DP (DP-FedAvg) releases are recorded by each silo before its update leaves,
    and count against the budget its operator set: a silo past it refuses to train, naming
    itself and the budget."""
    from fl_jobs.core.privacy import spent

    first = CliRunner().invoke(
        app, [*SILO_LEVEL, "--rounds", "2", "--output-dir", str(tmp_path / "a")]
    )
    assert first.exit_code == 0, first.output
    entries = read_ledger(local_silo_store("silo-3"))
    assert [(e["round"], e["mechanism"]) for e in entries] == [
        (1, "dp-fedavg-distributed"),
        (2, "dp-fedavg-distributed"),
    ]
    assert all(
        (e["noise_multiplier"], e["sample_rate"], e["steps"]) == (2.0, 1.0, 1) for e in entries
    )
    delta = 1e-6
    two, three = (spent([(2.0, 1.0, 1)] * k, delta) for k in (2, 3))
    budget = round((two + three) / 2, 3)
    set_it = CliRunner().invoke(
        app,
        ["privacy", "budget", "--silo", "silo-3", "--epsilon", str(budget), "--delta", "1e-6"],
    )
    assert set_it.exit_code == 0, set_it.output
    out = tmp_path / "b"
    second = CliRunner().invoke(app, [*SILO_LEVEL, "--rounds", "2", "--output-dir", str(out)])
    assert second.exit_code != 0
    reason = json.loads((out / "summary.json").read_text())["stop_reason"]
    assert f"silo-3 refuses to train: its privacy budget is epsilon {budget:g}" in reason
    assert len(read_ledger(local_silo_store("silo-3"))) == 2  # refused before a third release
