"""The pipeline built from each blueprint's manifest: offline validation, YAML round trip,
and every step's compute, inputs and outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fl_jobs.aml.layout import datastore_uri
from fl_jobs.aml.steps_io import describe_steps
from fl_jobs.run.manifest import FederationManifest, ManifestError
from tests.aml.conftest import BLUEPRINT_CASES, blueprint_manifest, job_config

JOB = "fl-digits-case"
PREFIX = "fl-sandbox/digits"


def _build(manifest: FederationManifest, tmp_path: Path, **config: Any) -> Any:
    from fl_jobs.aml.code_snapshot import stage_code
    from fl_jobs.aml.pipeline import build_pipeline

    cfg = job_config(**config)
    code = stage_code(tmp_path / "code", cfg)
    return build_pipeline(manifest, cfg, code=code, job_name=JOB)


def _assert_steps(job: Any, manifest: FederationManifest, rounds: int) -> None:
    """Every step: where it runs, what it reads, what it writes."""
    from fl_jobs.aml.model_store import model_store_for

    updates = model_store_for(manifest)
    store = manifest.orchestrator.datastore
    orchestrator = manifest.orchestrator.compute
    steps = {s.name: s for s in describe_steps(job)}
    expected_names = {"init"} | {f"aggregate_r{r}" for r in range(1, rounds + 1)}
    for silo in manifest.silos:
        key = silo.name.replace("-", "_")
        expected_names |= {f"preprocess_{key}"}
        expected_names |= {f"train_r{r}_{key}" for r in range(1, rounds + 1)}
    assert set(steps) == expected_names

    def reads(name: str) -> dict[str, str | None]:
        return {p.name: p.uri for p in steps[name].reads}

    def writes(name: str) -> dict[str, str | None]:
        return {p.name: p.uri for p in steps[name].writes}

    test_set = datastore_uri(store, f"{PREFIX}/test")
    # Azure's rule 13: every step reaches data as its compute's own identity.
    assert all(step.identity == "managed" for step in steps.values())
    assert steps["init"].compute == orchestrator
    assert reads("init") == {"test_data": test_set}
    assert writes("init") == {"global_model": datastore_uri(store, f"{JOB}/global/round-0")}
    for silo in manifest.silos:
        key = silo.name.replace("-", "_")
        processed = datastore_uri(silo.datastore, f"{JOB}/processed")
        pre = steps[f"preprocess_{key}"]
        assert pre.compute == silo.compute
        assert pre.instance_type == silo.instance_type
        assert reads(pre.name) == {
            "raw_data": datastore_uri(silo.datastore, f"{PREFIX}/{silo.name}")
        }
        assert writes(pre.name) == {"processed_data": processed}
        for r in range(1, rounds + 1):
            train = steps[f"train_r{r}_{key}"]
            assert train.compute == silo.compute
            assert train.instance_type == silo.instance_type
            assert reads(train.name) == {
                "global_model": datastore_uri(store, f"{JOB}/global/round-{r - 1}"),
                "silo_data": processed,
            }
            assert writes(train.name) == {
                "model_update": datastore_uri(
                    updates.update_datastore(silo.name), f"{JOB}/round-{r}"
                ),
                "silo_store": datastore_uri(silo.datastore, "fl-sandbox/silo-store"),
            }
            assert train.params["silo"] == silo.name and train.params["round"] == r
    for r in range(1, rounds + 1):
        agg = steps[f"aggregate_r{r}"]
        assert agg.compute == orchestrator
        assert reads(agg.name) == {
            "global_model": datastore_uri(store, f"{JOB}/global/round-{r - 1}"),
            "test_data": test_set,
            **{
                f"update_{i + 1}": datastore_uri(
                    updates.update_datastore(silo.name), f"{JOB}/round-{r}"
                )
                for i, silo in enumerate(manifest.silos)
            },
        }
        assert writes(agg.name) == {
            "new_global_model": datastore_uri(store, f"{JOB}/global/round-{r}")
        }


@pytest.mark.parametrize(("blueprint", "silos"), BLUEPRINT_CASES)
def test_blueprint_pipeline_validates_round_trips_and_is_wired(
    blueprint: str, silos: int, tmp_path: Path
) -> None:
    from azure.ai.ml import load_job

    manifest = blueprint_manifest(blueprint, silos)
    assert len(manifest.silos) == silos
    job = _build(manifest, tmp_path, rounds=2)
    assert job._validate().passed, job._validate().error_messages
    _assert_steps(job, manifest, rounds=2)

    job.dump(tmp_path / "pipeline.yaml")
    loaded = load_job(tmp_path / "pipeline.yaml")
    assert loaded._validate().passed, loaded._validate().error_messages
    _assert_steps(loaded, manifest, rounds=2)
    # The identity each step runs as survives the YAML: the compute's own client id.
    silo = manifest.silos[-1]
    train = loaded.jobs[f"train_r2_{silo.name.replace('-', '_')}"]
    assert train.identity.type == "managed_identity"
    assert train.identity.client_id == silo.identity_client_id
    assert (
        loaded.jobs["aggregate_r1"].identity.client_id == manifest.orchestrator.identity_client_id
    )


def test_every_step_runs_the_staged_code_with_its_entry_script(
    prepared3: Any,
) -> None:
    for name, node in prepared3.job.jobs.items():
        assert Path(node.component.code) == prepared3.code.path
        kind = name.split("_")[0]
        assert f"python -m fl_jobs.aml.steps.{kind} --config job.yaml" in node.component.command
    agg = prepared3.job.jobs["aggregate_r1"].component.command
    assert agg.count("--update ${{inputs.update_") == len(prepared3.manifest.silos)


def test_external_silo_gets_its_kubernetes_instance_type(
    manifest3: FederationManifest, tmp_path: Path
) -> None:
    silos = list(manifest3.silos)
    silos[1] = silos[1].model_copy(update={"kind": "external", "instance_type": "cpu-small"})
    manifest = manifest3.model_copy(update={"silos": silos})
    job = _build(manifest, tmp_path, rounds=1)
    assert job._validate().passed
    _assert_steps(job, manifest, rounds=1)
    key = silos[1].name.replace("-", "_")
    assert job.jobs[f"train_r1_{key}"].resources.instance_type == "cpu-small"
    assert job.jobs[f"train_r1_{silos[0].name.replace('-', '_')}"].resources is None


def test_job_carries_blueprint_and_code_hash(prepared3: Any) -> None:
    assert prepared3.job.name == prepared3.job_name
    assert prepared3.job.tags["fl-sandbox-blueprint"] == prepared3.manifest.blueprint
    assert prepared3.job.tags["fl-sandbox-code-sha256"] == prepared3.code.sha256
    assert prepared3.job.settings.continue_on_step_failure is False


def test_local_manifest_is_refused(manifest1: FederationManifest, tmp_path: Path) -> None:
    local = FederationManifest.parse(
        {
            "blueprint": "local",
            "orchestrator": {"compute": "local", "datastore": str(tmp_path)},
            "silos": [
                {
                    "name": "a",
                    "region": "local",
                    "kind": "local",
                    "compute": "local",
                    "datastore": str(tmp_path / "a"),
                }
            ],
        }
    )
    with pytest.raises(ManifestError, match="local federation"):
        _build(local, tmp_path)


def test_client_sampling_is_refused(manifest1: FederationManifest, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="fraction"):
        _build(manifest1, tmp_path, fraction=0.5)


def test_secure_aggregation_is_refused(manifest1: FederationManifest, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="secure_aggregation needs the agents engine"):
        _build(manifest1, tmp_path, secure_aggregation=True)


def test_async_rounds_are_refused(manifest1: FederationManifest, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="async_buffer needs the agents engine"):
        _build(manifest1, tmp_path, async_buffer=1)


def test_a_strategy_with_silo_state_is_refused(
    manifest1: FederationManifest, tmp_path: Path
) -> None:
    with pytest.raises(ManifestError, match="strategy scaffold keeps state at each silo"):
        _build(manifest1, tmp_path, strategy={"name": "scaffold"})


def test_silo_level_dp_is_refused(manifest1: FederationManifest, tmp_path: Path) -> None:
    with pytest.raises(
        ManifestError, match=r"dp_level silo needs the round engine.*--engine agents"
    ):
        _build(manifest1, tmp_path, silos=5, dp_level="silo", dp_silo_clip=1.0)


@pytest.mark.parametrize("name", ["Has-Upper", "with/slash", "-lead", "x" * 64, ""])
def test_bad_job_name_is_refused(manifest1: FederationManifest, tmp_path: Path, name: str) -> None:
    from fl_jobs.aml.code_snapshot import stage_code
    from fl_jobs.aml.pipeline import build_pipeline

    cfg = job_config()
    with pytest.raises(ValueError, match="job name"):
        build_pipeline(manifest1, cfg, code=stage_code(tmp_path / "c", cfg), job_name=name)


def test_each_train_step_carries_the_strategys_setting_for_its_silo_and_round(
    manifest3: FederationManifest, tmp_path: Path
) -> None:
    job = _build(manifest3, tmp_path, rounds=2, strategy="fedprox", strategy_options=["mu=0.05"])
    assert job._validate().passed, job._validate().error_messages
    steps = {s.name: s for s in describe_steps(job)}
    trains = [s for name, s in steps.items() if name.startswith("train_")]
    assert len(trains) == 2 * len(manifest3.silos)
    assert all(s.params["train_config"] == "proximal_mu=0.05" for s in trains)
    assert job.display_name.startswith("FedProx digits: 3 silos x 2 rounds")
    fedavg = _build(manifest3, tmp_path / "fedavg", rounds=1)
    assert {s.params["train_config"] for s in describe_steps(fedavg) if "train_" in s.name} == {
        "none"
    }


def test_a_strategy_needing_more_silos_than_the_manifest_has_is_refused(
    manifest3: FederationManifest, tmp_path: Path
) -> None:
    # krum (f=1) needs 5 updates a round; the job's own silo count is not what runs on Azure ML
    with pytest.raises(ManifestError, match="needs at least 5 updates a round, but the manifest"):
        _build(manifest3, tmp_path, strategy="krum", silos=5)
