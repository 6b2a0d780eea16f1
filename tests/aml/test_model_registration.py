"""Registering a completed agents job's final MLflow model in the workspace: the request is
built with azure-ai-ml and validated offline, then sent to an autospec'd MLClient (sockets are
blocked; a real registration cannot run here)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import pytest

from fl_jobs.aml.layout import parse_datastore_uri
from fl_jobs.aml.model_registration import final_model_path, model_entity
from fl_jobs.aml.submit import prepare_job, submit_job
from tests.aml.conftest import blueprint_manifest, job_config
from tests.aml.test_submit import RecordingFactory


@pytest.fixture(scope="module")
def agents_job(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return prepare_job(
        blueprint_manifest("eyes-off", 3),
        job_config(),
        code_dir=tmp_path_factory.mktemp("code"),
        job_name="fl-reg-test",
        engine="agents",
    )


def _factory(error: Exception | None = None) -> RecordingFactory:
    from azure.ai.ml.operations import ModelOperations

    factory = RecordingFactory()
    factory.client.models = create_autospec(ModelOperations, instance=True)
    factory.client.models.create_or_update.return_value = SimpleNamespace(
        name="fl-sandbox-digits", version="3"
    )
    if error is not None:
        factory.client.models.create_or_update.side_effect = error
    return factory


def test_the_model_entity_points_at_the_orchestrators_mlflow_model(agents_job: Any) -> None:
    from azure.ai.ml.constants import AssetTypes

    model = model_entity(agents_job)
    assert model.name == "fl-sandbox-digits" and model.type == AssetTypes.MLFLOW_MODEL
    ref = parse_datastore_uri(str(model.path))
    assert ref is not None and ref.datastore == agents_job.model_store.global_datastore
    assert (
        ref.path.strip("/") == final_model_path("fl-reg-test") == "fl-reg-test/orchestrator/model"
    )
    assert model.tags["fl-sandbox.job"] == "fl-reg-test"
    assert model.tags["fl-sandbox.blueprint"] == "eyes-off"
    rest = model._to_rest_object()  # what azure-ai-ml would send; raises on an invalid asset
    assert rest.properties.model_type == AssetTypes.MLFLOW_MODEL


def test_a_completed_job_registers_its_final_model(agents_job: Any) -> None:
    factory = _factory()
    result = submit_job(agents_job, client_factory=factory, stream=True)
    assert result.status == "Completed" and result.model == "fl-sandbox-digits:3"
    (sent,) = factory.client.models.create_or_update.call_args.args
    assert sent.path == model_entity(agents_job).path


@pytest.mark.parametrize("case", ["opted out", "not streamed", "pipeline engine", "job failed"])
def test_registration_only_follows_a_completed_agents_job(agents_job: Any, case: str) -> None:
    factory = _factory()
    prepared, kwargs = agents_job, {"stream": True, "register_model": True}
    if case == "opted out":
        kwargs["register_model"] = False
    if case == "not streamed":
        kwargs["stream"] = False
    if case == "pipeline engine":
        prepared = replace(agents_job, engine="pipeline")
    if case == "job failed":
        factory.client.jobs.get.return_value = SimpleNamespace(status="Failed")
    result = submit_job(prepared, client_factory=factory, **kwargs)
    factory.client.models.create_or_update.assert_not_called()
    assert result.model is None and result.model_error is None


def test_a_failed_registration_is_reported_not_raised(agents_job: Any) -> None:
    from azure.core.exceptions import HttpResponseError

    factory = _factory(HttpResponseError(message="AuthorizationFailed: no write on models"))
    result = submit_job(agents_job, client_factory=factory, stream=True)
    assert result.status == "Completed" and result.model is None
    assert result.model_error and "AuthorizationFailed" in result.model_error


def test_the_cli_says_where_the_model_went(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from fl_jobs.aml.cli import CLIENT_FACTORY_KEY, app
    from tests.aml.conftest import blueprint_outputs

    manifest = tmp_path / "outputs.json"
    manifest.write_text(json.dumps(blueprint_outputs("eyes-off", 3)))
    args = ["submit", "--manifest", str(manifest), "--example", "digits", "--rounds", "2"]
    done = CliRunner().invoke(app, args, obj={CLIENT_FACTORY_KEY: _factory()})
    assert done.exit_code == 0, done.output
    assert "final model registered in the workspace as fl-sandbox-digits:3" in done.output
    failing = _factory(RuntimeError("quota"))
    done = CliRunner().invoke(
        app, [*args, "--job-name", "fl-reg-2"], obj={CLIENT_FACTORY_KEY: failing}
    )
    assert done.exit_code == 0, done.output  # the job completed; only the registration failed
    assert "warning: the final model was not registered (RuntimeError: quota)" in done.output
    assert "fl-reg-2/orchestrator/model" in done.output
    opted_out = _factory()
    done = CliRunner().invoke(
        app,
        [*args, "--job-name", "fl-reg-3", "--no-register-model"],
        obj={CLIENT_FACTORY_KEY: opted_out},
    )
    assert done.exit_code == 0 and "registered" not in done.output
    opted_out.client.models.create_or_update.assert_not_called()
