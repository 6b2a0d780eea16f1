"""The silo data-flow rules over built pipelines, including deliberately miswired ones."""

from __future__ import annotations

from typing import Any

import pytest

from fl_jobs.aml.dataflow import DataFlowError, check_data_flow, check_steps, require_data_flow
from fl_jobs.aml.layout import datastore_uri, parse_datastore_uri
from fl_jobs.aml.steps_io import DataPort, describe_steps
from fl_jobs.run.manifest import FederationManifest


def _job(prepared: Any) -> Any:
    """A fresh build of the session's pipeline (same manifest, config, code), free to miswire."""
    from fl_jobs.aml.pipeline import build_pipeline

    return build_pipeline(
        prepared.manifest, prepared.config, code=prepared.code, job_name=prepared.job_name
    )


def _normalized(steps: list[Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (s.name, s.compute, s.instance_type, sorted(s.reads, key=str), sorted(s.writes, key=str))
        for s in steps
    )


def _set_input(job: Any, step: str, port: str, uri: str) -> None:
    from azure.ai.ml import Input

    job.jobs[step].inputs[port] = Input(type="uri_folder", path=uri)


def _set_output(job: Any, step: str, port: str, uri: str) -> None:
    from azure.ai.ml import Output

    job.jobs[step].outputs[port] = Output(type="uri_folder", path=uri)


def test_built_pipeline_has_no_violation(prepared3: Any, manifest3: FederationManifest) -> None:
    assert check_data_flow(prepared3.job, manifest3) == []
    require_data_flow(prepared3.job, manifest3)


def test_silo_step_reading_another_silos_data_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    a, b = manifest3.silos[0], manifest3.silos[1]
    job = _job(prepared3)
    step = f"train_r1_{a.name}".replace("-", "_")
    _set_input(job, step, "silo_data", datastore_uri(b.datastore, "fl-digits-test/processed"))
    violations = check_data_flow(job, manifest3)
    assert len(violations) == 1
    (violation,) = violations
    assert violation.step == step
    assert violation.datastore == b.datastore
    assert f"silo {b.name!r}" in violation.message and "reads" in violation.message


def test_aggregate_reading_silo_data_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    silo = manifest3.silos[2]
    job = _job(prepared3)
    _set_input(job, "aggregate_r2", "test_data", datastore_uri(silo.datastore, "fl-sandbox/x"))
    (violation,) = check_data_flow(job, manifest3)
    assert (violation.step, violation.datastore) == ("aggregate_r2", silo.datastore)
    assert "orchestrator" in violation.message


def test_silo_writing_another_silos_update_store_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    a, b = manifest3.silos[0], manifest3.silos[1]
    job = _job(prepared3)
    step = f"train_r2_{a.name}".replace("-", "_")
    b_updates = prepared3.model_store.update_datastore(b.name)
    _set_output(job, step, "model_update", datastore_uri(b_updates, "fl-digits-test/round-2"))
    violations = check_data_flow(job, manifest3)
    # the writer, and the aggregate that reads silo a's update from where it now lands
    mine = [v for v in violations if v.step == step]
    assert len(mine) == 1
    assert mine[0].datastore == b_updates
    assert f"silo {b.name!r}'s update datastore" in mine[0].message
    assert {v.step for v in violations} == {step}


def test_silo_writing_the_global_model_store_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    a = manifest3.silos[0]
    job = _job(prepared3)
    step = f"train_r1_{a.name}".replace("-", "_")
    store = manifest3.orchestrator.datastore
    _set_output(job, step, "model_update", datastore_uri(store, f"fl-digits-test/round-1/{a.name}"))
    (violation,) = check_data_flow(job, manifest3)
    assert (violation.step, violation.datastore) == (step, store)
    assert "writes the global model store" in violation.message
    assert prepared3.model_store.update_datastore(a.name) in violation.message


def test_orchestrator_writing_a_silos_update_store_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    c = manifest3.silos[2]
    c_updates = prepared3.model_store.update_datastore(c.name)
    job = _job(prepared3)
    _set_output(job, "aggregate_r1", "new_global_model", datastore_uri(c_updates, "x"))
    violations = [v for v in check_data_flow(job, manifest3) if v.step == "aggregate_r1"]
    assert [(v.datastore, "only silo" in v.message) for v in violations] == [(c_updates, True)]


def test_silo_writing_into_another_silos_datastore_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    a, c = manifest3.silos[0], manifest3.silos[2]
    job = _job(prepared3)
    step = f"preprocess_{a.name}".replace("-", "_")
    _set_output(job, step, "processed_data", datastore_uri(c.datastore, "stolen"))
    violations = [v for v in check_data_flow(job, manifest3) if v.step == step]
    assert [(v.datastore, "writes" in v.message) for v in violations] == [(c.datastore, True)]


def test_silo_data_leaving_to_an_outside_store_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    a = manifest3.silos[0]
    job = _job(prepared3)
    step = f"preprocess_{a.name}".replace("-", "_")
    _set_output(job, step, "processed_data", datastore_uri("workspaceblobstore", "copy"))
    violations = [v for v in check_data_flow(job, manifest3) if v.step == step]
    assert len(violations) == 1
    assert violations[0].datastore == "workspaceblobstore"
    assert "outside the silo" in violations[0].message


def test_silo_reading_another_silos_update_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    a, b = manifest3.silos[0], manifest3.silos[1]
    b_updates = prepared3.model_store.update_datastore(b.name)
    job = _job(prepared3)
    step = f"train_r2_{a.name}".replace("-", "_")
    _set_input(job, step, "global_model", datastore_uri(b_updates, "fl-digits-test/round-1"))
    (violation,) = check_data_flow(job, manifest3)
    assert violation.step == step and violation.datastore == b_updates
    assert "never sees another silo's updates" in violation.message


def test_silo_reading_non_model_paths_of_the_global_store_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    a = manifest3.silos[0]
    store = manifest3.orchestrator.datastore
    job = _job(prepared3)
    step = f"train_r1_{a.name}".replace("-", "_")
    _set_input(job, step, "global_model", datastore_uri(store, "fl-sandbox/digits/test"))
    (violation,) = check_data_flow(job, manifest3)
    assert violation.step == step and violation.datastore == store
    assert "only global models" in violation.message


def test_step_without_compute_is_named(prepared3: Any, manifest3: FederationManifest) -> None:
    job = _job(prepared3)
    job.jobs["aggregate_r1"].compute = None
    (violation,) = check_data_flow(job, manifest3)
    assert violation.step == "aggregate_r1"
    assert "no compute" in violation.message


@pytest.mark.parametrize("identity", ["user", "default"])
def test_step_not_running_as_its_compute_identity_is_named(
    prepared3: Any, manifest3: FederationManifest, identity: str
) -> None:
    from azure.ai.ml.entities import UserIdentityConfiguration

    job = _job(prepared3)
    step = f"train_r1_{manifest3.silos[1].name}".replace("-", "_")
    job.jobs[step].identity = UserIdentityConfiguration() if identity == "user" else None
    (violation,) = check_data_flow(job, manifest3)
    assert violation.step == step and "identity: managed" in violation.message
    shown = "user_identity" if identity == "user" else "unset"
    assert shown in violation.message


def test_step_on_unknown_compute_is_named(prepared3: Any, manifest3: FederationManifest) -> None:
    job = _job(prepared3)
    job.jobs["init"].compute = "somebody-elses-cluster"
    (violation,) = check_data_flow(job, manifest3)
    assert violation.step == "init" and "somebody-elses-cluster" in violation.message


def test_output_without_explicit_path_is_named(
    prepared3: Any, manifest3: FederationManifest
) -> None:
    from azure.ai.ml import Output

    a = manifest3.silos[0]
    job = _job(prepared3)
    step = f"train_r1_{a.name}".replace("-", "_")
    job.jobs[step].outputs["model_update"] = Output(type="uri_folder")
    violations = check_data_flow(job, manifest3)
    # the silo step itself, and the aggregate that reads the unplaced output
    assert {v.step for v in violations} == {step, "aggregate_r1"}
    assert all("no explicit datastore path" in v.message for v in violations)


def test_non_datastore_input_is_unverifiable(prepared3: Any, manifest3: FederationManifest) -> None:
    job = _job(prepared3)
    _set_input(job, "init", "test_data", "azureml:some-data-asset:1")
    (violation,) = check_data_flow(job, manifest3)
    assert violation.step == "init" and "cannot tell" in violation.message


def test_shared_compute_in_manifest_is_reported(manifest3: FederationManifest) -> None:
    silos = list(manifest3.silos)
    silos[1] = silos[1].model_copy(update={"compute": silos[0].compute})
    shared = manifest3.model_copy(update={"silos": silos})
    violations = check_steps([], shared)
    assert len(violations) == 1 and silos[0].compute in violations[0].message


def test_error_lists_every_violation(prepared3: Any, manifest3: FederationManifest) -> None:
    job = _job(prepared3)
    job.jobs["init"].compute = None
    job.jobs["aggregate_r1"].compute = None
    with pytest.raises(DataFlowError) as info:
        require_data_flow(job, manifest3)
    assert len(info.value.violations) == 2
    assert "'init'" in str(info.value) and "'aggregate_r1'" in str(info.value)


def test_loaded_back_yaml_is_checked_the_same(
    prepared3: Any, manifest3: FederationManifest, tmp_path
) -> None:
    from azure.ai.ml import load_job

    prepared3.job.dump(tmp_path / "job.yaml")
    loaded = load_job(tmp_path / "job.yaml")
    assert _normalized(describe_steps(loaded)) == _normalized(describe_steps(prepared3.job))
    assert check_data_flow(loaded, manifest3) == []


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("azureml://datastores/ds/paths/a/b/", ("ds", "a/b")),
        (
            "azureml://subscriptions/s/resourcegroups/rg/workspaces/w/datastores/ds/paths/x",
            ("ds", "x"),
        ),
        ("azureml:asset:1", None),
        ("./local", None),
        ("https://acct.blob.core.windows.net/c/p", None),
    ],
)
def test_datastore_uri_parsing(uri: str, expected: tuple[str, str] | None) -> None:
    ref = parse_datastore_uri(uri)
    assert (None if ref is None else (ref.datastore, ref.path)) == expected


def test_port_without_producer_location_mentions_producer() -> None:
    from fl_jobs.aml.steps_io import StepIO

    manifest = FederationManifest.parse(
        {
            "blueprint": "t",
            "workspace": {
                "subscription_id": "s",
                "resource_group": "r",
                "name": "w",
                "region": "x",
            },
            "orchestrator": {"compute": "orch", "datastore": "models"},
            "silos": [
                {
                    "name": "a",
                    "region": "x",
                    "compute": "ca",
                    "datastore": "da",
                    "update_datastore": "ua",
                }
            ],
        }
    )
    step = StepIO(
        "agg", "orch", None, identity="managed", reads=[DataPort("update_1", None, "train_a")]
    )
    (violation,) = check_steps([step], manifest)
    assert "from step 'train_a'" in violation.message
