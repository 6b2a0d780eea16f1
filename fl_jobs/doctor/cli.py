"""``fl-sandbox doctor``: right after ``pulumi up``, run the job path for real.

    fl-sandbox doctor --manifest federation.json --outputs outputs.json [--dry-run]

Builds one probe per compute (``fl_jobs.doctor.submission``), checks it offline (silo
data-flow rules, ``load_job`` read back), and submits it; each probe prints its table of
expected versus observed storage movements in its step's log and fails on a difference.
Exit codes: 0 every probe as expected (or a dry run written); 1 a probe differs (named, with
its compute) or the submission failed; 2 bad input.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fl_jobs.cli.cli_errors import print_error, runtime_failure
from fl_jobs.errors import FLJobError
from fl_jobs.run.manifest import FederationManifest, ManifestError


def _datastores(outputs: Path, manifest: FederationManifest) -> dict[str, Any]:
    """The stack's datastore map, checked to cover every datastore the probes touch."""
    from fl_jobs.doctor.expectations import datastores_of
    from fl_jobs.silo.data_upload import check_destinations, load_destinations

    check_destinations(datastores_of(manifest), load_destinations(outputs))
    return dict(json.loads(outputs.read_text())["datastores"])


def _summary(job: Any, manifest: FederationManifest) -> Table:
    from fl_jobs.doctor.expectations import actors, expectations

    table = Table(title=f"doctor: {len(job.pipeline.jobs)} probes (code sha256 {job.sha256[:12]})")
    for column in ("probe", "compute", "identity", "movements", "negatives"):
        table.add_column(column)
    for (name, node), actor in zip(job.pipeline.jobs.items(), actors(manifest), strict=True):
        wanted = expectations(manifest, actor)
        client_id = getattr(node.identity, "client_id", None)
        table.add_row(
            name,
            str(node.compute),
            f"managed ({client_id})" if client_id else "managed (the compute's)",
            str(sum(e.allowed for e in wanted)),
            str(sum(not e.allowed for e in wanted)),
        )
    return table


def doctor(
    ctx: typer.Context,
    manifest: Annotated[Path, typer.Option("--manifest", help="federation manifest JSON")],
    outputs: Annotated[
        Path,
        typer.Option("--outputs", help="`pulumi stack output --json` (its datastores output)"),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="build and check offline; submit nothing")
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="folder for doctor.yaml and the probe code")
    ] = Path("runs") / "doctor",
) -> None:
    """Probe every storage movement of one round, and the isolation negatives, on each compute
    under its own identity; exit 1 naming any difference from the plan."""
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    try:
        manifest_obj = FederationManifest.load(manifest)
        if manifest_obj.workspace is None:
            raise FLJobError(
                f"manifest {manifest} describes a local federation (no workspace)",
                "pass the `federation` output of a deployed stack",
            )
        datastores = _datastores(outputs, manifest_obj)
        if out.exists() and not out.is_dir():
            raise FLJobError(f"--out {out} is a file", "give a folder path")
    except (FLJobError, ManifestError) as exc:
        print_error(str(exc))
        raise typer.Exit(2) from None
    try:
        _run(manifest_obj, datastores, out, dry_run, (ctx.obj or {}).get("client_factory"))
    except typer.Exit:
        raise
    except Exception as exc:  # a failure nobody named: one line, the traceback in a log
        runtime_failure(exc, out if out.is_dir() else None, context="doctor failed")


def _run(
    manifest: FederationManifest,
    datastores: dict[str, Any],
    out: Path,
    dry_run: bool,
    client_factory: Any = None,
) -> None:
    from azure.ai.ml import load_job

    from fl_jobs.aml.dataflow import check_data_flow
    from fl_jobs.doctor.submission import build_doctor_job

    console = Console(soft_wrap=True, width=200)
    try:
        job = build_doctor_job(manifest, datastores, out / "code")
    except (FLJobError, ValueError) as exc:
        print_error(str(exc))
        raise typer.Exit(2) from None
    path = out / "doctor.yaml"
    job.pipeline.dump(path)
    loaded = load_job(path)
    problems = check_data_flow(job.pipeline, manifest) + check_data_flow(loaded, manifest)
    if problems:
        print_error(f"the probe job breaks the silo rules: {problems[0]}", "report this")
        raise typer.Exit(1)
    console.print(_summary(job, manifest))
    if dry_run:
        console.print(f"dry run: probe job checked offline and written to {path}")
        return
    from fl_jobs.aml.submit import default_client_factory

    assert manifest.workspace is not None  # refused in doctor() before _run
    client = (client_factory or default_client_factory)(manifest.workspace)
    created = client.jobs.create_or_update(job.pipeline, experiment_name="fl-sandbox-doctor")
    console.print(f"submitted {created.name}: {getattr(created, 'studio_url', None)}")
    from azure.ai.ml.exceptions import JobException

    try:
        client.jobs.stream(created.name)
    except JobException:  # a failed probe fails the pipeline; its children say which one
        console.print(f"job {created.name} did not complete; checking each probe")
    failed = [
        child
        for child in client.jobs.list(parent_job_name=created.name)
        if getattr(child, "status", None) != "Completed"
    ]
    for child in failed:
        print_error(
            f"doctor: probe {child.display_name} on compute {child.compute} ended "
            f"{child.status}: a movement differs from the plan",
            f"read its log (`az ml job download -n {child.name} --all`) for the table",
        )
    if failed:
        raise typer.Exit(1)
    console.print("doctor: every storage movement and isolation negative is as the plan expects")
