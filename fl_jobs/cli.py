"""``python -m fl_jobs`` (or ``fl-sandbox``): run a federated job locally (``run``); other
commands register on ``app``.

Every bad argument stops with one line on stderr, ``error: <what> - <fix>``, and exit code 2
before anything is written (fl_jobs.cli_errors); a failure while running is one line naming the
cause and a log file with the traceback, exit code 1. See fl_jobs.job for the other codes.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import typer

from fl_jobs.cli_errors import OneLineErrorsGroup, bad_input, runtime_failure
from fl_jobs.config import JobConfig
from fl_jobs.strategies.registry import NAMES as STRATEGY_NAMES
from fl_jobs.strategies.registry import ROBUST, options_help

app = typer.Typer(
    name="fl_jobs",
    cls=OneLineErrorsGroup,
    help="Federated learning jobs: run locally across simulated silos, or on Azure ML.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """One line on stderr, exit code 2."""
    bad_input(message)


def _default(setting: str) -> str:
    """``(default: X)`` from the job settings themselves, so help never drifts from them."""
    value = JobConfig.model_fields[setting].default
    return f"(default: {value})"


def _print_version(value: bool) -> None:
    """``--version``: the installed distribution's version (the source tree's if not installed)."""
    if not value:
        return
    from fl_jobs.version import version_text

    typer.echo(version_text())
    raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        None, "--version", is_eager=True, callback=_print_version, help="Print the version"
    ),
) -> None:
    """Federated learning jobs for fl-sandbox."""


@app.command()
def run(
    example: str = typer.Option(
        None,
        "--example",
        "-e",
        help=f"Example: digits | mnist | turbofan | tabular {_default('example')}",
    ),
    silos: int = typer.Option(
        None, "--silos", help=f"Number of silos (worker processes) {_default('silos')}"
    ),
    rounds: int = typer.Option(
        None, "--rounds", help=f"Federated rounds, >= 1 {_default('rounds')}"
    ),
    partition: str = typer.Option(
        None,
        "--partition",
        help="How data is split: iid | dirichlet:ALPHA (label skew) | shards:K (K label-sorted "
        f"shards per silo) | quantity:ALPHA (size skew) {_default('partition')}",
    ),
    epochs: int = typer.Option(
        None, "--epochs", help="Local epochs per round, E (default: the example's)"
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", help="Local batch size, B (default: the example's)"
    ),
    lr: float = typer.Option(None, "--lr", help="Local SGD learning rate (default: the example's)"),
    momentum: float = typer.Option(
        None, "--momentum", help="Local SGD momentum in [0, 1) (default: the example's)"
    ),
    fraction: float = typer.Option(
        None,
        "--fraction",
        help=f"Client fraction C in (0, 1]: share of silos per round {_default('fraction')}",
    ),
    seed: int = typer.Option(
        None, "--seed", help=f"Seed of split, sampling and init {_default('seed')}"
    ),
    device: str = typer.Option(
        None,
        "--device",
        help="auto | cpu | cuda: where each silo trains; auto takes a GPU when torch sees one "
        f"{_default('device')}",
    ),
    server_lr: float = typer.Option(
        None, "--server-lr", help=f"Server learning rate {_default('server_lr')}"
    ),
    server_momentum: float = typer.Option(
        None,
        "--server-momentum",
        help=f"Server momentum in [0, 1) (FedAvgM) {_default('server_momentum')}",
    ),
    strategy: str = typer.Option(
        None,
        "--strategy",
        help=f"Aggregation strategy: {' | '.join(STRATEGY_NAMES)}; replaces the job file's "
        f"strategy section {_default('strategy')}",
    ),
    strategy_options: list[str] = typer.Option(
        None,
        "--strategy-option",
        help=f"KEY=VALUE option of the strategy, repeatable (default: the option's): "
        f"{options_help()}",
    ),
    screen_norms: bool = typer.Option(
        None,
        "--screen-norms/--no-screen-norms",
        help="Reject updates whose distance from the global model is more than --norm-limit "
        f"times the round's median (default: on for {', '.join(ROBUST)}, off otherwise)",
    ),
    norm_limit: float = typer.Option(
        None,
        "--norm-limit",
        help=f"Norm screening: reject above this many times the median {_default('norm_limit')}",
    ),
    secure_aggregation: bool = typer.Option(
        None,
        "--secure-aggregation/--no-secure-aggregation",
        help="The orchestrator sees only the masked sum of the updates (local runs; mean "
        "strategies only, not with --screen-norms) (default: off)",
    ),
    silo_metrics: str = typer.Option(
        None,
        "--silo-metrics",
        help="Per-silo training metrics (train loss) sent to the orchestrator: clear | dp "
        "(noised, counted in epsilon; needs --clip-norm) | none "
        "(default: none with DP or secure aggregation, else clear)",
    ),
    secure_aggregation_weights: str = typer.Option(
        None,
        "--secure-aggregation-weights",
        help="Secure aggregation: samples (weight by each silo's masked sample count; the "
        "round's total is revealed, and rounds with different cohorts give counts away by "
        "difference) | equal (every silo weighs the same; no count leaves a silo) "
        "(default: samples)",
    ),
    secure_aggregation_clip: float = typer.Option(
        None,
        "--secure-aggregation-clip",
        help="Secure aggregation: silos refuse to send a weight beyond +/- this "
        f"{_default('secure_aggregation_clip')}",
    ),
    clip_norm: float = typer.Option(
        None,
        "--clip-norm",
        help="DP-SGD: clip each example's gradient to this norm (default: off)",
    ),
    noise_multiplier: float = typer.Option(
        None,
        "--noise-multiplier",
        help="DP-SGD: noise std / clip norm, needs --clip-norm (default: 1.0)",
    ),
    target_delta: float = typer.Option(
        None,
        "--target-delta",
        help="DP-SGD: delta at which epsilon is reported, refused if >= 1/n for a silo of n "
        "samples (default: 0.1/n per silo)",
    ),
    target_epsilon: float = typer.Option(
        None,
        "--target-epsilon",
        help="DP-SGD: instead of --noise-multiplier, each silo's noise is computed (Opacus' "
        "RDP accountant) so that its data is (EPSILON, --target-delta)-DP after --rounds "
        "rounds; needs --clip-norm (default: off)",
    ),
    dp_level: str = typer.Option(
        None,
        "--dp-level",
        help="DP adjacency: record (DP-SGD per example, --clip-norm) or silo (DP-FedAvg: one "
        "whole silo, --dp-silo-clip) (default: record)",
    ),
    dp_silo_clip: float = typer.Option(
        None,
        "--dp-silo-clip",
        help="Silo-level DP: clip each silo's update (delta) to this L2 norm; noise from "
        "--noise-multiplier or --target-epsilon",
    ),
    dp_silo_noise: str = typer.Option(
        None,
        "--dp-silo-noise",
        help="Silo-level DP: orchestrator (trusted aggregator adds the noise) or distributed "
        "(each silo adds its share, needs --secure-aggregation) (default: orchestrator)",
    ),
    model: str = typer.Option(
        None, "--model", help="Model variant (mnist: 2nn | cnn) (default: 2nn for mnist)"
    ),
    data_dir: Path = typer.Option(
        None,
        "--data-dir",
        help="Folder with the example's files (default: $FL_SANDBOX_DATA/<example>, else "
        "../shared/data/<example> next to the repository)",
    ),
    data: Path = typer.Option(None, "--data", help="CSV file for the tabular example"),
    target: str = typer.Option(None, "--target", help="Target column of the CSV (tabular)"),
    task: str = typer.Option(
        None,
        "--task",
        help="classification | regression, tabular (default: inferred from the target)",
    ),
    max_train_samples: int = typer.Option(
        None,
        "--max-train-samples",
        help="Use a seeded subset of the training data (default: all)",
    ),
    test_fraction: float = typer.Option(
        None,
        "--test-fraction",
        help=f"Held-out test share when there is no official test set {_default('test_fraction')}",
    ),
    summary: Path = typer.Option(
        None,
        "--summary",
        help="Also write the JSON summary to this file (default: summary.json in the run folder)",
    ),
    output_dir: Path = typer.Option(
        None,
        "--output-dir",
        help="Run folder for silo data, checkpoint, model, plot, MLflow store; refused if it "
        "holds a run, unless --overwrite (default: runs/<name>/<date-time>/, with "
        "runs/latest linking to the newest)",
    ),
    name: str = typer.Option(
        None, "--name", help="Run name: runs go to runs/<name>/ (default: the example)"
    ),
    overwrite: bool = typer.Option(
        None,
        "--overwrite",
        help="Replace the run in --output-dir (its files are deleted first) (default: refuse)",
    ),
    resume: Path = typer.Option(
        None,
        "--resume",
        help="Continue the stopped run in this folder from its last checkpoint, with its own "
        "settings (only --rounds, --round-timeout, --min-silos, --summary, --baselines, "
        "--tracking and --checkpoints may change)",
    ),
    min_silos: int = typer.Option(
        None,
        "--min-silos",
        help="Quorum: a round completes if at least this many selected silos answer; silos "
        "left out rejoin next round (default: all selected)",
    ),
    round_timeout: float = typer.Option(
        None,
        "--round-timeout",
        help="Seconds a round waits for a silo before leaving it out (default: no limit)",
    ),
    async_buffer: int = typer.Option(
        None,
        "--async-buffer",
        metavar="M",
        help="Asynchronous rounds (FedBuff): every silo trains continuously and the "
        "orchestrator folds every M arriving updates into the model, weighted by staleness; "
        "--rounds then counts folds (default: synchronous rounds)",
    ),
    checkpoints: bool = typer.Option(
        None,
        "--checkpoints/--no-checkpoints",
        help="Checkpoint every round so that --resume can continue (default: on)",
    ),
    tracking_uri: str = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else runs/mlflow.db, shared "
        "by the runs of the current folder)",
    ),
    collapse_rounds: int = typer.Option(
        None,
        "--collapse-rounds",
        help="Stop a run whose model stays no better than untrained (loss above it, or "
        f"accuracy at chance) this many rounds in a row; 0: never {_default('collapse_rounds')}",
    ),
    tracking: bool = typer.Option(
        None, "--tracking/--no-tracking", help="Log to MLflow (default: on)"
    ),
    baselines: bool = typer.Option(
        None,
        "--baselines/--no-baselines",
        help="Also train centralized and local-only (default: on)",
    ),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="YAML job file with the same settings; options override it",
    ),
) -> None:
    """Run a federated job across local silo worker processes and compare it with baselines.

    A run that stops keeps its finished rounds and prints how to resume it.

    Exit codes: 0 finished; 1 failed (one line names the cause and the log); 2 bad input;
    3 a round lost its quorum; 4 the model collapsed; 130 Ctrl-C; 143 SIGTERM.
    """
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
        "device": device,
        "server_lr": server_lr,
        "server_momentum": server_momentum,
        "strategy": strategy,
        "strategy_options": strategy_options or None,
        "screen_norms": screen_norms,
        "norm_limit": norm_limit,
        "secure_aggregation": secure_aggregation,
        "secure_aggregation_weights": secure_aggregation_weights,
        "secure_aggregation_clip": secure_aggregation_clip,
        "silo_metrics": silo_metrics,
        "clip_norm": clip_norm,
        "noise_multiplier": noise_multiplier,
        "target_delta": target_delta,
        "target_epsilon": target_epsilon,
        "dp_level": dp_level,
        "dp_silo_clip": dp_silo_clip,
        "dp_silo_noise": dp_silo_noise,
        "model": model,
        "data_dir": data_dir,
        "data": data,
        "target": target,
        "task": task,
        "max_train_samples": max_train_samples,
        "test_fraction": test_fraction,
        "summary": summary,
        "output_dir": output_dir,
        "name": name,
        "overwrite": overwrite,
        "min_silos": min_silos,
        "round_timeout": round_timeout,
        "async_buffer": async_buffer,
        "checkpoints": checkpoints,
        "tracking_uri": tracking_uri,
        "collapse_rounds": collapse_rounds,
        "tracking": tracking,
        "baselines": baselines,
    }
    try:
        from fl_jobs.local.prepare import prepare_job

        if resume is not None:
            from fl_jobs.resume import check_same_data, plan_resume

            if config is not None:
                bad_input(
                    "--config cannot be used with --resume",
                    f"a resumed run keeps its own settings ({resume / 'job.yaml'}); drop --config",
                )
            resume_plan = plan_resume(resume, overrides)
            job = resume_plan.config
            prepared = prepare_job(job)
            check_same_data(resume_plan, prepared)
            new_plan = None
        else:
            from fl_jobs.config import load_job_config
            from fl_jobs.run_folder import plan_new_run

            job = load_job_config(config, overrides)
            new_plan = plan_new_run(job)
            prepared = prepare_job(job)
            resume_plan = None
    except FLJobError as exc:
        fail(str(exc))
        return
    from rich.console import Console

    from fl_jobs.job import run_job

    try:
        result = run_job(
            job, console=Console(), prepared=prepared, plan=new_plan, resume=resume_plan
        )
    except FLJobError as exc:  # e.g. the folder is locked by another run
        fail(str(exc))
        return
    except Exception as exc:
        folder = resume if resume is not None else (new_plan.path if new_plan else None)
        runtime_failure(exc, folder if folder is not None and Path(folder).is_dir() else None)
    # Everything is on disk: spare the interpreter's shutdown a garbage-collector walk over
    # every object torch created (about half a second of a short run).
    gc.freeze()
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _group_run_options() -> None:
    """Option panels in ``run --help`` (fl_jobs.cli_help_groups)."""
    from fl_jobs.cli_help_groups import RUN_GROUPS, apply_groups

    apply_groups(run, RUN_GROUPS)


_group_run_options()


def _register_submit() -> None:
    """``submit`` (Azure ML) lives with the pipeline code; its module imports no Azure SDK."""
    from fl_jobs.aml.cli import submit

    app.command()(submit)


_register_submit()


def _register_predict() -> None:
    """``predict`` scores new rows with a run's model (fl_jobs.serving)."""
    from fl_jobs.serving.cli import predict

    app.command()(predict)


_register_predict()


def _register_cache() -> None:
    """``cache prune``: the silo data cache (fl_jobs.cache_cli)."""
    from fl_jobs.cache_cli import cache_app

    app.add_typer(cache_app, name="cache")


_register_cache()


def _register_agents() -> None:
    """``agent orchestrator`` and ``agent silo``: FL over the model store (fl_jobs.store)."""
    from fl_jobs.store.cli import agent_app

    app.add_typer(agent_app, name="agent")


_register_agents()


def _register_doctor() -> None:
    """``doctor``: probes a deployed sandbox's job path for real (fl_jobs.doctor)."""
    from fl_jobs.doctor.cli import doctor

    app.command()(doctor)


_register_doctor()


def _register_privacy() -> None:
    """``privacy ledger`` / ``privacy budget``: a silo's own privacy records."""
    from fl_jobs.privacy_cli import privacy_app

    app.add_typer(privacy_app, name="privacy")


_register_privacy()
