"""FL jobs on Kubernetes silos: the unrolled pipeline of the hybrid and confidential sample
stacks (the agents engine's are in test_agents_submit.py).

The manifests are the sample stacks' outputs under mocks; the dry run's YAML is read back with
azure-ai-ml's ``load_job``, the way Azure ML would receive it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fl_jobs.aml.cli import app
from fl_jobs.run.manifest import FederationManifest
from tests.aml.conftest import stack_outputs


def _dry_run(blueprint: str, tmp_path: Path) -> tuple[FederationManifest, Any]:
    from azure.ai.ml import load_job

    outputs = stack_outputs(blueprint)
    manifest_file = tmp_path / "outputs.json"
    manifest_file.write_text(json.dumps(outputs))
    out = tmp_path / "dry"
    result = CliRunner().invoke(
        app,
        [
            "submit",
            "--manifest",
            str(manifest_file),
            "--example",
            "digits",
            "--rounds",
            "1",
            "--dry-run",
            "--engine",
            "pipeline",
            "--out",
            str(out),
            "--job-name",
            f"fl-{blueprint}-dry",
        ],
    )
    assert result.exit_code == 0, result.output
    job = load_job(out / "pipeline.yaml")
    assert job._validate().passed
    return FederationManifest.parse(outputs), job


def _instance_type(node: Any) -> str | None:
    return getattr(node.resources, "instance_type", None) if node.resources else None


@pytest.mark.parametrize("blueprint", ["hybrid", "confidential"])
def test_kubernetes_silos_run_on_their_instance_types(blueprint: str, tmp_path: Path) -> None:
    manifest, job = _dry_run(blueprint, tmp_path)
    kinds = {s.compute_type for s in manifest.silos}
    assert "kubernetes" in kinds
    for silo in manifest.silos:
        key = silo.name.replace("-", "_")
        for step in (f"preprocess_{key}", f"train_r1_{key}"):
            node = job.jobs[step]
            assert node.compute == silo.compute
            wanted = silo.instance_type if silo.compute_type == "kubernetes" else None
            assert _instance_type(node) == wanted, step
    aggregate = job.jobs["aggregate_r1"]
    assert aggregate.compute == manifest.orchestrator.compute
    assert _instance_type(aggregate) == manifest.orchestrator.instance_type
    # Only the confidential blueprint aggregates on a Kubernetes (AKS) pool.
    assert (manifest.orchestrator.compute_type == "kubernetes") is (blueprint == "confidential")


def test_on_premises_data_is_read_from_the_sites_volume(tmp_path: Path) -> None:
    """bank-c keeps its raw data on an NFS share: its preprocess step reads the volume's
    mount in the pod, never a datastore; bank-d (no volume) reads its datastore."""
    manifest, job = _dry_run("hybrid", tmp_path)
    with_volume = {s.name: s.data_mount for s in manifest.silos if s.data_mount}
    assert with_volume == {"bank-c": "/mnt/silo-data"}
    volume_step = job.jobs["preprocess_bank_c"]
    assert "raw_data" not in volume_step.inputs or volume_step.inputs["raw_data"]._data is None
    assert str(volume_step.inputs["raw_path"]._data) == "/mnt/silo-data/fl-sandbox/digits/bank-c"
    datastore_step = job.jobs["preprocess_bank_d"]
    assert "azureml://datastores/silo_bank_d/" in str(datastore_step.inputs["raw_data"].path)


@pytest.mark.parametrize("blueprint", ["hybrid", "confidential"])
def test_steps_on_kubernetes_computes_name_no_client_id(blueprint: str, tmp_path: Path) -> None:
    """Azure ML takes no client id for a job's managed identity on a Kubernetes compute;
    Azure ML clusters keep theirs (read back from the YAML Azure ML would receive)."""
    manifest, job = _dry_run(blueprint, tmp_path)
    kinds = {s.compute: s.compute_type for s in manifest.silos}
    kinds[manifest.orchestrator.compute] = manifest.orchestrator.compute_type
    for name, node in job.jobs.items():
        kind = kinds[str(node.compute).removeprefix("azureml:")]
        assert node.identity.type == "managed_identity", name
        if kind == "kubernetes":
            assert node.identity.client_id is None, name
        else:
            assert node.identity.client_id, name


def test_the_data_flow_check_refuses_a_client_id_on_a_kubernetes_compute(tmp_path: Path) -> None:
    from azure.ai.ml.entities import ManagedIdentityConfiguration

    from fl_jobs.aml.dataflow import check_data_flow

    manifest, job = _dry_run("hybrid", tmp_path)
    arc = next(s for s in manifest.silos if s.compute_type == "kubernetes")
    step = next(n for n, node in job.jobs.items() if str(node.compute).endswith(arc.compute))
    job.jobs[step].identity = ManagedIdentityConfiguration(client_id="0000-client")
    found = [v for v in check_data_flow(job, manifest) if v.step == step]
    assert len(found) == 1
    assert "client id 0000-client on Kubernetes compute" in found[0].message
