"""The CrossGuard pack's policies, called the way CrossGuard calls them (``validate``).

Resources are handed over as CrossGuard does at deployment: outputs only (no
``resourceGroupName``, no ``id``), with the resource group reachable through property
dependencies, and the stack outputs on the root stack resource.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from blueprints.mock_runtime import RecordedResource
from policies import roles
from policies.azure_rules import RULES
from policies.crossguard.pack_policies import (
    POLICIES,
    RESOURCE_POLICIES,
    STACK_POLICIES,
)
from policies.graph import Node
from policies.invariants import INVARIANTS
from tests.infra import policy_graphs as g
from tests.infra.blueprint_runs import BLUEPRINT_NAMES, blueprint_run, find
from tests.infra.known_gaps import marked
from tests.infra.kubernetes_runs import stack_run

PACK_DIR = Path(__file__).resolve().parents[2] / "policies" / "crossguard"
STACK_URN = "urn:pulumi:dev::fl-sandbox::pulumi:pulumi:Stack::fl-sandbox-dev"
RG_TYPE = "azure-native:resources:ResourceGroup"
PARENT_NAME_INPUTS = {
    "resourceGroupName": RG_TYPE,
    "accountName": "azure-native:storage:StorageAccount",
    "virtualNetworkName": "azure-native:network:VirtualNetwork",
    "workspaceName": "azure-native:machinelearningservices:Workspace",
    "privateZoneName": "azure-native:privatedns:PrivateZone",
    "privateEndpointName": "azure-native:network:PrivateEndpoint",
    "resourceName": "azure-native:containerservice:ManagedCluster",  # an AKS agent pool's
    "clusterName": (
        "azure-native:containerservice:ManagedCluster",
        "azure-native:kubernetes:ConnectedCluster",
    ),
}


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def as_deployed(records: list[RecordedResource], outputs: dict[str, Any]) -> list[PolicyResource]:
    """What CrossGuard passes a stack policy: outputs without ids or parent-name inputs
    (``resourceGroupName``, ``accountName``, ``virtualNetworkName``...), which arrive as
    property dependencies on the named resource instead; stack outputs on the stack."""
    arm_names = {r.urn: Node.of(r).arm_name for r in records}
    group = PolicyResource(
        RG_TYPE,
        {"name": g.RG},
        f"urn:pulumi:dev::fl-sandbox::{RG_TYPE}::rg",
        "rg",
        _opts(),
        None,
        None,
        [],
        {},
    )
    stack = PolicyResource(
        "pulumi:pulumi:Stack", outputs, STACK_URN, "fl-sandbox-dev", _opts(), None, None, [], {}
    )
    deployed = {r.urn: _stripped(r, arm_names[r.urn]) for r in records}
    records_by_urn = {r.urn: r for r in records}
    by_name = {
        (records_by_urn[urn].type, arm_names[urn]): resource for urn, resource in deployed.items()
    }
    by_name.setdefault((RG_TYPE, g.RG), group)
    for record in records:
        for key, parent_types in PARENT_NAME_INPUTS.items():
            types = parent_types if isinstance(parent_types, tuple) else (parent_types,)
            parent = next(
                (
                    by_name[(t, record.inputs.get(key))]
                    for t in types
                    if (t, record.inputs.get(key)) in by_name
                ),
                None,
            )
            if parent is not None:
                deployed[record.urn].property_dependencies[key] = [parent]
        deployed[record.urn].dependencies.extend(
            deployed[d] for d in record.dependencies if d in deployed
        )
    return [group, stack, *deployed.values()]


def _stripped(record: RecordedResource, arm_name: str) -> PolicyResource:
    props = {
        k: v
        for k, v in record.outputs.items()
        if k != "id" and not (k.endswith("Name") and k != "name")
    }
    props["name"] = arm_name
    return PolicyResource(record.type, props, record.urn, record.name, _opts(), None, None, [], {})


def run_stack_policies(
    resources: list[PolicyResource], config: dict[str, Any] | None = None
) -> dict[str, list[tuple[str, str | None]]]:
    reported: dict[str, list[tuple[str, str | None]]] = {}
    for policy in STACK_POLICIES:
        found = reported.setdefault(policy.name, [])
        args = StackValidationArgs(resources, config or {})
        policy.validate(args, lambda message, urn, found=found: found.append((message, urn)))
    return reported


def invariant_policies(reported: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Only the isolation invariants' reports (hand-built graphs are invariant fixtures)."""
    names = {f"fl-sandbox-{i.number}-{i.id}" for i in INVARIANTS}
    return {k: v for k, v in reported.items() if k in names}


def test_pack_has_one_stack_policy_per_check_and_unique_names() -> None:
    assert len(STACK_POLICIES) == len(INVARIANTS) + len(RULES) + 1  # + the job path
    assert len({p.name for p in POLICIES}) == len(POLICIES)
    manifest = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    venv = (PACK_DIR / manifest["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == (PACK_DIR.parents[1] / ".venv").resolve()


@pytest.mark.parametrize("private", [False, True])
def test_correct_deployed_sandbox_passes(private: bool) -> None:
    outputs = {"federation": g.federation(private)}
    reported = run_stack_policies(as_deployed(g.sandbox(private=private), outputs))
    reported = invariant_policies(reported)
    assert len(reported) == len(INVARIANTS)
    assert all(not found for found in reported.values()), reported


def test_orchestrator_grant_on_silo_storage_is_reported_with_its_urn() -> None:
    leak = g.assignment(
        "leak", g.ORCH_PRINCIPAL, roles.STORAGE_BLOB_DATA_READER, g.storage_id("stbeta")
    )
    records = [*g.sandbox(), leak]
    reported = run_stack_policies(as_deployed(records, {"federation": g.federation()}))
    (message, urn) = reported["fl-sandbox-2-orchestrator-no-silo-access"][0]
    assert urn == leak.urn and "stbeta" in message


def test_resource_group_scope_is_resolved_through_property_dependencies() -> None:
    wide = g.assignment("wide", "0ther", roles.CONTRIBUTOR, f"{g.SUB}/resourceGroups/{g.RG}")
    records = [*g.sandbox(), wide]
    reported = run_stack_policies(as_deployed(records, {"federation": g.federation()}))
    urns = {urn for _, urn in reported["fl-sandbox-1-silo-data-access"]}
    assert urns == {wide.urn}


def test_blueprint_from_policy_config_enables_private_checks() -> None:
    records = g.sandbox(private=False)  # public storage, no private endpoints
    reported = run_stack_policies(as_deployed(records, {}), {"blueprint": "eyes-off"})
    messages = [m for m, _ in reported["fl-sandbox-4-storage-hardening"]]
    assert any("publicNetworkAccess" in m and "stalpha" in m for m in messages)
    assert any("private endpoint" in m for m in messages)


def test_secret_in_stack_outputs_is_reported() -> None:
    outputs = {"federation": g.federation(), "conn": "DefaultEndpointsProtocol=https;AccountKey=x"}
    reported = run_stack_policies(as_deployed(g.sandbox(), outputs))
    (message, _), *_ = reported["fl-sandbox-6-no-secret-outputs"]
    assert "conn" in message


def _validate_resource(record: RecordedResource, config: dict[str, Any] | None = None) -> list[str]:
    messages: list[str] = []
    for policy in RESOURCE_POLICIES:
        args = ResourceValidationArgs(
            record.type, record.inputs, record.urn, record.name, _opts(), None, config or {}
        )
        policy.validate(args, lambda message, _urn: messages.append(message))
    return messages


def test_resource_policies_pass_safe_resources() -> None:
    for record in g.sandbox(private=True):
        assert _validate_resource(record, {"blueprint": "eyes-off"}) == []


def test_shared_key_storage_is_stopped_before_creation() -> None:
    (account,) = [
        r
        for r in g.edited(g.sandbox(), "stws-logical", allowSharedKeyAccess=True)
        if r.name == "stws-logical"
    ]
    (message,) = _validate_resource(account)
    assert "allowSharedKeyAccess" in message and "stws" in message


def test_always_on_or_public_compute_is_stopped_before_creation() -> None:
    compute = g.compute("alpha", scaleSettings={"minNodeCount": 2}, enableNodePublicIp=True)
    messages = _validate_resource(compute, {"blueprint": "eyes-off"})
    assert any("2 node(s)" in m for m in messages)
    assert any("enableNodePublicIp" in m for m in messages)
    assert [m for m in _validate_resource(compute) if "enableNodePublicIp" in m] == []


@pytest.mark.parametrize("blueprint", marked(list(BLUEPRINT_NAMES)))
def test_real_blueprint_passes_as_deployed(blueprint: str) -> None:
    run = blueprint_run(blueprint, 3)
    reported = run_stack_policies(as_deployed(run.resources, run.result))
    assert all(not found for found in reported.values()), reported


def _existing_accounts_as_read(
    records: list[RecordedResource], **settings: Any
) -> list[RecordedResource]:
    """Offline, an existing account read by id has no properties; deployed, CrossGuard sees
    its real ones. Here: hardened as the sandbox's own accounts, then ``settings``."""
    managed = next(r for r in records if r.type.endswith(":StorageAccount") and not r.read)
    hardened = {
        k: v
        for k, v in managed.outputs.items()
        if k not in ("id", "tags", "location") and not k.lower().endswith("name")
    }
    return [
        replace(r, outputs={**hardened, **r.outputs, **settings}) if r.read else r for r in records
    ]


@pytest.mark.parametrize("blueprint", marked(["hybrid", "confidential"]))
def test_kubernetes_sample_stacks_pass_as_deployed(blueprint: str) -> None:
    """Arc (onboarded and existing) and AKS silos, whose extensions no longer name their
    cluster once deployed, and an existing storage account its owner has hardened."""
    run = stack_run(blueprint)
    records = _existing_accounts_as_read(run.resources)
    reported = run_stack_policies(as_deployed(records, run.result))
    assert all(not found for found in reported.values()), reported


def test_an_existing_account_left_open_is_reported_as_deployed() -> None:
    """fl-sandbox does not manage an existing account, but CrossGuard checks its real
    settings: shared keys left on would let keys bypass the silo's RBAC."""
    run = stack_run("confidential")
    records = _existing_accounts_as_read(run.resources, allowSharedKeyAccess=True)
    reported = run_stack_policies(as_deployed(records, run.result))
    (message, urn), *_ = reported["fl-sandbox-4-storage-hardening"]
    assert "sthospbtraining" in message and "allowSharedKeyAccess" in message
    assert urn.endswith("silo-hospital-b-storage")


def test_real_blueprint_breaks_of_rules_and_job_path_are_reported_as_deployed() -> None:
    """Rules and the job path read dependencies and outputs the way CrossGuard gives them."""
    run = blueprint_run("eyes-off", 2)
    chain_link = next(r for r in run.resources if r.name == "silo-silo2-network-link-blob")
    no_order = [
        replace(r, dependencies=()) if r.urn == chain_link.urn else r for r in run.resources
    ]
    ra = "ra-silo-silo1-identity-storage-blob-data-reader-models-container-global"
    no_read = [r for r in no_order if r.name != ra]
    reported = run_stack_policies(as_deployed(no_read, run.result))
    dns = reported["fl-sandbox-azure-4-dns-writes-serialised"]
    assert dns and all("privatelink.blob.core.windows.net" in m for m, _ in dns)
    (message, _), *_ = reported["fl-sandbox-job-path"]
    assert "read the global model" in message and "silo silo1" in message


def test_real_blueprint_break_is_reported_as_deployed() -> None:
    run = blueprint_run("eyes-off", 3)
    (orchestrator,) = [
        r
        for r in find(run.resources, "UserAssignedIdentity", fl_sandbox_role="orchestrator")
        if "fl-sandbox-purpose" not in r.inputs["tags"]
    ]
    (storage,) = find(run.resources, "StorageAccount", fl_sandbox_silo="silo1")
    leak = g.assignment(
        "orchestrator-reads-silo1",
        orchestrator.outputs["principalId"],
        roles.STORAGE_BLOB_DATA_READER,
        storage.outputs["id"],
    )
    (compute,) = find(run.resources, "Compute", fl_sandbox_silo="silo2")
    (other,) = find(run.resources, "Compute", fl_sandbox_silo="silo3")
    moved = [
        r
        if r.urn != compute.urn
        else replace(r, outputs={**r.outputs, "properties": other.outputs["properties"]})
        for r in run.resources
    ]
    reported = run_stack_policies(as_deployed([*moved, leak], run.result))
    assert [urn for _, urn in reported["fl-sandbox-2-orchestrator-no-silo-access"]] == [leak.urn]
    placement = reported["fl-sandbox-5-compute-placement"]
    # silo3's properties carry its subnet and its region: both are named, on silo2's compute.
    assert {urn for _, urn in placement} == {compute.urn} and len(placement) == 2
    assert all("silo3" in message or "francecentral" in message for message, _ in placement)


def test_pack_entry_point_serves_every_policy_over_grpc() -> None:
    """Start the pack as Pulumi does and ask it, over loopback gRPC, what it enforces."""
    process = subprocess.Popen(
        [sys.executable, str(PACK_DIR / "__main__.py")],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline().strip())  # type: ignore[union-attr]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(
                empty_pb2.Empty(), timeout=30
            )
    finally:
        process.kill()
        process.wait(timeout=30)
    assert info.name == "fl-sandbox-isolation"
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in POLICIES)
