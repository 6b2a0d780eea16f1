"""The job path of one FL round over real blueprint runs: clear on every blueprint, and each
movement, broken on purpose, fails by name with the resource that decides it."""

from __future__ import annotations

from typing import Any

import pytest

from blueprints.catalog import BLUEPRINT_NAMES
from fl_jobs.aml.round_movements import (
    orchestrator_movements,
    seeding_movements,
    silo_movements,
)
from policies.job_path import Movement, job_path
from tests.infra.blueprint_runs import blueprint_run
from tests.infra.breaks import Records, edited, graph, named, nested_set, run_of, without

KNOWN_GAPS: dict[str, list[str]] = {}
"""Documented requirements a blueprint does not meet yet, as the job path's broken movements
by blueprint. None is open: confidential's system-assigned identity got its workspace-storage
roles with Azure rule 21."""


def is_control(movement: Movement) -> bool:
    """A movement of Azure ML's machinery (policies.control_paths, policies.service_paths)."""
    return movement.step == "Azure ML service" or movement.what.startswith(
        ("control traffic", "extension control", "Azure ML control plane")
    )


def moves(records: Records, outputs: dict[str, Any]) -> list[Movement]:
    return job_path(graph(records, outputs))


def only_broken(records: Records, outputs: dict[str, Any]) -> list[Movement]:
    return [m for m in moves(records, outputs) if not m.ok]


def the_broken(records: Records, outputs: dict[str, Any], step: str, what: str) -> Movement:
    """The one broken movement, which must be ``what`` of ``step``."""
    broken = only_broken(records, outputs)
    assert [(m.step, m.what) for m in broken] == [(step, what)], [
        str(m.violation()) for m in broken
    ]
    return broken[0]


@pytest.mark.parametrize("silos", [1, 3])
@pytest.mark.parametrize("blueprint", BLUEPRINT_NAMES)
def test_every_blueprint_has_a_clear_job_path(blueprint: str, silos: int) -> None:
    run = blueprint_run(blueprint, silos)
    found = moves(run.resources, run.result)
    assert [m.what for m in found if not m.ok] == KNOWN_GAPS.get(blueprint, [])
    # submit: API + upload; seeding: each silo and the test set; image build: outbound,
    # context, push; each agent: its compute's 5 common movements and its declared ones.
    # Control traffic and the service are counted in test_job_path_control.
    data = [m for m in found if not is_control(m)]
    # With the jump host (private, confidential), each person first connects to it.
    jump = silos + 2 if blueprint in ("private", "confidential") else 0
    names = [f"silo{i}" for i in range(1, silos + 1)]
    agents = (5 + len(silo_movements())) * silos + 5 + len(orchestrator_movements(names))
    assert len(data) == 2 + len(seeding_movements(names)) + 3 + agents + jump
    keys = [m for m in found if m.what.startswith("publish its signing key")]
    assert len(keys) == silos and all("container 'signing-keys'" in m.target for m in keys)
    silo_steps = {m.step for m in found if m.step.startswith("silo ")}
    assert silo_steps == {f"silo silo{i}: agent" for i in range(1, silos + 1)}


def test_every_compute_movement_runs_as_its_own_identity() -> None:
    run = blueprint_run("eyes-off", 2)
    for movement in moves(run.resources, run.result):
        if movement.step.startswith("silo silo1"):
            assert "identity 'id-flsandbox-silo1'" in movement.actor
        if movement.step == "orchestrator: agent":
            assert "identity 'id-flsandbox-orchestrator-jobs'" in movement.actor
        if movement.step == "image build":
            assert "identity 'id-flsandbox-orchestrator-image-builder'" in movement.actor


# ----- submit ------------------------------------------------------------------------------


def test_submitter_without_workspace_role_cannot_call_the_api() -> None:
    records, outputs = run_of("minimal")
    records = without(records, named("ra-deployer-azureml-data-scientist-workspace"))
    movement = the_broken(records, outputs, "submit", "call the workspace API")
    assert movement.resource is not None and movement.resource.name == "orchestrator-workspace"
    assert "AzureML Data Scientist" in movement.problem


def test_submitter_from_an_address_outside_the_rules_cannot_upload() -> None:
    records, outputs = run_of("eyes-off")
    outputs["submitters"][0]["ip_ranges"] = ["192.0.2.99"]
    movement = the_broken(records, outputs, "submit", "upload the code snapshot")
    assert movement.resource is not None and movement.resource.name == "orchestrator-ws-storage"
    assert "192.0.2.99" in movement.problem and "ipRanges" in movement.fix


def test_no_submitter_means_no_job() -> None:
    records, outputs = run_of("minimal")
    outputs["submitters"] = []
    movement = the_broken(records, outputs, "submit", "submit a job")
    assert "fl-sandbox:submitters" in movement.fix


# ----- image build -------------------------------------------------------------------------


def test_image_builder_without_storage_role_cannot_read_the_context() -> None:
    records, outputs = run_of("eyes-off")
    records = without(
        records,
        named(
            "ra-orchestrator-image-builder-identity-storage-blob-data-reader-orchestrator-storage"
        ),
    )
    broken = [m for m in only_broken(records, outputs) if m.step == "image build"]
    assert [m.what for m in broken] == ["read the build context"]
    movement = broken[0]
    assert movement.resource is not None and movement.resource.name == "orchestrator-ws-storage"


def test_image_builder_cannot_push_to_a_closed_registry_without_endpoint() -> None:
    records, outputs = run_of("eyes-off")
    records = edited(
        records, named("orchestrator-acr"), nested_set("publicNetworkAccess", "Disabled")
    )
    broken = only_broken(records, outputs)
    assert ("image build", "push the environment image") in [(m.step, m.what) for m in broken]
    assert all(m.what in ("push the environment image", "pull the job image") for m in broken)
    assert {m.resource.name for m in broken if m.resource} == {"orchestrator-acr"}


def test_image_builder_without_outbound_cannot_pull_base_images() -> None:
    records, outputs = run_of("eyes-off")
    records = edited(
        records, named("orchestrator-hub-compute"), nested_set("defaultOutboundAccess", False)
    )
    broken = [m for m in only_broken(records, outputs) if m.step == "image build"]
    # eyes-off keeps the registry public, so without outbound the push fails too.
    assert [m.what for m in broken] == [
        "pull the base image and packages (mcr.microsoft.com, PyPI)",
        "push the environment image",
    ]
    assert (
        broken[0].resource is not None and broken[0].resource.name == "orchestrator-image-builder"
    )
    assert "no outbound path" in broken[1].problem


# ----- a silo's steps ------------------------------------------------------------------------

SILO1 = "silo silo1: agent"
SILO1_RA = "ra-silo-silo1-identity-"


@pytest.mark.parametrize(
    ("assignment", "whats", "resource"),
    [
        ("acrpull-container-registry", ["pull the job image"], "orchestrator-acr"),
        (
            "storage-blob-data-reader-orchestrator-storage",
            ["download the code snapshot"],
            "orchestrator-ws-storage",
        ),
        (
            "storage-blob-data-contributor-orchestrator-storage-container-azureml",
            ["write logs and MLflow artifacts"],
            "orchestrator-ws-storage",
        ),
        (
            "storage-blob-data-contributor-silo-silo1-storage",
            [
                "read its data",
                "keep its silo store (DP secret and ledger, signing key, session memory)",
            ],
            "silo-silo1-storage",
        ),
        (
            "storage-blob-data-reader-models-container-global",
            [
                "read the global model",
                "poll the round announcements and secure-aggregation requests",
            ],
            "orchestrator-models-storage",
        ),
        (
            "storage-blob-data-contributor-models-container-silo-silo1",
            ["write its model update", "write its heartbeat and secure-aggregation replies"],
            "orchestrator-models-storage",
        ),
    ],
)
def test_a_silo_role_removed_breaks_its_movement(
    assignment: str, whats: list[str], resource: str
) -> None:
    records, outputs = run_of("eyes-off")
    records = without(records, named(SILO1_RA + assignment))
    broken = only_broken(records, outputs)
    assert [(m.step, m.what) for m in broken] == [(SILO1, what) for what in whats]
    for movement in broken:
        assert movement.resource is not None and movement.resource.name == resource
        assert not movement.role_ok and movement.network_ok


def test_silo_storage_without_its_endpoint_is_out_of_reach() -> None:
    records, outputs = run_of("eyes-off")
    records = without(records, lambda r: r.name.endswith(("pe-silo1-blob", "dns-silo1-blob")))
    broken = only_broken(records, outputs)
    # The silo's compute loses its way in (its uploader comes from its listed addresses).
    assert [(m.step, m.what) for m in broken] == [
        (SILO1, "read its data"),
        (SILO1, "keep its silo store (DP secret and ledger, signing key, session memory)"),
    ]
    for movement in broken:
        assert movement.role_ok and not movement.network_ok
        assert movement.resource is not None and movement.resource.name == "silo-silo1-storage"
        assert "comes from no address its rules admit" in movement.problem


def test_an_unpeered_silo_cannot_reach_the_model_store_endpoint() -> None:
    records, outputs = run_of("eyes-off")
    records = without(records, named("silo-silo1-network-from-hub"))
    broken = only_broken(records, outputs)
    # The hub (and the model store's endpoint there) is gone for the silo's compute.
    assert {m.step for m in broken} == {SILO1}
    models = [m for m in broken if m.what == "read the global model"]
    assert models and "not peered" in models[0].problem
    assert models[0].resource is not None and models[0].resource.name.endswith("pe-models-blob")


def test_a_private_workspace_unlinked_from_a_silo_vnet_is_out_of_reach() -> None:
    records, outputs = run_of("private")
    records = without(records, named("silo-silo2-network-link-api"))
    movement = the_broken(
        records,
        outputs,
        "silo silo2: agent",
        "talk to the workspace (job control, MLflow metrics)",
    )
    assert "refuses public network access" in movement.problem
    assert "privatelink.api.azureml.ms" in movement.fix


def test_a_silo_without_outbound_cannot_reach_entra_id() -> None:
    records, outputs = run_of("eyes-off")
    records = edited(
        records, named("silo-silo2-network-compute"), nested_set("defaultOutboundAccess", False)
    )
    broken = only_broken(records, outputs)
    assert [(m.step, m.what) for m in broken] == [
        ("silo silo2: agent", "reach Microsoft Entra ID and Azure Resource Manager"),
        ("silo silo2: agent", "pull the job image"),  # the registry is public
    ]
    assert broken[0].resource is not None and broken[0].resource.name == "silo-silo2-compute"


# ----- aggregate and the manifest ---------------------------------------------------------------


def test_aggregation_without_read_on_an_update_is_named() -> None:
    records, outputs = run_of("minimal", 3)
    records = without(
        records,
        named("ra-orchestrator-jobs-identity-storage-blob-data-reader-models-container-silo-silo2"),
    )
    broken = only_broken(records, outputs)
    assert [(m.step, m.what) for m in broken] == [
        ("orchestrator: agent", "read silo silo2's update"),
        ("orchestrator: agent", "read silo silo2's heartbeat and secure-aggregation replies"),
    ]
    for movement in broken:
        assert "Storage Blob Data Reader" in movement.problem
        assert movement.resource is not None
        assert movement.resource.name == "orchestrator-models-storage"


def test_aggregation_without_write_on_the_global_models_is_named() -> None:
    records, outputs = run_of("minimal")
    records = without(
        records,
        named(
            "ra-orchestrator-jobs-identity-storage-blob-data-contributor-models-container-global"
        ),
    )
    broken = only_broken(records, outputs)
    # The jobs identity holds no reader of its own on global: the test set goes with it.
    assert [(m.step, m.what) for m in broken] == [
        ("orchestrator: agent", "keep its run folder (lease id, round records, final model)"),
        ("orchestrator: agent", "read the test set"),
        ("orchestrator: agent", "write the global model"),
        ("orchestrator: agent", "announce the rounds and send secure-aggregation requests"),
    ]
    assert all("Storage Blob Data" in m.problem for m in broken)


def test_a_manifest_naming_a_compute_that_is_not_there_is_named() -> None:
    records, outputs = run_of("minimal")
    outputs["federation"]["silos"][1]["compute"] = "c-elsewhere"
    movement = the_broken(records, outputs, "silo silo2: agent", "run on its compute")
    assert "c-elsewhere" in movement.problem and "stack output" in movement.fix


def test_a_manifest_naming_an_unknown_datastore_is_named() -> None:
    records, outputs = run_of("minimal")
    outputs["federation"]["silos"][0]["update_datastore"] = "updates_nowhere"
    broken = only_broken(records, outputs)
    assert {(m.step, m.what) for m in broken} == {
        (SILO1, "write its model update"),
        (SILO1, "write its heartbeat and secure-aggregation replies"),
        ("orchestrator: agent", "read silo silo1's update"),
        ("orchestrator: agent", "read silo silo1's heartbeat and secure-aggregation replies"),
    }
    assert all("updates_nowhere" in m.problem for m in broken)


def test_a_silo_without_its_signing_key_grant_cannot_publish_it() -> None:
    """Secure aggregation over the model store: the silo writes its key in signing-keys;
    without that grant the job path names the movement broken."""
    records, outputs = run_of("minimal")
    keys = [
        r
        for r in records
        if r.type == "azure-native:authorization:RoleAssignment"
        and "signing key" in str(r.inputs.get("description"))
        and "silo1" in r.name
    ]
    assert len(keys) == 1
    found = moves([r for r in records if r is not keys[0]], outputs)
    broken = [m for m in found if not m.ok]
    assert [(m.step, m.what) for m in broken] == [
        (
            "silo silo1: agent",
            "publish its signing key, read its peers' (secure aggregation)",
        )
    ]
