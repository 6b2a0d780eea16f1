"""The agents engine on Azure ML: one pipeline job of K + 1 concurrent steps, whatever the rounds.

::

    orchestrator (orchestrator compute) python -m fl_jobs.store orchestrator ...
                                        -> <job>/orchestrator (global model store: lease id,
                                           rounds.jsonl, final model)
    silo_<s> (silo s's compute)         python -m fl_jobs.store silo --silo s ...
                                        <- <prefix>/<s> (s's data datastore, or its volume)
                                        <-> fl-sandbox/silo-store (s's data datastore: its DP
                                           secret and ledger, signing key, session memory)

Every port comes from the round's declared movements (``fl_jobs.aml.round_movements``): a
movement declared with a port is mounted on its actor's step, on the datastore of its store,
and nothing else is; the same declaration is what the job path checks (``policies.job_path``).
The agents' blob-SDK movements (polling ``global``, updates, heartbeats, secure-aggregation
messages, signing keys) are declared there too; they need no port.

No step depends on another, so Azure ML starts them together; the rounds run between the
agents through the model store (fl_jobs/store), not between steps. One pipeline rather than
K + 1 separate jobs keeps what a pipeline gives: one job to approve (the approval request and
the code hash cover every step), one data-flow check over every step's datastores, one job to
cancel. Each step runs on its owner's compute as that compute's managed identity, which is
also the identity the agent uses for the model store (``DefaultAzureCredential``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fl_jobs.aml import round_movements
from fl_jobs.aml.code_snapshot import JOB_CONFIG_NAME, MANIFEST_NAME, CodeSnapshot
from fl_jobs.aml.environments import environment_for
from fl_jobs.aml.layout import check_job_prefix, datastore_uri
from fl_jobs.aml.model_store import ModelStore, model_store_for
from fl_jobs.aml.round_movements import (
    RUN_PORT,
    SILO_DATA_PORT,
    SILO_STORE_PORT,
    DataMovement,
    Port,
    PortPaths,
    Store,
)
from fl_jobs.aml.step_identity import step_identity
from fl_jobs.cli.plurals import count
from fl_jobs.config import JobConfig
from fl_jobs.run.manifest import FederationManifest, ManifestError, OrchestratorRef, SiloRef

ORCHESTRATOR_STEP = "orchestrator"


def silo_step_name(silo: SiloRef) -> str:
    return f"silo_{silo.name.replace('-', '_')}"


def store_url(manifest: FederationManifest) -> str:
    """The model store's blob endpoint the agents use, which the manifest must carry."""
    url = manifest.orchestrator.model_store_url
    if url is None:
        raise ManifestError(
            "the manifest names no orchestrator.model_store_url, which the agents engine needs "
            "- regenerate it with `pulumi stack output --json federation` (blueprints export "
            "it), or submit with --engine pipeline"
        )
    return url


def _resources(instance_type: str | None) -> Any:
    if instance_type is None:
        return None
    from azure.ai.ml.entities import JobResourceConfiguration

    return JobResourceConfiguration(instance_type=instance_type)


def _datastore(store: Store, model_store: ModelStore, silo: SiloRef | None) -> str:
    """The datastore behind ``store`` for a step of ``silo`` (None: the orchestrator's)."""
    if store is Store.SILO_DATA and silo is not None:
        return silo.datastore
    if store is Store.SILO_UPDATES and silo is not None:
        return model_store.update_datastore(silo.name)
    if store in (Store.GLOBAL_MODELS, Store.TEST_SET):
        return model_store.global_datastore
    raise ValueError(f"no datastore holds {store.value!r} for a port of this step")


class _Ports:
    """A step's ports, from its declared movements: ``inputs`` and ``outputs`` as the SDK
    takes them, and the port of each name to put in the command."""

    def __init__(
        self,
        movements: Iterable[DataMovement],
        paths: PortPaths,
        model_store: ModelStore,
        silo: SiloRef | None = None,
    ) -> None:
        from azure.ai.ml import Input, Output

        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.declared: dict[str, Port] = {}
        for movement in movements:
            port = movement.port
            if port is None:
                continue
            self.declared[port.name] = port
            if port.volume_instead and silo is not None and silo.data_mount is not None:
                continue  # the site's own volume, mounted in its pods
            uri = datastore_uri(_datastore(movement.store, model_store, silo), port.path(paths))
            if port.direction == "input":  # mode None: Azure ML's default
                self.inputs[port.name] = Input(type=port.type, path=uri, mode=port.mode)
            else:
                self.outputs[port.name] = Output(type=port.type, path=uri, mode=port.mode)

    def mounted(self, name: str) -> bool:
        return name in self.inputs or name in self.outputs

    def ref(self, name: str) -> str:
        """The command's reference to port ``name``, which must be declared and mounted."""
        if not self.mounted(name):
            raise ValueError(f"port {name!r} is not a mounted movement of this step")
        return self.declared[name].ref()


def _agent_args(job: str, url: str) -> str:
    return f"--manifest {MANIFEST_NAME} --config {JOB_CONFIG_NAME} --job {job} --account-url {url}"


def build_agents_pipeline(
    manifest: FederationManifest,
    config: JobConfig,
    *,
    code: CodeSnapshot,
    job_name: str,
    store_job: str | None = None,
    data_prefix: str | None = None,
    experiment_name: str | None = None,
    model_store: ModelStore | None = None,
) -> Any:
    """The ``PipelineJob`` of K silo agents and one orchestrator agent for ``config``.

    ``code`` must be staged with the manifest (``stage_code(dest, config, manifest)``);
    ``store_job`` is the job's folder in the model store (default ``job_name``): a resumed
    job is a new pipeline job over the same store folder.
    """
    from azure.ai.ml import command
    from azure.ai.ml.entities import PipelineJob

    from fl_jobs.aml.pipeline import TAG_BLUEPRINT, TAG_CODE_SHA256, default_data_prefix

    check_job_prefix(job_name)
    job = check_job_prefix(store_job or job_name)
    url = store_url(manifest)
    if not (code.path / MANIFEST_NAME).is_file():
        raise ValueError(f"{code.path} was staged without the manifest the agents read")
    store = model_store or model_store_for(manifest)
    prefix = (data_prefix or default_data_prefix(config)).strip("/")
    args = _agent_args(job, url)
    orchestrator: OrchestratorRef = manifest.orchestrator
    ports = _Ports(
        round_movements.orchestrator_movements(s.name for s in manifest.silos),
        PortPaths(job, prefix, None),
        store,
    )
    steps: dict[str, Any] = {
        ORCHESTRATOR_STEP: command(
            name=ORCHESTRATOR_STEP,
            display_name="FL orchestrator agent",
            code=str(code.path),
            command=f"python -m fl_jobs.store orchestrator {args} --out {ports.ref(RUN_PORT)}",
            inputs=ports.inputs,
            outputs=ports.outputs,
            environment=environment_for(None).sdk(code.path),
            compute=orchestrator.compute,
            identity=step_identity(orchestrator.compute_type, orchestrator.identity_client_id),
            resources=_resources(orchestrator.instance_type),
        )
    }
    for silo in manifest.silos:
        paths = PortPaths(job, prefix, silo.name)
        ports = _Ports(round_movements.silo_movements(), paths, store, silo)
        if ports.mounted(SILO_DATA_PORT):
            data = ports.ref(SILO_DATA_PORT)
        else:
            assert silo.data_mount is not None  # only a volume replaces the data port
            data = f"{silo.data_mount.rstrip('/')}/{ports.declared[SILO_DATA_PORT].path(paths)}"
        name = silo_step_name(silo)
        steps[name] = command(
            name=name,
            display_name=f"FL silo agent {silo.name}",
            code=str(code.path),
            command=(
                f"python -m fl_jobs.store silo --silo {silo.name} {args} "
                f"--work ./agent-work --data {data} "
                f"--silo-store {ports.ref(SILO_STORE_PORT)}"
            ),
            inputs=ports.inputs,
            # What the silo keeps across jobs (DP secret and ledger, secure aggregation's
            # signing key and session memory): its own datastore, the pipeline engine's path.
            outputs=ports.outputs,
            environment=environment_for(silo).sdk(code.path),  # CUDA on a GPU silo
            compute=silo.compute,
            identity=step_identity(silo.compute_type, silo.identity_client_id),
            resources=_resources(silo.instance_type),
        )
    pipeline = PipelineJob(
        jobs=steps,
        display_name=(
            f"{config.strategy.describe()} {config.example.name} (agents): "
            f"{len(manifest.silos)} silos x {count(config.federation.rounds, 'round')}"
        ),
        description=f"fl-sandbox model-store agents over blueprint {manifest.blueprint!r}",
    )
    pipeline.name = job_name
    pipeline.experiment_name = experiment_name or f"fl-sandbox-{config.example.name}"
    assert pipeline.settings is not None  # a dsl pipeline always carries its settings
    pipeline.settings.continue_on_step_failure = False
    pipeline.tags = {
        TAG_BLUEPRINT: manifest.blueprint,
        TAG_CODE_SHA256: code.sha256,
        "fl-sandbox-engine": "agents",
        "fl-sandbox-store-job": job,
    }
    return pipeline
