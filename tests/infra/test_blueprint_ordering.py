"""Creation order Azure needs: the workspace after its identity's roles, one change at a time
on a VNet (subnets, hub-side peerings, private endpoints in one subnet), one write at a time
per private DNS zone, private computes after the workspace's private endpoint, and container
role assignments after their container."""

from __future__ import annotations

import itertools

import pytest

from blueprints.catalog import BLUEPRINTS
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
    assert len(before) == 7
    role_deps = {d for d in _deps(run, workspace) if d.startswith("ra-")}
    assert role_deps == before


@pytest.mark.parametrize("bp", [n for n in BLUEPRINT_NAMES if BLUEPRINTS[n].posture.networked])
def test_hub_side_peerings_are_chained(bp: str) -> None:
    run = blueprint_run(bp, 3)
    chain = [
        p
        for p in run.of_type("azure-native:network:VirtualNetworkPeering")
        if p.name.endswith("-from-hub")
    ]
    assert [p.name for p in chain] == [f"silo-silo{i}-network-from-hub" for i in (1, 2, 3)]
    # The first waits for the hub's last change: its last private endpoint, else its subnets.
    hub_endpoints = [
        e.name
        for e in run.of_type("azure-native:network:PrivateEndpoint")
        if e.name.startswith("orchestrator-hub-pe-")
    ]
    last = hub_endpoints[-1] if hub_endpoints else "orchestrator-hub-endpoints"
    assert last in _deps(run, chain[0])
    for previous, current in itertools.pairwise(chain):
        assert previous.name in _deps(run, current)


@pytest.mark.parametrize("bp", [n for n in BLUEPRINT_NAMES if BLUEPRINTS[n].posture.networked])
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
    # workspace storage blob + file, model store blob, then the workspace's own endpoint
    assert len(hub) == 4
    for previous, current in itertools.pairwise(hub):
        assert previous.name in _deps(run, current)


@pytest.mark.parametrize("bp", ["eyes-off", "private"])
def test_writes_to_each_private_dns_zone_form_one_chain(bp: str) -> None:
    run = blueprint_run(bp, 3)
    by_urn = run.by_urn()
    zones = {
        z.inputs["privateZoneName"] for z in run.of_type("azure-native:privatedns:PrivateZone")
    }
    for zone in zones:
        writers = [
            r
            for r in run.resources
            if (r.inputs.get("privateZoneName") == zone and r.type.endswith("VirtualNetworkLink"))
            or any(
                str(c.get("name")) == zone.replace(".", "-")
                for c in r.inputs.get("privateDnsZoneConfigs") or []
            )
        ]
        assert len(writers) >= 4, zone  # hub + 3 silos link to every zone
        # Registration order is creation order here; each writer waits for the one before.
        for previous, current in itertools.pairwise(writers):
            assert previous.urn in current.dependencies, (zone, previous.name, current.name)
        assert all(d in by_urn for w in writers for d in w.dependencies)


@pytest.mark.parametrize("bp", ["eyes-off", "private"])
def test_private_computes_wait_for_the_workspace_endpoint(bp: str) -> None:
    run = blueprint_run(bp, 2)
    for compute in run.of_type("azure-native:machinelearningservices:Compute"):
        assert "orchestrator-hub-dns-ws-amlworkspace" in _deps(run, compute), compute.name


def test_container_role_assignments_take_the_containers_id_as_scope() -> None:
    run = blueprint_run("minimal", 2)
    containers = {
        c.outputs["id"]: c.name for c in run.of_type("azure-native:storage:BlobContainer")
    }
    scoped = [
        r
        for r in run.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs["scope"] in containers
    ]
    # silos: own update + global + own signing key; jobs: global + each update; logs: jobs +
    # each silo; uploaders: each silo's data container and the test-set paths of global
    assert len(scoped) == 2 * 3 + (1 + 2) + (1 + 2) + (2 + 1)
    for assignment in scoped:
        assert containers[assignment.inputs["scope"]] in _deps(run, assignment)
