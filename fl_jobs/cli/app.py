"""``python -m fl_jobs`` (or ``fl-sandbox``): run a federated job locally (``run``); other
commands register on ``app``.

Every bad argument stops with one line on stderr, ``error: <what> - <fix>``, and exit code 2
before anything is written (fl_jobs.cli.cli_errors); a failure while running is one line naming the
cause and a log file with the traceback, exit code 1. See fl_jobs.run.job for the other codes.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import typer

from fl_jobs.cli.cli_errors import OneLineErrorsGroup, bad_input, runtime_failure
from fl_jobs.cli.cli_settings import PANELS, with_setting_options
from fl_jobs.strategies.registry import NAMES as STRATEGY_NAMES
from fl_jobs.strategies.registry import options_help

RUN_PANEL = PANELS["run"]

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


def _print_version(value: bool) -> None:
    """``--version``: the installed distribution's version (the source tree's if not installed)."""
    if not value:
        return
    from fl_jobs.cli.version import version_text

    typer.echo(version_text())
    raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        None, "--version", is_eager=True, callback=_print_version, help="Print the version"
    ),
) -> None:
    """Federated learning jobs for fl-sandbox."""


def run(
    *,
    strategy: str = typer.Option(
        None,
        "--strategy",
        help=f"Aggregation strategy: {' | '.join(STRATEGY_NAMES)}; replaces the job file's "
        "strategy section (default: fedavg)",
    ),
    strategy_options: list[str] = typer.Option(
        None,
        "--strategy-option",
        help=f"KEY=VALUE option of the strategy, repeatable (default: the option's): "
        f"{options_help()}",
    ),
    resume: Path = typer.Option(
        None,
        "--resume",
        help="Continue the stopped run in this folder from its last checkpoint, with its own "
        "settings (only --rounds, --round-timeout, --min-silos, --summary, --baselines, "
        "--tracking and --checkpoints may change)",
    ),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="YAML job file with the same settings, flat or in sections; options override it",
    ),
    **settings: Any,
) -> None:
    """Run a federated job across local silo worker processes and compare it with baselines.

    A run that stops keeps its finished rounds and prints how to resume it.

    Exit codes: 0 finished; 1 failed (one line names the cause and the log); 2 bad input;
    3 a round lost its quorum; 4 the model collapsed; 130 Ctrl-C; 143 SIGTERM.
    """
    from fl_jobs.errors import FLJobError

    overrides: dict[str, Any] = {
        **settings,
        "strategy": strategy,
        "strategy_options": strategy_options or None,
    }
    try:
        from fl_jobs.local.prepare import prepare_job

        if resume is not None:
            from fl_jobs.rounds.resume import check_same_data, plan_resume

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
            from fl_jobs.run.run_folder import plan_new_run

            job = load_job_config(config, overrides)
            new_plan = plan_new_run(job)
            prepared = prepare_job(job)
            resume_plan = None
    except FLJobError as exc:
        fail(str(exc))
        return
    from rich.console import Console

    from fl_jobs.run.job import run_job

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


app.command()(
    with_setting_options(
        run,
        {
            "strategy": "Strategy",
            "strategy_options": "Strategy",
            "resume": RUN_PANEL,
            "config": RUN_PANEL,
        },
    )
)


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
    """``cache prune``: the silo data cache (fl_jobs.cli.cache_cli)."""
    from fl_jobs.cli.cache_cli import cache_app

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
    from fl_jobs.cli.privacy_cli import privacy_app

    app.add_typer(privacy_app, name="privacy")


_register_privacy()
