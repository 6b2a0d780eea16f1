"""Rule 45: every peering records its remote VNet's ranges and asks Azure to sync, so a range
added to the hub later (the jump host on a deployed stack) reaches every silo."""

from __future__ import annotations

import pytest

from policies.azure_rules import peering_sync as rule
from tests.infra.blueprint_runs import blueprint_run
from tests.infra.breaks import edited, graph, nested_set, typed


@pytest.mark.parametrize("blueprint", ["eyes-on", "hybrid", "eyes-off", "private", "confidential"])
def test_every_peering_records_the_remote_ranges_and_syncs(blueprint: str) -> None:
    run = blueprint_run(blueprint, 2)
    peerings = [r for r in run.resources if r.type.endswith(":VirtualNetworkPeering")]
    assert len(peerings) == 4
    assert all(p.inputs["syncRemoteAddressSpace"] == "true" for p in peerings)
    assert rule.check(graph(run.resources, run.result)) == []


def test_the_jump_host_range_is_in_each_silo_peering_to_the_hub() -> None:
    run = blueprint_run("private", 2)
    to_hub = [
        r
        for r in run.resources
        if r.type.endswith(":VirtualNetworkPeering") and r.name.endswith("-to-hub")
    ]
    assert to_hub
    for peering in to_hub:
        ranges = peering.inputs["remoteVirtualNetworkAddressSpace"]["addressPrefixes"]
        assert "10.255.0.0/25" in ranges and len(ranges) == 2


def test_a_peering_that_misses_the_hub_s_new_range_is_named() -> None:
    run = blueprint_run("private", 2)
    broken = edited(
        run.resources,
        typed("VirtualNetworkPeering", "silo1-network-to-hub"),
        nested_set("remoteVirtualNetworkAddressSpace.addressPrefixes", ["10.0.0.0/16"]),
    )
    (found,) = rule.check(graph(broken, run.result))
    assert found.resource_name.endswith("silo-silo1-network-to-hub")
    assert "10.255.0.0/25" in found.problem and "sync_remote_address_space" in found.fix


def test_a_peering_that_does_not_sync_is_named() -> None:
    run = blueprint_run("eyes-off", 2)
    broken = edited(
        run.resources,
        typed("VirtualNetworkPeering", "silo2-network-from-hub"),
        nested_set("syncRemoteAddressSpace", None),
    )
    (found,) = rule.check(graph(broken, run.result))
    assert found.resource_name.endswith("silo-silo2-network-from-hub")
    assert "sync" in found.problem
