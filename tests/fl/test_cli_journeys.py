"""The command line's rough edges, smoothed: --version, the bare command, the fedavgm alias,
--data implying the tabular example, per-round lines that stay above the progress bar, and
progress while the baselines train."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from fl_jobs.config import load_job_config
from fl_jobs.errors import JobConfigError
from fl_jobs.local.federation import RoundRecord
from fl_jobs.local.prepare import prepare_job
from fl_jobs.run.progress import RoundProgress

REPO = Path(__file__).resolve().parents[2]


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fl_jobs", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_version_and_bare_command(tmp_path: Path) -> None:
    version = _cli(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("fl-sandbox 0.1.0 (")
    bare = _cli(tmp_path)
    assert bare.returncode == 0, bare.stderr
    assert "Usage:" in bare.stdout and "predict" in bare.stdout
    assert "error" not in bare.stderr


def test_fedavgm_is_fedavg_with_server_momentum() -> None:
    config = load_job_config(None, {"strategy": "fedavgm"})
    assert (config.strategy.name, config.server.momentum) == ("fedavg", 0.9)
    config = load_job_config(None, {"strategy": "fedavgm", "server_momentum": 0.5})
    assert config.server.momentum == 0.5
    with pytest.raises(JobConfigError, match="FedAvgM needs --server-momentum in"):
        load_job_config(None, {"strategy": "fedavgm", "server_momentum": 0.0})


def test_fedavgm_in_a_job_file(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("example: digits\nstrategy: fedavgm\n")
    config = load_job_config(job, {})
    assert (config.strategy.name, config.server.momentum) == ("fedavg", 0.9)
    job.write_text("strategy: {name: fedavgm, eta: 0.1}\n")
    with pytest.raises(JobConfigError, match="takes no strategy options"):
        load_job_config(job, {})


def test_data_implies_the_tabular_example(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    config = load_job_config(None, {"data": csv, "target": "label"})
    assert config.example.name == "tabular"
    # a named example still wins, and is refused with --data as before
    with pytest.raises(JobConfigError, match="digits example does not read data"):
        load_job_config(None, {"example": "digits", "data": csv, "target": "label"})
    ran = _cli(
        tmp_path,
        *("run", "--data", "data.csv", "--target", "label", "--silos", "2", "--rounds", "2"),
        *("--no-tracking", "--output-dir", "out"),
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("tabular: 2 silos")
    # the baselines report as they go
    assert "baseline 1/3 centralized (pooled data): accuracy" in ran.stdout
    assert "baseline 3/3 local-only silo-1: accuracy" in ran.stdout


def test_round_lines_stay_above_the_progress_bar() -> None:
    prepared = prepare_job(load_job_config(None, {"example": "digits", "rounds": 3}))
    console = Console(record=True, force_terminal=True, width=100)
    with RoundProgress(console, prepared) as progress:
        for rnd in (1, 2, 3):
            record = RoundRecord(
                round=rnd,
                selected=["silo-0"],
                global_metrics={"accuracy": 0.5 + rnd / 10, "loss": 1.0},
                silo_metrics={},
                seconds=0.1,
            )
            progress.update(record)
    text = console.export_text()
    for rnd, value in ((1, "0.6000"), (2, "0.7000"), (3, "0.8000")):
        assert f"round {rnd}/3  test accuracy {value}  (0.10 s)" in text


def test_help_groups_every_option_and_keeps_long_names_whole(tmp_path: Path) -> None:
    import inspect

    from fl_jobs.cli.app import run
    from fl_jobs.cli.cli_settings import PANELS

    panels = {p.name: p.default.rich_help_panel for p in inspect.signature(run).parameters.values()}
    assert set(panels.values()) == set(PANELS.values())  # every option sits in a panel
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    shown = subprocess.run(
        [sys.executable, "-m", "fl_jobs", "run", "--help"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0
    for panel in PANELS.values():
        assert f"─ {panel} ─" in shown.stdout
    assert "…" not in shown.stdout  # piped help used to cut --secure-aggregation-clip
    assert "--secure-aggregation-clip" in shown.stdout and "--max-train-samples" in shown.stdout


def test_rerunning_a_runs_own_job_file_starts_a_new_run(tmp_path: Path) -> None:
    """job.yaml used to store `overwrite: true` and the folder: re-running it deleted the run."""
    first = _cli(
        tmp_path,
        *("run", "--example", "digits", "--silos", "2", "--rounds", "1", "--no-baselines"),
        *("--no-tracking", "--output-dir", "first", "--overwrite"),
    )
    assert first.returncode == 0, first.stderr
    stored = (tmp_path / "first" / "job.yaml").read_text()
    assert "output_dir" not in stored and "overwrite" not in stored
    before = (tmp_path / "first" / "summary.json").read_bytes()
    again = _cli(tmp_path, "run", "--config", "first/job.yaml")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "first" / "summary.json").read_bytes() == before  # untouched
    assert list((tmp_path / "runs" / "digits").glob("*/summary.json"))  # a new run folder
    resumed = _cli(tmp_path, "run", "--resume", "first", "--rounds", "2")
    assert resumed.returncode == 0, resumed.stderr  # and the first run still resumes
