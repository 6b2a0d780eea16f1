"""``python -m fl_jobs submit``: run a federated job as an Azure ML pipeline on a deployed sandbox.

The ``submit`` function is a plain typer command so that the main ``fl_jobs`` CLI registers it
(``app.command()(submit)``); ``app`` here runs it on its own (``python -m fl_jobs.aml``).
azure-ai-ml is imported inside, never at module import: it costs seconds.

Exit codes: 0 submitted (or dry run written), 1 refused or failed by Azure, 2 bad input or a
pipeline that breaks the silo rules, 3 not approved. Every error is one line on stderr
(fl_jobs.cli.cli_errors); an unexpected failure also names the log file holding its traceback.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fl_jobs.cli.cli_errors import OneLineErrorsGroup, print_error, runtime_failure
from fl_jobs.errors import FLJobError
from fl_jobs.run.manifest import ManifestError

app = typer.Typer(add_completion=False, help=__doc__, cls=OneLineErrorsGroup)
CLIENT_FACTORY_KEY = "client_factory"


def step_table(prepared: Any) -> Table:
    """step | compute | reads | writes, with datastore URIs shortened to ``store:path``."""
    from fl_jobs.aml.layout import parse_datastore_uri

    def short(uri: str | None) -> str:
        ref = parse_datastore_uri(uri) if uri else None
        return f"{ref.datastore}:{ref.path}" if ref else str(uri)

    table = Table(title=f"{prepared.job_name}: {len(prepared.steps)} steps")
    for column in ("step", "compute", "reads", "writes"):
        table.add_column(column, no_wrap=column in ("step", "compute"), overflow="fold")
    for step in prepared.steps:
        compute = step.compute or "-"
        if step.instance_type:
            compute += f" ({step.instance_type})"
        table.add_row(
            step.name,
            compute,
            "\n".join(short(p.uri) for p in step.reads),
            "\n".join(short(p.uri) for p in step.writes),
        )
    return table


def _fail(console: Console, message: str, code: int) -> typer.Exit:
    """The one error line (``console`` is kept for callers; the line goes to stderr)."""
    print_error(message)
    return typer.Exit(code)


def submit(
    ctx: typer.Context,
    manifest: Annotated[
        Path, typer.Option("--manifest", help="federation manifest (`pulumi stack output --json`)")
    ],
    example: Annotated[str, typer.Option("--example", help="digits | mnist | turbofan | tabular")],
    config: Annotated[
        Path | None, typer.Option("--config", help="job YAML (same file as the local run)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="build and validate offline; submit nothing")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="folder for pipeline.yaml, code snapshot, approval request"),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option("--rounds", min=1, help="federated rounds (overrides config)")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="job seed (overrides config)")
    ] = None,
    job_name: Annotated[
        str | None, typer.Option("--job-name", help="job name and model-store folder")
    ] = None,
    data_prefix: Annotated[
        str | None,
        typer.Option("--data-prefix", help="folder of the example's data in every datastore"),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Azure ML experiment name")
    ] = None,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="follow the job until it finishes")
    ] = True,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="agents: one step per silo + one orchestrator step, rounds over the model "
            "store (K+1 job starts); pipeline: the unrolled graph (1+K+R(K+1) steps)",
        ),
    ] = "agents",
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="agents engine: continue this stopped job from the model store's last "
            "complete round (its job name, i.e. its folder in the store)",
        ),
    ] = None,
    register_model: Annotated[
        bool,
        typer.Option(
            "--register-model/--no-register-model",
            help="agents engine, with --stream: register the completed job's final MLflow "
            "model in the workspace as fl-sandbox-<example>",
        ),
    ] = True,
) -> None:
    """Build the federated pipeline from a manifest, check it, and submit it (or dry-run)."""
    try:
        _submit(ctx, manifest, example, config, dry_run, out, rounds, seed, job_name,
                data_prefix, experiment, stream, engine, resume, register_model)  # fmt: skip
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a failure nobody named: one line, the traceback in a log
        folder = out if out is not None and out.is_dir() else None
        runtime_failure(exc, folder, context="submission failed")


DRY_RUN_FILES = ("pipeline.yaml", "approval-request.json")


def _submit(
    ctx: typer.Context,
    manifest: Path,
    example: str,
    config: Path | None,
    dry_run: bool,
    out: Path | None,
    rounds: int | None,
    seed: int | None,
    job_name: str | None,
    data_prefix: str | None,
    experiment: str | None,
    stream: bool,
    engine: str = "agents",
    resume: str | None = None,
    register_model: bool = True,
) -> None:
    from fl_jobs.aml.approval import ApprovalError
    from fl_jobs.aml.dataflow import DataFlowError
    from fl_jobs.aml.submit import (
        SubmissionError,
        default_client_factory,
        default_job_name,
        dump_dry_run,
        load_inputs,
        prepare_job,
        submit_job,
    )

    # azure-ai-ml announces its experimental schema classes on every load, and azure-identity
    # logs every credential it tried: noise here, since failures come back as one line.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    console = Console(soft_wrap=True)
    if not console.is_terminal:  # piped or captured: keep datastore paths on one line
        console = Console(soft_wrap=True, width=220)
    errors = Console(stderr=True, soft_wrap=True)
    from fl_jobs.aml.submit import ENGINES

    if engine not in ENGINES:
        raise _fail(errors, f"--engine {engine!r} is not one of {', '.join(ENGINES)} - "
                    "pick one of them", 2)  # fmt: skip
    if resume is not None:
        from fl_jobs.aml.layout import check_job_prefix

        if engine != "agents":
            raise _fail(errors, "--resume continues an agents job - drop --engine pipeline", 2)
        try:
            check_job_prefix(resume)
        except ValueError as exc:
            raise _fail(errors, f"--resume: {exc} - pass the stopped job's name", 2) from None
    if out is not None and out.exists() and not out.is_dir():
        raise _fail(errors, f"--out {out} is a file - give a folder path for the outputs", 2)
    # a dry run's files (fl_jobs.aml.submit.PIPELINE_FILE, APPROVAL_REQUEST_FILE): an
    # approval request is never replaced without a word
    if out is not None and any((out / n).exists() for n in DRY_RUN_FILES):
        raise _fail(
            errors,
            f"--out {out} holds an earlier pipeline and approval request - choose another "
            "folder, or move that one away first",
            2,
        )
    try:
        manifest_obj, store, job_config = load_inputs(
            manifest, example, config, {"rounds": rounds, "seed": seed}
        )
    except (FLJobError, ManifestError) as exc:
        raise _fail(errors, str(exc), 2) from None
    name = job_name or (
        f"{resume[:50]}-r{secrets.token_hex(2)}"
        if resume
        else default_job_name(job_config.example.name)
    )
    if dry_run and out is None:
        out = Path("runs") / "aml" / name
    with tempfile.TemporaryDirectory(prefix="fl-sandbox-code-") as scratch:
        base = out if out is not None else Path(scratch)
        try:
            prepared = prepare_job(
                manifest_obj,
                job_config,
                code_dir=base / "code",
                job_name=name,
                data_prefix=data_prefix,
                experiment_name=experiment,
                model_store=store,
                engine=engine,
                store_job=resume,
            )
        except (FLJobError, ManifestError, DataFlowError, ValueError) as exc:
            raise _fail(errors, str(exc), 2) from None
        console.print(step_table(prepared))
        if dry_run:
            assert out is not None
            path = dump_dry_run(prepared, out)
            console.print(f"dry run: pipeline validated offline and written to {path}")
            return
        if out is not None:
            dump_dry_run(prepared, out)
        factory = (ctx.obj or {}).get(CLIENT_FACTORY_KEY, default_client_factory)
        try:
            result = submit_job(
                prepared,
                client_factory=factory,
                stream=stream,
                register_model=register_model,
                on_created=lambda created: console.print(
                    f"submitted {created.name}: {getattr(created, 'studio_url', None)}"
                ),
            )
        except ApprovalError as exc:
            raise _fail(errors, str(exc), 3) from None
        except DataFlowError as exc:
            raise _fail(errors, str(exc), 2) from None
        except SubmissionError as exc:
            raise _fail(errors, str(exc), 1) from None
    console.print(f"job {result.name}: {result.status or 'submitted'}; studio: {result.studio_url}")
    if result.model is not None:
        console.print(f"final model registered in the workspace as {result.model}")
    elif result.model_error is not None:
        from fl_jobs.aml.model_registration import final_model_path

        errors.print(
            f"warning: the final model was not registered ({result.model_error}); it is in the "
            f"model store's global container under {final_model_path(prepared.job_name)}",
            markup=False,
            highlight=False,
        )


@app.callback()
def main() -> None:
    """Azure ML pipelines for fl-sandbox federations."""


app.command()(submit)
