"""``submit`` with the agents engine: K silo agent steps + one orchestrator step, in one pipeline.

Every blueprint's manifest (the Azure ML cluster blueprints and the Kubernetes sample stacks,
evaluated under Pulumi mocks) goes through the real CLI's dry run; the pipeline YAML is read
back with azure-ai-ml's ``load_job`` and compared step by step with the manifest, and the
data-flow check runs again on what was read back.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fl_jobs.aml.cli import app
from fl_jobs.aml.dataflow import check_data_flow
from fl_jobs.aml.layout import SILO_STORE_PATH, parse_datastore_uri
from fl_jobs.run.manifest import FederationManifest
from tests.aml.conftest import BLUEPRINT_CASES, blueprint_outputs, stack_outputs

CASES = [*(f"{b}:{k}" for b, k in BLUEPRINT_CASES), "hybrid", "confidential", "private"]


def _outputs(case: str) -> dict[str, Any]:
    if ":" in case:
        blueprint, silos = case.split(":")
        return blueprint_outputs(blueprint, int(silos))
    return stack_outputs(case)


def _submit(tmp_path: Path, outputs: dict[str, Any], *extra: str, job: str = "fl-agents-dry"):
    manifest_file = tmp_path / "outputs.json"
    manifest_file.write_text(json.dumps(outputs))
    out = tmp_path / "dry"
    result = CliRunner().invoke(
        app,
        ["submit", "--manifest", str(manifest_file), "--example", "digits", "--rounds", "20",
         "--dry-run", "--out", str(out), "--job-name", job, *extra],
    )  # fmt: skip
    return result, out


def _args(command: str) -> dict[str, str]:
    words = shlex.split(command)
    return {w: words[i + 1] for i, w in enumerate(words) if w.startswith("--")}


@pytest.mark.parametrize("case", CASES)
def test_agents_dry_run_of_every_blueprint_reads_back_with_load_job(
    case: str, tmp_path: Path
) -> None:
    from azure.ai.ml import load_job

    outputs = _outputs(case)
    manifest = FederationManifest.parse(outputs)
    result, out = _submit(tmp_path, outputs)
    assert result.exit_code == 0, result.output
    job = load_job(out / "pipeline.yaml")
    assert job._validate().passed
    assert check_data_flow(job, manifest) == []
    # K + 1 steps whatever the rounds (20 here)
    assert sorted(job.jobs) == sorted(
        ["orchestrator", *(f"silo_{s.name.replace('-', '_')}" for s in manifest.silos)]
    )
    url = manifest.orchestrator.model_store_url
    assert url and url.startswith("https://")
    orch = job.jobs["orchestrator"]
    assert str(orch.compute).removeprefix("azureml:") == manifest.orchestrator.compute
    args = _args(orch.command)
    assert orch.command.startswith("python -m fl_jobs.store orchestrator ")
    assert args["--job"] == "fl-agents-dry" and args["--account-url"] == url
    assert not orch.inputs  # the orchestrator step reads no data at all
    for silo in manifest.silos:
        node = job.jobs[f"silo_{silo.name.replace('-', '_')}"]
        assert str(node.compute).removeprefix("azureml:") == silo.compute
        assert node.identity.type == "managed_identity"
        if silo.compute_type == "kubernetes":
            assert node.identity.client_id is None
            assert node.resources.instance_type == silo.instance_type
        else:
            assert node.identity.client_id == silo.identity_client_id
        args = _args(node.command)
        assert node.command.startswith("python -m fl_jobs.store silo ")
        assert args["--silo"] == silo.name and args["--account-url"] == url
        # Updates go to the silo's container, through the agent; the one output is what
        # the silo keeps across jobs, in its own datastore.
        assert list(node.outputs) == ["silo_store"]
        store_ref = parse_datastore_uri(str(node.outputs["silo_store"].path))
        assert store_ref is not None and store_ref.datastore == silo.datastore
        assert store_ref.path.rstrip("/") == SILO_STORE_PATH
        assert node.outputs["silo_store"].mode == "rw_mount"
        assert args["--silo-store"] == "${{outputs.silo_store}}"
        for value in (node.inputs or {}).values():  # only its own data datastore
            ref = parse_datastore_uri(str(value.path))
            assert ref is not None and ref.datastore == silo.datastore
        if silo.data_mount is not None:
            assert args["--data"].startswith(silo.data_mount)
    request = json.loads((out / "approval-request.json").read_text())
    assert len(request["steps"]) == len(manifest.silos) + 1


def test_the_data_flow_check_refuses_an_orchestrator_agent_reading_silo_data(
    tmp_path: Path,
) -> None:
    from azure.ai.ml import Input

    from fl_jobs.aml.dataflow import check_data_flow
    from fl_jobs.aml.layout import datastore_uri
    from fl_jobs.aml.submit import prepare_job
    from tests.aml.conftest import blueprint_manifest, job_config

    manifest = blueprint_manifest("eyes-off", 3)
    prepared = prepare_job(
        manifest, job_config(), code_dir=tmp_path / "code", job_name="fl-x", engine="agents"
    )
    job = prepared.job
    silo1, silo2 = manifest.silos[0], manifest.silos[1]
    job.jobs["orchestrator"].inputs["peek"] = Input(
        type="uri_folder", path=datastore_uri(silo1.datastore, "fl-sandbox/digits/silo1")
    )
    job.jobs["silo_silo2"].inputs["peek"] = Input(
        type="uri_folder", path=datastore_uri(silo1.datastore, "fl-sandbox/digits/silo1")
    )
    found = {(v.step, v.datastore) for v in check_data_flow(job, manifest)}
    assert ("orchestrator", silo1.datastore) in found
    assert ("silo_silo2", silo1.datastore) in found
    assert silo2.datastore not in {d for _, d in found}


def test_client_fraction_min_silos_and_round_timeout_reach_the_orchestrator_agent(
    tmp_path: Path,
) -> None:
    import yaml

    from fl_jobs.config import load_job_config

    config = tmp_path / "job.yaml"
    config.write_text(
        yaml.safe_dump(
            {"example": "digits", "fraction": 0.67, "min_silos": 2, "round_timeout": 600}
        )
    )
    result, out = _submit(tmp_path, blueprint_outputs("eyes-off", 3), "--config", str(config))
    assert result.exit_code == 0, result.output
    staged = load_job_config(out / "code" / "job.yaml")  # what the agents read (--config)
    federation = staged.federation
    assert (federation.fraction, federation.min_silos, federation.round_timeout) == (0.67, 2, 600)
    staged_manifest = FederationManifest.load(out / "code" / "manifest.json")
    assert staged_manifest == FederationManifest.parse(blueprint_outputs("eyes-off", 3))


def test_the_pipeline_engine_still_refuses_client_fraction(tmp_path: Path) -> None:
    import yaml

    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump({"example": "digits", "fraction": 0.5}))
    outputs = blueprint_outputs("eyes-off", 3)
    result, _ = _submit(tmp_path, outputs, "--config", str(config), "--engine", "pipeline")
    assert result.exit_code == 2
    assert "--engine agents" in result.output


@pytest.mark.parametrize(
    "setting",
    [
        {"secure_aggregation": True},
        {"clip_norm": 1.0, "noise_multiplier": 1.0},
        {"dp_level": "silo", "dp_silo_clip": 1.0, "target_epsilon": 8.0},
        {"async_buffer": 3},
    ],
)
def test_agents_run_secure_aggregation_dp_and_async_rounds_with_the_silo_store_mounted(
    setting: dict[str, Any], tmp_path: Path
) -> None:
    """What a silo keeps across jobs lives in its own datastore, mounted into its agent step;
    the settings reach the agents through the staged job.yaml and the data flow stays clean."""
    import yaml
    from azure.ai.ml import load_job

    from fl_jobs.config import load_job_config

    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump({"example": "digits", "silos": 5, **setting}))
    outputs = blueprint_outputs("eyes-off", 5)  # silo-level DP needs at least 5
    result, out = _submit(tmp_path, outputs, "--config", str(config))
    assert result.exit_code == 0, result.output
    job = load_job(out / "pipeline.yaml")
    assert check_data_flow(job, FederationManifest.parse(outputs)) == []
    staged = load_job_config(out / "code" / "job.yaml")
    assert all(staged.flat()[key] == value for key, value in setting.items())
    silo_steps = [name for name in job.jobs if name.startswith("silo_")]
    assert silo_steps and all("silo_store" in job.jobs[n].outputs for n in silo_steps)


def test_a_manifest_without_the_store_endpoint_is_refused_with_the_fix(tmp_path: Path) -> None:
    outputs = json.loads(json.dumps(blueprint_outputs("eyes-off", 3)))
    del outputs["federation"]["orchestrator"]["model_store_url"]
    result, out = _submit(tmp_path, outputs)
    assert result.exit_code == 2
    assert "model_store_url" in result.output and "--engine pipeline" in result.output
    assert not (out / "pipeline.yaml").exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://acct.blob.core.windows.net",
        "https://acct.blob.core.windows.net/global?sv=2024&sig=x",
        "https://Bad_Name.blob.core.windows.net",
    ],
)
def test_a_bad_store_endpoint_in_the_manifest_is_refused(url: str, tmp_path: Path) -> None:
    outputs = json.loads(json.dumps(blueprint_outputs("eyes-off", 3)))
    outputs["federation"]["orchestrator"]["model_store_url"] = url
    result, _ = _submit(tmp_path, outputs)
    assert result.exit_code == 2
    assert "model_store_url" in result.output


def test_resume_submits_a_new_pipeline_job_over_the_same_store_folder(tmp_path: Path) -> None:
    from azure.ai.ml import load_job

    result, out = _submit(
        tmp_path, blueprint_outputs("eyes-off", 3), "--resume", "fl-digits-stopped",
        job="fl-digits-stopped-2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = load_job(out / "pipeline.yaml")
    assert job.name == "fl-digits-stopped-2"
    for node in job.jobs.values():
        assert _args(node.command)["--job"] == "fl-digits-stopped"
    assert job.jobs["orchestrator"].outputs["run"].path.endswith(
        "/fl-digits-stopped/orchestrator/"
    ) or "fl-digits-stopped/orchestrator" in str(job.jobs["orchestrator"].outputs["run"].path)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--engine", "flower"), "--engine"),
        (("--engine", "pipeline", "--resume", "fl-old"), "--resume"),
        (("--resume", "Bad Name"), "--resume"),
    ],
)
def test_bad_engine_and_resume_arguments_are_refused(
    extra: tuple[str, ...], words: str, tmp_path: Path
) -> None:
    result, out = _submit(tmp_path, blueprint_outputs("eyes-off", 3), *extra)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and words in result.output
    assert not out.exists()


def test_submit_sends_the_agents_pipeline_by_default(tmp_path: Path) -> None:
    """Without --engine the job sent to Azure ML is the K + 1 step agents pipeline."""
    from fl_jobs.aml.cli import CLIENT_FACTORY_KEY
    from tests.aml.test_submit import RecordingFactory

    manifest_file = tmp_path / "outputs.json"
    manifest_file.write_text(json.dumps(blueprint_outputs("eyes-off", 3)))
    factory = RecordingFactory()
    result = CliRunner().invoke(
        app,
        ["submit", "--manifest", str(manifest_file), "--example", "digits", "--rounds", "50",
         "--job-name", "fl-agents-sent", "--no-stream"],
        obj={CLIENT_FACTORY_KEY: factory},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = factory.client.jobs.create_or_update.call_args.args[0]
    assert sent.name == "fl-agents-sent"
    assert sorted(sent.jobs) == ["orchestrator", "silo_silo1", "silo_silo2", "silo_silo3"]
    assert sent.tags["fl-sandbox-engine"] == "agents"
