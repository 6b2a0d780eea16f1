"""Rule 44 and the silo endpoints' NSG: a silo's private endpoints admit HTTPS from its own
compute subnet (and its uploaders' route) only, and the NSG is enforced, because a subnet of
private endpoints ignores its NSG unless network policies are enabled."""

from __future__ import annotations

import pytest

from policies.azure_rules import endpoint_nsg as rule
from policies.graph import COMPUTE
from policies.job_path import job_path
from policies.network_paths import compute_origin, reach
from tests.infra.blueprint_runs import blueprint_run
from tests.infra.breaks import edited, graph, nested_set, typed
from tests.infra.helpers import blueprint_spec, run_spec


@pytest.mark.parametrize("blueprint", ["eyes-on", "eyes-off", "private", "confidential"])
def test_every_silo_endpoint_subnet_enforces_its_nsg(blueprint: str) -> None:
    run = blueprint_run(blueprint, 2)
    assert rule.check(graph(run.resources, run.result)) == []


def test_policies_off_leave_the_nsg_without_effect_and_are_refused() -> None:
    run = blueprint_run("eyes-off", 2)
    broken = edited(
        run.resources,
        typed("Subnet", "silo2-network-endpoints"),
        nested_set("privateEndpointNetworkPolicies", "Disabled"),
    )
    g = graph(broken, run.result)
    (found,) = rule.check(g)
    assert found.resource_name.endswith("silo-silo2-network-endpoints")
    assert "NetworkSecurityGroupEnabled" in found.fix
    # And the network model agrees: with the NSG not applied, the hub reaches silo2's data.
    storage = next(a for a in g.silo_storage() if a.name == "silo-silo2-storage")
    hub = next(c for c in g.of_type(COMPUTE) if c.name == "orchestrator-compute")
    assert reach(g, compute_origin(g, hub), storage, "blob").ok


@pytest.mark.parametrize("blueprint", ["eyes-off", "private"])
def test_the_hub_has_no_network_path_to_silo_data(blueprint: str) -> None:
    run = blueprint_run(blueprint, 2)
    g = graph(run.resources, run.result)
    hub_computes = [c for c in g.of_type(COMPUTE) if c.name.startswith("orchestrator-")]
    assert hub_computes
    for account in g.silo_storage():
        for compute in hub_computes:
            path = reach(g, compute_origin(g, compute), account, "blob")
            assert not path.ok and "DenyOtherVnetInbound" in path.problem, (compute.name, path)


def test_an_endpoint_nsg_that_forgets_the_silo_compute_breaks_its_round() -> None:
    run = blueprint_run("eyes-off", 2)

    def drop_compute_rule(props: dict) -> None:
        props["securityRules"] = [
            r for r in props["securityRules"] if r["name"] != "AllowSiloCompute"
        ]

    broken = edited(
        run.resources,
        typed("NetworkSecurityGroup", "silo1-network-endpoints-nsg"),
        drop_compute_rule,
    )
    bad = [m for m in job_path(graph(broken, run.result)) if not m.ok]
    assert bad and {m.step for m in bad} == {"silo silo1: agent"}
    assert all("DenyOtherVnetInbound" in m.problem for m in bad)
    assert all(m.resource is not None and m.resource.name.endswith("endpoints-nsg") for m in bad)


def test_a_silo_in_a_region_without_endpoint_nsgs_is_refused() -> None:
    """Learn lists regions where an NSG does not apply to private endpoints; there the wall
    the job path counts on does not exist."""
    run = blueprint_run("eyes-off", 2)
    vnet = next(
        r for r in run.resources if r.type.endswith(":VirtualNetwork") and "silo2" in r.name
    )
    moved = edited(
        run.resources,
        lambda r: r.urn == vnet.urn,
        nested_set("location", "westindia"),
    )
    (found,) = rule.check(graph(moved, run.result))
    assert found.resource_name.endswith("silo-silo2-network-endpoints")
    assert "westindia" in found.problem and "region" in found.fix


@pytest.mark.parametrize("blueprint", ["private", "confidential"])
def test_without_a_jump_host_nobody_on_the_hub_can_seed_a_silo(blueprint: str) -> None:
    """The endpoints NSG refuses every other VNet address (Azure's VirtualNetwork tag covers
    the hub, peered networks and VPN clients): seeding from the hub is broken, and the fix
    is the jump host, whose subnet the NSG admits."""
    spec = blueprint_spec(blueprint, 2).model_copy(update={"jump_host": None})
    run = run_spec(spec)
    seeds = [
        m for m in job_path(graph(run.resources, run.result)) if m.step.startswith("seed silo")
    ]
    assert seeds and all(m.status == "broken" for m in seeds)
    assert all("DenyOtherVnetInbound" in m.problem for m in seeds)
    assert all("fl-sandbox:jumpHost" in m.fix for m in seeds)
    with_host = blueprint_run(blueprint, 2)  # example_spec builds the jump host
    seeds = [
        m
        for m in job_path(graph(with_host.resources, with_host.result))
        if m.step.startswith("seed silo")
    ]
    assert seeds and all(m.status == "ok" for m in seeds), [m.problem for m in seeds]
