"""GPU silos run in the CUDA environment, every other step in the CPU one, and the job check
refuses a mismatch. The hybrid sample stack has a GPU silo (bank-d, instance type gpu-1 with
one GPU); both engines' dry runs are read back with azure-ai-ml's ``load_job``. CUDA itself
cannot run here (no GPU): what is tested is the choice, the build and the refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fl_jobs.aml.cli import app
from fl_jobs.aml.environments import CPU, CUDA, ENVIRONMENT_DIR, check_environments
from fl_jobs.run.manifest import FederationManifest
from tests.aml.conftest import job_config, stack_outputs


def _dry_run(tmp_path: Path, outputs: dict[str, Any], *extra: str) -> tuple[Any, Path]:
    manifest_file = tmp_path / "outputs.json"
    manifest_file.write_text(json.dumps(outputs))
    out = tmp_path / "dry"
    result = CliRunner().invoke(
        app,
        ["submit", "--manifest", str(manifest_file), "--example", "digits", "--rounds", "2",
         "--dry-run", "--out", str(out), "--job-name", "fl-gpu", *extra],
    )  # fmt: skip
    return result, out


def _image(node: Any) -> str:
    env = node.environment if getattr(node, "environment", None) else node.component.environment
    return str(env.image)


def test_the_manifest_carries_each_silos_gpus() -> None:
    manifest = FederationManifest.parse(stack_outputs("hybrid"))
    gpus = {s.name: s.gpus for s in manifest.silos}
    assert gpus["bank-d"] == 1 and all(v == 0 for k, v in gpus.items() if k != "bank-d")


@pytest.mark.parametrize("engine", ["agents", "pipeline"])
def test_a_gpu_silo_runs_in_the_cuda_environment_and_the_rest_on_the_cpu(
    engine: str, tmp_path: Path
) -> None:
    from azure.ai.ml import load_job

    outputs = stack_outputs("hybrid")
    manifest = FederationManifest.parse(outputs)
    result, out = _dry_run(tmp_path, outputs, "--engine", engine)
    assert result.exit_code == 0, result.output
    job = load_job(out / "pipeline.yaml")
    assert check_environments(job, manifest, "auto") == []
    computes = {s.compute: s for s in manifest.silos}
    seen = {CPU.image: 0, CUDA.image: 0}
    for name, node in job.jobs.items():
        silo = computes.get(str(node.compute).removeprefix("azureml:"))
        image = _image(node)
        seen[image] += 1
        expected = CUDA.image if silo is not None and silo.gpus else CPU.image
        assert image == expected, f"{name} runs {image}"
    assert seen[CUDA.image] >= 1 and seen[CPU.image] >= 1


def test_the_job_check_refuses_a_gpu_silo_on_the_cpu_environment(tmp_path: Path) -> None:
    from fl_jobs.aml.submit import prepare_job

    manifest = FederationManifest.parse(stack_outputs("hybrid"))
    prepared = prepare_job(
        manifest, job_config(), code_dir=tmp_path / "code", job_name="fl-x", engine="agents"
    )
    node = prepared.job.jobs["silo_bank_d"]
    node.environment = CPU.sdk(prepared.code.path)
    found = check_environments(prepared.job, manifest, "auto")
    assert [v.step for v in found] == ["silo_bank_d"]
    assert "silo bank-d (1 GPU(s)) runs the cpu environment" in found[0].message
    assert CUDA.image in found[0].message


def test_device_cuda_with_a_cpu_silo_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump({"example": "digits", "device": "cuda"}))
    result, out = _dry_run(tmp_path, stack_outputs("hybrid"), "--config", str(config))
    assert result.exit_code != 0
    assert "--device cuda, but silo bank-a has no GPU" in result.output
    assert "use --device auto" in result.output
    assert not (out / "pipeline.yaml").exists()


def test_the_cuda_environment_pins_what_the_cpu_one_pins_but_torchs_index() -> None:
    def pip(name: str) -> list[str]:
        conda = yaml.safe_load((ENVIRONMENT_DIR / name).read_text())
        return next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))

    cpu, cuda = pip(CPU.conda_file), pip(CUDA.conda_file)
    assert [p for p in cpu if "--extra-index-url" not in p] == [
        p for p in cuda if "--extra-index-url" not in p
    ]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in cpu
    assert any(p.startswith("--extra-index-url https://download.pytorch.org/whl/cu") for p in cuda)
