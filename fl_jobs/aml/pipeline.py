"""Build the Azure ML pipeline of a federated job over a provisioned federation.

Rounds are unrolled into one static graph (Azure ML pipelines have no loops)::

    init (orchestrator)           -> <job>/global/round-0   (global model store)
    preprocess_<silo> (silo)      -> <job>/processed        (the silo's data datastore; raw
                                                              data from it or from the
                                                              silo's on-premises volume)
    train_r<r>_<silo> (silo)      -> <job>/round-<r>        (the silo's update datastore)
    aggregate_r<r> (orchestrator) -> <job>/global/round-<r> (global model store)

The initial model comes from a dedicated ``init`` step on the orchestrator compute: it builds
the model under the job seed exactly as the local federation does, so both start from the
same weights. The job's strategy (``fl_jobs.strategies.registry``) gives each train step its
settings for that silo and round (``train_config``, e.g. FedProx's ``proximal_mu``), visible in
the pipeline and the approval request; the aggregate steps run the same strategy and carry its
state from round to round in the global model folders. Every data port gets an explicit
``azureml://datastores/...`` path, which is what lets ``dataflow.check_data_flow`` prove the
silo rules before submission.

No ``from __future__ import annotations`` here: azure-ai-ml inspects the ``@dsl.pipeline``
function's annotations at run time and rejects string annotations.
"""

from typing import Any

from fl_jobs.aml.code_snapshot import CodeSnapshot
from fl_jobs.aml.component_loader import load_components, update_port
from fl_jobs.aml.layout import (
    SILO_STORE_PATH,
    check_job_prefix,
    datastore_uri,
    global_model_path,
    processed_data_path,
    update_path,
)
from fl_jobs.aml.model_store import ModelStore, model_store_for
from fl_jobs.aml.step_identity import step_identity
from fl_jobs.cli.plurals import count
from fl_jobs.config import JobConfig
from fl_jobs.run.manifest import FederationManifest, ManifestError, OrchestratorRef, SiloRef

TAG_BLUEPRINT = "fl-sandbox-blueprint"
TAG_CODE_SHA256 = "fl-sandbox-code-sha256"


def default_data_prefix(config: JobConfig) -> str:
    """Where ``scripts/prepare_silo_data.py`` puts an example's data in every datastore."""
    return f"fl-sandbox/{config.example.name}"


def step_name(kind: str, silo: SiloRef | None = None, round_index: int | None = None) -> str:
    """Pipeline node names: identifiers, so silo dashes become underscores."""
    parts = [kind]
    if round_index is not None:
        parts.append(f"r{round_index}")
    if silo is not None:
        parts.append(silo.name.replace("-", "_"))
    return "_".join(parts)


def check_cloud_manifest(
    manifest: FederationManifest, config: JobConfig, *, engine: str = "pipeline"
) -> None:
    """Reject what cannot run on Azure ML, before any SDK object is built (``engine``: the
    unrolled ``pipeline`` or the model-store ``agents``, which sample silos at run time)."""
    if manifest.workspace is None:
        raise ManifestError(
            f"manifest of blueprint {manifest.blueprint!r} has no workspace: it describes a "
            "local federation; use `python -m fl_jobs run` for it, or pass the `federation` "
            "output of a deployed stack"
        )
    local = [silo.name for silo in manifest.silos if silo.kind == "local"]
    if local:
        raise ManifestError(
            f"silos {local} are local folders and cannot run in an Azure ML pipeline; "
            "use the manifest exported by the deployed stack"
        )
    if engine == "pipeline" and config.federation.fraction < 1.0:
        raise ManifestError(
            f"fraction={config.federation.fraction} samples silos per round, which an unrolled "
            "Azure ML pipeline cannot do at run time; set fraction: 1.0, or submit with --engine "
            "agents"
        )
    if engine == "pipeline" and config.privacy.dp_level == "silo":
        raise ManifestError(
            "dp_level silo needs the round engine (fl_jobs.silo.silo_dp), which the unrolled "
            "pipeline's aggregate steps do not run - submit with --engine agents, or use "
            "--dp-level record (--clip-norm)"
        )
    if engine == "pipeline" and config.secure_aggregation.enabled:
        raise ManifestError(
            "secure_aggregation needs the agents engine: each round needs four "
            "exchanges between silos and orchestrator, with each silo's keys kept between "
            "steps, which an unrolled Azure ML pipeline does not have (docs/secure-aggregation.md"
            ", 'Azure ML pipelines') - submit with --engine agents, or drop "
            "secure_aggregation"
        )
    if engine == "pipeline" and config.federation.async_buffer is not None:
        raise ManifestError(
            "async_buffer needs the agents engine: silos train continuously and the "
            "orchestrator folds updates as they arrive, which an unrolled pipeline of fixed "
            "rounds cannot do - submit with --engine agents, or drop async_buffer"
        )
    from fl_jobs.strategies.registry import get_info

    if engine == "pipeline" and get_info(config.strategy.name).silo_state:
        raise ManifestError(
            f"strategy {config.strategy.name} keeps state at each silo and sends tensors with "
            "the model both ways, which the unrolled pipeline's steps do not carry - submit "
            "with --engine agents"
        )
    need = get_info(config.strategy.name).min_updates(config.strategy.options)
    if len(manifest.silos) < need:
        raise ManifestError(
            f"strategy {config.strategy.describe()} needs at least {need} updates a round, but "
            f"the manifest has {len(manifest.silos)} silos - lower its options or add silos"
        )


def _pin(node: Any, name: str, silo: SiloRef | None, orchestrator: OrchestratorRef) -> None:
    """Run the step on its owner's compute, as that compute's managed identity.

    The identity is explicit (Azure's rule 13): a job's default (``AmlToken``) leaves the
    identity used for data to the service, and ``UserIdentity`` would carry the submitter's
    own token into a silo. With ``managed`` (and the identity's client id on an Azure ML
    cluster when the manifest has it; none on Kubernetes, ``fl_jobs.aml.step_identity``) data
    access is the compute's own identity, which holds the silo's roles.
    """
    owner = orchestrator if silo is None else silo
    node.name = name
    node.compute = owner.compute
    node.identity = step_identity(owner.compute_type, owner.identity_client_id)
    instance_type = orchestrator.instance_type if silo is None else silo.instance_type
    if instance_type is not None:
        from azure.ai.ml.entities import JobResourceConfiguration

        node.resources = JobResourceConfiguration(instance_type=instance_type)


def build_pipeline(
    manifest: FederationManifest,
    config: JobConfig,
    *,
    code: CodeSnapshot,
    job_name: str,
    data_prefix: str | None = None,
    experiment_name: str | None = None,
    model_store: ModelStore | None = None,
) -> Any:
    """The ``PipelineJob`` running ``config.federation.rounds`` rounds of the job's strategy over
    ``manifest``'s silos.

    ``code`` is the staged snapshot every step runs (see ``code_snapshot.stage_code``);
    ``job_name`` names the job and its folder in every datastore; ``data_prefix`` is the
    folder holding the raw data in every silo datastore (and the test set under ``test/`` in
    the global model store); ``model_store`` defaults to the datastores the infrastructure
    registers for ``manifest`` (see model_store).
    """
    check_cloud_manifest(manifest, config)
    check_job_prefix(job_name)
    from azure.ai.ml import Input, Output, dsl

    from fl_jobs.aml.steps.common import encode_silo_config
    from fl_jobs.rounds.job_parts import build_strategy
    from fl_jobs.strategies.registry import strategy_title

    strategy = build_strategy(config)
    title = strategy_title(config.strategy.name, config.strategy.options)

    prefix = (data_prefix or default_data_prefix(config)).strip("/")
    components = load_components(code.path, len(manifest.silos))
    orchestrator = manifest.orchestrator
    store = model_store or model_store_for(manifest)
    global_store = store.global_datastore

    def folder(datastore: str, path: str) -> Input:
        return Input(type="uri_folder", path=datastore_uri(datastore, path))

    def out_folder(datastore: str, path: str) -> Output:
        return Output(type="uri_folder", path=datastore_uri(datastore, path), mode="rw_mount")

    test_data = folder(global_store, f"{prefix}/test")

    @dsl.pipeline(  # type: ignore[call-overload]  # its overloads want func=None passed
        name=job_name,
        display_name=(
            f"{title} {config.example.name}: {len(manifest.silos)} silos x "
            f"{count(config.federation.rounds, 'round')}"
        ),
        description=f"fl-sandbox federated job over blueprint {manifest.blueprint!r}",
    )
    def federated_job() -> None:
        init = components.init(test_data=test_data)
        _pin(init, "init", None, orchestrator)
        init.outputs.global_model = out_folder(global_store, global_model_path(job_name, 0))
        global_model = init.outputs.global_model

        processed = {}
        for silo in manifest.silos:
            preprocess, _ = components.silo_steps(silo.gpus)
            if silo.data_mount is not None:  # the site's own volume, mounted in its pods
                step = preprocess(
                    raw_path=f"{silo.data_mount.rstrip('/')}/{prefix}/{silo.name}",
                    silo=silo.name,
                )
            else:
                step = preprocess(
                    raw_data=folder(silo.datastore, f"{prefix}/{silo.name}"), silo=silo.name
                )
            _pin(step, step_name("preprocess", silo), silo, orchestrator)
            step.outputs.processed_data = out_folder(silo.datastore, processed_data_path(job_name))
            processed[silo.name] = step.outputs.processed_data

        for round_index in range(1, config.federation.rounds + 1):
            updates = {}
            for index, silo in enumerate(manifest.silos):
                _, train_step = components.silo_steps(silo.gpus)
                train = train_step(
                    global_model=global_model,
                    silo_data=processed[silo.name],
                    silo=silo.name,
                    silo_index=index,
                    round=round_index,
                    train_config=encode_silo_config(strategy.silo_config(round_index, silo.name)),
                )
                _pin(train, step_name("train", silo, round_index), silo, orchestrator)
                train.outputs.model_update = out_folder(
                    store.update_datastore(silo.name), update_path(job_name, round_index)
                )
                # The silo's DP secret and ledger: in its own datastore, the same across jobs.
                train.outputs.silo_store = out_folder(silo.datastore, SILO_STORE_PATH)
                updates[update_port(index)] = train.outputs.model_update
            aggregate = components.aggregate(
                global_model=global_model, test_data=test_data, round=round_index, **updates
            )
            name = step_name("aggregate", round_index=round_index)
            _pin(aggregate, name, None, orchestrator)
            aggregate.outputs.new_global_model = out_folder(
                global_store, global_model_path(job_name, round_index)
            )
            global_model = aggregate.outputs.new_global_model

    job = federated_job()
    job.name = job_name
    job.experiment_name = experiment_name or f"fl-sandbox-{config.example.name}"
    job.settings.continue_on_step_failure = False
    job.tags = {TAG_BLUEPRINT: manifest.blueprint, TAG_CODE_SHA256: code.sha256}
    return job
