"""The CrossGuard pack's policies, called the way CrossGuard calls them (``validate``).

Resources are handed over as CrossGuard does at deployment: outputs only (no
``resourceGroupName``, no ``id``), with the resource group reachable through property
dependencies, and the stack outputs on the root stack resource.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from blueprints.mock_runtime import RecordedResource
from policies import roles
from policies.crossguard.pack_policies import (
    POLICIES,
    RESOURCE_POLICIES,
    STACK_POLICIES,
)
from policies.invariants import INVARIANTS
from tests.infra import policy_graphs as g

PACK_DIR = Path(__file__).resolve().parents[2] / "policies" / "crossguard"
STACK_URN = "urn:pulumi:dev::fl-sandbox::pulumi:pulumi:Stack::fl-sandbox-dev"
RG_TYPE = "azure-native:resources:ResourceGroup"


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def as_deployed(records: list[RecordedResource], outputs: dict[str, Any]) -> list[PolicyResource]:
    """What CrossGuard passes a stack policy: outputs only, groups via property deps."""
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
    deployed = [group, stack]
    for record in records:
        props = {k: v for k, v in record.outputs.items() if k not in ("resourceGroupName", "id")}
        deps = {"resourceGroupName": [group]} if "resourceGroupName" in record.inputs else {}
        deployed.append(
            PolicyResource(
                record.type, props, record.urn, record.name, _opts(), None, None, [], deps
            )
        )
    return deployed


def run_stack_policies(
    resources: list[PolicyResource], config: dict[str, Any] | None = None
) -> dict[str, list[tuple[str, str | None]]]:
    reported: dict[str, list[tuple[str, str | None]]] = {}
    for policy in STACK_POLICIES:
        found = reported.setdefault(policy.name, [])
        args = StackValidationArgs(resources, config or {})
        policy.validate(args, lambda message, urn, found=found: found.append((message, urn)))
    return reported


def test_pack_has_one_stack_policy_per_invariant_and_unique_names() -> None:
    assert len(STACK_POLICIES) == len(INVARIANTS)
    assert len({p.name for p in POLICIES}) == len(POLICIES)
    manifest = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    venv = (PACK_DIR / manifest["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == PACK_DIR.parents[1] / ".venv"


@pytest.mark.parametrize("private", [False, True])
def test_correct_deployed_sandbox_passes(private: bool) -> None:
    outputs = {"federation": g.federation(private)}
    reported = run_stack_policies(as_deployed(g.sandbox(private=private), outputs))
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
