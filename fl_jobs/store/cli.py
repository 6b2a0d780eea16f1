"""``fl-sandbox agent orchestrator`` and ``fl-sandbox agent silo``: the model-store agents.

Both take the federation manifest, the job file (the same YAML as ``run --config``), a job id
and the model store's blob endpoint. They authenticate with azure-identity's
``DefaultAzureCredential`` (the compute's managed identity or workload identity on Azure,
``az login`` on a workstation), never an account key or a SAS. Every bad argument stops with
``error: <what> - <fix>`` (exit 2) before anything is written to the store.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from fl_jobs.cli.cli_errors import OneLineErrorsGroup, bad_input

agent_app = typer.Typer(
    name="agent",
    cls=OneLineErrorsGroup,
    help="Long-running FL agents that talk only through the model store (no inbound port).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_MANIFEST = typer.Option(..., "--manifest", help="Federation manifest (JSON)")
_JOB_FILE = typer.Option(..., "--config", help="Job file (YAML, as for `run --config`)")
_JOB = typer.Option(..., "--job", help="Job id: the folder of this job in every container")
_URL = typer.Option(
    ..., "--account-url", envvar="FL_SANDBOX_STORE_URL", help="Model store blob endpoint (https)"
)


def _setup(manifest: Path, job_file: Path, job: str, account_url: str) -> tuple[Any, Any]:
    """Manifest and prepared job, checked before anything touches the store."""
    from fl_jobs.config import load_job_config
    from fl_jobs.errors import FLJobError
    from fl_jobs.local.prepare import prepare_job
    from fl_jobs.run.manifest import FederationManifest, ManifestError
    from fl_jobs.store.layout import check_job_id

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # not every HTTP request
    try:
        check_job_id(job)
    except ValueError as exc:
        bad_input(str(exc), "pick another --job")
    if not account_url.startswith("https://"):
        bad_input(
            f"--account-url {account_url!r} is not an https endpoint",
            "pass the model store's blob endpoint, e.g. https://<account>.blob.core.windows.net",
        )
    try:
        fed = FederationManifest.load(manifest)
        config = load_job_config(job_file)
    except (ManifestError, FLJobError) as exc:
        bad_input(str(exc))
    if config.federation.silos != len(fed.silos):
        bad_input(
            f"the job has {config.federation.silos} silos but the manifest {len(fed.silos)}",
            f"set silos: {len(fed.silos)} in {job_file}",
        )
    try:
        prepared = prepare_job(config)
    except FLJobError as exc:
        bad_input(str(exc))
    return fed, prepared


def _credential(client_id: str | None) -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(
        managed_identity_client_id=client_id, exclude_interactive_browser_credential=True
    )


def _store(account_url: str, credential: Any, containers: list[str]) -> Any:
    from fl_jobs.store.blobs import Store

    store = Store.connect(account_url, credential, containers)
    for name in containers:
        if not store.container_exists(name):
            bad_input(
                f"container {name!r} does not exist in {account_url}",
                "deploy the blueprint (it creates one container per silo and `global`)",
            )
    return store


def _stopped(what: str) -> None:
    """A run that stopped on a named cause: one line, exit 1, and how to go on."""
    typer.echo(
        f"error: {what} - run the same command again: it continues from the store's last "
        "complete round",
        err=True,
    )
    raise typer.Exit(1)


@agent_app.command()
def orchestrator(
    manifest: Path = _MANIFEST,
    job_file: Path = _JOB_FILE,
    job: str = _JOB,
    account_url: str = _URL,
    out: Path = typer.Option(..., "--out", help="Local folder: lease id, cost log, final model"),
) -> None:
    """Drive the job's rounds: announce, collect, aggregate, checkpoint to the store."""
    from fl_jobs.core.torch_threads import single_threaded
    from fl_jobs.errors import FLJobError, JobStopped
    from fl_jobs.store.blobs import AlreadyWritten, Conflict, StoreUnavailable
    from fl_jobs.store.layout import GLOBAL_CONTAINER, silo_container
    from fl_jobs.store.orchestrator import StoreOrchestrator

    fed, prepared = _setup(manifest, job_file, job, account_url)
    silos = [s.name for s in fed.silos]
    credential = _credential(fed.orchestrator.identity_client_id)
    store = _store(account_url, credential, [GLOBAL_CONTAINER, *map(silo_container, silos)])
    try:
        with single_threaded():
            state = StoreOrchestrator(
                prepared, job=job, store=store, silos=silos, out=out, notify=typer.echo
            ).run()
    except FLJobError as exc:
        bad_input(str(exc))
    except (JobStopped, StoreUnavailable, AlreadyWritten, Conflict) as exc:
        _stopped(str(exc))
    typer.echo(
        f"job {job} finished after round {state.round}; final model in {out / 'global_model.pt'}"
    )


@agent_app.command()
def silo(
    silo: str = typer.Option(..., "--silo", help="This silo's name in the manifest"),
    manifest: Path = _MANIFEST,
    job_file: Path = _JOB_FILE,
    job: str = _JOB,
    account_url: str = _URL,
    work: Path = typer.Option(..., "--work", help="Local folder for the silo's data copy"),
    data: Path = typer.Option(
        None, "--data", help="The silo's data folder (default: its partition of the job's data)"
    ),
    silo_store: Path = typer.Option(
        None,
        "--silo-store",
        help="The silo's own store folder: its randomness secret and privacy ledger, which "
        "must persist across jobs and stay out of the orchestrator's reach (default: "
        "$FL_SANDBOX_SILO_STORE/<silo>, else the fl-sandbox cache)",
    ),
) -> None:
    """Serve the job's rounds for one silo until the orchestrator says it is over."""
    from fl_jobs.run.manifest import ManifestError
    from fl_jobs.silo.silo_store import LocalSiloStore
    from fl_jobs.store.blobs import StoreUnavailable
    from fl_jobs.store.layout import GLOBAL_CONTAINER, SIGNING_KEYS_CONTAINER, silo_container
    from fl_jobs.store.silo import StoreSilo
    from fl_jobs.store.silo_agent import run_silo_agent, silo_data

    fed, prepared = _setup(manifest, job_file, job, account_url)
    try:
        ref = fed.silo(silo)
    except ManifestError as exc:
        bad_input(str(exc), "pass one of the manifest's silo names to --silo")
    if data is not None and not data.is_dir():
        bad_input(f"--data {data} is not a folder", "pass the silo's data folder")
    index = [s.name for s in fed.silos].index(silo)
    arrays = silo_data(prepared, index, silo, data or work / "data", given=data is not None)
    credential = _credential(ref.identity_client_id)
    names = [s.name for s in fed.silos]
    # Secure aggregation: signing keys are published in, and read from, one container.
    keys = [SIGNING_KEYS_CONTAINER] if prepared.config.secure_aggregation.enabled else []
    store = _store(account_url, credential, [GLOBAL_CONTAINER, silo_container(silo), *keys])
    try:
        own = None if silo_store is None else LocalSiloStore(silo_store)
        transport = StoreSilo(store, job, silo)
        trained = run_silo_agent(prepared, transport, arrays, own, names)
    except StoreUnavailable as exc:
        _stopped(str(exc))
    typer.echo(f"{silo}: job {job} is over; trained {trained} rounds")
