"""Creation order Azure needs: the workspace after its identity's roles, one change at a time
on a VNet (subnets, hub-side peerings, private endpoints in one subnet)."""

from __future__ import annotations

import itertools

import pytest

from blueprints.mock_runtime import MockRun, RecordedResource
from components.permissions import access_table
from tests.infra.helpers import BLUEPRINT_NAMES, blueprint_run


def _deps(run: MockRun, resource: RecordedResource) -> set[str]:
    by_urn = run.by_urn()
    return {by_urn[d].name for d in resource.dependencies if d in by_urn}


@pytest.mark.parametrize("bp", BLUEPRINT_NAMES)
def test_workspace_waits_for_its_identity_roles(bp: str) -> None:
    run = blueprint_run(bp, 1)
    (workspace,) = run.of_type("azure-native:machinelearningservices:Workspace")
    before = {g.resource_name for g in access_table(["silo1"]) if g.before_workspace}
    assert len(before) == 6
    role_deps = {d for d in _deps(run, workspace) if d.startswith("ra-")}
    assert role_deps == before


@pytest.mark.parametrize("bp", ["eyes-on", "eyes-off"])
def test_hub_side_peerings_are_chained(bp: str) -> None:
    run = blueprint_run(bp, 3)
    chain = [
        p
        for p in run.of_type("azure-native:network:VirtualNetworkPeering")
        if p.name.endswith("-from-hub")
    ]
    assert [p.name for p in chain] == [f"silo-silo{i}-network-from-hub" for i in (1, 2, 3)]
    assert "orchestrator-hub-endpoints" in _deps(run, chain[0])
    for previous, current in itertools.pairwise(chain):
        assert previous.name in _deps(run, current)


@pytest.mark.parametrize("bp", ["eyes-on", "eyes-off"])
def test_subnets_of_one_vnet_are_created_one_after_the_other(bp: str) -> None:
    run = blueprint_run(bp, 3)
    subnets = run.of_type("azure-native:network:Subnet")
    for subnet in subnets:
        if subnet.inputs["subnetName"] == "endpoints":
            assert subnet.name.replace("-endpoints", "-compute") in _deps(run, subnet)


def test_private_endpoints_in_one_subnet_are_chained() -> None:
    run = blueprint_run("eyes-off", 1)
    hub = [
        e
        for e in run.of_type("azure-native:network:PrivateEndpoint")
        if e.name.startswith("orchestrator-hub-")
    ]
    assert len(hub) == 3
    for previous, current in itertools.pairwise(hub):
        assert previous.name in _deps(run, current)
