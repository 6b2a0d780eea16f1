"""Rule 43: an AKS cluster leaves through its subnet's NAT gateway (outboundType
userAssignedNATGateway) where the subnet has one, and never claims one it lacks."""

from __future__ import annotations

from blueprints.plan import _plain
from components.vocabulary.arm_types import MANAGED_CLUSTER
from policies.azure_rules import aks_outbound as rule
from tests.infra.breaks import edited, graph, nested_set, typed
from tests.infra.kubernetes_runs import stack_run


def _records() -> tuple[list, dict]:
    run = stack_run("confidential")  # computeOutbound: nat-gateway
    return list(run.resources), _plain(run.result)


def test_confidential_clusters_leave_through_the_nat_gateway() -> None:
    records, outputs = _records()
    g = graph(records, outputs)
    clusters = g.of_type(MANAGED_CLUSTER)
    assert clusters
    for cluster in clusters:
        assert cluster.get("networkProfile", "outboundType") == rule.NAT
        subnet = g.find_subnet(cluster.get("agentPoolProfiles")[0]["vnetSubnetID"])
        assert subnet is not None and subnet.node is not None and subnet.node.get("natGateway")
    assert rule.check(g) == []


def test_a_load_balancer_cluster_in_a_nat_subnet_is_refused() -> None:
    records, outputs = _records()
    broken = edited(
        records,
        typed("ManagedCluster", "hospital-a"),
        nested_set("networkProfile.outboundType", "loadBalancer"),
    )
    found = rule.check(graph(broken, outputs))
    assert len(found) == 1 and "hospital-a" in found[0].resource_name
    assert "userAssignedNATGateway" in found[0].fix


def test_a_nat_outbound_type_without_a_nat_gateway_is_refused() -> None:
    records, outputs = _records()
    broken = edited(
        records, typed("Subnet", "hospital-a-network-compute"), lambda p: p.pop("natGateway", None)
    )
    found = rule.check(graph(broken, outputs))
    assert len(found) == 1 and "AKS refuses to create the cluster" in found[0].problem
