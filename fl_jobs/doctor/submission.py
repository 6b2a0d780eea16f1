"""The doctor's Azure ML submission: one small probe command per compute, under that
compute's identity, all in one pipeline job.

Each probe runs ``python -m fl_jobs.doctor.probe`` for its actor (``silo:<name>`` on the silo's
compute, ``orchestrator`` on the aggregation compute) with ``identity: managed`` (Azure's rule
13), so the token that reaches storage is the compute's own, exactly as in an FL step. The
probes have no data inputs or outputs: they reach the storage endpoints themselves, and their
table goes to the step's log; a probe exits 1 on a difference, which fails its step. Checked
before submitting like every job: the silo data-flow rules (``fl_jobs.aml.dataflow``) and a
read back with azure-ai-ml's ``load_job``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fl_jobs.aml.code_snapshot import PACKAGE_DIR, directory_sha256
from fl_jobs.aml.environments import CPU
from fl_jobs.doctor.expectations import ORCHESTRATOR, actors
from fl_jobs.run.manifest import FederationManifest

MANIFEST_NAME = "federation.json"
TARGETS_NAME = "datastores.json"
ENVIRONMENT_IMAGE = CPU.image
"""The FL steps' base image (fl_jobs/aml/components/*.yaml), so a probe runs where they run."""
CONDA_FILE = Path(__file__).resolve().parent / "conda.yaml"
"""What the probe imports (azure-identity, azure-storage-blob, typer, rich, pydantic)."""


@dataclass(frozen=True)
class DoctorJob:
    pipeline: Any
    code: Path
    sha256: str


def stage_probe_code(dest: Path, manifest: FederationManifest, datastores: dict[str, Any]) -> str:
    """``fl_jobs`` (Python and YAML only), the manifest and the datastore map into ``dest``;
    returns the snapshot's hash."""
    dest = dest.resolve()
    if dest.exists():
        shutil.rmtree(dest)
    for source in sorted(PACKAGE_DIR.rglob("*")):
        if not source.is_file() or source.suffix not in {".py", ".yaml", ".yml", ".json"}:
            continue
        if "__pycache__" in source.parts:
            continue
        out = dest / "fl_jobs" / source.relative_to(PACKAGE_DIR)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out)
    (dest / MANIFEST_NAME).write_text(manifest.to_json())
    (dest / TARGETS_NAME).write_text(json.dumps({"datastores": datastores}, indent=2))
    return directory_sha256(dest)


def _probe_command(actor: str, client_id: str | None, blob_endpoint: str) -> str:
    command = (
        f"python -m fl_jobs.doctor.probe --manifest {MANIFEST_NAME} --outputs {TARGETS_NAME} "
        f"--actor {actor} --blob-endpoint '{blob_endpoint}'"
    )
    return command + (f" --identity-client-id {client_id}" if client_id else "")


def build_doctor_job(
    manifest: FederationManifest,
    datastores: dict[str, Any],
    code_dir: Path,
    *,
    blob_endpoint: str = "https://{account}.blob.core.windows.net",
    name: str = "fl-sandbox-doctor",
) -> DoctorJob:
    """The pipeline of probes: one step per actor, pinned to its compute and identity."""
    from azure.ai.ml import command, dsl
    from azure.ai.ml.entities import (
        Environment,
        JobResourceConfiguration,
        ManagedIdentityConfiguration,
    )

    sha = stage_probe_code(code_dir, manifest, datastores)
    environment = Environment(image=ENVIRONMENT_IMAGE, conda_file=str(CONDA_FILE))
    silos = {f"silo:{s.name}": s for s in manifest.silos}
    orchestrator = manifest.orchestrator

    @dsl.pipeline(  # type: ignore[call-overload]  # its overloads want func=None passed
        name=name,
        display_name=f"fl-sandbox doctor: {len(silos)} silos + orchestrator",
        description=f"storage movements of one round, tried for real (blueprint "
        f"{manifest.blueprint!r})",
    )
    def doctor() -> None:
        for actor in actors(manifest):
            owner = orchestrator if actor == ORCHESTRATOR else silos[actor]
            step = command(
                command=_probe_command(actor, owner.identity_client_id, blob_endpoint),
                code=str(code_dir),
                environment=environment,
                display_name=f"doctor {actor}",
            )()
            step.name = "doctor_" + actor.replace("silo:", "silo_").replace("-", "_")
            step.compute = owner.compute
            # Kubernetes computes run a job as the cluster's identity: no client id there.
            kubernetes = owner.compute_type == "kubernetes"
            step.identity = ManagedIdentityConfiguration(
                client_id=None if kubernetes else owner.identity_client_id
            )
            if owner.instance_type is not None:
                step.resources = JobResourceConfiguration(instance_type=owner.instance_type)

    pipeline = doctor()
    pipeline.settings.continue_on_step_failure = True
    return DoctorJob(pipeline, code_dir, sha)
