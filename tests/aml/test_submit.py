"""Submission with an autospec'd MLClient (sockets are blocked): what would be sent, and how
refusals and Azure errors come back."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import pytest
import typer
from typer.testing import CliRunner

from fl_jobs.aml.approval import ApprovalError
from fl_jobs.aml.cli import CLIENT_FACTORY_KEY, app
from fl_jobs.aml.dataflow import DataFlowError
from fl_jobs.aml.submit import SubmissionError, default_client_factory, submit_job
from fl_jobs.config.approval_spec import ApprovalSpec
from fl_jobs.run.manifest import FederationManifest, WorkspaceRef
from tests.aml.conftest import blueprint_outputs

APPROVER = Path(__file__).with_name("approver.py")
STUDIO = "https://ml.azure.com/runs/fl-digits-test?wsid=/subscriptions/x"


class RecordingFactory:
    """Hands out one autospec'd MLClient (with autospec'd job operations) and records calls."""

    def __init__(self, error: Exception | None = None) -> None:
        from azure.ai.ml import MLClient
        from azure.ai.ml.operations import JobOperations

        self.client = create_autospec(MLClient, instance=True)
        self.client.jobs = create_autospec(JobOperations, instance=True)
        self.workspaces: list[WorkspaceRef] = []
        created = SimpleNamespace(name="fl-digits-test", studio_url=STUDIO, status="Queued")
        self.client.jobs.create_or_update.return_value = created
        self.client.jobs.get.return_value = SimpleNamespace(status="Completed")
        if error is not None:
            self.client.jobs.create_or_update.side_effect = error

    def __call__(self, workspace: WorkspaceRef) -> Any:
        self.workspaces.append(workspace)
        return self.client


def _with_approval(prepared: Any, spec: ApprovalSpec) -> Any:
    from dataclasses import replace

    return replace(prepared, config=prepared.config.with_settings(approval=spec))


def test_submission_sends_the_checked_pipeline(prepared3: Any) -> None:
    factory = RecordingFactory()
    result = submit_job(prepared3, client_factory=factory, stream=True)
    assert factory.workspaces == [prepared3.manifest.workspace]
    factory.client.jobs.create_or_update.assert_called_once_with(
        prepared3.job, experiment_name=prepared3.experiment_name
    )
    sent = factory.client.jobs.create_or_update.call_args.args[0]
    computes = {
        name: str(node.compute).removeprefix("azureml:") for name, node in sent.jobs.items()
    }
    manifest: FederationManifest = prepared3.manifest
    for silo in manifest.silos:
        key = silo.name.replace("-", "_")
        silo_steps = {n for n in computes if n.endswith(f"_{key}")}
        assert len(silo_steps) == 1 + prepared3.config.federation.rounds
        assert {computes[n] for n in silo_steps} == {silo.compute}
    others = {n for n in computes if n == "init" or n.startswith("aggregate_")}
    assert {computes[n] for n in others} == {manifest.orchestrator.compute}
    factory.client.jobs.stream.assert_called_once_with("fl-digits-test")
    assert (result.name, result.studio_url, result.status) == (
        "fl-digits-test",
        STUDIO,
        "Completed",
    )


def test_no_stream_returns_after_creation(prepared3: Any) -> None:
    factory = RecordingFactory()
    result = submit_job(prepared3, client_factory=factory, stream=False)
    factory.client.jobs.stream.assert_not_called()
    assert result.status == "Queued"


def test_refused_approval_never_reaches_azure(prepared3: Any, tmp_path: Path) -> None:
    import sys

    spec = ApprovalSpec(command=[sys.executable, str(APPROVER), "refuse", str(tmp_path / "r")])
    factory = RecordingFactory()
    with pytest.raises(ApprovalError, match="weekends"):
        submit_job(_with_approval(prepared3, spec), client_factory=factory)
    assert factory.workspaces == []
    factory.client.jobs.create_or_update.assert_not_called()


def test_approved_submission_goes_through(prepared3: Any, tmp_path: Path) -> None:
    import sys

    spec = ApprovalSpec(command=[sys.executable, str(APPROVER), "approve", str(tmp_path / "r")])
    factory = RecordingFactory()
    result = submit_job(_with_approval(prepared3, spec), client_factory=factory, stream=False)
    assert result.approval is not None and result.approval.approved
    assert json.loads((tmp_path / "r").read_text())["code_sha256"] == prepared3.code.sha256
    factory.client.jobs.create_or_update.assert_called_once()


def test_miswired_job_is_refused_before_azure(prepared3: Any) -> None:
    from dataclasses import replace

    from fl_jobs.aml.pipeline import build_pipeline

    job = build_pipeline(
        prepared3.manifest, prepared3.config, code=prepared3.code, job_name=prepared3.job_name
    )
    job.jobs["aggregate_r1"].compute = prepared3.manifest.silos[0].compute
    factory = RecordingFactory()
    with pytest.raises(DataFlowError, match="aggregate_r1"):
        submit_job(replace(prepared3, job=job), client_factory=factory)
    assert factory.workspaces == []


def _azure_errors() -> list[tuple[Exception, str]]:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )
    from azure.identity import CredentialUnavailableError

    return [
        (ClientAuthenticationError("token expired\nmore detail"), "could not authenticate"),
        (CredentialUnavailableError("no credential found"), "az login"),
        (ResourceNotFoundError("compute 'silo1' not found"), "compute 'silo1' not found"),
        (HttpResponseError("quota exceeded"), "HttpResponseError): quota exceeded"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_azure_errors_become_one_line(prepared3: Any, case: int) -> None:
    error, expected = _azure_errors()[case]
    with pytest.raises(SubmissionError) as info:
        submit_job(prepared3, client_factory=RecordingFactory(error), stream=False)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_default_factory_builds_a_client_for_the_workspace(
    manifest1: FederationManifest,
) -> None:
    from azure.ai.ml import MLClient
    from azure.core.credentials import AccessToken

    class IssuedToken:  # a credential that already holds a token: no network needed
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            assert scopes == ("https://management.azure.com/.default",)
            return AccessToken("token", 2_000_000_000)

    assert manifest1.workspace is not None
    client = default_client_factory(manifest1.workspace, IssuedToken())
    assert isinstance(client, MLClient)
    assert client.subscription_id == manifest1.workspace.subscription_id
    assert client.resource_group_name == manifest1.workspace.resource_group
    assert client.workspace_name == manifest1.workspace.name


def test_missing_credentials_stop_before_anything_is_sent(
    prepared3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity import EnvironmentCredential

    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def factory(workspace: WorkspaceRef) -> Any:
        return default_client_factory(workspace, EnvironmentCredential())

    with pytest.raises(SubmissionError, match=r"could not authenticate.*az login"):
        submit_job(prepared3, client_factory=factory, stream=False)


def test_azure_ml_validation_report_is_reduced_to_its_first_message(prepared3: Any) -> None:
    from azure.ai.ml.exceptions import ErrorTarget, MlException

    report = json.dumps(
        {"result": "Failed", "errors": [{"message": "Compute c-silo1 not found.\nDetails..."}]},
        indent=2,
    )
    error = MlException(message=report, no_personal_data_message="x", target=ErrorTarget.JOB)
    with pytest.raises(SubmissionError) as info:
        submit_job(prepared3, client_factory=RecordingFactory(error), stream=False)
    assert str(info.value) == (
        "Azure ML rejected or failed the job (MlException): Compute c-silo1 not found."
    )


# --- the CLI -----------------------------------------------------------------------------


@pytest.fixture
def manifest_file(tmp_path: Path) -> Path:
    """What `pulumi stack output --json` prints for the eyes-off blueprint with 3 silos."""
    path = tmp_path / "stack-outputs.json"
    path.write_text(json.dumps(blueprint_outputs("eyes-off", 3)))
    return path


def _invoke(args: list[str], factory: Any | None = None) -> Any:
    obj = {CLIENT_FACTORY_KEY: factory} if factory is not None else None
    if "--rounds" not in args and "--config" not in args:
        args = [*args, "--rounds", "2"]
    if "--engine" not in args:  # these tests are about the unrolled pipeline
        args = [*args, "--engine", "pipeline"]
    return CliRunner().invoke(app, ["submit", *args], obj=obj)


def test_cli_dry_run_writes_loadable_yaml_and_prints_table(
    manifest_file: Path, manifest3: FederationManifest, tmp_path: Path
) -> None:
    from azure.ai.ml import load_job

    out = tmp_path / "dry"
    factory = RecordingFactory()
    result = _invoke(
        [
            "--manifest",
            str(manifest_file),
            "--example",
            "digits",
            "--dry-run",
            "--out",
            str(out),
            "--job-name",
            "fl-digits-dry",
        ],
        factory,
    )
    assert result.exit_code == 0, result.output
    assert factory.workspaces == []  # nothing sent
    for column in ("step", "compute", "reads", "writes"):
        assert column in result.stdout
    silo = manifest3.silos[0]
    assert silo.compute in result.stdout and "aggregate_r1" in result.stdout
    loaded = load_job(out / "pipeline.yaml")
    assert loaded._validate().passed
    request = json.loads((out / "approval-request.json").read_text())
    assert request["job_name"] == "fl-digits-dry"
    assert (out / "code" / "job.yaml").is_file()
    assert (out / "code" / "fl_jobs" / "aml" / "steps" / "train.py").is_file()


def test_cli_submits_and_prints_studio_url(manifest_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text("rounds: 1\nseed: 3\n")
    factory = RecordingFactory()
    result = _invoke(
        ["--manifest", str(manifest_file), "--example", "digits", "--config", str(config)],
        factory,
    )
    assert result.exit_code == 0, result.output
    assert STUDIO in result.stdout
    sent = factory.client.jobs.create_or_update.call_args.args[0]
    assert {n for n in sent.jobs if n.startswith("aggregate_")} == {"aggregate_r1"}


def test_cli_azure_error_is_one_line_without_traceback(manifest_file: Path) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    factory = RecordingFactory(ResourceNotFoundError("compute 'orch' was not found"))
    result = _invoke(["--manifest", str(manifest_file), "--example", "digits"], factory)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Azure could not find") and "'orch'" in line


def test_cli_unexpected_failure_is_one_line_with_a_log(manifest_file: Path, tmp_path: Path) -> None:
    """Something no handler names (here a TypeError inside the client): one line, exit 1,
    the traceback in the --out folder's logs."""
    out = tmp_path / "out"
    factory = RecordingFactory(TypeError("unexpected keyword argument 'x'"))
    result = _invoke(
        ["--manifest", str(manifest_file), "--example", "digits", "--out", str(out)], factory
    )
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: submission failed: TypeError: unexpected keyword argument")
    log = Path(line.split("traceback in ")[1])
    assert log.parent == out / "logs" and "Traceback" in log.read_text()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--manifest", "MANIFEST", "--example", "digits", "--rounds", "x"], "Invalid value"),
        (["--manifest", "MANIFEST", "--example", "digits", "--out", "FILE"], "is a file"),
    ],
)
def test_cli_parse_errors_and_bad_out_are_one_line(
    manifest_file: Path, tmp_path: Path, args: list[str], fragment: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    paths = {"MANIFEST": str(manifest_file), "FILE": str(a_file)}
    result = _invoke([paths.get(a, a) for a in args], RecordingFactory())
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and fragment in line and " - " in line, line
    assert a_file.read_text() == "x"


def test_cli_refused_approval_exits_3(manifest_file: Path, tmp_path: Path) -> None:
    import sys

    config = tmp_path / "job.yaml"
    config.write_text(
        "rounds: 1\napproval:\n  command: "
        + json.dumps([sys.executable, str(APPROVER), "refuse", str(tmp_path / "r")])
        + "\n"
    )
    factory = RecordingFactory()
    result = _invoke(
        ["--manifest", str(manifest_file), "--example", "digits", "--config", str(config)],
        factory,
    )
    assert result.exit_code == 3
    assert "weekends" in result.stderr
    assert factory.workspaces == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--manifest", "MISSING", "--example", "digits"], "pulumi stack output"),
        (["--manifest", "MANIFEST", "--example", "nope"], "unknown example"),
        (["--manifest", "MANIFEST", "--example", "digits", "--config", "BADCONFIG"], "roundz"),
        (["--manifest", "MANIFEST", "--example", "digits", "--job-name", "Bad Name"], "job name"),
        (["--manifest", "LOCAL", "--example", "digits"], "local federation"),
    ],
)
def test_cli_bad_input_exits_2_with_one_clear_line(
    manifest_file: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("rounds: 1\nroundz: 3\n")
    local = tmp_path / "local.json"
    local.write_text(
        json.dumps(
            {
                "blueprint": "local",
                "orchestrator": {"compute": "local", "datastore": "x"},
                "silos": [
                    {
                        "name": "a",
                        "region": "local",
                        "kind": "local",
                        "compute": "l",
                        "datastore": "a",
                    }
                ],
            }
        )
    )
    paths = {
        "MISSING": str(tmp_path / "missing.json"),
        "MANIFEST": str(manifest_file),
        "BADCONFIG": str(bad_config),
        "LOCAL": str(local),
    }
    factory = RecordingFactory()
    result = _invoke([paths.get(a, a) for a in args], factory)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert expected in result.stderr
    assert result.stderr.startswith("error: ")
    assert factory.workspaces == []


def test_submit_is_registrable_in_another_typer_app(manifest_file: Path, tmp_path: Path) -> None:
    from fl_jobs.aml.cli import submit

    other = typer.Typer()
    other.command()(submit)

    @other.command()
    def run() -> None:  # a second command, as in the main fl_jobs CLI
        pass

    result = CliRunner().invoke(
        other,
        [
            "submit",
            "--manifest",
            str(manifest_file),
            "--example",
            "digits",
            "--dry-run",
            "--out",
            str(tmp_path / "o"),
            "--rounds",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
