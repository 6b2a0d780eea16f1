"""The invariants over real blueprint runs: every blueprint passes, every break is named.

Breaks are made the two ways a real mistake would arrive: a resource added to the Pulumi
program (run under mocks), or a recorded property edited in a copy of the graph.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_azure_native import authorization

from blueprints.builder import build_sandbox
from blueprints.mock_runtime import MOCK_SUBSCRIPTION, RecordedResource, run_under_mocks
from blueprints.spec import example_spec, example_uploader_id
from policies import roles
from policies.access_matrix import access_entries
from policies.graph import WORKSPACE, ResourceGraph
from policies.invariants import INVARIANTS, check_all
from tests.infra.blueprint_runs import BLUEPRINT_NAMES, blueprint_run, find, modified

ROLE_DEFINITION = (
    f"/subscriptions/{MOCK_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
)


def broken_only(records: list[RecordedResource], outputs: dict[str, Any], invariant: str) -> list:
    results = check_all(records, outputs)
    others = {k: [str(v) for v in vs] for k, vs in results.items() if vs and k != invariant}
    assert not others, others
    assert results[invariant], f"{invariant} did not report the break"
    return results[invariant]


@pytest.mark.parametrize("silos", [1, 3])
@pytest.mark.parametrize("blueprint", BLUEPRINT_NAMES)
def test_every_blueprint_keeps_every_invariant(blueprint: str, silos: int) -> None:
    run = blueprint_run(blueprint, silos)
    results = check_all(run.resources, run.result)
    assert [i.id for i in INVARIANTS] == list(results)
    assert {k: [str(v) for v in vs] for k, vs in results.items() if vs} == {}


@pytest.mark.parametrize("blueprint", BLUEPRINT_NAMES)
def test_checks_see_the_whole_sandbox(blueprint: str) -> None:
    """The pass above is meaningful: grants, owners and computes were all resolved."""
    run = blueprint_run(blueprint, 3)
    graph = ResourceGraph.build(run.resources, run.result)
    assert graph.blueprint == blueprint
    assert sorted(graph.silo_names()) == ["silo1", "silo2", "silo3"]
    assert len(graph.silo_storage()) == 3 and len(graph.model_stores()) == 1
    storage_entries = [e for e in access_entries(graph) if e.account is not None]
    for silo in ("silo1", "silo2", "silo3"):
        on_own_storage = {
            e.principal
            for e in storage_entries
            if e.target_silo == silo and e.target_purpose == "silo-data"
        }
        uploader = f"external {example_uploader_id(silo)} (member-of={silo})"
        assert on_own_storage == {f"silo:{silo} identity", uploader}
        containers = {
            e.container for e in storage_entries if e.principal == f"silo:{silo} identity"
        }
        assert containers == {None, f"silo-{silo}", "global", "azureml", "signing-keys"}
    assert all(g.targets or "storageAccounts" not in g.scope for g in graph.grants)
    # Every grant resolves to an identity of the sandbox, except the deployer's as submitter
    # and the data uploaders'; HBI with AKS adds the workspace's system identity's storage
    # roles (Azure's rule 21).
    system = [g for g in graph.grants if g.principal.kind == "system-identity"]
    assert all(g.principal.node is not None and g.principal.node.type == WORKSPACE for g in system)
    assert len(system) == (2 if blueprint == "confidential" else 0)
    external = [g for g in graph.grants if g.principal.kind not in ("identity", "system-identity")]
    uploaders = {example_uploader_id(t) for t in ("silo1", "silo2", "silo3", "global")}
    submitters = {g.principal.principal_id for g in external if g.submitter}
    # The jump host (private, confidential) grants each submitter and uploader its way in.
    to_jump_host = [g for g in external if "-jump" in g.scope or "bastionHosts" in g.scope]
    assert bool(to_jump_host) == (blueprint in ("private", "confidential"))
    assert all(g.principal.principal_id in submitters | uploaders for g in to_jump_host)
    rest = [g for g in external if g not in to_jump_host]
    assert rest and all(g.submitter or g.principal.principal_id in uploaders for g in rest)
    assert {g.principal.principal_id for g in rest if not g.submitter} == uploaders


# ----- invariants 1 and 2: a role added to the program ---------------------------------------


def test_orchestrator_blob_reader_on_silo_storage_added_to_program_is_named() -> None:
    base = blueprint_run("eyes-off", 3)
    orchestrator = _workspace_identity(base.resources)
    (silo2_storage,) = find(base.resources, "StorageAccount", fl_sandbox_silo="silo2")
    spec = example_spec("eyes-off", 3)

    def program() -> dict[str, Any]:
        outputs = build_sandbox(spec)
        authorization.RoleAssignment(
            "orchestrator-reads-silo2",
            principal_id=orchestrator.outputs["principalId"],
            principal_type="ServicePrincipal",
            role_definition_id=ROLE_DEFINITION + roles.STORAGE_BLOB_DATA_READER,
            scope=silo2_storage.outputs["id"],
        )
        return outputs

    run = run_under_mocks(program)
    results = check_all(run.resources, run.result)
    (orch_violation,) = results["orchestrator-no-silo-access"]
    (data_violation,) = results["silo-data-access"]
    for violation in (orch_violation, data_violation):
        assert violation.resource_name == "orchestrator-reads-silo2"
        assert violation.resource_type == "azure-native:authorization:RoleAssignment"
        assert silo2_storage.inputs["accountName"] in violation.problem
    assert "Storage Blob Data Reader" in orch_violation.problem


def _workspace_identity(records: list[RecordedResource]) -> RecordedResource:
    """The workspace's own identity (the orchestrator's other one runs its jobs)."""
    (identity,) = [
        r
        for r in find(records, "UserAssignedIdentity", fl_sandbox_role="orchestrator")
        if "fl-sandbox-purpose" not in r.inputs["tags"]
    ]
    return identity


def _extra_assignment(
    base: list[RecordedResource],
    name: str,
    principal: str,
    guid: str,
    scope: str,
    description: str = "",
) -> list[RecordedResource]:
    template = find(base, "RoleAssignment")[0]
    inputs = {
        "principalId": principal,
        "roleDefinitionId": ROLE_DEFINITION + guid,
        "scope": scope,
        "description": description,
    }
    urn = template.urn.rsplit("::", 1)[0] + f"::{name}"
    return [
        *base,
        RecordedResource(urn, template.type, name, None, True, None, inputs, dict(inputs)),
    ]


def test_member_of_one_silo_on_another_silos_storage_is_named() -> None:
    base = blueprint_run("minimal", 3)
    (silo1_storage,) = find(base.resources, "StorageAccount", fl_sandbox_silo="silo1")
    records = _extra_assignment(
        base.resources,
        "custodian",
        "7a1e0c55-0000-4000-8000-000000000001",
        roles.STORAGE_BLOB_DATA_READER,
        silo1_storage.outputs["id"],
        "data custodian [member-of=silo2]",
    )
    (violation,) = broken_only(records, base.result, "silo-data-access")
    assert violation.resource_name == "custodian" and "silo 'silo1'" in violation.problem


# ----- invariant 3 ----------------------------------------------------------------------------


def test_silo_identity_on_another_silo_storage_is_named() -> None:
    base = blueprint_run("eyes-on", 3)
    (silo1,) = find(base.resources, "UserAssignedIdentity", fl_sandbox_silo="silo1")
    (silo3_storage,) = find(base.resources, "StorageAccount", fl_sandbox_silo="silo3")
    records = _extra_assignment(
        base.resources,
        "silo1-on-silo3",
        silo1.outputs["principalId"],
        roles.READER,
        silo3_storage.outputs["id"],
    )
    results = check_all(records, base.result)
    broken = {k: [v.resource_name for v in vs] for k, vs in results.items() if vs}
    # Isolation (3), and least privilege (7): FL compute identities hold data roles only.
    assert broken == {
        "cross-silo-isolation": ["silo1-on-silo3"],
        "compute-least-privilege": ["silo1-on-silo3"],
    }
    assert "silo3" in results["cross-silo-isolation"][0].problem


def test_silo_identity_on_whole_model_store_is_named() -> None:
    base = blueprint_run("eyes-off", 3)
    (silo1,) = find(base.resources, "UserAssignedIdentity", fl_sandbox_silo="silo1")
    (models,) = find(base.resources, "StorageAccount", fl_sandbox_purpose="models")
    records = _extra_assignment(
        base.resources,
        "silo1-on-models",
        silo1.outputs["principalId"],
        roles.STORAGE_BLOB_DATA_READER,
        models.outputs["id"],
    )
    (violation,) = broken_only(records, base.result, "cross-silo-isolation")
    assert violation.resource_name == "silo1-on-models" and "whole model store" in violation.problem


# ----- invariant 4 ----------------------------------------------------------------------------


def test_shared_key_access_turned_on_is_named() -> None:
    base = blueprint_run("minimal", 3)
    (storage,) = find(base.resources, "StorageAccount", fl_sandbox_silo="silo2")
    records = modified(base.resources, storage, lambda p: p.update(allowSharedKeyAccess=True))
    (violation,) = broken_only(records, base.result, "storage-hardening")
    assert violation.resource_name == storage.name
    assert violation.arm_name == storage.inputs["accountName"]
    assert "allowSharedKeyAccess" in violation.problem


def test_eyes_off_silo_storage_open_to_the_internet_is_named() -> None:
    base = blueprint_run("eyes-off", 3)
    (storage,) = find(base.resources, "StorageAccount", fl_sandbox_silo="silo3")
    # It admits only its uploaders' addresses; opening the firewall to everyone is named.
    assert storage.inputs["networkRuleSet"]["ipRules"]

    def open_to_all(props: dict) -> None:
        props["networkRuleSet"] = {**props["networkRuleSet"], "defaultAction": "Allow"}

    records = modified(base.resources, storage, open_to_all)
    (violation,) = broken_only(records, base.result, "storage-hardening")
    assert (
        violation.arm_name == storage.inputs["accountName"]
        and "publicNetworkAccess" in violation.problem
    )


def test_eyes_off_silo_storage_without_private_endpoint_is_named() -> None:
    base = blueprint_run("eyes-off", 3)
    (storage,) = find(base.resources, "StorageAccount", fl_sandbox_silo="silo1")
    records = [
        r
        for r in base.resources
        if not (r.type.endswith(":PrivateEndpoint") and storage.outputs["id"] in str(r.inputs))
    ]
    assert len(records) == len(base.resources) - 1
    (violation,) = broken_only(records, base.result, "storage-hardening")
    assert (
        violation.arm_name == storage.inputs["accountName"]
        and "private endpoint" in violation.problem
    )


# ----- invariant 5 ----------------------------------------------------------------------------


def _silo_compute(records: list[RecordedResource], silo: str) -> RecordedResource:
    (compute,) = find(records, "Compute", fl_sandbox_silo=silo)
    return compute


def test_silo_compute_in_another_silos_subnet_is_named() -> None:
    base = blueprint_run("eyes-on", 3)
    other_subnet = _silo_compute(base.resources, "silo2").inputs["properties"]["properties"][
        "subnet"
    ]
    compute = _silo_compute(base.resources, "silo1")

    def move(props: dict[str, Any]) -> None:
        props["properties"]["properties"]["subnet"] = copy.deepcopy(other_subnet)

    (violation,) = broken_only(
        modified(base.resources, compute, move), base.result, "compute-placement"
    )
    assert violation.resource_name == compute.name and "silo2" in violation.problem


def test_silo_compute_kept_warm_is_named() -> None:
    base = blueprint_run("minimal", 1)
    compute = _silo_compute(base.resources, "silo1")

    def warm(props: dict[str, Any]) -> None:
        props["properties"]["properties"]["scaleSettings"]["minNodeCount"] = 1

    (violation,) = broken_only(
        modified(base.resources, compute, warm), base.result, "compute-placement"
    )
    assert violation.resource_name == compute.name and "1 node(s)" in violation.problem


def test_eyes_off_compute_with_public_ip_is_named() -> None:
    base = blueprint_run("eyes-off", 1)
    compute = _silo_compute(base.resources, "silo1")

    def expose(props: dict[str, Any]) -> None:
        props["properties"]["properties"]["enableNodePublicIp"] = True

    (violation,) = broken_only(
        modified(base.resources, compute, expose), base.result, "compute-placement"
    )
    assert "enableNodePublicIp" in violation.problem


def test_silo_compute_running_as_orchestrator_is_named() -> None:
    base = blueprint_run("eyes-on", 3)
    orchestrator = _workspace_identity(base.resources)
    compute = _silo_compute(base.resources, "silo3")

    def swap(props: dict[str, Any]) -> None:
        props["identity"]["userAssignedIdentities"] = {orchestrator.outputs["id"]: {}}

    results = check_all(modified(base.resources, compute, swap), base.result)
    (violation,) = results["compute-placement"]
    assert violation.resource_name == compute.name and "orchestrator" in violation.problem
    # Running as the workspace's identity also breaks least privilege (invariant 7).
    assert {v.resource_name for v in results["compute-least-privilege"]} >= {compute.name}


def test_silo_compute_in_another_region_is_named() -> None:
    base = blueprint_run("minimal", 3)
    compute = _silo_compute(base.resources, "silo2")
    region = base.result["federation"]["silos"][0]["region"]
    assert region != compute.inputs["properties"]["computeLocation"]

    def move(props: dict[str, Any]) -> None:
        props["properties"]["computeLocation"] = region

    records = modified(base.resources, compute, move)
    (violation,) = broken_only(records, base.result, "compute-placement")
    assert violation.resource_name == compute.name and "region" in violation.problem


# ----- invariant 6 ----------------------------------------------------------------------------


def test_connection_string_in_outputs_is_named() -> None:
    base = blueprint_run("minimal", 1)
    outputs = {
        **base.result,
        "models_connection": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0",
    }
    (violation,) = broken_only(base.resources, outputs, "no-secret-outputs")
    assert violation.resource_name == "outputs.models_connection"


def test_orchestrator_compute_with_public_ip_in_eyes_off_is_named() -> None:
    base = blueprint_run("eyes-off", 1)
    (compute,) = [
        c
        for c in find(base.resources, "Compute", fl_sandbox_role="orchestrator")
        if c.name == "orchestrator-compute"
    ]

    def expose(props: dict[str, Any]) -> None:
        props["properties"]["properties"]["enableNodePublicIp"] = True

    records = modified(base.resources, compute, expose)
    (violation,) = broken_only(records, base.result, "compute-placement")
    assert violation.resource_name == compute.name and "enableNodePublicIp" in violation.problem
