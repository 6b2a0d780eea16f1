"""Rule 42: subnets, private endpoints and peerings of one VNet form one chain, on the silo side
(subnets -> peering to the hub -> endpoints) and on the hub side (the hub's endpoints -> each
silo's hub-side peering -> the jump host's subnets)."""

from __future__ import annotations

import pytest

from blueprints.catalog import BLUEPRINT_NAMES
from components.vocabulary.arm_types import VNET_PEERING
from policies.azure_rules import vnet_serialised as rule
from tests.infra.breaks import graph, named, run_of, undepended


@pytest.mark.parametrize("blueprint", BLUEPRINT_NAMES)
def test_every_blueprint_changes_each_vnet_one_step_at_a_time(blueprint: str) -> None:
    records, outputs = run_of(blueprint, 3)
    assert rule.check(graph(records, outputs)) == []


def test_each_silo_vnet_chains_subnets_peering_and_endpoints() -> None:
    records, outputs = run_of("eyes-off", 2)
    g = graph(records, outputs)
    writers = rule.writers(g)
    silo = next(nodes for urn, nodes in writers.items() if "silo-silo1" in urn)
    kinds = sorted(
        (sum(1 for o in silo if g.waits_for(n, o)), n.type.rsplit(":", 1)[-1]) for n in silo
    )
    assert [k for _, k in kinds[:3]] == ["Subnet", "Subnet", "VirtualNetworkPeering"]
    assert {k for _, k in kinds[3:]} == {"PrivateEndpoint"}


def test_a_peering_racing_a_subnet_is_refused_naming_it() -> None:
    records, outputs = run_of("eyes-off", 2)
    broken = undepended(records, named("silo-silo1-network-to-hub"), named("-network-endpoints"))
    found = rule.check(graph(broken, outputs))
    assert found and any(v.resource_name == "silo-silo1-network-to-hub" for v in found)
    assert all("Azure refuses parallel operations on one VNet" in v.problem for v in found)


def test_a_hub_peering_racing_the_hubs_endpoints_is_refused() -> None:
    records, outputs = run_of("private", 2)
    first = [
        r for r in records if r.type == VNET_PEERING and r.name == "silo-silo1-network-from-hub"
    ]
    assert first
    broken = undepended(
        records, named(first[0].name), lambda r: r.name.startswith("orchestrator-hub-pe-")
    )
    found = rule.check(graph(broken, outputs))
    assert any(v.resource_name == "silo-silo1-network-from-hub" for v in found)
