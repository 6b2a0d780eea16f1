"""Prepare, check and submit a federated pipeline to the deployed sandbox's workspace.

Order matters: everything that can be checked offline (manifest, job config, pipeline
validation, the silo data-flow rules, the approver) is checked before the first call to Azure,
so a refused job never reaches the service. The ``MLClient`` comes from an injectable factory:
tests pass an autospec'd client and see exactly what would be sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fl_jobs.aml.approval import ApprovalDecision, build_request, require_approval
from fl_jobs.aml.code_snapshot import CodeSnapshot, stage_code
from fl_jobs.aml.dataflow import DataFlowError, check_steps
from fl_jobs.aml.environments import check_environments
from fl_jobs.aml.layout import check_job_prefix
from fl_jobs.aml.model_store import ModelStore, model_store_for
from fl_jobs.aml.steps_io import StepIO, describe_steps
from fl_jobs.config import JobConfig, load_job_config
from fl_jobs.errors import FLJobError
from fl_jobs.rounds.federation_size import sized_for
from fl_jobs.run.manifest import FederationManifest, ManifestError, WorkspaceRef

ClientFactory = Callable[[WorkspaceRef], Any]
ENGINES = ("agents", "pipeline")
PIPELINE_FILE = "pipeline.yaml"
APPROVAL_REQUEST_FILE = "approval-request.json"


class PipelineValidationError(FLJobError):
    """azure-ai-ml's offline validation rejected the built pipeline."""


class SubmissionError(RuntimeError):
    """Azure refused or failed the submission; the message is one line saying why."""


@dataclass(frozen=True)
class PreparedJob:
    """A built, validated and data-flow-checked pipeline, ready to dump or submit."""

    job: Any
    manifest: FederationManifest
    config: JobConfig
    code: CodeSnapshot
    steps: list[StepIO]
    job_name: str
    experiment_name: str
    model_store: ModelStore
    engine: str = "agents"

    def approval_request(self, author: str | None = None) -> dict[str, Any]:
        workspace = self.manifest.workspace
        return build_request(
            self.steps,
            job_name=self.job_name,
            experiment=self.experiment_name,
            code_sha256=self.code.sha256,
            author=author,
            workspace=workspace.model_dump() if workspace else None,
        )


@dataclass(frozen=True)
class SubmissionResult:
    name: str
    studio_url: str | None
    status: str | None
    approval: ApprovalDecision | None
    model: str | None = None
    """``name:version`` of the registered final model, when it was registered."""
    model_error: str | None = None
    """Why the final model was not registered (the job itself completed)."""


def default_job_name(example: str) -> str:
    """Unique per submission: it names the job and its folder in the model store."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"fl-{example}-{stamp}-{secrets.token_hex(2)}"


def prepare_job(
    manifest: FederationManifest,
    config: JobConfig,
    *,
    code_dir: Path,
    job_name: str | None = None,
    data_prefix: str | None = None,
    experiment_name: str | None = None,
    model_store: ModelStore | None = None,
    engine: str = "pipeline",
    store_job: str | None = None,
) -> PreparedJob:
    """Build the pipeline, validate it offline and enforce the silo rules.

    ``engine``: ``agents`` (K + 1 concurrent agent steps, fl_jobs.aml.agents_pipeline; what
    ``submit`` runs by default) or ``pipeline`` (the unrolled graph, fl_jobs.aml.pipeline).
    ``store_job`` (agents only): the model-store folder of a job to resume.

    Raises ``ManifestError``/``JobConfigError`` for unusable inputs, ``PipelineValidationError``
    when azure-ai-ml rejects the graph and ``DataFlowError`` listing every violation.
    """
    from fl_jobs.aml.pipeline import build_pipeline, check_cloud_manifest

    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {ENGINES}")
    if store_job is not None and engine != "agents":
        raise ManifestError("only the agents engine resumes a job - drop --engine pipeline")
    check_cloud_manifest(manifest, config, engine=engine)
    store = model_store or model_store_for(manifest)
    name = check_job_prefix(job_name) if job_name else default_job_name(config.example.name)
    if engine == "agents":
        from fl_jobs.aml.agents_pipeline import build_agents_pipeline, store_url

        store_url(manifest)  # refused before the code is staged
        code = stage_code(code_dir, config, manifest)
        job = build_agents_pipeline(
            manifest,
            config,
            code=code,
            job_name=name,
            store_job=store_job,
            data_prefix=data_prefix,
            experiment_name=experiment_name,
            model_store=store,
        )
    else:
        code = stage_code(code_dir, config)
        job = build_pipeline(
            manifest,
            config,
            code=code,
            job_name=name,
            data_prefix=data_prefix,
            experiment_name=experiment_name,
            model_store=store,
        )
    validation = job._validate()
    if not validation.passed:
        raise PipelineValidationError(
            f"the built pipeline does not validate: {validation.error_messages}"
        )
    steps = describe_steps(job)
    violations = check_steps(steps, manifest, store) + check_environments(
        job, manifest, config.training.device
    )
    if violations:
        raise DataFlowError(violations)
    return PreparedJob(job, manifest, config, code, steps, name, job.experiment_name, store, engine)


def load_inputs(
    manifest_path: Path,
    example: str,
    config_path: Path | None,
    overrides: dict[str, Any] | None = None,
) -> tuple[FederationManifest, ModelStore, JobConfig]:
    """Read the manifest file (a bare manifest or the whole stack output) and the job config;
    ``example`` and non-None ``overrides`` (CLI options) win over the file."""
    manifest = FederationManifest.load(manifest_path)
    store = model_store_for(manifest)
    config = load_job_config(config_path, {**(overrides or {}), "example": example})
    return manifest, store, sized_for(config, manifest)


def dump_dry_run(prepared: PreparedJob, out: Path) -> Path:
    """Write the pipeline YAML (loadable with ``azure.ai.ml.load_job``) and the request an
    approver would receive; return the pipeline file."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    path = out / PIPELINE_FILE
    prepared.job.dump(path)
    (out / APPROVAL_REQUEST_FILE).write_text(
        json.dumps(prepared.approval_request(), indent=2, sort_keys=True)
    )
    return path


ARM_SCOPE = "https://management.azure.com/.default"


def check_credential(credential: Any) -> None:
    """Get one ARM token up front: without it azure-ai-ml would first stage the code and then
    bury the authentication failure in a validation report."""
    credential.get_token(ARM_SCOPE)


def default_client_factory(workspace: WorkspaceRef, credential: Any | None = None) -> Any:
    """An ``MLClient`` for the manifest's workspace, authenticated like the az CLI
    (``DefaultAzureCredential``: environment, managed identity, az login, ...)."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    credential = credential if credential is not None else DefaultAzureCredential()
    check_credential(credential)
    return MLClient(
        credential,
        subscription_id=workspace.subscription_id,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
    )


def _one_line(exc: BaseException) -> str:
    """The first line of what went wrong; azure-ai-ml often wraps the real error in a JSON
    validation report, whose first error message is the useful part."""
    import json

    text = str(getattr(exc, "message", None) or exc).strip()
    try:
        report = json.loads(text)
    except ValueError:
        report = None
    if isinstance(report, dict) and report.get("errors"):
        first_error = report["errors"][0]
        if isinstance(first_error, dict) and first_error.get("message"):
            text = str(first_error["message"]).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:500]


def describe_azure_error(exc: BaseException) -> str | None:
    """One line for an Azure failure, or ``None`` when ``exc`` is not one."""
    from azure.ai.ml.exceptions import MlException
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        ResourceNotFoundError,
    )

    if isinstance(exc, ClientAuthenticationError):  # includes CredentialUnavailableError
        return (
            f"could not authenticate to Azure ({_one_line(exc)}); run `az login` or set "
            "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET"
        )
    if isinstance(exc, ResourceNotFoundError):
        return (
            f"Azure could not find a resource the job needs ({_one_line(exc)}); check that "
            "the manifest matches the deployed stack (`pulumi stack output --json federation`)"
        )
    if isinstance(exc, AzureError | MlException):
        return f"Azure ML rejected or failed the job ({type(exc).__name__}): {_one_line(exc)}"
    return None


def submit_job(
    prepared: PreparedJob,
    *,
    client_factory: ClientFactory = default_client_factory,
    stream: bool = True,
    on_created: Callable[[Any], None] | None = None,
    register_model: bool = True,
) -> SubmissionResult:
    """Ask the approver (if configured), then create the job and optionally stream it.

    Raises ``ApprovalError`` without contacting Azure when not approved, and
    ``SubmissionError`` (one line) for any Azure failure.
    """
    violations = check_steps(
        describe_steps(prepared.job), prepared.manifest, prepared.model_store
    ) + check_environments(prepared.job, prepared.manifest, prepared.config.training.device)
    if violations:  # the job object may have been changed since it was prepared
        raise DataFlowError(violations)
    decision = None
    if prepared.config.run.approval is not None:
        decision = require_approval(prepared.config.run.approval, prepared.approval_request())
    workspace = prepared.manifest.workspace
    assert workspace is not None  # check_cloud_manifest ran in prepare_job
    try:
        client = client_factory(workspace)
        created = client.jobs.create_or_update(
            prepared.job, experiment_name=prepared.experiment_name
        )
        if on_created is not None:
            on_created(created)
        status = getattr(created, "status", None)
        if stream:
            client.jobs.stream(created.name)
            status = getattr(client.jobs.get(created.name), "status", status)
    except Exception as exc:
        line = describe_azure_error(exc)
        if line is None:
            raise
        raise SubmissionError(line) from None
    model, model_error = None, None
    if register_model and prepared.engine == "agents" and status == "Completed":
        model, model_error = _register(client, prepared)
    return SubmissionResult(
        name=created.name,
        studio_url=getattr(created, "studio_url", None),
        status=status,
        approval=decision,
        model=model,
        model_error=model_error,
    )


def _register(client: Any, prepared: PreparedJob) -> tuple[str | None, str | None]:
    """Register the completed job's final model; a failure is reported, never raised (the
    job's results are in the model store either way)."""
    from fl_jobs.aml.model_registration import model_entity

    try:
        registered = client.models.create_or_update(model_entity(prepared))
    except Exception as exc:
        return None, describe_azure_error(exc) or f"{type(exc).__name__}: {exc}"
    return f"{registered.name}:{registered.version}", None
