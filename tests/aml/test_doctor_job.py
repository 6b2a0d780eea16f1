"""The doctor's Azure ML submission, checked offline like every job: one probe per compute,
under that compute's identity, the silo data-flow rules, and a read back with ``load_job``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fl_jobs.aml.dataflow import check_data_flow
from fl_jobs.aml.steps_io import describe_steps
from fl_jobs.doctor.submission import build_doctor_job
from tests.aml.conftest import blueprint_manifest


def datastores(blueprint: str, silos: int) -> dict[str, Any]:
    from blueprints.plan import _plain
    from tests.infra.helpers import blueprint_run

    return _plain(blueprint_run(blueprint, silos).result)["datastores"]


@pytest.mark.parametrize(("blueprint", "silos"), [("eyes-off", 3), ("confidential", 1)])
def test_one_probe_per_compute_as_its_identity_and_clean_data_flow(
    blueprint: str, silos: int, tmp_path: Path
) -> None:
    manifest = blueprint_manifest(blueprint, silos)
    job = build_doctor_job(manifest, datastores(blueprint, silos), tmp_path / "code")
    steps = describe_steps(job.pipeline)
    computes = [s.compute for s in manifest.silos] + [manifest.orchestrator.compute]
    assert [s.compute for s in steps] == computes
    assert all(s.identity == "managed" and not s.reads and not s.writes for s in steps)
    assert check_data_flow(job.pipeline, manifest) == []
    for node, silo in zip(job.pipeline.jobs.values(), manifest.silos, strict=False):
        assert f"--actor silo:{silo.name}" in node.command
        if silo.compute_type == "kubernetes":
            assert node.identity.client_id is None
            assert node.resources.instance_type == silo.instance_type
        else:
            assert node.identity.client_id == silo.identity_client_id
    assert (job.code / "federation.json").is_file() and (job.code / "datastores.json").is_file()
    assert (job.code / "fl_jobs" / "doctor" / "probe.py").is_file()


def test_the_submission_reads_back_with_load_job(tmp_path: Path) -> None:
    from azure.ai.ml import load_job

    manifest = blueprint_manifest("eyes-off", 2)
    job = build_doctor_job(manifest, datastores("eyes-off", 2), tmp_path / "code")
    job.pipeline.dump(tmp_path / "doctor.yaml")
    loaded = load_job(tmp_path / "doctor.yaml")
    assert sorted((s.name, s.compute, s.identity) for s in describe_steps(loaded)) == sorted(
        (s.name, s.compute, s.identity) for s in describe_steps(job.pipeline)
    )
    for name, node in job.pipeline.jobs.items():
        back = loaded.jobs[name]
        assert back.identity.client_id == node.identity.client_id
        assert back.command == node.command
    assert check_data_flow(loaded, manifest) == []
    assert loaded.settings.continue_on_step_failure is True
    probe = loaded.jobs["doctor_orchestrator"].command
    assert probe.startswith("python -m fl_jobs.doctor.probe ") and "--actor orchestrator" in probe


def test_probe_environment_pins_match_the_project() -> None:
    import yaml

    from fl_jobs.doctor.submission import CONDA_FILE

    pins = yaml.safe_load(CONDA_FILE.read_text())["dependencies"][-1]["pip"]
    wanted = {
        line.split("==")[0].lower(): line.strip()
        for line in (Path(__file__).parents[2] / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for pin in pins:
        assert wanted[pin.split("==")[0].lower()] == pin


def _cli(tmp_path: Path, outputs: dict[str, Any], *extra: str) -> Any:
    import json

    from typer.testing import CliRunner

    from fl_jobs.cli.app import app

    manifest = tmp_path / "federation.json"
    manifest.write_text(blueprint_manifest("eyes-off", 2).to_json())
    out_json = tmp_path / "outputs.json"
    out_json.write_text(json.dumps(outputs))
    args = ["doctor", "--manifest", str(manifest), "--outputs", str(out_json), *extra]
    return CliRunner().invoke(app, args)


def test_cli_dry_run_builds_checks_and_writes_the_probe_job(tmp_path: Path) -> None:
    from azure.ai.ml import load_job

    out = tmp_path / "doctor"
    result = _cli(
        tmp_path, {"datastores": datastores("eyes-off", 2)}, "--dry-run", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "3 probes" in result.output and "doctor_silo_silo1" in result.output
    assert "dry run: probe job checked offline" in result.output
    assert set(load_job(out / "doctor.yaml").jobs) == {
        "doctor_silo_silo1",
        "doctor_silo_silo2",
        "doctor_orchestrator",
    }


def test_cli_refuses_outputs_without_datastores_in_one_line(tmp_path: Path) -> None:
    result = _cli(tmp_path, {"federation": {}}, "--dry-run", "--out", str(tmp_path / "d"))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "has no 'datastores' output" in line
    assert not (tmp_path / "d").exists()


def test_cli_refuses_outputs_missing_a_manifest_datastore(tmp_path: Path) -> None:
    stores = datastores("eyes-off", 2)
    stores.pop(next(iter(stores)))
    result = _cli(tmp_path, {"datastores": stores}, "--dry-run", "--out", str(tmp_path / "d"))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "is not in the stack outputs' datastores" in line


class _Workspace:
    """Stands in for Azure ML (the service, not the code under test): takes the pipeline,
    fails its stream when a probe failed, lists the probes with their end states."""

    def __init__(self, failing: set[str]) -> None:
        self.failing, self.submitted = failing, None
        self.jobs = self

    def create_or_update(self, job: Any, experiment_name: str) -> Any:
        from types import SimpleNamespace

        self.submitted = job
        return SimpleNamespace(name="doctor-1", studio_url="https://ml.azure.com/x")

    def stream(self, name: str) -> None:
        from azure.ai.ml.exceptions import JobException

        if self.failing:
            raise JobException(message="failed", no_personal_data_message="failed")

    def list(self, parent_job_name: str) -> list[Any]:
        from types import SimpleNamespace

        assert self.submitted is not None
        return [
            SimpleNamespace(
                name=f"child-{name}",
                display_name=node.display_name,
                compute=node.compute,
                status="Failed" if name in self.failing else "Completed",
            )
            for name, node in self.submitted.jobs.items()
        ]


@pytest.mark.parametrize("failing", [set(), {"doctor_silo_silo2"}])
def test_cli_submits_and_names_each_probe_that_differs(tmp_path: Path, failing: set[str]) -> None:
    import json

    from typer.testing import CliRunner

    from fl_jobs.cli.app import app

    manifest = tmp_path / "federation.json"
    manifest.write_text(blueprint_manifest("eyes-off", 2).to_json())
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"datastores": datastores("eyes-off", 2)}))
    workspace = _Workspace(failing)
    result = CliRunner().invoke(
        app,
        ["doctor", "--manifest", str(manifest), "--outputs", str(outputs), "--out",
         str(tmp_path / "d")],
        obj={"client_factory": lambda ws: workspace},
    )  # fmt: skip
    assert workspace.submitted is not None and "submitted doctor-1" in result.output
    if not failing:
        assert result.exit_code == 0, result.output
        assert "every storage movement and isolation negative is as the plan expects" in (
            result.output
        )
        return
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert lines == [
        "error: doctor: probe doctor silo:silo2 on compute c-silo2 ended Failed: a movement "
        "differs from the plan - read its log (`az ml job download -n child-doctor_silo_silo2 "
        "--all`) for the table"
    ]
