"""``python -m fl_jobs``: run a federated job locally (``run``); other commands register on
``app``. Every bad argument stops with one line on stderr and exit code 2 before any work."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    name="fl_jobs",
    help="Federated learning jobs: run locally across simulated silos, or on Azure ML.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    """One line on stderr, exit code 2."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(EXIT_BAD_INPUT)


@app.callback()
def main() -> None:
    """Federated learning jobs for fl-sandbox."""


@app.command()
def run(
    example: str = typer.Option(
        None, "--example", "-e", help="Example: digits | mnist | turbofan | tabular [digits]"
    ),
    silos: int = typer.Option(None, "--silos", help="Number of silos (worker processes) [5]"),
    rounds: int = typer.Option(None, "--rounds", help="Federated rounds, >= 1 [20]"),
    partition: str = typer.Option(
        None,
        "--partition",
        help="How data is split: iid | dirichlet:ALPHA (label skew) | shards:K (K label-sorted "
        "shards per silo) | quantity:ALPHA (size skew) [iid]",
    ),
    epochs: int = typer.Option(None, "--epochs", help="Local epochs per round, E [example's]"),
    batch_size: int = typer.Option(None, "--batch-size", help="Local batch size, B [example's]"),
    lr: float = typer.Option(None, "--lr", help="Local SGD learning rate [example's]"),
    momentum: float = typer.Option(
        None, "--momentum", help="Local SGD momentum in [0, 1) [example's]"
    ),
    fraction: float = typer.Option(
        None, "--fraction", help="Client fraction C in (0, 1]: share of silos per round [1.0]"
    ),
    seed: int = typer.Option(None, "--seed", help="Seed of split, sampling and init [0]"),
    server_lr: float = typer.Option(None, "--server-lr", help="Server learning rate [1.0]"),
    server_momentum: float = typer.Option(
        None, "--server-momentum", help="Server momentum in [0, 1) (FedAvgM) [0.0]"
    ),
    clip_norm: float = typer.Option(
        None, "--clip-norm", help="DP-SGD: clip each example's gradient to this norm [off]"
    ),
    noise_multiplier: float = typer.Option(
        None, "--noise-multiplier", help="DP-SGD: noise std / clip norm (needs --clip-norm) [1.0]"
    ),
    target_delta: float = typer.Option(
        None, "--target-delta", help="DP-SGD: delta at which epsilon is reported [1e-5]"
    ),
    model: str = typer.Option(None, "--model", help="Model variant (mnist: 2nn | cnn) [2nn]"),
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Folder with the example's files [../shared/data/<example>]"
    ),
    data: Path = typer.Option(None, "--data", help="CSV file for the tabular example"),
    target: str = typer.Option(None, "--target", help="Target column of the CSV (tabular)"),
    task: str = typer.Option(
        None, "--task", help="classification | regression (tabular) [inferred from target]"
    ),
    max_train_samples: int = typer.Option(
        None, "--max-train-samples", help="Use a seeded subset of the training data"
    ),
    test_fraction: float = typer.Option(
        None, "--test-fraction", help="Held-out test share when there is no official test set"
    ),
    summary: Path = typer.Option(None, "--summary", help="Write the JSON summary to this path"),
    output_dir: Path = typer.Option(
        None, "--output-dir", help="Folder for silo data, models, plot, MLflow store [runs/latest]"
    ),
    tracking_uri: str = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI [sqlite store in the output folder]"
    ),
    tracking: bool = typer.Option(None, "--tracking/--no-tracking", help="Log to MLflow [on]"),
    baselines: bool = typer.Option(
        None, "--baselines/--no-baselines", help="Also train centralized and local-only [on]"
    ),
    config: Path = typer.Option(
        None, "--config", "-c", help="YAML job file with the same settings; options override it"
    ),
) -> None:
    """Run a federated job across local silo worker processes and compare it with baselines."""
    from fl_jobs.config import load_job_config
    from fl_jobs.errors import FLJobError

    overrides: dict[str, Any] = {
        "example": example,
        "silos": silos,
        "rounds": rounds,
        "partition": partition,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "momentum": momentum,
        "fraction": fraction,
        "seed": seed,
        "server_lr": server_lr,
        "server_momentum": server_momentum,
        "clip_norm": clip_norm,
        "noise_multiplier": noise_multiplier,
        "target_delta": target_delta,
        "model": model,
        "data_dir": data_dir,
        "data": data,
        "target": target,
        "task": task,
        "max_train_samples": max_train_samples,
        "test_fraction": test_fraction,
        "summary": summary,
        "output_dir": output_dir,
        "tracking_uri": tracking_uri,
        "tracking": tracking,
        "baselines": baselines,
    }
    try:
        job = load_job_config(config, overrides)
        from fl_jobs.local.prepare import prepare_job

        prepared = prepare_job(job)
    except FLJobError as exc:
        fail(str(exc))
        return
    from rich.console import Console

    from fl_jobs.job import run_job

    run_job(job, console=Console(), prepared=prepared)


def _register_submit() -> None:
    """``submit`` (Azure ML) lives with the pipeline code; its module imports no Azure SDK."""
    from fl_jobs.aml.cli import submit

    app.command()(submit)


_register_submit()
