"""A resumed run of every stateful strategy ends with the same weights as one uninterrupted
process: the strategy's state (server momentum, FedOpt's moments) goes through the checkpoint
and ``--resume`` restores it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import load_job_config
from fl_jobs.core.model_io import load_weights
from fl_jobs.local.federation import run_federation

CASES = {
    "fedavgm": ["--server-momentum", "0.9"],
    "fedprox": ["--strategy", "fedprox", "--strategy-option", "mu=0.1", "--server-momentum", "0.5"],
    "fedadam": ["--strategy", "fedadam", "--strategy-option", "eta=0.03",
                "--strategy-option", "bias_correction=true"],
    "fedyogi": ["--strategy", "fedyogi", "--strategy-option", "eta=0.03"],
    "fedadagrad": ["--strategy", "fedadagrad", "--strategy-option", "beta_1=0.5"],
}  # fmt: skip
COMMON = ["--silos", "3", "--fraction", "0.67", "--epochs", "1", "--seed", "5"]


@pytest.mark.parametrize("case", list(CASES))
def test_resume_continues_the_strategy_bit_identically(case: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    quiet = ["--no-baselines", "--no-tracking"]
    first = CliRunner().invoke(
        app, ["run", *COMMON, *CASES[case], "--rounds", "2", *quiet, "--output-dir", str(out)]
    )
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out), "--rounds", "3"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after round 2" in resumed.output
    final, meta = load_weights(out / "global_model.pt")
    assert meta["rounds"] == 3

    overrides: dict[str, object] = {}
    args = iter(CASES[case])
    options = []
    for flag in args:
        value = next(args)
        if flag == "--strategy-option":
            options.append(value)
        else:
            overrides[flag.removeprefix("--").replace("-", "_")] = value
    config = load_job_config(
        None,
        {**overrides, "strategy_options": options or None, "silos": 3, "fraction": 0.67,
         "epochs": 1, "seed": 5, "rounds": 3, "tracking": False, "baselines": False,
         "output_dir": tmp_path / "clean"},
    )  # fmt: skip
    clean = run_federation(config).final_weights
    assert final.keys() == clean.keys()
    assert all(torch.equal(final[k], clean[k]) for k in clean)
